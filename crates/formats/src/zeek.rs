//! Zeek logs: TSV with `#separator`/`#fields`/`#types` headers (rotated,
//! concatenated and gzipped logs too) and JSON.
//!
//! Fields keep Zeek's own names (`id.orig_h`, `query`, `server_name`) as
//! Sigma's `product: zeek` rules expect; the log path (`conn`, `dns`,
//! `http`, `ssl`, ...) becomes the Sigma service. The endpoint is the
//! originating address, `id.orig_h`, which the store maps to a host name
//! where it knows one.

use std::borrow::Cow;
use std::sync::LazyLock;

use turncoat_core::{Event, FieldName, Fields, Logsource, Text, Time, Value};

use crate::flatten::flatten_object;
use crate::input::{Input, Line};
use crate::jsonl::{for_each_record, trim_ascii};
use crate::names::NameTable;
use crate::{Location, ReadIssue, ReadOptions, Record, RecordError, Sink};

/// Reads a Zeek log, TSV or JSON by content.
pub fn read(
    input: &mut Input,
    options: &ReadOptions,
    sink: &mut dyn Sink,
) -> Result<(), ReadIssue> {
    let stem_path = path_from_stem(input.stem());
    let head = input.peek()?;
    let head = trim_ascii(&head[..head.len().min(4096)]);
    if head.starts_with(b"{") || head.starts_with(b"[") {
        read_json(input, options, &stem_path, sink)
    } else {
        read_tsv(input, options, &stem_path, sink)
    }
}

/// Zeek log paths whose names may carry a suffix in file names
/// (`conn_top.log`, `dns_json.log`).
const KNOWN_PATHS: [&str; 12] = [
    "conn", "dns", "http", "ssl", "x509", "files", "dhcp", "weird", "notice", "smtp", "ssh", "ftp",
];

/// The log path a file name implies: `open_conn.log` → `conn`,
/// `conn_top.log` → `conn`, `known_hosts.log` → `known_hosts`.
fn path_from_stem(stem: &str) -> Option<String> {
    let s = stem.strip_prefix("open_").unwrap_or(stem);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let prefix = s.split('_').next().unwrap_or(s);
    Some(
        if KNOWN_PATHS.contains(&prefix) {
            prefix
        } else {
            s
        }
        .to_owned(),
    )
}

/// Zeek's own field names of the logs it writes most, and the log paths
/// beyond [`KNOWN_PATHS`]: handed out, with those, as `&'static str`, so
/// that a record does not allocate its names and the archive finds each
/// name's code by its address. The archive's own name table lists many of
/// them too, on purpose: its ids are stored, so it is append-only, while
/// this list may change freely.
#[rustfmt::skip]
const ZEEK_NAMES: &[&str] = &[
    // conn
    "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service",
    "duration", "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp",
    "missed_bytes", "history", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes",
    "tunnel_parents", "orig_l2_addr", "resp_l2_addr", "community_id",
    // dns
    "trans_id", "rtt", "query", "qclass", "qclass_name", "qtype", "qtype_name", "rcode",
    "rcode_name", "AA", "TC", "RD", "RA", "Z", "answers", "TTLs", "rejected",
    // http
    "trans_depth", "method", "host", "uri", "referrer", "version", "user_agent", "origin",
    "request_body_len", "response_body_len", "status_code", "status_msg", "info_code",
    "info_msg", "tags", "username", "password", "proxied", "orig_fuids", "orig_filenames",
    "orig_mime_types", "resp_fuids", "resp_filenames", "resp_mime_types",
    // ssl and x509
    "cipher", "curve", "server_name", "resumed", "last_alert", "next_protocol", "established",
    "ssl_history", "cert_chain_fps", "client_cert_chain_fps", "cert_chain_fuids",
    "client_cert_chain_fuids", "subject", "issuer", "client_subject", "client_issuer",
    "sni_matches_cert", "validation_status", "ja3", "ja3s", "fingerprint",
    // dhcp
    "uids", "client_addr", "server_addr", "mac", "host_name", "client_fqdn", "domain",
    "requested_addr", "assigned_addr", "lease_time", "client_message", "server_message",
    "msg_types",
    // files, notice, weird
    "fuid", "tx_hosts", "rx_hosts", "conn_uids", "source", "depth", "analyzers", "mime_type",
    "filename", "is_orig", "seen_bytes", "total_bytes", "missing_bytes", "overflow_bytes",
    "timedout", "md5", "sha1", "sha256", "note", "msg", "sub", "src", "dst", "p", "n",
    "actions", "suppress_for", "name", "addl", "notice", "peer",
    // paths
    "_path", "_write_ts", "known_hosts", "known_services", "software",
];

