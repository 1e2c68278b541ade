//! Findings into alerts, the queue, triage, suppressions and campaigns
//! in PostgreSQL. Deduplication and resurfacing follow the same rules as
//! the embedded store ([`crate::rows`] holds the shared ones).

use std::collections::HashSet;

use postgres::types::ToSql;
use postgres::{GenericClient, Row, Transaction};
use turncoat_core::{
    Actor, AlertId, AlertKind, AlertStatus, Evidence, Finding, Severity, TenantName, Time,
};

use super::batch::{Ids, endpoint_ids, lock_tenant};
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
///
/// The outcome is that of taking the findings one by one (the embedded
/// store's way), but the statements are per call, not per finding: the
/// alerts the findings name are read at once, changed in memory as each
/// finding in turn would change them, and written back at once. Only
/// resurfacing and suppressing, rare and each with its history and audit
/// rows, go one alert at a time.
pub(super) fn record_findings_tx(
    tx: &mut Transaction<'_>,
    ids: &mut Ids,
    tenant: i64,
    findings: &[(Finding, Option<EventRef>)],
    mode: FindingMode,
    now: Time,
) -> Result<FindingsOutcome> {
    let mut outcome = FindingsOutcome::default();
    if findings.is_empty() {
        return Ok(outcome);
    }
    let named: Vec<(&str, Time)> = findings
        .iter()
        .map(|(f, _)| (f.endpoint.as_str(), f.first_seen))
        .collect();
    let endpoints = endpoint_ids(tx, ids, tenant, &named)?;
    let keys = AlertKeys::new(findings, &endpoints);
    let mut alerts = read_alerts(tx, tenant, &keys)?;
    let new_alerts = create_alerts(tx, tenant, findings, &keys, &mut alerts, now)?;
    let mut touched: HashSet<i64> = HashSet::new();
    if mode != FindingMode::Add {
        // A re-analysis carries the newest view of the alert: intel
        // attached since, a higher severity.
        for (i, (f, _)) in findings.iter().enumerate() {
            let Some(a) = alerts[keys.of_finding[i]].as_mut() else {
                continue;
            };
            if a.created_by == Some(i) {
                continue;
            }
            let why = resurface_reason(
                &a.status,
                a.severity,
                f.severity,
                &f.title,
                mode == FindingMode::NewIntel,
            );
            if let Some(why) = why {
                resurface(tx, tenant, AlertId::new(a.id), &why, now)?;
                a.status = AlertStatus::New.as_str().to_owned();
                outcome.resurfaced += 1;
                touched.insert(a.id);
            }
            let rank = severity_rank(f.severity);
            let campaign_differs = f
                .campaign
                .as_ref()
                .is_some_and(|c| a.campaign.as_ref() != Some(c));
            if a.title != f.title || a.severity < rank || campaign_differs {
                a.title.clone_from(&f.title);
                a.severity = a.severity.max(rank);
                if f.campaign.is_some() {
                    a.campaign.clone_from(&f.campaign);
                }
                a.changed = true;
                touched.insert(a.id);
            }
        }
        write_alert_changes(tx, tenant, alerts.iter().flatten(), now)?;
    }
    let alert_of = |i: usize| alerts[keys.of_finding[i]].as_ref().map(|a| a.id);
    touched.extend(write_findings(tx, tenant, findings, &alert_of, mode)?);
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

/// The distinct alerts (endpoint, kind, source) some findings name, and
/// which of them each finding names.
struct AlertKeys<'a> {
    distinct: Vec<(i64, &'a str, &'a str)>,
    /// Index into `distinct`, per finding.
    of_finding: Vec<usize>,
    /// The first finding naming each distinct alert.
    first: Vec<usize>,
}

