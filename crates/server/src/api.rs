//! `/api/v1` and the probes.

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use turncoat_core::Actor;
use turncoat_core::Time;
use turncoat_core::{Role, TenantName};
use turncoat_engine::ExposureRow;
use turncoat_engine::alerts::{AlertRow, OrderKey, Selection};
use turncoat_engine::campaign::CampaignRow;
use turncoat_store::{
    Alert, AlertChange, AlertFilter, AlertOrder, AllowEntry, AuditEntry, Scope, Store, StoreError,
    StoredRule, Tenant,
};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::page::{DEFAULT_LIMIT, MAX_LIMIT, Page, PageQuery, page};
use crate::{AppState, Problem};

/// Every `/api/v1` route, each documented by its handler's annotation.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    let uploads = || axum::extract::DefaultBodyLimit::max(MAX_UPLOAD_BYTES);
    let unlimited = axum::extract::DefaultBodyLimit::disable;
    OpenApiRouter::new()
        .routes(routes!(tenants, add_tenant))
        .routes(routes!(campaigns))
        .routes(routes!(audit))
        .routes(routes!(allowlists, add_allow))
        .routes(routes!(remove_allow))
        .routes(routes!(indicators, import_intel).layer(uploads()))
        .routes(routes!(rules, import_rules).layer(uploads()))
        .routes(routes!(alerts))
        .routes(routes!(alert))
        .routes(routes!(set_status))
        .routes(routes!(assign))
        .routes(routes!(bulk_status))
        .routes(routes!(comment))
        .routes(routes!(exposure))
        .routes(routes!(
            crate::suppressions::suppressions,
            crate::suppressions::add_suppression
        ))
        .routes(routes!(crate::suppressions::remove_suppression))
        .routes(routes!(crate::analytics::beacons))
        .routes(routes!(crate::analytics::drift))
        .routes(routes!(crate::session::login))
        .routes(routes!(crate::session::logout))
        .routes(routes!(crate::session::session))
        .routes(routes!(crate::people::users, crate::people::add_user))
        .routes(routes!(crate::people::tokens, crate::people::create_token))
        .routes(routes!(crate::people::revoke_token))
        .routes(routes!(
            crate::networks::networks,
            crate::networks::add_network
        ))
        .routes(routes!(crate::networks::remove_network))
        .routes(routes!(crate::networks::advisories))
        .routes(routes!(crate::export::blocklist))
        .routes(
            routes!(crate::vet::vet).layer(axum::extract::DefaultBodyLimit::max(
                2 * crate::vet::MAX_ARTIFACT_BYTES + (1 << 20),
            )),
        )
        .routes(routes!(crate::ingest::ingest).layer(unlimited()))
        .routes(routes!(crate::ingest::bulk::bulk).layer(unlimited()))
        .routes(routes!(crate::ingest::bulk::cluster_info))
        .routes(routes!(crate::batches::batch))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "probes", security(()),
    responses((status = 200, description = "The process is up", body = String)))]
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// The store can be read: the server can answer.
#[utoipa::path(get, path = "/readyz", tag = "probes", security(()),
    responses((status = 200, description = "The store can be read", body = String),
        (status = 503, body = Problem)))]
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

/// Query parameters, refused as problem details when they do not read
/// (an unknown parameter, a number that is not one).
pub(crate) struct Params<T>(pub T);

impl<T, S> FromRequestParts<S> for Params<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Params<T>, Problem> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| Params(t))
            .map_err(|e| Problem::bad_request(e.body_text()))
    }
}

/// The tenants the caller may see.
#[utoipa::path(get, path = "/tenants", tag = "tenants",
    responses((status = 200, body = Vec<TenantRow>), (status = 401, description = "No valid token", body = Problem), (status = 403, description = "The token may not read", body = Problem)))]
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

#[derive(Serialize, utoipa::ToSchema)]
struct TenantRow {
    name: String,
    #[schema(value_type = String, format = DateTime)]
    created: Time,
}

