//! The behaviour every [`Store`] must show, written once and run against
//! each backend's tests with a fresh, empty store.

use turncoat_core::{
    Actor, AlertId, AlertKind, AlertStatus, Ecosystem, Event, Evidence, Fields, Finding,
    FindingKey, Indicator, IndicatorKind, InventoryChange, InventoryItem, InventoryRecord,
    Logsource, Observable, ObservableKind, Platform, Role, Severity, TenantName, Time, TokenScope,
    Value,
};

use crate::{
    AlertAction, AlertFilter, AllowKind, Batch, CampaignUpserted, FindingMode, NewAllowEntry,
    NewToken, NewTokenOwner, NewUser, Scope, SightingDelta, SourceFingerprint, SourceUpdate, Store,
    StoreError, Tenant,
};

fn tenant_name(s: &str) -> TenantName {
    TenantName::new(s).unwrap()
}

fn event(host: &str, t: i64, domain: &str) -> Event {
    let mut fields = Fields::new();
    fields.push("QueryName", domain);
    // Fields of every kind a projection may skip: a known name, a list
    // (nested), a name written as text, a number, a long string.
    fields.push("Image", "C:\\Windows\\System32\\nslookup.exe");
    fields.push(
        "answers",
        Value::List(vec![
            "203.0.113.7".into(),
            Value::List(vec![Value::Int(-3)]),
        ]),
    );
    fields.push("my.own_field", Value::Float(4.5));
    fields.push("Count", 12i64);
    Event {
        time: Time(t),
        host: host.into(),
        logsource: Logsource::fixed(Some("windows"), Some("dns_query"), None),
        fields,
    }
}

fn finding(endpoint: &str, source: &str, key: FindingKey, count: u64, t: i64) -> Finding {
    Finding {
        endpoint: endpoint.into(),
        kind: AlertKind::Ioc,
        source: source.into(),
        title: format!("contact with {source}"),
        severity: Severity::High,
        campaign: None,
        key,
        first_seen: Time(t),
        last_seen: Time(t),
        count,
        evidence: Evidence {
            observed: source.into(),
            time: Time(t),
            file: None,
            detail: None,
            before_valid_from: false,
        },
    }
}

fn fingerprint(n: u8) -> SourceFingerprint {
    SourceFingerprint {
        hash: [n; 32],
        head: [n; 32],
        size: 100,
    }
}

/// Tenant names are unique ignoring case, and kept as first spelt.
pub fn tenants(store: &mut dyn Store) {
    store
        .add_tenant(&tenant_name("acme"), &Actor::User("test".into()))
        .unwrap();
    store
        .add_tenant(&tenant_name("Beta"), &Actor::User("test".into()))
        .unwrap();
    for (asked, existing) in [("acme", "acme"), ("Acme", "acme"), ("BETA", "Beta")] {
        match store.add_tenant(&tenant_name(asked), &Actor::User("test".into())) {
            Err(StoreError::TenantExists {
                asked: a,
                existing: e,
            }) => assert_eq!((a.as_str(), e.as_str()), (asked, existing)),
            other => panic!("{asked}: {other:?}"),
        }
    }
    let names: Vec<String> = store
        .tenants()
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(names, vec!["acme", "Beta"]);
    assert!(store.tenant("ACME").unwrap().is_none());

    // A scope answers for its members only; the administrator's holds all.
    let all = store.all_tenants().unwrap();
    assert_eq!(all.members().len(), 2);
    let acme = Scope::tenant(all.get("acme").unwrap());
    assert!(acme.get("acme").is_some());
    assert!(acme.get("Beta").is_none());
}

/// A batch's events, sightings and findings land together and can be read
/// back; the same finding key twice is one finding.
pub fn batches_and_findings(store: &mut dyn Store) {
    let t = store
        .add_tenant(&tenant_name("t1"), &Actor::User("test".into()))
        .unwrap();
    let events = vec![
        event("ws1", 1_000_000, "evil.com"),
        event("ws1", 2_000_000, "evil.com"),
    ];
    let obs = Observable::new(ObservableKind::Domain, "evil.com").unwrap();
    let batch = Batch {
        source: Some(SourceUpdate {
            fingerprint: fingerprint(1),
            name: "a.ndjson".into(),
            lines: 2,
            complete: true,
        }),
        sightings: vec![SightingDelta {
            observable: obs.clone(),
            endpoint: "ws1".into(),
            first: Time(1_000_000),
            last: Time(2_000_000),
            count: 2,
            event: 0,
        }],
        findings: vec![(
            finding(
                "ws1",
                "evil.com",
                FindingKey::sighting(ObservableKind::Domain, "evil.com", 0),
                2,
                1_000_000,
            ),
            Some(0),
        )],
        events: events.into(),
        ..Default::default()
    };
    let out = store.commit_batch(&t, batch, &mut |_| Vec::new()).unwrap();
    assert_eq!((out.events, out.new_alerts), (2, 1));
    let src = store.source(&t, &[1; 32]).unwrap().unwrap();
    assert!(src.complete);
    assert_eq!(src.lines, 2);

    let mut seen = Vec::new();
    store
        .scan_observables(&t, &[ObservableKind::Domain], &mut |id, _, v| {
            seen.push((id, v.to_owned()))
        })
        .unwrap();
    assert_eq!(seen.len(), 1);
    let sightings = store.sightings(&t, &[seen[0].0]).unwrap();
    assert_eq!(sightings[0].count, 2);
    assert_eq!(sightings[0].file.as_deref(), Some("a.ndjson"));
    let back = store.read_event(&t, sightings[0].event.unwrap()).unwrap();
    assert_eq!(back.fields.get_str("QueryName"), Some("evil.com"));

    // Archive scans decode what the filter keeps, in order, and nothing else.
    let scan = |keep: &dyn Fn(&crate::RecordHead<'_>) -> bool| {
        let mut times = Vec::new();
        let what = crate::Projection {
            records: keep,
            ..crate::Projection::ALL
        };
        store
            .scan_archive(&t, None, what, &mut |e| {
                assert_eq!(e.fields.get_str("QueryName"), Some("evil.com"));
                times.push(e.time.0);
            })
            .unwrap();
        times
    };
    assert_eq!(scan(&|_| true), [1_000_000, 2_000_000]);
    assert_eq!(
        scan(&|h| h.time.0 > 1_500_000 && h.host == "ws1"),
        [2_000_000]
    );
    assert!(scan(&|h| h.category == Some("network_connection")).is_empty());
    // ... and of those, the fields it keeps, equal to the whole event's.
    let whole = store.read_event(&t, sightings[0].event.unwrap()).unwrap();
    for wanted in [
        &["QueryName"][..],
        &["answers", "my.own_field"],
        &["Image", "Count", "QueryName"],
        &[],
    ] {
        let mut seen = Vec::new();
        let fields = |name: &str| wanted.contains(&name);
        let what = crate::Projection {
            records: &|h| h.time == whole.time,
            fields: &fields,
        };
        store
            .scan_archive(&t, None, what, &mut |e| seen.push(e))
            .unwrap();
        let expected = what.apply(&whole).expect("the record is kept");
        assert_eq!(expected.fields.len(), wanted.len(), "fields {wanted:?}");
        assert_eq!(seen, [expected], "fields {wanted:?}");
    }

    // A retro-hunt re-finding the same thing sets, never adds.
    let again = store
        .record_findings(
            &t,
            &[(
                finding(
                    "ws1",
                    "evil.com",
                    FindingKey::sighting(ObservableKind::Domain, "evil.com", 0),
                    2,
                    1_000_000,
                ),
                sightings[0].event,
            )],
            FindingMode::Set,
        )
        .unwrap();
    assert_eq!((again.new_alerts, again.updated_alerts), (0, 0));
    let alerts = store
        .alerts(&Scope::tenant(&t), &AlertFilter::default())
        .unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].count, 2);
    assert_eq!(alerts[0].status, AlertStatus::New);
    // The alert knows the archived event that raised it.
    assert_eq!(alerts[0].event, sightings[0].event);
    let raised = store.read_event(&t, alerts[0].event.unwrap()).unwrap();
    assert_eq!(raised.time, Time(1_000_000));

    // A window of hours reads those hours only, not on to the end.
    let hour = 3_600_000_000;
    let later = Batch {
        events: vec![
            event("ws1", 3 * hour + 5, "evil.com"),
            event("ws2", 3 * hour + 9, "evil.com"),
            event("ws1", 7 * hour, "evil.com"),
        ]
        .into(),
        ..Default::default()
    };
    store.commit_batch(&t, later, &mut |_| Vec::new()).unwrap();
    let window = |from: i64, to: i64| {
        let mut times = Vec::new();
        store
            .scan_hours(&t, Time(from), Time(to), crate::Projection::ALL, &mut |e| {
                times.push(e.time.0)
            })
            .unwrap();
        times
    };
    assert_eq!(window(3 * hour, 3 * hour + 1), [3 * hour + 5, 3 * hour + 9]);
    assert_eq!(window(2 * hour, 6 * hour), [3 * hour + 5, 3 * hour + 9]);
    assert_eq!(window(0, 7 * hour).len(), 5);
    assert!(window(8 * hour, 9 * hour).is_empty());
}

