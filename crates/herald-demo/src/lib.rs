//! `herald demo`: the platform's event backbone in one command.
//!
//! Why it exists: a newcomer should see the whole spec working — real services
//! exchanging real events over JetStream, with the failures the spec's
//! practices are about — and be able to trust it, because the demo checks its
//! own books: from what the producers saw stored and what each consuming
//! service actually did, plus the dead-letter queue, it computes how many
//! (event, subscriber) pairs were lost or processed twice.
//!
//! Layout: [`producers`] (ingestion, orchestrator workflows, model gateway,
//! realtime gateway, a legacy bare-JSON reporter; fault injection),
//! [`services`] (analytics, billing with quotas, usage-metering which crashes,
//! audit-log, notification, chat clients), [`ledger`] (the books) and this
//! module (server, streams, `herald watch` alongside, drain, report).

pub mod ledger;
pub mod producers;
pub mod services;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_contracts::Catalog;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;

use herald_runtime::connection::{ConnectConfig, ConnectError, HeraldClient};
use herald_runtime::consumer::Shutdown;
use herald_runtime::contracts::Contracts;
use herald_runtime::dlq::{Dlq, DlqFilter};
use herald_runtime::provision::Provisioner;
use herald_test_server::{NatsCluster, NatsServer, ServerError};
use herald_watch::watch::{
    spawn_heartbeats, EventSink, JetStreamSink, SinkFuture, WatchOptions, Watcher,
};

use ledger::{percentile_of, Delay, Ledger};

/// Slow deliveries (a second or more) by cause.
fn slow_by_cause(samples: &[(u64, Delay)]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for (_, d) in samples.iter().filter(|(_, d)| *d != Delay::None) {
        *m.entry(d.label().to_string()).or_default() += 1;
    }
    m
}
use services::{AuditLog, CrashSwitch, DemoConsumer, ServiceEnv};

/// Why the demo could not run (every kind is exit 2 for the CLI).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The child nats-server (or cluster) is missing or did not start.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A service could not connect.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// Streams could not be provisioned.
    #[error("provisioning streams: {0}")]
    Provision(String),
    /// A consumer could not start.
    #[error("consumer: {0}")]
    Consumer(String),
    /// The run directory or audit file.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The `/metrics` endpoint.
    #[error("metrics: {0}")]
    Metrics(String),
    /// Reading the dead-letter queue for the books.
    #[error("reading the dead-letter queue: {0}")]
    Dlq(String),
    /// The cluster settings.
    #[error("{0}")]
    Cluster(String),
}

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// How long the producers produce.
    pub duration: Duration,
    /// Events per second over all producers (approximate).
    pub rate: f64,
    /// Connection settings; with `embedded` the URL is replaced by the child server's.
    pub connect: ConnectConfig,
    /// Start a `nats-server -js` child process (store under `run_dir/nats`).
    pub embedded: bool,
    /// Instead, start this many child servers as one cluster (only 3 is supported),
    /// replicate every stream on all of them, and kill the `USAGE` leader mid-run.
    pub cluster: Option<usize>,
    /// `.herald/demo`: the server store and the default audit file.
    pub run_dir: PathBuf,
    /// Keep `run_dir` at the end.
    pub keep: bool,
    /// Where audit-log writes its JSON Lines (default `run_dir/audit-log.jsonl`;
    /// a path given here is never removed).
    pub audit_log: Option<PathBuf>,
    /// Serve `/metrics` here during the run.
    pub metrics_addr: Option<SocketAddr>,
    /// Longest wait, after producing stops, for every consumer to settle.
    pub drain_timeout: Duration,
}

impl DemoConfig {
    /// Defaults: 20 s at 200 events/s on an embedded server under `.herald/demo`.
    pub fn new() -> Self {
        DemoConfig {
            duration: Duration::from_secs(20),
            rate: 200.0,
            connect: ConnectConfig::default(),
            embedded: true,
            cluster: None,
            run_dir: PathBuf::from(".herald/demo"),
            keep: false,
            audit_log: None,
            metrics_addr: None,
            drain_timeout: Duration::from_secs(20),
        }
    }
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// A live view of the run for a progress line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// `starting`, `running`, `draining`, `done`.
    pub phase: &'static str,
    /// Since the producers started.
    pub elapsed: Duration,
    /// Events stored (distinct events, as in the summary's totals).
    pub published: u64,
    /// Deliveries processed: one per event per subscribing consumer that handled it.
    pub consumed: u64,
    /// Dead letters written (entries in the dead-letter queue).
    pub dead_lettered: u64,
    /// Pending plus unacknowledged over the demo's consumers (last poll).
    pub lag: u64,
    /// Stored per second over the last interval.
    pub publish_rate: f64,
    /// Applied per second over the last interval.
    pub consume_rate: f64,
}

/// One row per subject.
#[derive(Debug, Clone, Serialize)]
pub struct SubjectRow {
    /// Subject.
    pub subject: String,
    /// Distinct events stored.
    pub published: u64,
    /// Refused at publish by validation.
    pub refused_invalid: u64,
    /// Dropped by JetStream's duplicate window.
    pub duplicates_dropped: u64,
    /// Of `published`, bare JSON.
    pub bare: u64,
    /// Effects applied over all subscribers.
    pub consumed: u64,
    /// Dead-lettered, by reason.
    pub dead_lettered: BTreeMap<String, u64>,
    /// Refused at publish plus dead-lettered for a contract reason.
    pub validation_failures: u64,
    /// (event, subscriber) pairs neither processed nor dead-lettered at the end.
    pub unsettled: u64,
    /// End-to-end latency (event timestamp to handler), milliseconds.
    pub p50_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Deliveries slower than a second, by cause (`redelivery`, `idle_fetch`, `failover`, `backlog`).
    pub slow: BTreeMap<String, u64>,
    /// 99th percentile of the other deliveries.
    pub p99_others_ms: Option<f64>,
}

