//! Sigma conditions: `and`, `or`, `not`, parentheses, `1 of`/`all of`/`any
//! of` a selection pattern or `them`, selection names with `*` wildcards.

/// A parsed condition over selection indices.
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    Sel(usize),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    /// At least this many of the items (`n of`, 2 ≤ n ≤ items): counted,
    /// not expanded into every n-subset, which a rule could make huge.
    AtLeast(usize, Vec<Cond>),
}

impl Cond {
    pub fn eval(&self, sel: &mut dyn FnMut(usize) -> bool) -> bool {
        match self {
            Cond::Sel(i) => sel(*i),
            Cond::And(items) => items.iter().all(|c| c.eval(sel)),
            Cond::Or(items) => items.iter().any(|c| c.eval(sel)),
            Cond::Not(c) => !c.eval(sel),
            Cond::AtLeast(n, items) => {
                let mut held = 0;
                items.iter().any(|c| {
                    held += usize::from(c.eval(sel));
                    held >= *n
                })
            }
        }
    }

    /// The same condition over selections numbered from `offset`.
    pub fn shifted(&self, offset: usize) -> Cond {
        match self {
            Cond::Sel(i) => Cond::Sel(i + offset),
            Cond::And(items) => Cond::And(items.iter().map(|c| c.shifted(offset)).collect()),
            Cond::Or(items) => Cond::Or(items.iter().map(|c| c.shifted(offset)).collect()),
            Cond::Not(c) => Cond::Not(Box::new(c.shifted(offset))),
            Cond::AtLeast(n, items) => {
                Cond::AtLeast(*n, items.iter().map(|c| c.shifted(offset)).collect())
            }
        }
    }
}

/// Why a condition did not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ConditionError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Word(String),
}

