//! Committing a batch in PostgreSQL: its archive frames, observables,
//! sightings, inventory and findings in one transaction, with the
//! dictionary and sightings written a statement per batch (arrays
//! unnested), not a statement per row.

use std::collections::BTreeMap;

use postgres::Transaction;
use turncoat_core::{FastHashMap, InventoryItem, Time};

use super::{ENDPOINT, PgStore, alerts::record_findings_tx, set_stream_state_tx};
use crate::ledger::{LedgerRows, NewInterval, record_inventory};
use crate::rows::parse;
use crate::{
    Batch, BatchOutcome, EncodedEvents, EventRef, FindingMode, LedgerHook, Result, SightingDelta,
    SourceUpdate, StoreError, Tenant,
};

/// Id cache: (tenant, kind, name) to id.
pub(super) type Ids = FastHashMap<(i64, u8, String), i64>;

/// Advisory-lock keys of tenants' writers sit above this bit.
const TENANT_LOCK: i64 = 1 << 62;

/// Takes the tenant's writer lock for the rest of the transaction: one
/// tenant's batches commit one at a time (its archive segments and its
/// ledger are appended in order), different tenants' in parallel.
pub(super) fn lock_tenant(tx: &mut Transaction<'_>, tenant: i64) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&(TENANT_LOCK | tenant)],
    )?;
    Ok(())
}

pub(super) fn commit_batch(
    store: &mut PgStore,
    tenant: &Tenant,
    batch: Batch,
    on_ledger: &mut LedgerHook<'_>,
) -> Result<BatchOutcome> {
    let hours: Vec<(i64, u32)> = batch.events.hours().collect();
    store.ensure_partitions(hours.iter().map(|h| h.0))?;
    let now = Time::now();
    let tid = tenant.id;
    let PgStore {
        client,
        frames,
        ids,
        ..
    } = store;
    let mut tx = client.get_mut().transaction()?;
    lock_tenant(&mut tx, tid)?;
    let source_id = record_source(&mut tx, tid, batch.source.as_ref(), now)?;
    // Where each hour's frame starts: (segment id, offset).
    let mut placed: FastHashMap<i64, (i64, u64)> = FastHashMap::default();
    for &(hour, count) in &hours {
        let frame = frames
            .compress_hour(hour, &batch.events)
            .map_err(|e| StoreError::Archive {
                path: format!("archive_frames tenant {tid} hour {hour}"),
                message: e.to_string(),
            })?;
        placed.insert(hour, append_frame(&mut tx, tid, hour, count, frame)?);
    }
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
        set_stream_state_tx(&mut tx, tid, name, state)?;
    }
    for work in &batch.pending {
        tx.execute(
            "INSERT INTO pending_work (tenant_id, work, since) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&tid, &work.as_str(), &now.0],
        )?;
    }
    record_endpoints(&mut tx, ids, tid, &batch)?;
    record_feeds(&mut tx, ids, tid, &batch.events, now)?;
    record_sightings(&mut tx, ids, tid, &batch.sightings, &event_ref, source_id)?;
    let file = batch.source.as_ref().map(|s| s.name.clone());
    let mut ledger = PgLedger {
        tx: &mut tx,
        tenant: tid,
        ids,
    };
    let (ledger_changes, exposure) =
        record_inventory(&mut ledger, batch.inventory, on_ledger, file.as_deref())?;
    let live: Vec<_> = batch
        .findings
        .into_iter()
        .map(|(f, i)| (f, i.and_then(event_ref)))
        .collect();
    let a = record_findings_tx(&mut tx, ids, tid, &live, FindingMode::Add, now)?;
    let exposure: Vec<_> = exposure.into_iter().map(|f| (f, None)).collect();
    let b = record_findings_tx(&mut tx, ids, tid, &exposure, FindingMode::Set, now)?;
    tx.commit()?;
    Ok(BatchOutcome {
        events: batch.events.len() as u64,
        new_alerts: a.new_alerts + b.new_alerts,
        updated_alerts: a.updated_alerts + b.updated_alerts,
        ledger_changes,
    })
}

