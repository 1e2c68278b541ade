//! Notification targets, the changes each has not read yet, and the
//! outbox, in PostgreSQL. Queuing and moving a target's cursors are one
//! transaction, as in the embedded store.

use postgres::Row;
use postgres::types::ToSql;
use turncoat_core::{Actor, AlertId, Time};

use super::alerts::{ALERT_SELECT, alert_row, history_row, severity_of};
use super::{PgStore, audit_tx};
use crate::rows::{severity_rank, split_list};
use crate::{
    Delivery, NewNotification, NewNotifyTarget, Notification, NotifyChanges, NotifyCursors,
    NotifyTarget, Result, Scope, Store, StoreError, Tenant,
};

const TARGET_SELECT: &str = "SELECT id, tenant_id, name, kind, address, format, events, kinds, min_severity, added, ca FROM notify_targets";

/// A target row, its tenant named from `tenants` (read once per query).
fn target_row(tenants: &[Tenant], r: &Row) -> Result<(NotifyTarget, Option<i64>)> {
    let tenant_id: Option<i64> = r.try_get(1)?;
    let tenant =
        tenant_id.and_then(|id| tenants.iter().find(|t| t.id == id).map(|t| t.name.clone()));
    Ok((
        NotifyTarget {
            id: r.try_get(0)?,
            tenant,
            name: r.try_get(2)?,
            kind: r.try_get(3)?,
            address: r.try_get(4)?,
            format: r.try_get(5)?,
            events: split_list(r.try_get(6)?),
            kinds: split_list(r.try_get(7)?)
                .iter()
                .filter_map(|k| k.parse().ok())
                .collect(),
            min_severity: severity_of(r.try_get(8)?),
            added: Time(r.try_get(9)?),
            ca: r.try_get(10)?,
        },
        tenant_id,
    ))
}

fn targets_all(store: &PgStore) -> Result<Vec<(NotifyTarget, Option<i64>)>> {
    let tenants = store.tenants()?;
    store
        .db()
        .query(&format!("{TARGET_SELECT} ORDER BY id"), &[])?
        .iter()
        .map(|r| target_row(&tenants, r))
        .collect()
}

pub(super) fn add_notify_target(
    store: &mut PgStore,
    tenant: Option<&Tenant>,
    t: &NewNotifyTarget<'_>,
    actor: &Actor,
) -> Result<NotifyTarget> {
    let mut tx = store.client.get_mut().transaction()?;
    let kinds: Vec<&str> = t.kinds.iter().map(|k| k.as_str()).collect();
    let tid = tenant.map(|x| x.id);
    // A new target hears of what happens from now on.
    let inserted = tx.query_opt(
        "INSERT INTO notify_targets (tenant_id, name, kind, address, secret, format, events, kinds, min_severity, added,
                                     alert_cursor, history_cursor, campaign_cursor, ca)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                 (SELECT coalesce(max(id), 0) FROM alerts),
                 (SELECT coalesce(max(id), 0) FROM alert_history),
                 (SELECT coalesce(max(id), 0) FROM campaigns), $11)
         ON CONFLICT (name) DO NOTHING RETURNING id",
        &[
            &tid,
            &t.name,
            &t.kind,
            &t.address,
            &t.secret,
            &t.format,
            &t.events.join(","),
            &kinds.join(","),
            &t.min_severity.map(severity_rank),
            &Time::now().0,
            &t.ca,
        ],
    )?;
    let id: i64 = inserted
        .ok_or_else(|| StoreError::TargetExists(t.name.to_owned()))?
        .try_get(0)?;
    audit_tx(
        &mut tx,
        actor,
        tid,
        "notify.add",
        &format!("{} {} {} ({})", t.name, t.kind, t.address, t.format),
    )?;
    tx.commit()?;
    targets_all(store)?
        .into_iter()
        .map(|(t, _)| t)
        .find(|t| t.id == id)
        .ok_or(StoreError::NoSuchTarget(id))
}

