//! Consume benchmark: a raw `async-nats` durable pull consumer that acks each
//! message, versus herald's [`Consumer`] (schema resolution and validation,
//! in-memory duplicate check, handler call, ack) over the same stored events.
//!
//! Each round stores a batch of herald-published events (with herald's
//! headers, untimed), then the raw durable and the herald durable each
//! consume that batch, alternating which goes first.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;

use super::{payload, BenchError, BenchReport};
use herald_runtime::connection::HeraldClient;
use herald_runtime::consumer::{Consumer, ConsumerConfig, Shutdown};
use herald_runtime::contracts::Contracts;
use herald_runtime::publisher::{Outgoing, Publish, Publisher, PublisherConfig};

/// Consume benchmark settings.
#[derive(Debug, Clone)]
pub struct ConsumeBench {
    /// Events per side.
    pub events: usize,
    /// Rounds (each stores `events / rounds` events, consumed by both sides).
    pub rounds: usize,
    /// Subject of the events.
    pub subject: String,
    /// A valid event for `subject`.
    pub template: Value,
    /// herald handler concurrency (also the raw pull batch size is 4x this).
    pub concurrency: usize,
}

impl ConsumeBench {
    /// Runs the benchmark. The stream holding `subject` is purged first: run it only
    /// against a server of your own (`herald bench` starts one).
    pub async fn run(
        &self,
        client: &HeraldClient,
        contracts: Arc<dyn Contracts>,
    ) -> Result<BenchReport, BenchError> {
        let setup = |e: String| BenchError::Setup(e);
        let stream_name = contracts
            .route(&self.subject)
            .ok_or_else(|| setup(format!("{} not in the catalog", self.subject)))?
            .stream;
        let js = client.jetstream();
        let stream = js
            .get_stream(&stream_name)
            .await
            .map_err(|e| setup(e.to_string()))?;
        stream.purge().await.map_err(|e| setup(e.to_string()))?;
        let raw_consumer = stream
            .create_consumer(pull::Config {
                durable_name: Some("bench-raw".into()),
                filter_subject: self.subject.clone(),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                max_ack_pending: 1000,
                ..Default::default()
            })
            .await
            .map_err(|e| setup(e.to_string()))?;
        let herald = Consumer::new(
            client.clone(),
            contracts.clone(),
            ConsumerConfig::new("bench", "consume", self.subject.clone())
                .durable("bench-herald")
                .concurrency(self.concurrency.max(1)),
        )
        .map_err(|e| setup(e.to_string()))?;
        herald.ensure().await.map_err(|e| setup(e.to_string()))?;
        let publisher = Publisher::new(
            client.clone(),
            contracts.clone(),
            PublisherConfig::new("herald-bench"),
        );

        let rounds = self.rounds.max(1);
        let per_round = (self.events / rounds).max(1);
        let (mut raw_t, mut herald_t) = (Duration::ZERO, Duration::ZERO);
        let mut ratios = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let (raw_before, herald_before) = (raw_t, herald_t);
            let batch: Vec<Outgoing> = (0..per_round)
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
            for side in [round % 2, 1 - round % 2] {
                if side == 0 {
                    raw_t += self.raw_round(&raw_consumer, per_round).await?;
                } else {
                    herald_t += herald_round(&herald, per_round).await?;
                }
            }
            ratios.push(
                (raw_t - raw_before).as_secs_f64()
                    / (herald_t - herald_before).as_secs_f64().max(1e-9),
            );
        }
        let total = (per_round * rounds) as f64;
        let _ = stream.delete_consumer("bench-raw").await;
        let _ = stream.delete_consumer("bench-herald").await;
        Ok(BenchReport {
            events: per_round * rounds,
            payload_bytes: serde_json::to_vec(&self.template)
                .map(|b| b.len())
                .unwrap_or(0),
            raw_eps: total / raw_t.as_secs_f64().max(1e-9),
            herald_eps: total / herald_t.as_secs_f64().max(1e-9),
            raw_bare_eps: None,
            header_bytes: None,
            bare_ratios: Vec::new(),
            ratios,
        })
    }

    async fn raw_round(
        &self,
        consumer: &jetstream::consumer::Consumer<pull::Config>,
        n: usize,
    ) -> Result<Duration, BenchError> {
        let err = |e: String| BenchError::Consume(e);
        let t = Instant::now();
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(self.concurrency.max(1) * 4)
            .messages()
            .await
            .map_err(|e| err(e.to_string()))?;
        let mut got = 0;
        while got < n {
            let next = tokio::time::timeout(Duration::from_secs(30), messages.next()).await;
            let m = match next {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => return Err(err(e.to_string())),
                Ok(None) | Err(_) => return Err(err(format!("raw consumer stalled at {got}/{n}"))),
            };
            m.ack().await.map_err(|e| err(e.to_string()))?;
            got += 1;
        }
        let elapsed = t.elapsed();
        drop(messages);
        Ok(elapsed)
    }
}

async fn herald_round(consumer: &Consumer, n: usize) -> Result<Duration, BenchError> {
    let count = Arc::new(AtomicUsize::new(0));
    let shutdown = Shutdown::new();
    let done = Arc::new(tokio::sync::Notify::new());
    let t = Instant::now();
    let handler = {
        let count = count.clone();
        let shutdown = shutdown.clone();
        let done = done.clone();
        move |d: herald_runtime::consumer::Delivery| {
            let count = count.clone();
            let shutdown = shutdown.clone();
            let done = done.clone();
            async move {
                std::hint::black_box(&d.value);
                if count.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    shutdown.trigger();
                    done.notify_one();
                }
                Ok(())
            }
        }
    };
    let run = consumer.run(handler, shutdown.clone());
    tokio::pin!(run);
    let finished = tokio::select! {
        r = &mut run => { r.map_err(|e| BenchError::Consume(e.to_string()))?; t.elapsed() }
        _ = done.notified() => t.elapsed(),
        _ = tokio::time::sleep(Duration::from_secs(60)) => {
            shutdown.trigger();
            return Err(BenchError::Consume(format!(
                "herald consumer stalled at {}/{n}",
                count.load(Ordering::Relaxed)
            )));
        }
    };
    // Let the consumer wind down (in-flight acks) outside the timed section.
    let _ = tokio::time::timeout(Duration::from_secs(10), &mut run).await;
    Ok(finished)
}
