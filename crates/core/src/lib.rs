//! turncoat's vocabulary.
//!
//! Every other crate speaks in these types. Nothing here knows about storage,
//! files or the network: this crate only defines what things are and how
//! they compare (normalised observables, ecosystem version ordering).

#![forbid(unsafe_code)]

pub mod access;
pub mod advisory;
pub mod alert;
pub mod event;
pub mod indicator;
pub mod inventory;
pub mod observable;
pub mod tenant;
pub mod time;
pub mod version;

pub use access::{Role, TokenScope};
pub use advisory::{Advisory, Affected, Platform, RangeError, VersionRange};
pub use alert::{Actor, AlertId, AlertKind, AlertStatus, Evidence, Finding, FindingKey, Severity};
pub use event::{Event, FieldName, Fields, Logsource, Text, Value};
pub use indicator::{Indicator, IndicatorKind, IndicatorRef};
pub use inventory::{InventoryChange, InventoryItem, InventoryRecord};
pub use observable::{Observable, ObservableKind};
pub use tenant::{TenantId, TenantName};
pub use time::Time;
pub use version::{Ecosystem, VersionError};

/// A word outside a closed set: an alert kind, a severity, a platform.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
pub struct UnknownName {
    what: &'static str,
    value: String,
    hint: Option<std::borrow::Cow<'static, str>>,
}

impl UnknownName {
    pub fn new(what: &'static str, value: &str) -> UnknownName {
        UnknownName {
            what,
            value: value.to_owned(),
            hint: None,
        }
    }

    /// With the names that would have been understood.
    pub fn expecting(
        what: &'static str,
        value: &str,
        hint: impl Into<std::borrow::Cow<'static, str>>,
    ) -> UnknownName {
        UnknownName {
            hint: Some(hint.into()),
            ..UnknownName::new(what, value)
        }
    }
}

/// A `HashMap` for the hot paths, hashed with foldhash instead of SipHash:
/// several times faster on the short keys ingest hashes (host names,
/// observables, ids). Its seed is random per process, so hostile keys
/// cannot be chosen to collide ahead of time (the same trade hashbrown
/// makes by default).
pub type FastHashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Bytes of a value that messages quote; longer values are cut there.
pub const QUOTED_BYTES: usize = 200;

/// `value` for a message: whole when short, else its first
/// [`QUOTED_BYTES`] (at a character boundary) and its length, so that a
/// hostile megabyte-long value cannot flood a report.
pub fn quote(value: &str) -> String {
    if value.len() <= QUOTED_BYTES {
        return format!("{value:?}");
    }
    let mut end = QUOTED_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}… ({} bytes)", &value[..end], value.len())
}
