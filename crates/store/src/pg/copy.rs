//! Moving an embedded installation into a database: every table of the
//! data directory and every committed archive frame, in one transaction
//! (a copy that fails leaves the database as it was), ids kept, so that
//! the archive references in sightings and alerts stay valid.

use std::io::Read;
use std::path::Path;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use rusqlite::types::Value;

use super::PgStore;
use crate::{Result, StoreError};

/// What a copy moved.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopyReport {
    /// Rows per table, in the order copied.
    pub tables: Vec<(String, u64)>,
    pub archive_frames: u64,
    pub archive_bytes: u64,
}

/// Tables whose rows the database keeps in another shape: the SQL that
/// reads them from SQLite in the database's column order.
fn source_query(table: &str, columns: &[String]) -> String {
    match table {
        // Keyed by tenant in the database (Citus): the alert's tenant.
        "findings" => format!(
            "SELECT {} FROM findings f JOIN alerts a ON a.id = f.alert_id",
            columns
                .iter()
                .map(|c| if c == "tenant_id" {
                    "a.tenant_id".to_owned()
                } else {
                    format!("f.{c}")
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => format!("SELECT {} FROM {table}", columns.join(", ")),
    }
}

impl PgStore {
    /// Copies the embedded store in `dir` into this database, which must
    /// hold no tenant, intel or user yet.
    pub fn copy_from_dir(&mut self, dir: &Path) -> Result<CopyReport> {
        let sqlite = rusqlite::Connection::open_with_flags(
            dir.join("turncoat.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let hours: Vec<i64> = sqlite
            .prepare("SELECT DISTINCT hour FROM segments")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        self.ensure_partitions(hours.into_iter())?;
        let mut tx = self.client.get_mut().transaction()?;
        let occupied: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM tenants) OR EXISTS (SELECT 1 FROM indicators) OR EXISTS (SELECT 1 FROM users)",
                &[],
            )?
            .try_get(0)?;
        if occupied {
            return Err(StoreError::Corrupt(
                "the database already holds tenants, intel or users: copy into an empty one".into(),
            ));
        }
        let mut report = CopyReport::default();
        for &table in super::schema::TENANT_OWNED
            .iter()
            .chain(super::schema::SHARED)
        {
            if matches!(table, "archive_frames" | "derived_cache") {
                continue;
            }
            let columns: Vec<(String, String)> = tx
                .query(
                    "SELECT column_name::text, data_type::text FROM information_schema.columns
                     WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                    &[&table],
                )?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_>>()?;
            let names: Vec<String> = columns.iter().map(|c| c.0.clone()).collect();
            let types: Vec<Type> = columns
                .iter()
                .map(|(name, ty)| match ty.as_str() {
                    "bigint" => Ok(Type::INT8),
                    "text" => Ok(Type::TEXT),
                    "bytea" => Ok(Type::BYTEA),
                    "boolean" => Ok(Type::BOOL),
                    other => Err(StoreError::Corrupt(format!(
                        "{table}.{name}: no copy for type {other}"
                    ))),
                })
                .collect::<Result<_>>()?;
            tx.execute(&format!("DELETE FROM {table}"), &[])?;
            let mut stmt = sqlite.prepare(&source_query(table, &names))?;
            let mut rows = stmt.query([])?;
            let sink = tx.copy_in(&format!(
                "COPY {table} ({}) FROM STDIN BINARY",
                names.join(", ")
            ))?;
            let mut writer = BinaryCopyInWriter::new(sink, &types);
            let mut copied = 0u64;
            while let Some(row) = rows.next()? {
                let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(types.len());
                for (i, ty) in types.iter().enumerate() {
                    values.push(column_value(table, &names[i], ty, row.get(i)?)?);
                }
                let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| &**v).collect();
                writer.write(&refs)?;
                copied += 1;
            }
            writer.finish()?;
            // Serial ids go on from the largest copied (a table without a
            // sequence, or with text ids, has none to set).
            if columns.iter().any(|(n, ty)| n == "id" && ty == "bigint") {
                tx.execute(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'), greatest(coalesce(max(id), 0), 1)) FROM {table}"
                    ),
                    &[],
                )?;
            }
            report.tables.push((table.to_owned(), copied));
        }
        copy_archive(&mut tx, &sqlite, dir, &mut report)?;
        tx.commit()?;
        Ok(report)
    }
}

/// One SQLite value as the database column's type.
fn column_value(
    table: &str,
    column: &str,
    ty: &Type,
    value: Value,
) -> Result<Box<dyn ToSql + Sync>> {
    Ok(match (ty, value) {
        (_, Value::Null) => match *ty {
            Type::INT8 => Box::new(None::<i64>),
            Type::BOOL => Box::new(None::<bool>),
            Type::BYTEA => Box::new(None::<Vec<u8>>),
            _ => Box::new(None::<String>),
        },
        (&Type::INT8, Value::Integer(i)) => Box::new(i),
        (&Type::BOOL, Value::Integer(i)) => Box::new(i != 0),
        (&Type::TEXT, Value::Text(s)) => Box::new(s),
        (&Type::BYTEA, Value::Blob(b)) => Box::new(b),
        (_, other) => {
            return Err(StoreError::Corrupt(format!(
                "{table}.{column}: {other:?} does not fit {ty}"
            )));
        }
    })
}

/// Every segment's committed frames, at their offsets.
fn copy_archive(
    tx: &mut postgres::Transaction<'_>,
    sqlite: &rusqlite::Connection,
    dir: &Path,
    report: &mut CopyReport,
) -> Result<()> {
    let segments: Vec<(i64, i64, i64)> = sqlite
        .prepare("SELECT tenant_id, hour, committed_len FROM segments ORDER BY tenant_id, hour")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let sink = tx.copy_in(
        "COPY archive_frames (tenant_id, hour, frame_offset, events, frame) FROM STDIN BINARY",
    )?;
    let mut writer = BinaryCopyInWriter::new(
        sink,
        &[Type::INT8, Type::INT8, Type::INT8, Type::INT8, Type::BYTEA],
    );
    let mut bytes = Vec::new();
    let mut raw = Vec::new();
    for (tenant, hour, committed) in segments {
        let path = dir
            .join("archive")
            .join(tenant.to_string())
            .join(format!("{hour}.zst"));
        let failed = |message: String| StoreError::Archive {
            path: path.display().to_string(),
            message,
        };
        bytes.clear();
        std::fs::File::open(&path)
            .and_then(|f| f.take(committed as u64).read_to_end(&mut bytes))
            .map_err(|e| failed(e.to_string()))?;
        if bytes.len() as i64 != committed {
            return Err(failed(format!(
                "{} bytes where {committed} are committed",
                bytes.len()
            )));
        }
        let mut offset = 0usize;
        while offset < bytes.len() {
            let len = zstd::zstd_safe::find_frame_compressed_size(&bytes[offset..])
                .map_err(|code| failed(format!("frame at {offset}: zstd error {code}")))?;
            let frame = &bytes[offset..offset + len];
            raw.clear();
            crate::archive::decompress_frame(frame, &mut raw)
                .map_err(|e| failed(format!("frame at {offset}: {e}")))?;
            let mut events = 0i64;
            let mut records = crate::codec::Decoder::new(&raw);
            while let Some(record) = records.skip() {
                record.map_err(|e| failed(format!("frame at {offset}: {e}")))?;
                events += 1;
            }
            writer.write(&[&tenant, &hour, &(offset as i64), &events, &frame])?;
            report.archive_frames += 1;
            report.archive_bytes += len as u64;
            offset += len;
        }
    }
    writer.finish()?;
    Ok(())
}

/// One check of a copy against its original: what was compared, how much
/// of it, and whether the two stores agree.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CopyCheck {
    pub what: String,
    pub compared: u64,
    pub equal: bool,
}

