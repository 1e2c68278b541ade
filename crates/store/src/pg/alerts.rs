//! Findings into alerts, the queue, triage, suppressions and campaigns
//! in PostgreSQL. Deduplication and resurfacing follow the same rules as
//! the embedded store ([`crate::rows`] holds the shared ones).

use std::collections::HashSet;

use postgres::types::ToSql;
use postgres::{GenericClient, Row, Transaction};
use turncoat_core::{
    Actor, AlertId, AlertKind, AlertStatus, Evidence, Finding, Severity, TenantName, Time,
};

use super::batch::{Ids, endpoint_id, lock_tenant};
use super::{PgStore, audit_tx, set_stream_state_tx};
use crate::rows::{
    CampaignColumns, CampaignMember, alert_action, campaign_for, entry_tenant, evidence_event,
    json_err, parse, resurface_reason, severity_from_rank, severity_rank,
};
use crate::{
    Alert, AlertAction, AlertChange, AlertCount, AlertFilter, AlertOrder, AlertPage, CampaignAlert,
    CampaignUpserted, EventRef, FindingMode, FindingsOutcome, NewSuppression, Result, Scope,
    StoreError, Suppression, Tenant,
};

/// Records findings inside a transaction; shared by live batches and
/// retro-hunts so that both keep the same deduplication.
pub(super) fn record_findings_tx(
    tx: &mut Transaction<'_>,
    ids: &mut Ids,
    tenant: i64,
    findings: &[(Finding, Option<EventRef>)],
    mode: FindingMode,
    now: Time,
) -> Result<FindingsOutcome> {
    let mut outcome = FindingsOutcome::default();
    let mut touched: HashSet<i64> = HashSet::new();
    let mut new_alerts: HashSet<i64> = HashSet::new();
    for (f, at) in findings {
        let endpoint = endpoint_id(tx, ids, tenant, &f.endpoint, f.first_seen)?;
        let mut evidence = serde_json::to_value(&f.evidence).map_err(json_err)?;
        if let Some(at) = at {
            evidence["event"] = serde_json::to_value(at).map_err(json_err)?;
        }
        let evidence = evidence.to_string();
        let existing = tx.query_opt(
            "SELECT id, severity, status FROM alerts WHERE tenant_id = $1 AND endpoint_id = $2 AND kind = $3 AND source = $4",
            &[&tenant, &endpoint, &f.kind.as_str(), &f.source],
        )?;
        let alert_id = match existing {
            // A re-analysis carries the newest view of the alert: intel
            // attached since, a higher severity.
            Some(r) if mode != FindingMode::Add => {
                let (id, severity, status): (i64, i64, String) =
                    (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                let why = resurface_reason(
                    &status,
                    severity,
                    f.severity,
                    &f.title,
                    mode == FindingMode::NewIntel,
                );
                if let Some(why) = why {
                    resurface(tx, tenant, AlertId::new(id), &why, now)?;
                    outcome.resurfaced += 1;
                    touched.insert(id);
                }
                let changed = tx.execute(
                    "UPDATE alerts SET title = $3, severity = greatest(severity, $4), campaign = coalesce($5, campaign), updated = $6
                     WHERE tenant_id = $1 AND id = $2
                       AND (title <> $3 OR severity < $4 OR ($5::text IS NOT NULL AND campaign IS DISTINCT FROM $5))",
                    &[&tenant, &id, &f.title, &severity_rank(f.severity), &f.campaign, &now.0],
                )?;
                if changed > 0 {
                    touched.insert(id);
                }
                id
            }
            Some(r) => r.try_get(0)?,
            None => {
                let id: i64 = tx
                    .query_one(
                        "INSERT INTO alerts (tenant_id, endpoint_id, kind, source, title, severity, status, campaign,
                            first_seen, last_seen, count, evidence, created, updated)
                         VALUES ($1, $2, $3, $4, $5, $6, 'new', $7, $8, $9, 0, $10, $11, $11) RETURNING id",
                        &[
                            &tenant,
                            &endpoint,
                            &f.kind.as_str(),
                            &f.source,
                            &f.title,
                            &severity_rank(f.severity),
                            &f.campaign,
                            &f.first_seen.0,
                            &f.last_seen.0,
                            &evidence,
                            &now.0,
                        ],
                    )?
                    .try_get(0)?;
                suppress_if_matched(tx, tenant, AlertId::new(id), f, now)?;
                new_alerts.insert(id);
                id
            }
        };
        let sql = match mode {
            FindingMode::Add => {
                "INSERT INTO findings AS f (tenant_id, alert_id, key, first_seen, last_seen, count, evidence) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (tenant_id, alert_id, key) DO UPDATE SET
                    first_seen = least(f.first_seen, excluded.first_seen),
                    last_seen = greatest(f.last_seen, excluded.last_seen),
                    count = f.count + excluded.count,
                    evidence = CASE WHEN excluded.last_seen >= f.last_seen THEN excluded.evidence ELSE f.evidence END"
            }
            FindingMode::Set | FindingMode::NewIntel => {
                "INSERT INTO findings AS f (tenant_id, alert_id, key, first_seen, last_seen, count, evidence) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (tenant_id, alert_id, key) DO UPDATE SET
                    first_seen = excluded.first_seen,
                    last_seen = excluded.last_seen,
                    count = excluded.count,
                    evidence = excluded.evidence
                 WHERE f.first_seen <> excluded.first_seen OR f.last_seen <> excluded.last_seen
                    OR f.count <> excluded.count OR f.evidence <> excluded.evidence"
            }
        };
        let changed = tx.execute(
            sql,
            &[
                &tenant,
                &alert_id,
                &f.key.as_str(),
                &f.first_seen.0,
                &f.last_seen.0,
                &(f.count as i64),
                &evidence,
            ],
        )?;
        if changed > 0 {
            touched.insert(alert_id);
        }
    }
    let mut touched_ids: Vec<i64> = touched.iter().copied().collect();
    touched_ids.sort_unstable();
    if !touched_ids.is_empty() {
        tx.execute(
            "UPDATE alerts a SET count = s.count, first_seen = s.first_seen, last_seen = s.last_seen,
                evidence = s.evidence, updated = $3
             FROM (SELECT alert_id, sum(count)::bigint AS count, min(first_seen) AS first_seen, max(last_seen) AS last_seen,
                          (array_agg(evidence ORDER BY last_seen DESC, key DESC))[1] AS evidence
                   FROM findings WHERE tenant_id = $1 AND alert_id = ANY($2) GROUP BY alert_id) s
             WHERE a.tenant_id = $1 AND a.id = s.alert_id",
            &[&tenant, &touched_ids, &now.0],
        )?;
    }
    outcome.new_alerts = new_alerts.len() as u64;
    outcome.updated_alerts = touched.difference(&new_alerts).count() as u64;
    Ok(outcome)
}

