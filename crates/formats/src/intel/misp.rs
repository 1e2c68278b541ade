//! MISP event JSON: attributes and object attributes, with the event's
//! title (or its threat-actor/campaign galaxy cluster) as the campaign.

use serde_json::Value as Json;
use turncoat_core::{Indicator, IndicatorKind, Time, quote};

use super::infer::{kind_label, refang, resolve};
use super::{Intel, feed_name};
use crate::{Location, ReadIssue, RecordError};

/// Reads a MISP event (`{"Event": …}`), a list of them, or a REST
/// `{"response": [...]}`.
pub fn read(name: &str, bytes: &[u8]) -> Result<Intel, ReadIssue> {
    let doc: Json = serde_json::from_slice(bytes).map_err(|e| {
        ReadIssue::new(
            name,
            Location::Line(e.line() as u64),
            format!("invalid JSON: {e}"),
        )
    })?;
    let events: Vec<&Json> = match &doc {
        Json::Array(items) => items.iter().map(unwrap_event).collect(),
        Json::Object(o) if o.contains_key("response") => match &o["response"] {
            Json::Array(items) => items.iter().map(unwrap_event).collect(),
            other => {
                return Err(ReadIssue::new(
                    name,
                    Location::Unknown,
                    format!(
                        "\"response\" is {}, expected a list of events",
                        json_type(other)
                    ),
                ));
            }
        },
        Json::Object(_) => vec![unwrap_event(&doc)],
        _ => return Err(ReadIssue::new(name, Location::Unknown, "not a MISP event")),
    };
    let feed = feed_name(name);
    let mut intel = Intel::default();
    let mut n = 0u64;
    for (e, event) in events.into_iter().enumerate() {
        let event_location = Location::Record(e as u64 + 1);
        if !event.is_object() {
            intel.rejected.push(ReadIssue::new(
                name,
                event_location,
                format!(
                    "event {} is {}, expected an object",
                    e + 1,
                    json_type(event)
                ),
            ));
            continue;
        }
        let campaign = galaxy_name(event)
            .or_else(|| event.get("info").and_then(Json::as_str).map(str::to_owned));
        let mut attrs: Vec<&Json> = Vec::new();
        match list_field(event, "Attribute") {
            Ok(list) => attrs.extend(list),
            Err(msg) => intel
                .rejected
                .push(ReadIssue::new(name, event_location, msg)),
        }
        match list_field(event, "Object") {
            Ok(objects) => {
                for object in objects {
                    if is_deleted(object) {
                        intel.informational += 1;
                        continue;
                    }
                    match list_field(object, "Attribute") {
                        Ok(list) => attrs.extend(list),
                        Err(msg) => intel.rejected.push(ReadIssue::new(
                            name,
                            event_location,
                            format!("in Object: {msg}"),
                        )),
                    }
                }
            }
            Err(msg) => intel
                .rejected
                .push(ReadIssue::new(name, event_location, msg)),
        }
        for attr in attrs {
            n += 1;
            attribute(
                name,
                &feed,
                attr,
                campaign.as_deref(),
                Location::Record(n),
                &mut intel,
            );
        }
    }
    Ok(intel)
}

/// The event inside an `{"Event": …}` wrapper, or the item itself.
fn unwrap_event(item: &Json) -> &Json {
    item.get("Event").unwrap_or(item)
}

/// A list-valued member of a MISP object: absent means empty, anything
/// but a list is an error (a lone object would otherwise vanish unread).
fn list_field<'a>(parent: &'a Json, key: &str) -> Result<&'a [Json], RecordError> {
    match parent.get(key) {
        None => Ok(&[]),
        Some(Json::Array(items)) => Ok(items),
        Some(other) => Err(RecordError::from(format!(
            "\"{key}\" is {}, expected a list",
            json_type(other)
        ))),
    }
}

