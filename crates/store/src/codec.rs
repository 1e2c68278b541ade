//! The archive's record encoding: a compact binary form of [`Event`].
//!
//! JSON would spend most of its time escaping strings; this form copies
//! them. Every record is length-prefixed so a reader can skip to the n-th
//! one. Decoding checks every length against the bytes left: a corrupt or
//! hostile archive yields an error, never a panic or a huge allocation.
//!
//! ```text
//! frame   = [header] record*        header = 0x00 version   (version 1)
//! record  = varint(len) body
//! body    = i64-le time, str host, label product, label category,
//!           label service, varint(n) n × (name, value)
//! value   = 0 null | 1 false | 2 true | 3 zigzag-varint int | 4 f64-le
//!         | 5 str | 6 varint(n) n × value
//! str     = varint(len) utf-8
//! ```
//!
//! Version 1 (frames that start with the header) writes a field name or a
//! logsource label as `varint(2 × id + 1)` when it is in [`NAMES`] and as
//! `varint(2 × (len + 1))` utf-8 otherwise, `varint(0)` for no label: the
//! names every record repeats were a third of its bytes, and so of the
//! memory a batch holds, of what zstd reads and of what a scan decodes.
//! Frames without the header (written before it) hold names as `str` and
//! labels as `varint(0)` or `varint(len + 1)` utf-8; both kinds of frame
//! may follow each other in one segment. No record starts with a zero
//! byte (a body is at least 13 bytes long), so the header is unambiguous.

use std::borrow::Cow;
use std::sync::OnceLock;

use turncoat_core::{Event, FastHashMap, Fields, Logsource, Time, Value};

/// Lists nested deeper than this are refused when decoding.
const MAX_DEPTH: usize = 32;

/// The header of a version 1 frame.
const HEADER_V1: [u8; 2] = [0, 1];

/// Field names and logsource labels the readers write all the time, by
/// id. Ids are stored in the archive: entries are only ever appended,
/// never reordered or removed.
static NAMES: &[&str] = &[
    // Sigma's names for Sysmon and Windows fields.
    "Image",
    "CommandLine",
    "ProcessId",
    "ProcessGuid",
    "CurrentDirectory",
    "ParentImage",
    "ParentCommandLine",
    "ParentProcessId",
    "ParentProcessGuid",
    "OriginalFileName",
    "Company",
    "Description",
    "Product",
    "FileVersion",
    "ImageLoaded",
    "Signature",
    "SignatureStatus",
    "Signed",
    "QueryName",
    "QueryResults",
    "QueryStatus",
    "DestinationIp",
    "DestinationPort",
    "DestinationHostname",
    "SourceIp",
    "SourcePort",
    "SourceHostname",
    "Protocol",
    "TargetFilename",
    "TargetObject",
    "Details",
    "User",
    "Hashes",
    "EventID",
    "Provider_Name",
    "Channel",
    "Computer",
    "IntegrityLevel",
    "LogonId",
    "ParentUser",
    "Initiated",
    "DestinationPortName",
    "SourceImage",
    "TargetImage",
    "GrantedAccess",
    "CallTrace",
    "EventType",
    "RuleName",
    "UtcTime",
    // Sigma's web fields.
    "c-uri",
    "cs-host",
    "c-uri-stem",
    "c-uri-query",
    "c-uri-extension",
    "cs-method",
    "cs-referrer",
    "sc-status",
    "c-useragent",
    // ECS fields kept under their own names.
    "host.ip",
    "host.os.family",
    "host.os.type",
    "host.os.platform",
    "host.hostname",
    "agent.type",
    "agent.hostname",
    "event.kind",
    "event.category",
    "event.type",
    "event.code",
    "event.action",
    "event.provider",
    "event.module",
    "event.dataset",
    "user.name",
    "user.domain",
    "process.name",
    "process.parent.name",
    "process.hash.md5",
    "process.hash.sha1",
    "process.hash.sha256",
    "dll.name",
    "dll.hash.md5",
    "dll.hash.sha1",
    "dll.hash.sha256",
    "file.name",
    "file.hash.md5",
    "file.hash.sha1",
    "file.hash.sha256",
    "dns.question.type",
    "dns.answers.type",
    "network.direction",
    "network.protocol",
    "source.bytes",
    "destination.bytes",
    "winlog.channel",
    "winlog.event_id",
    "winlog.provider_name",
    "winlog.computer_name",
    // Zeek's conn, dns, http and ssl fields.
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "service",
    "duration",
    "orig_bytes",
    "resp_bytes",
    "conn_state",
    "local_orig",
    "local_resp",
    "missed_bytes",
    "history",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
    "query",
    "qclass",
    "qclass_name",
    "qtype",
    "qtype_name",
    "rcode",
    "rcode_name",
    "answers",
    "TTLs",
    "rejected",
    "trans_id",
    "rtt",
    "method",
    "host",
    "uri",
    "referrer",
    "version",
    "user_agent",
    "request_body_len",
    "response_body_len",
    "status_code",
    "status_msg",
    "resp_mime_types",
    "server_name",
    "ja3",
    "ja3s",
    "subject",
    "issuer",
    "cipher",
    "curve",
    "established",
    "resumed",
    "validation_status",
    // Logsource labels.
    "windows",
    "linux",
    "macos",
    "zeek",
    "sysmon",
    "security",
    "system",
    "powershell",
    "process_creation",
    "network_connection",
    "dns_query",
    "image_load",
    "file_event",
    "file_change",
    "file_delete",
    "process_access",
    "process_termination",
    "registry_add",
    "registry_set",
    "registry_rename",
    "driver_load",
    "create_remote_thread",
    "pipe_created",
    "wmi_event",
    "proxy",
    "webserver",
    "dns",
    "conn",
    "http",
    "ssl",
];

