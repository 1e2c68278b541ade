//! Beacon analysis over connection records: offline over log files, or
//! over a tenant's archive.
//!
//! Connections come from Zeek `conn` and from endpoint network events (ECS
//! or Sysmon event 3, under Sigma names); Zeek `ssl` (SNI), `http` (Host)
//! and `dns` (answers) name the destination IPs; Zeek `dhcp` names the
//! sources. Pairs with a known name are grouped by (source, FQDN), so a
//! beacon rotating over a CDN's addresses stays one pair; the rest by
//! (source, destination IP). Memory is bounded by the number of pairs.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use serde::Serialize;
use turncoat_core::observable::{domain_within, normalize_domain};
use turncoat_core::{Event, Time, Value};
use turncoat_detect::beacon_score::{self, Series};
use turncoat_formats::{Input, Location, ReadIssue, ReadOptions, Record, Sink, read_telemetry};
use turncoat_store::{AllowEntry, AllowKind, InternalNetwork};

use crate::{EngineError, Result};

/// One scored pair, most suspicious first in a report.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BeaconRow {
    pub src: String,
    /// The destination IP (or, for name-only records, the name).
    pub dst: String,
    pub fqdn: Option<String>,
    pub count: u64,
    pub score: f64,
    pub ts_score: f64,
    pub ds_score: f64,
    pub dur_score: f64,
    pub hist_score: f64,
    /// Internal sources that contact this destination.
    pub sharing_sources: usize,
    /// Internal sources seen in the window.
    pub internal_sources: usize,
    /// `sharing_sources / internal_sources`: external sources (scanners
    /// reaching a sensor's public address) never count.
    pub prevalence: f64,
    /// Share of the window over which the destination was contacted.
    pub longevity: f64,
    /// `score × (1 − weight(prevalence) × breadth × longevity)`, breadth
    /// being `min(1, (sharing_sources − 1) / 2)` and the weight
    /// `min(0.45, 2 × prevalence)` up to half of the internal sources, the
    /// prevalence itself beyond: a destination polled alike by several
    /// internal hosts throughout the window ranks lower (an update or time
    /// service), but a high raw score falls below 0.5 only when most of
    /// them poll it; one polled by a single host keeps its raw score.
    pub rank_score: f64,
    pub first_seen: Time,
    pub last_seen: Time,
    pub median_interval_s: f64,
}

impl BeaconRow {
    /// The ranking formula with this row's numbers.
    pub fn explain(&self) -> String {
        format!(
            "rank {:.3} = score {:.3} × (1 − weight {:.2} (prevalence {:.2}: {} of {} internal sources) × breadth {:.2} × longevity {:.2})",
            self.rank_score,
            self.score,
            sharing_weight(self.prevalence),
            self.prevalence,
            self.sharing_sources,
            self.internal_sources,
            breadth(self.sharing_sources),
            self.longevity
        )
    }
}

/// How much sharing counts by the number of hosts: nothing for one host,
/// fully from three.
fn breadth(sharing_sources: usize) -> f64 {
    (sharing_sources.saturating_sub(1) as f64 / 2.0).min(1.0)
}

/// How much sharing counts by the share of internal hosts: quickly up to
/// 0.45 (what a quarter of the fleet polls alike is a service), and only
/// past half of the fleet enough to bury a perfect score below 0.5.
fn sharing_weight(prevalence: f64) -> f64 {
    if prevalence > 0.5 {
        prevalence
    } else {
        (2.0 * prevalence).min(0.45)
    }
}

/// See [`BeaconRow::rank_score`].
fn rank(score: f64, prevalence: f64, sharing_sources: usize, longevity: f64) -> f64 {
    score * (1.0 - sharing_weight(prevalence) * breadth(sharing_sources) * longevity)
}

/// A pair connecting too often to be a beacon.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StrobeRow {
    pub src: String,
    pub dst: String,
    pub fqdn: Option<String>,
    pub count: u64,
}

/// A connection held open for a long time.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LongConnectionRow {
    pub src: String,
    pub dst: String,
    pub fqdn: Option<String>,
    pub longest_s: f64,
}

