//! `turncoat alert`: triage one alert.

use clap::Subcommand;
use turncoat_core::{Actor, AlertId, AlertKind, AlertStatus, Severity};
use turncoat_engine::alerts::Selection;
use turncoat_output::{OutputFormat, Table, print_json};
use turncoat_store::AlertFilter;

use super::Context;
use crate::output::Exit;

#[derive(Subcommand, Debug)]
pub(crate) enum AlertCommand {
    /// Set an alert's triage status (new, acknowledged, investigating, resolved, false-positive, suppressed).
    Status {
        #[arg(value_parser = str::parse::<AlertId>)]
        id: AlertId,
        #[arg(value_parser = str::parse::<AlertStatus>)]
        status: AlertStatus,
        /// Why: required for false-positive and suppressed.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Assign an alert to an analyst or admin, or to nobody with --none.
    Assign {
        #[arg(value_parser = str::parse::<AlertId>)]
        id: AlertId,
        #[arg(required_unless_present = "none")]
        user: Option<String>,
        #[arg(long, conflicts_with = "user")]
        none: bool,
    },
    /// Add a comment to an alert's history.
    Comment {
        #[arg(value_parser = str::parse::<AlertId>)]
        id: AlertId,
        text: String,
    },
    /// Set the status of every alert a filter selects (as `alerts` filters);
    /// --preview only counts them.
    Bulk {
        /// The status to set.
        #[arg(value_parser = str::parse::<AlertStatus>)]
        status: AlertStatus,
        /// Why: required for false-positive and suppressed.
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, value_parser = str::parse::<AlertKind>)]
        kind: Option<AlertKind>,
        /// Only alerts now in this status.
        #[arg(long = "from", value_parser = str::parse::<AlertStatus>)]
        from: Option<AlertStatus>,
        /// This severity or higher.
        #[arg(long, value_parser = str::parse::<Severity>)]
        severity: Option<Severity>,
        #[arg(long)]
        endpoint: Option<String>,
        /// Text in the title, source or endpoint, ignoring case.
        #[arg(long)]
        text: Option<String>,
        #[arg(long)]
        assignee: Option<String>,
        /// Count what would change; change nothing.
        #[arg(long)]
        preview: bool,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// An alert's history: status changes, assignments, comments,
    /// resurfacing, oldest first.
    History {
        #[arg(value_parser = str::parse::<AlertId>)]
        id: AlertId,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

pub(crate) fn run(command: AlertCommand, ctx: &Context) -> anyhow::Result<Exit> {
    match command {
        AlertCommand::Status { id, status, reason } => {
            let mut store = ctx.open()?;
            let all = store.all_tenants()?;
            turncoat_engine::triage::set_status(
                &mut *store,
                &all,
                id,
                status,
                reason.as_deref(),
                &Actor::Cli,
            )?;
            println!("alert {id}: {status}");
            Ok(Exit::Clean)
        }
        AlertCommand::Assign { id, user, none: _ } => {
            let mut store = ctx.open()?;
            let all = store.all_tenants()?;
            let user = user.as_deref();
            turncoat_engine::triage::assign(&mut *store, &all, id, user, &Actor::Cli)?;
            println!("alert {id}: assigned to {}", user.unwrap_or("nobody"));
            Ok(Exit::Clean)
        }
        AlertCommand::Comment { id, text } => {
            let mut store = ctx.open()?;
            let all = store.all_tenants()?;
            turncoat_engine::triage::comment(&mut *store, &all, id, &text, &Actor::Cli)?;
            println!("alert {id}: comment added");
            Ok(Exit::Clean)
        }
        AlertCommand::Bulk {
            status,
            reason,
            tenant,
            kind,
            from,
            severity,
            endpoint,
            text,
            assignee,
            preview,
            format,
        } => {
            let mut store = ctx.open()?;
            let scope = super::scope(&*store, tenant.as_deref())?;
            let selection = Selection {
                filter: AlertFilter {
                    kind,
                    status: from,
                    endpoint,
                    limit: None,
                },
                min_severity: severity,
                since: None,
                text,
                assignee,
                order: Default::default(),
            };
            let outcome = turncoat_engine::triage::bulk_status(
                &mut *store,
                &scope,
                &selection,
                status,
                reason.as_deref(),
                preview,
                &Actor::Cli,
            )?;
            match format {
                OutputFormat::Json => print_json(&outcome)?,
                OutputFormat::Table if preview => {
                    println!("{} alerts would be set to {status}", outcome.matched);
                }
                OutputFormat::Table => println!(
                    "{} alerts selected, {} set to {status}",
                    outcome.matched,
                    outcome.changed.len()
                ),
            }
            Ok(Exit::Clean)
        }
        AlertCommand::History { id, format } => {
            let store = ctx.read()?;
            let history = store.alert_history(&store.all_tenants()?, id)?;
            match format {
                OutputFormat::Json => print_json(&history)?,
                OutputFormat::Table => {
                    let mut t = Table::new(&["time", "actor", "action", "value", "note"]);
                    for c in &history {
                        t.row(vec![
                            c.time.to_string(),
                            c.actor.clone(),
                            c.action.as_str().to_owned(),
                            c.value.clone().unwrap_or_default(),
                            c.note.clone().unwrap_or_default(),
                        ]);
                    }
                    t.print()?;
                }
            }
            Ok(Exit::Clean)
        }
    }
}
