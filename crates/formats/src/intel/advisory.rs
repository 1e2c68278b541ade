//! turncoat's advisory TOML: the form an analyst writes during an incident.
//!
//! ```toml
//! id = "TC-2023-0001"
//! title = "3CX Desktop App trojanized update"
//! published = "2023-03-30"
//! campaign = "SmoothOperator"          # optional
//! severity = "critical"                 # optional, default high
//! references = ["https://…"]
//! [[affected]]
//! product = "3CX Desktop App"
//! vendor = "3CX"
//! names = ["3CX Desktop App", "3CXDesktopApp"]
//! platforms = ["windows"]
//! ecosystem = "generic"
//! versions = ["18.12.407", "18.12.416"]
//! ranges = [{ introduced = "18.12.407", fixed = "18.12.422" }]
//! [[indicators]]
//! type = "domain"
//! value = "akamaicontainer.com"
//! description = "C2"                    # optional
//! ```

use serde::Deserialize;
use toml::Spanned;
use turncoat_core::{Advisory, Affected, Indicator, Severity, quote};

use super::infer::{kind_label, refang, resolve};
use super::{Intel, feed_name};
use crate::{Location, ReadIssue};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvisoryFile {
    id: String,
    title: String,
    published: Option<Spanned<Published>>,
    #[serde(default)]
    references: Vec<String>,
    campaign: Option<String>,
    severity: Option<String>,
    #[serde(default)]
    affected: Vec<Affected>,
    #[serde(default)]
    indicators: Vec<IndicatorEntry>,
}

/// The publication date, as a TOML date (`2023-03-30`) or quoted, as
/// analysts type it (`"2023-03-30"`, an RFC 3339 time).
#[derive(Deserialize)]
#[serde(untagged)]
enum Published {
    Date(toml::value::Datetime),
    Text(String),
}

impl Published {
    fn date(self) -> Result<toml::value::Datetime, PublishedError> {
        match self {
            Published::Date(d) => Ok(d),
            Published::Text(t) => t
                .trim()
                .parse()
                .map_err(|source| PublishedError { text: t, source }),
        }
    }
}

/// A quoted `published` that is not a date.
#[derive(Debug, thiserror::Error)]
#[error(
    "published {} is not a date (2023-03-30 or an RFC 3339 time)",
    quote(text)
)]
struct PublishedError {
    text: String,
    #[source]
    source: toml::value::DatetimeParseError,
}

/// Where each affected entry's versions and ranges are in the file: the
/// typed read drops spans, and a rejected version must name its line.
#[derive(Deserialize)]
struct AffectedSpans {
    #[serde(default)]
    affected: Vec<Spanned<AffectedEntrySpans>>,
}

