//! Prometheus metrics at `/metrics`.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    tenant: String,
}

/// The server's counters, registered once.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    rejected: Family<ReasonLabels, Counter>,
    events: Family<TenantLabels, Counter>,
    commit_seconds: Histogram,
    queue_depth: Gauge,
    queued_chunks: Counter,
    worked_chunks: Family<OutcomeLabels, Counter>,
    worked_hunts: Family<OutcomeLabels, Counter>,
    content_loads: Family<OutcomeLabels, Counter>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("turncoat");
        let requests = Family::<RequestLabels, Counter>::default();
        let rejected = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template and status",
            requests.clone(),
        );
        registry.register(
            "rejected_requests",
            "Requests refused before their handler ran, by reason",
            rejected.clone(),
        );
        let events = Family::<TenantLabels, Counter>::default();
        registry.register(
            "ingested_events",
            "Events committed from HTTP ingest, by tenant",
            events.clone(),
        );
        // 10 ms to about 80 s: a chunk of a few records to a full one.
        let commit_seconds = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.01, 2.0, 14),
        );
        registry.register(
            "ingest_commit_seconds",
            "Time to ingest and commit one run of queued chunks",
            commit_seconds.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "ingest_queue_depth",
            "Spooled chunks waiting for the writer",
            queue_depth.clone(),
        );
        let queued_chunks = Counter::default();
        registry.register(
            "queued_chunks",
            "Chunks of ingest requests stored in the cluster's queue",
            queued_chunks.clone(),
        );
        let worked_chunks = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "worker_chunks",
            "Queued chunks a worker took, by outcome (committed, already-committed, \
             retried, given-up)",
            worked_chunks.clone(),
        );
        let worked_hunts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "worker_hunts",
            "Retro-hunt jobs (one tenant's share of an intel import) a worker took, \
             by outcome (hunted, retried, given-up)",
            worked_hunts.clone(),
        );
        let content_loads = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "worker_content_loads",
            "Loads of the indicators, advisories and rules by a worker after a \
             change was announced, by outcome (loaded, failed)",
            content_loads.clone(),
        );
        Metrics {
            registry,
            requests,
            rejected,
            events,
            commit_seconds,
            queue_depth,
            queued_chunks,
            worked_chunks,
            worked_hunts,
            content_loads,
        }
    }

    pub(crate) fn rejected(&self, reason: &str) {
        self.rejected
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub(crate) fn ingested(&self, tenant: &str, events: u64) {
        self.events
            .get_or_create(&TenantLabels {
                tenant: tenant.to_owned(),
            })
            .inc_by(events);
    }

    pub(crate) fn observe_commit(&self, seconds: f64) {
        self.commit_seconds.observe(seconds);
    }

    pub(crate) fn set_queue_depth(&self, depth: usize) {
        self.queue_depth.set(depth as i64);
    }

    pub(crate) fn batch_accepted(&self, chunks: u64) {
        self.queued_chunks.inc_by(chunks);
    }

    pub(crate) fn worked_chunk(&self, outcome: &str) {
        count(&self.worked_chunks, outcome);
    }

    pub(crate) fn worked_hunt(&self, outcome: &str) {
        count(&self.worked_hunts, outcome);
    }

    pub(crate) fn loaded_content(&self, outcome: &str) {
        count(&self.content_loads, outcome);
    }

    /// Every metric as Prometheus's text exposition.
    pub fn text(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

/// Counts every request by its route template (never the raw path, whose
/// ids would make a series per alert).
pub(crate) async fn count_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16().to_string(),
        })
        .inc();
    response
}

#[utoipa::path(get, path = "/metrics", tag = "probes", security(()),
    responses((status = 200, description = "Prometheus metrics (OpenMetrics text)", body = String)))]
pub(crate) async fn render(State(state): State<AppState>) -> Response {
    openmetrics(state.metrics.text())
}

/// Metrics text as Prometheus scrapes it.
pub(crate) fn openmetrics(text: String) -> Response {
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

fn count(family: &Family<OutcomeLabels, Counter>, outcome: &str) {
    family
        .get_or_create(&OutcomeLabels {
            outcome: outcome.to_owned(),
        })
        .inc();
}
