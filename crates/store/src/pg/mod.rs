//! The cluster backend: everything in PostgreSQL, the event archive
//! included (zstd frames as rows of a table partitioned by time), so that
//! servers and workers keep no local state and any of them may die.
//!
//! Writers are concurrent (several workers, several servers): every
//! change is one transaction, upserts go through unique constraints, and
//! a tenant's batches are serialised by a transaction-scoped advisory lock
//! on the tenant, so that two workers never interleave one tenant's
//! archive segment or ledger.

use std::cell::{RefCell, RefMut};
use std::collections::HashSet;

use postgres::error::SqlState;
use postgres::{Client, NoTls, Row, Transaction};
use turncoat_core::advisory::product_lookup_key;
use turncoat_core::time::MICROS_PER_HOUR;
use turncoat_core::{
    Actor, Advisory, AlertId, AlertKind, AlertStatus, Event, FastHashMap, Finding, Indicator,
    IndicatorRef, Observable, ObservableKind, TenantName, Time,
};

mod access;
mod alerts;
mod batch;
mod copy;
mod intel;
mod notify;
pub(crate) mod schema;

pub use copy::{CopyCheck, CopyReport, compare};

use crate::archive::FrameWriter;
use crate::rows::{FeedHour, LedgerColumns, event_ref, fold_feeds, observable_kind, tenant_row};
use crate::{
    Address, Alert, AlertChange, AlertCount, AlertFilter, AlertPage, AllowAdded, AllowEntry,
    AuditEntry, Batch, BatchOutcome, CampaignAlert, CampaignUpserted, Delivery, DueWork, EventRef,
    Feed, FindingMode, FindingsOutcome, IndicatorUpsert, InternalNetwork, LedgerEntry, LedgerHook,
    NewAllowEntry, NewNotification, NewNotifyTarget, NewSuppression, NewTaxiiFeed, NewToken,
    NewUser, Notification, NotifyChanges, NotifyCursors, NotifyTarget, PendingWork, Projection,
    Result, Scope, Sighting, SourceFingerprint, SourceRecord, Store, StoreError, StoredIndicator,
    StoredRule, Suppression, TaxiiFeed, Tenant, TenantStats, Token, User,
};

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> StoreError {
        if e.code() == Some(&SqlState::DISK_FULL) {
            return StoreError::DiskFull { file: None };
        }
        StoreError::Database(Box::new(e))
    }
}

/// The key of the advisory lock migrations run under ("turncoat" in ASCII).
const MIGRATION_LOCK: i64 = 0x7475_726e_636f_6174;

/// Hours per archive partition: thirty days.
const PARTITION_HOURS: i64 = 720;

/// A store in a PostgreSQL database.
pub struct PgStore {
    client: RefCell<Client>,
    frames: FrameWriter,
    /// Archive partitions known to exist, by number.
    partitions: HashSet<i64>,
    /// Endpoint and observable ids by tenant, kind and name; cleared when
    /// a commit fails, since ids handed out by a rolled-back transaction
    /// are void. Ids are never reused, so other writers cannot stale them.
    ids: FastHashMap<(i64, u8, String), i64>,
}

/// The id-cache kind of endpoint names (observable kinds are 0..7).
const ENDPOINT: u8 = u8::MAX;

