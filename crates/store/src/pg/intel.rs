//! Intel (indicators, advisories), detection rules and TAXII feeds in
//! PostgreSQL: global, not tenant-owned (reference tables under Citus).

use turncoat_core::indicator::Condition;
use turncoat_core::{Actor, Advisory, Indicator, IndicatorKind, IndicatorRef, Time};

use super::{PgStore, audit_tx};
use crate::rows::json_err;
use crate::{
    IndicatorUpsert, NewTaxiiFeed, Result, StoreError, StoredIndicator, StoredRule, TaxiiFeed,
};

pub(super) fn upsert_indicators(
    store: &mut PgStore,
    indicators: &mut dyn Iterator<Item = Indicator>,
    actor: &Actor,
) -> Result<IndicatorUpsert> {
    let mut tx = store.client.get_mut().transaction()?;
    // One import at a time: two would race on the same indicators.
    tx.execute("LOCK TABLE indicators IN SHARE ROW EXCLUSIVE MODE", &[])?;
    let now = Time::now();
    let mut out = IndicatorUpsert::default();
    for ind in indicators {
        let also = serde_json::to_string(&ind.also).map_err(json_err)?;
        let doc = serde_json::to_string(&ind).map_err(json_err)?;
        let existing = tx.query_opt(
            "SELECT i.id, d.doc FROM indicators i JOIN indicator_docs d ON d.id = i.id
             WHERE i.kind = $1 AND i.value = $2 AND i.also = $3 AND i.source = $4",
            &[&ind.kind.as_str(), &ind.value, &also, &ind.source],
        )?;
        let valid_from = ind.valid_from.map(|t| t.0);
        let valid_until = ind.valid_until.map(|t| t.0);
        match existing {
            None => {
                let id: i64 = tx
                    .query_one(
                        "INSERT INTO indicators (kind, value, also, source, added, updated, campaign, valid_from, valid_until, revoked)
                         VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9) RETURNING id",
                        &[
                            &ind.kind.as_str(),
                            &ind.value,
                            &also,
                            &ind.source,
                            &now.0,
                            &ind.campaign,
                            &valid_from,
                            &valid_until,
                            &ind.revoked,
                        ],
                    )?
                    .try_get(0)?;
                tx.execute(
                    "INSERT INTO indicator_docs (id, doc) VALUES ($1, $2)",
                    &[&id, &doc],
                )?;
                out.inserted.push(id);
            }
            Some(r) if r.try_get::<_, &str>(1)? != doc => {
                let id: i64 = r.try_get(0)?;
                tx.execute(
                    "UPDATE indicators SET updated = $1, campaign = $2, valid_from = $3, valid_until = $4, revoked = $5 WHERE id = $6",
                    &[&now.0, &ind.campaign, &valid_from, &valid_until, &ind.revoked, &id],
                )?;
                tx.execute(
                    "UPDATE indicator_docs SET doc = $1 WHERE id = $2",
                    &[&doc, &id],
                )?;
                out.changed.push(id);
            }
            Some(_) => out.unchanged += 1,
        }
    }
    if !out.inserted.is_empty() || !out.changed.is_empty() {
        tx.execute("UPDATE intel_state SET generation = generation + 1", &[])?;
    }
    audit_tx(
        &mut tx,
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
    tx.commit()?;
    Ok(out)
}

/// Stored indicators in id order: all, or those of `ids` (in their order).
pub(super) fn indicators(store: &PgStore, ids: Option<&[i64]>) -> Result<Vec<StoredIndicator>> {
    let rows = match ids {
        None => store.db().query(
            "SELECT i.id, d.doc, i.added, i.updated FROM indicators i JOIN indicator_docs d ON d.id = i.id ORDER BY i.id",
            &[],
        )?,
        Some(ids) => store.db().query(
            "SELECT i.id, d.doc, i.added, i.updated
             FROM unnest($1::bigint[]) WITH ORDINALITY AS asked(id, ord)
             JOIN indicators i ON i.id = asked.id JOIN indicator_docs d ON d.id = i.id
             ORDER BY asked.ord",
            &[&ids],
        )?,
    };
    rows.iter()
        .map(|r| {
            Ok(StoredIndicator {
                id: r.try_get(0)?,
                indicator: serde_json::from_str(r.try_get(1)?).map_err(json_err)?,
                added: Time(r.try_get(2)?),
                updated: Time(r.try_get(3)?),
            })
        })
        .collect()
}

