//! Verifying an Authenticode SignedData cryptographically: the
//! message-digest attribute against the signed content, the signature over
//! the authenticated attributes with the signer's key, and the chain of
//! certificates the SignedData carries, each signed by the next. Comparing
//! the image digest alone (what [`super::signature`] did first) is not
//! enough: anyone can rewrite the stored digest after changing the code.
//!
//! The signature schemes met in code signing are supported: RSA PKCS#1
//! v1.5 and PSS, ECDSA on P-256 and P-384, with SHA-1 or SHA-2 digests.
//! Anything else is reported as unverifiable, never as valid.

use cms::cert::x509::Certificate;
use cms::cert::x509::der::{Decode, Encode};
use cms::cert::x509::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use sha2::Digest;

/// Why a signature is not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A check failed: the signature is forged or the file was altered.
    Bad(String),
    /// An algorithm this build cannot check; neither good nor bad.
    Unsupported(String),
}

/// The chain from the signer upwards, as found inside the SignedData.
#[derive(Clone, Debug, Default)]
pub struct Chain {
    /// Subjects, signer first.
    pub subjects: Vec<String>,
    /// The last certificate reached, DER: self-signed, or one whose issuer
    /// the SignedData does not carry.
    pub top: Vec<u8>,
}

const ID_DATA_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const ID_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const SPC_INDIRECT_DATA: &str = "1.3.6.1.4.1.311.2.1.4";

const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const CURVE_P256: &str = "1.2.840.10045.3.1.7";
const CURVE_P384: &str = "1.3.132.0.34";

