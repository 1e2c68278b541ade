#![no_main]
//! Blocklists written from hostile intel values: whatever a feed names,
//! every format keeps one entry to a line and never writes a directive
//! of its own (an RPZ record other than `CNAME .`, a Suricata line that
//! is not one whole rule), and the STIX bundle is JSON.

use libfuzzer_sys::fuzz_target;
use turncoat_core::{IndicatorKind, Time};
use turncoat_respond::{BlockEntry, Blocklist, Format, render};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let kinds = [
        IndicatorKind::Domain,
        IndicatorKind::Ip,
        IndicatorKind::Url,
        IndicatorKind::Sha256,
    ];
    let entries: Vec<BlockEntry> = text
        .split('\u{1}')
        .enumerate()
        .map(|(i, value)| BlockEntry {
            id: i as i64,
            kind: kinds[value.len() % kinds.len()],
            value: value.to_owned(),
            sources: vec![value.chars().rev().collect()],
            campaign: Some(value.to_owned()),
            confidence: Some(50),
            description: Some(value.to_owned()),
            added: Time(0),
            updated: Time(0),
            valid_until: None,
        })
        .collect();
    let list = Blocklist {
        entries,
        serial: 1,
        tenant: Some("t".into()),
    };
    for format in Format::ALL {
        let out = render(&list, format, Time(0));
        match format {
            Format::Rpz => {
                for line in out.lines().skip(4) {
                    let mut parts = line.split(' ');
                    let (name, rest) = (parts.next().unwrap_or(""), parts.collect::<Vec<_>>());
                    assert!(!name.is_empty() && rest == ["CNAME", "."], "{line:?}");
                }
            }
            Format::Suricata => {
                for line in out.lines().skip(1) {
                    assert!(line.starts_with("alert ") && line.ends_with("rev:1;)"), "{line:?}");
                }
            }
            Format::Hosts => {
                for line in out.lines().skip(1) {
                    assert!(line.starts_with("0.0.0.0 ") && !line[8..].contains(' '), "{line:?}");
                }
            }
            Format::Stix => {
                let _: serde_json::Value = serde_json::from_str(&out).expect("JSON");
            }
            Format::Csv | Format::SuricataSha256 => {}
        }
    }
});