pub(super) fn notify_targets(store: &PgStore, scope: &Scope) -> Result<Vec<NotifyTarget>> {
    Ok(targets_all(store)?
        .into_iter()
        .filter(|(_, tid)| crate::rows::in_scope(scope, *tid))
        .map(|(t, _)| t)
        .collect())
}

pub(super) fn remove_notify_target(
    store: &mut PgStore,
    scope: &Scope,
    id: i64,
    actor: &Actor,
) -> Result<()> {
    let found = targets_all(store)?
        .into_iter()
        .find(|(t, tid)| t.id == id && crate::rows::in_scope(scope, *tid));
    let Some((target, tid)) = found else {
        return Err(StoreError::NoSuchTarget(id));
    };
    let mut tx = store.client.get_mut().transaction()?;
    tx.execute("DELETE FROM outbox WHERE target_id = $1", &[&id])?;
    tx.execute("DELETE FROM notify_targets WHERE id = $1", &[&id])?;
    audit_tx(&mut tx, actor, tid, "notify.remove", &target.name)?;
    tx.commit()?;
    Ok(())
}

pub(super) fn notify_changes(
    store: &PgStore,
    target: &NotifyTarget,
    limit: usize,
) -> Result<NotifyChanges> {
    let r = store.db().query_one(
        "SELECT alert_cursor, history_cursor, campaign_cursor, tenant_id FROM notify_targets WHERE id = $1",
        &[&target.id],
    )?;
    let cursors = NotifyCursors {
        alert: r.try_get(0)?,
        history: r.try_get(1)?,
        campaign: r.try_get(2)?,
    };
    let tenant_id: Option<i64> = r.try_get(3)?;
    let tenants = store.tenants()?;
    let mut out = NotifyChanges {
        cursors,
        ..Default::default()
    };
    let rows = store.db().query(
        &format!(
            "{ALERT_SELECT} WHERE a.id > $1 AND ($2::bigint IS NULL OR a.tenant_id = $2) ORDER BY a.id LIMIT $3"
        ),
        &[&cursors.alert, &tenant_id, &super::sql_limit(limit)],
    )?;
    for r in &rows {
        let tid: i64 = r.try_get(17)?;
        let Some(tenant) = tenants.iter().find(|t| t.id == tid) else {
            continue;
        };
        let alert = alert_row(&tenant.name, r)?;
        out.cursors.alert = alert.id.get();
        out.new_alerts.push(alert);
    }
    let history = store.db().query(
        "SELECT time, actor, action, value, note, id, tenant_id, alert_id FROM alert_history
         WHERE id > $1 AND ($2::bigint IS NULL OR tenant_id = $2) ORDER BY id LIMIT $3",
        &[&cursors.history, &tenant_id, &super::sql_limit(limit)],
    )?;
    for r in &history {
        let (id, tid, alert_id): (i64, i64, i64) = (r.try_get(5)?, r.try_get(6)?, r.try_get(7)?);
        out.cursors.history = id;
        let Some(tenant) = tenants.iter().find(|t| t.id == tid) else {
            continue;
        };
        if let Some(alert) = store.alert(&Scope::tenant(tenant), AlertId::new(alert_id))? {
            out.changes.push((id, history_row(r)?, alert));
        }
    }
    if tenant_id.is_none() {
        for c in store.campaigns(&Scope::tenants(&tenants))? {
            if c.id > cursors.campaign && out.campaigns.len() < limit {
                out.cursors.campaign = out.cursors.campaign.max(c.id);
                out.campaigns.push(c);
            }
        }
    }
    Ok(out)
}

