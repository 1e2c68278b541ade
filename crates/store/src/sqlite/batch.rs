//! Committing a batch: its events, observables, sightings, inventory
//! and findings, in one transaction, with the endpoint and observable ids
//! it needs cached between batches.

use super::*;
use crate::ledger::record_inventory;
use crate::{EncodedEvents, SightingDelta, SourceUpdate};

/// The id of `name` from the cache, or from `fetch` (which finds or
/// creates the row) on a miss.
pub(super) fn cached_id(
    cache: &mut IdCache,
    tenant: i64,
    kind: u8,
    name: &str,
    fetch: impl FnOnce() -> Result<i64>,
) -> Result<i64> {
    if let Some(id) = cache.get(tenant, kind, name) {
        return Ok(id);
    }
    let id = fetch()?;
    cache.insert(tenant, kind, name, id);
    Ok(id)
}

pub(super) fn endpoint_id(
    tx: &Transaction,
    cache: &mut IdCache,
    tenant: i64,
    name: &str,
    time: Time,
) -> Result<i64> {
    cached_id(cache, tenant, ENDPOINT, name, || {
        let existing: Option<i64> = tx
            .prepare_cached("SELECT id FROM endpoints WHERE tenant_id = ? AND name = ?")?
            .query_row(params![tenant, name], |r| r.get(0))
            .optional()?;
        if let Some(id) = existing {
            return Ok(id);
        }
        tx.prepare_cached(
            "INSERT INTO endpoints (tenant_id, name, first_seen, last_seen) VALUES (?, ?, ?, ?)",
        )?
        .execute(params![tenant, name, time.0, time.0])?;
        Ok(tx.last_insert_rowid())
    })
}

/// Adds observables missing from the cache to the dictionary (finding
/// those another handle added) and caches their ids. The statements are
/// prepared once: `prepare_cached` copies and hashes the SQL text per call.
pub(super) fn add_observables(
    tx: &Transaction,
    cache: &mut IdCache,
    tenant: i64,
    observables: &[&Observable],
) -> Result<()> {
    if observables.is_empty() {
        return Ok(());
    }
    if !cache.is_complete(tenant) {
        let any: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM observables WHERE tenant_id = ?)")?
            .query_row([tenant], |r| r.get(0))?;
        if !any {
            cache.set_complete(tenant);
        }
    }
    // With the tenant's whole dictionary cached a miss is a new row, so it
    // is inserted without a search first; one another handle added
    // meanwhile is then found by the search (completeness is a hint, never
    // trusted for ids).
    let insert_first = cache.is_complete(tenant);
    let mut add_new = tx.prepare_cached(
        "INSERT INTO observables (tenant_id, kind, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
    )?;
    let mut find = tx.prepare_cached(
        "SELECT id FROM observables WHERE tenant_id = ? AND kind = ? AND value = ?",
    )?;
    for o in observables {
        let kind = o.kind as u8;
        if cache.get(tenant, kind, &o.value).is_some() {
            continue;
        }
        let added = insert_first && add_new.execute(params![tenant, kind, o.value])? == 1;
        let id = if added {
            tx.last_insert_rowid()
        } else {
            let existing: Option<i64> = find
                .query_row(params![tenant, kind, o.value], |r| r.get(0))
                .optional()?;
            match existing {
                Some(id) => id,
                // Not found under the commit's write lock, so the insert
                // cannot conflict; were it to, `last_insert_rowid` would
                // name some other row, so that is an error, not an id.
                None if add_new.execute(params![tenant, kind, o.value])? == 1 => {
                    tx.last_insert_rowid()
                }
                None => {
                    return Err(StoreError::Corrupt(format!(
                        "observable {:?} was neither found nor added",
                        o.value
                    )));
                }
            }
        };
        cache.insert(tenant, kind, &o.value, id);
    }
    Ok(())
}

