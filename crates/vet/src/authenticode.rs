//! Authenticode: the PKCS#7 SignedData in a PE's certificate table, the
//! signer, the image digest recomputed and compared, and bytes hidden
//! after the signature (CVE-2013-3900, the 3CX `d3dcompiler_47.dll` trick:
//! the certificate table is not covered by the digest, so data appended
//! inside it leaves the signature valid).

use authenticode::{AttributeCertificateIterator, AuthenticodeSignature, PeTrait};
use cms::signed_data::SignerIdentifier;
use serde::Serialize;

/// What the certificate table holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Signature {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
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
    if let Some(used) = der_length(cert.data) {
        let trailing = cert.data.len().saturating_sub(used);
        let padding_only = trailing < 8
            && cert.data[used.min(cert.data.len())..]
                .iter()
                .all(|&b| b == 0);
        if !padding_only {
            out.trailing_bytes = trailing as u64;
        }
    }
    let sig = match AuthenticodeSignature::from_bytes(cert.data) {
        Ok(s) => s,
        Err(e) => {
            out.error = Some(format!("signature: {e}"));
            return out;
        }
    };
    let algorithm = sig.digest_algorithm().oid.to_string();
    out.digest_matches = match algorithm.as_str() {
        SHA256 => {
            let mut h = sha2::Sha256::default();
            authenticode::authenticode_digest(pe, &mut h)
                .ok()
                .map(|()| sha2::Digest::finalize(h).as_slice() == sig.digest())
        }
        SHA1 => {
            let mut h = sha1::Sha1::default();
            authenticode::authenticode_digest(pe, &mut h)
                .ok()
                .map(|()| sha1::Digest::finalize(h).as_slice() == sig.digest())
        }
        _ => None,
    };
    out.digest_algorithm = Some(match algorithm.as_str() {
        SHA256 => "sha256".into(),
        SHA1 => "sha1".into(),
        other => other.to_owned(),
    });
    if let SignerIdentifier::IssuerAndSerialNumber(id) = &sig.signer_info().sid {
        out.issuer = Some(id.issuer.to_string());
        out.serial = Some(crate::binary::hex(id.serial_number.as_bytes()));
        out.signer = sig
            .certificates()
            .find(|c| c.tbs_certificate.serial_number == id.serial_number)
            .map(|c| c.tbs_certificate.subject.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths() {
        assert_eq!(der_length(&[0x30, 0x03, 1, 2, 3]), Some(5));
        assert_eq!(der_length(&[0x30, 0x82, 0x01, 0x00]), Some(4 + 256));
        assert_eq!(der_length(&[0x31, 0x03]), None);
        assert_eq!(der_length(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(der_length(&[0x30]), None);
    }
}
