//! `herald bench publish`: raw async-nats versus herald's publisher, same server, one run.

use std::sync::Arc;

use anyhow::Context;
use herald_bench::memory::MemoryBench;
use herald_bench::serve::ServeBench;
use herald_bench::suite::{Suite, Which};
use herald_bench::PublishBench;
use herald_runtime::Provisioner;
use herald_test_server::NatsServer;
use serde_json::json;

use crate::output::{print_json, table, Format};
use crate::{outln, Global, Outcome};

/// Benchmarks.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: BenchCommand,
    /// Connection options (last: a flattened `next_help_heading` applies to what follows).
    #[command(flatten)]
    pub connect: super::nats::Connect,
}

#[derive(Debug, clap::Subcommand)]
enum BenchCommand {
    /// Raw pipelined JetStream publish vs herald's publish (validation, headers, retries).
    #[command(
        after_help = "Without --server, herald starts its own nats-server (needs `nats-server` on PATH)."
    )]
    Publish {
        /// Events per side.
        #[arg(long, default_value_t = 50_000)]
        events: usize,
        /// Payload size in bytes.
        #[arg(long, default_value_t = 512)]
        size: usize,
        /// Acks in flight.
        #[arg(long, default_value_t = 256)]
        in_flight: usize,
        /// Alternating rounds.
        #[arg(long, default_value_t = 4)]
        rounds: usize,
        /// Instead, start a cluster of this many nats-server child processes (only 3) and
        /// report R1 against R3 streams from the same run.
        #[arg(long, value_name = "NODES", value_parser = clap::value_parser!(u8).range(3..=3))]
        cluster: Option<u8>,
    },
    /// Publishing over HTTP (`herald serve`, keep-alive HTTP/1.1 clients) vs the library publisher.
    #[command(
        after_help = "Without --server, herald starts its own nats-server (needs `nats-server` on PATH). \
herald serve runs in-process on a loopback port. Goal: serve >= 0.5x the library."
    )]
    Serve {
        /// Events per side.
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        /// Concurrent HTTP clients (one keep-alive connection each; default: as many as the library's acks in flight).
        #[arg(long, default_value_t = 256)]
        clients: usize,
        /// Library acks in flight.
        #[arg(long, default_value_t = 256)]
        in_flight: usize,
        /// Alternating rounds.
        #[arg(long, default_value_t = 4)]
        rounds: usize,
    },
    /// Every side-by-side benchmark (validate, publish, consume, latency) in one run
    /// against an embedded nats-server: raw, herald and their ratio per row.
    All {
        /// Events per side (validation: per event type; fixed-rate latency: at most 5,000).
        #[arg(long, default_value_t = 40_000)]
        events: usize,
        /// Interleaved raw/herald rounds; each ratio is reported as min/median/max over them.
        #[arg(long, default_value_t = 8)]
        rounds: usize,
    },
    /// Validation only: serde_json + jsonschema raw vs herald, per event type (no server).
    Validate {
        /// Validations per side and event type.
        #[arg(long, default_value_t = 100_000)]
        events: usize,
    },
    /// Raw pull consumer with ack vs herald's consumer, over the same stored events.
    Consume {
        /// Events per side.
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        /// Instead, N workers (each its own connection) on one durable sharing the events,
        /// for each N listed (`--workers` alone: 1,2,4).
        #[arg(
            long,
            value_name = "N,..",
            value_delimiter = ',',
            num_args = 0..,
            default_missing_value = "1,2,4"
        )]
        workers: Option<Vec<usize>>,
    },
    /// Peak memory: a consumer handling the same events under a small and a huge
    /// backlog, and `herald publish --jsonl` of a large file (each run as a child process).
    #[command(
        after_help = "Needs `nats-server` on PATH and about 1 GB of free disk in the temp directory for the defaults."
    )]
    Memory {
        /// Backlogs the consumer runs under.
        #[arg(long, value_delimiter = ',', default_value = "10000,1000000")]
        pending: Vec<usize>,
        /// Events the consumer handles in each run.
        #[arg(long, default_value_t = 10_000)]
        consume: usize,
        /// Lines of the file for `publish --jsonl` (0 skips it).
        #[arg(long, default_value_t = 1_000_000)]
        lines: usize,
    },
    /// The measured side of `bench memory`: consume EVENTS on a durable of its own, print the count.
    #[command(hide = true)]
    ConsumeRss {
        /// Events to handle.
        #[arg(long)]
        events: usize,
        /// Subject filter.
        #[arg(long)]
        subject: String,
    },
    /// The contracts at platform scale: `check` and validating one event on synthetic
    /// contracts of N schemas (3 versions each), and `herald validate`'s peak RSS.
    #[command(
        after_help = "No server needed. The peak RSS needs GNU time at /usr/bin/time (Debian package `time`)."
    )]
    Contracts {
        /// Schemas in all (the shipped ones included), one table row each.
        #[arg(long, value_delimiter = ',', default_value = "57,207,1007")]
        schemas: Vec<usize>,
        /// Keep the generated contracts in DIR/contracts-N (default: a temporary directory, removed).
        #[arg(long, value_name = "DIR")]
        keep: Option<std::path::PathBuf>,
    },
    /// End-to-end latency publish -> handler at a fixed rate and at saturation.
    Latency {
        /// Events per side (the fixed-rate run takes at most 5,000).
        #[arg(long, default_value_t = 5_000)]
        events: usize,
        /// The fixed rate, events/s.
        #[arg(long, default_value_t = 1_000.0)]
        rate: f64,
    },
}

