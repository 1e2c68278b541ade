//! A rule set: rules, filters folded into them, correlations resolved.

use super::*;

/// Rules compiled from files, with the ones that failed and why.
#[derive(Debug, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    /// Correlations with their references resolved (see [`RuleSet::build`]).
    pub correlations: Vec<Correlation>,
    pub failed: Vec<RuleError>,
    /// Built on first use, after the rules are final.
    prefilter: std::sync::OnceLock<prefilter::Prefilter>,
}

impl RuleSet {
    /// A rule set of already compiled rules.
    pub fn from_rules(rules: Vec<Rule>) -> RuleSet {
        RuleSet {
            rules,
            ..Default::default()
        }
    }

    /// Assembles documents into a rule set: filters are ANDed into the
    /// rules they name, correlation references are resolved (a correlation
    /// naming an unknown rule, or chained in a cycle, is refused into
    /// `failed`), and rules that only feed non-generating correlations
    /// stop raising alerts of their own.
    pub fn build(documents: Vec<(String, Document)>, mut failed: Vec<RuleError>) -> RuleSet {
        let mut rules = Vec::new();
        let mut filters = Vec::new();
        let mut correlations = Vec::new();
        for (file, doc) in documents {
            match doc {
                Document::Rule(r) => rules.push(r),
                Document::Filter(f) => filters.push((file, f)),
                Document::Correlation(c) => correlations.push((file, c)),
            }
        }
        for (file, filter) in &filters {
            let mut applied = 0;
            for rule in rules.iter_mut() {
                if filter.rules.iter().any(|r| rule.is(r)) && rule.fits(filter) {
                    rule.apply(filter);
                    applied += 1;
                }
            }
            if applied == 0 {
                failed.push(err(
                    file,
                    None,
                    format!("{}: filter applies to no loaded rule", filter.title),
                ));
            }
        }
        let correlations = resolve(&rules, correlations, &mut failed);
        for (i, rule) in rules.iter_mut().enumerate() {
            let feeding: Vec<&Correlation> = correlations
                .iter()
                .filter(|c| c.sources.contains(&Source::Rule(i)))
                .collect();
            rule.alerts = feeding.is_empty() || feeding.iter().any(|c| c.generate);
        }
        let mut correlations = correlations;
        for i in 0..correlations.len() {
            let feeding: Vec<bool> = correlations
                .iter()
                .filter(|c| c.sources.contains(&Source::Correlation(i)))
                .map(|c| c.generate)
                .collect();
            correlations[i].alerts = feeding.is_empty() || feeding.contains(&true);
        }
        RuleSet {
            rules,
            correlations,
            failed,
            ..Default::default()
        }
    }

    /// How rule files are found under directories: YAML files, hidden
    /// folders (a checkout's `.github`) left out.
    pub fn walk_options() -> turncoat_walk::WalkOptions {
        turncoat_walk::WalkOptions::with_extensions(&["yml", "yaml"])
    }

    /// Reads rule files from files and directories
    /// ([`RuleSet::walk_options`]); paths that could not be read are
    /// reported among the failures.
    pub fn load(paths: &[std::path::PathBuf]) -> std::io::Result<RuleSet> {
        let walk = turncoat_walk::walk(paths, &RuleSet::walk_options());
        let mut failed: Vec<RuleError> = walk
            .skipped
            .iter()
            .map(|s| err(&s.path.display().to_string(), None, &s.reason))
            .collect();
        let files = walk.paths();
        let mut documents = Vec::new();
        for f in files {
            let name = f.display().to_string();
            let bytes = std::fs::read(f)?;
            let Ok(text) = String::from_utf8(bytes) else {
                failed.push(err(&name, None, "rule file is not UTF-8"));
                continue;
            };
            for r in parse_file(&name, &text) {
                match r {
                    Ok(doc) => documents.push((name.clone(), doc)),
                    Err(e) => failed.push(e),
                }
            }
        }
        Ok(RuleSet::build(documents, failed))
    }

