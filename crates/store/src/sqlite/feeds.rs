//! TAXII feeds: the collections polled for intel, and where each poll
//! resumes.

use super::*;

pub(super) fn add_taxii_feed(
    store: &mut SqliteStore,
    feed: &NewTaxiiFeed<'_>,
    actor: &Actor,
) -> Result<TaxiiFeed> {
    let tx = store.conn.transaction()?;
    let taken: bool = tx
        .prepare_cached("SELECT count(*) FROM taxii_feeds WHERE name = ?")?
        .query_row([feed.name], |r| r.get::<_, i64>(0))?
        > 0;
    if taken {
        return Err(StoreError::FeedExists(feed.name.to_owned()));
    }
    tx.execute(
        "INSERT INTO taxii_feeds (name, api_root, collection, username, secret, added) VALUES (?, ?, ?, ?, ?, ?)",
        params![
            feed.name,
            feed.api_root,
            feed.collection,
            feed.username,
            feed.secret,
            Time::now().0
        ],
    )?;
    let id = tx.last_insert_rowid();
    audit_tx(
        &tx,
        actor,
        None,
        "intel.feed.add",
        &format!(
            "{} {} collection {}",
            feed.name, feed.api_root, feed.collection
        ),
    )?;
    commit(tx, &store.dir)?;
    taxii_feeds(store)?
        .into_iter()
        .find(|f| f.id == id)
        .ok_or(StoreError::NoSuchFeed(id))
}

pub(super) fn taxii_feeds(store: &SqliteStore) -> Result<Vec<TaxiiFeed>> {
    let mut stmt = store.conn.prepare_cached(
        "SELECT id, name, api_root, collection, username, added_after, added, polled, error
         FROM taxii_feeds ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(TaxiiFeed {
            id: r.get(0)?,
            name: r.get(1)?,
            api_root: r.get(2)?,
            collection: r.get(3)?,
            username: r.get(4)?,
            added_after: r.get(5)?,
            added: Time(r.get(6)?),
            polled: r.get::<_, Option<i64>>(7)?.map(Time),
            error: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

pub(super) fn taxii_feed_secret(store: &SqliteStore, id: i64) -> Result<Option<String>> {
    store
        .conn
        .prepare_cached("SELECT secret FROM taxii_feeds WHERE id = ?")?
        .query_row([id], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .ok_or(StoreError::NoSuchFeed(id))
}

pub(super) fn remove_taxii_feed(store: &mut SqliteStore, id: i64, actor: &Actor) -> Result<()> {
    let tx = store.conn.transaction()?;
    let name: Option<String> = tx
        .query_row("SELECT name FROM taxii_feeds WHERE id = ?", [id], |r| {
            r.get(0)
        })
        .optional()?;
    let name = name.ok_or(StoreError::NoSuchFeed(id))?;
    tx.execute("DELETE FROM taxii_feeds WHERE id = ?", [id])?;
    audit_tx(&tx, actor, None, "intel.feed.remove", &name)?;
    commit(tx, &store.dir)
}

pub(super) fn record_taxii_poll(
    store: &mut SqliteStore,
    id: i64,
    added_after: Option<&str>,
    error: Option<&str>,
    at: Time,
) -> Result<()> {
    let changed = store.conn.execute(
        "UPDATE taxii_feeds SET added_after = coalesce(?, added_after), error = ?, polled = ? WHERE id = ?",
        params![added_after, error, at.0, id],
    )?;
    if changed == 0 {
        return Err(StoreError::NoSuchFeed(id));
    }
    Ok(())
}
