//! turncoat's work queue on NATS JetStream: how a cluster's servers hand
//! telemetry to its workers.
//!
//! A server that takes an ingest request publishes it as a *batch* of
//! chunks to the ingest stream and answers once JetStream has stored every
//! chunk; workers pull the chunks, commit them to the store and record how
//! each ended, which is what `GET /api/v1/batches/{id}` reads back.
//!
//! - **Partitions.** Tenants are spread over [`PARTITIONS`] subjects
//!   (`<ns>.ingest.<p>`), each with its own durable pull consumer allowing
//!   one unacknowledged chunk at a time: a partition's chunks are taken in
//!   order, one after another, by whichever worker asks first. So a
//!   tenant's streaming state (Sigma correlations, beacon accumulators)
//!   sees its events in order however many workers run, and never two
//!   workers at once. While a worker holds a chunk it tells JetStream it
//!   is still working ([`Delivery::progress`]); when it dies the chunk is
//!   redelivered to the next worker that asks once `ack_wait` has passed:
//!   that is how a partition changes hands.
//! - **Exactly once.** A publish carries `Nats-Msg-Id` = batch and chunk,
//!   so a publish retried after a lost acknowledgement is dropped by
//!   JetStream. A redelivered chunk is recognised by the store (its
//!   content's fingerprint is committed in the same transaction as its
//!   records) and skipped there.
//! - **Bodies too big for a message** (a whole EVTX or Zeek TSV file, which
//!   cannot be cut at lines) go to a JetStream object store; the message
//!   carries their name.
//!
//! - **Retro-hunts and content changes** (`hunt.rs`): a second work stream
//!   of per-tenant retro-hunt jobs, and the announcements that make every
//!   worker load indicators and rules again.
//!
//! `async-nats` stays in this crate: servers and workers see [`Queue`].

mod hunt;
mod url;

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, kv, object_store, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

pub use hunt::HuntMeta;
pub use url::QueueUrl;

/// Subjects the tenants are spread over. Fixed, since every server and
/// worker must agree on it; 16 lets 16 workers commit at once.
pub const PARTITIONS: u32 = 16;

/// How long a worker may hold a chunk without a sign of life before it is
/// given to another worker.
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);

/// Deliveries of one chunk before it is given up and reported failed (a
/// chunk that crashes every worker must not block its partition forever).
pub const MAX_DELIVERIES: i64 = 10;

/// How long batch reports and unread bodies are kept.
const KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long a fetch may wait for JetStream's answer.
const FETCH_WAIT: Duration = Duration::from_secs(5);

/// Room left in a message for its headers.
const HEADER_ROOM: usize = 8 << 10;

const OBJECT_HEADER: &str = "Turncoat-Object";

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue URL {0}")]
    Url(String),
    #[error("{action}: {message}")]
    Nats {
        action: &'static str,
        message: String,
    },
    #[error("message {subject} #{sequence}: {message}")]
    BadMessage {
        subject: String,
        sequence: u64,
        message: String,
    },
}

fn nats<E: std::fmt::Display>(action: &'static str) -> impl FnOnce(E) -> QueueError {
    move |e| QueueError::Nats {
        action,
        message: e.to_string(),
    }
}

type Result<T> = std::result::Result<T, QueueError>;

/// What a chunk is, carried in its message's header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkMeta {
    /// The batch (ingest request) it belongs to.
    pub batch: String,
    /// Its place in the batch, from 0.
    pub seq: u32,
    pub tenant: String,
    /// The tenant's store id: what its partition is chosen by.
    pub tenant_id: i64,
    /// The telemetry format asked for, if any.
    pub format: Option<String>,
    /// Host name for records that name none.
    pub endpoint: Option<String>,
    /// Who sent it, as the audit log names them.
    pub actor: String,
    /// What the chunk is called in findings and messages.
    pub name: String,
    /// The body's line this chunk starts at, from 1.
    pub first_line: u64,
}

/// What a message of one of the work streams carries in its header.
pub trait Job: Clone + Serialize + serde::de::DeserializeOwned {
    /// The header it is carried in.
    const HEADER: &'static str;
}

impl Job for ChunkMeta {
    const HEADER: &'static str = "Turncoat-Chunk";
}

/// An ingest request whose chunks are all stored in JetStream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRecord {
    pub id: String,
    pub tenant: String,
    pub chunks: u32,
    /// Decompressed bytes taken.
    pub bytes: u64,
    /// When it was accepted, in Unix milliseconds.
    pub accepted_ms: i64,
}

