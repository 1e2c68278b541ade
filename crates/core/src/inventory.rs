//! Software inventory: what is installed where, as reported over time.

use serde::{Deserialize, Serialize};

use crate::advisory::Platform;
use crate::time::Time;
use crate::version::Ecosystem;

/// One installed product or package.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InventoryItem {
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    pub ecosystem: Ecosystem,
}

/// What an inventory record says happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "change", content = "items")]
pub enum InventoryChange {
    /// These items appeared (osquery differential `added`).
    Added(Vec<InventoryItem>),
    /// These items disappeared (osquery differential `removed`).
    Removed(Vec<InventoryItem>),
    /// This is everything the source lists now: items not in it are gone.
    Snapshot(Vec<InventoryItem>),
}

/// One inventory observation from one endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InventoryRecord {
    pub host: String,
    pub time: Time,
    /// The inventory source (`programs`, `apps`, `deb_packages`, `sbom`, ...):
    /// a snapshot replaces only what the same source said before.
    pub source: String,
    pub change: InventoryChange,
}
