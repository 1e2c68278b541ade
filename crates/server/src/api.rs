//! `/api/v1` and the probes.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use turncoat_core::{Severity, Time};
use turncoat_engine::alerts::AlertRow;
use turncoat_store::{AlertFilter, Scope, Store};

use crate::auth::Caller;
use crate::{AppState, Problem};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/tenants", get(tenants))
        .route("/alerts", get(alerts))
}

/// The process is up.
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// The store can be read: the server can answer.
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<&'static str, Problem> {
    state
        .read(|store| store.tenants().map_err(Problem::from))
        .await
        .map_err(|p| Problem::new(StatusCode::SERVICE_UNAVAILABLE, p.detail))?;
    Ok("ready\n")
}

pub(crate) async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "no such resource")
}

/// A page of a list, as every list of the API answers: the items and the
/// cursor of the next page, `null` on the last.
#[derive(Serialize)]
struct Page<T> {
    items: Vec<T>,
    next: Option<String>,
}

/// The tenants the caller may see.
async fn tenants(caller: Caller) -> Result<Json<Vec<TenantRow>>, Problem> {
    caller.may_read()?;
    let rows = caller
        .0
        .scope
        .members()
        .iter()
        .map(|t| TenantRow {
            name: t.name().to_string(),
            created: t.created(),
        })
        .collect();
    Ok(Json(rows))
}

#[derive(Serialize)]
struct TenantRow {
    name: String,
    created: Time,
}

/// `GET /api/v1/alerts` filters, as the CLI's `alerts` takes them, plus
/// the ones a queue needs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertQuery {
    tenant: Option<String>,
    kind: Option<String>,
    status: Option<String>,
    /// This severity or higher.
    severity: Option<String>,
    /// Last seen at or after this time.
    since: Option<String>,
    /// Text in the title, source or endpoint, ignoring case.
    q: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1_000;

async fn alerts(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AlertQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page<AlertRow>>, Problem> {
    caller.may_read()?;
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let filter = AlertFilter {
        kind: word(&query.kind, "kind")?,
        status: word(&query.status, "status")?,
        endpoint: None,
        limit: None,
    };
    let min_severity: Option<Severity> = word(&query.severity, "severity")?;
    let since = query
        .since
        .as_deref()
        .map(Time::parse)
        .transpose()
        .map_err(|e| Problem::bad_request(format!("since: {e}")))?;
    let after = query.cursor.as_deref().map(Cursor::parse).transpose()?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let scope = narrowed(&caller.0.scope, query.tenant.as_deref())?;
    let needle = query.q.map(|q| q.to_lowercase());
    let mut rows = state
        .read(move |store| {
            turncoat_engine::alerts::list(store, &scope, &filter).map_err(Problem::from)
        })
        .await?;
    rows.retain(|row| {
        let (severity, last_seen, text) = match row {
            AlertRow::Campaign(c) => (c.severity, c.last_seen, [&*c.title, &*c.source, ""]),
            AlertRow::Alert(a) => (
                a.severity,
                a.last_seen,
                [&*a.title, &*a.source, &*a.endpoint],
            ),
        };
        min_severity.is_none_or(|m| severity >= m)
            && since.is_none_or(|s| last_seen >= s)
            && needle
                .as_deref()
                .is_none_or(|n| text.iter().any(|t| t.to_lowercase().contains(n)))
            && after.as_ref().is_none_or(|c| Cursor::of(row) > *c)
    });
    let next = (rows.len() > limit).then(|| Cursor::of(&rows[limit - 1]).to_string());
    rows.truncate(limit);
    Ok(Json(Page { items: rows, next }))
}

/// A query parameter that is one of a closed set of words.
fn word<T: std::str::FromStr<Err = turncoat_core::UnknownName>>(
    value: &Option<String>,
    what: &str,
) -> Result<Option<T>, Problem> {
    value
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| Problem::bad_request(format!("{what}: {e}")))
}

/// The caller's scope, or one tenant of it.
fn narrowed(scope: &Scope, tenant: Option<&str>) -> Result<Scope, Problem> {
    match tenant {
        None => Ok(scope.clone()),
        Some(name) => scope.get(name).map(Scope::tenant).ok_or_else(|| {
            // The same answer whether the tenant exists or not.
            Problem::new(StatusCode::NOT_FOUND, "no such tenant in your tenants")
        }),
    }
}

/// Where a page ends, in the queue's order: campaigns first, then by
/// severity (highest first), first seen, id. Keyed on values, not
/// positions, so rows raised between two requests neither repeat nor
/// vanish from the pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Cursor {
    alert: bool,
    severity_rank: u8,
    first_seen: i64,
    id: i64,
}

impl Cursor {
    fn of(row: &AlertRow) -> Cursor {
        let (alert, severity, first_seen) = match row {
            AlertRow::Campaign(c) => (false, c.severity, c.first_seen),
            AlertRow::Alert(a) => (true, a.severity, a.first_seen),
        };
        Cursor {
            alert,
            severity_rank: u8::MAX
                - Severity::ALL
                    .iter()
                    .position(|s| *s == severity)
                    .unwrap_or(0) as u8,
            first_seen: first_seen.0,
            id: row.id(),
        }
    }

    fn parse(text: &str) -> Result<Cursor, Problem> {
        let bad = || Problem::bad_request(format!("cursor {text:?} is not one this API gave"));
        let mut parts = text.split('.');
        let mut next = || {
            parts
                .next()
                .and_then(|p| p.parse::<i64>().ok())
                .ok_or_else(bad)
        };
        let cursor = Cursor {
            alert: next()? != 0,
            severity_rank: u8::try_from(next()?).map_err(|_| bad())?,
            first_seen: next()?,
            id: next()?,
        };
        Ok(cursor)
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}",
            u8::from(self.alert),
            self.severity_rank,
            self.first_seen,
            self.id
        )
    }
}
