//! Sigma correlation rules (`event_count`, `value_count`, `temporal`,
//! `temporal_ordered`) evaluated on a stream of rule matches.
//!
//! State is kept per correlation and group-by key, and it is bounded: a
//! window holds at most [`MAX_WINDOW_ENTRIES`] entries, a correlation at
//! most [`MAX_GROUPS`] groups (the least recently updated are evicted),
//! and entries older than the timespan are dropped as time advances.
//!
//! Conditions that can only grow true (`gt`, `gte`) are checked on every
//! match over the sliding window ending at it, and fire as soon as they
//! hold. Conditions with an upper bound (`lt`, `lte`, `eq`, `neq`) can
//! only be decided once the window is over: those windows tumble, opened
//! by a group's first match and judged when a later match falls outside
//! them or the stream is flushed. A group's state is cleared when it
//! fires, so one burst raises one alert.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use turncoat_core::{Fields, Time};

use crate::CompileError;
use yaml_serde::{Mapping, Value as Yaml};

/// Most entries one group's window holds; thresholds above it are refused.
pub const MAX_WINDOW_ENTRIES: usize = 10_000;
/// Most live groups per correlation.
pub const MAX_GROUPS: usize = 100_000;

const MICROS_PER_SEC: i64 = 1_000_000;

/// The correlation types of the specification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    EventCount,
    ValueCount,
    Temporal,
    TemporalOrdered,
}

/// A comparison in a correlation condition.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cmp {
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    Eq(f64),
    Neq(f64),
}

impl Cmp {
    fn holds(self, x: f64) -> bool {
        match self {
            Cmp::Gt(v) => x > v,
            Cmp::Gte(v) => x >= v,
            Cmp::Lt(v) => x < v,
            Cmp::Lte(v) => x <= v,
            Cmp::Eq(v) => x == v,
            Cmp::Neq(v) => x != v,
        }
    }

    fn has_upper_bound(self) -> bool {
        !matches!(self, Cmp::Gt(_) | Cmp::Gte(_))
    }
}

/// What a correlation counts: a detection rule or another correlation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    Rule(usize),
    Correlation(usize),
}

/// A compiled correlation rule.
#[derive(Clone, Debug)]
pub struct Correlation {
    pub id: Option<String>,
    pub name: Option<String>,
    pub title: String,
    pub status: Option<String>,
    pub level: Option<String>,
    pub kind: Kind,
    /// The referenced rules, by id or name, as written.
    pub rules: Vec<String>,
    pub group_by: Vec<String>,
    /// Window length in microseconds.
    pub timespan: i64,
    /// Every comparison must hold.
    pub condition: Vec<Cmp>,
    /// The field whose distinct values `value_count` counts.
    pub field: Option<String>,
    /// alias → (rule reference → field in that rule's events).
    pub aliases: HashMap<String, HashMap<String, String>>,
    /// Whether the referenced rules also raise alerts of their own.
    pub generate: bool,
    /// Whether its firings are alerts (false when it only feeds another
    /// correlation that does not `generate`, or is below a level filter).
    pub alerts: bool,
    /// `rules` resolved by [`crate::RuleSet`]; same order.
    pub sources: Vec<Source>,
}

/// Parses `5s`, `10m`, `1h`, `2d`, `1w` into microseconds.
pub fn parse_timespan(text: &str) -> Result<i64, CompileError> {
    let text = text.trim();
    let unit = text.chars().last().ok_or("empty timespan")?;
    let secs = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => {
            return Err(CompileError::from(format!(
                "timespan {text:?} has no unit (s, m, h, d, w)"
            )));
        }
    };
    let n: i64 = text[..text.len() - 1].parse().map_err(|_| {
        CompileError::from(format!(
            "timespan {text:?} is not a whole number and a unit"
        ))
    })?;
    if n <= 0 {
        return Err(CompileError::from(format!(
            "timespan {text:?} is not positive"
        )));
    }
    n.checked_mul(secs * MICROS_PER_SEC)
        .ok_or_else(|| CompileError::from(format!("timespan {text:?} is too long")))
}

