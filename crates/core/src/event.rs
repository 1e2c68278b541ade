//! The one shape every telemetry record is mapped into.
//!
//! Field names follow the Sigma taxonomy (`Image`, `CommandLine`,
//! `QueryName`, `DestinationIp`, ...) so that Sigma rules run unchanged;
//! Zeek records keep Zeek's own names, as Sigma's `product: zeek` rules expect.

use std::borrow::Cow;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::Time;

/// One telemetry record from one endpoint (or one network sensor).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened (UTC).
    pub time: Time,
    /// The endpoint's host name, or its IP where only that is known.
    pub host: String,
    /// Where it came from, in Sigma's terms.
    pub logsource: Logsource,
    /// The record's fields under Sigma taxonomy names.
    pub fields: Fields,
}

/// Sigma's logsource triple. The readers' names are fixed (`windows`,
/// `process_creation`, ...) and borrowed, so that mapping an event does
/// not allocate them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Logsource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<Cow<'static, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Cow<'static, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Cow<'static, str>>,
}

impl Logsource {
    /// A logsource of fixed names, borrowed.
    pub fn fixed(
        product: Option<&'static str>,
        category: Option<&'static str>,
        service: Option<&'static str>,
    ) -> Self {
        Logsource {
            product: product.map(Cow::Borrowed),
            category: category.map(Cow::Borrowed),
            service: service.map(Cow::Borrowed),
        }
    }

    /// A logsource of names read at run time, copied.
    pub fn new(product: Option<&str>, category: Option<&str>, service: Option<&str>) -> Self {
        let owned = |s: Option<&str>| s.map(|s| Cow::Owned(s.to_owned()));
        Logsource {
            product: owned(product),
            category: owned(category),
            service: owned(service),
        }
    }
}

impl fmt::Display for Logsource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [&self.product, &self.category, &self.service];
        let mut first = true;
        for p in parts.into_iter().flatten() {
            if !first {
                f.write_str("/")?;
            }
            f.write_str(p)?;
            first = false;
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

/// A field's text. Most values of telemetry (addresses, host and user
/// names, event kinds, codes) fit in 24 bytes and are kept inline, so that
/// reading, archiving and dropping an event does not allocate once per
/// value (BENCHMARKS.md); longer text is kept on the heap as a `String`
/// would be.
pub type Text = compact_str::CompactString;

/// A field value. Lists match when any element matches, as in Sigma.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Text),
    List(Vec<Value>),
}

impl Value {
    /// The value as text when it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Every string in the value: itself, or each string element of a list.
    pub fn strings(&self) -> impl Iterator<Item = &str> {
        let (one, many) = match self {
            Value::Str(s) => (Some(s.as_str()), None),
            Value::List(items) => (None, Some(items.iter().filter_map(Value::as_str))),
            _ => (None, None),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    /// Converts a JSON value, keeping nested objects as their JSON text.
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::Str(s.as_str().into()),
            serde_json::Value::Array(items) => {
                Value::List(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(_) => Value::Str(v.to_string().into()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => f.write_str(s),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s.into())
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(x) => s.serialize_f64(*x),
            Value::Str(v) => s.serialize_str(v),
            Value::List(items) => items.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar or a list")
            }
            fn visit_unit<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
                Ok(Value::Bool(b))
            }
            fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
                Ok(Value::Int(i))
            }
            fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
                Ok(i64::try_from(u)
                    .map(Value::Int)
                    .unwrap_or(Value::Float(u as f64)))
            }
            fn visit_f64<E>(self, x: f64) -> Result<Value, E> {
                Ok(Value::Float(x))
            }
            fn visit_str<E>(self, s: &str) -> Result<Value, E> {
                Ok(Value::Str(s.into()))
            }
            fn visit_string<E>(self, s: String) -> Result<Value, E> {
                Ok(Value::Str(s.into()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Value, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element()? {
                    items.push(v);
                }
                Ok(Value::List(items))
            }
        }
        d.deserialize_any(V)
    }
}

/// An event's fields in arrival order. Events carry a few dozen fields at
/// most, so a vector beats a map for both building and scanning.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fields(Vec<(FieldName, Value)>);

/// A field's name: the readers' fixed names (Sigma's `Image`, ECS's dotted
/// ones) are borrowed, so that mapping an event does not allocate them.
pub type FieldName = std::borrow::Cow<'static, str>;

impl Fields {
    pub fn new() -> Fields {
        Fields(Vec::new())
    }

    pub fn with_capacity(n: usize) -> Fields {
        Fields(Vec::with_capacity(n))
    }

    /// The value of `name`, compared exactly.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The text of `name` when it is a string.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    /// Sets `name`, replacing an earlier value of the same name.
    pub fn set(&mut self, name: impl Into<FieldName>, value: impl Into<Value>) {
        let name = name.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    /// Appends without looking for an earlier value: for readers that know
    /// their names are distinct.
    pub fn push(&mut self, name: impl Into<FieldName>, value: impl Into<Value>) {
        self.0.push((name.into(), value.into()));
    }

    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let i = self.0.iter().position(|(k, _)| k == name)?;
        Some(self.0.remove(i).1)
    }

    /// The value at a position, as [`Fields::iter`] orders them.
    pub fn value_at(&self, i: usize) -> Option<&Value> {
        self.0.get(i).map(|(_, v)| v)
    }

    /// The fields with their names as held: a borrowed name is one of a
    /// reader's fixed names.
    pub fn entries(&self) -> &[(FieldName, Value)] {
        &self.0
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Fields, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of fields")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut fields = Fields::with_capacity(map.size_hint().unwrap_or(16));
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    fields.0.push((k.into(), v));
                }
                Ok(fields)
            }
        }
        d.deserialize_map(V)
    }
}

impl<K: Into<FieldName>> FromIterator<(K, Value)> for Fields {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Fields {
        Fields(iter.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_round_trips_through_json() {
        let mut fields = Fields::new();
        fields.push("Image", "C:\\x\\3CXDesktopApp.exe");
        fields.push("ProcessId", 42i64);
        fields.push("Tags", Value::List(vec!["a".into(), Value::Null]));
        let event = Event {
            time: Time(1_679_480_130_500_000),
            host: "ws-01".into(),
            logsource: Logsource::fixed(Some("windows"), Some("process_creation"), None),
            fields,
        };
        let text = serde_json::to_string(&event).unwrap();
        let back: Event = serde_json::from_str(&text).unwrap();
        assert_eq!(back, event);
        assert_eq!(
            back.fields.get_str("Image"),
            Some("C:\\x\\3CXDesktopApp.exe")
        );
    }

    #[test]
    fn set_replaces_and_strings_flattens_lists() {
        let mut f = Fields::new();
        f.set("a", "1");
        f.set("a", "2");
        assert_eq!(f.len(), 1);
        assert_eq!(f.get_str("a"), Some("2"));
        let list = Value::List(vec!["x".into(), Value::Int(3), "y".into()]);
        assert_eq!(list.strings().collect::<Vec<_>>(), vec!["x", "y"]);
    }
}