/// One row per service.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceRow {
    /// Service.
    pub service: String,
    /// `producer`, `consumer` or `both`.
    pub role: String,
    /// Its durable consumers.
    pub consumers: Vec<String>,
    /// Distinct events it published and saw stored (producers and follow-ups).
    pub published: u64,
    /// Events it tried to publish that validation refused.
    pub refused: u64,
    /// Publishes of its own dropped by JetStream's duplicate window.
    pub publish_duplicates_dropped: u64,
    /// Publishes that failed for good.
    pub publish_failed: u64,
    /// Effects applied.
    pub processed: u64,
    /// Acked by herald's duplicate store without calling the handler.
    pub duplicates: u64,
    /// Redeliveries of applied events, acked without re-applying.
    pub redelivered_duplicates: u64,
    /// NAKed for a later retry.
    pub retried: u64,
    /// Dead-lettered, by reason.
    pub dead_lettered: BTreeMap<String, u64>,
    /// Crashes and restarts.
    pub crashes: u64,
    /// Restarts.
    pub restarts: u64,
    /// Pending plus unacknowledged at the end.
    pub lag: u64,
    /// End-to-end latency, milliseconds.
    pub p50_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Deliveries slower than a second, by cause.
    pub slow: BTreeMap<String, u64>,
    /// 99th percentile of the other deliveries.
    pub p99_others_ms: Option<f64>,
}

/// The run's totals: the same quantities as the progress line's.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Totals {
    /// Distinct events stored (the sum of the subjects' `published`).
    pub events_stored: u64,
    /// Deliveries processed (the sum of the subjects' `consumed`).
    pub deliveries_processed: u64,
    /// Entries in the dead-letter queue from this run.
    pub dead_letters: u64,
    /// Distinct (event, consumer) pairs among them.
    pub dead_letter_pairs: u64,
    /// Entries for a second stored copy of an event (bare JSON sent twice).
    pub dead_letter_repeats: u64,
}

/// The cluster run: which leader was killed and what it cost.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    /// Servers in the cluster.
    pub nodes: usize,
    /// Replicas of every stream.
    pub replicas: usize,
    /// The stream whose leader was killed.
    pub stream: String,
    /// The server killed (`kill -9`), if the kill happened.
    pub killed: Option<String>,
    /// When, seconds after producing started.
    pub killed_at_s: Option<f64>,
    /// The stream's leader after the kill.
    pub new_leader: Option<String>,
    /// From the kill until another server led the stream, milliseconds.
    pub leader_moved_after_ms: Option<f64>,
    /// From the kill until the killed server was healthy again (restarted once the
    /// leader moved), milliseconds.
    pub restarted_after_ms: Option<f64>,
    /// The longest gap between two events stored into the stream from the kill on,
    /// milliseconds: how long publishing stalled.
    pub publish_stall_ms: Option<f64>,
    /// Nothing was stored into the stream between the kill and the end of producing:
    /// the stall lasted at least `publish_stall_ms`.
    pub stall_open: bool,
}

/// The books: every stored event against every consumer subscribed to its subject.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Books {
    /// (event, subscriber) pairs checked.
    pub pairs: u64,
    /// Processed exactly once.
    pub processed_once: u64,
    /// In the dead-letter queue with a reason (and not processed).
    pub dead_lettered: u64,
    /// Neither processed nor dead-lettered.
    pub lost: u64,
    /// Processed more than once (or processed and dead-lettered).
    pub processed_twice: u64,
    /// Invalid events that a handler processed (must be 0).
    pub invalid_processed: u64,
    /// Effects applied for events this run did not record as stored (e.g. left over
    /// on a shared server); not part of the books.
    pub unexpected: u64,
}

impl Books {
    /// Nothing lost, nothing processed twice.
    pub fn balanced(&self) -> bool {
        self.lost == 0 && self.processed_twice == 0 && self.invalid_processed == 0
    }
}

/// The audit-log file check.
#[derive(Debug, Clone, Serialize)]
pub struct AuditSummary {
    /// The file.
    pub path: String,
    /// Lines written.
    pub lines: u64,
    /// Valid `orchestrator.step.*` and `alerts.*` events stored (what it should hold).
    pub expected: u64,
    /// Whether the file is kept after the run.
    pub kept: bool,
}

/// Everything the demo reports at the end.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// nats-server version.
    pub server_version: String,
    /// Whether the server was the demo's own child process (or cluster of them).
    pub embedded: bool,
    /// What ran the run: the child process(es) or the server given.
    pub server: String,
    /// The cluster run (`--cluster`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterReport>,
    /// Totals, as in the progress line.
    pub totals: Totals,
    /// Producing time, seconds.
    pub duration_s: f64,
    /// Requested rate, events/s.
    pub rate: f64,
    /// Per subject.
    pub subjects: Vec<SubjectRow>,
    /// Per service.
    pub services: Vec<ServiceRow>,
    /// Injected faults and their outcomes.
    pub faults: ledger::FaultTally,
    /// Dead letters of this run by reason.
    pub dlq: BTreeMap<String, u64>,
    /// Alerts `herald watch` raised during the run.
    pub watch_alerts: u64,
    /// The books.
    pub books: Books,
    /// The audit file.
    pub audit_log: AuditSummary,
    /// Whether every consumer settled before the drain timeout.
    pub drained: bool,
}