/// Inventory opens and closes ledger intervals, keeps them after removal,
/// and snapshots close what they no longer list.
pub fn ledger(store: &mut dyn Store) {
    let t = store
        .add_tenant(&tenant_name("t2"), &Actor::User("test".into()))
        .unwrap();
    let item = |v: &str| InventoryItem {
        name: "3CX Desktop App".into(),
        version: v.into(),
        vendor: None,
        platform: Some(Platform::Windows),
        ecosystem: Ecosystem::Generic,
    };
    let rec = |t: i64, change| InventoryRecord {
        host: "ws1".into(),
        time: Time(t),
        source: "programs".into(),
        change,
    };
    let batch = Batch {
        inventory: vec![
            rec(10, InventoryChange::Added(vec![item("18.12.407")])),
            rec(20, InventoryChange::Removed(vec![item("18.12.407")])),
            rec(20, InventoryChange::Added(vec![item("18.12.416")])),
            rec(30, InventoryChange::Snapshot(vec![item("18.12.422")])),
        ],
        ..Default::default()
    };
    let mut hooked = Vec::new();
    store
        .commit_batch(&t, batch, &mut |e| {
            hooked.push((e.version.clone(), e.removed));
            Vec::new()
        })
        .unwrap();
    let entries = store
        .ledger(&t, Some(&["3cx desktop app".to_owned()]))
        .unwrap();
    let got: Vec<(String, i64, Option<i64>)> = entries
        .iter()
        .map(|e| (e.version.clone(), e.installed.0, e.removed.map(|r| r.0)))
        .collect();
    assert_eq!(
        got,
        vec![
            ("18.12.407".into(), 10, Some(20)),
            ("18.12.416".into(), 20, Some(30)),
            ("18.12.422".into(), 30, None),
        ]
    );
    assert!(
        hooked.contains(&("18.12.416".into(), None))
            && hooked.contains(&("18.12.416".into(), Some(Time(30))))
    );

    // A package is found under any spelling its registry treats as one.
    let package = InventoryItem {
        name: "Python_DateUtil".into(),
        version: "2.8.0".into(),
        vendor: None,
        platform: None,
        ecosystem: Ecosystem::Pypi,
    };
    let batch = Batch {
        inventory: vec![InventoryRecord {
            source: "python_packages".into(),
            ..rec(40, InventoryChange::Added(vec![package]))
        }],
        ..Default::default()
    };
    store.commit_batch(&t, batch, &mut |_| Vec::new()).unwrap();
    let found = store
        .ledger(&t, Some(&["python-dateutil".to_owned()]))
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name, "Python_DateUtil");
}

