//! Detection items: a field, its modifiers and values, compiled once into
//! matchers that compare without allocating where they can.
//!
//! Strings compare case-insensitively unless `|cased`; `*` and `?` are
//! wildcards, `\` escapes them. Modifiers transform the pattern
//! (`utf16le`, `base64`, `base64offset`, `windash`), place it (`contains`,
//! `startswith`, `endswith`), or change the comparison (`re`, `cidr`,
//! `gt`/`gte`/`lt`/`lte`, `exists`, `fieldref`); `all` makes a value list
//! an AND.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ipnet::IpNet;
use regex::{Regex, RegexBuilder};
use turncoat_core::{Fields, Value};

/// Compiled regexes beyond this size are refused: a hostile rule cannot
/// make the engine build a huge automaton.
const REGEX_SIZE_LIMIT: usize = 16 << 20;

/// One compiled comparison against a field's value.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Case-folded equality.
    Eq(String),
    Prefix(String),
    Suffix(String),
    /// A substring, with its searcher built once (building one per
    /// comparison dominated matching).
    Contains(Box<memchr::memmem::Finder<'static>>),
    /// Wildcards, compiled to an anchored regex over the case-folded value,
    /// with its longest literal piece (for the prefilter).
    Glob(Regex, String),
    /// A `re` pattern (or a `cased` glob), over the value as it is.
    Regex(Regex),
    /// Exact, case-sensitive (`|cased`).
    EqCased(String),
    Cidr(IpNet),
    Num(NumOp, f64),
    /// `null`: the field is absent or empty.
    Null,
    /// `exists: true|false`.
    Exists(bool),
    /// Equal (case-folded) to another field of the event.
    FieldRef(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumOp {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
}

/// An event's fields, and the same fields case-folded once, so that
/// thousands of case-insensitive comparisons share one lowercasing.
pub struct Target<'a> {
    pub fields: &'a Fields,
    pub folded: &'a Fields,
}

impl<'a> Target<'a> {
    pub fn new(fields: &'a Fields, folded: &'a Fields) -> Target<'a> {
        Target { fields, folded }
    }

    /// A field's value and its case-folded twin. Events carry a few dozen
    /// fields: a scan beats hashing the name.
    fn get(&self, name: &str) -> (Option<&'a Value>, Option<&'a Value>) {
        match self.fields.iter().position(|(k, _)| k == name) {
            Some(i) => (self.fields.value_at(i), self.folded.value_at(i)),
            None => (None, None),
        }
    }
}

/// The fields with every string lowercased.
pub fn fold(fields: &Fields) -> Fields {
    fn fold_value(v: &Value) -> Value {
        match v {
            Value::Str(s) => Value::Str(s.to_lowercase()),
            Value::List(items) => Value::List(items.iter().map(fold_value).collect()),
            other => other.clone(),
        }
    }
    fields
        .iter()
        .map(|(k, v)| (k.to_owned(), fold_value(v)))
        .collect()
}

fn value_text(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::Str(s) => Some(s.as_str().into()),
        Value::Int(i) => Some(i.to_string().into()),
        Value::Float(x) => Some(x.to_string().into()),
        Value::Bool(b) => Some(b.to_string().into()),
        _ => None,
    }
}

impl Matcher {
    /// Whether `value` (one scalar, or any element of a list) matches;
    /// `folded` is the same value case-folded.
    pub fn matches(&self, value: Option<&Value>, folded: Option<&Value>, t: &Target) -> bool {
        match self {
            Matcher::Null => match value {
                None | Some(Value::Null) => true,
                Some(Value::Str(s)) => s.is_empty(),
                _ => false,
            },
            Matcher::Exists(want) => value.is_some_and(|v| *v != Value::Null) == *want,
            _ => match (value, folded) {
                (None | Some(Value::Null), _) => false,
                (Some(Value::List(items)), Some(Value::List(folded))) => {
                    items.iter().zip(folded).any(|(i, f)| self.scalar(i, f, t))
                }
                (Some(v), Some(f)) => self.scalar(v, f, t),
                (Some(v), None) => self.scalar(v, v, t),
            },
        }
    }

