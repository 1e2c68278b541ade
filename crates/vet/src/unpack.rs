//! Unpacking an artifact into its files: directories, ZIP-family archives
//! (zip, nupkg, jar, whl, vsix, apk), tar, gzip (so tgz and tar.gz), MSI
//! (a compound file and the cabinets in its streams), cabinets, Electron
//! `app.asar`,
//! recursively. Every file gets an inner path such as
//! `app.zip!/lib/ffmpeg.dll`.
//!
//! Hostile archives are expected: nesting depth, file size, total size,
//! entry count and compression ratio are bounded, and path traversal,
//! absolute paths and links are reported as findings, never followed.

use std::io::Read;
use std::path::Path;

use crate::{Finding, FindingId};

/// Limits on what one artifact may unpack to.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Archives inside archives, counting the artifact itself.
    pub max_depth: usize,
    /// Largest single file kept, in bytes.
    pub max_file_bytes: u64,
    /// All files together.
    pub max_total_bytes: u64,
    pub max_entries: usize,
    /// Uncompressed / compressed size above which an entry is a bomb.
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_depth: 8,
            max_file_bytes: 512 << 20,
            max_total_bytes: 4 << 30,
            max_entries: 200_000,
            max_ratio: 250,
        }
    }
}

/// One unpacked file.
#[derive(Debug)]
pub struct Entry {
    /// `outer.zip!/dir/file.dll`; for a directory artifact, the path
    /// relative to it.
    pub path: String,
    pub data: Vec<u8>,
}

/// What unpacking produced: files, and the findings met on the way.
#[derive(Debug, Default)]
pub struct Unpacked {
    pub entries: Vec<Entry>,
    pub findings: Vec<Finding>,
}

/// Unpacks, handing every file to `each` as soon as it is read, so that
/// analysis can run beside unpacking and a file's bytes are freed once
/// analysed.
struct Unpacker<'a> {
    each: &'a mut dyn FnMut(Entry),
    findings: Vec<Finding>,
    entries: usize,
    total: u64,
    /// Bytes of the artifact as given (the archive, or a tree's files).
    given: u64,
    /// Bytes that decompression produced, across every nesting level.
    expanded: u64,
    /// A limit on the whole artifact was reached (reported once): nothing
    /// more is read, so a bomb costs what the limit allows and no more.
    stopped: bool,
}

/// Why an artifact could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct UnpackError {
    pub path: String,
    pub message: String,
}