/// One row of a report's ranked list: beacons by rank, then strobes, then
/// long connections.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "class", rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RankedRow<'a> {
    Beacon(&'a BeaconRow),
    Strobe(&'a StrobeRow),
    LongConnection(&'a LongConnectionRow),
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct BeaconReport {
    pub beacons: Vec<BeaconRow>,
    pub strobes: Vec<StrobeRow>,
    pub long_connections: Vec<LongConnectionRow>,
    pub pairs: usize,
    pub connections: u64,
    pub skipped_records: u64,
    /// Paths inside the directories given that were not read, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unread: Vec<String>,
}

impl BeaconReport {
    /// Every pair reported, beacons first (ranked), then strobes and long
    /// connections.
    pub fn ranked(&self) -> Vec<RankedRow<'_>> {
        let beacons = self.beacons.iter().map(RankedRow::Beacon);
        let strobes = self.strobes.iter().map(RankedRow::Strobe);
        let long = self.long_connections.iter().map(RankedRow::LongConnection);
        beacons.chain(strobes).chain(long).collect()
    }
}

/// Which addresses are a tenant's own. Only internal sources are analysed
/// and counted, as RITA does: private and unique-local ranges, configured
/// ranges (`turncoat network internal add`), and hosts known by name (from
/// DHCP or an agent). Pairs between two internal addresses are left out
/// unless asked for.
#[derive(Clone, Debug, Default)]
pub struct Networks {
    internal: Vec<IpNet>,
    include_internal: bool,
}

impl Networks {
    pub fn new(entries: &[InternalNetwork], include_internal: bool) -> Networks {
        Networks {
            internal: entries.iter().filter_map(|e| net(&e.cidr)).collect(),
            include_internal,
        }
    }

    /// Checks that `value` is an IP or CIDR; returns its normal form.
    pub fn validate(value: &str) -> std::result::Result<String, InvalidEntry> {
        net(value.trim())
            .map(|n| n.trunc().to_string())
            .ok_or_else(|| InvalidEntry::new(value, "IP or CIDR"))
    }

    fn is_internal(&self, ip: IpAddr) -> bool {
        let private = match ip {
            IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local()
            }
        };
        private || self.internal.iter().any(|n| n.contains(&ip))
    }

    /// Host names are internal: DHCP or an agent named them.
    fn source_is_internal(&self, src: &str) -> bool {
        src.parse::<IpAddr>()
            .map_or(true, |ip| self.is_internal(ip))
    }

    /// Whether a destination can be a beacon's: never multicast,
    /// broadcast, link-local, loopback or unspecified; an internal one only
    /// when internal pairs are asked for. Names (proxy records) can.
    fn destination_counts(&self, dst: &str) -> bool {
        let Ok(ip) = dst.parse::<IpAddr>() else {
            return true;
        };
        let never = match ip {
            IpAddr::V4(v4) => {
                v4.is_multicast()
                    || v4.is_broadcast()
                    || v4.is_link_local()
                    || v4.is_loopback()
                    || v4.is_unspecified()
            }
            IpAddr::V6(v6) => {
                v6.is_multicast()
                    || v6.is_unicast_link_local()
                    || v6.is_loopback()
                    || v6.is_unspecified()
            }
        };
        !never && (self.include_internal || !self.is_internal(ip))
    }
}

/// Destinations and sources exempt from beacon analysis. Built from the
/// stored entries at analysis time, so a new entry reaches data already
/// ingested without re-import.
#[derive(Clone, Debug, Default)]
pub struct Allowlist {
    domains: Vec<String>,
    dst_nets: Vec<IpNet>,
    sources: Vec<String>,
    src_nets: Vec<IpNet>,
}

/// A value given for an allowlist entry or internal network that is not
/// of the kind it must be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is no {expected}")]
pub struct InvalidEntry {
    value: String,
    expected: &'static str,
}

impl InvalidEntry {
    fn new(value: &str, expected: &'static str) -> InvalidEntry {
        InvalidEntry {
            value: value.to_owned(),
            expected,
        }
    }
}

/// An IP or CIDR as a network.
fn net(value: &str) -> Option<IpNet> {
    value
        .parse::<IpNet>()
        .ok()
        .or_else(|| value.parse::<IpAddr>().ok().map(IpNet::from))
}

impl Allowlist {
    /// Checks that `value` can be an entry of this kind; returns its normal form.
    pub fn validate(kind: AllowKind, value: &str) -> std::result::Result<String, InvalidEntry> {
        if let Some(n) = net(value.trim()) {
            return Ok(n.trunc().to_string());
        }
        match kind {
            AllowKind::Destination => normalize_domain(value)
                .ok_or_else(|| InvalidEntry::new(value, "domain, IP or CIDR")),
            AllowKind::Source => {
                let v = value.trim();
                (!v.is_empty() && !v.contains(char::is_whitespace))
                    .then(|| v.to_owned())
                    .ok_or_else(|| InvalidEntry::new(value, "host name, IP or CIDR"))
            }
        }
    }

    pub fn new(entries: &[AllowEntry]) -> Allowlist {
        let mut a = Allowlist::default();
        for e in entries {
            match (e.kind, net(&e.value)) {
                (AllowKind::Destination, Some(n)) => a.dst_nets.push(n),
                (AllowKind::Destination, None) => a.domains.extend(normalize_domain(&e.value)),
                (AllowKind::Source, Some(n)) => a.src_nets.push(n),
                (AllowKind::Source, None) => a.sources.push(e.value.clone()),
            }
        }
        a
    }

    fn source_allowed(&self, src: &str) -> bool {
        self.sources.iter().any(|s| s.eq_ignore_ascii_case(src))
            || src
                .parse::<IpAddr>()
                .is_ok_and(|ip| self.src_nets.iter().any(|n| n.contains(&ip)))
    }

    /// Whether traffic to `ip` (or the name `fqdn`) is exempt.
    pub fn destination_allowed(&self, ip: &str, fqdn: Option<&str>) -> bool {
        ip.parse::<IpAddr>()
            .is_ok_and(|ip| self.dst_nets.iter().any(|n| n.contains(&ip)))
            || fqdn.is_some_and(|f| self.domains.iter().any(|d| domain_within(f, d)))
    }
}

/// Connections held open longer than this are reported apart.
const LONG_CONNECTION_S: f64 = 3600.0;

/// Accumulates connection records.
#[derive(Default)]
pub struct Analyzer {
    since: Option<Time>,
    /// (source, destination IP or name) → series.
    pairs: HashMap<(String, String), Series>,
    /// (source, IP) → name from SNI, Host or DNS answers.
    names: HashMap<(String, String), String>,
    /// Source IP → host name from DHCP.
    hosts: HashMap<String, String>,
    window: Option<(Time, Time)>,
    connections: u64,
    allow: Allowlist,
    networks: Networks,
}

fn num(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Int(i) => Some(*i as f64),
        Value::Float(x) => Some(*x),
        Value::Str(s) => s.parse().ok(),
        _ => None,
    }
}

