//! The indicator index.

use std::net::IpAddr;

use ipnet::IpNet;
use turncoat_core::indicator::Condition;
use turncoat_core::observable::{url_host, url_without_scheme};
use turncoat_core::{FastHashMap, Indicator, IndicatorKind, Observable, ObservableKind, Time};

/// Position of an indicator in the slice the index was built from.
pub type IndicatorId = usize;

/// One indicator matching one observable of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IocMatch {
    pub indicator: IndicatorId,
    /// Index into the observables passed to [`IndicatorIndex::match_event`].
    pub observable: usize,
}

/// Every matchable indicator, indexed for constant-time lookups.
#[derive(Default)]
pub struct IndicatorIndex {
    indicators: Vec<Indicator>,
    /// Hashes, IPs, file names and exact URLs, per observable kind.
    exact: [FastHashMap<String, Vec<IndicatorId>>; ObservableKind::ALL.len()],
    domains: FastHashMap<String, Vec<IndicatorId>>,
    /// URL prefixes by host: (prefix without scheme, required scheme, id).
    url_prefixes: FastHashMap<String, Vec<(String, Option<String>, IndicatorId)>>,
    /// CIDR networks by prefix length, keyed by the network address.
    cidrs: FastHashMap<(bool, u8), FastHashMap<IpAddr, Vec<IndicatorId>>>,
}

impl IndicatorIndex {
    /// Builds the index; revoked and non-matchable indicators are kept (so
    /// ids stay positions) but never match.
    pub fn new(indicators: Vec<Indicator>) -> IndicatorIndex {
        let mut index = IndicatorIndex {
            indicators: Vec::new(),
            ..Default::default()
        };
        for ind in indicators {
            index.insert(ind);
        }
        index
    }

    /// Adds one indicator and returns its id.
    pub fn insert(&mut self, ind: Indicator) -> IndicatorId {
        let id = self.indicators.len();
        if ind.is_matchable() {
            match ind.kind {
                IndicatorKind::Domain => {
                    self.domains.entry(ind.value.clone()).or_default().push(id)
                }
                IndicatorKind::UrlPrefix => {
                    let (scheme, rest) = match ind.value.find("://") {
                        Some(i) => (Some(ind.value[..i].to_owned()), &ind.value[i + 3..]),
                        None => (None, ind.value.as_str()),
                    };
                    let host = url_host(rest).to_ascii_lowercase();
                    self.url_prefixes
                        .entry(host)
                        .or_default()
                        .push((rest.to_owned(), scheme, id));
                }
                IndicatorKind::Cidr => {
                    if let Ok(net) = ind.value.parse::<IpNet>() {
                        let key = (net.addr().is_ipv6(), net.prefix_len());
                        self.cidrs
                            .entry(key)
                            .or_default()
                            .entry(net.network())
                            .or_default()
                            .push(id);
                    }
                }
                kind => {
                    let obs = kind
                        .observable_kind()
                        .expect("matchable kinds have an observable kind");
                    self.exact[obs as usize]
                        .entry(ind.value.clone())
                        .or_default()
                        .push(id);
                }
            }
        }
        self.indicators.push(ind);
        id
    }

    pub fn len(&self) -> usize {
        self.indicators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indicators.is_empty()
    }

    pub fn get(&self, id: IndicatorId) -> &Indicator {
        &self.indicators[id]
    }

    pub fn indicators(&self) -> &[Indicator] {
        &self.indicators
    }

    /// Calls `hit` with every indicator whose primary value matches `obs`,
    /// ignoring validity and extra conditions.
    pub fn lookup(&self, obs: &Observable, mut hit: impl FnMut(IndicatorId)) {
        if let Some(ids) = self.exact[obs.kind as usize].get(obs.value.as_str()) {
            ids.iter().for_each(|&i| hit(i));
        }
        match obs.kind {
            ObservableKind::Domain => {
                // x.cdn.evil.com → x.cdn.evil.com, cdn.evil.com, evil.com, com
                let mut name = obs.value.as_str();
                loop {
                    if let Some(ids) = self.domains.get(name) {
                        ids.iter().for_each(|&i| hit(i));
                    }
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
                let ind = &self.indicators[id];
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
        assert!(out.is_empty(), "before valid_from");
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
}
