//! Notifications as their receivers see them: a webhook that fails its
//! first deliveries gets each again (same idempotency key, a signature it
//! can check) until it takes it, one that never does ends in the dead
//! letters; a syslog collector that goes away misses nothing: once back,
//! it receives what was queued, in order, once.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::served::Served;
use common::{Env, dns, path};
use hmac::{KeyInit, Mac};

/// A request as the receiver got it: lower-case headers and the body.
#[derive(Clone, Debug)]
struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A webhook receiver answering 500 to its first `failures` requests,
/// then 200; what it got is in the returned list.
fn receiver(failures: usize) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let seen = Arc::clone(&got);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let mut all = seen.lock().unwrap();
            all.push(Received {
                headers,
                body: String::from_utf8(body).unwrap(),
            });
            let status = if all.len() <= failures {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, got)
}

fn hmac_hex(key: &str, data: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn add_target(env: &Env, args: &[&str], secret: Option<&str>) {
    let mut all = vec!["notify", "add"];
    all.extend_from_slice(args);
    if secret.is_some() {
        all.push("--secret-stdin");
    }
    let mut child = env.spawn(&all);
    if let Some(s) = secret {
        writeln!(child.stdin.take().unwrap(), "{s}").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One delivery round; whether every delivery went through.
fn deliver(env: &Env) -> bool {
    env.run(&["notify", "deliver", "--backoff-ms", "0"])
        .status
        .code()
        == Some(0)
}

/// Intel naming three domains, and acme's contacts with each.
fn three_alerts(env: &Env) {
    env.ok(&["tenant", "add", "acme"]);
    let csv = env.file(
        "iocs.csv",
        "indicator,type\nmsstorageboxes(.)com,hostname\nakamaicontainer(.)com,hostname\njournalide(.)org,hostname\n",
    );
    env.ok(&["intel", "import", path(&csv)]);
}

fn contacts(env: &Env, names: &[&str]) {
    let lines: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| dns("ws-1", &format!("2023-03-29T10:0{i}:00Z"), n))
        .collect();
    let f = env.file(&format!("contacts-{}.ndjson", names[0]), &lines.join("\n"));
    env.ok(&["ingest", "--tenant", "acme", path(&f)]);
}

#[test]
fn a_webhook_is_retried_signed_and_dead_lettered() {
    let env = Env::new();
    three_alerts(&env);
    let (url, got) = receiver(2);
    add_target(
        &env,
        &["hook", &url, "--format", "json", "--tenant", "acme"],
        Some("s3cret"),
    );
    let (slack_url, slack) = receiver(0);
    add_target(
        &env,
        &[
            "chat",
            &slack_url,
            "--format",
            "slack",
            "--tenant",
            "acme",
            "--events",
            "new",
            "--min-severity",
            "high",
        ],
        None,
    );
    // A target that never answers: refused connections until given up on.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/gone", l.local_addr().unwrap())
    };
    add_target(&env, &["gone", &closed, "--format", "json"], Some("x"));
    contacts(&env, &["api.msstorageboxes.com"]);

    // Two failures, then the receiver takes it: three tries of one key.
    assert!(!deliver(&env));
    assert!(!deliver(&env));
    for _ in 0..3 {
        deliver(&env);
    }
    let tries = got.lock().unwrap().clone();
    assert!(tries.len() >= 3, "{tries:?}");
    let key = tries[0].header("idempotency-key").to_owned();
    assert!(key.starts_with("new:"), "{key}");
    assert!(
        tries[..3]
            .iter()
            .all(|r| r.header("idempotency-key") == key),
        "one key across retries"
    );
    assert_eq!(
        tries
            .iter()
            .filter(|r| r.header("idempotency-key") == key)
            .count(),
        3,
        "taken once, not resent"
    );
    for r in &tries {
        let sig = r.header("x-turncoat-signature");
        let (t, v1) = sig
            .strip_prefix("t=")
            .and_then(|s| s.split_once(",v1="))
            .unwrap_or_else(|| panic!("signature {sig:?}"));
        assert_eq!(t, r.header("x-turncoat-timestamp"));
        assert_eq!(
            v1,
            hmac_hex("s3cret", &format!("{t}.{}", r.body)),
            "a valid signature"
        );
        assert_ne!(v1, hmac_hex("other", &format!("{t}.{}", r.body)));
    }
    let doc: serde_json::Value = serde_json::from_str(&tries[0].body).unwrap();
    assert_eq!(doc["event"], "new");
    assert_eq!(doc["alert"]["source"], "msstorageboxes.com");
    assert_eq!(doc["alert"]["tenant"], "acme");
    let alert_id = doc["alert"]["id"].to_string();

    // A status change is heard of too.
    env.ok(&["alert", "status", &alert_id, "acknowledged"]);
    for _ in 0..2 {
        deliver(&env);
    }
    let all = got.lock().unwrap().clone();
    let change = all
        .iter()
        .map(|r| serde_json::from_str::<serde_json::Value>(&r.body).unwrap())
        .find(|d| d["event"] == "status")
        .expect("the status change");
    assert_eq!(change["alert"]["status"], "acknowledged");
    assert_eq!(change["change"]["value"], "acknowledged");

    // Slack's shape, for the high ones only.
    let slack = slack.lock().unwrap().clone();
    assert_eq!(slack.len(), 1, "{slack:?}");
    let text: serde_json::Value = serde_json::from_str(&slack[0].body).unwrap();
    assert!(
        text["text"].as_str().unwrap().contains("acme/ws-1"),
        "{text}"
    );
    assert!(
        slack[0].header("x-turncoat-signature").is_empty(),
        "no secret, no signature"
    );

    // The target that never answers ends in the dead letters.
    for _ in 0..8 {
        deliver(&env);
    }
    let dead = env.json(&["notify", "outbox", "--dead", "--format", "json"]);
    let dead = dead.as_array().unwrap();
    assert!(
        dead.iter()
            .any(|n| n["target"]["name"] == "gone" && n["attempts"] == 8),
        "{dead:?}"
    );
    assert!(dead.iter().all(|n| n["target"]["name"] == "gone"));
}

/// A TCP syslog collector on `listener` taking `connections` connections,
/// each one octet-counted message (RFC 6587), then closing.
fn collector(
    listener: TcpListener,
    connections: usize,
    got: Arc<Mutex<Vec<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let mut data = String::new();
            stream.unwrap().read_to_string(&mut data).unwrap();
            let (len, rest) = data.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), rest.len(), "octet counting");
            got.lock().unwrap().push(rest.to_owned());
        }
    })
}