fn lex(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in s.chars() {
        match c {
            '(' | ')' => {
                if !word.is_empty() {
                    out.push(Tok::Word(std::mem::take(&mut word)));
                }
                out.push(if c == '(' { Tok::LParen } else { Tok::RParen });
            }
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    out.push(Tok::Word(std::mem::take(&mut word)));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(Tok::Word(word));
    }
    out
}

/// Whether a selection name matches a pattern with `*` wildcards.
///
/// Greedy, going back only to the latest `*`: time in the product of the
/// lengths, where trying every split at every `*` is exponential in the
/// number of stars. Bytes compare as well as characters: a literal run
/// starts with a leading byte, which never equals a continuation byte.
fn name_matches(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (pattern.as_bytes(), name.as_bytes());
    let (mut p, mut n) = (0, 0);
    // The latest `*` seen, and where in the name its match ends so far.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                // Let the `*` take one more byte and try again after it.
                Some((s, end)) => {
                    star = Some((s, end + 1));
                    p = s + 1;
                    n = end + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Parses `text` against the rule's selection `names`.
pub fn parse(text: &str, names: &[String]) -> Result<Cond, ConditionError> {
    if text.len() > 16 * 1024 {
        return Err(ConditionError("condition longer than 16 KiB".into()));
    }
    let tokens = lex(text);
    let mut p = Parser {
        tokens,
        pos: 0,
        names,
        depth: 0,
    };
    let c = p.or()?;
    if p.pos != p.tokens.len() {
        return Err(ConditionError(format!(
            "unexpected {:?} in condition {text:?}",
            p.tokens[p.pos]
        )));
    }
    Ok(c)
}

struct Parser<'a> {
    tokens: Vec<Tok>,
    pos: usize,
    names: &'a [String],
    depth: usize,
}

impl Parser<'_> {
    fn word(&self) -> Option<&str> {
        match self.tokens.get(self.pos) {
            Some(Tok::Word(w)) => Some(w),
            _ => None,
        }
    }

    fn keyword(&mut self, k: &str) -> bool {
        if self.word().is_some_and(|w| w.eq_ignore_ascii_case(k)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Cond, ConditionError> {
        let mut items = vec![self.and()?];
        while self.keyword("or") {
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::Or(items)
        })
    }

    fn and(&mut self) -> Result<Cond, ConditionError> {
        let mut items = vec![self.not()?];
        while self.keyword("and") {
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::And(items)
        })
    }

    fn not(&mut self) -> Result<Cond, ConditionError> {
        if self.keyword("not") {
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Cond, ConditionError> {
        self.depth += 1;
        if self.depth > 64 {
            return Err(ConditionError("condition nested too deep".into()));
        }
        let result = self.atom_inner();
        self.depth -= 1;
        result
    }

    fn atom_inner(&mut self) -> Result<Cond, ConditionError> {
        match self.tokens.get(self.pos).cloned() {
            Some(Tok::LParen) => {
                self.pos += 1;
                let c = self.or()?;
                if self.tokens.get(self.pos) != Some(&Tok::RParen) {
                    return Err(ConditionError("missing ) in condition".into()));
                }
                self.pos += 1;
                Ok(c)
            }
            Some(Tok::Word(w)) => {
                self.pos += 1;
                let quantifier = match w.to_ascii_lowercase().as_str() {
                    "all" => Some(None),
                    "any" => Some(Some(1)),
                    n if n.parse::<usize>().is_ok()
                        && self.word().is_some_and(|x| x.eq_ignore_ascii_case("of")) =>
                    {
                        Some(Some(n.parse::<usize>().unwrap_or(1)))
                    }
                    _ => None,
                };
                if let Some(q) = quantifier
                    && self.keyword("of")
                {
                    let target = self
                        .word()
                        .ok_or_else(|| {
                            ConditionError("`of` needs a selection pattern or `them`".into())
                        })?
                        .to_owned();
                    self.pos += 1;
                    let picked: Vec<usize> = self
                        .names
                        .iter()
                        .enumerate()
                        .filter(|(_, n)| {
                            if target == "them" {
                                !n.starts_with('_')
                            } else {
                                name_matches(&target, n)
                            }
                        })
                        .map(|(i, _)| i)
                        .collect();
                    if picked.is_empty() {
                        return Err(ConditionError(format!("`of {target}` names no selection")));
                    }
                    let sels: Vec<Cond> = picked.into_iter().map(Cond::Sel).collect();
                    return Ok(match q {
                        None => Cond::And(sels),
                        // Zero of them always holds; more than there are, never.
                        Some(0) => Cond::And(vec![]),
                        Some(1) => Cond::Or(sels),
                        Some(n) if n > sels.len() => Cond::Or(vec![]),
                        Some(n) => Cond::AtLeast(n, sels),
                    });
                }
                match self.names.iter().position(|n| *n == w) {
                    Some(i) => Ok(Cond::Sel(i)),
                    None => Err(ConditionError(format!(
                        "condition names an unknown selection {w:?}"
                    ))),
                }
            }
            Some(Tok::RParen) => Err(ConditionError("unexpected ) in condition".into())),
            None => Err(ConditionError("condition ends early".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn precedence_and_quantifiers() {
        let n = names(&["selection_a", "selection_b", "filter"]);
        let c = parse("selection_a or selection_b and not filter", &n).unwrap();
        assert_eq!(
            c,
            Cond::Or(vec![
                Cond::Sel(0),
                Cond::And(vec![Cond::Sel(1), Cond::Not(Box::new(Cond::Sel(2)))])
            ])
        );
        let c = parse("1 of selection_* and not filter", &n).unwrap();
        assert_eq!(
            c,
            Cond::And(vec![
                Cond::Or(vec![Cond::Sel(0), Cond::Sel(1)]),
                Cond::Not(Box::new(Cond::Sel(2)))
            ])
        );
        assert_eq!(
            parse("all of them", &n).unwrap(),
            Cond::And(vec![Cond::Sel(0), Cond::Sel(1), Cond::Sel(2)])
        );
        let two = parse("2 of them", &n).unwrap();
        let eval = |bits: [bool; 3]| two.eval(&mut |i| bits[i]);
        assert!(
            eval([true, true, false]) && eval([true, false, true]) && !eval([false, false, true])
        );
        assert!(parse("(selection_a", &n).is_err());
        assert!(parse("nope", &n).is_err());
        assert!(parse("1 of nothing*", &n).is_err());
        assert!(parse(&"(".repeat(100), &n).is_err());
    }

    #[test]
    fn wildcards_match_like_globs() {
        for (pattern, name, expected) in [
            ("selection_*", "selection_a", true),
            ("selection_*", "selection_", true),
            ("selection_*", "selection", false),
            ("*_a", "selection_a", true),
            ("sel*ion*b", "selection_b", true),
            ("sel*ion*b", "selection_a", false),
            ("*", "", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("sélection_*", "sélection_1", true),
            ("*é*", "sélection", true),
        ] {
            assert_eq!(name_matches(pattern, name), expected, "{pattern} ~ {name}");
        }
    }

    /// A pattern of many stars that nearly matches used to take time
    /// exponential in the stars (the fuzzer found one taking seconds).
    #[test]
    fn many_stars_are_quick() {
        let n = names(&["selection_with_a_long_name", "filter"]);
        let pattern = format!("{}selection_with_a_long_namX", "*".repeat(200));
        assert!(parse(&format!("1 of {pattern}"), &n).is_err());
        assert!(name_matches(
            &format!("{}e", "*".repeat(200)),
            "selection_with_a_long_name"
        ));
    }

    /// `n of` is counted: 15 of 30 selections would be 155 million
    /// 15-subsets written out.
    #[test]
    fn n_of_many_selections_is_counted() {
        let all: Vec<String> = (0..30).map(|i| format!("selection_{i}")).collect();
        let c = parse("15 of selection_*", &all).unwrap();
        let holds = |count: usize| c.eval(&mut |i| i < count);
        assert!(!holds(14));
        assert!(holds(15) && holds(30));
        let c = parse("31 of selection_*", &all).unwrap();
        assert!(!c.eval(&mut |_| true));
        let c = parse("0 of selection_*", &all).unwrap();
        assert!(c.eval(&mut |_| false));
    }
}
