//! The shared conformance suite on the SQLite backend, plus crash recovery.

use std::time::Duration;

use turncoat_core::{Actor, Indicator, IndicatorKind, Time};
use turncoat_store::{LockHolder, LockWait, SqliteStore, Store, StoreError, conformance};

#[test]
fn sqlite_conforms() {
    let dirs: std::cell::RefCell<Vec<tempfile::TempDir>> = Default::default();
    conformance::run_all(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        dirs.borrow_mut().push(dir);
        Box::new(store) as Box<dyn Store>
    });
}

#[test]
fn uncommitted_archive_bytes_are_cut_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = SqliteStore::open(dir.path()).unwrap();
        conformance::batches_and_findings(&mut store);
    }
    // A crash after writing a frame but before the commit leaves a tail.
    let seg_dir = dir.path().join("archive").join("1");
    let seg = std::fs::read_dir(&seg_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&seg)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"garbage"))
        .unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), len);
    let t = store.tenant("t1").unwrap().unwrap();
    // The suite commits five events: the two raising the alert, three later.
    assert_eq!(store.stats(&t).unwrap().events, 5);
}

#[test]
fn ledger_names_are_rekeyed_when_an_older_schema_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = SqliteStore::open(dir.path()).unwrap();
        conformance::ledger(&mut store);
    }
    // Back to schema 5, whose ledger keyed names without joining `_`/`.`.
    {
        let conn = rusqlite::Connection::open(dir.path().join("turncoat.db")).unwrap();
        conn.execute(
            "UPDATE ledger SET name_norm = lower(name) WHERE name = 'Python_DateUtil'",
            [],
        )
        .unwrap();
        // A schema-5 database has nothing of later migrations either.
        back_to_schema_7(&conn);
        conn.execute("DROP TABLE pending_work", []).unwrap();
        conn.pragma_update(None, "user_version", 5).unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let t = store.tenant("t2").unwrap().unwrap();
    let found = store
        .ledger(&t, Some(&["python-dateutil".to_owned()]))
        .unwrap();
    assert_eq!(found.len(), 1, "re-keyed by migration 6");
}

/// Takes a database back to schema 7: before the indicator match columns
/// (migration 8), the intel key (9), alert status reasons (10) and
/// internal networks (11).
fn back_to_schema_7(conn: &rusqlite::Connection) {
    conn.execute_batch(
        "DROP TABLE users;
         DROP TABLE user_tenants;
         DROP TABLE tokens;
         DROP TABLE internal_networks;
         DROP TABLE alert_history;
         DROP INDEX alerts_queue;
         DROP INDEX alerts_queue_tenant;
         DROP INDEX alerts_counts;
         DROP TABLE feed_hours;
         DROP INDEX alerts_newest;
         DROP INDEX alerts_newest_tenant;
         DROP TABLE taxii_feeds;
         DROP TABLE notify_targets;
         DROP TABLE outbox;
         DROP TABLE suppressions;
         ALTER TABLE alerts DROP COLUMN assignee;
         ALTER TABLE alerts DROP COLUMN suppressed_by;
         DROP TABLE intel_state;
         ALTER TABLE alerts DROP COLUMN status_reason;
         ALTER TABLE indicators ADD COLUMN doc TEXT NOT NULL DEFAULT '';
         UPDATE indicators SET doc = (SELECT doc FROM indicator_docs d WHERE d.id = indicators.id);
         DROP TABLE indicator_docs;",
    )
    .unwrap();
    for column in ["campaign", "valid_from", "valid_until", "revoked"] {
        conn.execute(&format!("ALTER TABLE indicators DROP COLUMN {column}"), [])
            .unwrap();
    }
}

#[test]
fn indicators_stored_before_the_match_columns_load_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut ind = Indicator::new(IndicatorKind::Domain, "evil.example.com", "feed").unwrap();
    ind.campaign = Some("SmoothOperator".into());
    ind.valid_from = Some(Time(1_000));
    ind.revoked = true;
    {
        let mut store = SqliteStore::open(dir.path()).unwrap();
        store
            .upsert_indicators(&mut std::iter::once(ind.clone()), &Actor::Cli)
            .unwrap();
    }
    {
        let conn = rusqlite::Connection::open(dir.path().join("turncoat.db")).unwrap();
        back_to_schema_7(&conn);
        conn.pragma_update(None, "user_version", 7).unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let mut loaded = Vec::new();
    store
        .scan_indicators(&mut |i| {
            loaded.push((
                i.value.to_owned(),
                i.campaign.map(str::to_owned),
                i.valid_from,
                i.revoked,
            ))
        })
        .unwrap();
    assert_eq!(
        loaded,
        vec![(
            "evil.example.com".to_owned(),
            Some("SmoothOperator".to_owned()),
            Some(Time(1_000)),
            true
        )]
    );
}

