//! The console over HTTP, as a browser drives it: the sign-in form with
//! its anti-forgery value, pages by session cookie, triage by form (the
//! session's token required), and what a viewer of one tenant sees.

mod common;

use common::Env;
use common::served::{Served, last_line, two_tenants};

/// An alert's id, as text.
fn id(alert: &serde_json::Value) -> String {
    alert["id"].to_string()
}

/// The stored status of acme's alert `alert` (campaign rows, listed
/// beside the alerts, number from their own sequence).
fn status_of(env: &Env, alert: &str) -> String {
    env.alerts(&["--tenant", "acme"])
        .iter()
        .find(|a| a["kind"] != "campaign" && id(a) == alert)
        .map(|a| a["status"].as_str().unwrap().to_owned())
        .unwrap()
}

/// A header's value in a response head (names are lower case).
fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

/// The `value` of the hidden input `name` in a page.
fn hidden(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no {name} field: {page}"));
    let rest = &page[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The `name=value` part of a `set-cookie` for `name`.
fn cookie(head: &str, name: &str) -> String {
    head.lines()
        .filter_map(|l| l.strip_prefix("set-cookie: "))
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie: {head}"))
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// A browser's session: its cookie and the page token forms carry.
struct Browser<'s> {
    served: &'s Served,
    cookie: String,
}

impl Browser<'_> {
    fn sign_in<'s>(served: &'s Served, user: &str, password: &str) -> Browser<'s> {
        let (status, head, form) = served.send("GET", "/login", &[], None);
        assert_eq!(status, 200, "{form}");
        let login = cookie(&head, "turncoat_login");
        let body = serde_urlencoded::to_string([
            ("username", user),
            ("password", password),
            ("csrf", &hidden(&form, "csrf")),
            ("next", "/"),
        ])
        .unwrap();
        let (status, head, page) = served.send(
            "POST",
            "/login",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Cookie", &login),
            ],
            Some(body.as_bytes()),
        );
        assert_eq!(status, 303, "{head}{page}");
        assert_eq!(header(&head, "location"), Some("/"));
        Browser {
            served,
            cookie: cookie(&head, "turncoat_session"),
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let (status, _, body) = self
            .served
            .send("GET", path, &[("Cookie", &self.cookie)], None);
        (status, body)
    }

    fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
        let body = serde_urlencoded::to_string(fields).unwrap();
        self.served.send(
            "POST",
            path,
            &[
                ("Cookie", &self.cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            Some(body.as_bytes()),
        )
    }
}

/// Each page read by html5lib, which reports every parse error, where `.ci/run` provides
/// it (`TURNCOAT_TEST_PYTHON`).
fn strictly_parsed(env: &Env, pages: &[(String, String)]) {
    let Ok(python) = std::env::var("TURNCOAT_TEST_PYTHON") else {
        println!("skipped: strict HTML parsing (TURNCOAT_TEST_PYTHON unset; .ci/run sets it)");
        return;
    };
    let file = env.dir.path().join("pages.json");
    let pages: Vec<serde_json::Value> = pages
        .iter()
        .map(|(name, html)| serde_json::json!({"name": name, "html": html}))
        .collect();
    std::fs::write(&file, serde_json::Value::from(pages).to_string()).unwrap();
    let script = "
import json, sys, html5lib
failed = 0
pages = json.load(open(sys.argv[1]))
for page in pages:
    parser = html5lib.HTMLParser(strict=False)
    parser.parse(page['html'])
    for pos, code, data in parser.errors:
        failed += 1
        print(page['name'], pos, code, data)
print(len(pages), 'pages parsed,', failed, 'errors')
sys.exit(1 if failed else 0)
";
    common::python_check(std::path::Path::new(&python), script, &file);
}