/// `GET /api/v1/alerts` filters, as the CLI's `alerts` takes them, plus
/// the ones a queue needs.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlertQuery {
    pub tenant: Option<String>,
    pub kind: Option<String>,
    pub status: Option<String>,
    /// This severity or higher.
    pub severity: Option<String>,
    /// Last seen at or after this time.
    pub since: Option<String>,
    /// Text in the title, source or endpoint, ignoring case.
    pub q: Option<String>,
    /// Assigned to this user.
    pub assignee: Option<String>,
    /// `severity` (the default: highest first, then earliest first seen)
    /// or `newest` (latest last seen first). Campaigns come first either way.
    pub sort: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

impl AlertQuery {
    pub(crate) fn selection(&self) -> Result<Selection, Problem> {
        Ok(Selection {
            filter: AlertFilter {
                kind: word(&self.kind, "kind")?,
                status: word(&self.status, "status")?,
                endpoint: None,
                limit: None,
            },
            min_severity: word(&self.severity, "severity")?,
            since: time_param("since", self.since.as_deref())?,
            text: self.q.clone(),
            assignee: self.assignee.clone(),
            order: match self.sort.as_deref() {
                None | Some("severity") => AlertOrder::Severity,
                Some("newest") => AlertOrder::Newest,
                Some(other) => {
                    return Err(Problem::bad_request(format!(
                        "sort {other:?}: severity or newest"
                    )));
                }
            },
        })
    }
}

#[utoipa::path(get, path = "/alerts", tag = "alerts", params(AlertQuery),
    responses((status = 200, description = "A page of alerts and campaign rows, as `alerts --format json` prints them", body = inline(Page<AlertRow>)),
        (status = 400, body = Problem), (status = 401, description = "No valid token", body = Problem), (status = 403, description = "The token may not read", body = Problem)))]
async fn alerts(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<AlertQuery>,
) -> Result<Json<Page<AlertRow>>, Problem> {
    caller.may_read()?;
    alert_page(&state, &caller.0.scope, &query).await.map(Json)
}

/// The page of the queue `query` selects within `scope`: the API's and
/// the console's.
pub(crate) async fn alert_page(
    state: &AppState,
    scope: &Scope,
    query: &AlertQuery,
) -> Result<Page<AlertRow>, Problem> {
    let selection = query.selection()?;
    let order = selection.order;
    let scope = narrowed(scope, query.tenant.as_deref())?;
    let after: Option<OrderKey> = query
        .cursor
        .as_deref()
        .map(crate::page::decode)
        .transpose()?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let (items, more) = state
        .read(move |store| {
            turncoat_engine::alerts::select_page(store, &scope, &selection, after.as_ref(), limit)
                .map_err(Problem::from)
        })
        .await?;
    let next = if more {
        items
            .last()
            .map(|r| crate::page::encode(&r.order_key(order)))
    } else {
        None
    };
    Ok(Page { items, next })
}

/// A time parameter (RFC 3339) named `name`, when given.
pub(crate) fn time_param(name: &str, value: Option<&str>) -> Result<Option<Time>, Problem> {
    value
        .map(Time::parse)
        .transpose()
        .map_err(|e| Problem::bad_request(format!("{name}: {e}")))
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
pub(crate) fn narrowed(scope: &Scope, tenant: Option<&str>) -> Result<Scope, Problem> {
    match tenant {
        None => Ok(scope.clone()),
        Some(name) => tenant_in(scope, name).map(Scope::tenant),
    }
}

/// The tenant of the caller's scope named `name`; the same answer
/// whether another tenant of that name exists or not.
pub(crate) fn tenant_in<'s>(scope: &'s Scope, name: &str) -> Result<&'s Tenant, Problem> {
    scope
        .get(name)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "no such tenant in your tenants"))
}

/// One alert with its evidence and the history of its triage.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AlertDetail {
    #[serde(flatten)]
    pub alert: Alert,
    /// Status changes, assignments, comments and resurfacing, oldest
    /// first, with who made them.
    pub history: Vec<AlertChange>,
}

#[utoipa::path(get, path = "/alerts/{id}", tag = "alerts",
    params(("id" = i64, Path, description = "The alert's id")),
    responses((status = 200, description = "The alert with its evidence and history", body = AlertDetail),
        (status = 404, description = "No such alert in the caller's tenants", body = Problem), (status = 401, description = "No valid token", body = Problem), (status = 403, description = "The token may not read", body = Problem)))]