impl Analyzer {
    pub fn new(since: Option<Time>, allow: Allowlist, networks: Networks) -> Analyzer {
        Analyzer {
            since,
            allow,
            networks,
            ..Default::default()
        }
    }

    fn source(&self, e: &Event) -> String {
        self.hosts
            .get(&e.host)
            .cloned()
            .unwrap_or_else(|| e.host.clone())
    }

    /// Takes one event: a connection, a name for one, or neither.
    pub fn event(&mut self, e: &Event) {
        if self.since.is_some_and(|s| e.time < s) {
            return;
        }
        let f = &e.fields;
        let zeek = e.logsource.product.as_deref() == Some("zeek");
        let service = e.logsource.service.as_deref().unwrap_or("");
        if zeek && service == "dhcp" {
            if let (Some(ip), Some(host)) = (f.get_str("assigned_addr"), f.get_str("host_name")) {
                self.hosts.insert(ip.to_owned(), host.to_owned());
            }
            return;
        }
        let src = self.source(e);
        if zeek {
            let Some(dst) = f.get_str("id.resp_h") else {
                return;
            };
            match service {
                "conn" => self.connection(
                    src,
                    dst.to_owned(),
                    None,
                    e.time,
                    num(f.get("orig_bytes")),
                    num(f.get("duration")),
                ),
                "ssl" => self.name(src, dst, f.get_str("server_name")),
                "http" => self.name(src, dst, f.get_str("host")),
                "dns" => {
                    if let (Some(query), Some(answers)) = (f.get_str("query"), f.get("answers")) {
                        for a in answers.strings() {
                            self.names
                                .insert((src.clone(), a.to_owned()), query.to_ascii_lowercase());
                        }
                    }
                }
                _ => {}
            }
            return;
        }
        if e.logsource.category.as_deref() == Some("proxy")
            && let Some(host) = f.get_str("cs-host").and_then(normalize_domain)
        {
            // A proxy or agent web record knows the name, not the address.
            self.connection(src, host.clone(), Some(host), e.time, None, None);
            return;
        }
        if e.logsource.category.as_deref() == Some("network_connection")
            && let Some(dst) = f.get_str("DestinationIp")
        {
            let name = f
                .get_str("DestinationHostname")
                .map(str::to_ascii_lowercase);
            self.connection(
                src,
                dst.to_owned(),
                name,
                e.time,
                num(f.get("source.bytes")),
                None,
            );
        }
    }

    fn name(&mut self, src: String, ip: &str, name: Option<&str>) {
        if let Some(n) = name.filter(|n| !n.is_empty() && *n != "-") {
            self.names
                .insert((src, ip.to_owned()), n.to_ascii_lowercase());
        }
    }

    fn connection(
        &mut self,
        src: String,
        dst: String,
        name: Option<String>,
        time: Time,
        bytes: Option<f64>,
        duration: Option<f64>,
    ) {
        self.connections += 1;
        self.window = Some(match self.window {
            Some((a, b)) => (a.min(time), b.max(time)),
            None => (time, time),
        });
        if let Some(n) = name {
            self.names.insert((src.clone(), dst.clone()), n);
        }
        self.pairs.entry((src, dst)).or_default().add(
            time,
            bytes.map(|b| b.max(0.0) as u64),
            duration,
        );
    }

    /// The connections from `src` to `dst` (a name where the pair is
    /// known by one, as [`BeaconRow::fqdn`], else an address), each
    /// address of a name merged, in time order. At most the kept samples
    /// per address (`beacon_score::MAX_SAMPLES`).
    pub fn pair_times(&self, src: &str, dst: &str) -> Vec<Time> {
        let mut times: Vec<Time> = self
            .pairs
            .iter()
            .filter(|((s, ip), _)| {
                s == src
                    && match self.names.get(&(s.clone(), ip.clone())) {
                        Some(name) => name == dst,
                        None => ip == dst,
                    }
            })
            .flat_map(|(_, series)| series.times.iter().copied())
            .collect();
        times.sort_unstable();
        times
    }