/// Appends one hour's frame to its segment; where it starts.
fn append_frame(
    tx: &mut Transaction<'_>,
    tid: i64,
    hour: i64,
    events: u32,
    frame: &[u8],
) -> Result<(i64, u64)> {
    let (segment, offset): (i64, i64) = match tx.query_opt(
        "SELECT id, committed_len FROM segments WHERE tenant_id = $1 AND hour = $2",
        &[&tid, &hour],
    )? {
        Some(r) => (r.try_get(0)?, r.try_get(1)?),
        None => (
            tx.query_one(
                "INSERT INTO segments (tenant_id, hour, committed_len, events) VALUES ($1, $2, 0, 0) RETURNING id",
                &[&tid, &hour],
            )?
            .try_get(0)?,
            0,
        ),
    };
    tx.execute(
        "INSERT INTO archive_frames (tenant_id, hour, frame_offset, events, frame) VALUES ($1, $2, $3, $4, $5)",
        &[&tid, &hour, &offset, &(events as i64), &frame],
    )?;
    tx.execute(
        "UPDATE segments SET committed_len = $1, events = events + $2 WHERE tenant_id = $3 AND id = $4",
        &[&(offset + frame.len() as i64), &(events as i64), &tid, &segment],
    )?;
    Ok((segment, offset as u64))
}

/// Records how far a source has been read; its id, for the sightings.
fn record_source(
    tx: &mut Transaction<'_>,
    tid: i64,
    source: Option<&SourceUpdate>,
    now: Time,
) -> Result<Option<i64>> {
    let Some(s) = source else { return Ok(None) };
    let row = tx.query_one(
        "INSERT INTO sources (tenant_id, name, hash, head, size, lines, complete, ingested) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (tenant_id, hash) DO UPDATE SET lines = excluded.lines, complete = excluded.complete, ingested = excluded.ingested
         RETURNING id",
        &[
            &tid,
            &s.name,
            &&s.fingerprint.hash[..],
            &&s.fingerprint.head[..],
            &(s.fingerprint.size as i64),
            &(s.lines as i64),
            &s.complete,
            &now.0,
        ],
    )?;
    Ok(Some(row.try_get(0)?))
}

/// The id of endpoint `name`, added when new.
pub(super) fn endpoint_id(
    tx: &mut Transaction<'_>,
    ids: &mut Ids,
    tid: i64,
    name: &str,
    time: Time,
) -> Result<i64> {
    let key = (tid, ENDPOINT, name.to_owned());
    if let Some(&id) = ids.get(&key) {
        return Ok(id);
    }
    let added = tx.query_opt(
        "INSERT INTO endpoints (tenant_id, name, first_seen, last_seen) VALUES ($1, $2, $3, $3)
         ON CONFLICT (tenant_id, name) DO NOTHING RETURNING id",
        &[&tid, &name, &time.0],
    )?;
    let id: i64 = match added {
        Some(r) => r.try_get(0)?,
        None => tx
            .query_one(
                "SELECT id FROM endpoints WHERE tenant_id = $1 AND name = $2",
                &[&tid, &name],
            )?
            .try_get(0)?,
    };
    if ids.len() >= super::MAX_CACHED_IDS {
        ids.clear();
    }
    ids.insert(key, id);
    Ok(id)
}

