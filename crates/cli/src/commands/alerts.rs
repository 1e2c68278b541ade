//! `turncoat alerts`: list alerts, campaigns among them.

use clap::Parser;
use turncoat_core::{AlertKind, AlertStatus};
use turncoat_store::{AlertFilter, Store};

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
    let scope = scope(&store, args.tenant.as_deref())?;
    let filter = AlertFilter {
        kind: args.kind,
        status: args.status,
        endpoint: args.endpoint,
        limit: None,
    };
    // Campaigns are alerts too, at the MSSP level: listed with the
    // others unless the filter is for one endpoint or another kind.
    let alerts = if filter.kind == Some(AlertKind::Campaign) {
        Vec::new()
    } else {
        store.alerts(&scope, &filter)?
    };
    let campaigns: Vec<_> =
        if filter.kind.is_none_or(|k| k == AlertKind::Campaign) && filter.endpoint.is_none() {
            turncoat_engine::campaign::campaign_rows(&store, &scope, 0, i64::MAX)?
                .into_iter()
                .filter(|c| filter.status.is_none_or(|s| s == c.status))
                .collect()
        } else {
            Vec::new()
        };
    match args.format {
        OutputFormat::Json => {
            #[derive(serde::Serialize)]
            #[serde(untagged)]
            enum Row<'a> {
                Alert(&'a turncoat_store::Alert),
                Campaign(&'a turncoat_engine::campaign::CampaignRow),
            }
            let rows: Vec<Row> = campaigns
                .iter()
                .map(Row::Campaign)
                .chain(alerts.iter().map(Row::Alert))
                .collect();
            print_json(&rows)?
        }
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
            for c in &campaigns {
                t.row(vec![
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
                ]);
            }
            for a in &alerts {
                t.row(vec![
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
                ]);
            }
            t.print_or("no alerts")?;
        }
    }
    Ok(Exit::findings(!alerts.is_empty() || !campaigns.is_empty()))
}
