//! Elastic Common Schema NDJSON, as Elastic Agent, Winlogbeat and Filebeat
//! write it, mapped onto Sigma taxonomy names.
//!
//! Winlogbeat's `winlog.event_data.*` already carries Sysmon's own names
//! and is kept as is; Elastic Agent's ECS fields (`process.executable`,
//! `dns.question.name`, ...) are renamed to the Sigma fields Sysmon would
//! have written. Fields with no Sigma counterpart keep their ECS name.

use std::sync::OnceLock;

use turncoat_core::{Event, FieldName, Fields, Logsource, Platform, Time, Value};

use crate::flatten::flatten_object;
use crate::input::Input;
use crate::jsonl::for_each_record;
use crate::logsource::{self, SYSMON_PROVIDER};
use crate::names::NameTable;
use crate::{ReadIssue, ReadOptions, Record, RecordError, Sink};

/// Reads ECS NDJSON.
pub fn read(
    input: &mut Input,
    options: &ReadOptions,
    sink: &mut dyn Sink,
) -> Result<(), ReadIssue> {
    let name = input.name().to_owned();
    let mut flat = Vec::with_capacity(64);
    for_each_record(
        input,
        &options.limits,
        sink,
        |bytes, location, sink| match parse_event(bytes, options.host.as_deref(), &mut flat) {
            Ok(event) => sink.record(Record::Event(event), location),
            Err(e) => sink.skipped(ReadIssue::new(&name, location, e)),
        },
    )
}

/// Parses one ECS document. `flat` is scratch space reused across calls.
pub fn parse_event(
    bytes: &[u8],
    default_host: Option<&str>,
    flat: &mut Vec<(FieldName, Value)>,
) -> Result<Event, RecordError> {
    if !bytes.starts_with(b"{") {
        return Err(RecordError::from("not a JSON object"));
    }
    flatten_object(bytes, field_name, flat)?;
    map_event(flat, default_host)
}

/// Hash fields gathered for Sysmon's `Hashes` string, by ECS parent: each
/// as its label and its position in the event's fields.
#[derive(Default)]
struct Hashes {
    process: HashList,
    dll: HashList,
    file: HashList,
}

