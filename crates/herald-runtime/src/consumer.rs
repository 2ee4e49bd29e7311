//! Durable pull consumers with validation, duplicate suppression, retries with
//! backoff, and the dead-letter queue.
//!
//! Nothing is lost: every delivery ends either acknowledged after its handler
//! succeeded (or as a recorded duplicate), or in the dead-letter queue with the
//! reason (and only then terminated), or NAKed for a later redelivery.
//!
//! | outcome | what happens |
//! |---|---|
//! | handler `Ok` | ack; key recorded in the duplicate store |
//! | key already recorded | ack without calling the handler (counted as duplicate) |
//! | invalid / undecodable / unknown schema | DLQ (`schema_invalid` / `decode_error` / `unknown_schema`), then `Term` |
//! | [`HandlerError::Retry`] or panic | `NAK` with the backoff delay for this delivery count |
//! | [`HandlerError::Reject`] | DLQ (`handler_rejected`), then `Term` |
//! | retryable failure on the last allowed delivery | DLQ (`max_deliveries`), then `Term` |
//!
//! A consumer that dies at the wrong moment is backstopped by
//! [`watch_max_deliveries`], which copies messages named in JetStream's
//! max-deliveries advisories into the DLQ.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, AckKind};
use async_nats::HeaderMap;
use backon::Retryable;
use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::watch;

use crate::connection::HeraldClient;
use crate::contracts::{ConsumerSpec, Contracts, Route};
use crate::dedupe::DedupeStore;
use crate::dlq::{self, reason, DeadLetter};
use crate::headers as h;
use crate::metrics::{self, ConsumeMetrics, ConsumedOutcome, DlqReason, Side};
use crate::poison;
use crate::publisher::Publish;

/// What a handler reports when it does not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerError {
    /// Temporary: redeliver later (NAK with backoff delay).
    Retry(String),
    /// Permanent: this event can never succeed; dead-letter it (`handler_rejected`).
    Reject(String),
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandlerError::Retry(e) => write!(f, "retryable: {e}"),
            HandlerError::Reject(e) => write!(f, "rejected: {e}"),
        }
    }
}

impl std::error::Error for HandlerError {}

impl HandlerError {
    /// A temporary failure from any error: redeliver later.
    pub fn retry(e: impl std::fmt::Display) -> Self {
        HandlerError::Retry(e.to_string())
    }

    /// A permanent failure from any error: dead-letter the event.
    pub fn reject(e: impl std::fmt::Display) -> Self {
        HandlerError::Reject(e.to_string())
    }
}

/// Result type of handlers.
pub type HandlerResult = Result<(), HandlerError>;

/// One validated event handed to a handler.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Subject it was published on.
    pub subject: String,
    /// Raw payload.
    pub payload: Bytes,
    /// Decoded payload.
    pub value: Value,
    /// Headers (empty for bare JSON from non-herald producers). Shared with the
    /// consumer, which needs them if the event is dead-lettered: a copy per delivery
    /// cost more than the rest of settling it.
    pub headers: Arc<HeaderMap>,
    /// `$id` of the schema it satisfied.
    pub schema_id: String,
    /// Delivery count (1 = first delivery).
    pub delivered: i64,
    /// Stream sequence.
    pub stream_seq: u64,
    /// Stream name.
    pub stream: String,
    /// Correlation id (`ce-correlationid`), if any.
    pub correlation_id: Option<String>,
    /// The event's key: its identity field in canonical form, else a non-blank
    /// `Nats-Msg-Id` (the duplicate store scopes it by subject, see [`duplicate_key`]).
    pub key: Option<String>,
}

impl Delivery {
    /// The event as a typed value.
    /// Deserializes from the decoded tree in place, without cloning it.
    pub fn event<T: DeserializeOwned>(&self) -> Result<T, HandlerError> {
        T::deserialize(&self.value).map_err(|e| HandlerError::Reject(e.to_string()))
    }

    /// Publish options continuing this event's correlation and trace (for events a handler emits).
    pub fn follow_up(&self) -> Publish {
        Publish::build().caused_by(&self.headers)
    }

    /// A header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.as_str())
    }
}

/// Counters of one consumer (also exposed to the monitoring module).
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Acked after handler success.
    pub acked: AtomicU64,
    /// Acked as duplicates without calling the handler.
    pub duplicates: AtomicU64,
    /// NAKed for redelivery.
    pub retried: AtomicU64,
    /// Dead-lettered.
    pub dead_lettered: AtomicU64,
    /// Handler panics caught.
    pub panics: AtomicU64,
    /// NAKed at shutdown without being started.
    pub released: AtomicU64,
}

impl ConsumerStats {
    /// Snapshot as plain numbers `(acked, duplicates, retried, dead_lettered, panics, released)`.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            acked: self.acked.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            panics: self.panics.load(Ordering::Relaxed),
            released: self.released.load(Ordering::Relaxed),
        }
    }
}

/// Plain copy of [`ConsumerStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// Acked after handler success.
    pub acked: u64,
    /// Duplicates acked without the handler.
    pub duplicates: u64,
    /// NAKed for redelivery.
    pub retried: u64,
    /// Dead-lettered.
    pub dead_lettered: u64,
    /// Panics caught.
    pub panics: u64,
    /// Released (NAKed unstarted) at shutdown.
    pub released: u64,
}

/// Consumer settings, builder-style.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Consuming service.
    pub service: String,
    /// Subscription name within the service.
    pub name: String,
    /// Subject filter.
    pub filter: String,
    /// Durable name (default `<service>--<name>`).
    pub durable: String,
    /// Handlers running at once.
    pub concurrency: usize,
    /// Unacked deliveries allowed at once (server side).
    pub max_ack_pending: i64,
    /// Time a delivery may stay unacked before the server redelivers it.
    pub ack_wait: Duration,
    /// Deliveries before dead-lettering.
    pub max_deliver: i64,
    /// NAK delay by delivery count (1st failure uses `backoff[0]`; the last entry repeats).
    pub backoff: Vec<Duration>,
    /// Duplicate store.
    pub dedupe: DedupeStore,
    /// How long in-flight handlers may run after shutdown is requested.
    pub shutdown_grace: Duration,
    /// Longest a pull request waits for messages (bounds shutdown latency when idle).
    pub pull_expires: Duration,
}

