//! Shared plumbing for the commands that talk to NATS: their connection options
//! (`--server`, `--creds`, auth and TLS), connecting, and a tokio runtime for a sync `run`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use herald_runtime::{ConnectConfig, Contracts, HeraldClient};

use crate::Global;

/// How to reach and authenticate to NATS. Flattened into the commands that connect only,
/// so the offline commands' help stays short; `global` lets `herald streams ls --server URL`
/// and `herald streams --server URL ls` both work. Secrets come from files or the
/// environment, so they never show in a process listing.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Connection options")]
pub struct Connect {
    /// NATS server URL(s), comma-separated.
    #[arg(
        long,
        global = true,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        value_name = "URL"
    )]
    pub server: String,
    /// NATS credentials file (JWT + seed).
    #[arg(long, global = true, value_name = "FILE")]
    pub creds: Option<PathBuf>,
    /// Seconds to wait for the initial connection before giving up (exit 2).
    #[arg(long, global = true, default_value_t = 5.0, value_name = "SECS")]
    pub connect_timeout: f64,
    /// User name (with --password-file or $NATS_PASSWORD).
    #[arg(long, global = true, env = "NATS_USER", value_name = "NAME")]
    pub user: Option<String>,
    /// File holding the password for --user.
    #[arg(long, global = true, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Password for --user (prefer --password-file; never pass it as an argument).
    #[arg(
        long,
        global = true,
        env = "NATS_PASSWORD",
        hide = true,
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// File holding an authentication token.
    #[arg(long, global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Authentication token (prefer --token-file).
    #[arg(
        long,
        global = true,
        env = "NATS_TOKEN",
        hide = true,
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// File holding an NKey user seed (SU...), e.g. one written by `herald auth generate`.
    #[arg(long, global = true, env = "NATS_NKEY", value_name = "FILE")]
    pub nkey: Option<PathBuf>,
    /// CA certificate (PEM) to verify the server with; requires TLS.
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS (with --tls-key).
    #[arg(long, global = true, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS (with --tls-cert).
    #[arg(long, global = true, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl Default for Connect {
    fn default() -> Self {
        Connect {
            server: "nats://127.0.0.1:4222".into(),
            creds: None,
            connect_timeout: 5.0,
            user: None,
            password_file: None,
            password: None,
            token_file: None,
            token: None,
            nkey: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// The long names of the connection options (for `main`, which accepts them before the
/// subcommand name too, as older scripts write them).
pub fn connect_flags() -> Vec<String> {
    use clap::Args as _;
    Connect::augment_args(clap::Command::new("connect"))
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect()
}

/// A multi-threaded tokio runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Connection settings from the command's connection options (`--server`, `--creds`,
/// `--connect-timeout`, user/password, token, nkey and TLS), named after `service`.
/// Without `--server`, `$NATS_URL` or nats://127.0.0.1:4222 (as `ConnectConfig::from_env`).
pub fn config(global: &Global, service: &str) -> anyhow::Result<ConnectConfig> {
    let mut c = ConnectConfig::from_env().name(service);
    if let Some(url) = &global.server {
        c = c.urls(url.split(',').map(|s| s.trim().to_string()));
    }
    let a = &global.connect;
    if let Some(creds) = &a.creds {
        c = c.creds_file(creds.clone());
    }
    let secret =
        |path: &Option<std::path::PathBuf>, value: &Option<String>, what: &str| match (path, value)
        {
            (Some(p), _) => herald_access::auth::read_secret(p)
                .map(Some)
                .with_context(|| format!("cannot read {what} file {}", p.display())),
            (None, v) => Ok(v.clone()),
        };
    if let Some(user) = &a.user {
        let pw = secret(&a.password_file, &a.password, "password")?.unwrap_or_default();
        c = c.user_password(user.clone(), pw);
    }
    if let Some(token) = secret(&a.token_file, &a.token, "token")? {
        c = c.token(token);
    }
    if let Some(p) = &a.nkey {
        let seed = herald_access::auth::read_secret(p)
            .with_context(|| format!("cannot read nkey seed file {}", p.display()))?;
        c = c.nkey_seed(seed);
    }
    if let Some(ca) = &a.tls_ca {
        c = c.tls_ca(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&a.tls_cert, &a.tls_key) {
        c = c.tls_client_cert(cert.clone(), key.clone());
    }
    Ok(c.connect_timeout(Duration::from_secs_f64(a.connect_timeout.max(0.1))))
}

/// Connects as `service`; every failure is a connection error (exit 2).
pub async fn connect(global: &Global, service: &str) -> anyhow::Result<HeraldClient> {
    Ok(HeraldClient::connect(config(global, service)?).await?)
}

/// The catalog as the runtime's contract interface.
pub fn contracts(global: &Global) -> anyhow::Result<Arc<dyn Contracts>> {
    Ok(Arc::new(global.catalog()?))
}
