//! Triage: what an analyst may set an alert to, and what it must say.

use turncoat_core::Time;
use turncoat_core::{Actor, AlertId, AlertStatus, TenantName};
use turncoat_store::{NewSuppression, Scope, Store, Suppression, Tenant};

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
    #[error("{user:?} is not granted tenant {tenant}, whose alert this is")]
    AssigneeNotGranted { user: String, tenant: TenantName },
    #[error("a comment says something (at most {MAX_COMMENT_CHARS} characters)")]
    BadComment,
    #[error("a suppression names the alert source it matches")]
    NoSource,
    #[error("a suppression says why")]
    NoReason,
    #[error("a suppression's expiry lies in the future")]
    ExpiredAlready,
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
    let reason = checked(status, reason)?;
    Ok(store.set_alert_status(scope, id, status, reason, actor)?)
}

/// The reason, trimmed, if `status` may be set by hand with it.
pub fn checked(status: AlertStatus, reason: Option<&str>) -> Result<Option<&str>> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    match status {
        AlertStatus::Allowlisted => Err(TriageError::NotByHand(status).into()),
        AlertStatus::FalsePositive | AlertStatus::Suppressed if reason.is_none() => {
            Err(TriageError::ReasonRequired(status).into())
        }
        _ => Ok(reason),
    }
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
            // An analyst granted some tenants cannot work another's
            // alert; one granted none (or an admin) works every tenant's.
            if let Some(alert) = store.alert(scope, id)?
                && !user.tenants.is_empty()
                && !user.tenants.contains(&alert.tenant)
            {
                return Err(TriageError::AssigneeNotGranted {
                    user: user.name,
                    tenant: alert.tenant,
                }
                .into());
            }
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

/// Adds a suppression for `tenant` (every tenant's when `None`), closing
/// the open alerts it matches as `suppressed`; they and any later match
/// resurface when it expires or is removed.
pub fn suppress(
    store: &mut dyn Store,
    tenant: Option<&Tenant>,
    new: &NewSuppression<'_>,
    actor: &Actor,
) -> Result<(Suppression, Vec<AlertId>)> {
    let source = new.source.trim();
    let reason = new.reason.trim();
    if source.is_empty() {
        return Err(TriageError::NoSource.into());
    }
    if reason.is_empty() {
        return Err(TriageError::NoReason.into());
    }
    if new.expires.is_some_and(|t| t <= Time::now()) {
        return Err(TriageError::ExpiredAlready.into());
    }
    let new = NewSuppression {
        source,
        reason,
        endpoint: new.endpoint.map(str::trim).filter(|e| !e.is_empty()),
        ..*new
    };
    Ok(store.add_suppression(tenant, &new, actor)?)
}

/// What a bulk status change selected and changed.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BulkOutcome {
    /// Alerts the selection holds (campaign rows are not triaged here).
    pub matched: usize,
    /// Those whose status changed; empty for a preview.
    pub changed: Vec<AlertId>,
    pub preview: bool,
}

/// Sets every alert `selection` holds in `scope` to `status`, with the
/// same rules as one at a time; a `preview` only counts them.
pub fn bulk_status(
    store: &mut dyn Store,
    scope: &Scope,
    selection: &crate::alerts::Selection,
    status: AlertStatus,
    reason: Option<&str>,
    preview: bool,
    actor: &Actor,
) -> Result<BulkOutcome> {
    let reason = checked(status, reason)?;
    let ids: Vec<(AlertId, AlertStatus)> = crate::alerts::select(store, scope, selection)?
        .into_iter()
        .filter_map(|row| match row {
            crate::alerts::AlertRow::Alert(a) => Some((a.id, a.status)),
            crate::alerts::AlertRow::Campaign(_) => None,
        })
        .collect();
    let mut outcome = BulkOutcome {
        matched: ids.len(),
        changed: Vec::new(),
        preview,
    };
    if preview {
        return Ok(outcome);
    }
    for (id, now) in ids {
        if now != status {
            store.set_alert_status(scope, id, status, reason, actor)?;
            outcome.changed.push(id);
        }
    }
    Ok(outcome)
}
