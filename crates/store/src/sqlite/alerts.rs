//! Findings into alerts: one SQL path for live matching and retro-hunts,
//! so both deduplicate alike.

use super::*;
use crate::rows::{alert_action, evidence_event, resurface_reason};

/// Records findings inside a transaction; shared by live batches and
/// retro-hunts so that both keep the same deduplication.
pub(super) fn record_findings_tx(
    tx: &Transaction,
    endpoints: &mut IdCache,
    tenant: i64,
    findings: &[(Finding, Option<EventRef>)],
    mode: FindingMode,
    now: Time,
) -> Result<FindingsOutcome> {
    let mut outcome = FindingsOutcome::default();
    let mut touched: HashSet<i64> = HashSet::new();
    let mut new_alerts: HashSet<i64> = HashSet::new();
    for (f, at) in findings {
        let endpoint = endpoint_id(tx, endpoints, tenant, &f.endpoint, f.first_seen)?;
        let mut evidence = serde_json::to_value(&f.evidence).map_err(json_err)?;
        if let Some(at) = at {
            evidence["event"] = serde_json::to_value(at).map_err(json_err)?;
        }
        let evidence = evidence.to_string();
        let existing: Option<i64> = tx
            .prepare_cached("SELECT id FROM alerts WHERE tenant_id = ? AND endpoint_id = ? AND kind = ? AND source = ?")?
            .query_row(params![tenant, endpoint, f.kind.as_str(), f.source], |r| r.get(0))
            .optional()?;
        let alert_id = match existing {
            // A re-analysis carries the newest view of the alert: intel
            // attached since, a higher severity.
            Some(id) if mode != FindingMode::Add => {
                let (severity, status): (i64, String) = tx
                    .prepare_cached("SELECT severity, status FROM alerts WHERE id = ?")?
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
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
                let changed = tx
                    .prepare_cached(
                        "UPDATE alerts SET title = ?2, severity = max(severity, ?3), campaign = coalesce(?4, campaign), updated = ?5
                         WHERE id = ?1 AND (title != ?2 OR severity < ?3 OR (?4 IS NOT NULL AND campaign IS NOT ?4))",
                    )?
                    .execute(params![id, f.title, severity_rank(f.severity), f.campaign, now.0])?;
                if changed > 0 {
                    touched.insert(id);
                }
                id
            }
            Some(id) => id,
            None => {
                tx.prepare_cached(
                    "INSERT INTO alerts (tenant_id, endpoint_id, kind, source, title, severity, status, campaign,
                        first_seen, last_seen, count, evidence, created, updated)
                     VALUES (?, ?, ?, ?, ?, ?, 'new', ?, ?, ?, 0, ?, ?, ?)",
                )?
                .execute(params![
                    tenant,
                    endpoint,
                    f.kind.as_str(),
                    f.source,
                    f.title,
                    severity_rank(f.severity),
                    f.campaign,
                    f.first_seen.0,
                    f.last_seen.0,
                    evidence,
                    now.0,
                    now.0
                ])?;
                let id = tx.last_insert_rowid();
                super::suppressions::suppress_if_matched(tx, tenant, AlertId::new(id), f, now)?;
                new_alerts.insert(id);
                id
            }
        };
        let sql = match mode {
            FindingMode::Add => {
                "INSERT INTO findings (alert_id, key, first_seen, last_seen, count, evidence) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (alert_id, key) DO UPDATE SET
                    first_seen = min(first_seen, excluded.first_seen),
                    last_seen = max(last_seen, excluded.last_seen),
                    count = count + excluded.count,
                    evidence = iif(excluded.last_seen >= last_seen, excluded.evidence, evidence)"
            }
            FindingMode::Set | FindingMode::NewIntel => {
                "INSERT INTO findings (alert_id, key, first_seen, last_seen, count, evidence) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (alert_id, key) DO UPDATE SET
                    first_seen = excluded.first_seen,
                    last_seen = excluded.last_seen,
                    count = excluded.count,
                    evidence = excluded.evidence
                 WHERE first_seen != excluded.first_seen OR last_seen != excluded.last_seen
                    OR count != excluded.count OR evidence != excluded.evidence"
            }
        };
        let changed = tx.prepare_cached(sql)?.execute(params![
            alert_id,
            f.key.as_str(),
            f.first_seen.0,
            f.last_seen.0,
            f.count as i64,
            evidence
        ])?;
        if changed > 0 {
            touched.insert(alert_id);
        }
    }
    for id in &touched {
        tx.prepare_cached(
            "UPDATE alerts SET
                count = (SELECT sum(count) FROM findings WHERE alert_id = ?1),
                first_seen = (SELECT min(first_seen) FROM findings WHERE alert_id = ?1),
                last_seen = (SELECT max(last_seen) FROM findings WHERE alert_id = ?1),
                evidence = (SELECT evidence FROM findings WHERE alert_id = ?1 ORDER BY last_seen DESC, key DESC LIMIT 1),
                updated = ?2
             WHERE id = ?1",
        )?
        .execute(params![id, now.0])?;
    }
    outcome.new_alerts = new_alerts.len() as u64;
    outcome.updated_alerts = touched.difference(&new_alerts).count() as u64;
    Ok(outcome)
}

