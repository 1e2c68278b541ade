//! Lockfiles, dependency manifests and SBOMs read as the list of packages
//! a project ships: each with its ecosystem, name and exact version, so
//! that they can be matched against OSV records offline.
//!
//! Only exact versions count. A requirement such as `requests>=2` names
//! no version that could be looked up; it is counted as unpinned.

use serde_json::Value as Json;
use turncoat_core::{Ecosystem, InventoryChange, InventoryItem};

use crate::input::Input;
use crate::{Collect, Location, ReadIssue, ReadOptions};

/// Larger files are refused: real lockfiles of large monorepos stay well
/// below this.
pub const MAX_MANIFEST_BYTES: usize = 64 << 20;
/// Packages one file may list before the rest is skipped.
pub const MAX_PACKAGES: usize = 500_000;
/// npm v1 lockfiles nest dependencies; deeper nesting is not followed.
const MAX_NESTING: usize = 64;

/// The kinds of file read here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ManifestKind {
    CargoLock,
    /// `package-lock.json` or `npm-shrinkwrap.json`, lockfile v1 to v3.
    NpmLock,
    /// Yarn classic (v1) and Berry (v2+) lockfiles.
    YarnLock,
    PnpmLock,
    Requirements,
    PoetryLock,
    PipfileLock,
    GoSum,
    GoMod,
    GemfileLock,
    ComposerLock,
    CycloneDx,
    Spdx,
    /// An npm package's own `package.json`: its name and version (what is
    /// installed under `node_modules`, or the package being vetted).
    PackageJson,
    /// A Python distribution's `PKG-INFO` or `*.dist-info/METADATA`.
    PythonMetadata,
    /// A crate's own `Cargo.toml`.
    CargoToml,
    /// A Python project's `pyproject.toml` (PEP 621 or Poetry).
    Pyproject,
    /// setuptools' declarative `setup.cfg`.
    SetupCfg,
    /// setuptools' `setup.py`, whose `install_requires` list is read as
    /// text, never run.
    SetupPy,
}

impl ManifestKind {
    pub const ALL: [ManifestKind; 19] = [
        ManifestKind::CargoLock,
        ManifestKind::NpmLock,
        ManifestKind::YarnLock,
        ManifestKind::PnpmLock,
        ManifestKind::Requirements,
        ManifestKind::PoetryLock,
        ManifestKind::PipfileLock,
        ManifestKind::GoSum,
        ManifestKind::GoMod,
        ManifestKind::GemfileLock,
        ManifestKind::ComposerLock,
        ManifestKind::CycloneDx,
        ManifestKind::Spdx,
        ManifestKind::PackageJson,
        ManifestKind::PythonMetadata,
        ManifestKind::CargoToml,
        ManifestKind::Pyproject,
        ManifestKind::SetupCfg,
        ManifestKind::SetupPy,
    ];

    /// Recognises a file by its name and, for SBOMs, the start of its
    /// content.
    pub fn recognise(path: &str, head: &[u8]) -> Option<ManifestKind> {
        let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            "cargo.lock" => ManifestKind::CargoLock,
            "package-lock.json" | "npm-shrinkwrap.json" => ManifestKind::NpmLock,
            "yarn.lock" => ManifestKind::YarnLock,
            "pnpm-lock.yaml" => ManifestKind::PnpmLock,
            "poetry.lock" => ManifestKind::PoetryLock,
            "pipfile.lock" => ManifestKind::PipfileLock,
            "go.sum" => ManifestKind::GoSum,
            "go.mod" => ManifestKind::GoMod,
            "gemfile.lock" => ManifestKind::GemfileLock,
            "composer.lock" => ManifestKind::ComposerLock,
            "package.json" => ManifestKind::PackageJson,
            "pkg-info" => ManifestKind::PythonMetadata,
            "metadata" if path.contains(".dist-info") => ManifestKind::PythonMetadata,
            "cargo.toml" => ManifestKind::CargoToml,
            "pyproject.toml" => ManifestKind::Pyproject,
            "setup.cfg" => ManifestKind::SetupCfg,
            "setup.py" => ManifestKind::SetupPy,
            n if (n.starts_with("requirements") || n.starts_with("constraints"))
                && n.ends_with(".txt") =>
            {
                ManifestKind::Requirements
            }
            n if n.ends_with(".json") => {
                let head = &head[..head.len().min(4096)];
                let has = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
                if has(b"\"bomFormat\"") && has(b"CycloneDX") {
                    ManifestKind::CycloneDx
                } else if has(b"\"spdxVersion\"") {
                    ManifestKind::Spdx
                } else {
                    return None;
                }
            }
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ManifestKind::CargoLock => "Cargo.lock",
            ManifestKind::NpmLock => "package-lock.json",
            ManifestKind::YarnLock => "yarn.lock",
            ManifestKind::PnpmLock => "pnpm-lock.yaml",
            ManifestKind::Requirements => "requirements.txt",
            ManifestKind::PoetryLock => "poetry.lock",
            ManifestKind::PipfileLock => "Pipfile.lock",
            ManifestKind::GoSum => "go.sum",
            ManifestKind::GoMod => "go.mod",
            ManifestKind::GemfileLock => "Gemfile.lock",
            ManifestKind::ComposerLock => "composer.lock",
            ManifestKind::CycloneDx => "CycloneDX",
            ManifestKind::Spdx => "SPDX",
            ManifestKind::PackageJson => "package.json",
            ManifestKind::PythonMetadata => "PKG-INFO",
            ManifestKind::CargoToml => "Cargo.toml",
            ManifestKind::Pyproject => "pyproject.toml",
            ManifestKind::SetupCfg => "setup.cfg",
            ManifestKind::SetupPy => "setup.py",
        }
    }
}