/// An observable's id from the cache, added to the dictionary when the
/// cache does not hold it (it was new, or dropped at the cache's bound).
pub(super) fn observable_id(
    tx: &Transaction,
    cache: &mut IdCache,
    tenant: i64,
    o: &Observable,
) -> Result<i64> {
    if let Some(id) = cache.get(tenant, o.kind as u8, &o.value) {
        return Ok(id);
    }
    add_observables(tx, cache, tenant, &[o])?;
    cache
        .get(tenant, o.kind as u8, &o.value)
        .ok_or_else(|| StoreError::Corrupt(format!("observable {o:?} has no id")))
}

impl SqliteStore {
    pub(super) fn commit_batch_inner(
        &mut self,
        tenant: &Tenant,
        batch: Batch,
        on_ledger: &mut LedgerHook<'_>,
    ) -> Result<BatchOutcome> {
        let now = Time::now();
        let tx = self.conn.transaction()?;
        let tid = tenant.id;
        // Source progress first: its id goes on the sightings.
        let source_id = record_source(&tx, tid, batch.source.as_ref(), now)?;
        let placed = append_archive(&tx, &mut self.archive, tid, &batch.events)?;
        let event_ref = |event: usize| {
            let (hour, index) = batch.events.place(event)?;
            let &(segment, offset) = placed.get(&hour)?;
            Some(EventRef {
                segment,
                offset,
                index,
            })
        };
        for (name, state) in &batch.stream_state {
            set_stream_state_tx(&tx, tid, name, state)?;
        }
        for work in &batch.pending {
            tx.prepare_cached(
                "INSERT INTO pending_work (tenant_id, work, since) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            )?
            .execute(params![tid, work.as_str(), now.0])?;
        }
        record_endpoints(&tx, &mut self.endpoint_ids, tid, &batch)?;
        record_feeds(&tx, &mut self.endpoint_ids, tid, &batch.events, now)?;
        let ids = Ids {
            observables: &mut self.observable_ids,
            endpoints: &mut self.endpoint_ids,
        };
        record_sightings(&tx, ids, tid, &batch.sightings, &event_ref, source_id)?;
        let file = batch.source.as_ref().map(|s| s.name.clone());
        let mut ledger = SqliteLedger {
            tx: &tx,
            tenant: tid,
            endpoint_ids: &mut self.endpoint_ids,
        };
        let (ledger_changes, exposure) =
            record_inventory(&mut ledger, batch.inventory, on_ledger, file.as_deref())?;

        // Findings: live IOC matches (added) and exposure (set: the
        // interval is the whole truth).
        let live: Vec<(Finding, Option<EventRef>)> = batch
            .findings
            .into_iter()
            .map(|(f, i)| (f, i.and_then(event_ref)))
            .collect();
        let a = record_findings_tx(
            &tx,
            &mut self.endpoint_ids,
            tid,
            &live,
            FindingMode::Add,
            now,
        )?;
        let exposure: Vec<(Finding, Option<EventRef>)> =
            exposure.into_iter().map(|f| (f, None)).collect();
        let b = record_findings_tx(
            &tx,
            &mut self.endpoint_ids,
            tid,
            &exposure,
            FindingMode::Set,
            now,
        )?;

        let outcome = BatchOutcome {
            events: batch.events.len() as u64,
            new_alerts: a.new_alerts + b.new_alerts,
            updated_alerts: a.updated_alerts + b.updated_alerts,
            ledger_changes,
        };
        commit(tx, &self.dir)?;
        Ok(outcome)
    }
}

/// The id caches a batch's sightings resolve names through.
struct Ids<'a> {
    observables: &'a mut IdCache,
    endpoints: &'a mut IdCache,
}

