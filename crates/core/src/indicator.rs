//! Indicators: observables that intel says are bad.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::UnknownName;
use crate::observable::{self, ObservableKind};
use crate::time::Time;

/// What an indicator matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum IndicatorKind {
    /// The domain and every subdomain of it.
    Domain,
    /// One URL exactly.
    Url,
    /// Every URL starting with this text.
    UrlPrefix,
    Ip,
    /// Every IP in a network.
    Cidr,
    Sha256,
    Sha1,
    Md5,
    Filename,
    /// Kept for the record (whois contacts); never matched.
    Email,
    /// A pattern turncoat cannot evaluate: stored and listed, never matched.
    Unsupported,
}

impl IndicatorKind {
    pub const ALL: [IndicatorKind; 11] = [
        IndicatorKind::Domain,
        IndicatorKind::Url,
        IndicatorKind::UrlPrefix,
        IndicatorKind::Ip,
        IndicatorKind::Cidr,
        IndicatorKind::Sha256,
        IndicatorKind::Sha1,
        IndicatorKind::Md5,
        IndicatorKind::Filename,
        IndicatorKind::Email,
        IndicatorKind::Unsupported,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IndicatorKind::Domain => "domain",
            IndicatorKind::Url => "url",
            IndicatorKind::UrlPrefix => "url-prefix",
            IndicatorKind::Ip => "ip",
            IndicatorKind::Cidr => "cidr",
            IndicatorKind::Sha256 => "sha256",
            IndicatorKind::Sha1 => "sha1",
            IndicatorKind::Md5 => "md5",
            IndicatorKind::Filename => "filename",
            IndicatorKind::Email => "email",
            IndicatorKind::Unsupported => "unsupported",
        }
    }

    /// The observable kind this indicator is matched against.
    pub fn observable_kind(self) -> Option<ObservableKind> {
        Some(match self {
            IndicatorKind::Domain => ObservableKind::Domain,
            IndicatorKind::Url | IndicatorKind::UrlPrefix => ObservableKind::Url,
            IndicatorKind::Ip | IndicatorKind::Cidr => ObservableKind::Ip,
            IndicatorKind::Sha256 => ObservableKind::Sha256,
            IndicatorKind::Sha1 => ObservableKind::Sha1,
            IndicatorKind::Md5 => ObservableKind::Md5,
            IndicatorKind::Filename => ObservableKind::Filename,
            IndicatorKind::Email | IndicatorKind::Unsupported => return None,
        })
    }

    /// How much one match of this kind says on its own.
    pub fn default_severity(self) -> crate::Severity {
        use crate::Severity::*;
        match self {
            IndicatorKind::Sha256 | IndicatorKind::Sha1 | IndicatorKind::Md5 => Critical,
            IndicatorKind::Domain | IndicatorKind::Url | IndicatorKind::UrlPrefix => High,
            IndicatorKind::Ip | IndicatorKind::Cidr => Medium,
            IndicatorKind::Filename => Low,
            IndicatorKind::Email | IndicatorKind::Unsupported => Info,
        }
    }
}

impl fmt::Display for IndicatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IndicatorKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        let lower = s.trim().to_ascii_lowercase();
        IndicatorKind::ALL
            .into_iter()
            .find(|k| k.as_str() == lower)
            .or(match lower.as_str() {
                "hostname" | "fqdn" | "domain-name" => Some(IndicatorKind::Domain),
                "ipv4" | "ipv6" | "ip-dst" | "ip-src" | "ip-addr" => Some(IndicatorKind::Ip),
                "sha-256" => Some(IndicatorKind::Sha256),
                "sha-1" => Some(IndicatorKind::Sha1),
                "md-5" => Some(IndicatorKind::Md5),
                "file" | "file-name" | "file_name" => Some(IndicatorKind::Filename),
                "url_prefix" | "urlprefix" => Some(IndicatorKind::UrlPrefix),
                _ => None,
            })
            .ok_or_else(|| UnknownName::new("indicator type", s))
    }
}

/// An extra condition an `AND` pattern puts on the same event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Condition {
    pub kind: IndicatorKind,
    pub value: String,
}

