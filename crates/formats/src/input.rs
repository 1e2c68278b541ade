//! Inputs: files, standard input, gzip transparently, with size limits.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::Duration;

use crate::{Location, ReadIssue};

/// Size limits every reader honours.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest line or record; longer ones are skipped and reported.
    pub max_record_bytes: usize,
    /// Largest whole document (an SBOM, a STIX bundle, a pretty-printed
    /// JSON file) read into memory at once.
    pub max_document_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_record_bytes: 1 << 20,
            max_document_bytes: 256 << 20,
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A readable input with a name for messages.
pub struct Input {
    name: String,
    path: Option<PathBuf>,
    reader: BufReader<Box<dyn Read + Send>>,
    line: u64,
    gzip: bool,
}

impl Input {
    /// Opens a file, or standard input for `-`; gzip is undone by content.
    pub fn open(path: &Path) -> io::Result<Input> {
        if path == Path::new("-") {
            return Input::from_reader("<stdin>", Box::new(io::stdin()));
        }
        let file = File::open(path)?;
        let mut input = Input::from_reader(&path.display().to_string(), Box::new(file))?;
        if !input.gzip {
            input.path = Some(path.to_owned());
        }
        Ok(input)
    }

    /// Opens a stream (standard input for `-`, or a named pipe) that may
    /// pause for as long as its writer likes. When no byte has come for
    /// `idle` at a line boundary, [`Input::next_line`] says
    /// [`Line::Idle`], so that a consumer can commit what it has instead
    /// of holding it until the next line. Compressed streams are read
    /// without pauses: a decoder cannot be interrupted mid-member.
    pub fn open_stream(path: &Path, idle: Duration) -> io::Result<Input> {
        let (name, source): (String, Box<dyn Read + Send>) = if path == Path::new("-") {
            ("<stdin>".into(), Box::new(io::stdin()))
        } else {
            (path.display().to_string(), Box::new(File::open(path)?))
        };
        let mut chunks = Chunks::spawn(source);
        let first = chunks.next_blocking()?;
        let pauses = !first.starts_with(&GZIP_MAGIC);
        chunks.done = first.is_empty();
        chunks.current = first;
        chunks.idle = pauses.then_some(idle);
        Input::from_reader(&name, Box::new(chunks))
    }

    /// Wraps any reader; gzip is undone by content.
    pub fn from_reader(name: &str, reader: Box<dyn Read + Send>) -> io::Result<Input> {
        let mut buffered = BufReader::with_capacity(256 * 1024, reader);
        let gzip = buffered.fill_buf()?.starts_with(&GZIP_MAGIC);
        // Plain input is read through the buffer that peeked at it: a
        // second buffer on top would copy every byte once more.
        let reader = if gzip {
            BufReader::with_capacity(
                256 * 1024,
                Box::new(flate2::bufread::MultiGzDecoder::new(buffered)) as Box<dyn Read + Send>,
            )
        } else {
            buffered
        };
        Ok(Input {
            name: name.to_owned(),
            path: None,
            reader,
            line: 0,
            gzip,
        })
    }

    /// An in-memory input: for tests and fuzzing.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Input {
        Input::from_reader(name, Box::new(io::Cursor::new(bytes)))
            .expect("reading memory cannot fail")
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Names the input for messages and for telling a format by file
    /// name: a spooled request body goes by the name its sender gave.
    pub fn renamed(mut self, name: &str) -> Input {
        name.clone_into(&mut self.name);
        self
    }

    /// The file on disk, when the input is an uncompressed file.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The file name without directories, compression suffix or rotation
    /// stamp: `conn.16:00:00-17:00:00.log.gz` gives `conn`.
    pub fn stem(&self) -> &str {
        let base = self.name.rsplit(['/', '\\']).next().unwrap_or(&self.name);
        base.split('.').next().unwrap_or(base)
    }

    /// The first buffered bytes, without consuming them.
    pub fn peek(&mut self) -> Result<&[u8], ReadIssue> {
        let name = &self.name;
        self.reader
            .fill_buf()
            .map_err(|e| ReadIssue::new(name, Location::Unknown, format!("read failed: {e}")))
    }

