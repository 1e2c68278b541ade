//! The API, walked from its own OpenAPI document: every documented route
//! answers (none is a dead entry), the document is valid OpenAPI 3.1, and
//! no principal of tenant acme reaches anything of tenant beta through
//! any route, by name, by id, by a guessed id, by a filter, or by a name
//! bent with injection and path tricks.

mod common;

use common::served::{Served, last_line, two_tenants};
use common::{Env, path};
use serde_json::{Value, json};

/// What only beta has: its name, its hosts, its allowlist entry.
const BETA_MARKERS: [&str; 4] = ["beta", "srv-1", "srv-2", "beta-only.example"];

/// Tenant names bent to reach beta.
const TENANT_TRICKS: [&str; 8] = [
    "beta",
    "BETA",
    "Beta%20",
    "beta%00",
    "..%2Fbeta",
    "beta'%20OR%20'1'='1",
    "%2e%2e",
    "acme%2F..%2Fbeta",
];

/// Ids that are not numbers, or not one of the caller's.
const ID_TRICKS: [&str; 4] = ["1%20OR%201=1", "-1", "99999999999999999999", "0x1"];

/// Who walks, and the headers that make them so.
struct Caller {
    who: &'static str,
    headers: Vec<(String, String)>,
}

impl Caller {
    fn bearer(who: &'static str, token: String) -> Caller {
        Caller {
            who,
            headers: vec![("Authorization".into(), format!("Bearer {token}"))],
        }
    }
}

/// Every role and token of acme; `analyst_password` and the viewer's
/// sign in for console sessions once the server runs.
fn callers(env: &Env, sensor: String) -> (Vec<Caller>, String, String) {
    let analyst = last_line(&env.ok(&[
        "user", "add", "ann", "--role", "analyst", "--tenant", "acme",
    ]));
    let viewer =
        last_line(&env.ok(&["user", "add", "vic", "--role", "viewer", "--tenant", "acme"]));
    let token = |args: &[&str]| last_line(&env.ok(args));
    let callers = vec![
        Caller::bearer(
            "analyst of acme",
            token(&["token", "create", "--user", "ann"]),
        ),
        Caller::bearer(
            "viewer of acme",
            token(&["token", "create", "--user", "vic"]),
        ),
        Caller::bearer(
            "acme read token",
            token(&["token", "create", "--tenant", "acme", "--scope", "read"]),
        ),
        Caller::bearer(
            "acme write token",
            token(&["token", "create", "--tenant", "acme", "--scope", "write"]),
        ),
        Caller::bearer("acme ingest token", sensor),
    ];
    (callers, analyst, viewer)
}

