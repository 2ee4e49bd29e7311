//! The NATS side of `herald watch`, and heartbeats for every herald service.
//!
//! Why separate from the pure [`super::Monitor`]: this module only moves
//! data — heartbeats and dead letters in from NATS, consumer info polled from
//! JetStream, alerts out through an [`EventSink`] — so everything that
//! decides *whether* to alert stays unit-testable without a server.
//!
//! What the watcher observes:
//! * `herald.heartbeat.>` (core subscription: liveness is about now, a
//!   replay of old heartbeats would make a dead service look alive);
//! * the dead-letter subjects (`<dlq prefix>.>`, core subscription): each
//!   dead letter counts as a failed delivery of its consumer, and the
//!   validation reasons also as schema violations of the original subject;
//! * every catalog consumer's JetStream info each poll: backlog
//!   (`num_pending`), deliveries (for the failure rate) and the age of its
//!   oldest unprocessed event (for latency); also exported as the
//!   `herald_consumer_*` gauges;
//! * its own connection state (`herald_connection_up`, connectivity alert).

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::jetstream;
use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use herald_contracts::Catalog;
use serde_json::Value;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{
    heartbeat_subject, new_heartbeat, AlertEvent, AlertType, ConsumerSample, Heartbeat, Monitor,
    MonitorConfig, HEARTBEAT_PREFIX,
};
use herald_runtime::metrics::{self, DlqReason, SentOutcome, Side};

use herald_runtime::headers::{DLQ_CONSUMER, DLQ_REASON};
use herald_runtime::publisher::{Publish, Publisher};

/// A boxed future, so [`EventSink`] stays object-safe.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// Why an event could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The event broke its contract: a bug in the sender, never retried.
    #[error("event refused by its contract: {0}")]
    Invalid(String),
    /// NATS did not take it (disconnected, timeout, no stream): retry later.
    #[error("publish failed: {0}")]
    Publish(String),
}

/// Where the watcher and heartbeats send their events. Abstract so the same
/// loop runs over herald's validating publisher or, in tests, over a bare
/// JetStream context ([`JetStreamSink`]).
pub trait EventSink: Send + Sync + 'static {
    /// Validates and publishes `event` on `subject` with `message_id` as the
    /// JetStream deduplication id.
    fn send<'a>(&'a self, subject: &'a str, event: Value, message_id: String) -> SinkFuture<'a>;
}

/// herald's own publisher is the normal sink: it validates, sets the
/// CloudEvents headers, retries within the duplicate window and records the
/// publish metrics.
impl EventSink for Publisher {
    fn send<'a>(&'a self, subject: &'a str, event: Value, message_id: String) -> SinkFuture<'a> {
        Box::pin(async move {
            let payload = serde_json::to_vec(&event).expect("JSON value serializes");
            match self
                .publish_json(subject, payload, Publish::build().message_id(message_id))
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.is_rejection() => Err(SinkError::Invalid(e.to_string())),
                Err(e) => Err(SinkError::Publish(e.to_string())),
            }
        })
    }
}

/// An [`EventSink`] publishing straight to JetStream after validating
/// against the catalog, with CloudEvents headers. Lets heartbeats and alerts
/// flow without a full publisher; records the publish metrics.
#[derive(Clone)]
pub struct JetStreamSink {
    js: jetstream::Context,
    catalog: Arc<Catalog>,
    service: String,
}

impl std::fmt::Debug for JetStreamSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamSink")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl JetStreamSink {
    /// A sink publishing as `service` (the `ce-source`).
    pub fn new(js: jetstream::Context, catalog: Arc<Catalog>, service: impl Into<String>) -> Self {
        Self {
            js,
            catalog,
            service: service.into(),
        }
    }
}

