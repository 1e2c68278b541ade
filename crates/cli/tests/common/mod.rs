//! What the end-to-end tests share: a scratch data directory and the
//! binary run on it.

#![allow(dead_code)] // Each test file uses its own part.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

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
}

pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn dns(host: &str, time: &str, name: &str) -> String {
    format!(
        r#"{{"@timestamp":"{time}","host":{{"name":"{host}","os":{{"family":"windows"}}}},"event":{{"category":["network"]}},"dns":{{"question":{{"name":"{name}"}}}}}}"#
    )
}
