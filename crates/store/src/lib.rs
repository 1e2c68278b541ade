//! Storage for turncoat: the [`Store`] trait every backend implements, the
//! embedded SQLite backend ([`SqliteStore`]), and the event archive.
//!
//! Invariants every backend keeps:
//! - every tenant-owned read and write takes a [`Tenant`] or a [`Scope`]
//!   obtained from the store, and touches only that tenant's rows;
//! - a [`Batch`] is committed whole or not at all, archive included;
//! - findings are idempotent: the same finding key updates, never duplicates.

#![forbid(unsafe_code)]

mod archive;
mod codec;
/// The behaviour every backend must show, as checks a backend's tests
/// run (`conformance` feature: not compiled into the product).
#[cfg(feature = "conformance")]
pub mod conformance;
mod ledger;
mod location;
mod lock;
mod pg;
mod rows;
mod schema;
mod sqlite;

use std::fmt;

use serde::{Deserialize, Serialize};
use turncoat_core::{
    Actor, AlertId, AlertKind, AlertStatus, Ecosystem, Event, Evidence, Finding, Indicator,
    IndicatorRef, InventoryRecord, Observable, ObservableKind, Platform, Role, Severity, TenantId,
    TenantName, Time, TokenScope, quote,
};

pub use codec::{EncodedEvents, FeedTally, Projection, RecordHead, decode_records};
pub use location::{AnyStore, StoreLocation};
pub use lock::{LockHolder, LockWait, WriterLock};
pub use pg::schema::{SHARED as CLUSTER_SHARED_TABLES, TENANT_OWNED as CLUSTER_TENANT_TABLES};
pub use pg::{CopyCheck, CopyReport, PgStore, compare};
pub use sqlite::{DEFAULT_LOCK_TIMEOUT, SqliteStore};

fn tenant_exists(asked: &str, existing: &str) -> String {
    if asked == existing {
        format!("tenant {} already exists", quote(asked))
    } else {
        format!(
            "tenant {} would be the existing tenant {}: names are compared ignoring case",
            quote(asked),
            quote(existing)
        )
    }
}

impl StoreError {
    /// Names `file` as the one that filled the disk, when the error is
    /// that and does not name one yet.
    pub fn in_file(self, file: &std::path::Path) -> StoreError {
        match self {
            StoreError::DiskFull { file: None } => StoreError::DiskFull {
                file: Some(file.display().to_string()),
            },
            other => other,
        }
    }

    /// No tenant is named `name` among `known`; the hint says what to do
    /// instead, and never suggests adding a name `tenant add` refuses.
    pub fn no_such_tenant(name: &str, known: &[Tenant]) -> StoreError {
        let hint = if let Some(t) = known
            .iter()
            .find(|t| t.name.as_str().eq_ignore_ascii_case(name))
        {
            format!("did you mean {}?", quote(t.name.as_str()))
        } else {
            match TenantName::new(name) {
                Ok(valid) => format!("create it with `turncoat tenant add {valid}`"),
                Err(e) => format!("no tenant can be named so: {}", e.reason),
            }
        };
        StoreError::NoSuchTenant {
            name: name.to_owned(),
            hint,
        }
    }
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed; the backend's error is the source.
    #[error("database: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A file of the data directory (the cache) could not be read or written.
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("archive {path}: {message}")]
    Archive { path: String, message: String },
    /// Out of disk space. The write it stopped was rolled back whole.
    #[error(
        "{}: no space left on the device; the batch being written was rolled back, nothing is half-written: free space and run again (an ingest resumes where it stopped)",
        file.as_deref().unwrap_or("the data directory's database")
    )]
    DiskFull { file: Option<String> },
    /// Tenant names are unique ignoring case: `Acme` and `acme` would be
    /// one customer to every analyst reading them.
    #[error("{}", tenant_exists(asked, existing))]
    TenantExists { asked: String, existing: String },
    #[error("no tenant named {}; {hint}", quote(name))]
    NoSuchTenant { name: String, hint: String },
    /// User names are unique ignoring case, like tenant names.
    #[error("a user named {} exists", quote(.0))]
    UserExists(String),
    #[error("no user named {}", quote(.0))]
    NoSuchUser(String),
    #[error("no suppression {0}")]
    NoSuchSuppression(i64),
    #[error("no token {0}")]
    NoSuchToken(i64),
    #[error("a TAXII feed named {} exists", quote(.0))]
    FeedExists(String),
    #[error("no TAXII feed {0}")]
    NoSuchFeed(i64),
    #[error("a notification target named {} exists", quote(.0))]
    TargetExists(String),
    #[error("no notification target {0}")]
    NoSuchTarget(i64),
    #[error(
        "the data directory was written by a newer turncoat (schema {found}; this build knows up to {known})"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("{0} belongs to another tenant")]
    OutOfScope(String),
    #[error("corrupt stored record: {0}")]
    Corrupt(String),
    /// A stored value that no longer reads as its type, with why.
    #[error("corrupt stored record: {0}")]
    CorruptValue(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A write through a store opened for reading.
    #[error("the data directory is open for reading only")]
    ReadOnly,
    #[error(
        "the data directory {dir} is held by {holder}; gave up after {waited_s} s (--lock-timeout sets how long to wait)"
    )]
    Locked {
        dir: String,
        holder: LockHolder,
        waited_s: u64,
    },
    #[error(
        "no turncoat data directory at {0} (create one with `turncoat tenant add NAME`, or give --data)"
    )]
    NoStore(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A tenant as stored. Only the store makes one (adding or resolving a
/// tenant), so a [`Scope`] built from tenants is one the store handed out:
/// code outside it cannot name a tenant by number.
///
/// ```compile_fail
/// use turncoat_store::{Scope, Tenant};
/// // The fields are the store's: no tenant, and so no scope, from a number.
/// let name = turncoat_core::TenantName::new("acme").unwrap();
/// let forged = Tenant { id: 1, name, created: turncoat_core::Time(0) };
/// let scope = Scope::tenant(&forged);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tenant {
    #[serde(skip)]
    pub(crate) id: i64,
    pub(crate) name: TenantName,
    pub(crate) created: Time,
}

impl Tenant {
    /// The store's number for it: what its rows are keyed by.
    pub fn id(&self) -> TenantId {
        TenantId::new(self.id)
    }

    pub fn name(&self) -> &TenantName {
        &self.name
    }

    pub fn created(&self) -> Time {
        self.created
    }
}

/// The tenants a caller may see: every query over several tenants is
/// limited to it, and an operation on one tenant takes that [`Tenant`],
/// the scope of one. Both come only from the store: [`Scope::tenant`] and
/// [`Scope::tenants`] take tenants it resolved, and [`Store::all_tenants`]
/// is the MSSP administrator's. An authorisation layer narrows a scope to
/// the tenants a user was granted with [`Scope::get`].
///
/// ```compile_fail
/// use turncoat_store::Scope;
/// // No scope from tenant numbers: its members are the store's tenants.
/// let forged = Scope { tenants: Vec::new() };
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Scope {
    tenants: Vec<Tenant>,
}

impl Scope {
    /// One tenant: a tenant viewer, or an analyst working one customer.
    pub fn tenant(t: &Tenant) -> Scope {
        Scope {
            tenants: vec![t.clone()],
        }
    }

    /// Several tenants: an analyst's list, or every tenant for an MSSP admin.
    pub fn tenants(ts: &[Tenant]) -> Scope {
        Scope {
            tenants: ts.to_vec(),
        }
    }

    pub fn members(&self) -> &[Tenant] {
        &self.tenants
    }

    /// The member named `name`, as [`Store::tenant`] finds it.
    pub fn get(&self, name: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.name.as_str() == name)
    }

    /// Whether the tenant keyed `tenant_id` in storage is a member.
    pub(crate) fn contains(&self, tenant_id: i64) -> bool {
        self.tenants.iter().any(|t| t.id == tenant_id)
    }
}

