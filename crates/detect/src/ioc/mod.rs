//! The indicator index: an observable is matched in a handful of hash
//! lookups whatever the number of indicators. Exact tables per kind;
//! domains by walking parent suffixes (so `cdn.x.com` matches `x.com`,
//! `notx.com` never does); URL prefixes grouped by host; CIDRs by masking
//! per prefix length.
//!
//! It is compact (about 130 bytes per indicator at a million, against
//! several hundred for owned `Indicator`s in a `HashMap`): each indicator
//! is a fixed-size entry, its value in one text arena, its feed and
//! campaign interned; the tables are open addressing over `u32` ids
//! ([`table`]), compared in the arena and hashed with a seed random per
//! build. Plain arrays are also what makes it saveable ([`snapshot`]).
//! Lookups hand out `IndicatorRef`s, never owned indicators.

mod snapshot;
mod table;

pub use snapshot::SnapshotError;
use table::{NONE, ValueTable};

use std::hash::BuildHasher;
use std::net::IpAddr;

use ipnet::IpNet;
use turncoat_core::indicator::Condition;
use turncoat_core::observable::{url_host, url_without_scheme};
use turncoat_core::{
    FastHashMap, Indicator, IndicatorKind, IndicatorRef, Observable, ObservableKind, Time,
};

/// Position of an indicator in the slice the index was built from.
pub type IndicatorId = usize;

/// One indicator matching one observable of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IocMatch {
    pub indicator: IndicatorId,
    /// Index into the observables passed to [`IndicatorIndex::match_event`].
    pub observable: usize,
}

/// What matching and findings need of one indicator, packed: its value
/// lives in the index's text arena and its feed and campaign names are
/// interned, so that a million indicators take tens of megabytes, not a
/// gigabyte of `Indicator`s and cloned map keys.
#[derive(Clone, Copy)]
struct Entry {
    value_start: u64,
    value_len: u32,
    source: u32,
    /// Interned campaign, or [`NONE`].
    campaign: u32,
    /// Index into the `AND` conditions, or [`NONE`].
    also: u32,
    /// `i64::MIN` when open.
    valid_from: i64,
    /// `i64::MAX` when open.
    valid_until: i64,
    kind: IndicatorKind,
    revoked: bool,
}

/// Names many indicators share (feeds, campaigns), stored once.
#[derive(Default)]
struct Interner {
    names: Vec<Box<str>>,
    ids: FastHashMap<Box<str>, u32>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    fn get(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(|n| &**n)
    }
}

/// The value hash every table of one index uses.
fn value_hash(seed: u64, value: &str) -> u64 {
    foldhash::fast::FixedState::with_seed(seed).hash_one(value)
}

/// An entry's value in the arena.
fn value_of<'a>(entries: &[Entry], text: &'a str, id: IndicatorId) -> &'a str {
    let e = &entries[id];
    let start = e.value_start as usize;
    &text[start..start + e.value_len as usize]
}

/// Every matchable indicator, indexed for constant-time lookups.
pub struct IndicatorIndex {
    entries: Vec<Entry>,
    /// Every indicator's value, back to back.
    text: String,
    names: Interner,
    conditions: Vec<Box<[Condition]>>,
    /// The seed of the value hash: random per index built, and saved with
    /// a snapshot, so that values cannot be chosen to collide.
    seed: u64,
    /// Hashes, IPs, file names and exact URLs, per observable kind.
    exact: [ValueTable; ObservableKind::ALL.len()],
    domains: ValueTable,
    /// URL prefixes by host: (prefix without scheme, required scheme, id).
    url_prefixes: FastHashMap<String, Vec<(String, Option<String>, IndicatorId)>>,
    /// CIDR networks by prefix length, keyed by the network address.
    cidrs: FastHashMap<(bool, u8), FastHashMap<IpAddr, Vec<IndicatorId>>>,
}

impl Default for IndicatorIndex {
    fn default() -> IndicatorIndex {
        IndicatorIndex {
            entries: Vec::new(),
            text: String::new(),
            names: Interner::default(),
            conditions: Vec::new(),
            seed: std::collections::hash_map::RandomState::new().hash_one(0u8),
            exact: Default::default(),
            domains: ValueTable::default(),
            url_prefixes: FastHashMap::default(),
            cidrs: FastHashMap::default(),
        }
    }
}