    fn scalar(&self, v: &Value, folded: &Value, t: &Target) -> bool {
        if let Matcher::Num(op, want) = self {
            let got = match v {
                Value::Int(i) => *i as f64,
                Value::Float(x) => *x,
                Value::Str(s) => match s.trim().parse::<f64>() {
                    Ok(x) => x,
                    Err(_) => return false,
                },
                _ => return false,
            };
            return match op {
                NumOp::Gt => got > *want,
                NumOp::Gte => got >= *want,
                NumOp::Lt => got < *want,
                NumOp::Lte => got <= *want,
                NumOp::Eq => got == *want,
            };
        }
        let (Some(text), Some(low)) = (value_text(v), value_text(folded)) else {
            return false;
        };
        match self {
            Matcher::Eq(p) => *low == **p,
            Matcher::Prefix(p) => low.starts_with(p.as_str()),
            Matcher::Suffix(p) => low.ends_with(p.as_str()),
            Matcher::Contains(finder) => finder.find(low.as_bytes()).is_some(),
            Matcher::Glob(re, _) => re.is_match(&low),
            Matcher::Regex(re) => re.is_match(&text),
            Matcher::EqCased(p) => text == p.as_str(),
            Matcher::Cidr(net) => text
                .trim()
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| net.contains(&ip)),
            Matcher::FieldRef(other) => t
                .get(other)
                .1
                .and_then(value_text)
                .is_some_and(|o| o == low),
            Matcher::Num(..) | Matcher::Null | Matcher::Exists(_) => false,
        }
    }
}

/// A field (or a keyword search when `field` is `None`) and the values it
/// may take: any one of them, or all with `|all`.
#[derive(Debug, Clone)]
pub struct Item {
    pub field: Option<String>,
    pub matchers: Vec<Matcher>,
    pub all: bool,
}

impl Item {
    pub fn matches(&self, t: &Target) -> bool {
        match &self.field {
            Some(name) => {
                let (value, folded) = t.get(name);
                if self.all {
                    !self.matchers.is_empty()
                        && self.matchers.iter().all(|m| m.matches(value, folded, t))
                } else {
                    self.matchers.iter().any(|m| m.matches(value, folded, t))
                }
            }
            // Keywords: any field's value.
            None => {
                let hit = |m: &Matcher| {
                    t.fields
                        .iter()
                        .zip(t.folded.iter())
                        .any(|((_, v), (_, f))| m.matches(Some(v), Some(f), t))
                };
                if self.all {
                    !self.matchers.is_empty() && self.matchers.iter().all(hit)
                } else {
                    self.matchers.iter().any(hit)
                }
            }
        }
    }
}

/// Why a detection item did not compile.
pub type ItemError = crate::CompileError;

/// A Sigma string value as pattern pieces: literal text and wildcards.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Star,
    Question,
}

fn pieces(value: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some('*') | Some('?') | Some('\\') => text.push(chars.next().unwrap_or('\\')),
                _ => text.push('\\'),
            },
            '*' | '?' => {
                if !text.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut text)));
                }
                out.push(if c == '*' {
                    Piece::Star
                } else {
                    Piece::Question
                });
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    out
}

/// Sigma's `windash`: each `-` that starts a command-line flag may also be
/// `/`, an en dash, an em dash or a horizontal bar.
fn windash_variants(s: &str) -> Vec<String> {
    const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];
    let mut out = vec![String::new()];
    let mut prev = ' ';
    for c in s.chars() {
        if c == '-' && (prev == ' ' || prev == '\t' || out[0].is_empty()) && out.len() < 256 {
            out = out
                .iter()
                .flat_map(|o| DASHES.iter().map(move |d| format!("{o}{d}")))
                .collect();
        } else {
            for o in &mut out {
                o.push(c);
            }
        }
        prev = c;
    }
    out
}

/// The three base64 renderings of `bytes` at offsets 0, 1 and 2, trimmed
/// to the characters that do not depend on the neighbouring bytes.
fn base64_offsets(bytes: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    const END: [usize; 3] = [0, 3, 2];
    (0..3)
        .map(|i| {
            let mut padded = vec![b' '; i];
            padded.extend_from_slice(bytes);
            let enc = STANDARD.encode(&padded);
            let trim_end = END[(bytes.len() + i) % 3];
            let end = enc.len().saturating_sub(trim_end);
            enc.get(START[i]..end).unwrap_or("").to_owned()
        })
        .collect()
}

