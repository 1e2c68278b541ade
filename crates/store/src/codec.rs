//! The archive's record encoding: a compact binary form of [`Event`].
//!
//! JSON would spend most of its time escaping strings; this form copies
//! them. Every record is length-prefixed so a reader can skip to the n-th
//! one. Decoding checks every length against the bytes left: a corrupt or
//! hostile archive yields an error, never a panic or a huge allocation.
//!
//! ```text
//! record  = varint(len) body
//! body    = i64-le time, str host, opt product, opt category, opt service,
//!           varint(n) n × (str name, value)
//! value   = 0 null | 1 false | 2 true | 3 zigzag-varint int | 4 f64-le
//!         | 5 str | 6 varint(n) n × value
//! str     = varint(len) utf-8;   opt = varint(0) | varint(len + 1) utf-8
//! ```

use turncoat_core::{Event, Fields, Logsource, Time, Value};

/// Lists nested deeper than this are refused when decoding.
const MAX_DEPTH: usize = 32;

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

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => varint(out, 0),
        Some(s) => {
            varint(out, s.len() as u64 + 1);
            out.extend_from_slice(s.as_bytes());
        }
    }
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

fn opt_len(s: Option<&str>) -> usize {
    s.map_or(1, |s| varint_len(s.len() as u64 + 1) + s.len())
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

/// The length of `event`'s record body.
fn body_len(event: &Event) -> usize {
    8 + str_len(&event.host)
        + opt_len(event.logsource.product.as_deref())
        + opt_len(event.logsource.category.as_deref())
        + opt_len(event.logsource.service.as_deref())
        + varint_len(event.fields.len() as u64)
        + event
            .fields
            .iter()
            .map(|(name, value)| str_len(name) + value_len(value))
            .sum::<usize>()
}

/// Appends one record whose body is `len` bytes long: computing it first
/// lets the body be written once, in place.
fn encode_body(event: &Event, len: usize, out: &mut Vec<u8>) {
    varint(out, len as u64);
    out.reserve(len);
    let start = out.len();
    out.extend_from_slice(&event.time.0.to_le_bytes());
    put_str(out, &event.host);
    put_opt(out, event.logsource.product.as_deref());
    put_opt(out, event.logsource.category.as_deref());
    put_opt(out, event.logsource.service.as_deref());
    varint(out, event.fields.len() as u64);
    for (name, value) in event.fields.iter() {
        put_str(out, name);
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
        let len = body_len(event);
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
        encode_body(event, len, block);
        let span = Span {
            block: index as u32,
            start,
            end: block.len(),
        };
        let hour = event.time.hour();
        let spans = self.hours.entry(hour).or_default();
        self.places.push((hour, spans.len() as u32));
        spans.push(span);
        self.places.len() - 1
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
    /// order added: the body of that hour's archive frame.
    pub fn gather(&self, hour: i64, out: &mut Vec<u8>) {
        out.clear();
        for s in self.hours.get(&hour).into_iter().flatten() {
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
}

type R<T> = Result<T, String>;

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Decoder<'a> {
        Decoder { buf, pos: 0 }
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

    fn str_ref(&mut self) -> R<&'a str> {
        let n = self.varint()?;
        let b = self.bytes(n)?;
        std::str::from_utf8(b).map_err(|e| e.to_string())
    }

    fn opt_ref(&mut self) -> R<Option<&'a str>> {
        match self.varint()? {
            0 => Ok(None),
            n => {
                let b = self.bytes(n - 1)?;
                std::str::from_utf8(b).map(Some).map_err(|e| e.to_string())
            }
        }
    }

    fn string(&mut self) -> R<String> {
        self.str_ref().map(str::to_owned)
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
            5 => Value::Str(self.string()?),
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
            t => return Err(format!("unknown value tag {t}")),
        })
    }

    /// Skips one record; `None` at the end of the frame.
    pub fn skip(&mut self) -> Option<R<()>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        Some(self.varint().and_then(|n| self.bytes(n).map(|_| ())))
    }

    /// Decodes the next record; `None` at the end of the frame.
    pub fn next_event(&mut self) -> Option<R<Event>> {
        self.next_event_where(&|_| true)
            .map(|r| r.and_then(|e| e.ok_or_else(|| "record skipped".to_owned())))
    }

    /// The next record, decoded in full only when `keep` accepts its head
    /// (`Ok(None)` otherwise): a scan for a few kinds of events skips the
    /// fields of the rest.
    pub fn next_event_where(
        &mut self,
        keep: &dyn Fn(&RecordHead<'_>) -> bool,
    ) -> Option<R<Option<Event>>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        Some(self.record(keep))
    }

    fn record(&mut self, keep: &dyn Fn(&RecordHead<'_>) -> bool) -> R<Option<Event>> {
        let len = self.varint()?;
        let body = self.bytes(len)?;
        let mut d = Decoder::new(body);
        let head = RecordHead {
            time: Time(i64::from_le_bytes(
                d.bytes(8)?.try_into().map_err(|_| "bad time")?,
            )),
            host: d.str_ref()?,
            product: d.opt_ref()?,
            category: d.opt_ref()?,
            service: d.opt_ref()?,
        };
        if !keep(&head) {
            return Ok(None);
        }
        let n = d.varint()?;
        if n > body.len() as u64 {
            return Err("more fields than bytes".into());
        }
        let mut fields = Fields::with_capacity(n as usize);
        for _ in 0..n {
            let name = d.string()?;
            let value = d.value(0)?;
            fields.push(name, value);
        }
        if d.pos != body.len() {
            return Err("trailing bytes in record".into());
        }
        Ok(Some(Event {
            time: head.time,
            host: head.host.to_owned(),
            logsource: Logsource::new(head.product, head.category, head.service),
            fields,
        }))
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

    fn encode(event: &Event, out: &mut Vec<u8>) {
        encode_body(event, body_len(event), out);
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
        encode(&sample(), &mut buf);
        encode(&sample(), &mut buf);
        let mut d = Decoder::new(&buf);
        assert!(d.skip().unwrap().is_ok());
        assert_eq!(d.next_event().unwrap().unwrap(), sample());
        assert!(d.next_event().is_none());
    }

    #[test]
    fn corrupt_frames_are_errors_not_panics() {
        let mut buf = Vec::new();
        encode(&sample(), &mut buf);
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
