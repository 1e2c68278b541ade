//! Who may do what: the roles of people and the scopes of API tokens.
//!
//! Storage keeps them and the server enforces them; the words live here
//! so that the CLI, the store and the server spell them alike.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::UnknownName;

/// Declares a closed set of words: the enum, its spelling, `Display`,
/// and `FromStr` answering [`UnknownName`] with every spelling.
macro_rules! words {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $word:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<$name, UnknownName> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| {
                        let known: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                        UnknownName::expecting($what, s, known.join(", "))
                    })
            }
        }
    };
}

words! {
    /// A person's role at the MSSP.
    Role, "role" {
        /// Everything: every tenant, users, tokens, intel and rules.
        Admin = "admin",
        /// Triage (alert status, comments, suppressions) in the tenants
        /// granted, or in all when none are named.
        Analyst = "analyst",
        /// Reading only, in the tenants granted: what an MSSP shows a
        /// customer.
        Viewer = "viewer",
    }
}

words! {
    /// What a tenant's API token may do, in that tenant only.
    TokenScope, "token scope" {
        /// Send telemetry: what a sensor or an agent holds.
        Ingest = "ingest",
        /// Read alerts, exposure and reports.
        Read = "read",
        /// Read and triage.
        Write = "write",
    }
}

impl Role {
    /// Whether the role changes alert state (triage, suppression).
    pub fn can_triage(self) -> bool {
        matches!(self, Role::Admin | Role::Analyst)
    }

    /// Whether the role sees every tenant whatever it was granted.
    pub fn sees_all_tenants(self) -> bool {
        self == Role::Admin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_unknown_ones_list_the_known() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), *r);
        }
        for s in TokenScope::ALL {
            assert_eq!(s.to_string().parse::<TokenScope>().unwrap(), *s);
        }
        let e = "root".parse::<Role>().unwrap_err().to_string();
        assert_eq!(e, "unknown role \"root\" (admin, analyst, viewer)");
    }
}