    /// Lines read so far.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// A problem at `location` in this input.
    pub fn issue(&self, location: Location, message: impl std::fmt::Display) -> ReadIssue {
        ReadIssue::new(&self.name, location, message)
    }

    /// Reads the next line (without its `\n` or `\r\n`) into `buf`.
    ///
    /// A line over `max` bytes is consumed and dropped: the result is
    /// `Line::TooLong` and memory stays bounded.
    pub fn next_line(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<Line> {
        buf.clear();
        let mut too_long = false;
        let mut total = 0usize;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A pause mid-line is waited out: only whole lines count.
                Err(e) if e.kind() == io::ErrorKind::TimedOut && total == 0 => {
                    return Ok(Line::Idle);
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                if total == 0 {
                    return Ok(Line::Eof);
                }
                break;
            }
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            total += take;
            if !too_long {
                if buf.len() + take > max + 2 {
                    too_long = true;
                    buf.clear();
                } else {
                    buf.extend_from_slice(&chunk[..take]);
                }
            }
            self.reader.consume(take);
            if done {
                break;
            }
        }
        self.line += 1;
        if too_long {
            return Ok(Line::TooLong(total));
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(Line::Text)
    }

    /// Reads the whole remaining input, refusing more than `max` bytes.
    pub fn read_document(&mut self, max: usize) -> Result<Vec<u8>, ReadIssue> {
        let mut buf = Vec::new();
        let read = (&mut self.reader)
            .take(max as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| self.issue(Location::Unknown, format!("read failed: {e}")))?;
        if read > max {
            return Err(self.issue(
                Location::Offset(max as u64),
                format!("document is larger than the {} MiB limit", max >> 20),
            ));
        }
        Ok(buf)
    }
}

/// What [`Input::next_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Text,
    /// A line longer than the limit, of this many bytes, was skipped.
    TooLong(usize),
    /// A stream paused between lines (see [`Input::open_stream`]); more
    /// may come.
    Idle,
    Eof,
}

/// Chunks of a stream read on their own thread, so that a pause can be
/// noticed without giving up on the read. The channel holds few chunks:
/// a fast writer waits for the reader, memory stays bounded.
struct Chunks {
    receiver: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
    idle: Option<Duration>,
    done: bool,
}

const STREAM_CHUNK_BYTES: usize = 64 * 1024;
const STREAM_CHUNKS_QUEUED: usize = 4;

impl Chunks {
    fn spawn(mut source: Box<dyn Read + Send>) -> Chunks {
        let (sender, receiver) = sync_channel(STREAM_CHUNKS_QUEUED);
        std::thread::spawn(move || pump(&mut *source, &sender));
        Chunks {
            receiver,
            current: Vec::new(),
            at: 0,
            idle: None,
            done: false,
        }
    }

    fn next_blocking(&mut self) -> io::Result<Vec<u8>> {
        match self.receiver.recv() {
            Ok(chunk) => chunk,
            Err(_) => Ok(Vec::new()),
        }
    }
}

