//! `/alerts`: the queue, with the API's filters and paging; and
//! `/alerts/{id}`: one alert's evidence, history and triage.

use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use turncoat_core::{AlertId, AlertKind, AlertStatus, Severity};
use turncoat_engine::alerts::AlertRow;

use super::{Menu, Viewer, failed, not_found, page};
use crate::AppState;
use crate::api::{AlertDetail, AlertQuery, alert_detail, alert_page};

/// The queue's filters from the query string; a form's empty fields
/// mean no filter.
fn queue_query(raw: Option<&str>) -> Result<AlertQuery, String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|e| e.to_string())?;
    let kept: Vec<(String, String)> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    let text = serde_urlencoded::to_string(&kept).map_err(|e| e.to_string())?;
    serde_urlencoded::from_str(&text).map_err(|e| e.to_string())
}

/// The query string of `query` with `cursor` set: the next page's link.
fn next_link(query: &AlertQuery, cursor: &str) -> String {
    let fields = [
        ("tenant", &query.tenant),
        ("kind", &query.kind),
        ("status", &query.status),
        ("severity", &query.severity),
        ("since", &query.since),
        ("q", &query.q),
        ("assignee", &query.assignee),
    ];
    let mut pairs: Vec<(&str, &str)> = fields
        .iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v)))
        .collect();
    pairs.push(("cursor", cursor));
    format!(
        "/alerts?{}",
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

pub(super) async fn queue(
    State(state): State<AppState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = match queue_query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return failed(&viewer, crate::Problem::bad_request(e)),
    };
    match alert_page(&state, viewer.scope(), &query).await {
        Ok(page_of) => {
            render_queue(&viewer, &query, &page_of.items, page_of.next.as_deref()).into_response()
        }
        Err(problem) => failed(&viewer, problem),
    }
}

fn select(name: &str, label: &str, options: &[&str], chosen: Option<&str>) -> Markup {
    html! {
        label { (label)
            select name=(name) {
                option value="" { "any" }
                @for o in options {
                    option value=(o) selected[chosen == Some(*o)] { (o) }
                }
            }
        }
    }
}

fn render_queue(
    viewer: &Viewer,
    query: &AlertQuery,
    rows: &[AlertRow],
    next: Option<&str>,
) -> Markup {
    let tenants: Vec<String> = viewer
        .scope()
        .members()
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    let tenant_names: Vec<&str> = tenants.iter().map(String::as_str).collect();
    let kinds: Vec<&str> = AlertKind::ALL.iter().map(|k| k.as_str()).collect();
    let statuses: Vec<&str> = AlertStatus::ALL.iter().map(|s| s.as_str()).collect();
    let severities: Vec<&str> = Severity::ALL.iter().rev().map(|s| s.as_str()).collect();
    let body = html! {
        form.filters method="get" action="/alerts" {
            @if tenant_names.len() > 1 {
                (select("tenant", "Tenant", &tenant_names, query.tenant.as_deref()))
            }
            (select("kind", "Kind", &kinds, query.kind.as_deref()))
            (select("status", "Status", &statuses, query.status.as_deref()))
            (select("severity", "Severity at least", &severities, query.severity.as_deref()))
            label { "Assignee" input name="assignee" value=[query.assignee.as_deref()] size="10"; }
            label { "Text" input name="q" type="search" value=[query.q.as_deref()] placeholder="title, source, endpoint"; }
            button type="submit" { "Filter" }
        }
        section.panel {
            @if rows.is_empty() {
                p.muted { "No alert matches." }
            } @else {
                div.table-wrap { table {
                    thead { tr {
                        th { "Severity" } th { "Title" } th { "Tenant" } th { "Endpoint" }
                        th { "Kind" } th { "Status" } th.hide-narrow { "Last seen" } th.num { "Events" }
                    } }
                    tbody {
                        @for row in rows { (queue_row(row)) }
                    }
                } }
            }
            @if let Some(cursor) = next {
                nav.pager { a rel="next" href=(next_link(query, cursor)) { "Next page →" } }
            }
        }
    };
    page("Alerts", viewer, Menu::Alerts, body)
}

fn queue_row(row: &AlertRow) -> Markup {
    match row {
        AlertRow::Alert(a) => html! {
            tr {
                td { span class={ "sev sev-" (a.severity) } { (a.severity) } }
                td { a href={ "/alerts/" (a.id) } { (a.title) } }
                td { (a.tenant) }
                td { (a.endpoint) }
                td { (a.kind) }
                td { (a.status) }
                td.hide-narrow { (a.last_seen) }
                td.num { (a.count) }
            }
        },
        AlertRow::Campaign(c) => html! {
            tr {
                td { span class={ "sev sev-" (c.severity) } { (c.severity) } }
                td { (c.title) }
                td { (c.tenants.len()) " tenants" }
                td.muted { "—" }
                td { "campaign" }
                td { (c.status) }
                td.hide-narrow { (c.last_seen) }
                td.num { (c.count) }
            }
        },
    }
}

fn alert_id(text: &str) -> Option<AlertId> {
    text.parse().ok()
}

pub(super) async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = alert_id(&id) else {
        return not_found(&viewer, "alert");
    };
    let scope = viewer.scope().clone();
    match state
        .read(move |store| alert_detail(store, &scope, id.get()))
        .await
    {
        Ok(detail) => render_detail(&viewer, &detail).into_response(),
        Err(p) if p.status == axum::http::StatusCode::NOT_FOUND => not_found(&viewer, "alert"),
        Err(p) => failed(&viewer, p),
    }
}

