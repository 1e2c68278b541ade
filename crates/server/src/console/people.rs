//! `/people` (admins): who signs in and which API tokens exist; adding a
//! user (a generated password shown once), creating a token (its secret
//! shown once), revoking one. Secrets are never listed.

use axum::extract::{RawForm, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use turncoat_core::{Role, Time, TokenScope};
use turncoat_store::{Token, TokenOwner, User};

use super::{Menu, Viewer, failed, page};
use crate::people::{NewTokenBody, NewUserBody};
use crate::{AppState, Problem};

/// What a form just made, shown once.
enum Made {
    User {
        name: String,
        password: Option<String>,
    },
    Token {
        id: i64,
        secret: String,
    },
    Revoked(i64),
}

pub(super) async fn people(State(state): State<AppState>, viewer: Viewer) -> Response {
    show(&state, &viewer, None).await
}

async fn show(state: &AppState, viewer: &Viewer, made: Option<Made>) -> Response {
    if !viewer.is_admin() {
        return failed(viewer, admins_only());
    }
    match state
        .read(|store| Ok((store.users()?, store.tokens()?)))
        .await
    {
        Ok((users, tokens)) => render(viewer, &users, &tokens, made.as_ref()).into_response(),
        Err(p) => failed(viewer, p),
    }
}

/// The page again with what a form made, or the form's problem.
async fn after(state: &AppState, viewer: &Viewer, made: Result<Made, Problem>) -> Response {
    match made {
        Ok(made) => show(state, viewer, Some(made)).await,
        Err(p) => failed(viewer, p),
    }
}

fn admins_only() -> Problem {
    Problem::new(StatusCode::FORBIDDEN, "users and tokens are for admins")
}

/// The form's fields, repeated ones (`tenants`) kept; and the refusal of
/// one without the session's token or from a non-admin.
fn fields(viewer: &Viewer, body: &[u8]) -> Result<Vec<(String, String)>, Response> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| failed(viewer, Problem::bad_request(e.to_string())))?;
    let csrf = pairs
        .iter()
        .find(|(k, _)| k == "csrf")
        .map_or("", |(_, v)| v.as_str());
    viewer.sent_token(csrf)?;
    if !viewer.is_admin() {
        return Err(failed(viewer, admins_only()));
    }
    Ok(pairs)
}

fn one(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, v)| k == name && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_owned())
}

