//! Refanging and type inference for indicator values as people publish
//! them: `hxxp://evil[.]com`, hashes without a type, URLs in a domain
//! column.

use turncoat_core::IndicatorKind;
use turncoat_core::indicator::normalize_indicator_value;
use turncoat_core::observable::{has_known_tld, hash_kind_of, normalize_domain, normalize_ip};

/// Undoes the usual defanging: `[.]`, `(.)`, `{.}`, `[dot]`, `(dot)`,
/// ` dot `, `hxxp`, `hXXp`, `[:]`, `[://]`, `[@]`, `[at]`; drops invisible
/// characters (BOM, zero-width, direction marks) that copy-paste carries.
pub fn refang(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .filter(|c| !matches!(c, '\u{200b}'..='\u{200f}' | '\u{feff}' | '\u{2060}' | '\u{202a}'..='\u{202e}'))
        .collect();
    s = s
        .trim()
        .trim_matches(['"', '\'', '<', '>'])
        .trim()
        .to_owned();
    for (from, to) in [
        ("[.]", "."),
        ("(.)", "."),
        ("{.}", "."),
        ("[dot]", "."),
        ("(dot)", "."),
        ("[DOT]", "."),
        ("[:]", ":"),
        ("[://]", "://"),
        ("[/]", "/"),
        ("[@]", "@"),
        ("[at]", "@"),
        ("\\.", "."),
    ] {
        if s.contains(from) {
            s = s.replace(from, to);
        }
    }
    let lower = s.to_ascii_lowercase();
    for (from, to) in [("hxxps", "https"), ("hxxp", "http"), ("fxp", "ftp")] {
        if lower.starts_with(from) {
            s = format!("{to}{}", &s[from.len()..]);
            break;
        }
    }
    s
}

/// The kind a bare value most plausibly is, with its normalised value.
///
/// URLs without a path become domains (`http://x.com` names the whole
/// host); URLs whose path ends in `/` become prefixes (a directory of a
/// staging site); file-like tokens (`icon0.ico`) are not taken for domains
/// because their last label is no delegated top-level domain.
pub fn infer(value: &str) -> Option<(IndicatorKind, String)> {
    let v = value.trim();
    if v.is_empty() || v.len() > 8192 {
        return None;
    }
    if let Some(kind) = hash_kind_of(v) {
        let k = match kind {
            turncoat_core::ObservableKind::Sha256 => IndicatorKind::Sha256,
            turncoat_core::ObservableKind::Sha1 => IndicatorKind::Sha1,
            _ => IndicatorKind::Md5,
        };
        return Some((k, v.to_ascii_lowercase()));
    }
    if let Some(ip) = normalize_ip(v) {
        return Some((IndicatorKind::Ip, ip));
    }
    if v.contains('/') && v.parse::<ipnet::IpNet>().is_ok() {
        return normalize_indicator_value(IndicatorKind::Cidr, v)
            .ok()
            .map(|c| (IndicatorKind::Cidr, c));
    }
    if let Some((addr, bits)) = v.split_once('/')
        && normalize_ip(addr).is_some()
        && bits
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b'+')
    {
        // An address with a prefix length that is out of range (`/33`,
        // `/-1`) is a broken CIDR, not a URL path.
        return None;
    }
    if v.contains('@') && !v.contains('/') && !v.contains(' ') {
        let domain = v.rsplit('@').next()?;
        if normalize_domain(domain).is_some() {
            return normalize_indicator_value(IndicatorKind::Email, v)
                .ok()
                .map(|e| (IndicatorKind::Email, e));
        }
    }
    let has_scheme = v.contains("://");
    let (host, path) = {
        let rest = if has_scheme {
            &v[v.find("://")? + 3..]
        } else {
            v
        };
        match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        }
    };
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host_only = host.split(':').next().unwrap_or(host);
    let host_ok = normalize_ip(host_only).is_some()
        || normalize_domain(host_only).is_some_and(|d| has_known_tld(&d));
    if !host_ok || v.contains(char::is_whitespace) {
        return None;
    }
    if path.is_empty() || path == "/" {
        if host_only == host && normalize_ip(host_only).is_none() {
            return normalize_domain(host).map(|d| (IndicatorKind::Domain, d));
        }
        if !has_scheme {
            return normalize_ip(host_only).map(|ip| (IndicatorKind::Ip, ip));
        }
    }
    if path.ends_with('/') {
        return normalize_indicator_value(IndicatorKind::UrlPrefix, v)
            .ok()
            .map(|p| (IndicatorKind::UrlPrefix, p));
    }
    normalize_indicator_value(IndicatorKind::Url, v)
        .ok()
        .map(|u| (IndicatorKind::Url, u))
}

