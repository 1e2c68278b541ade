//! Sigma conditions: `and`, `or`, `not`, parentheses, `1 of`/`all of`/`any
//! of` a selection pattern or `them`, selection names with `*` wildcards.

use std::fmt;

/// A parsed condition over selection indices.
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    Sel(usize),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
}

impl Cond {
    pub fn eval(&self, sel: &mut dyn FnMut(usize) -> bool) -> bool {
        match self {
            Cond::Sel(i) => sel(*i),
            Cond::And(items) => items.iter().all(|c| c.eval(sel)),
            Cond::Or(items) => items.iter().any(|c| c.eval(sel)),
            Cond::Not(c) => !c.eval(sel),
        }
    }

    /// The same condition over selections numbered from `offset`.
    pub fn shifted(&self, offset: usize) -> Cond {
        match self {
            Cond::Sel(i) => Cond::Sel(i + offset),
            Cond::And(items) => Cond::And(items.iter().map(|c| c.shifted(offset)).collect()),
            Cond::Or(items) => Cond::Or(items.iter().map(|c| c.shifted(offset)).collect()),
            Cond::Not(c) => Cond::Not(Box::new(c.shifted(offset))),
        }
    }
}

/// Why a condition did not parse.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionError(pub String);

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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
fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.starts_with(head)
                && name.len() >= head.len()
                && (0..=name.len() - head.len()).any(|i| {
                    name.is_char_boundary(head.len() + i)
                        && name_matches(tail, &name[head.len() + i..])
                })
        }
    }
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
                        Some(1) => Cond::Or(sels),
                        Some(n) => at_least(n, &sels),
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

/// `n of` a set: an OR over every n-subset's AND, bounded.
fn at_least(n: usize, sels: &[Cond]) -> Cond {
    if n == 0 {
        return Cond::And(vec![]);
    }
    if n > sels.len() {
        return Cond::Or(vec![]);
    }
    if n == 1 {
        return Cond::Or(sels.to_vec());
    }
    let mut out = Vec::new();
    for (i, first) in sels.iter().enumerate() {
        let rest = at_least(n - 1, &sels[i + 1..]);
        out.push(Cond::And(vec![first.clone(), rest]));
    }
    Cond::Or(out)
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
}
