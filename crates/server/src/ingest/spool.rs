//! Request bodies onto disk, decompressed, in committed chunks.
//!
//! A body is read as it arrives and written to spool files, so memory
//! stays bounded whatever its size. A line-delimited JSON body is cut at
//! line boundaries into chunks of about [`IngestLimits::chunk_bytes`],
//! each queued for commit as soon as it is written; a slow stream is
//! also cut when it pauses at a line boundary, so its events are
//! committed within seconds. Any other body (Zeek TSV with its header, a
//! pretty-printed SBOM, EVTX) is one chunk: cutting it would lose what
//! its head says about the rest. Cuts depend on content only (save for a
//! pause), so a body sent again is cut the same way and its chunks are
//! recognised as already ingested.

use std::io;
use std::pin::Pin;

use async_compression::tokio::bufread::{GzipDecoder, ZstdDecoder};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use futures_util::TryStreamExt;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::io::StreamReader;

use super::queue::IngestLimits;
use crate::Problem;

/// A decoded request body, readable in buffered pieces.
pub(crate) type BodyReader = Pin<Box<dyn AsyncBufRead + Send>>;

/// The body, undone of its `Content-Encoding` (gzip or zstd).
pub(crate) fn decoded(headers: &HeaderMap, body: Body) -> Result<BodyReader, Problem> {
    let raw = BufReader::with_capacity(
        256 * 1024,
        StreamReader::new(body.into_data_stream().map_err(io::Error::other)),
    );
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    Ok(match encoding.as_deref() {
        None | Some("identity") => Box::pin(raw),
        Some("gzip" | "x-gzip") => {
            let mut decoder = GzipDecoder::new(raw);
            decoder.multiple_members(true);
            Box::pin(BufReader::with_capacity(256 * 1024, decoder))
        }
        Some("zstd") => {
            let mut decoder = ZstdDecoder::new(raw);
            decoder.multiple_members(true);
            Box::pin(BufReader::with_capacity(256 * 1024, decoder))
        }
        Some(other) => {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Encoding {other:?}: only gzip and zstd are accepted"),
            ));
        }
    })
}

/// A spool file being written.
pub(crate) struct SpoolFile {
    file: tokio::io::BufWriter<tokio::fs::File>,
    path: tempfile::TempPath,
    /// Bytes written.
    pub bytes: u64,
    /// Lines begun before this file: its first line's number is one more.
    pub first_line: u64,
    /// Complete lines written.
    pub lines: u64,
    /// Whether the last byte written ended a line.
    pub at_line_end: bool,
    /// Bytes up to the end of the last whole line.
    whole_lines_bytes: u64,
}

impl SpoolFile {
    pub fn create(dir: &std::path::Path, first_line: u64) -> Result<SpoolFile, Problem> {
        let (file, path) = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| Problem::internal(&e))?
            .into_parts();
        Ok(SpoolFile {
            file: tokio::io::BufWriter::with_capacity(256 * 1024, tokio::fs::File::from_std(file)),
            path,
            bytes: 0,
            first_line,
            lines: 0,
            at_line_end: true,
            whole_lines_bytes: 0,
        })
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), Problem> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(bytes)
            .await
            .map_err(|e| Problem::internal(&e))?;
        if let Some(last) = bytes.iter().rposition(|&b| b == b'\n') {
            self.whole_lines_bytes = self.bytes + last as u64 + 1;
        }
        self.bytes += bytes.len() as u64;
        self.lines += memchr_count(bytes);
        self.at_line_end = bytes.last() == Some(&b'\n');
        Ok(())
    }

    /// Drops a last line cut off midway, keeping the whole lines.
    pub async fn drop_partial_line(&mut self) -> Result<(), Problem> {
        if self.at_line_end {
            return Ok(());
        }
        self.file.flush().await.map_err(|e| Problem::internal(&e))?;
        self.file
            .get_ref()
            .set_len(self.whole_lines_bytes)
            .await
            .map_err(|e| Problem::internal(&e))?;
        self.bytes = self.whole_lines_bytes;
        self.at_line_end = true;
        Ok(())
    }

    /// Flushes it to the file system and gives its path, which deletes
    /// the file when dropped.
    pub async fn finish(mut self) -> Result<tempfile::TempPath, Problem> {
        self.file.flush().await.map_err(|e| Problem::internal(&e))?;
        Ok(self.path)
    }
}

fn memchr_count(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// What the next piece of a body is.
pub(crate) enum Piece {
    /// Bytes, borrowed from the reader until consumed.
    Bytes(usize),
    /// The body ended.
    End,
    /// Nothing came for a while.
    Pause,
}

/// Waits for the next bytes of `reader`, at most `idle`; counts them
/// against the body limit.
pub(crate) async fn next_piece(
    reader: &mut BodyReader,
    idle: std::time::Duration,
    taken: &mut u64,
    limits: &IngestLimits,
) -> Result<Piece, Problem> {
    let filled = match tokio::time::timeout(idle, reader.fill_buf()).await {
        Err(_) => return Ok(Piece::Pause),
        Ok(filled) => filled.map_err(|e| Problem::bad_request(format!("reading the body: {e}")))?,
    };
    if filled.is_empty() {
        return Ok(Piece::End);
    }
    *taken += filled.len() as u64;
    if *taken > limits.max_body_bytes {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is over {} bytes decompressed; send it in parts",
                limits.max_body_bytes
            ),
        ));
    }
    Ok(Piece::Bytes(filled.len()))
}

/// Whether a body is line-delimited JSON, told from its first line (up
/// to `max_line` bytes of it): a complete JSON object on one line.
pub(crate) fn is_json_lines(head: &[u8]) -> Option<bool> {
    let end = head.iter().position(|&b| b == b'\n')?;
    let line = head[..end].trim_ascii();
    Some(
        line.first() == Some(&b'{')
            && serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok(),
    )
}

/// Where to cut `bytes` so that a chunk holding `in_chunk` bytes reaches
/// `target`: just after the first line end at or past the target, if any.
pub(crate) fn cut_point(bytes: &[u8], in_chunk: u64, target: u64) -> Option<usize> {
    let need = target.saturating_sub(in_chunk) as usize;
    let from = need.saturating_sub(1).min(bytes.len());
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| from + i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_told_by_their_first_line() {
        assert_eq!(is_json_lines(b"{\"a\": 1}\n{\"a\""), Some(true));
        assert_eq!(
            is_json_lines(b"{\n  \"bomFormat\": \"CycloneDX\""),
            Some(false)
        );
        assert_eq!(is_json_lines(b"#separator \\x09\n#set"), Some(false));
        assert_eq!(is_json_lines(b"{\"a\": 1}"), None, "no line end yet");
    }

    #[test]
    fn cuts_fall_after_a_line_end_at_or_past_the_target() {
        let bytes = b"aaaa\nbbbb\ncccc\n";
        assert_eq!(cut_point(bytes, 0, 3), Some(5));
        assert_eq!(cut_point(bytes, 0, 5), Some(5));
        assert_eq!(cut_point(bytes, 0, 6), Some(10));
        assert_eq!(
            cut_point(bytes, 100, 50),
            Some(5),
            "already past: first line end"
        );
        assert_eq!(cut_point(b"aaaa", 0, 2), None);
        assert_eq!(cut_point(bytes, 0, 100), None);
    }
}