/// Up to four hashes in arrival order, one per kind (MD5, SHA-1, SHA-256,
/// IMPHASH); a fifth, which only a repeated name can make, is kept as a
/// field but not joined.
#[derive(Default)]
struct HashList {
    items: [(&'static str, usize); 4],
    len: usize,
}

impl HashList {
    fn push(&mut self, label: &'static str, field: usize) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = (label, field);
            self.len += 1;
        }
    }

    fn as_slice(&self) -> &[(&'static str, usize)] {
        &self.items[..self.len]
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The `event.category` and `event.type` values Sigma's category is told
/// by, as bits: read without keeping the strings.
#[derive(Clone, Copy, Default)]
struct Kinds(u16);

impl Kinds {
    const PROCESS: u16 = 1 << 0;
    const LIBRARY: u16 = 1 << 1;
    const DRIVER: u16 = 1 << 2;
    const WEB: u16 = 1 << 3;
    const NETWORK: u16 = 1 << 4;
    const FILE: u16 = 1 << 5;
    const REGISTRY: u16 = 1 << 6;
    const START: u16 = 1 << 7;
    const END: u16 = 1 << 8;
    const DELETION: u16 = 1 << 9;
    const CHANGE: u16 = 1 << 10;

    fn add_category(&mut self, value: &str) {
        self.0 |= match value {
            "process" => Kinds::PROCESS,
            "library" => Kinds::LIBRARY,
            "driver" => Kinds::DRIVER,
            "web" => Kinds::WEB,
            "network" => Kinds::NETWORK,
            "file" => Kinds::FILE,
            "registry" => Kinds::REGISTRY,
            _ => 0,
        };
    }

    fn add_type(&mut self, value: &str) {
        self.0 |= match value {
            "start" => Kinds::START,
            "end" => Kinds::END,
            "deletion" => Kinds::DELETION,
            "change" => Kinds::CHANGE,
            _ => 0,
        };
    }

    fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
}

/// Fields whose presence decides the category, noted while mapping so
/// that nothing searches the fields afterwards.
#[derive(Default)]
struct Present {
    user: bool,
    hashes: bool,
    event_id: bool,
    image_loaded: bool,
    query_name: bool,
    uri: bool,
}

fn map_event(
    flat: &mut Vec<(FieldName, Value)>,
    default_host: Option<&str>,
) -> Result<Event, RecordError> {
    let mut time = None;
    let mut host_name = None;
    let mut host_fallback = None;
    let mut os = None;
    let mut kinds = Kinds::default();
    let mut provider = None;
    let mut channel = None;
    let mut event_id = None;
    let mut user_name = None;
    let mut user_domain = None;
    let mut hashes = Hashes::default();
    let mut present = Present::default();
    let mut fields = Fields::with_capacity(flat.len() + 2);

    for (key, value) in flat.drain(..) {
        // Special cases first: fields that decide the event's identity.
        match key.as_ref() {
            "@timestamp" => {
                time = value.as_str().map(Time::parse).transpose()?;
                continue;
            }
            "host.name" => host_name = value.as_str().map(str::to_owned),
            "host.hostname" | "agent.hostname" | "winlog.computer_name"
                if host_fallback.is_none() =>
            {
                host_fallback = value.as_str().map(str::to_owned);
            }
            "host.os.family" | "host.os.type" | "host.os.platform" if os.is_none() => {
                os = value.as_str().and_then(Platform::from_os_name);
            }
            "event.category" => value.strings().for_each(|v| kinds.add_category(v)),
            "event.type" => value.strings().for_each(|v| kinds.add_type(v)),
            "event.provider" | "winlog.provider_name"
                if (provider.is_none() || key == "winlog.provider_name") =>
            {
                provider = value.as_str().map(str::to_owned);
            }
            "winlog.channel" => channel = value.as_str().map(str::to_owned),
            "user.name" => user_name = value.as_str().map(str::to_owned),
            "user.domain" => user_domain = value.as_str().map(str::to_owned),
            "winlog.event_id" | "event.code" => {
                let id = match &value {
                    Value::Int(i) => Some(*i),
                    Value::Str(s) => s.parse().ok(),
                    _ => None,
                };
                if key == "winlog.event_id" || event_id.is_none() {
                    event_id = id;
                }
            }
            _ => {}
        }
        let name: FieldName = match key.strip_prefix("winlog.event_data.") {
            Some(rest) => rest.to_owned().into(),
            None => {
                if value.as_str().is_some() {
                    gather_hash(&key, fields.len(), &mut hashes);
                }
                key
            }
        };
        match name.as_ref() {
            "User" => present.user = true,
            "Hashes" => present.hashes = true,
            "EventID" => present.event_id = true,
            "ImageLoaded" => present.image_loaded = true,
            "QueryName" => present.query_name = true,
            "c-uri" => present.uri = true,
            _ => {}
        }
        fields.push(name, value);
    }

    if let Some(name) = user_name
        && !present.user
    {
        let user = match user_domain {
            Some(d) => format!("{d}\\{name}"),
            None => name,
        };
        fields.push("User", user);
    }
    let category = ecs_category(kinds, &present);
    let is_library = category == Some("image_load");
    let hash_source = if is_library && !hashes.dll.is_empty() {
        &hashes.dll
    } else if category == Some("file_event") && !hashes.file.is_empty() {
        &hashes.file
    } else if !hashes.process.is_empty() {
        &hashes.process
    } else if !hashes.dll.is_empty() {
        &hashes.dll
    } else {
        &hashes.file
    };
    if !present.hashes
        && let Some(joined) = join_hashes(hash_source.as_slice(), &fields)
    {
        fields.push("Hashes", joined);
    }

    let mut logsource = match (&provider, &channel, event_id) {
        (Some(p), _, Some(id)) if p == SYSMON_PROVIDER => {
            logsource::windows(Some(p), channel.as_deref(), Some(id))
        }
        (_, Some(c), id) => logsource::windows(provider.as_deref(), Some(c), id),
        _ => Logsource::fixed(os.map(Platform::as_str), category, None),
    };
    logsource::refine(&mut logsource, &fields);
    if let Some(id) = event_id
        && !present.event_id
    {
        fields.push("EventID", id);
    }
    let host = host_name
        .or(host_fallback)
        .or_else(|| default_host.map(str::to_owned))
        .ok_or("no host.name: the event names no endpoint")?;
    let time = time.ok_or("no @timestamp")?;
    Ok(Event {
        time,
        host,
        logsource,
        fields,
    })
}

/// Sysmon's `Hashes` text (`SHA256=…,MD5=…`, values in upper case) of the
/// text fields at these positions; `None` for none.
fn join_hashes(list: &[(&'static str, usize)], fields: &Fields) -> Option<String> {
    let mut joined = String::new();
    for &(label, i) in list {
        if let Some(v) = fields.value_at(i).and_then(Value::as_str) {
            if !joined.is_empty() {
                joined.push(',');
            }
            joined.push_str(label);
            joined.push('=');
            let start = joined.len();
            joined.push_str(v);
            joined[start..].make_ascii_uppercase();
        }
    }
    (!joined.is_empty()).then_some(joined)
}

/// Notes `process.hash.*`, `dll.hash.*` and `file.hash.*` text, about to
/// be pushed at position `field`, for the `Hashes` field; the ECS fields
/// themselves are kept as they are. Every field passes here, so the name
/// is matched whole, without splitting it.
fn gather_hash(key: &str, field: usize, hashes: &mut Hashes) {
    let (list, label) = match key {
        "process.hash.md5" => (&mut hashes.process, "MD5"),
        "process.hash.sha1" => (&mut hashes.process, "SHA1"),
        "process.hash.sha256" => (&mut hashes.process, "SHA256"),
        "process.hash.imphash" => (&mut hashes.process, "IMPHASH"),
        "dll.hash.md5" => (&mut hashes.dll, "MD5"),
        "dll.hash.sha1" => (&mut hashes.dll, "SHA1"),
        "dll.hash.sha256" => (&mut hashes.dll, "SHA256"),
        "dll.hash.imphash" => (&mut hashes.dll, "IMPHASH"),
        "file.hash.md5" => (&mut hashes.file, "MD5"),
        "file.hash.sha1" => (&mut hashes.file, "SHA1"),
        "file.hash.sha256" => (&mut hashes.file, "SHA256"),
        "file.hash.imphash" => (&mut hashes.file, "IMPHASH"),
        _ => return,
    };
    list.push(label, field);
}

/// The ECS fields this reader knows: each with Sigma's name where Sysmon
/// has one. Known names are not allocated per event (see `flatten`).
const ECS_FIELDS: &[(&str, Option<&str>)] = &[
    ("process.executable", Some("Image")),
    ("process.command_line", Some("CommandLine")),
    ("process.pid", Some("ProcessId")),
    ("process.entity_id", Some("ProcessGuid")),
    ("process.working_directory", Some("CurrentDirectory")),
    ("process.parent.executable", Some("ParentImage")),
    ("process.parent.command_line", Some("ParentCommandLine")),
    ("process.parent.pid", Some("ParentProcessId")),
    ("process.parent.entity_id", Some("ParentProcessGuid")),
    ("process.pe.original_file_name", Some("OriginalFileName")),
    ("process.pe.company", Some("Company")),
    ("process.pe.description", Some("Description")),
    ("process.pe.product", Some("Product")),
    ("process.pe.file_version", Some("FileVersion")),
    (
        "process.Ext.token.integrity_level_name",
        Some("IntegrityLevel"),
    ),
    ("dll.path", Some("ImageLoaded")),
    ("dll.pe.original_file_name", Some("OriginalFileName")),
    ("dll.code_signature.subject_name", Some("Signature")),
    ("dll.code_signature.status", Some("SignatureStatus")),
    ("dll.code_signature.signed", Some("Signed")),
    ("dns.question.name", Some("QueryName")),
    ("dns.answers.data", Some("QueryResults")),
    ("dns.response_code", Some("QueryStatus")),
    ("destination.ip", Some("DestinationIp")),
    ("destination.port", Some("DestinationPort")),
    ("destination.domain", Some("DestinationHostname")),
    ("source.ip", Some("SourceIp")),
    ("source.port", Some("SourcePort")),
    ("source.domain", Some("SourceHostname")),
    ("network.transport", Some("Protocol")),
    ("file.path", Some("TargetFilename")),
    ("registry.path", Some("TargetObject")),
    ("registry.data.strings", Some("Details")),
    ("url.full", Some("c-uri")),
    ("url.domain", Some("cs-host")),
    ("url.path", Some("c-uri-stem")),
    ("url.query", Some("c-uri-query")),
    ("url.extension", Some("c-uri-extension")),
    ("http.request.method", Some("cs-method")),
    ("http.request.referrer", Some("cs-referrer")),
    ("http.response.status_code", Some("sc-status")),
    ("user_agent.original", Some("c-useragent")),
    // Kept under their ECS names; most decide the event's identity.
    ("@timestamp", None),
    ("host.name", None),
    ("host.hostname", None),
    ("host.ip", None),
    ("host.os.family", None),
    ("host.os.type", None),
    ("host.os.platform", None),
    ("agent.type", None),
    ("agent.hostname", None),
    ("event.kind", None),
    ("event.category", None),
    ("event.type", None),
    ("event.code", None),
    ("event.action", None),
    ("event.provider", None),
    ("event.module", None),
    ("event.dataset", None),
    ("winlog.channel", None),
    ("winlog.event_id", None),
    ("winlog.provider_name", None),
    ("winlog.computer_name", None),
    ("user.name", None),
    ("user.domain", None),
    ("process.name", None),
    ("process.parent.name", None),
    ("process.hash.md5", None),
    ("process.hash.sha1", None),
    ("process.hash.sha256", None),
    ("dll.name", None),
    ("dll.hash.md5", None),
    ("dll.hash.sha1", None),
    ("dll.hash.sha256", None),
    ("file.name", None),
    ("file.hash.md5", None),
    ("file.hash.sha1", None),
    ("file.hash.sha256", None),
    ("dns.question.type", None),
    ("dns.answers.type", None),
    ("network.direction", None),
    ("network.protocol", None),
    ("source.bytes", None),
    ("destination.bytes", None),
];

/// The name a known ECS field is kept under: Sigma's where Sysmon has one,
/// else its own. Renaming here, while flattening, saves a second lookup per
/// field; the fields `map_event` decides on all keep their ECS names.
fn field_name(ecs: &str) -> Option<&'static str> {
    static TABLE: OnceLock<NameTable> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            NameTable::new(
                ECS_FIELDS
                    .iter()
                    .map(|&(ecs, sigma)| (ecs, sigma.unwrap_or(ecs))),
            )
        })
        .get(ecs)
}

/// Sigma's category for an ECS event.
/// Every category [`ecs_category`] gives.
pub(crate) const CATEGORIES: &[&str] = &[
    "process_creation",
    "process_termination",
    "image_load",
    "driver_load",
    "dns_query",
    "proxy",
    "network_connection",
    "file_delete",
    "file_change",
    "file_event",
    "registry_event",
];

fn ecs_category(kinds: Kinds, present: &Present) -> Option<&'static str> {
    let cat = |c| kinds.has(c);
    if cat(Kinds::PROCESS) && cat(Kinds::START) {
        Some("process_creation")
    } else if cat(Kinds::PROCESS) && cat(Kinds::END) {
        Some("process_termination")
    } else if cat(Kinds::LIBRARY) || present.image_loaded && cat(Kinds::PROCESS) {
        Some("image_load")
    } else if cat(Kinds::DRIVER) {
        Some("driver_load")
    } else if present.query_name {
        Some("dns_query")
    } else if present.uri || cat(Kinds::WEB) {
        Some("proxy")
    } else if cat(Kinds::NETWORK) {
        Some("network_connection")
    } else if cat(Kinds::FILE) && cat(Kinds::DELETION) {
        Some("file_delete")
    } else if cat(Kinds::FILE) && cat(Kinds::CHANGE) {
        Some("file_change")
    } else if cat(Kinds::FILE) {
        Some("file_event")
    } else if cat(Kinds::REGISTRY) {
        Some("registry_event")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Collect, Location};

    fn one(line: &str) -> Event {
        let mut flat = Vec::new();
        parse_event(line.as_bytes(), None, &mut flat).unwrap()
    }

    #[test]
    fn every_category_given_is_listed() {
        for bits in 0..(1u16 << 11) {
            for flags in 0..4u8 {
                let present = Present {
                    image_loaded: flags & 1 != 0,
                    query_name: flags & 2 != 0,
                    ..Present::default()
                };
                if let Some(c) = ecs_category(Kinds(bits), &present) {
                    assert!(CATEGORIES.contains(&c), "{c} is not in CATEGORIES");
                }
            }
        }
    }

    #[test]
    fn process_start_maps_to_sigma_names() {
        let e = one(
            r#"{"@timestamp":"2023-03-22T10:00:00.000Z","host":{"name":"WS-01","os":{"family":"windows"}},
            "event":{"category":["process"],"type":["start"],"code":"1"},
            "process":{"executable":"C:\\Program Files\\3CXDesktopApp\\3CXDesktopApp.exe","command_line":"3CXDesktopApp.exe --update","pid":42,
              "hash":{"sha256":"aa","md5":"bb","imphash":"cc"},
              "parent":{"executable":"C:\\Windows\\explorer.exe","hash":{"md5":"dd"}}},
            "user":{"name":"bob","domain":"CORP"}}"#,
        );
        assert_eq!(e.host, "WS-01");
        assert_eq!(e.logsource.product.as_deref(), Some("windows"));
        assert_eq!(e.logsource.category.as_deref(), Some("process_creation"));
        assert_eq!(
            e.fields.get_str("Image"),
            Some("C:\\Program Files\\3CXDesktopApp\\3CXDesktopApp.exe")
        );
        assert_eq!(
            e.fields.get_str("ParentImage"),
            Some("C:\\Windows\\explorer.exe")
        );
        assert_eq!(
            e.fields.get_str("CommandLine"),
            Some("3CXDesktopApp.exe --update")
        );
        assert_eq!(e.fields.get("ProcessId"), Some(&Value::Int(42)));
        assert_eq!(
            e.fields.get_str("Hashes"),
            Some("SHA256=AA,MD5=BB,IMPHASH=CC")
        );
        assert_eq!(e.fields.get_str("User"), Some("CORP\\bob"));
        assert_eq!(
            e.fields.get_str("process.executable"),
            None,
            "mapped fields are renamed, not copied"
        );
        assert_eq!(
            e.fields.get_str("process.hash.sha256"),
            Some("aa"),
            "unmapped fields keep their ECS name"
        );
    }

    #[test]
    fn dns_library_network_file_and_url() {
        let dns = one(
            r#"{"@timestamp":"2023-03-22T10:00:00Z","host":{"name":"h"},"event":{"category":"network"},
            "dns":{"question":{"name":"akamaicontainer.com"},"answers":[{"data":"1.2.3.4"}]}}"#,
        );
        assert_eq!(dns.logsource.category.as_deref(), Some("dns_query"));
        assert_eq!(dns.fields.get_str("QueryName"), Some("akamaicontainer.com"));
        assert_eq!(
            dns.fields.get("QueryResults"),
            Some(&Value::List(vec!["1.2.3.4".into()]))
        );

        let lib = one(
            r#"{"@timestamp":"2023-03-22T10:00:00Z","host":{"name":"h"},"event":{"category":["library"]},
            "process":{"executable":"C:\\a.exe","hash":{"sha256":"11"}},"dll":{"path":"C:\\ffmpeg.dll","hash":{"sha256":"22"}}}"#,
        );
        assert_eq!(lib.logsource.category.as_deref(), Some("image_load"));
        assert_eq!(lib.fields.get_str("ImageLoaded"), Some("C:\\ffmpeg.dll"));
        assert_eq!(
            lib.fields.get_str("Hashes"),
            Some("SHA256=22"),
            "image loads carry the module's hashes"
        );

