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
    #[error("no analyst or admin {0:?} to assign the alert to")]
    NoSuchAssignee(String),
    #[error("a comment says something (at most {MAX_COMMENT_CHARS} characters)")]
    BadComment,
}

/// The longest comment kept: a note, not a report.
pub const MAX_COMMENT_CHARS: usize = 4_000;

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

/// Assigns alert `id` to `assignee` (an analyst or admin), or to nobody.
pub fn assign(
    store: &mut dyn Store,
    scope: &Scope,
    id: AlertId,
    assignee: Option<&str>,
    actor: &Actor,
) -> Result<()> {
    let user = match assignee {
        Some(name) => {
            let user = store
                .user(name)?
                .filter(|u| u.role.can_triage())
                .ok_or_else(|| TriageError::NoSuchAssignee(name.to_owned()))?;
            Some(user.name)
        }
        None => None,
    };
    Ok(store.assign_alert(scope, id, user.as_deref(), actor)?)
}

/// Adds a comment to alert `id`'s history.
pub fn comment(
    store: &mut dyn Store,
    scope: &Scope,
    id: AlertId,
    text: &str,
    actor: &Actor,
) -> Result<()> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_COMMENT_CHARS {
        return Err(TriageError::BadComment.into());
    }
    Ok(store.comment_alert(scope, id, text, actor)?)
}
