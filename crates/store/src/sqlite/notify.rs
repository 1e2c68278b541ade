//! Notification targets, the changes each has not read yet, and the
//! outbox they are delivered from. Queuing and moving a target's cursors
//! are one transaction, so a change is queued once and never skipped;
//! delivery is at least once, each notification keyed for the receiver
//! to drop a repeat.

use super::alerts::{ALERT_SELECT, alert_row};
use super::*;
use crate::rows::split_list;
use crate::{
    Delivery, NewNotification, NewNotifyTarget, Notification, NotifyChanges, NotifyCursors,
    NotifyTarget,
};

const TARGET_SELECT: &str = "SELECT id, tenant_id, name, kind, address, format, events, kinds, min_severity, added, ca FROM notify_targets";

/// A target row, its tenant named from `tenants` (read once per query).
fn target_row(
    tenants: &[Tenant],
    r: &rusqlite::Row,
) -> rusqlite::Result<(NotifyTarget, Option<i64>)> {
    let tenant_id: Option<i64> = r.get(1)?;
    let tenant =
        tenant_id.and_then(|id| tenants.iter().find(|t| t.id == id).map(|t| t.name.clone()));
    let kinds: String = r.get(7)?;
    Ok((
        NotifyTarget {
            id: r.get(0)?,
            tenant,
            name: r.get(2)?,
            kind: r.get(3)?,
            address: r.get(4)?,
            format: r.get(5)?,
            events: split_list(&r.get::<_, String>(6)?),
            kinds: split_list(&kinds)
                .iter()
                .filter_map(|k| k.parse().ok())
                .collect(),
            min_severity: r.get::<_, Option<i64>>(8)?.map(severity_from_rank),
            added: Time(r.get(9)?),
            ca: r.get(10)?,
        },
        tenant_id,
    ))
}

fn targets_all(store: &SqliteStore) -> Result<Vec<(NotifyTarget, Option<i64>)>> {
    let mut stmt = store
        .conn
        .prepare_cached(&format!("{TARGET_SELECT} ORDER BY id"))?;
    let tenants = store.tenants()?;
    let rows = stmt.query_map([], |r| target_row(&tenants, r))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

pub(super) fn add_notify_target(
    store: &mut SqliteStore,
    tenant: Option<&Tenant>,
    t: &NewNotifyTarget<'_>,
    actor: &Actor,
) -> Result<NotifyTarget> {
    let tx = store.conn.transaction()?;
    let taken: i64 = tx.query_row(
        "SELECT count(*) FROM notify_targets WHERE name = ?",
        [t.name],
        |r| r.get(0),
    )?;
    if taken > 0 {
        return Err(StoreError::TargetExists(t.name.to_owned()));
    }
    let max = |sql: &str| -> rusqlite::Result<i64> { tx.query_row(sql, [], |r| r.get(0)) };
    let cursors = (
        max("SELECT coalesce(max(id), 0) FROM alerts")?,
        max("SELECT coalesce(max(id), 0) FROM alert_history")?,
        max("SELECT coalesce(max(id), 0) FROM campaigns")?,
    );
    let kinds: Vec<&str> = t.kinds.iter().map(|k| k.as_str()).collect();
    tx.execute(
        "INSERT INTO notify_targets (tenant_id, name, kind, address, secret, format, events, kinds, min_severity, added, alert_cursor, history_cursor, campaign_cursor, ca)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            tenant.map(|x| x.id),
            t.name,
            t.kind,
            t.address,
            t.secret,
            t.format,
            t.events.join(","),
            kinds.join(","),
            t.min_severity.map(severity_rank),
            Time::now().0,
            cursors.0,
            cursors.1,
            cursors.2,
            t.ca
        ],
    )?;
    let id = tx.last_insert_rowid();
    audit_tx(
        &tx,
        actor,
        tenant.map(|x| x.id),
        "notify.add",
        &format!("{} {} {} ({})", t.name, t.kind, t.address, t.format),
    )?;
    commit(tx, &store.dir)?;
    targets_all(store)?
        .into_iter()
        .map(|(t, _)| t)
        .find(|t| t.id == id)
        .ok_or(StoreError::NoSuchTarget(id))
}

