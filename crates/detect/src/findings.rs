//! Findings from matches, with the keys that make re-detection idempotent.
//!
//! An IOC finding is keyed by (observable, day): seeing the same value on
//! the same endpoint on the same day again updates the same finding. An
//! exposure finding is keyed by the ledger interval (product, version,
//! installed-from): importing the same advisory twice updates it in place.

use turncoat_core::advisory::Advisory;
use turncoat_core::{
    AlertKind, Evidence, Finding, FindingKey, IndicatorKind, IndicatorRef, Observable, Time,
};

/// What a matched indicator is called in an alert.
fn ioc_title(ind: &IndicatorRef<'_>, obs: &Observable) -> String {
    let what = match ind.kind {
        IndicatorKind::Sha256 | IndicatorKind::Sha1 | IndicatorKind::Md5 => "known-bad file hash",
        IndicatorKind::Domain => "contact with known-bad domain",
        IndicatorKind::Url | IndicatorKind::UrlPrefix => "request to known-bad URL",
        IndicatorKind::Ip | IndicatorKind::Cidr => "contact with known-bad IP",
        IndicatorKind::Filename => "known-bad file name",
        _ => "indicator match",
    };
    let mut title = format!(
        "{what} {}",
        if ind.kind == IndicatorKind::UrlPrefix {
            &obs.value
        } else {
            ind.value
        }
    );
    if let Some(c) = ind.campaign {
        title.push_str(&format!(" ({c})"));
    }
    title
}

/// An IOC finding for one observable seen on one endpoint on one day.
pub struct IocFinding<'a> {
    pub indicator: IndicatorRef<'a>,
    pub observable: &'a Observable,
    pub endpoint: &'a str,
    /// The day's first and last sighting and how many events; the
    /// evidence names the last.
    pub first_seen: Time,
    pub last_seen: Time,
    pub count: u64,
    /// Where the evidence came from.
    pub file: Option<String>,
    pub field: Option<String>,
}

impl IocFinding<'_> {
    pub fn finding(&self) -> Finding {
        Finding {
            endpoint: self.endpoint.to_owned(),
            kind: AlertKind::Ioc,
            source: self.indicator.value.to_owned(),
            title: ioc_title(&self.indicator, self.observable),
            severity: self.indicator.kind.default_severity(),
            campaign: self.indicator.campaign.map(str::to_owned),
            key: FindingKey::sighting(
                self.observable.kind,
                &self.observable.value,
                self.first_seen.day(),
            ),
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            count: self.count,
            evidence: Evidence {
                observed: self.observable.value.clone(),
                time: self.last_seen,
                file: self.file.clone(),
                detail: self.field.clone(),
                before_valid_from: self.indicator.before_valid_from(self.first_seen),
            },
        }
    }
}

/// An exposure finding: `endpoint` ran `product version` from `from` (to
/// `to`, or still).
#[allow(clippy::too_many_arguments)]
pub fn exposure_finding(
    advisory: &Advisory,
    affected: usize,
    endpoint: &str,
    name: &str,
    version: &str,
    from: Time,
    to: Option<Time>,
    file: Option<String>,
) -> Finding {
    let product = &advisory.affected[affected].product;
    let state = if to.is_some() { "ran" } else { "runs" };
    Finding {
        endpoint: endpoint.to_owned(),
        kind: AlertKind::Exposure,
        source: advisory.id.clone(),
        title: format!(
            "{state} {product} {version}, affected by {}: {}",
            advisory.id, advisory.title
        ),
        severity: advisory.severity,
        campaign: advisory.campaign.clone(),
        key: FindingKey::installed(name, version, from),
        first_seen: from,
        last_seen: to.unwrap_or(from),
        count: 1,
        evidence: Evidence {
            observed: format!("{name} {version}"),
            time: from,
            file,
            detail: to.map(|t| format!("removed {t}")),
            before_valid_from: false,
        },
    }
}