/// Records findings, and a stream state when given, in one transaction.
pub(super) fn record_findings(
    store: &mut PgStore,
    tenant: &Tenant,
    findings: &[(Finding, Option<EventRef>)],
    mode: FindingMode,
    state: Option<(&str, &[u8])>,
) -> Result<FindingsOutcome> {
    let PgStore { client, ids, .. } = &mut *store;
    let result = (|| {
        let mut tx = client.get_mut().transaction()?;
        lock_tenant(&mut tx, tenant.id)?;
        let outcome = record_findings_tx(&mut tx, ids, tenant.id, findings, mode, Time::now())?;
        if outcome.new_alerts + outcome.updated_alerts > 0 {
            audit_tx(
                &mut tx,
                &Actor::Pipeline,
                Some(tenant.id),
                "alerts.retro",
                &format!(
                    "{} new, {} updated",
                    outcome.new_alerts, outcome.updated_alerts
                ),
            )?;
        }
        if let Some((name, bytes)) = state {
            set_stream_state_tx(&mut tx, tenant.id, name, bytes)?;
        }
        tx.commit()?;
        Ok(outcome)
    })();
    if result.is_err() {
        store.forget_cached_ids();
    }
    result
}

/// The columns [`alert_row`] reads, in its order; `alerts a` joined to
/// its endpoint `e`.
pub(super) const ALERT_SELECT: &str =
    "SELECT a.id, e.name, a.kind, a.source, a.title, a.severity, a.status, a.campaign,
        a.first_seen, a.last_seen, a.count, a.evidence, a.created, a.updated, a.campaign_alert,
        a.status_reason, a.assignee, a.tenant_id
    FROM alerts a JOIN endpoints e ON e.id = a.endpoint_id AND e.tenant_id = a.tenant_id";