impl ConsumerConfig {
    /// A consumer of `service` named `name` on `filter`, with herald's defaults
    /// (concurrency 16, ack wait 30 s, 5 deliveries, backoff 1 s then 5 s, in-memory duplicates).
    pub fn new(
        service: impl Into<String>,
        name: impl Into<String>,
        filter: impl Into<String>,
    ) -> Self {
        let service = service.into();
        let name = name.into();
        ConsumerConfig {
            durable: format!("{service}--{name}"),
            service,
            name,
            filter: filter.into(),
            concurrency: 16,
            max_ack_pending: 1000,
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            backoff: vec![Duration::from_secs(1), Duration::from_secs(5)],
            dedupe: DedupeStore::default(),
            shutdown_grace: Duration::from_secs(10),
            pull_expires: Duration::from_millis(500),
        }
    }

    /// From a catalog consumer declaration.
    pub fn from_def(d: &ConsumerSpec) -> Self {
        let mut c = Self::new(&d.service, &d.name, &d.filter);
        c.durable = d.durable_name();
        c.max_deliver = d.max_deliver;
        c.ack_wait = d.ack_wait;
        c.max_ack_pending = d.max_ack_pending;
        if !d.backoff.is_empty() {
            c.backoff = d.backoff.clone();
        }
        c
    }

    /// Handlers at once.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }
    /// Deliveries before dead-lettering.
    pub fn max_deliver(mut self, n: i64) -> Self {
        self.max_deliver = n.max(1);
        self
    }
    /// Ack wait.
    pub fn ack_wait(mut self, d: Duration) -> Self {
        self.ack_wait = d;
        self
    }
    /// Max ack pending.
    pub fn max_ack_pending(mut self, n: i64) -> Self {
        self.max_ack_pending = n;
        self
    }
    /// NAK backoff schedule.
    pub fn backoff(mut self, b: Vec<Duration>) -> Self {
        self.backoff = b;
        self
    }
    /// Duplicate store.
    pub fn dedupe(mut self, d: DedupeStore) -> Self {
        self.dedupe = d;
        self
    }
    /// Shutdown grace period.
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.shutdown_grace = d;
        self
    }
    /// Durable name override.
    pub fn durable(mut self, name: impl Into<String>) -> Self {
        self.durable = name.into();
        self
    }

    /// The NAK delay after a failed delivery number `delivered` (1-based).
    pub fn delay_for(&self, delivered: i64) -> Duration {
        if self.backoff.is_empty() {
            return Duration::from_secs(1);
        }
        let i = (delivered.max(1) as usize - 1).min(self.backoff.len() - 1);
        self.backoff[i]
    }
}

/// Why a consumer could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// No stream captures the filter.
    #[error("no stream captures {0:?} (run `herald streams apply`)")]
    NoStream(String),
    /// A JetStream request failed.
    #[error("consumer {consumer}: {detail}")]
    Api {
        /// Durable name.
        consumer: String,
        /// Error text.
        detail: String,
    },
}

/// The durable pull consumer configuration for `c` (also what `herald streams apply`
/// creates for catalog consumers).
pub fn pull_config(c: &ConsumerConfig) -> pull::Config {
    pull::Config {
        durable_name: Some(c.durable.clone()),
        filter_subject: c.filter.clone(),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: c.ack_wait,
        max_deliver: c.max_deliver,
        max_ack_pending: c.max_ack_pending,
        ..Default::default()
    }
}

/// A durable consumer bound to a catalog and a handler.
pub struct Consumer {
    client: HeraldClient,
    contracts: Arc<dyn Contracts>,
    config: ConsumerConfig,
    stats: Arc<ConsumerStats>,
    stream: String,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("durable", &self.config.durable)
            .field("stream", &self.stream)
            .finish()
    }
}

/// The stream whose subjects cover `filter`.
pub fn stream_for_filter(contracts: &dyn Contracts, filter: &str) -> Option<String> {
    contracts
        .streams()
        .into_iter()
        .find(|s| s.subjects.iter().any(|p| filter_within(filter, p)))
        .map(|s| s.name)
}

/// Whether every subject matched by `filter` is matched by `pattern`.
fn filter_within(filter: &str, pattern: &str) -> bool {
    let f: Vec<&str> = filter.split('.').collect();
    let p: Vec<&str> = pattern.split('.').collect();
    for (i, pt) in p.iter().enumerate() {
        match (*pt, f.get(i)) {
            (">", Some(_)) => return true,
            ("*", Some(ft)) if *ft != ">" => {}
            (a, Some(b)) if a == *b => {}
            _ => return false,
        }
    }
    f.len() == p.len()
}

/// Signals a running consumer to shut down gracefully.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Sender<bool>);

impl Shutdown {
    /// A new, untriggered shutdown signal.
    pub fn new() -> Self {
        Shutdown(watch::channel(false).0)
    }

