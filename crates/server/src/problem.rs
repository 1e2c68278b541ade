//! Errors as RFC 9457 problem details (`application/problem+json`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use turncoat_store::StoreError;

/// A problem a request ran into, answered as `application/problem+json`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(serialize_with = "status_code")]
    #[schema(value_type = u16)]
    pub status: StatusCode,
    /// The status's reason phrase; `type` is left out, so it reads as
    /// `about:blank`: the status says it all.
    pub title: String,
    pub detail: String,
    /// Seconds to wait before trying again (429, 503): the
    /// `Retry-After` header.
    #[serde(skip)]
    #[schema(ignore)]
    pub retry_after: Option<u64>,
}

fn status_code<S: serde::Serializer>(status: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u16(status.as_u16())
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// Too much at once: try again in `seconds`.
    pub fn too_many_requests(detail: impl Into<String>, seconds: u64) -> Problem {
        Problem {
            retry_after: Some(seconds),
            ..Problem::new(StatusCode::TOO_MANY_REQUESTS, detail)
        }
    }

    /// Cannot answer now: try again in `seconds`.
    pub fn unavailable(detail: impl Into<String>, seconds: u64) -> Problem {
        Problem {
            retry_after: Some(seconds),
            ..Problem::new(StatusCode::SERVICE_UNAVAILABLE, detail)
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, detail)
    }

    /// Logged whole; the caller learns only that it happened.
    pub fn internal(e: &dyn std::error::Error) -> Problem {
        tracing::error!(error = %e, "request failed");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server could not answer; the error is in its log",
        )
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Problem {
        match e {
            StoreError::OutOfScope(_)
            | StoreError::NoSuchTenant { .. }
            | StoreError::NoSuchSuppression(_)
            | StoreError::NoSuchUser(_)
            | StoreError::NoSuchToken(_)
            | StoreError::NoSuchFeed(_)
            | StoreError::NoSuchTarget(_) => {
                // Not 403: whether something exists outside one's scope
                // is itself another tenant's information.
                Problem::new(StatusCode::NOT_FOUND, "no such resource in your tenants")
            }
            StoreError::TenantExists { .. }
            | StoreError::UserExists(_)
            | StoreError::FeedExists(_) => Problem::new(StatusCode::CONFLICT, e.to_string()),
            StoreError::Locked { .. } | StoreError::NoStore(_) => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            other => Problem::internal(&other),
        }
    }
}

impl From<turncoat_engine::EngineError> for Problem {
    fn from(e: turncoat_engine::EngineError) -> Problem {
        match e {
            turncoat_engine::EngineError::Store(s) => Problem::from(s),
            // What was sent does not read: the caller's to fix.
            e @ (turncoat_engine::EngineError::Input { .. }
            | turncoat_engine::EngineError::InvalidEntry(_)
            | turncoat_engine::EngineError::Triage(_)) => Problem::bad_request(e.to_string()),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(&self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