async fn alert(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AlertDetail>, Problem> {
    caller.may_read()?;
    let id = alert_id(&id)?;
    let scope = caller.0.scope;
    state
        .read(move |store| alert_detail(store, &scope, id))
        .await
        .map(Json)
}

/// Any id the caller may not see is answered as one that does not
/// exist: ids are counted across tenants.
fn no_such_alert() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "no such alert in your tenants")
}

fn alert_id(text: &str) -> Result<i64, Problem> {
    text.parse().map_err(|_| no_such_alert())
}

pub(crate) fn alert_detail(
    store: &dyn Store,
    scope: &Scope,
    id: i64,
) -> Result<AlertDetail, Problem> {
    let alert = store
        .alert(scope, turncoat_core::AlertId::new(id))?
        .ok_or_else(no_such_alert)?;
    let history = store.alert_history(scope, alert.id)?;
    Ok(AlertDetail { alert, history })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StatusChange {
    status: String,
    reason: Option<String>,
}

/// Sets an alert's triage status (analysts, admins, write tokens); a
/// false positive or a suppression needs a reason. Answers the alert as
/// it now is, history included.
#[utoipa::path(post, path = "/alerts/{id}/status", tag = "triage",
    params(("id" = i64, Path, description = "The alert's id")), request_body = StatusChange,
    responses((status = 200, description = "The alert as it now is", body = AlertDetail),
        (status = 400, description = "An unknown status, or a dismissal without a reason", body = Problem),
        (status = 404, body = Problem), (status = 401, description = "No valid token", body = Problem), (status = 403, description = "The token may not read", body = Problem)))]
