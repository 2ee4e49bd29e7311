//! Shared plumbing for the commands that talk to NATS: connecting with the
//! global `--server` / `--creds` flags, and a tokio runtime for a sync `run`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use herald_runtime::{ConnectConfig, Contracts, HeraldClient};

use crate::Global;

/// A multi-threaded tokio runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Connection settings from the global flags (`--server`, `--creds`, `--connect-timeout`,
/// user/password, token, nkey and TLS flags), named after `service`.
pub fn config(global: &Global, service: &str) -> anyhow::Result<ConnectConfig> {
    let mut c = ConnectConfig::from_env().name(service);
    if let Some(url) = &global.server {
        c = c.urls(url.split(',').map(|s| s.trim().to_string()));
    }
    if let Some(creds) = &global.creds {
        c = c.creds_file(creds.clone());
    }
    let a = &global.auth;
    let secret =
        |path: &Option<std::path::PathBuf>, value: &Option<String>, what: &str| match (path, value)
        {
            (Some(p), _) => herald_tools::auth::read_secret(p)
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
        let seed = herald_tools::auth::read_secret(p)
            .with_context(|| format!("cannot read nkey seed file {}", p.display()))?;
        c = c.nkey_seed(seed);
    }
    if let Some(ca) = &a.tls_ca {
        c = c.tls_ca(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&a.tls_cert, &a.tls_key) {
        c = c.tls_client_cert(cert.clone(), key.clone());
    }
    Ok(c.connect_timeout(Duration::from_secs_f64(global.connect_timeout.max(0.1))))
}

/// Connects as `service`; every failure is a connection error (exit 2).
pub async fn connect(global: &Global, service: &str) -> anyhow::Result<HeraldClient> {
    Ok(HeraldClient::connect(config(global, service)?).await?)
}

/// The catalog as the runtime's contract interface.
pub fn contracts(global: &Global) -> anyhow::Result<Arc<dyn Contracts>> {
    Ok(Arc::new(global.catalog()?))
}
