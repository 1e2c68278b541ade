//! `turncoat worker`: commits the chunks a cluster's servers queued.
//!
//! A worker runs a few *slots*, each a loop over the queue's partitions:
//! it takes a partition's next chunk (JetStream hands a partition's chunk
//! to one taker at a time), commits it to the store on a blocking thread
//! while telling JetStream it is still at work, records how it ended for
//! `GET /api/v1/batches/{id}`, and only then acknowledges it. A chunk
//! already committed (a redelivery after a worker died between commit and
//! acknowledgement) is recognised by the store and skipped. A failure to
//! commit (the database gone) returns the chunk to the queue, to be taken
//! again after a pause, until [`turncoat_queue::MAX_DELIVERIES`].

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use turncoat_core::Actor;
use turncoat_engine::{FileReport, IngestOptions, NamedFile, NoProgress};
use turncoat_queue::{ChunkMeta, Delivery, PARTITIONS, Queue};
use turncoat_store::{AnyStore, StoreLocation};

use crate::Metrics;

/// Chunks a slot takes from one partition before looking at the next, so
/// that one busy tenant does not starve the others.
const DRAIN: usize = 32;

/// How long a slot that found nothing anywhere waits before looking again.
const IDLE: Duration = Duration::from_millis(200);

/// How long a commit waits for an embedded store's writer lock.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// What a worker is told to do.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Chunks committed at once (each on its own store connection).
    pub slots: usize,
    /// The name its reports and logs carry.
    pub name: String,
    /// How often to tell JetStream a chunk is still being worked on:
    /// well under the consumers' `ack_wait`.
    pub heartbeat: Duration,
}

/// A worker, ready to run.
pub struct Worker {
    shared: Arc<Shared>,
}

struct Shared {
    store: Arc<StoreLocation>,
    queue: Queue,
    metrics: Arc<Metrics>,
    options: WorkerOptions,
    /// Chunk bodies are written here for the engine to read.
    spool: tempfile::TempDir,
}

/// Why a chunk could not be committed.
enum ChunkError {
    /// Worth another try (the store unreachable, a lock held too long).
    Retry(String),
    /// Never will be (its tenant was removed, its header is nonsense).
    Permanent(String),
}

impl Worker {
    pub fn new(
        store: StoreLocation,
        queue: Queue,
        options: WorkerOptions,
    ) -> std::io::Result<Worker> {
        Ok(Worker {
            shared: Arc::new(Shared {
                store: Arc::new(store),
                queue,
                metrics: Arc::new(Metrics::new()),
                options,
                spool: tempfile::Builder::new()
                    .prefix("turncoat-worker-")
                    .tempdir()?,
            }),
        })
    }

    /// Its counters, for `/metrics`.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.shared.metrics)
    }

    /// Works until `shutdown` completes, then finishes the chunks in hand.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let slots = self.shared.options.slots.max(1);
        tracing::info!(
            worker = %self.shared.options.name,
            slots,
            namespace = self.shared.queue.namespace(),
            "working"
        );
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let tasks: Vec<_> = (0..slots)
            .map(|i| {
                let shared = Arc::clone(&self.shared);
                let first = (i * PARTITIONS as usize / slots) as u32;
                tokio::spawn(slot(shared, first, stopping.clone()))
            })
            .collect();
        shutdown.await;
        let _ = stop.send(true);
        for task in tasks {
            let _ = task.await;
        }
        tracing::info!(worker = %self.shared.options.name, "stopped");
    }
}

/// One slot's loop over the partitions, starting at `first`.
async fn slot(shared: Arc<Shared>, first: u32, mut stopping: tokio::sync::watch::Receiver<bool>) {
    let mut store: Option<AnyStore> = None;
    let mut start = first;
    'work: loop {
        let mut took = false;
        for i in 0..PARTITIONS {
            let p = (start + i) % PARTITIONS;
            for _ in 0..DRAIN {
                if *stopping.borrow() {
                    break 'work;
                }
                match shared.queue.next(p).await {
                    Ok(Some(delivery)) => {
                        took = true;
                        store = shared.work(store, delivery).await;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(partition = p, error = %e, "the queue cannot be read");
                        shared.metrics.worked_chunk("unreadable");
                        break;
                    }
                }
            }
        }
        start = (start + 1) % PARTITIONS;
        if !took {
            tokio::select! {
                _ = tokio::time::sleep(IDLE) => {}
                _ = stopping.wait_for(|stop| *stop) => break,
            }
        }
    }
    // A database store's client blocks, even to close.
    if let Some(store) = store {
        let _ = tokio::task::spawn_blocking(move || drop(store)).await;
    }
}

