//! Differential test against rsigma, an independent Sigma engine: the
//! SigmaHQ rules over the regression events and simulator events must
//! give the same (rule, event) matches in both, except the disagreements
//! listed, each with the specification clause that decides it, in
//! `tests/rsigma-disagreements.txt`. Skipped with a printed reason when
//! `../shared/data/sigma` is absent.

use std::collections::{BTreeMap, BTreeSet};

use turncoat_sigma::RuleSet;

mod support;
use support::{
    regression_events, rsigma_engine, rsigma_matches, rule_files, sigma_dir, simulator_events,
};

/// Which engine matched where the other did not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    OnlyTurncoat,
    OnlyRsigma,
}

#[test]
fn turncoat_and_rsigma_agree_on_sigmahq() {
    let Some(dir) = sigma_dir() else { return };
    let files = rule_files(&dir);
    let ours = RuleSet::load(&files).unwrap();
    let (theirs, refused) = rsigma_engine(&files);
    eprintln!(
        "turncoat: {} rules, {} failed; rsigma: {} rules, {} refused",
        ours.rules.len(),
        ours.failed.len(),
        theirs.rule_count(),
        refused.len()
    );
    for r in &refused {
        eprintln!("rsigma refused: {r}");
    }
    let mut events = regression_events(&dir);
    let regression = events.len();
    events.extend(simulator_events(30_000));
    let mut router = ours.router();
    // (rule id, side) → events
    let mut disagreements: BTreeMap<(String, Side), usize> = BTreeMap::new();
    let mut agreed = 0usize;
    for e in &events {
        let mut mine = BTreeSet::new();
        router.matches(e, |_, r| {
            if let Some(id) = &r.id {
                mine.insert(id.clone());
            }
        });
        let other = rsigma_matches(&theirs, e);
        agreed += mine.intersection(&other).count();
        for id in mine.difference(&other) {
            *disagreements
                .entry((id.clone(), Side::OnlyTurncoat))
                .or_default() += 1;
        }
        for id in other.difference(&mine) {
            *disagreements
                .entry((id.clone(), Side::OnlyRsigma))
                .or_default() += 1;
        }
    }
    eprintln!(
        "{} events ({regression} regression, {} simulator): {agreed} matches agreed, {} (rule, side) disagreements",
        events.len(),
        events.len() - regression,
        disagreements.len()
    );
    for ((id, side), n) in &disagreements {
        eprintln!("{id}\t{side:?}\t{n} events");
    }
    assert!(agreed > 1000, "too few matches to compare: {agreed}");
    let listed: BTreeSet<(String, String)> = include_str!("rsigma-disagreements.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split('\t');
            let id = parts.next().unwrap().to_owned();
            let side = parts.next().expect("a side").to_owned();
            assert!(
                parts.next().is_some_and(|c| !c.is_empty()),
                "{l}: no clause"
            );
            (id, side)
        })
        .collect();
    let found: BTreeSet<(String, String)> = disagreements
        .keys()
        .map(|(id, side)| (id.clone(), format!("{side:?}")))
        .collect();
    assert_eq!(
        found, listed,
        "disagreements changed; update tests/rsigma-disagreements.txt with the clause that decides each"
    );
}
