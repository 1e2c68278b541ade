//! Per-tenant or global entries (allowlists, internal networks): who
//! may see and remove them.

use super::*;
use crate::rows::{Entries, allow_kind};

impl SqliteStore {
    /// Deletes entry `id` of `entries` when `scope` may see it, audited.
    pub(super) fn remove_entry(
        &mut self,
        entries: Entries,
        scope: &Scope,
        id: i64,
        actor: &Actor,
    ) -> Result<()> {
        let (table, noun, action) = entries.names();
        let tx = self.conn.transaction()?;
        let owner: Option<Option<i64>> = tx
            .query_row(
                &format!("SELECT tenant_id FROM {table} WHERE id = ?"),
                [id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(owner) = owner.filter(|t| t.is_none_or(|t| scope.contains(t))) else {
            return Err(StoreError::OutOfScope(format!("{noun} {id}")));
        };
        tx.execute(&format!("DELETE FROM {table} WHERE id = ?"), [id])?;
        audit_tx(&tx, actor, owner, action, &format!("{noun} {id}"))?;
        commit(tx, &self.dir)
    }
}

pub(super) fn add_allow(
    store: &mut SqliteStore,
    tenant: Option<&Tenant>,
    entry: &NewAllowEntry<'_>,
    closes: &[AlertId],
    actor: &Actor,
) -> Result<AllowAdded> {
    let tx = store.conn.transaction()?;
    let tid = tenant.map(|t| t.id);
    let kind = entry.kind.as_str();
    let (value, reason) = (entry.value, entry.reason);
    tx.execute(
        "INSERT INTO allowlist (tenant_id, kind, value, reason, added) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (tenant_id, kind, value) DO UPDATE SET reason = excluded.reason",
        params![tid, kind, value, reason, Time::now().0],
    )?;
    let id = tx.query_row(
        "SELECT id FROM allowlist WHERE tenant_id IS ? AND kind = ? AND value = ?",
        params![tid, kind, value],
        |r| r.get(0),
    )?;
    audit_tx(
        &tx,
        actor,
        tid,
        "allow.add",
        &format!("{kind} {value}: {reason}"),
    )?;
    let status_reason = format!("allowlist entry {id} ({kind} {value}): {reason}");
    let mut closed = Vec::new();
    for &alert in closes {
        let owner: Option<i64> = tx
            .prepare_cached(
                "UPDATE alerts SET status = 'allowlisted', status_reason = ?1, updated = ?2
                 WHERE id = ?3 AND kind = 'beacon' AND (?4 IS NULL OR tenant_id = ?4)
                   AND status IN ('new', 'acknowledged', 'investigating')
                 RETURNING tenant_id",
            )?
            .query_row(
                params![status_reason, Time::now().0, alert.get(), tid],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(owner) = owner {
            super::alerts::record_change(
                &tx,
                owner,
                alert,
                actor,
                AlertAction::Status,
                Some(AlertStatus::Allowlisted.as_str()),
                Some(&status_reason),
            )?;
            audit_tx(
                &tx,
                actor,
                Some(owner),
                "alert.status",
                &format!("alert {alert} -> allowlisted: {status_reason}"),
            )?;
            closed.push(alert);
        }
    }
    commit(tx, &store.dir)?;
    Ok(AllowAdded { id, closed })
}

pub(super) fn allowlist(store: &SqliteStore, scope: &Scope) -> Result<Vec<AllowEntry>> {
    let mut stmt = store
        .conn
        .prepare("SELECT id, tenant_id, kind, value, reason, added FROM allowlist ORDER BY id")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let Some(tenant) = entry_tenant(scope, r.get(1)?) else {
            continue;
        };
        let kind = allow_kind(&r.get::<_, String>(2)?)?;
        out.push(AllowEntry {
            id: r.get(0)?,
            tenant,
            kind,
            value: r.get(3)?,
            reason: r.get(4)?,
            added: Time(r.get(5)?),
        });
    }
    Ok(out)
}

pub(super) fn remove_allow(
    store: &mut SqliteStore,
    scope: &Scope,
    id: i64,
    actor: &Actor,
) -> Result<()> {
    store.remove_entry(Entries::Allowlist, scope, id, actor)
}

pub(super) fn add_internal_network(
    store: &mut SqliteStore,
    tenant: Option<&Tenant>,
    cidr: &str,
    note: &str,
    actor: &Actor,
) -> Result<i64> {
    let tx = store.conn.transaction()?;
    let tid = tenant.map(|t| t.id);
    let id = tx.query_row(
        "INSERT INTO internal_networks (tenant_id, cidr, note, added) VALUES (?, ?, ?, ?)
         ON CONFLICT (coalesce(tenant_id, 0), cidr) DO UPDATE SET note = excluded.note
         RETURNING id",
        params![tid, cidr, note, Time::now().0],
        |r| r.get(0),
    )?;
    audit_tx(
        &tx,
        actor,
        tid,
        "network.internal.add",
        &format!("{cidr}: {note}"),
    )?;
    commit(tx, &store.dir)?;
    Ok(id)
}

pub(super) fn internal_networks(
    store: &SqliteStore,
    scope: &Scope,
) -> Result<Vec<InternalNetwork>> {
    let mut stmt = store
        .conn
        .prepare("SELECT id, tenant_id, cidr, note, added FROM internal_networks ORDER BY id")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        if let Some(tenant) = entry_tenant(scope, r.get(1)?) {
            out.push(InternalNetwork {
                id: r.get(0)?,
                tenant,
                cidr: r.get(2)?,
                note: r.get(3)?,
                added: Time(r.get(4)?),
            });
        }
    }
    Ok(out)
}

pub(super) fn remove_internal_network(
    store: &mut SqliteStore,
    scope: &Scope,
    id: i64,
    actor: &Actor,
) -> Result<()> {
    store.remove_entry(Entries::InternalNetworks, scope, id, actor)
}
