//! PostgreSQL schema migrations, applied in order, each in its own
//! transaction, under an advisory lock so that servers and workers
//! starting together migrate once; `turncoat_schema` records the last.
//!
//! Laid out for Citus: every tenant-owned table has `tenant_id` first in
//! its primary key and in each unique constraint, so it distributes by
//! tenant and a tenant's rows (and their joins) stay on one node. Intel,
//! rules, users and the other global tables are small and shared: they
//! are reference tables. `docs/cluster.md` gives the statements, and
//! [`TENANT_OWNED`] is checked against the live schema by a test.
//!
//! Text compares and sorts bytewise (`COLLATE "C"`), as SQLite does, so
//! both backends list in one order whatever the database's locale.

/// Tables distributed by `tenant_id`.
pub const TENANT_OWNED: &[&str] = &[
    "endpoints",
    "addresses",
    "sources",
    "segments",
    "archive_frames",
    "observables",
    "sightings",
    "ledger",
    "alerts",
    "findings",
    "alert_history",
    "stream_state",
    "pending_work",
    "feed_hours",
];

/// Tables every node holds whole (Citus reference tables).
pub const SHARED: &[&str] = &[
    "tenants",
    "indicators",
    "indicator_docs",
    "advisories",
    "rules",
    "intel_state",
    "campaigns",
    "allowlist",
    "internal_networks",
    "users",
    "user_tenants",
    "tokens",
    "suppressions",
    "audit",
    "taxii_feeds",
    "notify_targets",
    "outbox",
    "derived_cache",
];