/// One tenant never sees another's alerts, events or ledger.
pub fn isolation(store: &mut dyn Store) {
    let a = store
        .add_tenant(&tenant_name("iso-a"), &Actor::User("test".into()))
        .unwrap();
    let b = store
        .add_tenant(&tenant_name("iso-b"), &Actor::User("test".into()))
        .unwrap();
    let batch = Batch {
        events: vec![event("secret-host", 5_000_000, "a-only.com")].into(),
        findings: vec![(
            finding(
                "secret-host",
                "a-only.com",
                FindingKey::rule_day(0),
                1,
                5_000_000,
            ),
            Some(0),
        )],
        sightings: vec![SightingDelta {
            observable: Observable::new(ObservableKind::Domain, "a-only.com").unwrap(),
            endpoint: "secret-host".into(),
            first: Time(5_000_000),
            last: Time(5_000_000),
            count: 1,
            event: 0,
        }],
        ..Default::default()
    };
    store.commit_batch(&a, batch, &mut |_| Vec::new()).unwrap();
    assert!(
        store
            .alerts(&Scope::tenant(&b), &AlertFilter::default())
            .unwrap()
            .is_empty()
    );
    let a_alert = store
        .alerts(&Scope::tenant(&a), &AlertFilter::default())
        .unwrap()[0]
        .clone();
    assert_eq!(
        store.alert(&Scope::tenant(&a), a_alert.id).unwrap(),
        Some(a_alert.clone()),
        "one alert by id is the same row as listed"
    );
    assert_eq!(
        store.alert(&Scope::tenant(&b), a_alert.id).unwrap(),
        None,
        "b reads no alert of a's by its id"
    );
    assert_eq!(
        store.alert_counts(&Scope::tenant(&a)).unwrap(),
        vec![crate::AlertCount {
            tenant: a.name().clone(),
            kind: a_alert.kind,
            severity: a_alert.severity,
            status: a_alert.status,
            count: 1,
        }]
    );
    assert!(store.alert_counts(&Scope::tenant(&b)).unwrap().is_empty());
    let both = Scope::tenants(&[a.clone(), b.clone()]);
    assert!(store.alert(&both, a_alert.id).unwrap().is_some());
    assert_eq!(
        store
            .alert(&both, AlertId::new(a_alert.id.get() + 1000))
            .unwrap(),
        None
    );
    let mut ids = Vec::new();
    store
        .scan_observables(&a, &[ObservableKind::Domain], &mut |id, _, _| ids.push(id))
        .unwrap();
    assert!(
        store.sightings(&b, &ids).unwrap().is_empty(),
        "b reads no sightings of a's observables"
    );
    let mut b_seen = 0;
    store
        .scan_observables(&b, &ObservableKind::ALL, &mut |_, _, _| b_seen += 1)
        .unwrap();
    assert_eq!(b_seen, 0);
    let a_sighting = &store.sightings(&a, &ids).unwrap()[0];
    assert!(matches!(
        store.read_event(&b, a_sighting.event.unwrap()),
        Err(StoreError::OutOfScope(_))
    ));
    let alert = &store
        .alerts(&Scope::tenant(&a), &AlertFilter::default())
        .unwrap()[0];
    assert!(matches!(
        store.set_alert_status(
            &Scope::tenant(&b),
            alert.id,
            AlertStatus::Resolved,
            None,
            &Actor::User("b".into())
        ),
        Err(StoreError::OutOfScope(_))
    ));
    // Triage and its history stay within the owner's scope.
    let b_scope = Scope::tenant(&b);
    let b_actor = Actor::User("b".into());
    assert!(matches!(
        store.assign_alert(&b_scope, alert.id, Some("b"), &b_actor),
        Err(StoreError::OutOfScope(_))
    ));
    assert!(matches!(
        store.comment_alert(&b_scope, alert.id, "hello", &b_actor),
        Err(StoreError::OutOfScope(_))
    ));
    assert!(matches!(
        store.alert_history(&b_scope, alert.id),
        Err(StoreError::OutOfScope(_))
    ));
    let a_scope = Scope::tenant(&a);
    store
        .comment_alert(&a_scope, alert.id, "looked at it", &Actor::User("a".into()))
        .unwrap();
    let history = store.alert_history(&a_scope, alert.id).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].action, history[0].note.as_deref()),
        (AlertAction::Comment, Some("looked at it"))
    );
    // Renaming goes by the owning tenant only, and keeps the alert.
    assert!(matches!(
        store.rename_alert_source(&b, alert.id, "renamed.example", &Actor::Pipeline),
        Err(StoreError::OutOfScope(_))
    ));
    store
        .rename_alert_source(&a, alert.id, "renamed.example", &Actor::Pipeline)
        .unwrap();
    let renamed = store
        .alerts(&Scope::tenant(&a), &AlertFilter::default())
        .unwrap();
    assert_eq!(renamed.len(), 1);
    assert_eq!(
        (renamed[0].id, renamed[0].source.as_str()),
        (alert.id, "renamed.example")
    );
    assert!(
        store
            .audit_log(&Scope::tenant(&b), 100)
            .unwrap()
            .iter()
            .all(|e| e.tenant.as_ref().is_none_or(|t| t.as_str() == "iso-b"))
    );
}

/// Indicator imports report what is new and what changed, idempotently.
pub fn indicators(store: &mut dyn Store) {
    let mut i = Indicator::new(IndicatorKind::Domain, "evil.com", "feed").unwrap();
    let first = store
        .upsert_indicators(&mut std::iter::once(i.clone()), &Actor::User("test".into()))
        .unwrap();
    assert_eq!(first.inserted.len(), 1);
    let again = store
        .upsert_indicators(&mut std::iter::once(i.clone()), &Actor::User("test".into()))
        .unwrap();
    assert_eq!(
        (again.inserted.len(), again.changed.len(), again.unchanged),
        (0, 0, 1)
    );
    let key = store.intel_key().unwrap();
    i.revoked = true;
    let changed = store
        .upsert_indicators(&mut std::iter::once(i), &Actor::User("test".into()))
        .unwrap();
    assert_eq!(changed.changed, first.inserted);
    assert!(store.indicators().unwrap()[0].indicator.revoked);
    // The key names the detection content: rules change it as indicators
    // do, and storing the same again does not.
    let key = (key, store.intel_key().unwrap());
    assert_ne!(key.0, key.1, "a changed indicator changes the key");
    let rule = crate::StoredRule {
        id: "6a9e6a8e-0000-4000-8000-000000000001".into(),
        title: "test".into(),
        source: "test.yml".into(),
        text: "title: test".into(),
        updated: turncoat_core::Time(1),
    };
    let actor = Actor::User("test".into());
    store
        .upsert_rules(std::slice::from_ref(&rule), &actor)
        .unwrap();
    let after_rule = store.intel_key().unwrap();
    assert_ne!(after_rule, key.1, "a new rule changes the key");
    store.upsert_rules(&[rule], &actor).unwrap();
    assert_eq!(
        store.intel_key().unwrap(),
        after_rule,
        "the same rule again does not"
    );
}

