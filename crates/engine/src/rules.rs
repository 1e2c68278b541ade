//! Sigma rules in the product: import (stored as text, compiled on load),
//! live matching during ingest, and a retro-hunt over every tenant's
//! archive when rules are new or changed. Correlation rules ride on the
//! same matches ([`Evaluation`]); filters are folded into the rules they
//! name when the set is built.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::Serialize;
use turncoat_core::{Actor, AlertKind, Event, Evidence, Finding, FindingKey, Severity};
use turncoat_sigma::correlation::{Correlation, CorrelationHit, Correlator};
use turncoat_sigma::{Document, Router, Rule, RuleSet, parse_file};
use turncoat_store::{FindingMode, Store, StoredRule};

use crate::Result;
use crate::intel::{HandOff, QueuedRetro, RetroPlan, RetroReport, offer_retro};
use crate::progress::Progress;

/// Evidence keeps at most this much of the matched event's JSON.
const MAX_EVIDENCE_BYTES: usize = 4096;

/// What a rules import did.
#[derive(Clone, Debug, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RulesReport {
    pub files: usize,
    pub compiled: usize,
    /// Rules that did not compile or carry no id, with file, line and reason.
    pub failed: Vec<String>,
    /// Rules left out by status.
    pub excluded: usize,
    pub new_or_changed: Vec<String>,
    /// Imported rules no reader can feed, counted by logsource: they load
    /// but can never fire.
    pub unproducible: BTreeMap<String, usize>,
    pub retro: Vec<RetroReport>,
    /// The retro-hunt, when workers do it rather than the importer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retro_queued: Option<QueuedRetro>,
    /// Why a retro-hunt meant for the workers was done here instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retro_not_queued: Option<String>,
}

/// Rules whose logsource no reader produces, counted by logsource
/// (`product/category/service`).
pub fn unproducible<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in rules {
        let (product, category, service) = (
            r.product.as_deref(),
            r.category.as_deref(),
            r.service.as_deref(),
        );
        if !turncoat_formats::logsource::producible(product, category, service) {
            let logsource = turncoat_core::Logsource::new(product, category, service);
            *counts.entry(logsource.to_string()).or_default() += 1;
        }
    }
    counts
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

fn truncated(mut detail: String) -> String {
    if detail.len() > MAX_EVIDENCE_BYTES {
        let mut cut = MAX_EVIDENCE_BYTES;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
    }
    detail
}

/// A `sigma` finding: one rule on one endpoint on one day.
pub fn finding(rule: &Rule, event: &Event, count: u64, file: Option<String>) -> Finding {
    let detail = truncated(serde_json::to_string(&event.fields).unwrap_or_default());
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
        key: FindingKey::rule_day(event.time.day()),
        first_seen: event.time,
        last_seen: event.time,
        count,
        evidence: Evidence {
            observed,
            time: event.time,
            file,
            detail: Some(detail),
            before_valid_from: false,
        },
    }
}

/// A `sigma` finding for a correlation that fired: one correlation, group
/// and day, on the endpoint whose event completed it.
pub fn correlation_finding(
    correlation: &Correlation,
    hit: &CorrelationHit,
    file: Option<String>,
) -> Finding {
    let group = hit
        .group
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let detail = serde_json::json!({
        "correlation": correlation.kind_name(),
        "rules": correlation.rules,
        "group": hit.group.iter().cloned().collect::<HashMap<_, _>>(),
        "value": hit.value,
        "first": hit.first,
        "last": hit.last,
    });
    Finding {
        endpoint: hit.host.clone(),
        kind: AlertKind::Sigma,
        source: correlation
            .id
            .clone()
            .unwrap_or_else(|| correlation.title.clone()),
        title: correlation.title.clone(),
        severity: severity(correlation.level.as_deref()),
        campaign: None,
        key: FindingKey::correlation(&group, hit.first.day()),
        first_seen: hit.first,
        last_seen: hit.last,
        count: hit.value as u64,
        evidence: Evidence {
            observed: if group.is_empty() {
                correlation.title.clone()
            } else {
                group
            },
            time: hit.last,
            file,
            detail: Some(truncated(detail.to_string())),
            before_valid_from: false,
        },
    }
}

