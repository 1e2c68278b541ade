//! Sigma rules over turncoat events: YAML in, compiled matchers out.
//!
//! A rule's detection section compiles once into [`detection::Item`]s and
//! its condition into a [`condition::Cond`] over them; matching an event
//! checks the logsource, then evaluates the condition. Multi-document
//! files (`action: global`, `reset`, `repeat`) are merged as the
//! specification describes. Filter (meta) rules are folded into the
//! rules they name when a [`RuleSet`] is built; correlation rules are
//! resolved there and evaluated by a [`correlation::Correlator`].

#![forbid(unsafe_code)]

pub mod condition;
pub mod correlation;
pub mod detection;
pub mod prefilter;
mod router;
mod ruleset;

use std::fmt;

use condition::Cond;
use correlation::{Correlation, Source};
use detection::{Item, Target, compile_value, fold};
use turncoat_core::{Event, Value};
use yaml_serde::{Mapping, Value as Yaml};

pub use router::{BUDGET_STRIKES, EVENT_BUDGET, RULE_BUDGET, Router};
pub use ruleset::RuleSet;

/// Largest rule file read: rules are small, hostile ones are not.
pub const MAX_RULE_BYTES: usize = 1 << 20;

/// A rule that could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
    /// What in the rule failed to compile, when that was the trouble.
    pub cause: Option<CompileError>,
}

/// What is wrong inside a rule's detection or correlation; a
/// [`RuleError`] adds the file and the rule's title.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompileError {
    #[error("{0}")]
    Condition(#[from] condition::ConditionError),
    #[error("cidr {text:?}: {source}")]
    Cidr {
        text: String,
        #[source]
        source: ipnet::AddrParseError,
    },
    #[error("regex {pattern:?}: {source}")]
    Regex {
        pattern: String,
        #[source]
        source: Box<regex::Error>,
    },
    /// A wildcard pattern whose automaton is over the size limit.
    #[error("{0}")]
    Wildcard(#[source] Box<regex::Error>),
    /// Where in the rule (a selection, a correlation field) it went wrong.
    #[error("{context}: {source}")]
    In {
        context: String,
        #[source]
        source: Box<CompileError>,
    },
    #[error("{0}")]
    Malformed(std::borrow::Cow<'static, str>),
}

impl CompileError {
    pub(crate) fn within(self, context: impl Into<String>) -> CompileError {
        CompileError::In {
            context: context.into(),
            source: Box::new(self),
        }
    }
}

impl From<&'static str> for CompileError {
    fn from(what: &'static str) -> CompileError {
        CompileError::Malformed(what.into())
    }
}

impl From<String> for CompileError {
    fn from(what: String) -> CompileError {
        CompileError::Malformed(what.into())
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}: line {l}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for RuleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_ref().map(|c| c as _)
    }
}

/// One selection: an OR over maps, each map an AND over its items.
#[derive(Debug, Clone)]
pub struct Selection {
    pub maps: Vec<Vec<Item>>,
}

impl Selection {
    pub fn matches(&self, t: &Target) -> bool {
        self.maps
            .iter()
            .any(|items| items.iter().all(|i| i.matches(t)))
    }
}

/// A compiled Sigma rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: Option<String>,
    /// The `name` correlations may reference it by.
    pub name: Option<String>,
    pub title: String,
    pub status: Option<String>,
    pub level: Option<String>,
    pub product: Option<String>,
    pub category: Option<String>,
    pub service: Option<String>,
    pub names: Vec<String>,
    pub selections: Vec<Selection>,
    pub condition: Cond,
    /// Whether its matches are alerts of their own: false for a rule that
    /// only feeds correlations which do not `generate`.
    pub alerts: bool,
}

/// A filter (meta) rule: a detection ANDed into the conditions of the
/// rules it names, typically `not selection` to exclude known-good.
#[derive(Debug, Clone)]
pub struct Filter {
    pub id: Option<String>,
    pub title: String,
    /// The rules it applies to, by id or name.
    pub rules: Vec<String>,
    pub logsource: turncoat_core::Logsource,
    pub names: Vec<String>,
    pub selections: Vec<Selection>,
    pub condition: Cond,
}

/// One document of a rule file.
#[derive(Debug, Clone)]
pub enum Document {
    Rule(Rule),
    Correlation(Correlation),
    Filter(Filter),
}