static ZEEK_TABLE: LazyLock<NameTable> =
    LazyLock::new(|| NameTable::new(ZEEK_NAMES.iter().chain(&KNOWN_PATHS).map(|&n| (n, n))));

/// A name Zeek writes, as itself when it is in [`ZEEK_NAMES`] or
/// [`KNOWN_PATHS`].
fn zeek_name(name: &str) -> Option<&'static str> {
    ZEEK_TABLE.get(name)
}

/// `name`, borrowed from the fixed names where it is one, else copied.
fn intern(name: &str) -> Cow<'static, str> {
    zeek_name(name).map_or_else(|| Cow::Owned(name.to_owned()), Cow::Borrowed)
}

/// The log path implied by the fields present, when the file says nothing.
fn path_from_fields(fields: &Fields) -> &'static str {
    let has = |k: &str| fields.get(k).is_some();
    if has("conn_state") || has("orig_bytes") {
        "conn"
    } else if has("query") && (has("qtype") || has("rcode") || has("answers")) {
        "dns"
    } else if has("method") || has("uri") {
        "http"
    } else if has("server_name") || has("cipher") {
        "ssl"
    } else {
        "unknown"
    }
}

fn finish(
    mut fields: Fields,
    path: &str,
    time: Time,
    options: &ReadOptions,
) -> Result<Event, RecordError> {
    let host = fields
        .get_str("id.orig_h")
        .or_else(|| fields.get_str("assigned_addr"))
        .or_else(|| fields.get_str("client_addr"))
        .or_else(|| fields.get_str("host_ip"))
        .map(str::to_owned)
        .or_else(|| options.host.clone())
        .unwrap_or_else(|| "zeek-sensor".to_owned());
    fields.set("_path", path);
    let logsource = Logsource {
        product: Some(Cow::Borrowed("zeek")),
        category: None,
        service: Some(intern(path)),
    };
    Ok(Event {
        time,
        host,
        logsource,
        fields,
    })
}

fn read_json(
    input: &mut Input,
    options: &ReadOptions,
    stem_path: &Option<String>,
    sink: &mut dyn Sink,
) -> Result<(), ReadIssue> {
    let name = input.name().to_owned();
    let mut flat = Vec::with_capacity(32);
    for_each_record(input, &options.limits, sink, |bytes, location, sink| {
        let result = (|| {
            if !bytes.starts_with(b"{") {
                return Err(RecordError::from("not a JSON object"));
            }
            flatten_object(bytes, zeek_name, &mut flat)?;
            let mut fields: Fields = flat.drain(..).collect();
            let time = match fields.remove("ts") {
                Some(Value::Float(x)) => Time::from_epoch_secs_f64(x),
                Some(Value::Int(i)) => Some(Time::from_epoch_secs(i)),
                Some(Value::Str(s)) => Time::parse(&s).ok(),
                _ => None,
            }
            .ok_or("no readable \"ts\"")?;
            fields.set("ts", Value::Float(time.as_secs_f64()));
            let path = match fields.remove("_path") {
                Some(Value::Str(p)) => p,
                _ => Text::from(
                    stem_path
                        .as_deref()
                        .unwrap_or_else(|| path_from_fields(&fields)),
                ),
            };
            finish(fields, &path, time, options)
        })();
        match result {
            Ok(event) => sink.record(Record::Event(event), location),
            Err(e) => sink.skipped(ReadIssue::new(&name, location, e)),
        }
    })
}