#[test]
fn syslog_cef_arrives_in_order_across_a_collector_restart() {
    let env = Env::new();
    three_alerts(&env);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    add_target(
        &env,
        &[
            "siem",
            &format!("tcp://{addr}"),
            "--format",
            "cef",
            "--tenant",
            "acme",
            "--events",
            "new",
        ],
        None,
    );
    contacts(
        &env,
        &[
            "api.msstorageboxes.com",
            "akamaicontainer.com",
            "www.journalide.org",
        ],
    );
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    // The collector takes one message, then goes away.
    let first = collector(listener, 1, Arc::clone(&got));
    assert!(deliver(&env), "the first goes through");
    first.join().unwrap();
    assert!(!deliver(&env), "the collector is down");
    assert!(!deliver(&env));
    assert_eq!(got.lock().unwrap().len(), 1);
    let queued = env.json(&["notify", "outbox", "--format", "json"]);
    assert_eq!(
        queued
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["delivered"].is_null())
            .count(),
        2,
        "nothing lost while it was down: {queued}"
    );
    // Back on the same port: the rest, in order, once.
    let listener = TcpListener::bind(addr).unwrap();
    let back = collector(listener, 2, Arc::clone(&got));
    assert!(deliver(&env));
    assert!(deliver(&env));
    back.join().unwrap();
    assert!(deliver(&env), "nothing more to send");
    let lines = got.lock().unwrap().clone();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let sources: Vec<&str> = lines.iter().map(|l| l.split('|').nth(4).unwrap()).collect();
    let mut raised = env.alerts(&["--tenant", "acme", "--kind", "ioc"]);
    raised.sort_by_key(|a| a["id"].as_i64().unwrap());
    let expected: Vec<String> = raised
        .iter()
        .map(|a| format!("ioc:{}", a["source"].as_str().unwrap()))
        .collect();
    assert_eq!(sources, expected, "in the order they were raised");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("CEF:0|turncoat|turncoat|")),
        "{lines:?}"
    );
    assert!(
        lines[0].contains("cs1Label=tenant cs1=acme dhost=ws-1"),
        "{}",
        lines[0]
    );
}