impl Document {
    pub fn id(&self) -> Option<&str> {
        match self {
            Document::Rule(r) => r.id.as_deref(),
            Document::Correlation(c) => c.id.as_deref(),
            Document::Filter(f) => f.id.as_deref(),
        }
    }

    pub fn title(&self) -> &str {
        match self {
            Document::Rule(r) => &r.title,
            Document::Correlation(c) => &c.title,
            Document::Filter(f) => &f.title,
        }
    }

    /// The `status` (filters have none).
    pub fn status(&self) -> Option<&str> {
        match self {
            Document::Rule(r) => r.status.as_deref(),
            Document::Correlation(c) => c.status.as_deref(),
            Document::Filter(_) => None,
        }
    }
}

impl Rule {
    /// Whether `reference` (an id or a name) names this rule.
    fn is(&self, reference: &str) -> bool {
        self.id.as_deref() == Some(reference) || self.name.as_deref() == Some(reference)
    }

    /// ANDs a filter's detection into this rule's condition.
    fn apply(&mut self, filter: &Filter) {
        let offset = self.selections.len();
        self.selections.extend(filter.selections.iter().cloned());
        self.names
            .extend(filter.names.iter().map(|n| format!("{}:{n}", filter.title)));
        let condition = std::mem::replace(&mut self.condition, Cond::And(Vec::new()));
        self.condition = Cond::And(vec![condition, filter.condition.shifted(offset)]);
    }

    /// Whether the filter's logsource fits this rule's (fields both set agree).
    fn fits(&self, filter: &Filter) -> bool {
        let agree = |a: &Option<String>, b: Option<&str>| match (a, b) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => true,
        };
        let l = &filter.logsource;
        agree(&self.product, l.product.as_deref())
            && agree(&self.category, l.category.as_deref())
            && agree(&self.service, l.service.as_deref())
    }

    /// Whether the event's logsource is one this rule is written for.
    pub fn applies_to(&self, e: &Event) -> bool {
        let same = |want: &Option<String>, got: Option<&str>| {
            want.as_ref()
                .is_none_or(|w| got.is_some_and(|g| g.eq_ignore_ascii_case(w)))
        };
        // `registry_event` is Sigma's umbrella over the specific registry
        // categories events are filed under.
        let category = match (self.category.as_deref(), e.logsource.category.as_deref()) {
            (Some("registry_event"), Some(c)) => c.starts_with("registry_"),
            _ => same(&self.category, e.logsource.category.as_deref()),
        };
        same(&self.product, e.logsource.product.as_deref())
            && category
            && same(&self.service, e.logsource.service.as_deref())
    }

    /// Whether the event matches the rule's detection (logsource included).
    pub fn matches(&self, e: &Event) -> bool {
        if !self.applies_to(e) {
            return false;
        }
        let folded = fold(&e.fields);
        self.detects(&Target::new(&e.fields, &folded))
    }

    /// Whether the detection matches, logsource aside.
    pub fn detects(&self, t: &Target) -> bool {
        self.condition.eval(&mut |i| self.selections[i].matches(t))
    }
}

fn err(file: &str, line: Option<usize>, message: impl Into<String>) -> RuleError {
    RuleError {
        file: file.to_owned(),
        line,
        message: message.into(),
        cause: None,
    }
}

/// Reads every document (rule, correlation, filter) in one file.
pub fn parse_file(file: &str, text: &str) -> Vec<Result<Document, RuleError>> {
    if text.len() > MAX_RULE_BYTES {
        return vec![Err(err(file, None, "rule file larger than 1 MiB"))];
    }
    let mut docs = Vec::new();
    for de in yaml_serde::Deserializer::from_str(text) {
        match <Yaml as serde::Deserialize>::deserialize(de) {
            Ok(Yaml::Null) => {}
            Ok(v) => docs.push(v),
            Err(e) => {
                return vec![Err(err(
                    file,
                    e.location().map(|l| l.line()),
                    e.to_string(),
                ))];
            }
        }
    }
    // Multi-document rules: `global` is merged into every following
    // document, `reset` drops it, `repeat` builds on the previous rule.
    let mut global: Option<Mapping> = None;
    let mut previous: Option<Mapping> = None;
    let mut out = Vec::new();
    for doc in docs {
        let Yaml::Mapping(map) = doc else {
            out.push(Err(err(file, None, "a rule is a YAML mapping")));
            continue;
        };
        match map.get("action").and_then(Yaml::as_str) {
            Some("global") => {
                global = Some(map);
                continue;
            }
            Some("reset") => {
                global = None;
                continue;
            }
            Some("repeat") => {
                let mut base = previous.clone().unwrap_or_default();
                merge(&mut base, &map);
                base.remove("action");
                previous = Some(base.clone());
                out.push(compile(file, &base));
            }
            _ => {
                let mut full = global.clone().unwrap_or_default();
                merge(&mut full, &map);
                full.remove("action");
                previous = Some(full.clone());
                out.push(compile(file, &full));
            }
        }
    }
    out
}

