//! Blocklist exports, each checked by the tool of the consumer it is
//! for where one is installed: BIND's `named-checkzone` for the RPZ zone,
//! Suricata's rule parser (`suricataparser`, PyPI) for the rules, and
//! OASIS's `stix2-validator` for the STIX bundle; on the 3CX pack and the
//! vendors' own IOC files as they published them.

mod common;

use std::path::Path;

use common::served::{Served, last_line};
use common::{Env, dns, path};

/// A STIX bundle whose indicators are expired, revoked, weakly and
/// strongly vouched for: only the live ones may be blocked.
const STIX: &str = r#"{"type":"bundle","id":"bundle--0f5a3c1e-4b7e-4a4e-9d52-1d1e5c7f0a01","objects":[
{"type":"indicator","spec_version":"2.1","id":"indicator--6c1f8f2e-4f0b-4d8e-8c55-3c2d6b8f0a01","created":"2023-03-30T00:00:00.000Z","modified":"2023-03-30T00:00:00.000Z","pattern":"[domain-name:value = 'expired.example']","pattern_type":"stix","valid_from":"2023-03-30T00:00:00Z","valid_until":"2023-06-30T00:00:00Z"},
{"type":"indicator","spec_version":"2.1","id":"indicator--6c1f8f2e-4f0b-4d8e-8c55-3c2d6b8f0a02","created":"2023-03-30T00:00:00.000Z","modified":"2023-03-30T00:00:00.000Z","pattern":"[domain-name:value = 'revoked.example']","pattern_type":"stix","valid_from":"2023-03-30T00:00:00Z","revoked":true},
{"type":"indicator","spec_version":"2.1","id":"indicator--6c1f8f2e-4f0b-4d8e-8c55-3c2d6b8f0a03","created":"2023-03-30T00:00:00.000Z","modified":"2023-03-30T00:00:00.000Z","pattern":"[domain-name:value = 'weak.example']","pattern_type":"stix","valid_from":"2023-03-30T00:00:00Z","confidence":30},
{"type":"indicator","spec_version":"2.1","id":"indicator--6c1f8f2e-4f0b-4d8e-8c55-3c2d6b8f0a04","created":"2023-03-30T00:00:00.000Z","modified":"2023-03-30T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.23']","pattern_type":"stix","valid_from":"2023-03-30T00:00:00Z","confidence":90},
{"type":"indicator","spec_version":"2.1","id":"indicator--6c1f8f2e-4f0b-4d8e-8c55-3c2d6b8f0a05","created":"2023-03-30T00:00:00.000Z","modified":"2023-03-30T00:00:00.000Z","pattern":"[ipv6-addr:value = '2001:db8::53']","pattern_type":"stix","valid_from":"2023-03-30T00:00:00Z","confidence":90}
]}"#;

fn export(env: &Env, args: &[&str]) -> String {
    let mut all = vec!["export", "blocklist"];
    all.extend_from_slice(args);
    env.ok(&all)
}

