//! The embedded backend: SQLite in WAL mode plus the file archive, in one
//! data directory.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use turncoat_core::advisory::product_lookup_key;
use turncoat_core::indicator::Condition;
use turncoat_core::time::MICROS_PER_HOUR;
use turncoat_core::{
    Actor, Advisory, AlertId, AlertKind, AlertStatus, Event, Evidence, FastHashMap, Finding,
    Indicator, IndicatorKind, IndicatorRef, InventoryItem, Observable, ObservableKind, Platform,
    TenantName, Time,
};

mod access;
mod alerts;
mod audit;
mod batch;
mod campaigns;
mod entries;
mod feeds;
mod intel;
mod ledger;
mod notify;
mod suppressions;

use alerts::record_findings_tx;
use audit::audit_tx;
use batch::endpoint_id;
use ledger::{SqliteLedger, ledger_row};

use crate::Projection;
use crate::archive::Archive;
use crate::lock::{LockWait, WriterLock};
use crate::rows::{
    FeedHour, entry_tenant, fold_feeds, json_err, observable_kind, parse, severity_from_rank,
    severity_rank, tenant_row,
};
use crate::schema::{MIGRATIONS, Migration};
use crate::{
    Address, Alert, AlertAction, AlertChange, AlertCount, AlertFilter, AlertOrder, AlertPage,
    AllowAdded, AllowEntry, AuditEntry, Batch, BatchOutcome, CampaignAlert, CampaignUpserted,
    DueWork, EventRef, Feed, FindingMode, FindingsOutcome, IndicatorUpsert, InternalNetwork,
    LedgerEntry, LedgerHook, NewAllowEntry, NewSuppression, NewTaxiiFeed, NewToken, NewTokenOwner,
    NewUser, PendingWork, Result, Scope, Sighting, SourceFingerprint, SourceRecord, Store,
    StoreError, StoredIndicator, StoredRule, Suppression, TaxiiFeed, Tenant, TenantStats, Token,
    User,
};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            // Which file is for the store to say: see `SqliteStore::named`.
            return StoreError::DiskFull { file: None };
        }
        StoreError::Database(Box::new(e))
    }
}

/// Commits `tx`, naming the database file in `dir` if the disk is full:
/// the commit is where SQLite finds out.
fn commit(tx: Transaction<'_>, dir: &Path) -> Result<()> {
    tx.commit()
        .map_err(|e| StoreError::from(e).in_file(&dir.join(DATABASE)))
}

/// SQLite database plus archive in one data directory.
///
/// Opened as a writer ([`SqliteStore::open_writer`]) it holds the data
/// directory's [`WriterLock`] until dropped; opened as a reader
/// ([`SqliteStore::open_reader`]) its connection is read-only.
pub struct SqliteStore {
    conn: Connection,
    dir: PathBuf,
    archive: Archive,
    /// Observable and endpoint ids by name; cleared when a commit fails,
    /// since ids handed out inside a rolled-back transaction are void.
    observable_ids: IdCache,
    endpoint_ids: IdCache,
    /// Held by a writer for as long as it is open; `None` for a reader.
    _lock: Option<WriterLock>,
}

/// The database file inside a data directory.
const DATABASE: &str = "turncoat.db";

/// Where derived data ([`Store::write_cache`]) is kept in a data directory.
const CACHE_DIR: &str = "cache";

/// How long a writer waits for another by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a statement waits for SQLite's own locks (a reader's brief
/// lock while it recovers the WAL index, a migration) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// SQLite's busy handler: waits, saying so once on stderr, up to
/// [`BUSY_TIMEOUT`]; `database is locked` surfaces only after that.
fn wait_while_busy(attempt: i32) -> bool {
    const PAUSE: Duration = Duration::from_millis(20);
    if attempt == 0 {
        eprintln!(
            "turncoat: the database is busy (another process holds a lock); waiting up to {} s",
            BUSY_TIMEOUT.as_secs()
        );
    }
    if PAUSE * attempt.max(0) as u32 >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(PAUSE);
    true
}

