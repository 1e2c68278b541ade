//! HTTP ingest through the binary: a fleet sent to `serve` is stored as
//! `ingest` stores it, bodies are committed in chunks exactly once even
//! when sent again or cut off by a kill -9, a full queue answers 429
//! without the server's memory growing, a stop commits what was taken,
//! and Beats' bulk requests are answered per item.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use common::served::{Served, last_line, read_response};
use common::{Env, dns, path};
use serde_json::Value;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 3).unwrap()
}

/// `POST` a body to a tenant's ingest with the token: status, headers,
/// parsed answer.
fn ingest(
    served: &Served,
    tenant: &str,
    query: &str,
    token: &str,
    encoding: Option<&str>,
    body: &[u8],
) -> (u16, String, Value) {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Authorization", auth.as_str())];
    if let Some(e) = encoding {
        headers.push(("Content-Encoding", e));
    }
    let url = format!("/api/v1/tenants/{tenant}/ingest{query}");
    let (status, head, body) = served.send("POST", &url, &headers, Some(body));
    let answer = serde_json::from_str(&body).unwrap_or(Value::Null);
    (status, head, answer)
}

/// A tenant and its ingest token.
fn tenant_with_token(env: &Env, tenant: &str) -> String {
    env.ok(&["tenant", "add", tenant]);
    last_line(&env.ok(&["token", "create", "--tenant", tenant, "--scope", "ingest"]))
}

fn pack() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../intel/3cx")
}

/// Every file under `dir`, in the order `ingest` reads them (depth
/// first, sorted by name).
fn files_in_walk_order(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort_by_key(|p| p.file_name().unwrap().to_owned());
    entries
        .into_iter()
        .flat_map(|p| {
            if p.is_dir() {
                files_in_walk_order(&p)
            } else {
                vec![p]
            }
        })
        .collect()
}

#[test]
fn a_fleet_sent_over_http_is_stored_as_the_cli_stores_it() {
    let cli = Env::new();
    let fleet = cli.dir.path().join("fleet");
    cli.ok(&[
        "simulate",
        "--out",
        path(&fleet),
        "--tenants",
        "1",
        "--endpoints",
        "12",
        "--days",
        "14",
        "--events-per-endpoint-day",
        "20",
    ]);
    let tenant_dir = fleet.join("acme-corp");
    cli.ok(&["tenant", "add", "acme-corp"]);
    cli.ok(&["intel", "import", path(&pack())]);
    cli.ok(&["ingest", "--tenant", "acme-corp", path(&tenant_dir)]);

    let http = Env::new();
    let token = tenant_with_token(&http, "acme-corp");
    http.ok(&["intel", "import", path(&pack())]);
    let served = Served::start(&http);
    let files = files_in_walk_order(&tenant_dir);
    assert!(files.len() >= 5, "{files:?}");
    for (i, file) in files.iter().enumerate() {
        let raw = std::fs::read(file).unwrap();
        // Named as the CLI names them, so that evidence reads the same;
        // sent plain, gzip and zstd in turn.
        let query = format!("?name={}", file.display());
        let (encoding, body) = match i % 3 {
            0 => (None, raw.clone()),
            1 => (Some("gzip"), gzip(&raw)),
            _ => (Some("zstd"), zstd(&raw)),
        };
        let (status, _, answer) = ingest(&served, "acme-corp", &query, &token, encoding, &body);
        assert_eq!(status, 202, "{}: {answer}", file.display());
        assert_eq!(answer["bytes"].as_u64(), Some(raw.len() as u64));
    }
    let want = cli.alert_facts();
    assert!(want.len() >= 3, "the fleet raises alerts: {want:?}");
    assert!(want.iter().any(|a| a.contains("\"kind\":\"beacon\"")));
    assert!(want.iter().any(|a| a.contains("\"kind\":\"ioc\"")));
    assert_eq!(http.alert_facts(), want);
    assert_eq!(http.tenant_events(), cli.tenant_events());
    let metrics = served.get("/metrics", None).2;
    let ingested = cli.tenant_events()[0].1;
    assert!(
        metrics.contains(&format!(
            "turncoat_ingested_events_total{{tenant=\"acme-corp\"}} {ingested}"
        )),
        "{metrics}"
    );
    assert!(metrics.contains("turncoat_ingest_commit_seconds_count"));
}

