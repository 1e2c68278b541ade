//! Intel readers: STIX 2.1 bundles, MISP events, CSV IOC lists, OSV
//! records and turncoat's advisory TOML, all into [`Intel`].

pub mod advisory;
pub mod csv;
pub mod infer;
pub mod misp;
pub mod osv;
pub mod stix;

use std::fmt;
use std::str::FromStr;

use turncoat_core::{Advisory, Indicator};

use crate::input::Input;
use crate::{Limits, ReadIssue};

/// What an intel file held.
#[derive(Debug, Default)]
pub struct Intel {
    pub indicators: Vec<Indicator>,
    pub advisories: Vec<Advisory>,
    /// Entries that could not be read as intel, with where and why.
    pub rejected: Vec<ReadIssue>,
    /// Entries that are not indicators by design (report links, notes,
    /// MISP attributes not meant for detection): counted, not rejected.
    pub informational: usize,
}

impl Intel {
    pub fn extend(&mut self, other: Intel) {
        self.indicators.extend(other.indicators);
        self.advisories.extend(other.advisories);
        self.rejected.extend(other.rejected);
        self.informational += other.informational;
    }
}

/// The intel formats turncoat reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntelFormat {
    Stix,
    Misp,
    Csv,
    Osv,
    Advisory,
}

impl IntelFormat {
    pub const ALL: [IntelFormat; 5] = [
        IntelFormat::Stix,
        IntelFormat::Misp,
        IntelFormat::Csv,
        IntelFormat::Osv,
        IntelFormat::Advisory,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IntelFormat::Stix => "stix",
            IntelFormat::Misp => "misp",
            IntelFormat::Csv => "csv",
            IntelFormat::Osv => "osv",
            IntelFormat::Advisory => "advisory",
        }
    }

    /// Guesses the format from the content (and, for TOML and CSV, which
    /// have no signature, from what the content is not).
    pub fn sniff(head: &[u8]) -> IntelFormat {
        if head.starts_with(b"PK\x03\x04") {
            return IntelFormat::Osv;
        }
        let text = String::from_utf8_lossy(head);
        let t = text.trim_start_matches('\u{feff}').trim_start();
        let has = |k: &str| text.contains(&format!("\"{k}\""));
        if looks_like_toml(t) {
            IntelFormat::Advisory
        } else if t.starts_with('{') || t.starts_with('[') {
            if has("type") && text.contains("\"bundle\"") || text.contains("\"spec_version\"") {
                IntelFormat::Stix
            } else if has("Attribute") || has("Event") && has("info") || has("response") {
                IntelFormat::Misp
            } else {
                IntelFormat::Osv
            }
        } else {
            IntelFormat::Csv
        }
    }

    /// The format a file's name says it is, where the name says anything.
    fn from_file_name(name: &str) -> Option<IntelFormat> {
        let lower = name.to_ascii_lowercase();
        lower.ends_with(".toml").then_some(IntelFormat::Advisory)
    }
}

/// Whether the first line that is no comment is a TOML table header
/// (`[[affected]]`, `[x]`) or a bare-key assignment (`id = …`). An IOC
/// list never starts so (its lines hold no ` = ` after a bare word), and
/// deciding here rather than on `[[affected]]` means a broken advisory
/// gets TOML's error, not the CSV reader's.
fn looks_like_toml(text: &str) -> bool {
    let Some(line) = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
    else {
        return false;
    };
    let bare_key = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    };
    if let Some(inner) = line
        .strip_prefix("[[")
        .and_then(|l| l.strip_suffix("]]"))
        .or_else(|| line.strip_prefix('[').and_then(|l| l.strip_suffix(']')))
    {
        return bare_key(inner.trim()) && !inner.trim().bytes().all(|b| b.is_ascii_digit());
    }
    line.split_once('=')
        .is_some_and(|(key, _)| bare_key(key.trim()) && !key.trim().contains('.'))
}

