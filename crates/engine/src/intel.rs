//! Intel import: read, store, retro-hunt.

use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use turncoat_core::{Actor, Advisory, Indicator, IndicatorKind};
use turncoat_detect::AdvisoryIndex;
use turncoat_formats::intel::{IntelFormat, read_intel_each};
use turncoat_formats::{Input, Limits, ReadIssue};
use turncoat_store::{Store, Tenant};

use crate::progress::Progress;
use crate::{Result, retro};

/// One intel file's outcome.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IntelFileReport {
    pub file: String,
    pub format: Option<String>,
    pub indicators: usize,
    pub advisories: usize,
    pub rejected: usize,
    pub informational: usize,
    pub error: Option<String>,
}

/// Retro-hunt results for one tenant.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetroReport {
    pub tenant: String,
    pub new_alerts: u64,
    pub updated_alerts: u64,
    /// Dismissed alerts the new intel names, back to `new`.
    pub resurfaced: u64,
}

impl RetroReport {
    fn add(&mut self, other: &RetroReport) {
        self.new_alerts += other.new_alerts;
        self.updated_alerts += other.updated_alerts;
        self.resurfaced += other.resurfaced;
    }
}

/// What an import's retro-hunt must look for: the indicators new or
/// changed (by store id), the advisories new or changed, and the Sigma
/// rules and correlations new or changed (by id; a rule a changed filter
/// names counts as changed). Handed to each tenant's hunt, here or (in a
/// cluster) on a worker.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetroPlan {
    pub indicators: Vec<i64>,
    pub advisories: Vec<String>,
    #[serde(default)]
    pub rules: Vec<String>,
    #[serde(default)]
    pub correlations: Vec<String>,
}

impl RetroPlan {
    pub fn is_empty(&self) -> bool {
        self.indicators.is_empty()
            && self.advisories.is_empty()
            && self.rules.is_empty()
            && self.correlations.is_empty()
    }
}

/// A retro-hunt handed to a cluster's workers, one job per tenant.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueuedRetro {
    /// The hunt's id, in the workers' logs.
    pub hunt: String,
    pub tenants: usize,
}

/// Hands an import's retro-hunt to a cluster's workers (one job per
/// tenant), answering the hunt's id.
pub type HandOff<'a> = &'a dyn Fn(&RetroPlan, &[Tenant]) -> std::result::Result<String, String>;

/// Offers an import's retro-hunt to `hand_off`: answers the hunt the
/// workers took, or why they did not (`None` with no hand-off at all),
/// in which case the importer hunts.
pub(crate) fn offer_retro(
    hand_off: Option<HandOff<'_>>,
    plan: &RetroPlan,
    tenants: &[Tenant],
) -> std::result::Result<QueuedRetro, Option<String>> {
    let hand_off = hand_off.ok_or(None)?;
    let hunt = hand_off(plan, tenants).map_err(Some)?;
    Ok(QueuedRetro {
        hunt,
        tenants: tenants.len(),
    })
}

/// What an intel import did.
#[derive(Clone, Debug, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IntelReport {
    pub files: Vec<IntelFileReport>,
    pub indicators_new: usize,
    pub indicators_changed: usize,
    pub indicators_unchanged: usize,
    pub unsupported: usize,
    pub advisories_changed: Vec<String>,
    /// Entries rejected, with file and line or record.
    pub rejected: Vec<String>,
    pub retro: Vec<RetroReport>,
    pub retro_seconds: f64,
    /// The retro-hunt, when workers do it rather than the importer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retro_queued: Option<QueuedRetro>,
    /// Why a retro-hunt meant for the workers was done here instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retro_not_queued: Option<String>,
    /// Cross-tenant campaigns raised or updated by the retro-hunt.
    pub campaigns: crate::campaign::Escalation,
}

impl IntelReport {
    pub fn new_alerts(&self) -> u64 {
        self.retro.iter().map(|r| r.new_alerts).sum()
    }

    /// Whether some file could not be read at all (the others may have
    /// been imported): the run must not look like a success.
    pub fn any_file_failed(&self) -> bool {
        self.files.iter().any(|f| f.error.is_some())
    }
}

/// Indicators in flight between the thread reading intel files and the
/// store.
const IMPORT_QUEUE: usize = 4096;

