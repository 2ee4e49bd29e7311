//! `herald bench all`: every side-by-side benchmark in one process and one run
//! against one server, so the figures in the README come from the same
//! conditions and can be tracked over time (JSON).
//!
//! Each row has the raw figure, herald's figure and their ratio (herald / raw);
//! `better` says which direction is good (throughput: higher; latency: lower).

use std::sync::Arc;

use herald_contracts::Catalog;
use serde::Serialize;
use serde_json::{json, Value};

use super::consume::ConsumeBench;
use super::latency::LatencyBench;
use super::{BenchError, PublishBench, Spread};
use herald_runtime::connection::HeraldClient;
use herald_runtime::contracts::Contracts;

/// One line of the results.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Group: `validate`, `publish`, `consume`, `latency`.
    pub group: String,
    /// What was measured (event type, percentile and rate ...).
    pub name: String,
    /// `events/s` or `ms`.
    pub unit: String,
    /// Raw figure.
    pub raw: f64,
    /// herald figure.
    pub herald: f64,
    /// herald / raw over the whole run.
    pub ratio: f64,
    /// herald / raw of each interleaved round: min, median, max.
    pub spread: Spread,
    /// Rounds the spread is taken over.
    pub rounds: usize,
    /// `higher` or `lower`.
    pub better: String,
    /// The goal on the ratio, when the issue sets one (ratio >= goal for throughput).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
}

/// Which benchmarks to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Everything.
    All,
    /// Validation only (no server needed).
    Validate,
    /// Publish.
    Publish,
    /// Consume.
    Consume,
    /// End-to-end latency.
    Latency,
}

/// Settings of a suite run.
#[derive(Debug, Clone)]
pub struct Suite {
    /// Events per side (validation: per event type; fixed-rate latency: at most 5,000).
    pub events: usize,
    /// Which benchmarks.
    pub which: Which,
    /// Fixed rate for the moderate latency run, events/s.
    pub latency_rate: f64,
    /// Interleaved raw/herald rounds per throughput benchmark (and latency runs at
    /// saturation), over which each ratio's min/median/max is reported.
    pub rounds: usize,
}

/// The results.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    /// nats-server version (empty for validation only).
    pub server: String,
    /// Logical CPUs of the machine.
    pub cpus: usize,
    /// Events per side requested.
    pub events: usize,
    /// The rows.
    pub rows: Vec<Row>,
}

fn ratio(raw: f64, herald: f64) -> f64 {
    if raw > 0.0 {
        herald / raw
    } else {
        0.0
    }
}

fn throughput(
    group: &str,
    name: &str,
    raw: f64,
    herald: f64,
    ratios: &[f64],
    goal: Option<&str>,
) -> Row {
    Row {
        group: group.into(),
        name: name.into(),
        unit: "events/s".into(),
        raw,
        herald,
        ratio: ratio(raw, herald),
        spread: Spread::of(ratios),
        rounds: ratios.len(),
        better: "higher".into(),
        goal: goal.map(str::to_string),
    }
}

/// The event the server benchmarks publish (an API call usage event).
pub fn usage_template() -> Value {
    json!({
        "event_id": "550e8400-e29b-41d4-a716-446655440010",
        "timestamp": "2024-01-15T10:30:00Z",
        "service_name": "model-gateway",
        "user_id": "123e4567-e89b-12d3-a456-426614174000",
        "tenant_id": "789e0123-e89b-12d3-a456-426614174000",
        "event_type": "api_call",
        "resource_type": "requests",
        "quantity": 1,
        "unit": "requests",
        "metadata": {"endpoint": "/v1/chat"},
        "cost": {"amount": 0.001, "currency": "EUR"}
    })
}