#[test]
fn an_analyst_signs_in_triages_by_form_and_sees_only_their_tenants() {
    let env = Env::new();
    two_tenants(&env);
    let ann = last_line(&env.ok(&[
        "user", "add", "ann", "--role", "analyst", "--tenant", "acme",
    ]));
    let vic = last_line(&env.ok(&["user", "add", "vic", "--role", "viewer", "--tenant", "acme"]));
    let beta_id = env
        .alerts(&["--tenant", "beta"])
        .iter()
        .find(|a| a["kind"] != "campaign")
        .map(id)
        .unwrap();
    let acme = env.alerts(&["--tenant", "acme", "--kind", "ioc"])[0].clone();
    let acme_id = acme["id"].to_string();
    let served = Served::start(&env);

    // No session: every page sends to the sign-in form, remembering where.
    let (status, head, _) = served.send("GET", "/alerts?kind=ioc", &[], None);
    assert_eq!(status, 303);
    assert_eq!(
        header(&head, "location"),
        // (the test client lower-cases response heads)
        Some("/login?next=%2falerts%3fkind%3dioc")
    );
    // A sign-in without the form's value (login forgery) is refused.
    let forged = "username=ann&password=x&csrf=abc";
    let (status, _, _) = served.send(
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(forged.as_bytes()),
    );
    assert_eq!(status, 403);

    let analyst = Browser::sign_in(&served, "ann", &ann);
    let (status, overview) = analyst.get("/");
    assert_eq!(status, 200, "{overview}");
    assert!(overview.contains("<svg"), "the overview charts open alerts");
    assert!(overview.contains("<title>Open alerts per tenant, by severity</title>"));
    assert!(overview.contains("acme"));
    let (status, queue) = analyst.get("/alerts");
    assert_eq!(status, 200);
    assert!(
        queue.contains(&format!("href=\"/alerts/{acme_id}\"")),
        "{queue}"
    );
    // Another tenant's alert is not found, by URL as by list.
    let (status, page) = analyst.get(&format!("/alerts/{beta_id}"));
    assert_eq!(status, 404);
    for page in [&overview, &queue, &page] {
        assert!(!page.contains("beta"), "no other tenant's name: {page}");
    }

    // Triage: a form without the session's token is refused; with it,
    // a dismissal needs a reason, and is then in the history.
    let url = format!("/alerts/{acme_id}/status");
    let (status, _, _) = analyst.post(&url, &[("status", "false-positive"), ("reason", "x")]);
    assert_eq!(status, 403, "a cross-site form has no token");
    let (_, detail) = analyst.get(&format!("/alerts/{acme_id}"));
    let csrf = hidden(&detail, "csrf");
    let (status, _, page) = analyst.post(&url, &[("csrf", &csrf), ("status", "false-positive")]);
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("needs a reason"), "{page}");
    let (status, head, _) = analyst.post(
        &url,
        &[
            ("csrf", &csrf),
            ("status", "false-positive"),
            ("reason", "their backup tool"),
        ],
    );
    assert_eq!(status, 303);
    assert_eq!(
        header(&head, "location"),
        Some(format!("/alerts/{acme_id}").as_str())
    );
    let (_, detail) = analyst.get(&format!("/alerts/{acme_id}"));
    assert!(detail.contains("their backup tool"), "{detail}");
    assert!(detail.contains("user:ann"));
    let stored = env.alerts(&["--tenant", "acme", "--kind", "ioc"])[0].clone();
    assert_eq!(stored["status"], "false-positive");

    // A viewer reads, never triages, and sees no other tenant.
    let viewer = Browser::sign_in(&served, "vic", &vic);
    let (_, detail) = viewer.get(&format!("/alerts/{acme_id}"));
    assert!(
        !detail.contains("Set status"),
        "no triage form for a viewer"
    );
    let csrf = hidden(&detail, "csrf");
    let (status, _, _) = viewer.post(&url, &[("csrf", &csrf), ("status", "new")]);
    assert_eq!(status, 403);
    for page in ["/", "/alerts", "/alerts?tenant=beta"] {
        let (_, body) = viewer.get(page);
        assert!(!body.contains("beta\""), "{page}: {body}");
        assert!(!body.contains(">beta<"), "{page}: {body}");
    }

    // Assign and suppress from the detail page.
    let other = env
        .alerts(&["--tenant", "acme"])
        .into_iter()
        .find(|a| a["kind"] != "campaign" && id(a) != acme_id)
        .unwrap();
    let other_id = other["id"].to_string();
    let (_, detail) = analyst.get(&format!("/alerts/{other_id}"));
    let csrf = hidden(&detail, "csrf");
    let (status, _, page) = analyst.post(
        &format!("/alerts/{other_id}/assign"),
        &[("csrf", &csrf), ("assignee", "ann")],
    );
    assert_eq!(status, 303, "{page}");
    let (status, _, page) = analyst.post(
        &format!("/alerts/{other_id}/suppress"),
        &[
            ("csrf", &csrf),
            ("scope", "endpoint"),
            ("reason", "lab host"),
            ("days", "7"),
        ],
    );
    assert_eq!(status, 303, "{page}");
    let now = env
        .alerts(&["--tenant", "acme"])
        .into_iter()
        .find(|a| a["kind"] != "campaign" && id(a) == other_id)
        .unwrap();
    assert_eq!(now["assignee"], "ann");
    assert_eq!(now["status"], "suppressed");
    let suppressions = env.json(&["suppress", "list", "--format", "json"]);
    assert!(
        suppressions.to_string().contains("lab host"),
        "{suppressions}"
    );

    // Bulk: a preview counts, only the confirmation changes; every
    // ticked alert must be the analyst's.
    let ioc: Vec<String> = env
        .alerts(&["--tenant", "acme", "--kind", "ioc"])
        .iter()
        .map(|a| a["id"].to_string())
        .collect();
    let (_, queue) = analyst.get("/alerts?kind=ioc");
    let csrf = hidden(&queue, "csrf");
    let preview = [
        ("csrf", csrf.as_str()),
        ("kind", "ioc"),
        ("status", "acknowledged"),
    ];
    let (status, _, page) = analyst.post("/alerts/bulk", &preview);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!(
            "<strong id=\"preview-count\">{}</strong>",
            ioc.len()
        )),
        "every acme IOC alert the filter selects, whatever its status: {page}"
    );
    assert!(
        env.alerts(&["--tenant", "acme", "--kind", "ioc"])
            .iter()
            .all(|a| a["status"] != "acknowledged"),
        "a preview changes nothing"
    );
    let ticked = [
        ("csrf", csrf.as_str()),
        ("status", "investigating"),
        ("id", ioc[0].as_str()),
        ("id", beta_id.as_str()),
        ("confirm", "1"),
    ];
    let (status, _, _) = analyst.post("/alerts/bulk", &ticked);
    assert_eq!(
        status, 404,
        "beta's alert is not the analyst's: nothing changes"
    );
    assert_ne!(status_of(&env, &ioc[0]), "investigating");
    let ticked = [
        ("csrf", csrf.as_str()),
        ("status", "investigating"),
        ("id", ioc[0].as_str()),
        ("confirm", "1"),
    ];
    let (status, _, page) = analyst.post("/alerts/bulk", &ticked);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("1 of the 1 alerts ticked changed"), "{page}");
    assert_eq!(status_of(&env, &ioc[0]), "investigating");

    // An admin sees the same detection in the other tenant.
    let ada = last_line(&env.ok(&["user", "add", "ada", "--role", "admin"]));
    let admin = Browser::sign_in(&served, "ada", &ada);
    let beta_ioc = env.alerts(&["--tenant", "beta", "--kind", "ioc"])[0]["id"].to_string();
    let (_, detail) = admin.get(&format!("/alerts/{beta_ioc}"));
    assert!(
        detail.contains("Also seen in <strong>1</strong> other tenant (acme, beta)"),
        "{detail}"
    );
    // The analyst of acme learns the detection is shared, never with whom.
    let acme_ioc = env
        .alerts(&["--tenant", "acme", "--kind", "ioc"])
        .into_iter()
        .find(|a| a["source"] == "msstorageboxes.com")
        .unwrap();
    let (_, detail) = analyst.get(&format!("/alerts/{}", id(&acme_ioc)));
    assert!(
        detail.contains("also seen in tenants other than yours"),
        "{detail}"
    );
    assert!(!detail.contains("beta"), "{detail}");

    // Every page is well-formed HTML5: html5lib reads each without
    // one error (unclosed or misnested tags, stray end tags, bad attributes).
    let mut pages = vec![(
        "login".to_owned(),
        served.send("GET", "/login", &[], None).2,
    )];
    for page in [
        "/",
        "/alerts",
        "/alerts?kind=ioc&severity=high",
        &format!("/alerts/{acme_id}"),
        &format!("/alerts/{beta_id}"),
        "/beacons?tenant=acme",
        "/intel",
    ] {
        pages.push((page.to_owned(), analyst.get(page).1));
    }
    strictly_parsed(&env, &pages);

    // Signing out ends the session: its cookie leads to the form again.
    let (_, home) = analyst.get("/");
    let csrf = hidden(&home, "csrf");
    let (status, _, _) = analyst.post("/logout", &[("csrf", &csrf)]);
    assert_eq!(status, 303);
    assert_eq!(analyst.get("/").0, 303);

    // The static files are in the binary.
    let (status, head, js) = served.send("GET", "/assets/htmx-2.0.11.min.js", &[], None);
    assert_eq!(status, 200);
    assert!(
        header(&head, "content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.contains("htmx"));
}

/// The page's `href` values that start with `prefix`, unescaped.
fn links(page: &str, prefix: &str) -> Vec<String> {
    page.match_indices(&format!("href=\"{prefix}"))
        .map(|(at, _)| {
            let rest = &page[at + 6..];
            rest[..rest.find('"').unwrap()].replace("&amp;", "&")
        })
        .collect()
}

/// The text of the first `<td>` after the `<th>` saying `label`.
fn cell<'p>(page: &'p str, label: &str) -> &'p str {
    let at = page
        .find(&format!("<th>{label}</th><td>"))
        .unwrap_or_else(|| panic!("no {label} row: {page}"));
    let rest = &page[at + label.len() + 13..];
    &rest[..rest.find("</td>").unwrap()]
}

