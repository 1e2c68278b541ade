//! The commands: each module holds one command's arguments beside its
//! handler; this one parses the command line, opens the data directory as
//! a command needs it, and dispatches.

mod alert;
mod alerts;
mod allow;
mod audit;
mod beacons;
mod campaigns;
mod demo;
mod drift;
mod export;
mod exposure;
mod hunt;
mod ingest;
mod intel;
mod network;
mod notify;
mod report;
mod rules;
mod serve;
mod simulate;
mod store;
mod suppress;
mod tenant;
mod token;
mod user;
mod vet;
mod worker;

use std::io::BufRead as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use turncoat_core::TenantName;
use turncoat_store::{AnyStore, LockWait, Scope, Store, StoreLocation, Tenant};

use crate::output::{Exit, OutputFormat};

/// turncoat: catch trusted software that turns against its users.
#[derive(Parser, Debug)]
#[command(name = "turncoat", version, about, long_about = None)]
pub struct Cli {
    /// Data directory (default: $TURNCOAT_DATA, else ./turncoat-data).
    #[arg(
        long,
        global = true,
        env = "TURNCOAT_DATA",
        default_value = "turncoat-data"
    )]
    data: PathBuf,
    /// Where the store is: `sqlite://DIR` (as --data) or a PostgreSQL
    /// database, `postgres://user@host/db` (cluster mode). Overrides --data.
    #[arg(long, global = true, env = "TURNCOAT_STORE")]
    store: Option<String>,
    /// The cluster's queue, `nats://host:4222[/namespace]` (NATS with
    /// JetStream): `serve` publishes ingest to it, `worker` commits it.
    #[arg(long, global = true, env = "TURNCOAT_QUEUE")]
    queue: Option<turncoat_queue::QueueUrl>,
    /// Seconds a command that changes the data directory waits for another
    /// one to finish before giving up.
    #[arg(
        long,
        global = true,
        env = "TURNCOAT_LOCK_TIMEOUT",
        default_value_t = turncoat_store::DEFAULT_LOCK_TIMEOUT.as_secs()
    )]
    lock_timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Manage tenants (the MSSP's customers).
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Ingest telemetry, network logs or inventory into a tenant.
    Ingest(ingest::IngestArgs),
    /// Import and list threat intel and advisories.
    #[command(subcommand)]
    Intel(intel::IntelCommand),
    /// List alerts (exit 1 when there are any).
    Alerts(alerts::AlertsArgs),
    /// Who runs or ran an affected version, and when (exit 1 when anyone does).
    Exposure(exposure::ExposureArgs),
    /// Show the audit log.
    Audit(audit::AuditArgs),
    /// New behaviour of an application version across the fleet: modules,
    /// children, destinations no earlier version showed (exit 1 when any).
    Drift(drift::DriftArgs),
    /// Import and list Sigma rules: they run on every ingested event, and over
    /// the stored archive when new or changed.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// Hunt log files with Sigma rules (and intel), without a data directory
    /// (exit 1 when anything is detected).
    Hunt(hunt::HuntArgs),
    /// MSSP-level campaign alerts: the same indicator, rule or drift in several
    /// tenants within a window (re-evaluated with the given thresholds).
    Campaigns(campaigns::CampaignsArgs),
    /// Triage one alert.
    #[command(subcommand)]
    Alert(alert::AlertCommand),
    /// Allowlists for network analytics: destinations and sources exempt from
    /// beacon analysis, per tenant or global; they apply to stored data at once.
    #[command(subcommand)]
    Allow(allow::AllowCommand),
    /// Suppressions: rules that close matching alerts, present and future,
    /// with a reason and an expiry; the alerts resurface when one ends.
    #[command(subcommand)]
    Suppress(suppress::SuppressCommand),
    /// The address ranges that are the tenants' own, besides the private ones:
    /// network analytics count only internal sources.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Where alerts are pushed (signed webhooks, syslog/CEF collectors),
    /// from a durable outbox.
    #[command(subcommand)]
    Notify(notify::NotifyCommand),
    /// One tenant's incident report: timeline, exposure, contacts before and
    /// after the intel, beacons, what is blocked, open actions, decisions.
    Report(report::ReportArgs),
    /// What turncoat sends out to block an attack: blocklists.
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Rank (source, destination) pairs by how much they beacon: offline over
    /// log files, or over a tenant's stored records (exit 1 when any rank above --min-score).
    Beacons(beacons::BeaconsArgs),
    /// Write a simulated multi-tenant fleet's telemetry, inventory and network logs.
    Simulate(simulate::SimulateArgs),
    /// Vet a release before rollout: unpack it, analyse its binaries and
    /// signatures, diff it against the previous one (exit 1 unless clean).
    Vet(vet::VetArgs),
    /// Bring the store's schema up to date (servers and workers also do on
    /// start; this does it ahead of a rollout).
    Migrate(store::MigrateArgs),
    /// Copy an embedded installation into PostgreSQL (cluster mode), then
    /// compare the copy with the original (exit 1 when anything differs).
    Copy(store::CopyArgs),
    /// Serve the HTTP API on the data directory until SIGTERM or Ctrl-C.
    Serve(serve::ServeArgs),
    /// Commit what servers queued (cluster mode, with --queue) until
    /// SIGTERM or Ctrl-C; run as many as wanted.
    Worker(worker::WorkerArgs),
    /// People who sign in to the console and the API, with their roles.
    #[command(subcommand)]
    User(user::UserCommand),
    /// API tokens for sensors, agents and scripts, stored as hashes.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Simulate a fleet hit by the 3CX compromise, detect it, and check the result
    /// against what was planted (exit 1 when anything was missed or falsely raised).
    Demo(demo::DemoArgs),
}