impl Unpacker<'_> {
    fn new(each: &mut dyn FnMut(Entry)) -> Unpacker<'_> {
        Unpacker {
            each,
            findings: Vec::new(),
            entries: 0,
            total: 0,
            given: 0,
            expanded: 0,
            stopped: false,
        }
    }

    /// Stops all further unpacking with one finding saying why.
    fn stop(&mut self, id: FindingId, file: &str, message: String) {
        if !self.stopped {
            self.stopped = true;
            self.note(id, file, message);
        }
    }

    /// Records a file of the artifact as given (not unpacked from
    /// anything): its size is what later expansion is measured against.
    fn add_given(&mut self, path: String, data: Vec<u8>, depth: usize, limits: &Limits) {
        self.given += data.len() as u64;
        self.add(path, data, depth, limits);
    }

    /// How many more bytes decompression may produce: nested layers of
    /// archives multiply, so the ratio limit applies to the artifact as a
    /// whole as well as to each entry (a 22 KB zip of zips of zips must
    /// not unpack to gigabytes one reasonable-looking layer at a time).
    fn expansion_left(&self, limits: &Limits) -> u64 {
        let allowed = self
            .given
            .saturating_mul(limits.max_ratio)
            .max(MIN_EXPANSION_BYTES);
        allowed.saturating_sub(self.expanded)
    }

    fn note(&mut self, id: FindingId, file: &str, message: String) {
        self.findings
            .push(crate::finding(id, file, message, serde_json::Value::Null));
    }

    /// Records a file, recursing into it when it is an archive.
    fn add(&mut self, path: String, data: Vec<u8>, depth: usize, limits: &Limits) {
        if self.stopped {
            return;
        }
        if self.entries >= limits.max_entries {
            self.stop(
                FindingId::ArchiveLimit,
                &path,
                format!(
                    "more than {} files: the rest is not analysed",
                    limits.max_entries
                ),
            );
            return;
        }
        self.total += data.len() as u64;
        if self.total > limits.max_total_bytes {
            self.stop(
                FindingId::ArchiveLimit,
                &path,
                format!(
                    "unpacked size passes {} bytes: the rest is not analysed",
                    limits.max_total_bytes
                ),
            );
            return;
        }
        let kind = container(&path, &data);
        if kind.is_some() && depth >= limits.max_depth {
            self.note(
                FindingId::ArchiveLimit,
                &path,
                format!(
                    "archives nested deeper than {}: not unpacked",
                    limits.max_depth
                ),
            );
        }
        let inner = match kind {
            Some(kind) if depth < limits.max_depth => Some(kind),
            _ => None,
        };
        match inner {
            Some(Container::Zip) => self.zip(&path, &data, depth, limits),
            Some(Container::Tar) => self.tar(&path, &data, depth, limits),
            Some(Container::Gzip) => self.gzip(&path, &data, depth, limits),
            Some(Container::Asar) => self.asar(&path, &data, depth, limits),
            Some(Container::Msi) => self.msi(&path, &data, depth, limits),
            Some(Container::Cab) => self.cab(&path, &data, depth, limits),
            None => {}
        }
        self.entries += 1;
        (self.each)(Entry { path, data });
    }

    fn zip(&mut self, outer: &str, data: &[u8], depth: usize, limits: &Limits) {
        let mut archive = match zip::ZipArchive::new(std::io::Cursor::new(data)) {
            Ok(a) => a,
            Err(e) => {
                self.note(
                    FindingId::ArchiveMalformed,
                    outer,
                    format!("unreadable zip: {e}"),
                );
                return;
            }
        };
        for i in 0..archive.len() {
            if self.stopped {
                return;
            }
            let mut file = match archive.by_index(i) {
                Ok(f) => f,
                Err(e) => {
                    self.note(
                        FindingId::ArchiveMalformed,
                        outer,
                        format!("entry {i}: {e}"),
                    );
                    continue;
                }
            };
            let name = file.name().to_owned();
            if file.is_dir() {
                continue;
            }
            if file.is_symlink() {
                self.note(
                    FindingId::ArchiveSymlink,
                    &format!("{outer}!/{name}"),
                    "a link inside the archive: not followed".into(),
                );
                continue;
            }
            let Some(inner) = self.safe_name(outer, &name) else {
                continue;
            };
            let declared = file.size();
            let compressed = file.compressed_size().max(1);
            if let Some(data) = self.read_bounded(&inner, &mut file, declared, compressed, limits) {
                self.add(inner, data, depth + 1, limits);
            }
        }
    }

    fn tar(&mut self, outer: &str, data: &[u8], depth: usize, limits: &Limits) {
        let mut archive = tar::Archive::new(data);
        let entries = match archive.entries() {
            Ok(e) => e,
            Err(e) => {
                self.note(
                    FindingId::ArchiveMalformed,
                    outer,
                    format!("unreadable tar: {e}"),
                );
                return;
            }
        };
        for entry in entries {
            if self.stopped {
                return;
            }
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    self.note(
                        FindingId::ArchiveMalformed,
                        outer,
                        format!("tar entry: {e}"),
                    );
                    break;
                }
            };
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                self.note(
                    FindingId::ArchiveSymlink,
                    &format!("{outer}!/{name}"),
                    "a link inside the archive: not followed".into(),
                );
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let Some(inner) = self.safe_name(outer, &name) else {
                continue;
            };
            let size = entry.size();
            if let Some(data) = self.read_bounded(&inner, &mut entry, size, size.max(1), limits) {
                self.add(inner, data, depth + 1, limits);
            }
        }
    }

    fn gzip(&mut self, outer: &str, data: &[u8], depth: usize, limits: &Limits) {
        let mut decoder = flate2::read::GzDecoder::new(data);
        let name = Path::new(outer.rsplit("!/").next().unwrap_or(outer))
            .file_stem()
            .map_or_else(|| "data".to_owned(), |s| s.to_string_lossy().into_owned());
        let name = match name.strip_suffix(".tar") {
            Some(_) => name,
            None if outer.ends_with(".tgz") => format!("{name}.tar"),
            None => name,
        };
        let inner = format!("{outer}!/{name}");
        if let Some(bytes) = self.read_bounded(
            &inner,
            &mut decoder,
            u64::MAX,
            data.len().max(1) as u64,
            limits,
        ) {
            self.add(inner, bytes, depth + 1, limits);
        }
    }

    /// An MSI (or any compound file): every stream, by its decoded name;
    /// the cabinets among them are unpacked in turn, and custom-action
    /// binaries are analysed like any file.
    fn msi(&mut self, outer: &str, data: &[u8], depth: usize, limits: &Limits) {
        let mut file = match cfb::CompoundFile::open(std::io::Cursor::new(data)) {
            Ok(f) => f,
            Err(e) => {
                self.note(
                    FindingId::ArchiveMalformed,
                    outer,
                    format!("unreadable compound file: {e}"),
                );
                return;
            }
        };
        let streams: Vec<(std::path::PathBuf, u64)> = file
            .walk()
            .filter(|e| e.is_stream())
            .map(|e| (e.path().to_owned(), e.len()))
            .collect();
        for (path, len) in streams {
            if self.stopped {
                return;
            }
            let name: String = path
                .to_string_lossy()
                .trim_start_matches('/')
                .split('/')
                .map(msi_stream_name)
                .collect::<Vec<_>>()
                .join("/");
            let inner = format!("{outer}!/{name}");
            let Ok(mut stream) = file.open_stream(&path) else {
                self.note(
                    FindingId::ArchiveMalformed,
                    &inner,
                    "unreadable stream".into(),
                );
                continue;
            };
            if let Some(bytes) = self.read_bounded(&inner, &mut stream, len, len.max(1), limits) {
                self.add(inner, bytes, depth + 1, limits);
            }
        }
    }

    /// A cabinet (MSZIP, LZX or stored).
    fn cab(&mut self, outer: &str, data: &[u8], depth: usize, limits: &Limits) {
        let mut cabinet = match cab::Cabinet::new(std::io::Cursor::new(data)) {
            Ok(c) => c,
            Err(e) => {
                self.note(
                    FindingId::ArchiveMalformed,
                    outer,
                    format!("unreadable cabinet: {e}"),
                );
                return;
            }
        };
        let names: Vec<String> = cabinet
            .folder_entries()
            .flat_map(|f| {
                f.file_entries()
                    .map(|e| e.name().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        // `cab` finds a file by name: a name is asked for only when every
        // entry under it is safe to read.
        let (safe, why) = match crate::cab_layout::files_within_folders(data) {
            Some(safe) if safe.len() == names.len() => {
                (safe, "it starts past the data its folder holds")
            }
            _ => (
                vec![false; names.len()],
                "the cabinet's file table does not read as MS-CAB lays it out",
            ),
        };
        let unsafe_names: std::collections::HashSet<&str> = names
            .iter()
            .zip(&safe)
            .filter(|&(_, safe)| !safe)
            .map(|(name, _)| name.as_str())
            .collect();
        for name in &names {
            if self.stopped {
                return;
            }
            let Some(inner) = self.safe_name(outer, name) else {
                continue;
            };
            if unsafe_names.contains(name.as_str()) {
                self.note(
                    FindingId::ArchiveMalformed,
                    &inner,
                    format!("unreadable entry: {why}"),
                );
                continue;
            }
            let mut reader = match cabinet.read_file(name) {
                Ok(r) => r,
                Err(e) => {
                    self.note(
                        FindingId::ArchiveMalformed,
                        &inner,
                        format!("unreadable entry: {e}"),
                    );
                    continue;
                }
            };
            if let Some(bytes) = self.read_bounded(
                &inner,
                &mut reader,
                u64::MAX,
                data.len().max(1) as u64,
                limits,
            ) {
                self.add(inner, bytes, depth + 1, limits);
            }
        }
    }

    /// Electron's `app.asar`: a little-endian pickle header holding a JSON
    /// tree of files (`offset` as a string, `size`), then their bytes.
    fn asar(&mut self, outer: &str, data: &[u8], depth: usize, limits: &Limits) {
        let word = |at: usize| {
            data.get(at..at + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        };
        let parsed = (|| {
            let header_size = word(4)?;
            let json_len = word(12)?;
            let json = data.get(16..16usize.checked_add(json_len)?)?;
            let tree: serde_json::Value = serde_json::from_slice(json).ok()?;
            Some((8usize.checked_add(header_size)?, tree))
        })();
        let Some((base, tree)) = parsed else {
            self.note(
                FindingId::ArchiveMalformed,
                outer,
                "unreadable asar header".into(),
            );
            return;
        };
        // Depth-first over the JSON tree, bounded like any archive.
        let mut stack = vec![(String::new(), &tree, 0usize)];
        while let Some((prefix, node, level)) = stack.pop() {
            let Some(files) = node.get("files").and_then(|f| f.as_object()) else {
                continue;
            };
            for (name, entry) in files {
                let Some(rel) = self.safe_name(outer, &format!("{prefix}{name}")) else {
                    continue;
                };
                if entry.get("files").is_some() {
                    if level < 64 {
                        stack.push((format!("{prefix}{name}/"), entry, level + 1));
                    }
                } else if entry.get("link").is_some() {
                    self.note(
                        FindingId::ArchiveSymlink,
                        &rel,
                        "a link inside the archive: not followed".into(),
                    );
                } else if entry.get("unpacked").and_then(|u| u.as_bool()) == Some(true) {
                    // Kept beside the archive in `app.asar.unpacked/`.
                    continue;
                } else {
                    let offset = entry
                        .get("offset")
                        .and_then(|o| o.as_str())
                        .and_then(|o| o.parse::<usize>().ok());
                    let size = entry.get("size").and_then(|s| s.as_u64());
                    let bytes = offset.zip(size).and_then(|(o, n)| {
                        data.get(
                            base.checked_add(o)?..base.checked_add(o)?.checked_add(n as usize)?,
                        )
                    });
                    match bytes {
                        Some(b) if (b.len() as u64) <= limits.max_file_bytes => {
                            self.add(rel, b.to_vec(), depth + 1, limits)
                        }
                        Some(_) => self.note(
                            FindingId::ArchiveLimit,
                            &rel,
                            format!("larger than {} bytes: not analysed", limits.max_file_bytes),
                        ),
                        None => self.note(
                            FindingId::ArchiveMalformed,
                            &rel,
                            "offset or size outside the archive".into(),
                        ),
                    }
                }
            }
        }
    }

    /// The inner path for `name`, or `None` (with a finding) when it would
    /// climb out of the archive or is absolute.
    fn safe_name(&mut self, outer: &str, name: &str) -> Option<String> {
        let normal = name.replace('\\', "/");
        let climbs = normal.split('/').any(|c| c == "..");
        let absolute = normal.starts_with('/') || normal.get(1..2) == Some(":");
        if climbs || absolute {
            self.note(
                FindingId::ArchivePathTraversal,
                &format!("{outer}!/{name}"),
                format!("entry name {name:?} points outside the archive"),
            );
            return None;
        }
        Some(format!("{outer}!/{}", normal.trim_start_matches("./")))
    }

    /// Reads at most the file limit, reporting bombs (ratio) and oversize.
    fn read_bounded(
        &mut self,
        path: &str,
        reader: &mut dyn Read,
        declared: u64,
        compressed: u64,
        limits: &Limits,
    ) -> Option<Vec<u8>> {
        if self.stopped {
            return None;
        }
        let entry_cap = limits
            .max_file_bytes
            .min(compressed.saturating_mul(limits.max_ratio).max(1 << 20));
        let left = self.expansion_left(limits);
        let cap = entry_cap.min(left);
        let mut data = Vec::new();
        let read = reader.take(cap + 1).read_to_end(&mut data);
        self.expanded += data.len() as u64;
        if let Err(e) = read {
            self.note(
                FindingId::ArchiveMalformed,
                path,
                format!("unreadable entry: {e}"),
            );
            return None;
        }
        if data.len() as u64 <= cap {
            return Some(data);
        }
        if cap == left && left < entry_cap {
            self.stop(
                FindingId::ArchiveBomb,
                path,
                format!(
                    "nested archives expand more than {}x the {} bytes given ({} bytes unpacked): the rest is not unpacked",
                    limits.max_ratio, self.given, self.expanded
                ),
            );
        } else if cap < limits.max_file_bytes {
            self.note(
                FindingId::ArchiveBomb,
                path,
                format!(
                    "expands more than {}x ({} compressed bytes, {} declared): not unpacked",
                    limits.max_ratio, compressed, declared
                ),
            );
        } else {
            self.note(
                FindingId::ArchiveLimit,
                path,
                format!("larger than {} bytes: not analysed", limits.max_file_bytes),
            );
        }
        None
    }
}

/// Expansion always allowed, however small the artifact: a few kilobytes
/// of installer script may well unpack to a megabyte.
const MIN_EXPANSION_BYTES: u64 = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Container {
    Zip,
    Tar,
    Gzip,
    Asar,
    Msi,
    Cab,
}

/// An MSI stream name as written: characters 0x3800-0x47FF pack two
/// characters of a 64-letter alphabet, 0x4800-0x483F one, 0x4840 marks a
/// table (`!`); control characters, which name OLE property streams, are
/// written `[5]`.
fn msi_stream_name(raw: &str) -> String {
    const ALPHABET: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._";
    let mut out = String::new();
    for ch in raw.chars() {
        let c = ch as u32;
        match c {
            0x3800..0x4800 => {
                let v = c - 0x3800;
                out.push(ALPHABET[(v & 0x3f) as usize] as char);
                out.push(ALPHABET[((v >> 6) & 0x3f) as usize] as char);
            }
            0x4800..0x4840 => out.push(ALPHABET[(c - 0x4800) as usize] as char),
            0x4840 => out.push('!'),
            // `\x05SummaryInformation` and the like, shown as 7-Zip does.
            0..0x20 => out.push_str(&format!("[{c}]")),
            _ => out.push(ch),
        }
    }
    out
}

/// Which container `data` is, by content (the name only breaks ties).
fn container(name: &str, data: &[u8]) -> Option<Container> {
    if name.ends_with(".asar") && data.starts_with(&4u32.to_le_bytes()) {
        Some(Container::Asar)
    } else if data.starts_with(&[0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]) {
        Some(Container::Msi)
    } else if data.starts_with(b"MSCF") {
        Some(Container::Cab)
    } else if data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06") {
        Some(Container::Zip)
    } else if data.starts_with(&[0x1f, 0x8b]) {
        Some(Container::Gzip)
    } else if data.get(257..262) == Some(b"ustar") {
        Some(Container::Tar)
    } else {
        None
    }
}

/// Unpacks one file's bytes (an archive, or a file on its own) named `name`.
pub fn unpack_bytes(name: &str, data: Vec<u8>, limits: &Limits) -> Unpacked {
    let mut entries = Vec::new();
    let mut each = |e| entries.push(e);
    let mut unpacker = Unpacker::new(&mut each);
    unpacker.add_given(name.to_owned(), data, 0, limits);
    let findings = unpacker.findings;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Unpacked { entries, findings }
}

/// Unpacks a file, directory or archive, handing each file to `each` in
/// the order met (directories sorted by name), and returns the findings.
pub fn unpack_each(
    artifact: &Path,
    limits: &Limits,
    each: &mut dyn FnMut(Entry),
) -> Result<Vec<Finding>, UnpackError> {
    let mut out = Unpacker::new(each);
    let err = |e: std::io::Error| UnpackError {
        path: artifact.display().to_string(),
        message: e.to_string(),
    };
    let meta = std::fs::symlink_metadata(artifact).map_err(err)?;
    if meta.is_dir() {
        walk(artifact, artifact, &mut out, limits).map_err(err)?;
    } else {
        let name = artifact.file_name().map_or_else(
            || artifact.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        if meta.len() > limits.max_file_bytes {
            return Err(UnpackError {
                path: name,
                message: format!("larger than {} bytes", limits.max_file_bytes),
            });
        }
        let data = std::fs::read(artifact).map_err(err)?;
        out.add_given(name, data, 0, limits);
    }
    Ok(out.findings)
}

fn walk(root: &Path, dir: &Path, out: &mut Unpacker<'_>, limits: &Limits) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let kind = e.file_type()?;
        if kind.is_symlink() {
            out.note(
                FindingId::ArchiveSymlink,
                &rel,
                "a link in the release tree: not followed".into(),
            );
        } else if kind.is_dir() {
            walk(root, &path, out, limits)?;
        } else if e.metadata()?.len() > limits.max_file_bytes {
            out.note(
                FindingId::ArchiveLimit,
                &rel,
                format!("larger than {} bytes: not analysed", limits.max_file_bytes),
            );
        } else {
            out.add_given(rel, std::fs::read(&path)?, 1, limits);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An asar archive as Electron writes it.
    fn asar(tree: &str, data: &[u8]) -> Vec<u8> {
        let json = tree.as_bytes();
        let mut payload = (json.len() as u32).to_le_bytes().to_vec();
        payload.extend_from_slice(json);
        while !payload.len().is_multiple_of(4) {
            payload.push(0);
        }
        let mut header = (payload.len() as u32).to_le_bytes().to_vec();
        header.extend(payload);
        let mut out = 4u32.to_le_bytes().to_vec();
        out.extend((header.len() as u32).to_le_bytes());
        out.extend(header);
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn asar_files_links_and_traversal() {
        let tree = r#"{"files":{"dist":{"files":{"main.js":{"offset":"0","size":5},"icon.ico":{"offset":"5","size":3}}},"node.dll":{"size":9,"unpacked":true},"up":{"link":"../x"},"..":{"files":{"evil.js":{"offset":"0","size":1}}},"bad.js":{"offset":"99","size":4}}}"#;
        let out = unpack_bytes(
            "app.asar",
            asar(tree, b"hello\x00\x01\x02"),
            &Limits::default(),
        );
        let paths: Vec<&str> = out.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "app.asar",
                "app.asar!/dist/icon.ico",
                "app.asar!/dist/main.js"
            ]
        );
        assert_eq!(out.entries[2].data, b"hello");
        let ids: Vec<FindingId> = out.findings.iter().map(|f| f.id).collect();
        for id in [
            FindingId::ArchiveSymlink,
            FindingId::ArchivePathTraversal,
            FindingId::ArchiveMalformed,
        ] {
            assert!(ids.contains(&id), "{id}: {ids:?}");
        }
    }

    #[test]
    fn msi_stream_names_decode() {
        assert_eq!(msi_stream_name("\u{3ACA}"), "AB");
        assert_eq!(msi_stream_name("\u{4840}\u{480A}x"), "!Ax");
    }

    #[test]
    fn msi_streams_and_their_cabinets() {
        use std::io::Write;
        let mut builder = cab::CabinetBuilder::new();
        builder
            .add_folder(cab::CompressionType::MsZip)
            .add_file("ffmpeg.dll");
        let mut writer = builder.build(std::io::Cursor::new(Vec::new())).unwrap();
        while let Some(mut file) = writer.next_file().unwrap() {
            file.write_all(b"MZ pretend dll").unwrap();
        }
        let cabinet = writer.finish().unwrap().into_inner();
        let mut msi = cfb::CompoundFile::create(std::io::Cursor::new(Vec::new())).unwrap();
        msi.create_stream("/\u{3ACA}.cab")
            .unwrap()
            .write_all(&cabinet)
            .unwrap();
        msi.create_stream("/\u{4840}Property")
            .unwrap()
            .write_all(b"table")
            .unwrap();
        msi.flush().unwrap();
        let bytes = msi.into_inner().into_inner();
        let out = unpack_bytes("setup.msi", bytes, &Limits::default());
        let paths: Vec<&str> = out.entries.iter().map(|e| e.path.as_str()).collect();
        assert!(
            paths.contains(&"setup.msi!/AB.cab!/ffmpeg.dll"),
            "{paths:?}"
        );
        assert!(paths.contains(&"setup.msi!/!Property"), "{paths:?}");
        let dll = out
            .entries
            .iter()
            .find(|e| e.path.ends_with("ffmpeg.dll"))
            .unwrap();
        assert_eq!(dll.data, b"MZ pretend dll");
    }

    #[test]
    fn a_zip_bomb_is_reported_not_expanded() {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file("zeros.bin", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut zip, &vec![0u8; 64 << 20]).unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        assert!(bytes.len() < 1 << 20, "the archive is small");
        let out = unpack_bytes("bomb.zip", bytes, &Limits::default());
        assert!(
            out.findings.iter().any(|f| f.id == FindingId::ArchiveBomb),
            "{:?}",
            out.findings
        );
        assert_eq!(out.entries.len(), 1, "only the archive itself");
    }

    /// A zip of 16 copies of `inner`, each deflated.
    fn zip_of_copies(inner: &[u8], name: &str) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for i in 0..16 {
            zip.start_file(
                format!("{i:x}{name}"),
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            std::io::Write::write_all(&mut zip, inner).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    /// Four layers of sixteen copies: each entry's own ratio is modest,
    /// the whole expands 65,536-fold.
    pub(crate) fn nested_bomb() -> Vec<u8> {
        let mut layer = zip_of_copies(&vec![0u8; 4 << 20], ".bin");
        for _ in 0..3 {
            layer = zip_of_copies(&layer, ".zip");
        }
        layer
    }

    #[test]
    fn a_nested_bomb_stops_at_the_ratio_of_the_whole() {
        let bomb = nested_bomb();
        assert!(bomb.len() < 64 << 10, "{} bytes", bomb.len());
        let given = bomb.len() as u64;
        let limits = Limits::default();
        let out = unpack_bytes("42.zip", bomb, &limits);
        // Each leaf passes its own ratio and is refused; the whole stops
        // once the artifact's budget is spent, and says so once.
        assert!(
            out.findings.iter().all(|f| f.id == FindingId::ArchiveBomb),
            "{:#?}",
            out.findings
        );
        let stops: Vec<_> = out
            .findings
            .iter()
            .filter(|f| f.message.contains("nested archives"))
            .collect();
        assert_eq!(stops.len(), 1, "{:#?}", out.findings);
        let budget = given * limits.max_ratio;
        assert!(
            out.findings.len() as u64 <= budget / (1 << 20) + 1,
            "{} findings",
            out.findings.len()
        );
        let unpacked: u64 = out.entries.iter().map(|e| e.data.len() as u64).sum();
        // Within one entry of the budget: the stop is at the limit.
        assert!(
            unpacked <= given * limits.max_ratio + (4 << 20),
            "{unpacked} bytes unpacked from {given}"
        );
    }
}
