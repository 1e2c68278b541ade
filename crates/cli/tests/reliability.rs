//! Several processes on one data directory, streams that pause, and
//! inputs that never end: what the binary does when used as a service
//! would use it.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{Env, dns, path};

/// The 3CX pack: advisory plus the vendors' indicators.
fn pack() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../intel/3cx")
}

/// A tenant's day of DNS: mostly ordinary names, some of them the 3CX
/// command-and-control domains, on several endpoints.
fn telemetry(env: &Env, tenant: &str, lines: usize) -> PathBuf {
    let bad = [
        "akamaicontainer.com",
        "azuredeploystore.com",
        "msstorageboxes.com",
    ];
    let text: Vec<String> = (0..lines)
        .map(|i| {
            let name = if i % 997 == 0 {
                bad[i % bad.len()].to_owned()
            } else {
                format!("site-{}.example.org", i % 5000)
            };
            let time = format!("2023-03-{:02}T{:02}:{:02}:00Z", 20 + i % 5, i % 24, i % 60);
            dns(&format!("{tenant}-ws-{}", i % 40), &time, &name)
        })
        .collect();
    env.file(&format!("{tenant}.ndjson"), &text.join("\n"))
}

/// The three writers of the concurrency test, in a given order.
fn writers(acme: &Path, globex: &Path, pack: &Path) -> [Vec<String>; 3] {
    let owned = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    [
        owned(&["ingest", "--tenant", "acme", path(acme)]),
        owned(&["ingest", "--tenant", "globex", path(globex)]),
        owned(&["intel", "import", path(pack)]),
    ]
}

#[test]
fn concurrent_writers_end_where_running_them_one_by_one_ends() {
    let scratch = Env::new();
    let acme = telemetry(&scratch, "acme", 15_000);
    let globex = telemetry(&scratch, "globex", 15_000);
    let pack = pack();
    let fresh = || {
        let env = Env::new();
        env.ok(&["tenant", "add", "acme"]);
        env.ok(&["tenant", "add", "globex"]);
        env
    };

    // Two sequential orders: intel after telemetry (the retro-hunt finds
    // it) and before (ingest matches live). Both must agree.
    let mut sequential = Vec::new();
    for order in [[0, 1, 2], [2, 1, 0]] {
        let env = fresh();
        let commands = writers(&acme, &globex, &pack);
        for i in order {
            let args: Vec<&str> = commands[i].iter().map(String::as_str).collect();
            env.ok(&args);
        }
        sequential.push((env.alert_facts(), env.tenant_events()));
    }
    assert_eq!(
        sequential[0], sequential[1],
        "retro-hunt and live matching disagree"
    );
    let (want_alerts, want_events) = &sequential[0];
    assert!(
        want_alerts.len() >= 6,
        "the planted domains raise alerts in both tenants: {want_alerts:#?}"
    );

    let seed = fastrand::u64(..);
    println!("seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    for trial in 0..3 {
        let env = fresh();
        let started = Instant::now();
        let mut children: Vec<(Vec<String>, Child)> = Vec::new();
        let mut commands = writers(&acme, &globex, &pack).to_vec();
        rng.shuffle(&mut commands);
        for args in commands {
            std::thread::sleep(Duration::from_millis(rng.u64(0..300)));
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            children.push((args.clone(), env.spawn(&refs)));
        }
        let mut waited = 0;
        for (args, child) in children {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
            if stderr.contains("turncoat: waiting for `turncoat ") {
                waited += 1;
            }
        }
        println!(
            "trial {trial}: {waited} writers waited, {:.1} s",
            started.elapsed().as_secs_f64()
        );
        assert_eq!(
            &env.tenant_events(),
            want_events,
            "seed {seed} trial {trial}"
        );
        assert_eq!(&env.alert_facts(), want_alerts, "seed {seed} trial {trial}");
    }
}

#[test]
fn the_same_file_ingested_twice_at_once_is_stored_once() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let f = telemetry(&env, "acme", 20_000);
    let a = env.spawn(&["ingest", "--tenant", "acme", path(&f)]);
    let b = env.spawn(&["ingest", "--tenant", "acme", path(&f)]);
    let mut statuses = Vec::new();
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        statuses.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    assert!(
        statuses
            .iter()
            .any(|s| s.contains("0 ingested") && s.contains("1 already ingested")),
        "the second run finds the file done: {statuses:#?}"
    );
    assert_eq!(env.tenant_events(), vec![("acme".to_owned(), 20_000)]);
}

