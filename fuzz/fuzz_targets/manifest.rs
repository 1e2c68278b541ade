#![no_main]
//! Lockfiles, manifests and SBOMs under arbitrary bytes: the first byte
//! picks the kind; every reader may reject, never panic.

use libfuzzer_sys::fuzz_target;
use turncoat_formats::manifest::{ManifestKind, read};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let kind = ManifestKind::ALL[pick as usize % ManifestKind::ALL.len()];
    let _ = read(kind, "fuzz", rest);
});
