//! Vetting a release before rollout: unpack it, analyse every file, and
//! diff it against the previous release, the way the trojanized 3CX
//! update gave itself away (an `ffmpeg.dll` whose code changed while its
//! version did not; a signed `d3dcompiler_47.dll` carrying a payload after
//! its signature).
//!
//! [`vet`] returns a [`Report`]: findings with the stable ids of
//! [`FindingId`], and a verdict. No data directory is involved.

#![forbid(unsafe_code)]

pub mod authenticode;
pub mod binary;
mod cab_layout;
pub mod dependencies;
pub mod package;
pub mod sarif;
pub mod strings;
pub mod unpack;
#[cfg(feature = "yara")]
pub mod yara;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;
pub use turncoat_core::Severity;

use binary::{FileInfo, Kind};
pub use dependencies::OsvIndex;
pub use unpack::{Limits, UnpackError};

/// Declares [`FindingId`] from one table: each id's variant, its string,
/// the severity it has unless the check says otherwise, and its meaning.
macro_rules! finding_ids {
    ($($variant:ident => $id:literal, $severity:ident, $meaning:literal;)*) => {
        /// What a finding reports: the stable ids the README documents.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum FindingId {
            $($variant),*
        }

        impl FindingId {
            /// Every id, in the documented order.
            pub const ALL: &[FindingId] = &[$(FindingId::$variant),*];

            /// The id as reports and SARIF name it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(FindingId::$variant => $id),*
                }
            }

            /// The severity of a finding of this id unless its check raises
            /// or lowers it.
            pub fn severity(self) -> Severity {
                match self {
                    $(FindingId::$variant => Severity::$severity),*
                }
            }

            /// What a finding of this id means.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(FindingId::$variant => $meaning),*
                }
            }
        }
    };
}

finding_ids! {
    AuthenticodeDataAfterSignature => "authenticode.data-after-signature", Critical,
        "bytes after the PKCS#7 SignedData inside the certificate entry, or after the certificate table: the signature still verifies (CVE-2013-3900)";
    AuthenticodeDigestMismatch => "authenticode.digest-mismatch", High,
        "the PE image digest recomputed differs from the signed one: modified after signing";
    AuthenticodeBadSignature => "authenticode.bad-signature", Critical,
        "the signature does not verify: the message digest, the signature over the signed attributes, or a link of the certificate chain fails";
    AuthenticodeUnverified => "authenticode.unverified", Low,
        "a signature made with an algorithm turncoat cannot check";
    AuthenticodeUntrustedRoot => "authenticode.untrusted-root", High,
        "the certificate chain does not end in a root given with `--trust`";
    AuthenticodeMalformed => "authenticode.malformed", Medium,
        "a certificate table that is not a readable Authenticode signature";
    AuthenticodeUnsignedModule => "authenticode.unsigned-module", Medium,
        "an unsigned PE beside signed ones in the same directory";
    AuthenticodeSignerChanged => "authenticode.signer-changed", High,
        "signed by another subject or key than in the previous release (medium: the same key in a renewed certificate)";
    AuthenticodeSignatureRemoved => "authenticode.signature-removed", High,
        "signed in the previous release, unsigned now";
    DiffNewFile => "diff.new-file", Low,
        "a file the previous release did not have (informational unless executable)";
    DiffRemovedFile => "diff.removed-file", Info,
        "a file the previous release had";
    DiffChangedSameVersion => "diff.changed-same-version", High,
        "code changed while the version resource did not";
    DiffNewImports => "diff.new-imports", Medium,
        "imported functions the previous build did not import";
    DiffNewNetworkStrings => "diff.new-network-strings", Medium,
        "URLs, domains or IPs the previous build did not contain";
    IocHash => "ioc.hash", Critical,
        "the file's SHA-256, SHA-1 or MD5 is a known-bad indicator in the intel given";
    IocNetwork => "ioc.network", Critical,
        "a URL, domain or IP embedded in the file is a known-bad indicator";
    DiffNewDependency => "diff.new-dependency", Medium,
        "a dependency a manifest declares that the previous release's did not (named with its requirement, pinned or not)";
    DiffNewDependencies => "diff.new-dependencies", Info,
        "packages a changed lockfile or manifest adds, or pins at another version";
    OsvMalicious => "osv.malicious", Critical,
        "a package the release ships is malicious in the OSV data given (a `MAL-` record)";
    OsvVulnerable => "osv.vulnerable", High,
        "a package version the release ships has an OSV vulnerability (the advisory's own severity, at most high)";
    PackageManifestMalformed => "package.manifest-malformed", Low,
        "a lockfile, manifest or SBOM, or some of its entries, that does not read";
    PackageInstallScript => "package.install-script", Medium,
        "code run on install: npm install scripts, setup.py, pyproject build hooks (high when it reaches the network or runs commands)";
    YaraMatch => "yara.match", High,
        "a YARA rule matched (critical at a `score` of 75 or more, medium below 60)";
    YaraError => "yara.error", Low,
        "a YARA scan that did not finish (timeout)";
    EntropyHigh => "entropy.high", Low,
        "a section over 7.2 bits per byte: packed or encrypted content";
    BinaryMalformed => "binary.malformed", Low,
        "looks like an executable but does not parse";
    ArchivePathTraversal => "archive.path-traversal", High,
        "an archive entry naming a path outside the archive";
    ArchiveSymlink => "archive.symlink", Medium,
        "a link inside the artifact: not followed";
    ArchiveBomb => "archive.bomb", High,
        "an entry, or nested archives together, expanding beyond the compression-ratio limit";
    ArchiveLimit => "archive.limit", Medium,
        "depth, size or entry-count limit reached: part not analysed";
    ArchiveMalformed => "archive.malformed", Low,
        "an archive or entry that does not read";
    InfoSigned => "info.signed", Info,
        "signed, with the signer named";
    InfoUnpinnedDependencies => "info.unpinned-dependencies", Info,
        "requirements without an exact version: they cannot be matched, and what installs can change";
}