pub(super) fn alert_row(tenant: &TenantName, r: &Row) -> Result<Alert> {
    let evidence: &str = r.try_get(11)?;
    Ok(Alert {
        id: AlertId::new(r.try_get(0)?),
        tenant: tenant.clone(),
        endpoint: r.try_get(1)?,
        kind: parse(r.try_get(2)?)?,
        source: r.try_get(3)?,
        title: r.try_get(4)?,
        severity: severity_from_rank(r.try_get(5)?),
        status: parse(r.try_get(6)?)?,
        campaign: r.try_get(7)?,
        first_seen: Time(r.try_get(8)?),
        last_seen: Time(r.try_get(9)?),
        count: r.try_get::<_, i64>(10)? as u64,
        event: evidence_event(evidence),
        evidence: serde_json::from_str::<Evidence>(evidence).map_err(json_err)?,
        created: Time(r.try_get(12)?),
        updated: Time(r.try_get(13)?),
        campaign_alert: r.try_get(14)?,
        status_reason: r.try_get(15)?,
        assignee: r.try_get(16)?,
    })
}

/// Alert rows of `scope`'s tenants, each named from the scope.
pub(super) fn scoped_alerts(scope: &Scope, rows: &[Row]) -> Result<Vec<Alert>> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let tenant_id: i64 = r.try_get(17)?;
        if let Some(t) = scope.members().iter().find(|t| t.id == tenant_id) {
            out.push(alert_row(&t.name, r)?);
        }
    }
    Ok(out)
}

pub(super) fn alerts_page(
    store: &PgStore,
    scope: &Scope,
    page: &AlertPage<'_>,
) -> Result<Vec<Alert>> {
    if scope.members().is_empty() || page.limit == 0 {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = scope.members().iter().map(|t| t.id).collect();
    let (after, order) = match page.order {
        AlertOrder::Severity => (
            "($9::bigint IS NULL OR a.severity < $9
                OR (a.severity = $9 AND (a.first_seen > $10 OR (a.first_seen = $10 AND a.id > $11))))",
            "a.severity DESC, a.first_seen, a.id",
        ),
        AlertOrder::Newest => (
            "($9::bigint IS NULL OR a.last_seen < $10 OR (a.last_seen = $10 AND a.id > $11))",
            "a.last_seen DESC, a.id",
        ),
    };
    let sql = format!(
        "{ALERT_SELECT}
         WHERE a.tenant_id = ANY($1)
           AND ($2::text IS NULL OR a.kind = $2) AND ($3::text IS NULL OR a.status = $3) AND ($4::text IS NULL OR e.name = $4)
           AND ($5::bigint IS NULL OR a.severity >= $5) AND ($6::bigint IS NULL OR a.last_seen >= $6)
           AND ($7::text IS NULL OR strpos(lower(a.title), $7) > 0 OR strpos(lower(a.source), $7) > 0 OR strpos(lower(e.name), $7) > 0)
           AND ($8::text IS NULL OR lower(a.assignee) = lower($8))
           AND {after}
         ORDER BY {order}
         LIMIT $12"
    );
    let (sev, first, id) = match page.after {
        Some((s, f, i)) => (Some(severity_rank(s)), Some(f.0), Some(i.get())),
        None => (None, None, None),
    };
    let text = page.text.map(str::to_ascii_lowercase);
    let params: [&(dyn ToSql + Sync); 12] = [
        &ids,
        &page.filter.kind.map(AlertKind::as_str),
        &page.filter.status.map(AlertStatus::as_str),
        &page.filter.endpoint,
        &page.min_severity.map(severity_rank),
        &page.since.map(|t| t.0),
        &text,
        &page.assignee,
        &sev,
        &first,
        &id,
        &super::sql_limit(page.limit),
    ];
    let rows = store.db().query(&sql, &params)?;
    scoped_alerts(scope, &rows)
}

