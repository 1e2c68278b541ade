//! `turncoat serve`: the HTTP service an MSSP runs on the embedded store.
//!
//! Handlers are thin: they authenticate the caller into a
//! [`turncoat_auth::Principal`], run an `engine` or `store` call with the
//! principal's tenant scope on a blocking thread (SQLite is synchronous),
//! and answer JSON, or RFC 9457 problem details on error. Readers open
//! the store per request without a lock, so the CLI keeps working beside
//! a running server.

#![forbid(unsafe_code)]

mod analytics;
mod api;
mod auth;
mod console;
pub use console::{ReportQuery, report_html, report_pdf};
mod batches;
mod export;
pub mod handoff;
mod ingest;
mod metrics;
mod networks;
pub mod notify;
mod page;
mod people;
mod problem;
mod session;
mod suppressions;
mod taxii;
pub mod taxii_client;
mod vet;
pub mod worker;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use tokio::net::TcpListener;
use turncoat_store::{AnyStore, Store, StoreError, StoreLocation};

pub use handoff::HandOff;
pub use ingest::IngestLimits;
pub use metrics::Metrics;
pub use problem::Problem;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving: {0}")]
    Serve(#[source] std::io::Error),
    #[error("reading the TLS certificate {cert} or key {key}: {source}")]
    Tls {
        cert: String,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("preparing the ingest spool: {0}")]
    Spool(#[source] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The certificate chain and private key to serve HTTPS with, PEM files.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    store: Arc<StoreLocation>,
    metrics: Arc<Metrics>,
    /// Readers kept open between requests: opening one checks the schema
    /// and the archive, which every request would otherwise do twice
    /// (authenticating the caller, then answering). A kept reader sees
    /// every commit made since, the CLI's included (WAL).
    readers: Arc<Readers>,
    /// HTTP ingest's commit queue.
    ingest: Arc<ingest::IngestQueue>,
    /// The cluster's queue, if any: ingest bodies are published to it for
    /// workers to commit, instead of committed here.
    queue: Option<Arc<turncoat_queue::Queue>>,
    /// Turns true when the server is asked to stop: requests still
    /// taking a body commit what they have and answer.
    stopping: tokio::sync::watch::Receiver<bool>,
    /// The OpenAPI document, rendered once when the routes are built.
    openapi: Arc<std::sync::OnceLock<Arc<String>>>,
    /// Failed sign-ins, per name.
    logins: Arc<session::LoginThrottle>,
    /// Whether it serves HTTPS: session cookies are then `Secure`.
    tls: bool,
}

/// The idle readers. A database store's client blocks, even to close:
/// the last handle, dropped on the runtime with the server's state, drops
/// them on a thread of their own.
#[derive(Default)]
struct Readers(Mutex<Vec<AnyStore>>);

impl Readers {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<AnyStore>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut *self.lock());
        std::thread::scope(|s| {
            s.spawn(move || drop(idle));
        });
    }
}

/// Idle readers kept at most.
const MAX_IDLE_READERS: usize = 8;

impl AppState {
    fn new(
        store: StoreLocation,
        limits: IngestLimits,
        stopping: tokio::sync::watch::Receiver<bool>,
        tls: bool,
    ) -> Result<(AppState, std::thread::JoinHandle<()>), ServerError> {
        let store = Arc::new(store);
        let metrics = Arc::new(Metrics::new());
        let (ingest, writer) =
            ingest::IngestQueue::start(Arc::clone(&store), limits, Arc::clone(&metrics))
                .map_err(ServerError::Spool)?;
        let state = AppState {
            store,
            metrics,
            readers: Arc::default(),
            ingest: Arc::new(ingest),
            queue: None,
            stopping,
            openapi: Arc::default(),
            logins: Arc::default(),
            tls,
        };
        Ok((state, writer))
    }