/// Allowlist entries are global or per tenant, and a tenant sees only its
/// own; an entry closes the open beacon alerts it is given, in its tenants
/// only.
pub fn allowlists(store: &mut dyn Store) {
    let a = store
        .add_tenant(&tenant_name("al-a"), &Actor::User("test".into()))
        .unwrap();
    let b = store
        .add_tenant(&tenant_name("al-b"), &Actor::User("test".into()))
        .unwrap();
    let entry = |kind, value| NewAllowEntry {
        kind,
        value,
        reason: "update service",
    };
    store
        .add_allow(
            None,
            &entry(AllowKind::Destination, "windowsupdate.com"),
            &[],
            &Actor::User("test".into()),
        )
        .unwrap();
    let mut beacon_alert = |t: &Tenant| {
        let mut f = finding("10.0.0.9", "scanner.example", FindingKey::pair(), 1, 10);
        f.kind = AlertKind::Beacon;
        store
            .record_findings(t, &[(f, None)], FindingMode::Set)
            .unwrap();
        store
            .alerts(&Scope::tenant(t), &AlertFilter::default())
            .unwrap()[0]
            .id
    };
    let (in_a, in_b) = (beacon_alert(&a), beacon_alert(&b));
    let added = store
        .add_allow(
            Some(&a),
            &entry(AllowKind::Source, "10.0.0.9"),
            &[in_a, in_b],
            &Actor::User("test".into()),
        )
        .unwrap();
    assert_eq!(
        added.closed,
        vec![in_a],
        "another tenant's alert is not closed"
    );
    let mine = added.id;
    let closed = &store
        .alerts(&Scope::tenant(&a), &AlertFilter::default())
        .unwrap()[0];
    assert_eq!(closed.status, AlertStatus::Allowlisted);
    assert!(
        closed
            .status_reason
            .as_deref()
            .unwrap()
            .contains("10.0.0.9"),
        "{closed:?}"
    );
    let open = &store
        .alerts(&Scope::tenant(&b), &AlertFilter::default())
        .unwrap()[0];
    assert_eq!(open.status, AlertStatus::New);
    let seen_by_b: Vec<String> = store
        .allowlist(&Scope::tenant(&b))
        .unwrap()
        .into_iter()
        .map(|e| e.value)
        .collect();
    assert_eq!(seen_by_b, vec!["windowsupdate.com"]);
    assert_eq!(store.allowlist(&Scope::tenant(&a)).unwrap().len(), 2);
    assert!(matches!(
        store.remove_allow(&Scope::tenant(&b), mine, &Actor::User("b".into())),
        Err(StoreError::OutOfScope(_))
    ));
    store
        .remove_allow(&Scope::tenant(&a), mine, &Actor::User("a".into()))
        .unwrap();
    assert_eq!(store.allowlist(&Scope::tenant(&a)).unwrap().len(), 1);
}

/// Internal ranges are global or per tenant; a tenant sees and removes
/// only its own and the global ones; adding a range again keeps one row.
pub fn internal_networks(store: &mut dyn Store) {
    let a = store
        .add_tenant(&tenant_name("in-a"), &Actor::User("test".into()))
        .unwrap();
    let b = store
        .add_tenant(&tenant_name("in-b"), &Actor::User("test".into()))
        .unwrap();
    let global = store
        .add_internal_network(
            None,
            "100.64.0.0/10",
            "carrier NAT",
            &Actor::User("test".into()),
        )
        .unwrap();
    let mine = store
        .add_internal_network(
            Some(&a),
            "203.0.113.0/24",
            "office",
            &Actor::User("test".into()),
        )
        .unwrap();
    let again = store
        .add_internal_network(
            Some(&a),
            "203.0.113.0/24",
            "office uplink",
            &Actor::User("test".into()),
        )
        .unwrap();
    assert_eq!(mine, again);
    let again = store
        .add_internal_network(None, "100.64.0.0/10", "CGNAT", &Actor::User("test".into()))
        .unwrap();
    assert_eq!(global, again);
    let cidrs = |store: &dyn Store, t: &Tenant| -> Vec<(String, String)> {
        store
            .internal_networks(&Scope::tenant(t))
            .unwrap()
            .into_iter()
            .map(|n| (n.cidr, n.note))
            .collect()
    };
    assert_eq!(
        cidrs(store, &a),
        [
            ("100.64.0.0/10".to_owned(), "CGNAT".to_owned()),
            ("203.0.113.0/24".to_owned(), "office uplink".to_owned())
        ]
    );
    assert_eq!(
        cidrs(store, &b),
        [("100.64.0.0/10".to_owned(), "CGNAT".to_owned())]
    );
    assert!(matches!(
        store.remove_internal_network(&Scope::tenant(&b), mine, &Actor::User("b".into())),
        Err(StoreError::OutOfScope(_))
    ));
    store
        .remove_internal_network(&Scope::tenant(&a), mine, &Actor::User("a".into()))
        .unwrap();
    assert_eq!(cidrs(store, &a).len(), 1);
}

/// A campaign alert names several tenants: only a scope holding all of them
/// sees it.
pub fn campaigns(store: &mut dyn Store) {
    let a = store
        .add_tenant(&tenant_name("c-a"), &Actor::User("test".into()))
        .unwrap();
    let b = store
        .add_tenant(&tenant_name("c-b"), &Actor::User("test".into()))
        .unwrap();
    let mut ids = Vec::new();
    for t in [&a, &b] {
        store
            .record_findings(
                t,
                &[(
                    finding("ws", "evil.com", FindingKey::rule_day(0), 1, 10),
                    None,
                )],
                FindingMode::Set,
            )
            .unwrap();
        ids.push(
            store
                .alerts(&Scope::tenant(t), &AlertFilter::default())
                .unwrap()[0]
                .id,
        );
    }
    let raised = store
        .upsert_campaign(
            AlertKind::Ioc,
            "evil.com",
            "evil.com in 2 tenants",
            &ids,
            &Actor::User("test".into()),
        )
        .unwrap();
    assert!(raised.new);
    assert_eq!(
        store
            .upsert_campaign(
                AlertKind::Ioc,
                "evil.com",
                "evil.com in 2 tenants",
                &ids,
                &Actor::User("test".into())
            )
            .unwrap(),
        CampaignUpserted {
            id: raised.id,
            new: false,
            resurfaced: Vec::new()
        }
    );
    let seen_by_a = store.campaigns(&Scope::tenant(&a)).unwrap();
    assert_eq!(seen_by_a.len(), 1, "a sees the campaign, cut to its own");
    assert!(seen_by_a[0].beyond_scope);
    assert_eq!(seen_by_a[0].tenants, vec![a.name().clone()]);
    assert!(
        !seen_by_a[0].title.contains(b.name().as_str()),
        "a tenant never sees another's name: {}",
        seen_by_a[0].title
    );
    let a_alerts: Vec<AlertId> = store
        .alerts(&Scope::tenant(&a), &AlertFilter::default())
        .unwrap()
        .iter()
        .map(|x| x.id)
        .collect();
    assert!(
        seen_by_a[0]
            .member_alerts
            .iter()
            .all(|id| a_alerts.contains(id)),
        "nor another's alerts"
    );
    let both = store
        .campaigns(&Scope::tenants(&[a.clone(), b.clone()]))
        .unwrap();
    assert_eq!(both.len(), 1);
    assert!(!both[0].beyond_scope);
    assert_eq!(both[0].member_alerts, ids);
    assert_eq!(
        store
            .alerts(&Scope::tenant(&a), &AlertFilter::default())
            .unwrap()[0]
            .campaign_alert,
        Some(raised.id)
    );
}