async fn set_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<StatusChange>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<AlertDetail>, Problem> {
    caller.must_triage()?;
    let id = alert_id(&id)?;
    let Json(change) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
    let status = word(&Some(change.status), "status")?.expect("given");
    let (scope, actor) = (caller.0.scope, caller.0.actor);
    state
        .write(move |store| {
            turncoat_engine::triage::set_status(
                store,
                &scope,
                turncoat_core::AlertId::new(id),
                status,
                change.reason.as_deref(),
                &actor,
            )?;
            alert_detail(store, &scope, id)
        })
        .await
        .map(Json)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct BulkStatus {
    status: String,
    /// Required for false-positive and suppressed, as for one alert.
    reason: Option<String>,
    /// Only count what the selection holds; change nothing.
    #[serde(default)]
    preview: bool,
}

/// Sets the status of every alert the query selects, with the queue's
/// filters (`GET /alerts`'s parameters, without paging); `preview`
/// answers the count first.
#[utoipa::path(post, path = "/alerts/bulk-status", tag = "triage", params(AlertQuery),
    request_body = BulkStatus,
    responses((status = 200, description = "How many the selection held and which changed", body = turncoat_engine::triage::BulkOutcome),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn bulk_status(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<AlertQuery>,
    body: Result<Json<BulkStatus>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<turncoat_engine::triage::BulkOutcome>, Problem> {
    caller.must_triage()?;
    if query.limit.is_some() || query.cursor.is_some() {
        return Err(Problem::bad_request(
            "a bulk change takes the whole selection: no limit or cursor",
        ));
    }
    let Json(change) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
    let status = word(&Some(change.status), "status")?.expect("given");
    let selection = query.selection()?;
    let scope = narrowed(&caller.0.scope, query.tenant.as_deref())?;
    let actor = caller.0.actor;
    state
        .write(move |store| {
            Ok(turncoat_engine::triage::bulk_status(
                store,
                &scope,
                &selection,
                status,
                change.reason.as_deref(),
                change.preview,
                &actor,
            )?)
        })
        .await
        .map(Json)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Assignment {
    /// An analyst or admin; `null` to unassign.
    assignee: Option<String>,
}

/// Assigns an alert (analysts, admins, write tokens).
#[utoipa::path(post, path = "/alerts/{id}/assign", tag = "triage",
    params(("id" = i64, Path, description = "The alert's id")), request_body = Assignment,
    responses((status = 200, description = "The alert as it now is", body = AlertDetail),
        (status = 400, description = "No such analyst or admin", body = Problem),
        (status = 404, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<Assignment>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<AlertDetail>, Problem> {
    caller.must_triage()?;
    let id = alert_id(&id)?;
    let Json(change) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
    let (scope, actor) = (caller.0.scope, caller.0.actor);
    state
        .write(move |store| {
            let alert = turncoat_core::AlertId::new(id);
            turncoat_engine::triage::assign(
                store,
                &scope,
                alert,
                change.assignee.as_deref(),
                &actor,
            )?;
            alert_detail(store, &scope, id)
        })
        .await
        .map(Json)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewComment {
    text: String,
}

/// Comments on an alert (analysts, admins, write tokens).
#[utoipa::path(post, path = "/alerts/{id}/comments", tag = "triage",
    params(("id" = i64, Path, description = "The alert's id")), request_body = NewComment,
    responses((status = 201, description = "The alert with the comment in its history", body = AlertDetail),
        (status = 400, body = Problem), (status = 404, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn comment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<NewComment>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<AlertDetail>), Problem> {
    caller.must_triage()?;
    let id = alert_id(&id)?;
    let Json(new) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
    let (scope, actor) = (caller.0.scope, caller.0.actor);
    let detail = state
        .write(move |store| {
            let alert = turncoat_core::AlertId::new(id);
            turncoat_engine::triage::comment(store, &scope, alert, &new.text, &actor)?;
            alert_detail(store, &scope, id)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(detail)))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ExposureQuery {
    tenant: Option<String>,
    advisory: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Who runs or ran an affected version, and when: the CLI's `exposure`.
#[utoipa::path(get, path = "/exposure", tag = "exposure", params(ExposureQuery),
    responses((status = 200, description = "A page of exposure rows, as `exposure --format json` prints them", body = inline(Page<ExposureRow>)),
        (status = 400, body = Problem), (status = 404, description = "No such tenant or advisory", body = Problem), (status = 401, description = "No valid token", body = Problem), (status = 403, description = "The token may not read", body = Problem)))]
async fn exposure(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<ExposureQuery>,
) -> Result<Json<Page<ExposureRow>>, Problem> {
    caller.may_read()?;
    let scope = narrowed(&caller.0.scope, query.tenant.as_deref())?;
    let advisory = query.advisory;
    let rows = state
        .read(move |store| {
            if let Some(id) = &advisory
                && !store.advisories()?.iter().any(|a| &a.id == id)
            {
                return Err(Problem::new(
                    StatusCode::NOT_FOUND,
                    format!("no advisory {id:?}"),
                ));
            }
            Ok(turncoat_engine::exposure(
                store,
                &scope,
                advisory.as_deref(),
            )?)
        })
        .await?;
    let paging = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let key = |r: &ExposureRow| {
        let (tenant, endpoint, advisory, from, product, version) = r.order_key();
        (
            tenant.to_owned(),
            endpoint.to_owned(),
            advisory.to_owned(),
            from,
            product.to_owned(),
            version.to_owned(),
        )
    };
    Ok(Json(page(rows, key, &paging)?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: String,
}

/// Adds a tenant (admins only): 201 with it, 409 when the name is taken
/// (ignoring case).
#[utoipa::path(post, path = "/tenants", tag = "tenants", request_body = NewTenant,
    responses((status = 201, body = TenantRow), (status = 400, body = Problem),
        (status = 409, description = "The name is taken", body = Problem), (status = 401, description = "No valid token", body = Problem), (status = 403, description = "The token may not read", body = Problem)))]
async fn add_tenant(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewTenant>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<TenantRow>), Problem> {
    caller.must_be_admin()?;
    let Json(new) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
    let name = TenantName::new(&new.name).map_err(|e| Problem::bad_request(e.to_string()))?;
    let actor = caller.0.actor;
    let tenant = state
        .write(move |store| Ok(store.add_tenant(&name, &actor)?))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TenantRow {
            name: tenant.name().to_string(),
            created: tenant.created(),
        }),
    ))
}

/// `limit` and `cursor` alone, for lists without filters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

impl ListQuery {
    pub(crate) fn paging(self) -> PageQuery {
        PageQuery {
            limit: self.limit,
            cursor: self.cursor,
        }
    }
}

/// Campaigns (the same detection in several tenants) with members in the
/// caller's tenants; one shared with others is cut to the caller's own
/// members and names no other tenant (`beyond_scope`).
#[utoipa::path(get, path = "/campaigns", tag = "campaigns", params(ListQuery),
    responses((status = 200, description = "A page of the campaigns the caller's tenants take part in", body = inline(Page<CampaignRow>)), (status = 401, description = "No valid token", body = Problem), (status = 403, description = "The token may not read", body = Problem)))]
async fn campaigns(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<ListQuery>,
) -> Result<Json<Page<CampaignRow>>, Problem> {
    caller.may_read()?;
    let paging = query.paging();
    let scope = caller.0.scope;
    let mut rows = state
        .read(move |store| {
            Ok(turncoat_engine::campaign::campaign_rows(
                store,
                &scope,
                0,
                i64::MAX,
            )?)
        })
        .await?;
    rows.sort_by_key(|c| c.id);
    Ok(Json(page(rows, |c| c.id, &paging)?))
}

/// The audit log, newest first. Entries not bound to a tenant (users,
/// intel, rules) may name any tenant, so only admins see them.
#[utoipa::path(get, path = "/audit", tag = "audit", params(ListQuery),
    responses((status = 200, description = "A page of the audit log, newest first", body = inline(Page<AuditEntry>)), (status = 401, description = "No valid token", body = Problem), (status = 403, description = "The token may not read", body = Problem)))]
async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<ListQuery>,
) -> Result<Json<Page<AuditEntry>>, Problem> {
    caller.may_read()?;
    let paging = query.paging();
    let admin = caller.0.role == Role::Admin && caller.0.token_scope.is_none();
    let scope = caller.0.scope;
    let mut rows = state
        .read(move |store| Ok(store.audit_log(&scope, usize::MAX)?))
        .await?;
    rows.retain(|e| admin || e.tenant.is_some());
    Ok(Json(page(rows, |e| std::cmp::Reverse(e.id), &paging)?))
}