impl Serialize for FindingId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Finding ids are their documented strings.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for FindingId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(FindingId::ALL.iter().map(|id| id.as_str())))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for FindingId {}

impl std::fmt::Display for FindingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Entropy above which a section is reported.
const HIGH_ENTROPY: f64 = 7.2;
/// Sections smaller than this are too small for entropy to mean much.
const MIN_ENTROPY_SECTION: u64 = 4096;

/// One finding.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Finding {
    pub id: FindingId,
    pub severity: Severity,
    /// The inner path, e.g. `setup.zip!/app/ffmpeg.dll`.
    pub file: String,
    pub message: String,
    /// What was seen, in fields that depend on the finding's id.
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, serde_json::Value>))]
    pub evidence: serde_json::Value,
    /// Set when the same finding was met on other files too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeated: Option<Repeated>,
}

/// One finding met again and again: the same id, message and evidence on
/// other files (the copies inside an archive bomb, a directory of
/// unsigned modules), reported once with a count.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Repeated {
    /// Occurrences in total, the reported one included.
    pub count: usize,
    /// The first of the other files, up to [`REPEATED_FILES_SHOWN`].
    pub files: Vec<String>,
}

/// Other files a repeated finding names; also the most times a finding
/// is reported file by file before it is summarised.
pub const REPEATED_FILES_SHOWN: usize = 20;

/// Folds a finding met on more than [`REPEATED_FILES_SHOWN`] files (the
/// same id, message and evidence) into the first of them, with a count.
/// A few repeats stay one finding per file: each file named is worth an
/// analyst's line (the same tampered DLL in an installer and in the
/// tarball inside it); thousands (an archive bomb's copies) are not.
fn summarise_repeats(findings: Vec<Finding>) -> Vec<Finding> {
    type Key = (FindingId, String, String);
    let key = |f: &Finding| -> Key { (f.id, f.message.clone(), f.evidence.to_string()) };
    let mut counts: std::collections::HashMap<Key, usize> = std::collections::HashMap::new();
    for f in &findings {
        *counts.entry(key(f)).or_default() += 1;
    }
    let mut out: Vec<Finding> = Vec::with_capacity(findings.len());
    let mut first: std::collections::HashMap<Key, usize> = std::collections::HashMap::new();
    for f in findings {
        let k = key(&f);
        let count = counts[&k];
        if count <= REPEATED_FILES_SHOWN {
            out.push(f);
            continue;
        }
        match first.get(&k) {
            Some(&i) => {
                let repeated = out[i].repeated.get_or_insert(Repeated {
                    count,
                    files: Vec::new(),
                });
                if repeated.files.len() < REPEATED_FILES_SHOWN {
                    repeated.files.push(f.file);
                }
            }
            None => {
                first.insert(k, out.len());
                out.push(f);
            }
        }
    }
    out
}

/// The overall judgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Verdict {
    Clean,
    Suspicious,
    Malicious,
}

/// What the diff against the previous release found, by inner path.
#[derive(Clone, Debug, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Diff {
    pub against: String,
    pub new: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: usize,
}

/// A vetted artifact.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    pub verdict: Verdict,
    pub artifact: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<Diff>,
    pub findings: Vec<Finding>,
    pub files: Vec<FileInfo>,
}

/// Options of one vet run.
pub struct Options {
    pub limits: Limits,
    /// Threads analysing and scanning files.
    pub threads: usize,
    /// Indicators (from `--intel`) that file hashes and embedded network
    /// strings are matched against.
    pub indicators: Vec<turncoat_core::Indicator>,
    /// OSV records (from `--osv`) the packages the release pins are
    /// matched against.
    pub osv: Option<OsvIndex>,
    /// YARA rules every unpacked file of the artifact is scanned with.
    #[cfg(feature = "yara")]
    pub yara: Option<yara::YaraRules>,
    /// Roots that signatures' chains must end in (`--trust`).
    pub trust: Option<authenticode::verify::TrustAnchors>,
}

pub(crate) fn finding(
    id: FindingId,
    file: &str,
    message: String,
    evidence: serde_json::Value,
) -> Finding {
    Finding {
        id,
        severity: id.severity(),
        file: file.to_owned(),
        message,
        evidence,
        repeated: None,
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            limits: Limits::default(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            indicators: Vec::new(),
            osv: None,
            #[cfg(feature = "yara")]
            yara: None,
            trust: None,
        }
    }
}

/// Scans one file's content as it is unpacked: YARA, when rules are given.
struct ContentScan<'r> {
    #[cfg(feature = "yara")]
    yara: Option<yara::YaraScanner<'r>>,
    _options: std::marker::PhantomData<&'r Options>,
}

