//! `turncoat alerts`: list alerts, campaigns among them.

use clap::Parser;
use turncoat_core::{AlertKind, AlertStatus};
use turncoat_engine::alerts::AlertRow;
use turncoat_store::AlertFilter;

use super::{Context, scope};
use crate::output::{Exit, OutputFormat, Table, print_json};

#[derive(Parser, Debug)]
pub(crate) struct AlertsArgs {
    /// Only this tenant (default: every tenant).
    #[arg(long)]
    tenant: Option<String>,
    /// Only alerts of this kind (ioc, exposure, sigma, beacon, drift, campaign).
    #[arg(long, value_parser = str::parse::<AlertKind>)]
    kind: Option<AlertKind>,
    /// Only alerts in this triage state.
    #[arg(long, value_parser = str::parse::<AlertStatus>)]
    status: Option<AlertStatus>,
    /// Only alerts on this endpoint.
    #[arg(long)]
    endpoint: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

pub(crate) fn run(args: AlertsArgs, ctx: &Context) -> anyhow::Result<Exit> {
    let store = ctx.read()?;
    let scope = scope(&*store, args.tenant.as_deref())?;
    let filter = AlertFilter {
        kind: args.kind,
        status: args.status,
        endpoint: args.endpoint,
        limit: None,
    };
    let rows = turncoat_engine::alerts::list(&*store, &scope, &filter)?;
    match args.format {
        OutputFormat::Json => print_json(&rows)?,
        OutputFormat::Table => {
            let mut t = Table::new(&[
                "id",
                "tenant",
                "endpoint",
                "kind",
                "severity",
                "status",
                "count",
                "first seen",
                "last seen",
                "title",
            ]);
            for row in &rows {
                t.row(match row {
                    AlertRow::Campaign(c) => vec![
                        format!("campaign {}", c.id),
                        format!("{} tenants", c.tenants.len()),
                        "-".into(),
                        c.kind.to_string(),
                        c.severity.to_string(),
                        c.status.to_string(),
                        c.count.to_string(),
                        c.first_seen.to_string(),
                        c.last_seen.to_string(),
                        c.title.clone(),
                    ],
                    AlertRow::Alert(a) => vec![
                        a.id.to_string(),
                        a.tenant.to_string(),
                        a.endpoint.clone(),
                        a.kind.to_string(),
                        a.severity.to_string(),
                        a.status.to_string(),
                        a.count.to_string(),
                        a.first_seen.to_string(),
                        a.last_seen.to_string(),
                        a.title.clone(),
                    ],
                });
            }
            t.print_or("no alerts")?;
        }
    }
    Ok(Exit::findings(!rows.is_empty()))
}
