//! Credentials and who they make their bearer.
//!
//! Passwords are hashed with Argon2id (the `argon2` crate's defaults:
//! 19 MiB, two passes, as OWASP recommends) and kept as PHC strings. API
//! tokens are 256-bit random secrets shown once; the store keeps only
//! their SHA-256, which is enough for a secret that cannot be guessed and
//! lets a request be authenticated with one indexed lookup. A verified
//! credential becomes a [`Principal`]: the actor the audit log names, the
//! role, and the [`Scope`] of tenants it may touch, resolved by the store.

#![forbid(unsafe_code)]

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};
use turncoat_core::{Actor, Role, Time, TokenScope};
use turncoat_store::{Scope, Store, StoreError, TokenOwner, User};

/// What a token's secret starts with, so a leaked one is recognisable
/// (secret scanners match on such prefixes).
pub const TOKEN_PREFIX: &str = "tct_";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user, wrong password, unknown token: one answer for all,
    /// so a caller cannot tell which names exist.
    #[error("the credentials are not valid")]
    Invalid,
    #[error("the token was revoked")]
    Revoked,
    #[error("the token has expired")]
    Expired,
    #[error("hashing the password: {0}")]
    Hash(argon2::password_hash::Error),
    /// A user that cannot be added as asked.
    #[error("{0}")]
    BadUser(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A password as a PHC string (`$argon2id$v=19$...`), with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(AuthError::Hash)
}

/// Whether `password` is the one `phc` was made from; a malformed stored
/// hash verifies nothing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A password to hand out once: 24 characters of an alphabet without
/// look-alikes (about 134 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(24);
    while out.len() < 24 {
        let mut byte = [0u8; 1];
        OsRng.fill_bytes(&mut byte);
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % ALPHABET.len();
        if (byte[0] as usize) < limit {
            out.push(ALPHABET[byte[0] as usize % ALPHABET.len()] as char);
        }
    }
    out
}

/// A new token: the secret to show once, and the hash to store.
pub struct IssuedToken {
    pub secret: String,
    pub hash: [u8; 32],
}

pub fn issue_token() -> IssuedToken {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let secret = format!("{TOKEN_PREFIX}{hex}");
    IssuedToken {
        hash: token_hash(&secret),
        secret,
    }
}

/// What the store keeps of a token's secret.
pub fn token_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Who a verified credential makes its bearer.
#[derive(Clone, Debug)]
pub struct Principal {
    /// As the audit log names it: `user:NAME` or `token:ID`.
    pub actor: Actor,
    pub role: Role,
    /// The tenants it may touch.
    pub scope: Scope,
    /// For a tenant's token, what it may do there; `None` for a person
    /// or a personal token, which act with the role.
    pub token_scope: Option<TokenScope>,
}

impl Principal {
    /// The principal of a user: an admin sees every tenant, an analyst
    /// granted none sees every tenant, anyone else the tenants granted.
    pub fn of_user(store: &dyn Store, user: &User) -> Result<Principal, AuthError> {
        let all = store.all_tenants()?;
        let scope = if user.role.sees_all_tenants()
            || (user.role == Role::Analyst && user.tenants.is_empty())
        {
            all
        } else {
            let granted: Vec<_> = user
                .tenants
                .iter()
                .filter_map(|n| all.get(n.as_str()).cloned())
                .collect();
            Scope::tenants(&granted)
        };
        Ok(Principal {
            actor: Actor::User(user.name.clone()),
            role: user.role,
            scope,
            token_scope: None,
        })
    }
}

/// Checks a user's password; the same error whether the user or the
/// password is wrong.
pub fn authenticate_password(
    store: &dyn Store,
    name: &str,
    password: &str,
) -> Result<Principal, AuthError> {
    let (Some(user), Some(phc)) = (store.user(name)?, store.password_hash(name)?) else {
        // Spend the time a real check takes, so timing does not tell
        // which names exist.
        let _ = verify_password(password, &DUMMY_HASH);
        return Err(AuthError::Invalid);
    };
    if !verify_password(password, &phc) {
        return Err(AuthError::Invalid);
    }
    Principal::of_user(store, &user)
}

/// Issues a token for `owner`: stored as a hash; the secret is returned
/// to be shown once.
pub fn create_token(
    store: &mut dyn Store,
    owner: turncoat_store::NewTokenOwner<'_>,
    note: &str,
    expires: Option<Time>,
    actor: &Actor,
) -> Result<(turncoat_store::Token, String), AuthError> {
    let issued = issue_token();
    let token = store.add_token(
        &turncoat_store::NewToken {
            hash: issued.hash,
            owner,
            note,
            expires,
        },
        actor,
    )?;
    Ok((token, issued.secret))
}