fn merge(base: &mut Mapping, over: &Mapping) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(Yaml::Mapping(b)), Yaml::Mapping(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

fn to_value(y: &Yaml) -> Option<Value> {
    Some(match y {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64()?),
        },
        Yaml::String(s) => Value::Str(s.as_str().into()),
        _ => return None,
    })
}

fn string(map: &Mapping, key: &str) -> Option<String> {
    map.get(key).and_then(Yaml::as_str).map(str::to_owned)
}

/// A logsource's `service`, under the one name the taxonomy's synonyms
/// share (`ldap_debug` is what SigmaHQ's rules call `ldap`).
fn service(logsource: &Mapping) -> Option<String> {
    string(logsource, "service").map(|s| match s.as_str() {
        "ldap_debug" => "ldap".to_owned(),
        _ => s,
    })
}

fn compile(file: &str, map: &Mapping) -> Result<Document, RuleError> {
    let title = string(map, "title").ok_or_else(|| err(file, None, "rule has no title"))?;
    let context = |cause: CompileError| RuleError {
        cause: Some(cause.clone()),
        ..err(file, None, format!("{title}: {cause}"))
    };
    if let Some(section) = map.get("correlation") {
        let section = section
            .as_mapping()
            .ok_or_else(|| context("correlation is not a mapping".into()))?;
        return correlation::compile(title.clone(), map, section)
            .map(Document::Correlation)
            .map_err(context);
    }
    let logsource = map
        .get("logsource")
        .and_then(Yaml::as_mapping)
        .cloned()
        .unwrap_or_default();
    if let Some(section) = map.get("filter")
        && !map.contains_key("detection")
    {
        let section = section
            .as_mapping()
            .ok_or_else(|| context("filter is not a mapping".into()))?;
        let rules = section
            .get("rules")
            .map(|v| match v {
                Yaml::String(s) => Ok(vec![s.clone()]),
                Yaml::Sequence(items) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_owned)
                            .ok_or("filter rules are not strings")
                    })
                    .collect(),
                _ => Err("filter rules are not a list"),
            })
            .transpose()
            .map_err(|m| context(m.into()))?
            .unwrap_or_default();
        if rules.is_empty() {
            return Err(context("filter names no rules".into()));
        }
        let mut detection = section.clone();
        detection.remove("rules");
        let (names, selections, condition) = compile_detection(&detection).map_err(context)?;
        return Ok(Document::Filter(Filter {
            id: string(map, "id"),
            title,
            rules,
            logsource: turncoat_core::Logsource {
                product: string(&logsource, "product").map(Into::into),
                category: string(&logsource, "category").map(Into::into),
                service: service(&logsource).map(Into::into),
            },
            names,
            selections,
            condition,
        }));
    }
    let detection = map
        .get("detection")
        .and_then(Yaml::as_mapping)
        .ok_or_else(|| context("no detection section".into()))?;
    let (names, selections, condition) = compile_detection(detection).map_err(context)?;
    Ok(Document::Rule(Rule {
        id: string(map, "id"),
        name: string(map, "name"),
        title,
        status: string(map, "status"),
        level: string(map, "level"),
        product: string(&logsource, "product"),
        category: string(&logsource, "category"),
        service: service(&logsource),
        names,
        selections,
        condition,
        alerts: true,
    }))
}

