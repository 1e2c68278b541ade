//! `turncoat serve`'s HTTP ingest beside the CLI's ingest of the same
//! file, in the same run: what the HTTP path (admission, decompression,
//! spooling, the commit queue, the answer after commit) costs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use turncoat_core::{Actor, TokenScope};
use turncoat_output::{OutputFormat, print_json};
use turncoat_store::NewTokenOwner;

use crate::measure::{
    Clock, cli_ingest, indicators, peak_rss_mb, prepared_store, print_rows, simulated_ecs,
};

pub fn http_ingest(
    events: u64,
    indicator_count: usize,
    dir: &Path,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let (ecs, n, bytes) = simulated_ecs(events, dir)?;
    let gz = dir.join("ecs.ndjson.gz");
    {
        let mut encoder = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz)?,
            flate2::Compression::default(),
        );
        std::io::copy(&mut std::fs::File::open(&ecs)?, &mut encoder)?;
        encoder.finish()?;
    }
    let gz_bytes = std::fs::metadata(&gz)?.len();
    let intel = indicators(indicator_count, 11);

    // Baseline: the CLI's ingest of the gzip file.
    let (mut store, tenant) = prepared_store(&dir.join("cli"), &intel)?;
    let clock = Clock::start();
    let report = cli_ingest(&mut store, &tenant, &gz)?;
    let baseline = clock.row("baseline: CLI ingest of the .gz file", report.events, None);
    drop(store);

    // The same file sent to a server in this process.
    let data = dir.join("http");
    let (mut store, tenant) = prepared_store(&data, &intel)?;
    let (_, secret) = turncoat_auth::create_token(
        &mut store,
        NewTokenOwner::Tenant(&tenant, TokenScope::Ingest),
        "bench",
        None,
        &Actor::Cli,
    )?;
    drop(store);
    let served = Served::start(data, Some(1))?;
    let addr = served.addr;
    let body = std::fs::read(&gz)?;
    let clock = Clock::start();
    let answer = post(addr, &secret, &body)?;
    let accepted = answer["events"].as_u64().unwrap_or(0);
    let http = clock.row(
        "HTTP ingest: POST gzip, answered after commit",
        accepted,
        Some(baseline.per_second),
    );
    served.stop()?;
    anyhow::ensure!(
        accepted == report.events,
        "the server stored {accepted} events, the CLI {}: {answer}",
        report.events
    );
    let rows = vec![baseline, http];
    let summary = serde_json::json!({
        "events": n,
        "input_mb": bytes as f64 / 1e6,
        "gzip_mb": gz_bytes as f64 / 1e6,
        "peak_rss_mb": peak_rss_mb(),
        "rows": rows,
    });
    match format {
        OutputFormat::Json => print_json(&summary)?,
        OutputFormat::Table => {
            println!(
                "ingest of {n} ECS events ({:.0} MB, {:.0} MB gzip), {} indicators loaded",
                bytes as f64 / 1e6,
                gz_bytes as f64 / 1e6,
                intel.len()
            );
            print_rows(&rows)?;
        }
    }
    Ok(())
}

/// Sends the body as one request and reads the JSON answer.
fn post(addr: std::net::SocketAddr, token: &str, body: &[u8]) -> anyhow::Result<serde_json::Value> {
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "POST /api/v1/tenants/bench/ingest HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    answer(stream, 202)
}