/// `lines` DNS events, about 170 bytes each, with a line that is not
/// JSON at `bad_line` (1-based).
fn dns_lines(lines: usize, bad_line: usize) -> Vec<u8> {
    dns_lines_of("ws", lines, bad_line)
}

/// [`dns_lines`] of endpoints whose names start with `prefix`.
fn dns_lines_of(prefix: &str, lines: usize, bad_line: usize) -> Vec<u8> {
    let mut out = String::new();
    for i in 1..=lines {
        if i == bad_line {
            out.push_str("{this is not json\n");
            continue;
        }
        let time = format!(
            "2023-03-25T{:02}:{:02}:{:02}Z",
            (i / 3600) % 24,
            (i / 60) % 60,
            i % 60
        );
        let name = if i % 1000 == 0 {
            "msstorageboxes.com".to_owned()
        } else {
            format!("host{i}.example.org")
        };
        out.push_str(&dns(&format!("{prefix}-{:02}", i % 17), &time, &name));
        out.push('\n');
    }
    out.into_bytes()
}

#[test]
fn a_body_is_committed_in_chunks_once_even_when_sent_again() {
    let env = Env::new();
    let token = tenant_with_token(&env, "acme");
    env.ok(&["intel", "import", path(&pack())]);
    let served = Served::start_with(&env, &["--ingest-chunk-mib", "1"], "http");
    let body = dns_lines(14_000, 7_001);
    assert!(
        body.len() > 2 << 20,
        "at least three chunks: {}",
        body.len()
    );
    let (status, _, first) = ingest(&served, "acme", "", &token, Some("gzip"), &gzip(&body));
    assert_eq!(status, 202, "{first}");
    let chunks = first["chunks"].as_array().unwrap();
    assert!(chunks.len() >= 3, "{first}");
    assert_eq!(first["events"], 13_999);
    assert_eq!(first["skipped_records"], 1);
    // The bad line is named by its line in the whole body.
    let issues: Vec<&Value> = chunks
        .iter()
        .flat_map(|c| c["issues"].as_array().into_iter().flatten())
        .collect();
    assert_eq!(issues.len(), 1, "{first}");
    assert_eq!(issues[0]["line"], 7_001);
    let first_lines: Vec<u64> = chunks
        .iter()
        .map(|c| c["first_line"].as_u64().unwrap())
        .collect();
    assert_eq!(first_lines[0], 1);
    assert!(
        first_lines.windows(2).all(|w| w[0] < w[1]),
        "{first_lines:?}"
    );

    let (status, _, again) = ingest(&served, "acme", "", &token, Some("gzip"), &gzip(&body));
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["events"], 0, "{again}");
    assert!(
        again["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "already-ingested"),
        "{again}"
    );
    assert_eq!(env.tenant_events(), vec![("acme".to_owned(), 13_999)]);
    // The C2 domain every 1,000th line: 12 contacts on their endpoints.
    let iocs = env.alerts(&["--kind", "ioc"]);
    assert!(!iocs.is_empty());
}

