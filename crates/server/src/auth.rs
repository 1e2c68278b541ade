//! Bearer tokens into principals.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use turncoat_auth::{AuthError, Principal};
use turncoat_core::{Role, Time, TokenScope};

use crate::{AppState, Problem};

/// The authenticated caller of a request.
pub(crate) struct Caller(pub Principal);

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
        let secret = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(token_of);
        let Some(secret) = secret else {
            state.metrics.rejected("unauthenticated");
            return Err(unauthorized("a bearer token is required"));
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
            Ok(principal) => Ok(Caller(principal)),
            Err(AuthError::Store(e)) => Err(Problem::from(e).into_response()),
            Err(e) => {
                state.metrics.rejected(match e {
                    AuthError::Revoked => "token_revoked",
                    AuthError::Expired => "token_expired",
                    _ => "invalid_credentials",
                });
                Err(unauthorized(&e.to_string()))
            }
        }
    }
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
