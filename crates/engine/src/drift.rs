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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
        let name = t.name().to_string();
        store.scan_archive(t, None, PROJECTION, &mut |e| {
            analyzer.event(&name, &book, &e)
        })?;
    }
    Ok(analyzer.finish(min_tenants))
}

/// What [`DriftAnalyzer::event`] reads of the archive; nothing else is
/// decoded.
pub const PROJECTION: turncoat_store::Projection<'static> = turncoat_store::Projection {
    records: &drift_records,
    fields: &drift_fields,
};

/// The archived records [`DriftAnalyzer::event`] reads: process starts,
/// module loads and contacts. Zeek's records name no process and are
/// passed over whole.
fn drift_records(head: &turncoat_store::RecordHead<'_>) -> bool {
    matches!(
        head.category,
        Some("process_creation" | "image_load" | "dns_query" | "network_connection" | "proxy")
    )
}

/// The fields [`DriftAnalyzer::event`] reads.
fn drift_fields(name: &str) -> bool {
    matches!(
        name,
        "Image"
            | "ParentImage"
            | "ImageLoaded"
            | "Hashes"
            | "Signature"
            | "QueryName"
            | "DestinationHostname"
            | "cs-host"
            | "DestinationIp"
            | "FileVersion"
    )
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
                .filter(|(t, _)| t == tenant.name().as_str())
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
                        key: turncoat_core::FindingKey::drift(),
                        first_seen: r.first_seen,
                        last_seen: r.first_seen,
                        count: 1,
                        evidence: Evidence {
                            observed: r.behaviour.to_string(),
                            time: r.first_seen,
                            file: None,
                            detail: Some(format!("baseline: {}", r.baseline_versions.join(", "))),
                            before_valid_from: false,
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

    /// Records of every kind the analysis reads and some it does not,
    /// each with fields it never reads; versions from the event and from
    /// the ledger.
    fn fleet() -> (Vec<(&'static str, Event)>, VersionBook) {
        use turncoat_core::{Fields, Logsource, Value};
        let event = |host: &str, logsource: Logsource, fields: &[(&'static str, &str)]| {
            let mut f: Fields = fields.iter().map(|&(n, v)| (n, Value::from(v))).collect();
            f.push("CommandLine", "app.exe --update");
            f.push("User", "CORP\\someone");
            Event {
                time: Time(10),
                host: host.into(),
                logsource,
                fields: f,
            }
        };
        let windows = |category| Logsource::fixed(Some("windows"), Some(category), None);
        let app = "C:\\Program Files\\App\\App.exe";
        let mut records = Vec::new();
        // ws-3 reports no FileVersion: its ledger says 1.1.
        for (tenant, host, version) in [
            ("t1", "ws-1", Some("1.0")),
            ("t1", "ws-2", Some("1.1")),
            ("t2", "ws-3", None),
        ] {
            let old = version == Some("1.0");
            // Each way of naming a destination names its own.
            let (child, dll, ip, [queried, connected, proxied]) = if old {
                (
                    "C:\\Windows\\cmd.exe",
                    "SHA256=AA,MD5=11",
                    "192.0.2.1",
                    [
                        "update.example",
                        "nc.update.example",
                        "proxy.update.example",
                    ],
                )
            } else {
                (
                    "C:\\Windows\\powershell.exe",
                    "SHA256=BB,MD5=22",
                    "203.0.113.9",
                    ["C2.Example.", "nc.c2.example", "proxy.c2.example"],
                )
            };
            for (category, mut fields) in [
                (
                    "process_creation",
                    vec![("ParentImage", app), ("Image", child)],
                ),
                (
                    "image_load",
                    vec![
                        ("Image", app),
                        ("ImageLoaded", "C:\\x\\ffmpeg.dll"),
                        ("Hashes", dll),
                        ("Signature", "Vendor Ltd"),
                    ],
                ),
                ("dns_query", vec![("Image", app), ("QueryName", queried)]),
                (
                    "network_connection",
                    vec![("Image", app), ("DestinationIp", ip)],
                ),
                (
                    "network_connection",
                    vec![
                        ("Image", app),
                        ("DestinationHostname", connected),
                        ("DestinationIp", "198.51.100.1"),
                    ],
                ),
                ("proxy", vec![("Image", app), ("cs-host", proxied)]),
                (
                    "file_event",
                    vec![("Image", app), ("TargetFilename", "C:\\x\\y.dat")],
                ),
            ] {
                fields.extend(version.map(|v| ("FileVersion", v)));
                records.push((tenant, event(host, windows(category), &fields)));
            }
        }
        let zeek = Logsource::fixed(Some("zeek"), None, Some("conn"));
        records.push((
            "t1",
            event("10.0.0.5", zeek, &[("id.resp_h", "203.0.113.9")]),
        ));
        let book = VersionBook::new(&[LedgerEntry {
            endpoint: "ws-3".into(),
            source: "programs".into(),
            name: "App".into(),
            version: "1.1".into(),
            vendor: None,
            platform: None,
            ecosystem: Ecosystem::Generic,
            installed: Time(0),
            removed: None,
            file: None,
        }]);
        (records, book)
    }

    fn drift(records: &[(&str, Event)], book: &VersionBook) -> String {
        let mut a = DriftAnalyzer::default();
        for (tenant, e) in records {
            a.event(tenant, book, e);
        }
        serde_json::to_string(&a.finish(1)).unwrap()
    }

    /// The archive scan decodes only [`PROJECTION`]'s records and fields:
    /// the rows must be the same as from whole records, which they are
    /// only while the projection keeps every record and field the
    /// analysis reads.
    #[test]
    fn the_projection_keeps_every_record_and_field_the_analysis_reads() {
        let (whole, book) = fleet();
        let projected: Vec<(&str, Event)> = whole
            .iter()
            .filter_map(|(t, e)| Some((*t, PROJECTION.apply(e)?)))
            .collect();
        assert!(
            projected.len() < whole.len(),
            "some records are passed over"
        );
        let fields = |r: &[(&str, Event)]| r.iter().map(|(_, e)| e.fields.len()).sum::<usize>();
        assert!(
            fields(&projected) + 2 * projected.len() <= fields(&whole),
            "fields are dropped"
        );
        let expected = drift(&whole, &book);
        for needle in [
            "powershell.exe",
            "ffmpeg.dll@bb signed by Vendor Ltd",
            "\"c2.example\"",
            "nc.c2.example",
            "proxy.c2.example",
            "203.0.113.9",
            "\"t2\"",
        ] {
            assert!(expected.contains(needle), "{needle} in {expected}");
        }
        assert_eq!(drift(&projected, &book), expected);
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