/// Allowlist entries: the global ones and those of the caller's tenants.
#[utoipa::path(get, path = "/allowlists", tag = "allowlists", params(ListQuery),
    responses((status = 200, description = "A page of allowlist entries", body = inline(Page<AllowEntry>)), (status = 401, description = "No valid token", body = Problem), (status = 403, description = "The token may not read", body = Problem)))]
async fn allowlists(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<ListQuery>,
) -> Result<Json<Page<AllowEntry>>, Problem> {
    caller.may_read()?;
    let paging = query.paging();
    let scope = caller.0.scope;
    let rows = state
        .read(move |store| Ok(store.allowlist(&scope)?))
        .await?;
    Ok(Json(page(rows, |e| e.id, &paging)?))
}

/// Detection rules (global), by id.
#[utoipa::path(get, path = "/rules", tag = "rules", params(ListQuery),
    responses((status = 200, description = "A page of the stored detection rules", body = inline(Page<StoredRule>)), (status = 401, description = "No valid token", body = Problem), (status = 403, description = "The token may not read", body = Problem)))]
async fn rules(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<ListQuery>,
) -> Result<Json<Page<StoredRule>>, Problem> {
    caller.may_read()?;
    let paging = query.paging();
    let mut rows = state.read(|store| Ok(store.rules()?)).await?;
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(page(rows, |r| r.id.clone(), &paging)?))
}

/// The largest upload taken (a whole MISP or OSV export, a rule pack).
const MAX_UPLOAD_BYTES: usize = 512 << 20;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct IntelQuery {
    /// The input format; told by content when absent.
    format: Option<String>,
    /// The file name: the feed the indicators are recorded from.
    name: Option<String>,
}

