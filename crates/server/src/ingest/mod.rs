//! Telemetry over HTTP: `POST /api/v1/tenants/{tenant}/ingest` and the
//! Elasticsearch `_bulk` shape that Beats and Elastic Agent send.
//!
//! A request is admitted (or answered 429 with `Retry-After` when as many
//! as allowed are already being taken), its body spooled in chunks
//! ([`spool`]) that the commit queue ingests one after another
//! ([`queue`]), and answered once every chunk is committed: a 202 means
//! the events are in the store. A request cut off before its answer is
//! simply sent again: chunks already committed are recognised by their
//! content and skipped, so nothing is stored twice.

pub(crate) mod bulk;
mod queue;
mod spool;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncBufReadExt;
use tokio::sync::oneshot;
use turncoat_core::{Actor, Role, TokenScope};
use turncoat_engine::{FileReport, FileStatus, IngestOptions, InputIssue};
use turncoat_store::Tenant;

pub use queue::IngestLimits;
pub(crate) use queue::IngestQueue;
pub(crate) use spool::{cut_point, is_json_lines};

use self::queue::Chunk;
use self::spool::{BodyReader, Piece, SpoolFile};
use crate::api::{Params, tenant_in};
use crate::auth::Caller;
use crate::{AppState, Problem};

/// `?format=&endpoint=&name=` of an ingest request.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct IngestQuery {
    /// A telemetry format, or `auto` (the default) to tell by content.
    format: Option<String>,
    /// Host name for records that name none (an SBOM, a sensor's logs).
    endpoint: Option<String>,
    /// What the body is called in findings and messages; a Zeek log's
    /// name (`conn.log`) also tells which log it is.
    name: Option<String>,
}

impl IngestQuery {
    fn options(&self) -> Result<IngestOptions, Problem> {
        let format = match self.format.as_deref() {
            None | Some("auto") => None,
            Some(f) => Some(
                f.parse()
                    .map_err(|e| Problem::bad_request(format!("format: {e}")))?,
            ),
        };
        Ok(IngestOptions {
            format,
            endpoint: self.endpoint.clone(),
            ..IngestOptions::default()
        })
    }
}

/// What an ingest request stored.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct IngestAnswer {
    tenant: String,
    /// Decompressed bytes taken.
    bytes: u64,
    events: u64,
    inventory_records: u64,
    skipped_records: u64,
    /// How each chunk ended, with its first problems; their `line` counts
    /// from the start of the body.
    chunks: Vec<ChunkAnswer>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ChunkAnswer {
    /// The body's line this chunk starts at.
    first_line: u64,
    /// How the chunk was ingested, as `ingest --format json` reports a file.
    #[serde(flatten)]
    report: FileReport,
}

/// `POST /api/v1/tenants/{tenant}/ingest`: a log file or NDJSON as the
/// body, answered 202 once it is committed.
#[utoipa::path(post, path = "/tenants/{tenant}/ingest", tag = "ingest",
    params(("tenant" = String, Path, description = "The tenant's name"), IngestQuery,
        ("Content-Encoding" = Option<String>, Header, description = "gzip or zstd")),
    request_body(content = Vec<u8>, content_type = "application/x-ndjson", description = "NDJSON or a log file, any size (streamed)"),
    responses((status = 202, description = "Committed; with a queue (cluster mode): stored in it, to be committed by a worker (see `Location`)", body = IngestAnswer),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, description = "Not an ingest token of the tenant nor an admin", body = Problem),
        (status = 404, description = "No such tenant in the caller's tenants", body = Problem),
        (status = 413, body = Problem), (status = 415, body = Problem),
        (status = 422, description = "No record could be read", body = Problem),
        (status = 429, description = "The ingest queue is full: see Retry-After", body = Problem),
        (status = 503, description = "Stopping, or the store is locked: see Retry-After", body = Problem)))]
pub(crate) async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Params(query): Params<IngestQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::response::Response, Problem> {
    let tenant = ingest_tenant(&caller, &tenant)?;
    let options = query.options()?;
    let _admitted = admit(&state)?;
    let mut reader = spool::decoded(&headers, body)?;
    let base = query.name.clone().unwrap_or_else(|| "request body".into());
    let spooler_tenant = tenant.clone();
    let mut spooler = Spooler::new(&state, tenant, options, caller.0.actor.clone(), base)?;
    let outcome = take_body(&state, &mut reader, &mut spooler).await;
    let taken = spooler.taken;
    match spooler.finish(outcome).await? {
        Finished::Committed(chunks) => answer(&spooler_tenant, chunks, taken),
        Finished::Queued(batch) => Ok(queued_answer(batch)),
    }
}