/// Runs `herald bench`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    let catalog = global.catalog()?;
    let subject = "usage.metered.api_call";
    let template = herald_bench::suite::usage_template();
    if let BenchCommand::Serve {
        events,
        clients,
        in_flight,
        rounds,
    } = &args.command
    {
        let bench = ServeBench {
            events: *events,
            clients: *clients,
            in_flight: *in_flight,
            rounds: *rounds,
            subject: subject.into(),
            template,
        };
        return serve_bench(global, catalog, bench);
    }
    if let BenchCommand::Consume {
        events,
        workers: Some(workers),
    } = &args.command
    {
        return consume_workers(global, catalog, *events, workers, subject, template);
    }
    if let BenchCommand::Publish {
        events,
        size,
        in_flight,
        rounds,
        cluster: Some(nodes),
    } = &args.command
    {
        let bench = herald_bench::cluster::ReplicasBench {
            events: *events,
            size: *size,
            in_flight: *in_flight,
            rounds: *rounds,
            subject: subject.into(),
            template,
        };
        return publish_replicas(global, catalog, bench, usize::from(*nodes));
    }
    if let BenchCommand::Contracts { schemas, keep } = &args.command {
        return super::bench_contracts::run(global, schemas, keep.as_deref());
    }
    let (which, events, rate, rounds) = match &args.command {
        BenchCommand::All { events, rounds } => (Which::All, *events, 1_000.0, *rounds),
        BenchCommand::Validate { events } => (Which::Validate, *events, 1_000.0, 8),
        BenchCommand::Consume { events, .. } => (Which::Consume, *events, 1_000.0, 4),
        BenchCommand::Latency { events, rate } => (Which::Latency, *events, *rate, 1),
        BenchCommand::Publish { .. }
        | BenchCommand::Serve { .. }
        | BenchCommand::Contracts { .. } => (Which::Publish, 0, 0.0, 0),
        BenchCommand::Memory {
            pending,
            consume,
            lines,
        } => return memory(global, catalog, pending, *consume, *lines),
        BenchCommand::ConsumeRss { events, subject } => {
            let contracts: Arc<dyn herald_runtime::Contracts> = Arc::new(catalog);
            return super::nats::runtime()?.block_on(async {
                let client = super::nats::connect(global, "herald-bench").await?;
                let n =
                    herald_bench::memory::consume_rss(&client, contracts, subject, *events).await?;
                client.drain().await;
                println!("{n}");
                Ok(Outcome::Ok)
            });
        }
    };
    if which != Which::Publish {
        return suite(global, catalog, which, events, rate, rounds);
    }
    let contracts: Arc<dyn herald_runtime::Contracts> = Arc::new(catalog);
    match &args.command {
        BenchCommand::Publish {
            events,
            size,
            in_flight,
            rounds,
            ..
        } => super::nats::runtime()?.block_on(async {
            let mut embedded = None;
            let mut g = global.clone();
            if g.server.is_none() {
                let s = NatsServer::start()
                    .await
                    .context("cannot start an embedded nats-server")?;
                eprintln!("embedded nats-server at {}", s.url());
                g.server = Some(s.url());
                embedded = Some(s);
            }
            let client = super::nats::connect(&g, "herald-bench").await?;
            Provisioner::new(client.clone(), contracts.clone())
                .apply(false, false)
                .await?;
            let bench = PublishBench {
                events: *events,
                size: *size,
                in_flight: *in_flight,
                rounds: *rounds,
                subject: subject.into(),
                template,
            };
            let report = bench.run(&client, contracts).await?;
            match global.format {
                Format::Json => print_json(&json!({
                    "events": report.events, "payload_bytes": report.payload_bytes,
                    "raw_events_per_sec": report.raw_eps, "herald_events_per_sec": report.herald_eps,
                    "ratio": report.ratio(), "server": client.server_version_text(),
                }))?,
                Format::Text | Format::Markdown => println!("{report}\nserver: nats-server {}", client.server_version_text()),
            }
            drop(embedded);
            Ok(Outcome::Ok)
        }),
        _ => Ok(Outcome::Ok),
    }
}

