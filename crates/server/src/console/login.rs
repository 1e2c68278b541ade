//! Signing in and out of the console. The sign-in form is protected
//! against login forgery by a double-submit token: a random value in a
//! short-lived SameSite=Strict cookie that the form must repeat.

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, http::header};
use maud::html;
use serde::Deserialize;

use super::{Viewer, constant_time_eq, page_without_menu};
use crate::AppState;
use crate::session::{Login, client_address, closed_cookie, end_session, open_cookie, with_cookie};

/// The cookie holding the sign-in form's anti-forgery value.
const LOGIN_COOKIE: &str = "turncoat_login";

#[derive(Deserialize)]
pub(super) struct Next {
    next: Option<String>,
}

/// Where to go after signing in: a path of this console only, never
/// another site (`//host`, `/\host` and schemes are refused).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.starts_with("/login") =>
        {
            n
        }
        _ => "/",
    }
}

fn form_page(next: &str, csrf: &str, error: Option<&str>) -> maud::Markup {
    page_without_menu(
        "Sign in",
        html! {
            section.panel.login {
                @if let Some(error) = error {
                    p.error role="alert" { (error) }
                }
                form method="post" action="/login" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="next" value=(next);
                    label { "User name" input name="username" autocomplete="username" required autofocus; }
                    label { "Password" input name="password" type="password" autocomplete="current-password" required; }
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// The form answered with a fresh anti-forgery value in its cookie.
fn fresh_form(state: &AppState, next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let value = turncoat_auth::issue_token().secret;
    let cookie = format!(
        "{LOGIN_COOKIE}={value}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600{}",
        if state.tls { "; Secure" } else { "" }
    );
    with_cookie(
        (status, form_page(next, &value, error)).into_response(),
        &cookie,
    )
}

/// `GET /login`.
pub(super) async fn form(State(state): State<AppState>, Query(next): Query<Next>) -> Response {
    fresh_form(
        &state,
        safe_next(next.next.as_deref()),
        None,
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub(super) struct SignIn {
    username: String,
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

/// `POST /login`: signs in and goes where the person was going.
pub(super) async fn submit(
    State(state): State<AppState>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(sent): Form<SignIn>,
) -> Response {
    let next = safe_next(sent.next.as_deref()).to_owned();
    let expected = crate::auth::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), sent.csrf.as_bytes()) {
        return fresh_form(
            &state,
            &next,
            Some("The sign-in form expired; please try again."),
            StatusCode::FORBIDDEN,
        );
    }
    let login = Login {
        username: sent.username,
        password: sent.password,
    };
    match crate::session::sign_in(&state, login, &client_address(client)).await {
        Ok(signed_in) => {
            let mut response = Redirect::to(&next).into_response();
            response.headers_mut().append(
                header::SET_COOKIE,
                open_cookie(&state, &signed_in.secret)
                    .parse()
                    .expect("a cookie of token characters"),
            );
            response
        }
        Err(problem) => fresh_form(&state, &next, Some(&problem.detail), problem.status),
    }
}

#[derive(Deserialize)]
pub(super) struct SignOut {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: ends the session everywhere.
pub(super) async fn logout(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(sent): Form<SignOut>,
) -> Response {
    if let Err(refused) = viewer.sent_token(&sent.csrf) {
        return refused;
    }
    let actor = viewer.0.principal.actor.clone();
    if let Err(problem) = end_session(&state, &viewer.0, actor).await {
        return super::failed(&viewer, problem);
    }
    with_cookie(Redirect::to("/login").into_response(), &closed_cookie())
}
