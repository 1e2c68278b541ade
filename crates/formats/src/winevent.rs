//! Windows events in the evtx-dump JSON shape
//! (`{"Event":{"System":{…},"EventData":{…}}}`), as `evtx_dump -o json`
//! writes and SigmaHQ's regression data ships.
//!
//! `EventData` (and `UserData`) fields keep their Windows names, which for
//! Sysmon are already Sigma's; Security 4688 fields are renamed onto
//! Sysmon's process creation names, keeping the originals.

use serde_json::{Map, Value as Json};
use turncoat_core::{Event, Fields, Time, Value};

use crate::input::Input;
use crate::jsonl::for_each_record;
use crate::logsource;
use crate::{ReadIssue, ReadOptions, Record, RecordError, Sink};

/// Reads Windows event JSON: one event per line, pretty-printed events one
/// after the other, or an array.
pub fn read_json(
    input: &mut Input,
    options: &ReadOptions,
    sink: &mut dyn Sink,
) -> Result<(), ReadIssue> {
    let name = input.name().to_owned();
    for_each_record(input, &options.limits, sink, |bytes, location, sink| {
        let parsed = serde_json::from_slice::<Json>(bytes).map_err(RecordError::from);
        match parsed.and_then(|doc| map_event(&doc, options.host.as_deref())) {
            Ok(event) => sink.record(Record::Event(event), location),
            Err(e) => sink.skipped(ReadIssue::new(&name, location, e)),
        }
    })
}

/// Maps one `{"Event": …}` document.
pub fn map_event(doc: &Json, default_host: Option<&str>) -> Result<Event, RecordError> {
    let event = doc.get("Event").ok_or("no \"Event\" object")?;
    let system = event
        .get("System")
        .and_then(Json::as_object)
        .ok_or("no \"Event.System\" object")?;
    let provider = system
        .get("Provider")
        .and_then(|p| attr(p, "Name"))
        .map(str::to_owned);
    let channel = system.get("Channel").and_then(text).map(|s| s.into_owned());
    let event_id = system.get("EventID").and_then(integer);
    let time = system
        .get("TimeCreated")
        .and_then(|t| attr(t, "SystemTime"))
        .ok_or("no Event.System.TimeCreated.SystemTime")?;
    let time = Time::parse(time)?;
    let host = system
        .get("Computer")
        .and_then(text)
        .map(|s| s.into_owned())
        .or_else(|| default_host.map(str::to_owned))
        .ok_or("no Event.System.Computer")?;

    let mut fields = Fields::with_capacity(32);
    if let Some(id) = event_id {
        fields.push("EventID", id);
    }
    if let Some(c) = &channel {
        fields.push("Channel", c.as_str());
    }
    if let Some(p) = &provider {
        fields.push("Provider_Name", p.as_str());
    }
    fields.push("Computer", host.as_str());
    for (key, name) in [
        ("EventRecordID", "EventRecordID"),
        ("Level", "Level"),
        ("Task", "Task"),
        ("Keywords", "Keywords"),
    ] {
        if let Some(v) = system.get(key) {
            fields.push(name, scalar(v));
        }
    }
    if let Some(user) = system.get("Security").and_then(|s| attr(s, "UserID")) {
        fields.push("SecurityUserID", user);
    }
    for section in ["EventData", "UserData"] {
        match event.get(section) {
            Some(Json::Object(map)) if section == "UserData" => {
                // UserData wraps its fields in one element named by the event.
                for inner in map.values() {
                    if let Json::Object(m) = inner {
                        data_fields(m, &mut fields);
                    }
                }
            }
            Some(Json::Object(map)) => data_fields(map, &mut fields),
            _ => {}
        }
    }
    let mut logsource = logsource::windows(provider.as_deref(), channel.as_deref(), event_id);
    logsource::refine(&mut logsource, &fields);
    if event_id == Some(4688) && logsource.service.as_deref() == Some("security") {
        rename_4688(&mut fields);
    }
    Ok(Event {
        time,
        host,
        logsource,
        fields,
    })
}

