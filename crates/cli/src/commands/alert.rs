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
    },
}

pub(crate) fn run(command: AlertCommand, ctx: &Context) -> anyhow::Result<Exit> {
    match command {
        AlertCommand::Status { id, status } => {
            let mut store = ctx.open()?;
            store.set_alert_status(&store.all_tenants()?, id, status, &Actor::Cli)?;
            println!("alert {id}: {status}");
            Ok(Exit::Clean)
        }
    }
}
