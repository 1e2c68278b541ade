//! Tenant names: the MSSP's customers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A validated tenant name: 1 to 64 characters of ASCII letters, digits,
/// `.`, `_` and `-`, starting with a letter or digit. Case-sensitive.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(value_type = String, pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
)]
pub struct TenantName(String);

/// Why a tenant name was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid tenant name {name:?}: {reason}")]
pub struct InvalidTenantName {
    pub name: String,
    pub reason: &'static str,
}

impl TenantName {
    pub fn new(name: &str) -> Result<TenantName, InvalidTenantName> {
        let fail = |reason| InvalidTenantName {
            name: name.chars().take(80).collect(),
            reason,
        };
        if name.is_empty() {
            return Err(fail("it is empty"));
        }
        if name.len() > 64 {
            return Err(fail("it is longer than 64 characters"));
        }
        if !name.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(fail("it must start with a letter or a digit"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(fail(
                "only ASCII letters, digits, '.', '_' and '-' are allowed",
            ));
        }
        Ok(TenantName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantName {
    type Error = InvalidTenantName;
    fn try_from(s: String) -> Result<TenantName, InvalidTenantName> {
        TenantName::new(&s)
    }
}

impl From<TenantName> for String {
    fn from(t: TenantName) -> String {
        t.0
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_names() {
        assert!(TenantName::new("acme-corp").is_ok());
        assert!(TenantName::new("Acme.2").is_ok());
        assert_ne!(
            TenantName::new("Acme").unwrap(),
            TenantName::new("acme").unwrap()
        );
        for bad in ["", "-x", "a b", "ü", "a/b", &"x".repeat(65)] {
            assert!(TenantName::new(bad).is_err(), "{bad:?}");
        }
    }
}

/// A tenant's number in the store: what its rows are keyed by. An id names
/// a tenant and grants nothing: what a caller may see is a `Scope`, built
/// from the tenants only the store hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(i64);

impl TenantId {
    /// For a store naming its own rows.
    pub fn new(id: i64) -> TenantId {
        TenantId(id)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}
