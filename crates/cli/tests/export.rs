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

    // Suricata's own check, where Suricata is installed (it is not here).
    let rules_dir = env.dir.path().join("suricata");
    std::fs::create_dir_all(&rules_dir).unwrap();
    std::fs::write(rules_dir.join("turncoat.rules"), &rules).unwrap();
    std::fs::write(rules_dir.join("turncoat-sha256.lst"), &dataset).unwrap();
    match std::process::Command::new("suricata")
        .args(["-T", "-S"])
        .arg(rules_dir.join("turncoat.rules"))
        .arg("-l")
        .arg(&rules_dir)
        .current_dir(&rules_dir)
        .output()
    {
        Ok(out) => {
            let said = String::from_utf8_lossy(&out.stderr);
            println!("suricata -T: {said}");
            assert!(
                out.status.success(),
                "{said}{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        Err(_) => println!("skipped: suricata -T (no suricata binary)"),
    }

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

/// Writes to a blocklist collection with OASIS's client: an admin may
/// (the objects are imported as intel), a tenant's read token may not.
const TAXII_WRITE: &str = "
import json, sys
from taxii2client.v21 import Server
from taxii2client.exceptions import TAXIIServiceException
cfg = json.load(open(sys.argv[1]))
def blocklist(token):
    root = Server(cfg['url'] + '/taxii2/', user='x', password=token).api_roots[0]
    return next(c for c in root.collections if c.title.endswith('indicators to block'))
bundle = {'type': 'bundle', 'id': 'bundle--6c1f8f2e-4f0b-4d8e-8c55-3c2d6b8f0abc', 'objects': [{
    'type': 'indicator', 'spec_version': '2.1', 'id': 'indicator--6c1f8f2e-4f0b-4d8e-8c55-3c2d6b8f0abd',
    'created': '2023-03-30T00:00:00.000Z', 'modified': '2023-03-30T00:00:00.000Z',
    'pattern': \"[domain-name:value = 'shared-by-mssp.example']\", 'pattern_type': 'stix',
    'valid_from': '2023-03-30T00:00:00Z'}]}
reader = blocklist(cfg['token'])
assert not reader.can_write
try:
    reader.add_objects(json.dumps(bundle))
    sys.exit('a read token wrote')
except Exception as e:
    print('read token refused:', type(e).__name__)
admin = blocklist(cfg['admin'])
assert admin.can_write
status = admin.add_objects(json.dumps(bundle))
print('admin wrote:', status.status, status.success_count, 'of', status.total_count)
assert status.success_count == 1
patterns = [o.get('pattern') for o in admin.get_objects()['objects']]
assert \"[domain-name:value = 'shared-by-mssp.example']\" in patterns, patterns
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
            env.ok(&["user", "add", "root", "--role", "admin"]);
            let admin = last_line(&env.ok(&["token", "create", "--user", "root"]));
            let cfg = serde_json::json!({
                "url": format!("http://{}", served.addr),
                "token": acme,
                "admin": admin,
            });
            let file = env.file("taxii-write.json", &cfg.to_string());
            common::python_check(Path::new(&python), TAXII_WRITE, &file);
        }
        Err(_) => println!("skipped: taxii2-client (TURNCOAT_TEST_PYTHON unset; .ci/run sets it)"),
    }
}

