//! The Elasticsearch bulk API, enough for Beats and Elastic Agent:
//! point a shipper's `output.elasticsearch` at
//! `https://turncoat:8440` with `path: /api/v1/tenants/{tenant}` and an
//! ingest token in a header, and its events arrive as ECS.
//!
//! Only `index` and `create` actions carry events; `update` and
//! `delete` have no meaning for an append-only archive and are answered
//! per item with an error. Each item's status says whether its document
//! was stored (201) or skipped (400, with the reason), so a shipper
//! retries only what it should.

use std::collections::HashMap;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use turncoat_engine::{FileReport, FileStatus};

use super::spool::{self, BodyReader};
use super::{Spooler, admit, ingest_tenant};
use crate::auth::Caller;
use crate::{AppState, Problem};

/// The query of a bulk request. Shippers add parameters of their own
/// (`filter_path`, `pipeline`, `refresh`), which are ignored.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct BulkQuery {
    format: Option<String>,
    endpoint: Option<String>,
}

/// The Elasticsearch version announced: shippers check it on start.
/// Beats newer than this need `allow_older_versions: true`.
const ANNOUNCED_VERSION: &str = "8.17.0";

/// `GET /api/v1/tenants/{tenant}/`: what a shipper asks first.
#[utoipa::path(get, path = "/tenants/{tenant}/", tag = "ingest",
    params(("tenant" = String, Path, description = "The tenant's name")),
    responses((status = 200, description = "Elasticsearch's root answer, for a shipper's version check", body = Object),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn cluster_info(
    caller: Caller,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, Problem> {
    let tenant = ingest_tenant(&caller, &tenant)?;
    Ok(Json(json!({
        "name": "turncoat",
        "cluster_name": format!("turncoat-{}", tenant.name()),
        "version": {
            "number": ANNOUNCED_VERSION,
            "build_flavor": "default",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "turncoat takes Elasticsearch bulk requests as telemetry",
    })))
}

/// One action of the request, in order.
enum Item {
    /// A document, by its number among the request's documents (1-based:
    /// its line in the spooled stream).
    Document {
        action: String,
        index: Value,
        n: u64,
    },
    /// Refused before spooling.
    Refused { action: String, reason: String },
}

/// `POST /api/v1/tenants/{tenant}/_bulk`.
#[utoipa::path(post, path = "/tenants/{tenant}/_bulk", tag = "ingest",
    params(("tenant" = String, Path, description = "The tenant's name"),
        ("format" = Option<String>, Query, description = "A telemetry format; by content when absent"),
        ("endpoint" = Option<String>, Query, description = "Host name for records that name none")),
    request_body(content = Vec<u8>, content_type = "application/x-ndjson", description = "Elasticsearch bulk actions and documents"),
    responses((status = 200, description = "Elasticsearch's bulk answer: per item 201, or 400 with the reason", body = Object),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 429, body = Problem)))]
