//! `turncoat intel`: import intel (with its retro-hunt) and list it.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use turncoat_core::{Actor, IndicatorKind};
use turncoat_engine::IntelReport;
use turncoat_formats::intel::IntelFormat;

use super::Context;
use crate::output::{Exit, OutputFormat, Table, print_json};
use crate::progress::Bar;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum IntelInputFormat {
    Auto,
    Stix,
    Misp,
    Csv,
    Osv,
    Advisory,
}

#[derive(Subcommand, Debug)]
pub(crate) enum IntelCommand {
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
    /// TAXII 2.1 collections polled for intel (`serve` polls them too).
    #[command(subcommand)]
    Feed(FeedCommand),
}

#[derive(Subcommand, Debug)]
pub(crate) enum FeedCommand {
    /// Add a collection to poll. The password or token is read from the
    /// first line of standard input with --secret-stdin.
    Add {
        /// The feed's name: the source its indicators are stored under.
        name: String,
        /// The API root's URL, e.g. https://taxii.example/api1/.
        url: String,
        #[arg(long)]
        collection: String,
        /// User name for Basic authentication.
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        secret_stdin: bool,
    },
    /// List the feeds, where each resumes and how its last poll went.
    List {
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Remove a feed by id (its indicators stay).
    Remove { id: i64 },
    /// Poll every feed (or the one named) now: objects added since the last
    /// poll are imported and retro-hunted (exit 2 when a poll failed).
    Poll {
        name: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
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
            crate::output::print_retro_hand_off(
                report.retro_queued.as_ref(),
                report.retro_not_queued.as_ref(),
            );
            if !report.retro.is_empty() {
                println!("retro-hunt ({:.3}s):", report.retro_seconds);
                crate::output::retro_table(&report.retro).print()?;
            }
        }
    }
    Ok(())
}

pub(crate) fn run(command: IntelCommand, ctx: &Context) -> anyhow::Result<Exit> {
    match command {
        IntelCommand::Import {
            format,
            output,
            paths,
        } => {
            let mut store = ctx.create()?;
            let format = match format {
                IntelInputFormat::Auto => None,
                IntelInputFormat::Stix => Some(IntelFormat::Stix),
                IntelInputFormat::Misp => Some(IntelFormat::Misp),
                IntelInputFormat::Csv => Some(IntelFormat::Csv),
                IntelInputFormat::Osv => Some(IntelFormat::Osv),
                IntelInputFormat::Advisory => Some(IntelFormat::Advisory),
            };
            let cluster = ctx.cluster()?;
            let report = turncoat_server::handoff::import_intel(
                cluster.as_ref().map(|c| &c.hand_off),
                &mut *store,
                &paths,
                format,
                &Bar::new(),
                &Actor::Cli,
            )?;
            print_intel(&report, output)?;
            Ok(if report.any_file_failed() {
                Exit::Error
            } else {
                Exit::Clean
            })
        }
        IntelCommand::List {
            unsupported,
            format,
        } => {
            let store = ctx.read()?;
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
            Ok(Exit::Clean)
        }
        IntelCommand::Feed(command) => feed(command, ctx),
        IntelCommand::Advisories { format } => {
            let store = ctx.read()?;
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
            Ok(Exit::Clean)
        }
    }
}

fn feed(command: FeedCommand, ctx: &Context) -> anyhow::Result<Exit> {
    use turncoat_server::taxii_client;
    match command {
        FeedCommand::Add {
            name,
            url,
            collection,
            user,
            secret_stdin,
        } => {
            anyhow::ensure!(
                taxii_client::valid_feed_name(&name),
                "feed name {name:?}: letters, digits, '-', '_' and '.', not starting with '.'"
            );
            anyhow::ensure!(
                url.starts_with("https://") || url.starts_with("http://"),
                "{url}: the API root's http(s) URL"
            );
            let secret = super::secret_from_stdin(secret_stdin, "secret")?;
            let mut store = ctx.create()?;
            let feed = store.add_taxii_feed(
                &turncoat_store::NewTaxiiFeed {
                    name: &name,
                    api_root: &url,
                    collection: &collection,
                    username: user.as_deref(),
                    secret: secret.as_deref(),
                },
                &Actor::Cli,
            )?;
            println!("feed {} added: {}", feed.id, feed.name);
            Ok(Exit::Clean)
        }
        FeedCommand::List { format } => {
            let store = ctx.read()?;
            let feeds = store.taxii_feeds()?;
            match format {
                OutputFormat::Json => print_json(&feeds)?,
                OutputFormat::Table => {
                    let mut t = Table::new(&[
                        "id",
                        "name",
                        "collection",
                        "resumes after",
                        "last poll",
                        "error",
                    ]);
                    for f in &feeds {
                        t.row(vec![
                            f.id.to_string(),
                            f.name.clone(),
                            format!("{}collections/{}/", f.api_root, f.collection),
                            f.added_after.clone().unwrap_or_default(),
                            f.polled.map(|t| t.to_string()).unwrap_or_default(),
                            f.error.clone().unwrap_or_default(),
                        ]);
                    }
                    t.print()?;
                }
            }
            Ok(Exit::Clean)
        }
        FeedCommand::Remove { id } => {
            let mut store = ctx.create()?;
            store.remove_taxii_feed(id, &Actor::Cli)?;
            println!("feed {id} removed");
            Ok(Exit::Clean)
        }
        FeedCommand::Poll { name, format } => {
            let mut store = ctx.create()?;
            let feeds: Vec<_> = store
                .taxii_feeds()?
                .into_iter()
                .filter(|f| name.as_deref().is_none_or(|n| f.name == n))
                .collect();
            anyhow::ensure!(
                !feeds.is_empty(),
                "no feed to poll{}",
                name.map(|n| format!(" named {n:?}")).unwrap_or_default()
            );
            let cluster = ctx.cluster()?;
            let hand_off = cluster.as_ref().map(|c| &c.hand_off);
            let mut reports = Vec::new();
            for f in &feeds {
                let secret = store.taxii_feed_secret(f.id)?;
                let fetched = taxii_client::fetch(f, secret.as_deref());
                reports.push(taxii_client::import(
                    &mut *store,
                    f,
                    fetched,
                    &Actor::Cli,
                    hand_off,
                )?);
            }
            match format {
                OutputFormat::Json => print_json(&reports)?,
                OutputFormat::Table => {
                    let mut t = Table::new(&[
                        "feed",
                        "pages",
                        "objects",
                        "new",
                        "changed",
                        "resumes after",
                        "error",
                    ]);
                    for r in &reports {
                        t.row(vec![
                            r.feed.clone(),
                            r.pages.to_string(),
                            r.objects.to_string(),
                            r.import
                                .as_ref()
                                .map(|i| i.indicators_new.to_string())
                                .unwrap_or_default(),
                            r.import
                                .as_ref()
                                .map(|i| i.indicators_changed.to_string())
                                .unwrap_or_default(),
                            r.added_after.clone().unwrap_or_default(),
                            r.error.clone().unwrap_or_default(),
                        ]);
                    }
                    t.print()?;
                }
            }
            Ok(if reports.iter().any(|r| r.error.is_some()) {
                Exit::Error
            } else {
                Exit::Clean
            })
        }
    }
}