pub(super) fn alerts(store: &PgStore, scope: &Scope, filter: &AlertFilter) -> Result<Vec<Alert>> {
    let ids: Vec<i64> = scope.members().iter().map(|t| t.id).collect();
    let rows = store.db().query(
        &format!(
            "{ALERT_SELECT}
             WHERE a.tenant_id = ANY($1) AND ($2::text IS NULL OR a.kind = $2) AND ($3::text IS NULL OR a.status = $3)
               AND ($4::text IS NULL OR e.name = $4)
             ORDER BY a.severity DESC, a.first_seen, a.id
             LIMIT $5"
        ),
        &[
            &ids,
            &filter.kind.map(AlertKind::as_str),
            &filter.status.map(AlertStatus::as_str),
            &filter.endpoint,
            &filter.limit.map(super::sql_limit),
        ],
    )?;
    scoped_alerts(scope, &rows)
}

pub(super) fn alert_counts(store: &PgStore, scope: &Scope) -> Result<Vec<AlertCount>> {
    let ids: Vec<i64> = scope.members().iter().map(|t| t.id).collect();
    let rows = store.db().query(
        "SELECT tenant_id, kind, severity, status, count(*) FROM alerts WHERE tenant_id = ANY($1)
         GROUP BY tenant_id, kind, severity, status",
        &[&ids],
    )?;
    let mut out = Vec::new();
    // In the scope's order, as the embedded store answers.
    for tenant in scope.members() {
        for r in &rows {
            if r.try_get::<_, i64>(0)? != tenant.id {
                continue;
            }
            out.push(AlertCount {
                tenant: tenant.name.clone(),
                kind: parse(r.try_get(1)?)?,
                severity: severity_from_rank(r.try_get(2)?),
                status: parse(r.try_get(3)?)?,
                count: r.try_get::<_, i64>(4)? as u64,
            });
        }
    }
    Ok(out)
}

/// The tenant owning alert `id`, if `scope` holds it.
fn owner<'s>(
    db: &mut impl GenericClient,
    scope: &'s Scope,
    id: AlertId,
) -> Result<Option<&'s Tenant>> {
    let owner: Option<i64> = db
        .query_opt("SELECT tenant_id FROM alerts WHERE id = $1", &[&id.get()])?
        .map(|r| r.try_get(0))
        .transpose()?;
    Ok(owner.and_then(|t| scope.members().iter().find(|m| m.id == t)))
}

/// The id of the tenant owning alert `id`; out of scope when `scope`
/// does not hold it (or there is none).
fn owner_in(db: &mut impl GenericClient, scope: &Scope, id: AlertId) -> Result<i64> {
    owner(db, scope, id)?
        .map(|t| t.id)
        .ok_or_else(|| StoreError::OutOfScope(format!("alert {id}")))
}

pub(super) fn alert(store: &PgStore, scope: &Scope, id: AlertId) -> Result<Option<Alert>> {
    let mut db = store.db();
    let Some(tenant) = owner(&mut *db, scope, id)? else {
        return Ok(None);
    };
    db.query_opt(
        &format!("{ALERT_SELECT} WHERE a.tenant_id = $1 AND a.id = $2"),
        &[&tenant.id, &id.get()],
    )?
    .map(|r| alert_row(&tenant.name, &r))
    .transpose()
}

/// Brings a dismissed alert back to `new`, saying why in its history and
/// the audit log.
pub(super) fn resurface(
    tx: &mut Transaction<'_>,
    tenant: i64,
    id: AlertId,
    why: &str,
    now: Time,
) -> Result<()> {
    tx.execute(
        "UPDATE alerts SET status = 'new', status_reason = NULL, suppressed_by = NULL, updated = $1
         WHERE tenant_id = $2 AND id = $3",
        &[&now.0, &tenant, &id.get()],
    )?;
    record_change(
        tx,
        tenant,
        id,
        &Actor::Pipeline,
        AlertAction::Resurfaced,
        Some("new"),
        Some(why),
    )?;
    audit_tx(
        tx,
        &Actor::Pipeline,
        Some(tenant),
        "alert.resurfaced",
        &format!("alert {id} -> new: {why}"),
    )
}

