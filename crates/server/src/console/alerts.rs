//! `/alerts`: the queue, with the API's filters and paging; and
//! `/alerts/{id}`: one alert's evidence, history and triage.

use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use turncoat_core::{AlertId, AlertKind, AlertStatus, Severity};
use turncoat_engine::alerts::AlertRow;

use super::endpoint::{event_timeline, events_around};
use super::{Menu, Viewer, endpoint_link, failed, not_found, page};
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
/// The queue with `query`'s filters, at `cursor` when given.
fn queue_link(query: &AlertQuery, cursor: Option<&str>) -> String {
    let mut pairs = filter_fields(query);
    pairs.extend(cursor.map(|c| ("cursor", c.to_owned())));
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
            label { "Sort"
                select name="sort" {
                    option value="severity" selected[query.sort.as_deref() != Some("newest")] { "severity" }
                    option value="newest" selected[query.sort.as_deref() == Some("newest")] { "newest" }
                }
            }
            button type="submit" { "Filter" }
        }
        section.panel {
            @if rows.is_empty() {
                p.muted { "No alert matches." }
            } @else {
                form #bulk method="post" action="/alerts/bulk" {
                    input type="hidden" name="csrf" value=(viewer.0.csrf);
                    // The filter's status apart from the status to set.
                    @for (name, value) in filter_fields(query) {
                        input type="hidden" name=(if name == "status" { "filter_status" } else { name }) value=(value);
                    }
                    @if viewer.can_triage() {
                        div.filters {
                            label { "Set the selected (or, with none ticked, every alert the filters select) to"
                                select name="status" {
                                    @for s in MANUAL { option value=(s.as_str()) { (s.as_str()) } }
                                }
                            }
                            label { "Reason" input name="reason" size="30"; }
                            button type="submit" { "Preview" }
                        }
                    }
                    div.table-wrap { table #queue {
                        thead { tr {
                            @if viewer.can_triage() { th { span.hide-narrow { "Select" } } }
                            th { "Severity" } th { "Title" } th { "Tenant" } th { "Endpoint" }
                            th { "Kind" } th { "Status" } th.hide-narrow { "Last seen" } th.num { "Events" }
                        } }
                        tbody {
                            @for row in rows { (queue_row(row, viewer.can_triage())) }
                        }
                    } }
                }
                p.muted.hide-narrow {
                    "Keys: " kbd { "j" } "/" kbd { "k" } " move, " kbd { "o" } " open, "
                    kbd { "x" } " select, " kbd { "/" } " search."
                }
                script src="/assets/queue.js" defer {}
            }
            @if let Some(cursor) = next {
                nav.pager { a rel="next" href=(queue_link(query, Some(cursor))) { "Next page →" } }
            }
        }
    };
    page("Alerts", viewer, Menu::Alerts, body)
}

/// The statuses an analyst sets by hand.
const MANUAL: [AlertStatus; 5] = [
    AlertStatus::New,
    AlertStatus::Acknowledged,
    AlertStatus::Investigating,
    AlertStatus::Resolved,
    AlertStatus::FalsePositive,
];