/// Imports one intel file sent as the body (admins only) and answers the
/// import's report, retro-hunt included: `turncoat intel import`'s. A
/// file that does not read is 400.
#[utoipa::path(post, path = "/intel", tag = "intel", params(IntelQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "An intel file: STIX 2.1, MISP, OSV, CSV, advisory TOML, ..."),
    responses((status = 200, description = "The import and retro-hunt report, as `intel import --format json` prints it", body = turncoat_engine::intel::IntelReport),
        (status = 400, body = Problem), (status = 413, body = Problem), (status = 401, description = "No valid token", body = Problem), (status = 403, description = "The token may not read", body = Problem)))]
async fn import_intel(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<IntelQuery>,
    body: axum::body::Body,
) -> Result<Json<serde_json::Value>, Problem> {
    caller.must_be_admin()?;
    let format: Option<turncoat_formats::intel::IntelFormat> = word(&query.format, "format")?;
    let name = upload_name(query.name.as_deref(), "upload")?;
    let actor = caller.0.actor;
    let hand_off = state.hand_off();
    import_upload(&state, body, &name, move |store, path| {
        let report = crate::handoff::import_intel(
            hand_off.as_ref(),
            store,
            &[path.to_owned()],
            format,
            &turncoat_engine::NoProgress,
            &actor,
        )?;
        match report.files.iter().find_map(|f| f.error.as_ref()) {
            Some(error) => Err(Problem::bad_request(error.clone())),
            None => Ok(report),
        }
    })
    .await
    .map(Json)
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct RulesQuery {
    /// The file name, ending in `.yml` or `.yaml`.
    name: Option<String>,
    /// Rule statuses to leave out (`deprecated,unsupported`).
    exclude_status: Option<String>,
}

/// Imports the Sigma rules of one YAML file sent as the body (admins
/// only): they run on every ingested event from now on, and those new or
/// changed over the stored archive; `turncoat rules import`'s report.
#[utoipa::path(post, path = "/rules", tag = "rules", params(RulesQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "A Sigma rule file (YAML)"),
    responses((status = 200, description = "The import report", body = turncoat_engine::rules::RulesReport),
        (status = 400, body = Problem), (status = 413, body = Problem), (status = 401, description = "No valid token", body = Problem), (status = 403, description = "The token may not read", body = Problem)))]