/// Identifies an input file by content: re-ingesting the same bytes is a
/// no-op, and a file that grew is ingested from where it was left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFingerprint {
    /// Hash of the whole content.
    pub hash: [u8; 32],
    /// Hash of the first few hundred bytes, to find earlier, shorter versions.
    pub head: [u8; 32],
    pub size: u64,
}

/// What the store knows of an ingested source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRecord {
    pub id: i64,
    pub name: String,
    pub fingerprint: SourceFingerprint,
    /// Lines (or records) committed so far.
    pub lines: u64,
    pub complete: bool,
}

/// Where one archived event sits: a segment, the frame's offset in it,
/// and the event's position in the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRef {
    pub segment: i64,
    pub offset: u64,
    pub index: u32,
}

/// One (observable, endpoint, day) rollup from a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct SightingDelta {
    pub observable: Observable,
    pub endpoint: String,
    pub first: Time,
    pub last: Time,
    pub count: u64,
    /// Index into [`Batch::events`] of one event showing it.
    pub event: usize,
}

/// Progress of the source a batch came from.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceUpdate {
    pub fingerprint: SourceFingerprint,
    pub name: String,
    /// Lines read so far, this batch included.
    pub lines: u64,
    pub complete: bool,
}

/// Everything one ingest batch changes, committed atomically.
#[derive(Debug, Default)]
pub struct Batch {
    pub source: Option<SourceUpdate>,
    /// Events to archive, encoded as added.
    pub events: EncodedEvents,
    pub sightings: Vec<SightingDelta>,
    pub inventory: Vec<InventoryRecord>,
    /// Live findings, each with the index of its evidence event if any.
    pub findings: Vec<(Finding, Option<usize>)>,
    /// (IP, host name, when) pairs learned from the telemetry.
    pub addresses: Vec<(String, String, Time)>,
    /// Endpoints seen, with their platform where known.
    pub endpoints: Vec<(String, Option<Platform>, Time)>,
    /// Work the batch makes due once the run's batches are in, recorded
    /// in the batch's own transaction (see [`PendingWork`]).
    pub pending: Vec<PendingWork>,
    /// Stream state as of this batch (`name`, bytes), replaced in its
    /// transaction: a run killed after the batch resumes from it.
    pub stream_state: Vec<(&'static str, Vec<u8>)>,
}

/// Work an ingest owes after its last batch. It is recorded in the same
/// transaction as the batch that makes it due and cleared only once done,
/// so a run killed in between leaves it for the next run to finish; each
/// step is idempotent, so doing it twice is harmless.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PendingWork {
    /// Beacon scoring over the tenant's recent connections.
    Beacons,
    /// Cross-tenant campaign escalation.
    Campaigns,
}

impl PendingWork {
    pub const ALL: [PendingWork; 2] = [PendingWork::Beacons, PendingWork::Campaigns];

