#![no_main]
//! A saved indicator index under arbitrary bytes: it may be refused,
//! never panic, and one that loads must answer lookups.

use libfuzzer_sys::fuzz_target;
use turncoat_core::{Observable, ObservableKind};
use turncoat_detect::IndicatorIndex;

fuzz_target!(|data: &[u8]| {
    // The key is read from the input itself, so the fuzzer reaches past
    // the staleness check.
    let key = data
        .get(8..16)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    if let Ok(index) = IndicatorIndex::from_snapshot(data, key) {
        for id in 0..index.len() {
            let _ = index.get(id);
        }
        for (kind, value) in [
            (ObservableKind::Domain, "a.example.com"),
            (ObservableKind::Ip, "198.51.100.7"),
            (ObservableKind::Url, "https://x.example.com/p/a"),
        ] {
            if let Some(obs) = Observable::new(kind, value) {
                index.lookup(&obs, |_| {});
            }
        }
    }
});
