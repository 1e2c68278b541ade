//! `turncoat serve` through the binary: probes, bearer tokens, tenant
//! isolation, the alert queue's pages, problem details, metrics, and a
//! clean stop on SIGTERM.

mod common;

use std::time::{Duration, Instant};

use common::served::{Served, Tokens, analyst_of_acme, form, last_line, two_tenants};
use common::{Env, WHOAMI_RULES, dns, path};
use serde_json::Value;

#[test]
fn the_api_answers_each_token_for_its_tenants_only() {
    let env = Env::new();
    let Tokens {
        admin,
        beta,
        sensor,
    } = two_tenants(&env);
    let served = Served::start(&env);
    assert_eq!(served.get("/healthz", None).0, 200);
    assert_eq!(served.get("/readyz", None).0, 200);

    // No token, a made-up one, one that may only send telemetry.
    let (status, head, body) = served.get("/api/v1/alerts", None);
    assert_eq!(status, 401, "{body}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (problem["status"].as_u64(), problem["title"].as_str()),
        (Some(401), Some("Unauthorized"))
    );
    assert_eq!(served.get("/api/v1/alerts", Some("tct_00")).0, 401);
    assert_eq!(served.get("/api/v1/alerts", Some(&sensor)).0, 403);

    // The admin's queue is the CLI's, row for row and field for field.
    let cli = env.json(&["alerts", "--format", "json"]);
    let all = served.json("/api/v1/alerts", &admin);
    assert_eq!(all["items"], cli);
    assert!(all["next"].is_null());
    let rows = cli.as_array().unwrap();
    assert!(rows.len() >= 4, "{cli:#}");
    assert!(rows.iter().any(|r| r["tenant"] == "beta"));

    // A customer's token: its tenant, nothing of the other, not even
    // whether a tenant of that name exists.
    let mine = served.json("/api/v1/alerts", &beta);
    let items = mine["items"].as_array().unwrap();
    assert!(!items.is_empty());
    // Alerts of beta, and the campaign it shares with acme cut to beta's
    // own members.
    assert!(
        items.iter().all(|a| a["tenant"] == "beta"
            || (a["kind"] == "campaign" && a["tenants"] == serde_json::json!(["beta"]))),
        "{mine:#}"
    );
    assert!(!mine.to_string().contains("acme") && !mine.to_string().contains("ws-09"));
    let (status, _, other) = served.get("/api/v1/alerts?tenant=acme", Some(&beta));
    let (status_missing, _, missing) = served.get("/api/v1/alerts?tenant=nobody", Some(&beta));
    assert_eq!((status, status_missing), (404, 404));
    assert_eq!(other, missing);
    let tenants = served.json("/api/v1/tenants", &beta);
    assert_eq!(tenants.as_array().unwrap().len(), 1);
    assert_eq!(tenants[0]["name"], "beta");

    // Pages of one, followed by their cursors, are the whole queue.
    let paged = served.every_page("/api/v1/alerts", 1, &admin);
    assert_eq!(&paged, rows);
    // Newest first: campaigns, then alerts by last seen (latest first)
    // and id, page after page.
    let newest = served.every_page("/api/v1/alerts?sort=newest", 1, &admin);
    assert_eq!(newest.len(), rows.len());
    let key = |a: &Value| {
        (
            a["kind"] != "campaign",
            std::cmp::Reverse(a["last_seen"].as_str().unwrap().to_owned()),
            a["id"].as_i64().unwrap(),
        )
    };
    assert!(
        newest.windows(2).all(|w| key(&w[0]) < key(&w[1])),
        "{newest:#?}"
    );
    assert_eq!(
        served.get("/api/v1/alerts?sort=oldest", Some(&admin)).0,
        400
    );

    // Filters, and what they refuse.
    let acme_only = served.json("/api/v1/alerts?tenant=acme&kind=ioc&q=WS-10", &admin);
    let hits = acme_only["items"].as_array().unwrap();
    assert!(
        !hits.is_empty() && hits.iter().all(|a| a["endpoint"] == "ws-10"),
        "{acme_only:#}"
    );
    let (status, _, body) = served.get("/api/v1/alerts?kind=bogus", Some(&admin));
    assert_eq!(status, 400);
    assert!(body.contains("unknown alert kind"), "{body}");
    assert_eq!(served.get("/api/v1/alerts?colour=red", Some(&admin)).0, 400);
    assert_eq!(served.get("/api/v1/nowhere", Some(&admin)).0, 404);

    // Revoked at the command line, refused by the server at once.
    env.ok(&["token", "revoke", "2"]);
    let (status, _, body) = served.get("/api/v1/alerts", Some(&beta));
    assert_eq!(status, 401);
    assert!(body.contains("revoked"), "{body}");

    let (status, head, metrics) = served.get("/metrics", None);
    assert_eq!(status, 200);
    assert!(head.contains("openmetrics-text"), "{head}");
    for expected in [
        r#"turncoat_http_requests_total{method="GET",route="/api/v1/alerts",status="401"}"#,
        r#"turncoat_http_requests_total{method="GET",route="/api/v1/alerts",status="403"}"#,
        r#"turncoat_rejected_requests_total{reason="unauthenticated"} 1"#,
        r#"turncoat_rejected_requests_total{reason="token_revoked"} 1"#,
    ] {
        assert!(metrics.contains(expected), "{expected} in\n{metrics}");
    }
}

