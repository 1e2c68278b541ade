//! The software ledger's rules, shared by the backends: what each
//! endpoint had installed from when to when, written from inventory
//! snapshots and changes. A backend supplies the row operations
//! ([`LedgerRows`]); the intervals are opened, closed and reconciled here.

use std::collections::HashSet;

use turncoat_core::advisory::product_lookup_key;
use turncoat_core::{Finding, InventoryChange, InventoryItem, InventoryRecord, Platform, Time};

use crate::{LedgerEntry, LedgerHook, Result};

/// An interval to store.
pub(crate) struct NewInterval<'a> {
    pub endpoint_id: i64,
    pub source: &'a str,
    pub item: &'a InventoryItem,
    /// `product_lookup_key` of the item's name.
    pub name_norm: &'a str,
    pub installed: Time,
    pub removed: Option<Time>,
    pub file: Option<&'a str>,
}

impl NewInterval<'_> {
    pub(crate) fn platform(&self) -> Option<&'static str> {
        self.item.platform.map(Platform::as_str)
    }
}

/// The row operations of one tenant's ledger, inside a batch's transaction.
pub(crate) trait LedgerRows {
    fn endpoint_id(&mut self, host: &str, at: Time) -> Result<i64>;
    /// The open interval of a version: its id and install time.
    fn open_interval(
        &mut self,
        endpoint_id: i64,
        source: &str,
        name_norm: &str,
        version: &str,
    ) -> Result<Option<(i64, i64)>>;
    fn insert(&mut self, interval: &NewInterval<'_>) -> Result<()>;
    fn set_removed(&mut self, id: i64, removed: Time) -> Result<()>;
    /// What a source lists as installed on an endpoint now.
    fn open_items(&mut self, endpoint_id: i64, source: &str) -> Result<Vec<InventoryItem>>;
}

/// The batch's inventory into the ledger, in time order: how many entries
/// changed, and the exposure findings the hook made of them.
pub(crate) fn record_inventory(
    rows: &mut dyn LedgerRows,
    mut inventory: Vec<InventoryRecord>,
    hook: &mut LedgerHook<'_>,
    file: Option<&str>,
) -> Result<(u64, Vec<Finding>)> {
    let mut ledger = LedgerWriter {
        rows,
        hook,
        findings: Vec::new(),
        changes: 0,
        file,
    };
    inventory.sort_by_key(|r| r.time);
    for rec in &inventory {
        let eid = ledger.rows.endpoint_id(&rec.host, rec.time)?;
        let at = (eid, rec.host.as_str(), rec.source.as_str(), rec.time);
        match &rec.change {
            InventoryChange::Added(items) => {
                for item in items {
                    ledger.open(at, item)?;
                }
            }
            InventoryChange::Removed(items) => {
                for item in items {
                    ledger.close(at, item)?;
                }
            }
            InventoryChange::Snapshot(items) => ledger.snapshot(at, items)?,
        }
    }
    Ok((ledger.changes, ledger.findings))
}

/// Where a record applies: endpoint id and name, source, time.
type At<'a> = (i64, &'a str, &'a str, Time);

struct LedgerWriter<'r, 'h, 'f> {
    rows: &'r mut dyn LedgerRows,
    hook: &'r mut LedgerHook<'h>,
    findings: Vec<Finding>,
    changes: u64,
    file: Option<&'f str>,
}

impl LedgerWriter<'_, '_, '_> {
    fn open(&mut self, (eid, endpoint, source, at): At<'_>, item: &InventoryItem) -> Result<()> {
        let norm = product_lookup_key(&item.name);
        if self
            .rows
            .open_interval(eid, source, &norm, &item.version)?
            .is_some()
        {
            return Ok(());
        }
        self.rows.insert(&NewInterval {
            endpoint_id: eid,
            source,
            item,
            name_norm: &norm,
            installed: at,
            removed: None,
            file: self.file,
        })?;
        self.changes += 1;
        let entry = entry_of(endpoint, source, item, at, None, self.file);
        self.findings.extend((self.hook)(&entry));
        Ok(())
    }

    /// Closes the open interval of `item`; a removal of something never
    /// seen installed is recorded as an interval that ends where it starts.
    fn close(&mut self, (eid, endpoint, source, at): At<'_>, item: &InventoryItem) -> Result<()> {
        let norm = product_lookup_key(&item.name);
        let installed = match self.rows.open_interval(eid, source, &norm, &item.version)? {
            Some((id, installed)) => {
                self.rows.set_removed(id, at.max(Time(installed)))?;
                Time(installed)
            }
            None => {
                self.rows.insert(&NewInterval {
                    endpoint_id: eid,
                    source,
                    item,
                    name_norm: &norm,
                    installed: at,
                    removed: Some(at),
                    file: self.file,
                })?;
                at
            }
        };
        self.changes += 1;
        let removed = Some(at.max(installed));
        let entry = entry_of(endpoint, source, item, installed, removed, self.file);
        self.findings.extend((self.hook)(&entry));
        Ok(())
    }

    /// A snapshot: opens what is new, closes what the source no longer lists.
    fn snapshot(&mut self, at: At<'_>, items: &[InventoryItem]) -> Result<()> {
        let present: HashSet<(String, &str)> = items
            .iter()
            .map(|i| (product_lookup_key(&i.name), i.version.as_str()))
            .collect();
        let open = self.rows.open_items(at.0, at.2)?;
        for gone in open
            .iter()
            .filter(|i| !present.contains(&(product_lookup_key(&i.name), i.version.as_str())))
        {
            self.close(at, gone)?;
        }
        for item in items {
            self.open(at, item)?;
        }
        Ok(())
    }
}

fn entry_of(
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
