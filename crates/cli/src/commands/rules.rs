//! `turncoat rules`: import Sigma rules (with their retro-hunt) and list them.

use std::path::PathBuf;

use clap::Subcommand;
use turncoat_core::Actor;

use super::{Context, print_unproducible};
use crate::output::{Exit, OutputFormat, Table, print_json};
use crate::progress::Bar;

#[derive(Subcommand, Debug)]
pub(crate) enum RulesCommand {
    /// Import rule files or directories (recursively), then retro-hunt.
    Import {
        /// Leave out rules with these statuses (e.g. deprecated, experimental).
        #[arg(long, value_delimiter = ',')]
        exclude_status: Vec<String>,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// List stored rules.
    List {
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

pub(crate) fn run(command: RulesCommand, ctx: &Context) -> anyhow::Result<Exit> {
    match command {
        RulesCommand::Import {
            exclude_status,
            output,
            paths,
        } => {
            let mut store = ctx.create()?;
            let cluster = ctx.cluster()?;
            let report = turncoat_server::handoff::import_rules(
                cluster.as_ref().map(|c| &c.hand_off),
                &mut *store,
                &paths,
                None,
                &exclude_status,
                &Bar::new(),
                &Actor::Cli,
            )?;
            for f in report.failed.iter().take(50) {
                eprintln!("rule failed: {f}");
            }
            print_unproducible(&report.unproducible, "");
            match output {
                OutputFormat::Json => print_json(&report)?,
                OutputFormat::Table => {
                    println!(
                        "{} files, {} rules compiled, {} failed, {} excluded by status, {} new or changed",
                        report.files,
                        report.compiled,
                        report.failed.len(),
                        report.excluded,
                        report.new_or_changed.len()
                    );
                    crate::output::print_retro_hand_off(
                        report.retro_queued.as_ref(),
                        report.retro_not_queued.as_ref(),
                    );
                    if !report.retro.is_empty() {
                        println!("retro-hunt:");
                        crate::output::retro_table(&report.retro).print()?;
                    }
                }
            }
            Ok(if report.compiled == 0 && !report.failed.is_empty() {
                Exit::Error
            } else {
                Exit::Clean
            })
        }
        RulesCommand::List { format } => {
            let store = ctx.read()?;
            let rules = store.rules()?;
            match format {
                OutputFormat::Json => {
                    let rows: Vec<_> = rules.iter().map(|r| serde_json::json!({"id": r.id, "title": r.title, "source": r.source, "updated": r.updated})).collect();
                    print_json(&rows)?;
                }
                OutputFormat::Table => {
                    let mut t = Table::new(&["id", "title", "source"]);
                    for r in &rules {
                        t.row(vec![r.id.clone(), r.title.clone(), r.source.clone()]);
                    }
                    t.print_or("no rules")?;
                }
            }
            Ok(Exit::Clean)
        }
    }
}
