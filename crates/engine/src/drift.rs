//! Application behaviour drift across the fleet.
//!
//! For each application (its executable's name, folded: `3CXDesktopApp.exe`
//! and the inventory's "3CX Desktop App" are both `3cxdesktopapp`; each
//! platform's build apart) and each version, the behaviours seen: modules loaded (name and hash), child
//! processes started, domains and addresses contacted. A behaviour a
//! version shows that no earlier version of the same application showed
//! is drift; drift is ranked by how many tenants show it. The version of a
//! running application comes from the event (`FileVersion`) or, failing
//! that, from the endpoint's software ledger at the event's time.
//!
//! 3CXDesktopApp 18.12.416 loaded an `ffmpeg.dll` with a hash no earlier
//! release had, in every customer that installed it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use turncoat_core::observable::normalize_domain;
use turncoat_core::{Ecosystem, Event, Time};
use turncoat_store::LedgerEntry;

/// What an application did.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Behaviour {
    /// A module, by file name and hash.
    Module(String),
    /// A child process, by file name.
    Child(String),
    Domain(String),
    Ip(String),
}

impl std::fmt::Display for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Behaviour::Module(m) => write!(f, "loads module {m}"),
            Behaviour::Child(c) => write!(f, "starts {c}"),
            Behaviour::Domain(d) => write!(f, "contacts {d}"),
            Behaviour::Ip(i) => write!(f, "contacts {i}"),
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Seen {
    tenants: BTreeSet<String>,
    endpoints: BTreeSet<(String, String)>,
    first_seen: Option<Time>,
}

/// One new behaviour of one application version.
#[derive(Clone, Debug, Serialize)]
pub struct DriftRow {
    pub app: String,
    pub version: String,
    pub behaviour: Behaviour,
    pub description: String,
    pub tenants: Vec<String>,
    /// (tenant, endpoint) pairs showing it.
    pub endpoints: Vec<(String, String)>,
    pub first_seen: Time,
    /// Earlier versions whose behaviour formed the baseline.
    pub baseline_versions: Vec<String>,
}

/// The key applications are compared by: file or product name, lowercase,
/// without spaces or an `.exe`/`.app` suffix.
pub fn app_key(name: &str) -> String {
    let base = name
        .rsplit(['\\', '/'])
        .next()
        .unwrap_or(name)
        .to_lowercase();
    let base = base
        .strip_suffix(".exe")
        .or_else(|| base.strip_suffix(".app"))
        .unwrap_or(&base);
    base.chars().filter(|c| !c.is_whitespace()).collect()
}

fn file_name(path: &str) -> String {
    path.rsplit(['\\', '/'])
        .next()
        .unwrap_or(path)
        .to_lowercase()
}

/// A version installed from one time until another (or still).
type Interval = (String, Time, Option<Time>);

/// Behaviours seen, per behaviour.
type Behaviours = HashMap<Behaviour, Seen>;

/// Ledger intervals of one tenant, by (endpoint, application key).
pub struct VersionBook {
    intervals: HashMap<(String, String), Vec<Interval>>,
}

impl VersionBook {
    pub fn new(ledger: &[LedgerEntry]) -> VersionBook {
        let mut intervals: HashMap<(String, String), Vec<Interval>> = HashMap::new();
        for e in ledger {
            intervals
                .entry((e.endpoint.clone(), app_key(&e.name)))
                .or_default()
                .push((e.version.clone(), e.installed, e.removed));
        }
        VersionBook { intervals }
    }

    fn version_at(&self, endpoint: &str, app: &str, at: Time) -> Option<&str> {
        self.intervals
            .get(&(endpoint.to_owned(), app.to_owned()))?
            .iter()
            .find(|(_, from, to)| *from <= at && to.is_none_or(|to| at < to))
            .map(|(v, _, _)| v.as_str())
    }
}

/// Accumulates behaviours per (application, version) across tenants.
#[derive(Default)]
pub struct DriftAnalyzer {
    seen: HashMap<(String, String), Behaviours>,
}

