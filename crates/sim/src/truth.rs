//! `truth.json`: every fact the simulator planted, to check detections
//! against.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use turncoat_core::{AlertKind, Platform, Time};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Truth {
    pub seed: u64,
    pub start: Time,
    pub days: u64,
    pub tenants: Vec<TenantTruth>,
    /// Endpoints that ran an affected version, per interval.
    pub exposures: Vec<Exposure>,
    /// Every (endpoint, indicator) the telemetry shows contact with.
    pub ioc_contacts: Vec<IocContact>,
    /// Periodic traffic, malicious and benign.
    pub beacons: Vec<Beacon>,
    pub second_stage: Vec<Drop>,
    /// Events written, by format.
    pub events: EventCounts,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TenantTruth {
    pub name: String,
    pub endpoints: Vec<EndpointTruth>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EndpointTruth {
    pub name: String,
    pub platform: Platform,
    pub ip: String,
    /// Every 3CX version it ran, clean or not.
    pub versions: Vec<VersionInterval>,
    pub compromised: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VersionInterval {
    pub version: String,
    pub from: Time,
    pub to: Option<Time>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exposure {
    pub tenant: String,
    pub endpoint: String,
    pub platform: Platform,
    pub version: String,
    pub from: Time,
    pub to: Option<Time>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IocContact {
    pub tenant: String,
    pub endpoint: String,
    /// The indicator as the intel pack lists it (normalised).
    pub indicator: String,
    pub first_seen: Time,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Beacon {
    pub tenant: String,
    pub endpoint: String,
    pub src_ip: String,
    pub fqdn: String,
    pub dst_ip: String,
    pub port: u16,
    /// Sleep between connections, in seconds (equal for a fixed period).
    pub min_interval_s: u64,
    pub max_interval_s: u64,
    pub first: Time,
    pub last: Time,
    pub connections: u64,
    pub malicious: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Drop {
    pub tenant: String,
    pub endpoint: String,
    pub path: String,
    pub sha256: String,
    pub time: Time,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct EventCounts {
    pub ecs: u64,
    pub zeek: u64,
    pub osquery: u64,
}

impl EventCounts {
    pub fn total(&self) -> u64 {
        self.ecs + self.zeek + self.osquery
    }
}

/// Found, missed and false alerts of one kind against the truth.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Score {
    pub kind: String,
    /// Whether the demo's verdict depends on it (beacons, found by timing
    /// alone, are shown but do not decide it).
    pub gating: bool,
    pub planted: usize,
    pub found: usize,
    pub missed: Vec<String>,
    pub false_alerts: Vec<String>,
}

/// One alert as the truth is compared with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alerted {
    pub kind: AlertKind,
    pub tenant: String,
    pub endpoint: String,
    /// The indicator, advisory id or destination name it is for.
    pub source: String,
}

type Fact = (String, String, String);

/// Compares one kind of alert, keyed by (tenant, endpoint, what), with the truth.
fn score(kind: &str, planted: BTreeSet<Fact>, alerted: BTreeSet<Fact>) -> Score {
    let show = |(t, e, s): &Fact| format!("{t}/{e}: {s}");
    Score {
        kind: kind.to_owned(),
        gating: true,
        planted: planted.len(),
        found: planted.intersection(&alerted).count(),
        missed: planted.difference(&alerted).map(show).collect(),
        false_alerts: alerted.difference(&planted).map(show).collect(),
    }
}

impl Truth {
    /// Scores IOC, exposure and beacon alerts against what was planted:
    /// exposure to `advisory`, and the malicious beacons active in the last
    /// `beacon_window_days` (what a pipeline analysing a rolling window can
    /// see). Beacons are shown but do not gate.
    pub fn score(
        &self,
        alerts: impl IntoIterator<Item = Alerted>,
        advisory: &str,
        beacon_window_days: i64,
    ) -> Vec<Score> {
        let alerts: Vec<Alerted> = alerts.into_iter().collect();
        let of_kind = |k: AlertKind| -> BTreeSet<Fact> {
            alerts
                .iter()
                .filter(|a| a.kind == k)
                .map(|a| (a.tenant.clone(), a.endpoint.clone(), a.source.clone()))
                .collect()
        };
        let ioc_truth = self
            .ioc_contacts
            .iter()
            .map(|c| (c.tenant.clone(), c.endpoint.clone(), c.indicator.clone()))
            .collect();
        let exposure_truth = self
            .exposures
            .iter()
            .map(|e| (e.tenant.clone(), e.endpoint.clone(), advisory.to_owned()))
            .collect();
        let day = turncoat_core::time::MICROS_PER_DAY;
        let window_start = Time(self.start.0 + self.days as i64 * day - beacon_window_days * day);
        let beacon_truth = self
            .beacons
            .iter()
            .filter(|b| b.malicious && b.last >= window_start)
            .map(|b| (b.tenant.clone(), b.endpoint.clone(), b.fqdn.clone()))
            .collect();
        let mut beacons = score("beacon", beacon_truth, of_kind(AlertKind::Beacon));
        beacons.gating = false;
        vec![
            score("ioc", ioc_truth, of_kind(AlertKind::Ioc)),
            score("exposure", exposure_truth, of_kind(AlertKind::Exposure)),
            beacons,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_are_scored_found_missed_and_false() {
        let contact = |endpoint: &str, indicator: &str| IocContact {
            tenant: "acme".into(),
            endpoint: endpoint.into(),
            indicator: indicator.into(),
            first_seen: Time(0),
        };
        let truth = Truth {
            ioc_contacts: vec![
                contact("ws-1", "evil.example"),
                contact("ws-2", "evil.example"),
            ],
            ..Truth::default()
        };
        let alert = |kind, endpoint: &str, source: &str| Alerted {
            kind,
            tenant: "acme".into(),
            endpoint: endpoint.into(),
            source: source.into(),
        };
        let scores = truth.score(
            [
                alert(AlertKind::Ioc, "ws-1", "evil.example"),
                alert(AlertKind::Ioc, "ws-3", "evil.example"),
                alert(AlertKind::Sigma, "ws-2", "evil.example"),
            ],
            "TC-1",
            7,
        );
        let ioc = &scores[0];
        assert_eq!((ioc.kind.as_str(), ioc.planted, ioc.found), ("ioc", 2, 1));
        assert_eq!(ioc.missed, ["acme/ws-2: evil.example"]);
        assert_eq!(ioc.false_alerts, ["acme/ws-3: evil.example"]);
        assert!(ioc.gating && !scores[2].gating);
    }
}
