//! A TAXII 2.1 server at `/taxii2/`, read-only: discovery, one API root,
//! and per tenant of the caller two collections: the indicators to block
//! (the tenant's blocklist as STIX indicators) and the sightings (its IOC
//! alerts as STIX sightings of those indicators). Objects page by the
//! time they were added and a tie-breaking number, so a client resuming
//! with `added_after` or `next` neither repeats nor misses objects added
//! in the same instant. Any token or session that may read; Basic with
//! the token as the password, as TAXII clients send it.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use turncoat_core::{AlertKind, Time};
use turncoat_respond::stix;
use turncoat_store::{AlertFilter, Scope, Store, Tenant};

use crate::AppState;
use crate::auth::Caller;

/// TAXII's media type, answered and asked for.
const TAXII: &str = "application/taxii+json;version=2.1";
/// Objects per page unless asked for fewer.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/taxii2/", get(discovery))
        .route("/taxii2/api/", get(api_root))
        .route("/taxii2/api/collections/", get(collections))
        .route("/taxii2/api/collections/{id}/", get(collection))
        .route(
            "/taxii2/api/collections/{id}/objects/",
            get(objects)
                .post(add_objects)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_ENVELOPE_BYTES)),
        )
        .route(
            "/taxii2/api/collections/{id}/objects/{object}/",
            get(object),
        )
        .route("/taxii2/api/collections/{id}/manifest/", get(manifest))
}

/// A TAXII error message with its status.
fn error(status: StatusCode, title: &str) -> Response {
    taxii(
        status,
        json!({ "title": title, "http_status": status.as_u16().to_string() }),
    )
}

fn taxii(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(TAXII))],
        body.to_string(),
    )
        .into_response()
}

/// TAXII clients ask for its media type; a bare browser or curl may ask
/// for anything. Another type alone is refused (406), as the spec says.
fn accepts(headers: &HeaderMap) -> Result<(), Response> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*")
        .replace(' ', "");
    let ok = accept.split(',').any(|a| {
        a.starts_with("application/taxii+json")
            || a.starts_with("*/*")
            || a.starts_with("application/*")
    });
    if ok {
        Ok(())
    } else {
        Err(error(
            StatusCode::NOT_ACCEPTABLE,
            "answers are application/taxii+json;version=2.1",
        ))
    }
}

fn readable(caller: &Caller, headers: &HeaderMap) -> Result<(), Response> {
    accepts(headers)?;
    caller
        .may_read()
        .map_err(|_| error(StatusCode::FORBIDDEN, "this token may not read"))
}

async fn discovery(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> Response {
    if let Err(refused) = readable(&caller, &headers) {
        return refused;
    }
    // API roots are URLs: this server's, as the client reached it.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ', '@']))
        .unwrap_or("localhost");
    let scheme = if state.tls { "https" } else { "http" };
    let root = format!("{scheme}://{host}/taxii2/api/");
    taxii(
        StatusCode::OK,
        json!({
            "title": "turncoat",
            "description": "Indicators to block and their sightings, per tenant",
            "default": root,
            "api_roots": [root],
        }),
    )
}

async fn api_root(caller: Caller, headers: HeaderMap) -> Response {
    if let Err(refused) = readable(&caller, &headers) {
        return refused;
    }
    taxii(
        StatusCode::OK,
        json!({
            "title": "turncoat",
            "versions": [TAXII],
            "max_content_length": 0,
        }),
    )
}

/// What a collection holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holds {
    Blocklist,
    Sightings,
}

struct Collection {
    tenant: Tenant,
    holds: Holds,
}

impl Collection {
    fn id(&self) -> String {
        let what = match self.holds {
            Holds::Blocklist => "blocklist",
            Holds::Sightings => "sightings",
        };
        stix::uuid_of(&format!("turncoat taxii {what} {}", self.tenant.name()))
    }