#[test]
fn syslog_over_tls_reaches_a_collector_with_its_own_ca() {
    let env = Env::new();
    // A private CA and the collector's certificate signed by it.
    let dir = env.dir.path();
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("collector.pem"),
        dir.join("collector.key"),
    );
    env.file(
        "leaf.ext",
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    );
    let script = "set -e
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=turncoat test CA' -keyout ca.key -out ca.pem
        openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout collector.key -out collector.csr
        openssl x509 -req -days 2 -in collector.csr -CA ca.pem -CAkey ca.key -CAcreateserial -extfile leaf.ext -out collector.pem";
    let made = std::process::Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    if !made.status.success() && which_openssl().is_none() {
        println!("skipped: openssl is not installed");
        return;
    }
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // OpenSSL's own TLS server: what it decrypts goes to its stdout.
    let mut server = std::process::Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-naccept",
            "2",
            "-accept",
            &port.to_string(),
            "-cert",
        ])
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        // Its standard input held open: at end of input it shuts down.
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed().as_secs() < 20, "s_server did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    three_alerts(&env);
    let address = format!("tls://localhost:{port}");
    add_target(
        &env,
        &[
            "siem",
            &address,
            "--format",
            "rfc5424",
            "--tenant",
            "acme",
            "--ca",
            path(&ca),
        ],
        None,
    );
    // Without its CA, the same collector is not trusted.
    add_target(
        &env,
        &[
            "untrusted",
            &address,
            "--format",
            "rfc5424",
            "--tenant",
            "acme",
        ],
        None,
    );
    contacts(&env, &["api.msstorageboxes.com"]);
    let out = env.run(&["notify", "deliver", "--backoff-ms", "0"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        said.contains("1 sent, 1 failed"),
        "{said}{}",
        env.ok(&["notify", "outbox", "--format", "json"])
    );
    let outbox = env.json(&["notify", "outbox", "--format", "json"]);
    let untrusted = outbox
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["target"]["name"] == "untrusted")
        .unwrap();
    assert!(untrusted["delivered"].is_null(), "{untrusted}");
    // It takes two connections (the probe above, then the trusted
    // target's, sent first), prints
    // what it decrypted and ends.
    let mut received = String::new();
    server
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut received)
        .unwrap();
    let _ = server.wait();
    let (len, line) = received.split_once(' ').unwrap_or(("", ""));
    assert_eq!(
        len.parse::<usize>().ok(),
        Some(line.trim_end().len()),
        "octet counting: {received:?}"
    );
    assert!(line.starts_with("<115>1 "), "{line}");
    assert!(line.contains("[turncoat@32473 id=\"new:"), "{line}");
    assert!(line.contains("tenant=\"acme\""), "{line}");
}