    /// Requests shutdown.
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }

    /// Whether shutdown was requested.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown is requested (at once if it already was).
    pub async fn requested(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    fn subscribe(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

/// Resolves on SIGINT or SIGTERM (for `herald consume` and services).
pub async fn termination_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

impl Consumer {
    /// A consumer for `config` reading from the stream the catalog assigns to its filter.
    pub fn new(
        client: HeraldClient,
        contracts: Arc<dyn Contracts>,
        config: ConsumerConfig,
    ) -> Result<Self, ConsumeError> {
        let stream = stream_for_filter(contracts.as_ref(), &config.filter)
            .ok_or_else(|| ConsumeError::NoStream(config.filter.clone()))?;
        Ok(Consumer {
            client,
            contracts,
            config,
            stats: Arc::new(ConsumerStats::default()),
            stream,
        })
    }

    /// Counters.
    pub fn stats(&self) -> Arc<ConsumerStats> {
        self.stats.clone()
    }

    /// The stream read.
    pub fn stream_name(&self) -> &str {
        &self.stream
    }

    /// The settings.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    fn api(&self, e: impl std::fmt::Display) -> ConsumeError {
        ConsumeError::Api {
            consumer: self.config.durable.clone(),
            detail: e.to_string(),
        }
    }

    /// Creates the durable consumer (or reuses it when it exists).
    pub async fn ensure(
        &self,
    ) -> Result<jetstream::consumer::Consumer<pull::Config>, ConsumeError> {
        let js = self.client.jetstream();
        let stream = js.get_stream(&self.stream).await.map_err(|e| self.api(e))?;
        // Look the durable up first: `herald streams apply` creates every catalog
        // consumer's durable, and services' credentials may not create consumers.
        if let Ok(existing) = stream
            .get_consumer::<pull::Config>(&self.config.durable)
            .await
        {
            let c = existing.cached_info().config.clone();
            let same = c.filter_subject == self.config.filter
                && c.ack_wait == self.config.ack_wait
                && c.max_deliver == self.config.max_deliver
                && c.max_ack_pending == self.config.max_ack_pending;
            if same {
                return Ok(existing);
            }
        }
        let cfg = pull_config(&self.config);
        match stream.create_consumer(cfg).await {
            Ok(c) => Ok(c),
            Err(create_err) => {
                // Typically: the durable exists with a different configuration, which the
                // server refuses to change in place. Keep consuming with it, loudly.
                let existing = stream
                    .get_consumer(&self.config.durable)
                    .await
                    .map_err(|_| self.api(&create_err))?;
                tracing::warn!(
                    consumer = %self.config.durable,
                    error = %create_err,
                    "durable consumer exists with another configuration; using it as is"
                );
                Ok(existing)
            }
        }
    }

    /// Consumes until `shutdown` is triggered: stops pulling, NAKs fetched-but-unstarted
    /// messages, waits up to `shutdown_grace` for running handlers (NAKing those still
    /// running after it), then flushes the connection so every ack has left.
    ///
    /// Handlers run as futures of this task (up to `concurrency` at once), not as spawned
    /// tasks: a handler with CPU-heavy work should move it to `tokio::task::spawn_blocking`.
    pub async fn run<F, Fut>(
        &self,
        handler: F,
        shutdown: Shutdown,
    ) -> Result<StatsSnapshot, ConsumeError>
    where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let consumer = self.ensure().await?;
        // Replays of this consumer's dead letters arrive through a second durable (see
        // `crate::replay`) and join the same pool of running handlers.
        let (replay_tx, mut replay_rx) = tokio::sync::mpsc::channel(16);
        let replays = crate::replay::receive(
            self.client.clone(),
            self.config.clone(),
            replay_tx,
            shutdown.subscribe(),
        );
        let concurrency = self.config.concurrency.max(1);
        let mut stop = shutdown.subscribe();
        let (abort_tx, _) = watch::channel(false);
        let ctx = Ctx {
            contracts: self.contracts.clone(),
            config: self.config.clone(),
            stats: self.stats.clone(),
            dlq_js: self.client.jetstream().clone(),
            in_flight: Arc::default(),
            stream: self.stream.clone(),
            plans: std::sync::Mutex::new(std::collections::HashMap::new()),
            filter_plan: std::sync::OnceLock::new(),
        };
        // The backlog gauges (`herald_consumer_pending_messages`, ...) come from one
        // source only, `herald watch`: a consumer exporting them too, with the same labels
        // and a lag of its own, made every backlog rule fire once per exporting target.
        // Up to `concurrency` deliveries are handled at once, as futures of this task
        // rather than one spawned task each: spawning cost more than the work of a
        // typical delivery, and settling (acking) from one task acks in the order the
        // handlers finish, like a plain pull loop. A handler doing heavy CPU work should
        // move it to `tokio::task::spawn_blocking` itself.
        let mut running = FuturesUnordered::new();
        let process = |msg: jetstream::Message, replay: bool| {
            let mut abort = abort_tx.subscribe();
            let (ctx, handler) = (&ctx, &handler);
            async move { ctx.process(msg, handler, &mut abort, replay).await }
        };
        // Pull in bounded batches: memory and the number of "fetched but not started"
        // messages (NAKed at shutdown) stay the same whatever the backlog, and the server
        // never has more than `max_ack_pending` unacked deliveries out.
        let want = (concurrency * 4)
            .clamp(64, 256)
            .min(self.config.max_ack_pending.max(1) as usize);
        let conn_stats = self.client.nats().statistics();
        let mut connects = conn_stats.connects.load(Ordering::Relaxed);
        // A pull request for the next batch goes out when half of the current one has
        // arrived, so the server is never left waiting for the client's next request (a
        // round trip and a new inbox per batch cost about a tenth of the consume rate).
        // nats-server hands messages to waiting requests in turn, so both outstanding
        // batches are read at once: reading them one after the other held the second's
        // messages until the first ended, up to its expiry at low rates. At most two
        // batches are outstanding: memory stays bounded.
        let pull = || async {
            let batch = consumer
                .batch()
                .max_messages(want)
                .expires(self.config.pull_expires)
                .messages()
                .await;
            // nats-server 2.9 sometimes ends a part-filled pull request at its expiry
            // without the 408 that tells the client so; async-nats then waits 5 s more
            // before ending the batch, while events queue up. Stop waiting for a batch
            // a little after its expiry (the server sends nothing after it) and pull again.
            let grace = (self.config.pull_expires / 2)
                .clamp(Duration::from_millis(250), Duration::from_secs(2));
            let over = tokio::time::Instant::now() + self.config.pull_expires + grace;
            batch.map(|batch| Pull {
                batch,
                over,
                received: 0,
            })
        };
        let pull_loop = async {
            let mut pulls: Vec<Pull> = Vec::with_capacity(2);
            // One timer, moved to the earliest batch's end when that changes.
            let over = tokio::time::sleep_until(tokio::time::Instant::now());
            tokio::pin!(over);
            let mut over_at = None;
            loop {
                if *stop.borrow() {
                    break;
                }
                // A message the client cannot decode drops the connection on every delivery:
                // after a reconnect, find such deliveries and settle them another way.
                let now = conn_stats.connects.load(Ordering::Relaxed);
                if now != connects {
                    connects = now;
                    self.sweep_undecodable(&ctx).await;
                }
                let ask = match pulls.as_slice() {
                    [] => true,
                    [only] => only.received >= want / 2 && want > 1,
                    _ => false,
                };
                if ask {
                    match pull().await {
                        Ok(p) => pulls.push(p),
                        Err(e) if pulls.is_empty() => {
                            tracing::warn!(error = %e, "pull failed; retrying");
                            tokio::select! {
                                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                                _ = stop.changed() => {}
                                Some(_) = running.next(), if !running.is_empty() => {}
                            }
                            continue;
                        }
                        Err(e) => tracing::debug!(error = %e, "early pull failed"),
                    }
                }
                let earliest = pulls.iter().map(|p| p.over).min();
                if earliest != over_at {
                    over_at = earliest;
                    if let Some(at) = earliest {
                        over.as_mut().reset(at);
                    }
                }
                if running.len() >= concurrency {
                    // Every slot busy: wait for one (or for shutdown).
                    tokio::select! {
                        _ = running.next() => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
                let next = tokio::select! {
                    biased;
                    Some(_) = running.next(), if !running.is_empty() => continue,
                    Some(replayed) = replay_rx.recv() => {
                        if *stop.borrow() {
                            release(replayed, &self.stats).await;
                        } else {
                            running.push(process(replayed, true));
                        }
                        continue;
                    }
                    next = next_of_any(&mut pulls) => next,
                    // Polled last: only when nothing fetched is waiting to be read.
                    _ = &mut over => {
                        let now = tokio::time::Instant::now();
                        pulls.retain(|p| p.over > now);
                        continue;
                    }
                };
                let (i, msg) = match next {
                    (i, Some(Ok(m))) => (i, m),
                    (i, Some(Err(e))) => {
                        tracing::debug!(error = %e, "batch ended");
                        pulls.remove(i);
                        continue;
                    }
                    (i, None) => {
                        pulls.remove(i);
                        continue;
                    }
                };
                if *stop.borrow() {
                    // Fetched but not started: hand it back at once, with the rest.
                    release(msg, &self.stats).await;
                    break;
                }
                pulls[i].received += 1;
                running.push(process(msg, false));
            }
            // What the outstanding requests brought, or bring until they expire, goes back.
            let stats = &self.stats;
            futures::future::join_all(
                pulls
                    .iter_mut()
                    .map(|p| release_rest(&mut p.batch, p.over, stats)),
            )
            .await;
        };
        futures::join!(pull_loop, replays);
        // Replays fetched but never started go back at once.
        replay_rx.close();
        while let Ok(m) = replay_rx.try_recv() {
            release(m, &self.stats).await;
        }
        // Let running handlers finish within the grace period, then NAK the rest.
        let deadline = tokio::time::Instant::now() + self.config.shutdown_grace;
        loop {
            tokio::select! {
                next = running.next() => if next.is_none() { break },
                _ = tokio::time::sleep_until(deadline) => {
                    let _ = abort_tx.send(true);
                    while running.next().await.is_some() {}
                    break;
                }
            }
        }
        drop(running);
        let _ = self.client.nats().flush().await;
        Ok(self.stats.snapshot())
    }
}

impl Consumer {
    /// Dead-letters (reason `decode_error`, raw bytes kept) and terminates every delivered,
    /// unacknowledged message on this consumer's filter whose header block the client
    /// cannot parse; see [`crate::poison`].
    async fn sweep_undecodable(&self, ctx: &Ctx) {
        let js = self.client.jetstream();
        let durable = &self.config.durable;
        let info = match js.get_stream(&self.stream).await {
            Ok(s) => s.consumer_info(durable).await,
            Err(e) => {
                tracing::warn!(error = %e, consumer = %durable, "undecodable-message sweep: stream info failed");
                return;
            }
        };
        let info = match info {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(error = %e, consumer = %durable, "undecodable-message sweep: consumer info failed");
                return;
            }
        };
        let from = info.ack_floor.stream_sequence + 1;
        let to = info
            .delivered
            .stream_sequence
            .min(from + poison::SWEEP_LIMIT - 1);
        for seq in from..=to {
            let m = match poison::get_stored(&self.client, &self.stream, seq).await {
                Ok(Some(m)) => m,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, seq, consumer = %durable, "undecodable-message sweep: message get failed");
                    return;
                }
            };
            if !poison::on_filter(&self.config.filter, &m.subject) {
                continue;
            }
            let Some(problem) = poison::header_block_problem(&m.header_block) else {
                continue;
            };
            let mut hm = HeaderMap::new();
            hm.insert(
                poison::RAW_HEADERS,
                poison::encode_block(&m.header_block).as_str(),
            );
            let error = format!("the NATS client cannot decode this message: {problem}");
            let dl = DeadLetter {
                subject: &m.subject,
                payload: m.payload.clone(),
                headers: Some(&hm),
                reason: reason::DECODE_ERROR,
                error: &error,
                consumer: durable,
                stream: &self.stream,
                stream_seq: seq,
                deliveries: 0,
            };
            let dest = if self.contracts.route(&m.subject).is_some() {
                m.subject.clone()
            } else {
                self.config.filter.clone()
            };
            match dlq::dead_letter(&ctx.dlq_js, dl).await {
                Ok(_) => {
                    let term = poison::term_subject(&self.stream, durable, seq);
                    if let Err(e) = self.client.nats().publish(term, "+TERM".into()).await {
                        tracing::warn!(error = %e, seq, "could not terminate an undecodable message");
                    }
                    let _ = self.client.nats().flush().await;
                    // The same event the consume path emits per dead letter (`herald consume`
                    // prints them), at warn: a message no client can decode is worth a look.
                    tracing::warn!(target: "herald::dead_letter", subject = %m.subject,
                        reason = reason::DECODE_ERROR, %error, seq, consumer = %durable,
                        "undecodable message dead-lettered");
                    self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    metrics::record_consumed(
                        &self.config.service,
                        &dest,
                        ConsumedOutcome::DeadLetter,
                    );
                    if let Some(why) = DlqReason::parse(reason::DECODE_ERROR) {
                        metrics::record_dlq(&self.config.service, &dest, why);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, seq, consumer = %durable, "dead-letter publish failed for an undecodable message");
                    metrics::record_dlq_write_failure(&self.config.service, &dest);
                }
            }
        }
    }
}