    /// Runs `f` on a reader of the store, on a blocking thread.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, Problem> + Send + 'static,
    {
        let location = Arc::clone(&self.store);
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let idle = || readers.lock();
            // A kept reader whose connection died (a database restart)
            // is dropped, and a new one opened.
            let kept = idle().pop().filter(|store| store.is_alive());
            let store = match kept {
                Some(store) => store,
                None => location.open_reader().map_err(Problem::from)?,
            };
            let answer = f(&*store);
            let mut idle = idle();
            if idle.len() < MAX_IDLE_READERS {
                idle.push(store);
            }
            answer
        })
        .await
        .map_err(|e| Problem::internal(&e))?
    }
}

impl AppState {
    /// Where retro-hunts and content changes go, in a cluster: taken on
    /// the runtime, used on the store's blocking thread.
    pub(crate) fn hand_off(&self) -> Option<HandOff> {
        let queue = Arc::clone(self.queue.as_ref()?);
        Some(HandOff::new(queue, tokio::runtime::Handle::current()))
    }

    /// Runs `f` on a writer of the store, on a blocking thread. The
    /// writer lock is taken for the call only, so the CLI can write
    /// between requests; a request that waits longer than
    /// [`WRITE_LOCK_WAIT`] for it is answered 503.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Store) -> Result<T, Problem> + Send + 'static,
    {
        let location = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || {
            let mut store = location
                .open_writer(&mut turncoat_store::LockWait {
                    timeout: WRITE_LOCK_WAIT,
                    purpose: "turncoat serve",
                    on_wait: &mut |_, _| {},
                })
                .map_err(Problem::from)?;
            f(&mut *store)
        })
        .await
        .map_err(|e| Problem::internal(&e))?
    }
}

/// How long a write request waits for another writer (a CLI ingest).
const WRITE_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A bound server, not yet serving: binding first lets a caller learn
/// the port chosen for `127.0.0.1:0`.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    /// The ingest writer: joined at the end so that chunks queued are
    /// committed before the process exits.
    writer: std::thread::JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
    /// How often the TAXII feeds are polled.
    taxii_poll: std::time::Duration,
    /// Whether this server runs the duties one server of a cluster does
    /// for all: expiring suppressions, polling TAXII feeds, delivering
    /// notifications.
    duties: bool,
}

impl Server {
    /// Polls the TAXII feeds this often (every 15 minutes unless told).
    pub fn poll_taxii_every(mut self, every: std::time::Duration) -> Server {
        self.taxii_poll = every.max(std::time::Duration::from_secs(1));
        self
    }

    /// Leaves suppression expiry, TAXII polling and notification delivery
    /// to another server on the same database: one of a cluster's servers
    /// does them, or two would deliver a notification twice.
    pub fn without_duties(mut self) -> Server {
        self.duties = false;
        self
    }

    /// Publishes ingest bodies to `queue` for workers to commit
    /// (`turncoat worker`): requests are answered once the queue has
    /// stored them, with a batch to follow.
    pub fn with_queue(mut self, queue: turncoat_queue::Queue) -> Server {
        tracing::info!(
            namespace = queue.namespace(),
            "ingest goes through the queue"
        );
        self.state.queue = Some(Arc::new(queue));
        self
    }

