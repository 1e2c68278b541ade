//! Commands and their output.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use turncoat_core::{AlertKind, AlertStatus, IndicatorKind, TenantName};
use turncoat_engine::beacons::{Allowlist, Networks};
use turncoat_engine::{FileStatus, IngestOptions, IngestReport, IntelReport};
use turncoat_formats::Format;
use turncoat_formats::intel::IntelFormat;
use turncoat_store::{AlertFilter, AllowKind, LockWait, Scope, SqliteStore, Store, Tenant};

use crate::output::{OutputFormat, Table, print_json};
use crate::progress::Bar;

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
    Tenant(TenantCommand),
    /// Ingest telemetry, network logs or inventory into a tenant.
    Ingest(IngestArgs),
    /// Import and list threat intel and advisories.
    #[command(subcommand)]
    Intel(IntelCommand),
    /// List alerts (exit 1 when there are any).
    Alerts(AlertsArgs),
    /// Who runs or ran an affected version, and when (exit 1 when anyone does).
    Exposure(ExposureArgs),
    /// Show the audit log.
    Audit(AuditArgs),
    /// New behaviour of an application version across the fleet: modules,
    /// children, destinations no earlier version showed (exit 1 when any).
    Drift(DriftArgs),
    /// Import and list Sigma rules: they run on every ingested event, and over
    /// the stored archive when new or changed.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Hunt log files with Sigma rules (and intel), without a data directory
    /// (exit 1 when anything is detected).
    Hunt(HuntArgs),
    /// MSSP-level campaign alerts: the same indicator, rule or drift in several
    /// tenants within a window (re-evaluated with the given thresholds).
    Campaigns(CampaignsArgs),
    /// Triage one alert.
    #[command(subcommand)]
    Alert(AlertCommand),
    /// Allowlists for network analytics: destinations and sources exempt from
    /// beacon analysis, per tenant or global; they apply to stored data at once.
    #[command(subcommand)]
    Allow(AllowCommand),
    /// The address ranges that are the tenants' own, besides the private ones:
    /// network analytics count only internal sources.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Rank (source, destination) pairs by how much they beacon: offline over
    /// log files, or over a tenant's stored records (exit 1 when any rank above --min-score).
    Beacons(BeaconsArgs),
    /// Write a simulated multi-tenant fleet's telemetry, inventory and network logs.
    Simulate(SimulateArgs),
    /// Vet a release before rollout: unpack it, analyse its binaries and
    /// signatures, diff it against the previous one (exit 1 unless clean).
    Vet(crate::vet::VetArgs),
    /// Simulate a fleet hit by the 3CX compromise, detect it, and check the result
    /// against what was planted (exit 1 when anything was missed or falsely raised).
    Demo(DemoArgs),
}

#[derive(Parser, Debug)]
struct SimulateArgs {
    /// Output directory (one folder per tenant, plus truth.json).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 3)]
    tenants: usize,
    /// Endpoints per tenant.
    #[arg(long, default_value_t = 16)]
    endpoints: usize,
    #[arg(long, default_value_t = 21)]
    days: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// 3cx (the compromise planted) or clean.
    #[arg(long, default_value = "3cx")]
    scenario: String,
    /// Background endpoint events per endpoint and day.
    #[arg(long, default_value_t = 150)]
    events_per_endpoint_day: u64,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

#[derive(Parser, Debug)]
struct DemoArgs {
    /// Do not serve the console afterwards (the server is not part of this build yet).
    #[arg(long)]
    no_serve: bool,
    #[arg(long, default_value_t = 3)]
    tenants: usize,
    /// Endpoints per tenant.
    #[arg(long, default_value_t = 16)]
    endpoints: usize,
    #[arg(long, default_value_t = 21)]
    days: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 150)]
    events_per_endpoint_day: u64,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

