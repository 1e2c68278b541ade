#![no_main]
//! The STIX pattern compiler under arbitrary text.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = turncoat_formats::intel::stix::compile(text);
    }
});
