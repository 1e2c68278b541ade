//! Exposure: who runs (or ran) an affected version, and since when.

use serde::Serialize;
use turncoat_core::{Finding, Platform, TenantName, Time};
use turncoat_detect::AdvisoryIndex;
use turncoat_detect::findings::exposure_finding;
use turncoat_store::{LedgerEntry, Scope, Store};

use crate::Result;

/// One endpoint's exposure to one advisory.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExposureRow {
    pub tenant: TenantName,
    pub endpoint: String,
    pub advisory: String,
    pub product: String,
    pub version: String,
    pub platform: Option<Platform>,
    pub from: Time,
    /// `None` while still installed.
    pub to: Option<Time>,
}

/// The inventory item a ledger interval records.
fn item_of(entry: &LedgerEntry) -> turncoat_core::InventoryItem {
    turncoat_core::InventoryItem {
        name: entry.name.clone(),
        version: entry.version.clone(),
        vendor: entry.vendor.clone(),
        platform: entry.platform,
        ecosystem: entry.ecosystem,
    }
}

/// The findings a ledger interval raises against the advisories.
pub fn ledger_findings(advisories: &AdvisoryIndex, entry: &LedgerEntry) -> Vec<Finding> {
    let item = item_of(entry);
    advisories
        .matches(&item)
        .into_iter()
        .map(|m| {
            exposure_finding(
                &advisories.advisories()[m.advisory],
                m.affected,
                &entry.endpoint,
                &entry.name,
                &entry.version,
                entry.installed,
                entry.removed,
                entry.file.clone(),
            )
        })
        .collect()
}

/// The ledger hook a batch commit calls: exposure findings per interval.
pub fn exposure_hook(advisories: &AdvisoryIndex) -> impl FnMut(&LedgerEntry) -> Vec<Finding> + '_ {
    move |entry| {
        if advisories.is_empty() {
            Vec::new()
        } else {
            ledger_findings(advisories, entry)
        }
    }
}

/// Every exposure in scope, optionally for one advisory.
pub fn exposure(
    store: &dyn Store,
    scope: &Scope,
    advisory: Option<&str>,
) -> Result<Vec<ExposureRow>> {
    let advisories: Vec<_> = store
        .advisories()?
        .into_iter()
        .filter(|a| advisory.is_none_or(|id| a.id == id))
        .collect();
    let index = AdvisoryIndex::new(advisories);
    let names: Vec<String> = index
        .advisories()
        .iter()
        .flat_map(|a| a.affected.iter().flat_map(|f| f.lookup_keys()))
        .collect();
    let mut rows = Vec::new();
    for tenant in scope.members() {
        for entry in store.ledger(tenant, Some(&names))? {
            let item = item_of(&entry);
            for m in index.matches(&item) {
                let a = &index.advisories()[m.advisory];
                rows.push(ExposureRow {
                    tenant: tenant.name().clone(),
                    endpoint: entry.endpoint.clone(),
                    advisory: a.id.clone(),
                    product: a.affected[m.affected].product.clone(),
                    version: entry.version.clone(),
                    platform: entry.platform,
                    from: entry.installed,
                    to: entry.removed,
                });
            }
        }
    }
    rows.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
    rows.dedup();
    Ok(rows)
}

impl ExposureRow {
    /// What rows are listed by, to the last field that tells two apart,
    /// so a page can resume after any row.
    pub fn order_key(&self) -> (&str, &str, &str, Time, &str, &str) {
        (
            self.tenant.as_str(),
            &self.endpoint,
            &self.advisory,
            self.from,
            &self.product,
            &self.version,
        )
    }
}
