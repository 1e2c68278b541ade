#![no_main]
//! Intel reader under arbitrary bytes: it may reject, never panic.

use libfuzzer_sys::fuzz_target;
use turncoat_formats::intel::{IntelFormat, read_intel};
use turncoat_formats::{Input, Limits};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::from_bytes("fuzz", data.to_vec());
    let _ = read_intel(&mut input, Some(IntelFormat::Csv), &Limits::default());
});