    /// Whether `caller` may add objects: an admin (a person, not a
    /// tenant's token) to a blocklist collection, whose objects are then
    /// imported as intel, for every tenant. Sightings come from telemetry
    /// only.
    fn writable_by(&self, caller: &Caller) -> bool {
        self.holds == Holds::Blocklist
            && caller.0.role == turncoat_core::Role::Admin
            && caller.0.token_scope.is_none()
    }

    fn describe(&self, caller: &Caller) -> Value {
        let (title, description) = match self.holds {
            Holds::Blocklist => (
                format!("{}: indicators to block", self.tenant.name()),
                "Active indicators, not allowlisted for this tenant",
            ),
            Holds::Sightings => (
                format!("{}: sightings", self.tenant.name()),
                "Indicators this tenant's telemetry contacted or ran",
            ),
        };
        json!({
            "id": self.id(),
            "title": title,
            "description": description,
            "can_read": true,
            "can_write": self.writable_by(caller),
            "media_types": ["application/stix+json;version=2.1"],
        })
    }
}

fn collections_of(scope: &Scope) -> Vec<Collection> {
    scope
        .members()
        .iter()
        .flat_map(|t| {
            [Holds::Blocklist, Holds::Sightings].map(|holds| Collection {
                tenant: t.clone(),
                holds,
            })
        })
        .collect()
}

/// The caller's collection `id`: one of another tenant is not found,
/// as one that does not exist.
fn find(caller: &Caller, id: &str) -> Result<Collection, Response> {
    collections_of(&caller.0.scope)
        .into_iter()
        .find(|c| c.id() == id)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "no such collection"))
}

async fn collections(caller: Caller, headers: HeaderMap) -> Response {
    if let Err(refused) = readable(&caller, &headers) {
        return refused;
    }
    let all: Vec<Value> = collections_of(&caller.0.scope)
        .iter()
        .map(|c| c.describe(&caller))
        .collect();
    taxii(StatusCode::OK, json!({ "collections": all }))
}

async fn collection(caller: Caller, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(refused) = readable(&caller, &headers) {
        return refused;
    }
    match find(&caller, &id) {
        Ok(c) => taxii(StatusCode::OK, c.describe(&caller)),
        Err(refused) => refused,
    }
}

/// One stored object: when it was added, a number that orders objects
/// added at the same instant, and the STIX object.
struct Stored {
    added: Time,
    order: i64,
    object: Value,
}

/// Every object of the collection, in the order pages list them.
fn read_all(store: &dyn Store, c: &Collection) -> Result<Vec<Stored>, crate::Problem> {
    let now = Time::now();
    let selection = turncoat_engine::export::Selection {
        tenant: Some(&c.tenant),
        ..Default::default()
    };
    let list = turncoat_engine::export::blocklist(store, &selection, now)?;
    let mut out = vec![Stored {
        added: Time(0),
        order: 0,
        object: stix::identity(),
    }];
    match c.holds {
        Holds::Blocklist => out.extend(list.entries.iter().filter_map(|e| {
            Some(Stored {
                added: e.added,
                order: e.id,
                object: stix::indicator(e)?,
            })
        })),
        Holds::Sightings => {
            // An IOC alert is a sighting of the indicator its source names.
            let filter = AlertFilter {
                kind: Some(AlertKind::Ioc),
                ..Default::default()
            };
            for a in store.alerts(&Scope::tenant(&c.tenant), &filter)? {
                let Some(entry) = list.entries.iter().find(|e| e.value == a.source) else {
                    continue;
                };
                out.push(Stored {
                    added: a.created,
                    order: a.id.get(),
                    object: json!({
                        "type": "sighting",
                        "spec_version": "2.1",
                        "id": format!("sighting--{}", stix::uuid_of(&format!("turncoat sighting {} {}", c.tenant.name(), a.id.get()))),
                        "created_by_ref": stix::identity()["id"],
                        "created": stix::timestamp(a.created),
                        "modified": stix::timestamp(a.updated.max(a.created)),
                        "first_seen": stix::timestamp(a.first_seen),
                        "last_seen": stix::timestamp(a.last_seen.max(a.first_seen)),
                        "count": a.count.min(999_999_999),
                        "sighting_of_ref": stix::indicator_id(entry.kind, &entry.value),
                        "description": format!("{} on {}: {}", a.tenant, a.endpoint, a.title),
                    }),
                });
            }
        }
    }
    out.sort_by_key(|s| (s.added, s.order));
    Ok(out)
}

