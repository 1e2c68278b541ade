//! Advisories: which product versions are affected, on which platforms.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::UnknownName;
use crate::alert::Severity;
use crate::indicator::Indicator;
use crate::version::{Ecosystem, VersionError};

/// An operating-system family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Platform {
    Windows,
    Macos,
    Linux,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Windows => "windows",
            Platform::Macos => "macos",
            Platform::Linux => "linux",
        }
    }

    /// Reads the spellings telemetry uses (`windows`, `Darwin`, `macOS`,
    /// `ubuntu`, ...).
    pub fn from_os_name(s: &str) -> Option<Platform> {
        // Compared without a lowercase copy: every ECS event names its OS.
        let s = s.trim();
        let starts = |p: &str| s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
        if starts("win") {
            Some(Platform::Windows)
        } else if starts("mac") || s.eq_ignore_ascii_case("darwin") || s.eq_ignore_ascii_case("osx")
        {
            Some(Platform::Macos)
        } else if s.eq_ignore_ascii_case("linux")
            || [
                "ubuntu", "debian", "rhel", "centos", "fedora", "redhat", "suse", "alpine", "amzn",
                "rocky",
            ]
            .iter()
            .any(|d| starts(d))
        {
            Some(Platform::Linux)
        } else {
            None
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Platform, UnknownName> {
        Platform::from_os_name(s)
            .ok_or_else(|| UnknownName::expecting("platform", s, "windows, macos or linux"))
    }
}

/// Why a range of affected versions cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("range has no bounds (write introduced = \"0\" for every version)")]
    NoBounds,
    #[error("{field}: {source}")]
    Bound {
        field: &'static str,
        #[source]
        source: VersionError,
    },
    #[error("range is empty: introduced {start} {relation} {end}")]
    Empty {
        start: String,
        relation: &'static str,
        end: String,
    },
}

/// A half-open range of affected versions: `introduced <= v < fixed`, or
/// `introduced <= v <= last_affected`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introduced: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_affected: Option<String>,
}

impl VersionRange {
    /// Checks that every bound is a version of `eco` and that the range
    /// is not empty. A range with no bounds at all would cover every
    /// version, which no advisory means by accident; OSV's explicit
    /// `introduced: "0"` is how "every version" is said on purpose.
    pub fn check(&self, eco: Ecosystem) -> Result<(), RangeError> {
        let bounds = [
            ("introduced", &self.introduced),
            ("fixed", &self.fixed),
            ("last_affected", &self.last_affected),
        ];
        if bounds.iter().all(|(_, b)| b.is_none()) {
            return Err(RangeError::NoBounds);
        }
        for (field, bound) in bounds {
            if let Some(v) = bound
                && !(field == "introduced" && v == "0")
            {
                eco.check_version(v)
                    .map_err(|source| RangeError::Bound { field, source })?;
            }
        }
        if let (Some(start), Some(end)) = (
            self.introduced.as_deref().filter(|v| *v != "0"),
            self.fixed.as_deref(),
        ) && eco.compare(start, end) != Ordering::Less
        {
            return Err(RangeError::Empty {
                start: start.to_owned(),
                relation: "is not before fixed",
                end: end.to_owned(),
            });
        }
        if let (Some(start), Some(last)) = (
            self.introduced.as_deref().filter(|v| *v != "0"),
            self.last_affected.as_deref(),
        ) && eco.compare(start, last) == Ordering::Greater
        {
            return Err(RangeError::Empty {
                start: start.to_owned(),
                relation: "is after last_affected",
                end: last.to_owned(),
            });
        }
        Ok(())
    }

    pub fn contains(&self, eco: Ecosystem, version: &str) -> bool {
        // OSV writes `introduced: "0"` for "every version".
        let after_start = match self.introduced.as_deref() {
            None | Some("0") => true,
            Some(start) => eco.compare(version, start) != Ordering::Less,
        };
        let before_end = match (&self.fixed, &self.last_affected) {
            (Some(fixed), _) => eco.compare(version, fixed) == Ordering::Less,
            (None, Some(last)) => eco.compare(version, last) != Ordering::Greater,
            (None, None) => true,
        };
        after_start && before_end
    }
}