struct Ctx {
    contracts: Arc<dyn Contracts>,
    config: ConsumerConfig,
    stats: Arc<ConsumerStats>,
    dlq_js: jetstream::Context,
    stream: String,
    /// Keys whose handler is running (or whose key is still being recorded) in this
    /// run. A redelivery of such a key (its `ack_wait` ran out meanwhile) is NAKed
    /// with a delay instead of being handed to a second handler.
    in_flight: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Per catalog subject seen, its route and metric handles (see [`SubjectPlan`]).
    plans: std::sync::Mutex<std::collections::HashMap<String, Arc<SubjectPlan>>>,
    /// The plan for subjects the catalog does not know: metrics under the filter
    /// (registered on the first such delivery, so a clean run shows no filter series).
    filter_plan: std::sync::OnceLock<Arc<SubjectPlan>>,
}

/// The least time a consumer holds a delivery with progress acks while it retries
/// recording a handled event's key (else a redelivery runs the handler again): enough
/// for a leader election of the store's stream; `ack_wait` when that is longer.
const RECORD_PATIENCE: Duration = Duration::from_secs(10);

/// The same for dead-lettering on the final delivery (else the event is lost): longer,
/// because losing the event is worse than holding one delivery.
const DEAD_LETTER_PATIENCE: Duration = Duration::from_secs(30);

