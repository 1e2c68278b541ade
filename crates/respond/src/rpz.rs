//! DNS response-policy zones (RPZ): the names a resolver answers with
//! NXDOMAIN (`name CNAME .`, and `*.name` for its subdomains) and the
//! addresses whose answers it rewrites (IP triggers under `rpz-ip`).

use std::fmt::Write as _;
use std::net::IpAddr;

use turncoat_core::IndicatorKind;

use super::{Blocklist, banner, of_kind};

/// The zone, relative to the origin the resolver loads it under.
pub(crate) fn zone(list: &Blocklist) -> String {
    let mut out = banner(list, ";");
    let _ = write!(
        out,
        "$TTL 300\n@ IN SOA localhost. hostmaster.localhost. ( {} 3600 600 604800 300 )\n@ IN NS localhost.\n",
        list.serial
    );
    for e in of_kind(list, IndicatorKind::Domain) {
        let _ = writeln!(out, "{} CNAME .\n*.{} CNAME .", e.value, e.value);
    }
    for e in of_kind(list, IndicatorKind::Ip) {
        if let Some(trigger) = rpz_ip(&e.value) {
            let _ = writeln!(out, "{trigger} CNAME .");
        }
    }
    out
}

/// An address as an RPZ IP trigger: the prefix length, then the address
/// backwards (IPv4 by octet, IPv6 by 16-bit word with `zz` for the run of
/// zeros `::` stands for), under `rpz-ip`. `None` for what is no address.
pub fn rpz_ip(address: &str) -> Option<String> {
    let ip: IpAddr = address.parse().ok()?;
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    Some(match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("32.{d}.{c}.{b}.{a}.rpz-ip")
        }
        IpAddr::V6(v6) => {
            // The canonical text (RFC 5952) marks the longest zero run.
            let text = v6.to_string();
            let words = |part: &str| -> Vec<String> {
                part.split(':')
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned)
                    .rev()
                    .collect()
            };
            let backwards = match text.split_once("::") {
                Some((left, right)) => {
                    let mut all = words(right);
                    all.push("zz".into());
                    all.extend(words(left));
                    all
                }
                None => words(&text),
            };
            format!("128.{}.rpz-ip", backwards.join("."))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::entry;

    #[test]
    fn ip_triggers() {
        assert_eq!(rpz_ip("203.0.113.7").unwrap(), "32.7.113.0.203.rpz-ip");
        assert_eq!(rpz_ip("2001:db8::1").unwrap(), "128.1.zz.db8.2001.rpz-ip");
        assert_eq!(
            rpz_ip("2001:db8:0:1:2:3:4:5").unwrap(),
            "128.5.4.3.2.1.0.db8.2001.rpz-ip"
        );
        assert_eq!(
            rpz_ip("::ffff:198.51.100.2").unwrap(),
            "32.2.100.51.198.rpz-ip"
        );
        assert_eq!(rpz_ip("fe80::").unwrap(), "128.zz.fe80.rpz-ip");
        assert!(rpz_ip("not an address").is_none());
    }

    #[test]
    fn names_and_their_subdomains() {
        let list = Blocklist {
            entries: vec![
                entry(1, IndicatorKind::Domain, "msstorageboxes.com"),
                entry(2, IndicatorKind::Domain, "bad_name.example"),
                entry(3, IndicatorKind::Ip, "203.0.113.7"),
                entry(4, IndicatorKind::Url, "https://x.example/"),
            ],
            serial: 1_680_000_000,
            tenant: None,
        };
        let zone = zone(&list);
        assert!(zone.contains("( 1680000000 3600"), "{zone}");
        assert!(zone.contains("\nmsstorageboxes.com CNAME .\n*.msstorageboxes.com CNAME .\n"));
        assert!(zone.contains("\n32.7.113.0.203.rpz-ip CNAME .\n"));
        assert!(
            !zone.contains("bad_name") && !zone.contains("x.example"),
            "{zone}"
        );
    }
}
