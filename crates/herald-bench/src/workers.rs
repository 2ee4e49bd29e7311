//! Horizontal consumers: N workers on one durable share its events, as the replicas of
//! one service would. Each worker has its own connection and herald [`Consumer`] on the
//! same durable; JetStream hands each pull's messages to one worker only.
//!
//! For every N the stream is purged, `events` events are stored (untimed), the workers
//! connect and wait at a barrier, then all start at once; the clock stops when every
//! event has been handled. Each worker counts what it handled, and a shared set of event
//! ids counts any event handled twice.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;

use super::{payload, BenchError};
use herald_runtime::connection::{ConnectConfig, HeraldClient};
use herald_runtime::consumer::{Consumer, ConsumerConfig, Shutdown};
use herald_runtime::contracts::Contracts;
use herald_runtime::publisher::{Outgoing, Publish, Publisher, PublisherConfig};

/// Settings.
#[derive(Debug, Clone)]
pub struct WorkersBench {
    /// Events per run (each N handles all of them).
    pub events: usize,
    /// Worker counts to run, e.g. 1, 2, 4.
    pub workers: Vec<usize>,
    /// Subject of the events.
    pub subject: String,
    /// A valid event for `subject`.
    pub template: Value,
    /// Handler concurrency of each worker.
    pub concurrency: usize,
}

/// One worker count's figures.
#[derive(Debug, Clone, Serialize)]
pub struct WorkersRow {
    /// Workers on the durable.
    pub workers: usize,
    /// Events stored for this run.
    pub published: u64,
    /// Events handled per worker (their sum is the events handled).
    pub per_worker: Vec<u64>,
    /// Events handled more than once (over all workers).
    pub handled_twice: u64,
    /// Events per second over all workers.
    pub events_per_sec: f64,
    /// This row's throughput over the single worker's (the first row's).
    pub speedup: f64,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct WorkersReport {
    /// Events per run.
    pub events: usize,
    /// Logical CPUs of the machine.
    pub cpus: usize,
    /// One row per worker count.
    pub rows: Vec<WorkersRow>,
    /// What the figures mean on this machine.
    pub note: String,
}

impl WorkersBench {
    /// Runs every worker count. The stream holding `subject` is purged: run it only
    /// against a server of your own (`herald bench` starts one). `connect` is how each
    /// worker connects (its own connection, as a separate process would have).
    pub async fn run(
        &self,
        client: &HeraldClient,
        connect: &ConnectConfig,
        contracts: Arc<dyn Contracts>,
    ) -> Result<WorkersReport, BenchError> {
        let setup = |e: String| BenchError::Setup(e);
        if self.events == 0 || self.workers.is_empty() || self.workers.contains(&0) {
            return Err(setup(
                "--events and every --workers count must be at least 1".into(),
            ));
        }
        let stream_name = contracts
            .route(&self.subject)
            .ok_or_else(|| setup(format!("{} not in the catalog", self.subject)))?
            .stream;
        let stream = client
            .jetstream()
            .get_stream(&stream_name)
            .await
            .map_err(|e| setup(e.to_string()))?;
        let publisher = Publisher::new(
            client.clone(),
            contracts.clone(),
            PublisherConfig::new("herald-bench"),
        );
        let mut rows: Vec<WorkersRow> = Vec::new();
        for &n in &self.workers {
            stream.purge().await.map_err(|e| setup(e.to_string()))?;
            let durable = format!("bench-workers-{n}");
            let _ = stream.delete_consumer(&durable).await;
            let config = ConsumerConfig::new("bench", "workers", self.subject.clone())
                .durable(durable.clone())
                .concurrency(self.concurrency.max(1));
            Consumer::new(client.clone(), contracts.clone(), config.clone())
                .map_err(|e| setup(e.to_string()))?
                .ensure()
                .await
                .map_err(|e| setup(e.to_string()))?;
            let batch: Vec<Outgoing> = (0..self.events)
                .map(|_| Outgoing {
                    subject: self.subject.clone(),
                    payload: Bytes::from(
                        serde_json::to_vec(&payload(&self.template, 0)).unwrap_or_default(),
                    ),
                    options: Publish::build(),
                })
                .collect();
            let mut results = publisher.publish_all(batch);
            while let Some((_, r)) = results.next().await {
                r.map_err(|e| BenchError::Publish(e.to_string()))?;
            }
            let (per_worker, twice, elapsed) =
                self.one_run(n, connect, contracts.clone(), config).await?;
            let _ = stream.delete_consumer(&durable).await;
            let eps = self.events as f64 / elapsed.as_secs_f64().max(1e-9);
            let base = rows.first().map(|r| r.events_per_sec).unwrap_or(eps);
            rows.push(WorkersRow {
                workers: n,
                published: self.events as u64,
                per_worker,
                handled_twice: twice,
                events_per_sec: eps,
                speedup: eps / base.max(1e-9),
            });
        }
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Ok(WorkersReport {
            events: self.events,
            cpus,
            rows,
            note: format!(
                "workers share one durable: each event goes to one worker. On this {cpus}-CPU \
                 machine the server and every worker share the same cores, so these figures \
                 show the mechanism (the work is split, nothing is handled twice) rather than \
                 the scale; run the workers on machines of their own to measure scale."
            ),
        })
    }