/// Archived events read back and compared per tenant, at most.
const SAMPLED_EVENTS: usize = 200;

/// Compares a copy with its original through the [`Store`] trait: every
/// tenant's counts, alerts, ledger, history and archive span; intel,
/// rules, advisories, people and tokens whole; and a sample of archived
/// events read back by the references alerts and sightings hold.
///
/// [`Store`]: crate::Store
pub fn compare(from: &dyn crate::Store, to: &dyn crate::Store) -> Result<Vec<CopyCheck>> {
    let mut checks = Vec::new();
    let mut check = |what: String, compared: usize, equal: bool| {
        checks.push(CopyCheck {
            what,
            compared: compared as u64,
            equal,
        });
    };
    let tenants = from.tenants()?;
    let copied: Vec<_> = to.tenants()?.into_iter().map(|t| t.name).collect();
    check(
        "tenants".into(),
        tenants.len(),
        tenants.iter().map(|t| &t.name).eq(copied.iter()),
    );
    let (a, b) = (from.indicators()?, to.indicators()?);
    check("indicators".into(), a.len(), a == b);
    let (a, b) = (from.advisories()?, to.advisories()?);
    check("advisories".into(), a.len(), a == b);
    let (a, b) = (from.rules()?, to.rules()?);
    check("rules".into(), a.len(), a == b);
    let (a, b) = (from.users()?, to.users()?);
    check("users".into(), a.len(), a == b);
    let (a, b) = (from.tokens()?, to.tokens()?);
    check("tokens".into(), a.len(), a == b);
    let (a, b) = (from.intel_key()?, to.intel_key()?);
    check("intel key".into(), 1, a == b);
    for tenant in &tenants {
        let Some(other) = to.tenant(tenant.name.as_str())? else {
            check(format!("{}: present", tenant.name), 1, false);
            continue;
        };
        let name = &tenant.name;
        let (sa, sb) = (from.stats(tenant)?, to.stats(&other)?);
        check(format!("{name}: counts"), 5, sa == sb);
        let (scope_a, scope_b) = (crate::Scope::tenant(tenant), crate::Scope::tenant(&other));
        let filter = crate::AlertFilter::default();
        let (aa, ab) = (
            from.alerts(&scope_a, &filter)?,
            to.alerts(&scope_b, &filter)?,
        );
        check(format!("{name}: alerts"), aa.len(), aa == ab);
        let mut history = 0;
        let mut history_equal = true;
        for alert in &aa {
            let (ha, hb) = (
                from.alert_history(&scope_a, alert.id)?,
                to.alert_history(&scope_b, alert.id)?,
            );
            history += ha.len();
            history_equal &= ha == hb;
        }
        check(format!("{name}: alert history"), history, history_equal);
        let (la, lb) = (from.ledger(tenant, None)?, to.ledger(&other, None)?);
        check(format!("{name}: ledger"), la.len(), la == lb);
        let (fa, fb) = (from.feeds(&scope_a)?, to.feeds(&scope_b)?);
        check(format!("{name}: feeds"), fa.len(), fa == fb);
        check(
            format!("{name}: archive span"),
            1,
            from.archive_span(tenant)? == to.archive_span(&other)?,
        );
        let refs: Vec<crate::EventRef> = aa
            .iter()
            .filter_map(|a| a.event)
            .take(SAMPLED_EVENTS)
            .collect();
        let mut equal = true;
        for at in &refs {
            equal &= from.read_event(tenant, *at)? == to.read_event(&other, *at)?;
        }
        check(
            format!("{name}: alerts' events read back"),
            refs.len(),
            equal,
        );
        let mut events = 0u64;
        to.scan_archive(&other, None, crate::Projection::ALL, &mut |_| events += 1)?;
        check(
            format!("{name}: archived events scanned"),
            events as usize,
            events == sa.events,
        );
    }
    let scope = from.all_tenants()?;
    let (a, b) = (
        from.audit_log(&scope, usize::MAX)?,
        to.audit_log(&to.all_tenants()?, usize::MAX)?,
    );
    check("audit log".into(), a.len(), a == b);
    Ok(checks)
}
