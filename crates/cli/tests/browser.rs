//! The console in a real browser: Debian's Chromium, headless, driven
//! through ChromeDriver. Skipped, saying why, where either is missing
//! (`.ci/run` installs both). Screenshots of the main pages go to
//! `target/screenshots/` for a reviewer to look at.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Env;
use fantoccini::{Client, ClientBuilder, Locator};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// ChromeDriver on a free port, once it answers.
fn chromedriver() -> (Process, u16) {
    let port = common::free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (Process(child), port)
}

async fn browser(driver_port: u16, width: u32) -> Client {
    browser_with(driver_port, width, &[]).await
}

async fn browser_with(driver_port: u16, width: u32, extra: &[&str]) -> Client {
    let mut args: Vec<String> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
    ]
    .iter()
    .chain(extra)
    .map(|a| a.to_string())
    .collect();
    args.push(format!("--window-size={width},1000"));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": CHROMIUM, "args": args }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a Chromium session")
}

/// Whether the browser can run here; prints why not.
fn browser_available() -> bool {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        if !Path::new(tool).exists() {
            println!(
                "skipped: {tool} is not installed (.ci/run installs chromium and chromium-driver)"
            );
            return false;
        }
    }
    true
}

/// `turncoat demo` serving its console: the URL and the admin password
/// it prints.
fn demo(env: &Env) -> (Process, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_turncoat"))
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--endpoints",
            "6",
            "--events-per-endpoint-day",
            "20",
        ])
        .env("TMPDIR", env.dir.path())
        .env("TURNCOAT_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (mut url, mut password) = (None, None);
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(u) = line.strip_prefix("Console: ") {
            url = Some(u.trim_end_matches('/').to_owned());
        }
        if let Some(rest) = line.strip_prefix("Sign in as admin with password ") {
            password = Some(rest.split(' ').next().unwrap().to_owned());
            break;
        }
    }
    (
        Process(child),
        url.expect("the demo printed the console's URL"),
        password.expect("the demo printed the admin's password"),
    )
}

/// A viewer `vic` of `tenant` in the demo's data; its password.
fn viewer_of(env: &Env, tenant: &str) -> String {
    let demo = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("turncoat-demo-")
        })
        .expect("the demo's directory");
    let out = Command::new(env!("CARGO_BIN_EXE_turncoat"))
        .arg("--data")
        .arg(demo.join("data"))
        .args(["user", "add", "vic", "--role", "viewer", "--tenant", tenant])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned()
}