pub(crate) async fn bulk(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Query(query): Query<BulkQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, Problem> {
    let started = Instant::now();
    let tenant = ingest_tenant(&caller, &tenant)?;
    let options = super::IngestQuery {
        format: query.format,
        endpoint: query.endpoint,
        name: None,
    }
    .options()?;
    let _admitted = admit(&state)?;
    let mut reader = spool::decoded(&headers, body)?;
    let mut spooler = Spooler::new(
        &state,
        tenant,
        options,
        caller.0.actor.clone(),
        "bulk documents".into(),
    )?;
    let mut items = Vec::new();
    let outcome = take_actions(&state, &mut reader, &mut spooler, &mut items).await;
    let finished = spooler
        .finish(outcome.map_err(super::Interrupted::Failed))
        .await?;
    Ok(Json(match finished {
        super::Finished::Committed(chunks) => respond(&items, &chunks, started),
        // Queued (cluster mode): every document is stored in the queue; the
        // ones a worker skips are reported by the batch.
        super::Finished::Queued(batch) => {
            let mut answer = respond(&items, &[], started);
            answer["turncoat_batch"] = batch.id.into();
            answer
        }
    }))
}

/// Reads action and document lines, spooling the documents.
async fn take_actions(
    state: &AppState,
    reader: &mut BodyReader,
    spooler: &mut Spooler,
    items: &mut Vec<Item>,
) -> Result<(), Problem> {
    let limits = &state.ingest.limits;
    let max_line = turncoat_formats::Limits::default().max_record_bytes;
    let mut line = Vec::new();
    let mut documents = 0u64;
    loop {
        let Some(action) =
            next_line(reader, &mut line, max_line, &mut spooler.taken, limits).await?
        else {
            return Ok(());
        };
        if line.trim_ascii().is_empty() {
            continue;
        }
        let (name, index) = match action {
            LineRead::TooLong => {
                return Err(Problem::bad_request(format!(
                    "action {} is over {max_line} bytes",
                    items.len() + 1
                )));
            }
            LineRead::Whole => parse_action(&line)
                .map_err(|e| Problem::bad_request(format!("action {}: {e}", items.len() + 1)))?,
        };
        if name == "delete" {
            items.push(Item::Refused {
                action: name,
                reason: "turncoat keeps an append-only archive: documents are not deleted".into(),
            });
            continue;
        }
        let document = next_line(reader, &mut line, max_line, &mut spooler.taken, limits).await?;
        let refusal = match document {
            None => Some("the action has no document".to_owned()),
            Some(LineRead::TooLong) => Some(format!("the document is over {max_line} bytes")),
            Some(LineRead::Whole) if name == "update" => {
                Some("turncoat keeps an append-only archive: documents are not updated".into())
            }
            Some(LineRead::Whole) => None,
        };
        if let Some(reason) = refusal {
            items.push(Item::Refused {
                action: name,
                reason,
            });
            continue;
        }
        if spooler.chunk_bytes() >= limits.chunk_bytes {
            spooler.cut().await?;
        }
        spooler.write(line.trim_ascii_end()).await?;
        spooler.write(b"\n").await?;
        documents += 1;
        items.push(Item::Document {
            action: name,
            index,
            n: documents,
        });
    }
}

fn parse_action(line: &[u8]) -> Result<(String, Value), String> {
    let value: Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let Some((name, meta)) = value
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
    else {
        return Err("an action is an object with one key (index, create, update, delete)".into());
    };
    if !matches!(name.as_str(), "index" | "create" | "update" | "delete") {
        return Err(format!("unknown action {name:?}"));
    }
    Ok((
        name.clone(),
        meta.get("_index").cloned().unwrap_or(Value::Null),
    ))
}

enum LineRead {
    Whole,
    /// Longer than allowed: read past, not kept.
    TooLong,
}

/// Reads the next line into `line` (without its end), keeping at most
/// `max` bytes; `None` at the end of the body.
async fn next_line(
    reader: &mut BodyReader,
    line: &mut Vec<u8>,
    max: usize,
    taken: &mut u64,
    limits: &super::IngestLimits,
) -> Result<Option<LineRead>, Problem> {
    line.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let n = match spool::next_piece(reader, std::time::Duration::from_secs(60), taken, limits)
            .await?
        {
            spool::Piece::End if any => break,
            spool::Piece::End => return Ok(None),
            spool::Piece::Pause => {
                return Err(Problem::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "the body stalled for a minute",
                ));
            }
            spool::Piece::Bytes(n) => n,
        };
        any = true;
        let bytes = reader
            .fill_buf()
            .await
            .map_err(|e| Problem::bad_request(e.to_string()))?;
        let (piece, end) = match bytes[..n].iter().position(|&b| b == b'\n') {
            Some(i) => (&bytes[..i], Some(i + 1)),
            None => (&bytes[..n], None),
        };
        if line.len() + piece.len() > max {
            too_long = true;
            line.clear();
        } else if !too_long {
            line.extend_from_slice(piece);
        }
        // Bytes left after the line end are counted again when next read.
        let used = end.unwrap_or(n);
        *taken -= (n - used) as u64;
        reader.consume(used);
        if end.is_some() {
            break;
        }
    }
    Ok(Some(if too_long {
        LineRead::TooLong
    } else {
        LineRead::Whole
    }))
}

/// The bulk response: per item, stored or why not.
fn respond(items: &[Item], chunks: &[(u64, FileReport)], started: Instant) -> Value {
    // Documents skipped by the reader, by number, with the reason.
    let mut skipped: HashMap<u64, String> = HashMap::new();
    let mut unexplained = 0u64;
    let mut failed_ranges = Vec::new();
    for (first, report) in chunks {
        let mut explained = 0;
        for issue in &report.issues {
            if let Some(line) = issue.line {
                skipped.insert(first + line - 1, issue.message.clone());
                explained += 1;
            }
        }
        unexplained += report.skipped_records.saturating_sub(explained);
        if let FileStatus::Failed { error } = &report.status {
            failed_ranges.push((*first, error.clone()));
        }
    }
    let failed_chunk = |n: u64| {
        failed_ranges
            .iter()
            .rev()
            .find(|(first, _)| *first <= n)
            .map(|(_, e)| e.clone())
    };
    let mut errors = unexplained > 0;
    let items: Vec<Value> = items
        .iter()
        .map(|item| {
            let (action, index, outcome) = match item {
                Item::Refused { action, reason } => (action, &Value::Null, Err(reason.clone())),
                Item::Document { action, index, n } => {
                    let why = skipped.get(n).cloned().or_else(|| failed_chunk(*n));
                    (action, index, why.map_or(Ok(()), Err))
                }
            };
            let body = match outcome {
                Ok(()) => json!({"_index": index, "status": 201, "result": "created"}),
                Err(reason) => {
                    errors = true;
                    json!({
                        "_index": index,
                        "status": 400,
                        "error": {"type": "document_skipped_exception", "reason": reason},
                    })
                }
            };
            json!({ action.as_str(): body })
        })
        .collect();
    json!({
        "took": started.elapsed().as_millis() as u64,
        "errors": errors,
        "items": items,
    })
}