/// Compiles one value under the modifiers.
pub fn compile_value(value: &Value, modifiers: &[String]) -> Result<Vec<Matcher>, ItemError> {
    let has = |m: &str| modifiers.iter().any(|x| x == m);
    if has("exists") {
        return match value {
            Value::Bool(b) => Ok(vec![Matcher::Exists(*b)]),
            Value::Str(s) if s == "true" || s == "false" => Ok(vec![Matcher::Exists(s == "true")]),
            other => Err(crate::CompileError::from(format!(
                "exists takes true or false, not {other}"
            ))),
        };
    }
    if let Value::Null = value {
        return Ok(vec![Matcher::Null]);
    }
    for (m, op) in [
        ("gt", NumOp::Gt),
        ("gte", NumOp::Gte),
        ("lt", NumOp::Lt),
        ("lte", NumOp::Lte),
    ] {
        if has(m) {
            let n = match value {
                Value::Int(i) => *i as f64,
                Value::Float(x) => *x,
                Value::Str(s) => s
                    .parse()
                    .map_err(|_| format!("{m} needs a number, not {s:?}"))?,
                other => {
                    return Err(crate::CompileError::from(format!(
                        "{m} needs a number, not {other}"
                    )));
                }
            };
            return Ok(vec![Matcher::Num(op, n)]);
        }
    }
    let text = match value {
        Value::Str(s) => s.to_string(),
        Value::Int(i) => {
            if modifiers.is_empty() {
                return Ok(vec![
                    Matcher::Num(NumOp::Eq, *i as f64),
                    Matcher::Eq(i.to_string()),
                ]);
            }
            i.to_string()
        }
        Value::Float(x) => x.to_string(),
        Value::Bool(b) => b.to_string(),
        other => {
            return Err(crate::CompileError::from(format!(
                "unsupported value {other}"
            )));
        }
    };
    if has("fieldref") {
        return Ok(vec![Matcher::FieldRef(text)]);
    }
    if has("cidr") {
        return text
            .trim()
            .parse::<IpNet>()
            .map(|n| vec![Matcher::Cidr(n)])
            .map_err(|source| crate::CompileError::Cidr {
                text: text.clone(),
                source,
            });
    }
    if has("re") {
        let re = RegexBuilder::new(&text)
            .case_insensitive(has("i"))
            .multi_line(has("m"))
            .dot_matches_new_line(has("s"))
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|source| crate::CompileError::Regex {
                pattern: text.clone(),
                source: Box::new(source),
            })?;
        return Ok(vec![Matcher::Regex(re)]);
    }
    if has("expand") {
        // A placeholder (`%known_cdcs%`) stands for a list the deployment
        // defines; with none defined the list is empty and matches nothing
        // (a filter on it then excludes nothing).
        return Ok(vec![]);
    }
    // Pattern transformations, in the order written.
    let mut variants: Vec<Vec<u8>> = Vec::new();
    let base: Vec<String> = if has("windash") {
        windash_variants(&text)
    } else {
        vec![text.clone()]
    };
    let encoding = modifiers
        .iter()
        .find(|m| matches!(m.as_str(), "utf16le" | "utf16be" | "utf16" | "wide"));
    for b in &base {
        variants.push(match encoding.map(String::as_str) {
            Some("utf16be") => b.encode_utf16().flat_map(|u| u.to_be_bytes()).collect(),
            Some("utf16") => [0xffu8, 0xfe]
                .into_iter()
                .chain(b.encode_utf16().flat_map(|u| u.to_le_bytes()))
                .collect(),
            Some(_) => b.encode_utf16().flat_map(|u| u.to_le_bytes()).collect(),
            None => b.as_bytes().to_vec(),
        });
    }
    let texts: Vec<String> = if has("base64offset") {
        variants.iter().flat_map(|v| base64_offsets(v)).collect()
    } else if has("base64") {
        variants.iter().map(|v| STANDARD.encode(v)).collect()
    } else if encoding.is_some() {
        return Err("utf16 modifiers need base64 or base64offset after them".into());
    } else {
        base
    };
    let cased = has("cased");
    let encoded = has("base64") || has("base64offset");
    let (contains, starts, ends) = (has("contains"), has("startswith"), has("endswith"));
    let mut out = Vec::new();
    for t in texts {
        // Encoded patterns are literal: base64 has no wildcards.
        let mut ps = if encoded {
            vec![Piece::Text(t)]
        } else {
            pieces(&t)
        };
        if contains || ends {
            ps.insert(0, Piece::Star);
        }
        if contains || starts {
            ps.push(Piece::Star);
        }
        out.push(compile_pieces(&ps, cased || encoded)?);
    }
    Ok(out)
}

