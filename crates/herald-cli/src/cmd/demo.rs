//! `herald demo`: the platform's services exchanging events over JetStream, with
//! faults injected, checking its own books. The work is in `herald_tools::demo`;
//! this parses, shows progress and prints the summary.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use herald_tools::demo::{self, DemoConfig, DemoReport, Progress};
use tokio::sync::watch;

use crate::output::{print_json, table, Format, Style};
use crate::{outln, Global, Outcome};

/// `herald demo` options.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Without --server, herald starts its own nats-server (store under \
.herald/demo/, removed at the end unless --keep). Exit 0 when the books balance \
(lost: 0, processed twice: 0), 1 when they do not, 2 when the demo cannot run."
)]
pub struct Args {
    /// How long the producers run (e.g. 30s, 2m).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Events per second over all producers.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Serve Prometheus /metrics on this address during the run.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Keep .herald/demo/ (server store, audit log) after the run.
    #[arg(long)]
    keep: bool,
    /// Write audit-log's JSON Lines here (kept) instead of .herald/demo/audit-log.jsonl.
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Longest wait for consumers to settle after producing stops.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// Connection options (last: a flattened `next_help_heading` applies to what follows).
    #[command(flatten)]
    pub connect: super::nats::Connect,
}

/// Runs `herald demo`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        anyhow::bail!("--rate must be a positive number of events per second");
    }
    if args.duration.is_zero() {
        anyhow::bail!("--duration must be positive");
    }
    let catalog = Arc::new(global.catalog()?);
    let mut config = DemoConfig::new();
    config.duration = args.duration;
    config.rate = args.rate;
    config.keep = args.keep;
    config.audit_log = args.audit_log.clone();
    config.metrics_addr = args.metrics_addr;
    config.drain_timeout = args.drain_timeout;
    config.embedded = global.server.is_none();
    config.connect = super::nats::config(global, "herald-demo")?;

    let report = super::nats::runtime()?.block_on(async move {
        let (progress_tx, progress_rx) = watch::channel(Progress::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let shower = tokio::spawn(show_progress(progress_rx, args.duration));
        let run = demo::run(config, catalog, progress_tx, stop_rx);
        tokio::pin!(run);
        let result = loop {
            tokio::select! {
                r = &mut run => break Some(r),
                _ = herald_runtime::consumer::termination_signal() => {
                    if *stop_tx.borrow() {
                        break None;
                    }
                    let _ = stop_tx.send(true);
                    eprintln!("\nstopping: draining and checking the books (interrupt again to abort)");
                }
            }
        };
        shower.abort();
        let _ = shower.await;
        result
    });
    let report = match report {
        Some(r) => r?,
        None => anyhow::bail!("interrupted; the embedded nats-server was stopped"),
    };
    match global.format {
        Format::Json => print_json(&report)?,
        Format::Text | Format::Markdown => print_text(&report),
    }
    Ok(if report.books.balanced() {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}

/// A live line on a terminal, a plain line every two seconds otherwise (both on stderr).
async fn show_progress(mut rx: watch::Receiver<Progress>, duration: Duration) {
    let line = |p: &Progress| {
        format!(
            "{:<8} {:>5.1}s/{}s  published {} ({:.0}/s)  consumed {} ({:.0}/s)  lag {}  dlq {}",
            p.phase,
            p.elapsed.as_secs_f64(),
            duration.as_secs(),
            p.published,
            p.publish_rate,
            p.consumed,
            p.consume_rate,
            p.lag,
            p.dead_lettered
        )
    };
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        while rx.changed().await.is_ok() {
            let p = rx.borrow_and_update().clone();
            bar.set_message(line(&p));
            if p.phase == "done" {
                break;
            }
        }
        bar.finish_and_clear();
    } else {
        let mut last = std::time::Instant::now() - Duration::from_secs(10);
        let mut last_phase = "";
        while rx.changed().await.is_ok() {
            let p = rx.borrow_and_update().clone();
            if p.phase == "starting" {
                continue;
            }
            if last.elapsed() >= Duration::from_secs(2) || p.phase != last_phase {
                eprintln!("{}", line(&p));
                last = std::time::Instant::now();
                last_phase = p.phase;
            }
            if p.phase == "done" {
                break;
            }
        }
    }
}

fn ms(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into())
}