fn strings(v: Option<&Yaml>) -> Result<Vec<String>, CompileError> {
    match v {
        None | Some(Yaml::Null) => Ok(Vec::new()),
        Some(Yaml::String(s)) => Ok(vec![s.clone()]),
        Some(Yaml::Sequence(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or("expected strings"))
            .collect::<Result<_, _>>()
            .map_err(CompileError::from),
        Some(_) => Err("expected a string or a list of strings".into()),
    }
}

/// Compiles the `correlation` section of a rule document.
pub(crate) fn compile(
    title: String,
    doc: &Mapping,
    section: &Mapping,
) -> Result<Correlation, CompileError> {
    let get = |m: &Mapping, k: &str| m.get(k).and_then(Yaml::as_str).map(str::to_owned);
    let kind = match get(section, "type").as_deref() {
        Some("event_count") => Kind::EventCount,
        Some("value_count") => Kind::ValueCount,
        Some("temporal") => Kind::Temporal,
        Some("temporal_ordered") => Kind::TemporalOrdered,
        Some(other) => {
            return Err(CompileError::from(format!(
                "unsupported correlation type {other:?}"
            )));
        }
        None => return Err("correlation has no type".into()),
    };
    let rules = strings(section.get("rules")).map_err(|e| e.within("rules"))?;
    if rules.is_empty() {
        return Err("correlation references no rules".into());
    }
    let group_by = strings(section.get("group-by")).map_err(|e| e.within("group-by"))?;
    let timespan = match section.get("timespan").or_else(|| section.get("timeframe")) {
        Some(Yaml::String(s)) => parse_timespan(s)?,
        Some(_) => return Err("timespan is not a string".into()),
        None => return Err("correlation has no timespan".into()),
    };
    let mut condition = Vec::new();
    let mut field = None;
    match section.get("condition") {
        None | Some(Yaml::Null) => {}
        Some(Yaml::Mapping(m)) => {
            for (k, v) in m {
                let key = k.as_str().ok_or("condition key is not a string")?;
                if key == "field" {
                    field = Some(
                        v.as_str()
                            .ok_or("condition field is not a string")?
                            .to_owned(),
                    );
                    continue;
                }
                let n = v.as_f64().ok_or_else(|| {
                    CompileError::from(format!("condition {key} is not a number"))
                })?;
                let cmp = match key {
                    "gt" => Cmp::Gt(n),
                    "gte" => Cmp::Gte(n),
                    "lt" => Cmp::Lt(n),
                    "lte" => Cmp::Lte(n),
                    "eq" => Cmp::Eq(n),
                    "neq" => Cmp::Neq(n),
                    other => {
                        return Err(CompileError::from(format!(
                            "unknown condition operator {other:?}"
                        )));
                    }
                };
                if n > MAX_WINDOW_ENTRIES as f64 {
                    return Err(CompileError::from(format!(
                        "condition {key}: {n} exceeds the window bound of {MAX_WINDOW_ENTRIES}"
                    )));
                }
                condition.push(cmp);
            }
        }
        Some(_) => return Err("condition is not a mapping".into()),
    }
    match kind {
        Kind::EventCount | Kind::ValueCount if condition.is_empty() => {
            return Err("correlation condition has no comparison".into());
        }
        Kind::ValueCount if field.is_none() => {
            return Err("value_count condition names no field".into());
        }
        // Temporal correlations need every referenced rule by default.
        Kind::Temporal | Kind::TemporalOrdered if condition.is_empty() => {
            condition.push(Cmp::Gte(rules.len() as f64));
        }
        _ => {}
    }
    let mut aliases = HashMap::new();
    if let Some(m) = section.get("aliases") {
        let m = m.as_mapping().ok_or("aliases is not a mapping")?;
        for (alias, per_rule) in m {
            let alias = alias.as_str().ok_or("alias name is not a string")?;
            let per_rule = per_rule
                .as_mapping()
                .ok_or_else(|| format!("alias {alias} is not a mapping"))?;
            let mut fields = HashMap::new();
            for (r, f) in per_rule {
                let (Some(r), Some(f)) = (r.as_str(), f.as_str()) else {
                    return Err(CompileError::from(format!(
                        "alias {alias}: rule and field must be strings"
                    )));
                };
                fields.insert(r.to_owned(), f.to_owned());
            }
            aliases.insert(alias.to_owned(), fields);
        }
    }
    Ok(Correlation {
        id: get(doc, "id"),
        name: get(doc, "name"),
        title,
        status: get(doc, "status"),
        level: get(doc, "level"),
        kind,
        rules,
        group_by,
        timespan,
        condition,
        field,
        aliases,
        generate: section
            .get("generate")
            .or_else(|| doc.get("generate"))
            .and_then(Yaml::as_bool)
            .unwrap_or(false),
        alerts: true,
        sources: Vec::new(),
    })
}

impl Correlation {
    /// The `type` as written in rules.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::EventCount => "event_count",
            Kind::ValueCount => "value_count",
            Kind::Temporal => "temporal",
            Kind::TemporalOrdered => "temporal_ordered",
        }
    }

    /// The field read for `name` (a group-by field, an alias, or the
    /// counted field) in events of the rule at `position`.
    fn field_for<'a>(&'a self, name: &'a str, position: usize) -> &'a str {
        self.aliases
            .get(name)
            .and_then(|per_rule| per_rule.get(&self.rules[position]))
            .map_or(name, String::as_str)
    }

    fn fires_on_arrival(&self) -> bool {
        !self.condition.iter().any(|c| c.has_upper_bound())
    }

    fn holds(&self, x: f64) -> bool {
        self.condition.iter().all(|c| c.holds(x))
    }
}

