//! `turncoat token`: API tokens for sensors, agents and scripts.

use clap::Subcommand;
use turncoat_core::{Actor, Time, TokenScope};
use turncoat_store::{NewTokenOwner, Token, TokenOwner};

use super::{Context, Lifetime, parse_lifetime, tenant};
use crate::output::{Exit, OutputFormat, Table, print_json};

#[derive(Subcommand, Debug)]
pub(crate) enum TokenCommand {
    /// Create a token: a tenant's (--tenant and --scope) or a user's own
    /// (--user, carrying that user's role and tenants). The secret is the
    /// last line printed, shown once; only its hash is stored.
    Create {
        #[arg(long, conflicts_with = "user", requires = "scope")]
        tenant: Option<String>,
        /// ingest (send telemetry), read, or write (read and triage).
        #[arg(long, value_parser = str::parse::<TokenScope>, requires = "tenant")]
        scope: Option<TokenScope>,
        #[arg(long, required_unless_present = "tenant")]
        user: Option<String>,
        /// How long it lives: a number and h, d or w (90d), or `never`.
        #[arg(long, default_value = "90d", value_parser = parse_lifetime)]
        expires: Lifetime,
        /// What it is for (a sensor's name, say).
        #[arg(long, default_value = "")]
        note: String,
    },
    /// List tokens (never their secrets).
    List {
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Revoke a token by id: it stops working at once.
    Revoke { id: i64 },
}

pub(crate) fn run(command: TokenCommand, ctx: &Context) -> anyhow::Result<Exit> {
    match command {
        TokenCommand::Create {
            tenant: tenant_name,
            scope,
            user,
            expires,
            note,
        } => {
            let mut store = ctx.open()?;
            let resolved = tenant_name
                .as_deref()
                .map(|n| tenant(&*store, n))
                .transpose()?;
            let owner = match (&resolved, scope, &user) {
                (Some(t), Some(scope), _) => NewTokenOwner::Tenant(t, scope),
                (None, _, Some(user)) => NewTokenOwner::User(user),
                _ => anyhow::bail!("give --tenant and --scope, or --user"),
            };
            let (token, secret) =
                turncoat_auth::create_token(&mut *store, owner, &note, expires.end(), &Actor::Cli)?;
            println!(
                "token {} for {}, expires {}",
                token.id,
                owner_text(&token.owner),
                expiry_text(&token)
            );
            println!("{secret}");
            Ok(Exit::Clean)
        }
        TokenCommand::List { format } => {
            let store = ctx.read()?;
            let tokens = store.tokens()?;
            match format {
                OutputFormat::Json => print_json(&tokens)?,
                OutputFormat::Table => {
                    let now = Time::now();
                    let mut t = Table::new(&["id", "for", "note", "created", "expires", "state"]);
                    for k in &tokens {
                        let state = if k.revoked.is_some() {
                            "revoked"
                        } else if k.is_live(now) {
                            "live"
                        } else {
                            "expired"
                        };
                        t.row(vec![
                            k.id.to_string(),
                            owner_text(&k.owner),
                            k.note.clone(),
                            k.created.to_string(),
                            expiry_text(k),
                            state.to_owned(),
                        ]);
                    }
                    t.print()?;
                }
            }
            Ok(Exit::Clean)
        }
        TokenCommand::Revoke { id } => {
            let mut store = ctx.open()?;
            let token = store.revoke_token(id, &Actor::Cli)?;
            println!("token {id} for {} revoked", owner_text(&token.owner));
            Ok(Exit::Clean)
        }
    }
}

fn owner_text(owner: &TokenOwner) -> String {
    match owner {
        TokenOwner::User { user } => format!("user {user}"),
        TokenOwner::Tenant { tenant, scope } => format!("tenant {tenant} ({scope})"),
    }
}

fn expiry_text(token: &Token) -> String {
    token
        .expires
        .map_or_else(|| "never".to_owned(), |t| t.to_string())
}