/// A hash algorithm this module can compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_digest_oid(oid: &str) -> Option<Hash> {
        Some(match oid {
            "1.3.14.3.2.26" => Hash::Sha1,
            "2.16.840.1.101.3.4.2.1" => Hash::Sha256,
            "2.16.840.1.101.3.4.2.2" => Hash::Sha384,
            "2.16.840.1.101.3.4.2.3" => Hash::Sha512,
            _ => return None,
        })
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// The DER DigestInfo prefix PKCS#1 v1.5 puts before the hash
    /// (RFC 8017, section 9.2, note 1).
    fn pkcs1_prefix(self) -> &'static [u8] {
        match self {
            Hash::Sha1 => &[
                0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
                0x14,
            ],
            Hash::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Hash::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Hash::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// How a signature was made, from its algorithm identifier and, where the
/// identifier names only the key type, the digest used.
#[derive(Clone, Copy, Debug)]
enum Scheme {
    Pkcs1(Hash),
    Pss(Hash),
    Ecdsa(Hash),
}

fn scheme(alg: &AlgorithmIdentifierOwned, digest: Option<Hash>) -> Result<Scheme, Failure> {
    let oid = alg.oid.to_string();
    let unsupported = || Failure::Unsupported(format!("signature algorithm {oid}"));
    let need = |d: Option<Hash>| d.ok_or_else(unsupported);
    Ok(match oid.as_str() {
        RSA_ENCRYPTION => Scheme::Pkcs1(need(digest)?),
        "1.2.840.113549.1.1.5" => Scheme::Pkcs1(Hash::Sha1),
        "1.2.840.113549.1.1.11" => Scheme::Pkcs1(Hash::Sha256),
        "1.2.840.113549.1.1.12" => Scheme::Pkcs1(Hash::Sha384),
        "1.2.840.113549.1.1.13" => Scheme::Pkcs1(Hash::Sha512),
        RSASSA_PSS => Scheme::Pss(pss_hash(alg)?),
        EC_PUBLIC_KEY => Scheme::Ecdsa(need(digest)?),
        "1.2.840.10045.4.1" => Scheme::Ecdsa(Hash::Sha1),
        "1.2.840.10045.4.3.2" => Scheme::Ecdsa(Hash::Sha256),
        "1.2.840.10045.4.3.3" => Scheme::Ecdsa(Hash::Sha384),
        "1.2.840.10045.4.3.4" => Scheme::Ecdsa(Hash::Sha512),
        _ => return Err(unsupported()),
    })
}

/// The hash of RSASSA-PSS parameters; the mask generation function is
/// MGF1 with the same hash, the only form signing tools produce.
fn pss_hash(alg: &AlgorithmIdentifierOwned) -> Result<Hash, Failure> {
    let bad = |what: &str| Failure::Bad(format!("RSASSA-PSS parameters: {what}"));
    let der = alg
        .parameters
        .as_ref()
        .ok_or_else(|| bad("missing"))?
        .to_der()
        .map_err(|e| bad(&e.to_string()))?;
    let params: rsa::pkcs1::RsaPssParamsOwned = rsa::pkcs1::der::Decode::from_der(&der)
        .map_err(|e: rsa::pkcs1::der::Error| bad(&e.to_string()))?;
    let hash = params.hash.oid.to_string();
    Hash::from_digest_oid(&hash)
        .ok_or_else(|| Failure::Unsupported(format!("RSASSA-PSS with digest {hash}")))
}

/// Checks `signature` over `data` with the key in `spki`.
fn verify(
    spki: &SubjectPublicKeyInfoOwned,
    scheme: Scheme,
    data: &[u8],
    signature: &[u8],
) -> Result<(), Failure> {
    let key_bytes = spki.subject_public_key.raw_bytes();
    let key_alg = spki.algorithm.oid.to_string();
    let bad = |why: String| Failure::Bad(why);
    match scheme {
        Scheme::Pkcs1(hash) | Scheme::Pss(hash) => {
            if key_alg != RSA_ENCRYPTION && key_alg != RSASSA_PSS {
                return Err(bad(format!("an RSA signature with a {key_alg} key")));
            }
            let key = <rsa::PublicKey as rsa::pkcs1::DecodeRsaPublicKey>::from_pkcs1_der(key_bytes)
                .map_err(|e| bad(format!("RSA public key: {e}")))?;
            let hashed = hash.digest(data);
            let result = match scheme {
                Scheme::Pkcs1(_) => key.verify(
                    rsa::Pkcs1v15Sign {
                        hash_len: Some(hashed.len()),
                        prefix: hash.pkcs1_prefix().into(),
                    },
                    &hashed,
                    signature,
                ),
                _ => match hash {
                    Hash::Sha256 => {
                        key.verify(rsa::Pss::<sha2_11::Sha256>::new(), &hashed, signature)
                    }
                    Hash::Sha384 => {
                        key.verify(rsa::Pss::<sha2_11::Sha384>::new(), &hashed, signature)
                    }
                    Hash::Sha512 => {
                        key.verify(rsa::Pss::<sha2_11::Sha512>::new(), &hashed, signature)
                    }
                    Hash::Sha1 => {
                        return Err(Failure::Unsupported("RSASSA-PSS with SHA-1".into()));
                    }
                },
            };
            result.map_err(|_| bad("the RSA signature does not verify".into()))
        }
        Scheme::Ecdsa(hash) => {
            use p256::ecdsa::signature::hazmat::PrehashVerifier;
            if key_alg != EC_PUBLIC_KEY {
                return Err(bad(format!("an ECDSA signature with a {key_alg} key")));
            }
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| {
                    p.decode_as::<cms::cert::x509::der::asn1::ObjectIdentifier>()
                        .ok()
                })
                .map(|o| o.to_string())
                .unwrap_or_default();
            let prehash = hash.digest(data);
            let ok = match curve.as_str() {
                CURVE_P256 => {
                    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                        .map_err(|e| bad(format!("P-256 public key: {e}")))?;
                    let sig = p256::ecdsa::Signature::from_der(signature)
                        .map_err(|e| bad(format!("ECDSA signature: {e}")))?;
                    key.verify_prehash(&prehash, &sig).is_ok()
                }
                CURVE_P384 => {
                    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                        .map_err(|e| bad(format!("P-384 public key: {e}")))?;
                    let sig = p384::ecdsa::Signature::from_der(signature)
                        .map_err(|e| bad(format!("ECDSA signature: {e}")))?;
                    key.verify_prehash(&prehash, &sig).is_ok()
                }
                other => return Err(Failure::Unsupported(format!("ECDSA on curve {other}"))),
            };
            ok.then_some(())
                .ok_or_else(|| bad("the ECDSA signature does not verify".into()))
        }
    }
}

