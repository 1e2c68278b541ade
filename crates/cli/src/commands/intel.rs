//! `turncoat intel`: import intel (with its retro-hunt) and list it.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use turncoat_core::{Actor, IndicatorKind};
use turncoat_engine::IntelReport;
use turncoat_formats::intel::IntelFormat;
use turncoat_store::Store;

use super::Context;
use crate::output::{Exit, OutputFormat, Table, print_json};
use crate::progress::Bar;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum IntelInputFormat {
    Auto,
    Stix,
    Misp,
    Csv,
    Osv,
    Advisory,
}

#[derive(Subcommand, Debug)]
pub(crate) enum IntelCommand {
    /// Import intel and retro-hunt every tenant's stored data with it.
    Import {
        #[arg(long, value_enum, default_value = "auto")]
        format: IntelInputFormat,
        /// How to print the import report.
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
        /// Files, directories (recursed) or `-`.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// List stored indicators.
    List {
        /// Only patterns turncoat cannot evaluate.
        #[arg(long)]
        unsupported: bool,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// List stored advisories.
    Advisories {
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

fn print_intel(report: &IntelReport, format: OutputFormat) -> anyhow::Result<()> {
    for r in &report.rejected {
        eprintln!("rejected: {r}");
    }
    // In full: the table cuts long cells, and the line is what to fix.
    for error in report.files.iter().filter_map(|f| f.error.as_ref()) {
        eprintln!("error: {error}");
    }
    match format {
        OutputFormat::Json => print_json(report)?,
        OutputFormat::Table => {
            let mut t = Table::new(&[
                "file",
                "format",
                "indicators",
                "advisories",
                "rejected",
                "informational",
                "error",
            ]);
            for f in &report.files {
                t.row(vec![
                    f.file.clone(),
                    f.format.clone().unwrap_or_else(|| "-".into()),
                    f.indicators.to_string(),
                    f.advisories.to_string(),
                    f.rejected.to_string(),
                    f.informational.to_string(),
                    f.error.clone().unwrap_or_default(),
                ]);
            }
            t.print()?;
            println!(
                "indicators: {} new, {} changed, {} unchanged, {} unsupported (listed by `turncoat intel list --unsupported`); advisories new or changed: {}",
                report.indicators_new,
                report.indicators_changed,
                report.indicators_unchanged,
                report.unsupported,
                if report.advisories_changed.is_empty() {
                    "none".to_owned()
                } else {
                    report.advisories_changed.join(", ")
                }
            );
            if !report.retro.is_empty() {
                println!("retro-hunt ({:.3}s):", report.retro_seconds);
                crate::output::retro_table(&report.retro).print()?;
            }
        }
    }
    Ok(())
}

pub(crate) fn run(command: IntelCommand, ctx: &Context) -> anyhow::Result<Exit> {
    match command {
        IntelCommand::Import {
            format,
            output,
            paths,
        } => {
            let mut store = ctx.create()?;
            let format = match format {
                IntelInputFormat::Auto => None,
                IntelInputFormat::Stix => Some(IntelFormat::Stix),
                IntelInputFormat::Misp => Some(IntelFormat::Misp),
                IntelInputFormat::Csv => Some(IntelFormat::Csv),
                IntelInputFormat::Osv => Some(IntelFormat::Osv),
                IntelInputFormat::Advisory => Some(IntelFormat::Advisory),
            };
            let report = turncoat_engine::import_intel(
                &mut store,
                &paths,
                format,
                &Bar::new(),
                &Actor::Cli,
            )?;
            print_intel(&report, output)?;
            Ok(if report.any_file_failed() {
                Exit::Error
            } else {
                Exit::Clean
            })
        }
        IntelCommand::List {
            unsupported,
            format,
        } => {
            let store = ctx.read()?;
            let list: Vec<_> = store
                .indicators()?
                .into_iter()
                .filter(|s| !unsupported || s.indicator.kind == IndicatorKind::Unsupported)
                .collect();
            match format {
                OutputFormat::Json => {
                    let docs: Vec<_> = list.iter().map(|s| &s.indicator).collect();
                    print_json(&docs)?;
                }
                OutputFormat::Table => {
                    let mut t = Table::new(&["kind", "value", "source", "campaign", "state"]);
                    for s in &list {
                        let i = &s.indicator;
                        let state = if i.revoked {
                            "revoked".to_owned()
                        } else if let Some(r) = &i.unsupported_reason {
                            format!("unsupported: {r}")
                        } else {
                            "active".to_owned()
                        };
                        t.row(vec![
                            i.kind.to_string(),
                            i.value.clone(),
                            i.source.clone(),
                            i.campaign.clone().unwrap_or_default(),
                            state,
                        ]);
                    }
                    t.print()?;
                }
            }
            Ok(Exit::Clean)
        }
        IntelCommand::Advisories { format } => {
            let store = ctx.read()?;
            let advisories = store.advisories()?;
            match format {
                OutputFormat::Json => print_json(&advisories)?,
                OutputFormat::Table => {
                    let mut t = Table::new(&["id", "title", "products", "published"]);
                    for a in &advisories {
                        let products: Vec<String> =
                            a.affected.iter().map(|f| f.product.clone()).collect();
                        t.row(vec![
                            a.id.clone(),
                            a.title.clone(),
                            products.join(", "),
                            a.published.clone().unwrap_or_default(),
                        ]);
                    }
                    t.print()?;
                }
            }
            Ok(Exit::Clean)
        }
    }
}