/// Appends to an alert's history.
pub(super) fn record_change(
    tx: &mut Transaction<'_>,
    tenant: i64,
    id: AlertId,
    actor: &Actor,
    action: AlertAction,
    value: Option<&str>,
    note: Option<&str>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO alert_history (tenant_id, alert_id, time, actor, action, value, note)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &tenant,
            &id.get(),
            &Time::now().0,
            &actor.to_string(),
            &action.as_str(),
            &value,
            &note,
        ],
    )?;
    Ok(())
}

/// One triage change of an alert: its columns set, its history and the
/// audit log written, in one transaction.
struct Triage<'a> {
    /// Assignments after `updated = $3`, their values from `$4` on.
    change: &'a str,
    values: &'a [&'a (dyn ToSql + Sync)],
    action: AlertAction,
    value: Option<&'a str>,
    note: Option<&'a str>,
    audit: (&'a str, String),
}

impl Triage<'_> {
    fn apply(self, store: &mut PgStore, scope: &Scope, id: AlertId, actor: &Actor) -> Result<()> {
        let mut tx = store.client.get_mut().transaction()?;
        let t = owner_in(&mut tx, scope, id)?;
        let now = Time::now().0;
        let alert = id.get();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&t, &alert, &now];
        params.extend_from_slice(self.values);
        tx.execute(
            &format!(
                "UPDATE alerts SET updated = $3{} WHERE tenant_id = $1 AND id = $2",
                self.change
            ),
            &params,
        )?;
        record_change(&mut tx, t, id, actor, self.action, self.value, self.note)?;
        audit_tx(&mut tx, actor, Some(t), self.audit.0, &self.audit.1)?;
        tx.commit()?;
        Ok(())
    }
}

pub(super) fn set_alert_status(
    store: &mut PgStore,
    scope: &Scope,
    id: AlertId,
    status: AlertStatus,
    reason: Option<&str>,
    actor: &Actor,
) -> Result<()> {
    let because = reason.map(|r| format!(": {r}")).unwrap_or_default();
    Triage {
        change: ", status = $4, status_reason = $5",
        values: &[&status.as_str(), &reason],
        action: AlertAction::Status,
        value: Some(status.as_str()),
        note: reason,
        audit: ("alert.status", format!("alert {id} -> {status}{because}")),
    }
    .apply(store, scope, id, actor)
}

pub(super) fn assign_alert(
    store: &mut PgStore,
    scope: &Scope,
    id: AlertId,
    assignee: Option<&str>,
    actor: &Actor,
) -> Result<()> {
    let to = assignee.unwrap_or("nobody");
    Triage {
        change: ", assignee = $4",
        values: &[&assignee],
        action: AlertAction::Assign,
        value: assignee,
        note: None,
        audit: ("alert.assign", format!("alert {id} -> {to}")),
    }
    .apply(store, scope, id, actor)
}

pub(super) fn comment_alert(
    store: &mut PgStore,
    scope: &Scope,
    id: AlertId,
    text: &str,
    actor: &Actor,
) -> Result<()> {
    Triage {
        change: "",
        values: &[],
        action: AlertAction::Comment,
        value: None,
        note: Some(text),
        audit: ("alert.comment", format!("alert {id}")),
    }
    .apply(store, scope, id, actor)
}

pub(super) fn alert_history(
    store: &PgStore,
    scope: &Scope,
    id: AlertId,
) -> Result<Vec<AlertChange>> {
    let mut db = store.db();
    let t = owner_in(&mut *db, scope, id)?;
    db.query(
        "SELECT time, actor, action, value, note FROM alert_history
         WHERE tenant_id = $1 AND alert_id = $2 ORDER BY id",
        &[&t, &id.get()],
    )?
    .iter()
    .map(history_row)
    .collect()
}

/// An alert history row from `time, actor, action, value, note`.
pub(super) fn history_row(r: &Row) -> Result<AlertChange> {
    Ok(AlertChange {
        time: Time(r.try_get(0)?),
        actor: r.try_get(1)?,
        action: alert_action(r.try_get(2)?)?,
        value: r.try_get(3)?,
        note: r.try_get(4)?,
    })
}

