//! The shared conformance suite on PostgreSQL, and the schema's Citus
//! layout checked on the live database. Needs `TURNCOAT_TEST_POSTGRES_URL`
//! (a server where the user may create databases); each run makes its own
//! databases and drops them.

use turncoat_store::conformance::{self, TestDatabases};
use turncoat_store::{CLUSTER_SHARED_TABLES, CLUSTER_TENANT_TABLES, PgStore, Store};

#[test]
fn postgres_conforms() {
    let Some(dbs) = TestDatabases::new("conform") else {
        return;
    };
    let dbs = std::cell::RefCell::new(dbs);
    conformance::run_all(|| {
        let url = dbs.borrow_mut().fresh();
        Box::new(PgStore::connect(&url).unwrap()) as Box<dyn Store>
    });
}

/// Every tenant-owned table leads its primary key with `tenant_id`, and
/// every table of the schema is named as tenant-owned or shared, so that
/// `docs/cluster.md`'s Citus statements cover it.
#[test]
fn tenant_tables_lead_with_tenant_id() {
    let Some(mut dbs) = TestDatabases::new("layout") else {
        return;
    };
    let store = PgStore::connect(&dbs.fresh()).unwrap();
    let keys = store.primary_keys().unwrap();
    for (table, columns) in &keys {
        if table == "turncoat_schema" {
            continue;
        }
        let owned = CLUSTER_TENANT_TABLES.contains(&table.as_str());
        let shared = CLUSTER_SHARED_TABLES.contains(&table.as_str());
        assert!(owned ^ shared, "{table} must be tenant-owned or shared");
        if owned {
            assert_eq!(columns[0], "tenant_id", "{table}: primary key {columns:?}");
        }
    }
    for table in CLUSTER_TENANT_TABLES.iter().chain(CLUSTER_SHARED_TABLES) {
        assert!(
            keys.iter().any(|(t, _)| t == table),
            "{table} is listed but has no primary key in the schema"
        );
    }
    println!("{} tables checked", keys.len());
}
