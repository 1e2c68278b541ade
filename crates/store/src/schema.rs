//! Versioned schema migrations, applied in order inside one transaction
//! each; `PRAGMA user_version` records the last one applied.
//!
//! Every tenant-owned table leads with `tenant_id`, so that the same
//! layout distributes by tenant in a clustered database.

use rusqlite::Transaction;
use turncoat_core::Indicator;
use turncoat_core::advisory::product_lookup_key;

/// One schema step: SQL, or Rust where the change needs our own functions.
pub enum Migration {
    Sql(&'static str),
    Rust(fn(&Transaction<'_>) -> rusqlite::Result<()>),
}

pub const MIGRATIONS: &[Migration] = &[
    // 1: the core.
    Migration::Sql("
    CREATE TABLE tenants (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created INTEGER NOT NULL
    );
    CREATE TABLE endpoints (
        id INTEGER PRIMARY KEY,
        tenant_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        platform TEXT,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        UNIQUE (tenant_id, name)
    );
    CREATE TABLE addresses (
        tenant_id INTEGER NOT NULL,
        ip TEXT NOT NULL,
        host TEXT NOT NULL,
        seen INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, ip)
    ) WITHOUT ROWID;
    CREATE TABLE sources (
        id INTEGER PRIMARY KEY,
        tenant_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        hash BLOB NOT NULL,
        head BLOB NOT NULL,
        size INTEGER NOT NULL,
        lines INTEGER NOT NULL,
        complete INTEGER NOT NULL,
        ingested INTEGER NOT NULL,
        UNIQUE (tenant_id, hash)
    );
    CREATE INDEX sources_head ON sources (tenant_id, head);
    CREATE TABLE segments (
        id INTEGER PRIMARY KEY,
        tenant_id INTEGER NOT NULL,
        hour INTEGER NOT NULL,
        committed_len INTEGER NOT NULL,
        events INTEGER NOT NULL,
        UNIQUE (tenant_id, hour)
    );
    CREATE TABLE observables (
        id INTEGER PRIMARY KEY,
        tenant_id INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        value TEXT NOT NULL,
        UNIQUE (tenant_id, kind, value)
    );
    CREATE TABLE sightings (
        tenant_id INTEGER NOT NULL,
        observable_id INTEGER NOT NULL,
        endpoint_id INTEGER NOT NULL,
        day INTEGER NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        count INTEGER NOT NULL,
        segment_id INTEGER,
        frame_offset INTEGER,
        frame_index INTEGER,
        source_id INTEGER,
        PRIMARY KEY (tenant_id, observable_id, endpoint_id, day)
    ) WITHOUT ROWID;
    CREATE TABLE ledger (
        id INTEGER PRIMARY KEY,
        tenant_id INTEGER NOT NULL,
        endpoint_id INTEGER NOT NULL,
        source TEXT NOT NULL,
        name TEXT NOT NULL,
        name_norm TEXT NOT NULL,
        version TEXT NOT NULL,
        vendor TEXT,
        platform TEXT,
        ecosystem TEXT NOT NULL,
        installed INTEGER NOT NULL,
        removed INTEGER,
        file TEXT
    );
    CREATE INDEX ledger_open ON ledger (tenant_id, endpoint_id, source, name_norm, version) WHERE removed IS NULL;
    CREATE INDEX ledger_name ON ledger (tenant_id, name_norm);
    CREATE TABLE indicators (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        also TEXT NOT NULL,
        source TEXT NOT NULL,
        doc TEXT NOT NULL,
        added INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        UNIQUE (kind, value, also, source)
    );
    CREATE TABLE advisories (
        id TEXT PRIMARY KEY,
        doc TEXT NOT NULL,
        added INTEGER NOT NULL,
        updated INTEGER NOT NULL
    );
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        tenant_id INTEGER NOT NULL,
        endpoint_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        title TEXT NOT NULL,
        severity INTEGER NOT NULL,
        status TEXT NOT NULL,
        campaign TEXT,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        count INTEGER NOT NULL,
        evidence TEXT NOT NULL,
        created INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        UNIQUE (tenant_id, endpoint_id, kind, source)
    );
    CREATE INDEX alerts_tenant ON alerts (tenant_id, kind);
    CREATE TABLE findings (
        alert_id INTEGER NOT NULL,
        key TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        count INTEGER NOT NULL,
        evidence TEXT NOT NULL,
        PRIMARY KEY (alert_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        time INTEGER NOT NULL,
        actor TEXT NOT NULL,
        tenant_id INTEGER,
        action TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    "),
    // 2: allowlists for network analytics, per tenant or global (NULL tenant).
    Migration::Sql("
    CREATE TABLE allowlist (
        id INTEGER PRIMARY KEY,
        tenant_id INTEGER,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        reason TEXT NOT NULL,
        added INTEGER NOT NULL,
        UNIQUE (tenant_id, kind, value)
    );
    "),
    // 3: MSSP-level campaign alerts over several tenants' alerts.
    Migration::Sql("
    CREATE TABLE campaigns (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        title TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        created INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        UNIQUE (kind, source)
    );
    ALTER TABLE alerts ADD COLUMN campaign_alert INTEGER;
    "),
    // 4: Sigma rules, kept as their source text and compiled when loaded.
    Migration::Sql("
    CREATE TABLE rules (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        source TEXT NOT NULL,
        text TEXT NOT NULL,
        added INTEGER NOT NULL,
        updated INTEGER NOT NULL
    );
    "),
    // 5: state a streaming analysis keeps between runs (Sigma correlation
    // windows), per tenant and analysis.
    Migration::Sql("
    CREATE TABLE stream_state (
        tenant_id INTEGER NOT NULL REFERENCES tenants(id),
        name TEXT NOT NULL,
        state BLOB NOT NULL,
        updated INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, name)
    );
    "),
    // 6: ledger names keyed by `product_lookup_key`, which also joins the
    // spellings package registries treat as one (`a_b`, `A.B`, `a-b`).
    Migration::Rust(rekey_ledger_names),
    // 7: work an ingest owes after its last batch (beacon scoring, campaign
    // escalation), written with the batches so a run cut short leaves it
    // for the next run instead of losing it.
    Migration::Sql("
    CREATE TABLE pending_work (
        tenant_id INTEGER NOT NULL REFERENCES tenants(id),
        work TEXT NOT NULL,
        since INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, work)
    ) WITHOUT ROWID;
    "),
    // 8: what matching reads of an indicator, in columns of its own, and
    // the full document in a table beside it, so that loading a million
    // for live matching parses no JSON and reads a narrow table.
    Migration::Rust(indicator_match_columns),
    // 9: what the stored intel is known by: a random id of this database
    // and a counter every change of indicators bumps, so that a saved
    // index is used only for the intel it was built from.
    Migration::Sql("
    CREATE TABLE intel_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        nonce INTEGER NOT NULL,
        generation INTEGER NOT NULL
    );
    INSERT INTO intel_state (id, nonce, generation) VALUES (1, random(), 0);
    "),
    // 10: why an alert was closed other than by hand (the allowlist entry
    // that covers it).
    Migration::Sql("ALTER TABLE alerts ADD COLUMN status_reason TEXT;"),
    // 11: the address ranges tenants count as their own (NULL tenant: all).
    Migration::Sql("
    CREATE TABLE internal_networks (
        id INTEGER PRIMARY KEY,
        tenant_id INTEGER,
        cidr TEXT NOT NULL,
        note TEXT NOT NULL,
        added INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX internal_networks_range
        ON internal_networks (coalesce(tenant_id, 0), cidr);
    "),
    // 12: people and API tokens. Only hashes of secrets are kept.
    Migration::Sql("
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE TABLE user_tenants (
        user_id INTEGER NOT NULL,
        tenant_id INTEGER NOT NULL,
        PRIMARY KEY (user_id, tenant_id)
    );
    CREATE TABLE tokens (
        id INTEGER PRIMARY KEY,
        hash BLOB NOT NULL UNIQUE,
        user_id INTEGER,
        tenant_id INTEGER,
        scope TEXT,
        note TEXT NOT NULL,
        created INTEGER NOT NULL,
        expires INTEGER,
        revoked INTEGER
    );
    "),
    // 13: triage that remembers: who an alert is assigned to, and every
    // change and comment, in order.
    Migration::Sql("
    ALTER TABLE alerts ADD COLUMN assignee TEXT;
    CREATE TABLE alert_history (
        id INTEGER PRIMARY KEY,
        tenant_id INTEGER NOT NULL,
        alert_id INTEGER NOT NULL,
        time INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        value TEXT,
        note TEXT
    );
    CREATE INDEX alert_history_alert ON alert_history (tenant_id, alert_id, id);
    "),
    // 14: suppressions: rules that close matching alerts, present and
    // future, until they expire or are removed.
    Migration::Sql("
    CREATE TABLE suppressions (
        id INTEGER PRIMARY KEY,
        tenant_id INTEGER,
        kind TEXT,
        source TEXT NOT NULL COLLATE NOCASE,
        endpoint TEXT COLLATE NOCASE,
        reason TEXT NOT NULL,
        owner TEXT NOT NULL,
        created INTEGER NOT NULL,
        expires INTEGER,
        ended INTEGER
    );
    ALTER TABLE alerts ADD COLUMN suppressed_by INTEGER;
    "),
    // 15: `in-progress` is called `investigating`, as analysts say it.
    Migration::Sql("
    UPDATE alerts SET status = 'investigating' WHERE status = 'in-progress';
    UPDATE alert_history SET value = 'investigating'
        WHERE action = 'status' AND value = 'in-progress';
    "),
    // 16: the alert queue, paged in its order for one tenant or many.
    Migration::Sql("
    CREATE INDEX alerts_queue ON alerts (severity DESC, first_seen, id);
    CREATE INDEX alerts_queue_tenant ON alerts (tenant_id, severity DESC, first_seen, id);
    "),
    // 17: the overview's counts per tenant, kind, severity and status,
    // read from the index alone.
    Migration::Sql("
    CREATE INDEX alerts_counts ON alerts (tenant_id, kind, severity, status);
    "),
    // 18: ingest freshness: events per endpoint, log source and hour of
    // event time, the last day of each kept.
    Migration::Sql("
    CREATE TABLE feed_hours (
        tenant_id INTEGER NOT NULL,
        endpoint_id INTEGER NOT NULL,
        logsource TEXT NOT NULL,
        hour INTEGER NOT NULL,
        events INTEGER NOT NULL,
        last_event INTEGER NOT NULL,
        ingested INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, endpoint_id, logsource, hour)
    ) WITHOUT ROWID;
    "),
    // 19: the alert queue newest first, for one tenant or many.
    Migration::Sql("
    CREATE INDEX alerts_newest ON alerts (last_seen DESC, id);
    CREATE INDEX alerts_newest_tenant ON alerts (tenant_id, last_seen DESC, id);
    "),
    // 20: TAXII 2.1 collections polled for intel, and where each poll
    // resumes (global intel, like the indicators they bring).
    Migration::Sql("
    CREATE TABLE taxii_feeds (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        api_root TEXT NOT NULL,
        collection TEXT NOT NULL,
        username TEXT,
        secret TEXT,
        added_after TEXT,
        added INTEGER NOT NULL,
        polled INTEGER,
        error TEXT
    );
    "),
    // 21: notifications: targets (webhooks, syslog collectors) with where
    // each has read the alert changes up to, and the outbox they are
    // delivered from, written in the transaction that moves the cursors.
    Migration::Sql("
    CREATE TABLE notify_targets (
        id INTEGER PRIMARY KEY,
        tenant_id INTEGER,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        address TEXT NOT NULL,
        secret TEXT,
        format TEXT NOT NULL,
        events TEXT NOT NULL,
        kinds TEXT NOT NULL,
        min_severity INTEGER,
        added INTEGER NOT NULL,
        alert_cursor INTEGER NOT NULL,
        history_cursor INTEGER NOT NULL,
        campaign_cursor INTEGER NOT NULL
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        target_id INTEGER NOT NULL,
        key TEXT NOT NULL,
        event TEXT NOT NULL,
        payload TEXT NOT NULL,
        created INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER NOT NULL,
        delivered INTEGER,
        dead INTEGER,
        error TEXT,
        UNIQUE (target_id, key)
    );
    CREATE INDEX outbox_pending ON outbox (target_id, id) WHERE delivered IS NULL AND dead IS NULL;
    "),
    // 22: a syslog collector's own certificate authority (PEM), for TLS
    // to a collector whose certificate no public root signs.
    Migration::Sql("
    ALTER TABLE notify_targets ADD COLUMN ca TEXT;
    "),
];

fn indicator_match_columns(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "ALTER TABLE indicators ADD COLUMN campaign TEXT;
         ALTER TABLE indicators ADD COLUMN valid_from INTEGER;
         ALTER TABLE indicators ADD COLUMN valid_until INTEGER;
         ALTER TABLE indicators ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;",
    )?;
    let docs: Vec<(i64, String)> = tx
        .prepare("SELECT id, doc FROM indicators")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut update = tx.prepare(
        "UPDATE indicators SET campaign = ?, valid_from = ?, valid_until = ?, revoked = ? WHERE id = ?",
    )?;
    for (id, doc) in docs {
        let ind: Indicator = serde_json::from_str(&doc).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?;
        update.execute(rusqlite::params![
            ind.campaign,
            ind.valid_from.map(|t| t.0),
            ind.valid_until.map(|t| t.0),
            ind.revoked,
            id
        ])?;
    }
    tx.execute_batch(
        "CREATE TABLE indicator_docs (
             id INTEGER PRIMARY KEY REFERENCES indicators(id),
             doc TEXT NOT NULL
         );
         INSERT INTO indicator_docs (id, doc) SELECT id, doc FROM indicators;
         ALTER TABLE indicators DROP COLUMN doc;",
    )?;
    Ok(())
}

fn rekey_ledger_names(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let names: Vec<(i64, String)> = tx
        .prepare("SELECT id, name FROM ledger")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut update = tx.prepare("UPDATE ledger SET name_norm = ? WHERE id = ?")?;
    for (id, name) in names {
        update.execute(rusqlite::params![product_lookup_key(&name), id])?;
    }
    Ok(())
}
