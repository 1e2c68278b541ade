//! YARA through yara-x: rule files compiled once, every unpacked file
//! scanned, with the external variables signature scanners (LOKI, THOR)
//! define — `filename`, `filepath`, `extension`, `filetype`, `owner` — so
//! that rule sets written for them compile.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;
use serde::Serialize;

use crate::binary::Kind;

/// Longest one file's scan may take.
const SCAN_TIMEOUT: Duration = Duration::from_secs(10);

/// External variables, all strings, set for each file scanned.
const EXTERNALS: [&str; 5] = ["filename", "filepath", "extension", "filetype", "owner"];

/// A rule file that did not compile.
#[derive(Clone, Debug, Serialize)]
pub struct RuleFileError {
    pub file: String,
    /// Rules in the file (counted from the source), all lost with it.
    pub rules: usize,
    pub error: String,
}

/// Compiled rules, with what did not compile.
pub struct YaraRules {
    rules: yara_x::Rules,
    pub compiled: usize,
    pub failed: Vec<RuleFileError>,
}

/// A rule that matched one file.
#[derive(Clone, Debug)]
pub struct YaraMatch {
    pub rule: String,
    pub namespace: String,
    /// The `score` metadata signature-base rules carry (0-100), if any.
    pub score: Option<i64>,
    pub description: Option<String>,
}

static RULE_DECL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^\s*(?:(?:private|global)\s+)*rule\s+[A-Za-z_][A-Za-z0-9_]*").unwrap()
});
/// `rule` declarations at the start of a line: a count, not a parse (it
/// includes rules commented out), used for what a file that fails to
/// compile loses.
pub fn declared_rules(text: &str) -> usize {
    RULE_DECL.find_iter(text).count()
}

/// Rule files: those named, and `.yar`/`.yara` files under directories
/// (hidden folders left out, links kept inside the tree); paths that
/// could not be read are an error naming them.
pub fn rule_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let walk = turncoat_walk::walk(
        paths,
        &turncoat_walk::WalkOptions::with_extensions(&["yar", "yara"]),
    );
    if let Some(s) = walk.skipped.first() {
        return Err(std::io::Error::other(s.to_string()));
    }
    Ok(walk.paths().map(Path::to_owned).collect())
}

impl YaraRules {
    /// Compiles every `.yar`/`.yara` file under `paths`, each on its own so
    /// that one broken file loses only its own rules.
    pub fn compile(paths: &[PathBuf]) -> std::io::Result<YaraRules> {
        let files = rule_files(paths)?;
        let mut compiler = yara_x::Compiler::new();
        compiler.relaxed_re_syntax(true);
        for name in EXTERNALS {
            // Defining a fresh global cannot fail.
            let _ = compiler.define_global(name, "");
        }
        let mut failed = Vec::new();
        for f in &files {
            let text = String::from_utf8_lossy(&std::fs::read(f)?).into_owned();
            let origin = f.display().to_string();
            let source = yara_x::SourceCode::from(text.as_str()).with_origin(&origin);
            if let Err(e) = compiler.add_source(source) {
                failed.push(RuleFileError {
                    file: origin,
                    rules: declared_rules(&text),
                    error: e.to_string().lines().next().unwrap_or("").to_owned(),
                });
            }
        }
        let rules = compiler.build();
        Ok(YaraRules {
            compiled: rules.iter().count(),
            rules,
            failed,
        })
    }

    /// A scanner for one thread.
    pub fn scanner(&self) -> YaraScanner<'_> {
        let mut scanner = yara_x::Scanner::new(&self.rules);
        scanner.set_timeout(SCAN_TIMEOUT);
        YaraScanner { scanner }
    }
}

/// Scans files one after another.
pub struct YaraScanner<'r> {
    scanner: yara_x::Scanner<'r>,
}

/// The `filetype` value signature scanners give a file of this kind.
fn filetype(kind: Kind) -> &'static str {
    match kind {
        Kind::Pe => "EXE",
        Kind::Elf => "ELF",
        Kind::MachO => "MACHO",
        Kind::Archive => "ZIP",
        Kind::Script => "SCRIPT",
        Kind::Other => "",
    }
}

/// Why a file could not be scanned: the rules' external variables did
/// not take its name, or the scan failed (a timeout).
#[derive(Debug, thiserror::Error)]
pub enum YaraScanError {
    #[error("setting the rules' file variables: {0}")]
    Variable(#[from] yara_x::errors::VariableError),
    #[error("{0}")]
    Scan(#[from] yara_x::errors::ScanError),
}

impl YaraScanner<'_> {
    /// Rules matching `data`, the file at inner path `path`.
    pub fn scan(
        &mut self,
        path: &str,
        kind: Kind,
        data: &[u8],
    ) -> Result<Vec<YaraMatch>, YaraScanError> {
        let name = path.rsplit(['/', '!']).next().unwrap_or(path);
        let extension = Path::new(name)
            .extension()
            .map(|x| format!(".{}", x.to_string_lossy().to_ascii_lowercase()))
            .unwrap_or_default();
        for (var, value) in [
            ("filename", name),
            ("filepath", path),
            ("extension", extension.as_str()),
            ("filetype", filetype(kind)),
        ] {
            self.scanner.set_global(var, value)?;
        }
        let results = self.scanner.scan(data)?;
        Ok(results
            .matching_rules()
            .map(|r| {
                let mut m = YaraMatch {
                    rule: r.identifier().to_owned(),
                    namespace: r.namespace().to_owned(),
                    score: None,
                    description: None,
                };
                for (key, value) in r.metadata() {
                    match (key, value) {
                        ("score", yara_x::MetaValue::Integer(i)) => m.score = Some(i),
                        ("score", yara_x::MetaValue::String(s)) => m.score = s.parse().ok(),
                        ("description", yara_x::MetaValue::String(s)) => {
                            m.description = Some(s.to_owned())
                        }
                        _ => {}
                    }
                }
                m
            })
            .collect())
    }
}
