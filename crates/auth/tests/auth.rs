//! Credentials against a real store: what each one lets its bearer reach.

use turncoat_auth::{
    AuthError, Principal, authenticate_password, authenticate_token, generate_password,
    hash_password, issue_token, verify_password,
};
use turncoat_core::{Actor, Role, TenantName, Time, TokenScope};
use turncoat_store::{NewToken, NewTokenOwner, NewUser, SqliteStore, Store};

fn members(p: &Principal) -> Vec<String> {
    p.scope
        .members()
        .iter()
        .map(|t| t.name().to_string())
        .collect()
}

#[test]
fn passwords_hash_with_a_fresh_salt_and_verify_only_themselves() {
    let password = generate_password();
    assert_eq!(password.len(), 24);
    assert_ne!(password, generate_password());
    let a = hash_password(&password).unwrap();
    let b = hash_password(&password).unwrap();
    assert!(a.starts_with("$argon2id$"));
    assert_ne!(a, b, "salted");
    assert!(verify_password(&password, &a) && verify_password(&password, &b));
    assert!(!verify_password("wrong", &a));
    assert!(!verify_password(&password, "not a phc string"));
}

#[test]
fn each_credential_reaches_its_tenants_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let admin = Actor::Cli;
    let acme = store
        .add_tenant(&TenantName::new("acme").unwrap(), &admin)
        .unwrap();
    let beta = store
        .add_tenant(&TenantName::new("beta").unwrap(), &admin)
        .unwrap();
    let hash = hash_password("correct horse").unwrap();
    for (name, role, tenants) in [
        ("root", Role::Admin, vec![]),
        ("ann", Role::Analyst, vec![]),
        ("bob", Role::Analyst, vec![beta.clone()]),
        ("cus", Role::Viewer, vec![acme.clone()]),
    ] {
        store
            .add_user(
                &NewUser {
                    name,
                    role,
                    tenants: &tenants,
                    password_hash: &hash,
                },
                &admin,
            )
            .unwrap();
    }
    let login = |name: &str| authenticate_password(&store, name, "correct horse").unwrap();
    assert_eq!(members(&login("root")), ["acme", "beta"]);
    assert_eq!(members(&login("ann")), ["acme", "beta"]);
    assert_eq!(members(&login("bob")), ["beta"]);
    let customer = login("cus");
    assert_eq!(members(&customer), ["acme"]);
    assert_eq!(customer.role, Role::Viewer);
    assert!(customer.scope.get("beta").is_none());
    assert!(matches!(
        authenticate_password(&store, "cus", "wrong"),
        Err(AuthError::Invalid)
    ));
    assert!(matches!(
        authenticate_password(&store, "nobody", "correct horse"),
        Err(AuthError::Invalid)
    ));

    // A sensor's token ingests into its tenant alone.
    let sensor = issue_token();
    assert!(sensor.secret.starts_with("tct_") && sensor.secret.len() == 68);
    let stored = store
        .add_token(
            &NewToken {
                hash: sensor.hash,
                owner: NewTokenOwner::Tenant(&beta, TokenScope::Ingest),
                note: "zeek sensor",
                expires: None,
            },
            &admin,
        )
        .unwrap();
    let p = authenticate_token(&store, &sensor.secret, Time::now()).unwrap();
    assert_eq!(members(&p), ["beta"]);
    assert_eq!(p.token_scope, Some(TokenScope::Ingest));
    assert_eq!(p.actor, Actor::Token(stored.id.to_string()));
    assert!(matches!(
        authenticate_token(&store, &issue_token().secret, Time::now()),
        Err(AuthError::Invalid)
    ));

    // A personal token acts as its user; it expires and can be revoked.
    let personal = issue_token();
    let expires = Time(Time::now().0 + 60_000_000);
    let stored = store
        .add_token(
            &NewToken {
                hash: personal.hash,
                owner: NewTokenOwner::User("cus"),
                note: "",
                expires: Some(expires),
            },
            &admin,
        )
        .unwrap();
    let p = authenticate_token(&store, &personal.secret, Time::now()).unwrap();
    assert_eq!(
        (members(&p), p.role),
        (vec!["acme".to_owned()], Role::Viewer)
    );
    assert!(matches!(
        authenticate_token(&store, &personal.secret, expires),
        Err(AuthError::Expired)
    ));
    store.revoke_token(stored.id, &admin).unwrap();
    assert!(matches!(
        authenticate_token(&store, &personal.secret, Time::now()),
        Err(AuthError::Revoked)
    ));
}
