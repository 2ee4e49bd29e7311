//! `herald serve`: the contracts and the bus over HTTP (the work is in `herald-serve`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use herald_serve::{ServeConfig, TokenFile};

use crate::{Global, Outcome};

/// Publish over HTTP, serve the schemas and a read-only Schema Registry subset.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Endpoints: POST /v1/events/{subject} (JSON, CloudEvents binary or structured), \
POST /v1/events/{subject}:batch (JSON Lines, up to 1,000), GET /schemas/<Name>/<version>.json, \
the Confluent Schema Registry read-only subset (/subjects, /schemas/ids/{id}, /compatibility/..., /config), \
/healthz, /readyz, /metrics.\n\nWithout --tokens, herald serve listens on loopback only. \
Stops gracefully on SIGINT/SIGTERM: no new connections, requests in flight finish.\n\n\
Examples:\n  herald serve --listen 127.0.0.1:8080\n  herald serve --listen 0.0.0.0:8080 --tokens herald-auth/serve-tokens.toml"
)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,
    /// Token digests from `herald auth generate` (serve-tokens.toml); required off loopback.
    #[arg(long, value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// Longest a publish may retry before answering 503 (capped by the stream's duplicate window).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    publish_timeout: Duration,
    /// Largest batch body in bytes.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    max_batch_bytes: usize,
    /// Longest time a request's body may take to arrive (answers 408 after).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    body_timeout: Duration,
    /// Longest wait for requests in flight at shutdown.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// Connection options (last: a flattened `next_help_heading` applies to what follows).
    #[command(flatten)]
    pub connect: super::nats::Connect,
}

/// Runs `herald serve` until SIGINT/SIGTERM.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    let catalog = global.catalog()?;
    let tokens = match &args.tokens {
        Some(p) => Some(TokenFile::read(p)?),
        None => None,
    };
    let connect = super::nats::config(global, "herald-serve")?;
    let mut config = ServeConfig::new(args.listen, connect);
    config.tokens = tokens;
    config.publish_timeout = args.publish_timeout;
    config.max_batch_bytes = args.max_batch_bytes;
    config.body_timeout = args.body_timeout;
    config.drain_timeout = args.drain_timeout;
    super::nats::runtime()?.block_on(async {
        let running = herald_serve::start(catalog, config)
            .await
            .context("herald serve cannot start")?;
        let addr = running.local_addr();
        if running.has_tokens() {
            eprintln!("herald serve listening on http://{addr} (bearer tokens required to publish)");
        } else {
            eprintln!(
                "herald serve listening on http://{addr} (no tokens configured: loopback only, any local caller may publish every subject)"
            );
        }
        // The first signal drains; the process exits anyway shortly after the drain
        // timeout (NATS may be down, and a publish in flight waiting for it), and at
        // once on a second signal.
        crate::shutdown::guard(
            "herald serve",
            args.drain_timeout + Duration::from_secs(5),
            || {},
        );
        herald_runtime::consumer::termination_signal().await;
        eprintln!("herald serve: draining (no new connections; finishing requests in flight)");
        running.shutdown().await;
        eprintln!("herald serve: stopped");
        Ok(Outcome::Ok)
    })
}
