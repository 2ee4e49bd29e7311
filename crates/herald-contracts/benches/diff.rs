//! Diffing cost on large generated schemas: the budget is the whole `herald check`
//! on the shipped contracts in under 100 ms, so a single large pair must stay far
//! below that.

use criterion::{criterion_group, criterion_main, Criterion};
use herald_contracts::evolution::{
    compare, compare_documents, Document, Mode, NoExternalSchemas, Options,
};
use herald_contracts::{versions, Catalog};
use serde_json::{json, Map, Value};
use std::hint::black_box;

/// An event-like object schema with `width` properties per level, `depth` levels,
/// shared `$defs` reached by `$ref`, enums, unions and arrays.
fn large_schema(width: usize, depth: usize, variant: u64) -> Value {
    fn level(width: usize, depth: usize, variant: u64, salt: usize) -> Value {
        let mut props = Map::new();
        let mut required = Vec::new();
        for i in 0..width {
            let name = format!("field_{salt}_{i}");
            let schema = match i % 7 {
                0 => json!({"$ref": "#/$defs/uuid"}),
                1 => {
                    json!({"type": "string", "maxLength": 64 + (variant as usize % 3), "description": format!("field {i}")})
                }
                2 => json!({"type": "integer", "minimum": 0, "maximum": 1000 + variant}),
                3 => json!({"enum": ["created", "updated", "deleted", format!("v{variant}")]}),
                4 => json!({"type": "array", "items": {"$ref": "#/$defs/money"}, "maxItems": 50}),
                5 => {
                    json!({"oneOf": [{"type": "null"}, {"type": "string", "format": "date-time"}]})
                }
                _ if depth > 0 => level(width / 2 + 1, depth - 1, variant, salt * 10 + i),
                _ => json!({"type": ["number", "null"]}),
            };
            if i % 3 == 0 {
                required.push(json!(name));
            }
            props.insert(name, schema);
        }
        json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
    }
    let mut root = level(width, depth, variant, 1);
    root["$defs"] = json!({
        "uuid": {"type": "string", "format": "uuid"},
        "money": {"type": "object", "properties": {"amount": {"type": "number"}, "currency": {"enum": ["USD", "EUR"]}}, "required": ["amount"]}
    });
    root
}

fn bench(c: &mut Criterion) {
    let opts = Options::new(Mode::Backward);
    let old = large_schema(60, 3, 0);
    let new = large_schema(60, 3, 1);
    let same = old.clone();
    let props = |v: &Value| v.to_string().matches("field_").count();
    eprintln!(
        "large schema: {} properties, {} bytes",
        props(&old),
        old.to_string().len()
    );
    let r = compare(&old, &new, &opts, &NoExternalSchemas).expect("diff");
    eprintln!("large pair: {} changes", r.changes.len());
    let mut g = c.benchmark_group("diff");
    g.bench_function("large_identical", |b| {
        b.iter(|| compare(black_box(&old), black_box(&same), &opts, &NoExternalSchemas).unwrap())
    });
    g.bench_function("large_changed", |b| {
        b.iter(|| compare(black_box(&old), black_box(&new), &opts, &NoExternalSchemas).unwrap())
    });
    let history: Vec<Value> = (0..10).map(|v| large_schema(20, 2, v)).collect();
    g.bench_function("history_10_versions", |b| {
        b.iter(|| {
            for w in history.windows(2) {
                black_box(compare(&w[0], &w[1], &opts, &NoExternalSchemas).unwrap());
            }
        })
    });
    // The shipped contracts: the whole gate, and one realistic version step
    // (UsageEvent with a new optional field, `$ref`s into common/ resolved through
    // the catalog).
    let catalog = Catalog::embedded().expect("embedded catalog");
    g.bench_function("catalog_history", |b| {
        b.iter(|| {
            for name in catalog.schemas().keys() {
                black_box(versions::history(&catalog, name).unwrap());
            }
        })
    });
    let usage = &catalog.schemas()["UsageEvent"][0];
    let mut next = usage.document.clone();
    next["properties"]["billing_account_id"] =
        json!({"type": "string", "description": "Account to invoice."});
    let backward = Options::new(Mode::BackwardTransitive);
    g.bench_function("usage_event_step", |b| {
        b.iter(|| {
            compare_documents(
                &Document::new(&usage.document).with_uri(usage.id.clone()),
                &Document::new(black_box(&next)).with_uri(usage.id.clone()),
                &backward,
                &catalog,
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