        let net = one(
            r#"{"@timestamp":"2023-03-22T10:00:00Z","host":{"name":"h"},"event":{"category":["network"]},
            "destination":{"ip":"203.0.113.5","port":443,"domain":"x.example"}}"#,
        );
        assert_eq!(
            net.logsource.category.as_deref(),
            Some("network_connection")
        );
        assert_eq!(net.fields.get_str("DestinationIp"), Some("203.0.113.5"));
        assert_eq!(net.fields.get("DestinationPort"), Some(&Value::Int(443)));

        let file = one(
            r#"{"@timestamp":"2023-03-22T10:00:00Z","host":{"name":"h"},"event":{"category":["file"],"type":["creation"]},
            "file":{"path":"C:\\x.dll"}}"#,
        );
        assert_eq!(file.logsource.category.as_deref(), Some("file_event"));
        assert_eq!(file.fields.get_str("TargetFilename"), Some("C:\\x.dll"));

        let web = one(
            r#"{"@timestamp":"2023-03-22T10:00:00Z","host":{"name":"h"},"event":{"category":["network","web"]},
            "url":{"full":"https://raw.githubusercontent.com/IconStorages/images/main/icon1.ico","domain":"raw.githubusercontent.com"}}"#,
        );
        assert_eq!(web.logsource.category.as_deref(), Some("proxy"));
        assert_eq!(
            web.fields.get_str("cs-host"),
            Some("raw.githubusercontent.com")
        );
    }

    #[test]
    fn hashes_that_are_not_text_leave_the_choice_to_the_next_parent() {
        let e = one(
            r#"{"@timestamp":"2023-03-22T10:00:00Z","host":{"name":"h"},"event":{"category":["network"]},
            "process":{"hash":{"md5":123}},"dll":{"hash":{"sha256":"ab"}}}"#,
        );
        assert_eq!(e.fields.get_str("Hashes"), Some("SHA256=AB"));
        assert_eq!(e.fields.get("process.hash.md5"), Some(&Value::Int(123)));
    }

    #[test]
    fn categories_come_from_category_and_type_values_in_their_own_fields() {
        let category = |event: &str| {
            let e = one(&format!(
                r#"{{"@timestamp":"2023-03-22T10:00:00Z","host":{{"name":"h"}},"event":{event}}}"#
            ));
            e.logsource.category
        };
        assert_eq!(
            category(r#"{"category":["file"],"type":["deletion"]}"#).as_deref(),
            Some("file_delete")
        );
        assert_eq!(
            category(r#"{"category":"file","type":"change"}"#).as_deref(),
            Some("file_change")
        );
        assert_eq!(
            category(r#"{"category":["process"],"type":["end"]}"#).as_deref(),
            Some("process_termination")
        );
        assert_eq!(
            category(r#"{"category":["start"],"type":["process"]}"#),
            None,
            "a type value in the category field is not a type"
        );
        assert_eq!(
            category(r#"{"category":["registry"]}"#).as_deref(),
            Some("registry_event")
        );
    }

    #[test]
    fn winlogbeat_sysmon_keeps_event_data_names() {
        let e = one(
            r#"{"@timestamp":"2023-03-22T10:00:00Z","host":{"name":"h"},"event":{"code":"7","provider":"Microsoft-Windows-Sysmon"},
            "winlog":{"channel":"Microsoft-Windows-Sysmon/Operational","event_id":7,"provider_name":"Microsoft-Windows-Sysmon",
              "event_data":{"ImageLoaded":"C:\\x\\ffmpeg.dll","Hashes":"SHA256=AB"}}}"#,
        );
        assert_eq!(e.logsource.category.as_deref(), Some("image_load"));
        assert_eq!(e.logsource.service.as_deref(), Some("sysmon"));
        assert_eq!(e.fields.get_str("ImageLoaded"), Some("C:\\x\\ffmpeg.dll"));
        assert_eq!(e.fields.get("EventID"), Some(&Value::Int(7)));
    }

    #[test]
    fn bad_lines_are_reported_with_their_line() {
        let text = "{\"@timestamp\":\"2023-03-22T10:00:00Z\",\"host\":{\"name\":\"h\"},\"event\":{}}\n{oops\n{\"host\":{\"name\":\"h\"}}\n";
        let mut input = Input::from_bytes("ecs.ndjson", text.as_bytes().to_vec());
        let mut sink = Collect::default();
        read(&mut input, &ReadOptions::default(), &mut sink).unwrap();
        assert_eq!(sink.records.len(), 1);
        assert_eq!(sink.skipped.len(), 2);
        assert_eq!(sink.skipped[0].location, Location::Line(2));
        assert!(
            sink.skipped[1].message.contains("@timestamp"),
            "{}",
            sink.skipped[1]
        );
        assert_eq!(
            sink.skipped[1].to_string().split(':').next(),
            Some("ecs.ndjson")
        );
    }
}