/// Adds a TAXII feed to `env`, the secret given on standard input.
fn add_feed(env: &Env, name: &str, url: &str, collection: &str, secret: &str) {
    use std::io::Write as _;
    let mut child = env.spawn(&[
        "intel",
        "feed",
        "add",
        name,
        url,
        "--collection",
        collection,
        "--user",
        "mssp",
        "--secret-stdin",
    ]);
    writeln!(child.stdin.take().unwrap(), "{secret}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_taxii_feed_is_polled_resumed_and_retro_hunted() {
    // The publisher: a turncoat serving its tenant's blocklist over TAXII.
    let publisher = Env::new();
    publisher.ok(&["tenant", "add", "acme"]);
    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../intel/3cx");
    publisher.ok(&["intel", "import", path(&pack)]);
    let token =
        last_line(&publisher.ok(&["token", "create", "--tenant", "acme", "--scope", "read"]));
    let served = Served::start(&publisher);
    let (_, _, listed) = served.get("/taxii2/api/collections/", Some(&token));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let collection = listed["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["title"] == "acme: indicators to block")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let root = format!("http://{}/taxii2/api/", served.addr);

    // The subscriber saw the C2 domain before it had any intel.
    let subscriber = Env::new();
    subscriber.ok(&["tenant", "add", "beta"]);
    let seen = subscriber.file(
        "beta.ndjson",
        &dns("srv-1", "2023-03-29T10:00:00Z", "api.msstorageboxes.com"),
    );
    subscriber.ok(&["ingest", "--tenant", "beta", path(&seen)]);
    assert!(subscriber.alerts(&["--kind", "ioc"]).is_empty());
    add_feed(&subscriber, "acme-mssp", &root, &collection, &token);
    let polled = subscriber.json(&["intel", "feed", "poll", "--format", "json"]);
    let first = &polled[0];
    assert!(first["error"].is_null(), "{polled}");
    let objects = first["objects"].as_u64().unwrap();
    assert!(objects > 20, "{polled}");
    assert!(
        first["import"]["indicators_new"].as_u64().unwrap() > 20,
        "{polled}"
    );
    // The retro-hunt ran on what the feed brought.
    let alerts = subscriber.alerts(&["--kind", "ioc"]);
    assert!(
        alerts.iter().any(|a| a["source"] == "msstorageboxes.com"),
        "{alerts:?}"
    );
    let listed = subscriber.ok(&["intel", "list"]);
    assert!(
        listed.contains("acme-mssp"),
        "indicators named by the feed: {listed}"
    );

    // The next poll resumes: nothing again, then only what was added.
    let again = subscriber.json(&["intel", "feed", "poll", "--format", "json"]);
    assert_eq!(again[0]["objects"], 0, "{again}");
    let extra = publisher.file(
        "extra.csv",
        "indicator,type\nlater-c2[.]example,hostname\n192.0.2[.]77,ip\n",
    );
    publisher.ok(&["intel", "import", path(&extra)]);
    let more = subscriber.json(&["intel", "feed", "poll", "--format", "json"]);
    assert_eq!(more[0]["objects"], 2, "{more}");
    assert_eq!(more[0]["import"]["indicators_new"], 2, "{more}");

    // Inside `serve`, on its schedule: what the publisher adds arrives.
    let running = Served::start_with(&subscriber, &["--taxii-poll", "1"], "http");
    let later = publisher.file(
        "later.csv",
        "indicator,type\nscheduled-c2[.]example,hostname\n192.0.2[.]78,ip\n",
    );
    publisher.ok(&["intel", "import", path(&later)]);
    let started = std::time::Instant::now();
    while !subscriber
        .ok(&["intel", "list"])
        .contains("scheduled-c2.example")
    {
        assert!(
            started.elapsed().as_secs() < 30,
            "serve did not poll the feed"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    drop(running);

    // A refused poll is an error the feed keeps; its place is kept too.
    let before =
        subscriber.json(&["intel", "feed", "list", "--format", "json"])[0]["added_after"].clone();
    add_feed(
        &subscriber,
        "wrong-token",
        &root,
        &collection,
        "tct_not-a-token",
    );
    let out = subscriber.run(&["intel", "feed", "poll", "wrong-token", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let feeds = subscriber.json(&["intel", "feed", "list", "--format", "json"]);
    let wrong = feeds
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "wrong-token")
        .unwrap();
    assert!(wrong["error"].as_str().unwrap().contains("401"), "{wrong}");
    assert_eq!(feeds[0]["added_after"], before);
    assert!(
        !feeds.to_string().contains("tct_"),
        "no secret is listed: {feeds}"
    );
}

/// A free local TCP port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Stops a child process when dropped.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Adds STIX objects to a medallion collection with OASIS's TAXII client.
const ADD_OBJECTS: &str = "
import json, sys
from taxii2client.v21 import Collection
cfg = json.load(open(sys.argv[1]))
collection = Collection(cfg['url'], user='mssp', password='Password0')
status = collection.add_objects(json.dumps(cfg['bundle']))
print('medallion took', status.success_count, 'objects')
sys.exit(0 if status.success_count == len(cfg['bundle']['objects']) else 1)
";

fn indicator(n: u32, pattern: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--6c1f8f2e-4f0b-4d8e-8c55-3c2d6b8f{n:04}"),
        "created": "2023-03-30T00:00:00.000Z", "modified": "2023-03-30T00:00:00.000Z",
        "name": "3CX C2", "pattern": pattern, "pattern_type": "stix",
        "valid_from": "2023-03-30T00:00:00Z"
    })
}

#[test]
fn a_taxii_feed_is_polled_from_the_oasis_reference_server() {
    let Ok(python) = std::env::var("TURNCOAT_TEST_PYTHON") else {
        println!("skipped: medallion (TURNCOAT_TEST_PYTHON unset; .ci/run sets it)");
        return;
    };
    let medallion = Path::new(&python).with_file_name("medallion");
    if !medallion.exists() {
        println!("skipped: medallion is not installed beside {python}");
        return;
    }
    let env = Env::new();
    let port = free_port();
    let collection = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";
    let root = format!("http://127.0.0.1:{port}/api1/");
    let data = serde_json::json!({
        "/discovery": {"title": "medallion", "default": root, "api_roots": [root]},
        "api1": {
            "information": {"title": "api1", "versions": ["application/taxii+json;version=2.1"], "max_content_length": 104857600},
            "status": [],
            "collections": [{
                "id": collection, "title": "vendor intel", "can_read": true, "can_write": true,
                "media_types": ["application/stix+json;version=2.1"], "objects": [], "manifest": []
            }]
        }
    });
    let data_file = env.file("medallion-data.json", &data.to_string());
    let config = serde_json::json!({
        "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend", "filename": path(&data_file)},
        "users": {"mssp": "Password0"},
        "taxii": {"max_page_size": 100}
    });
    let config_file = env.file("medallion.json", &config.to_string());
    let _server = Process(
        std::process::Command::new(&medallion)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                path(&config_file),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed().as_secs() < 30, "medallion did not start");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    println!("medallion listening on {port}");
    let add = |n: u32, patterns: &[&str]| {
        let objects: Vec<_> = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| indicator(n + i as u32, p))
            .collect();
        let cfg = serde_json::json!({
            "url": format!("{root}collections/{collection}/"),
            "bundle": {"type": "bundle", "id": "bundle--6c1f8f2e-4f0b-4d8e-8c55-3c2d6b8f0000", "objects": objects}
        });
        let file = env.file(&format!("add-{n}.json"), &cfg.to_string());
        common::python_check(Path::new(&python), ADD_OBJECTS, &file);
    };
    add(
        1,
        &[
            "[domain-name:value = 'msstorageboxes.com']",
            "[domain-name:value = 'akamaicontainer.com']",
            "[ipv4-addr:value = '198.51.100.23']",
        ],
    );

    env.ok(&["tenant", "add", "beta"]);
    let seen = env.file(
        "beta.ndjson",
        &dns("srv-1", "2023-03-29T10:00:00Z", "api.msstorageboxes.com"),
    );
    env.ok(&["ingest", "--tenant", "beta", path(&seen)]);
    add_feed(&env, "vendor", &root, collection, "Password0");
    let polled = env.json(&["intel", "feed", "poll", "--format", "json"]);
    assert!(polled[0]["error"].is_null(), "{polled}");
    assert_eq!(polled[0]["objects"], 3, "{polled}");
    assert_eq!(polled[0]["import"]["indicators_new"], 3, "{polled}");
    assert!(
        env.alerts(&["--kind", "ioc"])
            .iter()
            .any(|a| a["source"] == "msstorageboxes.com"),
        "the retro-hunt found the contact made before the intel"
    );
    // Added later: the next poll brings those only.
    std::thread::sleep(std::time::Duration::from_millis(20));
    add(
        10,
        &[
            "[domain-name:value = 'journalide.org']",
            "[domain-name:value = 'pbxcloudeservices.com']",
        ],
    );
    let more = env.json(&["intel", "feed", "poll", "--format", "json"]);
    assert_eq!(more[0]["objects"], 2, "{more}");
    assert_eq!(more[0]["import"]["indicators_new"], 2, "{more}");
    let none = env.json(&["intel", "feed", "poll", "--format", "json"]);
    assert_eq!(none[0]["objects"], 0, "{none}");
}
