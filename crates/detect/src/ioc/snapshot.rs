//! The index saved as bytes and loaded back without rebuilding it: a
//! million indicators load in a fraction of the time their rows take to
//! read and insert. Loading checks everything it reads (offsets, ids,
//! table shapes), so a damaged or foreign file is refused, never trusted.
//!
//! Layout, little-endian: `TCIX`, format, key, seed; the entries; the
//! value arena; the interned names; the `AND` conditions (JSON); then each
//! value table as its length and slots. URL prefixes and CIDRs, which are
//! few, are filed again from the entries.

use turncoat_core::IndicatorKind;
use turncoat_core::indicator::Condition;

use super::table::{NONE, ValueTable};
use super::{Entry, IndicatorIndex, Interner};

const MAGIC: &[u8; 4] = b"TCIX";
const FORMAT: u32 = 2;
/// Bytes of one saved entry.
const ENTRY_BYTES: usize = 8 + 4 * 4 + 8 + 8 + 1 + 1;

/// Why a snapshot was not loaded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SnapshotError {
    /// Saved for other intel (or by another format): rebuild.
    #[error("the snapshot is of other intel")]
    Stale,
    #[error("damaged index snapshot at byte {offset}: {what}")]
    Damaged { offset: usize, what: &'static str },
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn damaged(&self, what: &'static str) -> SnapshotError {
        SnapshotError::Damaged {
            offset: self.at,
            what,
        }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], SnapshotError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| self.damaged(what))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, SnapshotError> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, SnapshotError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, SnapshotError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A count of items of `size` bytes each, refused when the rest of
    /// the input cannot hold them (so no huge allocation on a lie).
    fn count(&mut self, size: usize, what: &'static str) -> Result<usize, SnapshotError> {
        let n = self.u64(what)? as usize;
        match n.checked_mul(size) {
            Some(total) if total <= self.bytes.len() - self.at => Ok(n),
            _ => Err(self.damaged(what)),
        }
    }
}

