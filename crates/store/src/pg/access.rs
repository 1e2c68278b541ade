//! People, tokens, the audit log, and the entries that are a tenant's
//! or global (allowlists, internal networks) in PostgreSQL.

use postgres::Row;
use turncoat_core::{Actor, AlertId, AlertStatus, TenantName, Time};

use super::{PgStore, alerts::record_change, audit_tx};
use crate::rows::Entries;
use crate::rows::{allow_kind, entry_tenant, or_all, parse, token_owner};
use crate::{
    AlertAction, AllowAdded, AllowEntry, AuditEntry, InternalNetwork, NewAllowEntry, NewToken,
    NewTokenOwner, NewUser, Result, Scope, StoreError, Tenant, Token, User,
};

/// Deletes entry `id` of `entries` when `scope` may see it, audited.
pub(super) fn remove_entry(
    store: &mut PgStore,
    entries: Entries,
    scope: &Scope,
    id: i64,
    actor: &Actor,
) -> Result<()> {
    let (table, noun, action) = entries.names();
    let mut tx = store.client.get_mut().transaction()?;
    let owner: Option<Option<i64>> = tx
        .query_opt(
            &format!("SELECT tenant_id FROM {table} WHERE id = $1"),
            &[&id],
        )?
        .map(|r| r.try_get(0))
        .transpose()?;
    let Some(owner) = owner.filter(|t| t.is_none_or(|t| scope.contains(t))) else {
        return Err(StoreError::OutOfScope(format!("{noun} {id}")));
    };
    tx.execute(&format!("DELETE FROM {table} WHERE id = $1"), &[&id])?;
    audit_tx(&mut tx, actor, owner, action, &format!("{noun} {id}"))?;
    tx.commit()?;
    Ok(())
}

pub(super) fn add_allow(
    store: &mut PgStore,
    tenant: Option<&Tenant>,
    entry: &NewAllowEntry<'_>,
    closes: &[AlertId],
    actor: &Actor,
) -> Result<AllowAdded> {
    let mut tx = store.client.get_mut().transaction()?;
    let tid = tenant.map(|t| t.id);
    let kind = entry.kind.as_str();
    let (value, reason) = (entry.value, entry.reason);
    let id: i64 = tx
        .query_one(
            "INSERT INTO allowlist (tenant_id, kind, value, reason, added) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT ((coalesce(tenant_id, 0)), kind, value) DO UPDATE SET reason = excluded.reason
             RETURNING id",
            &[&tid, &kind, &value, &reason, &Time::now().0],
        )?
        .try_get(0)?;
    audit_tx(
        &mut tx,
        actor,
        tid,
        "allow.add",
        &format!("{kind} {value}: {reason}"),
    )?;
    let status_reason = format!("allowlist entry {id} ({kind} {value}): {reason}");
    let mut closed = Vec::new();
    for &alert in closes {
        let owner = tx.query_opt(
            "UPDATE alerts SET status = 'allowlisted', status_reason = $1, updated = $2
             WHERE id = $3 AND kind = 'beacon' AND ($4::bigint IS NULL OR tenant_id = $4)
               AND status IN ('new', 'acknowledged', 'investigating')
             RETURNING tenant_id",
            &[&status_reason, &Time::now().0, &alert.get(), &tid],
        )?;
        if let Some(owner) = owner {
            let owner: i64 = owner.try_get(0)?;
            record_change(
                &mut tx,
                owner,
                alert,
                actor,
                AlertAction::Status,
                Some(AlertStatus::Allowlisted.as_str()),
                Some(&status_reason),
            )?;
            audit_tx(
                &mut tx,
                actor,
                Some(owner),
                "alert.status",
                &format!("alert {alert} -> allowlisted: {status_reason}"),
            )?;
            closed.push(alert);
        }
    }
    tx.commit()?;
    Ok(AllowAdded { id, closed })
}

pub(super) fn allowlist(store: &PgStore, scope: &Scope) -> Result<Vec<AllowEntry>> {
    let rows = store.db().query(
        "SELECT id, tenant_id, kind, value, reason, added FROM allowlist ORDER BY id",
        &[],
    )?;
    let mut out = Vec::new();
    for r in &rows {
        let Some(tenant) = entry_tenant(scope, r.try_get(1)?) else {
            continue;
        };
        out.push(AllowEntry {
            id: r.try_get(0)?,
            tenant,
            kind: allow_kind(r.try_get(2)?)?,
            value: r.try_get(3)?,
            reason: r.try_get(4)?,
            added: Time(r.try_get(5)?),
        });
    }
    Ok(out)
}