pub(super) fn rename_alert_source(
    store: &mut PgStore,
    tenant: &Tenant,
    id: AlertId,
    source: &str,
    actor: &Actor,
) -> Result<()> {
    let mut tx = store.client.get_mut().transaction()?;
    let old: String = tx
        .query_opt(
            "SELECT source FROM alerts WHERE id = $1 AND tenant_id = $2",
            &[&id.get(), &tenant.id],
        )?
        .ok_or_else(|| StoreError::OutOfScope(format!("alert {id}")))?
        .try_get(0)?;
    tx.execute(
        "UPDATE alerts SET source = $1, updated = $2 WHERE tenant_id = $3 AND id = $4",
        &[&source, &Time::now().0, &tenant.id, &id.get()],
    )?;
    record_change(
        &mut tx,
        tenant.id,
        id,
        actor,
        AlertAction::Source,
        Some(source),
        Some(&old),
    )?;
    audit_tx(
        &mut tx,
        actor,
        Some(tenant.id),
        "alert.source",
        &format!("alert {id} source {old} -> {source}"),
    )?;
    tx.commit()?;
    Ok(())
}

pub(super) fn add_suppression(
    store: &mut PgStore,
    tenant: Option<&Tenant>,
    new: &NewSuppression<'_>,
    actor: &Actor,
) -> Result<(Suppression, Vec<AlertId>)> {
    let mut tx = store.client.get_mut().transaction()?;
    let now = Time::now();
    let tid = tenant.map(|t| t.id);
    let kind = new.kind.map(AlertKind::as_str);
    let id: i64 = tx
        .query_one(
            "INSERT INTO suppressions (tenant_id, kind, source, endpoint, reason, owner, created, expires)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[
                &tid,
                &kind,
                &new.source,
                &new.endpoint,
                &new.reason,
                &actor.to_string(),
                &now.0,
                &new.expires.map(|t| t.0),
            ],
        )?
        .try_get(0)?;
    let matching: Vec<(i64, i64)> = tx
        .query(
            "SELECT a.id, a.tenant_id FROM alerts a
             JOIN endpoints e ON e.id = a.endpoint_id AND e.tenant_id = a.tenant_id
             WHERE ($1::bigint IS NULL OR a.tenant_id = $1) AND ($2::text IS NULL OR a.kind = $2)
               AND lower(a.source) = lower($3) AND ($4::text IS NULL OR lower(e.name) = lower($4))
               AND a.status IN ('new', 'acknowledged', 'investigating')
             ORDER BY a.id",
            &[&tid, &kind, &new.source, &new.endpoint],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_>>()?;
    let mut closed = Vec::with_capacity(matching.len());
    for (alert, owner) in matching {
        let alert = AlertId::new(alert);
        suppress(&mut tx, owner, alert, id, new.reason, actor, now)?;
        closed.push(alert);
    }
    let (suppression, audit) =
        crate::rows::added_suppression(id, tenant, new, actor, now, closed.len());
    audit_tx(&mut tx, actor, tid, "suppress.add", &audit)?;
    tx.commit()?;
    Ok((suppression, closed))
}

/// Holds an alert as suppressed by suppression `by`.
fn suppress(
    tx: &mut Transaction<'_>,
    tenant: i64,
    alert: AlertId,
    by: i64,
    reason: &str,
    actor: &Actor,
    now: Time,
) -> Result<()> {
    let why = crate::rows::suppressed_because(by, reason);
    tx.execute(
        "UPDATE alerts SET status = 'suppressed', status_reason = $1, suppressed_by = $2, updated = $3
         WHERE tenant_id = $4 AND id = $5",
        &[&why, &by, &now.0, &tenant, &alert.get()],
    )?;
    record_change(
        tx,
        tenant,
        alert,
        actor,
        AlertAction::Status,
        Some(AlertStatus::Suppressed.as_str()),
        Some(&why),
    )
}

