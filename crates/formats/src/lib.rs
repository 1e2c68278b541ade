//! Readers: bytes in, turncoat's vocabulary out.
//!
//! Telemetry readers ([`read_telemetry`]) turn ECS NDJSON, Windows event
//! JSON and `.evtx`, Zeek logs, osquery results and SBOMs into
//! [`Record`]s: [`Event`]s under Sigma taxonomy names and
//! [`InventoryRecord`]s. Intel readers ([`intel::read_intel`]) turn STIX,
//! MISP, CSV, OSV and advisory TOML into indicators and advisories.
//!
//! Every reader treats its input as hostile: records and documents have
//! size limits, a bad record is reported with its file and line (or record
//! number) and skipped, and nothing panics.

#![forbid(unsafe_code)]

pub mod ecs;
#[cfg(feature = "evtx")]
pub mod evtx;
mod flatten;
pub mod input;
pub mod intel;
mod jsonl;
pub mod logsource;
pub mod manifest;
mod names;
pub mod osquery;
pub mod sbom;
pub mod winevent;
pub mod zeek;

use std::fmt;
use std::str::FromStr;

use turncoat_core::{Event, InventoryRecord};

pub use input::{Input, Limits};

/// Why one telemetry record was skipped. A cause from a parser is kept;
/// a record that parsed but lacks what turncoat needs says what.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("invalid JSON: {0}")]
    Json(#[from] flatten::JsonError),
    #[error("invalid JSON: {0}")]
    SerdeJson(#[from] serde_json::Error),
    #[error("{0}")]
    Time(#[from] turncoat_core::time::TimeParseError),
    #[error("{0}")]
    Malformed(std::borrow::Cow<'static, str>),
}

impl From<&'static str> for RecordError {
    fn from(what: &'static str) -> RecordError {
        RecordError::Malformed(what.into())
    }
}

impl From<String> for RecordError {
    fn from(what: String) -> RecordError {
        RecordError::Malformed(what.into())
    }
}

/// One thing a telemetry reader produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    Event(Event),
    Inventory(InventoryRecord),
}

/// Where in its input a record or a problem sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Location {
    #[default]
    Unknown,
    /// 1-based line of a text input.
    Line(u64),
    /// 1-based record number of a binary input (an `.evtx` record id).
    Record(u64),
    /// Byte offset into the input.
    Offset(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Unknown => Ok(()),
            Location::Line(n) => write!(f, "line {n}"),
            Location::Record(n) => write!(f, "record {n}"),
            Location::Offset(n) => write!(f, "offset {n}"),
        }
    }
}

/// A record that was skipped, or an input that could not be read at all.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct ReadIssue {
    pub file: String,
    pub location: Location,
    pub message: String,
}

impl ReadIssue {
    pub fn new(file: &str, location: Location, message: impl fmt::Display) -> ReadIssue {
        ReadIssue {
            file: file.to_owned(),
            location,
            message: message.to_string(),
        }
    }
}

impl fmt::Display for ReadIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Location::Unknown => write!(f, "{}: {}", self.file, self.message),
            loc => write!(f, "{}: {}: {}", self.file, loc, self.message),
        }
    }
}

/// Where readers deliver what they read.
pub trait Sink {
    /// A record, with where it was found.
    fn record(&mut self, record: Record, location: Location);
    /// A record that was skipped, and why.
    fn skipped(&mut self, issue: ReadIssue);
    /// The input is a stream that has paused between records: a moment
    /// to commit what has come so far.
    fn idle(&mut self) {}
}

/// A sink that collects everything: for tests and small inputs.
#[derive(Debug, Default)]
pub struct Collect {
    pub records: Vec<(Record, Location)>,
    pub skipped: Vec<ReadIssue>,
}

impl Sink for Collect {
    fn record(&mut self, record: Record, location: Location) {
        self.records.push((record, location));
    }
    fn skipped(&mut self, issue: ReadIssue) {
        self.skipped.push(issue);
    }
}

impl Collect {
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.records.iter().filter_map(|(r, _)| match r {
            Record::Event(e) => Some(e),
            _ => None,
        })
    }
    pub fn inventory(&self) -> impl Iterator<Item = &InventoryRecord> {
        self.records.iter().filter_map(|(r, _)| match r {
            Record::Inventory(i) => Some(i),
            _ => None,
        })
    }
}

/// The telemetry formats turncoat reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Elastic Common Schema NDJSON (Elastic Agent, Winlogbeat, Filebeat).
    Ecs,
    /// Native Windows `.evtx` files.
    Evtx,
    /// Windows events as JSON in the evtx-dump shape.
    WineventJson,
    /// Zeek logs, TSV or JSON.
    Zeek,
    /// osquery result logs (differential, snapshot or batch).
    Osquery,
    CycloneDx,
    Spdx,
}