/// A correlation that fired.
#[derive(Clone, Debug, PartialEq)]
pub struct CorrelationHit {
    /// Index into [`crate::RuleSet::correlations`].
    pub correlation: usize,
    /// group-by field → value.
    pub group: Vec<(String, String)>,
    /// The first and last match counted.
    pub first: Time,
    pub last: Time,
    /// The measured value: events, distinct values, or rules seen.
    pub value: f64,
    /// The host of the last match counted.
    pub host: String,
    /// The caller's reference to the last match counted, as given to
    /// [`Correlator::observe`] (the event that completed the correlation).
    pub origin: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum State {
    Count(VecDeque<Time>),
    Values {
        entries: VecDeque<(Time, String)>,
        distinct: HashMap<String, u32>,
    },
    /// Per referenced rule: last time seen (temporal) or, for ordered,
    /// the start of the latest in-order run reaching it.
    Seen(Vec<Option<Time>>),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Group {
    /// Start of a tumbling window (conditions with an upper bound).
    opened: Time,
    last: Time,
    first: Time,
    /// Host of the latest match.
    host: String,
    /// The caller's reference to the latest match.
    #[serde(default)]
    origin: u64,
    state: State,
}

impl Group {
    fn new(c: &Correlation, t: Time) -> Group {
        Group {
            opened: t,
            last: t,
            first: t,
            host: String::new(),
            origin: 0,
            state: match c.kind {
                Kind::EventCount => State::Count(VecDeque::new()),
                Kind::ValueCount => State::Values {
                    entries: VecDeque::new(),
                    distinct: HashMap::new(),
                },
                Kind::Temporal | Kind::TemporalOrdered => State::Seen(vec![None; c.rules.len()]),
            },
        }
    }

    /// Drops entries older than `cutoff`.
    fn evict(&mut self, cutoff: Time) {
        match &mut self.state {
            State::Count(times) => {
                while times.front().is_some_and(|t| *t < cutoff) {
                    times.pop_front();
                }
            }
            State::Values { entries, distinct } => {
                while entries.front().is_some_and(|(t, _)| *t < cutoff) {
                    if let Some((_, v)) = entries.pop_front()
                        && let Some(n) = distinct.get_mut(&v)
                    {
                        *n -= 1;
                        if *n == 0 {
                            distinct.remove(&v);
                        }
                    }
                }
            }
            State::Seen(seen) => seen
                .iter_mut()
                .filter(|s| s.is_some_and(|t| t < cutoff))
                .for_each(|s| *s = None),
        }
    }

    fn add(&mut self, kind: Kind, position: usize, t: Time, value: Option<String>) {
        self.last = self.last.max(t);
        self.first = self.first.min(t);
        match &mut self.state {
            State::Count(times) => {
                let at = times.partition_point(|x| *x <= t);
                times.insert(at, t);
                if times.len() > MAX_WINDOW_ENTRIES {
                    times.pop_front();
                }
            }
            State::Values { entries, distinct } => {
                let Some(v) = value else { return };
                *distinct.entry(v.clone()).or_default() += 1;
                let at = entries.partition_point(|(x, _)| *x <= t);
                entries.insert(at, (t, v));
                if entries.len() > MAX_WINDOW_ENTRIES
                    && let Some((_, old)) = entries.pop_front()
                    && let Some(n) = distinct.get_mut(&old)
                {
                    *n -= 1;
                    if *n == 0 {
                        distinct.remove(&old);
                    }
                }
            }
            State::Seen(seen) if kind == Kind::Temporal => {
                seen[position] = Some(seen[position].map_or(t, |s| s.max(t)));
            }
            State::Seen(progress) => {
                // progress[k]: start of the latest run matching rules 0..=k
                // in order. A match extends the run ending just before it.
                let start = if position == 0 {
                    Some(t)
                } else {
                    progress[position - 1].filter(|s| *s <= t)
                };
                if let Some(s) = start {
                    progress[position] = Some(progress[position].map_or(s, |p| p.max(s)));
                }
            }
        }
    }

    fn value(&self, kind: Kind) -> f64 {
        match &self.state {
            State::Count(times) => times.len() as f64,
            State::Values { distinct, .. } => distinct.len() as f64,
            State::Seen(seen) if kind == Kind::Temporal => {
                seen.iter().filter(|s| s.is_some()).count() as f64
            }
            // The longest prefix of the sequence completed in order.
            State::Seen(progress) => progress
                .iter()
                .rposition(Option::is_some)
                .map_or(0.0, |k| (k + 1) as f64),
        }
    }
}

/// A correlator's windows, to carry them from one run to the next.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CorrelatorState {
    correlations: Vec<SavedCorrelation>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedCorrelation {
    /// The correlation's id (or title), type and rule references: state is
    /// restored only into the same correlation.
    key: String,
    kind: String,
    rules: Vec<String>,
    groups: Vec<(Vec<String>, Group)>,
}

impl Correlation {
    fn state_key(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.title)
    }
}

/// Streaming correlation state for one tenant (or one hunt).
pub struct Correlator<'a> {
    correlations: &'a [Correlation],
    /// Source → (correlation, position in its `rules`).
    consumers: HashMap<Source, Vec<(usize, usize)>>,
    groups: Vec<HashMap<Vec<String>, Group>>,
    /// Per correlation, the time its state was last swept of windows
    /// older than its timespan.
    swept: Vec<Time>,
}

