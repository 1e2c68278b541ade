//! `turncoat alert`: triage one alert.

use clap::Subcommand;
use turncoat_core::{Actor, AlertId, AlertStatus};
use turncoat_store::Store;

use super::Context;
use crate::output::Exit;

#[derive(Subcommand, Debug)]
pub(crate) enum AlertCommand {
    /// Set an alert's triage status (new, acknowledged, in-progress, resolved, false-positive, suppressed).
    Status {
        #[arg(value_parser = str::parse::<AlertId>)]
        id: AlertId,
        #[arg(value_parser = str::parse::<AlertStatus>)]
        status: AlertStatus,
        /// Why: required for false-positive and suppressed.
        #[arg(long)]
        reason: Option<String>,
    },
}

pub(crate) fn run(command: AlertCommand, ctx: &Context) -> anyhow::Result<Exit> {
    match command {
        AlertCommand::Status { id, status, reason } => {
            let mut store = ctx.open()?;
            let all = store.all_tenants()?;
            turncoat_engine::triage::set_status(
                &mut store,
                &all,
                id,
                status,
                reason.as_deref(),
                &Actor::Cli,
            )?;
            println!("alert {id}: {status}");
            Ok(Exit::Clean)
        }
    }
}
