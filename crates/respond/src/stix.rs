//! A STIX 2.1 bundle: one `indicator` per entry (a STIX pattern on the
//! domain name, address, URL or file hash), created by a `turncoat`
//! identity. Ids are derived from what each object is, so an indicator
//! keeps its id from one export to the next.

use serde_json::{Value, json};
use turncoat_core::{IndicatorKind, Time};

use super::{BlockEntry, Blocklist};

/// A UUID for `what`: version 4's layout over a hash of it, so that the
/// same thing gets the same id every time (STIX asks for RFC 4122 UUIDs;
/// nothing depends on their being random).
pub fn uuid_of(what: &str) -> String {
    let hash = blake3::hash(what.as_bytes());
    let mut b: [u8; 16] = hash.as_bytes()[..16].try_into().unwrap_or([0; 16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A STIX timestamp: UTC, to the millisecond.
pub fn timestamp(t: Time) -> String {
    formatted(t, "%Y-%m-%dT%H:%M:%S%.3fZ")
}

/// A timestamp to the microsecond: what a TAXII `date_added` carries, so
/// that `added_after` resumes exactly where a page ended.
pub fn precise_timestamp(t: Time) -> String {
    formatted(t, "%Y-%m-%dT%H:%M:%S%.6fZ")
}

fn formatted(t: Time, format: &str) -> String {
    jiff::Timestamp::from_microsecond(t.0)
        .map(|ts| ts.strftime(format).to_string())
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".into())
}

/// A string literal of a STIX pattern.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn pattern(entry: &BlockEntry) -> Option<String> {
    let value = literal(&entry.value);
    Some(match entry.kind {
        IndicatorKind::Domain => format!("[domain-name:value = {value}]"),
        IndicatorKind::Ip => match entry.value.parse::<std::net::IpAddr>().ok()? {
            std::net::IpAddr::V4(_) => format!("[ipv4-addr:value = {value}]"),
            std::net::IpAddr::V6(_) => format!("[ipv6-addr:value = {value}]"),
        },
        IndicatorKind::Url => format!("[url:value = {value}]"),
        IndicatorKind::Sha256 => format!("[file:hashes.'SHA-256' = {value}]"),
        _ => return None,
    })
}

const IDENTITY_CREATED: Time = Time(1_672_531_200_000_000); // 2023-01-01

/// The identity every object turncoat writes is created by.
pub fn identity() -> Value {
    json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": identity_id(),
        "created": timestamp(IDENTITY_CREATED),
        "modified": timestamp(IDENTITY_CREATED),
        "name": "turncoat",
        "identity_class": "system",
    })
}

fn identity_id() -> String {
    format!("identity--{}", uuid_of("turncoat identity"))
}

/// The STIX id of the indicator for `kind` and `value`.
pub fn indicator_id(kind: IndicatorKind, value: &str) -> String {
    format!(
        "indicator--{}",
        uuid_of(&format!("turncoat indicator {kind} {value}"))
    )
}

/// One entry as a STIX indicator; `None` for a kind STIX patterns here
/// do not write.
pub fn indicator(e: &BlockEntry) -> Option<Value> {
    let pattern = pattern(e)?;
    let mut indicator = json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": indicator_id(e.kind, &e.value),
        "created_by_ref": identity_id(),
        "created": timestamp(e.added),
        "modified": timestamp(e.updated.max(e.added)),
        "name": format!("{} {}", e.kind, e.value),
        "indicator_types": ["malicious-activity"],
        "pattern": pattern,
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": timestamp(e.added),
        "labels": e.sources,
    });
    let object = indicator.as_object_mut()?;
    if let Some(until) = e.valid_until.filter(|u| *u > e.added) {
        object.insert("valid_until".into(), Value::from(timestamp(until)));
    }
    if let Some(c) = e.confidence {
        object.insert("confidence".into(), Value::from(c.min(100)));
    }
    // Name and description both, as STIX asks (a SHOULD).
    let why = e
        .description
        .clone()
        .unwrap_or_else(|| format!("named by {}", e.sources.join(", ")));
    let description = match &e.campaign {
        Some(c) => format!("{why} (campaign {c})"),
        None => why,
    };
    object.insert("description".into(), Value::from(description));
    Some(indicator)
}

pub(crate) fn bundle(list: &Blocklist, now: Time) -> String {
    let mut objects = vec![identity()];
    objects.extend(list.entries.iter().filter_map(indicator));
    let id = format!(
        "bundle--{}",
        uuid_of(&format!(
            "turncoat bundle {} {} {}",
            list.tenant.as_deref().unwrap_or(""),
            list.serial,
            now.0
        ))
    );
    let bundle = json!({ "type": "bundle", "id": id, "objects": objects });
    serde_json::to_string_pretty(&bundle).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::entry;

    #[test]
    fn patterns_ids_and_timestamps() {
        let list = Blocklist {
            entries: vec![
                entry(1, IndicatorKind::Domain, "msstorageboxes.com"),
                entry(2, IndicatorKind::Ip, "2001:db8::1"),
                entry(3, IndicatorKind::Url, "https://x.example/it's"),
                entry(4, IndicatorKind::Sha256, &"b".repeat(64)),
            ],
            serial: 1,
            tenant: None,
        };
        let text = bundle(&list, Time(0));
        let doc: Value = serde_json::from_str(&text).unwrap();
        let objects = doc["objects"].as_array().unwrap();
        assert_eq!(objects.len(), 5);
        let patterns: Vec<&str> = objects[1..]
            .iter()
            .map(|o| o["pattern"].as_str().unwrap())
            .collect();
        assert_eq!(
            patterns,
            [
                "[domain-name:value = 'msstorageboxes.com']",
                "[ipv6-addr:value = '2001:db8::1']",
                "[url:value = 'https://x.example/it\\'s']",
                &format!("[file:hashes.'SHA-256' = '{}']", "b".repeat(64)),
            ]
        );
        assert_eq!(objects[1]["created"], "2023-03-28T10:40:00.000Z");
        let again: Value = serde_json::from_str(&bundle(&list, Time(0))).unwrap();
        assert_eq!(again["objects"][1]["id"], objects[1]["id"], "stable ids");
        let id = objects[1]["id"].as_str().unwrap();
        assert_eq!(
            &id[id.len() - 22..id.len() - 21],
            "4",
            "version 4 layout: {id}"
        );
    }
}