impl<'a> Correlator<'a> {
    pub fn new(correlations: &'a [Correlation]) -> Correlator<'a> {
        let mut consumers: HashMap<Source, Vec<(usize, usize)>> = HashMap::new();
        for (c, corr) in correlations.iter().enumerate() {
            for (p, s) in corr.sources.iter().enumerate() {
                consumers.entry(*s).or_default().push((c, p));
            }
        }
        Correlator {
            correlations,
            consumers,
            groups: correlations.iter().map(|_| HashMap::new()).collect(),
            swept: vec![Time(i64::MIN); correlations.len()],
        }
    }

    /// Whether matches of rule `rule` feed any correlation.
    pub fn consumes(&self, rule: usize) -> bool {
        self.consumers.contains_key(&Source::Rule(rule))
    }

    /// Records that rule `rule` matched an event at `time` on `host` with
    /// `fields`, pushing every correlation that fires (chained ones
    /// included); `origin` names the event to the caller and comes back in
    /// the hits it completes. State older than a correlation's timespan is
    /// swept as time advances: windows over are judged, idle groups
    /// dropped, so memory follows the timespan, not the stream.
    pub fn observe(
        &mut self,
        rule: usize,
        time: Time,
        host: &str,
        fields: &Fields,
        origin: u64,
        out: &mut Vec<CorrelationHit>,
    ) {
        for (c, corr) in self.correlations.iter().enumerate() {
            if time.0 > self.swept[c].0.saturating_add(corr.timespan) {
                self.swept[c] = time;
                close_windows(c, corr, &mut self.groups[c], Some(time), out);
            }
        }
        let mut pending = vec![(Source::Rule(rule), time, None::<Fields>)];
        // Chains are acyclic (checked when the set is built), so this ends.
        while let Some((source, t, chained)) = pending.pop() {
            let fields = chained.as_ref().unwrap_or(fields);
            let Some(consumers) = self.consumers.get(&source) else {
                continue;
            };
            for &(c, position) in consumers {
                let corr = &self.correlations[c];
                let at = Match {
                    position,
                    time: t,
                    host,
                    origin,
                };
                if let Some(hit) = update(c, corr, &mut self.groups[c], at, fields) {
                    let mut group_fields = Fields::with_capacity(hit.group.len());
                    for (k, v) in &hit.group {
                        group_fields.push(k.clone(), v.clone());
                    }
                    pending.push((Source::Correlation(c), hit.last, Some(group_fields)));
                    out.push(hit);
                }
            }
        }
    }

    /// Judges every tumbling window over before `until` (all, when `None`);
    /// called at the end of a stream.
    pub fn flush(&mut self, until: Option<Time>, out: &mut Vec<CorrelationHit>) {
        for (c, corr) in self.correlations.iter().enumerate() {
            close_windows(c, corr, &mut self.groups[c], until, out);
        }
    }

    /// The open windows, to be restored by [`Correlator::restore`] in a
    /// later run (or after a crash: ingest saves them with every batch).
    pub fn snapshot(&self) -> CorrelatorState {
        CorrelatorState {
            correlations: self
                .correlations
                .iter()
                .zip(self.groups.iter())
                .filter(|(_, groups)| !groups.is_empty())
                .map(|(c, groups)| SavedCorrelation {
                    key: c.state_key().to_owned(),
                    kind: c.kind_name().to_owned(),
                    rules: c.rules.clone(),
                    groups: groups.iter().map(|(k, g)| (k.clone(), g.clone())).collect(),
                })
                .collect(),
        }
    }

    /// Takes up the windows a snapshot saved, for the correlations that are
    /// still the same (id, type and rules); the others start empty.
    pub fn restore(&mut self, state: CorrelatorState) {
        for saved in state.correlations {
            let same = self.correlations.iter().position(|c| {
                c.state_key() == saved.key && c.kind_name() == saved.kind && c.rules == saved.rules
            });
            if let Some(i) = same {
                self.groups[i] = saved.groups.into_iter().take(MAX_GROUPS).collect();
            }
        }
    }

    /// Live groups, over all correlations.
    pub fn groups(&self) -> usize {
        self.groups.iter().map(HashMap::len).sum()
    }
}

/// Ends correlation `c`'s state before `until` (all of it, when `None`):
/// tumbling windows over are judged, groups of sliding windows idle for
/// longer than the timespan dropped (nothing they hold can count again).
fn close_windows(
    c: usize,
    corr: &Correlation,
    groups: &mut HashMap<Vec<String>, Group>,
    until: Option<Time>,
    out: &mut Vec<CorrelationHit>,
) {
    if corr.fires_on_arrival() {
        if let Some(u) = until {
            let cutoff = u.0.saturating_sub(corr.timespan);
            groups.retain(|_, g| g.last.0 >= cutoff);
        }
        return;
    }
    let mut done: Vec<Vec<String>> = groups
        .iter()
        .filter(|(_, g)| until.is_none_or(|u| g.opened.0.saturating_add(corr.timespan) < u.0))
        .map(|(k, _)| k.clone())
        .collect();
    done.sort();
    for key in done {
        if let Some(g) = groups.remove(&key)
            && let Some(hit) = judge(c, corr, &key, &g)
        {
            out.push(hit);
        }
    }
}

/// One match of a rule a correlation counts.
#[derive(Clone, Copy)]
struct Match<'a> {
    /// Position of the rule in the correlation's `rules`.
    position: usize,
    time: Time,
    host: &'a str,
    origin: u64,
}