/// A console session of `user`: its cookie and anti-forgery token.
fn session(served: &Served, who: &'static str, user: &str, password: &str) -> Caller {
    let body = json!({"username": user, "password": password}).to_string();
    let (status, head, answer) = served.send(
        "POST",
        "/api/v1/login",
        &[("Content-Type", "application/json")],
        Some(body.as_bytes()),
    );
    assert_eq!(status, 200, "{answer}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf: Value = serde_json::from_str(&answer).unwrap();
    Caller {
        who,
        headers: vec![
            ("Cookie".into(), cookie),
            (
                "X-CSRF-Token".into(),
                csrf["csrf_token"].as_str().unwrap().into(),
            ),
        ],
    }
}

/// beta as the admin sees it.
#[derive(Debug, PartialEq)]
struct BetaState {
    /// (id, status)
    alerts: Vec<(u64, String)>,
    allow: Vec<u64>,
    suppressions: Vec<u64>,
    networks: Vec<u64>,
}

fn beta_state(served: &Served, admin: &str) -> BetaState {
    let alerts = served
        .every_page("/api/v1/alerts", 100, admin)
        .into_iter()
        .filter(|a| a["tenant"] == "beta")
        .filter_map(|a| Some((a["id"].as_u64()?, a["status"].as_str()?.to_owned())))
        .collect();
    let allow = served
        .every_page("/api/v1/allowlists", 100, admin)
        .into_iter()
        .filter(|e| e["tenant"] == "beta")
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    let suppressions = served
        .every_page("/api/v1/suppressions", 100, admin)
        .into_iter()
        .filter(|e| e["tenant"] == "beta")
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    let networks = served
        .every_page("/api/v1/networks", 100, admin)
        .into_iter()
        .filter(|e| e["tenant"] == "beta")
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    BetaState {
        alerts,
        allow,
        suppressions,
        networks,
    }
}

/// The requests that try to reach beta on one documented route.
fn attempts(
    template: &str,
    method: &str,
    op: &Value,
    beta: &BetaState,
    not_acme: &[u64],
) -> Vec<(String, Option<Value>)> {
    let mut paths = vec![template.to_owned()];
    if template.contains("{tenant}") {
        paths = TENANT_TRICKS
            .iter()
            .map(|t| template.replace("{tenant}", t))
            .collect();
    }
    if template.contains("{id}") {
        let alerts: Vec<u64> = beta.alerts.iter().map(|(id, _)| *id).collect();
        let theirs = if template.starts_with("/api/v1/allowlists") {
            &beta.allow
        } else if template.starts_with("/api/v1/suppressions") {
            &beta.suppressions
        } else if template.starts_with("/api/v1/networks") {
            &beta.networks
        } else {
            &alerts
        };
        let mut ids: Vec<String> = theirs.iter().map(u64::to_string).collect();
        // Guessing by counting: every id up to past the largest that is
        // not acme's own.
        ids.extend(not_acme.iter().map(u64::to_string));
        ids.extend(ID_TRICKS.iter().map(|s| s.to_string()));
        paths = ids.iter().map(|id| template.replace("{id}", id)).collect();
    }
    let takes_tenant = op["parameters"].as_array().is_some_and(|ps| {
        ps.iter()
            .any(|p| p["name"] == "tenant" && p["in"] == "query")
    });
    let mut out = Vec::new();
    for p in paths {
        let body = match (method, template) {
            ("post", "/api/v1/allowlists") => Some(json!({
                "tenant": "beta", "kind": "destination", "value": "x.example", "reason": "walk"
            })),
            ("post", t) if t.ends_with("/status") => {
                Some(json!({"status": "false-positive", "reason": "walk"}))
            }
            ("post", t) if t.ends_with("/assign") => Some(json!({"assignee": "ann"})),
            ("post", "/api/v1/alerts/bulk-status") => {
                Some(json!({"status": "false-positive", "reason": "walk"}))
            }
            ("post", "/api/v1/networks") => Some(json!({"tenant": "beta", "cidr": "192.0.2.0/24"})),
            ("post", "/api/v1/tokens") => Some(json!({"tenant": "beta", "scope": "write"})),
            ("post", "/api/v1/suppressions") => Some(json!({
                "tenant": "beta", "source": "msstorageboxes.com", "reason": "walk"
            })),
            ("post", t) if t.ends_with("/comments") => Some(json!({"text": "walk"})),
            ("post", "/api/v1/tenants") => Some(json!({"name": "beta-two"})),
            ("post", _) => None,
            _ => None,
        };
        if takes_tenant {
            for t in TENANT_TRICKS {
                out.push((format!("{p}?tenant={t}"), body.clone()));
            }
        }
        // A change without a tenant acts in the caller's own tenants:
        // only its variants aimed at beta are attempts.
        if method == "get" || !takes_tenant {
            out.push((p, body));
        }
    }
    out
}

#[test]
fn every_route_of_the_openapi_document_answers_and_none_reaches_another_tenant() {
    let env = Env::new();
    let tokens = two_tenants(&env);
    env.ok(&[
        "allow",
        "add",
        "--tenant",
        "beta",
        "--destination",
        "beta-only.example",
        "--reason",
        "their proxy",
    ]);
    env.ok(&[
        "suppress",
        "add",
        "--tenant",
        "beta",
        "--source",
        "beta-only.example",
        "--reason",
        "their lab",
        "--expires",
        "never",
    ]);
    env.ok(&[
        "network",
        "internal",
        "add",
        "--tenant",
        "beta",
        "--note",
        "beta-only.example lab",
        "198.51.100.0/24",
    ]);
    let (mut callers, analyst, viewer) = callers(&env, tokens.sensor.clone());
    let served = Served::start(&env);
    callers.push(session(&served, "analyst's session", "ann", &analyst));
    callers.push(session(&served, "viewer's session", "vic", &viewer));
    let (status, head, doc) = served.get("/api/v1/openapi.json", None);
    assert_eq!(status, 200, "{doc}");
    assert!(head.contains("application/json"));
    let doc: Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    match std::env::var("TURNCOAT_TEST_OPENAPI_VALIDATOR") {
        Ok(validator) => {
            let file = env.dir.path().join("openapi.json");
            std::fs::write(&file, doc.to_string()).unwrap();
            let out = std::process::Command::new(validator)
                .arg(path(&file))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "openapi-spec-validator: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(_) => println!(
            "skipped: OpenAPI validation (TURNCOAT_TEST_OPENAPI_VALIDATOR unset; .ci/run sets it)"
        ),
    }
    let operations: Vec<(String, String, Value)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .iter()
                .map(|(m, op)| (p.clone(), m.clone(), op.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    // What the issue asks of the API, at least.
    for (route, method) in [
        ("/api/v1/tenants", "get"),
        ("/api/v1/tenants", "post"),
        ("/api/v1/tenants/{tenant}/ingest", "post"),
        ("/api/v1/tenants/{tenant}/_bulk", "post"),
        ("/api/v1/intel", "post"),
        ("/api/v1/intel", "get"),
        ("/api/v1/rules", "post"),
        ("/api/v1/alerts", "get"),
        ("/api/v1/alerts/{id}", "get"),
        ("/api/v1/alerts/{id}/status", "post"),
        ("/api/v1/exposure", "get"),
        ("/api/v1/campaigns", "get"),
        ("/api/v1/allowlists", "get"),
        ("/api/v1/audit", "get"),
        ("/api/v1/openapi.json", "get"),
        ("/api/v1/alerts/{id}/assign", "post"),
        ("/api/v1/alerts/{id}/comments", "post"),
        ("/api/v1/alerts/bulk-status", "post"),
        ("/api/v1/suppressions", "get"),
        ("/api/v1/suppressions", "post"),
        ("/api/v1/suppressions/{id}", "delete"),
        ("/api/v1/networks", "post"),
        ("/api/v1/networks/{id}", "delete"),
        ("/api/v1/advisories", "get"),
        ("/api/v1/vet", "post"),
        ("/api/v1/users", "post"),
        ("/api/v1/tokens/{id}", "delete"),
        ("/api/v1/tokens", "post"),
        ("/api/v1/login", "post"),
        ("/api/v1/beacons", "get"),
        ("/api/v1/drift", "get"),
    ] {
        assert!(
            operations.iter().any(|(p, m, _)| p == route && m == method),
            "{method} {route} is not documented"
        );
    }

    // Every documented operation is served: none answers with the
    // router's own 404 or 405. (Id 0 is nobody's: nothing is removed.)
    for (route, method, _) in &operations {
        let concrete = route.replace("{tenant}", "acme").replace("{id}", "0");
        let (status, _, body) = served.send(
            &method.to_uppercase(),
            &concrete,
            &[("Authorization", &format!("Bearer {}", tokens.admin))],
            matches!(method.as_str(), "post").then_some(b"{}".as_slice()),
        );
        assert!(
            status != 405 && !body.contains("no such resource\""),
            "{method} {route}: {status} {body}"
        );
    }

    let before = beta_state(&served, &tokens.admin);
    assert!(
        !before.alerts.is_empty()
            && !before.allow.is_empty()
            && !before.suppressions.is_empty()
            && !before.networks.is_empty(),
        "{before:?}"
    );
    let every = served.every_page("/api/v1/alerts", 100, &tokens.admin);
    let max_id = every.iter().filter_map(|a| a["id"].as_u64()).max().unwrap();
    let acme: Vec<u64> = every
        .iter()
        .filter(|a| a["tenant"] == "acme")
        .filter_map(|a| a["id"].as_u64())
        .collect();
    let not_acme: Vec<u64> = (1..=max_id + 3).filter(|i| !acme.contains(i)).collect();
    let beta_ids: Vec<u64> = before.alerts.iter().map(|(id, _)| *id).collect();
    let mut requests = 0;
    for caller in &callers {
        for (route, method, op) in &operations {
            if !route.starts_with("/api/v1/")
                || route.ends_with("openapi.json")
                || route.ends_with("/logout")
            {
                continue;
            }
            for (target, body) in attempts(route, method, op, &before, &not_acme) {
                let raw = body.as_ref().map(|b| b.to_string().into_bytes());
                let mut headers: Vec<(&str, &str)> = caller
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                if raw.is_some() {
                    headers.push(("Content-Type", "application/json"));
                }
                let (status, _, answer) =
                    served.send(&method.to_uppercase(), &target, &headers, raw.as_deref());
                requests += 1;
                let lower = answer.to_ascii_lowercase();
                for marker in BETA_MARKERS {
                    assert!(
                        !lower.contains(marker),
                        "{}: {method} {target} answered {status} with beta's {marker:?}: {answer}",
                        caller.who
                    );
                }
                let id_leak = beta_ids
                    .iter()
                    .any(|id| answer.contains(&format!("\"id\":{id},")));
                assert!(
                    !id_leak,
                    "{}: {method} {target} answered one of beta's alert ids: {answer}",
                    caller.who
                );
                if method != "get" {
                    assert!(
                        (400..500).contains(&status),
                        "{}: {method} {target} answered {status}: {answer}",
                        caller.who
                    );
                }
            }
        }
    }
    println!(
        "isolation walk: {requests} requests by {} callers",
        callers.len()
    );
    assert_eq!(
        beta_state(&served, &tokens.admin),
        before,
        "beta's alerts and allowlist are as they were"
    );
}