/// The shortest password taken.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Adds a user: a one-word name, a viewer only with tenants granted, the
/// password given (at least [`MIN_PASSWORD_CHARS`]) or one generated and
/// returned, to be shown once.
pub fn add_user(
    store: &mut dyn Store,
    name: &str,
    role: Role,
    tenants: &[turncoat_store::Tenant],
    password: Option<&str>,
    actor: &Actor,
) -> Result<(User, Option<String>), AuthError> {
    if name.trim().is_empty() || name.contains(char::is_whitespace) {
        return Err(AuthError::BadUser("a user name is one word"));
    }
    if role == Role::Viewer && tenants.is_empty() {
        return Err(AuthError::BadUser(
            "a viewer sees only the tenants granted: grant at least one tenant",
        ));
    }
    let generated = password.is_none().then(generate_password);
    let password = password.or(generated.as_deref()).unwrap_or_default();
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::BadUser(
            "the password is shorter than 12 characters",
        ));
    }
    let hash = hash_password(password)?;
    let user = store.add_user(
        &turncoat_store::NewUser {
            name,
            role,
            tenants,
            password_hash: &hash,
        },
        actor,
    )?;
    Ok((user, generated))
}

/// What a console session's token is noted as: a session is a personal
/// token that lives for a working day, kept in an HttpOnly cookie.
pub const SESSION_NOTE: &str = "console session";

/// How long a console session lasts from sign-in.
pub const SESSION_LIFETIME_MICROS: i64 = 12 * 3_600 * 1_000_000;

/// A signed-in session: who, and what it must send back with every
/// change it asks for.
#[derive(Clone, Debug)]
pub struct Session {
    pub principal: Principal,
    /// The session token's id, to end it by.
    pub token_id: i64,
    /// The anti-forgery token for state-changing requests.
    pub csrf: String,
}

/// The anti-forgery token of a session secret: derived from it (so it
/// needs no storage), unguessable without it, and never the secret
/// itself, which stays in an HttpOnly cookie that pages cannot read.
pub fn csrf_token(session_secret: &str) -> String {
    let digest = Sha256::digest(format!("turncoat csrf {session_secret}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The stored token whose secret this is, if it may be used at `now`.
fn live_token(
    store: &dyn Store,
    secret: &str,
    now: Time,
) -> Result<turncoat_store::Token, AuthError> {
    let token = store
        .token_by_hash(&token_hash(secret))?
        .ok_or(AuthError::Invalid)?;
    if token.revoked.is_some() {
        return Err(AuthError::Revoked);
    }
    if !token.is_live(now) {
        return Err(AuthError::Expired);
    }
    Ok(token)
}

/// Checks a session cookie's secret at `now`: only console sessions
/// count, and the principal is the user (actions are the person's).
pub fn authenticate_session(
    store: &dyn Store,
    secret: &str,
    now: Time,
) -> Result<Session, AuthError> {
    let token = live_token(store, secret, now)?;
    let TokenOwner::User { user } = &token.owner else {
        return Err(AuthError::Invalid);
    };
    if token.note != SESSION_NOTE {
        return Err(AuthError::Invalid);
    }
    let user = store.user(user)?.ok_or(AuthError::Invalid)?;
    Ok(Session {
        principal: Principal::of_user(store, &user)?,
        token_id: token.id,
        csrf: csrf_token(secret),
    })
}

/// A hash to check a password against when the user does not exist.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password(&generate_password()).unwrap_or_default());

/// Checks an API token at `now`.
pub fn authenticate_token(
    store: &dyn Store,
    secret: &str,
    now: Time,
) -> Result<Principal, AuthError> {
    let token = live_token(store, secret, now)?;
    let actor = Actor::Token(token.id.to_string());
    match token.owner {
        TokenOwner::User { user } => {
            let user = store.user(&user)?.ok_or(AuthError::Invalid)?;
            Ok(Principal {
                actor,
                ..Principal::of_user(store, &user)?
            })
        }
        TokenOwner::Tenant { tenant, scope } => {
            let tenant = store.tenant(tenant.as_str())?.ok_or(AuthError::Invalid)?;
            Ok(Principal {
                actor,
                // A tenant's token reads as a viewer and, with `write`,
                // triages as an analyst, always in that tenant alone.
                role: if scope == TokenScope::Write {
                    Role::Analyst
                } else {
                    Role::Viewer
                },
                scope: Scope::tenant(&tenant),
                token_scope: Some(scope),
            })
        }
    }
}
