//! Issue 13 item 22: a payload that is not JSON is not a JSON Schema failure. Its own
//! test binary, so no other test shares the global metrics recorder.

mod common;

use std::time::Duration;

use herald_runtime::{Consumer, ConsumerConfig, Delivery, Provisioner, Shutdown};

use common::*;

fn value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn non_json_payloads_are_counted_as_decode_failures_not_schema_failures() {
    let handle = herald_runtime::metrics::install().unwrap();
    let server = server().await;
    let client = connect(&server, "decode").await;
    Provisioner::new(client.clone(), contracts())
        .apply(false, false)
        .await
        .unwrap();
    for body in [&b"not json at all"[..], b"{\"truncated\":"] {
        client
            .jetstream()
            .publish("usage.metered.api_call", body.to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let mut bad = usage_event("f0f0f0f0-0000-4000-8000-000000000001");
    bad.as_object_mut().unwrap().remove("tenant_id");
    client
        .jetstream()
        .publish("usage.metered.api_call", bad.to_string().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let consumer = Consumer::new(
        client.clone(),
        contracts(),
        ConsumerConfig::new("decode-svc", "usage", "usage.metered.>"),
    )
    .unwrap();
    let stats = consumer.stats();
    let shutdown = Shutdown::new();
    let s2 = shutdown.clone();
    let task = tokio::spawn(async move {
        consumer
            .run(|_d: Delivery| async { Ok(()) }, s2)
            .await
            .unwrap()
    });
    for _ in 0..600 {
        if stats.snapshot().dead_lettered == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.trigger();
    task.await.unwrap();
    assert_eq!(stats.snapshot().dead_lettered, 3);
    let text = handle.render();
    let schema = value(
        &text,
        "herald_schema_validation_failures_total{schema=\"UsageEvent\",side=\"consume\"}",
    );
    assert_eq!(schema, Some(1.0), "{text}");
    let decode = value(
        &text,
        "herald_decode_failures_total{schema=\"UsageEvent\",side=\"consume\",reason=\"decode_error\"}",
    );
    assert_eq!(decode, Some(2.0), "{text}");
}

/// Issue 13 item 21: the backlog gauges have one source, `herald watch`; a running
/// consumer does not export them too.
#[tokio::test]
async fn a_consumer_does_not_export_the_backlog_gauges_watch_owns() {
    let handle = herald_runtime::metrics::install().unwrap();
    let server = server().await;
    let client = connect(&server, "lag").await;
    Provisioner::new(client.clone(), contracts())
        .apply(false, false)
        .await
        .unwrap();
    client
        .jetstream()
        .publish(
            "usage.metered.api_call",
            usage_event("f1f1f1f1-0000-4000-8000-000000000001")
                .to_string()
                .into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let consumer = Consumer::new(
        client.clone(),
        contracts(),
        ConsumerConfig::new("lag-svc", "usage", "usage.metered.>"),
    )
    .unwrap();
    let stats = consumer.stats();
    let shutdown = Shutdown::new();
    let s2 = shutdown.clone();
    let task = tokio::spawn(async move {
        consumer
            .run(|_d: Delivery| async { Ok(()) }, s2)
            .await
            .unwrap()
    });
    for _ in 0..600 {
        if stats.snapshot().acked == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.trigger();
    task.await.unwrap();
    assert_eq!(stats.snapshot().acked, 1);
    let text = handle.render();
    let exported: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("herald_consumer_") && l.contains("lag-svc--usage"))
        .collect();
    assert!(exported.is_empty(), "{exported:?}");
}