fn render_detail(viewer: &Viewer, detail: &AlertDetail) -> Markup {
    let a = &detail.alert;
    let evidence = serde_json::to_string_pretty(&a.evidence).unwrap_or_default();
    let csrf = &viewer.0.csrf;
    let manual: Vec<&str> = [
        AlertStatus::New,
        AlertStatus::Acknowledged,
        AlertStatus::Investigating,
        AlertStatus::Resolved,
        AlertStatus::FalsePositive,
    ]
    .iter()
    .map(|s| s.as_str())
    .collect();
    let body = html! {
        section.panel {
            table { tbody {
                tr { th { "Severity" } td { span class={ "sev sev-" (a.severity) } { (a.severity) } } }
                tr { th { "Status" } td { (a.status) @if let Some(r) = &a.status_reason { span.muted { " — " (r) } } } }
                tr { th { "Tenant" } td { (a.tenant) } }
                tr { th { "Endpoint" } td { (a.endpoint) } }
                tr { th { "Kind" } td { (a.kind) } }
                tr { th { "Source" } td { code { (a.source) } } }
                tr { th { "First seen" } td { (a.first_seen) } }
                tr { th { "Last seen" } td { (a.last_seen) } }
                tr { th { "Events" } td { (a.count) } }
                tr { th { "Assignee" } td { (a.assignee.as_deref().unwrap_or("nobody")) } }
            } }
        }
        section.panel {
            h2 { "Evidence" }
            pre.evidence { (evidence) }
        }
        @if viewer.can_triage() {
            section.panel {
                h2 { "Triage" }
                form method="post" action={ "/alerts/" (a.id) "/status" } {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "Status"
                        select name="status" {
                            @for s in &manual { option value=(s) selected[*s == a.status.as_str()] { (s) } }
                        }
                    }
                    label { "Reason (needed to dismiss)" input name="reason" size="40"; }
                    button type="submit" { "Set status" }
                }
                form method="post" action={ "/alerts/" (a.id) "/comment" } {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "Comment" textarea name="text" rows="2" cols="60" required {} }
                    button type="submit" { "Add comment" }
                }
            }
        }
        section.panel {
            h2 { "History" }
            @if detail.history.is_empty() {
                p.muted { "Nobody has touched it yet." }
            } @else {
                table {
                    thead { tr { th { "When" } th { "Who" } th { "What" } th { "Value" } th { "Note" } } }
                    tbody {
                        @for h in &detail.history {
                            tr {
                                td { (h.time) } td { (h.actor) } td { (h.action.as_str()) }
                                td { (h.value.as_deref().unwrap_or("")) } td { (h.note.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
    };
    page(&a.title, viewer, Menu::Alerts, body)
}

#[derive(Deserialize)]
pub(super) struct StatusForm {
    #[serde(default)]
    csrf: String,
    status: String,
    #[serde(default)]
    reason: String,
}

/// `POST /alerts/{id}/status` from the detail page's form.
pub(super) async fn set_status(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(sent): Form<StatusForm>,
) -> Response {
    if let Err(refused) = viewer.sent_token(&sent.csrf) {
        return refused;
    }
    let Some(id) = alert_id(&id) else {
        return not_found(&viewer, "alert");
    };
    let status: AlertStatus = match sent.status.parse() {
        Ok(s) => s,
        Err(e) => return failed(&viewer, crate::Problem::bad_request(format!("{e}"))),
    };
    let reason = Some(sent.reason).filter(|r| !r.trim().is_empty());
    change(&state, &viewer, id, move |store, scope, actor| {
        turncoat_engine::triage::set_status(store, scope, id, status, reason.as_deref(), actor)
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct CommentForm {
    #[serde(default)]
    csrf: String,
    text: String,
}

/// `POST /alerts/{id}/comment` from the detail page's form.
pub(super) async fn comment(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(sent): Form<CommentForm>,
) -> Response {
    if let Err(refused) = viewer.sent_token(&sent.csrf) {
        return refused;
    }
    let Some(id) = alert_id(&id) else {
        return not_found(&viewer, "alert");
    };
    change(&state, &viewer, id, move |store, scope, actor| {
        turncoat_engine::triage::comment(store, scope, id, &sent.text, actor)
    })
    .await
}

/// Runs a triage change as the viewer and goes back to the alert (the
/// post-redirect-get pattern: a reload does not send it twice).
async fn change<F>(state: &AppState, viewer: &Viewer, id: AlertId, f: F) -> Response
where
    F: FnOnce(
            &mut dyn turncoat_store::Store,
            &turncoat_store::Scope,
            &turncoat_core::Actor,
        ) -> Result<(), turncoat_engine::EngineError>
        + Send
        + 'static,
{
    if !viewer.can_triage() {
        return failed(
            viewer,
            crate::Problem::new(
                axum::http::StatusCode::FORBIDDEN,
                "triage needs an analyst or an admin",
            ),
        );
    }
    let (scope, actor) = (viewer.scope().clone(), viewer.0.principal.actor.clone());
    let done = state
        .write(move |store| f(store, &scope, &actor).map_err(crate::Problem::from))
        .await;
    match done {
        Ok(()) => Redirect::to(&format!("/alerts/{id}")).into_response(),
        Err(p) if p.status == axum::http::StatusCode::NOT_FOUND => not_found(viewer, "alert"),
        Err(p) => failed(viewer, p),
    }
}
