//! Flattens a JSON object into dotted field names in one pass, without
//! building a `serde_json::Value` tree first: `{"process":{"pid":4}}`
//! becomes `process.pid = 4`. Arrays of scalars become lists; arrays of
//! objects contribute each of their leaves as a list under one name
//! (`dns.answers.data`).
//!
//! This is the hot path of ECS ingest, so it allocates only for values:
//! keys are appended to one reused prefix buffer, and a leaf's name is
//! the reader's own `&'static str` when the reader knows it.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use turncoat_core::{FieldName, Value};

/// Nesting beyond this depth is kept as JSON text: hostile input cannot
/// make the flattener recurse without bound (serde_json also stops at 128).
const MAX_DEPTH: usize = 32;

/// A reader's names for the dotted fields it knows, handed out without
/// allocating (a reader may rename a field here, as ECS does to Sigma's
/// names); `None` for names it does not know, which are kept as they are.
pub type KnownNames = fn(&str) -> Option<&'static str>;

/// Flattens the JSON object in `text` into `out` (cleared first).
///
/// Most documents go through `sonic-rs` (SIMD; about 1.3x serde_json on
/// ECS events). It has no nesting limit of its own, so a document with
/// more opening brackets than [`MAX_DEPTH`] — nested or not: counting
/// them is a SIMD byte search — goes through serde_json and its recursion
/// limit instead: hostile nesting cannot overflow the stack.
pub fn flatten_object(
    text: &[u8],
    known: KnownNames,
    out: &mut Vec<(FieldName, Value)>,
) -> Result<(), String> {
    out.clear();
    let mut prefix = String::new();
    let flatten = Flatten {
        prefix: &mut prefix,
        out,
        known,
        depth: 0,
        in_list: false,
    };
    let brackets = memchr::memchr2_iter(b'{', b'[', text)
        .take(MAX_DEPTH + 1)
        .count();
    if brackets <= MAX_DEPTH {
        let mut de = sonic_rs::Deserializer::from_slice(text);
        flatten.deserialize(&mut de).map_err(|e| e.to_string())?;
        de.end().map_err(|e| e.to_string())
    } else {
        let mut de = serde_json::Deserializer::from_slice(text);
        flatten.deserialize(&mut de).map_err(|e| e.to_string())?;
        de.end().map_err(|e| e.to_string())
    }
}

struct Flatten<'a> {
    prefix: &'a mut String,
    out: &'a mut Vec<(FieldName, Value)>,
    known: KnownNames,
    depth: usize,
    /// Leaves below a list of objects are appended to list values.
    in_list: bool,
}

impl Flatten<'_> {
    fn leaf(&mut self, v: Value) {
        if self.in_list {
            match self.out.iter_mut().find(|(k, _)| k == self.prefix.as_str()) {
                Some((_, Value::List(items))) => items.push(v),
                Some((_, other)) => {
                    let first = std::mem::replace(other, Value::Null);
                    *other = Value::List(vec![first, v]);
                }
                None => {
                    let name = self.name();
                    self.out.push((name, Value::List(vec![v])))
                }
            }
        } else {
            let name = self.name();
            self.out.push((name, v));
        }
    }

    /// The current dotted name, borrowed when the reader knows it.
    fn name(&self) -> FieldName {
        match (self.known)(self.prefix) {
            Some(name) => FieldName::Borrowed(name),
            None => FieldName::Owned(self.prefix.clone()),
        }
    }

    fn child(&mut self, in_list: bool) -> Flatten<'_> {
        Flatten {
            prefix: self.prefix,
            out: self.out,
            known: self.known,
            depth: self.depth + 1,
            in_list,
        }
    }
}

/// Appends a map key to the prefix (after a dot when the prefix is not
/// empty), without allocating a `String` for the key.
struct AppendKey<'a> {
    prefix: &'a mut String,
}