/// What the reading side of an import found besides indicators.
struct FilesRead {
    files: Vec<IntelFileReport>,
    advisories: Vec<Advisory>,
    rejected: Vec<ReadIssue>,
    unsupported: usize,
}

/// Reads every file, sending each indicator (those published inside
/// advisories too) to the store as soon as it is read.
fn read_files(
    files: &[&Path],
    format: Option<IntelFormat>,
    send: SyncSender<Indicator>,
) -> FilesRead {
    let mut out = FilesRead {
        files: Vec::new(),
        advisories: Vec::new(),
        rejected: Vec::new(),
        unsupported: 0,
    };
    // Once the store has stopped taking them (it failed), reading on is
    // pointless; the store's error is what the import reports.
    let mut receiving = true;
    // Read between files while the closure holds them.
    let count = std::cell::Cell::new(0usize);
    let unsupported = std::cell::Cell::new(0usize);
    let mut each = |i: Indicator| {
        count.set(count.get() + 1);
        if i.kind == IndicatorKind::Unsupported {
            unsupported.set(unsupported.get() + 1);
        }
        receiving = receiving && send.send(i).is_ok();
    };
    for path in files {
        let name = path.display().to_string();
        let mut file_report = IntelFileReport {
            file: name.clone(),
            format: None,
            indicators: 0,
            advisories: 0,
            rejected: 0,
            informational: 0,
            error: None,
        };
        count.set(0);
        let result = Input::open(path)
            .map_err(|e| format!("{name}: {e}"))
            .and_then(|mut input| {
                read_intel_each(&mut input, format, &Limits::default(), &mut each)
                    .map_err(|e| e.to_string())
            });
        match result {
            Ok((fmt, mut intel)) => {
                // Indicators published inside advisories are intel too.
                for a in &mut intel.advisories {
                    a.indicators.drain(..).for_each(&mut each);
                }
                file_report.format = Some(fmt.to_string());
                file_report.indicators = count.get();
                file_report.advisories = intel.advisories.len();
                file_report.rejected = intel.rejected.len();
                file_report.informational = intel.informational;
                out.advisories.extend(intel.advisories);
                out.rejected.extend(intel.rejected);
            }
            Err(e) => file_report.error = Some(e),
        }
        out.files.push(file_report);
    }
    out.unsupported = unsupported.get();
    out
}

/// Imports intel files, then retro-hunts what is new or changed across
/// every tenant: here, or by the cluster's workers when `hand_off` takes
/// the hunt (if it cannot, the hunt is done here, and the report says
/// why).
pub fn import_intel(
    store: &mut dyn Store,
    paths: &[PathBuf],
    format: Option<IntelFormat>,
    progress: &dyn Progress,
    actor: &Actor,
    hand_off: Option<HandOff<'_>>,
) -> Result<IntelReport> {
    let (mut report, plan) = store_intel(store, paths, format, actor)?;
    if plan.is_empty() {
        return Ok(report);
    }
    let tenants = store.tenants()?;
    match offer_retro(hand_off, &plan, &tenants) {
        Ok(queued) => {
            report.retro_queued = Some(queued);
            return Ok(report);
        }
        Err(why) => report.retro_not_queued = why,
    }
    let started = Instant::now();
    let intel = plan_intel(store, &plan)?;
    progress.start("retro-hunt", Some(tenants.len() as u64));
    for tenant in &tenants {
        report.retro.push(hunt_tenant(store, tenant, &intel)?);
        progress.advance(1);
    }
    progress.finish();
    report.retro_seconds = started.elapsed().as_secs_f64();
    if report
        .retro
        .iter()
        .any(|r| r.new_alerts + r.updated_alerts > 0)
    {
        report.campaigns = crate::campaign::escalate_after_change(store, actor)?;
    }
    Ok(report)
}