/// One affected product within an advisory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Affected {
    pub product: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Inventory names that mean this product; `product` itself always counts.
    #[serde(default)]
    pub names: Vec<String>,
    /// Empty means every platform.
    #[serde(default)]
    pub platforms: Vec<Platform>,
    #[serde(default)]
    pub ecosystem: Ecosystem,
    #[serde(default)]
    pub versions: Vec<String>,
    #[serde(default)]
    pub ranges: Vec<VersionRange>,
}

impl Affected {
    /// The lookup keys ([`product_lookup_key`]) of every name this
    /// product is known by.
    pub fn lookup_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = std::iter::once(&self.product)
            .chain(&self.names)
            .map(|n| product_lookup_key(n))
            .filter(|n| !n.is_empty())
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// A name as this entry's ecosystem compares names: normalised, with
    /// the registry's own equivalences (PEP 503 for PyPI, `-`/`_` for
    /// crates.io).
    fn name_key(&self, name: &str) -> String {
        normalize_product_name(&self.ecosystem.package_key(name))
    }

    /// Whether this entry covers an installed product, compared exactly on
    /// the name (by its ecosystem's rules), never by substring.
    pub fn matches(
        &self,
        name: &str,
        version: &str,
        platform: Option<Platform>,
        eco: Ecosystem,
    ) -> bool {
        let name = self.name_key(name);
        std::iter::once(&self.product)
            .chain(&self.names)
            .any(|n| self.name_key(n) == name)
            && self.ecosystem_applies(eco)
            && (self.platforms.is_empty() || platform.is_none_or(|p| self.platforms.contains(&p)))
            && self.version_affected(version)
    }

    /// A generic advisory covers desktop inventories of any source; a
    /// package advisory only that ecosystem's packages.
    fn ecosystem_applies(&self, inventory: Ecosystem) -> bool {
        self.ecosystem == Ecosystem::Generic
            || inventory == Ecosystem::Generic
            || self.ecosystem == inventory
    }

    pub fn version_affected(&self, version: &str) -> bool {
        self.versions
            .iter()
            .any(|v| self.ecosystem.equal(v, version))
            || self
                .ranges
                .iter()
                .any(|r| r.contains(self.ecosystem, version))
    }
}

/// What an analyst or a feed says is affected, and how to spot it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Advisory {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    #[serde(default)]
    pub references: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    pub affected: Vec<Affected>,
    /// Indicators published with the advisory (stored with the other intel).
    #[serde(default, skip_serializing)]
    pub indicators: Vec<Indicator>,
    /// `malicious` for OSV `MAL-` records: every affected version is hostile.
    #[serde(default)]
    pub malicious: bool,
}

/// The key installed products and advisories are looked up by (and the
/// ledger is indexed on): the normalised name with every run of `-`, `_`
/// and `.` written `-`. As loose as the loosest registry's rule (PEP 503),
/// so that a lookup never misses; [`Affected::matches`] then decides by the
/// advisory's ecosystem.
pub fn product_lookup_key(name: &str) -> String {
    Ecosystem::Pypi.package_key(&normalize_product_name(name))
}