/// Forwards `herald watch`'s alerts and books them as stored events.
struct BookedSink {
    inner: JetStreamSink,
    ledger: Ledger,
    count: Arc<std::sync::atomic::AtomicU64>,
}

impl EventSink for BookedSink {
    fn send<'a>(&'a self, subject: &'a str, event: Value, message_id: String) -> SinkFuture<'a> {
        Box::pin(async move {
            self.inner.send(subject, event, message_id.clone()).await?;
            if subject.starts_with("alerts.") && !self.ledger.is_stored(&message_id) {
                self.count
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.ledger
                    .stored_by("herald-watch", subject, &message_id, "ALERTS", 0);
            }
            Ok(())
        })
    }
}

/// Removes the run directory on drop unless kept (also on Ctrl-C and errors).
struct RunDirGuard {
    dir: PathBuf,
    keep: bool,
}

impl Drop for RunDirGuard {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
            // `.herald/` too when the demo was all it held.
            if let Some(parent) = self.dir.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

/// Runs the demo: server, streams, services, `herald watch`, producers for
/// `config.duration` (or until `stop` turns true), drain, books. Progress goes to
/// `progress`. Dropping the future stops everything and kills the child server.
pub async fn run(
    config: DemoConfig,
    catalog: Arc<Catalog>,
    progress: watch::Sender<Progress>,
    stop: watch::Receiver<bool>,
) -> Result<DemoReport, DemoError> {
    let catalog = match config.cluster {
        Some(n) => Arc::new(replicated(&catalog, n)?),
        None => catalog,
    };
    let contracts: Arc<dyn Contracts> = catalog.clone();
    let _ = progress.send(Progress {
        phase: "starting",
        ..Default::default()
    });
    // The field order matters: the server is dropped (killed) before its directory goes.
    let mut guard = None;
    let mut server = None;
    let mut cluster = None;
    let mut connect = config.connect.clone();
    let mut server_text = String::from("the server given");
    if let Some(n) = config.cluster {
        if n != 3 {
            return Err(DemoError::Cluster(format!(
                "--cluster {n}: only a three-node cluster is supported"
            )));
        }
        herald_test_server::installed_version()?;
        // The run directory holds the audit log here (the stores are temporary).
        std::fs::create_dir_all(&config.run_dir)?;
        guard = Some(RunDirGuard {
            dir: config.run_dir.clone(),
            keep: config.keep,
        });
        let c = NatsCluster::start().await?;
        connect = connect.urls(c.urls());
        server_text = format!(
            "a cluster of {n} nats-server child processes herald started (stores in a temporary directory, removed at the end)"
        );
        cluster = Some(Arc::new(tokio::sync::Mutex::new(c)));
    } else if config.embedded {
        herald_test_server::installed_version()?;
        std::fs::create_dir_all(&config.run_dir)?;
        guard = Some(RunDirGuard {
            dir: config.run_dir.clone(),
            keep: config.keep,
        });
        let store = config.run_dir.join("nats");
        let s = NatsServer::start_in(&store).await?;
        connect = connect.url(s.url());
        server_text = format!(
            "a nats-server child process herald started at {} (store {}, {})",
            s.url(),
            store.display(),
            if config.keep {
                "kept"
            } else {
                "removed at the end"
            }
        );
        server = Some(s);
    }
    let result = run_on(
        config,
        catalog,
        contracts,
        connect,
        progress,
        stop,
        cluster.clone(),
    )
    .await;
    if let Some(mut s) = server.take() {
        let _ = s.stop().await;
    }
    drop(cluster);
    drop(guard);
    result.map(|mut r| {
        r.server = server_text;
        r
    })
}

/// The `USAGE` stream's current leader, as its stream info says (`None` during an election).
async fn stream_leader(admin: &HeraldClient, stream: &str) -> Option<String> {
    let ask = async {
        let mut s = admin.jetstream().get_stream(stream).await.ok()?;
        s.info().await.ok()?.cluster.as_ref()?.leader.clone()
    };
    tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .ok()
        .flatten()
}

/// The catalog with every stream declared with `replicas` replicas, so that the
/// streams are created replicated rather than scaled up under load.
pub fn replicated(catalog: &Catalog, replicas: usize) -> Result<Catalog, DemoError> {
    let fail = |e: String| DemoError::Cluster(format!("replicating the catalog's streams: {e}"));
    let mut files = catalog.files().clone();
    let text = files
        .files
        .get("catalog.toml")
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .ok_or_else(|| fail("no catalog.toml".into()))?;
    let edited: Vec<String> = text
        .lines()
        .map(|l| {
            if l.split('=').next().unwrap_or("").trim() == "replicas" {
                format!("replicas = {replicas}")
            } else {
                l.to_string()
            }
        })
        .collect();
    files
        .files
        .insert("catalog.toml".into(), edited.join("\n").into_bytes());
    let out = Catalog::from_files(files).map_err(|e| fail(e.to_string()))?;
    let short = out
        .streams()
        .iter()
        .map(|s| (s.name.clone(), s.replicas))
        .chain([(out.dlq().stream.name.clone(), out.dlq().stream.replicas)])
        .find(|(_, r)| *r != replicas);
    match short {
        Some((name, _)) => Err(fail(format!(
            "stream {name} is not declared with `replicas`"
        ))),
        None => Ok(out),
    }
}

/// Mid-run, kills the leader of `report.stream` with SIGKILL and waits until another
/// server leads it, writing what happened into `report` as it goes.
async fn kill_leader(
    admin: HeraldClient,
    cluster: Arc<tokio::sync::Mutex<NatsCluster>>,
    report: Arc<std::sync::Mutex<ClusterReport>>,
    ledger: Ledger,
    at: Duration,
    start: Instant,
    mut stop: watch::Receiver<bool>,
) {
    let stream = report
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .stream
        .clone();
    let update =
        |f: &dyn Fn(&mut ClusterReport)| f(&mut report.lock().unwrap_or_else(|p| p.into_inner()));
    tokio::select! {
        _ = tokio::time::sleep(at) => {}
        _ = stop.wait_for(|s| *s) => return,
    }
    let Some(leader) = stream_leader(&admin, &stream).await else {
        tracing::warn!(%stream, "no leader to kill");
        return;
    };
    let killed = {
        let mut c = cluster.lock().await;
        c.nodes
            .iter_mut()
            .find(|n| n.name() == leader)
            .map(|n| n.kill_9().is_ok())
            .unwrap_or(false)
    };
    if !killed {
        tracing::warn!(%leader, "could not kill the leader");
        return;
    }
    let killed_at = Instant::now();
    ledger.server_killed(killed_at);
    update(&|r| {
        r.killed = Some(leader.clone());
        r.killed_at_s = Some(killed_at.duration_since(start).as_secs_f64());
    });
    while killed_at.elapsed() < Duration::from_secs(30) {
        match stream_leader(&admin, &stream).await {
            Some(l) if l != leader => {
                ledger.leader_moved(Instant::now());
                let after = killed_at.elapsed().as_secs_f64() * 1e3;
                update(&|r| {
                    r.leader_moved_after_ms = Some(after);
                    r.new_leader = Some(l.clone());
                });
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    // Then the crashed server comes back, as a restarted pod would, and catches up.
    let mut c = cluster.lock().await;
    if let Some(node) = c.nodes.iter_mut().find(|n| n.name() == leader) {
        match node.start_again().await {
            Ok(()) => {
                let after = killed_at.elapsed().as_secs_f64() * 1e3;
                update(&|r| r.restarted_after_ms = Some(after));
            }
            Err(e) => tracing::warn!(%leader, error = %e, "could not restart the killed server"),
        }
    }
}

async fn run_on(
    config: DemoConfig,
    catalog: Arc<Catalog>,
    contracts: Arc<dyn Contracts>,
    connect: ConnectConfig,
    progress: watch::Sender<Progress>,
    stop: watch::Receiver<bool>,
    cluster: Option<Arc<tokio::sync::Mutex<NatsCluster>>>,
) -> Result<DemoReport, DemoError> {
    // After a stop (Ctrl-C, SIGTERM) everything left must fit in the drain timeout:
    // draining gets most of it, stopping the services and the books the rest.
    let signalled = Arc::new(std::sync::OnceLock::new());
    {
        let (signalled, mut stop) = (signalled.clone(), stop.clone());
        tokio::spawn(async move {
            if stop.wait_for(|s| *s).await.is_ok() {
                let _ = signalled.set(Instant::now());
            }
        });
    }
    let drain_timeout = config.drain_timeout;
    let cap = move || -> Option<Instant> {
        signalled
            .get()
            .map(|t: &Instant| *t + drain_timeout.mul_f64(0.75))
    };
    let admin = HeraldClient::connect(connect.clone().name("herald-demo")).await?;
    Provisioner::new(admin.clone(), contracts.clone())
        .apply(false, false)
        .await
        .map_err(|e| DemoError::Provision(e.to_string()))?;

    let metrics_server = match config.metrics_addr {
        Some(addr) => {
            herald_runtime::metrics::install().map_err(|e| DemoError::Metrics(e.to_string()))?;
            Some(
                herald_watch::metrics_http::serve(addr)
                    .await
                    .map_err(|e| DemoError::Metrics(e.to_string()))?,
            )
        }
        None => None,
    };

    // On a shared server, do not touch the platform's own durables.
    let own_server = config.embedded || config.cluster.is_some();
    let suffix = if own_server {
        String::new()
    } else {
        format!("-demo-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
    };
    let consumers = services::demo_consumers(contracts.as_ref(), &suffix);
    let audit_path = config
        .audit_log
        .clone()
        .unwrap_or_else(|| config.run_dir.join("audit-log.jsonl"));
    let audit = Arc::new(AuditLog::create(audit_path.clone())?);
    let ledger = Ledger::new();
    const KILLED_STREAM: &str = "USAGE";
    if cluster.is_some() {
        ledger.watch_stream(KILLED_STREAM);
    }
    ledger.fault(|f| {
        f.bare_json_subscribers = consumers
            .iter()
            .filter(|c| herald_contracts::subject::matches(&c.def.filter, "usage.metered.api_call"))
            .count() as u64
    });
    let shutdown = Shutdown::new();
    let crash = Arc::new(CrashSwitch::default());

    let env = ServiceEnv {
        ledger: ledger.clone(),
        contracts: contracts.clone(),
        connect: connect.clone(),
        shutdown: shutdown.clone(),
        audit: audit.clone(),
        crash: crash.clone(),
    };
    let mut by_service: BTreeMap<String, Vec<DemoConsumer>> = BTreeMap::new();
    for c in &consumers {
        by_service
            .entry(c.def.service.clone())
            .or_default()
            .push(c.clone());
    }
    let mut service_tasks = Vec::new();
    for (service, list) in by_service.clone() {
        service_tasks.push(tokio::spawn(services::run_service(
            env.clone(),
            service,
            list,
        )));
    }

    // Heartbeats for every demo service, and herald watch alongside.
    let hb_sink: Arc<dyn EventSink> = Arc::new(JetStreamSink::new(
        admin.jetstream().clone(),
        catalog.clone(),
        "herald-demo",
    ));
    let interval = catalog.monitoring().heartbeat_interval;
    let mut heartbeats = Vec::new();
    for service in by_service.keys().map(String::as_str).chain([
        "ingestion-service",
        "orchestrator",
        "model-gateway",
        "realtime-gateway",
    ]) {
        heartbeats.push(spawn_heartbeats(hb_sink.clone(), service, interval));
    }
    let watch_client = HeraldClient::connect(connect.clone().name("herald-watch")).await?;
    let alerts = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sink = Arc::new(BookedSink {
        inner: JetStreamSink::new(
            watch_client.jetstream().clone(),
            catalog.clone(),
            "herald-watch",
        ),
        ledger: ledger.clone(),
        count: alerts.clone(),
    });
    let mut options = WatchOptions::from_catalog(&catalog);
    options.monitor.poll_interval = Duration::from_secs(1);
    let watcher = Watcher::new(watch_client.nats().clone(), catalog.clone(), sink, options)
        .start()
        .await
        .map_err(|e| DemoError::Consumer(e.to_string()))?;

    // Wait until every durable exists, so nothing published is missed by a late start.
    wait_for_consumers(&admin, &consumers, Duration::from_secs(10)).await;

    let start = Instant::now();
    let penv = producers::ProducerEnv {
        ledger: ledger.clone(),
        contracts: contracts.clone(),
        connect: connect.clone(),
        start,
        duration: config.duration,
        stop: stop.clone(),
    };
    let r = config.rate.max(1.0);
    let mut producer_tasks = vec![
        tokio::spawn(producers::ingestion(penv.clone(), r * 0.2)),
        // A workflow step is two events.
        tokio::spawn(producers::orchestrator(penv.clone(), r * 0.3 / 2.0)),
        // A gateway request is about 1.8 events.
        tokio::spawn(producers::model_gateway(penv.clone(), r * 0.35 / 1.8)),
        tokio::spawn(producers::realtime_gateway(penv.clone(), r * 0.1)),
        tokio::spawn(producers::legacy_reporter(
            penv.clone(),
            (r * 0.03).max(2.0),
        )),
    ];
    // The cluster's fault: the USAGE leader dies at 30% of the run, leaving time to
    // see publishing resume.
    let killer = cluster.clone().map(|c| {
        let report = Arc::new(std::sync::Mutex::new(ClusterReport {
            nodes: 3,
            replicas: 3,
            stream: KILLED_STREAM.to_string(),
            killed: None,
            killed_at_s: None,
            new_leader: None,
            leader_moved_after_ms: None,
            restarted_after_ms: None,
            publish_stall_ms: None,
            stall_open: false,
        }));
        let task = tokio::spawn(kill_leader(
            admin.clone(),
            c,
            report.clone(),
            ledger.clone(),
            config.duration.mul_f64(0.3),
            start,
            stop.clone(),
        ));
        (task, report)
    });
    // The mid-run crash.
    let crash_at = config.duration.mul_f64(0.4);
    let crash_timer = {
        let crash = crash.clone();
        tokio::spawn(async move {
            tokio::time::sleep(crash_at).await;
            crash.arm();
        })
    };

    // Progress while producing.
    let mut last = (Instant::now(), 0u64, 0u64);
    let mut lag = 0;
    let mut tick = 0u32;
    loop {
        let done = producer_tasks.iter().all(|t| t.is_finished());
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        tick += 1;
        if tick.is_multiple_of(4) {
            lag = total_lag(&admin, &consumers).await.0;
        }
        report_progress(&progress, &ledger, "running", start, &mut last, lag);
    }
    let mut producer_error = None;
    for t in producer_tasks.drain(..) {
        if let Ok(Err(e)) = t.await {
            producer_error.get_or_insert(e);
        }
    }
    crash_timer.abort();
    let produced = Instant::now();

    // Drain: every consumer settled (twice in a row), then stop the watcher so it
    // raises nothing more, and settle again (its alerts are consumed too).
    let deadline = Instant::now() + config.drain_timeout;
    let until = |limit: Instant| cap().map_or(limit, |c| c.min(limit));
    let mut drained = drain(
        &admin, &consumers, deadline, &cap, &progress, &ledger, start,
    )
    .await;
    // Bounded: a watcher stuck on an unreachable server is aborted when dropped.
    let watcher_limit = until(Instant::now() + Duration::from_secs(5));
    let _ = tokio::time::timeout_at(watcher_limit.into(), watcher.stop()).await;
    drained &= drain(
        &admin, &consumers, deadline, &cap, &progress, &ledger, start,
    )
    .await;
    let (_, lag_by_durable) = total_lag(&admin, &consumers).await;
    let mut cluster_report = killer.map(|(task, report)| {
        task.abort();
        let r = report.lock().unwrap_or_else(|p| p.into_inner()).clone();
        r
    });
    if let Some(c) = cluster_report.as_mut() {
        if let Some(at) = c.killed_at_s {
            let killed = start + Duration::from_secs_f64(at);
            if let Some((gap, open)) = ledger.longest_store_gap(&c.stream, killed, produced) {
                c.publish_stall_ms = Some(gap.as_secs_f64() * 1e3);
                c.stall_open = open;
            }
        }
    }

    shutdown.trigger();
    let mut service_error = None;
    let stopping = until(Instant::now() + Duration::from_secs(10));
    for t in service_tasks {
        let left = stopping.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, t).await {
            Ok(Ok(Err(e))) => {
                service_error.get_or_insert(e);
            }
            Ok(_) => {}
            Err(_) => tracing::warn!("a service did not stop within 10s"),
        }
    }
    drop(heartbeats);
    audit.flush()?;
    if let Some(e) = producer_error.or(service_error) {
        return Err(e);
    }

    book_workflow_steps(&admin, &catalog, &ledger).await?;
    let dead = Dlq::new(admin.clone())
        .list(&DlqFilter::default())
        .await
        .map_err(|e| DemoError::Dlq(e.to_string()))?;
    let mut report = build_report(
        &config,
        &admin,
        &catalog,
        &consumers,
        &ledger,
        dead,
        lag_by_durable,
        &audit,
        &audit_path,
        alerts.load(std::sync::atomic::Ordering::Relaxed),
        drained,
    );
    report.cluster = cluster_report;
    // The last progress line shows the summary's totals.
    let _ = progress.send(Progress {
        phase: "done",
        elapsed: start.elapsed(),
        published: report.totals.events_stored,
        consumed: report.totals.deliveries_processed,
        dead_lettered: report.totals.dead_letters,
        ..Default::default()
    });
    if !own_server {
        // Leave no demo durables behind on a shared server.
        for c in &consumers {
            if let Ok(s) = admin.jetstream().get_stream(&c.stream).await {
                let _ = s.delete_consumer(&c.durable).await;
            }
        }
    }
    if let Some(m) = metrics_server {
        m.abort();
    }
    admin.drain().await;
    Ok(report)
}

/// Books the step events of this run's workflows from the stream that holds them:
/// the workflow helper publishes them without handing back receipts.
async fn book_workflow_steps(
    admin: &HeraldClient,
    catalog: &Catalog,
    ledger: &Ledger,
) -> Result<(), DemoError> {
    use futures::StreamExt;
    let subject = "orchestrator.step.>";
    let Some(spec) = catalog.stream_for_subject("orchestrator.step.started") else {
        return Ok(());
    };
    let fail = |e: String| DemoError::Dlq(format!("reading {}: {e}", spec.name));
    let mut stream = admin
        .jetstream()
        .get_stream(&spec.name)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let last = stream
        .info()
        .await
        .map_err(|e| fail(e.to_string()))?
        .state
        .last_sequence;
    if last == 0 {
        return Ok(());
    }
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: subject.into(),
            ..Default::default()
        })
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut messages = consumer.messages().await.map_err(|e| fail(e.to_string()))?;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
        let Ok(Some(Ok(m))) = next else { break };
        let seq = m.info().map(|i| i.stream_sequence).unwrap_or(last);
        let ours = serde_json::from_slice::<Value>(&m.payload)
            .ok()
            .and_then(|v| {
                v.get("workflow_id")?
                    .as_str()
                    .map(|w| ledger.ran_workflow(w))
            })
            .unwrap_or(false);
        let key = m
            .headers
            .as_ref()
            .and_then(|h| h.get(herald_runtime::headers::MSG_ID))
            .map(|v| v.as_str().to_string());
        if let (true, Some(key)) = (ours, key) {
            ledger.stored_from(
                producers::PRODUCERS[1],
                m.subject.as_str(),
                &key,
                &spec.name,
                seq,
                true,
                false,
            );
        }
        if seq >= last {
            break;
        }
    }
    ledger.steps_booked();
    Ok(())
}

fn report_progress(
    progress: &watch::Sender<Progress>,
    ledger: &Ledger,
    phase: &'static str,
    start: Instant,
    last: &mut (Instant, u64, u64),
    lag: u64,
) {
    let (published, consumed) = (ledger.published_progress(), ledger.consumed_total());
    let dt = last.0.elapsed().as_secs_f64().max(1e-3);
    let p = Progress {
        phase,
        elapsed: start.elapsed(),
        published,
        consumed,
        dead_lettered: ledger.dead_lettered_total(),
        lag,
        publish_rate: published.saturating_sub(last.1) as f64 / dt,
        consume_rate: consumed.saturating_sub(last.2) as f64 / dt,
    };
    if dt >= 0.9 {
        *last = (Instant::now(), published, consumed);
    }
    let _ = progress.send(p);
}

async fn wait_for_consumers(admin: &HeraldClient, consumers: &[DemoConsumer], limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let mut all = true;
        for c in consumers {
            let ok = match admin.jetstream().get_stream(&c.stream).await {
                Ok(s) => s.consumer_info(&c.durable).await.is_ok(),
                Err(_) => false,
            };
            all &= ok;
        }
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Pending + ack-pending over the consumers, and per durable (`None`: unknown). Bounded
/// to two seconds so an unreachable server cannot stall the progress line or the drain.
async fn total_lag(
    admin: &HeraldClient,
    consumers: &[DemoConsumer],
) -> (u64, HashMap<String, Option<u64>>) {
    match tokio::time::timeout(Duration::from_secs(2), poll_lag(admin, consumers)).await {
        Ok(r) => r,
        Err(_) => (
            0,
            consumers
                .iter()
                .map(|c| (c.durable.clone(), None))
                .collect(),
        ),
    }
}

async fn poll_lag(
    admin: &HeraldClient,
    consumers: &[DemoConsumer],
) -> (u64, HashMap<String, Option<u64>>) {
    let mut total = 0;
    let mut by = HashMap::new();
    for c in consumers {
        let lag = match admin.jetstream().get_stream(&c.stream).await {
            Ok(s) => s
                .consumer_info(&c.durable)
                .await
                .ok()
                .map(|i| i.num_pending + i.num_ack_pending as u64),
            Err(_) => None,
        };
        total += lag.unwrap_or(0);
        by.insert(c.durable.clone(), lag);
    }
    (total, by)
}

/// Waits until every consumer has nothing pending or unacknowledged, twice in a row.
async fn drain(
    admin: &HeraldClient,
    consumers: &[DemoConsumer],
    deadline: Instant,
    cap: &dyn Fn() -> Option<Instant>,
    progress: &watch::Sender<Progress>,
    ledger: &Ledger,
    start: Instant,
) -> bool {
    let mut settled = 0;
    let mut last = (
        Instant::now(),
        ledger.published_progress(),
        ledger.consumed_total(),
    );
    while Instant::now() < cap().map_or(deadline, |c| c.min(deadline)) {
        let (lag, by) = total_lag(admin, consumers).await;
        report_progress(progress, ledger, "draining", start, &mut last, lag);
        let busy: Vec<_> = by.iter().filter(|(_, l)| **l != Some(0)).collect();
        tracing::debug!(?busy, "draining");
        if lag == 0 && by.values().all(Option::is_some) {
            settled += 1;
            if settled >= 2 {
                return true;
            }
        } else {
            settled = 0;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[allow(clippy::too_many_arguments)]
fn build_report(
    config: &DemoConfig,
    admin: &HeraldClient,
    catalog: &Catalog,
    consumers: &[DemoConsumer],
    ledger: &Ledger,
    dead: Vec<herald_runtime::dlq::DlqEntry>,
    lag_by_durable: HashMap<String, Option<u64>>,
    audit: &AuditLog,
    audit_path: &std::path::Path,
    watch_alerts: u64,
    drained: bool,
) -> DemoReport {
    let snap = ledger.snapshot();
    let durables: HashMap<&str, &DemoConsumer> =
        consumers.iter().map(|c| (c.durable.as_str(), c)).collect();
    // This run's dead letters, by (durable, key).
    let mut dlq_by: HashMap<(String, String), String> = HashMap::new();
    let mut dlq_reasons: BTreeMap<String, u64> = BTreeMap::new();
    let mut subject_dlq: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut service_dlq: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut faults = snap.faults;
    for e in &dead {
        let Some(c) = durables.get(e.consumer.as_str()) else {
            continue;
        };
        let key = ledger.key_at(&e.stream, e.stream_seq).or_else(|| {
            let identity = catalog.subject(&e.subject).map(|s| s.identity.clone())?;
            let v: Value = serde_json::from_slice(&e.payload).ok()?;
            v.get(&identity)?.as_str().map(str::to_string)
        });
        let Some(key) = key else { continue };
        let Some(stored) = snap.stored.get(&key) else {
            continue;
        };
        dlq_by.insert((e.consumer.clone(), key.clone()), e.reason.clone());
        *dlq_reasons.entry(e.reason.clone()).or_default() += 1;
        *subject_dlq
            .entry(stored.subject.clone())
            .or_default()
            .entry(e.reason.clone())
            .or_default() += 1;
        *service_dlq
            .entry(c.def.service.clone())
            .or_default()
            .entry(e.reason.clone())
            .or_default() += 1;
        if !stored.valid {
            faults.bare_json_dead_lettered += 1;
        }
        if e.reason == herald_runtime::dlq::reason::MAX_DELIVERIES
            && snap.poison_keys.contains(&key)
        {
            faults.poison_dead_lettered += 1;
        }
    }
    faults.duplicates_dropped_at_consume = snap.consumers.values().map(|s| s.duplicates).sum();
    let dead_letters: u64 = dlq_reasons.values().sum();

    // The books.
    let mut books = Books::default();
    let mut unsettled: BTreeMap<String, u64> = BTreeMap::new();
    for (key, stored) in &snap.stored {
        for c in consumers
            .iter()
            .filter(|c| herald_contracts::subject::matches(&c.def.filter, &stored.subject))
        {
            books.pairs += 1;
            let n = snap
                .applied
                .get(&(c.durable.clone(), key.clone()))
                .copied()
                .unwrap_or(0);
            let dl = dlq_by.contains_key(&(c.durable.clone(), key.clone()));
            if n > 0 && !stored.valid {
                books.invalid_processed += 1;
            }
            match (n, dl) {
                (0, false) => {
                    books.lost += 1;
                    *unsettled.entry(stored.subject.clone()).or_default() += 1;
                }
                (0, true) => books.dead_lettered += 1,
                (1, false) => books.processed_once += 1,
                _ => books.processed_twice += 1,
            }
        }
    }
    books.unexpected = snap
        .applied
        .keys()
        .filter(|(_, k)| !snap.stored.contains_key(k))
        .count() as u64;

    let mut subject_names: Vec<String> = snap.subjects.keys().cloned().collect();
    subject_names.extend(subject_dlq.keys().cloned());
    subject_names.sort();
    subject_names.dedup();
    let subjects = subject_names
        .into_iter()
        .map(|s| {
            let t = snap.subjects.get(&s).cloned().unwrap_or_default();
            let dl = subject_dlq.get(&s).cloned().unwrap_or_default();
            let contract_dl: u64 = dl
                .iter()
                .filter(|(r, _)| {
                    matches!(
                        r.as_str(),
                        "schema_invalid" | "decode_error" | "unknown_schema"
                    )
                })
                .map(|(_, n)| n)
                .sum();
            SubjectRow {
                published: t.published,
                refused_invalid: t.refused_invalid,
                duplicates_dropped: t.duplicates_dropped,
                bare: t.bare,
                consumed: t.consumed,
                validation_failures: t.refused_invalid + contract_dl,
                unsettled: unsettled.get(&s).copied().unwrap_or(0),
                p50_ms: percentile_of(&t.latencies_us, 0.5, |_| true),
                p99_ms: percentile_of(&t.latencies_us, 0.99, |_| true),
                slow: slow_by_cause(&t.latencies_us),
                p99_others_ms: percentile_of(&t.latencies_us, 0.99, |d| d == Delay::None),
                dead_lettered: dl,
                subject: s,
            }
        })
        .collect();

    // Producers first (in the order they are described), then the consuming services.
    let mut service_names: Vec<String> =
        producers::PRODUCERS.iter().map(|p| p.to_string()).collect();
    let mut rest: Vec<String> = snap.services.keys().cloned().collect();
    rest.extend(consumers.iter().map(|c| c.def.service.clone()));
    rest.sort();
    rest.dedup();
    rest.retain(|s| !service_names.contains(s));
    service_names.extend(rest);
    let services = service_names
        .into_iter()
        .map(|s| {
            let t = snap.services.get(&s).cloned().unwrap_or_default();
            let mine: Vec<&DemoConsumer> =
                consumers.iter().filter(|c| c.def.service == s).collect();
            let stats: Vec<_> = snap
                .consumers
                .iter()
                .filter(|((svc, _), _)| *svc == s)
                .map(|(_, st)| *st)
                .collect();
            let publishes = t.published + t.refused + t.duplicates_dropped + t.failed > 0;
            let role = match (publishes, !mine.is_empty()) {
                (true, true) => "both",
                (false, true) => "consumer",
                _ => "producer",
            };
            ServiceRow {
                role: role.to_string(),
                consumers: mine.iter().map(|c| c.durable.clone()).collect(),
                published: t.published,
                refused: t.refused,
                publish_duplicates_dropped: t.duplicates_dropped,
                publish_failed: t.failed,
                processed: t.processed,
                duplicates: stats.iter().map(|x| x.duplicates).sum(),
                redelivered_duplicates: t.redelivered_duplicates,
                retried: stats.iter().map(|x| x.retried).sum(),
                dead_lettered: service_dlq.get(&s).cloned().unwrap_or_default(),
                crashes: t.crashes,
                restarts: t.restarts,
                lag: mine
                    .iter()
                    .map(|c| {
                        lag_by_durable
                            .get(&c.durable)
                            .copied()
                            .flatten()
                            .unwrap_or(0)
                    })
                    .sum(),
                p50_ms: percentile_of(&t.latencies_us, 0.5, |_| true),
                p99_ms: percentile_of(&t.latencies_us, 0.99, |_| true),
                slow: slow_by_cause(&t.latencies_us),
                p99_others_ms: percentile_of(&t.latencies_us, 0.99, |d| d == Delay::None),
                service: s,
            }
        })
        .collect();

    let expected_audit = snap
        .stored
        .values()
        .filter(|s| {
            s.valid
                && (s.subject.starts_with("orchestrator.step.") || s.subject.starts_with("alerts."))
        })
        .count() as u64;
    let totals = Totals {
        events_stored: snap.stored.len() as u64,
        deliveries_processed: snap.subjects.values().map(|t| t.consumed).sum(),
        dead_letters,
        dead_letter_pairs: dlq_by.len() as u64,
        dead_letter_repeats: dead_letters.saturating_sub(dlq_by.len() as u64),
    };
    DemoReport {
        server_version: admin.server_version_text().to_string(),
        embedded: config.embedded || config.cluster.is_some(),
        server: String::new(),
        cluster: None,
        totals,
        duration_s: config.duration.as_secs_f64(),
        rate: config.rate,
        subjects,
        services,
        faults,
        dlq: dlq_reasons,
        watch_alerts,
        books,
        audit_log: AuditSummary {
            path: audit_path.display().to_string(),
            lines: audit.lines(),
            expected: expected_audit,
            kept: config.keep || config.audit_log.is_some(),
        },
        drained,
    }
}