/// Runs the command line.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    let ctx = Context {
        store: match cli.store {
            Some(url) => StoreLocation::parse(&url),
            None => StoreLocation::Dir(cli.data),
        },
        lock_timeout: Duration::from_secs(cli.lock_timeout),
        queue: cli.queue,
    };
    match cli.command {
        Command::Tenant(c) => tenant::run(c, &ctx),
        Command::Ingest(a) => ingest::run(a, &ctx),
        Command::Intel(c) => intel::run(c, &ctx),
        Command::Alerts(a) => alerts::run(a, &ctx),
        Command::Exposure(a) => exposure::run(a, &ctx),
        Command::Export(c) => export::run(c, &ctx),
        Command::Notify(c) => notify::run(c, &ctx),
        Command::Report(a) => report::run(a, &ctx),
        Command::Audit(a) => audit::run(a, &ctx),
        Command::Drift(a) => drift::run(a, &ctx),
        Command::Rules(c) => rules::run(c, &ctx),
        Command::Hunt(a) => hunt::run(a),
        Command::Migrate(a) => store::migrate(a, &ctx),
        Command::Copy(a) => store::copy(a, &ctx),
        Command::Campaigns(a) => campaigns::run(a, &ctx),
        Command::Alert(c) => alert::run(c, &ctx),
        Command::Allow(c) => allow::run(c, &ctx),
        Command::Suppress(c) => suppress::run(c, &ctx),
        Command::Network(c) => network::run(c, &ctx),
        Command::Beacons(a) => beacons::run(a, &ctx),
        Command::Simulate(a) => simulate::run(&a),
        Command::Vet(a) => vet::run(a),
        Command::Serve(a) => serve::run(a, &ctx),
        Command::Worker(a) => worker::run(a, &ctx),
        Command::User(c) => user::run(c, &ctx),
        Command::Token(c) => token::run(c, &ctx),
        Command::Demo(a) => demo::run(a),
    }
}

/// The size of a simulated fleet (`simulate`, `demo`).
#[derive(clap::Args, Debug)]
pub(crate) struct FleetArgs {
    #[arg(long, default_value_t = 3)]
    tenants: usize,
    /// Endpoints per tenant.
    #[arg(long, default_value_t = 16)]
    endpoints: usize,
    #[arg(long, default_value_t = 21)]
    days: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Background endpoint events per endpoint and day.
    #[arg(long, default_value_t = 150)]
    events_per_endpoint_day: u64,
}

impl FleetArgs {
    /// The simulator's configuration for this fleet and `scenario`.
    fn config(&self, scenario: turncoat_sim::Scenario) -> turncoat_sim::Config {
        turncoat_sim::Config {
            tenants: self.tenants,
            endpoints: self.endpoints,
            days: self.days,
            seed: self.seed,
            scenario,
            events_per_endpoint_day: self.events_per_endpoint_day,
            ..turncoat_sim::Config::default()
        }
    }
}

/// The store as the command line names it (`--store`, else `--data`),
/// opened as a command needs it. Commands that change an embedded store
/// open it as its one writer, waiting for any other; the others read a
/// committed snapshot. Only the commands that set up a store (adding a
/// tenant, intel, rules, an allowlist entry or an internal network)
/// create a data directory; the rest say there is none. A database takes
/// any number of writers.
pub(crate) struct Context {
    pub store: StoreLocation,
    /// The cluster's queue, when one is named.
    pub queue: Option<turncoat_queue::QueueUrl>,
    lock_timeout: Duration,
}

impl Context {
    /// Opens the store as a writer, creating it if need be.
    pub fn create(&self) -> anyhow::Result<AnyStore> {
        self.writer_of(&self.store)
            .with_context(|| format!("opening store {}", self.store))
    }

    /// Opens `store` as a writer, waiting for another as `--lock-timeout` says.
    pub fn writer_of(&self, store: &StoreLocation) -> turncoat_store::Result<AnyStore> {
        self.with_wait(store, |wait| store.open_writer(wait))
    }

    /// Brings the store's schema up to date; the version it is at.
    pub fn migrate(&self) -> turncoat_store::Result<i64> {
        self.with_wait(&self.store, |wait| self.store.migrate(wait))
    }

