//! `turncoat audit`: the audit log.

use clap::Parser;

use super::{Context, scope};
use crate::output::{Exit, OutputFormat, Table, print_json};

#[derive(Parser, Debug)]
pub(crate) struct AuditArgs {
    #[arg(long)]
    tenant: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

pub(crate) fn run(args: AuditArgs, ctx: &Context) -> anyhow::Result<Exit> {
    let store = ctx.read()?;
    let scope = scope(&*store, args.tenant.as_deref())?;
    let entries = store.audit_log(&scope, args.limit)?;
    match args.format {
        OutputFormat::Json => print_json(&entries)?,
        OutputFormat::Table => {
            let mut t = Table::new(&["time", "actor", "tenant", "action", "detail"]);
            for e in &entries {
                t.row(vec![
                    e.time.to_string(),
                    e.actor.clone(),
                    e.tenant.as_ref().map(|t| t.to_string()).unwrap_or_default(),
                    e.action.clone(),
                    e.detail.clone(),
                ]);
            }
            t.print()?;
        }
    }
    Ok(Exit::Clean)
}