/// The columns [`alert_row`] reads, in its order, and their tables;
/// `alerts a` joined to its endpoint `e`.
pub(super) const ALERT_SELECT: &str =
    "SELECT a.id, e.name, a.kind, a.source, a.title, a.severity, a.status, a.campaign,
        a.first_seen, a.last_seen, a.count, a.evidence, a.created, a.updated, a.campaign_alert,
        a.status_reason, a.assignee, a.tenant_id
    FROM alerts a JOIN endpoints e ON e.id = a.endpoint_id AND e.tenant_id = a.tenant_id";

pub(super) fn alert_row(tenant: &TenantName, r: &rusqlite::Row) -> rusqlite::Result<Alert> {
    let kind: String = r.get(2)?;
    let status: String = r.get(6)?;
    let evidence: String = r.get(11)?;
    Ok(Alert {
        id: AlertId::new(r.get(0)?),
        tenant: tenant.clone(),
        endpoint: r.get(1)?,
        kind: parse(&kind).map_err(|e| bad_column(2, e))?,
        source: r.get(3)?,
        title: r.get(4)?,
        severity: severity_from_rank(r.get(5)?),
        status: parse(&status).map_err(|e| bad_column(6, e))?,
        campaign: r.get(7)?,
        first_seen: Time(r.get(8)?),
        last_seen: Time(r.get(9)?),
        count: r.get::<_, i64>(10)? as u64,
        event: evidence_event(&evidence),
        evidence: serde_json::from_str::<Evidence>(&evidence)
            .map_err(|e| bad_column(11, json_err(e)))?,
        created: Time(r.get(12)?),
        updated: Time(r.get(13)?),
        campaign_alert: r.get(14)?,
        status_reason: r.get(15)?,
        assignee: r.get(16)?,
    })
}
pub(super) fn alerts_page(
    store: &SqliteStore,
    scope: &Scope,
    page: &AlertPage<'_>,
) -> Result<Vec<Alert>> {
    if scope.members().is_empty() || page.limit == 0 {
        return Ok(Vec::new());
    }
    // The scope's ids are numbers the store made: safe to write inline,
    // and one statement per distinct scope stays in the cache. One tenant
    // reads its own queue index in order; several are filtered (`+`
    // keeps SQLite off the tenant index, whose per-tenant runs it would
    // then have to sort whole) while the global queue index is read in
    // order.
    let ids: Vec<String> = scope.members().iter().map(|t| t.id.to_string()).collect();
    let tenants = match ids.as_slice() {
        [one] => format!("a.tenant_id = {one}"),
        many => format!("+a.tenant_id IN ({})", many.join(",")),
    };
    let (after, order) = match page.order {
        AlertOrder::Severity => (
            "(?8 IS NULL OR a.severity < ?8
                OR (a.severity = ?8 AND (a.first_seen > ?9 OR (a.first_seen = ?9 AND a.id > ?10))))",
            "a.severity DESC, a.first_seen, a.id",
        ),
        AlertOrder::Newest => (
            "(?8 IS NULL OR a.last_seen < ?9 OR (a.last_seen = ?9 AND a.id > ?10))",
            "a.last_seen DESC, a.id",
        ),
    };
    let sql = format!(
        "{ALERT_SELECT}
         WHERE {tenants}
           AND (?1 IS NULL OR a.kind = ?1) AND (?2 IS NULL OR a.status = ?2) AND (?3 IS NULL OR e.name = ?3)
           AND (?4 IS NULL OR a.severity >= ?4) AND (?5 IS NULL OR a.last_seen >= ?5)
           AND (?6 IS NULL OR instr(lower(a.title), ?6) OR instr(lower(a.source), ?6) OR instr(lower(e.name), ?6))
           AND (?7 IS NULL OR a.assignee = ?7 COLLATE NOCASE)
           AND {after}
         ORDER BY {order}
         LIMIT ?11"
    );
    let mut stmt = store.conn.prepare_cached(&sql)?;
    let (sev, first, id) = match page.after {
        Some((s, f, i)) => (Some(severity_rank(s)), Some(f.0), Some(i.get())),
        None => (None, None, None),
    };
    let text = page.text.map(str::to_ascii_lowercase);
    let params = params![
        page.filter.kind.map(AlertKind::as_str),
        page.filter.status.map(AlertStatus::as_str),
        page.filter.endpoint,
        page.min_severity.map(severity_rank),
        page.since.map(|t| t.0),
        text,
        page.assignee,
        sev,
        first,
        id,
        page.limit as i64
    ];
    let mut out = Vec::new();
    let mut rows = stmt.query(params)?;
    while let Some(r) = rows.next()? {
        let tenant_id: i64 = r.get(17)?;
        let Some(tenant) = scope.members().iter().find(|t| t.id == tenant_id) else {
            continue;
        };
        out.push(alert_row(&tenant.name, r)?);
    }
    Ok(out)
}

