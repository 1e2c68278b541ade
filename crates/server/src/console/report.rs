//! The incident report for one tenant: what happened (a timeline), who
//! ran an affected version and when, contacts with the attacker's
//! infrastructure (those from before the intel existed apart), beacons,
//! what is blocked, the open actions and the analysts' decisions with
//! their reasons. One self-contained HTML page (the stylesheet inline,
//! SVG charts, no script), for the customer; `turncoat report` writes it
//! too.

use std::collections::BTreeMap;

use maud::{DOCTYPE, Markup, PreEscaped, html};
use turncoat_core::{AlertKind, AlertStatus, Time};
use turncoat_store::{Alert, AlertAction, AlertFilter, Scope, Store, Tenant};

use super::chart::{strip, timeline};
use super::exposure::{read as exposure_of, timeline_rows, versions};

/// Rows listed per section at most.
const LISTED: usize = 500;

/// What a report covers.
pub struct ReportQuery {
    pub tenant: Tenant,
    /// One advisory's exposure only.
    pub advisory: Option<String>,
    /// Alerts last seen from this time on.
    pub since: Option<Time>,
}

/// The report as HTML.
pub fn report_html(
    store: &dyn Store,
    query: &ReportQuery,
    now: Time,
) -> Result<String, crate::Problem> {
    let scope = Scope::tenant(&query.tenant);
    let mut alerts: Vec<Alert> = store
        .alerts(&scope, &AlertFilter::default())?
        .into_iter()
        .filter(|a| query.since.is_none_or(|s| a.last_seen >= s))
        .collect();
    alerts.sort_by_key(|a| (a.first_seen, a.id));
    let exposure = exposure_of(store, &scope, query.advisory.as_deref())?;
    let selection = turncoat_engine::export::Selection {
        tenant: Some(&query.tenant),
        seen: true,
        ..Default::default()
    };
    let blocked = turncoat_engine::export::blocklist(store, &selection, now)?;
    let mut decisions = Vec::new();
    for a in alerts.iter().take(LISTED) {
        for change in store.alert_history(&scope, a.id)? {
            if matches!(change.action, AlertAction::Status | AlertAction::Resurfaced) {
                decisions.push((a, change));
            }
        }
    }
    decisions.sort_by_key(|(_, c)| c.time);
    let name = query.tenant.name().to_string();
    let css = super::Assets::get("console.css")
        .map(|f| String::from_utf8_lossy(&f.data).into_owned())
        .unwrap_or_default();
    let by_kind = |kind: AlertKind| alerts.iter().filter(move |a| a.kind == kind);
    let (before, after): (Vec<&Alert>, Vec<&Alert>) =
        by_kind(AlertKind::Ioc).partition(|a| a.evidence.before_valid_from);
    let open: Vec<&Alert> = alerts.iter().filter(|a| a.status.is_open()).collect();
    let mut counts: BTreeMap<(AlertKind, bool), usize> = BTreeMap::new();
    for a in &alerts {
        *counts.entry((a.kind, a.status.is_open())).or_default() += 1;
    }
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Incident report: " (name) }
                style { (PreEscaped(css)) }
            }
            body { main {
                h1 { "Incident report: " (name) }
                p.muted {
                    "Generated " (now)
                    @if let Some(s) = query.since { ", alerts last seen since " (s) }
                    @if let Some(a) = &query.advisory { ", advisory " (a) }
                    "."
                }
                section.panel {
                    h2 { "Summary" }
                    div.table-wrap { table {
                        thead { tr { th { "Kind" } th.num { "Open" } th.num { "Closed" } } }
                        tbody {
                            @for kind in AlertKind::ALL {
                                @let (o, c) = (counts.get(&(kind, true)).copied().unwrap_or(0), counts.get(&(kind, false)).copied().unwrap_or(0));
                                @if o + c > 0 { tr { td { (kind) } td.num { (o) } td.num { (c) } } }
                            }
                        }
                    } }
                }
                section.panel {
                    h2 { "What happened" }
                    @if let (Some(first), Some(last)) = (alerts.first(), alerts.iter().map(|a| a.first_seen).max()) {
                        (strip(&format!("When {name}'s alerts were first seen"),
                            &alerts.iter().map(|a| a.first_seen).collect::<Vec<_>>(), first.first_seen, last))
                    }
                    (alert_table(&alerts))
                }
                section.panel {
                    h2 { "Exposure" }
                    @for a in &exposure {
                        h2 { code { (a.id) } " " (a.title) }
                        @if a.rows.is_empty() {
                            p.muted { "No endpoint ran an affected version." }
                        } @else {
                            (timeline(&format!("Who ran an affected version of {}, and when", a.id), &timeline_rows(a, |r| r.endpoint.clone()), &versions(a)))
                            div.table-wrap { table {
                                thead { tr { th { "Endpoint" } th { "Version" } th { "From" } th { "To" } } }
                                tbody { @for r in &a.rows { tr {
                                    td { (r.endpoint) } td { (r.product) " " (r.version) } td { (r.from) }
                                    td { @match r.to { Some(t) => (t), None => "still installed" } }
                                } } }
                            } }
                        }
                    }
                }
                section.panel {
                    h2 { "Contacts with the attacker's infrastructure" }
                    h2 { "Before the intel existed (found by the retro-hunt)" }
                    (alert_table(&before))
                    h2 { "After" }
                    (alert_table(&after))
                }
                section.panel {
                    h2 { "Beacons" }
                    (alert_table(&by_kind(AlertKind::Beacon).collect::<Vec<_>>()))
                }
                section.panel {
                    h2 { "Blocked" }
                    p { (blocked.entries.len()) " indicators seen in " (name) "'s telemetry are on its blocklist (RPZ, Suricata, STIX exports and TAXII), zone serial " (blocked.serial) "." }
                    @if !blocked.entries.is_empty() {
                        div.table-wrap { table {
                            thead { tr { th { "Kind" } th { "Value" } th { "On the list since" } th { "Named by" } } }
                            tbody { @for e in blocked.entries.iter().take(LISTED) { tr {
                                td { (e.kind) } td { code { (e.value) } } td { (e.added) } td { (e.sources.join(", ")) }
                            } } }
                        } }
                    }
                }
                section.panel {
                    h2 { "Open actions" }
                    (alert_table(&open))
                }
                section.panel {
                    h2 { "Decisions" }
                    @if decisions.is_empty() {
                        p.muted { "No alert has been triaged yet." }
                    } @else {
                        div.table-wrap { table {
                            thead { tr { th { "When" } th { "Who" } th { "Alert" } th { "Decision" } th { "Why" } } }
                            tbody { @for (a, c) in &decisions { tr {
                                td { (c.time) } td { (c.actor) } td { (a.title) }
                                td { (c.action.as_str()) @if let Some(v) = &c.value { ": " (v) } }
                                td { (c.note.as_deref().unwrap_or("")) }
                            } } }
                        } }
                    }
                }
            } }
        }
    };
    Ok(page.into_string())
}

