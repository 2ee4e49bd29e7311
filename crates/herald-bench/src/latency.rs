//! End-to-end latency benchmark: from the moment an event is created (its
//! `timestamp`, taken just before publishing) to the moment a handler sees
//! it, at a fixed rate and at saturation, raw `async-nats` (publish with herald's
//! headers, pull consumer, ack) versus herald (validated publish, herald
//! consumer with validation and duplicate check).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use serde_json::Value;

use super::BenchError;
use herald_runtime::connection::HeraldClient;
use herald_runtime::consumer::{Consumer, ConsumerConfig, Shutdown};
use herald_runtime::contracts::Contracts;
use herald_runtime::publisher::{Publish, Publisher, PublisherConfig};

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Samples.
    pub samples: usize,
}

/// Latency benchmark settings.
#[derive(Debug, Clone)]
pub struct LatencyBench {
    /// Events per side.
    pub events: usize,
    /// Events per second; `None` publishes as fast as acks allow (saturation).
    pub rate: Option<f64>,
    /// Subject.
    pub subject: String,
    /// A valid event for `subject`.
    pub template: Value,
}

/// Raw and herald percentiles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyReport {
    /// Raw async-nats.
    pub raw: Percentiles,
    /// herald.
    pub herald: Percentiles,
}

/// Percentiles of microsecond samples.
fn percentiles(mut v: Vec<u64>) -> Percentiles {
    v.sort_unstable();
    let at = |p: f64| {
        if v.is_empty() {
            return 0.0;
        }
        let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v[rank] as f64 / 1000.0
    };
    Percentiles {
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        p999_ms: at(0.999),
        samples: v.len(),
    }
}

