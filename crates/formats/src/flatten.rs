//! Flattens a JSON object into dotted field names in one pass, without
//! building a tree first: `{"process":{"pid":4}}` becomes
//! `process.pid = 4`. Arrays of scalars become lists; arrays of objects
//! contribute each of their leaves as a list under one name
//! (`dns.answers.data`).
//!
//! This is the hot path of ECS ingest, so it is a scanner of its own
//! rather than a JSON library's deserializer: keys are appended to one
//! reused prefix buffer straight from the input, a leaf's name is the
//! reader's own `&'static str` when the reader knows it, and a leaf's
//! value is allocated only when its text is longer than 24 bytes (a
//! [`Text`] keeps shorter text inline). On ECS events it runs a fifth fewer
//! instructions than sonic-rs's serde deserializer did (BENCHMARKS.md).
//! A test holds it to serde_json's verdict and values on generated and
//! broken documents; errors name the byte offset of what it refuses.

use turncoat_core::{FieldName, Text, Value};

/// Nesting beyond this depth is kept as its JSON text: the scanner
/// recurses once per level, so hostile input cannot make it recurse
/// without bound; deeper values are checked without recursion.
const MAX_DEPTH: usize = 32;

/// A reader's names for the dotted fields it knows, handed out without
/// allocating (a reader may rename a field here, as ECS does to Sigma's
/// names); `None` for names it does not know, which are kept as they are.
pub type KnownNames = fn(&str) -> Option<&'static str>;

/// Why a document is not JSON the flattener takes, and the byte where it
/// found out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{problem}{} {at}", if *at_end { ": the input ends at byte" } else { " at byte" })]
pub struct JsonError {
    problem: &'static str,
    at: usize,
    /// The document ended before it was whole.
    at_end: bool,
}

/// Flattens the JSON value in `text` into `out` (cleared first); a value
/// that is not an object flattens under the empty name.
pub fn flatten_object(
    text: &[u8],
    known: KnownNames,
    out: &mut Vec<(FieldName, Value)>,
) -> Result<(), JsonError> {
    out.clear();
    // Checked whole and up front (SIMD), so that every slice between
    // ASCII delimiters is text without checking again.
    let text = match simdutf8::basic::from_utf8(text) {
        Ok(text) => text,
        Err(_) => {
            let valid = std::str::from_utf8(text).map_or_else(|e| e.valid_up_to(), |_| 0);
            return Err(JsonError {
                problem: "invalid UTF-8",
                at: valid,
                at_end: false,
            });
        }
    };
    let mut scan = Flatten {
        cursor: Cursor { text, pos: 0 },
        // Room for the longest usual name: grown, it would be copied.
        prefix: String::with_capacity(128),
        out,
        known,
    };
    scan.value(0, false)?;
    if scan.cursor.peek().is_some() {
        return Err(scan.cursor.error("trailing characters"));
    }
    Ok(())
}

/// The structural side of the scanner: objects, lists and leaves.
struct Flatten<'t, 'o> {
    cursor: Cursor<'t>,
    /// The dotted name of the value being read.
    prefix: String,
    out: &'o mut Vec<(FieldName, Value)>,
    known: KnownNames,
}

impl Flatten<'_, '_> {
    /// Reads one value, `depth` levels down, under the current prefix;
    /// `in_list` when it is (inside) an element of a list.
    fn value(&mut self, depth: usize, in_list: bool) -> Result<(), JsonError> {
        match self.cursor.peek() {
            Some(b'{' | b'[') if depth >= MAX_DEPTH => {
                let text = self.cursor.skip_nested()?;
                self.leaf(Value::Str(text.into()), in_list);
                Ok(())
            }
            Some(b'{') => self.object(depth, in_list),
            Some(b'[') => self.list(depth, in_list),
            _ => {
                let v = self.cursor.scalar()?;
                self.leaf(v, in_list);
                Ok(())
            }
        }
    }

