//! `/audit`: who changed what and when, newest first. Entries bound to
//! no tenant (users, intel, rules) may name any tenant: admins only.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::{Menu, Viewer, failed, link, page};
use crate::AppState;

/// Entries per page.
const PER_PAGE: usize = 100;

#[derive(Deserialize)]
pub(super) struct AuditQuery {
    /// Entries older than this id (the previous page's last).
    before: Option<i64>,
}

pub(super) async fn audit(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<AuditQuery>,
) -> Response {
    let scope = viewer.scope().clone();
    let admin = viewer.is_admin();
    let before = query.before.unwrap_or(i64::MAX);
    let entries = match state
        .read(move |store| Ok(store.audit_log(&scope, usize::MAX)?))
        .await
    {
        Ok(entries) => entries,
        Err(p) => return failed(&viewer, p),
    };
    let shown: Vec<_> = entries
        .into_iter()
        .filter(|e| (admin || e.tenant.is_some()) && e.id < before)
        .take(PER_PAGE + 1)
        .collect();
    let more = shown.len() > PER_PAGE;
    let shown = &shown[..shown.len().min(PER_PAGE)];
    let body = html! {
        section.panel {
            @if shown.is_empty() {
                p.muted { "Nothing recorded." }
            } @else {
                div.table-wrap { table {
                    thead { tr { th { "When" } th { "Who" } th { "Tenant" } th { "What" } th { "Detail" } } }
                    tbody {
                        @for e in shown {
                            tr {
                                td { (e.time) } td { (e.actor) }
                                td { @match &e.tenant { Some(t) => (t), None => span.muted { "all" } } }
                                td { (e.action) } td { (e.detail) }
                            }
                        }
                    }
                } }
            }
            @if more && let Some(last) = shown.last() {
                nav.pager { a rel="next" href=(link("/audit", &[("before", &last.id.to_string())])) { "Older →" } }
            }
        }
    };
    page("Audit log", &viewer, Menu::Audit, body).into_response()
}
