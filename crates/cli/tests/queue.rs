//! Cluster mode's queue through the binary: `serve --queue` publishes
//! ingest to NATS JetStream and answers 202 with a batch, `worker`s commit
//! it to PostgreSQL, and whatever is killed along the way (a worker, the
//! server, nats-server, the database's connections) the alerts and counts
//! equal those of a clean single-process run of the same requests.
//!
//! Needs `TURNCOAT_TEST_POSTGRES_URL` and a `nats-server` binary (on the
//! PATH, or `TURNCOAT_TEST_NATS_SERVER`); each test starts its own
//! nats-server with its own port and store directory, so a kill -9 never
//! touches a shared one. Skipped with the reason when either is missing.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use common::Env;
use common::served::Served;
use serde_json::Value;
use turncoat_store::conformance::TestDatabases;

/// Messages are kept small (NATS's default is 1 MiB) so that the fleet's
/// line-delimited files are cut into several chunks and its Zeek logs
/// (whole files, up to half a megabyte) go through the object store.
const MAX_PAYLOAD: usize = 256 << 10;

/// A nats-server of the test's own.
struct Nats {
    child: Child,
    binary: PathBuf,
    config: PathBuf,
    port: u16,
}

impl Nats {
    fn start(dir: &Path) -> Option<Nats> {
        let binary = match std::env::var_os("TURNCOAT_TEST_NATS_SERVER") {
            Some(b) => PathBuf::from(b),
            None => ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())?,
        };
        let version = Command::new(&binary).arg("--version").output().ok()?;
        let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
        // "nats-server: v2.9.10". Builds from 2.10 on know `sync_interval`:
        // the config then asks for an fsync per write.
        let minor: u32 = version
            .rsplit('v')
            .next()
            .and_then(|v| v.split('.').nth(1))
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        let synced = minor >= 10;
        let port = common::free_port();
        let store = dir.join("nats-store");
        let config = dir.join("nats.conf");
        let sync = if synced {
            ", sync_interval: always"
        } else {
            ""
        };
        std::fs::write(
            &config,
            format!(
                "listen: 127.0.0.1:{port}\nmax_payload: {MAX_PAYLOAD}\njetstream {{ store_dir: {:?}{sync} }}\n",
                store.display().to_string()
            ),
        )
        .unwrap();
        println!(
            "{version} on port {port}, store {}{}",
            store.display(),
            if synced {
                ", sync_interval always"
            } else {
                " (this build has no sync_interval: a kill -9 keeps what the OS holds; power loss is not tested)"
            }
        );
        let child = spawn_nats(&binary, &config, port);
        Some(Nats {
            child,
            binary,
            config,
            port,
        })
    }

    fn url(&self, namespace: &str) -> String {
        format!("nats://127.0.0.1:{}/{namespace}", self.port)
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// The same server again, on the same port and store.
    fn start_again(&mut self) {
        self.child = spawn_nats(&self.binary, &self.config, self.port);
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_nats(binary: &Path, config: &Path, port: u16) -> Child {
    let child = Command::new(binary)
        .arg("-c")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Runs the binary on `store` with `args`, expecting success.
fn ok_on(store: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_turncoat"))
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A worker process, its log in a file (a pipe nobody reads would block it).
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn start(env: &Env, store: &str, queue: &str, name: &str, vars: &[(&str, &str)]) -> Worker {
        let log = env.dir.path().join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_turncoat"))
            .args(["--store", store, "--queue", queue, "worker"])
            .args(["--slots", "2", "--ack-wait", "3", "--name", name])
            .envs(vars.iter().copied())
            .env("TURNCOAT_LOG", "info,async_nats=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Worker { child, log }
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One ingest request: a tenant, a file's name and its bytes.
#[derive(Clone)]
struct Request {
    tenant: String,
    name: String,
    body: Vec<u8>,
}

/// A simulated fleet with the 3CX compromise, as the requests its sensors
/// would send: one per file.
fn fleet(env: &Env) -> (Vec<String>, Vec<Request>) {
    let fleet = env.dir.path().join("fleet");
    env.ok(&[
        "simulate",
        "--out",
        common::path(&fleet),
        "--tenants",
        "3",
        "--endpoints",
        "4",
        "--days",
        "6",
        "--events-per-endpoint-day",
        "40",
    ]);
    let mut tenants = Vec::new();
    let mut requests = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&fleet)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let tenant = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut files = Vec::new();
        collect_files(&dir, &mut files);
        files.sort();
        for file in files {
            requests.push(Request {
                tenant: tenant.clone(),
                name: file.file_name().unwrap().to_string_lossy().into_owned(),
                body: std::fs::read(&file).unwrap(),
            });
        }
        tenants.push(tenant);
    }
    (tenants, requests)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The 3CX intel pack.
fn pack() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../intel/3cx")
}

/// A Sigma rule on processes started from an image, which the simulated
/// fleet runs on every tenant.
fn process_rule(n: u32, image: &str) -> String {
    format!(
        "title: {image} started\nid: dddddddd-0000-0000-0000-00000000000{n}\nstatus: test\nlevel: low\n\
         logsource:\n    product: windows\n    category: process_creation\n\
         detection:\n    sel:\n        Image|endswith: '\\{image}'\n    condition: sel\n"
    )
}

/// The rule files, imported one after the other.
fn rules_files(env: &Env) -> [PathBuf; 2] {
    [
        ("powershell.yml", process_rule(1, "powershell.exe")),
        ("cmd.yml", process_rule(2, "cmd.exe")),
    ]
    .map(|(name, text)| {
        let path = env.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    })
}

/// When a run imports the intel: before any request, or once half of
/// them are sent (so that what came before is found by the retro-hunt);
/// or before any request, with Sigma rules once every request is
/// committed (so that all of it is found by the rules' retro-hunt).
#[derive(Clone, Copy, PartialEq)]
enum IntelAt {
    Start,
    Middle,
    StartThenRules,
}

impl IntelAt {
    /// Requests sent before the intel.
    fn before(self, requests: &[Request]) -> usize {
        match self {
            IntelAt::Start | IntelAt::StartThenRules => 0,
            IntelAt::Middle => requests.len() / 2,
        }
    }
}

/// Tenants, intel (at the start) and an ingest token per tenant on `store`.
fn set_up(store: &str, tenants: &[String], intel: IntelAt) -> Vec<(String, String)> {
    if intel != IntelAt::Middle {
        ok_on(store, &["intel", "import", common::path(&pack())]);
    }
    tenants
        .iter()
        .map(|t| {
            ok_on(store, &["tenant", "add", t]);
            let token = common::served::last_line(&ok_on(
                store,
                &["token", "create", "--tenant", t, "--scope", "ingest"],
            ));
            (t.clone(), token)
        })
        .collect()
}

fn token_of<'a>(tokens: &'a [(String, String)], tenant: &str) -> &'a str {
    &tokens.iter().find(|(t, _)| t == tenant).unwrap().1
}

/// Sends one request; the status and the body.
fn send(served: &Served, tokens: &[(String, String)], r: &Request) -> (u16, String, String) {
    let auth = format!("Bearer {}", token_of(tokens, &r.tenant));
    served.send(
        "POST",
        &format!("/api/v1/tenants/{}/ingest?name={}", r.tenant, r.name),
        &[("Authorization", auth.as_str())],
        Some(&r.body),
    )
}

/// Sends a request until it is accepted, as a sensor does: a refusal
/// (the queue down, the server gone) is sent again. The batch id.
fn send_until_accepted(served: &Served, tokens: &[(String, String)], r: &Request) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, headers, body) = send(served, tokens, r);
        if status == 202 {
            let batch: Value = serde_json::from_str(&body).unwrap();
            assert!(headers.contains("location: /api/v1/batches/"), "{headers}");
            return batch["batch"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "never accepted: {status} {body}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Waits until every batch is done; their answers.
fn wait_for(
    served: &Served,
    tokens: &[(String, String)],
    batches: &[(String, String)],
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(300);
    batches
        .iter()
        .map(|(tenant, id)| {
            loop {
                let (status, _, body) = served.get(
                    &format!("/api/v1/batches/{id}"),
                    Some(token_of(tokens, tenant)),
                );
                if status == 200 {
                    let answer: Value = serde_json::from_str(&body).unwrap();
                    if answer["state"] == "done" {
                        break answer;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "batch {id} never done: {status} {body}"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        })
        .collect()
}

/// What a run comes to: alerts as an analyst reads them, and events per
/// tenant.
#[derive(Debug, PartialEq)]
struct Outcome {
    alerts: BTreeSet<String>,
    events: Vec<(String, u64)>,
}

fn outcome(store: &str) -> Outcome {
    let json = |args: &[&str]| -> Value { serde_json::from_str(&ok_on(store, args)).unwrap() };
    let mut alerts = json(&["alerts", "--format", "json"]);
    // A body cut into chunks names each by its lines (`ecs.ndjson, lines
    // 1-309`): queued bodies are cut smaller than a server cuts its own.
    for alert in alerts.as_array_mut().unwrap() {
        if let Some(file) = alert.pointer_mut("/evidence/file")
            && let Some(name) = file.as_str().and_then(|f| f.split(", lines ").next())
        {
            *file = name.to_owned().into();
        }
    }
    Outcome {
        alerts: common::alert_facts(alerts.as_array().unwrap()),
        events: common::tenant_events(&json(&["tenant", "list", "--format", "json"])),
    }
}

/// The clean single-process run: `serve` on an embedded store, no queue,
/// the same requests one after another.
fn reference(env: &Env, tenants: &[String], requests: &[Request], intel: IntelAt) -> Outcome {
    let dir = env.dir.path().join("reference");
    let store = format!("sqlite://{}", dir.display());
    let tokens = set_up(&store, tenants, intel);
    let served = Served::start_with(env, &["--store", &store], "http");
    for (i, r) in requests.iter().enumerate() {
        if intel == IntelAt::Middle && i == intel.before(requests) {
            ok_on(&store, &["intel", "import", common::path(&pack())]);
        }
        let (status, _, body) = send(&served, &tokens, r);
        assert_eq!(status, 202, "{}: {body}", r.name);
    }
    drop(served);
    if intel == IntelAt::StartThenRules {
        for file in rules_files(env) {
            ok_on(&store, &["rules", "import", common::path(&file)]);
        }
    }
    let outcome = outcome(&store);
    assert!(
        !outcome.alerts.is_empty(),
        "the input raises alerts: {outcome:?}"
    );
    outcome
}

/// Everything a queue test needs: the requests, the single-process
/// run's outcome, a fresh database set up alike, a queue namespace on a
/// nats-server of its own.
struct Cluster {
    env: Env,
    nats: Nats,
    requests: Vec<Request>,
    want: Outcome,
    pg: String,
    queue: String,
    tokens: Vec<(String, String)>,
    /// Dropped last: the database goes once nothing uses it.
    _dbs: TestDatabases,
}

/// A cluster for test `name`, its fleet's files sent as they are or, with
/// `cut`, line-delimited ones cut into requests of that many lines; or
/// `None` (with the reason printed) without PostgreSQL or nats-server.
fn cluster(name: &str, cut: Option<usize>) -> Option<Cluster> {
    cluster_with(name, cut, IntelAt::Start)
}

/// As [`cluster`], with the intel imported at `intel`.
fn cluster_with(name: &str, cut: Option<usize>, intel: IntelAt) -> Option<Cluster> {
    cluster_of(name, &|env| Some(fleet(env)), cut, intel)
}

/// The tenants and requests of a cluster test, or `None` (the reason
/// printed) when its material is absent.
type Input = dyn Fn(&Env) -> Option<(Vec<String>, Vec<Request>)>;

/// As [`cluster_with`], sending the requests `input` makes.
fn cluster_of(name: &str, input: &Input, cut: Option<usize>, intel: IntelAt) -> Option<Cluster> {
    let mut dbs = TestDatabases::new(name)?;
    let env = Env::new();
    let Some(nats) = Nats::start(env.dir.path()) else {
        println!(
            "skipped: no nats-server binary (apt-get install nats-server, or TURNCOAT_TEST_NATS_SERVER)"
        );
        return None;
    };
    let (tenants, requests) = input(&env)?;
    let requests = match cut {
        Some(lines) => split(requests, lines),
        None => requests,
    };
    let want = reference(&env, &tenants, &requests, intel);
    let pg = dbs.fresh();
    let tokens = set_up(&pg, &tenants, intel);
    Some(Cluster {
        queue: nats.url(name),
        env,
        nats,
        requests,
        want,
        pg,
        tokens,
        _dbs: dbs,
    })
}

impl Cluster {
    /// Runs an import through the CLI with the queue; asserts it handed
    /// its retro-hunt to the workers, one job for each of the 3 tenants.
    fn import_handing_out(&self, args: &[&str]) -> String {
        let mut with_queue = vec!["--queue", &self.queue];
        with_queue.extend_from_slice(args);
        let imported = ok_on(&self.pg, &with_queue);
        assert!(
            imported.contains("handed to the workers: one job for each of 3 tenants"),
            "{imported}"
        );
        imported
    }

    fn serve(&self) -> Served {
        Served::start_with(
            &self.env,
            &["--store", &self.pg, "--queue", &self.queue],
            "http",
        )
    }

    fn worker(&self, name: &str, vars: &[(&str, &str)]) -> Worker {
        Worker::start(&self.env, &self.pg, &self.queue, name, vars)
    }

    /// Sends every request until accepted; the tenant and batch of each.
    fn send_all(&self, served: &Served) -> Vec<(String, String)> {
        self.send(served, &self.requests)
    }

    fn send(&self, served: &Served, requests: &[Request]) -> Vec<(String, String)> {
        requests
            .iter()
            .map(|r| {
                (
                    r.tenant.clone(),
                    send_until_accepted(served, &self.tokens, r),
                )
            })
            .collect()
    }

    /// Waits for the batches, then compares the store with the
    /// single-process run.
    fn check(&self, what: &str, served: &Served, batches: &[(String, String)]) -> Vec<Value> {
        let answers = wait_for(served, &self.tokens, batches);
        assert_same(what, &outcome(&self.pg), &self.want);
        answers
    }
}

fn assert_same(what: &str, got: &Outcome, want: &Outcome) {
    let missing: Vec<_> = want.alerts.difference(&got.alerts).collect();
    let extra: Vec<_> = got.alerts.difference(&want.alerts).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: alerts differ from the single-process run\nmissing: {missing:#?}\nextra: {extra:#?}"
    );
    assert_eq!(got.events, want.events, "{what}: events per tenant");
    println!(
        "{what}: {} alerts and events per tenant {:?} equal the single-process run's",
        got.alerts.len(),
        got.events
    );
}

/// The plain path: a server publishes, two workers commit, each batch
/// reports what its chunks came to, and a tenant sees only its batches.
#[test]
fn queued_ingest_equals_a_single_process_run() {
    let Some(c) = cluster("plain", None) else {
        return;
    };
    let served = c.serve();
    let _workers = [c.worker("w1", &[]), c.worker("w2", &[])];
    let started = Instant::now();
    let batches = c.send_all(&served);
    let answers = c.check("two workers", &served, &batches);
    let seconds = started.elapsed().as_secs_f64();
    let events: u64 = answers.iter().map(|a| a["events"].as_u64().unwrap()).sum();
    let chunks: u64 = answers.iter().map(|a| a["chunks"].as_u64().unwrap()).sum();
    assert!(
        answers.iter().all(|a| a["chunks_failed"] == 0),
        "{answers:#?}"
    );
    assert!(
        chunks > c.requests.len() as u64,
        "line-delimited bodies over a message were cut"
    );
    let largest = c.requests.iter().map(|r| r.body.len()).max().unwrap();
    assert!(
        largest > MAX_PAYLOAD,
        "a body that cannot be cut is bigger than a message"
    );
    let stored: u64 = outcome(&c.pg).events.iter().map(|(_, n)| n).sum();
    assert_eq!(events, stored, "the batches count what was stored");
    let by: BTreeSet<&str> = answers
        .iter()
        .flat_map(|a| a["done"].as_array().unwrap())
        .map(|c| c["worker"].as_str().unwrap())
        .collect();
    println!(
        "{} requests, {chunks} chunks, {events} events in {seconds:.1} s, committed by {by:?}",
        c.requests.len()
    );
    // Another tenant's batch is no batch; nor is a made-up one.
    let (first_tenant, first_batch) = &batches[0];
    let other = c.tokens.iter().find(|(t, _)| t != first_tenant).unwrap();
    let (status, _, _) = served.get(&format!("/api/v1/batches/{first_batch}"), Some(&other.1));
    assert_eq!(status, 404, "another tenant's batch");
    let own = token_of(&c.tokens, first_tenant);
    let (status, _, _) = served.get("/api/v1/batches/NOSUCHBATCH", Some(own));
    assert_eq!(status, 404);
}

/// Intel imported (through the CLI, with `--queue`) while the first half
/// of the requests is still being committed: the import hands one
/// retro-hunt job per tenant to the workers and announces the change; each
/// job waits for the chunks queued before it (matched against the old
/// intel), hunts, and every later chunk is matched live against the new
/// intel. The alerts equal a single-process run that imported the intel
/// between the same two halves.
#[test]
fn intel_imported_mid_ingest_is_hunted_by_the_workers() {
    let Some(c) = cluster_with("retro", None, IntelAt::Middle) else {
        return;
    };
    let served = c.serve();
    let workers = [c.worker("w1", &[]), c.worker("w2", &[])];
    let (first, rest) = c.requests.split_at(IntelAt::Middle.before(&c.requests));
    let mut batches = c.send(&served, first);
    c.import_handing_out(&["intel", "import", common::path(&pack())]);
    batches.extend(c.send(&served, rest));
    wait_for_hunts(&workers, 3);
    for w in &workers {
        let log = strip_ansi(&w.log());
        assert!(
            log.contains("content loaded after a change"),
            "every worker loads the new intel when told: {log}"
        );
    }
    c.check("intel imported mid-ingest", &served, &batches);
}

/// Sigma rules imported once every request is committed, one through
/// the CLI with `--queue`, one through the API of a queued server: each
/// import hands one retro-hunt job per tenant to the workers, which run
/// the new rule over the tenant's archive. The alerts equal a
/// single-process run whose imports hunted in-process.
#[test]
fn rules_imported_are_hunted_by_the_workers() {
    let Some(c) = cluster_with("rules", None, IntelAt::StartThenRules) else {
        return;
    };
    let served = c.serve();
    let workers = [c.worker("w1", &[]), c.worker("w2", &[])];
    let batches = c.send_all(&served);
    wait_for(&served, &c.tokens, &batches);
    let sigma = |store: &str| {
        let alerts: Value = serde_json::from_str(&ok_on(
            store,
            &["alerts", "--kind", "sigma", "--format", "json"],
        ))
        .unwrap();
        alerts.as_array().unwrap().len()
    };
    assert_eq!(sigma(&c.pg), 0, "no rule yet, no Sigma alert");
    let [by_cli, by_api] = rules_files(&c.env);
    let imported = c.import_handing_out(&["rules", "import", common::path(&by_cli)]);
    assert!(
        !imported.contains("retro-hunt:\n"),
        "not hunted here: {imported}"
    );
    wait_for_hunts(&workers, 3);
    let after_first = sigma(&c.pg);
    assert!(
        after_first >= 3,
        "the rule fires on every tenant: {after_first} alerts"
    );

    ok_on(&c.pg, &["user", "add", "root", "--role", "admin"]);
    let admin = common::served::last_line(&ok_on(&c.pg, &["token", "create", "--user", "root"]));
    let auth = format!("Bearer {admin}");
    let (status, _, body) = served.send(
        "POST",
        "/api/v1/rules?name=cmd.yml",
        &[("Authorization", auth.as_str())],
        Some(&std::fs::read(&by_api).unwrap()),
    );
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["retro_queued"]["tenants"], 3, "{report:#}");
    assert_eq!(
        report["retro"],
        serde_json::json!([]),
        "not hunted by the server: {report:#}"
    );
    wait_for_hunts(&workers, 6);
    assert!(sigma(&c.pg) > after_first, "the second rule fires too");
    c.check("rules imported after ingest", &served, &batches);
}

/// Waits until the workers' logs hold `n` finished retro-hunt jobs, and
/// prints them.
fn wait_for_hunts(workers: &[Worker], n: usize) {
    let lines = || {
        workers
            .iter()
            .flat_map(|w| {
                strip_ansi(&w.log())
                    .lines()
                    .filter(|l| l.contains(" retro-hunt ") && l.contains("waited="))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    wait_until(&format!("{n} retro-hunt jobs done"), || lines().len() == n);
    for line in lines() {
        println!("{}", line.trim());
    }
}

/// RITA's public Zeek test captures, as two sensors would send them: the
/// rolling proxy logs (gzip TSV, an hour and a day-boundary's worth) for
/// one tenant, the JSON logs for another.
fn rita(_env: &Env) -> Option<(Vec<String>, Vec<Request>)> {
    let root =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/zeek/rita/test_data");
    if !root.exists() {
        println!("skipped: {} is absent", root.display());
        return None;
    }
    let mut tenants = Vec::new();
    let mut requests = Vec::new();
    for (tenant, dir) in [
        ("rita-proxy", "proxy_rolling"),
        ("rita-json", "json_with_all_fields"),
    ] {
        let mut files = Vec::new();
        collect_files(&root.join(dir), &mut files);
        files.sort();
        for file in files {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            // A copy of dns.log kept by RITA's authors.
            if name.starts_with("ORIGINAL") {
                continue;
            }
            requests.push(Request {
                tenant: tenant.to_owned(),
                name,
                body: std::fs::read(&file).unwrap(),
            });
        }
        tenants.push(tenant.to_owned());
    }
    Some((tenants, requests))
}

/// Real captures nobody on the team made (RITA's Zeek test data: gzip
/// TSV over the message size, through the object store, and JSON lines),
/// two workers: alerts (beacons scored after each tenant's run of chunks)
/// and events equal the single-process run's.
#[test]
fn real_zeek_captures_equal_a_single_process_run() {
    let Some(c) = cluster_of("rita", &rita, None, IntelAt::Start) else {
        return;
    };
    let served = c.serve();
    let _workers = [c.worker("w1", &[]), c.worker("w2", &[])];
    let batches = c.send_all(&served);
    let answers = c.check("RITA's Zeek captures", &served, &batches);
    let events: u64 = answers.iter().map(|a| a["events"].as_u64().unwrap()).sum();
    assert!(events > 10_000, "{events} events");
    assert!(
        answers.iter().all(|a| a["chunks_failed"] == 0),
        "{answers:#?}"
    );
    let beacons = c
        .want
        .alerts
        .iter()
        .filter(|a| a.contains(r#""kind":"beacon""#))
        .count();
    println!(
        "{} requests, {events} events, {beacons} beacon alerts",
        c.requests.len()
    );
    assert!(
        beacons > 0,
        "the captures hold beacons: {:#?}",
        c.want.alerts
    );
}

/// `turncoat ingest` with `--queue` publishes each file as a batch (cut
/// at line ends as a server cuts a body) instead of committing it; a
/// worker commits them: equal to the single-process run.
#[test]
fn cli_ingest_with_a_queue_publishes_for_the_workers() {
    let Some(c) = cluster("cli", None) else {
        return;
    };
    let served = c.serve();
    let _worker = c.worker("w1", &[]);
    let mut batches = Vec::new();
    let mut chunks = 0;
    for (i, r) in c.requests.iter().enumerate() {
        // Run where the file is, so that it is named as the request was.
        let dir = c.env.dir.path().join(format!("cli-{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(&r.name), &r.body).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_turncoat"))
            .current_dir(&dir)
            .args(["--store", &c.pg, "--queue", &c.queue, "ingest"])
            .args(["--tenant", &r.tenant, "--output", "json", &r.name])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
        let queued = &answer["queued"][0];
        assert_eq!(queued["file"], r.name.as_str(), "{answer}");
        chunks += queued["chunks"].as_u64().unwrap();
        batches.push((
            r.tenant.clone(),
            queued["batch"].as_str().unwrap().to_owned(),
        ));
    }
    assert!(
        chunks > c.requests.len() as u64,
        "line-delimited files were cut"
    );
    c.check("ingest --queue", &served, &batches);
}

/// Processing intervals per tenant from the workers' logs: every
/// `chunk` line ends one, `seconds` long. A tenant's partition is held by
/// one worker from taking a chunk to acknowledging it, which spans the
/// interval: two intervals of one tenant must never overlap.
fn assert_partitions_held_alone(workers: &[&Worker]) -> usize {
    let mut spans: Vec<(String, f64, f64, String)> = Vec::new();
    for w in workers {
        for line in strip_ansi(&w.log()).lines() {
            if !line.contains(" chunk ") || !line.contains("outcome=") {
                continue;
            }
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|f| f.strip_prefix(&format!("{name}=")))
                    .map(|v| v.trim_matches('"').to_owned())
            };
            let at = line.split_whitespace().next().unwrap();
            let end = jiff::Timestamp::from_str(at).unwrap().as_microsecond() as f64 / 1e6;
            let seconds: f64 = field("seconds").unwrap().parse().unwrap();
            let name = field("worker").unwrap_or_else(|| w.log.display().to_string());
            spans.push((field("tenant").unwrap(), end - seconds, end, name));
        }
    }
    spans.sort_by(|a, b| (&a.0, a.1).partial_cmp(&(&b.0, b.1)).unwrap());
    for pair in spans.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.0 == b.0 {
            assert!(
                b.1 >= a.2,
                "tenant {}: a chunk started at {} by {} before the one {} held ended at {}",
                a.0,
                b.1,
                b.3,
                a.3,
                a.2
            );
        }
    }
    spans.len()
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Waits until `what` holds, for at most two minutes.
fn wait_until(what: &str, mut holds: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !holds() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn chunks_in(log: &str) -> usize {
    strip_ansi(log)
        .lines()
        .filter(|l| l.contains(" chunk ") && l.contains("outcome="))
        .count()
}

/// A worker that dies right after committing a chunk (before its
/// acknowledgement), and one killed -9 while it works: every chunk is
/// redelivered to the next worker and stored once.
#[test]
fn a_worker_killed_mid_batch_leaves_it_stored_once() {
    let Some(c) = cluster("worker", None) else {
        return;
    };
    let served = c.serve();
    let batches = c.send_all(&served);
    // Aborts (as kill -9 would) once its first chunk is committed.
    let mut crashing = c.worker("crashing", &[("TURNCOAT_CRASH_AT", "files-committed")]);
    let status = crashing.child.wait().unwrap();
    assert!(!status.success(), "the crash point was reached");
    assert!(
        crashing.log().contains("crash point files-committed"),
        "{}",
        crashing.log()
    );
    let mut killed = c.worker("killed", &[]);
    wait_until("the second worker commits 3 chunks", || {
        chunks_in(&killed.log()) >= 3
    });
    killed.kill9();
    let before_kill = chunks_in(&killed.log());
    let survivor = c.worker("survivor", &[]);
    c.check("after a worker crash and a kill -9", &served, &batches);
    // The crashed worker's chunk came back to one of the others, which
    // found it committed and only acknowledged it.
    let logs = strip_ansi(&(killed.log() + &survivor.log()));
    let skipped = logs.matches("already-committed").count();
    assert!(skipped >= 1, "no chunk was found already committed: {logs}");
    println!(
        "crashed after its first commit; the next committed {before_kill} chunks before kill -9; \
         the survivor took {} chunks; {skipped} delivery found its chunk already committed",
        chunks_in(&survivor.log())
    );
}

/// The server killed -9 right after its 202s: the batches are in the
/// queue, and a worker started afterwards commits every one.
#[test]
fn a_server_killed_after_accepting_loses_nothing() {
    let Some(c) = cluster("server", None) else {
        return;
    };
    let mut served = c.serve();
    let batches = c.send_all(&served);
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    let stored_before: u64 = outcome(&c.pg).events.iter().map(|(_, n)| n).sum();
    assert_eq!(stored_before, 0, "no worker ran yet");
    let _worker = c.worker("after", &[]);
    let served = c.serve();
    c.check("after the server's kill -9", &served, &batches);
    println!(
        "{} batches accepted, server killed -9, all committed afterwards",
        batches.len()
    );
}

/// nats-server killed -9 and restarted on its store while requests come
/// in and workers commit: senders retry what was refused, and nothing is
/// lost or stored twice.
#[test]
fn a_nats_restart_mid_ingest_loses_and_duplicates_nothing() {
    let Some(mut c) = cluster("restart", None) else {
        return;
    };
    let served = c.serve();
    let workers = [c.worker("w1", &[]), c.worker("w2", &[])];
    let (requests, tokens) = (c.requests.clone(), c.tokens.clone());
    // A sensor sends while nats-server is killed -9 and started again.
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    let refused = std::sync::atomic::AtomicUsize::new(0);
    let requests_timed = std::sync::Mutex::new(Vec::new());
    let mut down = Instant::now();
    let batches: Vec<(String, String)> = std::thread::scope(|scope| {
        let sender = scope.spawn(|| {
            requests
                .iter()
                .map(|r| {
                    let deadline = Instant::now() + Duration::from_secs(120);
                    loop {
                        let sent = Instant::now();
                        let (status, _, body) = send(&served, &tokens, r);
                        requests_timed.lock().unwrap().push((sent, Instant::now()));
                        if status == 202 {
                            accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            let batch: Value = serde_json::from_str(&body).unwrap();
                            break (
                                r.tenant.clone(),
                                batch["batch"].as_str().unwrap().to_owned(),
                            );
                        }
                        refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        assert!(Instant::now() < deadline, "never accepted: {status} {body}");
                        std::thread::sleep(Duration::from_millis(200));
                    }
                })
                .collect()
        });
        wait_until("a third of the requests accepted", || {
            accepted.load(std::sync::atomic::Ordering::SeqCst) >= requests.len() / 3
        });
        c.nats.kill9();
        down = Instant::now();
        std::thread::sleep(Duration::from_secs(2));
        c.nats.start_again();
        sender.join().unwrap()
    });
    let at_restart = requests.len() / 3;
    let refused = refused.into_inner();
    c.check("after a nats-server restart", &served, &batches);
    let spans = assert_partitions_held_alone(&[&workers[0], &workers[1]]);
    let again: usize = workers
        .iter()
        .map(|w| strip_ansi(&w.log()).matches("already-committed").count())
        .sum();
    // Requests in flight while it was down either waited for it (the
    // client holds a publish while it reconnects) or were refused and sent
    // again; either way one met the outage.
    let crossed = requests_timed
        .into_inner()
        .unwrap()
        .iter()
        .filter(|(sent, done)| *sent <= down + Duration::from_secs(2) && *done >= down)
        .count();
    assert!(refused + crossed > 0, "no request met the outage");
    println!(
        "nats-server killed -9 after {at_restart}+ requests and started again 2 s later; {crossed} \
         requests in flight across the outage, {refused} refused and sent again; {spans} chunk \
         deliveries, {again} of them found already committed; no partition held twice at once"
    );
}

/// The database drops every connection (a failover; here
/// `pg_terminate_backend`) while workers commit: they return the chunk,
/// reconnect, and finish.
#[test]
fn workers_outlive_their_database_connections() {
    let Some(c) = cluster("pgdrop", None) else {
        return;
    };
    let served = c.serve();
    let workers = [c.worker("w1", &[]), c.worker("w2", &[])];
    let batches = c.send_all(&served);
    let url = std::env::var("TURNCOAT_TEST_POSTGRES_URL").unwrap();
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let database = c.pg.rsplit('/').next().unwrap().to_owned();
    let mut terminated = 0;
    for _ in 0..3 {
        wait_until("a worker commits", || {
            chunks_in(&workers[0].log()) + chunks_in(&workers[1].log()) > terminated
        });
        terminated += admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&database],
            )
            .unwrap()
            .len();
    }
    c.check("after pg_terminate_backend", &served, &batches);
    let retried: usize = workers
        .iter()
        .map(|w| {
            strip_ansi(&w.log())
                .matches("returned to the queue")
                .count()
        })
        .sum();
    println!(
        "{terminated} connections terminated in three rounds; {retried} chunks returned and retried"
    );
}

/// Many small requests of few tenants, three workers of two slots each
/// racing for them: a tenant's chunks are never committed by two at once.
#[test]
fn two_workers_never_hold_one_partition_at_once() {
    let Some(c) = cluster("partition", Some(200)) else {
        return;
    };
    let served = c.serve();
    let batches = c.send_all(&served);
    // Started once everything waits, so that all three race from the start.
    let workers = [
        c.worker("w1", &[]),
        c.worker("w2", &[]),
        c.worker("w3", &[]),
    ];
    c.check("three workers", &served, &batches);
    let spans = assert_partitions_held_alone(&[&workers[0], &workers[1], &workers[2]]);
    let per_worker: Vec<usize> = workers.iter().map(|w| chunks_in(&w.log())).collect();
    assert!(
        per_worker.iter().filter(|&&n| n > 0).count() >= 2,
        "the work was shared: {per_worker:?}"
    );
    println!(
        "{} requests, {spans} chunk commits ({per_worker:?} per worker), no tenant's two at once",
        c.requests.len()
    );
}

/// Line-delimited JSON requests cut into requests of `lines` lines (what
/// many small sensors send); other files whole.
fn split(requests: Vec<Request>, lines: usize) -> Vec<Request> {
    let mut out = Vec::new();
    for r in requests {
        let text = String::from_utf8_lossy(&r.body);
        if !text.starts_with('{') {
            out.push(r);
            continue;
        }
        let all: Vec<&str> = text.lines().collect();
        for (i, part) in all.chunks(lines).enumerate() {
            out.push(Request {
                tenant: r.tenant.clone(),
                name: format!("{}.{i}", r.name),
                body: format!("{}\n", part.join("\n")).into_bytes(),
            });
        }
    }
    out
}
