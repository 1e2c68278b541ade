//! Drift on a simulated fleet where one app version turns bad in several tenants.

use turncoat_core::{Actor, TenantName};
use turncoat_engine::drift::Behaviour;
use turncoat_engine::{IngestOptions, NoProgress};
use turncoat_sim::facts::{FFMPEG_DLL_SHA256, FIXED};
use turncoat_sim::{Config, simulate};
use turncoat_store::{SqliteStore, Store};

#[test]
fn a_trojanized_release_drifts_in_several_tenants_and_clean_releases_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        tenants: 3,
        endpoints: 16,
        days: 21,
        events_per_endpoint_day: 20,
        ..Config::default()
    };
    let (truth, _) = simulate(&cfg, &dir.path().join("fleet"), &mut |_| {}).unwrap();
    let mut store = SqliteStore::open(&dir.path().join("data")).unwrap();
    for t in &truth.tenants {
        let tenant = store
            .add_tenant(&TenantName::new(&t.name).unwrap(), &Actor::Cli)
            .unwrap();
        turncoat_engine::ingest(
            &mut store,
            &tenant,
            &[dir.path().join("fleet").join(&t.name)],
            &IngestOptions::default(),
            &NoProgress,
            &Actor::Cli,
        )
        .unwrap();
    }
    let rows = turncoat_engine::drift::analyze(&store, &store.tenants().unwrap(), 1).unwrap();
    let bad_module = Behaviour::Module(format!("ffmpeg.dll@{FFMPEG_DLL_SHA256}"));
    let windows_bad: Vec<_> = rows
        .iter()
        .filter(|r| r.app == "3cxdesktopapp (windows)" && r.behaviour == bad_module)
        .collect();
    assert!(!windows_bad.is_empty(), "{rows:#?}");
    let tenants: std::collections::BTreeSet<&String> =
        windows_bad.iter().flat_map(|r| &r.tenants).collect();
    let affected_windows_tenants: std::collections::BTreeSet<&String> = truth
        .exposures
        .iter()
        .filter(|e| e.platform == turncoat_core::Platform::Windows)
        .map(|e| &e.tenant)
        .collect();
    assert!(tenants.len() >= 2, "seen in {tenants:?}");
    assert!(tenants.iter().all(|t| affected_windows_tenants.contains(t)));
    // The top row is seen in the most tenants.
    assert!(
        rows.windows(2)
            .all(|w| w[0].tenants.len() >= w[1].tenants.len())
    );
    // Clean releases after a clean one bring nothing new; the clean rebuild
    // brings nothing the trojanized ones had not.
    assert!(
        rows.iter().all(|r| r.version != FIXED),
        "{:#?}",
        rows.iter()
            .filter(|r| r.version == FIXED)
            .collect::<Vec<_>>()
    );
    assert!(
        rows.iter()
            .all(|r| !(r.app == "3cxdesktopapp (windows)" && r.version == "18.11.1213"))
    );
}