impl<'r> ContentScan<'r> {
    #[cfg_attr(not(feature = "yara"), allow(unused_variables))]
    fn new(options: Option<&'r Options>) -> ContentScan<'r> {
        ContentScan {
            #[cfg(feature = "yara")]
            yara: options
                .and_then(|o| o.yara.as_ref())
                .map(yara::YaraRules::scanner),
            _options: std::marker::PhantomData,
        }
    }

    fn scan(&mut self, info: &FileInfo, data: &[u8], out: &mut Vec<Finding>) {
        for hook in package::install_hooks(&info.path, data) {
            let mut f = finding(
                FindingId::PackageInstallScript,
                &info.path,
                format!(
                    "{} runs on install: {}",
                    hook.hook,
                    hook.code.lines().next().unwrap_or("")
                ),
                serde_json::json!({"hook": hook.hook, "code": hook.code}),
            );
            if hook.risky {
                f.severity = Severity::High;
            }
            out.push(f);
        }
        #[cfg(feature = "yara")]
        if let Some(scanner) = &mut self.yara {
            yara_findings(scanner, info, data, out);
        }
    }
}

/// Unpacks and analyses an artifact; `options` (the artifact's, not the
/// previous release's) adds content scans.
fn analyse(
    artifact: &Path,
    options: &Options,
    scan_content: bool,
) -> Result<(Vec<FileInfo>, Vec<Finding>), UnpackError> {
    // Unpacking feeds the analysis threads as it goes (each with its own
    // scanner): reading overlaps scanning, and a file's bytes are dropped
    // as soon as it is analysed. Results are put back in path order.
    let threads = options.threads.max(1);
    let (send, receive) = std::sync::mpsc::sync_channel::<(usize, unpack::Entry)>(threads * 4);
    // Each worker holds the receiver: should every one of them die, it is
    // dropped and unpacking stops sending instead of waiting forever.
    let receive = std::sync::Arc::new(std::sync::Mutex::new(receive));
    let (unpacked, joined) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let receive = std::sync::Arc::clone(&receive);
                scope.spawn(move || {
                    let mut content = ContentScan::new(scan_content.then_some(options));
                    let mut done = Vec::new();
                    loop {
                        let next = receive.lock().map(|r| r.recv());
                        let Ok(Ok((seq, e))) = next else { break };
                        let mut info = binary::analyse(&e.path, &e.data);
                        if scan_content && !options.indicators.is_empty() {
                            info.legacy_hashes(&e.data);
                        }
                        let mut found = Vec::new();
                        dependencies::read(&mut info, &e.data, &mut found);
                        content.scan(&info, &e.data, &mut found);
                        done.push((seq, info, found));
                    }
                    done
                })
            })
            .collect();
        drop(receive);
        let mut seq = 0;
        let unpacked = unpack::unpack_each(artifact, &options.limits, &mut |e| {
            // Fails only when no worker is left; the joins below say why.
            let _ = send.send((seq, e));
            seq += 1;
        });
        drop(send);
        let joined: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        (unpacked, joined)
    });
    let mut results: Vec<(usize, FileInfo, Vec<Finding>)> = Vec::new();
    for done in joined {
        // A bug, not bad input: fail the run rather than drop files from
        // the report.
        results.extend(done.map_err(|_| UnpackError {
            path: artifact.display().to_string(),
            message: "an analysis thread panicked; the report would be incomplete".into(),
        })?);
    }
    let mut findings = unpacked?;
    // Sorted by path, and in unpacking order where an archive repeats one.
    results.sort_by(|(a, info_a, _), (b, info_b, _)| info_a.path.cmp(&info_b.path).then(a.cmp(b)));
    let mut files = Vec::with_capacity(results.len());
    for (_, info, found) in results {
        files.push(info);
        findings.extend(found);
    }
    Ok((files, findings))
}

#[cfg(feature = "yara")]
fn yara_findings(
    scanner: &mut yara::YaraScanner,
    info: &FileInfo,
    data: &[u8],
    out: &mut Vec<Finding>,
) {
    match scanner.scan(&info.path, info.kind, data) {
        Ok(matches) => {
            for m in matches {
                let mut f = finding(
                    FindingId::YaraMatch,
                    &info.path,
                    format!(
                        "{}{}",
                        m.rule,
                        m.description
                            .as_deref()
                            .map(|d| format!(": {d}"))
                            .unwrap_or_default()
                    ),
                    serde_json::json!({"rule": m.rule, "namespace": m.namespace, "score": m.score}),
                );
                f.severity = match m.score {
                    Some(s) if s >= 75 => Severity::Critical,
                    Some(s) if s < 60 => Severity::Medium,
                    _ => Severity::High,
                };
                out.push(f);
            }
        }
        Err(e) => out.push(finding(
            FindingId::YaraError,
            &info.path,
            e.to_string(),
            serde_json::Value::Null,
        )),
    }
}

