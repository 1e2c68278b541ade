//! `turncoat hunt`: Sigma rules and intel over log files, no data directory.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use super::print_unproducible;
use crate::output::{Exit, Table};
use crate::progress::Bar;

/// `hunt --format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum HuntFormat {
    #[default]
    Table,
    Jsonl,
    Csv,
}

#[derive(Parser, Debug)]
pub(crate) struct HuntArgs {
    /// Sigma rule files or directories.
    #[arg(long, required = true, num_args = 1..)]
    rules: Vec<PathBuf>,
    /// Intel files whose indicators are matched too.
    #[arg(long, num_args = 1..)]
    intel: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    format: HuntFormat,
    /// Only rules at or above this level (informational, low, medium, high, critical).
    #[arg(long)]
    min_level: Option<String>,
    /// Worker threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// .evtx, Windows event JSON, ECS NDJSON, Zeek logs: files or directories
    /// (after `--` when they directly follow --rules or --intel).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

/// Quotes a CSV field when it needs it.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

pub(crate) fn run(args: HuntArgs) -> anyhow::Result<Exit> {
    let mut rules = turncoat_sigma::RuleSet::load(&args.rules)?;
    if let Some(level) = &args.min_level {
        rules.retain_level(level);
    }
    let intel = if args.intel.is_empty() {
        None
    } else {
        Some(turncoat_detect::IndicatorIndex::new(
            turncoat_engine::load_indicators(&args.intel)?,
        ))
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut out = std::io::stdout().lock();
    let mut table = Table::new(&["time", "host", "level", "rule", "file"]);
    if args.format == HuntFormat::Csv {
        writeln!(
            out,
            "timestamp,host,level,rule_id,rule_title,file,record_id"
        )?;
    }
    let mut write_error = None;
    let summary = turncoat_engine::hunt::hunt(
        &rules,
        intel.as_ref(),
        &args.inputs,
        threads,
        &Bar::new(),
        &mut |d| {
            let result = match args.format {
                HuntFormat::Table => {
                    table.row(vec![
                        d.timestamp.to_string(),
                        d.host.clone(),
                        d.level.clone(),
                        d.rule_title.clone(),
                        d.file.clone(),
                    ]);
                    Ok(())
                }
                HuntFormat::Jsonl => serde_json::to_writer(&mut out, &d)
                    .map_err(std::io::Error::from)
                    .and_then(|_| writeln!(out)),
                HuntFormat::Csv => writeln!(
                    out,
                    "{},{},{},{},{},{},{}",
                    d.timestamp,
                    csv_field(&d.host),
                    d.level,
                    csv_field(d.rule_id.as_deref().unwrap_or("")),
                    csv_field(&d.rule_title),
                    csv_field(&d.file),
                    d.record_id.map(|r| r.to_string()).unwrap_or_default()
                ),
            };
            if let Err(e) = result {
                write_error.get_or_insert(e);
            }
        },
    )?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    if args.format == HuntFormat::Table {
        table.print_or("no detections")?;
    }
    eprintln!(
        "hunt: {} files, {} events ({} skipped), {} rules loaded, {} failed to compile, {} detections in {:.2}s",
        summary.files,
        summary.events,
        summary.skipped_records,
        summary.rules_loaded,
        summary.rules_failed.len(),
        summary.detections,
        summary.seconds
    );
    for f in summary.rules_failed.iter().take(20) {
        eprintln!("  rule failed: {f}");
    }
    print_unproducible(&summary.rules_unproducible, "  ");
    for r in &summary.rules_over_budget {
        eprintln!("  rule over time budget: {r}");
    }
    for u in summary.unreadable.iter().take(10) {
        eprintln!("  unreadable: {u}");
    }
    if summary.unreadable.len() > 10 {
        eprintln!(
            "  ... {} more unreadable inputs (not telemetry?)",
            summary.unreadable.len() - 10
        );
    }
    let mut per_rule: Vec<(&String, &u64)> = summary.detections_per_rule.iter().collect();
    per_rule.sort_by(|a, b| b.1.cmp(a.1));
    for (rule, n) in per_rule.iter().take(20) {
        eprintln!("  {n:>8}  {rule}");
    }
    Ok(Exit::findings(summary.detections > 0))
}