/// `POST /people/users`: name, role, tenants (repeated).
pub(super) async fn add_user(
    State(state): State<AppState>,
    viewer: Viewer,
    RawForm(body): RawForm,
) -> Response {
    let pairs = match fields(&viewer, &body) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let tenants = pairs
        .iter()
        .filter(|(k, v)| k == "tenants" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect();
    let new = NewUserBody::new(
        one(&pairs, "name").unwrap_or_default(),
        one(&pairs, "role").unwrap_or_default(),
        tenants,
    );
    let actor = viewer.0.principal.actor.clone();
    let made = new
        .add(&state, viewer.scope(), actor)
        .await
        .map(|added| Made::User {
            name: added.user.name,
            password: added.password,
        });
    after(&state, &viewer, made).await
}

/// `POST /people/tokens`: a tenant and scope, or a user; a note and an
/// expiry in days.
pub(super) async fn create_token(
    State(state): State<AppState>,
    viewer: Viewer,
    RawForm(body): RawForm,
) -> Response {
    let pairs = match fields(&viewer, &body) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let expires = match one(&pairs, "days").map(|d| d.parse::<i64>()) {
        Some(Ok(days)) if (1..=3650).contains(&days) => {
            Some(Time(Time::now().0 + days * 86_400_000_000).to_rfc3339())
        }
        Some(_) => {
            return failed(
                &viewer,
                Problem::bad_request("expiry: a number of days from 1 to 3650"),
            );
        }
        None => None,
    };
    let user = one(&pairs, "user");
    let (tenant, scope) = match user {
        Some(_) => (None, None),
        None => (one(&pairs, "tenant"), one(&pairs, "scope")),
    };
    let new = NewTokenBody::new(
        tenant,
        scope,
        user,
        one(&pairs, "note").unwrap_or_default(),
        expires,
    );
    let actor = viewer.0.principal.actor.clone();
    let made = new
        .create(&state, viewer.scope(), actor)
        .await
        .map(|created| Made::Token {
            id: created.token.id,
            secret: created.secret,
        });
    after(&state, &viewer, made).await
}

/// `POST /people/revoke`: the token `id` stops working at once.
pub(super) async fn revoke(
    State(state): State<AppState>,
    viewer: Viewer,
    RawForm(body): RawForm,
) -> Response {
    let pairs = match fields(&viewer, &body) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let id = one(&pairs, "id").unwrap_or_default();
    let actor = viewer.0.principal.actor.clone();
    let made = crate::people::revoke(&state, &id, actor)
        .await
        .map(|token| Made::Revoked(token.id));
    after(&state, &viewer, made).await
}

fn render(viewer: &Viewer, users: &[User], tokens: &[Token], made: Option<&Made>) -> Markup {
    let csrf = &viewer.0.csrf;
    let now = Time::now();
    let body = html! {
        @match made {
            Some(Made::User { name, password }) => section.panel role="status" {
                p { "User " strong { (name) } " added." }
                @if let Some(p) = password {
                    p { "Password, shown this once: " code.secret { (p) } }
                }
            },
            Some(Made::Token { id, secret }) => section.panel role="status" {
                p { "Token " (id) " created. Its secret, shown this once: " code.secret { (secret) } }
            },
            Some(Made::Revoked(id)) => section.panel role="status" { p { "Token " (id) " revoked: it stops working now." } },
            None => {}
        }
        section.panel {
            h2 { "Users" }
            div.table-wrap { table {
                thead { tr { th { "Name" } th { "Role" } th { "Tenants" } th { "Since" } } }
                tbody {
                    @for u in users {
                        tr {
                            td { (u.name) } td { (u.role) }
                            td { @if u.tenants.is_empty() { span.muted { "all" } } @else {
                                (u.tenants.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ")) } }
                            td { (u.created) }
                        }
                    }
                }
            } }
            h2 { "Add a user" }
            form method="post" action="/people/users" {
                input type="hidden" name="csrf" value=(csrf);
                div.filters {
                    label { "Name" input name="name" required size="16"; }
                    label { "Role" select name="role" { @for r in Role::ALL { option value=(r.as_str()) { (r.as_str()) } } } }
                    label { "Tenants (a viewer needs one)"
                        select name="tenants" multiple size="3" {
                            @for t in viewer.scope().members() { option value=(t.name()) { (t.name()) } }
                        }
                    }
                    button type="submit" { "Add" }
                }
            }
        }
        section.panel {
            h2 { "Tokens and sessions" }
            div.table-wrap { table {
                thead { tr { th.num { "Id" } th { "Of" } th { "Note" } th { "Created" } th { "Expires" } th { "State" } th {} } }
                tbody {
                    @for t in tokens {
                        tr {
                            td.num { (t.id) }
                            td { @match &t.owner {
                                TokenOwner::User { user } => { "user " (user) },
                                TokenOwner::Tenant { tenant, scope } => { (tenant) " (" (scope) ")" },
                            } }
                            td { (t.note) } td { (t.created) }
                            td { @match t.expires { Some(e) => (e), None => span.muted { "never" } } }
                            td { @if t.is_live(now) { span.badge.good { "live" } } @else if t.revoked.is_some() { span.muted { "revoked" } } @else { span.muted { "expired" } } }
                            td { @if t.is_live(now) {
                                form method="post" action="/people/revoke" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="id" value=(t.id);
                                    button.plain type="submit" { "Revoke" }
                                }
                            } }
                        }
                    }
                }
            } }
            h2 { "Create a token" }
            form method="post" action="/people/tokens" {
                input type="hidden" name="csrf" value=(csrf);
                div.filters {
                    label { "Tenant"
                        select name="tenant" { @for t in viewer.scope().members() { option value=(t.name()) { (t.name()) } } }
                    }
                    label { "Scope" select name="scope" { @for s in TokenScope::ALL { option value=(s.as_str()) { (s.as_str()) } } } }
                    label { "Or a user's own (name)" input name="user" size="12"; }
                    label { "Note" input name="note" size="20"; }
                    label { "Expires after days (empty: never)" input name="days" type="number" min="1" max="3650"; }
                    button type="submit" { "Create" }
                }
            }
        }
    };
    page("Users and tokens", viewer, Menu::People, body)
}