/// Findings about one release on its own.
fn release_findings(
    files: &[FileInfo],
    trust: Option<&authenticode::verify::TrustAnchors>,
    out: &mut Vec<Finding>,
) {
    for f in files {
        if let Some(e) = &f.parse_error {
            out.push(finding(
                FindingId::BinaryMalformed,
                &f.path,
                format!("does not parse: {e}"),
                serde_json::Value::Null,
            ));
        }
        if let Some(sig) = &f.signature {
            if sig.trailing_bytes > 0 || sig.bytes_after_table > 0 {
                out.push(finding(
                    FindingId::AuthenticodeDataAfterSignature,
                    &f.path,
                    format!(
                        "{} bytes after the signature inside the certificate entry, {} after the certificate table",
                        sig.trailing_bytes, sig.bytes_after_table
                    ),
                    serde_json::json!({"trailing_bytes": sig.trailing_bytes, "bytes_after_table": sig.bytes_after_table, "signer": sig.signer}),
                ));
            }
            if sig.digest_matches == Some(false) {
                out.push(finding(
                    FindingId::AuthenticodeDigestMismatch,
                    &f.path,
                    "the digest of the signed content does not match the signed digest".into(),
                    serde_json::json!({"algorithm": sig.digest_algorithm, "signer": sig.signer}),
                ));
            }
            if let Some(why) = &sig.bad_signature {
                out.push(finding(
                    FindingId::AuthenticodeBadSignature,
                    &f.path,
                    format!("the signature does not verify: {why}"),
                    serde_json::json!({"signer": sig.signer, "issuer": sig.issuer, "serial": sig.serial}),
                ));
            }
            if let Some(why) = &sig.unverified {
                out.push(finding(
                    FindingId::AuthenticodeUnverified,
                    &f.path,
                    format!("the signature could not be checked: {why}"),
                    serde_json::json!({"signer": sig.signer}),
                ));
            }
            if let Some(trust) = trust
                && sig.bad_signature.is_none()
                && !sig.chain_top.is_empty()
                && !trust.trusts(&sig.chain_top)
            {
                out.push(finding(
                    FindingId::AuthenticodeUntrustedRoot,
                    &f.path,
                    format!(
                        "the chain ends in {}, not in a trusted root",
                        sig.chain.last().map_or("?", String::as_str)
                    ),
                    serde_json::json!({"chain": sig.chain}),
                ));
            }
            match (&sig.error, &sig.signer) {
                (Some(e), _) => out.push(finding(
                    FindingId::AuthenticodeMalformed,
                    &f.path,
                    e.clone(),
                    serde_json::Value::Null,
                )),
                (None, signer) if sig.bad_signature.is_none() => out.push(finding(
                    FindingId::InfoSigned,
                    &f.path,
                    format!(
                        "signed by {}",
                        signer.as_deref().unwrap_or("an unnamed signer")
                    ),
                    serde_json::json!({"issuer": sig.issuer, "serial": sig.serial, "key": sig.signer_key, "chain": sig.chain}),
                )),
                _ => {}
            }
        }
        for s in &f.sections {
            if s.entropy > HIGH_ENTROPY && s.size >= MIN_ENTROPY_SECTION && s.name != ".rsrc" {
                out.push(finding(
                    FindingId::EntropyHigh,
                    &f.path,
                    format!("section {} has entropy {:.2}", s.name, s.entropy),
                    serde_json::json!({"section": s.name, "entropy": s.entropy, "size": s.size}),
                ));
            }
        }
    }
    // Unsigned modules among signed siblings.
    let mut by_dir: BTreeMap<&str, Vec<&FileInfo>> = BTreeMap::new();
    for f in files
        .iter()
        .filter(|f| f.kind == Kind::Pe && f.parse_error.is_none())
    {
        let dir = f.path.rsplit_once('/').map_or("", |(d, _)| d);
        by_dir.entry(dir).or_default().push(f);
    }
    for siblings in by_dir.values() {
        let signed = siblings.iter().filter(|f| f.signature.is_some()).count();
        if signed == 0 {
            continue;
        }
        for f in siblings.iter().filter(|f| f.signature.is_none()) {
            out.push(finding(
                FindingId::AuthenticodeUnsignedModule,
                &f.path,
                format!(
                    "unsigned, while {signed} of its {} sibling modules are signed",
                    siblings.len() - 1
                ),
                serde_json::Value::Null,
            ));
        }
    }
}