/// Holds a new alert as suppressed when a live suppression matches it.
fn suppress_if_matched(
    tx: &mut Transaction<'_>,
    tenant: i64,
    alert: AlertId,
    f: &Finding,
    now: Time,
) -> Result<()> {
    let found = tx.query_opt(
        "SELECT id, reason FROM suppressions
         WHERE ended IS NULL AND (expires IS NULL OR expires > $1)
           AND (tenant_id IS NULL OR tenant_id = $2) AND (kind IS NULL OR kind = $3)
           AND lower(source) = lower($4) AND (endpoint IS NULL OR lower(endpoint) = lower($5))
         ORDER BY id LIMIT 1",
        &[&now.0, &tenant, &f.kind.as_str(), &f.source, &f.endpoint],
    )?;
    if let Some(r) = found {
        let (by, reason): (i64, String) = (r.try_get(0)?, r.try_get(1)?);
        suppress(tx, tenant, alert, by, &reason, &Actor::Pipeline, now)?;
    }
    Ok(())
}

pub(super) fn suppressions(store: &PgStore, scope: &Scope) -> Result<Vec<Suppression>> {
    let rows = store.db().query(
        "SELECT id, tenant_id, kind, source, endpoint, reason, owner, created, expires
         FROM suppressions WHERE ended IS NULL AND (expires IS NULL OR expires > $1) ORDER BY id",
        &[&Time::now().0],
    )?;
    let mut out = Vec::new();
    for r in &rows {
        let Some(tenant) = entry_tenant(scope, r.try_get(1)?) else {
            continue;
        };
        out.push(Suppression {
            id: r.try_get(0)?,
            tenant,
            kind: r.try_get::<_, Option<&str>>(2)?.map(parse).transpose()?,
            source: r.try_get(3)?,
            endpoint: r.try_get(4)?,
            reason: r.try_get(5)?,
            owner: r.try_get(6)?,
            created: Time(r.try_get(7)?),
            expires: r.try_get::<_, Option<i64>>(8)?.map(Time),
        });
    }
    Ok(out)
}

pub(super) fn remove_suppression(
    store: &mut PgStore,
    scope: &Scope,
    id: i64,
    actor: &Actor,
) -> Result<Vec<AlertId>> {
    let mut tx = store.client.get_mut().transaction()?;
    let owner: Option<i64> = tx
        .query_opt(
            "SELECT tenant_id FROM suppressions WHERE id = $1 AND ended IS NULL",
            &[&id],
        )?
        .ok_or(StoreError::NoSuchSuppression(id))?
        .try_get(0)?;
    if owner.is_some_and(|t| !scope.contains(t)) {
        return Err(StoreError::OutOfScope(format!("suppression {id}")));
    }
    let back = end(&mut tx, id, &format!("suppression {id} removed by {actor}"))?;
    audit_tx(
        &mut tx,
        actor,
        owner,
        "suppress.remove",
        &format!("suppression {id}; {} alerts resurfaced", back.len()),
    )?;
    tx.commit()?;
    Ok(back)
}

