//! Console sessions: sign in with a password, get an HttpOnly,
//! SameSite=Strict cookie and the anti-forgery token to send with every
//! change; sign out. Failed sign-ins are throttled per user name.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use turncoat_core::{Actor, Time};
use turncoat_store::{NewToken, NewTokenOwner, Store};

use crate::auth::{Caller, SESSION_COOKIE};
use crate::{AppState, Problem};

/// Failed sign-ins allowed per user name within [`THROTTLE_WINDOW`].
const MAX_FAILURES: u32 = 5;
const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Failed sign-ins per user name (lower case): how many, since when.
#[derive(Default)]
pub(crate) struct LoginThrottle(Mutex<HashMap<String, (u32, Instant)>>);

impl LoginThrottle {
    /// Seconds to wait when `name` has failed too often lately.
    fn blocked(&self, name: &str) -> Option<u64> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (failures, since) = map.get(&name.to_lowercase())?;
        let left = THROTTLE_WINDOW.checked_sub(since.elapsed())?;
        (*failures >= MAX_FAILURES).then(|| left.as_secs().max(1))
    }

    fn failed(&self, name: &str) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = map
            .entry(name.to_lowercase())
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() > THROTTLE_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    fn succeeded(&self, name: &str) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.remove(&name.to_lowercase());
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct Login {
    username: String,
    password: String,
}

/// Who is signed in, and the token their changes must carry.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SessionInfo {
    /// As the audit log and alert histories name them.
    actor: String,
    role: String,
    /// The tenants they may see.
    tenants: Vec<String>,
    /// Send it as `X-CSRF-Token` with every change; present for a
    /// session, absent for a token (which needs none).
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires: Option<Time>,
}

/// `POST /api/v1/login`: a JSON or form body with `username` and
/// `password`. Five failures for a name within 15 minutes answer 429
/// until the window ends.
#[utoipa::path(post, path = "/login", tag = "session", security(()),
    request_body(content = Login, content_type = "application/json", description = "Or the same fields as an HTML form"),
    responses((status = 200, description = "Signed in: the session cookie is set", body = SessionInfo),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 429, description = "Too many failures for this name: see Retry-After", body = Problem)))]
pub(crate) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let login: Login = if form {
        serde_urlencoded::from_bytes(&body).map_err(|e| Problem::bad_request(e.to_string()))?
    } else {
        serde_json::from_slice(&body).map_err(|e| Problem::bad_request(e.to_string()))?
    };
    if let Some(seconds) = state.logins.blocked(&login.username) {
        state.metrics.rejected("login_throttled");
        return Err(Problem::too_many_requests(
            "too many failed sign-ins for this name; try again later",
            seconds,
        ));
    }
    let name = login.username.clone();
    let signed_in = state
        .write(move |store| {
            let principal =
                match turncoat_auth::authenticate_password(store, &login.username, &login.password)
                {
                    Ok(p) => p,
                    Err(turncoat_auth::AuthError::Store(e)) => return Err(Problem::from(e)),
                    Err(_) => return Ok(None),
                };
            let issued = turncoat_auth::issue_token();
            let expires = Time(Time::now().0 + turncoat_auth::SESSION_LIFETIME_MICROS);
            let user = store
                .user(&login.username)?
                .map(|u| u.name)
                .unwrap_or_default();
            store.add_token(
                &NewToken {
                    hash: issued.hash,
                    owner: NewTokenOwner::User(&user),
                    note: turncoat_auth::SESSION_NOTE,
                    expires: Some(expires),
                },
                &Actor::User(user.clone()),
            )?;
            Ok(Some((principal, issued.secret, expires)))
        })
        .await?;
    let Some((principal, secret, expires)) = signed_in else {
        state.logins.failed(&name);
        state.metrics.rejected("invalid_credentials");
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "the credentials are not valid",
        ));
    };
    state.logins.succeeded(&name);
    let info = SessionInfo {
        actor: principal.actor.to_string(),
        role: principal.role.to_string(),
        tenants: principal
            .scope
            .members()
            .iter()
            .map(|t| t.name().to_string())
            .collect(),
        csrf_token: Some(turncoat_auth::csrf_token(&secret)),
        expires: Some(expires),
    };
    let max_age = turncoat_auth::SESSION_LIFETIME_MICROS / 1_000_000;
    let cookie = format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if state.tls { "; Secure" } else { "" }
    );
    Ok(with_cookie(Json(info).into_response(), &cookie))
}

/// `POST /api/v1/logout`: ends the session (its token is revoked) and
/// clears the cookie.
#[utoipa::path(post, path = "/logout", tag = "session",
    responses((status = 204, description = "Signed out"),
        (status = 400, description = "Not a session", body = Problem),
        (status = 401, body = Problem), (status = 403, description = "Without the session's X-CSRF-Token", body = Problem)))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, Problem> {
    let Some(session) = caller.1 else {
        return Err(Problem::bad_request(
            "only a session signs out; revoke a token instead",
        ));
    };
    let actor = caller.0.actor;
    state
        .write(move |store| Ok(store.revoke_token(session.token_id, &actor)?))
        .await?;
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    Ok(with_cookie(StatusCode::NO_CONTENT.into_response(), &cookie))
}

/// `GET /api/v1/session`: who the caller is.
#[utoipa::path(get, path = "/session", tag = "session",
    responses((status = 200, body = SessionInfo), (status = 401, body = Problem)))]
pub(crate) async fn session(caller: Caller) -> Json<SessionInfo> {
    let Caller(principal, session) = caller;
    Json(SessionInfo {
        actor: principal.actor.to_string(),
        role: principal.role.to_string(),
        tenants: principal
            .scope
            .members()
            .iter()
            .map(|t| t.name().to_string())
            .collect(),
        csrf_token: session.map(|s| s.csrf),
        expires: None,
    })
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
