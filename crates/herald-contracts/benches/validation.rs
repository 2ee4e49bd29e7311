//! herald's validation path against the raw `jsonschema` crate, per event
//! type, on the same bytes: `serde_json` parse + `is_valid` with a validator
//! compiled from the same schema files, versus `Catalog::validate_bytes`
//! (size limit, subject routing, version selection, the subject constraint).
//! Goal: herald within 10% of raw.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use herald_contracts::Catalog;
use serde_json::Value;

const CASES: &[(&str, &str, &str)] = &[
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

fn bench(c: &mut Criterion) {
    let catalog = Catalog::embedded().unwrap();
    // The raw baseline: the same schema files in a plain jsonschema registry.
    let mut builder = jsonschema::Registry::new();
    for doc in catalog.schemas().values().flatten() {
        builder = builder.add(&doc.id, doc.document.clone()).unwrap();
    }
    let registry = builder.prepare().unwrap();

    let mut group = c.benchmark_group("parse+validate");
    for (name, subject, file) in CASES {
        let bytes = catalog.files().files[*file].clone();
        let schema = &catalog.schemas()[*name].last().unwrap().document;
        let raw = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .with_registry(&registry)
            .build(schema)
            .unwrap();
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::new("raw", name), &bytes, |b, bytes| {
            b.iter(|| {
                let v: Value = serde_json::from_slice(bytes).unwrap();
                assert!(raw.is_valid(&v));
            })
        });
        group.bench_with_input(BenchmarkId::new("herald", name), &bytes, |b, bytes| {
            b.iter(|| {
                let (validated, _event) = catalog.validate_bytes(subject, None, bytes).unwrap();
                assert_eq!(validated.version.major, 1);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
