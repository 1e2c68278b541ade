//! A deterministic fleet simulator.
//!
//! Writes, per tenant, the formats turncoat's readers take: ECS NDJSON
//! endpoint events, osquery differential inventory results and Zeek TSV
//! logs (conn, dns, http, ssl, dhcp), plus `truth.json` with every planted
//! fact. The `3cx` scenario plants the 2023 compromise on part of the
//! fleet: trojanized installs, the side-loaded DLLs, a seven-day sleep,
//! the `.ico` fetches from the staging repository, DNS for a C2 domain and
//! an HTTPS beacon sleeping 60 to 120 minutes at random, and a second stage
//! on one host; around it, benign traffic that looks alike (periodic
//! update checks, look-alike domains, the vendor's own domain).
//!
//! Output streams to disk endpoint-day by endpoint-day: memory does not
//! grow with the number of events.

#![forbid(unsafe_code)]

pub mod facts;
mod rng;
pub mod truth;
mod write;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::str::FromStr;
use std::time::Instant;

use turncoat_core::time::{MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_SEC};
use turncoat_core::{Platform, Time};

use facts::*;
pub use rng::Rng;
use truth::{
    Beacon, Drop, EndpointTruth, Exposure, IocContact, TenantTruth, Truth, VersionInterval,
};
use write::{Conn, TenantWriter};

/// Which story the fleet tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// The 3CX compromise planted on part of the fleet.
    ThreeCx,
    /// Only clean versions and benign traffic.
    Clean,
}

impl FromStr for Scenario {
    type Err = turncoat_core::UnknownName;
    fn from_str(s: &str) -> Result<Scenario, Self::Err> {
        match s {
            "3cx" => Ok(Scenario::ThreeCx),
            "clean" => Ok(Scenario::Clean),
            _ => Err(turncoat_core::UnknownName::expecting(
                "scenario",
                s,
                "3cx or clean",
            )),
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scenario::ThreeCx => "3cx",
            Scenario::Clean => "clean",
        })
    }
}

/// What to simulate.
#[derive(Clone, Debug)]
pub struct Config {
    pub tenants: usize,
    /// Endpoints per tenant.
    pub endpoints: usize,
    pub days: u64,
    pub seed: u64,
    pub scenario: Scenario,
    /// Background endpoint events per endpoint and day (network sensor
    /// records and planted activity come on top).
    pub events_per_endpoint_day: u64,
    /// First simulated day (midnight UTC).
    pub start: Time,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            tenants: 3,
            endpoints: 16,
            days: 21,
            seed: 1,
            scenario: Scenario::ThreeCx,
            events_per_endpoint_day: 150,
            // Three weeks before the first public advisory.
            start: Time::parse("2023-03-08T00:00:00Z").expect("valid constant"),
        }
    }
}

/// What a run wrote.
#[derive(Clone, Copy, Debug)]
pub struct Report {
    pub events: u64,
    pub seconds: f64,
}

