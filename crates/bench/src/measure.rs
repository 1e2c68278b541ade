//! The benchmarks themselves: the core on simulator data of a chosen
//! size, each beside a named baseline measured in the same run (ratios
//! survive noisy machines; absolute numbers do not).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use turncoat_core::{
    Actor, Event, Indicator, IndicatorKind, Observable, ObservableKind, TenantName, Time,
};
use turncoat_detect::{IndicatorIndex, IocMatch};
use turncoat_engine::{IngestOptions, NoProgress};
use turncoat_formats::{
    Format, Input, Location, ReadIssue, ReadOptions, Record, Sink, read_telemetry,
};
use turncoat_sim::{Config, Rng, Scenario};
use turncoat_store::{Batch, SightingDelta, SqliteStore, Store};

use turncoat_output::{OutputFormat, Table, print_json};

#[derive(Serialize)]
pub(crate) struct Row {
    name: String,
    items: u64,
    seconds: f64,
    pub(crate) per_second: f64,
    /// Against the baseline of the same benchmark.
    ratio: f64,
    /// Processor time (user + system) of the phase, where measured: wall
    /// time on this shared machine also counts waits for the disk and for
    /// other guests, processor time counts the work.
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu_seconds: Option<f64>,
}

pub(crate) fn row(name: &str, items: u64, seconds: f64, baseline: Option<f64>) -> Row {
    let per_second = items as f64 / seconds.max(1e-9);
    Row {
        name: name.to_owned(),
        items,
        seconds,
        per_second,
        ratio: baseline.map_or(1.0, |b| per_second / b),
        cpu_seconds: None,
    }
}

/// Processor time this process has used so far (user + system), seconds.
pub(crate) fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes the struct it is given and nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// A phase's start: wall clock and processor time.
pub(crate) struct Clock {
    wall: Instant,
    cpu: f64,
}

impl Clock {
    pub(crate) fn start() -> Clock {
        Clock {
            wall: Instant::now(),
            cpu: cpu_seconds(),
        }
    }

    /// The phase's row, with its processor time.
    pub(crate) fn row(&self, name: &str, items: u64, baseline: Option<f64>) -> Row {
        let mut r = row(name, items, self.wall.elapsed().as_secs_f64(), baseline);
        r.cpu_seconds = Some(cpu_seconds() - self.cpu);
        r
    }
}

/// Peak resident memory of this process, from `/proc/self/status`.
pub(crate) fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// `n` synthetic indicators of every kind, plus the 3CX pack's.
pub(crate) fn indicators(n: usize, seed: u64) -> Vec<Indicator> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    let kinds = [
        IndicatorKind::Domain,
        IndicatorKind::Sha256,
        IndicatorKind::Ip,
        IndicatorKind::UrlPrefix,
        IndicatorKind::Md5,
    ];
    while out.len() < n {
        let kind = *rng.pick(&kinds);
        let value = match kind {
            IndicatorKind::Domain => {
                format!("bad-{:x}.example-{}.com", rng.next_u64(), rng.range(0, 100))
            }
            IndicatorKind::Sha256 => rng.hex64(),
            IndicatorKind::Md5 => rng.hex64()[..32].to_owned(),
            IndicatorKind::Ip => format!(
                "100.{}.{}.{}",
                rng.range(64, 128),
                rng.range(0, 256),
                rng.range(1, 255)
            ),
            _ => format!("https://cdn-{:x}.example.net/payloads/", rng.next_u64()),
        };
        if let Ok(i) = Indicator::new(kind, &value, "bench") {
            out.push(i);
        }
    }
    out
}

struct Counter {
    events: u64,
    matcher: Option<(IndicatorIndex, Vec<Observable>, Vec<IocMatch>, u64)>,
}

impl Sink for Counter {
    fn record(&mut self, record: Record, _: Location) {
        self.events += 1;
        if let (Some((index, obs, matches, hits)), Record::Event(e)) = (&mut self.matcher, record) {
            observe(index, &e, obs, matches);
            *hits += matches.len() as u64;
        }
    }
    fn skipped(&mut self, _: ReadIssue) {}
}

fn observe(
    index: &IndicatorIndex,
    e: &Event,
    obs: &mut Vec<Observable>,
    matches: &mut Vec<IocMatch>,
) {
    turncoat_core::observable::extract(e, obs);
    index.match_event(obs, e.time, matches);
}

fn read_ecs(path: &Path, sink: &mut dyn Sink) -> anyhow::Result<()> {
    let mut input = Input::open(path)?;
    read_telemetry(&mut input, Some(Format::Ecs), &ReadOptions::default(), sink)?;
    Ok(())
}

