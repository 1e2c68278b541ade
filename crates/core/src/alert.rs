//! Findings and alerts.
//!
//! A finding is one detection; alerts are findings deduplicated by
//! (tenant, endpoint, kind, source), with counts, first and last seen,
//! and a triage status.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::UnknownName;
use crate::time::Time;

/// What raised an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AlertKind {
    /// An indicator matched an observable.
    Ioc,
    /// An endpoint runs a version an advisory names.
    Exposure,
    Sigma,
    Beacon,
    Drift,
    Campaign,
}

impl AlertKind {
    pub const ALL: [AlertKind; 6] = [
        AlertKind::Ioc,
        AlertKind::Exposure,
        AlertKind::Sigma,
        AlertKind::Beacon,
        AlertKind::Drift,
        AlertKind::Campaign,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Ioc => "ioc",
            AlertKind::Exposure => "exposure",
            AlertKind::Sigma => "sigma",
            AlertKind::Beacon => "beacon",
            AlertKind::Drift => "drift",
            AlertKind::Campaign => "campaign",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AlertKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        AlertKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                UnknownName::expecting(
                    "alert kind",
                    s,
                    "ioc, exposure, sigma, beacon, drift, campaign",
                )
            })
    }
}

/// How urgent an alert is.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Severity {
    Info,
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        let l = s.to_ascii_lowercase();
        Severity::ALL
            .into_iter()
            .find(|k| k.as_str() == l)
            .or(match l.as_str() {
                "informational" => Some(Severity::Info),
                _ => None,
            })
            .ok_or_else(|| UnknownName::new("severity", s))
    }
}

/// Where an alert is in the analyst's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AlertStatus {
    #[default]
    New,
    Acknowledged,
    /// Someone is working on it (read as `in-progress` too, its former
    /// name).
    #[serde(alias = "in-progress")]
    Investigating,
    Resolved,
    FalsePositive,
    Suppressed,
    /// Closed by an allowlist entry that covers it.
    Allowlisted,
}

impl AlertStatus {
    pub const ALL: [AlertStatus; 7] = [
        AlertStatus::New,
        AlertStatus::Acknowledged,
        AlertStatus::Investigating,
        AlertStatus::Resolved,
        AlertStatus::FalsePositive,
        AlertStatus::Suppressed,
        AlertStatus::Allowlisted,
    ];

    /// Whether the alert still waits for someone: not resolved,
    /// dismissed, suppressed or allowlisted.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            AlertStatus::New | AlertStatus::Acknowledged | AlertStatus::Investigating
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::New => "new",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Investigating => "investigating",
            AlertStatus::Resolved => "resolved",
            AlertStatus::FalsePositive => "false-positive",
            AlertStatus::Suppressed => "suppressed",
            AlertStatus::Allowlisted => "allowlisted",
        }
    }
}

impl fmt::Display for AlertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AlertStatus {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        if s == "in-progress" {
            return Ok(AlertStatus::Investigating);
        }
        AlertStatus::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName::new("alert status", s))
    }
}

/// What was seen that raised a finding.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Evidence {
    /// The observed value (a domain, a URL, a version...).
    pub observed: String,
    /// When the evidence event happened.
    pub time: Time,
    /// The file the evidence was read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Event field, inventory source, or other detail naming where it was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Seen before the indicator's `valid_from` (a retro-hunt sighting
    /// from before the intel was published).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub before_valid_from: bool,
}

/// An alert's number, as the store gave it: what `alert status ID` and
/// the API name an alert by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertId(i64);

