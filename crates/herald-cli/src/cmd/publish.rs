//! `herald publish`: validated, idempotent publishing of one event or a JSON Lines batch.

use std::io::{BufRead, IsTerminal, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

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
    let (origin, events) = if args.jsonl {
        let (origin, reader) = open_lines(&args.file)?;
        (origin, Events::Lines(reader))
    } else {
        let (origin, input) = read_input(&args.file)?;
        if input.iter().all(u8::is_ascii_whitespace) {
            bail!("{origin}: no event to publish (empty input)");
        }
        (origin, Events::One(input))
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
        // JSON Lines are read as they are published, never held whole: memory stays flat
        // however long the file (at most `in_flight` events are in memory at once).
        let lines = LineNumbers::default();
        let outgoing: Box<dyn Iterator<Item = Outgoing> + Send> = match events {
            Events::One(body) => Box::new(std::iter::once(Outgoing {
                subject: args.subject.clone(),
                payload: body.into(),
                options: opts.clone(),
            })),
            Events::Lines(reader) => {
                let (subject, opts, lines) = (args.subject.clone(), opts.clone(), lines.clone());
                Box::new(reader_events(reader, lines).map(move |body| Outgoing {
                    subject: subject.clone(),
                    payload: body.into(),
                    options: opts.clone(),
                }))
            }
        };
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
                        format!("{origin}:{}", lines.line_of(i))
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
        drop(results);
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        if let Some(e) = lines.read_error() {
            bail!("cannot read {origin}: {e}");
        }
        let total = published + duplicates + rejected + failed;
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

/// What `herald publish` sends: one document, or JSON Lines read as they go.
enum Events {
    One(Vec<u8>),
    Lines(Box<dyn BufRead + Send>),
}

fn open_lines(file: &Option<PathBuf>) -> anyhow::Result<(String, Box<dyn BufRead + Send>)> {
    match file {
        Some(p) if p.as_os_str() != "-" => {
            let f =
                std::fs::File::open(p).with_context(|| format!("cannot read {}", p.display()))?;
            Ok((
                p.display().to_string(),
                Box::new(std::io::BufReader::with_capacity(1 << 16, f)),
            ))
        }
        _ => Ok((
            "<stdin>".into(),
            Box::new(std::io::BufReader::new(std::io::stdin())),
        )),
    }
}

/// Maps the index of a published event back to its line in the input, remembering
/// only the blank lines skipped (so the map stays small for any input), and keeps a
/// read error for the end.
#[derive(Clone, Default)]
struct LineNumbers(Arc<Mutex<LineState>>);

#[derive(Default)]
struct LineState {
    /// 1-based numbers of the blank lines skipped, ascending.
    blank: Vec<usize>,
    error: Option<String>,
}

impl LineNumbers {
    /// The 1-based line of the `i`-th (0-based) event.
    fn line_of(&self, i: usize) -> usize {
        let st = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // The i-th event is on the smallest line n with n - (blank lines <= n) == i + 1.
        let mut line = i + 1;
        let mut skipped = 0;
        loop {
            let upto = st.blank.partition_point(|b| *b <= line);
            if upto == skipped {
                return line;
            }
            line += upto - skipped;
            skipped = upto;
        }
    }

    fn read_error(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .error
            .clone()
    }
}

/// The non-blank lines of `reader`, read on demand.
fn reader_events(
    mut reader: Box<dyn BufRead + Send>,
    lines: LineNumbers,
) -> impl Iterator<Item = Vec<u8>> + Send {
    let mut n = 0usize;
    std::iter::from_fn(move || loop {
        let mut buf = Vec::new();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => return None,
            Ok(_) => {
                n += 1;
                if buf.iter().all(u8::is_ascii_whitespace) {
                    lines
                        .0
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .blank
                        .push(n);
                    continue;
                }
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                return Some(buf);
            }
            Err(e) => {
                lines.0.lock().unwrap_or_else(|p| p.into_inner()).error = Some(e.to_string());
                return None;
            }
        }
    })
}
