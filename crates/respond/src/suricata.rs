//! Suricata rules: a name's DNS queries, TLS SNI and HTTP hosts (its
//! subdomains too: `dotprefix` + `endswith`), traffic to an address, and
//! files by SHA-256 through a dataset. Each rule's `sid` comes from the
//! indicator's stored id, so it keeps its number across exports.

use std::fmt::Write as _;

use turncoat_core::IndicatorKind;

use super::{BlockEntry, Blocklist, SHA256_DATASET, banner, of_kind};

/// Where turncoat's sids start: clear of the ranges Emerging Threats and
/// the Suricata distribution use.
const SID_BASE: u64 = 3_100_000_000;

/// Rules per indicator at most (DNS, TLS, HTTP for a name).
const SIDS_PER_ENTRY: u64 = 4;

fn sid(entry: &BlockEntry, slot: u64) -> u64 {
    SID_BASE + entry.id.max(0) as u64 * SIDS_PER_ENTRY + slot
}

/// Text for a rule's `msg`: the characters a rule option cannot hold
/// unescaped (`;`, `"`, `\`) dropped.
fn message(entry: &BlockEntry) -> String {
    let about = entry
        .campaign
        .as_deref()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    format!("turncoat blocklist {} {}{about}", entry.kind, entry.value)
        .chars()
        .filter(|c| !matches!(c, ';' | '"' | '\\') && !c.is_control())
        .collect()
}

pub(crate) fn rules(list: &Blocklist) -> String {
    let mut out = banner(list, "#");
    let meta = |e: &BlockEntry| {
        format!(
            "metadata:created_at {}, updated_at {};",
            e.added.date_string().replace('-', "_"),
            e.updated.date_string().replace('-', "_")
        )
    };
    for e in of_kind(list, IndicatorKind::Domain) {
        let msg = message(e);
        let name = &e.value;
        for (slot, (proto, buffer)) in [
            ("dns", "dns.query"),
            ("tls", "tls.sni"),
            ("http", "http.host"),
        ]
        .into_iter()
        .enumerate()
        {
            // http.host is lower-cased by Suricata: `nocase` is refused there.
            let nocase = if proto == "http" { "" } else { " nocase;" };
            let _ = writeln!(
                out,
                "alert {proto} $HOME_NET any -> any any (msg:\"{msg} ({proto})\"; {buffer}; dotprefix; content:\".{name}\"; endswith;{nocase} classtype:trojan-activity; {} sid:{}; rev:1;)",
                meta(e),
                sid(e, slot as u64)
            );
        }
    }
    for e in of_kind(list, IndicatorKind::Ip) {
        if e.value.parse::<std::net::IpAddr>().is_err() {
            continue;
        }
        let _ = writeln!(
            out,
            "alert ip $HOME_NET any -> [{}] any (msg:\"{}\"; classtype:trojan-activity; {} sid:{}; rev:1;)",
            e.value,
            message(e),
            meta(e),
            sid(e, 0)
        );
    }
    if of_kind(list, IndicatorKind::Sha256).next().is_some() {
        // One rule for the whole dataset: its sid is the one below ours.
        let _ = writeln!(
            out,
            "alert http any any -> $HOME_NET any (msg:\"turncoat blocklist: a file of known-bad SHA-256\"; filesha256; dataset:isset,turncoat-sha256,type sha256,load {SHA256_DATASET}; classtype:trojan-activity; sid:{}; rev:1;)",
            SID_BASE - 1
        );
    }
    out
}

/// The dataset file the SHA-256 rule loads: one hash a line.
pub(crate) fn sha256_dataset(list: &Blocklist) -> String {
    of_kind(list, IndicatorKind::Sha256)
        .filter(|e| e.value.len() == 64 && e.value.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|e| format!("{}\n", e.value.to_ascii_lowercase()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::entry;

    #[test]
    fn one_rule_per_protocol_with_stable_unique_sids() {
        let list = Blocklist {
            entries: vec![
                entry(7, IndicatorKind::Domain, "msstorageboxes.com"),
                entry(8, IndicatorKind::Ip, "203.0.113.7"),
                entry(9, IndicatorKind::Sha256, &"a".repeat(64)),
            ],
            serial: 1,
            tenant: None,
        };
        let text = rules(&list);
        let sids: Vec<&str> = text
            .match_indices("sid:")
            .map(|(at, _)| &text[at + 4..at + 4 + text[at + 4..].find(';').unwrap()])
            .collect();
        assert_eq!(sids.len(), 5, "{text}");
        let unique: std::collections::BTreeSet<_> = sids.iter().collect();
        assert_eq!(unique.len(), 5, "{sids:?}");
        assert!(
            text.contains(
                "dns.query; dotprefix; content:\".msstorageboxes.com\"; endswith; nocase;"
            )
        );
        assert!(text.contains(
            "http.host; dotprefix; content:\".msstorageboxes.com\"; endswith; classtype"
        ));
        assert!(text.contains("-> [203.0.113.7] any"));
        assert!(text.contains(&format!("load {SHA256_DATASET}")));
        assert_eq!(rules(&list), text, "the same list, the same rules");
        assert_eq!(sha256_dataset(&list), format!("{}\n", "a".repeat(64)));
    }
}