/// Cached ids beyond this are dropped rather than grown without bound.
const MAX_CACHED_IDS: usize = 2_000_000;

/// Ids by (tenant, kind) and name, looked up by `&str` without building
/// an owned key on the hot path.
#[derive(Default)]
struct IdCache {
    maps: FastHashMap<(i64, u8), FastHashMap<String, i64>>,
    len: usize,
    /// Tenants whose every row is in the cache (the cache was filled from
    /// an empty table): a miss is a new row, so it can be inserted without
    /// a search first. Forgotten with the cache.
    complete: Vec<i64>,
}

impl IdCache {
    fn get(&self, tenant: i64, kind: u8, name: &str) -> Option<i64> {
        self.maps.get(&(tenant, kind))?.get(name).copied()
    }

    fn insert(&mut self, tenant: i64, kind: u8, name: &str, id: i64) {
        if self.len >= MAX_CACHED_IDS {
            self.clear();
        }
        if self
            .maps
            .entry((tenant, kind))
            .or_default()
            .insert(name.to_owned(), id)
            .is_none()
        {
            self.len += 1;
        }
    }

    fn clear(&mut self) {
        self.maps.clear();
        self.len = 0;
        self.complete.clear();
    }

    fn is_complete(&self, tenant: i64) -> bool {
        self.complete.contains(&tenant)
    }

    fn set_complete(&mut self, tenant: i64) {
        if !self.is_complete(tenant) {
            self.complete.push(tenant);
        }
    }
}

/// The [`IdCache`] kind of endpoint names (observable kinds are 0..7).
const ENDPOINT: u8 = u8::MAX;

impl SqliteStore {
    /// Opens `dir` as a writer, waiting up to [`DEFAULT_LOCK_TIMEOUT`]
    /// for another writer to finish, silently: for tests, benchmarks and
    /// the demo, which own their data directories.
    pub fn open(dir: &Path) -> Result<SqliteStore> {
        SqliteStore::open_writer(
            dir,
            &mut LockWait {
                timeout: DEFAULT_LOCK_TIMEOUT,
                purpose: "turncoat",
                on_wait: &mut |_, _| {},
            },
        )
    }