    pub fn as_str(self) -> &'static str {
        match self {
            PendingWork::Beacons => "beacons",
            PendingWork::Campaigns => "campaigns",
        }
    }

    pub fn parse(s: &str) -> Option<PendingWork> {
        PendingWork::ALL.into_iter().find(|w| w.as_str() == s)
    }
}

/// What committing a batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub events: u64,
    pub new_alerts: u64,
    pub updated_alerts: u64,
    pub ledger_changes: u64,
}

/// How a finding's count combines with the stored one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FindingMode {
    /// Live detection: the batch's events are added.
    Add,
    /// Re-analysis: the count is recomputed from stored sightings.
    Set,
    /// Retro-hunt of intel imported or changed just now: as [`Set`], and
    /// a dismissed alert (false positive, suppressed) it names resurfaces,
    /// back to `new` with its history saying why.
    ///
    /// [`Set`]: FindingMode::Set
    NewIntel,
}

/// What recording findings did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FindingsOutcome {
    pub new_alerts: u64,
    pub updated_alerts: u64,
    /// Dismissed alerts brought back: named by new intel, or their
    /// severity rose.
    #[serde(skip_serializing_if = "is_zero")]
    pub resurfaced: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One interval of one product version on one endpoint.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LedgerEntry {
    pub endpoint: String,
    pub source: String,
    pub name: String,
    pub version: String,
    pub vendor: Option<String>,
    pub platform: Option<Platform>,
    pub ecosystem: Ecosystem,
    pub installed: Time,
    pub removed: Option<Time>,
    pub file: Option<String>,
}

/// A stored sighting, with its observable.
#[derive(Clone, Debug, PartialEq)]
pub struct Sighting {
    pub observable_id: i64,
    pub observable: Observable,
    pub endpoint: String,
    pub first_seen: Time,
    pub last_seen: Time,
    pub count: u64,
    pub event: Option<EventRef>,
    pub file: Option<String>,
}

/// An indicator as stored, with its id.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredIndicator {
    pub id: i64,
    pub indicator: Indicator,
    pub added: Time,
    /// When a re-import last changed it (its validity, revocation or
    /// attribution); `added` until then.
    pub updated: Time,
}

/// What an indicator import changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IndicatorUpsert {
    /// Indicators not stored before.
    pub inserted: Vec<i64>,
    /// Indicators whose validity, revocation or attribution changed.
    pub changed: Vec<i64>,
    pub unchanged: usize,
}

/// An alert: findings deduplicated by (tenant, endpoint, kind, source).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    pub id: AlertId,
    pub tenant: TenantName,
    pub endpoint: String,
    pub kind: AlertKind,
    pub source: String,
    pub title: String,
    pub severity: Severity,
    pub status: AlertStatus,
    pub campaign: Option<String>,
    pub first_seen: Time,
    pub last_seen: Time,
    pub count: u64,
    pub evidence: Evidence,
    pub created: Time,
    pub updated: Time,
    /// The MSSP-level campaign alert this alert is a member of.
    pub campaign_alert: Option<i64>,
    /// Why the status was set other than by hand (the allowlist entry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// The user working on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// Where the event that raised it is archived, when it was one
    /// ([`Store::read_event`] reads it back).
    #[serde(skip)]
    pub event: Option<EventRef>,
}

/// Where notifications go: a webhook (an HTTPS URL) or a syslog
/// collector (`udp://`, `tcp://`, `tls://` host and port), for one
/// tenant or all, with what it wants to hear of.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NotifyTarget {
    pub id: i64,
    /// `None`: every tenant (an MSSP target; it alone hears of campaigns).
    pub tenant: Option<TenantName>,
    pub name: String,
    /// `webhook` or `syslog`.
    pub kind: String,
    pub address: String,
    /// The payload's shape: `json`, `slack`, `teams` (webhooks);
    /// `rfc5424`, `cef` (syslog).
    pub format: String,
    /// Of `new`, `status`, `resurfaced`, `campaign`.
    pub events: Vec<String>,
    /// Alert kinds heard of; all when empty.
    pub kinds: Vec<AlertKind>,
    pub min_severity: Option<Severity>,
    /// A TLS collector's own certificate authority (PEM), trusted beside
    /// the public roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    pub added: Time,
}

/// A target to add.
#[derive(Clone, Copy, Debug)]
pub struct NewNotifyTarget<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub address: &'a str,
    pub secret: Option<&'a str>,
    pub format: &'a str,
    pub events: &'a [String],
    pub kinds: &'a [AlertKind],
    pub min_severity: Option<Severity>,
    pub ca: Option<&'a str>,
}

/// What changed since a target last read, in order, and the cursors to
/// record once its notifications are queued.
#[derive(Clone, Debug, Default)]
pub struct NotifyChanges {
    /// Alerts raised since.
    pub new_alerts: Vec<Alert>,
    /// Status changes and resurfacings since, each with its alert as it
    /// is now, and the history row's number.
    pub changes: Vec<(i64, AlertChange, Alert)>,
    /// Campaigns raised since (targets of every tenant only).
    pub campaigns: Vec<CampaignAlert>,
    pub cursors: NotifyCursors,
}

/// How far a target has read: the last alert, history row and campaign.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotifyCursors {
    pub alert: i64,
    pub history: i64,
    pub campaign: i64,
}

/// A notification to queue: its idempotency key (unique per target), its
/// event and its payload (JSON).
#[derive(Clone, Debug)]
pub struct NewNotification {
    pub key: String,
    pub event: String,
    pub payload: String,
}