/// Adds one match to correlation `c`'s groups; the hit when it fires.
fn update(
    c: usize,
    corr: &Correlation,
    groups: &mut HashMap<Vec<String>, Group>,
    at: Match<'_>,
    fields: &Fields,
) -> Option<CorrelationHit> {
    let (position, t, host) = (at.position, at.time, at.host);
    let read = |name: &str| {
        fields
            .get(corr.field_for(name, position))
            .map(ToString::to_string)
    };
    // An event without a group-by field belongs to no group: pooling all
    // such events under an empty value would correlate unrelated ones.
    let key: Vec<String> = corr
        .group_by
        .iter()
        .map(|g| read(g).filter(|v| !v.is_empty()))
        .collect::<Option<_>>()?;
    let value = corr.field.as_deref().and_then(read);
    if corr.kind == Kind::ValueCount && value.is_none() {
        return None;
    }
    let mut hit = None;
    let on_arrival = corr.fires_on_arrival();
    // A tumbling window that is over is judged before the new match.
    if !on_arrival
        && let Some(g) = groups.get(&key)
        && t.0 > g.opened.0.saturating_add(corr.timespan)
        && let Some(g) = groups.remove(&key)
    {
        hit = judge(c, corr, &key, &g);
    }
    if groups.len() >= MAX_GROUPS && !groups.contains_key(&key) {
        evict_groups(groups, corr.timespan, t);
    }
    let g = groups
        .entry(key.clone())
        .or_insert_with(|| Group::new(corr, t));
    g.add(corr.kind, position, t, value);
    if g.host != host {
        host.clone_into(&mut g.host);
    }
    g.origin = at.origin;
    if on_arrival {
        g.evict(Time(g.last.0.saturating_sub(corr.timespan)));
        if corr.holds(g.value(corr.kind)) {
            let fired = judge(c, corr, &key, g);
            groups.remove(&key);
            return fired;
        }
    }
    hit
}

fn judge(c: usize, corr: &Correlation, key: &[String], g: &Group) -> Option<CorrelationHit> {
    let value = g.value(corr.kind);
    corr.holds(value).then(|| CorrelationHit {
        correlation: c,
        group: corr
            .group_by
            .iter()
            .cloned()
            .zip(key.iter().cloned())
            .collect(),
        first: g.first,
        last: g.last,
        value,
        host: g.host.clone(),
        origin: g.origin,
    })
}