/// A batch and what its workers recorded so far, chunk by chunk (`None`:
/// not committed yet).
#[derive(Clone, Debug)]
pub struct BatchProgress {
    pub record: BatchRecord,
    pub chunks: Vec<Option<serde_json::Value>>,
}

/// The partition of a tenant.
pub fn partition_of(tenant_id: i64) -> u32 {
    tenant_id.rem_euclid(i64::from(PARTITIONS)) as u32
}

/// A connection to the queue, with its streams and buckets made.
#[derive(Clone)]
pub struct Queue {
    client: async_nats::Client,
    js: jetstream::Context,
    names: Names,
    batches: kv::Store,
    bodies: object_store::ObjectStore,
    ack_wait: Duration,
    /// The partitions' consumers, opened on first use.
    consumers: std::sync::Arc<tokio::sync::OnceCell<Vec<consumer::PullConsumer>>>,
    /// The retro-hunt stream's consumer, opened on first use.
    hunts: std::sync::Arc<tokio::sync::OnceCell<consumer::PullConsumer>>,
}

/// Stream, subject and bucket names under one namespace, so that several
/// installations (or test runs) can share a NATS server.
#[derive(Clone, Debug)]
struct Names {
    ingest_stream: String,
    ingest_subject: String,
    hunt_stream: String,
    hunt_subject: String,
    change_stream: String,
    change_subject: String,
    batches: String,
    bodies: String,
    namespace: String,
}

impl Names {
    fn new(namespace: &str) -> Names {
        Names {
            ingest_stream: format!("{}_INGEST", namespace.to_uppercase()),
            ingest_subject: format!("{namespace}.ingest"),
            hunt_stream: format!("{}_HUNT", namespace.to_uppercase()),
            hunt_subject: format!("{namespace}.hunt"),
            change_stream: format!("{}_CHANGES", namespace.to_uppercase()),
            change_subject: format!("{namespace}.changes"),
            batches: format!("{namespace}_batches"),
            bodies: format!("{namespace}_bodies"),
            namespace: namespace.to_owned(),
        }
    }

    fn partition_subject(&self, p: u32) -> String {
        format!("{}.{p}", self.ingest_subject)
    }

    fn consumer(&self, p: u32) -> String {
        format!("ingest-{p}")
    }
}

impl Queue {
    /// Connects and makes (or checks) the streams and buckets.
    pub async fn connect(url: &QueueUrl) -> Result<Queue> {
        Queue::connect_with(url, DEFAULT_ACK_WAIT).await
    }