    fn object(&mut self, depth: usize, in_list: bool) -> Result<(), JsonError> {
        self.cursor.pos += 1;
        // A list of objects was registered as an empty list under the
        // list's name: drop it, the leaves carry the data.
        if in_list
            && let Some(i) = self
                .out
                .iter()
                .position(|(k, v)| *k == self.prefix && matches!(v, Value::List(l) if l.is_empty()))
        {
            self.out.remove(i);
        }
        if self.cursor.eat(b'}') {
            return Ok(());
        }
        let base = self.prefix.len();
        loop {
            if self.cursor.peek() != Some(b'"') {
                return Err(self.cursor.error("expected an object key"));
            }
            if base > 0 {
                self.prefix.push('.');
            }
            self.cursor.string_into(&mut self.prefix)?;
            if !self.cursor.eat(b':') {
                return Err(self.cursor.error("expected ':'"));
            }
            self.value(depth + 1, in_list)?;
            self.prefix.truncate(base);
            if self.cursor.eat(b',') {
                continue;
            }
            if self.cursor.eat(b'}') {
                return Ok(());
            }
            return Err(self.cursor.error("expected ',' or '}'"));
        }
    }

    fn list(&mut self, depth: usize, in_list: bool) -> Result<(), JsonError> {
        self.cursor.pos += 1;
        // An empty list still records that the field exists.
        if !in_list && !self.out.iter().any(|(k, _)| *k == self.prefix) {
            let name = self.name();
            self.out.push((name, Value::List(Vec::new())));
        }
        if self.cursor.eat(b']') {
            return Ok(());
        }
        loop {
            self.value(depth + 1, true)?;
            if self.cursor.eat(b',') {
                continue;
            }
            if self.cursor.eat(b']') {
                return Ok(());
            }
            return Err(self.cursor.error("expected ',' or ']'"));
        }
    }

    /// Adds a leaf under the current prefix: a field of its own, or one
    /// more element of the list gathered under that name.
    fn leaf(&mut self, v: Value, in_list: bool) {
        if in_list {
            match self.out.iter_mut().find(|(k, _)| *k == self.prefix) {
                Some((_, Value::List(items))) => items.push(v),
                Some((_, other)) => {
                    let first = std::mem::replace(other, Value::Null);
                    *other = Value::List(vec![first, v]);
                }
                None => {
                    let name = self.name();
                    self.out.push((name, Value::List(vec![v])));
                }
            }
        } else {
            let name = self.name();
            self.out.push((name, v));
        }
    }

    /// The current dotted name, borrowed when the reader knows it.
    fn name(&self) -> FieldName {
        match (self.known)(&self.prefix) {
            Some(name) => FieldName::Borrowed(name),
            None => FieldName::Owned(self.prefix.clone()),
        }
    }
}