pub(super) fn alerts(
    store: &SqliteStore,
    scope: &Scope,
    filter: &AlertFilter,
) -> Result<Vec<Alert>> {
    let mut out = Vec::new();
    let mut stmt = store.conn.prepare_cached(&format!(
        "{ALERT_SELECT}
         WHERE a.tenant_id = ?1 AND (?2 IS NULL OR a.kind = ?2) AND (?3 IS NULL OR a.status = ?3) AND (?4 IS NULL OR e.name = ?4)
         ORDER BY a.severity DESC, a.first_seen, a.id"
    ))?;
    for tenant in scope.members() {
        let params = params![
            tenant.id,
            filter.kind.map(AlertKind::as_str),
            filter.status.map(AlertStatus::as_str),
            filter.endpoint
        ];
        for alert in stmt.query_map(params, |r| alert_row(&tenant.name, r))? {
            out.push(alert?);
        }
    }
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.first_seen.cmp(&b.first_seen))
            .then(a.id.cmp(&b.id))
    });
    if let Some(limit) = filter.limit {
        out.truncate(limit);
    }
    Ok(out)
}

pub(super) fn alert_counts(store: &SqliteStore, scope: &Scope) -> Result<Vec<AlertCount>> {
    let mut stmt = store.conn.prepare_cached(
        "SELECT kind, severity, status, count(*) FROM alerts WHERE tenant_id = ?
         GROUP BY kind, severity, status",
    )?;
    let mut out = Vec::new();
    for tenant in scope.members() {
        let rows = stmt.query_map([tenant.id], |r| {
            let kind: String = r.get(0)?;
            let status: String = r.get(2)?;
            Ok(AlertCount {
                tenant: tenant.name.clone(),
                kind: parse(&kind).map_err(|e| bad_column(0, e))?,
                severity: severity_from_rank(r.get(1)?),
                status: parse(&status).map_err(|e| bad_column(2, e))?,
                count: r.get::<_, i64>(3)? as u64,
            })
        })?;
        for row in rows {
            out.push(row?);
        }
    }
    Ok(out)
}

