//! The alert queue as analysts see it: the tenants' alerts and, at the
//! MSSP level, the campaigns among them. The CLI and the API list it
//! alike, so their JSON rows are the same.

use serde::Serialize;
use turncoat_core::{AlertKind, Severity, Time};
use turncoat_store::{Alert, AlertFilter, AlertOrder, Scope, Store};

use crate::Result;
use crate::campaign::{CampaignRow, campaign_rows};

/// One row of the queue: a tenant's alert or a campaign.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AlertRow {
    Campaign(CampaignRow),
    Alert(Box<Alert>),
}

impl AlertRow {
    pub fn id(&self) -> i64 {
        match self {
            AlertRow::Campaign(c) => c.id,
            AlertRow::Alert(a) => a.id.get(),
        }
    }

    /// The row's place in the queue by `order`: campaigns first, then by
    /// severity (highest first, then earliest first seen) or by last seen
    /// (latest first), then the lowest id (unique, so a page can resume
    /// after any row).
    pub fn order_key(&self, order: AlertOrder) -> OrderKey {
        let (alert, severity, first_seen, last_seen) = match self {
            AlertRow::Campaign(c) => (false, c.severity, c.first_seen, c.last_seen),
            AlertRow::Alert(a) => (true, a.severity, a.first_seen, a.last_seen),
        };
        match order {
            AlertOrder::Severity => (alert, std::cmp::Reverse(severity), first_seen.0, self.id()),
            AlertOrder::Newest => (
                alert,
                std::cmp::Reverse(Severity::Info),
                -last_seen.0,
                self.id(),
            ),
        }
    }
}

/// The queue under `filter` in `scope`: campaigns first (they are the
/// MSSP's), then alerts by severity, first seen and id. Campaigns are
/// listed unless the filter is for one endpoint or another kind.
pub fn list(store: &dyn Store, scope: &Scope, filter: &AlertFilter) -> Result<Vec<AlertRow>> {
    let mut campaigns: Vec<AlertRow> =
        if filter.kind.is_none_or(|k| k == AlertKind::Campaign) && filter.endpoint.is_none() {
            campaign_rows(store, scope, 0, i64::MAX)?
                .into_iter()
                .filter(|c| filter.status.is_none_or(|s| s == c.status))
                .map(AlertRow::Campaign)
                .collect()
        } else {
            Vec::new()
        };
    campaigns.sort_by_key(|c| c.order_key(AlertOrder::Severity));
    let alerts = if filter.kind == Some(AlertKind::Campaign) {
        Vec::new()
    } else {
        store.alerts(scope, filter)?
    };
    Ok(campaigns
        .into_iter()
        .chain(alerts.into_iter().map(|a| AlertRow::Alert(Box::new(a))))
        .collect())
}

/// What an analyst narrows the queue to, beyond [`AlertFilter`]: the
/// queue's filters and a bulk triage's selection are one thing.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub filter: AlertFilter,
    /// This severity or higher.
    pub min_severity: Option<Severity>,
    /// Last seen at or after this time.
    pub since: Option<Time>,
    /// Text in the title, source or endpoint, ignoring case.
    pub text: Option<String>,
    /// Assigned to this user (alerts only: campaigns have no assignee).
    pub assignee: Option<String>,
    /// The order pages are listed in.
    pub order: AlertOrder,
}

impl Selection {
    /// Whether the selection holds `row`; `needle` is the text, lowered
    /// once for all rows.
    fn holds(&self, row: &AlertRow, needle: Option<&str>) -> bool {
        let (severity, last_seen, text, assignee) = match row {
            AlertRow::Campaign(c) => (c.severity, c.last_seen, [&*c.title, &*c.source, ""], None),
            AlertRow::Alert(a) => (
                a.severity,
                a.last_seen,
                [&*a.title, &*a.source, &*a.endpoint],
                a.assignee.as_deref(),
            ),
        };
        self.min_severity.is_none_or(|m| severity >= m)
            && self.since.is_none_or(|s| last_seen >= s)
            && needle.is_none_or(|n| text.iter().any(|t| t.to_lowercase().contains(n)))
            && self
                .assignee
                .as_deref()
                .is_none_or(|want| assignee.is_some_and(|a| a.eq_ignore_ascii_case(want)))
    }
}

/// The queue in `scope` narrowed to `selection`, in the queue's order.
pub fn select(store: &dyn Store, scope: &Scope, selection: &Selection) -> Result<Vec<AlertRow>> {
    let mut rows = list(store, scope, &selection.filter)?;
    let needle = selection.text.as_deref().map(str::to_lowercase);
    rows.retain(|row| selection.holds(row, needle.as_deref()));
    Ok(rows)
}

/// The queue's sort key of a row (see [`AlertRow::order_key`]): whether
/// it is an alert, its severity (highest first), a time (first seen, or
/// last seen negated) and its id.
pub type OrderKey = (bool, std::cmp::Reverse<Severity>, i64, i64);

/// One page of the queue in `scope` narrowed to `selection`: the rows
/// after `after` (a previous page's last key), at most `limit`, and
/// whether more follow. Campaigns (few, MSSP-level) are listed first
/// from memory; alerts come from the store a page at a time, so a page
/// costs the same however many alerts there are.
pub fn select_page(
    store: &dyn Store,
    scope: &Scope,
    selection: &Selection,
    after: Option<&OrderKey>,
    limit: usize,
) -> Result<(Vec<AlertRow>, bool)> {
    let filter = &selection.filter;
    let needle = selection.text.as_deref().map(str::to_lowercase);
    let after_alert = after.filter(|k| k.0);
    let mut rows: Vec<AlertRow> = Vec::new();
    let campaigns_listed =
        filter.kind.is_none_or(|k| k == AlertKind::Campaign) && filter.endpoint.is_none();
    if campaigns_listed && after_alert.is_none() {
        let mut campaigns: Vec<AlertRow> = campaign_rows(store, scope, 0, i64::MAX)?
            .into_iter()
            .filter(|c| filter.status.is_none_or(|s| s == c.status))
            .map(AlertRow::Campaign)
            .filter(|row| selection.holds(row, needle.as_deref()))
            .filter(|row| after.is_none_or(|a| row.order_key(selection.order) > *a))
            .collect();
        campaigns.sort_by_key(|c| c.order_key(selection.order));
        rows.extend(campaigns.into_iter().take(limit + 1));
    }
    if rows.len() <= limit && filter.kind != Some(AlertKind::Campaign) {
        let page = turncoat_store::AlertPage {
            order: selection.order,
            filter,
            min_severity: selection.min_severity,
            since: selection.since,
            text: selection.text.as_deref(),
            assignee: selection.assignee.as_deref(),
            after: after_alert.map(|k| {
                let time = match selection.order {
                    AlertOrder::Severity => Time(k.2),
                    AlertOrder::Newest => Time(-k.2),
                };
                (k.1.0, time, turncoat_core::AlertId::new(k.3))
            }),
            limit: limit + 1 - rows.len(),
        };
        rows.extend(
            store
                .alerts_page(scope, &page)?
                .into_iter()
                .map(|a| AlertRow::Alert(Box::new(a))),
        );
    }
    let more = rows.len() > limit;
    rows.truncate(limit);
    Ok((rows, more))
}