async fn sign_in(client: &Client, base: &str, user: &str, password: &str) {
    client.goto(&format!("{base}/login")).await.unwrap();
    client
        .find(Locator::Css("input[name=username]"))
        .await
        .unwrap()
        .send_keys(user)
        .await
        .unwrap();
    client
        .find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    let submit = client
        .find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap();
    click_and_load(client, submit).await;
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: a PNG");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Clicks `element` and waits until the page it leads to has loaded
/// (a form's POST, its redirect and the page after).
async fn click_and_load(client: &Client, element: fantoccini::elements::Element) {
    client
        .execute("window.__before_click = true;", vec![])
        .await
        .unwrap();
    element.click().await.unwrap();
    let started = Instant::now();
    loop {
        let loaded = client
            .execute(
                "return window.__before_click === undefined && document.readyState === 'complete';",
                vec![],
            )
            .await;
        if loaded.is_ok_and(|v| v == serde_json::json!(true)) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the page after the click did not load"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Text of the page's `main`.
async fn main_text(client: &Client) -> String {
    client
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[test]
fn an_analyst_triages_the_demo_s_3cx_alerts_in_chromium() {
    if !browser_available() {
        return;
    }
    let env = Env::new();
    let (_demo, base, password) = demo(&env);
    let (_driver, port) = chromedriver();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = browser(port, 1280).await;
        sign_in(&client, &base, "admin", &password).await;
        assert_eq!(client.current_url().await.unwrap().path(), "/");
        let overview = main_text(&client).await;
        assert!(overview.contains("Open alerts per tenant"), "{overview}");
        screenshot(&client, "overview").await;

        // The queue shows the 3CX detections; open one.
        client
            .goto(&format!("{base}/alerts?kind=ioc"))
            .await
            .unwrap();
        let queue = main_text(&client).await;
        assert!(queue.contains("(SmoothOperator)"), "the 3CX campaign: {queue}");
        screenshot(&client, "alerts").await;
        let link = client
            .find(Locator::XPath(
                "//main//table//a[contains(., 'known-bad domain')]",
            ))
            .await
            .unwrap();
        let title = link.text().await.unwrap();
        let domain = title
            .trim_start_matches("contact with known-bad domain ")
            .split(' ')
            .next()
            .unwrap()
            .to_owned();
        click_and_load(&client, link).await;
        let detail_url = client.current_url().await.unwrap();
        assert!(detail_url.path().starts_with("/alerts/"), "{detail_url}");

        // Mark it a false positive, with a reason.
        let status = client
            .find(Locator::Css("select[name=status]"))
            .await
            .unwrap();
        status.select_by_value("false-positive").await.unwrap();
        client
            .find(Locator::Css("input[name=reason]"))
            .await
            .unwrap()
            .send_keys("the customer's backup service")
            .await
            .unwrap();
        let set = client
            .find(Locator::XPath("//button[text()='Set status']"))
            .await
            .unwrap();
        click_and_load(&client, set).await;
        let detail = main_text(&client).await;
        assert!(detail.contains("false-positive"), "{detail}");
        assert!(detail.contains("the customer's backup service"), "{detail}");
        screenshot(&client, "alert-detail").await;

        // A POST without the page's token (what another site's page
        // would send with the cookie) is refused.
        let refused = client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 fetch(location.pathname + '/status', {method: 'POST',
                   headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                   body: 'status=new'}).then(r => done(r.status));",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(refused, serde_json::json!(403));

        // New intel from another feed names the dismissed alert's
        // domain: uploaded, it brings the alert back.
        let feed = env.dir.path().join("second-feed.csv");
        std::fs::write(&feed, format!("indicator,type\n{domain},hostname\n")).unwrap();
        client.goto(&format!("{base}/intel")).await.unwrap();
        client
            .find(Locator::Css("input[type=file]"))
            .await
            .unwrap()
            .send_keys(feed.to_str().unwrap())
            .await
            .unwrap();
        let import = client
            .find(Locator::XPath("//button[text()='Import']"))
            .await
            .unwrap();
        click_and_load(&client, import).await;
        let report = main_text(&client).await;
        assert!(report.contains("Retro-hunt"), "{report}");
        screenshot(&client, "intel-import").await;
        client.goto(detail_url.as_str()).await.unwrap();
        let detail = main_text(&client).await;
        assert!(detail.contains("resurfaced"), "{detail}");
        let status_row = client
            .find(Locator::XPath("//tr[th='Status']/td"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(status_row.starts_with("new"), "{status_row}");

        // A viewer of another tenant cannot reach this alert by its URL,
        // nor read any other tenant's name on any page.
        let owner = client
            .find(Locator::XPath("//tr[th='Tenant']/td"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let theirs = if owner == "initech" { "globex" } else { "initech" };
        let viewer_password = viewer_of(&env, theirs);
        let viewer = browser(port, 1280).await;
        sign_in(&viewer, &base, "vic", &viewer_password).await;
        viewer.goto(detail_url.as_str()).await.unwrap();
        let refused = main_text(&viewer).await;
        assert!(refused.contains("No such alert in your tenants"), "{refused}");
        for page in ["/", "/alerts", "/beacons", "/intel", detail_url.path()] {
            viewer.goto(&format!("{base}{page}")).await.unwrap();
            let source = viewer.source().await.unwrap();
            for other in ["acme-corp", "globex", "initech"].iter().filter(|t| **t != theirs) {
                assert!(!source.contains(other), "{page} names {other}: {source}");
            }
        }
        screenshot(&viewer, "viewer-overview").await;
        viewer.close().await.unwrap();

        // Dark mode, as the reader's system asks for it: a dark page.
        let dark = browser_with(port, 1280, &["--force-dark-mode"]).await;
        sign_in(&dark, &base, "vic", &viewer_password).await;
        let background = dark
            .execute(
                "return matchMedia('(prefers-color-scheme: dark)').matches
                    ? getComputedStyle(document.body).backgroundColor : 'light';",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(background, serde_json::json!("rgb(22, 24, 26)"), "the dark palette");
        screenshot(&dark, "overview-dark").await;
        dark.close().await.unwrap();

        // The beacon page draws each pair's sub-scores.
        client
            .goto(&format!("{base}/beacons?tenant=acme-corp"))
            .await
            .unwrap();
        let chart = client
            .find(Locator::Css("main svg.scores title"))
            .await
            .unwrap();
        let label = chart.html(true).await.unwrap();
        assert!(label.contains("timing"), "{label}");
        screenshot(&client, "beacons").await;

        // The queue's keyboard: j down to the first alert (campaign rows
        // come first), o opens it.
        client.goto(&format!("{base}/alerts")).await.unwrap();
        let rows_before = client
            .execute(
                "const rows = Array.from(document.querySelectorAll('#queue tbody tr'));
                 return rows.findIndex(r => r.querySelector('a') !== null);",
                vec![],
            )
            .await
            .unwrap()
            .as_i64()
            .unwrap();
        let first = client
            .find(Locator::Css("#queue tbody tr a"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .unwrap();
        client
            .execute("window.__before_click = true;", vec![])
            .await
            .unwrap();
        let body = client.find(Locator::Css("body")).await.unwrap();
        for _ in 0..=rows_before {
            body.send_keys("j").await.unwrap();
        }
        body.send_keys("o").await.unwrap();
        let started = Instant::now();
        while client.current_url().await.unwrap().path() != first {
            assert!(started.elapsed() < Duration::from_secs(10), "o did not open {first}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // A pair's page draws its inter-arrival histogram and timeline.
        client
            .goto(&format!("{base}/beacons?tenant=acme-corp"))
            .await
            .unwrap();
        let pair = client
            .find(Locator::Css("main a[href^='/beacons/pair']"))
            .await
            .unwrap();
        click_and_load(&client, pair).await;
        let bars = client
            .find_all(Locator::Css("main svg.histogram rect"))
            .await
            .unwrap();
        let ticks = client
            .find_all(Locator::Css("main svg.strip line.tick"))
            .await
            .unwrap();
        assert!(!bars.is_empty() && ticks.len() > 10, "{} bars, {} ticks", bars.len(), ticks.len());
        screenshot(&client, "beacon-pair").await;

        // Every view, at 1280 and 800 px wide: no page-wide scrolling,
        // and a screenshot of each for a reviewer.
        let views = [
            ("overview", "/"),
            ("alerts", "/alerts"),
            ("exposure", "/exposure"),
            ("beacons", "/beacons?tenant=acme-corp"),
            ("drift", "/drift"),
            ("campaigns", "/campaigns"),
            ("intel", "/intel"),
            ("rules", "/rules"),
            ("vet", "/vet"),
            ("audit", "/audit"),
            ("people", "/people"),
            ("report", "/report?tenant=acme-corp"),
        ];
        for width in [1280, 800] {
            client.set_window_size(width, 1000).await.unwrap();
            for (name, path) in views {
                client.goto(&format!("{base}{path}")).await.unwrap();
                let overflow = client
                    .execute(
                        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                        vec![],
                    )
                    .await
                    .unwrap();
                assert!(
                    overflow.as_i64().unwrap() <= 0,
                    "{path} at {width} px: horizontal overflow {overflow}"
                );
                if width == 800 {
                    screenshot(&client, &format!("{name}-800px")).await;
                } else if !["overview", "alerts", "beacons"].contains(&name) {
                    screenshot(&client, name).await;
                }
            }
        }
        // The exposure timeline draws who ran the trojanised version.
        client.goto(&format!("{base}/exposure")).await.unwrap();
        let spans = client
            .find_all(Locator::Css("main svg.timeline rect[class^='series-'] title"))
            .await
            .unwrap();
        assert!(!spans.is_empty(), "the timeline has spans");
        client.close().await.unwrap();
    });
}