    /// Binds `listen` for `store`, which must exist, serving HTTPS when
    /// given `tls`.
    pub async fn bind(
        listen: SocketAddr,
        store: StoreLocation,
        tls: Option<&TlsFiles>,
        limits: IngestLimits,
    ) -> Result<Server, ServerError> {
        // Refuse to start on a missing or too-new store, or without the
        // certificate, rather than answering every request with an error.
        // Opened off the runtime: a database store's client blocks.
        let (store, opened) = tokio::task::spawn_blocking(move || {
            let opened = store.open_reader().map(drop);
            (store, opened)
        })
        .await
        .map_err(|e| ServerError::Serve(std::io::Error::other(e)))?;
        opened?;
        let tls = match tls {
            None => None,
            Some(files) => {
                // ring, not rustls' default aws-lc-rs, which needs cmake
                // to build here; rustls deprecates ring's provider for
                // lacking post-quantum key exchange (X25519MLKEM768), a
                // trade-off ARCHITECTURE.md records. Installing it twice
                // is harmless.
                #[allow(deprecated)]
                let provider = rustls::crypto::ring::default_provider();
                let _ = provider.install_default();
                let config =
                    axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key)
                        .await
                        .map_err(|source| ServerError::Tls {
                            cert: files.cert.display().to_string(),
                            key: files.key.display().to_string(),
                            source,
                        })?;
                Some(config)
            }
        };
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| ServerError::Bind {
                addr: listen,
                source,
            })?;
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let (state, writer) = AppState::new(store, limits, stopping, tls.is_some())?;
        Ok(Server {
            listener,
            state,
            tls,
            writer,
            stop,
            taxii_poll: TAXII_POLL,
            duties: true,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then stops accepting, lets
    /// requests in flight finish (a body being taken is cut at its last
    /// whole line and committed) and waits for the ingest writer to
    /// commit every chunk queued.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        tracing::info!(addr = %self.local_addr(), tls = self.tls.is_some(), "serving");
        let stop = self.stop;
        let shutdown = async move {
            shutdown.await;
            let _ = stop.send(true);
        };
        let duties = if self.duties {
            vec![
                tokio::spawn(expire_suppressions(self.state.clone())),
                tokio::spawn(poll_taxii_feeds(self.state.clone(), self.taxii_poll)),
                tokio::spawn(notify_targets(self.state.clone())),
            ]
        } else {
            tracing::info!(
                "suppression expiry, TAXII polling and notifications left to another server"
            );
            Vec::new()
        };
        let app = router(self.state);
        let served = match self.tls {
            None => axum::serve(
                self.listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ServerError::Serve),
            Some(tls) => {
                let handle = axum_server::Handle::new();
                let stopper = handle.clone();
                tokio::spawn(async move {
                    shutdown.await;
                    stopper.graceful_shutdown(Some(SHUTDOWN_GRACE));
                });
                let listener = self.listener.into_std().map_err(ServerError::Serve)?;
                axum_server::from_tcp_rustls(listener, tls)
                    .handle(handle)
                    .serve(app.into_make_service_with_connect_info::<std::net::SocketAddr>())
                    .await
                    .map_err(ServerError::Serve)
            }
        };
        // The router, and with it the queue's sender, is gone (the sweeper
        // holds one too): the writer finishes what is queued and ends.
        for duty in &duties {
            duty.abort();
        }
        for duty in duties {
            let _ = duty.await;
        }
        let writer = self.writer;
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        tracing::info!("stopped");
        served
    }

    /// Whether it serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

/// The OpenAPI document's frame; the paths come from the handlers.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "turncoat",
        description = "Supply-chain compromise detection for MSSPs: telemetry in, alerts, exposure and triage out, per tenant."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

/// Bearer tokens (`turncoat token create`) on every route but the probes.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// `GET /api/v1/openapi.json`: this API, as OpenAPI 3.1.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "probes", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
async fn openapi_json(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let doc = state
        .openapi
        .get()
        .map(|d| String::clone(d))
        .unwrap_or_default();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        doc,
    )
        .into_response()
}

fn router(state: AppState) -> Router {
    use utoipa::OpenApi;
    use utoipa_axum::routes;
    let (router, doc) = utoipa_axum::router::OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::healthz))
        .routes(routes!(api::readyz))
        .routes(routes!(metrics::render))
        .routes(routes!(openapi_json))
        .nest("/api/v1", api::routes())
        .split_for_parts();
    let json = doc.to_pretty_json().unwrap_or_default();
    let _ = state.openapi.set(Arc::new(json));
    router
        .merge(console::routes())
        .merge(taxii::routes())
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_requests,
        ))
        .with_state(state)
}

