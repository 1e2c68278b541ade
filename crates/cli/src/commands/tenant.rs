//! `turncoat tenant`: add and list the MSSP's customers.

use clap::Subcommand;
use turncoat_core::{Actor, TenantName};

use super::Context;
use crate::output::{Exit, OutputFormat, Table, print_json};

#[derive(Subcommand, Debug)]
pub(crate) enum TenantCommand {
    /// Create a tenant.
    Add { name: String },
    /// List tenants.
    List {
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

pub(crate) fn run(command: TenantCommand, ctx: &Context) -> anyhow::Result<Exit> {
    match command {
        TenantCommand::Add { name } => {
            let name = TenantName::new(&name)?;
            let mut store = ctx.create()?;
            store.add_tenant(&name, &Actor::Cli)?;
            println!("tenant {name} added");
            Ok(Exit::Clean)
        }
        TenantCommand::List { format } => {
            let store = ctx.read()?;
            let tenants = store.tenants()?;
            match format {
                OutputFormat::Json => {
                    let rows = tenants
                        .iter()
                        .map(|t| Ok(serde_json::json!({ "name": t.name(), "created": t.created(), "stats": store.stats(t)? })))
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    print_json(&rows)?;
                }
                OutputFormat::Table => {
                    let mut t = Table::new(&["tenant", "created", "endpoints", "events", "alerts"]);
                    for tenant in &tenants {
                        let s = store.stats(tenant)?;
                        t.row(vec![
                            tenant.name().to_string(),
                            tenant.created().to_string(),
                            s.endpoints.to_string(),
                            s.events.to_string(),
                            s.alerts.to_string(),
                        ]);
                    }
                    t.print()?;
                }
            }
            Ok(Exit::Clean)
        }
    }
}