/// EventData as a map of names to values, or as `Data: [{"#attributes":
/// {"Name": …}, "#text": …}]`, or as unnamed `Data` strings.
fn data_fields(map: &Map<String, Json>, fields: &mut Fields) {
    for (key, value) in map {
        if key == "#attributes" {
            continue;
        }
        if key == "Data" {
            let items: Vec<&Json> = match value {
                Json::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            let mut unnamed = Vec::new();
            for item in items {
                match attr(item, "Name") {
                    Some(name) => fields.push(
                        name.to_owned(),
                        item.get("#text").map(scalar).unwrap_or(Value::Null),
                    ),
                    None => unnamed.push(scalar(item)),
                }
            }
            if !unnamed.is_empty() {
                fields.push(
                    "Data",
                    if unnamed.len() == 1 {
                        unnamed.remove(0)
                    } else {
                        Value::List(unnamed)
                    },
                );
            }
            continue;
        }
        fields.push(sigma_field_name(key), scalar(value));
    }
}

/// Some providers (Windows Defender) name fields with spaces; Sigma rules
/// write them without (`Source Name` is `SourceName`).
fn sigma_field_name(name: &str) -> String {
    if name.contains(' ') {
        name.replace(' ', "")
    } else {
        name.to_owned()
    }
}

fn rename_4688(fields: &mut Fields) {
    let renames: Vec<(&'static str, Value)> = fields
        .iter()
        .filter_map(|(k, v)| logsource::security_4688_field(k).map(|s| (s, v.clone())))
        .collect();
    for (sigma, value) in renames {
        if fields.get(sigma).is_none() || sigma == "ParentProcessId" {
            fields.set(sigma, value);
        }
    }
}

/// `{"#attributes": {name: value}}` → value.
fn attr<'a>(v: &'a Json, name: &str) -> Option<&'a str> {
    v.get("#attributes")?.get(name)?.as_str()
}

fn text(v: &Json) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Json::String(s) => Some(s.as_str().into()),
        Json::Number(n) => Some(n.to_string().into()),
        Json::Object(m) => m.get("#text").and_then(text),
        _ => None,
    }
}

fn integer(v: &Json) -> Option<i64> {
    match v {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.trim().parse().ok(),
        Json::Object(m) => m.get("#text").and_then(integer),
        _ => None,
    }
}

/// A field's value: `#text` of an element, nested objects as JSON text.
fn scalar(v: &Json) -> Value {
    match v {
        Json::Object(m) if m.contains_key("#text") => scalar(&m["#text"]),
        other => Value::from_json(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Collect;

    const SYSMON: &str = r##"{
  "Event": {
    "System": {
      "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
      "EventID": 1,
      "TimeCreated": {"#attributes": {"SystemTime": "2025-11-26T05:11:27.927693Z"}},
      "EventRecordID": 142649,
      "Channel": "Microsoft-Windows-Sysmon/Operational",
      "Computer": "ws-7"
    },
    "EventData": {"Image": "C:\\x\\GRB_NET.exe", "CommandLine": "GRB_NET.exe -m:scan", "ProcessId": 10116}
  }
}
"##;

    #[test]
    fn sysmon_event_from_pretty_json() {
        let mut input = Input::from_bytes("e.json", SYSMON.repeat(2).into_bytes());
        let mut sink = Collect::default();
        read_json(&mut input, &ReadOptions::default(), &mut sink).unwrap();
        assert_eq!(sink.records.len(), 2, "{:?}", sink.skipped);
        let e = sink.events().next().unwrap();
        assert_eq!(e.host, "ws-7");
        assert_eq!(e.logsource.category.as_deref(), Some("process_creation"));
        assert_eq!(e.fields.get_str("Image"), Some("C:\\x\\GRB_NET.exe"));
        assert_eq!(e.fields.get("EventID"), Some(&Value::Int(1)));
        assert_eq!(e.fields.get("EventRecordID"), Some(&Value::Int(142649)));
        assert_eq!(e.time, Time::parse("2025-11-26T05:11:27.927693Z").unwrap());
    }

    #[test]
    fn security_4688_gets_sysmon_names_and_data_lists_work() {
        let doc: Json = serde_json::from_str(
            r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing"}},
            "EventID":{"#text":"4688"},"TimeCreated":{"#attributes":{"SystemTime":"2023-01-01T00:00:00Z"}},
            "Channel":"Security","Computer":"dc1"},
            "EventData":{"Data":[{"#attributes":{"Name":"NewProcessName"},"#text":"C:\\w\\cmd.exe"},
                                 {"#attributes":{"Name":"ParentProcessName"},"#text":"C:\\w\\explorer.exe"}]}}}"##,
        )
        .unwrap();
        let e = map_event(&doc, None).unwrap();
        assert_eq!(e.logsource.category.as_deref(), Some("process_creation"));
        assert_eq!(e.fields.get_str("Image"), Some("C:\\w\\cmd.exe"));
        assert_eq!(e.fields.get_str("NewProcessName"), Some("C:\\w\\cmd.exe"));
        assert_eq!(e.fields.get_str("ParentImage"), Some("C:\\w\\explorer.exe"));
    }

    #[test]
    fn missing_system_is_an_error_not_a_panic() {
        let doc: Json = serde_json::from_str(r#"{"Event":{"EventData":{}}}"#).unwrap();
        assert!(map_event(&doc, None).is_err());
        assert!(map_event(&Json::Null, None).is_err());
    }
}
