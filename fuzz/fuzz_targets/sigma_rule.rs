#![no_main]
//! The Sigma rule parser and compiler under arbitrary text.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = turncoat_sigma::parse_file("fuzz.yml", text);
    }
});
