//! The literal prefilter: for each rule, substrings at least one of which
//! must occur in the event (in a named field, or in any field for
//! keywords) for the rule to match; one Aho-Corasick automaton per field
//! over all rules' substrings. An event then evaluates only the rules
//! whose substrings it contains, plus the few rules with no usable
//! substring (regexes, numbers, negations).

use std::collections::HashMap;

use aho_corasick::AhoCorasick;
use turncoat_core::Value;

use crate::condition::Cond;
use crate::detection::{Item, Matcher, Target};
use crate::{Rule, Selection};

/// (field, or `None` for any field) → substrings.
type Atoms = Vec<(Option<String>, String)>;

/// Shortest substring worth indexing: shorter ones match nearly every event.
const MIN_ATOM: usize = 3;

/// Substrings one of which every value `m` matches contains, case-folded.
fn matcher_atoms(m: &Matcher) -> Option<Vec<String>> {
    let s = match m {
        Matcher::Eq(p) | Matcher::Prefix(p) | Matcher::Suffix(p) => p.clone(),
        Matcher::Contains(f) => String::from_utf8(f.needle().to_vec()).ok()?,
        Matcher::Glob(_, lit) => lit.clone(),
        Matcher::Regex(re) => return regex_atoms(re.as_str()),
        _ => return None,
    };
    (s.len() >= MIN_ATOM).then(|| vec![s])
}

/// Literals one of which every match of `pattern` contains: its prefix or
/// suffix literals when they are finitely many and all long enough.
/// Matching is case-insensitive against folded text, so the literals are
/// lowered; only ASCII ones are kept, whose lowering is exact.
fn regex_atoms(pattern: &str) -> Option<Vec<String>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    [ExtractKind::Prefix, ExtractKind::Suffix]
        .into_iter()
        .filter_map(|kind| {
            let seq = Extractor::new().kind(kind).extract(&hir);
            let literals = seq.literals()?;
            if literals.is_empty() {
                return None;
            }
            let mut atoms: Vec<String> = literals
                .iter()
                .map(|l| {
                    let text = std::str::from_utf8(l.as_bytes()).ok()?;
                    (text.is_ascii() && text.len() >= MIN_ATOM).then(|| text.to_ascii_lowercase())
                })
                .collect::<Option<_>>()?;
            atoms.sort();
            atoms.dedup();
            Some(atoms)
        })
        .min_by_key(|atoms| {
            (
                atoms.len(),
                usize::MAX - atoms.iter().map(String::len).min().unwrap_or(0),
            )
        })
}

fn item_atoms(item: &Item) -> Option<Atoms> {
    if item.matchers.is_empty() {
        return None;
    }
    let with_field = |atoms: Vec<String>| {
        atoms
            .into_iter()
            .map(|a| (item.field.clone(), a))
            .collect::<Atoms>()
    };
    if item.all {
        // Every value must match: any one value's atoms are necessary;
        // take the fewest, longest.
        let best = item
            .matchers
            .iter()
            .filter_map(matcher_atoms)
            .min_by_key(|atoms| {
                (
                    atoms.len(),
                    usize::MAX - atoms.iter().map(String::len).min().unwrap_or(0),
                )
            })?;
        return Some(with_field(best));
    }
    let mut all = Vec::new();
    for m in &item.matchers {
        all.extend(matcher_atoms(m)?);
    }
    Some(with_field(all))
}

fn selection_atoms(sel: &Selection) -> Option<Atoms> {
    let mut all = Vec::new();
    for map in &sel.maps {
        // Every item of a map must match: the item with the fewest atoms is necessary.
        let best = map.iter().filter_map(item_atoms).min_by_key(Vec::len)?;
        all.extend(best);
    }
    (!all.is_empty()).then_some(all)
}

fn cond_atoms(c: &Cond, sels: &[Option<Atoms>]) -> Option<Atoms> {
    match c {
        Cond::Sel(i) => sels[*i].clone(),
        Cond::And(items) => items
            .iter()
            .filter_map(|c| cond_atoms(c, sels))
            .min_by_key(Vec::len),
        // At least one of `n of`'s items holds too.
        Cond::Or(items) | Cond::AtLeast(_, items) => {
            let mut all = Vec::new();
            for c in items {
                all.extend(cond_atoms(c, sels)?);
            }
            (!all.is_empty()).then_some(all)
        }
        Cond::Not(_) => None,
    }
}

/// Substrings one of which every match of `rule` contains; `None` when
/// the rule has no such necessary substring.
pub fn rule_atoms(rule: &Rule) -> Option<Atoms> {
    let sels: Vec<Option<Atoms>> = rule.selections.iter().map(selection_atoms).collect();
    cond_atoms(&rule.condition, &sels)
}

/// The per-field automata over a rule set.
#[derive(Debug)]
pub struct Prefilter {
    fields: HashMap<String, (AhoCorasick, Vec<Vec<usize>>)>,
    any_field: Option<(AhoCorasick, Vec<Vec<usize>>)>,
    /// Rules evaluated whatever the event holds.
    pub always: Vec<usize>,
}

fn automaton(atoms: Vec<(String, Vec<usize>)>) -> Option<(AhoCorasick, Vec<Vec<usize>>)> {
    let (patterns, rules): (Vec<String>, Vec<Vec<usize>>) = atoms.into_iter().unzip();
    AhoCorasick::new(&patterns).ok().map(|ac| (ac, rules))
}

impl Prefilter {
    pub fn new(rules: &[Rule]) -> Prefilter {
        let mut by_field: HashMap<Option<String>, HashMap<String, Vec<usize>>> = HashMap::new();
        let mut always = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            match rule_atoms(r) {
                Some(atoms) => {
                    for (field, atom) in atoms {
                        let list = by_field.entry(field).or_default().entry(atom).or_default();
                        if list.last() != Some(&i) {
                            list.push(i);
                        }
                    }
                }
                None => always.push(i),
            }
        }
        let mut fields = HashMap::new();
        let mut any_field = None;
        for (field, atoms) in by_field {
            let built = automaton(atoms.into_iter().collect());
            match (field, built) {
                (Some(f), Some(a)) => {
                    fields.insert(f, a);
                }
                (None, Some(a)) => any_field = Some(a),
                // An automaton that cannot be built: its rules are always evaluated.
                (_, None) => always.extend(0..rules.len()),
            }
        }
        always.sort_unstable();
        always.dedup();
        Prefilter {
            fields,
            any_field,
            always,
        }
    }

    /// Calls `hit` with every rule whose substrings the event's case-folded
    /// fields contain (and every rule without substrings).
    pub fn candidates(&self, t: &Target, hit: &mut dyn FnMut(usize)) {
        for &i in &self.always {
            hit(i);
        }
        let mut scan = |(ac, rules): &(AhoCorasick, Vec<Vec<usize>>), v: &Value| {
            let mut one = |s: &str| {
                for m in ac.find_overlapping_iter(s) {
                    for &r in &rules[m.pattern().as_usize()] {
                        hit(r);
                    }
                }
            };
            match v {
                Value::Str(s) => one(s),
                Value::List(items) => items.iter().filter_map(Value::as_str).for_each(one),
                _ => {}
            }
        };
        for (name, value) in t.folded.iter() {
            if let Some(a) = self.fields.get(name) {
                scan(a, value);
            }
            if let Some(a) = &self.any_field {
                scan(a, value);
            }
        }
    }
}