impl DriftAnalyzer {
    pub fn event(&mut self, tenant: &str, versions: &VersionBook, e: &Event) {
        let f = &e.fields;
        let category = e.logsource.category.as_deref().unwrap_or("");
        let (image, behaviour) = match category {
            "process_creation" => match (f.get_str("ParentImage"), f.get_str("Image")) {
                (Some(parent), Some(child)) => (parent, Behaviour::Child(file_name(child))),
                _ => return,
            },
            "image_load" => match (f.get_str("Image"), f.get_str("ImageLoaded")) {
                (Some(image), Some(module)) => {
                    let hash = f
                        .get_str("Hashes")
                        .and_then(|h| h.split(',').find_map(|p| p.strip_prefix("SHA256=")))
                        .map(|h| format!("@{}", h.to_ascii_lowercase()))
                        .unwrap_or_default();
                    // A module's signer, where the sensor reports it, is part of what it is.
                    let signer = f
                        .get_str("Signature")
                        .filter(|s| !s.is_empty() && *s != "-")
                        .map(|s| format!(" signed by {s}"))
                        .unwrap_or_default();
                    (
                        image,
                        Behaviour::Module(format!("{}{hash}{signer}", file_name(module))),
                    )
                }
                _ => return,
            },
            "dns_query" | "network_connection" | "proxy" => {
                let Some(image) = f.get_str("Image") else {
                    return;
                };
                let name = f
                    .get_str("QueryName")
                    .or(f.get_str("DestinationHostname"))
                    .or(f.get_str("cs-host"));
                match (name.and_then(normalize_domain), f.get_str("DestinationIp")) {
                    (Some(d), _) => (image, Behaviour::Domain(d)),
                    (None, Some(ip)) => (image, Behaviour::Ip(ip.to_owned())),
                    _ => return,
                }
            }
            _ => return,
        };
        let app = app_key(image);
        let version = match f.get_str("FileVersion") {
            Some(v) => v.to_owned(),
            None => match versions.version_at(&e.host, &app, e.time) {
                Some(v) => v.to_owned(),
                None => return,
            },
        };
        // Each platform's build is its own baseline.
        let app = format!(
            "{app} ({})",
            e.logsource.product.as_deref().unwrap_or("unknown")
        );
        let seen = self
            .seen
            .entry((app, version))
            .or_default()
            .entry(behaviour)
            .or_default();
        if !seen.tenants.contains(tenant) {
            seen.tenants.insert(tenant.to_owned());
        }
        if seen.endpoints.len() < 10_000 {
            seen.endpoints.insert((tenant.to_owned(), e.host.clone()));
        }
        seen.first_seen = Some(seen.first_seen.map_or(e.time, |t| t.min(e.time)));
    }

    /// New behaviours per version against every earlier version, most
    /// widespread first.
    pub fn finish(self, min_tenants: usize) -> Vec<DriftRow> {
        let mut by_app: BTreeMap<String, Vec<(String, Behaviours)>> = BTreeMap::new();
        for ((app, version), behaviours) in self.seen {
            by_app.entry(app).or_default().push((version, behaviours));
        }
        let mut rows = Vec::new();
        for (app, mut versions) in by_app {
            versions.sort_by(|a, b| Ecosystem::Generic.compare(&a.0, &b.0));
            let mut baseline: BTreeSet<Behaviour> = BTreeSet::new();
            let mut earlier: Vec<String> = Vec::new();
            for (version, behaviours) in versions {
                if !earlier.is_empty() {
                    for (b, seen) in &behaviours {
                        if !baseline.contains(b) && seen.tenants.len() >= min_tenants {
                            rows.push(DriftRow {
                                app: app.clone(),
                                version: version.clone(),
                                behaviour: b.clone(),
                                description: format!(
                                    "{app} {version} {b}, which no earlier version did"
                                ),
                                tenants: seen.tenants.iter().cloned().collect(),
                                endpoints: seen.endpoints.iter().cloned().collect(),
                                first_seen: seen.first_seen.unwrap_or_default(),
                                baseline_versions: earlier.clone(),
                            });
                        }
                    }
                }
                baseline.extend(behaviours.into_keys());
                earlier.push(version);
            }
        }
        rows.sort_by(|a, b| {
            b.tenants
                .len()
                .cmp(&a.tenants.len())
                .then(a.first_seen.cmp(&b.first_seen))
                .then(a.behaviour.cmp(&b.behaviour))
        });
        rows
    }
}

/// Drift across `tenants`' stored events, each placed at its version by
/// the event or the tenant's ledger.
pub fn analyze(
    store: &dyn turncoat_store::Store,
    tenants: &[turncoat_store::Tenant],
    min_tenants: usize,
) -> crate::Result<Vec<DriftRow>> {
    let mut analyzer = DriftAnalyzer::default();
    for t in tenants {
        let book = VersionBook::new(&store.ledger(t, None)?);
        let name = t.name.to_string();
        store.scan_archive(t, None, turncoat_store::Projection::ALL, &mut |e| {
            analyzer.event(&name, &book, &e)
        })?;
    }
    Ok(analyzer.finish(min_tenants))
}