/// Each [`NAMES`] entry's id.
fn name_ids() -> &'static FastHashMap<&'static str, u32> {
    static IDS: OnceLock<FastHashMap<&'static str, u32>> = OnceLock::new();
    IDS.get_or_init(|| {
        NAMES
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, i as u32))
            .collect()
    })
}

/// How a version 1 record writes a name or label: `varint(code)`, then
/// the text when it is not in [`NAMES`].
fn name_code(name: &str) -> u64 {
    match name_ids().get(name) {
        Some(&id) => 2 * u64::from(id) + 1,
        None => 2 * (name.len() as u64 + 1),
    }
}

fn put_name(out: &mut Vec<u8>, name: &str, code: u64) {
    varint(out, code);
    if code & 1 == 0 {
        out.extend_from_slice(name.as_bytes());
    }
}

fn name_len(name: &str, code: u64) -> usize {
    varint_len(code) + if code & 1 == 0 { name.len() } else { 0 }
}

/// Codes of fixed names by address. Readers hand out the same few
/// `&'static str` names for every record, so after the first record each
/// is found without hashing its text; static text never moves, so an
/// address and length stand for one text for good. Names made at run
/// time are looked up by text.
#[derive(Debug, Default)]
struct NameCodes {
    by_address: Vec<(usize, usize, u64)>,
}

impl NameCodes {
    const SLOTS: usize = 256;

    #[expect(clippy::ptr_arg, reason = "whether the name is borrowed is the point")]
    fn code(&mut self, name: &Cow<'static, str>) -> u64 {
        let Cow::Borrowed(text) = name else {
            return name_code(name);
        };
        if self.by_address.is_empty() {
            self.by_address = vec![(0, 0, 0); Self::SLOTS];
        }
        let address = text.as_ptr() as usize;
        let slot = &mut self.by_address[(address >> 3) % Self::SLOTS];
        if slot.0 != address || slot.1 != text.len() {
            *slot = (address, text.len(), name_code(text));
        }
        slot.2
    }

