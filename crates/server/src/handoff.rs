//! What goes to a cluster's workers besides ingest: each intel import's
//! retro-hunt, fanned out as one job per tenant, and the news that the
//! detection content (indicators, advisories, rules) changed, so that
//! every worker loads it again. Called from blocking code (a request's
//! store work, the CLI) with the handle of a runtime to publish on.

use std::path::PathBuf;
use std::sync::Arc;

use turncoat_core::Actor;
use turncoat_engine::rules::RulesReport;
use turncoat_engine::{EngineError, IntelReport, Progress, RetroPlan};
use turncoat_formats::intel::IntelFormat;
use turncoat_queue::Queue;
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
    let Some(hand_off) = hand_off else {
        return turncoat_engine::import_intel(store, paths, format, progress, actor, None);
    };
    let retro = |plan: &RetroPlan, tenants: &[Tenant]| hand_off.retro(plan, tenants, actor);
    let report =
        turncoat_engine::import_intel(store, paths, format, progress, actor, Some(&retro))?;
    if report.indicators_new + report.indicators_changed > 0
        || !report.advisories_changed.is_empty()
    {
        hand_off.announce("intel");
    }
    Ok(report)
}

/// Imports rule files ([`turncoat_engine::rules::import`]); with a queue,
/// the change is announced.
pub fn import_rules(
    hand_off: Option<&HandOff>,
    store: &mut dyn Store,
    paths: &[PathBuf],
    names_below: Option<&std::path::Path>,
    exclude_status: &[String],
    progress: &dyn Progress,
    actor: &Actor,
) -> Result<RulesReport, EngineError> {
    let report =
        turncoat_engine::rules::import(store, paths, names_below, exclude_status, progress, actor)?;
    if let Some(hand_off) = hand_off
        && !report.new_or_changed.is_empty()
    {
        hand_off.announce("rules");
    }
    Ok(report)
}
