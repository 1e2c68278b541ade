//! `/api/v1/beacons` and `/api/v1/drift`: the network and behaviour
//! analyses over a tenant's stored records, as `beacons --tenant` and
//! `drift` print them, within the caller's tenants.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;

use crate::api::{Params, narrowed, tenant_in};
use crate::auth::Caller;
use crate::page::{Page, PageQuery, page};
use crate::{AppState, Problem};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct BeaconQuery {
    /// The tenant whose records to analyse; may be left out by a caller
    /// of one tenant.
    tenant: Option<String>,
    /// Only connections at or after this time (RFC 3339).
    since: Option<String>,
    /// Only pairs whose ranked score reaches this (default 0.5).
    min_score: Option<f64>,
    /// Also pairs between two internal addresses.
    #[serde(default)]
    include_internal: bool,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Ranked beacon, strobe and long-connection pairs of one tenant: the
/// rows of `beacons --tenant T --format json`, in rank order.
#[utoipa::path(get, path = "/beacons", tag = "analytics", params(BeaconQuery),
    responses((status = 200, description = "A page of ranked pairs", body = inline(Page<turncoat_engine::beacons::RankedRow>)),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn beacons(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<BeaconQuery>,
) -> Result<Json<Page<Value>>, Problem> {
    caller.may_read()?;
    let scope = &caller.0.scope;
    let tenant = match (&query.tenant, scope.members()) {
        (Some(name), _) => tenant_in(scope, name)?.clone(),
        (None, [only]) => only.clone(),
        (None, _) => {
            return Err(Problem::bad_request(
                "give tenant: beacons are one tenant's",
            ));
        }
    };
    let since = crate::api::time_param("since", query.since.as_deref())?;
    let min_score = query.min_score.unwrap_or(0.5);
    let include_internal = query.include_internal;
    let rows = state
        .read(move |store| {
            let report = turncoat_engine::beacons::analyze_stored(
                store,
                &tenant,
                since,
                min_score,
                include_internal,
            )?;
            serde_json::to_value(report.ranked()).map_err(|e| Problem::internal(&e))
        })
        .await?;
    let rows: Vec<(usize, Value)> = match rows {
        Value::Array(rows) => rows.into_iter().enumerate().collect(),
        _ => Vec::new(),
    };
    ranked_page(rows, query.limit, query.cursor)
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct DriftQuery {
    /// One of the caller's tenants (default: all of them).
    tenant: Option<String>,
    /// Only behaviours seen in at least this many of those tenants.
    min_tenants: Option<usize>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// New behaviour per application version across the caller's tenants
/// (never counting another's): the rows of `drift --format json`.
#[utoipa::path(get, path = "/drift", tag = "analytics", params(DriftQuery),
    responses((status = 200, description = "A page of drift rows", body = inline(Page<turncoat_engine::drift::DriftRow>)),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn drift(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<DriftQuery>,
) -> Result<Json<Page<Value>>, Problem> {
    caller.may_read()?;
    let scope = narrowed(&caller.0.scope, query.tenant.as_deref())?;
    let min_tenants = query.min_tenants.unwrap_or(1);
    let rows = state
        .read(move |store| {
            let rows = turncoat_engine::drift::analyze(store, scope.members(), min_tenants)?;
            serde_json::to_value(rows).map_err(|e| Problem::internal(&e))
        })
        .await?;
    let rows: Vec<(usize, Value)> = match rows {
        Value::Array(rows) => rows.into_iter().enumerate().collect(),
        _ => Vec::new(),
    };
    ranked_page(rows, query.limit, query.cursor)
}

/// A page of rows in the analysis's own order, the position as the key.
fn ranked_page(
    rows: Vec<(usize, Value)>,
    limit: Option<usize>,
    cursor: Option<String>,
) -> Result<Json<Page<Value>>, Problem> {
    let paged = page(rows, |(i, _)| *i, &PageQuery { limit, cursor })?;
    Ok(Json(Page {
        items: paged.items.into_iter().map(|(_, v)| v).collect(),
        next: paged.next,
    }))
}