#[derive(Deserialize)]
struct AffectedEntrySpans {
    #[serde(default)]
    versions: Vec<Spanned<toml::Value>>,
    #[serde(default)]
    ranges: Vec<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IndicatorEntry {
    #[serde(rename = "type")]
    kind: String,
    value: String,
    description: Option<String>,
}

/// Reads one advisory TOML file.
pub fn read(name: &str, bytes: &[u8]) -> Result<Intel, ReadIssue> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ReadIssue::new(
            name,
            Location::Offset(e.valid_up_to() as u64),
            "advisory is not UTF-8",
        )
    })?;
    let file: AdvisoryFile = toml::from_str(text).map_err(|e| {
        let location = e
            .span()
            .map(|s| Location::Line(crate::input::line_of_offset(bytes, s.start)))
            .unwrap_or_default();
        ReadIssue::new(name, location, e.message().to_owned())
    })?;
    if file.id.trim().is_empty() {
        return Err(ReadIssue::new(
            name,
            Location::Unknown,
            "advisory id is empty",
        ));
    }
    let severity = match &file.severity {
        Some(s) => s
            .parse::<Severity>()
            .map_err(|e| ReadIssue::new(name, Location::Unknown, e))?,
        None => Severity::High,
    };
    let mut intel = Intel::default();
    let feed = feed_name(name);
    for (i, entry) in file.indicators.iter().enumerate() {
        let location = Location::Record(i as u64 + 1);
        let hint = kind_label(&entry.kind);
        if hint.is_none() {
            intel.rejected.push(ReadIssue::new(
                name,
                location,
                format!("unknown indicator type {}", quote(&entry.kind)),
            ));
            continue;
        }
        // The analyst's type is authoritative unless the value says
        // otherwise (a hash given as "sha256" that is really an MD5).
        match resolve(hint, &refang(&entry.value)) {
            Some((kind, value)) => {
                let mut ind =
                    Indicator::new(kind, &value, &feed).expect("resolve returns valid values");
                ind.advisory = Some(file.id.clone());
                ind.campaign = file.campaign.clone().or_else(|| Some(file.title.clone()));
                ind.description = entry.description.clone();
                intel.indicators.push(ind);
            }
            None => intel.rejected.push(ReadIssue::new(
                name,
                location,
                format!(
                    "{} is not a valid {} indicator",
                    quote(&entry.value),
                    quote(&entry.kind)
                ),
            )),
        }
    }
    check_affected(name, bytes, text, &file.affected)?;
    let published = match file.published {
        Some(p) => {
            let line = crate::input::line_of_offset(bytes, p.span().start);
            let date = p
                .into_inner()
                .date()
                .map_err(|e| ReadIssue::new(name, Location::Line(line), e))?;
            Some(date.to_string())
        }
        None => None,
    };
    intel.advisories.push(Advisory {
        id: file.id,
        title: file.title,
        published,
        references: file.references,
        campaign: file.campaign,
        severity,
        affected: file.affected,
        indicators: Vec::new(),
        malicious: false,
    });
    Ok(intel)
}