/// `herald bench serve`: HTTP publishing vs the library, on `--server` or an embedded server.
fn serve_bench(
    global: &Global,
    catalog: herald_contracts::Catalog,
    bench: ServeBench,
) -> anyhow::Result<Outcome> {
    if bench.events == 0 || bench.clients == 0 {
        anyhow::bail!("--events and --clients must be at least 1");
    }
    super::nats::runtime()?.block_on(async {
        let mut embedded = None;
        let mut g = global.clone();
        if g.server.is_none() {
            let s = NatsServer::start()
                .await
                .context("cannot start an embedded nats-server")?;
            eprintln!("embedded nats-server at {}", s.url());
            g.server = Some(s.url());
            embedded = Some(s);
        }
        let url = g.server.clone().unwrap_or_default();
        let client = super::nats::connect(&g, "herald-bench").await?;
        let contracts: Arc<dyn herald_runtime::Contracts> = Arc::new(
            herald_contracts::Catalog::from_files(catalog.files().clone())?,
        );
        Provisioner::new(client.clone(), contracts)
            .apply(false, false)
            .await?;
        let report = bench.run(&url, &catalog).await?;
        match global.format {
            Format::Json => print_json(&json!({
                "events": report.events, "clients": report.clients,
                "library_events_per_sec": report.library_eps, "serve_events_per_sec": report.serve_eps,
                "ratio": report.ratio(), "server": client.server_version_text(),
            }))?,
            Format::Text | Format::Markdown => println!(
                "{report}\nserver: nats-server {}",
                client.server_version_text()
            ),
        }
        client.drain().await;
        drop(embedded);
        Ok(Outcome::Ok)
    })
}