pub(super) fn add_internal_network(
    store: &mut PgStore,
    tenant: Option<&Tenant>,
    cidr: &str,
    note: &str,
    actor: &Actor,
) -> Result<i64> {
    let mut tx = store.client.get_mut().transaction()?;
    let tid = tenant.map(|t| t.id);
    let id: i64 = tx
        .query_one(
            "INSERT INTO internal_networks (tenant_id, cidr, note, added) VALUES ($1, $2, $3, $4)
             ON CONFLICT ((coalesce(tenant_id, 0)), cidr) DO UPDATE SET note = excluded.note
             RETURNING id",
            &[&tid, &cidr, &note, &Time::now().0],
        )?
        .try_get(0)?;
    audit_tx(
        &mut tx,
        actor,
        tid,
        "network.internal.add",
        &format!("{cidr}: {note}"),
    )?;
    tx.commit()?;
    Ok(id)
}

pub(super) fn internal_networks(store: &PgStore, scope: &Scope) -> Result<Vec<InternalNetwork>> {
    let rows = store.db().query(
        "SELECT id, tenant_id, cidr, note, added FROM internal_networks ORDER BY id",
        &[],
    )?;
    let mut out = Vec::new();
    for r in &rows {
        if let Some(tenant) = entry_tenant(scope, r.try_get(1)?) {
            out.push(InternalNetwork {
                id: r.try_get(0)?,
                tenant,
                cidr: r.try_get(2)?,
                note: r.try_get(3)?,
                added: Time(r.try_get(4)?),
            });
        }
    }
    Ok(out)
}

pub(super) fn audit_log(store: &PgStore, scope: &Scope, limit: usize) -> Result<Vec<AuditEntry>> {
    // Global entries (intel) are visible to all; tenant entries only in scope.
    let ids: Vec<i64> = scope.members().iter().map(|t| t.id).collect();
    let rows = store.db().query(
        "SELECT time, actor, tenant_id, action, detail, id FROM audit
         WHERE tenant_id IS NULL OR tenant_id = ANY($1) ORDER BY id DESC LIMIT $2",
        &[&ids, &super::sql_limit(limit)],
    )?;
    rows.iter()
        .map(|r| {
            let tenant = r
                .try_get::<_, Option<i64>>(2)?
                .and_then(|id| scope.members().iter().find(|t| t.id == id))
                .map(|t| t.name.clone());
            Ok(AuditEntry {
                id: r.try_get(5)?,
                time: Time(r.try_get(0)?),
                actor: r.try_get(1)?,
                tenant,
                action: r.try_get(3)?,
                detail: r.try_get(4)?,
            })
        })
        .collect()
}

pub(super) fn add_user(store: &mut PgStore, user: &NewUser<'_>, actor: &Actor) -> Result<User> {
    let mut tx = store.client.get_mut().transaction()?;
    let now = Time::now();
    let inserted = tx.query_opt(
        "INSERT INTO users (name, role, password_hash, created) VALUES ($1, $2, $3, $4)
         ON CONFLICT ((lower(name))) DO NOTHING RETURNING id",
        &[&user.name, &user.role.as_str(), &user.password_hash, &now.0],
    )?;
    let Some(id) = inserted else {
        return Err(StoreError::UserExists(user.name.to_owned()));
    };
    let id: i64 = id.try_get(0)?;
    for t in user.tenants {
        tx.execute(
            "INSERT INTO user_tenants (user_id, tenant_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&id, &t.id],
        )?;
    }
    let granted: Vec<&str> = user.tenants.iter().map(|t| t.name.as_str()).collect();
    audit_tx(
        &mut tx,
        actor,
        None,
        "user.add",
        &format!(
            "{} ({}) tenants: {}",
            user.name,
            user.role,
            or_all(&granted)
        ),
    )?;
    tx.commit()?;
    let mut tenants: Vec<TenantName> = user.tenants.iter().map(|t| t.name.clone()).collect();
    tenants.sort_by_key(|n| n.as_str().to_lowercase());
    Ok(User {
        name: user.name.to_owned(),
        role: user.role,
        tenants,
        created: now,
    })
}

