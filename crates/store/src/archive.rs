//! The event archive: per tenant and hour, a segment file of zstd frames,
//! each frame one batch's events of that hour in the [`codec`] encoding.
//!
//! A segment's committed length lives in the database and moves in the
//! same transaction as the rows that point into it; on open, anything past
//! it (a batch that crashed before its commit) is cut off. So a crash never
//! leaves a half-written batch visible.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use turncoat_core::Event;

use crate::codec::{Decoder, EncodedEvents, Projection, decode_records};
use crate::{Result, StoreError};

/// zstd's first fast level (-1): level 1 was about twice level 3's speed
/// for a slightly larger archive, and -1 took a further 3.5% off ingest's
/// processor time for an archive a fifth larger (34 → 41 MB per million
/// ECS events; the whole store 73 → 80 MB). Ingest is CPU-bound and disks
/// are cheap (see BENCHMARKS.md).
const LEVEL: i32 = -1;
/// Largest frame read back: bounds memory when reading a hostile archive.
const MAX_FRAME_BYTES: u64 = 512 << 20;
/// Frame buffers larger than this after an hour's frame (a batch with all
/// its events in one hour) are freed rather than held for the next.
const MAX_KEPT_BUFFER: usize = 16 << 20;

pub struct Archive {
    root: PathBuf,
    frames: FrameWriter,
}

/// Compresses one hour of a batch's events into a frame, with its
/// compression state and buffers reused across frames. Both backends
/// write the same frames: files here, rows in PostgreSQL.
pub struct FrameWriter {
    compressor: zstd::bulk::Compressor<'static>,
    /// One hour's records, then its frame.
    body: Vec<u8>,
    frame: Vec<u8>,
}

impl FrameWriter {
    pub fn new() -> std::io::Result<FrameWriter> {
        Ok(FrameWriter {
            compressor: zstd::bulk::Compressor::new(LEVEL)?,
            body: Vec::new(),
            frame: Vec::new(),
        })
    }

    /// The frame of `events`' records of `hour`; valid until the next call.
    pub fn compress_hour(&mut self, hour: i64, events: &EncodedEvents) -> std::io::Result<&[u8]> {
        for buf in [&mut self.body, &mut self.frame] {
            if buf.capacity() > MAX_KEPT_BUFFER {
                *buf = Vec::new();
            }
        }
        events.gather(hour, &mut self.body);
        self.frame.clear();
        self.frame
            .reserve(zstd::zstd_safe::compress_bound(self.body.len()));
        self.compressor
            .compress_to_buffer(&self.body, &mut self.frame)?;
        Ok(&self.frame)
    }
}

/// Decompresses one frame (at most [`MAX_FRAME_BYTES`]) onto `out`.
pub fn decompress_frame(frame: impl Read, out: &mut Vec<u8>) -> std::result::Result<(), String> {
    zstd::stream::read::Decoder::new(frame)
        .map_err(|e| e.to_string())?
        .single_frame()
        .take(MAX_FRAME_BYTES)
        .read_to_end(out)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The `index`-th event of a decompressed frame.
pub fn nth_event(raw: &[u8], index: u32) -> std::result::Result<Event, String> {
    let mut d = Decoder::new(raw);
    for _ in 0..index {
        match d.skip() {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err(format!("fewer than {index} events")),
        }
    }
    match d.next_event() {
        Some(Ok(e)) => Ok(e),
        Some(Err(e)) => Err(format!("event {index}: {e}")),
        None => Err(format!("no event {index}")),
    }
}

/// A write into `path` failed.
fn write_err(path: &Path, e: std::io::Error) -> StoreError {
    if e.kind() == std::io::ErrorKind::StorageFull {
        return StoreError::DiskFull {
            file: Some(path.display().to_string()),
        };
    }
    err(path, e)
}

fn err(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Archive {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

impl Archive {
    pub fn new(root: PathBuf) -> Result<Archive> {
        fs::create_dir_all(&root).map_err(|e| err(&root, e))?;
        let frames = FrameWriter::new().map_err(|e| err(&root, e))?;
        Ok(Archive { root, frames })
    }

    pub fn segment_path(&self, tenant_id: i64, hour: i64) -> PathBuf {
        self.root
            .join(tenant_id.to_string())
            .join(format!("{hour}.zst"))
    }

    /// Appends `events`' records of `hour` as one frame at `offset` (the
    /// segment's committed length); anything after it is an aborted
    /// batch's leftovers and is overwritten. Returns the frame's length.
    pub fn append_hour(
        &mut self,
        tenant_id: i64,
        hour: i64,
        offset: u64,
        events: &EncodedEvents,
    ) -> Result<u64> {
        let path = self.segment_path(tenant_id, hour);
        let frame = self
            .frames
            .compress_hour(hour, events)
            .map_err(|e| err(&path, e))?;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
        }
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| err(&path, e))?;
        f.set_len(offset).map_err(|e| err(&path, e))?;
        f.seek(SeekFrom::Start(offset)).map_err(|e| err(&path, e))?;
        f.write_all(frame).map_err(|e| write_err(&path, e))?;
        Ok(frame.len() as u64)
    }

    /// Cuts a segment back to its committed length.
    pub fn truncate(&self, tenant_id: i64, hour: i64, len: u64) -> Result<()> {
        let path = self.segment_path(tenant_id, hour);
        match fs::metadata(&path) {
            Ok(m) if m.len() > len => {
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| err(&path, e))?;
                f.set_len(len).map_err(|e| err(&path, e))
            }
            _ => Ok(()),
        }
    }

    /// Reads the `index`-th event of the frame at `offset`.
    pub fn read_event(
        &self,
        tenant_id: i64,
        hour: i64,
        offset: u64,
        committed: u64,
        index: u32,
    ) -> Result<Event> {
        let path = self.segment_path(tenant_id, hour);
        if offset >= committed {
            return Err(err(
                &path,
                format!("offset {offset} is past the committed length {committed}"),
            ));
        }
        let mut f = File::open(&path).map_err(|e| err(&path, e))?;
        f.seek(SeekFrom::Start(offset)).map_err(|e| err(&path, e))?;
        let mut raw = Vec::new();
        decompress_frame(f.take(committed - offset), &mut raw)
            .and_then(|()| nth_event(&raw, index))
            .map_err(|e| err(&path, format!("frame at {offset}: {e}")))
    }

    /// Reads every event of a segment up to its committed length. `raw`
    /// holds the decompressed segment; a caller reading many segments
    /// passes the same buffer, so that it grows once, not per segment.
    pub fn read_segment(
        &self,
        tenant_id: i64,
        hour: i64,
        committed: u64,
        raw: &mut Vec<u8>,
        what: Projection<'_>,
        each: &mut dyn FnMut(Event),
    ) -> Result<()> {
        let path = self.segment_path(tenant_id, hour);
        let f = File::open(&path).map_err(|e| err(&path, e))?;
        raw.clear();
        zstd::stream::read::Decoder::new(f.take(committed))
            .map_err(|e| err(&path, e))?
            .read_to_end(raw)
            .map_err(|e| err(&path, e))?;
        decode_records(raw, what, each).map_err(|e| err(&path, e))
    }
}