/// What one file pins.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Manifest {
    pub packages: Vec<InventoryItem>,
    /// Requirements naming no exact version (`pkg>=1.0`, `^1.2` ranges in
    /// a manifest): they cannot be matched.
    pub unpinned: usize,
    /// Entries that did not read, with where they are.
    pub skipped: Vec<ReadIssue>,
    /// Every dependency the file declares for installing, with its
    /// requirement as written (`^4.17.0`, `>=2.0; python_version<"3.8"`,
    /// empty for none): what a release adds is named even when nothing
    /// pins it. Development-only dependencies are left out.
    pub declared: Vec<Declared>,
}

/// A dependency a manifest declares.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Declared {
    pub name: String,
    pub requirement: String,
}

impl Manifest {
    fn declare(&mut self, name: &str, requirement: &str) {
        let name = name.trim();
        if !name.is_empty() && self.declared.len() < MAX_PACKAGES {
            self.declared.push(Declared {
                name: name.to_owned(),
                requirement: requirement.trim().to_owned(),
            });
        }
    }

    /// Declares a PEP 508 requirement (`name[extra] >=1.0; marker`).
    fn declare_pep508(&mut self, spec: &str) {
        let spec = spec.trim();
        let end = spec
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .unwrap_or(spec.len());
        self.declare(&spec[..end], &spec[end..]);
    }

    fn push(&mut self, ecosystem: Ecosystem, name: &str, version: &str) {
        let (name, version) = (name.trim(), version.trim());
        if name.is_empty() || version.is_empty() || self.packages.len() >= MAX_PACKAGES {
            return;
        }
        self.packages.push(InventoryItem {
            name: name.to_owned(),
            version: version.to_owned(),
            vendor: None,
            platform: None,
            ecosystem,
        });
    }

    /// Sorted and without repeats: lockfiles list a package once per
    /// dependent in some formats.
    fn finish(mut self) -> Manifest {
        self.packages.sort_by(|a, b| {
            (a.ecosystem.as_str(), &a.name, &a.version).cmp(&(
                b.ecosystem.as_str(),
                &b.name,
                &b.version,
            ))
        });
        self.packages.dedup();
        self.declared.sort();
        self.declared.dedup();
        self
    }
}

/// Reads the packages `bytes` pins. `name` is the file's path, used in
/// errors. An error means the file as a whole did not read.
pub fn read(kind: ManifestKind, name: &str, bytes: &[u8]) -> Result<Manifest, ReadIssue> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ReadIssue::new(
            name,
            Location::Unknown,
            format!(
                "{} bytes: larger than the {MAX_MANIFEST_BYTES}-byte limit for a manifest",
                bytes.len()
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ReadIssue::new(
            name,
            Location::Offset(e.valid_up_to() as u64),
            "not UTF-8 text",
        )
    })?;
    let mut m = Manifest::default();
    match kind {
        ManifestKind::CargoLock => toml_packages(name, text, Ecosystem::Crates, &mut m)?,
        ManifestKind::PoetryLock => toml_packages(name, text, Ecosystem::Pypi, &mut m)?,
        ManifestKind::NpmLock => npm_lock(&json(name, text)?, &mut m),
        ManifestKind::YarnLock => yarn_lock(name, text, &mut m),
        ManifestKind::PnpmLock => pnpm_lock(name, text, &mut m)?,
        ManifestKind::Requirements => requirements(name, text, &mut m),
        ManifestKind::PipfileLock => pipfile_lock(&json(name, text)?, &mut m),
        ManifestKind::GoSum => go_sum(name, text, &mut m),
        ManifestKind::GoMod => go_mod(text, &mut m),
        ManifestKind::GemfileLock => gemfile_lock(text, &mut m),
        ManifestKind::ComposerLock => composer_lock(&json(name, text)?, &mut m),
        ManifestKind::CycloneDx | ManifestKind::Spdx => sbom(kind, name, bytes, &mut m)?,
        ManifestKind::PackageJson => {
            let doc = json(name, text)?;
            let field = |k: &str| doc.get(k).and_then(Json::as_str);
            if let (Some(n), Some(v)) = (field("name"), field("version")) {
                npm_version(n, v, &mut m);
            }
            // Peers are installed too (npm 7 on).
            for section in ["dependencies", "optionalDependencies", "peerDependencies"] {
                for (dep, req) in doc
                    .get(section)
                    .and_then(Json::as_object)
                    .into_iter()
                    .flatten()
                {
                    m.declare(dep, req.as_str().unwrap_or_default());
                }
            }
        }
        ManifestKind::PythonMetadata => python_metadata(text, &mut m),
        ManifestKind::CargoToml => cargo_toml(name, text, &mut m)?,
        ManifestKind::Pyproject => pyproject(name, text, &mut m)?,
        ManifestKind::SetupCfg => setup_cfg(text, &mut m),
        ManifestKind::SetupPy => setup_py(text, &mut m),
    }
    Ok(m.finish())
}

fn json(name: &str, text: &str) -> Result<Json, ReadIssue> {
    serde_json::from_str(text).map_err(|e| {
        ReadIssue::new(
            name,
            Location::Line(e.line() as u64),
            format!("invalid JSON: {e}"),
        )
    })
}

fn toml_table(name: &str, text: &str) -> Result<toml::Table, ReadIssue> {
    toml::from_str(text).map_err(|e| {
        let location = e
            .span()
            .map(|s| Location::Line(crate::input::line_of_offset(text.as_bytes(), s.start)))
            .unwrap_or_default();
        ReadIssue::new(name, location, format!("invalid TOML: {}", e.message()))
    })
}

