//! MISP event JSON: attributes and object attributes, with the event's
//! title (or its threat-actor/campaign galaxy cluster) as the campaign.

use serde_json::Value as Json;
use turncoat_core::{Indicator, IndicatorKind, Time};

use super::infer::{kind_label, refang, resolve};
use super::{Intel, feed_name};
use crate::{Location, ReadIssue};

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
        Json::Array(items) => items.iter().map(|i| i.get("Event").unwrap_or(i)).collect(),
        Json::Object(o) if o.contains_key("response") => o["response"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| i.get("Event").unwrap_or(i))
            .collect(),
        Json::Object(o) => vec![o.get("Event").unwrap_or(&doc)],
        _ => return Err(ReadIssue::new(name, Location::Unknown, "not a MISP event")),
    };
    let feed = feed_name(name);
    let mut intel = Intel::default();
    let mut n = 0u64;
    for event in events {
        let campaign = galaxy_name(event)
            .or_else(|| event.get("info").and_then(Json::as_str).map(str::to_owned));
        let attrs = event
            .get("Attribute")
            .and_then(Json::as_array)
            .into_iter()
            .flatten();
        let object_attrs = event
            .get("Object")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .flat_map(|o| {
                o.get("Attribute")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
            });
        for attr in attrs.chain(object_attrs) {
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
    let ty = attr.get("type").and_then(Json::as_str).unwrap_or("");
    let Some(value) = attr.get("value").and_then(Json::as_str) else {
        intel
            .rejected
            .push(ReadIssue::new(name, location, "attribute without a value"));
        return;
    };
    if attr.get("to_ids").and_then(Json::as_bool) == Some(false) {
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
                    format!("{v:?} is not a valid {t} value"),
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
}
