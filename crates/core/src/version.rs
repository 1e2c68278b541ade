//! Version ordering by each ecosystem's own rules.
//!
//! Advisories name versions the way their ecosystem spells them, and
//! `1.10` is newer than `1.9` in every one of them, but `1.0~rc1` is older
//! than `1.0` only in Debian and `1.0rc1` older than `1.0` only in PEP 440.
//! The Debian, RPM and PEP 440 comparisons are the published algorithms
//! (dpkg's `verrevcmp`, rpm's `rpmvercmp`, PEP 440 §"Summary of permitted
//! suffixes"); semver uses the `semver` crate.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::UnknownName;
/// The ordering rules a version string follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Ecosystem {
    /// Dotted numbers with optional text parts, as desktop software uses.
    #[default]
    Generic,
    Semver,
    Npm,
    #[serde(rename = "crates.io")]
    Crates,
    Pypi,
    Debian,
    Rpm,
    Go,
    Maven,
    Rubygems,
    Nuget,
    Packagist,
}

impl Ecosystem {
    pub const ALL: [Ecosystem; 12] = [
        Ecosystem::Generic,
        Ecosystem::Semver,
        Ecosystem::Npm,
        Ecosystem::Crates,
        Ecosystem::Pypi,
        Ecosystem::Debian,
        Ecosystem::Rpm,
        Ecosystem::Go,
        Ecosystem::Maven,
        Ecosystem::Rubygems,
        Ecosystem::Nuget,
        Ecosystem::Packagist,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Generic => "generic",
            Ecosystem::Semver => "semver",
            Ecosystem::Npm => "npm",
            Ecosystem::Crates => "crates.io",
            Ecosystem::Pypi => "pypi",
            Ecosystem::Debian => "debian",
            Ecosystem::Rpm => "rpm",
            Ecosystem::Go => "go",
            Ecosystem::Maven => "maven",
            Ecosystem::Rubygems => "rubygems",
            Ecosystem::Nuget => "nuget",
            Ecosystem::Packagist => "packagist",
        }
    }

    /// Maps OSV's ecosystem names (`PyPI`, `crates.io`, `Debian:12`, ...).
    pub fn from_osv(name: &str) -> Option<Ecosystem> {
        let base = name.split(':').next().unwrap_or(name);
        Some(match base.to_ascii_lowercase().as_str() {
            "pypi" => Ecosystem::Pypi,
            "npm" => Ecosystem::Npm,
            "crates.io" => Ecosystem::Crates,
            "debian" | "ubuntu" => Ecosystem::Debian,
            "red hat" | "rocky linux" | "almalinux" | "suse" | "opensuse" => Ecosystem::Rpm,
            "go" => Ecosystem::Go,
            "maven" => Ecosystem::Maven,
            "rubygems" => Ecosystem::Rubygems,
            "nuget" => Ecosystem::Nuget,
            "packagist" => Ecosystem::Packagist,
            _ => return None,
        })
    }

    /// Compares two versions under this ecosystem's rules.
    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            Ecosystem::Semver
            | Ecosystem::Npm
            | Ecosystem::Crates
            | Ecosystem::Go
            | Ecosystem::Nuget
            | Ecosystem::Packagist => compare_semver(a, b),
            Ecosystem::Pypi => compare_pep440(a, b),
            Ecosystem::Debian => compare_debian(a, b),
            Ecosystem::Rpm => compare_rpm(a, b),
            Ecosystem::Maven => compare_maven(a, b),
            Ecosystem::Rubygems => compare_rubygems(a, b),
            Ecosystem::Generic => compare_generic(a, b),
        }
    }

    /// The form a package name is compared in: the ecosystem's own
    /// equivalences (PEP 503 for PyPI, `-`/`_` for crates.io, case where
    /// the registry ignores it), so that a lockfile's spelling finds the
    /// advisory's.
    pub fn package_key(self, name: &str) -> String {
        let name = name.trim();
        match self {
            Ecosystem::Pypi => {
                let mut out = String::with_capacity(name.len());
                for c in name.chars() {
                    if matches!(c, '-' | '_' | '.') {
                        if !out.ends_with('-') {
                            out.push('-');
                        }
                    } else {
                        out.push(c.to_ascii_lowercase());
                    }
                }
                out
            }
            Ecosystem::Crates => name.to_ascii_lowercase().replace('_', "-"),
            Ecosystem::Npm | Ecosystem::Nuget | Ecosystem::Packagist => name.to_ascii_lowercase(),
            _ => name.to_owned(),
        }
    }

    /// Whether `v` is a version this ecosystem can order: it starts with a
    /// digit (after an optional `v`, as Go and some tags write it) and
    /// uses only the characters the ecosystem allows. Anything else
    /// (`zzz`, an empty string, a sentence) would compare arbitrarily
    /// and, in a range, could make every version look affected.
    pub fn check_version(self, v: &str) -> Result<(), VersionError> {
        if v.is_empty() {
            return Err(VersionError::Empty);
        }
        if v.len() > MAX_VERSION_BYTES {
            return Err(VersionError::TooLong(v.len()));
        }
        let body = v.strip_prefix(['v', 'V']).unwrap_or(v);
        if !body.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(VersionError::NoLeadingDigit {
                version: v.to_owned(),
                ecosystem: self,
            });
        }
        let extra: &[char] = match self {
            Ecosystem::Pypi => &['.', '!', '+', '_', '-'],
            Ecosystem::Debian => &['.', '+', '~', ':', '-'],
            Ecosystem::Rpm => &['.', '+', '~', '^', '_', '-', ':'],
            Ecosystem::Generic | Ecosystem::Maven => &['.', '+', '_', '-', '~'],
            _ => &['.', '+', '-'],
        };
        match body
            .chars()
            .find(|c| !c.is_ascii_alphanumeric() && !extra.contains(c))
        {
            Some(c) => Err(VersionError::Character {
                version: v.to_owned(),
                ecosystem: self,
                character: c,
            }),
            None => Ok(()),
        }
    }

    /// Whether two spellings name the same version (`1.0` and `1.0.0` do
    /// in the generic ordering).
    pub fn equal(self, a: &str, b: &str) -> bool {
        self.compare(a, b) == Ordering::Equal
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest version string taken: no real one comes near it.
const MAX_VERSION_BYTES: usize = 128;

/// Why a string is not a version an ecosystem can order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("version is empty")]
    Empty,
    #[error("version is {0} bytes, longer than {MAX_VERSION_BYTES}")]
    TooLong(usize),
    #[error(
        "{} is no {ecosystem} version: it does not start with a digit",
        crate::quote(version)
    )]
    NoLeadingDigit {
        version: String,
        ecosystem: Ecosystem,
    },
    #[error(
        "{} is no {ecosystem} version: {character:?} is not allowed",
        crate::quote(version)
    )]
    Character {
        version: String,
        ecosystem: Ecosystem,
        character: char,
    },
}

