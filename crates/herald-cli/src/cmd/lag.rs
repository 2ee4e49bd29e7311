//! `herald lag`: per consumer, how far behind it is.

use serde_json::json;

use crate::output::{print_json, Format};
use crate::{Global, Outcome};

/// Show consumer lag: pending, ack-pending, redelivered, waiting, last activity.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only consumers of this stream.
    #[arg(long)]
    stream: Option<String>,
}

/// Runs `herald lag`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    super::nats::runtime()?.block_on(async {
        let client = super::nats::connect(global, "herald-cli").await?;
        let rows = herald_runtime::lag::lag(&client, args.stream.as_deref()).await?;
        match global.format {
            Format::Json => print_json(&json!(rows
                .iter()
                .map(|r| json!({"stream": r.stream, "consumer": r.consumer, "pending": r.pending,
                    "ack_pending": r.ack_pending, "redelivered": r.redelivered, "waiting": r.waiting,
                    "last_active": r.last_active}))
                .collect::<Vec<_>>()))?,
            Format::Text | Format::Markdown => {
                println!(
                    "{:<14} {:<36} {:>9} {:>11} {:>11} {:>7}  LAST ACTIVE",
                    "STREAM", "CONSUMER", "PENDING", "ACK-PENDING", "REDELIVERED", "WAITING"
                );
                for r in rows {
                    println!(
                        "{:<14} {:<36} {:>9} {:>11} {:>11} {:>7}  {}",
                        r.stream,
                        r.consumer,
                        r.pending,
                        r.ack_pending,
                        r.redelivered,
                        r.waiting,
                        r.last_active.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        Ok(Outcome::Ok)
    })
}
