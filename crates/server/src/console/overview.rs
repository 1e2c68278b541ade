//! `/`: the MSSP's morning view over the viewer's tenants: open alerts
//! by severity and kind per tenant, exposure to the stored advisories,
//! the newest campaigns (the same detection in several tenants) with how
//! many dismissed it, and ingest freshness per log source, so a sensor
//! gone silent shows.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;
use turncoat_core::{AlertKind, Severity};
use turncoat_store::{AlertCount, CampaignAlert, Feed};

use super::chart::{StackedBar, stacked_bars};
use super::exposure::AdvisoryExposure;
use super::{Menu, Viewer, endpoint_link, failed, link, page};
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
            let exposure = super::exposure::read(store, &scope, None)?;
            let feeds = store.feeds(&scope)?;
            Ok(Overview {
                counts,
                campaigns,
                exposure,
                feeds,
            })
        })
        .await;
    match read {
        Ok(overview) => render(&viewer, &overview).into_response(),
        Err(problem) => failed(&viewer, problem),
    }
}

/// What the overview shows, read in one go.
struct Overview {
    counts: Vec<AlertCount>,
    campaigns: Vec<CampaignAlert>,
    exposure: Vec<AdvisoryExposure>,
    feeds: Vec<Feed>,
}

/// A feed at least this far behind its tenant's newest event may be
/// called silent.
const SILENT_AFTER: i64 = 60 * 60 * 1_000_000;
/// Records a feed must have sent in its last hours to be judged silent.
const MIN_CADENCE_EVENTS: u64 = 10;
/// Silent feeds listed.
const SILENT_SHOWN: usize = 20;

fn render(viewer: &Viewer, overview: &Overview) -> maud::Markup {
    let Overview {
        counts,
        campaigns,
        exposure,
        feeds,
    } = overview;
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
                                td {
                                    a href={ "/alerts?tenant=" (tenant) } { (tenant) }
                                    " " a.muted href=(link("/report", &[("tenant", tenant)])) { "report" }
                                    " " a.muted href=(link("/report", &[("tenant", tenant), ("format", "pdf")])) { "pdf" }
                                }
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
            h2 { "Exposure to advisories" }
            @if exposure.is_empty() {
                p.muted { "No advisory is stored." }
            } @else {
                div.table-wrap { table {
                    thead { tr { th { "Advisory" } th.num { "Endpoints exposed now" } th.num { "Ever" } th.num { "Tenants" } } }
                    tbody {
                        @for a in exposure {
                            tr {
                                td { a href=(link("/exposure", &[("advisory", &a.id)])) { code { (a.id) } } " " (a.title) }
                                td.num { @if a.endpoints_now() > 0 { span.badge.bad { (a.endpoints_now()) } } @else { "0" } }
                                td.num { (a.endpoints()) }
                                td.num { (a.tenants()) }
                            }
                        }
                    }
                } }
            }
        }
        (freshness(feeds))
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

/// Ingest freshness: per tenant and log source, how many endpoints send
/// it, the newest event, the last arrival and the rate; then the feeds
/// that fell silent (an hour or more behind their tenant's newest event).
fn freshness(feeds: &[Feed]) -> maud::Markup {
    struct Source {
        endpoints: usize,
        last_event: turncoat_core::Time,
        last_ingested: turncoat_core::Time,
        per_minute: f64,
    }
    let mut sources: BTreeMap<(&str, &str), Source> = BTreeMap::new();
    let mut newest: BTreeMap<&str, turncoat_core::Time> = BTreeMap::new();
    for f in feeds {
        let s = sources
            .entry((f.tenant.as_str(), f.logsource.as_str()))
            .or_insert(Source {
                endpoints: 0,
                last_event: f.last_event,
                last_ingested: f.last_ingested,
                per_minute: 0.0,
            });
        s.endpoints += 1;
        s.last_event = s.last_event.max(f.last_event);
        s.last_ingested = s.last_ingested.max(f.last_ingested);
        s.per_minute += f.per_minute;
        let n = newest.entry(f.tenant.as_str()).or_insert(f.last_event);
        *n = (*n).max(f.last_event);
    }
    // Behind its tenant's newest event by an hour, and by ten of its own
    // usual gaps: a sparse log source is not silent for being sparse. A
    // feed that sent only a few records has no cadence to miss (Zeek's
    // loaded_scripts or known_hosts write once at start or once a day).
    let mut silent: Vec<&Feed> = feeds
        .iter()
        .filter(|f| f.recent_events >= MIN_CADENCE_EVENTS)
        .filter(|f| {
            let usual_gap = 60e6 / f.per_minute.max(1e-9);
            let allowed = (SILENT_AFTER as f64).max(10.0 * usual_gap);
            ((newest[f.tenant.as_str()].0 - f.last_event.0) as f64) > allowed
        })
        .collect();
    silent.sort_by_key(|f| f.last_event);
    html! {
        section.panel {
            h2 { "Ingest freshness" }
            @if sources.is_empty() {
                p.muted { "Nothing ingested yet." }
            } @else {
                div.table-wrap { table {
                    thead { tr {
                        th { "Tenant" } th { "Log source" } th.num { "Endpoints" }
                        th { "Newest event" } th.hide-narrow { "Last arrival" } th.num { "Events/min" }
                    } }
                    tbody {
                        @for ((tenant, logsource), s) in &sources {
                            tr {
                                td { (tenant) } td { code { (logsource) } } td.num { (s.endpoints) }
                                td { (s.last_event) } td.hide-narrow { (s.last_ingested) }
                                td.num { (format!("{:.1}", s.per_minute)) }
                            }
                        }
                    }
                } }
                @if silent.is_empty() {
                    p.muted { "No sensor has fallen silent." }
                } @else {
                    h2 { span.badge.bad { (silent.len()) } " silent feeds" }
                    div.table-wrap { table {
                        thead { tr { th { "Tenant" } th { "Endpoint" } th { "Log source" } th { "Last event" } } }
                        tbody {
                            @for f in silent.iter().take(SILENT_SHOWN) {
                                tr {
                                    td { (f.tenant) }
                                    td { a href=(endpoint_link(f.tenant.as_str(), &f.endpoint)) { (f.endpoint) } }
                                    td { code { (f.logsource) } } td { (f.last_event) }
                                }
                            }
                        }
                    } }
                }
                p.muted { "Events/min: over the hour or two before each feed's newest event. Silent: a feed that sent ten or more records in its last hours, now an hour, and ten of its usual gaps, behind its tenant's newest event." }
            }
        }
    }
}
