//! The OpenAPI document tells the truth: every answer of every route,
//! on a simulated fleet with every kind of row, carries only fields its
//! schema documents, and (where `.ci/run` provides the validator) is valid
//! against that schema as JSON Schema.

mod common;

use std::path::Path;

use common::served::{Served, form, last_line};
use common::{Env, path};
use serde_json::{Value, json};

/// Answers documented as another system's format, not as rows of ours:
/// the document itself, Elasticsearch's answers to shippers, SARIF.
fn foreign_format(route: &str, content_type: &str) -> bool {
    route.ends_with("/openapi.json")
        || route.contains("{tenant}/_bulk")
        || route.ends_with("{tenant}/")
        || content_type == "application/sarif+json"
}

/// The schema a `$ref` names, or the schema itself.
fn resolve<'d>(doc: &'d Value, schema: &'d Value) -> &'d Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// Where `value` holds what `schema` does not document: each object key
/// outside the properties, recursively; a schema that says nothing
/// about an object's fields counts as not documenting them.
fn undocumented(doc: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let schema = resolve(doc, schema);
    for combinator in ["oneOf", "anyOf"] {
        if let Some(branches) = schema[combinator].as_array() {
            // The branch that documents the most of it.
            return branches
                .iter()
                .map(|b| undocumented(doc, b, value, at))
                .min_by_key(Vec::len)
                .unwrap_or_default();
        }
    }
    match value {
        Value::Object(map) => {
            let mut props = serde_json::Map::new();
            collect_properties(doc, schema, &mut props);
            if props.is_empty()
                && schema["additionalProperties"]
                    .as_object()
                    .is_some_and(|o| !o.is_empty())
            {
                let inner = &schema["additionalProperties"];
                return map
                    .iter()
                    .flat_map(|(k, v)| undocumented(doc, inner, v, &format!("{at}.{k}")))
                    .collect();
            }
            // Declared free-form on purpose (a vet finding's evidence,
            // whose fields depend on the finding).
            let free_form = &schema["additionalProperties"];
            if props.is_empty() && (free_form == true || free_form == &json!({})) {
                return Vec::new();
            }
            if props.is_empty() {
                return vec![format!("{at}: an object whose fields are not documented")];
            }
            map.iter()
                .flat_map(|(k, v)| match props.get(k) {
                    Some(s) => undocumented(doc, s, v, &format!("{at}.{k}")),
                    None => vec![format!("{at}.{k}")],
                })
                .collect()
        }
        Value::Array(items) => {
            let item = item_schema(doc, schema);
            items
                .iter()
                .enumerate()
                .flat_map(|(i, v)| match item {
                    Some(s) => undocumented(doc, s, v, &format!("{at}[{i}]")),
                    None => vec![format!("{at}[{i}]: items not documented")],
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The properties of an object schema, its `allOf` parts' included (a
/// flattened struct).
fn collect_properties(doc: &Value, schema: &Value, into: &mut serde_json::Map<String, Value>) {
    let schema = resolve(doc, schema);
    if let Some(props) = schema["properties"].as_object() {
        into.extend(props.clone());
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        collect_properties(doc, part, into);
    }
    // A flattened enum (a token's owner): every branch's fields.
    for part in schema["oneOf"].as_array().into_iter().flatten() {
        collect_properties(doc, part, into);
    }
}

fn item_schema<'d>(doc: &'d Value, schema: &'d Value) -> Option<&'d Value> {
    let schema = resolve(doc, schema);
    if !schema["items"].is_null() {
        return Some(&schema["items"]);
    }
    // A tuple (drift's (tenant, endpoint) pairs) documents its items by
    // position: any of them will do for field names.
    schema["prefixItems"].as_array().and_then(|p| p.first())
}

/// A documented operation answered: the route as documented, the
/// method, the status and content type, and the body.
struct Answer {
    route: String,
    method: String,
    status: u16,
    content_type: String,
    body: String,
}

impl Answer {
    fn label(&self) -> String {
        format!(
            "{} {} -> {} {}",
            self.method.to_uppercase(),
            self.route,
            self.status,
            self.content_type
        )
    }
}

fn content_type(head: &str) -> String {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.split(';').next().unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default()
}

#[test]
fn every_answer_carries_only_documented_fields_of_the_documented_types() {
    let env = Env::new();
    let fleet = env.dir.path().join("fleet");
    env.ok(&[
        "simulate",
        "--out",
        path(&fleet),
        "--tenants",
        "3",
        "--endpoints",
        "6",
        "--days",
        "14",
        "--events-per-endpoint-day",
        "20",
    ]);
    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../intel/3cx");
    env.ok(&["intel", "import", path(&pack)]);
    let mut tenants: Vec<String> = std::fs::read_dir(&fleet)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    tenants.sort();
    for t in &tenants {
        env.ok(&["tenant", "add", t]);
        env.ok(&["ingest", "--tenant", t, path(&fleet.join(t))]);
    }
    let first = tenants[0].as_str();
    env.ok(&["user", "add", "root", "--role", "admin"]);
    let admin = last_line(&env.ok(&["token", "create", "--user", "root"]));
    let served = Served::start(&env);
    let (_, _, doc) = served.get("/api/v1/openapi.json", None);
    let doc: Value = serde_json::from_str(&doc).unwrap();

    let alerts = served.every_page("/api/v1/alerts", 500, &admin);
    let kinds: std::collections::BTreeSet<&str> =
        alerts.iter().filter_map(|a| a["kind"].as_str()).collect();
    for kind in ["ioc", "exposure", "beacon", "campaign"] {
        assert!(
            kinds.contains(kind),
            "the fleet raises {kind} alerts: {kinds:?}"
        );
    }
    let alert = alerts
        .iter()
        .find(|a| a["kind"] == "ioc" && a["tenant"] == first)
        .expect("an IOC alert of the first tenant");
    let id = alert["id"].as_i64().unwrap();

    let auth = format!("Bearer {admin}");
    let mut answers = Vec::new();
    let mut call = |method: &str, route: &str, concrete: &str, kind: &str, body: &[u8]| {
        let mut headers = vec![("Authorization", auth.as_str())];
        if !kind.is_empty() {
            headers.push(("Content-Type", kind));
        }
        let body = (method != "GET").then_some(body);
        let (status, head, text) = served.send(method, concrete, &headers, body);
        assert!(
            (200..300).contains(&status),
            "{method} {concrete}: {status} {text}"
        );
        answers.push(Answer {
            route: format!("/api/v1{route}"),
            method: method.to_ascii_lowercase(),
            status,
            content_type: content_type(&head),
            body: text,
        });
    };
    // Every list and read, with the parameters that give rows.
    for route in [
        "/tenants",
        "/alerts",
        "/exposure",
        "/campaigns",
        "/audit",
        "/allowlists",
        "/rules",
        "/intel",
        "/suppressions",
        "/networks",
        "/advisories",
        "/users",
        "/tokens",
        "/session",
        "/drift",
    ] {
        call("GET", route, &format!("/api/v1{route}"), "", b"");
    }
    call(
        "GET",
        "/beacons",
        &format!("/api/v1/beacons?tenant={first}&min_score=0"),
        "",
        b"",
    );
    call(
        "GET",
        "/alerts/{id}",
        &format!("/api/v1/alerts/{id}"),
        "",
        b"",
    );
    // Every change, once each, with a body that succeeds.
    let json_kind = "application/json";
    let mut change = |method: &str, route: &str, body: Value| {
        let concrete = format!("/api/v1{}", route.replace("{id}", &id.to_string()));
        call(
            method,
            route,
            &concrete,
            json_kind,
            body.to_string().as_bytes(),
        );
    };
    change("POST", "/alerts/{id}/assign", json!({"assignee": "root"}));
    change("POST", "/alerts/{id}/comments", json!({"text": "looking"}));
    change(
        "POST",
        "/alerts/{id}/status",
        json!({"status": "investigating"}),
    );
    change(
        "POST",
        "/alerts/bulk-status",
        json!({"status": "acknowledged", "preview": true}),
    );
    change("POST", "/tenants", json!({"name": "delta"}));
    change(
        "POST",
        "/allowlists",
        json!({"tenant": first, "kind": "destination", "value": "updates.example", "reason": "vendor"}),
    );
    change(
        "POST",
        "/suppressions",
        json!({"tenant": first, "source": "lab.example", "reason": "their lab", "expires": "2099-01-01T00:00:00Z"}),
    );
    change(
        "POST",
        "/networks",
        json!({"tenant": first, "cidr": "198.51.100.0/24", "note": "sensor"}),
    );
    change(
        "POST",
        "/users",
        json!({"name": "vic", "role": "viewer", "tenants": [first]}),
    );
    change(
        "POST",
        "/tokens",
        json!({"tenant": first, "scope": "ingest", "note": "sensor"}),
    );
    let csv = b"indicator,type\nsecond-wave-cdn.com,hostname\n";
    call(
        "POST",
        "/intel",
        "/api/v1/intel?name=more.csv",
        "application/octet-stream",
        csv,
    );
    call(
        "POST",
        "/rules",
        "/api/v1/rules?name=whoami.yml",
        "application/octet-stream",
        common::WHOAMI_RULE.as_bytes(),
    );
    let line = br#"{"@timestamp":"2023-03-30T08:00:00Z","host":{"name":"ws-77"},"dns":{"question":{"name":"second-wave-cdn.com"}},"event":{"category":["network"]}}"#;
    call(
        "POST",
        "/tenants/{tenant}/ingest",
        &format!("/api/v1/tenants/{first}/ingest"),
        "application/x-ndjson",
        line,
    );
    let (kind, upload) = form(&[
        (
            "release",
            "app.js",
            b"fetch('https://second-wave-cdn.com/x')\n",
        ),
        ("previous", "app.js", b"console.log('hi')\n"),
    ]);
    call("POST", "/vet", "/api/v1/vet", &kind, &upload);

    // The lists whose rows matter most hold some, so their schemas are
    // put to the test.
    for list in [
        "/alerts",
        "/exposure",
        "/campaigns",
        "/beacons",
        "/drift",
        "/audit",
        "/intel",
        "/advisories",
    ] {
        let answer = answers
            .iter()
            .find(|a| a.route == format!("/api/v1{list}"))
            .unwrap();
        let page: Value = serde_json::from_str(&answer.body).unwrap();
        assert!(
            page["items"].as_array().is_some_and(|i| !i.is_empty()),
            "{list} has rows: {page}"
        );
    }

    let mut problems = Vec::new();
    let mut checked = Vec::new();
    for answer in &answers {
        let responses = &doc["paths"][&answer.route][&answer.method]["responses"];
        let Some(schema) =
            responses[answer.status.to_string()]["content"][&answer.content_type]["schema"]
                .as_object()
        else {
            problems.push(format!("{}: no schema documented", answer.label()));
            continue;
        };
        if foreign_format(&answer.route, &answer.content_type) {
            continue;
        }
        let schema = Value::Object(schema.clone());
        let value: Value = serde_json::from_str(&answer.body).unwrap();
        for key in undocumented(&doc, &schema, &value, "$") {
            problems.push(format!("{}: {key} is not documented", answer.label()));
        }
        checked.push((answer.label(), schema, value));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    println!("{} answers, every field documented", checked.len());

    // Types, formats, required fields and enumerations: the schemas as
    // JSON Schema 2020-12, by the OpenAPI project's own validator.
    let Ok(spec_validator) = std::env::var("TURNCOAT_TEST_OPENAPI_VALIDATOR") else {
        println!(
            "skipped: JSON Schema validation (TURNCOAT_TEST_OPENAPI_VALIDATOR unset; .ci/run sets it)"
        );
        return;
    };
    let python = Path::new(&spec_validator).with_file_name("python");
    let cases: Vec<Value> = checked
        .into_iter()
        .map(|(label, mut schema, value)| {
            schema["components"] = doc["components"].clone();
            json!({"label": label, "schema": schema, "value": value})
        })
        .collect();
    let file = env.dir.path().join("answers.json");
    std::fs::write(&file, Value::Array(cases).to_string()).unwrap();
    let script = "
import json, sys
from openapi_schema_validator import OAS31Validator
failed = 0
cases = json.load(open(sys.argv[1]))
for case in cases:
    for error in OAS31Validator(case['schema']).iter_errors(case['value']):
        failed += 1
        print(case['label'], '/'.join(map(str, error.absolute_path)), error.message[:300])
print(len(cases), 'answers validated,', failed, 'errors')
sys.exit(1 if failed else 0)
";
    common::python_check(&python, script, &file);
}
