//! `herald consume`: herald does the consuming and hands each valid event to a command or URL.

use std::time::Duration;

use anyhow::{bail, Context};
use herald_bridge::{ExternalHandler, HttpUrl};
use herald_runtime::consumer::watch_max_deliveries_of;
use herald_runtime::{Consumer, ConsumerConfig, DedupeStore, Shutdown};

use crate::output::terminal_safe;
use crate::{Global, Outcome};

/// Duplicate store choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DedupeKind {
    /// In memory, bounded (lost on restart).
    Memory,
    /// JetStream key-value bucket (survives restarts, shared by instances).
    Kv,
    /// No duplicate suppression.
    Off,
}

/// Consume a subject for a service, handing each valid event to a command or an HTTP endpoint.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The event is the command's standard input (or the POST body, with CloudEvents binary-mode\n\
ce-* headers). Command exit 0 / HTTP 2xx (empty or {\"status\":\"SUCCESS\"}): ack.\n\
Exit 75 (EX_TEMPFAIL) / HTTP 429, 5xx, timeout or {\"status\":\"RETRY\"}: retry with backoff. Any other exit /\n\
4xx or {\"status\":\"DROP\"}: dead-letter (handler_rejected, with stderr or the body). Dapr pub/sub apps work unchanged. Invalid events go to the DLQ without reaching the handler.\n\
Environment for commands: HERALD_SUBJECT HERALD_STREAM HERALD_STREAM_SEQ HERALD_DELIVERED HERALD_SCHEMA\n\
HERALD_CORRELATION_ID HERALD_MESSAGE_ID. Stops gracefully on SIGINT/SIGTERM.\n\
Each dead letter is reported on stderr as it happens: `dead-lettered: <subject> #<seq> (<reason>): <error>`.\n\
Only consumers the catalog declares (service, filter and name) are accepted; --adhoc allows another.\n\n\
Examples:\n  herald consume --service billing-service --subject 'usage.metered.>' --exec 'python3 bill.py'\n  \
herald consume --service audit-log --subject 'orchestrator.step.>' --http http://127.0.0.1:8080/events"
)]
pub struct Args {
    /// Consuming service (durable consumer `<service>--<name>`).
    #[arg(long)]
    service: String,
    /// Subject filter.
    #[arg(long)]
    subject: String,
    /// Subscription name (default: the catalog's consumer for this service and filter, else derived from the filter).
    #[arg(long)]
    name: Option<String>,
    /// Consume with a service, filter or name the catalog does not declare: creates a new
    /// durable consumer that starts from the stream's first event.
    #[arg(long)]
    adhoc: bool,
    /// Shell command receiving each event on stdin.
    #[arg(long, conflicts_with = "http", required_unless_present = "http")]
    exec: Option<String>,
    /// URL to POST each event to (http:// only).
    #[arg(long)]
    http: Option<String>,
    /// Handlers at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Duplicate store.
    #[arg(long, value_enum, default_value_t = DedupeKind::Memory)]
    dedupe: DedupeKind,
    /// How long the key-value duplicate store remembers an event.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    dedupe_ttl: Duration,
    /// Deliveries before dead-lettering (default: the catalog's, else 5).
    #[arg(long)]
    max_deliver: Option<i64>,
    /// Comma-separated retry delays, e.g. `1s,5s,30s` (default: the catalog's).
    #[arg(long)]
    backoff: Option<String>,
    /// How long a delivery may stay unacknowledged before JetStream redelivers it (default: the catalog's).
    #[arg(long, value_parser = humantime::parse_duration)]
    ack_wait: Option<Duration>,
    /// Longest a command or HTTP call may take before the event is retried.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// How long running handlers may finish after SIGINT/SIGTERM.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    shutdown_grace: Duration,
    /// Serve Prometheus metrics (GET /metrics) on this address, e.g. 127.0.0.1:9465.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Connection options (last: a flattened `next_help_heading` applies to what follows).
    #[command(flatten)]
    pub connect: super::nats::Connect,
}

fn derived_name(filter: &str) -> String {
    filter
        .replace('.', "_")
        .replace('*', "any")
        .replace('>', "all")
}

/// Why a consumer the catalog does not declare is refused, naming the declared ones that
/// come closest (the service's own, else the filter's, else all).
fn undeclared(defs: &[herald_contracts::ConsumerSpec], args: &Args) -> String {
    let list = |pick: &dyn Fn(&herald_contracts::ConsumerSpec) -> bool| {
        defs.iter()
            .filter(|d| pick(d))
            .map(|d| format!("{} ({})", d.durable_name(), d.filter))
            .collect::<Vec<_>>()
    };
    let wanted = match &args.name {
        Some(n) => format!("{}--{n} on `{}`", args.service, args.subject),
        None => format!("{} on `{}`", args.service, args.subject),
    };
    let (whose, names) = match list(&|d| d.service == args.service) {
        own if !own.is_empty() => (format!("{}'s declared consumers", args.service), own),
        _ => match list(&|d| d.filter == args.subject) {
            same if !same.is_empty() => (format!("declared consumers of `{}`", args.subject), same),
            _ => ("declared consumers".to_string(), list(&|_| true)),
        },
    };
    format!(
        "the catalog declares no consumer {wanted}; {whose}: {}. Use one of them, or --adhoc \
to create a new durable consumer (it starts from the stream's first event)",
        names.join(", ")
    )
}