async fn import_rules(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<RulesQuery>,
    body: axum::body::Body,
) -> Result<Json<serde_json::Value>, Problem> {
    caller.must_be_admin()?;
    let name = upload_name(query.name.as_deref(), "upload.yml")?;
    if !(name.ends_with(".yml") || name.ends_with(".yaml")) {
        return Err(Problem::bad_request(
            "name: a rule file ends in .yml or .yaml",
        ));
    }
    let exclude: Vec<String> = query
        .exclude_status
        .iter()
        .flat_map(|s| s.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let actor = caller.0.actor;
    let hand_off = state.hand_off();
    import_upload(&state, body, &name, move |store, path| {
        Ok(crate::handoff::import_rules(
            hand_off.as_ref(),
            store,
            &[path.to_owned()],
            path.parent(),
            &exclude,
            &turncoat_engine::NoProgress,
            &actor,
        )?)
    })
    .await
    .map(Json)
}

/// Spools the body to a temporary file named `name`, runs `import` on it
/// with the writer, and answers its report. The import names its input
/// by the spooled path; the caller knows it by the name it gave, and the
/// server's paths are nobody's business, so they are taken out of the
/// report and of any problem.
async fn import_upload<R, F>(
    state: &AppState,
    body: axum::body::Body,
    name: &str,
    import: F,
) -> Result<serde_json::Value, Problem>
where
    R: Serialize + Send + 'static,
    F: FnOnce(&mut dyn Store, &std::path::Path) -> Result<R, Problem> + Send + 'static,
{
    let spool = tempfile::tempdir().map_err(|e| Problem::internal(&e))?;
    let path = spool.path().join(name);
    spool_body(body, &path, MAX_UPLOAD_BYTES).await?;
    let spooled = format!("{}/", spool.path().display());
    let result = state
        .write(move |store| {
            let report = import(store, &path);
            drop(spool);
            report
        })
        .await;
    let report = result.map_err(|mut p| {
        p.detail = p.detail.replace(&spooled, "");
        p
    })?;
    let text = serde_json::to_string(&report)
        .map_err(|e| Problem::internal(&e))?
        .replace(&spooled, "");
    serde_json::from_str(&text).map_err(|e| Problem::internal(&e))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct IndicatorQuery {
    /// Only indicators of this feed.
    source: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// The stored indicators (global intel), by id, as `intel list --format
/// json` prints them.
#[utoipa::path(get, path = "/intel", tag = "intel", params(IndicatorQuery),
    responses((status = 200, description = "A page of indicators, as `intel list --format json` prints them", body = inline(Page<turncoat_core::Indicator>)), (status = 401, description = "No valid token", body = Problem), (status = 403, description = "The token may not read", body = Problem)))]
async fn indicators(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<IndicatorQuery>,
) -> Result<Json<Page<turncoat_core::Indicator>>, Problem> {
    caller.may_read()?;
    let source = query.source;
    let rows = state
        .read(move |store| {
            let mut rows = store.indicators()?;
            if let Some(source) = &source {
                rows.retain(|i| &i.indicator.source == source);
            }
            Ok(rows)
        })
        .await?;
    let paging = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let page = page(rows, |i| i.id, &paging)?;
    Ok(Json(Page {
        items: page.items.into_iter().map(|i| i.indicator).collect(),
        next: page.next,
    }))
}

/// A file name as the caller gave it, when it is a plain one.
fn upload_name(name: Option<&str>, default: &str) -> Result<String, Problem> {
    let Some(name) = name else {
        return Ok(default.to_owned());
    };
    let plain = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if plain {
        Ok(name.to_owned())
    } else {
        Err(Problem::bad_request(
            "name: letters, digits, '.', '-' and '_' only, not starting with '.'",
        ))
    }
}

/// Saves an uploaded file part under `dir` (made here), named by the
/// last component of its file name made safe: the name tells an
/// artifact's kind, never where to write. Refuses one over `max` bytes.
pub(crate) async fn save_part(
    field: &mut axum::extract::multipart::Field<'_>,
    dir: &std::path::Path,
    max: usize,
) -> Result<std::path::PathBuf, Problem> {
    use tokio::io::AsyncWriteExt;
    let part = field.name().unwrap_or_default().to_owned();
    let name: String = field
        .file_name()
        .and_then(|n| n.rsplit(['/', '\\']).next())
        .unwrap_or("artifact")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
        .collect();
    let name = if name.is_empty() || name.starts_with('.') {
        format!("artifact{name}")
    } else {
        name
    };
    std::fs::create_dir(dir).map_err(|e| Problem::internal(&e))?;
    let path = dir.join(&name);
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| Problem::internal(&e))?;
    let mut written = 0usize;
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| Problem::bad_request(e.body_text()))?
    {
        written += chunk.len();
        if written > max {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("{part} is larger than {max} bytes"),
            ));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| Problem::internal(&e))?;
    }
    file.flush().await.map_err(|e| Problem::internal(&e))?;
    Ok(path)
}

/// Writes a request body to `path` as it arrives, refusing it past
/// `limit` bytes: memory stays bounded whatever is sent.
async fn spool_body(
    body: axum::body::Body,
    path: &std::path::Path,
    limit: usize,
) -> Result<(), Problem> {
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| Problem::internal(&e))?;
    let mut body = body;
    let mut written = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Problem::bad_request(format!("reading the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            written += data.len();
            if written > limit {
                return Err(Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body is larger than {limit} bytes"),
                ));
            }
            file.write_all(&data)
                .await
                .map_err(|e| Problem::internal(&e))?;
        }
    }
    file.flush().await.map_err(|e| Problem::internal(&e))?;
    Ok(())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewAllow {
    /// The tenant it is for; every tenant's (admins only) when absent.
    tenant: Option<String>,
    kind: turncoat_store::AllowKind,
    value: String,
    reason: String,
}

