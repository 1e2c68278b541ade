//! `turncoat report`: one tenant's incident report for the customer, as a
//! self-contained HTML page or a PDF.

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use turncoat_core::Time;

use super::{Context, tenant};
use crate::output::Exit;

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub(crate) enum ReportFormat {
    #[default]
    Html,
    Pdf,
}

#[derive(Parser, Debug)]
pub(crate) struct ReportArgs {
    #[arg(long)]
    tenant: String,
    /// One advisory's exposure only.
    #[arg(long)]
    advisory: Option<String>,
    /// Alerts last seen since this time (RFC 3339).
    #[arg(long, value_parser = Time::parse)]
    since: Option<Time>,
    #[arg(long, value_enum, default_value_t)]
    format: ReportFormat,
    /// Write here (replaced whole) instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(crate) fn run(args: ReportArgs, ctx: &Context) -> anyhow::Result<Exit> {
    let store = ctx.read()?;
    let query = turncoat_server::ReportQuery {
        tenant: tenant(&*store, &args.tenant)?,
        advisory: args.advisory,
        since: args.since,
    };
    let page = match args.format {
        ReportFormat::Html => {
            turncoat_server::report_html(&*store, &query, Time::now()).map(String::into_bytes)
        }
        ReportFormat::Pdf => turncoat_server::report_pdf(&*store, &query, Time::now()),
    }
    .map_err(|p| anyhow::anyhow!(p.detail))?;
    match args.out {
        Some(path) => crate::output::write_whole(&path, &page)?,
        None => std::io::stdout().write_all(&page)?,
    }
    Ok(Exit::Clean)
}