/// The ids of endpoints by name, one per name given, adding those not
/// known yet (first seen at the time beside their first mention): one
/// statement for every name not cached, not one per name.
pub(super) fn endpoint_ids(
    tx: &mut Transaction<'_>,
    ids: &mut Ids,
    tid: i64,
    names: &[(&str, Time)],
) -> Result<Vec<i64>> {
    // name → id, or None while it is still to be read
    let mut found: FastHashMap<&str, Option<i64>> = FastHashMap::default();
    let mut missing: Vec<&str> = Vec::new();
    let mut first_seen: Vec<i64> = Vec::new();
    for &(name, at) in names {
        if found.contains_key(name) {
            continue;
        }
        let cached = ids.get(&(tid, ENDPOINT, name.to_owned())).copied();
        if cached.is_none() {
            missing.push(name);
            first_seen.push(at.0);
        }
        found.insert(name, cached);
    }
    if !missing.is_empty() {
        tx.execute(
            "INSERT INTO endpoints (tenant_id, name, first_seen, last_seen)
             SELECT $1, n.name, n.at, n.at
             FROM unnest($2::text[], $3::bigint[]) WITH ORDINALITY AS n(name, at, ord)
             ORDER BY n.ord
             ON CONFLICT (tenant_id, name) DO NOTHING",
            &[&tid, &missing, &first_seen],
        )?;
        let rows = tx.query(
            "SELECT id, name FROM endpoints WHERE tenant_id = $1 AND name = ANY($2)",
            &[&tid, &missing],
        )?;
        if ids.len() + rows.len() >= super::MAX_CACHED_IDS {
            ids.clear();
        }
        for r in &rows {
            let (id, name): (i64, &str) = (r.try_get(0)?, r.try_get(1)?);
            ids.insert((tid, ENDPOINT, name.to_owned()), id);
            if let Some(slot) = found.get_mut(name) {
                *slot = Some(id);
            }
        }
    }
    names
        .iter()
        .map(|(name, _)| {
            found.get(name).copied().flatten().ok_or_else(|| {
                StoreError::Corrupt(format!("endpoint {name:?} neither found nor added"))
            })
        })
        .collect()
}

/// The endpoints and addresses a batch names.
fn record_endpoints(
    tx: &mut Transaction<'_>,
    ids: &mut Ids,
    tid: i64,
    batch: &Batch,
) -> Result<()> {
    for (name, platform, at) in &batch.endpoints {
        let id = endpoint_id(tx, ids, tid, name, *at)?;
        tx.execute(
            "UPDATE endpoints SET platform = coalesce($1, platform), first_seen = least(first_seen, $2), last_seen = greatest(last_seen, $2)
             WHERE tenant_id = $3 AND id = $4",
            &[&platform.map(|p| p.as_str()), &at.0, &tid, &id],
        )?;
    }
    for (ip, host, at) in &batch.addresses {
        tx.execute(
            "INSERT INTO addresses AS a (tenant_id, ip, host, seen) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, ip) DO UPDATE SET host = excluded.host, seen = excluded.seen WHERE excluded.seen >= a.seen",
            &[&tid, ip, host, &at.0],
        )?;
    }
    Ok(())
}

/// Hours of a feed kept for its rate: the last day of its data.
const FEED_HOURS_KEPT: i64 = 24;

/// Adds the batch's events to their feeds' hours (ingest freshness), and
/// drops hours older than a day before each feed's newest: one statement
/// each for the whole batch (a chunk's events span hundreds of feed
/// hours, and a statement each was most of a commit's time).
fn record_feeds(
    tx: &mut Transaction<'_>,
    ids: &mut Ids,
    tid: i64,
    events: &EncodedEvents,
    now: Time,
) -> Result<()> {
    // Merged by key first: one row may be named once per statement.
    let mut hours: BTreeMap<(i64, String, i64), (i64, i64)> = BTreeMap::new();
    for feed in events.feeds() {
        let endpoint = endpoint_id(tx, ids, tid, &feed.host, feed.last_event)?;
        let tally = hours
            .entry((endpoint, feed.logsource_name(), feed.hour))
            .or_insert((0, i64::MIN));
        tally.0 += feed.events as i64;
        tally.1 = tally.1.max(feed.last_event.0);
    }
    if hours.is_empty() {
        return Ok(());
    }
    let (mut endpoints, mut sources, mut at, mut counts, mut lasts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((endpoint, source, hour), (count, last)) in hours {
        endpoints.push(endpoint);
        sources.push(source);
        at.push(hour);
        counts.push(count);
        lasts.push(last);
    }
    tx.execute(
        "INSERT INTO feed_hours AS f (tenant_id, endpoint_id, logsource, hour, events, last_event, ingested)
         SELECT $1, e, s, h, n, l, $7::bigint
         FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[]) AS u(e, s, h, n, l)
         ON CONFLICT (tenant_id, endpoint_id, logsource, hour) DO UPDATE SET
             events = f.events + excluded.events,
             last_event = greatest(f.last_event, excluded.last_event),
             ingested = excluded.ingested",
        &[&tid, &endpoints, &sources, &at, &counts, &lasts, &now.0],
    )?;
    tx.execute(
        "DELETE FROM feed_hours f
         USING (SELECT g.endpoint_id, g.logsource, max(g.hour) AS newest
                FROM feed_hours g
                JOIN (SELECT DISTINCT e, s FROM unnest($2::bigint[], $3::text[]) AS u(e, s)) k
                  ON g.endpoint_id = k.e AND g.logsource = k.s
                WHERE g.tenant_id = $1
                GROUP BY g.endpoint_id, g.logsource) m
         WHERE f.tenant_id = $1 AND f.endpoint_id = m.endpoint_id AND f.logsource = m.logsource
           AND f.hour < m.newest - $4",
        &[&tid, &endpoints, &sources, &FEED_HOURS_KEPT],
    )?;
    Ok(())
}