/// Stream state is per tenant: one tenant's state is never another's.
/// It is written with a batch or with findings, in their transaction.
pub fn stream_state(store: &mut dyn Store) {
    let a = store
        .add_tenant(&tenant_name("ss-a"), &Actor::User("test".into()))
        .unwrap();
    let b = store
        .add_tenant(&tenant_name("ss-b"), &Actor::User("test".into()))
        .unwrap();
    assert_eq!(store.stream_state(&a, "sigma").unwrap(), None);
    let batch = Batch {
        stream_state: vec![("sigma", b"one".to_vec())],
        ..Batch::default()
    };
    store.commit_batch(&a, batch, &mut |_| Vec::new()).unwrap();
    store
        .record_findings_and_state(&a, &[], FindingMode::Add, ("sigma", b"two"))
        .unwrap();
    assert_eq!(
        store.stream_state(&a, "sigma").unwrap().as_deref(),
        Some(&b"two"[..])
    );
    assert_eq!(store.stream_state(&b, "sigma").unwrap(), None, "isolation");
    assert_eq!(store.stream_state(&a, "other").unwrap(), None);
}

/// Feeds (endpoint and log source) know their newest event and rate, per
/// tenant, across batches; a sensor that stopped keeps its last time.
pub fn feeds(store: &mut dyn Store) {
    let actor = Actor::User("test".into());
    let a = store.add_tenant(&tenant_name("fa"), &actor).unwrap();
    let b = store.add_tenant(&tenant_name("fb"), &actor).unwrap();
    let minute = 60_000_000;
    let day = 24 * 60 * minute;
    // ws1 sends one event a minute for three hours, in three batches,
    // after one event a day and a half before; ws2 stops after an hour.
    let start = 10 * day;
    let first = Batch {
        events: vec![event("ws1", start - 36 * 60 * minute, "x.com")].into(),
        ..Default::default()
    };
    store.commit_batch(&a, first, &mut |_| Vec::new()).unwrap();
    for part in 0..3 {
        let mut events = Vec::new();
        for m in part * 60..(part + 1) * 60 {
            events.push(event("ws1", start + m * minute, "x.com"));
            if part == 0 {
                events.push(event("ws2", start + m * minute, "x.com"));
            }
        }
        let batch = Batch {
            events: events.into(),
            ..Default::default()
        };
        store.commit_batch(&a, batch, &mut |_| Vec::new()).unwrap();
    }
    let other = Batch {
        events: vec![event("wsb", start, "x.com")].into(),
        ..Default::default()
    };
    store.commit_batch(&b, other, &mut |_| Vec::new()).unwrap();

    let feeds = store.feeds(&Scope::tenant(&a)).unwrap();
    assert_eq!(feeds.len(), 2, "{feeds:?}");
    let ws1 = feeds.iter().find(|f| f.endpoint == "ws1").unwrap();
    assert_eq!(ws1.logsource, "windows/dns_query");
    assert_eq!(ws1.last_event, Time(start + 179 * minute));
    // 120 events in the last two hours, over 119 minutes.
    assert!((ws1.per_minute - 120.0 / 119.0).abs() < 1e-9, "{ws1:?}");
    assert_eq!(ws1.recent_events, 120);
    let ws2 = feeds.iter().find(|f| f.endpoint == "ws2").unwrap();
    assert_eq!(ws2.last_event, Time(start + 59 * minute));
    assert!(ws2.last_event < ws1.last_event);
    assert!(feeds.iter().all(|f| f.tenant.as_str() == "fa"), "isolation");
    let theirs = store.feeds(&Scope::tenant(&b)).unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].endpoint, "wsb");
}

/// TAXII feeds keep their secret apart (never listed), resume where the
/// last good poll ended, and are audited.
pub fn taxii_feeds(store: &mut dyn Store) {
    let actor = Actor::User("root".into());
    let new = crate::NewTaxiiFeed {
        name: "vendor",
        api_root: "https://taxii.example/api/",
        collection: "c1",
        username: Some("us"),
        secret: Some("s3cret"),
    };
    let feed = store.add_taxii_feed(&new, &actor).unwrap();
    assert!(matches!(
        store.add_taxii_feed(&new, &actor),
        Err(StoreError::FeedExists(_))
    ));
    assert_eq!(
        store.taxii_feed_secret(feed.id).unwrap().as_deref(),
        Some("s3cret")
    );
    let listed = format!("{:?}", store.taxii_feeds().unwrap());
    assert!(!listed.contains("s3cret"), "{listed}");
    store
        .record_taxii_poll(feed.id, Some("2023-03-30T00:00:00.000001Z"), None, Time(5))
        .unwrap();
    store
        .record_taxii_poll(feed.id, None, Some("connection refused"), Time(6))
        .unwrap();
    let after = &store.taxii_feeds().unwrap()[0];
    assert_eq!(
        after.added_after.as_deref(),
        Some("2023-03-30T00:00:00.000001Z")
    );
    assert_eq!(after.error.as_deref(), Some("connection refused"));
    assert_eq!(after.polled, Some(Time(6)));
    store.remove_taxii_feed(feed.id, &actor).unwrap();
    assert!(store.taxii_feeds().unwrap().is_empty());
    assert!(matches!(
        store.remove_taxii_feed(feed.id, &actor),
        Err(StoreError::NoSuchFeed(_))
    ));
    let log = store.audit_log(&store.all_tenants().unwrap(), 10).unwrap();
    assert!(log.iter().any(|e| e.action == "intel.feed.add"));
    let all = store.all_tenants().unwrap();
    let added = log
        .iter()
        .find(|e| e.action == "intel.feed.add")
        .unwrap()
        .time;
    assert!(store.last_audited(&all, "intel.feed.").unwrap() >= Some(added));
    assert_eq!(store.last_audited(&all, "no.such.").unwrap(), None);
}

