//! `herald demo`: the platform's services exchanging events over JetStream, with
//! faults injected, checking its own books. The work is in `herald_demo`;
//! this parses, shows progress and prints the summary.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use herald_demo::{DemoConfig, DemoReport, Progress};
use tokio::sync::watch;

use crate::output::{print_json, table, Format, Style};
use crate::{outln, Global, Outcome};

/// `herald demo` options.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Without --server, herald starts a nats-server child process of its own (store \
under .herald/demo/, removed at the end unless --keep); with --cluster 3, three of them as \
one cluster. The first Ctrl-C or SIGTERM stops producing, drains and prints the books \
within --drain-timeout; a second one exits at once. Exit 0 when the books balance \
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
    /// Run on a cluster of this many nats-server child processes (only 3), every
    /// stream replicated on all of them (R3), and kill the USAGE stream's leader mid-run.
    #[arg(long, value_name = "NODES", value_parser = clap::value_parser!(u8).range(3..=3))]
    cluster: Option<u8>,
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
    config.cluster = args.cluster.map(usize::from);
    if config.cluster.is_some() && global.server.is_some() {
        anyhow::bail!("--cluster starts its own servers: drop --server");
    }
    config.embedded = global.server.is_none();
    config.connect = super::nats::config(global, "herald-demo")?;

    let report = super::nats::runtime()?.block_on(async move {
        let (progress_tx, progress_rx) = watch::channel(Progress::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut shower = tokio::spawn(show_progress(progress_rx, args.duration));
        // Boxed so that dropping it (second signal) kills the child server(s) at once.
        let mut run = Box::pin(herald_demo::run(config, catalog, progress_tx, stop_rx));
        // Armed by the first signal: the whole stop must fit in the drain timeout.
        let limit = tokio::time::sleep(Duration::MAX);
        tokio::pin!(limit);
        let result = loop {
            tokio::select! {
                r = &mut run => break Ok(r),
                _ = &mut limit => break Err(crate::shutdown::DRAIN_TIMEOUT_EXIT),
                _ = herald_runtime::consumer::termination_signal() => {
                    if *stop_tx.borrow() {
                        break Err(crate::shutdown::SECOND_SIGNAL_EXIT);
                    }
                    let _ = stop_tx.send(true);
                    limit.as_mut().reset(tokio::time::Instant::now() + args.drain_timeout);
                    eprintln!("\nstopping: draining and checking the books (interrupt again to exit at once)");
                }
            }
        };
        if let Err(code) = result {
            // Dropping the run kills the child server(s) and removes the run directory.
            drop(run);
            eprintln!(
                "herald demo: {}: stopped the nats-server child process(es); no books",
                if code == crate::shutdown::SECOND_SIGNAL_EXIT {
                    "second signal".to_string()
                } else {
                    format!(
                        "not done {} after the signal",
                        humantime::format_duration(args.drain_timeout)
                    )
                }
            );
            std::process::exit(code);
        }
        // The progress line ends with the run's "done" line (the summary's totals).
        if tokio::time::timeout(Duration::from_secs(2), &mut shower).await.is_err() {
            shower.abort();
        }
        result
    });
    let report = report.unwrap_or_else(|code| std::process::exit(code))?;
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
            "{:<8} {:>5.1}s/{}s  events stored {} ({:.0}/s)  deliveries processed {} ({:.0}/s)  lag {}  dead letters {}",
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

fn reasons(m: &BTreeMap<String, u64>) -> String {
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
        "{} {:.0}s at {:.0} events/s on nats-server {}: {}",
        style.bold("herald demo:"),
        r.duration_s,
        r.rate,
        r.server_version,
        r.server
    );
    outln!();
    outln!("{}", style.bold("Per subject"));
    let mut notes = Vec::new();
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
                p99(&mut notes, &s.subject, s.p99_ms, &s.slow, s.p99_others_ms),
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
    print_notes(&mut notes);
    outln!("{}", style.bold("Per service"));
    let rows: Vec<Vec<String>> = r
        .services
        .iter()
        .map(|s| {
            let consumes = s.role != "producer";
            let c = |v: String| if consumes { v } else { "-".to_string() };
            vec![
                s.service.clone(),
                s.role.clone(),
                s.published.to_string(),
                s.refused.to_string(),
                s.publish_duplicates_dropped.to_string(),
                s.publish_failed.to_string(),
                c(s.processed.to_string()),
                c(s.duplicates.to_string()),
                c(s.redelivered_duplicates.to_string()),
                c(s.retried.to_string()),
                c(format!("{}/{}", s.crashes, s.restarts)),
                c(s.lag.to_string()),
                c(ms(s.p50_ms)),
                if consumes {
                    p99(&mut notes, &s.service, s.p99_ms, &s.slow, s.p99_others_ms)
                } else {
                    "-".to_string()
                },
                c(reasons(&s.dead_lettered)),
            ]
        })
        .collect();
    outln!(
        "{}",
        table(
            &[
                "SERVICE",
                "ROLE",
                "PUBLISHED",
                "REFUSED",
                "DUP-DROPPED",
                "FAILED",
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
    print_notes(&mut notes);
    let f = &r.faults;
    let t = &r.totals;
    outln!("{}", style.bold("Faults injected"));
    outln!(
        "  invalid events refused at publish:              {}",
        f.invalid_refused_at_publish
    );
    let repeats = if f.bare_json_invalid_resent > 0 {
        format!(
            " + {} for the {} invalid event(s) sent twice",
            f.bare_json_invalid_resent * f.bare_json_subscribers,
            f.bare_json_invalid_resent
        )
    } else {
        String::new()
    };
    outln!(
        "  bare JSON from a non-herald producer:           {} stored, {} invalid events -> {} dead letters \
(one per subscribing consumer: {} x {}{})",
        f.bare_json_published,
        f.bare_json_invalid,
        f.bare_json_dead_lettered,
        f.bare_json_invalid,
        f.bare_json_subscribers,
        repeats
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
        "  dead-letter queue:                              {} dead letters ({}): {} (event, consumer) pairs{}",
        t.dead_letters,
        reasons(&r.dlq),
        t.dead_letter_pairs,
        if t.dead_letter_repeats > 0 {
            format!(
                " + {} for second copies of bare events sent twice",
                t.dead_letter_repeats
            )
        } else {
            String::new()
        }
    );
    outln!(
        "  alerts raised by herald watch:                  {}",
        r.watch_alerts
    );
    if let Some(c) = &r.cluster {
        match (&c.killed, c.killed_at_s) {
            (Some(killed), Some(at)) => {
                outln!(
                    "  stream leader killed:                           {killed}, leader of {} (R{} on {} nodes), kill -9 at {at:.1}s",
                    c.stream, c.replicas, c.nodes
                );
                match (&c.new_leader, c.leader_moved_after_ms) {
                    (Some(l), Some(after)) => outln!(
                        "  leader moved:                                   {} -> {l}, {:.2}s after the kill",
                        killed,
                        after / 1e3
                    ),
                    _ => outln!(
                        "  leader moved:                                   no new leader seen"
                    ),
                }
                if let Some(back) = c.restarted_after_ms {
                    outln!(
                        "  killed server restarted:                        {killed}, healthy {:.2}s after the kill",
                        back / 1e3
                    );
                }
                outln!(
                    "  publishing to {} stalled:                    {}",
                    c.stream,
                    match c.publish_stall_ms {
                        Some(x) if c.stall_open => format!(
                            "at least {:.2}s (nothing stored between the kill and the end of producing)",
                            x / 1e3
                        ),
                        Some(x) => format!(
                            "{:.2}s (longest gap between two stored events from the kill on)",
                            x / 1e3
                        ),
                        None => "- (no event stored before the kill)".into(),
                    }
                );
            }
            _ => outln!(
                "  stream leader killed:                           no (the run stopped before half time)"
            ),
        }
    }
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
    outln!(
        "totals: {} events stored, {} deliveries processed (one per event per subscribing consumer), {} dead letters",
        t.events_stored,
        t.deliveries_processed,
        t.dead_letters
    );
    let b = &r.books;
    outln!(
        "books: {} (event, consumer) pairs = {} processed once + {} dead-lettered with a reason + {} lost + {} processed twice{}",
        b.pairs,
        b.processed_once,
        b.dead_lettered,
        b.lost,
        b.processed_twice,
        if r.drained {
            ""
        } else {
            "; consumers did not settle in time"
        }
    );
    if b.unexpected > 0 {
        outln!(
            "  ({} deliveries processed of events no producer saw acknowledged: not in the books)",
            b.unexpected
        );
    }
    let verdict = format!("lost: {}, processed twice: {}", b.lost, b.processed_twice);
    if b.balanced() {
        outln!("{}", style.green(&verdict));
        outln!(
            "Every one of the {} events reached each of its consumers exactly once or sits in the \
dead-letter queue with a reason: lost {}, processed twice {}.",
            t.events_stored,
            b.lost,
            b.processed_twice
        );
    } else {
        outln!("{}", style.red(&verdict));
        outln!(
            "The books do not balance: of {} events, {} (event, consumer) pairs were lost and {} processed twice.",
            t.events_stored,
            b.lost,
            b.processed_twice
        );
    }
}

/// The P99 cell: marked with a note number when slow deliveries explain it.
fn p99(
    notes: &mut Vec<String>,
    name: &str,
    p99: Option<f64>,
    slow: &BTreeMap<String, u64>,
    others: Option<f64>,
) -> String {
    let cell = ms(p99);
    if slow.is_empty() || p99.is_none_or(|x| x < 1_000.0) {
        return cell;
    }
    let why: Vec<String> = slow
        .iter()
        .map(|(cause, n)| {
            let what = match cause.as_str() {
                "redelivery" => "redeliveries (a retry after its backoff, or after ack_wait when a consumer crashed holding it)",
                "idle_fetch" => "waited while their consumer sat idle: no message arrived for its pull requests",
                "failover" => "waited out the killed leader's failover: no delivery came until their stream had a new leader",
                _ => "waited behind a backlog (the consumer was busy all along)",
            };
            format!("{n} {what}")
        })
        .collect();
    notes.push(format!(
        "{name}: {} deliveries took over 1s: {}; P99 of the others: {} ms",
        slow.values().sum::<u64>(),
        why.join("; "),
        ms(others)
    ));
    format!("{cell} [{}]", notes.len())
}

fn print_notes(notes: &mut Vec<String>) {
    if notes.is_empty() {
        return;
    }
    for (i, n) in notes.iter().enumerate() {
        outln!("  [{}] {n}", i + 1);
    }
    outln!();
    notes.clear();
}
