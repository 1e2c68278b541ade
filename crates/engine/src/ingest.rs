//! Ingest: files into one tenant, with live matching.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use std::time::Instant;
use turncoat_walk::WalkOptions;

use serde::Serialize;
use turncoat_core::observable::{self, normalize_ip};
use turncoat_core::{
    Actor, Event, FastHashMap, Finding, InventoryRecord, Observable, Platform, Time, Value,
};
use turncoat_detect::findings::IocFinding;
use turncoat_detect::{AdvisoryIndex, IndicatorIndex, IocMatch};
use turncoat_formats::{
    Format, Input, Location, ReadIssue, ReadOptions, Record, Sink, read_telemetry,
};
use turncoat_store::{
    Batch, PendingWork, SightingDelta, SourceFingerprint, SourceUpdate, Store, StoreError, Tenant,
};

use crate::exposure::exposure_hook;
use crate::progress::Progress;
use crate::{Content, EngineError, Result};

/// Records per committed batch: large enough to amortise a transaction,
/// small enough that a crash loses little work and memory stays flat
/// (about 100 MB of encoded ECS events). Commits are what grow with the
/// store: each rewrites the sightings pages the batch touched, which once
/// the store is large is most of them; at 10 million events 262,144 ran
/// 1.3x as fast as 65,536 (BENCHMARKS.md), at 1 million alike.
pub const BATCH_RECORDS: usize = 262_144;

/// How an ingest runs.
#[derive(Clone, Debug, Default)]
pub struct IngestOptions {
    /// The format, or `None` to tell by content.
    pub format: Option<Format>,
    /// Host name for records that name none (an SBOM, a sensor's logs).
    pub endpoint: Option<String>,
    pub read: ReadOptions,
    /// Ranked score from which the post-ingest beacon step raises alerts;
    /// `None` for [`crate::beacons::DEFAULT_ALERT_THRESHOLD`].
    pub beacon_threshold: Option<f64>,
    /// Records per committed batch; `None` for [`BATCH_RECORDS`].
    pub batch_records: Option<usize>,
    /// Whose post-ingest work (beacon scoring, campaigns) the run does.
    pub pending_work: PendingScope,
}

/// Whose post-ingest work an ingest run does once its files are in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PendingScope {
    /// Every tenant's: a run cut short earlier is finished by the next
    /// run, whoever's it is (one process writes the store).
    #[default]
    EveryTenant,
    /// Only the run's own tenant's: a cluster worker, which would
    /// otherwise wait on the tenants other workers are committing. Work
    /// left by a worker that died is redone when its chunk is redelivered.
    OwnTenant,
    /// None now: the tenant's next run follows at once (a worker that sees
    /// the tenant's next chunk queued) and does it. The work stays
    /// recorded with the batches until done, so nothing is lost.
    Later,
}

/// What happened to one input file.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum FileStatus {
    Ingested,
    /// The same content was ingested before: nothing was done.
    AlreadyIngested,
    /// An earlier version (or an interrupted run) covered the first lines.
    Resumed {
        after_line: u64,
    },
    Failed {
        error: String,
    },
}

/// One input's outcome.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileReport {
    pub file: String,
    pub format: Option<String>,
    #[serde(flatten)]
    pub status: FileStatus,
    pub events: u64,
    pub inventory_records: u64,
    pub skipped_records: u64,
    /// This input's first problems (its skipped records among them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub issues: Vec<InputIssue>,
}

/// A problem met reading one input: where, and the whole message (which
/// names the input too).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InputIssue {
    /// The 1-based line, where the input is text and the line is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub message: String,
}

/// A file to ingest under a name of the caller's choosing: a spooled
/// request body is named for the request, not for the temporary file.
#[derive(Clone, Debug)]
pub struct NamedFile {
    pub path: PathBuf,
    pub name: String,
}

