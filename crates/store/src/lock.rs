//! The data directory's writer lock: one writer at a time, across
//! processes and within one.
//!
//! Every state-changing command holds it from before it reads what it
//! builds on (the intel it matches with, the fingerprints it skips by)
//! until after its last commit, so any two writers run as if one had
//! run after the other: a retro-hunt sees every sighting committed
//! before it, a later ingest matches live with the new intel, and a file
//! claimed by one ingest is found complete by the next. Readers take no
//! lock: SQLite's WAL gives them a consistent snapshot, and the archive is
//! read only up to the committed lengths the database records.
//!
//! The lock is an advisory `flock` on `writer.lock`, so it is released by
//! the kernel when its holder dies, even by `kill -9`. The file's content
//! names the holder, for the message a waiting writer prints.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use turncoat_core::Time;

use crate::{Result, StoreError};

/// The lock file inside a data directory.
const LOCK_FILE: &str = "writer.lock";

/// How long between two attempts while another writer holds the lock.
const POLL: Duration = Duration::from_millis(25);

/// How a writer waits for the lock.
pub struct LockWait<'a> {
    /// Give up after this long, with [`StoreError::Locked`].
    pub timeout: Duration,
    /// What this writer is doing, recorded for others to read
    /// (`turncoat ingest`).
    pub purpose: &'a str,
    /// Told who holds the lock when the wait starts, then about every
    /// thirty seconds while it lasts.
    pub on_wait: &'a mut dyn FnMut(&LockHolder, Duration),
}

/// Who holds a data directory's writer lock, as it recorded itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockHolder {
    pub pid: u32,
    pub purpose: String,
    pub since: String,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pid == 0 {
            return f.write_str("another writer");
        }
        write!(
            f,
            "`{}` (pid {}) since {}",
            self.purpose, self.pid, self.since
        )
    }
}

/// The held lock; released when dropped.
#[derive(Debug)]
pub struct WriterLock {
    file: File,
}

impl WriterLock {
    /// Takes `dir`'s writer lock, waiting as `wait` says.
    pub fn acquire(dir: &Path, wait: &mut LockWait<'_>) -> Result<WriterLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| lock_error(&path, e))?;
        let started = Instant::now();
        let mut next_report = Duration::ZERO;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(lock_error(&path, e)),
            }
            let waited = started.elapsed();
            let holder = read_holder(&mut file);
            if waited >= wait.timeout {
                return Err(StoreError::Locked {
                    dir: dir.display().to_string(),
                    holder,
                    waited_s: waited.as_secs(),
                });
            }
            if waited >= next_report {
                (wait.on_wait)(&holder, wait.timeout);
                next_report = waited + Duration::from_secs(30);
            }
            std::thread::sleep(POLL.min(wait.timeout - waited));
        }
        let record = format!(
            "pid={}\npurpose={}\nsince={}\n",
            std::process::id(),
            wait.purpose.replace('\n', " "),
            Time::now()
        );
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(record.as_bytes()))
            .map_err(|e| lock_error(&path, e))?;
        Ok(WriterLock { file })
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        // The next holder overwrites it; clearing it keeps a stale name
        // from being shown should it read between our unlock and its write.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

fn read_holder(file: &mut File) -> LockHolder {
    let mut text = String::new();
    if file.seek(SeekFrom::Start(0)).is_err()
        || (&mut *file).take(4096).read_to_string(&mut text).is_err()
    {
        return LockHolder::default();
    }
    let mut holder = LockHolder::default();
    for line in text.lines() {
        match line.split_once('=') {
            Some(("pid", v)) => holder.pid = v.parse().unwrap_or(0),
            Some(("purpose", v)) => holder.purpose = v.to_owned(),
            Some(("since", v)) => holder.since = v.to_owned(),
            _ => {}
        }
    }
    holder
}

fn lock_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::File {
        path: path.display().to_string(),
        source,
    }
}
