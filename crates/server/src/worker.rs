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
//!
//! Beside its slots a worker takes retro-hunt jobs (one tenant's share
//! of an intel import; [`turncoat_engine::retro_hunt`]) and follows the
//! announcements of content changes, loading the indicators, advisories
//! and rules again at once. The content is also checked against the
//! store's key before every chunk, so a lost announcement costs a load,
//! never a stale match.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use turncoat_core::Actor;
use turncoat_engine::{
    ContentCache, FileReport, IngestOptions, NamedFile, NoProgress, PendingScope,
};
use turncoat_queue::{ChunkMeta, Delivery, HuntMeta, Job, PARTITIONS, Queue};
use turncoat_store::{AnyStore, Store, StoreLocation, Tenant};

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
    /// Indicators, advisories and rules, shared by the slots.
    content: ContentCache,
}

/// Why a job (a chunk, a retro-hunt) could not be done.
enum JobError {
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
                content: ContentCache::default(),
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
        let mut tasks: Vec<_> = (0..slots)
            .map(|i| {
                let shared = Arc::clone(&self.shared);
                let first = (i * PARTITIONS as usize / slots) as u32;
                tokio::spawn(slot(shared, first, stopping.clone()))
            })
            .collect();
        tasks.push(tokio::spawn(hunt_slot(
            Arc::clone(&self.shared),
            stopping.clone(),
        )));
        tasks.push(tokio::spawn(follow_changes(
            Arc::clone(&self.shared),
            stopping.clone(),
        )));
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

/// Takes retro-hunt jobs one after another.
async fn hunt_slot(shared: Arc<Shared>, mut stopping: tokio::sync::watch::Receiver<bool>) {
    while !*stopping.borrow() {
        match shared.queue.next_hunt().await {
            Ok(Some(delivery)) => {
                // The hunt's other tenants' jobs are likely waiting: no pause.
                shared.hunt(delivery, &stopping).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "the retro-hunt queue cannot be read");
                shared.metrics.worked_hunt("unreadable");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(IDLE) => {}
            _ = stopping.wait_for(|stop| *stop) => break,
        }
    }
}

/// Loads the content again whenever a change is announced.
async fn follow_changes(shared: Arc<Shared>, mut stopping: tokio::sync::watch::Receiver<bool>) {
    let changes = match shared.queue.changes().await {
        Ok(changes) => changes,
        Err(e) => {
            tracing::warn!(error = %e, "content changes are not followed; each chunk checks the store's key");
            return;
        }
    };
    let mut changes = std::pin::pin!(changes);
    loop {
        let change = tokio::select! {
            change = futures_util::StreamExt::next(&mut changes) => change,
            _ = stopping.wait_for(|stop| *stop) => break,
        };
        let Some(change) = change else { break };
        // Announced after the change committed: the store's key has moved,
        // so this loads.
        let this = Arc::clone(&shared);
        let started = Instant::now();
        let loaded = tokio::task::spawn_blocking(move || {
            let mut store = this.open_store()?;
            this.content
                .current(&mut *store)
                .map(|c| c.key)
                .map_err(|e| JobError::Retry(e.to_string()))
        })
        .await;
        match loaded {
            Ok(Ok(key)) => {
                shared.metrics.loaded_content("loaded");
                tracing::info!(
                    worker = %shared.options.name, change = %change, key,
                    seconds = started.elapsed().as_secs_f64(), "content loaded after a change"
                );
            }
            _ => {
                // The next chunk loads it, seeing the store's key moved.
                shared.metrics.loaded_content("failed");
                tracing::warn!(change = %change, "content not loaded after a change");
            }
        }
    }
}

/// How often a retro-hunt waiting for its tenant's earlier chunks looks.
const HUNT_POLL: Duration = Duration::from_millis(250);

impl Shared {
    /// Runs `job` on a blocking thread, telling JetStream while it runs
    /// that `delivery` is still being worked on.
    async fn with_heartbeat<M: Job, T: Send + 'static>(
        &self,
        delivery: &Delivery<M>,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let mut job = tokio::task::spawn_blocking(job);
        let mut heartbeat = tokio::time::interval(self.options.heartbeat);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                done = &mut job => return done.map_err(|panic| format!("the job panicked: {panic}")),
                _ = heartbeat.tick() => {
                    if let Err(e) = delivery.progress().await {
                        tracing::warn!(error = %e, "could not extend a job's lease");
                    }
                }
            }
        }
    }

    /// Does one tenant's share of a retro-hunt, once every chunk of its
    /// partition queued before the hunt is committed (those were matched
    /// against the old content; later ones are matched against the new).
    async fn hunt(
        self: &Arc<Self>,
        delivery: Delivery<HuntMeta>,
        stopping: &tokio::sync::watch::Receiver<bool>,
    ) {
        let meta = delivery.meta.clone();
        let started = Instant::now();
        let mut told = Instant::now();
        loop {
            match self
                .queue
                .partition_done_to(meta.tenant_id, meta.after)
                .await
            {
                Ok(true) => break,
                Ok(false) if *stopping.borrow() => {
                    let _ = delivery.retry_later(Duration::ZERO).await;
                    return;
                }
                Ok(false) => {
                    if told.elapsed() >= self.options.heartbeat {
                        let _ = delivery.progress().await;
                        told = Instant::now();
                    }
                    tokio::time::sleep(HUNT_POLL).await;
                }
                Err(e) => {
                    return self
                        .hunt_failed(delivery, JobError::Retry(e.to_string()))
                        .await;
                }
            }
        }
        let waited = started.elapsed().as_secs_f64();
        let this = Arc::clone(self);
        let (job, body) = (meta.clone(), delivery.body.clone());
        let outcome = self
            .with_heartbeat(&delivery, move || this.retro_hunt(&job, &body))
            .await
            .unwrap_or_else(|panic| Err(JobError::Retry(panic)));
        match outcome {
            Ok(report) => {
                self.metrics.worked_hunt("hunted");
                tracing::info!(
                    hunt = %meta.hunt, tenant = %meta.tenant, new_alerts = report.new_alerts,
                    updated_alerts = report.updated_alerts, resurfaced = report.resurfaced,
                    waited, seconds = started.elapsed().as_secs_f64() - waited, "retro-hunt"
                );
                if let Err(e) = delivery.ack().await {
                    // Done all the same: a redelivery finds what it raised.
                    tracing::warn!(hunt = %meta.hunt, error = %e, "the retro-hunt's acknowledgement was lost");
                }
            }
            Err(e) => self.hunt_failed(delivery, e).await,
        }
    }

    async fn hunt_failed(&self, delivery: Delivery<HuntMeta>, error: JobError) {
        let meta = &delivery.meta;
        let (why, retry) = match error {
            JobError::Retry(why) => (why, delivery.deliveries < turncoat_queue::MAX_DELIVERIES),
            JobError::Permanent(why) => (why, false),
        };
        if retry {
            let pause = Duration::from_secs(1 << delivery.deliveries.clamp(0, 5));
            tracing::warn!(hunt = %meta.hunt, tenant = %meta.tenant, error = %why, "retro-hunt failed; returned for {} s", pause.as_secs());
            self.metrics.worked_hunt("retried");
            let _ = delivery.retry_later(pause).await;
        } else {
            tracing::error!(hunt = %meta.hunt, tenant = %meta.tenant, deliveries = delivery.deliveries, error = %why, "retro-hunt given up");
            self.metrics.worked_hunt("given-up");
            let _ = delivery.give_up().await;
        }
    }

    /// One tenant's retro-hunt, on this blocking thread.
    fn retro_hunt(
        &self,
        meta: &HuntMeta,
        plan: &[u8],
    ) -> Result<turncoat_engine::intel::RetroReport, JobError> {
        let plan: turncoat_engine::RetroPlan = serde_json::from_slice(plan)
            .map_err(|e| JobError::Permanent(format!("the hunt's plan: {e}")))?;
        let actor: Actor = meta.actor.parse().map_err(JobError::Permanent)?;
        let mut store = self.open_store()?;
        let tenant = find_tenant(&*store, &meta.tenant, meta.tenant_id)?;
        let retry = |e: turncoat_engine::EngineError| JobError::Retry(e.to_string());
        // The rules as kept for chunks: not compiled again per tenant.
        let content = self.content.current(&mut *store).map_err(retry)?;
        turncoat_engine::retro_hunt(&mut *store, &tenant, &plan, &content.rules, &actor)
            .map_err(retry)
    }

    fn open_store(&self) -> Result<AnyStore, JobError> {
        self.store
            .open_writer(&mut turncoat_store::LockWait {
                timeout: LOCK_WAIT,
                purpose: "turncoat worker",
                on_wait: &mut |_, _| {},
            })
            .map_err(|e| JobError::Retry(e.to_string()))
    }

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
        // The post-ingest pass (beacon scoring over the tenant's last week)
        // is paid once per run of the tenant's chunks, not per chunk.
        let pending = match self.queue.followed_by_same_tenant(&delivery).await {
            true => PendingScope::Later,
            false => PendingScope::OwnTenant,
        };
        let (store, outcome) = self
            .with_heartbeat(&delivery, move || this.commit(store, &meta, &body, pending))
            .await
            .unwrap_or_else(|panic| (None, Err(JobError::Retry(panic))));
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
            Err(JobError::Permanent(why)) => self.give_up(&meta, &why, delivery).await,
            Err(JobError::Retry(why)) if delivery.deliveries >= turncoat_queue::MAX_DELIVERIES => {
                self.give_up(&meta, &why, delivery).await
            }
            Err(JobError::Retry(why)) => {
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
        pending: PendingScope,
    ) -> (Option<AnyStore>, Result<FileReport, JobError>) {
        let store = match store.filter(|s| s.is_alive()) {
            Some(store) => store,
            None => match self.open_store() {
                Ok(store) => store,
                Err(e) => return (None, Err(e)),
            },
        };
        let mut store = store;
        let outcome = self.ingest(&mut store, meta, body, pending);
        // An embedded store's writer lock is not kept between chunks (the
        // CLI may want it); nor is a connection that just failed.
        let keep = self.store.dir().is_none() && !matches!(outcome, Err(JobError::Retry(_)));
        (keep.then_some(store), outcome)
    }

    fn ingest(
        &self,
        store: &mut AnyStore,
        meta: &ChunkMeta,
        body: &[u8],
        pending: PendingScope,
    ) -> Result<FileReport, JobError> {
        let retry = |e: &dyn std::fmt::Display| JobError::Retry(e.to_string());
        let tenant = find_tenant(&**store, &meta.tenant, meta.tenant_id)?;
        let format = meta
            .format
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| JobError::Permanent(format!("format: {e}")))?;
        let actor: Actor = meta.actor.parse().map_err(JobError::Permanent)?;
        let options = IngestOptions {
            format,
            endpoint: meta.endpoint.clone(),
            pending_work: pending,
            ..IngestOptions::default()
        };
        let content = self.content.current(&mut **store).map_err(|e| retry(&e))?;
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
            &content,
            &NoProgress,
            &actor,
        )
        .map_err(|e| retry(&e))?;
        report
            .files
            .pop()
            .ok_or_else(|| JobError::Retry("the engine reported no file".into()))
    }
}

/// The tenant a job names, by name and id both (a tenant removed and made
/// again under its name is another tenant).
fn find_tenant(store: &dyn Store, name: &str, id: i64) -> Result<Tenant, JobError> {
    store
        .tenants()
        .map_err(|e| JobError::Retry(e.to_string()))?
        .into_iter()
        .find(|t| t.name().as_str() == name && t.id().get() == id)
        .ok_or_else(|| JobError::Permanent(format!("no tenant {name} any more")))
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
