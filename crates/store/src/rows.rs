//! Backend-neutral decoding of stored rows: both backends read their
//! columns into plain values and build answers here, so that they agree
//! on every answer the conformance suite checks.

use std::collections::BTreeSet;

use turncoat_core::time::MICROS_PER_HOUR;
use turncoat_core::{
    AlertId, AlertKind, AlertStatus, Ecosystem, ObservableKind, Severity, TenantName, Time,
};

use crate::{
    AlertAction, AllowKind, CampaignAlert, EventRef, Feed, LedgerEntry, Result, Scope, StoreError,
    Tenant, TokenOwner,
};

/// Severities are stored as their rank, so that they sort.
pub(crate) fn severity_rank(s: Severity) -> i64 {
    Severity::ALL.iter().position(|x| *x == s).unwrap_or(2) as i64
}

pub(crate) fn severity_from_rank(r: i64) -> Severity {
    Severity::ALL.get(r as usize).copied().unwrap_or_default()
}

pub(crate) fn parse<T>(s: &str) -> Result<T>
where
    T: std::str::FromStr<Err: std::error::Error + Send + Sync + 'static>,
{
    s.parse().map_err(|e| StoreError::CorruptValue(Box::new(e)))
}

pub(crate) fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::CorruptValue(Box::new(e))
}

pub(crate) fn observable_kind(k: i64) -> Result<ObservableKind> {
    usize::try_from(k)
        .ok()
        .and_then(|k| ObservableKind::ALL.get(k))
        .copied()
        .ok_or_else(|| StoreError::Corrupt(format!("observable kind {k}")))
}

pub(crate) fn tenant_row(id: i64, name: &str, created: i64) -> Result<Tenant> {
    Ok(Tenant {
        id,
        name: TenantName::new(name).map_err(|e| StoreError::CorruptValue(Box::new(e)))?,
        created: Time(created),
    })
}

/// The tenant of an entry that is a tenant's or, with no tenant, global:
/// `None` when `scope` may not see it.
pub(crate) fn entry_tenant(scope: &Scope, tenant_id: Option<i64>) -> Option<Option<TenantName>> {
    match tenant_id {
        None => Some(None),
        Some(t) => scope
            .members()
            .iter()
            .find(|m| m.id == t)
            .map(|m| Some(m.name.clone())),
    }
}

/// Names granted, or `(all)` for none.
pub(crate) fn or_all(names: &[&str]) -> String {
    if names.is_empty() {
        "(all)".to_owned()
    } else {
        names.join(", ")
    }
}

pub(crate) fn allow_kind(kind: &str) -> Result<AllowKind> {
    match kind {
        "destination" => Ok(AllowKind::Destination),
        "source" => Ok(AllowKind::Source),
        other => Err(StoreError::Corrupt(format!("allowlist kind {other:?}"))),
    }
}

pub(crate) fn alert_action(action: &str) -> Result<AlertAction> {
    AlertAction::ALL
        .into_iter()
        .find(|a| a.as_str() == action)
        .ok_or_else(|| StoreError::Corrupt(format!("alert history action {action:?}")))
}

