//! Intel import: read, store, retro-hunt.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use turncoat_core::IndicatorKind;
use turncoat_detect::AdvisoryIndex;
use turncoat_formats::intel::{Intel, IntelFormat, read_intel};
use turncoat_formats::{Input, Limits};
use turncoat_store::Store;

use crate::progress::Progress;
use crate::{ACTOR, Result, retro};

/// One intel file's outcome.
#[derive(Clone, Debug, Serialize)]
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
pub struct RetroReport {
    pub tenant: String,
    pub new_alerts: u64,
    pub updated_alerts: u64,
}

/// What an intel import did.
#[derive(Clone, Debug, Default, Serialize)]
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
    /// Cross-tenant campaigns raised or updated by the retro-hunt.
    pub campaigns: crate::campaign::Escalation,
}

impl IntelReport {
    pub fn new_alerts(&self) -> u64 {
        self.retro.iter().map(|r| r.new_alerts).sum()
    }

    /// Whether nothing at all could be read.
    pub fn nothing_read(&self) -> bool {
        !self.files.is_empty() && self.files.iter().all(|f| f.error.is_some())
    }
}

/// Imports intel files, then retro-hunts what is new or changed across
/// every tenant.
pub fn import_intel(
    store: &mut dyn Store,
    paths: &[PathBuf],
    format: Option<IntelFormat>,
    progress: &dyn Progress,
) -> Result<IntelReport> {
    let walk = turncoat_walk::walk(paths, &turncoat_walk::WalkOptions::all_files());
    let files: Vec<&Path> = walk.paths().collect();
    let mut report = IntelReport {
        rejected: walk.unread(),
        ..IntelReport::default()
    };
    let mut all = Intel::default();
    for path in &files {
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
        let result = Input::open(path)
            .map_err(|e| format!("{name}: {e}"))
            .and_then(|mut input| {
                read_intel(&mut input, format, &Limits::default()).map_err(|e| e.to_string())
            });
        match result {
            Ok((fmt, mut intel)) => {
                file_report.format = Some(fmt.to_string());
                file_report.indicators = intel.indicators.len();
                file_report.advisories = intel.advisories.len();
                file_report.rejected = intel.rejected.len();
                file_report.informational = intel.informational;
                // Indicators published inside advisories are intel too.
                for a in &mut intel.advisories {
                    intel.indicators.append(&mut a.indicators);
                }
                all.extend(intel);
            }
            Err(e) => file_report.error = Some(e),
        }
        report.files.push(file_report);
    }
    report.rejected = all.rejected.iter().map(ToString::to_string).collect();
    report.unsupported = all
        .indicators
        .iter()
        .filter(|i| i.kind == IndicatorKind::Unsupported)
        .count();

    let upsert = store.upsert_indicators(&all.indicators, ACTOR)?;
    report.indicators_new = upsert.inserted.len();
    report.indicators_changed = upsert.changed.len();
    report.indicators_unchanged = upsert.unchanged;
    report.advisories_changed = store.upsert_advisories(&all.advisories, ACTOR)?;

    // Retro-hunt only what is new or changed: re-importing the same intel
    // does no work and raises nothing.
    let started = Instant::now();
    let changed_ids: Vec<i64> = upsert
        .inserted
        .iter()
        .chain(&upsert.changed)
        .copied()
        .collect();
    let indicators: Vec<_> = store
        .indicators_by_id(&changed_ids)?
        .into_iter()
        .map(|s| s.indicator)
        .collect();
    let advisories = AdvisoryIndex::new(
        store
            .advisories()?
            .into_iter()
            .filter(|a| report.advisories_changed.contains(&a.id))
            .collect(),
    );
    let tenants = store.tenants()?;
    let new_intel = turncoat_detect::IndicatorIndex::new(indicators.clone());
    if !indicators.is_empty() || !advisories.is_empty() {
        progress.start("retro-hunt", Some(tenants.len() as u64));
        for tenant in &tenants {
            let a = retro::hunt_indicators(store, tenant, &indicators)?;
            let b = retro::hunt_advisories(store, tenant, &advisories)?;
            let c = crate::beacons::attach_intel(store, tenant, &new_intel)?;
            report.retro.push(RetroReport {
                tenant: tenant.name.to_string(),
                new_alerts: a.new_alerts + b.new_alerts,
                updated_alerts: a.updated_alerts + b.updated_alerts + c.updated_alerts,
            });
            progress.advance(1);
        }
        progress.finish();
    }
    report.retro_seconds = started.elapsed().as_secs_f64();
    if report
        .retro
        .iter()
        .any(|r| r.new_alerts + r.updated_alerts > 0)
    {
        report.campaigns = crate::campaign::escalate(
            store,
            crate::campaign::DEFAULT_MIN_TENANTS,
            crate::campaign::DEFAULT_WINDOW_DAYS,
        )?;
    }
    Ok(report)
}
