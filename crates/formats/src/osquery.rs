//! osquery result logs for the software inventory tables: differential
//! (one row a line with `"action": "added"|"removed"`), snapshot
//! (`"snapshot": [...]`) and batch (`"diffResults": {...}`).

use serde_json::{Map, Value as Json};
use turncoat_core::{Ecosystem, InventoryChange, InventoryItem, InventoryRecord, Platform, Time};

use crate::input::Input;
use crate::jsonl::for_each_record;
use crate::{ReadIssue, ReadOptions, Record, RecordError, Sink};

/// The inventory tables turncoat reads, with the platform and version
/// ordering each implies.
const TABLES: [(&str, Option<Platform>, Ecosystem); 8] = [
    (
        "chocolatey_packages",
        Some(Platform::Windows),
        Ecosystem::Generic,
    ),
    (
        "homebrew_packages",
        Some(Platform::Macos),
        Ecosystem::Generic,
    ),
    ("python_packages", None, Ecosystem::Pypi),
    ("npm_packages", None, Ecosystem::Npm),
    ("deb_packages", Some(Platform::Linux), Ecosystem::Debian),
    ("rpm_packages", Some(Platform::Linux), Ecosystem::Rpm),
    ("programs", Some(Platform::Windows), Ecosystem::Generic),
    ("apps", Some(Platform::Macos), Ecosystem::Generic),
];

/// Reads osquery results.
pub fn read(
    input: &mut Input,
    options: &ReadOptions,
    sink: &mut dyn Sink,
) -> Result<(), ReadIssue> {
    let name = input.name().to_owned();
    for_each_record(input, &options.limits, sink, |bytes, location, sink| {
        let parsed = serde_json::from_slice::<Json>(bytes).map_err(RecordError::from);
        match parsed.and_then(|doc| parse_result(&doc, options.host.as_deref())) {
            Ok(records) => {
                for r in records {
                    sink.record(Record::Inventory(r), location);
                }
            }
            Err(e) => sink.skipped(ReadIssue::new(&name, location, e)),
        }
    })
}

/// One osquery result line: zero or more inventory records.
pub fn parse_result(
    doc: &Json,
    default_host: Option<&str>,
) -> Result<Vec<InventoryRecord>, RecordError> {
    let obj = doc.as_object().ok_or("not a JSON object")?;
    let query = obj.get("name").and_then(Json::as_str).unwrap_or("");
    let host = obj
        .get("hostIdentifier")
        .and_then(Json::as_str)
        .or_else(|| {
            obj.get("decorations")
                .and_then(|d| d.get("hostname"))
                .and_then(Json::as_str)
        })
        .or(default_host)
        .ok_or("no hostIdentifier")?
        .to_owned();
    let time = result_time(obj)?;
    let mut out = Vec::new();
    let mut push = |rows: &[&Map<String, Json>],
                    make: fn(Vec<InventoryItem>) -> InventoryChange|
     -> Result<(), RecordError> {
        let table = table_of(query, rows.first().copied()).ok_or_else(|| {
            format!("query {query:?} is not one of the inventory tables (programs, apps, deb_packages, ...)")
        })?;
        let items = rows.iter().filter_map(|r| item(table, r)).collect();
        out.push(InventoryRecord {
            host: host.clone(),
            time,
            source: table.0.to_owned(),
            change: make(items),
        });
        Ok(())
    };
    if let Some(rows) = obj.get("snapshot").and_then(Json::as_array) {
        let rows: Vec<_> = rows.iter().filter_map(Json::as_object).collect();
        if rows.is_empty() {
            // An empty snapshot says everything is gone, but only a table
            // named by the query can say which source that is.
            let table = table_of(query, None).ok_or("empty snapshot from an unnamed table")?;
            out.push(InventoryRecord {
                host,
                time,
                source: table.0.to_owned(),
                change: InventoryChange::Snapshot(vec![]),
            });
            return Ok(out);
        }
        push(&rows, InventoryChange::Snapshot)?;
    } else if let Some(diff) = obj.get("diffResults").and_then(Json::as_object) {
        for (key, make) in [
            ("removed", InventoryChange::Removed as fn(_) -> _),
            ("added", InventoryChange::Added as fn(_) -> _),
        ] {
            let rows: Vec<_> = diff
                .get(key)
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .filter_map(Json::as_object)
                .collect();
            if !rows.is_empty() {
                push(&rows, make)?;
            }
        }
    } else if let Some(columns) = obj.get("columns").and_then(Json::as_object) {
        let make = match obj.get("action").and_then(Json::as_str) {
            Some("added") => InventoryChange::Added,
            Some("removed") => InventoryChange::Removed,
            Some("snapshot") => InventoryChange::Snapshot,
            other => {
                return Err(RecordError::from(format!(
                    "unknown action {other:?} (added, removed or snapshot)"
                )));
            }
        };
        push(&[columns], make)?;
    } else {
        return Err(RecordError::from("no columns, snapshot or diffResults"));
    }
    Ok(out)
}

