//! Versioned schema migrations, applied in order inside one transaction
//! each; `PRAGMA user_version` records the last one applied.
//!
//! Every tenant-owned table leads with `tenant_id`, so that the same
//! layout distributes by tenant in a clustered database.

pub const MIGRATIONS: &[&str] = &[
    // 1: the core.
    "
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
    ",
    // 2: allowlists for network analytics, per tenant or global (NULL tenant).
    "
    CREATE TABLE allowlist (
        id INTEGER PRIMARY KEY,
        tenant_id INTEGER,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        reason TEXT NOT NULL,
        added INTEGER NOT NULL,
        UNIQUE (tenant_id, kind, value)
    );
    ",
    // 3: MSSP-level campaign alerts over several tenants' alerts.
    "
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
    ",
    // 4: Sigma rules, kept as their source text and compiled when loaded.
    "
    CREATE TABLE rules (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        source TEXT NOT NULL,
        text TEXT NOT NULL,
        added INTEGER NOT NULL,
        updated INTEGER NOT NULL
    );
    ",
    // 5: state a streaming analysis keeps between runs (Sigma correlation
    // windows), per tenant and analysis.
    "
    CREATE TABLE stream_state (
        tenant_id INTEGER NOT NULL REFERENCES tenants(id),
        name TEXT NOT NULL,
        state BLOB NOT NULL,
        updated INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, name)
    );
    ",
];
