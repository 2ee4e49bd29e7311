//! Publish benchmark: raw `async-nats` pipelined JetStream publish versus herald's
//! [`Publisher`] (validation, headers, retry machinery), same server, same event
//! shape, one run, alternating rounds so that server warm-up and disk effects hit
//! both sides alike.

pub mod cluster;
pub mod consume;
pub mod contracts;
pub mod latency;
pub mod memory;
pub mod serve;
pub mod suite;
pub mod validation;
pub mod workers;

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
    /// Raw async-nats events per second, sending herald's headers (see [`WireHeaders`]).
    pub raw_eps: f64,
    /// herald events per second.
    pub herald_eps: f64,
    /// Raw async-nats events per second with only a `Nats-Msg-Id` header: what the
    /// CloudEvents headers cost on the wire (not a goal, for reading the others).
    /// `None` where the raw side reads herald's own events (consume).
    pub raw_bare_eps: Option<f64>,
    /// Bytes of herald's headers per event (publish).
    pub header_bytes: Option<usize>,
    /// herald / raw bare of each round (publish).
    pub bare_ratios: Vec<f64>,
    /// herald / raw of each round (raw and herald interleaved, so each round's two
    /// sides saw the same machine load).
    pub ratios: Vec<f64>,
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
        match self.header_bytes {
            Some(n) => writeln!(
                f,
                "raw async-nats : {:>10.0} events/s (herald's {n} bytes of headers)",
                self.raw_eps
            )?,
            None => writeln!(f, "raw async-nats : {:>10.0} events/s", self.raw_eps)?,
        }
        if let Some(bare) = self.raw_bare_eps {
            writeln!(
                f,
                "raw, bare      : {bare:>10.0} events/s (Nats-Msg-Id only)"
            )?;
        }
        writeln!(f, "herald         : {:>10.0} events/s", self.herald_eps)?;
        let s = Spread::of(&self.ratios);
        write!(
            f,
            "ratio          : {:.2} (rounds: min {:.2}, median {:.2}, max {:.2}, {} rounds)",
            self.ratio(),
            s.min,
            s.median,
            s.max,
            self.ratios.len()
        )
    }
}