#[test]
fn exposure_and_one_alert_are_the_cli_s_and_stay_in_scope() {
    let env = Env::new();
    let tokens = two_tenants(&env);
    // A status change, for the alert's history.
    let beta_alerts = env.alerts(&["--tenant", "beta", "--kind", "ioc"]);
    let beta_id = beta_alerts[0]["id"].as_i64().unwrap();
    env.ok(&["alert", "status", &beta_id.to_string(), "acknowledged"]);
    let served = Served::start(&env);

    let cli = env.json(&["exposure", "--format", "json"]);
    assert_eq!(cli.as_array().unwrap().len(), 3, "{cli:#}");
    let all = served.json("/api/v1/exposure", &tokens.admin);
    assert_eq!(all["items"], cli);
    let paged = served.every_page("/api/v1/exposure", 2, &tokens.admin);
    assert_eq!(paged, cli.as_array().unwrap().clone());
    let mine = served.json("/api/v1/exposure?advisory=TC-2023-0001", &tokens.beta);
    let rows = mine["items"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0]["tenant"].as_str(), rows[0]["endpoint"].as_str()),
        (Some("beta"), Some("srv-2"))
    );
    assert_eq!(
        served
            .get("/api/v1/exposure?advisory=nope", Some(&tokens.admin))
            .0,
        404
    );
    assert_eq!(
        served
            .get("/api/v1/exposure?cursor=zz", Some(&tokens.admin))
            .0,
        400
    );
    assert_eq!(served.get("/api/v1/exposure", Some(&tokens.sensor)).0, 403);

    // One alert: the CLI's row, its evidence, its history.
    let detail = served.json(&format!("/api/v1/alerts/{beta_id}"), &tokens.beta);
    let mut row = detail.clone();
    let history = row.as_object_mut().unwrap().remove("history").unwrap();
    let cli_row = env
        .alerts(&["--tenant", "beta", "--kind", "ioc"])
        .into_iter()
        .find(|a| a["id"] == beta_id)
        .unwrap();
    assert_eq!(row, cli_row);
    assert_eq!(detail["evidence"]["observed"], "msstorageboxes.com");
    assert_eq!(history.as_array().unwrap().len(), 1, "{history:#}");
    assert_eq!(history[0]["actor"], "cli");
    assert_eq!(
        (&history[0]["action"], &history[0]["value"]),
        (&Value::from("status"), &Value::from("acknowledged"))
    );

    // Every other id, guessed by counting, reads as missing: the same
    // answer as an id nobody has.
    let (_, _, nobody) = served.get("/api/v1/alerts/999999", Some(&tokens.beta));
    let highest = env
        .alerts(&[])
        .iter()
        .filter_map(|a| a["id"].as_i64())
        .max()
        .unwrap();
    let mut seen = 0;
    for id in 1..=highest + 1 {
        let (status, _, body) = served.get(&format!("/api/v1/alerts/{id}"), Some(&tokens.beta));
        if status == 200 {
            assert_eq!(
                serde_json::from_str::<Value>(&body).unwrap()["tenant"],
                "beta"
            );
            seen += 1;
        } else {
            assert_eq!((status, &body), (404, &nobody), "alert {id}");
        }
    }
    let beta_alerts = env.alerts(&["--tenant", "beta"]);
    assert_eq!(
        seen,
        beta_alerts
            .iter()
            .filter(|a| a["kind"] != "campaign")
            .count()
    );
    for path in [
        "/api/v1/alerts/-1",
        "/api/v1/alerts/1%20OR%201=1",
        "/api/v1/alerts/..%2Fmetrics",
    ] {
        assert_eq!(served.get(path, Some(&tokens.beta)).0, 404, "{path}");
    }
}