pub(super) fn alert(store: &SqliteStore, scope: &Scope, id: AlertId) -> Result<Option<Alert>> {
    let Some(tenant) = owner(&store.conn, scope, id)? else {
        return Ok(None);
    };
    let mut stmt = store.conn.prepare_cached(&format!(
        "{ALERT_SELECT} WHERE a.tenant_id = ?1 AND a.id = ?2"
    ))?;
    Ok(stmt
        .query_row(params![tenant.id, id.get()], |r| alert_row(&tenant.name, r))
        .optional()?)
}

/// Brings a dismissed alert back to `new`, saying why in its history and
/// the audit log.
pub(super) fn resurface(
    tx: &Transaction,
    tenant: i64,
    id: AlertId,
    why: &str,
    now: Time,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE alerts SET status = 'new', status_reason = NULL, suppressed_by = NULL, updated = ?
         WHERE id = ?",
    )?
    .execute(params![now.0, id.get()])?;
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

/// The tenant owning alert `id`, if `scope` holds it.
fn owner<'s>(conn: &Connection, scope: &'s Scope, id: AlertId) -> Result<Option<&'s Tenant>> {
    let owner: Option<i64> = conn
        .query_row(
            "SELECT tenant_id FROM alerts WHERE id = ?",
            [id.get()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(owner.and_then(|t| scope.members().iter().find(|m| m.id == t)))
}

/// The id of the tenant owning alert `id`; out of scope when `scope`
/// does not hold it (or there is none).
fn owner_in(conn: &Connection, scope: &Scope, id: AlertId) -> Result<i64> {
    owner(conn, scope, id)?
        .map(|t| t.id)
        .ok_or_else(|| StoreError::OutOfScope(format!("alert {id}")))
}

/// Appends to an alert's history.
pub(super) fn record_change(
    tx: &Transaction,
    tenant: i64,
    id: AlertId,
    actor: &Actor,
    action: AlertAction,
    value: Option<&str>,
    note: Option<&str>,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO alert_history (tenant_id, alert_id, time, actor, action, value, note)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        tenant,
        id.get(),
        Time::now().0,
        actor.to_string(),
        action.as_str(),
        value,
        note
    ])?;
    Ok(())
}

pub(super) fn set_alert_status(
    store: &mut SqliteStore,
    scope: &Scope,
    id: AlertId,
    status: AlertStatus,
    reason: Option<&str>,
    actor: &Actor,
) -> Result<()> {
    let tx = store.conn.transaction()?;
    let t = owner_in(&tx, scope, id)?;
    tx.execute(
        "UPDATE alerts SET status = ?, status_reason = ?, updated = ? WHERE id = ?",
        params![status.as_str(), reason, Time::now().0, id.get()],
    )?;
    record_change(
        &tx,
        t,
        id,
        actor,
        AlertAction::Status,
        Some(status.as_str()),
        reason,
    )?;
    let because = reason.map(|r| format!(": {r}")).unwrap_or_default();
    audit_tx(
        &tx,
        actor,
        Some(t),
        "alert.status",
        &format!("alert {id} -> {status}{because}"),
    )?;
    commit(tx, &store.dir)?;
    Ok(())
}