#[derive(Subcommand, Debug)]
enum TenantCommand {
    /// Create a tenant.
    Add { name: String },
    /// List tenants.
    List {
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

/// Input formats for `ingest --format`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum InputFormat {
    Auto,
    Ecs,
    Evtx,
    WineventJson,
    Zeek,
    Osquery,
    Cyclonedx,
    Spdx,
}

impl InputFormat {
    fn to_format(self) -> Option<Format> {
        Some(match self {
            InputFormat::Auto => return None,
            InputFormat::Ecs => Format::Ecs,
            InputFormat::Evtx => Format::Evtx,
            InputFormat::WineventJson => Format::WineventJson,
            InputFormat::Zeek => Format::Zeek,
            InputFormat::Osquery => Format::Osquery,
            InputFormat::Cyclonedx => Format::CycloneDx,
            InputFormat::Spdx => Format::Spdx,
        })
    }
}

#[derive(Parser, Debug)]
struct IngestArgs {
    /// The tenant the data belongs to.
    #[arg(long)]
    tenant: String,
    /// Input format; told from the content by default.
    #[arg(long, value_enum, default_value = "auto")]
    format: InputFormat,
    /// Endpoint name for records that carry none (an SBOM, a sensor's logs).
    #[arg(long)]
    endpoint: Option<String>,
    /// How to print the ingest report.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
    /// Ranked beacon score from which the post-ingest beacon step raises alerts.
    #[arg(long, default_value_t = turncoat_engine::beacons::DEFAULT_ALERT_THRESHOLD)]
    beacon_threshold: f64,
    /// Records per committed batch: a crash redoes at most this many, and
    /// memory grows with it (about 100 MB of ECS events at the default).
    #[arg(long, default_value_t = turncoat_engine::BATCH_RECORDS as u32,
          value_parser = clap::value_parser!(u32).range(1..))]
    batch_records: u32,
    /// Files, directories (recursed) or `-` for standard input.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum IntelInputFormat {
    Auto,
    Stix,
    Misp,
    Csv,
    Osv,
    Advisory,
}

