//! Offline hunting, like Chainsaw or Hayabusa but over every input the
//! readers take: Sigma rules (and, optionally, intel) against log files,
//! with no data directory. Files are shared among worker threads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Instant;

use serde::Serialize;
use turncoat_core::{Event, Fields, Time, Value};
use turncoat_detect::IndicatorIndex;
use turncoat_formats::{Input, Location, ReadIssue, ReadOptions, Record, Sink, read_telemetry};
use turncoat_sigma::RuleSet;

use crate::Result;
use crate::progress::Progress;

/// One rule (or indicator) matching one event.
#[derive(Clone, Debug, Serialize)]
pub struct Detection {
    pub rule_id: Option<String>,
    pub rule_title: String,
    pub level: String,
    pub timestamp: Time,
    pub host: String,
    pub file: String,
    /// The EVTX record id, for Windows events.
    pub record_id: Option<i64>,
    pub event: Fields,
}

/// What a hunt read and found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HuntSummary {
    pub files: usize,
    pub events: u64,
    pub skipped_records: u64,
    pub rules_loaded: usize,
    /// Rules that did not compile, with file, line and reason.
    pub rules_failed: Vec<String>,
    /// Rules no reader can feed, counted by logsource.
    pub rules_unproducible: BTreeMap<String, usize>,
    pub detections: u64,
    pub detections_per_rule: BTreeMap<String, u64>,
    /// Inputs that could not be read at all.
    pub unreadable: Vec<String>,
    /// Rules disabled for exceeding the per-event time budget, with why.
    pub rules_over_budget: Vec<String>,
    pub seconds: f64,
}

/// What the workers read, summed as they finish.
#[derive(Default)]
struct Totals {
    events: u64,
    skipped: u64,
    unreadable: Vec<String>,
    over_budget: Vec<String>,
}

/// What workers send the collecting thread.
enum Message {
    Detection(Detection),
    /// A match of a rule that correlations count, judged once all files
    /// are read, in time order.
    Counted(usize, Detection),
}

struct HuntSink<'a, 'r> {
    router: turncoat_sigma::Router<'r>,
    /// Per rule: whether it alerts on its own, whether correlations count it.
    roles: &'a [(bool, bool)],
    intel: Option<&'a IndicatorIndex>,
    file: String,
    tx: mpsc::Sender<Message>,
    events: u64,
    skipped: u64,
    observables: Vec<turncoat_core::Observable>,
    matches: Vec<turncoat_detect::IocMatch>,
}

fn record_id(e: &Event) -> Option<i64> {
    match e.fields.get("EventRecordID") {
        Some(Value::Int(i)) => Some(*i),
        Some(Value::Str(s)) => s.parse().ok(),
        _ => None,
    }
}

impl Sink for HuntSink<'_, '_> {
    fn record(&mut self, record: Record, _: Location) {
        let Record::Event(e) = record else { return };
        self.events += 1;
        let (tx, file) = (&self.tx, &self.file);
        let detection = |rule_id: Option<String>, rule_title: String, level: String| Detection {
            rule_id,
            rule_title,
            level,
            timestamp: e.time,
            host: e.host.clone(),
            file: file.clone(),
            record_id: record_id(&e),
            event: e.fields.clone(),
        };
        let roles = self.roles;
        self.router.matches(&e, |i, r| {
            let (alerts, counted) = roles[i];
            let d = || {
                detection(
                    r.id.clone(),
                    r.title.clone(),
                    r.level.clone().unwrap_or_else(|| "informational".into()),
                )
            };
            if alerts {
                let _ = tx.send(Message::Detection(d()));
            }
            if counted {
                let _ = tx.send(Message::Counted(i, d()));
            }
        });
        if let Some(index) = self.intel {
            turncoat_core::observable::extract(&e, &mut self.observables);
            index.match_event(&self.observables, e.time, &mut self.matches);
            for m in &self.matches {
                let ind = index.get(m.indicator);
                let title = format!(
                    "IOC {} {} seen as {}",
                    ind.kind, ind.value, self.observables[m.observable].value
                );
                let _ = tx.send(Message::Detection(detection(
                    Some(format!("ioc:{}", ind.value)),
                    title,
                    "high".into(),
                )));
            }
        }
    }

    fn skipped(&mut self, _: ReadIssue) {
        self.skipped += 1;
    }
}

impl HuntSummary {
    fn report(&mut self, d: Detection, emit: &mut dyn FnMut(Detection)) {
        self.detections += 1;
        *self
            .detections_per_rule
            .entry(d.rule_title.clone())
            .or_default() += 1;
        emit(d);
    }
}