    fn label(&mut self, label: &Option<Cow<'static, str>>) -> u64 {
        label.as_ref().map_or(0, |l| self.code(l))
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Signed integers as varints: small magnitudes, either sign, stay short.
fn zigzag(i: i64) -> u64 {
    ((i << 1) ^ (i >> 63)) as u64
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(0),
        Value::Bool(false) => out.push(1),
        Value::Bool(true) => out.push(2),
        Value::Int(i) => {
            out.push(3);
            varint(out, zigzag(*i));
        }
        Value::Float(x) => {
            out.push(4);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::Str(s) => {
            out.push(5);
            put_str(out, s);
        }
        Value::List(items) => {
            out.push(6);
            varint(out, items.len() as u64);
            for i in items {
                put_value(out, i);
            }
        }
    }
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn str_len(s: &str) -> usize {
    varint_len(s.len() as u64) + s.len()
}

fn value_len(v: &Value) -> usize {
    1 + match v {
        Value::Null | Value::Bool(_) => 0,
        Value::Int(i) => varint_len(zigzag(*i)),
        Value::Float(_) => 8,
        Value::Str(s) => str_len(s),
        Value::List(items) => {
            varint_len(items.len() as u64) + items.iter().map(value_len).sum::<usize>()
        }
    }
}

/// The length of `event`'s record body; `codes` receives the codes of its
/// labels and field names, in the order they are written.
fn body_len(event: &Event, names: &mut NameCodes, codes: &mut Vec<u64>) -> usize {
    codes.clear();
    let source = &event.logsource;
    let labels = [&source.product, &source.category, &source.service];
    let mut len = 8 + str_len(&event.host) + varint_len(event.fields.len() as u64);
    for label in labels {
        let code = names.label(label);
        codes.push(code);
        len += label.as_deref().map_or(1, |l| name_len(l, code));
    }
    for (name, value) in event.fields.entries() {
        let code = names.code(name);
        codes.push(code);
        len += name_len(name, code) + value_len(value);
    }
    len
}

/// Appends one record whose body is `len` bytes long, with the codes
/// [`body_len`] gave: computing them first lets the body be written once,
/// in place.
fn encode_body(event: &Event, len: usize, codes: &[u64], out: &mut Vec<u8>) {
    varint(out, len as u64);
    out.reserve(len);
    let start = out.len();
    out.extend_from_slice(&event.time.0.to_le_bytes());
    put_str(out, &event.host);
    let source = &event.logsource;
    let labels = [&source.product, &source.category, &source.service];
    for (label, &code) in labels.into_iter().zip(codes) {
        put_name(out, label.as_deref().unwrap_or_default(), code);
    }
    varint(out, event.fields.len() as u64);
    for ((name, value), &code) in event.fields.iter().zip(&codes[3..]) {
        put_name(out, name, code);
        put_value(out, value);
    }
    debug_assert_eq!(out.len() - start, len, "record length computed ahead");
}

/// A batch's events, encoded as they are added — while the event is still
/// in cache, instead of re-reading a whole batch from memory at commit.
///
/// Records go end to end into fixed-size blocks, whatever their hour; the
/// archive's unit, the hour, is gathered from them at commit. Blocks never
/// grow, and a dropped batch leaves them to the next one: per-hour buffers
/// grown by doubling cost every batch the copies and the kernel's zeroing
/// of fresh pages, over a tenth of ingest (BENCHMARKS.md).
#[derive(Debug, Default)]
pub struct EncodedEvents {
    blocks: Vec<Vec<u8>>,
    /// Hour → where its records lie, in the order added.
    hours: std::collections::BTreeMap<i64, Vec<Span>>,
    /// Every event's hour and index within that hour, in the order added.
    places: Vec<(i64, u32)>,
    names: NameCodes,
    /// The codes of the record being encoded (scratch).
    codes: Vec<u64>,
    /// Events per endpoint, log source and hour: ingest freshness.
    feeds: Vec<FeedTally>,
    /// Where each tally is in `feeds`, by a hash of its key.
    feed_index: FastHashMap<u64, usize>,
    /// The tally the last event went to.
    last_feed: usize,
}

/// A batch's events of one endpoint, log source and hour.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedTally {
    pub host: String,
    pub logsource: Logsource,
    pub hour: i64,
    pub events: u64,
    pub last_event: Time,
}

impl FeedTally {
    /// The log source as `product/category/service`, the parts it has.
    pub fn logsource_name(&self) -> String {
        [
            self.logsource.product.as_deref(),
            self.logsource.category.as_deref(),
            self.logsource.service.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("/")
    }
}

/// One record's bytes: `blocks[block][start..end]`.
#[derive(Clone, Copy, Debug)]
struct Span {
    block: u32,
    start: usize,
    end: usize,
}

/// A block's size. A record longer than that gets a block of its own,
/// which is freed with its batch.
const BLOCK_BYTES: usize = 4 << 20;

/// Blocks held for the next batch on the same thread, at most: a full
/// batch of ECS events, with room.
const MAX_SPARE_BLOCKS: usize = 64;

thread_local! {
    static SPARE: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Drop for EncodedEvents {
    fn drop(&mut self) {
        SPARE.with(|spare| {
            let mut spare = spare.borrow_mut();
            for mut block in self.blocks.drain(..) {
                if block.capacity() == BLOCK_BYTES && spare.len() < MAX_SPARE_BLOCKS {
                    block.clear();
                    spare.push(block);
                }
            }
        });
    }
}

impl EncodedEvents {
    /// Encodes `event`; returns its index in the batch.
    pub fn push(&mut self, event: &Event) -> usize {
        let len = body_len(event, &mut self.names, &mut self.codes);
        let record = varint_len(len as u64) + len;
        let fits = self
            .blocks
            .last()
            .is_some_and(|b| b.capacity() - b.len() >= record);
        if !fits {
            let block = if record <= BLOCK_BYTES {
                SPARE
                    .with(|spare| spare.borrow_mut().pop())
                    .unwrap_or_else(|| Vec::with_capacity(BLOCK_BYTES))
            } else {
                Vec::with_capacity(record)
            };
            self.blocks.push(block);
        }
        let index = self.blocks.len() - 1;
        let block = &mut self.blocks[index];
        let start = block.len();
        encode_body(event, len, &self.codes, block);
        let span = Span {
            block: index as u32,
            start,
            end: block.len(),
        };
        let hour = event.time.hour();
        let spans = self.hours.entry(hour).or_default();
        self.places.push((hour, spans.len() as u32));
        spans.push(span);
        self.tally(event, hour);
        self.places.len() - 1
    }

    /// Counts `event` to its feed. A file is mostly one endpoint and log
    /// source hour after hour, so the last tally is tried first; others
    /// are found by a hash of their key, with no allocation per event.
    fn tally(&mut self, event: &Event, hour: i64) {
        let same = |t: &FeedTally| {
            t.hour == hour && t.host == event.host && t.logsource == event.logsource
        };
        let i = match self.feeds.get(self.last_feed) {
            Some(t) if same(t) => self.last_feed,
            _ => {
                let key = std::hash::BuildHasher::hash_one(
                    self.feed_index.hasher(),
                    (&event.host, &event.logsource, hour),
                );
                let hit = match self.feed_index.get(&key) {
                    Some(&i) if same(&self.feeds[i]) => Some(i),
                    // A hash shared by two keys: the later one is looked
                    // for the long way.
                    Some(_) => self.feeds.iter().position(same),
                    None => None,
                };
                hit.unwrap_or_else(|| {
                    self.feeds.push(FeedTally {
                        host: event.host.clone(),
                        logsource: event.logsource.clone(),
                        hour,
                        events: 0,
                        last_event: event.time,
                    });
                    self.feed_index.entry(key).or_insert(self.feeds.len() - 1);
                    self.feeds.len() - 1
                })
            }
        };
        self.last_feed = i;
        let t = &mut self.feeds[i];
        t.events += 1;
        t.last_event = t.last_event.max(event.time);
    }

    /// The batch's events per endpoint, log source and hour.
    pub fn feeds(&self) -> &[FeedTally] {
        &self.feeds
    }

    /// The hour of the event at `index` and its index within that hour.
    pub fn place(&self, index: usize) -> Option<(i64, u32)> {
        self.places.get(index).copied()
    }

    pub fn len(&self) -> usize {
        self.places.len()
    }

    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    /// The hours the batch touches, in order, with their event counts.
    pub fn hours(&self) -> impl Iterator<Item = (i64, u32)> + '_ {
        self.hours.iter().map(|(h, r)| (*h, r.len() as u32))
    }

    /// Copies the records of `hour` into `out` (cleared first), in the
    /// order added, after the version header: the body of that hour's
    /// archive frame (empty when the batch has none of that hour).
    pub fn gather(&self, hour: i64, out: &mut Vec<u8>) {
        out.clear();
        let Some(spans) = self.hours.get(&hour) else {
            return;
        };
        out.extend_from_slice(&HEADER_V1);
        for s in spans {
            out.extend_from_slice(&self.blocks[s.block as usize][s.start..s.end]);
        }
    }
}

impl From<Vec<Event>> for EncodedEvents {
    fn from(events: Vec<Event>) -> EncodedEvents {
        let mut out = EncodedEvents::default();
        for e in &events {
            out.push(e);
        }
        out
    }
}

/// Reads records from an encoded frame.
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Names are version 1 codes (the frame began with its header).
    coded: bool,
}

/// Why archived bytes do not decode: damage the frame checksum missed,
/// or a format this build does not know.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{0}")]
    Utf8(#[from] std::str::Utf8Error),
    #[error("{0}")]
    Malformed(std::borrow::Cow<'static, str>),
}

impl From<&'static str> for DecodeError {
    fn from(what: &'static str) -> DecodeError {
        DecodeError::Malformed(what.into())
    }
}

impl From<String> for DecodeError {
    fn from(what: String) -> DecodeError {
        DecodeError::Malformed(what.into())
    }
}

type R<T> = Result<T, DecodeError>;

/// A decoded name or label: from [`NAMES`], or text of the record.
#[derive(Clone, Copy)]
enum Name<'a> {
    Known(&'static str),
    Read(&'a str),
}

impl<'a> Name<'a> {
    fn as_str(self) -> &'a str {
        match self {
            Name::Known(s) => s,
            Name::Read(s) => s,
        }
    }

    fn into_owned(self) -> Cow<'static, str> {
        match self {
            Name::Known(s) => Cow::Borrowed(s),
            Name::Read(s) => Cow::Owned(s.to_owned()),
        }
    }
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Decoder<'a> {
        Decoder {
            buf,
            pos: 0,
            coded: false,
        }
    }