/// A store that created a tenant's observable dictionary inserts new
/// observables without searching for them first; one another process
/// added meanwhile (a binary from before the writer lock, or a hand
/// repair) must still be found, neither refused nor duplicated.
#[test]
fn observables_another_process_added_are_found_not_duplicated() {
    use turncoat_core::{Observable, ObservableKind, TenantName, Time};
    use turncoat_store::{Batch, SightingDelta};

    let batch = |domain: &str, endpoint: &str| Batch {
        sightings: vec![SightingDelta {
            observable: Observable::new(ObservableKind::Domain, domain).unwrap(),
            endpoint: endpoint.into(),
            first: Time(1_000_000),
            last: Time(1_000_000),
            count: 1,
            event: 0,
        }],
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut a = SqliteStore::open(dir.path()).unwrap();
    let t = a
        .add_tenant(&TenantName::new("t1").unwrap(), &Actor::Cli)
        .unwrap();
    let mut no_ledger = |_: &_| Vec::new();
    a.commit_batch(&t, batch("first.example", "ws1"), &mut no_ledger)
        .unwrap();
    let other = rusqlite::Connection::open(dir.path().join("turncoat.db")).unwrap();
    other
        .execute(
            "INSERT INTO observables (tenant_id, kind, value) \
             SELECT tenant_id, kind, 'second.example' FROM observables \
             WHERE value = 'first.example'",
            [],
        )
        .unwrap();
    drop(other);
    a.commit_batch(&t, batch("second.example", "ws1"), &mut no_ledger)
        .unwrap();

    let mut ids = Vec::new();
    a.scan_observables(&t, &[ObservableKind::Domain], &mut |id, _, v| {
        ids.push((v.to_owned(), id))
    })
    .unwrap();
    ids.sort();
    let values: Vec<&str> = ids.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(values, ["first.example", "second.example"]);
    let endpoints: Vec<String> = a
        .sightings(&t, &[ids[1].1])
        .unwrap()
        .into_iter()
        .map(|s| s.endpoint)
        .collect();
    assert_eq!(endpoints, ["ws1"]);
}

/// Opens `dir` as a writer, giving up after `timeout`; records who
/// waited for whom.
fn writer(
    dir: &std::path::Path,
    timeout: Duration,
    waits: &mut Vec<String>,
) -> Result<SqliteStore, StoreError> {
    let mut on_wait = |holder: &LockHolder, _: Duration| waits.push(holder.purpose.clone());
    SqliteStore::open_writer(
        dir,
        &mut LockWait {
            timeout,
            purpose: "turncoat test writer",
            on_wait: &mut on_wait,
        },
    )
}

#[test]
fn a_second_writer_waits_for_the_first_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut waits = Vec::new();
    let first = writer(dir.path(), Duration::ZERO, &mut waits).unwrap();
    assert!(waits.is_empty(), "an unheld lock is taken without waiting");
    match writer(dir.path(), Duration::from_millis(100), &mut waits) {
        Err(e @ StoreError::Locked { .. }) => {
            let message = e.to_string();
            assert!(message.contains("turncoat test writer"), "{message}");
            let StoreError::Locked { holder, .. } = e else {
                unreachable!()
            };
            assert_eq!(holder.pid, std::process::id());
            assert_eq!(holder.purpose, "turncoat test writer");
        }
        other => panic!("expected Locked, got {:?}", other.map(|_| ())),
    }
    assert_eq!(
        waits,
        ["turncoat test writer"],
        "told once who it waits for"
    );

    // Readers are not held up by a writer.
    let reader = SqliteStore::open_reader(dir.path()).unwrap();
    assert!(reader.tenants().unwrap().is_empty());

    // The lock passes on when its holder is gone, even mid-wait.
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        drop(first);
    });
    let mut waits = Vec::new();
    writer(dir.path(), Duration::from_secs(30), &mut waits).unwrap();
    release.join().unwrap();
    assert_eq!(waits.len(), 1);
}

#[test]
fn a_reader_never_creates_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    match SqliteStore::open_reader(&missing) {
        Err(StoreError::NoStore(named)) => assert!(named.contains("nothing-here"), "{named}"),
        other => panic!("expected NoStore, got {:?}", other.map(|_| ())),
    }
    assert!(!missing.exists(), "a reader created {}", missing.display());
    std::fs::create_dir(&missing).unwrap();
    assert!(matches!(
        SqliteStore::open_reader(&missing),
        Err(StoreError::NoStore(_))
    ));
    assert_eq!(std::fs::read_dir(&missing).unwrap().count(), 0);
}
