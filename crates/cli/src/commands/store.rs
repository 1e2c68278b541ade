//! `turncoat migrate` and `turncoat copy`: bringing a store's schema up
//! to date, and moving an embedded installation into a database.

use anyhow::Context as _;
use clap::Parser;
use turncoat_store::{CopyCheck, PgStore, StoreLocation};

use super::Context;
use crate::output::{Exit, OutputFormat, Table, print_json};

#[derive(Parser, Debug)]
pub(crate) struct MigrateArgs {
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

pub(crate) fn migrate(args: MigrateArgs, ctx: &Context) -> anyhow::Result<Exit> {
    let version = ctx
        .migrate()
        .with_context(|| format!("migrating store {}", ctx.store))?;
    match args.format {
        OutputFormat::Json => print_json(&serde_json::json!({
            "store": ctx.store.to_string(),
            "schema": version,
        }))?,
        OutputFormat::Table => println!("{}: schema {version}", ctx.store),
    }
    Ok(Exit::Clean)
}

#[derive(Parser, Debug)]
pub(crate) struct CopyArgs {
    /// The embedded store to copy: `sqlite://DIR` or a data directory.
    #[arg(long)]
    from: String,
    /// The database to copy into, empty: `postgres://user@host/db`.
    #[arg(long)]
    to: String,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

/// Copies, then compares the copy with the original through the store
/// interface; exit 1 when any check differs.
pub(crate) fn copy(args: CopyArgs, ctx: &Context) -> anyhow::Result<Exit> {
    let from = StoreLocation::parse(&args.from);
    let to = StoreLocation::parse(&args.to);
    let (Some(dir), StoreLocation::Postgres(url)) = (from.dir(), &to) else {
        anyhow::bail!(
            "copy moves an embedded store (sqlite://DIR) into PostgreSQL (postgres://…); got {from} to {to}"
        );
    };
    // The embedded store is opened as its writer for the copy, so that no
    // ingest changes it meanwhile; it is only read.
    let original = ctx
        .writer_of(&from)
        .with_context(|| format!("opening {from}"))?;
    let mut target = PgStore::connect(url).with_context(|| format!("connecting to {to}"))?;
    let report = target
        .copy_from_dir(dir)
        .with_context(|| format!("copying {from} into {to}"))?;
    let checks = turncoat_store::compare(&*original, &target)?;
    let differ = checks.iter().filter(|c| !c.equal).count();
    match args.format {
        OutputFormat::Json => print_json(&serde_json::json!({
            "from": from.to_string(),
            "to": to.to_string(),
            "copied": report,
            "checks": checks,
        }))?,
        OutputFormat::Table => {
            let mut t = Table::new(&["table", "rows"]);
            for (table, rows) in &report.tables {
                t.row(vec![table.clone(), rows.to_string()]);
            }
            t.row(vec![
                "archive frames".into(),
                format!("{} ({} bytes)", report.archive_frames, report.archive_bytes),
            ]);
            t.print()?;
            print_checks(&checks)?;
        }
    }
    eprintln!(
        "copied {from} into {to}: {} checks, {differ} differ",
        checks.len()
    );
    Ok(if differ == 0 {
        Exit::Clean
    } else {
        Exit::Findings
    })
}

fn print_checks(checks: &[CopyCheck]) -> anyhow::Result<()> {
    let mut t = Table::new(&["check", "compared", "equal"]);
    for c in checks {
        t.row(vec![
            c.what.clone(),
            c.compared.to_string(),
            if c.equal { "yes" } else { "NO" }.into(),
        ]);
    }
    t.print()?;
    Ok(())
}