impl Shared {
    /// Commits one chunk and settles it with the queue; hands back the
    /// store to use for the next, if it is worth keeping.
    async fn work(
        self: &Arc<Self>,
        store: Option<AnyStore>,
        delivery: Delivery,
    ) -> Option<AnyStore> {
        let started = Instant::now();
        let this = Arc::clone(self);
        let meta = delivery.meta.clone();
        let body = delivery.body.clone();
        let mut commit = tokio::task::spawn_blocking(move || this.commit(store, &meta, &body));
        let mut heartbeat = tokio::time::interval(self.options.heartbeat);
        heartbeat.tick().await;
        let (store, outcome) = loop {
            tokio::select! {
                done = &mut commit => break done.unwrap_or_else(|panic| {
                    (None, Err(ChunkError::Retry(format!("the commit panicked: {panic}"))))
                }),
                _ = heartbeat.tick() => {
                    if let Err(e) = delivery.progress().await {
                        tracing::warn!(error = %e, "could not extend a chunk's lease");
                    }
                }
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        let meta = delivery.meta.clone();
        match outcome {
            Ok(report) => {
                self.metrics.observe_commit(seconds);
                self.metrics.ingested(&meta.tenant, report.events);
                let outcome = match report.status {
                    turncoat_engine::FileStatus::AlreadyIngested => "already-committed",
                    _ => "committed",
                };
                self.metrics.worked_chunk(outcome);
                tracing::info!(
                    batch = %meta.batch, chunk = meta.seq, tenant = %meta.tenant,
                    events = report.events, deliveries = delivery.deliveries,
                    seconds, outcome, "chunk"
                );
                let keep_earlier = outcome == "already-committed";
                let report = self.report_json(&report, &meta);
                self.settle(&meta, report, keep_earlier, delivery).await;
            }
            Err(ChunkError::Permanent(why)) => self.give_up(&meta, &why, delivery).await,
            Err(ChunkError::Retry(why))
                if delivery.deliveries >= turncoat_queue::MAX_DELIVERIES =>
            {
                self.give_up(&meta, &why, delivery).await
            }
            Err(ChunkError::Retry(why)) => {
                let pause = Duration::from_secs(1 << delivery.deliveries.clamp(0, 5));
                tracing::warn!(
                    batch = %meta.batch, chunk = meta.seq, tenant = %meta.tenant,
                    deliveries = delivery.deliveries, error = %why,
                    "chunk not committed; returned to the queue for {} s", pause.as_secs()
                );
                self.metrics.worked_chunk("retried");
                if let Err(e) = delivery.retry_later(pause).await {
                    tracing::warn!(error = %e, "could not return a chunk; it comes back after ack_wait");
                }
            }
        }
        store
    }

    /// Records the chunk's report, then acknowledges it. A report recorded
    /// by an earlier delivery (which committed, then died) is kept: this
    /// delivery only found the chunk already committed.
    async fn settle(
        &self,
        meta: &ChunkMeta,
        report: Value,
        keep_earlier: bool,
        delivery: Delivery,
    ) {
        let recorded = self
            .queue
            .record_chunk(&meta.batch, meta.seq, &report, keep_earlier)
            .await;
        if let Err(e) = recorded {
            tracing::warn!(batch = %meta.batch, chunk = meta.seq, error = %e, "the chunk's report was not recorded");
        }
        if let Err(e) = delivery.ack().await {
            // Committed all the same: the redelivery is skipped.
            tracing::warn!(batch = %meta.batch, chunk = meta.seq, error = %e, "the chunk's acknowledgement was lost");
        }
    }

    async fn give_up(&self, meta: &ChunkMeta, why: &str, delivery: Delivery) {
        tracing::error!(
            batch = %meta.batch, chunk = meta.seq, tenant = %meta.tenant,
            deliveries = delivery.deliveries, error = %why, "chunk given up"
        );
        self.metrics.worked_chunk("given-up");
        let report = json!({
            "file": meta.name,
            "status": "failed",
            "error": why,
            "events": 0, "inventory_records": 0, "skipped_records": 0,
            "first_line": meta.first_line,
            "worker": self.options.name,
            "deliveries": delivery.deliveries,
        });
        if let Err(e) = self
            .queue
            .record_chunk(&meta.batch, meta.seq, &report, false)
            .await
        {
            tracing::warn!(error = %e, "the failed chunk's report was not recorded");
        }
        if let Err(e) = delivery.give_up().await {
            tracing::warn!(error = %e, "could not give a chunk up");
        }
    }

    /// A chunk's report as the batch answer lists it: lines counted from
    /// the start of the request's body, and which worker committed it.
    fn report_json(&self, report: &FileReport, meta: &ChunkMeta) -> Value {
        let mut report = report.clone();
        for issue in &mut report.issues {
            if let Some(line) = &mut issue.line {
                *line += meta.first_line - 1;
            }
        }
        let mut json = serde_json::to_value(&report).unwrap_or_else(|_| json!({}));
        if let Value::Object(map) = &mut json {
            map.insert("first_line".into(), meta.first_line.into());
            map.insert("worker".into(), self.options.name.clone().into());
        }
        json
    }

    /// Commits a chunk on this blocking thread, with `store` if it is
    /// still alive, else a new one.
    fn commit(
        &self,
        store: Option<AnyStore>,
        meta: &ChunkMeta,
        body: &[u8],
    ) -> (Option<AnyStore>, Result<FileReport, ChunkError>) {
        let store = match store.filter(|s| s.is_alive()) {
            Some(store) => store,
            None => {
                let opened = self.store.open_writer(&mut turncoat_store::LockWait {
                    timeout: LOCK_WAIT,
                    purpose: "turncoat worker",
                    on_wait: &mut |_, _| {},
                });
                match opened {
                    Ok(store) => store,
                    Err(e) => return (None, Err(ChunkError::Retry(e.to_string()))),
                }
            }
        };
        let mut store = store;
        let outcome = self.ingest(&mut store, meta, body);
        // An embedded store's writer lock is not kept between chunks (the
        // CLI may want it); nor is a connection that just failed.
        let keep = self.store.dir().is_none() && !matches!(outcome, Err(ChunkError::Retry(_)));
        (keep.then_some(store), outcome)
    }

    fn ingest(
        &self,
        store: &mut AnyStore,
        meta: &ChunkMeta,
        body: &[u8],
    ) -> Result<FileReport, ChunkError> {
        let retry = |e: &dyn std::fmt::Display| ChunkError::Retry(e.to_string());
        let tenant = store
            .tenants()
            .map_err(|e| retry(&e))?
            .into_iter()
            .find(|t| t.name().as_str() == meta.tenant && t.id().get() == meta.tenant_id)
            .ok_or_else(|| ChunkError::Permanent(format!("no tenant {} any more", meta.tenant)))?;
        let format = meta
            .format
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| ChunkError::Permanent(format!("format: {e}")))?;
        let actor: Actor = meta.actor.parse().map_err(ChunkError::Permanent)?;
        let options = IngestOptions {
            format,
            endpoint: meta.endpoint.clone(),
            ..IngestOptions::default()
        };
        let file = tempfile::NamedTempFile::new_in(self.spool.path()).map_err(|e| retry(&e))?;
        std::fs::write(file.path(), body).map_err(|e| retry(&e))?;
        let files = [NamedFile {
            path: file.path().to_path_buf(),
            name: meta.name.clone(),
        }];
        let mut report = turncoat_engine::ingest_named(
            &mut **store,
            &tenant,
            &files,
            &options,
            &NoProgress,
            &actor,
        )
        .map_err(|e| retry(&e))?;
        report
            .files
            .pop()
            .ok_or_else(|| ChunkError::Retry("the engine reported no file".into()))
    }
}

/// Serves a worker's `/metrics` and `/healthz` on `listener` until
/// `shutdown` completes.
pub async fn serve_probes(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(move || {
                let metrics = Arc::clone(&metrics);
                async move { crate::metrics::openmetrics(metrics.text()) }
            }),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