    /// Scores every pair and ranks them.
    pub fn finish(self, min_score: f64) -> BeaconReport {
        let Analyzer {
            pairs,
            names,
            window,
            connections,
            allow,
            networks,
            ..
        } = self;
        let mut report = BeaconReport {
            pairs: pairs.len(),
            connections,
            ..Default::default()
        };
        let Some((start, end)) = window else {
            return report;
        };
        let mut internal_sources: BTreeSet<&str> = BTreeSet::new();
        // Group by name where one is known, keeping the addresses used.
        let mut grouped: HashMap<(&str, String, Option<String>), Group> = HashMap::new();
        for ((src, ip), series) in &pairs {
            let fqdn = names.get(&(src.clone(), ip.clone())).cloned();
            if allow.source_allowed(src) || allow.destination_allowed(ip, fqdn.as_deref()) {
                continue;
            }
            if !networks.source_is_internal(src) {
                continue;
            }
            internal_sources.insert(src);
            if !networks.destination_counts(ip) {
                continue;
            }
            let key = match &fqdn {
                Some(n) => (src.as_str(), n.clone(), fqdn),
                None => (src.as_str(), ip.clone(), None),
            };
            let group = grouped.entry(key).or_default();
            group.series.merge(series);
            *group.addresses.entry(ip).or_default() += series.count;
        }
        // Per destination: the internal sources contacting it, and when.
        let mut destinations: HashMap<&str, (BTreeSet<&str>, Time, Time)> = HashMap::new();
        for ((src, dst, _), group) in &grouped {
            let (first, last) = (
                group.series.first.unwrap_or(start),
                group.series.last.unwrap_or(end),
            );
            let d = destinations
                .entry(dst.as_str())
                .or_insert_with(|| (BTreeSet::new(), first, last));
            d.0.insert(src);
            d.1 = d.1.min(first);
            d.2 = d.2.max(last);
        }
        let window_us = (end.0 - start.0).max(1) as f64;
        for ((src, dst, fqdn), group) in &grouped {
            let series = &group.series;
            // The address most used, for a pair known by name.
            let address = group
                .addresses
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                .map_or_else(|| dst.clone(), |(ip, _)| (*ip).clone());
            if series.longest_s > LONG_CONNECTION_S {
                report.long_connections.push(LongConnectionRow {
                    src: (*src).to_owned(),
                    dst: address.clone(),
                    fqdn: fqdn.clone(),
                    longest_s: series.longest_s,
                });
            }
            if series.is_strobe() {
                report.strobes.push(StrobeRow {
                    src: (*src).to_owned(),
                    dst: address,
                    fqdn: fqdn.clone(),
                    count: series.count,
                });
                continue;
            }
            let Some(s) = beacon_score::score(&series.times, &series.bytes, start, end) else {
                continue;
            };
            let (sharing, first, last) = &destinations[dst.as_str()];
            let sharing = sharing.len();
            let prevalence = sharing as f64 / internal_sources.len().max(1) as f64;
            let longevity = ((last.0 - first.0) as f64 / window_us).clamp(0.0, 1.0);
            let rank_score = rank(s.score, prevalence, sharing, longevity);
            if rank_score < min_score {
                continue;
            }
            report.beacons.push(BeaconRow {
                src: (*src).to_owned(),
                dst: address,
                fqdn: fqdn.clone(),
                count: series.count,
                score: s.score,
                ts_score: s.ts,
                ds_score: s.ds,
                dur_score: s.dur,
                hist_score: s.hist,
                sharing_sources: sharing,
                internal_sources: internal_sources.len(),
                prevalence,
                longevity,
                rank_score,
                first_seen: series.first.unwrap_or(start),
                last_seen: series.last.unwrap_or(end),
                median_interval_s: s.median_interval_s,
            });
        }
        report.beacons.sort_by(|a, b| {
            b.rank_score
                .total_cmp(&a.rank_score)
                .then_with(|| (&a.src, &a.dst).cmp(&(&b.src, &b.dst)))
        });
        // Ties are broken by the pair, so that a report reads the same
        // from run to run whatever the maps' order.
        report.strobes.sort_by(|a, b| {
            (b.count.cmp(&a.count)).then_with(|| (&a.src, &a.dst).cmp(&(&b.src, &b.dst)))
        });
        report.long_connections.sort_by(|a, b| {
            b.longest_s
                .total_cmp(&a.longest_s)
                .then_with(|| (&a.src, &a.dst).cmp(&(&b.src, &b.dst)))
        });
        report
    }
}

/// A pair's connections, over the addresses of its destination.
#[derive(Default)]
struct Group<'a> {
    series: Series,
    /// Address → connections to it.
    addresses: HashMap<&'a String, u64>,
}