    /// Streaming state for this set's correlations.
    pub fn correlator(&self) -> correlation::Correlator<'_> {
        correlation::Correlator::new(&self.correlations)
    }

    /// Keeps only rules at or above `level` (informational, low, medium,
    /// high, critical).
    pub fn retain_level(&mut self, level: &str) {
        let rank = |l: &str| {
            ["informational", "low", "medium", "high", "critical"]
                .iter()
                .position(|x| x.eq_ignore_ascii_case(l))
        };
        let min = rank(level).unwrap_or(0);
        let below = |l: &Option<String>| l.as_deref().and_then(rank).unwrap_or(0) < min;
        for c in &mut self.correlations {
            c.alerts &= !below(&c.level);
        }
        // Rules below the level stay when a correlation counts them, silent.
        let mut kept = Vec::with_capacity(self.rules.len());
        let mut new_index = vec![None; self.rules.len()];
        for (i, mut rule) in std::mem::take(&mut self.rules).into_iter().enumerate() {
            let counted = self
                .correlations
                .iter()
                .any(|c| c.sources.contains(&Source::Rule(i)));
            if below(&rule.level) {
                if !counted {
                    continue;
                }
                rule.alerts = false;
            }
            new_index[i] = Some(kept.len());
            kept.push(rule);
        }
        for c in &mut self.correlations {
            for s in &mut c.sources {
                if let Source::Rule(i) = s
                    && let Some(n) = new_index[*i]
                {
                    *i = n;
                }
            }
        }
        self.rules = kept;
    }

    /// A router for one thread: events are matched only against the rules
    /// written for their logsource, found once per distinct logsource.
    pub fn router(&self) -> Router<'_> {
        let prefilter = self
            .prefilter
            .get_or_init(|| prefilter::Prefilter::new(&self.rules));
        Router::new(&self.rules, prefilter)
    }
}

/// Resolves correlation references to rules and other correlations,
/// dropping (into `failed`) those that name something unknown or that
/// chain in a cycle, until what is left is consistent.
fn resolve(
    rules: &[Rule],
    mut pending: Vec<(String, Correlation)>,
    failed: &mut Vec<RuleError>,
) -> Vec<Correlation> {
    loop {
        let names: Vec<[Option<String>; 2]> = pending
            .iter()
            .map(|(_, c)| [c.id.clone(), c.name.clone()])
            .collect();
        let mut dropped = None;
        for (ci, (file, c)) in pending.iter_mut().enumerate() {
            c.sources.clear();
            for reference in &c.rules {
                let known = |n: &[Option<String>; 2]| n.iter().flatten().any(|x| x == reference);
                let source = rules
                    .iter()
                    .position(|r| r.is(reference))
                    .map(Source::Rule)
                    .or_else(|| names.iter().position(known).map(Source::Correlation));
                match source {
                    Some(s) => c.sources.push(s),
                    None => {
                        let m = format!(
                            "{}: correlation references unknown rule {reference:?}",
                            c.title
                        );
                        dropped = Some((ci, err(file, None, m)));
                        break;
                    }
                }
            }
            if dropped.is_some() {
                break;
            }
        }
        if dropped.is_none() {
            dropped = cyclic(&pending).map(|ci| {
                let (file, c) = &pending[ci];
                let m = format!("{}: correlation chain forms a cycle", c.title);
                (ci, err(file, None, m))
            });
        }
        match dropped {
            Some((ci, e)) => {
                failed.push(e);
                pending.remove(ci);
            }
            None => return pending.into_iter().map(|(_, c)| c).collect(),
        }
    }
}

/// A correlation on a reference cycle, if any (depth-first search).
fn cyclic(correlations: &[(String, Correlation)]) -> Option<usize> {
    // 0 unvisited, 1 on the current path, 2 done.
    fn visit(c: usize, all: &[(String, Correlation)], state: &mut [u8]) -> Option<usize> {
        match state[c] {
            1 => return Some(c),
            2 => return None,
            _ => {}
        }
        state[c] = 1;
        for s in &all[c].1.sources {
            if let Source::Correlation(next) = s
                && let Some(found) = visit(*next, all, state)
            {
                return Some(found);
            }
        }
        state[c] = 2;
        None
    }
    let mut state = vec![0u8; correlations.len()];
    (0..correlations.len()).find_map(|c| visit(c, correlations, &mut state))
}