impl<'a> AlertKeys<'a> {
    fn new(findings: &'a [(Finding, Option<EventRef>)], endpoints: &[i64]) -> AlertKeys<'a> {
        let mut index: std::collections::HashMap<(i64, &str, &str), usize> = Default::default();
        let mut keys = AlertKeys {
            distinct: Vec::new(),
            of_finding: Vec::with_capacity(findings.len()),
            first: Vec::new(),
        };
        for (i, ((f, _), &endpoint)) in findings.iter().zip(endpoints).enumerate() {
            let key = (endpoint, f.kind.as_str(), f.source.as_str());
            let n = *index.entry(key).or_insert_with(|| {
                keys.distinct.push(key);
                keys.first.push(i);
                keys.distinct.len() - 1
            });
            keys.of_finding.push(n);
        }
        keys
    }

    fn column<T>(&self, pick: impl Fn(&(i64, &'a str, &'a str)) -> T) -> Vec<T> {
        self.distinct.iter().map(pick).collect()
    }
}

/// An alert as one call's findings see it: read before the call or
/// created by it, then changed in memory finding by finding.
struct AlertState {
    id: i64,
    severity: i64,
    status: String,
    title: String,
    campaign: Option<String>,
    /// Title, severity or campaign changed: to be written back.
    changed: bool,
    /// The finding that created it in this call, which does not also
    /// update it.
    created_by: Option<usize>,
}

/// The stored alerts of `keys`, in their order (`None`: no such alert).
fn read_alerts(
    tx: &mut Transaction<'_>,
    tenant: i64,
    keys: &AlertKeys<'_>,
) -> Result<Vec<Option<AlertState>>> {
    let rows = tx.query(
        "SELECT n.ord, a.id, a.severity, a.status, a.title, a.campaign
         FROM unnest($2::bigint[], $3::text[], $4::text[]) WITH ORDINALITY AS n(endpoint, kind, source, ord)
         -- One unique-key read per alert asked.
         CROSS JOIN LATERAL (
             SELECT id, severity, status, title, campaign FROM alerts
             WHERE tenant_id = $1 AND endpoint_id = n.endpoint AND kind = n.kind AND source = n.source
         ) a",
        &[
            &tenant,
            &keys.column(|k| k.0),
            &keys.column(|k| k.1),
            &keys.column(|k| k.2),
        ],
    )?;
    let mut alerts: Vec<Option<AlertState>> = keys.distinct.iter().map(|_| None).collect();
    for r in &rows {
        let ord: i64 = r.try_get(0)?;
        alerts[ord as usize - 1] = Some(AlertState {
            id: r.try_get(1)?,
            severity: r.try_get(2)?,
            status: r.try_get(3)?,
            title: r.try_get(4)?,
            campaign: r.try_get(5)?,
            changed: false,
            created_by: None,
        });
    }
    Ok(alerts)
}

/// Creates the alerts no stored one answers, each from the first finding
/// naming it, and holds as suppressed those a live suppression matches.
/// Answers their ids.
fn create_alerts(
    tx: &mut Transaction<'_>,
    tenant: i64,
    findings: &[(Finding, Option<EventRef>)],
    keys: &AlertKeys<'_>,
    alerts: &mut [Option<AlertState>],
    now: Time,
) -> Result<HashSet<i64>> {
    let wanted: Vec<usize> = (0..alerts.len()).filter(|&k| alerts[k].is_none()).collect();
    if wanted.is_empty() {
        return Ok(HashSet::new());
    }
    let first = |k: &usize| &findings[keys.first[*k]];
    let endpoints: Vec<i64> = wanted.iter().map(|&k| keys.distinct[k].0).collect();
    let kinds: Vec<&str> = wanted.iter().map(|k| first(k).0.kind.as_str()).collect();
    let sources: Vec<&str> = wanted.iter().map(|k| first(k).0.source.as_str()).collect();
    let titles: Vec<&str> = wanted.iter().map(|k| first(k).0.title.as_str()).collect();
    let severities: Vec<i64> = wanted
        .iter()
        .map(|k| severity_rank(first(k).0.severity))
        .collect();
    let campaigns: Vec<Option<&str>> = wanted
        .iter()
        .map(|k| first(k).0.campaign.as_deref())
        .collect();
    let first_seen: Vec<i64> = wanted.iter().map(|k| first(k).0.first_seen.0).collect();
    let last_seen: Vec<i64> = wanted.iter().map(|k| first(k).0.last_seen.0).collect();
    let evidence: Vec<String> = wanted
        .iter()
        .map(|k| evidence_text(first(k)))
        .collect::<Result<_>>()?;
    let rows = tx.query(
        "INSERT INTO alerts (tenant_id, endpoint_id, kind, source, title, severity, status, campaign,
            first_seen, last_seen, count, evidence, created, updated)
         SELECT $1, n.endpoint, n.kind, n.source, n.title, n.severity, 'new', n.campaign,
            n.first_seen, n.last_seen, 0, n.evidence, $2, $2
         FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[],
                     $9::bigint[], $10::bigint[], $11::text[])
              WITH ORDINALITY AS n(endpoint, kind, source, title, severity, campaign, first_seen, last_seen, evidence, ord)
         ORDER BY n.ord
         RETURNING id, endpoint_id, kind, source",
        &[
            &tenant,
            &now.0,
            &endpoints,
            &kinds,
            &sources,
            &titles,
            &severities,
            &campaigns,
            &first_seen,
            &last_seen,
            &evidence,
        ],
    )?;
    let position: std::collections::HashMap<(i64, &str, &str), usize> = wanted
        .iter()
        .enumerate()
        .map(|(n, &k)| (keys.distinct[k], n))
        .collect();
    let mut created = HashSet::new();
    let mut ids_in_order = vec![0i64; wanted.len()];
    for r in &rows {
        let (id, endpoint, kind, source): (i64, i64, &str, &str) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
        let n = *position
            .get(&(endpoint, kind, source))
            .ok_or_else(|| StoreError::Corrupt(format!("alert {id} created for no finding")))?;
        ids_in_order[n] = id;
        created.insert(id);
    }
    // The suppression each new alert falls under, if any (the oldest).
    let suppressed = tx.query(
        "SELECT n.ord, s.id, s.reason
         FROM unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS n(kind, source, endpoint, ord)
         CROSS JOIN LATERAL (
             SELECT id, reason FROM suppressions
             WHERE ended IS NULL AND (expires IS NULL OR expires > $1)
               AND (tenant_id IS NULL OR tenant_id = $2) AND (kind IS NULL OR kind = n.kind)
               AND lower(source) = lower(n.source) AND (endpoint IS NULL OR lower(endpoint) = lower(n.endpoint))
             ORDER BY id LIMIT 1
         ) s
         ORDER BY n.ord",
        &[
            &now.0,
            &tenant,
            &kinds,
            &sources,
            &wanted
                .iter()
                .map(|k| first(k).0.endpoint.as_str())
                .collect::<Vec<_>>(),
        ],
    )?;
    let mut status: Vec<&str> = vec![AlertStatus::New.as_str(); wanted.len()];
    for r in &suppressed {
        let (ord, by, reason): (i64, i64, String) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        let n = ord as usize - 1;
        suppress(
            tx,
            tenant,
            AlertId::new(ids_in_order[n]),
            by,
            &reason,
            &Actor::Pipeline,
            now,
        )?;
        status[n] = AlertStatus::Suppressed.as_str();
    }
    for (n, &k) in wanted.iter().enumerate() {
        let (f, _) = first(&k);
        alerts[k] = Some(AlertState {
            id: ids_in_order[n],
            severity: severity_rank(f.severity),
            status: status[n].to_owned(),
            title: f.title.clone(),
            campaign: f.campaign.clone(),
            changed: false,
            created_by: Some(keys.first[k]),
        });
    }
    Ok(created)
}