/// The header state of a TSV log; a new header block may start anywhere
/// (concatenated rotations).
struct TsvHeader {
    separator: u8,
    set_separator: String,
    empty: String,
    unset: String,
    path: Option<String>,
    /// `#open`: the time of records without a `ts` (`loaded_scripts`).
    opened: Option<Time>,
    fields: Vec<FieldName>,
    types: Vec<String>,
}

/// Zeek's type names; a header field of any other type is suspect.
fn known_type(ty: &str) -> bool {
    let base = ty.split('[').next().unwrap_or(ty);
    matches!(
        base,
        "bool"
            | "count"
            | "int"
            | "double"
            | "time"
            | "interval"
            | "string"
            | "pattern"
            | "port"
            | "addr"
            | "subnet"
            | "enum"
            | "set"
            | "vector"
            | "table"
            | "record"
            | "func"
            | "file"
            | "opaque"
    )
}

impl Default for TsvHeader {
    fn default() -> TsvHeader {
        TsvHeader {
            separator: b'\t',
            set_separator: ",".into(),
            empty: "(empty)".into(),
            unset: "-".into(),
            path: None,
            opened: None,
            fields: Vec::new(),
            types: Vec::new(),
        }
    }
}

/// Undoes Zeek's `\xHH` escapes in header values.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("\\x") {
        out.push_str(&rest[..i]);
        let hex = rest
            .get(i + 2..i + 4)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b as char);
                rest = &rest[i + 4..];
            }
            None => {
                out.push_str("\\x");
                rest = &rest[i + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn read_tsv(
    input: &mut Input,
    options: &ReadOptions,
    stem_path: &Option<String>,
    sink: &mut dyn Sink,
) -> Result<(), ReadIssue> {
    let mut header = TsvHeader::default();
    let mut buf = Vec::new();
    let max = options.limits.max_record_bytes;
    loop {
        let line = match input.next_line(&mut buf, max) {
            Ok(Line::Eof) => return Ok(()),
            Ok(Line::Idle) => {
                sink.idle();
                continue;
            }
            Ok(Line::TooLong(n)) => {
                sink.skipped(input.issue(
                    Location::Line(input.line()),
                    format!("line of {n} bytes is over the {max} byte limit"),
                ));
                continue;
            }
            Ok(Line::Text) => String::from_utf8_lossy(&buf),
            Err(e) => {
                return Err(input.issue(
                    Location::Line(input.line() + 1),
                    format!("read failed: {e}"),
                ));
            }
        };
        let location = Location::Line(input.line());
        if line.is_empty() {
            continue;
        }
        if let Some(directive) = line.strip_prefix('#') {
            // Zeek writes the directives after `#separator` with that
            // separator too.
            let sep = header.separator as char;
            let (key, value) = directive
                .split_once([' ', '\t', sep])
                .unwrap_or((directive, ""));
            match key {
                "separator" => {
                    let sep = unescape(value.trim());
                    header.separator = sep.bytes().next().unwrap_or(b'\t');
                }
                "set_separator" => header.set_separator = value.to_owned(),
                "empty_field" => header.empty = value.to_owned(),
                "unset_field" => header.unset = value.to_owned(),
                "path" => header.path = Some(value.to_owned()),
                "open" => header.opened = open_time(value.trim()),
                "fields" => {
                    header.fields = split_fields(value, header.separator)
                        .into_iter()
                        .map(intern)
                        .collect()
                }
                "types" => {
                    header.types = split_fields(value, header.separator)
                        .into_iter()
                        .map(str::to_owned)
                        .collect()
                }
                _ => {}
            }
            continue;
        }
        if header.fields.is_empty() && !default_header(&mut header, stem_path.as_deref(), &line) {
            sink.skipped(input.issue(location, "data line before any #fields header"));
            continue;
        }
        match tsv_record(&line, &header, stem_path, options) {
            Ok(event) => sink.record(Record::Event(event), location),
            Err(e) => sink.skipped(input.issue(location, e)),
        }
    }
}

fn tsv_record(
    line: &str,
    header: &TsvHeader,
    stem_path: &Option<String>,
    options: &ReadOptions,
) -> Result<Event, RecordError> {
    let values = split_fields(line, header.separator);
    // A header may declare a field of no Zeek type that the data lines do
    // not carry (a broken script): such lines are read without it.
    let columns: Vec<usize> = if values.len() == header.fields.len() {
        (0..values.len()).collect()
    } else {
        let typed: Vec<usize> = (0..header.fields.len())
            .filter(|i| header.types.get(*i).is_none_or(|t| known_type(t)))
            .collect();
        if typed.len() != values.len() {
            return Err(RecordError::from(format!(
                "{} values for {} fields (truncated or corrupt line)",
                values.len(),
                header.fields.len()
            )));
        }
        typed
    };
    let mut fields = Fields::with_capacity(values.len());
    let mut time = None;
    for (raw, i) in values.into_iter().zip(columns) {
        let name = &header.fields[i];
        if raw == header.unset {
            continue;
        }
        let ty = header.types.get(i).map(String::as_str).unwrap_or("string");
        let value = tsv_value(raw, ty, header)
            .ok_or_else(|| format!("field {name}: {raw:?} is not a valid {ty}"))?;
        if name == "ts"
            && let Value::Float(x) = value
        {
            time = Time::from_epoch_secs_f64(x);
        }
        fields.push(name.clone(), value);
    }
    let time = time
        .or(header.opened)
        .ok_or("no readable ts and no #open time")?;
    let path = match header.path.as_deref().or(stem_path.as_deref()) {
        Some(p) => p,
        None => path_from_fields(&fields),
    };
    finish(fields, path, time, options)
}

/// A TSV line's values. Zeek's separator is an ASCII byte (a tab unless
/// the header says otherwise), found byte by byte: `str::split` with a
/// `char` spent more than the rest of the line's parsing.
fn split_fields(line: &str, separator: u8) -> Vec<&str> {
    if !separator.is_ascii() {
        return line.split(separator as char).collect();
    }
    let mut values = Vec::with_capacity(32);
    let mut start = 0;
    for (i, &b) in line.as_bytes().iter().enumerate() {
        if b == separator {
            // An ASCII byte is a character boundary on both sides.
            values.push(&line[start..i]);
            start = i + 1;
        }
    }
    values.push(&line[start..]);
    values
}

/// Zeek's default `conn.log` columns, for a log whose header was cut off.
const CONN_FIELDS: [(&str, &str); 21] = [
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("proto", "enum"),
    ("service", "string"),
    ("duration", "interval"),
    ("orig_bytes", "count"),
    ("resp_bytes", "count"),
    ("conn_state", "string"),
    ("local_orig", "bool"),
    ("local_resp", "bool"),
    ("missed_bytes", "count"),
    ("history", "string"),
    ("orig_pkts", "count"),
    ("orig_ip_bytes", "count"),
    ("resp_pkts", "count"),
    ("resp_ip_bytes", "count"),
    ("tunnel_parents", "set[string]"),
];

/// A headerless `conn` log (the file name says so) whose lines have exactly
/// Zeek's default columns is read with them.
fn default_header(header: &mut TsvHeader, stem_path: Option<&str>, line: &str) -> bool {
    if stem_path != Some("conn") || line.split('\t').count() != CONN_FIELDS.len() {
        return false;
    }
    header.fields = CONN_FIELDS.iter().map(|(f, _)| intern(f)).collect();
    header.types = CONN_FIELDS.iter().map(|(_, t)| (*t).to_owned()).collect();
    header.path = Some("conn".into());
    true
}

/// `#open 2023-01-05-18-51-06` → that instant (UTC).
fn open_time(s: &str) -> Option<Time> {
    let (date, clock) = (s.get(..10)?, s.get(11..)?);
    Time::parse(&format!("{date} {}", clock.replace('-', ":"))).ok()
}

fn tsv_value(raw: &str, ty: &str, header: &TsvHeader) -> Option<Value> {
    if let Some(inner) = ty
        .strip_prefix("set[")
        .or_else(|| ty.strip_prefix("vector["))
    {
        let inner = inner.trim_end_matches(']');
        if raw == header.empty {
            return Some(Value::List(Vec::new()));
        }
        return raw
            .split(header.set_separator.as_str())
            .map(|item| tsv_value(item, inner, header))
            .collect::<Option<Vec<_>>>()
            .map(Value::List);
    }
    if raw == header.empty {
        return Some(Value::Str(Text::default()));
    }
    Some(match ty {
        "count" | "int" | "port" => raw.parse::<i64>().map(Value::Int).ok()?,
        "double" | "interval" | "time" => {
            Value::Float(raw.parse::<f64>().ok().filter(|x| x.is_finite())?)
        }
        "bool" => match raw {
            "T" => Value::Bool(true),
            "F" => Value::Bool(false),
            _ => return None,
        },
        _ => Value::Str(raw.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Collect;

    const CONN: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n\
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tlocal_orig\ttunnel_parents\n\
#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tbool\tset[string]\n\
1672843056.913119\tCX1\t10.0.0.5\t55548\t203.0.113.9\t443\ttcp\tssl\t0.08\t1030\tT\t(empty)\n\
1672843078.129079\tCX2\t10.0.0.5\t41268\t203.0.113.9\t443\ttcp\t-\t-\t-\tF\ta,b\n\
1672843078.1\tCX3\t10.0.0.5\n";

    #[test]
    fn tsv_types_and_truncated_lines() {
        let mut input = Input::from_bytes("conn.log", CONN.as_bytes().to_vec());
        let mut sink = Collect::default();
        read(&mut input, &ReadOptions::default(), &mut sink).unwrap();
        assert_eq!(sink.records.len(), 2);
        assert_eq!(sink.skipped.len(), 1);
        assert_eq!(sink.skipped[0].location, Location::Line(10));
        assert_eq!(
            open_time("2023-01-05-18-51-06"),
            Time::parse("2023-01-05T18:51:06Z").ok()
        );
        let e = sink.events().next().unwrap();
        assert_eq!(e.host, "10.0.0.5");
        assert_eq!(e.logsource.service.as_deref(), Some("conn"));
        assert_eq!(e.logsource.product.as_deref(), Some("zeek"));
        assert_eq!(e.fields.get("id.resp_p"), Some(&Value::Int(443)));
        assert_eq!(e.fields.get("local_orig"), Some(&Value::Bool(true)));
        assert_eq!(e.fields.get("tunnel_parents"), Some(&Value::List(vec![])));
        let second = sink.events().nth(1).unwrap();
        assert_eq!(
            second.fields.get("service"),
            None,
            "unset fields are absent"
        );
        assert_eq!(
            second.fields.get("tunnel_parents"),
            Some(&Value::List(vec!["a".into(), "b".into()]))
        );
    }

    #[test]
    fn known_names_and_paths_are_borrowed_and_others_owned() {
        let text = "#separator \\x09\n#path\tconn\n#fields\tts\tid.orig_h\tmy_field\n#types\ttime\taddr\tstring\n1.5\t10.0.0.1\tx\n";
        let json =
            "{\"ts\":1.5,\"id.orig_h\":\"10.0.0.1\",\"_path\":\"beacons\",\"my_field\":\"x\"}\n";
        for (name, text) in [("conn.log", text), ("b.log", json)] {
            let mut input = Input::from_bytes(name, text.as_bytes().to_vec());
            let mut sink = Collect::default();
            read(&mut input, &ReadOptions::default(), &mut sink).unwrap();
            let e = sink.events().next().expect("one record");
            let names: Vec<_> = e.fields.iter().map(|(n, _)| n).collect();
            assert!(
                names.contains(&"id.orig_h") && names.contains(&"my_field"),
                "{names:?}"
            );
            for (n, _) in e.fields.entries() {
                let known = ZEEK_NAMES.contains(&n.as_ref());
                assert_eq!(matches!(n, Cow::Borrowed(_)), known, "{name}: {n}");
            }
            let service = e.logsource.service.as_ref().unwrap();
            assert_eq!(
                matches!(service, Cow::Borrowed(_)),
                name == "conn.log",
                "{service}"
            );
        }
    }

    #[test]
    fn values_split_on_the_header_separator() {
        assert_eq!(split_fields("a\tb\t\tc", b'\t'), ["a", "b", "", "c"]);
        assert_eq!(split_fields("\t", b'\t'), ["", ""]);
        assert_eq!(split_fields("é|ü|", b'|'), ["é", "ü", ""]);
        let text = "#separator |\n#fields|ts|id.orig_h|query\n#types|time|addr|string\n1.5|10.0.0.1|x.example\n";
        let mut input = Input::from_bytes("dns.log", text.as_bytes().to_vec());
        let mut sink = Collect::default();
        read(&mut input, &ReadOptions::default(), &mut sink).unwrap();
        let e = sink.events().next().expect("one record");
        assert_eq!(e.fields.get_str("query"), Some("x.example"));
    }

    #[test]
    fn json_logs_take_path_from_field_or_file_name() {
        let text = "{\"ts\":1517422326.5,\"uid\":\"C1\",\"id.orig_h\":\"10.55.100.100\",\"id.resp_h\":\"1.2.3.4\",\"query\":\"x.example\",\"qtype\":1}\n\
{\"ts\":\"2018-01-31T18:12:06.5Z\",\"uid\":\"C2\",\"id.orig_h\":\"10.55.100.100\",\"_path\":\"dns\",\"query\":\"y.example\"}\n";
        let mut input = Input::from_bytes("open_dns.log", text.as_bytes().to_vec());
        let mut sink = Collect::default();
        read(&mut input, &ReadOptions::default(), &mut sink).unwrap();
        assert_eq!(sink.records.len(), 2, "{:?}", sink.skipped);
        for e in sink.events() {
            assert_eq!(e.logsource.service.as_deref(), Some("dns"));
        }
        assert_eq!(
            sink.events().next().unwrap().time,
            Time::parse("2018-01-31T18:12:06.5Z").unwrap()
        );
    }

    #[test]
    fn fields_of_no_zeek_type_may_be_missing_from_lines() {
        let text = "#separator \\x09\n#fields\tts\tbogus\tid.orig_h\n#types\ttime\tint64\taddr\n1.5\t10.0.0.1\n2.5\t7\t10.0.0.2\n";
        let mut input = Input::from_bytes("http.log", text.as_bytes().to_vec());
        let mut sink = Collect::default();
        read(&mut input, &ReadOptions::default(), &mut sink).unwrap();
        let hosts: Vec<_> = sink.events().map(|e| e.host.as_str()).collect();
        assert_eq!(hosts, vec!["10.0.0.1", "10.0.0.2"], "{:?}", sink.skipped);
    }

    #[test]
    fn headerless_conn_logs_use_the_default_columns() {
        let line = "1517336042.09\tC1\t10.55.182.100\t14291\t10.233.233.5\t80\ttcp\t-\t3.0\t0\t0\tS0\tT\tT\t0\tS\t2\t104\t0\t0\t(empty)\n";
        let mut input = Input::from_bytes("conn_top.log", line.as_bytes().to_vec());
        let mut sink = Collect::default();
        read(&mut input, &ReadOptions::default(), &mut sink).unwrap();
        assert_eq!(
            sink.events().next().map(|e| e.host.as_str()),
            Some("10.55.182.100"),
            "{:?}",
            sink.skipped
        );
    }

    #[test]
    fn headerless_data_is_reported() {
        let mut input = Input::from_bytes("x.log", b"1.0\tC1\n".to_vec());
        let mut sink = Collect::default();
        read_tsv(&mut input, &ReadOptions::default(), &None, &mut sink).unwrap();
        assert_eq!(sink.skipped.len(), 1);
    }
}