impl IndicatorIndex {
    /// The index as bytes, tagged with `key` (what the intel it was built
    /// from is known by), for [`IndicatorIndex::from_snapshot`].
    pub fn snapshot(&self, key: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.heap_bytes() + 64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT.to_le_bytes());
        out.extend_from_slice(&key.to_le_bytes());
        out.extend_from_slice(&self.seed.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(&e.value_start.to_le_bytes());
            out.extend_from_slice(&e.value_len.to_le_bytes());
            out.extend_from_slice(&e.source.to_le_bytes());
            out.extend_from_slice(&e.campaign.to_le_bytes());
            out.extend_from_slice(&e.also.to_le_bytes());
            out.extend_from_slice(&e.valid_from.to_le_bytes());
            out.extend_from_slice(&e.valid_until.to_le_bytes());
            let kind = IndicatorKind::ALL
                .iter()
                .position(|k| *k == e.kind)
                .unwrap_or(0) as u8;
            out.push(kind);
            out.push(e.revoked as u8);
        }
        out.extend_from_slice(&(self.text.len() as u64).to_le_bytes());
        out.extend_from_slice(self.text.as_bytes());
        out.extend_from_slice(&(self.names.names.len() as u64).to_le_bytes());
        for n in &self.names.names {
            out.extend_from_slice(&(n.len() as u32).to_le_bytes());
            out.extend_from_slice(n.as_bytes());
        }
        let conditions = serde_json::to_vec(&self.conditions).unwrap_or_else(|_| b"[]".to_vec());
        out.extend_from_slice(&(conditions.len() as u64).to_le_bytes());
        out.extend_from_slice(&conditions);
        for table in self.exact.iter().chain(std::iter::once(&self.domains)) {
            out.extend_from_slice(&(table.len as u64).to_le_bytes());
            out.extend_from_slice(&(table.slots.len() as u64).to_le_bytes());
            for slot in &table.slots {
                out.extend_from_slice(&slot.to_le_bytes());
            }
        }
        out
    }

    /// Loads an index saved by [`IndicatorIndex::snapshot`] with the same
    /// `key`.
    pub fn from_snapshot(bytes: &[u8], key: u64) -> Result<IndicatorIndex, SnapshotError> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(4, "magic")? != MAGIC || r.u32("format")? != FORMAT || r.u64("key")? != key {
            return Err(SnapshotError::Stale);
        }
        let mut index = IndicatorIndex {
            seed: r.u64("seed")?,
            ..IndicatorIndex::default()
        };
        let n = r.count(ENTRY_BYTES, "entry count")?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let value_start = r.u64("entry")?;
            let value_len = r.u32("entry")?;
            let source = r.u32("entry")?;
            let campaign = r.u32("entry")?;
            let also = r.u32("entry")?;
            let valid_from = r.u64("entry")? as i64;
            let valid_until = r.u64("entry")? as i64;
            let kind = *IndicatorKind::ALL
                .get(r.u8("entry kind")? as usize)
                .ok_or_else(|| r.damaged("entry kind"))?;
            let revoked = match r.u8("entry")? {
                0 => false,
                1 => true,
                _ => return Err(r.damaged("entry revoked flag")),
            };
            entries.push(Entry {
                value_start,
                value_len,
                source,
                campaign,
                also,
                valid_from,
                valid_until,
                kind,
                revoked,
            });
        }
        let text_len = r.count(1, "text length")?;
        let text = std::str::from_utf8(r.take(text_len, "text")?)
            .map_err(|_| r.damaged("text is not UTF-8"))?;
        let names = r.count(4, "name count")?;
        let mut interner = Interner::default();
        for _ in 0..names {
            let len = r.u32("name length")? as usize;
            let name = std::str::from_utf8(r.take(len, "name")?)
                .map_err(|_| r.damaged("name is not UTF-8"))?;
            if interner.intern(name) as usize != interner.names.len() - 1 {
                return Err(r.damaged("name saved twice"));
            }
        }
        let conditions_len = r.count(1, "conditions length")?;
        let conditions: Vec<Box<[Condition]>> =
            serde_json::from_slice(r.take(conditions_len, "conditions")?)
                .map_err(|_| r.damaged("conditions"))?;
        for e in &entries {
            let end = e.value_start.checked_add(u64::from(e.value_len));
            let fits = end.is_some_and(|end| {
                end <= text.len() as u64
                    && text.is_char_boundary(e.value_start as usize)
                    && text.is_char_boundary(end as usize)
            });
            if !fits
                || e.source as usize >= interner.names.len()
                || (e.campaign != NONE && e.campaign as usize >= interner.names.len())
                || (e.also != NONE && e.also as usize >= conditions.len())
            {
                return Err(r.damaged("entry refers outside the snapshot"));
            }
        }
        for table in index
            .exact
            .iter_mut()
            .chain(std::iter::once(&mut index.domains))
        {
            let len = r.u64("table length")? as usize;
            let slots = r.count(8, "table size")?;
            let mut loaded = ValueTable {
                slots: Vec::with_capacity(slots),
                len,
            };
            for _ in 0..slots {
                loaded.slots.push(r.u64("slot")?);
            }
            if !loaded.is_sound(entries.len()) {
                return Err(r.damaged("table"));
            }
            *table = loaded;
        }
        if r.at != bytes.len() {
            return Err(r.damaged("bytes after the last table"));
        }
        index.entries = entries;
        index.text = text.to_owned();
        index.names = interner;
        index.conditions = conditions;
        for id in 0..index.entries.len() {
            let e = index.entries[id];
            if !e.revoked && matches!(e.kind, IndicatorKind::UrlPrefix | IndicatorKind::Cidr) {
                let value = index.value(id).to_owned();
                index.index_pattern(e.kind, &value, id);
            }
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use turncoat_core::{Indicator, Observable, ObservableKind, Time};

    fn sample() -> IndicatorIndex {
        let mut with_also = Indicator::new(IndicatorKind::Md5, &"a".repeat(32), "pack").unwrap();
        with_also.also = vec![Condition {
            kind: IndicatorKind::Filename,
            value: "ffmpeg.dll".into(),
        }];
        let mut dated = Indicator::new(IndicatorKind::Domain, "evil.example.com", "feed").unwrap();
        dated.valid_from = Some(Time(5));
        dated.campaign = Some("SmoothOperator".into());
        let mut revoked = Indicator::new(IndicatorKind::Ip, "203.0.113.9", "feed").unwrap();
        revoked.revoked = true;
        IndicatorIndex::new(vec![
            with_also,
            dated,
            revoked,
            Indicator::new(IndicatorKind::UrlPrefix, "https://x.example.com/p/", "feed").unwrap(),
            Indicator::new(IndicatorKind::Cidr, "198.51.100.0/24", "feed").unwrap(),
            Indicator::new(IndicatorKind::Sha256, &"b".repeat(64), "féed").unwrap(),
        ])
    }

    fn hits(index: &IndicatorIndex, kind: ObservableKind, value: &str) -> Vec<usize> {
        let mut out = Vec::new();
        index.lookup(&Observable::new(kind, value).unwrap(), |i| out.push(i));
        out
    }

    #[test]
    fn a_loaded_snapshot_answers_as_the_index_did() {
        let index = sample();
        let loaded = IndicatorIndex::from_snapshot(&index.snapshot(42), 42).unwrap();
        for (kind, value) in [
            (ObservableKind::Domain, "a.evil.example.com"),
            (ObservableKind::Md5, &"a".repeat(32)),
            (ObservableKind::Ip, "203.0.113.9"),
            (ObservableKind::Ip, "198.51.100.7"),
            (ObservableKind::Url, "https://x.example.com/p/a.bin"),
            (ObservableKind::Sha256, &"b".repeat(64)),
        ] {
            assert_eq!(
                hits(&index, kind, value),
                hits(&loaded, kind, value),
                "{value}"
            );
        }
        for id in 0..index.len() {
            assert_eq!(index.get(id), loaded.get(id));
        }
        assert_eq!(loaded.snapshot(42), index.snapshot(42));
    }

    #[test]
    fn another_key_is_stale() {
        let bytes = sample().snapshot(1);
        assert!(matches!(
            IndicatorIndex::from_snapshot(&bytes, 2),
            Err(SnapshotError::Stale)
        ));
    }

    /// Every truncation and many corruptions are refused or load an index
    /// that still answers; none panics or hangs.
    #[test]
    fn damaged_snapshots_are_refused_never_trusted() {
        let bytes = sample().snapshot(7);
        for len in 0..bytes.len() {
            assert!(IndicatorIndex::from_snapshot(&bytes[..len], 7).is_err());
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut damaged = bytes.clone();
            let at = 20 + (state as usize) % (damaged.len() - 20);
            damaged[at] ^= (state >> 32) as u8 | 1;
            if let Ok(index) = IndicatorIndex::from_snapshot(&damaged, 7) {
                for id in 0..index.len() {
                    let _ = index.get(id);
                }
                let _ = hits(&index, ObservableKind::Domain, "a.evil.example.com");
            }
        }
    }
}