impl EventSink for JetStreamSink {
    fn send<'a>(&'a self, subject: &'a str, event: Value, message_id: String) -> SinkFuture<'a> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            let schema_id = match self.catalog.validate(subject, None, &event) {
                Ok(valid) => valid.schema_id.to_owned(),
                Err(e) => {
                    let schema = self
                        .catalog
                        .subject(subject)
                        .map(|s| s.schema.clone())
                        .unwrap_or_else(|| "unknown".to_owned());
                    metrics::record_validation_failure(&schema, Side::Publish);
                    metrics::record_sent(
                        &self.service,
                        subject,
                        SentOutcome::Invalid,
                        Duration::ZERO,
                    );
                    return Err(SinkError::Invalid(e.to_string()));
                }
            };
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", message_id.as_str());
            headers.insert("Content-Type", "application/json");
            headers.insert("ce-specversion", "1.0");
            headers.insert("ce-id", message_id.as_str());
            headers.insert("ce-source", self.service.as_str());
            headers.insert("ce-type", subject);
            headers.insert("ce-time", super::rfc3339(Utc::now()).as_str());
            headers.insert("ce-dataschema", schema_id.as_str());
            let payload = serde_json::to_vec(&event).expect("JSON value serializes");
            let result = async {
                self.js
                    .publish_with_headers(subject.to_owned(), headers, payload.into())
                    .await
                    .map_err(|e| SinkError::Publish(e.to_string()))?
                    .await
                    .map_err(|e| SinkError::Publish(e.to_string()))
            }
            .await;
            let outcome = match &result {
                Ok(ack) if ack.duplicate => SentOutcome::Duplicate,
                Ok(_) => SentOutcome::Ok,
                Err(_) => SentOutcome::Failed,
            };
            metrics::record_sent(&self.service, subject, outcome, started.elapsed());
            result.map(|_| ())
        })
    }
}

/// A running heartbeat task; stops when dropped or [`stop`](Self::stop)ped.
#[derive(Debug)]
pub struct Heartbeats {
    task: JoinHandle<()>,
    instance_id: Uuid,
}

impl Heartbeats {
    /// The instance id this process announces.
    pub fn instance_id(&self) -> Uuid {
        self.instance_id
    }

    /// Stops sending heartbeats (as a crashed process would).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Heartbeats {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts publishing a [`Heartbeat`] for `service` every `interval` on
/// `herald.heartbeat.<service>`, so `herald watch` can tell the service is
/// alive. Every long-running herald service calls this once at start-up.
/// Failed sends are logged and retried at the next beat.
pub fn spawn_heartbeats(
    sink: Arc<dyn EventSink>,
    service: impl Into<String>,
    interval: Duration,
) -> Heartbeats {
    let service = service.into();
    let instance_id = Uuid::new_v4();
    let started_at = Utc::now();
    let subject = heartbeat_subject(&service);
    let task = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let beat = new_heartbeat(&service, instance_id, interval, started_at, Utc::now());
            let id = beat.heartbeat_id.to_string();
            let json = serde_json::to_value(&beat).expect("Heartbeat serializes");
            if let Err(e) = sink.send(&subject, json, id).await {
                tracing::warn!(%service, error = %e, "heartbeat not sent");
            }
        }
    });
    Heartbeats { task, instance_id }
}

/// Options of `herald watch` beyond the catalog's thresholds.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// The service name alerts are raised as (`herald-watch`).
    pub service: String,
    /// Thresholds and cadences.
    pub monitor: MonitorConfig,
    /// Services expected to heartbeat from the start (a service that never
    /// comes up is reported too).
    pub expect_services: Vec<String>,
}

impl WatchOptions {
    /// Options from the catalog's `[monitoring]` table, raising alerts as
    /// `herald-watch`.
    pub fn from_catalog(catalog: &Catalog) -> Self {
        Self {
            service: "herald-watch".to_owned(),
            monitor: MonitorConfig::from_settings(catalog.monitoring()),
            expect_services: Vec::new(),
        }
    }
}

/// Why the watcher stopped.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// Subscribing to heartbeats or dead letters failed.
    #[error("subscribing to {subject}: {message}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// The error.
        message: String,
    },
}

#[derive(Debug, Clone)]
struct Watched {
    durable: String,
    service: String,
    stream: String,
    filter: String,
}

