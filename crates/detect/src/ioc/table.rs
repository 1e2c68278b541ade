//! The value tables of the indicator index.

/// An absent reference in an index entry.
pub(super) const NONE: u32 = u32::MAX;

/// An empty slot.
pub(super) const EMPTY: u64 = u64::MAX;

/// Indicator ids by value, for one observable kind: open addressing with
/// linear probing, kept at most half full, of ids whose values live in the
/// index's arena (so no value is stored twice). Each slot holds the id in
/// its low half and the high half of the value's hash in its high half:
/// a lookup that misses (most do) compares slots only, without touching
/// the entries or the arena. Plain `u64`s, so a table is saved and loaded
/// as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct ValueTable {
    pub(super) slots: Vec<u64>,
    pub(super) len: usize,
}

fn slot(hash: u64, id: u32) -> u64 {
    (hash & 0xffff_ffff_0000_0000) | u64::from(id)
}

impl ValueTable {
    /// Files `id` under `hash`; `rehash` gives the hash of an id already
    /// in the table, for when it grows.
    pub(super) fn insert(&mut self, hash: u64, id: u32, rehash: impl Fn(u32) -> u64) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.resize((self.slots.len() * 2).max(16), &rehash);
        }
        self.place(hash, id);
        self.len += 1;
    }

    /// Makes room for `additional` more ids without growing step by step.
    pub(super) fn reserve(&mut self, additional: usize, rehash: impl Fn(u32) -> u64) {
        let needed = ((self.len + additional) * 2).next_power_of_two();
        if needed > self.slots.len() {
            self.resize(needed, &rehash);
        }
    }

    fn resize(&mut self, capacity: usize, rehash: &impl Fn(u32) -> u64) {
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; capacity]);
        for s in old.into_iter().filter(|&s| s != EMPTY) {
            let id = s as u32;
            self.place(rehash(id), id);
        }
    }

    fn place(&mut self, hash: u64, id: u32) {
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        while self.slots[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot(hash, id);
    }

    /// The ids filed under `hash`, and any other whose hash shares its
    /// high half: the caller compares values. The probe ends at the first
    /// empty slot, which a table at most half full always has.
    pub(super) fn candidates(&self, hash: u64) -> impl Iterator<Item = u32> + '_ {
        let mask = self.slots.len().wrapping_sub(1);
        let start = hash as usize & mask;
        let tag = hash & 0xffff_ffff_0000_0000;
        (0..self.slots.len())
            .map(move |step| self.slots[(start + step) & mask])
            .take_while(|&s| s != EMPTY)
            .filter(move |&s| s & 0xffff_ffff_0000_0000 == tag)
            .map(|s| s as u32)
    }

    /// Whether the slots make a table lookups can trust: a power of two
    /// in size, with an empty slot (so probes end), `len` filled, and
    /// every id below `ids`.
    pub(super) fn is_sound(&self, ids: usize) -> bool {
        if self.slots.is_empty() {
            return self.len == 0;
        }
        let filled = self.slots.iter().filter(|&&s| s != EMPTY).count();
        self.slots.len().is_power_of_two()
            && filled == self.len
            && filled < self.slots.len()
            && self
                .slots
                .iter()
                .all(|&s| s == EMPTY || ((s as u32) as usize) < ids)
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_collisions_are_all_found() {
        let mut t = ValueTable::default();
        // Every id hashes alike: the worst case, one long probe.
        let hash = 0x1234_5678_0000_0007;
        for id in 0..100 {
            t.insert(hash, id, |_| hash);
        }
        let mut found: Vec<u32> = t.candidates(hash).collect();
        found.sort();
        assert_eq!(found, (0..100).collect::<Vec<_>>());
        // Same slot, other high half: passed over without a comparison.
        assert_eq!(t.candidates(0x8765_4321_0000_0007).count(), 0);
        assert!(t.is_sound(100));
        assert!(!t.is_sound(50));
        assert_eq!(ValueTable::default().candidates(3).count(), 0);
    }
}
