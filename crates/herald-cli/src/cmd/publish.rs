//! `herald publish`: validated, idempotent publishing of one event or a JSON Lines batch.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context};
use futures::StreamExt;
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
    /// Producing service (connection name and `ce-source`); must be one the catalog declares
    /// as a producer of the subject. Default: herald-cli, the operator's tool.
    #[arg(long, default_value = "herald-cli")]
    service: String,
    /// Publish as a --service the catalog does not declare as a producer of the subject.
    #[arg(long)]
    adhoc: bool,
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
    /// Connection options (last: a flattened `next_help_heading` applies to what follows).
    #[command(flatten)]
    pub connect: super::nats::Connect,
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
    if args.service != "herald-cli" && !args.adhoc {
        let producers = catalog
            .topic_for_subject(&args.subject)
            .map(|t| catalog.producers_of(t))
            .unwrap_or_default();
        if !producers.contains(&args.service.as_str()) {
            bail!(
                "{} is not a declared producer of {}; its producers: {} (or pass --adhoc)",
                args.service,
                args.subject,
                producers.join(", ")
            );
        }
    }
    let mut opts = Publish::build();
    if let Some(k) = &args.idempotency_key {
        opts = opts.message_id(k.clone());
    }
    if let Some(c) = &args.correlation_id {
        opts = opts.correlation_id(c.clone());
    }
    // A blank key or a CR/LF/NUL in a header value is a usage error (exit 2), refused
    // before reading input or connecting.
    opts.check().map_err(|e| anyhow::anyhow!("{e}"))?;
    let contracts = super::nats::contracts(global)?;
    let limit = catalog.settings().max_event_bytes;
    let path = args.file.clone().unwrap_or_else(|| PathBuf::from("-"));
    let (origin, reader) = crate::input::open(&path)?;
    // JSON Lines are read on a thread and handed over through a bounded channel: at most
    // `in_flight` events plus one line are in memory, whatever the input size.
    let (tx, rx) = tokio::sync::mpsc::channel::<Item>(args.in_flight.max(1));
    let reader_thread = if args.jsonl {
        let origin = origin.clone();
        std::thread::spawn(move || -> anyhow::Result<()> {
            let mut lines = crate::input::Lines::new(reader, limit);
            while let Some(line) = lines
                .next_line()
                .with_context(|| format!("cannot read {origin}"))?
            {
                let item = match line {
                    crate::input::Line::Event { number, bytes } => Item::Event(number, bytes),
                    crate::input::Line::TooLong { number, len } => Item::TooLong(number, len),
                };
                if tx.blocking_send(item).is_err() {
                    break;
                }
            }
            Ok(())
        })
    } else {
        let body = crate::input::read_capped(reader, limit, &origin)?;
        if body.iter().all(u8::is_ascii_whitespace) {
            bail!("{origin}: no event to publish (empty input)");
        }
        let item = if body.len() > limit {
            Item::TooLong(1, body.len() as u64)
        } else {
            Item::Event(1, body)
        };
        std::thread::spawn(move || -> anyhow::Result<()> {
            let _ = tx.blocking_send(item);
            Ok(())
        })
    };
    let rt = super::nats::runtime()?;
    let outcome = rt.block_on(async {
        let client = super::nats::connect(global, &args.service).await?;
        let publisher = Publisher::new(
            client,
            contracts,
            PublisherConfig::new(&args.service).in_flight(args.in_flight),
        );
        let bar = (args.jsonl && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {pos} events {per_sec}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            b
        });
        let (mut published, mut duplicates, mut rejected, mut failed) = (0usize, 0usize, 0, 0);
        let mut last_receipt = None;
        let err_style = Style::stderr();
        let subject = args.subject.clone();
        let results = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|i| (i, rx)) })
            .map(|item| {
                let p = publisher.clone();
                let (subject, opts) = (subject.clone(), opts.clone());
                async move {
                    match item {
                        Item::Event(line, body) => {
                            (line, p.publish_json(&subject, body, opts).await)
                        }
                        Item::TooLong(line, len) => (
                            line,
                            Err(PublishError::TooLarge {
                                size: usize::try_from(len).unwrap_or(usize::MAX),
                                limit,
                                limits: format!("catalog max_event_bytes {limit}"),
                            }),
                        ),
                    }
                }
            })
            .buffered(args.in_flight.max(1));
        let mut results = std::pin::pin!(results);
        let mut total = 0usize;
        while let Some((line, r)) = results.next().await {
            total += 1;
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
                        format!("{origin}:{line}")
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
        anyhow::Ok(if rejected + failed > 0 {
            Outcome::Failed
        } else {
            Outcome::Ok
        })
    });
    // A failure before the input was consumed (no connection) is reported at once; the
    // reader, perhaps blocked on a terminal, is left behind. Otherwise the reader has
    // finished, and its own error (unreadable input) wins.
    let outcome = outcome?;
    match reader_thread.join() {
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => Ok(outcome),
        Err(_) => bail!("the input reader failed"),
    }
}

/// One input line for the publish pipeline.
enum Item {
    /// Line number and the event's bytes.
    Event(usize, Vec<u8>),
    /// Line number and length of a line over the maximum event size.
    TooLong(usize, u64),
}
