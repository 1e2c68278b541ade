//! One file's analysis: its kind, hashes, entropy, and for executables
//! the sections, imports, version resource, code hash and signature.

use std::collections::BTreeSet;

use object::read::pe::{ImageNtHeaders, PeFile};
use object::{Object, ObjectSection, SectionKind};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::authenticode::{Signature, msi_signature, signature};
use crate::strings::{is_source, network_strings, source_strings};

/// What a file is, by content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Kind {
    Pe,
    Elf,
    MachO,
    Script,
    Archive,
    Other,
}

/// A section of an executable.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Section {
    pub name: String,
    pub size: u64,
    pub entropy: f64,
    pub executable: bool,
}

/// One analysed file.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileInfo {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// SHA-1 and MD5, computed only when intel is matched (see
    /// [`FileInfo::legacy_hashes`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    pub kind: Kind,
    pub entropy: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<Section>,
    /// `library!symbol` (or the symbol alone where formats do not say).
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub imports: BTreeSet<String>,
    pub exports: usize,
    /// SHA-256 over the executable sections' bytes: changes when code does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_sha256: Option<String>,
    /// PE version resource: FileVersion, ProductVersion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_version: Option<String>,
    /// Bytes after the last section (PE, not counting the certificate table).
    pub overlay: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
    /// Mach-O: whether an `LC_CODE_SIGNATURE` is present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub macho_signed: Option<bool>,
    /// URLs, domains and IP addresses found in the file.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub network: BTreeSet<String>,
    /// In source code, those only its comments mention (documentation,
    /// not behaviour: matched against intel, left out of a diff).
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub commented: BTreeSet<String>,
    /// Why the binary could not be parsed, when it looked like one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
    /// For a lockfile, manifest or SBOM: which kind, and the packages it
    /// pins (see [`crate::dependencies`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<turncoat_formats::manifest::ManifestKind>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<turncoat_core::InventoryItem>,
    /// The dependencies a manifest declares, pinned or not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub declared: Vec<turncoat_formats::manifest::Declared>,
}

