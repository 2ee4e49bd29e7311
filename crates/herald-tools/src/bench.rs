//! Publish benchmark: raw `async-nats` pipelined JetStream publish versus herald's
//! [`Publisher`] (validation, headers, retry machinery), same server, same event
//! shape, one run, alternating rounds so that server warm-up and disk effects hit
//! both sides alike.

pub mod consume;
pub mod latency;
pub mod serve;
pub mod suite;
pub mod validation;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::message::PublishMessage;
use async_nats::HeaderMap;
use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use serde_json::Value;

use herald_runtime::connection::HeraldClient;
use herald_runtime::contracts::Contracts;
use herald_runtime::publisher::{Outgoing, Publish, Publisher, PublisherConfig};

/// Benchmark settings.
#[derive(Debug, Clone)]
pub struct PublishBench {
    /// Events per side.
    pub events: usize,
    /// Target payload size in bytes (padded through the event's `metadata`).
    pub size: usize,
    /// Acks in flight (both sides).
    pub in_flight: usize,
    /// Alternating rounds (each side publishes `events / rounds` per round).
    pub rounds: usize,
    /// Subject to publish on.
    pub subject: String,
    /// A valid event for `subject`; its `event_id` is replaced per event.
    pub template: Value,
}

/// Figures of one benchmark run.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    /// Events per side.
    pub events: usize,
    /// Payload size actually used.
    pub payload_bytes: usize,
    /// Raw async-nats events per second.
    pub raw_eps: f64,
    /// herald events per second.
    pub herald_eps: f64,
}

impl BenchReport {
    /// herald / raw.
    pub fn ratio(&self) -> f64 {
        if self.raw_eps > 0.0 {
            self.herald_eps / self.raw_eps
        } else {
            0.0
        }
    }
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "events: {} per side, payload {} bytes",
            self.events, self.payload_bytes
        )?;
        writeln!(f, "raw async-nats : {:>10.0} events/s", self.raw_eps)?;
        writeln!(f, "herald         : {:>10.0} events/s", self.herald_eps)?;
        write!(f, "ratio          : {:.2}", self.ratio())
    }
}

/// Why the benchmark stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// An event was refused or a publish failed.
    #[error("benchmark publish failed: {0}")]
    Publish(String),
    /// The benchmark could not be set up (schemas, streams, consumers).
    #[error("benchmark setup: {0}")]
    Setup(String),
    /// Consuming failed.
    #[error("benchmark consume failed: {0}")]
    Consume(String),
}

/// `template` with a fresh `event_id`, padded through `metadata` to about `size` bytes.
pub fn payload(template: &Value, size: usize) -> Value {
    let mut v = template.clone();
    v["event_id"] = Value::String(uuid::Uuid::new_v4().to_string());
    let base = serde_json::to_vec(&v).map(|b| b.len()).unwrap_or(0);
    if size > base + 16 {
        if !v.get("metadata").is_some_and(Value::is_object) {
            v["metadata"] = serde_json::json!({});
        }
        v["metadata"]["pad"] = Value::String("x".repeat(size - base - 16));
    }
    v
}

impl PublishBench {
    /// Runs the benchmark; the streams must exist.
    pub async fn run(
        &self,
        client: &HeraldClient,
        contracts: Arc<dyn Contracts>,
    ) -> Result<BenchReport, BenchError> {
        let rounds = self.rounds.max(1);
        let per_round = (self.events / rounds).max(1);
        let publisher = Publisher::new(
            client.clone(),
            contracts,
            PublisherConfig::new("herald-bench").in_flight(self.in_flight),
        );
        let raw_js = client.publishing_context(self.in_flight);
        let mut raw_time = Duration::ZERO;
        let mut herald_time = Duration::ZERO;
        let mut payload_bytes = 0;
        for _ in 0..rounds {
            // Prepare both sides' payloads outside the timed sections.
            let raw_events: Vec<(String, Bytes)> = (0..per_round)
                .map(|_| {
                    let v = payload(&self.template, self.size);
                    let id = v["event_id"].as_str().unwrap_or_default().to_string();
                    (id, Bytes::from(serde_json::to_vec(&v).unwrap_or_default()))
                })
                .collect();
            payload_bytes = raw_events.first().map(|e| e.1.len()).unwrap_or(0);
            let herald_events: Vec<Outgoing> = (0..per_round)
                .map(|_| Outgoing {
                    subject: self.subject.clone(),
                    payload: Bytes::from(
                        serde_json::to_vec(&payload(&self.template, self.size)).unwrap_or_default(),
                    ),
                    options: Publish::build(),
                })
                .collect();

            let t = Instant::now();
            let mut pending = FuturesUnordered::new();
            for (id, body) in raw_events {
                let mut h = HeaderMap::new();
                h.insert(herald_runtime::headers::MSG_ID, id.as_str());
                let fut = raw_js
                    .send_publish(
                        self.subject.clone(),
                        PublishMessage::build().payload(body).headers(h),
                    )
                    .await
                    .map_err(|e| BenchError::Publish(e.to_string()))?;
                pending.push(std::future::IntoFuture::into_future(fut));
                while pending.len() >= self.in_flight.max(1) {
                    if let Some(r) = pending.next().await {
                        r.map_err(|e| BenchError::Publish(e.to_string()))?;
                    }
                }
            }
            while let Some(r) = pending.next().await {
                r.map_err(|e| BenchError::Publish(e.to_string()))?;
            }
            raw_time += t.elapsed();

            let t = Instant::now();
            let mut results = publisher.publish_all(herald_events);
            while let Some((_, r)) = results.next().await {
                r.map_err(|e| BenchError::Publish(e.to_string()))?;
            }
            herald_time += t.elapsed();
        }
        let total = (per_round * rounds) as f64;
        Ok(BenchReport {
            events: per_round * rounds,
            payload_bytes,
            raw_eps: total / raw_time.as_secs_f64().max(1e-9),
            herald_eps: total / herald_time.as_secs_f64().max(1e-9),
        })
    }
}
