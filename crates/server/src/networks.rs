//! `/api/v1/networks` (the address ranges that are the tenants' own, for
//! network analytics) and `/api/v1/advisories` (global intel), as
//! `turncoat network internal` and `turncoat intel` manage them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use turncoat_core::Advisory;
use turncoat_engine::beacons::Networks;
use turncoat_store::InternalNetwork;

use crate::api::{ListQuery, Params, remove_entry};
use crate::auth::Caller;
use crate::page::{Page, page};
use crate::{AppState, Problem};

/// The internal ranges: the global ones and those of the caller's tenants.
#[utoipa::path(get, path = "/networks", tag = "analytics", params(ListQuery),
    responses((status = 200, description = "A page of internal ranges", body = inline(Page<InternalNetwork>)),
        (status = 401, body = Problem), (status = 403, body = Problem)))]
pub(crate) async fn networks(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<ListQuery>,
) -> Result<Json<Page<InternalNetwork>>, Problem> {
    caller.may_read()?;
    let scope = caller.0.scope;
    let rows = state
        .read(move |store| Ok(store.internal_networks(&scope)?))
        .await?;
    Ok(Json(page(rows, |n| n.id, &query.paging())?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewNetwork {
    /// The tenant it is for; every tenant's (admins only) when absent.
    tenant: Option<String>,
    /// An IP or CIDR.
    cidr: String,
    #[serde(default)]
    note: String,
}

/// Adds an internal range (analysts, admins, write tokens; for every
/// tenant, admins only).
#[utoipa::path(post, path = "/networks", tag = "analytics", request_body = NewNetwork,
    responses((status = 201, description = "The range's id", body = i64, content_type = "application/json"),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn add_network(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewNetwork>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<i64>), Problem> {
    caller.must_triage()?;
    let Json(new) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
    let cidr = Networks::validate(&new.cidr).map_err(|e| Problem::bad_request(e.to_string()))?;
    let tenant = caller.entry_tenant(new.tenant.as_deref())?;
    let actor = caller.0.actor;
    let id = state
        .write(move |store| {
            Ok(store.add_internal_network(tenant.as_ref(), &cidr, &new.note, &actor)?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(id)))
}

/// Removes an internal range the caller may see (one for every tenant,
/// admins only).
#[utoipa::path(delete, path = "/networks/{id}", tag = "analytics",
    params(("id" = i64, Path, description = "The range's id")),
    responses((status = 204, description = "Removed"), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn remove_network(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    remove_entry(
        &state,
        caller,
        &id,
        "internal network",
        |store, scope, id| {
            let found = store
                .internal_networks(scope)?
                .into_iter()
                .find(|n| n.id == id);
            Ok(found.map(|n| n.tenant.is_none()))
        },
        |store, scope, id, actor| store.remove_internal_network(scope, id, actor),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The advisories (global intel, as vendors publish it), by id.
#[utoipa::path(get, path = "/advisories", tag = "intel", params(ListQuery),
    responses((status = 200, description = "A page of advisories", body = inline(Page<Advisory>)),
        (status = 401, body = Problem), (status = 403, body = Problem)))]
pub(crate) async fn advisories(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<ListQuery>,
) -> Result<Json<Page<Advisory>>, Problem> {
    caller.may_read()?;
    let mut rows = state.read(|store| Ok(store.advisories()?)).await?;
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(page(rows, |a| a.id.clone(), &query.paging())?))
}
