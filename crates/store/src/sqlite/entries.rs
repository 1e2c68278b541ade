//! Per-tenant or global entries (allowlists, internal networks): who
//! may see and remove them.

use super::*;

/// The tenant of an entry that is a tenant's or, with no tenant, global:
/// `None` when `scope` may not see it.
pub(super) fn entry_tenant(scope: &Scope, tenant_id: Option<i64>) -> Option<Option<TenantName>> {
    match tenant_id {
        None => Some(None),
        Some(t) => scope
            .members()
            .iter()
            .find(|m| m.id == t)
            .map(|m| Some(m.name.clone())),
    }
}

/// The tables of entries that are a tenant's or, with no tenant, global.
#[derive(Clone, Copy)]
pub(super) enum Entries {
    Allowlist,
    InternalNetworks,
}

impl SqliteStore {
    /// Deletes entry `id` of `entries` when `scope` may see it, audited.
    pub(super) fn remove_entry(
        &mut self,
        entries: Entries,
        scope: &Scope,
        id: i64,
        actor: &Actor,
    ) -> Result<()> {
        let (table, noun, action) = match entries {
            Entries::Allowlist => ("allowlist", "allowlist entry", "allow.remove"),
            Entries::InternalNetworks => (
                "internal_networks",
                "internal network",
                "network.internal.remove",
            ),
        };
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