impl fmt::Display for IntelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IntelFormat {
    type Err = turncoat_core::UnknownName;
    fn from_str(s: &str) -> Result<IntelFormat, Self::Err> {
        IntelFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| turncoat_core::UnknownName::new("intel format", s))
    }
}

/// Reads one intel input. `source` names the feed in every indicator.
pub fn read_intel(
    input: &mut Input,
    format: Option<IntelFormat>,
    limits: &Limits,
) -> Result<(IntelFormat, Intel), ReadIssue> {
    let mut indicators = Vec::new();
    let (format, mut intel) = read_intel_each(input, format, limits, &mut |i| indicators.push(i))?;
    intel.indicators = indicators;
    Ok((format, intel))
}

/// Reads one intel input, handing its indicators to `each` as they are
/// read, so that a CSV list of millions is never held as `Indicator`s
/// all at once; the returned [`Intel`] holds the rest (advisories, with
/// the indicators published in them, rejections, counts).
pub fn read_intel_each(
    input: &mut Input,
    format: Option<IntelFormat>,
    limits: &Limits,
    each: &mut dyn FnMut(Indicator),
) -> Result<(IntelFormat, Intel), ReadIssue> {
    let format = match format {
        Some(f) => f,
        None => match IntelFormat::from_file_name(input.name()) {
            Some(f) => f,
            None => IntelFormat::sniff(input.peek()?),
        },
    };
    let bytes = input.read_document(limits.max_document_bytes)?;
    let name = input.name().to_owned();
    let mut intel = match format {
        IntelFormat::Csv => return Ok((format, csv::read_each(&name, &bytes, each)?)),
        IntelFormat::Stix => stix::read(&name, &bytes)?,
        IntelFormat::Misp => misp::read(&name, &bytes)?,
        IntelFormat::Osv => osv::read(&name, &bytes, limits)?,
        IntelFormat::Advisory => advisory::read(&name, &bytes)?,
    };
    intel.indicators.drain(..).for_each(each);
    Ok((format, intel))
}

/// The display name of a feed: its file name without directories.
pub(crate) fn feed_name(path: &str) -> String {
    path.rsplit(['/', '\\']).next().unwrap_or(path).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_intel() {
        assert_eq!(
            IntelFormat::sniff(br#"{"type":"bundle","objects":[]}"#),
            IntelFormat::Stix
        );
        assert_eq!(
            IntelFormat::sniff(br#"{"Event":{"info":"x","Attribute":[]}}"#),
            IntelFormat::Misp
        );
        assert_eq!(
            IntelFormat::sniff(br#"{"id":"MAL-2022-1","affected":[]}"#),
            IntelFormat::Osv
        );
        assert_eq!(
            IntelFormat::sniff(b"id = \"TC-1\"\ntitle = \"x\"\n[[affected]]\n"),
            IntelFormat::Advisory
        );
        assert_eq!(
            IntelFormat::sniff(b"value,type\nx.com,domain\n"),
            IntelFormat::Csv
        );
        assert_eq!(IntelFormat::sniff(b"PK\x03\x04...."), IntelFormat::Osv);
        // A broken advisory is still an advisory, so TOML names the error.
        assert_eq!(
            IntelFormat::sniff(b"# 3CX\nid = \"TC-1\ntitle = \"x\"\n"),
            IntelFormat::Advisory
        );
        assert_eq!(
            IntelFormat::sniff(b"[[affected]]\nproduct = \"x\"\n"),
            IntelFormat::Advisory
        );
        assert_eq!(IntelFormat::sniff(b"[1, 2]"), IntelFormat::Osv);
        assert_eq!(IntelFormat::sniff(b"[{\"id\":\"x\"}]"), IntelFormat::Osv);
        assert_eq!(
            IntelFormat::sniff(b"# IOCs\nhttp://x.com/?a=b,url\n"),
            IntelFormat::Csv
        );
    }
}