#[test]
fn admins_add_tenants_and_lists_keep_to_the_callers_tenants() {
    let env = Env::new();
    let tokens = two_tenants(&env);
    env.ok(&[
        "allow",
        "add",
        "--destination",
        "ntp.ubuntu.com",
        "--reason",
        "time sync",
    ]);
    env.ok(&[
        "allow",
        "add",
        "--tenant",
        "acme",
        "--destination",
        "acme-only.example",
        "--reason",
        "their proxy",
    ]);
    let served = Served::start(&env);

    let (status, _, body) = served.post("/api/v1/tenants", &tokens.admin, r#"{"name":"gamma"}"#);
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["name"],
        "gamma"
    );
    let (status, _, body) = served.post("/api/v1/tenants", &tokens.admin, r#"{"name":"Gamma"}"#);
    assert_eq!(status, 409, "{body}");
    for (token, json, expected) in [
        (&tokens.beta, r#"{"name":"delta"}"#, 403),
        (&tokens.sensor, r#"{"name":"delta"}"#, 403),
        (&tokens.admin, r#"{"name":"bad name"}"#, 400),
        (&tokens.admin, r#"{"name":"x","extra":1}"#, 400),
        (&tokens.admin, "not json", 400),
    ] {
        let (status, head, body) = served.post("/api/v1/tenants", token, json);
        assert_eq!(status, expected, "{json}: {body}");
        assert!(head.contains("application/problem+json"), "{head}");
    }
    let listed = env.json(&["tenant", "list", "--format", "json"]);
    assert_eq!(
        listed.as_array().unwrap().len(),
        3,
        "gamma is stored, delta is not"
    );
    let audit = env.ok(&["audit", "--format", "json"]);
    assert!(
        audit.contains(r#""actor": "token:1""#),
        "the admin's token is the actor: {audit}"
    );

    // The campaign spans acme and beta: the admin sees it whole, beta
    // cut to its own member alerts, naming and counting no other tenant.
    let campaigns = served.json("/api/v1/campaigns", &tokens.admin);
    let items = campaigns["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{campaigns:#}");
    assert_eq!(items[0]["source"], "msstorageboxes.com");
    assert_eq!(items[0]["beyond_scope"], false);
    let theirs = served.json("/api/v1/campaigns", &tokens.beta);
    let cut = &theirs["items"][0];
    assert_eq!(cut["source"], "msstorageboxes.com", "{theirs:#}");
    assert_eq!(cut["beyond_scope"], true);
    assert_eq!(cut["tenants"], serde_json::json!(["beta"]));
    assert_eq!(cut["dismissed_tenants"], 0);
    let beta_ids: Vec<Value> = env
        .alerts(&["--tenant", "beta"])
        .iter()
        .filter(|a| a["kind"] != "campaign")
        .map(|a| a["id"].clone())
        .collect();
    assert!(
        cut["member_alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|id| beta_ids.contains(id)),
        "{theirs:#}"
    );
    assert!(!theirs.to_string().contains("acme"), "{theirs:#}");

    // Global audit entries (users, intel) may name any tenant: admins only.
    let all = served.json("/api/v1/audit?limit=1000", &tokens.admin);
    assert!(all.to_string().contains("user.add"));
    let mine = served.json("/api/v1/audit?limit=1000", &tokens.beta);
    let entries = mine["items"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(entries.iter().all(|e| e["tenant"] == "beta"), "{mine:#}");
    assert!(!mine.to_string().contains("acme"));
    let paged = served.every_page("/api/v1/audit", 3, &tokens.admin);
    let whole = served.json("/api/v1/audit?limit=1000", &tokens.admin);
    assert_eq!(&paged, whole["items"].as_array().unwrap());

    let allow = served.json("/api/v1/allowlists", &tokens.beta);
    let values: Vec<&str> = allow["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["ntp.ubuntu.com"]);
    let every = served.json("/api/v1/allowlists", &tokens.admin);
    assert_eq!(every["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        served.json("/api/v1/rules", &tokens.beta)["items"],
        serde_json::json!([])
    );
    assert_eq!(
        served.get("/api/v1/rules?cursor=00", Some(&tokens.beta)).0,
        400
    );
}

#[test]
fn intel_sent_to_the_api_is_imported_and_retro_hunted() {
    let env = Env::new();
    let tokens = two_tenants(&env);
    let f = env.file(
        "late.ndjson",
        &dns("srv-3", "2023-03-27T10:00:00Z", "cdn.late-intel.net"),
    );
    env.json(&["ingest", "--tenant", "beta", "--output", "json", path(&f)]);
    let served = Served::start(&env);
    let search = "/api/v1/alerts?q=late-intel";
    assert!(
        served.json(search, &tokens.beta)["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let csv = "indicator,type\nlate-intel(.)net,hostname\n";
    let (status, _, body) = served.post("/api/v1/intel?name=vendor-feed.csv", &tokens.admin, csv);
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["indicators_new"], 1, "{report:#}");
    let found = served.json(search, &tokens.beta);
    let items = found["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        1,
        "the retro-hunt found the earlier contact: {found:#}"
    );
    assert_eq!(items[0]["endpoint"], "srv-3");
    assert_eq!(report["files"][0]["file"], "vendor-feed.csv");
    // The same file again changes nothing.
    let (_, _, body) = served.post("/api/v1/intel?name=vendor-feed.csv", &tokens.admin, csv);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["indicators_new"],
        0
    );

    for (url, token, body, expected) in [
        ("/api/v1/intel", &tokens.beta, csv, 403),
        ("/api/v1/intel", &tokens.sensor, csv, 403),
        ("/api/v1/intel?format=bogus", &tokens.admin, csv, 400),
        (
            "/api/v1/intel?name=../../etc/passwd",
            &tokens.admin,
            csv,
            400,
        ),
        (
            "/api/v1/intel?name=x.json&format=stix",
            &tokens.admin,
            "{not json",
            400,
        ),
    ] {
        let (status, _, answer) = served.post(url, token, body);
        assert_eq!(status, expected, "{url}: {answer}");
    }
    let audit = env.ok(&["audit", "--format", "json"]);
    assert!(
        audit.contains("token:1"),
        "the import is audited with its token"
    );

    // The stored intel, as `intel list` prints it, page by page.
    let listed = env.json(&["intel", "list", "--format", "json"]);
    assert_eq!(
        served.every_page("/api/v1/intel", 2, &tokens.beta),
        listed.as_array().unwrap().clone()
    );

    // Sigma rules the same way.
    let (status, _, body) = served.post(
        "/api/v1/rules?name=whoami.yml&exclude_status=deprecated",
        &tokens.admin,
        WHOAMI_RULES,
    );
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("/tmp"), "{body}");
    let stored = served.json("/api/v1/rules", &tokens.beta);
    let ids: Vec<&str> = stored["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let cli = env.json(&["rules", "list", "--format", "json"]);
    assert_eq!(ids.len(), cli.as_array().unwrap().len(), "{cli:#}");
    assert!(
        ids.contains(&"bbbbbbbb-0000-0000-0000-000000000001"),
        "{ids:?}"
    );
    for (url, token, expected) in [
        ("/api/v1/rules?name=whoami.yml", &tokens.beta, 403),
        ("/api/v1/rules?name=whoami.txt", &tokens.admin, 400),
        ("/api/v1/rules?name=../w.yml", &tokens.admin, 400),
    ] {
        assert_eq!(served.post(url, token, WHOAMI_RULES).0, expected, "{url}");
    }
}

#[test]
fn triage_needs_the_right_to_triage_and_a_reason_to_dismiss() {
    let env = Env::new();
    let tokens = two_tenants(&env);
    let writer = last_line(&env.ok(&["token", "create", "--tenant", "beta", "--scope", "write"]));
    let beta_id = env.alerts(&["--tenant", "beta", "--kind", "ioc"])[0]["id"]
        .as_i64()
        .unwrap();
    let acme_id = env.alerts(&["--tenant", "acme", "--kind", "ioc"])[0]["id"]
        .as_i64()
        .unwrap();
    let served = Served::start(&env);
    let url = format!("/api/v1/alerts/{beta_id}/status");

    // Reading is not triaging.
    let (status, _, body) = served.post(&url, &tokens.beta, r#"{"status":"acknowledged"}"#);
    assert_eq!(status, 403, "{body}");
    // A dismissal says why.
    let (status, _, body) = served.post(&url, &writer, r#"{"status":"false-positive"}"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("needs a reason"), "{body}");
    let (status, _, body) = served.post(&url, &writer, r#"{"status":"allowlisted","reason":"x"}"#);
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = served.post(
        &url,
        &writer,
        r#"{"status":"false-positive","reason":"the vendor's update CDN"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let detail: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(detail["status"], "false-positive");
    assert_eq!(detail["status_reason"], "the vendor's update CDN");
    let history = detail["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["actor"], "token:4");
    assert_eq!(
        (&history[0]["value"], &history[0]["note"]),
        (
            &Value::from("false-positive"),
            &Value::from("the vendor's update CDN")
        )
    );
    // The CLI reads the same state.
    let cli = env.alerts(&["--tenant", "beta", "--kind", "ioc"]);
    assert_eq!(cli[0]["status"], "false-positive");

    // Another tenant's alert reads as missing, like one nobody has.
    let (other, _, other_body) = served.post(
        &format!("/api/v1/alerts/{acme_id}/status"),
        &writer,
        r#"{"status":"resolved"}"#,
    );
    let (missing, _, missing_body) = served.post(
        "/api/v1/alerts/999999/status",
        &writer,
        r#"{"status":"resolved"}"#,
    );
    assert_eq!((other, missing), (404, 404));
    assert_eq!(other_body, missing_body);
    assert_eq!(
        env.alerts(&["--tenant", "acme", "--kind", "ioc"])[0]["status"],
        "new"
    );
    assert_eq!(served.post(&url, &writer, r#"{"status":"bogus"}"#).0, 400);

    // The CLI asks the same of a dismissal.
    let out = env.run(&["alert", "status", &acme_id.to_string(), "suppressed"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("setting suppressed needs a reason"));
}

#[test]
fn allowlist_entries_are_added_and_removed_within_the_callers_tenants() {
    let env = Env::new();
    let tokens = two_tenants(&env);
    let writer = last_line(&env.ok(&["token", "create", "--tenant", "beta", "--scope", "write"]));
    let served = Served::start(&env);
    let add = |token: &str, json: &str| served.post("/api/v1/allowlists", token, json);

    let (status, _, body) = add(
        &writer,
        r#"{"tenant":"beta","kind":"destination","value":"NTP.ubuntu.com.","reason":"time sync"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let own: Value = serde_json::from_str(&body).unwrap();
    for (token, json, expected) in [
        (
            &writer,
            r#"{"tenant":"beta","kind":"destination","value":"x.com","reason":" "}"#,
            400,
        ),
        (
            &writer,
            r#"{"tenant":"acme","kind":"destination","value":"x.com","reason":"r"}"#,
            404,
        ),
        (
            &writer,
            r#"{"kind":"destination","value":"x.com","reason":"r"}"#,
            403,
        ),
        (
            &tokens.beta,
            r#"{"tenant":"beta","kind":"destination","value":"x.com","reason":"r"}"#,
            403,
        ),
        (
            &writer,
            r#"{"tenant":"beta","kind":"port","value":"x.com","reason":"r"}"#,
            400,
        ),
        (
            &writer,
            r#"{"tenant":"beta","kind":"destination","value":"not a domain!","reason":"r"}"#,
            400,
        ),
    ] {
        let (status, _, body) = add(token, json);
        assert_eq!(status, expected, "{json}: {body}");
    }
    let (status, _, body) = add(
        &tokens.admin,
        r#"{"kind":"source","value":"10.9.0.0/16","reason":"scanner"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let global: Value = serde_json::from_str(&body).unwrap();
    let (_, _, body) = add(
        &tokens.admin,
        r#"{"tenant":"acme","kind":"destination","value":"acme-proxy.net","reason":"their proxy"}"#,
    );
    let theirs: Value = serde_json::from_str(&body).unwrap();

    let seen = served.json("/api/v1/allowlists", &writer);
    let values: Vec<&str> = seen["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert_eq!(
        values,
        ["ntp.ubuntu.com", "10.9.0.0/16"],
        "normalised; acme's entry unseen"
    );

    let delete = |token: &str, id: &Value| {
        served
            .request(
                "DELETE",
                &format!("/api/v1/allowlists/{id}"),
                Some(token),
                None,
            )
            .0
    };
    assert_eq!(delete(&writer, &theirs["id"]), 404);
    assert_eq!(delete(&writer, &global["id"]), 403);
    assert_eq!(delete(&tokens.beta, &own["id"]), 403);
    assert_eq!(delete(&writer, &own["id"]), 204);
    assert_eq!(delete(&writer, &own["id"]), 404);
    assert_eq!(delete(&tokens.admin, &global["id"]), 204);
    let left = env.json(&["allow", "list", "--format", "json"]);
    let left: Vec<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["acme-proxy.net"]);
    let audit = env.ok(&["audit", "--format", "json"]);
    assert!(
        audit.contains("allow.add") && audit.contains("token:4"),
        "{audit}"
    );
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let mut served = Served::start(&env);
    assert_eq!(served.get("/healthz", None).0, 200);
    served.terminate();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = served.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn serve_refuses_a_missing_data_directory() {
    let env = Env::new();
    let out = env.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no turncoat data directory"));
}

#[test]
fn https_with_the_certificate_given() {
    let (Ok(openssl), Ok(curl)) = (which("openssl"), which("curl")) else {
        eprintln!("skipped: openssl and curl are needed to make and check a certificate");
        return;
    };
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let cert = env.dir.path().join("cert.pem");
    let key = env.dir.path().join("key.pem");
    let made = std::process::Command::new(openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );

    let served = Served::start_with(
        &env,
        &["--tls-cert", path(&cert), "--tls-key", path(&key)],
        "https",
    );
    let fetched = std::process::Command::new(&curl)
        .args(["--silent", "--show-error", "--cacert"])
        .arg(&cert)
        .arg(format!("https://{}/healthz", served.addr))
        .output()
        .unwrap();
    assert!(
        fetched.status.success(),
        "{}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&fetched.stdout), "ok\n");
    // Plain HTTP to the TLS port gets no answer it could mistake for one.
    let (status, _, _) = std::panic::catch_unwind(|| served.get("/healthz", None)).unwrap_or((
        0,
        String::new(),
        String::new(),
    ));
    assert_ne!(status, 200);

    // A key that cannot be read stops it before it listens.
    let out = env.run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        path(&cert),
        "--tls-key",
        "/nonexistent/key.pem",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/key.pem"));
    assert!(out.stdout.is_empty(), "nothing said listening");
}

/// The path of a program on `PATH`.
fn which(program: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .ok_or(())
}

#[test]
fn triage_remembers_assignments_comments_and_resurfaces_on_new_intel() {
    let env = Env::new();
    let tokens = two_tenants(&env);
    env.ok(&["user", "add", "ann", "--role", "analyst"]);
    env.ok(&["user", "add", "vic", "--role", "viewer", "--tenant", "acme"]);
    let alert = env.alerts(&["--tenant", "beta", "--kind", "ioc"])[0].clone();
    let id = alert["id"].as_i64().unwrap().to_string();
    assert_eq!(alert["source"], "msstorageboxes.com");

    // The CLI: assign (an analyst, not a viewer or nobody), comment, dismiss.
    env.ok(&["alert", "assign", &id, "ann"]);
    let refused = env.run(&["alert", "assign", &id, "vic"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no analyst or admin"));
    // Nor an analyst of acme only: beta's alert is not theirs to work.
    env.ok(&["user", "add", "al", "--role", "analyst", "--tenant", "acme"]);
    let refused = env.run(&["alert", "assign", &id, "al"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("\"al\" is not granted tenant beta"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    env.ok(&[
        "alert",
        "comment",
        &id,
        "asked the customer about this host",
    ]);
    env.ok(&[
        "alert",
        "status",
        &id,
        "false-positive",
        "--reason",
        "their backup tool",
    ]);
    assert_eq!(
        env.alerts(&["--tenant", "beta", "--kind", "ioc"])[0]["assignee"],
        "ann"
    );

    // New intel naming the same domain, from another vendor: the
    // dismissal is undone, and the history says why.
    let csv = env.file(
        "vendor2.csv",
        "indicator,type,comment\nmsstorageboxes.com,domain,3CX C2 (second vendor)\n",
    );
    let report = env.json(&["intel", "import", "--output", "json", path(&csv)]);
    let resurfaced: u64 = report["retro"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["resurfaced"].as_u64().unwrap())
        .sum();
    assert!(resurfaced >= 1, "{report:#}");
    let now = env
        .alerts(&["--tenant", "beta", "--kind", "ioc"])
        .into_iter()
        .find(|a| a["id"] == alert["id"])
        .unwrap();
    assert_eq!(now["status"], "new");
    let history = env.json(&["alert", "history", &id, "--format", "json"]);
    let actions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["assign", "comment", "status", "resurfaced"],
        "{history:#}"
    );
    assert_eq!(history[2]["note"], "their backup tool");
    assert!(
        history[3]["note"]
            .as_str()
            .unwrap()
            .starts_with("new intel names it"),
        "{history:#}"
    );

    // The API: the same history, assignment and comments by an analyst's
    // token; a viewer may not.
    let served = Served::start(&env);
    let ann = last_line(&env.ok(&["token", "create", "--user", "ann"]));
    let vic = last_line(&env.ok(&["token", "create", "--user", "vic"]));
    let detail = served.json(&format!("/api/v1/alerts/{id}"), &tokens.admin);
    assert_eq!(detail["history"], history);
    let (status, _, body) = served.post(
        &format!("/api/v1/alerts/{id}/comments"),
        &ann,
        r#"{"text":"seen again after the vendor's list"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let (status, _, body) = served.post(
        &format!("/api/v1/alerts/{id}/assign"),
        &ann,
        r#"{"assignee":null}"#,
    );
    assert_eq!(status, 200, "{body}");
    let detail: Value = serde_json::from_str(&body).unwrap();
    assert!(detail.get("assignee").is_none(), "{detail:#}");
    let last = detail["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    // A personal token acts as itself; `token list` names its user.
    assert_eq!(last["action"], "assign");
    assert!(
        last["actor"].as_str().unwrap().starts_with("token:"),
        "{last}"
    );
    let (status, _, _) = served.post(
        &format!("/api/v1/alerts/{id}/comments"),
        &vic,
        r#"{"text":"x"}"#,
    );
    assert_eq!(status, 403);
    let (status, _, body) = served.post(
        &format!("/api/v1/alerts/{id}/comments"),
        &ann,
        r#"{"text":"  "}"#,
    );
    assert_eq!(status, 400, "{body}");
}

#[test]
fn suppressions_hold_present_and_future_alerts_until_they_end() {
    let env = Env::new();
    let _tokens = two_tenants(&env);
    let status_of = |tenant: &str| -> Vec<(String, String)> {
        env.alerts(&["--tenant", tenant, "--kind", "ioc"])
            .into_iter()
            .filter(|a| a["source"] == "msstorageboxes.com")
            .map(|a| {
                (
                    a["endpoint"].as_str().unwrap().to_owned(),
                    a["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let out = env.ok(&[
        "suppress",
        "add",
        "--source",
        "MSSTORAGEBOXES.COM",
        "--tenant",
        "beta",
        "--kind",
        "ioc",
        "--reason",
        "the customer's sandbox",
        "--expires",
        "4s",
    ]);
    assert!(out.contains("1 alerts suppressed"), "{out}");
    assert_eq!(status_of("beta"), [("srv-1".into(), "suppressed".into())]);
    assert!(
        status_of("acme").iter().all(|(_, s)| s == "new"),
        "acme's stay open"
    );

    // A later match is born suppressed.
    let f = env.file(
        "beta-later.ndjson",
        &dns("srv-7", "2023-03-27T10:00:00Z", "msstorageboxes.com"),
    );
    env.ok(&["ingest", "--tenant", "beta", path(&f)]);
    let mut beta = status_of("beta");
    beta.sort();
    assert_eq!(
        beta,
        [
            ("srv-1".into(), "suppressed".into()),
            ("srv-7".into(), "suppressed".into())
        ]
    );
    let live = env.json(&["suppress", "list", "--format", "json"]);
    assert_eq!(live.as_array().unwrap().len(), 1, "{live:#}");
    assert_eq!(live[0]["reason"], "the customer's sandbox");
    assert_eq!(live[0]["owner"], "cli");

    // Refused: no reason, an expiry already past.
    let no_reason = env.run(&["suppress", "add", "--source", "x.example", "--reason", " "]);
    assert_eq!(no_reason.status.code(), Some(2));

    // Expired: both resurface, and their history says why.
    std::thread::sleep(std::time::Duration::from_secs(4));
    let live = env.json(&["suppress", "list", "--format", "json"]);
    assert_eq!(live.as_array().unwrap().len(), 0, "{live:#}");
    assert!(status_of("beta").iter().all(|(_, s)| s == "new"));
    let id = env.alerts(&["--tenant", "beta", "--kind", "ioc"])[0]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let history = env.json(&["alert", "history", &id, "--format", "json"]);
    let last = history.as_array().unwrap().last().unwrap();
    assert_eq!(last["action"], "resurfaced");
    assert_eq!(last["note"], "suppression 1 expired");

    // Removed: the alerts held come back at once.
    let out = env.ok(&[
        "suppress",
        "add",
        "--source",
        "msstorageboxes.com",
        "--reason",
        "noisy",
        "--expires",
        "never",
    ]);
    assert!(out.contains("4 alerts suppressed"), "{out}");
    let out = env.ok(&["suppress", "remove", "2"]);
    assert!(out.contains("4 alerts resurfaced"), "{out}");
    assert!(
        status_of("acme")
            .iter()
            .chain(&status_of("beta"))
            .all(|(_, s)| s == "new")
    );
}

#[test]
fn suppressions_through_the_api_keep_to_the_callers_tenants() {
    let env = Env::new();
    let tokens = two_tenants(&env);
    let ann = analyst_of_acme(&env);
    let served = Served::start(&env);
    let body = r#"{"tenant":"acme","source":"msstorageboxes.com","kind":"ioc","reason":"their sandbox","expires":"2099-01-01T00:00:00Z"}"#;
    let (status, _, added) = served.post("/api/v1/suppressions", &ann, body);
    assert_eq!(status, 201, "{added}");
    let added: Value = serde_json::from_str(&added).unwrap();
    assert_eq!(
        added["suppressed"].as_array().unwrap().len(),
        2,
        "{added:#}"
    );
    assert_eq!(added["owner"], "token:4");
    // Every tenant's is an admin's to add; a read token adds none.
    let global = r#"{"source":"msstorageboxes.com","reason":"x"}"#;
    assert_eq!(served.post("/api/v1/suppressions", &ann, global).0, 403);
    assert_eq!(
        served.post("/api/v1/suppressions", &tokens.beta, body).0,
        403
    );
    let past =
        r#"{"tenant":"acme","source":"a.example","reason":"x","expires":"2020-01-01T00:00:00Z"}"#;
    assert_eq!(served.post("/api/v1/suppressions", &ann, past).0, 400);
    // beta's reader sees none of acme's.
    let theirs = served.json("/api/v1/suppressions", &tokens.beta);
    assert_eq!(theirs["items"], serde_json::json!([]));
    let id = added["id"].as_i64().unwrap();
    let (status, _, _) = served.request(
        "DELETE",
        &format!("/api/v1/suppressions/{id}"),
        Some(&tokens.beta),
        None,
    );
    assert_eq!(status, 403, "a read token triages nothing");
    let (status, _, back) = served.request(
        "DELETE",
        &format!("/api/v1/suppressions/{id}"),
        Some(&ann),
        None,
    );
    assert_eq!(status, 200, "{back}");
    assert_eq!(
        serde_json::from_str::<Value>(&back)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(
        env.alerts(&["--tenant", "acme", "--kind", "ioc"])
            .iter()
            .all(|a| a["status"] == "new")
    );
}

#[test]
fn a_dismissed_alert_resurfaces_when_another_tenant_sees_the_same() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    env.ok(&["tenant", "add", "beta"]);
    let csv = env.file(
        "iocs.csv",
        "indicator,type\nmsstorageboxes(.)com,hostname\n",
    );
    env.ok(&["intel", "import", path(&csv)]);
    let f = env.file(
        "acme.ndjson",
        &dns("ws-09", "2023-03-25T08:00:00Z", "msstorageboxes.com"),
    );
    env.ok(&["ingest", "--tenant", "acme", path(&f)]);
    let alert = env.alerts(&["--tenant", "acme", "--kind", "ioc"])[0].clone();
    let id = alert["id"].as_i64().unwrap().to_string();
    env.ok(&[
        "alert",
        "status",
        &id,
        "false-positive",
        "--reason",
        "one host, a lab",
    ]);

    // The same contact in a second tenant makes a campaign: the
    // dismissal is new evidence's to reconsider.
    let f = env.file(
        "beta.ndjson",
        &dns("srv-1", "2023-03-26T10:00:00Z", "msstorageboxes.com"),
    );
    let report = env.json(&["ingest", "--tenant", "beta", "--output", "json", path(&f)]);
    assert_eq!(report["campaigns"]["new_campaigns"], 1, "{report:#}");
    assert_eq!(report["campaigns"]["resurfaced"], 1, "{report:#}");
    let now = env
        .alerts(&["--tenant", "acme", "--kind", "ioc"])
        .into_iter()
        .find(|a| a["id"] == alert["id"])
        .unwrap();
    assert_eq!(now["status"], "new");
    let history = env.json(&["alert", "history", &id, "--format", "json"]);
    let last = history.as_array().unwrap().last().unwrap();
    assert_eq!(last["action"], "resurfaced");
    assert!(
        last["note"]
            .as_str()
            .unwrap()
            .starts_with("joined campaign 1"),
        "{last}"
    );
    // Joining again changes nothing: it is not dismissed twice over.
    let again = env.json(&["ingest", "--tenant", "beta", "--output", "json", path(&f)]);
    assert_eq!(again["campaigns"]["resurfaced"], 0);
}

#[test]
fn bulk_triage_previews_then_changes_exactly_the_selection() {
    let env = Env::new();
    let tokens = two_tenants(&env);
    let ann = analyst_of_acme(&env);
    let served = Served::start(&env);
    let open_iocs = |tenant: &str| {
        env.alerts(&["--tenant", tenant, "--kind", "ioc"])
            .iter()
            .filter(|a| a["status"] == "new")
            .count()
    };
    let (acme_before, beta_before) = (open_iocs("acme"), open_iocs("beta"));
    assert!(acme_before >= 2 && beta_before >= 1);

    // The queue's own filters select; a preview counts and changes nothing.
    let url = "/api/v1/alerts/bulk-status?kind=ioc&status=new";
    let (status, _, body) = served.post(
        url,
        &ann,
        r#"{"status":"false-positive","reason":"lab","preview":true}"#,
    );
    assert_eq!(status, 200, "{body}");
    let preview: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(preview["matched"], acme_before, "acme's only: {preview}");
    assert_eq!(preview["changed"], serde_json::json!([]));
    assert_eq!(open_iocs("acme"), acme_before);
    // A dismissal needs its reason in bulk too; paging makes no sense.
    let (status, _, _) = served.post(url, &ann, r#"{"status":"false-positive"}"#);
    assert_eq!(status, 400);
    let (status, _, _) = served.post(&format!("{url}&limit=1"), &ann, r#"{"status":"resolved"}"#);
    assert_eq!(status, 400);
    // Another tenant's name is not a selection the analyst may make.
    let (status, _, _) = served.post(
        &format!("{url}&tenant=beta"),
        &ann,
        r#"{"status":"resolved"}"#,
    );
    assert_eq!(status, 404);
    assert_eq!(
        served.post(url, &tokens.beta, r#"{"status":"resolved"}"#).0,
        403
    );

    let (status, _, body) = served.post(url, &ann, r#"{"status":"false-positive","reason":"lab"}"#);
    assert_eq!(status, 200, "{body}");
    let done: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(done["changed"].as_array().unwrap().len(), acme_before);
    assert_eq!(open_iocs("acme"), 0);
    assert_eq!(open_iocs("beta"), beta_before, "beta untouched");

    // The CLI: the same selection by flags.
    let preview = env.json(&[
        "alert",
        "bulk",
        "resolved",
        "--tenant",
        "beta",
        "--kind",
        "ioc",
        "--from",
        "new",
        "--preview",
        "--format",
        "json",
    ]);
    assert_eq!(preview["matched"], beta_before);
    let out = env.ok(&[
        "alert", "bulk", "resolved", "--tenant", "beta", "--kind", "ioc", "--from", "new",
    ]);
    assert!(
        out.contains(&format!("{beta_before} set to resolved")),
        "{out}"
    );
    assert_eq!(open_iocs("beta"), 0);
}

#[test]
fn beacons_and_drift_through_the_api_are_the_cli_s() {
    let env = Env::new();
    let fleet = env.dir.path().join("fleet");
    env.ok(&[
        "simulate",
        "--out",
        path(&fleet),
        "--tenants",
        "2",
        "--endpoints",
        "8",
        "--days",
        "10",
        "--events-per-endpoint-day",
        "20",
    ]);
    for tenant in ["acme-corp", "globex"] {
        env.ok(&["tenant", "add", tenant]);
        env.ok(&["ingest", "--tenant", tenant, path(&fleet.join(tenant))]);
    }
    env.ok(&["user", "add", "root", "--role", "admin"]);
    let admin = last_line(&env.ok(&["token", "create", "--user", "root"]));
    let acme = last_line(&env.ok(&[
        "token",
        "create",
        "--tenant",
        "acme-corp",
        "--scope",
        "read",
    ]));
    let served = Served::start(&env);

    let cli = env.json(&["beacons", "--tenant", "acme-corp", "--format", "json"]);
    assert!(!cli.as_array().unwrap().is_empty(), "the fleet beacons");
    let api = served.every_page("/api/v1/beacons?tenant=acme-corp", 3, &admin);
    assert_eq!(Value::from(api), cli);
    // A token of one tenant needs no name; another's is not found.
    let mine = served.json("/api/v1/beacons", &acme);
    assert_eq!(
        mine["items"].as_array().unwrap().len(),
        cli.as_array().unwrap().len().min(100)
    );
    assert_eq!(
        served.get("/api/v1/beacons?tenant=globex", Some(&acme)).0,
        404
    );
    assert_eq!(
        served.get("/api/v1/beacons", Some(&admin)).0,
        400,
        "which tenant?"
    );

    let cli = env.json(&["drift", "--tenant", "acme-corp", "--format", "json"]);
    let api = served.every_page("/api/v1/drift", 5, &acme);
    assert_eq!(Value::from(api), cli, "acme's token: acme's drift only");
    let all = env.json(&["drift", "--format", "json"]);
    assert_eq!(
        Value::from(served.every_page("/api/v1/drift", 50, &admin)),
        all
    );
}

#[test]
fn a_console_session_signs_in_by_cookie_and_its_changes_need_the_csrf_token() {
    let env = Env::new();
    let _tokens = two_tenants(&env);
    let password = last_line(&env.ok(&[
        "user", "add", "ann", "--role", "analyst", "--tenant", "acme",
    ]));
    let bob_password = last_line(&env.ok(&["user", "add", "bob", "--role", "analyst"]));
    let served = Served::start(&env);
    let login = |body: &str, form: bool| {
        let kind = if form {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        };
        served.send(
            "POST",
            "/api/v1/login",
            &[("Content-Type", kind)],
            Some(body.as_bytes()),
        )
    };

    // A wrong password: 401, and after five of them, 429 even for the
    // right one, with the time to wait.
    let (status, _, _) = login(r#"{"username":"ann","password":"wrong"}"#, false);
    assert_eq!(status, 401);
    // A form works as JSON does.
    let (status, head, body) = login(&format!("username=ann&password={password}"), true);
    assert_eq!(status, 200, "{body}");
    let cookie_line = head
        .lines()
        .find(|l| l.starts_with("set-cookie: "))
        .unwrap_or_else(|| panic!("no cookie: {head}"));
    for flag in ["httponly", "samesite=strict", "path=/"] {
        assert!(cookie_line.contains(flag), "{cookie_line}");
    }
    let secret = cookie_line["set-cookie: ".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("turncoat_session=tct_"), "{secret}");
    // Header names were lower-cased; the value keeps its case.
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["actor"], "user:ann");
    assert_eq!(info["tenants"], serde_json::json!(["acme"]));
    let csrf = info["csrf_token"].as_str().unwrap().to_owned();

    // Reads by cookie; a change without the token is refused, with it done.
    let cookie = [("Cookie", secret.as_str())];
    let (status, _, body) = served.send("GET", "/api/v1/alerts", &cookie, None);
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("\"beta\""), "a session keeps to its tenants");
    let acme_id = env.alerts(&["--tenant", "acme", "--kind", "ioc"])[0]["id"].to_string();
    let url = format!("/api/v1/alerts/{acme_id}/comments");
    let comment = br#"{"text":"looked at it"}"#;
    let json = ("Content-Type", "application/json");
    let (status, _, body) = served.send("POST", &url, &[cookie[0], json], Some(comment));
    assert_eq!(
        status, 403,
        "a forged cross-site POST carries the cookie, not the token: {body}"
    );
    let forged = [cookie[0], json, ("X-CSRF-Token", "0000")];
    assert_eq!(served.send("POST", &url, &forged, Some(comment)).0, 403);
    let good = [cookie[0], json, ("X-CSRF-Token", csrf.as_str())];
    let (status, _, body) = served.send("POST", &url, &good, Some(comment));
    assert_eq!(status, 201, "{body}");
    let detail: Value = serde_json::from_str(&body).unwrap();
    let last = detail["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["actor"], "user:ann", "a session acts as its person");

    // Signing out ends it: the cookie no longer works.
    let (status, head, _) = served.send("POST", "/api/v1/logout", &good, None);
    assert_eq!(status, 204);
    assert!(head.contains("max-age=0"), "{head}");
    assert_eq!(served.send("GET", "/api/v1/alerts", &cookie, None).0, 401);

    // Throttling: five failures, then even the right password waits.
    for _ in 0..5 {
        assert_eq!(
            login(r#"{"username":"ANN","password":"nope"}"#, false).0,
            401
        );
    }
    let (status, head, _) = login(
        &format!(r#"{{"username":"ann","password":"{password}"}}"#),
        false,
    );
    assert_eq!(status, 429);
    assert!(head.contains("retry-after: "), "{head}");

    // Spraying: one address trying many names is stopped at twenty
    // failures (six so far), whoever it tries next.
    let bob = format!(r#"{{"username":"bob","password":"{bob_password}"}}"#);
    let spray = |i: usize| {
        let body = format!(r#"{{"username":"user{i}","password":"nope"}}"#);
        assert_eq!(login(&body, false).0, 401);
    };
    (0..13).for_each(spray);
    assert_eq!(login(&bob, false).0, 200, "nineteen failures still let in");
    spray(13);
    let (status, _, body) = login(&bob, false);
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("from this address"), "{body}");
}

#[test]
fn a_hundred_clients_at_once_are_all_answered() {
    let env = Env::new();
    let tokens = two_tenants(&env);
    let served = Served::start(&env);
    let expected = served.json("/api/v1/alerts", &tokens.beta);
    let answers: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|i| {
                let (served, tokens) = (&served, &tokens);
                s.spawn(move || {
                    // Mostly the queue; one client in ten reads the audit log.
                    (0..10)
                        .map(|_| {
                            if i % 10 == 0 {
                                let (status, _, body) =
                                    served.get("/api/v1/audit", Some(&tokens.admin));
                                (status, body)
                            } else {
                                let (status, _, body) =
                                    served.get("/api/v1/alerts", Some(&tokens.beta));
                                (status, body)
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(answers.len(), 1_000);
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
    }
    let same = answers
        .iter()
        .filter(|(_, body)| serde_json::from_str::<Value>(body).ok().as_ref() == Some(&expected))
        .count();
    assert_eq!(same, 900, "every reader saw the same queue");
}

#[test]
fn admins_manage_users_and_tokens_through_the_api() {
    let env = Env::new();
    let tokens = two_tenants(&env);
    let ann = analyst_of_acme(&env);
    let served = Served::start(&env);
    let body = r#"{"name":"carol","role":"viewer","tenants":["beta"]}"#;
    let (status, _, added) = served.post("/api/v1/users", &tokens.admin, body);
    assert_eq!(status, 201, "{added}");
    let added: Value = serde_json::from_str(&added).unwrap();
    let password = added["password"].as_str().unwrap().to_owned();
    assert_eq!(password.len(), 24);
    assert_eq!(added["tenants"], serde_json::json!(["beta"]));
    // The generated password signs in; it is never listed.
    let login = format!(r#"{{"username":"carol","password":"{password}"}}"#);
    let (status, _, _) = served.send(
        "POST",
        "/api/v1/login",
        &[("Content-Type", "application/json")],
        Some(login.as_bytes()),
    );
    assert_eq!(status, 200);
    let users = served.get("/api/v1/users", Some(&tokens.admin)).2;
    assert!(
        users.contains("carol") && !users.contains(&password),
        "{users}"
    );
    // Refused: a viewer of nobody, a taken name, anyone but an admin.
    let (status, _, _) = served.post(
        "/api/v1/users",
        &tokens.admin,
        r#"{"name":"v","role":"viewer"}"#,
    );
    assert_eq!(status, 400);
    assert_eq!(served.post("/api/v1/users", &tokens.admin, body).0, 409);
    assert_eq!(served.post("/api/v1/users", &ann, body).0, 403);
    assert_eq!(served.get("/api/v1/tokens", Some(&ann)).0, 403);

    // Tokens: listed without secrets; one revoked stops at once.
    let list = served.get("/api/v1/tokens", Some(&tokens.admin)).2;
    assert!(
        !list.contains(&tokens.beta) && !list.contains("tct_"),
        "{list}"
    );
    let listed: Value = serde_json::from_str(&list).unwrap();
    let beta_read = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == "beta" && t["scope"] == "read")
        .unwrap()["id"]
        .clone();
    assert_eq!(served.get("/api/v1/alerts", Some(&tokens.beta)).0, 200);
    let (status, _, _) = served.request(
        "DELETE",
        &format!("/api/v1/tokens/{beta_read}"),
        Some(&tokens.admin),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(served.get("/api/v1/alerts", Some(&tokens.beta)).0, 401);
    let (status, _, _) = served.request("DELETE", "/api/v1/tokens/9999", Some(&tokens.admin), None);
    assert_eq!(status, 404);

    // A new token: its secret once, and it works at once.
    let (status, _, created) = served.post(
        "/api/v1/tokens",
        &tokens.admin,
        r#"{"tenant":"beta","scope":"read","note":"their SIEM"}"#,
    );
    assert_eq!(status, 201, "{created}");
    let created: Value = serde_json::from_str(&created).unwrap();
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("tct_"));
    assert_eq!(served.get("/api/v1/alerts", Some(secret)).0, 200);
    let listed = served.get("/api/v1/tokens", Some(&tokens.admin)).2;
    assert!(!listed.contains(secret), "never listed again");
    let bad = r#"{"tenant":"beta"}"#;
    assert_eq!(served.post("/api/v1/tokens", &tokens.admin, bad).0, 400);
    let nobody = r#"{"user":"nobody"}"#;
    assert_eq!(served.post("/api/v1/tokens", &tokens.admin, nobody).0, 404);
    assert_eq!(
        served.post("/api/v1/tokens", &ann, r#"{"user":"ann"}"#).0,
        403
    );
}

#[test]
fn a_dismissed_exposure_resurfaces_when_its_advisory_s_severity_rises() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let line = r#"{"name":"pack_inventory_programs","hostIdentifier":"ws-01","unixTime":1679000000,"columns":{"name":"3CX Desktop App","version":"18.12.416"},"action":"added"}"#;
    let f = env.file("ws-01.osquery.log", line);
    env.ok(&["ingest", "--tenant", "acme", path(&f)]);
    let advisory = |severity: &str| {
        format!(
            "id = \"TC-2023-0001\"\ntitle = \"3CX Desktop App trojanized update\"\nseverity = \"{severity}\"\n[[affected]]\nproduct = \"3CX Desktop App\"\nplatforms = [\"windows\"]\nversions = [\"18.12.416\"]\n"
        )
    };
    let medium = env.file("adv-medium.toml", &advisory("medium"));
    env.ok(&["intel", "import", path(&medium)]);
    let alert = env.alerts(&["--kind", "exposure"])[0].clone();
    assert_eq!(alert["severity"], "medium");
    let id = alert["id"].as_i64().unwrap().to_string();
    env.ok(&[
        "alert",
        "status",
        &id,
        "false-positive",
        "--reason",
        "not on this build",
    ]);

    // The vendor raises it to critical: the dismissal is reconsidered.
    let critical = env.file("adv-critical.toml", &advisory("critical"));
    env.ok(&["intel", "import", path(&critical)]);
    let now = env.alerts(&["--kind", "exposure"])[0].clone();
    assert_eq!(
        (now["severity"].as_str(), now["status"].as_str()),
        (Some("critical"), Some("new"))
    );
    let history = env.json(&["alert", "history", &id, "--format", "json"]);
    let last = history.as_array().unwrap().last().unwrap();
    assert_eq!(last["action"], "resurfaced");
    assert_eq!(last["note"], "severity rose from medium to critical");
}

#[test]
fn internal_networks_and_advisories_through_the_api() {
    let env = Env::new();
    let tokens = two_tenants(&env);
    let ann = analyst_of_acme(&env);
    let served = Served::start(&env);
    let (status, _, id) = served.post(
        "/api/v1/networks",
        &ann,
        r#"{"tenant":"acme","cidr":"203.0.113.77/24","note":"their DMZ"}"#,
    );
    assert_eq!(status, 201, "{id}");
    let mine = served.json("/api/v1/networks", &ann);
    assert_eq!(
        mine["items"][0]["cidr"], "203.0.113.0/24",
        "kept in normal form"
    );
    // The CLI reads what the API wrote.
    let cli = env.json(&["network", "internal", "list", "--format", "json"]);
    assert_eq!(cli[0]["note"], "their DMZ");
    assert_eq!(
        served.json("/api/v1/networks", &tokens.beta)["items"],
        serde_json::json!([])
    );
    let bad = served.post(
        "/api/v1/networks",
        &ann,
        r#"{"tenant":"acme","cidr":"not-a-net"}"#,
    );
    assert_eq!(bad.0, 400, "{}", bad.2);
    assert_eq!(
        served
            .post("/api/v1/networks", &ann, r#"{"cidr":"10.9.0.0/16"}"#)
            .0,
        403
    );
    let (status, _, _) = served.request(
        "DELETE",
        &format!("/api/v1/networks/{id}"),
        Some(&ann),
        None,
    );
    assert_eq!(status, 204);
    assert_eq!(
        env.json(&["network", "internal", "list", "--format", "json"]),
        serde_json::json!([])
    );

    // Advisories are global intel: any reader lists them.
    let advisories = served.json("/api/v1/advisories", &tokens.beta);
    assert_eq!(advisories["items"][0]["id"], "TC-2023-0001");
    assert_eq!(
        served.get("/api/v1/advisories", Some(&tokens.sensor)).0,
        403
    );
}

#[test]
fn a_release_uploaded_to_the_api_is_vetted_against_the_stored_intel() {
    let env = Env::new();
    let tokens = two_tenants(&env);
    let ann = analyst_of_acme(&env);
    let served = Served::start(&env);
    let release = b"fetch('https://api.msstorageboxes.com/v2/update')\n".as_slice();
    let before = b"fetch('https://updates.example.com/v2/update')\n".as_slice();
    let (kind, body) = form(&[
        ("release", "../../app.js", release),
        ("previous", "app.js", before),
    ]);
    let auth = format!("Bearer {ann}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", kind.as_str()),
    ];
    let (status, _, answer) = served.send("POST", "/api/v1/vet", &headers, Some(&body));
    assert_eq!(status, 200, "{answer}");
    let report: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(report["verdict"], "malicious", "{report:#}");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "ioc.network"),
        "{report:#}"
    );
    assert_eq!(
        report["artifact"], "app.js",
        "the upload's own name, never a path"
    );
    assert!(!answer.contains("/tmp"), "no server path: {answer}");
    let (status, head, sarif) =
        served.send("POST", "/api/v1/vet?format=sarif", &headers, Some(&body));
    assert_eq!(status, 200, "{sarif}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/sarif+json"),
        "{head}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&sarif).unwrap()["version"],
        "2.1.0"
    );

    // Refused: a read token, a form without a release, an unknown part.
    let read = format!("Bearer {}", tokens.beta);
    let reader = [
        ("Authorization", read.as_str()),
        ("Content-Type", kind.as_str()),
    ];
    assert_eq!(
        served.send("POST", "/api/v1/vet", &reader, Some(&body)).0,
        403
    );
    let (kind2, only_previous) = form(&[("previous", "a.js", before)]);
    let headers2 = [
        ("Authorization", auth.as_str()),
        ("Content-Type", kind2.as_str()),
    ];
    assert_eq!(
        served
            .send("POST", "/api/v1/vet", &headers2, Some(&only_previous))
            .0,
        400
    );
    let (kind3, odd) = form(&[("payload", "a.js", before)]);
    let headers3 = [
        ("Authorization", auth.as_str()),
        ("Content-Type", kind3.as_str()),
    ];
    assert_eq!(
        served.send("POST", "/api/v1/vet", &headers3, Some(&odd)).0,
        400
    );
}