fn alert_table<A: std::borrow::Borrow<Alert>>(alerts: &[A]) -> Markup {
    html! {
        @if alerts.is_empty() {
            p.muted { "None." }
        } @else {
            div.table-wrap { table {
                thead { tr { th { "First seen" } th { "Severity" } th { "Endpoint" } th { "What" } th { "Status" } } }
                tbody {
                    @for a in alerts.iter().take(LISTED).map(|a| a.borrow()) {
                        tr {
                            td { (a.first_seen) }
                            td { span class={ "sev sev-" (a.severity) } { (a.severity) } }
                            td { (a.endpoint) } td { (a.title) }
                            td { (a.status) @if a.status == AlertStatus::FalsePositive { span.muted { " (dismissed)" } } }
                        }
                    }
                }
            } }
            @if alerts.len() > LISTED { p.muted { "The first " (LISTED) " of " (alerts.len()) "." } }
        }
    }
}

#[derive(serde::Deserialize)]
pub(super) struct ReportParams {
    tenant: String,
    advisory: Option<String>,
    since: Option<String>,
}

/// `/report?tenant=`: the report of one of the viewer's tenants.
pub(super) async fn report(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    viewer: super::Viewer,
    axum::extract::Query(params): axum::extract::Query<ReportParams>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(tenant) = viewer.scope().get(&params.tenant).cloned() else {
        return super::not_found(&viewer, "tenant");
    };
    let since =
        match crate::api::time_param("since", params.since.as_deref().filter(|s| !s.is_empty())) {
            Ok(s) => s,
            Err(p) => return super::failed(&viewer, p),
        };
    let query = ReportQuery {
        tenant,
        advisory: params.advisory.filter(|a| !a.is_empty()),
        since,
    };
    match state
        .read(move |store| report_html(store, &query, Time::now()))
        .await
    {
        Ok(page) => axum::response::Html(page).into_response(),
        Err(p) => super::failed(&viewer, p),
    }
}