/// Runs the correlations over the matches they count, in time order (files
/// are read in parallel, so arrival order means nothing).
fn correlate(
    rules: &RuleSet,
    mut correlator: turncoat_sigma::correlation::Correlator<'_>,
    mut counted: Vec<(usize, Detection)>,
    emit: &mut dyn FnMut(Detection),
) {
    counted.sort_by(|a, b| {
        (a.1.timestamp, &a.1.file, a.1.record_id).cmp(&(b.1.timestamp, &b.1.file, b.1.record_id))
    });
    let mut hits = Vec::new();
    for (n, (i, d)) in counted.iter().enumerate() {
        correlator.observe(*i, d.timestamp, &d.host, &d.event, n as u64, &mut hits);
    }
    correlator.flush(None, &mut hits);
    for hit in hits {
        let c = &rules.correlations[hit.correlation];
        if !c.alerts {
            continue;
        }
        let mut event: Fields = hit
            .group
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        event.push("correlation_type", c.kind_name());
        event.push("correlation_value", Value::Float(hit.value));
        event.push("first_seen", hit.first.to_rfc3339());
        emit(Detection {
            rule_id: c.id.clone(),
            rule_title: c.title.clone(),
            level: c.level.clone().unwrap_or_else(|| "informational".into()),
            timestamp: hit.last,
            // The file of the event that completed it.
            file: counted
                .get(hit.origin as usize)
                .map(|(_, d)| d.file.clone())
                .unwrap_or_default(),
            host: hit.host,
            record_id: None,
            event,
        });
    }
}

/// Hunts `inputs` with `rules` (and `intel`), on `threads` threads, calling
/// `emit` with every detection as it is found.
pub fn hunt(
    rules: &RuleSet,
    intel: Option<&IndicatorIndex>,
    inputs: &[PathBuf],
    threads: usize,
    progress: &dyn Progress,
    emit: &mut dyn FnMut(Detection),
) -> Result<HuntSummary> {
    let started = Instant::now();
    let walk = turncoat_walk::walk(inputs, &turncoat_walk::WalkOptions::all_files());
    let files: Vec<PathBuf> = walk.paths().map(Path::to_owned).collect();
    let mut summary = HuntSummary {
        files: files.len(),
        rules_loaded: rules.rules.len(),
        rules_failed: rules.failed.iter().map(ToString::to_string).collect(),
        rules_unproducible: crate::rules::unproducible(&rules.rules),
        ..Default::default()
    };
    progress.start("hunt", None);
    let correlator = rules.correlator();
    let roles: Vec<(bool, bool)> = (0..rules.rules.len())
        .map(|i| (rules.rules[i].alerts, correlator.consumes(i)))
        .collect();
    let queue = Mutex::new(files.iter());
    let totals = Mutex::new(Totals::default());
    let (tx, rx) = mpsc::channel::<Message>();
    let mut counted = Vec::new();
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            let tx = tx.clone();
            let (queue, totals, roles) = (&queue, &totals, &roles);
            scope.spawn(move || {
                // One router per thread, so a rule's budget strikes add up
                // across files.
                let mut sink = HuntSink {
                    router: rules.router(),
                    roles,
                    intel,
                    file: String::new(),
                    tx,
                    events: 0,
                    skipped: 0,
                    observables: Vec::new(),
                    matches: Vec::new(),
                };
                let mut unreadable = Vec::new();
                loop {
                    let next = queue.lock().map(|mut q| q.next().cloned()).unwrap_or(None);
                    let Some(path) = next else { break };
                    sink.file = path.display().to_string();
                    let result =
                        Input::open(&path)
                            .map_err(|e| e.to_string())
                            .and_then(|mut input| {
                                read_telemetry(&mut input, None, &ReadOptions::default(), &mut sink)
                                    .map_err(|e| e.to_string())
                            });
                    if let Err(e) = result {
                        unreadable.push(e);
                    }
                }
                if let Ok(mut t) = totals.lock() {
                    t.events += sink.events;
                    t.skipped += sink.skipped;
                    t.unreadable.extend(unreadable);
                    t.over_budget
                        .extend(sink.router.disabled().iter().map(|(_, why)| why.clone()));
                }
            });
        }
        drop(tx);
        for m in rx {
            match m {
                Message::Detection(d) => summary.report(d, emit),
                Message::Counted(i, d) => counted.push((i, d)),
            }
        }
    });
    correlate(rules, correlator, counted, &mut |d| summary.report(d, emit));
    let totals = totals.into_inner().unwrap_or_default();
    summary.events = totals.events;
    summary.skipped_records = totals.skipped;
    summary.unreadable = walk.unread();
    summary.unreadable.extend(totals.unreadable);
    summary.rules_over_budget = totals.over_budget;
    summary.rules_over_budget.sort();
    summary.rules_over_budget.dedup();
    progress.finish();
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}
