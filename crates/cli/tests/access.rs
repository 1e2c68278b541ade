//! Users and tokens through the binary: what is printed once, what is
//! stored, and what a printed secret lets its bearer reach.

mod common;

use std::io::Write;

use common::Env;
use turncoat_core::{Role, Time, TokenScope};
use turncoat_store::SqliteStore;

/// Runs with `input` on standard input.
fn run_with_stdin(env: &Env, args: &[&str], input: &str) -> std::process::Output {
    let mut child = env.spawn(args);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn last_line(out: &str) -> &str {
    out.lines().last().unwrap_or_default()
}

#[test]
fn users_get_roles_and_tenants_and_passwords_are_shown_once() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    env.ok(&["tenant", "add", "beta"]);

    let out = run_with_stdin(
        &env,
        &[
            "user",
            "add",
            "carol",
            "--role",
            "viewer",
            "--tenant",
            "acme",
            "--password-stdin",
        ],
        "correct horse battery\n",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed, "user carol (viewer) added; tenants: acme\n");

    let generated = env.ok(&["user", "add", "root", "--role", "admin"]);
    let password = last_line(&generated);
    assert_eq!(password.len(), 24, "{generated}");

    // Refused: a viewer of nobody, a taken name (ignoring case), a short
    // password, an unknown role or tenant.
    for (args, stdin, says) in [
        (
            &["user", "add", "v", "--role", "viewer"][..],
            "",
            "grant at least one tenant",
        ),
        (
            &["user", "add", "CAROL", "--role", "analyst"][..],
            "",
            "exists",
        ),
        (
            &[
                "user",
                "add",
                "short",
                "--role",
                "analyst",
                "--password-stdin",
            ][..],
            "tiny\n",
            "shorter than 12",
        ),
        (
            &["user", "add", "x", "--role", "root"][..],
            "",
            "unknown role",
        ),
        (
            &["user", "add", "x", "--role", "analyst", "--tenant", "nope"][..],
            "",
            "no tenant named",
        ),
    ] {
        let out = run_with_stdin(&env, args, stdin);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }

    let users = env.json(&["user", "list", "--format", "json"]);
    let rows: Vec<(String, String, usize)> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap().to_owned(),
                u["role"].as_str().unwrap().to_owned(),
                u["tenants"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("carol".to_owned(), "viewer".to_owned(), 1),
            ("root".to_owned(), "admin".to_owned(), 0)
        ]
    );
    assert!(!users.to_string().contains("argon2"), "no hash is listed");

    // The passwords work, and only they.
    let store = SqliteStore::open_reader(&env.data()).unwrap();
    let carol =
        turncoat_auth::authenticate_password(&store, "carol", "correct horse battery").unwrap();
    assert_eq!(carol.role, Role::Viewer);
    assert_eq!(carol.scope.members().len(), 1);
    assert!(turncoat_auth::authenticate_password(&store, "root", password).is_ok());
    assert!(turncoat_auth::authenticate_password(&store, "root", "correct horse battery").is_err());

    let audit = env.ok(&["audit", "--format", "json"]);
    assert!(audit.contains("user.add"), "{audit}");
    assert!(
        !audit.contains("correct horse"),
        "no password in the audit log"
    );
}

#[test]
fn a_token_is_printed_once_and_reaches_its_tenant_until_revoked() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    env.ok(&["tenant", "add", "beta"]);
    env.ok(&[
        "user", "add", "ann", "--role", "analyst", "--tenant", "acme",
    ]);

    let out = env.ok(&[
        "token",
        "create",
        "--tenant",
        "beta",
        "--scope",
        "ingest",
        "--note",
        "zeek sensor",
    ]);
    let secret = last_line(&out).to_owned();
    assert!(secret.starts_with("tct_") && secret.len() == 68, "{out}");
    assert!(
        out.starts_with("token 1 for tenant beta (ingest), expires "),
        "{out}"
    );
    let personal = env.ok(&["token", "create", "--user", "ann", "--expires", "never"]);
    assert!(
        personal.starts_with("token 2 for user ann, expires never"),
        "{personal}"
    );

    let listed = env.ok(&["token", "list", "--format", "json"]);
    assert!(!listed.contains(&secret[4..]), "the secret is never listed");
    let tokens: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(tokens[0]["kind"], "tenant");
    assert_eq!(tokens[0]["tenant"], "beta");
    assert_eq!(tokens[0]["scope"], "ingest");
    assert_eq!(tokens[0]["note"], "zeek sensor");
    // 90 days by default.
    let at = |field: &str| Time::parse(tokens[0][field].as_str().unwrap()).unwrap().0;
    let lifetime = at("expires") - at("created");
    assert!(
        (lifetime - 90 * 86_400_000_000).abs() < 60_000_000,
        "{lifetime}"
    );
    assert_eq!(tokens[1]["kind"], "user");
    assert!(tokens[1]["expires"].is_null());

    {
        let store = SqliteStore::open_reader(&env.data()).unwrap();
        let p = turncoat_auth::authenticate_token(&store, &secret, Time::now()).unwrap();
        let names: Vec<String> = p
            .scope
            .members()
            .iter()
            .map(|t| t.name().to_string())
            .collect();
        assert_eq!(names, ["beta"]);
        assert_eq!(p.token_scope, Some(TokenScope::Ingest));
        let ann =
            turncoat_auth::authenticate_token(&store, last_line(&personal), Time::now()).unwrap();
        assert_eq!(ann.scope.members().len(), 1);
        assert_eq!(ann.role, Role::Analyst);
    }

    assert_eq!(
        env.ok(&["token", "revoke", "1"]),
        "token 1 for tenant beta (ingest) revoked\n"
    );
    let store = SqliteStore::open_reader(&env.data()).unwrap();
    assert!(matches!(
        turncoat_auth::authenticate_token(&store, &secret, Time::now()),
        Err(turncoat_auth::AuthError::Revoked)
    ));
    assert!(env.ok(&["token", "list"]).contains("revoked"));

    for args in [
        &["token", "create", "--tenant", "beta"][..],
        &["token", "create", "--tenant", "beta", "--scope", "admin"][..],
        &["token", "create", "--user", "nobody"][..],
        &["token", "create", "--user", "ann", "--expires", "soon"][..],
        &["token", "revoke", "99"][..],
    ] {
        assert_eq!(env.run(args).status.code(), Some(2), "{args:?}");
    }
    let audit = env.ok(&["audit", "--format", "json"]);
    assert!(audit.contains("token.create") && audit.contains("token.revoke"));
}
