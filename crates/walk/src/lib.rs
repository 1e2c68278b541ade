//! The one walker every command uses to turn the paths it was given into
//! the inputs it reads: telemetry for `ingest` and `hunt`, intel, Sigma
//! and YARA rules.
//!
//! The rules, the same everywhere:
//! - a path named on the command line is read whatever its name; `-` is
//!   standard input, and a FIFO or character device named explicitly is
//!   read once, as a stream ([`Input::Stream`]);
//! - directories are walked depth first, entries sorted by name; hidden
//!   entries (`.git`, `.github`) are skipped, and, when the caller names
//!   extensions, files without one of them;
//! - only regular files are read inside a tree: a FIFO, socket or device
//!   there is skipped and reported, since opening one blocks or never ends;
//! - a symbolic link is followed only when its target stays inside the
//!   tree being walked (or when [`WalkOptions::follow_links`] asks for
//!   every link); each directory and file is visited once, by (device,
//!   inode), so a link back to a parent is reported as a loop instead of
//!   walked for ever, and a file reached twice is read once;
//! - a tree of more than [`WalkOptions::max_files`] files stops there,
//!   reported.
//!
//! Nothing here fails: what cannot be read is a [`Skipped`] entry with its
//! path and reason, for the caller's report.

#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::fs::{self, FileType, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What to walk and how.
#[derive(Clone, Debug)]
pub struct WalkOptions {
    /// Extensions (without the dot, lowercase) a file found inside a
    /// directory must have; empty for every file.
    pub extensions: &'static [&'static str],
    /// Follow links whose targets are outside the tree too.
    pub follow_links: bool,
    /// Files listed at most; the walk stops there, reported.
    pub max_files: usize,
}

impl Default for WalkOptions {
    fn default() -> WalkOptions {
        WalkOptions {
            extensions: &[],
            follow_links: false,
            max_files: 1_000_000,
        }
    }
}

impl WalkOptions {
    /// Every file, as for telemetry and intel.
    pub fn all_files() -> WalkOptions {
        WalkOptions::default()
    }

    /// Only files with these extensions inside directories.
    pub fn with_extensions(extensions: &'static [&'static str]) -> WalkOptions {
        WalkOptions {
            extensions,
            ..WalkOptions::default()
        }
    }
}

/// One input the caller should read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A regular file (or a path that did not resolve: opening it reports
    /// why, with its name).
    File(PathBuf),
    /// Standard input (`-`) or a FIFO or character device named on the
    /// command line: read once, front to back, never re-opened.
    Stream(PathBuf),
}

impl Input {
    pub fn path(&self) -> &Path {
        match self {
            Input::File(p) | Input::Stream(p) => p,
        }
    }
}

/// A path left unread, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// What a walk found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Walk {
    pub inputs: Vec<Input>,
    pub skipped: Vec<Skipped>,
}

impl Walk {
    /// The inputs' paths.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.inputs.iter().map(Input::path)
    }

    /// One line per path left unread, for a command's report.
    pub fn unread(&self) -> Vec<String> {
        self.skipped
            .iter()
            .map(|s| format!("not read: {s}"))
            .collect()
    }
}

/// Walks `paths` by the rules in the crate documentation.
pub fn walk(paths: &[PathBuf], options: &WalkOptions) -> Walk {
    let mut walker = Walker {
        options,
        out: Walk::default(),
        seen_dirs: HashSet::new(),
        seen_files: HashSet::new(),
        full: false,
    };
    for path in paths {
        walker.named(path);
    }
    walker.out
}

struct Walker<'a> {
    options: &'a WalkOptions,
    out: Walk,
    /// (device, inode) of every directory entered.
    seen_dirs: HashSet<(u64, u64)>,
    /// (device, inode) of every file listed.
    seen_files: HashSet<(u64, u64)>,
    /// The file limit was reached (and reported once).
    full: bool,
}

