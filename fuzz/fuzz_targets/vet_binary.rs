#![no_main]
//! Malformed executables: PE (with its certificate table and Authenticode
//! signature), ELF and Mach-O headers, sections, imports, strings; and
//! compound files (MSI) with their signature stream.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = turncoat_vet::binary::analyse("fuzz.dll", data);
    let mut pe = b"MZ".to_vec();
    pe.extend_from_slice(data);
    let _ = turncoat_vet::binary::analyse("fuzz.exe", &pe);
    let mut msi = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1".to_vec();
    msi.extend_from_slice(data);
    let _ = turncoat_vet::binary::analyse("fuzz.msi", &msi);
});