/// One piece of intel: an observable that is bad, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Indicator {
    pub kind: IndicatorKind,
    /// Normalised value (for `Unsupported`: the pattern text).
    pub value: String,
    /// Other observations the same event must also show (STIX `AND`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<Condition>,
    /// Feed or file the indicator came from.
    pub source: String,
    /// The producer's own id (a STIX indicator id, a MISP attribute uuid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// Advisory this indicator was published with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advisory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<u8>,
    /// When the source started vouching for it, usually the publication
    /// date. Earlier events still match (the retro-hunt is for exactly
    /// those): their findings are marked `before_valid_from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<Time>,
    /// Events after this time do not match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Time>,
    #[serde(default)]
    pub revoked: bool,
    /// Why an `Unsupported` indicator cannot be evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsupported_reason: Option<String>,
}

/// What matching and findings read of an indicator, borrowed: from an
/// [`Indicator`] ([`Indicator::as_ref`]), a stored row, or an index.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IndicatorRef<'a> {
    pub kind: IndicatorKind,
    pub value: &'a str,
    /// The feed or file it came from.
    pub source: &'a str,
    pub campaign: Option<&'a str>,
    /// Other observations the same event must also show.
    pub also: &'a [Condition],
    pub valid_from: Option<Time>,
    pub valid_until: Option<Time>,
    pub revoked: bool,
}

impl IndicatorRef<'_> {
    /// Whether an event at `at` can match: not revoked, not after
    /// `valid_until`. Vendors stamp `valid_from` with the publication date
    /// while the infrastructure was in use for weeks before, so an earlier
    /// event matches too, marked by [`IndicatorRef::before_valid_from`].
    pub fn valid_at(&self, at: Time) -> bool {
        !self.revoked && self.valid_until.is_none_or(|u| at <= u)
    }

    /// Whether an event at `at` predates the indicator's `valid_from`.
    pub fn before_valid_from(&self, at: Time) -> bool {
        self.valid_from.is_some_and(|f| at < f)
    }

    /// Whether the indicator ever matches anything.
    pub fn is_matchable(&self) -> bool {
        !self.revoked && self.kind.observable_kind().is_some()
    }
}

/// A value that does not make a valid indicator of the kind claimed.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
#[error("{} is not a valid {kind} indicator", crate::quote(value))]
pub struct InvalidIndicator {
    pub kind: IndicatorKind,
    pub value: String,
}

impl Indicator {
    /// A new indicator with its value normalised for its kind.
    pub fn new(
        kind: IndicatorKind,
        raw: &str,
        source: &str,
    ) -> Result<Indicator, InvalidIndicator> {
        Ok(Indicator {
            kind,
            value: normalize_indicator_value(kind, raw)?,
            also: Vec::new(),
            source: source.to_owned(),
            external_id: None,
            description: None,
            campaign: None,
            advisory: None,
            confidence: None,
            valid_from: None,
            valid_until: None,
            revoked: false,
            unsupported_reason: None,
        })
    }

    /// A pattern that is kept so that an analyst sees it, but never
    /// matched; a blank one is refused like any invalid value.
    pub fn unsupported(
        pattern: &str,
        reason: &str,
        source: &str,
    ) -> Result<Indicator, InvalidIndicator> {
        let mut i = Indicator::new(IndicatorKind::Unsupported, pattern, source)?;
        i.unsupported_reason = Some(reason.to_owned());
        Ok(i)
    }

    /// Whether an event at `at` falls within the indicator's validity.
    pub fn valid_at(&self, at: Time) -> bool {
        self.as_ref().valid_at(at)
    }

    /// Whether the indicator ever matches anything.
    pub fn is_matchable(&self) -> bool {
        self.as_ref().is_matchable()
    }

    /// What matching reads of it, borrowed.
    pub fn as_ref(&self) -> IndicatorRef<'_> {
        IndicatorRef {
            kind: self.kind,
            value: &self.value,
            source: &self.source,
            campaign: self.campaign.as_deref(),
            also: &self.also,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            revoked: self.revoked,
        }
    }
}

