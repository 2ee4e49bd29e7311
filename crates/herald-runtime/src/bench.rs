//! Publish benchmark: raw `async-nats` pipelined JetStream publish versus herald's
//! [`Publisher`] (validation, headers, retry machinery), same server, same event
//! shape, one run, alternating rounds so that server warm-up and disk effects hit
//! both sides alike.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::message::PublishMessage;
use async_nats::HeaderMap;
use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use serde_json::Value;

use crate::connection::HeraldClient;
use crate::contracts::Contracts;
use crate::publisher::{Outgoing, Publish, Publisher, PublisherConfig};

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
}

fn payload(template: &Value, size: usize) -> Value {
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
                h.insert(crate::headers::MSG_ID, id.as_str());
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

/// Consume benchmark: a raw pull consumer with explicit acks versus herald's
/// [`crate::Consumer`] (validation, in-memory duplicate check, ack) over the same
/// stored events.
#[derive(Debug, Clone)]
pub struct ConsumeBench {
    /// Events stored and consumed by each side.
    pub events: usize,
    /// Target payload size in bytes.
    pub size: usize,
    /// herald consumer concurrency.
    pub concurrency: usize,
    /// Subject to publish on.
    pub subject: String,
    /// A valid event for `subject`.
    pub template: Value,
}

impl ConsumeBench {
    /// Stores `events` events, then drains them with each side in turn.
    pub async fn run(
        &self,
        client: &HeraldClient,
        contracts: Arc<dyn Contracts>,
    ) -> Result<BenchReport, BenchError> {
        use crate::consumer::{Consumer, ConsumerConfig, Shutdown};
        use async_nats::jetstream::consumer::{pull, AckPolicy};
        use std::sync::atomic::Ordering;

        let fail = |e: &dyn std::fmt::Display| BenchError::Publish(e.to_string());
        // Store the events (not timed).
        let js = client.publishing_context(256);
        let mut pending = FuturesUnordered::new();
        let mut payload_bytes = 0;
        for _ in 0..self.events {
            let v = payload(&self.template, self.size);
            let body = Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
            payload_bytes = body.len();
            let mut h = HeaderMap::new();
            h.insert(
                crate::headers::MSG_ID,
                v["event_id"].as_str().unwrap_or_default(),
            );
            let fut = js
                .send_publish(
                    self.subject.clone(),
                    PublishMessage::build().payload(body).headers(h),
                )
                .await
                .map_err(|e| fail(&e))?;
            pending.push(std::future::IntoFuture::into_future(fut));
            while pending.len() >= 256 {
                if let Some(r) = pending.next().await {
                    r.map_err(|e| fail(&e))?;
                }
            }
        }
        while let Some(r) = pending.next().await {
            r.map_err(|e| fail(&e))?;
        }
        let stream_name = crate::consumer::stream_for_filter(contracts.as_ref(), &self.subject)
            .ok_or_else(|| BenchError::Publish(format!("no stream for {}", self.subject)))?;
        let stream = client
            .jetstream()
            .get_stream(&stream_name)
            .await
            .map_err(|e| fail(&e))?;

        // Raw: durable pull consumer, explicit ack of each message.
        let raw = stream
            .create_consumer(pull::Config {
                durable_name: Some(format!("bench-raw-{}", crate::headers::fast_uuid())),
                filter_subject: self.subject.clone(),
                ack_policy: AckPolicy::Explicit,
                max_ack_pending: 10_000,
                ..Default::default()
            })
            .await
            .map_err(|e| fail(&e))?;
        let t = Instant::now();
        let mut msgs = raw.messages().await.map_err(|e| fail(&e))?;
        let mut got = 0;
        while got < self.events {
            match tokio::time::timeout(Duration::from_secs(30), msgs.next()).await {
                Ok(Some(Ok(m))) => {
                    m.ack().await.map_err(|e| fail(&e))?;
                    got += 1;
                }
                _ => return Err(BenchError::Publish("raw consumer stalled".into())),
            }
        }
        let raw_time = t.elapsed();
        drop(msgs);

        // herald: validation + in-memory duplicate check + ack.
        let config = ConsumerConfig::new(
            "herald-bench",
            crate::headers::fast_uuid(),
            self.subject.clone(),
        )
        .concurrency(self.concurrency)
        .max_ack_pending(10_000);
        let consumer = Consumer::new(client.clone(), contracts, config).map_err(|e| fail(&e))?;
        let stats = consumer.stats();
        let shutdown = Shutdown::new();
        let t = Instant::now();
        let s = shutdown.clone();
        let task = tokio::spawn(async move { consumer.run(|_d| async { Ok(()) }, s).await });
        let mut waited = 0;
        while (stats.acked.load(Ordering::Relaxed) + stats.duplicates.load(Ordering::Relaxed))
            < self.events as u64
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
            waited += 1;
            if waited > 120_000 {
                return Err(BenchError::Publish("herald consumer stalled".into()));
            }
        }
        let herald_time = t.elapsed();
        shutdown.trigger();
        let _ = task.await;
        let n = self.events as f64;
        Ok(BenchReport {
            events: self.events,
            payload_bytes,
            raw_eps: n / raw_time.as_secs_f64().max(1e-9),
            herald_eps: n / herald_time.as_secs_f64().max(1e-9),
        })
    }
}