/// Ingest of ECS NDJSON, end to end, on one core.
/// One tenant's simulated ECS events (50 endpoints, 21 days, the 3CX
/// scenario), about `events` of them: the file, its event count and size.
pub(crate) fn simulated_ecs(events: u64, dir: &Path) -> anyhow::Result<(PathBuf, u64, u64)> {
    let (tenants, endpoints, days) = (1usize, 50usize, 21u64);
    let per_day = (events / (tenants as u64 * endpoints as u64 * days)).max(1);
    let cfg = Config {
        tenants,
        endpoints,
        days,
        seed: 7,
        scenario: Scenario::ThreeCx,
        events_per_endpoint_day: per_day,
        ..Config::default()
    };
    let fleet = dir.join("fleet");
    let (truth, _) = turncoat_sim::simulate(&cfg, &fleet, &mut |_| {})?;
    let ecs = fleet.join(&truth.tenants[0].name).join("ecs.ndjson");
    let bytes = std::fs::metadata(&ecs)?.len();
    Ok((ecs, truth.events.ecs, bytes))
}

/// A store with `intel` loaded and one tenant, `bench`.
pub(crate) fn prepared_store(
    dir: &Path,
    intel: &[Indicator],
) -> anyhow::Result<(SqliteStore, turncoat_store::Tenant)> {
    let mut store = SqliteStore::open(dir)?;
    store.upsert_indicators(&mut intel.iter().cloned(), &Actor::Cli)?;
    let tenant = store.add_tenant(&TenantName::new("bench")?, &Actor::Cli)?;
    Ok((store, tenant))
}

/// `file` ingested as `turncoat ingest` does it.
pub(crate) fn cli_ingest(
    store: &mut SqliteStore,
    tenant: &turncoat_store::Tenant,
    file: &Path,
) -> anyhow::Result<turncoat_engine::IngestReport> {
    Ok(turncoat_engine::ingest(
        store,
        tenant,
        &[file.to_owned()],
        &IngestOptions::default(),
        &NoProgress,
        &Actor::Cli,
    )?)
}

/// Ingest with a large intel set loaded, beside the same ingest with a
/// small one: the live index must stay compact and cheap to load, so that
/// a feed of a million indicators does not slow every ingest down.
pub fn intel_scale(
    events: u64,
    small: usize,
    large: usize,
    dir: &Path,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let (ecs, n, _) = simulated_ecs(events, dir)?;
    let mut rows = Vec::new();
    let mut facts = Vec::new();
    let mut stores = Vec::new();
    for count in [small, large] {
        // The feed as a CSV file, imported the way `intel import` does.
        let csv = dir.join(format!("iocs-{count}.csv"));
        {
            let mut out = std::io::BufWriter::new(std::fs::File::create(&csv)?);
            writeln!(out, "type,value")?;
            for i in indicators(count, 11) {
                writeln!(out, "{},{}", i.kind, i.value)?;
            }
            out.flush()?;
        }
        let mut store = SqliteStore::open(&dir.join(format!("data-{count}")))?;
        let clock = Clock::start();
        let report = turncoat_engine::import_intel(
            &mut store,
            std::slice::from_ref(&csv),
            None,
            &NoProgress,
            &Actor::Cli,
            None,
        )?;
        let stored = (report.indicators_new
            + report.indicators_changed
            + report.indicators_unchanged) as u64;
        rows.push(clock.row(&format!("import {count} indicators (CSV)"), stored, None));
        let rss_after_import = peak_rss_mb();

        let clock = Clock::start();
        let index = turncoat_engine::build_intel(&store)?;
        rows.push(clock.row(
            &format!("build index of {count} from rows"),
            index.len() as u64,
            None,
        ));
        drop(index);
        // Saved by the import: what every later ingest loads.
        let clock = Clock::start();
        let index = turncoat_engine::load_intel(&mut store)?;
        rows.push(clock.row(
            &format!("load saved index of {count}"),
            index.len() as u64,
            None,
        ));
        let bytes_per_indicator = index.heap_bytes() as f64 / index.len().max(1) as f64;
        drop(index);

        facts.push(serde_json::json!({
            "indicators": count,
            "index_bytes_per_indicator": bytes_per_indicator,
            "peak_rss_mb_after_import": rss_after_import,
        }));
        stores.push((count, store));
    }
    // The ingests alternate, twice over, and each size's faster run
    // counts: the first run on a cold page cache is not the index's doing.
    let mut best: Vec<Option<Row>> = vec![None, None];
    for round in 0..2 {
        for (i, (count, store)) in stores.iter_mut().enumerate() {
            let tenant =
                store.add_tenant(&TenantName::new(&format!("bench-{round}"))?, &Actor::Cli)?;
            let clock = Clock::start();
            let report = turncoat_engine::ingest(
                store,
                &tenant,
                std::slice::from_ref(&ecs),
                &IngestOptions::default(),
                &NoProgress,
                &Actor::Cli,
            )?;
            let row = clock.row(
                &format!("ingest with {count} indicators loaded"),
                report.events,
                None,
            );
            if best[i].as_ref().is_none_or(|b| row.seconds < b.seconds) {
                best[i] = Some(row);
            }
        }
    }
    let [Some(small_row), Some(large_row)] =
        <[Option<Row>; 2]>::try_from(best).map_err(|_| anyhow::anyhow!("two intel sizes"))?
    else {
        anyhow::bail!("no ingest ran");
    };
    let slowdown = large_row.seconds / small_row.seconds.max(1e-9);
    let baseline = Some(small_row.per_second);
    rows.push(row(
        &small_row.name,
        small_row.items,
        small_row.seconds,
        baseline,
    ));
    rows.push(row(
        &large_row.name,
        large_row.items,
        large_row.seconds,
        baseline,
    ));
    let summary = serde_json::json!({
        "events": n,
        "rows": rows,
        "intel": facts,
        "peak_rss_mb": peak_rss_mb(),
        "ingest_time_large_over_small": slowdown,
    });
    match format {
        OutputFormat::Json => print_json(&summary)?,
        OutputFormat::Table => {
            println!("ingest of {n} ECS events with {small} and with {large} indicators loaded");
            print_rows(&rows)?;
            for f in &facts {
                println!(
                    "{} indicators: index {:.0} bytes per indicator; peak RSS {:.0} MB after import",
                    f["indicators"],
                    f["index_bytes_per_indicator"].as_f64().unwrap_or(0.0),
                    f["peak_rss_mb_after_import"].as_f64().unwrap_or(0.0),
                );
            }
            println!("ingest time with {large} over with {small}: {slowdown:.2}x");
        }
    }
    Ok(())
}