fn result_time(obj: &Map<String, Json>) -> Result<Time, RecordError> {
    if let Some(t) = obj.get("unixTime") {
        let secs = match t {
            Json::Number(n) => n.as_f64(),
            Json::String(s) => s.parse().ok(),
            _ => None,
        };
        if let Some(t) = secs.and_then(Time::from_epoch_secs_f64) {
            return Ok(t);
        }
    }
    if let Some(t) = obj.get("calendarTime").and_then(Json::as_str) {
        // "Wed Mar 22 10:00:00 2023 UTC"
        let parts: Vec<&str> = t.split_whitespace().collect();
        if parts.len() >= 5 {
            let months = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            if let Some(m) = months.iter().position(|m| *m == parts[1]) {
                let text = format!(
                    "{}-{:02}-{:02} {}",
                    parts[4],
                    m + 1,
                    parts[2].parse::<u32>().unwrap_or(0),
                    parts[3]
                );
                if let Ok(t) = Time::parse(&text) {
                    return Ok(t);
                }
            }
        }
    }
    Err(RecordError::from("no unixTime or calendarTime"))
}

type Table = (&'static str, Option<Platform>, Ecosystem);

/// Which table a result comes from: by the query name (`pack_inv_programs`
/// ends in `programs`), else by the columns the row has.
fn table_of(query: &str, row: Option<&Map<String, Json>>) -> Option<Table> {
    let q = query.to_ascii_lowercase();
    if let Some(t) = TABLES.iter().find(|(name, _, _)| {
        q == *name || q.ends_with(&format!("_{name}")) || q.ends_with(&format!("/{name}"))
    }) {
        return Some(*t);
    }
    let row = row?;
    let has = |k: &str| row.contains_key(k);
    let name = if has("bundle_identifier") || has("bundle_short_version") {
        "apps"
    } else if has("identifying_number")
        || has("install_location")
        || has("publisher") && !has("arch")
    {
        "programs"
    } else if has("release") && has("arch") {
        "rpm_packages"
    } else if has("arch") && has("maintainer") || has("revision") && has("arch") {
        "deb_packages"
    } else if has("prefix") && has("path") {
        "homebrew_packages"
    } else {
        return None;
    };
    TABLES.iter().find(|t| t.0 == name).copied()
}

fn item(table: Table, row: &Map<String, Json>) -> Option<InventoryItem> {
    let s = |k: &str| row.get(k).and_then(Json::as_str).filter(|v| !v.is_empty());
    let (name_key, version) = match table.0 {
        "apps" => (
            "name",
            s("bundle_short_version")
                .or(s("bundle_version"))
                .map(str::to_owned),
        ),
        "rpm_packages" => {
            let v = s("version")?;
            let mut full = String::new();
            if let Some(e) = s("epoch").filter(|e| *e != "0") {
                full.push_str(e);
                full.push(':');
            }
            full.push_str(v);
            if let Some(r) = s("release") {
                full.push('-');
                full.push_str(r);
            }
            ("name", Some(full))
        }
        _ => ("name", s("version").map(str::to_owned)),
    };
    Some(InventoryItem {
        name: s(name_key)?.to_owned(),
        version: version.unwrap_or_default(),
        vendor: s("publisher")
            .or(s("vendor"))
            .or(s("author"))
            .map(str::to_owned),
        platform: table.1,
        ecosystem: table.2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Collect;

    #[test]
    fn differential_rows() {
        let text = r#"{"name":"pack_inventory_programs","hostIdentifier":"WS-01","unixTime":1679479200,"columns":{"name":"3CX Desktop App","version":"18.12.416","publisher":"3CX Ltd"},"action":"added"}
{"name":"pack_inventory_apps","hostIdentifier":"mac-1","unixTime":"1679479200","columns":{"name":"3CX Desktop App.app","bundle_short_version":"18.12.416","bundle_identifier":"com.electron.3cx-desktop-app"},"action":"removed"}
{"name":"pack_inventory_programs","hostIdentifier":"WS-01","columns":{"name":"x"},"action":"added"}
"#;
        let mut input = Input::from_bytes("osq.log", text.as_bytes().to_vec());
        let mut sink = Collect::default();
        read(&mut input, &ReadOptions::default(), &mut sink).unwrap();
        let recs: Vec<_> = sink.inventory().collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(sink.skipped.len(), 1, "a row without a time is reported");
        assert_eq!(recs[0].source, "programs");
        match &recs[0].change {
            InventoryChange::Added(items) => {
                assert_eq!(items[0].name, "3CX Desktop App");
                assert_eq!(items[0].version, "18.12.416");
                assert_eq!(items[0].platform, Some(Platform::Windows));
                assert_eq!(items[0].vendor.as_deref(), Some("3CX Ltd"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&recs[1].change, InventoryChange::Removed(i) if i[0].platform == Some(Platform::Macos))
        );
    }

    #[test]
    fn snapshot_and_batch() {
        let snap: Json = serde_json::from_str(
            r#"{"name":"deb","hostIdentifier":"srv","unixTime":1,"action":"snapshot",
            "snapshot":[{"name":"openssl","version":"3.0.11-1~deb12u2","arch":"amd64","maintainer":"x"}]}"#,
        )
        .unwrap();
        let r = parse_result(&snap, None).unwrap();
        assert_eq!(r[0].source, "deb_packages");
        assert!(
            matches!(&r[0].change, InventoryChange::Snapshot(i) if i[0].ecosystem == Ecosystem::Debian)
        );

        let batch: Json = serde_json::from_str(
            r#"{"name":"rpm_packages","hostIdentifier":"srv","unixTime":1,
            "diffResults":{"added":[{"name":"bash","version":"5.1","release":"2.el9","epoch":"0","arch":"x86_64"}],"removed":[]}}"#,
        )
        .unwrap();
        let r = parse_result(&batch, None).unwrap();
        assert!(matches!(&r[0].change, InventoryChange::Added(i) if i[0].version == "5.1-2.el9"));
    }
}
