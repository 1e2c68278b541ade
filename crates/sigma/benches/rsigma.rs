//! turncoat's Sigma engine beside rsigma on the same rules and events, in
//! the same run: all SigmaHQ rules (three folders) over simulator events
//! plus the regression events, on one core and on every core.
//!
//! `cargo bench -p turncoat-sigma --bench rsigma` (events: the
//! `TURNCOAT_BENCH_EVENTS` variable, default 1,000,000). Skipped with a
//! printed reason when `../shared/data/sigma` is absent.

use std::collections::BTreeSet;
use std::time::Instant;

use turncoat_core::Event;
use turncoat_sigma::RuleSet;

#[path = "../tests/support/mod.rs"]
mod support;
use support::{
    regression_events, rsigma_engine, rsigma_logsource, rule_files, sigma_dir, simulator_events,
    to_json,
};

/// Resident memory now, in MB (Linux).
fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |pages| pages * 4096.0 / 1e6)
}

/// Splits `items` over `threads` threads, summing what `work` returns.
fn parallel<T: Sync>(items: &[T], threads: usize, work: &(dyn Fn(&[T]) -> u64 + Sync)) -> u64 {
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(move || work(part)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

fn main() {
    let Some(dir) = sigma_dir() else { return };
    let wanted: u64 = std::env::var("TURNCOAT_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let files = rule_files(&dir);

    let before = rss_mb();
    let started = Instant::now();
    let ours = RuleSet::load(&files).unwrap();
    // The prefilter is built on first use: build it inside the timing.
    drop(ours.router());
    let our_compile = started.elapsed().as_secs_f64();
    let our_memory = rss_mb() - before;

    let before = rss_mb();
    let started = Instant::now();
    let (theirs, refused) = rsigma_engine(&files);
    let their_compile = started.elapsed().as_secs_f64();
    let their_memory = rss_mb() - before;

    let mut events: Vec<Event> = regression_events(&dir);
    let regression = events.len();
    events.extend(simulator_events(wanted.saturating_sub(events.len() as u64)));
    // rsigma reads JSON events; converting is not part of its timing.
    let json: Vec<(serde_json::Value, rsigma_parser::LogSource)> = events
        .iter()
        .map(|e| (to_json(e), rsigma_logsource(e)))
        .collect();
    let n = events.len() as f64;
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());

    let ours_on = |part: &[Event]| {
        let mut router = ours.router();
        let mut hits = 0u64;
        for e in part {
            router.matches(e, |_, _| hits += 1);
        }
        hits
    };
    let theirs_on = |part: &[(serde_json::Value, rsigma_parser::LogSource)]| {
        part.iter()
            .map(|(v, ls)| {
                let event = rsigma_eval::JsonEvent::borrow(v);
                theirs.evaluate_with_logsource(&event, ls).len() as u64
            })
            .sum::<u64>()
    };
    let time = |f: &dyn Fn() -> u64| {
        let started = Instant::now();
        let hits = f();
        (hits, n / started.elapsed().as_secs_f64())
    };
    let (their_hits, their_one) = time(&|| theirs_on(&json));
    let (our_hits, our_one) = time(&|| ours_on(&events));
    let (their_hits_all, their_all) = time(&|| parallel(&json, threads, &theirs_on));
    let (our_hits_all, our_all) = time(&|| parallel(&events, threads, &ours_on));
    assert_eq!(our_hits, our_hits_all);
    assert_eq!(their_hits, their_hits_all);

    // Identical matches, pair by pair, apart from the listed disagreements.
    let mut differing = 0u64;
    let mut router = ours.router();
    for (e, (v, ls)) in events.iter().zip(&json) {
        let mut mine = BTreeSet::new();
        router.matches(e, |_, r| {
            mine.insert(r.id.clone());
        });
        let event = rsigma_eval::JsonEvent::borrow(v);
        let other: BTreeSet<Option<String>> = theirs
            .evaluate_with_logsource(&event, ls)
            .into_iter()
            .map(|r| r.header.rule_id)
            .collect();
        differing += mine.symmetric_difference(&other).count() as u64;
    }

    println!(
        "{} SigmaHQ rules over {} events ({} regression, the rest simulator); {threads} cores",
        ours.rules.len(),
        events.len(),
        regression,
    );
    println!("engine     compile s  memory MB  ev/s 1 core  ev/s {threads} cores  detections");
    println!(
        "rsigma     {their_compile:9.2}  {their_memory:9.0}  {their_one:11.0}  {their_all:12.0}  {their_hits}  (refused {} rules)",
        refused.len()
    );
    println!(
        "turncoat   {our_compile:9.2}  {our_memory:9.0}  {our_one:11.0}  {our_all:12.0}  {our_hits}"
    );
    println!(
        "ratio      {:9.2}x {:9.2}x {:10.2}x {:11.2}x   (rsigma / turncoat for compile and memory, turncoat / rsigma for speed)",
        their_compile / our_compile,
        their_memory / our_memory.max(1.0),
        our_one / their_one,
        our_all / their_all
    );
    println!("(rule, event) pairs matched by one engine only: {differing}");
}