/// The catalog consumers and the stream each reads from.
fn watched_consumers(catalog: &Catalog) -> Vec<Watched> {
    catalog
        .consumers()
        .iter()
        .filter_map(|c| {
            // A concrete subject the filter covers, to find its topic.
            let sample = c
                .filter
                .split('.')
                .map(|t| if t == "*" || t == ">" { "x" } else { t })
                .collect::<Vec<_>>()
                .join(".");
            let topic = catalog.topics().iter().find(|t| {
                t.subjects
                    .iter()
                    .any(|s| herald_contracts::subject::matches(s, &sample))
            })?;
            Some(Watched {
                durable: c.durable_name(),
                service: c.service.clone(),
                stream: topic.stream.name.clone(),
                filter: c.filter.clone(),
            })
        })
        .collect()
}

/// What the watcher concluded at its last poll, for status displays and
/// for tests that must wait on the watcher rather than on the clock.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WatchStatus {
    /// Polls completed so far.
    pub polls: u64,
    /// Whether its NATS connection was up at the last poll.
    pub connected: bool,
    /// Incidents firing: (alert type, key).
    pub firing: Vec<(AlertType, String)>,
}

struct Subscriptions {
    heartbeats: async_nats::Subscriber,
    dead_letters: async_nats::Subscriber,
    dlq_prefix: String,
}

/// A watcher running in a task (see [`Watcher::start`]).
#[derive(Debug)]
pub struct RunningWatcher {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: JoinHandle<()>,
    status: tokio::sync::watch::Receiver<WatchStatus>,
}

impl RunningWatcher {
    /// Follows the watcher's status, updated after every poll.
    pub fn status(&self) -> tokio::sync::watch::Receiver<WatchStatus> {
        self.status.clone()
    }

    /// Stops the watch loop and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `herald watch`: feeds a [`Monitor`] from NATS and publishes its alerts.
pub struct Watcher {
    client: async_nats::Client,
    js: jetstream::Context,
    catalog: Arc<Catalog>,
    sink: Arc<dyn EventSink>,
    options: WatchOptions,
    monitor: Monitor,
    consumers: Vec<Watched>,
    dead_letters: BTreeMap<String, u64>,
    disconnected_since: Option<DateTime<Utc>>,
    unsent: VecDeque<AlertEvent>,
    status: tokio::sync::watch::Sender<WatchStatus>,
    polls: u64,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("service", &self.options.service)
            .field("consumers", &self.consumers.len())
            .finish_non_exhaustive()
    }
}

impl Watcher {
    /// A watcher over `client`, watching the consumers `catalog` declares,
    /// publishing alerts through `sink`.
    pub fn new(
        client: async_nats::Client,
        catalog: Arc<Catalog>,
        sink: Arc<dyn EventSink>,
        options: WatchOptions,
    ) -> Self {
        let js = jetstream::new(client.clone());
        let consumers = watched_consumers(&catalog);
        let mut monitor = Monitor::new(&options.service, options.monitor.clone());
        let now = Utc::now();
        for service in &options.expect_services {
            monitor.expect_service(service, now);
        }
        Self {
            client,
            js,
            catalog,
            sink,
            options,
            monitor,
            consumers,
            dead_letters: BTreeMap::new(),
            disconnected_since: None,
            unsent: VecDeque::new(),
            status: tokio::sync::watch::Sender::new(WatchStatus::default()),
            polls: 0,
        }
    }

    /// The pure monitor, for inspection.
    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    /// Subscribes to heartbeats and dead letters (confirmed by the server
    /// before returning, so nothing published afterwards is missed), then
    /// runs the watch loop in a task until [`RunningWatcher::stop`].
    pub async fn start(self) -> Result<RunningWatcher, WatchError> {
        let subscriptions = self.subscribe().await?;
        let status = self.status.subscribe();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(self.run_loop(subscriptions, async {
            let _ = stopped.await;
        }));
        Ok(RunningWatcher {
            status,
            stop: Some(stop),
            task,
        })
    }

