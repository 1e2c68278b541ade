//! Shared by the SigmaHQ conformance test, the rsigma differential test
//! and the rsigma benchmark: the corpus, the events, and rsigma's view of
//! them.

#![allow(dead_code)] // each user takes a different part

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use turncoat_core::{Event, Value};
use turncoat_formats::{Collect, Format, Input, ReadOptions, Record, read_telemetry};

/// `../shared/data/sigma`, or `None` with the reason printed.
pub fn sigma_dir() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sigma");
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipped: {} is absent", p.display());
        None
    }
}

pub fn walk(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

/// Rule files of the three SigmaHQ folders the issue names.
pub fn rule_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for sub in ["rules", "rules-emerging-threats", "rules-threat-hunting"] {
        walk(&dir.join(sub), "yml", &mut files);
    }
    files
}

fn events_of(path: &Path, format: Option<Format>) -> Vec<Event> {
    let mut sink = Collect::default();
    read_telemetry(
        &mut Input::open(path).unwrap(),
        format,
        &ReadOptions::default(),
        &mut sink,
    )
    .unwrap();
    sink.records
        .into_iter()
        .filter_map(|(r, _)| match r {
            Record::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// Every event of the regression cases, from their `.json` files.
pub fn regression_events(dir: &Path) -> Vec<Event> {
    let mut files = Vec::new();
    walk(&dir.join("regression_data"), "json", &mut files);
    files.iter().flat_map(|f| events_of(f, None)).collect()
}

/// Simulator endpoint events (ECS: processes, DNS, image loads, network,
/// files, web), about `n` of them, with the 3CX compromise planted.
pub fn simulator_events(n: u64) -> Vec<Event> {
    let dir = tempfile::tempdir().unwrap();
    let cfg = turncoat_sim::Config {
        tenants: 1,
        endpoints: 50,
        days: 21,
        seed: 9,
        scenario: turncoat_sim::Scenario::ThreeCx,
        events_per_endpoint_day: (n / (50 * 21)).max(1),
        ..turncoat_sim::Config::default()
    };
    let (truth, _) = turncoat_sim::simulate(&cfg, dir.path(), &mut |_| {}).unwrap();
    let ecs = dir.path().join(&truth.tenants[0].name).join("ecs.ndjson");
    events_of(&ecs, Some(Format::Ecs))
}

fn json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Float(f) => (*f).into(),
        Value::Str(s) => s.as_str().into(),
        Value::List(items) => items.iter().map(json).collect(),
    }
}

/// The event as the flat JSON object rsigma evaluates.
pub fn to_json(e: &Event) -> serde_json::Value {
    e.fields
        .iter()
        .map(|(k, v)| (k.to_owned(), json(v)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

pub fn rsigma_logsource(e: &Event) -> rsigma_parser::LogSource {
    rsigma_parser::LogSource {
        category: e.logsource.category.as_deref().map(str::to_owned),
        product: e.logsource.product.as_deref().map(str::to_owned),
        service: e.logsource.service.as_deref().map(str::to_owned),
        ..Default::default()
    }
}

/// rsigma's engine over the same files, with the rules it refused.
pub fn rsigma_engine(files: &[PathBuf]) -> (rsigma_eval::Engine, Vec<String>) {
    let mut engine = rsigma_eval::Engine::new();
    let mut refused = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        match rsigma_parser::parse_sigma_yaml(&text) {
            Ok(collection) => {
                for e in &collection.errors {
                    refused.push(format!("{}: {e}", f.display()));
                }
                for rule in &collection.rules {
                    if let Err(e) = engine.add_rule(rule) {
                        refused.push(format!("{}: {e}", f.display()));
                    }
                }
            }
            Err(e) => refused.push(format!("{}: {e}", f.display())),
        }
    }
    (engine, refused)
}

/// Rule ids rsigma matches on `e`.
pub fn rsigma_matches(engine: &rsigma_eval::Engine, e: &Event) -> BTreeSet<String> {
    let v = to_json(e);
    let event = rsigma_eval::JsonEvent::borrow(&v);
    engine
        .evaluate_with_logsource(&event, &rsigma_logsource(e))
        .into_iter()
        .filter_map(|r| r.header.rule_id)
        .collect()
}
