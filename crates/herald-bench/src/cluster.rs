//! Publishing into an R1 and an R3 stream on the same three-node cluster, in one run:
//! what replication costs per acknowledged publish. Rounds alternate the replica count
//! (the stream is recreated each time), so machine load hits both alike.

use std::sync::Arc;
use std::time::Duration;

use herald_contracts::Catalog;
use serde::Serialize;
use serde_json::Value;

use super::{BenchError, PublishBench, Spread};
use herald_runtime::connection::HeraldClient;
use herald_runtime::contracts::Contracts;
use herald_runtime::provision::Provisioner;

/// Settings.
#[derive(Debug, Clone)]
pub struct ReplicasBench {
    /// Events per side (raw and herald) and replica count.
    pub events: usize,
    /// Payload size in bytes.
    pub size: usize,
    /// Acks in flight.
    pub in_flight: usize,
    /// Rounds; each runs R1 and R3 (alternating which goes first).
    pub rounds: usize,
    /// Subject to publish on.
    pub subject: String,
    /// A valid event for `subject`.
    pub template: Value,
}

/// One replica count's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicasRow {
    /// Replicas of the stream.
    pub replicas: usize,
    /// Raw async-nats events/s.
    pub raw_eps: f64,
    /// herald events/s.
    pub herald_eps: f64,
    /// herald / raw.
    pub ratio: f64,
}

/// The report: both rows and R3 over R1.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicasReport {
    /// Servers in the cluster.
    pub nodes: usize,
    /// Events per side and replica count.
    pub events: usize,
    /// Payload bytes.
    pub payload_bytes: usize,
    /// R1, then R3.
    pub rows: Vec<ReplicasRow>,
    /// R3 / R1 for the raw client.
    pub r3_over_r1_raw: f64,
    /// R3 / R1 for herald.
    pub r3_over_r1_herald: f64,
    /// herald's R3 / R1 of each round: min, median, max.
    pub spread: Spread,
}

impl ReplicasBench {
    /// Runs on a cluster `client` is connected to. Recreates the stream of `subject`
    /// with each replica count: run it only on a cluster of your own.
    pub async fn run(
        &self,
        client: &HeraldClient,
        catalog: &Catalog,
        nodes: usize,
    ) -> Result<ReplicasReport, BenchError> {
        let setup = |e: String| BenchError::Setup(e);
        let variants: Vec<(usize, Arc<dyn Contracts>)> = [1, nodes]
            .into_iter()
            .map(|r| {
                herald_demo::replicated(catalog, r)
                    .map(|c| (r, Arc::new(c) as Arc<dyn Contracts>))
                    .map_err(|e| setup(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let stream = catalog
            .route(&self.subject)
            .ok_or_else(|| setup(format!("{} not in the catalog", self.subject)))?
            .stream;
        let rounds = self.rounds.max(1);
        let per_round = (self.events / rounds).max(1);
        // (raw seconds, herald seconds) per variant, and herald R3/R1 per round.
        let mut time = [(0.0f64, 0.0f64); 2];
        let mut payload_bytes = 0;
        let mut ratios = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let mut herald_eps = [0.0f64; 2];
            for i in [round % 2, 1 - round % 2] {
                let (_, contracts) = &variants[i];
                let _ = client.jetstream().delete_stream(&stream).await;
                Provisioner::new(client.clone(), contracts.clone())
                    .apply(false, false)
                    .await
                    .map_err(|e| setup(e.to_string()))?;
                wait_for_leader(client, &stream).await?;
                let r = PublishBench {
                    events: per_round,
                    size: self.size,
                    in_flight: self.in_flight,
                    rounds: 1,
                    subject: self.subject.clone(),
                    template: self.template.clone(),
                }
                .run(client, contracts.clone())
                .await?;
                payload_bytes = r.payload_bytes;
                time[i].0 += per_round as f64 / r.raw_eps.max(1e-9);
                time[i].1 += per_round as f64 / r.herald_eps.max(1e-9);
                herald_eps[i] = r.herald_eps;
            }
            ratios.push(herald_eps[1] / herald_eps[0].max(1e-9));
        }
        let total = (per_round * rounds) as f64;
        let rows: Vec<ReplicasRow> = variants
            .iter()
            .zip(time)
            .map(|((replicas, _), (raw_s, herald_s))| {
                let (raw_eps, herald_eps) = (total / raw_s.max(1e-9), total / herald_s.max(1e-9));
                ReplicasRow {
                    replicas: *replicas,
                    raw_eps,
                    herald_eps,
                    ratio: herald_eps / raw_eps.max(1e-9),
                }
            })
            .collect();
        Ok(ReplicasReport {
            nodes,
            events: per_round * rounds,
            payload_bytes,
            r3_over_r1_raw: rows[1].raw_eps / rows[0].raw_eps.max(1e-9),
            r3_over_r1_herald: rows[1].herald_eps / rows[0].herald_eps.max(1e-9),
            spread: Spread::of(&ratios),
            rows,
        })
    }
}

/// Waits (up to 30 s) until the stream has a leader, so a round never times its election.
async fn wait_for_leader(client: &HeraldClient, stream: &str) -> Result<(), BenchError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Ok(mut s) = client.jetstream().get_stream(stream).await {
            if let Ok(info) = s.info().await {
                if info.cluster.as_ref().is_none_or(|c| c.leader.is_some()) {
                    return Ok(());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(BenchError::Setup(format!(
        "stream {stream} has no leader after 30s"
    )))
}
