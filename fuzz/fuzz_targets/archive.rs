#![no_main]
//! The archive's record decoder under arbitrary bytes, whole and through a
//! projection that steps over some fields: it may reject, never panic.

use libfuzzer_sys::fuzz_target;
use turncoat_store::{Projection, decode_records};

fuzz_target!(|data: &[u8]| {
    let _ = decode_records(data, Projection::ALL, &mut |_| {});
    let odd = |name: &str| name.len() % 2 == 1;
    let half = Projection {
        records: &|head| head.time.0 % 2 == 0,
        fields: &odd,
    };
    let _ = decode_records(data, half, &mut |_| {});
});