    /// `n` workers consume the stored events; returns each one's count, the events
    /// handled twice, and the time from the common start to the last event.
    async fn one_run(
        &self,
        n: usize,
        connect: &ConnectConfig,
        contracts: Arc<dyn Contracts>,
        config: ConsumerConfig,
    ) -> Result<(Vec<u64>, u64, Duration), BenchError> {
        let total = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(Mutex::new(HashSet::with_capacity(self.events)));
        let twice = Arc::new(AtomicU64::new(0));
        let shutdown = Shutdown::new();
        let all_done = Arc::new(tokio::sync::Notify::new());
        let barrier = Arc::new(tokio::sync::Barrier::new(n + 1));
        let target = self.events as u64;
        let mut tasks = Vec::new();
        for i in 0..n {
            let client = HeraldClient::connect(connect.clone().name(format!("bench-worker-{i}")))
                .await
                .map_err(|e| BenchError::Setup(e.to_string()))?;
            let consumer = Consumer::new(client.clone(), contracts.clone(), config.clone())
                .map_err(|e| BenchError::Setup(e.to_string()))?;
            let count = Arc::new(AtomicU64::new(0));
            let handler = {
                let (count, total, seen, twice, shutdown, all_done) = (
                    count.clone(),
                    total.clone(),
                    seen.clone(),
                    twice.clone(),
                    shutdown.clone(),
                    all_done.clone(),
                );
                move |d: herald_runtime::consumer::Delivery| {
                    let fresh = seen
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(d.stream_seq);
                    if !fresh {
                        twice.fetch_add(1, Ordering::Relaxed);
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                    if total.fetch_add(1, Ordering::Relaxed) + 1 == target {
                        shutdown.trigger();
                        all_done.notify_one();
                    }
                    async { Ok(()) }
                }
            };
            let (barrier, shutdown) = (barrier.clone(), shutdown.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let r = consumer.run(handler, shutdown).await;
                client.drain().await;
                r.map(|_| count.load(Ordering::Relaxed))
            }));
        }
        barrier.wait().await;
        let t = Instant::now();
        let finished = tokio::select! {
            _ = all_done.notified() => t.elapsed(),
            _ = tokio::time::sleep(Duration::from_secs(120)) => {
                shutdown.trigger();
                return Err(BenchError::Consume(format!(
                    "{n} workers stalled at {}/{target}",
                    total.load(Ordering::Relaxed)
                )));
            }
        };
        let mut per_worker = Vec::with_capacity(n);
        for task in tasks {
            let count = tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .map_err(|_| BenchError::Consume("a worker did not stop".into()))?
                .map_err(|e| BenchError::Consume(e.to_string()))?
                .map_err(|e| BenchError::Consume(e.to_string()))?;
            per_worker.push(count);
        }
        Ok((per_worker, twice.load(Ordering::Relaxed), finished))
    }
}