pub(super) fn scan_indicators(
    store: &PgStore,
    each: &mut dyn FnMut(IndicatorRef<'_>),
) -> Result<()> {
    let rows = store.db().query(
        "SELECT kind, value, source, campaign, also, valid_from, valid_until, revoked FROM indicators ORDER BY id",
        &[],
    )?;
    for r in &rows {
        let kind: &str = r.try_get(0)?;
        // Stored kinds are canonical: compared without parsing.
        let kind = IndicatorKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .ok_or_else(|| StoreError::Corrupt(format!("indicator kind {kind:?}")))?;
        // `AND` conditions are rare: JSON is parsed only where present.
        let also_text: &str = r.try_get(4)?;
        let also: Vec<Condition> = if also_text == "[]" {
            Vec::new()
        } else {
            serde_json::from_str(also_text).map_err(json_err)?
        };
        each(IndicatorRef {
            kind,
            value: r.try_get(1)?,
            source: r.try_get(2)?,
            campaign: r.try_get(3)?,
            also: &also,
            valid_from: r.try_get::<_, Option<i64>>(5)?.map(Time),
            valid_until: r.try_get::<_, Option<i64>>(6)?.map(Time),
            revoked: r.try_get(7)?,
        });
    }
    Ok(())
}

pub(super) fn upsert_advisories(
    store: &mut PgStore,
    advisories: &[Advisory],
    actor: &Actor,
) -> Result<Vec<String>> {
    let mut tx = store.client.get_mut().transaction()?;
    let now = Time::now();
    let mut changed = Vec::new();
    for a in advisories {
        let doc = serde_json::to_string(a).map_err(json_err)?;
        let written = tx.execute(
            "INSERT INTO advisories AS a (id, doc, added, updated) VALUES ($1, $2, $3, $3)
             ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, updated = excluded.updated
             WHERE a.doc <> excluded.doc",
            &[&a.id, &doc, &now.0],
        )?;
        if written > 0 {
            changed.push(a.id.clone());
        }
    }
    audit_tx(
        &mut tx,
        actor,
        None,
        "intel.advisories",
        &format!("{} new or changed: {}", changed.len(), changed.join(", ")),
    )?;
    if !changed.is_empty() {
        tx.execute("UPDATE intel_state SET generation = generation + 1", &[])?;
    }
    tx.commit()?;
    Ok(changed)
}

pub(super) fn advisories(store: &PgStore) -> Result<Vec<Advisory>> {
    store
        .db()
        .query("SELECT doc FROM advisories ORDER BY id", &[])?
        .iter()
        .map(|r| serde_json::from_str(r.try_get(0)?).map_err(json_err))
        .collect()
}

pub(super) fn upsert_rules(
    store: &mut PgStore,
    rules: &[StoredRule],
    actor: &Actor,
) -> Result<Vec<String>> {
    let mut tx = store.client.get_mut().transaction()?;
    let now = Time::now();
    let mut changed = Vec::new();
    for r in rules {
        let written = tx.execute(
            "INSERT INTO rules AS r (id, title, source, text, added, updated) VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, source = excluded.source, text = excluded.text, updated = excluded.updated
             WHERE r.text <> excluded.text",
            &[&r.id, &r.title, &r.source, &r.text, &now.0],
        )?;
        if written > 0 {
            changed.push(r.id.clone());
        }
    }
    audit_tx(
        &mut tx,
        actor,
        None,
        "rules.import",
        &format!("{} new or changed of {}", changed.len(), rules.len()),
    )?;
    if !changed.is_empty() {
        tx.execute("UPDATE intel_state SET generation = generation + 1", &[])?;
    }
    tx.commit()?;
    Ok(changed)
}

pub(super) fn rules(store: &PgStore) -> Result<Vec<StoredRule>> {
    store
        .db()
        .query(
            "SELECT id, title, source, text, updated FROM rules ORDER BY id",
            &[],
        )?
        .iter()
        .map(|r| {
            Ok(StoredRule {
                id: r.try_get(0)?,
                title: r.try_get(1)?,
                source: r.try_get(2)?,
                text: r.try_get(3)?,
                updated: Time(r.try_get(4)?),
            })
        })
        .collect()
}

pub(super) fn add_taxii_feed(
    store: &mut PgStore,
    feed: &NewTaxiiFeed<'_>,
    actor: &Actor,
) -> Result<TaxiiFeed> {
    let mut tx = store.client.get_mut().transaction()?;
    let inserted = tx.query_opt(
        "INSERT INTO taxii_feeds (name, api_root, collection, username, secret, added) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (name) DO NOTHING RETURNING id",
        &[
            &feed.name,
            &feed.api_root,
            &feed.collection,
            &feed.username,
            &feed.secret,
            &Time::now().0,
        ],
    )?;
    let id: i64 = inserted
        .ok_or_else(|| StoreError::FeedExists(feed.name.to_owned()))?
        .try_get(0)?;
    audit_tx(
        &mut tx,
        actor,
        None,
        "intel.feed.add",
        &format!(
            "{} {} collection {}",
            feed.name, feed.api_root, feed.collection
        ),
    )?;
    tx.commit()?;
    taxii_feeds(store)?
        .into_iter()
        .find(|f| f.id == id)
        .ok_or(StoreError::NoSuchFeed(id))
}

pub(super) fn taxii_feeds(store: &PgStore) -> Result<Vec<TaxiiFeed>> {
    store
        .db()
        .query(
            "SELECT id, name, api_root, collection, username, added_after, added, polled, error
             FROM taxii_feeds ORDER BY id",
            &[],
        )?
        .iter()
        .map(|r| {
            Ok(TaxiiFeed {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                api_root: r.try_get(2)?,
                collection: r.try_get(3)?,
                username: r.try_get(4)?,
                added_after: r.try_get(5)?,
                added: Time(r.try_get(6)?),
                polled: r.try_get::<_, Option<i64>>(7)?.map(Time),
                error: r.try_get(8)?,
            })
        })
        .collect()
}

pub(super) fn remove_taxii_feed(store: &mut PgStore, id: i64, actor: &Actor) -> Result<()> {
    let mut tx = store.client.get_mut().transaction()?;
    let name: String = tx
        .query_opt(
            "DELETE FROM taxii_feeds WHERE id = $1 RETURNING name",
            &[&id],
        )?
        .ok_or(StoreError::NoSuchFeed(id))?
        .try_get(0)?;
    audit_tx(&mut tx, actor, None, "intel.feed.remove", &name)?;
    tx.commit()?;
    Ok(())
}