/// Writes back the title, severity and campaign of alerts changed in
/// memory, in one statement.
fn write_alert_changes<'a>(
    tx: &mut Transaction<'_>,
    tenant: i64,
    alerts: impl Iterator<Item = &'a AlertState>,
    now: Time,
) -> Result<()> {
    let changed: Vec<&AlertState> = alerts.filter(|a| a.changed).collect();
    if changed.is_empty() {
        return Ok(());
    }
    tx.execute(
        "UPDATE alerts a SET title = n.title, severity = n.severity, campaign = n.campaign, updated = $2
         FROM unnest($3::bigint[], $4::text[], $5::bigint[], $6::text[]) AS n(id, title, severity, campaign)
         WHERE a.tenant_id = $1 AND a.id = n.id",
        &[
            &tenant,
            &now.0,
            &changed.iter().map(|a| a.id).collect::<Vec<_>>(),
            &changed.iter().map(|a| a.title.as_str()).collect::<Vec<_>>(),
            &changed.iter().map(|a| a.severity).collect::<Vec<_>>(),
            &changed
                .iter()
                .map(|a| a.campaign.as_deref())
                .collect::<Vec<_>>(),
        ],
    )?;
    Ok(())
}

/// A finding's evidence as stored: its evidence, and the archived event
/// it points to.
fn evidence_text((f, at): &(Finding, Option<EventRef>)) -> Result<String> {
    let mut evidence = serde_json::to_value(&f.evidence).map_err(json_err)?;
    if let Some(at) = at {
        evidence["event"] = serde_json::to_value(at).map_err(json_err)?;
    }
    Ok(evidence.to_string())
}