    /// As [`Queue::connect`], with the time a silent worker keeps a chunk
    /// (the failure tests shorten it; consumers made earlier keep theirs).
    pub async fn connect_with(url: &QueueUrl, ack_wait: Duration) -> Result<Queue> {
        let client = async_nats::ConnectOptions::new()
            .name("turncoat")
            // Keep trying while the server restarts; requests in flight
            // fail and are retried by their callers.
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connect(url.servers())
            .await
            .map_err(nats("connecting to NATS"))?;
        let js = jetstream::new(client.clone());
        let names = Names::new(url.namespace());
        js.get_or_create_stream(stream::Config {
            name: names.ingest_stream.clone(),
            subjects: vec![format!("{}.*", names.ingest_subject)],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .map_err(nats("making the ingest stream"))?;
        hunt::make_streams(&js, &names).await?;
        let batches = key_value(&js, &names.batches).await?;
        let bodies = match js.get_object_store(&names.bodies).await {
            Ok(store) => store,
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: names.bodies.clone(),
                    max_age: KEEP,
                    storage: stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(nats("making the body store"))?,
        };
        Ok(Queue {
            client,
            js,
            names,
            batches,
            bodies,
            ack_wait,
            consumers: Default::default(),
            hunts: Default::default(),
        })
    }

    /// Whether the connection to NATS is up now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// The namespace this queue's streams are named under.
    pub fn namespace(&self) -> &str {
        &self.names.namespace
    }

    /// The largest chunk sent inline in a message; bigger ones go to the
    /// object store.
    pub fn inline_limit(&self) -> usize {
        (self.client.server_info().max_payload).saturating_sub(HEADER_ROOM)
    }

    /// A new batch id: unique, and valid in subjects and keys.
    pub fn new_batch_id() -> String {
        nuid::next().to_string()
    }

    /// Publishes a chunk and waits until JetStream has stored it. A
    /// publish whose acknowledgement is lost is sent again under the same
    /// id, which JetStream drops if the first arrived.
    pub async fn publish(&self, meta: &ChunkMeta, body: Bytes) -> Result<()> {
        let id = format!("{}.{}", meta.batch, meta.seq);
        let (payload, object) = self.payload(&id, body).await?;
        let subject = self.names.partition_subject(partition_of(meta.tenant_id));
        self.send(subject, &id, meta, payload, object.as_deref())
            .await
    }

    /// A body as a message carries it: itself, or (too big) the name it
    /// was stored under in the object store.
    async fn payload(&self, id: &str, body: Bytes) -> Result<(Bytes, Option<String>)> {
        if body.len() <= self.inline_limit() {
            return Ok((body, None));
        }
        let mut reader = &body[..];
        self.bodies
            .put(id, &mut reader)
            .await
            .map_err(nats("storing a body"))?;
        Ok((Bytes::new(), Some(id.to_owned())))
    }

    /// Publishes a job under the message id `id` and waits until
    /// JetStream has stored it, sending again when the acknowledgement
    /// is lost (JetStream drops the copy if the first arrived).
    async fn send<M: Job>(
        &self,
        subject: String,
        id: &str,
        meta: &M,
        payload: Bytes,
        object: Option<&str>,
    ) -> Result<()> {
        let mut headers = HeaderMap::new();
        let json = serde_json::to_string(meta).map_err(nats("encoding a job's header"))?;
        headers.insert(M::HEADER, json.as_str());
        if let Some(object) = object {
            headers.insert(OBJECT_HEADER, object);
        }
        let mut last = None;
        for _ in 0..5 {
            let message = jetstream::message::PublishMessage::build()
                .payload(payload.clone())
                .headers(headers.clone())
                .message_id(id);
            let sent = match self.js.send_publish(subject.clone(), message).await {
                Ok(ack) => ack.await.map(drop).map_err(nats("publishing")),
                Err(e) => Err(nats("publishing")(e)),
            };
            match sent {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(message = %id, error = %e, "publish not acknowledged; sending again");
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        Err(last.expect("a failed attempt"))
    }

    /// Records a batch once every chunk is published.
    pub async fn accept_batch(&self, record: &BatchRecord) -> Result<()> {
        let json = serde_json::to_vec(record).map_err(nats("encoding a batch"))?;
        self.batches
            .put(&record.id, json.into())
            .await
            .map_err(nats("recording a batch"))?;
        Ok(())
    }

    /// Records how a chunk ended (a worker's report, as JSON); with
    /// `keep_earlier`, a report already there is left as it is.
    pub async fn record_chunk(
        &self,
        batch: &str,
        seq: u32,
        report: &serde_json::Value,
        keep_earlier: bool,
    ) -> Result<()> {
        let key = format!("{batch}.{seq}");
        let json: Bytes = serde_json::to_vec(report)
            .map_err(nats("encoding a chunk report"))?
            .into();
        if keep_earlier {
            match self.batches.create(&key, json).await {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => return Ok(()),
                Err(e) => return Err(nats("recording a chunk")(e)),
            }
        }
        self.batches
            .put(key, json)
            .await
            .map_err(nats("recording a chunk"))?;
        Ok(())
    }

    /// A batch and its chunks' reports so far; `None` for an unknown id.
    pub async fn batch(&self, id: &str) -> Result<Option<BatchProgress>> {
        if !valid_id(id) {
            return Ok(None);
        }
        let Some(bytes) = self
            .batches
            .get(id)
            .await
            .map_err(nats("reading a batch"))?
        else {
            return Ok(None);
        };
        let record: BatchRecord =
            serde_json::from_slice(&bytes).map_err(nats("decoding a batch"))?;
        let mut chunks = Vec::with_capacity(record.chunks as usize);
        for seq in 0..record.chunks {
            let report = self
                .batches
                .get(format!("{id}.{seq}"))
                .await
                .map_err(nats("reading a chunk report"))?
                .and_then(|b| serde_json::from_slice(&b).ok());
            chunks.push(report);
        }
        Ok(Some(BatchProgress { record, chunks }))
    }

    /// The consumers that hand out each partition's chunks, made if new.
    async fn consumers(&self) -> Result<&[consumer::PullConsumer]> {
        let consumers = self
            .consumers
            .get_or_try_init(|| async {
                let mut all = Vec::with_capacity(PARTITIONS as usize);
                for p in 0..PARTITIONS {
                    all.push(self.open_consumer(p).await?);
                }
                Ok::<_, QueueError>(all)
            })
            .await?;
        Ok(consumers)
    }

    async fn open_consumer(&self, p: u32) -> Result<consumer::PullConsumer> {
        let stream = self
            .js
            .get_stream(&self.names.ingest_stream)
            .await
            .map_err(nats("opening the ingest stream"))?;
        stream
            .get_or_create_consumer(
                &self.names.consumer(p),
                consumer::pull::Config {
                    durable_name: Some(self.names.consumer(p)),
                    filter_subject: self.names.partition_subject(p),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.ack_wait,
                    // One chunk of a partition in flight: its order is
                    // kept, and no two workers hold it at once.
                    max_ack_pending: 1,
                    max_deliver: MAX_DELIVERIES,
                    ..Default::default()
                },
            )
            .await
            .map_err(nats("opening a partition's consumer"))
    }

    /// Takes partition `p`'s next chunk if one is waiting now (none also
    /// when another worker holds the partition's chunk).
    pub async fn next(&self, p: u32) -> Result<Option<Delivery>> {
        let consumer = &self.consumers().await?[(p % PARTITIONS) as usize];
        // A fetch from a partition whose chunk another worker holds is not
        // answered "none": JetStream keeps it until that chunk is acked,
        // then hands this worker the partition's next chunk. Workers would
        // take turns on one partition while the others wait; so a
        // partition held since less than `ack_wait` is passed by. One held
        // longer is fetched from: if its holder died, that fetch is what
        // has JetStream hand the chunk out again.
        let info = consumer
            .get_info()
            .await
            .map_err(nats("reading a partition's consumer"))?;
        let held_for = info.delivered.last_active.map(|at| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i128);
            Duration::from_nanos((now - at.unix_timestamp_nanos()).max(0) as u64)
        });
        if info.num_ack_pending > 0 && held_for.is_some_and(|held| held < self.ack_wait) {
            return Ok(None);
        }
        self.fetch_one(consumer, true).await
    }

    /// Takes `consumer`'s next message if one is waiting now.
    async fn fetch_one<M: Job>(
        &self,
        consumer: &consumer::PullConsumer,
        owns_body: bool,
    ) -> Result<Option<Delivery<M>>> {
        // An answer normally comes at once (a message, or "none"); one
        // that never comes (a connection lost meanwhile) must not hold the
        // caller. A message sent after we stopped listening is redelivered
        // after `ack_wait`.
        let fetched = tokio::time::timeout(FETCH_WAIT, async {
            let mut batch = consumer
                .fetch()
                .max_messages(1)
                .messages()
                .await
                .map_err(nats("asking for a chunk"))?;
            Ok::<_, QueueError>(batch.next().await)
        })
        .await;
        let message = match fetched {
            Err(_) => {
                tracing::warn!(consumer = ?consumer.cached_info().name, "no answer to a fetch in time");
                return Ok(None);
            }
            Ok(fetched) => match fetched? {
                None => return Ok(None),
                Some(Ok(m)) => m,
                // "no messages", "max ack pending reached" and the like:
                // nothing to take now.
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "nothing fetched");
                    return Ok(None);
                }
            },
        };
        Delivery::new(self, message, owns_body).await.map(Some)
    }