/// A key's first and last seen, count and latest event, merged.
type MergedSighting = (i64, i64, i64, Option<EventRef>);

/// The batch's sightings: new observables added to the dictionary in one
/// statement, then every (observable, endpoint, day) upserted in one.
fn record_sightings(
    tx: &mut Transaction<'_>,
    ids: &mut Ids,
    tid: i64,
    sightings: &[SightingDelta],
    event_ref: &dyn Fn(usize) -> Option<EventRef>,
    source_id: Option<i64>,
) -> Result<()> {
    if sightings.is_empty() {
        return Ok(());
    }
    let mut missing: Vec<(i64, &str)> = sightings
        .iter()
        .map(|s| (s.observable.kind as i64, s.observable.value.as_str()))
        .filter(|&(k, v)| !ids.contains_key(&(tid, k as u8, v.to_owned())))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        let kinds: Vec<i64> = missing.iter().map(|m| m.0).collect();
        let values: Vec<&str> = missing.iter().map(|m| m.1).collect();
        tx.execute(
            "INSERT INTO observables (tenant_id, kind, value)
             SELECT $1, k, v FROM unnest($2::bigint[], $3::text[]) AS n(k, v)
             ON CONFLICT DO NOTHING",
            &[&tid, &kinds, &values],
        )?;
        let rows = tx.query(
            "SELECT o.id, o.kind, o.value FROM observables o
             JOIN unnest($2::bigint[], $3::text[]) AS n(k, v) ON o.kind = n.k AND o.value = n.v
             WHERE o.tenant_id = $1",
            &[&tid, &kinds, &values],
        )?;
        if ids.len() + rows.len() >= super::MAX_CACHED_IDS {
            ids.clear();
        }
        for r in &rows {
            let kind: i64 = r.try_get(1)?;
            ids.insert((tid, kind as u8, r.try_get::<_, String>(2)?), r.try_get(0)?);
        }
    }
    // One row per key: the batch's deltas of a key merged, the event
    // pointed to being the latest, as findings' evidence is.
    let mut merged: BTreeMap<(i64, i64, i64), MergedSighting> = BTreeMap::new();
    for s in sightings {
        let o = &s.observable;
        let oid = *ids
            .get(&(tid, o.kind as u8, o.value.clone()))
            .ok_or_else(|| StoreError::Corrupt(format!("observable {o:?} has no id")))?;
        let eid = endpoint_id(tx, ids, tid, &s.endpoint, s.first)?;
        let at = event_ref(s.event);
        merged
            .entry((oid, eid, s.first.day()))
            .and_modify(|m| {
                m.0 = m.0.min(s.first.0);
                if s.last.0 >= m.1 {
                    m.1 = s.last.0;
                    m.3 = at;
                }
                m.2 += s.count as i64;
            })
            .or_insert((s.first.0, s.last.0, s.count as i64, at));
    }
    let mut cols: [Vec<i64>; 7] = Default::default();
    let mut refs: [Vec<Option<i64>>; 3] = Default::default();
    for ((oid, eid, day), (first, last, count, at)) in merged {
        for (col, v) in cols.iter_mut().zip([oid, eid, day, first, last, count]) {
            col.push(v);
        }
        refs[0].push(at.map(|r| r.segment));
        refs[1].push(at.map(|r| r.offset as i64));
        refs[2].push(at.map(|r| r.index as i64));
    }
    tx.execute(
        "INSERT INTO sightings AS s (tenant_id, observable_id, endpoint_id, day, first_seen, last_seen, count, segment_id, frame_offset, frame_index, source_id)
         SELECT $1, o, e, d, f, l, c, sg, fo, fi, $11::bigint
         FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])
             AS n(o, e, d, f, l, c, sg, fo, fi)
         ON CONFLICT (tenant_id, observable_id, endpoint_id, day) DO UPDATE SET
            first_seen = least(s.first_seen, excluded.first_seen),
            last_seen = greatest(s.last_seen, excluded.last_seen),
            count = s.count + excluded.count,
            segment_id = CASE WHEN excluded.last_seen >= s.last_seen THEN excluded.segment_id ELSE s.segment_id END,
            frame_offset = CASE WHEN excluded.last_seen >= s.last_seen THEN excluded.frame_offset ELSE s.frame_offset END,
            frame_index = CASE WHEN excluded.last_seen >= s.last_seen THEN excluded.frame_index ELSE s.frame_index END,
            source_id = CASE WHEN excluded.last_seen >= s.last_seen THEN excluded.source_id ELSE s.source_id END",
        &[
            &tid, &cols[0], &cols[1], &cols[2], &cols[3], &cols[4], &cols[5], &refs[0], &refs[1],
            &refs[2], &source_id,
        ],
    )?;
    Ok(())
}