/// Adds an allowlist entry (analysts, admins, write tokens; one for every
/// tenant, admins only) and closes the open beacon alerts it covers:
/// `turncoat allow add`. Like any dismissal it says why.
#[utoipa::path(post, path = "/allowlists", tag = "allowlists", request_body = NewAllow,
    responses((status = 201, description = "The entry and the alerts it closed", body = turncoat_store::AllowAdded),
        (status = 400, body = Problem), (status = 404, body = Problem), (status = 401, description = "No valid token", body = Problem), (status = 403, description = "The token may not read", body = Problem)))]
async fn add_allow(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewAllow>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<turncoat_store::AllowAdded>), Problem> {
    caller.must_triage()?;
    let Json(new) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
    if new.reason.trim().is_empty() {
        return Err(Problem::bad_request("an allowlist entry needs a reason"));
    }
    let tenant = caller.entry_tenant(new.tenant.as_deref())?;
    let actor = caller.0.actor;
    let added = state
        .write(move |store| {
            let entry = turncoat_store::NewAllowEntry {
                kind: new.kind,
                value: &new.value,
                reason: new.reason.trim(),
            };
            Ok(turncoat_engine::beacons::allow(
                store,
                tenant.as_ref(),
                &entry,
                &actor,
            )?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(added)))
}

/// Removes an allowlist entry the caller may see; one for every tenant,
/// admins only.
#[utoipa::path(delete, path = "/allowlists/{id}", tag = "allowlists",
    params(("id" = i64, Path, description = "The entry's id")),
    responses((status = 204, description = "Removed"), (status = 404, body = Problem), (status = 401, description = "No valid token", body = Problem), (status = 403, description = "The token may not read", body = Problem)))]
async fn remove_allow(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    remove_entry(
        &state,
        caller,
        &id,
        "allowlist entry",
        |store, scope, id| {
            let found = store.allowlist(scope)?.into_iter().find(|e| e.id == id);
            Ok(found.map(|e| e.tenant.is_none()))
        },
        |store, scope, id, actor| store.remove_allow(scope, id, actor),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes an entry that is a tenant's or every tenant's (an allowlist
/// entry, a suppression, an internal range) for an analyst, an admin or a
/// write token: `find` says whether `id` is in the caller's scope and
/// whether it is every tenant's (those are an admin's to remove),
/// `remove` removes it.
pub(crate) async fn remove_entry<T, F, R>(
    state: &AppState,
    caller: Caller,
    id: &str,
    noun: &'static str,
    find: F,
    remove: R,
) -> Result<T, Problem>
where
    T: Send + 'static,
    F: FnOnce(&dyn Store, &Scope, i64) -> Result<Option<bool>, StoreError> + Send + 'static,
    R: FnOnce(&mut dyn Store, &Scope, i64, &Actor) -> Result<T, StoreError> + Send + 'static,
{
    caller.must_triage()?;
    let removal = Removal::of(&caller, id, noun)?;
    let (scope, actor) = (caller.0.scope, caller.0.actor);
    state
        .write(move |store| {
            removal.allowed(find(store, &scope, removal.id)?)?;
            Ok(remove(store, &scope, removal.id, &actor)?)
        })
        .await
}

/// A request to remove an entry that is a tenant's or, with none, every
/// tenant's.
struct Removal {
    id: i64,
    admin: bool,
    noun: &'static str,
}

impl Removal {
    /// Reads the id; one that is not a number is missing like any other.
    fn of(caller: &Caller, id: &str, noun: &'static str) -> Result<Removal, Problem> {
        let removal = Removal {
            id: 0,
            admin: caller.must_be_admin().is_ok(),
            noun,
        };
        let id = id.parse().map_err(|_| removal.missing())?;
        Ok(Removal { id, ..removal })
    }

    fn missing(&self) -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            format!("no such {} in your tenants", self.noun),
        )
    }

    /// Given whether the entry, as found in the caller's scope, is every
    /// tenant's: refuses a missing one, and one for every tenant unless
    /// the caller is an admin.
    fn allowed(&self, global: Option<bool>) -> Result<(), Problem> {
        match global {
            None => Err(self.missing()),
            Some(true) if !self.admin => Err(Problem::new(
                StatusCode::FORBIDDEN,
                format!("a {} for every tenant is removed by an admin", self.noun),
            )),
            Some(_) => Ok(()),
        }
    }
}