pub const MIGRATIONS: &[&str] = &[
    // 1: everything the embedded schema holds at its migration 22, plus
    // the archive's frames.
    r#"
    CREATE TABLE tenants (
        id BIGSERIAL PRIMARY KEY,
        name TEXT COLLATE "C" NOT NULL,
        created BIGINT NOT NULL
    );
    CREATE UNIQUE INDEX tenants_name ON tenants (lower(name));

    CREATE TABLE endpoints (
        tenant_id BIGINT NOT NULL,
        id BIGSERIAL NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        platform TEXT COLLATE "C",
        first_seen BIGINT NOT NULL,
        last_seen BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, name)
    );
    CREATE TABLE addresses (
        tenant_id BIGINT NOT NULL,
        ip TEXT COLLATE "C" NOT NULL,
        host TEXT COLLATE "C" NOT NULL,
        seen BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, ip)
    );
    CREATE TABLE sources (
        tenant_id BIGINT NOT NULL,
        id BIGSERIAL NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        hash BYTEA NOT NULL,
        head BYTEA NOT NULL,
        size BIGINT NOT NULL,
        lines BIGINT NOT NULL,
        complete BOOLEAN NOT NULL,
        ingested BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, hash)
    );
    CREATE INDEX sources_head ON sources (tenant_id, head);

    -- The archive: per tenant and hour a segment, its frames as rows.
    CREATE TABLE segments (
        tenant_id BIGINT NOT NULL,
        id BIGSERIAL NOT NULL,
        hour BIGINT NOT NULL,
        committed_len BIGINT NOT NULL,
        events BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, hour)
    );
    CREATE INDEX segments_id ON segments (id);
    CREATE TABLE archive_frames (
        tenant_id BIGINT NOT NULL,
        hour BIGINT NOT NULL,
        frame_offset BIGINT NOT NULL,
        events BIGINT NOT NULL,
        frame BYTEA NOT NULL,
        PRIMARY KEY (tenant_id, hour, frame_offset)
    ) PARTITION BY RANGE (hour);

    CREATE TABLE observables (
        tenant_id BIGINT NOT NULL,
        id BIGSERIAL NOT NULL,
        kind BIGINT NOT NULL,
        value TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, kind, value)
    );
    CREATE TABLE sightings (
        tenant_id BIGINT NOT NULL,
        observable_id BIGINT NOT NULL,
        endpoint_id BIGINT NOT NULL,
        day BIGINT NOT NULL,
        first_seen BIGINT NOT NULL,
        last_seen BIGINT NOT NULL,
        count BIGINT NOT NULL,
        segment_id BIGINT,
        frame_offset BIGINT,
        frame_index BIGINT,
        source_id BIGINT,
        PRIMARY KEY (tenant_id, observable_id, endpoint_id, day)
    );
    CREATE TABLE ledger (
        tenant_id BIGINT NOT NULL,
        id BIGSERIAL NOT NULL,
        endpoint_id BIGINT NOT NULL,
        source TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        name_norm TEXT COLLATE "C" NOT NULL,
        version TEXT COLLATE "C" NOT NULL,
        vendor TEXT COLLATE "C",
        platform TEXT COLLATE "C",
        ecosystem TEXT COLLATE "C" NOT NULL,
        installed BIGINT NOT NULL,
        removed BIGINT,
        file TEXT COLLATE "C",
        PRIMARY KEY (tenant_id, id)
    );
    CREATE INDEX ledger_open ON ledger (tenant_id, endpoint_id, source, name_norm, version) WHERE removed IS NULL;
    CREATE INDEX ledger_name ON ledger (tenant_id, name_norm);

    CREATE TABLE alerts (
        tenant_id BIGINT NOT NULL,
        id BIGSERIAL NOT NULL,
        endpoint_id BIGINT NOT NULL,
        kind TEXT COLLATE "C" NOT NULL,
        source TEXT COLLATE "C" NOT NULL,
        title TEXT COLLATE "C" NOT NULL,
        severity BIGINT NOT NULL,
        status TEXT COLLATE "C" NOT NULL,
        campaign TEXT COLLATE "C",
        first_seen BIGINT NOT NULL,
        last_seen BIGINT NOT NULL,
        count BIGINT NOT NULL,
        evidence TEXT COLLATE "C" NOT NULL,
        created BIGINT NOT NULL,
        updated BIGINT NOT NULL,
        campaign_alert BIGINT,
        status_reason TEXT COLLATE "C",
        assignee TEXT COLLATE "C",
        suppressed_by BIGINT,
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, endpoint_id, kind, source)
    );
    CREATE INDEX alerts_id ON alerts (id);
    CREATE INDEX alerts_queue ON alerts (severity DESC, first_seen, id);
    CREATE INDEX alerts_queue_tenant ON alerts (tenant_id, severity DESC, first_seen, id);
    CREATE INDEX alerts_newest ON alerts (last_seen DESC, id);
    CREATE INDEX alerts_newest_tenant ON alerts (tenant_id, last_seen DESC, id);
    CREATE INDEX alerts_counts ON alerts (tenant_id, kind, severity, status);
    CREATE INDEX alerts_campaign ON alerts (campaign_alert) WHERE campaign_alert IS NOT NULL;
    CREATE INDEX alerts_suppressed ON alerts (suppressed_by) WHERE suppressed_by IS NOT NULL;
    CREATE TABLE findings (
        tenant_id BIGINT NOT NULL,
        alert_id BIGINT NOT NULL,
        key TEXT COLLATE "C" NOT NULL,
        first_seen BIGINT NOT NULL,
        last_seen BIGINT NOT NULL,
        count BIGINT NOT NULL,
        evidence TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (tenant_id, alert_id, key)
    );
    CREATE TABLE alert_history (
        tenant_id BIGINT NOT NULL,
        id BIGSERIAL NOT NULL,
        alert_id BIGINT NOT NULL,
        time BIGINT NOT NULL,
        actor TEXT COLLATE "C" NOT NULL,
        action TEXT COLLATE "C" NOT NULL,
        value TEXT COLLATE "C",
        note TEXT COLLATE "C",
        PRIMARY KEY (tenant_id, id)
    );
    CREATE INDEX alert_history_alert ON alert_history (tenant_id, alert_id, id);
    CREATE INDEX alert_history_id ON alert_history (id);
    CREATE TABLE stream_state (
        tenant_id BIGINT NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        state BYTEA NOT NULL,
        updated BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, name)
    );
    CREATE TABLE pending_work (
        tenant_id BIGINT NOT NULL,
        work TEXT COLLATE "C" NOT NULL,
        since BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, work)
    );
    CREATE TABLE feed_hours (
        tenant_id BIGINT NOT NULL,
        endpoint_id BIGINT NOT NULL,
        logsource TEXT COLLATE "C" NOT NULL,
        hour BIGINT NOT NULL,
        events BIGINT NOT NULL,
        last_event BIGINT NOT NULL,
        ingested BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, endpoint_id, logsource, hour)
    );

    CREATE TABLE indicators (
        id BIGSERIAL PRIMARY KEY,
        kind TEXT COLLATE "C" NOT NULL,
        value TEXT COLLATE "C" NOT NULL,
        also TEXT COLLATE "C" NOT NULL,
        source TEXT COLLATE "C" NOT NULL,
        added BIGINT NOT NULL,
        updated BIGINT NOT NULL,
        campaign TEXT COLLATE "C",
        valid_from BIGINT,
        valid_until BIGINT,
        revoked BOOLEAN NOT NULL DEFAULT false,
        UNIQUE (kind, value, also, source)
    );
    CREATE TABLE indicator_docs (
        id BIGINT PRIMARY KEY,
        doc TEXT COLLATE "C" NOT NULL
    );
    CREATE TABLE intel_state (
        id BIGINT PRIMARY KEY CHECK (id = 1),
        nonce BIGINT NOT NULL,
        generation BIGINT NOT NULL
    );
    INSERT INTO intel_state (id, nonce, generation)
        VALUES (1, (random() * 9.2e18)::bigint, 0);
    CREATE TABLE advisories (
        id TEXT COLLATE "C" PRIMARY KEY,
        doc TEXT COLLATE "C" NOT NULL,
        added BIGINT NOT NULL,
        updated BIGINT NOT NULL
    );
    CREATE TABLE rules (
        id TEXT COLLATE "C" PRIMARY KEY,
        title TEXT COLLATE "C" NOT NULL,
        source TEXT COLLATE "C" NOT NULL,
        text TEXT COLLATE "C" NOT NULL,
        added BIGINT NOT NULL,
        updated BIGINT NOT NULL
    );
    CREATE TABLE campaigns (
        id BIGSERIAL PRIMARY KEY,
        kind TEXT COLLATE "C" NOT NULL,
        source TEXT COLLATE "C" NOT NULL,
        title TEXT COLLATE "C" NOT NULL,
        first_seen BIGINT NOT NULL,
        last_seen BIGINT NOT NULL,
        created BIGINT NOT NULL,
        updated BIGINT NOT NULL,
        UNIQUE (kind, source)
    );
    CREATE TABLE allowlist (
        id BIGSERIAL PRIMARY KEY,
        tenant_id BIGINT,
        kind TEXT COLLATE "C" NOT NULL,
        value TEXT COLLATE "C" NOT NULL,
        reason TEXT COLLATE "C" NOT NULL,
        added BIGINT NOT NULL
    );
    CREATE UNIQUE INDEX allowlist_entry ON allowlist ((coalesce(tenant_id, 0)), kind, value);
    CREATE TABLE internal_networks (
        id BIGSERIAL PRIMARY KEY,
        tenant_id BIGINT,
        cidr TEXT COLLATE "C" NOT NULL,
        note TEXT COLLATE "C" NOT NULL,
        added BIGINT NOT NULL
    );
    CREATE UNIQUE INDEX internal_networks_range ON internal_networks ((coalesce(tenant_id, 0)), cidr);
    CREATE TABLE users (
        id BIGSERIAL PRIMARY KEY,
        name TEXT COLLATE "C" NOT NULL,
        role TEXT COLLATE "C" NOT NULL,
        password_hash TEXT COLLATE "C" NOT NULL,
        created BIGINT NOT NULL
    );
    CREATE UNIQUE INDEX users_name ON users (lower(name));
    CREATE TABLE user_tenants (
        user_id BIGINT NOT NULL,
        tenant_id BIGINT NOT NULL,
        PRIMARY KEY (user_id, tenant_id)
    );
    CREATE TABLE tokens (
        id BIGSERIAL PRIMARY KEY,
        hash BYTEA NOT NULL UNIQUE,
        user_id BIGINT,
        tenant_id BIGINT,
        scope TEXT COLLATE "C",
        note TEXT COLLATE "C" NOT NULL,
        created BIGINT NOT NULL,
        expires BIGINT,
        revoked BIGINT
    );
    CREATE TABLE suppressions (
        id BIGSERIAL PRIMARY KEY,
        tenant_id BIGINT,
        kind TEXT COLLATE "C",
        source TEXT COLLATE "C" NOT NULL,
        endpoint TEXT COLLATE "C",
        reason TEXT COLLATE "C" NOT NULL,
        owner TEXT COLLATE "C" NOT NULL,
        created BIGINT NOT NULL,
        expires BIGINT,
        ended BIGINT
    );
    CREATE TABLE audit (
        id BIGSERIAL PRIMARY KEY,
        time BIGINT NOT NULL,
        actor TEXT COLLATE "C" NOT NULL,
        tenant_id BIGINT,
        action TEXT COLLATE "C" NOT NULL,
        detail TEXT COLLATE "C" NOT NULL
    );
    CREATE TABLE taxii_feeds (
        id BIGSERIAL PRIMARY KEY,
        name TEXT COLLATE "C" NOT NULL UNIQUE,
        api_root TEXT COLLATE "C" NOT NULL,
        collection TEXT COLLATE "C" NOT NULL,
        username TEXT COLLATE "C",
        secret TEXT COLLATE "C",
        added_after TEXT COLLATE "C",
        added BIGINT NOT NULL,
        polled BIGINT,
        error TEXT COLLATE "C"
    );
    CREATE TABLE notify_targets (
        id BIGSERIAL PRIMARY KEY,
        tenant_id BIGINT,
        name TEXT COLLATE "C" NOT NULL UNIQUE,
        kind TEXT COLLATE "C" NOT NULL,
        address TEXT COLLATE "C" NOT NULL,
        secret TEXT COLLATE "C",
        format TEXT COLLATE "C" NOT NULL,
        events TEXT COLLATE "C" NOT NULL,
        kinds TEXT COLLATE "C" NOT NULL,
        min_severity BIGINT,
        added BIGINT NOT NULL,
        alert_cursor BIGINT NOT NULL,
        history_cursor BIGINT NOT NULL,
        campaign_cursor BIGINT NOT NULL,
        ca TEXT COLLATE "C"
    );
    CREATE TABLE outbox (
        id BIGSERIAL PRIMARY KEY,
        target_id BIGINT NOT NULL,
        key TEXT COLLATE "C" NOT NULL,
        event TEXT COLLATE "C" NOT NULL,
        payload TEXT COLLATE "C" NOT NULL,
        created BIGINT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0,
        next_attempt BIGINT NOT NULL,
        delivered BIGINT,
        dead BIGINT,
        error TEXT COLLATE "C",
        UNIQUE (target_id, key)
    );
    CREATE INDEX outbox_pending ON outbox (target_id, id) WHERE delivered IS NULL AND dead IS NULL;
    -- Derived data (a built intel index), which the embedded store keeps
    -- as files: a cluster has no local disk state.
    CREATE TABLE derived_cache (
        name TEXT COLLATE "C" PRIMARY KEY,
        bytes BYTEA NOT NULL,
        updated BIGINT NOT NULL
    );
    "#,
];
