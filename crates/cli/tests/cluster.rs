//! Cluster mode through the binary: the same commands on PostgreSQL
//! (`--store postgres://…`) answer as on the embedded store, and `copy`
//! moves an embedded installation into a database with nothing lost.
//! Needs `TURNCOAT_TEST_POSTGRES_URL`; skipped with the reason otherwise.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::Env;
use serde_json::Value;
use turncoat_store::conformance::TestDatabases;

/// Runs the binary on the store at `url`.
fn on(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_turncoat"))
        .arg("--store")
        .arg(url)
        .args(args)
        .output()
        .unwrap()
}

fn ok_on(url: &str, args: &[&str]) -> String {
    let out = on(url, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json_on(url: &str, args: &[&str]) -> Value {
    let out = on(url, args);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A simulated fleet (3 tenants) and the 3CX pack, set up through `run`
/// (the embedded store's binary or the database's): what both tests use.
fn set_up(fleet: &Path, run: &dyn Fn(&[&str]) -> String) -> Vec<String> {
    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../intel/3cx");
    run(&["intel", "import", common::path(&pack)]);
    let mut tenants: Vec<String> = std::fs::read_dir(fleet)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    tenants.sort();
    for t in &tenants {
        run(&["tenant", "add", t]);
        run(&["ingest", "--tenant", t, common::path(&fleet.join(t))]);
    }
    tenants
}

fn simulate(env: &Env) -> std::path::PathBuf {
    let fleet = env.dir.path().join("fleet");
    env.ok(&[
        "simulate",
        "--out",
        common::path(&fleet),
        "--tenants",
        "3",
        "--endpoints",
        "5",
        "--days",
        "10",
        "--events-per-endpoint-day",
        "30",
    ]);
    fleet
}

#[test]
fn postgres_answers_as_the_embedded_store_does() {
    let Some(mut dbs) = TestDatabases::new("cli_same") else {
        return;
    };
    let env = Env::new();
    let fleet = simulate(&env);
    let tenants = set_up(&fleet, &|args| env.ok(args));
    let pg = dbs.fresh();
    assert_eq!(set_up(&fleet, &|args| ok_on(&pg, args)), tenants);

    let embedded = env.json(&["alerts", "--format", "json"]);
    let cluster = json_on(&pg, &["alerts", "--format", "json"]);
    assert!(
        embedded.as_array().unwrap().len() >= 3,
        "the fleet raises alerts"
    );
    assert_eq!(
        common::alert_facts(cluster.as_array().unwrap()),
        common::alert_facts(embedded.as_array().unwrap())
    );
    for args in [
        &["exposure", "--format", "json"][..],
        &["tenant", "list", "--format", "json"][..],
        &["drift", "--format", "json"][..],
    ] {
        let strip = |mut v: Value| {
            // Tenant creation times are the run's own.
            if let Some(rows) = v.as_array_mut() {
                for r in rows {
                    if let Some(o) = r.as_object_mut() {
                        o.remove("created");
                    }
                }
            }
            v
        };
        assert_eq!(
            strip(json_on(&pg, args)),
            strip(env.json(args)),
            "{args:?} differs between the stores"
        );
    }
    println!(
        "{} alerts, exposure, tenants and drift equal on SQLite and PostgreSQL",
        embedded.as_array().unwrap().len()
    );
}

#[test]
fn copy_moves_an_embedded_installation_with_nothing_lost() {
    let Some(mut dbs) = TestDatabases::new("cli_copy") else {
        return;
    };
    let env = Env::new();
    let fleet = simulate(&env);
    let tenants = set_up(&fleet, &|args| env.ok(args));
    // Triage, people and tokens travel too.
    let first = env.alerts(&[])[0]["id"].as_i64().unwrap().to_string();
    env.ok(&["alert", "comment", &first, "looked at it"]);
    env.ok(&[
        "alert",
        "status",
        &first,
        "false-positive",
        "--reason",
        "lab machine",
    ]);
    env.ok(&[
        "allow",
        "add",
        "--tenant",
        &tenants[0],
        "--destination",
        "cdn.example.net",
        "--reason",
        "CDN",
    ]);
    let pg = dbs.fresh();
    let data = format!("sqlite://{}", env.data().display());
    let out = Command::new(env!("CARGO_BIN_EXE_turncoat"))
        .args(["copy", "--from", &data, "--to", &pg, "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["equal"] == true), "{checks:#?}");
    let compared: u64 = checks.iter().map(|c| c["compared"].as_u64().unwrap()).sum();
    assert!(report["copied"]["archive_frames"].as_u64().unwrap() > 0);
    // The copy answers the CLI as the original does, ids included.
    for args in [
        &["alerts", "--format", "json"][..],
        &["alert", "history", &first, "--format", "json"][..],
        &["audit", "--limit", "1000", "--format", "json"][..],
        &["allow", "list", "--format", "json"][..],
    ] {
        assert_eq!(
            json_on(&pg, args),
            env.json(args),
            "{args:?} differs after the copy"
        );
    }
    // A second copy into the same database is refused: it is not empty.
    let again = Command::new(env!("CARGO_BIN_EXE_turncoat"))
        .args(["copy", "--from", &data, "--to", &pg])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    println!(
        "copied {} checks ({compared} records compared), {} archive frames",
        checks.len(),
        report["copied"]["archive_frames"]
    );
}

/// A server on PostgreSQL whose connections the database drops (a
/// restart, a failover: here `pg_terminate_backend`) answers the next
/// requests on new ones, reads and ingest alike.
#[test]
fn a_server_outlives_its_database_connections() {
    let Some(mut dbs) = TestDatabases::new("cli_drop") else {
        return;
    };
    let env = Env::new();
    let pg = dbs.fresh();
    ok_on(&pg, &["tenant", "add", "acme"]);
    let token = |scope: &str| {
        common::served::last_line(&ok_on(
            &pg,
            &["token", "create", "--tenant", "acme", "--scope", scope],
        ))
    };
    let (sensor, reader) = (token("ingest"), token("read"));
    let served = common::served::Served::start_with(&env, &["--store", &pg], "http");
    let line = |n: u32| common::dns("ws1", &format!("2024-05-01T10:00:{n:02}Z"), "example.org");
    let auth = format!("Bearer {sensor}");
    let ingest = |n: u32| {
        served.send(
            "POST",
            "/api/v1/tenants/acme/ingest",
            &[("Authorization", auth.as_str())],
            Some(line(n).as_bytes()),
        )
    };
    assert_eq!(ingest(1).0, 202);
    assert_eq!(served.get("/api/v1/alerts", Some(&reader)).0, 200);
    let url = std::env::var("TURNCOAT_TEST_POSTGRES_URL").unwrap();
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let database = pg.rsplit('/').next().unwrap().to_owned();
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[&database],
        )
        .unwrap()
        .len();
    assert!(killed >= 1, "the server holds connections to terminate");
    for n in 2..5 {
        assert_eq!(served.get("/api/v1/alerts", Some(&reader)).0, 200);
        assert_eq!(
            ingest(n).0,
            202,
            "ingest after the connections were dropped"
        );
    }
    let events = json_on(&pg, &["tenant", "list", "--format", "json"])[0]["stats"]["events"]
        .as_u64()
        .unwrap();
    assert_eq!(events, 4, "every acknowledged line stored once");
    println!("{killed} connections terminated; reads and ingest went on, 4 events stored");
}
