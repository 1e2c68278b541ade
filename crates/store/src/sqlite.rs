//! The embedded backend: SQLite in WAL mode plus the file archive, in one
//! data directory.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use turncoat_core::advisory::product_lookup_key;
use turncoat_core::indicator::Condition;
use turncoat_core::time::MICROS_PER_HOUR;
use turncoat_core::{
    Actor, Advisory, AlertKind, AlertStatus, Ecosystem, Event, Evidence, FastHashMap, Finding,
    Indicator, IndicatorKind, IndicatorRef, InventoryChange, InventoryItem, Observable,
    ObservableKind, Platform, Severity, TenantName, Time,
};

use crate::Projection;
use crate::archive::Archive;
use crate::lock::{LockWait, WriterLock};
use crate::schema::{MIGRATIONS, Migration};
use crate::{
    Address, Alert, AlertFilter, AllowAdded, AllowEntry, AllowKind, AuditEntry, Batch,
    BatchOutcome, CampaignAlert, CampaignUpserted, EventRef, FindingMode, FindingsOutcome,
    IndicatorUpsert, InternalNetwork, LedgerEntry, LedgerHook, NewAllowEntry, PendingWork, Result,
    Scope, Sighting, SourceFingerprint, SourceRecord, Store, StoreError, StoredIndicator,
    StoredRule, Tenant, TenantStats,
};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            // Which file is for the store to say: see `SqliteStore::named`.
            return StoreError::DiskFull { file: None };
        }
        StoreError::Database(e.to_string())
    }
}

