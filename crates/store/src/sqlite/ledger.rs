//! The software ledger's rows in SQLite; the rules are in
//! [`crate::ledger`].

use super::*;
use crate::ledger::{LedgerRows, NewInterval};
use crate::rows::LedgerColumns;

/// One tenant's ledger rows inside a batch's transaction.
pub(super) struct SqliteLedger<'a> {
    pub(super) tx: &'a Transaction<'a>,
    pub(super) tenant: i64,
    pub(super) endpoint_ids: &'a mut IdCache,
}

impl LedgerRows for SqliteLedger<'_> {
    fn endpoint_id(&mut self, host: &str, at: Time) -> Result<i64> {
        endpoint_id(self.tx, self.endpoint_ids, self.tenant, host, at)
    }

    fn open_interval(
        &mut self,
        endpoint_id: i64,
        source: &str,
        name_norm: &str,
        version: &str,
    ) -> Result<Option<(i64, i64)>> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT id, installed FROM ledger WHERE tenant_id = ? AND endpoint_id = ? AND source = ? AND name_norm = ? AND version = ? AND removed IS NULL",
            )?
            .query_row(
                params![self.tenant, endpoint_id, source, name_norm, version],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn insert(&mut self, i: &NewInterval<'_>) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO ledger (tenant_id, endpoint_id, source, name, name_norm, version, vendor, platform, ecosystem, installed, removed, file)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                self.tenant,
                i.endpoint_id,
                i.source,
                i.item.name,
                i.name_norm,
                i.item.version,
                i.item.vendor,
                i.platform(),
                i.item.ecosystem.as_str(),
                i.installed.0,
                i.removed.map(|t| t.0),
                i.file
            ])?;
        Ok(())
    }

    fn set_removed(&mut self, id: i64, removed: Time) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE ledger SET removed = ? WHERE id = ?")?
            .execute(params![removed.0, id])?;
        Ok(())
    }

    fn open_items(&mut self, endpoint_id: i64, source: &str) -> Result<Vec<InventoryItem>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT name, version, vendor, platform, ecosystem FROM ledger
             WHERE tenant_id = ? AND endpoint_id = ? AND source = ? AND removed IS NULL",
        )?;
        let mut rows = stmt.query(params![self.tenant, endpoint_id, source])?;
        let mut items = Vec::new();
        while let Some(r) = rows.next()? {
            let platform: Option<String> = r.get(3)?;
            items.push(InventoryItem {
                name: r.get(0)?,
                version: r.get(1)?,
                vendor: r.get(2)?,
                platform: platform.map(|p| parse(&p)).transpose()?,
                ecosystem: parse(&r.get::<_, String>(4)?)?,
            });
        }
        Ok(items)
    }
}

/// A ledger row read by [`Store::ledger`]'s query.
pub(super) fn ledger_row(r: &rusqlite::Row) -> Result<LedgerEntry> {
    LedgerColumns {
        endpoint: r.get(0)?,
        source: r.get(1)?,
        name: r.get(2)?,
        version: r.get(3)?,
        vendor: r.get(4)?,
        platform: r.get(5)?,
        ecosystem: r.get(6)?,
        installed: r.get(7)?,
        removed: r.get(8)?,
        file: r.get(9)?,
    }
    .entry()
}
