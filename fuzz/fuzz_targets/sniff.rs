#![no_main]
//! Telemetry reader under arbitrary bytes: it may reject, never panic.

use libfuzzer_sys::fuzz_target;
use turncoat_formats::{Collect, Format, Input, ReadOptions, read_telemetry};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::from_bytes("fuzz", data.to_vec());
    let format: Option<Format> = None;
    let _ = read_telemetry(&mut input, format, &ReadOptions::default(), &mut Collect::default());
});