pub(super) fn notify_targets(store: &SqliteStore, scope: &Scope) -> Result<Vec<NotifyTarget>> {
    Ok(targets_all(store)?
        .into_iter()
        .filter(|(_, tid)| crate::rows::in_scope(scope, *tid))
        .map(|(t, _)| t)
        .collect())
}

pub(super) fn remove_notify_target(
    store: &mut SqliteStore,
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
    let tx = store.conn.transaction()?;
    tx.execute("DELETE FROM outbox WHERE target_id = ?", [id])?;
    tx.execute("DELETE FROM notify_targets WHERE id = ?", [id])?;
    audit_tx(&tx, actor, tid, "notify.remove", &target.name)?;
    commit(tx, &store.dir)
}

pub(super) fn notify_secret(store: &SqliteStore, id: i64) -> Result<Option<String>> {
    store
        .conn
        .query_row(
            "SELECT secret FROM notify_targets WHERE id = ?",
            [id],
            |r| r.get::<_, Option<String>>(0),
        )
        .optional()?
        .ok_or(StoreError::NoSuchTarget(id))
}

pub(super) fn notify_changes(
    store: &SqliteStore,
    target: &NotifyTarget,
    limit: usize,
) -> Result<NotifyChanges> {
    let (cursors, tenant_id): ((i64, i64, i64), Option<i64>) = store.conn.query_row(
        "SELECT alert_cursor, history_cursor, campaign_cursor, tenant_id FROM notify_targets WHERE id = ?",
        [target.id],
        |r| Ok(((r.get(0)?, r.get(1)?, r.get(2)?), r.get(3)?)),
    )?;
    let tenants = store.tenants()?;
    let name_of = |id: i64| tenants.iter().find(|t| t.id == id).map(|t| t.name.clone());
    let mut out = NotifyChanges {
        cursors: NotifyCursors {
            alert: cursors.0,
            history: cursors.1,
            campaign: cursors.2,
        },
        ..Default::default()
    };
    let mut stmt = store.conn.prepare_cached(&format!(
        "{ALERT_SELECT} WHERE a.id > ?1 AND (?2 IS NULL OR a.tenant_id = ?2) ORDER BY a.id LIMIT ?3"
    ))?;
    let mut rows = stmt.query(params![cursors.0, tenant_id, limit as i64])?;
    while let Some(r) = rows.next()? {
        let tid: i64 = r.get(17)?;
        let Some(name) = name_of(tid) else { continue };
        let alert = alert_row(&name, r)?;
        out.cursors.alert = alert.id.get();
        out.new_alerts.push(alert);
    }
    let mut stmt = store.conn.prepare_cached(
        "SELECT id, tenant_id, alert_id, time, actor, action, value, note FROM alert_history
         WHERE id > ?1 AND (?2 IS NULL OR tenant_id = ?2) ORDER BY id LIMIT ?3",
    )?;
    let history: Vec<(i64, i64, i64, AlertChange)> = stmt
        .query_map(params![cursors.1, tenant_id, limit as i64], |r| {
            let action: String = r.get(5)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                AlertChange {
                    time: Time(r.get(3)?),
                    actor: r.get(4)?,
                    action: AlertAction::ALL
                        .into_iter()
                        .find(|a| a.as_str() == action)
                        .unwrap_or(AlertAction::Comment),
                    value: r.get(6)?,
                    note: r.get(7)?,
                },
            ))
        })?
        .collect::<std::result::Result<_, _>>()?;
    for (id, tid, alert_id, change) in history {
        out.cursors.history = id;
        let Some(tenant) = tenants.iter().find(|t| t.id == tid) else {
            continue;
        };
        if let Some(alert) = store.alert(&Scope::tenant(tenant), AlertId::new(alert_id))? {
            out.changes.push((id, change, alert));
        }
    }
    if tenant_id.is_none() {
        for c in store.campaigns(&Scope::tenants(&tenants))? {
            if c.id > cursors.2 && out.campaigns.len() < limit {
                out.cursors.campaign = out.cursors.campaign.max(c.id);
                out.campaigns.push(c);
            }
        }
    }
    Ok(out)
}