/// Notification targets read only their tenant's changes from when they
/// were added; queuing moves their cursors; delivery serves each target
/// in order, retries when due, and gives up into a dead letter.
pub fn notifications(store: &mut dyn Store) {
    let actor = Actor::User("root".into());
    let a = store.add_tenant(&tenant_name("na"), &actor).unwrap();
    let b = store.add_tenant(&tenant_name("nb"), &actor).unwrap();
    let raise = |store: &mut dyn Store, t: &Tenant, source: &str| {
        let f = finding(
            "ws1",
            source,
            FindingKey::sighting(ObservableKind::Domain, source, 0),
            1,
            1_000_000,
        );
        store
            .record_findings(t, &[(f, None)], FindingMode::Add)
            .unwrap();
    };
    raise(store, &a, "before.example");
    let events = ["new".to_owned(), "status".to_owned()];
    let new = |name: &'static str| crate::NewNotifyTarget {
        name,
        kind: "webhook",
        address: "https://hooks.example/x",
        secret: Some("k"),
        format: "json",
        events: &events,
        kinds: &[],
        min_severity: None,
        ca: None,
    };
    let mine = store
        .add_notify_target(Some(&a), &new("a-hook"), &actor)
        .unwrap();
    let all = store
        .add_notify_target(None, &new("mssp-hook"), &actor)
        .unwrap();
    assert!(matches!(
        store.add_notify_target(None, &new("a-hook"), &actor),
        Err(StoreError::TargetExists(_))
    ));
    assert_eq!(store.notify_secret(mine.id).unwrap().as_deref(), Some("k"));
    raise(store, &a, "after.example");
    raise(store, &b, "theirs.example");
    let changes = store.notify_changes(&mine, 100).unwrap();
    let sources: Vec<&str> = changes
        .new_alerts
        .iter()
        .map(|x| x.source.as_str())
        .collect();
    assert_eq!(
        sources,
        ["after.example"],
        "only a's, only since the target was added"
    );
    let every = store.notify_changes(&all, 100).unwrap();
    assert_eq!(every.new_alerts.len(), 2);
    let alert = changes.new_alerts[0].id;
    store
        .set_alert_status(
            &Scope::tenant(&a),
            alert,
            AlertStatus::Acknowledged,
            None,
            &actor,
        )
        .unwrap();
    let changes = store.notify_changes(&mine, 100).unwrap();
    assert_eq!(changes.changes.len(), 1);
    assert_eq!(changes.changes[0].2.status, AlertStatus::Acknowledged);
    let queued = |key: &str| crate::NewNotification {
        key: key.into(),
        event: "new".into(),
        payload: "{}".into(),
    };
    store
        .enqueue_notifications(
            mine.id,
            changes.cursors,
            &[queued("k1"), queued("k2"), queued("k1")],
            Time(10),
        )
        .unwrap();
    let after = store.notify_changes(&mine, 100).unwrap();
    assert!(
        after.new_alerts.is_empty() && after.changes.is_empty(),
        "cursors moved"
    );
    // In order, one at a time per target; a failure waits until due.
    let due = store.due_notifications(Time(10)).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].key, "k1");
    let failed = crate::Delivery::Failed {
        error: "503".into(),
        retry_at: Some(Time(20)),
    };
    store.record_delivery(due[0].id, &failed, Time(10)).unwrap();
    assert!(store.due_notifications(Time(15)).unwrap().is_empty());
    let again = store.due_notifications(Time(20)).unwrap();
    assert_eq!((again[0].key.as_str(), again[0].attempts), ("k1", 1));
    store
        .record_delivery(again[0].id, &crate::Delivery::Delivered, Time(20))
        .unwrap();
    let next = store.due_notifications(Time(20)).unwrap();
    assert_eq!(next[0].key, "k2");
    let dead = crate::Delivery::Failed {
        error: "410 Gone".into(),
        retry_at: None,
    };
    store.record_delivery(next[0].id, &dead, Time(21)).unwrap();
    assert!(store.due_notifications(Time(99)).unwrap().is_empty());
    let letters = store.notifications(&Scope::tenant(&a), true, 10).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].error.as_deref(), Some("410 Gone"));
    // Another tenant neither sees nor removes a's target.
    let theirs = store.notify_targets(&Scope::tenant(&b)).unwrap();
    assert!(theirs.iter().all(|t| t.id != mine.id));
    assert!(
        store
            .notifications(&Scope::tenant(&b), true, 10)
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.remove_notify_target(&Scope::tenant(&b), mine.id, &actor),
        Err(StoreError::NoSuchTarget(_))
    ));
    store
        .remove_notify_target(&Scope::tenant(&a), mine.id, &actor)
        .unwrap();
    // When a tenant's allowlist last changed is that tenant's to know.
    store
        .audit(&actor, Some(&b), "allow.add", "their exemption")
        .unwrap();
    assert_eq!(
        store.last_audited(&Scope::tenant(&a), "allow.").unwrap(),
        None
    );
    assert!(
        store
            .last_audited(&Scope::tenant(&b), "allow.")
            .unwrap()
            .is_some()
    );
}

/// Runs every check, each on a fresh store from `fresh`.
pub fn run_all(mut fresh: impl FnMut() -> Box<dyn Store>) {
    tenants(fresh().as_mut());
    batches_and_findings(fresh().as_mut());
    ledger(fresh().as_mut());
    isolation(fresh().as_mut());
    indicators(fresh().as_mut());
    allowlists(fresh().as_mut());
    internal_networks(fresh().as_mut());
    campaigns(fresh().as_mut());
    stream_state(fresh().as_mut());
    users_and_tokens(fresh().as_mut());
    alert_pages(fresh().as_mut());
    feeds(fresh().as_mut());
    taxii_feeds(fresh().as_mut());
    notifications(fresh().as_mut());
    findings_in_one_call(fresh().as_mut());
}