/// Reads `source` to its end into `sender`; an empty chunk marks the end.
fn pump(source: &mut dyn Read, sender: &SyncSender<io::Result<Vec<u8>>>) {
    loop {
        let mut chunk = vec![0; STREAM_CHUNK_BYTES];
        let message = match source.read(&mut chunk) {
            Ok(n) => {
                chunk.truncate(n);
                Ok(chunk)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
        let last = !matches!(&message, Ok(c) if !c.is_empty());
        // The reader may have stopped listening: then there is no one to
        // tell, and nothing more to read for.
        if sender.send(message).is_err() || last {
            return;
        }
    }
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            if self.done {
                return Ok(0);
            }
            let next = match self.idle {
                Some(idle) => match self.receiver.recv_timeout(idle) {
                    Ok(chunk) => chunk,
                    Err(RecvTimeoutError::Timeout) => {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "stream paused"));
                    }
                    Err(RecvTimeoutError::Disconnected) => Ok(Vec::new()),
                },
                None => self.next_blocking(),
            }?;
            self.done = next.is_empty();
            self.current = next;
            self.at = 0;
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// 1-based line number of byte `offset` in `text`.
pub fn line_of_offset(text: &[u8], offset: usize) -> u64 {
    1 + text[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn lines_bounded_and_crlf_trimmed() {
        let data = format!("a\r\n{}\nc", "x".repeat(100));
        let mut input = Input::from_bytes("t", data.into_bytes());
        let mut buf = Vec::new();
        assert_eq!(input.next_line(&mut buf, 10).unwrap(), Line::Text);
        assert_eq!(buf, b"a");
        assert_eq!(input.next_line(&mut buf, 10).unwrap(), Line::TooLong(101));
        assert_eq!(input.next_line(&mut buf, 10).unwrap(), Line::Text);
        assert_eq!(buf, b"c");
        assert_eq!(input.line(), 3);
        assert_eq!(input.next_line(&mut buf, 10).unwrap(), Line::Eof);
    }

    #[test]
    fn gzip_is_transparent() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"hello\nworld\n").unwrap();
        let mut input = Input::from_bytes("x.log.gz", enc.finish().unwrap());
        let mut buf = Vec::new();
        input.next_line(&mut buf, 100).unwrap();
        assert_eq!(buf, b"hello");
        assert_eq!(input.stem(), "x");
    }

    /// A named pipe in a scratch directory, kept while the guard lives.
    fn fifo() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        (dir, fifo)
    }

    #[test]
    fn a_paused_stream_says_idle_between_lines_and_waits_within_one() {
        let (_dir, fifo) = fifo();
        let writer_path = fifo.clone();
        let writer = std::thread::spawn(move || {
            let mut w = File::options().write(true).open(writer_path).unwrap();
            w.write_all(b"one\ntw").unwrap();
            w.flush().unwrap();
            std::thread::sleep(Duration::from_millis(300));
            w.write_all(b"o\n").unwrap();
        });
        let mut input = Input::open_stream(&fifo, Duration::from_millis(50)).unwrap();
        let mut buf = Vec::new();
        assert_eq!(input.next_line(&mut buf, 100).unwrap(), Line::Text);
        assert_eq!(buf, b"one");
        // "tw" has come, "o\n" has not: the pause inside the line is
        // waited out, and the line comes whole.
        assert_eq!(input.next_line(&mut buf, 100).unwrap(), Line::Text);
        assert_eq!(buf, b"two");
        writer.join().unwrap();
        let mut idle = 0;
        loop {
            match input.next_line(&mut buf, 100).unwrap() {
                Line::Idle => idle += 1,
                Line::Eof => break,
                other => panic!("{other:?}"),
            }
        }
        assert!(idle <= 1, "the writer closed at once: {idle} pauses");
        assert_eq!(input.line(), 2);
    }

    #[test]
    fn a_stream_that_pauses_before_its_first_line_is_idle_after_it() {
        let (_dir, fifo) = fifo();
        let writer_path = fifo.clone();
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let writer = std::thread::spawn(move || {
            let mut w = File::options().write(true).open(writer_path).unwrap();
            w.write_all(b"first\n").unwrap();
            w.flush().unwrap();
            wait.recv().unwrap();
            w.write_all(b"second\n").unwrap();
        });
        let mut input = Input::open_stream(&fifo, Duration::from_millis(20)).unwrap();
        let mut buf = Vec::new();
        assert_eq!(input.next_line(&mut buf, 100).unwrap(), Line::Text);
        assert_eq!(input.next_line(&mut buf, 100).unwrap(), Line::Idle);
        go.send(()).unwrap();
        let mut next = input.next_line(&mut buf, 100).unwrap();
        while next == Line::Idle {
            next = input.next_line(&mut buf, 100).unwrap();
        }
        assert_eq!((next, buf.as_slice()), (Line::Text, &b"second"[..]));
        writer.join().unwrap();
        assert_eq!(input.next_line(&mut buf, 100).unwrap(), Line::Eof);
    }

    #[test]
    fn documents_have_a_limit() {
        let mut input = Input::from_bytes("big", vec![b'x'; 100]);
        assert!(input.read_document(10).is_err());
        let mut input = Input::from_bytes("small", vec![b'x'; 10]);
        assert_eq!(input.read_document(10).unwrap().len(), 10);
    }
}