/// Cargo.lock and poetry.lock: `[[package]]` tables with `name` and
/// `version`. Packages from a path, a git repository or a URL are not
/// registry packages and are left out.
fn toml_packages(
    name: &str,
    text: &str,
    ecosystem: Ecosystem,
    m: &mut Manifest,
) -> Result<(), ReadIssue> {
    let doc = toml_table(name, text)?;
    let packages = doc.get("package").and_then(|p| p.as_array());
    for (i, p) in packages.into_iter().flatten().enumerate() {
        let get = |k: &str| p.get(k).and_then(|v| v.as_str());
        let from_registry = match ecosystem {
            // No `source` is a workspace member or a path dependency.
            Ecosystem::Crates => get("source")
                .is_some_and(|s| s.starts_with("registry+") || s.starts_with("sparse+")),
            _ => !matches!(
                p.get("source")
                    .and_then(|s| s.get("type"))
                    .and_then(|t| t.as_str()),
                Some("git" | "directory" | "file" | "url")
            ),
        };
        match (get("name"), get("version")) {
            (Some(n), Some(v)) if from_registry => m.push(ecosystem, n, v),
            (Some(_), Some(_)) => {}
            _ => m.skipped.push(ReadIssue::new(
                name,
                Location::Record(i as u64 + 1),
                "[[package]] without a name or version",
            )),
        }
    }
    Ok(())
}

/// package-lock.json / npm-shrinkwrap.json: v2 and v3 list `packages` by
/// install path (`node_modules/a/node_modules/b`); v1 nests
/// `dependencies`.
fn npm_lock(doc: &Json, m: &mut Manifest) {
    if let Some(packages) = doc.get("packages").and_then(Json::as_object) {
        for (path, p) in packages {
            // "" is the project itself; paths outside node_modules are
            // workspace members; links point at them.
            let Some(at) = path.rfind("node_modules/") else {
                continue;
            };
            if p.get("link").and_then(Json::as_bool) == Some(true) {
                continue;
            }
            let install_name = &path[at + "node_modules/".len()..];
            let name = p.get("name").and_then(Json::as_str).unwrap_or(install_name);
            if let Some(version) = p.get("version").and_then(Json::as_str) {
                npm_version(name, version, m);
            }
        }
    } else if let Some(deps) = doc.get("dependencies").and_then(Json::as_object) {
        npm_v1(deps, 0, m);
    }
}

fn npm_v1(deps: &serde_json::Map<String, Json>, depth: usize, m: &mut Manifest) {
    if depth > MAX_NESTING {
        return;
    }
    for (name, d) in deps {
        if let Some(version) = d.get("version").and_then(Json::as_str) {
            npm_version(name, version, m);
        }
        if let Some(nested) = d.get("dependencies").and_then(Json::as_object) {
            npm_v1(nested, depth + 1, m);
        }
    }
}

/// An npm version, or an alias (`npm:real-name@1.2.3`); git, file and
/// tarball sources have no registry version.
fn npm_version(name: &str, version: &str, m: &mut Manifest) {
    if let Some(alias) = version.strip_prefix("npm:") {
        if let Some((real, v)) = split_npm_spec(alias) {
            m.push(Ecosystem::Npm, real, v);
        }
    } else if !version.contains(':') && !version.contains('/') {
        m.push(Ecosystem::Npm, name, version);
    }
}

/// `name@spec` or `@scope/name@spec`, split at the `@` that ends the name.
fn split_npm_spec(spec: &str) -> Option<(&str, &str)> {
    let from = usize::from(spec.starts_with('@'));
    let at = spec[from..].find('@')? + from;
    Some((&spec[..at], &spec[at + 1..]))
}

/// yarn.lock: blocks headed by the specs they resolve
/// (`"a@^1.0.0", a@~1.2:`), each with a `version` line; classic writes
/// `version "1.2.3"`, Berry `version: 1.2.3`.
fn yarn_lock(file: &str, text: &str, m: &mut Manifest) {
    let mut current: Option<(String, u64)> = None;
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            current = None;
            let Some(header) = line.strip_suffix(':') else {
                continue;
            };
            if header.starts_with("__metadata") {
                continue;
            }
            let first = header
                .split(',')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"');
            match split_npm_spec(first) {
                Some((name, range)) => {
                    // Aliases resolve another package; workspaces and local
                    // paths are not registry packages.
                    let name = match range.strip_prefix("npm:").and_then(split_npm_spec) {
                        Some((real, _)) => real,
                        None => name,
                    };
                    let local = ["workspace:", "link:", "file:", "portal:", "patch:"]
                        .iter()
                        .any(|p| range.starts_with(p));
                    if !local {
                        current = Some((name.to_owned(), line_no));
                    }
                }
                None => m.skipped.push(ReadIssue::new(
                    file,
                    Location::Line(line_no),
                    format!("a block header that names no package: {first:?}"),
                )),
            }
            continue;
        }
        // Only the block's own `version`, indented one level.
        let indent = line.len() - line.trim_start().len();
        if indent != 2 {
            continue;
        }
        let field = line.trim_start();
        if let Some(v) = field
            .strip_prefix("version:")
            .or_else(|| field.strip_prefix("version "))
            && let Some((name, _)) = current.take()
        {
            let v = v.trim().trim_matches('"');
            if v.contains(':') || v.contains('/') {
                continue;
            }
            m.push(Ecosystem::Npm, &name, v);
        }
    }
}

/// pnpm-lock.yaml: the keys of `packages`, spelled `/name/1.2.3` (v5),
/// `/name@1.2.3(peer@1)` (v6) or `name@1.2.3` (v9); an entry's own `name`
/// and `version` win where present (tarball and git dependencies).
fn pnpm_lock(file: &str, text: &str, m: &mut Manifest) -> Result<(), ReadIssue> {
    let doc: yaml_serde::Value = yaml_serde::from_str(text).map_err(|e| {
        ReadIssue::new(
            file,
            e.location()
                .map_or(Location::Unknown, |l| Location::Line(l.line() as u64)),
            format!("invalid YAML: {e}"),
        )
    })?;
    let Some(packages) = doc.get("packages").and_then(|p| p.as_mapping()) else {
        return Ok(());
    };
    // Written as a number (5.4) or a string ('6.0').
    let lockfile_version = doc.get("lockfileVersion").and_then(|v| {
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    });
    let v5 = lockfile_version.is_some_and(|v| v < 6.0);
    for (key, value) in packages {
        let Some(key) = key.as_str() else { continue };
        let field = |k: &str| value.get(k).and_then(|v| v.as_str());
        if let (Some(n), Some(v)) = (field("name"), field("version")) {
            npm_version(n, v, m);
            continue;
        }
        let key = key.strip_prefix('/').unwrap_or(key);
        let key = key.split('(').next().unwrap_or(key);
        let parsed = if v5 {
            // The version is the segment after the name, peers after `_`.
            let name_end = key
                .match_indices('/')
                .nth(usize::from(key.starts_with('@')))
                .map(|(i, _)| i);
            name_end.map(|i| {
                let v = &key[i + 1..];
                (&key[..i], v.split('_').next().unwrap_or(v))
            })
        } else {
            split_npm_spec(key)
        };
        match parsed {
            Some((name, version)) => npm_version(name, version, m),
            None => m.skipped.push(ReadIssue::new(
                file,
                Location::Unknown,
                format!("package key names no version: {key:?}"),
            )),
        }
    }
    Ok(())
}

