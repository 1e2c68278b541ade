//! `turncoat ingest`: telemetry, network logs and inventory into a tenant.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use turncoat_core::Actor;
use turncoat_engine::{FileStatus, IngestOptions, IngestReport};
use turncoat_formats::Format;

use super::{Context, tenant};
use crate::output::{Exit, OutputFormat, Table, print_json};
use crate::progress::Bar;

/// Input formats for `ingest --format`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum InputFormat {
    Auto,
    Ecs,
    Evtx,
    WineventJson,
    Zeek,
    Osquery,
    Cyclonedx,
    Spdx,
}

impl InputFormat {
    fn to_format(self) -> Option<Format> {
        Some(match self {
            InputFormat::Auto => return None,
            InputFormat::Ecs => Format::Ecs,
            InputFormat::Evtx => Format::Evtx,
            InputFormat::WineventJson => Format::WineventJson,
            InputFormat::Zeek => Format::Zeek,
            InputFormat::Osquery => Format::Osquery,
            InputFormat::Cyclonedx => Format::CycloneDx,
            InputFormat::Spdx => Format::Spdx,
        })
    }
}

#[derive(Parser, Debug)]
pub(crate) struct IngestArgs {
    /// The tenant the data belongs to.
    #[arg(long)]
    tenant: String,
    /// Input format; told from the content by default.
    #[arg(long, value_enum, default_value = "auto")]
    format: InputFormat,
    /// Endpoint name for records that carry none (an SBOM, a sensor's logs).
    #[arg(long)]
    endpoint: Option<String>,
    /// How to print the ingest report.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
    /// Ranked beacon score from which the post-ingest beacon step raises alerts.
    #[arg(long, default_value_t = turncoat_engine::beacons::DEFAULT_ALERT_THRESHOLD)]
    beacon_threshold: f64,
    /// Records per committed batch: a crash redoes at most this many, and
    /// memory grows with it (about 100 MB of ECS events at the default).
    #[arg(long, default_value_t = turncoat_engine::BATCH_RECORDS as u32,
          value_parser = clap::value_parser!(u32).range(1..))]
    batch_records: u32,
    /// Files, directories (recursed) or `-` for standard input.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

fn print_ingest(report: &IngestReport, format: OutputFormat) -> anyhow::Result<()> {
    for r in &report.rules_over_budget {
        eprintln!("rule over time budget: {r}");
    }
    for unread in &report.unread {
        eprintln!("{unread}");
    }
    for work in &report.resumed {
        eprintln!("finished post-ingest work an interrupted run left: {work}");
    }
    for issue in &report.issues {
        eprintln!("skipped: {issue}");
    }
    // In full: the table cuts long cells.
    for f in &report.files {
        if let FileStatus::Failed { error } = &f.status {
            eprintln!("error: {error}");
        }
    }
    if report.skipped_records as usize > report.issues.len() {
        eprintln!(
            "skipped: {} more records not listed",
            report.skipped_records as usize - report.issues.len()
        );
    }
    match format {
        OutputFormat::Json => print_json(report)?,
        OutputFormat::Table => {
            let mut t = Table::new(&["file", "format", "status", "events", "inventory", "skipped"]);
            for f in &report.files {
                let status = match &f.status {
                    FileStatus::Ingested => "ingested".to_owned(),
                    FileStatus::AlreadyIngested => "already ingested".to_owned(),
                    FileStatus::Resumed { after_line } => {
                        format!("resumed after line {after_line}")
                    }
                    FileStatus::Failed { error } => format!("failed: {error}"),
                };
                t.row(vec![
                    f.file.clone(),
                    f.format.clone().unwrap_or_else(|| "-".into()),
                    status,
                    f.events.to_string(),
                    f.inventory_records.to_string(),
                    f.skipped_records.to_string(),
                ]);
            }
            t.print()?;
            let rate = if report.seconds > 0.0 {
                report.events as f64 / report.seconds
            } else {
                0.0
            };
            println!(
                "{} events, {} inventory records, {} skipped in {:.2}s ({:.0} events/s); {} new alerts, {} updated",
                report.events,
                report.inventory_records,
                report.skipped_records,
                report.seconds,
                rate,
                report.new_alerts,
                report.updated_alerts
            );
        }
    }
    Ok(())
}

/// With `--queue`: publishes every file as a batch for the cluster's
/// workers (as `serve --queue` does a request) instead of committing it.
fn publish(
    hand_off: &turncoat_server::HandOff,
    tenant: &turncoat_store::Tenant,
    paths: &[PathBuf],
    options: &IngestOptions,
    output: OutputFormat,
) -> anyhow::Result<Exit> {
    let walk = turncoat_walk::walk(paths, &turncoat_walk::WalkOptions::all_files());
    let mut failed = walk.unread();
    // (file, batch) per file published
    let mut batches = Vec::new();
    for input in &walk.inputs {
        let path = match input {
            turncoat_walk::Input::File(p) => p,
            turncoat_walk::Input::Stream(p) => {
                failed.push(format!(
                    "{}: a stream is not published to the queue; write it to a file",
                    p.display()
                ));
                continue;
            }
        };
        let name = path.display().to_string();
        match hand_off.publish_file(tenant, path, &name, options, &Actor::Cli) {
            Ok(batch) => batches.push((name, batch)),
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    match output {
        OutputFormat::Json => {
            let queued: Vec<_> = batches
                .iter()
                .map(|(file, b)| {
                    serde_json::json!({
                        "file": file, "batch": b.id, "chunks": b.chunks, "bytes": b.bytes,
                    })
                })
                .collect();
            print_json(&serde_json::json!({
                "tenant": tenant.name().to_string(), "queued": queued, "failed": failed,
            }))?
        }
        OutputFormat::Table => {
            let mut t = Table::new(&["file", "batch", "chunks", "bytes"]);
            for (file, b) in &batches {
                t.row(vec![
                    file.clone(),
                    b.id.clone(),
                    b.chunks.to_string(),
                    b.bytes.to_string(),
                ]);
            }
            t.print()?;
        }
    }
    for f in &failed {
        eprintln!("turncoat: ingest: {f}");
    }
    eprintln!(
        "turncoat: ingest: {} files queued for the workers, one batch each (progress: GET /api/v1/batches/ID), {} failed",
        batches.len(),
        failed.len()
    );
    Ok(if failed.is_empty() {
        Exit::Clean
    } else {
        Exit::Error
    })
}

pub(crate) fn run(args: IngestArgs, ctx: &Context) -> anyhow::Result<Exit> {
    let mut store = ctx.open()?;
    let tenant = tenant(&*store, &args.tenant)?;
    let options = IngestOptions {
        format: args.format.to_format(),
        endpoint: args.endpoint,
        beacon_threshold: Some(args.beacon_threshold),
        batch_records: Some(args.batch_records as usize),
        ..Default::default()
    };
    if let Some(cluster) = ctx.cluster()? {
        return publish(
            &cluster.hand_off,
            &tenant,
            &args.paths,
            &options,
            args.output,
        );
    }
    let report = turncoat_engine::ingest(
        &mut *store,
        &tenant,
        &args.paths,
        &options,
        &Bar::new(),
        &Actor::Cli,
    )?;
    print_ingest(&report, args.output)?;
    eprintln!("turncoat: ingest: {}", report.summary());
    Ok(if report.failures() > 0 {
        Exit::Error
    } else {
        Exit::Clean
    })
}
