//! `truth.json`: every fact the simulator planted, to check detections
//! against.

use serde::{Deserialize, Serialize};
use turncoat_core::{Platform, Time};

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
