//! Cross-tenant escalation: the same indicator, rule or drift behaviour in
//! several tenants within a window becomes one MSSP-level campaign alert.
//! An MSSP sees what no single customer sees; and a member alert dismissed
//! as a false positive in one tenant does not hide the campaign (the
//! campaign counts the dismissals instead).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use turncoat_core::AlertKind;
use turncoat_core::time::MICROS_PER_DAY;
use turncoat_store::{Alert, AlertFilter, Scope, Store};

use crate::{ACTOR, Result};

/// Tenants that must show the same detection for a campaign.
pub const DEFAULT_MIN_TENANTS: usize = 2;
/// Days within which their first sightings must fall.
pub const DEFAULT_WINDOW_DAYS: i64 = 14;

/// What an escalation pass did.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Escalation {
    pub new_campaigns: u64,
    pub updated_campaigns: u64,
}

/// Kinds whose source names one shared thing across tenants: an indicator,
/// a rule, a drift behaviour of one application version.
const ESCALATING: [AlertKind; 3] = [AlertKind::Ioc, AlertKind::Sigma, AlertKind::Drift];

/// Finds detections shared by at least `min_tenants` tenants whose first
/// sightings fall within `window_days`, and raises or updates their
/// campaign alerts.
pub fn escalate(store: &mut dyn Store, min_tenants: usize, window_days: i64) -> Result<Escalation> {
    let all = Scope::tenants(&store.tenants()?);
    let alerts = store.alerts(&all, &AlertFilter::default())?;
    let mut groups: BTreeMap<(AlertKind, &str), Vec<&Alert>> = BTreeMap::new();
    for a in alerts.iter().filter(|a| ESCALATING.contains(&a.kind)) {
        groups
            .entry((a.kind, a.source.as_str()))
            .or_default()
            .push(a);
    }
    let window = window_days.saturating_mul(MICROS_PER_DAY);
    let mut out = Escalation::default();
    for ((kind, source), mut members) in groups {
        members.sort_by_key(|a| a.first_seen);
        // The densest window of first sightings, by distinct tenants.
        let widest = (0..members.len())
            .map(|i| {
                members[i..]
                    .iter()
                    .take_while(|a| a.first_seen.0 - members[i].first_seen.0 <= window)
                    .map(|a| &a.tenant)
                    .collect::<BTreeSet<_>>()
                    .len()
            })
            .max()
            .unwrap_or(0);
        if widest < min_tenants.max(2) {
            continue;
        }
        let tenants: BTreeSet<&str> = members.iter().map(|a| a.tenant.as_str()).collect();
        let title = format!(
            "{kind} {source} in {} tenants: {}",
            tenants.len(),
            tenants.iter().copied().collect::<Vec<_>>().join(", ")
        );
        let ids: Vec<i64> = members.iter().map(|a| a.id).collect();
        let (_, new) = store.upsert_campaign(kind, source, &title, &ids, ACTOR)?;
        if new {
            out.new_campaigns += 1;
        } else {
            out.updated_campaigns += 1;
        }
    }
    Ok(out)
}
