//! The operations the CLI and the server share: ingest files into a
//! tenant, import intel and retro-hunt, compute exposure.
//!
//! Data flow of one ingest: reader → [`Event`](turncoat_core::Event)s and
//! inventory records → observables, live indicator matches and sighting
//! rollups → one [`Batch`](turncoat_store::Batch) per few thousand records,
//! committed atomically (archive frames, sightings, ledger, findings).
//! Intel import stores indicators and advisories, then retro-hunts what
//! is new or changed: indicators against every tenant's observable
//! dictionary and sightings, advisories against every tenant's ledger.

#![forbid(unsafe_code)]

pub mod alerts;
pub mod beacons;
pub mod campaign;
pub mod drift;
pub mod export;
pub mod exposure;
pub mod hunt;
pub mod ingest;
pub mod intel;
pub mod notify;
pub mod progress;
pub mod retro;
pub mod rules;
pub mod triage;

pub use exposure::{ExposureRow, exposure};
pub use ingest::{
    BATCH_RECORDS, FileReport, FileStatus, IngestOptions, IngestReport, InputIssue, NamedFile,
    PendingScope, ingest, ingest_named,
};
pub use intel::{HandOff, IntelReport, QueuedRetro, RetroPlan, import_intel, retro_hunt};
pub use progress::{NoProgress, Progress};

