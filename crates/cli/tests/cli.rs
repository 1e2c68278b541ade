//! End-to-end tests through the `turncoat` binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use common::{ADVISORY, Env, WHOAMI_RULES, dns, path, whoami};

#[test]
fn tenants_are_validated_and_unique_ignoring_case() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let out = env.run(&["tenant", "add", "Acme"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            r#"tenant "Acme" would be the existing tenant "acme": names are compared ignoring case"#
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.run(&["tenant", "add", "acme"]).status.code(), Some(2));
    assert_eq!(
        env.run(&["tenant", "add", "bad name"]).status.code(),
        Some(2)
    );
    env.ok(&["tenant", "add", "Beta"]);
    let list = env.json(&["tenant", "list", "--format", "json"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["acme", "Beta"]);

    // The hint for an unknown tenant is one that works: the tenant meant,
    // or a name `tenant add` accepts, or why there can be none.
    let x = env.file("x.ndjson", "");
    for (asked, hint) in [
        ("ACME", r#"no tenant named "ACME"; did you mean "acme"?"#),
        (
            "nobody",
            "no tenant named \"nobody\"; create it with `turncoat tenant add nobody`",
        ),
        (
            "bad name",
            "no tenant named \"bad name\"; no tenant can be named so: only ASCII letters",
        ),
        (
            "-x",
            "no tenant can be named so: it must start with a letter or a digit",
        ),
    ] {
        let out = env.run(&["ingest", &format!("--tenant={asked}"), path(&x)]);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(hint), "{asked}: {stderr}");
    }
    let long = "x".repeat(5000);
    let out = env.run(&["ingest", "--tenant", &long, path(&x)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.len() < 1000 && stderr.contains("(5000 bytes)"),
        "{stderr}"
    );
}

#[test]
fn telemetry_before_intel_is_found_by_the_retro_hunt() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    env.ok(&["tenant", "add", "beta"]);
    let lines = [
        dns("ws-01", "2023-03-20T10:00:00Z", "cdn.akamaicontainer.com"),
        dns("ws-01", "2023-03-20T11:00:00Z", "akamaicontainer.com."),
        dns("ws-02", "2023-03-20T10:00:00Z", "notakamaicontainer.com"),
        dns(
            "ws-03",
            "2023-03-20T10:00:00Z",
            "akamaicontainer.com.evil.example",
        ),
    ];
    let f = env.file("dns.ndjson", &lines.join("\n"));
    env.ok(&["ingest", "--tenant", "acme", path(&f)]);
    assert!(env.alerts(&[]).is_empty(), "no intel yet");
    let adv = env.file("3cx.toml", ADVISORY);
    env.ok(&["intel", "import", path(&adv)]);
    let alerts = env.alerts(&[]);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(a["tenant"], "acme");
    assert_eq!(a["endpoint"], "ws-01");
    assert_eq!(a["kind"], "ioc");
    assert_eq!(a["source"], "akamaicontainer.com");
    assert_eq!(a["count"], 2, "both sightings of the day count");
    assert_eq!(a["first_seen"], "2023-03-20T10:00:00Z");
    // The evidence is the latest sighting (11:00, the domain itself).
    assert_eq!(a["evidence"]["observed"], "akamaicontainer.com");
    assert_eq!(a["evidence"]["time"], "2023-03-20T11:00:00Z");
    assert!(
        a["evidence"]["file"]
            .as_str()
            .unwrap()
            .ends_with("dns.ndjson")
    );
    assert!(
        env.alerts(&["--tenant", "beta"]).is_empty(),
        "another tenant sees nothing"
    );

    // Importing the same intel again finds nothing new and changes nothing.
    let report = env.json(&["intel", "import", "--output", "json", path(&adv)]);
    assert_eq!(report["indicators_new"], 0);
    assert!(
        report["retro"].as_array().unwrap().is_empty(),
        "nothing new to hunt"
    );
    assert_eq!(env.alerts(&[]), alerts);
}

#[test]
fn intel_before_telemetry_is_found_live_and_reingest_is_idempotent() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let csv = env.file("iocs.csv", "indicator,type\nhxxps://msstorageazure[.]com/ping,url\nmsstorageboxes(.)com,hostname\n203.0.113[.]7,ip\n");
    let report = env.json(&["intel", "import", "--output", "json", path(&csv)]);
    assert_eq!(report["indicators_new"], 3, "{report:#}");
    assert!(report["rejected"].as_array().unwrap().is_empty());

    let lines = [
        dns("ws-09", "2023-03-25T08:00:00Z", "api.msstorageboxes.com"),
        r#"{"@timestamp":"2023-03-25T08:01:00Z","host":{"name":"ws-09"},"event":{"category":["network"]},"destination":{"ip":"203.0.113.7","port":443}}"#.to_owned(),
        r#"{"@timestamp":"2023-03-25T08:02:00Z","host":{"name":"ws-09"},"event":{"category":["web"]},"url":{"full":"https://msstorageazure.com/ping"}}"#.to_owned(),
    ];
    let f = env.file("live.ndjson", &lines.join("\n"));
    let report = env.json(&["ingest", "--tenant", "acme", "--output", "json", path(&f)]);
    assert_eq!(report["new_alerts"], 3, "{report:#}");
    let alerts = env.alerts(&[]);
    let mut sources: Vec<&str> = alerts
        .iter()
        .map(|a| a["source"].as_str().unwrap())
        .collect();
    sources.sort();
    assert_eq!(
        sources,
        vec![
            "203.0.113.7",
            "https://msstorageazure.com/ping",
            "msstorageboxes.com"
        ]
    );

    let again = env.json(&["ingest", "--tenant", "acme", "--output", "json", path(&f)]);
    assert_eq!(again["files"][0]["status"], "already-ingested");
    assert_eq!(again["new_alerts"], 0);
    assert_eq!(env.alerts(&[]), alerts, "counts do not grow on re-ingest");

    // The file grows: only the new line is read, and the count grows by one.
    let mut grown = lines.join("\n");
    grown.push('\n');
    grown.push_str(&dns("ws-09", "2023-03-25T09:00:00Z", "msstorageboxes.com"));
    std::fs::write(&f, grown).unwrap();
    let third = env.json(&["ingest", "--tenant", "acme", "--output", "json", path(&f)]);
    assert_eq!(third["files"][0]["status"], "resumed", "{third:#}");
    assert_eq!(third["events"], 1);
    let boxes = env
        .alerts(&[])
        .into_iter()
        .find(|a| a["source"] == "msstorageboxes.com")
        .unwrap();
    assert_eq!(boxes["count"], 2);
}

#[test]
fn stix_or_patterns_and_unsupported_ones_are_kept() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let bundle = r#"{"type":"bundle","id":"bundle--1","objects":[
      {"type":"indicator","spec_version":"2.1","id":"indicator--a","pattern_type":"stix","valid_from":"2023-01-01T00:00:00Z",
       "pattern":"[domain-name:value = 'journalide.org' OR ipv4-addr:value ISSUBSET '198.51.100.0/24']"},
      {"type":"indicator","spec_version":"2.1","id":"indicator--b","pattern_type":"stix","valid_from":"2023-01-01T00:00:00Z",
       "pattern":"[process:command_line MATCHES 'x']"},
      {"type":"campaign","id":"campaign--1","name":"SmoothOperator"},
      {"type":"relationship","id":"relationship--1","relationship_type":"indicates","source_ref":"indicator--a","target_ref":"campaign--1"}]}"#;
    let f = env.file("bundle.json", bundle);
    env.ok(&["intel", "import", path(&f)]);
    let unsupported = env.json(&["intel", "list", "--unsupported", "--format", "json"]);
    assert_eq!(unsupported.as_array().unwrap().len(), 1);
    let lines = [
        dns("h1", "2023-03-25T08:00:00Z", "journalide.org"),
        r#"{"@timestamp":"2023-03-25T08:01:00Z","host":{"name":"h2"},"event":{"category":["network"]},"destination":{"ip":"198.51.100.9"}}"#.to_owned(),
    ];
    let f = env.file("t.ndjson", &lines.join("\n"));
    env.ok(&["ingest", "--tenant", "acme", path(&f)]);
    let alerts = env.alerts(&[]);
    assert_eq!(alerts.len(), 2);
    assert!(alerts.iter().all(|a| a["campaign"] == "SmoothOperator"));
    let hosts: Vec<&str> = alerts
        .iter()
        .map(|a| a["endpoint"].as_str().unwrap())
        .collect();
    assert!(hosts.contains(&"h1") && hosts.contains(&"h2"));
}

