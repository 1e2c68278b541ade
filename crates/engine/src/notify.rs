//! Notifications: what each target has not heard of yet (new alerts,
//! status changes, resurfacings, campaigns), filtered by its kinds and
//! severity, queued in the store's outbox as JSON documents that
//! `turncoat_respond::notify` writes in the target's format at delivery.

use serde_json::{Value, json};
use turncoat_core::Time;
use turncoat_store::{Alert, AlertAction, NewNotification, NotifyTarget, Store};

use crate::Result;

/// Changes read per target per round.
const BATCH: usize = 1000;

/// Queues what every target has not heard of; the number queued.
pub fn queue(store: &mut dyn Store, now: Time) -> Result<usize> {
    let mut queued = 0;
    for target in store.notify_targets(&store.all_tenants()?)? {
        loop {
            let changes = store.notify_changes(&target, BATCH)?;
            let read = changes.new_alerts.len() + changes.changes.len() + changes.campaigns.len();
            let mut out = Vec::new();
            for a in &changes.new_alerts {
                if hears(&target, "new", a) {
                    out.push(document(
                        "new",
                        &format!("new:{}", a.id.get()),
                        a.created,
                        a,
                        None,
                    ));
                }
            }
            for (history, change, a) in &changes.changes {
                let event = match change.action {
                    AlertAction::Status => "status",
                    AlertAction::Resurfaced => "resurfaced",
                    _ => continue,
                };
                if hears(&target, event, a) {
                    let detail = json!({
                        "actor": change.actor,
                        "value": change.value,
                        "note": change.note,
                    });
                    out.push(document(
                        event,
                        &format!("{event}:{history}"),
                        change.time,
                        a,
                        Some(detail),
                    ));
                }
            }
            if target.events.iter().any(|e| e == "campaign") {
                for c in &changes.campaigns {
                    let key = format!("campaign:{}", c.id);
                    let doc = json!({
                        "id": key,
                        "event": "campaign",
                        "time": c.last_seen.to_rfc3339(),
                        "alert": {
                            "id": c.id,
                            "kind": "campaign",
                            "source": c.source,
                            "title": c.title,
                            "tenants": c.tenants,
                            "members": c.member_alerts,
                            "severity": "high",
                        },
                    });
                    out.push(NewNotification {
                        key,
                        event: "campaign".into(),
                        payload: doc.to_string(),
                    });
                }
            }
            queued += out.len();
            store.enqueue_notifications(target.id, changes.cursors, &out, now)?;
            if read < BATCH {
                break;
            }
        }
    }
    Ok(queued)
}

/// Whether the target hears of `event` on this alert.
fn hears(target: &NotifyTarget, event: &str, a: &Alert) -> bool {
    target.events.iter().any(|e| e == event)
        && (target.kinds.is_empty() || target.kinds.contains(&a.kind))
        && target.min_severity.is_none_or(|m| a.severity >= m)
}

fn document(
    event: &str,
    key: &str,
    time: Time,
    alert: &Alert,
    change: Option<Value>,
) -> NewNotification {
    let mut doc = json!({
        "id": key,
        "event": event,
        "time": time.to_rfc3339(),
        "alert": alert,
    });
    if let Some(c) = change {
        doc["change"] = c;
    }
    NewNotification {
        key: key.to_owned(),
        event: event.to_owned(),
        payload: doc.to_string(),
    }
}
