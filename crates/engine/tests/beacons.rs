//! Beacon ranking on simulated fleets and on RITA's Zeek logs.

use std::path::Path;

use turncoat_engine::beacons::{Allowlist, Networks, beacons_offline};
use turncoat_sim::{Config, Scenario, simulate};
use turncoat_store::{AllowEntry, AllowKind};

#[test]
fn planted_beacons_rank_above_benign_periodic_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        tenants: 2,
        endpoints: 16,
        days: 21,
        events_per_endpoint_day: 40,
        scenario: Scenario::ThreeCx,
        ..Config::default()
    };
    let (truth, _) = simulate(&cfg, dir.path(), &mut |_| {}).unwrap();
    // Time sync is as regular as a beacon can be, and a fleet's few Linux
    // servers all do it: an MSSP allows the time services once.
    let time_sync: Vec<AllowEntry> = ["ntp.ubuntu.com", "time.windows.com"]
        .iter()
        .map(|d| AllowEntry {
            id: 0,
            tenant: None,
            kind: AllowKind::Destination,
            value: (*d).to_owned(),
            reason: "time sync".into(),
            added: turncoat_core::Time(0),
        })
        .collect();
    for tenant in &truth.tenants {
        let planted: Vec<(&str, &str)> = truth
            .beacons
            .iter()
            .filter(|b| b.malicious && b.tenant == tenant.name)
            .map(|b| (b.endpoint.as_str(), b.fqdn.as_str()))
            .collect();
        let report = beacons_offline(
            &[dir.path().join(&tenant.name).join("zeek")],
            None,
            0.0,
            Allowlist::new(&time_sync),
            Networks::default(),
        )
        .unwrap();
        assert_eq!(report.skipped_records, 0);
        assert!(
            report
                .beacons
                .iter()
                .all(|b| (0.0..=1.0).contains(&b.score) && b.rank_score <= b.score)
        );
        let top: Vec<(&str, &str)> = report
            .beacons
            .iter()
            .take(planted.len())
            .map(|b| (b.src.as_str(), b.fqdn.as_deref().unwrap_or("")))
            .collect();
        for p in &planted {
            assert!(
                top.contains(p),
                "{}: planted {p:?} not in the top {}: {top:?}",
                tenant.name,
                planted.len()
            );
        }
        // The jittered 60-120 minute sleep still reads as regular.
        for b in report
            .beacons
            .iter()
            .filter(|b| planted.contains(&(b.src.as_str(), b.fqdn.as_deref().unwrap_or(""))))
        {
            assert!(b.ts_score > 0.6, "{b:?}");
            assert!((3600.0..=7200.0).contains(&b.median_interval_s), "{b:?}");
        }
        // Benign periodic flows score high raw, and rank lower for being shared.
        let icloud: Vec<_> = report
            .beacons
            .iter()
            .filter(|b| b.fqdn.as_deref() == Some("gateway.icloud.com"))
            .collect();
        assert!(
            icloud.iter().all(|b| b.score > 0.9 && b.prevalence > 0.1),
            "{icloud:?}"
        );
    }
}

#[test]
fn rita_zeek_logs_analyse_sensibly() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/zeek/rita/test_data");
    if !dir.exists() {
        eprintln!("skipped: {} is absent", dir.display());
        return;
    }
    let mut connections = 0;
    for sub in std::fs::read_dir(&dir).unwrap() {
        let sub = sub.unwrap().path();
        let report = beacons_offline(
            std::slice::from_ref(&sub),
            None,
            0.0,
            Allowlist::default(),
            Networks::default(),
        )
        .unwrap();
        connections += report.connections;
        let mut last = f64::INFINITY;
        for b in &report.beacons {
            assert!((0.0..=1.0).contains(&b.score), "{}: {b:?}", sub.display());
            assert!(b.rank_score <= last, "ranked order");
            last = b.rank_score;
        }
    }
    assert!(connections > 1000, "only {connections} connections read");
}