    /// Opens (creating when needed) the store in `dir` for writing: takes
    /// its writer lock, migrates it, and cuts archive segments back to
    /// their committed lengths (which only the lock holder may do: another
    /// writer's uncommitted frames would be cut from under it).
    pub fn open_writer(dir: &Path, wait: &mut LockWait<'_>) -> Result<SqliteStore> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::File {
            path: dir.display().to_string(),
            source,
        })?;
        let lock = WriterLock::acquire(dir, wait)?;
        let conn = Connection::open(dir.join(DATABASE))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // A batch dirties pages all over the sightings tree; checkpointing
        // every 64 MB of WAL instead of every 4 MB copies a page rewritten by
        // several batches into the database once, not once per batch.
        conn.pragma_update(None, "wal_autocheckpoint", 16_384)?;
        let mut store = SqliteStore::with_connection(conn, dir, Some(lock))?;
        store.migrate()?;
        store.recover_archive()?;
        Ok(store)
    }

    /// Whether `dir` holds a store.
    pub fn exists(dir: &Path) -> bool {
        dir.join(DATABASE).is_file()
    }

    /// Opens the existing store in `dir` for reading, without a lock:
    /// readers see the last committed state. A store whose schema is
    /// older than this build is migrated first, under the writer lock.
    pub fn open_reader(dir: &Path) -> Result<SqliteStore> {
        let path = dir.join(DATABASE);
        if !SqliteStore::exists(dir) {
            return Err(StoreError::NoStore(dir.display().to_string()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version < MIGRATIONS.len() as i64 {
            drop(conn);
            drop(SqliteStore::open(dir)?);
            return SqliteStore::open_reader(dir);
        }
        let store = SqliteStore::with_connection(conn, dir, None)?;
        store.check_schema()?;
        Ok(store)
    }

    fn with_connection(
        conn: Connection,
        dir: &Path,
        lock: Option<WriterLock>,
    ) -> Result<SqliteStore> {
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        conn.pragma_update(None, "cache_size", -64_000)?;
        conn.busy_handler(Some(wait_while_busy))?;
        Ok(SqliteStore {
            conn,
            dir: dir.to_owned(),
            archive: Archive::new(dir.join("archive"))?,
            observable_ids: IdCache::default(),
            endpoint_ids: IdCache::default(),
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The schema version the data directory is at.
    pub fn schema_version(&self) -> Result<i64> {
        self.check_schema()
    }

    /// The schema version, refused when newer than this build knows.
    fn check_schema(&self) -> Result<i64> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::SchemaTooNew {
                found: version,
                known,
            });
        }
        Ok(version)
    }

    fn migrate(&mut self) -> Result<()> {
        let version = self.check_schema()?;
        for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction()?;
            match step {
                Migration::Sql(sql) => tx.execute_batch(sql)?,
                Migration::Rust(run) => run(&tx)?,
            }
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            commit(tx, &self.dir)?;
        }
        Ok(())
    }

    fn recover_archive(&mut self) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare("SELECT tenant_id, hour, committed_len FROM segments")?;
        let rows: Vec<(i64, i64, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<std::result::Result<_, _>>()?;
        for (tenant, hour, len) in rows {
            self.archive.truncate(tenant, hour, len as u64)?;
        }
        Ok(())
    }

    /// Bytes the store takes on disk: database, WAL and archive.
    pub fn disk_usage(&self) -> u64 {
        fn walk(p: &Path) -> u64 {
            match std::fs::metadata(p) {
                Ok(m) if m.is_dir() => std::fs::read_dir(p)
                    .map(|d| d.filter_map(|e| e.ok()).map(|e| walk(&e.path())).sum())
                    .unwrap_or(0),
                Ok(m) => m.len(),
                Err(_) => 0,
            }
        }
        walk(&self.dir)
    }

    fn forget_cached_ids(&mut self) {
        self.observable_ids.clear();
        self.endpoint_ids.clear();
    }
}

impl SqliteStore {
    fn cache_path(&self, name: &str) -> PathBuf {
        self.dir.join(CACHE_DIR).join(name)
    }
}

/// Replaces a tenant's stream state inside a transaction.
fn set_stream_state_tx(tx: &Transaction<'_>, tenant: i64, name: &str, state: &[u8]) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO stream_state (tenant_id, name, state, updated) VALUES (?, ?, ?, ?)
         ON CONFLICT (tenant_id, name) DO UPDATE SET state = excluded.state, updated = excluded.updated",
    )?
    .execute(params![tenant, name, state, Time::now().0])?;
    Ok(())
}

/// A text column that may be NULL, borrowed from its row.
fn text_column(v: rusqlite::types::ValueRef<'_>) -> Result<Option<&str>> {
    match v {
        rusqlite::types::ValueRef::Null => Ok(None),
        v => v
            .as_str()
            .map(Some)
            .map_err(|e| StoreError::CorruptValue(Box::new(e))),
    }
}

impl SqliteStore {
    /// The tenant's archived events of the hours `from_hour..=to_hour`.
    fn scan_segments(
        &self,
        tenant: &Tenant,
        from_hour: i64,
        to_hour: i64,
        what: Projection<'_>,
        each: &mut dyn FnMut(Event),
    ) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT hour, committed_len FROM segments
             WHERE tenant_id = ? AND hour >= ? AND hour <= ? ORDER BY hour",
        )?;
        let segs: Vec<(i64, i64)> = stmt
            .query_map(params![tenant.id, from_hour, to_hour], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<std::result::Result<_, _>>()?;
        let mut raw = Vec::new();
        for (hour, len) in segs {
            self.archive
                .read_segment(tenant.id, hour, len as u64, &mut raw, what, each)?;
        }
        Ok(())
    }
}