/// Records drift rows as alerts of kind `drift`, one per endpoint showing it.
pub fn raise(
    store: &mut dyn turncoat_store::Store,
    tenants: &[turncoat_store::Tenant],
    rows: &[DriftRow],
) -> crate::Result<turncoat_store::FindingsOutcome> {
    use turncoat_core::{AlertKind, Evidence, Finding, Severity};
    let mut total = turncoat_store::FindingsOutcome::default();
    for tenant in tenants {
        let mut findings = Vec::new();
        for r in rows {
            for (_, endpoint) in r
                .endpoints
                .iter()
                .filter(|(t, _)| t == tenant.name.as_str())
            {
                findings.push((
                    Finding {
                        endpoint: endpoint.clone(),
                        kind: AlertKind::Drift,
                        source: format!("{} {}: {}", r.app, r.version, r.behaviour),
                        title: format!("{}; seen in {} tenants", r.description, r.tenants.len()),
                        severity: if r.tenants.len() > 1 {
                            Severity::High
                        } else {
                            Severity::Medium
                        },
                        campaign: None,
                        key: "drift".into(),
                        first_seen: r.first_seen,
                        last_seen: r.first_seen,
                        count: 1,
                        evidence: Evidence {
                            observed: r.behaviour.to_string(),
                            time: r.first_seen,
                            file: None,
                            detail: Some(format!("baseline: {}", r.baseline_versions.join(", "))),
                        },
                    },
                    None,
                ));
            }
        }
        let o = store.record_findings(tenant, &findings, turncoat_store::FindingMode::Set)?;
        total.new_alerts += o.new_alerts;
        total.updated_alerts += o.updated_alerts;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(time: i64, version: &str, module: &str, hash: &str, signer: &str) -> Event {
        let mut fields = turncoat_core::Fields::new();
        fields.push("Image", "C:\\Program Files\\App\\App.exe");
        fields.push("ImageLoaded", module);
        fields.push("Hashes", format!("SHA256={hash}"));
        fields.push("Signature", signer);
        fields.push("FileVersion", version);
        Event {
            time: Time(time),
            host: "ws-1".into(),
            logsource: turncoat_core::Logsource::fixed(Some("windows"), Some("image_load"), None),
            fields,
        }
    }

    #[test]
    fn a_module_that_changes_hash_or_signer_is_drift_the_same_one_is_not() {
        let book = VersionBook::new(&[]);
        let mut a = DriftAnalyzer::default();
        a.event(
            "t1",
            &book,
            &load(1, "1.0", "C:\\x\\ffmpeg.dll", "AA", "Vendor Ltd"),
        );
        a.event(
            "t1",
            &book,
            &load(2, "1.1", "C:\\x\\ffmpeg.dll", "AA", "Vendor Ltd"),
        );
        a.event(
            "t1",
            &book,
            &load(3, "1.2", "C:\\x\\ffmpeg.dll", "AA", "Someone Else"),
        );
        a.event(
            "t2",
            &book,
            &load(4, "1.3", "C:\\x\\ffmpeg.dll", "BB", "Vendor Ltd"),
        );
        let rows = a.finish(1);
        let found: Vec<(&str, String)> = rows
            .iter()
            .map(|r| (r.version.as_str(), r.behaviour.to_string()))
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    "1.2",
                    "loads module ffmpeg.dll@aa signed by Someone Else".to_owned()
                ),
                (
                    "1.3",
                    "loads module ffmpeg.dll@bb signed by Vendor Ltd".to_owned()
                ),
            ]
        );
        assert_eq!(rows[0].baseline_versions, vec!["1.0", "1.1"]);
    }

    #[test]
    fn app_keys_join_images_and_products() {
        assert_eq!(
            app_key("C:\\Users\\a\\AppData\\Local\\Programs\\3CXDesktopApp\\3CXDesktopApp.exe"),
            "3cxdesktopapp"
        );
        assert_eq!(app_key("3CX Desktop App"), "3cxdesktopapp");
        assert_eq!(
            app_key("/Applications/3CX Desktop App.app/Contents/MacOS/3CX Desktop App"),
            "3cxdesktopapp"
        );
        assert_eq!(app_key("3CX Desktop App.app"), "3cxdesktopapp");
    }
}