/// Many findings recorded in one call come out as if recorded one by
/// one: findings of one alert and key folded, an alert created by its
/// first finding and updated by the later ones, a new alert under a live
/// suppression held as suppressed, a dismissed one resurfaced by new
/// intel or a higher severity.
pub fn findings_in_one_call(store: &mut dyn Store) {
    let actor = Actor::User("test".into());
    let t = store.add_tenant(&tenant_name("acme"), &actor).unwrap();
    let scope = Scope::tenant(&t);
    let day = |n: i64| FindingKey::sighting(ObservableKind::Domain, "x", n);
    let mut later = finding("h1", "evil.example", day(1), 2, 50);
    later.evidence.detail = Some("later".into());
    let mut earlier = finding("h1", "evil.example", day(1), 3, 10);
    earlier.evidence.detail = Some("earlier".into());
    let mut raised = finding("h1", "evil.example", day(2), 1, 70);
    raised.severity = Severity::Critical;
    raised.title = "contact with evil.example (raised)".into();
    raised.campaign = Some("smooth-operator".into());
    store
        .add_suppression(
            Some(&t),
            &crate::NewSuppression {
                kind: None,
                source: "NOISY.example",
                endpoint: Some("h2"),
                reason: "known scanner",
                expires: None,
            },
            &actor,
        )
        .unwrap();
    let calls = vec![
        (later.clone(), None),
        (earlier.clone(), None),
        (finding("h2", "noisy.example", day(1), 1, 20), None),
        (finding("h3", "noisy.example", day(1), 1, 20), None),
        (raised.clone(), None),
    ];
    let outcome = store.record_findings(&t, &calls, FindingMode::Add).unwrap();
    assert_eq!((outcome.new_alerts, outcome.updated_alerts), (3, 0));
    let alerts = store.alerts(&scope, &AlertFilter::default()).unwrap();
    let find = |endpoint: &str, source: &str| {
        alerts
            .iter()
            .find(|a| a.endpoint == endpoint && a.source == source)
            .cloned()
            .unwrap_or_else(|| panic!("no alert for {endpoint} {source}: {alerts:?}"))
    };
    // Add: same key summed, its evidence the later one; another key beside.
    let evil = find("h1", "evil.example");
    assert_eq!(evil.count, 6);
    assert_eq!((evil.first_seen, evil.last_seen), (Time(10), Time(70)));
    // Add keeps the alert as its first finding made it.
    assert_eq!(evil.severity, Severity::High);
    assert_eq!(evil.title, "contact with evil.example");
    assert_eq!(find("h2", "noisy.example").status, AlertStatus::Suppressed);
    assert_eq!(find("h3", "noisy.example").status, AlertStatus::New);

    // A re-analysis: the later finding of an alert updates it.
    let outcome = store
        .record_findings(
            &t,
            &[(later.clone(), None), (raised.clone(), None)],
            FindingMode::Set,
        )
        .unwrap();
    assert_eq!((outcome.new_alerts, outcome.updated_alerts), (0, 1));
    let evil = store.alert(&scope, evil.id).unwrap().unwrap();
    assert_eq!(evil.severity, Severity::Critical);
    assert_eq!(evil.title, raised.title);
    assert_eq!(evil.campaign.as_deref(), Some("smooth-operator"));
    // Set: the day's finding is the one given now (count 2, not 5).
    assert_eq!(evil.count, 3);

    // New intel naming a dismissed alert brings it back, once.
    let noisy = find("h2", "noisy.example");
    let again = finding("h2", "noisy.example", day(3), 1, 90);
    let outcome = store
        .record_findings(
            &t,
            &[(again.clone(), None), (again.clone(), None)],
            FindingMode::NewIntel,
        )
        .unwrap();
    assert_eq!(outcome.resurfaced, 1);
    let noisy = store.alert(&scope, noisy.id).unwrap().unwrap();
    assert_eq!(noisy.status, AlertStatus::New);
    assert_eq!(noisy.count, 2);
    let history = store.alert_history(&scope, noisy.id).unwrap();
    let actions: Vec<AlertAction> = history.iter().map(|c| c.action).collect();
    assert!(
        actions.ends_with(&[AlertAction::Status, AlertAction::Resurfaced]),
        "{actions:?}"
    );
    // Recording the same again changes nothing.
    let outcome = store
        .record_findings(&t, &[(again, None)], FindingMode::NewIntel)
        .unwrap();
    assert_eq!(
        (
            outcome.new_alerts,
            outcome.updated_alerts,
            outcome.resurfaced
        ),
        (0, 0, 0)
    );
}

/// Pages of the alert queue, chained by their last key, are the whole
/// list in order, filters applied, and hold only the scope's alerts.
pub fn alert_pages(store: &mut dyn Store) {
    use turncoat_core::{AlertKind, Evidence, Finding, FindingKey, Severity};
    let a = store
        .add_tenant(&tenant_name("pg-a"), &Actor::User("test".into()))
        .unwrap();
    let b = store
        .add_tenant(&tenant_name("pg-b"), &Actor::User("test".into()))
        .unwrap();
    let finding = |i: i64, severity: Severity| {
        (
            Finding {
                endpoint: format!("host-{}", i % 3),
                kind: AlertKind::Ioc,
                source: format!("bad-{i}.example"),
                title: format!("contact with bad-{i}.example"),
                severity,
                campaign: None,
                key: FindingKey::pair(),
                first_seen: Time(1_000_000 * (i % 4)),
                // Pairs share a last seen: ties are broken by id.
                last_seen: Time(1_000_000 * (10 + i / 2)),
                count: 1,
                evidence: Evidence::default(),
            },
            None,
        )
    };
    let mine: Vec<_> = (0..11)
        .map(|i| finding(i, Severity::ALL[(i % 4) as usize + 1]))
        .collect();
    store.record_findings(&a, &mine, FindingMode::Add).unwrap();
    store
        .record_findings(&b, &[finding(99, Severity::Critical)], FindingMode::Add)
        .unwrap();
    let scope = Scope::tenant(&a);
    let filter = AlertFilter::default();
    let whole = store.alerts(&scope, &filter).unwrap();
    assert_eq!(whole.len(), 11);
    let page = |after, limit, min_severity, text| crate::AlertPage {
        order: crate::AlertOrder::Severity,
        filter: &filter,
        min_severity,
        since: None,
        text,
        assignee: None,
        after,
        limit,
    };
    let mut chained = Vec::new();
    let mut after = None;
    loop {
        let got = store
            .alerts_page(&scope, &page(after, 3, None, None))
            .unwrap();
        let Some(last) = got.last() else { break };
        after = Some((last.severity, last.first_seen, last.id));
        chained.extend(got);
    }
    let ids = |v: &[crate::Alert]| v.iter().map(|x| x.id).collect::<Vec<_>>();
    assert_eq!(
        ids(&chained),
        ids(&whole),
        "pages chain into the whole list, in order"
    );
    // Newest first: by last seen, latest first, then id.
    let mut newest = whole.clone();
    newest.sort_by(|x, y| y.last_seen.cmp(&x.last_seen).then(x.id.cmp(&y.id)));
    let mut chained = Vec::new();
    let mut after = None;
    loop {
        let got = store
            .alerts_page(
                &scope,
                &crate::AlertPage {
                    order: crate::AlertOrder::Newest,
                    ..page(after, 3, None, None)
                },
            )
            .unwrap();
        let Some(last) = got.last() else { break };
        after = Some((last.severity, last.last_seen, last.id));
        chained.extend(got);
    }
    assert_eq!(ids(&chained), ids(&newest), "newest first, chained");
    let high = store
        .alerts_page(&scope, &page(None, 100, Some(Severity::High), None))
        .unwrap();
    assert!(!high.is_empty() && high.iter().all(|x| x.severity >= Severity::High));
    let text = store
        .alerts_page(&scope, &page(None, 100, None, Some("BAD-7.")))
        .unwrap();
    assert_eq!(text.len(), 1);
    assert!(
        store
            .alerts_page(&scope, &page(None, 100, None, Some("bad-99")))
            .unwrap()
            .is_empty(),
        "another tenant's alert is never in the page"
    );
}

