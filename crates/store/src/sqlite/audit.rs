//! The audit log: every state change with its actor, written in the
//! transaction of the change it records.

use super::*;

pub(super) fn audit(
    store: &mut SqliteStore,
    actor: &Actor,
    tenant: Option<&Tenant>,
    action: &str,
    detail: &str,
) -> Result<()> {
    let tx = store.conn.transaction()?;
    audit_tx(&tx, actor, tenant.map(|t| t.id), action, detail)?;
    commit(tx, &store.dir)?;
    Ok(())
}

pub(super) fn last_audited(
    store: &SqliteStore,
    scope: &Scope,
    prefix: &str,
) -> Result<Option<Time>> {
    let mut stmt = store.conn.prepare_cached(
        "SELECT tenant_id, max(time) FROM audit WHERE substr(action, 1, length(?1)) = ?1 GROUP BY tenant_id",
    )?;
    let rows = stmt.query_map([prefix], |r| {
        Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, i64>(1)?))
    })?;
    let mut last: Option<Time> = None;
    for row in rows {
        let (tenant, time) = row?;
        if tenant.is_none_or(|t| scope.contains(t)) {
            last = last.max(Some(Time(time)));
        }
    }
    Ok(last)
}

pub(super) fn audit_log(
    store: &SqliteStore,
    scope: &Scope,
    limit: usize,
) -> Result<Vec<AuditEntry>> {
    let mut stmt = store
        .conn
        .prepare("SELECT time, actor, tenant_id, action, detail, id FROM audit ORDER BY id DESC")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<i64>>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (time, actor, tenant_id, action, detail, id) = row?;
        // Global entries (intel) are visible to all; tenant entries only in scope.
        let tenant = match tenant_id {
            Some(id) => match scope.members().iter().find(|t| t.id == id) {
                Some(t) => Some(t.name.clone()),
                None => continue,
            },
            None => None,
        };
        out.push(AuditEntry {
            id,
            time: Time(time),
            actor,
            tenant,
            action,
            detail,
        });
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// Appends an audit entry inside `tx`, so the entry and the change it
/// records commit together.
pub(super) fn audit_tx(
    tx: &Transaction,
    actor: &Actor,
    tenant: Option<i64>,
    action: &str,
    detail: &str,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit (time, actor, tenant_id, action, detail) VALUES (?, ?, ?, ?, ?)",
    )?
    .execute(params![
        Time::now().0,
        actor.to_string(),
        tenant,
        action,
        detail
    ])?;
    Ok(())
}