/// Compiles a detection section (a rule's, or a filter's): its named
/// selections and the condition over them.
fn compile_detection(
    detection: &Mapping,
) -> Result<(Vec<String>, Vec<Selection>, Cond), CompileError> {
    let mut names = Vec::new();
    let mut selections = Vec::new();
    let mut conditions = Vec::new();
    for (k, v) in detection {
        let Some(name) = k.as_str() else {
            return Err(CompileError::from("a detection key is not a string"));
        };
        if name == "condition" {
            match v {
                Yaml::String(s) => conditions.push(s.clone()),
                Yaml::Sequence(items) => {
                    conditions.extend(items.iter().filter_map(|i| i.as_str().map(str::to_owned)))
                }
                _ => return Err(CompileError::from("condition is not a string or a list")),
            }
            continue;
        }
        if name == "timeframe" {
            continue;
        }
        selections.push(selection(v).map_err(|e| e.within(format!("selection {name}")))?);
        names.push(name.to_owned());
    }
    if conditions.is_empty() {
        return Err(CompileError::from("detection has no condition"));
    }
    let mut parsed = Vec::new();
    for c in &conditions {
        if c.contains('|') {
            return Err(CompileError::from(format!(
                "aggregation in condition {c:?} is deprecated; write a correlation rule"
            )));
        }
        parsed.push(condition::parse(c, &names)?);
    }
    let condition = if parsed.len() == 1 {
        parsed.remove(0)
    } else {
        Cond::Or(parsed)
    };
    Ok((names, selections, condition))
}

fn selection(v: &Yaml) -> Result<Selection, CompileError> {
    match v {
        Yaml::Mapping(m) => Ok(Selection {
            maps: vec![map_items(m)?],
        }),
        Yaml::Sequence(items) if items.iter().all(|i| matches!(i, Yaml::Mapping(_))) => {
            let maps = items
                .iter()
                .filter_map(Yaml::as_mapping)
                .map(map_items)
                .collect::<Result<_, _>>()?;
            Ok(Selection { maps })
        }
        Yaml::Sequence(items) => Ok(Selection {
            maps: vec![vec![keywords(items)?]],
        }),
        scalar => Ok(Selection {
            maps: vec![vec![keywords(std::slice::from_ref(scalar))?]],
        }),
    }
}

/// Keywords: values searched in every field, anywhere in the text.
fn keywords(items: &[Yaml]) -> Result<Item, CompileError> {
    let mut matchers = Vec::new();
    for i in items {
        let v = to_value(i).ok_or("keywords must be scalars")?;
        matchers.extend(compile_value(&v, &["contains".to_owned()])?);
    }
    Ok(Item {
        field: None,
        matchers,
        all: false,
    })
}

fn map_items(m: &Mapping) -> Result<Vec<Item>, CompileError> {
    let mut items = Vec::new();
    for (k, v) in m {
        let key = k.as_str().ok_or("a field name is not a string")?;
        let mut parts = key.split('|');
        let field = parts.next().unwrap_or("").to_owned();
        let modifiers: Vec<String> = parts.map(str::to_owned).collect();
        for m in &modifiers {
            if !KNOWN_MODIFIERS.contains(&m.as_str()) {
                return Err(CompileError::from(format!("unknown modifier {m:?}")));
            }
        }
        let all = modifiers.iter().any(|m| m == "all");
        let values: Vec<Value> = match v {
            Yaml::Sequence(items) => items
                .iter()
                .map(|i| to_value(i).ok_or("values must be scalars"))
                .collect::<Result<_, _>>()?,
            other => vec![to_value(other).ok_or("values must be scalars")?],
        };
        let mut matchers = Vec::new();
        for value in &values {
            let compiled = compile_value(value, &modifiers)?;
            // Several renderings of one value (windash, base64offset) are
            // alternatives even under `all`: keep them as one OR.
            if all && compiled.len() > 1 {
                items.push(Item {
                    field: (!field.is_empty()).then(|| field.clone()),
                    matchers: compiled,
                    all: false,
                });
            } else {
                matchers.extend(compiled);
            }
        }
        // An item left without matchers (an empty list, an undefined
        // placeholder) matches nothing.
        items.push(Item {
            field: (!field.is_empty()).then(|| field.clone()),
            matchers,
            all: all && !values.is_empty(),
        });
    }
    Ok(items)
}

/// Value modifiers of the Sigma specification.
const KNOWN_MODIFIERS: [&str; 25] = [
    "contains",
    "startswith",
    "endswith",
    "all",
    "re",
    "i",
    "m",
    "s",
    "cidr",
    "base64",
    "base64offset",
    "utf16le",
    "utf16be",
    "utf16",
    "wide",
    "windash",
    "exists",
    "gt",
    "gte",
    "lt",
    "lte",
    "fieldref",
    "expand",
    "cased",
    "neq",
];

