//! `turncoat user`: the people who sign in to the console and the API.

use clap::Subcommand;
use turncoat_core::{Actor, Role};

use super::{Context, tenant};
use crate::output::{Exit, OutputFormat, Table, print_json};

#[derive(Subcommand, Debug)]
pub(crate) enum UserCommand {
    /// Add a user. The password is read from standard input with
    /// --password-stdin, or generated and printed once.
    Add {
        name: String,
        /// admin (everything), analyst (triage), viewer (read-only).
        #[arg(long, value_parser = str::parse::<Role>)]
        role: Role,
        /// A tenant the user may see (repeat for several). An analyst
        /// granted none sees every tenant; an admin always does.
        #[arg(long = "tenant")]
        tenants: Vec<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users with their roles and tenants.
    List {
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

/// Shorter passwords are refused: the console is on a network.
pub(crate) fn run(command: UserCommand, ctx: &Context) -> anyhow::Result<Exit> {
    match command {
        UserCommand::Add {
            name,
            role,
            tenants,
            password_stdin,
        } => {
            let mut store = ctx.create()?;
            let granted = tenants
                .iter()
                .map(|t| tenant(&*store, t))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let password = super::secret_from_stdin(password_stdin, "password")?;
            let (user, generated) = turncoat_auth::add_user(
                &mut *store,
                &name,
                role,
                &granted,
                password.as_deref(),
                &Actor::Cli,
            )?;
            println!(
                "user {} ({}) added; tenants: {}",
                user.name,
                user.role,
                tenant_list(&user.tenants, user.role)
            );
            if let Some(password) = generated {
                // Shown once, on the last line, for scripts to take.
                println!("{password}");
            }
            Ok(Exit::Clean)
        }
        UserCommand::List { format } => {
            let store = ctx.read()?;
            let users = store.users()?;
            match format {
                OutputFormat::Json => print_json(&users)?,
                OutputFormat::Table => {
                    let mut t = Table::new(&["name", "role", "tenants", "created"]);
                    for u in &users {
                        t.row(vec![
                            u.name.clone(),
                            u.role.to_string(),
                            tenant_list(&u.tenants, u.role),
                            u.created.to_string(),
                        ]);
                    }
                    t.print()?;
                }
            }
            Ok(Exit::Clean)
        }
    }
}

/// The tenants a user sees, as a person reads them.
fn tenant_list(tenants: &[turncoat_core::TenantName], role: Role) -> String {
    if role.sees_all_tenants() || tenants.is_empty() {
        "(all)".to_owned()
    } else {
        let names: Vec<&str> = tenants.iter().map(|t| t.as_str()).collect();
        names.join(", ")
    }
}
