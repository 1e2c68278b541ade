//! `/api/v1/users` and `/api/v1/tokens`: who may sign in and which API
//! tokens exist (admins only), as `turncoat user` and `turncoat token`
//! manage them. Secrets are never listed; a generated password is shown
//! in the answer that creates it, once.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use turncoat_core::Role;
use turncoat_store::{Store, Token, User};

use crate::api::tenant_in;
use crate::auth::Caller;
use crate::{AppState, Problem};

/// The users, by name.
#[utoipa::path(get, path = "/users", tag = "people",
    responses((status = 200, description = "Every user (never a password)", body = Vec<User>),
        (status = 401, body = Problem), (status = 403, description = "Admins only", body = Problem)))]
pub(crate) async fn users(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<User>>, Problem> {
    caller.must_be_admin()?;
    Ok(Json(state.read(|store| Ok(store.users()?)).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUserBody {
    name: String,
    /// admin, analyst or viewer.
    role: String,
    /// Tenants granted (required for a viewer; none for an analyst
    /// means every tenant).
    #[serde(default)]
    tenants: Vec<String>,
    /// At least 12 characters; generated and answered once when absent.
    password: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AddedUser {
    #[serde(flatten)]
    user: User,
    /// The generated password, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
}

/// Adds a user (admins only).
#[utoipa::path(post, path = "/users", tag = "people", request_body = NewUserBody,
    responses((status = 201, description = "The user, and a generated password once", body = AddedUser),
        (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "No such tenant", body = Problem),
        (status = 409, description = "The name is taken", body = Problem)))]
pub(crate) async fn add_user(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewUserBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<AddedUser>), Problem> {
    caller.must_be_admin()?;
    let Json(new) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
    let role: Role = new
        .role
        .parse()
        .map_err(|e| Problem::bad_request(format!("role: {e}")))?;
    let granted = new
        .tenants
        .iter()
        .map(|t| tenant_in(&caller.0.scope, t).cloned())
        .collect::<Result<Vec<_>, _>>()?;
    let actor = caller.0.actor;
    let (user, password) = state
        .write(move |store| {
            turncoat_auth::add_user(
                store,
                &new.name,
                role,
                &granted,
                new.password.as_deref(),
                &actor,
            )
            .map_err(auth_problem)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(AddedUser { user, password })))
}

fn auth_problem(e: turncoat_auth::AuthError) -> Problem {
    match e {
        turncoat_auth::AuthError::Store(e) => Problem::from(e),
        e @ turncoat_auth::AuthError::BadUser(_) => Problem::bad_request(e.to_string()),
        e => Problem::internal(&e),
    }
}

/// The API tokens and console sessions (never their secrets).
#[utoipa::path(get, path = "/tokens", tag = "people",
    responses((status = 200, description = "Every token", body = Vec<Token>),
        (status = 401, body = Problem), (status = 403, description = "Admins only", body = Problem)))]
pub(crate) async fn tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Token>>, Problem> {
    caller.must_be_admin()?;
    Ok(Json(state.read(|store| Ok(store.tokens()?)).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTokenBody {
    /// A tenant's token: the tenant, with `scope`.
    tenant: Option<String>,
    /// ingest (send telemetry), read, or write (read and triage).
    scope: Option<String>,
    /// Or a personal token of this user, with the user's role.
    user: Option<String>,
    #[serde(default)]
    note: String,
    /// When it stops working (RFC 3339); never when absent.
    expires: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedToken {
    #[serde(flatten)]
    token: Token,
    /// The secret, shown this once; only its hash is kept.
    secret: String,
}

/// Creates a token (admins only): a tenant's with a scope, or a user's.
#[utoipa::path(post, path = "/tokens", tag = "people", request_body = NewTokenBody,
    responses((status = 201, description = "The token and its secret, shown once", body = CreatedToken),
        (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewTokenBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<CreatedToken>), Problem> {
    caller.must_be_admin()?;
    let Json(new) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
    let expires = new
        .expires
        .as_deref()
        .map(turncoat_core::Time::parse)
        .transpose()
        .map_err(|e| Problem::bad_request(format!("expires: {e}")))?;
    let tenant = new
        .tenant
        .as_deref()
        .map(|t| tenant_in(&caller.0.scope, t).cloned())
        .transpose()?;
    let scope: Option<turncoat_core::TokenScope> = new
        .scope
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| Problem::bad_request(format!("scope: {e}")))?;
    let actor = caller.0.actor;
    let (token, secret) = state
        .write(move |store| {
            let owner = match (&tenant, scope, new.user.as_deref()) {
                (Some(t), Some(scope), None) => turncoat_store::NewTokenOwner::Tenant(t, scope),
                (None, None, Some(user)) => turncoat_store::NewTokenOwner::User(user),
                _ => return Err(Problem::bad_request("give tenant and scope, or user")),
            };
            turncoat_auth::create_token(store, owner, &new.note, expires, &actor)
                .map_err(auth_problem)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token, secret })))
}

/// Revokes a token or ends a session (admins only): it stops working at
/// once.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "people",
    params(("id" = i64, Path, description = "The token's id")),
    responses((status = 200, description = "The token, revoked", body = Token),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Token>, Problem> {
    caller.must_be_admin()?;
    let missing = || Problem::new(StatusCode::NOT_FOUND, "no such token");
    let id: i64 = id.parse().map_err(|_| missing())?;
    let actor = caller.0.actor;
    state
        .write(move |store| match store.revoke_token(id, &actor) {
            Err(turncoat_store::StoreError::NoSuchToken(_)) => Err(missing()),
            other => Ok(other?),
        })
        .await
        .map(Json)
}