/// `GET /api/v1/alerts` latency with `alerts` stored across 10 tenants,
/// pages of 100 read by an admin (every tenant) and by one tenant's
/// token, first pages and deep ones; beside the way it was done before
/// keyset paging (the scope's whole list read, sorted and paged in
/// memory), timed in the same run.
pub fn api_alerts(alerts: u64, dir: &Path, format: OutputFormat) -> anyhow::Result<()> {
    use turncoat_core::{AlertKind, Evidence, Finding, FindingKey, Severity, Time};
    use turncoat_store::{FindingMode, Store};
    let data = dir.join("data");
    let (mut store, _) = prepared_store(&data, &[])?;
    let mut tenants = vec![store.tenants()?.remove(0)];
    for i in 1..10 {
        tenants.push(store.add_tenant(
            &turncoat_core::TenantName::new(&format!("t{i}"))?,
            &Actor::Cli,
        )?);
    }
    let clock = Clock::start();
    let per_tenant = alerts / tenants.len() as u64;
    for (t, tenant) in tenants.iter().enumerate() {
        let mut batch = Vec::with_capacity(20_000);
        for i in 0..per_tenant {
            let time = Time(1_680_000_000_000_000 + (i as i64 % 86_400) * 1_000_000);
            batch.push((
                Finding {
                    endpoint: format!("host-{}", i % 2_000),
                    kind: AlertKind::Ioc,
                    source: format!("c2-{t}-{i}.example"),
                    title: format!("contact with known-bad domain c2-{t}-{i}.example"),
                    severity: Severity::ALL[(i % 4) as usize + 1],
                    campaign: None,
                    key: FindingKey::pair(),
                    first_seen: time,
                    last_seen: time,
                    count: 1,
                    evidence: Evidence {
                        observed: format!("c2-{t}-{i}.example"),
                        time,
                        ..Evidence::default()
                    },
                },
                None,
            ));
            if batch.len() == 20_000 {
                store.record_findings(tenant, &batch, FindingMode::Add)?;
                batch.clear();
            }
        }
        store.record_findings(tenant, &batch, FindingMode::Add)?;
    }
    let stored = clock.row("store the alerts", per_tenant * tenants.len() as u64, None);
    let (_, admin_password) = turncoat_auth::add_user(
        &mut store,
        "bench-admin",
        turncoat_core::Role::Admin,
        &[],
        None,
        &Actor::Cli,
    )?;
    let (_, analyst_password) = turncoat_auth::add_user(
        &mut store,
        "bench-analyst",
        turncoat_core::Role::Analyst,
        &tenants[3..4],
        None,
        &Actor::Cli,
    )?;
    let (_, admin_secret) = turncoat_auth::create_token(
        &mut store,
        NewTokenOwner::User("bench-admin"),
        "bench",
        None,
        &Actor::Cli,
    )?;
    let (_, tenant_secret) = turncoat_auth::create_token(
        &mut store,
        NewTokenOwner::Tenant(&tenants[3], TokenScope::Read),
        "bench",
        None,
        &Actor::Cli,
    )?;

    // Baseline: the whole list of every tenant, sorted, one page taken.
    let all = store.all_tenants()?;
    let mut before = Vec::new();
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let rows = turncoat_engine::alerts::select(&store, &all, &Default::default())?;
        let page: Vec<_> = rows.into_iter().take(100).collect();
        std::hint::black_box(page);
        before.push(started.elapsed().as_secs_f64() * 1e3);
    }
    drop(store);

    let served = Served::start(data, None)?;
    let addr = served.addr;
    let mut measured = Vec::new();
    for (who, secret) in [
        ("admin, every tenant", &admin_secret),
        ("one tenant's token", &tenant_secret),
    ] {
        let mut latencies = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..400 {
            let path = match &cursor {
                Some(c) => format!("/api/v1/alerts?limit=100&cursor={c}"),
                None => "/api/v1/alerts?limit=100".to_owned(),
            };
            let started = std::time::Instant::now();
            let page = get(addr, secret, &path)?;
            latencies.push(started.elapsed().as_secs_f64() * 1e3);
            anyhow::ensure!(
                page["items"].as_array().is_some_and(|i| i.len() == 100),
                "{page}"
            );
            cursor = page["next"].as_str().map(str::to_owned);
        }
        latencies.sort_by(f64::total_cmp);
        let at =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        // The first page (the queue as an analyst opens it) on its own:
        // it also reads the campaigns, which later pages skip.
        let mut first = Vec::new();
        for _ in 0..20 {
            let started = std::time::Instant::now();
            std::hint::black_box(get(addr, secret, "/api/v1/alerts?limit=100")?);
            first.push(started.elapsed().as_secs_f64() * 1e3);
        }
        first.sort_by(f64::total_cmp);
        measured.push(serde_json::json!({
            "caller": who,
            "requests": latencies.len(),
            "p50_ms": at(0.5),
            "p99_ms": at(0.99),
            "max_ms": latencies[latencies.len() - 1],
            "first_page_p50_ms": first[first.len() / 2],
            "first_page_max_ms": first[first.len() - 1],
        }));
    }
    // The console's pages on the same store, by session: the server's
    // time is what a request takes here (no network between).
    let first_id = get(addr, &admin_secret, "/api/v1/alerts?limit=1&kind=ioc")?["items"][0]["id"]
        .as_i64()
        .unwrap_or(1);
    let mut console = Vec::new();
    for (who, user, password) in [
        ("admin, every tenant", "bench-admin", admin_password),
        ("analyst of one tenant", "bench-analyst", analyst_password),
    ] {
        let password = password.unwrap_or_default();
        let cookie = session_cookie(addr, user, &password)?;
        let id = if user == "bench-admin" {
            first_id
        } else {
            get(addr, &tenant_secret, "/api/v1/alerts?limit=1")?["items"][0]["id"]
                .as_i64()
                .unwrap_or(1)
        };
        let tenant = if user == "bench-admin" { "t1" } else { "t3" };
        let mut pages = vec![
            "/".to_owned(),
            "/alerts".to_owned(),
            "/alerts?severity=high&q=c2-3".to_owned(),
            format!("/alerts/{id}"),
            format!("/endpoint?tenant={tenant}&name=host-7"),
            "/exposure".to_owned(),
            format!("/beacons?tenant={tenant}"),
            "/drift".to_owned(),
            "/campaigns".to_owned(),
            "/intel".to_owned(),
            "/rules".to_owned(),
            "/vet".to_owned(),
            "/audit".to_owned(),
        ];
        if user == "bench-admin" {
            pages.push("/people".to_owned());
        }
        for page in pages {
            let mut latencies = Vec::new();
            for _ in 0..20 {
                let started = std::time::Instant::now();
                let html = get_page(addr, &cookie, &page)?;
                latencies.push(started.elapsed().as_secs_f64() * 1e3);
                std::hint::black_box(html);
            }
            latencies.sort_by(f64::total_cmp);
            console.push(serde_json::json!({
                "caller": who,
                "page": page,
                "requests": latencies.len(),
                "p50_ms": latencies[latencies.len() / 2],
                "max_ms": latencies[latencies.len() - 1],
            }));
        }
    }
    served.stop()?;
    before.sort_by(f64::total_cmp);
    let summary = serde_json::json!({
        "alerts": per_tenant * tenants.len() as u64,
        "store_rows": [stored],
        "baseline_whole_list_ms": before[before.len() / 2],
        "pages": measured,
        "console_pages": console,
    });
    match format {
        OutputFormat::Json => print_json(&summary)?,
        OutputFormat::Table => println!("{}", serde_json::to_string_pretty(&summary)?),
    }
    Ok(())
}