/// The queue's filters as form fields, to carry them through a form.
fn filter_fields(query: &AlertQuery) -> Vec<(&'static str, String)> {
    [
        ("tenant", &query.tenant),
        ("kind", &query.kind),
        ("status", &query.status),
        ("severity", &query.severity),
        ("since", &query.since),
        ("q", &query.q),
        ("assignee", &query.assignee),
        ("sort", &query.sort),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
    .collect()
}

fn queue_row(row: &AlertRow, selectable: bool) -> Markup {
    match row {
        AlertRow::Alert(a) => html! {
            tr {
                @if selectable { td { input type="checkbox" name="id" value=(a.id) aria-label={ "select alert " (a.id) }; } }
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
                @if selectable { td {} }
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

/// The alert a detail page's form acts on, once the form is known to
/// come from a page of the session.
fn form_target(viewer: &Viewer, csrf: &str, id: &str) -> Result<AlertId, Response> {
    viewer.sent_token(csrf)?;
    alert_id(id).ok_or_else(|| not_found(viewer, "alert"))
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
        .read(move |store| {
            let detail = alert_detail(store, &scope, id.get())?;
            // A campaign shared beyond the viewer's tenants comes cut to
            // their own members: the others are never named or counted.
            let campaign = match detail.alert.campaign_alert {
                Some(c) => store.campaigns(&scope)?.into_iter().find(|k| k.id == c),
                None => None,
            };
            // The event that raised it, and the endpoint's around it.
            let a = &detail.alert;
            let tenant = scope.get(a.tenant.as_str()).cloned();
            let archived = match (&tenant, a.event) {
                (Some(t), Some(at)) => Some(store.read_event(t, at)?),
                _ => None,
            };
            let around = match &tenant {
                Some(t) => events_around(store, t, &a.endpoint, a.evidence.time)?,
                None => Vec::new(),
            };
            Ok((detail, campaign, archived, around))
        })
        .await
    {
        Ok((detail, campaign, archived, around)) => render_detail(
            &viewer,
            &detail,
            campaign.as_ref(),
            archived.as_ref(),
            &around,
        )
        .into_response(),
        Err(p) if p.status == axum::http::StatusCode::NOT_FOUND => not_found(&viewer, "alert"),
        Err(p) => failed(&viewer, p),
    }
}

fn render_detail(
    viewer: &Viewer,
    detail: &AlertDetail,
    campaign: Option<&turncoat_store::CampaignAlert>,
    archived: Option<&turncoat_core::Event>,
    around: &[turncoat_core::Event],
) -> Markup {
    let a = &detail.alert;
    let evidence = serde_json::to_string_pretty(&a.evidence).unwrap_or_default();
    let csrf = &viewer.0.csrf;
    let manual: Vec<&str> = MANUAL.iter().map(|s| s.as_str()).collect();
    let body = html! {
        section.panel {
            table { tbody {
                tr { th { "Severity" } td { span class={ "sev sev-" (a.severity) } { (a.severity) } } }
                tr { th { "Status" } td { (a.status) @if let Some(r) = &a.status_reason { span.muted { " — " (r) } } } }
                tr { th { "Tenant" } td { (a.tenant) } }
                tr { th { "Endpoint" } td { a href=(endpoint_link(a.tenant.as_str(), &a.endpoint)) { (a.endpoint) } } }
                tr { th { "Kind" } td { (a.kind) } }
                tr { th { "Source" } td { code { (a.source) } } }
                tr { th { "First seen" } td { (a.first_seen) } }
                tr { th { "Last seen" } td { (a.last_seen) } }
                tr { th { "Events" } td { (a.count) } }
                tr { th { "Assignee" } td { (a.assignee.as_deref().unwrap_or("nobody")) } }
            } }
        }
        @if let Some(c) = campaign {
            section.panel {
                h2 { "Related" }
                @if c.beyond_scope {
                    p { "Part of a campaign: the same detection is also seen in tenants other than yours." }
                } @else {
                    p {
                        "Also seen in " strong { (c.tenants.len() - 1) } " other tenant"
                        @if c.tenants.len() != 2 { "s" }
                        " (" (c.tenants.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ")) "), dismissed in "
                        strong { (c.dismissed_tenants) } "."
                    }
                }
            }
        }
        section.panel {
            h2 { "Evidence" }
            pre.evidence { (evidence) }
            @if let Some(event) = archived {
                h2 { "The event that raised it" }
                pre.evidence { (serde_json::to_string_pretty(event).unwrap_or_default()) }
            }
        }
        section.panel {
            h2 { "The endpoint around it" }
            (event_timeline(around, Some(a.evidence.time), a.tenant.as_str(), &a.endpoint))
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
                form method="post" action={ "/alerts/" (a.id) "/assign" } {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "Assign to (empty: nobody)" input name="assignee" value=[a.assignee.as_deref()] size="16"; }
                    button type="submit" { "Assign" }
                }
            }
            section.panel {
                h2 { "Suppress" }
                p.muted { "Closes this source's " (a.kind) " alerts as suppressed, now and as they come, until it expires; then they resurface." }
                form method="post" action={ "/alerts/" (a.id) "/suppress" } {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "Scope"
                        select name="scope" {
                            option value="endpoint" { "this endpoint (" (a.endpoint) ")" }
                            option value="tenant" { "all of " (a.tenant) }
                        }
                    }
                    label { "Reason" input name="reason" size="30" required; }
                    label { "Expires after days (empty: never)" input name="days" type="number" min="1" max="3650" size="5"; }
                    button type="submit" { "Suppress" }
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
    let id = match form_target(&viewer, &sent.csrf, &id) {
        Ok(id) => id,
        Err(refused) => return refused,
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
pub(super) struct AssignForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    assignee: String,
}

/// `POST /alerts/{id}/assign` from the detail page's form.
pub(super) async fn assign(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(sent): Form<AssignForm>,
) -> Response {
    let id = match form_target(&viewer, &sent.csrf, &id) {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    let assignee = Some(sent.assignee.trim().to_owned()).filter(|a| !a.is_empty());
    change(&state, &viewer, id, move |store, scope, actor| {
        turncoat_engine::triage::assign(store, scope, id, assignee.as_deref(), actor)
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct SuppressForm {
    #[serde(default)]
    csrf: String,
    scope: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    days: String,
}

/// `POST /alerts/{id}/suppress`: a suppression of the alert's source and
/// kind, on its endpoint or its whole tenant.
pub(super) async fn suppress(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(sent): Form<SuppressForm>,
) -> Response {
    let id = match form_target(&viewer, &sent.csrf, &id) {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    let expires = match sent.days.trim() {
        "" => None,
        days => match days.parse::<i64>() {
            Ok(d) if (1..=3650).contains(&d) => Some(turncoat_core::Time(
                turncoat_core::Time::now().0 + d * 86_400_000_000,
            )),
            _ => {
                return failed(
                    &viewer,
                    crate::Problem::bad_request("expiry: a number of days from 1 to 3650"),
                );
            }
        },
    };
    let whole_tenant = sent.scope == "tenant";
    change(&state, &viewer, id, move |store, scope, actor| {
        let Some(alert) = store.alert(scope, id)? else {
            return Err(turncoat_store::StoreError::OutOfScope(format!("alert {id}")).into());
        };
        let Some(tenant) = scope.get(alert.tenant.as_str()) else {
            return Err(turncoat_store::StoreError::OutOfScope(format!("alert {id}")).into());
        };
        let new = turncoat_store::NewSuppression {
            kind: Some(alert.kind),
            source: &alert.source,
            endpoint: (!whole_tenant).then_some(alert.endpoint.as_str()),
            reason: &sent.reason,
            expires,
        };
        turncoat_engine::triage::suppress(store, Some(tenant), &new, actor).map(drop)
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
    let id = match form_target(&viewer, &sent.csrf, &id) {
        Ok(id) => id,
        Err(refused) => return refused,
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

/// `POST /alerts/bulk`: the ticked alerts, or with none ticked every
/// alert the queue's filters select, set to one status. The first post
/// answers a preview with the count; the change needs its confirmation.
pub(super) async fn bulk(State(state): State<AppState>, viewer: Viewer, body: String) -> Response {
    let fields: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    if let Err(refused) = viewer.sent_token(&field("csrf").unwrap_or_default()) {
        return refused;
    }
    if !viewer.can_triage() {
        return failed(
            &viewer,
            crate::Problem::new(
                axum::http::StatusCode::FORBIDDEN,
                "triage needs an analyst or an admin",
            ),
        );
    }
    let ids: Vec<AlertId> = fields
        .iter()
        .filter(|(k, _)| k == "id")
        .filter_map(|(_, v)| alert_id(v))
        .collect();
    let query = AlertQuery {
        tenant: field("tenant"),
        kind: field("kind"),
        status: field("filter_status"),
        severity: field("severity"),
        since: field("since"),
        q: field("q"),
        assignee: field("assignee"),
        sort: field("sort"),
        limit: None,
        cursor: None,
    };
    let status: AlertStatus = match field("status").unwrap_or_default().parse() {
        Ok(s) => s,
        Err(e) => return failed(&viewer, crate::Problem::bad_request(format!("{e}"))),
    };
    let reason = field("reason");
    if let Err(e) = turncoat_engine::triage::checked(status, reason.as_deref()) {
        return failed(&viewer, crate::Problem::from(e));
    }
    let confirm = field("confirm").is_some();
    let selection = match query.selection() {
        Ok(s) => s,
        Err(p) => return failed(&viewer, p),
    };
    let scope = match crate::api::narrowed(viewer.scope(), query.tenant.as_deref()) {
        Ok(s) => s,
        Err(_) => return not_found(&viewer, "tenant"),
    };
    let actor = viewer.0.principal.actor.clone();
    let by_ids = !ids.is_empty();
    let done = state
        .write(move |store| {
            if !by_ids {
                let outcome = turncoat_engine::triage::bulk_status(
                    store,
                    &scope,
                    &selection,
                    status,
                    reason.as_deref(),
                    !confirm,
                    &actor,
                )?;
                return Ok((outcome.matched, outcome.changed.len()));
            }
            // Every ticked alert must be the viewer's before any changes.
            for id in &ids {
                if store.alert(&scope, *id)?.is_none() {
                    return Err(crate::Problem::new(
                        axum::http::StatusCode::NOT_FOUND,
                        "no such alert in your tenants",
                    ));
                }
            }
            if !confirm {
                return Ok((ids.len(), 0));
            }
            for id in &ids {
                turncoat_engine::triage::set_status(
                    store,
                    &scope,
                    *id,
                    status,
                    reason.as_deref(),
                    &actor,
                )?;
            }
            Ok((ids.len(), ids.len()))
        })
        .await;
    let (matched, changed) = match done {
        Ok(counts) => counts,
        Err(p) if p.status == axum::http::StatusCode::NOT_FOUND => {
            return not_found(&viewer, "alert");
        }
        Err(p) => return failed(&viewer, p),
    };
    let back = queue_link(&query, None);
    let what = if by_ids {
        "ticked"
    } else {
        "selected by the filters"
    };
    let body = if confirm {
        html! {
            section.panel role="status" {
                p { (changed) " of the " (matched) " alerts " (what) " changed to " strong { (status) } "." }
                p { a href=(back) { "Back to the queue" } }
            }
        }
    } else {
        html! {
            section.panel {
                p { "This sets " strong #preview-count { (matched) } " alerts " (what) " to " strong { (status) } "." }
                form method="post" action="/alerts/bulk" {
                    @for (k, v) in &fields {
                        @if k != "confirm" { input type="hidden" name=(k) value=(v); }
                    }
                    input type="hidden" name="confirm" value="1";
                    button type="submit" { "Confirm" }
                    " " a href=(back) { "Cancel" }
                }
            }
        }
    };
    page("Bulk triage", &viewer, Menu::Alerts, body).into_response()
}