/// A comma-separated list as stored (notification events and kinds).
pub(crate) fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What the stored intel is known by: the database's nonce and the
/// generation every change of indicators bumps.
pub(crate) fn intel_key(nonce: i64, generation: i64) -> u64 {
    nonce as u64 ^ (generation as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The archived event a sighting or finding points at, when all three
/// parts are stored.
pub(crate) fn event_ref(
    segment: Option<i64>,
    offset: Option<i64>,
    index: Option<i64>,
) -> Option<EventRef> {
    match (segment, offset, index) {
        (Some(segment), Some(offset), Some(index)) => Some(EventRef {
            segment,
            offset: offset as u64,
            index: index as u32,
        }),
        _ => None,
    }
}

/// The archived event an alert's stored evidence points at, beside the
/// evidence's own fields.
pub(crate) fn evidence_event(evidence: &str) -> Option<EventRef> {
    #[derive(serde::Deserialize)]
    struct EvidenceEvent {
        event: Option<EventRef>,
    }
    serde_json::from_str::<EvidenceEvent>(evidence)
        .ok()
        .and_then(|e| e.event)
}

/// A token's owner from its user's name, or its tenant's name and scope.
pub(crate) fn token_owner(
    user: Option<String>,
    tenant: Option<String>,
    scope: Option<String>,
) -> Result<TokenOwner> {
    match (user, tenant) {
        (Some(user), _) => Ok(TokenOwner::User { user }),
        (None, Some(tenant)) => Ok(TokenOwner::Tenant {
            tenant: TenantName::new(&tenant).map_err(|e| StoreError::CorruptValue(Box::new(e)))?,
            scope: parse(scope.as_deref().unwrap_or_default())?,
        }),
        // The user or tenant it belonged to is gone: the token is void.
        (None, None) => Err(StoreError::Corrupt(
            "a token with neither user nor tenant".into(),
        )),
    }
}

/// A ledger row's columns, as stored.
pub(crate) struct LedgerColumns {
    pub endpoint: String,
    pub source: String,
    pub name: String,
    pub version: String,
    pub vendor: Option<String>,
    pub platform: Option<String>,
    pub ecosystem: String,
    pub installed: i64,
    pub removed: Option<i64>,
    pub file: Option<String>,
}

impl LedgerColumns {
    pub(crate) fn entry(self) -> Result<LedgerEntry> {
        Ok(LedgerEntry {
            endpoint: self.endpoint,
            source: self.source,
            name: self.name,
            version: self.version,
            vendor: self.vendor,
            platform: self.platform.map(|p| parse(&p)).transpose()?,
            ecosystem: parse::<Ecosystem>(&self.ecosystem)?,
            installed: Time(self.installed),
            removed: self.removed.map(Time),
            file: self.file,
        })
    }
}

/// One hour of a feed as stored: `feed_hours` joined to its endpoint.
pub(crate) struct FeedHour {
    pub endpoint: String,
    pub logsource: String,
    pub hour: i64,
    pub events: i64,
    pub last_event: i64,
    pub ingested: i64,
}

/// A tenant's feeds from its feed hours, read per endpoint and log source
/// with the newest hour first: the rate is over the newest hour and the
/// one before it.
pub(crate) fn fold_feeds(
    tenant: &TenantName,
    hours: impl IntoIterator<Item = Result<FeedHour>>,
) -> Result<Vec<Feed>> {
    let mut feeds = Vec::new();
    // The feed being read, its newest hour, events summed, window start.
    let mut open: Option<(Feed, i64, i64, i64)> = None;
    let close = |(mut feed, _, events, start): (Feed, i64, i64, i64)| {
        let minutes = ((feed.last_event.0 - start) as f64 / 60e6).max(1.0);
        feed.per_minute = events as f64 / minutes;
        feed.recent_events = events as u64;
        feed
    };
    for row in hours {
        let h = row?;
        match &mut open {
            Some((f, newest, sum, start))
                if f.endpoint == h.endpoint && f.logsource == h.logsource =>
            {
                if h.hour >= *newest - 1 {
                    *sum += h.events;
                    *start = h.hour * MICROS_PER_HOUR;
                }
                f.last_ingested = f.last_ingested.max(Time(h.ingested));
            }
            _ => {
                feeds.extend(open.take().map(close));
                open = Some((
                    Feed {
                        tenant: tenant.clone(),
                        endpoint: h.endpoint,
                        logsource: h.logsource,
                        last_event: Time(h.last_event),
                        last_ingested: Time(h.ingested),
                        per_minute: 0.0,
                        recent_events: 0,
                    },
                    h.hour,
                    h.events,
                    h.hour * MICROS_PER_HOUR,
                ));
            }
        }
    }
    feeds.extend(open.take().map(close));
    Ok(feeds)
}

/// A stored campaign's columns.
pub(crate) struct CampaignColumns {
    pub id: i64,
    pub kind: String,
    pub source: String,
    pub title: String,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// A member alert of a campaign: id, tenant, status, first and last seen.
pub(crate) type CampaignMember = (i64, i64, String, i64, i64);

/// A campaign as `scope` may see it: `None` when it holds none of the
/// members; cut to the scope's own members when others share it. Members
/// in other tenants are never named, counted or dated.
pub(crate) fn campaign_for(
    scope: &Scope,
    c: CampaignColumns,
    members: &[CampaignMember],
) -> Result<Option<CampaignAlert>> {
    let mut tenants = Vec::new();
    let mut dismissed = BTreeSet::new();
    let mut own = Vec::new();
    let mut beyond = false;
    for &(alert, tenant_id, ref status, first_seen, last_seen) in members {
        let Some(t) = scope.members().iter().find(|t| t.id == tenant_id) else {
            beyond = true;
            continue;
        };
        if !tenants.contains(&t.name) {
            tenants.push(t.name.clone());
        }
        if status == AlertStatus::FalsePositive.as_str() {
            dismissed.insert(tenant_id);
        }
        own.push((alert, first_seen, last_seen));
    }
    if own.is_empty() {
        return Ok(None);
    }
    // By name, as the title lists them, whatever order they joined in.
    tenants.sort();
    let kind: AlertKind = parse(&c.kind)?;
    let (title, first, last) = if beyond {
        (
            format!("{kind} {}: also seen in other tenants", c.source),
            own.iter().map(|m| m.1).min().unwrap_or(c.first_seen),
            own.iter().map(|m| m.2).max().unwrap_or(c.last_seen),
        )
    } else {
        (c.title, c.first_seen, c.last_seen)
    };
    Ok(Some(CampaignAlert {
        id: c.id,
        kind,
        source: c.source,
        title,
        tenants,
        member_alerts: own.iter().map(|m| AlertId::new(m.0)).collect(),
        dismissed_tenants: dismissed.len(),
        first_seen: Time(first),
        last_seen: Time(last),
        beyond_scope: beyond,
    }))
}

/// Why a re-analysis brings a dismissed alert back, if it does: its
/// severity rose, or new intel names it.
pub(crate) fn resurface_reason(
    status: &str,
    stored_severity: i64,
    found: Severity,
    title: &str,
    new_intel: bool,
) -> Option<String> {
    let dismissed = matches!(status, "false-positive" | "suppressed");
    let rose = severity_rank(found) > stored_severity;
    if !dismissed || !(rose || new_intel) {
        return None;
    }
    Some(if rose {
        format!(
            "severity rose from {} to {found}",
            severity_from_rank(stored_severity)
        )
    } else {
        format!("new intel names it: {title}")
    })
}

/// The tables of entries that are a tenant's or, with no tenant, global,
/// removed by id alike on every backend.
#[derive(Clone, Copy)]
pub(crate) enum Entries {
    Allowlist,
    InternalNetworks,
}

impl Entries {
    /// Its table, what one row is called, and the audit action of a removal.
    pub(crate) fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Entries::Allowlist => ("allowlist", "allowlist entry", "allow.remove"),
            Entries::InternalNetworks => (
                "internal_networks",
                "internal network",
                "network.internal.remove",
            ),
        }
    }
}

/// Whether a row of `tenant_id` (`None`: global, which every scope sees)
/// is in `scope`.
pub(crate) fn in_scope(scope: &Scope, tenant_id: Option<i64>) -> bool {
    tenant_id.is_none_or(|t| scope.contains(t))
}

/// Why an alert is held by suppression `by`.
pub(crate) fn suppressed_because(by: i64, reason: &str) -> String {
    format!("suppression {by}: {reason}")
}

/// A suppression just stored as `id`, and the audit line of its adding,
/// which closed `closed` alerts.
pub(crate) fn added_suppression(
    id: i64,
    tenant: Option<&Tenant>,
    new: &crate::NewSuppression<'_>,
    actor: &turncoat_core::Actor,
    created: turncoat_core::Time,
    closed: usize,
) -> (crate::Suppression, String) {
    let what = new.endpoint.map_or(String::new(), |e| format!(" on {e}"));
    let audit = format!(
        "suppression {id}: {}{what}: {}; {closed} alerts suppressed",
        new.source, new.reason
    );
    let suppression = crate::Suppression {
        id,
        tenant: tenant.map(|t| t.name.clone()),
        kind: new.kind,
        source: new.source.to_owned(),
        endpoint: new.endpoint.map(str::to_owned),
        reason: new.reason.to_owned(),
        owner: actor.to_string(),
        created,
        expires: new.expires,
    };
    (suppression, audit)
}