impl AlertId {
    pub fn new(id: i64) -> AlertId {
        AlertId(id)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for AlertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Text that is not an alert id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is no alert id (a number)")]
pub struct InvalidAlertId {
    text: String,
    #[source]
    source: std::num::ParseIntError,
}

impl FromStr for AlertId {
    type Err = InvalidAlertId;
    fn from_str(s: &str) -> Result<Self, InvalidAlertId> {
        s.trim()
            .parse()
            .map(AlertId)
            .map_err(|source| InvalidAlertId {
                text: s.to_owned(),
                source,
            })
    }
}

/// Who made a change, as the audit log records it: the command line, a
/// user of the console, an API token, or turncoat's own detection steps
/// (the alerts a retro-hunt raises from data someone brought in).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Actor {
    Cli,
    User(String),
    Token(String),
    Pipeline,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Cli => f.write_str("cli"),
            Actor::User(name) => write!(f, "user:{name}"),
            Actor::Token(id) => write!(f, "token:{id}"),
            Actor::Pipeline => f.write_str("turncoat"),
        }
    }
}

/// Reads back what [`Actor`]'s `Display` writes: a queued batch carries
/// its sender this way to the worker that commits it.
impl std::str::FromStr for Actor {
    type Err = String;

    fn from_str(s: &str) -> Result<Actor, String> {
        match s {
            "cli" => Ok(Actor::Cli),
            "turncoat" => Ok(Actor::Pipeline),
            _ => match s.split_once(':') {
                Some(("user", name)) if !name.is_empty() => Ok(Actor::User(name.to_owned())),
                Some(("token", id)) if !id.is_empty() => Ok(Actor::Token(id.to_owned())),
                _ => Err(format!("{s:?} names no actor")),
            },
        }
    }
}

/// What tells the findings of one alert apart: the same key twice is the
/// same finding, updated, never a second one. Made only here, one
/// constructor per kind of detection, so that every producer of a kind
/// (live, retro-hunt, a resumed run) spells it alike.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FindingKey(String);

impl FindingKey {
    /// An observable seen on a day (IOC sightings roll up per day).
    pub fn sighting(kind: crate::ObservableKind, value: &str, day: i64) -> FindingKey {
        FindingKey(format!("{kind}:{value}@{day}"))
    }

    /// A package version installed from a time (an exposure interval).
    pub fn installed(name: &str, version: &str, from: Time) -> FindingKey {
        FindingKey(format!("{name}@{version}@{}", from.as_micros()))
    }

    /// A rule's matches on one day.
    pub fn rule_day(day: i64) -> FindingKey {
        FindingKey(format!("day:{day}"))
    }

    /// A correlation's group on the day its window opened.
    pub fn correlation(group: &str, day: i64) -> FindingKey {
        FindingKey(format!("correlation:{group}:{day}"))
    }

    /// The one finding of a beacon's (source, destination) pair.
    pub fn pair() -> FindingKey {
        FindingKey("pair".into())
    }

    /// The one finding of a drift behaviour.
    pub fn drift() -> FindingKey {
        FindingKey("drift".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One detection on one endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub endpoint: String,
    pub kind: AlertKind,
    /// What detected it: the indicator value, the advisory id, the rule id.
    pub source: String,
    pub title: String,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// Distinguishes findings within one alert: the same key twice is the
    /// same finding.
    pub key: FindingKey,
    pub first_seen: Time,
    pub last_seen: Time,
    /// Events behind this finding.
    pub count: u64,
    pub evidence: Evidence,
}

#[cfg(test)]
mod tests {
    use super::{Actor, AlertStatus};

    #[test]
    fn actors_read_back_as_written() {
        for actor in [
            Actor::Cli,
            Actor::Pipeline,
            Actor::User("ana".into()),
            Actor::Token("17".into()),
        ] {
            assert_eq!(actor.to_string().parse::<Actor>(), Ok(actor));
        }
        for bad in ["", "user:", "root", "token"] {
            assert!(bad.parse::<Actor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn investigating_is_also_read_by_its_former_name() {
        assert_eq!("investigating".parse(), Ok(AlertStatus::Investigating));
        assert_eq!("in-progress".parse(), Ok(AlertStatus::Investigating));
        let json: AlertStatus = serde_json::from_str("\"in-progress\"").unwrap();
        assert_eq!(json, AlertStatus::Investigating);
        assert_eq!(AlertStatus::Investigating.to_string(), "investigating");
    }
}
