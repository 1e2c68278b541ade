//! CycloneDX JSON (1.2 to 1.6) and SPDX JSON (2.2, 2.3), read as one
//! endpoint's or one product's inventory: a snapshot of its components.

use serde_json::Value as Json;
use turncoat_core::{Ecosystem, InventoryChange, InventoryItem, InventoryRecord, Time};

use crate::input::Input;
use crate::{Location, ReadIssue, ReadOptions, Record, Sink};

/// Components nested deeper than this are ignored: hostile SBOMs cannot
/// make the reader recurse without bound.
const MAX_NESTING: usize = 16;

/// Reads a CycloneDX JSON document.
pub fn read_cyclonedx(
    input: &mut Input,
    options: &ReadOptions,
    sink: &mut dyn Sink,
) -> Result<(), ReadIssue> {
    let doc = read_json(input, options)?;
    if doc.get("bomFormat").and_then(Json::as_str) != Some("CycloneDX") {
        return Err(input.issue(
            Location::Unknown,
            "not a CycloneDX document (no \"bomFormat\": \"CycloneDX\")",
        ));
    }
    let meta = doc.get("metadata");
    let subject = meta
        .and_then(|m| m.get("component"))
        .and_then(|c| c.get("name"))
        .and_then(Json::as_str)
        .map(str::to_owned);
    let time = meta.and_then(|m| m.get("timestamp")).and_then(Json::as_str);
    let mut items = Vec::new();
    let mut skipped = 0usize;
    if let Some(list) = doc.get("components").and_then(Json::as_array) {
        cyclonedx_components(list, 0, &mut items, &mut skipped);
    }
    finish(input, options, sink, subject, time, items, skipped)
}

fn cyclonedx_components(
    list: &[Json],
    depth: usize,
    items: &mut Vec<InventoryItem>,
    skipped: &mut usize,
) {
    if depth > MAX_NESTING {
        *skipped += list.len();
        return;
    }
    for c in list {
        let purl = c.get("purl").and_then(Json::as_str);
        let name = c.get("name").and_then(Json::as_str);
        let version = c.get("version").and_then(Json::as_str);
        match component(name, c.get("group").and_then(Json::as_str), version, purl) {
            Some(item) => items.push(item),
            None => *skipped += 1,
        }
        if let Some(children) = c.get("components").and_then(Json::as_array) {
            cyclonedx_components(children, depth + 1, items, skipped);
        }
    }
}

/// Reads an SPDX JSON document.
pub fn read_spdx(
    input: &mut Input,
    options: &ReadOptions,
    sink: &mut dyn Sink,
) -> Result<(), ReadIssue> {
    let doc = read_json(input, options)?;
    let version = doc.get("spdxVersion").and_then(Json::as_str).unwrap_or("");
    if !version.starts_with("SPDX-2.") {
        return Err(input.issue(
            Location::Unknown,
            format!("not an SPDX 2.x JSON document (spdxVersion {version:?})"),
        ));
    }
    let subject = doc.get("name").and_then(Json::as_str).map(str::to_owned);
    let time = doc
        .get("creationInfo")
        .and_then(|c| c.get("created"))
        .and_then(Json::as_str);
    let mut items = Vec::new();
    let mut skipped = 0usize;
    for p in doc
        .get("packages")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let purl = p
            .get("externalRefs")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .find(|r| r.get("referenceType").and_then(Json::as_str) == Some("purl"))
            .and_then(|r| r.get("referenceLocator"))
            .and_then(Json::as_str);
        let name = p.get("name").and_then(Json::as_str);
        let version = p.get("versionInfo").and_then(Json::as_str);
        match component(name, None, version, purl) {
            Some(item) => items.push(item),
            None => skipped += 1,
        }
    }
    finish(input, options, sink, subject, time, items, skipped)
}

fn read_json(input: &mut Input, options: &ReadOptions) -> Result<Json, ReadIssue> {
    let bytes = input.read_document(options.limits.max_document_bytes)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        input.issue(
            Location::Line(e.line() as u64),
            format!("invalid JSON: {e}"),
        )
    })
}

fn finish(
    input: &Input,
    options: &ReadOptions,
    sink: &mut dyn Sink,
    subject: Option<String>,
    time: Option<&str>,
    items: Vec<InventoryItem>,
    skipped: usize,
) -> Result<(), ReadIssue> {
    if skipped > 0 {
        sink.skipped(input.issue(
            Location::Unknown,
            format!("{skipped} components without a name or version were skipped"),
        ));
    }
    let host = options.host.clone().or(subject.clone()).ok_or_else(|| {
        input.issue(
            Location::Unknown,
            "the SBOM names no subject; give the endpoint with --endpoint",
        )
    })?;
    let time = match time {
        Some(t) => Time::parse(t).map_err(|e| input.issue(Location::Unknown, e))?,
        None => Time::now(),
    };
    let source = format!(
        "sbom:{}",
        subject.unwrap_or_else(|| input.stem().to_owned())
    );
    sink.record(
        Record::Inventory(InventoryRecord {
            host,
            time,
            source,
            change: InventoryChange::Snapshot(items),
        }),
        Location::Unknown,
    );
    Ok(())
}