/// The query a list of objects or a manifest takes.
struct Listing {
    added_after: Option<Time>,
    after: Option<(Time, i64)>,
    limit: usize,
    types: Vec<String>,
    ids: Vec<String>,
}

impl Listing {
    fn parse(raw: Option<&str>) -> Result<Listing, Response> {
        let bad = |what: &str| error(StatusCode::BAD_REQUEST, what);
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|_| bad("the query does not read"))?;
        let mut listing = Listing {
            added_after: None,
            after: None,
            limit: DEFAULT_LIMIT,
            types: Vec::new(),
            ids: Vec::new(),
        };
        for (key, value) in pairs {
            match key.as_str() {
                "added_after" => {
                    listing.added_after =
                        Some(Time::parse(&value).map_err(|_| bad("added_after: a timestamp"))?)
                }
                "limit" => {
                    listing.limit = value
                        .parse::<usize>()
                        .map_err(|_| bad("limit: a number"))?
                        .clamp(1, MAX_LIMIT)
                }
                "next" => {
                    let (t, o) = value
                        .split_once('-')
                        .ok_or_else(|| bad("next: not one of ours"))?;
                    listing.after = Some((
                        Time(t.parse().map_err(|_| bad("next: not one of ours"))?),
                        o.parse().map_err(|_| bad("next: not one of ours"))?,
                    ));
                }
                "match[type]" => listing.types.extend(value.split(',').map(str::to_owned)),
                "match[id]" => listing.ids.extend(value.split(',').map(str::to_owned)),
                // Every version is the one version we keep.
                "match[version]" | "match[spec_version]" => {}
                _ => return Err(bad(&format!("unknown parameter {key:?}"))),
            }
        }
        Ok(listing)
    }

    /// The page of `all` this listing asks for, and the next page's token.
    fn page<'a>(&self, all: &'a [Stored]) -> (Vec<&'a Stored>, Option<String>) {
        let mut kept = all.iter().filter(|s| {
            self.added_after.is_none_or(|t| s.added > t)
                && self.after.is_none_or(|a| (s.added, s.order) > a)
                && (self.types.is_empty()
                    || self.types.iter().any(|t| s.object["type"] == t.as_str()))
                && (self.ids.is_empty() || self.ids.iter().any(|i| s.object["id"] == i.as_str()))
        });
        let page: Vec<&Stored> = kept.by_ref().take(self.limit).collect();
        let next = match (kept.next(), page.last()) {
            (Some(_), Some(last)) => Some(format!("{}-{}", last.added.0, last.order)),
            _ => None,
        };
        (page, next)
    }
}

