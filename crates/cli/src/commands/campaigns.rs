//! `turncoat campaigns`: the same detection in several tenants.

use clap::Parser;
use turncoat_core::Actor;

use super::Context;
use crate::output::{Exit, OutputFormat, Table, print_json};

#[derive(Parser, Debug)]
pub(crate) struct CampaignsArgs {
    /// Tenants that must show the same detection.
    #[arg(long, default_value_t = turncoat_engine::campaign::DEFAULT_MIN_TENANTS)]
    min_tenants: usize,
    /// Days within which their first sightings must fall.
    #[arg(long, default_value_t = turncoat_engine::campaign::DEFAULT_WINDOW_DAYS)]
    window_days: i64,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

pub(crate) fn run(args: CampaignsArgs, ctx: &Context) -> anyhow::Result<Exit> {
    let mut store = ctx.open()?;
    turncoat_engine::campaign::escalate(
        &mut *store,
        args.min_tenants,
        args.window_days,
        &Actor::Cli,
    )?;
    let campaigns = turncoat_engine::campaign::campaign_rows(
        &*store,
        &store.all_tenants()?,
        args.min_tenants,
        args.window_days,
    )?;
    match args.format {
        OutputFormat::Json => print_json(&campaigns)?,
        OutputFormat::Table => {
            let mut t = Table::new(&[
                "id",
                "kind",
                "source",
                "tenants",
                "alerts",
                "dismissed in",
                "first seen",
                "title",
            ]);
            for c in &campaigns {
                t.row(vec![
                    c.id.to_string(),
                    c.member_kind.to_string(),
                    c.source.clone(),
                    c.tenants.len().to_string(),
                    c.member_alerts.len().to_string(),
                    c.dismissed_tenants.to_string(),
                    c.first_seen.to_string(),
                    c.title.clone(),
                ]);
            }
            t.print_or("no campaigns")?;
        }
    }
    Ok(Exit::findings(!campaigns.is_empty()))
}