/// Files whose hashes, or whose embedded URLs, domains and IPs, are
/// known-bad indicators.
fn intel_findings(
    files: &[FileInfo],
    indicators: &[turncoat_core::Indicator],
    out: &mut Vec<Finding>,
) {
    use turncoat_core::{Observable, ObservableKind};
    if indicators.is_empty() {
        return;
    }
    let index = turncoat_detect::IndicatorIndex::new(indicators.to_vec());
    let now = turncoat_core::Time::now();
    let mut matches = Vec::new();
    for f in files {
        let mut observables: Vec<Observable> = [
            (ObservableKind::Sha256, Some(&f.sha256)),
            (ObservableKind::Sha1, f.sha1.as_ref()),
            (ObservableKind::Md5, f.md5.as_ref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| Observable::new(k, v?))
        .collect();
        for s in f.network.iter().chain(&f.commented) {
            if s.contains("://") {
                // A URL is seen by URL indicators and, through its host,
                // by domain and IP ones.
                observables.extend(Observable::new(ObservableKind::Url, s));
                let host = turncoat_core::observable::url_host(s);
                let kind = if host.parse::<std::net::IpAddr>().is_ok() {
                    ObservableKind::Ip
                } else {
                    ObservableKind::Domain
                };
                observables.extend(Observable::new(kind, host));
            } else if s.parse::<std::net::IpAddr>().is_ok() {
                observables.extend(Observable::new(ObservableKind::Ip, s));
            } else {
                observables.extend(Observable::new(ObservableKind::Domain, s));
            }
        }
        index.match_event(&observables, now, &mut matches);
        for m in &matches {
            let ind = index.get(m.indicator);
            let observed = &observables[m.observable];
            let hash = matches!(
                observed.kind,
                ObservableKind::Sha256 | ObservableKind::Sha1 | ObservableKind::Md5
            );
            out.push(finding(
                if hash { FindingId::IocHash } else { FindingId::IocNetwork },
                &f.path,
                format!("{} {} is a known-bad {} indicator", observed.kind.as_str(), observed.value, ind.kind),
                serde_json::json!({"indicator": ind.value, "source": ind.source, "campaign": ind.campaign}),
            ));
        }
    }
}

/// What pairs a file with its counterpart in another release: its path
/// inside the artifact, without the artifact's own name, and with version
/// numbers taken out of the names of the containers it sits in and of its
/// top directory. Releases name those after themselves
/// (`lodash-4.17.21.tgz!/lodash-4.17.21.tar!/package/x.js`, a wheel's
/// `six-1.16.0.dist-info/`, a crate's `serde-1.0.200/`); npm's `package/`
/// needs nothing. `root` is the artifact's own name when it is a file (a
/// directory's files are named from inside it); the artifact itself is
/// the empty key.
pub(crate) fn pairing_key(path: &str, root: Option<&str>) -> String {
    let inside = match root {
        Some(r) if path == r => return String::new(),
        Some(r) => path
            .strip_prefix(r)
            .and_then(|p| p.strip_prefix("!/"))
            .unwrap_or(path),
        None => path,
    };
    let mut segments: Vec<String> = inside.split("!/").map(str::to_owned).collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter_mut().enumerate() {
        if i < last {
            *segment = unversioned(segment);
        } else {
            *segment = match segment.split_once('/') {
                Some((top, rest)) => format!("{}/{rest}", unversioned(top)),
                None => unversioned(segment),
            };
        }
    }
    segments.join("!/")
}

/// `name` with its version numbers (`1.2`, `v4.17.21`, `2.0.0-rc.1`,
/// `2.9.0.post0`) as `*`.
fn unversioned(name: &str) -> String {
    static VERSION: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"(?i)(^|[-_/ ])v?\d+(\.\d+)+([-.]?((alpha|beta|rc|dev|post|pre)\.?\d*|[ab]\d+))?",
        )
        .expect("a valid pattern")
    });
    VERSION.replace_all(name, "${1}*").into_owned()
}

/// Documentation, package metadata and repository configuration: what
/// they say about URLs (a homepage, a funding link, an issue) is not what
/// the code does. A manifest's dependencies and install hooks have
/// findings of their own.
fn is_prose_or_metadata(path: &str) -> bool {
    let inner = path.rsplit("!/").next().unwrap_or(path);
    let name = inner
        .rsplit('/')
        .next()
        .unwrap_or(inner)
        .to_ascii_lowercase();
    let stem = name.split('.').next().unwrap_or("");
    let in_docs = inner.split('/').rev().skip(1).any(|d| {
        matches!(
            d.to_ascii_lowercase().as_str(),
            "doc" | "docs" | "man" | ".github"
        )
    });
    in_docs
        || [".md", ".markdown", ".rst", ".txt", ".adoc", ".gemspec"]
            .iter()
            .any(|ext| name.ends_with(ext))
        || matches!(
            stem,
            "readme"
                | "changelog"
                | "changes"
                | "history"
                | "news"
                | "license"
                | "licence"
                | "copying"
                | "authors"
                | "contributors"
                | "notice"
        )
        || matches!(
            name.as_str(),
            "package.json"
                | "metadata"
                | "pkg-info"
                | "cargo.toml"
                | "cargo.toml.orig"
                | "pyproject.toml"
                | "setup.cfg"
                | "composer.json"
                | ".cargo_vcs_info.json"
        )
}

/// Whether `s` is one of `known` (the previous release's strings, without
/// versions) or a link below one of its URLs with a path
/// (`…/rust-lang/log` → `…/rust-lang/log/issues`).
fn is_known_string(s: &str, known: &BTreeSet<String>) -> bool {
    let s = unversioned(s);
    if known.contains(&s) {
        return true;
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    // Prefixes ending before a `/`, `?` or `#` past the first path
    // segment: an origin alone covers nothing.
    let Some(path) = rest.find('/') else {
        return false;
    };
    let base = scheme.len() + 3 + path;
    s.char_indices()
        .skip(base + 1)
        .filter(|(_, c)| matches!(c, '/' | '?' | '#'))
        .any(|(i, _)| known.contains(&s[..i]))
}

/// Findings the previous release had too (same id, same file, or any
/// finding on a file whose content did not change) are what an analyst
/// already accepted with it: informational in a diff, saying so. Critical
/// ones (known-bad intel, a forged signature) stay as they are.
fn demote_preexisting(
    previous: &[Finding],
    findings: &mut [Finding],
    roots: Roots<'_>,
    unchanged: &BTreeSet<&str>,
) {
    // Links are about the archive holding them: a time-zone tarball that
    // always held links gaining one more is not new.
    let key = |f: &Finding, root: Option<&str>| {
        let file = match f.id == FindingId::ArchiveSymlink {
            true => f
                .file
                .rsplit_once("!/")
                .map_or("", |(container, _)| container),
            false => &f.file,
        };
        // An install script is one per hook: a new hook is new.
        let hook = f
            .evidence
            .get("hook")
            .and_then(|h| h.as_str())
            .unwrap_or("");
        (f.id, pairing_key(file, root), hook.to_owned())
    };
    let before: BTreeSet<(FindingId, String, String)> =
        previous.iter().map(|f| key(f, roots.before)).collect();
    for f in findings.iter_mut() {
        if f.severity < Severity::Critical
            && f.severity > Severity::Info
            && (unchanged.contains(f.file.as_str()) || before.contains(&key(f, roots.after)))
        {
            f.severity = Severity::Info;
            f.message.push_str(" (as in the previous release)");
        }
    }
}

/// A release's files by [`pairing_key`].
fn by_pairing_key<'f>(files: &'f [FileInfo], root: Option<&str>) -> BTreeMap<String, &'f FileInfo> {
    files
        .iter()
        .map(|f| (pairing_key(&f.path, root), f))
        .collect()
}