/// Vendors stamp `valid_from` with the publication date; the retro-hunt
/// must still find the weeks of contact before it.
#[test]
fn sightings_before_valid_from_are_found_and_marked() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let lines = [
        dns("ws-01", "2023-03-08T09:00:00Z", "akamaicontainer.com"),
        dns("ws-02", "2023-03-09T09:00:00Z", "msstorageboxes.com"),
        dns("ws-03", "2023-03-10T09:00:00Z", "journalide.org"),
        dns("ws-04", "2023-04-20T09:00:00Z", "azureonlinestorage.com"),
    ];
    let f = env.file("march.ndjson", &lines.join("\n"));
    env.ok(&["ingest", "--tenant", "acme", path(&f)]);
    let indicator = |id: &str, domain: &str, extra: &str| {
        format!(
            r#"{{"type":"indicator","spec_version":"2.1","id":"indicator--{id}","created":"2023-03-30T00:00:00Z","modified":"2023-03-30T00:00:00Z","pattern_type":"stix","pattern":"[domain-name:value = '{domain}']","valid_from":"2023-03-30T00:00:00Z"{extra}}}"#
        )
    };
    let bundle = format!(
        r#"{{"type":"bundle","id":"bundle--1","objects":[{},{},{},{}]}}"#,
        indicator("a", "akamaicontainer.com", ""),
        indicator("b", "msstorageboxes.com", r#","revoked":true"#),
        indicator(
            "c",
            "journalide.org",
            r#","valid_until":"2023-03-05T00:00:00Z""#
        ),
        indicator(
            "d",
            "azureonlinestorage.com",
            r#","valid_until":"2023-04-15T00:00:00Z""#
        ),
    );
    let f = env.file("published.json", &bundle);
    env.ok(&["intel", "import", path(&f)]);
    let alerts = env.alerts(&[]);
    assert_eq!(
        alerts.len(),
        1,
        "revoked and expired indicators stay silent: {alerts:#?}"
    );
    let a = &alerts[0];
    assert_eq!(a["endpoint"], "ws-01");
    assert_eq!(a["first_seen"], "2023-03-08T09:00:00Z");
    assert_eq!(a["evidence"]["before_valid_from"], true, "{a:#}");
    assert_eq!(a["severity"], "high", "the severity is kept");

    // Live, after publication: not marked.
    let f = env.file(
        "april.ndjson",
        &dns("ws-05", "2023-04-02T09:00:00Z", "akamaicontainer.com"),
    );
    env.ok(&["ingest", "--tenant", "acme", path(&f)]);
    let live = env
        .alerts(&[])
        .into_iter()
        .find(|a| a["endpoint"] == "ws-05")
        .unwrap();
    assert!(
        live["evidence"].get("before_valid_from").is_none(),
        "{live:#}"
    );
}

/// A detection rule alone (no correlation over it, which would keep its
/// own matches quiet).
const WHOAMI_RULE: &str = r#"
title: whoami under the 3CX app
id: cccccccc-0000-0000-0000-000000000001
status: test
level: medium
logsource:
    product: windows
    category: process_creation
detection:
    sel:
        ParentImage|endswith: '\3CXDesktopApp.exe'
        CommandLine|contains: whoami
    condition: sel
"#;

/// The same events, in the same order, give the same alert whatever the
/// batch size: first and last seen are the earliest and latest matching
/// event, and the evidence is the latest.
#[test]
fn alert_times_do_not_depend_on_batch_size() {
    let lines = [
        whoami("ws-1", "2023-03-29T08:10:00Z", "whoami /all"),
        whoami("ws-1", "2023-03-29T08:44:00Z", "whoami /priv"),
        whoami("ws-1", "2023-03-29T01:06:00Z", "whoami /groups"),
        whoami("ws-1", "2023-03-29T05:00:00Z", "whoami"),
    ];
    for batch in ["1", "2", "3", "1000"] {
        let env = Env::new();
        env.ok(&["tenant", "add", "acme"]);
        let rules = env.file("rules.yml", WHOAMI_RULE);
        env.ok(&["rules", "import", path(&rules)]);
        let f = env.file("procs.ndjson", &lines.join("\n"));
        env.ok(&[
            "ingest",
            "--tenant",
            "acme",
            "--batch-records",
            batch,
            path(&f),
        ]);
        let alerts = env.alerts(&["--kind", "sigma"]);
        let a = alerts
            .iter()
            .find(|a| a["source"] == "cccccccc-0000-0000-0000-000000000001")
            .unwrap_or_else(|| panic!("{alerts:#?}"));
        assert_eq!(a["first_seen"], "2023-03-29T01:06:00Z", "batch {batch}");
        assert_eq!(a["last_seen"], "2023-03-29T08:44:00Z", "batch {batch}");
        assert_eq!(a["count"], 4, "batch {batch}");
        assert_eq!(
            a["evidence"]["time"], "2023-03-29T08:44:00Z",
            "batch {batch}"
        );
        assert_eq!(a["evidence"]["observed"], "whoami /priv", "batch {batch}");
    }
}

/// A file none of whose records read is not marked ingested: the run
/// fails, and the same file with the right options is read.
#[test]
fn a_file_whose_every_record_was_skipped_is_not_ingested() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    // Zeek DNS records carry no host name: without --endpoint (or a DHCP
    // log) none can be attributed.
    let zeek = "#separator \\x09\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tquery\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\n1679900000.0\tC1\t10.0.0.5\t5353\t10.0.0.1\t53\tudp\takamaicontainer.com\n";
    let f = env.file("dns.log", zeek);
    let out = env.run(&["ingest", "--tenant", "acme", "--format", "ecs", path(&f)]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not marked ingested"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = env.json(&["ingest", "--tenant", "acme", "--output", "json", path(&f)]);
    assert_eq!(report["files"][0]["status"], "ingested", "{report:#}");
    assert_eq!(report["events"], 1, "{report:#}");
}

