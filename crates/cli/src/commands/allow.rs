//! `turncoat allow`: allowlists for network analytics.

use anyhow::bail;
use clap::Subcommand;
use turncoat_core::Actor;
use turncoat_engine::beacons::Allowlist;
use turncoat_store::AllowKind;

use super::{Context, ListArgs, scope, tenant, tenant_or_all};
use crate::output::{Exit, OutputFormat, Table, print_json};

#[derive(Subcommand, Debug)]
pub(crate) enum AllowCommand {
    /// Add an entry.
    Add {
        /// Only for this tenant (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// A destination: domain (with subdomains), IP or CIDR.
        #[arg(long, conflicts_with = "source", required_unless_present = "source")]
        destination: Option<String>,
        /// A source: host name, IP or CIDR.
        #[arg(long)]
        source: Option<String>,
        /// Why it is allowed.
        #[arg(long)]
        reason: String,
    },
    /// List entries.
    List(ListArgs),
    /// Remove an entry by id.
    Remove { id: i64 },
}

pub(crate) fn run(command: AllowCommand, ctx: &Context) -> anyhow::Result<Exit> {
    match command {
        AllowCommand::Add {
            tenant: name,
            destination,
            source,
            reason,
        } => {
            let mut store = ctx.create()?;
            let (kind, raw) = match (destination, source) {
                (Some(d), _) => (AllowKind::Destination, d),
                (None, Some(s)) => (AllowKind::Source, s),
                (None, None) => bail!("give --destination or --source"),
            };
            let t = name.as_deref().map(|n| tenant(&*store, n)).transpose()?;
            let entry = turncoat_store::NewAllowEntry {
                kind,
                value: &raw,
                reason: &reason,
            };
            let added =
                turncoat_engine::beacons::allow(&mut *store, t.as_ref(), &entry, &Actor::Cli)?;
            println!(
                "allowlist entry {}: {} {}; {} beacon alerts closed as allowlisted",
                added.id,
                kind.as_str(),
                Allowlist::validate(kind, &raw)?,
                added.closed.len()
            );
            Ok(Exit::Clean)
        }
        AllowCommand::List(args) => {
            let store = ctx.read()?;
            let entries = store.allowlist(&scope(&*store, args.tenant.as_deref())?)?;
            match args.format {
                OutputFormat::Json => print_json(&entries)?,
                OutputFormat::Table => {
                    let mut t = Table::new(&["id", "tenant", "kind", "value", "reason", "added"]);
                    for e in &entries {
                        t.row(vec![
                            e.id.to_string(),
                            tenant_or_all(e.tenant.as_ref()),
                            e.kind.as_str().to_owned(),
                            e.value.clone(),
                            e.reason.clone(),
                            e.added.to_string(),
                        ]);
                    }
                    t.print()?;
                }
            }
            Ok(Exit::Clean)
        }
        AllowCommand::Remove { id } => {
            let mut store = ctx.open()?;
            let all = store.all_tenants()?;
            store.remove_allow(&all, id, &Actor::Cli)?;
            println!("allowlist entry {id} removed");
            Ok(Exit::Clean)
        }
    }
}