#[cfg(test)]
mod tests {
    use super::*;
    use turncoat_core::{Fields, Logsource, Time};

    fn event(fields: &[(&str, &str)]) -> Event {
        let mut f = Fields::new();
        for (k, v) in fields {
            f.push(k.to_string(), *v);
        }
        Event {
            time: Time(0),
            host: "h".into(),
            logsource: Logsource::fixed(Some("windows"), Some("process_creation"), Some("sysmon")),
            fields: f,
        }
    }

    fn only_rule(doc: Result<Document, RuleError>) -> Rule {
        match doc {
            Ok(Document::Rule(r)) => r,
            other => panic!("expected a detection rule, got {other:?}"),
        }
    }

    #[test]
    fn a_rule_over_the_time_budget_is_disabled_and_reported() {
        // 3,000 substrings searched in a 256 KiB command line, the only
        // one present last: tens of milliseconds per event.
        let mut values: String = (0..3000)
            .map(|i| format!("      - 'needle{i:05}'\n"))
            .collect();
        values.push_str("      - 'haystack-end'\n");
        let slow = format!(
            "title: slow\nid: slow\nlogsource:\n  category: process_creation\ndetection:\n  sel:\n    CommandLine|contains:\n{values}  condition: sel\n"
        );
        let quick = "title: quick\nid: quick\nlogsource:\n  category: process_creation\ndetection:\n  sel:\n    Image|endswith: 'cmd.exe'\n  condition: sel\n";
        let rules = [slow.as_str(), quick]
            .iter()
            .map(|t| only_rule(parse_file("b.yml", t).remove(0)))
            .collect();
        let set = RuleSet::from_rules(rules);
        let mut router = set.router();
        let line = format!("{}haystack-end", "a b c ".repeat(44 * 1024));
        let e = event(&[("Image", "C:\\cmd.exe"), ("CommandLine", &line)]);
        let titles = |router: &mut Router| {
            let mut hits = Vec::new();
            router.matches(&e, |_, r| hits.push(r.title.clone()));
            hits
        };
        for _ in 0..BUDGET_STRIKES {
            assert_eq!(titles(&mut router), ["slow", "quick"]);
        }
        assert_eq!(router.disabled().len(), 1, "{:?}", router.disabled());
        assert!(router.disabled()[0].1.starts_with("slow: disabled"));
        let started = std::time::Instant::now();
        assert_eq!(titles(&mut router), ["quick"], "the other rules still run");
        assert!(started.elapsed() < EVENT_BUDGET, "the slow rule is skipped");
    }

    #[test]
    fn a_filter_excludes_matches_of_the_rules_it_names() {
        let filter = "title: not the build servers\nlogsource:\n  product: windows\n  category: process_creation\nfilter:\n  rules:\n    - 00000000-0000-0000-0000-000000000001\n  builders:\n    Computer|startswith: 'BUILD-'\n  condition: not builders\n";
        let other = "title: other\nid: other-rule\nlogsource:\n  product: windows\n  category: process_creation\ndetection:\n  sel:\n    Image|endswith: '\\cmd.exe'\n  condition: sel\n";
        let docs = [("r.yml", RULE), ("f.yml", filter), ("o.yml", other)]
            .iter()
            .flat_map(|(f, t)| {
                parse_file(f, t)
                    .into_iter()
                    .map(|d| (f.to_string(), d.unwrap()))
            })
            .collect();
        let set = RuleSet::build(docs, Vec::new());
        assert!(set.failed.is_empty(), "{:?}", set.failed);
        let hit = |computer: &str| {
            let e = event(&[
                ("ParentImage", "C:\\x\\3CXDesktopApp.exe"),
                ("Image", "C:\\w\\cmd.exe"),
                ("CommandLine", "cmd"),
                ("Computer", computer),
            ]);
            let mut titles = Vec::new();
            set.router()
                .matches(&e, |_, r| titles.push(r.title.clone()));
            titles.sort();
            titles
        };
        assert_eq!(hit("WS-17"), ["3CXDesktopApp spawns a shell", "other"]);
        assert_eq!(
            hit("BUILD-02"),
            ["other"],
            "the filter applies to the named rule only"
        );
        let orphan = RuleSet::build(
            vec![(
                "f.yml".into(),
                parse_file("f.yml", filter).remove(0).unwrap(),
            )],
            Vec::new(),
        );
        assert!(orphan.failed[0].message.contains("no loaded rule"));
    }

