//! A fixed table of field names a reader knows, looked up once per field
//! of every record: the hottest lookup of ECS ingest.
//!
//! A general hash map hashes every byte of the name and then compares
//! them all. Here a name's slot comes from its length and its first and
//! last eight bytes, and those, stored beside each entry, are compared
//! first; only the middle of a name longer than sixteen bytes is compared
//! byte by byte. The table is built once from a fixed list and never
//! grows, so hostile names can only probe it: at most half its slots are
//! full, which keeps every probe short.

/// Known names and what each is kept under.
pub struct NameTable {
    slots: Box<[Option<Entry>]>,
    shift: u32,
}

struct Entry {
    key: &'static str,
    head: u64,
    tail: u64,
    value: &'static str,
}

/// The first and last eight bytes of `s`, zero-padded when shorter.
fn ends(s: &[u8]) -> (u64, u64) {
    if s.len() >= 8 {
        let head = u64::from_le_bytes(s[..8].try_into().unwrap_or_default());
        let tail = u64::from_le_bytes(s[s.len() - 8..].try_into().unwrap_or_default());
        (head, tail)
    } else {
        let mut buf = [0u8; 8];
        buf[..s.len()].copy_from_slice(s);
        let v = u64::from_le_bytes(buf);
        (v, v)
    }
}

impl NameTable {
    /// A table of `(key, value)` pairs; a repeated key keeps its first value.
    pub fn new(pairs: impl IntoIterator<Item = (&'static str, &'static str)>) -> NameTable {
        let pairs: Vec<_> = pairs.into_iter().collect();
        let size = (pairs.len() * 2).next_power_of_two().max(16);
        let mut table = NameTable {
            slots: (0..size).map(|_| None).collect(),
            shift: 64 - size.trailing_zeros(),
        };
        for (key, value) in pairs {
            if table.get(key).is_some() {
                continue;
            }
            let (head, tail) = ends(key.as_bytes());
            let mut i = table.slot(key.len(), head, tail);
            while table.slots[i].is_some() {
                i = (i + 1) & (size - 1);
            }
            table.slots[i] = Some(Entry {
                key,
                head,
                tail,
                value,
            });
        }
        table
    }

    fn slot(&self, len: usize, head: u64, tail: u64) -> usize {
        let mixed = (head ^ tail.rotate_left(29) ^ len as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (mixed >> self.shift) as usize
    }

    /// The value kept for `key`, if it is known.
    pub fn get(&self, key: &str) -> Option<&'static str> {
        let bytes = key.as_bytes();
        let (head, tail) = ends(bytes);
        let mask = self.slots.len() - 1;
        let mut i = self.slot(bytes.len(), head, tail);
        while let Some(e) = &self.slots[i] {
            if e.head == head
                && e.tail == tail
                && e.key.len() == bytes.len()
                && (bytes.len() <= 16 || e.key.as_bytes()[8..] == bytes[8..])
            {
                return Some(e.value);
            }
            i = (i + 1) & mask;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_known_name_and_nothing_else() {
        let keys: Vec<&'static str> = [
            "a",
            "ab",
            "abcdefg",
            "abcdefgh",
            "abcdefghi",
            "process.hash.md5",
            "process.hash.sha1",
            "process.hash.sha256",
            "file.hash.md5",
            "dll.hash.md5",
            "process.parent.executable",
            "process.parent.exxcutable_",
            "@timestamp",
        ]
        .to_vec();
        let table = NameTable::new(keys.iter().map(|&k| (k, k)));
        for k in &keys {
            assert_eq!(table.get(k), Some(*k));
        }
        // Same length and ends, a different middle; prefixes; padding.
        for unknown in [
            "",
            "b",
            "abcdefg\0",
            "abcdefgh\0",
            "process.hash.mdX",
            "process.parent.exeXutable",
            "process.parent.exxcutable",
            "process.hash.sha2566",
            "file.hash.md",
            "processXhash.md5",
        ] {
            assert_eq!(table.get(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn a_repeated_key_keeps_its_first_value() {
        let table = NameTable::new([("x.y", "first"), ("x.y", "second")]);
        assert_eq!(table.get("x.y"), Some("first"));
    }

    #[test]
    fn many_names_and_probes_of_random_ones() {
        let owned: Vec<String> = (0..500).map(|i| format!("field.number.{i}")).collect();
        let leaked: Vec<&'static str> = owned
            .into_iter()
            .map(|s| &*Box::leak(s.into_boxed_str()))
            .collect();
        let table = NameTable::new(leaked.iter().map(|&k| (k, k)));
        for k in &leaked {
            assert_eq!(table.get(k), Some(*k));
        }
        for i in 500..1500 {
            assert_eq!(table.get(&format!("field.number.{i}")), None);
        }
    }
}
