//! `turncoat demo`: a simulated multi-tenant fleet through the whole
//! pipeline, checked against the simulator's own record of what it planted.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use serde::Serialize;
use turncoat_core::{Actor, AlertKind, Role, TenantName};
use turncoat_engine::{ExposureRow, IngestOptions};
use turncoat_sim::Scenario;
use turncoat_sim::truth::{Alerted, Score};
use turncoat_store::{Alert, AlertFilter, CampaignAlert, Scope, SqliteStore, Store, Tenant};

use crate::output::Exit;
use crate::output::{OutputFormat, Table, print_json};
use crate::progress::Bar;

/// The intel pack shipped with the project, built into the binary.
pub const PACK: [(&str, &str); 2] = [
    (
        "advisory.toml",
        include_str!("../../../../intel/3cx/advisory.toml"),
    ),
    (
        "indicators.csv",
        include_str!("../../../../intel/3cx/indicators.csv"),
    ),
];

#[derive(Serialize)]
struct TenantSummary {
    tenant: String,
    endpoints: u64,
    exposed: usize,
    contacted_iocs: usize,
    alerts: BTreeMap<String, usize>,
}

#[derive(Serialize)]
struct DemoReport {
    data_dir: PathBuf,
    events: u64,
    simulate_seconds: f64,
    ingest_seconds: f64,
    retro_hunt_seconds: f64,
    tenants: Vec<TenantSummary>,
    scores: Vec<Score>,
}

