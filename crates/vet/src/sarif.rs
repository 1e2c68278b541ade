//! SARIF 2.1.0 output, in the subset GitHub code scanning reads: one run,
//! the finding ids as rules (with `security-severity`), each finding a
//! result located at its inner path.

use serde_json::{Value, json};

use crate::{FindingId, Report, Severity};

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` scale (0-10) for a severity.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// A relative URI for an inner path: segments kept, characters outside
/// RFC 3986's unreserved and sub-delimiter sets percent-encoded.
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.trim_start_matches('/').to_owned()
}

/// The report as a SARIF 2.1.0 log.
pub fn sarif(report: &Report) -> Value {
    let rules: Vec<Value> = FindingId::ALL
        .iter()
        .map(|id| {
            json!({
                "id": id,
                "name": id,
                "shortDescription": {"text": id.meaning()},
                "defaultConfiguration": {"level": level(id.severity())},
                "properties": {"security-severity": security_severity(id.severity()), "tags": ["security", "supply-chain"]},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let index = FindingId::ALL.iter().position(|id| *id == f.id);
            json!({
                "ruleId": f.id,
                "ruleIndex": index,
                "level": level(f.severity),
                "message": {"text": f.message},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri(&f.file)}}}],
                "properties": {"severity": f.severity, "evidence": f.evidence, "repeated": f.repeated},
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "turncoat",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
            "properties": {"verdict": report.verdict, "artifact": report.artifact},
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Finding, Verdict};

    #[test]
    fn findings_become_results_pointing_at_their_rules() {
        let report = Report {
            verdict: Verdict::Malicious,
            artifact: "setup.zip".into(),
            diff: None,
            findings: vec![Finding {
                id: FindingId::AuthenticodeDataAfterSignature,
                severity: Severity::Critical,
                file: "setup.zip!/app dir/d3dcompiler_47.dll".into(),
                message: "4096 bytes after the signature".into(),
                evidence: json!({"trailing_bytes": 4096}),
                repeated: None,
            }],
            files: Vec::new(),
        };
        let log = sarif(&report);
        assert_eq!(log["version"], "2.1.0");
        let run = &log["runs"][0];
        let result = &run["results"][0];
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(
            run["tool"]["driver"]["rules"][index]["id"],
            result["ruleId"]
        );
        assert_eq!(result["level"], "error");
        assert_eq!(
            result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "setup.zip!/app%20dir/d3dcompiler_47.dll"
        );
        assert_eq!(run["properties"]["verdict"], "malicious");
    }
}