impl Browser<'_> {
    /// Posts a multipart form: the page's token, then `files`.
    fn upload(&self, path: &str, csrf: &str, files: &[(&str, &str, &[u8])]) -> (u16, String) {
        let mut parts = vec![("csrf", "", csrf.as_bytes())];
        parts.extend_from_slice(files);
        let (kind, body) = common::served::form(&parts);
        let (status, _, page) = self.served.send(
            "POST",
            path,
            &[("Cookie", &self.cookie), ("Content-Type", &kind)],
            Some(&body),
        );
        (status, page)
    }
}

#[test]
fn every_view_shows_the_fleet_as_the_cli_does_and_a_viewer_only_their_tenant() {
    let env = Env::new();
    let fleet = env.dir.path().join("fleet");
    env.ok(&[
        "simulate",
        "--out",
        common::path(&fleet),
        "--tenants",
        "3",
        "--endpoints",
        "6",
        "--days",
        "14",
        "--events-per-endpoint-day",
        "20",
    ]);
    let pack = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../intel/3cx");
    env.ok(&["intel", "import", common::path(&pack)]);
    let mut tenants: Vec<String> = std::fs::read_dir(&fleet)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    tenants.sort();
    for t in &tenants {
        env.ok(&["tenant", "add", t]);
        env.ok(&["ingest", "--tenant", t, common::path(&fleet.join(t))]);
    }
    // A tenant with two sensors, one of which stops after an hour.
    env.ok(&["tenant", "add", "quiet"]);
    let mut lines = Vec::new();
    for m in 0..180 {
        let at = |host: &str| {
            common::dns(
                host,
                &format!("2024-05-01T{:02}:{:02}:00Z", m / 60, m % 60),
                "example.org",
            )
        };
        lines.push(at("keeps-on"));
        if m < 60 {
            lines.push(at("went-quiet"));
        }
    }
    let quiet = env.file("quiet.ndjson", &lines.join("\n"));
    env.ok(&["ingest", "--tenant", "quiet", common::path(&quiet)]);

    let first = tenants[0].as_str();
    let ada = last_line(&env.ok(&["user", "add", "ada", "--role", "admin"]));
    let vic = last_line(&env.ok(&["user", "add", "vic", "--role", "viewer", "--tenant", first]));
    let al = last_line(&env.ok(&["user", "add", "al", "--role", "analyst"]));
    let served = Served::start(&env);
    let admin = Browser::sign_in(&served, "ada", &ada);
    let mut pages: Vec<(String, String)> = Vec::new();
    let mut visit = |who: &Browser, path: &str| {
        let (status, page) = who.get(path);
        assert_eq!(status, 200, "{path}: {page}");
        pages.push((path.to_owned(), page.clone()));
        page
    };

    // The overview: exposure as `exposure` counts it, the silent sensor.
    let exposure = env.json(&["exposure", "--format", "json"]);
    let rows = exposure.as_array().unwrap();
    let now: std::collections::BTreeSet<(String, String)> = rows
        .iter()
        .filter(|r| r["to"].is_null())
        .map(|r| (r["tenant"].to_string(), r["endpoint"].to_string()))
        .collect();
    assert!(!now.is_empty(), "the fleet runs the trojanised 3CX");
    let overview = visit(&admin, "/");
    assert!(overview.contains("Exposure to advisories"), "{overview}");
    assert!(
        overview.contains(&format!("<span class=\"badge bad\">{}</span>", now.len())),
        "{} endpoints exposed now: {overview}",
        now.len()
    );
    assert!(overview.contains("Ingest freshness"));
    assert!(
        overview.contains("<code>windows/dns_query</code>"),
        "{overview}"
    );
    // The quiet tenant's own overview names the sensor that stopped.
    let qa = last_line(&env.ok(&[
        "user", "add", "qa", "--role", "analyst", "--tenant", "quiet",
    ]));
    let quiet_view = Browser::sign_in(&served, "qa", &qa).get("/").1;
    let silent = &quiet_view[quiet_view
        .find("1</span> silent feeds")
        .expect("one silent feed")..];
    assert!(silent.contains("went-quiet"), "{silent}");
    assert!(!silent.contains("keeps-on"), "{silent}");

    // Exposure per advisory: every row of the CLI, and the timeline.
    let advisory = rows[0]["advisory"].as_str().unwrap().to_owned();
    let page = visit(&admin, &format!("/exposure?advisory={advisory}"));
    assert!(
        page.contains(&format!(
            "<title>Who ran an affected version of {advisory}, and when</title>"
        )),
        "{page}"
    );
    let listed = rows
        .iter()
        .filter(|r| r["advisory"] == advisory.as_str())
        .count();
    assert_eq!(
        links(&page, "/endpoint?").len(),
        listed,
        "one row per CLI row"
    );

    // An exposed endpoint: its ledger holds the version, and its events.
    let endpoint = &links(&page, "/endpoint?")[0];
    let page = visit(&admin, endpoint);
    assert!(page.contains("Software ledger"));
    assert!(page.contains("3CX"), "{page}");

    // Beacons: a pair's connections, counted as the analysis counts them.
    let beacons = env.json(&["beacons", "--tenant", first, "--format", "json"]);
    let page = visit(&admin, &format!("/beacons?tenant={first}"));
    let pair = links(&page, "/beacons/pair?")[0].clone();
    let asked: std::collections::HashMap<String, String> =
        serde_urlencoded::from_str(pair.split_once('?').unwrap().1).unwrap();
    let row = beacons
        .as_array()
        .unwrap()
        .iter()
        .find(|b| {
            b["src"] == asked["src"].as_str()
                && (b["fqdn"] == asked["dst"].as_str() || b["dst"] == asked["dst"].as_str())
        })
        .unwrap_or_else(|| panic!("{pair} is a pair of `beacons`: {beacons}"));
    let page = visit(&admin, &pair);
    assert_eq!(
        cell(&page, "Connections"),
        row["count"].to_string(),
        "{pair}"
    );
    assert!(
        page.contains("<title>Intervals between connections from"),
        "{page}"
    );
    assert!(page.contains("class=\"chart strip\""), "{page}");

    // Drift and campaigns: the rows the CLI prints.
    let drift = env.json(&["drift", "--format", "json"]);
    let page = visit(&admin, "/drift");
    let count = drift.as_array().unwrap().len();
    assert!(page.contains(&format!("{count} new behaviours.")), "{page}");
    let page = visit(&admin, "/campaigns");
    let campaigns = env.alerts(&["--kind", "campaign"]);
    assert!(!campaigns.is_empty());
    for c in &campaigns {
        assert!(page.contains(c["title"].as_str().unwrap()), "{c}: {page}");
    }

    // An IOC alert shows the archived event that raised it.
    let ioc = env
        .alerts(&["--tenant", first, "--kind", "ioc"])
        .into_iter()
        .next()
        .unwrap();
    let page = visit(&admin, &format!("/alerts/{}", id(&ioc)));
    let raised = &page[page.find("The event that raised it").expect("the event")..];
    let observed = ioc["evidence"]["observed"].as_str().unwrap();
    assert!(raised.contains(observed), "{observed}: {raised}");
    assert!(page.contains("The endpoint around it"));

    // Rules: an admin imports a file and reads the report.
    let rules = visit(&admin, "/rules");
    let csrf = hidden(&rules, "csrf");
    let (status, page) = admin.upload(
        "/rules",
        &csrf,
        &[("file", "whoami.yml", common::WHOAMI_RULE.as_bytes())],
    );
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("1 rules compiled, 1 new or changed"),
        "{page}"
    );
    assert!(page.contains("Whoami run"), "the rule is listed");
    assert!(!page.contains("/tmp"), "no server path: {page}");
    let (status, page) = admin.upload("/rules", &csrf, &[("file", "notes.txt", b"x")]);
    assert_eq!(status, 400, "{page}");
    assert!(
        page.contains("notes.txt: a rule file ends in .yml or .yaml"),
        "{page}"
    );
    assert!(!page.contains("/tmp"), "no server path: {page}");

    // Vet: a release naming the attacker's domain is malicious.
    let vet = visit(&admin, "/vet");
    let script = b"fetch('https://api.msstorageboxes.com/ping');\n";
    let (status, page) = admin.upload(
        "/vet",
        &hidden(&vet, "csrf"),
        &[("release", "app.js", script)],
    );
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<span class=\"badge bad\">malicious</span>"),
        "{page}"
    );
    assert!(page.contains("ioc.network"), "{page}");
    assert!(!page.contains("/tmp"), "no server path: {page}");

    // Users and tokens: a token made here works on the API until revoked.
    let people = visit(&admin, "/people");
    let csrf = hidden(&people, "csrf");
    let (status, _, page) = admin.post(
        "/people/tokens",
        &[
            ("csrf", &csrf),
            ("tenant", first),
            ("scope", "read"),
            ("note", "siem"),
        ],
    );
    assert_eq!(status, 200, "{page}");
    let secret = &page[page.find("<code class=\"secret\">").unwrap() + 21..];
    let secret = &secret[..secret.find('<').unwrap()];
    let (status, _, _) = served.get("/api/v1/alerts", Some(secret));
    assert_eq!(status, 200);
    let token_id = hidden(&page[page.rfind("name=\"id\"").unwrap() - 200..], "id");
    let (status, _, page) = admin.post("/people/revoke", &[("csrf", &csrf), ("id", &token_id)]);
    assert_eq!(status, 200, "{page}");
    assert_eq!(served.get("/api/v1/alerts", Some(secret)).0, 401, "revoked");
    let (status, _, page) = admin.post(
        "/people/users",
        &[
            ("csrf", &csrf),
            ("name", "cy"),
            ("role", "viewer"),
            ("tenants", first),
        ],
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Password, shown this once"), "{page}");
    let audit = visit(&admin, "/audit");
    assert!(
        audit.contains("cy"),
        "the new user is in the audit log: {audit}"
    );

    // Admins only: an analyst is refused users and rule imports.
    let analyst = Browser::sign_in(&served, "al", &al);
    assert_eq!(analyst.get("/people").0, 403);
    let (_, rules) = analyst.get("/rules");
    assert!(!rules.contains("Import rules"));
    let (status, _) = analyst.upload(
        "/rules",
        &hidden(&rules, "csrf"),
        &[("file", "x.yml", b"x")],
    );
    assert_eq!(status, 403);
    assert!(
        !analyst.get("/").1.contains("href=\"/people\""),
        "no Users menu"
    );

    // The incident report: the CLI's and the console's, the decisions
    // with their reasons, the tenant's exposure, no other tenant.
    env.ok(&[
        "alert",
        "status",
        &id(&ioc),
        "false-positive",
        "--reason",
        "vendor CDN, benign",
    ]);
    let file = env.dir.path().join("report.html");
    env.ok(&["report", "--tenant", first, "--out", common::path(&file)]);
    let report = std::fs::read_to_string(&file).unwrap();
    for section in [
        "What happened",
        "Exposure",
        "Before the intel existed",
        "Beacons",
        "Blocked",
        "Open actions",
        "Decisions",
    ] {
        assert!(report.contains(section), "{section}");
    }
    assert!(
        report.contains("vendor CDN, benign"),
        "the reason is in the report"
    );
    for r in rows.iter().filter(|r| r["tenant"] == first) {
        assert!(report.contains(r["endpoint"].as_str().unwrap()), "{r}");
    }
    assert!(
        !report.contains("<script") && !report.contains("href=\"/assets"),
        "self-contained"
    );

    // The same report as PDF, read back by poppler: its pages render and
    // its text says the same.
    let pdf = env.dir.path().join("report.pdf");
    env.ok(&[
        "report",
        "--tenant",
        first,
        "--format",
        "pdf",
        "--out",
        common::path(&pdf),
    ]);
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-"), "a PDF");
    match std::process::Command::new("pdftotext")
        .arg(&pdf)
        .arg("-")
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            for section in [
                "Incident report",
                "What happened",
                "Before the intel existed",
                "Decisions",
            ] {
                assert!(text.contains(section), "{section}: {text}");
            }
            assert!(text.contains("vendor CDN, benign"), "{text}");
            for r in rows.iter().filter(|r| r["tenant"] == first) {
                assert!(text.contains(r["endpoint"].as_str().unwrap()), "{r}");
            }
            let prefix = env.dir.path().join("page");
            let rendered = std::process::Command::new("pdftoppm")
                .args(["-r", "30", "-png"])
                .arg(&pdf)
                .arg(&prefix)
                .status()
                .unwrap();
            assert!(rendered.success());
            let pages = std::fs::read_dir(env.dir.path())
                .unwrap()
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    let name = name.to_string_lossy();
                    name.starts_with("page") && name.ends_with(".png")
                })
                .count();
            let info = std::process::Command::new("pdfinfo")
                .arg(&pdf)
                .output()
                .unwrap();
            let info = String::from_utf8_lossy(&info.stdout);
            let declared: usize = info
                .lines()
                .find_map(|l| l.strip_prefix("Pages:"))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            println!(
                "report PDF: {} bytes, {declared} pages, all rendered",
                bytes.len()
            );
            assert!(
                declared >= 2 && pages == declared,
                "{pages} rendered of {declared}"
            );
        }
        Err(_) => println!("skipped: reading the PDF back (poppler-utils; .ci/run installs it)"),
    }
    let (status, head, _) = served.send(
        "GET",
        &format!("/report?tenant={first}&format=pdf"),
        &[("Cookie", &admin.cookie)],
        None,
    );
    assert_eq!(status, 200);
    assert!(head.contains("application/pdf"), "{head}");

    // A viewer of one tenant sees that tenant only, on every view.
    let viewer = Browser::sign_in(&served, "vic", &vic);
    for path in [
        "/",
        "/exposure",
        "/drift",
        "/campaigns",
        "/intel",
        "/rules",
        "/vet",
        "/audit",
        "/alerts",
        &format!("/report?tenant={first}"),
    ] {
        let page = visit(&viewer, path);
        for other in tenants.iter().skip(1).chain([&"quiet".to_owned()]) {
            assert!(
                !page.contains(other.as_str()),
                "{path} names {other}: {page}"
            );
        }
    }
    let other = &tenants[1];
    assert_eq!(viewer.get(&format!("/beacons?tenant={other}")).0, 404);
    assert_eq!(viewer.get(&format!("/exposure?tenant={other}")).0, 404);
    assert_eq!(
        viewer.get(&format!("/endpoint?tenant={other}&name=x")).0,
        404
    );
    assert_eq!(viewer.get(&format!("/report?tenant={other}")).0, 404);
    let (status, theirs) = viewer.get(&format!("/report?tenant={first}"));
    assert_eq!(status, 200);
    assert!(theirs.contains("vendor CDN, benign"));
    let their_pair = pair.replace(first, other);
    assert_eq!(viewer.get(&their_pair).0, 404);

    strictly_parsed(&env, &pages);
}
