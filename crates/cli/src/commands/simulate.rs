//! `turncoat simulate`: a simulated fleet's telemetry, inventory and logs.

use std::path::PathBuf;

use clap::Parser;
use turncoat_sim::Scenario;

use crate::output::{Exit, OutputFormat, print_json};
use crate::progress::Bar;

#[derive(Parser, Debug)]
pub(crate) struct SimulateArgs {
    /// Output directory (one folder per tenant, plus truth.json).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    fleet: super::FleetArgs,
    /// 3cx (the compromise planted) or clean.
    #[arg(long, default_value = "3cx", value_parser = str::parse::<Scenario>)]
    scenario: Scenario,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

pub(crate) fn run(args: &SimulateArgs) -> anyhow::Result<Exit> {
    let cfg = args.fleet.config(args.scenario);
    let bar = Bar::new();
    turncoat_engine::Progress::start(&bar, "simulate", Some(cfg.days));
    let (truth, report) = turncoat_sim::simulate(&cfg, &args.out, &mut |_| {
        turncoat_engine::Progress::advance(&bar, 1)
    })?;
    turncoat_engine::Progress::finish(&bar);
    match args.format {
        OutputFormat::Json => print_json(&serde_json::json!({
            "out": args.out,
            "events": report.events,
            "ecs": truth.events.ecs,
            "zeek": truth.events.zeek,
            "osquery": truth.events.osquery,
            "seconds": report.seconds,
            "events_per_second": report.events_per_second(),
            "exposures": truth.exposures.len(),
            "ioc_contacts": truth.ioc_contacts.len(),
        }))?,
        OutputFormat::Table => println!(
            "wrote {} events ({} ECS, {} Zeek, {} osquery) to {} in {:.1}s ({:.0} events/s); truth: {} exposure intervals, {} IOC contacts, {} beacons",
            report.events,
            truth.events.ecs,
            truth.events.zeek,
            truth.events.osquery,
            args.out.display(),
            report.seconds,
            report.events_per_second(),
            truth.exposures.len(),
            truth.ioc_contacts.len(),
            truth.beacons.len()
        ),
    }
    Ok(Exit::Clean)
}