impl FromStr for Ecosystem {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Ecosystem, UnknownName> {
        let lower = s.to_ascii_lowercase();
        Ecosystem::ALL
            .into_iter()
            .find(|e| e.as_str() == lower)
            .or_else(|| match lower.as_str() {
                "crates" | "cargo" => Some(Ecosystem::Crates),
                "deb" => Some(Ecosystem::Debian),
                "python" => Some(Ecosystem::Pypi),
                "gem" => Some(Ecosystem::Rubygems),
                _ => Ecosystem::from_osv(s),
            })
            .ok_or_else(|| UnknownName::new("ecosystem", s))
    }
}

/// Splits into runs of digits and runs of letters; separators only split.
/// Numeric runs compare as numbers, text runs case-insensitively, a
/// numeric run sorts after a text run (`1.0` > `1.0beta`), and missing
/// trailing zero parts are equal (`1.0` = `1.0.0`). A trailing text run
/// marks a pre-release (`1.0rc1` < `1.0`).
pub fn compare_generic(a: &str, b: &str) -> Ordering {
    compare_parts(&generic_parts(a), &generic_parts(b))
}

fn compare_parts(pa: &[GenericPart], pb: &[GenericPart]) -> Ordering {
    let n = pa.len().max(pb.len());
    for i in 0..n {
        let x = pa.get(i);
        let y = pb.get(i);
        let ord = match (x, y) {
            (Some(x), Some(y)) => x.cmp(y),
            // The longer one continues: numbers > 0 make it newer, a text
            // part makes it a pre-release of the shorter one.
            (Some(GenericPart::Num(0)), None) | (None, Some(GenericPart::Num(0))) => {
                Ordering::Equal
            }
            (Some(GenericPart::Num(_)), None) => Ordering::Greater,
            (None, Some(GenericPart::Num(_))) => Ordering::Less,
            (Some(GenericPart::Text(_)), None) => Ordering::Less,
            (None, Some(GenericPart::Text(_))) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum GenericPart {
    // Declared first so that text < number.
    Text(String),
    Num(u128),
}

fn generic_parts(v: &str) -> Vec<GenericPart> {
    let v = v.trim().trim_start_matches(['v', 'V']);
    let mut parts = Vec::new();
    let bytes = v.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let digits = v[start..i].trim_start_matches('0');
            parts.push(GenericPart::Num(
                digits
                    .parse()
                    .unwrap_or(if digits.is_empty() { 0 } else { u128::MAX }),
            ));
        } else if c.is_ascii_alphabetic() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            parts.push(GenericPart::Text(v[start..i].to_ascii_lowercase()));
        } else {
            i += 1;
        }
    }
    parts
}