/// requirements.txt: `name[extras]==version` pins, with comments,
/// continuation lines, environment markers and per-line options.
fn requirements(file: &str, text: &str, m: &mut Manifest) {
    let mut logical = String::new();
    let mut start = 0u64;
    for (i, raw) in text.lines().enumerate() {
        if logical.is_empty() {
            start = i as u64 + 1;
        }
        match raw.strip_suffix('\\') {
            Some(part) => {
                logical.push_str(part);
                logical.push(' ');
                continue;
            }
            None => logical.push_str(raw),
        }
        requirement(file, &logical, start, m);
        logical.clear();
    }
    if !logical.is_empty() {
        requirement(file, &logical, start, m);
    }
}

fn requirement(file: &str, line: &str, line_no: u64, m: &mut Manifest) {
    // A comment starts at `#` at the start or after whitespace.
    let mut end = line.len();
    for (i, _) in line.match_indices('#') {
        if i == 0 || line[..i].ends_with(char::is_whitespace) {
            end = i;
            break;
        }
    }
    let line = line[..end].trim();
    // Options (`-r other.txt`, `--index-url`, `-e .`) are not packages;
    // per-requirement options (`--hash=...`) follow the requirement.
    if line.is_empty() || line.starts_with('-') {
        return;
    }
    let line = line.split(" --").next().unwrap_or(line);
    let line = line.split(';').next().unwrap_or(line).trim();
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        m.skipped.push(ReadIssue::new(
            file,
            Location::Line(line_no),
            format!("not a requirement: {line:?}"),
        ));
        return;
    }
    let mut rest = line[name_end..].trim_start();
    if rest.starts_with('[') {
        rest = rest.find(']').map_or("", |i| rest[i + 1..].trim_start());
    }
    m.declare(name, rest);
    // Exactly one `==` (or `===`) clause without a wildcard is a pin.
    let pinned = rest
        .strip_prefix("===")
        .or_else(|| rest.strip_prefix("=="))
        .map(str::trim)
        .filter(|v| !v.is_empty() && !v.contains([',', '*', ' ', '@']));
    match pinned {
        Some(v) => m.push(Ecosystem::Pypi, name, v),
        None => m.unpinned += 1,
    }
}

/// Pipfile.lock: `default` and `develop` (and any other package
/// category) map names to `{"version": "==1.2.3"}`.
fn pipfile_lock(doc: &Json, m: &mut Manifest) {
    let Some(sections) = doc.as_object() else {
        return;
    };
    for (section, packages) in sections {
        if section == "_meta" {
            continue;
        }
        for (name, p) in packages.as_object().into_iter().flatten() {
            match p
                .get("version")
                .and_then(Json::as_str)
                .and_then(|v| v.strip_prefix("=="))
            {
                Some(v) => m.push(Ecosystem::Pypi, name, v),
                // git and path packages carry no version.
                None => m.unpinned += 1,
            }
        }
    }
}

/// go.sum: `module version hash` lines. Lines for `version/go.mod` only
/// record a module graph that was read, not code that is built; they are
/// left out.
fn go_sum(file: &str, text: &str, m: &mut Manifest) {
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_whitespace();
        match (fields.next(), fields.next(), fields.next()) {
            (Some(module), Some(version), Some(_)) => {
                if !version.ends_with("/go.mod") {
                    m.push(Ecosystem::Go, module, version);
                }
            }
            (None, ..) => {}
            _ => m.skipped.push(ReadIssue::new(
                file,
                Location::Line(i as u64 + 1),
                "not a `module version hash` line",
            )),
        }
    }
}