struct AnalyzerSink<'a> {
    analyzer: &'a mut Analyzer,
    skipped: u64,
}

impl Sink for AnalyzerSink<'_> {
    fn record(&mut self, record: Record, _: Location) {
        if let Record::Event(e) = record {
            self.analyzer.event(&e);
        }
    }
    fn skipped(&mut self, _: ReadIssue) {
        self.skipped += 1;
    }
}

/// Analyses log files directly, without a data directory. DHCP logs are
/// read first so that sources are named whatever the order given.
pub fn beacons_offline(
    paths: &[PathBuf],
    since: Option<Time>,
    min_score: f64,
    allow: Allowlist,
    networks: Networks,
) -> Result<BeaconReport> {
    let walk = turncoat_walk::walk(paths, &turncoat_walk::WalkOptions::all_files());
    let mut files: Vec<&Path> = walk.paths().collect();
    files.sort_by_key(|p| {
        !p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("dhcp"))
    });
    let mut analyzer = Analyzer::new(since, allow, networks);
    let mut skipped = 0;
    for path in &files {
        let mut input = Input::open(path).map_err(|e| EngineError::Input {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let mut sink = AnalyzerSink {
            analyzer: &mut analyzer,
            skipped: 0,
        };
        // Files that are no telemetry (a README beside the logs) are skipped.
        if read_telemetry(&mut input, None, &ReadOptions::default(), &mut sink).is_err() {
            skipped += 1;
        }
        skipped += sink.skipped;
    }
    let mut report = analyzer.finish(min_score);
    report.skipped_records = skipped;
    report.unread = walk.unread();
    Ok(report)
}

/// Attaches intel that arrived after a beacon alert was raised: the alert
/// gains the indicator in its title, the campaign, and a higher severity.
pub fn attach_intel(
    store: &mut dyn turncoat_store::Store,
    tenant: &turncoat_store::Tenant,
    intel: &turncoat_detect::IndicatorIndex,
) -> Result<turncoat_store::FindingsOutcome> {
    use turncoat_core::{AlertKind, Finding, Observable, ObservableKind, Severity};
    let filter = turncoat_store::AlertFilter {
        kind: Some(AlertKind::Beacon),
        ..Default::default()
    };
    let mut findings = Vec::new();
    for a in store.alerts(&turncoat_store::Scope::tenant(tenant), &filter)? {
        let candidates = [
            Observable::new(ObservableKind::Domain, &a.source),
            Observable::new(ObservableKind::Ip, &a.evidence.observed),
        ];
        let mut hit = None;
        for obs in candidates.iter().flatten() {
            intel.lookup(obs, |i| hit = hit.or(Some(i)));
        }
        let Some(ind) = hit.map(|i| intel.get(i)) else {
            continue;
        };
        let title = if a.title.contains("; known-bad") {
            a.title.clone()
        } else {
            format!("{}; known-bad {} {}", a.title, ind.kind, ind.value)
        };
        findings.push((
            Finding {
                endpoint: a.endpoint.clone(),
                kind: AlertKind::Beacon,
                source: a.source.clone(),
                title,
                severity: Severity::High,
                campaign: ind.campaign.map(str::to_owned),
                key: turncoat_core::FindingKey::pair(),
                first_seen: a.first_seen,
                last_seen: a.last_seen,
                count: a.count,
                evidence: a.evidence.clone(),
            },
            None,
        ));
    }
    Ok(store.record_findings(tenant, &findings, turncoat_store::FindingMode::NewIntel)?)
}

/// Ranked score from which a pair becomes an alert (`beacons --raise`,
/// and after every ingest of connection records).
pub const DEFAULT_ALERT_THRESHOLD: f64 = 0.6;

/// The window the pipeline analyses after an ingest: the last week of the
/// tenant's archive, as RITA analyses a rolling window.
pub const PIPELINE_WINDOW_DAYS: i64 = 7;

/// The pipeline step: analyses the tenant's last [`PIPELINE_WINDOW_DAYS`]
/// of stored connections (allowlists applied) and raises the pairs ranked
/// at or above `threshold` ([`DEFAULT_ALERT_THRESHOLD`] unless configured). Reads only the archive hours in
/// the window, so its cost does not grow with the archive.
pub fn analyze_recent(
    store: &mut dyn turncoat_store::Store,
    tenant: &turncoat_store::Tenant,
    threshold: f64,
    intel: &turncoat_detect::IndicatorIndex,
) -> Result<turncoat_store::FindingsOutcome> {
    let Some((_, end)) = store.archive_span(tenant)? else {
        return Ok(Default::default());
    };
    let since = Time(end.0 - PIPELINE_WINDOW_DAYS * turncoat_core::time::MICROS_PER_DAY);
    let report = analyze_stored(store, tenant, Some(since), threshold, false)?;
    raise(store, tenant, &report, threshold, intel)
}

/// Adds an allowlist entry (for `tenant`, or every tenant) and closes the
/// open beacon alerts it covers, as the entry would have kept them from
/// being raised: source host or address, destination IP or name.
pub fn allow(
    store: &mut dyn turncoat_store::Store,
    tenant: Option<&turncoat_store::Tenant>,
    entry: &turncoat_store::NewAllowEntry<'_>,
    actor: &turncoat_core::Actor,
) -> Result<turncoat_store::AllowAdded> {
    let value = Allowlist::validate(entry.kind, entry.value)?;
    let entry = turncoat_store::NewAllowEntry {
        value: &value,
        ..*entry
    };
    let allow = Allowlist::new(&[AllowEntry {
        id: 0,
        tenant: None,
        kind: entry.kind,
        value: value.clone(),
        reason: String::new(),
        added: Time(0),
    }]);
    let scope = match tenant {
        Some(t) => turncoat_store::Scope::tenant(t),
        None => store.all_tenants()?,
    };
    let filter = turncoat_store::AlertFilter {
        kind: Some(turncoat_core::AlertKind::Beacon),
        ..Default::default()
    };
    let covered: Vec<turncoat_core::AlertId> = store
        .alerts(&scope, &filter)?
        .into_iter()
        .filter(|a| {
            // A beacon alert names the source host as its endpoint, the
            // destination's name (or IP) as its source and the IP observed.
            allow.source_allowed(&a.endpoint)
                || allow.destination_allowed(&a.evidence.observed, Some(&a.source))
        })
        .map(|a| a.id)
        .collect();
    Ok(store.add_allow(tenant, &entry, &covered, actor)?)
}

/// Analyses a tenant's stored connection records from `since` on, with the
/// tenant's (and the global) allowlist and internal networks applied;
/// pairs between internal addresses only with `include_internal`.
pub fn analyze_stored(
    store: &dyn turncoat_store::Store,
    tenant: &turncoat_store::Tenant,
    since: Option<Time>,
    min_score: f64,
    include_internal: bool,
) -> Result<BeaconReport> {
    let scope = turncoat_store::Scope::tenant(tenant);
    let allow = Allowlist::new(&store.allowlist(&scope)?);
    let networks = Networks::new(&store.internal_networks(&scope)?, include_internal);
    let mut analyzer = Analyzer::new(since, allow, networks);
    store.scan_archive(tenant, since, PROJECTION, &mut |e| analyzer.event(&e))?;
    Ok(analyzer.finish(min_score))
}

/// The connections of one pair of a tenant's stored records, as
/// [`Analyzer::pair_times`] gives them: what a pair's inter-arrival
/// histogram and timeline are drawn from.
pub fn pair_connections(
    store: &dyn turncoat_store::Store,
    tenant: &turncoat_store::Tenant,
    src: &str,
    dst: &str,
) -> Result<Vec<Time>> {
    let scope = turncoat_store::Scope::tenant(tenant);
    let networks = Networks::new(&store.internal_networks(&scope)?, true);
    let mut analyzer = Analyzer::new(None, Allowlist::default(), networks);
    store.scan_archive(tenant, None, PROJECTION, &mut |e| analyzer.event(&e))?;
    Ok(analyzer.pair_times(src, dst))
}

/// What [`Analyzer::event`] reads of the archive; nothing else is decoded.
pub const PROJECTION: turncoat_store::Projection<'static> = turncoat_store::Projection {
    records: &beacon_records,
    fields: &beacon_fields,
};

