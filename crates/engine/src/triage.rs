//! Triage: what an analyst may set an alert to, and what it must say.

use turncoat_core::{Actor, AlertId, AlertStatus};
use turncoat_store::{Scope, Store};

use crate::Result;

/// A status change refused before it reaches the store.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TriageError {
    /// Dismissals are accountable: the 3CX detections were closed as
    /// false positives for a week without anyone saying why.
    #[error("setting {0} needs a reason")]
    ReasonRequired(AlertStatus),
    /// Only an allowlist entry sets it, so that it always names one.
    #[error("{0} is set by allowlist entries, not by hand")]
    NotByHand(AlertStatus),
}

/// Sets alert `id`, in `scope`, to `status`; a false positive or a
/// suppression needs a reason.
pub fn set_status(
    store: &mut dyn Store,
    scope: &Scope,
    id: AlertId,
    status: AlertStatus,
    reason: Option<&str>,
    actor: &Actor,
) -> Result<()> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    match status {
        AlertStatus::Allowlisted => return Err(TriageError::NotByHand(status).into()),
        AlertStatus::FalsePositive | AlertStatus::Suppressed if reason.is_none() => {
            return Err(TriageError::ReasonRequired(status).into());
        }
        _ => {}
    }
    Ok(store.set_alert_status(scope, id, status, reason, actor)?)
}