impl Store for SqliteStore {
    fn add_tenant(&mut self, name: &TenantName, actor: &Actor) -> Result<Tenant> {
        let tx = self.conn.transaction()?;
        let now = Time::now();
        // Names are ASCII (TenantName), which NOCASE folds exactly.
        let existing: Option<String> = tx
            .query_row(
                "SELECT name FROM tenants WHERE name = ? COLLATE NOCASE LIMIT 1",
                [name.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(existing) = existing {
            return Err(StoreError::TenantExists {
                asked: name.to_string(),
                existing,
            });
        }
        tx.execute(
            "INSERT INTO tenants (name, created) VALUES (?, ?)",
            params![name.as_str(), now.0],
        )?;
        let id = tx.last_insert_rowid();
        audit_tx(&tx, actor, Some(id), "tenant.add", name.as_str())?;
        commit(tx, &self.dir)?;
        Ok(Tenant {
            id,
            name: name.clone(),
            created: now,
        })
    }

    fn tenants(&self) -> Result<Vec<Tenant>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, name, created FROM tenants ORDER BY name COLLATE NOCASE, name")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(tenant_row(
                r.get(0)?,
                r.get_ref(1)?.as_str().unwrap_or(""),
                r.get(2)?,
            )?);
        }
        Ok(out)
    }

    fn tenant(&self, name: &str) -> Result<Option<Tenant>> {
        Ok(self
            .tenants()?
            .into_iter()
            .find(|t| t.name.as_str() == name))
    }

    fn addresses(&self, tenant: &Tenant) -> Result<Vec<Address>> {
        let mut stmt = self
            .conn
            .prepare("SELECT ip, host FROM addresses WHERE tenant_id = ?")?;
        let rows = stmt.query_map([tenant.id], |r| {
            Ok(Address {
                ip: r.get(0)?,
                host: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    fn source(&self, tenant: &Tenant, hash: &[u8; 32]) -> Result<Option<SourceRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, name, hash, head, size, lines, complete FROM sources WHERE tenant_id = ? AND hash = ?",
        )?;
        Ok(stmt
            .query_row(params![tenant.id, &hash[..]], source_row)
            .optional()?)
    }

    fn sources_with_head(
        &self,
        tenant: &Tenant,
        head: &[u8; 32],
        shorter_than: u64,
    ) -> Result<Vec<SourceRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, name, hash, head, size, lines, complete FROM sources
             WHERE tenant_id = ? AND head = ? AND size < ? AND complete = 1 ORDER BY size DESC",
        )?;
        let rows = stmt.query_map(
            params![tenant.id, &head[..], shorter_than as i64],
            source_row,
        )?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    fn commit_batch(
        &mut self,
        tenant: &Tenant,
        batch: Batch,
        on_ledger: &mut LedgerHook<'_>,
    ) -> Result<BatchOutcome> {
        let result = self.commit_batch_inner(tenant, batch, on_ledger);
        if result.is_err() {
            self.forget_cached_ids();
        }
        result.map_err(|e| e.in_file(&self.dir.join(DATABASE)))
    }

    fn upsert_indicators(
        &mut self,
        indicators: &mut dyn Iterator<Item = Indicator>,
        actor: &Actor,
    ) -> Result<IndicatorUpsert> {
        intel::upsert_indicators(self, indicators, actor)
    }

    fn indicators(&self) -> Result<Vec<StoredIndicator>> {
        intel::indicators(self)
    }

    fn scan_indicators(&self, each: &mut dyn FnMut(IndicatorRef<'_>)) -> Result<()> {
        intel::scan_indicators(self, each)
    }

    fn intel_key(&self) -> Result<u64> {
        intel::intel_key(self)
    }

    fn read_cache(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.cache_path(name);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::File {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    fn write_cache(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        if self._lock.is_none() {
            return Err(StoreError::ReadOnly);
        }
        let path = self.cache_path(name);
        let failed = |source: std::io::Error| StoreError::File {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(self.dir.join(CACHE_DIR)).map_err(failed)?;
        // Written beside and renamed over: a reader sees the old file or
        // the new one, never part of one.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, bytes).map_err(failed)?;
        std::fs::rename(&partial, &path).map_err(failed)?;
        Ok(())
    }

    fn count_indicators(&self) -> Result<u64> {
        intel::count_indicators(self)
    }

    fn indicators_by_id(&self, ids: &[i64]) -> Result<Vec<StoredIndicator>> {
        intel::indicators_by_id(self, ids)
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
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, value FROM observables WHERE tenant_id = ? AND kind = ?")?;
        for kind in kinds {
            let mut rows = stmt.query(params![tenant.id, *kind as u8])?;
            while let Some(row) = rows.next()? {
                let value = row
                    .get_ref(1)?
                    .as_str()
                    .map_err(|e| StoreError::CorruptValue(Box::new(e)))?;
                each(row.get(0)?, *kind, value);
            }
        }
        Ok(())
    }

    fn sightings(&self, tenant: &Tenant, observable_ids: &[i64]) -> Result<Vec<Sighting>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.observable_id, o.kind, o.value, e.name, s.first_seen, s.last_seen, s.count,
                    s.segment_id, s.frame_offset, s.frame_index, src.name
             FROM sightings s
             JOIN observables o ON o.id = s.observable_id AND o.tenant_id = s.tenant_id
             JOIN endpoints e ON e.id = s.endpoint_id AND e.tenant_id = s.tenant_id
             LEFT JOIN sources src ON src.id = s.source_id AND src.tenant_id = s.tenant_id
             WHERE s.tenant_id = ? AND s.observable_id = ?",
        )?;
        let mut out = Vec::new();
        for id in observable_ids {
            let rows = stmt.query_map(params![tenant.id, id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                    r.get::<_, Option<i64>>(8)?,
                    r.get::<_, Option<i64>>(9)?,
                    r.get::<_, Option<String>>(10)?,
                ))
            })?;
            for row in rows {
                let (oid, kind, value, endpoint, first, last, count, seg, off, idx, file) = row?;
                out.push(Sighting {
                    observable_id: oid,
                    observable: Observable {
                        kind: observable_kind(kind)?,
                        value,
                    },
                    endpoint,
                    first_seen: Time(first),
                    last_seen: Time(last),
                    count: count as u64,
                    event: crate::rows::event_ref(seg, off, idx),
                    file,
                });
            }
        }
        Ok(out)
    }

    fn ledger(&self, tenant: &Tenant, names: Option<&[String]>) -> Result<Vec<LedgerEntry>> {
        let base = "SELECT e.name, l.source, l.name, l.version, l.vendor, l.platform, l.ecosystem, l.installed, l.removed, l.file
                    FROM ledger l JOIN endpoints e ON e.id = l.endpoint_id AND e.tenant_id = l.tenant_id
                    WHERE l.tenant_id = ?";
        let mut out = Vec::new();
        match names {
            None => {
                let mut stmt = self
                    .conn
                    .prepare(&format!("{base} ORDER BY e.name, l.installed, l.id"))?;
                let mut rows = stmt.query([tenant.id])?;
                while let Some(r) = rows.next()? {
                    out.push(ledger_row(r)?);
                }
            }
            Some(names) => {
                let mut stmt = self.conn.prepare_cached(&format!(
                    "{base} AND l.name_norm = ? ORDER BY e.name, l.installed, l.id"
                ))?;
                for n in names {
                    let mut rows = stmt.query(params![tenant.id, product_lookup_key(n)])?;
                    while let Some(r) = rows.next()? {
                        out.push(ledger_row(r)?);
                    }
                }
            }
        }
        Ok(out)
    }

    fn scan_archive(
        &self,
        tenant: &Tenant,
        since: Option<Time>,
        what: Projection<'_>,
        each: &mut dyn FnMut(Event),
    ) -> Result<()> {
        self.scan_segments(
            tenant,
            since.map_or(i64::MIN, Time::hour),
            i64::MAX,
            what,
            each,
        )
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
        let span: (Option<i64>, Option<i64>) = self.conn.query_row(
            "SELECT min(hour), max(hour) FROM segments WHERE tenant_id = ?",
            [tenant.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(match span {
            (Some(a), Some(b)) => {
                Some((Time(a * MICROS_PER_HOUR), Time((b + 1) * MICROS_PER_HOUR)))
            }
            _ => None,
        })
    }

    fn read_event(&self, tenant: &Tenant, at: EventRef) -> Result<Event> {
        let seg: Option<(i64, i64, i64)> = self
            .conn
            .prepare_cached("SELECT tenant_id, hour, committed_len FROM segments WHERE id = ?")?
            .query_row([at.segment], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let Some((owner, hour, len)) = seg else {
            return Err(StoreError::Corrupt(format!("no segment {}", at.segment)));
        };
        if owner != tenant.id {
            return Err(StoreError::OutOfScope(format!(
                "archive segment {}",
                at.segment
            )));
        }
        self.archive
            .read_event(owner, hour, at.offset, len as u64, at.index)
    }

    fn record_findings(
        &mut self,
        tenant: &Tenant,
        findings: &[(Finding, Option<EventRef>)],
        mode: FindingMode,
    ) -> Result<FindingsOutcome> {
        self.record_findings_with(tenant, findings, mode, None)
    }

    fn record_findings_and_state(
        &mut self,
        tenant: &Tenant,
        findings: &[(Finding, Option<EventRef>)],
        mode: FindingMode,
        state: (&str, &[u8]),
    ) -> Result<FindingsOutcome> {
        self.record_findings_with(tenant, findings, mode, Some(state))
    }

    fn alerts_page(&self, scope: &Scope, page: &AlertPage<'_>) -> Result<Vec<Alert>> {
        alerts::alerts_page(self, scope, page)
    }

    fn alerts(&self, scope: &Scope, filter: &AlertFilter) -> Result<Vec<Alert>> {
        alerts::alerts(self, scope, filter)
    }

    fn alert_counts(&self, scope: &Scope) -> Result<Vec<AlertCount>> {
        alerts::alert_counts(self, scope)
    }

    fn add_notify_target(
        &mut self,
        tenant: Option<&Tenant>,
        target: &crate::NewNotifyTarget<'_>,
        actor: &Actor,
    ) -> Result<crate::NotifyTarget> {
        notify::add_notify_target(self, tenant, target, actor)
    }

    fn notify_targets(&self, scope: &Scope) -> Result<Vec<crate::NotifyTarget>> {
        notify::notify_targets(self, scope)
    }

    fn remove_notify_target(&mut self, scope: &Scope, id: i64, actor: &Actor) -> Result<()> {
        notify::remove_notify_target(self, scope, id, actor)
    }

    fn notify_secret(&self, id: i64) -> Result<Option<String>> {
        notify::notify_secret(self, id)
    }

    fn notify_changes(
        &self,
        target: &crate::NotifyTarget,
        limit: usize,
    ) -> Result<crate::NotifyChanges> {
        notify::notify_changes(self, target, limit)
    }

    fn enqueue_notifications(
        &mut self,
        target: i64,
        cursors: crate::NotifyCursors,
        notifications: &[crate::NewNotification],
        now: Time,
    ) -> Result<()> {
        notify::enqueue_notifications(self, target, cursors, notifications, now)
    }

    fn due_notifications(&self, now: Time) -> Result<Vec<crate::Notification>> {
        notify::due_notifications(self, now)
    }

    fn record_delivery(&mut self, id: i64, delivery: &crate::Delivery, now: Time) -> Result<()> {
        notify::record_delivery(self, id, delivery, now)
    }

    fn notifications(
        &self,
        scope: &Scope,
        dead: bool,
        limit: usize,
    ) -> Result<Vec<crate::Notification>> {
        notify::notifications(self, scope, dead, limit)
    }

    fn add_taxii_feed(&mut self, feed: &NewTaxiiFeed<'_>, actor: &Actor) -> Result<TaxiiFeed> {
        feeds::add_taxii_feed(self, feed, actor)
    }

    fn taxii_feeds(&self) -> Result<Vec<TaxiiFeed>> {
        feeds::taxii_feeds(self)
    }

    fn taxii_feed_secret(&self, id: i64) -> Result<Option<String>> {
        feeds::taxii_feed_secret(self, id)
    }

    fn remove_taxii_feed(&mut self, id: i64, actor: &Actor) -> Result<()> {
        feeds::remove_taxii_feed(self, id, actor)
    }

    fn record_taxii_poll(
        &mut self,
        id: i64,
        added_after: Option<&str>,
        error: Option<&str>,
        at: Time,
    ) -> Result<()> {
        feeds::record_taxii_poll(self, id, added_after, error, at)
    }

    fn feeds(&self, scope: &Scope) -> Result<Vec<Feed>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.name, f.logsource, f.hour, f.events, f.last_event, f.ingested
             FROM feed_hours f JOIN endpoints e ON e.id = f.endpoint_id AND e.tenant_id = f.tenant_id
             WHERE f.tenant_id = ? ORDER BY e.name, f.logsource, f.hour DESC",
        )?;
        let mut feeds = Vec::new();
        for tenant in scope.members() {
            let rows = stmt.query_map([tenant.id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })?;
            let hours = rows.map(|row| {
                let (endpoint, logsource, hour, events, last_event, ingested) = row?;
                Ok(FeedHour {
                    endpoint,
                    logsource,
                    hour,
                    events,
                    last_event,
                    ingested,
                })
            });
            feeds.extend(fold_feeds(&tenant.name, hours)?);
        }
        Ok(feeds)
    }

    fn alert(&self, scope: &Scope, id: AlertId) -> Result<Option<Alert>> {
        alerts::alert(self, scope, id)
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
        suppressions::add_suppression(self, tenant, new, actor)
    }

    fn suppressions(&self, scope: &Scope) -> Result<Vec<Suppression>> {
        suppressions::suppressions(self, scope)
    }

    fn remove_suppression(
        &mut self,
        scope: &Scope,
        id: i64,
        actor: &Actor,
    ) -> Result<Vec<AlertId>> {
        suppressions::remove_suppression(self, scope, id, actor)
    }

    fn expire_suppressions(&mut self, now: Time) -> Result<Vec<AlertId>> {
        suppressions::expire_suppressions(self, now)
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
        let count = |sql: &str| -> Result<u64> {
            Ok(self
                .conn
                .query_row(sql, [tenant.id], |r| r.get::<_, i64>(0))? as u64)
        };
        Ok(TenantStats {
            endpoints: count("SELECT count(*) FROM endpoints WHERE tenant_id = ?")?,
            events: count("SELECT coalesce(sum(events), 0) FROM segments WHERE tenant_id = ?")?,
            sightings: count("SELECT count(*) FROM sightings WHERE tenant_id = ?")?,
            ledger_entries: count("SELECT count(*) FROM ledger WHERE tenant_id = ?")?,
            alerts: count("SELECT count(*) FROM alerts WHERE tenant_id = ?")?,
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
        campaigns::upsert_campaign(self, kind, source, title, members, actor)
    }

    fn campaigns(&self, scope: &Scope) -> Result<Vec<CampaignAlert>> {
        campaigns::campaigns(self, scope)
    }

    fn pending_work(&self) -> Result<Vec<DueWork>> {
        let rows: Vec<(i64, String)> = self
            .conn
            .prepare("SELECT tenant_id, work FROM pending_work ORDER BY tenant_id, work")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let tenants = self.tenants()?;
        rows.into_iter()
            .map(|(tid, work)| {
                let tenant = tenants.iter().find(|t| t.id == tid).cloned();
                match (tenant, PendingWork::parse(&work)) {
                    (Some(tenant), Some(work)) => Ok(DueWork { tenant, work }),
                    _ => Err(StoreError::Corrupt(format!(
                        "pending work {work:?} for tenant {tid}"
                    ))),
                }
            })
            .collect()
    }

    fn finish_work(&mut self, tenant: &Tenant, work: PendingWork) -> Result<()> {
        self.conn.execute(
            "DELETE FROM pending_work WHERE tenant_id = ? AND work = ?",
            params![tenant.id, work.as_str()],
        )?;
        Ok(())
    }

    fn stream_state(&self, tenant: &Tenant, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT state FROM stream_state WHERE tenant_id = ? AND name = ?",
                params![tenant.id, name],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn add_allow(
        &mut self,
        tenant: Option<&Tenant>,
        entry: &NewAllowEntry<'_>,
        closes: &[AlertId],
        actor: &Actor,
    ) -> Result<AllowAdded> {
        entries::add_allow(self, tenant, entry, closes, actor)
    }

    fn allowlist(&self, scope: &Scope) -> Result<Vec<AllowEntry>> {
        entries::allowlist(self, scope)
    }

    fn remove_allow(&mut self, scope: &Scope, id: i64, actor: &Actor) -> Result<()> {
        entries::remove_allow(self, scope, id, actor)
    }

    fn add_internal_network(
        &mut self,
        tenant: Option<&Tenant>,
        cidr: &str,
        note: &str,
        actor: &Actor,
    ) -> Result<i64> {
        entries::add_internal_network(self, tenant, cidr, note, actor)
    }

    fn internal_networks(&self, scope: &Scope) -> Result<Vec<InternalNetwork>> {
        entries::internal_networks(self, scope)
    }

    fn remove_internal_network(&mut self, scope: &Scope, id: i64, actor: &Actor) -> Result<()> {
        entries::remove_internal_network(self, scope, id, actor)
    }

    fn audit(
        &mut self,
        actor: &Actor,
        tenant: Option<&Tenant>,
        action: &str,
        detail: &str,
    ) -> Result<()> {
        audit::audit(self, actor, tenant, action, detail)
    }

    fn last_audited(&self, scope: &Scope, prefix: &str) -> Result<Option<Time>> {
        audit::last_audited(self, scope, prefix)
    }

    fn audit_log(&self, scope: &Scope, limit: usize) -> Result<Vec<AuditEntry>> {
        audit::audit_log(self, scope, limit)
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
        access::password_hash(self, name)
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

/// A stored text column that does not parse as its type.
fn bad_column(col: usize, e: StoreError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e))
}

fn source_row(r: &rusqlite::Row) -> rusqlite::Result<SourceRecord> {
    let hash: Vec<u8> = r.get(2)?;
    let head: Vec<u8> = r.get(3)?;
    let arr = |v: &[u8]| {
        let mut a = [0u8; 32];
        a.copy_from_slice(&v[..32.min(v.len())]);
        a
    };
    Ok(SourceRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        fingerprint: SourceFingerprint {
            hash: arr(&hash),
            head: arr(&head),
            size: r.get::<_, i64>(4)? as u64,
        },
        lines: r.get::<_, i64>(5)? as u64,
        complete: r.get::<_, i64>(6)? != 0,
    })
}
