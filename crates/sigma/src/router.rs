//! Routing events to the rules their logsource can match, within a
//! time budget.

use super::*;

/// One event's rule evaluation may take this long before its candidate
/// rules are timed one by one.
pub const EVENT_BUDGET: std::time::Duration = std::time::Duration::from_millis(10);
/// What one rule may spend on one event.
pub const RULE_BUDGET: std::time::Duration = std::time::Duration::from_millis(2);
/// Events on which a rule may exceed [`RULE_BUDGET`] before it is disabled.
pub const BUDGET_STRIKES: u8 = 3;

/// Routes events to the rules their logsource can match, within a time
/// budget: a rule that keeps exceeding it (a hostile or pathological
/// rule) is disabled for this router and reported by [`Router::disabled`].
pub struct Router<'a> {
    rules: &'a [Rule],
    prefilter: &'a prefilter::Prefilter,
    routes: std::collections::HashMap<turncoat_core::Logsource, Vec<usize>>,
    /// `stamp[i] == generation`: rule `i` passed the prefilter for the
    /// current event (no clearing between events).
    stamp: Vec<u32>,
    generation: u32,
    strikes: Vec<u8>,
    disabled: Vec<(usize, String)>,
}

impl<'a> Router<'a> {
    pub(crate) fn new(rules: &'a [Rule], prefilter: &'a prefilter::Prefilter) -> Router<'a> {
        Router {
            rules,
            prefilter,
            routes: std::collections::HashMap::new(),
            stamp: vec![0; rules.len()],
            generation: 0,
            strikes: vec![0; rules.len()],
            disabled: Vec::new(),
        }
    }

    /// Calls `hit` with the index and the rule of every rule the event matches.
    pub fn matches(&mut self, e: &Event, mut hit: impl FnMut(usize, &'a Rule)) {
        let rules = self.rules;
        if !self.routes.contains_key(&e.logsource) {
            let route = rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.applies_to(e))
                .map(|(i, _)| i)
                .collect();
            self.routes.insert(e.logsource.clone(), route);
        }
        let Some(candidates) = self.routes.get(&e.logsource) else {
            return;
        };
        if candidates.is_empty() {
            return;
        }
        let folded = fold(&e.fields);
        let target = Target::new(&e.fields, &folded);
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamp.iter_mut().for_each(|s| *s = 0);
            self.generation = 1;
        }
        let (stamp, generation) = (&mut self.stamp, self.generation);
        self.prefilter
            .candidates(&target, &mut |i| stamp[i] = generation);
        let started = std::time::Instant::now();
        let live = |i: usize| stamp[i] == generation && self.strikes[i] < BUDGET_STRIKES;
        for &i in candidates.iter() {
            let r = &rules[i];
            if live(i) && r.detects(&target) {
                hit(i, r);
            }
        }
        if started.elapsed() > EVENT_BUDGET {
            let slow: Vec<usize> = candidates.iter().copied().filter(|&i| live(i)).collect();
            self.charge(&slow, &target);
        }
    }

    /// Times each of `candidates` on the event that overran the budget,
    /// striking the rules that exceed theirs.
    fn charge(&mut self, candidates: &[usize], target: &Target) {
        for &i in candidates {
            let started = std::time::Instant::now();
            self.rules[i].detects(target);
            let spent = started.elapsed();
            if spent > RULE_BUDGET {
                self.strikes[i] += 1;
                if self.strikes[i] == BUDGET_STRIKES {
                    let r = &self.rules[i];
                    self.disabled.push((
                        i,
                        format!(
                            "{}: disabled after exceeding {} ms on {BUDGET_STRIKES} events (last: {:.1} ms)",
                            r.id.as_deref().unwrap_or(&r.title),
                            RULE_BUDGET.as_millis(),
                            spent.as_secs_f64() * 1e3
                        ),
                    ));
                }
            }
        }
    }

    /// Rules disabled for exceeding the time budget, with the reason.
    pub fn disabled(&self) -> &[(usize, String)] {
        &self.disabled
    }
}