pub(super) fn enqueue_notifications(
    store: &mut SqliteStore,
    target: i64,
    cursors: NotifyCursors,
    notifications: &[NewNotification],
    now: Time,
) -> Result<()> {
    let tx = store.conn.transaction()?;
    for n in notifications {
        tx.prepare_cached(
            "INSERT INTO outbox (target_id, key, event, payload, created, next_attempt) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (target_id, key) DO NOTHING",
        )?
        .execute(params![target, n.key, n.event, n.payload, now.0, now.0])?;
    }
    let moved = tx.execute(
        "UPDATE notify_targets SET alert_cursor = max(alert_cursor, ?), history_cursor = max(history_cursor, ?), campaign_cursor = max(campaign_cursor, ?) WHERE id = ?",
        params![cursors.alert, cursors.history, cursors.campaign, target],
    )?;
    if moved == 0 {
        return Err(StoreError::NoSuchTarget(target));
    }
    commit(tx, &store.dir)
}

const NOTIFICATION_SELECT: &str = "SELECT id, target_id, key, event, payload, created, attempts, next_attempt, delivered, dead, error FROM outbox";

fn notifications_where(
    store: &SqliteStore,
    clause: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Notification>> {
    let targets = targets_all(store)?;
    let mut stmt = store
        .conn
        .prepare_cached(&format!("{NOTIFICATION_SELECT} {clause}"))?;
    let rows = stmt.query_map(args, |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, i64>(6)?,
            r.get::<_, i64>(7)?,
            r.get::<_, Option<i64>>(8)?,
            r.get::<_, Option<i64>>(9)?,
            r.get::<_, Option<String>>(10)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, tid, key, event, payload, created, attempts, next, delivered, dead, error) = row?;
        let Some((target, _)) = targets.iter().find(|(t, _)| t.id == tid) else {
            continue;
        };
        out.push(Notification {
            id,
            target: target.clone(),
            key,
            event,
            payload,
            created: Time(created),
            attempts: attempts as u32,
            next_attempt: Time(next),
            delivered: delivered.map(Time),
            dead: dead.map(Time),
            error,
        });
    }
    Ok(out)
}

pub(super) fn due_notifications(store: &SqliteStore, now: Time) -> Result<Vec<Notification>> {
    notifications_where(
        store,
        "WHERE id IN (SELECT min(id) FROM outbox WHERE delivered IS NULL AND dead IS NULL GROUP BY target_id)
         AND next_attempt <= ? ORDER BY id",
        &[&now.0],
    )
}

pub(super) fn record_delivery(
    store: &mut SqliteStore,
    id: i64,
    delivery: &Delivery,
    now: Time,
) -> Result<()> {
    let changed = match delivery {
        Delivery::Delivered => store.conn.execute(
            "UPDATE outbox SET delivered = ?, attempts = attempts + 1, error = NULL WHERE id = ?",
            params![now.0, id],
        )?,
        Delivery::Failed { error, retry_at } => store.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, error = ?, next_attempt = coalesce(?, next_attempt),
                 dead = CASE WHEN ? IS NULL THEN ? ELSE NULL END WHERE id = ?",
            params![error, retry_at.map(|t| t.0), retry_at.map(|t| t.0), now.0, id],
        )?,
    };
    if changed == 0 {
        return Err(StoreError::Corrupt(format!("no notification {id}")));
    }
    Ok(())
}

pub(super) fn notifications(
    store: &SqliteStore,
    scope: &Scope,
    dead: bool,
    limit: usize,
) -> Result<Vec<Notification>> {
    let visible_ids: Vec<i64> = targets_all(store)?
        .into_iter()
        .filter(|(_, tid)| crate::rows::in_scope(scope, *tid))
        .map(|(t, _)| t.id)
        .collect();
    let clause = if dead {
        "WHERE dead IS NOT NULL ORDER BY id DESC"
    } else {
        "ORDER BY id DESC"
    };
    Ok(notifications_where(store, clause, &[])?
        .into_iter()
        .filter(|n| visible_ids.contains(&n.target.id))
        .take(limit)
        .collect())
}