/// A queued notification, with its target.
#[derive(Clone, Debug, Serialize)]
pub struct Notification {
    pub id: i64,
    pub target: NotifyTarget,
    pub key: String,
    pub event: String,
    pub payload: String,
    pub created: Time,
    pub attempts: u32,
    pub next_attempt: Time,
    pub delivered: Option<Time>,
    pub dead: Option<Time>,
    pub error: Option<String>,
}

/// How a delivery went.
#[derive(Clone, Debug)]
pub enum Delivery {
    Delivered,
    /// Failed; tried again at `retry_at`, or given up on (dead-lettered)
    /// when `None`.
    Failed {
        error: String,
        retry_at: Option<Time>,
    },
}

/// A TAXII 2.1 collection polled for intel, and where the next poll
/// resumes. The secret is never listed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaxiiFeed {
    pub id: i64,
    pub name: String,
    /// The API root's URL (ending in `/`).
    pub api_root: String,
    pub collection: String,
    pub username: Option<String>,
    /// The last `X-TAXII-Date-Added-Last` taken: objects added after it
    /// come next.
    pub added_after: Option<String>,
    pub added: Time,
    pub polled: Option<Time>,
    /// Why the last poll failed, until one succeeds.
    pub error: Option<String>,
}

/// A feed to add: `secret` is the password or token sent with Basic
/// authentication.
#[derive(Clone, Copy, Debug)]
pub struct NewTaxiiFeed<'a> {
    pub name: &'a str,
    pub api_root: &'a str,
    pub collection: &'a str,
    pub username: Option<&'a str>,
    pub secret: Option<&'a str>,
}

/// One endpoint's events of one log source: when the newest happened,
/// when events of it last arrived, and how fast they come; a sensor gone
/// silent shows as an old `last_event`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Feed {
    pub tenant: TenantName,
    pub endpoint: String,
    /// `product/category/service`, the parts it has.
    pub logsource: String,
    pub last_event: Time,
    pub last_ingested: Time,
    /// Events per minute over the hour or two before its newest event
    /// (the hours of event time that hold it and the one before).
    pub per_minute: f64,
    /// The events that rate is made of.
    pub recent_events: u64,
}

/// A number of alerts of one tenant, kind, severity and status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertCount {
    pub tenant: TenantName,
    pub kind: AlertKind,
    pub severity: Severity,
    pub status: AlertStatus,
    pub count: u64,
}

/// What a change to an alert was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AlertAction {
    /// The status was set (the value), with the reason given.
    Status,
    /// Assigned to the value, or unassigned when there is none.
    Assign,
    /// A comment: the note.
    Comment,
    /// Back to `new` from a dismissal, the note saying why.
    Resurfaced,
    /// The source was renamed to the value (a beacon's destination named).
    Source,
}

impl AlertAction {
    pub const ALL: [AlertAction; 5] = [
        AlertAction::Status,
        AlertAction::Assign,
        AlertAction::Comment,
        AlertAction::Resurfaced,
        AlertAction::Source,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertAction::Status => "status",
            AlertAction::Assign => "assign",
            AlertAction::Comment => "comment",
            AlertAction::Resurfaced => "resurfaced",
            AlertAction::Source => "source",
        }
    }
}

/// A rule that closes matching alerts, present and future, as
/// `suppressed`, until it expires or is removed; then they resurface.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Suppression {
    pub id: i64,
    /// The tenant it is for; every tenant's when `None`.
    pub tenant: Option<TenantName>,
    /// Alerts of this kind only, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<AlertKind>,
    /// The alert source it matches (an indicator, a rule id, a
    /// destination, an advisory), ignoring case.
    pub source: String,
    /// One endpoint only, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    pub reason: String,
    /// Who added it.
    pub owner: String,
    pub created: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<Time>,
}

/// A suppression to add.
#[derive(Clone, Copy, Debug)]
pub struct NewSuppression<'a> {
    pub kind: Option<AlertKind>,
    pub source: &'a str,
    pub endpoint: Option<&'a str>,
    pub reason: &'a str,
    pub expires: Option<Time>,
}

/// One entry of an alert's history.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertChange {
    pub time: Time,
    pub actor: String,
    pub action: AlertAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Which alerts to list.
#[derive(Clone, Debug, Default)]
pub struct AlertFilter {
    pub kind: Option<AlertKind>,
    pub status: Option<AlertStatus>,
    pub endpoint: Option<String>,
    pub limit: Option<usize>,
}

/// The order of the alert queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AlertOrder {
    /// The highest severity first, then the earliest first seen, then id.
    #[default]
    Severity,
    /// The latest last seen first, then id.
    Newest,
}

/// One page of the alert queue, in `order`. Paged by the last row's key,
/// not by position, so a page costs the same however deep it is.
#[derive(Clone, Copy, Debug)]
pub struct AlertPage<'a> {
    pub order: AlertOrder,
    pub filter: &'a AlertFilter,
    /// This severity or higher.
    pub min_severity: Option<Severity>,
    /// Last seen at or after this time.
    pub since: Option<Time>,
    /// Text in the title, source or endpoint, ignoring (ASCII) case.
    pub text: Option<&'a str>,
    pub assignee: Option<&'a str>,
    /// The key of the previous page's last alert: its severity, first
    /// seen and id; by [`AlertOrder::Newest`], its last seen and id (the
    /// severity is not read).
    pub after: Option<(Severity, Time, AlertId)>,
    pub limit: usize,
}