    /// Moves past frame headers to the next record; `None` at the end.
    fn at_record(&mut self) -> Option<R<()>> {
        while self.buf.get(self.pos) == Some(&0) {
            match self.buf.get(self.pos + 1) {
                Some(1) => self.coded = true,
                Some(v) => return Some(Err(format!("unknown record format {v}").into())),
                None => return Some(Err("truncated frame header".into())),
            }
            self.pos += 2;
        }
        (self.pos < self.buf.len()).then_some(Ok(()))
    }

    fn byte(&mut self) -> R<u8> {
        let b = *self.buf.get(self.pos).ok_or("truncated record")?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> R<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    fn bytes(&mut self, n: u64) -> R<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| "length overflow")?;
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or("length past the end of the frame")?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next `n` bytes, as text.
    fn text(&mut self, n: u64) -> R<&'a str> {
        Ok(std::str::from_utf8(self.bytes(n)?)?)
    }

    fn str_ref(&mut self) -> R<&'a str> {
        let n = self.varint()?;
        self.text(n)
    }

    /// A version 1 name or label code and its text; `None` for code 0.
    fn code(&mut self) -> R<Option<Name<'a>>> {
        Ok(match self.varint()? {
            0 => None,
            c if c & 1 == 1 => {
                let name = usize::try_from(c >> 1).ok().and_then(|i| NAMES.get(i));
                Some(Name::Known(name.ok_or("unknown name id")?))
            }
            c => Some(Name::Read(self.text((c >> 1) - 1)?)),
        })
    }

    /// A logsource label, if any.
    fn label(&mut self) -> R<Option<Name<'a>>> {
        if self.coded {
            return self.code();
        }
        match self.varint()? {
            0 => Ok(None),
            n => Ok(Some(Name::Read(self.text(n - 1)?))),
        }
    }

    fn field_name(&mut self) -> R<Name<'a>> {
        if self.coded {
            self.code()?
                .ok_or(DecodeError::from("a field without a name"))
        } else {
            self.str_ref().map(Name::Read)
        }
    }

    fn value(&mut self, depth: usize) -> R<Value> {
        Ok(match self.byte()? {
            0 => Value::Null,
            1 => Value::Bool(false),
            2 => Value::Bool(true),
            3 => {
                let z = self.varint()?;
                Value::Int(((z >> 1) as i64) ^ -((z & 1) as i64))
            }
            4 => {
                let b = self.bytes(8)?;
                Value::Float(f64::from_le_bytes(b.try_into().map_err(|_| "bad float")?))
            }
            5 => Value::Str(self.str_ref()?.into()),
            6 => {
                if depth >= MAX_DEPTH {
                    return Err("lists nested too deep".into());
                }
                let n = self.varint()?;
                // Each element takes at least a byte: bound the allocation.
                if n > (self.buf.len() - self.pos) as u64 {
                    return Err("list longer than the frame".into());
                }
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::List(items)
            }
            t => return Err(format!("unknown value tag {t}").into()),
        })
    }

    /// Steps over one value without building it.
    fn skip_value(&mut self, depth: usize) -> R<()> {
        match self.byte()? {
            0..=2 => {}
            3 => {
                self.varint()?;
            }
            4 => {
                self.bytes(8)?;
            }
            5 => {
                let n = self.varint()?;
                self.bytes(n)?;
            }
            6 => {
                if depth >= MAX_DEPTH {
                    return Err("lists nested too deep".into());
                }
                for _ in 0..self.varint()? {
                    self.skip_value(depth + 1)?;
                }
            }
            t => return Err(format!("unknown value tag {t}").into()),
        }
        Ok(())
    }

    /// Skips one record; `None` at the end of the frame.
    pub fn skip(&mut self) -> Option<R<()>> {
        if let Err(e) = self.at_record()? {
            return Some(Err(e));
        }
        Some(self.varint().and_then(|n| self.bytes(n).map(|_| ())))
    }

    /// Decodes the next record; `None` at the end of the frame.
    pub fn next_event(&mut self) -> Option<R<Event>> {
        self.next_event_where(Projection::ALL)
            .map(|r| r.and_then(|e| e.ok_or(DecodeError::from("record skipped"))))
    }

    /// The next record, decoded only when `what` accepts its head, and
    /// then with the fields `what` accepts (`Ok(None)` for a record it
    /// does not): a scan for a few kinds of events and a few of their
    /// fields skips the rest unread.
    pub fn next_event_where(&mut self, what: Projection<'_>) -> Option<R<Option<Event>>> {
        if let Err(e) = self.at_record()? {
            return Some(Err(e));
        }
        Some(self.record(what))
    }

    fn record(&mut self, what: Projection<'_>) -> R<Option<Event>> {
        let len = self.varint()?;
        let body = self.bytes(len)?;
        let mut d = Decoder {
            buf: body,
            pos: 0,
            coded: self.coded,
        };
        let time = Time(i64::from_le_bytes(
            d.bytes(8)?.try_into().map_err(|_| "bad time")?,
        ));
        let host = d.str_ref()?;
        let [product, category, service] = [d.label()?, d.label()?, d.label()?];
        let head = RecordHead {
            time,
            host,
            product: product.map(Name::as_str),
            category: category.map(Name::as_str),
            service: service.map(Name::as_str),
        };
        if !(what.records)(&head) {
            return Ok(None);
        }
        let n = d.varint()?;
        if n > body.len() as u64 {
            return Err("more fields than bytes".into());
        }
        let mut fields = Fields::with_capacity(n as usize);
        for _ in 0..n {
            let name = d.field_name()?;
            if (what.fields)(name.as_str()) {
                let value = d.value(0)?;
                fields.push(name.into_owned(), value);
            } else {
                d.skip_value(0)?;
            }
        }
        if d.pos != body.len() {
            return Err("trailing bytes in record".into());
        }
        Ok(Some(Event {
            time,
            host: host.to_owned(),
            logsource: Logsource {
                product: product.map(Name::into_owned),
                category: category.map(Name::into_owned),
                service: service.map(Name::into_owned),
            },
            fields,
        }))
    }
}