/// go.mod: `require` directives, single or in a block, with `replace`
/// directives that point at another module version applied.
fn go_mod(text: &str, m: &mut Manifest) {
    let mut required: Vec<(String, String)> = Vec::new();
    let mut replaced: Vec<(String, Option<(String, String)>)> = Vec::new();
    let mut block: Option<&str> = None;
    for raw in text.lines() {
        let line = raw.split("//").next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if block.is_some() && line == ")" {
            block = None;
            continue;
        }
        let (directive, rest) = match block {
            Some(d) => (d, line),
            None => {
                let (d, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                if rest.trim() == "(" {
                    block = Some(d);
                    continue;
                }
                (d, rest.trim())
            }
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        match directive {
            "require" => {
                if let [module, version, ..] = words[..] {
                    required.push((module.to_owned(), version.to_owned()));
                }
            }
            "replace" => {
                if let Some(arrow) = words.iter().position(|w| *w == "=>") {
                    let target = match &words[arrow + 1..] {
                        [module, version] => Some((module.to_string(), version.to_string())),
                        // A local directory: no registry version.
                        _ => None,
                    };
                    if let Some(module) = words.first() {
                        replaced.push((module.to_string(), target));
                    }
                }
            }
            _ => {}
        }
    }
    for (module, version) in required {
        match replaced.iter().find(|(from, _)| *from == module) {
            Some((_, Some((to, v)))) => m.push(Ecosystem::Go, to, v),
            Some((_, None)) => {}
            None => m.push(Ecosystem::Go, &module, &version),
        }
    }
}

/// Gemfile.lock: under `GEM` → `specs:`, each gem at four spaces as
/// `name (version)` or `name (version-platform)`; its own dependencies
/// follow at six. `GIT` and `PATH` sections are not from a registry.
fn gemfile_lock(text: &str, m: &mut Manifest) {
    let mut in_gem = false;
    for line in text.lines() {
        if !line.starts_with(' ') {
            in_gem = line.trim() == "GEM";
            continue;
        }
        if !in_gem || !line.starts_with("    ") || line.starts_with("     ") {
            continue;
        }
        if let Some((name, rest)) = line.trim().split_once(" (")
            && let Some(version) = rest.strip_suffix(')')
        {
            let version = version.split('-').next().unwrap_or(version);
            m.push(Ecosystem::Rubygems, name, version);
        }
    }
}

/// composer.lock: `packages` and `packages-dev` arrays of
/// `{"name", "version"}`; branch versions (`dev-main`) are not releases.
fn composer_lock(doc: &Json, m: &mut Manifest) {
    for section in ["packages", "packages-dev"] {
        for p in doc
            .get(section)
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(name), Some(version)) = (
                p.get("name").and_then(Json::as_str),
                p.get("version").and_then(Json::as_str),
            ) else {
                continue;
            };
            if version.starts_with("dev-") || version.ends_with("-dev") {
                m.unpinned += 1;
            } else {
                m.push(Ecosystem::Packagist, name, version.trim_start_matches('v'));
            }
        }
    }
}

/// Core metadata (`Name:` and `Version:` headers, before the body).
fn python_metadata(text: &str, m: &mut Manifest) {
    let mut name = None;
    let mut version = None;
    for line in text.lines().take_while(|l| !l.is_empty()) {
        if let Some(v) = line.strip_prefix("Name:") {
            name = Some(v.trim());
        } else if let Some(v) = line.strip_prefix("Version:") {
            version = Some(v.trim());
        } else if let Some(spec) = line.strip_prefix("Requires-Dist:") {
            m.declare_pep508(spec);
        }
    }
    if let (Some(n), Some(v)) = (name, version) {
        m.push(Ecosystem::Pypi, n, v);
    }
}

/// `[package]` name and version; a version inherited from the workspace
/// (`version.workspace = true`) is not known here.
fn cargo_toml(file: &str, text: &str, m: &mut Manifest) -> Result<(), ReadIssue> {
    let doc = toml_table(file, text)?;
    let package = doc.get("package");
    let field = |k: &str| package.and_then(|p| p.get(k)).and_then(|v| v.as_str());
    if let (Some(n), Some(v)) = (field("name"), field("version")) {
        m.push(Ecosystem::Crates, n, v);
    }
    let targets = doc.get("target").and_then(|t| t.as_table());
    let tables = ["dependencies", "build-dependencies"]
        .into_iter()
        .flat_map(|section| {
            let top = doc.get(section);
            let per_target = targets
                .into_iter()
                .flat_map(|t| t.values())
                .filter_map(move |t| t.get(section));
            top.into_iter().chain(per_target)
        });
    for table in tables.filter_map(|t| t.as_table()) {
        for (dep, spec) in table {
            let requirement = match spec {
                toml::Value::String(v) => v.clone(),
                toml::Value::Table(t) => ["version", "git", "path"]
                    .iter()
                    .find_map(|k| {
                        t.get(*k)
                            .and_then(|v| v.as_str())
                            .map(|v| format!("{k} {v}"))
                    })
                    .unwrap_or_default(),
                _ => String::new(),
            };
            m.declare(dep, &requirement);
        }
    }
    Ok(())
}

/// PEP 621 `[project] dependencies` and Poetry's
/// `[tool.poetry.dependencies]` (Python itself is not a dependency).
fn pyproject(file: &str, text: &str, m: &mut Manifest) -> Result<(), ReadIssue> {
    let doc = toml_table(file, text)?;
    let project = doc.get("project");
    for spec in project
        .and_then(|p| p.get("dependencies"))
        .and_then(|d| d.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
    {
        m.declare_pep508(spec);
    }
    let poetry = doc
        .get("tool")
        .and_then(|t| t.get("poetry"))
        .and_then(|p| p.get("dependencies"))
        .and_then(|d| d.as_table());
    for (dep, spec) in poetry.into_iter().flatten() {
        if dep.eq_ignore_ascii_case("python") {
            continue;
        }
        let requirement = match spec {
            toml::Value::String(v) => v.clone(),
            toml::Value::Table(t) => t
                .get("version")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        };
        m.declare(dep, &requirement);
    }
    Ok(())
}

/// `install_requires` under `[options]`: on the line, or one a line below.
fn setup_cfg(text: &str, m: &mut Manifest) {
    let mut in_options = false;
    let mut in_list = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_options = trimmed.eq_ignore_ascii_case("[options]");
            in_list = false;
            continue;
        }
        if !in_options || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if in_list && line.starts_with([' ', '\t']) && !trimmed.is_empty() {
            m.declare_pep508(trimmed);
            continue;
        }
        in_list = false;
        if let Some((key, value)) = trimmed.split_once('=')
            && key.trim() == "install_requires"
        {
            in_list = true;
            if !value.trim().is_empty() {
                m.declare_pep508(value);
            }
        }
    }
}

/// The quoted strings of `install_requires=[...]`, read as text.
fn setup_py(text: &str, m: &mut Manifest) {
    let Some(at) = text.find("install_requires") else {
        return;
    };
    let rest = &text[at..];
    let (Some(open), Some(close)) = (rest.find('['), rest.find(']')) else {
        return;
    };
    if close < open {
        return;
    }
    for (i, part) in rest[open + 1..close].split(['"', '\'']).enumerate() {
        // Odd pieces are inside quotes.
        if i % 2 == 1 {
            m.declare_pep508(part);
        }
    }
}