/// Polls until `done` or `limit`; how long it took.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if done() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn a_paused_stream_is_committed_and_holds_the_writer_lock_by_name() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let mut stream = env.spawn(&["ingest", "--tenant", "acme", "-"]);
    let mut stdin = stream.stdin.take().unwrap();
    for i in 0..3 {
        writeln!(
            stdin,
            "{}",
            dns(
                "ws-1",
                &format!("2023-03-22T10:00:0{i}Z"),
                "akamaicontainer.com"
            )
        )
        .unwrap();
    }
    stdin.flush().unwrap();

    // The stream stays open and quiet; what came is committed anyway.
    let acme_events = || env.tenant_events()[0].1;
    let took = wait_until(Duration::from_secs(30), || acme_events() == 3)
        .expect("three lines of an open, paused stream were never committed");
    println!("paused stream committed after {took:?}");
    assert!(took < Duration::from_secs(12), "{took:?}");

    // Another writer gives up after its timeout, naming the holder.
    let out = env.run(&["--lock-timeout", "1", "tenant", "add", "globex"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("held by `turncoat --data")
            && stderr.contains("ingest --tenant acme -` (pid"),
        "{stderr}"
    );
    assert!(
        stderr.contains("waiting for"),
        "it said it waited: {stderr}"
    );

    // One that waits long enough gets its turn when the stream ends.
    let waiter = env.spawn(&["tenant", "add", "globex"]);
    std::thread::sleep(Duration::from_millis(500));
    writeln!(
        stdin,
        "{}",
        dns("ws-2", "2023-03-22T11:00:00Z", "example.org")
    )
    .unwrap();
    drop(stdin);
    let out = stream.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 inputs: 1 ingested") && stderr.contains("4 events"),
        "{stderr}"
    );
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("waiting for"));
    assert_eq!(
        env.tenant_events(),
        vec![("acme".to_owned(), 4), ("globex".to_owned(), 0)]
    );
}

#[test]
fn a_pipe_inside_a_directory_is_not_waited_on() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let tree = env.dir.path().join("logs");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(
        tree.join("dns.ndjson"),
        dns("ws-1", "2023-03-22T10:00:00Z", "example.org"),
    )
    .unwrap();
    let fifo = tree.join("sensor.pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let out = env.run(&["ingest", "--tenant", "acme", path(&tree)]);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "an input was left unread");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not read: ") && stderr.contains("sensor.pipe"),
        "{stderr}"
    );
    assert!(stderr.contains("2 inputs: 1 ingested"), "{stderr}");
    assert_eq!(env.tenant_events(), vec![("acme".to_owned(), 1)]);
}

/// A small tmpfs mounted over a directory, unmounted when dropped.
struct SmallDisk {
    at: PathBuf,
}

impl SmallDisk {
    /// `None` (with the reason printed) where this process may not mount.
    fn mount(at: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(SmallDisk { at: at.to_owned() }),
            Ok(out) => {
                println!(
                    "skipped: cannot mount a small tmpfs (needs root): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                println!("skipped: no `mount` to run: {e}");
                None
            }
        }
    }

    fn grow(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.at)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.at).status();
    }
}