/// The files of `after` whose content is that of their counterpart in
/// `before`: whatever is found in them was in the previous release too,
/// content scans included (no need to scan the previous release again).
fn unchanged_files<'f>(
    before: &[FileInfo],
    after: &'f [FileInfo],
    roots: Roots<'_>,
) -> BTreeSet<&'f str> {
    let old = by_pairing_key(before, roots.before);
    after
        .iter()
        .filter(|f| {
            old.get(&pairing_key(&f.path, roots.after))
                .is_some_and(|o| o.sha256 == f.sha256)
        })
        .map(|f| f.path.as_str())
        .collect()
}

/// The names of the two artifacts compared, when they are files (see
/// [`pairing_key`]).
#[derive(Clone, Copy)]
struct Roots<'a> {
    before: Option<&'a str>,
    after: Option<&'a str>,
}

impl<'a> Roots<'a> {
    fn new(before: &'a Path, after: &'a Path) -> Roots<'a> {
        let name = |p: &'a Path| {
            p.is_file()
                .then(|| p.file_name().and_then(|n| n.to_str()))
                .flatten()
        };
        Roots {
            before: name(before),
            after: name(after),
        }
    }
}

fn diff(
    before: &[FileInfo],
    after: &[FileInfo],
    roots: Roots<'_>,
    against: &str,
    out: &mut Vec<Finding>,
) -> Diff {
    let old = by_pairing_key(before, roots.before);
    let new = by_pairing_key(after, roots.after);
    // What the previous release contained anywhere, without versions: a
    // link that differs only by the version (`docs.rs/x/1.0.200`), or that
    // moved between files, is not new.
    let known: BTreeSet<String> = before
        .iter()
        .flat_map(|f| f.network.iter().chain(&f.commented))
        .map(|s| unversioned(s))
        .collect();
    let mut d = Diff {
        against: against.to_owned(),
        ..Diff::default()
    };
    for (key, f) in &new {
        let Some(prev) = old.get(key) else {
            d.new.push(f.path.clone());
            dependencies::new_declared(None, f, out);
            let mut nf = finding(
                FindingId::DiffNewFile,
                &f.path,
                format!("new {:?} file", f.kind).to_lowercase(),
                serde_json::json!({"sha256": f.sha256}),
            );
            if !matches!(f.kind, Kind::Pe | Kind::Elf | Kind::MachO | Kind::Script) {
                nf.severity = Severity::Info;
            }
            out.push(nf);
            continue;
        };
        if prev.sha256 == f.sha256 {
            d.unchanged += 1;
            continue;
        }
        d.changed.push(f.path.clone());
        dependencies::diff(prev, f, out);
        dependencies::new_declared(Some(prev), f, out);
        if f.code_sha256.is_some()
            && f.code_sha256 != prev.code_sha256
            && f.file_version.is_some()
            && f.file_version == prev.file_version
        {
            out.push(finding(
                FindingId::DiffChangedSameVersion,
                &f.path,
                format!("code changed but the version stayed {}", f.file_version.as_deref().unwrap_or("")),
                serde_json::json!({"version": f.file_version, "code_sha256_before": prev.code_sha256, "code_sha256_after": f.code_sha256}),
            ));
        }
        let added: BTreeSet<&String> = f.imports.difference(&prev.imports).collect();
        if !added.is_empty() && !prev.imports.is_empty() {
            out.push(finding(
                FindingId::DiffNewImports,
                &f.path,
                format!("{} new imports", added.len()),
                serde_json::json!({"imports": added}),
            ));
        }
        let strings: BTreeSet<&String> = f
            .network
            .iter()
            .filter(|s| !is_known_string(s, &known))
            .collect();
        if !strings.is_empty() {
            let mut nf = finding(
                FindingId::DiffNewNetworkStrings,
                &f.path,
                format!("{} new network strings", strings.len()),
                serde_json::json!({"strings": strings}),
            );
            if is_prose_or_metadata(&f.path) {
                nf.severity = Severity::Info;
                nf.message.push_str(" in documentation or metadata");
            }
            out.push(nf);
        }
        match (&prev.signature, &f.signature) {
            (Some(a), Some(b)) => {
                if let Some(changed) = signer_change(a, b) {
                    out.push(changed.finding(&f.path, a, b));
                }
            }
            (Some(a), None) => out.push(finding(
                FindingId::AuthenticodeSignatureRemoved,
                &f.path,
                format!(
                    "was signed by {}, now unsigned",
                    a.signer.as_deref().unwrap_or("an unnamed signer")
                ),
                serde_json::Value::Null,
            )),
            _ => {}
        }
    }
    for (key, f) in &old {
        if !new.contains_key(key) {
            d.removed.push(f.path.clone());
            out.push(finding(
                FindingId::DiffRemovedFile,
                &f.path,
                "removed".into(),
                serde_json::Value::Null,
            ));
        }
    }
    d
}