/// Cached ids beyond this are dropped rather than grown without bound.
const MAX_CACHED_IDS: usize = 2_000_000;

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host/db`) and
    /// brings its schema up to date (refusing one newer than this build).
    pub fn connect(url: &str) -> Result<PgStore> {
        let mut client = Client::connect(url, NoTls)?;
        migrate(&mut client)?;
        PgStore::with_client(client)
    }

    fn with_client(client: Client) -> Result<PgStore> {
        Ok(PgStore {
            client: RefCell::new(client),
            frames: FrameWriter::new().map_err(|e| StoreError::Archive {
                path: "archive_frames".into(),
                message: e.to_string(),
            })?,
            partitions: HashSet::new(),
            ids: FastHashMap::default(),
        })
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<i64> {
        schema_version(&mut self.db())
    }

    /// The tables of each Citus kind in the live schema: whether every
    /// tenant-owned table's primary key leads with `tenant_id`, as
    /// `(table, primary key columns)`.
    pub fn primary_keys(&self) -> Result<Vec<(String, Vec<String>)>> {
        let rows = self.db().query(
            "SELECT c.relname::text, array_agg(a.attname::text ORDER BY k.ord)
             FROM pg_constraint p
             JOIN pg_class c ON c.oid = p.conrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
             CROSS JOIN LATERAL unnest(p.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
             WHERE p.contype = 'p' AND NOT c.relispartition
             GROUP BY c.relname ORDER BY c.relname",
            &[],
        )?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    fn db(&self) -> RefMut<'_, Client> {
        self.client.borrow_mut()
    }

    fn forget_cached_ids(&mut self) {
        self.ids.clear();
    }

    /// Creates the archive partitions the hours need, each in its own
    /// statement before the batch's transaction (DDL takes locks a long
    /// transaction should not hold); another writer creating one at the
    /// same time is fine.
    fn ensure_partitions(&mut self, hours: impl Iterator<Item = i64>) -> Result<()> {
        for hour in hours {
            let part = hour.div_euclid(PARTITION_HOURS);
            if self.partitions.contains(&part) {
                continue;
            }
            let name = if part < 0 {
                format!("archive_frames_m{}", -part)
            } else {
                format!("archive_frames_p{part}")
            };
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {name} PARTITION OF archive_frames FOR VALUES FROM ({}) TO ({})",
                part * PARTITION_HOURS,
                (part + 1) * PARTITION_HOURS
            );
            match self.client.get_mut().batch_execute(&sql) {
                Ok(()) => {}
                Err(e)
                    if e.code() == Some(&SqlState::DUPLICATE_TABLE)
                        || e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {}
                Err(e) => return Err(e.into()),
            }
            self.partitions.insert(part);
        }
        Ok(())
    }
}

/// A row limit as SQL takes it: `usize::MAX` means all.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn schema_version(client: &mut Client) -> Result<i64> {
    let exists: bool = client
        .query_one("SELECT to_regclass('turncoat_schema') IS NOT NULL", &[])?
        .try_get(0)?;
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_one("SELECT coalesce(max(version), 0) FROM turncoat_schema", &[])?
        .try_get(0)?)
}

/// Applies the migrations this database lacks, under an advisory lock.
pub(crate) fn migrate(client: &mut Client) -> Result<()> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let result = migrate_locked(client);
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    result?;
    unlocked?;
    Ok(())
}

fn migrate_locked(client: &mut Client) -> Result<()> {
    client.batch_execute("CREATE TABLE IF NOT EXISTS turncoat_schema (version BIGINT NOT NULL)")?;
    let version = schema_version(client)?;
    let known = schema::MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::SchemaTooNew {
            found: version,
            known,
        });
    }
    for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
        let mut tx = client.transaction()?;
        tx.batch_execute(sql)?;
        tx.execute("DELETE FROM turncoat_schema", &[])?;
        tx.execute(
            "INSERT INTO turncoat_schema (version) VALUES ($1)",
            &[&(i as i64 + 1)],
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// Appends an audit entry inside `tx`, so the entry and the change it
/// records commit together.
pub(super) fn audit_tx(
    tx: &mut Transaction<'_>,
    actor: &Actor,
    tenant: Option<i64>,
    action: &str,
    detail: &str,
) -> Result<()> {
    tx.execute(
        "INSERT INTO audit (time, actor, tenant_id, action, detail) VALUES ($1, $2, $3, $4, $5)",
        &[
            &Time::now().0,
            &actor.to_string(),
            &tenant,
            &action,
            &detail,
        ],
    )?;
    Ok(())
}

/// Replaces a tenant's stream state inside a transaction.
fn set_stream_state_tx(
    tx: &mut Transaction<'_>,
    tenant: i64,
    name: &str,
    state: &[u8],
) -> Result<()> {
    tx.execute(
        "INSERT INTO stream_state (tenant_id, name, state, updated) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, name) DO UPDATE SET state = excluded.state, updated = excluded.updated",
        &[&tenant, &name, &state, &Time::now().0],
    )?;
    Ok(())
}

fn source_row(r: &Row) -> Result<SourceRecord> {
    let arr = |v: &[u8]| {
        let mut a = [0u8; 32];
        a.copy_from_slice(&v[..32.min(v.len())]);
        a
    };
    Ok(SourceRecord {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        fingerprint: SourceFingerprint {
            hash: arr(r.try_get(2)?),
            head: arr(r.try_get(3)?),
            size: r.try_get::<_, i64>(4)? as u64,
        },
        lines: r.try_get::<_, i64>(5)? as u64,
        complete: r.try_get(6)?,
    })
}

fn ledger_row(r: &Row) -> Result<LedgerEntry> {
    LedgerColumns {
        endpoint: r.try_get(0)?,
        source: r.try_get(1)?,
        name: r.try_get(2)?,
        version: r.try_get(3)?,
        vendor: r.try_get(4)?,
        platform: r.try_get(5)?,
        ecosystem: r.try_get(6)?,
        installed: r.try_get(7)?,
        removed: r.try_get(8)?,
        file: r.try_get(9)?,
    }
    .entry()
}

impl PgStore {
    /// The tenant's archived events of the hours `from_hour..=to_hour`,
    /// one segment's frames at a time.
    fn scan_segments(
        &self,
        tenant: &Tenant,
        from_hour: i64,
        to_hour: i64,
        what: Projection<'_>,
        each: &mut dyn FnMut(Event),
    ) -> Result<()> {
        let segments: Vec<(i64, i64)> = self
            .db()
            .query(
                "SELECT hour, committed_len FROM segments
                 WHERE tenant_id = $1 AND hour >= $2 AND hour <= $3 ORDER BY hour",
                &[&tenant.id, &from_hour, &to_hour],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_>>()?;
        let mut raw = Vec::new();
        for (hour, committed) in segments {
            let frames = self.db().query(
                "SELECT frame_offset, frame FROM archive_frames
                 WHERE tenant_id = $1 AND hour = $2 AND frame_offset < $3 ORDER BY frame_offset",
                &[&tenant.id, &hour, &committed],
            )?;
            raw.clear();
            for f in &frames {
                let offset: i64 = f.try_get(0)?;
                crate::archive::decompress_frame(f.try_get::<_, &[u8]>(1)?, &mut raw)
                    .map_err(|e| frame_err(tenant.id, hour, offset, e))?;
            }
            crate::codec::decode_records(&raw, what, each)
                .map_err(|e| frame_err(tenant.id, hour, 0, e.to_string()))?;
        }
        Ok(())
    }
}

/// A frame of the archive that does not read back.
fn frame_err(tenant: i64, hour: i64, offset: i64, message: String) -> StoreError {
    StoreError::Archive {
        path: format!("archive_frames tenant {tenant} hour {hour} offset {offset}"),
        message,
    }
}

impl Store for PgStore {
    fn add_tenant(&mut self, name: &TenantName, actor: &Actor) -> Result<Tenant> {
        let mut tx = self.client.get_mut().transaction()?;
        let now = Time::now();
        // Names are ASCII (TenantName), which lower() folds exactly.
        if let Some(row) = tx.query_opt(
            "SELECT name FROM tenants WHERE lower(name) = lower($1) LIMIT 1",
            &[&name.as_str()],
        )? {
            return Err(StoreError::TenantExists {
                asked: name.to_string(),
                existing: row.try_get(0)?,
            });
        }
        let id: i64 = tx
            .query_one(
                "INSERT INTO tenants (name, created) VALUES ($1, $2) RETURNING id",
                &[&name.as_str(), &now.0],
            )?
            .try_get(0)?;
        audit_tx(&mut tx, actor, Some(id), "tenant.add", name.as_str())?;
        tx.commit()?;
        Ok(Tenant {
            id,
            name: name.clone(),
            created: now,
        })
    }

    fn tenants(&self) -> Result<Vec<Tenant>> {
        self.db()
            .query(
                "SELECT id, name, created FROM tenants ORDER BY lower(name), name",
                &[],
            )?
            .iter()
            .map(|r| tenant_row(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
            .collect()
    }

    fn tenant(&self, name: &str) -> Result<Option<Tenant>> {
        self.db()
            .query_opt(
                "SELECT id, name, created FROM tenants WHERE name = $1",
                &[&name],
            )?
            .map(|r| tenant_row(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
            .transpose()
    }

    fn addresses(&self, tenant: &Tenant) -> Result<Vec<Address>> {
        self.db()
            .query(
                "SELECT ip, host FROM addresses WHERE tenant_id = $1",
                &[&tenant.id],
            )?
            .iter()
            .map(|r| {
                Ok(Address {
                    ip: r.try_get(0)?,
                    host: r.try_get(1)?,
                })
            })
            .collect()
    }

    fn source(&self, tenant: &Tenant, hash: &[u8; 32]) -> Result<Option<SourceRecord>> {
        self.db()
            .query_opt(
                "SELECT id, name, hash, head, size, lines, complete FROM sources WHERE tenant_id = $1 AND hash = $2",
                &[&tenant.id, &&hash[..]],
            )?
            .as_ref()
            .map(source_row)
            .transpose()
    }

    fn sources_with_head(
        &self,
        tenant: &Tenant,
        head: &[u8; 32],
        shorter_than: u64,
    ) -> Result<Vec<SourceRecord>> {
        self.db()
            .query(
                "SELECT id, name, hash, head, size, lines, complete FROM sources
                 WHERE tenant_id = $1 AND head = $2 AND size < $3 AND complete ORDER BY size DESC",
                &[&tenant.id, &&head[..], &(shorter_than as i64)],
            )?
            .iter()
            .map(source_row)
            .collect()
    }

    fn commit_batch(
        &mut self,
        tenant: &Tenant,
        batch: Batch,
        on_ledger: &mut LedgerHook<'_>,
    ) -> Result<BatchOutcome> {
        let result = batch::commit_batch(self, tenant, batch, on_ledger);
        if result.is_err() {
            self.forget_cached_ids();
        }
        result
    }

    fn upsert_indicators(
        &mut self,
        indicators: &mut dyn Iterator<Item = Indicator>,
        actor: &Actor,
    ) -> Result<IndicatorUpsert> {
        intel::upsert_indicators(self, indicators, actor)
    }

    fn indicators(&self) -> Result<Vec<StoredIndicator>> {
        intel::indicators(self, None)
    }

    fn scan_indicators(&self, each: &mut dyn FnMut(IndicatorRef<'_>)) -> Result<()> {
        intel::scan_indicators(self, each)
    }

    fn count_indicators(&self) -> Result<u64> {
        Ok(self
            .db()
            .query_one("SELECT count(*) FROM indicators", &[])?
            .try_get::<_, i64>(0)? as u64)
    }

    fn intel_key(&self) -> Result<u64> {
        let r = self
            .db()
            .query_one("SELECT nonce, generation FROM intel_state", &[])?;
        Ok(crate::rows::intel_key(r.try_get(0)?, r.try_get(1)?))
    }

    fn read_cache(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.db()
            .query_opt("SELECT bytes FROM derived_cache WHERE name = $1", &[&name])?
            .map(|r| Ok(r.try_get(0)?))
            .transpose()
    }

    fn write_cache(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.client.get_mut().execute(
            "INSERT INTO derived_cache (name, bytes, updated) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET bytes = excluded.bytes, updated = excluded.updated",
            &[&name, &bytes, &Time::now().0],
        )?;
        Ok(())
    }

    fn indicators_by_id(&self, ids: &[i64]) -> Result<Vec<StoredIndicator>> {
        intel::indicators(self, Some(ids))
    }

    fn upsert_advisories(&mut self, advisories: &[Advisory], actor: &Actor) -> Result<Vec<String>> {
        intel::upsert_advisories(self, advisories, actor)
    }

    fn advisories(&self) -> Result<Vec<Advisory>> {
        intel::advisories(self)
    }

    fn scan_observables(
        &self,
        tenant: &Tenant,
        kinds: &[ObservableKind],
        each: &mut dyn FnMut(i64, ObservableKind, &str),
    ) -> Result<()> {
        for kind in kinds {
            let rows = self.db().query(
                "SELECT id, value FROM observables WHERE tenant_id = $1 AND kind = $2",
                &[&tenant.id, &(*kind as i64)],
            )?;
            for r in &rows {
                each(r.try_get(0)?, *kind, r.try_get(1)?);
            }
        }
        Ok(())
    }

    fn sightings(&self, tenant: &Tenant, observable_ids: &[i64]) -> Result<Vec<Sighting>> {
        let rows = self.db().query(
            "SELECT s.observable_id, o.kind, o.value, e.name, s.first_seen, s.last_seen, s.count,
                    s.segment_id, s.frame_offset, s.frame_index, src.name
             FROM unnest($2::bigint[]) WITH ORDINALITY AS asked(id, ord)
             -- One primary-key range per id asked: a join the planner may
             -- turn into a scan of every sighting took minutes on 10 M.
             CROSS JOIN LATERAL (
                 SELECT * FROM sightings
                 WHERE tenant_id = $1 AND observable_id = asked.id
             ) s
             JOIN observables o ON o.id = s.observable_id AND o.tenant_id = s.tenant_id
             JOIN endpoints e ON e.id = s.endpoint_id AND e.tenant_id = s.tenant_id
             LEFT JOIN sources src ON src.id = s.source_id AND src.tenant_id = s.tenant_id
             ORDER BY asked.ord, s.endpoint_id, s.day",
            &[&tenant.id, &observable_ids],
        )?;
        rows.iter()
            .map(|r| {
                Ok(Sighting {
                    observable_id: r.try_get(0)?,
                    observable: Observable {
                        kind: observable_kind(r.try_get(1)?)?,
                        value: r.try_get(2)?,
                    },
                    endpoint: r.try_get(3)?,
                    first_seen: Time(r.try_get(4)?),
                    last_seen: Time(r.try_get(5)?),
                    count: r.try_get::<_, i64>(6)? as u64,
                    event: event_ref(r.try_get(7)?, r.try_get(8)?, r.try_get(9)?),
                    file: r.try_get(10)?,
                })
            })
            .collect()
    }

    fn ledger(&self, tenant: &Tenant, names: Option<&[String]>) -> Result<Vec<LedgerEntry>> {
        let base = "SELECT e.name, l.source, l.name, l.version, l.vendor, l.platform, l.ecosystem, l.installed, l.removed, l.file
                    FROM ledger l JOIN endpoints e ON e.id = l.endpoint_id AND e.tenant_id = l.tenant_id
                    WHERE l.tenant_id = $1";
        let mut out = Vec::new();
        match names {
            None => {
                let rows = self.db().query(
                    &format!("{base} ORDER BY e.name, l.installed, l.id"),
                    &[&tenant.id],
                )?;
                for r in &rows {
                    out.push(ledger_row(r)?);
                }
            }
            Some(names) => {
                for n in names {
                    let rows = self.db().query(
                        &format!("{base} AND l.name_norm = $2 ORDER BY e.name, l.installed, l.id"),
                        &[&tenant.id, &product_lookup_key(n)],
                    )?;
                    for r in &rows {
                        out.push(ledger_row(r)?);
                    }
                }
            }
        }
        Ok(out)
    }

    fn read_event(&self, tenant: &Tenant, at: EventRef) -> Result<Event> {
        let seg = self.db().query_opt(
            "SELECT tenant_id, hour, committed_len FROM segments WHERE id = $1",
            &[&at.segment],
        )?;
        let Some(seg) = seg else {
            return Err(StoreError::Corrupt(format!("no segment {}", at.segment)));
        };
        let (owner, hour, committed): (i64, i64, i64) =
            (seg.try_get(0)?, seg.try_get(1)?, seg.try_get(2)?);
        if owner != tenant.id {
            return Err(StoreError::OutOfScope(format!(
                "archive segment {}",
                at.segment
            )));
        }
        let offset = at.offset as i64;
        let frame = self.db().query_opt(
            "SELECT frame FROM archive_frames WHERE tenant_id = $1 AND hour = $2 AND frame_offset = $3 AND frame_offset < $4",
            &[&owner, &hour, &offset, &committed],
        )?;
        let Some(frame) = frame else {
            return Err(frame_err(owner, hour, offset, "no such frame".into()));
        };
        let mut raw = Vec::new();
        crate::archive::decompress_frame(frame.try_get::<_, &[u8]>(0)?, &mut raw)
            .and_then(|()| crate::archive::nth_event(&raw, at.index))
            .map_err(|e| frame_err(owner, hour, offset, e))
    }

    fn scan_archive(
        &self,
        tenant: &Tenant,
        since: Option<Time>,
        what: Projection<'_>,
        each: &mut dyn FnMut(Event),
    ) -> Result<()> {
        let from = since.map_or(i64::MIN, Time::hour);
        self.scan_segments(tenant, from, i64::MAX, what, each)
    }

    fn scan_hours(
        &self,
        tenant: &Tenant,
        from: Time,
        to: Time,
        what: Projection<'_>,
        each: &mut dyn FnMut(Event),
    ) -> Result<()> {
        self.scan_segments(tenant, from.hour(), to.hour(), what, each)
    }

    fn archive_span(&self, tenant: &Tenant) -> Result<Option<(Time, Time)>> {
        let r = self.db().query_one(
            "SELECT min(hour), max(hour) FROM segments WHERE tenant_id = $1",
            &[&tenant.id],
        )?;
        Ok(
            match (
                r.try_get::<_, Option<i64>>(0)?,
                r.try_get::<_, Option<i64>>(1)?,
            ) {
                (Some(a), Some(b)) => {
                    Some((Time(a * MICROS_PER_HOUR), Time((b + 1) * MICROS_PER_HOUR)))
                }
                _ => None,
            },
        )
    }

    fn record_findings(
        &mut self,
        tenant: &Tenant,
        findings: &[(Finding, Option<EventRef>)],
        mode: FindingMode,
    ) -> Result<FindingsOutcome> {
        alerts::record_findings(self, tenant, findings, mode, None)
    }

    fn record_findings_and_state(
        &mut self,
        tenant: &Tenant,
        findings: &[(Finding, Option<EventRef>)],
        mode: FindingMode,
        state: (&str, &[u8]),
    ) -> Result<FindingsOutcome> {
        alerts::record_findings(self, tenant, findings, mode, Some(state))
    }

    fn alerts(&self, scope: &Scope, filter: &AlertFilter) -> Result<Vec<Alert>> {
        alerts::alerts(self, scope, filter)
    }

    fn alert(&self, scope: &Scope, id: AlertId) -> Result<Option<Alert>> {
        alerts::alert(self, scope, id)
    }

    fn alert_counts(&self, scope: &Scope) -> Result<Vec<AlertCount>> {
        alerts::alert_counts(self, scope)
    }

    fn add_notify_target(
        &mut self,
        tenant: Option<&Tenant>,
        target: &NewNotifyTarget<'_>,
        actor: &Actor,
    ) -> Result<NotifyTarget> {
        notify::add_notify_target(self, tenant, target, actor)
    }

    fn notify_targets(&self, scope: &Scope) -> Result<Vec<NotifyTarget>> {
        notify::notify_targets(self, scope)
    }

    fn remove_notify_target(&mut self, scope: &Scope, id: i64, actor: &Actor) -> Result<()> {
        notify::remove_notify_target(self, scope, id, actor)
    }

    fn notify_secret(&self, id: i64) -> Result<Option<String>> {
        self.db()
            .query_opt("SELECT secret FROM notify_targets WHERE id = $1", &[&id])?
            .map(|r| Ok(r.try_get(0)?))
            .unwrap_or(Err(StoreError::NoSuchTarget(id)))
    }

    fn notify_changes(&self, target: &NotifyTarget, limit: usize) -> Result<NotifyChanges> {
        notify::notify_changes(self, target, limit)
    }

    fn enqueue_notifications(
        &mut self,
        target: i64,
        cursors: NotifyCursors,
        notifications: &[NewNotification],
        now: Time,
    ) -> Result<()> {
        notify::enqueue_notifications(self, target, cursors, notifications, now)
    }

    fn due_notifications(&self, now: Time) -> Result<Vec<Notification>> {
        notify::due_notifications(self, now)
    }

    fn record_delivery(&mut self, id: i64, delivery: &Delivery, now: Time) -> Result<()> {
        notify::record_delivery(self, id, delivery, now)
    }

    fn notifications(&self, scope: &Scope, dead: bool, limit: usize) -> Result<Vec<Notification>> {
        notify::notifications(self, scope, dead, limit)
    }

    fn add_taxii_feed(&mut self, feed: &NewTaxiiFeed<'_>, actor: &Actor) -> Result<TaxiiFeed> {
        intel::add_taxii_feed(self, feed, actor)
    }

    fn taxii_feeds(&self) -> Result<Vec<TaxiiFeed>> {
        intel::taxii_feeds(self)
    }

    fn taxii_feed_secret(&self, id: i64) -> Result<Option<String>> {
        self.db()
            .query_opt("SELECT secret FROM taxii_feeds WHERE id = $1", &[&id])?
            .map(|r| Ok(r.try_get(0)?))
            .unwrap_or(Err(StoreError::NoSuchFeed(id)))
    }

    fn remove_taxii_feed(&mut self, id: i64, actor: &Actor) -> Result<()> {
        intel::remove_taxii_feed(self, id, actor)
    }

    fn record_taxii_poll(
        &mut self,
        id: i64,
        added_after: Option<&str>,
        error: Option<&str>,
        at: Time,
    ) -> Result<()> {
        let changed = self.client.get_mut().execute(
            "UPDATE taxii_feeds SET added_after = coalesce($1, added_after), error = $2, polled = $3 WHERE id = $4",
            &[&added_after, &error, &at.0, &id],
        )?;
        if changed == 0 {
            return Err(StoreError::NoSuchFeed(id));
        }
        Ok(())
    }

    fn feeds(&self, scope: &Scope) -> Result<Vec<Feed>> {
        let mut feeds = Vec::new();
        for tenant in scope.members() {
            let rows = self.db().query(
                "SELECT e.name, f.logsource, f.hour, f.events, f.last_event, f.ingested
                 FROM feed_hours f JOIN endpoints e ON e.id = f.endpoint_id AND e.tenant_id = f.tenant_id
                 WHERE f.tenant_id = $1 ORDER BY e.name, f.logsource, f.hour DESC",
                &[&tenant.id],
            )?;
            let hours = rows.iter().map(|r| {
                Ok(FeedHour {
                    endpoint: r.try_get(0)?,
                    logsource: r.try_get(1)?,
                    hour: r.try_get(2)?,
                    events: r.try_get(3)?,
                    last_event: r.try_get(4)?,
                    ingested: r.try_get(5)?,
                })
            });
            feeds.extend(fold_feeds(&tenant.name, hours)?);
        }
        Ok(feeds)
    }

    fn alerts_page(&self, scope: &Scope, page: &AlertPage<'_>) -> Result<Vec<Alert>> {
        alerts::alerts_page(self, scope, page)
    }

    fn set_alert_status(
        &mut self,
        scope: &Scope,
        id: AlertId,
        status: AlertStatus,
        reason: Option<&str>,
        actor: &Actor,
    ) -> Result<()> {
        alerts::set_alert_status(self, scope, id, status, reason, actor)
    }

    fn assign_alert(
        &mut self,
        scope: &Scope,
        id: AlertId,
        assignee: Option<&str>,
        actor: &Actor,
    ) -> Result<()> {
        alerts::assign_alert(self, scope, id, assignee, actor)
    }

    fn comment_alert(
        &mut self,
        scope: &Scope,
        id: AlertId,
        text: &str,
        actor: &Actor,
    ) -> Result<()> {
        alerts::comment_alert(self, scope, id, text, actor)
    }

    fn alert_history(&self, scope: &Scope, id: AlertId) -> Result<Vec<AlertChange>> {
        alerts::alert_history(self, scope, id)
    }

    fn add_suppression(
        &mut self,
        tenant: Option<&Tenant>,
        new: &NewSuppression<'_>,
        actor: &Actor,
    ) -> Result<(Suppression, Vec<AlertId>)> {
        alerts::add_suppression(self, tenant, new, actor)
    }

    fn suppressions(&self, scope: &Scope) -> Result<Vec<Suppression>> {
        alerts::suppressions(self, scope)
    }

    fn remove_suppression(
        &mut self,
        scope: &Scope,
        id: i64,
        actor: &Actor,
    ) -> Result<Vec<AlertId>> {
        alerts::remove_suppression(self, scope, id, actor)
    }

    fn expire_suppressions(&mut self, now: Time) -> Result<Vec<AlertId>> {
        alerts::expire_suppressions(self, now)
    }

    fn rename_alert_source(
        &mut self,
        tenant: &Tenant,
        id: AlertId,
        source: &str,
        actor: &Actor,
    ) -> Result<()> {
        alerts::rename_alert_source(self, tenant, id, source, actor)
    }

    fn stats(&self, tenant: &Tenant) -> Result<TenantStats> {
        let r = self.db().query_one(
            "SELECT (SELECT count(*) FROM endpoints WHERE tenant_id = $1),
                    (SELECT coalesce(sum(events), 0)::bigint FROM segments WHERE tenant_id = $1),
                    (SELECT count(*) FROM sightings WHERE tenant_id = $1),
                    (SELECT count(*) FROM ledger WHERE tenant_id = $1),
                    (SELECT count(*) FROM alerts WHERE tenant_id = $1)",
            &[&tenant.id],
        )?;
        let n = |i: usize| -> Result<u64> { Ok(r.try_get::<_, i64>(i)? as u64) };
        Ok(TenantStats {
            endpoints: n(0)?,
            events: n(1)?,
            sightings: n(2)?,
            ledger_entries: n(3)?,
            alerts: n(4)?,
        })
    }

    fn upsert_rules(&mut self, rules: &[StoredRule], actor: &Actor) -> Result<Vec<String>> {
        intel::upsert_rules(self, rules, actor)
    }

    fn rules(&self) -> Result<Vec<StoredRule>> {
        intel::rules(self)
    }

    fn upsert_campaign(
        &mut self,
        kind: AlertKind,
        source: &str,
        title: &str,
        members: &[AlertId],
        actor: &Actor,
    ) -> Result<CampaignUpserted> {
        alerts::upsert_campaign(self, kind, source, title, members, actor)
    }

    fn campaigns(&self, scope: &Scope) -> Result<Vec<CampaignAlert>> {
        alerts::campaigns(self, scope)
    }

    fn add_allow(
        &mut self,
        tenant: Option<&Tenant>,
        entry: &NewAllowEntry<'_>,
        closes: &[AlertId],
        actor: &Actor,
    ) -> Result<AllowAdded> {
        access::add_allow(self, tenant, entry, closes, actor)
    }

    fn allowlist(&self, scope: &Scope) -> Result<Vec<AllowEntry>> {
        access::allowlist(self, scope)
    }

    fn remove_allow(&mut self, scope: &Scope, id: i64, actor: &Actor) -> Result<()> {
        access::remove_entry(self, crate::rows::Entries::Allowlist, scope, id, actor)
    }

    fn add_internal_network(
        &mut self,
        tenant: Option<&Tenant>,
        cidr: &str,
        note: &str,
        actor: &Actor,
    ) -> Result<i64> {
        access::add_internal_network(self, tenant, cidr, note, actor)
    }

    fn internal_networks(&self, scope: &Scope) -> Result<Vec<InternalNetwork>> {
        access::internal_networks(self, scope)
    }

    fn remove_internal_network(&mut self, scope: &Scope, id: i64, actor: &Actor) -> Result<()> {
        access::remove_entry(
            self,
            crate::rows::Entries::InternalNetworks,
            scope,
            id,
            actor,
        )
    }

    fn pending_work(&self) -> Result<Vec<DueWork>> {
        let rows = self.db().query(
            "SELECT tenant_id, work FROM pending_work ORDER BY tenant_id, work",
            &[],
        )?;
        let tenants = self.tenants()?;
        rows.iter()
            .map(|r| {
                let (tid, work): (i64, &str) = (r.try_get(0)?, r.try_get(1)?);
                let tenant = tenants.iter().find(|t| t.id == tid).cloned();
                match (tenant, PendingWork::parse(work)) {
                    (Some(tenant), Some(work)) => Ok(DueWork { tenant, work }),
                    _ => Err(StoreError::Corrupt(format!(
                        "pending work {work:?} for tenant {tid}"
                    ))),
                }
            })
            .collect()
    }

    fn finish_work(&mut self, tenant: &Tenant, work: PendingWork) -> Result<()> {
        self.client.get_mut().execute(
            "DELETE FROM pending_work WHERE tenant_id = $1 AND work = $2",
            &[&tenant.id, &work.as_str()],
        )?;
        Ok(())
    }

    fn stream_state(&self, tenant: &Tenant, name: &str) -> Result<Option<Vec<u8>>> {
        self.db()
            .query_opt(
                "SELECT state FROM stream_state WHERE tenant_id = $1 AND name = $2",
                &[&tenant.id, &name],
            )?
            .map(|r| Ok(r.try_get(0)?))
            .transpose()
    }

    fn audit(
        &mut self,
        actor: &Actor,
        tenant: Option<&Tenant>,
        action: &str,
        detail: &str,
    ) -> Result<()> {
        let mut tx = self.client.get_mut().transaction()?;
        audit_tx(&mut tx, actor, tenant.map(|t| t.id), action, detail)?;
        tx.commit()?;
        Ok(())
    }

    fn audit_log(&self, scope: &Scope, limit: usize) -> Result<Vec<AuditEntry>> {
        access::audit_log(self, scope, limit)
    }

    fn last_audited(&self, scope: &Scope, prefix: &str) -> Result<Option<Time>> {
        let rows = self.db().query(
            "SELECT tenant_id, max(time) FROM audit WHERE starts_with(action, $1) GROUP BY tenant_id",
            &[&prefix],
        )?;
        let mut last: Option<Time> = None;
        for r in &rows {
            let tenant: Option<i64> = r.try_get(0)?;
            if tenant.is_none_or(|t| scope.contains(t)) {
                last = last.max(Some(Time(r.try_get(1)?)));
            }
        }
        Ok(last)
    }

    fn is_alive(&self) -> bool {
        self.client.try_borrow_mut().is_ok_and(|mut c| {
            !c.is_closed() && c.is_valid(std::time::Duration::from_secs(5)).is_ok()
        })
    }

    fn add_user(&mut self, user: &NewUser<'_>, actor: &Actor) -> Result<User> {
        access::add_user(self, user, actor)
    }

    fn users(&self) -> Result<Vec<User>> {
        access::users(self, None)
    }

    fn user(&self, name: &str) -> Result<Option<User>> {
        Ok(access::users(self, Some(name))?.pop())
    }

    fn password_hash(&self, name: &str) -> Result<Option<String>> {
        self.db()
            .query_opt(
                "SELECT password_hash FROM users WHERE lower(name) = lower($1)",
                &[&name],
            )?
            .map(|r| Ok(r.try_get(0)?))
            .transpose()
    }

    fn add_token(&mut self, token: &NewToken<'_>, actor: &Actor) -> Result<Token> {
        access::add_token(self, token, actor)
    }

    fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<Token>> {
        access::token_by_hash(self, hash)
    }

    fn tokens(&self) -> Result<Vec<Token>> {
        access::tokens(self)
    }

    fn revoke_token(&mut self, id: i64, actor: &Actor) -> Result<Token> {
        access::revoke_token(self, id, actor)
    }
}
