//! `/api/v1/suppressions`: rules that close matching alerts until they
//! end, as `turncoat suppress` manages them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use turncoat_core::{AlertId, AlertKind};
use turncoat_store::{NewSuppression, Suppression};

use crate::api::{ListQuery, Params, remove_entry};
use crate::auth::Caller;
use crate::page::{Page, page};
use crate::{AppState, Problem};

/// The live suppressions: the global ones and those of the caller's
/// tenants.
#[utoipa::path(get, path = "/suppressions", tag = "triage", params(ListQuery),
    responses((status = 200, description = "A page of live suppressions", body = inline(Page<Suppression>)),
        (status = 401, body = Problem), (status = 403, body = Problem)))]
pub(crate) async fn suppressions(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<ListQuery>,
) -> Result<Json<Page<Suppression>>, Problem> {
    caller.may_read()?;
    let scope = caller.0.scope;
    let rows = state
        .read(move |store| Ok(store.suppressions(&scope)?))
        .await?;
    Ok(Json(page(rows, |s| s.id, &query.paging())?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewSuppressionBody {
    /// The tenant it is for; every tenant's (admins only) when absent.
    tenant: Option<String>,
    /// Only alerts of this kind.
    kind: Option<String>,
    /// The alert source it matches, ignoring case.
    source: String,
    /// Only this endpoint's alerts.
    endpoint: Option<String>,
    reason: String,
    /// When it ends (RFC 3339); never when absent.
    expires: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Added {
    #[serde(flatten)]
    suppression: Suppression,
    /// The open alerts it closed.
    suppressed: Vec<AlertId>,
}

/// Adds a suppression (analysts, admins, write tokens; for every tenant,
/// admins only) and closes the open alerts it matches.
#[utoipa::path(post, path = "/suppressions", tag = "triage", request_body = NewSuppressionBody,
    responses((status = 201, description = "The suppression and the alerts it closed", body = Added),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn add_suppression(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewSuppressionBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Added>), Problem> {
    caller.must_triage()?;
    let Json(new) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
    let tenant = caller.entry_tenant(new.tenant.as_deref())?;
    let kind: Option<AlertKind> = new
        .kind
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| Problem::bad_request(format!("kind: {e}")))?;
    let expires = crate::api::time_param("expires", new.expires.as_deref())?;
    let actor = caller.0.actor;
    let (suppression, suppressed) = state
        .write(move |store| {
            let entry = NewSuppression {
                kind,
                source: &new.source,
                endpoint: new.endpoint.as_deref(),
                reason: &new.reason,
                expires,
            };
            Ok(turncoat_engine::triage::suppress(
                store,
                tenant.as_ref(),
                &entry,
                &actor,
            )?)
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Added {
            suppression,
            suppressed,
        }),
    ))
}

/// Ends a suppression the caller may see (one for every tenant, admins
/// only); the alerts it holds resurface.
#[utoipa::path(delete, path = "/suppressions/{id}", tag = "triage",
    params(("id" = i64, Path, description = "The suppression's id")),
    responses((status = 200, description = "The alerts that resurfaced", body = Vec<i64>),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 401, body = Problem)))]
pub(crate) async fn remove_suppression(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<AlertId>>, Problem> {
    let back = remove_entry(
        &state,
        caller,
        &id,
        "suppression",
        |store, scope, id| {
            let found = store.suppressions(scope)?.into_iter().find(|s| s.id == id);
            Ok(found.map(|s| s.tenant.is_none()))
        },
        |store, scope, id, actor| store.remove_suppression(scope, id, actor),
    )
    .await?;
    Ok(Json(back))
}
