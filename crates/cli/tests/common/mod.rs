//! What the end-to-end tests share: a scratch data directory and the
//! binary run on it.

#![allow(dead_code)] // Each test file uses its own part.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

pub mod served;

pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// Runs with extra environment variables.
    pub fn run_with(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_turncoat"))
            .arg("--data")
            .arg(self.data())
            .args(args)
            .envs(vars.iter().copied())
            .output()
            .unwrap()
    }

    /// Starts the binary with its standard streams piped.
    pub fn spawn(&self, args: &[&str]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_turncoat"))
            .arg("--data")
            .arg(self.data())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    pub fn alerts(&self, extra: &[&str]) -> Vec<Value> {
        let mut args = vec!["alerts", "--format", "json"];
        args.extend_from_slice(extra);
        self.json(&args).as_array().unwrap().clone()
    }

    /// Alerts without what depends on the order they were written in
    /// (row ids, wall-clock times): what an analyst reads.
    pub fn alert_facts(&self) -> BTreeSet<String> {
        alert_facts(&self.alerts(&[]))
    }

    /// Events stored per tenant, by name.
    pub fn tenant_events(&self) -> Vec<(String, u64)> {
        tenant_events(&self.json(&["tenant", "list", "--format", "json"]))
    }
}

/// Events stored per tenant, by name, from `tenant list --format json`.
pub fn tenant_events(list: &Value) -> Vec<(String, u64)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["stats"]["events"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Alerts (`alerts --format json` rows) without what depends on the
/// order they were written in (row ids, wall-clock times).
pub fn alert_facts(alerts: &[Value]) -> BTreeSet<String> {
    alerts
        .iter()
        .map(|a| {
            let mut a = a.as_object().unwrap().clone();
            // Campaign rows (kind campaign) have no campaign of their own.
            let in_campaign = a.get("campaign_alert").is_some_and(|c| !c.is_null());
            for key in [
                "id",
                "created",
                "updated",
                "campaign_alert",
                "member_alerts",
            ] {
                a.remove(key);
            }
            a.insert("in_campaign".into(), in_campaign.into());
            serde_json::to_string(&a).unwrap()
        })
        .collect()
}

/// The 3CX advisory as a vendor might publish it, one indicator included.
pub const ADVISORY: &str = r#"
id = "TC-2023-0001"
title = "3CX Desktop App trojanized update"
published = 2023-03-30
[[affected]]
product = "3CX Desktop App"
names = ["3CX Desktop App", "3CXDesktopApp"]
platforms = ["windows"]
versions = ["18.12.407", "18.12.416"]
[[indicators]]
type = "domain"
value = "akamaicontainer.com"
"#;

/// A port free on the loopback address now (for a child process to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn dns(host: &str, time: &str, name: &str) -> String {
    format!(
        r#"{{"@timestamp":"{time}","host":{{"name":"{host}","os":{{"family":"windows"}}}},"event":{{"category":["network"]}},"dns":{{"question":{{"name":"{name}"}}}}}}"#
    )
}

/// One Sigma rule in one file, as an upload sends it.
pub const WHOAMI_RULE: &str = "title: Whoami run
id: 6a1f2b3c-0000-4000-8000-00000000a001
status: test
logsource:
  category: process_creation
  product: windows
detection:
  selection:
    Image|endswith: '\\whoami.exe'
  condition: selection
level: medium
";

/// A detection rule, an `event_count` correlation over it (three in ten
/// minutes) and a filter.
pub const WHOAMI_RULES: &str = r#"
title: whoami under the 3CX app
id: bbbbbbbb-0000-0000-0000-000000000001
name: whoami_3cx
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
---
title: repeated discovery under the 3CX app
id: bbbbbbbb-0000-0000-0000-000000000002
status: test
level: high
correlation:
    type: event_count
    rules: [whoami_3cx]
    group-by: [ParentImage]
    timespan: 10m
    condition:
        gte: 3
---
title: the IT inventory script is benign
id: bbbbbbbb-0000-0000-0000-000000000003
logsource:
    product: windows
    category: process_creation
filter:
    rules: [whoami_3cx]
    inventory:
        CommandLine|contains: inventory
    condition: not inventory
"#;

/// A `whoami` run under the 3CX app.
pub fn whoami(host: &str, time: &str, command: &str) -> String {
    format!(
        r#"{{"@timestamp":"{time}","host":{{"name":"{host}","os":{{"family":"windows"}}}},"event":{{"category":["process"],"type":["start"]}},"process":{{"executable":"C:\\w\\cmd.exe","command_line":"{command}","parent":{{"executable":"C:\\a\\3CXDesktopApp.exe"}}}}}}"#
    )
}

/// Runs a Python check `script` on `file` (its `sys.argv[1]`) and asserts
/// it passed; prints what it reported.
pub fn python_check(python: &Path, script: &str, file: &Path) {
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .arg(file)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
