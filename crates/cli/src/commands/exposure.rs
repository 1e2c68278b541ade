//! `turncoat exposure`: who runs or ran an affected version, and when.

use anyhow::bail;
use clap::Parser;

use super::{Context, scope};
use crate::output::{Exit, OutputFormat, print_json};

#[derive(Parser, Debug)]
pub(crate) struct ExposureArgs {
    /// Only this advisory.
    #[arg(long)]
    advisory: Option<String>,
    /// Only this tenant (default: every tenant).
    #[arg(long)]
    tenant: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

pub(crate) fn run(args: ExposureArgs, ctx: &Context) -> anyhow::Result<Exit> {
    let store = ctx.read()?;
    let scope = scope(&*store, args.tenant.as_deref())?;
    if let Some(id) = &args.advisory
        && !store.advisories()?.iter().any(|a| &a.id == id)
    {
        bail!("no advisory {id:?}; `turncoat intel advisories` lists them");
    }
    let rows = turncoat_engine::exposure(&*store, &scope, args.advisory.as_deref())?;
    match args.format {
        OutputFormat::Json => print_json(&rows)?,
        OutputFormat::Table => {
            crate::output::exposure_table(&rows).print_or("no exposure")?;
        }
    }
    Ok(Exit::findings(!rows.is_empty()))
}
