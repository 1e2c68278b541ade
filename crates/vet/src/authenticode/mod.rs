//! Authenticode: the PKCS#7 SignedData in a PE's certificate table, the
//! signer, the image digest recomputed and compared, and bytes hidden
//! after the signature (CVE-2013-3900, the 3CX `d3dcompiler_47.dll` trick:
//! the certificate table is not covered by the digest, so data appended
//! inside it leaves the signature valid). MSI packages carry the same
//! SignedData in their `\x05DigitalSignature` stream, over a digest of
//! every other stream. [`verify`] checks the signature itself.

pub mod verify;

use std::io::{Read, Seek};
use std::path::Path;

use authenticode::{AttributeCertificateIterator, AuthenticodeSignature, PeTrait};
use cms::cert::x509::der::{Decode, SliceReader};
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use serde::Serialize;
use sha2::digest::Update;

/// What the certificate table holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Signature {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// SHA-256 of the signer's public key (its SubjectPublicKeyInfo): the
    /// same name under a new key is another signer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer_key: Option<String>,
    /// Subjects from the signer up, each signed by the next.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
    /// Why the signature does not verify: forged, or altered after signing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad_signature: Option<String>,
    /// Why the signature could not be checked (an algorithm not supported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unverified: Option<String>,
    /// The last certificate of the chain, DER, for the trust check.
    #[serde(skip)]
    pub chain_top: Vec<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest_algorithm: Option<String>,
    /// Whether the signed digest equals the image digest recomputed;
    /// `None` when it could not be computed (unknown algorithm).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest_matches: Option<bool>,
    /// Bytes inside the certificate entry after the SignedData, beyond
    /// alignment padding.
    pub trailing_bytes: u64,
    /// Bytes of the file after the certificate table.
    pub bytes_after_table: u64,
    /// Why the table could not be read as a signature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const SHA1: &str = "1.3.14.3.2.26";

/// Length of the DER value at the start of `data`, header included.
fn der_length(data: &[u8]) -> Option<usize> {
    let (&tag, rest) = data.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    if first < 0x80 {
        return Some(2 + first as usize);
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 || rest.len() < n {
        return None;
    }
    let len = rest[..n]
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | b as usize);
    2usize.checked_add(n)?.checked_add(len)
}

/// Reads the first signature in the certificate table of `pe`.
pub fn signature(pe: &dyn PeTrait) -> Signature {
    let mut out = Signature::default();
    if let Ok(Some(range)) = pe.certificate_table_range() {
        out.bytes_after_table = (pe.data().len() as u64).saturating_sub(range.end as u64);
    }
    let certificates = match AttributeCertificateIterator::new(pe) {
        Ok(Some(c)) => c,
        Ok(None) => return out,
        Err(e) => {
            out.error = Some(format!("certificate table: {e}"));
            return out;
        }
    };
    let Some(first) = certificates.into_iter().next() else {
        out.error = Some("empty certificate table".into());
        return out;
    };
    let cert = match first {
        Ok(c) => c,
        Err(e) => {
            out.error = Some(format!("certificate entry: {e}"));
            return out;
        }
    };
    if let Some(sig) = read_signed_data(cert.data, &mut out) {
        out.digest_matches =
            digest_matches(&sig, |h| authenticode::authenticode_digest(pe, h).is_ok());
    }
    out
}

/// The stream of an MSI that holds its signature, and the one holding a
/// digest of the file's metadata that the signature then also covers.
const MSI_SIGNATURE: &str = "\u{5}DigitalSignature";
const MSI_SIGNATURE_EX: &str = "\u{5}MsiDigitalSignatureEx";

/// Reads the signature of an MSI (any compound file), if it has one.
pub fn msi_signature(data: &[u8]) -> Option<Signature> {
    let mut file = cfb::CompoundFile::open(std::io::Cursor::new(data)).ok()?;
    let path = Path::new("/").join(MSI_SIGNATURE);
    if !file.is_stream(&path) {
        return None;
    }
    let mut out = Signature::default();
    let mut der = Vec::new();
    if let Err(e) = file
        .open_stream(&path)
        .and_then(|mut s| s.read_to_end(&mut der))
    {
        out.error = Some(format!("signature stream: {e}"));
        return Some(out);
    }
    if let Some(sig) = read_signed_data(&der, &mut out) {
        // With MsiDigitalSignatureEx the signed digest also covers the
        // entries' metadata; that form is not recomputed here.
        let extended = file.is_stream(Path::new("/").join(MSI_SIGNATURE_EX));
        if !extended {
            out.digest_matches = digest_matches(&sig, |h| {
                msi_digest(&mut file, Path::new("/"), 0, h).is_ok()
            });
        }
    }
    Some(out)
}

