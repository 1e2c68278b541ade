//! The signature-base YARA rules compile with the external variables
//! signature scanners define; the ones that do not are counted with their
//! reasons. Skipped with a printed reason when
//! `../shared/data/signature-base/yara` is absent.

use std::path::Path;

use turncoat_vet::yara::YaraRules;

#[test]
fn signature_base_compiles() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/signature-base/yara");
    if !dir.exists() {
        eprintln!("skipped: {} is absent", dir.display());
        return;
    }
    let rules = YaraRules::compile(std::slice::from_ref(&dir)).unwrap();
    let lost: usize = rules.failed.iter().map(|f| f.rules).sum();
    eprintln!(
        "signature-base: {} rules compiled, {} files failed ({lost} rules)",
        rules.compiled,
        rules.failed.len()
    );
    for f in &rules.failed {
        eprintln!("  {} ({} rules): {}", f.file, f.rules, f.error);
    }
    let declared: usize = turncoat_vet::yara::rule_files(&[dir])
        .unwrap()
        .iter()
        .map(|f| {
            turncoat_vet::yara::declared_rules(&String::from_utf8_lossy(&std::fs::read(f).unwrap()))
        })
        .sum();
    eprintln!("{declared} rules declared in the files");
    assert!(declared > 1000, "too few rules found: {declared}");
    // Declarations are counted by line, commented-out rules included.
    assert!(rules.compiled <= declared && rules.compiled * 100 >= declared * 95);
    // Every file compiles today; a rule set that stops compiling fails here.
    assert!(rules.failed.is_empty());
}
