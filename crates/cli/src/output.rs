//! Tables for people, JSON for programs: the shared table and JSON
//! output, and the tables more than one command prints.

pub use turncoat_output::{OutputFormat, Table, print_json};

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
