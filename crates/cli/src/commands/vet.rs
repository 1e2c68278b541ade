//! `turncoat vet`: a release before rollout, alone or against the last one.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use turncoat_vet::{Options, OsvIndex, Report, Verdict};

use crate::output::{Exit, Table, print_json};

/// `--format table|json|sarif`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum VetFormat {
    #[default]
    Table,
    Json,
    /// SARIF 2.1.0, for GitHub code scanning and other SARIF consumers.
    Sarif,
}

#[derive(Parser, Debug)]
pub struct VetArgs {
    /// The release: a file, a directory, or an archive (zip family, tar, tgz).
    pub artifact: PathBuf,
    /// The previous release, to diff against.
    #[arg(long)]
    pub against: Option<PathBuf>,
    /// Intel (STIX, MISP, CSV, advisories): known-bad hashes and network
    /// indicators to look for.
    #[arg(long, num_args = 1..)]
    pub intel: Vec<PathBuf>,
    /// OSV records (`.json` files, directories of them, or zips such as
    /// an ecosystem's `all.zip`) that the packages the release pins are
    /// matched against.
    #[arg(long, num_args = 1..)]
    pub osv: Vec<PathBuf>,
    /// YARA rule files or directories (`.yar`, `.yara`).
    #[arg(long, num_args = 1..)]
    pub yara: Vec<PathBuf>,
    /// A directory of root certificates (PEM or DER): signatures whose
    /// chain does not end in one are reported.
    #[arg(long, value_name = "DIR")]
    pub trust: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: VetFormat,
}

fn print_table(report: &Report) -> anyhow::Result<()> {
    if let Some(d) = &report.diff {
        println!(
            "diff against {}: {} new, {} removed, {} changed, {} unchanged",
            d.against,
            d.new.len(),
            d.removed.len(),
            d.changed.len(),
            d.unchanged
        );
    }
    let mut table = Table::new(&["SEVERITY", "ID", "FILE", "MESSAGE"]);
    for f in &report.findings {
        table.row(vec![
            format!("{:?}", f.severity).to_lowercase(),
            f.id.to_string(),
            f.file.clone(),
            match &f.repeated {
                Some(r) => format!("{} (on {} files)", f.message, r.count),
                None => f.message.clone(),
            },
        ]);
    }
    table.print_or("no findings")?;
    println!(
        "{}: {} files, verdict {}",
        report.artifact,
        report.files.len(),
        format!("{:?}", report.verdict).to_lowercase()
    );
    Ok(())
}

/// The OSV records in `paths`, indexed; what did not read is reported.
fn load_osv(paths: &[PathBuf]) -> anyhow::Result<OsvIndex> {
    let records = turncoat_engine::load_osv(paths)?;
    eprintln!(
        "osv: {} records read, {} skipped",
        records.advisories.len(),
        records.rejected.len()
    );
    for r in records.rejected.iter().take(5) {
        eprintln!("  {r}");
    }
    Ok(OsvIndex::new(records.advisories))
}

/// Exit 0 when clean, 1 when there are findings beyond informational ones.
pub(crate) fn run(args: VetArgs) -> anyhow::Result<Exit> {
    let yara = if args.yara.is_empty() {
        None
    } else {
        let rules = turncoat_vet::yara::YaraRules::compile(&args.yara)?;
        let lost: usize = rules.failed.iter().map(|f| f.rules).sum();
        eprintln!(
            "yara: {} rules compiled; {} files did not compile ({lost} rules)",
            rules.compiled,
            rules.failed.len()
        );
        for f in rules.failed.iter().take(10) {
            eprintln!("  {}: {}", f.file, f.error);
        }
        Some(rules)
    };
    let options = Options {
        indicators: turncoat_engine::load_indicators(&args.intel)?,
        osv: if args.osv.is_empty() {
            None
        } else {
            Some(load_osv(&args.osv)?)
        },
        yara,
        trust: match &args.trust {
            Some(dir) => Some(turncoat_vet::authenticode::verify::TrustAnchors::load(dir)?),
            None => None,
        },
        ..Options::default()
    };
    let report = turncoat_vet::vet(&args.artifact, args.against.as_deref(), &options)?;
    match args.format {
        VetFormat::Json => print_json(&report)?,
        VetFormat::Sarif => print_json(&turncoat_vet::sarif::sarif(&report))?,
        VetFormat::Table => print_table(&report)?,
    }
    Ok(Exit::findings(report.verdict != Verdict::Clean))
}
