//! `herald dlq`: inspect and replay the dead-letter queue.

use anyhow::bail;
use herald_runtime::{Dlq, DlqEntry, DlqFilter};
use serde_json::json;

use crate::output::{ago, print_json, render, terminal_safe, Format};
use crate::{Global, Outcome};

/// Inspect and replay dead letters.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: DlqCommand,
    /// Connection options (last: a flattened `next_help_heading` applies to what follows).
    #[command(flatten)]
    pub connect: super::nats::Connect,
}

#[derive(Debug, clap::Args)]
struct Filter {
    /// Original subject (wildcards allowed).
    #[arg(long)]
    subject: Option<String>,
    /// Reason (schema_invalid, decode_error, unknown_schema, handler_rejected, max_deliveries).
    #[arg(long)]
    reason: Option<String>,
    /// Consumer (durable name).
    #[arg(long)]
    consumer: Option<String>,
}

impl Filter {
    fn to_filter(&self) -> DlqFilter {
        DlqFilter {
            subject: self.subject.clone(),
            reason: self.reason.clone(),
            consumer: self.consumer.clone(),
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum DlqCommand {
    /// List dead letters, each with its whole error.
    Ls {
        #[command(flatten)]
        filter: Filter,
        /// Never wrap: each dead letter on one line, its error in full (wrapped to the
        /// terminal's width otherwise; a pipe always gets whole lines).
        #[arg(long)]
        wide: bool,
    },
    /// One dead letter: payload, headers, reason, error.
    Show {
        /// DLQ sequence.
        seq: u64,
    },
    /// Republish to the original subject with a new message id; remove only after the ack.
    Replay {
        /// One entry.
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        seq: Option<u64>,
        /// Every entry matching the filter.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        filter: Filter,
        /// Show what would be replayed (each original event counted once).
        #[arg(long)]
        dry_run: bool,
    },
    /// Drop one dead letter without replaying it.
    Rm {
        /// DLQ sequence.
        seq: u64,
    },
}

fn row(e: &DlqEntry) -> serde_json::Value {
    json!({"seq": e.seq, "subject": e.subject, "reason": e.reason, "error": e.error,
        "consumer": e.consumer, "stream": e.stream, "stream_seq": e.stream_seq,
        "deliveries": e.deliveries, "time": e.time})
}

/// Runs `herald dlq`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    super::nats::runtime()?.block_on(async {
        let client = super::nats::connect(global, "herald-cli").await?;
        let dlq = Dlq::new(client);
        match &args.command {
            DlqCommand::Ls { filter, wide } => {
                let entries = dlq.list(&filter.to_filter()).await?;
                match global.format {
                    Format::Json => {
                        print_json(&json!(entries.iter().map(row).collect::<Vec<_>>()))?
                    }
                    Format::Text | Format::Markdown => {
                        let rows: Vec<Vec<String>> = entries
                            .iter()
                            .map(|e| {
                                vec![
                                    e.seq.to_string(),
                                    terminal_safe(&e.subject, false),
                                    terminal_safe(&e.reason, false),
                                    terminal_safe(&e.consumer, false),
                                    e.deliveries.to_string(),
                                    ago(&e.time),
                                    terminal_safe(&e.error, false),
                                ]
                            })
                            .collect();
                        crate::out!(
                            "{}",
                            render(
                                &["SEQ", "SUBJECT", "REASON", "CONSUMER", "DELIV", "TIME", "ERROR"],
                                &rows,
                                !*wide
                            )
                        );
                        crate::outln!("{} dead letter(s)", entries.len());
                    }
                }
                Ok(Outcome::Ok)
            }
            DlqCommand::Show { seq } => {
                let e = dlq.show(*seq).await?;
                let payload = String::from_utf8_lossy(&e.payload).into_owned();
                match global.format {
                    Format::Json => {
                        let mut r = row(&e);
                        r["payload"] = json!(payload);
                        let mut hs = serde_json::Map::new();
                        for (k, v) in e.headers.iter() {
                            let k: &str = k.as_ref();
                            hs.insert(
                                k.to_string(),
                                json!(v.iter().map(|x| x.as_str()).collect::<Vec<_>>()),
                            );
                        }
                        r["headers"] = serde_json::Value::Object(hs);
                        print_json(&r)?
                    }
                    Format::Text | Format::Markdown => {
                        println!("seq:        {}", e.seq);
                        println!("subject:    {}", terminal_safe(&e.subject, false));
                        println!("reason:     {}", terminal_safe(&e.reason, false));
                        println!("error:      {}", terminal_safe(&e.error, false));
                        println!("consumer:   {}", terminal_safe(&e.consumer, false));
                        println!(
                            "original:   {} seq {} ({} deliveries)",
                            terminal_safe(&e.stream, false),
                            e.stream_seq,
                            e.deliveries
                        );
                        println!(
                            "time:       {} ({})",
                            terminal_safe(&e.time, false),
                            ago(&e.time)
                        );
                        println!("headers:");
                        let mut names: Vec<(String, String)> = e
                            .headers
                            .iter()
                            .flat_map(|(k, vs)| {
                                let k: &str = k.as_ref();
                                vs.iter()
                                    .map(move |v| (k.to_string(), v.as_str().to_string()))
                            })
                            .collect();
                        names.sort();
                        for (k, v) in names {
                            println!(
                                "  {}: {}",
                                terminal_safe(&k, false),
                                terminal_safe(&v, false)
                            );
                        }
                        println!("payload:\n{}", terminal_safe(&payload, true));
                    }
                }
                Ok(Outcome::Ok)
            }
            DlqCommand::Replay {
                seq,
                all,
                filter,
                dry_run,
            } => {
                // Warn first about events that are still invalid: replayed as they are,
                // they will come straight back to the DLQ.
                let contracts = super::nats::contracts(global)?;
                let pending = match (seq, all) {
                    (Some(s), _) => vec![dlq.show(*s).await?],
                    (None, true) => dlq.list(&filter.to_filter()).await?,
                    (None, false) => bail!("give --seq N or --all"),
                };
                for e in &pending {
                    if e.payload.is_empty() && e.header(herald_runtime::dlq::DLQ_PAYLOAD).is_some() {
                        continue;
                    }
                    if let Err(v) = contracts.validate(&e.subject, None, &e.payload) {
                        eprintln!(
                            "warning: dlq seq {} ({}) is still invalid and will be dead-lettered again: {}",
                            e.seq,
                            terminal_safe(&e.subject, false),
                            terminal_safe(&v.to_string(), false)
                        );
                    }
                }
                let report = match (seq, all) {
                    (Some(s), _) => herald_runtime::dlq::ReplayReport {
                        replayed: vec![dlq.replay(*s, *dry_run).await?],
                        ..Default::default()
                    },
                    _ => dlq.replay_report(&filter.to_filter(), *dry_run).await?,
                };
                for (seq, why) in &report.refused {
                    let _ = seq;
                    eprintln!("refused: {}", terminal_safe(why, false));
                }
                for seq in &report.already_replayed {
                    eprintln!("skipped: dlq seq {seq} was already replayed by another run");
                }
                let done = report.replayed;
                match global.format {
                    Format::Json => print_json(&json!(done
                        .iter()
                        .map(|r| json!({"dlq_seq": r.dlq_seq, "subject": r.subject,
                        "consumer": r.consumer, "new_seq": r.new_seq, "message_id": r.message_id}))
                        .collect::<Vec<_>>()))?,
                    Format::Text | Format::Markdown => {
                        for r in &done {
                            // A replay goes to the consumer that failed the event, alone.
                            let to = if r.consumer.is_empty() {
                                format!("{} (every consumer of it)", r.subject)
                            } else {
                                format!("{} only, as {}", r.consumer, r.subject)
                            };
                            if *dry_run {
                                println!(
                                    "would replay dlq seq {} to {to} (message id {})",
                                    r.dlq_seq, r.message_id
                                );
                            } else {
                                println!(
                                    "replayed dlq seq {} to {to}, stored at seq {} (message id {})",
                                    r.dlq_seq, r.new_seq, r.message_id
                                );
                            }
                        }
                        println!(
                            "{} {}",
                            done.len(),
                            if *dry_run {
                                "would be replayed"
                            } else {
                                "replayed"
                            }
                        );
                    }
                }
                Ok(if report.refused.is_empty() {
                    Outcome::Ok
                } else {
                    Outcome::Failed
                })
            }
            DlqCommand::Rm { seq } => {
                dlq.remove(*seq).await?;
                match global.format {
                    Format::Json => print_json(&json!({"removed": seq}))?,
                    Format::Text | Format::Markdown => println!("removed dlq seq {seq}"),
                }
                Ok(Outcome::Ok)
            }
        }
    })
}
