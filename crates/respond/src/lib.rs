//! What turncoat sends out to block an attack: the active indicators as
//! blocklists in the formats their consumers read. DNS resolvers take an
//! RPZ zone (BIND, Unbound, PowerDNS), network sensors Suricata rules,
//! hosts files and CSV go to whatever reads them, and threat-intel
//! platforms a STIX 2.1 bundle.
//!
//! Rendering is pure: the caller chooses the entries (the engine: active,
//! not allowlisted, optionally seen in a tenant) and this crate writes
//! them, in a stable order, so that two exports differ only by what
//! changed.

#![forbid(unsafe_code)]

pub mod notify;
mod rpz;
pub mod stix;
mod suricata;

use std::fmt::Write as _;

use serde::Serialize;
use turncoat_core::{IndicatorKind, Time};

pub use rpz::rpz_ip;

/// One indicator to block.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockEntry {
    /// The stored indicator's id: what a Suricata rule's `sid` is made
    /// of, so that a rule keeps its number from one export to the next.
    pub id: i64,
    pub kind: IndicatorKind,
    pub value: String,
    /// The feeds that name it.
    pub sources: Vec<String>,
    pub campaign: Option<String>,
    pub confidence: Option<u8>,
    pub description: Option<String>,
    /// When it was first stored, and last changed.
    pub added: Time,
    pub updated: Time,
    pub valid_until: Option<Time>,
}

/// The entries of one export, in order (kind, then value).
#[derive(Clone, Debug, Default)]
pub struct Blocklist {
    pub entries: Vec<BlockEntry>,
    /// Grows with every change to what the list is made from: the RPZ
    /// zone's SOA serial.
    pub serial: u32,
    /// Who it is for (a tenant's name), said in comments.
    pub tenant: Option<String>,
}

/// The formats a blocklist is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A DNS response-policy zone: names answered NXDOMAIN, with their
    /// subdomains; IP triggers for addresses.
    Rpz,
    /// Suricata rules: DNS queries, TLS SNI and HTTP hosts of each name
    /// (subdomains too), traffic to each address, files by SHA-256
    /// through a dataset.
    Suricata,
    /// The SHA-256 list the Suricata rules' dataset loads.
    SuricataSha256,
    /// `0.0.0.0 name` lines.
    Hosts,
    Csv,
    /// A STIX 2.1 bundle of indicators.
    Stix,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::Rpz,
        Format::Suricata,
        Format::SuricataSha256,
        Format::Hosts,
        Format::Csv,
        Format::Stix,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Rpz => "rpz",
            Format::Suricata => "suricata",
            Format::SuricataSha256 => "suricata-sha256",
            Format::Hosts => "hosts",
            Format::Csv => "csv",
            Format::Stix => "stix",
        }
    }

    /// The media type an HTTP answer carries.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Rpz => "text/dns",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Stix => "application/stix+json;version=2.1",
            _ => "text/plain; charset=utf-8",
        }
    }

    /// The kinds of indicator the format can block.
    pub fn kinds(self) -> &'static [IndicatorKind] {
        use IndicatorKind::*;
        match self {
            Format::Rpz => &[Domain, Ip],
            Format::Suricata => &[Domain, Ip, Sha256],
            Format::SuricataSha256 => &[Sha256],
            Format::Hosts => &[Domain],
            Format::Csv | Format::Stix => &[Domain, Ip, Url, Sha256],
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
                format!("format {s:?}: one of {}", known.join(", "))
            })
    }
}

/// The name Suricata's rules give the SHA-256 dataset file.
pub const SHA256_DATASET: &str = "turncoat-sha256.lst";

/// `list` written in `format`; `now` stamps what the format dates.
pub fn render(list: &Blocklist, format: Format, now: Time) -> String {
    match format {
        Format::Rpz => rpz::zone(list),
        Format::Suricata => suricata::rules(list),
        Format::SuricataSha256 => suricata::sha256_dataset(list),
        Format::Hosts => hosts(list),
        Format::Csv => csv(list),
        Format::Stix => stix::bundle(list, now),
    }
}

/// Whether `name` is a DNS name every consumer takes: letters, digits
/// and hyphens in labels of 1 to 63, at most 253 in all, two labels or
/// more. Anything else (an underscore, a space) is left out, not written.
pub fn is_plain_domain(name: &str) -> bool {
    name.len() <= 253
        && name.contains('.')
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// The entries of `kind` a format can write, in order.
fn of_kind(list: &Blocklist, kind: IndicatorKind) -> impl Iterator<Item = &BlockEntry> {
    list.entries.iter().filter(move |e| {
        e.kind == kind && (kind != IndicatorKind::Domain || is_plain_domain(&e.value))
    })
}

/// A comment line naming what the list is and for whom.
fn banner(list: &Blocklist, comment: &str) -> String {
    format!(
        "{comment} turncoat blocklist{}: {} entries, serial {}\n",
        list.tenant
            .as_deref()
            .map(|t| format!(" for {t}"))
            .unwrap_or_default(),
        list.entries.len(),
        list.serial
    )
}

fn hosts(list: &Blocklist) -> String {
    let mut out = banner(list, "#");
    for e in of_kind(list, IndicatorKind::Domain) {
        let _ = writeln!(out, "0.0.0.0 {}", e.value);
    }
    out
}

/// RFC 4180 CSV, one row per entry.
fn csv(list: &Blocklist) -> String {
    fn field(text: &str) -> String {
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text.to_owned()
        }
    }
    let mut out =
        String::from("kind,value,sources,campaign,confidence,added,updated,valid_until\r\n");
    for e in &list.entries {
        let row = [
            e.kind.as_str().to_owned(),
            e.value.clone(),
            e.sources.join(" "),
            e.campaign.clone().unwrap_or_default(),
            e.confidence.map(|c| c.to_string()).unwrap_or_default(),
            e.added.to_rfc3339(),
            e.updated.to_rfc3339(),
            e.valid_until.map(Time::to_rfc3339).unwrap_or_default(),
        ];
        let fields: Vec<String> = row.iter().map(|f| field(f)).collect();
        let _ = write!(out, "{}\r\n", fields.join(","));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn entry(id: i64, kind: IndicatorKind, value: &str) -> BlockEntry {
        BlockEntry {
            id,
            kind,
            value: value.into(),
            sources: vec!["3cx-iocs".into()],
            campaign: Some("SmoothOperator".into()),
            confidence: Some(90),
            description: None,
            added: Time(1_680_000_000_000_000),
            updated: Time(1_680_000_000_000_000),
            valid_until: None,
        }
    }

    #[test]
    fn plain_domains_only() {
        assert!(is_plain_domain("api.msstorageboxes.com"));
        for bad in [
            "localhost",
            "a..b",
            "_dmarc.x.com",
            "-x.com",
            "x y.com",
            "EVIL.com",
            "",
        ] {
            assert!(!is_plain_domain(bad), "{bad}");
        }
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let mut e = entry(1, IndicatorKind::Url, "https://x.example/a,b");
        e.campaign = Some("say \"hi\"".into());
        let list = Blocklist {
            entries: vec![e],
            ..Default::default()
        };
        let text = csv(&list);
        assert!(
            text.contains(",\"https://x.example/a,b\",3cx-iocs,\"say \"\"hi\"\"\",90,"),
            "{text}"
        );
    }
}
