//! Credentials into principals: a bearer token (or a shipper's Basic
//! or ApiKey header carrying one), or a console session's cookie, whose
//! state-changing requests must also carry its anti-forgery token.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use turncoat_auth::{AuthError, Principal};
use turncoat_core::{Role, Time, TokenScope};

use turncoat_store::Tenant;

use crate::{AppState, Problem};

/// The authenticated caller of a request, and its console session when
/// it came with the session cookie rather than a token.
pub(crate) struct Caller(pub Principal, pub Option<turncoat_auth::Session>);

/// The cookie a console session lives in.
pub(crate) const SESSION_COOKIE: &str = "turncoat_session";

/// The header a session's state-changing request carries its
/// anti-forgery token in.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

impl Caller {
    /// Refuses a token that may only send telemetry.
    pub(crate) fn may_read(&self) -> Result<(), Problem> {
        match self.0.token_scope {
            Some(TokenScope::Ingest) => Err(Problem::new(
                StatusCode::FORBIDDEN,
                "an ingest token may only send telemetry",
            )),
            _ => Ok(()),
        }
    }
}

impl Caller {
    /// Refuses anyone but an MSSP administrator.
    pub(crate) fn must_be_admin(&self) -> Result<(), Problem> {
        if self.0.role == Role::Admin && self.0.token_scope.is_none() {
            Ok(())
        } else {
            Err(Problem::new(
                StatusCode::FORBIDDEN,
                "only an admin may do this",
            ))
        }
    }
}

impl Caller {
    /// The tenant an entry (allowlist, suppression, internal range) is
    /// for, in the caller's scope; one for every tenant (`None`) is an
    /// admin's to make.
    pub(crate) fn entry_tenant(&self, name: Option<&str>) -> Result<Option<Tenant>, Problem> {
        match name {
            Some(name) => crate::api::tenant_in(&self.0.scope, name)
                .cloned()
                .map(Some),
            None => self.must_be_admin().map(|()| None),
        }
    }

    /// Refuses viewers and read-only tokens: triage changes alerts.
    pub(crate) fn must_triage(&self) -> Result<(), Problem> {
        if self.0.role.can_triage() {
            Ok(())
        } else {
            Err(Problem::new(
                StatusCode::FORBIDDEN,
                "triage needs an analyst, an admin or a write token",
            ))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, Response> {
        let header = parts.headers.get(header::AUTHORIZATION);
        let secret = header.and_then(|v| v.to_str().ok()).and_then(token_of);
        if header.is_none()
            && let Some(cookie) = session_cookie(&parts.headers)
        {
            return from_session(parts, state, cookie).await;
        }
        let Some(secret) = secret else {
            state.metrics.rejected("unauthenticated");
            return Err(unauthorized("a bearer token or a session is required"));
        };
        let checked = state
            .read(move |store| {
                Ok(turncoat_auth::authenticate_token(
                    store,
                    &secret,
                    Time::now(),
                ))
            })
            .await
            .map_err(IntoResponse::into_response)?;
        match checked {
            Ok(principal) => Ok(Caller(principal, None)),
            Err(e) => Err(refused(state, e)),
        }
    }
}

/// A caller by its session cookie; a request that changes anything must
/// also carry the session's anti-forgery token, which a page of another
/// site cannot know.
async fn from_session(parts: &Parts, state: &AppState, secret: String) -> Result<Caller, Response> {
    let session = live_session(state, secret)
        .await?
        .map_err(|e| refused(state, e))?;
    let safe = matches!(
        parts.method,
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    if !safe && sent != Some(session.csrf.as_str()) {
        state.metrics.rejected("csrf");
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            format!("a change made with a session needs its {CSRF_HEADER} header"),
        )
        .into_response());
    }
    Ok(Caller(session.principal.clone(), Some(session)))
}

/// The session a cookie's secret opens, or why it does not; the outer
/// error is the store failing.
pub(crate) async fn live_session(
    state: &AppState,
    secret: String,
) -> Result<Result<turncoat_auth::Session, AuthError>, Response> {
    state
        .read(move |store| {
            Ok(turncoat_auth::authenticate_session(
                store,
                &secret,
                Time::now(),
            ))
        })
        .await
        .map_err(IntoResponse::into_response)
}

/// The answer to credentials that do not hold, counted by reason.
fn refused(state: &AppState, e: AuthError) -> Response {
    if let AuthError::Store(e) = e {
        return Problem::from(e).into_response();
    }
    state.metrics.rejected(match e {
        AuthError::Revoked => "token_revoked",
        AuthError::Expired => "token_expired",
        _ => "invalid_credentials",
    });
    unauthorized(&e.to_string())
}

/// The session secret in a `Cookie` header, if any.
pub(crate) fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE)
}

/// The value of cookie `wanted` in the `Cookie` headers, if any.
pub(crate) fn cookie(headers: &axum::http::HeaderMap, wanted: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value.to_owned())
}

/// The token in an `Authorization` header: `Bearer TOKEN`, or the two
/// schemes log shippers offer where a bearer header cannot be set:
/// `Basic` with the token as the password (any user name) and
/// Elasticsearch's `ApiKey` (base64 of `ID:TOKEN`, any id).
fn token_of(header: &str) -> Option<String> {
    use base64::Engine;
    let (scheme, value) = header.split_once(' ')?;
    let value = value.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(value.to_owned());
    }
    if !(scheme.eq_ignore_ascii_case("basic") || scheme.eq_ignore_ascii_case("apikey")) {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    let pair = String::from_utf8(decoded).ok()?;
    pair.split_once(':').map(|(_, token)| token.to_owned())
}

fn unauthorized(detail: &str) -> Response {
    let mut response = Problem::new(StatusCode::UNAUTHORIZED, detail).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"turncoat\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::token_of;

    #[test]
    fn tokens_are_read_from_the_schemes_shippers_use() {
        assert_eq!(token_of("Bearer tct_1").as_deref(), Some("tct_1"));
        assert_eq!(token_of("bearer  tct_1 ").as_deref(), Some("tct_1"));
        // base64("beats:tct_2"), base64("id:tct_3")
        assert_eq!(token_of("Basic YmVhdHM6dGN0XzI=").as_deref(), Some("tct_2"));
        assert_eq!(token_of("ApiKey aWQ6dGN0XzM=").as_deref(), Some("tct_3"));
        assert_eq!(token_of("Basic !!!"), None);
        assert_eq!(token_of("Digest x"), None);
        assert_eq!(token_of("tct_1"), None);
    }
}
