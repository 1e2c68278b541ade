//! Tables for people, JSON for programs: the output of turncoat's
//! command-line tools (`turncoat`, `turncoat-bench`).

#![forbid(unsafe_code)]

use std::io::{self, Write};

use clap::ValueEnum;
use serde::Serialize;

/// `--format table|json`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

/// A plain text table with aligned columns.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// Cells longer than this are cut with an ellipsis in tables (JSON keeps all).
const MAX_CELL: usize = 80;

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| {
                    let c = c.replace(['\n', '\r', '\t'], " ");
                    if c.chars().count() > MAX_CELL {
                        format!("{}…", c.chars().take(MAX_CELL - 1).collect::<String>())
                    } else {
                        c
                    }
                })
                .collect(),
        );
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, c) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(c.chars().count());
                }
            }
        }
        let line = |cells: &[String], out: &mut dyn Write| -> io::Result<()> {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i > 0 {
                    s.push_str("  ");
                }
                s.push_str(c);
                if i + 1 < cells.len() {
                    s.push_str(&" ".repeat(widths[i].saturating_sub(c.chars().count())));
                }
            }
            writeln!(out, "{}", s.trim_end())
        };
        line(
            &self
                .headers
                .iter()
                .map(|h| h.to_uppercase())
                .collect::<Vec<_>>(),
            out,
        )?;
        for row in &self.rows {
            line(row, out)?;
        }
        Ok(())
    }

    pub fn print(&self) -> io::Result<()> {
        self.write(&mut io::stdout().lock())
    }

    /// Prints the table, or `empty` when it has no rows.
    pub fn print_or(&self, empty: &str) -> io::Result<()> {
        if self.is_empty() {
            writeln!(io::stdout().lock(), "{empty}")
        } else {
            self.print()
        }
    }
}

/// Prints any serialisable value as pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> io::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_and_cuts() {
        let mut t = Table::new(&["a", "bb"]);
        t.row(vec!["long value".into(), "x".into()]);
        t.row(vec!["y".repeat(100), "z\nz".into()]);
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let col = lines[0].find("BB").unwrap();
        assert_eq!(col, 82, "80 characters of cut cell plus two spaces");
        assert_eq!(lines[1].find('x'), Some(col));
        assert!(lines[1].starts_with("long value "));
        assert!(lines[2].contains('…') && lines[2].ends_with("z z"));
    }
}