impl Format {
    pub const ALL: [Format; 7] = [
        Format::Ecs,
        Format::Evtx,
        Format::WineventJson,
        Format::Zeek,
        Format::Osquery,
        Format::CycloneDx,
        Format::Spdx,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Ecs => "ecs",
            Format::Evtx => "evtx",
            Format::WineventJson => "winevent-json",
            Format::Zeek => "zeek",
            Format::Osquery => "osquery",
            Format::CycloneDx => "cyclonedx",
            Format::Spdx => "spdx",
        }
    }

    /// Guesses the format from the first bytes of an input.
    pub fn sniff(head: &[u8]) -> Option<Format> {
        if head.starts_with(b"ElfFile\0") {
            return Some(Format::Evtx);
        }
        let text = String::from_utf8_lossy(&head[..head.len().min(64 * 1024)]);
        let trimmed = text.trim_start_matches('\u{feff}').trim_start();
        if trimmed.starts_with("#separator") || trimmed.starts_with("#fields") {
            return Some(Format::Zeek);
        }
        if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
            return None;
        }
        let has = |key: &str| text.contains(&format!("\"{key}\""));
        if has("bomFormat") {
            Some(Format::CycloneDx)
        } else if has("spdxVersion") {
            Some(Format::Spdx)
        } else if has("Event") && has("System") {
            Some(Format::WineventJson)
        } else if has("hostIdentifier") || (has("diffResults") || has("snapshot")) && has("name") {
            Some(Format::Osquery)
        } else if has("id.orig_h") || has("_path") || (has("uid") && has("ts")) {
            Some(Format::Zeek)
        } else if has("@timestamp") || has("ecs") || has("event") {
            Some(Format::Ecs)
        } else {
            None
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = turncoat_core::UnknownName;
    fn from_str(s: &str) -> Result<Format, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| turncoat_core::UnknownName::new("telemetry format", s))
    }
}

/// Options a telemetry read takes.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// Host name for records that carry none (an SBOM, a Zeek sensor).
    pub host: Option<String>,
    pub limits: Limits,
}

/// Reads one input in `format` (sniffed when `None`) into `sink`.
///
/// Returns an error only when the input cannot be read at all (unknown
/// format, unreadable file, a document over its size limit); bad records
/// are reported to `sink` and skipped.
pub fn read_telemetry(
    input: &mut Input,
    format: Option<Format>,
    options: &ReadOptions,
    sink: &mut dyn Sink,
) -> Result<Format, ReadIssue> {
    let format = match format {
        Some(f) => f,
        None => {
            let head = input.peek()?;
            Format::sniff(head).ok_or_else(|| {
                input.issue(
                    Location::Unknown,
                    "cannot tell the format from the content; name it with --format",
                )
            })?
        }
    };
    match format {
        Format::Ecs => ecs::read(input, options, sink)?,
        Format::WineventJson => winevent::read_json(input, options, sink)?,
        #[cfg(feature = "evtx")]
        Format::Evtx => evtx::read(input, options, sink)?,
        #[cfg(not(feature = "evtx"))]
        Format::Evtx => {
            return Err(input.issue(
                Location::Unknown,
                "this build of turncoat reads no .evtx files",
            ));
        }
        Format::Zeek => zeek::read(input, options, sink)?,
        Format::Osquery => osquery::read(input, options, sink)?,
        Format::CycloneDx => sbom::read_cyclonedx(input, options, sink)?,
        Format::Spdx => sbom::read_spdx(input, options, sink)?,
    }
    Ok(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_content() {
        assert_eq!(Format::sniff(b"ElfFile\0rest"), Some(Format::Evtx));
        assert_eq!(
            Format::sniff(b"#separator \\x09\n#fields\tts"),
            Some(Format::Zeek)
        );
        assert_eq!(
            Format::sniff(b"{\"ts\":1.0,\"uid\":\"C1\",\"id.orig_h\":\"10.0.0.1\"}"),
            Some(Format::Zeek)
        );
        assert_eq!(
            Format::sniff(b"{\"@timestamp\":\"2023-01-01T00:00:00Z\"}"),
            Some(Format::Ecs)
        );
        assert_eq!(
            Format::sniff(b"{\n \"Event\": {\n \"System\": {}}}"),
            Some(Format::WineventJson)
        );
        assert_eq!(
            Format::sniff(b"{\"name\":\"programs\",\"hostIdentifier\":\"h\"}"),
            Some(Format::Osquery)
        );
        assert_eq!(
            Format::sniff(b"{\"bomFormat\":\"CycloneDX\"}"),
            Some(Format::CycloneDx)
        );
        assert_eq!(
            Format::sniff(b"{\"spdxVersion\":\"SPDX-2.3\"}"),
            Some(Format::Spdx)
        );
        assert_eq!(Format::sniff(b"hello"), None);
    }
}