/// RubyGems' `Gem::Version#<=>`: numeric and letter segments, a letter
/// segment marks a pre-release, and trailing zeros of the release part and
/// of the pre-release part do not count (`1.0.0.a` = `1.0.a`).
pub fn compare_rubygems(a: &str, b: &str) -> Ordering {
    fn canonical(v: &str) -> Vec<GenericPart> {
        let parts = generic_parts(v);
        let split = parts
            .iter()
            .position(|p| matches!(p, GenericPart::Text(_)))
            .unwrap_or(parts.len());
        let mut release: Vec<GenericPart> = Vec::with_capacity(parts.len());
        let mut rest = parts;
        let pre = rest.split_off(split);
        release.extend(rest);
        let trim = |v: &mut Vec<GenericPart>| {
            while matches!(v.last(), Some(GenericPart::Num(0))) {
                v.pop();
            }
        };
        trim(&mut release);
        let mut pre = pre;
        trim(&mut pre);
        release.extend(pre);
        release
    }
    compare_parts(&canonical(a), &canonical(b))
}

/// Maven's `ComparableVersion`, in its common cases: numbers compare as
/// numbers and sort after qualifiers; qualifiers order `alpha` < `beta` <
/// `milestone` < `rc` = `cr` < `snapshot` < release (`""`, `ga`, `final`,
/// `release`) < `sp` < anything else (alphabetically); a missing part is
/// `0` against a number and a release against a qualifier, so `1.0` =
/// `1.0.0` = `1.0.Final` and `1.0-rc1` < `1.0` < `1.0-sp1`.
pub fn compare_maven(a: &str, b: &str) -> Ordering {
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum Item {
        // Declared first so that qualifiers sort before numbers.
        Qualifier(u8, String),
        Num(u128),
    }
    const RELEASE: u8 = 5;
    fn items(v: &str) -> Vec<Item> {
        let parts = generic_parts(v);
        let mut out = Vec::with_capacity(parts.len());
        for (i, p) in parts.iter().enumerate() {
            out.push(match p {
                GenericPart::Num(n) => Item::Num(*n),
                GenericPart::Text(t) => {
                    let before_digit = matches!(parts.get(i + 1), Some(GenericPart::Num(_)));
                    let rank = match t.as_str() {
                        "alpha" => 0,
                        "a" if before_digit => 0,
                        "beta" => 1,
                        "b" if before_digit => 1,
                        "milestone" => 2,
                        "m" if before_digit => 2,
                        "rc" | "cr" => 3,
                        "snapshot" => 4,
                        "ga" | "final" | "release" => RELEASE,
                        "sp" => 6,
                        _ => 7,
                    };
                    let text = if rank == 7 { t.clone() } else { String::new() };
                    Item::Qualifier(rank, text)
                }
            });
        }
        out
    }
    let (x, y) = (items(a), items(b));
    for i in 0..x.len().max(y.len()) {
        let ord = match (x.get(i), y.get(i)) {
            (Some(p), Some(q)) => p.cmp(q),
            (Some(p), None) => missing_vs(p).reverse(),
            (None, Some(q)) => missing_vs(q),
            (None, None) => Ordering::Equal,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    return Ordering::Equal;

    /// How a missing part compares with a present one.
    fn missing_vs(present: &Item) -> Ordering {
        match present {
            Item::Num(n) => 0.cmp(n),
            Item::Qualifier(rank, _) => RELEASE.cmp(rank),
        }
    }
}

fn compare_semver(a: &str, b: &str) -> Ordering {
    let clean = |s: &str| s.trim().trim_start_matches(['v', '=']).to_owned();
    match (
        semver::Version::parse(&clean(a)),
        semver::Version::parse(&clean(b)),
    ) {
        (Ok(x), Ok(y)) => x
            .cmp_precedence(&y)
            .then_with(|| x.build.cmp(&y.build).then(Ordering::Equal)),
        _ => compare_generic(a, b),
    }
}

/// dpkg's ordering: `[epoch:]upstream[-revision]`, where `~` sorts before
/// everything, even the end of the string.
pub fn compare_debian(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split_debian(a);
    let (eb, ub, rb) = split_debian(b);
    ea.cmp(&eb)
        .then_with(|| verrevcmp(ua, ub))
        .then_with(|| verrevcmp(ra, rb))
}

fn split_debian(v: &str) -> (u64, &str, &str) {
    let v = v.trim();
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) if e.bytes().all(|b| b.is_ascii_digit()) && !e.is_empty() => {
            (e.parse().unwrap_or(u64::MAX), r)
        }
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((u, r)) => (epoch, u, r),
        None => (epoch, rest, ""),
    }
}

