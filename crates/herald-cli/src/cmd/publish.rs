//! `herald publish`: validated, idempotent publishing of one event or a JSON Lines batch.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{bail, Context};
use futures::StreamExt;
use herald_runtime::publisher::Outgoing;
use herald_runtime::{Publish, PublishError, Publisher, PublisherConfig};
use serde_json::json;

use crate::output::{print_json, Format, Style};
use crate::{Global, Outcome};

/// Publish events to JetStream after validating them against the subject's contract.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  herald publish --subject usage.metered.api_call event.json\n  herald publish --subject usage.metered.api_call --jsonl events.jsonl\n  cat events.jsonl | herald publish --subject usage.metered.api_call --jsonl -\n\nInvalid events are reported with their line and skipped; the rest are still published.\nExit codes: 0 all published (duplicates included), 1 some event rejected or failed, 2 usage, I/O or connection error."
)]
pub struct Args {
    /// Subject to publish on (must be in the catalog).
    #[arg(long)]
    subject: String,
    /// Producing service (connection name and `ce-source`).
    #[arg(long, default_value = "herald-cli")]
    service: String,
    /// Idempotency key (`Nats-Msg-Id`) for a single event; default: the event's identity field.
    #[arg(long, conflicts_with = "jsonl")]
    idempotency_key: Option<String>,
    /// Correlation id to send (default: generated).
    #[arg(long)]
    correlation_id: Option<String>,
    /// The input holds one event per line (JSON Lines).
    #[arg(long)]
    jsonl: bool,
    /// Acks in flight.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// File to read; `-` or nothing reads standard input.
    file: Option<PathBuf>,
}

fn read_input(file: &Option<PathBuf>) -> anyhow::Result<(String, Vec<u8>)> {
    match file {
        None => read_stdin(),
        Some(p) if p.as_os_str() == "-" => read_stdin(),
        Some(p) => Ok((
            p.display().to_string(),
            std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
        )),
    }
}

fn read_stdin() -> anyhow::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .context("cannot read standard input")?;
    Ok(("<stdin>".into(), buf))
}

fn describe(e: &PublishError) -> String {
    match e {
        PublishError::Invalid {
            schema_id,
            violations,
            ..
        } => {
            let v: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
            format!("invalid ({schema_id}): {}", v.join("; "))
        }
        other => other.to_string(),
    }
}

/// Runs `herald publish`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    let catalog = global.catalog()?;
    if catalog.subject(&args.subject).is_none() {
        bail!(
            "unknown subject `{}`: it is not in the catalog (see `herald catalog`)",
            args.subject
        );
    }
    let contracts = super::nats::contracts(global)?;
    let (origin, input) = read_input(&args.file)?;
    let events: Vec<(usize, Vec<u8>)> = if args.jsonl {
        input
            .split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
            .map(|(i, l)| (i + 1, l.to_vec()))
            .collect()
    } else {
        if input.iter().all(u8::is_ascii_whitespace) {
            bail!("{origin}: no event to publish (empty input)");
        }
        vec![(1, input)]
    };
    let rt = super::nats::runtime()?;
    rt.block_on(async {
        let client = super::nats::connect(global, &args.service).await?;
        let publisher = Publisher::new(
            client,
            contracts,
            PublisherConfig::new(&args.service).in_flight(args.in_flight),
        );
        let mut opts = Publish::build();
        if let Some(k) = &args.idempotency_key {
            opts = opts.message_id(k.clone());
        }
        if let Some(c) = &args.correlation_id {
            opts = opts.correlation_id(c.clone());
        }
        let lines: Vec<usize> = events.iter().map(|(l, _)| *l).collect();
        let outgoing: Vec<Outgoing> = events
            .into_iter()
            .map(|(_, body)| Outgoing {
                subject: args.subject.clone(),
                payload: body.into(),
                options: opts.clone(),
            })
            .collect();
        let total = outgoing.len();
        let bar = (args.jsonl && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} events {per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
        let (mut published, mut duplicates, mut rejected, mut failed) = (0usize, 0usize, 0, 0);
        let mut last_receipt = None;
        let err_style = Style::stderr();
        let mut results = publisher.publish_all(outgoing);
        while let Some((i, r)) = results.next().await {
            if let Some(b) = &bar {
                b.inc(1);
            }
            match r {
                Ok(rec) => {
                    if rec.duplicate {
                        duplicates += 1;
                    } else {
                        published += 1;
                    }
                    last_receipt = Some(rec);
                }
                Err(e) => {
                    let where_ = if args.jsonl {
                        format!("{origin}:{}", lines[i])
                    } else {
                        origin.clone()
                    };
                    let label = if e.is_rejection() {
                        rejected += 1;
                        err_style.red("rejected")
                    } else {
                        failed += 1;
                        err_style.red("failed")
                    };
                    let msg = format!("{label}: {where_}: {}", describe(&e));
                    match &bar {
                        Some(b) => b.println(msg),
                        None => eprintln!("{msg}"),
                    }
                }
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        match global.format {
            Format::Json => print_json(&json!({
                "subject": args.subject,
                "published": published,
                "duplicates": duplicates,
                "rejected": rejected,
                "failed": failed,
                "last": last_receipt.as_ref().map(|r| json!({"stream": r.stream, "sequence": r.sequence, "duplicate": r.duplicate, "message_id": r.message_id, "correlation_id": r.correlation_id})),
            }))?,
            Format::Text | Format::Markdown => {
                if !args.jsonl {
                    if let Some(r) = &last_receipt {
                        println!(
                            "{} {} seq {} (message id {}, correlation id {})",
                            if r.duplicate { "duplicate of" } else { "published to" },
                            r.stream,
                            r.sequence,
                            r.message_id,
                            r.correlation_id
                        );
                    }
                } else {
                    println!(
                        "published {published}, duplicates {duplicates}, rejected {rejected}, failed {failed} (of {total})"
                    );
                }
            }
        }
        Ok(if rejected + failed > 0 {
            Outcome::Failed
        } else {
            Outcome::Ok
        })
    })
}