/// Commits `tx`, naming the database file in `dir` if the disk is full:
/// the commit is where SQLite finds out.
fn commit(tx: Transaction<'_>, dir: &Path) -> Result<()> {
    tx.commit()
        .map_err(|e| StoreError::from(e).in_file(&dir.join(DATABASE)))
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
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
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Archive {
            path: dir.display().to_string(),
            message: e.to_string(),
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

/// The id of `name` from the cache, or from `fetch` (which finds or
/// creates the row) on a miss.
fn cached_id(
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

fn endpoint_id(
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
fn add_observables(
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
fn observable_id(
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

fn kind_from_u8(k: u8) -> Result<ObservableKind> {
    ObservableKind::ALL
        .get(k as usize)
        .copied()
        .ok_or_else(|| StoreError::Corrupt(format!("observable kind {k}")))
}

fn severity_rank(s: Severity) -> i64 {
    Severity::ALL.iter().position(|x| *x == s).unwrap_or(2) as i64
}

fn severity_from_rank(r: i64) -> Severity {
    Severity::ALL.get(r as usize).copied().unwrap_or_default()
}

fn parse<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T> {
    s.parse().map_err(StoreError::Corrupt)
}

/// Records findings inside a transaction; shared by live batches and
/// retro-hunts so that both keep the same deduplication.
fn record_findings_tx(
    tx: &Transaction,
    endpoints: &mut IdCache,
    tenant: i64,
    findings: &[(Finding, Option<EventRef>)],
    mode: FindingMode,
    now: Time,
) -> Result<FindingsOutcome> {
    let mut outcome = FindingsOutcome::default();
    let mut touched: HashSet<i64> = HashSet::new();
    let mut new_alerts: HashSet<i64> = HashSet::new();
    for (f, at) in findings {
        let endpoint = endpoint_id(tx, endpoints, tenant, &f.endpoint, f.first_seen)?;
        let mut evidence = serde_json::to_value(&f.evidence).map_err(json_err)?;
        if let Some(at) = at {
            evidence["event"] = serde_json::to_value(at).map_err(json_err)?;
        }
        let evidence = evidence.to_string();
        let existing: Option<i64> = tx
            .prepare_cached("SELECT id FROM alerts WHERE tenant_id = ? AND endpoint_id = ? AND kind = ? AND source = ?")?
            .query_row(params![tenant, endpoint, f.kind.as_str(), f.source], |r| r.get(0))
            .optional()?;
        let alert_id = match existing {
            // A re-analysis carries the newest view of the alert: intel
            // attached since, a higher severity.
            Some(id) if mode == FindingMode::Set => {
                let changed = tx
                    .prepare_cached(
                        "UPDATE alerts SET title = ?2, severity = max(severity, ?3), campaign = coalesce(?4, campaign), updated = ?5
                         WHERE id = ?1 AND (title != ?2 OR severity < ?3 OR (?4 IS NOT NULL AND campaign IS NOT ?4))",
                    )?
                    .execute(params![id, f.title, severity_rank(f.severity), f.campaign, now.0])?;
                if changed > 0 {
                    touched.insert(id);
                }
                id
            }
            Some(id) => id,
            None => {
                tx.prepare_cached(
                    "INSERT INTO alerts (tenant_id, endpoint_id, kind, source, title, severity, status, campaign,
                        first_seen, last_seen, count, evidence, created, updated)
                     VALUES (?, ?, ?, ?, ?, ?, 'new', ?, ?, ?, 0, ?, ?, ?)",
                )?
                .execute(params![
                    tenant,
                    endpoint,
                    f.kind.as_str(),
                    f.source,
                    f.title,
                    severity_rank(f.severity),
                    f.campaign,
                    f.first_seen.0,
                    f.last_seen.0,
                    evidence,
                    now.0,
                    now.0
                ])?;
                let id = tx.last_insert_rowid();
                new_alerts.insert(id);
                id
            }
        };
        let sql = match mode {
            FindingMode::Add => {
                "INSERT INTO findings (alert_id, key, first_seen, last_seen, count, evidence) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (alert_id, key) DO UPDATE SET
                    first_seen = min(first_seen, excluded.first_seen),
                    last_seen = max(last_seen, excluded.last_seen),
                    count = count + excluded.count,
                    evidence = iif(excluded.last_seen >= last_seen, excluded.evidence, evidence)"
            }
            FindingMode::Set => {
                "INSERT INTO findings (alert_id, key, first_seen, last_seen, count, evidence) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (alert_id, key) DO UPDATE SET
                    first_seen = excluded.first_seen,
                    last_seen = excluded.last_seen,
                    count = excluded.count,
                    evidence = excluded.evidence
                 WHERE first_seen != excluded.first_seen OR last_seen != excluded.last_seen
                    OR count != excluded.count OR evidence != excluded.evidence"
            }
        };
        let changed = tx.prepare_cached(sql)?.execute(params![
            alert_id,
            f.key.as_str(),
            f.first_seen.0,
            f.last_seen.0,
            f.count as i64,
            evidence
        ])?;
        if changed > 0 {
            touched.insert(alert_id);
        }
    }
    for id in &touched {
        tx.prepare_cached(
            "UPDATE alerts SET
                count = (SELECT sum(count) FROM findings WHERE alert_id = ?1),
                first_seen = (SELECT min(first_seen) FROM findings WHERE alert_id = ?1),
                last_seen = (SELECT max(last_seen) FROM findings WHERE alert_id = ?1),
                evidence = (SELECT evidence FROM findings WHERE alert_id = ?1 ORDER BY last_seen DESC, key DESC LIMIT 1),
                updated = ?2
             WHERE id = ?1",
        )?
        .execute(params![id, now.0])?;
    }
    outcome.new_alerts = new_alerts.len() as u64;
    outcome.updated_alerts = touched.difference(&new_alerts).count() as u64;
    Ok(outcome)
}

/// The tenant of an entry that is a tenant's or, with no tenant, global:
/// `None` when `scope` may not see it.
fn entry_tenant(scope: &Scope, tenant_id: Option<i64>) -> Option<Option<TenantName>> {
    match tenant_id {
        None => Some(None),
        Some(t) => scope
            .members()
            .iter()
            .find(|m| m.id == t)
            .map(|m| Some(m.name.clone())),
    }
}

/// The tables of entries that are a tenant's or, with no tenant, global.
#[derive(Clone, Copy)]
enum Entries {
    Allowlist,
    InternalNetworks,
}

impl SqliteStore {
    /// Deletes entry `id` of `entries` when `scope` may see it, audited.
    fn remove_entry(
        &mut self,
        entries: Entries,
        scope: &Scope,
        id: i64,
        actor: &Actor,
    ) -> Result<()> {
        let (table, noun, action) = match entries {
            Entries::Allowlist => ("allowlist", "allowlist entry", "allow.remove"),
            Entries::InternalNetworks => (
                "internal_networks",
                "internal network",
                "network.internal.remove",
            ),
        };
        let tx = self.conn.transaction()?;
        let owner: Option<Option<i64>> = tx
            .query_row(
                &format!("SELECT tenant_id FROM {table} WHERE id = ?"),
                [id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(owner) = owner.filter(|t| t.is_none_or(|t| scope.contains(t))) else {
            return Err(StoreError::OutOfScope(format!("{noun} {id}")));
        };
        tx.execute(&format!("DELETE FROM {table} WHERE id = ?"), [id])?;
        audit_tx(&tx, actor, owner, action, &format!("{noun} {id}"))?;
        commit(tx, &self.dir)
    }
}

fn audit_tx(
    tx: &Transaction,
    actor: &Actor,
    tenant: Option<i64>,
    action: &str,
    detail: &str,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit (time, actor, tenant_id, action, detail) VALUES (?, ?, ?, ?, ?)",
    )?
    .execute(params![
        Time::now().0,
        actor.to_string(),
        tenant,
        action,
        detail
    ])?;
    Ok(())
}

/// Opens, closes and reconciles ledger intervals for one inventory record.
struct LedgerWriter<'a, 'h> {
    tx: &'a Transaction<'a>,
    tenant: i64,
    hook: &'a mut LedgerHook<'h>,
    findings: Vec<Finding>,
    changes: u64,
}

impl LedgerWriter<'_, '_> {
    fn open(
        &mut self,
        endpoint_id: i64,
        endpoint: &str,
        source: &str,
        item: &InventoryItem,
        at: Time,
        file: Option<&str>,
    ) -> Result<()> {
        let norm = product_lookup_key(&item.name);
        let open: Option<i64> = self
            .tx
            .prepare_cached(
                "SELECT id FROM ledger WHERE tenant_id = ? AND endpoint_id = ? AND source = ? AND name_norm = ? AND version = ? AND removed IS NULL",
            )?
            .query_row(params![self.tenant, endpoint_id, source, norm, item.version], |r| r.get(0))
            .optional()?;
        if open.is_some() {
            return Ok(());
        }
        self.tx
            .prepare_cached(
                "INSERT INTO ledger (tenant_id, endpoint_id, source, name, name_norm, version, vendor, platform, ecosystem, installed, file)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                self.tenant,
                endpoint_id,
                source,
                item.name,
                norm,
                item.version,
                item.vendor,
                item.platform.map(Platform::as_str),
                item.ecosystem.as_str(),
                at.0,
                file
            ])?;
        self.changes += 1;
        let entry = entry_of(endpoint, source, item, at, None, file);
        self.findings.extend((self.hook)(&entry));
        Ok(())
    }

    /// Closes the open interval of `item`; a removal of something never
    /// seen installed is recorded as an interval that ends where it starts.
    fn close(
        &mut self,
        endpoint_id: i64,
        endpoint: &str,
        source: &str,
        item: &InventoryItem,
        at: Time,
        file: Option<&str>,
    ) -> Result<()> {
        let norm = product_lookup_key(&item.name);
        let open: Option<(i64, i64)> = self
            .tx
            .prepare_cached(
                "SELECT id, installed FROM ledger WHERE tenant_id = ? AND endpoint_id = ? AND source = ? AND name_norm = ? AND version = ? AND removed IS NULL",
            )?
            .query_row(params![self.tenant, endpoint_id, source, norm, item.version], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let installed = match open {
            Some((id, installed)) => {
                self.tx
                    .prepare_cached("UPDATE ledger SET removed = ? WHERE id = ?")?
                    .execute(params![at.0.max(installed), id])?;
                Time(installed)
            }
            None => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO ledger (tenant_id, endpoint_id, source, name, name_norm, version, vendor, platform, ecosystem, installed, removed, file)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    )?
                    .execute(params![
                        self.tenant,
                        endpoint_id,
                        source,
                        item.name,
                        norm,
                        item.version,
                        item.vendor,
                        item.platform.map(Platform::as_str),
                        item.ecosystem.as_str(),
                        at.0,
                        at.0,
                        file
                    ])?;
                at
            }
        };
        self.changes += 1;
        let entry = entry_of(
            endpoint,
            source,
            item,
            installed,
            Some(at.max(installed)),
            file,
        );
        self.findings.extend((self.hook)(&entry));
        Ok(())
    }

    /// A snapshot: opens what is new, closes what the source no longer lists.
    fn snapshot(
        &mut self,
        endpoint_id: i64,
        endpoint: &str,
        source: &str,
        items: &[InventoryItem],
        at: Time,
        file: Option<&str>,
    ) -> Result<()> {
        let present: HashSet<(String, &str)> = items
            .iter()
            .map(|i| (product_lookup_key(&i.name), i.version.as_str()))
            .collect();
        let open: Vec<InventoryItem> = {
            let mut stmt = self.tx.prepare_cached(
                "SELECT name, version, vendor, platform, ecosystem FROM ledger
                 WHERE tenant_id = ? AND endpoint_id = ? AND source = ? AND removed IS NULL",
            )?;
            let rows = stmt.query_map(params![self.tenant, endpoint_id, source], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })?;
            let mut v = Vec::new();
            for row in rows {
                let (name, version, vendor, platform, eco) = row?;
                v.push(InventoryItem {
                    name,
                    version,
                    vendor,
                    platform: platform.map(|p| parse(&p)).transpose()?,
                    ecosystem: parse(&eco)?,
                });
            }
            v
        };
        for gone in open
            .iter()
            .filter(|i| !present.contains(&(product_lookup_key(&i.name), i.version.as_str())))
        {
            self.close(endpoint_id, endpoint, source, gone, at, file)?;
        }
        for item in items {
            self.open(endpoint_id, endpoint, source, item, at, file)?;
        }
        Ok(())
    }
}

fn entry_of(
    endpoint: &str,
    source: &str,
    item: &InventoryItem,
    installed: Time,
    removed: Option<Time>,
    file: Option<&str>,
) -> LedgerEntry {
    LedgerEntry {
        endpoint: endpoint.to_owned(),
        source: source.to_owned(),
        name: item.name.clone(),
        version: item.version.clone(),
        vendor: item.vendor.clone(),
        platform: item.platform,
        ecosystem: item.ecosystem,
        installed,
        removed,
        file: file.map(str::to_owned),
    }
}

impl SqliteStore {
    /// Records findings, and a stream state when given, in one transaction.
    fn record_findings_with(
        &mut self,
        tenant: &Tenant,
        findings: &[(Finding, Option<EventRef>)],
        mode: FindingMode,
        state: Option<(&str, &[u8])>,
    ) -> Result<FindingsOutcome> {
        let tx = self.conn.transaction()?;
        let result = record_findings_tx(
            &tx,
            &mut self.endpoint_ids,
            tenant.id,
            findings,
            mode,
            Time::now(),
        );
        match result {
            Ok(outcome) => {
                if outcome.new_alerts + outcome.updated_alerts > 0 {
                    audit_tx(
                        &tx,
                        &Actor::Pipeline,
                        Some(tenant.id),
                        "alerts.retro",
                        &format!(
                            "{} new, {} updated",
                            outcome.new_alerts, outcome.updated_alerts
                        ),
                    )?;
                }
                if let Some((name, bytes)) = state {
                    set_stream_state_tx(&tx, tenant.id, name, bytes)?;
                }
                commit(tx, &self.dir)?;
                Ok(outcome)
            }
            Err(e) => {
                drop(tx);
                self.forget_cached_ids();
                Err(e)
            }
        }
    }

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
            .map_err(|e| StoreError::Corrupt(format!("text column: {e}"))),
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
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        rows.map(|r| {
            let (id, name, created) = r?;
            Ok(Tenant {
                id,
                name: TenantName::new(&name).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                created: Time(created),
            })
        })
        .collect()
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
        let tx = self.conn.transaction()?;
        let now = Time::now();
        let mut out = IndicatorUpsert::default();
        for ind in indicators {
            let ind = &ind;
            let also = serde_json::to_string(&ind.also).map_err(json_err)?;
            let doc = serde_json::to_string(ind).map_err(json_err)?;
            let existing: Option<(i64, String)> = tx
                .prepare_cached(
                    "SELECT i.id, d.doc FROM indicators i JOIN indicator_docs d ON d.id = i.id
                     WHERE i.kind = ? AND i.value = ? AND i.also = ? AND i.source = ?",
                )?
                .query_row(
                    params![ind.kind.as_str(), ind.value, also, ind.source],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            match existing {
                None => {
                    tx.prepare_cached(
                        "INSERT INTO indicators (kind, value, also, source, added, updated, campaign, valid_from, valid_until, revoked)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    )?
                    .execute(params![
                        ind.kind.as_str(),
                        ind.value,
                        also,
                        ind.source,
                        now.0,
                        now.0,
                        ind.campaign,
                        ind.valid_from.map(|t| t.0),
                        ind.valid_until.map(|t| t.0),
                        ind.revoked
                    ])?;
                    let id = tx.last_insert_rowid();
                    tx.prepare_cached("INSERT INTO indicator_docs (id, doc) VALUES (?, ?)")?
                        .execute(params![id, doc])?;
                    out.inserted.push(id);
                }
                Some((id, old)) if old != doc => {
                    tx.prepare_cached(
                        "UPDATE indicators SET updated = ?, campaign = ?, valid_from = ?, valid_until = ?, revoked = ? WHERE id = ?",
                    )?
                    .execute(params![
                        now.0,
                        ind.campaign,
                        ind.valid_from.map(|t| t.0),
                        ind.valid_until.map(|t| t.0),
                        ind.revoked,
                        id
                    ])?;
                    tx.prepare_cached("UPDATE indicator_docs SET doc = ? WHERE id = ?")?
                        .execute(params![doc, id])?;
                    out.changed.push(id);
                }
                Some(_) => out.unchanged += 1,
            }
        }
        if !out.inserted.is_empty() || !out.changed.is_empty() {
            tx.execute("UPDATE intel_state SET generation = generation + 1", [])?;
        }
        audit_tx(
            &tx,
            actor,
            None,
            "intel.indicators",
            &format!(
                "{} new, {} changed, {} unchanged",
                out.inserted.len(),
                out.changed.len(),
                out.unchanged
            ),
        )?;
        commit(tx, &self.dir)?;
        Ok(out)
    }

    fn indicators(&self) -> Result<Vec<StoredIndicator>> {
        let mut stmt = self
            .conn
            .prepare("SELECT i.id, d.doc, i.added FROM indicators i JOIN indicator_docs d ON d.id = i.id ORDER BY i.id")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        rows.map(|r| {
            let (id, doc, added) = r?;
            Ok(StoredIndicator {
                id,
                indicator: serde_json::from_str(&doc).map_err(json_err)?,
                added: Time(added),
            })
        })
        .collect()
    }

    fn scan_indicators(&self, each: &mut dyn FnMut(IndicatorRef<'_>)) -> Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT kind, value, source, campaign, also, valid_from, valid_until, revoked FROM indicators ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let text = |i| {
                row.get_ref(i)
                    .map_err(StoreError::from)
                    .and_then(text_column)
            };
            let kind = text(0)?.unwrap_or_default();
            // Stored kinds are canonical: compared without parsing.
            let kind = IndicatorKind::ALL
                .into_iter()
                .find(|k| k.as_str() == kind)
                .ok_or_else(|| StoreError::Corrupt(format!("indicator kind {kind:?}")))?;
            // `AND` conditions are rare: JSON is parsed only where present.
            let also_text = text(4)?.unwrap_or("[]");
            let also: Vec<Condition> = if also_text == "[]" {
                Vec::new()
            } else {
                serde_json::from_str(also_text).map_err(json_err)?
            };
            each(IndicatorRef {
                kind,
                value: text(1)?.unwrap_or_default(),
                source: text(2)?.unwrap_or_default(),
                campaign: text(3)?,
                also: &also,
                valid_from: row.get::<_, Option<i64>>(5)?.map(Time),
                valid_until: row.get::<_, Option<i64>>(6)?.map(Time),
                revoked: row.get(7)?,
            });
        }
        Ok(())
    }

    fn intel_key(&self) -> Result<u64> {
        let (nonce, generation): (i64, i64) =
            self.conn
                .query_row("SELECT nonce, generation FROM intel_state", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
        Ok(nonce as u64 ^ (generation as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    fn read_cache(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.cache_path(name);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Database(format!("{}: {e}", path.display()))),
        }
    }

    fn write_cache(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        if self._lock.is_none() {
            return Err(StoreError::ReadOnly);
        }
        let path = self.cache_path(name);
        let failed = |e: std::io::Error| StoreError::Database(format!("{}: {e}", path.display()));
        std::fs::create_dir_all(self.dir.join(CACHE_DIR)).map_err(failed)?;
        // Written beside and renamed over: a reader sees the old file or
        // the new one, never part of one.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, bytes).map_err(failed)?;
        std::fs::rename(&partial, &path).map_err(failed)?;
        Ok(())
    }

    fn count_indicators(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM indicators", [], |r| r.get(0))?)
    }

    fn indicators_by_id(&self, ids: &[i64]) -> Result<Vec<StoredIndicator>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT i.id, d.doc, i.added FROM indicators i JOIN indicator_docs d ON d.id = i.id WHERE i.id = ?")?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some((id, doc, added)) = stmt
                .query_row([id], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .optional()?
            {
                out.push(StoredIndicator {
                    id,
                    indicator: serde_json::from_str(&doc).map_err(json_err)?,
                    added: Time(added),
                });
            }
        }
        Ok(out)
    }

    fn upsert_advisories(&mut self, advisories: &[Advisory], actor: &Actor) -> Result<Vec<String>> {
        let tx = self.conn.transaction()?;
        let now = Time::now();
        let mut changed = Vec::new();
        for a in advisories {
            let doc = serde_json::to_string(a).map_err(json_err)?;
            let old: Option<String> = tx
                .prepare_cached("SELECT doc FROM advisories WHERE id = ?")?
                .query_row([&a.id], |r| r.get(0))
                .optional()?;
            match old {
                Some(o) if o == doc => continue,
                Some(_) => {
                    tx.prepare_cached("UPDATE advisories SET doc = ?, updated = ? WHERE id = ?")?
                        .execute(params![doc, now.0, a.id])?;
                }
                None => {
                    tx.prepare_cached(
                        "INSERT INTO advisories (id, doc, added, updated) VALUES (?, ?, ?, ?)",
                    )?
                    .execute(params![a.id, doc, now.0, now.0])?;
                }
            }
            changed.push(a.id.clone());
        }
        audit_tx(
            &tx,
            actor,
            None,
            "intel.advisories",
            &format!("{} new or changed: {}", changed.len(), changed.join(", ")),
        )?;
        commit(tx, &self.dir)?;
        Ok(changed)
    }

    fn advisories(&self) -> Result<Vec<Advisory>> {
        let mut stmt = self
            .conn
            .prepare("SELECT doc FROM advisories ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.map(|r| serde_json::from_str(&r?).map_err(json_err))
            .collect()
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
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
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
                    r.get::<_, u8>(1)?,
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
                        kind: kind_from_u8(kind)?,
                        value,
                    },
                    endpoint,
                    first_seen: Time(first),
                    last_seen: Time(last),
                    count: count as u64,
                    event: match (seg, off, idx) {
                        (Some(segment), Some(offset), Some(index)) => Some(EventRef {
                            segment,
                            offset: offset as u64,
                            index: index as u32,
                        }),
                        _ => None,
                    },
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
                    .prepare(&format!("{base} ORDER BY e.name, l.installed"))?;
                for r in stmt.query_map([tenant.id], ledger_row)? {
                    out.push(r?);
                }
            }
            Some(names) => {
                let mut stmt = self.conn.prepare_cached(&format!(
                    "{base} AND l.name_norm = ? ORDER BY e.name, l.installed"
                ))?;
                for n in names {
                    for r in
                        stmt.query_map(params![tenant.id, product_lookup_key(n)], ledger_row)?
                    {
                        out.push(r?);
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
        let from_hour = since.map_or(i64::MIN, Time::hour);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT hour, committed_len FROM segments WHERE tenant_id = ? AND hour >= ? ORDER BY hour")?;
        let segs: Vec<(i64, i64)> = stmt
            .query_map(params![tenant.id, from_hour], |r| {
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

    fn alerts(&self, scope: &Scope, filter: &AlertFilter) -> Result<Vec<Alert>> {
        let mut out = Vec::new();
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.id, e.name, a.kind, a.source, a.title, a.severity, a.status, a.campaign, a.first_seen, a.last_seen,
                    a.count, a.evidence, a.created, a.updated, a.campaign_alert, a.status_reason
             FROM alerts a JOIN endpoints e ON e.id = a.endpoint_id AND e.tenant_id = a.tenant_id
             WHERE a.tenant_id = ?1 AND (?2 IS NULL OR a.kind = ?2) AND (?3 IS NULL OR a.status = ?3) AND (?4 IS NULL OR e.name = ?4)
             ORDER BY a.severity DESC, a.first_seen, a.id",
        )?;
        for tenant in scope.members() {
            let params = params![
                tenant.id,
                filter.kind.map(AlertKind::as_str),
                filter.status.map(AlertStatus::as_str),
                filter.endpoint
            ];
            for alert in stmt.query_map(params, |r| alert_row(&tenant.name, r))? {
                out.push(alert?);
            }
        }
        out.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.first_seen.cmp(&b.first_seen))
                .then(a.id.cmp(&b.id))
        });
        if let Some(limit) = filter.limit {
            out.truncate(limit);
        }
        Ok(out)
    }

    fn set_alert_status(
        &mut self,
        scope: &Scope,
        id: i64,
        status: AlertStatus,
        actor: &Actor,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        let owner: Option<i64> = tx
            .query_row("SELECT tenant_id FROM alerts WHERE id = ?", [id], |r| {
                r.get(0)
            })
            .optional()?;
        match owner {
            Some(t) if scope.contains(t) => {
                tx.execute(
                    "UPDATE alerts SET status = ?, updated = ? WHERE id = ?",
                    params![status.as_str(), Time::now().0, id],
                )?;
                audit_tx(
                    &tx,
                    actor,
                    Some(t),
                    "alert.status",
                    &format!("alert {id} -> {status}"),
                )?;
                commit(tx, &self.dir)?;
                Ok(())
            }
            _ => Err(StoreError::OutOfScope(format!("alert {id}"))),
        }
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
        let tx = self.conn.transaction()?;
        let now = Time::now();
        let mut changed = Vec::new();
        for r in rules {
            let old: Option<String> = tx
                .prepare_cached("SELECT text FROM rules WHERE id = ?")?
                .query_row([&r.id], |row| row.get(0))
                .optional()?;
            if old.as_deref() == Some(r.text.as_str()) {
                continue;
            }
            tx.prepare_cached(
                "INSERT INTO rules (id, title, source, text, added, updated) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE SET title = excluded.title, source = excluded.source, text = excluded.text, updated = excluded.updated",
            )?
            .execute(params![r.id, r.title, r.source, r.text, now.0, now.0])?;
            changed.push(r.id.clone());
        }
        audit_tx(
            &tx,
            actor,
            None,
            "rules.import",
            &format!("{} new or changed of {}", changed.len(), rules.len()),
        )?;
        commit(tx, &self.dir)?;
        Ok(changed)
    }

    fn rules(&self) -> Result<Vec<StoredRule>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, title, source, text, updated FROM rules ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(StoredRule {
                id: r.get(0)?,
                title: r.get(1)?,
                source: r.get(2)?,
                text: r.get(3)?,
                updated: Time(r.get(4)?),
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    fn upsert_campaign(
        &mut self,
        kind: AlertKind,
        source: &str,
        title: &str,
        members: &[i64],
        actor: &Actor,
    ) -> Result<CampaignUpserted> {
        let tx = self.conn.transaction()?;
        let now = Time::now();
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM campaigns WHERE kind = ? AND source = ?",
                params![kind.as_str(), source],
                |r| r.get(0),
            )
            .optional()?;
        let (id, new) = match existing {
            Some(id) => (id, false),
            None => {
                tx.execute(
                    "INSERT INTO campaigns (kind, source, title, first_seen, last_seen, created, updated) VALUES (?, ?, ?, 0, 0, ?, ?)",
                    params![kind.as_str(), source, title, now.0, now.0],
                )?;
                (tx.last_insert_rowid(), true)
            }
        };
        for m in members {
            tx.execute(
                "UPDATE alerts SET campaign_alert = ? WHERE id = ? AND kind = ? AND source = ?",
                params![id, m, kind.as_str(), source],
            )?;
        }
        tx.execute(
            "UPDATE campaigns SET title = ?1, updated = ?2,
                first_seen = (SELECT min(first_seen) FROM alerts WHERE campaign_alert = ?3),
                last_seen = (SELECT max(last_seen) FROM alerts WHERE campaign_alert = ?3)
             WHERE id = ?3",
            params![title, now.0, id],
        )?;
        if new {
            audit_tx(
                &tx,
                actor,
                None,
                "campaign.raise",
                &format!(
                    "{} {source}: {} member alerts",
                    kind.as_str(),
                    members.len()
                ),
            )?;
        }
        commit(tx, &self.dir)?;
        Ok(CampaignUpserted { id, new })
    }

    fn campaigns(&self, scope: &Scope) -> Result<Vec<CampaignAlert>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, kind, source, title, first_seen, last_seen FROM campaigns ORDER BY id",
        )?;
        let rows: Vec<(i64, String, String, String, i64, i64)> = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect::<std::result::Result<_, _>>()?;
        let mut members = self.conn.prepare(
            "SELECT id, tenant_id, status FROM alerts WHERE campaign_alert = ? ORDER BY id",
        )?;
        let mut out = Vec::new();
        'campaign: for (id, kind, source, title, first, last) in rows {
            let list: Vec<(i64, i64, String)> = members
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<std::result::Result<_, _>>()?;
            let mut tenants = Vec::new();
            let mut dismissed = BTreeMap::new();
            for (_, tenant_id, status) in &list {
                // A campaign names tenants: only a scope holding all of them sees it.
                let Some(t) = scope.members().iter().find(|t| t.id == *tenant_id) else {
                    continue 'campaign;
                };
                if !tenants.contains(&t.name) {
                    tenants.push(t.name.clone());
                }
                if status == AlertStatus::FalsePositive.as_str() {
                    dismissed.insert(*tenant_id, ());
                }
            }
            // By name, as the title lists them, whatever order they joined in.
            tenants.sort();
            out.push(CampaignAlert {
                id,
                kind: parse(&kind)?,
                source,
                title,
                tenants,
                member_alerts: list.iter().map(|m| m.0).collect(),
                dismissed_tenants: dismissed.len(),
                first_seen: Time(first),
                last_seen: Time(last),
            });
        }
        Ok(out)
    }

    fn pending_work(&self) -> Result<Vec<(Tenant, PendingWork)>> {
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
                    (Some(t), Some(w)) => Ok((t, w)),
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
        closes: &[i64],
        actor: &Actor,
    ) -> Result<AllowAdded> {
        let tx = self.conn.transaction()?;
        let tid = tenant.map(|t| t.id);
        let kind = entry.kind.as_str();
        let (value, reason) = (entry.value, entry.reason);
        tx.execute(
            "INSERT INTO allowlist (tenant_id, kind, value, reason, added) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (tenant_id, kind, value) DO UPDATE SET reason = excluded.reason",
            params![tid, kind, value, reason, Time::now().0],
        )?;
        let id = tx.query_row(
            "SELECT id FROM allowlist WHERE tenant_id IS ? AND kind = ? AND value = ?",
            params![tid, kind, value],
            |r| r.get(0),
        )?;
        audit_tx(
            &tx,
            actor,
            tid,
            "allow.add",
            &format!("{kind} {value}: {reason}"),
        )?;
        let status_reason = format!("allowlist entry {id} ({kind} {value}): {reason}");
        let mut closed = Vec::new();
        for &alert in closes {
            let owner: Option<i64> = tx
                .prepare_cached(
                    "UPDATE alerts SET status = 'allowlisted', status_reason = ?1, updated = ?2
                     WHERE id = ?3 AND kind = 'beacon' AND (?4 IS NULL OR tenant_id = ?4)
                       AND status IN ('new', 'acknowledged', 'in-progress')
                     RETURNING tenant_id",
                )?
                .query_row(params![status_reason, Time::now().0, alert, tid], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(owner) = owner {
                audit_tx(
                    &tx,
                    actor,
                    Some(owner),
                    "alert.status",
                    &format!("alert {alert} -> allowlisted: {status_reason}"),
                )?;
                closed.push(alert);
            }
        }
        commit(tx, &self.dir)?;
        Ok(AllowAdded { id, closed })
    }

    fn allowlist(&self, scope: &Scope) -> Result<Vec<AllowEntry>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, tenant_id, kind, value, reason, added FROM allowlist ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let Some(tenant) = entry_tenant(scope, r.get(1)?) else {
                continue;
            };
            let kind: String = r.get(2)?;
            let kind = match kind.as_str() {
                "destination" => AllowKind::Destination,
                "source" => AllowKind::Source,
                other => return Err(StoreError::Corrupt(format!("allowlist kind {other:?}"))),
            };
            out.push(AllowEntry {
                id: r.get(0)?,
                tenant,
                kind,
                value: r.get(3)?,
                reason: r.get(4)?,
                added: Time(r.get(5)?),
            });
        }
        Ok(out)
    }

    fn remove_allow(&mut self, scope: &Scope, id: i64, actor: &Actor) -> Result<()> {
        self.remove_entry(Entries::Allowlist, scope, id, actor)
    }

    fn add_internal_network(
        &mut self,
        tenant: Option<&Tenant>,
        cidr: &str,
        note: &str,
        actor: &Actor,
    ) -> Result<i64> {
        let tx = self.conn.transaction()?;
        let tid = tenant.map(|t| t.id);
        let id = tx.query_row(
            "INSERT INTO internal_networks (tenant_id, cidr, note, added) VALUES (?, ?, ?, ?)
             ON CONFLICT (coalesce(tenant_id, 0), cidr) DO UPDATE SET note = excluded.note
             RETURNING id",
            params![tid, cidr, note, Time::now().0],
            |r| r.get(0),
        )?;
        audit_tx(
            &tx,
            actor,
            tid,
            "network.internal.add",
            &format!("{cidr}: {note}"),
        )?;
        commit(tx, &self.dir)?;
        Ok(id)
    }

    fn internal_networks(&self, scope: &Scope) -> Result<Vec<InternalNetwork>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, tenant_id, cidr, note, added FROM internal_networks ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            if let Some(tenant) = entry_tenant(scope, r.get(1)?) {
                out.push(InternalNetwork {
                    id: r.get(0)?,
                    tenant,
                    cidr: r.get(2)?,
                    note: r.get(3)?,
                    added: Time(r.get(4)?),
                });
            }
        }
        Ok(out)
    }

    fn remove_internal_network(&mut self, scope: &Scope, id: i64, actor: &Actor) -> Result<()> {
        self.remove_entry(Entries::InternalNetworks, scope, id, actor)
    }

    fn audit(
        &mut self,
        actor: &Actor,
        tenant: Option<&Tenant>,
        action: &str,
        detail: &str,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        audit_tx(&tx, actor, tenant.map(|t| t.id), action, detail)?;
        commit(tx, &self.dir)?;
        Ok(())
    }

    fn audit_log(&self, scope: &Scope, limit: usize) -> Result<Vec<AuditEntry>> {
        let mut stmt = self
            .conn
            .prepare("SELECT time, actor, tenant_id, action, detail FROM audit ORDER BY id DESC")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (time, actor, tenant_id, action, detail) = row?;
            // Global entries (intel) are visible to all; tenant entries only in scope.
            let tenant = match tenant_id {
                Some(id) => match scope.members().iter().find(|t| t.id == id) {
                    Some(t) => Some(t.name.clone()),
                    None => continue,
                },
                None => None,
            };
            out.push(AuditEntry {
                time: Time(time),
                actor,
                tenant,
                action,
                detail,
            });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

fn alert_row(tenant: &TenantName, r: &rusqlite::Row) -> rusqlite::Result<Alert> {
    let kind: String = r.get(2)?;
    let status: String = r.get(6)?;
    let evidence: String = r.get(11)?;
    Ok(Alert {
        id: r.get(0)?,
        tenant: tenant.clone(),
        endpoint: r.get(1)?,
        kind: parse(&kind).map_err(|e| bad_column(2, e))?,
        source: r.get(3)?,
        title: r.get(4)?,
        severity: severity_from_rank(r.get(5)?),
        status: parse(&status).map_err(|e| bad_column(6, e))?,
        campaign: r.get(7)?,
        first_seen: Time(r.get(8)?),
        last_seen: Time(r.get(9)?),
        count: r.get::<_, i64>(10)? as u64,
        evidence: serde_json::from_str::<Evidence>(&evidence)
            .map_err(|e| bad_column(11, json_err(e)))?,
        created: Time(r.get(12)?),
        updated: Time(r.get(13)?),
        campaign_alert: r.get(14)?,
        status_reason: r.get(15)?,
    })
}

/// A stored text column that does not parse as its type.
fn bad_column(col: usize, e: StoreError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e))
}