/// Minimum, median and maximum of per-round ratios: how stable a figure is under
/// the machine's noise.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Spread {
    /// Smallest.
    pub min: f64,
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `values` (all zero when empty).
    pub fn of(values: &[f64]) -> Spread {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Spread::default();
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Spread {
            min: v[0],
            median,
            max: v[n - 1],
        }
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

/// The headers herald puts on an event of one subject, read back from the stream.
///
/// Why: the raw baselines must send the same message (issue 14: "the same message size").
/// A raw publisher with only `Nats-Msg-Id` sends several hundred bytes fewer per event than
/// herald's CloudEvents headers, which the server parses and stores too; the ratio then
/// measured the headers' cost on the wire, not herald's. The raw side sends these headers,
/// as a hand-written CloudEvents publisher would: a prebuilt map, cloned per event, with
/// the event's id as `Nats-Msg-Id` and `ce-id`.
#[derive(Debug, Clone)]
pub struct WireHeaders {
    template: HeaderMap,
}

impl WireHeaders {
    /// Publishes one event built from `template` with herald and reads its headers back.
    /// Tried up to five times: a stream created a moment ago in a cluster may still be
    /// electing its leader.
    pub async fn capture(
        client: &HeraldClient,
        contracts: Arc<dyn Contracts>,
        subject: &str,
        template: &Value,
    ) -> Result<Self, BenchError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match Self::capture_once(client, contracts.clone(), subject, template).await {
                Ok(w) => return Ok(w),
                Err(e) if tries >= 5 => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, tries, "capturing herald's headers; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    async fn capture_once(
        client: &HeraldClient,
        contracts: Arc<dyn Contracts>,
        subject: &str,
        template: &Value,
    ) -> Result<Self, BenchError> {
        let publisher = Publisher::new(
            client.clone(),
            contracts,
            PublisherConfig::new("herald-bench"),
        );
        let receipt = publisher
            .publish(subject, &payload(template, 0), Publish::build())
            .await
            .map_err(|e| BenchError::Publish(e.to_string()))?;
        let stored = client
            .jetstream()
            .get_stream(&receipt.stream)
            .await
            .map_err(|e| BenchError::Setup(e.to_string()))?
            .get_raw_message(receipt.sequence)
            .await
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        Ok(WireHeaders {
            template: stored.headers,
        })
    }

    /// The headers of the event with identity `id`.
    pub fn for_event(&self, id: &str) -> HeaderMap {
        let mut h = self.template.clone();
        h.insert(herald_runtime::headers::MSG_ID, id);
        h.insert(herald_runtime::headers::CE_ID, id);
        h
    }

    /// Bytes the headers of one event take on the wire.
    pub fn wire_bytes(&self) -> usize {
        self.template
            .iter()
            .flat_map(|(n, vs)| {
                vs.iter()
                    .map(move |v| AsRef::<str>::as_ref(n).len() + v.as_str().len() + 4)
            })
            .sum::<usize>()
            + 12
    }
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
        let wire = WireHeaders::capture(
            client,
            publisher.contracts().clone(),
            &self.subject,
            &self.template,
        )
        .await?;
        // Per side: raw with herald's headers, herald, raw bare.
        let mut time = [Duration::ZERO; 3];
        let mut payload_bytes = 0;
        let mut ratios = Vec::with_capacity(rounds);
        let mut bare_ratios = Vec::with_capacity(rounds);
        for round in 0..rounds {
            // Prepare every side's payloads outside the timed sections.
            let raw_events = || -> Vec<(String, Bytes)> {
                (0..per_round)
                    .map(|_| {
                        let v = payload(&self.template, self.size);
                        let id = v["event_id"].as_str().unwrap_or_default().to_string();
                        (id, Bytes::from(serde_json::to_vec(&v).unwrap_or_default()))
                    })
                    .collect()
            };
            let mut same = Some(raw_events());
            let mut bare = Some(raw_events());
            payload_bytes = same
                .as_ref()
                .and_then(|e| e.first())
                .map_or(0, |e| e.1.len());
            let mut herald_events = Some(
                (0..per_round)
                    .map(|_| Outgoing {
                        subject: self.subject.clone(),
                        payload: Bytes::from(
                            serde_json::to_vec(&payload(&self.template, self.size))
                                .unwrap_or_default(),
                        ),
                        options: Publish::build(),
                    })
                    .collect::<Vec<_>>(),
            );
            // Rotate which side goes first, so warm-up and drift hit all alike.
            let mut took = [Duration::ZERO; 3];
            for k in 0..3 {
                let side = (round + k) % 3;
                took[side] = match side {
                    0 => {
                        let events = same.take().unwrap_or_default();
                        self.raw_round(&raw_js, Some(&wire), events).await?
                    }
                    2 => {
                        let events = bare.take().unwrap_or_default();
                        self.raw_round(&raw_js, None, events).await?
                    }
                    _ => {
                        let events = herald_events.take().unwrap_or_default();
                        let t = Instant::now();
                        let mut results = publisher.publish_all(events);
                        while let Some((_, r)) = results.next().await {
                            r.map_err(|e| BenchError::Publish(e.to_string()))?;
                        }
                        t.elapsed()
                    }
                };
            }
            for (sum, t) in time.iter_mut().zip(took) {
                *sum += t;
            }
            let herald = took[1].as_secs_f64().max(1e-9);
            ratios.push(took[0].as_secs_f64() / herald);
            bare_ratios.push(took[2].as_secs_f64() / herald);
        }
        let total = (per_round * rounds) as f64;
        let eps = |t: Duration| total / t.as_secs_f64().max(1e-9);
        Ok(BenchReport {
            events: per_round * rounds,
            payload_bytes,
            raw_eps: eps(time[0]),
            herald_eps: eps(time[1]),
            raw_bare_eps: Some(eps(time[2])),
            header_bytes: Some(wire.wire_bytes()),
            bare_ratios,
            ratios,
        })
    }

    /// One raw round: pipelined publishes with herald's headers (`wire`) or only a
    /// `Nats-Msg-Id`, `in_flight` acks outstanding; returns the time it took.
    async fn raw_round(
        &self,
        raw_js: &async_nats::jetstream::Context,
        wire: Option<&WireHeaders>,
        events: Vec<(String, Bytes)>,
    ) -> Result<Duration, BenchError> {
        let t = Instant::now();
        let mut pending = FuturesUnordered::new();
        for (id, body) in events {
            let h = match wire {
                Some(w) => w.for_event(&id),
                None => {
                    let mut h = HeaderMap::new();
                    h.insert(herald_runtime::headers::MSG_ID, id.as_str());
                    h
                }
            };
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
        Ok(t.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::Spread;

    #[test]
    fn spread_of_rounds_gives_min_median_max() {
        let s = Spread::of(&[0.9, 0.7, 1.1]);
        assert_eq!((s.min, s.median, s.max), (0.7, 0.9, 1.1));
        let s = Spread::of(&[1.0, 0.5, 0.75, 2.0]);
        assert_eq!((s.min, s.median, s.max), (0.5, 0.875, 2.0));
        // A round that divided by zero must not poison the figures.
        let s = Spread::of(&[f64::NAN, 0.8, f64::INFINITY]);
        assert_eq!((s.min, s.median, s.max), (0.8, 0.8, 0.8));
        assert_eq!(Spread::of(&[]), Spread::default());
    }
}
