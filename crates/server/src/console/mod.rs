//! The analyst console: server-rendered HTML pages (maud) on the same
//! store, auth and triage as the API, with its static files built into
//! the binary. Every page is a session's: no cookie, or an expired one,
//! goes to `/login`. Every form that changes something carries the
//! session's anti-forgery token as a hidden `csrf` field.

mod alerts;
mod beacons;
mod chart;
mod intel;
mod login;
mod overview;

use axum::Router;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use turncoat_auth::Session;

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
        .route("/beacons", get(beacons::beacons))
        .route("/intel", get(intel::intel).post(intel::import))
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
    Beacons,
    Intel,
}

/// A page of the console: the menu, who is signed in, and `body`.
fn page(title: &str, viewer: &Viewer, current: Menu, body: Markup) -> Markup {
    let principal = &viewer.0.principal;
    let entries = [
        (Menu::Overview, "/", "Overview"),
        (Menu::Alerts, "/alerts", "Alerts"),
        (Menu::Beacons, "/beacons", "Beacons"),
        (Menu::Intel, "/intel", "Intel"),
    ];
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