#[test]
fn exposure_history_survives_removal() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let osq = [
        r#"{"name":"pack_inventory_programs","hostIdentifier":"ws-01","unixTime":1679000000,"columns":{"name":"3CX Desktop App","version":"18.12.416"},"action":"added"}"#,
        r#"{"name":"pack_inventory_programs","hostIdentifier":"ws-02","unixTime":1679000000,"columns":{"name":"3CX Phone System Management Console","version":"18.12.416"},"action":"added"}"#,
        r#"{"name":"pack_inventory_programs","hostIdentifier":"ws-03","unixTime":1679000000,"columns":{"name":"3CX Desktop App","version":"18.12.422"},"action":"added"}"#,
        r#"{"name":"pack_inventory_programs","hostIdentifier":"ws-01","unixTime":1680200000,"columns":{"name":"3CX Desktop App","version":"18.12.416"},"action":"removed"}"#,
    ];
    let f = env.file("osq.log", &osq.join("\n"));
    env.ok(&["ingest", "--tenant", "acme", path(&f)]);
    let adv = env.file("3cx.toml", ADVISORY);
    env.ok(&["intel", "import", path(&adv)]);
    let rows = env.json(&["exposure", "--format", "json"]);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["endpoint"], "ws-01");
    assert_eq!(rows[0]["advisory"], "TC-2023-0001");
    assert_eq!(rows[0]["version"], "18.12.416");
    assert_eq!(rows[0]["from"], "2023-03-16T20:53:20Z");
    assert_eq!(rows[0]["to"], "2023-03-30T18:13:20Z");
    let exposure_alerts = env.alerts(&["--kind", "exposure"]);
    assert_eq!(exposure_alerts.len(), 1);
    assert_eq!(exposure_alerts[0]["source"], "TC-2023-0001");
    assert_eq!(
        env.run(&["exposure", "--advisory", "TC-2023-0001"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        env.run(&["exposure", "--advisory", "nope"]).status.code(),
        Some(2)
    );

    // Live: an install after the advisory is known raises exposure at once.
    let later = env.file(
        "later.log",
        r#"{"name":"programs","hostIdentifier":"ws-04","unixTime":1680300000,"columns":{"name":"3CXDesktopApp","version":"18.12.407"},"action":"added"}"#,
    );
    env.ok(&["ingest", "--tenant", "acme", path(&later)]);
    assert_eq!(env.alerts(&["--kind", "exposure"]).len(), 2);
}

#[test]
fn packages_match_osv_records_under_any_spelling_their_registry_allows() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let row = |host: &str, time: u64, name: &str| {
        format!(
            r#"{{"name":"pack_inventory_python_packages","hostIdentifier":"{host}","unixTime":{time},"columns":{{"name":"{name}","version":"2.8.0","path":"/usr/lib/python3/dist-packages"}},"action":"added"}}"#
        )
    };
    let before = env.file(
        "before.log",
        &[
            row("ws-01", 1679000000, "python_dateutil"),
            row("ws-03", 1679000000, "python-dateutils"),
        ]
        .join("\n"),
    );
    env.ok(&["ingest", "--tenant", "acme", path(&before)]);
    let osv = env.file(
        "GHSA-test.json",
        r#"{"id":"GHSA-test-dateutil","summary":"python-dateutil test advisory","affected":[{"package":{"ecosystem":"PyPI","name":"python-dateutil"},"versions":["2.8.0"]}]}"#,
    );
    env.ok(&["intel", "import", "--format", "osv", path(&osv)]);
    // Retro: the ledger entry spelled with `_` is found.
    let rows = env.json(&["exposure", "--format", "json"]);
    let hosts: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["ws-01"], "{rows:#}");
    // Live: another spelling installed later raises exposure at once.
    let later = env.file("later.log", &row("ws-02", 1680300000, "Python.DateUtil"));
    env.ok(&["ingest", "--tenant", "acme", path(&later)]);
    let mut alerted: Vec<String> = env
        .alerts(&["--kind", "exposure"])
        .iter()
        .map(|a| a["endpoint"].as_str().unwrap().to_owned())
        .collect();
    alerted.sort();
    assert_eq!(alerted, ["ws-01", "ws-02"]);
}

#[test]
fn zeek_connections_are_named_by_dhcp_leases() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let dhcp = "#separator \\x09\n#path\tdhcp\n#fields\tts\tuids\tclient_addr\tassigned_addr\thost_name\n#types\ttime\tset[string]\taddr\taddr\tstring\n1679480000.0\tC1\t10.1.1.23\t10.1.1.23\tws-23\n";
    let dns_log = "#separator \\x09\n#path\tdns\n#fields\tts\tuid\tid.orig_h\tid.resp_h\tquery\tanswers\n#types\ttime\tstring\taddr\taddr\tstring\tvector[string]\n1679480100.0\tC2\t10.1.1.23\t10.1.1.1\tglcloudservice.com\t192.0.2.44\n";
    let a = env.file("dhcp.log", dhcp);
    let b = env.file("dns.log", dns_log);
    env.ok(&["ingest", "--tenant", "acme", path(&a), path(&b)]);
    let ioc = env.file("ioc.txt", "glcloudservice[.]com\n");
    env.ok(&["intel", "import", path(&ioc)]);
    let alerts = env.alerts(&[]);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["endpoint"], "ws-23");
}

#[test]
fn bad_records_are_reported_and_unreadable_input_fails() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let f = env.file(
        "mixed.ndjson",
        &format!(
            "{}\n{{not json\n{}\n",
            dns("h", "2023-01-01T00:00:00Z", "a.com"),
            dns("h", "2023-01-01T00:00:01Z", "b.com")
        ),
    );
    let out = env.run(&["ingest", "--tenant", "acme", path(&f)]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mixed.ndjson: line 2:"), "{stderr}");
    let junk = env.file("junk.bin", "\u{1}\u{2}\u{3} definitely not telemetry");
    let out = env.run(&["ingest", "--tenant", "acme", path(&junk)]);
    assert_eq!(out.status.code(), Some(2), "nothing could be read");
    assert!(String::from_utf8_lossy(&out.stdout).contains("cannot tell the format"));

    // One good file and one bad in the same run: the good one is kept, the
    // run still fails, and the summary line says which way each went.
    let good = env.file(
        "good.ndjson",
        &format!("{}\n", dns("h", "2023-01-02T00:00:00Z", "c.com")),
    );
    let out = env.run(&["ingest", "--tenant", "acme", path(&good), path(&junk)]);
    assert_eq!(out.status.code(), Some(2), "a failed input fails the run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("turncoat: ingest: 2 inputs: 1 ingested, 0 resumed, 0 already ingested, 1 failed; 1 events"),
        "{stderr}"
    );
}

#[test]
fn alerts_exit_codes() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    assert_eq!(env.run(&["alerts"]).status.code(), Some(0));
    assert_eq!(
        env.run(&["alerts", "--kind", "bogus"]).status.code(),
        Some(2)
    );
}