/// What an ingest run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IngestReport {
    pub files: Vec<FileReport>,
    pub events: u64,
    pub inventory_records: u64,
    pub skipped_records: u64,
    pub new_alerts: u64,
    pub updated_alerts: u64,
    /// Connection records among the events (Zeek conn, network events, proxy).
    pub connections: u64,
    /// Beacon alerts the pipeline raised or updated afterwards.
    pub beacons: turncoat_store::FindingsOutcome,
    /// Cross-tenant campaigns raised or updated afterwards.
    pub campaigns: crate::campaign::Escalation,
    /// Post-ingest work for other tenants that an interrupted run left
    /// and this run finished.
    pub resumed: Vec<String>,
    /// The first problems met, with file and line.
    pub issues: Vec<String>,
    /// Paths inside the directories given that were not read (links out
    /// of the tree or in a loop, FIFOs, sockets, devices), and why.
    pub unread: Vec<String>,
    /// Sigma rules disabled for exceeding the per-event time budget.
    pub rules_over_budget: Vec<String>,
    pub seconds: f64,
}

/// Problems listed in full in a report; the rest are only counted.
const MAX_LISTED_ISSUES: usize = 50;

/// Problems listed with each input: more, since a sender of a request
/// body (a bulk request) is told per record which ones were skipped.
pub const MAX_INPUT_ISSUES: usize = 2_000;

impl IngestReport {
    /// Inputs that could not be read: files that failed and paths the
    /// walk left unread.
    pub fn failures(&self) -> usize {
        self.unread.len()
            + self
                .files
                .iter()
                .filter(|f| matches!(f.status, FileStatus::Failed { .. }))
                .count()
    }

    /// One line for the whole run: how many inputs ended how.
    pub fn summary(&self) -> String {
        let count =
            |want: fn(&FileStatus) -> bool| self.files.iter().filter(|f| want(&f.status)).count();
        let mut parts = vec![
            format!("{} ingested", count(|s| matches!(s, FileStatus::Ingested))),
            format!(
                "{} resumed",
                count(|s| matches!(s, FileStatus::Resumed { .. }))
            ),
            format!(
                "{} already ingested",
                count(|s| matches!(s, FileStatus::AlreadyIngested))
            ),
            format!(
                "{} failed",
                count(|s| matches!(s, FileStatus::Failed { .. }))
            ),
        ];
        if !self.unread.is_empty() {
            parts.push(format!("{} not read", self.unread.len()));
        }
        format!(
            "{} inputs: {}; {} events, {} records skipped",
            self.files.len() + self.unread.len(),
            parts.join(", "),
            self.events,
            self.skipped_records
        )
    }
}

/// Bytes of a file's head that identify earlier versions of it: short
/// enough that a small log that grew still shares it, long enough to reach
/// past headers that every log of a kind shares (Zeek's `#open` stamp sits
/// at about 100 bytes).
pub const HEAD_BYTES: u64 = 256;

/// Fingerprints a file: a hash of the whole and of its first [`HEAD_BYTES`].
pub fn fingerprint(path: &Path) -> io::Result<SourceFingerprint> {
    let mut f = File::open(path)?;
    let mut whole = blake3::Hasher::new();
    let mut head = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if size < HEAD_BYTES {
            head.update(&buf[..n.min((HEAD_BYTES - size) as usize)]);
        }
        whole.update(&buf[..n]);
        size += n as u64;
    }
    Ok(SourceFingerprint {
        hash: *whole.finalize().as_bytes(),
        head: *head.finalize().as_bytes(),
        size,
    })
}

/// Where to start reading a file: `None` when the same content was
/// ingested whole before, else the lines already committed (of this
/// content, or of an earlier, shorter version of it).
fn resume_point(
    store: &mut dyn Store,
    tenant: &Tenant,
    path: &Path,
    fp: &SourceFingerprint,
) -> Result<Option<u64>> {
    match store.source(tenant, &fp.hash)? {
        Some(s) if s.complete => return Ok(None),
        Some(s) => return Ok(Some(s.lines)),
        None => {}
    }
    // A few candidates at most: each costs a read of its length.
    for earlier in store
        .sources_with_head(tenant, &fp.head, fp.size)?
        .into_iter()
        .take(8)
    {
        if prefix_hash(path, earlier.fingerprint.size).ok() == Some(earlier.fingerprint.hash) {
            return Ok(Some(earlier.lines));
        }
    }
    Ok(Some(0))
}

