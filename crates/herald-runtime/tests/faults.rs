//! Fault injection on real nats-server processes, loopback only, bounded in time.
//!
//! Every scenario publishes events with unique ids through herald's publisher
//! (retrying a failed publish with the same message id until it is stored) and
//! consumes them with herald's consumer and the key-value duplicate store,
//! counting handler side effects in a map keyed by event id. The books balance
//! when the stream holds exactly one message per event, every event has an
//! effect, and (where the consumer process itself survives) no effect happened
//! twice.
//!
//! CI runs small counts. The full sizes of RELIABILITY.md run with
//! `HERALD_FAULTS_FULL=1 cargo test --release -p herald-runtime --test faults -- --nocapture --test-threads=1`.

mod common;
#[path = "../testbin/fault_config.rs"]
mod fault_config;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use herald_runtime::contracts::Contracts;
use herald_runtime::publisher::Outgoing;
use herald_runtime::{
    ConnectConfig, Consumer, DedupeStore, HeraldClient, Provisioner, Publish, Publisher,
    PublisherConfig, Shutdown, StatsSnapshot,
};
use herald_test_server::NatsCluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::*;
use fault_config::consumer_config;

const SUBJECT: &str = "usage.metered.api_call";

fn full() -> bool {
    std::env::var("HERALD_FAULTS_FULL").is_ok_and(|v| v == "1")
}

/// `(ci, full)` by mode.
fn size(ci: u64, full_size: u64) -> u64 {
    if full() {
        full_size
    } else {
        ci
    }
}

/// The label of event `i`; its `event_id` is [`id`].
fn label(i: u64) -> String {
    format!("fault-{i:08}")
}

fn id(i: u64) -> String {
    event_id(&label(i))
}

/// The shipped catalog with every stream at `replicas`.
fn catalog(replicas: i64) -> Arc<dyn Contracts> {
    contracts_with(|doc| {
        for s in streams(doc) {
            s.insert("replicas".into(), replicas.into());
        }
    })
}

async fn connect_urls(urls: Vec<String>, name: &str, timeout: Duration) -> HeraldClient {
    HeraldClient::connect(
        ConnectConfig::default()
            .urls(urls)
            .name(name)
            .request_timeout(timeout)
            .max_reconnect_delay(Duration::from_millis(500)),
    )
    .await
    .expect("connect to the test server")
}

/// What the publisher saw.
#[derive(Debug, Default)]
struct PubStats {
    stored: AtomicU64,
    duplicates_reported: AtomicU64,
    retried: AtomicU64,
    resubmitted: AtomicU64,
}

