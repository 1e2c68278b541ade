//! `turncoat drift`: new behaviour of an application version.

use clap::Parser;

use super::{Context, scope};
use crate::output::{Exit, OutputFormat, Table, print_json};

#[derive(Parser, Debug)]
pub(crate) struct DriftArgs {
    /// Only this tenant's data (default: every tenant, which is what ranks drift).
    #[arg(long)]
    tenant: Option<String>,
    /// Only behaviours seen in at least this many tenants.
    #[arg(long, default_value_t = 1)]
    min_tenants: usize,
    /// Record each drift as an alert of kind drift on every endpoint showing it.
    #[arg(long)]
    raise: bool,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

pub(crate) fn run(args: DriftArgs, ctx: &Context) -> anyhow::Result<Exit> {
    let mut store = if args.raise { ctx.open()? } else { ctx.read()? };
    let scope = scope(&*store, args.tenant.as_deref())?;
    let rows = turncoat_engine::drift::analyze(&*store, scope.members(), args.min_tenants)?;
    if args.raise {
        let o = turncoat_engine::drift::raise(&mut *store, scope.members(), &rows)?;
        eprintln!(
            "drift alerts: {} new, {} updated",
            o.new_alerts, o.updated_alerts
        );
    }
    match args.format {
        OutputFormat::Json => print_json(&rows)?,
        OutputFormat::Table => {
            let mut t = Table::new(&[
                "app",
                "version",
                "new behaviour",
                "tenants",
                "endpoints",
                "first seen",
                "baseline",
            ]);
            for r in &rows {
                t.row(vec![
                    r.app.clone(),
                    r.version.clone(),
                    r.behaviour.to_string(),
                    r.tenants.len().to_string(),
                    r.endpoints.len().to_string(),
                    r.first_seen.to_string(),
                    r.baseline_versions.join(", "),
                ]);
            }
            t.print_or("no drift")?;
        }
    }
    Ok(Exit::findings(!rows.is_empty()))
}
