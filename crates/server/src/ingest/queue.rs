//! The commit queue: spooled chunks waiting for the one writer.
//!
//! Requests spool their bodies without any lock, then hand each chunk to
//! a bounded queue that a single writer thread drains. The writer takes
//! the store's writer lock only while chunks wait (so the CLI can write
//! in between), ingests the runs of chunks that share a tenant and
//! options in one engine call (one intel load, one rules compile, one
//! beacon pass for many small requests), and answers each chunk once its
//! batches are committed.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempPath;
use tokio::sync::{Semaphore, mpsc, oneshot};
use turncoat_core::Actor;
use turncoat_engine::{FileReport, IngestOptions, NamedFile, NoProgress};
use turncoat_store::{Store, StoreLocation, Tenant};

use crate::{Metrics, Problem};

/// How the server takes telemetry over HTTP.
#[derive(Clone, Debug)]
pub struct IngestLimits {
    /// Largest request body, after decompression.
    pub max_body_bytes: u64,
    /// Requests taking bodies at once; one more is answered 429.
    pub max_requests: usize,
    /// Spooled chunks waiting for the writer; a request whose next chunk
    /// finds the queue full waits (its sender is slowed down by TCP).
    pub queue_chunks: usize,
    /// A line-delimited body is cut into chunks of about this size, each
    /// committed as it is spooled.
    pub chunk_bytes: u64,
}

impl Default for IngestLimits {
    fn default() -> IngestLimits {
        IngestLimits {
            max_body_bytes: 4 << 30,
            max_requests: 16,
            queue_chunks: 4,
            chunk_bytes: 64 << 20,
        }
    }
}

/// One spooled chunk of a request, waiting to be ingested.
pub(crate) struct Chunk {
    pub tenant: Tenant,
    pub options: IngestOptions,
    pub actor: Actor,
    pub name: String,
    /// Deleted when the chunk is dropped, ingested or not.
    pub spool: TempPath,
    pub done: oneshot::Sender<Result<FileReport, Problem>>,
}

impl Chunk {
    /// Chunks ingested by one engine call must agree on these.
    fn run_key(&self) -> (turncoat_core::TenantId, String, String) {
        (
            self.tenant.id(),
            format!("{:?}|{:?}", self.options.format, self.options.endpoint),
            self.actor.to_string(),
        )
    }
}

/// The queue's two ends as the handlers see them.
pub(crate) struct IngestQueue {
    pub limits: IngestLimits,
    pub spool_dir: PathBuf,
    chunks: mpsc::Sender<Chunk>,
    admitted: Arc<Semaphore>,
    /// Recent seconds per committed chunk, in microseconds: what a 429's
    /// `Retry-After` is estimated from.
    recent_commit_micros: Arc<AtomicU64>,
}

/// Chunks the writer ingests in one engine call at most.
const MAX_CHUNKS_PER_RUN: usize = 64;

impl IngestQueue {
    /// Starts the writer thread for `store`. It stops once every sender
    /// is gone and the chunks queued are done, so requests in flight at a
    /// shutdown still have their chunks committed. Chunks are spooled in
    /// the data directory, or for a database in a directory of this
    /// process under the system's temporary one.
    pub fn start(
        store: Arc<StoreLocation>,
        limits: IngestLimits,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<(IngestQueue, std::thread::JoinHandle<()>)> {
        let spool_dir = match store.dir() {
            Some(dir) => dir.join("spool"),
            None => std::env::temp_dir().join(format!("turncoat-spool-{}", std::process::id())),
        };
        // Chunks spooled before a crash were never acknowledged: their
        // senders send them again.
        if spool_dir.exists() {
            std::fs::remove_dir_all(&spool_dir)?;
        }
        std::fs::create_dir_all(&spool_dir)?;
        let (tx, rx) = mpsc::channel(limits.queue_chunks.max(1));
        let recent = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            store,
            chunks: rx,
            metrics,
            recent_commit_micros: Arc::clone(&recent),
            content: Default::default(),
        };
        let handle = std::thread::Builder::new()
            .name("ingest-writer".into())
            .spawn(move || writer.run())?;
        Ok((
            IngestQueue {
                admitted: Arc::new(Semaphore::new(limits.max_requests.max(1))),
                limits,
                spool_dir,
                chunks: tx,
                recent_commit_micros: recent,
            },
            handle,
        ))
    }

