//! Sigma rules in the product: import (stored as text, compiled on load),
//! live matching during ingest, and a retro-hunt over every tenant's
//! archive when rules are new or changed.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;
use turncoat_core::{AlertKind, Event, Evidence, Finding, Severity};
use turncoat_sigma::{Rule, RuleSet, parse_file};
use turncoat_store::{FindingMode, Store, StoredRule};

use crate::intel::RetroReport;
use crate::progress::Progress;
use crate::{ACTOR, EngineError, Result};

/// Evidence keeps at most this much of the matched event's JSON.
const MAX_EVIDENCE_BYTES: usize = 4096;

/// What a rules import did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RulesReport {
    pub files: usize,
    pub compiled: usize,
    /// Rules that did not compile or carry no id, with file, line and reason.
    pub failed: Vec<String>,
    /// Rules left out by status.
    pub excluded: usize,
    pub new_or_changed: Vec<String>,
    pub retro: Vec<RetroReport>,
}

/// Severity from a Sigma `level`.
pub fn severity(level: Option<&str>) -> Severity {
    match level.map(str::to_ascii_lowercase).as_deref() {
        Some("critical") => Severity::Critical,
        Some("high") => Severity::High,
        Some("medium") => Severity::Medium,
        Some("low") => Severity::Low,
        _ => Severity::Info,
    }
}

/// A `sigma` finding: one rule on one endpoint on one day.
pub fn finding(rule: &Rule, event: &Event, count: u64, file: Option<String>) -> Finding {
    let mut detail = serde_json::to_string(&event.fields).unwrap_or_default();
    if detail.len() > MAX_EVIDENCE_BYTES {
        let mut cut = MAX_EVIDENCE_BYTES;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
    }
    let observed = [
        "CommandLine",
        "Image",
        "ImageLoaded",
        "TargetFilename",
        "QueryName",
        "TargetObject",
    ]
    .iter()
    .find_map(|f| event.fields.get_str(f))
    .unwrap_or(&rule.title)
    .to_owned();
    Finding {
        endpoint: event.host.clone(),
        kind: AlertKind::Sigma,
        source: rule.id.clone().unwrap_or_else(|| rule.title.clone()),
        title: rule.title.clone(),
        severity: severity(rule.level.as_deref()),
        campaign: None,
        key: format!("day:{}", event.time.day()),
        first_seen: event.time,
        last_seen: event.time,
        count,
        evidence: Evidence {
            observed,
            time: event.time,
            file,
            detail: Some(detail),
        },
    }
}

/// Compiles the stored rules.
pub fn load(store: &dyn Store) -> Result<RuleSet> {
    let mut set = RuleSet::default();
    for stored in store.rules()? {
        for r in parse_file(&stored.source, &stored.text) {
            match r {
                Ok(rule) if rule.id.as_deref() == Some(stored.id.as_str()) => set.rules.push(rule),
                Ok(_) => {}
                Err(e) => set.failed.push(e),
            }
        }
    }
    Ok(set)
}

/// Imports rule files, then retro-hunts every tenant's archive with the
/// rules that are new or changed.
pub fn import(
    store: &mut dyn Store,
    paths: &[PathBuf],
    exclude_status: &[String],
    progress: &dyn Progress,
) -> Result<RulesReport> {
    let set_files = crate::ingest::expand_paths(paths).map_err(|e| EngineError::Input {
        path: format!("{paths:?}"),
        message: e.to_string(),
    })?;
    let mut report = RulesReport::default();
    let mut stored = Vec::new();
    let mut compiled = RuleSet::default();
    for path in set_files
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
    {
        report.files += 1;
        let name = path.display().to_string();
        let text = match std::fs::read(path).map(String::from_utf8) {
            Ok(Ok(t)) => t,
            Ok(Err(_)) => {
                report.failed.push(format!("{name}: not UTF-8"));
                continue;
            }
            Err(e) => {
                report.failed.push(format!("{name}: {e}"));
                continue;
            }
        };
        for r in parse_file(&name, &text) {
            match r {
                Err(e) => report.failed.push(e.to_string()),
                Ok(rule) if rule.id.is_none() => report
                    .failed
                    .push(format!("{name}: {}: rule has no id", rule.title)),
                Ok(rule)
                    if rule.status.as_deref().is_some_and(|s| {
                        exclude_status.iter().any(|x| x.eq_ignore_ascii_case(s))
                    }) =>
                {
                    report.excluded += 1;
                }
                Ok(rule) => {
                    report.compiled += 1;
                    stored.push(StoredRule {
                        id: rule.id.clone().unwrap_or_default(),
                        title: rule.title.clone(),
                        source: name.clone(),
                        text: text.clone(),
                        updated: turncoat_core::Time::now(),
                    });
                    compiled.rules.push(rule);
                }
            }
        }
    }
    report.new_or_changed = store.upsert_rules(&stored, ACTOR)?;
    compiled.rules.retain(|r| {
        r.id.as_ref()
            .is_some_and(|id| report.new_or_changed.contains(id))
    });
    if compiled.rules.is_empty() {
        return Ok(report);
    }
    let tenants = store.tenants()?;
    progress.start("sigma retro-hunt", Some(tenants.len() as u64));
    for tenant in &tenants {
        // (rule, endpoint, day) → (first matching event, count)
        let mut hits: HashMap<(usize, String, i64), (Event, u64)> = HashMap::new();
        let mut router = compiled.router();
        store.scan_archive(tenant, None, &mut |e| {
            let mut matched = Vec::new();
            router.matches(&e, |i, _| matched.push(i));
            for i in matched {
                let slot = hits
                    .entry((i, e.host.clone(), e.time.day()))
                    .or_insert_with(|| (e.clone(), 0));
                slot.1 += 1;
                if e.time < slot.0.time {
                    slot.0 = e.clone();
                }
            }
        })?;
        let findings: Vec<_> = hits
            .into_iter()
            .map(|((i, _, _), (e, n))| (finding(&compiled.rules[i], &e, n, None), None))
            .collect();
        let o = store.record_findings(tenant, &findings, FindingMode::Set)?;
        report.retro.push(RetroReport {
            tenant: tenant.name.to_string(),
            new_alerts: o.new_alerts,
            updated_alerts: o.updated_alerts,
        });
        progress.advance(1);
    }
    progress.finish();
    crate::campaign::escalate(
        store,
        crate::campaign::DEFAULT_MIN_TENANTS,
        crate::campaign::DEFAULT_WINDOW_DAYS,
    )?;
    Ok(report)
}