impl Suite {
    /// Runs the selected benchmarks. `client` may be `None` for validation only; the
    /// server benchmarks purge the usage stream, so give them a server of your own.
    pub async fn run(
        &self,
        catalog: Arc<Catalog>,
        client: Option<&HeraldClient>,
    ) -> Result<SuiteReport, BenchError> {
        let contracts: Arc<dyn Contracts> = catalog.clone();
        let subject = "usage.metered.api_call".to_string();
        let events = self.events.max(10);
        let rounds = self.rounds.max(1);
        let mut rows = Vec::new();
        let want = |w: Which| self.which == Which::All || self.which == w;
        if want(Which::Validate) {
            let figures = super::validation::run(&catalog, events, rounds.max(8))?;
            for f in figures {
                rows.push(throughput(
                    "validate",
                    &f.schema,
                    f.raw_eps,
                    f.herald_eps,
                    &f.ratios,
                    Some(">= 0.95"),
                ));
            }
        }
        let needs_server = [Which::Publish, Which::Consume, Which::Latency]
            .into_iter()
            .any(want);
        let mut server = String::new();
        if needs_server {
            let client = client.ok_or_else(|| BenchError::Setup("no server connection".into()))?;
            server = client.server_version_text().to_string();
            if want(Which::Publish) {
                let r = PublishBench {
                    events,
                    size: 512,
                    in_flight: 256,
                    rounds,
                    subject: subject.clone(),
                    template: usage_template(),
                }
                .run(client, contracts.clone())
                .await?;
                let headers = r.header_bytes.unwrap_or(0);
                rows.push(throughput(
                    "publish",
                    &format!("pipelined, 256 in flight, 512 B + {headers} B headers"),
                    r.raw_eps,
                    r.herald_eps,
                    &r.ratios,
                    Some(">= 0.8"),
                ));
                if let Some(bare) = r.raw_bare_eps {
                    // Read beside the row above: what the headers cost on the wire.
                    rows.push(throughput(
                        "publish",
                        "raw bare (Nats-Msg-Id only) vs herald",
                        bare,
                        r.herald_eps,
                        &r.bare_ratios,
                        None,
                    ));
                }
            }
            if want(Which::Consume) {
                let r = ConsumeBench {
                    events,
                    rounds,
                    subject: subject.clone(),
                    template: usage_template(),
                    concurrency: 16,
                }
                .run(client, contracts.clone())
                .await?;
                rows.push(throughput(
                    "consume",
                    "pull + ack",
                    r.raw_eps,
                    r.herald_eps,
                    &r.ratios,
                    Some(">= 0.8"),
                ));
            }
            if want(Which::Latency) {
                // One paced run (its percentiles need every sample of one run), then
                // `rounds` (at most 3) runs at saturation, each with raw then herald.
                let runs = [
                    (Some(self.latency_rate), events.min(5_000), 1),
                    (None, events, rounds.min(3)),
                ];
                for (rate, n, times) in runs {
                    let mut reports = Vec::new();
                    for _ in 0..times {
                        let r = LatencyBench {
                            events: n,
                            rate,
                            subject: subject.clone(),
                            template: usage_template(),
                        }
                        .run(client, contracts.clone())
                        .await?;
                        reports.push(r);
                    }
                    let at = match rate {
                        Some(x) => format!("{x:.0}/s"),
                        None => "saturation".to_string(),
                    };
                    type Pick = fn(&super::latency::Percentiles) -> f64;
                    let picks: [(&str, Pick); 3] = [
                        ("p50", |p| p.p50_ms),
                        ("p99", |p| p.p99_ms),
                        ("p999", |p| p.p999_ms),
                    ];
                    for (p, pick) in picks {
                        let raws: Vec<f64> = reports.iter().map(|r| pick(&r.raw)).collect();
                        let heralds: Vec<f64> = reports.iter().map(|r| pick(&r.herald)).collect();
                        let ratios: Vec<f64> = reports
                            .iter()
                            .map(|r| ratio(pick(&r.raw), pick(&r.herald)))
                            .collect();
                        let goal = match (rate.is_some(), p) {
                            (true, "p99") => Some("herald < 2 ms".into()),
                            (false, "p50" | "p99") => Some("<= 1.5".into()),
                            _ => None,
                        };
                        let (raw, herald) = (Spread::of(&raws).median, Spread::of(&heralds).median);
                        rows.push(Row {
                            group: "latency".into(),
                            name: format!("{p} @ {at}"),
                            unit: "ms".into(),
                            raw,
                            herald,
                            ratio: ratio(raw, herald),
                            spread: Spread::of(&ratios),
                            rounds: ratios.len(),
                            better: "lower".into(),
                            goal,
                        });
                    }
                }
            }
        }
        Ok(SuiteReport {
            server,
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            events,
            rows,
        })
    }
}
