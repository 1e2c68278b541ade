//! Users and API tokens: who may sign in, and the hashes of the tokens
//! handed out. Granted tenants are rows of `user_tenants`.

use super::*;
use crate::rows::{or_all, token_owner};

pub(super) fn add_user(store: &mut SqliteStore, user: &NewUser<'_>, actor: &Actor) -> Result<User> {
    let tx = store.conn.transaction()?;
    let now = Time::now();
    let inserted = tx
        .prepare_cached(
            "INSERT INTO users (name, role, password_hash, created) VALUES (?, ?, ?, ?)
             ON CONFLICT (name) DO NOTHING RETURNING id",
        )?
        .query_row(
            params![user.name, user.role.as_str(), user.password_hash, now.0],
            |r| r.get::<_, i64>(0),
        )
        .optional()?;
    let Some(id) = inserted else {
        return Err(StoreError::UserExists(user.name.to_owned()));
    };
    for t in user.tenants {
        tx.prepare_cached("INSERT OR IGNORE INTO user_tenants (user_id, tenant_id) VALUES (?, ?)")?
            .execute(params![id, t.id])?;
    }
    let granted: Vec<&str> = user.tenants.iter().map(|t| t.name.as_str()).collect();
    audit_tx(
        &tx,
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
    commit(tx, &store.dir)?;
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
pub(super) fn users(store: &SqliteStore, only: Option<&str>) -> Result<Vec<User>> {
    let mut stmt = store.conn.prepare_cached(
        "SELECT u.name, u.role, u.created, t.name
         FROM users u LEFT JOIN user_tenants g ON g.user_id = u.id
         LEFT JOIN tenants t ON t.id = g.tenant_id
         WHERE ?1 IS NULL OR u.name = ?1
         ORDER BY u.name COLLATE NOCASE, t.name COLLATE NOCASE",
    )?;
    let mut rows = stmt.query(params![only])?;
    let mut out: Vec<User> = Vec::new();
    while let Some(r) = rows.next()? {
        let name: String = r.get(0)?;
        if out.last().is_none_or(|u| u.name != name) {
            out.push(User {
                name,
                role: parse(&r.get::<_, String>(1)?)?,
                tenants: Vec::new(),
                created: Time(r.get(2)?),
            });
        }
        if let Some(tenant) = r.get::<_, Option<String>>(3)? {
            let tenant =
                TenantName::new(&tenant).map_err(|e| StoreError::CorruptValue(Box::new(e)))?;
            out.last_mut().expect("pushed above").tenants.push(tenant);
        }
    }
    Ok(out)
}

pub(super) fn password_hash(store: &SqliteStore, name: &str) -> Result<Option<String>> {
    Ok(store
        .conn
        .query_row(
            "SELECT password_hash FROM users WHERE name = ?",
            [name],
            |r| r.get(0),
        )
        .optional()?)
}

const TOKEN_COLUMNS: &str =
    "SELECT k.id, u.name, t.name, k.scope, k.note, k.created, k.expires, k.revoked
     FROM tokens k LEFT JOIN users u ON u.id = k.user_id LEFT JOIN tenants t ON t.id = k.tenant_id";

fn token_row(r: &rusqlite::Row) -> rusqlite::Result<Token> {
    let owner = token_owner(r.get(1)?, r.get(2)?, r.get(3)?).map_err(|e| bad_column(1, e))?;
    Ok(Token {
        id: r.get(0)?,
        owner,
        note: r.get(4)?,
        created: Time(r.get(5)?),
        expires: r.get::<_, Option<i64>>(6)?.map(Time),
        revoked: r.get::<_, Option<i64>>(7)?.map(Time),
    })
}

pub(super) fn add_token(
    store: &mut SqliteStore,
    token: &NewToken<'_>,
    actor: &Actor,
) -> Result<Token> {
    let tx = store.conn.transaction()?;
    let (user_id, tenant_id, scope, what) = match &token.owner {
        NewTokenOwner::User(name) => {
            let id: Option<i64> = tx
                .query_row("SELECT id FROM users WHERE name = ?", [name], |r| r.get(0))
                .optional()?;
            let id = id.ok_or_else(|| StoreError::NoSuchUser((*name).to_owned()))?;
            (Some(id), None, None, format!("user {name}"))
        }
        NewTokenOwner::Tenant(tenant, scope) => (
            None,
            Some(tenant.id),
            Some(scope.as_str()),
            format!("tenant {} ({scope})", tenant.name),
        ),
    };
    let id: i64 = tx.query_row(
        "INSERT INTO tokens (hash, user_id, tenant_id, scope, note, created, expires)
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        params![
            &token.hash[..],
            user_id,
            tenant_id,
            scope,
            token.note,
            Time::now().0,
            token.expires.map(|t| t.0)
        ],
        |r| r.get(0),
    )?;
    audit_tx(
        &tx,
        actor,
        tenant_id,
        "token.create",
        &format!("token {id} for {what}"),
    )?;
    let created = tx.query_row(&format!("{TOKEN_COLUMNS} WHERE k.id = ?"), [id], token_row)?;
    commit(tx, &store.dir)?;
    Ok(created)
}

pub(super) fn token_by_hash(store: &SqliteStore, hash: &[u8; 32]) -> Result<Option<Token>> {
    Ok(store
        .conn
        .prepare_cached(&format!("{TOKEN_COLUMNS} WHERE k.hash = ?"))?
        .query_row([&hash[..]], token_row)
        .optional()?)
}

pub(super) fn tokens(store: &SqliteStore) -> Result<Vec<Token>> {
    let mut stmt = store
        .conn
        .prepare(&format!("{TOKEN_COLUMNS} ORDER BY k.id"))?;
    let rows = stmt.query_map([], token_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn revoke_token(store: &mut SqliteStore, id: i64, actor: &Actor) -> Result<Token> {
    let tx = store.conn.transaction()?;
    let changed = tx.execute(
        "UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL",
        params![Time::now().0, id],
    )?;
    let token = tx
        .query_row(&format!("{TOKEN_COLUMNS} WHERE k.id = ?"), [id], token_row)
        .optional()?
        .ok_or(StoreError::NoSuchToken(id))?;
    if changed > 0 {
        let tenant: Option<i64> =
            tx.query_row("SELECT tenant_id FROM tokens WHERE id = ?", [id], |r| {
                r.get(0)
            })?;
        audit_tx(&tx, actor, tenant, "token.revoke", &format!("token {id}"))?;
    }
    commit(tx, &store.dir)?;
    Ok(token)
}