    /// Admits a request, or says how many seconds to wait before trying
    /// again when as many as allowed are already being taken.
    pub fn admit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, u64> {
        Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| self.retry_after())
    }

    /// Queues a chunk, waiting while the queue is full.
    pub async fn submit(&self, chunk: Chunk) -> Result<(), Problem> {
        self.chunks
            .send(chunk)
            .await
            .map_err(|_| Problem::unavailable("the server is stopping", 5))
    }

    /// Chunks queued and not yet taken by the writer.
    pub fn depth(&self) -> usize {
        self.chunks.max_capacity() - self.chunks.capacity()
    }

    /// Seconds until the queue has likely room: the chunks ahead times
    /// what one took lately, at least 1 and at most a minute.
    fn retry_after(&self) -> u64 {
        let per_chunk = self.recent_commit_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let ahead = (self.depth() + self.limits.max_requests) as f64;
        (per_chunk * ahead).ceil().clamp(1.0, 60.0) as u64
    }
}

struct Writer {
    store: Arc<StoreLocation>,
    chunks: mpsc::Receiver<Chunk>,
    metrics: Arc<Metrics>,
    recent_commit_micros: Arc<AtomicU64>,
    /// Indicators and rules, loaded again only when they change.
    content: turncoat_engine::ContentCache,
}

/// How long the writer waits for the store's writer lock (a CLI ingest
/// holding it) before answering the chunks waiting 503.
const LOCK_WAIT: Duration = Duration::from_secs(30);

impl Writer {
    fn run(mut self) {
        while let Some(first) = self.chunks.blocking_recv() {
            let mut waiting = vec![first];
            while waiting.len() < MAX_CHUNKS_PER_RUN {
                match self.chunks.try_recv() {
                    Ok(c) => waiting.push(c),
                    Err(_) => break,
                }
            }
            self.metrics.set_queue_depth(self.chunks.len());
            self.ingest(waiting);
        }
    }

    /// Ingests the chunks in order, one engine call per run of chunks
    /// that share a tenant and options, with the writer lock held once.
    fn ingest(&self, chunks: Vec<Chunk>) {
        let opened = self.store.open_writer(&mut turncoat_store::LockWait {
            timeout: LOCK_WAIT,
            purpose: "turncoat serve (ingest)",
            on_wait: &mut |_, _| {},
        });
        let mut store = match opened {
            Ok(store) => store,
            Err(e) => {
                let problem = Problem::from(e);
                for chunk in chunks {
                    let _ = chunk.done.send(Err(problem.clone()));
                }
                return;
            }
        };
        let mut chunks = chunks.into_iter().peekable();
        while let Some(first) = chunks.next() {
            let key = first.run_key();
            let mut run = vec![first];
            while let Some(next) = chunks.next_if(|c| c.run_key() == key) {
                run.push(next);
            }
            self.ingest_run(&mut *store, run);
        }
    }

    fn ingest_run(&self, store: &mut dyn Store, run: Vec<Chunk>) {
        let files: Vec<NamedFile> = run
            .iter()
            .map(|c| NamedFile {
                path: c.spool.to_path_buf(),
                name: c.name.clone(),
            })
            .collect();
        let (tenant, options, actor) = (&run[0].tenant, &run[0].options, &run[0].actor);
        let started = Instant::now();
        let result = self.content.current(store).and_then(|content| {
            turncoat_engine::ingest_named(
                store,
                tenant,
                &files,
                options,
                &content,
                &NoProgress,
                actor,
            )
        });
        let seconds = started.elapsed().as_secs_f64();
        self.metrics.observe_commit(seconds);
        self.recent_commit_micros
            .store((seconds / run.len() as f64 * 1e6) as u64, Ordering::Relaxed);
        match result {
            Ok(report) => {
                self.metrics
                    .ingested(&tenant.name().to_string(), report.events);
                for (chunk, file) in run.into_iter().zip(report.files) {
                    let _ = chunk.done.send(Ok(file));
                }
            }
            Err(e) => {
                let problem = Problem::from(e);
                for chunk in run {
                    let _ = chunk.done.send(Err(problem.clone()));
                }
            }
        }
    }
}