/// CycloneDX and SPDX, through the inventory readers: the components
/// that carry a package URL are packages of its ecosystem.
fn sbom(kind: ManifestKind, name: &str, bytes: &[u8], m: &mut Manifest) -> Result<(), ReadIssue> {
    let mut input = Input::from_bytes(name, bytes.to_vec());
    let options = ReadOptions {
        host: Some(name.to_owned()),
        ..ReadOptions::default()
    };
    let mut sink = Collect::default();
    if kind == ManifestKind::CycloneDx {
        crate::sbom::read_cyclonedx(&mut input, &options, &mut sink)?;
    } else {
        crate::sbom::read_spdx(&mut input, &options, &mut sink)?;
    }
    m.skipped.append(&mut sink.skipped);
    for record in sink.inventory() {
        if let InventoryChange::Snapshot(items) = &record.change {
            for item in items.iter().filter(|i| i.ecosystem != Ecosystem::Generic) {
                m.push(item.ecosystem, &item.name, &item.version);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pins(kind: ManifestKind, text: &str) -> Vec<(Ecosystem, String, String)> {
        read(kind, "f", text.as_bytes())
            .unwrap()
            .packages
            .into_iter()
            .map(|p| (p.ecosystem, p.name, p.version))
            .collect()
    }

    fn pin(eco: Ecosystem, name: &str, version: &str) -> (Ecosystem, String, String) {
        (eco, name.into(), version.into())
    }

    #[test]
    fn recognises_by_name_and_content() {
        let r = ManifestKind::recognise;
        assert_eq!(r("a.zip!/x/Cargo.lock", b""), Some(ManifestKind::CargoLock));
        assert_eq!(
            r("requirements-dev.txt", b""),
            Some(ManifestKind::Requirements)
        );
        assert_eq!(
            r("bom.json", br#"{"bomFormat": "CycloneDX"}"#),
            Some(ManifestKind::CycloneDx)
        );
        assert_eq!(
            r("x.json", br#"{"spdxVersion":"SPDX-2.3"}"#),
            Some(ManifestKind::Spdx)
        );
        assert_eq!(r("x/package.json", b""), Some(ManifestKind::PackageJson));
        assert_eq!(r("tsconfig.json", br#"{"name":"x"}"#), None);
        assert_eq!(r("readme.txt", b""), None);
    }

    #[test]
    fn cargo_lock_registry_packages_only() {
        let text = r#"
version = 3

[[package]]
name = "rustdecimal"
version = "1.23.1"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "my-app"
version = "0.1.0"

[[package]]
name = "forked"
version = "0.2.0"
source = "git+https://example.com/forked#abc"
"#;
        assert_eq!(
            pins(ManifestKind::CargoLock, text),
            [pin(Ecosystem::Crates, "rustdecimal", "1.23.1")]
        );
        let err = read(ManifestKind::CargoLock, "Cargo.lock", b"[[package]\nname=").unwrap_err();
        assert_eq!(err.file, "Cargo.lock");
        assert_eq!(err.location, Location::Line(1));
    }

    #[test]
    fn npm_lockfiles_v1_to_v3() {
        let v3 = r#"{"lockfileVersion":3,"packages":{
            "":{"name":"app","version":"1.0.0"},
            "node_modules/@babel/core":{"version":"7.20.0"},
            "node_modules/a/node_modules/b":{"version":"2.0.0"},
            "node_modules/sw-cjs":{"name":"string-width","version":"4.2.3"},
            "node_modules/ws-link":{"resolved":"packages/ws","link":true},
            "packages/ws":{"version":"0.0.1"},
            "node_modules/g":{"version":"git+ssh://git@github.com/x/g.git#abc"}}}"#;
        assert_eq!(
            pins(ManifestKind::NpmLock, v3),
            [
                pin(Ecosystem::Npm, "@babel/core", "7.20.0"),
                pin(Ecosystem::Npm, "b", "2.0.0"),
                pin(Ecosystem::Npm, "string-width", "4.2.3"),
            ]
        );
        let v1 = r#"{"lockfileVersion":1,"dependencies":{
            "a":{"version":"1.0.0","dependencies":{"b":{"version":"2.0.0"}}},
            "c":{"version":"npm:real@3.0.0"}}}"#;
        assert_eq!(
            pins(ManifestKind::NpmLock, v1),
            [
                pin(Ecosystem::Npm, "a", "1.0.0"),
                pin(Ecosystem::Npm, "b", "2.0.0"),
                pin(Ecosystem::Npm, "real", "3.0.0"),
            ]
        );
    }

    #[test]
    fn yarn_classic_and_berry() {
        let classic = r#"# yarn lockfile v1


"@babel/code-frame@^7.0.0", "@babel/code-frame@^7.10.4":
  version "7.10.4"
  resolved "https://registry.yarnpkg.com/@babel/code-frame/-/code-frame-7.10.4.tgz"
  dependencies:
    "@babel/highlight" "^7.10.4"

string-width-cjs@npm:string-width@^4.2.0:
  version "4.2.3"

left-pad@^1.3.0:
  version "1.3.0"
"#;
        assert_eq!(
            pins(ManifestKind::YarnLock, classic),
            [
                pin(Ecosystem::Npm, "@babel/code-frame", "7.10.4"),
                pin(Ecosystem::Npm, "left-pad", "1.3.0"),
                pin(Ecosystem::Npm, "string-width", "4.2.3"),
            ]
        );
        let berry = r#"__metadata:
  version: 6

"app@workspace:.":
  version: 0.0.0-use.local

"lodash@npm:^4.17.20":
  version: 4.17.21
  resolution: "lodash@npm:4.17.21"
"#;
        assert_eq!(
            pins(ManifestKind::YarnLock, berry),
            [pin(Ecosystem::Npm, "lodash", "4.17.21")]
        );
    }

    #[test]
    fn pnpm_v5_v6_v9_keys() {
        let v5 = r#"lockfileVersion: 5.4
packages:
  /left-pad/1.3.0:
    resolution: {integrity: sha512-x}
  /@types/node/18.0.0_typescript@4.9.0:
    dev: true
"#;
        assert_eq!(
            pins(ManifestKind::PnpmLock, v5),
            [
                pin(Ecosystem::Npm, "@types/node", "18.0.0"),
                pin(Ecosystem::Npm, "left-pad", "1.3.0"),
            ]
        );
        let text = r#"lockfileVersion: '6.0'
packages:
  /@types/node@18.0.0:
    dev: true
  /react-dom@18.2.0(react@18.2.0):
    dev: false
  ms@2.1.3:
    resolution: {integrity: sha512-y}
  '@scope/pkg@1.0.0':
    resolution: {integrity: sha512-z}
  github.com/x/y/abc:
    name: y
    version: 0.1.0
"#;
        assert_eq!(
            pins(ManifestKind::PnpmLock, text),
            [
                pin(Ecosystem::Npm, "@scope/pkg", "1.0.0"),
                pin(Ecosystem::Npm, "@types/node", "18.0.0"),
                pin(Ecosystem::Npm, "ms", "2.1.3"),
                pin(Ecosystem::Npm, "react-dom", "18.2.0"),
                pin(Ecosystem::Npm, "y", "0.1.0"),
            ]
        );
        let err = read(ManifestKind::PnpmLock, "pnpm-lock.yaml", b"packages: [\n").unwrap_err();
        assert!(matches!(err.location, Location::Line(_)), "{err}");
    }

    #[test]
    fn declared_dependencies_of_every_manifest_kind() {
        let declared = |kind, path, text: &str| -> Vec<(String, String)> {
            read(kind, path, text.as_bytes())
                .unwrap()
                .declared
                .into_iter()
                .map(|d| (d.name, d.requirement))
                .collect()
        };
        let pair = |n: &str, r: &str| (n.to_owned(), r.to_owned());
        assert_eq!(
            declared(
                ManifestKind::PackageJson,
                "package.json",
                r#"{"name":"x","version":"1.0.0","dependencies":{"flatmap-stream":"^0.1.1"},"devDependencies":{"mocha":"*"},"optionalDependencies":{"fsevents":"~2"}}"#
            ),
            [pair("flatmap-stream", "^0.1.1"), pair("fsevents", "~2")]
        );
        assert_eq!(
            declared(
                ManifestKind::PythonMetadata,
                "x.dist-info/METADATA",
                "Name: x\nVersion: 1\nRequires-Dist: requests (>=2.0)\nRequires-Dist: colorama; sys_platform == \"win32\"\n\nbody Requires-Dist: nope\n"
            ),
            [
                pair("colorama", "; sys_platform == \"win32\""),
                pair("requests", "(>=2.0)")
            ]
        );
        assert_eq!(
            declared(
                ManifestKind::CargoToml,
                "Cargo.toml",
                "[package]\nname='x'\nversion='1.0.0'\n[dependencies]\nserde = '1'\nlocal = { path = '../l' }\n[dev-dependencies]\nproptest = '1'\n[target.'cfg(unix)'.build-dependencies]\ncc = { version = '1.0' }\n"
            ),
            [
                pair("cc", "version 1.0"),
                pair("local", "path ../l"),
                pair("serde", "1")
            ]
        );
        assert_eq!(
            declared(
                ManifestKind::Pyproject,
                "pyproject.toml",
                "[project]\nname='x'\ndependencies=['httpx>=0.27', 'rich']\n[tool.poetry.dependencies]\npython='^3.9'\nclick={version='^8'}\n"
            ),
            [
                pair("click", "^8"),
                pair("httpx", ">=0.27"),
                pair("rich", "")
            ]
        );
        assert_eq!(
            declared(
                ManifestKind::SetupCfg,
                "setup.cfg",
                "[metadata]\nname = x\n[options]\ninstall_requires =\n    six>=1.5\n    idna\npackages = find:\n"
            ),
            [pair("idna", ""), pair("six", ">=1.5")]
        );
        assert_eq!(
            declared(
                ManifestKind::SetupPy,
                "setup.py",
                "setup(name='x', install_requires=[\"six >= 1.5\", 'requests'], tests_require=['pytest'])"
            ),
            [pair("requests", ""), pair("six", ">= 1.5")]
        );
        assert_eq!(
            declared(
                ManifestKind::Requirements,
                "requirements.txt",
                "Django>=4.2\n"
            ),
            [pair("Django", ">=4.2")]
        );
    }

    #[test]
    fn requirements_pins_and_the_rest() {
        let text = "# comment\n\
            requests==2.25.1  # pinned\n\
            Django[bcrypt] == 3.2.0 ; python_version >= \"3.8\"\n\
            urllib3===1.26.4 \\\n    --hash=sha256:abc\n\
            flask>=2.0\n\
            numpy==1.*\n\
            -r other.txt\n\
            -e .\n\
            pkg @ https://example.com/pkg.tar.gz\n";
        let m = read(
            ManifestKind::Requirements,
            "requirements.txt",
            text.as_bytes(),
        )
        .unwrap();
        let got: Vec<_> = m
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("Django", "3.2.0"),
                ("requests", "2.25.1"),
                ("urllib3", "1.26.4")
            ]
        );
        assert_eq!(m.unpinned, 3);
    }

    #[test]
    fn poetry_and_pipfile() {
        let poetry = r#"
[[package]]
name = "certifi"
version = "2022.12.7"

[[package]]
name = "local"
version = "0.1"
[package.source]
type = "directory"
url = "../local"
"#;
        assert_eq!(
            pins(ManifestKind::PoetryLock, poetry),
            [pin(Ecosystem::Pypi, "certifi", "2022.12.7")]
        );
        let pipfile = r#"{"_meta":{"hash":{}},"default":{"requests":{"version":"==2.25.1"}},
            "develop":{"pytest":{"version":"==7.0.0"},"mine":{"git":"https://x/mine.git"}}}"#;
        let m = read(
            ManifestKind::PipfileLock,
            "Pipfile.lock",
            pipfile.as_bytes(),
        )
        .unwrap();
        assert_eq!(m.packages.len(), 2);
        assert_eq!(m.unpinned, 1);
    }

    #[test]
    fn go_sum_and_go_mod() {
        let sum = "golang.org/x/text v0.3.7 h1:abc=\n\
                   golang.org/x/text v0.3.7/go.mod h1:def=\n\
                   golang.org/x/net v0.0.1/go.mod h1:ghi=\n\
                   broken-line\n";
        let m = read(ManifestKind::GoSum, "go.sum", sum.as_bytes()).unwrap();
        assert_eq!(m.packages.len(), 1);
        assert_eq!(m.packages[0].version, "v0.3.7");
        assert_eq!(m.skipped[0].location, Location::Line(4));
        let gomod = "module example.com/app\n\ngo 1.21\n\n\
            require github.com/a/b v1.2.3\n\
            require (\n\tgithub.com/c/d v0.1.0 // indirect\n\tgithub.com/e/f v2.0.0+incompatible\n\tgithub.com/local/x v1.0.0\n)\n\
            replace github.com/c/d => github.com/fork/d v0.1.1\n\
            replace github.com/local/x => ../x\n";
        assert_eq!(
            pins(ManifestKind::GoMod, gomod),
            [
                pin(Ecosystem::Go, "github.com/a/b", "v1.2.3"),
                pin(Ecosystem::Go, "github.com/e/f", "v2.0.0+incompatible"),
                pin(Ecosystem::Go, "github.com/fork/d", "v0.1.1"),
            ]
        );
    }

    #[test]
    fn gemfile_and_composer() {
        let gemfile = "GIT\n  remote: https://x/y.git\n  specs:\n    y (0.1.0)\n\n\
            GEM\n  remote: https://rubygems.org/\n  specs:\n    nokogiri (1.13.10-x86_64-linux)\n      racc (~> 1.4)\n    racc (1.6.2)\n\n\
            PLATFORMS\n  x86_64-linux\n";
        assert_eq!(
            pins(ManifestKind::GemfileLock, gemfile),
            [
                pin(Ecosystem::Rubygems, "nokogiri", "1.13.10"),
                pin(Ecosystem::Rubygems, "racc", "1.6.2"),
            ]
        );
        let composer = r#"{"packages":[{"name":"monolog/monolog","version":"v2.3.5"},
            {"name":"x/y","version":"dev-main"}],"packages-dev":[{"name":"phpunit/phpunit","version":"9.5.10"}]}"#;
        assert_eq!(
            pins(ManifestKind::ComposerLock, composer),
            [
                pin(Ecosystem::Packagist, "monolog/monolog", "2.3.5"),
                pin(Ecosystem::Packagist, "phpunit/phpunit", "9.5.10"),
            ]
        );
    }

    #[test]
    fn a_package_names_itself() {
        assert_eq!(
            pins(
                ManifestKind::PackageJson,
                r#"{"name":"@s/x","version":"1.0.0","dependencies":{"y":"^2"}}"#
            ),
            [pin(Ecosystem::Npm, "@s/x", "1.0.0")]
        );
        assert_eq!(
            pins(
                ManifestKind::PythonMetadata,
                "Metadata-Version: 2.1\nName: ctx\nVersion: 0.2.6\n\nVersion: 9\n"
            ),
            [pin(Ecosystem::Pypi, "ctx", "0.2.6")]
        );
        assert_eq!(
            pins(
                ManifestKind::CargoToml,
                "[package]\nname = \"rustdecimal\"\nversion = \"1.23.1\"\n"
            ),
            [pin(Ecosystem::Crates, "rustdecimal", "1.23.1")]
        );
        assert!(
            pins(
                ManifestKind::CargoToml,
                "[package]\nname = \"x\"\nversion.workspace = true\n"
            )
            .is_empty()
        );
        assert_eq!(
            ManifestKind::recognise("w.whl!/ctx-0.2.6.dist-info/METADATA", b""),
            Some(ManifestKind::PythonMetadata)
        );
        assert_eq!(ManifestKind::recognise("src/metadata", b""), None);
    }

    #[test]
    fn hostile_input_is_refused_with_the_file_named() {
        let big = vec![b'a'; MAX_MANIFEST_BYTES + 1];
        assert!(read(ManifestKind::GoSum, "go.sum", &big).is_err());
        let err = read(ManifestKind::NpmLock, "x/package-lock.json", b"\xff\xfe").unwrap_err();
        assert_eq!(err.file, "x/package-lock.json");
        let err = read(
            ManifestKind::ComposerLock,
            "composer.lock",
            b"{\n\"packages\": [",
        )
        .unwrap_err();
        assert_eq!(err.location, Location::Line(2));
    }

    /// The public CycloneDX and SPDX examples read as packages of their
    /// ecosystems.
    #[test]
    fn shared_sboms() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sbom");
        let juice = dir.join("cyclonedx/SBOM/juice-shop/v11.1.2/bom.json");
        let Ok(bytes) = std::fs::read(&juice) else {
            println!("skipped: {} is absent", juice.display());
            return;
        };
        let kind = ManifestKind::recognise("bom.json", &bytes).unwrap();
        let m = read(kind, "bom.json", &bytes).unwrap();
        assert!(m.packages.len() > 500, "{}", m.packages.len());
        assert!(m.packages.iter().all(|p| p.ecosystem == Ecosystem::Npm));
        assert!(m.packages.iter().any(|p| p.name == "express"));
        let spdx = dir.join("spdx/software_example11_spdx2.3_sbom.spdx.json");
        if let Ok(bytes) = std::fs::read(&spdx) {
            let m = read(ManifestKind::Spdx, "x.spdx.json", &bytes).unwrap();
            assert!(
                m.packages.iter().any(|p| p.ecosystem == Ecosystem::Crates),
                "{m:?}"
            );
        }
    }
}
