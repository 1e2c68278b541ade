//! Intel (indicators, advisories) and detection rules: global, not
//! tenant-owned; every tenant is matched against them.

use super::*;

pub(super) fn upsert_indicators(
    store: &mut SqliteStore,
    indicators: &mut dyn Iterator<Item = Indicator>,
    actor: &Actor,
) -> Result<IndicatorUpsert> {
    let tx = store.conn.transaction()?;
    let now = Time::now();
    let mut out = IndicatorUpsert::default();
    for ind in indicators {
        let ind = &ind;
        let also = serde_json::to_string(&ind.also).map_err(json_err)?;
        let doc = serde_json::to_string(ind).map_err(json_err)?;
        let existing: Option<(i64, String)> = tx
            .prepare_cached(
                "SELECT i.id, d.doc FROM indicators i JOIN indicator_docs d ON d.id = i.id
                 WHERE i.kind = ? AND i.value = ? AND i.also = ? AND i.source = ?",
            )?
            .query_row(
                params![ind.kind.as_str(), ind.value, also, ind.source],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match existing {
            None => {
                tx.prepare_cached(
                    "INSERT INTO indicators (kind, value, also, source, added, updated, campaign, valid_from, valid_until, revoked)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )?
                .execute(params![
                    ind.kind.as_str(),
                    ind.value,
                    also,
                    ind.source,
                    now.0,
                    now.0,
                    ind.campaign,
                    ind.valid_from.map(|t| t.0),
                    ind.valid_until.map(|t| t.0),
                    ind.revoked
                ])?;
                let id = tx.last_insert_rowid();
                tx.prepare_cached("INSERT INTO indicator_docs (id, doc) VALUES (?, ?)")?
                    .execute(params![id, doc])?;
                out.inserted.push(id);
            }
            Some((id, old)) if old != doc => {
                tx.prepare_cached(
                    "UPDATE indicators SET updated = ?, campaign = ?, valid_from = ?, valid_until = ?, revoked = ? WHERE id = ?",
                )?
                .execute(params![
                    now.0,
                    ind.campaign,
                    ind.valid_from.map(|t| t.0),
                    ind.valid_until.map(|t| t.0),
                    ind.revoked,
                    id
                ])?;
                tx.prepare_cached("UPDATE indicator_docs SET doc = ? WHERE id = ?")?
                    .execute(params![doc, id])?;
                out.changed.push(id);
            }
            Some(_) => out.unchanged += 1,
        }
    }
    if !out.inserted.is_empty() || !out.changed.is_empty() {
        tx.execute("UPDATE intel_state SET generation = generation + 1", [])?;
    }
    audit_tx(
        &tx,
        actor,
        None,
        "intel.indicators",
        &format!(
            "{} new, {} changed, {} unchanged",
            out.inserted.len(),
            out.changed.len(),
            out.unchanged
        ),
    )?;
    commit(tx, &store.dir)?;
    Ok(out)
}

/// A stored indicator's id, document, and when it was added and updated.
fn stored_row(r: &rusqlite::Row) -> rusqlite::Result<(i64, String, i64, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

pub(super) fn indicators(store: &SqliteStore) -> Result<Vec<StoredIndicator>> {
    let mut stmt = store
        .conn
        .prepare("SELECT i.id, d.doc, i.added, i.updated FROM indicators i JOIN indicator_docs d ON d.id = i.id ORDER BY i.id")?;
    let rows = stmt.query_map([], stored_row)?;
    rows.map(|r| {
        let (id, doc, added, updated) = r?;
        Ok(StoredIndicator {
            id,
            indicator: serde_json::from_str(&doc).map_err(json_err)?,
            added: Time(added),
            updated: Time(updated),
        })
    })
    .collect()
}

pub(super) fn scan_indicators(
    store: &SqliteStore,
    each: &mut dyn FnMut(IndicatorRef<'_>),
) -> Result<()> {
    let mut stmt = store.conn.prepare(
        "SELECT kind, value, source, campaign, also, valid_from, valid_until, revoked FROM indicators ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let text = |i| {
            row.get_ref(i)
                .map_err(StoreError::from)
                .and_then(text_column)
        };
        let kind = text(0)?.unwrap_or_default();
        // Stored kinds are canonical: compared without parsing.
        let kind = IndicatorKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .ok_or_else(|| StoreError::Corrupt(format!("indicator kind {kind:?}")))?;
        // `AND` conditions are rare: JSON is parsed only where present.
        let also_text = text(4)?.unwrap_or("[]");
        let also: Vec<Condition> = if also_text == "[]" {
            Vec::new()
        } else {
            serde_json::from_str(also_text).map_err(json_err)?
        };
        each(IndicatorRef {
            kind,
            value: text(1)?.unwrap_or_default(),
            source: text(2)?.unwrap_or_default(),
            campaign: text(3)?,
            also: &also,
            valid_from: row.get::<_, Option<i64>>(5)?.map(Time),
            valid_until: row.get::<_, Option<i64>>(6)?.map(Time),
            revoked: row.get(7)?,
        });
    }
    Ok(())
}

pub(super) fn intel_key(store: &SqliteStore) -> Result<u64> {
    let (nonce, generation): (i64, i64) =
        store
            .conn
            .query_row("SELECT nonce, generation FROM intel_state", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
    Ok(crate::rows::intel_key(nonce, generation))
}

pub(super) fn count_indicators(store: &SqliteStore) -> Result<u64> {
    Ok(store
        .conn
        .query_row("SELECT count(*) FROM indicators", [], |r| r.get(0))?)
}

pub(super) fn indicators_by_id(store: &SqliteStore, ids: &[i64]) -> Result<Vec<StoredIndicator>> {
    let mut stmt = store
        .conn
        .prepare_cached("SELECT i.id, d.doc, i.added, i.updated FROM indicators i JOIN indicator_docs d ON d.id = i.id WHERE i.id = ?")?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some((id, doc, added, updated)) = stmt.query_row([id], stored_row).optional()? {
            out.push(StoredIndicator {
                id,
                indicator: serde_json::from_str(&doc).map_err(json_err)?,
                added: Time(added),
                updated: Time(updated),
            });
        }
    }
    Ok(out)
}

pub(super) fn upsert_advisories(
    store: &mut SqliteStore,
    advisories: &[Advisory],
    actor: &Actor,
) -> Result<Vec<String>> {
    let tx = store.conn.transaction()?;
    let now = Time::now();
    let mut changed = Vec::new();
    for a in advisories {
        let doc = serde_json::to_string(a).map_err(json_err)?;
        let old: Option<String> = tx
            .prepare_cached("SELECT doc FROM advisories WHERE id = ?")?
            .query_row([&a.id], |r| r.get(0))
            .optional()?;
        match old {
            Some(o) if o == doc => continue,
            Some(_) => {
                tx.prepare_cached("UPDATE advisories SET doc = ?, updated = ? WHERE id = ?")?
                    .execute(params![doc, now.0, a.id])?;
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO advisories (id, doc, added, updated) VALUES (?, ?, ?, ?)",
                )?
                .execute(params![a.id, doc, now.0, now.0])?;
            }
        }
        changed.push(a.id.clone());
    }
    audit_tx(
        &tx,
        actor,
        None,
        "intel.advisories",
        &format!("{} new or changed: {}", changed.len(), changed.join(", ")),
    )?;
    if !changed.is_empty() {
        tx.execute("UPDATE intel_state SET generation = generation + 1", [])?;
    }
    commit(tx, &store.dir)?;
    Ok(changed)
}

pub(super) fn advisories(store: &SqliteStore) -> Result<Vec<Advisory>> {
    let mut stmt = store
        .conn
        .prepare("SELECT doc FROM advisories ORDER BY id")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.map(|r| serde_json::from_str(&r?).map_err(json_err))
        .collect()
}

pub(super) fn upsert_rules(
    store: &mut SqliteStore,
    rules: &[StoredRule],
    actor: &Actor,
) -> Result<Vec<String>> {
    let tx = store.conn.transaction()?;
    let now = Time::now();
    let mut changed = Vec::new();
    for r in rules {
        let old: Option<String> = tx
            .prepare_cached("SELECT text FROM rules WHERE id = ?")?
            .query_row([&r.id], |row| row.get(0))
            .optional()?;
        if old.as_deref() == Some(r.text.as_str()) {
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO rules (id, title, source, text, added, updated) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, source = excluded.source, text = excluded.text, updated = excluded.updated",
        )?
        .execute(params![r.id, r.title, r.source, r.text, now.0, now.0])?;
        changed.push(r.id.clone());
    }
    audit_tx(
        &tx,
        actor,
        None,
        "rules.import",
        &format!("{} new or changed of {}", changed.len(), rules.len()),
    )?;
    if !changed.is_empty() {
        tx.execute("UPDATE intel_state SET generation = generation + 1", [])?;
    }
    commit(tx, &store.dir)?;
    Ok(changed)
}

pub(super) fn rules(store: &SqliteStore) -> Result<Vec<StoredRule>> {
    let mut stmt = store
        .conn
        .prepare("SELECT id, title, source, text, updated FROM rules ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok(StoredRule {
            id: r.get(0)?,
            title: r.get(1)?,
            source: r.get(2)?,
            text: r.get(3)?,
            updated: Time(r.get(4)?),
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}
