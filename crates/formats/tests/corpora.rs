//! Conformance over the public corpora in `../shared/data`, skipped with a
//! printed reason when absent.

use std::path::{Path, PathBuf};

use turncoat_formats::intel::{IntelFormat, read_intel};
use turncoat_formats::{Collect, Format, Input, Limits, ReadOptions, read_telemetry};

fn shared(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipped: {} is absent", p.display());
        None
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
    out.sort();
}

#[test]
fn threecx_csvs_import_with_zero_rejects() {
    let Some(dir) = shared("intel/3cx") else {
        return;
    };
    for (rel, min) in [
        ("sophos/sophos_3CX_IoCs_2023-03.csv", 29),
        ("volexity/iocs.csv", 33),
    ] {
        let mut input = Input::open(&dir.join(rel)).unwrap();
        let (format, intel) = read_intel(&mut input, None, &Limits::default()).unwrap();
        assert_eq!(format, IntelFormat::Csv);
        assert!(intel.rejected.is_empty(), "{rel}: {:#?}", intel.rejected);
        assert!(
            intel.indicators.len() >= min,
            "{rel}: only {} indicators",
            intel.indicators.len()
        );
    }
}

#[test]
fn every_rita_zeek_log_parses() {
    let Some(dir) = shared("zeek/rita/test_data") else {
        return;
    };
    let mut all = Vec::new();
    files(&dir, &mut all);
    let mut total = 0;
    for path in all.iter().filter(|p| p.to_string_lossy().contains(".log")) {
        let mut input = Input::open(path).unwrap();
        let mut sink = Collect::default();
        read_telemetry(
            &mut input,
            Some(Format::Zeek),
            &ReadOptions::default(),
            &mut sink,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        // RITA's `truncated` fixtures end in a cut-off line on purpose.
        let allowed = if path.to_string_lossy().contains("truncated") {
            1
        } else {
            0
        };
        assert!(
            sink.skipped.len() <= allowed,
            "{}: {} skipped, first: {:?}",
            path.display(),
            sink.skipped.len(),
            sink.skipped.first()
        );
        assert!(
            !sink.records.is_empty(),
            "{} gave no records",
            path.display()
        );
        total += sink.records.len();
    }
    assert!(total > 10_000, "only {total} Zeek records");
}

#[test]
fn every_sbom_example_parses() {
    let Some(dir) = shared("sbom") else { return };
    let mut all = Vec::new();
    files(&dir, &mut all);
    let mut read = 0;
    for path in all
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let mut input = Input::open(path).unwrap();
        let mut sink = Collect::default();
        let format = read_telemetry(
            &mut input,
            None,
            &ReadOptions {
                host: Some("sbom-host".into()),
                ..Default::default()
            },
            &mut sink,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(format, Format::CycloneDx | Format::Spdx),
            "{}: {format}",
            path.display()
        );
        assert_eq!(sink.inventory().count(), 1, "{}", path.display());
        read += 1;
    }
    assert!(read >= 15, "only {read} SBOMs");
}

#[test]
fn sigma_regression_events_parse_from_json_and_evtx() {
    let Some(dir) = shared("sigma/regression_data") else {
        return;
    };
    let mut all = Vec::new();
    files(&dir, &mut all);
    let (mut json, mut evtx) = (0, 0);
    for path in &all {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext != "json" && ext != "evtx" {
            continue;
        }
        let mut input = Input::open(path).unwrap();
        let mut sink = Collect::default();
        let format = read_telemetry(&mut input, None, &ReadOptions::default(), &mut sink)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            sink.skipped.is_empty(),
            "{}: {:?}",
            path.display(),
            sink.skipped.first()
        );
        assert!(!sink.records.is_empty(), "{}", path.display());
        match format {
            Format::WineventJson => json += 1,
            Format::Evtx => evtx += 1,
            other => panic!("{}: sniffed as {other}", path.display()),
        }
    }
    assert!(json > 150 && evtx > 150, "json {json}, evtx {evtx}");
}

#[test]
fn osv_record_reads() {
    let Some(path) = shared("osv/MAL-2022-1.json") else {
        return;
    };
    let mut input = Input::open(&path).unwrap();
    let (format, intel) = read_intel(&mut input, None, &Limits::default()).unwrap();
    assert_eq!(format, IntelFormat::Osv);
    assert!(intel.advisories[0].malicious);
}