fn json_type(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

/// MISP's flags are booleans, but exports and hand-edited files also
/// write them as `"0"`/`"1"`, `"true"`/`"false"` or numbers.
fn flag(v: Option<&Json>) -> Option<bool> {
    match v? {
        Json::Bool(b) => Some(*b),
        Json::Number(n) => n.as_f64().map(|f| f != 0.0),
        Json::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => Some(true),
            "0" | "false" | "no" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A soft-deleted attribute or object: MISP keeps it in exports, but it
/// was withdrawn and must not match.
fn is_deleted(v: &Json) -> bool {
    flag(v.get("deleted")) == Some(true)
}

fn galaxy_name(event: &Json) -> Option<String> {
    event.get("Galaxy")?.as_array()?.iter().find_map(|g| {
        let ty = g.get("type").and_then(Json::as_str)?;
        if !matches!(ty, "threat-actor" | "mitre-intrusion-set" | "campaign") {
            return None;
        }
        g.get("GalaxyCluster")?
            .as_array()?
            .first()?
            .get("value")?
            .as_str()
            .map(str::to_owned)
    })
}

fn attribute(
    name: &str,
    feed: &str,
    attr: &Json,
    campaign: Option<&str>,
    location: Location,
    intel: &mut Intel,
) {
    if !attr.is_object() {
        intel.rejected.push(ReadIssue::new(
            name,
            location,
            format!("attribute is {}, expected an object", json_type(attr)),
        ));
        return;
    }
    let ty = attr.get("type").and_then(Json::as_str).unwrap_or("");
    let Some(value) = attr.get("value").and_then(Json::as_str) else {
        intel
            .rejected
            .push(ReadIssue::new(name, location, "attribute without a value"));
        return;
    };
    if is_deleted(attr) || flag(attr.get("to_ids")) == Some(false) {
        intel.informational += 1;
        return;
    }
    // Composite types (`filename|sha256`, `domain|ip`, `ip-dst|port`) hold
    // one value per part.
    let type_parts: Vec<&str> = ty.split('|').collect();
    let value_parts: Vec<&str> = if type_parts.len() > 1 {
        value.splitn(type_parts.len(), '|').collect()
    } else {
        vec![value]
    };
    let mut produced = 0;
    for (t, v) in type_parts.iter().zip(value_parts) {
        if *t == "port" || (*t == "filename" && type_parts.len() > 1) {
            continue;
        }
        let Some(kind) = misp_kind(t) else { continue };
        match resolve(Some(kind), &refang(v)) {
            Some((kind, normalized)) => {
                let mut ind =
                    Indicator::new(kind, &normalized, feed).expect("resolve returns valid values");
                ind.external_id = attr.get("uuid").and_then(Json::as_str).map(str::to_owned);
                ind.description = attr
                    .get("comment")
                    .and_then(Json::as_str)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned);
                ind.campaign = campaign.map(str::to_owned);
                ind.valid_from = attr
                    .get("first_seen")
                    .and_then(Json::as_str)
                    .and_then(|t| Time::parse(t).ok());
                ind.valid_until = attr
                    .get("last_seen")
                    .and_then(Json::as_str)
                    .and_then(|t| Time::parse(t).ok());
                intel.indicators.push(ind);
                produced += 1;
            }
            None => {
                intel.rejected.push(ReadIssue::new(
                    name,
                    location,
                    format!("{} is not a valid {t} value", quote(v)),
                ));
                produced += 1;
            }
        }
    }
    if produced == 0 {
        // Attribute types that are no indicator (text, link, comment, ...).
        intel.informational += 1;
    }
}

fn misp_kind(t: &str) -> Option<IndicatorKind> {
    Some(match t {
        "domain" | "hostname" => IndicatorKind::Domain,
        "url" | "uri" => IndicatorKind::Url,
        "ip-dst" | "ip-src" => IndicatorKind::Ip,
        "md5" | "sha1" | "sha256" => kind_label(t)?,
        "filename" => IndicatorKind::Filename,
        "email-src" | "email-dst" | "email" | "whois-registrant-email" => IndicatorKind::Email,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_objects_and_composites() {
        let text = r#"{"Event":{"info":"3CX supply chain","Attribute":[
            {"type":"domain","value":"akamaicontainer.com","to_ids":true,"uuid":"u1"},
            {"type":"ip-dst|port","value":"203.0.113.7|443","to_ids":true},
            {"type":"link","value":"https://example.com/report","to_ids":false},
            {"type":"comment","value":"text","to_ids":true},
            {"type":"sha256","value":"nothex","to_ids":true}],
          "Object":[{"name":"file","Attribute":[{"type":"filename|sha256","value":"ffmpeg.dll|7986bbaee8940da11ce089383521ab420c443ab7b15ed42aed91fd31ce833896","to_ids":true}]}]}}"#;
        let intel = read("misp.json", text.as_bytes()).unwrap();
        let kinds: Vec<_> = intel.indicators.iter().map(|i| i.kind).collect();
        assert_eq!(
            kinds,
            vec![
                IndicatorKind::Domain,
                IndicatorKind::Ip,
                IndicatorKind::Sha256
            ]
        );
        assert_eq!(
            intel.indicators[0].campaign.as_deref(),
            Some("3CX supply chain")
        );
        assert_eq!(intel.informational, 2);
        assert_eq!(intel.rejected.len(), 1);
        assert_eq!(intel.rejected[0].location, Location::Record(5));
    }

    #[test]
    fn withdrawn_and_non_detection_attributes_do_not_match() {
        let text = r#"{"Event":{"info":"x","Attribute":[
            {"type":"domain","value":"deleted.example.com","to_ids":true,"deleted":true},
            {"type":"domain","value":"string-zero.example.com","to_ids":"0"},
            {"type":"domain","value":"string-false.example.com","to_ids":"false"},
            {"type":"domain","value":"number-zero.example.com","to_ids":0},
            {"type":"domain","value":"kept.example.com","to_ids":"1"}],
          "Object":[{"name":"file","deleted":true,"Attribute":[{"type":"md5","value":"d41d8cd98f00b204e9800998ecf8427e","to_ids":true}]}]}}"#;
        let intel = read("misp.json", text.as_bytes()).unwrap();
        let values: Vec<_> = intel.indicators.iter().map(|i| i.value.as_str()).collect();
        assert_eq!(values, vec!["kept.example.com"]);
        assert_eq!(intel.informational, 5);
        assert!(intel.rejected.is_empty());
    }

    #[test]
    fn malformed_structure_is_reported() {
        let one = r#"{"Event":{"info":"x","Attribute":{"type":"domain","value":"a.example.com"}}}"#;
        let intel = read("one.json", one.as_bytes()).unwrap();
        assert!(intel.indicators.is_empty());
        assert_eq!(intel.rejected.len(), 1);
        assert!(
            intel.rejected[0]
                .message
                .contains("\"Attribute\" is an object")
        );

        let null = read("null.json", br#"{"Event":null}"#).unwrap();
        assert_eq!(null.rejected.len(), 1);
        assert!(
            null.rejected[0].message.contains("null"),
            "{:?}",
            null.rejected
        );

        let scalar = read(
            "scalar.json",
            br#"{"Event":{"info":"x","Attribute":["a.example.com"]}}"#,
        )
        .unwrap();
        assert_eq!(scalar.rejected.len(), 1);
        assert!(scalar.rejected[0].message.contains("a string"));
    }

    #[test]
    fn invalid_addresses_are_rejected_not_read_as_urls() {
        let text = r#"{"Event":{"info":"x","Attribute":[
            {"type":"ip-src","value":"1.2.3.4/33","to_ids":true},
            {"type":"ip-dst","value":"10.0.0.0/-1","to_ids":true},
            {"type":"ip-dst","value":"10.0.0.0/8","to_ids":true}]}}"#;
        let intel = read("misp.json", text.as_bytes()).unwrap();
        let kinds: Vec<_> = intel.indicators.iter().map(|i| i.kind).collect();
        assert_eq!(kinds, vec![IndicatorKind::Cidr]);
        assert_eq!(intel.rejected.len(), 2, "{:?}", intel.rejected);
    }
}