/// Makes room: drops groups idle for longer than the timespan, then, if
/// still full, the least recently updated eighth.
fn evict_groups(groups: &mut HashMap<Vec<String>, Group>, timespan: i64, now: Time) {
    let cutoff = Time(now.0.saturating_sub(timespan));
    groups.retain(|_, g| g.last >= cutoff);
    if groups.len() < MAX_GROUPS {
        return;
    }
    let mut lasts: Vec<Time> = groups.values().map(|g| g.last).collect();
    let nth = lasts.len() / 8;
    let (_, oldest_kept, _) = lasts.select_nth_unstable(nth);
    let oldest_kept = *oldest_kept;
    groups.retain(|_, g| g.last > oldest_kept);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RuleSet, parse_file};
    use turncoat_core::{Event, Logsource};

    const BASE: &str = r#"
title: failed logon
id: failed-logon
logsource:
    product: windows
    service: security
detection:
    sel:
        EventID: 4625
    condition: sel
---
title: dns to paste site
name: paste_dns
logsource:
    product: windows
    category: dns_query
detection:
    sel:
        QueryName|endswith: '.paste.example'
    condition: sel
---
title: shell from updater
name: updater_shell
logsource:
    product: windows
    category: process_creation
detection:
    sel:
        ParentImage|endswith: '\Update.exe'
    condition: sel