    /// Subscribes, then watches until `shutdown` completes: the foreground
    /// form `herald watch` uses with Ctrl-C as `shutdown`.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), WatchError> {
        let subscriptions = self.subscribe().await?;
        self.run_loop(subscriptions, shutdown).await;
        Ok(())
    }

    async fn subscribe(&self) -> Result<Subscriptions, WatchError> {
        let subscribe = |subject: String| {
            let client = self.client.clone();
            async move {
                client
                    .subscribe(subject.clone())
                    .await
                    .map_err(|e| WatchError::Subscribe {
                        subject,
                        message: e.to_string(),
                    })
            }
        };
        let heartbeats = subscribe(format!("{HEARTBEAT_PREFIX}>")).await?;
        let dlq_prefix = self.catalog.dlq().subject_prefix.clone();
        let dead_letters = subscribe(format!("{dlq_prefix}.>")).await?;
        // A flush round-trips to the server: after it, the server has both
        // subscriptions.
        self.client
            .flush()
            .await
            .map_err(|e| WatchError::Subscribe {
                subject: format!("{HEARTBEAT_PREFIX}>"),
                message: e.to_string(),
            })?;
        Ok(Subscriptions {
            heartbeats,
            dead_letters,
            dlq_prefix,
        })
    }

    async fn run_loop(mut self, subs: Subscriptions, shutdown: impl Future<Output = ()>) {
        let Subscriptions {
            mut heartbeats,
            mut dead_letters,
            dlq_prefix,
        } = subs;
        let mut ticker = tokio::time::interval(self.options.monitor.poll_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(msg) = heartbeats.next() => self.on_heartbeat(&msg.subject, &msg.payload),
                Some(msg) = dead_letters.next() => {
                    self.on_dead_letter(&dlq_prefix, &msg.subject, msg.headers.as_ref());
                }
                _ = ticker.tick() => self.on_tick().await,
            }
        }
    }

    fn on_heartbeat(&mut self, subject: &str, payload: &[u8]) {
        let now = Utc::now();
        let service = subject.strip_prefix(HEARTBEAT_PREFIX).unwrap_or(subject);
        match self.catalog.validate_bytes(subject, None, payload) {
            Ok((_, value)) => match serde_json::from_value::<Heartbeat>(value) {
                Ok(beat) => {
                    let age = now
                        .signed_duration_since(beat.timestamp)
                        .to_std()
                        .unwrap_or_default();
                    metrics::record_event_age(&self.options.service, HEARTBEAT_SUBJECT, age);
                    self.monitor.heartbeat(&beat, now);
                }
                Err(e) => tracing::warn!(%subject, error = %e, "undecodable heartbeat"),
            },
            Err(e) => {
                tracing::warn!(%subject, error = %e, "invalid heartbeat");
                metrics::record_validation_failure("Heartbeat", Side::Consume);
                self.monitor
                    .schema_violation(subject, Some(service), 1, now);
            }
        }
    }

    fn on_dead_letter(&mut self, prefix: &str, subject: &str, headers: Option<&HeaderMap>) {
        let now = Utc::now();
        let header = |name: &str| {
            headers
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
        };
        let original = subject
            .strip_prefix(prefix)
            .and_then(|s| s.strip_prefix('.'))
            .unwrap_or(subject)
            .to_owned();
        let consumer = header(DLQ_CONSUMER);
        let service = consumer
            .as_deref()
            .and_then(|d| self.consumers.iter().find(|c| c.durable == d))
            .map(|c| c.service.clone());
        if let Some(durable) = &consumer {
            *self.dead_letters.entry(durable.clone()).or_default() += 1;
        }
        let reason = header(DLQ_REASON).and_then(|r| DlqReason::parse(&r));
        if matches!(
            reason,
            Some(
                DlqReason::SchemaInvalid
                    | DlqReason::DecodeError
                    | DlqReason::UnknownSchema
                    | DlqReason::UnknownSubject
                    | DlqReason::TooLarge
            )
        ) {
            self.monitor
                .schema_violation(&original, service.as_deref(), 1, now);
        }
    }

    async fn on_tick(&mut self) {
        self.poll().await;
        self.polls += 1;
        let status = WatchStatus {
            polls: self.polls,
            connected: self.disconnected_since.is_none(),
            firing: self
                .monitor
                .tracker()
                .firing()
                .map(|i| (i.alert.alert_type, i.alert.key.clone()))
                .collect(),
        };
        self.status.send_replace(status);
    }

    async fn poll(&mut self) {
        let now = Utc::now();
        let connected = matches!(
            self.client.connection_state(),
            async_nats::connection::State::Connected
        );
        metrics::set_connection_up(connected);
        if !connected {
            let since = *self.disconnected_since.get_or_insert(now);
            self.monitor.connection(&self.options.service, false, since);
            // Evaluate so the incident starts now; publish once reconnected.
            let events = self.monitor.evaluate(now);
            self.unsent.extend(events);
            return;
        }
        if self.disconnected_since.take().is_some() {
            self.monitor.connection(&self.options.service, true, now);
        }
        // A request caught by an outage would otherwise hold the poll for the
        // client's whole request timeout, blind to the outage itself.
        let budget = self
            .options
            .monitor
            .poll_interval
            .max(Duration::from_secs(2));
        for watched in self.consumers.clone() {
            let sampled = tokio::time::timeout(budget, self.sample(&watched))
                .await
                .ok()
                .flatten();
            if let Some((sample, delivered, age)) = sampled {
                let failed = self
                    .dead_letters
                    .get(&watched.durable)
                    .copied()
                    .unwrap_or(0);
                self.monitor.consumer(&sample, delivered, failed, age);
            }
        }
        let events = self.monitor.evaluate(now);
        self.unsent.extend(events);
        self.flush().await;
    }

    /// One consumer's info, or `None` when its stream or consumer does not
    /// exist (not provisioned yet): nothing to judge.
    async fn sample(&self, w: &Watched) -> Option<(ConsumerSample, u64, Option<Duration>)> {
        let stream = self.js.get_stream(&w.stream).await.ok()?;
        let info = stream.consumer_info(&w.durable).await.ok()?;
        let sample = ConsumerSample {
            durable: w.durable.clone(),
            service: w.service.clone(),
            stream: w.stream.clone(),
            pending: info.num_pending,
            ack_pending: info.num_ack_pending as u64,
        };
        metrics::set_consumer_lag(&w.stream, &w.durable, sample.pending, sample.ack_pending);
        let age = if sample.pending + sample.ack_pending > 0 {
            stream
                .raw_message_builder()
                .sequence(info.ack_floor.stream_sequence + 1)
                .next_by_subject(w.filter.clone())
                .send()
                .await
                .ok()
                .map(|m| {
                    let stored: SystemTime = m.time.into();
                    SystemTime::now()
                        .duration_since(stored)
                        .unwrap_or(Duration::ZERO)
                })
        } else {
            Some(Duration::ZERO)
        };
        Some((sample, info.delivered.consumer_sequence, age))
    }

    async fn flush(&mut self) {
        while let Some(event) = self.unsent.front() {
            let subject = event.alert_type.subject();
            let id = event.alert_id.to_string();
            let json = serde_json::to_value(event).expect("AlertEvent serializes");
            match self.sink.send(&subject, json, id).await {
                Ok(()) => {
                    tracing::info!(
                        alert = %subject,
                        state = ?event.state,
                        summary = %event.summary,
                        "alert published"
                    );
                    self.unsent.pop_front();
                }
                Err(SinkError::Invalid(e)) => {
                    tracing::error!(alert = %subject, error = %e, "alert refused by its contract; dropped");
                    self.unsent.pop_front();
                }
                Err(SinkError::Publish(e)) => {
                    tracing::warn!(alert = %subject, error = %e, "alert not published yet; will retry");
                    break;
                }
            }
        }
    }
}

/// The subject pattern heartbeats are recorded under in metrics (one
/// series, not one per service).
const HEARTBEAT_SUBJECT: &str = "herald.heartbeat.*";