#[derive(Subcommand, Debug)]
enum IntelCommand {
    /// Import intel and retro-hunt every tenant's stored data with it.
    Import {
        #[arg(long, value_enum, default_value = "auto")]
        format: IntelInputFormat,
        /// How to print the import report.
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
        /// Files, directories (recursed) or `-`.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// List stored indicators.
    List {
        /// Only patterns turncoat cannot evaluate.
        #[arg(long)]
        unsupported: bool,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// List stored advisories.
    Advisories {
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

#[derive(Parser, Debug)]
struct AlertsArgs {
    /// Only this tenant (default: every tenant).
    #[arg(long)]
    tenant: Option<String>,
    /// Only alerts of this kind (ioc, exposure, sigma, beacon, drift, campaign).
    #[arg(long)]
    kind: Option<String>,
    /// Only alerts in this triage state.
    #[arg(long)]
    status: Option<String>,
    /// Only alerts on this endpoint.
    #[arg(long)]
    endpoint: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

#[derive(Parser, Debug)]
struct ExposureArgs {
    /// Only this advisory.
    #[arg(long)]
    advisory: Option<String>,
    /// Only this tenant (default: every tenant).
    #[arg(long)]
    tenant: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

#[derive(Subcommand, Debug)]
enum RulesCommand {
    /// Import rule files or directories (recursively), then retro-hunt.
    Import {
        /// Leave out rules with these statuses (e.g. deprecated, experimental).
        #[arg(long, value_delimiter = ',')]
        exclude_status: Vec<String>,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// List stored rules.
    List {
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

/// `hunt --format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum HuntFormat {
    #[default]
    Table,
    Jsonl,
    Csv,
}

#[derive(Parser, Debug)]
struct HuntArgs {
    /// Sigma rule files or directories.
    #[arg(long, required = true, num_args = 1..)]
    rules: Vec<PathBuf>,
    /// Intel files whose indicators are matched too.
    #[arg(long, num_args = 1..)]
    intel: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    format: HuntFormat,
    /// Only rules at or above this level (informational, low, medium, high, critical).
    #[arg(long)]
    min_level: Option<String>,
    /// Worker threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// .evtx, Windows event JSON, ECS NDJSON, Zeek logs: files or directories
    /// (after `--` when they directly follow --rules or --intel).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

#[derive(Parser, Debug)]
struct CampaignsArgs {
    /// Tenants that must show the same detection.
    #[arg(long, default_value_t = turncoat_engine::campaign::DEFAULT_MIN_TENANTS)]
    min_tenants: usize,
    /// Days within which their first sightings must fall.
    #[arg(long, default_value_t = turncoat_engine::campaign::DEFAULT_WINDOW_DAYS)]
    window_days: i64,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

#[derive(Subcommand, Debug)]
enum AlertCommand {
    /// Set an alert's triage status (new, acknowledged, in-progress, resolved, false-positive, suppressed).
    Status { id: i64, status: String },
}

#[derive(Parser, Debug)]
struct DriftArgs {
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

#[derive(Subcommand, Debug)]
enum AllowCommand {
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

/// Listing per-tenant and global entries.
#[derive(Parser, Debug)]
struct ListArgs {
    /// A tenant's entries and the global ones (default: every tenant's).
    #[arg(long)]
    tenant: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

#[derive(Subcommand, Debug)]
enum NetworkCommand {
    /// Internal ranges: a tenant's public ranges, a sensor's address.
    #[command(subcommand)]
    Internal(InternalCommand),
}

#[derive(Subcommand, Debug)]
enum InternalCommand {
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

#[derive(Parser, Debug)]
struct BeaconsArgs {
    /// The tenant whose stored records to analyse (when no paths are given).
    #[arg(long)]
    tenant: Option<String>,
    /// Only connections at or after this time (RFC 3339 or a date).
    #[arg(long)]
    since: Option<String>,
    /// Only pairs whose ranked score reaches this.
    #[arg(long, default_value_t = 0.5)]
    min_score: f64,
    /// With --tenant: record pairs ranked at or above --threshold as alerts of kind beacon.
    #[arg(long)]
    raise: bool,
    /// Also analyse pairs between two internal addresses (left out by
    /// default, as RITA does: a host's chatter with its router is not C2).
    #[arg(long)]
    include_internal: bool,
    /// Show how each beacon's rank was computed.
    #[arg(long)]
    explain: bool,
    /// Ranked score from which --raise makes an alert.
    #[arg(long, default_value_t = turncoat_engine::beacons::DEFAULT_ALERT_THRESHOLD)]
    threshold: f64,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
    /// Log files or directories to analyse without a data directory.
    paths: Vec<PathBuf>,
}

#[derive(Parser, Debug)]
struct AuditArgs {
    #[arg(long)]
    tenant: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

const FINDINGS: u8 = 1;

/// Exit 1 when a command reports findings, 0 when it is clean.
pub fn findings_exit(found: bool) -> ExitCode {
    if found {
        ExitCode::from(FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Commands that change the data directory open it as its one writer,
    // waiting for any other; the others read a committed snapshot. Only
    // the commands that set up a data directory (adding a tenant, intel,
    // rules, an allowlist entry or an internal network) create it; the rest
    // say there is none.
    let create = || {
        let purpose = writer_purpose();
        let mut on_wait = |holder: &turncoat_store::LockHolder, timeout: Duration| {
            eprintln!(
                "turncoat: waiting for {holder} to finish with {} (up to {} s)",
                cli.data.display(),
                timeout.as_secs()
            );
        };
        let mut wait = LockWait {
            timeout: Duration::from_secs(cli.lock_timeout),
            purpose: &purpose,
            on_wait: &mut on_wait,
        };
        SqliteStore::open_writer(&cli.data, &mut wait)
            .with_context(|| format!("opening data directory {}", cli.data.display()))
    };
    let open = || {
        if !SqliteStore::exists(&cli.data) {
            return Err(turncoat_store::StoreError::NoStore(
                cli.data.display().to_string(),
            ))
            .with_context(|| format!("opening data directory {}", cli.data.display()));
        }
        create()
    };
    let read = || {
        SqliteStore::open_reader(&cli.data)
            .with_context(|| format!("reading data directory {}", cli.data.display()))
    };
    match cli.command {
        Command::Tenant(TenantCommand::Add { name }) => {
            let name = TenantName::new(&name)?;
            let mut store = create()?;
            store.add_tenant(&name, turncoat_engine::ACTOR)?;
            println!("tenant {name} added");
            Ok(ExitCode::SUCCESS)
        }
        Command::Tenant(TenantCommand::List { format }) => {
            let store = read()?;
            let tenants = store.tenants()?;
            match format {
                OutputFormat::Json => {
                    let rows = tenants
                        .iter()
                        .map(|t| Ok(serde_json::json!({ "name": t.name, "created": t.created, "stats": store.stats(t)? })))
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    print_json(&rows)?;
                }
                OutputFormat::Table => {
                    let mut t = Table::new(&["tenant", "created", "endpoints", "events", "alerts"]);
                    for tenant in &tenants {
                        let s = store.stats(tenant)?;
                        t.row(vec![
                            tenant.name.to_string(),
                            tenant.created.to_string(),
                            s.endpoints.to_string(),
                            s.events.to_string(),
                            s.alerts.to_string(),
                        ]);
                    }
                    t.print()?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest(args) => {
            let mut store = open()?;
            let tenant = tenant(&store, &args.tenant)?;
            let options = IngestOptions {
                format: args.format.to_format(),
                endpoint: args.endpoint,
                beacon_threshold: Some(args.beacon_threshold),
                batch_records: Some(args.batch_records as usize),
                ..Default::default()
            };
            let report =
                turncoat_engine::ingest(&mut store, &tenant, &args.paths, &options, &Bar::new())?;
            print_ingest(&report, args.output)?;
            eprintln!("turncoat: ingest: {}", report.summary());
            Ok(if report.failures() > 0 {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Intel(IntelCommand::Import {
            format,
            output,
            paths,
        }) => {
            let mut store = create()?;
            let format = match format {
                IntelInputFormat::Auto => None,
                IntelInputFormat::Stix => Some(IntelFormat::Stix),
                IntelInputFormat::Misp => Some(IntelFormat::Misp),
                IntelInputFormat::Csv => Some(IntelFormat::Csv),
                IntelInputFormat::Osv => Some(IntelFormat::Osv),
                IntelInputFormat::Advisory => Some(IntelFormat::Advisory),
            };
            let report = turncoat_engine::import_intel(&mut store, &paths, format, &Bar::new())?;
            print_intel(&report, output)?;
            Ok(if report.any_file_failed() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Intel(IntelCommand::List {
            unsupported,
            format,
        }) => {
            let store = read()?;
            let list: Vec<_> = store
                .indicators()?
                .into_iter()
                .filter(|s| !unsupported || s.indicator.kind == IndicatorKind::Unsupported)
                .collect();
            match format {
                OutputFormat::Json => {
                    let docs: Vec<_> = list.iter().map(|s| &s.indicator).collect();
                    print_json(&docs)?;
                }
                OutputFormat::Table => {
                    let mut t = Table::new(&["kind", "value", "source", "campaign", "state"]);
                    for s in &list {
                        let i = &s.indicator;
                        let state = if i.revoked {
                            "revoked".to_owned()
                        } else if let Some(r) = &i.unsupported_reason {
                            format!("unsupported: {r}")
                        } else {
                            "active".to_owned()
                        };
                        t.row(vec![
                            i.kind.to_string(),
                            i.value.clone(),
                            i.source.clone(),
                            i.campaign.clone().unwrap_or_default(),
                            state,
                        ]);
                    }
                    t.print()?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Intel(IntelCommand::Advisories { format }) => {
            let store = read()?;
            let advisories = store.advisories()?;
            match format {
                OutputFormat::Json => print_json(&advisories)?,
                OutputFormat::Table => {
                    let mut t = Table::new(&["id", "title", "products", "published"]);
                    for a in &advisories {
                        let products: Vec<String> =
                            a.affected.iter().map(|f| f.product.clone()).collect();
                        t.row(vec![
                            a.id.clone(),
                            a.title.clone(),
                            products.join(", "),
                            a.published.clone().unwrap_or_default(),
                        ]);
                    }
                    t.print()?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Alerts(args) => {
            let store = read()?;
            let scope = scope(&store, args.tenant.as_deref())?;
            let filter = AlertFilter {
                kind: args
                    .kind
                    .as_deref()
                    .map(str::parse::<AlertKind>)
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
                status: args
                    .status
                    .as_deref()
                    .map(str::parse::<AlertStatus>)
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
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
            let campaigns: Vec<_> = if filter.kind.is_none_or(|k| k == AlertKind::Campaign)
                && filter.endpoint.is_none()
            {
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
            Ok(findings_exit(!alerts.is_empty() || !campaigns.is_empty()))
        }
        Command::Exposure(args) => {
            let store = read()?;
            let scope = scope(&store, args.tenant.as_deref())?;
            if let Some(id) = &args.advisory
                && !store.advisories()?.iter().any(|a| &a.id == id)
            {
                bail!("no advisory {id:?}; `turncoat intel advisories` lists them");
            }
            let rows = turncoat_engine::exposure(&store, &scope, args.advisory.as_deref())?;
            match args.format {
                OutputFormat::Json => print_json(&rows)?,
                OutputFormat::Table => {
                    crate::output::exposure_table(&rows).print_or("no exposure")?;
                }
            }
            Ok(findings_exit(!rows.is_empty()))
        }
        Command::Simulate(args) => simulate(&args),
        Command::Demo(args) => {
            let clean = crate::demo::run(&crate::demo::DemoOptions {
                tenants: args.tenants,
                endpoints: args.endpoints,
                days: args.days,
                seed: args.seed,
                events_per_endpoint_day: args.events_per_endpoint_day,
                format: args.format,
            })?;
            Ok(if clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(FINDINGS)
            })
        }
        Command::Beacons(args) => {
            let since = args
                .since
                .as_deref()
                .map(turncoat_core::Time::parse)
                .transpose()?;
            let report = if args.paths.is_empty() {
                let Some(name) = &args.tenant else {
                    bail!(
                        "give log files to analyse, or --tenant to analyse a tenant's stored records"
                    );
                };
                let mut store = if args.raise { open()? } else { read()? };
                let tenant = tenant(&store, name)?;
                let report = turncoat_engine::beacons::analyze_stored(
                    &store,
                    &tenant,
                    since,
                    args.min_score,
                    args.include_internal,
                )?;
                if args.raise {
                    let intel = turncoat_engine::load_intel(&mut store)?;
                    let outcome = turncoat_engine::beacons::raise(
                        &mut store,
                        &tenant,
                        &report,
                        args.threshold,
                        &intel,
                    )?;
                    eprintln!(
                        "beacon alerts: {} new, {} updated",
                        outcome.new_alerts, outcome.updated_alerts
                    );
                }
                report
            } else {
                if args.raise {
                    bail!("--raise needs --tenant: alerts belong to a tenant's stored records");
                }
                // Log files need no data directory; global allowlist
                // entries and internal ranges apply when one exists.
                let (allow, internal) = if SqliteStore::exists(&cli.data) {
                    let store = read()?;
                    let global = Scope::tenants(&[]);
                    (store.allowlist(&global)?, store.internal_networks(&global)?)
                } else {
                    Default::default()
                };
                turncoat_engine::beacons::beacons_offline(
                    &args.paths,
                    since,
                    args.min_score,
                    Allowlist::new(&allow),
                    Networks::new(&internal, args.include_internal),
                )?
            };
            for unread in &report.unread {
                eprintln!("turncoat: {unread}");
            }
            match args.format {
                OutputFormat::Json => print_json(&report.ranked())?,
                OutputFormat::Table => {
                    let mut t = Table::new(&[
                        "src",
                        "dst",
                        "fqdn",
                        "count",
                        "score",
                        "ts",
                        "ds",
                        "dur",
                        "hist",
                        "prevalence",
                        "rank",
                        "median gap s",
                    ]);
                    for b in &report.beacons {
                        t.row(vec![
                            b.src.clone(),
                            b.dst.clone(),
                            b.fqdn.clone().unwrap_or_default(),
                            b.count.to_string(),
                            format!("{:.3}", b.score),
                            format!("{:.2}", b.ts_score),
                            format!("{:.2}", b.ds_score),
                            format!("{:.2}", b.dur_score),
                            format!("{:.2}", b.hist_score),
                            format!("{:.2}", b.prevalence),
                            format!("{:.3}", b.rank_score),
                            format!("{:.0}", b.median_interval_s),
                        ]);
                    }
                    t.print()?;
                    if args.explain {
                        for b in &report.beacons {
                            println!("{} -> {}: {}", b.src, b.dst, b.explain());
                        }
                    }
                    println!(
                        "{} connections, {} pairs, {} ranked at or above {}; {} strobes, {} long connections",
                        report.connections,
                        report.pairs,
                        report.beacons.len(),
                        args.min_score,
                        report.strobes.len(),
                        report.long_connections.len()
                    );
                    for s in &report.strobes {
                        println!(
                            "strobe: {} -> {} ({}) {} connections",
                            s.src,
                            s.dst,
                            s.fqdn.as_deref().unwrap_or("-"),
                            s.count
                        );
                    }
                    for l in report.long_connections.iter().take(10) {
                        println!(
                            "long connection: {} -> {} ({}) {:.0}s",
                            l.src,
                            l.dst,
                            l.fqdn.as_deref().unwrap_or("-"),
                            l.longest_s
                        );
                    }
                }
            }
            Ok(findings_exit(!report.beacons.is_empty()))
        }
        Command::Hunt(args) => hunt(args),
        Command::Vet(args) => crate::vet::run(args),
        Command::Rules(RulesCommand::Import {
            exclude_status,
            output,
            paths,
        }) => {
            let mut store = create()?;
            let report =
                turncoat_engine::rules::import(&mut store, &paths, &exclude_status, &Bar::new())?;
            for f in report.failed.iter().take(50) {
                eprintln!("rule failed: {f}");
            }
            print_unproducible(&report.unproducible, "");
            match output {
                OutputFormat::Json => print_json(&report)?,
                OutputFormat::Table => {
                    println!(
                        "{} files, {} rules compiled, {} failed, {} excluded by status, {} new or changed",
                        report.files,
                        report.compiled,
                        report.failed.len(),
                        report.excluded,
                        report.new_or_changed.len()
                    );
                    let mut t = Table::new(&["tenant", "new alerts", "updated alerts"]);
                    for r in &report.retro {
                        t.row(vec![
                            r.tenant.clone(),
                            r.new_alerts.to_string(),
                            r.updated_alerts.to_string(),
                        ]);
                    }
                    if !t.is_empty() {
                        println!("retro-hunt:");
                        t.print()?;
                    }
                }
            }
            Ok(if report.compiled == 0 && !report.failed.is_empty() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Rules(RulesCommand::List { format }) => {
            let store = read()?;
            let rules = store.rules()?;
            match format {
                OutputFormat::Json => {
                    let rows: Vec<_> = rules.iter().map(|r| serde_json::json!({"id": r.id, "title": r.title, "source": r.source, "updated": r.updated})).collect();
                    print_json(&rows)?;
                }
                OutputFormat::Table => {
                    let mut t = Table::new(&["id", "title", "source"]);
                    for r in &rules {
                        t.row(vec![r.id.clone(), r.title.clone(), r.source.clone()]);
                    }
                    t.print_or("no rules")?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Campaigns(args) => {
            let mut store = open()?;
            turncoat_engine::campaign::escalate(&mut store, args.min_tenants, args.window_days)?;
            let campaigns = turncoat_engine::campaign::campaign_rows(
                &store,
                &Scope::tenants(&store.tenants()?),
                args.min_tenants,
                args.window_days,
            )?;
            match args.format {
                OutputFormat::Json => print_json(&campaigns)?,
                OutputFormat::Table => {
                    let mut t = Table::new(&[
                        "id",
                        "kind",
                        "source",
                        "tenants",
                        "alerts",
                        "dismissed in",
                        "first seen",
                        "title",
                    ]);
                    for c in &campaigns {
                        t.row(vec![
                            c.id.to_string(),
                            c.member_kind.to_string(),
                            c.source.clone(),
                            c.tenants.len().to_string(),
                            c.member_alerts.len().to_string(),
                            c.dismissed_tenants.to_string(),
                            c.first_seen.to_string(),
                            c.title.clone(),
                        ]);
                    }
                    t.print_or("no campaigns")?;
                }
            }
            Ok(findings_exit(!campaigns.is_empty()))
        }
        Command::Alert(AlertCommand::Status { id, status }) => {
            let mut store = open()?;
            let status: AlertStatus = status.parse().map_err(anyhow::Error::msg)?;
            store.set_alert_status(
                &Scope::tenants(&store.tenants()?),
                id,
                status,
                turncoat_engine::ACTOR,
            )?;
            println!("alert {id}: {status}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Drift(args) => {
            let mut store = if args.raise { open()? } else { read()? };
            let scope = scope(&store, args.tenant.as_deref())?;
            let rows = turncoat_engine::drift::analyze(&store, scope.members(), args.min_tenants)?;
            if args.raise {
                let o = turncoat_engine::drift::raise(&mut store, scope.members(), &rows)?;
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
            Ok(findings_exit(!rows.is_empty()))
        }
        Command::Allow(AllowCommand::Add {
            tenant: name,
            destination,
            source,
            reason,
        }) => {
            let mut store = create()?;
            let (kind, raw) = match (destination, source) {
                (Some(d), _) => (AllowKind::Destination, d),
                (None, Some(s)) => (AllowKind::Source, s),
                (None, None) => bail!("give --destination or --source"),
            };
            let t = name.as_deref().map(|n| tenant(&store, n)).transpose()?;
            let entry = turncoat_store::NewAllowEntry {
                kind,
                value: &raw,
                reason: &reason,
            };
            let added = turncoat_engine::beacons::allow(
                &mut store,
                t.as_ref(),
                &entry,
                turncoat_engine::ACTOR,
            )?;
            println!(
                "allowlist entry {}: {} {}; {} beacon alerts closed as allowlisted",
                added.id,
                kind.as_str(),
                Allowlist::validate(kind, &raw).map_err(anyhow::Error::msg)?,
                added.closed.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Allow(AllowCommand::List(args)) => {
            let store = read()?;
            let entries = store.allowlist(&scope(&store, args.tenant.as_deref())?)?;
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
            Ok(ExitCode::SUCCESS)
        }
        Command::Allow(AllowCommand::Remove { id }) => {
            let mut store = open()?;
            let all = Scope::tenants(&store.tenants()?);
            store.remove_allow(&all, id, turncoat_engine::ACTOR)?;
            println!("allowlist entry {id} removed");
            Ok(ExitCode::SUCCESS)
        }
        Command::Network(NetworkCommand::Internal(InternalCommand::Add {
            tenant: name,
            note,
            cidr,
        })) => {
            let mut store = create()?;
            let cidr = Networks::validate(&cidr).map_err(anyhow::Error::msg)?;
            let t = name.as_deref().map(|n| tenant(&store, n)).transpose()?;
            let id =
                store.add_internal_network(t.as_ref(), &cidr, &note, turncoat_engine::ACTOR)?;
            println!("internal network {id}: {cidr}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Network(NetworkCommand::Internal(InternalCommand::List(args))) => {
            let store = read()?;
            let ranges = store.internal_networks(&scope(&store, args.tenant.as_deref())?)?;
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
            Ok(ExitCode::SUCCESS)
        }
        Command::Network(NetworkCommand::Internal(InternalCommand::Remove { id })) => {
            let mut store = open()?;
            let all = Scope::tenants(&store.tenants()?);
            store.remove_internal_network(&all, id, turncoat_engine::ACTOR)?;
            println!("internal network {id} removed");
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(args) => {
            let store = read()?;
            let scope = scope(&store, args.tenant.as_deref())?;
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
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Quotes a CSV field when it needs it.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Every indicator in intel files or directories (advisories' included),
/// for commands that match without a data directory.
pub fn load_indicators(paths: &[PathBuf]) -> anyhow::Result<Vec<turncoat_core::Indicator>> {
    let mut indicators = Vec::new();
    for path in turncoat_engine::walk_inputs(paths)? {
        let mut input = turncoat_formats::Input::open(&path)?;
        let (_, mut found) = turncoat_formats::intel::read_intel(
            &mut input,
            None,
            &turncoat_formats::Limits::default(),
        )?;
        for a in &mut found.advisories {
            found.indicators.append(&mut a.indicators);
        }
        indicators.extend(found.indicators);
    }
    Ok(indicators)
}

fn hunt(args: HuntArgs) -> anyhow::Result<ExitCode> {
    let mut rules = turncoat_sigma::RuleSet::load(&args.rules)?;
    if let Some(level) = &args.min_level {
        rules.retain_level(level);
    }
    let intel = if args.intel.is_empty() {
        None
    } else {
        Some(turncoat_detect::IndicatorIndex::new(load_indicators(
            &args.intel,
        )?))
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut out = std::io::stdout().lock();
    let mut table = Table::new(&["time", "host", "level", "rule", "file"]);
    if args.format == HuntFormat::Csv {
        writeln!(
            out,
            "timestamp,host,level,rule_id,rule_title,file,record_id"
        )?;
    }
    let mut write_error = None;
    let summary = turncoat_engine::hunt::hunt(
        &rules,
        intel.as_ref(),
        &args.inputs,
        threads,
        &Bar::new(),
        &mut |d| {
            let result = match args.format {
                HuntFormat::Table => {
                    table.row(vec![
                        d.timestamp.to_string(),
                        d.host.clone(),
                        d.level.clone(),
                        d.rule_title.clone(),
                        d.file.clone(),
                    ]);
                    Ok(())
                }
                HuntFormat::Jsonl => serde_json::to_writer(&mut out, &d)
                    .map_err(std::io::Error::from)
                    .and_then(|_| writeln!(out)),
                HuntFormat::Csv => writeln!(
                    out,
                    "{},{},{},{},{},{},{}",
                    d.timestamp,
                    csv_field(&d.host),
                    d.level,
                    csv_field(d.rule_id.as_deref().unwrap_or("")),
                    csv_field(&d.rule_title),
                    csv_field(&d.file),
                    d.record_id.map(|r| r.to_string()).unwrap_or_default()
                ),
            };
            if let Err(e) = result {
                write_error.get_or_insert(e);
            }
        },
    )?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    if args.format == HuntFormat::Table {
        table.print_or("no detections")?;
    }
    eprintln!(
        "hunt: {} files, {} events ({} skipped), {} rules loaded, {} failed to compile, {} detections in {:.2}s",
        summary.files,
        summary.events,
        summary.skipped_records,
        summary.rules_loaded,
        summary.rules_failed.len(),
        summary.detections,
        summary.seconds
    );
    for f in summary.rules_failed.iter().take(20) {
        eprintln!("  rule failed: {f}");
    }
    print_unproducible(&summary.rules_unproducible, "  ");
    for r in &summary.rules_over_budget {
        eprintln!("  rule over time budget: {r}");
    }
    for u in summary.unreadable.iter().take(10) {
        eprintln!("  unreadable: {u}");
    }
    if summary.unreadable.len() > 10 {
        eprintln!(
            "  ... {} more unreadable inputs (not telemetry?)",
            summary.unreadable.len() - 10
        );
    }
    let mut per_rule: Vec<(&String, &u64)> = summary.detections_per_rule.iter().collect();
    per_rule.sort_by(|a, b| b.1.cmp(a.1));
    for (rule, n) in per_rule.iter().take(20) {
        eprintln!("  {n:>8}  {rule}");
    }
    Ok(findings_exit(summary.detections > 0))
}

fn simulate(args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    let cfg = turncoat_sim::Config {
        tenants: args.tenants,
        endpoints: args.endpoints,
        days: args.days,
        seed: args.seed,
        scenario: args.scenario.parse().map_err(anyhow::Error::msg)?,
        events_per_endpoint_day: args.events_per_endpoint_day,
        ..Default::default()
    };
    let bar = Bar::new();
    turncoat_engine::Progress::start(&bar, "simulate", Some(cfg.days));
    let (truth, report) = turncoat_sim::simulate(&cfg, &args.out, &mut |_| {
        turncoat_engine::Progress::advance(&bar, 1)
    })?;
    turncoat_engine::Progress::finish(&bar);
    match args.format {
        OutputFormat::Json => print_json(&serde_json::json!({
            "out": args.out,
            "events": report.events,
            "ecs": truth.events.ecs,
            "zeek": truth.events.zeek,
            "osquery": truth.events.osquery,
            "seconds": report.seconds,
            "events_per_second": report.events_per_second(),
            "exposures": truth.exposures.len(),
            "ioc_contacts": truth.ioc_contacts.len(),
        }))?,
        OutputFormat::Table => println!(
            "wrote {} events ({} ECS, {} Zeek, {} osquery) to {} in {:.1}s ({:.0} events/s); truth: {} exposure intervals, {} IOC contacts, {} beacons",
            report.events,
            truth.events.ecs,
            truth.events.zeek,
            truth.events.osquery,
            args.out.display(),
            report.seconds,
            report.events_per_second(),
            truth.exposures.len(),
            truth.ioc_contacts.len(),
            truth.beacons.len()
        ),
    }
    Ok(ExitCode::SUCCESS)
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

fn tenant(store: &SqliteStore, name: &str) -> anyhow::Result<Tenant> {
    match store.tenant(name)? {
        Some(t) => Ok(t),
        None => Err(turncoat_store::StoreError::no_such_tenant(name, &store.tenants()?).into()),
    }
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
fn scope(store: &SqliteStore, name: Option<&str>) -> anyhow::Result<Scope> {
    Ok(match name {
        Some(n) => Scope::tenant(&tenant(store, n)?),
        None => Scope::tenants(&store.tenants()?),
    })
}

fn print_ingest(report: &IngestReport, format: OutputFormat) -> anyhow::Result<()> {
    for r in &report.rules_over_budget {
        eprintln!("rule over time budget: {r}");
    }
    for unread in &report.unread {
        eprintln!("{unread}");
    }
    for work in &report.resumed {
        eprintln!("finished post-ingest work an interrupted run left: {work}");
    }
    for issue in &report.issues {
        eprintln!("skipped: {issue}");
    }
    // In full: the table cuts long cells.
    for f in &report.files {
        if let FileStatus::Failed { error } = &f.status {
            eprintln!("error: {error}");
        }
    }
    if report.skipped_records as usize > report.issues.len() {
        eprintln!(
            "skipped: {} more records not listed",
            report.skipped_records as usize - report.issues.len()
        );
    }
    match format {
        OutputFormat::Json => print_json(report)?,
        OutputFormat::Table => {
            let mut t = Table::new(&["file", "format", "status", "events", "inventory", "skipped"]);
            for f in &report.files {
                let status = match &f.status {
                    FileStatus::Ingested => "ingested".to_owned(),
                    FileStatus::AlreadyIngested => "already ingested".to_owned(),
                    FileStatus::Resumed { after_line } => {
                        format!("resumed after line {after_line}")
                    }
                    FileStatus::Failed { error } => format!("failed: {error}"),
                };
                t.row(vec![
                    f.file.clone(),
                    f.format.clone().unwrap_or_else(|| "-".into()),
                    status,
                    f.events.to_string(),
                    f.inventory_records.to_string(),
                    f.skipped_records.to_string(),
                ]);
            }
            t.print()?;
            let rate = if report.seconds > 0.0 {
                report.events as f64 / report.seconds
            } else {
                0.0
            };
            println!(
                "{} events, {} inventory records, {} skipped in {:.2}s ({:.0} events/s); {} new alerts, {} updated",
                report.events,
                report.inventory_records,
                report.skipped_records,
                report.seconds,
                rate,
                report.new_alerts,
                report.updated_alerts
            );
        }
    }
    Ok(())
}

fn print_intel(report: &IntelReport, format: OutputFormat) -> anyhow::Result<()> {
    for r in &report.rejected {
        eprintln!("rejected: {r}");
    }
    // In full: the table cuts long cells, and the line is what to fix.
    for error in report.files.iter().filter_map(|f| f.error.as_ref()) {
        eprintln!("error: {error}");
    }
    match format {
        OutputFormat::Json => print_json(report)?,
        OutputFormat::Table => {
            let mut t = Table::new(&[
                "file",
                "format",
                "indicators",
                "advisories",
                "rejected",
                "informational",
                "error",
            ]);
            for f in &report.files {
                t.row(vec![
                    f.file.clone(),
                    f.format.clone().unwrap_or_else(|| "-".into()),
                    f.indicators.to_string(),
                    f.advisories.to_string(),
                    f.rejected.to_string(),
                    f.informational.to_string(),
                    f.error.clone().unwrap_or_default(),
                ]);
            }
            t.print()?;
            println!(
                "indicators: {} new, {} changed, {} unchanged, {} unsupported (listed by `turncoat intel list --unsupported`); advisories new or changed: {}",
                report.indicators_new,
                report.indicators_changed,
                report.indicators_unchanged,
                report.unsupported,
                if report.advisories_changed.is_empty() {
                    "none".to_owned()
                } else {
                    report.advisories_changed.join(", ")
                }
            );
            if !report.retro.is_empty() {
                let mut t = Table::new(&["tenant", "new alerts", "updated alerts"]);
                for r in &report.retro {
                    t.row(vec![
                        r.tenant.clone(),
                        r.new_alerts.to_string(),
                        r.updated_alerts.to_string(),
                    ]);
                }
                println!("retro-hunt ({:.3}s):", report.retro_seconds);
                t.print()?;
            }
        }
    }
    Ok(())
}