fn reasons(m: &std::collections::BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "0".into();
    }
    m.iter()
        .map(|(r, n)| format!("{n} {r}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_text(r: &DemoReport) {
    let style = Style::stdout();
    outln!(
        "{} {:.0}s at {:.0} events/s on nats-server {}{}",
        style.bold("herald demo:"),
        r.duration_s,
        r.rate,
        r.server_version,
        if r.embedded { " (embedded)" } else { "" }
    );
    outln!();
    outln!("{}", style.bold("Per subject"));
    let rows: Vec<Vec<String>> = r
        .subjects
        .iter()
        .map(|s| {
            vec![
                s.subject.clone(),
                s.published.to_string(),
                s.refused_invalid.to_string(),
                s.duplicates_dropped.to_string(),
                s.bare.to_string(),
                s.consumed.to_string(),
                s.validation_failures.to_string(),
                s.unsettled.to_string(),
                ms(s.p50_ms),
                ms(s.p99_ms),
                reasons(&s.dead_lettered),
            ]
        })
        .collect();
    outln!(
        "{}",
        table(
            &[
                "SUBJECT",
                "PUBLISHED",
                "REFUSED",
                "DUP-DROPPED",
                "BARE",
                "CONSUMED",
                "INVALID",
                "UNSETTLED",
                "P50 ms",
                "P99 ms",
                "DEAD-LETTERED"
            ],
            &rows
        )
    );
    outln!("{}", style.bold("Per service"));
    let rows: Vec<Vec<String>> = r
        .services
        .iter()
        .map(|s| {
            vec![
                s.service.clone(),
                s.published.to_string(),
                s.processed.to_string(),
                s.duplicates.to_string(),
                s.redelivered_duplicates.to_string(),
                s.retried.to_string(),
                format!("{}/{}", s.crashes, s.restarts),
                s.lag.to_string(),
                ms(s.p50_ms),
                ms(s.p99_ms),
                reasons(&s.dead_lettered),
            ]
        })
        .collect();
    outln!(
        "{}",
        table(
            &[
                "SERVICE",
                "PUBLISHED",
                "PROCESSED",
                "DUPLICATES",
                "REDELIVERED-DUP",
                "RETRIED",
                "CRASH/RESTART",
                "LAG",
                "P50 ms",
                "P99 ms",
                "DEAD-LETTERED"
            ],
            &rows
        )
    );
    let f = &r.faults;
    outln!("{}", style.bold("Faults injected"));
    outln!(
        "  invalid events refused at publish:              {}",
        f.invalid_refused_at_publish
    );
    outln!(
        "  bare JSON from a non-herald producer:           {} stored, {} invalid -> {} dead-lettered at consume",
        f.bare_json_published, f.bare_json_invalid, f.bare_json_dead_lettered
    );
    outln!(
        "  duplicate publishes dropped by the window:      {}",
        f.duplicate_publishes_dropped
    );
    outln!(
        "  bare resends acked as duplicates at consume:    {} resent, {} duplicate deliveries dropped",
        f.bare_json_resent, f.duplicates_dropped_at_consume
    );
    outln!(
        "  redeliveries handled as duplicates:             {}",
        f.redeliveries_handled_as_duplicates
    );
    outln!(
        "  poison events dead-lettered after max_deliver:  {} of {}",
        f.poison_dead_lettered,
        f.poison_events
    );
    outln!(
        "  consumer crashed and restarted:                 {} crash, {} restart",
        f.consumer_crashes,
        f.consumer_restarts
    );
    outln!(
        "  dead-letter queue:                              {}",
        reasons(&r.dlq)
    );
    outln!(
        "  alerts raised by herald watch:                  {}",
        r.watch_alerts
    );
    outln!();
    outln!(
        "audit log: {} lines for {} orchestrator.step.* and alerts.* events{}",
        r.audit_log.lines,
        r.audit_log.expected,
        if r.audit_log.kept {
            format!(" ({})", r.audit_log.path)
        } else {
            " (removed; --keep or --audit-log to keep it)".to_string()
        }
    );
    let b = &r.books;
    outln!(
        "books: {} (event, subscriber) pairs: {} processed once, {} dead-lettered with a reason{}",
        b.pairs,
        b.processed_once,
        b.dead_lettered,
        if r.drained {
            ""
        } else {
            "; consumers did not settle in time"
        }
    );
    let verdict = format!("lost: {}, processed twice: {}", b.lost, b.processed_twice);
    if b.balanced() {
        outln!("{}", style.green(&verdict));
    } else {
        outln!("{}", style.red(&verdict));
    }
}
