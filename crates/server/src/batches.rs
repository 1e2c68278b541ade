//! `GET /api/v1/batches/{id}`: how far the workers are with an ingest
//! request a cluster's server queued.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use crate::api::tenant_in;
use crate::auth::Caller;
use crate::{AppState, Problem};

/// A queued ingest request and what its chunks came to so far.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct BatchAnswer {
    batch: String,
    tenant: String,
    /// `queued` (no chunk committed yet), `in-progress`, or `done` (every
    /// chunk committed, skipped as already committed, or failed).
    state: &'static str,
    /// When the server accepted it (RFC 3339).
    accepted: String,
    /// Decompressed bytes taken.
    bytes: u64,
    chunks: u32,
    chunks_done: u32,
    /// Chunks that could not be read or stored, even after retries.
    chunks_failed: u32,
    events: u64,
    inventory_records: u64,
    skipped_records: u64,
    /// Each chunk done, as `ingest --format json` reports a file (with
    /// the worker's name); chunks still waiting are left out.
    #[schema(value_type = Vec<Object>)]
    done: Vec<Value>,
}

/// `GET /api/v1/batches/{id}`: a queued ingest request's progress.
#[utoipa::path(get, path = "/batches/{id}", tag = "ingest",
    params(("id" = String, Path, description = "The batch id an ingest request was answered with")),
    responses((status = 200, body = BatchAnswer),
        (status = 401, body = Problem),
        (status = 404, description = "No such batch in the caller's tenants, or no queue", body = Problem),
        (status = 503, description = "The queue cannot be reached", body = Problem)))]
pub(crate) async fn batch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<BatchAnswer>, Problem> {
    let missing = || Problem::new(StatusCode::NOT_FOUND, "no such batch in your tenants");
    let Some(queue) = &state.queue else {
        return Err(missing());
    };
    let progress = queue.batch(&id).await.map_err(|e| {
        tracing::error!(error = %e, "reading a batch");
        Problem::unavailable("the queue cannot be reached", 5)
    })?;
    let Some(progress) = progress else {
        return Err(missing());
    };
    // Another tenant's batch is as absent as one that never was.
    tenant_in(&caller.0.scope, &progress.record.tenant).map_err(|_| missing())?;
    let count = |v: &Value, field: &str| v.get(field).and_then(Value::as_u64).unwrap_or(0);
    let done: Vec<Value> = progress.chunks.into_iter().flatten().collect();
    let failed = done
        .iter()
        .filter(|c| c.get("status").and_then(Value::as_str) == Some("failed"))
        .count() as u32;
    let record = progress.record;
    let state = match done.len() as u32 {
        0 => "queued",
        n if n < record.chunks => "in-progress",
        _ => "done",
    };
    Ok(Json(BatchAnswer {
        state,
        accepted: turncoat_core::Time(record.accepted_ms * 1000).to_string(),
        bytes: record.bytes,
        chunks: record.chunks,
        chunks_done: done.len() as u32,
        chunks_failed: failed,
        events: done.iter().map(|c| count(c, "events")).sum(),
        inventory_records: done.iter().map(|c| count(c, "inventory_records")).sum(),
        skipped_records: done.iter().map(|c| count(c, "skipped_records")).sum(),
        done,
        batch: record.id,
        tenant: record.tenant,
    }))
}