/// One stream's Sigma evaluation: the router for detection rules and the
/// correlator their matches feed.
pub struct Evaluation<'a> {
    pub set: &'a RuleSet,
    router: Router<'a>,
    correlator: Correlator<'a>,
    matched: Vec<usize>,
    hits: Vec<CorrelationHit>,
    /// The latest event time evaluated.
    latest: Option<turncoat_core::Time>,
}

/// What is kept of a stream's evaluation between runs.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedEvaluation {
    latest: Option<turncoat_core::Time>,
    windows: turncoat_sigma::correlation::CorrelatorState,
}

/// The stream-state name correlation windows are kept under.
const CORRELATION_STATE: &str = "sigma-correlation";

impl<'a> Evaluation<'a> {
    pub fn new(set: &'a RuleSet) -> Evaluation<'a> {
        Evaluation {
            set,
            router: set.router(),
            correlator: set.correlator(),
            matched: Vec::new(),
            hits: Vec::new(),
            latest: None,
        }
    }

    /// Takes up the correlation windows a tenant's previous run left open
    /// (or saved with its last batch before it was killed). Unreadable
    /// state is dropped: windows then start empty.
    pub fn resume(&mut self, store: &dyn Store, tenant: &turncoat_store::Tenant) -> Result<()> {
        if self.set.correlations.is_empty() {
            return Ok(());
        }
        let Some(bytes) = store.stream_state(tenant, CORRELATION_STATE)? else {
            return Ok(());
        };
        if let Ok(saved) = serde_json::from_slice::<SavedEvaluation>(&bytes) {
            self.latest = self.latest.max(saved.latest);
            self.correlator.restore(saved.windows);
        } else if let Ok(windows) = serde_json::from_slice(&bytes) {
            // Saved before the latest event time was kept with the windows.
            self.correlator.restore(windows);
        }
        Ok(())
    }

    /// The open windows and the latest event time, as stream state: saved
    /// with every batch, so that a run killed after a batch resumes with
    /// exactly the windows that batch left. `None` without correlations.
    pub fn saved(&self) -> Option<(&'static str, Vec<u8>)> {
        if self.set.correlations.is_empty() {
            return None;
        }
        let saved = SavedEvaluation {
            latest: self.latest,
            windows: self.correlator.snapshot(),
        };
        Some((
            CORRELATION_STATE,
            serde_json::to_vec(&saved).unwrap_or_default(),
        ))
    }

    /// Judges the windows over before the latest event, and returns the
    /// state to keep for the tenant's next run: the caller stores it in
    /// the transaction that records the judged windows' findings, so that
    /// they are neither lost nor recorded twice.
    pub fn suspend(
        &mut self,
        correlation: &mut dyn FnMut(&'a Correlation, &CorrelationHit),
    ) -> Option<(&'static str, Vec<u8>)> {
        if self.set.correlations.is_empty() {
            return None;
        }
        if self.latest.is_some() {
            self.correlator.flush(self.latest, &mut self.hits);
            self.report(correlation);
        }
        self.saved()
    }

    /// Calls `rule` with every alerting rule the event matches, and
    /// `correlation` with every correlation that fires on it.
    pub fn evaluate(
        &mut self,
        event: &Event,
        rule: &mut dyn FnMut(usize, &'a Rule),
        correlation: &mut dyn FnMut(&'a Correlation, &CorrelationHit),
    ) {
        self.latest = self.latest.max(Some(event.time));
        self.matched.clear();
        let matched = &mut self.matched;
        self.router.matches(event, |i, _| matched.push(i));
        for &i in &self.matched {
            let r = &self.set.rules[i];
            if r.alerts {
                rule(i, r);
            }
            if self.correlator.consumes(i) {
                // Ingest names the file being read: no origin to keep.
                self.correlator.observe(
                    i,
                    event.time,
                    &event.host,
                    &event.fields,
                    0,
                    &mut self.hits,
                );
            }
        }
        self.report(correlation);
    }

    /// Rules disabled for exceeding the time budget, with why.
    pub fn over_budget(&self) -> Vec<String> {
        self.router
            .disabled()
            .iter()
            .map(|(_, why)| why.clone())
            .collect()
    }

    /// Judges the windows still open at the end of the stream.
    pub fn finish(&mut self, correlation: &mut dyn FnMut(&'a Correlation, &CorrelationHit)) {
        self.correlator.flush(None, &mut self.hits);
        self.report(correlation);
    }

    fn report(&mut self, correlation: &mut dyn FnMut(&'a Correlation, &CorrelationHit)) {
        for hit in self.hits.drain(..) {
            let c = &self.set.correlations[hit.correlation];
            if c.alerts {
                correlation(c, &hit);
            }
        }
    }
}

/// Compiles the stored rules, correlations and filters.
pub fn load(store: &dyn Store) -> Result<RuleSet> {
    let mut documents = Vec::new();
    let mut failed = Vec::new();
    for stored in store.rules()? {
        for r in parse_file(&stored.source, &stored.text) {
            match r {
                Ok(doc) if doc.id() == Some(stored.id.as_str()) => {
                    documents.push((stored.source.clone(), doc))
                }
                Ok(_) => {}
                Err(e) => failed.push(e),
            }
        }
    }
    Ok(RuleSet::build(documents, failed))
}

/// Imports rule files, then retro-hunts every tenant's archive with the
/// rules and correlations that are new or changed (a changed filter
/// changes the rules it names; a changed rule, the correlations over it):
/// here, or by the cluster's workers when `hand_off` takes the hunt.
/// Files are named (in the store, the report and errors) by their path,
/// or by their path below `names_below` when given: an upload's spool,
/// so that the rule names the file sent, never where the server put it.
pub fn import(
    store: &mut dyn Store,
    paths: &[PathBuf],
    names_below: Option<&std::path::Path>,
    exclude_status: &[String],
    progress: &dyn Progress,
    actor: &Actor,
    hand_off: Option<HandOff<'_>>,
) -> Result<RulesReport> {
    let walk = turncoat_walk::walk(paths, &turncoat_sigma::RuleSet::walk_options());
    let mut report = RulesReport {
        failed: walk.unread(),
        ..RulesReport::default()
    };
    let mut stored = Vec::new();
    let mut imported = Vec::new();
    for path in walk.paths() {
        report.files += 1;
        let name = names_below
            .and_then(|root| path.strip_prefix(root).ok())
            .unwrap_or(path)
            .display()
            .to_string();
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
                Ok(doc) if doc.id().is_none() => report
                    .failed
                    .push(format!("{name}: {}: rule has no id", doc.title())),
                Ok(doc)
                    if doc.status().is_some_and(|s| {
                        exclude_status.iter().any(|x| x.eq_ignore_ascii_case(s))
                    }) =>
                {
                    report.excluded += 1;
                }
                Ok(doc) => {
                    report.compiled += 1;
                    stored.push(StoredRule {
                        id: doc.id().unwrap_or_default().to_owned(),
                        title: doc.title().to_owned(),
                        source: name.clone(),
                        text: text.clone(),
                        updated: turncoat_core::Time::now(),
                    });
                    imported.push(doc);
                }
            }
        }
    }
    report.unproducible = unproducible(imported.iter().filter_map(|d| match d {
        Document::Rule(r) => Some(r),
        _ => None,
    }));
    report.new_or_changed = store.upsert_rules(&stored, actor)?;
    if report.new_or_changed.is_empty() {
        return Ok(report);
    }
    // The content's key moved with the rules: the live index is saved
    // under the new one now, so that no ingest pays for rebuilding it.
    crate::load_intel(store)?;
    let set = load(store)?;
    let files: Vec<&str> = stored.iter().map(|s| s.source.as_str()).collect();
    report.failed.extend(
        set.failed
            .iter()
            .filter(|e| files.contains(&e.file.as_str()))
            .map(ToString::to_string),
    );
    let changed = Changed::by_import(&set, &imported, &report.new_or_changed);
    if !changed.any() {
        return Ok(report);
    }
    let tenants = store.tenants()?;
    match offer_retro(hand_off, &changed.plan(&set), &tenants) {
        Ok(queued) => {
            report.retro_queued = Some(queued);
            return Ok(report);
        }
        Err(why) => report.retro_not_queued = why,
    }
    progress.start("sigma retro-hunt", Some(tenants.len() as u64));
    for tenant in &tenants {
        report
            .retro
            .push(hunt_tenant(store, tenant, &set, &changed)?);
        progress.advance(1);
    }
    progress.finish();
    crate::campaign::escalate_after_change(store, actor)?;
    Ok(report)
}

/// Which rules and correlations of a set a retro-hunt runs, by position.
pub(crate) struct Changed {
    rules: Vec<bool>,
    correlations: Vec<bool>,
}

impl Changed {
    /// What an import changed: the rules and correlations it stored anew
    /// (`ids`), the rules its changed filters name, and the correlations
    /// over a changed rule.
    fn by_import(set: &RuleSet, imported: &[Document], ids: &[String]) -> Changed {
        let changed = |id: &Option<String>| id.as_ref().is_some_and(|id| ids.contains(id));
        let filtered: Vec<&String> = imported
            .iter()
            .filter_map(|d| match d {
                Document::Filter(f) if changed(&f.id) => Some(&f.rules),
                _ => None,
            })
            .flatten()
            .collect();
        let rules: Vec<bool> = set
            .rules
            .iter()
            .map(|r| {
                changed(&r.id)
                    || filtered
                        .iter()
                        .any(|x| r.id.as_ref() == Some(*x) || r.name.as_ref() == Some(*x))
            })
            .collect();
        let correlations = set
            .correlations
            .iter()
            .map(|c| {
                changed(&c.id)
                    || c.sources.iter().any(
                        |s| matches!(s, turncoat_sigma::correlation::Source::Rule(i) if rules[*i]),
                    )
            })
            .collect();
        Changed {
            rules,
            correlations,
        }
    }

    /// The rules and correlations of `set` a plan names by id.
    pub(crate) fn named(set: &RuleSet, rules: &[String], correlations: &[String]) -> Changed {
        let named =
            |id: &Option<String>, ids: &[String]| id.as_ref().is_some_and(|id| ids.contains(id));
        Changed {
            rules: set.rules.iter().map(|r| named(&r.id, rules)).collect(),
            correlations: set
                .correlations
                .iter()
                .map(|c| named(&c.id, correlations))
                .collect(),
        }
    }

    fn any(&self) -> bool {
        self.rules.contains(&true) || self.correlations.contains(&true)
    }

    /// The plan naming these rules and correlations (every stored rule
    /// has an id: import refuses one without).
    fn plan(&self, set: &RuleSet) -> RetroPlan {
        RetroPlan {
            rules: flagged(set.rules.iter().map(|r| &r.id), &self.rules),
            correlations: flagged(set.correlations.iter().map(|c| &c.id), &self.correlations),
            ..RetroPlan::default()
        }
    }
}

/// The ids whose flag is set.
fn flagged<'a>(ids: impl Iterator<Item = &'a Option<String>>, flags: &[bool]) -> Vec<String> {
    ids.zip(flags)
        .filter(|(_, on)| **on)
        .filter_map(|(id, _)| id.clone())
        .collect()
}

/// Runs the changed rules and correlations over one tenant's archive and
/// records what they find.
pub(crate) fn hunt_tenant(
    store: &mut dyn Store,
    tenant: &turncoat_store::Tenant,
    set: &RuleSet,
    changed: &Changed,
) -> Result<RetroReport> {
    // (rule, endpoint, day) → (first matching event, count)
    let mut hits: HashMap<(usize, String, i64), (Event, u64)> = HashMap::new();
    // (source, key) → correlation finding
    let mut fired: HashMap<(String, FindingKey), Finding> = HashMap::new();
    let mut evaluation = Evaluation::new(set);
    let mut record = |c: &Correlation, hit: &CorrelationHit| {
        if changed.correlations[hit.correlation] {
            let f = correlation_finding(c, hit, None);
            fired.entry((f.source.clone(), f.key.clone())).or_insert(f);
        }
    };
    store.scan_archive(tenant, None, turncoat_store::Projection::ALL, &mut |e| {
        let mut matched = Vec::new();
        evaluation.evaluate(
            &e,
            &mut |i, _| {
                if changed.rules[i] {
                    matched.push(i)
                }
            },
            &mut record,
        );
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
    evaluation.finish(&mut record);
    let findings: Vec<_> = hits
        .into_iter()
        .map(|((i, _, _), (e, n))| (finding(&set.rules[i], &e, n, None), None))
        .chain(fired.into_values().map(|f| (f, None)))
        .collect();
    let o = store.record_findings(tenant, &findings, FindingMode::Set)?;
    Ok(RetroReport {
        tenant: tenant.name().to_string(),
        new_alerts: o.new_alerts,
        updated_alerts: o.updated_alerts,
        resurfaced: o.resurfaced,
    })
}
