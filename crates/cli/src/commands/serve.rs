//! `turncoat serve`: the HTTP API on the data directory.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use super::Context;
use crate::output::Exit;

#[derive(Parser, Debug)]
pub(crate) struct ServeArgs {
    /// Address and port to listen on (port 0: any free one).
    #[arg(long, default_value = "127.0.0.1:8440")]
    listen: SocketAddr,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Largest ingest request body, decompressed, in MiB.
    #[arg(long, default_value_t = 4096, value_name = "MIB")]
    max_body_mib: u64,
    /// Ingest requests taken at once; more are answered 429.
    #[arg(long, default_value_t = 16, value_name = "N")]
    max_ingest_requests: usize,
    /// Spooled chunks waiting for commit at most.
    #[arg(long, default_value_t = 4, value_name = "N")]
    ingest_queue: usize,
    /// Line-delimited JSON bodies are committed in chunks of this size.
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    ingest_chunk_mib: u64,
    /// Poll the TAXII feeds (`intel feed add`) this often, in seconds.
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    taxii_poll: u64,
    /// Leave suppression expiry, TAXII polling and notification delivery
    /// to another server on the same database (cluster mode: one server
    /// does them for all).
    #[arg(long)]
    no_duties: bool,
}

pub(crate) fn run(args: ServeArgs, ctx: &Context) -> anyhow::Result<Exit> {
    let tls = args
        .tls_cert
        .zip(args.tls_key)
        .map(|(cert, key)| turncoat_server::TlsFiles { cert, key });
    let limits = turncoat_server::IngestLimits {
        max_body_bytes: args.max_body_mib << 20,
        max_requests: args.max_ingest_requests,
        queue_chunks: args.ingest_queue,
        chunk_bytes: args.ingest_chunk_mib.max(1) << 20,
    };
    // The one line on stdout: where to reach it (the port, when 0 was asked).
    let schedule = Schedule {
        taxii_poll: std::time::Duration::from_secs(args.taxii_poll),
        duties: !args.no_duties,
    };
    serve(
        args.listen,
        ctx.store.clone(),
        ctx.queue.clone(),
        tls,
        limits,
        schedule,
        |url| {
            println!("listening on {url}");
        },
    )?;
    Ok(Exit::Clean)
}

/// What a server does on its own besides answering.
pub(crate) struct Schedule {
    pub taxii_poll: std::time::Duration,
    /// Suppression expiry, TAXII polling and notification delivery.
    pub duties: bool,
}

/// Serves `store` until SIGTERM or Ctrl-C; `ready` is told the server's
/// URL once it listens. `serve` and `demo` run the server through this.
#[allow(clippy::too_many_arguments)]
pub(crate) fn serve(
    listen: SocketAddr,
    store: turncoat_store::StoreLocation,
    queue: Option<turncoat_queue::QueueUrl>,
    tls: Option<turncoat_server::TlsFiles>,
    limits: turncoat_server::IngestLimits,
    schedule: Schedule,
    ready: impl FnOnce(&str),
) -> anyhow::Result<()> {
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut server = turncoat_server::Server::bind(listen, store, tls.as_ref(), limits)
            .await?
            .poll_taxii_every(schedule.taxii_poll);
        if let Some(url) = queue {
            let queue = turncoat_queue::Queue::connect(&url)
                .await
                .map_err(|e| anyhow::anyhow!("queue {url}: {e}"))?;
            server = server.with_queue(queue);
        }
        if !schedule.duties {
            server = server.without_duties();
        }
        let scheme = if server.is_tls() { "https" } else { "http" };
        ready(&format!("{scheme}://{}", server.local_addr()));
        server.run(turncoat_server::shutdown_signal()).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(())
}

/// Logs to stderr, as `TURNCOAT_LOG` filters (`info` by default).
pub(crate) fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TURNCOAT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}
