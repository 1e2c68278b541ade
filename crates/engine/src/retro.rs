//! Retro-hunts: new intel against what is already stored.
//!
//! Indicators are matched against each tenant's observable dictionary (one
//! row per distinct value ever seen), not against raw events or every
//! sighting: the dictionary is small next to the sightings, and only the
//! values that match are joined back to their sightings.

use std::collections::HashMap;

use turncoat_core::Finding;
use turncoat_detect::findings::IocFinding;
use turncoat_detect::ioc::condition_holds;
use turncoat_detect::{AdvisoryIndex, IndicatorIndex};
use turncoat_store::{EventRef, FindingMode, FindingsOutcome, Store, Tenant};

use crate::Result;
use crate::exposure::ledger_findings;

/// Matches the indicators of `index` against everything `tenant` has seen.
pub fn hunt_indicators(
    store: &mut dyn Store,
    tenant: &Tenant,
    index: &IndicatorIndex,
) -> Result<FindingsOutcome> {
    let kinds = index.observable_kinds();
    if kinds.is_empty() {
        return Ok(FindingsOutcome::default());
    }
    // observable id → indicators matching it
    let mut hits: HashMap<i64, Vec<usize>> = HashMap::new();
    store.scan_observables(tenant, &kinds, &mut |id, kind, value| {
        let obs = turncoat_core::Observable {
            kind,
            value: value.to_owned(),
        };
        index.lookup(&obs, |i| hits.entry(id).or_default().push(i));
    })?;
    if hits.is_empty() {
        return Ok(FindingsOutcome::default());
    }
    let ids: Vec<i64> = hits.keys().copied().collect();
    let sightings = store.sightings(tenant, &ids)?;
    let mut findings: Vec<(Finding, Option<EventRef>)> = Vec::new();
    let mut observables = Vec::new();
    for s in &sightings {
        for &i in &hits[&s.observable_id] {
            let ind = index.get(i);
            // A day's sighting is valid if any of it falls in the window.
            if !(ind.valid_at(s.first_seen) || ind.valid_at(s.last_seen)) {
                continue;
            }
            if !ind.also.is_empty() {
                // AND patterns need the other observations on the same
                // event: check the archived event the sighting points to.
                let Some(at) = s.event else { continue };
                let event = store.read_event(tenant, at)?;
                turncoat_core::observable::extract(&event, &mut observables);
                if !ind.also.iter().all(|c| condition_holds(c, &observables)) {
                    continue;
                }
            }
            let f = IocFinding {
                indicator: ind,
                observable: &s.observable,
                endpoint: &s.endpoint,
                first_seen: s.first_seen,
                last_seen: s.last_seen,
                count: s.count,
                file: s.file.clone(),
                field: None,
            }
            .finding();
            findings.push((f, s.event));
        }
    }
    Ok(store.record_findings(tenant, &findings, FindingMode::NewIntel)?)
}

/// Matches advisories against `tenant`'s whole software ledger.
pub fn hunt_advisories(
    store: &mut dyn Store,
    tenant: &Tenant,
    advisories: &AdvisoryIndex,
) -> Result<FindingsOutcome> {
    let names: Vec<String> = advisories
        .advisories()
        .iter()
        .flat_map(|a| a.affected.iter().flat_map(|f| f.lookup_keys()))
        .collect();
    if names.is_empty() {
        return Ok(FindingsOutcome::default());
    }
    let findings: Vec<(Finding, Option<EventRef>)> = store
        .ledger(tenant, Some(&names))?
        .iter()
        .flat_map(|entry| ledger_findings(advisories, entry))
        .map(|f| (f, None))
        .collect();
    Ok(store.record_findings(tenant, &findings, FindingMode::NewIntel)?)
}
