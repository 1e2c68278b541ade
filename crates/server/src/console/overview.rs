//! `/`: the MSSP's morning view over the viewer's tenants: open alerts
//! by severity and kind per tenant, and the newest campaigns (the same
//! detection in several tenants) with how many dismissed it.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;
use turncoat_core::{AlertKind, Severity};
use turncoat_store::{AlertCount, CampaignAlert, Store};

use super::chart::{StackedBar, stacked_bars};
use super::{Menu, Viewer, failed, page};
use crate::AppState;

/// Campaigns shown, newest first.
const CAMPAIGNS_SHOWN: usize = 10;

pub(super) async fn overview(State(state): State<AppState>, viewer: Viewer) -> Response {
    let scope = viewer.scope().clone();
    let read = state
        .read(move |store| {
            let counts = store.alert_counts(&scope)?;
            let mut campaigns = store.campaigns(&scope)?;
            campaigns.sort_by_key(|c| std::cmp::Reverse(c.last_seen));
            campaigns.truncate(CAMPAIGNS_SHOWN);
            Ok((counts, campaigns))
        })
        .await;
    match read {
        Ok((counts, campaigns)) => render(&viewer, &counts, &campaigns).into_response(),
        Err(problem) => failed(&viewer, problem),
    }
}

fn render(viewer: &Viewer, counts: &[AlertCount], campaigns: &[CampaignAlert]) -> maud::Markup {
    // Open alerts (not dismissed or resolved) per tenant, by severity
    // and by kind; every tenant of the viewer has a row, quiet ones too.
    let mut by_severity: BTreeMap<String, BTreeMap<Severity, u64>> = BTreeMap::new();
    let mut by_kind: BTreeMap<String, BTreeMap<AlertKind, u64>> = BTreeMap::new();
    for tenant in viewer.scope().members() {
        by_severity.entry(tenant.name().to_string()).or_default();
        by_kind.entry(tenant.name().to_string()).or_default();
    }
    for c in counts.iter().filter(|c| c.status.is_open()) {
        *by_severity
            .entry(c.tenant.to_string())
            .or_default()
            .entry(c.severity)
            .or_default() += c.count;
        *by_kind
            .entry(c.tenant.to_string())
            .or_default()
            .entry(c.kind)
            .or_default() += c.count;
    }
    let severities: Vec<Severity> = Severity::ALL.iter().rev().copied().collect();
    let kinds: Vec<AlertKind> = AlertKind::ALL
        .iter()
        .copied()
        .filter(|k| by_kind.values().any(|m| m.contains_key(k)))
        .collect();
    let bars: Vec<StackedBar> = by_severity
        .iter()
        .map(|(tenant, m)| StackedBar {
            label: tenant.clone(),
            counts: severities
                .iter()
                .map(|s| (*s, m.get(s).copied().unwrap_or(0)))
                .collect(),
        })
        .collect();
    let body = html! {
        section.panel {
            h2 { "Open alerts per tenant" }
            (stacked_bars("Open alerts per tenant, by severity", &bars))
            div.table-wrap {
                table {
                    thead { tr {
                        th { "Tenant" }
                        @for s in &severities { th.num { span class={ "sev sev-" (s) } { (s) } } }
                        @for k in &kinds { th.num.hide-narrow { (k) } }
                    } }
                    tbody {
                        @for (tenant, m) in &by_severity {
                            tr {
                                td { a href={ "/alerts?tenant=" (tenant) } { (tenant) } }
                                @for s in &severities { td.num { (m.get(s).copied().unwrap_or(0)) } }
                                @for k in &kinds {
                                    td.num.hide-narrow { (by_kind[tenant].get(k).copied().unwrap_or(0)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.panel {
            h2 { "Newest campaigns" }
            @if campaigns.is_empty() {
                p.muted { "No detection is shared by several of your tenants." }
            } @else {
                div.table-wrap { table {
                    thead { tr {
                        th { "Campaign" } th { "Kind" } th.num { "Tenants" }
                        th.num { "Dismissed in" } th { "Last seen" }
                    } }
                    tbody {
                        @for c in campaigns {
                            tr {
                                td { a href={ "/alerts?kind=campaign&q=" (c.source) } { (c.title) } }
                                td { (c.kind) }
                                td.num { (c.tenants.len()) @if c.beyond_scope { " and others" } }
                                td.num { (c.dismissed_tenants) }
                                td { (c.last_seen) }
                            }
                        }
                    }
                } }
            }
        }
    };
    page("Overview", viewer, Menu::Overview, body)
}
