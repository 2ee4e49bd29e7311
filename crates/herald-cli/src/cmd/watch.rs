//! `herald watch`: the platform's monitor. Watches heartbeats, consumer lag,
//! dead letters, validation failures and its own connection, and publishes
//! validated `AlertEvent`s on `alerts.*`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use herald_runtime::contracts::Contracts;
use herald_runtime::metrics;
use herald_runtime::{Publisher, PublisherConfig};
use herald_watch::watch::{spawn_heartbeats, EventSink, WatchOptions, Watcher};

use crate::{Global, Outcome};

/// Watch the platform and publish alerts on `alerts.*`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  herald watch --metrics-addr 127.0.0.1:9464\n  herald watch --expect billing-service --expect orchestrator\n\nThresholds come from the catalog's [monitoring] table. Alerts fire once per incident, repeat every repeat interval while firing and resolve when the condition clears. Runs until SIGINT/SIGTERM.\nExit codes: 0 stopped by a signal, 2 usage, I/O or connection error."
)]
pub struct Args {
    /// Serve Prometheus metrics (GET /metrics) on this address, e.g. 127.0.0.1:9464 (port 0: any free port).
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// A service expected to heartbeat from the start (repeatable): reported down if it never does.
    #[arg(long = "expect", value_name = "SERVICE")]
    expect: Vec<String>,
    /// How often to poll consumers and evaluate (default: the catalog's heartbeat_interval).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    poll_interval: Option<Duration>,
    /// How often a firing alert is repeated (default: the catalog's repeat_interval).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    repeat_interval: Option<Duration>,
    /// The service alerts and heartbeats are sent as.
    #[arg(long, default_value = "herald-watch")]
    service: String,
    /// Connection options (last: a flattened `next_help_heading` applies to what follows).
    #[command(flatten)]
    pub connect: super::nats::Connect,
}

/// Runs `herald watch` until a termination signal.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    let catalog = Arc::new(global.catalog()?);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(crate::output::Style::stderr().is_color())
        .try_init();
    let rt = super::nats::runtime()?;
    rt.block_on(async {
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
        metrics::set_connection_up(true);
        let contracts: Arc<dyn Contracts> = catalog.clone();
        let sink: Arc<dyn EventSink> = Arc::new(Publisher::new(
            client.clone(),
            contracts,
            PublisherConfig::new(&args.service),
        ));
        let _heartbeats = spawn_heartbeats(
            sink.clone(),
            &args.service,
            catalog.monitoring().heartbeat_interval,
        );
        let mut options = WatchOptions::from_catalog(&catalog);
        options.service = args.service.clone();
        options.expect_services = args.expect.clone();
        if let Some(d) = args.poll_interval {
            options.monitor.poll_interval = d;
        }
        if let Some(d) = args.repeat_interval {
            options.monitor.repeat_interval = d;
        }
        eprintln!(
            "watching {} consumers and heartbeats on herald.heartbeat.> (poll every {})",
            catalog.consumers().len(),
            humantime::format_duration(options.monitor.poll_interval)
        );
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        crate::shutdown::guard("herald watch", Duration::from_secs(5), move || {
            eprintln!("herald watch: stopping");
            let _ = stop_tx.send(());
        });
        Watcher::new(client.nats().clone(), catalog.clone(), sink, options)
            .run(async move {
                let _ = stop_rx.await;
            })
            .await?;
        client.drain().await;
        Ok(Outcome::Ok)
    })
}