/// Whether `cert` was signed with the key of `issuer`.
pub fn signed_by(cert: &Certificate, issuer: &SubjectPublicKeyInfoOwned) -> Result<(), Failure> {
    let tbs = cert
        .tbs_certificate
        .to_der()
        .map_err(|e| Failure::Bad(format!("certificate: {e}")))?;
    let scheme = scheme(&cert.signature_algorithm, None)?;
    verify(issuer, scheme, &tbs, cert.signature.raw_bytes())
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo, hex: names the key
/// whatever certificate carries it.
pub fn key_hash(cert: &Certificate) -> Option<String> {
    let der = cert.tbs_certificate.subject_public_key_info.to_der().ok()?;
    Some(crate::binary::hex(&sha2::Sha256::digest(der)))
}

/// The certificates of `signed`, leaving out the other choices CMS allows.
pub fn certificates(signed: &SignedData) -> impl Iterator<Item = &Certificate> {
    signed.certificates.iter().flat_map(|set| {
        set.0.iter().filter_map(|c| match c {
            cms::cert::CertificateChoices::Certificate(c) => Some(c),
            _ => None,
        })
    })
}

/// The certificate `info` names as its signer.
pub fn signer_certificate<'a>(
    signed: &'a SignedData,
    info: &SignerInfo,
) -> Option<&'a Certificate> {
    let SignerIdentifier::IssuerAndSerialNumber(id) = &info.sid else {
        return None;
    };
    certificates(signed).find(|c| {
        c.tbs_certificate.serial_number == id.serial_number && c.tbs_certificate.issuer == id.issuer
    })
}

/// Verifies the one signer of `signed`: the content digest, the signature
/// over the authenticated attributes, and the chain. Returns the chain.
pub fn verify_signed_data(signed: &SignedData) -> Result<Chain, Failure> {
    let info = signed
        .signer_infos
        .0
        .as_slice()
        .first()
        .ok_or_else(|| Failure::Bad("no signer".into()))?;
    let digest_oid = info.digest_alg.oid.to_string();
    let hash = Hash::from_digest_oid(&digest_oid)
        .ok_or_else(|| Failure::Unsupported(format!("digest algorithm {digest_oid}")))?;
    let signer = signer_certificate(signed, info)
        .ok_or_else(|| Failure::Bad("the signer's certificate is not in the signature".into()))?;

    // Authenticode always signs attributes; the message digest among them
    // covers the SpcIndirectDataContent's value (its tag and length left
    // out), which holds the image digest.
    let attrs = info
        .signed_attrs
        .as_ref()
        .ok_or_else(|| Failure::Bad("no authenticated attributes".into()))?;
    let attribute = |oid: &str| {
        attrs
            .iter()
            .find(|a| a.oid.to_string() == oid)
            .and_then(|a| a.values.iter().next())
    };
    let content = signed
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| Failure::Bad("no signed content".into()))?;
    let stated = attribute(ID_DATA_MESSAGE_DIGEST)
        .and_then(|v| {
            v.decode_as::<cms::cert::x509::der::asn1::OctetString>()
                .ok()
        })
        .ok_or_else(|| Failure::Bad("no message-digest attribute".into()))?;
    if stated.as_bytes() != hash.digest(content.value()) {
        return Err(Failure::Bad(
            "the message-digest attribute does not match the signed content".into(),
        ));
    }
    let content_type = attribute(ID_CONTENT_TYPE)
        .and_then(|v| {
            v.decode_as::<cms::cert::x509::der::asn1::ObjectIdentifier>()
                .ok()
        })
        .map(|o| o.to_string());
    if content_type.as_deref() != Some(SPC_INDIRECT_DATA) {
        return Err(Failure::Bad(
            "the content-type attribute is not SpcIndirectDataContent".into(),
        ));
    }
    // The signature covers the attributes DER-encoded as a SET OF.
    let signed_attrs = attrs
        .to_der()
        .map_err(|e| Failure::Bad(format!("authenticated attributes: {e}")))?;
    verify(
        &signer.tbs_certificate.subject_public_key_info,
        scheme(&info.signature_algorithm, Some(hash))?,
        &signed_attrs,
        info.signature.as_bytes(),
    )
    .map_err(|f| match f {
        Failure::Bad(why) => Failure::Bad(format!("signature over the attributes: {why}")),
        other => other,
    })?;
    chain(signed, signer)
}