/// Decodes records end to end, as a segment holds them (frames of either
/// version one after the other), handing each one `what` accepts to
/// `each`; the first malformed record ends it with an error.
pub fn decode_records(bytes: &[u8], what: Projection<'_>, each: &mut dyn FnMut(Event)) -> R<()> {
    let mut d = Decoder::new(bytes);
    while let Some(e) = d.next_event_where(what) {
        if let Some(e) = e? {
            each(e);
        }
    }
    Ok(())
}

/// What a scan of the archive decodes: the records whose head `records`
/// accepts, and of those the fields `fields` accepts. The rest are
/// stepped over unread, without allocating.
#[derive(Clone, Copy)]
pub struct Projection<'a> {
    pub records: &'a dyn Fn(&RecordHead<'_>) -> bool,
    pub fields: &'a dyn Fn(&str) -> bool,
}

impl Projection<'_> {
    /// Every record, whole.
    pub const ALL: Projection<'static> = Projection {
        records: &|_| true,
        fields: &|_| true,
    };

    /// What a scan through this projection hands out for `e`: `None` when
    /// the record is passed over, else `e` with only the kept fields. The
    /// in-memory twin of the decoder, for checking that an analysis given
    /// projected records reports what it reports from whole ones.
    pub fn apply(&self, e: &Event) -> Option<Event> {
        let head = RecordHead {
            time: e.time,
            host: &e.host,
            product: e.logsource.product.as_deref(),
            category: e.logsource.category.as_deref(),
            service: e.logsource.service.as_deref(),
        };
        if !(self.records)(&head) {
            return None;
        }
        Some(Event {
            time: e.time,
            host: e.host.clone(),
            logsource: e.logsource.clone(),
            fields: e
                .fields
                .iter()
                .filter(|(n, _)| (self.fields)(n))
                .map(|(n, v)| (n.to_owned(), v.clone()))
                .collect(),
        })
    }
}