/// The length of the plain text at the start of `s`, up to the first
/// byte a JSON string cannot hold as it is: a quote, a backslash or a
/// control character. Eight bytes at a time: a byte equal to `b` is a
/// zero byte of `x ^ b`, and the lowest flag of the usual zero-byte test
/// (and of its less-than form) is always a true one.
fn plain_run(s: &[u8]) -> usize {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v;
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let hits = (zero(x ^ (ONES * u64::from(b'"')))
            | zero(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x))
            & HIGH;
        if hits != 0 {
            return at + (hits.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + chunks
        .remainder()
        .iter()
        .position(|&b| matches!(b, b'"' | b'\\' | 0..=0x1f))
        .unwrap_or(chunks.remainder().len())
}

/// The lexical side of the scanner: whitespace, strings, numbers,
/// literals, and values skipped whole.
struct Cursor<'t> {
    text: &'t str,
    pos: usize,
}

impl<'t> Cursor<'t> {
    fn bytes(&self) -> &'t [u8] {
        self.text.as_bytes()
    }

    fn error(&self, problem: &'static str) -> JsonError {
        self.error_at(self.pos, problem)
    }

    fn error_at(&self, at: usize, problem: &'static str) -> JsonError {
        JsonError {
            problem,
            at,
            at_end: at >= self.text.len(),
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        // Compact JSON, the usual case, has no whitespace between tokens.
        match self.bytes().get(self.pos) {
            Some(&b) if b > b' ' => Some(b),
            _ => self.skip_space(),
        }
    }

    fn skip_space(&mut self) -> Option<u8> {
        let bytes = self.bytes();
        while let Some(&b) = bytes.get(self.pos) {
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    /// Consumes `b` when it is the next byte after whitespace.
    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.pos += usize::from(hit);
        hit
    }

    /// A string, number, `true`, `false` or `null`.
    fn scalar(&mut self) -> Result<Value, JsonError> {
        match self.peek() {
            Some(b'"') => self.string().map(Value::Str),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            _ => Err(self.error("expected a value")),
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value, JsonError> {
        if self.bytes()[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.error("expected a value"))
        }
    }

    /// The string at the cursor (at its opening quote), escapes resolved.
    fn string(&mut self) -> Result<Text, JsonError> {
        let bytes = self.bytes();
        let start = self.pos + 1;
        let end = start + plain_run(&bytes[start..]);
        if bytes.get(end) == Some(&b'"') {
            // No escapes, the common case: copied once, inline when short.
            self.pos = end + 1;
            return Ok(Text::from(self.text.get(start..end).unwrap_or_default()));
        }
        // Escapes: the run read so far, then the rest, resolved.
        let mut out = String::from(self.text.get(start..end).unwrap_or_default());
        self.pos = end;
        self.rest_into(&mut out)?;
        Ok(Text::from(out))
    }

    /// Appends the string at the cursor (at its opening quote) to `out`,
    /// escapes resolved.
    fn string_into(&mut self, out: &mut String) -> Result<(), JsonError> {
        self.pos += 1;
        self.rest_into(out)
    }

    /// Appends the rest of a string, from the cursor to its closing quote.
    fn rest_into(&mut self, out: &mut String) -> Result<(), JsonError> {
        let bytes = self.bytes();
        loop {
            let end = self.pos + plain_run(&bytes[self.pos..]);
            // Both ends are ASCII bytes, so both are character boundaries.
            out.push_str(self.text.get(self.pos..end).unwrap_or_default());
            self.pos = end + 1;
            match bytes.get(end) {
                Some(b'"') => return Ok(()),
                Some(b'\\') => self.escape_into(out)?,
                Some(_) => return Err(self.error_at(end, "control character in a string")),
                None => return Err(self.error_at(end, "unterminated string")),
            }
        }
    }

    /// Resolves the escape whose backslash was just consumed.
    fn escape_into(&mut self, out: &mut String) -> Result<(), JsonError> {
        let at = self.pos - 1;
        let c = match self.bytes().get(self.pos) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                let high = self.hex4(at)?;
                let code = match high {
                    0xD800..=0xDBFF => {
                        if !self.bytes()[self.pos..].starts_with(b"\\u") {
                            return Err(self.error_at(at, "unpaired surrogate in an escape"));
                        }
                        self.pos += 2;
                        let low = self.hex4(at)?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(self.error_at(at, "unpaired surrogate in an escape"));
                        }
                        0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(low) - 0xDC00)
                    }
                    0xDC00..=0xDFFF => {
                        return Err(self.error_at(at, "unpaired surrogate in an escape"));
                    }
                    c => u32::from(c),
                };
                out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                return Ok(());
            }
            _ => return Err(self.error_at(at, "invalid escape")),
        };
        self.pos += 1;
        out.push(c);
        Ok(())
    }

    /// Four hex digits of a `\u` escape (which starts at `at`).
    fn hex4(&mut self, at: usize) -> Result<u16, JsonError> {
        let digits = self
            .bytes()
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error_at(at, "invalid escape"))?;
        let mut code = 0u16;
        for &d in digits {
            let v = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.error_at(at, "invalid escape"))?;
            code = code << 4 | v as u16;
        }
        self.pos += 4;
        Ok(code)
    }

    /// A number as JSON's grammar has it: an integer when it has neither
    /// fraction nor exponent and fits an `i64`, else a finite float.
    fn number(&mut self) -> Result<Value, JsonError> {
        let bytes = self.bytes();
        let start = self.pos;
        let digits = |pos: &mut usize| {
            let from = *pos;
            while bytes.get(*pos).is_some_and(u8::is_ascii_digit) {
                *pos += 1;
            }
            *pos > from
        };
        let mut pos = start + usize::from(bytes[start] == b'-');
        match bytes.get(pos) {
            Some(b'0') => pos += 1,
            Some(b'1'..=b'9') => {
                digits(&mut pos);
            }
            _ => return Err(self.error_at(pos, "invalid number")),
        }
        let mut integer = true;
        if bytes.get(pos) == Some(&b'.') {
            pos += 1;
            integer = false;
            if !digits(&mut pos) {
                return Err(self.error_at(pos, "invalid number"));
            }
        }
        if matches!(bytes.get(pos), Some(b'e' | b'E')) {
            pos += 1;
            integer = false;
            if matches!(bytes.get(pos), Some(b'+' | b'-')) {
                pos += 1;
            }
            if !digits(&mut pos) {
                return Err(self.error_at(pos, "invalid number"));
            }
        }
        self.pos = pos;
        let text = self.text.get(start..pos).unwrap_or_default();
        if integer && let Ok(i) = text.parse::<i64>() {
            // serde_json reads `-0` as the float, and so does this.
            let negative_zero = i == 0 && bytes[start] == b'-';
            return Ok(if negative_zero {
                Value::Float(-0.0)
            } else {
                Value::Int(i)
            });
        }
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Value::Float(x)),
            _ => Err(self.error_at(start, "number out of range")),
        }
    }

    /// Checks the object or list at the cursor without recursing, however
    /// deep it nests, and returns its text.
    fn skip_nested(&mut self) -> Result<&'t str, JsonError> {
        let start = self.pos;
        // The closing bracket each open container waits for.
        let mut open: Vec<u8> = Vec::new();
        loop {
            // At a value.
            match self.peek() {
                Some(b'{') => {
                    self.pos += 1;
                    if !self.eat(b'}') {
                        open.push(b'}');
                        self.key()?;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    if !self.eat(b']') {
                        open.push(b']');
                        continue;
                    }
                }
                _ => {
                    self.scalar()?;
                }
            }
            // After a value: close what ends here, then the next element.
            loop {
                let Some(&close) = open.last() else {
                    return Ok(self.text.get(start..self.pos).unwrap_or_default());
                };
                if self.eat(close) {
                    open.pop();
                } else if self.eat(b',') {
                    if close == b'}' {
                        self.key()?;
                    }
                    break;
                } else {
                    return Err(self.error("expected ',' or a closing bracket"));
                }
            }
        }
    }

    /// An object key and its colon, skipped.
    fn key(&mut self) -> Result<(), JsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expected an object key"));
        }
        self.string()?;
        if self.eat(b':') {
            Ok(())
        } else {
            Err(self.error("expected ':'"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(s: &str) -> Vec<(FieldName, Value)> {
        let mut out = Vec::new();
        flatten_object(s.as_bytes(), |_| None, &mut out).unwrap();
        out
    }

    #[test]
    fn nested_objects_become_dotted_names() {
        let f = flat(r#" {"a":{"b":1,"c":{"d":"x"}},"e":[1,2],"f":null, "g": -2.5e1 } "#);
        assert_eq!(
            f,
            vec![
                ("a.b".into(), Value::Int(1)),
                ("a.c.d".into(), Value::Str("x".into())),
                ("e".into(), Value::List(vec![Value::Int(1), Value::Int(2)])),
                ("f".into(), Value::Null),
                ("g".into(), Value::Float(-25.0)),
            ]
        );
    }

    #[test]
    fn lists_of_objects_gather_leaves() {
        let f = flat(
            r#"{"dns":{"answers":[{"data":"1.2.3.4","type":"A"},{"data":"5.6.7.8","type":"A"}]}}"#,
        );
        assert_eq!(
            f,
            vec![
                (
                    "dns.answers.data".into(),
                    Value::List(vec!["1.2.3.4".into(), "5.6.7.8".into()])
                ),
                (
                    "dns.answers.type".into(),
                    Value::List(vec!["A".into(), "A".into()])
                ),
            ]
        );
        assert_eq!(flat(r#"{"a":[]}"#), vec![("a".into(), Value::List(vec![]))]);
    }

    #[test]
    fn escapes_are_resolved_in_keys_and_values() {
        let f = flat(r#"{"a\"b":"C:\\Windows\\x.exe","u":"\u00e9\ud83d\ude00\n\/"}"#);
        assert_eq!(
            f,
            vec![
                ("a\"b".into(), Value::Str(r"C:\Windows\x.exe".into())),
                ("u".into(), Value::Str("é😀\n/".into())),
            ]
        );
    }

    #[test]
    fn errors_name_the_byte() {
        let mut out = Vec::new();
        let err = |s: &str, out: &mut Vec<_>| {
            flatten_object(s.as_bytes(), |_| None, out)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(err(r#"{"a" 1}"#, &mut out), "expected ':' at byte 5");
        assert_eq!(
            err(r#"{"a":01}"#, &mut out),
            "expected ',' or '}' at byte 6"
        );
        assert_eq!(
            err(r#"{"a":"\ud800"}"#, &mut out),
            "unpaired surrogate in an escape at byte 6"
        );
        assert_eq!(
            err("{\"a\":\"x\ty\"}", &mut out),
            "control character in a string at byte 7"
        );
        assert_eq!(
            err(r#"{"a":"x"#, &mut out),
            "unterminated string: the input ends at byte 7"
        );
        assert_eq!(
            err(r#"{"a":1e999}"#, &mut out),
            "number out of range at byte 5"
        );
        assert_eq!(
            err(r#"{"a":1} x"#, &mut out),
            "trailing characters at byte 8"
        );
        let bad = [b'{', b'"', 0xff, b'"', b':', b'1', b'}'];
        assert_eq!(
            flatten_object(&bad, |_| None, &mut out)
                .unwrap_err()
                .to_string(),
            "invalid UTF-8 at byte 2"
        );
    }

    #[test]
    fn plain_runs_end_at_the_first_quote_backslash_or_control_byte() {
        for len in 0..40 {
            for at in 0..=len {
                for stop in [b'"', b'\\', 0x00, 0x1f] {
                    let mut s = vec![b'a'; len];
                    // Bytes that look near the stops must not end the run.
                    for (i, b) in s.iter_mut().enumerate() {
                        *b = [b'a', 0x20, b'#', b'[', b']', 0xc3, 0x7f, b'!'][i % 8];
                    }
                    if at < len {
                        s[at] = stop;
                        // A later stop must not hide the first.
                        if at + 3 < len {
                            s[at + 3] = b'"';
                        }
                    }
                    assert_eq!(plain_run(&s), at, "len {len}, stop {stop:#x} at {at}");
                }
            }
        }
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let deep = format!("{}1{}", "{\"a\":".repeat(40), "}".repeat(40));
        let f = flat(&deep);
        assert_eq!(f.len(), 1);
        let inner = format!("{}1{}", "{\"a\":".repeat(8), "}".repeat(8));
        assert_eq!(
            f[0].1,
            Value::Str(inner.into()),
            "kept as its own JSON text"
        );
        let mut out = Vec::new();
        assert!(flatten_object(b"{\"a\":1} trailing", |_| None, &mut out).is_err());
        assert!(
            flatten_object(b"[1,2]", |_| None, &mut out).is_ok(),
            "non-objects flatten under the empty name"
        );
        // Far deeper than any stack would take, valid and not.
        let n = 1_000_000;
        let valid = format!("{{\"a\":{}{}}}", "[".repeat(n), "]".repeat(n));
        assert_eq!(flat(&valid).len(), 1);
        let hostile = format!("{{\"a\":{}", "[".repeat(n));
        assert!(flatten_object(hostile.as_bytes(), |_| None, &mut out).is_err());
        let unbalanced = format!("{{\"a\":{}}}}}", "[".repeat(40));
        assert!(flatten_object(unbalanced.as_bytes(), |_| None, &mut out).is_err());
    }

    #[test]
    fn known_names_are_borrowed_and_others_owned() {
        let mut out = Vec::new();
        let known: KnownNames = |n| (n == "host.name").then_some("host.name");
        flatten_object(br#"{"host":{"name":"a","ip":"b"}}"#, known, &mut out).unwrap();
        assert!(matches!(&out[0].0, FieldName::Borrowed("host.name")));
        assert!(matches!(&out[1].0, FieldName::Owned(n) if n == "host.ip"));
    }

    /// The scanner against serde_json on generated documents: the same
    /// fields and values for every valid one, and the same verdict on
    /// every broken one (truncated, or a byte replaced).
    #[test]
    fn the_scanner_agrees_with_serde_json() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut out = Vec::new();
        let mut reference = Vec::new();
        for round in 0..3000 {
            let mut doc = String::new();
            gen_object(&mut rng, &mut doc, 0);
            let ok = flatten_object(doc.as_bytes(), |_| None, &mut out);
            reference::flatten(doc.as_bytes(), &mut reference).unwrap();
            assert_eq!(ok, Ok(()), "round {round}: {doc}");
            assert_eq!(out, reference, "round {round}: {doc}");

            let mut broken = doc.clone().into_bytes();
            let at = rng.below(broken.len());
            if round % 3 == 0 {
                broken.truncate(at);
            } else {
                const BYTES: &[u8] = b"\"\\{}[],:0-.eEu a\x01\xff\t";
                broken[at] = BYTES[rng.below(BYTES.len())];
            }
            let mine = flatten_object(&broken, |_| None, &mut out);
            let theirs = reference::flatten(&broken, &mut reference);
            assert_eq!(
                mine.is_ok(),
                theirs.is_ok(),
                "round {round}: {:?} -> {mine:?} / {theirs:?}",
                String::from_utf8_lossy(&broken)
            );
            if mine.is_ok() {
                assert_same(&out, &reference, round);
            }
        }
    }

    /// Equal, but for floats serde_json reads a unit in the last place
    /// off: without its `float_roundtrip` feature it rounds long inputs
    /// (which the broken documents make) less carefully than std.
    fn assert_same(a: &[(FieldName, Value)], b: &[(FieldName, Value)], round: usize) {
        fn same(a: &Value, b: &Value) -> bool {
            match (a, b) {
                (Value::Float(x), Value::Float(y)) => x == y || ((x - y) / y).abs() < 1e-15,
                (Value::List(x), Value::List(y)) => {
                    x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
                }
                _ => a == b,
            }
        }
        assert_eq!(a.len(), b.len(), "round {round}: {a:?} / {b:?}");
        for ((ka, va), (kb, vb)) in a.iter().zip(b) {
            assert!(ka == kb && same(va, vb), "round {round}: {a:?} / {b:?}");
        }
    }

    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n.max(1) as u64) as usize
        }
    }

    const KEYS: &[&str] = &["a", "b", "host", "name", "", "é", "x\\\"y", "\\u0041"];
    const SCALARS: &[&str] = &[
        "0",
        "-0",
        "7",
        "-12",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
        "1.5",
        "-0.0",
        "2.5e3",
        "1E-2",
        "3.25e+2",
        "1e-400",
        "true",
        "false",
        "null",
        "\"\"",
        "\"plain\"",
        "\"C:\\\\Windows\\\\a.exe\"",
        "\"\\u00e9\\ud83d\\ude00\"",
        "\"tab\\there\"",
        "\"ünï\"",
        "\"q\\\"q\"",
    ];

    fn gen_value(rng: &mut Rng, doc: &mut String, depth: usize) {
        // Scalars only, deep down.
        let kind = if depth > 5 { 0 } else { rng.below(5) };
        match kind {
            0..=2 => doc.push_str(SCALARS[rng.below(SCALARS.len())]),
            3 => gen_object(rng, doc, depth + 1),
            _ => {
                doc.push('[');
                for i in 0..rng.below(4) {
                    if i > 0 {
                        doc.push(',');
                    }
                    gen_value(rng, doc, depth + 1);
                }
                doc.push(']');
            }
        }
    }

    fn gen_object(rng: &mut Rng, doc: &mut String, depth: usize) {
        doc.push('{');
        for i in 0..rng.below(5) {
            if i > 0 {
                doc.push_str([",", " , ", ",\n"][rng.below(3)]);
            }
            doc.push('"');
            doc.push_str(KEYS[rng.below(KEYS.len())]);
            doc.push_str(["\":", "\" : "][rng.below(2)]);
            gen_value(rng, doc, depth);
        }
        doc.push('}');
    }

    /// The serde visitor this scanner replaced, over serde_json: the
    /// oracle for what a flattened document holds.
    mod reference {
        use std::fmt;

        use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
        use turncoat_core::{FieldName, Value};

        pub fn flatten(text: &[u8], out: &mut Vec<(FieldName, Value)>) -> Result<(), String> {
            out.clear();
            let mut prefix = String::new();
            let mut de = serde_json::Deserializer::from_slice(text);
            Flatten {
                prefix: &mut prefix,
                out,
                in_list: false,
            }
            .deserialize(&mut de)
            .map_err(|e| e.to_string())?;
            de.end().map_err(|e| e.to_string())
        }

        struct Flatten<'a> {
            prefix: &'a mut String,
            out: &'a mut Vec<(FieldName, Value)>,
            in_list: bool,
        }

        impl Flatten<'_> {
            fn leaf(&mut self, v: Value) {
                let name = FieldName::Owned(self.prefix.clone());
                if !self.in_list {
                    return self.out.push((name, v));
                }
                match self.out.iter_mut().find(|(k, _)| k == &name) {
                    Some((_, Value::List(items))) => items.push(v),
                    Some((_, other)) => {
                        let first = std::mem::replace(other, Value::Null);
                        *other = Value::List(vec![first, v]);
                    }
                    None => self.out.push((name, Value::List(vec![v]))),
                }
            }

            fn child(&mut self, in_list: bool) -> Flatten<'_> {
                Flatten {
                    prefix: self.prefix,
                    out: self.out,
                    in_list,
                }
            }
        }

        impl<'de> DeserializeSeed<'de> for Flatten<'_> {
            type Value = ();
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
                d.deserialize_any(self)
            }
        }

        impl<'de> Visitor<'de> for Flatten<'_> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(mut self) -> Result<(), E> {
                self.leaf(Value::Null);
                Ok(())
            }
            fn visit_bool<E>(mut self, b: bool) -> Result<(), E> {
                self.leaf(Value::Bool(b));
                Ok(())
            }
            fn visit_i64<E>(mut self, i: i64) -> Result<(), E> {
                self.leaf(Value::Int(i));
                Ok(())
            }
            fn visit_u64<E>(mut self, u: u64) -> Result<(), E> {
                self.leaf(
                    i64::try_from(u)
                        .map(Value::Int)
                        .unwrap_or(Value::Float(u as f64)),
                );
                Ok(())
            }
            fn visit_f64<E>(mut self, x: f64) -> Result<(), E> {
                self.leaf(Value::Float(x));
                Ok(())
            }
            fn visit_str<E>(mut self, s: &str) -> Result<(), E> {
                self.leaf(Value::Str(s.into()));
                Ok(())
            }
            fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
                if !self.in_list && !self.out.iter().any(|(k, _)| k == self.prefix.as_str()) {
                    let name = FieldName::Owned(self.prefix.clone());
                    self.out.push((name, Value::List(Vec::new())));
                }
                while seq.next_element_seed(self.child(true))?.is_some() {}
                Ok(())
            }
            fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
                if self.in_list
                    && let Some(i) = self.out.iter().position(|(k, v)| {
                        k == self.prefix.as_str() && *v == Value::List(Vec::new())
                    })
                {
                    self.out.remove(i);
                }
                let base = self.prefix.len();
                let in_list = self.in_list;
                while let Some(key) = map.next_key::<String>()? {
                    if !self.prefix.is_empty() {
                        self.prefix.push('.');
                    }
                    self.prefix.push_str(&key);
                    map.next_value_seed(self.child(in_list))?;
                    self.prefix.truncate(base);
                }
                Ok(())
            }
        }
    }
}