impl Report {
    pub fn events_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.events as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// One planted compromise on one host.
#[derive(Clone, Debug)]
struct Chain {
    ico_at: Time,
    ico_n: u64,
    c2: &'static str,
    /// Beacon stops here (uninstall, or the end of the simulation).
    until: Time,
    second_stage: Option<Time>,
}

#[derive(Clone, Debug)]
struct Host {
    name: String,
    platform: Platform,
    ip: String,
    mac: String,
    user: &'static str,
    /// 3CX versions over time: (version, from, to).
    app: Vec<(String, Time, Option<Time>)>,
    chain: Option<Chain>,
    /// Phase of each periodic benign flow, in seconds.
    phases: Vec<u64>,
    /// A server that carries the vendor's management console, a near-miss
    /// product name.
    console: bool,
}

impl Host {
    fn version_at(&self, t: Time) -> Option<&str> {
        self.app
            .iter()
            .find(|(_, from, to)| *from <= t && to.is_none_or(|to| t < to))
            .map(|(v, _, _)| v.as_str())
    }
}

fn day_start(cfg: &Config, day: u64) -> Time {
    Time(cfg.start.0 + day as i64 * MICROS_PER_DAY)
}

fn at(cfg: &Config, day: u64, secs: u64) -> Time {
    Time(day_start(cfg, day).0 + secs as i64 * MICROS_PER_SEC)
}

/// Plans one tenant's fleet: platforms, 3CX history, compromises.
fn plan_tenant(cfg: &Config, t: usize) -> Vec<Host> {
    let mut rng = Rng::fork(cfg.seed, "plan", t as u64);
    let end = day_start(cfg, cfg.days);
    // Two tenants in three carry a compromise: one stays clean, as real
    // customers did whose users never updated.
    let compromised_tenant = cfg.scenario == Scenario::ThreeCx && (t % 3 != 2 || cfg.tenants == 1);
    let mut chains_left = if compromised_tenant { 2 } else { 0 };
    let mut hosts = Vec::with_capacity(cfg.endpoints);
    for j in 0..cfg.endpoints {
        let roll = rng.f64();
        let platform = if roll < 0.6 {
            Platform::Windows
        } else if roll < 0.85 {
            Platform::Macos
        } else {
            Platform::Linux
        };
        let prefix = match platform {
            Platform::Windows => "ws",
            Platform::Macos => "mac",
            Platform::Linux => "srv",
        };
        let name = format!(
            "{}-{prefix}-{:03}",
            TENANT_NAMES[t % TENANT_NAMES.len()]
                .split('-')
                .next()
                .unwrap_or("t"),
            j + 1
        );
        let name = if t >= TENANT_NAMES.len() {
            format!("{name}-{t}")
        } else {
            name
        };
        let ip = format!("10.{}.{}.{}", t + 1, j / 200, j % 200 + 20);
        let mac = format!(
            "02:00:{:02x}:{:02x}:{:02x}:{:02x}",
            t,
            j >> 8,
            j & 0xff,
            rng.range(0, 256)
        );
        let mut host = Host {
            name,
            platform,
            ip,
            mac,
            user: USERS[rng.index(USERS.len())],
            app: Vec::new(),
            chain: None,
            phases: PERIODIC.iter().map(|p| rng.range(0, p.period_s)).collect(),
            console: platform == Platform::Windows && j % 7 == 3,
        };
        if platform != Platform::Linux && rng.chance(0.65) {
            let first_seen = at(cfg, 0, 6 * 3600 + rng.range(0, 3600));
            let initial = match (cfg.scenario, platform) {
                (Scenario::Clean, Platform::Macos) => CLEAN_BEFORE[0].to_owned(),
                _ => rng.pick(&CLEAN_BEFORE).to_string(),
            };
            host.app.push((initial, first_seen, None));
            if rng.chance(0.6) && cfg.days > 4 {
                let day = rng.range(1, cfg.days.saturating_sub(3).max(2));
                let when = at(cfg, day, 9 * 3600 + rng.range(0, 8 * 3600));
                let next = match (cfg.scenario, platform) {
                    (Scenario::Clean, _) => FIXED.to_owned(),
                    (_, Platform::Windows) => rng.pick(&AFFECTED_WINDOWS).to_string(),
                    _ => rng.pick(&AFFECTED_MACOS[1..]).to_string(),
                };
                if next != host.app[0].0 {
                    host.app[0].2 = Some(when);
                    host.app.push((next, when, None));
                }
            }
            // Some later leave: an uninstall, or the clean rebuild.
            let last_from = host.app.last().map(|a| a.1).unwrap_or(first_seen);
            let last_day = ((last_from.0 - cfg.start.0) / MICROS_PER_DAY) as u64;
            if last_day + 2 < cfg.days && rng.chance(0.3) {
                let day = rng.range(last_day + 1, cfg.days);
                let when = at(cfg, day, 10 * 3600 + rng.range(0, 6 * 3600));
                if let Some(last) = host.app.last_mut() {
                    last.2 = Some(when);
                }
                if rng.chance(0.5) {
                    host.app.push((FIXED.to_owned(), when, None));
                }
            }
            // Plant the chain on an affected install that lasts eight days.
            if chains_left > 0 {
                let affected_interval = host
                    .app
                    .iter()
                    .find(|(v, from, to)| {
                        affected(platform, v)
                            && to.unwrap_or(end).0 - from.0 >= 8 * MICROS_PER_DAY
                            && from.0 + 8 * MICROS_PER_DAY < end.0
                    })
                    .cloned();
                if let Some((_, from, to)) = affected_interval {
                    let ico_at = Time(
                        from.0
                            + 7 * MICROS_PER_DAY
                            + rng.range(0, 6 * 3600) as i64 * MICROS_PER_SEC,
                    );
                    let second_stage =
                        (chains_left == 2 && t == 0 && platform == Platform::Windows)
                            .then(|| Time(ico_at.0 + 26 * MICROS_PER_HOUR));
                    host.chain = Some(Chain {
                        ico_at,
                        ico_n: rng.range(0, 16),
                        c2: C2_DOMAINS[rng.index(C2_DOMAINS.len())],
                        until: to.unwrap_or(end).min(end),
                        second_stage,
                    });
                    chains_left -= 1;
                }
            }
        }
        hosts.push(host);
    }
    hosts
}

/// Collects truth as events are written: the first time each endpoint
/// showed each indicator.
#[derive(Default)]
struct Contacts {
    first: HashMap<(String, String, String), Time>,
}

impl Contacts {
    fn saw(&mut self, tenant: &str, endpoint: &str, indicator: &str, t: Time) {
        let slot = self
            .first
            .entry((tenant.to_owned(), endpoint.to_owned(), indicator.to_owned()))
            .or_insert(t);
        *slot = (*slot).min(t);
    }
}

/// The SHA-256 stand-in of a benign file: the same binary has the same
/// hash on every host, as on a real fleet.
fn file_hash(path: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    Rng::new(h).hex64()
}

/// IP a name resolves to in the simulation: C2 names in TEST-NET-3,
/// everything else in the benchmarking range 198.18.0.0/15.
pub fn resolve(domain: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in domain.bytes() {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    if C2_DOMAINS.contains(&domain) {
        format!("203.0.113.{}", h % 250 + 1)
    } else {
        format!(
            "198.{}.{}.{}",
            18 + (h >> 24) % 2,
            (h >> 8) & 0xff,
            h % 250 + 1
        )
    }
}

/// Runs the simulation into `out`, calling `progress` with the events
/// written so far after each simulated day.
pub fn simulate(
    cfg: &Config,
    out: &Path,
    progress: &mut dyn FnMut(u64),
) -> io::Result<(Truth, Report)> {
    let started = Instant::now();
    std::fs::create_dir_all(out)?;
    let fleets: Vec<Vec<Host>> = (0..cfg.tenants).map(|t| plan_tenant(cfg, t)).collect();
    let names: Vec<String> = (0..cfg.tenants)
        .map(|t| {
            let base = TENANT_NAMES[t % TENANT_NAMES.len()];
            if t < TENANT_NAMES.len() {
                base.to_owned()
            } else {
                format!("{base}-{}", t / TENANT_NAMES.len() + 1)
            }
        })
        .collect();
    let mut writers: Vec<TenantWriter> = names
        .iter()
        .map(|n| TenantWriter::create(&out.join(n)))
        .collect::<io::Result<_>>()?;
    let mut contacts = Contacts::default();
    let mut truth = Truth {
        seed: cfg.seed,
        start: cfg.start,
        days: cfg.days,
        ..Default::default()
    };
    let mut beacons: HashMap<(usize, usize, &'static str), Beacon> = HashMap::new();

    for (t, hosts) in fleets.iter().enumerate() {
        for h in hosts {
            writers[t].inventory_baseline(cfg, h)?;
        }
    }
    for day in 0..cfg.days {
        for (t, hosts) in fleets.iter().enumerate() {
            let tenant = &names[t];
            let w = &mut writers[t];
            for (j, h) in hosts.iter().enumerate() {
                let mut rng = Rng::fork(cfg.seed, &h.name, day);
                w.dhcp_lease(at(cfg, day, 7 * 3600 + rng.range(0, 1800)), h)?;
                w.inventory_changes(cfg, day, h)?;
                background(cfg, day, h, w, &mut rng)?;
                periodic(cfg, day, t, j, tenant, h, w, &mut beacons)?;
                app_activity(cfg, day, tenant, h, w, &mut rng, &mut contacts)?;
                if let Some(chain) = &h.chain {
                    compromise(
                        cfg,
                        day,
                        t,
                        j,
                        tenant,
                        h,
                        chain,
                        w,
                        &mut rng,
                        &mut contacts,
                        &mut beacons,
                        &mut truth,
                    )?;
                }
            }
        }
        let written: u64 = writers.iter().map(|w| w.counts.total()).sum();
        progress(written);
    }
    for w in &mut writers {
        w.finish()?;
        truth.events.ecs += w.counts.ecs;
        truth.events.zeek += w.counts.zeek;
        truth.events.osquery += w.counts.osquery;
    }

    for (t, hosts) in fleets.iter().enumerate() {
        let mut tt = TenantTruth {
            name: names[t].clone(),
            endpoints: Vec::new(),
        };
        for h in hosts {
            for (v, from, to) in &h.app {
                if affected(h.platform, v) {
                    truth.exposures.push(Exposure {
                        tenant: names[t].clone(),
                        endpoint: h.name.clone(),
                        platform: h.platform,
                        version: v.clone(),
                        from: *from,
                        to: *to,
                    });
                }
            }
            tt.endpoints.push(EndpointTruth {
                name: h.name.clone(),
                platform: h.platform,
                ip: h.ip.clone(),
                versions: h
                    .app
                    .iter()
                    .map(|(v, f, to)| VersionInterval {
                        version: v.clone(),
                        from: *f,
                        to: *to,
                    })
                    .collect(),
                compromised: h.chain.is_some(),
            });
        }
        truth.tenants.push(tt);
    }
    let mut contacts: Vec<IocContact> = contacts
        .first
        .into_iter()
        .map(|((tenant, endpoint, indicator), first_seen)| IocContact {
            tenant,
            endpoint,
            indicator,
            first_seen,
        })
        .collect();
    contacts.sort_by(|a, b| {
        (&a.tenant, &a.endpoint, &a.indicator).cmp(&(&b.tenant, &b.endpoint, &b.indicator))
    });
    truth.ioc_contacts = contacts;
    let mut b: Vec<Beacon> = beacons.into_values().collect();
    b.sort_by(|x, y| (&x.tenant, &x.endpoint, &x.fqdn).cmp(&(&y.tenant, &y.endpoint, &y.fqdn)));
    truth.beacons = b;
    let file = std::fs::File::create(out.join("truth.json"))?;
    serde_json::to_writer_pretty(io::BufWriter::new(file), &truth)?;
    let report = Report {
        events: truth.events.total(),
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((truth, report))
}

/// The endpoint's everyday activity: processes, DNS, connections, module
/// loads, files, web requests, mostly in working hours.
fn background(
    cfg: &Config,
    day: u64,
    h: &Host,
    w: &mut TenantWriter,
    rng: &mut Rng,
) -> io::Result<()> {
    for _ in 0..cfg.events_per_endpoint_day {
        let secs = if rng.chance(0.85) {
            7 * 3600 + rng.range(0, 12 * 3600)
        } else {
            rng.range(0, 86_400)
        };
        let t = Time(at(cfg, day, secs).0 + rng.range(0, 1_000_000) as i64);
        let roll = rng.f64();
        if roll < 0.3 {
            let image = match h.platform {
                Platform::Windows => rng.pick(&WINDOWS_PROCESSES).replace("{user}", h.user),
                Platform::Macos => rng.pick(&MAC_PROCESSES).to_string(),
                Platform::Linux => rng.pick(&LINUX_PROCESSES).to_string(),
            };
            let hash = file_hash(&image);
            w.process_start(t, h, &image, &hash)?;
        } else if roll < 0.55 {
            let domain = if rng.chance(0.05) {
                rng.pick(&VENDOR_DOMAINS)
            } else {
                rng.pick(&BENIGN_DOMAINS)
            };
            w.dns(t, h, domain, &resolve(domain), rng)?;
        } else if roll < 0.75 {
            let domain = rng.pick(&BENIGN_DOMAINS);
            w.connection(
                t,
                h,
                None,
                &Conn {
                    domain,
                    ip: &resolve(domain),
                    port: 443,
                    orig_bytes: rng.range(300, 4000),
                    resp_bytes: rng.range(1000, 90_000),
                },
                rng,
            )?;
        } else if roll < 0.85 && h.platform == Platform::Windows {
            let dll = rng.pick(&WINDOWS_DLLS);
            let hash = file_hash(dll);
            w.image_load(t, h, "C:\\Windows\\explorer.exe", dll, &hash)?;
        } else if roll < 0.95 {
            let path = match h.platform {
                Platform::Windows => format!(
                    "C:\\Users\\{}\\Documents\\report-{}.docx",
                    h.user,
                    rng.range(1, 500)
                ),
                Platform::Macos => format!(
                    "/Users/{}/Documents/notes-{}.txt",
                    h.user,
                    rng.range(1, 500)
                ),
                Platform::Linux => format!("/var/log/app-{}.log", rng.range(1, 50)),
            };
            let hash = rng.hex64();
            w.file_create(t, h, &path, &hash)?;
        } else {
            let url = if rng.chance(0.3) {
                rng.pick(&BENIGN_GITHUB_PATHS).to_string()
            } else {
                format!("https://{}/", rng.pick(&BENIGN_DOMAINS))
            };
            w.web(t, h, &url, rng)?;
        }
    }
    Ok(())
}

/// Benign periodic flows (telemetry, time sync) and, with 3CX installed,
/// the app's hourly update check to the vendor: regular, and not evil.
#[allow(clippy::too_many_arguments)]
fn periodic(
    cfg: &Config,
    day: u64,
    t: usize,
    j: usize,
    tenant: &str,
    h: &Host,
    w: &mut TenantWriter,
    beacons: &mut HashMap<(usize, usize, &'static str), Beacon>,
) -> io::Result<()> {
    let mut rng = Rng::fork(
        cfg.seed,
        "periodic",
        (t as u64) << 32 | (j as u64) << 8 | day,
    );
    let mut flows: Vec<(&'static str, u16, u64, f64, u64)> = PERIODIC
        .iter()
        .zip(&h.phases)
        .filter(|(p, _)| p.platform.is_none_or(|pl| pl == h.platform))
        .map(|(p, phase)| (p.domain, p.port, p.period_s, p.jitter, *phase))
        .collect();
    if h.version_at(at(cfg, day, 12 * 3600)).is_some() {
        flows.push((VENDOR_DOMAINS[0], 443, 3600, 0.0, 1234));
    }
    for (domain, port, period, jitter, phase) in flows {
        let ip = resolve(domain);
        // Services are looked up once a day here (the resolver caches).
        w.sensor_dns(
            at(cfg, day, phase.saturating_sub(1)),
            h,
            domain,
            &ip,
            &mut rng,
        )?;
        let mut s = phase;
        while s < 86_400 {
            let time = at(cfg, day, s);
            w.sensor_connection(
                time,
                h,
                &Conn {
                    domain,
                    ip: &ip,
                    port,
                    orig_bytes: 300 + rng.range(0, 40),
                    resp_bytes: 1200 + rng.range(0, 200),
                },
                &mut rng,
            )?;
            let b = beacons.entry((t, j, domain)).or_insert_with(|| Beacon {
                tenant: tenant.to_owned(),
                endpoint: h.name.clone(),
                src_ip: h.ip.clone(),
                fqdn: domain.to_owned(),
                dst_ip: ip.clone(),
                port,
                min_interval_s: (period as f64 * (1.0 - jitter)) as u64,
                max_interval_s: (period as f64 * (1.0 + jitter)) as u64,
                first: time,
                last: time,
                connections: 0,
                malicious: false,
            });
            b.last = time;
            b.connections += 1;
            let j = (period as f64 * jitter) as u64;
            s += period - j + rng.range(0, 2 * j + 1);
        }
    }
    Ok(())
}

/// The 3CX app running: daily start and module loads; trojanized modules
/// while an affected version is installed.
fn app_activity(
    cfg: &Config,
    day: u64,
    tenant: &str,
    h: &Host,
    w: &mut TenantWriter,
    rng: &mut Rng,
    contacts: &mut Contacts,
) -> io::Result<()> {
    // Installer downloads on the day of each install.
    for (v, from, _) in &h.app {
        if day_start(cfg, day) <= *from
            && *from < day_start(cfg, day + 1)
            && from.0 > day_start(cfg, 0).0 + 12 * MICROS_PER_HOUR
        {
            let (path, hash) = match h.platform {
                Platform::Windows => (
                    format!("C:\\Users\\{}\\Downloads\\3CXDesktopApp-{v}.msi", h.user),
                    match v.as_str() {
                        "18.12.407" => MSI_407_SHA256.to_owned(),
                        "18.12.416" => MSI_416_SHA256.to_owned(),
                        _ => rng.hex64(),
                    },
                ),
                _ => (
                    format!("/Users/{}/Downloads/3CXDesktopApp-{v}.dmg", h.user),
                    if v == "18.12.416" {
                        DMG_416_SHA256.to_owned()
                    } else {
                        rng.hex64()
                    },
                ),
            };
            let t = Time(from.0 - 5 * 60 * MICROS_PER_SEC);
            w.file_create(t, h, &path, &hash)?;
            if [MSI_407_SHA256, MSI_416_SHA256, DMG_416_SHA256].contains(&hash.as_str()) {
                contacts.saw(tenant, &h.name, &hash, t);
            }
        }
    }
    let start = at(cfg, day, 8 * 3600 + rng.range(0, 3600));
    let Some(version) = h.version_at(start) else {
        return Ok(());
    };
    let bad = affected(h.platform, version);
    match h.platform {
        Platform::Windows => {
            let image = format!(
                "C:\\Users\\{}\\AppData\\Local\\Programs\\3CXDesktopApp\\3CXDesktopApp.exe",
                h.user
            );
            let clean = format!("{:0>64}", version.replace('.', ""));
            w.process_start(start, h, &image, &clean)?;
            // The app checks in with its vendor when it starts.
            let vendor = VENDOR_DOMAINS[0];
            w.dns_from(
                Time(start.0 + 2_000_000),
                h,
                Some(&image),
                vendor,
                &resolve(vendor),
                rng,
            )?;
            let dir = format!(
                "C:\\Users\\{}\\AppData\\Local\\Programs\\3CXDesktopApp\\app\\",
                h.user
            );
            let ffmpeg = if bad {
                FFMPEG_DLL_SHA256.to_owned()
            } else {
                // A third-party library: the same build in every clean release.
                file_hash("ffmpeg.dll")
            };
            let d3d = if bad {
                D3DCOMPILER_SHA256.to_owned()
            } else {
                file_hash("d3dcompiler_47.dll")
            };
            w.image_load(
                Time(start.0 + 800_000),
                h,
                &image,
                &format!("{dir}ffmpeg.dll"),
                &ffmpeg,
            )?;
            w.image_load(
                Time(start.0 + 900_000),
                h,
                &image,
                &format!("{dir}d3dcompiler_47.dll"),
                &d3d,
            )?;
            if bad {
                contacts.saw(tenant, &h.name, FFMPEG_DLL_SHA256, Time(start.0 + 800_000));
                contacts.saw(tenant, &h.name, D3DCOMPILER_SHA256, Time(start.0 + 900_000));
            }
        }
        Platform::Macos => {
            let image =
                "/Applications/3CX Desktop App.app/Contents/MacOS/3CX Desktop App".to_owned();
            let app_hash = file_hash(&format!("{version}/3CX Desktop App"));
            w.process_start(start, h, &image, &app_hash)?;
            let vendor = VENDOR_DOMAINS[0];
            w.dns_from(
                Time(start.0 + 2_000_000),
                h,
                Some(&image),
                vendor,
                &resolve(vendor),
                rng,
            )?;
            let lib = if bad {
                LIBFFMPEG_SHA256.to_owned()
            } else {
                file_hash("libffmpeg.dylib")
            };
            w.image_load(
                Time(start.0 + 700_000),
                h,
                &image,
                "/Applications/3CX Desktop App.app/Contents/Frameworks/Electron Framework.framework/Versions/A/Libraries/libffmpeg.dylib",
                &lib,
            )?;
            if bad {
                contacts.saw(tenant, &h.name, LIBFFMPEG_SHA256, Time(start.0 + 700_000));
            }
        }
        Platform::Linux => {}
    }
    Ok(())
}

/// After the seven-day sleep: the `.ico` fetch, the C2 lookup, the beacon
/// (60 to 120 minutes apart at random), the second stage.
#[allow(clippy::too_many_arguments)]
fn compromise(
    cfg: &Config,
    day: u64,
    t: usize,
    j: usize,
    tenant: &str,
    h: &Host,
    chain: &Chain,
    w: &mut TenantWriter,
    rng: &mut Rng,
    contacts: &mut Contacts,
    beacons: &mut HashMap<(usize, usize, &'static str), Beacon>,
    truth: &mut Truth,
) -> io::Result<()> {
    let (day_from, day_to) = (day_start(cfg, day), day_start(cfg, day + 1));
    if chain.ico_at >= day_to || chain.until <= day_from {
        return Ok(());
    }
    let image = match h.platform {
        Platform::Windows => format!(
            "C:\\Users\\{}\\AppData\\Local\\Programs\\3CXDesktopApp\\3CXDesktopApp.exe",
            h.user
        ),
        _ => "/Applications/3CX Desktop App.app/Contents/MacOS/3CX Desktop App".to_owned(),
    };
    if (day_from..day_to).contains(&chain.ico_at) {
        let url = format!("{STAGING_PREFIX}icon{}.ico", chain.ico_n);
        w.web_from(chain.ico_at, h, Some(&image), &url, rng)?;
        contacts.saw(tenant, &h.name, STAGING_PREFIX, chain.ico_at);
    }
    if let Some(drop_at) = chain.second_stage
        && (day_from..day_to).contains(&drop_at)
    {
        let path = format!(
            "C:\\Users\\{}\\AppData\\Local\\Microsoft\\Windows\\Caches\\cache.db.dll",
            h.user
        );
        w.file_create(drop_at, h, &path, ICONIC_SHA256)?;
        contacts.saw(tenant, &h.name, ICONIC_SHA256, drop_at);
        truth.second_stage.push(Drop {
            tenant: tenant.to_owned(),
            endpoint: h.name.clone(),
            path,
            sha256: ICONIC_SHA256.to_owned(),
            time: drop_at,
        });
    }
    // Beacon times are a pure function of the chain, so each day picks up
    // where the previous one left off.
    let ip = resolve(chain.c2);
    let mut brng = Rng::fork(cfg.seed, "beacon", (t as u64) << 32 | j as u64);
    let mut s = Time(chain.ico_at.0 + 120 * MICROS_PER_SEC);
    let mut looked_up_today = false;
    while s < chain.until && s < day_to {
        if s >= day_from {
            if !looked_up_today {
                w.dns_from(
                    Time(s.0 - MICROS_PER_SEC),
                    h,
                    Some(&image),
                    chain.c2,
                    &ip,
                    rng,
                )?;
                contacts.saw(tenant, &h.name, chain.c2, Time(s.0 - MICROS_PER_SEC));
                looked_up_today = true;
            }
            w.connection(
                s,
                h,
                Some(&image),
                &Conn {
                    domain: chain.c2,
                    ip: &ip,
                    port: 443,
                    orig_bytes: 900 + brng.range(0, 300),
                    resp_bytes: 400 + brng.range(0, 200),
                },
                rng,
            )?;
            let b = beacons.entry((t, j, chain.c2)).or_insert_with(|| Beacon {
                tenant: tenant.to_owned(),
                endpoint: h.name.clone(),
                src_ip: h.ip.clone(),
                fqdn: chain.c2.to_owned(),
                dst_ip: ip.clone(),
                port: 443,
                min_interval_s: 3600,
                max_interval_s: 7200,
                first: s,
                last: s,
                connections: 0,
                malicious: true,
            });
            b.last = s;
            b.connections += 1;
        }
        s = Time(s.0 + brng.range(3600, 7201) as i64 * MICROS_PER_SEC);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Config {
        Config {
            tenants: 3,
            endpoints: 12,
            days: 21,
            events_per_endpoint_day: 20,
            ..Default::default()
        }
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a = tempfile_dir("a");
        let b = tempfile_dir("b");
        simulate(&small(), &a, &mut |_| {}).unwrap();
        simulate(&small(), &b, &mut |_| {}).unwrap();
        for rel in [
            "truth.json",
            "acme-corp/ecs.ndjson",
            "globex/zeek/conn.log",
            "initech/osquery.log",
        ] {
            assert_eq!(
                std::fs::read(a.join(rel)).unwrap(),
                std::fs::read(b.join(rel)).unwrap(),
                "{rel}"
            );
        }
        let _ = std::fs::remove_dir_all(&a);
        let _ = std::fs::remove_dir_all(&b);
    }

    #[test]
    fn plants_the_story_and_keeps_one_tenant_clean() {
        let dir = tempfile_dir("story");
        let (truth, report) = simulate(&small(), &dir, &mut |_| {}).unwrap();
        assert!(report.events > 10_000);
        assert!(!truth.exposures.is_empty());
        assert!(
            truth
                .beacons
                .iter()
                .any(|b| b.malicious && b.min_interval_s == 3600 && b.max_interval_s == 7200)
        );
        assert!(truth.beacons.iter().any(|b| !b.malicious));
        assert_eq!(truth.second_stage.len(), 1);
        assert!(
            truth
                .ioc_contacts
                .iter()
                .all(|c| c.tenant != "initech" || !C2_DOMAINS.contains(&c.indicator.as_str()))
        );
        let (clean, _) = simulate(
            &Config {
                scenario: Scenario::Clean,
                ..small()
            },
            &dir.join("clean"),
            &mut |_| {},
        )
        .unwrap();
        assert!(
            clean.exposures.is_empty()
                && clean.ioc_contacts.is_empty()
                && clean.second_stage.is_empty()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("turncoat-sim-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}
