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

pub mod beacons;
pub mod campaign;
pub mod drift;
pub mod exposure;
pub mod hunt;
pub mod ingest;
pub mod intel;
pub mod progress;
pub mod retro;
pub mod rules;

pub use exposure::{ExposureRow, exposure};
pub use ingest::{BATCH_RECORDS, FileReport, FileStatus, IngestOptions, IngestReport, ingest};
pub use intel::{IntelReport, import_intel};
pub use progress::{NoProgress, Progress};

/// Why an operation failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] turncoat_store::StoreError),
    #[error("{path}: {message}")]
    Input { path: String, message: String },
}

pub type Result<T> = std::result::Result<T, EngineError>;

/// Who did it, for the audit log.
pub const ACTOR: &str = "cli";
