//! `turncoat export blocklist`: the active indicators in the format of
//! what blocks them (RPZ, Suricata, hosts, CSV, STIX 2.1).

use std::io::Write as _;
use std::path::PathBuf;

use clap::Subcommand;
use turncoat_core::{IndicatorKind, Time};
use turncoat_respond::Format;

use super::{Context, tenant};
use crate::output::Exit;

#[derive(Subcommand, Debug)]
pub(crate) enum ExportCommand {
    /// The indicators to block: not revoked, not expired, not allowlisted
    /// (the tenant's and the global allowlist with --tenant, the global one
    /// without), in a stable order so that two exports differ by what changed.
    Blocklist {
        /// rpz (a DNS response-policy zone), suricata (rules; hashes through
        /// the dataset file suricata-sha256 writes), suricata-sha256, hosts,
        /// csv, stix (a STIX 2.1 bundle).
        #[arg(long, value_parser = str::parse::<Format>)]
        format: Format,
        /// For this tenant: its allowlist applies too.
        #[arg(long)]
        tenant: Option<String>,
        /// With --tenant: only what the tenant's telemetry has seen.
        #[arg(long, requires = "tenant")]
        seen: bool,
        /// Only these kinds: domain, ip, url, sha256 (comma-separated).
        #[arg(long, value_delimiter = ',', value_parser = str::parse::<IndicatorKind>)]
        kind: Vec<IndicatorKind>,
        /// Only indicators stating at least this confidence (0-100).
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
        min_confidence: Option<u8>,
        /// Only entries added or changed since this time (RFC 3339).
        #[arg(long, value_parser = Time::parse)]
        since: Option<Time>,
        /// Write here (replaced whole, never half-written) instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub(crate) fn run(command: ExportCommand, ctx: &Context) -> anyhow::Result<Exit> {
    match command {
        ExportCommand::Blocklist {
            format,
            tenant: tenant_name,
            seen,
            kind,
            min_confidence,
            since,
            out,
        } => {
            for k in &kind {
                anyhow::ensure!(
                    turncoat_engine::export::KINDS.contains(k),
                    "kind {k}: a blocklist holds domain, ip, url and sha256"
                );
            }
            let store = ctx.read()?;
            let tenant = tenant_name
                .as_deref()
                .map(|t| tenant(&*store, t))
                .transpose()?;
            let selection = turncoat_engine::export::Selection {
                tenant: tenant.as_ref(),
                seen,
                kinds: kind,
                min_confidence,
                since,
            };
            let now = Time::now();
            let list = turncoat_engine::export::blocklist(&*store, &selection, now)?;
            let text = turncoat_respond::render(&list, format, now);
            match out {
                Some(path) => {
                    crate::output::write_whole(&path, text.as_bytes())?;
                    eprintln!(
                        "{} entries written to {}",
                        list.entries.len(),
                        path.display()
                    );
                }
                None => std::io::stdout().write_all(text.as_bytes())?,
            }
            Ok(Exit::Clean)
        }
    }
}
