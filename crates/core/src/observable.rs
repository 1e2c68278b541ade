//! Observables: the (kind, value) pairs pulled out of events and matched
//! against intel. Every value is normalised exactly once, here, so that
//! intel and telemetry meet in the same spelling.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::UnknownName;
use crate::event::{Event, Value};

/// What an observable is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObservableKind {
    Sha256,
    Sha1,
    Md5,
    Domain,
    Ip,
    Url,
    Filename,
}

impl ObservableKind {
    pub const ALL: [ObservableKind; 7] = [
        ObservableKind::Sha256,
        ObservableKind::Sha1,
        ObservableKind::Md5,
        ObservableKind::Domain,
        ObservableKind::Ip,
        ObservableKind::Url,
        ObservableKind::Filename,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ObservableKind::Sha256 => "sha256",
            ObservableKind::Sha1 => "sha1",
            ObservableKind::Md5 => "md5",
            ObservableKind::Domain => "domain",
            ObservableKind::Ip => "ip",
            ObservableKind::Url => "url",
            ObservableKind::Filename => "filename",
        }
    }
}

impl fmt::Display for ObservableKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ObservableKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        ObservableKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName::new("observable kind", s))
    }
}

/// A normalised (kind, value) pair: what indicators match and sightings count.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Observable {
    pub kind: ObservableKind,
    pub value: String,
}

impl Observable {
    /// Normalises `raw` as `kind`; `None` when it is not a valid value of
    /// that kind.
    pub fn new(kind: ObservableKind, raw: &str) -> Option<Observable> {
        let value = match kind {
            ObservableKind::Sha256 => normalize_hash(raw, 64)?,
            ObservableKind::Sha1 => normalize_hash(raw, 40)?,
            ObservableKind::Md5 => normalize_hash(raw, 32)?,
            ObservableKind::Domain => normalize_domain(raw)?,
            ObservableKind::Ip => normalize_ip(raw)?,
            ObservableKind::Url => normalize_url(raw)?,
            ObservableKind::Filename => normalize_filename(raw)?,
        };
        Some(Observable { kind, value })
    }
}

impl fmt::Display for Observable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// Lowercase hex of exactly `len` digits.
pub fn normalize_hash(raw: &str, len: usize) -> Option<String> {
    let s = raw.trim();
    (s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

/// The hash kind a bare hex string of this length is.
pub fn hash_kind_of(raw: &str) -> Option<ObservableKind> {
    let s = raw.trim();
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    match s.len() {
        64 => Some(ObservableKind::Sha256),
        40 => Some(ObservableKind::Sha1),
        32 => Some(ObservableKind::Md5),
        _ => None,
    }
}

/// Lowercase, trailing dot removed, internationalised names in their ASCII
/// (punycode) form. Rejects anything that is not a plausible DNS name, IP
/// literals included.
pub fn normalize_domain(raw: &str) -> Option<String> {
    let s = raw.trim().trim_end_matches('.');
    if s.is_empty() || s.len() > 253 || s.parse::<IpAddr>().is_ok() {
        return None;
    }
    let ascii = if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(s).ok()?
    };
    let valid = ascii.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    // Single-label names (`wpad`, `localhost`) never reach intel.
    (valid && ascii.contains('.')).then_some(ascii)
}

/// The canonical textual form of an IPv4 or IPv6 address.
pub fn normalize_ip(raw: &str) -> Option<String> {
    let s = raw.trim().trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = s.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        // The parser takes only the canonical dotted quad (no leading
        // zeros, no short forms), so the text is already the canonical
        // form: copying it saves formatting every address of every event.
        IpAddr::V4(_) => s.to_owned(),
    })
}

/// `scheme://host[:port]/path[?query]` with scheme and host lowercased,
/// default ports dropped, the fragment removed and percent-encoding made
/// canonical. A URL without a scheme is read as `http://`.
pub fn normalize_url(raw: &str) -> Option<String> {
    let s = raw.trim();
    if s.is_empty() || s.len() > 8192 {
        return None;
    }
    let parsed = if s.contains("://") {
        url::Url::parse(s).ok()?
    } else {
        url::Url::parse(&format!("http://{s}")).ok()?
    };
    parsed.host_str()?;
    let mut u = parsed;
    u.set_fragment(None);
    Some(u.to_string())
}

/// The URL with its scheme and `://` removed: the key URL indicators are
/// indexed under, so that an indicator written without a scheme matches
/// every scheme.
pub fn url_without_scheme(url: &str) -> &str {
    match url.find("://") {
        Some(i) => &url[i + 3..],
        None => url,
    }
}

/// The host part of a normalised URL.
pub fn url_host(url: &str) -> &str {
    let rest = url_without_scheme(url);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let hostport = &rest[..end];
    let hostport = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
    if hostport.starts_with('[') {
        return hostport.split(']').next().map_or(hostport, |h| &h[1..]);
    }
    hostport.split(':').next().unwrap_or(hostport)
}