/// Normalises an indicator value as its kind requires.
pub fn normalize_indicator_value(
    kind: IndicatorKind,
    raw: &str,
) -> Result<String, InvalidIndicator> {
    let bad = || InvalidIndicator {
        kind,
        value: raw.to_owned(),
    };
    let v = match kind {
        IndicatorKind::Domain => observable::normalize_domain(raw),
        IndicatorKind::Url => observable::normalize_url(raw),
        IndicatorKind::UrlPrefix => normalize_url_prefix(raw),
        IndicatorKind::Ip => observable::normalize_ip(raw),
        IndicatorKind::Cidr => raw
            .trim()
            .parse::<ipnet::IpNet>()
            .ok()
            .map(|n| n.trunc().to_string())
            .or_else(|| {
                observable::normalize_ip(raw).map(|ip| {
                    if ip.contains(':') {
                        format!("{ip}/128")
                    } else {
                        format!("{ip}/32")
                    }
                })
            }),
        IndicatorKind::Sha256 => observable::normalize_hash(raw, 64),
        IndicatorKind::Sha1 => observable::normalize_hash(raw, 40),
        IndicatorKind::Md5 => observable::normalize_hash(raw, 32),
        IndicatorKind::Filename => observable::normalize_filename(raw),
        IndicatorKind::Email => {
            let t = raw.trim().to_lowercase();
            (t.contains('@') && !t.contains(char::is_whitespace)).then_some(t)
        }
        IndicatorKind::Unsupported => Some(raw.trim().to_owned()),
    };
    v.filter(|s| !s.is_empty()).ok_or_else(bad)
}

/// A URL prefix keeps its scheme when it has one (`https://x/a/`) and is
/// stored without it when it has none (`x/a/`), so that it matches URLs of
/// every scheme. Host case is folded; the path keeps its case.
fn normalize_url_prefix(raw: &str) -> Option<String> {
    let s = raw.trim();
    let (scheme, rest) = match s.find("://") {
        Some(i) => (Some(s[..i].to_ascii_lowercase()), &s[i + 3..]),
        None => (None, s),
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let host = observable::normalize_domain(&rest[..split])
        .or_else(|| observable::normalize_ip(&rest[..split]))
        .or_else(|| {
            // host:port
            let (h, p) = rest[..split].rsplit_once(':')?;
            p.parse::<u16>().ok()?;
            Some(format!("{}:{p}", observable::normalize_domain(h)?))
        })?;
    let tail = &rest[split..];
    Some(match scheme {
        Some(sc) => format!("{sc}://{host}{tail}"),
        None => format!("{host}{tail}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_by_kind() {
        let d = Indicator::new(IndicatorKind::Domain, "AkamaiContainer.com.", "t").unwrap();
        assert_eq!(d.value, "akamaicontainer.com");
        let p = Indicator::new(
            IndicatorKind::UrlPrefix,
            "raw.GitHubUserContent.com/IconStorages/images/main/",
            "t",
        )
        .unwrap();
        assert_eq!(
            p.value,
            "raw.githubusercontent.com/IconStorages/images/main/"
        );
        let c = Indicator::new(IndicatorKind::Cidr, "10.1.2.3/8", "t").unwrap();
        assert_eq!(c.value, "10.0.0.0/8");
        assert_eq!(
            Indicator::new(IndicatorKind::Cidr, "1.2.3.4", "t")
                .unwrap()
                .value,
            "1.2.3.4/32"
        );
        assert!(Indicator::new(IndicatorKind::Sha256, "abc", "t").is_err());
        assert!(Indicator::new(IndicatorKind::Email, "not-an-email", "t").is_err());
    }

    #[test]
    fn validity_window_and_revocation() {
        let mut i = Indicator::new(IndicatorKind::Ip, "1.2.3.4", "t").unwrap();
        i.valid_from = Some(Time(10));
        i.valid_until = Some(Time(20));
        assert!(i.valid_at(Time(9)), "earlier sightings match");
        assert!(i.as_ref().before_valid_from(Time(9)));
        assert!(i.valid_at(Time(10)));
        assert!(!i.as_ref().before_valid_from(Time(10)));
        assert!(i.valid_at(Time(20)));
        assert!(!i.valid_at(Time(21)));
        i.revoked = true;
        assert!(!i.valid_at(Time(15)));
    }
}