/// `herald bench all|validate|consume|latency`: the suite, on an embedded server.
fn suite(
    global: &Global,
    catalog: herald_contracts::Catalog,
    which: Which,
    events: usize,
    rate: f64,
    rounds: usize,
) -> anyhow::Result<Outcome> {
    if events == 0 {
        anyhow::bail!("--events must be at least 1");
    }
    if rounds == 0 {
        anyhow::bail!("--rounds must be at least 1");
    }
    if !(rate > 0.0 && rate.is_finite()) {
        anyhow::bail!("--rate must be a positive number of events per second");
    }
    if global.server.is_some() && which != Which::Validate {
        anyhow::bail!(
            "this benchmark purges the usage stream, so it runs only on its own embedded \
             nats-server: drop --server"
        );
    }
    let catalog = Arc::new(catalog);
    let suite = Suite {
        events,
        which,
        latency_rate: rate,
        rounds,
    };
    let report = super::nats::runtime()?.block_on(async {
        if which == Which::Validate {
            return Ok::<_, anyhow::Error>(suite.run(catalog, None).await?);
        }
        let server = NatsServer::start()
            .await
            .context("cannot start an embedded nats-server")?;
        let mut g = global.clone();
        g.server = Some(server.url());
        let client = super::nats::connect(&g, "herald-bench").await?;
        let contracts: Arc<dyn herald_runtime::Contracts> = catalog.clone();
        Provisioner::new(client.clone(), contracts)
            .apply(false, false)
            .await?;
        let report = suite.run(catalog, Some(&client)).await?;
        client.drain().await;
        drop(server);
        Ok(report)
    })?;
    match global.format {
        Format::Json => print_json(&report)?,
        Format::Markdown => {
            outln!("| bench | case | unit | raw | herald | ratio (herald/raw) | rounds: min / median / max | goal |");
            outln!("|---|---|---|---:|---:|---:|---:|---|");
            for r in &report.rows {
                let fig = |x: f64| {
                    if r.unit == "ms" {
                        format!("{x:.3}")
                    } else {
                        format!("{x:.0}")
                    }
                };
                outln!(
                    "| {} | {} | {} | {} | {} | {:.2} | {} | {} |",
                    r.group,
                    r.name,
                    r.unit,
                    fig(r.raw),
                    fig(r.herald),
                    r.ratio,
                    spread(r),
                    r.goal.clone().unwrap_or_default()
                );
            }
            outln!();
            outln!(
                "events per side: {}; {} CPUs; nats-server {}",
                report.events,
                report.cpus,
                report.server
            );
        }
        Format::Text => {
            let rows: Vec<Vec<String>> = report
                .rows
                .iter()
                .map(|r| {
                    let fig = |x: f64| {
                        if r.unit == "ms" {
                            format!("{x:.3}")
                        } else {
                            format!("{x:.0}")
                        }
                    };
                    vec![
                        r.group.clone(),
                        r.name.clone(),
                        r.unit.clone(),
                        fig(r.raw),
                        fig(r.herald),
                        format!("{:.2}", r.ratio),
                        spread(r),
                        r.goal.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            outln!(
                "{}",
                table(
                    &[
                        "BENCH",
                        "CASE",
                        "UNIT",
                        "RAW",
                        "HERALD",
                        "RATIO",
                        "MIN/MEDIAN/MAX",
                        "GOAL"
                    ],
                    &rows
                )
            );
            outln!(
                "events per side: {}; {} CPUs; nats-server {}",
                report.events,
                report.cpus,
                if report.server.is_empty() {
                    "-"
                } else {
                    &report.server
                }
            );
        }
    }
    Ok(Outcome::Ok)
}

/// A row's per-round ratios as `min / median / max (n)`.
fn spread(r: &herald_bench::suite::Row) -> String {
    format!(
        "{:.2} / {:.2} / {:.2} ({})",
        r.spread.min, r.spread.median, r.spread.max, r.rounds
    )
}

/// `herald bench memory`: peak RSS of a consumer under backlog and of `publish --jsonl`.
fn memory(
    global: &Global,
    catalog: herald_contracts::Catalog,
    pending: &[usize],
    consume: usize,
    lines: usize,
) -> anyhow::Result<Outcome> {
    if global.server.is_some() {
        anyhow::bail!(
            "this benchmark purges the usage stream, so it runs only on its own embedded \
             nats-server: drop --server"
        );
    }
    if pending.is_empty() || pending.contains(&0) || consume == 0 {
        anyhow::bail!("--pending needs backlogs of at least 1 event and --consume at least 1");
    }
    let contracts: Arc<dyn herald_runtime::Contracts> = Arc::new(catalog);
    let subject = "usage.metered.api_call";
    let stream = contracts
        .route(subject)
        .map(|r| r.stream)
        .context("the catalog has no usage.metered.api_call subject")?;
    let exe = std::env::current_exe().context("cannot find the herald binary")?;
    let work = tempfile::tempdir().context("cannot create a temporary directory")?;
    let report = super::nats::runtime()?.block_on(async {
        let server = NatsServer::start()
            .await
            .context("cannot start an embedded nats-server")?;
        let mut g = global.clone();
        g.server = Some(server.url());
        let client = super::nats::connect(&g, "herald-bench").await?;
        Provisioner::new(client.clone(), contracts.clone())
            .apply(false, false)
            .await?;
        let mut global_args = vec!["--server".to_string(), server.url()];
        if let Some(dir) = &global.contracts {
            global_args.extend(["--contracts".to_string(), dir.display().to_string()]);
        }
        let bench = MemoryBench {
            exe,
            global_args,
            subject: subject.into(),
            template: herald_bench::suite::usage_template(),
            stream,
            pending: pending.to_vec(),
            consume,
            jsonl_lines: lines,
            work_dir: work.path().to_path_buf(),
        };
        let report = bench.run(&client).await?;
        client.drain().await;
        drop(server);
        Ok::<_, anyhow::Error>(report)
    })?;
    match global.format {
        Format::Json => print_json(&report)?,
        Format::Text | Format::Markdown => {
            outln!("| measurement | figure | goal |");
            outln!("|---|---:|---|");
            for c in &report.consumer {
                outln!(
                    "| consumer peak RSS, {} pending, {} handled | {:.1} MiB | |",
                    c.pending,
                    c.consumed,
                    c.max_rss_mib
                );
            }
            outln!(
                "| consumer growth, largest vs smallest backlog | {:.1} % | < 20 % |",
                report.consumer_growth_pct
            );
            if report.jsonl_lines > 0 {
                outln!(
                    "| `publish --jsonl` peak RSS, {} lines ({:.0} MiB file) | {:.1} MiB | < 64 MiB |",
                    report.jsonl_lines,
                    report.jsonl_file_mib,
                    report.jsonl_max_rss_mib
                );
            }
        }
    }
    Ok(Outcome::Ok)
}

/// `herald bench publish --cluster 3`: R1 against R3 on a cluster of child servers.
fn publish_replicas(
    global: &Global,
    catalog: herald_contracts::Catalog,
    bench: herald_bench::cluster::ReplicasBench,
    nodes: usize,
) -> anyhow::Result<Outcome> {
    if global.server.is_some() {
        anyhow::bail!("--cluster starts its own servers: drop --server");
    }
    if bench.events == 0 || bench.rounds == 0 || bench.in_flight == 0 {
        anyhow::bail!("--events, --rounds and --in-flight must be at least 1");
    }
    let report = super::nats::runtime()?.block_on(async {
        let cluster = herald_test_server::NatsCluster::start()
            .await
            .context("cannot start a nats-server cluster")?;
        let client = herald_runtime::HeraldClient::connect(
            herald_runtime::ConnectConfig::default()
                .name("herald-bench")
                .urls(cluster.urls()),
        )
        .await?;
        let report = bench.run(&client, &catalog, nodes).await?;
        let version = client.server_version_text().to_string();
        client.drain().await;
        drop(cluster);
        Ok::<_, anyhow::Error>((report, version))
    })?;
    let (report, version) = report;
    match global.format {
        Format::Json => print_json(&json!({
            "server": version, "report": report,
        }))?,
        Format::Text | Format::Markdown => {
            let rows: Vec<Vec<String>> = report
                .rows
                .iter()
                .map(|r| {
                    vec![
                        format!("R{}", r.replicas),
                        format!("{:.0}", r.raw_eps),
                        format!("{:.0}", r.herald_eps),
                        format!("{:.2}", r.ratio),
                    ]
                })
                .collect();
            outln!(
                "{}",
                table(
                    &["STREAM", "RAW events/s", "HERALD events/s", "HERALD/RAW"],
                    &rows
                )
            );
            outln!(
                "R3 / R1: raw {:.2}, herald {:.2} (herald per round: min {:.2}, median {:.2}, max {:.2})",
                report.r3_over_r1_raw,
                report.r3_over_r1_herald,
                report.spread.min,
                report.spread.median,
                report.spread.max
            );
            outln!(
                "{} nodes, one machine; events per side and stream: {}, payload {} bytes; nats-server {}",
                report.nodes,
                report.events,
                report.payload_bytes,
                version
            );
        }
    }
    Ok(Outcome::Ok)
}

/// `herald bench consume --workers N,..`: workers sharing one durable.
fn consume_workers(
    global: &Global,
    catalog: herald_contracts::Catalog,
    events: usize,
    workers: &[usize],
    subject: &str,
    template: serde_json::Value,
) -> anyhow::Result<Outcome> {
    if global.server.is_some() {
        anyhow::bail!(
            "this benchmark purges the usage stream, so it runs only on its own embedded \
             nats-server: drop --server"
        );
    }
    if events == 0 || workers.is_empty() || workers.contains(&0) {
        anyhow::bail!("--events and every --workers count must be at least 1");
    }
    let contracts: Arc<dyn herald_runtime::Contracts> = Arc::new(catalog);
    let bench = herald_bench::workers::WorkersBench {
        events,
        workers: workers.to_vec(),
        subject: subject.into(),
        template,
        concurrency: 16,
    };
    let report = super::nats::runtime()?.block_on(async {
        let server = NatsServer::start()
            .await
            .context("cannot start an embedded nats-server")?;
        let connect = herald_runtime::ConnectConfig::default()
            .name("herald-bench")
            .url(server.url());
        let client = herald_runtime::HeraldClient::connect(connect.clone()).await?;
        Provisioner::new(client.clone(), contracts.clone())
            .apply(false, false)
            .await?;
        let report = bench.run(&client, &connect, contracts).await?;
        client.drain().await;
        drop(server);
        Ok::<_, anyhow::Error>(report)
    })?;
    match global.format {
        Format::Json => print_json(&report)?,
        Format::Text | Format::Markdown => {
            let rows: Vec<Vec<String>> = report
                .rows
                .iter()
                .map(|r| {
                    vec![
                        r.workers.to_string(),
                        format!("{:.0}", r.events_per_sec),
                        format!("{:.2}", r.speedup),
                        r.per_worker
                            .iter()
                            .map(u64::to_string)
                            .collect::<Vec<_>>()
                            .join(" + "),
                        r.handled_twice.to_string(),
                    ]
                })
                .collect();
            outln!(
                "{}",
                table(
                    &[
                        "WORKERS",
                        "events/s",
                        "VS 1",
                        "HANDLED PER WORKER",
                        "HANDLED TWICE"
                    ],
                    &rows
                )
            );
            outln!("events per run: {}; {}", report.events, report.note);
        }
    }
    Ok(Outcome::Ok)
}
