//! Console sessions: sign in with a password, get an HttpOnly,
//! SameSite=Strict cookie and the anti-forgery token to send with every
//! change; sign out. Failed sign-ins are throttled per user name and per
//! client address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use turncoat_core::{Actor, Time};
use turncoat_store::{NewToken, NewTokenOwner};

use crate::auth::{Caller, SESSION_COOKIE};
use crate::{AppState, Problem};

/// Failed sign-ins allowed per user name, and per client address (one
/// address trying many names: password spraying), within
/// [`THROTTLE_WINDOW`].
const MAX_FAILURES_PER_NAME: u32 = 5;
const MAX_FAILURES_PER_ADDRESS: u32 = 20;
const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys kept before expired ones are swept: a flood of names or
/// addresses cannot grow the map without end.
const SWEEP_ABOVE: usize = 10_000;

/// Failed sign-ins per key (a user name in lower case, or a client
/// address): how many, since when. In memory: a restart forgets them.
pub(crate) struct Throttle {
    max: u32,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Throttle {
    fn new(max: u32) -> Throttle {
        Throttle {
            max,
            failures: Mutex::default(),
        }
    }

    /// Seconds to wait when `key` has failed too often lately.
    fn blocked(&self, key: &str) -> Option<u64> {
        let map = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let (failures, since) = map.get(key)?;
        let left = THROTTLE_WINDOW.checked_sub(since.elapsed())?;
        (*failures >= self.max).then(|| left.as_secs().max(1))
    }

    fn failed(&self, key: &str) {
        let mut map = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= SWEEP_ABOVE {
            map.retain(|_, (_, since)| since.elapsed() <= THROTTLE_WINDOW);
        }
        let entry = map.entry(key.to_owned()).or_insert((0, Instant::now()));
        if entry.1.elapsed() > THROTTLE_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    fn forget(&self, key: &str) {
        let mut map = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        map.remove(key);
    }
}

/// The sign-in throttles: per user name and per client address.
pub(crate) struct LoginThrottle {
    names: Throttle,
    addresses: Throttle,
}

impl Default for LoginThrottle {
    fn default() -> LoginThrottle {
        LoginThrottle {
            names: Throttle::new(MAX_FAILURES_PER_NAME),
            addresses: Throttle::new(MAX_FAILURES_PER_ADDRESS),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct Login {
    pub username: String,
    pub password: String,
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
/// `password`. Five failures for a name, or twenty from one client
/// address, within 15 minutes answer 429 until the window ends.
#[utoipa::path(post, path = "/login", tag = "session", security(()),
    request_body(content = Login, content_type = "application/json", description = "Or the same fields as an HTML form"),
    responses((status = 200, description = "Signed in: the session cookie is set", body = SessionInfo),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 429, description = "Too many failures for this name or from this address: see Retry-After", body = Problem)))]
pub(crate) async fn login(
    State(state): State<AppState>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
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
    let signed_in = sign_in(&state, login, &client_address(client)).await?;
    let info = SessionInfo {
        actor: signed_in.principal.actor.to_string(),
        role: signed_in.principal.role.to_string(),
        tenants: signed_in
            .principal
            .scope
            .members()
            .iter()
            .map(|t| t.name().to_string())
            .collect(),
        csrf_token: Some(turncoat_auth::csrf_token(&signed_in.secret)),
        expires: Some(signed_in.expires),
    };
    let cookie = open_cookie(&state, &signed_in.secret);
    Ok(with_cookie(Json(info).into_response(), &cookie))
}

/// A session just opened: who, its secret (the cookie's value), and
/// when it ends.
pub(crate) struct SignedIn {
    pub principal: turncoat_auth::Principal,
    pub secret: String,
    pub expires: Time,
}

/// The client's address as the throttle counts it. Behind a reverse
/// proxy every client is the proxy's address: the per-name limit still
/// tells them apart.
pub(crate) fn client_address(client: Option<Extension<ConnectInfo<SocketAddr>>>) -> String {
    client.map(|c| c.0.0.ip().to_string()).unwrap_or_default()
}

/// Checks a password, throttled per name and per client address, and
/// opens a session of the user: the API's sign-in and the console's.
pub(crate) async fn sign_in(
    state: &AppState,
    login: Login,
    address: &str,
) -> Result<SignedIn, Problem> {
    let name = login.username.to_lowercase();
    if let Some(seconds) = state.logins.names.blocked(&name) {
        state.metrics.rejected("login_throttled");
        return Err(Problem::too_many_requests(
            "too many failed sign-ins for this name; try again later",
            seconds,
        ));
    }
    if let Some(seconds) = state.logins.addresses.blocked(address) {
        state.metrics.rejected("login_throttled");
        return Err(Problem::too_many_requests(
            "too many failed sign-ins from this address; try again later",
            seconds,
        ));
    }
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
            Ok(Some(SignedIn {
                principal,
                secret: issued.secret,
                expires,
            }))
        })
        .await?;
    let Some(signed_in) = signed_in else {
        state.logins.names.failed(&name);
        state.logins.addresses.failed(address);
        state.metrics.rejected("invalid_credentials");
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "the credentials are not valid",
        ));
    };
    state.logins.names.forget(&name);
    Ok(signed_in)
}

/// The `Set-Cookie` value that holds a session.
pub(crate) fn open_cookie(state: &AppState, secret: &str) -> String {
    let max_age = turncoat_auth::SESSION_LIFETIME_MICROS / 1_000_000;
    format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if state.tls { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends a session in the browser.
pub(crate) fn closed_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Ends a session: its token is revoked, so the cookie no longer works
/// anywhere.
pub(crate) async fn end_session(
    state: &AppState,
    session: &turncoat_auth::Session,
    actor: Actor,
) -> Result<(), Problem> {
    let token = session.token_id;
    state
        .write(move |store| Ok(store.revoke_token(token, &actor).map(drop)?))
        .await
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
    end_session(&state, &session, caller.0.actor).await?;
    Ok(with_cookie(
        StatusCode::NO_CONTENT.into_response(),
        &closed_cookie(),
    ))
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

pub(crate) fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
