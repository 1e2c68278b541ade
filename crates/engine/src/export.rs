//! What turncoat exports to block: the active indicators (not revoked,
//! not expired, not allowlisted for whom the list is made, optionally
//! only those a tenant has seen), one entry per kind and value, for
//! `turncoat_respond` to write in a consumer's format.

use std::collections::{BTreeMap, HashSet};

use turncoat_core::observable::url_host;
use turncoat_core::{IndicatorKind, ObservableKind, Time};
use turncoat_respond::{BlockEntry, Blocklist};
use turncoat_store::{Scope, Store, Tenant};

use crate::Result;
use crate::beacons::Allowlist;

/// The kinds a blocklist holds: what a resolver, sensor or proxy acts on.
pub const KINDS: [IndicatorKind; 4] = [
    IndicatorKind::Domain,
    IndicatorKind::Ip,
    IndicatorKind::Url,
    IndicatorKind::Sha256,
];

/// Which indicators an export holds.
#[derive(Clone, Debug, Default)]
pub struct Selection<'a> {
    /// For this tenant: its allowlist applies beside the global one.
    /// Without, the global allowlist only.
    pub tenant: Option<&'a Tenant>,
    /// Only indicators the tenant has seen (a name: it or a subdomain).
    pub seen: bool,
    /// These kinds only (all of [`KINDS`] when empty).
    pub kinds: Vec<IndicatorKind>,
    /// At least this confidence; indicators that state none are left out
    /// when it is set.
    pub min_confidence: Option<u8>,
    /// Only entries added or changed at or after this time.
    pub since: Option<Time>,
}

/// The blocklist `selection` picks at `now`, ordered by kind and value.
pub fn blocklist(store: &dyn Store, selection: &Selection<'_>, now: Time) -> Result<Blocklist> {
    let kinds: &[IndicatorKind] = if selection.kinds.is_empty() {
        &KINDS
    } else {
        &selection.kinds
    };
    let allowlist = match selection.tenant {
        Some(t) => store.allowlist(&Scope::tenant(t))?,
        None => store
            .allowlist(&store.all_tenants()?)?
            .into_iter()
            .filter(|e| e.tenant.is_none())
            .collect(),
    };
    let allowed = Allowlist::new(&allowlist);
    let seen = match (selection.seen, selection.tenant) {
        (true, Some(t)) => Some(seen_by(store, t)?),
        _ => None,
    };
    let stored = store.indicators()?;
    // The serial moves with anything that changes what the list holds:
    // an import that adds, changes or revokes, an expiry passed, an
    // allowlist entry added or removed.
    let mut changed = Time(0);
    let mut entries: BTreeMap<(IndicatorKind, String), BlockEntry> = BTreeMap::new();
    for s in stored {
        let i = &s.indicator;
        changed = changed.max(s.updated);
        if let Some(until) = i.valid_until.filter(|u| *u <= now) {
            changed = changed.max(until);
            continue;
        }
        let blockable = !i.revoked
            && i.also.is_empty()
            && kinds.contains(&i.kind)
            && selection
                .min_confidence
                .is_none_or(|m| i.confidence.is_some_and(|c| c >= m));
        if !blockable || is_allowed(&allowed, i.kind, &i.value) {
            continue;
        }
        if let Some(seen) = &seen
            && !seen.holds(i.kind, &i.value)
        {
            continue;
        }
        let entry = entries
            .entry((i.kind, i.value.clone()))
            .or_insert_with(|| BlockEntry {
                id: s.id,
                kind: i.kind,
                value: i.value.clone(),
                sources: Vec::new(),
                campaign: None,
                confidence: None,
                description: None,
                added: s.added,
                updated: s.updated,
                valid_until: i.valid_until,
            });
        // The same value from several feeds: one entry, every feed named.
        entry.id = entry.id.min(s.id);
        if !entry.sources.contains(&i.source) {
            entry.sources.push(i.source.clone());
            entry.sources.sort();
        }
        entry.campaign = entry.campaign.take().or_else(|| i.campaign.clone());
        entry.description = entry.description.take().or_else(|| i.description.clone());
        entry.confidence = entry.confidence.max(i.confidence);
        entry.added = entry.added.min(s.added);
        entry.updated = entry.updated.max(s.updated);
        entry.valid_until = match (entry.valid_until, i.valid_until) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }
    for e in &allowlist {
        changed = changed.max(e.added);
    }
    let scope = match selection.tenant {
        Some(t) => Scope::tenant(t),
        None => store.all_tenants()?,
    };
    if let Some(t) = store.last_audited(&scope, "allow.")? {
        changed = changed.max(t);
    }
    Ok(Blocklist {
        entries: entries
            .into_values()
            .filter(|e| selection.since.is_none_or(|since| e.updated >= since))
            .collect(),
        serial: u32::try_from(changed.0.max(0) / 1_000_000).unwrap_or(u32::MAX),
        tenant: selection.tenant.map(|t| t.name().to_string()),
    })
}

/// Whether the allowlist exempts the value: an address in an allowed
/// network, a name (or a URL's host) within an allowed domain.
fn is_allowed(allowed: &Allowlist, kind: IndicatorKind, value: &str) -> bool {
    match kind {
        IndicatorKind::Domain => allowed.destination_allowed("", Some(value)),
        IndicatorKind::Ip => allowed.destination_allowed(value, None),
        IndicatorKind::Url => {
            let host = url_host(value);
            allowed.destination_allowed(host, Some(host))
        }
        _ => false,
    }
}

/// What a tenant's telemetry holds: names (each with every parent, so a
/// name indicator is seen when it or a subdomain was, in one lookup),
/// addresses, URLs and hashes.
struct Seen {
    values: HashSet<(ObservableKind, String)>,
}

impl Seen {
    fn holds(&self, kind: IndicatorKind, value: &str) -> bool {
        kind.observable_kind()
            .is_some_and(|k| self.values.contains(&(k, value.to_owned())))
    }
}

fn seen_by(store: &dyn Store, tenant: &Tenant) -> Result<Seen> {
    let mut values = HashSet::new();
    let kinds: Vec<ObservableKind> = KINDS.iter().filter_map(|k| k.observable_kind()).collect();
    store.scan_observables(tenant, &kinds, &mut |_, kind, value| {
        if kind == ObservableKind::Domain {
            // api.evil.com is a sighting of evil.com too.
            let mut name = value;
            while let Some((_, parent)) = name.split_once('.') {
                values.insert((kind, name.to_owned()));
                name = parent;
            }
        } else {
            values.insert((kind, value.to_owned()));
        }
    })?;
    Ok(Seen { values })
}
