//! `turncoat beacons`: rank pairs by how much they beacon.

use std::path::PathBuf;

use anyhow::bail;
use clap::Parser;
use turncoat_engine::beacons::{Allowlist, Networks};
use turncoat_store::Scope;

use super::{Context, tenant};
use crate::output::{Exit, OutputFormat, Table, print_json};

#[derive(Parser, Debug)]
pub(crate) struct BeaconsArgs {
    /// The tenant whose stored records to analyse (when no paths are given).
    #[arg(long)]
    tenant: Option<String>,
    /// Only connections at or after this time (RFC 3339 or a date).
    #[arg(long)]
    since: Option<String>,
    /// Only pairs whose ranked score reaches this.
    #[arg(long, default_value_t = 0.5)]
    min_score: f64,
    /// With --tenant: record pairs ranked at or above --threshold as alerts of kind beacon.
    #[arg(long)]
    raise: bool,
    /// Also analyse pairs between two internal addresses (left out by
    /// default, as RITA does: a host's chatter with its router is not C2).
    #[arg(long)]
    include_internal: bool,
    /// Show how each beacon's rank was computed.
    #[arg(long)]
    explain: bool,
    /// Ranked score from which --raise makes an alert.
    #[arg(long, default_value_t = turncoat_engine::beacons::DEFAULT_ALERT_THRESHOLD)]
    threshold: f64,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
    /// Log files or directories to analyse without a data directory.
    paths: Vec<PathBuf>,
}

pub(crate) fn run(args: BeaconsArgs, ctx: &Context) -> anyhow::Result<Exit> {
    let since = args
        .since
        .as_deref()
        .map(turncoat_core::Time::parse)
        .transpose()?;
    let report = if args.paths.is_empty() {
        let Some(name) = &args.tenant else {
            bail!("give log files to analyse, or --tenant to analyse a tenant's stored records");
        };
        let mut store = if args.raise { ctx.open()? } else { ctx.read()? };
        let tenant = tenant(&*store, name)?;
        let report = turncoat_engine::beacons::analyze_stored(
            &*store,
            &tenant,
            since,
            args.min_score,
            args.include_internal,
        )?;
        if args.raise {
            let intel = turncoat_engine::load_intel(&mut *store)?;
            let outcome = turncoat_engine::beacons::raise(
                &mut *store,
                &tenant,
                &report,
                args.threshold,
                &intel,
            )?;
            eprintln!(
                "beacon alerts: {} new, {} updated",
                outcome.new_alerts, outcome.updated_alerts
            );
        }
        report
    } else {
        if args.raise {
            bail!("--raise needs --tenant: alerts belong to a tenant's stored records");
        }
        // Log files need no data directory; global allowlist
        // entries and internal ranges apply when one exists.
        let (allow, internal) = if ctx.store.exists() {
            let store = ctx.read()?;
            let global = Scope::tenants(&[]);
            (store.allowlist(&global)?, store.internal_networks(&global)?)
        } else {
            Default::default()
        };
        turncoat_engine::beacons::beacons_offline(
            &args.paths,
            since,
            args.min_score,
            Allowlist::new(&allow),
            Networks::new(&internal, args.include_internal),
        )?
    };
    for unread in &report.unread {
        eprintln!("turncoat: {unread}");
    }
    match args.format {
        OutputFormat::Json => print_json(&report.ranked())?,
        OutputFormat::Table => {
            let mut t = Table::new(&[
                "src",
                "dst",
                "fqdn",
                "count",
                "score",
                "ts",
                "ds",
                "dur",
                "hist",
                "prevalence",
                "rank",
                "median gap s",
            ]);
            for b in &report.beacons {
                t.row(vec![
                    b.src.clone(),
                    b.dst.clone(),
                    b.fqdn.clone().unwrap_or_default(),
                    b.count.to_string(),
                    format!("{:.3}", b.score),
                    format!("{:.2}", b.ts_score),
                    format!("{:.2}", b.ds_score),
                    format!("{:.2}", b.dur_score),
                    format!("{:.2}", b.hist_score),
                    format!("{:.2}", b.prevalence),
                    format!("{:.3}", b.rank_score),
                    format!("{:.0}", b.median_interval_s),
                ]);
            }
            t.print()?;
            if args.explain {
                for b in &report.beacons {
                    println!("{} -> {}: {}", b.src, b.dst, b.explain());
                }
            }
            println!(
                "{} connections, {} pairs, {} ranked at or above {}; {} strobes, {} long connections",
                report.connections,
                report.pairs,
                report.beacons.len(),
                args.min_score,
                report.strobes.len(),
                report.long_connections.len()
            );
            for s in &report.strobes {
                println!(
                    "strobe: {} -> {} ({}) {} connections",
                    s.src,
                    s.dst,
                    s.fqdn.as_deref().unwrap_or("-"),
                    s.count
                );
            }
            for l in report.long_connections.iter().take(10) {
                println!(
                    "long connection: {} -> {} ({}) {:.0}s",
                    l.src,
                    l.dst,
                    l.fqdn.as_deref().unwrap_or("-"),
                    l.longest_s
                );
            }
        }
    }
    Ok(Exit::findings(!report.beacons.is_empty()))
}
