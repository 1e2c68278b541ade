//! Mutated inputs through every reader: they may reject records or whole
//! inputs, never panic. A deterministic stand-in for the fuzz targets in
//! `fuzz/` that runs with the ordinary tests.

use turncoat_formats::intel::{IntelFormat, read_intel};
use turncoat_formats::{Collect, Format, Input, Limits, ReadOptions, read_telemetry};

const ECS: &str = r#"{"@timestamp":"2023-03-22T10:00:00Z","host":{"name":"h","ip":["10.0.0.1"],"os":{"family":"windows"}},"event":{"category":["process"],"type":["start"]},"process":{"executable":"C:\\a.exe","hash":{"sha256":"aa"},"parent":{"executable":"C:\\b.exe"}},"dns":{"answers":[{"data":"1.2.3.4"}]}}"#;
const WINEVENT: &str = r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},"EventID":1,"TimeCreated":{"#attributes":{"SystemTime":"2025-11-26T05:11:27Z"}},"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"ws"},"EventData":{"Image":"C:\\x.exe","Data":[{"#attributes":{"Name":"A"},"#text":"b"}]}}}"##;
const ZEEK: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.resp_p\ttunnel_parents\n#types\ttime\tstring\taddr\tport\tset[string]\n1.5\tC1\t10.0.0.1\t443\ta,b\n";
const OSQUERY: &str = r#"{"name":"pack_x_programs","hostIdentifier":"h","unixTime":1,"columns":{"name":"x","version":"1"},"action":"added"}
{"name":"deb","hostIdentifier":"h","unixTime":1,"snapshot":[{"name":"a","version":"1","arch":"x","maintainer":"m"}]}"#;
const CYCLONEDX: &str = r#"{"bomFormat":"CycloneDX","metadata":{"component":{"name":"x"}},"components":[{"name":"a","version":"1","purl":"pkg:npm/%40s/a@1","components":[{"name":"b","version":"2"}]}]}"#;
const SPDX: &str = r#"{"spdxVersion":"SPDX-2.3","name":"x","packages":[{"name":"a","versionInfo":"1","externalRefs":[{"referenceType":"purl","referenceLocator":"pkg:pypi/a@1"}]}]}"#;
const STIX: &str = r#"{"type":"bundle","objects":[{"type":"indicator","id":"indicator--1","pattern":"[domain-name:value = 'a.com' OR (file:hashes.MD5 = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' AND file:name = 'x')]","valid_from":"2023-01-01T00:00:00Z"},{"type":"relationship","relationship_type":"indicates","source_ref":"indicator--1","target_ref":"campaign--1"},{"type":"campaign","id":"campaign--1","name":"c"}]}"#;
const MISP: &str = r#"{"Event":{"info":"x","Attribute":[{"type":"domain|ip","value":"a.com|1.2.3.4","to_ids":true}],"Object":[{"Attribute":[{"type":"sha256","value":"aa","to_ids":true}]}]}}"#;
const CSV: &str = "Indicator,Data,Note\nSHA256,aa124a4b4df12b34e74ee7f6c683b2ebec4ce9a8edcf9be345823b4fdcf5d868,x\nURL,evil[.]com,y\n\"a,b\",c,d\n";
const OSV: &str = r#"{"id":"MAL-1","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0"}]}],"versions":["0.1"]}]}"#;
const ADVISORY: &str = "id = \"A\"\ntitle = \"t\"\n[[affected]]\nproduct = \"p\"\nversions = [\"1\"]\n[[indicators]]\ntype = \"domain\"\nvalue = \"a.com\"\n";

struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..1 + self.next() % 4 {
            if v.is_empty() {
                v.push(b'{');
            }
            let i = (self.next() % v.len() as u64) as usize;
            match self.next() % 7 {
                0 => v[i] ^= 1 << (self.next() % 8),
                1 => v.truncate(i),
                2 => v.insert(
                    i,
                    [b'"', b'\\', b'{', b'[', b'\t', b'\n', 0xff, b'%'][(self.next() % 8) as usize],
                ),
                3 => {
                    let tail = v[i..].to_vec();
                    v.extend_from_slice(&tail);
                }
                4 => {
                    v.remove(i);
                }
                5 => v[i] = (self.next() % 256) as u8,
                _ => {
                    let nest = "[".repeat(200);
                    v.splice(i..i, nest.bytes());
                }
            }
        }
        v
    }
}

