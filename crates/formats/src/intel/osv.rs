//! OSV records (one file, a directory's files, or a zip of them) as
//! package advisories: `MAL-` records mark every affected version hostile.

use std::io::{Cursor, Read};

use serde_json::Value as Json;
use turncoat_core::{Advisory, Affected, Ecosystem, Severity, VersionRange};

use super::Intel;
use crate::{Limits, Location, ReadIssue, RecordError};

/// Entries a zip may hold before the rest is refused.
const MAX_ZIP_ENTRIES: usize = 1_000_000;

/// Reads one OSV record, an array of records, or a zip of record files.
pub fn read(name: &str, bytes: &[u8], limits: &Limits) -> Result<Intel, ReadIssue> {
    let mut intel = Intel::default();
    if bytes.starts_with(b"PK\x03\x04") {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
            ReadIssue::new(name, Location::Offset(0), format!("unreadable zip: {e}"))
        })?;
        let mut budget = limits.max_document_bytes as u64;
        for i in 0..zip.len().min(MAX_ZIP_ENTRIES) {
            let mut entry = match zip.by_index(i) {
                Ok(e) => e,
                Err(e) => {
                    intel.rejected.push(ReadIssue::new(
                        name,
                        Location::Record(i as u64 + 1),
                        format!("zip entry: {e}"),
                    ));
                    continue;
                }
            };
            if entry.is_dir() || !entry.name().ends_with(".json") {
                continue;
            }
            let entry_name = format!("{name}!/{}", entry.name());
            let mut buf = Vec::new();
            // The declared size is not trusted: read at most the budget left.
            if let Err(e) = (&mut entry).take(budget + 1).read_to_end(&mut buf) {
                intel.rejected.push(ReadIssue::new(
                    &entry_name,
                    Location::Unknown,
                    format!("unreadable: {e}"),
                ));
                continue;
            }
            if buf.len() as u64 > budget {
                intel.rejected.push(ReadIssue::new(
                    name,
                    Location::Unknown,
                    "zip holds more than the document limit; the rest is skipped",
                ));
                break;
            }
            budget -= buf.len() as u64;
            record_file(&entry_name, &buf, &mut intel);
        }
        return Ok(intel);
    }
    record_file(name, bytes, &mut intel);
    Ok(intel)
}