/// The final path component, lowercased: Windows and macOS file systems
/// are case-insensitive, and intel lists names in any case.
pub fn normalize_filename(raw: &str) -> Option<String> {
    let s = raw.trim();
    let base = s.rsplit(['\\', '/']).next().unwrap_or(s);
    (!base.is_empty() && base.len() <= 255).then(|| base.to_lowercase())
}

/// What a field's values are, by the field's name, across the event
/// shapes the readers produce (Sysmon/ECS under Sigma names, Zeek under
/// its own).
enum FieldRole {
    /// Sysmon's `SHA256=…,MD5=…,IMPHASH=…`.
    Hashes,
    /// A bare hash, its kind told by its length.
    Hash,
    Domain,
    Ip,
    /// Lists of DNS answers: the IPs a name resolved to.
    Answers,
    Url,
    File,
}

fn field_role(name: &str) -> Option<FieldRole> {
    Some(match name {
        "Hashes" => FieldRole::Hashes,
        "sha256" | "sha1" | "md5" => FieldRole::Hash,
        "QueryName" | "DestinationHostname" | "cs-host" | "query" | "host" | "server_name" => {
            FieldRole::Domain
        }
        "DestinationIp" | "id.resp_h" | "dst_ip" => FieldRole::Ip,
        "QueryResults" | "answers" => FieldRole::Answers,
        "c-uri" => FieldRole::Url,
        "Image" | "ImageLoaded" | "TargetFilename" => FieldRole::File,
        _ => return None,
    })
}

/// Every observable in an event, normalised and deduplicated.
///
/// The hash fields follow Sysmon's `Hashes` convention
/// (`SHA256=…,MD5=…,IMPHASH=…`); Zeek HTTP records yield their URL from
/// `host` and `uri`. One pass over the fields: this runs for every event
/// ingested.
pub fn extract(event: &Event, out: &mut Vec<Observable>) {
    out.clear();
    let (mut http_host, mut http_uri, mut tls_port) = (None, None, None);
    for (name, value) in event.fields.iter() {
        match name {
            "host" if http_host.is_none() => http_host = value.as_str(),
            "uri" if http_uri.is_none() => http_uri = value.as_str(),
            "id.resp_p" if tls_port.is_none() => tls_port = Some(value == &Value::Int(443)),
            _ => {}
        }
        let Some(role) = field_role(name) else {
            continue;
        };
        for s in value.strings() {
            match role {
                FieldRole::Hashes => push_hashes(s, out),
                FieldRole::Hash => {
                    if let Some(kind) = hash_kind_of(s) {
                        push(out, kind, s);
                    }
                }
                FieldRole::Domain => push(out, ObservableKind::Domain, s),
                FieldRole::Ip => push(out, ObservableKind::Ip, s),
                FieldRole::Answers => {
                    // Sysmon writes `type:  5 name;::ffff:1.2.3.4;` - keep the addresses.
                    for part in s.split([';', ',', ' ']) {
                        let part = part.trim().trim_start_matches("::ffff:");
                        if part.parse::<IpAddr>().is_ok() {
                            push(out, ObservableKind::Ip, part);
                        }
                    }
                }
                FieldRole::Url => push(out, ObservableKind::Url, s),
                FieldRole::File => push(out, ObservableKind::Filename, s),
            }
        }
    }
    if let (Some(host), Some(uri)) = (http_host, http_uri) {
        let scheme = if tls_port == Some(true) {
            "https"
        } else {
            "http"
        };
        push(out, ObservableKind::Url, &format!("{scheme}://{host}{uri}"));
    }
    out.sort_unstable();
    out.dedup();
}

fn push(out: &mut Vec<Observable>, kind: ObservableKind, raw: &str) {
    if raw.is_empty() || raw == "-" {
        return;
    }
    if let Some(o) = Observable::new(kind, raw) {
        out.push(o);
    }
}

/// Splits Sysmon's `SHA256=…,MD5=…,IMPHASH=…` into hash observables; also
/// accepts a bare hash.
fn push_hashes(s: &str, out: &mut Vec<Observable>) {
    for part in s.split(',') {
        let (name, value) = match part.split_once('=') {
            Some((n, v)) => (n.trim(), v.trim()),
            None => ("", part.trim()),
        };
        let kind = match name.to_ascii_uppercase().as_str() {
            "SHA256" => ObservableKind::Sha256,
            "SHA1" => ObservableKind::Sha1,
            "MD5" => ObservableKind::Md5,
            "" => match hash_kind_of(value) {
                Some(k) => k,
                None => continue,
            },
            _ => continue,
        };
        push(out, kind, value);
    }
}

