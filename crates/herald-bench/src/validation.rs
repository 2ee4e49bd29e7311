//! Validation benchmark: the raw baseline (`serde_json` parse + `jsonschema`
//! `is_valid` with a validator compiled from the same schema files) versus
//! herald's `Catalog::validate_bytes` (size limit, subject routing, version
//! selection, subject constraint), per event type, on the same bytes.
//!
//! Raw and herald rounds are interleaved so that frequency scaling and the
//! neighbours on a shared machine hit both sides alike.

use std::hint::black_box;
use std::time::{Duration, Instant};

use herald_contracts::Catalog;
use serde_json::Value;

use super::BenchError;

/// The event types measured: (schema, subject, example file in the contracts).
pub const CASES: &[(&str, &str, &str)] = &[
    (
        "UsageEvent",
        "usage.metered.model_inference",
        "examples/UsageEvent/valid/spec-example.json",
    ),
    (
        "OrchestratorStep",
        "orchestrator.step.completed",
        "examples/OrchestratorStep/valid/spec-example.json",
    ),
    (
        "RealtimeMessage",
        "realtime.push.chat_message",
        "examples/RealtimeMessage/valid/spec-example.json",
    ),
    (
        "IngestDocumentEvent",
        "ingest.document.processed",
        "examples/IngestDocumentEvent/valid/processed.json",
    ),
    (
        "AlertEvent",
        "alerts.quota_exceeded",
        "examples/AlertEvent/valid/quota-exceeded.json",
    ),
];

/// Figures for one event type.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationFigures {
    /// Schema name.
    pub schema: String,
    /// Subject validated for.
    pub subject: String,
    /// Raw events per second.
    pub raw_eps: f64,
    /// herald events per second.
    pub herald_eps: f64,
    /// herald / raw of each round.
    pub ratios: Vec<f64>,
}

/// Runs `events` validations per side and event type, in `rounds` interleaved rounds.
pub fn run(
    catalog: &Catalog,
    events: usize,
    rounds: usize,
) -> Result<Vec<ValidationFigures>, BenchError> {
    let setup = |e: String| BenchError::Setup(e);
    let mut builder = jsonschema::Registry::new();
    for doc in catalog.schemas().values().flatten() {
        builder = builder
            .add(&doc.id, doc.document.clone())
            .map_err(|e| setup(e.to_string()))?;
    }
    let registry = builder.prepare().map_err(|e| setup(e.to_string()))?;
    let rounds = rounds.max(1);
    let per_round = (events / rounds).max(1);
    let mut out = Vec::new();
    for (name, subject, file) in CASES {
        let bytes = catalog
            .files()
            .files
            .get(*file)
            .cloned()
            .ok_or_else(|| setup(format!("example {file} missing")))?;
        let schema = &catalog
            .schemas()
            .get(*name)
            .and_then(|v| v.last())
            .ok_or_else(|| setup(format!("schema {name} missing")))?
            .document;
        let raw = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .with_registry(&registry)
            .build(schema)
            .map_err(|e| setup(e.to_string()))?;
        // Both sides must agree the example is valid before timing anything.
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| setup(e.to_string()))?;
        if !raw.is_valid(&v) {
            return Err(setup(format!("{file} invalid for raw jsonschema")));
        }
        catalog
            .validate_bytes(subject, None, &bytes)
            .map_err(|e| setup(format!("{file}: {e}")))?;
        let (mut raw_t, mut herald_t) = (Duration::ZERO, Duration::ZERO);
        let mut ratios = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let (raw_before, herald_before) = (raw_t, herald_t);
            // Alternate which side goes first.
            for side in [round % 2, 1 - round % 2] {
                let t = Instant::now();
                if side == 0 {
                    for _ in 0..per_round {
                        let v: Value = serde_json::from_slice(black_box(&bytes))
                            .map_err(|e| setup(e.to_string()))?;
                        black_box(raw.is_valid(&v));
                    }
                    raw_t += t.elapsed();
                } else {
                    for _ in 0..per_round {
                        let r = catalog.validate_bytes(subject, None, black_box(&bytes));
                        black_box(r.is_ok());
                    }
                    herald_t += t.elapsed();
                }
            }
            // Same event count on both sides: the throughput ratio is the time ratio.
            ratios.push(
                (raw_t - raw_before).as_secs_f64()
                    / (herald_t - herald_before).as_secs_f64().max(1e-9),
            );
        }
        let total = (per_round * rounds) as f64;
        out.push(ValidationFigures {
            schema: name.to_string(),
            subject: subject.to_string(),
            raw_eps: total / raw_t.as_secs_f64().max(1e-9),
            herald_eps: total / herald_t.as_secs_f64().max(1e-9),
            ratios,
        });
    }
    Ok(out)
}
