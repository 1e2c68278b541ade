//! Campaigns: one detection in several tenants, raised once for the MSSP
//! and marking its member alerts.

use super::*;
use crate::rows::{CampaignColumns, campaign_for};

pub(super) fn upsert_campaign(
    store: &mut SqliteStore,
    kind: AlertKind,
    source: &str,
    title: &str,
    members: &[AlertId],
    actor: &Actor,
) -> Result<CampaignUpserted> {
    let tx = store.conn.transaction()?;
    let now = Time::now();
    let existing: Option<i64> = tx
        .query_row(
            "SELECT id FROM campaigns WHERE kind = ? AND source = ?",
            params![kind.as_str(), source],
            |r| r.get(0),
        )
        .optional()?;
    let (id, new) = match existing {
        Some(id) => (id, false),
        None => {
            tx.execute(
                "INSERT INTO campaigns (kind, source, title, first_seen, last_seen, created, updated) VALUES (?, ?, ?, 0, 0, ?, ?)",
                params![kind.as_str(), source, title, now.0, now.0],
            )?;
            (tx.last_insert_rowid(), true)
        }
    };
    let mut resurfaced = Vec::new();
    for m in members {
        let joined: Option<(i64, String)> = tx
            .query_row(
                "UPDATE alerts SET campaign_alert = ?1
                 WHERE id = ?2 AND kind = ?3 AND source = ?4 AND campaign_alert IS NOT ?1
                 RETURNING tenant_id, status",
                params![id, m.get(), kind.as_str(), source],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        // A campaign raised now is news the dismissal could not weigh; an
        // alert joining one that already stood (and showed on it) is not.
        if let Some((tenant, status)) = joined
            && new
            && matches!(status.as_str(), "false-positive" | "suppressed")
        {
            let why = format!(
                "joined campaign {id}: the same {} {source} in other tenants",
                kind.as_str()
            );
            super::alerts::resurface(&tx, tenant, *m, &why, now)?;
            resurfaced.push(*m);
        }
    }
    tx.execute(
        "UPDATE campaigns SET title = ?1, updated = ?2,
            first_seen = (SELECT min(first_seen) FROM alerts WHERE campaign_alert = ?3),
            last_seen = (SELECT max(last_seen) FROM alerts WHERE campaign_alert = ?3)
         WHERE id = ?3",
        params![title, now.0, id],
    )?;
    if new {
        audit_tx(
            &tx,
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
    commit(tx, &store.dir)?;
    Ok(CampaignUpserted {
        id,
        new,
        resurfaced,
    })
}

pub(super) fn campaigns(store: &SqliteStore, scope: &Scope) -> Result<Vec<CampaignAlert>> {
    let mut stmt = store.conn.prepare(
        "SELECT id, kind, source, title, first_seen, last_seen FROM campaigns ORDER BY id",
    )?;
    let rows: Vec<(i64, String, String, String, i64, i64)> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<std::result::Result<_, _>>()?;
    let mut members = store.conn.prepare(
        "SELECT id, tenant_id, status, first_seen, last_seen FROM alerts
         WHERE campaign_alert = ? ORDER BY id",
    )?;
    let mut out = Vec::new();
    for (id, kind, source, title, first, last) in rows {
        let list: Vec<(i64, i64, String, i64, i64)> = members
            .query_map([id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<std::result::Result<_, _>>()?;
        let c = CampaignColumns {
            id,
            kind,
            source,
            title,
            first_seen: first,
            last_seen: last,
        };
        out.extend(campaign_for(scope, c, &list)?);
    }
    Ok(out)
}