pub(super) fn enqueue_notifications(
    store: &mut PgStore,
    target: i64,
    cursors: NotifyCursors,
    notifications: &[NewNotification],
    now: Time,
) -> Result<()> {
    let mut tx = store.client.get_mut().transaction()?;
    for n in notifications {
        tx.execute(
            "INSERT INTO outbox (target_id, key, event, payload, created, next_attempt) VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (target_id, key) DO NOTHING",
            &[&target, &n.key, &n.event, &n.payload, &now.0],
        )?;
    }
    let moved = tx.execute(
        "UPDATE notify_targets SET alert_cursor = greatest(alert_cursor, $1), history_cursor = greatest(history_cursor, $2),
             campaign_cursor = greatest(campaign_cursor, $3) WHERE id = $4",
        &[&cursors.alert, &cursors.history, &cursors.campaign, &target],
    )?;
    if moved == 0 {
        return Err(StoreError::NoSuchTarget(target));
    }
    tx.commit()?;
    Ok(())
}

const NOTIFICATION_SELECT: &str = "SELECT id, target_id, key, event, payload, created, attempts, next_attempt, delivered, dead, error FROM outbox";

fn notifications_where(
    store: &PgStore,
    clause: &str,
    args: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Notification>> {
    let targets = targets_all(store)?;
    let rows = store
        .db()
        .query(&format!("{NOTIFICATION_SELECT} {clause}"), args)?;
    let mut out = Vec::new();
    for r in &rows {
        let tid: i64 = r.try_get(1)?;
        let Some((target, _)) = targets.iter().find(|(t, _)| t.id == tid) else {
            continue;
        };
        out.push(Notification {
            id: r.try_get(0)?,
            target: target.clone(),
            key: r.try_get(2)?,
            event: r.try_get(3)?,
            payload: r.try_get(4)?,
            created: Time(r.try_get(5)?),
            attempts: r.try_get::<_, i64>(6)? as u32,
            next_attempt: Time(r.try_get(7)?),
            delivered: r.try_get::<_, Option<i64>>(8)?.map(Time),
            dead: r.try_get::<_, Option<i64>>(9)?.map(Time),
            error: r.try_get(10)?,
        });
    }
    Ok(out)
}

pub(super) fn due_notifications(store: &PgStore, now: Time) -> Result<Vec<Notification>> {
    notifications_where(
        store,
        "WHERE id IN (SELECT min(id) FROM outbox WHERE delivered IS NULL AND dead IS NULL GROUP BY target_id)
         AND next_attempt <= $1 ORDER BY id",
        &[&now.0],
    )
}

pub(super) fn record_delivery(
    store: &mut PgStore,
    id: i64,
    delivery: &Delivery,
    now: Time,
) -> Result<()> {
    let db = store.client.get_mut();
    let changed = match delivery {
        Delivery::Delivered => db.execute(
            "UPDATE outbox SET delivered = $1, attempts = attempts + 1, error = NULL WHERE id = $2",
            &[&now.0, &id],
        )?,
        Delivery::Failed { error, retry_at } => db.execute(
            "UPDATE outbox SET attempts = attempts + 1, error = $1, next_attempt = coalesce($2, next_attempt),
                 dead = CASE WHEN $2::bigint IS NULL THEN $3::bigint ELSE NULL END WHERE id = $4",
            &[error, &retry_at.map(|t| t.0), &now.0, &id],
        )?,
    };
    if changed == 0 {
        return Err(StoreError::Corrupt(format!("no notification {id}")));
    }
    Ok(())
}

pub(super) fn notifications(
    store: &PgStore,
    scope: &Scope,
    dead: bool,
    limit: usize,
) -> Result<Vec<Notification>> {
    let visible_ids: Vec<i64> = targets_all(store)?
        .into_iter()
        .filter(|(_, tid)| crate::rows::in_scope(scope, *tid))
        .map(|(t, _)| t.id)
        .collect();
    notifications_where(
        store,
        "WHERE target_id = ANY($1) AND ($2 OR dead IS NOT NULL) ORDER BY id DESC LIMIT $3",
        &[&visible_ids, &!dead, &super::sql_limit(limit)],
    )
}