/// A component from its name and version, with the ecosystem and the
/// ecosystem's own package name taken from its package URL when present.
fn component(
    name: Option<&str>,
    group: Option<&str>,
    version: Option<&str>,
    purl: Option<&str>,
) -> Option<InventoryItem> {
    let parsed = purl.and_then(Purl::parse);
    let version = version
        .or(parsed.as_ref().and_then(|p| p.version.as_deref()))?
        .to_owned();
    let (name, ecosystem) = match &parsed {
        Some(p) => (p.package_name(), p.ecosystem()),
        None => {
            let n = name?;
            (
                match group {
                    Some(g) if !g.is_empty() => format!("{g}:{n}"),
                    _ => n.to_owned(),
                },
                Ecosystem::Generic,
            )
        }
    };
    (!name.is_empty()).then_some(InventoryItem {
        name,
        version,
        vendor: None,
        platform: None,
        ecosystem,
    })
}

/// The parts of a package URL (`pkg:type/namespace/name@version`) that
/// matter for matching.
#[derive(Debug, PartialEq)]
pub struct Purl {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub version: Option<String>,
}

impl Purl {
    pub fn parse(s: &str) -> Option<Purl> {
        let rest = s.strip_prefix("pkg:")?;
        let rest = rest.split(['?', '#']).next()?;
        let (path, version) = match rest.rsplit_once('@') {
            Some((p, v)) if !p.is_empty() && !p.ends_with('/') => (p, Some(percent_decode(v))),
            _ => (rest, None),
        };
        let mut parts = path.split('/');
        let kind = parts.next()?.to_ascii_lowercase();
        let segs: Vec<String> = parts.map(percent_decode).collect();
        let (name, namespace) = segs.split_last()?;
        (!name.is_empty()).then(|| Purl {
            kind,
            namespace: (!namespace.is_empty()).then(|| namespace.join("/")),
            name: name.clone(),
            version,
        })
    }

    pub fn ecosystem(&self) -> Ecosystem {
        match self.kind.as_str() {
            "npm" => Ecosystem::Npm,
            "pypi" => Ecosystem::Pypi,
            "cargo" => Ecosystem::Crates,
            "deb" => Ecosystem::Debian,
            "rpm" => Ecosystem::Rpm,
            "golang" => Ecosystem::Go,
            "maven" => Ecosystem::Maven,
            "gem" => Ecosystem::Rubygems,
            "nuget" => Ecosystem::Nuget,
            "composer" => Ecosystem::Packagist,
            _ => Ecosystem::Generic,
        }
    }

    /// The name the ecosystem's advisories use: `@scope/name` for npm,
    /// `group:artifact` for Maven, the module path for Go.
    pub fn package_name(&self) -> String {
        match (&self.namespace, self.kind.as_str()) {
            (Some(ns), "maven") => format!("{ns}:{}", self.name),
            (Some(ns), "npm" | "golang" | "composer") => format!("{ns}/{}", self.name),
            _ => self.name.clone(),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Collect;

    #[test]
    fn purls() {
        let p = Purl::parse("pkg:npm/%40angular/core@12.0.0").unwrap();
        assert_eq!(
            (p.package_name(), p.version.as_deref(), p.ecosystem()),
            ("@angular/core".into(), Some("12.0.0"), Ecosystem::Npm)
        );
        let p = Purl::parse("pkg:maven/org.apache/commons-lang3@3.9?type=jar").unwrap();
        assert_eq!(p.package_name(), "org.apache:commons-lang3");
        assert_eq!(
            Purl::parse("pkg:cargo/rustdecimal@1.0")
                .unwrap()
                .ecosystem(),
            Ecosystem::Crates
        );
        assert!(Purl::parse("npm/x").is_none());
        assert!(Purl::parse("pkg:npm/").is_none());
    }

    #[test]
    fn cyclonedx_nested_components() {
        let text = r#"{"bomFormat":"CycloneDX","specVersion":"1.4","metadata":{"timestamp":"2023-01-01T00:00:00Z","component":{"name":"web-01"}},
        "components":[{"name":"lodash","version":"4.17.20","purl":"pkg:npm/lodash@4.17.20",
          "components":[{"name":"inner","version":"1.0"}]},{"name":"noversion"}]}"#;
        let mut input = Input::from_bytes("bom.json", text.as_bytes().to_vec());
        let mut sink = Collect::default();
        read_cyclonedx(&mut input, &ReadOptions::default(), &mut sink).unwrap();
        let r = sink.inventory().next().unwrap();
        assert_eq!(r.host, "web-01");
        assert_eq!(r.source, "sbom:web-01");
        match &r.change {
            InventoryChange::Snapshot(items) => {
                assert_eq!(items.len(), 2);
                assert_eq!(items[0].ecosystem, Ecosystem::Npm);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(sink.skipped.len(), 1);
    }

    #[test]
    fn spdx_packages() {
        let text = r#"{"spdxVersion":"SPDX-2.3","name":"hello","creationInfo":{"created":"2023-01-01T00:00:00Z"},
        "packages":[{"name":"hello","versionInfo":"1.0","externalRefs":[{"referenceType":"purl","referenceLocator":"pkg:golang/github.com/x/hello@1.0"}]}]}"#;
        let mut input = Input::from_bytes("x.spdx.json", text.as_bytes().to_vec());
        let mut sink = Collect::default();
        read_spdx(&mut input, &ReadOptions::default(), &mut sink).unwrap();
        let r = sink.inventory().next().unwrap();
        assert!(
            matches!(&r.change, InventoryChange::Snapshot(i) if i[0].name == "github.com/x/hello" && i[0].ecosystem == Ecosystem::Go)
        );
    }
}
