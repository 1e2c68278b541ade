//! `/api/v1/users` and `/api/v1/tokens`: who may sign in and which API
//! tokens exist (admins only), as `turncoat user` and `turncoat token`
//! manage them. Secrets are never listed; a generated password is shown
//! in the answer that creates it, once.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use turncoat_core::Role;
use turncoat_store::{Token, User};

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
    pub(crate) user: User,
    /// The generated password, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) password: Option<String>,
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
    let added = new.add(&state, &caller.0.scope, caller.0.actor).await?;
    Ok((StatusCode::CREATED, Json(added)))
}

impl NewUserBody {
    pub(crate) fn new(name: String, role: String, tenants: Vec<String>) -> NewUserBody {
        NewUserBody {
            name,
            role,
            tenants,
            password: None,
        }
    }

    /// Adds the user, granted tenants of `scope` only (`user add`'s
    /// rules, in `turncoat_auth::add_user`).
    pub(crate) async fn add(
        self,
        state: &AppState,
        scope: &turncoat_store::Scope,
        actor: turncoat_core::Actor,
    ) -> Result<AddedUser, Problem> {
        let role: Role = self
            .role
            .parse()
            .map_err(|e| Problem::bad_request(format!("role: {e}")))?;
        let granted = self
            .tenants
            .iter()
            .map(|t| tenant_in(scope, t).cloned())
            .collect::<Result<Vec<_>, _>>()?;
        let (user, password) = state
            .write(move |store| {
                turncoat_auth::add_user(
                    store,
                    &self.name,
                    role,
                    &granted,
                    self.password.as_deref(),
                    &actor,
                )
                .map_err(auth_problem)
            })
            .await?;
        Ok(AddedUser { user, password })
    }
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
    pub(crate) token: Token,
    /// The secret, shown this once; only its hash is kept.
    pub(crate) secret: String,
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
    let created = new.create(&state, &caller.0.scope, caller.0.actor).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

impl NewTokenBody {
    /// A tenant's token with a scope (`user: None`), or a user's.
    pub(crate) fn new(
        tenant: Option<String>,
        scope: Option<String>,
        user: Option<String>,
        note: String,
        expires: Option<String>,
    ) -> NewTokenBody {
        NewTokenBody {
            tenant,
            scope,
            user,
            note,
            expires,
        }
    }

    /// Creates the token (a tenant of `scope` only), its secret once.
    pub(crate) async fn create(
        self,
        state: &AppState,
        scope: &turncoat_store::Scope,
        actor: turncoat_core::Actor,
    ) -> Result<CreatedToken, Problem> {
        let expires = crate::api::time_param("expires", self.expires.as_deref())?;
        let tenant = self
            .tenant
            .as_deref()
            .map(|t| tenant_in(scope, t).cloned())
            .transpose()?;
        let token_scope: Option<turncoat_core::TokenScope> = self
            .scope
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| Problem::bad_request(format!("scope: {e}")))?;
        let (token, secret) = state
            .write(move |store| {
                let owner = match (&tenant, token_scope, self.user.as_deref()) {
                    (Some(t), Some(scope), None) => turncoat_store::NewTokenOwner::Tenant(t, scope),
                    (None, None, Some(user)) => turncoat_store::NewTokenOwner::User(user),
                    _ => return Err(Problem::bad_request("give tenant and scope, or user")),
                };
                turncoat_auth::create_token(store, owner, &self.note, expires, &actor)
                    .map_err(auth_problem)
            })
            .await?;
        Ok(CreatedToken { token, secret })
    }
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
    revoke(&state, &id, caller.0.actor).await.map(Json)
}

/// Revokes token `id` (as text from a path or a form): 404 when there is
/// none.
pub(crate) async fn revoke(
    state: &AppState,
    id: &str,
    actor: turncoat_core::Actor,
) -> Result<Token, Problem> {
    let missing = || Problem::new(StatusCode::NOT_FOUND, "no such token");
    let id: i64 = id.parse().map_err(|_| missing())?;
    state
        .write(move |store| match store.revoke_token(id, &actor) {
            Err(turncoat_store::StoreError::NoSuchToken(_)) => Err(missing()),
            other => Ok(other?),
        })
        .await
}