/// Prints one line on stderr per dead letter as it happens, from the consumer's
/// `herald::dead_letter` events: subject, stream sequence, reason and the error's first
/// line (`herald dlq show` has it whole).
pub struct DeadLetterLines;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for DeadLetterLines {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Fields(std::collections::BTreeMap<&'static str, String>);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                self.0.insert(f.name(), format!("{v:?}"));
            }
            fn record_str(&mut self, f: &tracing::field::Field, v: &str) {
                self.0.insert(f.name(), v.to_string());
            }
        }
        let mut f = Fields::default();
        event.record(&mut f);
        let get = |k: &str| f.0.get(k).map(String::as_str).unwrap_or("?");
        let mut error = get("error").lines().next().unwrap_or("").to_string();
        if error.chars().count() > 160 {
            error = error.chars().take(159).collect::<String>() + "…";
        }
        eprintln!(
            "dead-lettered: {} #{} ({}): {}",
            terminal_safe(get("subject"), false),
            get("seq"),
            terminal_safe(get("reason"), false),
            terminal_safe(&error, false)
        );
    }
}

/// Runs `herald consume`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    let catalog = global.catalog()?;
    let handler = match (&args.exec, &args.http) {
        (Some(c), _) => ExternalHandler::Exec {
            command: c.clone(),
            timeout: args.timeout,
        },
        (None, Some(u)) => ExternalHandler::Http {
            url: u.parse::<HttpUrl>().map_err(|e| anyhow::anyhow!(e))?,
            timeout: args.timeout,
        },
        (None, None) => bail!("give --exec or --http"),
    };
    let defs = herald_runtime::Contracts::consumers(&catalog);
    let declared = defs.iter().find(|d| {
        d.service == args.service
            && d.filter == args.subject
            && args.name.as_ref().is_none_or(|n| *n == d.name)
    });
    if declared.is_none() && !args.adhoc {
        bail!("{}", undeclared(&defs, args));
    }
    let mut cfg = match declared {
        Some(d) => ConsumerConfig::from_def(d),
        None => ConsumerConfig::new(
            &args.service,
            args.name
                .clone()
                .unwrap_or_else(|| derived_name(&args.subject)),
            &args.subject,
        ),
    };
    cfg = cfg
        .concurrency(args.concurrency)
        .shutdown_grace(args.shutdown_grace);
    if let Some(w) = args.ack_wait {
        cfg = cfg.ack_wait(w);
    }
    if let Some(m) = args.max_deliver {
        cfg = cfg.max_deliver(m);
    }
    if let Some(b) = &args.backoff {
        let delays = b
            .split(',')
            .map(|s| humantime::parse_duration(s.trim()))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("bad --backoff {b:?}"))?;
        cfg = cfg.backoff(delays);
    }
    let contracts = super::nats::contracts(global)?;
    let heartbeat_interval = catalog.monitoring().heartbeat_interval;
    super::nats::runtime()?.block_on(async {
        let _metrics = match args.metrics_addr {
            Some(addr) => {
                let server = herald_watch::metrics_http::serve(addr)
                    .await
                    .with_context(|| format!("cannot serve metrics on {addr}"))?;
                eprintln!("metrics: http://{}/metrics", server.local_addr());
                Some(server)
            }
            None => None,
        };
        let client = super::nats::connect(global, &args.service).await?;
        // A herald service heartbeats, so `herald watch` knows it is alive.
        let heartbeat_sink: std::sync::Arc<dyn herald_watch::watch::EventSink> =
            std::sync::Arc::new(herald_runtime::Publisher::new(
                client.clone(),
                contracts.clone(),
                herald_runtime::PublisherConfig::new(&args.service),
            ));
        let _heartbeats = herald_watch::watch::spawn_heartbeats(
            heartbeat_sink,
            &args.service,
            heartbeat_interval,
        );
        let bucket = herald_runtime::dedupe::bucket_for(&cfg.durable);
        let store = match args.dedupe {
            DedupeKind::Memory => DedupeStore::default(),
            DedupeKind::Off => DedupeStore::Off,
            DedupeKind::Kv => DedupeStore::key_value(&client, &bucket, args.dedupe_ttl).await?,
        };
        cfg = cfg.dedupe(store);
        let consumer = Consumer::new(client.clone(), contracts, cfg)?;
        let shutdown = Shutdown::new();
        let watcher = tokio::spawn(watch_max_deliveries_of(
            client.clone(),
            consumer.stream_name().to_string(),
            Some(consumer.config().durable.clone()),
            shutdown.clone(),
        ));
        let s = shutdown.clone();
        // Handlers get their grace; the rest (a final flush and drain) a few seconds more.
        crate::shutdown::guard(
            "herald consume",
            args.shutdown_grace + Duration::from_secs(5),
            move || {
                eprintln!("herald consume: shutting down (finishing in-flight events)");
                s.trigger();
            },
        );
        eprintln!(
            "herald consume: {} on {} (stream {}), concurrency {}",
            consumer.config().durable,
            consumer.config().filter,
            consumer.stream_name(),
            consumer.config().concurrency
        );
        let stats = consumer
            .run(
                move |d| {
                    let handler = handler.clone();
                    async move { handler.handle(d).await }
                },
                shutdown.clone(),
            )
            .await?;
        shutdown.trigger();
        let _ = tokio::time::timeout(Duration::from_secs(2), watcher).await;
        client.drain().await;
        eprintln!(
            "herald consume: acked {}, duplicates {}, retried {}, dead-lettered {}, released {}",
            stats.acked, stats.duplicates, stats.retried, stats.dead_lettered, stats.released
        );
        Ok(Outcome::Ok)
    })
}
