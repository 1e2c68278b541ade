//! Findings into alerts: one SQL path for live matching and retro-hunts,
//! so both deduplicate alike.

use super::*;

pub(super) fn severity_rank(s: Severity) -> i64 {
    Severity::ALL.iter().position(|x| *x == s).unwrap_or(2) as i64
}

pub(super) fn severity_from_rank(r: i64) -> Severity {
    Severity::ALL.get(r as usize).copied().unwrap_or_default()
}

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
            Some(id) if mode == FindingMode::Set => {
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
            FindingMode::Set => {
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
        evidence: serde_json::from_str::<Evidence>(&evidence)
            .map_err(|e| bad_column(11, json_err(e)))?,
        created: Time(r.get(12)?),
        updated: Time(r.get(13)?),
        campaign_alert: r.get(14)?,
        status_reason: r.get(15)?,
    })
}