/// Publishes events `0..n` in batches of pipelined publishes; an event whose publish
/// failed (retries exhausted while the server was down) is submitted again with the same
/// message id until it is acknowledged. Returns when every event is acknowledged.
async fn publish_all(p: Publisher, n: u64, stats: Arc<PubStats>) {
    let batch = 200;
    let mut next = 0;
    while next < n {
        let mut todo: Vec<u64> = (next..(next + batch).min(n)).collect();
        next += todo.len() as u64;
        for round in 0.. {
            assert!(round < 60, "events {todo:?} never stored");
            let out: Vec<Outgoing> = todo
                .iter()
                .map(|i| Outgoing {
                    subject: SUBJECT.into(),
                    payload: Bytes::from(usage_event(&label(*i)).to_string()),
                    options: Publish::build(),
                })
                .collect();
            let results: Vec<_> = p.publish_all(out).collect().await;
            let mut failed = Vec::new();
            for (k, r) in results {
                match r {
                    Ok(receipt) => {
                        stats.stored.fetch_add(1, Ordering::Relaxed);
                        if receipt.duplicate {
                            stats.duplicates_reported.fetch_add(1, Ordering::Relaxed);
                        }
                        if receipt.attempts > 1 {
                            stats.retried.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) => {
                        assert!(!e.is_rejection(), "valid event rejected: {e}");
                        failed.push(todo[k]);
                    }
                }
            }
            if failed.is_empty() {
                break;
            }
            stats
                .resubmitted
                .fetch_add(failed.len() as u64, Ordering::Relaxed);
            todo = failed;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

type Effects = Arc<Mutex<HashMap<String, u32>>>;

struct RunningConsumer {
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<StatsSnapshot>,
    effects: Effects,
}

impl RunningConsumer {
    fn distinct(&self) -> usize {
        self.effects.lock().unwrap().len()
    }

    async fn stop(self) -> (StatsSnapshot, HashMap<String, u32>) {
        self.shutdown.trigger();
        let st = tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("consumer stops")
            .expect("consumer task");
        let effects = self.effects.lock().unwrap().clone();
        (st, effects)
    }
}

/// Runs the consumer in a task; the handler's side effect is a count per event id.
fn spawn_consumer(
    client: HeraldClient,
    contracts: Arc<dyn Contracts>,
    dedupe: DedupeStore,
) -> RunningConsumer {
    let effects: Effects = Arc::default();
    let consumer = Consumer::new(client, contracts, consumer_config(dedupe)).unwrap();
    let shutdown = Shutdown::new();
    let (s, e) = (shutdown.clone(), effects.clone());
    let task = tokio::spawn(async move {
        consumer
            .run(
                move |d| {
                    let e = e.clone();
                    async move {
                        let id = d.value["event_id"].as_str().unwrap_or_default().to_string();
                        *e.lock().unwrap().entry(id).or_default() += 1;
                        Ok(())
                    }
                },
                s,
            )
            .await
            .expect("consumer runs")
    });
    RunningConsumer {
        shutdown,
        task,
        effects,
    }
}

/// Stream message count and the durable's outstanding work, once the server answers
/// (it may be restarting or electing a leader).
async fn settle_counts(client: &HeraldClient) -> (u64, u64, usize) {
    eventually(
        "stream and consumer info",
        Duration::from_secs(20),
        || async {
            let mut s = client.jetstream().get_stream("USAGE").await.ok()?;
            let messages = s.info().await.ok()?.state.messages;
            let mut c = s
                .get_consumer::<async_nats::jetstream::consumer::pull::Config>(
                    "billing-service--usage",
                )
                .await
                .ok()?;
            let ci = c.info().await.ok()?;
            Some((messages, ci.num_pending, ci.num_ack_pending))
        },
    )
    .await
}

/// Waits until the durable has nothing pending and nothing unacknowledged.
async fn wait_drained(client: &HeraldClient, limit: Duration) {
    eventually("the consumer to drain", limit, || async {
        let (_, pending, ack_pending) = settle_counts(client).await;
        (pending == 0 && ack_pending == 0).then_some(())
    })
    .await;
}

/// Waits until every event has an effect and the consumer has nothing pending.
async fn drain(client: &HeraldClient, c: &RunningConsumer, n: u64, limit: Duration) {
    wait_until("every event handled", limit, || c.distinct() as u64 >= n).await;
    wait_drained(client, limit).await;
}

async fn dlq_messages(client: &HeraldClient) -> u64 {
    let mut s = client.jetstream().get_stream("DLQ").await.unwrap();
    s.info().await.unwrap().state.messages
}

/// The books: stream holds n, every id handled, none twice (returns the duplicate effects).
fn books(n: u64, stored: u64, effects: &HashMap<String, u32>) -> u64 {
    assert_eq!(stored, n, "stream holds one message per event");
    let missing: Vec<String> = (0..n)
        .map(id)
        .filter(|i| !effects.contains_key(i))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "events never handled, e.g. {missing:?}");
    assert_eq!(effects.len() as u64, n, "effects only for published events");
    effects.values().map(|c| u64::from(c - 1)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_server_kill_9_cycles_store_and_handle_every_event_once() {
    let n = size(3_000, 100_000);
    let cycles = size(3, 5);
    let started = Instant::now();
    let mut server = server().await;
    let urls = vec![server.url()];
    let contracts = catalog(1);
    let admin = connect_urls(urls.clone(), "admin", Duration::from_secs(2)).await;
    Provisioner::new(admin.clone(), contracts.clone())
        .apply(false, false)
        .await
        .unwrap();
    let pub_client = connect_urls(urls.clone(), "model-gateway", Duration::from_secs(2)).await;
    let publisher = Publisher::new(
        pub_client,
        contracts.clone(),
        PublisherConfig::new("model-gateway").retry_max_elapsed(Duration::from_secs(20)),
    );
    let cons_client = connect_urls(urls.clone(), "billing-service", Duration::from_secs(2)).await;
    let dedupe = DedupeStore::key_value(
        &cons_client,
        "herald-dedupe-faults",
        Duration::from_secs(3600),
    )
    .await
    .unwrap();
    let consumer = spawn_consumer(cons_client, contracts.clone(), dedupe);
    let stats = Arc::new(PubStats::default());
    let pub_task = tokio::spawn(publish_all(publisher, n, stats.clone()));

    let limit = Duration::from_secs(if full() { 1800 } else { 120 });
    for cycle in 1..=cycles {
        // Kill while both publishing and consuming are under way.
        let at = n * cycle / (cycles + 1);
        let st = stats.clone();
        wait_until("publishing progress", limit, || {
            st.stored.load(Ordering::Relaxed) >= at
        })
        .await;
        server.kill_9().unwrap();
        // The outage itself (not a wait for anything): clients see the server gone.
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.start_again().await.expect("restart after kill -9");
    }
    tokio::time::timeout(limit, pub_task)
        .await
        .expect("publisher finished")
        .unwrap();
    drain(&admin, &consumer, n, limit).await;
    let (stored, _, _) = settle_counts(&admin).await;
    let dlq = dlq_messages(&admin).await;
    let (cst, effects) = consumer.stop().await;
    let dup_effects = books(n, stored, &effects);
    eprintln!(
        "FAULTS single-server: events={n} kill9_cycles={cycles} stored={stored} lost=0 \
         duplicate_effects={dup_effects} publish_retried={} publish_resubmitted={} \
         duplicates_reported={} consumer={cst:?} dlq={dlq} elapsed={:?}",
        stats.retried.load(Ordering::Relaxed),
        stats.resubmitted.load(Ordering::Relaxed),
        stats.duplicates_reported.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert_eq!(dup_effects, 0, "a handler side effect happened twice");
    assert_eq!(dlq, 0, "nothing dead-lettered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_r3_survives_losing_the_stream_leader() {
    let n = size(1_500, 50_000);
    let started = Instant::now();
    let mut cluster = NatsCluster::start().await.expect("three-node cluster");
    let urls = cluster.urls();
    let contracts = catalog(3);
    let admin = connect_urls(urls.clone(), "admin", Duration::from_secs(5)).await;
    // The meta leader may still be settling: provisioning is retried, bounded.
    eventually(
        "streams provisioned on the cluster",
        Duration::from_secs(30),
        || async {
            Provisioner::new(admin.clone(), contracts.clone())
                .apply(false, false)
                .await
                .ok()
        },
    )
    .await;
    let mut info = admin.jetstream().get_stream("USAGE").await.unwrap();
    let cfg = info.info().await.unwrap().config.clone();
    assert_eq!(cfg.num_replicas, 3, "R3 from the catalog");

    let pub_client = connect_urls(urls.clone(), "model-gateway", Duration::from_secs(3)).await;
    let publisher = Publisher::new(
        pub_client,
        contracts.clone(),
        PublisherConfig::new("model-gateway").retry_max_elapsed(Duration::from_secs(30)),
    );
    let cons_client = connect_urls(urls.clone(), "billing-service", Duration::from_secs(3)).await;
    let dedupe = DedupeStore::key_value_replicated(
        &cons_client,
        "herald-dedupe-faults",
        Duration::from_secs(3600),
        3,
    )
    .await
    .unwrap();
    let consumer = spawn_consumer(cons_client, contracts.clone(), dedupe);
    let stats = Arc::new(PubStats::default());
    let pub_task = tokio::spawn(publish_all(publisher, n, stats.clone()));

    let limit = Duration::from_secs(if full() { 1800 } else { 150 });
    let st = stats.clone();
    wait_until("publishing progress", limit, || {
        st.stored.load(Ordering::Relaxed) >= n / 3
    })
    .await;
    let leader = info
        .info()
        .await
        .unwrap()
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .expect("the stream has a leader");
    let idx = cluster
        .nodes
        .iter()
        .position(|node| node.name() == leader)
        .expect("leader is a member");
    cluster.nodes[idx].kill_9().unwrap();
    let st = stats.clone();
    let before = st.stored.load(Ordering::Relaxed);
    // Publishing carries on without the old leader (new leader elected).
    wait_until("publishing continues on two nodes", limit, || {
        st.stored.load(Ordering::Relaxed) >= (before + n / 6).min(n)
    })
    .await;
    cluster.nodes[idx]
        .start_again()
        .await
        .expect("old leader restarts");
    tokio::time::timeout(limit, pub_task)
        .await
        .expect("publisher finished")
        .unwrap();
    drain(&admin, &consumer, n, limit).await;
    let (stored, _, _) = settle_counts(&admin).await;
    let dlq = dlq_messages(&admin).await;
    let new_leader = info
        .info()
        .await
        .unwrap()
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .unwrap_or_default();
    let (cst, effects) = consumer.stop().await;
    let dup_effects = books(n, stored, &effects);
    eprintln!(
        "FAULTS cluster-R3: events={n} killed_leader={leader} new_leader={new_leader} stored={stored} \
         lost=0 duplicate_effects={dup_effects} publish_retried={} publish_resubmitted={} \
         duplicates_reported={} consumer={cst:?} dlq={dlq} elapsed={:?}",
        stats.retried.load(Ordering::Relaxed),
        stats.resubmitted.load(Ordering::Relaxed),
        stats.duplicates_reported.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert_eq!(dup_effects, 0, "a handler side effect happened twice");
    assert_eq!(dlq, 0);
}

// --------------------------------------------------- consumer process SIGKILL

/// Starts the consumer process (`herald-fault-child`, a target of this crate).
fn spawn_child(url: &str, file: &Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_herald-fault-child"))
        .arg(url)
        .arg(file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn consumer child")
}

fn effects_file(file: &Path) -> HashMap<String, u32> {
    let mut m = HashMap::new();
    for line in std::fs::read_to_string(file).unwrap_or_default().lines() {
        if !line.is_empty() {
            *m.entry(line.to_string()).or_default() += 1;
        }
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_process_killed_three_times_balances_the_books() {
    let n = size(1_500, 10_000);
    let kills = 3;
    let started = Instant::now();
    let server = server().await;
    let contracts = catalog(1);
    let admin = connect_urls(vec![server.url()], "admin", Duration::from_secs(2)).await;
    Provisioner::new(admin.clone(), contracts.clone())
        .apply(false, false)
        .await
        .unwrap();
    let publisher = Publisher::new(
        admin.clone(),
        contracts,
        PublisherConfig::new("model-gateway"),
    );
    let stats = Arc::new(PubStats::default());
    let pub_task = tokio::spawn(publish_all(publisher, n, stats.clone()));
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("effects.log");
    let limit = Duration::from_secs(if full() { 900 } else { 120 });
    for k in 1..=kills {
        let mut child = spawn_child(&server.url(), &file);
        let at = n * k / (kills + 1);
        let f = file.clone();
        wait_until("child progress", limit, || {
            effects_file(&f).len() as u64 >= at
        })
        .await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let mut child = spawn_child(&server.url(), &file);
    tokio::time::timeout(limit, pub_task)
        .await
        .expect("published")
        .unwrap();
    let f = file.clone();
    wait_until("every event handled after the kills", limit, || {
        effects_file(&f).len() as u64 >= n
    })
    .await;
    // Let the survivor settle its acks, then stop it.
    wait_drained(&admin, limit).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let (stored, _, _) = settle_counts(&admin).await;
    let effects = effects_file(&file);
    let dup_effects = books(n, stored, &effects);
    // A SIGKILL between a handler's effect and the duplicate-store record lets the next
    // process run that handler again: at most the deliveries in flight (concurrency 32)
    // per kill. Effects keyed by the event id (as this ledger is) still count once.
    eprintln!(
        "FAULTS consumer-sigkill: events={n} kills={kills} stored={stored} lost=0 \
         duplicate_handler_calls={dup_effects} (bound {}) ledger_distinct={} dlq={} elapsed={:?}",
        kills * 32,
        effects.len(),
        dlq_messages(&admin).await,
        started.elapsed()
    );
    assert!(
        dup_effects <= kills * 32,
        "{dup_effects} repeated handler calls"
    );
}

// ------------------------------------------------------------ network faults

/// A loopback TCP proxy whose connections can be stalled (bytes held, sockets open)
/// or dropped (every connection closed), to fake a flaky network without root.
struct Proxy {
    port: u16,
    stalled: Arc<AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stalled = Arc::new(AtomicBool::new(false));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let (st, gen) = (stalled.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let Ok(up) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                let (dr, dw) = down.into_split();
                let (ur, uw) = up.into_split();
                tokio::spawn(pipe(dr, uw, st.clone(), gen.subscribe()));
                tokio::spawn(pipe(ur, dw, st.clone(), gen.subscribe()));
            }
        });
        Proxy {
            port,
            stalled,
            generation,
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn stall(&self, on: bool) {
        self.stalled.store(on, Ordering::SeqCst);
    }

    fn drop_connections(&self) {
        self.generation.send_modify(|g| *g += 1);
    }
}

async fn pipe(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    stalled: Arc<AtomicBool>,
    mut gen: tokio::sync::watch::Receiver<u64>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            r = r.read(&mut buf) => match r { Ok(0) | Err(_) => return, Ok(n) => n },
            _ = gen.changed() => return,
        };
        // Hold the bytes while stalled (the connection looks alive but nothing moves).
        while stalled.load(Ordering::SeqCst) {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = gen.changed() => return,
            }
        }
        if w.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_and_dropped_connections_time_out_and_retry_without_duplicates() {
    let n = size(600, 10_000);
    let started = Instant::now();
    let server = server().await;
    let contracts = catalog(1);
    let admin = connect_urls(vec![server.url()], "admin", Duration::from_secs(2)).await;
    Provisioner::new(admin.clone(), contracts.clone())
        .apply(false, false)
        .await
        .unwrap();
    let proxy = Proxy::start(server.ports().client).await;
    let client = connect_urls(
        vec![proxy.url()],
        "model-gateway",
        Duration::from_millis(800),
    )
    .await;
    let publisher = Publisher::new(
        client,
        contracts.clone(),
        PublisherConfig::new("model-gateway")
            .in_flight(16)
            .retry_max_elapsed(Duration::from_secs(30)),
    );
    let stats = Arc::new(PubStats::default());
    let pub_task = tokio::spawn(publish_all(publisher, n, stats.clone()));
    let limit = Duration::from_secs(if full() { 900 } else { 120 });

    let st = stats.clone();
    wait_until("progress", limit, || {
        st.stored.load(Ordering::Relaxed) >= n / 4
    })
    .await;
    // Stall longer than the ack timeout: the publishes in flight time out, are retried
    // with the same message id, and the originals arrive when the stall ends. The
    // sleep is the fault's duration, not a wait for something to happen.
    proxy.stall(true);
    let st = stats.clone();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    proxy.stall(false);
    wait_until("progress after the stall", limit, || {
        st.stored.load(Ordering::Relaxed) >= n / 2
    })
    .await;
    // Drop every connection twice: the client reconnects, unacked publishes are retried.
    for k in 0..2 {
        proxy.drop_connections();
        let target = n / 2 + (k + 1) * n / 8;
        wait_until("progress after a drop", limit, || {
            st.stored.load(Ordering::Relaxed) >= target
        })
        .await;
    }
    tokio::time::timeout(limit, pub_task)
        .await
        .expect("published")
        .unwrap();

    // Consume everything once more to check the ids: one message per event.
    let dedupe = DedupeStore::memory(n as usize * 2);
    let consumer = spawn_consumer(admin.clone(), contracts, dedupe);
    drain(&admin, &consumer, n, limit).await;
    let (stored, _, _) = settle_counts(&admin).await;
    let (cst, effects) = consumer.stop().await;
    let dup_effects = books(n, stored, &effects);
    let retried = stats.retried.load(Ordering::Relaxed) + stats.resubmitted.load(Ordering::Relaxed);
    eprintln!(
        "FAULTS tcp-proxy: events={n} stalls=1 drops=2 stored={stored} lost=0 duplicates_stored=0 \
         duplicate_effects={dup_effects} publish_retried={} publish_resubmitted={} \
         duplicates_reported={} consumer={cst:?} elapsed={:?}",
        stats.retried.load(Ordering::Relaxed),
        stats.resubmitted.load(Ordering::Relaxed),
        stats.duplicates_reported.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert!(retried > 0, "the stall made publishes time out and retry");
    assert_eq!(dup_effects, 0);
}
