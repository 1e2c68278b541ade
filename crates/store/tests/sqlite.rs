//! The shared conformance suite on the SQLite backend, plus crash recovery.

use turncoat_store::{SqliteStore, Store, conformance};

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
    assert_eq!(store.stats(&t).unwrap().events, 2);
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
        conn.pragma_update(None, "user_version", 5).unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let t = store.tenant("t2").unwrap().unwrap();
    let found = store
        .ledger(&t, Some(&["python-dateutil".to_owned()]))
        .unwrap();
    assert_eq!(found.len(), 1, "re-keyed by migration 6");
}