fn record_file(name: &str, bytes: &[u8], intel: &mut Intel) {
    let doc: Json = match serde_json::from_slice(bytes) {
        Ok(d) => d,
        Err(e) => {
            intel.rejected.push(ReadIssue::new(
                name,
                Location::Line(e.line() as u64),
                format!("invalid JSON: {e}"),
            ));
            return;
        }
    };
    let records: Vec<&Json> = match &doc {
        Json::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    for (i, r) in records.into_iter().enumerate() {
        match advisory(r) {
            Ok(a) => intel.advisories.push(a),
            Err(e) => intel
                .rejected
                .push(ReadIssue::new(name, Location::Record(i as u64 + 1), e)),
        }
    }
}

/// Maps one OSV record.
pub fn advisory(r: &Json) -> Result<Advisory, RecordError> {
    let id = r
        .get("id")
        .and_then(Json::as_str)
        .ok_or("OSV record without an id")?;
    let malicious = id.starts_with("MAL-");
    let mut affected = Vec::new();
    for a in r
        .get("affected")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let Some(pkg) = a.get("package") else {
            continue;
        };
        let (Some(eco_name), Some(pkg_name)) = (
            pkg.get("ecosystem").and_then(Json::as_str),
            pkg.get("name").and_then(Json::as_str),
        ) else {
            continue;
        };
        let Some(ecosystem) = Ecosystem::from_osv(eco_name) else {
            continue;
        };
        let mut ranges = Vec::new();
        for range in a
            .get("ranges")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            if range.get("type").and_then(Json::as_str) == Some("GIT") {
                continue;
            }
            // Events come in order: each `introduced` opens a range that the
            // next `fixed`/`last_affected` closes.
            let mut open: Option<VersionRange> = None;
            for ev in range
                .get("events")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                let get = |k: &str| ev.get(k).and_then(Json::as_str).map(str::to_owned);
                if let Some(v) = get("introduced") {
                    if let Some(r) = open.take() {
                        ranges.push(r);
                    }
                    open = Some(VersionRange {
                        introduced: Some(v),
                        ..Default::default()
                    });
                } else if let Some(v) = get("fixed") {
                    let mut r = open.take().unwrap_or_default();
                    r.fixed = Some(v);
                    ranges.push(r);
                } else if let Some(v) = get("last_affected") {
                    let mut r = open.take().unwrap_or_default();
                    r.last_affected = Some(v);
                    ranges.push(r);
                }
            }
            ranges.extend(open);
        }
        let versions = a
            .get("versions")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        affected.push(Affected {
            product: pkg_name.to_owned(),
            vendor: None,
            names: Vec::new(),
            platforms: Vec::new(),
            ecosystem,
            versions,
            ranges,
        });
    }
    if affected.is_empty() {
        return Err(RecordError::from(format!(
            "{id}: no affected package in a known ecosystem"
        )));
    }
    Ok(Advisory {
        id: id.to_owned(),
        title: r
            .get("summary")
            .and_then(Json::as_str)
            .or_else(|| r.get("details").and_then(Json::as_str))
            .unwrap_or(id)
            .chars()
            .take(300)
            .collect(),
        published: r.get("published").and_then(Json::as_str).map(str::to_owned),
        references: r
            .get("references")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(|x| x.get("url").and_then(Json::as_str).map(str::to_owned))
            .collect(),
        campaign: None,
        severity: if malicious {
            Severity::Critical
        } else {
            // GitHub's advisories say how bad; others are taken as high.
            match r
                .pointer("/database_specific/severity")
                .and_then(Json::as_str)
                .map(str::to_ascii_uppercase)
                .as_deref()
            {
                Some("CRITICAL") => Severity::Critical,
                Some("MODERATE" | "MEDIUM") => Severity::Medium,
                Some("LOW") => Severity::Low,
                _ => Severity::High,
            }
        },
        affected,
        indicators: Vec::new(),
        malicious,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mal_record_covers_every_version() {
        let text = r#"{"id":"MAL-2022-1","summary":"Malicious code in rustdecimal (crates.io)",
          "affected":[{"package":{"ecosystem":"crates.io","name":"rustdecimal"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}"#;
        let intel = read("MAL-2022-1.json", text.as_bytes(), &Limits::default()).unwrap();
        let a = &intel.advisories[0];
        assert!(a.malicious);
        assert!(a.affected[0].matches("rustdecimal", "1.23.1", None, Ecosystem::Crates));
        assert!(!a.affected[0].matches("rust_decimal", "1.23.1", None, Ecosystem::Crates));
    }

    #[test]
    fn ranges_and_zip() {
        let rec = r#"{"id":"GHSA-x","database_specific":{"severity":"MODERATE"},"affected":[{"package":{"ecosystem":"PyPI","name":"pkg"},
          "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.0"},{"fixed":"1.2"},{"introduced":"2.0"},{"last_affected":"2.1"}]}]}]}"#;
        let mut buf = Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            w.start_file("a.json", zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut w, rec.as_bytes()).unwrap();
            w.start_file("bad.json", zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut w, b"{").unwrap();
            w.finish().unwrap();
        }
        let intel = read("osv.zip", buf.get_ref(), &Limits::default()).unwrap();
        assert_eq!(intel.advisories.len(), 1);
        assert_eq!(intel.rejected.len(), 1);
        assert_eq!(intel.advisories[0].severity, Severity::Medium);
        let a = &intel.advisories[0].affected[0];
        assert!(a.version_affected("1.1"));
        assert!(!a.version_affected("1.2"));
        assert!(a.version_affected("2.1"));
        assert!(!a.version_affected("2.1.1"));
    }
}
