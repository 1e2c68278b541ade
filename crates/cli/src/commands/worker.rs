//! `turncoat worker`: commits the chunks servers queued (cluster mode).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;

use super::Context;
use crate::output::Exit;

#[derive(Parser, Debug)]
pub(crate) struct WorkerArgs {
    /// Chunks committed at once, each on its own store connection.
    #[arg(long, default_value_t = 2, value_name = "N")]
    slots: usize,
    /// The name its logs and batch reports carry (default: host:pid).
    #[arg(long)]
    name: Option<String>,
    /// Serve /metrics and /healthz on this address.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Seconds a chunk stays with a worker that stopped answering before
    /// another takes it (set when the queue's consumers are first made).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    ack_wait: u64,
}

pub(crate) fn run(args: WorkerArgs, ctx: &Context) -> anyhow::Result<Exit> {
    let url = ctx
        .queue
        .clone()
        .context("a worker needs the queue: --queue nats://HOST:4222 or TURNCOAT_QUEUE")?;
    super::serve::init_logging();
    let ack_wait = Duration::from_secs(args.ack_wait.max(2));
    let options = turncoat_server::worker::WorkerOptions {
        slots: args.slots.max(1),
        name: args.name.unwrap_or_else(default_name),
        heartbeat: ack_wait / 3,
    };
    let store = ctx.store.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Made (and migrated) off the runtime: a database client blocks.
        let checked = store.clone();
        tokio::task::spawn_blocking(move || checked.open_reader().map(drop))
            .await?
            .with_context(|| format!("opening store {store}"))?;
        let queue = turncoat_queue::Queue::connect_with(&url, ack_wait)
            .await
            .with_context(|| format!("queue {url}"))?;
        let worker = turncoat_server::worker::Worker::new(store, queue, options)?;
        if let Some(addr) = args.listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr}"))?;
            println!("listening on http://{}", listener.local_addr()?);
            let metrics = worker.metrics();
            tokio::spawn(turncoat_server::worker::serve_probes(
                listener,
                metrics,
                turncoat_server::shutdown_signal(),
            ));
        }
        worker.run(turncoat_server::shutdown_signal()).await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(Exit::Clean)
}

fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "worker".into());
    format!("{host}:{}", std::process::id())
}