/// Users keep their role and granted tenants; tokens are found by the hash
/// of their secret only, carry their owner, and stop being live when
/// revoked or expired; all of it is audited.
pub fn users_and_tokens(store: &mut dyn Store) {
    let admin = Actor::User("root".into());
    let a = store.add_tenant(&tenant_name("acme"), &admin).unwrap();
    let b = store.add_tenant(&tenant_name("beta"), &admin).unwrap();
    let viewer = store
        .add_user(
            &NewUser {
                name: "carol",
                role: Role::Viewer,
                tenants: std::slice::from_ref(&a),
                password_hash: "$argon2id$stand-in",
            },
            &admin,
        )
        .unwrap();
    assert_eq!(viewer.tenants, vec![a.name().clone()]);
    let again = NewUser {
        name: "Carol",
        role: Role::Admin,
        tenants: &[],
        password_hash: "x",
    };
    assert!(matches!(
        store.add_user(&again, &admin),
        Err(StoreError::UserExists(_))
    ));
    store
        .add_user(
            &NewUser {
                name: "dave",
                role: Role::Analyst,
                tenants: &[b.clone(), a.clone()],
                password_hash: "h2",
            },
            &admin,
        )
        .unwrap();
    let users = store.users().unwrap();
    let names: Vec<(&str, Role, usize)> = users
        .iter()
        .map(|u| (u.name.as_str(), u.role, u.tenants.len()))
        .collect();
    assert_eq!(
        names,
        vec![("carol", Role::Viewer, 1), ("dave", Role::Analyst, 2)]
    );
    assert_eq!(
        store.password_hash("carol").unwrap().as_deref(),
        Some("$argon2id$stand-in")
    );
    assert_eq!(store.password_hash("nobody").unwrap(), None);

    let tenant_token = store
        .add_token(
            &NewToken {
                hash: [7; 32],
                owner: NewTokenOwner::Tenant(&b, TokenScope::Ingest),
                note: "sensor",
                expires: Some(Time(i64::MAX)),
            },
            &admin,
        )
        .unwrap();
    let personal = store
        .add_token(
            &NewToken {
                hash: [8; 32],
                owner: NewTokenOwner::User("carol"),
                note: "",
                expires: Some(Time(1_000)),
            },
            &admin,
        )
        .unwrap();
    assert!(matches!(
        store.add_token(
            &NewToken {
                hash: [9; 32],
                owner: NewTokenOwner::User("nobody"),
                note: "",
                expires: None,
            },
            &admin,
        ),
        Err(StoreError::NoSuchUser(_))
    ));
    let found = store.token_by_hash(&[7; 32]).unwrap().unwrap();
    assert_eq!(found, tenant_token);
    assert_eq!(
        found.owner,
        crate::TokenOwner::Tenant {
            tenant: b.name().clone(),
            scope: TokenScope::Ingest
        }
    );
    assert!(found.is_live(Time::now()));
    assert!(store.token_by_hash(&[1; 32]).unwrap().is_none());
    let p = store.token_by_hash(&[8; 32]).unwrap().unwrap();
    assert_eq!(p.id, personal.id);
    assert!(!p.is_live(Time(1_000)), "expired at its expiry time");

    let revoked = store.revoke_token(tenant_token.id, &admin).unwrap();
    assert!(revoked.revoked.is_some() && !revoked.is_live(Time::now()));
    let twice = store.revoke_token(tenant_token.id, &admin).unwrap();
    assert_eq!(twice.revoked, revoked.revoked);
    assert!(matches!(
        store.revoke_token(999, &admin),
        Err(StoreError::NoSuchToken(999))
    ));
    assert_eq!(store.tokens().unwrap().len(), 2);

    // The token's tenant sees its creation and revocation; the other does not.
    let log = store.audit_log(&Scope::tenant(&b), 100).unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"token.create") && actions.contains(&"token.revoke"));
    let log = store.audit_log(&Scope::tenant(&a), 100).unwrap();
    assert!(log.iter().all(|e| e.tenant.as_ref() != Some(b.name())));
}

/// Databases made on the PostgreSQL server `TURNCOAT_TEST_POSTGRES_URL`
/// names, for one test, dropped when it ends (passed or not). `None`, with
/// the reason printed, when the variable is unset.
pub struct TestDatabases {
    admin: postgres::Client,
    base: String,
    prefix: String,
    made: Vec<String>,
}

impl TestDatabases {
    pub fn new(test: &str) -> Option<TestDatabases> {
        let Ok(url) = std::env::var("TURNCOAT_TEST_POSTGRES_URL") else {
            eprintln!("skipped: TURNCOAT_TEST_POSTGRES_URL is not set");
            return None;
        };
        Some(TestDatabases::at(&url, test))
    }

    /// Databases made on the server of `url` (only connected to, to make
    /// the others), named after `test`.
    pub fn at(url: &str, test: &str) -> TestDatabases {
        let admin = postgres::Client::connect(url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
        let base = url.rsplit_once('/').map_or(url, |(b, _)| b).to_owned();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let prefix = format!("turncoat_{test}_{}_{nanos}", std::process::id());
        TestDatabases {
            admin,
            base,
            prefix,
            made: Vec::new(),
        }
    }

    /// A new empty database's URL.
    pub fn fresh(&mut self) -> String {
        let name = format!("{}_{}", self.prefix, self.made.len());
        self.admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        self.made.push(name.clone());
        format!("{}/{name}", self.base)
    }
}

impl Drop for TestDatabases {
    fn drop(&mut self) {
        for name in &self.made {
            let _ = self
                .admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}