pub(super) fn expire_suppressions(store: &mut PgStore, now: Time) -> Result<Vec<AlertId>> {
    let mut tx = store.client.get_mut().transaction()?;
    let expired: Vec<(i64, Option<i64>)> = tx
        .query(
            "SELECT id, tenant_id FROM suppressions WHERE ended IS NULL AND expires <= $1 FOR UPDATE",
            &[&now.0],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_>>()?;
    if expired.is_empty() {
        return Ok(Vec::new());
    }
    let mut back = Vec::new();
    for (id, owner) in expired {
        let alerts = end(&mut tx, id, &format!("suppression {id} expired"))?;
        audit_tx(
            &mut tx,
            &Actor::Pipeline,
            owner,
            "suppress.expire",
            &format!("suppression {id}; {} alerts resurfaced", alerts.len()),
        )?;
        back.extend(alerts);
    }
    tx.commit()?;
    Ok(back)
}

/// Ends suppression `id`: the alerts it still holds resurface.
fn end(tx: &mut Transaction<'_>, id: i64, why: &str) -> Result<Vec<AlertId>> {
    let now = Time::now();
    tx.execute(
        "UPDATE suppressions SET ended = $1 WHERE id = $2",
        &[&now.0, &id],
    )?;
    let held: Vec<(i64, i64)> = tx
        .query(
            "SELECT id, tenant_id FROM alerts WHERE suppressed_by = $1 AND status = 'suppressed' ORDER BY id",
            &[&id],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_>>()?;
    let mut back = Vec::with_capacity(held.len());
    for (alert, tenant) in held {
        let alert = AlertId::new(alert);
        resurface(tx, tenant, alert, why, now)?;
        back.push(alert);
    }
    Ok(back)
}

pub(super) fn upsert_campaign(
    store: &mut PgStore,
    kind: AlertKind,
    source: &str,
    title: &str,
    members: &[AlertId],
    actor: &Actor,
) -> Result<CampaignUpserted> {
    let mut tx = store.client.get_mut().transaction()?;
    let now = Time::now();
    let inserted = tx.query_opt(
        "INSERT INTO campaigns (kind, source, title, first_seen, last_seen, created, updated) VALUES ($1, $2, $3, 0, 0, $4, $4)
         ON CONFLICT (kind, source) DO NOTHING RETURNING id",
        &[&kind.as_str(), &source, &title, &now.0],
    )?;
    let (id, new): (i64, bool) = match inserted {
        Some(r) => (r.try_get(0)?, true),
        None => (
            tx.query_one(
                "SELECT id FROM campaigns WHERE kind = $1 AND source = $2",
                &[&kind.as_str(), &source],
            )?
            .try_get(0)?,
            false,
        ),
    };
    let mut resurfaced = Vec::new();
    for m in members {
        let joined = tx.query_opt(
            "UPDATE alerts SET campaign_alert = $1
             WHERE id = $2 AND kind = $3 AND source = $4 AND campaign_alert IS DISTINCT FROM $1
             RETURNING tenant_id, status",
            &[&id, &m.get(), &kind.as_str(), &source],
        )?;
        // A campaign raised now is news the dismissal could not weigh; an
        // alert joining one that already stood (and showed on it) is not.
        if let Some(r) = joined {
            let (tenant, status): (i64, &str) = (r.try_get(0)?, r.try_get(1)?);
            if new && matches!(status, "false-positive" | "suppressed") {
                let why = format!(
                    "joined campaign {id}: the same {} {source} in other tenants",
                    kind.as_str()
                );
                resurface(&mut tx, tenant, *m, &why, now)?;
                resurfaced.push(*m);
            }
        }
    }
    tx.execute(
        "UPDATE campaigns SET title = $1, updated = $2,
            first_seen = (SELECT min(first_seen) FROM alerts WHERE campaign_alert = $3),
            last_seen = (SELECT max(last_seen) FROM alerts WHERE campaign_alert = $3)
         WHERE id = $3",
        &[&title, &now.0, &id],
    )?;
    if new {
        audit_tx(
            &mut tx,
            actor,
            None,
            "campaign.raise",
            &format!(
                "{} {source}: {} member alerts",
                kind.as_str(),
                members.len()
            ),
        )?;
    }
    tx.commit()?;
    Ok(CampaignUpserted {
        id,
        new,
        resurfaced,
    })
}

pub(super) fn campaigns(store: &PgStore, scope: &Scope) -> Result<Vec<CampaignAlert>> {
    let mut db = store.db();
    let rows = db.query(
        "SELECT id, kind, source, title, first_seen, last_seen FROM campaigns ORDER BY id",
        &[],
    )?;
    let mut out = Vec::new();
    for r in &rows {
        let c = CampaignColumns {
            id: r.try_get(0)?,
            kind: r.try_get(1)?,
            source: r.try_get(2)?,
            title: r.try_get(3)?,
            first_seen: r.try_get(4)?,
            last_seen: r.try_get(5)?,
        };
        let members: Vec<CampaignMember> = db
            .query(
                "SELECT id, tenant_id, status, first_seen, last_seen FROM alerts
                 WHERE campaign_alert = $1 ORDER BY id",
                &[&c.id],
            )?
            .iter()
            .map(|m| {
                Ok((
                    m.try_get(0)?,
                    m.try_get(1)?,
                    m.try_get(2)?,
                    m.try_get(3)?,
                    m.try_get(4)?,
                ))
            })
            .collect::<Result<_>>()?;
        out.extend(campaign_for(scope, c, &members)?);
    }
    Ok(out)
}

/// Severity of a notification target's floor, as stored.
pub(super) fn severity_of(rank: Option<i64>) -> Option<Severity> {
    rank.map(severity_from_rank)
}
