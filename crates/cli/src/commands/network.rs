//! `turncoat network internal`: the tenants' own address ranges.

use clap::Subcommand;
use turncoat_core::Actor;
use turncoat_engine::beacons::Networks;

use super::{Context, ListArgs, scope, tenant, tenant_or_all};
use crate::output::{Exit, OutputFormat, Table, print_json};

#[derive(Subcommand, Debug)]
pub(crate) enum NetworkCommand {
    /// Internal ranges: a tenant's public ranges, a sensor's address.
    #[command(subcommand)]
    Internal(InternalCommand),
}

#[derive(Subcommand, Debug)]
pub(crate) enum InternalCommand {
    /// Add a range (an IP or CIDR).
    Add {
        /// Only for this tenant (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// What the range is.
        #[arg(long, default_value = "")]
        note: String,
        cidr: String,
    },
    /// List ranges.
    List(ListArgs),
    /// Remove a range by id.
    Remove { id: i64 },
}

pub(crate) fn run(command: NetworkCommand, ctx: &Context) -> anyhow::Result<Exit> {
    match command {
        NetworkCommand::Internal(InternalCommand::Add {
            tenant: name,
            note,
            cidr,
        }) => {
            let mut store = ctx.create()?;
            let cidr = Networks::validate(&cidr)?;
            let t = name.as_deref().map(|n| tenant(&*store, n)).transpose()?;
            let id = store.add_internal_network(t.as_ref(), &cidr, &note, &Actor::Cli)?;
            println!("internal network {id}: {cidr}");
            Ok(Exit::Clean)
        }
        NetworkCommand::Internal(InternalCommand::List(args)) => {
            let store = ctx.read()?;
            let ranges = store.internal_networks(&scope(&*store, args.tenant.as_deref())?)?;
            match args.format {
                OutputFormat::Json => print_json(&ranges)?,
                OutputFormat::Table => {
                    let mut t = Table::new(&["id", "tenant", "cidr", "note", "added"]);
                    for r in &ranges {
                        t.row(vec![
                            r.id.to_string(),
                            tenant_or_all(r.tenant.as_ref()),
                            r.cidr.clone(),
                            r.note.clone(),
                            r.added.to_string(),
                        ]);
                    }
                    t.print()?;
                }
            }
            Ok(Exit::Clean)
        }
        NetworkCommand::Internal(InternalCommand::Remove { id }) => {
            let mut store = ctx.open()?;
            let all = store.all_tenants()?;
            store.remove_internal_network(&all, id, &Actor::Cli)?;
            println!("internal network {id} removed");
            Ok(Exit::Clean)
        }
    }
}
