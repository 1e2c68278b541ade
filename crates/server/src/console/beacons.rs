//! `/beacons`: one tenant's ranked beacon pairs, each with its four
//! sub-scores (timestamps, data sizes, duration, histogram) drawn.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use turncoat_engine::beacons::BeaconRow;

use super::chart::{histogram, score_bars, strip};
use super::{Menu, Viewer, failed, link, not_found, page};
use crate::AppState;

/// Pairs shown, best ranked first.
const SHOWN: usize = 100;

#[derive(Deserialize)]
pub(super) struct BeaconQuery {
    tenant: Option<String>,
}

pub(super) async fn beacons(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<BeaconQuery>,
) -> Response {
    let members = viewer.scope().members();
    let chosen = match query.tenant.as_deref().filter(|t| !t.is_empty()) {
        Some(name) => match viewer.scope().get(name) {
            Some(t) => Some(t.clone()),
            None => return not_found(&viewer, "tenant"),
        },
        None if members.len() == 1 => Some(members[0].clone()),
        None => None,
    };
    let rows = match &chosen {
        Some(tenant) => {
            let tenant = tenant.clone();
            let analysed = state
                .read(move |store| {
                    Ok(turncoat_engine::beacons::analyze_stored(
                        store, &tenant, None, 0.5, false,
                    )?)
                })
                .await;
            match analysed {
                Ok(report) => report.beacons.into_iter().take(SHOWN).collect(),
                Err(p) => return failed(&viewer, p),
            }
        }
        None => Vec::<BeaconRow>::new(),
    };
    let body = html! {
        form.filters method="get" action="/beacons" {
            label { "Tenant"
                select name="tenant" {
                    @for t in members {
                        option value=(t.name()) selected[chosen.as_ref() == Some(t)] { (t.name()) }
                    }
                }
            }
            button type="submit" { "Analyse" }
        }
        @if chosen.is_none() {
            p.muted { "Choose a tenant: beacons are one tenant's." }
        } @else if rows.is_empty() {
            p.muted { "No pair scores 0.5 or more." }
        } @else {
            section.panel { div.table-wrap { table {
                thead { tr {
                    th { "Source" } th { "Destination" } th.num { "Rank" } th.num { "Connections" }
                    th.num.hide-narrow { "Median interval" } th { "Sub-scores" }
                } }
                tbody {
                    @for b in &rows {
                        tr {
                            td { (b.src) }
                            td {
                                @let dst = b.fqdn.as_deref().unwrap_or(&b.dst);
                                @let tenant = chosen.as_ref().map(|t| t.name().as_str()).unwrap_or_default();
                                a href=(link("/beacons/pair", &[("tenant", tenant), ("src", &b.src), ("dst", dst)])) { (dst) }
                                @if b.fqdn.is_some() { br; span.muted { (b.dst) } }
                            }
                            td.num { (format!("{:.3}", b.rank_score)) }
                            td.num { (b.count) }
                            td.num.hide-narrow { (format!("{:.0} s", b.median_interval_s)) }
                            td { (score_bars(&format!("{} to {}", b.src, b.dst), &[
                                ("timing", b.ts_score), ("size", b.ds_score),
                                ("duration", b.dur_score), ("histogram", b.hist_score),
                            ])) }
                        }
                    }
                }
            } } }
        }
    };
    page("Beacons", &viewer, Menu::Beacons, body).into_response()
}

#[derive(Deserialize)]
pub(super) struct PairQuery {
    tenant: String,
    src: String,
    dst: String,
}

/// Bins of the inter-arrival histogram up to twice the median interval;
/// one more holds the longer gaps.
const BINS: usize = 12;

/// `/beacons/pair`: one pair's connections, as an inter-arrival
/// histogram (a beacon is one tall bar, or a few near it when jittered)
/// and a timeline (gaps show when it slept).
pub(super) async fn pair(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<PairQuery>,
) -> Response {
    let Some(tenant) = viewer.scope().get(&query.tenant).cloned() else {
        return not_found(&viewer, "tenant");
    };
    let (src, dst) = (query.src.clone(), query.dst.clone());
    let times = match state
        .read(move |store| {
            Ok(turncoat_engine::beacons::pair_connections(
                store, &tenant, &src, &dst,
            )?)
        })
        .await
    {
        Ok(t) => t,
        Err(p) => return failed(&viewer, p),
    };
    let title = format!("{} to {}", query.src, query.dst);
    if times.is_empty() {
        return not_found(&viewer, "pair");
    }
    // Records less than a second apart are one contact seen twice (by the
    // network sensor and the endpoint's agent): counted, not binned.
    let all_gaps = times.windows(2).map(|w| (w[1].0 - w[0].0) as f64 / 1e6);
    let (gaps, same): (Vec<f64>, Vec<f64>) = all_gaps.partition(|g| *g >= 1.0);
    let mut sorted = gaps.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    let bins = interval_bins(&gaps, median);
    let (first, last) = (times[0], times[times.len() - 1]);
    let body = html! {
        p { a href=(link("/beacons", &[("tenant", &query.tenant)])) { "← all pairs of " (query.tenant) } }
        section.panel {
            table { tbody {
                tr { th { "Connections" } td { (times.len()) } }
                tr { th { "First" } td { (first) } }
                tr { th { "Last" } td { (last) } }
                tr { th { "Median interval" } td { (interval(median)) } }
                tr { th { "Seen twice (under a second apart)" } td { (same.len()) } }
            } }
        }
        section.panel {
            h2 { "Inter-arrival times" }
            (histogram(&format!("Intervals between connections from {title}"), &bins))
        }
        section.panel {
            h2 { "Connections over time" }
            (strip(&format!("Connections from {title}"), &times, first, last))
        }
    };
    page(&title, &viewer, Menu::Beacons, body).into_response()
}

/// Seconds as an interval an analyst reads: `45 s`, `12 min`, `3.5 h`.
fn interval(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 7200.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

/// Gaps counted in [`BINS`] equal bins from 0 to twice the median, and
/// one for longer gaps; each labelled by where it starts.
fn interval_bins(gaps: &[f64], median: f64) -> Vec<(String, u64)> {
    let width = (2.0 * median / BINS as f64).max(1.0);
    let mut counts = vec![0u64; BINS + 1];
    for g in gaps {
        let i = ((g / width) as usize).min(BINS);
        counts[i] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            let label = if i == BINS {
                format!(">{}", interval(width * BINS as f64))
            } else {
                interval(width * i as f64)
            };
            (label, n)
        })
        .collect()
}
