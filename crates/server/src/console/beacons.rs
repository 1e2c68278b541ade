//! `/beacons`: one tenant's ranked beacon pairs, each with its four
//! sub-scores (timestamps, data sizes, duration, histogram) drawn.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use turncoat_engine::beacons::BeaconRow;

use super::chart::score_bars;
use super::{Menu, Viewer, failed, not_found, page};
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
                            td { (b.fqdn.as_deref().unwrap_or(&b.dst)) @if b.fqdn.is_some() { br; span.muted { (b.dst) } } }
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