/// Starts a chunked request and sends `first` without ending it.
fn open_stream(served: &Served, url: &str, token: &str, first: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(&served.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    write!(
        stream,
        "POST {url} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        served.addr
    )
    .unwrap();
    send_chunk(&mut stream, first);
    stream
}

fn send_chunk(stream: &mut TcpStream, bytes: &[u8]) {
    write!(stream, "{:x}\r\n", bytes.len()).unwrap();
    stream.write_all(bytes).unwrap();
    stream.write_all(b"\r\n").unwrap();
    stream.flush().unwrap();
}

fn end_stream(mut stream: TcpStream) -> (u16, String, String) {
    stream.write_all(b"0\r\n\r\n").unwrap();
    read_response(&mut stream)
}

/// The server's peak resident memory, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_full_queue_answers_429_and_memory_stays_bounded_under_a_flood() {
    let env = Env::new();
    let token = tenant_with_token(&env, "acme");
    let served = Served::start_with(
        &env,
        &[
            "--max-ingest-requests",
            "2",
            "--ingest-queue",
            "1",
            "--ingest-chunk-mib",
            "1",
        ],
        "http",
    );
    let url = "/api/v1/tenants/acme/ingest";
    let line = |i: usize| dns(&format!("ws-{i}"), "2023-03-25T08:00:00Z", "example.org") + "\n";
    // Two streams hold both admissions...
    let slow: Vec<TcpStream> = (0..2)
        .map(|i| open_stream(&served, url, &token, line(i).as_bytes()))
        .collect();
    thread::sleep(Duration::from_millis(300));
    // ...so a third request is turned away, told when to come back.
    let (status, head, body) = served.send(
        "POST",
        url,
        &[("Authorization", &format!("Bearer {token}"))],
        Some(line(9).as_bytes()),
    );
    assert_eq!(status, 429, "{body}");
    let retry: u64 = head
        .lines()
        .find_map(|l| l.strip_prefix("retry-after: "))
        .unwrap_or_else(|| panic!("no Retry-After: {head}"))
        .trim()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(head.contains("application/problem+json"));
    for stream in slow {
        let (status, _, body) = end_stream(stream);
        assert_eq!(status, 202, "{body}");
    }

    // A flood: 24 clients at once, each sending 12 MiB, over 288 MiB in all,
    // against 2 admissions. The server spools to disk: its memory must
    // not follow the bodies.
    // Bodies of distinct endpoints: identical chunks would rightly be
    // recognised as sent before.
    let bodies: Vec<Vec<u8>> = (0..24)
        .map(|i| dns_lines_of(&format!("c{i:02}"), 75_000, 0))
        .collect();
    assert!(bodies[0].len() >= 12 << 20, "{}", bodies[0].len());
    let before = peak_rss_kib(served.child.id());
    let started = Instant::now();
    let outcomes: Vec<u16> = thread::scope(|s| {
        let handles: Vec<_> = (0..24)
            .map(|i| {
                let (served, token, body) = (&served, &token, &bodies[i]);
                s.spawn(move || {
                    served
                        .send(
                            "POST",
                            url,
                            &[("Authorization", &format!("Bearer {token}"))],
                            Some(body),
                        )
                        .0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let peak = peak_rss_kib(served.child.id());
    let accepted = outcomes.iter().filter(|&&s| s == 202).count();
    let refused = outcomes.iter().filter(|&&s| s == 429).count();
    println!(
        "flood: {accepted} accepted, {refused} refused in {:.1} s; peak RSS {} MiB before, {} MiB after",
        started.elapsed().as_secs_f64(),
        before / 1024,
        peak / 1024
    );
    assert_eq!(accepted + refused, 24, "{outcomes:?}");
    assert!(accepted >= 2 && refused >= 1, "{outcomes:?}");
    assert!(
        peak < 256 * 1024,
        "peak RSS {} MiB while 288 MiB were sent",
        peak / 1024
    );
    let stored = env.tenant_events()[0].1;
    assert_eq!(stored, 2 + accepted as u64 * 75_000);
}

#[test]
fn a_server_killed_mid_body_loses_and_duplicates_nothing_once_it_is_sent_again() {
    let env = Env::new();
    let token = tenant_with_token(&env, "acme");
    env.ok(&["intel", "import", path(&pack())]);
    let body = dns_lines(60_000, 0);
    let args = ["--ingest-chunk-mib", "1"];
    let mut served = Served::start_with(&env, &args, "http");
    let sender = {
        let (addr, token, body) = (served.addr.clone(), token.clone(), body.clone());
        thread::spawn(move || {
            let mut stream = TcpStream::connect(&addr).unwrap();
            let head = format!(
                "POST /api/v1/tenants/acme/ingest HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            // Slowly enough that the kill falls mid-body.
            for piece in body.chunks(256 * 1024) {
                if stream.write_all(piece).is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(60));
            }
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest);
        })
    };
    // Kill once some chunks are committed and before the body is in.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stored = env.tenant_events()[0].1;
        if stored > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "nothing committed in a minute");
        thread::sleep(Duration::from_millis(50));
    }
    served.child.kill().unwrap(); // SIGKILL
    served.child.wait().unwrap();
    sender.join().unwrap();
    let partial = env.tenant_events()[0].1;
    assert!(partial > 0 && partial < 60_000, "{partial}");

    // The sender got no answer, so it sends the whole body again.
    served = Served::start_with(&env, &args, "http");
    let (status, _, answer) = ingest(&served, "acme", "", &token, None, &body);
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["events"].as_u64().unwrap(),
        60_000 - partial,
        "{answer}"
    );
    assert_eq!(env.tenant_events(), vec![("acme".to_owned(), 60_000)]);

    // The same alerts as a clean CLI ingest of the body.
    let clean = Env::new();
    clean.ok(&["tenant", "add", "acme"]);
    clean.ok(&["intel", "import", path(&pack())]);
    let file = clean.dir.path().join("body.ndjson");
    std::fs::write(&file, &body).unwrap();
    clean.ok(&["ingest", "--tenant", "acme", path(&file)]);
    let strip = |facts: std::collections::BTreeSet<String>| -> Vec<Value> {
        facts
            .iter()
            .map(|f| {
                let mut v: Value = serde_json::from_str(f).unwrap();
                // Evidence names the input: a path here, the request there.
                v["evidence"].as_object_mut().map(|e| e.remove("file"));
                v
            })
            .collect()
    };
    assert_eq!(strip(env.alert_facts()), strip(clean.alert_facts()));
}

#[test]
fn a_stop_commits_the_whole_lines_taken_and_says_so() {
    let env = Env::new();
    let token = tenant_with_token(&env, "acme");
    let served = Served::start(&env);
    let url = "/api/v1/tenants/acme/ingest";
    let lines: Vec<String> = (0..5)
        .map(|i| dns(&format!("ws-{i}"), "2023-03-25T08:00:00Z", "example.org") + "\n")
        .collect();
    let mut stream = open_stream(&served, url, &token, lines[0].as_bytes());
    for l in &lines[1..] {
        send_chunk(&mut stream, l.as_bytes());
    }
    // Half a line more, never finished.
    send_chunk(&mut stream, b"{\"@timestamp\":");
    thread::sleep(Duration::from_millis(300));
    served.terminate();
    let (status, head, body) = read_response(&mut stream);
    assert_eq!(status, 503, "{body}");
    assert!(head.contains("retry-after"), "{head}");
    assert!(body.contains("stopping"), "{body}");
    let mut served = served;
    let exit = served.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    assert_eq!(env.tenant_events(), vec![("acme".to_owned(), 5)]);
}

#[test]
fn beats_bulk_requests_are_answered_per_item() {
    let env = Env::new();
    let token = tenant_with_token(&env, "acme");
    env.ok(&["tenant", "add", "beta"]);
    let read = last_line(&env.ok(&["token", "create", "--tenant", "acme", "--scope", "read"]));
    let served = Served::start(&env);
    let doc = |i: usize| dns(&format!("ws-{i}"), "2023-03-25T08:00:00Z", "example.org");
    let body = format!(
        "{{\"create\":{{\"_index\":\"filebeat-8.17.0\"}}}}\n{}\n{{\"index\":{{}}}}\n[1,2]\n{{\"delete\":{{\"_id\":\"x\"}}}}\n{{\"create\":{{}}}}\n{{\"host\":{{\"name\":\"no-time\"}}}}\n{{\"create\":{{}}}}\n{}\n",
        doc(1),
        doc(2)
    );
    // Beats sends a user name and the token as its password, gzipped,
    // with query parameters of its own.
    let basic = format!("Basic {}", b64(&format!("filebeat:{token}")));
    let headers = [
        ("Authorization", basic.as_str()),
        ("Content-Encoding", "gzip"),
        ("Content-Type", "application/x-ndjson"),
    ];
    let url = "/api/v1/tenants/acme/_bulk?filter_path=errors,items.*.error,items.*.status";
    let (status, _, answer) = served.send("POST", url, &headers, Some(&gzip(body.as_bytes())));
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["errors"], true);
    let statuses: Vec<u64> = answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i.as_object().unwrap().values().next().unwrap()["status"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(statuses, [201, 400, 400, 400, 201], "{answer}");
    let reason = answer["items"][3]["create"]["error"]["reason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("@timestamp"), "{reason}");
    assert_eq!(env.tenant_events()[0], ("acme".to_owned(), 2));

    // What a shipper asks first, with an Elasticsearch API key.
    let api_key = format!("ApiKey {}", b64(&format!("shipper:{token}")));
    let (status, _, info) = served.send(
        "GET",
        "/api/v1/tenants/acme/",
        &[("Authorization", &api_key)],
        None,
    );
    assert_eq!(status, 200, "{info}");
    assert!(info.contains("\"number\""), "{info}");
    // Only an ingest token of the tenant (or an admin) may send.
    let bearer = format!("Bearer {read}");
    let (status, _, _) = served.send(
        "POST",
        "/api/v1/tenants/acme/_bulk",
        &[("Authorization", &bearer)],
        Some(body.as_bytes()),
    );
    assert_eq!(status, 403);
    let bearer = format!("Bearer {token}");
    let (status, _, _) = served.send(
        "POST",
        "/api/v1/tenants/beta/_bulk",
        &[("Authorization", &bearer)],
        Some(body.as_bytes()),
    );
    assert_eq!(status, 404, "another tenant's name is not found");
    let (status, _, problem) = served.send(
        "POST",
        "/api/v1/tenants/acme/ingest",
        &[("Authorization", &bearer), ("Content-Encoding", "br")],
        Some(b"x"),
    );
    assert_eq!(status, 415, "{problem}");
}

/// Standard base64, for the credentials a shipper sends.
fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn a_slow_stream_is_committed_while_it_is_still_open() {
    let env = Env::new();
    let token = tenant_with_token(&env, "acme");
    let served = Served::start(&env);
    let url = "/api/v1/tenants/acme/ingest?name=zeek-stream.ndjson";
    let line = |i: usize| dns(&format!("ws-{i}"), "2023-03-25T08:00:00Z", "example.org") + "\n";
    let mut stream = open_stream(&served, url, &token, line(0).as_bytes());
    send_chunk(&mut stream, line(1).as_bytes());
    send_chunk(&mut stream, line(2).as_bytes());
    // A shipper that pauses between lines: what it sent is stored within
    // seconds, not when the request ends.
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.tenant_events()[0].1 < 3 {
        assert!(
            Instant::now() < deadline,
            "a paused stream's lines were not committed"
        );
        thread::sleep(Duration::from_millis(250));
    }
    send_chunk(&mut stream, line(3).as_bytes());
    send_chunk(&mut stream, line(4).as_bytes());
    let (status, _, body) = end_stream(stream);
    assert_eq!(status, 202, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["events"], 5, "{answer:#}");
    assert!(
        answer["chunks"].as_array().unwrap().len() >= 2,
        "{answer:#}"
    );
    assert_eq!(env.tenant_events(), vec![("acme".to_owned(), 5)]);
}