/// Runs `attempt` until it succeeds, `deadline` passes or shutdown aborts, keeping `msg`
/// ours meanwhile: each failure sends a progress ack, which restarts the server's
/// `ack_wait`, so no redelivery to another worker starts while we retry. Returns the last
/// error when it gives up.
async fn hold_retrying<F, Fut>(
    msg: &jetstream::Message,
    deadline: Instant,
    abort: &mut watch::Receiver<bool>,
    mut attempt: F,
) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut delay = Duration::from_millis(50);
    loop {
        let error = match attempt().await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() + delay >= deadline || *abort.borrow() {
            return Err(error);
        }
        let _ = msg.ack_with(AckKind::Progress).await;
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = abort.wait_for(|a| *a) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// Most subjects a consumer keeps a [`SubjectPlan`] for (a wildcard filter over a
/// wildcard catalog subject could otherwise grow the map without end).
const MAX_PLANS: usize = 4096;

/// What handling deliveries of one subject needs, worked out on its first delivery:
/// the catalog route and pre-registered metric handles. Without it each delivery
/// paid for a catalog lookup and, per metric, a label vector and a registry lookup.
struct SubjectPlan {
    /// `None` for a subject the catalog does not know.
    route: Option<Route>,
    /// Labelled with the catalog subject, or with the filter for unknown subjects
    /// (bounded cardinality: never an arbitrary subject someone managed to publish).
    metrics: ConsumeMetrics,
}

/// NAKs a fetched message that was never started (shutdown).
async fn release(msg: jetstream::Message, stats: &ConsumerStats) {
    let _ = msg.ack_with(AckKind::Nak(None)).await;
    stats.released.fetch_add(1, Ordering::Relaxed);
}

/// One outstanding pull request: its messages, when to stop waiting for them, and how
/// many have arrived.
struct Pull {
    batch: pull::Batch,
    over: tokio::time::Instant,
    received: usize,
}

/// The next message of whichever outstanding batch has one, with the batch's index
/// (`None` for a batch that ended). Never resolves while there is no batch.
async fn next_of_any(
    pulls: &mut [Pull],
) -> (usize, Option<Result<jetstream::Message, async_nats::Error>>) {
    futures::future::poll_fn(|cx| {
        for (i, p) in pulls.iter_mut().enumerate() {
            if let std::task::Poll::Ready(next) = p.batch.poll_next_unpin(cx) {
                return std::task::Poll::Ready((i, next));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// NAKs what is left of a batch at shutdown, waiting for it no later than `over` (a
/// little after the pull request expired).
async fn release_rest(batch: &mut pull::Batch, over: tokio::time::Instant, stats: &ConsumerStats) {
    while let Ok(Some(next)) = tokio::time::timeout_at(over, batch.next()).await {
        match next {
            Ok(msg) => release(msg, stats).await,
            Err(_) => break,
        }
    }
}

/// Where a delivery comes from: its stream, stream sequence and delivery count.
struct Origin<'a> {
    stream: &'a str,
    seq: u64,
    delivered: i64,
}

enum Verdict {
    Ack,
    Duplicate,
    Nak(Duration),
    DeadLetter(&'static str, String),
}

impl Ctx {
    async fn process<F, Fut>(
        &self,
        msg: jetstream::Message,
        handler: &F,
        abort: &mut watch::Receiver<bool>,
        replay: bool,
    ) where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let mut msg = msg;
        // A replay names its original subject; it must lie inside this consumer's filter.
        let (subject, stream) = if replay {
            match crate::replay::original_subject(&msg, &self.config.filter) {
                Some(s) => (s, crate::REPLAY_STREAM),
                None => {
                    tracing::error!(
                        consumer = %self.config.durable,
                        subject = %msg.subject,
                        "replay without a Herald-Replay-Subject inside this consumer's filter; terminated"
                    );
                    let _ = msg.ack_with(AckKind::Term).await;
                    return;
                }
            }
        } else {
            (msg.subject.to_string(), self.stream.as_str())
        };
        let (delivered, stream_seq) = msg
            .info()
            .map(|i| (i.delivered, i.stream_sequence))
            .unwrap_or((1, 0));
        // The headers move out of the message (acking needs only its reply subject).
        let headers = Arc::new(msg.message.headers.take().unwrap_or_default());
        let plan = self.plan(&subject);
        let route = plan.route.as_ref();
        let hint = headers.get(h::CE_DATASCHEMA).map(|v| v.as_str());
        let verdict = match self
            .contracts
            .validate_received(&subject, hint, &msg.payload)
        {
            Err(e) => {
                let schema = route.map_or("unknown", |r| r.schema.as_str());
                metrics::record_refusal(schema, Side::Consume, e.reason());
                let r = match e.reason() {
                    "decode_error" | "too_large" => reason::DECODE_ERROR,
                    "unknown_schema" | "unknown_subject" => reason::UNKNOWN_SCHEMA,
                    _ => reason::SCHEMA_INVALID,
                };
                Verdict::DeadLetter(r, e.to_string())
            }
            Ok(valid) => {
                if let Some(age) = headers
                    .get(h::CE_TIME)
                    .and_then(|t| metrics::event_age(t.as_str(), std::time::SystemTime::now()))
                {
                    plan.metrics.record_event_age(age);
                }
                let key = duplicate_key(&subject, route, &valid.value, &headers);
                let seen = match &key {
                    Some(k) => self.config.dedupe.seen(k).await,
                    None => Ok(false),
                };
                match seen {
                    Ok(true) => Verdict::Duplicate,
                    Err(e) => {
                        Verdict::Nak(self.config.delay_for(delivered).min(Duration::from_secs(1)))
                            .log(&format!("duplicate store unavailable: {e}"))
                    }
                    Ok(false) if key.as_ref().is_some_and(|k| !self.claim(k)) => {
                        // Another worker of this process is still handling this key.
                        Verdict::Nak(self.config.delay_for(delivered))
                    }
                    Ok(false) => {
                        let _release = key.clone().map(|k| InFlight(self.in_flight.clone(), k));
                        let delivery = Delivery {
                            // A received value a child process or C library cannot
                            // take (NUL) is treated as absent, never passed on.
                            correlation_id: headers
                                .get(h::CE_CORRELATIONID)
                                .map(|v| v.as_str().to_string())
                                .filter(|v| h::check_value("correlation id", v).is_ok()),
                            subject: subject.clone(),
                            payload: msg.payload.clone(),
                            value: valid.value,
                            headers: headers.clone(),
                            schema_id: valid.schema_id,
                            delivered,
                            stream_seq,
                            stream: stream.to_string(),
                            // The handler sees the event's key, not the subject-scoped
                            // form the duplicate store uses.
                            key: key.as_deref().map(|k| {
                                k.strip_prefix(subject.as_str())
                                    .and_then(|rest| rest.strip_prefix('/'))
                                    .unwrap_or(k)
                                    .to_string()
                            }),
                        };
                        let run = AssertUnwindSafe(handler(delivery)).catch_unwind();
                        let handler_started = Instant::now();
                        let outcome = tokio::select! {
                            r = run => Some(r),
                            _ = abort.wait_for(|a| *a) => None,
                        };
                        if outcome.is_some() {
                            plan.metrics
                                .record_process_duration(handler_started.elapsed());
                        }
                        match outcome {
                            None => Verdict::Nak(Duration::ZERO),
                            Some(Ok(Ok(()))) => {
                                if let Some(k) = &key {
                                    self.record_processed(k, &msg, abort).await;
                                }
                                Verdict::Ack
                            }
                            Some(Ok(Err(HandlerError::Reject(e)))) => {
                                Verdict::DeadLetter(reason::HANDLER_REJECTED, e)
                            }
                            Some(Ok(Err(HandlerError::Retry(e)))) => {
                                self.retry_or_give_up(delivered, e)
                            }
                            Some(Err(panic)) => {
                                self.stats.panics.fetch_add(1, Ordering::Relaxed);
                                let text = panic
                                    .downcast_ref::<&str>()
                                    .map(|s| s.to_string())
                                    .or_else(|| panic.downcast_ref::<String>().cloned())
                                    .unwrap_or_else(|| "handler panicked".into());
                                self.retry_or_give_up(delivered, format!("panic: {text}"))
                            }
                        }
                    }
                }
            }
        };
        let dead_letter_reason = match &verdict {
            Verdict::DeadLetter(why, _) => DlqReason::parse(why),
            _ => None,
        };
        let outcome = self
            .settle(
                msg,
                &subject,
                &headers,
                Origin {
                    stream,
                    seq: stream_seq,
                    delivered,
                },
                verdict,
                abort,
            )
            .await;
        plan.metrics.record_consumed(outcome);
        if outcome == ConsumedOutcome::DeadLetter {
            if let Some(why) = dead_letter_reason {
                plan.metrics.record_dlq(why);
            }
        }
    }

    /// The plan for deliveries on `subject`, built on its first delivery.
    fn plan(&self, subject: &str) -> Arc<SubjectPlan> {
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = plans.get(subject) {
            return p.clone();
        }
        let Some(route) = self.contracts.route(subject) else {
            return self
                .filter_plan
                .get_or_init(|| {
                    Arc::new(SubjectPlan {
                        route: None,
                        metrics: ConsumeMetrics::new(&self.config.service, &self.config.filter),
                    })
                })
                .clone();
        };
        let plan = Arc::new(SubjectPlan {
            route: Some(route),
            metrics: ConsumeMetrics::new(&self.config.service, subject),
        });
        if plans.len() < MAX_PLANS {
            plans.insert(subject.to_string(), plan.clone());
        }
        plan
    }

    /// Marks `key` as being handled here; false when it already is.
    fn claim(&self, key: &str) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string())
    }

    /// Records `key` as processed after the handler succeeded. The effect has happened, so
    /// giving up early would let a redelivery run the handler a second time.
    async fn record_processed(
        &self,
        key: &str,
        msg: &jetstream::Message,
        abort: &mut watch::Receiver<bool>,
    ) {
        // A leader election of the store's stream can outlast `ack_wait`.
        let deadline = Instant::now() + RECORD_PATIENCE.max(self.config.ack_wait);
        let attempt = (self.config.ack_wait / 2).max(Duration::from_millis(100));
        let store = &self.config.dedupe;
        let held = hold_retrying(msg, deadline, abort, || async move {
            match tokio::time::timeout(attempt, store.record(key)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {attempt:?}")),
            }
        })
        .await;
        if let Err(error) = held {
            tracing::warn!(error = %error, key, "could not record processed key");
        }
    }

    /// Writes a dead letter. A NAK after the final delivery is a dead end (the server
    /// stops redelivering and only sends its max-deliveries advisory), so on the final
    /// delivery a failed write is retried while the delivery is held, for as long as
    /// [`DEAD_LETTER_PATIENCE`] or `ack_wait`: enough for the DLQ stream to elect a leader.
    /// Every failed attempt is counted in `herald_dlq_write_failures_total`.
    async fn write_dead_letter(
        &self,
        dl: DeadLetter<'_>,
        msg: &jetstream::Message,
        abort: &mut watch::Receiver<bool>,
    ) -> Result<(), String> {
        let last = dl.deliveries >= self.config.max_deliver;
        let deadline = Instant::now()
            + if last {
                DEAD_LETTER_PATIENCE.max(self.config.ack_wait)
            } else {
                Duration::ZERO
            };
        let service = &self.config.service;
        let js = &self.dlq_js;
        let (subject, consumer, seq) = (dl.subject, dl.consumer, dl.stream_seq);
        hold_retrying(msg, deadline, abort, || {
            dlq::dead_letter(js, dl.clone()).map(|written| {
                written.map(drop).map_err(|e| {
                    metrics::record_dlq_write_failure(service, subject);
                    if last {
                        tracing::warn!(error = %e, consumer, seq,
                            "dead-letter publish failed on the final delivery; holding it and retrying");
                    }
                    e.to_string()
                })
            })
        })
        .await
    }

    fn retry_or_give_up(&self, delivered: i64, error: String) -> Verdict {
        if delivered >= self.config.max_deliver {
            Verdict::DeadLetter(reason::MAX_DELIVERIES, error)
        } else {
            Verdict::Nak(self.config.delay_for(delivered))
        }
    }

    async fn settle(
        &self,
        msg: jetstream::Message,
        subject: &str,
        headers: &HeaderMap,
        at: Origin<'_>,
        verdict: Verdict,
        abort: &mut watch::Receiver<bool>,
    ) -> ConsumedOutcome {
        let Origin {
            stream,
            seq: stream_seq,
            delivered,
        } = at;
        match verdict {
            Verdict::Ack => {
                let _ = msg.ack().await;
                self.stats.acked.fetch_add(1, Ordering::Relaxed);
                ConsumedOutcome::Ack
            }
            Verdict::Duplicate => {
                let _ = msg.ack().await;
                self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                ConsumedOutcome::Duplicate
            }
            Verdict::Nak(delay) => {
                let kind = if delay.is_zero() {
                    AckKind::Nak(None)
                } else {
                    AckKind::Nak(Some(delay))
                };
                let _ = msg.ack_with(kind).await;
                self.stats.retried.fetch_add(1, Ordering::Relaxed);
                ConsumedOutcome::Retry
            }
            Verdict::DeadLetter(why, error) => {
                let dl = DeadLetter {
                    subject,
                    payload: msg.payload.clone(),
                    headers: Some(headers),
                    reason: why,
                    error: &error,
                    consumer: &self.config.durable,
                    stream,
                    stream_seq,
                    deliveries: delivered,
                };
                match self.write_dead_letter(dl, &msg, abort).await {
                    Ok(()) => {
                        // One event per dead letter, for tools that report them as they
                        // happen (`herald consume`).
                        tracing::info!(target: "herald::dead_letter", subject, reason = why,
                            %error, seq = stream_seq, consumer = %self.config.durable, "dead-lettered");
                        // Only now that the DLQ holds it may the original go.
                        let _ = msg.double_ack_with(AckKind::Term).await;
                        self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
                        ConsumedOutcome::DeadLetter
                    }
                    Err(e) => {
                        tracing::error!(
                            error = %e,
                            consumer = %self.config.durable,
                            stream = %stream,
                            seq = stream_seq,
                            reason = why,
                            "dead-letter publish failed; NAKed for redelivery"
                        );
                        let _ = msg
                            .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                            .await;
                        self.stats.retried.fetch_add(1, Ordering::Relaxed);
                        ConsumedOutcome::Retry
                    }
                }
            }
        }
    }
}

trait LogVerdict {
    fn log(self, text: &str) -> Self;
}

impl LogVerdict for Verdict {
    fn log(self, text: &str) -> Self {
        tracing::warn!("{text}");
        self
    }
}

/// Backstop for consumers that died at the wrong moment: listens for JetStream's
/// max-deliveries advisories on `stream` and copies each named message (by stream
/// sequence) into the DLQ with reason `max_deliveries`. The DLQ's message id
/// (`dlq:<stream>:<seq>:<consumer>`) makes this a no-op when the consumer already
/// dead-lettered it within the DLQ's duplicate window. Runs until `shutdown`.
pub async fn watch_max_deliveries(
    client: HeraldClient,
    stream: String,
    shutdown: Shutdown,
) -> Result<u64, ConsumeError> {
    watch_max_deliveries_of(client, stream, None, shutdown).await
}

/// [`watch_max_deliveries`] for one durable (`Some`) or every consumer of the stream
/// (`None`). A service's generated credentials allow the advisories of its own durables
/// only. A refused subscription is an error, logged and counted in
/// `herald_subscriptions_refused_total`: the backstop must never be off silently.
pub async fn watch_max_deliveries_of(
    client: HeraldClient,
    stream: String,
    durable: Option<String>,
    shutdown: Shutdown,
) -> Result<u64, ConsumeError> {
    let subject = format!(
        "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{}",
        durable.as_deref().unwrap_or("*")
    );
    let mut sub = match client.subscribe_checked(&subject).await {
        Ok(s) => s,
        Err(detail) => {
            tracing::error!(%subject, %detail, "max-deliveries backstop is OFF: subscription refused");
            metrics::record_subscription_refused("max_deliveries_advisory");
            return Err(ConsumeError::Api {
                consumer: durable.unwrap_or_else(|| "*".into()),
                detail,
            });
        }
    };
    let mut stop = shutdown.subscribe();
    let mut copied = 0;
    let mut writes = tokio::task::JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        let m = tokio::select! {
            m = sub.next() => m,
            _ = stop.changed() => continue,
        };
        let Some(m) = m else { break };
        let Ok(adv) = serde_json::from_slice::<Value>(&m.payload) else {
            continue;
        };
        let seq = adv["stream_seq"].as_u64().unwrap_or(0);
        let consumer = adv["consumer"].as_str().unwrap_or("").to_string();
        let deliveries = adv["deliveries"].as_i64().unwrap_or(0);
        let Ok(s) = client.jetstream().get_stream(&stream).await else {
            tracing::error!(%stream, seq, "max-deliveries backstop: stream info failed");
            continue;
        };
        let (subject, payload, headers, why, error) = match s.get_raw_message(seq).await {
            Ok(raw) => (
                raw.subject.to_string(),
                raw.payload,
                raw.headers,
                reason::MAX_DELIVERIES,
                "max deliveries reached (advisory)".to_string(),
            ),
            // The client could not read it: perhaps a header block it cannot decode.
            Err(e) => match poison::get_stored(&client, &stream, seq).await {
                Ok(Some(m)) => match poison::header_block_problem(&m.header_block) {
                    Some(problem) => {
                        let mut hm = HeaderMap::new();
                        hm.insert(
                            poison::RAW_HEADERS,
                            poison::encode_block(&m.header_block).as_str(),
                        );
                        (
                            m.subject,
                            m.payload,
                            hm,
                            reason::DECODE_ERROR,
                            format!("the NATS client cannot decode this message: {problem}"),
                        )
                    }
                    None => {
                        tracing::error!(error = %e, %stream, seq, "max-deliveries backstop could not read the event");
                        continue;
                    }
                },
                Ok(None) => continue,
                Err(e2) => {
                    tracing::error!(error = %e, retry_error = %e2, %stream, seq, "max-deliveries backstop could not read the event");
                    continue;
                }
            },
        };
        // Retried in its own task, so one slow write (the DLQ electing a leader) does not
        // hold up the advisories behind it.
        let js = client.jetstream().clone();
        let stream = stream.clone();
        writes.spawn(async move {
            let write = || {
                let dl = DeadLetter {
                    subject: &subject,
                    payload: payload.clone(),
                    headers: Some(&headers),
                    reason: why,
                    error: &error,
                    consumer: &consumer,
                    stream: &stream,
                    stream_seq: seq,
                    deliveries,
                };
                dlq::dead_letter(&js, dl)
            };
            let written = write
                .retry(
                    backon::ExponentialBuilder::default()
                        .with_min_delay(Duration::from_millis(100))
                        .with_max_delay(Duration::from_secs(2))
                        .without_max_times()
                        .with_total_delay(Some(DEAD_LETTER_PATIENCE)),
                )
                .notify(|e, _| {
                    tracing::warn!(error = %e, %stream, seq, %consumer, "max-deliveries backstop: dead-letter write failed; retrying");
                    metrics::record_dlq_write_failure(&consumer, &subject);
                })
                .await;
            match written {
                Ok(_) => {
                    tracing::warn!(target: "herald::dead_letter", %subject, reason = why,
                        %error, seq, %consumer, "dead-lettered by the max-deliveries backstop");
                    true
                }
                Err(e) => {
                    tracing::error!(error = %e, %stream, seq, %consumer, "max-deliveries backstop could not dead-letter the event");
                    metrics::record_dlq_write_failure(&consumer, &subject);
                    false
                }
            }
        });
        while let Some(done) = writes.try_join_next() {
            copied += u64::from(done.unwrap_or(false));
        }
    }
    while let Some(done) = writes.join_next().await {
        copied += u64::from(done.unwrap_or(false));
    }
    Ok(copied)
}

/// The duplicate key of a delivery: `<subject>/<identity>`, the event's identity field in
/// canonical form (the schema makes it the idempotency key; the same event republished
/// under another `Nats-Msg-Id`, or with its UUID in upper case, is the same event), scoped
/// by subject because the catalog declares identity per subject (one `step_id` is carried
/// by a step's `started` and `completed` events); else a non-blank `Nats-Msg-Id` for
/// events without an identity.
pub fn duplicate_key(
    subject: &str,
    route: Option<&crate::contracts::Route>,
    value: &Value,
    headers: &HeaderMap,
) -> Option<String> {
    route
        .and_then(|r| value.get(&r.identity_field))
        .and_then(h::canonical_identity)
        .map(|id| format!("{subject}/{id}"))
        .or_else(|| h::received_key(headers))
}

/// Releases a key claimed by `Ctx::claim` when its handling ends, however it ends.
struct InFlight(
    Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    String,
);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
    }
}