/// Why an operation failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] turncoat_store::StoreError),
    #[error("{path}: {message}")]
    Input { path: String, message: String },
    /// An allowlist or network value that is not one.
    #[error(transparent)]
    InvalidEntry(#[from] beacons::InvalidEntry),
    #[error(transparent)]
    Triage(#[from] triage::TriageError),
}

pub type Result<T> = std::result::Result<T, EngineError>;

/// What every ingested event is matched against: the stored indicators as
/// the live index, the advisories and the Sigma rules. Loaded once per
/// run; a server or cluster worker keeps one across runs in a
/// [`ContentCache`].
pub struct Content {
    /// The store's [`intel_key`](turncoat_store::Store::intel_key) when it
    /// was read: indicators, advisories and rules change it.
    pub key: u64,
    pub indicators: turncoat_detect::IndicatorIndex,
    pub advisories: turncoat_detect::AdvisoryIndex,
    pub rules: turncoat_sigma::RuleSet,
}

impl Content {
    pub fn load(store: &mut dyn turncoat_store::Store) -> Result<Content> {
        // Read first: a change made while loading leaves this key behind,
        // so the next check loads again (never the reverse).
        let key = store.intel_key()?;
        Ok(Content {
            key,
            indicators: load_intel(store)?,
            advisories: turncoat_detect::AdvisoryIndex::new(store.advisories()?),
            rules: rules::load(store)?,
        })
    }
}

/// The content a long-running process loaded last, loaded again once the
/// store's key has moved past it. Shared by the threads that ingest.
#[derive(Default)]
pub struct ContentCache(std::sync::Mutex<Option<std::sync::Arc<Content>>>);

impl ContentCache {
    /// The current content: one read of the key while it holds.
    pub fn current(
        &self,
        store: &mut dyn turncoat_store::Store,
    ) -> Result<std::sync::Arc<Content>> {
        let key = store.intel_key()?;
        if let Some(content) = self.held().filter(|c| c.key == key) {
            return Ok(content);
        }
        // Loaded without the lock held: two threads may both load once.
        let content = std::sync::Arc::new(Content::load(store)?);
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(content.clone());
        Ok(content)
    }

    fn held(&self) -> Option<std::sync::Arc<Content>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The saved live index in a data directory's cache.
const INDEX_CACHE: &str = "indicator-index";

/// The stored indicators as the live index, loaded once per run: every
/// step of the run that matches intel shares it. The index saved by an
/// earlier run is used while the intel is unchanged (a million
/// indicators load in a tenth of the time their rows take to read);
/// otherwise it is built from the rows and, by a writer, saved.
pub fn load_intel(
    store: &mut dyn turncoat_store::Store,
) -> Result<turncoat_detect::IndicatorIndex> {
    let key = store.intel_key()?;
    // An unreadable or damaged cache only costs the rebuild.
    if let Ok(Some(bytes)) = store.read_cache(INDEX_CACHE)
        && let Ok(index) = turncoat_detect::IndicatorIndex::from_snapshot(&bytes, key)
    {
        return Ok(index);
    }
    let index = build_intel(store)?;
    if let Err(e) = store.write_cache(INDEX_CACHE, &index.snapshot(key))
        && !matches!(e, turncoat_store::StoreError::ReadOnly)
    {
        eprintln!("warning: the indicator index was not saved ({e}); the next run builds it again");
    }
    Ok(index)
}

/// The live index built from the stored rows, not saved.
pub fn build_intel(store: &dyn turncoat_store::Store) -> Result<turncoat_detect::IndicatorIndex> {
    let mut index = turncoat_detect::IndicatorIndex::default();
    index.reserve(store.count_indicators()? as usize);
    store.scan_indicators(&mut |i| {
        index.insert(i);
    })?;
    Ok(index)
}

/// Test hook for crash recovery: aborts the process, as `kill -9` would
/// (no destructors, nothing flushed), when `TURNCOAT_CRASH_AT` names
/// `point`. Compiled into debug builds only, so a release binary never
/// dies on an environment variable.
pub fn crash_point(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os("TURNCOAT_CRASH_AT").is_some_and(|v| v == point) {
        eprintln!("crash point {point}: aborting");
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

/// Every file under `paths`, by the walker's rules (`turncoat_walk`), for
/// commands that read intel whole or not at all: a path that could not be
/// read is an error naming it.
/// Every indicator in intel files or directories (advisories' included),
/// for matching without a data directory (`hunt`, `vet --intel`).
pub fn load_indicators(paths: &[std::path::PathBuf]) -> Result<Vec<turncoat_core::Indicator>> {
    let mut indicators = Vec::new();
    for path in walk_inputs(paths)? {
        let mut input = turncoat_formats::Input::open(&path).map_err(|e| input_error(&path, e))?;
        let (_, mut found) = turncoat_formats::intel::read_intel(
            &mut input,
            None,
            &turncoat_formats::Limits::default(),
        )
        .map_err(|e| input_error(&path, e))?;
        for a in &mut found.advisories {
            found.indicators.append(&mut a.indicators);
        }
        indicators.extend(found.indicators);
    }
    Ok(indicators)
}

/// An input that could not be opened or read, named once (readers'
/// errors often name the file already).
fn input_error(path: &std::path::Path, e: impl std::fmt::Display) -> EngineError {
    let path = path.display().to_string();
    let message = e.to_string();
    let message = match message.strip_prefix(&path) {
        Some(rest) => rest.trim_start_matches([':', ' ']).to_owned(),
        None => message,
    };
    EngineError::Input { path, message }
}

/// OSV records read from files, directories and zips.
pub struct OsvRecords {
    pub advisories: Vec<turncoat_core::Advisory>,
    /// Records that did not read, and why.
    pub rejected: Vec<String>,
}

/// Reads OSV records for matching without a data directory (`vet --osv`):
/// inside a directory only `.json` and `.zip` files count; files named
/// outright always do.
pub fn load_osv(paths: &[std::path::PathBuf]) -> Result<OsvRecords> {
    use turncoat_formats::intel::{IntelFormat, read_intel};
    let mut records = OsvRecords {
        advisories: Vec::new(),
        rejected: Vec::new(),
    };
    // OSV's per-ecosystem exports run to gigabytes unpacked (npm's holds
    // every malicious-package record).
    let limits = turncoat_formats::Limits {
        max_document_bytes: 4 << 30,
        ..turncoat_formats::Limits::default()
    };
    for path in walk_inputs(paths)? {
        let is_record_file = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("json") || e.eq_ignore_ascii_case("zip"));
        if !is_record_file && !paths.contains(&path) {
            continue;
        }
        let mut input = turncoat_formats::Input::open(&path).map_err(|e| input_error(&path, e))?;
        let (_, mut intel) = read_intel(&mut input, Some(IntelFormat::Osv), &limits)
            .map_err(|e| input_error(&path, e))?;
        records.advisories.append(&mut intel.advisories);
        records
            .rejected
            .extend(intel.rejected.iter().map(ToString::to_string));
    }
    Ok(records)
}

pub fn walk_inputs(paths: &[std::path::PathBuf]) -> Result<Vec<std::path::PathBuf>> {
    let walk = turncoat_walk::walk(paths, &turncoat_walk::WalkOptions::all_files());
    if let Some(s) = walk.skipped.first() {
        return Err(EngineError::Input {
            path: s.path.display().to_string(),
            message: s.reason.clone(),
        });
    }
    Ok(walk.paths().map(std::path::Path::to_owned).collect())
}