fn ledger_row(r: &rusqlite::Row) -> rusqlite::Result<LedgerEntry> {
    let platform: Option<String> = r.get(5)?;
    let ecosystem: String = r.get(6)?;
    Ok(LedgerEntry {
        endpoint: r.get(0)?,
        source: r.get(1)?,
        name: r.get(2)?,
        version: r.get(3)?,
        vendor: r.get(4)?,
        platform: platform
            .map(|p| parse(&p))
            .transpose()
            .map_err(|e| bad_column(5, e))?,
        ecosystem: parse::<Ecosystem>(&ecosystem).map_err(|e| bad_column(6, e))?,
        installed: Time(r.get(7)?),
        removed: r.get::<_, Option<i64>>(8)?.map(Time),
        file: r.get(9)?,
    })
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

impl SqliteStore {
    fn commit_batch_inner(
        &mut self,
        tenant: &Tenant,
        batch: Batch,
        on_ledger: &mut LedgerHook<'_>,
    ) -> Result<BatchOutcome> {
        let now = Time::now();
        let tx = self.conn.transaction()?;
        let tid = tenant.id;

        // Source progress first: its id goes on the sightings.
        let source_id = match &batch.source {
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
        };

        // Archive: one frame per hour touched. Where an event landed is
        // looked up for the rows that point at it, not listed for every
        // event: most events back no row.
        let mut placed: FastHashMap<i64, (i64, u64)> = FastHashMap::default();
        for (hour, count) in batch.events.hours() {
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
            let frame_len = self
                .archive
                .append_hour(tid, hour, offset as u64, &batch.events)?;
            tx.prepare_cached(
                "UPDATE segments SET committed_len = ?, events = events + ? WHERE id = ?",
            )?
            .execute(params![offset + frame_len as i64, count as i64, seg_id])?;
            placed.insert(hour, (seg_id, offset as u64));
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
            set_stream_state_tx(&tx, tid, name, state)?;
        }
        for work in &batch.pending {
            tx.prepare_cached(
                "INSERT INTO pending_work (tenant_id, work, since) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            )?
            .execute(params![tid, work.as_str(), now.0])?;
        }

        // Endpoints and addresses.
        for (name, platform, at) in &batch.endpoints {
            let id = endpoint_id(&tx, &mut self.endpoint_ids, tid, name, *at)?;
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

        // Sightings, in key order: new observables are added to the
        // dictionary sorted by value and the rows upserted sorted by their
        // primary key, so that consecutive B-tree writes land on the same
        // pages instead of all over both trees.
        let mut ids: Vec<Option<i64>> = Vec::with_capacity(batch.sightings.len());
        let mut new: Vec<&Observable> = Vec::new();
        for s in &batch.sightings {
            let o = &s.observable;
            let id = self.observable_ids.get(tid, o.kind as u8, &o.value);
            if id.is_none() {
                new.push(o);
            }
            ids.push(id);
        }
        new.sort_unstable();
        new.dedup();
        add_observables(&tx, &mut self.observable_ids, tid, &new)?;
        let mut rows = Vec::with_capacity(batch.sightings.len());
        for (s, id) in batch.sightings.iter().zip(ids) {
            let oid = match id {
                Some(id) => id,
                None => observable_id(&tx, &mut self.observable_ids, tid, &s.observable)?,
            };
            let eid = endpoint_id(&tx, &mut self.endpoint_ids, tid, &s.endpoint, s.first)?;
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

        // Ledger, with exposure findings from the hook.
        let file = batch.source.as_ref().map(|s| s.name.clone());
        let mut ledger = LedgerWriter {
            tx: &tx,
            tenant: tid,
            hook: on_ledger,
            findings: Vec::new(),
            changes: 0,
        };
        let mut inventory = batch.inventory;
        inventory.sort_by_key(|r| r.time);
        for rec in &inventory {
            let eid = endpoint_id(&tx, &mut self.endpoint_ids, tid, &rec.host, rec.time)?;
            match &rec.change {
                InventoryChange::Added(items) => {
                    for item in items {
                        ledger.open(
                            eid,
                            &rec.host,
                            &rec.source,
                            item,
                            rec.time,
                            file.as_deref(),
                        )?;
                    }
                }
                InventoryChange::Removed(items) => {
                    for item in items {
                        ledger.close(
                            eid,
                            &rec.host,
                            &rec.source,
                            item,
                            rec.time,
                            file.as_deref(),
                        )?;
                    }
                }
                InventoryChange::Snapshot(items) => ledger.snapshot(
                    eid,
                    &rec.host,
                    &rec.source,
                    items,
                    rec.time,
                    file.as_deref(),
                )?,
            }
        }
        let ledger_changes = ledger.changes;
        let exposure = std::mem::take(&mut ledger.findings);

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
