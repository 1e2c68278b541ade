//! `turncoat suppress`: rules that close matching alerts until they end.

use clap::Subcommand;
use turncoat_core::{Actor, AlertKind};
use turncoat_store::NewSuppression;

use super::{Context, Lifetime, ListArgs, parse_lifetime, scope, tenant, tenant_or_all};
use crate::output::{Exit, OutputFormat, Table, print_json};

#[derive(Subcommand, Debug)]
pub(crate) enum SuppressCommand {
    /// Add a suppression: the open alerts it matches are closed as
    /// suppressed, and so is every later match, until it expires.
    Add {
        /// The alert source it matches: an indicator, a rule id, a
        /// destination, an advisory id (ignoring case).
        #[arg(long)]
        source: String,
        /// Only this tenant's alerts (default: every tenant's).
        #[arg(long)]
        tenant: Option<String>,
        /// Only alerts of this kind.
        #[arg(long, value_parser = str::parse::<AlertKind>)]
        kind: Option<AlertKind>,
        /// Only this endpoint's alerts.
        #[arg(long)]
        endpoint: Option<String>,
        /// Why: kept with it and in every alert's history.
        #[arg(long)]
        reason: String,
        /// How long it holds: a number and s, h, d or w, or `never`.
        #[arg(long, default_value = "30d", value_parser = parse_lifetime)]
        expires: Lifetime,
    },
    /// List the live suppressions (ending the expired ones first).
    List(ListArgs),
    /// End a suppression by id: the alerts it holds resurface.
    Remove { id: i64 },
}

pub(crate) fn run(command: SuppressCommand, ctx: &Context) -> anyhow::Result<Exit> {
    match command {
        SuppressCommand::Add {
            source,
            tenant: name,
            kind,
            endpoint,
            reason,
            expires,
        } => {
            let mut store = ctx.open()?;
            let t = name.as_deref().map(|n| tenant(&*store, n)).transpose()?;
            let new = NewSuppression {
                kind,
                source: &source,
                endpoint: endpoint.as_deref(),
                reason: &reason,
                expires: expires.end(),
            };
            let (s, closed) =
                turncoat_engine::triage::suppress(&mut *store, t.as_ref(), &new, &Actor::Cli)?;
            let until = s
                .expires
                .map_or("never expires".into(), |t| format!("until {t}"));
            println!(
                "suppression {}: {} ({until}); {} alerts suppressed",
                s.id,
                s.source,
                closed.len()
            );
            Ok(Exit::Clean)
        }
        SuppressCommand::List(args) => {
            let mut store = ctx.open()?;
            store.expire_suppressions(turncoat_core::Time::now())?;
            let live = store.suppressions(&scope(&*store, args.tenant.as_deref())?)?;
            match args.format {
                OutputFormat::Json => print_json(&live)?,
                OutputFormat::Table => {
                    let mut t = Table::new(&[
                        "id", "tenant", "kind", "source", "endpoint", "reason", "owner", "expires",
                    ]);
                    for s in &live {
                        t.row(vec![
                            s.id.to_string(),
                            tenant_or_all(s.tenant.as_ref()),
                            s.kind.map_or("any".into(), |k| k.to_string()),
                            s.source.clone(),
                            s.endpoint.clone().unwrap_or_else(|| "any".into()),
                            s.reason.clone(),
                            s.owner.clone(),
                            s.expires.map_or("never".into(), |t| t.to_string()),
                        ]);
                    }
                    t.print()?;
                }
            }
            Ok(Exit::Clean)
        }
        SuppressCommand::Remove { id } => {
            let mut store = ctx.open()?;
            let all = store.all_tenants()?;
            let back = store.remove_suppression(&all, id, &Actor::Cli)?;
            println!("suppression {id} removed; {} alerts resurfaced", back.len());
            Ok(Exit::Clean)
        }
    }
}
