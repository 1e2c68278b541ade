//! Progress reporting, implemented by the front end (a terminal progress
//! bar, or nothing).

/// Receives progress of long operations.
pub trait Progress {
    /// A new phase: `what` is shown to the user, `total` in `unit`s when known.
    fn start(&self, what: &str, total: Option<u64>);
    fn advance(&self, n: u64);
    fn finish(&self);
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}