/// How often the server ends expired suppressions, so that the alerts
/// they held resurface without waiting for the next ingest.
const SUPPRESSION_SWEEP: std::time::Duration = std::time::Duration::from_secs(30);

async fn expire_suppressions(state: AppState) {
    let mut tick = tokio::time::interval(SUPPRESSION_SWEEP);
    loop {
        tick.tick().await;
        let swept = state
            .write(|store| Ok(store.expire_suppressions(turncoat_core::Time::now())?))
            .await;
        match swept {
            Ok(back) if !back.is_empty() => {
                tracing::info!(
                    alerts = back.len(),
                    "expired suppressions: alerts resurfaced"
                );
            }
            Ok(_) => {}
            Err(p) => tracing::warn!(detail = %p.detail, "sweeping expired suppressions"),
        }
    }
}

/// How often the server queues and delivers notifications.
const NOTIFY_ROUND: std::time::Duration = std::time::Duration::from_secs(2);

/// Queues what each notification target has not heard of (under the
/// writer), sends what is due with no lock held, and records how it went.
async fn notify_targets(state: AppState) {
    let retry = notify::Retry::default();
    let mut tick = tokio::time::interval(NOTIFY_ROUND);
    loop {
        tick.tick().await;
        let queued = state
            .write(|store| {
                Ok(turncoat_engine::notify::queue(
                    store,
                    turncoat_core::Time::now(),
                )?)
            })
            .await;
        if let Err(p) = queued {
            tracing::warn!(detail = %p.detail, "queuing notifications");
            continue;
        }
        let due = state
            .read(|store| Ok(notify::due_with_secrets(store, turncoat_core::Time::now())?))
            .await;
        let Ok(due) = due else { continue };
        if due.is_empty() {
            continue;
        }
        let results = tokio::task::spawn_blocking(move || notify::deliver(due, &retry))
            .await
            .unwrap_or_default();
        let recorded = state
            .write(move |store| {
                for (id, delivery) in &results {
                    store.record_delivery(*id, delivery, turncoat_core::Time::now())?;
                }
                Ok(())
            })
            .await;
        if let Err(p) = recorded {
            tracing::warn!(detail = %p.detail, "recording deliveries");
        }
    }
}

/// How often the server polls the TAXII feeds (`intel feed add`) unless
/// told otherwise (`serve --taxii-poll`).
const TAXII_POLL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Polls every TAXII feed on a schedule: fetched with no lock held,
/// imported (and retro-hunted) under the writer.
async fn poll_taxii_feeds(state: AppState, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let feeds = state
            .read(|store| {
                let mut with_secrets = Vec::new();
                for f in store.taxii_feeds()? {
                    let secret = store.taxii_feed_secret(f.id)?;
                    with_secrets.push((f, secret));
                }
                Ok(with_secrets)
            })
            .await;
        let Ok(feeds) = feeds else { continue };
        let hand_off = state.hand_off();
        for (feed, secret) in feeds {
            let fetching = feed.clone();
            let hand_off = hand_off.clone();
            let fetched = tokio::task::spawn_blocking(move || {
                taxii_client::fetch(&fetching, secret.as_deref())
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            let polled = state
                .write(move |store| {
                    Ok(taxii_client::import(
                        store,
                        &feed,
                        fetched,
                        &turncoat_core::Actor::Pipeline,
                        hand_off.as_ref(),
                    )?)
                })
                .await;
            match polled {
                Ok(r) if r.error.is_none() => {
                    tracing::info!(feed = %r.feed, objects = r.objects, "TAXII feed polled")
                }
                Ok(r) => tracing::warn!(feed = %r.feed, error = ?r.error, "TAXII poll failed"),
                Err(p) => tracing::warn!(detail = %p.detail, "TAXII poll"),
            }
        }
    }
}

/// How long requests in flight may take to finish once a stop is asked.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
