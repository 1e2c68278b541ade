//! The packages a release ships (its lockfiles, manifests, SBOMs and the
//! packages' own metadata), matched offline against OSV records, and
//! compared with the previous release's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use turncoat_core::{Advisory, Ecosystem, InventoryItem, Severity};
use turncoat_formats::manifest::{self, ManifestKind};

use crate::binary::FileInfo;
use crate::{Finding, FindingId, finding};

/// OSV records indexed by ecosystem and package name.
pub struct OsvIndex {
    advisories: Vec<Advisory>,
    /// (ecosystem, package key) → (advisory, affected entry).
    by_package: HashMap<(Ecosystem, String), Vec<(usize, usize)>>,
}

impl OsvIndex {
    pub fn new(advisories: Vec<Advisory>) -> OsvIndex {
        let mut by_package: HashMap<(Ecosystem, String), Vec<(usize, usize)>> = HashMap::new();
        for (i, a) in advisories.iter().enumerate() {
            for (j, affected) in a.affected.iter().enumerate() {
                let key = affected.ecosystem.package_key(&affected.product);
                by_package
                    .entry((affected.ecosystem, key))
                    .or_default()
                    .push((i, j));
            }
        }
        OsvIndex {
            advisories,
            by_package,
        }
    }

    pub fn len(&self) -> usize {
        self.advisories.len()
    }

    pub fn is_empty(&self) -> bool {
        self.advisories.is_empty()
    }

    /// Advisories whose affected versions include this package's.
    fn matches<'a>(&'a self, package: &'a InventoryItem) -> impl Iterator<Item = Match<'a>> + 'a {
        let key = (
            package.ecosystem,
            package.ecosystem.package_key(&package.name),
        );
        self.by_package
            .get(&key)
            .into_iter()
            .flatten()
            .filter_map(move |&(i, j)| {
                let advisory = &self.advisories[i];
                let affected = &advisory.affected[j];
                affected.version_affected(&package.version).then(|| Match {
                    advisory,
                    // The release that leaves the range this version is in.
                    fixed: affected
                        .ranges
                        .iter()
                        .find(|r| r.contains(affected.ecosystem, &package.version))
                        .and_then(|r| r.fixed.as_deref()),
                })
            })
    }
}

struct Match<'a> {
    advisory: &'a Advisory,
    fixed: Option<&'a str>,
}

/// Reads the packages a file pins, when it is a manifest, into `info`;
/// a file that does not read is a finding.
pub(crate) fn read(info: &mut FileInfo, data: &[u8], out: &mut Vec<Finding>) {
    let Some(kind) = ManifestKind::recognise(&info.path, data) else {
        return;
    };
    info.manifest = Some(kind);
    match manifest::read(kind, &info.path, data) {
        Ok(m) => {
            if !m.skipped.is_empty() {
                out.push(finding(
                    FindingId::PackageManifestMalformed,
                    &info.path,
                    format!(
                        "{} entries of this {} did not read; first: {}",
                        m.skipped.len(),
                        kind.as_str(),
                        m.skipped[0]
                    ),
                    serde_json::json!({"skipped": m.skipped.iter().take(20).map(ToString::to_string).collect::<Vec<_>>()}),
                ));
            }
            if m.unpinned > 0 {
                out.push(finding(
                    FindingId::InfoUnpinnedDependencies,
                    &info.path,
                    format!(
                        "{} requirements name no exact version: what installs can change without a new release",
                        m.unpinned
                    ),
                    serde_json::json!({"unpinned": m.unpinned}),
                ));
            }
            info.packages = m.packages;
            info.declared = m.declared;
        }
        Err(e) => out.push(finding(
            FindingId::PackageManifestMalformed,
            &info.path,
            format!("this {} does not read: {e}", kind.as_str()),
            serde_json::Value::Null,
        )),
    }
}

/// Packages that OSV records call malicious or vulnerable.
pub(crate) fn osv_findings(files: &[FileInfo], osv: &OsvIndex, out: &mut Vec<Finding>) {
    for f in files {
        for p in &f.packages {
            for m in osv.matches(p) {
                let a = m.advisory;
                let (id, message) = if a.malicious {
                    (
                        FindingId::OsvMalicious,
                        format!(
                            "{} {} is a malicious package: {} {}",
                            p.name, p.version, a.id, a.title
                        ),
                    )
                } else {
                    (
                        FindingId::OsvVulnerable,
                        format!(
                            "{} {} is vulnerable: {} {}{}",
                            p.name,
                            p.version,
                            a.id,
                            a.title,
                            m.fixed
                                .map(|v| format!(" (fixed in {v})"))
                                .unwrap_or_default()
                        ),
                    )
                };
                let mut finding = finding(
                    id,
                    &f.path,
                    message,
                    serde_json::json!({
                        "ecosystem": p.ecosystem,
                        "package": p.name,
                        "version": p.version,
                        "advisory": a.id,
                        "fixed": m.fixed,
                        "references": a.references,
                    }),
                );
                // A vulnerability keeps the advisory's own severity but
                // never makes a release malicious: only `MAL-` records do.
                if !a.malicious {
                    finding.severity = a.severity.min(Severity::High);
                }
                out.push(finding);
            }
        }
    }
}

/// Packages a changed manifest adds or moves to another version.
/// Dependencies `after` declares that `before` (the same manifest in the
/// previous release, if it had one) did not, by name: each a finding with
/// its requirement, pinned or not (a patch release that starts pulling in
/// `flatmap-stream` is how event-stream was turned).
pub(crate) fn new_declared(before: Option<&FileInfo>, after: &FileInfo, out: &mut Vec<Finding>) {
    let known: BTreeSet<String> = before
        .into_iter()
        .flat_map(|f| &f.declared)
        .map(|d| d.name.to_ascii_lowercase().replace('_', "-"))
        .collect();
    for d in &after.declared {
        if !known.contains(&d.name.to_ascii_lowercase().replace('_', "-")) {
            let requirement = if d.requirement.is_empty() {
                "any version"
            } else {
                &d.requirement
            };
            out.push(finding(
                FindingId::DiffNewDependency,
                &after.path,
                format!("new dependency {} ({requirement})", d.name),
                serde_json::json!({"name": d.name, "requirement": d.requirement}),
            ));
        }
    }
}

pub(crate) fn diff(before: &FileInfo, after: &FileInfo, out: &mut Vec<Finding>) {
    if after.packages.is_empty() {
        return;
    }
    let versions = |f: &FileInfo| {
        let mut by_name: BTreeMap<(&str, String), Vec<String>> = BTreeMap::new();
        for p in &f.packages {
            by_name
                .entry((p.ecosystem.as_str(), p.ecosystem.package_key(&p.name)))
                .or_default()
                .push(p.version.clone());
        }
        by_name
    };
    let (old, new) = (versions(before), versions(after));
    let mut added = Vec::new();
    let mut updated = Vec::new();
    for (key, vs) in &new {
        match old.get(key) {
            None => added.extend(vs.iter().map(|v| format!("{}@{v}", key.1))),
            Some(prev) => {
                for v in vs.iter().filter(|v| !prev.contains(v)) {
                    updated.push(serde_json::json!({"package": key.1, "from": prev, "to": v}));
                }
            }
        }
    }
    if added.is_empty() && updated.is_empty() {
        return;
    }
    out.push(finding(
        FindingId::DiffNewDependencies,
        &after.path,
        format!(
            "{} new packages, {} at another version",
            added.len(),
            updated.len()
        ),
        serde_json::json!({"added": added, "updated": updated}),
    ));
}