pub(super) fn assign_alert(
    store: &mut SqliteStore,
    scope: &Scope,
    id: AlertId,
    assignee: Option<&str>,
    actor: &Actor,
) -> Result<()> {
    let tx = store.conn.transaction()?;
    let t = owner_in(&tx, scope, id)?;
    tx.execute(
        "UPDATE alerts SET assignee = ?, updated = ? WHERE id = ?",
        params![assignee, Time::now().0, id.get()],
    )?;
    record_change(&tx, t, id, actor, AlertAction::Assign, assignee, None)?;
    let to = assignee.unwrap_or("nobody");
    audit_tx(
        &tx,
        actor,
        Some(t),
        "alert.assign",
        &format!("alert {id} -> {to}"),
    )?;
    commit(tx, &store.dir)?;
    Ok(())
}

pub(super) fn comment_alert(
    store: &mut SqliteStore,
    scope: &Scope,
    id: AlertId,
    text: &str,
    actor: &Actor,
) -> Result<()> {
    let tx = store.conn.transaction()?;
    let t = owner_in(&tx, scope, id)?;
    tx.execute(
        "UPDATE alerts SET updated = ? WHERE id = ?",
        params![Time::now().0, id.get()],
    )?;
    record_change(&tx, t, id, actor, AlertAction::Comment, None, Some(text))?;
    audit_tx(&tx, actor, Some(t), "alert.comment", &format!("alert {id}"))?;
    commit(tx, &store.dir)?;
    Ok(())
}

pub(super) fn alert_history(
    store: &SqliteStore,
    scope: &Scope,
    id: AlertId,
) -> Result<Vec<AlertChange>> {
    let t = owner_in(&store.conn, scope, id)?;
    let mut stmt = store.conn.prepare_cached(
        "SELECT time, actor, action, value, note FROM alert_history
         WHERE tenant_id = ? AND alert_id = ? ORDER BY id",
    )?;
    let rows = stmt.query_map(params![t, id.get()], |r| {
        let action: String = r.get(2)?;
        Ok(AlertChange {
            time: Time(r.get(0)?),
            actor: r.get(1)?,
            action: alert_action(&action).map_err(|e| bad_column(2, e))?,
            value: r.get(3)?,
            note: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn rename_alert_source(
    store: &mut SqliteStore,
    tenant: &Tenant,
    id: AlertId,
    source: &str,
    actor: &Actor,
) -> Result<()> {
    let tx = store.conn.transaction()?;
    let old: Option<String> = tx
        .query_row(
            "SELECT source FROM alerts WHERE id = ? AND tenant_id = ?",
            params![id.get(), tenant.id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(old) = old else {
        return Err(StoreError::OutOfScope(format!("alert {id}")));
    };
    tx.execute(
        "UPDATE alerts SET source = ?, updated = ? WHERE id = ?",
        params![source, Time::now().0, id.get()],
    )?;
    record_change(
        &tx,
        tenant.id,
        id,
        actor,
        AlertAction::Source,
        Some(source),
        Some(&old),
    )?;
    audit_tx(
        &tx,
        actor,
        Some(tenant.id),
        "alert.source",
        &format!("alert {id} source {old} -> {source}"),
    )?;
    commit(tx, &store.dir)?;
    Ok(())
}

impl SqliteStore {
    /// Records findings, and a stream state when given, in one transaction.
    pub(super) fn record_findings_with(
        &mut self,
        tenant: &Tenant,
        findings: &[(Finding, Option<EventRef>)],
        mode: FindingMode,
        state: Option<(&str, &[u8])>,
    ) -> Result<FindingsOutcome> {
        let tx = self.conn.transaction()?;
        let result = record_findings_tx(
            &tx,
            &mut self.endpoint_ids,
            tenant.id,
            findings,
            mode,
            Time::now(),
        );
        match result {
            Ok(outcome) => {
                if outcome.new_alerts + outcome.updated_alerts > 0 {
                    audit_tx(
                        &tx,
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
                    set_stream_state_tx(&tx, tenant.id, name, bytes)?;
                }
                commit(tx, &self.dir)?;
                Ok(outcome)
            }
            Err(e) => {
                drop(tx);
                self.forget_cached_ids();
                Err(e)
            }
        }
    }
}