/// Reads a type label as feeds write them (`SHA256`, `hostname`,
/// `ip-dst`, `URL`, `emailwhois`, ...). `None` for labels that are no
/// indicator type.
pub fn kind_label(label: &str) -> Option<IndicatorKind> {
    let l = label.trim().to_ascii_lowercase().replace([' ', '_'], "-");
    if l.starts_with("email") {
        return Some(IndicatorKind::Email);
    }
    Some(match l.as_str() {
        "sha256" | "sha-256" => IndicatorKind::Sha256,
        "sha1" | "sha-1" => IndicatorKind::Sha1,
        "md5" | "md-5" => IndicatorKind::Md5,
        "hash" | "filehash" | "file-hash" | "file" => IndicatorKind::Sha256, // refined by length
        "domain" | "hostname" | "host" | "fqdn" | "domain-name" => IndicatorKind::Domain,
        "url" | "uri" | "link" => IndicatorKind::Url,
        "url-prefix" => IndicatorKind::UrlPrefix,
        "ip" | "ipv4" | "ipv6" | "ip-dst" | "ip-src" | "ip-address" | "ipaddress" | "address" => {
            IndicatorKind::Ip
        }
        "cidr" | "network" | "subnet" => IndicatorKind::Cidr,
        "filename" | "file-name" => IndicatorKind::Filename,
        _ => return None,
    })
}

/// Whether a type label marks a row that is no indicator at all.
pub fn is_informational_label(label: &str) -> bool {
    matches!(
        label.trim().to_ascii_lowercase().as_str(),
        "description"
            | "comment"
            | "note"
            | "notes"
            | "reference"
            | "references"
            | "source"
            | "title"
            | "text"
    )
}

/// Resolves a labelled value: the label is a hint, the value decides when
/// they disagree (a "URL" column holding bare domains, a "file" type
/// holding a hash).
pub fn resolve(label: Option<IndicatorKind>, value: &str) -> Option<(IndicatorKind, String)> {
    let inferred = infer(value);
    match (label, inferred) {
        (Some(IndicatorKind::Email), _) => normalize_indicator_value(IndicatorKind::Email, value)
            .ok()
            .map(|v| (IndicatorKind::Email, v)),
        (Some(IndicatorKind::Filename), Some((k, v)))
            if matches!(
                k,
                IndicatorKind::Sha256 | IndicatorKind::Sha1 | IndicatorKind::Md5
            ) =>
        {
            Some((k, v))
        }
        (Some(IndicatorKind::Filename), _) => {
            normalize_indicator_value(IndicatorKind::Filename, value)
                .ok()
                .map(|v| (IndicatorKind::Filename, v))
        }
        (_, Some(found)) => Some(found),
        (Some(kind), None) => normalize_indicator_value(kind, value)
            .ok()
            .map(|v| (kind, v)),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refangs_common_spellings() {
        assert_eq!(refang("hxxps://evil[.]com/a"), "https://evil.com/a");
        assert_eq!(refang("evil(.)com"), "evil.com");
        assert_eq!(refang("evil[dot]com"), "evil.com");
        assert_eq!(refang("hXXp://1.2.3[.]4[:]8080/"), "http://1.2.3.4:8080/");
        assert_eq!(refang("x@evil[.]com"), "x@evil.com");
        assert_eq!(
            refang("https://news.example/a \u{200e}"),
            "https://news.example/a"
        );
    }

    #[test]
    fn infers_kinds() {
        use IndicatorKind::*;
        let k = |v: &str| infer(v).map(|x| x.0);
        assert_eq!(k(&"a".repeat(64)), Some(Sha256));
        assert_eq!(k("akamaicontainer.com"), Some(Domain));
        assert_eq!(k("http://akamaicontainer.com"), Some(Domain));
        assert_eq!(
            k("raw.githubusercontent.com/IconStorages/images/main/"),
            Some(UrlPrefix)
        );
        assert_eq!(k("https://x.com/a.ico"), Some(Url));
        assert_eq!(k("10.0.0.0/8"), Some(Cidr));
        assert_eq!(k("10.0.0.0/-1"), None);
        assert_eq!(k("1.2.3.4/33"), None);
        assert_eq!(k("2001:db8::/129"), None);
        assert_eq!(k("8.8.8.8"), Some(Ip));
        assert_eq!(k("philip.je@proton.me"), Some(Email));
        assert_eq!(k("icon0.ico"), None);
        assert_eq!(k("C2 (malware/callhome)"), None);
        assert_eq!(k("SHA256"), None);
    }

    #[test]
    fn value_beats_a_wrong_label() {
        assert_eq!(
            resolve(Some(IndicatorKind::Url), "akamaicontainer.com")
                .unwrap()
                .0,
            IndicatorKind::Domain
        );
        assert_eq!(
            resolve(Some(IndicatorKind::Sha256), &"b".repeat(32))
                .unwrap()
                .0,
            IndicatorKind::Md5
        );
        assert_eq!(
            resolve(Some(IndicatorKind::Filename), "ffmpeg.dll")
                .unwrap()
                .0,
            IndicatorKind::Filename
        );
        assert_eq!(
            resolve(Some(IndicatorKind::Email), "a@b.com").unwrap().0,
            IndicatorKind::Email
        );
    }
}
