//! `turncoat notify`: where alerts are pushed (webhooks, syslog
//! collectors), the outbox they are delivered from, and one delivery
//! round for cron or a test (`serve` delivers every two seconds).

use std::time::Duration;

use clap::Subcommand;
use turncoat_core::{Actor, AlertKind, Severity, Time};
use turncoat_respond::notify::{EVENTS, NotifyFormat};

use super::{Context, scope, tenant};
use crate::output::{Exit, OutputFormat, Table, print_json};

#[derive(Subcommand, Debug)]
pub(crate) enum NotifyCommand {
    /// Add a target. Webhooks (json, slack, teams) take an http(s) URL and
    /// sign each body with the secret read from standard input
    /// (--secret-stdin); syslog (rfc5424, cef) takes udp://, tcp:// or
    /// tls:// and host:port. It hears of changes from now on.
    Add {
        name: String,
        address: String,
        #[arg(long, value_parser = str::parse::<NotifyFormat>)]
        format: NotifyFormat,
        /// Only this tenant's alerts (default: every tenant's, campaigns too).
        #[arg(long)]
        tenant: Option<String>,
        /// Of new, status, resurfaced, campaign (comma-separated).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "new,status,resurfaced,campaign"
        )]
        events: Vec<String>,
        /// Only alerts of these kinds (comma-separated).
        #[arg(long, value_delimiter = ',', value_parser = str::parse::<AlertKind>)]
        kind: Vec<AlertKind>,
        /// Only alerts of this severity or higher.
        #[arg(long, value_parser = str::parse::<Severity>)]
        min_severity: Option<Severity>,
        #[arg(long)]
        secret_stdin: bool,
        /// A TLS syslog collector's own certificate authority (PEM file),
        /// trusted beside the public roots.
        #[arg(long)]
        ca: Option<std::path::PathBuf>,
    },
    /// List the targets.
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Remove a target and its queued notifications.
    Remove {
        id: i64,
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Queued notifications, newest first; --dead for those given up on.
    Outbox {
        #[arg(long)]
        dead: bool,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// One round: queue what the targets have not heard of, and send what
    /// is due (exit 1 when a delivery failed).
    Deliver {
        /// The first wait before a failed delivery is tried again, in
        /// milliseconds; each further try waits twice as long.
        #[arg(long, default_value_t = 5000)]
        backoff_ms: u64,
    },
}

pub(crate) fn run(command: NotifyCommand, ctx: &Context) -> anyhow::Result<Exit> {
    match command {
        NotifyCommand::Add {
            name,
            address,
            format,
            tenant: tenant_name,
            events,
            kind,
            min_severity,
            secret_stdin,
            ca,
        } => {
            for e in &events {
                anyhow::ensure!(
                    EVENTS.contains(&e.as_str()),
                    "event {e:?}: one of {}",
                    EVENTS.join(", ")
                );
            }
            let kind_of = if format.is_webhook() {
                anyhow::ensure!(
                    address.starts_with("https://") || address.starts_with("http://"),
                    "{address}: a webhook's http(s) URL"
                );
                "webhook"
            } else {
                anyhow::ensure!(
                    ["udp://", "tcp://", "tls://"]
                        .iter()
                        .any(|s| address.starts_with(s)),
                    "{address}: udp://, tcp:// or tls:// and host:port"
                );
                "syslog"
            };
            let secret = super::secret_from_stdin(secret_stdin, "secret")?;
            let ca = ca
                .map(|path| {
                    let pem = std::fs::read_to_string(&path)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                    anyhow::ensure!(
                        pem.contains("-----BEGIN CERTIFICATE-----"),
                        "{}: no PEM certificate",
                        path.display()
                    );
                    Ok(pem)
                })
                .transpose()?;
            let mut store = ctx.create()?;
            let tenant = tenant_name
                .as_deref()
                .map(|t| tenant(&*store, t))
                .transpose()?;
            let target = store.add_notify_target(
                tenant.as_ref(),
                &turncoat_store::NewNotifyTarget {
                    name: &name,
                    kind: kind_of,
                    address: &address,
                    secret: secret.as_deref(),
                    format: format.as_str(),
                    events: &events,
                    kinds: &kind,
                    min_severity,
                    ca: ca.as_deref(),
                },
                &Actor::Cli,
            )?;
            println!("target {} added: {}", target.id, target.name);
            Ok(Exit::Clean)
        }
        NotifyCommand::List { tenant, format } => {
            let store = ctx.read()?;
            let targets = store.notify_targets(&scope(&*store, tenant.as_deref())?)?;
            match format {
                OutputFormat::Json => print_json(&targets)?,
                OutputFormat::Table => {
                    let mut t =
                        Table::new(&["id", "name", "tenant", "format", "address", "events"]);
                    for x in &targets {
                        t.row(vec![
                            x.id.to_string(),
                            x.name.clone(),
                            super::tenant_or_all(x.tenant.as_ref()),
                            x.format.clone(),
                            x.address.clone(),
                            x.events.join(","),
                        ]);
                    }
                    t.print()?;
                }
            }
            Ok(Exit::Clean)
        }
        NotifyCommand::Remove { id, tenant } => {
            let mut store = ctx.create()?;
            let scope = scope(&*store, tenant.as_deref())?;
            store.remove_notify_target(&scope, id, &Actor::Cli)?;
            println!("target {id} removed");
            Ok(Exit::Clean)
        }
        NotifyCommand::Outbox {
            dead,
            tenant,
            limit,
            format,
        } => {
            let store = ctx.read()?;
            let list = store.notifications(&scope(&*store, tenant.as_deref())?, dead, limit)?;
            match format {
                OutputFormat::Json => print_json(&list)?,
                OutputFormat::Table => {
                    let mut t = Table::new(&["id", "target", "key", "state", "attempts", "error"]);
                    for n in &list {
                        let state = if n.delivered.is_some() {
                            "delivered"
                        } else if n.dead.is_some() {
                            "dead"
                        } else {
                            "queued"
                        };
                        t.row(vec![
                            n.id.to_string(),
                            n.target.name.clone(),
                            n.key.clone(),
                            state.to_owned(),
                            n.attempts.to_string(),
                            n.error.clone().unwrap_or_default(),
                        ]);
                    }
                    t.print()?;
                }
            }
            Ok(Exit::Clean)
        }
        NotifyCommand::Deliver { backoff_ms } => {
            let mut store = ctx.create()?;
            let queued = turncoat_engine::notify::queue(&mut *store, Time::now())?;
            let due = turncoat_server::notify::due_with_secrets(&*store, Time::now())?;
            let retry = turncoat_server::notify::Retry {
                backoff: Duration::from_millis(backoff_ms),
            };
            let results = turncoat_server::notify::deliver(due, &retry);
            let mut failed = 0;
            for (id, delivery) in &results {
                if matches!(delivery, turncoat_store::Delivery::Failed { .. }) {
                    failed += 1;
                }
                store.record_delivery(*id, delivery, Time::now())?;
            }
            eprintln!(
                "{queued} queued, {} sent, {failed} failed",
                results.len() - failed
            );
            Ok(Exit::findings(failed > 0))
        }
    }
}