/// Records how far a source has been read; its id, for the sightings.
fn record_source(
    tx: &Transaction<'_>,
    tid: i64,
    source: Option<&SourceUpdate>,
    now: Time,
) -> Result<Option<i64>> {
    Ok(match source {
        Some(s) => {
            tx.prepare_cached(
                "INSERT INTO sources (tenant_id, name, hash, head, size, lines, complete, ingested) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (tenant_id, hash) DO UPDATE SET lines = excluded.lines, complete = excluded.complete, ingested = excluded.ingested",
            )?
            .execute(params![
                tid,
                s.name,
                &s.fingerprint.hash[..],
                &s.fingerprint.head[..],
                s.fingerprint.size as i64,
                s.lines as i64,
                s.complete,
                now.0
            ])?;
            Some(tx.query_row(
                "SELECT id FROM sources WHERE tenant_id = ? AND hash = ?",
                params![tid, &s.fingerprint.hash[..]],
                |r| r.get::<_, i64>(0),
            )?)
        }
        None => None,
    })
}

/// Appends the batch's events to the archive, one frame per hour touched;
/// where each hour's frame starts (segment id, offset). Where an event
/// landed is looked up for the rows that point at it, not listed for every
/// event: most events back no row.
fn append_archive(
    tx: &Transaction<'_>,
    archive: &mut Archive,
    tid: i64,
    events: &EncodedEvents,
) -> Result<FastHashMap<i64, (i64, u64)>> {
    let mut placed: FastHashMap<i64, (i64, u64)> = FastHashMap::default();
    for (hour, count) in events.hours() {
        let seg: Option<(i64, i64)> = tx
            .prepare_cached(
                "SELECT id, committed_len FROM segments WHERE tenant_id = ? AND hour = ?",
            )?
            .query_row(params![tid, hour], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (seg_id, offset) = match seg {
            Some(s) => s,
            None => {
                tx.prepare_cached("INSERT INTO segments (tenant_id, hour, committed_len, events) VALUES (?, ?, 0, 0)")?
                    .execute(params![tid, hour])?;
                (tx.last_insert_rowid(), 0)
            }
        };
        let frame_len = archive.append_hour(tid, hour, offset as u64, events)?;
        tx.prepare_cached(
            "UPDATE segments SET committed_len = ?, events = events + ? WHERE id = ?",
        )?
        .execute(params![offset + frame_len as i64, count as i64, seg_id])?;
        placed.insert(hour, (seg_id, offset as u64));
    }
    Ok(placed)
}

/// Hours of a feed kept for its rate: the last day of its data.
const FEED_HOURS_KEPT: i64 = 24;

/// Adds the batch's events to their feeds' hours (ingest freshness), and
/// drops hours older than a day before each feed's newest.
fn record_feeds(
    tx: &Transaction<'_>,
    endpoint_ids: &mut IdCache,
    tid: i64,
    events: &EncodedEvents,
    now: Time,
) -> Result<()> {
    for feed in events.feeds() {
        let endpoint = endpoint_id(tx, endpoint_ids, tid, &feed.host, feed.last_event)?;
        let logsource = feed.logsource_name();
        tx.prepare_cached(
            "INSERT INTO feed_hours (tenant_id, endpoint_id, logsource, hour, events, last_event, ingested)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (tenant_id, endpoint_id, logsource, hour) DO UPDATE SET
                 events = events + excluded.events,
                 last_event = max(last_event, excluded.last_event),
                 ingested = excluded.ingested",
        )?
        .execute(params![
            tid,
            endpoint,
            logsource,
            feed.hour,
            feed.events as i64,
            feed.last_event.0,
            now.0
        ])?;
        tx.prepare_cached(
            "DELETE FROM feed_hours WHERE tenant_id = ? AND endpoint_id = ? AND logsource = ?
             AND hour < (SELECT max(hour) FROM feed_hours WHERE tenant_id = ? AND endpoint_id = ? AND logsource = ?) - ?",
        )?
        .execute(params![
            tid,
            endpoint,
            logsource,
            tid,
            endpoint,
            logsource,
            FEED_HOURS_KEPT
        ])?;
    }
    Ok(())
}

/// The endpoints and addresses a batch names.
fn record_endpoints(
    tx: &Transaction<'_>,
    endpoint_ids: &mut IdCache,
    tid: i64,
    batch: &Batch,
) -> Result<()> {
    for (name, platform, at) in &batch.endpoints {
        let id = endpoint_id(tx, endpoint_ids, tid, name, *at)?;
        tx.prepare_cached(
            "UPDATE endpoints SET platform = coalesce(?, platform), first_seen = min(first_seen, ?), last_seen = max(last_seen, ?) WHERE id = ?",
        )?
        .execute(params![platform.map(Platform::as_str), at.0, at.0, id])?;
    }
    for (ip, host, at) in &batch.addresses {
        tx.prepare_cached(
            "INSERT INTO addresses (tenant_id, ip, host, seen) VALUES (?, ?, ?, ?)
             ON CONFLICT (tenant_id, ip) DO UPDATE SET host = excluded.host, seen = excluded.seen WHERE excluded.seen >= seen",
        )?
        .execute(params![tid, ip, host, at.0])?;
    }
    Ok(())
}

/// Sightings, in key order: new observables are added to the dictionary
/// sorted by value and the rows upserted sorted by their primary key, so
/// that consecutive B-tree writes land on the same pages instead of all
/// over both trees.
fn record_sightings(
    tx: &Transaction<'_>,
    caches: Ids<'_>,
    tid: i64,
    sightings: &[SightingDelta],
    event_ref: &dyn Fn(usize) -> Option<EventRef>,
    source_id: Option<i64>,
) -> Result<()> {
    let mut ids: Vec<Option<i64>> = Vec::with_capacity(sightings.len());
    let mut new: Vec<&Observable> = Vec::new();
    for s in sightings {
        let o = &s.observable;
        let id = caches.observables.get(tid, o.kind as u8, &o.value);
        if id.is_none() {
            new.push(o);
        }
        ids.push(id);
    }
    new.sort_unstable();
    new.dedup();
    add_observables(tx, caches.observables, tid, &new)?;
    let mut rows = Vec::with_capacity(sightings.len());
    for (s, id) in sightings.iter().zip(ids) {
        let oid = match id {
            Some(id) => id,
            None => observable_id(tx, caches.observables, tid, &s.observable)?,
        };
        let eid = endpoint_id(tx, caches.endpoints, tid, &s.endpoint, s.first)?;
        rows.push((oid, eid, s.first.day(), s));
    }
    rows.sort_unstable_by_key(|&(oid, eid, day, _)| (oid, eid, day));
    // The event a sighting points to is its latest, as findings'
    // evidence is.
    let mut upsert = tx.prepare_cached(
        "INSERT INTO sightings (tenant_id, observable_id, endpoint_id, day, first_seen, last_seen, count, segment_id, frame_offset, frame_index, source_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (tenant_id, observable_id, endpoint_id, day) DO UPDATE SET
            first_seen = min(first_seen, excluded.first_seen),
            last_seen = max(last_seen, excluded.last_seen),
            count = count + excluded.count,
            segment_id = iif(excluded.last_seen >= last_seen, excluded.segment_id, segment_id),
            frame_offset = iif(excluded.last_seen >= last_seen, excluded.frame_offset, frame_offset),
            frame_index = iif(excluded.last_seen >= last_seen, excluded.frame_index, frame_index),
            source_id = iif(excluded.last_seen >= last_seen, excluded.source_id, source_id)",
    )?;
    for (oid, eid, day, s) in rows {
        let r = event_ref(s.event);
        upsert.execute(params![
            tid,
            oid,
            eid,
            day,
            s.first.0,
            s.last.0,
            s.count as i64,
            r.map(|r| r.segment),
            r.map(|r| r.offset as i64),
            r.map(|r| r.index as i64),
            source_id
        ])?;
    }
    drop(upsert);
    Ok(())
}
