//! `turncoat-bench`: the benchmarks behind BENCHMARKS.md, apart from the
//! shipped `turncoat` binary. Each measures the library crates on
//! simulator data against a baseline in the same run.

mod cluster;
mod http;
mod measure;

use std::path::PathBuf;

use clap::Parser;
use turncoat_output::OutputFormat;

/// The product's allocator, so that what is measured is what ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Benchmarks of turncoat's core on simulator data, each beside a named
/// baseline in the same run (see BENCHMARKS.md).
#[derive(Parser, Debug)]
#[command(name = "turncoat-bench", version)]
enum Bench {
    /// ECS ingest end to end on one core, beside a plain JSON parse.
    Ingest {
        /// About this many ECS events.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Indicators loaded for live matching.
        #[arg(long, default_value_t = 10_000)]
        indicators: usize,
        /// Work directory (default: a temporary one, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// `serve`'s HTTP ingest of gzip ECS NDJSON, beside the CLI's ingest
    /// of the same file.
    HttpIngest {
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        #[arg(long, default_value_t = 10_000)]
        indicators: usize,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// `GET /api/v1/alerts` latency with many alerts stored, beside
    /// reading the whole list per page as before.
    ApiAlerts {
        #[arg(long, default_value_t = 1_000_000)]
        alerts: u64,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Ingest with a million indicators loaded, beside the same ingest
    /// with ten thousand: index size, load time and the slowdown.
    IntelScale {
        #[arg(long, default_value_t = 170_000)]
        events: u64,
        #[arg(long, default_value_t = 10_000)]
        small: usize,
        #[arg(long, default_value_t = 1_000_000)]
        large: usize,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Beacon analysis of stored connection records, beside a plain archive scan.
    Beacons {
        #[arg(long, default_value_t = 10_000_000)]
        records: u64,
        #[arg(long, default_value_t = 10_000)]
        pairs: u64,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Sigma rules over simulator events, routed on one and all cores, beside
    /// evaluating every rule on every event.
    Sigma {
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Rule files or directories.
        #[arg(long, required = true, num_args = 1..)]
        rules: Vec<PathBuf>,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// `vet` with YARA over a generated tree of mixed files, beside the
    /// `yara` command-line tool on the same files and rules; and a diff of
    /// two such releases.
    Vet {
        #[arg(long, default_value_t = 2_000)]
        files: usize,
        #[arg(long, default_value_t = 200)]
        megabytes: u64,
        /// YARA rule files or directories.
        #[arg(long, required = true, num_args = 1..)]
        yara: Vec<PathBuf>,
        /// Threads for both (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Retro-hunt of new indicators against stored sightings, beside a full scan.
    /// Cluster mode's ingest rate: a server publishing to NATS JetStream
    /// and 1, 2, 4 workers committing to PostgreSQL, beside a server on
    /// the embedded store taking the same requests.
    ClusterIngest {
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        #[arg(long, default_value_t = 8)]
        tenants: usize,
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        workers: Vec<usize>,
        /// A database on the PostgreSQL server to use: fresh databases are
        /// made beside it for each run, and dropped.
        #[arg(long)]
        postgres: String,
        /// NATS with JetStream, `nats://host:port`: a namespace per run.
        #[arg(long)]
        queue: String,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    Retro {
        #[arg(long, default_value_t = 10_000_000)]
        sightings: u64,
        #[arg(long, default_value_t = 10_000)]
        indicators: usize,
        /// An empty PostgreSQL database to run on (`postgres://…`) instead
        /// of an embedded store in the work directory.
        #[arg(long)]
        store: Option<String>,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

fn main() -> anyhow::Result<()> {
    let work = |dir: Option<PathBuf>| -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
        match dir {
            Some(d) => Ok((d, None)),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("turncoat-bench-")
                    .tempdir()?;
                Ok((t.path().to_owned(), Some(t)))
            }
        }
    };
    match Bench::parse() {
        Bench::Ingest {
            events,
            indicators,
            dir,
            format,
        } => {
            let (dir, _guard) = work(dir)?;
            measure::ingest(events, indicators, &dir, format)?;
        }
        Bench::HttpIngest {
            events,
            indicators,
            dir,
            format,
        } => {
            let (dir, _guard) = work(dir)?;
            http::http_ingest(events, indicators, &dir, format)?;
        }
        Bench::ClusterIngest {
            events,
            tenants,
            workers,
            postgres,
            queue,
            dir,
            format,
        } => {
            let (dir, _guard) = work(dir)?;
            cluster::cluster_ingest(events, tenants, &workers, &postgres, &queue, &dir, format)?;
        }
        Bench::ApiAlerts {
            alerts,
            dir,
            format,
        } => {
            let (dir, _guard) = work(dir)?;
            http::api_alerts(alerts, &dir, format)?;
        }
        Bench::IntelScale {
            events,
            small,
            large,
            dir,
            format,
        } => {
            let (dir, _guard) = work(dir)?;
            measure::intel_scale(events, small, large, &dir, format)?;
        }
        Bench::Sigma {
            events,
            rules,
            dir,
            format,
        } => {
            let (dir, _guard) = work(dir)?;
            measure::sigma(events, &rules, &dir, format)?;
        }
        Bench::Beacons {
            records,
            pairs,
            dir,
            format,
        } => {
            let (dir, _guard) = work(dir)?;
            measure::beacons(records, pairs, &dir, format)?;
        }
        Bench::Vet {
            files,
            megabytes,
            yara,
            threads,
            dir,
            format,
        } => {
            let (dir, _guard) = work(dir)?;
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            measure::vet(files, megabytes, &yara, threads, &dir, format)?;
        }
        Bench::Retro {
            sightings,
            indicators,
            store,
            dir,
            format,
        } => {
            let (dir, _guard) = work(dir)?;
            let store = store.map_or_else(
                || turncoat_store::StoreLocation::Dir(dir.join("data")),
                |url| turncoat_store::StoreLocation::parse(&url),
            );
            measure::retro(sightings, indicators, &store, format)?;
        }
    }
    Ok(())
}