#[test]
fn demo_finds_every_planted_fact_and_nothing_else() {
    let env = Env::new();
    let out = env.run(&[
        "demo",
        "--no-serve",
        "--format",
        "json",
        "--endpoints",
        "10",
        "--events-per-endpoint-day",
        "30",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let scores = report["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 3);
    let beacons = scores.iter().find(|s| s["kind"] == "beacon").unwrap();
    assert_eq!(beacons["gating"], false);
    assert_eq!(
        beacons["missed"].as_array().unwrap().len(),
        0,
        "planted beacons in the window are found: {beacons:#}"
    );
    for s in scores.iter().filter(|s| s["gating"] == true) {
        assert!(s["planted"].as_u64().unwrap() > 0, "{s:#}");
        assert_eq!(s["found"], s["planted"], "{s:#}");
        assert_eq!(s["missed"].as_array().unwrap().len(), 0, "{s:#}");
        assert_eq!(s["false_alerts"].as_array().unwrap().len(), 0, "{s:#}");
    }
    let _ = std::fs::remove_dir_all(
        Path::new(report["data_dir"].as_str().unwrap())
            .parent()
            .unwrap(),
    );
}

#[test]
fn a_clean_fleet_raises_nothing() {
    let env = Env::new();
    let fleet = env.dir.path().join("fleet");
    env.ok(&[
        "simulate",
        "--out",
        path(&fleet),
        "--scenario",
        "clean",
        "--tenants",
        "2",
        "--endpoints",
        "8",
        "--days",
        "10",
        "--events-per-endpoint-day",
        "30",
    ]);
    // The MSSP's global allowlist of time, telemetry and update services:
    // without it their perfectly regular polling would read as beacons.
    for service in [
        "time.windows.com",
        "ntp.ubuntu.com",
        "v10.events.data.microsoft.com",
        "gateway.icloud.com",
        "www.3cx.com",
    ] {
        env.ok(&[
            "allow",
            "add",
            "--destination",
            service,
            "--reason",
            "known service",
        ]);
    }
    for t in ["acme-corp", "globex"] {
        env.ok(&["tenant", "add", t]);
        let report = env.json(&[
            "ingest",
            "--tenant",
            t,
            "--output",
            "json",
            path(&fleet.join(t)),
        ]);
        assert_eq!(report["skipped_records"], 0, "{report:#}");
        assert!(report["events"].as_u64().unwrap() > 1000);
    }
    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../intel/3cx");
    env.ok(&["intel", "import", path(&pack)]);
    assert!(env.alerts(&[]).is_empty(), "{:#?}", env.alerts(&[]));
    assert_eq!(env.run(&["exposure"]).status.code(), Some(0));
}

#[test]
fn a_killed_ingest_loses_nothing_and_resumes() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let lines: Vec<String> = (0..120_000)
        .map(|i| {
            dns(
                &format!("ws-{}", i % 50),
                "2023-03-20T10:00:00Z",
                &format!("host-{i}.example.com"),
            )
        })
        .collect();
    let f = env.file("big.ndjson", &lines.join("\n"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_turncoat"))
        .arg("--data")
        .arg(env.data())
        .args([
            "ingest",
            "--tenant",
            "acme",
            "--batch-records",
            "20000",
            path(&f),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it mid-run: after the first batch commits, before the last.
    let events = |env: &Env| {
        env.json(&["tenant", "list", "--format", "json"])[0]["stats"]["events"]
            .as_u64()
            .unwrap()
    };
    let started = std::time::Instant::now();
    while events(&env) == 0 && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let committed = events(&env);
    assert!(committed > 0, "nothing committed before the kill");
    let report = env.json(&["ingest", "--tenant", "acme", "--output", "json", path(&f)]);
    assert!(
        committed < 120_000,
        "the kill came after the whole file was in"
    );
    assert_eq!(report["files"][0]["status"], "resumed", "{report:#}");
    assert_eq!(
        report["events"].as_u64().unwrap(),
        120_000 - committed,
        "exactly the uncommitted rest is read"
    );
    assert_eq!(events(&env), 120_000, "every event stored exactly once");
}

/// A one-tenant simulated fleet small enough for debug builds, with the
/// simulator's planted beacons.
fn small_fleet(env: &Env) -> PathBuf {
    let fleet = env.dir.path().join("fleet");
    env.ok(&[
        "simulate",
        "--out",
        path(&fleet),
        "--tenants",
        "1",
        "--endpoints",
        "12",
        "--days",
        "21",
        "--events-per-endpoint-day",
        "20",
    ]);
    fleet
}

#[test]
fn the_ingest_beacon_threshold_decides_which_pairs_the_pipeline_raises() {
    let env = Env::new();
    let fleet = small_fleet(&env);
    let tenant_dir = std::fs::read_dir(&fleet)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let beacons_raised = |tenant: &str, threshold: Option<&str>| {
        env.ok(&["tenant", "add", tenant]);
        let mut args = vec!["ingest", "--tenant", tenant, "--output", "json"];
        if let Some(t) = threshold {
            args.extend(["--beacon-threshold", t]);
        }
        args.push(path(&tenant_dir));
        env.json(&args)["beacons"]["new_alerts"].as_u64().unwrap()
    };
    assert!(
        beacons_raised("default", None) > 0,
        "planted beacons raised"
    );
    // Scores are at most 1: nothing reaches 1.5.
    assert_eq!(beacons_raised("strict", Some("1.5")), 0);
}

#[test]
fn stored_beacons_rank_allowlists_apply_at_once_and_alerts_carry_intel() {
    let env = Env::new();
    let fleet = small_fleet(&env);
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(fleet.join("truth.json")).unwrap()).unwrap();
    let planted: Vec<(String, String)> = truth["beacons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["malicious"] == true)
        .map(|b| {
            (
                b["endpoint"].as_str().unwrap().to_owned(),
                b["fqdn"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(!planted.is_empty());
    env.ok(&["tenant", "add", "acme-corp"]);
    env.ok(&[
        "ingest",
        "--tenant",
        "acme-corp",
        path(&fleet.join("acme-corp")),
    ]);
    // Time sync is a perfect beacon by timing: the analyst allows the time
    // services once, for every tenant, after the data is in.
    for time_service in ["ntp.ubuntu.com", "time.windows.com"] {
        env.ok(&[
            "allow",
            "add",
            "--destination",
            time_service,
            "--reason",
            "time sync",
        ]);
    }
    let ranked = env.json(&[
        "beacons",
        "--tenant",
        "acme-corp",
        "--min-score",
        "0",
        "--format",
        "json",
    ]);
    let ranked = ranked.as_array().unwrap();
    assert!(ranked.iter().all(|b| b["fqdn"] != "ntp.ubuntu.com"));
    let top: Vec<(String, String)> = ranked
        .iter()
        .take(planted.len())
        .map(|b| {
            (
                b["src"].as_str().unwrap().to_owned(),
                b["fqdn"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for p in &planted {
        assert!(top.contains(p), "{p:?} not in {top:?}");
    }
    for key in [
        "src",
        "dst",
        "fqdn",
        "count",
        "score",
        "ts_score",
        "ds_score",
        "dur_score",
        "hist_score",
        "prevalence",
        "rank_score",
        "first_seen",
        "last_seen",
        "median_interval_s",
    ] {
        assert!(ranked[0].get(key).is_some(), "missing {key}");
    }

    let out = env.run(&["beacons", "--tenant", "acme-corp", "--raise"]);
    assert_eq!(out.status.code(), Some(1), "beacons found: exit 1");
    let raised = |env: &Env| {
        let beacons = env.alerts(&["--kind", "beacon"]);
        planted
            .iter()
            .map(|(endpoint, fqdn)| {
                beacons
                    .iter()
                    .find(|a| a["endpoint"] == endpoint.as_str() && a["source"] == fqdn.as_str())
                    .expect("planted beacon raised")
                    .clone()
            })
            .collect::<Vec<Value>>()
    };
    for a in raised(&env) {
        assert_eq!(a["severity"], "medium", "timing alone: {a:#}");
        assert!(a["campaign"].is_null());
    }
    // Intel that arrives later is attached to the beacon alerts already raised.
    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../intel/3cx");
    env.ok(&["intel", "import", path(&pack)]);
    for a in raised(&env) {
        assert_eq!(a["campaign"], "SmoothOperator", "intel attached: {a:#}");
        assert_eq!(a["severity"], "high");
        assert!(
            a["title"].as_str().unwrap().contains("known-bad domain"),
            "{a:#}"
        );
    }

    // Drift: the trojanized releases' new modules and destinations, raised on
    // the endpoints that ran them and nowhere else.
    let out = env.run(&["drift", "--raise"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exposed: Vec<&str> = truth["exposures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["endpoint"].as_str().unwrap())
        .collect();
    let drift = env.alerts(&["--kind", "drift"]);
    assert!(!drift.is_empty());
    for a in &drift {
        assert!(
            exposed.contains(&a["endpoint"].as_str().unwrap()),
            "drift on a clean endpoint: {a:#}"
        );
    }

    // Allowing a destination takes effect on stored data, without re-import.
    let (_, fqdn) = &planted[0];
    env.ok(&[
        "allow",
        "add",
        "--tenant",
        "acme-corp",
        "--destination",
        fqdn,
        "--reason",
        "test",
    ]);
    let after = env.json(&[
        "beacons",
        "--tenant",
        "acme-corp",
        "--min-score",
        "0",
        "--format",
        "json",
    ]);
    assert!(
        after
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["fqdn"] != fqdn.as_str())
    );
    // The beacon alerts it covers are closed, the reason recorded.
    for a in env.alerts(&["--kind", "beacon"]) {
        if a["source"] == fqdn.as_str() {
            assert_eq!(a["status"], "allowlisted", "{a:#}");
            let reason = a["status_reason"].as_str().unwrap();
            assert!(
                reason.contains(fqdn.as_str()) && reason.contains("test"),
                "{a:#}"
            );
        } else if a["source"] == "ntp.ubuntu.com" {
            // Closed by the time-sync entry added after ingest.
            assert_eq!(a["status"], "allowlisted", "{a:#}");
            assert!(a["status_reason"].as_str().unwrap().contains("time sync"));
        } else {
            assert_ne!(a["status"], "allowlisted", "{a:#}");
        }
    }
    let audit = env.json(&["audit", "--format", "json"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "alert.status"
                && e["detail"].as_str().unwrap().contains("allowlisted")),
        "{audit:#}"
    );
    let list = env.json(&["allow", "list", "--format", "json"]);
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert_eq!(
        env.run(&[
            "allow",
            "add",
            "--destination",
            "not a domain",
            "--reason",
            "x"
        ])
        .status
        .code(),
        Some(2)
    );
}

/// A Zeek `conn` record as JSON.
fn conn(ts: f64, src: &str, dst: &str, port: u16, duration: f64) -> String {
    format!(
        r#"{{"_path":"conn","ts":{ts},"uid":"C{}","id.orig_h":"{src}","id.orig_p":{},"id.resp_h":"{dst}","id.resp_p":{port},"proto":"tcp","duration":{duration},"orig_bytes":512,"resp_bytes":1400}}"#,
        (ts * 1000.0) as u64,
        40_000 + (ts as u64 % 20_000)
    )
}

/// A sensor that also sees the internet knocking: an internal host beacons
/// to the sensor's own public address, which thousands of scanners also
/// reach. Scanners are not the tenant's hosts, so they neither share the
/// destination nor make pairs; multicast, broadcast and a host's chatter
/// with its router are never candidates unless internal pairs are asked for.
#[test]
fn a_beacon_on_a_sensor_facing_the_internet_ranks_first() {
    let env = Env::new();
    let logs = env.dir.path().join("sensor");
    std::fs::create_dir(&logs).unwrap();
    let start = 1_700_000_000.0;
    let mut lines = Vec::new();
    // Every 300 s (± 4) for two days, to the sensor's public address.
    for i in 0..576 {
        let t = start + f64::from(i) * 300.0 + f64::from(i % 9) - 4.0;
        lines.push(conn(t, "10.1.1.20", "198.51.100.10", 443, 0.4));
    }
    // 3,000 scanners, three knocks each.
    for n in 0..3000u32 {
        let src = format!(
            "{}.{}.{}.{}",
            20 + n % 150,
            (n / 150) % 250,
            n % 199,
            1 + n % 250
        );
        for k in 0..3 {
            let t = start + f64::from(n * 53 + k * 7919) % 172_800.0;
            lines.push(conn(t, &src, "198.51.100.10", 22, 0.0));
        }
    }
    // Perfectly regular, and never a beacon: IPv6 multicast, broadcast,
    // and a host asking its router every 30 s.
    for i in 0..5760 {
        let t = start + f64::from(i) * 30.0;
        if i % 4 == 0 {
            lines.push(conn(t, "fe80::1", "ff02::c", 1900, 0.0));
            lines.push(conn(t, "10.1.1.30", "255.255.255.255", 67, 0.0));
        }
        lines.push(conn(t, "10.1.1.20", "10.1.1.1", 53, 0.0));
    }
    // An office on a public range the MSSP knows is the tenant's.
    for i in 0..288 {
        let t = start + f64::from(i) * 600.0;
        lines.push(conn(t, "203.0.113.7", "192.0.2.50", 443, 0.3));
    }
    // One connection held open for two hours.
    lines.push(conn(start + 5000.0, "10.1.1.20", "192.0.2.77", 443, 7200.0));
    std::fs::write(logs.join("conn.log"), lines.join("\n")).unwrap();
    std::fs::write(
        logs.join("ssl.log"),
        r#"{"_path":"ssl","ts":1700000000.5,"uid":"S1","id.orig_h":"10.1.1.20","id.orig_p":40000,"id.resp_h":"198.51.100.10","id.resp_p":443,"server_name":"sensor.example.net"}"#,
    )
    .unwrap();

    let ranked = env.json(&["beacons", "--format", "json", path(&logs)]);
    let ranked = ranked.as_array().unwrap();
    let first = &ranked[0];
    assert_eq!(first["class"], "beacon", "{ranked:#?}");
    assert_eq!(first["src"], "10.1.1.20");
    assert_eq!(
        first["dst"], "198.51.100.10",
        "the IP stays beside the name"
    );
    assert_eq!(first["fqdn"], "sensor.example.net");
    assert!(first["score"].as_f64().unwrap() > 0.9, "{first:#}");
    assert_eq!(first["rank_score"], first["score"], "{first:#}");
    assert_eq!(first["sharing_sources"], 1, "scanners do not share it");
    for never in ["ff02::c", "255.255.255.255", "10.1.1.1", "192.0.2.50"] {
        assert!(
            ranked.iter().all(|r| r["dst"] != never),
            "{never}: {ranked:#?}"
        );
    }
    let classes: Vec<&str> = ranked
        .iter()
        .map(|r| r["class"].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["beacon", "long-connection"], "{ranked:#?}");
    assert_eq!(ranked[1]["dst"], "192.0.2.77");

    // Internal pairs when asked for: the router chatter is one.
    let with_internal = env.json(&[
        "beacons",
        "--format",
        "json",
        "--include-internal",
        path(&logs),
    ]);
    assert!(
        with_internal
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["dst"] == "10.1.1.1" && r["class"] == "beacon"),
        "{with_internal:#}"
    );
    assert!(
        with_internal
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["dst"] != "ff02::c")
    );

    // The office's range made internal: its beacon is analysed.
    env.ok(&[
        "network",
        "internal",
        "add",
        "203.0.113.0/24",
        "--note",
        "office",
    ]);
    let listed = env.json(&["network", "internal", "list", "--format", "json"]);
    assert_eq!(listed[0]["cidr"], "203.0.113.0/24");
    let ranked = env.json(&["beacons", "--format", "json", path(&logs)]);
    assert!(
        ranked
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["src"] == "203.0.113.7" && r["dst"] == "192.0.2.50"),
        "{ranked:#}"
    );
    let explained = env.run(&["beacons", "--explain", path(&logs)]);
    let explained = String::from_utf8(explained.stdout).unwrap();
    assert!(
        explained.contains("10.1.1.20 -> 198.51.100.10: rank ")
            && explained.contains("× (1 − weight "),
        "{explained}"
    );
}

#[test]
fn the_same_indicator_in_several_tenants_is_one_campaign_that_dismissals_do_not_hide() {
    let env = Env::new();
    for t in ["t-one", "t-two", "t-three"] {
        env.ok(&["tenant", "add", t]);
    }
    let seen = env.file(
        "seen.ndjson",
        &dns("ws-1", "2023-03-20T10:00:00Z", "msstorageazure.com"),
    );
    let later = env.file(
        "later.ndjson",
        &dns("ws-9", "2023-05-20T10:00:00Z", "msstorageazure.com"),
    );
    env.ok(&["ingest", "--tenant", "t-one", path(&seen)]);
    env.ok(&["ingest", "--tenant", "t-two", path(&seen)]);
    env.ok(&["ingest", "--tenant", "t-three", path(&later)]);
    let ioc = env.file("ioc.txt", "msstorageazure[.]com\n");
    let report = env.json(&["intel", "import", "--output", "json", path(&ioc)]);
    assert_eq!(report["campaigns"]["new_campaigns"], 1, "{report:#}");

    let campaigns = env.json(&["campaigns", "--format", "json"]);
    let c = &campaigns.as_array().unwrap()[0];
    assert_eq!(c["kind"], "campaign");
    assert_eq!(c["member_kind"], "ioc");
    assert_eq!(c["source"], "msstorageazure.com");
    assert_eq!(
        c["tenants"].as_array().unwrap().len(),
        3,
        "members outside the window still belong: {c:#}"
    );
    let listed = env.alerts(&[]);
    let (rows, alerts): (Vec<Value>, Vec<Value>) =
        listed.into_iter().partition(|a| a["kind"] == "campaign");
    assert_eq!(rows.len(), 1, "the campaign is listed with the alerts");
    assert!(
        alerts.iter().all(|a| a["campaign_alert"] == c["id"]),
        "members are marked"
    );
    let only = env.alerts(&["--kind", "campaign"]);
    assert_eq!(only.len(), 1, "{only:#?}");
    assert_eq!(only[0]["id"], c["id"]);
    assert_eq!(only[0]["tenants"].as_array().unwrap().len(), 3);
    assert_eq!(only[0]["member_kind"], "ioc");
    assert_eq!(only[0]["severity"], "high");
    // The listing filters: three tenants within 14 days there are not.
    let three = |extra: &[&str]| {
        let mut args = vec!["campaigns", "--format", "json", "--min-tenants", "3"];
        args.extend_from_slice(extra);
        env.json(&args).as_array().unwrap().len()
    };
    assert_eq!(three(&[]), 0);
    assert_eq!(three(&["--window-days", "90"]), 1);

    let first = alerts.iter().find(|a| a["tenant"] == "t-one").unwrap();
    env.ok(&[
        "alert",
        "status",
        &first["id"].to_string(),
        "false-positive",
        "--reason",
        "the vendor's own update server",
    ]);
    let campaigns = env.json(&["campaigns", "--format", "json"]);
    assert_eq!(
        campaigns.as_array().unwrap().len(),
        1,
        "a dismissal does not hide the campaign"
    );
    assert_eq!(campaigns[0]["dismissed_tenants"], 1);

    // Two tenants 61 days apart are no campaign when the window is shorter.
    let narrow = Env::new();
    for t in ["a", "b"] {
        narrow.ok(&["tenant", "add", t]);
    }
    narrow.ok(&["ingest", "--tenant", "a", path(&seen)]);
    narrow.ok(&["ingest", "--tenant", "b", path(&later)]);
    narrow.ok(&["intel", "import", path(&ioc)]);
    assert_eq!(
        narrow.run(&["campaigns"]).status.code(),
        Some(0),
        "no campaign"
    );
    assert_eq!(
        narrow
            .run(&["campaigns", "--window-days", "90"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        narrow.run(&["campaigns"]).status.code(),
        Some(0),
        "the stored campaign is not listed under a narrower window"
    );
}

/// Runs `turncoat hunt --format jsonl` with `args`: exit code, lines, stderr.
fn hunt_jsonl(args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_turncoat"))
        .args(["hunt", "--format", "jsonl"])
        .args(args)
        .output()
        .unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), lines, stderr)
}

#[test]
fn hunt_runs_rules_and_intel_over_files_without_a_data_directory() {
    let env = Env::new();
    let rule = env.file(
        "rule.yml",
        r#"
title: 3CX app spawns a shell
id: 11111111-2222-3333-4444-555555555555
level: high
logsource:
    category: process_creation
detection:
    selection:
        ParentImage|endswith: '\3CXDesktopApp.exe'
        Image|endswith: '\cmd.exe'
    condition: selection
"#,
    );
    let low = env.file("low.yml", "title: any process\nlevel: low\nlogsource:\n    category: process_creation\ndetection:\n    sel:\n        Image|exists: true\n    condition: sel\n");
    let events = [
        r#"{"@timestamp":"2023-03-22T10:00:00Z","host":{"name":"ws-1","os":{"family":"windows"}},"event":{"category":["process"],"type":["start"]},"process":{"executable":"C:\\w\\cmd.exe","parent":{"executable":"C:\\a\\3CXDesktopApp.exe"}}}"#.to_owned(),
        dns("ws-1", "2023-03-22T10:01:00Z", "akamaicontainer.com"),
    ];
    let logs = env.file("logs.ndjson", &events.join("\n"));
    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../intel/3cx");
    let (code, lines, stderr) = hunt_jsonl(&[
        "--rules",
        path(&rule),
        path(&low),
        "--intel",
        path(&pack),
        "--min-level",
        "medium",
        path(&logs),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(lines.len(), 2, "the low rule is filtered out: {lines:#?}");
    let sigma = lines
        .iter()
        .find(|l| l["rule_id"] == "11111111-2222-3333-4444-555555555555")
        .unwrap();
    for key in [
        "rule_id",
        "rule_title",
        "level",
        "timestamp",
        "host",
        "file",
        "record_id",
        "event",
    ] {
        assert!(sigma.get(key).is_some(), "missing {key}");
    }
    assert_eq!(sigma["host"], "ws-1");
    assert_eq!(sigma["event"]["Image"], "C:\\w\\cmd.exe");
    assert!(
        lines
            .iter()
            .any(|l| l["rule_id"] == "ioc:akamaicontainer.com")
    );
    assert!(
        stderr.contains("2 events") && stderr.contains("1 rules loaded"),
        "{stderr}"
    );

    let clean = env.file(
        "clean.ndjson",
        &dns("ws-2", "2023-03-22T10:01:00Z", "example.com"),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_turncoat"))
        .args(["hunt", "--rules", path(&rule), "--", path(&clean)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn sigma_rules_match_stored_events_retroactively_and_new_events_live() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let proc = |host: &str, time: &str| {
        format!(
            r#"{{"@timestamp":"{time}","host":{{"name":"{host}","os":{{"family":"windows"}}}},"event":{{"category":["process"],"type":["start"]}},"process":{{"executable":"C:\\w\\cmd.exe","command_line":"cmd /c whoami","parent":{{"executable":"C:\\a\\3CXDesktopApp.exe"}}}}}}"#
        )
    };
    let before = env.file(
        "before.ndjson",
        &[
            proc("ws-1", "2023-03-22T10:00:00Z"),
            proc("ws-1", "2023-03-22T11:00:00Z"),
        ]
        .join("\n"),
    );
    env.ok(&["ingest", "--tenant", "acme", path(&before)]);
    let rules = env.dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("shell.yml"),
        "title: 3CX app spawns a shell\nid: aaaaaaaa-0000-0000-0000-000000000001\nstatus: test\nlevel: high\nlogsource:\n    product: windows\n    category: process_creation\ndetection:\n    selection:\n        ParentImage|endswith: '\\3CXDesktopApp.exe'\n        Image|endswith: '\\cmd.exe'\n    condition: selection\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("old.yml"),
        "title: Deprecated\nid: aaaaaaaa-0000-0000-0000-000000000002\nstatus: deprecated\nlogsource:\n    category: process_creation\ndetection:\n    sel:\n        Image|exists: true\n    condition: sel\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("broken.yml"),
        "title: Broken\nid: x\ndetection:\n    sel:\n        A|nope: 1\n    condition: sel\n",
    )
    .unwrap();
    let report = env.json(&[
        "rules",
        "import",
        "--exclude-status",
        "deprecated",
        "--output",
        "json",
        path(&rules),
    ]);
    assert_eq!(report["compiled"], 1, "{report:#}");
    assert_eq!(report["excluded"], 1);
    assert_eq!(report["failed"].as_array().unwrap().len(), 1);
    let alerts = env.alerts(&["--kind", "sigma"]);
    assert_eq!(alerts.len(), 1, "retro-hunt over the archive: {alerts:#?}");
    assert_eq!(alerts[0]["source"], "aaaaaaaa-0000-0000-0000-000000000001");
    assert_eq!(alerts[0]["title"], "3CX app spawns a shell");
    assert_eq!(alerts[0]["severity"], "high");
    assert_eq!(alerts[0]["count"], 2);
    assert!(
        alerts[0]["evidence"]["detail"]
            .as_str()
            .unwrap()
            .contains("whoami")
    );

    // The same rules again: nothing new, nothing re-counted.
    let again = env.json(&[
        "rules",
        "import",
        "--exclude-status",
        "deprecated",
        "--output",
        "json",
        path(&rules),
    ]);
    assert!(again["new_or_changed"].as_array().unwrap().is_empty());
    assert_eq!(env.alerts(&["--kind", "sigma"]), alerts);

    // New telemetry is matched live.
    let after = env.file("after.ndjson", &proc("ws-2", "2023-03-23T09:00:00Z"));
    env.ok(&["ingest", "--tenant", "acme", path(&after)]);
    let alerts = env.alerts(&["--kind", "sigma"]);
    assert_eq!(alerts.len(), 2);
    assert!(alerts.iter().any(|a| a["endpoint"] == "ws-2"));
    assert_eq!(
        env.json(&["rules", "list", "--format", "json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn sigma_correlations_and_filters_in_hunt_retro_and_live() {
    let env = Env::new();
    let rules = env.file("corr.yml", WHOAMI_RULES);
    // Three whoami runs in four minutes, and one the filter excludes.
    let burst = |host: &str, day: &str| {
        [
            whoami(host, &format!("{day}T10:00:00Z"), "whoami /all"),
            whoami(host, &format!("{day}T10:01:00Z"), "whoami /priv"),
            whoami(host, &format!("{day}T10:02:00Z"), "whoami inventory"),
            whoami(host, &format!("{day}T10:04:00Z"), "whoami /groups"),
        ]
        .join("\n")
    };
    let logs = env.file("burst.ndjson", &burst("ws-1", "2023-03-22"));
    let (code, lines, stderr) = hunt_jsonl(&["--rules", path(&rules), "--", path(&logs)]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        lines.len(),
        1,
        "only the correlation, not its base rule: {lines:#?}"
    );
    assert_eq!(lines[0]["rule_id"], "bbbbbbbb-0000-0000-0000-000000000002");
    assert_eq!(lines[0]["host"], "ws-1");
    assert_eq!(lines[0]["event"]["correlation_value"], 3.0);
    // The detection names the file holding the burst, though a later file
    // of the same host was read after it.
    let after = env.file(
        "after.ndjson",
        &whoami("ws-1", "2023-03-23T09:00:00Z", "whoami"),
    );
    let (code, lines, stderr) =
        hunt_jsonl(&["--rules", path(&rules), "--", path(&after), path(&logs)]);
    assert_eq!((code, lines.len()), (Some(1), 1), "{lines:#?} {stderr}");
    assert_eq!(lines[0]["file"], path(&logs), "{:#}", lines[0]);
    // Three runs in three minutes, but the filter excludes one: two remain.
    let filtered = env.file(
        "filtered.ndjson",
        &[
            whoami("ws-1", "2023-03-22T10:00:00Z", "whoami"),
            whoami("ws-1", "2023-03-22T10:01:00Z", "whoami inventory"),
            whoami("ws-1", "2023-03-22T10:02:00Z", "whoami"),
        ]
        .join("\n"),
    );
    let (code, lines, stderr) = hunt_jsonl(&["--rules", path(&rules), "--", path(&filtered)]);
    assert_eq!((code, lines.len()), (Some(0), 0), "{lines:#?} {stderr}");

    // Stored telemetry first, then the rules: the retro-hunt correlates.
    env.ok(&["tenant", "add", "acme"]);
    env.ok(&["ingest", "--tenant", "acme", path(&logs)]);
    let report = env.json(&["rules", "import", "--output", "json", path(&rules)]);
    assert_eq!(report["compiled"], 3, "{report:#}");
    let alerts = env.alerts(&["--kind", "sigma"]);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["source"], "bbbbbbbb-0000-0000-0000-000000000002");
    assert_eq!(alerts[0]["severity"], "high");
    assert_eq!(alerts[0]["endpoint"], "ws-1");
    // New telemetry is correlated live.
    let later = env.file("later.ndjson", &burst("ws-2", "2023-03-24"));
    env.ok(&["ingest", "--tenant", "acme", path(&later)]);
    let alerts = env.alerts(&["--kind", "sigma"]);
    assert_eq!(alerts.len(), 2, "one alert per endpoint: {alerts:#?}");
    for a in &alerts {
        assert_eq!(a["source"], "bbbbbbbb-0000-0000-0000-000000000002");
        assert_eq!(a["count"], 3, "{a:#?}");
    }
    assert!(alerts.iter().any(|a| a["endpoint"] == "ws-2"));
    // A burst split over two ingest runs: the window carries over.
    let part = |name: &str, times: &[&str]| {
        let lines: Vec<String> = times
            .iter()
            .map(|t| whoami("ws-3", &format!("2023-03-25T{t}Z"), "whoami"))
            .collect();
        env.file(name, &lines.join("\n"))
    };
    env.ok(&[
        "ingest",
        "--tenant",
        "acme",
        path(&part("p1.ndjson", &["10:00:00", "10:01:00"])),
    ]);
    assert!(
        !env.alerts(&["--kind", "sigma"])
            .iter()
            .any(|a| a["endpoint"] == "ws-3")
    );
    env.ok(&[
        "ingest",
        "--tenant",
        "acme",
        path(&part("p2.ndjson", &["10:02:00"])),
    ]);
    assert!(
        env.alerts(&["--kind", "sigma"])
            .iter()
            .any(|a| a["endpoint"] == "ws-3"),
        "the second run completes the burst"
    );
}

#[test]
fn sigmahq_linux_and_macos_rules_fire_on_ecs_events_from_those_hosts() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sigma/rules");
    if !rules.exists() {
        eprintln!("skipped: {} is absent", rules.display());
        return;
    }
    let env = Env::new();
    let process = |host: &str, os: &str, exe: &str, command: &str| {
        format!(
            r#"{{"@timestamp":"2023-03-22T10:00:00Z","host":{{"name":"{host}","os":{{"family":"{os}"}}}},"event":{{"category":["process"],"type":["start"]}},"process":{{"executable":"{exe}","command_line":"{command}","parent":{{"executable":"/bin/sh"}}}}}}"#
        )
    };
    let logs = env.file(
        "unix.ndjson",
        &[
            process(
                "srv-1",
                "linux",
                "/usr/bin/curl",
                "curl -s http://example.com/x.sh",
            ),
            process(
                "mac-1",
                "macos",
                "/usr/bin/osascript",
                "osascript -e display dialog",
            ),
        ]
        .join("\n"),
    );
    let linux = rules.join("linux");
    let macos = rules.join("macos");
    let (code, lines, stderr) =
        hunt_jsonl(&["--rules", path(&linux), path(&macos), "--", path(&logs)]);
    assert_eq!(code, Some(1), "{stderr}");
    let fired = |host: &str, title: &str| {
        lines.iter().any(|l| {
            l["host"] == host && l["rule_title"].as_str().is_some_and(|t| t.contains(title))
        })
    };
    assert!(fired("srv-1", "Curl Usage on Linux"), "{lines:#?}");
    assert!(fired("mac-1", "AppleScript"), "{lines:#?}");
    assert!(
        lines
            .iter()
            .all(|l| l["host"] != "srv-1" || !l["rule_title"].as_str().unwrap().contains("MacOS")),
        "a macOS rule fired on a Linux host: {lines:#?}"
    );
}

/// SigmaHQ's DNS-server rules fire on the `DNS Server` log (a plugin DLL
/// that failed to load, a refused zone transfer); rules whose logsource no
/// reader produces are named when the hunt loads them, not left silent.
#[test]
fn sigmahq_dns_server_rules_fire_and_unfeedable_rules_are_reported() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sigma/rules");
    if !rules.exists() {
        eprintln!("skipped: {} is absent", rules.display());
        return;
    }
    let env = Env::new();
    let dns_server = |id: u32, record: u32, data: &str| {
        format!(
            r##"{{"Event":{{"System":{{"Provider":{{"#attributes":{{"Name":"Microsoft-Windows-DNS-Server-Service"}}}},"EventID":{id},"TimeCreated":{{"#attributes":{{"SystemTime":"2023-03-22T10:00:0{record}Z"}}}},"EventRecordID":{record},"Channel":"DNS Server","Computer":"dc-1.corp.example"}},"EventData":{{{data}}}}}}}"##
        )
    };
    let logs = env.file(
        "dns-server.json",
        &[
            dns_server(150, 1, r#""param1":"C:\\Windows\\Temp\\evil.dll""#),
            dns_server(6004, 2, r#""param1":"10.9.9.9","param2":"corp.example""#),
            // Not one of the rules' events.
            dns_server(2, 3, ""),
        ]
        .join("\n"),
    );
    let dns = rules.join("windows/builtin/dns_server");
    let aws = rules.join("cloud/aws");
    let (code, lines, stderr) = hunt_jsonl(&["--rules", path(&dns), path(&aws), "--", path(&logs)]);
    assert_eq!(code, Some(1), "{stderr}");
    let mut fired: Vec<(&str, i64)> = lines
        .iter()
        .map(|l| {
            (
                l["rule_id"].as_str().unwrap(),
                l["record_id"].as_i64().unwrap(),
            )
        })
        .collect();
    fired.sort();
    assert_eq!(
        fired,
        [
            ("6d444368-6da1-43fe-b2fc-44202430480e", 2),
            ("cbe51394-cd93-4473-b555-edf0144952d9", 1),
        ],
        "{lines:#?}"
    );
    assert!(
        stderr.contains("rules can never fire") && stderr.contains("aws/cloudtrail: "),
        "{stderr}"
    );
    assert!(!stderr.contains("dns-server"), "{stderr}");
    // Imported, the same rules are reported the same way.
    let report = env.json(&[
        "rules",
        "import",
        "--output",
        "json",
        path(&dns),
        path(&aws),
    ]);
    assert!(
        report["unproducible"]["aws/cloudtrail"].as_u64().unwrap() > 10,
        "{report:#}"
    );
    assert!(report["unproducible"].get("windows/dns-server").is_none());
}

/// Intel as analysts write it: a quoted publication date reads; a file
/// that fails beside one that reads makes the import exit 2, with the
/// whole error on stderr, and the readable one is still imported.
#[test]
fn a_failing_intel_file_fails_the_import_and_quoted_dates_read() {
    let env = Env::new();
    let quoted = env.file(
        "3cx.toml",
        "id = \"TC-2023-0001\"\ntitle = \"3CX\"\npublished = \"2023-03-30\"\n[[indicators]]\ntype = \"domain\"\nvalue = \"akamaicontainer.com\"\n",
    );
    let broken = env.file(
        "broken.toml",
        &format!(
            "id = \"TC-2\"\ntitle = \"{}\"\npublished = \"last tuesday\"\n",
            "x".repeat(300)
        ),
    );
    let out = env.run(&["intel", "import", path(&quoted), path(&broken)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("broken.toml: line 3: published \"last tuesday\" is not a date"),
        "{stderr}"
    );
    let advisories = env.json(&["intel", "advisories", "--format", "json"]);
    assert_eq!(advisories[0]["published"], "2023-03-30", "{advisories:#}");
    assert_eq!(
        env.json(&["intel", "list", "--format", "json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// Commands that read or change a data directory say there is none
/// instead of creating an empty one.
#[test]
fn commands_on_a_missing_data_directory_fail_without_creating_it() {
    let env = Env::new();
    for args in [
        &["alerts"][..],
        &["exposure"],
        &["intel", "list"],
        &["intel", "advisories"],
        &["tenant", "list"],
        &["audit"],
        &["allow", "list"],
        &["rules", "list"],
        &["campaigns"],
        &["drift"],
        &["alert", "status", "1", "resolved"],
        &["allow", "remove", "1"],
        &["network", "internal", "list"],
        &["network", "internal", "remove", "1"],
    ] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("no turncoat data directory"),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!env.data().exists(), "{args:?} created the data directory");
    }
}

#[test]
fn intel_that_cannot_be_read_is_rejected_never_misread() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let inventory = env.file(
        "osq.log",
        r#"{"name":"programs","hostIdentifier":"ws-01","unixTime":1679000000,"columns":{"name":"3CX Desktop App","version":"18.12.416"},"action":"added"}"#,
    );
    env.ok(&["ingest", "--tenant", "acme", path(&inventory)]);

    // A range that does not parse would mean "every version": the whole
    // advisory is refused with its line, and nothing is exposed. The
    // file has no .toml name, so the content alone says it is TOML.
    let unparsable = env.file(
        "advisory.txt",
        "id = \"TC-9\"\ntitle = \"t\"\n[[affected]]\nproduct = \"3CX Desktop App\"\nranges = [{ introduced = \"zzz\" }]\n",
    );
    let out = env.run(&["intel", "import", path(&unparsable)]);
    let stderr = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("advisory.txt: line 5:"), "{stderr}");
    assert!(stderr.contains("\"zzz\""), "{stderr}");
    let empty_range = env.file(
        "empty.toml",
        "id = \"TC-10\"\ntitle = \"t\"\n[[affected]]\nproduct = \"3CX Desktop App\"\nranges = [{}]\n",
    );
    assert_eq!(
        env.run(&["intel", "import", path(&empty_range)])
            .status
            .code(),
        Some(2)
    );
    assert!(env.alerts(&["--kind", "exposure"]).is_empty());
    assert_eq!(
        env.json(&["exposure", "--format", "json"]),
        serde_json::json!([])
    );

    // A TOML syntax error is TOML's error at its line, not a CSV complaint.
    let broken = env.file(
        "broken.txt",
        "# 3CX\nid = \"TC-11\ntitle = \"t\"\n[[affected]]\n",
    );
    let out = env.run(&["intel", "import", path(&broken)]);
    let stderr = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("broken.txt: line 2:"), "{stderr}");
    assert!(!stderr.contains("recognisable"), "{stderr}");

    // Broken addresses are rejected, withdrawn attributes ignored.
    let misp = env.file(
        "misp.json",
        r#"{"Event":{"info":"x","Attribute":[
            {"type":"ip-src","value":"1.2.3.4/33","to_ids":true},
            {"type":"ip-dst","value":"10.0.0.0/-1","to_ids":true},
            {"type":"domain","value":"withdrawn.example.com","to_ids":true,"deleted":true},
            {"type":"domain","value":"not-for-ids.example.com","to_ids":"0"},
            {"type":"domain","value":"kept.example.com","to_ids":"1"}]}}"#,
    );
    let out = env.run(&["intel", "import", path(&misp)]);
    let stderr = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stderr.contains("\"1.2.3.4/33\""), "{stderr}");
    assert!(stderr.contains("\"10.0.0.0/-1\""), "{stderr}");
    let listed = env.json(&["intel", "list", "--format", "json"]);
    let values: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["kept.example.com"], "{listed:#}");
}

#[test]
fn the_saved_indicator_index_follows_every_intel_change_and_survives_damage() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let first = env.file("first.csv", "type,value\ndomain,evil-one.example.com\n");
    env.ok(&["intel", "import", path(&first)]);
    let cache = env.data().join("cache/indicator-index");
    assert!(cache.exists(), "the import saves the live index");

    let day = |n: u32, name: &str| {
        let f = env.file(
            &format!("dns-{n}.ndjson"),
            &dns("ws-01", &format!("2023-03-{n:02}T08:00:00Z"), name),
        );
        env.ok(&["ingest", "--tenant", "acme", path(&f)]);
    };
    day(10, "evil-one.example.com");
    assert_eq!(env.alerts(&[]).len(), 1);

    // New intel: the saved index is stale and must not be used.
    let second = env.file("second.csv", "type,value\ndomain,evil-two.example.com\n");
    env.ok(&["intel", "import", path(&second)]);
    day(11, "evil-two.example.com");
    let sources: Vec<String> = env
        .alerts(&[])
        .iter()
        .map(|a| a["source"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        sources.contains(&"evil-two.example.com".to_owned()),
        "{sources:?}"
    );

    // A damaged file is rebuilt, never trusted.
    let saved = std::fs::read(&cache).unwrap();
    let mut damaged = saved.clone();
    let middle = damaged.len() / 2;
    damaged.truncate(middle);
    std::fs::write(&cache, &damaged).unwrap();
    day(12, "evil-one.example.com");
    let alerts = env.alerts(&[]);
    assert!(
        alerts
            .iter()
            .any(|a| a["source"] == "evil-one.example.com"
                && a["last_seen"] == "2023-03-12T08:00:00Z"),
        "{alerts:#?}"
    );
    assert_eq!(
        std::fs::read(&cache).unwrap().len(),
        saved.len(),
        "saved again whole"
    );
}
