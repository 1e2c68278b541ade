//! `/drift`: new behaviour per application version across the viewer's
//! tenants (a module, child process, domain or address no earlier
//! version showed), most widespread first.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use turncoat_store::Scope;

use super::{Menu, Viewer, endpoint_link, failed, not_found, page, tenant_select};
use crate::AppState;

/// Rows shown, most widespread first.
const SHOWN: usize = 200;

#[derive(Deserialize)]
pub(super) struct DriftQuery {
    tenant: Option<String>,
}

pub(super) async fn drift(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<DriftQuery>,
) -> Response {
    let scope = match query.tenant.as_deref().filter(|t| !t.is_empty()) {
        Some(name) => match viewer.scope().get(name) {
            Some(t) => Scope::tenant(t),
            None => return not_found(&viewer, "tenant"),
        },
        None => viewer.scope().clone(),
    };
    let rows = match state
        .read(move |store| Ok(turncoat_engine::drift::analyze(store, scope.members(), 1)?))
        .await
    {
        Ok(rows) => rows,
        Err(p) => return failed(&viewer, p),
    };
    let body = html! {
        form.filters method="get" action="/drift" {
            (tenant_select(&viewer, query.tenant.as_deref()))
            button type="submit" { "Show" }
        }
        section.panel {
            @if rows.is_empty() {
                p.muted { "No application version behaves unlike its earlier versions." }
            } @else {
                p { (rows.len()) " new behaviours." @if rows.len() > SHOWN { " The " (SHOWN) " most widespread are listed." } }
                div.table-wrap { table {
                    thead { tr {
                        th { "Application" } th { "Version" } th { "New behaviour" } th.num { "Tenants" }
                        th { "Endpoints" } th.hide-narrow { "First seen" } th.hide-narrow { "Compared with" }
                    } }
                    tbody {
                        @for r in rows.iter().take(SHOWN) {
                            tr {
                                td { (r.app) } td { (r.version) } td { (r.description) }
                                td.num { (r.tenants.len()) }
                                td {
                                    @for (i, (tenant, endpoint)) in r.endpoints.iter().take(5).enumerate() {
                                        @if i > 0 { ", " }
                                        a href=(endpoint_link(tenant, endpoint)) { (endpoint) }
                                    }
                                    @if r.endpoints.len() > 5 { " and " (r.endpoints.len() - 5) " more" }
                                }
                                td.hide-narrow { (r.first_seen) }
                                td.hide-narrow { (r.baseline_versions.join(", ")) }
                            }
                        }
                    }
                } }
            }
        }
    };
    page("Drift", &viewer, Menu::Drift, body).into_response()
}