/// Longest chain followed; real ones have three or four links.
const MAX_CHAIN: usize = 8;

/// Follows `signer` up through the certificates of `signed`, checking each
/// link's signature, to a self-signed certificate or one whose issuer is
/// not carried.
fn chain(signed: &SignedData, signer: &Certificate) -> Result<Chain, Failure> {
    let mut out = Chain::default();
    let mut cert = signer;
    loop {
        let tbs = &cert.tbs_certificate;
        out.subjects.push(tbs.subject.to_string());
        if tbs.issuer == tbs.subject {
            signed_by(cert, &tbs.subject_public_key_info).map_err(|f| link_failure(f, cert))?;
            break;
        }
        if out.subjects.len() >= MAX_CHAIN {
            return Err(Failure::Bad(format!(
                "more than {MAX_CHAIN} certificates in the chain"
            )));
        }
        let candidates: Vec<&Certificate> = certificates(signed)
            .filter(|c| c.tbs_certificate.subject == tbs.issuer)
            .collect();
        if candidates.is_empty() {
            break;
        }
        let mut last = None;
        let issuer = candidates.into_iter().find(|issuer| {
            match signed_by(cert, &issuer.tbs_certificate.subject_public_key_info) {
                Ok(()) => true,
                Err(f) => {
                    last = Some(f);
                    false
                }
            }
        });
        match issuer {
            Some(issuer) => cert = issuer,
            None => return Err(link_failure(last.expect("a candidate failed"), cert)),
        }
    }
    out.top = cert
        .to_der()
        .map_err(|e| Failure::Bad(format!("certificate: {e}")))?;
    Ok(out)
}

fn link_failure(f: Failure, cert: &Certificate) -> Failure {
    let subject = cert.tbs_certificate.subject.to_string();
    match f {
        Failure::Bad(why) => Failure::Bad(format!(
            "certificate {subject} is not signed by its issuer: {why}"
        )),
        Failure::Unsupported(why) => Failure::Unsupported(format!("certificate {subject}: {why}")),
    }
}

/// Root certificates a chain must end in (`vet --trust DIR`).
#[derive(Clone, Debug, Default)]
pub struct TrustAnchors {
    roots: Vec<Certificate>,
}

/// A trust anchor file that does not read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TrustAnchorError {
    pub path: String,
    pub message: String,
}

/// Largest certificate file read as a trust anchor.
const MAX_ANCHOR_FILE: u64 = 4 << 20;

impl TrustAnchors {
    /// Reads every PEM or DER certificate file in `dir`.
    pub fn load(dir: &std::path::Path) -> Result<TrustAnchors, TrustAnchorError> {
        let error = |path: &std::path::Path, message: String| TrustAnchorError {
            path: path.display().to_string(),
            message,
        };
        let mut roots = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| error(dir, e.to_string()))?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            let len = std::fs::metadata(&path)
                .map_err(|e| error(&path, e.to_string()))?
                .len();
            if len > MAX_ANCHOR_FILE {
                return Err(error(&path, format!("{len} bytes, over {MAX_ANCHOR_FILE}")));
            }
            let data = std::fs::read(&path).map_err(|e| error(&path, e.to_string()))?;
            if data.starts_with(b"-----BEGIN") {
                let certs = Certificate::load_pem_chain(&data)
                    .map_err(|e| error(&path, format!("PEM certificates: {e}")))?;
                roots.extend(certs);
            } else {
                let cert = Certificate::from_der(&data)
                    .map_err(|e| error(&path, format!("DER certificate: {e}")))?;
                roots.push(cert);
            }
        }
        if roots.is_empty() {
            return Err(error(dir, "no certificates".into()));
        }
        Ok(TrustAnchors { roots })
    }

    /// Whether a chain whose last certificate is `top` (DER) ends in one of
    /// these roots: it is one, or one of them signed it.
    pub fn trusts(&self, top: &[u8]) -> bool {
        let Ok(top) = Certificate::from_der(top) else {
            return false;
        };
        self.roots.iter().any(|root| {
            *root == top
                || (root.tbs_certificate.subject == top.tbs_certificate.issuer
                    && signed_by(&top, &root.tbs_certificate.subject_public_key_info).is_ok())
        })
    }
}
