//! The analyst console: server-rendered HTML pages (maud) on the same
//! store, auth and triage as the API, with its static files built into
//! the binary. Every page is a session's: no cookie, or an expired one,
//! goes to `/login`. Every form that changes something carries the
//! session's anti-forgery token as a hidden `csrf` field.

mod alerts;
mod audit;
mod beacons;
mod campaigns;
mod chart;
mod drift;
mod endpoint;
mod exposure;
mod intel;
mod login;
mod overview;
mod people;
mod report;
mod rules;
mod upload;
mod vet;

use axum::Router;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use turncoat_auth::Session;

pub use report::{ReportQuery, report_html, report_pdf};

use crate::AppState;
use crate::auth::session_cookie;

/// The console's static files, in the binary.
#[derive(rust_embed::Embed)]
#[folder = "assets/"]
struct Assets;

/// The pinned htmx the pages load (Zero-Clause BSD, `assets/`).
const HTMX: &str = "htmx-2.0.11.min.js";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::overview))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/alerts", get(alerts::queue))
        .route("/alerts/bulk", post(alerts::bulk))
        .route("/alerts/{id}", get(alerts::detail))
        .route("/alerts/{id}/status", post(alerts::set_status))
        .route("/alerts/{id}/comment", post(alerts::comment))
        .route("/alerts/{id}/assign", post(alerts::assign))
        .route("/alerts/{id}/suppress", post(alerts::suppress))
        .route("/endpoint", get(endpoint::endpoint))
        .route("/exposure", get(exposure::exposure))
        .route("/beacons", get(beacons::beacons))
        .route("/beacons/pair", get(beacons::pair))
        .route("/drift", get(drift::drift))
        .route("/campaigns", get(campaigns::campaigns))
        .route("/intel", get(intel::intel).post(intel::import))
        .route("/rules", get(rules::rules).post(rules::import))
        .route("/vet", get(vet::form).post(vet::submit))
        .route("/audit", get(audit::audit))
        .route("/report", get(report::report))
        .route("/people", get(people::people))
        .route("/people/users", post(people::add_user))
        .route("/people/tokens", post(people::create_token))
        .route("/people/revoke", post(people::revoke))
        .route("/assets/{file}", get(asset))
}

async fn asset(Path(file): Path<String>) -> Response {
    let Some(found) = Assets::get(&file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let kind = match file.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        found.data.into_owned(),
    )
        .into_response()
}

/// The person a page is for: a console session, found by its cookie.
pub(crate) struct Viewer(Session);

impl Viewer {
    fn scope(&self) -> &turncoat_store::Scope {
        &self.0.principal.scope
    }

    fn is_admin(&self) -> bool {
        self.0.principal.role == turncoat_core::Role::Admin
    }

    fn can_triage(&self) -> bool {
        self.0.principal.role.can_triage()
    }

    /// Whether a form's `csrf` field is this session's token.
    fn sent_token(&self, sent: &str) -> Result<(), Response> {
        if constant_time_eq(sent.as_bytes(), self.0.csrf.as_bytes()) {
            Ok(())
        } else {
            Err((
                StatusCode::FORBIDDEN,
                page_without_menu(
                    "Refused",
                    html! { p.error { "This form was not sent from a page of this console (its anti-forgery token is missing or wrong). Reload the page and try again." } },
                ),
            )
                .into_response())
        }
    }
}

/// Compares two secrets in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Viewer, Response> {
        let back_to_login = || {
            let next = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
            Redirect::to(&format!("/login?{query}")).into_response()
        };
        let Some(secret) = session_cookie(&parts.headers) else {
            return Err(back_to_login());
        };
        crate::auth::live_session(state, secret)
            .await?
            .map(Viewer)
            .map_err(|_| back_to_login())
    }
}

/// Which menu entry a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Menu {
    Overview,
    Alerts,
    Exposure,
    Beacons,
    Drift,
    Campaigns,
    Intel,
    Rules,
    Vet,
    Audit,
    People,
}

