//! Suppressions: rules that hold matching alerts as `suppressed` until
//! they end, when those alerts resurface.

use super::alerts::{record_change, resurface};
use super::*;

pub(super) fn add_suppression(
    store: &mut SqliteStore,
    tenant: Option<&Tenant>,
    new: &NewSuppression<'_>,
    actor: &Actor,
) -> Result<(Suppression, Vec<AlertId>)> {
    let tx = store.conn.transaction()?;
    let now = Time::now();
    let tid = tenant.map(|t| t.id);
    let id: i64 = tx.query_row(
        "INSERT INTO suppressions (tenant_id, kind, source, endpoint, reason, owner, created, expires)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        params![
            tid,
            new.kind.map(AlertKind::as_str),
            new.source,
            new.endpoint,
            new.reason,
            actor.to_string(),
            now.0,
            new.expires.map(|t| t.0)
        ],
        |r| r.get(0),
    )?;
    let matching: Vec<(i64, i64)> = tx
        .prepare(
            "SELECT a.id, a.tenant_id FROM alerts a
             JOIN endpoints e ON e.id = a.endpoint_id AND e.tenant_id = a.tenant_id
             WHERE (?1 IS NULL OR a.tenant_id = ?1) AND (?2 IS NULL OR a.kind = ?2)
               AND a.source = ?3 COLLATE NOCASE AND (?4 IS NULL OR e.name = ?4 COLLATE NOCASE)
               AND a.status IN ('new', 'acknowledged', 'investigating')
             ORDER BY a.id",
        )?
        .query_map(
            params![
                tid,
                new.kind.map(AlertKind::as_str),
                new.source,
                new.endpoint
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .collect::<rusqlite::Result<_>>()?;
    let mut closed = Vec::with_capacity(matching.len());
    for (alert, owner) in matching {
        let alert = AlertId::new(alert);
        suppress(&tx, owner, alert, id, new.reason, actor, now)?;
        closed.push(alert);
    }
    let (suppression, audit) =
        crate::rows::added_suppression(id, tenant, new, actor, now, closed.len());
    audit_tx(&tx, actor, tid, "suppress.add", &audit)?;
    commit(tx, &store.dir)?;
    Ok((suppression, closed))
}

/// Holds an alert as suppressed by suppression `by`.
fn suppress(
    tx: &Transaction,
    tenant: i64,
    alert: AlertId,
    by: i64,
    reason: &str,
    actor: &Actor,
    now: Time,
) -> Result<()> {
    let why = crate::rows::suppressed_because(by, reason);
    tx.prepare_cached(
        "UPDATE alerts SET status = 'suppressed', status_reason = ?, suppressed_by = ?, updated = ?
         WHERE id = ?",
    )?
    .execute(params![why, by, now.0, alert.get()])?;
    record_change(
        tx,
        tenant,
        alert,
        actor,
        AlertAction::Status,
        Some(AlertStatus::Suppressed.as_str()),
        Some(&why),
    )
}

/// Holds a new alert as suppressed when a live suppression matches it.
pub(super) fn suppress_if_matched(
    tx: &Transaction,
    tenant: i64,
    alert: AlertId,
    f: &Finding,
    now: Time,
) -> Result<bool> {
    let found: Option<(i64, String)> = tx
        .prepare_cached(
            "SELECT id, reason FROM suppressions
             WHERE ended IS NULL AND (expires IS NULL OR expires > ?1)
               AND (tenant_id IS NULL OR tenant_id = ?2) AND (kind IS NULL OR kind = ?3)
               AND source = ?4 AND (endpoint IS NULL OR endpoint = ?5)
             ORDER BY id LIMIT 1",
        )?
        .query_row(
            params![now.0, tenant, f.kind.as_str(), f.source, f.endpoint],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match found {
        Some((by, reason)) => {
            suppress(tx, tenant, alert, by, &reason, &Actor::Pipeline, now)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

pub(super) fn suppressions(store: &SqliteStore, scope: &Scope) -> Result<Vec<Suppression>> {
    let mut stmt = store.conn.prepare(
        "SELECT id, tenant_id, kind, source, endpoint, reason, owner, created, expires
         FROM suppressions WHERE ended IS NULL AND (expires IS NULL OR expires > ?) ORDER BY id",
    )?;
    let mut rows = stmt.query([Time::now().0])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let Some(tenant) = entry_tenant(scope, r.get(1)?) else {
            continue;
        };
        let kind: Option<String> = r.get(2)?;
        out.push(Suppression {
            id: r.get(0)?,
            tenant,
            kind: kind.as_deref().map(parse).transpose()?,
            source: r.get(3)?,
            endpoint: r.get(4)?,
            reason: r.get(5)?,
            owner: r.get(6)?,
            created: Time(r.get(7)?),
            expires: r.get::<_, Option<i64>>(8)?.map(Time),
        });
    }
    Ok(out)
}

pub(super) fn remove_suppression(
    store: &mut SqliteStore,
    scope: &Scope,
    id: i64,
    actor: &Actor,
) -> Result<Vec<AlertId>> {
    let tx = store.conn.transaction()?;
    let owner: Option<Option<i64>> = tx
        .query_row(
            "SELECT tenant_id FROM suppressions WHERE id = ? AND ended IS NULL",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(owner) = owner else {
        return Err(StoreError::NoSuchSuppression(id));
    };
    if owner.is_some_and(|t| !scope.contains(t)) {
        return Err(StoreError::OutOfScope(format!("suppression {id}")));
    }
    let back = end(&tx, id, &format!("suppression {id} removed by {actor}"))?;
    audit_tx(
        &tx,
        actor,
        owner,
        "suppress.remove",
        &format!("suppression {id}; {} alerts resurfaced", back.len()),
    )?;
    commit(tx, &store.dir)?;
    Ok(back)
}

pub(super) fn expire_suppressions(store: &mut SqliteStore, now: Time) -> Result<Vec<AlertId>> {
    let tx = store.conn.transaction()?;
    let expired: Vec<(i64, Option<i64>)> = tx
        .prepare("SELECT id, tenant_id FROM suppressions WHERE ended IS NULL AND expires <= ?")?
        .query_map([now.0], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if expired.is_empty() {
        // Every ingest asks: most of the time there is nothing to write.
        return Ok(Vec::new());
    }
    let mut back = Vec::new();
    for (id, owner) in expired {
        let alerts = end(&tx, id, &format!("suppression {id} expired"))?;
        audit_tx(
            &tx,
            &Actor::Pipeline,
            owner,
            "suppress.expire",
            &format!("suppression {id}; {} alerts resurfaced", alerts.len()),
        )?;
        back.extend(alerts);
    }
    commit(tx, &store.dir)?;
    Ok(back)
}

/// Ends suppression `id`: the alerts it still holds resurface.
fn end(tx: &Transaction, id: i64, why: &str) -> Result<Vec<AlertId>> {
    let now = Time::now();
    tx.execute(
        "UPDATE suppressions SET ended = ? WHERE id = ?",
        params![now.0, id],
    )?;
    let held: Vec<(i64, i64)> = tx
        .prepare(
            "SELECT id, tenant_id FROM alerts WHERE suppressed_by = ? AND status = 'suppressed'",
        )?
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut back = Vec::with_capacity(held.len());
    for (alert, tenant) in held {
        let alert = AlertId::new(alert);
        resurface(tx, tenant, alert, why, now)?;
        back.push(alert);
    }
    Ok(back)
}
