//! Cross-tenant escalation: the same indicator, rule or drift behaviour in
//! several tenants within a window becomes one MSSP-level campaign alert.
//! An MSSP sees what no single customer sees; and a member alert dismissed
//! as a false positive in one tenant does not hide the campaign (the
//! campaign counts the dismissals instead).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use turncoat_core::time::MICROS_PER_DAY;
use turncoat_core::{Actor, AlertId, AlertKind, AlertStatus, Severity, TenantName, Time};
use turncoat_store::{Alert, AlertFilter, Scope, Store};

use crate::Result;

/// Tenants that must show the same detection for a campaign.
pub const DEFAULT_MIN_TENANTS: usize = 2;
/// Days within which their first sightings must fall.
pub const DEFAULT_WINDOW_DAYS: i64 = 14;

/// What an escalation pass did.
#[derive(Clone, Copy, Debug, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Escalation {
    pub new_campaigns: u64,
    pub updated_campaigns: u64,
    /// Dismissed alerts that joined a campaign and so resurfaced.
    pub resurfaced: u64,
}

/// Kinds whose source names one shared thing across tenants: an indicator,
/// a rule, a drift behaviour of one application version.
const ESCALATING: [AlertKind; 3] = [AlertKind::Ioc, AlertKind::Sigma, AlertKind::Drift];

/// The most distinct tenants whose first sightings fall within
/// `window_days` of each other (the densest window).
fn tenants_within(members: &mut [&Alert], window_days: i64) -> usize {
    let window = window_days.saturating_mul(MICROS_PER_DAY);
    members.sort_by_key(|a| a.first_seen);
    (0..members.len())
        .map(|i| {
            members[i..]
                .iter()
                .take_while(|a| a.first_seen.0 - members[i].first_seen.0 <= window)
                .map(|a| &a.tenant)
                .collect::<BTreeSet<_>>()
                .len()
        })
        .max()
        .unwrap_or(0)
}

/// A campaign as a row of the alert list (`alerts --kind campaign`): the
/// fields of an alert, with the tenants it spans instead of one.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignRow {
    pub id: i64,
    /// Always [`AlertKind::Campaign`].
    pub kind: AlertKind,
    pub tenants: Vec<TenantName>,
    pub source: String,
    pub title: String,
    /// The highest of its members'.
    pub severity: Severity,
    /// `new` while any member alert is open, else `resolved`.
    pub status: AlertStatus,
    /// Member alerts.
    pub count: u64,
    pub first_seen: Time,
    pub last_seen: Time,
    pub member_kind: AlertKind,
    pub member_alerts: Vec<AlertId>,
    /// Tenants where a member was dismissed as a false positive.
    pub dismissed_tenants: usize,
    /// Shared with tenants outside the reader's: cut to the reader's own
    /// members ([`turncoat_store::CampaignAlert::beyond_scope`]).
    pub beyond_scope: bool,
}

/// The campaigns `scope` sees whose members span at least `min_tenants`
/// tenants with first sightings within `window_days`, as alert rows.
pub fn campaign_rows(
    store: &dyn Store,
    scope: &Scope,
    min_tenants: usize,
    window_days: i64,
) -> Result<Vec<CampaignRow>> {
    let mut rows = Vec::new();
    for c in store.campaigns(scope)? {
        // Members one by one, by id: campaigns are few and small, the
        // alerts many (reading them all made the queue's first page
        // take seconds with a million stored).
        let owned: Vec<Alert> = c
            .member_alerts
            .iter()
            .map(|id| store.alert(scope, *id))
            .collect::<std::result::Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        let mut members: Vec<&Alert> = owned.iter().collect();
        if tenants_within(&mut members, window_days) < min_tenants {
            continue;
        }
        let open = [
            AlertStatus::New,
            AlertStatus::Acknowledged,
            AlertStatus::Investigating,
        ];
        rows.push(CampaignRow {
            id: c.id,
            kind: AlertKind::Campaign,
            tenants: c.tenants,
            source: c.source,
            title: c.title,
            severity: members
                .iter()
                .map(|a| a.severity)
                .max()
                .unwrap_or(Severity::Info),
            status: if members.iter().any(|a| open.contains(&a.status)) {
                AlertStatus::New
            } else {
                AlertStatus::Resolved
            },
            count: c.member_alerts.len() as u64,
            first_seen: c.first_seen,
            last_seen: c.last_seen,
            member_kind: c.kind,
            member_alerts: c.member_alerts,
            dismissed_tenants: c.dismissed_tenants,
            beyond_scope: c.beyond_scope,
        });
    }
    Ok(rows)
}

/// [`escalate`] with the default thresholds: what the pipeline runs after
/// anything that may have raised alerts (ingest, intel, rules).
pub fn escalate_after_change(store: &mut dyn Store, actor: &Actor) -> Result<Escalation> {
    escalate(store, DEFAULT_MIN_TENANTS, DEFAULT_WINDOW_DAYS, actor)
}

/// Finds detections shared by at least `min_tenants` tenants whose first
/// sightings fall within `window_days`, and raises or updates their
/// campaign alerts.
pub fn escalate(
    store: &mut dyn Store,
    min_tenants: usize,
    window_days: i64,
    actor: &Actor,
) -> Result<Escalation> {
    let all = store.all_tenants()?;
    let alerts = store.alerts(&all, &AlertFilter::default())?;
    let mut groups: BTreeMap<(AlertKind, &str), Vec<&Alert>> = BTreeMap::new();
    for a in alerts.iter().filter(|a| ESCALATING.contains(&a.kind)) {
        groups
            .entry((a.kind, a.source.as_str()))
            .or_default()
            .push(a);
    }
    let mut out = Escalation::default();
    for ((kind, source), mut members) in groups {
        if tenants_within(&mut members, window_days) < min_tenants.max(2) {
            continue;
        }
        let tenants: BTreeSet<&str> = members.iter().map(|a| a.tenant.as_str()).collect();
        let title = format!(
            "{kind} {source} in {} tenants: {}",
            tenants.len(),
            tenants.iter().copied().collect::<Vec<_>>().join(", ")
        );
        let ids: Vec<AlertId> = members.iter().map(|a| a.id).collect();
        let upserted = store.upsert_campaign(kind, source, &title, &ids, actor)?;
        out.resurfaced += upserted.resurfaced.len() as u64;
        if upserted.new {
            out.new_campaigns += 1;
        } else {
            out.updated_campaigns += 1;
        }
    }
    Ok(out)
}