/// A page of the console: the menu, who is signed in, and `body`.
fn page(title: &str, viewer: &Viewer, current: Menu, body: Markup) -> Markup {
    let principal = &viewer.0.principal;
    let mut entries = vec![
        (Menu::Overview, "/", "Overview"),
        (Menu::Alerts, "/alerts", "Alerts"),
        (Menu::Exposure, "/exposure", "Exposure"),
        (Menu::Beacons, "/beacons", "Beacons"),
        (Menu::Drift, "/drift", "Drift"),
        (Menu::Campaigns, "/campaigns", "Campaigns"),
        (Menu::Intel, "/intel", "Intel"),
        (Menu::Rules, "/rules", "Rules"),
        (Menu::Vet, "/vet", "Vet"),
        (Menu::Audit, "/audit", "Audit"),
    ];
    if viewer.is_admin() {
        entries.push((Menu::People, "/people", "Users"));
    }
    let headers = serde_json::json!({ "X-CSRF-Token": viewer.0.csrf }).to_string();
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body hx-headers=(headers) {
                header.top {
                    a.brand href="/" { "turncoat" }
                    nav aria-label="Main" {
                        @for (menu, href, label) in entries {
                            @if menu == current {
                                a href=(href) aria-current="page" { (label) }
                            } @else {
                                a href=(href) { (label) }
                            }
                        }
                    }
                    div.who {
                        span { (principal.actor) " · " (principal.role.as_str()) }
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(viewer.0.csrf);
                            button.plain type="submit" { "Sign out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// Every page's head: its title, the stylesheet, htmx.
fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · turncoat" }
            link rel="stylesheet" href="/assets/console.css";
            script src={ "/assets/" (HTMX) } defer {}
        }
    }
}

/// A page with no menu and nobody signed in (sign-in, refusals).
fn page_without_menu(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { main { h1 { (title) } (body) } }
        }
    }
}

/// A path with its query string, each value escaped.
fn link(path: &str, pairs: &[(&str, &str)]) -> String {
    format!(
        "{path}?{}",
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

/// The page of one endpoint of a tenant.
fn endpoint_link(tenant: &str, endpoint: &str) -> String {
    link("/endpoint", &[("tenant", tenant), ("name", endpoint)])
}

/// A filter's choice of one of the viewer's tenants, or all of them;
/// nothing for a viewer of one tenant.
fn tenant_select(viewer: &Viewer, chosen: Option<&str>) -> Markup {
    let members = viewer.scope().members();
    html! {
        @if members.len() > 1 {
            label { "Tenant"
                select name="tenant" {
                    option value="" { "all" }
                    @for t in members {
                        option value=(t.name()) selected[chosen == Some(t.name().as_str())] { (t.name()) }
                    }
                }
            }
        }
    }
}

/// What a retro-hunt found per tenant: new alerts, updated ones, and
/// dismissed ones brought back.
/// An import's retro-hunt: its results per tenant, or, when the cluster's
/// workers took it, the hunt to look for in their logs.
fn retro_table(
    retro: &[turncoat_engine::intel::RetroReport],
    queued: Option<&turncoat_engine::QueuedRetro>,
) -> Markup {
    html! {
        @if let Some(q) = queued {
            p { "Handed to the workers as retro-hunt " code { (q.hunt) } ": one job for each of "
                (q.tenants) " tenants. Alerts appear as each finishes." }
        } @else if retro.is_empty() {
            p.muted { "No tenant has stored events to hunt." }
        } @else {
            table {
                thead { tr { th { "Tenant" } th.num { "New alerts" } th.num { "Updated" } th.num { "Resurfaced" } } }
                tbody {
                    @for r in retro {
                        tr {
                            td { (r.tenant) } td.num { (r.new_alerts) }
                            td.num { (r.updated_alerts) } td.num { (r.resurfaced) }
                        }
                    }
                }
            }
        }
    }
}

/// A page's answer to something the viewer cannot see or that does not
/// exist: the same either way.
fn not_found(viewer: &Viewer, what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        page(
            "Not found",
            viewer,
            Menu::Overview,
            html! { p { "No such " (what) " in your tenants." } },
        ),
    )
        .into_response()
}

/// A problem from the store or engine, as a page.
fn failed(viewer: &Viewer, problem: crate::Problem) -> Response {
    (
        problem.status,
        page(
            "Something went wrong",
            viewer,
            Menu::Overview,
            html! { p.error { (problem.detail) } },
        ),
    )
        .into_response()
}
