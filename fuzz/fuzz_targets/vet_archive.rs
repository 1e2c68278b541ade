#![no_main]
//! Hostile archives (zip, tar, gzip, nested): unpacked within the limits,
//! every file analysed; findings or errors, never a panic.

use libfuzzer_sys::fuzz_target;
use turncoat_vet::unpack::{Limits, unpack_bytes};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_file_bytes: 1 << 20,
        max_total_bytes: 8 << 20,
        max_entries: 1_000,
        ..Limits::default()
    };
    for e in unpack_bytes("fuzz.zip", data.to_vec(), &limits).entries {
        let _ = turncoat_vet::binary::analyse(&e.path, &e.data);
    }
});