/// The RPZ zone's SOA serial.
fn serial(zone: &str) -> u64 {
    let at = zone
        .find("SOA localhost. hostmaster.localhost. ( ")
        .unwrap()
        + 39;
    zone[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn blocklists_hold_what_is_active_and_their_consumers_read_them() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    env.ok(&["tenant", "add", "beta"]);
    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../intel/3cx");
    env.ok(&["intel", "import", path(&pack)]);
    let vendors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/intel/3cx");
    for file in ["sophos/sophos_3CX_IoCs_2023-03.csv", "volexity/iocs.csv"] {
        let f = vendors.join(file);
        if f.exists() {
            env.ok(&["intel", "import", path(&f)]);
        } else {
            println!("skipped: {} (the shared corpus is absent)", f.display());
        }
    }
    let stix = env.file("feed.json", STIX);
    env.ok(&["intel", "import", path(&stix)]);
    // acme saw the C2 domain; a global allowlist entry exempts one name,
    // acme's own another.
    let seen = env.file(
        "acme.ndjson",
        &dns("ws-1", "2023-03-29T10:00:00Z", "www.msstorageboxes.com"),
    );
    env.ok(&["ingest", "--tenant", "acme", path(&seen)]);
    env.ok(&[
        "allow",
        "add",
        "--destination",
        "azureonlinecloud.com",
        "--reason",
        "test: global exemption",
    ]);
    env.ok(&[
        "allow",
        "add",
        "--destination",
        "akamaicontainer.com",
        "--tenant",
        "acme",
        "--reason",
        "test: acme's",
    ]);

    // RPZ: names and their subdomains, addresses as IP triggers; what is
    // expired, revoked or allowlisted is not there.
    let zone = export(&env, &["--format", "rpz"]);
    for line in [
        "msstorageboxes.com CNAME .",
        "*.msstorageboxes.com CNAME .",
        "akamaicontainer.com CNAME .",
        "weak.example CNAME .",
        "32.23.100.51.198.rpz-ip CNAME .",
        "128.53.zz.db8.2001.rpz-ip CNAME .",
    ] {
        assert!(zone.lines().any(|l| l == line), "{line}:\n{zone}");
    }
    for gone in ["expired.example", "revoked.example", "azureonlinecloud.com"] {
        assert!(!zone.contains(gone), "{gone} is not active:\n{zone}");
    }
    let file = env.file("rpz.zone", &zone);
    match std::process::Command::new("named-checkzone")
        .args(["rpz.turncoat", path(&file)])
        .output()
    {
        Ok(out) => {
            let said = String::from_utf8_lossy(&out.stdout);
            println!("named-checkzone: {said}");
            assert!(
                out.status.success(),
                "{said}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(said.contains("OK"), "{said}");
        }
        Err(_) => println!("skipped: named-checkzone (bind9-utils; .ci/run installs it)"),
    }
    // For acme: its own exemption too; only what it saw, when asked.
    let acme = export(&env, &["--format", "rpz", "--tenant", "acme"]);
    assert!(!acme.contains("akamaicontainer.com"), "{acme}");
    assert!(acme.contains("for acme"));
    let acme_seen = export(&env, &["--format", "hosts", "--tenant", "acme", "--seen"]);
    let hosts: Vec<&str> = acme_seen.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(hosts, ["0.0.0.0 msstorageboxes.com"], "{acme_seen}");
    // Stable: the same store, the same bytes.
    assert_eq!(export(&env, &["--format", "rpz"]), zone);

    // Confidence and kind filters.
    let strong = export(&env, &["--format", "csv", "--min-confidence", "50"]);
    assert!(
        strong.contains("198.51.100.23") && !strong.contains("weak.example"),
        "{strong}"
    );
    assert!(
        !strong.contains("msstorageboxes.com"),
        "no stated confidence: left out"
    );
    let ips = export(&env, &["--format", "csv", "--kind", "ip"]);
    assert!(ips.lines().skip(1).all(|l| l.starts_with("ip,")), "{ips}");

    // A change moves the serial up; --since gives only what changed.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let before = turncoat_now();
    env.ok(&[
        "allow",
        "add",
        "--destination",
        "weak.example",
        "--reason",
        "test: later exemption",
    ]);
    let later = export(&env, &["--format", "rpz"]);
    assert!(
        serial(&later) > serial(&zone),
        "{} then {}",
        serial(&zone),
        serial(&later)
    );
    assert!(!later.contains("weak.example"));
    let extra = env.file(
        "extra.csv",
        "indicator,type\nlater-c2[.]example,hostname\n192.0.2[.]77,ip\n",
    );
    env.ok(&["intel", "import", path(&extra)]);
    let since = export(&env, &["--format", "csv", "--since", &before]);
    let rows: Vec<&str> = since.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{since}");
    assert!(rows[0].starts_with("domain,later-c2.example,"), "{since}");
    assert!(rows[1].starts_with("ip,192.0.2.77,"), "{since}");

    // Suricata: every rule parses, sids are unique, and stay put.
    let rules = export(&env, &["--format", "suricata"]);
    let dataset = export(&env, &["--format", "suricata-sha256"]);
    assert!(
        dataset
            .lines()
            .any(|l| l == "aa124a4b4df12b34e74ee7f6c683b2ebec4ce9a8edcf9be345823b4fdcf5d868")
    );
    let sids: Vec<&str> = rules
        .match_indices("sid:")
        .map(|(at, _)| &rules[at + 4..at + 4 + rules[at + 4..].find(';').unwrap()])
        .collect();
    let unique: std::collections::BTreeSet<_> = sids.iter().collect();
    assert_eq!(unique.len(), sids.len(), "unique sids");
    let again = export(&env, &["--format", "suricata"]);
    let sid_of = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.contains(&format!("dns.query; dotprefix; content:\".{name}\"")))
            .map(|l| l[l.find("sid:").unwrap()..].to_owned())
    };
    assert_eq!(
        sid_of(&rules, "msstorageboxes.com"),
        sid_of(&again, "msstorageboxes.com")
    );
    // Written to a file: replaced whole.
    let out = env.dir.path().join("turncoat.rules");
    env.ok(&[
        "export",
        "blocklist",
        "--format",
        "suricata",
        "--out",
        path(&out),
    ]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), again);

    let stix_out = export(&env, &["--format", "stix"]);
    match std::env::var("TURNCOAT_TEST_PYTHON") {
        Ok(python) => {
            let file = env.file("turncoat.rules.txt", &rules);
            common::python_check(
                Path::new(&python),
                "
import sys
from suricataparser import parse_file
rules = parse_file(sys.argv[1])
bad = [r for r in rules if r is None or not r.sid]
sids = [r.sid for r in rules]
print(len(rules), 'rules parsed,', len(set(sids)), 'distinct sids')
sys.exit(1 if bad or len(set(sids)) != len(sids) or not rules else 0)
",
                &file,
            );
            let file = env.file("bundle.json", &stix_out);
            common::python_check(
                Path::new(&python),
                "
import sys
from stix2validator import validate_file, print_results
results = validate_file(sys.argv[1])
print_results(results)
warnings = sum(len(o.warnings or []) for o in results.object_results)
print('STIX bundle', 'valid' if results.is_valid else 'invalid', 'with', warnings, 'warnings')
sys.exit(0 if results.is_valid and warnings == 0 else 1)
",
                &file,
            );
        }
        Err(_) => println!(
            "skipped: suricataparser and stix2-validator (TURNCOAT_TEST_PYTHON unset; .ci/run sets it)"
        ),
    }
    let bundle: serde_json::Value = serde_json::from_str(&stix_out).unwrap();
    let patterns: Vec<&str> = bundle["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["pattern"].as_str())
        .collect();
    assert!(
        patterns.contains(&"[domain-name:value = 'msstorageboxes.com']"),
        "{patterns:?}"
    );

    // The same over HTTP, within the caller's tenants.
    env.ok(&["user", "add", "root", "--role", "admin"]);
    let acme_token =
        last_line(&env.ok(&["token", "create", "--tenant", "acme", "--scope", "read"]));
    let served = Served::start(&env);
    let (status, head, body) = served.get(
        "/api/v1/exports/blocklist?format=rpz&tenant=acme",
        Some(&acme_token),
    );
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("content-type: text/dns"), "{head}");
    assert_eq!(body, export(&env, &["--format", "rpz", "--tenant", "acme"]));
    let (status, _, _) = served.get(
        "/api/v1/exports/blocklist?format=rpz&tenant=beta",
        Some(&acme_token),
    );
    assert_eq!(status, 404, "another tenant's list");
    let (status, head, _) = served.get("/api/v1/exports/blocklist?format=stix", Some(&acme_token));
    assert_eq!(status, 200);
    assert!(head.contains("application/stix+json;version=2.1"), "{head}");
    assert_eq!(
        served
            .get("/api/v1/exports/blocklist?format=bind", Some(&acme_token))
            .0,
        400
    );
}