/// What an archived record says before its fields.
#[derive(Clone, Copy, Debug)]
pub struct RecordHead<'a> {
    pub time: Time,
    pub host: &'a str,
    pub product: Option<&'a str>,
    pub category: Option<&'a str>,
    pub service: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends a frame of `events` as this version writes it.
    fn encode(events: &[Event], out: &mut Vec<u8>) {
        let mut batch = EncodedEvents::default();
        for e in events {
            batch.push(e);
        }
        let hours: Vec<i64> = batch.hours().map(|(hour, _)| hour).collect();
        assert_eq!(hours.len(), 1, "a frame holds one hour");
        let mut frame = Vec::new();
        batch.gather(hours[0], &mut frame);
        out.extend_from_slice(&frame);
    }

    /// Appends a frame of `events` as the form before version 1 wrote it:
    /// names as text, no header.
    fn encode_unversioned(events: &[Event], out: &mut Vec<u8>) {
        let str_len = |s: &str| varint_len(s.len() as u64) + s.len();
        let opt_len = |s: Option<&str>| s.map_or(1, |s| varint_len(s.len() as u64 + 1) + s.len());
        let put_opt = |out: &mut Vec<u8>, s: Option<&str>| match s {
            None => varint(out, 0),
            Some(s) => {
                varint(out, s.len() as u64 + 1);
                out.extend_from_slice(s.as_bytes());
            }
        };
        for e in events {
            let source = &e.logsource;
            let labels = [&source.product, &source.category, &source.service];
            let len = 8
                + str_len(&e.host)
                + labels.iter().map(|l| opt_len(l.as_deref())).sum::<usize>()
                + varint_len(e.fields.len() as u64)
                + e.fields
                    .iter()
                    .map(|(n, v)| str_len(n) + value_len(v))
                    .sum::<usize>();
            varint(out, len as u64);
            out.extend_from_slice(&e.time.0.to_le_bytes());
            put_str(out, &e.host);
            for l in labels {
                put_opt(out, l.as_deref());
            }
            varint(out, e.fields.len() as u64);
            for (n, v) in e.fields.iter() {
                put_str(out, n);
                put_value(out, v);
            }
        }
    }

    fn sample() -> Event {
        let mut fields = Fields::new();
        fields.push("Image", "C:\\x\\\"quoted\".exe");
        fields.push("ProcessId", Value::Int(-42));
        fields.push("Ratio", Value::Float(0.5));
        // Lengths and numbers past one varint byte.
        fields.push("CommandLine", "x".repeat(300));
        fields.push("Big", Value::Int(i64::MIN));
        fields.push(
            "Flags",
            Value::List(vec![
                Value::Bool(true),
                Value::Null,
                Value::List(vec!["ü".into()]),
            ]),
        );
        Event {
            time: Time(1_679_480_130_500_000),
            host: "ws-01".into(),
            logsource: Logsource::fixed(Some("windows"), None, Some("sysmon")),
            fields,
        }
    }

    #[test]
    fn records_are_gathered_by_hour_and_blocks_are_lent_to_the_next_batch() {
        let at = |hour: i64| {
            let mut e = sample();
            e.time = Time(hour * 3_600_000_000 + 5);
            e.host = format!("h{hour}");
            e
        };
        let mut first = EncodedEvents::default();
        for hour in [7, 3, 7, 7, 3] {
            first.push(&at(hour));
        }
        assert_eq!(first.hours().collect::<Vec<_>>(), vec![(3, 2), (7, 3)]);
        assert_eq!(
            first.place(2),
            Some((7, 1)),
            "third event: second of hour 7"
        );
        let mut frame = Vec::new();
        first.gather(7, &mut frame);
        let mut d = Decoder::new(&frame);
        for _ in 0..3 {
            assert_eq!(d.next_event().unwrap().unwrap(), at(7));
        }
        assert!(d.next_event().is_none());
        first.gather(99, &mut frame);
        assert!(frame.is_empty());

        let lent = first.blocks[0].as_ptr();
        drop(first);
        let mut second = EncodedEvents::default();
        second.push(&at(1));
        assert_eq!(
            second.blocks[0].as_ptr(),
            lent,
            "the dropped batch's block is reused"
        );
        second.gather(1, &mut frame);
        assert_eq!(Decoder::new(&frame).next_event().unwrap().unwrap(), at(1));
        drop(second);

        // A record longer than a block gets one of its own, not pooled.
        let mut long = at(2);
        long.fields.push("Blob", "x".repeat(BLOCK_BYTES + 10));
        let mut third = EncodedEvents::default();
        third.push(&at(2));
        third.push(&long);
        third.push(&at(2));
        assert_eq!(
            third.blocks.len(),
            3,
            "the long record does not fit the first"
        );
        third.gather(2, &mut frame);
        let mut d = Decoder::new(&frame);
        assert_eq!(d.next_event().unwrap().unwrap(), at(2));
        assert_eq!(d.next_event().unwrap().unwrap(), long);
        assert_eq!(d.next_event().unwrap().unwrap(), at(2));
        drop(third);
        let held = SPARE.with(|s| {
            let s = s.borrow();
            assert!(
                s.iter()
                    .all(|b| b.capacity() == BLOCK_BYTES && b.is_empty())
            );
            s.len()
        });
        assert!(held <= MAX_SPARE_BLOCKS, "{held} blocks held");
    }

    #[test]
    fn round_trips_and_skips() {
        let mut buf = Vec::new();
        encode(&[sample(), sample()], &mut buf);
        let mut d = Decoder::new(&buf);
        assert!(d.skip().unwrap().is_ok());
        assert_eq!(d.next_event().unwrap().unwrap(), sample());
        assert!(d.next_event().is_none());
    }

    #[test]
    fn names_in_the_table_take_a_code_and_the_rest_their_text() {
        let e = sample();
        let mut codes = Vec::new();
        body_len(&e, &mut NameCodes::default(), &mut codes);
        let name = |c: u64| (c & 1 == 1).then(|| NAMES[(c >> 1) as usize]);
        // Labels: windows, none, sysmon; then Image ... Flags.
        assert_eq!(name(codes[0]), Some("windows"));
        assert_eq!(codes[1], 0);
        assert_eq!(name(codes[2]), Some("sysmon"));
        assert_eq!(name(codes[3]), Some("Image"));
        assert_eq!(name(codes[4]), Some("ProcessId"));
        assert_eq!(codes[5], 2 * ("Ratio".len() as u64 + 1), "not in the table");
        // Names made at run time (looked up by text) get the same codes as
        // fixed ones (looked up by address), and a cache slot another name
        // took over is not mistaken for it.
        let mut owned = e.clone();
        owned.logsource = Logsource::new(Some("windows"), None, Some("sysmon"));
        owned.fields = e
            .fields
            .iter()
            .map(|(n, v)| (n.to_owned(), v.clone()))
            .collect();
        let mut names = NameCodes::default();
        let mut again = Vec::new();
        body_len(&owned, &mut names, &mut again);
        assert_eq!(again, codes);
        for _ in 0..2 {
            body_len(&e, &mut names, &mut again);
            assert_eq!(again, codes);
        }
        let mut buf = Vec::new();
        encode(std::slice::from_ref(&e), &mut buf);
        let decoded = Decoder::new(&buf).next_event().unwrap().unwrap();
        assert_eq!(decoded, e);
        let image = decoded.fields.iter().next().map(|(name, _)| name.as_ptr());
        assert_eq!(
            image,
            Some(NAMES[0].as_ptr()),
            "the table's name, not a copy"
        );
        assert!(matches!(
            decoded.logsource.product,
            Some(Cow::Borrowed("windows"))
        ));

        let mut seen = std::collections::HashSet::new();
        assert!(NAMES.iter().all(|n| seen.insert(n)), "no name twice");
    }

    #[test]
    fn frames_written_before_the_header_still_decode_beside_new_ones() {
        let (a, b) = (
            sample(),
            Event {
                host: "ws-02".into(),
                ..sample()
            },
        );
        let mut segment = Vec::new();
        // A segment an earlier version began and this one went on with.
        encode_unversioned(&[a.clone(), b.clone()], &mut segment);
        encode(&[b.clone(), a.clone()], &mut segment);
        let mut d = Decoder::new(&segment);
        let mut got = Vec::new();
        while let Some(e) = d.next_event() {
            got.push(e.unwrap());
        }
        assert_eq!(got, [a.clone(), b.clone(), b, a]);
        assert!(Decoder::new(&[0, 9, 1]).next_event().unwrap().is_err());
        assert!(Decoder::new(&[0]).next_event().unwrap().is_err());
    }

    #[test]
    fn corrupt_frames_are_errors_not_panics() {
        let mut buf = Vec::new();
        encode(&[sample()], &mut buf);
        for cut in 0..buf.len() {
            let _ = Decoder::new(&buf[..cut]).next_event();
        }
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0xff;
            let _ = Decoder::new(&bad).next_event();
        }
        assert!(Decoder::new(&[0xff; 12]).next_event().unwrap().is_err());
    }
}