/// One tenant's ledger rows inside a batch's transaction.
struct PgLedger<'a, 't> {
    tx: &'a mut Transaction<'t>,
    tenant: i64,
    ids: &'a mut Ids,
}

impl LedgerRows for PgLedger<'_, '_> {
    fn endpoint_id(&mut self, host: &str, at: Time) -> Result<i64> {
        endpoint_id(self.tx, self.ids, self.tenant, host, at)
    }

    fn open_interval(
        &mut self,
        endpoint_id: i64,
        source: &str,
        name_norm: &str,
        version: &str,
    ) -> Result<Option<(i64, i64)>> {
        self.tx
            .query_opt(
                "SELECT id, installed FROM ledger WHERE tenant_id = $1 AND endpoint_id = $2 AND source = $3 AND name_norm = $4 AND version = $5 AND removed IS NULL",
                &[&self.tenant, &endpoint_id, &source, &name_norm, &version],
            )?
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .transpose()
    }

    fn insert(&mut self, i: &NewInterval<'_>) -> Result<()> {
        self.tx.execute(
            "INSERT INTO ledger (tenant_id, endpoint_id, source, name, name_norm, version, vendor, platform, ecosystem, installed, removed, file)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            &[
                &self.tenant,
                &i.endpoint_id,
                &i.source,
                &i.item.name,
                &i.name_norm,
                &i.item.version,
                &i.item.vendor,
                &i.platform(),
                &i.item.ecosystem.as_str(),
                &i.installed.0,
                &i.removed.map(|t| t.0),
                &i.file,
            ],
        )?;
        Ok(())
    }

    fn set_removed(&mut self, id: i64, removed: Time) -> Result<()> {
        self.tx.execute(
            "UPDATE ledger SET removed = $1 WHERE tenant_id = $2 AND id = $3",
            &[&removed.0, &self.tenant, &id],
        )?;
        Ok(())
    }

    fn open_items(&mut self, endpoint_id: i64, source: &str) -> Result<Vec<InventoryItem>> {
        self.tx
            .query(
                "SELECT name, version, vendor, platform, ecosystem FROM ledger
                 WHERE tenant_id = $1 AND endpoint_id = $2 AND source = $3 AND removed IS NULL ORDER BY id",
                &[&self.tenant, &endpoint_id, &source],
            )?
            .iter()
            .map(|r| {
                Ok(InventoryItem {
                    name: r.try_get(0)?,
                    version: r.try_get(1)?,
                    vendor: r.try_get(2)?,
                    platform: r.try_get::<_, Option<&str>>(3)?.map(parse).transpose()?,
                    ecosystem: parse(r.try_get(4)?)?,
                })
            })
            .collect()
    }
}
