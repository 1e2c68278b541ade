//! STIX 2.1 bundles: indicators with STIX patterns, their validity and
//! revocation, and `indicates` relationships naming a campaign, intrusion
//! set or malware.
//!
//! Patterns are read per the STIX 2.1 patterning grammar. turncoat
//! evaluates comparison expressions on `domain-name:value`, `url:value`,
//! `ipv4-addr:value`/`ipv6-addr:value`, `file:hashes.*` and `file:name`
//! joined by `OR`, and `AND` within one observation (the conditions must
//! hold on the same event). Anything else is stored as an unsupported
//! indicator with the reason, never dropped.

use std::collections::HashMap;

use serde_json::Value as Json;
use turncoat_core::indicator::{Condition, normalize_indicator_value};
use turncoat_core::{Indicator, IndicatorKind, Time};

use super::{Intel, feed_name};
use crate::{Location, ReadIssue};

/// Reads a STIX 2.1 bundle (or a bare array of objects, or one object).
pub fn read(name: &str, bytes: &[u8]) -> Result<Intel, ReadIssue> {
    let doc: Json = serde_json::from_slice(bytes).map_err(|e| {
        ReadIssue::new(
            name,
            Location::Line(e.line() as u64),
            format!("invalid JSON: {e}"),
        )
    })?;
    let objects: Vec<&Json> = match &doc {
        Json::Array(items) => items.iter().collect(),
        Json::Object(o) if o.get("type").and_then(Json::as_str) == Some("bundle") => o
            .get("objects")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .collect(),
        Json::Object(_) => vec![&doc],
        _ => {
            return Err(ReadIssue::new(
                name,
                Location::Unknown,
                "not a STIX bundle, object or array of objects",
            ));
        }
    };
    let feed = feed_name(name);
    let mut intel = Intel::default();

    // Names of what indicators can point at, and who indicates what.
    let mut names: HashMap<&str, (&str, &str)> = HashMap::new();
    for o in &objects {
        let ty = o.get("type").and_then(Json::as_str).unwrap_or("");
        if matches!(
            ty,
            "campaign" | "intrusion-set" | "malware" | "threat-actor"
        ) && let (Some(id), Some(n)) = (
            o.get("id").and_then(Json::as_str),
            o.get("name").and_then(Json::as_str),
        ) {
            names.insert(id, (ty, n));
        }
    }
    let mut attribution: HashMap<&str, (u8, &str)> = HashMap::new();
    for o in &objects {
        if o.get("type").and_then(Json::as_str) != Some("relationship")
            || o.get("relationship_type").and_then(Json::as_str) != Some("indicates")
        {
            continue;
        }
        let (Some(src), Some(dst)) = (
            o.get("source_ref").and_then(Json::as_str),
            o.get("target_ref").and_then(Json::as_str),
        ) else {
            continue;
        };
        if let Some((ty, n)) = names.get(dst) {
            let rank = match *ty {
                "campaign" => 0,
                "intrusion-set" => 1,
                "threat-actor" => 2,
                _ => 3,
            };
            let slot = attribution.entry(src).or_insert((rank, n));
            if rank < slot.0 {
                *slot = (rank, n);
            }
        }
    }

    for (i, o) in objects.iter().enumerate() {
        let ty = o.get("type").and_then(Json::as_str).unwrap_or("");
        if ty != "indicator" {
            if ty != "bundle" {
                intel.informational += 1;
            }
            continue;
        }
        let location = Location::Record(i as u64 + 1);
        let id = o.get("id").and_then(Json::as_str);
        let Some(pattern) = o.get("pattern").and_then(Json::as_str) else {
            intel.rejected.push(ReadIssue::new(
                name,
                location,
                format!("indicator {} has no pattern", id.unwrap_or("?")),
            ));
            continue;
        };
        let time = |k: &str| -> Result<Option<Time>, String> {
            o.get(k)
                .and_then(Json::as_str)
                .map(Time::parse)
                .transpose()
                .map_err(|e| format!("{k}: {e}"))
        };
        let (valid_from, valid_until) = match (time("valid_from"), time("valid_until")) {
            (Ok(f), Ok(u)) => (f, u),
            (Err(e), _) | (_, Err(e)) => {
                intel.rejected.push(ReadIssue::new(name, location, e));
                continue;
            }
        };
        let pattern_type = o
            .get("pattern_type")
            .and_then(Json::as_str)
            .unwrap_or("stix");
        let parsed = if pattern_type == "stix" {
            compile(pattern)
        } else {
            vec![Err(PatternError::NotEvaluated(format!(
                "pattern_type {pattern_type:?}"
            )))]
        };
        let campaign = id
            .and_then(|id| attribution.get(id))
            .map(|(_, n)| (*n).to_owned());
        let description = o
            .get("name")
            .or_else(|| o.get("description"))
            .and_then(Json::as_str)
            .map(str::to_owned);
        for result in parsed {
            let mut ind = match result.or_else(|reason| {
                Indicator::unsupported(pattern, &reason.to_string(), &feed).map_err(|_| reason)
            }) {
                Ok(ind) => ind,
                Err(reason) => {
                    intel.rejected.push(ReadIssue::new(
                        name,
                        location,
                        format!(
                            "indicator {}: pattern {}: {reason}",
                            id.unwrap_or("?"),
                            turncoat_core::quote(pattern)
                        ),
                    ));
                    continue;
                }
            };
            ind.source = feed.clone();
            ind.external_id = id.map(str::to_owned);
            ind.valid_from = valid_from;
            ind.valid_until = valid_until;
            ind.revoked = o.get("revoked").and_then(Json::as_bool).unwrap_or(false);
            ind.confidence = o
                .get("confidence")
                .and_then(Json::as_u64)
                .map(|c| c.min(100) as u8);
            ind.campaign = campaign.clone();
            ind.description = description.clone();
            intel.indicators.push(ind);
        }
    }
    Ok(intel)
}