fn debian_order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

fn verrevcmp(a: &str, b: &str) -> Ordering {
    let a = a.as_bytes();
    let b = b.as_bytes();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit prefix, compared by the dpkg character order.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = debian_order(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let bc = debian_order(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            if i < a.len() && !a[i].is_ascii_digit() {
                i += 1;
            }
            if j < b.len() && !b[j].is_ascii_digit() {
                j += 1;
            }
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

/// rpm's `rpmvercmp` on `[epoch:]version[-release]`.
pub fn compare_rpm(a: &str, b: &str) -> Ordering {
    let (ea, va, ra) = split_debian(a);
    let (eb, vb, rb) = split_debian(b);
    ea.cmp(&eb).then_with(|| rpmvercmp(va, vb)).then_with(|| {
        if ra.is_empty() || rb.is_empty() {
            Ordering::Equal
        } else {
            rpmvercmp(ra, rb)
        }
    })
}

fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let a = a.as_bytes();
    let b = b.as_bytes();
    let (mut i, mut j) = (0, 0);
    loop {
        while i < a.len() && !a[i].is_ascii_alphanumeric() && a[i] != b'~' && a[i] != b'^' {
            i += 1;
        }
        while j < b.len() && !b[j].is_ascii_alphanumeric() && b[j] != b'~' && b[j] != b'^' {
            j += 1;
        }
        // Tilde: sorts before anything.
        let at = a.get(i) == Some(&b'~');
        let bt = b.get(j) == Some(&b'~');
        if at || bt {
            if !at {
                return Ordering::Greater;
            }
            if !bt {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        // Caret: sorts after the end but before anything else.
        let ac = a.get(i) == Some(&b'^');
        let bc = b.get(j) == Some(&b'^');
        if ac || bc {
            if i >= a.len() {
                return Ordering::Less;
            }
            if j >= b.len() {
                return Ordering::Greater;
            }
            if !ac {
                return Ordering::Greater;
            }
            if !bc {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if i >= a.len() || j >= b.len() {
            break;
        }
        let numeric = a[i].is_ascii_digit();
        let take = |s: &[u8], mut k: usize| {
            let start = k;
            while k < s.len()
                && (if numeric {
                    s[k].is_ascii_digit()
                } else {
                    s[k].is_ascii_alphabetic()
                })
            {
                k += 1;
            }
            (start, k)
        };
        let (s1, e1) = take(a, i);
        let (s2, e2) = take(b, j);
        if s2 == e2 {
            // Different segment types: numeric is newer.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (x, y) = (&a[s1..e1], &b[s2..e2]);
        let ord = if numeric {
            let x = trim_zeros(x);
            let y = trim_zeros(y);
            x.len().cmp(&y.len()).then_with(|| x.cmp(y))
        } else {
            x.cmp(y)
        };
        if ord != Ordering::Equal {
            return ord;
        }
        i = e1;
        j = e2;
    }
    (a.len() - i.min(a.len())).cmp(&(b.len() - j.min(b.len())))
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let k = s.iter().position(|&c| c != b'0').unwrap_or(s.len());
    &s[k..]
}

/// PEP 440: epoch, release, pre (a|b|rc), post, dev, local.
pub fn compare_pep440(a: &str, b: &str) -> Ordering {
    match (Pep440::parse(a), Pep440::parse(b)) {
        (Some(x), Some(y)) => x.key().cmp(&y.key()),
        _ => compare_generic(a, b),
    }
}

/// Epoch, release, pre-release rank, post rank, dev rank, local parts.
type Pep440Key<'a> = (
    u64,
    &'a [u64],
    (i8, u8, u64),
    (i8, u64),
    (i8, u64),
    &'a [GenericPart],
);

#[derive(Debug)]
struct Pep440 {
    epoch: u64,
    release: Vec<u64>,
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Vec<GenericPart>,
}

impl Pep440 {
    fn parse(v: &str) -> Option<Pep440> {
        let v = v.trim().to_ascii_lowercase();
        let v = v.strip_prefix('v').unwrap_or(&v);
        let (v, local) = match v.split_once('+') {
            Some((p, l)) => (p, generic_parts(l)),
            None => (v, Vec::new()),
        };
        let (epoch, v) = match v.split_once('!') {
            Some((e, r)) => (e.parse().ok()?, r),
            None => (0, v),
        };
        let bytes = v.as_bytes();
        let mut i = 0;
        let mut release = Vec::new();
        loop {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return None;
            }
            release.push(v[start..i].parse().ok()?);
            if i < bytes.len()
                && bytes[i] == b'.'
                && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
            {
                i += 1;
            } else {
                break;
            }
        }
        let mut rest = &v[i..];
        let mut pre = None;
        let mut post = None;
        let mut dev = None;
        let number = |s: &str| -> (u64, usize) {
            let s2 = s.trim_start_matches(['.', '-', '_']);
            let skipped = s.len() - s2.len();
            let n = s2.bytes().take_while(u8::is_ascii_digit).count();
            (s2[..n].parse().unwrap_or(0), skipped + n)
        };
        while !rest.is_empty() {
            let r = rest.trim_start_matches(['.', '-', '_']);
            let labels: [(&str, u8); 8] = [
                ("alpha", 0),
                ("beta", 1),
                ("preview", 2),
                ("pre", 2),
                ("rc", 2),
                ("a", 0),
                ("b", 1),
                ("c", 2),
            ];
            if let Some((label, rank)) = labels.iter().find(|(l, _)| r.starts_with(l)) {
                let (n, used) = number(&r[label.len()..]);
                pre = Some((*rank, n));
                rest = &r[label.len() + used..];
            } else if let Some(l) = ["post", "rev", "r"].iter().find(|l| r.starts_with(*l)) {
                let (n, used) = number(&r[l.len()..]);
                post = Some(n);
                rest = &r[l.len() + used..];
            } else if let Some(stripped) = r.strip_prefix("dev") {
                let (n, used) = number(stripped);
                dev = Some(n);
                rest = &stripped[used..];
            } else if rest.starts_with('-') && r.bytes().next().is_some_and(|c| c.is_ascii_digit())
            {
                let (n, used) = number(r);
                post = Some(n);
                rest = &r[used..];
            } else {
                return None;
            }
        }
        while release.len() > 1 && release.last() == Some(&0) {
            release.pop();
        }
        Some(Pep440 {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    /// A sort key per PEP 440: a dev release with no pre or post sorts
    /// before every pre-release of the same version.
    fn key(&self) -> Pep440Key<'_> {
        let pre = match (self.pre, self.post, self.dev) {
            (None, None, Some(_)) => (-1, 0, 0),
            (Some((r, n)), _, _) => (0, r, n),
            (None, _, _) => (1, 0, 0),
        };
        let post = match self.post {
            Some(n) => (1, n),
            None => (-1, 0),
        };
        let dev = match self.dev {
            Some(n) => (-1, n),
            None => (1, 0),
        };
        (self.epoch, &self.release, pre, post, dev, &self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn versions_are_checked_in_their_ecosystem() {
        for (eco, good) in [
            (Ecosystem::Generic, "18.12.407"),
            (Ecosystem::Go, "v0.0.0-20230101120000-abcdef123456"),
            (Ecosystem::Pypi, "1!2.0.post1+local.3"),
            (Ecosystem::Debian, "1:2.3+dfsg-1ubuntu0.1~22.04"),
            (Ecosystem::Maven, "1.0-SNAPSHOT"),
            (Ecosystem::Npm, "1.0.0-beta.2+build.7"),
        ] {
            assert_eq!(eco.check_version(good), Ok(()), "{eco} {good}");
        }
        for (eco, bad) in [
            (Ecosystem::Generic, "zzz"),
            (Ecosystem::Generic, ""),
            (Ecosystem::Generic, "1.0 and later"),
            (Ecosystem::Npm, "1.0.0_x"),
            (Ecosystem::Pypi, "1.0~rc1"),
        ] {
            assert!(eco.check_version(bad).is_err(), "{eco} {bad:?}");
        }
        assert!(Ecosystem::Generic.check_version(&"1".repeat(500)).is_err());
    }

    fn check(eco: Ecosystem, pairs: &[(&str, &str, Ordering)]) {
        for (a, b, want) in pairs {
            assert_eq!(eco.compare(a, b), *want, "{eco}: {a} vs {b}");
            assert_eq!(eco.compare(b, a), want.reverse(), "{eco}: {b} vs {a}");
        }
    }

    #[test]
    fn generic_dotted() {
        check(
            Ecosystem::Generic,
            &[
                ("18.12.416", "18.12.407", Greater),
                ("18.12.422", "18.12.416", Greater),
                ("18.11.1213", "18.12.402", Less),
                ("1.10", "1.9", Greater),
                ("1.0", "1.0.0", Equal),
                ("1.0rc1", "1.0", Less),
                ("v2.0", "2.0", Equal),
            ],
        );
    }

    #[test]
    fn semver_prerelease_and_fallback() {
        check(
            Ecosystem::Npm,
            &[
                ("1.0.0-alpha", "1.0.0", Less),
                ("1.0.0-alpha.1", "1.0.0-alpha.beta", Less),
                ("2.0.0", "10.0.0", Less),
                ("1.2", "1.2.0", Equal),
            ],
        );
    }

    #[test]
    fn debian_tilde_and_epoch() {
        check(
            Ecosystem::Debian,
            &[
                ("1.0~rc1", "1.0", Less),
                ("1:0.9", "2.0", Greater),
                ("1.2.3-1", "1.2.3-1+deb12u1", Less),
                ("2.30-1", "2.4-1", Greater),
                ("1.0a", "1.0", Greater),
            ],
        );
    }

    #[test]
    fn rpm_segments() {
        check(
            Ecosystem::Rpm,
            &[
                ("1.0~rc1", "1.0", Less),
                ("1.0a", "1.0", Greater),
                ("2.0.1", "2.0.1a", Less),
                ("5.5p1", "5.5p10", Less),
                ("1.0^git1", "1.0", Greater),
                ("1.0^git1", "1.0.1", Less),
                ("1:1.0", "2.0", Greater),
            ],
        );
    }

    #[test]
    fn pep440_suffix_order() {
        let ordered = [
            "1.0.dev0",
            "1.0a1",
            "1.0a2.dev1",
            "1.0a2",
            "1.0b1",
            "1.0rc1",
            "1.0",
            "1.0+local",
            "1.0.post1",
            "1.1",
            "1!0.1",
        ];
        for w in ordered.windows(2) {
            assert_eq!(compare_pep440(w[0], w[1]), Less, "{} < {}", w[0], w[1]);
        }
        assert_eq!(compare_pep440("1.0", "1.0.0"), Equal);
    }

    #[test]
    fn maven_qualifiers() {
        check(
            Ecosystem::Maven,
            &[
                ("1.0", "1.0.0", Equal),
                ("1.0.Final", "1.0", Equal),
                ("1.0-ga", "1.0", Equal),
                ("1.0-alpha1", "1.0-beta1", Less),
                ("1.0-a1", "1.0-b1", Less),
                ("1.0-beta2", "1.0-M1", Less),
                ("1.0-M3", "1.0-rc1", Less),
                ("1.0-cr1", "1.0-RC1", Equal),
                ("1.0-rc1", "1.0-SNAPSHOT", Less),
                ("1.0-SNAPSHOT", "1.0", Less),
                ("1.0", "1.0-sp1", Less),
                ("1.0-sp1", "1.0-custom", Less),
                ("1.0-custom", "1.0.1", Less),
                ("2.9.10.8", "2.10.0", Less),
            ],
        );
    }

    #[test]
    fn rubygems_prereleases() {
        check(
            Ecosystem::Rubygems,
            &[
                ("1.0.a", "1.0", Less),
                ("1.0.0.pre1", "1.0.0", Less),
                ("1.0.0.a", "1.0.a", Equal),
                ("1.0.rc1", "1.0.rc2", Less),
                ("5.2.4.3", "5.2.10", Less),
                ("1.0", "1.0.0", Equal),
            ],
        );
    }

    #[test]
    fn package_keys_follow_each_registry() {
        let k = Ecosystem::package_key;
        assert_eq!(k(Ecosystem::Pypi, "Zope.Interface"), "zope-interface");
        assert_eq!(
            k(Ecosystem::Pypi, "typing__extensions"),
            "typing-extensions"
        );
        assert_eq!(k(Ecosystem::Crates, "Serde_JSON"), "serde-json");
        assert_eq!(
            k(Ecosystem::Go, "github.com/BurntSushi/toml"),
            "github.com/BurntSushi/toml"
        );
        assert_eq!(k(Ecosystem::Npm, "@Babel/Core"), "@babel/core");
    }
}