/// Reads the collection and answers the page `raw` asks for, shaped by
/// `shape` (the objects, or their manifest).
async fn listed(
    state: AppState,
    caller: Caller,
    headers: HeaderMap,
    id: String,
    raw: Option<String>,
    shape: fn(&[&Stored]) -> (&'static str, Vec<Value>),
) -> Response {
    if let Err(refused) = readable(&caller, &headers) {
        return refused;
    }
    let c = match find(&caller, &id) {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let listing = match Listing::parse(raw.as_deref()) {
        Ok(l) => l,
        Err(refused) => return refused,
    };
    let all = match state.read(move |store| read_all(store, &c)).await {
        Ok(all) => all,
        Err(p) => return p.into_response(),
    };
    let (page, next) = listing.page(&all);
    let (key, items) = shape(&page);
    let mut body = json!({ "more": next.is_some() });
    if let Some(n) = &next {
        body["next"] = Value::from(n.clone());
    }
    if !items.is_empty() {
        body[key] = Value::from(items);
    }
    let mut answer = taxii(StatusCode::OK, body);
    if let (Some(first), Some(last)) = (page.first(), page.last()) {
        for (name, t) in [
            ("x-taxii-date-added-first", first.added),
            ("x-taxii-date-added-last", last.added),
        ] {
            if let Ok(v) = HeaderValue::from_str(&stix::precise_timestamp(t)) {
                answer.headers_mut().insert(name, v);
            }
        }
    }
    answer
}

async fn objects(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    listed(state, caller, headers, id, raw, the_objects).await
}

/// A page as its objects.
fn the_objects(page: &[&Stored]) -> (&'static str, Vec<Value>) {
    ("objects", page.iter().map(|s| s.object.clone()).collect())
}

async fn manifest(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    listed(state, caller, headers, id, raw, |page| {
        let records = page
            .iter()
            .map(|s| {
                json!({
                    "id": s.object["id"],
                    "date_added": stix::precise_timestamp(s.added),
                    "version": s.object["modified"],
                    "media_type": "application/stix+json;version=2.1",
                })
            })
            .collect();
        ("objects", records)
    })
    .await
}

async fn object(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, object)): Path<(String, String)>,
) -> Response {
    let raw = serde_urlencoded::to_string([("match[id]", object.as_str())]).ok();
    listed(state, caller, headers, id, raw, the_objects).await
}

/// The largest envelope taken.
const MAX_ENVELOPE_BYTES: usize = 64 << 20;

/// `POST .../objects/`: an envelope of STIX objects for a blocklist
/// collection (admins), imported as intel named after the collection, so
/// the retro-hunt runs on it; answered with a TAXII status resource.
async fn add_objects(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = accepts(&headers) {
        return refused;
    }
    let c = match find(&caller, &id) {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    if !c.writable_by(&caller) {
        return error(
            StatusCode::FORBIDDEN,
            "this collection is not writable by you",
        );
    }
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !kind.starts_with("application/taxii+json") {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send application/taxii+json;version=2.1",
        );
    }
    if body.len() > MAX_ENVELOPE_BYTES {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "the envelope is too large");
    }
    let envelope: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("not JSON: {e}")),
    };
    let objects = envelope["objects"].as_array().cloned().unwrap_or_default();
    let total = objects.len();
    let name = format!("taxii-{}", c.tenant.name());
    let actor = caller.0.actor.clone();
    let hand_off = state.hand_off();
    let imported = state
        .write(move |store| {
            let dir = tempfile::tempdir().map_err(|e| crate::Problem::internal(&e))?;
            let file = dir.path().join(&name);
            let bundle = json!({
                "type": "bundle",
                "id": format!("bundle--{}", stix::uuid_of(&format!("{name} {}", Time::now().0))),
                "objects": objects,
            });
            std::fs::write(&file, bundle.to_string()).map_err(|e| crate::Problem::internal(&e))?;
            let report = crate::handoff::import_intel(
                hand_off.as_ref(),
                store,
                &[file],
                None,
                &turncoat_engine::NoProgress,
                &actor,
            )?;
            Ok(report)
        })
        .await;
    let report = match imported {
        Ok(r) => r,
        Err(p) => return error(p.status, &p.detail),
    };
    let failures = report.rejected.len().min(total);
    taxii(
        StatusCode::ACCEPTED,
        json!({
            "id": stix::uuid_of(&format!("status {id} {}", Time::now().0)),
            "status": "complete",
            "request_timestamp": stix::timestamp(Time::now()),
            "total_count": total,
            "success_count": total - failures,
            "failure_count": failures,
            "pending_count": 0,
        }),
    )
}