    const RULE: &str = r#"
title: 3CXDesktopApp spawns a shell
id: 00000000-0000-0000-0000-000000000001
status: experimental
level: high
logsource:
    product: windows
    category: process_creation
detection:
    selection_parent:
        ParentImage|endswith: '\3CXDesktopApp.exe'
    selection_child:
        - Image|endswith:
            - '\cmd.exe'
            - '\powershell.exe'
        - CommandLine|contains|all:
            - 'whoami'
            - '/all'
    filter:
        CommandLine|contains: 'update'
    condition: selection_parent and 1 of selection_child* and not filter
"#;

    #[test]
    fn compiles_and_matches() {
        let rule = only_rule(parse_file("r.yml", RULE).remove(0));
        assert_eq!(rule.level.as_deref(), Some("high"));
        assert!(rule.matches(&event(&[
            ("ParentImage", "C:\\x\\3CXDesktopApp.exe"),
            ("Image", "C:\\w\\CMD.EXE"),
            ("CommandLine", "cmd")
        ])));
        assert!(rule.matches(&event(&[
            ("ParentImage", "C:\\x\\3cxdesktopapp.exe"),
            ("Image", "C:\\w\\x.exe"),
            ("CommandLine", "x whoami /all")
        ])));
        assert!(!rule.matches(&event(&[
            ("ParentImage", "C:\\x\\3CXDesktopApp.exe"),
            ("Image", "C:\\w\\x.exe"),
            ("CommandLine", "whoami")
        ])));
        assert!(!rule.matches(&event(&[
            ("ParentImage", "C:\\x\\3CXDesktopApp.exe"),
            ("Image", "C:\\w\\cmd.exe"),
            ("CommandLine", "update")
        ])));
        let mut other = event(&[
            ("ParentImage", "C:\\x\\3CXDesktopApp.exe"),
            ("Image", "C:\\w\\cmd.exe"),
        ]);
        other.logsource.category = Some("image_load".into());
        assert!(!rule.matches(&other), "logsource must fit");
    }

    #[test]
    fn an_undefined_placeholder_matches_nothing() {
        let text = "title: t\nlogsource:\n  category: process_creation\ndetection:\n  sel:\n    Image|endswith: '\\cmd.exe'\n  filter:\n    Computer|expand: '%known_hosts%'\n  condition: sel and not filter\n";
        let rule = only_rule(parse_file("p.yml", text).remove(0));
        assert!(
            rule.matches(&event(&[("Image", "C:\\cmd.exe"), ("Computer", "dc1")])),
            "an empty list excludes nothing"
        );
    }

    #[test]
    fn multi_document_keywords_null_and_errors() {
        let text = "action: global\ntitle: t\nlogsource:\n  product: windows\ndetection:\n  condition: sel\n---\nlogsource:\n  category: process_creation\ndetection:\n  sel:\n    Image: null\n---\nlogsource:\n  category: image_load\ndetection:\n  sel:\n    - evil\n";
        let rules: Vec<Rule> = parse_file("m.yml", text)
            .into_iter()
            .map(only_rule)
            .collect();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].product.as_deref(), Some("windows"));
        assert!(
            rules[0].matches(&event(&[("CommandLine", "x")])),
            "Image: null matches an absent field"
        );
        let mut e = event(&[("ImageLoaded", "C:\\EVIL.dll")]);
        e.logsource.category = Some("image_load".into());
        assert!(rules[1].matches(&e), "keywords search every field");
        let bad = parse_file(
            "b.yml",
            "title: x\ndetection:\n  sel:\n    A|nope: 1\n  condition: sel\n",
        );
        assert!(
            bad[0]
                .as_ref()
                .unwrap_err()
                .message
                .contains("unknown modifier")
        );
        let broken = parse_file("c.yml", "title: x\ndetection: [\n");
        assert!(broken[0].as_ref().unwrap_err().line.is_some());
        let corr = parse_file("d.yml", "title: x\ncorrelation:\n  type: event_count\n");
        assert!(
            corr[0]
                .as_ref()
                .unwrap_err()
                .message
                .contains("correlation")
        );
    }
}
