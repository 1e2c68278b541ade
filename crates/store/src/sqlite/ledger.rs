//! The software ledger: what each endpoint had installed, from when to
//! when, written from inventory snapshots and changes.

use super::*;

/// Opens, closes and reconciles ledger intervals for one inventory record.
pub(super) struct LedgerWriter<'a, 'h> {
    pub(super) tx: &'a Transaction<'a>,
    pub(super) tenant: i64,
    pub(super) hook: &'a mut LedgerHook<'h>,
    pub(super) findings: Vec<Finding>,
    pub(super) changes: u64,
}

impl LedgerWriter<'_, '_> {
    pub(super) fn open(
        &mut self,
        endpoint_id: i64,
        endpoint: &str,
        source: &str,
        item: &InventoryItem,
        at: Time,
        file: Option<&str>,
    ) -> Result<()> {
        let norm = product_lookup_key(&item.name);
        let open: Option<i64> = self
            .tx
            .prepare_cached(
                "SELECT id FROM ledger WHERE tenant_id = ? AND endpoint_id = ? AND source = ? AND name_norm = ? AND version = ? AND removed IS NULL",
            )?
            .query_row(params![self.tenant, endpoint_id, source, norm, item.version], |r| r.get(0))
            .optional()?;
        if open.is_some() {
            return Ok(());
        }
        self.tx
            .prepare_cached(
                "INSERT INTO ledger (tenant_id, endpoint_id, source, name, name_norm, version, vendor, platform, ecosystem, installed, file)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                self.tenant,
                endpoint_id,
                source,
                item.name,
                norm,
                item.version,
                item.vendor,
                item.platform.map(Platform::as_str),
                item.ecosystem.as_str(),
                at.0,
                file
            ])?;
        self.changes += 1;
        let entry = entry_of(endpoint, source, item, at, None, file);
        self.findings.extend((self.hook)(&entry));
        Ok(())
    }

    /// Closes the open interval of `item`; a removal of something never
    /// seen installed is recorded as an interval that ends where it starts.
    pub(super) fn close(
        &mut self,
        endpoint_id: i64,
        endpoint: &str,
        source: &str,
        item: &InventoryItem,
        at: Time,
        file: Option<&str>,
    ) -> Result<()> {
        let norm = product_lookup_key(&item.name);
        let open: Option<(i64, i64)> = self
            .tx
            .prepare_cached(
                "SELECT id, installed FROM ledger WHERE tenant_id = ? AND endpoint_id = ? AND source = ? AND name_norm = ? AND version = ? AND removed IS NULL",
            )?
            .query_row(params![self.tenant, endpoint_id, source, norm, item.version], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let installed = match open {
            Some((id, installed)) => {
                self.tx
                    .prepare_cached("UPDATE ledger SET removed = ? WHERE id = ?")?
                    .execute(params![at.0.max(installed), id])?;
                Time(installed)
            }
            None => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO ledger (tenant_id, endpoint_id, source, name, name_norm, version, vendor, platform, ecosystem, installed, removed, file)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    )?
                    .execute(params![
                        self.tenant,
                        endpoint_id,
                        source,
                        item.name,
                        norm,
                        item.version,
                        item.vendor,
                        item.platform.map(Platform::as_str),
                        item.ecosystem.as_str(),
                        at.0,
                        at.0,
                        file
                    ])?;
                at
            }
        };
        self.changes += 1;
        let entry = entry_of(
            endpoint,
            source,
            item,
            installed,
            Some(at.max(installed)),
            file,
        );
        self.findings.extend((self.hook)(&entry));
        Ok(())
    }

    /// A snapshot: opens what is new, closes what the source no longer lists.
    pub(super) fn snapshot(
        &mut self,
        endpoint_id: i64,
        endpoint: &str,
        source: &str,
        items: &[InventoryItem],
        at: Time,
        file: Option<&str>,
    ) -> Result<()> {
        let present: HashSet<(String, &str)> = items
            .iter()
            .map(|i| (product_lookup_key(&i.name), i.version.as_str()))
            .collect();
        let open: Vec<InventoryItem> = {
            let mut stmt = self.tx.prepare_cached(
                "SELECT name, version, vendor, platform, ecosystem FROM ledger
                 WHERE tenant_id = ? AND endpoint_id = ? AND source = ? AND removed IS NULL",
            )?;
            let rows = stmt.query_map(params![self.tenant, endpoint_id, source], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })?;
            let mut v = Vec::new();
            for row in rows {
                let (name, version, vendor, platform, eco) = row?;
                v.push(InventoryItem {
                    name,
                    version,
                    vendor,
                    platform: platform.map(|p| parse(&p)).transpose()?,
                    ecosystem: parse(&eco)?,
                });
            }
            v
        };
        for gone in open
            .iter()
            .filter(|i| !present.contains(&(product_lookup_key(&i.name), i.version.as_str())))
        {
            self.close(endpoint_id, endpoint, source, gone, at, file)?;
        }
        for item in items {
            self.open(endpoint_id, endpoint, source, item, at, file)?;
        }
        Ok(())
    }
}

pub(super) fn entry_of(
    endpoint: &str,
    source: &str,
    item: &InventoryItem,
    installed: Time,
    removed: Option<Time>,
    file: Option<&str>,
) -> LedgerEntry {
    LedgerEntry {
        endpoint: endpoint.to_owned(),
        source: source.to_owned(),
        name: item.name.clone(),
        version: item.version.clone(),
        vendor: item.vendor.clone(),
        platform: item.platform,
        ecosystem: item.ecosystem,
        installed,
        removed,
        file: file.map(str::to_owned),
    }
}

pub(super) fn ledger_row(r: &rusqlite::Row) -> rusqlite::Result<LedgerEntry> {
    let platform: Option<String> = r.get(5)?;
    let ecosystem: String = r.get(6)?;
    Ok(LedgerEntry {
        endpoint: r.get(0)?,
        source: r.get(1)?,
        name: r.get(2)?,
        version: r.get(3)?,
        vendor: r.get(4)?,
        platform: platform
            .map(|p| parse(&p))
            .transpose()
            .map_err(|e| bad_column(5, e))?,
        ecosystem: parse::<Ecosystem>(&ecosystem).map_err(|e| bad_column(6, e))?,
        installed: Time(r.get(7)?),
        removed: r.get::<_, Option<i64>>(8)?.map(Time),
        file: r.get(9)?,
    })
}