/// The archived records [`Analyzer::event`] reads: Zeek's (connections,
/// and the DNS, TLS, HTTP and DHCP records that name their ends), proxy
/// and network-connection events.
fn beacon_records(head: &turncoat_store::RecordHead<'_>) -> bool {
    reads(head.product, head.category)
}

/// Whether records of this product and category feed the analysis: an
/// ingest that stores any makes a new analysis due (a DNS or TLS record
/// may name a pair whose connections came before).
pub(crate) fn reads(product: Option<&str>, category: Option<&str>) -> bool {
    product == Some("zeek") || matches!(category, Some("proxy" | "network_connection"))
}

/// The fields [`Analyzer::event`] reads. A record's other fields (most of
/// a Zeek `conn` line) are stepped over in the archive, not built.
fn beacon_fields(name: &str) -> bool {
    matches!(
        name,
        "id.resp_h"
            | "orig_bytes"
            | "duration"
            | "server_name"
            | "host"
            | "query"
            | "answers"
            | "assigned_addr"
            | "host_name"
            | "cs-host"
            | "DestinationIp"
            | "DestinationHostname"
            | "source.bytes"
    )
}

/// Records the report's pairs ranked at or above `threshold` as alerts of
/// kind `beacon`, one per (source, destination), with any stored intel on
/// the destination attached (campaign, and a higher severity) from
/// `intel` (the stored indicators: [`crate::load_intel`]).
pub fn raise(
    store: &mut dyn turncoat_store::Store,
    tenant: &turncoat_store::Tenant,
    report: &BeaconReport,
    threshold: f64,
    intel: &turncoat_detect::IndicatorIndex,
) -> Result<turncoat_store::FindingsOutcome> {
    use turncoat_core::{AlertKind, Evidence, Finding, Observable, ObservableKind, Severity};
    let mut findings = Vec::new();
    for b in report.beacons.iter().filter(|b| b.rank_score >= threshold) {
        let mut hits = Vec::new();
        let candidates = [
            b.fqdn
                .as_deref()
                .and_then(|f| Observable::new(ObservableKind::Domain, f)),
            Observable::new(ObservableKind::Ip, &b.dst),
        ];
        for obs in candidates.iter().flatten() {
            intel.lookup(obs, |i| hits.push(i));
        }
        let known = hits.first().map(|&i| intel.get(i));
        let dst = b.fqdn.clone().unwrap_or_else(|| b.dst.clone());
        let mut title = format!(
            "beacon to {dst} about every {:.0} min (rank {:.2})",
            b.median_interval_s / 60.0,
            b.rank_score
        );
        if let Some(ind) = known {
            title.push_str(&format!("; known-bad {} {}", ind.kind, ind.value));
        }
        findings.push((
            Finding {
                endpoint: b.src.clone(),
                kind: AlertKind::Beacon,
                source: dst.clone(),
                title,
                severity: if known.is_some() {
                    Severity::High
                } else {
                    Severity::Medium
                },
                campaign: known.and_then(|i| i.campaign.map(str::to_owned)),
                key: turncoat_core::FindingKey::pair(),
                first_seen: b.first_seen,
                last_seen: b.last_seen,
                count: b.count,
                evidence: Evidence {
                    observed: b.dst.clone(),
                    time: b.first_seen,
                    file: None,
                    detail: Some(format!(
                        "score {:.3} (ts {:.2}, ds {:.2}, dur {:.2}, hist {:.2}), prevalence {:.2}",
                        b.score, b.ts_score, b.ds_score, b.dur_score, b.hist_score, b.prevalence
                    )),
                    before_valid_from: false,
                },
            },
            None,
        ));
    }
    name_ip_alerts(store, tenant, report, threshold)?;
    Ok(store.record_findings(tenant, &findings, turncoat_store::FindingMode::Set)?)
}