/// How often a stream's records are committed at least, when they come
/// too slowly to fill a batch.
pub const STREAM_COMMIT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

fn prefix_hash(path: &Path, len: u64) -> io::Result<[u8; 32]> {
    let mut h = blake3::Hasher::new();
    io::copy(&mut File::open(path)?.take(len), &mut h)?;
    Ok(*h.finalize().as_bytes())
}

/// Ingests `paths` into `tenant`, matching live against the stored intel.
pub fn ingest(
    store: &mut dyn Store,
    tenant: &Tenant,
    paths: &[PathBuf],
    options: &IngestOptions,
    progress: &dyn Progress,
    actor: &Actor,
) -> Result<IngestReport> {
    let walk = turncoat_walk::walk(paths, &WalkOptions::all_files());
    let sources = walk.inputs.iter().map(|input| match input {
        turncoat_walk::Input::File(p) => Source::file(p),
        turncoat_walk::Input::Stream(p) => Source {
            path: p,
            stream: true,
            name: None,
        },
    });
    let content = Content::load(store)?;
    run(
        store,
        tenant,
        sources,
        walk.unread(),
        options,
        &content,
        progress,
        actor,
    )
}

/// Ingests files into `tenant` under the names given, in order: the
/// server's spooled request bodies. A file already ingested (the same
/// content, under whatever name) is skipped, so a retried request adds
/// nothing twice. Matches against `content`, which the caller keeps
/// current ([`crate::ContentCache`]).
pub fn ingest_named(
    store: &mut dyn Store,
    tenant: &Tenant,
    files: &[NamedFile],
    options: &IngestOptions,
    content: &Content,
    progress: &dyn Progress,
    actor: &Actor,
) -> Result<IngestReport> {
    let sources = files.iter().map(|f| Source {
        name: Some(&f.name),
        ..Source::file(&f.path)
    });
    let unread = Vec::new();
    run(
        store, tenant, sources, unread, options, content, progress, actor,
    )
}

/// One input of a run.
struct Source<'a> {
    path: &'a Path,
    /// Read once as it comes (stdin, a FIFO): nothing to fingerprint.
    stream: bool,
    /// The name in findings and messages, if not the path.
    name: Option<&'a str>,
}

