//! SigmaHQ conformance: every rule parses, and every regression case fires
//! its rule on its own event, read from the `.json` and from the `.evtx`. Skipped with a printed reason when
//! `../shared/data/sigma` is absent.

use std::collections::HashMap;
use std::path::Path;

use turncoat_formats::{Collect, Input, ReadOptions, read_telemetry};
use turncoat_sigma::{Document, Rule, parse_file};

mod support;
use support::{sigma_dir, walk};

fn load_rules(dir: &Path) -> (HashMap<String, Rule>, Vec<String>, usize) {
    let mut files = Vec::new();
    for sub in ["rules", "rules-emerging-threats", "rules-threat-hunting"] {
        walk(&dir.join(sub), "yml", &mut files);
    }
    let mut rules = HashMap::new();
    let mut failures = Vec::new();
    let mut total = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for r in parse_file(&f.display().to_string(), &text) {
            total += 1;
            match r {
                Ok(Document::Rule(rule)) => {
                    if let Some(id) = rule.id.clone() {
                        rules.insert(id, rule);
                    }
                }
                // SigmaHQ's folders hold detection rules only.
                Ok(other) => failures.push(format!("{f:?}: unexpected {other:?}")),
                Err(e) => failures.push(e.to_string()),
            }
        }
    }
    (rules, failures, total)
}

#[test]
fn sigmahq_rules_parse_and_regression_cases_fire() {
    let Some(dir) = sigma_dir() else { return };
    let (rules, failures, total) = load_rules(&dir);
    eprintln!(
        "{} of {total} rules compiled; {} did not:",
        rules.len(),
        failures.len()
    );
    for f in failures.iter().take(30) {
        eprintln!("  {f}");
    }
    assert!(total > 3000, "only {total} rules found");
    // Every failure must be the checked-in list's, with the same reason.
    let prefix = format!("{}/", dir.display());
    let mut got: Vec<String> = failures.iter().map(|f| f.replace(&prefix, "")).collect();
    got.sort();
    let listed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/known-failures.txt"),
    )
    .unwrap();
    let mut want: Vec<String> = listed
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    want.sort();
    assert_eq!(
        got, want,
        "rules that fail to compile differ from tests/known-failures.txt"
    );

    let mut infos = Vec::new();
    walk(&dir.join("regression_data"), "yml", &mut infos);
    let (mut fired, mut cases, mut missing) = (0, 0, Vec::new());
    for info in infos
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "info.yml"))
    {
        let text = std::fs::read_to_string(info).unwrap();
        let doc: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
        let Some(id) = doc["rule_metadata"][0]["id"].as_str() else {
            continue;
        };
        let Some(rule) = rules.get(id) else { continue };
        let folder = info.parent().unwrap();
        let mut jsons = Vec::new();
        walk(folder, "json", &mut jsons);
        walk(folder, "evtx", &mut jsons);
        for json in jsons {
            cases += 1;
            let mut sink = Collect::default();
            read_telemetry(
                &mut Input::open(&json).unwrap(),
                None,
                &ReadOptions::default(),
                &mut sink,
            )
            .unwrap();
            if sink.events().any(|e| rule.matches(e)) {
                fired += 1;
            } else {
                missing.push(format!("{} ({})", rule.title, json.display()));
            }
        }
    }
    eprintln!("regression: {fired} of {cases} cases fire their rule");

    // The router (logsource routing plus the literal prefilter) must find
    // exactly what evaluating every rule finds, on every regression event.
    let set = turncoat_sigma::RuleSet::from_rules(rules.values().cloned().collect());
    let mut router = set.router();
    let mut events = Vec::new();
    walk(&dir.join("regression_data"), "json", &mut events);
    let mut compared = 0;
    for path in &events {
        let mut sink = Collect::default();
        read_telemetry(
            &mut Input::open(path).unwrap(),
            None,
            &ReadOptions::default(),
            &mut sink,
        )
        .unwrap();
        for e in sink.events() {
            let naive: Vec<usize> = set
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.matches(e))
                .map(|(i, _)| i)
                .collect();
            let mut routed = Vec::new();
            router.matches(e, |i, _| routed.push(i));
            routed.sort_unstable();
            assert_eq!(routed, naive, "{}", path.display());
            compared += 1;
        }
    }
    assert!(compared > 200);
    for m in missing.iter().take(20) {
        eprintln!("  missed: {m}");
    }
    assert!(cases > 300, "only {cases} regression cases");
    assert_eq!(
        fired, cases,
        "every regression case, from .json and .evtx, fires its rule"
    );
}

/// Every Windows `service` a SigmaHQ rule names is a log the readers file
/// under it: an event on each of its channels reaches the rule.
#[test]
fn every_windows_service_sigmahq_names_maps_to_a_channel() {
    let Some(dir) = sigma_dir() else { return };
    let (rules, _, _) = load_rules(&dir);
    let mut services: HashMap<String, Vec<&Rule>> = HashMap::new();
    for rule in rules.values() {
        if rule.product.as_deref() == Some("windows")
            && let Some(s) = &rule.service
        {
            services.entry(s.clone()).or_default().push(rule);
        }
    }
    assert!(services.len() > 30, "only {} services", services.len());
    let mut unmapped = Vec::new();
    for (service, rules) in &services {
        let channels: Vec<&str> = turncoat_formats::logsource::windows_channels(service).collect();
        if channels.is_empty() {
            unmapped.push(service.clone());
        }
        for channel in channels {
            let event = turncoat_core::Event {
                time: turncoat_core::Time::from_epoch_secs(0),
                host: "h".into(),
                logsource: turncoat_formats::logsource::windows(None, Some(channel), Some(1)),
                fields: turncoat_core::Fields::new(),
            };
            for rule in rules.iter().filter(|r| r.category.is_none()) {
                assert!(rule.applies_to(&event), "{} on {channel}", rule.title);
            }
        }
    }
    unmapped.sort();
    assert!(
        unmapped.is_empty(),
        "services with no channel: {unmapped:?}"
    );
    eprintln!(
        "{} Windows services used by SigmaHQ rules, all mapped",
        services.len()
    );
}