impl IndicatorIndex {
    /// Builds the index; revoked and non-matchable indicators are kept (so
    /// ids stay positions) but never match.
    pub fn new(indicators: impl IntoIterator<Item = Indicator>) -> IndicatorIndex {
        let mut index = IndicatorIndex::default();
        for ind in indicators {
            index.insert(ind.as_ref());
        }
        index
    }

    /// Makes room for `additional` more indicators, so that loading a
    /// known number does not grow (and rehash) the tables step by step.
    /// Each kind's share is unknown until loaded: the domain and SHA-256
    /// tables, the bulk of real feeds, get room for half each.
    pub fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
        self.text.reserve(additional * 32);
        for kind in [None, Some(ObservableKind::Sha256)] {
            let (table, rehash) = self.table_mut(kind);
            table.reserve(additional / 2, rehash);
        }
    }

    /// Adds one indicator and returns its id. Only what the reference
    /// borrows is copied, once, into the index.
    pub fn insert(&mut self, ind: IndicatorRef<'_>) -> IndicatorId {
        let id = self.entries.len();
        if ind.is_matchable() {
            match ind.kind {
                IndicatorKind::Domain => self.index_value(None, ind.value, id),
                IndicatorKind::UrlPrefix | IndicatorKind::Cidr => {
                    self.index_pattern(ind.kind, ind.value, id)
                }
                kind => {
                    let obs = kind
                        .observable_kind()
                        .expect("matchable kinds have an observable kind");
                    self.index_value(Some(obs), ind.value, id);
                }
            }
        }
        let value_start = self.text.len() as u64;
        self.text.push_str(ind.value);
        let also = if ind.also.is_empty() {
            NONE
        } else {
            self.conditions.push(ind.also.into());
            (self.conditions.len() - 1) as u32
        };
        let entry = Entry {
            value_start,
            value_len: ind.value.len() as u32,
            source: self.names.intern(ind.source),
            campaign: ind.campaign.map_or(NONE, |c| self.names.intern(c)),
            also,
            valid_from: ind.valid_from.map_or(i64::MIN, |t| t.0),
            valid_until: ind.valid_until.map_or(i64::MAX, |t| t.0),
            kind: ind.kind,
            revoked: ind.revoked,
        };
        self.entries.push(entry);
        id
    }

    /// Files a URL prefix by its host, a CIDR by its prefix length: the
    /// kinds matched by more than equality.
    fn index_pattern(&mut self, kind: IndicatorKind, value: &str, id: IndicatorId) {
        match kind {
            IndicatorKind::UrlPrefix => {
                let (scheme, rest) = match value.find("://") {
                    Some(i) => (Some(value[..i].to_owned()), &value[i + 3..]),
                    None => (None, value),
                };
                let host = url_host(rest).to_ascii_lowercase();
                self.url_prefixes
                    .entry(host)
                    .or_default()
                    .push((rest.to_owned(), scheme, id));
            }
            IndicatorKind::Cidr => {
                if let Ok(net) = value.parse::<IpNet>() {
                    let key = (net.addr().is_ipv6(), net.prefix_len());
                    self.cidrs
                        .entry(key)
                        .or_default()
                        .entry(net.network())
                        .or_default()
                        .push(id);
                }
            }
            _ => {}
        }
    }

    /// The exact table of `kind`, or the domain table for `None`, with the
    /// hash of any id already in it (what the table needs to grow).
    fn table_mut(
        &mut self,
        kind: Option<ObservableKind>,
    ) -> (&mut ValueTable, impl Fn(u32) -> u64 + '_) {
        let IndicatorIndex {
            entries,
            text,
            seed,
            exact,
            domains,
            ..
        } = self;
        let (entries, text, seed) = (&*entries, &*text, *seed);
        let table = match kind {
            Some(k) => &mut exact[k as usize],
            None => domains,
        };
        (table, move |i: u32| {
            value_hash(seed, value_of(entries, text, i as usize))
        })
    }

    /// Files `id` under `value` in the exact table of `kind`, or in the
    /// domain table for `None`.
    fn index_value(&mut self, kind: Option<ObservableKind>, value: &str, id: IndicatorId) {
        let hash = value_hash(self.seed, value);
        let (table, rehash) = self.table_mut(kind);
        table.insert(hash, id as u32, rehash);
    }

    /// Calls `hit` with every id filed under `value` in `table`.
    fn find(&self, table: &ValueTable, value: &str, hit: &mut impl FnMut(IndicatorId)) {
        for i in table.candidates(value_hash(self.seed, value)) {
            if self.value(i as usize) == value {
                hit(i as usize);
            }
        }
    }

    fn value(&self, id: IndicatorId) -> &str {
        value_of(&self.entries, &self.text, id)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The indicator with this id.
    pub fn get(&self, id: IndicatorId) -> IndicatorRef<'_> {
        let e = &self.entries[id];
        IndicatorRef {
            kind: e.kind,
            value: self.value(id),
            source: self.names.get(e.source).unwrap_or_default(),
            campaign: self.names.get(e.campaign),
            also: match e.also {
                NONE => &[],
                i => &self.conditions[i as usize],
            },
            valid_from: (e.valid_from != i64::MIN).then_some(Time(e.valid_from)),
            valid_until: (e.valid_until != i64::MAX).then_some(Time(e.valid_until)),
            revoked: e.revoked,
        }
    }

    /// The observable kinds some indicator of the index can match.
    pub fn observable_kinds(&self) -> Vec<ObservableKind> {
        let mut kinds: Vec<ObservableKind> = self
            .entries
            .iter()
            .filter(|e| !e.revoked)
            .filter_map(|e| e.kind.observable_kind())
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds
    }

    /// Bytes the index holds on the heap (its tables, arena and entries),
    /// for reporting how compact it is.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let table = ValueTable::heap_bytes;
        self.entries.capacity() * size_of::<Entry>()
            + self.text.capacity()
            + self
                .names
                .names
                .iter()
                .map(|n| 2 * n.len() + 2 * size_of::<Box<str>>() + 8)
                .sum::<usize>()
            + self
                .conditions
                .iter()
                .map(|c| c.len() * size_of::<Condition>() + 32)
                .sum::<usize>()
            + self.exact.iter().map(table).sum::<usize>()
            + table(&self.domains)
            + self
                .url_prefixes
                .iter()
                .map(|(h, v)| {
                    h.capacity() + v.iter().map(|(p, _, _)| p.capacity() + 56).sum::<usize>()
                })
                .sum::<usize>()
            + self.cidrs.values().map(|m| m.len() * 48).sum::<usize>()
    }

    /// Calls `hit` with every indicator whose primary value matches `obs`,
    /// ignoring validity and extra conditions.
    pub fn lookup(&self, obs: &Observable, mut hit: impl FnMut(IndicatorId)) {
        self.find(&self.exact[obs.kind as usize], &obs.value, &mut hit);
        match obs.kind {
            ObservableKind::Domain => {
                // x.cdn.evil.com → x.cdn.evil.com, cdn.evil.com, evil.com, com
                let mut name = obs.value.as_str();
                loop {
                    self.find(&self.domains, name, &mut hit);
                    match name.find('.') {
                        Some(dot) => name = &name[dot + 1..],
                        None => break,
                    }
                }
            }
            ObservableKind::Url if !self.url_prefixes.is_empty() => {
                let host = url_host(&obs.value);
                if let Some(list) = self.url_prefixes.get(host) {
                    let scheme = obs.value.split("://").next().unwrap_or("");
                    let rest = url_without_scheme(&obs.value);
                    for (prefix, need, id) in list {
                        if rest.starts_with(prefix.as_str())
                            && need.as_deref().is_none_or(|s| s == scheme)
                        {
                            hit(*id);
                        }
                    }
                }
            }
            ObservableKind::Ip if !self.cidrs.is_empty() => {
                if let Ok(ip) = obs.value.parse::<IpAddr>() {
                    for (&(v6, len), nets) in &self.cidrs {
                        if v6 != ip.is_ipv6() {
                            continue;
                        }
                        if let Ok(net) = IpNet::new(ip, len)
                            && let Some(ids) = nets.get(&net.network())
                        {
                            ids.iter().for_each(|&i| hit(i));
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Every (indicator, observable) match in one event's observables at
    /// `time`: validity windows, revocation and `AND` conditions applied.
    pub fn match_event(&self, observables: &[Observable], time: Time, out: &mut Vec<IocMatch>) {
        out.clear();
        for (oi, obs) in observables.iter().enumerate() {
            self.lookup(obs, |id| {
                let ind = self.get(id);
                if ind.valid_at(time) && ind.also.iter().all(|c| condition_holds(c, observables)) {
                    out.push(IocMatch {
                        indicator: id,
                        observable: oi,
                    });
                }
            });
        }
    }
}

/// Whether an `AND` condition holds on one of the event's observables,
/// with the same rules the index applies.
pub fn condition_holds(c: &Condition, observables: &[Observable]) -> bool {
    observables.iter().any(|o| {
        Some(o.kind) == c.kind.observable_kind() && value_matches(c.kind, &c.value, &o.value)
    })
}

/// One indicator value against one observable value of the same kind.
fn value_matches(kind: IndicatorKind, value: &str, observed: &str) -> bool {
    match kind {
        IndicatorKind::Domain => turncoat_core::observable::domain_within(observed, value),
        IndicatorKind::UrlPrefix => match value.find("://") {
            Some(_) => observed.starts_with(value),
            None => url_without_scheme(observed).starts_with(value),
        },
        IndicatorKind::Cidr => match (value.parse::<IpNet>(), observed.parse::<IpAddr>()) {
            (Ok(net), Ok(ip)) => net.contains(&ip),
            _ => false,
        },
        _ => value == observed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ind(kind: IndicatorKind, v: &str) -> Indicator {
        Indicator::new(kind, v, "test").unwrap()
    }

    fn obs(kind: ObservableKind, v: &str) -> Observable {
        Observable::new(kind, v).unwrap()
    }

    fn hits(index: &IndicatorIndex, o: &Observable) -> Vec<IndicatorId> {
        let mut v = Vec::new();
        index.lookup(o, |i| v.push(i));
        v.sort();
        v
    }

    #[test]
    fn domains_match_themselves_and_subdomains_only() {
        let index = IndicatorIndex::new(vec![
            ind(IndicatorKind::Domain, "x.com"),
            ind(IndicatorKind::Domain, "msstorageazure.com"),
        ]);
        assert_eq!(hits(&index, &obs(ObservableKind::Domain, "x.com")), vec![0]);
        assert_eq!(
            hits(&index, &obs(ObservableKind::Domain, "cdn.x.com")),
            vec![0]
        );
        assert_eq!(
            hits(&index, &obs(ObservableKind::Domain, "a.b.cdn.X.com.")),
            vec![0]
        );
        assert!(hits(&index, &obs(ObservableKind::Domain, "notx.com")).is_empty());
        assert!(hits(&index, &obs(ObservableKind::Domain, "x.com.evil.example")).is_empty());
        assert!(
            hits(
                &index,
                &obs(ObservableKind::Domain, "msstorageazure.com.au")
            )
            .is_empty()
        );
    }

    #[test]
    fn url_exact_and_prefix_with_and_without_scheme() {
        let index = IndicatorIndex::new(vec![
            ind(
                IndicatorKind::UrlPrefix,
                "raw.githubusercontent.com/IconStorages/images/main/",
            ),
            ind(IndicatorKind::UrlPrefix, "https://cdn.example.com/a/"),
            ind(IndicatorKind::Url, "http://exact.example.com/p?q=1"),
        ]);
        let u = |s: &str| obs(ObservableKind::Url, s);
        assert_eq!(
            hits(
                &index,
                &u("https://RAW.githubusercontent.com/IconStorages/images/main/icon3.ico")
            ),
            vec![0]
        );
        assert_eq!(
            hits(
                &index,
                &u("http://raw.githubusercontent.com/IconStorages/images/main/icon3.ico")
            ),
            vec![0]
        );
        assert!(
            hits(
                &index,
                &u("https://raw.githubusercontent.com/iconstorages/images/main/icon3.ico")
            )
            .is_empty(),
            "paths keep case"
        );
        assert!(
            hits(
                &index,
                &u("https://raw.githubusercontent.com/IconStorages/other/")
            )
            .is_empty()
        );
        assert_eq!(hits(&index, &u("https://cdn.example.com/a/b")), vec![1]);
        assert!(
            hits(&index, &u("http://cdn.example.com/a/b")).is_empty(),
            "a prefix with a scheme needs that scheme"
        );
        assert_eq!(
            hits(&index, &u("HTTP://Exact.Example.com/p?q=1#frag")),
            vec![2]
        );
        assert!(hits(&index, &u("http://exact.example.com/p?q=2")).is_empty());
    }

    #[test]
    fn ips_exact_and_cidr() {
        let index = IndicatorIndex::new(vec![
            ind(IndicatorKind::Ip, "203.0.113.7"),
            ind(IndicatorKind::Cidr, "198.51.100.0/24"),
            ind(IndicatorKind::Cidr, "2001:db8::/32"),
        ]);
        let ip = |s: &str| obs(ObservableKind::Ip, s);
        assert_eq!(hits(&index, &ip("203.0.113.7")), vec![0]);
        assert_eq!(hits(&index, &ip("198.51.100.200")), vec![1]);
        assert!(hits(&index, &ip("198.51.101.1")).is_empty());
        assert_eq!(hits(&index, &ip("2001:db8:1::5")), vec![2]);
    }

    #[test]
    fn validity_revocation_and_conditions() {
        let mut a = ind(IndicatorKind::Md5, &"a".repeat(32));
        a.also = vec![Condition {
            kind: IndicatorKind::Filename,
            value: "ffmpeg.dll".into(),
        }];
        let mut b = ind(IndicatorKind::Domain, "evil.com");
        b.valid_from = Some(Time(100));
        let mut c = ind(IndicatorKind::Domain, "revoked.com");
        c.revoked = true;
        let index = IndicatorIndex::new(vec![a, b, c]);
        let mut out = Vec::new();
        let md5 = obs(ObservableKind::Md5, &"A".repeat(32));
        index.match_event(std::slice::from_ref(&md5), Time(0), &mut out);
        assert!(out.is_empty(), "the AND condition is not met");
        index.match_event(
            &[md5, obs(ObservableKind::Filename, "C:\\x\\FFmpeg.dll")],
            Time(0),
            &mut out,
        );
        assert_eq!(
            out,
            vec![IocMatch {
                indicator: 0,
                observable: 0
            }]
        );
        index.match_event(
            &[obs(ObservableKind::Domain, "evil.com")],
            Time(99),
            &mut out,
        );
        assert_eq!(out.len(), 1, "before valid_from still matches");
        assert!(index.get(out[0].indicator).before_valid_from(Time(99)));
        index.match_event(
            &[obs(ObservableKind::Domain, "evil.com")],
            Time(100),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        index.match_event(
            &[obs(ObservableKind::Domain, "revoked.com")],
            Time(100),
            &mut out,
        );
        assert!(out.is_empty());
    }

    #[test]
    fn the_same_value_from_two_feeds_hits_both() {
        let mut a = ind(IndicatorKind::Sha256, &"c".repeat(64));
        a.campaign = Some("SmoothOperator".into());
        let mut b = a.clone();
        b.source = "other-feed".into();
        b.campaign = None;
        let index = IndicatorIndex::new(vec![a, b]);
        assert_eq!(
            hits(&index, &obs(ObservableKind::Sha256, &"c".repeat(64))),
            vec![0, 1]
        );
        assert_eq!(index.get(0).campaign, Some("SmoothOperator"));
        assert_eq!(index.get(1).source, "other-feed");
        assert_eq!(index.get(1).campaign, None);
    }

    /// The index holds values once, in an arena, with small fixed-size
    /// entries: a regression to whole `Indicator`s and cloned keys (about
    /// 500 bytes each) fails here.
    #[test]
    fn the_index_is_compact() {
        let n = 20_000;
        let index = IndicatorIndex::new((0..n).map(|i| {
            let mut d = ind(IndicatorKind::Domain, &format!("host-{i}.bad-example.com"));
            d.description = Some(format!("row {i} of a long feed"));
            d
        }));
        let per_indicator = index.heap_bytes() / n;
        assert!(per_indicator < 160, "{per_indicator} bytes per indicator");
        assert_eq!(
            hits(
                &index,
                &obs(ObservableKind::Domain, "a.host-7.bad-example.com")
            ),
            vec![7]
        );
    }
}