/// Compiles a STIX pattern into indicators, one per `OR` branch; a branch
/// turncoat cannot evaluate comes back as `Err(reason)`.
pub fn compile(pattern: &str) -> Vec<Result<Indicator, PatternError>> {
    let tokens = match lex(pattern) {
        Ok(t) => t,
        Err(e) => return vec![Err(e)],
    };
    let mut p = Parser { tokens, pos: 0 };
    let dnf = match p.pattern() {
        Ok(d) if p.pos == p.tokens.len() => d,
        Ok(_) => {
            return vec![Err(PatternError::Syntax(format!(
                "unexpected {:?} after the pattern",
                p.tokens[p.pos]
            )))];
        }
        Err(e) => return vec![Err(e)],
    };
    dnf.into_iter()
        .map(|branch| branch.and_then(conjunction))
        .collect()
}

/// Why a STIX pattern, or one `OR` branch of it, gives no indicator:
/// it is malformed, or valid STIX that turncoat does not evaluate.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PatternError {
    #[error("pattern is longer than 64 KiB")]
    TooLong,
    #[error("pattern has too many branches")]
    TooManyBranches,
    #[error("unexpected character {0:?} in pattern")]
    Character(char),
    #[error("unterminated string in pattern")]
    UnterminatedString,
    #[error("missing {0}")]
    Missing(&'static str),
    /// Tokens out of place: what was expected and what was found.
    #[error("{0}")]
    Syntax(String),
    /// Valid STIX beyond what turncoat matches (a qualifier, NOT, a
    /// correlation of observations).
    #[error("{0} is not evaluated")]
    NotEvaluated(String),
    #[error(transparent)]
    Value(#[from] turncoat_core::indicator::InvalidIndicator),
}

/// One comparison: `object:path op 'value'`.
#[derive(Clone, Debug, PartialEq)]
struct Comparison {
    path: String,
    op: String,
    value: String,
}

type Conjunction = Result<Vec<Comparison>, PatternError>;

fn conjunction(parts: Vec<Comparison>) -> Result<Indicator, PatternError> {
    let mut conditions = parts
        .iter()
        .map(comparison)
        .collect::<Result<Vec<_>, _>>()?;
    let rank = |k: IndicatorKind| match k {
        IndicatorKind::Sha256 | IndicatorKind::Sha1 | IndicatorKind::Md5 => 0,
        IndicatorKind::Url => 1,
        IndicatorKind::UrlPrefix => 2,
        IndicatorKind::Domain => 3,
        IndicatorKind::Ip => 4,
        IndicatorKind::Cidr => 5,
        _ => 6,
    };
    conditions.sort_by_key(|c| rank(c.kind));
    let primary = conditions.remove(0);
    let mut ind = Indicator::new(primary.kind, &primary.value, "")?;
    ind.also = conditions;
    Ok(ind)
}

fn comparison(c: &Comparison) -> Result<Condition, PatternError> {
    let described = || format!("comparison `{} {} '{}'`", c.path, c.op, c.value);
    let unsupported = || PatternError::NotEvaluated(described());
    let (object, property) = c.path.split_once(':').ok_or_else(unsupported)?;
    let property = property.replace('\'', "");
    let kind = match (object, property.as_str(), c.op.as_str()) {
        ("domain-name", "value", "=") => IndicatorKind::Domain,
        ("domain-name", "value", "LIKE") => {
            // `%.x.com` is "every subdomain of x.com"; other shapes are not.
            let rest = c
                .value
                .strip_prefix("%.")
                .filter(|r| !r.contains(['%', '_']))
                .ok_or_else(unsupported)?;
            return value_condition(IndicatorKind::Domain, rest);
        }
        ("url", "value", "=") => IndicatorKind::Url,
        ("url", "value", "LIKE") => {
            let prefix = c
                .value
                .strip_suffix('%')
                .filter(|r| !r.contains(['%', '_']));
            return match prefix {
                Some(p) => value_condition(IndicatorKind::UrlPrefix, p),
                None if !c.value.contains(['%', '_']) => {
                    value_condition(IndicatorKind::Url, &c.value)
                }
                None => Err(PatternError::NotEvaluated(format!(
                    "{} is not evaluated: LIKE with wildcards inside the URL",
                    described()
                ))),
            };
        }
        ("ipv4-addr" | "ipv6-addr", "value", "=") if c.value.contains('/') => IndicatorKind::Cidr,
        ("ipv4-addr" | "ipv6-addr", "value", "=") => IndicatorKind::Ip,
        ("ipv4-addr" | "ipv6-addr", "value", "ISSUBSET") => IndicatorKind::Cidr,
        ("file", "hashes.SHA-256" | "hashes.SHA256", "=") => IndicatorKind::Sha256,
        ("file", "hashes.SHA-1" | "hashes.SHA1", "=") => IndicatorKind::Sha1,
        ("file", "hashes.MD5", "=") => IndicatorKind::Md5,
        ("file", "name", "=") => IndicatorKind::Filename,
        _ => return Err(unsupported()),
    };
    value_condition(kind, &c.value)
}

fn value_condition(kind: IndicatorKind, value: &str) -> Result<Condition, PatternError> {
    Ok(Condition {
        kind,
        value: normalize_indicator_value(kind, value)?,
    })
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Open,
    Close,
    LParen,
    RParen,
    Word(String),
    Str(String),
}

fn lex(s: &str) -> Result<Vec<Token>, PatternError> {
    if s.len() > 64 * 1024 {
        return Err(PatternError::TooLong);
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '[' => {
                out.push(Token::Open);
                i += 1;
            }
            ']' => {
                out.push(Token::Close);
                i += 1;
            }
            '(' => {
                out.push(Token::LParen);
                i += 1;
            }
            ')' => {
                out.push(Token::RParen);
                i += 1;
            }
            '\'' => {
                let (text, next) = quoted(&chars, i)?;
                out.push(Token::Str(text));
                i = next;
            }
            '=' | '!' | '<' | '>' => {
                let mut op = c.to_string();
                if chars.get(i + 1) == Some(&'=') {
                    op.push('=');
                    i += 1;
                }
                out.push(Token::Word(op));
                i += 1;
            }
            _ => {
                // A word or an object path; paths may hold quoted parts
                // (`file:hashes.'SHA-256'`) and typed literals (`t'...'`).
                let mut word = String::new();
                while i < chars.len() {
                    let c = chars[i];
                    if c == '\'' {
                        if word.len() == 1 && matches!(word.as_str(), "t" | "h" | "b") {
                            let (text, next) = quoted(&chars, i)?;
                            word = text;
                            i = next;
                            break;
                        }
                        let (text, next) = quoted(&chars, i)?;
                        word.push('\'');
                        word.push_str(&text);
                        word.push('\'');
                        i = next;
                    } else if c.is_alphanumeric() || matches!(c, '_' | '-' | ':' | '.' | '*' | '%')
                    {
                        word.push(c);
                        i += 1;
                    } else {
                        break;
                    }
                }
                if word.is_empty() {
                    return Err(PatternError::Character(c));
                }
                out.push(Token::Word(word));
            }
        }
    }
    Ok(out)
}

