//! Tables for people, JSON for programs: the shared table and JSON
//! output, and the tables more than one command prints.

use std::process::ExitCode;

pub use turncoat_output::{OutputFormat, Table, print_json};

/// How a command ends: 0 clean, 1 findings (alerts, exposure, a verdict
/// other than clean), 2 error (bad input, nothing read, no data directory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Clean,
    Findings,
    Error,
}

impl Exit {
    /// `Findings` when a command found something, else `Clean`.
    pub fn findings(found: bool) -> Exit {
        if found { Exit::Findings } else { Exit::Clean }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(match exit {
            Exit::Clean => 0,
            Exit::Findings => 1,
            Exit::Error => 2,
        })
    }
}

/// What a retro-hunt raised per tenant (`intel import`, `rules import`).
pub fn retro_table(retro: &[turncoat_engine::intel::RetroReport]) -> Table {
    let mut t = Table::new(&["tenant", "new alerts", "updated alerts", "resurfaced"]);
    for r in retro {
        t.row(vec![
            r.tenant.clone(),
            r.new_alerts.to_string(),
            r.updated_alerts.to_string(),
            r.resurfaced.to_string(),
        ]);
    }
    t
}

/// Says where an import's retro-hunt went when it was meant for a
/// cluster's workers: handed to them, or done here and why.
pub fn print_retro_hand_off(
    queued: Option<&turncoat_engine::QueuedRetro>,
    not_queued: Option<&String>,
) {
    if let Some(why) = not_queued {
        eprintln!("warning: the retro-hunt could not be handed to the workers ({why}); done here");
    }
    if let Some(q) = queued {
        println!(
            "retro-hunt {} handed to the workers: one job for each of {} tenants",
            q.hunt, q.tenants
        );
    }
}

/// The exposure table the `exposure` command and the demo print.
pub fn exposure_table(rows: &[turncoat_engine::ExposureRow]) -> Table {
    let mut t = Table::new(&[
        "tenant", "endpoint", "advisory", "product", "version", "platform", "from", "to",
    ]);
    for r in rows {
        t.row(vec![
            r.tenant.to_string(),
            r.endpoint.clone(),
            r.advisory.clone(),
            r.product.clone(),
            r.version.clone(),
            r.platform.map(|p| p.to_string()).unwrap_or_default(),
            r.from.to_string(),
            r.to.map(|t| t.to_string())
                .unwrap_or_else(|| "installed".into()),
        ]);
    }
    t
}

/// An error and its causes on one line, `outer: cause: root`. A cause its
/// outer message already quotes (errors that keep their cause and still
/// say it, for callers that print only the outer one) is not repeated.
pub fn error_report(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}

/// Writes `bytes` to `path` whole or not at all: a temporary file beside
/// it, renamed over it, so a reader never sees half an export.
pub(crate) fn write_whole(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let mut file = tempfile::NamedTempFile::new_in(dir.unwrap_or(".".as_ref()))?;
    file.write_all(bytes)?;
    file.persist(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::error_report;

    #[derive(Debug, thiserror::Error)]
    #[error("reading {file}: {source}")]
    struct Quoting {
        file: &'static str,
        #[source]
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("import failed")]
    struct Terse(#[source] Quoting);

    #[test]
    fn causes_are_said_once() {
        let io = std::io::Error::other("disk on fire");
        let e = Terse(Quoting {
            file: "a.json",
            source: io,
        });
        assert_eq!(
            error_report(&e),
            "import failed: reading a.json: disk on fire"
        );
    }
}