/// Refuses the whole advisory when an affected entry lists nothing, or a
/// version or range that its ecosystem cannot order: such an entry would
/// match every version and raise exposure alerts for all of them.
fn check_affected(
    name: &str,
    bytes: &[u8],
    text: &str,
    affected: &[Affected],
) -> Result<(), ReadIssue> {
    let line_of = |span: std::ops::Range<usize>| {
        Location::Line(crate::input::line_of_offset(bytes, span.start))
    };
    // Spans are read only when something is wrong, so a good advisory is
    // parsed once.
    let spans = || toml::from_str::<AffectedSpans>(text).ok();
    for (i, a) in affected.iter().enumerate() {
        let entry = || spans().and_then(|s| s.affected.into_iter().nth(i));
        let fail = |location: Location, msg: &dyn std::fmt::Display| {
            Err(ReadIssue::new(
                name,
                location,
                format!("affected product {}: {msg}", quote(&a.product)),
            ))
        };
        if a.versions.is_empty() && a.ranges.is_empty() {
            let location = entry().map(|e| line_of(e.span())).unwrap_or_default();
            return fail(location, &"lists no versions or ranges");
        }
        for (j, v) in a.versions.iter().enumerate() {
            if let Err(e) = a.ecosystem.check_version(v) {
                let location = entry()
                    .and_then(|e| e.into_inner().versions.into_iter().nth(j))
                    .map(|v| line_of(v.span()))
                    .unwrap_or_default();
                return fail(location, &e);
            }
        }
        for (j, r) in a.ranges.iter().enumerate() {
            if let Err(e) = r.check(a.ecosystem) {
                let location = entry()
                    .and_then(|e| e.into_inner().ranges.into_iter().nth(j))
                    .map(|r| line_of(r.span()))
                    .unwrap_or_default();
                return fail(location, &e);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use turncoat_core::{Ecosystem, IndicatorKind, Platform};

    const TEXT: &str = r#"
id = "TC-2023-0001"
title = "3CX Desktop App trojanized update"
published = 2023-03-30
references = ["https://www.3cx.com/blog/news/desktopapp-security-alert/"]
[[affected]]
product = "3CX Desktop App"
vendor = "3CX"
names = ["3CX Desktop App", "3CXDesktopApp"]
platforms = ["windows"]
ecosystem = "generic"
versions = ["18.12.407", "18.12.416"]
[[affected]]
product = "3CX Desktop App"
platforms = ["macos"]
ranges = [{ introduced = "18.11.1213", fixed = "18.12.422" }]
[[indicators]]
type = "domain"
value = "akamaicontainer[.]com"
[[indicators]]
type = "bogus"
value = "x"
"#;

    #[test]
    fn reads_the_documented_shape() {
        let intel = read("3cx.toml", TEXT.as_bytes()).unwrap();
        let a = &intel.advisories[0];
        assert_eq!(a.id, "TC-2023-0001");
        assert_eq!(a.published.as_deref(), Some("2023-03-30"));
        assert_eq!(a.affected[0].platforms, vec![Platform::Windows]);
        assert!(a.affected[1].matches(
            "3CX Desktop App.app",
            "18.12.402",
            Some(Platform::Macos),
            Ecosystem::Generic
        ));
        assert_eq!(intel.indicators.len(), 1);
        assert_eq!(intel.indicators[0].kind, IndicatorKind::Domain);
        assert_eq!(
            intel.indicators[0].advisory.as_deref(),
            Some("TC-2023-0001")
        );
        assert_eq!(intel.rejected.len(), 1);
    }

    #[test]
    fn published_may_be_quoted_as_analysts_write_it() {
        let head = "id = \"TC-1\"\ntitle = \"t\"\n";
        for (published, want) in [
            ("\"2023-03-30\"", "2023-03-30"),
            ("2023-03-30", "2023-03-30"),
            ("\"2023-03-30T12:00:00Z\"", "2023-03-30T12:00:00Z"),
        ] {
            let text = format!("{head}published = {published}\n");
            let intel = read("a.toml", text.as_bytes()).unwrap();
            assert_eq!(intel.advisories[0].published.as_deref(), Some(want));
        }
        let err = read(
            "a.toml",
            format!("{head}published = \"last week\"\n").as_bytes(),
        )
        .unwrap_err();
        assert_eq!(err.location, Location::Line(3), "{err}");
        assert!(err.to_string().contains("last week"), "{err}");
    }

    #[test]
    fn errors_name_the_line() {
        let err = read("bad.toml", b"id = \"x\"\ntitle = \"t\"\nplatforms = 3\n").unwrap_err();
        assert_eq!(err.location, Location::Line(3), "{err}");
    }

    #[test]
    fn versions_that_do_not_parse_reject_the_advisory_at_their_line() {
        let head = "id = \"TC-9\"\ntitle = \"t\"\n[[affected]]\nproduct = \"App\"\n";
        for (body, line, needle) in [
            ("ranges = [{ introduced = \"zzz\" }]\n", 5, "zzz"),
            (
                "ranges = [\n  { fixed = \"2.0\" },\n  {},\n]\n",
                7,
                "no bounds",
            ),
            ("versions = [\"1.0\", \"\"]\n", 5, "empty"),
            (
                "ranges = [{ introduced = \"3.0\", fixed = \"2.0\" }]\n",
                5,
                "is not before",
            ),
        ] {
            let text = format!("{head}{body}");
            let err = read("a.toml", text.as_bytes()).unwrap_err();
            assert_eq!(err.location, Location::Line(line), "{body}: {err}");
            assert!(err.message.contains(needle), "{body}: {err}");
        }
        let empty = format!("{head}ecosystem = \"npm\"\n");
        let err = read("a.toml", empty.as_bytes()).unwrap_err();
        assert!(err.message.contains("no versions or ranges"), "{err}");
        assert_eq!(err.location, Location::Line(3), "{err}");
    }
}
