#![no_main]
//! The Sigma condition parser under arbitrary text.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let names = ["selection".to_owned(), "selection_b".to_owned(), "filter".to_owned()];
        let _ = turncoat_sigma::condition::parse(text, &names);
    }
});
