//! What blocking code (a request's store work, the CLI) hands to a
//! cluster's workers: files to ingest, published as batches as
//! `serve --queue` publishes a request's body; each intel or rules
//! import's retro-hunt, fanned out as one job per tenant; and the news that the
//! detection content (indicators, advisories, rules) changed, so that
//! every worker loads it again. Published on a runtime's handle.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use turncoat_core::Actor;
use turncoat_engine::rules::RulesReport;
use turncoat_engine::{EngineError, IntelReport, Progress, RetroPlan};
use turncoat_formats::intel::IntelFormat;
use turncoat_queue::{BatchRecord, ChunkMeta, Queue};
use turncoat_store::{Store, Tenant};

/// A queue to hand work to, and the runtime to do it on.
#[derive(Clone)]
pub struct HandOff {
    queue: Arc<Queue>,
    runtime: tokio::runtime::Handle,
}

impl HandOff {
    pub fn new(queue: Arc<Queue>, runtime: tokio::runtime::Handle) -> HandOff {
        HandOff { queue, runtime }
    }

    /// Hands an import's retro-hunt out, one job per tenant; answers the
    /// hunt's id.
    fn retro(&self, plan: &RetroPlan, tenants: &[Tenant], actor: &Actor) -> Result<String, String> {
        let plan = serde_json::to_vec(plan).map_err(|e| e.to_string())?;
        let tenants: Vec<(String, i64)> = tenants
            .iter()
            .map(|t| (t.name().to_string(), t.id().get()))
            .collect();
        let actor = actor.to_string();
        let hunt = self
            .runtime
            .block_on(self.queue.hand_out_hunt(plan.into(), &tenants, &actor))
            .map_err(|e| e.to_string())?;
        tracing::info!(hunt = %hunt, tenants = tenants.len(), "retro-hunt handed to the workers");
        Ok(hunt)
    }

    /// Publishes a file to the ingest stream as one batch for `tenant`,
    /// named `name` in findings: line-delimited JSON cut at line ends into
    /// chunks of half a message, anything else whole (in the object store
    /// when bigger than a message). Answers the batch once JetStream has
    /// stored every chunk.
    pub fn publish_file(
        &self,
        tenant: &Tenant,
        path: &Path,
        name: &str,
        options: &turncoat_engine::IngestOptions,
        actor: &Actor,
    ) -> Result<BatchRecord, String> {
        let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
        if size > MAX_PUBLISHED_FILE {
            return Err(format!(
                "{size} bytes: a file over {MAX_PUBLISHED_FILE} bytes is not published whole; split it"
            ));
        }
        let body = std::fs::read(path).map_err(|e| e.to_string())?;
        if body.is_empty() {
            return Err("empty".into());
        }
        let target = (self.queue.inline_limit() / 2).max(1);
        let head = &body[..body.len().min(crate::ingest::HEAD_BYTES)];
        let cut = body.len() > target && crate::ingest::is_json_lines(head) == Some(true);
        let mut pieces = Vec::new();
        let mut from = 0;
        while from < body.len() {
            let len = match cut {
                true => crate::ingest::cut_point(&body[from..], 0, target as u64),
                false => None,
            };
            let end = len.map_or(body.len(), |len| from + len);
            pieces.push(from..end);
            from = end;
        }
        let batch = Queue::new_batch_id();
        let mut first_line = 1;
        let mut metas = Vec::with_capacity(pieces.len());
        for (seq, piece) in pieces.iter().enumerate() {
            let bytes = &body[piece.clone()];
            let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64
                + u64::from(bytes.last() != Some(&b'\n'));
            metas.push(ChunkMeta {
                batch: batch.clone(),
                seq: seq as u32,
                tenant: tenant.name().to_string(),
                tenant_id: tenant.id().get(),
                format: options.format.map(|f| f.to_string()),
                endpoint: options.endpoint.clone(),
                actor: actor.to_string(),
                name: match cut && pieces.len() > 1 {
                    true => format!("{name}, lines {first_line}-{}", first_line + lines - 1),
                    false => name.to_owned(),
                },
                first_line,
            });
            first_line += lines;
        }
        let body = axum::body::Bytes::from(body);
        let record = BatchRecord {
            id: batch,
            tenant: tenant.name().to_string(),
            chunks: pieces.len() as u32,
            bytes: body.len() as u64,
            accepted_ms: turncoat_core::Time::now().0 / 1000,
        };
        self.runtime
            .block_on(async {
                for (meta, piece) in metas.iter().zip(pieces) {
                    self.queue.publish(meta, body.slice(piece)).await?;
                }
                self.queue.accept_batch(&record).await
            })
            .map_err(|e| e.to_string())?;
        Ok(record)
    }

    /// Tells the workers the content changed. Not fatal when it fails:
    /// a worker checks the store's content key before every chunk anyway;
    /// the announcement only spares the first chunk after a change the
    /// loading.
    fn announce(&self, what: &str) {
        if let Err(e) = self.runtime.block_on(self.queue.announce_change(what)) {
            tracing::warn!(error = %e, change = what, "a content change was not announced");
        }
    }
}

/// The largest file `turncoat ingest --queue` publishes (read whole).
const MAX_PUBLISHED_FILE: u64 = 2 << 30;

/// Imports intel files ([`turncoat_engine::import_intel`]); with a queue,
/// the retro-hunt is handed to the workers and the change announced.
pub fn import_intel(
    hand_off: Option<&HandOff>,
    store: &mut dyn Store,
    paths: &[PathBuf],
    format: Option<IntelFormat>,
    progress: &dyn Progress,
    actor: &Actor,
) -> Result<IntelReport, EngineError> {
    let retro = hand_off.map(|hand_off| {
        move |plan: &RetroPlan, tenants: &[Tenant]| hand_off.retro(plan, tenants, actor)
    });
    let report = turncoat_engine::import_intel(
        store,
        paths,
        format,
        progress,
        actor,
        retro.as_ref().map(|r| r as turncoat_engine::HandOff<'_>),
    )?;
    if let Some(hand_off) = hand_off
        && (report.indicators_new + report.indicators_changed > 0
            || !report.advisories_changed.is_empty())
    {
        hand_off.announce("intel");
    }
    Ok(report)
}

/// Imports rule files ([`turncoat_engine::rules::import`]); with a queue,
/// the retro-hunt is handed to the workers and the change announced.
pub fn import_rules(
    hand_off: Option<&HandOff>,
    store: &mut dyn Store,
    paths: &[PathBuf],
    names_below: Option<&std::path::Path>,
    exclude_status: &[String],
    progress: &dyn Progress,
    actor: &Actor,
) -> Result<RulesReport, EngineError> {
    let retro = hand_off.map(|hand_off| {
        move |plan: &RetroPlan, tenants: &[Tenant]| hand_off.retro(plan, tenants, actor)
    });
    let report = turncoat_engine::rules::import(
        store,
        paths,
        names_below,
        exclude_status,
        progress,
        actor,
        retro.as_ref().map(|r| r as turncoat_engine::HandOff<'_>),
    )?;
    if let Some(hand_off) = hand_off
        && !report.new_or_changed.is_empty()
    {
        hand_off.announce("rules");
    }
    Ok(report)
}