#[test]
fn a_campaign_is_heard_by_an_mssp_target_only() {
    let env = Env::new();
    three_alerts(&env);
    env.ok(&["tenant", "add", "beta"]);
    let (mssp, heard) = receiver(0);
    add_target(
        &env,
        &["mssp", &mssp, "--format", "json", "--events", "campaign"],
        None,
    );
    let (acme_url, acme) = receiver(0);
    add_target(
        &env,
        &[
            "acme-only",
            &acme_url,
            "--format",
            "json",
            "--tenant",
            "acme",
        ],
        None,
    );
    contacts(&env, &["api.msstorageboxes.com"]);
    let f = env.file(
        "beta.ndjson",
        &dns("srv-9", "2023-03-29T11:00:00Z", "msstorageboxes.com"),
    );
    env.ok(&["ingest", "--tenant", "beta", path(&f)]);
    for _ in 0..3 {
        deliver(&env);
    }
    let heard = heard.lock().unwrap().clone();
    let docs: Vec<serde_json::Value> = heard
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(docs[0]["event"], "campaign");
    assert_eq!(docs[0]["alert"]["source"], "msstorageboxes.com");
    assert_eq!(
        docs[0]["alert"]["tenants"],
        serde_json::json!(["acme", "beta"])
    );
    // The tenant's target hears its own alert, never the campaign that
    // names another tenant.
    let acme = acme.lock().unwrap().clone();
    assert!(!acme.is_empty());
    assert!(acme.iter().all(|r| !r.body.contains("beta")), "{acme:?}");
}

fn which_openssl() -> Option<()> {
    std::process::Command::new("openssl")
        .arg("version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| ())
}

#[test]
fn serve_delivers_on_its_own_and_udp_collectors_get_datagrams() {
    let env = Env::new();
    three_alerts(&env);
    let (url, got) = receiver(0);
    add_target(
        &env,
        &["hook", &url, "--format", "teams", "--tenant", "acme"],
        None,
    );
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let address = format!("udp://{}", udp.local_addr().unwrap());
    add_target(
        &env,
        &["udp", &address, "--format", "rfc5424", "--tenant", "acme"],
        None,
    );
    let _served = Served::start(&env);
    contacts(&env, &["api.msstorageboxes.com"]);
    // No `notify deliver`: serve's own round sends both.
    let mut datagram = [0u8; 8192];
    let (n, _) = udp
        .recv_from(&mut datagram)
        .expect("a datagram within 20 s");
    let line = String::from_utf8_lossy(&datagram[..n]).into_owned();
    assert!(
        line.starts_with("<115>1 ") && line.contains("source=\"msstorageboxes.com\""),
        "{line}"
    );
    let started = std::time::Instant::now();
    while got.lock().unwrap().is_empty() {
        assert!(
            started.elapsed().as_secs() < 20,
            "serve did not deliver the webhook"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let card: serde_json::Value = serde_json::from_str(&got.lock().unwrap()[0].body).unwrap();
    assert_eq!(card["attachments"][0]["content"]["type"], "AdaptiveCard");
}

#[test]
fn a_resurfaced_alert_is_heard_of() {
    let env = Env::new();
    three_alerts(&env);
    let (url, got) = receiver(0);
    add_target(
        &env,
        &[
            "hook",
            &url,
            "--format",
            "json",
            "--tenant",
            "acme",
            "--events",
            "resurfaced",
        ],
        None,
    );
    contacts(&env, &["api.msstorageboxes.com"]);
    let alert = env.alerts(&["--tenant", "acme", "--kind", "ioc"])[0]["id"].to_string();
    env.ok(&[
        "alert",
        "status",
        &alert,
        "false-positive",
        "--reason",
        "their CDN",
    ]);
    deliver(&env);
    assert!(
        got.lock().unwrap().is_empty(),
        "new and status are not this target's events"
    );
    // A second vendor names the same domain: the dismissal is undone.
    let second = env.file(
        "vendor-2.csv",
        "indicator,type\nmsstorageboxes(.)com,hostname\n203.0.113[.]7,ip\n",
    );
    env.ok(&["intel", "import", path(&second)]);
    deliver(&env);
    let heard = got.lock().unwrap().clone();
    assert_eq!(heard.len(), 1, "{heard:?}");
    let doc: serde_json::Value = serde_json::from_str(&heard[0].body).unwrap();
    assert_eq!(doc["event"], "resurfaced");
    assert_eq!(doc["alert"]["status"], "new");
    assert!(
        doc["change"]["note"]
            .as_str()
            .unwrap()
            .contains("new intel"),
        "{doc}"
    );
}