impl<'de> DeserializeSeed<'de> for AppendKey<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for AppendKey<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<(), E> {
        if !self.prefix.is_empty() {
            self.prefix.push('.');
        }
        self.prefix.push_str(key);
        Ok(())
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
        self.leaf(Value::Str(s.to_owned()));
        Ok(())
    }
    fn visit_string<E>(mut self, s: String) -> Result<(), E> {
        self.leaf(Value::Str(s));
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        if self.depth >= MAX_DEPTH {
            let v: serde_json::Value = serde_json::Value::Array(collect_seq(seq)?);
            self.leaf(Value::Str(v.to_string()));
            return Ok(());
        }
        // An empty list still records that the field exists.
        if !self.in_list && !self.out.iter().any(|(k, _)| k == self.prefix.as_str()) {
            let name = self.name();
            self.out.push((name, Value::List(Vec::new())));
        }
        while seq.next_element_seed(self.child(true))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        if self.depth >= MAX_DEPTH {
            let mut obj = serde_json::Map::new();
            while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                obj.insert(k, v);
            }
            self.leaf(Value::Str(serde_json::Value::Object(obj).to_string()));
            return Ok(());
        }
        // A list of objects was pre-registered as an empty list under the
        // parent's name: drop it, the leaves carry the data.
        if self.in_list
            && let Some(i) = self
                .out
                .iter()
                .position(|(k, v)| k == self.prefix.as_str() && *v == Value::List(Vec::new()))
        {
            self.out.remove(i);
        }
        let base = self.prefix.len();
        let in_list = self.in_list;
        while map
            .next_key_seed(AppendKey {
                prefix: self.prefix,
            })?
            .is_some()
        {
            map.next_value_seed(self.child(in_list))?;
            self.prefix.truncate(base);
        }
        Ok(())
    }
}

fn collect_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Vec<serde_json::Value>, A::Error> {
    let mut items = Vec::new();
    while let Some(v) = seq.next_element()? {
        items.push(v);
    }
    Ok(items)
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
        let f = flat(r#"{"a":{"b":1,"c":{"d":"x"}},"e":[1,2],"f":null}"#);
        assert_eq!(
            f,
            vec![
                ("a.b".into(), Value::Int(1)),
                ("a.c.d".into(), Value::Str("x".into())),
                ("e".into(), Value::List(vec![Value::Int(1), Value::Int(2)])),
                ("f".into(), Value::Null),
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
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let deep = format!("{}1{}", "{\"a\":".repeat(40), "}".repeat(40));
        let f = flat(&deep);
        assert_eq!(f.len(), 1);
        assert!(matches!(&f[0].1, Value::Str(s) if s.starts_with('{')));
        let mut out = Vec::new();
        assert!(flatten_object(b"{\"a\":1} trailing", |_| None, &mut out).is_err());
        assert!(
            flatten_object(b"[1,2]", |_| None, &mut out).is_ok(),
            "non-objects flatten under the empty name"
        );
    }

    #[test]
    fn known_names_are_borrowed_and_others_owned() {
        let mut out = Vec::new();
        let known: KnownNames = |n| (n == "host.name").then_some("host.name");
        flatten_object(br#"{"host":{"name":"a","ip":"b"}}"#, known, &mut out).unwrap();
        assert!(matches!(&out[0].0, FieldName::Borrowed("host.name")));
        assert!(matches!(&out[1].0, FieldName::Owned(n) if n == "host.ip"));
    }

    #[test]
    fn documents_with_many_brackets_flatten_alike_and_hostile_nesting_is_an_error() {
        // More brackets than MAX_DEPTH, none deep: the serde_json path.
        let many = format!("{{\"a\":[{}]}}", vec![r#"{"b":1}"#; 40].join(","));
        let f = flat(&many);
        assert_eq!(
            f,
            vec![("a.b".into(), Value::List(vec![Value::Int(1); 40]))]
        );
        let mut out = Vec::new();
        let hostile = format!("{{\"a\":{}", "[".repeat(100_000));
        assert!(flatten_object(hostile.as_bytes(), |_| None, &mut out).is_err());
    }
}