/// The MSI content digest: every stream's bytes, depth first with the
/// entries of each storage in the order of their UTF-16LE names compared
/// bytewise, the signature streams left out, then the storage's CLSID.
/// Storages nest a level or two in real packages; a hostile file nesting
/// them thousands deep gets no digest rather than a stack overflow.
fn msi_digest<F: Read + Seek>(
    file: &mut cfb::CompoundFile<F>,
    storage: &Path,
    depth: usize,
    h: &mut dyn Update,
) -> std::io::Result<()> {
    const MAX_DEPTH: usize = 16;
    if depth > MAX_DEPTH {
        return Err(std::io::Error::other("storages nested too deep"));
    }
    let mut entries: Vec<(Vec<u8>, std::path::PathBuf, bool)> = file
        .read_storage(storage)?
        .map(|e| {
            let name = e.name().encode_utf16().flat_map(u16::to_le_bytes).collect();
            (name, e.path().to_owned(), e.is_stream())
        })
        .collect();
    entries.sort();
    let root = storage == Path::new("/");
    for (_, path, is_stream) in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if root && (name == MSI_SIGNATURE || name == MSI_SIGNATURE_EX) {
            continue;
        }
        if is_stream {
            let mut stream = file.open_stream(&path)?;
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = stream.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        } else {
            msi_digest(file, &path, depth + 1, h)?;
        }
    }
    h.update(&file.entry(storage)?.clsid().to_bytes_le());
    Ok(())
}

/// Reads the PKCS#7 SignedData at the start of `der` into `out`: bytes
/// after it, the digest algorithm, and the signer.
fn read_signed_data(der: &[u8], out: &mut Signature) -> Option<AuthenticodeSignature> {
    if let Some(used) = der_length(der) {
        let trailing = der.len().saturating_sub(used);
        let padding_only = trailing < 8 && der[used.min(der.len())..].iter().all(|&b| b == 0);
        if !padding_only {
            out.trailing_bytes = trailing as u64;
        }
    }
    let sig = match AuthenticodeSignature::from_bytes(der) {
        Ok(s) => s,
        Err(e) => {
            out.error = Some(format!("signature: {e}"));
            return None;
        }
    };
    let algorithm = sig.digest_algorithm().oid.to_string();
    out.digest_algorithm = Some(match algorithm.as_str() {
        SHA256 => "sha256".into(),
        SHA1 => "sha1".into(),
        other => other.to_owned(),
    });
    if let SignerIdentifier::IssuerAndSerialNumber(id) = &sig.signer_info().sid {
        out.issuer = Some(id.issuer.to_string());
        out.serial = Some(crate::binary::hex(id.serial_number.as_bytes()));
    }
    match signed_data(der) {
        Some(signed) => {
            if let Some(info) = signed.signer_infos.0.as_slice().first() {
                let cert = verify::signer_certificate(&signed, info);
                out.signer = cert.map(|c| c.tbs_certificate.subject.to_string());
                out.signer_key = cert.and_then(verify::key_hash);
            }
            match verify::verify_signed_data(&signed) {
                Ok(chain) => {
                    out.chain = chain.subjects;
                    out.chain_top = chain.top;
                }
                Err(verify::Failure::Bad(why)) => out.bad_signature = Some(why),
                Err(verify::Failure::Unsupported(why)) => out.unverified = Some(why),
            }
        }
        None => out.bad_signature = Some("the SignedData does not read".into()),
    }
    Some(sig)
}

/// The SignedData at the start of `der`, whatever follows it.
fn signed_data(der: &[u8]) -> Option<SignedData> {
    let mut reader = SliceReader::new(der).ok()?;
    let info = ContentInfo::decode(&mut reader).ok()?;
    info.content.decode_as::<SignedData>().ok()
}

/// Whether the digest `feed` computes equals the signed one; `None` for an
/// algorithm not known here or content that could not be read.
fn digest_matches(
    sig: &AuthenticodeSignature,
    feed: impl FnOnce(&mut dyn Update) -> bool,
) -> Option<bool> {
    fn finish<D: sha2::Digest + Update>(
        mut h: D,
        feed: impl FnOnce(&mut dyn Update) -> bool,
        expected: &[u8],
    ) -> Option<bool> {
        feed(&mut h).then(|| h.finalize().as_slice() == expected)
    }
    match sig.digest_algorithm().oid.to_string().as_str() {
        SHA256 => finish(sha2::Sha256::default(), feed, sig.digest()),
        SHA1 => finish(sha1::Sha1::default(), feed, sig.digest()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compound file with `depth` storages nested and a stream in each.
    fn nested(depth: usize) -> cfb::CompoundFile<std::io::Cursor<Vec<u8>>> {
        let mut file = cfb::CompoundFile::create(std::io::Cursor::new(Vec::new())).unwrap();
        let mut path = std::path::PathBuf::from("/");
        for i in 0..depth {
            path.push(format!("s{i}"));
            file.create_storage(&path).unwrap();
            let mut stream = file.create_stream(path.join("data")).unwrap();
            std::io::Write::write_all(&mut stream, &[i as u8; 10]).unwrap();
        }
        file
    }

    #[test]
    fn msi_digests_are_deterministic_and_bounded_in_depth() {
        let digest = |depth| {
            let mut h = sha2::Sha256::default();
            msi_digest(&mut nested(depth), Path::new("/"), 0, &mut h)
                .map(|()| sha2::Digest::finalize(h).to_vec())
        };
        assert_eq!(digest(3).unwrap(), digest(3).unwrap());
        assert_ne!(digest(3).unwrap(), digest(2).unwrap());
        assert!(digest(40).is_err(), "deep nesting is refused");
    }

    #[test]
    fn der_lengths() {
        assert_eq!(der_length(&[0x30, 0x03, 1, 2, 3]), Some(5));
        assert_eq!(der_length(&[0x30, 0x82, 0x01, 0x00]), Some(4 + 256));
        assert_eq!(der_length(&[0x31, 0x03]), None);
        assert_eq!(der_length(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(der_length(&[0x30]), None);
    }
}