"#;

    fn set(correlations: &str) -> RuleSet {
        let text = format!("{BASE}\n---\n{correlations}");
        let docs = parse_file("c.yml", &text)
            .into_iter()
            .map(|d| ("c.yml".to_owned(), d.unwrap()))
            .collect();
        RuleSet::build(docs, Vec::new())
    }

    fn at(secs: i64, category: &str, fields: &[(&str, &str)]) -> Event {
        let mut f = Fields::new();
        for (k, v) in fields {
            f.push(k.to_string(), *v);
        }
        let (cat, svc) = match category {
            "security" => (None, Some("security")),
            c => (Some(c), None),
        };
        Event {
            time: Time::from_epoch_secs(secs),
            host: "h".into(),
            logsource: Logsource::new(Some("windows"), cat, svc),
            fields: f,
        }
    }

    fn logon(secs: i64, user: &str, ip: &str) -> Event {
        at(
            secs,
            "security",
            &[
                ("EventID", "4625"),
                ("TargetUserName", user),
                ("IpAddress", ip),
            ],
        )
    }

    /// Every correlation firing: (title, group values, value), flushed at the end.
    fn run(set: &RuleSet, events: &[Event]) -> Vec<(String, Vec<String>, f64)> {
        let mut router = set.router();
        let mut correlator = set.correlator();
        let mut hits = Vec::new();
        for e in events {
            let mut matched = Vec::new();
            router.matches(e, |i, _| matched.push(i));
            for i in matched {
                correlator.observe(i, e.time, &e.host, &e.fields, 0, &mut hits);
            }
        }
        correlator.flush(None, &mut hits);
        hits.into_iter()
            .map(|h| {
                let c = &set.correlations[h.correlation];
                (
                    c.title.clone(),
                    h.group.into_iter().map(|(_, v)| v).collect(),
                    h.value,
                )
            })
            .collect()
    }

    const BRUTE: &str = "title: brute force\ncorrelation:\n  type: event_count\n  rules: [failed-logon]\n  group-by: [TargetUserName]\n  timespan: 5m\n  condition:\n    gte: 3\nlevel: high\n";

    #[test]
    fn event_count_slides_per_group_and_fires_once_per_burst() {
        let s = set(BRUTE);
        assert!(s.failed.is_empty(), "{:?}", s.failed);
        assert!(!s.rules[0].alerts, "generate defaults to false");
        assert!(s.rules[1].alerts);
        let burst = [
            logon(0, "alice", "1"),
            logon(60, "bob", "1"),
            logon(100, "alice", "1"),
            logon(200, "alice", "1"),
            logon(250, "alice", "1"),
        ];
        assert_eq!(
            run(&s, &burst),
            [("brute force".into(), vec!["alice".into()], 3.0)]
        );
        let slow = [
            logon(0, "alice", "1"),
            logon(200, "alice", "1"),
            logon(400, "alice", "1"),
        ];
        assert!(
            run(&s, &slow).is_empty(),
            "the first fell out of the 5 minute window"
        );
        let out_of_order = [
            logon(200, "alice", "1"),
            logon(0, "alice", "1"),
            logon(100, "alice", "1"),
        ];
        assert_eq!(run(&s, &out_of_order).len(), 1);
    }

    #[test]
    fn value_count_counts_distinct_values() {
        let s = set(
            "title: spray\ncorrelation:\n  type: value_count\n  rules: failed-logon\n  group-by: [IpAddress]\n  timespan: 1h\n  condition:\n    field: TargetUserName\n    gt: 2\n",
        );
        let same_user = [
            logon(0, "a", "9"),
            logon(1, "a", "9"),
            logon(2, "a", "9"),
            logon(3, "a", "9"),
        ];
        assert!(run(&s, &same_user).is_empty());
        let spray = [
            logon(0, "a", "9"),
            logon(1, "b", "8"),
            logon(2, "b", "9"),
            logon(3, "c", "9"),
        ];
        assert_eq!(run(&s, &spray), [("spray".into(), vec!["9".into()], 3.0)]);
    }

    const CHAIN: &str = "title: paste then shell\nname: paste_then_shell\ncorrelation:\n  type: temporal_ordered\n  rules: [paste_dns, updater_shell]\n  group-by: [host]\n  timespan: 10m\n  aliases:\n    host:\n      paste_dns: Computer\n      updater_shell: Hostname\n";

    #[test]
    fn temporal_ordered_with_aliases() {
        let s = set(CHAIN);
        assert!(s.failed.is_empty(), "{:?}", s.failed);
        let dns = |t, h| {
            at(
                t,
                "dns_query",
                &[("QueryName", "x.paste.example"), ("Computer", h)],
            )
        };
        let shell = |t, h| {
            at(
                t,
                "process_creation",
                &[("ParentImage", "C:\\a\\Update.exe"), ("Hostname", h)],
            )
        };
        assert_eq!(
            run(&s, &[dns(0, "ws1"), shell(60, "ws1")]),
            [("paste then shell".into(), vec!["ws1".into()], 2.0)]
        );
        assert!(
            run(&s, &[shell(0, "ws1"), dns(60, "ws1")]).is_empty(),
            "order matters"
        );
        assert!(
            run(&s, &[dns(0, "ws1"), shell(60, "ws2")]).is_empty(),
            "one host"
        );
        assert!(
            run(&s, &[dns(0, "ws1"), shell(900, "ws1")]).is_empty(),
            "within 10 minutes"
        );
        let unordered = set(&CHAIN.replace("temporal_ordered", "temporal"));
        assert_eq!(run(&unordered, &[shell(0, "ws1"), dns(60, "ws1")]).len(), 1);
    }

    #[test]
    fn upper_bounds_are_judged_when_the_window_closes() {
        let s = set(
            "title: lone failure\ncorrelation:\n  type: event_count\n  rules: [failed-logon]\n  group-by: [TargetUserName]\n  timespan: 1m\n  condition:\n    lt: 2\n",
        );
        let events = [
            logon(0, "a", "1"),
            logon(0, "b", "1"),
            logon(10, "b", "1"),
            logon(100, "b", "1"),
        ];
        // a: one failure; b: two in its first minute, then one in the next.
        let mut got = run(&s, &events);
        got.sort_by(|x, y| x.1.cmp(&y.1));
        assert_eq!(
            got,
            [
                ("lone failure".into(), vec!["a".into()], 1.0),
                ("lone failure".into(), vec!["b".into()], 1.0)
            ]
        );
    }

    #[test]
    fn correlations_chain_and_generate_keeps_base_alerts() {
        let s = set(&format!(
            "{BRUTE}name: brute\n---\ntitle: brute then shell\ncorrelation:\n  type: temporal\n  rules: [brute, updater_shell]\n  timespan: 1h\n  generate: true\n"
        ));
        assert!(s.failed.is_empty(), "{:?}", s.failed);
        assert!(
            s.rules[2].alerts,
            "generate: true keeps the shell rule's own alerts"
        );
        assert!(s.correlations[0].alerts);
        let shell = at(
            400,
            "process_creation",
            &[("ParentImage", "C:\\Update.exe")],
        );
        let got = run(
            &s,
            &[
                logon(0, "a", "1"),
                logon(1, "a", "1"),
                logon(2, "a", "1"),
                shell,
            ],
        );
        let titles: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(titles, ["brute force", "brute then shell"]);
    }

    #[test]
    fn bad_correlations_are_refused_with_reasons() {
        let s = set(
            "title: ghost\ncorrelation:\n  type: event_count\n  rules: [nope]\n  timespan: 5m\n  condition:\n    gte: 1\n---\ntitle: a\nname: a\ncorrelation:\n  type: temporal\n  rules: [b]\n  timespan: 5m\n---\ntitle: b\nname: b\ncorrelation:\n  type: temporal\n  rules: [a]\n  timespan: 5m\n",
        );
        assert!(s.correlations.is_empty());
        let reasons: Vec<&str> = s.failed.iter().map(|e| e.message.as_str()).collect();
        assert!(reasons[0].contains("unknown rule \"nope\""), "{reasons:?}");
        assert!(reasons[1].contains("cycle"), "{reasons:?}");
        for (text, reason) in [
            ("timespan: 5x\n  condition:\n    gte: 1", "no unit"),
            (
                "timespan: 5m\n  condition:\n    gte: 1000000",
                "window bound",
            ),
            (
                "timespan: 5m\n  condition:\n    between: 1",
                "unknown condition operator",
            ),
        ] {
            let doc = format!(
                "title: t\ncorrelation:\n  type: event_count\n  rules: [failed-logon]\n  {text}\n"
            );
            let e = parse_file("x.yml", &doc).remove(0).unwrap_err();
            assert!(e.message.contains(reason), "{}", e.message);
        }
    }

    #[test]
    fn windows_carry_over_between_runs_through_a_snapshot() {
        let s = set(BRUTE);
        let observe = |c: &mut Correlator, e: &Event, hits: &mut Vec<CorrelationHit>| {
            c.observe(0, e.time, &e.host, &e.fields, 0, hits)
        };
        let mut hits = Vec::new();
        let mut first = s.correlator();
        observe(&mut first, &logon(0, "alice", "1"), &mut hits);
        observe(&mut first, &logon(10, "alice", "1"), &mut hits);
        let saved = first.snapshot();
        let text = serde_json::to_string(&saved).unwrap();
        let mut second = s.correlator();
        second.restore(serde_json::from_str(&text).unwrap());
        observe(&mut second, &logon(20, "alice", "1"), &mut hits);
        assert_eq!(
            hits.len(),
            1,
            "the third failure, in the next run, completes the burst"
        );
        // A changed correlation (another threshold keeps the id; another
        // type does not) starts empty.
        let changed = set(&BRUTE
            .replace("event_count", "value_count")
            .replace("gte: 3", "field: IpAddress\n    gte: 3"));
        let mut third = changed.correlator();
        third.restore(serde_json::from_str(&text).unwrap());
        assert_eq!(third.groups(), 0);
    }

    #[test]
    fn groups_are_bounded() {
        let s = set(BRUTE);
        let mut correlator = s.correlator();
        let mut hits = Vec::new();
        let mut fields = Fields::new();
        fields.push("TargetUserName", "");
        for i in 0..(MAX_GROUPS + 10) {
            fields.set("TargetUserName", i.to_string());
            correlator.observe(0, Time::from_epoch_secs(0), "h", &fields, 0, &mut hits);
        }
        assert!(correlator.groups() <= MAX_GROUPS, "{}", correlator.groups());
        assert!(hits.is_empty());
    }

    #[test]
    fn events_without_the_group_by_field_are_not_pooled() {
        let s = set(BRUTE);
        let anonymous = |secs| {
            at(
                secs,
                "security",
                &[("EventID", "4625"), ("IpAddress", "10.0.0.9")],
            )
        };
        let events = [
            anonymous(0),
            anonymous(10),
            logon(20, "", "10.0.0.9"),
            anonymous(30),
        ];
        assert_eq!(run(&s, &events), Vec::new());
        // The same burst with the user named does fire.
        let named: Vec<Event> = (0..3).map(|i| logon(i * 10, "alice", "1")).collect();
        assert_eq!(run(&s, &named).len(), 1);
    }

    #[test]
    fn state_older_than_the_timespan_is_swept_as_time_advances() {
        let s = set(BRUTE);
        let mut correlator = s.correlator();
        let mut hits = Vec::new();
        let mut fields = Fields::new();
        fields.push("TargetUserName", "");
        // One failed logon each for 1000 users in the first minute...
        for i in 0..1000 {
            fields.set("TargetUserName", format!("user{i}"));
            correlator.observe(
                0,
                Time::from_epoch_secs(i / 20),
                "h",
                &fields,
                i as u64,
                &mut hits,
            );
        }
        assert_eq!(correlator.groups(), 1000);
        // ...then one, an hour later: none of theirs can count again.
        fields.set("TargetUserName", "late");
        correlator.observe(
            0,
            Time::from_epoch_secs(3600),
            "h",
            &fields,
            1000,
            &mut hits,
        );
        assert_eq!(correlator.groups(), 1);
        assert!(hits.is_empty());
    }

    #[test]
    fn a_hit_names_the_event_that_completed_it() {
        let s = set(BRUTE);
        let mut router = s.router();
        let mut correlator = s.correlator();
        let mut hits = Vec::new();
        let events = [
            logon(0, "alice", "1"),
            logon(10, "bob", "1"),
            logon(20, "alice", "1"),
            logon(30, "alice", "1"),
        ];
        for (n, e) in events.iter().enumerate() {
            let mut matched = Vec::new();
            router.matches(e, |i, _| matched.push(i));
            for i in matched {
                correlator.observe(i, e.time, &e.host, &e.fields, n as u64 + 100, &mut hits);
            }
        }
        correlator.flush(None, &mut hits);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].origin, 103);
    }
}