/// `GET path` with a bearer token; the JSON answer.
fn get(addr: std::net::SocketAddr, token: &str, path: &str) -> anyhow::Result<serde_json::Value> {
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )?;
    answer(stream, 200)
}

/// A console session's cookie (`name=value`), signed in by the API.
fn session_cookie(
    addr: std::net::SocketAddr,
    user: &str,
    password: &str,
) -> anyhow::Result<String> {
    let body = serde_json::json!({"username": user, "password": password}).to_string();
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "POST /api/v1/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    response
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no session: {response}"))
}

/// `GET path` of the console with a session cookie; the HTML.
fn get_page(addr: std::net::SocketAddr, cookie: &str, path: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    anyhow::ensure!(
        response.starts_with("HTTP/1.1 200"),
        "{path}: {}",
        &response[..response.len().min(400)]
    );
    Ok(response)
}

/// Reads a `Connection: close` answer: its JSON, if the status is `want`.
pub(crate) fn answer(mut stream: TcpStream, want: u16) -> anyhow::Result<serde_json::Value> {
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, json) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no answer: {response}"))?;
    anyhow::ensure!(
        head.starts_with(&format!("HTTP/1.1 {want}")),
        "{head}\n{json}"
    );
    Ok(serde_json::from_str(json)?)
}

/// A server on the store in `data`, in this process, on a free port.
struct Served {
    runtime: tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<Result<(), turncoat_server::ServerError>>,
}

impl Served {
    /// With `workers` tokio threads (the default: one per core).
    fn start(data: std::path::PathBuf, workers: Option<usize>) -> anyhow::Result<Served> {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if let Some(n) = workers {
            builder.worker_threads(n);
        }
        let runtime = builder.enable_all().build()?;
        let server = runtime.block_on(turncoat_server::Server::bind(
            "127.0.0.1:0".parse()?,
            turncoat_store::StoreLocation::Dir(data),
            None,
            turncoat_server::IngestLimits::default(),
        ))?;
        let addr = server.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = runtime.spawn(server.run(async {
            let _ = stopped.await;
        }));
        Ok(Served {
            runtime,
            addr,
            stop,
            serving,
        })
    }

    /// Stops it as SIGTERM would, and waits.
    fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.runtime.block_on(self.serving)??;
        Ok(())
    }
}
