//! `/exposure`: per advisory, who ran an affected version and from when
//! to when, as a timeline and a table; and the overview's summary.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use turncoat_engine::ExposureRow;
use turncoat_store::Store;

use super::chart::{Span, TimelineRow, timeline};
use super::{Menu, Viewer, endpoint_link, failed, not_found, page, tenant_select};
use crate::AppState;

/// Endpoints drawn per advisory's timeline; the table lists more.
const DRAWN: usize = 40;
/// Rows listed per advisory.
const LISTED: usize = 500;

#[derive(Deserialize)]
pub(super) struct ExposureQuery {
    advisory: Option<String>,
    tenant: Option<String>,
}

/// One advisory's exposure in the viewer's tenants.
pub(super) struct AdvisoryExposure {
    pub id: String,
    pub title: String,
    pub rows: Vec<ExposureRow>,
}

impl AdvisoryExposure {
    /// Endpoints that ever ran an affected version.
    pub fn endpoints(&self) -> usize {
        self.rows
            .iter()
            .map(|r| (&r.tenant, &r.endpoint))
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// Endpoints that run one still.
    pub fn endpoints_now(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.to.is_none())
            .map(|r| (&r.tenant, &r.endpoint))
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// Tenants with an endpoint that ever ran one.
    pub fn tenants(&self) -> usize {
        self.rows
            .iter()
            .map(|r| &r.tenant)
            .collect::<BTreeSet<_>>()
            .len()
    }
}

/// Every stored advisory (or the one named) with its rows in `scope`.
pub(super) fn read(
    store: &dyn Store,
    scope: &turncoat_store::Scope,
    advisory: Option<&str>,
) -> Result<Vec<AdvisoryExposure>, crate::Problem> {
    let rows = turncoat_engine::exposure(store, scope, advisory)?;
    let mut by_advisory: BTreeMap<String, Vec<ExposureRow>> = BTreeMap::new();
    for row in rows {
        by_advisory
            .entry(row.advisory.clone())
            .or_default()
            .push(row);
    }
    Ok(store
        .advisories()?
        .into_iter()
        .filter(|a| advisory.is_none_or(|id| a.id == id))
        .map(|a| AdvisoryExposure {
            rows: by_advisory.remove(&a.id).unwrap_or_default(),
            id: a.id,
            title: a.title,
        })
        .collect())
}

pub(super) async fn exposure(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<ExposureQuery>,
) -> Response {
    let scope = match query.tenant.as_deref().filter(|t| !t.is_empty()) {
        Some(name) => match viewer.scope().get(name) {
            Some(t) => turncoat_store::Scope::tenant(t),
            None => return not_found(&viewer, "tenant"),
        },
        None => viewer.scope().clone(),
    };
    let chosen = query.advisory.clone().filter(|a| !a.is_empty());
    let read = state
        .read(move |store| {
            let all: Vec<(String, String)> = store
                .advisories()?
                .into_iter()
                .map(|a| (a.id, a.title))
                .collect();
            if let Some(id) = &chosen
                && !all.iter().any(|(a, _)| a == id)
            {
                return Ok(None);
            }
            Ok(Some((all, read(store, &scope, chosen.as_deref())?)))
        })
        .await;
    let (all, advisories) = match read {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(&viewer, "advisory"),
        Err(p) => return failed(&viewer, p),
    };
    let body = html! {
        form.filters method="get" action="/exposure" {
            label { "Advisory"
                select name="advisory" {
                    option value="" { "all" }
                    @for (id, title) in &all {
                        option value=(id) selected[query.advisory.as_deref() == Some(id.as_str())] { (id) " — " (title) }
                    }
                }
            }
            (tenant_select(&viewer, query.tenant.as_deref()))
            button type="submit" { "Show" }
        }
        @if advisories.is_empty() {
            p.muted { "No advisory is stored: import one on the Intel page." }
        }
        @for a in &advisories { (advisory_panel(a)) }
    };
    page("Exposure", &viewer, Menu::Exposure, body).into_response()
}

/// The versions of an advisory's rows in the order first met: the
/// timeline's series.
pub(super) fn versions(a: &AdvisoryExposure) -> Vec<String> {
    let mut versions: Vec<String> = Vec::new();
    for r in &a.rows {
        let label = format!("{} {}", r.product, r.version);
        if !versions.contains(&label) {
            versions.push(label);
        }
    }
    versions
}

/// The advisory's rows as timeline rows, one per `label` (an endpoint, or
/// a tenant's endpoint), each interval coloured by its version.
pub(super) fn timeline_rows(
    a: &AdvisoryExposure,
    label: impl Fn(&ExposureRow) -> String,
) -> Vec<TimelineRow> {
    let series = versions(a);
    let mut rows: BTreeMap<String, Vec<Span>> = BTreeMap::new();
    for r in &a.rows {
        let version = format!("{} {}", r.product, r.version);
        rows.entry(label(r)).or_default().push(Span {
            from: r.from,
            to: r.to,
            series: series.iter().position(|v| *v == version).unwrap_or(0),
            note: format!(
                "{version} from {} to {}",
                r.from,
                r.to.map_or("now".to_owned(), |t| t.to_string())
            ),
        });
    }
    rows.into_iter()
        .map(|(label, spans)| TimelineRow { label, spans })
        .collect()
}

fn advisory_panel(a: &AdvisoryExposure) -> Markup {
    let versions = versions(a);
    let rows = timeline_rows(a, |r| format!("{} / {}", r.tenant, r.endpoint));
    let drawn: Vec<TimelineRow> = rows.into_iter().take(DRAWN).collect();
    let endpoints = a.endpoints();
    html! {
        section.panel {
            h2 { code { (a.id) } " " (a.title) }
            @if a.rows.is_empty() {
                p.muted { "None of your endpoints ran an affected version." }
            } @else {
                p {
                    strong { (a.endpoints()) } " endpoints in " strong { (a.tenants()) }
                    " tenants ran an affected version; " strong { (a.endpoints_now()) } " still do."
                }
                (timeline(&format!("Who ran an affected version of {}, and when", a.id), &drawn, &versions))
                p.muted { "Bars reaching the right edge: still installed at the last inventory." }
                @if endpoints > DRAWN {
                    p.muted { "The first " (DRAWN) " of " (endpoints) " endpoints are drawn; choose a tenant to narrow." }
                }
                div.table-wrap { table {
                    thead { tr {
                        th { "Tenant" } th { "Endpoint" } th { "Product" } th { "Version" }
                        th { "From" } th { "To" }
                    } }
                    tbody {
                        @for r in a.rows.iter().take(LISTED) {
                            tr {
                                td { (r.tenant) }
                                td { a href=(endpoint_link(r.tenant.as_str(), &r.endpoint)) { (r.endpoint) } }
                                td { (r.product) } td { (r.version) } td { (r.from) }
                                td { @match r.to { Some(t) => (t), None => span.badge.bad { "still installed" } } }
                            }
                        }
                    }
                } }
                @if a.rows.len() > LISTED {
                    p.muted { (LISTED) " of " (a.rows.len()) " rows listed; choose a tenant to narrow." }
                }
            }
        }
    }
}