pub fn ingest(
    events: u64,
    indicator_count: usize,
    dir: &Path,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let (ecs, n, bytes) = simulated_ecs(events, dir)?;
    let intel = indicators(indicator_count, 11);

    // Baseline: parsing each line as generic JSON, nothing else.
    let clock = Clock::start();
    let mut parsed = 0u64;
    for line in BufReader::with_capacity(1 << 20, std::fs::File::open(&ecs)?).split(b'\n') {
        let line = line?;
        if serde_json::from_slice::<serde_json::Value>(&line).is_ok() {
            parsed += 1;
        }
    }
    let baseline = clock.row("baseline: serde_json::Value parse", parsed, None);
    let b = Some(baseline.per_second);

    let clock = Clock::start();
    let mut c = Counter {
        events: 0,
        matcher: None,
    };
    read_ecs(&ecs, &mut c)?;
    let read = clock.row("read + map to Event", c.events, b);

    let clock = Clock::start();
    let mut c = Counter {
        events: 0,
        matcher: Some((
            IndicatorIndex::new(intel.clone()),
            Vec::new(),
            Vec::new(),
            0,
        )),
    };
    read_ecs(&ecs, &mut c)?;
    let matched = clock.row(
        &format!("+ observables + match {} indicators", intel.len()),
        c.events,
        b,
    );

    let (mut store, tenant) = prepared_store(&dir.join("data"), &intel)?;
    let clock = Clock::start();
    let report = cli_ingest(&mut store, &tenant, &ecs)?;
    let full = clock.row(
        "+ archive + sightings + findings + beacon step (full ingest)",
        report.events,
        b,
    );
    let disk = store.disk_usage();
    let rows = vec![baseline, read, matched, full];
    let summary = serde_json::json!({
        "events": n,
        "input_mb": bytes as f64 / 1e6,
        "store_mb": disk as f64 / 1e6,
        "store_mb_per_million_events": disk as f64 / 1e6 / (n as f64 / 1e6),
        "peak_rss_mb": peak_rss_mb(),
        "rows": rows,
    });
    match format {
        OutputFormat::Json => print_json(&summary)?,
        OutputFormat::Table => {
            println!(
                "ingest of {n} ECS events ({:.0} MB), one core, {} indicators loaded",
                bytes as f64 / 1e6,
                intel.len()
            );
            print_rows(&rows)?;
            println!(
                "store: {:.1} MB ({:.1} MB per million events); peak RSS {:.0} MB",
                disk as f64 / 1e6,
                disk as f64 / 1e6 / (n as f64 / 1e6),
                peak_rss_mb().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}

pub(crate) fn print_rows(rows: &[Row]) -> anyhow::Result<()> {
    let timed = rows.iter().any(|r| r.cpu_seconds.is_some());
    let mut head = vec!["phase", "items", "seconds", "per second", "vs baseline"];
    if timed {
        head.extend(["cpu seconds", "per cpu second"]);
    }
    let mut t = Table::new(&head);
    for r in rows {
        let mut cells = vec![
            r.name.clone(),
            r.items.to_string(),
            format!("{:.3}", r.seconds),
            format!("{:.0}", r.per_second),
            format!("{:.2}x", r.ratio),
        ];
        if let Some(cpu) = r.cpu_seconds {
            cells.push(format!("{cpu:.3}"));
            cells.push(format!("{:.0}", r.items as f64 / cpu.max(1e-9)));
        }
        t.row(cells);
    }
    t.print()?;
    Ok(())
}

/// Retro-hunt of new indicators against stored sightings.
pub fn retro(
    sightings: u64,
    indicator_count: usize,
    location: &turncoat_store::StoreLocation,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let mut store = location.open_writer(&mut turncoat_store::LockWait {
        timeout: turncoat_store::DEFAULT_LOCK_TIMEOUT,
        purpose: "turncoat-bench retro",
        on_wait: &mut |_, _| {},
    })?;
    let tenant = store.add_tenant(&TenantName::new("bench")?, &Actor::Cli)?;
    // Each distinct observable is seen on 8 (endpoint, day) pairs.
    let per_observable = 8u64;
    let distinct = (sightings / per_observable).max(1);
    let mut rng = Rng::new(5);
    let started = Instant::now();
    let mut written = 0u64;
    let mut batch = Batch::default();
    let base = Time::parse("2023-03-01T00:00:00Z")?;
    let observable = |i: u64| -> Observable {
        match i % 10 {
            0..=5 => Observable {
                kind: ObservableKind::Domain,
                value: format!("h{}.site-{}.com", i % 7, i),
            },
            6..=8 => Observable {
                kind: ObservableKind::Sha256,
                value: format!("{:064x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            },
            _ => Observable {
                kind: ObservableKind::Ip,
                value: format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff),
            },
        }
    };
    for i in 0..distinct {
        let obs = observable(i);
        for k in 0..per_observable {
            let t = Time(
                base.0 + (rng.range(0, 30) as i64) * turncoat_core::time::MICROS_PER_DAY + k as i64,
            );
            batch.sightings.push(SightingDelta {
                observable: obs.clone(),
                endpoint: format!("ep-{}", (i * 31 + k * 7) % 1000),
                first: t,
                last: t,
                count: 1 + rng.range(0, 5),
                event: 0,
            });
        }
        if batch.sightings.len() >= 200_000 {
            written += batch.sightings.len() as u64;
            store.commit_batch(&tenant, std::mem::take(&mut batch), &mut |_| Vec::new())?;
        }
    }
    written += batch.sightings.len() as u64;
    store.commit_batch(&tenant, batch, &mut |_| Vec::new())?;
    let load_seconds = started.elapsed().as_secs_f64();
    let stored = store.stats(&tenant)?.sightings;

    // New intel: mostly misses, 1% hitting stored values (parent domains
    // of stored names, and stored hashes).
    let mut intel = indicators(indicator_count, 13);
    for (n, slot) in intel.iter_mut().enumerate().filter(|(n, _)| n % 100 == 0) {
        let i = (n as u64 * 7919) % distinct;
        let obs = observable(i);
        *slot = match obs.kind {
            ObservableKind::Domain => Indicator::new(
                IndicatorKind::Domain,
                obs.value.split_once('.').map_or(&obs.value[..], |(_, p)| p),
                "bench",
            )?,
            ObservableKind::Sha256 => Indicator::new(IndicatorKind::Sha256, &obs.value, "bench")?,
            _ => Indicator::new(IndicatorKind::Ip, &obs.value, "bench")?,
        };
    }

    // Baseline: the naive retro-hunt, every stored sighting fetched and
    // checked against the index.
    let started = Instant::now();
    let index = IndicatorIndex::new(intel.clone());
    let mut ids = Vec::new();
    store.scan_observables(&tenant, &ObservableKind::ALL, &mut |id, _, _| ids.push(id))?;
    let mut naive_hits = 0u64;
    for chunk in ids.chunks(10_000) {
        for s in store.sightings(&tenant, chunk)? {
            index.lookup(&s.observable, |_| naive_hits += 1);
        }
    }
    let naive = row(
        "baseline: scan every sighting",
        stored,
        started.elapsed().as_secs_f64(),
        None,
    );

    let started = Instant::now();
    let outcome = turncoat_engine::retro::hunt_indicators(&mut *store, &tenant, &index)?;
    let hunt = row(
        "retro-hunt (dictionary, then matching sightings)",
        stored,
        started.elapsed().as_secs_f64(),
        Some(naive.per_second),
    );
    let rows = vec![naive, hunt];
    let summary = serde_json::json!({
        "sightings": stored,
        "distinct_observables": distinct,
        "indicators": intel.len(),
        "alerts_raised": outcome.new_alerts,
        "sightings_matched_naively": naive_hits,
        "load_seconds": load_seconds,
        "written": written,
        "peak_rss_mb": peak_rss_mb(),
        "rows": rows,
    });
    match format {
        OutputFormat::Json => print_json(&summary)?,
        OutputFormat::Table => {
            println!(
                "retro-hunt of {} new indicators against {stored} stored sightings ({distinct} distinct observables; loaded in {load_seconds:.1}s)",
                intel.len()
            );
            print_rows(&rows)?;
            println!(
                "alerts raised: {}; peak RSS {:.0} MB",
                outcome.new_alerts,
                peak_rss_mb().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}

/// Beacon analysis of stored connection records, beside a plain scan of
/// the same archive.
pub fn beacons(records: u64, pairs: u64, dir: &Path, format: OutputFormat) -> anyhow::Result<()> {
    use turncoat_core::{Fields, Logsource, Value};
    let mut store = SqliteStore::open(&dir.join("data"))?;
    let tenant = store.add_tenant(&TenantName::new("bench")?, &Actor::Cli)?;
    let base = Time::parse("2023-03-01T00:00:00Z")?;
    let per_pair = (records / pairs.max(1)).max(1);
    let mut rng = Rng::new(3);
    let started = Instant::now();
    // Pair p connects every (p % 50 + 1) minutes with 10% jitter; time
    // advances pair-major within each batch-sized slice so batches touch
    // few archive hours, as real, time-ordered logs do.
    let mut batch = Batch::default();
    let mut written = 0u64;
    let slices = 20u64;
    for slice in 0..slices {
        for p in 0..pairs {
            let period = (p % 50 + 1) * 60;
            let n = per_pair / slices;
            for k in 0..n {
                let i = slice * n + k;
                let jitter = rng.range(0, period / 10 + 1) as i64;
                let t = Time(base.0 + ((i * period) as i64 + jitter) * 1_000_000);
                let mut fields = Fields::with_capacity(6);
                fields.push("id.orig_h", format!("10.0.{}.{}", (p / 100) % 250, p % 100));
                fields.push(
                    "id.resp_h",
                    format!("198.51.{}.{}", (p * 7) % 250, (p * 13) % 250),
                );
                fields.push("id.resp_p", Value::Int(443));
                fields.push("orig_bytes", Value::Int(500 + (k % 7) as i64));
                fields.push("duration", Value::Float(0.5));
                batch.events.push(&turncoat_core::Event {
                    time: t,
                    host: format!("10.0.{}.{}", (p / 100) % 250, p % 100),
                    logsource: Logsource::fixed(Some("zeek"), None, Some("conn")),
                    fields,
                });
                if batch.events.len() >= 100_000 {
                    written += batch.events.len() as u64;
                    store.commit_batch(&tenant, std::mem::take(&mut batch), &mut |_| Vec::new())?;
                }
            }
        }
    }
    written += batch.events.len() as u64;
    store.commit_batch(&tenant, batch, &mut |_| Vec::new())?;
    let load_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut scanned = 0u64;
    store.scan_archive(&tenant, None, turncoat_store::Projection::ALL, &mut |_| {
        scanned += 1
    })?;
    let scan = row(
        "baseline: read every stored record",
        scanned,
        started.elapsed().as_secs_f64(),
        None,
    );

    let started = Instant::now();
    let mut analyzer =
        turncoat_engine::beacons::Analyzer::new(None, Default::default(), Default::default());
    store.scan_archive(
        &tenant,
        None,
        turncoat_engine::beacons::PROJECTION,
        &mut |e| analyzer.event(&e),
    )?;
    let report = analyzer.finish(0.0);
    let analysed = row(
        "beacon analysis (read + pair series + scores)",
        scanned,
        started.elapsed().as_secs_f64(),
        Some(scan.per_second),
    );
    let rows = vec![scan, analysed];
    let summary = serde_json::json!({
        "records": written,
        "pairs": report.pairs,
        "scored": report.beacons.len(),
        "load_seconds": load_seconds,
        "peak_rss_mb": peak_rss_mb(),
        "rows": rows,
    });
    match format {
        OutputFormat::Json => print_json(&summary)?,
        OutputFormat::Table => {
            println!(
                "beacon analysis of {written} stored connection records over {} pairs (loaded in {load_seconds:.1}s)",
                report.pairs
            );
            print_rows(&rows)?;
            println!(
                "pairs scored: {}; peak RSS {:.0} MB",
                report.beacons.len(),
                peak_rss_mb().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}

/// Sigma rules over simulator events: routed by logsource on one and on
/// all cores, beside every rule's detection evaluated on every event.
pub fn sigma(
    events: u64,
    rules_dir: &[std::path::PathBuf],
    dir: &Path,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut rules = turncoat_sigma::RuleSet::load(rules_dir)?;
    let compile_seconds = started.elapsed().as_secs_f64();
    rules.failed.clear();
    // Simulator ECS events: process starts, DNS, loads, network, files, web.
    let per_day = (events / (50 * 21)).max(1);
    let cfg = Config {
        tenants: 1,
        endpoints: 50,
        days: 21,
        seed: 9,
        scenario: Scenario::ThreeCx,
        events_per_endpoint_day: per_day,
        ..Config::default()
    };
    let fleet = dir.join("fleet");
    let (truth, _) = turncoat_sim::simulate(&cfg, &fleet, &mut |_| {})?;
    let mut collect = turncoat_formats::Collect::default();
    read_ecs(
        &fleet.join(&truth.tenants[0].name).join("ecs.ndjson"),
        &mut collect,
    )?;
    let events: Vec<Event> = collect
        .records
        .into_iter()
        .filter_map(|(r, _)| {
            if let Record::Event(e) = r {
                Some(e)
            } else {
                None
            }
        })
        .collect();
    let n = events.len() as u64;

    let started = Instant::now();
    let mut naive_hits = 0u64;
    for e in &events {
        let folded = turncoat_sigma::detection::fold(&e.fields);
        let target = turncoat_sigma::detection::Target::new(&e.fields, &folded);
        for r in &rules.rules {
            if r.detects(&target) && r.applies_to(e) {
                naive_hits += 1;
            }
        }
    }
    let naive = row(
        "baseline: every rule's detection on every event",
        n,
        started.elapsed().as_secs_f64(),
        None,
    );

    let started = Instant::now();
    let mut router = rules.router();
    let mut routed_hits = 0u64;
    for e in &events {
        router.matches(e, |_, _| routed_hits += 1);
    }
    let one = row(
        "routed by logsource + literal prefilter, one core",
        n,
        started.elapsed().as_secs_f64(),
        Some(naive.per_second),
    );

    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let started = Instant::now();
    let chunk = events.len().div_ceil(threads).max(1);
    let parallel_hits: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = events
            .chunks(chunk)
            .map(|part| {
                let rules = &rules;
                s.spawn(move || {
                    let mut router = rules.router();
                    let mut hits = 0u64;
                    for e in part {
                        router.matches(e, |_, _| hits += 1);
                    }
                    hits
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let all = row(
        &format!("routed by logsource + literal prefilter, {threads} cores"),
        n,
        started.elapsed().as_secs_f64(),
        Some(naive.per_second),
    );
    anyhow::ensure!(
        naive_hits == routed_hits && routed_hits == parallel_hits,
        "engines disagree: {naive_hits} / {routed_hits} / {parallel_hits}"
    );
    let rows = vec![naive, one, all];
    let summary = serde_json::json!({
        "events": n,
        "rules": rules.rules.len(),
        "compile_seconds": compile_seconds,
        "detections": routed_hits,
        "peak_rss_mb": peak_rss_mb(),
        "rows": rows,
    });
    match format {
        OutputFormat::Json => print_json(&summary)?,
        OutputFormat::Table => {
            println!(
                "{} Sigma rules (compiled in {compile_seconds:.2}s) over {n} simulator events; {routed_hits} detections, identical in every mode",
                rules.rules.len()
            );
            print_rows(&rows)?;
            println!("peak RSS {:.0} MB", peak_rss_mb().unwrap_or(0.0));
        }
    }
    Ok(())
}

/// Writes `files` files totalling about `megabytes` MB under `dir`: random
/// (compressed-looking) data, text with URLs, and structured binary-like
/// data with embedded strings, in equal parts. Deterministic.
fn write_release_tree(dir: &Path, files: usize, megabytes: u64, seed: u64) -> anyhow::Result<u64> {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let average = (megabytes << 20) / files.max(1) as u64;
    let mut total = 0;
    for i in 0..files {
        let size = (average / 2 + next() % average.max(1)) as usize;
        let mut data = Vec::with_capacity(size);
        match i % 3 {
            0 => {
                while data.len() < size {
                    data.extend_from_slice(&next().to_le_bytes());
                }
            }
            1 => {
                while data.len() < size {
                    let line = format!(
                        "line {} of the release notes; see https://updates{}.example.com/path/{} for details\n",
                        next() % 100_000,
                        next() % 50,
                        next() % 1000
                    );
                    data.extend_from_slice(line.as_bytes());
                }
            }
            _ => {
                while data.len() < size {
                    let word = next();
                    data.extend_from_slice(&[0u8; 12]);
                    data.extend_from_slice(&word.to_le_bytes());
                    if word % 16 == 0 {
                        data.extend_from_slice(b"kernel32.dll\0GetProcAddress\0LoadLibraryA\0");
                    }
                }
            }
        }
        data.truncate(size);
        let sub = dir.join(format!("d{:02}", i % 40));
        std::fs::create_dir_all(&sub)?;
        std::fs::write(sub.join(format!("f{i:05}.bin")), &data)?;
        total += data.len() as u64;
    }
    Ok(total)
}

/// `vet` with YARA beside `yara -p THREADS -r` on the same tree and the same
/// rule files (those both engines compile), then a diff of two releases.
pub fn vet(
    files: usize,
    megabytes: u64,
    yara_paths: &[std::path::PathBuf],
    threads: usize,
    dir: &Path,
    format: OutputFormat,
) -> anyhow::Result<()> {
    use std::process::Command;
    let tree = dir.join("release");
    let bytes = write_release_tree(&tree, files, megabytes, 7)?;

    // Rule files both engines compile.
    let all = turncoat_vet::yara::YaraRules::compile(yara_paths)?;
    let failed_x: std::collections::HashSet<String> =
        all.failed.iter().map(|f| f.file.clone()).collect();
    let rule_files = turncoat_vet::yara::rule_files(yara_paths)?;
    let externals = ["filename", "filepath", "extension", "filetype", "owner"];
    let yara = |args: &[&std::ffi::OsStr]| -> anyhow::Result<std::process::Output> {
        let mut cmd = Command::new("yara");
        for x in externals {
            cmd.arg("-d").arg(format!("{x}="));
        }
        Ok(cmd.args(args).output()?)
    };
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty)?;
    let mut common = Vec::new();
    for f in &rule_files {
        if failed_x.contains(&f.display().to_string()) {
            continue;
        }
        if yara(&[f.as_os_str(), empty.as_os_str()])?.status.success() {
            common.push(f.clone());
        }
    }
    anyhow::ensure!(!common.is_empty(), "no rule file compiles in both engines");
    // Content the rules do match, so that the two engines' match sets can
    // be compared: the rule files themselves, whose text holds most of
    // their rules' strings.
    let samples = tree.join("rules");
    std::fs::create_dir_all(&samples)?;
    let mut bytes = bytes;
    for (i, f) in common.iter().enumerate() {
        let name = f
            .file_name()
            .map_or_else(|| "rule".into(), |n| n.to_string_lossy().into_owned());
        bytes += std::fs::copy(f, samples.join(format!("{i:04}-{name}")))?;
    }
    let mb = bytes as f64 / (1 << 20) as f64;

    let mut args: Vec<&std::ffi::OsStr> = vec!["-p".as_ref(), "-r".as_ref()];
    let threads_arg = threads.to_string();
    args.insert(1, threads_arg.as_ref());
    args.extend(common.iter().map(|p| p.as_os_str()));
    let mut compile_only = args.clone();
    compile_only.push(empty.as_os_str());
    args.push(tree.as_os_str());
    // Runs yara, timed; fails unless it succeeds.
    let timed = |args: &[&std::ffi::OsStr]| -> anyhow::Result<(std::process::Output, f64)> {
        let started = Instant::now();
        let out = yara(args)?;
        anyhow::ensure!(
            out.status.success(),
            "yara: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out, started.elapsed().as_secs_f64()))
    };
    let (_, yara_compile) = timed(&compile_only)?;
    let (out, yara_total) = timed(&args)?;
    // `RULE PATH` per match; paths made relative to the tree as vet's are.
    let prefix = format!("{}/", tree.display());
    let yara_set: BTreeSet<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (rule, path) = l.split_once(' ')?;
            Some((rule.to_owned(), path.strip_prefix(&prefix)?.to_owned()))
        })
        .collect();

    let started = Instant::now();
    let rules = turncoat_vet::yara::YaraRules::compile(&common)?;
    let our_compile = started.elapsed().as_secs_f64();
    let options = turncoat_vet::Options {
        threads,
        yara: Some(rules),
        ..turncoat_vet::Options::default()
    };
    let started = Instant::now();
    let report = turncoat_vet::vet(&tree, None, &options)?;
    let our_scan = started.elapsed().as_secs_f64();
    let our_set: BTreeSet<(String, String)> = report
        .findings
        .iter()
        .filter(|f| f.id == turncoat_vet::FindingId::YaraMatch)
        .filter_map(|f| Some((f.evidence["rule"].as_str()?.to_owned(), f.file.clone())))
        .collect();
    let (yara_matches, our_matches) = (yara_set.len(), our_set.len());
    let agreed = yara_set.intersection(&our_set).count();
    // The first disagreements, to explain the difference: rules reading
    // the `filename`/`extension` externals see real values only in vet.
    let only_yara: Vec<_> = yara_set.difference(&our_set).take(5).collect();
    let only_ours: Vec<_> = our_set.difference(&yara_set).take(5).collect();

    // A second release: every tenth file changed, a few added and removed.
    let next_tree = dir.join("release-next");
    write_release_tree(&next_tree, files, megabytes, 7)?;
    for (i, e) in walk_files(&next_tree)?.into_iter().enumerate() {
        if i % 10 == 0 {
            let mut data = std::fs::read(&e)?;
            data.extend_from_slice(b" https://new-endpoint.example.net/x ");
            std::fs::write(&e, data)?;
        }
    }
    let diff_options = turncoat_vet::Options {
        threads,
        ..turncoat_vet::Options::default()
    };
    let started = Instant::now();
    let diffed = turncoat_vet::vet(&next_tree, Some(&tree), &diff_options)?;
    let diff_seconds = started.elapsed().as_secs_f64();
    let changed = diffed.diff.as_ref().map_or(0, |d| d.changed.len());

    let yara_scan = (yara_total - yara_compile).max(1e-9);
    let rows = vec![
        row(
            &format!("baseline: yara 4 -p {threads}, scan (total minus compile)"),
            bytes >> 20,
            yara_scan,
            None,
        ),
        row(
            &format!("turncoat vet, {threads} threads: unpack + analyse + YARA"),
            bytes >> 20,
            our_scan,
            Some((bytes >> 20) as f64 / yara_scan),
        ),
    ];
    let summary = serde_json::json!({
        "files": files,
        "megabytes": mb,
        "rule_files": common.len(),
        "rules_compiled": options.yara.as_ref().map(|r| r.compiled),
        "threads": threads,
        "yara_compile_seconds": yara_compile,
        "yara_total_seconds": yara_total,
        "yara_matches": yara_matches,
        "turncoat_compile_seconds": our_compile,
        "turncoat_seconds": our_scan,
        "turncoat_yara_matches": our_matches,
        "matches_in_both": agreed,
        "only_yara": only_yara,
        "only_turncoat": only_ours,
        "diff_seconds": diff_seconds,
        "diff_changed_files": changed,
        "peak_rss_mb": peak_rss_mb(),
        "rows": rows,
    });
    match format {
        OutputFormat::Json => print_json(&summary)?,
        OutputFormat::Table => {
            println!(
                "{files} generated files and the {} rule files both engines compile as samples, {mb:.0} MB ({} rules in yara-x); {threads} threads",
                common.len(),
                options.yara.as_ref().map_or(0, |r| r.compiled)
            );
            print_rows(&rows)?;
            println!(
                "compile: yara {yara_compile:.2}s, yara-x {our_compile:.2}s; matches (rule, file): yara {yara_matches}, turncoat {our_matches}, both {agreed}"
            );
            if !only_yara.is_empty() || !only_ours.is_empty() {
                println!(
                    "first only in yara: {only_yara:?}; first only in turncoat: {only_ours:?}"
                );
            }
            println!(
                "diff of two {mb:.0} MB releases ({changed} files changed): {diff_seconds:.2}s; peak RSS {:.0} MB",
                peak_rss_mb().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}

fn walk_files(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            for e in std::fs::read_dir(&p)? {
                stack.push(e?.path());
            }
        } else {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}
