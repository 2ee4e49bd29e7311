//! `herald lag`: per consumer, how far behind it is.

use serde_json::json;

use crate::output::{ago, print_json, table, terminal_safe, Format};
use crate::{Global, Outcome};

/// Show consumer lag: pending, ack-pending, redelivered, waiting, last activity.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Short-lived consumers without a durable name (those of `herald tail` and `herald dlq`, \
gone when their client is) are left out unless --all; the JSON output marks them \"ephemeral\": true."
)]
pub struct Args {
    /// Only consumers of this stream.
    #[arg(long)]
    stream: Option<String>,
    /// Also show short-lived (ephemeral) consumers.
    #[arg(long)]
    all: bool,
    /// Connection options (last: a flattened `next_help_heading` applies to what follows).
    #[command(flatten)]
    pub connect: super::nats::Connect,
}

/// Runs `herald lag`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    super::nats::runtime()?.block_on(async {
        let client = super::nats::connect(global, "herald-cli").await?;
        let rows: Vec<_> = herald_runtime::lag::lag(&client, args.stream.as_deref())
            .await?
            .into_iter()
            .filter(|r| args.all || !r.ephemeral)
            .collect();
        match global.format {
            Format::Json => print_json(&json!(rows
                .iter()
                .map(|r| json!({"stream": r.stream, "consumer": r.consumer, "pending": r.pending,
                    "ack_pending": r.ack_pending, "redelivered": r.redelivered, "waiting": r.waiting,
                    "last_active": r.last_active, "ephemeral": r.ephemeral}))
                .collect::<Vec<_>>()))?,
            Format::Text | Format::Markdown => {
                let rows: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        let mut name = terminal_safe(&r.consumer, false);
                        if r.ephemeral {
                            name.push_str(" (ephemeral)");
                        }
                        vec![
                            r.stream.clone(),
                            name,
                            r.pending.to_string(),
                            r.ack_pending.to_string(),
                            r.redelivered.to_string(),
                            r.waiting.to_string(),
                            r.last_active.as_deref().map_or("-".into(), ago),
                        ]
                    })
                    .collect();
                crate::out!(
                    "{}",
                    table(
                        &[
                            "STREAM",
                            "CONSUMER",
                            "PENDING",
                            "ACK-PENDING",
                            "REDELIVERED",
                            "WAITING",
                            "LAST ACTIVE"
                        ],
                        &rows
                    )
                );
            }
        }
        Ok(Outcome::Ok)
    })
}