impl<'a> Source<'a> {
    fn file(path: &'a Path) -> Source<'a> {
        Source {
            path,
            stream: false,
            name: None,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run<'a>(
    store: &mut dyn Store,
    tenant: &Tenant,
    sources: impl Iterator<Item = Source<'a>>,
    unread: Vec<String>,
    options: &IngestOptions,
    content: &Content,
    progress: &dyn Progress,
    actor: &Actor,
) -> Result<IngestReport> {
    let started = Instant::now();
    // Suppressions that ran out resurface their alerts before new ones
    // are matched against what is still live.
    store.expire_suppressions(Time::now())?;
    let addresses: FastHashMap<String, String> = store
        .addresses(tenant)?
        .into_iter()
        .map(|a| (a.ip, a.host))
        .collect();
    let mut report = IngestReport {
        unread,
        ..IngestReport::default()
    };
    let mut ctx = Context {
        indicators: &content.indicators,
        advisories: &content.advisories,
        rules: &content.rules,
        sigma: crate::rules::Evaluation::new(&content.rules),
        addresses,
    };
    ctx.sigma.resume(store, tenant)?;
    for source in sources {
        let file_report = ingest_input(
            store,
            tenant,
            &source,
            options,
            &mut ctx,
            progress,
            &mut report,
        )?;
        report.events += file_report.events;
        report.inventory_records += file_report.inventory_records;
        report.skipped_records += file_report.skipped_records;
        report.files.push(file_report);
    }
    // Correlation windows over by the last event are judged now; the
    // others wait for the tenant's next ingest.
    let mut closing = Vec::new();
    let state = ctx.sigma.suspend(&mut |c, hit| {
        closing.push((crate::rules::correlation_finding(c, hit, None), None));
    });
    report.rules_over_budget = ctx.sigma.over_budget();
    if let Some((name, state)) = state {
        let o = store.record_findings_and_state(
            tenant,
            &closing,
            turncoat_store::FindingMode::Add,
            (name, &state),
        )?;
        report.new_alerts += o.new_alerts;
        report.updated_alerts += o.updated_alerts;
    }
    let detail = format!(
        "{} files, {} events, {} inventory records, {} skipped, {} new alerts",
        report.files.len(),
        report.events,
        report.inventory_records,
        report.skipped_records,
        report.new_alerts
    );
    crate::crash_point("files-committed");
    finish_pending_work(
        store,
        tenant,
        options,
        &content.indicators,
        actor,
        &mut report,
    )?;
    store.audit(actor, Some(tenant), "ingest", &detail)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Does the post-ingest work due: this run's, and any that a run cut
/// short left (recorded with its batches). Every step is idempotent and
/// the work is cleared only after all of it is done, so a crash anywhere
/// in here is repaired by doing it again.
fn finish_pending_work(
    store: &mut dyn Store,
    tenant: &Tenant,
    options: &IngestOptions,
    intel: &IndicatorIndex,
    actor: &Actor,
    report: &mut IngestReport,
) -> Result<()> {
    if options.pending_work == PendingScope::Later {
        return Ok(());
    }
    let mut due = store.pending_work()?;
    if options.pending_work == PendingScope::OwnTenant {
        due.retain(|d| d.tenant.id() == tenant.id());
    }
    if due.is_empty() {
        return Ok(());
    }
    let threshold = options
        .beacon_threshold
        .unwrap_or(crate::beacons::DEFAULT_ALERT_THRESHOLD);
    let mut raised = false;
    for t in due
        .iter()
        .filter(|d| d.work == PendingWork::Beacons)
        .map(|d| &d.tenant)
    {
        let outcome = crate::beacons::analyze_recent(store, t, threshold, intel)?;
        raised |= outcome.new_alerts + outcome.updated_alerts > 0;
        if t.id() == tenant.id() {
            report.new_alerts += outcome.new_alerts;
            report.updated_alerts += outcome.updated_alerts;
            report.beacons = outcome;
        } else {
            report.resumed.push(format!("beacons for {}", t.name()));
        }
        crate::crash_point("beacons-scored");
    }
    if raised || due.iter().any(|d| d.work == PendingWork::Campaigns) {
        report.campaigns = crate::campaign::escalate_after_change(store, actor)?;
        crate::crash_point("campaigns-escalated");
    }
    for d in &due {
        store.finish_work(&d.tenant, d.work)?;
    }
    Ok(())
}

/// Intel and address book for one ingest run.
struct Context<'a> {
    indicators: &'a IndicatorIndex,
    advisories: &'a AdvisoryIndex,
    /// Stored Sigma rules, matched live.
    rules: &'a turncoat_sigma::RuleSet,
    /// Their evaluation, correlation windows included, across every file.
    sigma: crate::rules::Evaluation<'a>,
    /// IP → host name; grows as DHCP and agent records teach it.
    addresses: FastHashMap<String, String>,
}

/// Ingests one file or stream. A file is fingerprinted first: the same
/// content ingested before is skipped, and a file that grew (or whose
/// ingest was cut off) is read from where it was left. A stream is read
/// once as it comes, with nothing to resume by.
fn ingest_input(
    store: &mut dyn Store,
    tenant: &Tenant,
    source: &Source<'_>,
    options: &IngestOptions,
    ctx: &mut Context<'_>,
    progress: &dyn Progress,
    report: &mut IngestReport,
) -> Result<FileReport> {
    let (path, stream) = (source.path, source.stream);
    let name = match source.name {
        Some(name) => name.to_owned(),
        None if path.as_os_str() == "-" => "<stdin>".to_owned(),
        None => path.display().to_string(),
    };
    let mut file_report = FileReport {
        file: name.clone(),
        format: None,
        status: FileStatus::Ingested,
        events: 0,
        inventory_records: 0,
        skipped_records: 0,
        issues: Vec::new(),
    };
    let fail = |mut r: FileReport, e: String| {
        r.status = FileStatus::Failed { error: e };
        Ok(r)
    };
    let (fingerprint, skip_lines) = if stream {
        (None, 0)
    } else {
        let fp = match fingerprint(path) {
            Ok(fp) => fp,
            Err(e) => return fail(file_report, format!("{name}: {e}")),
        };
        match resume_point(store, tenant, path, &fp)? {
            None => {
                file_report.status = FileStatus::AlreadyIngested;
                return Ok(file_report);
            }
            Some(lines) => (Some(fp), lines),
        }
    };
    if skip_lines > 0 {
        file_report.status = FileStatus::Resumed {
            after_line: skip_lines,
        };
    }
    let opened = if stream {
        Input::open_stream(path, STREAM_COMMIT_INTERVAL)
    } else {
        Input::open(path)
    };
    let mut input = match opened {
        Ok(i) if source.name.is_some() => i.renamed(&name),
        Ok(i) => i,
        Err(e) => return fail(file_report, format!("{name}: {e}")),
    };
    progress.start(&format!("ingest {name}"), None);
    let mut read = options.read.clone();
    if options.endpoint.is_some() {
        read.host = options.endpoint.clone();
    }
    let mut sink = BatchSink {
        store,
        tenant,
        ctx,
        name,
        fingerprint,
        lines: skip_lines,
        complete: false,
        last_commit: Instant::now(),
        skip_lines,
        batch_records: options.batch_records.unwrap_or(BATCH_RECORDS).max(1),
        batch: Batch::default(),
        pending: Pending::default(),
        records: 0,
        beacon_input: false,
        file_report: &mut file_report,
        report,
        error: None,
        observables: Vec::new(),
        matches: Vec::new(),
        progress,
    };
    let result = read_telemetry(&mut input, options.format, &read, &mut sink);
    let format = match result {
        Ok(f) => Some(f),
        Err(issue) => {
            sink.report_issue(&issue);
            None
        }
    };
    // A file none of whose records read (the wrong --format or
    // --endpoint) is not done: a later run with the right options must
    // read it again.
    let all_skipped = sink.file_report.events == 0
        && sink.file_report.inventory_records == 0
        && sink.file_report.skipped_records > 0;
    if sink.error.is_none() {
        sink.complete = format.is_some() && !all_skipped;
        sink.flush();
    }
    if let Some(e) = sink.error.take() {
        return Err(EngineError::Store(e));
    }
    progress.finish();
    file_report.format = format.map(|f| f.to_string());
    if file_report.events == 0 && file_report.inventory_records == 0 {
        let last = report.issues.last().cloned();
        if format.is_none() {
            let error = last.unwrap_or_else(|| "unreadable".into());
            file_report.status = FileStatus::Failed { error };
        } else if all_skipped {
            let error = format!(
                "every record ({}) was skipped, the file is not marked ingested; last: {}",
                file_report.skipped_records,
                last.unwrap_or_default()
            );
            file_report.status = FileStatus::Failed { error };
        }
    }
    Ok(file_report)
}

/// Whether an event is a connection record the beacon analysis reads.
fn is_connection(e: &Event) -> bool {
    match e.logsource.product.as_deref() {
        Some("zeek") => e.logsource.service.as_deref() == Some("conn"),
        _ => matches!(
            e.logsource.category.as_deref(),
            Some("network_connection" | "proxy")
        ),
    }
}

/// Per-batch rollups, keyed for aggregation.
#[derive(Default)]
struct Pending {
    /// host → day → observable → rollup: nested so that a repeat sighting
    /// is found by reference, without building an owned key; the keys
    /// become the batch's rows at the flush.
    sightings: FastHashMap<String, FastHashMap<i64, FastHashMap<Observable, Rollup>>>,
    /// (indicator, observable, endpoint, day) → finding so far.
    findings: FastHashMap<(usize, Observable, String, i64), (Finding, usize)>,
    /// (rule, endpoint, day) → Sigma finding so far.
    sigma: FastHashMap<(usize, String, i64), (Finding, usize)>,
    /// (correlation, finding key) → correlation finding.
    correlations: FastHashMap<(String, turncoat_core::FindingKey), (Finding, usize)>,
    endpoints: FastHashMap<String, (Option<Platform>, Time)>,
}

/// One (observable, endpoint, day) of a batch so far.
struct Rollup {
    first: Time,
    last: Time,
    count: u64,
    /// The batch's index of the earliest event showing it.
    event: usize,
}

impl Pending {
    /// Notes an endpoint's platform and latest time, allocating its name
    /// only the first time in a batch.
    fn see_endpoint(&mut self, host: &str, platform: Option<Platform>, at: Time) {
        match self.endpoints.get_mut(host) {
            Some(slot) => {
                slot.0 = slot.0.or(platform);
                slot.1 = slot.1.max(at);
            }
            None => {
                self.endpoints.insert(host.to_owned(), (platform, at));
            }
        }
    }
}

struct BatchSink<'a, 'c> {
    store: &'a mut dyn Store,
    tenant: &'a Tenant,
    ctx: &'a mut Context<'c>,
    /// The input's name in findings and messages.
    name: String,
    /// The file's fingerprint; `None` for a stream, whose progress is not
    /// recorded since it cannot be read again.
    fingerprint: Option<SourceFingerprint>,
    /// Lines (or records) read so far.
    lines: u64,
    /// The whole input was read.
    complete: bool,
    /// When the last batch was committed: a stream commits at least every
    /// [`STREAM_COMMIT_INTERVAL`], however slowly it flows.
    last_commit: Instant,
    skip_lines: u64,
    batch_records: usize,
    batch: Batch,
    pending: Pending,
    records: usize,
    /// Whether the batch holds records the beacon analysis reads, which
    /// makes it due.
    beacon_input: bool,
    file_report: &'a mut FileReport,
    report: &'a mut IngestReport,
    /// A store failure stops the ingest: the batch in flight is not committed.
    error: Option<StoreError>,
    observables: Vec<Observable>,
    matches: Vec<IocMatch>,
    progress: &'a dyn Progress,
}

impl BatchSink<'_, '_> {
    fn report_issue(&mut self, issue: &ReadIssue) {
        if self.report.issues.len() < MAX_LISTED_ISSUES {
            self.report.issues.push(issue.to_string());
        }
        if self.file_report.issues.len() < MAX_INPUT_ISSUES {
            self.file_report.issues.push(InputIssue {
                line: match issue.location {
                    Location::Line(n) => Some(n),
                    _ => None,
                },
                message: issue.to_string(),
            });
        }
    }

    fn add_event(&mut self, mut event: Event) {
        self.learn_addresses(&event);
        // Network sensors know endpoints by address: name them where we can.
        if let Some(host) = self.ctx.addresses.get(&event.host) {
            event.host = host.clone();
        }
        let platform = event
            .logsource
            .product
            .as_deref()
            .and_then(Platform::from_os_name);
        self.pending.see_endpoint(&event.host, platform, event.time);

        observable::extract(&event, &mut self.observables);
        let index = self.batch.events.len();
        let day = event.time.day();
        if !self.observables.is_empty() {
            self.roll_up_sightings(&event, day, index);
        }
        if !self.ctx.indicators.is_empty() {
            self.match_indicators(&event, day, index);
        }
        if !self.ctx.rules.rules.is_empty() {
            self.evaluate_rules(&event, day, index);
        }
        if is_connection(&event) {
            self.report.connections += 1;
        }
        self.beacon_input |= crate::beacons::reads(
            event.logsource.product.as_deref(),
            event.logsource.category.as_deref(),
        );
        self.batch.events.push(&event);
        self.file_report.events += 1;
    }

    /// Counts the event's observables into the per (endpoint, day,
    /// observable) sightings, the latest event as the one pointed to.
    fn roll_up_sightings(&mut self, event: &Event, day: i64, index: usize) {
        if !self.pending.sightings.contains_key(event.host.as_str()) {
            self.pending
                .sightings
                .insert(event.host.clone(), FastHashMap::default());
        }
        let by_day = self
            .pending
            .sightings
            .get_mut(event.host.as_str())
            .expect("inserted above");
        let by_obs = by_day.entry(day).or_default();
        for obs in &self.observables {
            match by_obs.get_mut(obs) {
                Some(s) => {
                    s.count += 1;
                    s.first = s.first.min(event.time);
                    if event.time >= s.last {
                        s.last = event.time;
                        s.event = index;
                    }
                }
                None => {
                    let rollup = Rollup {
                        first: event.time,
                        last: event.time,
                        count: 1,
                        event: index,
                    };
                    by_obs.insert(obs.clone(), rollup);
                }
            }
        }
    }

    /// Matches the event's observables against the intel, rolling hits up
    /// per (indicator, observable, endpoint, day).
    fn match_indicators(&mut self, event: &Event, day: i64, index: usize) {
        self.ctx
            .indicators
            .match_event(&self.observables, event.time, &mut self.matches);
        for m in &self.matches {
            let obs = &self.observables[m.observable];
            let key = (m.indicator, obs.clone(), event.host.clone(), day);
            match self.pending.findings.get_mut(&key) {
                Some((f, ev)) => {
                    f.count += 1;
                    f.first_seen = f.first_seen.min(event.time);
                    f.evidence.before_valid_from |= self
                        .ctx
                        .indicators
                        .get(m.indicator)
                        .before_valid_from(event.time);
                    if event.time >= f.last_seen {
                        f.last_seen = event.time;
                        f.evidence.time = event.time;
                        *ev = index;
                    }
                }
                None => {
                    let f = IocFinding {
                        indicator: self.ctx.indicators.get(m.indicator),
                        observable: obs,
                        endpoint: &event.host,
                        first_seen: event.time,
                        last_seen: event.time,
                        count: 1,
                        file: Some(self.name.clone()),
                        field: None,
                    }
                    .finding();
                    self.pending.findings.insert(key, (f, index));
                }
            }
        }
    }

    /// Runs the Sigma rules and correlations on the event.
    fn evaluate_rules(&mut self, event: &Event, day: i64, index: usize) {
        let (pending, file) = (&mut self.pending, &self.name);
        self.ctx.sigma.evaluate(
            event,
            &mut |i, rule| match pending.sigma.get_mut(&(i, event.host.clone(), day)) {
                Some((f, ev)) => {
                    let first_seen = f.first_seen.min(event.time);
                    if event.time >= f.last_seen {
                        // The evidence follows the latest event.
                        *f = crate::rules::finding(rule, event, f.count, Some(file.clone()));
                        *ev = index;
                    }
                    f.count += 1;
                    f.first_seen = first_seen;
                }
                None => {
                    let f = crate::rules::finding(rule, event, 1, Some(file.clone()));
                    pending
                        .sigma
                        .insert((i, event.host.clone(), day), (f, index));
                }
            },
            &mut |c, hit| {
                let f = crate::rules::correlation_finding(c, hit, Some(file.clone()));
                pending
                    .correlations
                    .entry((f.source.clone(), f.key.clone()))
                    .or_insert((f, index));
            },
        );
    }

    /// DHCP leases (Zeek `dhcp`) and agents' own addresses (ECS `host.ip`)
    /// teach which host holds which address.
    fn learn_addresses(&mut self, event: &Event) {
        let mut learn = |ip: &str, host: &str, at: Time| {
            // Agents repeat their address on every event: the common case
            // is a lookup, no allocation.
            if self.ctx.addresses.get(ip).is_some_and(|h| h == host) {
                return;
            }
            if let Some(ip) = normalize_ip(ip)
                && !host.is_empty()
                && self.ctx.addresses.get(&ip).is_none_or(|h| h != host)
            {
                self.ctx.addresses.insert(ip.clone(), host.to_owned());
                self.batch.addresses.push((ip, host.to_owned(), at));
            }
        };
        if event.logsource.service.as_deref() == Some("dhcp")
            && let (Some(ip), Some(host)) = (
                event.fields.get_str("assigned_addr"),
                event.fields.get_str("host_name"),
            )
        {
            learn(ip, host, event.time);
        }
        if let Some(ips) = event.fields.get("host.ip") {
            let list: Vec<&str> = match ips {
                Value::Str(s) => vec![s.as_str()],
                other => other.strings().collect(),
            };
            for ip in list {
                learn(ip, &event.host, event.time);
            }
        }
    }

    fn add_inventory(&mut self, record: InventoryRecord) {
        let platform = match &record.change {
            turncoat_core::InventoryChange::Added(i)
            | turncoat_core::InventoryChange::Removed(i)
            | turncoat_core::InventoryChange::Snapshot(i) => i.iter().find_map(|i| i.platform),
        };
        self.pending
            .see_endpoint(&record.host, platform, record.time);
        self.batch.inventory.push(record);
        self.file_report.inventory_records += 1;
    }

    fn flush(&mut self) {
        if self.error.is_some() {
            return;
        }
        let mut batch = std::mem::take(&mut self.batch);
        // The rollup maps are drained, not dropped: their capacity carries
        // over to the next batch instead of being grown (and rehashed) again.
        // The list is sized once: grown by doubling, its copies and fresh
        // pages cost 2% of ingest.
        let rows = (self.pending.sightings.values())
            .flat_map(|by_day| by_day.values())
            .map(|by_obs| by_obs.len())
            .sum();
        batch.sightings.reserve_exact(rows);
        for (host, by_day) in self.pending.sightings.iter_mut() {
            by_day.retain(|_, by_obs| !by_obs.is_empty());
            for by_obs in by_day.values_mut() {
                batch
                    .sightings
                    .extend(by_obs.drain().map(|(observable, r)| SightingDelta {
                        observable,
                        endpoint: host.clone(),
                        first: r.first,
                        last: r.last,
                        count: r.count,
                        event: r.event,
                    }));
            }
        }
        batch.findings = self
            .pending
            .findings
            .drain()
            .map(|(_, v)| v)
            .chain(self.pending.sigma.drain().map(|(_, v)| v))
            .chain(self.pending.correlations.drain().map(|(_, v)| v))
            .map(|(f, i)| (f, Some(i)))
            .collect();
        batch.endpoints = self
            .pending
            .endpoints
            .drain()
            .map(|(h, (p, t))| (h, p, t))
            .collect();
        if std::mem::take(&mut self.beacon_input) {
            batch.pending.push(PendingWork::Beacons);
        }
        if !batch.findings.is_empty() || !batch.inventory.is_empty() {
            // Live and exposure alerts may make a cross-tenant campaign.
            batch.pending.push(PendingWork::Campaigns);
        }
        batch.stream_state.extend(self.ctx.sigma.saved());
        batch.source = self.fingerprint.as_ref().map(|fp| SourceUpdate {
            fingerprint: fp.clone(),
            name: self.name.clone(),
            lines: self.lines,
            complete: self.complete,
        });
        let advisories = self.ctx.advisories;
        let mut hook = exposure_hook(advisories);
        match self.store.commit_batch(self.tenant, batch, &mut hook) {
            Ok(outcome) => {
                self.report.new_alerts += outcome.new_alerts;
                self.report.updated_alerts += outcome.updated_alerts;
                crate::crash_point("batch-committed");
            }
            Err(e) => self.error = Some(e),
        }
        self.records = 0;
        self.last_commit = Instant::now();
    }
}

impl Sink for BatchSink<'_, '_> {
    fn record(&mut self, record: Record, location: Location) {
        if self.error.is_some() {
            return;
        }
        let line = match location {
            Location::Line(n) | Location::Record(n) => n,
            _ => self.lines + 1,
        };
        if line <= self.skip_lines {
            return;
        }
        self.lines = self.lines.max(line);
        match record {
            Record::Event(e) => self.add_event(e),
            Record::Inventory(r) => self.add_inventory(r),
        }
        self.records += 1;
        self.progress.advance(1);
        if self.records >= self.batch_records
            || (self.fingerprint.is_none() && self.last_commit.elapsed() >= STREAM_COMMIT_INTERVAL)
        {
            self.flush();
        }
    }

    fn idle(&mut self) {
        if self.error.is_none() && self.records > 0 {
            self.flush();
        }
    }

    fn skipped(&mut self, issue: ReadIssue) {
        if let Location::Line(n) | Location::Record(n) = issue.location
            && n <= self.skip_lines
        {
            return;
        }
        self.file_report.skipped_records += 1;
        self.report_issue(&issue);
    }
}