/// Case-folded, whitespace-collapsed, macOS bundle suffix removed: the
/// form product names are compared in.
pub fn normalize_product_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for word in name.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&word.to_lowercase());
    }
    if let Some(stripped) = out.strip_suffix(".app") {
        out.truncate(stripped.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_names_are_read_whatever_their_case() {
        for (name, platform) in [
            ("windows", Some(Platform::Windows)),
            (" Windows 10 ", Some(Platform::Windows)),
            ("macOS", Some(Platform::Macos)),
            ("Darwin", Some(Platform::Macos)),
            ("OSX", Some(Platform::Macos)),
            ("Linux", Some(Platform::Linux)),
            ("ubuntu 22.04", Some(Platform::Linux)),
            ("Amzn", Some(Platform::Linux)),
            ("linuxish", None),
            ("freebsd", None),
            ("wi", None),
            ("é", None),
            ("", None),
        ] {
            assert_eq!(Platform::from_os_name(name), platform, "{name:?}");
        }
    }

    #[test]
    fn ranges_that_would_cover_everything_by_accident_are_refused() {
        let range = |i: Option<&str>, f: Option<&str>, l: Option<&str>| VersionRange {
            introduced: i.map(str::to_owned),
            fixed: f.map(str::to_owned),
            last_affected: l.map(str::to_owned),
        };
        let eco = Ecosystem::Generic;
        assert!(range(None, None, None).check(eco).is_err());
        assert!(range(Some("zzz"), None, None).check(eco).is_err());
        assert!(range(Some("2.0"), Some("1.0"), None).check(eco).is_err());
        assert!(range(Some("2.0"), Some("2.0"), None).check(eco).is_err());
        assert!(range(Some("2.0"), None, Some("1.9")).check(eco).is_err());
        assert_eq!(range(Some("0"), Some("1.0"), None).check(eco), Ok(()));
        assert_eq!(range(Some("0"), None, None).check(eco), Ok(()));
        assert_eq!(range(Some("1.0"), None, Some("1.0")).check(eco), Ok(()));
    }

    fn threecx() -> Affected {
        Affected {
            product: "3CX Desktop App".into(),
            vendor: Some("3CX".into()),
            names: vec!["3CXDesktopApp".into()],
            platforms: vec![Platform::Windows],
            ecosystem: Ecosystem::Generic,
            versions: vec!["18.12.407".into(), "18.12.416".into()],
            ranges: vec![],
        }
    }

    #[test]
    fn exact_names_never_substrings() {
        let a = threecx();
        assert!(a.matches(
            "3CX Desktop App",
            "18.12.416",
            Some(Platform::Windows),
            Ecosystem::Generic
        ));
        assert!(a.matches("3cxdesktopapp", "18.12.407", None, Ecosystem::Generic));
        assert!(!a.matches(
            "3CX Phone System Management Console",
            "18.12.416",
            None,
            Ecosystem::Generic
        ));
        assert!(!a.matches("3CX Desktop App", "18.12.422", None, Ecosystem::Generic));
        assert!(!a.matches(
            "3CX Desktop App",
            "18.12.416",
            Some(Platform::Macos),
            Ecosystem::Generic
        ));
        assert!(
            a.matches("3CX Desktop App", "18.12.416", None, Ecosystem::Nuget),
            "a generic advisory covers every inventory source"
        );
        assert!(!a.matches("3CX-Desktop-App", "18.12.416", None, Ecosystem::Generic));
    }

    #[test]
    fn package_names_compare_by_their_registry_rules() {
        let pypi = Affected {
            product: "python-dateutil".into(),
            vendor: None,
            names: vec![],
            platforms: vec![],
            ecosystem: Ecosystem::Pypi,
            versions: vec!["2.8.0".into()],
            ranges: vec![],
        };
        for spelling in ["python_dateutil", "Python.DateUtil", "python--dateutil"] {
            assert!(
                pypi.matches(spelling, "2.8.0", None, Ecosystem::Pypi),
                "{spelling}"
            );
            assert_eq!(product_lookup_key(spelling), "python-dateutil");
        }
        assert!(!pypi.matches("python-dateutils", "2.8.0", None, Ecosystem::Pypi));
        assert!(!pypi.matches("python_dateutil", "2.8.0", None, Ecosystem::Npm));
        let npm = Affected {
            product: "node-ipc".into(),
            ecosystem: Ecosystem::Npm,
            versions: vec!["10.1.1".into()],
            ..pypi
        };
        // npm keeps `_` and `-` apart, though the lookup key joins them.
        assert!(npm.matches("Node-IPC", "10.1.1", None, Ecosystem::Npm));
        assert!(!npm.matches("node_ipc", "10.1.1", None, Ecosystem::Npm));
        assert_eq!(npm.lookup_keys(), [product_lookup_key("node_ipc")]);
    }

    #[test]
    fn ranges_are_half_open() {
        let r = VersionRange {
            introduced: Some("18.12.407".into()),
            fixed: Some("18.12.422".into()),
            last_affected: None,
        };
        assert!(r.contains(Ecosystem::Generic, "18.12.407"));
        assert!(r.contains(Ecosystem::Generic, "18.12.416"));
        assert!(!r.contains(Ecosystem::Generic, "18.12.422"));
        assert!(!r.contains(Ecosystem::Generic, "18.11.1213"));
        let all = VersionRange {
            introduced: Some("0".into()),
            ..Default::default()
        };
        assert!(all.contains(Ecosystem::Crates, "1.2.3"));
    }

    #[test]
    fn product_names_normalise() {
        assert_eq!(
            normalize_product_name("  3CX  Desktop App.app "),
            "3cx desktop app"
        );
    }
}
