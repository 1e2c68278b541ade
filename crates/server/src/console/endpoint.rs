//! `/endpoint`: one endpoint of a tenant: its software ledger (what ran
//! which version, from when to when), its alerts, and its events around
//! a moment (an alert's, by default the newest archived hour).

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use turncoat_core::{Event, Time};
use turncoat_store::{Alert, AlertFilter, LedgerEntry, Projection, Scope, Store, Tenant};

use super::chart::strip;
use super::{Menu, Viewer, failed, link, not_found, page};
use crate::AppState;

/// Events shown around a moment, nearest first kept.
pub(super) const EVENTS_SHOWN: usize = 200;
/// How far either side of the moment events are read.
const AROUND: i64 = 30 * 60 * 1_000_000;
/// Alerts listed.
const ALERTS_SHOWN: usize = 100;

#[derive(Deserialize)]
pub(super) struct EndpointQuery {
    tenant: String,
    name: String,
    /// The moment to show events around (RFC 3339).
    at: Option<String>,
}

/// The endpoint's events within half an hour of `at`, in time order, at
/// most [`EVENTS_SHOWN`] (the nearest to `at` kept).
pub(super) fn events_around(
    store: &dyn Store,
    tenant: &Tenant,
    endpoint: &str,
    at: Time,
) -> Result<Vec<Event>, crate::Problem> {
    let (from, to) = (Time(at.0 - AROUND), Time(at.0 + AROUND));
    let keep = |h: &turncoat_store::RecordHead<'_>| {
        h.host.eq_ignore_ascii_case(endpoint) && h.time >= from && h.time <= to
    };
    let what = Projection {
        records: &keep,
        ..Projection::ALL
    };
    let mut events = Vec::new();
    store.scan_hours(tenant, from, to, what, &mut |e| events.push(e))?;
    if events.len() > EVENTS_SHOWN {
        events.sort_by_key(|e| (e.time.0 - at.0).abs());
        events.truncate(EVENTS_SHOWN);
    }
    events.sort_by_key(|e| e.time);
    Ok(events)
}

pub(super) async fn endpoint(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<EndpointQuery>,
) -> Response {
    let Some(tenant) = viewer.scope().get(&query.tenant).cloned() else {
        return not_found(&viewer, "endpoint");
    };
    let at = match query
        .at
        .as_deref()
        .filter(|a| !a.is_empty())
        .map(Time::parse)
    {
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => return failed(&viewer, crate::Problem::bad_request(e.to_string())),
        None => None,
    };
    let name = query.name.clone();
    let read = state
        .read(move |store| {
            let ledger: Vec<LedgerEntry> = store
                .ledger(&tenant, None)?
                .into_iter()
                .filter(|e| e.endpoint.eq_ignore_ascii_case(&name))
                .collect();
            let filter = AlertFilter {
                endpoint: Some(name.clone()),
                limit: Some(ALERTS_SHOWN),
                ..Default::default()
            };
            let alerts = store.alerts(&Scope::tenant(&tenant), &filter)?;
            // Around the newest alert, or the newest archived hour.
            let at = match at {
                Some(t) => Some(t),
                None => alerts
                    .iter()
                    .map(|a| a.evidence.time)
                    .max()
                    .or(store.archive_span(&tenant)?.map(|(_, end)| Time(end.0 - 1))),
            };
            let events = match at {
                Some(at) => events_around(store, &tenant, &name, at)?,
                None => Vec::new(),
            };
            Ok((ledger, alerts, at, events))
        })
        .await;
    let (ledger, alerts, at, events) = match read {
        Ok(found) => found,
        Err(p) => return failed(&viewer, p),
    };
    if ledger.is_empty() && alerts.is_empty() && events.is_empty() {
        return not_found(&viewer, "endpoint");
    }
    let body = html! {
        p.muted { "Tenant " (query.tenant) }
        section.panel {
            h2 { "Software ledger" }
            @if ledger.is_empty() {
                p.muted { "No inventory of this endpoint is stored." }
            } @else {
                div.table-wrap { table {
                    thead { tr { th { "Product" } th { "Version" } th.hide-narrow { "Vendor" } th { "Installed" } th { "Removed" } th.hide-narrow { "From" } } }
                    tbody {
                        @for e in &ledger {
                            tr {
                                td { (e.name) } td { (e.version) }
                                td.hide-narrow { (e.vendor.as_deref().unwrap_or("")) }
                                td { (e.installed) }
                                td { @match e.removed { Some(t) => (t), None => span.muted { "installed" } } }
                                td.hide-narrow { (e.source) }
                            }
                        }
                    }
                } }
            }
        }
        section.panel {
            h2 { "Alerts" }
            (alert_list(&alerts))
        }
        section.panel {
            h2 { "Events around " @if let Some(at) = at { (at) } }
            (event_timeline(&events, at, &query.tenant, &query.name))
        }
    };
    page(&query.name, &viewer, Menu::Alerts, body).into_response()
}

fn alert_list(alerts: &[Alert]) -> Markup {
    html! {
        @if alerts.is_empty() {
            p.muted { "None." }
        } @else {
            div.table-wrap { table {
                thead { tr { th { "Severity" } th { "Title" } th { "Status" } th { "Last seen" } } }
                tbody {
                    @for a in alerts {
                        tr {
                            td { span class={ "sev sev-" (a.severity) } { (a.severity) } }
                            td { a href={ "/alerts/" (a.id) } { (a.title) } }
                            td { (a.status) } td { (a.last_seen) }
                        }
                    }
                }
            } }
        }
    }
}

/// The endpoint's events around `at`: a strip of when, then a table of
/// what, the one at `at` marked; a link to the endpoint's page.
pub(super) fn event_timeline(
    events: &[Event],
    at: Option<Time>,
    tenant: &str,
    endpoint: &str,
) -> Markup {
    let Some(at) = at else {
        return html! { p.muted { "No events of this endpoint are archived." } };
    };
    html! {
        @if events.is_empty() {
            p.muted { "No events of this endpoint within half an hour." }
        } @else {
            (strip(&format!("Events of {endpoint} within half an hour of {at}"),
                &events.iter().map(|e| e.time).collect::<Vec<_>>(),
                Time(at.0 - AROUND), Time(at.0 + AROUND)))
            div.table-wrap { table.events {
                thead { tr { th { "Time" } th { "Log" } th { "What" } } }
                tbody {
                    @for e in events {
                        tr aria-current=[(e.time == at).then_some("true")] {
                            td { (e.time) }
                            td { (logsource(e)) }
                            td { code { (summary(e)) } }
                        }
                    }
                }
            } }
            @if events.len() == EVENTS_SHOWN {
                p.muted { "The " (EVENTS_SHOWN) " events nearest to that moment." }
            }
        }
        p { a href=(link("/endpoint", &[("tenant", tenant), ("name", endpoint), ("at", &at.to_rfc3339())])) { "Endpoint " (endpoint) ": software and events" } }
    }
}

fn logsource(e: &Event) -> String {
    [
        e.logsource.product.as_deref(),
        e.logsource.category.as_deref(),
        e.logsource.service.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("/")
}

/// An event's first fields, `name=value`, cut to a line.
fn summary(e: &Event) -> String {
    const LONGEST: usize = 240;
    let mut text = e
        .fields
        .iter()
        .take(8)
        .map(|(k, v)| format!("{k}={}", serde_json::to_string(v).unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(" ");
    if text.len() > LONGEST {
        let cut = (0..=LONGEST)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    text
}