/// True when `domain` is `parent` or one of its subdomains. Both normalised.
pub fn domain_within(domain: &str, parent: &str) -> bool {
    domain == parent
        || (domain.len() > parent.len()
            && domain.ends_with(parent)
            && domain.as_bytes()[domain.len() - parent.len() - 1] == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Fields, Logsource};
    use crate::time::Time;

    #[test]
    fn domains_normalise_case_dot_and_idna() {
        assert_eq!(
            normalize_domain("CDN.Example.COM.").as_deref(),
            Some("cdn.example.com")
        );
        assert_eq!(
            normalize_domain("bücher.de").as_deref(),
            Some("xn--bcher-kva.de")
        );
        assert_eq!(normalize_domain("10.0.0.1"), None);
        assert_eq!(normalize_domain("bad domain.com"), None);
        assert_eq!(normalize_domain("a..b"), None);
        assert_eq!(normalize_domain("localhost"), None);
    }

    #[test]
    fn subdomain_rule_is_label_aligned() {
        assert!(domain_within("x.com", "x.com"));
        assert!(domain_within("cdn.x.com", "x.com"));
        assert!(!domain_within("notx.com", "x.com"));
        assert!(!domain_within("x.com.evil.example", "x.com"));
    }

    #[test]
    fn urls_lowercase_scheme_and_host_only() {
        assert_eq!(
            normalize_url(
                "HTTPS://Raw.GitHubUserContent.com:443/IconStorages/images/main/icon1.ico#x"
            )
            .as_deref(),
            Some("https://raw.githubusercontent.com/IconStorages/images/main/icon1.ico")
        );
        assert_eq!(
            normalize_url("example.com/a").as_deref(),
            Some("http://example.com/a")
        );
        assert_eq!(
            url_host("https://user@Host.example:8080/p?q"),
            "Host.example"
        );
        assert_eq!(url_without_scheme("https://a.b/c"), "a.b/c");
        assert_eq!(normalize_url("not a url at all"), None);
    }

    #[test]
    fn ips_and_hashes() {
        assert_eq!(normalize_ip("::ffff:1.2.3.4").as_deref(), Some("1.2.3.4"));
        assert_eq!(normalize_ip("2001:DB8::1").as_deref(), Some("2001:db8::1"));
        assert_eq!(normalize_ip("1.2.3"), None);
        // IPv4 text is kept as given: only canonical text may pass.
        for odd in ["010.1.1.1", "1.2.3.04", "0x7f.0.0.1", "127.1", "1.2.3.4 5"] {
            assert_eq!(normalize_ip(odd), None, "{odd}");
        }
        for v4 in ["0.0.0.0", "10.1.0.20", "255.255.255.255", " 198.19.1.2 "] {
            let canonical = v4.trim().parse::<std::net::Ipv4Addr>().unwrap().to_string();
            assert_eq!(normalize_ip(v4), Some(canonical), "{v4}");
        }
        assert_eq!(
            hash_kind_of("AB".repeat(32).as_str()),
            Some(ObservableKind::Sha256)
        );
        assert_eq!(normalize_hash(&"AB".repeat(16), 32), Some("ab".repeat(16)));
        assert_eq!(normalize_hash("xyz", 3), None);
    }

    #[test]
    fn extracts_sysmon_hashes_and_names() {
        let mut fields = Fields::new();
        fields.push("Image", "C:\\Program Files\\3CX\\3CXDesktopApp.exe");
        fields.push(
            "Hashes",
            format!(
                "SHA256={},MD5={},IMPHASH={}",
                "A".repeat(64),
                "B".repeat(32),
                "C".repeat(32)
            ),
        );
        fields.push("QueryName", "Akamaicontainer.com.");
        fields.push("QueryResults", "type:  5 x.net;::ffff:203.0.113.9;");
        let e = Event {
            time: Time(0),
            host: "h".into(),
            logsource: Logsource::default(),
            fields,
        };
        let mut out = Vec::new();
        extract(&e, &mut out);
        let got: Vec<String> = out.iter().map(|o| o.to_string()).collect();
        assert!(got.contains(&format!("sha256:{}", "a".repeat(64))));
        assert!(got.contains(&format!("md5:{}", "b".repeat(32))));
        assert!(
            !got.iter().any(|g| g.contains(&"c".repeat(32))),
            "IMPHASH is not a file hash"
        );
        assert!(got.contains(&"domain:akamaicontainer.com".to_string()));
        assert!(got.contains(&"ip:203.0.113.9".to_string()));
        assert!(got.contains(&"filename:3cxdesktopapp.exe".to_string()));
    }
}

/// Top-level domains delegated by IANA, read from the ICANN section of the
/// public suffix list (punycode, one a line).
const TLDS: &str = include_str!("tlds.txt");

/// Whether the domain ends in a delegated top-level domain. Used where a
/// bare token must be told apart from a file name (`icon0.ico`) when intel
/// lists give no type.
pub fn has_known_tld(domain: &str) -> bool {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    let set = SET.get_or_init(|| TLDS.lines().collect());
    domain
        .rsplit('.')
        .next()
        .is_some_and(|tld| set.contains(tld))
}

#[cfg(test)]
mod tld_tests {
    #[test]
    fn known_tlds() {
        assert!(super::has_known_tld("sbmsa.wiki"));
        assert!(super::has_known_tld("akamaicontainer.com"));
        assert!(super::has_known_tld("xn--bcher-kva.xn--p1ai"));
        assert!(!super::has_known_tld("icon0.ico"));
    }
}