    fn with_wait<T>(&self, store: &StoreLocation, open: impl FnOnce(&mut LockWait<'_>) -> T) -> T {
        let purpose = writer_purpose();
        let mut on_wait = |holder: &turncoat_store::LockHolder, timeout: Duration| {
            eprintln!(
                "turncoat: waiting for {holder} to finish with {store} (up to {} s)",
                timeout.as_secs()
            );
        };
        open(&mut LockWait {
            timeout: self.lock_timeout,
            purpose: &purpose,
            on_wait: &mut on_wait,
        })
    }

    /// Opens an existing store as a writer.
    pub fn open(&self) -> anyhow::Result<AnyStore> {
        if !self.store.exists() {
            return Err(turncoat_store::StoreError::NoStore(self.store.to_string()))
                .with_context(|| format!("opening store {}", self.store));
        }
        self.create()
    }

    /// Reads a committed snapshot of the store.
    pub fn read(&self) -> anyhow::Result<AnyStore> {
        self.store
            .open_reader()
            .with_context(|| format!("reading store {}", self.store))
    }

    /// With `--queue`, a connection to hand retro-hunts and content
    /// changes to the cluster's workers.
    pub fn cluster(&self) -> anyhow::Result<Option<Cluster>> {
        let Some(url) = &self.queue else {
            return Ok(None);
        };
        // A thread of its own: the hand-off blocks on it from this one.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let queue = runtime
            .block_on(turncoat_queue::Queue::connect(url))
            .with_context(|| format!("queue {url}"))?;
        let hand_off = turncoat_server::HandOff::new(queue.into(), runtime.handle().clone());
        Ok(Some(Cluster {
            hand_off,
            _runtime: runtime,
        }))
    }
}

/// A CLI command's link to the cluster's queue.
pub(crate) struct Cluster {
    pub hand_off: turncoat_server::HandOff,
    _runtime: tokio::runtime::Runtime,
}

/// How long a token or a suppression lives, in microseconds; `None` for
/// ever.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lifetime(pub Option<i64>);

pub(crate) fn parse_lifetime(text: &str) -> Result<Lifetime, String> {
    if text == "never" {
        return Ok(Lifetime(None));
    }
    const SECOND: i64 = 1_000_000;
    const HOUR: i64 = 3_600 * SECOND;
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let per = match unit {
        "s" => SECOND,
        "h" => HOUR,
        "d" => 24 * HOUR,
        "w" => 7 * 24 * HOUR,
        _ => {
            return Err(format!(
                "{text:?}: give a number and s, h, d or w (90d), or never"
            ));
        }
    };
    number
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .and_then(|n| n.checked_mul(per))
        .map(|micros| Lifetime(Some(micros)))
        .ok_or_else(|| format!("{text:?}: the number must be a positive whole number"))
}

impl Lifetime {
    /// When it ends, counted from now.
    pub(crate) fn end(self) -> Option<turncoat_core::Time> {
        self.0
            .map(|micros| turncoat_core::Time(turncoat_core::Time::now().0.saturating_add(micros)))
    }
}

/// Listing per-tenant and global entries.
#[derive(Parser, Debug)]
pub(crate) struct ListArgs {
    /// A tenant's entries and the global ones (default: every tenant's).
    #[arg(long)]
    tenant: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

/// What a writer records in the lock for others to read: the command
/// line, shortened.
fn writer_purpose() -> String {
    // The program's own path says nothing the pid does not; its name does.
    let args = std::env::args().skip(1).take(7);
    let mut line = std::iter::once("turncoat".to_string())
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ");
    if line.len() > 120 {
        let mut end = 120;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push('…');
    }
    line
}

fn tenant(store: &dyn Store, name: &str) -> anyhow::Result<Tenant> {
    match store.tenant(name)? {
        Some(t) => Ok(t),
        None => Err(turncoat_store::StoreError::no_such_tenant(name, &store.tenants()?).into()),
    }
}

/// The first line of standard input (a password, token or secret, never
/// taken from the command line where `ps` shows it), when `asked`.
fn secret_from_stdin(asked: bool, what: &str) -> anyhow::Result<Option<String>> {
    if !asked {
        return Ok(None);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("reading the {what} from standard input"))?;
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

/// A per-tenant entry's tenant, or `(all)` for a global one.
fn tenant_or_all(tenant: Option<&TenantName>) -> String {
    tenant.map_or_else(|| "(all)".to_owned(), ToString::to_string)
}

/// Names, on stderr, the logsources of rules that can never fire because
/// no reader produces them.
fn print_unproducible(counts: &std::collections::BTreeMap<String, usize>, indent: &str) {
    if counts.is_empty() {
        return;
    }
    let total: usize = counts.values().sum();
    eprintln!("{indent}{total} rules can never fire: no reader produces their logsource:");
    const SHOWN: usize = 40;
    for (logsource, n) in counts.iter().take(SHOWN) {
        eprintln!("{indent}  {logsource}: {n}");
    }
    if counts.len() > SHOWN {
        eprintln!("{indent}  ... {} more logsources", counts.len() - SHOWN);
    }
}

/// One tenant, or every tenant (the CLI runs as the MSSP admin).
fn scope(store: &dyn Store, name: Option<&str>) -> anyhow::Result<Scope> {
    Ok(match name {
        Some(n) => Scope::tenant(&tenant(store, n)?),
        None => store.all_tenants()?,
    })
}
