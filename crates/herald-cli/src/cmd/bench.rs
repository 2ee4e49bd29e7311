//! `herald bench publish`: raw async-nats versus herald's publisher, same server, one run.

use std::sync::Arc;

use anyhow::Context;
use herald_runtime::bench::PublishBench;
use herald_runtime::{NatsServer, Provisioner};
use serde_json::json;

use crate::output::{print_json, Format};
use crate::{Global, Outcome};

/// Benchmarks.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, clap::Subcommand)]
enum BenchCommand {
    /// Raw pipelined JetStream publish vs herald's publish (validation, headers, retries).
    #[command(
        after_help = "Without --server, herald starts its own nats-server (needs `nats-server` on PATH)."
    )]
    Publish {
        /// Events per side.
        #[arg(long, default_value_t = 50_000)]
        events: usize,
        /// Payload size in bytes.
        #[arg(long, default_value_t = 512)]
        size: usize,
        /// Acks in flight.
        #[arg(long, default_value_t = 256)]
        in_flight: usize,
        /// Alternating rounds.
        #[arg(long, default_value_t = 4)]
        rounds: usize,
    },
}

/// Runs `herald bench`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    let catalog = global.catalog()?;
    let subject = "usage.metered.api_call";
    let template = json!({
        "event_id": "550e8400-e29b-41d4-a716-446655440010",
        "timestamp": "2024-01-15T10:30:00Z",
        "service_name": "model-gateway",
        "user_id": "123e4567-e89b-12d3-a456-426614174000",
        "tenant_id": "789e0123-e89b-12d3-a456-426614174000",
        "event_type": "api_call",
        "resource_type": "requests",
        "quantity": 1,
        "unit": "requests",
        "metadata": {"endpoint": "/v1/chat"},
        "cost": {"amount": 0.001, "currency": "EUR"}
    });
    let contracts: Arc<dyn herald_runtime::Contracts> = Arc::new(catalog);
    match &args.command {
        BenchCommand::Publish {
            events,
            size,
            in_flight,
            rounds,
        } => super::nats::runtime()?.block_on(async {
            let mut embedded = None;
            let mut g = global.clone();
            if g.server.is_none() {
                let s = NatsServer::start()
                    .await
                    .context("cannot start an embedded nats-server")?;
                eprintln!("embedded nats-server at {}", s.url());
                g.server = Some(s.url());
                embedded = Some(s);
            }
            let client = super::nats::connect(&g, "herald-bench").await?;
            Provisioner::new(client.clone(), contracts.clone())
                .apply(false, false)
                .await?;
            let bench = PublishBench {
                events: *events,
                size: *size,
                in_flight: *in_flight,
                rounds: *rounds,
                subject: subject.into(),
                template,
            };
            let report = bench.run(&client, contracts).await?;
            match global.format {
                Format::Json => print_json(&json!({
                    "events": report.events, "payload_bytes": report.payload_bytes,
                    "raw_events_per_sec": report.raw_eps, "herald_events_per_sec": report.herald_eps,
                    "ratio": report.ratio(), "server": client.server_version_text(),
                }))?,
                Format::Text | Format::Markdown => println!("{report}\nserver: nats-server {}", client.server_version_text()),
            }
            drop(embedded);
            Ok(Outcome::Ok)
        }),
    }
}