#[test]
fn a_full_disk_is_reported_once_by_file_and_the_rerun_stores_everything_once() {
    let env = Env::new();
    let Some(disk) = SmallDisk::mount(&env.data(), "1m") else {
        return;
    };
    env.ok(&["tenant", "add", "acme"]);
    // Distinct names so the archive does not compress to nothing.
    let lines: u64 = 60_000;
    let text: Vec<String> = (0..lines)
        .map(|i| {
            let time = format!("2023-03-{:02}T{:02}:{:02}:00Z", 20 + i % 5, i % 24, i % 60);
            let name = format!("h{:x}.site-{i}.example.org", i.wrapping_mul(2_654_435_761));
            dns(&format!("ws-{}", i % 40), &time, &name)
        })
        .collect();
    let input = env.file("big.ndjson", &text.join("\n"));

    let out = env.run(&["ingest", "--tenant", "acme", path(&input)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let full: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("no space left"))
        .collect();
    assert_eq!(full.len(), 1, "said once: {stderr}");
    let data = env.data().display().to_string();
    assert!(
        full[0].contains(&data) && (full[0].contains(".zst") || full[0].contains("turncoat.db")),
        "names the file: {stderr}"
    );
    let stored = env.tenant_events()[0].1;
    assert!(stored < lines, "{stored} events stored on a full disk");

    disk.grow("64m");
    let out = env.run(&["ingest", "--tenant", "acme", path(&input)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.tenant_events(), vec![("acme".to_owned(), lines)]);
    drop(disk);
}

/// A simulated two-tenant fleet with the 3CX compromise planted: live
/// intel matches, beacons, and the same detections in both tenants.
fn fleet(env: &Env) -> PathBuf {
    let out = env.dir.path().join("fleet");
    env.ok(&[
        "simulate",
        "--out",
        path(&out),
        "--tenants",
        "2",
        "--endpoints",
        "10",
        "--days",
        "8",
        "--events-per-endpoint-day",
        "20",
    ]);
    out
}

/// Sets up both tenants and the intel, and ingests the first tenant.
fn first_tenant_ingested(env: &Env, fleet: &Path) {
    for tenant in ["acme-corp", "globex"] {
        env.ok(&["tenant", "add", tenant]);
    }
    env.ok(&["intel", "import", path(&pack())]);
    env.ok(&[
        "ingest",
        "--tenant",
        "acme-corp",
        path(&fleet.join("acme-corp")),
    ]);
}

#[test]
fn an_ingest_killed_at_any_point_is_finished_by_the_next_run() {
    let clean = Env::new();
    let fleet = fleet(&clean);
    first_tenant_ingested(&clean, &fleet);
    let globex = fleet.join("globex");
    clean.ok(&["ingest", "--tenant", "globex", path(&globex)]);
    let expected = clean.alert_facts();
    let kinds: BTreeSet<String> = expected
        .iter()
        .map(|a| serde_json::from_str::<serde_json::Value>(a).unwrap()["kind"].to_string())
        .collect();
    // The test means something only if the post-ingest steps raise alerts.
    assert!(kinds.contains("\"beacon\""), "{kinds:?}");
    assert!(expected.iter().any(|a| a.contains("\"in_campaign\":true")));

    for point in [
        "batch-committed",
        "files-committed",
        "beacons-scored",
        "campaigns-escalated",
    ] {
        let env = Env::new();
        first_tenant_ingested(&env, &fleet);
        let args = ["ingest", "--tenant", "globex", path(&globex)];
        let killed = env.run_with(&args, &[("TURNCOAT_CRASH_AT", point)]);
        assert_eq!(
            killed.status.code(),
            None,
            "{point}: the run should have died: {}",
            String::from_utf8_lossy(&killed.stderr)
        );
        env.ok(&args);
        assert_eq!(env.tenant_events(), clean.tenant_events(), "{point}");
        let got = env.alert_facts();
        assert_eq!(
            got.symmetric_difference(&expected).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "{point}: alerts differ from a clean run's"
        );
    }
}

/// A correlation whose events span a kill: the windows the committed
/// batches fed are saved with them, so the rerun completes the burst.
#[test]
fn correlation_windows_survive_a_kill_between_batches() {
    let run = |crash: Option<&str>| {
        let env = Env::new();
        env.ok(&["tenant", "add", "acme"]);
        let rules = env.file("corr.yml", common::WHOAMI_RULES);
        env.ok(&["rules", "import", path(&rules)]);
        let dir = env.dir.path().join("burst");
        std::fs::create_dir(&dir).unwrap();
        let at = |t: &str| common::whoami("ws-1", &format!("2023-03-22T{t}Z"), "whoami");
        // Two runs in the first file, the third in the second.
        std::fs::write(
            dir.join("a.ndjson"),
            [at("10:00:00"), at("10:01:00")].join("\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("b.ndjson"),
            [at("10:02:00"), at("10:30:00")].join("\n"),
        )
        .unwrap();
        let args = ["ingest", "--tenant", "acme", path(&dir)];
        if let Some(point) = crash {
            let killed = env.run_with(&args, &[("TURNCOAT_CRASH_AT", point)]);
            assert_eq!(
                killed.status.code(),
                None,
                "{point}: the run should have died"
            );
        }
        env.ok(&args);
        env.alert_facts()
            .into_iter()
            .map(|a| a.replace(path(env.dir.path()), "<dir>"))
            .collect::<BTreeSet<_>>()
    };
    let clean = run(None);
    assert!(
        clean
            .iter()
            .any(|a| a.contains("bbbbbbbb-0000-0000-0000-000000000002")),
        "the burst correlates: {clean:#?}"
    );
    for point in ["batch-committed", "files-committed"] {
        assert_eq!(run(Some(point)), clean, "{point}");
    }
}