/// Renames the beacon alerts raised on a bare IP that a pair now names
/// (the DNS or TLS records came in after the connections, in a later
/// ingest), so the pair stays one alert, triage and history included,
/// whatever order its records arrived in.
fn name_ip_alerts(
    store: &mut dyn turncoat_store::Store,
    tenant: &turncoat_store::Tenant,
    report: &BeaconReport,
    threshold: f64,
) -> Result<()> {
    let named: Vec<&BeaconRow> = report
        .beacons
        .iter()
        .filter(|b| b.rank_score >= threshold && b.fqdn.is_some())
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    let filter = turncoat_store::AlertFilter {
        kind: Some(turncoat_core::AlertKind::Beacon),
        ..Default::default()
    };
    let existing = store.alerts(&turncoat_store::Scope::tenant(tenant), &filter)?;
    let find = |endpoint: &str, source: &str| {
        existing
            .iter()
            .find(|a| a.endpoint == endpoint && a.source == source)
    };
    for b in named {
        let fqdn = b.fqdn.as_deref().unwrap_or_default();
        if let (Some(by_ip), None) = (find(&b.src, &b.dst), find(&b.src, fqdn)) {
            store.rename_alert_source(tenant, by_ip.id, fqdn, &turncoat_core::Actor::Pipeline)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use turncoat_core::{Fields, Logsource};

    fn event(secs: i64, host: &str, logsource: Logsource, fields: &[(&str, Value)]) -> Event {
        let fields: Fields = fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect();
        Event {
            time: Time::from_epoch_secs(1_700_000_000 + secs),
            host: host.into(),
            logsource,
            fields,
        }
    }

    fn zeek(secs: i64, path: &'static str, fields: &[(&str, Value)]) -> Event {
        let mut all = vec![
            ("uid", Value::from("C1")),
            ("id.orig_p", Value::Int(50_000)),
            ("proto", Value::from("tcp")),
        ];
        all.extend(fields.iter().cloned());
        let host = fields
            .iter()
            .find(|(n, _)| *n == "id.orig_h")
            .and_then(|(_, v)| v.as_str())
            .unwrap_or("10.0.0.5");
        event(
            secs,
            host,
            Logsource::fixed(Some("zeek"), None, Some(path)),
            &all,
        )
    }

    /// Records of every kind the analysis reads, each with fields it does
    /// not, such that every field it does read changes the report.
    fn records() -> Vec<Event> {
        let s = |v: &str| Value::from(v);
        let mut out = vec![zeek(
            0,
            "dhcp",
            &[
                ("assigned_addr", s("10.0.0.5")),
                ("host_name", s("ws-a")),
                ("mac", s("00:11:22:33:44:55")),
            ],
        )];
        for (dst, name_field, name) in [
            ("203.0.113.9", "server_name", "c2.example"),
            ("192.0.2.8", "host", "web.example"),
            ("198.51.100.4", "", ""),
        ] {
            for i in 0..40 {
                out.push(zeek(
                    60 + i * 300 + (i % 3),
                    "conn",
                    &[
                        ("id.orig_h", s("10.0.0.5")),
                        ("id.resp_h", s(dst)),
                        ("orig_bytes", Value::Int(400 + (i % 2))),
                        ("duration", Value::Float(if i == 7 { 7_200.0 } else { 0.5 })),
                    ],
                ));
            }
            if !name_field.is_empty() {
                out.push(zeek(
                    30,
                    "ssl",
                    &[("id.resp_h", s(dst)), (name_field, s(name))],
                ));
            }
        }
        out.push(zeek(
            40,
            "http",
            &[("id.resp_h", s("192.0.2.8")), ("host", s("web.example"))],
        ));
        out.push(zeek(
            50,
            "dns",
            &[
                ("id.resp_h", s("10.0.0.1")),
                ("query", s("Update.Example")),
                ("answers", Value::List(vec![s("198.51.100.4"), s("x")])),
            ],
        ));
        for i in 0..30 {
            out.push(event(
                i * 600,
                "ws-b",
                Logsource::fixed(Some("windows"), Some("proxy"), None),
                &[("cs-host", s("Proxy.Example")), ("c-uri", s("/x"))],
            ));
            out.push(event(
                i * 900 + 5,
                "ws-c",
                Logsource::fixed(Some("windows"), Some("network_connection"), None),
                &[
                    ("DestinationIp", s("203.0.113.50")),
                    ("DestinationHostname", s("NC.Example")),
                    ("source.bytes", Value::Int(900 + i % 4)),
                    ("Image", s("C:\\x.exe")),
                ],
            ));
        }
        out
    }

    fn report_of(events: &[Event]) -> BeaconReport {
        let mut analyzer = Analyzer::new(None, Allowlist::default(), Networks::default());
        for e in events {
            analyzer.event(e);
        }
        analyzer.finish(0.0)
    }

    fn report(events: &[Event]) -> String {
        serde_json::to_string(&report_of(events)).unwrap()
    }

    #[test]
    fn sharing_buries_a_perfect_score_only_when_most_hosts_poll_throughout() {
        // One host: the raw score, however small the fleet.
        assert_eq!(rank(0.97, 1.0, 1, 1.0), 0.97);
        for hosts in 2..=400usize {
            for sharing in 2..=hosts {
                let p = sharing as f64 / hosts as f64;
                let r = rank(1.0, p, sharing, 1.0);
                if p <= 0.5 {
                    assert!(r >= 0.5, "{sharing} of {hosts}: {r}");
                } else if sharing >= 3 {
                    assert!(r < 0.5, "{sharing} of {hosts}: {r}");
                }
                // Briefly polled: never buried.
                assert!(rank(1.0, p, sharing, 0.4) >= 0.5);
            }
        }
        // A quarter of the fleet alike costs as much as sharing can below half.
        assert!((rank(1.0, 0.25, 3, 1.0) - 0.55).abs() < 1e-9);
    }

    #[test]
    fn the_ranked_list_names_each_row_class_beacons_first() {
        let report = report_of(&records());
        let ranked = serde_json::to_value(report.ranked()).unwrap();
        let classes: Vec<&str> = ranked
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["class"].as_str().unwrap())
            .collect();
        let beacons = report.beacons.len();
        assert!(beacons > 0 && !report.long_connections.is_empty());
        assert!(classes[..beacons].iter().all(|c| *c == "beacon"));
        assert!(classes[beacons..].iter().all(|c| *c != "beacon"));
        assert!(classes.contains(&"long-connection"));
        // Known by name, the pair still shows the address connected to.
        assert!(
            ranked
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["fqdn"] == "c2.example" && r["dst"] == "203.0.113.9"),
            "{ranked:#}"
        );
    }

    /// The archive scan decodes only [`PROJECTION`]'s records and fields:
    /// the report must be the same as from whole records, which it is only
    /// while the projection keeps every record and field the analysis reads.
    #[test]
    fn the_projection_keeps_every_field_the_analysis_reads() {
        let whole = records();
        let projected: Vec<Event> = whole.iter().filter_map(|e| PROJECTION.apply(e)).collect();
        let dropped: usize = whole.iter().map(|e| e.fields.len()).sum::<usize>()
            - projected.iter().map(|e| e.fields.len()).sum::<usize>();
        assert!(dropped > 100, "the projection drops fields ({dropped})");
        let expected = report(&whole);
        for needle in [
            "ws-a",
            "c2.example",
            "web.example",
            "update.example",
            "proxy.example",
            "nc.example",
            "\"longest_s\":7200",
        ] {
            assert!(expected.contains(needle), "{needle} in {expected}");
        }
        assert_eq!(report(&projected), expected);
    }
}