/// How the signer of a file differs from the previous release's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SignerChange {
    /// Another subject signs it.
    Subject,
    /// The same subject, another key: whoever holds the new key can sign
    /// as the vendor (a stolen name, a rogue certificate).
    Key,
    /// The same key in another certificate (a renewal).
    Certificate,
}

/// Compares signers by subject, public key, then issuer and serial.
fn signer_change(a: &authenticode::Signature, b: &authenticode::Signature) -> Option<SignerChange> {
    let differs = |x: &Option<String>, y: &Option<String>| x.is_some() && y.is_some() && x != y;
    if differs(&a.signer, &b.signer) {
        Some(SignerChange::Subject)
    } else if differs(&a.signer_key, &b.signer_key) {
        Some(SignerChange::Key)
    } else if differs(&a.issuer, &b.issuer) || differs(&a.serial, &b.serial) {
        Some(SignerChange::Certificate)
    } else {
        None
    }
}

impl SignerChange {
    fn finding(
        self,
        path: &str,
        a: &authenticode::Signature,
        b: &authenticode::Signature,
    ) -> Finding {
        let name = |s: &authenticode::Signature| s.signer.clone().unwrap_or_default();
        let message = match self {
            SignerChange::Subject => format!("signer changed from {} to {}", name(a), name(b)),
            SignerChange::Key => format!(
                "{} now signs with another key (same name, new key)",
                name(b)
            ),
            SignerChange::Certificate => format!(
                "{} signs with the same key in another certificate (issuer or serial changed)",
                name(b)
            ),
        };
        let side = |s: &authenticode::Signature| serde_json::json!({"signer": s.signer, "key": s.signer_key, "issuer": s.issuer, "serial": s.serial});
        let mut f = finding(
            FindingId::AuthenticodeSignerChanged,
            path,
            message,
            serde_json::json!({"before": side(a), "after": side(b)}),
        );
        if self == SignerChange::Certificate {
            f.severity = Severity::Medium;
        }
        f
    }
}

/// The verdict findings give: critical is malicious, anything above
/// informational suspicious.
pub fn verdict(findings: &[Finding]) -> Verdict {
    match findings.iter().map(|f| f.severity).max() {
        Some(Severity::Critical) => Verdict::Malicious,
        Some(Severity::Info) | None => Verdict::Clean,
        Some(_) => Verdict::Suspicious,
    }
}

