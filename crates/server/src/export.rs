//! `GET /api/v1/exports/blocklist`: `turncoat export blocklist` over
//! HTTP, for a resolver, sensor or SIEM to pull on a schedule.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use turncoat_core::{IndicatorKind, Time};
use turncoat_respond::Format;

use crate::api::{Params, tenant_in};
use crate::auth::Caller;
use crate::{AppState, Problem};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct BlocklistQuery {
    /// rpz, suricata, suricata-sha256, hosts, csv or stix.
    format: String,
    /// For this tenant of the caller's: its allowlist applies too.
    tenant: Option<String>,
    /// With `tenant`: only what the tenant has seen.
    seen: Option<bool>,
    /// Kinds, comma-separated: domain, ip, url, sha256.
    kind: Option<String>,
    /// At least this stated confidence (0-100).
    min_confidence: Option<u8>,
    /// Only entries added or changed since (RFC 3339).
    since: Option<String>,
}

/// The active indicators as a blocklist: not revoked, not expired, not
/// allowlisted; ordered by kind and value, so that two pulls differ by
/// what changed. The RPZ zone's serial grows with every change.
#[utoipa::path(get, path = "/exports/blocklist", tag = "respond", params(BlocklistQuery),
    responses((status = 200, description = "The blocklist in the format asked for",
            content((String = "text/dns"), (String = "text/plain"), (String = "text/csv"),
                (Object = "application/stix+json;version=2.1"))),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, description = "No such tenant", body = Problem)))]
pub(crate) async fn blocklist(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<BlocklistQuery>,
) -> Result<Response, Problem> {
    caller.may_read()?;
    let format: Format = query.format.parse().map_err(Problem::bad_request)?;
    let tenant = query
        .tenant
        .as_deref()
        .map(|t| tenant_in(&caller.0.scope, t).cloned())
        .transpose()?;
    let seen = query.seen.unwrap_or(false);
    if seen && tenant.is_none() {
        return Err(Problem::bad_request("seen needs a tenant"));
    }
    let kinds = query
        .kind
        .iter()
        .flat_map(|k| k.split(','))
        .map(|k| {
            k.trim()
                .parse::<IndicatorKind>()
                .ok()
                .filter(|k| turncoat_engine::export::KINDS.contains(k))
                .ok_or_else(|| {
                    Problem::bad_request(format!("kind {k:?}: domain, ip, url or sha256"))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if query.min_confidence.is_some_and(|c| c > 100) {
        return Err(Problem::bad_request("min_confidence: 0 to 100"));
    }
    let since = crate::api::time_param("since", query.since.as_deref())?;
    let min_confidence = query.min_confidence;
    let text = state
        .read(move |store| {
            let selection = turncoat_engine::export::Selection {
                tenant: tenant.as_ref(),
                seen,
                kinds,
                min_confidence,
                since,
            };
            let now = Time::now();
            let list = turncoat_engine::export::blocklist(store, &selection, now)?;
            Ok(turncoat_respond::render(&list, format, now))
        })
        .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.media_type()),
        )],
        text,
    )
        .into_response())
}