/// One finding row to write: the findings of a call with the same alert
/// and key folded into one as writing them in turn would.
struct FindingRow<'a> {
    alert: i64,
    key: &'a str,
    first_seen: i64,
    last_seen: i64,
    count: i64,
    evidence: String,
}

/// Writes the findings' rows in one statement; answers the alerts whose
/// findings changed.
fn write_findings(
    tx: &mut Transaction<'_>,
    tenant: i64,
    findings: &[(Finding, Option<EventRef>)],
    alert_of: &dyn Fn(usize) -> Option<i64>,
    mode: FindingMode,
) -> Result<HashSet<i64>> {
    let mut touched = HashSet::new();
    let mut rows: Vec<FindingRow<'_>> = Vec::with_capacity(findings.len());
    let mut at: std::collections::HashMap<(i64, &str), usize> = Default::default();
    for (i, found) in findings.iter().enumerate() {
        let Some(alert) = alert_of(i) else { continue };
        let f = &found.0;
        let row = FindingRow {
            alert,
            key: f.key.as_str(),
            first_seen: f.first_seen.0,
            last_seen: f.last_seen.0,
            count: f.count as i64,
            evidence: evidence_text(found)?,
        };
        let Some(&n) = at.get(&(alert, row.key)) else {
            at.insert((alert, row.key), rows.len());
            rows.push(row);
            continue;
        };
        let seen = &mut rows[n];
        match mode {
            FindingMode::Add => {
                seen.first_seen = seen.first_seen.min(row.first_seen);
                if row.last_seen >= seen.last_seen {
                    seen.evidence = row.evidence;
                }
                seen.last_seen = seen.last_seen.max(row.last_seen);
                seen.count += row.count;
            }
            FindingMode::Set | FindingMode::NewIntel => {
                // The last one is written; one that differed on the way
                // was a change even if the last equals what is stored.
                let same = (seen.first_seen, seen.last_seen, seen.count, &seen.evidence)
                    == (row.first_seen, row.last_seen, row.count, &row.evidence);
                if !same {
                    touched.insert(alert);
                }
                *seen = row;
            }
        }
    }
    let sql = match mode {
        FindingMode::Add => {
            "INSERT INTO findings AS f (tenant_id, alert_id, key, first_seen, last_seen, count, evidence)
             SELECT $1, n.* FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[])
                  AS n(alert_id, key, first_seen, last_seen, count, evidence)
             ON CONFLICT (tenant_id, alert_id, key) DO UPDATE SET
                first_seen = least(f.first_seen, excluded.first_seen),
                last_seen = greatest(f.last_seen, excluded.last_seen),
                count = f.count + excluded.count,
                evidence = CASE WHEN excluded.last_seen >= f.last_seen THEN excluded.evidence ELSE f.evidence END
             RETURNING alert_id"
        }
        FindingMode::Set | FindingMode::NewIntel => {
            "INSERT INTO findings AS f (tenant_id, alert_id, key, first_seen, last_seen, count, evidence)
             SELECT $1, n.* FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[])
                  AS n(alert_id, key, first_seen, last_seen, count, evidence)
             ON CONFLICT (tenant_id, alert_id, key) DO UPDATE SET
                first_seen = excluded.first_seen,
                last_seen = excluded.last_seen,
                count = excluded.count,
                evidence = excluded.evidence
             WHERE f.first_seen <> excluded.first_seen OR f.last_seen <> excluded.last_seen
                OR f.count <> excluded.count OR f.evidence <> excluded.evidence
             RETURNING alert_id"
        }
    };
    let changed = tx.query(
        sql,
        &[
            &tenant,
            &rows.iter().map(|r| r.alert).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.key).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.first_seen).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.last_seen).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.count).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.evidence.as_str()).collect::<Vec<_>>(),
        ],
    )?;
    for r in &changed {
        touched.insert(r.try_get(0)?);
    }
    Ok(touched)
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