/// Shannon entropy of `data` in bits per byte.
pub fn entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0u64; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    let n = data.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The magic of a compound file (MSI and other OLE documents).
const COMPOUND_FILE: &[u8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1";

fn kind_of(path: &str, data: &[u8]) -> Kind {
    let lower = path.to_ascii_lowercase();
    if data.starts_with(b"MZ") {
        Kind::Pe
    } else if data.starts_with(b"\x7fELF") {
        Kind::Elf
    } else if [
        [0xfe, 0xed, 0xfa, 0xce],
        [0xfe, 0xed, 0xfa, 0xcf],
        [0xce, 0xfa, 0xed, 0xfe],
        [0xcf, 0xfa, 0xed, 0xfe],
        [0xca, 0xfe, 0xba, 0xbe],
    ]
    .iter()
    .any(|m| data.starts_with(m))
    {
        Kind::MachO
    } else if data.starts_with(b"PK\x03\x04")
        || data.starts_with(&[0x1f, 0x8b])
        || data.starts_with(COMPOUND_FILE)
        || data.get(257..262) == Some(b"ustar")
    {
        Kind::Archive
    } else if data.starts_with(b"#!")
        || [
            ".js", ".mjs", ".cjs", ".py", ".ps1", ".sh", ".bat", ".cmd", ".vbs", ".rb", ".pl",
        ]
        .iter()
        .any(|x| lower.ends_with(x))
    {
        Kind::Script
    } else {
        Kind::Other
    }
}

impl FileInfo {
    /// Adds SHA-1 and MD5, which intel still publishes; skipped otherwise,
    /// as they cost as much as the rest of the hashing.
    pub fn legacy_hashes(&mut self, data: &[u8]) {
        self.sha1 = Some(hex(&sha1::Sha1::digest(data)));
        self.md5 = Some(hex(&md5::Md5::digest(data)));
    }
}

/// Analyses one unpacked file.
pub fn analyse(path: &str, data: &[u8]) -> FileInfo {
    let kind = kind_of(path, data);
    let mut info = FileInfo {
        path: path.to_owned(),
        size: data.len() as u64,
        sha256: hex(&Sha256::digest(data)),
        sha1: None,
        md5: None,
        kind,
        entropy: entropy(data),
        sections: Vec::new(),
        imports: BTreeSet::new(),
        exports: 0,
        code_sha256: None,
        file_version: None,
        product_version: None,
        overlay: 0,
        signature: None,
        macho_signed: None,
        network: BTreeSet::new(),
        commented: BTreeSet::new(),
        parse_error: None,
        manifest: None,
        packages: Vec::new(),
        declared: Vec::new(),
    };
    if matches!(
        kind,
        Kind::Pe | Kind::Elf | Kind::MachO | Kind::Script | Kind::Other
    ) {
        if is_source(path) {
            (info.network, info.commented) = source_strings(data);
        } else {
            info.network = network_strings(data);
        }
    }
    if matches!(kind, Kind::Pe | Kind::Elf | Kind::MachO)
        && let Err(e) = executable(data, &mut info)
    {
        info.parse_error = Some(e.to_string());
    }
    if data.starts_with(COMPOUND_FILE) {
        info.signature = msi_signature(data);
    }
    info
}

fn executable(data: &[u8], info: &mut FileInfo) -> object::Result<()> {
    let file = object::File::parse(data)?;
    let mut code = Sha256::new();
    let mut has_code = false;
    let mut end_of_sections = 0u64;
    for s in file.sections() {
        let bytes = s.data().unwrap_or(&[]);
        let executable = s.kind() == SectionKind::Text;
        if executable {
            code.update(bytes);
            has_code = true;
        }
        if let Some((offset, size)) = s.file_range() {
            end_of_sections = end_of_sections.max(offset.saturating_add(size));
        }
        info.sections.push(Section {
            name: s.name().unwrap_or("").to_owned(),
            size: bytes.len() as u64,
            entropy: entropy(bytes),
            executable,
        });
    }
    if has_code {
        info.code_sha256 = Some(hex(&code.finalize()));
    }
    for i in file.imports().unwrap_or_default() {
        let lib = String::from_utf8_lossy(i.library()).to_ascii_lowercase();
        let name = String::from_utf8_lossy(i.name());
        info.imports.insert(if lib.is_empty() {
            name.into_owned()
        } else {
            format!("{lib}!{name}")
        });
    }
    info.exports = file.exports().map_or(0, |e| e.len());
    match &file {
        object::File::Pe32(pe) => pe_details(pe, data, end_of_sections, info),
        object::File::Pe64(pe) => pe_details(pe, data, end_of_sections, info),
        object::File::MachO32(m) => info.macho_signed = Some(macho_signed(m)),
        object::File::MachO64(m) => info.macho_signed = Some(macho_signed(m)),
        _ => {}
    }
    Ok(())
}

fn macho_signed<M: object::read::macho::MachHeader>(
    file: &object::read::macho::MachOFile<'_, M>,
) -> bool {
    let Ok(mut commands) = file.macho_load_commands() else {
        return false;
    };
    while let Ok(Some(c)) = commands.next() {
        if c.cmd() == object::macho::LC_CODE_SIGNATURE {
            return true;
        }
    }
    false
}

fn pe_details<I: ImageNtHeaders>(
    pe: &PeFile<'_, I>,
    data: &[u8],
    end_of_sections: u64,
    info: &mut FileInfo,
) {
    let table = authenticode::PeTrait::certificate_table_range(pe)
        .ok()
        .flatten()
        .filter(|r| !r.is_empty());
    // The overlay: bytes past the sections that are not the certificate table.
    let after = data.len() as u64;
    info.overlay = match &table {
        Some(r) => {
            (r.start as u64).saturating_sub(end_of_sections) + after.saturating_sub(r.end as u64)
        }
        None => after.saturating_sub(end_of_sections),
    };
    if table.is_some() {
        info.signature = Some(signature(pe));
    }
    if let Some(rsrc) = pe.section_by_name(".rsrc")
        && let Ok(bytes) = rsrc.data()
    {
        let (file, product) = version_resource(bytes);
        info.file_version = file;
        info.product_version = product;
    }
}

/// FileVersion and ProductVersion from the VS_FIXEDFILEINFO in a resource
/// section, found by its signature (0xFEEF04BD).
fn version_resource(rsrc: &[u8]) -> (Option<String>, Option<String>) {
    let signature = 0xFEEF_04BDu32.to_le_bytes();
    let Some(at) = rsrc.windows(4).position(|w| w == signature) else {
        return (None, None);
    };
    let word = |i: usize| {
        rsrc.get(at + i..at + i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let version = |ms: Option<u32>, ls: Option<u32>| {
        let (ms, ls) = (ms?, ls?);
        Some(format!(
            "{}.{}.{}.{}",
            ms >> 16,
            ms & 0xffff,
            ls >> 16,
            ls & 0xffff
        ))
    };
    (version(word(8), word(12)), version(word(16), word(20)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_of_uniform_and_constant_data() {
        let all: Vec<u8> = (0..=255).collect();
        assert!((entropy(&all) - 8.0).abs() < 1e-9);
        assert_eq!(entropy(&[7; 100]), 0.0);
    }

    #[test]
    fn version_resource_is_read_from_the_fixed_file_info() {
        let mut rsrc = vec![0u8; 40];
        rsrc.extend_from_slice(&0xFEEF_04BDu32.to_le_bytes());
        rsrc.extend_from_slice(&0x0001_0000u32.to_le_bytes());
        rsrc.extend_from_slice(&((18u32 << 16) | 12).to_le_bytes()); // 18.12
        rsrc.extend_from_slice(&(407u32 << 16).to_le_bytes()); // .407.0
        rsrc.extend_from_slice(&((18u32 << 16) | 12).to_le_bytes());
        rsrc.extend_from_slice(&(416u32 << 16).to_le_bytes());
        assert_eq!(
            version_resource(&rsrc),
            (Some("18.12.407.0".into()), Some("18.12.416.0".into()))
        );
        assert_eq!(version_resource(&rsrc[..30]), (None, None));
    }

    #[test]
    fn garbage_that_looks_like_a_binary_is_an_error_not_a_panic() {
        let mut junk = b"MZ".to_vec();
        junk.extend(std::iter::repeat_n(0xff, 300));
        let info = analyse("x.dll", &junk);
        assert_eq!(info.kind, Kind::Pe);
        assert!(info.parse_error.is_some());
    }
}