/// The tenant named in the path, if the caller may send it telemetry:
/// an ingest token of that tenant, or an admin.
fn ingest_tenant(caller: &Caller, name: &str) -> Result<Tenant, Problem> {
    let principal = &caller.0;
    let allowed = match principal.token_scope {
        Some(scope) => scope == TokenScope::Ingest,
        None => principal.role == Role::Admin,
    };
    if !allowed {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "sending telemetry needs an ingest token of the tenant or an admin",
        ));
    }
    tenant_in(&principal.scope, name).cloned()
}

fn admit(state: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, Problem> {
    state.ingest.admit().map_err(|seconds| {
        state.metrics.rejected("ingest_queue_full");
        Problem::too_many_requests(
            "the ingest queue is full; send again after the time in Retry-After",
            seconds,
        )
    })
}

/// Bytes of a body's start read to tell whether it is line-delimited
/// JSON: a first line longer than this is taken for something else.
pub(crate) const HEAD_BYTES: usize = 1 << 20;

/// Why reading a body stopped early.
pub(crate) enum Interrupted {
    /// The server is stopping: what was spooled whole is committed.
    Stopping,
    Failed(Problem),
}

/// Reads the whole body into the spooler, cutting line-delimited JSON
/// into chunks.
async fn take_body(
    state: &AppState,
    reader: &mut BodyReader,
    spooler: &mut Spooler,
) -> Result<(), Interrupted> {
    let limits = &state.ingest.limits;
    let mut stopping = state.stopping.clone();
    // Whether the body is line-delimited JSON, once its first line is in.
    let mut json_lines = None;
    let mut head = Vec::new();
    loop {
        let piece = tokio::select! {
            piece = spool::next_piece(
                reader,
                turncoat_engine::ingest::STREAM_COMMIT_INTERVAL,
                &mut spooler.taken,
                limits,
            ) => piece.map_err(Interrupted::Failed)?,
            _ = stopping.wait_for(|stop| *stop) => return Err(Interrupted::Stopping),
        };
        let n = match piece {
            Piece::End => return Ok(()),
            Piece::Pause => {
                // A stream paused between lines: commit what it sent.
                if json_lines == Some(true) && spooler.has_whole_lines() {
                    spooler.cut().await.map_err(Interrupted::Failed)?;
                }
                continue;
            }
            Piece::Bytes(n) => n,
        };
        let bytes = reader
            .fill_buf()
            .await
            .map_err(|e| Interrupted::Failed(Problem::bad_request(e.to_string())))?;
        let bytes = &bytes[..n];
        if json_lines.is_none() {
            // Told from the body's first line, which may come in pieces.
            let room = HEAD_BYTES.saturating_sub(head.len());
            head.extend_from_slice(&bytes[..bytes.len().min(room)]);
            json_lines =
                spool::is_json_lines(&head).or((head.len() >= HEAD_BYTES).then_some(false));
            spooler.json_lines = json_lines == Some(true);
        }
        let mut at = 0;
        if json_lines == Some(true) {
            while let Some(cut) =
                spool::cut_point(&bytes[at..], spooler.chunk_bytes(), spooler.chunk_limit())
            {
                spooler
                    .write(&bytes[at..at + cut])
                    .await
                    .map_err(Interrupted::Failed)?;
                spooler.cut().await.map_err(Interrupted::Failed)?;
                at += cut;
            }
        }
        spooler
            .write(&bytes[at..])
            .await
            .map_err(Interrupted::Failed)?;
        reader.consume(n);
    }
}

/// Spool files of one request, queued for commit as each is cut.
pub(crate) struct Spooler {
    state: AppState,
    tenant: Tenant,
    options: IngestOptions,
    actor: Actor,
    /// What the body is called; chunks add their line range.
    base: String,
    /// Bytes taken from the body, decompressed.
    pub taken: u64,
    current: Option<SpoolFile>,
    /// Lines in the chunks cut so far.
    lines: u64,
    /// Chunks queued, with their first line and the answer to come.
    queued: Vec<(u64, oneshot::Receiver<Result<FileReport, Problem>>)>,
    /// With a queue: the batch the chunks are published as, and how many
    /// JetStream has stored.
    batch: Option<(String, u32)>,
    /// Whether the body was cut at all: a body of one chunk keeps its
    /// name bare.
    cut_any: bool,
    /// Whether the body is line-delimited JSON, whose whole lines can be
    /// committed on their own.
    pub json_lines: bool,
}

impl Spooler {
    pub fn new(
        state: &AppState,
        tenant: Tenant,
        options: IngestOptions,
        actor: Actor,
        base: String,
    ) -> Result<Spooler, Problem> {
        Ok(Spooler {
            current: Some(SpoolFile::create(&state.ingest.spool_dir, 0)?),
            state: state.clone(),
            tenant,
            options,
            actor,
            base,
            taken: 0,
            lines: 0,
            queued: Vec::new(),
            batch: state
                .queue
                .as_ref()
                .map(|_| (turncoat_queue::Queue::new_batch_id(), 0)),
            cut_any: false,
            json_lines: false,
        })
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), Problem> {
        match self.current.as_mut() {
            Some(file) => file.write(bytes).await,
            None => Err(Problem::internal(&std::io::Error::other(
                "no spool file after a failed cut",
            ))),
        }
    }

    /// The size a line-delimited body's chunks are cut at: with a queue,
    /// small enough for a message (with room for a long last line).
    pub fn chunk_limit(&self) -> u64 {
        let limit = self.state.ingest.limits.chunk_bytes;
        match &self.state.queue {
            Some(queue) => limit.min(queue.inline_limit() as u64 / 2).max(1),
            None => limit,
        }
    }

    /// Bytes in the chunk being written.
    pub fn chunk_bytes(&self) -> u64 {
        self.current.as_ref().map_or(0, |f| f.bytes)
    }

    fn has_whole_lines(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|f| f.bytes > 0 && f.at_line_end)
    }

    /// Queues the chunk written so far and starts the next.
    pub async fn cut(&mut self) -> Result<(), Problem> {
        self.cut_any = true;
        let file = self.current.take().expect("a spool file");
        self.queue(file).await?;
        self.current = Some(SpoolFile::create(&self.state.ingest.spool_dir, self.lines)?);
        Ok(())
    }

    async fn queue(&mut self, file: SpoolFile) -> Result<(), Problem> {
        if file.bytes == 0 {
            return Ok(());
        }
        let first_line = file.first_line + 1;
        let lines = file.lines + u64::from(!file.at_line_end);
        self.lines = file.first_line + lines;
        let name = if self.cut_any {
            format!(
                "{}, lines {}-{}",
                self.base,
                first_line,
                first_line + lines - 1
            )
        } else {
            self.base.clone()
        };
        let spool = file.finish().await?;
        if let (Some(queue), Some((batch, published))) = (&self.state.queue, &mut self.batch) {
            let body = tokio::fs::read(&spool)
                .await
                .map_err(|e| Problem::internal(&e))?;
            let meta = turncoat_queue::ChunkMeta {
                batch: batch.clone(),
                seq: *published,
                tenant: self.tenant.name().to_string(),
                tenant_id: self.tenant.id().get(),
                format: self.options.format.map(|f| f.to_string()),
                endpoint: self.options.endpoint.clone(),
                actor: self.actor.to_string(),
                name,
                first_line,
            };
            queue.publish(&meta, body.into()).await.map_err(|e| {
                self.state.metrics.rejected("queue_unavailable");
                tracing::error!(error = %e, "a chunk was not stored in the queue");
                Problem::unavailable("the queue did not store the body; send it again", 5)
            })?;
            *published += 1;
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        let chunk = Chunk {
            tenant: self.tenant.clone(),
            options: self.options.clone(),
            actor: self.actor.clone(),
            name,
            spool,
            done,
        };
        self.state.ingest.submit(chunk).await?;
        self.state
            .metrics
            .set_queue_depth(self.state.ingest.depth());
        self.queued.push((first_line, answer));
        Ok(())
    }

    /// Queues the last chunk (unless reading was interrupted) and waits
    /// for every chunk's commit, or with a queue for every chunk's
    /// publication.
    pub async fn finish(mut self, outcome: Result<(), Interrupted>) -> Result<Finished, Problem> {
        if let Some(mut last) = self.current.take() {
            match &outcome {
                Ok(()) => self.queue(last).await?,
                // A line cut off cannot be committed; the lines before can.
                Err(Interrupted::Stopping) if self.json_lines => {
                    last.drop_partial_line().await?;
                    self.queue(last).await?;
                }
                Err(_) => drop(last),
            }
        }
        if let Some((id, chunks)) = self.batch.take() {
            return self.accept(id, chunks, outcome).await;
        }
        let mut chunks = Vec::with_capacity(self.queued.len());
        for (first_line, answer) in self.queued {
            let report = answer
                .await
                .map_err(|_| Problem::unavailable("the server stopped before committing", 5))??;
            chunks.push((first_line, report));
        }
        match outcome {
            Ok(()) if self.taken == 0 => Err(Problem::bad_request("the body is empty")),
            Ok(()) => Ok(Finished::Committed(chunks)),
            Err(Interrupted::Failed(p)) => Err(p.committed(&chunks)),
            Err(Interrupted::Stopping) => Err(Problem::unavailable(
                "the server is stopping; send the rest again",
                5,
            )
            .committed(&chunks)),
        }
    }
}

impl Spooler {
    /// Records a published batch, so that its progress can be asked for.
    /// Chunks published before a problem are in the queue and will be
    /// committed: the problem names their batch.
    async fn accept(
        &self,
        id: String,
        chunks: u32,
        outcome: Result<(), Interrupted>,
    ) -> Result<Finished, Problem> {
        if outcome.is_ok() && self.taken == 0 {
            return Err(Problem::bad_request("the body is empty"));
        }
        let record = turncoat_queue::BatchRecord {
            id,
            tenant: self.tenant.name().to_string(),
            chunks,
            bytes: self.taken,
            accepted_ms: turncoat_core::Time::now().0 / 1000,
        };
        if chunks > 0
            && let Some(queue) = &self.state.queue
        {
            queue.accept_batch(&record).await.map_err(|e| {
                tracing::error!(batch = %record.id, error = %e, "a published batch was not recorded");
                Problem::unavailable("the queue did not record the batch; send it again", 5)
            })?;
            self.state.metrics.batch_accepted(u64::from(chunks));
        }
        let queued = |p: Problem| match chunks {
            0 => p,
            n => Problem {
                detail: format!(
                    "{}; {n} chunk(s) before it were queued as batch {}",
                    p.detail, record.id
                ),
                ..p
            },
        };
        match outcome {
            Ok(()) => Ok(Finished::Queued(record)),
            Err(Interrupted::Failed(p)) => Err(queued(p)),
            Err(Interrupted::Stopping) => Err(queued(Problem::unavailable(
                "the server is stopping; send the rest again",
                5,
            ))),
        }
    }
}

/// How a request's body ended up.
pub(crate) enum Finished {
    /// Committed by this server, chunk by chunk with its first line.
    Committed(Vec<(u64, FileReport)>),
    /// Stored in the queue, for workers to commit.
    Queued(turncoat_queue::BatchRecord),
}

/// What a queued ingest request is answered: its batch, and where to
/// follow it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct QueuedAnswer {
    tenant: String,
    /// The batch's id: `GET /api/v1/batches/{batch}` reports its progress.
    batch: String,
    /// Decompressed bytes taken.
    bytes: u64,
    /// Chunks stored in the queue.
    chunks: u32,
}