/// Users in name order, with their granted tenants; `only` picks one.
pub(super) fn users(store: &PgStore, only: Option<&str>) -> Result<Vec<User>> {
    let rows = store.db().query(
        "SELECT u.name, u.role, u.created, t.name
         FROM users u LEFT JOIN user_tenants g ON g.user_id = u.id
         LEFT JOIN tenants t ON t.id = g.tenant_id
         WHERE $1::text IS NULL OR lower(u.name) = lower($1)
         ORDER BY lower(u.name), lower(t.name)",
        &[&only],
    )?;
    let mut out: Vec<User> = Vec::new();
    for r in &rows {
        let name: String = r.try_get(0)?;
        if out.last().is_none_or(|u| u.name != name) {
            out.push(User {
                name,
                role: parse(r.try_get(1)?)?,
                tenants: Vec::new(),
                created: Time(r.try_get(2)?),
            });
        }
        if let (Some(tenant), Some(user)) = (r.try_get::<_, Option<&str>>(3)?, out.last_mut()) {
            let tenant =
                TenantName::new(tenant).map_err(|e| StoreError::CorruptValue(Box::new(e)))?;
            user.tenants.push(tenant);
        }
    }
    Ok(out)
}

const TOKEN_COLUMNS: &str =
    "SELECT k.id, u.name, t.name, k.scope, k.note, k.created, k.expires, k.revoked
     FROM tokens k LEFT JOIN users u ON u.id = k.user_id LEFT JOIN tenants t ON t.id = k.tenant_id";

fn token_row(r: &Row) -> Result<Token> {
    Ok(Token {
        id: r.try_get(0)?,
        owner: token_owner(r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)?,
        note: r.try_get(4)?,
        created: Time(r.try_get(5)?),
        expires: r.try_get::<_, Option<i64>>(6)?.map(Time),
        revoked: r.try_get::<_, Option<i64>>(7)?.map(Time),
    })
}

pub(super) fn add_token(store: &mut PgStore, token: &NewToken<'_>, actor: &Actor) -> Result<Token> {
    let mut tx = store.client.get_mut().transaction()?;
    let (user_id, tenant_id, scope, what) = match &token.owner {
        NewTokenOwner::User(name) => {
            let id: i64 = tx
                .query_opt(
                    "SELECT id FROM users WHERE lower(name) = lower($1)",
                    &[name],
                )?
                .ok_or_else(|| StoreError::NoSuchUser((*name).to_owned()))?
                .try_get(0)?;
            (Some(id), None, None, format!("user {name}"))
        }
        NewTokenOwner::Tenant(tenant, scope) => (
            None,
            Some(tenant.id),
            Some(scope.as_str()),
            format!("tenant {} ({scope})", tenant.name),
        ),
    };
    let id: i64 = tx
        .query_one(
            "INSERT INTO tokens (hash, user_id, tenant_id, scope, note, created, expires)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                &&token.hash[..],
                &user_id,
                &tenant_id,
                &scope,
                &token.note,
                &Time::now().0,
                &token.expires.map(|t| t.0),
            ],
        )?
        .try_get(0)?;
    audit_tx(
        &mut tx,
        actor,
        tenant_id,
        "token.create",
        &format!("token {id} for {what}"),
    )?;
    let created = token_row(&tx.query_one(&format!("{TOKEN_COLUMNS} WHERE k.id = $1"), &[&id])?)?;
    tx.commit()?;
    Ok(created)
}

pub(super) fn token_by_hash(store: &PgStore, hash: &[u8; 32]) -> Result<Option<Token>> {
    store
        .db()
        .query_opt(&format!("{TOKEN_COLUMNS} WHERE k.hash = $1"), &[&&hash[..]])?
        .as_ref()
        .map(token_row)
        .transpose()
}

pub(super) fn tokens(store: &PgStore) -> Result<Vec<Token>> {
    store
        .db()
        .query(&format!("{TOKEN_COLUMNS} ORDER BY k.id"), &[])?
        .iter()
        .map(token_row)
        .collect()
}

pub(super) fn revoke_token(store: &mut PgStore, id: i64, actor: &Actor) -> Result<Token> {
    let mut tx = store.client.get_mut().transaction()?;
    let revoked = tx.query_opt(
        "UPDATE tokens SET revoked = $1 WHERE id = $2 AND revoked IS NULL RETURNING tenant_id",
        &[&Time::now().0, &id],
    )?;
    let token = tx
        .query_opt(&format!("{TOKEN_COLUMNS} WHERE k.id = $1"), &[&id])?
        .ok_or(StoreError::NoSuchToken(id))?;
    let token = token_row(&token)?;
    if let Some(r) = revoked {
        audit_tx(
            &mut tx,
            actor,
            r.try_get(0)?,
            "token.revoke",
            &format!("token {id}"),
        )?;
    }
    tx.commit()?;
    Ok(token)
}