/// Runs `plan` over one tenant's stored data (its intel, then its rules,
/// found by id in `rules`: the current set, as a worker keeps it), then
/// escalates campaigns if it raised anything: a cluster worker's
/// retro-hunt job.
pub fn retro_hunt(
    store: &mut dyn Store,
    tenant: &Tenant,
    plan: &RetroPlan,
    rules: &turncoat_sigma::RuleSet,
    actor: &Actor,
) -> Result<RetroReport> {
    let mut report = RetroReport {
        tenant: tenant.name().to_string(),
        new_alerts: 0,
        updated_alerts: 0,
        resurfaced: 0,
    };
    if !plan.indicators.is_empty() || !plan.advisories.is_empty() {
        let intel = plan_intel(store, plan)?;
        report.add(&hunt_tenant(store, tenant, &intel)?);
    }
    if !plan.rules.is_empty() || !plan.correlations.is_empty() {
        let changed = crate::rules::Changed::named(rules, &plan.rules, &plan.correlations);
        report.add(&crate::rules::hunt_tenant(store, tenant, rules, &changed)?);
    }
    if report.new_alerts + report.updated_alerts > 0 {
        crate::campaign::escalate_after_change(store, actor)?;
    }
    Ok(report)
}

/// Stores the indicators and advisories of intel files, and answers what
/// of them is new or changed: what must be hunted for.
fn store_intel(
    store: &mut dyn Store,
    paths: &[PathBuf],
    format: Option<IntelFormat>,
    actor: &Actor,
) -> Result<(IntelReport, RetroPlan)> {
    store.expire_suppressions(turncoat_core::Time::now())?;
    let walk = turncoat_walk::walk(paths, &turncoat_walk::WalkOptions::all_files());
    let files: Vec<&Path> = walk.paths().collect();
    let mut report = IntelReport {
        rejected: walk.unread(),
        ..IntelReport::default()
    };
    // The files are read on a thread of their own while this one stores
    // what they hold, in one transaction: indicators pass through a
    // bounded queue, so memory does not grow with the size of the feed.
    let (send, receive) = std::sync::mpsc::sync_channel::<Indicator>(IMPORT_QUEUE);
    let (read, upsert) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| read_files(&files, format, send));
        let upsert = store.upsert_indicators(&mut receive.into_iter(), actor);
        let read = reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (read, upsert)
    });
    let upsert = upsert?;
    report.files = read.files;
    report.unsupported = read.unsupported;
    report
        .rejected
        .extend(read.rejected.iter().map(ToString::to_string));
    report.indicators_new = upsert.inserted.len();
    report.indicators_changed = upsert.changed.len();
    report.indicators_unchanged = upsert.unchanged;
    report.advisories_changed = store.upsert_advisories(&read.advisories, actor)?;
    if !upsert.inserted.is_empty()
        || !upsert.changed.is_empty()
        || !report.advisories_changed.is_empty()
    {
        // Saved now, so that no ingest pays for building it.
        crate::load_intel(store)?;
    }
    // Only what is new or changed is hunted for: re-importing the same
    // intel does no work and raises nothing.
    let plan = RetroPlan {
        indicators: upsert.inserted.into_iter().chain(upsert.changed).collect(),
        advisories: report.advisories_changed.clone(),
        ..RetroPlan::default()
    };
    Ok((report, plan))
}

/// The indicators and advisories a plan names, as indexes.
struct PlanIntel {
    indicators: turncoat_detect::IndicatorIndex,
    advisories: AdvisoryIndex,
}

fn plan_intel(store: &dyn Store, plan: &RetroPlan) -> Result<PlanIntel> {
    // Read back in slices, so that a first import of a large feed is
    // never held as whole `Indicator`s.
    let mut indicators = turncoat_detect::IndicatorIndex::default();
    for ids in plan.indicators.chunks(10_000) {
        for stored in store.indicators_by_id(ids)? {
            indicators.insert(stored.indicator.as_ref());
        }
    }
    let advisories = AdvisoryIndex::new(
        store
            .advisories()?
            .into_iter()
            .filter(|a| plan.advisories.contains(&a.id))
            .collect(),
    );
    Ok(PlanIntel {
        indicators,
        advisories,
    })
}

fn hunt_tenant(store: &mut dyn Store, tenant: &Tenant, intel: &PlanIntel) -> Result<RetroReport> {
    let a = retro::hunt_indicators(store, tenant, &intel.indicators)?;
    let b = retro::hunt_advisories(store, tenant, &intel.advisories)?;
    let c = crate::beacons::attach_intel(store, tenant, &intel.indicators)?;
    Ok(RetroReport {
        tenant: tenant.name().to_string(),
        new_alerts: a.new_alerts + b.new_alerts,
        updated_alerts: a.updated_alerts + b.updated_alerts + c.updated_alerts,
        resurfaced: a.resurfaced + b.resurfaced + c.resurfaced,
    })
}