impl Walker<'_> {
    /// A path given by the caller: read whatever its name.
    fn named(&mut self, path: &Path) {
        if path.as_os_str() == "-" {
            self.out.inputs.push(Input::Stream(path.to_owned()));
            return;
        }
        // Named paths follow links: the caller chose them.
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            // Left for the reader to open and report with its own words.
            Err(_) => return self.out.inputs.push(Input::File(path.to_owned())),
        };
        let kind = meta.file_type();
        if kind.is_dir() {
            let root = fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
            self.dir(path, &meta, &root);
        } else if kind.is_fifo() || kind.is_char_device() {
            self.out.inputs.push(Input::Stream(path.to_owned()));
        } else if kind.is_file() {
            if self.seen_files.insert(id(&meta)) {
                self.push(Input::File(path.to_owned()));
            }
        } else {
            self.skip(path, describe(kind));
        }
    }

    fn dir(&mut self, dir: &Path, meta: &Metadata, root: &Path) {
        if !self.seen_dirs.insert(id(meta)) {
            return self.skip(
                dir,
                "already walked: a link loop, or a second link to the same directory",
            );
        }
        let entries = match fs::read_dir(dir) {
            Ok(d) => d,
            Err(e) => return self.skip(dir, &format!("cannot list: {e}")),
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            if self.full {
                return;
            }
            let path = entry.path();
            if entry.file_name().as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                self.skip(&path, "cannot be examined");
                continue;
            };
            let meta = if kind.is_symlink() {
                match self.link_target(&path, root) {
                    Ok(m) => m,
                    Err(reason) => {
                        self.skip(&path, &reason.to_string());
                        continue;
                    }
                }
            } else {
                match entry.metadata() {
                    Ok(m) => m,
                    Err(e) => {
                        self.skip(&path, &format!("cannot be examined: {e}"));
                        continue;
                    }
                }
            };
            let kind = meta.file_type();
            if kind.is_dir() {
                self.dir(&path, &meta, root);
            } else if !kind.is_file() {
                self.skip(&path, describe(kind));
            } else if self.wanted(&path) && self.seen_files.insert(id(&meta)) {
                self.push(Input::File(path));
            }
        }
    }

    /// The metadata of a link's target, when the link may be followed.
    fn link_target(&self, link: &Path, root: &Path) -> Result<Metadata, LinkSkipped> {
        let target = fs::canonicalize(link).map_err(LinkSkipped::Broken)?;
        if !self.options.follow_links && !target.starts_with(root) {
            return Err(LinkSkipped::OutOfTree(target));
        }
        fs::metadata(&target).map_err(LinkSkipped::Unexaminable)
    }

    fn wanted(&self, path: &Path) -> bool {
        let extensions = self.options.extensions;
        extensions.is_empty()
            || path
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| extensions.iter().any(|e| x.eq_ignore_ascii_case(e)))
    }

    fn push(&mut self, input: Input) {
        if self.out.inputs.len() >= self.options.max_files {
            self.full = true;
            let path = input.path().to_owned();
            let reason = format!(
                "the walk stopped at {} files; the rest is not read",
                self.options.max_files
            );
            return self.skip(&path, &reason);
        }
        self.out.inputs.push(input);
    }

    fn skip(&mut self, path: &Path, reason: &str) {
        self.out.skipped.push(Skipped {
            path: path.to_owned(),
            reason: reason.to_owned(),
        });
    }
}

fn id(meta: &Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

fn describe(kind: FileType) -> &'static str {
    if kind.is_fifo() {
        "a FIFO inside a directory: not read (name it on its own to read it as a stream)"
    } else if kind.is_socket() {
        "a socket: not read"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device: not read"
    } else {
        "not a regular file: not read"
    }
}

/// Why a symbolic link was not followed.
#[derive(Debug, thiserror::Error)]
enum LinkSkipped {
    #[error("a broken link: {0}")]
    Broken(#[source] std::io::Error),
    #[error("a link out of the tree (to {}): not followed", .0.display())]
    OutOfTree(std::path::PathBuf),
    #[error("a link that cannot be examined: {0}")]
    Unexaminable(#[source] std::io::Error),
}