#[test]
fn telemetry_readers_survive_mutations() {
    let cases: [(Format, &str); 7] = [
        (Format::Ecs, ECS),
        (Format::WineventJson, WINEVENT),
        (Format::Zeek, ZEEK),
        (Format::Osquery, OSQUERY),
        (Format::CycloneDx, CYCLONEDX),
        (Format::Spdx, SPDX),
        (Format::Evtx, "ElfFile\0"),
    ];
    let mut m = Mutator(0x2545_f491_4f6c_dd1d);
    for (format, seed) in cases {
        let mut sink = Collect::default();
        read_telemetry(
            &mut Input::from_bytes("seed", seed.as_bytes().to_vec()),
            Some(format),
            &ReadOptions::default(),
            &mut sink,
        )
        .ok();
        for _ in 0..3000 {
            let data = m.mutate(seed.as_bytes());
            let mut input = Input::from_bytes("mutant", data.clone());
            let _ = read_telemetry(
                &mut input,
                Some(format),
                &ReadOptions::default(),
                &mut Collect::default(),
            );
            let mut input = Input::from_bytes("mutant", data);
            let _ = read_telemetry(
                &mut input,
                None,
                &ReadOptions::default(),
                &mut Collect::default(),
            );
        }
    }
}

#[test]
fn intel_readers_survive_mutations() {
    let cases = [
        (IntelFormat::Stix, STIX),
        (IntelFormat::Misp, MISP),
        (IntelFormat::Csv, CSV),
        (IntelFormat::Osv, OSV),
        (IntelFormat::Advisory, ADVISORY),
    ];
    let mut m = Mutator(0x9e37_79b9_7f4a_7c15);
    for (format, seed) in cases {
        let (_, intel) = read_intel(
            &mut Input::from_bytes("seed", seed.as_bytes().to_vec()),
            Some(format),
            &Limits::default(),
        )
        .unwrap();
        assert!(
            intel.rejected.is_empty() || format == IntelFormat::Csv || format == IntelFormat::Misp,
            "{format}: {:?}",
            intel.rejected
        );
        for _ in 0..3000 {
            let data = m.mutate(seed.as_bytes());
            let _ = read_intel(
                &mut Input::from_bytes("mutant", data),
                Some(format),
                &Limits::default(),
            );
        }
    }
    let mut m = Mutator(7);
    for _ in 0..5000 {
        let data = m.mutate(b"[domain-name:value = 'a.com' OR url:value LIKE 'http://x/%'] AND [ipv4-addr:value ISSUBSET '1.2.3.0/24']");
        if let Ok(text) = std::str::from_utf8(&data) {
            let _ = turncoat_formats::intel::stix::compile(text);
        }
    }
}

#[test]
fn oversized_records_are_skipped_with_bounded_memory() {
    let limits = Limits {
        max_record_bytes: 1024,
        max_document_bytes: 4096,
    };
    let big = format!("{}\n{}\n", "x".repeat(100_000), ECS);
    let mut sink = Collect::default();
    read_telemetry(
        &mut Input::from_bytes("big.ndjson", big.into_bytes()),
        Some(Format::Ecs),
        &ReadOptions { host: None, limits },
        &mut sink,
    )
    .unwrap();
    assert_eq!(sink.records.len(), 1);
    assert_eq!(sink.skipped.len(), 1);
    assert!(
        sink.skipped[0]
            .to_string()
            .starts_with("big.ndjson: line 1:"),
        "{}",
        sink.skipped[0]
    );
    let doc = format!(
        "{{\"bomFormat\":\"CycloneDX\",\"pad\":\"{}\"}}",
        "x".repeat(10_000)
    );
    let err = read_telemetry(
        &mut Input::from_bytes("bom.json", doc.into_bytes()),
        Some(Format::CycloneDx),
        &ReadOptions { host: None, limits },
        &mut Collect::default(),
    )
    .unwrap_err();
    assert!(err.message.contains("limit"), "{err}");
}