    /// Whether the chunk after `delivery` in its partition is its tenant's
    /// too (then the tenant's post-ingest work can wait for it). `false`
    /// when that cannot be told.
    pub async fn followed_by_same_tenant(&self, delivery: &Delivery) -> bool {
        let Ok(info) = delivery.message.info() else {
            return false;
        };
        let next = info.stream_sequence + 1;
        let subject = self
            .names
            .partition_subject(partition_of(delivery.meta.tenant_id));
        let Ok(stream) = self.js.get_stream_no_info(&self.names.ingest_stream).await else {
            return false;
        };
        let Ok(message) = stream
            .get_first_raw_message_by_subject(&subject, next)
            .await
        else {
            return false;
        };
        message
            .headers
            .get(ChunkMeta::HEADER)
            .and_then(|v| serde_json::from_str::<ChunkMeta>(v.as_str()).ok())
            .is_some_and(|m| m.tenant_id == delivery.meta.tenant_id)
    }

    /// Chunks published and not yet acknowledged, over every partition.
    pub async fn waiting(&self) -> Result<u64> {
        Ok(self.ingest_state().await?.messages)
    }

    async fn ingest_state(&self) -> Result<stream::State> {
        let mut stream = self
            .js
            .get_stream(&self.names.ingest_stream)
            .await
            .map_err(nats("opening the ingest stream"))?;
        let info = stream
            .info()
            .await
            .map_err(nats("reading the ingest stream"))?;
        Ok(info.state.clone())
    }
}