fn quoted(chars: &[char], start: usize) -> Result<(String, usize), PatternError> {
    let mut text = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() => {
                text.push(chars[i + 1]);
                i += 2;
            }
            '\'' => return Ok((text, i + 1)),
            c => {
                text.push(c);
                i += 1;
            }
        }
    }
    Err(PatternError::UnterminatedString)
}

/// Recursive descent over the patterning grammar, producing disjunctive
/// normal form: a list of branches, each a list of comparisons that must
/// all hold on one observation.
struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

const MAX_BRANCHES: usize = 4096;

impl Parser {
    fn peek_word(&self) -> Option<&str> {
        match self.tokens.get(self.pos) {
            Some(Token::Word(w)) => Some(w),
            _ => None,
        }
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if self.peek_word().is_some_and(|x| x.eq_ignore_ascii_case(w)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// observation ( (OR | AND | FOLLOWEDBY) observation )* qualifiers
    fn pattern(&mut self) -> Result<Vec<Conjunction>, PatternError> {
        let mut branches = self.observation()?;
        loop {
            if self.eat_word("OR") {
                branches.extend(self.observation()?);
                if branches.len() > MAX_BRANCHES {
                    return Err(PatternError::TooManyBranches);
                }
            } else if self.eat_word("AND") || self.eat_word("FOLLOWEDBY") {
                // Two observations in one pattern need a correlation of
                // separate events: not evaluated.
                self.observation()?;
                return Ok(vec![Err(PatternError::NotEvaluated(
                    "AND/FOLLOWEDBY between observations".into(),
                ))]);
            } else if let Some(q) = self.peek_word().filter(|w| {
                ["WITHIN", "REPEATS", "START", "STOP"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k))
            }) {
                return Err(PatternError::NotEvaluated(format!("qualifier {q}")));
            } else {
                return Ok(branches);
            }
        }
    }

    fn observation(&mut self) -> Result<Vec<Conjunction>, PatternError> {
        match self.tokens.get(self.pos) {
            Some(Token::Open) => {
                self.pos += 1;
                let dnf = self.or_expr()?;
                if self.tokens.get(self.pos) != Some(&Token::Close) {
                    return Err(PatternError::Missing("] in pattern"));
                }
                self.pos += 1;
                Ok(dnf)
            }
            Some(Token::LParen) => {
                self.pos += 1;
                let dnf = self.pattern()?;
                if self.tokens.get(self.pos) != Some(&Token::RParen) {
                    return Err(PatternError::Missing(") in pattern"));
                }
                self.pos += 1;
                Ok(dnf)
            }
            other => Err(PatternError::Syntax(format!(
                "expected [ or ( but found {other:?}"
            ))),
        }
    }

    fn or_expr(&mut self) -> Result<Vec<Conjunction>, PatternError> {
        let mut branches = self.and_expr()?;
        while self.eat_word("OR") {
            branches.extend(self.and_expr()?);
            if branches.len() > MAX_BRANCHES {
                return Err(PatternError::TooManyBranches);
            }
        }
        Ok(branches)
    }

    fn and_expr(&mut self) -> Result<Vec<Conjunction>, PatternError> {
        let mut acc = self.term()?;
        while self.eat_word("AND") {
            let rhs = self.term()?;
            let mut next = Vec::new();
            for a in &acc {
                for b in &rhs {
                    next.push(match (a, b) {
                        (Ok(x), Ok(y)) => Ok(x.iter().chain(y).cloned().collect()),
                        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
                    });
                }
            }
            if next.len() > MAX_BRANCHES {
                return Err(PatternError::TooManyBranches);
            }
            acc = next;
        }
        Ok(acc)
    }

    fn term(&mut self) -> Result<Vec<Conjunction>, PatternError> {
        if self.tokens.get(self.pos) == Some(&Token::LParen) {
            self.pos += 1;
            let inner = self.or_expr()?;
            if self.tokens.get(self.pos) != Some(&Token::RParen) {
                return Err(PatternError::Missing(") in comparison expression"));
            }
            self.pos += 1;
            return Ok(inner);
        }
        let path = match self.tokens.get(self.pos) {
            Some(Token::Word(w)) if w.contains(':') => w.clone(),
            other => {
                return Err(PatternError::Syntax(format!(
                    "expected an object path but found {other:?}"
                )));
            }
        };
        self.pos += 1;
        let negated = self.eat_word("NOT");
        let op = match self.tokens.get(self.pos) {
            Some(Token::Word(w)) => w.to_ascii_uppercase(),
            other => {
                return Err(PatternError::Syntax(format!(
                    "expected an operator after {path} but found {other:?}"
                )));
            }
        };
        self.pos += 1;
        let value = match self.tokens.get(self.pos) {
            Some(Token::Str(s)) => s.clone(),
            Some(Token::Word(w)) => w.clone(),
            Some(Token::LParen) => {
                // IN ('a', 'b'): consume the set, not evaluated.
                while self.pos < self.tokens.len() && self.tokens[self.pos] != Token::RParen {
                    self.pos += 1;
                }
                String::from("(...)")
            }
            other => {
                return Err(PatternError::Syntax(format!(
                    "expected a value after {path} {op} but found {other:?}"
                )));
            }
        };
        self.pos += 1;
        if negated {
            return Ok(vec![Err(PatternError::NotEvaluated(format!(
                "NOT {op} on {path}"
            )))]);
        }
        Ok(vec![Ok(vec![Comparison { path, op, value }])])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(p: &str) -> Vec<Result<(IndicatorKind, String, usize), String>> {
        compile(p)
            .into_iter()
            .map(|r| {
                r.map(|i| (i.kind, i.value, i.also.len()))
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    #[test]
    fn or_of_supported_comparisons() {
        let got = kinds(
            "[domain-name:value = 'AkamaiContainer.com' OR file:hashes.'SHA-256' = 'AA124A4B4DF12B34E74EE7F6C683B2EBEC4CE9A8EDCF9BE345823B4FDCF5D868']",
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_ref().unwrap().0, IndicatorKind::Domain);
        assert_eq!(got[0].as_ref().unwrap().1, "akamaicontainer.com");
        assert_eq!(got[1].as_ref().unwrap().0, IndicatorKind::Sha256);
        let got = kinds(
            "[url:value = 'http://a.example/x'] OR [ipv4-addr:value ISSUBSET '198.51.100.0/24']",
        );
        assert_eq!(
            got[1].as_ref().unwrap(),
            &(IndicatorKind::Cidr, "198.51.100.0/24".to_owned(), 0)
        );
    }

    #[test]
    fn and_within_an_observation_keeps_conditions() {
        let got = kinds(
            "[file:name = 'ffmpeg.dll' AND file:hashes.MD5 = '74bc2d0b6680faa1a5a76b27e5479cbc']",
        );
        assert_eq!(
            got,
            vec![Ok((
                IndicatorKind::Md5,
                "74bc2d0b6680faa1a5a76b27e5479cbc".to_owned(),
                1
            ))]
        );
        let got = kinds(
            "[(domain-name:value = 'a.com' OR domain-name:value = 'b.com') AND file:name = 'x.exe']",
        );
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn like_and_unsupported_parts() {
        let got = kinds("[url:value LIKE 'https://raw.githubusercontent.com/IconStorages/%']");
        assert_eq!(got[0].as_ref().unwrap().0, IndicatorKind::UrlPrefix);
        assert!(kinds("[process:name = 'x.exe']")[0].is_err());
        assert!(kinds("[domain-name:value = 'a.com'] WITHIN 10 SECONDS")[0].is_err());
        assert!(
            kinds("[domain-name:value = 'a.com'] AND [ipv4-addr:value = '1.2.3.4']")[0].is_err()
        );
        assert!(kinds("[domain-name:value NOT = 'a.com']")[0].is_err());
        assert!(kinds("[domain-name:value = 'unterminated]")[0].is_err());
        let mixed = kinds("[domain-name:value = 'a.com' OR process:pid = 4]");
        assert!(
            mixed[0].is_ok() && mixed[1].is_err(),
            "supported branches survive beside unsupported ones"
        );
    }

    #[test]
    fn bundle_with_relationships_validity_and_revocation() {
        let bundle = r#"{"type":"bundle","id":"bundle--1","objects":[
          {"type":"indicator","id":"indicator--1","pattern":"[domain-name:value = 'msstorageazure.com']","pattern_type":"stix",
           "valid_from":"2023-03-29T00:00:00Z","valid_until":"2024-03-29T00:00:00Z","confidence":90},
          {"type":"indicator","id":"indicator--2","pattern":"[process:name = 'x']","pattern_type":"stix","valid_from":"2023-03-29T00:00:00Z","revoked":true},
          {"type":"indicator","id":"indicator--3","pattern":"rule x {}","pattern_type":"yara","valid_from":"2023-03-29T00:00:00Z"},
          {"type":"campaign","id":"campaign--1","name":"SmoothOperator"},
          {"type":"malware","id":"malware--1","name":"TAXHAUL"},
          {"type":"relationship","id":"relationship--1","relationship_type":"indicates","source_ref":"indicator--1","target_ref":"malware--1"},
          {"type":"relationship","id":"relationship--2","relationship_type":"indicates","source_ref":"indicator--1","target_ref":"campaign--1"}
        ]}"#;
        let intel = read("feed.json", bundle.as_bytes()).unwrap();
        assert_eq!(intel.indicators.len(), 3);
        let first = &intel.indicators[0];
        assert_eq!(
            first.campaign.as_deref(),
            Some("SmoothOperator"),
            "a campaign outranks malware"
        );
        assert_eq!(first.confidence, Some(90));
        assert_eq!(
            first.valid_until,
            Some(Time::parse("2024-03-29T00:00:00Z").unwrap())
        );
        assert_eq!(intel.indicators[1].kind, IndicatorKind::Unsupported);
        assert!(intel.indicators[1].revoked);
        assert!(
            intel.indicators[2]
                .unsupported_reason
                .as_deref()
                .unwrap()
                .contains("yara")
        );
    }

    /// An empty or blank pattern once panicked the whole import; it is a
    /// rejected record naming the indicator, and the rest still read.
    #[test]
    fn blank_patterns_are_rejected_not_a_panic() {
        for pattern in ["", "   ", "\n\t"] {
            let bundle = serde_json::json!({"type": "bundle", "id": "bundle--1", "objects": [
                {"type": "indicator", "id": "indicator--blank", "pattern": pattern, "pattern_type": "stix"},
                {"type": "indicator", "id": "indicator--ok", "pattern": "[domain-name:value = 'akamaicontainer.com']", "pattern_type": "stix"},
            ]});
            let intel = read("feed.json", bundle.to_string().as_bytes()).unwrap();
            assert_eq!(intel.indicators.len(), 1, "{pattern:?}");
            assert_eq!(intel.indicators[0].value, "akamaicontainer.com");
            assert_eq!(intel.rejected.len(), 1);
            let message = intel.rejected[0].to_string();
            assert!(message.contains("feed.json"), "{message}");
            assert!(message.contains("indicator--blank"), "{message}");
        }
    }
}
