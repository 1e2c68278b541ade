//! Retro-hunt jobs and content-change announcements.
//!
//! - **Retro-hunts** go to a second work-queue stream (`<ns>.hunt`), one
//!   job per tenant, all naming the same plan (what the import made new),
//!   which travels in the message or, when large, once in the object
//!   store. A job also carries how far the ingest stream had got when it
//!   was handed out: its worker waits until the tenant's partition has no
//!   older chunk left, so that every chunk matched against the old
//!   content is committed before the hunt reads the tenant's data, and
//!   every later chunk is matched against the new.
//! - **Changes** to indicators, advisories or rules are announced on
//!   `<ns>.changes` (a stream kept a day): each worker follows it and
//!   loads its content again.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use crate::{Delivery, Job, MAX_DELIVERIES, Names, Queue, Result, nats, partition_of};

/// Retro-hunt jobs one worker may hold at once, over all tenants.
const HUNTS_IN_FLIGHT: i64 = 64;

/// How long change announcements are kept for a worker that reconnects.
const CHANGES_KEPT: Duration = Duration::from_secs(24 * 3600);

/// One tenant's share of a retro-hunt, carried in its message's header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HuntMeta {
    /// The hunt (one intel import) it belongs to.
    pub hunt: String,
    pub tenant: String,
    pub tenant_id: i64,
    /// Who imported the intel, as the audit log names them.
    pub actor: String,
    /// The ingest stream's last sequence when the hunt was handed out.
    pub after: u64,
}

impl Job for HuntMeta {
    const HEADER: &'static str = "Turncoat-Hunt";
}

pub(crate) async fn make_streams(js: &jetstream::Context, names: &Names) -> Result<()> {
    js.get_or_create_stream(stream::Config {
        name: names.hunt_stream.clone(),
        subjects: vec![names.hunt_subject.clone()],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(nats("making the retro-hunt stream"))?;
    js.get_or_create_stream(stream::Config {
        name: names.change_stream.clone(),
        subjects: vec![names.change_subject.clone()],
        storage: stream::StorageType::File,
        max_age: CHANGES_KEPT,
        ..Default::default()
    })
    .await
    .map_err(nats("making the change stream"))?;
    Ok(())
}

impl Queue {
    /// Hands out a retro-hunt: `plan` (opaque here) for each of `tenants`
    /// (name and store id), as the import of `actor`. Answers the hunt's
    /// id once JetStream has stored every job.
    pub async fn hand_out_hunt(
        &self,
        plan: Bytes,
        tenants: &[(String, i64)],
        actor: &str,
    ) -> Result<String> {
        let hunt = Queue::new_batch_id();
        // The last sequence the ingest stream has given a chunk.
        let after = self.ingest_state().await?.last_sequence;
        let (payload, object) = self.payload(&format!("hunt-{hunt}"), plan).await?;
        for (tenant, tenant_id) in tenants {
            let meta = HuntMeta {
                hunt: hunt.clone(),
                tenant: tenant.clone(),
                tenant_id: *tenant_id,
                actor: actor.to_owned(),
                after,
            };
            let id = format!("{hunt}.{tenant_id}");
            let subject = self.names.hunt_subject.clone();
            self.send(subject, &id, &meta, payload.clone(), object.as_deref())
                .await?;
        }
        Ok(hunt)
    }

    /// Takes the next retro-hunt job if one is waiting now.
    pub async fn next_hunt(&self) -> Result<Option<Delivery<HuntMeta>>> {
        let consumer = self
            .hunts
            .get_or_try_init(|| async {
                let stream = self
                    .js
                    .get_stream(&self.names.hunt_stream)
                    .await
                    .map_err(nats("opening the retro-hunt stream"))?;
                stream
                    .get_or_create_consumer(
                        "hunt",
                        consumer::pull::Config {
                            durable_name: Some("hunt".into()),
                            ack_policy: consumer::AckPolicy::Explicit,
                            ack_wait: self.ack_wait,
                            max_ack_pending: HUNTS_IN_FLIGHT,
                            max_deliver: MAX_DELIVERIES,
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(nats("opening the retro-hunt consumer"))
            })
            .await?;
        // The plan may be shared with the hunt's other jobs.
        self.fetch_one(consumer, false).await
    }

    /// Whether every chunk of `tenant_id`'s partition up to the ingest
    /// stream's sequence `after` is done (acknowledged chunks leave a
    /// work-queue stream).
    pub async fn partition_done_to(&self, tenant_id: i64, after: u64) -> Result<bool> {
        let stream = self
            .js
            .get_stream_no_info(&self.names.ingest_stream)
            .await
            .map_err(nats("opening the ingest stream"))?;
        let subject = self.names.partition_subject(partition_of(tenant_id));
        match stream.get_first_raw_message_by_subject(&subject, 1).await {
            Ok(oldest) => Ok(oldest.sequence > after),
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(true),
            Err(e) => Err(nats("reading a partition's oldest chunk")(e)),
        }
    }

    /// Tells every worker that indicators, advisories or rules changed.
    pub async fn announce_change(&self, what: &str) -> Result<()> {
        self.js
            .publish(
                self.names.change_subject.clone(),
                Bytes::from(what.to_owned()),
            )
            .await
            .map_err(nats("announcing a change"))?
            .await
            .map_err(nats("announcing a change"))?;
        Ok(())
    }

    /// The changes announced from now on (what changed, as announced).
    pub async fn changes(&self) -> Result<impl Stream<Item = String> + use<>> {
        let stream = self
            .js
            .get_stream_no_info(&self.names.change_stream)
            .await
            .map_err(nats("opening the change stream"))?;
        let consumer = stream
            .create_consumer(consumer::push::OrderedConfig {
                deliver_subject: self.client.new_inbox(),
                deliver_policy: consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(nats("following the change stream"))?;
        let messages = consumer
            .messages()
            .await
            .map_err(nats("following the change stream"))?;
        Ok(messages.filter_map(|m| async move {
            match m {
                Ok(m) => Some(String::from_utf8_lossy(&m.payload).into_owned()),
                Err(e) => {
                    tracing::warn!(error = %e, "the change stream was interrupted");
                    None
                }
            }
        }))
    }
}
