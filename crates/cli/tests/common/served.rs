//! A `turncoat serve` child process and plain HTTP/1.1 requests to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::Duration;

use serde_json::Value;

use super::{ADVISORY, Env, dns, path};

/// A running server, stopped when dropped.
pub struct Served {
    pub child: Child,
    pub addr: String,
}

impl Served {
    pub fn start(env: &Env) -> Served {
        Served::start_with(env, &[], "http")
    }

    /// `serve` on a free port with `extra` arguments, once it says where
    /// it listens (with `scheme`).
    pub fn start_with(env: &Env, extra: &[&str], scheme: &str) -> Served {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = env.spawn(&args);
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix(&format!("listening on {scheme}://"))
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .to_owned();
        Served { child, addr }
    }

    /// Asks the server to stop, as a service manager does (SIGTERM).
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// `GET path` with an optional bearer token: status, headers, body.
    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, String, String) {
        self.request("GET", path, token, None)
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, token: &str, json: &str) -> (u16, String, String) {
        self.request("POST", path, Some(token), Some(json))
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        json: Option<&str>,
    ) -> (u16, String, String) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = Vec::new();
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth.as_str()));
        }
        if json.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        self.send(method, path, &headers, json.map(str::as_bytes))
    }

    /// A request with any headers and body: status, headers (lower
    /// case), body.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> (u16, String, String) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("Connection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        if let Some(body) = body {
            // The server may answer (413, 429) before reading it all.
            let _ = stream.write_all(body);
        }
        read_response(&mut stream)
    }

    /// Every item of a list, fetched `limit` at a time by following the
    /// cursors.
    pub fn every_page(&self, list: &str, limit: usize, token: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let list = if list.contains('?') {
            format!("{list}&")
        } else {
            format!("{list}?")
        };
        let mut url = format!("{list}limit={limit}");
        for _ in 0..10_000 {
            let page = self.json(&url, token);
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next"].as_str() {
                Some(cursor) => url = format!("{list}limit={limit}&cursor={cursor}"),
                None => return items,
            }
        }
        panic!("{list}: the cursors never end");
    }

    pub fn json(&self, path: &str, token: &str) -> Value {
        let (status, _, body) = self.get(path, Some(token));
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn last_line(out: &str) -> String {
    out.lines().last().unwrap().to_owned()
}

/// Reads a whole `Connection: close` response: status, headers (lower
/// case), body (chunked transfer undone).
pub fn read_response(stream: &mut TcpStream) -> (u16, String, String) {
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    let head = head.to_ascii_lowercase();
    let body = if head.contains("transfer-encoding: chunked") {
        unchunk(body)
    } else {
        body.to_owned()
    };
    (status, head, body)
}

fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The credentials of [`two_tenants`].
pub struct Tokens {
    pub admin: String,
    pub beta: String,
    pub sensor: String,
}

/// acme and beta, both with IOC contacts and an exposed 3CX install;
/// an admin's personal token, beta's read token, acme's ingest token.
pub fn two_tenants(env: &Env) -> Tokens {
    env.ok(&["tenant", "add", "acme"]);
    env.ok(&["tenant", "add", "beta"]);
    let csv = env.file(
        "iocs.csv",
        "indicator,type\nmsstorageboxes(.)com,hostname\n203.0.113[.]7,ip\n",
    );
    env.ok(&["intel", "import", path(&csv)]);
    let acme = [
        dns("ws-09", "2023-03-25T08:00:00Z", "api.msstorageboxes.com"),
        r#"{"@timestamp":"2023-03-25T08:01:00Z","host":{"name":"ws-09"},"event":{"category":["network"]},"destination":{"ip":"203.0.113.7","port":443}}"#.to_owned(),
        dns("ws-10", "2023-03-25T09:00:00Z", "msstorageboxes.com"),
    ];
    let f = env.file("acme.ndjson", &acme.join("\n"));
    env.json(&["ingest", "--tenant", "acme", "--output", "json", path(&f)]);
    let f = env.file(
        "beta.ndjson",
        &dns("srv-1", "2023-03-26T10:00:00Z", "msstorageboxes.com"),
    );
    env.json(&["ingest", "--tenant", "beta", "--output", "json", path(&f)]);
    for (tenant, host, version) in [
        ("acme", "ws-01", "18.12.416"),
        ("acme", "ws-02", "18.12.407"),
        ("beta", "srv-2", "18.12.407"),
    ] {
        let line = format!(
            r#"{{"name":"pack_inventory_programs","hostIdentifier":"{host}","unixTime":1679000000,"columns":{{"name":"3CX Desktop App","version":"{version}"}},"action":"added"}}"#
        );
        let f = env.file(&format!("{host}.osquery.log"), &line);
        env.ok(&["ingest", "--tenant", tenant, path(&f)]);
    }
    let adv = env.file("3cx.toml", ADVISORY);
    env.ok(&["intel", "import", path(&adv)]);

    env.ok(&["user", "add", "root", "--role", "admin"]);
    Tokens {
        admin: last_line(&env.ok(&["token", "create", "--user", "root"])),
        beta: last_line(&env.ok(&["token", "create", "--tenant", "beta", "--scope", "read"])),
        sensor: last_line(&env.ok(&["token", "create", "--tenant", "acme", "--scope", "ingest"])),
    }
}

/// A personal token of `ann`, an analyst of acme only.
pub fn analyst_of_acme(env: &Env) -> String {
    env.ok(&[
        "user", "add", "ann", "--role", "analyst", "--tenant", "acme",
    ]);
    last_line(&env.ok(&["token", "create", "--user", "ann"]))
}

/// A multipart form of (part, file name, bytes).
pub fn form(parts: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "turncoat-test-boundary-7c1f";
    let mut body = Vec::new();
    for (part, file, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{part}\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
