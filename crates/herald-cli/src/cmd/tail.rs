//! `herald tail`: print events on a subject as they arrive, marking invalid ones.

use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use herald_runtime::consumer::termination_signal;
use herald_watch::tail::{stored, tail, TailEvent, TailStart};

use crate::output::{terminal_safe, Style};
use crate::{Global, Outcome};

/// Follow a subject (an ephemeral consumer; nothing is acknowledged or removed).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  herald tail 'usage.metered.>' --last 20\n  herald tail orchestrator.step.failed --since 1h --headers\n  \
herald tail 'usage.metered.>' --no-follow    # what is stored, then exit\n\n\
Without --no-follow, tail follows until interrupted or --count events."
)]
pub struct Args {
    /// Subject or filter (wildcards allowed).
    subject: String,
    /// Start at the first stored event.
    #[arg(long, conflicts_with_all = ["last", "since"])]
    all: bool,
    /// Start about N events back.
    #[arg(long, value_name = "N", conflicts_with = "since")]
    last: Option<u64>,
    /// Start at events stored within this duration (e.g. 15m).
    #[arg(long, value_parser = humantime::parse_duration)]
    since: Option<Duration>,
    /// Print headers too.
    #[arg(long)]
    headers: bool,
    /// Exit after N events (default: run until interrupted). Waits for new events until
    /// there are N, unless --no-follow.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Print the events stored (from the first, or --last/--since) and exit; don't wait for new ones.
    #[arg(long)]
    no_follow: bool,
    /// Connection options (last: a flattened `next_help_heading` applies to what follows).
    #[command(flatten)]
    pub connect: super::nats::Connect,
}

/// Runs `herald tail`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    let contracts = super::nats::contracts(global)?;
    let start = match (args.all, args.last, args.since) {
        (true, _, _) => TailStart::All,
        (_, Some(n), _) => TailStart::Last(n),
        (_, _, Some(d)) => TailStart::Since(d),
        _ if args.no_follow => TailStart::All,
        _ => TailStart::New,
    };
    super::nats::runtime()?.block_on(async {
        let client = super::nats::connect(global, "herald-tail").await?;
        let mut events: std::pin::Pin<Box<dyn futures::Stream<Item = TailEvent> + Send>> =
            if args.no_follow {
                Box::pin(stored(&client, contracts, &args.subject, start).await?)
            } else {
                Box::pin(tail(&client, contracts, &args.subject, start).await?)
            };
        let style = Style::stdout();
        let mut seen = 0u64;
        let mut invalid = 0u64;
        let stop = termination_signal();
        let mut stop = std::pin::pin!(stop);
        loop {
            if args.count.is_some_and(|c| seen >= c) {
                break;
            }
            let ev = tokio::select! {
                e = events.next() => e,
                _ = &mut stop => None,
            };
            let Some(ev) = ev else { break };
            seen += 1;
            let mark = match &ev.validation {
                Ok(_) => style.green("ok"),
                Err(e) => {
                    invalid += 1;
                    style.red(&terminal_safe(
                        &format!("INVALID ({}): {e}", e.reason()),
                        false,
                    ))
                }
            };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "#{} {} {}",
                ev.seq,
                terminal_safe(&ev.subject, false),
                mark
            );
            if args.headers {
                let mut hs: Vec<(String, String)> = ev
                    .headers
                    .iter()
                    .flat_map(|(k, vs)| {
                        let k: &str = k.as_ref();
                        vs.iter()
                            .map(move |v| (k.to_string(), v.as_str().to_string()))
                    })
                    .collect();
                hs.sort();
                for (k, v) in hs {
                    let _ = writeln!(
                        out,
                        "  {}: {}",
                        terminal_safe(&k, false),
                        terminal_safe(&v, false)
                    );
                }
            }
            let _ = writeln!(
                out,
                "  {}",
                terminal_safe(&String::from_utf8_lossy(&ev.payload), true)
            );
            let _ = out.flush();
        }
        eprintln!("{seen} event(s), {invalid} invalid");
        Ok(if invalid > 0 {
            Outcome::Failed
        } else {
            Outcome::Ok
        })
    })
}
