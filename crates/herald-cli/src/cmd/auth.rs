//! `herald auth generate`: the nats-server authorization block derived from the catalog.

use std::path::PathBuf;

use herald_access::auth::{self, Role, SecretKind};
use serde_json::json;

use crate::output::{print_json, table, Format};
use crate::{Global, Outcome};

/// Least-privilege NATS users from the catalog.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: AuthCommand,
}

/// How users authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Secrets {
    /// NKey pairs: the server conf holds public keys only (recommended).
    Nkey,
    /// Random passwords, stored in the server conf (which is then a secret too).
    Password,
}

/// Shape of the generated server configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfFormat {
    /// A nats-server `authorization { users = [...] }` block (run with `-c`, or `include` it).
    ServerConf,
}

#[derive(Debug, clap::Subcommand)]
enum AuthCommand {
    /// Write auth.conf and one secret file per user (mode 0600) into --out; print a summary.
    #[command(
        after_help = "One user per catalog service (publish only what it produces, consume \
only its own durable consumers), herald-operator (dead-letter tools, lag) and herald-admin \
(herald streams apply). Secrets are never printed: connect with `--nkey DIR/<user>.nk` or \
`--user <user> --password-file DIR/<user>.password`.\n\nThe global --format (text|json) shapes \
this summary; --conf-format shapes the written configuration."
    )]
    Generate {
        /// Directory to write into (created if missing; existing files are replaced).
        #[arg(long, value_name = "DIR", default_value = "herald-auth")]
        out: PathBuf,
        /// Secret kind.
        #[arg(long, value_enum, default_value_t = Secrets::Nkey)]
        secrets: Secrets,
        /// Server configuration format.
        #[arg(long, value_enum, default_value_t = ConfFormat::ServerConf)]
        conf_format: ConfFormat,
    },
}

/// Runs `herald auth`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    let AuthCommand::Generate {
        out,
        secrets,
        conf_format: ConfFormat::ServerConf,
    } = &args.command;
    let catalog = global.catalog()?;
    let kind = match secrets {
        Secrets::Nkey => SecretKind::Nkey,
        Secrets::Password => SecretKind::Password,
    };
    let source = match &global.contracts {
        Some(dir) => format!("{}", dir.display()),
        None => "herald's embedded contracts".to_string(),
    };
    let g = auth::generate(&catalog, kind, out, &source)?;
    let tokens = herald_access::tokens::generate(&catalog, out)?;
    match global.format {
        Format::Json => print_json(&json!({
            "server_conf": g.server_conf,
            "users": g.users.iter().map(|u| json!({
                "user": u.spec.name,
                "role": format!("{:?}", u.spec.role).to_lowercase(),
                "secret_file": u.secret_file,
                "public_key": u.public_key,
                "publish": u.spec.permissions.publish,
                "subscribe": u.spec.permissions.subscribe,
            })).collect::<Vec<_>>(),
            "serve_tokens": tokens.tokens_file,
            "tokens": tokens.files.iter().map(|(s, f)| json!({"service": s, "token_file": f})).collect::<Vec<_>>(),
        }))?,
        Format::Text | Format::Markdown => {
            crate::outln!("wrote {} (mode 0600)", g.server_conf.display());
            let rows: Vec<Vec<String>> = g
                .users
                .iter()
                .map(|u| {
                    let role = match u.spec.role {
                        Role::Service => "service",
                        Role::Operator => "operator",
                        Role::Admin => "admin",
                    };
                    vec![
                        u.spec.name.clone(),
                        role.to_string(),
                        u.spec.permissions.publish.len().to_string(),
                        u.secret_file.display().to_string(),
                    ]
                })
                .collect();
            crate::out!(
                "{}",
                table(&["USER", "ROLE", "PUBLISHES", "SECRET FILE"], &rows)
            );
            crate::outln!(
                "start the server with: nats-server -js -c {}",
                g.server_conf.display()
            );
            crate::outln!(
                "wrote {} HTTP bearer tokens under {} (mode 0600); run: herald serve --tokens {}",
                tokens.files.len(),
                out.join("tokens").display(),
                tokens.tokens_file.display()
            );
        }
    }
    Ok(Outcome::Ok)
}