fn compile_pieces(ps: &[Piece], cased: bool) -> Result<Matcher, ItemError> {
    let fold = |s: &str| {
        if cased {
            s.to_owned()
        } else {
            s.to_lowercase()
        }
    };
    Ok(match ps {
        [Piece::Text(t)] if cased => Matcher::EqCased(t.clone()),
        [Piece::Text(t)] => Matcher::Eq(fold(t)),
        [Piece::Star, Piece::Text(t), Piece::Star] if !cased => Matcher::Contains(Box::new(
            memchr::memmem::Finder::new(fold(t).as_bytes()).into_owned(),
        )),
        [Piece::Text(t), Piece::Star] if !cased => Matcher::Prefix(fold(t)),
        [Piece::Star, Piece::Text(t)] if !cased => Matcher::Suffix(fold(t)),
        [Piece::Star] => Matcher::Exists(true),
        _ => {
            let mut re = String::from("^");
            let mut longest = String::new();
            for p in ps {
                match p {
                    Piece::Text(t) => {
                        let t = fold(t);
                        re.push_str(&regex::escape(&t));
                        if t.len() > longest.len() {
                            longest = t;
                        }
                    }
                    Piece::Star => re.push_str("(?s:.*)"),
                    Piece::Question => re.push_str("(?s:.)"),
                }
            }
            re.push('$');
            let built = |case_insensitive| {
                RegexBuilder::new(&re)
                    .case_insensitive(case_insensitive)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| crate::CompileError::Wildcard(Box::new(e)))
            };
            if cased {
                Matcher::Regex(built(false)?)
            } else {
                // Over the folded value: no case-insensitive automaton
                // needed, and its longest piece feeds the prefilter.
                Matcher::Glob(built(false)?, longest)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(pairs: &[(&str, &str)]) -> Fields {
        let mut f = Fields::new();
        for (k, v) in pairs {
            f.push(k.to_string(), *v);
        }
        f
    }

    fn m(value: &str, mods: &[&str]) -> Vec<Matcher> {
        compile_value(
            &Value::Str(value.into()),
            &mods.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    fn hit(ms: &[Matcher], v: &str) -> bool {
        let f = Fields::new();
        let t = Target::new(&f, &f);
        let (value, folded) = (Value::Str(v.into()), Value::Str(v.to_lowercase().into()));
        ms.iter()
            .any(|m| m.matches(Some(&value), Some(&folded), &t))
    }

    fn on(m: &Matcher, f: &Fields, name: &str) -> bool {
        let folded = fold(f);
        let t = Target::new(f, &folded);
        let (value, folded) = t.get(name);
        m.matches(value, folded, &t)
    }

    #[test]
    fn wildcards_case_and_escapes() {
        assert!(hit(&m("*\\cmd.exe", &[]), "C:\\Windows\\System32\\CMD.EXE"));
        // `\\*`: an escaped backslash, then a wildcard; `\*` alone is a literal star.
        assert!(hit(&m("c:\\windows\\\\*", &[]), "C:\\Windows\\x"));
        assert!(!hit(&m("c:\\windows\\*", &[]), "C:\\Windows\\x"));
        assert!(hit(&m("a?c", &[]), "ABC"));
        assert!(!hit(&m("a?c", &[]), "abbc"));
        assert!(hit(&m("100\\*", &[]), "100*"));
        assert!(!hit(&m("100\\*", &[]), "1000"));
        assert!(hit(&m("whoami", &["contains"]), "cmd /c WHOAMI /all"));
        assert!(!hit(&m("Whoami", &["contains", "cased"]), "whoami"));
    }

    #[test]
    fn encodings_and_windash() {
        // "ping" in UTF-16LE then base64 at every offset appears inside a
        // longer base64 blob of "x ping y" in UTF-16LE.
        let blob = STANDARD.encode(
            "xx ping yy"
                .encode_utf16()
                .flat_map(|u| u.to_le_bytes())
                .collect::<Vec<u8>>(),
        );
        assert!(hit(
            &m("ping", &["utf16le", "base64offset", "contains"]),
            &blob
        ));
        assert!(hit(&m("abc", &["base64"]), "YWJj"));
        assert!(hit(
            &m(" -enc ", &["windash", "contains"]),
            "powershell /enc abc"
        ));
        assert!(hit(
            &m(" -enc ", &["windash", "contains"]),
            "powershell \u{2013}enc abc"
        ));
        assert!(compile_value(&Value::Str("a".into()), &["utf16le".into()]).is_err());
    }

    #[test]
    fn numbers_cidr_exists_null_fieldref_regex() {
        let f = ev(&[("User", "bob"), ("TargetUser", "BOB"), ("Port", "445")]);
        let n = compile_value(&Value::Int(400), &["gt".into()]).unwrap();
        assert!(on(&n[0], &f, "Port"));
        assert!(hit(
            &compile_value(&Value::Str("10.0.0.0/8".into()), &["cidr".into()]).unwrap(),
            "10.1.2.3"
        ));
        assert!(on(&Matcher::Exists(false), &f, "Nope"));
        assert!(on(&Matcher::Null, &f, "Nope"));
        assert!(on(&Matcher::FieldRef("TargetUser".into()), &f, "User"));
        let re = compile_value(&Value::Str("^b.B$".into()), &["re".into(), "i".into()]).unwrap();
        assert!(on(&re[0], &f, "User"));
        assert!(compile_value(&Value::Str("(".into()), &["re".into()]).is_err());
        assert!(
            compile_value(&Value::Str("a{100000}{100000}".into()), &["re".into()]).is_err(),
            "size-limited"
        );
    }

    #[test]
    fn base64_offsets_match_the_published_trimming() {
        // Known renderings of "ping" at offsets 0..2 (trimmed).
        assert_eq!(base64_offsets(b"ping"), vec!["cGluZ", "Bpbm", "waW5n"]);
    }
}