/// Now, as the CLI's `--since` takes it (RFC 3339, UTC).
fn turncoat_now() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Pages through every collection with OASIS's `taxii2-client`, as a
/// tenant's SIEM would: the discovery, the API root, the tenant's two
/// collections only, objects paged by `limit` and `next`, resumed with
/// `added_after`, filtered by `match[type]`, and the manifest.
const TAXII_CLIENT: &str = "
import json, sys
from taxii2client.v21 import Server, as_pages
cfg = json.load(open(sys.argv[1]))
server = Server(cfg['url'] + '/taxii2/', user='siem', password=cfg['token'])
root = server.api_roots[0]
titles = sorted(c.title for c in root.collections)
print('collections:', titles)
assert titles == [cfg['tenant'] + ': indicators to block', cfg['tenant'] + ': sightings'], titles
blocklist = next(c for c in root.collections if c.title.endswith('indicators to block'))
sightings = next(c for c in root.collections if c.title.endswith('sightings'))
assert blocklist.can_read and not blocklist.can_write
paged = []
for envelope in as_pages(blocklist.get_objects, per_request=7):
    paged.extend(envelope.get('objects', []))
ids = [o['id'] for o in paged]
assert len(ids) == len(set(ids)), 'an object repeated across pages'
whole = blocklist.get_objects()['objects']
assert [o['id'] for o in whole] == ids, 'pages chain into the whole collection'
patterns = [o.get('pattern') for o in paged if o['type'] == 'indicator']
print(len(paged), 'objects in pages of 7,', len(patterns), 'indicators')
assert \"[domain-name:value = 'msstorageboxes.com']\" in patterns
assert not any('azureonlinecloud.com' in (p or '') for p in patterns), 'allowlisted'
manifest = blocklist.get_manifest()['objects']
assert [m['id'] for m in manifest] == ids[:len(manifest)]
ties = len(manifest) - len(set(m['date_added'] for m in manifest))
print(ties, 'objects added in the same instant as another, paged without loss')
assert ties > 0, 'the paging was not tested on ties'