/// Vets `artifact`, diffing it against `previous` when given.
pub fn vet(
    artifact: &Path,
    previous: Option<&Path>,
    options: &Options,
) -> Result<Report, UnpackError> {
    let (files, mut findings) = analyse(artifact, options, true)?;
    release_findings(&files, options.trust.as_ref(), &mut findings);
    intel_findings(&files, &options.indicators, &mut findings);
    if let Some(osv) = &options.osv {
        dependencies::osv_findings(&files, osv, &mut findings);
    }
    let mut diff_report = None;
    if let Some(prev) = previous {
        let (old, mut old_findings) = analyse(prev, options, false)?;
        release_findings(&old, options.trust.as_ref(), &mut old_findings);
        if let Some(osv) = &options.osv {
            dependencies::osv_findings(&old, osv, &mut old_findings);
        }
        let roots = Roots::new(prev, artifact);
        let unchanged = unchanged_files(&old, &files, roots);
        demote_preexisting(&old_findings, &mut findings, roots, &unchanged);
        let mut diff_findings = Vec::new();
        diff_report = Some(diff(
            &old,
            &files,
            roots,
            &prev.display().to_string(),
            &mut diff_findings,
        ));
        // The diff comes first.
        diff_findings.append(&mut findings);
        findings = diff_findings;
    }
    let findings = summarise_repeats(findings);
    Ok(Report {
        verdict: verdict(&findings),
        artifact: artifact.display().to_string(),
        diff: diff_report,
        findings,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README's table documents every id with its severity, and nothing else.
    #[test]
    fn readme_documents_every_finding_id() {
        let readme = include_str!("../../../README.md");
        let documented: BTreeSet<(String, String)> = readme
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let id = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                Some((id.to_owned(), cells.get(2)?.to_string()))
            })
            .filter(|(id, _)| id.contains('.'))
            .collect();
        let defined: BTreeSet<(String, String)> = FindingId::ALL
            .iter()
            .map(|id| {
                (
                    id.to_string(),
                    format!("{:?}", id.severity()).to_lowercase(),
                )
            })
            .collect();
        let only_readme: Vec<_> = documented.difference(&defined).collect();
        let only_code: Vec<_> = defined.difference(&documented).collect();
        assert!(
            only_readme.is_empty() && only_code.is_empty(),
            "README only: {only_readme:?}; code only: {only_code:?}"
        );
    }

    #[test]
    fn files_pair_across_releases_named_after_their_version() {
        let pairs = [
            (
                "lodash-4.17.20.tgz!/lodash-4.17.20.tar!/package/lodash.js",
                "lodash-4.17.21.tgz!/lodash-4.17.21.tar!/package/lodash.js",
            ),
            (
                "six-1.15.0-py2.py3-none-any.whl!/six-1.15.0.dist-info/RECORD",
                "six-1.16.0-py2.py3-none-any.whl!/six-1.16.0.dist-info/RECORD",
            ),
            (
                "serde-1.0.199.crate!/serde-1.0.199.tar!/serde-1.0.199/src/lib.rs",
                "serde-1.0.200.crate!/serde-1.0.200.tar!/serde-1.0.200/src/lib.rs",
            ),
            (
                "python-dateutil-2.8.2.tar.gz!/python-dateutil-2.8.2.tar!/python-dateutil-2.8.2/setup.py",
                "python-dateutil-2.9.0.post0.tar.gz!/python-dateutil-2.9.0.post0.tar!/python-dateutil-2.9.0.post0/setup.py",
            ),
            ("app-1.0.zip", "app-2.0-rc.1.zip"),
        ];
        let root = |p: &'static str| p.split("!/").next();
        for (a, b) in pairs {
            assert_eq!(
                pairing_key(a, root(a)),
                pairing_key(b, root(b)),
                "{a} ~ {b}"
            );
        }
        // A directory's files keep their paths.
        assert_ne!(
            pairing_key("app/x.dll", None),
            pairing_key("app/y.dll", None)
        );
        assert_eq!(
            pairing_key("dist/app-1.0.zip!/x.dll", None),
            pairing_key("dist/app-1.1.zip!/x.dll", None)
        );
        // Deeper names and different files keep apart.
        assert_ne!(
            pairing_key("a.zip!/lib/jquery-3.6.0.js", Some("a.zip")),
            pairing_key("a.zip!/lib/jquery-3.7.0.js", Some("a.zip"))
        );
        assert_ne!(
            pairing_key("a.zip!/x.dll", Some("a.zip")),
            pairing_key("a.zip!/y.dll", Some("a.zip"))
        );
        assert_eq!(unversioned("foo-1.2.3.bar"), "foo-*.bar");
    }

    #[test]
    fn documentation_and_metadata_are_told_by_name_and_place() {
        for doc in [
            "a.tgz!/package/README.md",
            "a.zip!/docs/api.html",
            "a.whl!/x/LICENSE",
            "a!/CHANGELOG",
            "a.tgz!/package/package.json",
            "a.whl!/a-1.0.dist-info/METADATA",
            "a.crate!/a-1.0/.github/workflows/ci.yml",
        ] {
            assert!(is_prose_or_metadata(doc), "{doc}");
        }
        for code in [
            "a.tgz!/package/index.js",
            "a.zip!/setup.py",
            "a!/bin/readme-tool.exe",
        ] {
            assert!(!is_prose_or_metadata(code), "{code}");
        }
    }

    #[test]
    fn what_the_previous_release_had_is_informational_and_nothing_else() {
        let f = |id: FindingId, file: &str| finding(id, file, "m".into(), serde_json::Value::Null);
        let roots = Roots {
            before: Some("a-1.0.zip"),
            after: Some("a-1.1.zip"),
        };
        let previous = [
            f(FindingId::ArchiveSymlink, "a-1.0.zip!/tz.tar!/GMT"),
            f(FindingId::ArchivePathTraversal, "a-1.0.zip!/x.tar!/../a"),
        ];
        let mut now = [
            // Another link in the same archive: the archive always had links.
            f(FindingId::ArchiveSymlink, "a-1.1.zip!/tz.tar!/GMT0"),
            // Another escaping entry is new, though the archive had one.
            f(FindingId::ArchivePathTraversal, "a-1.1.zip!/x.tar!/../b"),
            // A YARA match on a file whose content did not change.
            f(FindingId::YaraMatch, "a-1.1.zip!/lib.dll"),
            f(FindingId::YaraMatch, "a-1.1.zip!/new.dll"),
            // Critical stays critical.
            f(FindingId::IocHash, "a-1.1.zip!/lib.dll"),
        ];
        let unchanged = BTreeSet::from(["a-1.1.zip!/lib.dll"]);
        demote_preexisting(&previous, &mut now, roots, &unchanged);
        let severities: Vec<Severity> = now.iter().map(|f| f.severity).collect();
        assert_eq!(
            severities,
            [
                Severity::Info,
                Severity::High,
                Severity::Info,
                Severity::High,
                Severity::Critical
            ]
        );
    }

    #[test]
    fn links_below_or_beside_known_ones_are_not_new() {
        let known: BTreeSet<String> = [
            "https://github.com/rust-lang/log",
            "https://docs.rs/log/*",
            "https://example.com",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert!(is_known_string(
            "https://github.com/rust-lang/log/issues",
            &known
        ));
        assert!(is_known_string("https://docs.rs/log/0.4.21", &known));
        assert!(!is_known_string(
            "https://github.com/rust-lang/logger",
            &known
        ));
        assert!(!is_known_string("https://github.com/evil/x", &known));
        // A bare origin covers nothing below it.
        assert!(!is_known_string("https://example.com/payload", &known));
    }

    #[test]
    fn verdicts() {
        let f = |s| Finding {
            id: FindingId::InfoSigned,
            severity: s,
            file: String::new(),
            message: String::new(),
            evidence: serde_json::Value::Null,
            repeated: None,
        };
        assert_eq!(verdict(&[]), Verdict::Clean);
        assert_eq!(verdict(&[f(Severity::Info)]), Verdict::Clean);
        assert_eq!(
            verdict(&[f(Severity::Info), f(Severity::Low)]),
            Verdict::Suspicious
        );
        assert_eq!(
            verdict(&[f(Severity::High), f(Severity::Critical)]),
            Verdict::Malicious
        );
    }
}