fn queued_answer(batch: turncoat_queue::BatchRecord) -> axum::response::Response {
    use axum::response::IntoResponse;
    let location = format!("/api/v1/batches/{}", batch.id);
    let body = QueuedAnswer {
        tenant: batch.tenant,
        batch: batch.id,
        bytes: batch.bytes,
        chunks: batch.chunks,
    };
    (
        StatusCode::ACCEPTED,
        [(axum::http::header::LOCATION, location)],
        Json(body),
    )
        .into_response()
}

impl Problem {
    /// Says which lines of the body were committed before the problem,
    /// so the sender knows what to send again (all of it is safe: what
    /// was committed is recognised and skipped).
    fn committed(self, chunks: &[(u64, FileReport)]) -> Problem {
        let lines: u64 = chunks
            .iter()
            .map(|(_, r)| r.events + r.inventory_records + r.skipped_records)
            .sum();
        if chunks.is_empty() {
            return self;
        }
        let detail = format!(
            "{}; {} chunk(s) before it were committed ({lines} records)",
            self.detail,
            chunks.len()
        );
        Problem { detail, ..self }
    }
}

/// The answer to a body whose chunks are all committed: 202, unless no
/// chunk could be read at all.
fn answer(
    tenant: &Tenant,
    chunks: Vec<(u64, FileReport)>,
    bytes: u64,
) -> Result<axum::response::Response, Problem> {
    let failure = |r: &FileReport| match &r.status {
        FileStatus::Failed { error } => Some(error.clone()),
        _ => None,
    };
    let failures: Vec<String> = chunks.iter().filter_map(|(_, r)| failure(r)).collect();
    if failures.len() == chunks.len() {
        let first = failures.into_iter().next().unwrap_or_default();
        return Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, first));
    }
    let mut answer = IngestAnswer {
        tenant: tenant.name().to_string(),
        bytes,
        events: 0,
        inventory_records: 0,
        skipped_records: 0,
        chunks: Vec::with_capacity(chunks.len()),
    };
    for (first_line, mut report) in chunks {
        answer.events += report.events;
        answer.inventory_records += report.inventory_records;
        answer.skipped_records += report.skipped_records;
        for issue in &mut report.issues {
            absolute_line(issue, first_line);
        }
        answer.chunks.push(ChunkAnswer { first_line, report });
    }
    Ok(axum::response::IntoResponse::into_response((
        StatusCode::ACCEPTED,
        Json(answer),
    )))
}

/// Makes a chunk's line number one of the whole body.
fn absolute_line(issue: &mut InputIssue, first_line: u64) {
    if let Some(line) = &mut issue.line {
        *line += first_line - 1;
    }
}