last = manifest[-1]['date_added']
assert 'objects' not in blocklist.get_objects(added_after=last) or all(
    o['id'] not in [m['id'] for m in manifest] for o in blocklist.get_objects(added_after=last)['objects'])
only = blocklist.get_objects(type='identity')['objects']
assert [o['type'] for o in only] == ['identity'], only
seen = sightings.get_objects(type='sighting').get('objects', [])
print(len(seen), 'sightings')
assert seen and all(s['sighting_of_ref'].startswith('indicator--') for s in seen)
assert any(s['sighting_of_ref'] in ids for s in seen), 'a sighting names a listed indicator'
";

#[test]
fn taxii_clients_page_a_tenant_s_collections_and_no_other_s() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    env.ok(&["tenant", "add", "beta"]);
    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../intel/3cx");
    env.ok(&["intel", "import", path(&pack)]);
    env.ok(&[
        "allow",
        "add",
        "--destination",
        "azureonlinecloud.com",
        "--tenant",
        "acme",
        "--reason",
        "test: acme's exemption",
    ]);
    let seen = env.file(
        "acme.ndjson",
        &dns("ws-1", "2023-03-29T10:00:00Z", "www.msstorageboxes.com"),
    );
    env.ok(&["ingest", "--tenant", "acme", path(&seen)]);
    let acme = last_line(&env.ok(&["token", "create", "--tenant", "acme", "--scope", "read"]));
    let served = Served::start(&env);

    // Another tenant's collection is not found; an ingest token reads none.
    let (status, _, body) = served.get("/taxii2/api/collections/", Some(&acme));
    assert_eq!(status, 200, "{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = listed["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["title"].as_str().unwrap())
        .collect();
    assert!(names.iter().all(|n| n.starts_with("acme:")), "{names:?}");
    let sensor = last_line(&env.ok(&["token", "create", "--tenant", "beta", "--scope", "ingest"]));
    assert_eq!(served.get("/taxii2/api/collections/", Some(&sensor)).0, 403);
    let beta = last_line(&env.ok(&["token", "create", "--tenant", "beta", "--scope", "read"]));
    let acme_collection = listed["collections"][0]["id"].as_str().unwrap().to_owned();
    let (status, head, _) = served.get(
        &format!("/taxii2/api/collections/{acme_collection}/objects/"),
        Some(&beta),
    );
    assert_eq!(status, 404, "beta reaches acme's collection");
    assert!(
        head.contains("application/taxii+json;version=2.1"),
        "{head}"
    );

    // Pages resume after the last object even when several were added
    // in the same instant (one import stores many at once).
    let (_, _, page) = served.get(
        &format!("/taxii2/api/collections/{acme_collection}/objects/?limit=3"),
        Some(&acme),
    );
    let page: serde_json::Value = serde_json::from_str(&page).unwrap();
    assert_eq!(page["objects"].as_array().unwrap().len(), 3);
    assert_eq!(page["more"], true);

    match std::env::var("TURNCOAT_TEST_PYTHON") {
        Ok(python) => {
            let cfg = serde_json::json!({
                "url": format!("http://{}", served.addr),
                "token": acme,
                "tenant": "acme",
            });
            let file = env.file("taxii.json", &cfg.to_string());
            common::python_check(Path::new(&python), TAXII_CLIENT, &file);
        }
        Err(_) => println!("skipped: taxii2-client (TURNCOAT_TEST_PYTHON unset; .ci/run sets it)"),
    }
}