#[derive(Parser, Debug)]
pub(crate) struct DemoArgs {
    /// End after the report instead of serving the console on its data.
    #[arg(long)]
    no_serve: bool,
    /// Where the console listens (another free port when this is taken).
    #[arg(long, default_value = "127.0.0.1:8440")]
    listen: std::net::SocketAddr,
    #[command(flatten)]
    fleet: super::FleetArgs,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

struct Style {
    on: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
    fn head(&self, s: &str) -> String {
        self.paint("1", s)
    }
}

/// Runs the demo: exit 1 unless every planted fact was found and nothing
/// else was raised.
pub(crate) fn run(args: DemoArgs) -> anyhow::Result<Exit> {
    let (clean, data) = demo(&args)?;
    if !args.no_serve {
        serve_console(&args, data)?;
    }
    Ok(Exit::findings(!clean))
}

/// Serves the console on the demo's data until Ctrl-C, with an admin
/// whose generated password is printed this once.
fn serve_console(args: &DemoArgs, data: PathBuf) -> anyhow::Result<()> {
    let password = {
        let mut store = SqliteStore::open(&data)?;
        let (_, password) =
            turncoat_auth::add_user(&mut store, "admin", Role::Admin, &[], None, &Actor::Cli)?;
        password.context("a generated password")?
    };
    let listen = if std::net::TcpListener::bind(args.listen).is_ok() {
        args.listen
    } else {
        std::net::SocketAddr::new(args.listen.ip(), 0)
    };
    let table = args.format == OutputFormat::Table;
    let schedule = super::serve::Schedule {
        taxii_poll: std::time::Duration::from_secs(15 * 60),
        duties: true,
    };
    super::serve::serve(
        listen,
        turncoat_store::StoreLocation::Dir(data),
        None,
        None,
        Default::default(),
        schedule,
        |url| {
            let lines = [
                format!("\nConsole: {url}/"),
                format!("Sign in as admin with password {password} (shown once). Ctrl-C stops it."),
            ];
            for line in lines {
                // JSON on stdout stays one document.
                if table {
                    println!("{line}");
                } else {
                    eprintln!("{line}");
                }
            }
        },
    )
}

/// Runs the demo; returns whether every planted fact was found and nothing
/// else was raised, and the data directory it filled.
fn demo(options: &DemoArgs) -> anyhow::Result<(bool, PathBuf)> {
    let style = Style {
        on: std::io::stdout().is_terminal() && options.format == OutputFormat::Table,
    };
    let table = options.format == OutputFormat::Table;
    let dir = tempfile::Builder::new()
        .prefix("turncoat-demo-")
        .tempdir()?
        .keep();
    let fleet = dir.join("fleet");
    let data = dir.join("data");
    if table {
        println!("{} {}", style.head("turncoat demo:"), dir.display());
    }

    let cfg = options.fleet.config(Scenario::ThreeCx);
    let bar = Bar::new();
    turncoat_engine::Progress::start(&bar, "simulate", Some(cfg.days));
    let (truth, sim) = turncoat_sim::simulate(&cfg, &fleet, &mut |_| {
        turncoat_engine::Progress::advance(&bar, 1)
    })?;
    turncoat_engine::Progress::finish(&bar);
    if table {
        println!(
            "1. simulated {} tenants, {} endpoints, {} days from {}: {} events ({:.0}/s)",
            cfg.tenants,
            cfg.tenants * cfg.endpoints,
            cfg.days,
            cfg.start.date_string(),
            sim.events,
            sim.events_per_second()
        );
    }

    let mut store = SqliteStore::open(&data)?;
    let started = Instant::now();
    let mut ingested = 0;
    for t in &truth.tenants {
        let tenant = store.add_tenant(&TenantName::new(&t.name)?, &Actor::Cli)?;
        let report = turncoat_engine::ingest(
            &mut store,
            &tenant,
            &[fleet.join(&t.name)],
            &IngestOptions::default(),
            &bar,
            &Actor::Cli,
        )?;
        ingested += report.events + report.inventory_records;
        anyhow::ensure!(
            report.skipped_records == 0,
            "the simulator wrote records the readers skipped: {:?}",
            report.issues
        );
    }
    let ingest_seconds = started.elapsed().as_secs_f64();
    let alerts_before = store
        .alerts(&store.all_tenants()?, &AlertFilter::default())?
        .len();
    if table {
        println!(
            "2. ingested {ingested} records in {ingest_seconds:.1}s ({:.0}/s); alerts before any intel: {alerts_before}",
            ingested as f64 / ingest_seconds.max(1e-9)
        );
    }

    let pack = write_pack(&dir)?;
    let report = turncoat_engine::import_intel(&mut store, &[pack], None, &bar, &Actor::Cli, None)?;
    let advisory = report
        .advisories_changed
        .first()
        .cloned()
        .context("the intel pack holds no advisory")?;
    if table {
        println!(
            "3. imported the 3CX intel pack ({} indicators, advisory {advisory}); retro-hunt raised {} alerts in {:.3}s",
            report.indicators_new,
            report.new_alerts(),
            report.retro_seconds
        );
    }

    let tenants = store.tenants()?;
    let scope = Scope::tenants(&tenants);
    let alerts = store.alerts(&scope, &AlertFilter::default())?;
    let exposure = turncoat_engine::exposure(&store, &scope, Some(&advisory))?;
    let summaries = summarise(&store, &tenants, &alerts, &exposure)?;
    let alerted = alerts.iter().map(|a| Alerted {
        kind: a.kind,
        tenant: a.tenant.to_string(),
        endpoint: a.endpoint.clone(),
        source: a.source.clone(),
    });
    // The pipeline analyses the last week: planted beacons active in it.
    let scores = truth.score(
        alerted,
        &advisory,
        turncoat_engine::beacons::PIPELINE_WINDOW_DAYS,
    );
    let clean = scores
        .iter()
        .filter(|s| s.gating)
        .all(|s| s.missed.is_empty() && s.false_alerts.is_empty());

    if !table {
        print_json(&DemoReport {
            data_dir: data.clone(),
            events: sim.events,
            simulate_seconds: sim.seconds,
            ingest_seconds,
            retro_hunt_seconds: report.retro_seconds,
            tenants: summaries,
            scores,
        })?;
        return Ok((clean, data));
    }

    print_findings(
        &style,
        &summaries,
        &exposure,
        &alerts,
        &store.campaigns(&scope)?,
    )?;
    print_scores(&style, &scores)?;
    println!("\nExplore: turncoat --data {} alerts", data.display());
    Ok((clean, data))
}

/// Per tenant: endpoints, who is exposed, who contacted the indicators,
/// alerts by kind.
fn summarise(
    store: &SqliteStore,
    tenants: &[Tenant],
    alerts: &[Alert],
    exposure: &[ExposureRow],
) -> anyhow::Result<Vec<TenantSummary>> {
    let mut summaries = Vec::new();
    for t in tenants {
        let mine: Vec<&Alert> = alerts.iter().filter(|a| a.tenant == *t.name()).collect();
        let mut by_kind = BTreeMap::new();
        for a in &mine {
            *by_kind.entry(a.kind.to_string()).or_insert(0) += 1;
        }
        summaries.push(TenantSummary {
            tenant: t.name().to_string(),
            endpoints: store.stats(t)?.endpoints,
            exposed: exposure
                .iter()
                .filter(|r| r.tenant == *t.name())
                .map(|r| &r.endpoint)
                .collect::<BTreeSet<_>>()
                .len(),
            contacted_iocs: mine
                .iter()
                .filter(|a| a.kind == AlertKind::Ioc)
                .map(|a| &a.endpoint)
                .collect::<BTreeSet<_>>()
                .len(),
            alerts: by_kind,
        });
    }
    Ok(summaries)
}

/// The demo's findings as an analyst reads them: per tenant, exposure,
/// contact before the advisory, top alerts, campaigns.
fn print_findings(
    style: &Style,
    summaries: &[TenantSummary],
    exposure: &[ExposureRow],
    alerts: &[Alert],
    campaigns: &[CampaignAlert],
) -> anyhow::Result<()> {
    println!("\n{}", style.head("Per tenant"));
    let mut t = Table::new(&[
        "tenant",
        "endpoints",
        "exposed",
        "contacted iocs",
        "alerts by kind",
    ]);
    for s in summaries {
        let kinds: Vec<String> = s.alerts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        t.row(vec![
            s.tenant.clone(),
            s.endpoints.to_string(),
            s.exposed.to_string(),
            s.contacted_iocs.to_string(),
            kinds.join(", "),
        ]);
    }
    t.print()?;

    println!(
        "\n{}",
        style.head("Exposure: who ran an affected 3CX version, and when")
    );
    crate::output::exposure_table(exposure).print()?;

    println!(
        "\n{}",
        style.head("Contact with the attacker's infrastructure, before the advisory existed")
    );
    let mut t = Table::new(&["tenant", "endpoint", "first seen", "count", "what"]);
    for a in alerts
        .iter()
        .filter(|a| a.kind == AlertKind::Ioc && !a.source.chars().all(|c| c.is_ascii_hexdigit()))
    {
        t.row(vec![
            a.tenant.to_string(),
            a.endpoint.clone(),
            a.first_seen.to_string(),
            a.count.to_string(),
            a.title.clone(),
        ]);
    }
    t.print()?;

    println!("\n{}", style.head("Top alerts"));
    let mut t = Table::new(&[
        "id", "tenant", "endpoint", "kind", "severity", "count", "title",
    ]);
    for a in alerts.iter().take(12) {
        t.row(vec![
            a.id.to_string(),
            a.tenant.to_string(),
            a.endpoint.clone(),
            a.kind.to_string(),
            a.severity.to_string(),
            a.count.to_string(),
            a.title.clone(),
        ]);
    }
    t.print()?;
    println!("({} alerts in all)", alerts.len());

    println!(
        "\n{}",
        style.head("Campaigns: the same detection in several customers")
    );
    let mut t = Table::new(&["id", "kind", "source", "tenants", "alerts", "first seen"]);
    for c in campaigns {
        let names: Vec<String> = c.tenants.iter().map(ToString::to_string).collect();
        t.row(vec![
            c.id.to_string(),
            c.kind.to_string(),
            c.source.clone(),
            names.join(", "),
            c.member_alerts.len().to_string(),
            c.first_seen.to_string(),
        ]);
    }
    t.print()?;

    Ok(())
}

/// Found, missed and false alerts against what the simulator planted.
fn print_scores(style: &Style, scores: &[Score]) -> anyhow::Result<()> {
    println!("\n{}", style.head("Against the simulator's truth"));
    let mut t = Table::new(&["kind", "planted", "found", "missed", "false"]);
    for s in scores {
        let mark = |n: usize| {
            if n == 0 {
                style.paint("32", "0")
            } else {
                style.paint("31", &n.to_string())
            }
        };
        let kind = if s.gating {
            s.kind.clone()
        } else {
            format!(
                "{} (timing only, last {} days; informational)",
                s.kind,
                turncoat_engine::beacons::PIPELINE_WINDOW_DAYS
            )
        };
        t.row(vec![
            kind,
            s.planted.to_string(),
            s.found.to_string(),
            mark(s.missed.len()),
            mark(s.false_alerts.len()),
        ]);
    }
    t.print()?;
    for s in scores {
        for m in &s.missed {
            println!("missed {}: {m}", s.kind);
        }
        for f in &s.false_alerts {
            println!("false {}: {f}", s.kind);
        }
    }
    if scores
        .iter()
        .any(|s| !s.gating && !s.false_alerts.is_empty())
    {
        println!(
            "(time sync and update services beacon too: `turncoat allow add --destination ntp.ubuntu.com --reason \"time sync\"` clears them for stored data at once)"
        );
    }
    Ok(())
}

/// Writes the built-in intel pack to `dir/intel/3cx` and returns its path.
fn write_pack(dir: &Path) -> anyhow::Result<PathBuf> {
    let pack = dir.join("intel").join("3cx");
    std::fs::create_dir_all(&pack)?;
    for (name, text) in PACK {
        std::fs::write(pack.join(name), text)?;
    }
    Ok(pack)
}