fn fresh(template: &Value) -> Value {
    let mut v = template.clone();
    v["event_id"] = Value::String(herald_runtime::headers::fast_uuid());
    v["timestamp"] = Value::String(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
    v
}

fn age_us(v: &Value) -> Option<u64> {
    let t = DateTime::parse_from_rfc3339(v.get("timestamp")?.as_str()?).ok()?;
    let d = Utc::now().signed_duration_since(t.with_timezone(&Utc));
    d.num_microseconds().map(|x| x.max(0) as u64)
}

impl LatencyBench {
    /// Runs raw then herald. Purges the subject's stream: own server only.
    pub async fn run(
        &self,
        client: &HeraldClient,
        contracts: Arc<dyn Contracts>,
    ) -> Result<LatencyReport, BenchError> {
        // The raw side sends the same headers (see `WireHeaders`); captured before the
        // stream is purged.
        let wire =
            super::WireHeaders::capture(client, contracts.clone(), &self.subject, &self.template)
                .await?;
        let raw = self.raw_side(client, contracts.as_ref(), &wire).await?;
        let herald = self.herald_side(client, contracts).await?;
        Ok(LatencyReport { raw, herald })
    }

    async fn stream(
        &self,
        client: &HeraldClient,
        contracts: &dyn Contracts,
    ) -> Result<jetstream::stream::Stream, BenchError> {
        let setup = |e: String| BenchError::Setup(e);
        let name = contracts
            .route(&self.subject)
            .ok_or_else(|| setup(format!("{} not in the catalog", self.subject)))?
            .stream;
        let stream = client
            .jetstream()
            .get_stream(&name)
            .await
            .map_err(|e| setup(e.to_string()))?;
        stream.purge().await.map_err(|e| setup(e.to_string()))?;
        Ok(stream)
    }

    /// Paces publishing: waits until event `i` is due.
    async fn pace(&self, start: tokio::time::Instant, i: usize) {
        if let Some(rate) = self.rate {
            let due = start + Duration::from_secs_f64(i as f64 / rate.max(1.0));
            tokio::time::sleep_until(due).await;
        }
    }

    async fn raw_side(
        &self,
        client: &HeraldClient,
        contracts: &dyn Contracts,
        wire: &super::WireHeaders,
    ) -> Result<Percentiles, BenchError> {
        let err = |e: String| BenchError::Consume(e);
        let stream = self.stream(client, contracts).await?;
        let consumer = stream
            .create_consumer(pull::Config {
                durable_name: Some("bench-latency-raw".into()),
                filter_subject: self.subject.clone(),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                max_ack_pending: 1000,
                ..Default::default()
            })
            .await
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        let n = self.events;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(64)
            .messages()
            .await
            .map_err(|e| err(e.to_string()))?;
        let collector = tokio::spawn(async move {
            let mut samples = Vec::with_capacity(n);
            while samples.len() < n {
                let next = tokio::time::timeout(Duration::from_secs(30), messages.next()).await;
                let m = match next {
                    Ok(Some(Ok(m))) => m,
                    _ => break,
                };
                if let Ok(v) = serde_json::from_slice::<Value>(&m.payload) {
                    if let Some(us) = age_us(&v) {
                        samples.push(us);
                    }
                }
                let _ = m.ack().await;
            }
            samples
        });
        let js = client.publishing_context(256);
        let start = tokio::time::Instant::now();
        let mut pending = FuturesUnordered::new();
        for i in 0..n {
            self.pace(start, i).await;
            let v = fresh(&self.template);
            let h = wire.for_event(v["event_id"].as_str().unwrap_or_default());
            let body = Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
            let fut = js
                .publish_with_headers(self.subject.clone(), h, body)
                .await
                .map_err(|e| BenchError::Publish(e.to_string()))?;
            if self.rate.is_some() {
                fut.await.map_err(|e| BenchError::Publish(e.to_string()))?;
            } else {
                pending.push(std::future::IntoFuture::into_future(fut));
                while pending.len() >= 256 {
                    if let Some(r) = pending.next().await {
                        r.map_err(|e| BenchError::Publish(e.to_string()))?;
                    }
                }
            }
        }
        while let Some(r) = pending.next().await {
            r.map_err(|e| BenchError::Publish(e.to_string()))?;
        }
        let samples = collector.await.map_err(|e| err(e.to_string()))?;
        let _ = stream.delete_consumer("bench-latency-raw").await;
        if samples.len() < n {
            return Err(err(format!("raw side received {}/{n}", samples.len())));
        }
        Ok(percentiles(samples))
    }

    async fn herald_side(
        &self,
        client: &HeraldClient,
        contracts: Arc<dyn Contracts>,
    ) -> Result<Percentiles, BenchError> {
        let stream = self.stream(client, contracts.as_ref()).await?;
        let consumer = Consumer::new(
            client.clone(),
            contracts.clone(),
            ConsumerConfig::new("bench", "latency", self.subject.clone())
                .durable("bench-latency-herald"),
        )
        .map_err(|e| BenchError::Setup(e.to_string()))?;
        consumer
            .ensure()
            .await
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        let n = self.events;
        let samples = Arc::new(Mutex::new(Vec::with_capacity(n)));
        let shutdown = Shutdown::new();
        let done = Arc::new(tokio::sync::Notify::new());
        let handler = {
            let samples = samples.clone();
            let shutdown = shutdown.clone();
            let done = done.clone();
            move |d: herald_runtime::consumer::Delivery| {
                let us = age_us(&d.value);
                let mut s = samples.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(us) = us {
                    s.push(us);
                }
                if s.len() == n {
                    shutdown.trigger();
                    done.notify_one();
                }
                async { Ok::<(), herald_runtime::consumer::HandlerError>(()) }
            }
        };
        let consuming = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { consumer.run(handler, shutdown).await }
        });
        let publisher = Publisher::new(
            client.clone(),
            contracts.clone(),
            PublisherConfig::new("herald-bench"),
        );
        let start = tokio::time::Instant::now();
        if self.rate.is_some() {
            for i in 0..n {
                self.pace(start, i).await;
                publisher
                    .publish(&self.subject, &fresh(&self.template), Publish::build())
                    .await
                    .map_err(|e| BenchError::Publish(e.to_string()))?;
            }
        } else {
            // Build each event as it is sent so its timestamp is its creation time.
            let mut pending = FuturesUnordered::new();
            for _ in 0..n {
                let p = publisher.clone();
                let subject = self.subject.clone();
                let template = self.template.clone();
                pending.push(async move {
                    p.publish(&subject, &fresh(&template), Publish::build())
                        .await
                });
                while pending.len() >= 256 {
                    if let Some(r) = pending.next().await {
                        r.map_err(|e| BenchError::Publish(e.to_string()))?;
                    }
                }
            }
            while let Some(r) = pending.next().await {
                r.map_err(|e| BenchError::Publish(e.to_string()))?;
            }
        }
        let finished = tokio::time::timeout(Duration::from_secs(60), done.notified()).await;
        shutdown.trigger();
        let _ = tokio::time::timeout(Duration::from_secs(10), consuming).await;
        let _ = stream.delete_consumer("bench-latency-herald").await;
        let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(|p| p.into_inner()));
        if finished.is_err() || samples.len() < n {
            return Err(BenchError::Consume(format!(
                "herald side received {}/{n}",
                samples.len()
            )));
        }
        Ok(percentiles(samples))
    }
}