/// One audit log entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Increasing with every entry: the log's order.
    pub id: i64,
    pub time: Time,
    pub actor: String,
    pub tenant: Option<TenantName>,
    pub action: String,
    pub detail: String,
}

/// A person who signs in, as stored (never with the password hash: that
/// is read only to check a password, with [`Store::password_hash`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub name: String,
    pub role: Role,
    /// The tenants granted; empty for an admin, and for an analyst of
    /// every tenant.
    pub tenants: Vec<TenantName>,
    pub created: Time,
}

/// A user to add: `password_hash` is a PHC string (Argon2id).
#[derive(Clone, Debug)]
pub struct NewUser<'a> {
    pub name: &'a str,
    pub role: Role,
    pub tenants: &'a [Tenant],
    pub password_hash: &'a str,
}

/// Whose an API token is: a user's (it carries that user's role and
/// tenants) or a tenant's (it carries a scope in that tenant only).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TokenOwner {
    User {
        user: String,
    },
    Tenant {
        tenant: TenantName,
        scope: TokenScope,
    },
}

/// An API token as stored: never its secret, only a hash of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Token {
    pub id: i64,
    #[serde(flatten)]
    pub owner: TokenOwner,
    pub note: String,
    pub created: Time,
    pub expires: Option<Time>,
    pub revoked: Option<Time>,
}

impl Token {
    /// Whether the token may be used at `now`.
    pub fn is_live(&self, now: Time) -> bool {
        self.revoked.is_none() && self.expires.is_none_or(|e| now < e)
    }
}

/// Whose a new token is; a tenant or user the store resolved.
#[derive(Clone, Debug)]
pub enum NewTokenOwner<'a> {
    User(&'a str),
    Tenant(&'a Tenant, TokenScope),
}

/// A token to add: the SHA-256 of its secret, and what it may do.
#[derive(Clone, Debug)]
pub struct NewToken<'a> {
    pub hash: [u8; 32],
    pub owner: NewTokenOwner<'a>,
    pub note: &'a str,
    pub expires: Option<Time>,
}

/// Counts of what a tenant has stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantStats {
    pub endpoints: u64,
    pub events: u64,
    pub sightings: u64,
    pub ledger_entries: u64,
    pub alerts: u64,
}

/// What an allowlist entry exempts from network analytics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AllowKind {
    /// A destination: a domain (with its subdomains), an IP or a CIDR.
    Destination,
    /// A source: a host name, an IP or a CIDR.
    Source,
}

impl AllowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AllowKind::Destination => "destination",
            AllowKind::Source => "source",
        }
    }
}

/// One allowlist entry; `tenant` is `None` for entries that hold for every tenant.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AllowEntry {
    pub id: i64,
    pub tenant: Option<TenantName>,
    pub kind: AllowKind,
    pub value: String,
    pub reason: String,
    pub added: Time,
}

/// An allowlist entry to add.
#[derive(Clone, Copy, Debug)]
pub struct NewAllowEntry<'a> {
    pub kind: AllowKind,
    pub value: &'a str,
    pub reason: &'a str,
}

/// What adding an allowlist entry did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AllowAdded {
    pub id: i64,
    /// Alerts it closed.
    pub closed: Vec<AlertId>,
}

/// A range of addresses a tenant (or, with `tenant` `None`, every tenant)
/// counts as its own besides the private ranges: its public ranges, a
/// sensor's address. Network analytics count only internal sources.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InternalNetwork {
    pub id: i64,
    pub tenant: Option<TenantName>,
    /// The range, in normal form (`203.0.113.0/24`).
    pub cidr: String,
    pub note: String,
    pub added: Time,
}

/// Post-ingest work left to do for a tenant.
#[derive(Clone, Debug, PartialEq)]
pub struct DueWork {
    pub tenant: Tenant,
    pub work: PendingWork,
}

/// What upserting a campaign did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignUpserted {
    pub id: i64,
    /// Whether the campaign was raised now rather than updated.
    pub new: bool,
    /// Dismissed member alerts of a campaign raised now, which so
    /// resurfaced: the same detection in other tenants is new evidence.
    pub resurfaced: Vec<AlertId>,
}

/// One entry of a tenant's address book: which host an IP belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub ip: String,
    pub host: String,
}

/// An MSSP-level alert: the same detection in several tenants.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignAlert {
    pub id: i64,
    /// The kind of the member alerts.
    pub kind: AlertKind,
    /// The member alerts' shared source (indicator, rule, drift behaviour).
    pub source: String,
    pub title: String,
    pub tenants: Vec<TenantName>,
    pub member_alerts: Vec<AlertId>,
    /// Tenants where a member alert was closed as a false positive.
    pub dismissed_tenants: usize,
    pub first_seen: Time,
    pub last_seen: Time,
    /// Whether other tenants, outside the scope that read it, share the
    /// campaign: then it is cut to the scope's own members (tenants,
    /// alerts, dismissals, dates) and its title names no tenant.
    pub beyond_scope: bool,
}

/// A stored detection rule: its id, title, where it came from, and its text.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredRule {
    pub id: String,
    pub title: String,
    pub source: String,
    pub text: String,
    pub updated: Time,
}

/// Called for every ledger interval a batch opens or closes; returns the
/// exposure findings it raises. Storage does not know advisories.
pub type LedgerHook<'a> = dyn FnMut(&LedgerEntry) -> Vec<Finding> + 'a;