/// The key-value bucket `name`, made if new. Made as the stream that
/// backs a bucket rather than with `create_key_value`, which first reads
/// the account's limits in a form nats-server 2.9 (Debian's) does not
/// answer in; the stream is what that call would make.
async fn key_value(js: &jetstream::Context, name: &str) -> Result<kv::Store> {
    if let Ok(bucket) = js.get_key_value(name).await {
        return Ok(bucket);
    }
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age: KEEP,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .map_err(nats("making a key-value bucket"))?;
    js.get_key_value(name)
        .await
        .map_err(nats("opening a key-value bucket"))
}

/// Batch ids are NUIDs: anything else is no batch (and never a KV key
/// wildcard).
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A job (by default an ingest chunk) a worker holds until it
/// acknowledges it.
pub struct Delivery<M = ChunkMeta> {
    pub meta: M,
    pub body: Bytes,
    /// How many times it has been handed out, this time included.
    pub deliveries: i64,
    object: Option<String>,
    /// Whether the stored body is this job's alone (deleted once done) or
    /// shared with others (left to the store's age limit).
    owns_body: bool,
    message: jetstream::Message,
    bodies: object_store::ObjectStore,
}

impl<M: Job> Delivery<M> {
    async fn new(queue: &Queue, message: jetstream::Message, owns_body: bool) -> Result<Self> {
        let (sequence, deliveries) = message
            .info()
            .map(|i| (i.stream_sequence, i.delivered))
            .unwrap_or((0, 1));
        let bad = |what: &str| QueueError::BadMessage {
            subject: message.subject.to_string(),
            sequence,
            message: what.to_owned(),
        };
        let headers = message.headers.clone().unwrap_or_default();
        let meta: M = headers
            .get(M::HEADER)
            .ok_or_else(|| bad(&format!("no {} header", M::HEADER)))
            .and_then(|v| {
                serde_json::from_str(v.as_str())
                    .map_err(|e| bad(&format!("{} header: {e}", M::HEADER)))
            })?;
        let object = headers.get(OBJECT_HEADER).map(|v| v.as_str().to_owned());
        let body = match &object {
            None => message.payload.clone(),
            Some(name) => {
                let mut body = Vec::new();
                let mut object = queue
                    .bodies
                    .get(name)
                    .await
                    .map_err(nats("reading a stored body"))?;
                object
                    .read_to_end(&mut body)
                    .await
                    .map_err(nats("reading a stored body"))?;
                body.into()
            }
        };
        Ok(Delivery {
            meta,
            body,
            deliveries,
            object,
            owns_body,
            message,
            bodies: queue.bodies.clone(),
        })
    }

    /// Tells JetStream the chunk is still being worked on.
    pub async fn progress(&self) -> Result<()> {
        self.message
            .ack_with(jetstream::AckKind::Progress)
            .await
            .map_err(nats("extending a chunk's lease"))
    }

    /// Done: JetStream removes the chunk (and its body, if stored apart).
    pub async fn ack(self) -> Result<()> {
        self.message
            .double_ack()
            .await
            .map_err(nats("acknowledging a chunk"))?;
        self.forget_body().await;
        Ok(())
    }

    /// Not now: handed out again after `delay`.
    pub async fn retry_later(self, delay: Duration) -> Result<()> {
        self.message
            .ack_with(jetstream::AckKind::Nak(Some(delay)))
            .await
            .map_err(nats("returning a chunk"))
    }

    /// Given up: never handed out again.
    pub async fn give_up(self) -> Result<()> {
        self.message
            .ack_with(jetstream::AckKind::Term)
            .await
            .map_err(nats("giving up a chunk"))?;
        self.forget_body().await;
        Ok(())
    }

    async fn forget_body(&self) {
        if let Some(name) = self.object.as_ref().filter(|_| self.owns_body)
            && let Err(e) = self.bodies.delete(name).await
        {
            // The bucket's age limit removes it in the end.
            tracing::warn!(body = %name, error = %e, "a stored chunk body was not deleted");
        }
    }
}

impl<M: std::fmt::Debug> std::fmt::Debug for Delivery<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("meta", &self.meta)
            .field("bytes", &self.body.len())
            .field("deliveries", &self.deliveries)
            .finish()
    }
}