/// A storage backend.
///
/// Tenant isolation is in the signatures: a method that reads or changes
/// one tenant's data takes that [`Tenant`], one over several takes a
/// [`Scope`], and both come only from the store. Intel, advisories and
/// rules are global; a campaign is seen whole only by a scope holding
/// every member tenant, by others cut to their own members.
pub trait Store {
    // Tenants (admin).
    fn add_tenant(&mut self, name: &TenantName, actor: &Actor) -> Result<Tenant>;
    fn tenants(&self) -> Result<Vec<Tenant>>;
    fn tenant(&self, name: &str) -> Result<Option<Tenant>>;
    /// Every tenant: the MSSP administrator's scope.
    fn all_tenants(&self) -> Result<Scope> {
        Ok(Scope::tenants(&self.tenants()?))
    }

    /// The tenant's address book, from DHCP and agents.
    fn addresses(&self, tenant: &Tenant) -> Result<Vec<Address>>;

    // Ingest.
    fn source(&self, tenant: &Tenant, hash: &[u8; 32]) -> Result<Option<SourceRecord>>;
    /// Complete sources with the same head hash that are shorter, longest first.
    fn sources_with_head(
        &self,
        tenant: &Tenant,
        head: &[u8; 32],
        shorter_than: u64,
    ) -> Result<Vec<SourceRecord>>;
    fn commit_batch(
        &mut self,
        tenant: &Tenant,
        batch: Batch,
        on_ledger: &mut LedgerHook<'_>,
    ) -> Result<BatchOutcome>;

    // Intel (global, not tenant-owned).
    /// Stores indicators in one transaction, taking them one at a time
    /// so that a feed of millions is never held whole.
    fn upsert_indicators(
        &mut self,
        indicators: &mut dyn Iterator<Item = Indicator>,
        actor: &Actor,
    ) -> Result<IndicatorUpsert>;
    fn indicators(&self) -> Result<Vec<StoredIndicator>>;
    /// Every stored indicator in id order, one at a time: what building the
    /// live index reads, without holding them all at once.
    fn scan_indicators(&self, each: &mut dyn FnMut(IndicatorRef<'_>)) -> Result<()>;
    /// How many indicators are stored: to size the live index up front.
    fn count_indicators(&self) -> Result<u64>;
    /// What the stored detection content is known by: it changes whenever
    /// indicators, advisories or rules do, and differs between databases,
    /// so a saved index (or a worker's loaded content) tagged with it is
    /// current exactly when the tags agree.
    fn intel_key(&self) -> Result<u64>;

    // Derived data kept beside the database to save recomputing it (the
    // live indicator index). Losing it costs time, never data.
    /// The saved bytes of `name`, if any.
    fn read_cache(&self, name: &str) -> Result<Option<Vec<u8>>>;
    /// Replaces `name` whole (never half-written); writers only.
    fn write_cache(&mut self, name: &str, bytes: &[u8]) -> Result<()>;
    fn indicators_by_id(&self, ids: &[i64]) -> Result<Vec<StoredIndicator>>;
    /// Stores advisories; returns the ids that are new or changed.
    fn upsert_advisories(
        &mut self,
        advisories: &[turncoat_core::Advisory],
        actor: &Actor,
    ) -> Result<Vec<String>>;
    fn advisories(&self) -> Result<Vec<turncoat_core::Advisory>>;

    // Retro-hunt reads.
    /// Calls `each` with every distinct observable of these kinds the tenant has seen.
    fn scan_observables(
        &self,
        tenant: &Tenant,
        kinds: &[ObservableKind],
        each: &mut dyn FnMut(i64, ObservableKind, &str),
    ) -> Result<()>;
    fn sightings(&self, tenant: &Tenant, observable_ids: &[i64]) -> Result<Vec<Sighting>>;
    /// Ledger intervals whose product name has one of these lookup keys
    /// ([`turncoat_core::advisory::product_lookup_key`])
    /// (all when `None`).
    fn ledger(&self, tenant: &Tenant, names: Option<&[String]>) -> Result<Vec<LedgerEntry>>;
    fn read_event(&self, tenant: &Tenant, at: EventRef) -> Result<Event>;
    /// Reads the tenant's archived events hour by hour, from the hour of
    /// `since` on (all when `None`); only the events and fields `what`
    /// accepts are decoded and handed to `each`.
    fn scan_archive(
        &self,
        tenant: &Tenant,
        since: Option<Time>,
        what: Projection<'_>,
        each: &mut dyn FnMut(Event),
    ) -> Result<()>;
    /// Reads the tenant's archived events of the hours from `from`'s to
    /// `to`'s (both included), as [`Store::scan_archive`] does: what is
    /// around a moment, without reading on to the archive's end.
    fn scan_hours(
        &self,
        tenant: &Tenant,
        from: Time,
        to: Time,
        what: Projection<'_>,
        each: &mut dyn FnMut(Event),
    ) -> Result<()>;
    /// The first and last archived hour of the tenant.
    fn archive_span(&self, tenant: &Tenant) -> Result<Option<(Time, Time)>>;

    // Findings and alerts.
    /// Records findings, each with the archived event that evidences it.
    fn record_findings(
        &mut self,
        tenant: &Tenant,
        findings: &[(Finding, Option<EventRef>)],
        mode: FindingMode,
    ) -> Result<FindingsOutcome>;
    /// Records findings and replaces a stream state in one transaction.
    fn record_findings_and_state(
        &mut self,
        tenant: &Tenant,
        findings: &[(Finding, Option<EventRef>)],
        mode: FindingMode,
        state: (&str, &[u8]),
    ) -> Result<FindingsOutcome>;
    fn alerts(&self, scope: &Scope, filter: &AlertFilter) -> Result<Vec<Alert>>;
    /// Alert `id`, when `scope` holds it: another tenant's is `None`,
    /// as one that does not exist.
    fn alert(&self, scope: &Scope, id: AlertId) -> Result<Option<Alert>>;
    /// How many alerts `scope` holds, per tenant, kind, severity and
    /// status: the overview's numbers without reading the alerts.
    fn alert_counts(&self, scope: &Scope) -> Result<Vec<AlertCount>>;
    // Notifications.
    /// Adds a target reading changes from now on (audited).
    fn add_notify_target(
        &mut self,
        tenant: Option<&Tenant>,
        target: &NewNotifyTarget<'_>,
        actor: &Actor,
    ) -> Result<NotifyTarget>;
    /// The targets of `scope`'s tenants, and those of every tenant.
    fn notify_targets(&self, scope: &Scope) -> Result<Vec<NotifyTarget>>;
    fn remove_notify_target(&mut self, scope: &Scope, id: i64, actor: &Actor) -> Result<()>;
    /// The webhook's signing secret.
    fn notify_secret(&self, id: i64) -> Result<Option<String>>;
    /// What the target has not read yet, at most `limit` of each, within
    /// its tenant (or every tenant).
    fn notify_changes(&self, target: &NotifyTarget, limit: usize) -> Result<NotifyChanges>;
    /// Queues notifications for the target and moves its cursors, in one
    /// transaction; one whose key is queued already is not queued again.
    fn enqueue_notifications(
        &mut self,
        target: i64,
        cursors: NotifyCursors,
        notifications: &[NewNotification],
        now: Time,
    ) -> Result<()>;
    /// For each target, its oldest notification not delivered nor given
    /// up on, when it is due: targets are served in order, one at a time.
    fn due_notifications(&self, now: Time) -> Result<Vec<Notification>>;
    /// Records how delivering notification `id` went.
    fn record_delivery(&mut self, id: i64, delivery: &Delivery, now: Time) -> Result<()>;
    /// Queued notifications of `scope`'s targets (and of every tenant's),
    /// newest first; those given up on only with `dead`.
    fn notifications(&self, scope: &Scope, dead: bool, limit: usize) -> Result<Vec<Notification>>;

    // TAXII feeds (global intel: no tenant).
    /// Adds a feed (audited); a taken name is [`StoreError::FeedExists`].
    fn add_taxii_feed(&mut self, feed: &NewTaxiiFeed<'_>, actor: &Actor) -> Result<TaxiiFeed>;
    fn taxii_feeds(&self) -> Result<Vec<TaxiiFeed>>;
    /// The password or token a feed is polled with.
    fn taxii_feed_secret(&self, id: i64) -> Result<Option<String>>;
    fn remove_taxii_feed(&mut self, id: i64, actor: &Actor) -> Result<()>;
    /// Records a poll: where the next resumes (kept when `None`), and the
    /// error when it failed.
    fn record_taxii_poll(
        &mut self,
        id: i64,
        added_after: Option<&str>,
        error: Option<&str>,
        at: Time,
    ) -> Result<()>;

    /// Every feed (endpoint and log source) of `scope`'s tenants.
    fn feeds(&self, scope: &Scope) -> Result<Vec<Feed>>;
    /// A page of `scope`'s alerts in the queue's order.
    fn alerts_page(&self, scope: &Scope, page: &AlertPage<'_>) -> Result<Vec<Alert>>;
    /// Sets the triage status, recording why (`None` clears the reason)
    /// and who, in the audit log.
    fn set_alert_status(
        &mut self,
        scope: &Scope,
        id: AlertId,
        status: AlertStatus,
        reason: Option<&str>,
        actor: &Actor,
    ) -> Result<()>;
    /// Assigns an alert to a user (`None`: to nobody); recorded in its
    /// history.
    fn assign_alert(
        &mut self,
        scope: &Scope,
        id: AlertId,
        assignee: Option<&str>,
        actor: &Actor,
    ) -> Result<()>;
    /// Adds a comment to an alert's history.
    fn comment_alert(
        &mut self,
        scope: &Scope,
        id: AlertId,
        text: &str,
        actor: &Actor,
    ) -> Result<()>;
    /// An alert's history, oldest first: status changes, assignments,
    /// comments, resurfacing.
    fn alert_history(&self, scope: &Scope, id: AlertId) -> Result<Vec<AlertChange>>;
    /// Adds a suppression for `tenant` (every tenant's when `None`) and
    /// closes the open alerts it matches; returns it and those alerts.
    fn add_suppression(
        &mut self,
        tenant: Option<&Tenant>,
        new: &NewSuppression<'_>,
        actor: &Actor,
    ) -> Result<(Suppression, Vec<AlertId>)>;
    /// The live suppressions: the global ones and those of `scope`.
    fn suppressions(&self, scope: &Scope) -> Result<Vec<Suppression>>;
    /// Ends suppression `id` (global ones only with a scope of every
    /// tenant); the alerts it holds resurface. Returns them.
    fn remove_suppression(&mut self, scope: &Scope, id: i64, actor: &Actor)
    -> Result<Vec<AlertId>>;
    /// Ends the suppressions expired by `now`; the alerts they hold
    /// resurface. Returns them.
    fn expire_suppressions(&mut self, now: Time) -> Result<Vec<AlertId>>;
    /// Gives an alert of `tenant` a new source, keeping its triage and
    /// history: a beacon first raised on a bare IP, named once the DNS or
    /// TLS record that names its destination has come in. Audited.
    fn rename_alert_source(
        &mut self,
        tenant: &Tenant,
        id: AlertId,
        source: &str,
        actor: &Actor,
    ) -> Result<()>;
    fn stats(&self, tenant: &Tenant) -> Result<TenantStats>;

    // Detection rules (global, like intel).
    /// Stores rules by id; returns the ids that are new or whose text changed.
    fn upsert_rules(&mut self, rules: &[StoredRule], actor: &Actor) -> Result<Vec<String>>;
    fn rules(&self) -> Result<Vec<StoredRule>>;

    // Campaigns (MSSP-level: only a scope holding every member tenant sees one).
    /// Creates or updates the campaign alert for (kind, source) and marks
    /// the member alerts.
    fn upsert_campaign(
        &mut self,
        kind: AlertKind,
        source: &str,
        title: &str,
        members: &[AlertId],
        actor: &Actor,
    ) -> Result<CampaignUpserted>;
    /// The campaigns with members in `scope`, as the scope may see them
    /// ([`CampaignAlert::beyond_scope`]).
    fn campaigns(&self, scope: &Scope) -> Result<Vec<CampaignAlert>>;

    // Allowlists: applied when analysing, so they reach stored data at once.
    /// Adds an entry for one tenant, or for all when `tenant` is `None`,
    /// and in the same transaction closes the alerts of `closes` it covers
    /// (status `allowlisted`, the entry and reason recorded, audited):
    /// those in its tenants and still open.
    fn add_allow(
        &mut self,
        tenant: Option<&Tenant>,
        entry: &NewAllowEntry<'_>,
        closes: &[AlertId],
        actor: &Actor,
    ) -> Result<AllowAdded>;
    /// The global entries and those of the tenants in scope.
    fn allowlist(&self, scope: &Scope) -> Result<Vec<AllowEntry>>;
    /// Removes an entry visible in `scope`.
    fn remove_allow(&mut self, scope: &Scope, id: i64, actor: &Actor) -> Result<()>;

    // Internal networks: which addresses are the tenants' own.
    /// Adds a range (`cidr` in normal form) for one tenant, or for all when
    /// `tenant` is `None`; adding it again updates the note.
    fn add_internal_network(
        &mut self,
        tenant: Option<&Tenant>,
        cidr: &str,
        note: &str,
        actor: &Actor,
    ) -> Result<i64>;
    /// The global ranges and those of the tenants in scope.
    fn internal_networks(&self, scope: &Scope) -> Result<Vec<InternalNetwork>>;
    /// Removes a range visible in `scope`.
    fn remove_internal_network(&mut self, scope: &Scope, id: i64, actor: &Actor) -> Result<()>;

    // Post-ingest work left to do (admin: every tenant's).
    fn pending_work(&self) -> Result<Vec<DueWork>>;
    /// Clears `work` for `tenant` once it is done.
    fn finish_work(&mut self, tenant: &Tenant, work: PendingWork) -> Result<()>;

    // Stream state: what a streaming analysis (Sigma correlation windows)
    // carries from one ingest run to the next, opaque to the store.
    // It is written with a batch (`Batch::stream_state`) or with findings
    // (`record_findings_and_state`), in their transaction.
    fn stream_state(&self, tenant: &Tenant, name: &str) -> Result<Option<Vec<u8>>>;

    // Audit.
    fn audit(
        &mut self,
        actor: &Actor,
        tenant: Option<&Tenant>,
        action: &str,
        detail: &str,
    ) -> Result<()>;
    fn audit_log(&self, scope: &Scope, limit: usize) -> Result<Vec<AuditEntry>>;
    /// When an action starting with `prefix` was last recorded, in
    /// `scope`'s tenants or for all (a blocklist's serial moves with its
    /// allowlist's changes, removals included).
    fn last_audited(&self, scope: &Scope, prefix: &str) -> Result<Option<Time>>;

    /// Whether the store still reaches its data: a database store asks
    /// its server (a round trip), so that a pool drops a store whose
    /// connection died (a database restart, a terminated backend) rather
    /// than handing it out. An embedded store always does.
    fn is_alive(&self) -> bool {
        true
    }

    // People and tokens (admin). Secrets are never stored, only hashes.
    /// Adds a user; names are unique ignoring case.
    fn add_user(&mut self, user: &NewUser<'_>, actor: &Actor) -> Result<User>;
    fn users(&self) -> Result<Vec<User>>;
    fn user(&self, name: &str) -> Result<Option<User>>;
    /// The stored password hash of `name`, to check a password against.
    fn password_hash(&self, name: &str) -> Result<Option<String>>;
    fn add_token(&mut self, token: &NewToken<'_>, actor: &Actor) -> Result<Token>;
    /// The token whose secret hashes to `hash`, live or not.
    fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<Token>>;
    fn tokens(&self) -> Result<Vec<Token>>;
    /// Revokes token `id` from now on; revoking it again changes nothing.
    fn revoke_token(&mut self, id: i64, actor: &Actor) -> Result<Token>;
}

impl fmt::Display for EventRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "segment {} @{}#{}",
            self.segment, self.offset, self.index
        )
    }
}
