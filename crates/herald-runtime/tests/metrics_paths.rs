//! Metrics through the real publish and consume paths (ok, duplicate,
//! invalid, publish retry; ack, retry, dead letter, duplicate) against a
//! nats-server of the test's own, asserting counter values in the scrape.
//!
//! Each test records into a recorder of its own, set as the thread's default
//! (`#[tokio::test]` runs every task on the test's thread), so no other test
//! in the process can move its counters.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use herald_runtime::contracts::Contracts;
use herald_runtime::metrics::{builder, names};
use herald_runtime::{
    Consumer, ConsumerConfig, Delivery, HandlerError, HeraldClient, Provisioner, Publish,
    Publisher, PublisherConfig, Shutdown,
};
use herald_test_server::NatsServer;
use metrics_exporter_prometheus::{PrometheusHandle, PrometheusRecorder};
use serde_json::{json, Value};

use common::*;

const SUBJECT: &str = "usage.metered.api_call";

/// The value of the one sample named `name` whose labels include `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
            if n != name {
                return None;
            }
            let body = rest.strip_suffix('}')?;
            let mut got = BTreeMap::new();
            let mut rest = body;
            while !rest.is_empty() {
                let (k, after) = rest.split_once("=\"")?;
                let end = after.find('"')?;
                got.insert(k, &after[..end]);
                rest = after[end + 1..].trim_start_matches(',');
            }
            labels
                .iter()
                .all(|(k, v)| got.get(k) == Some(v))
                .then(|| v.parse().unwrap())
        })
        .collect();
    assert_eq!(found.len(), 1, "{name}{labels:?} in:\n{text}");
    found[0]
}

/// A shipped usage event (a fresh id each call) with this `quantity`, which the
/// consume-side handler below reads to pick its outcome.
fn usage(quantity: u64) -> Value {
    let mut e = usage_event(&uuid::Uuid::new_v4().to_string());
    e["quantity"] = json!(quantity);
    e
}

/// herald's exporter configuration, as a recorder of this test's own.
fn local_recorder() -> (PrometheusRecorder, PrometheusHandle) {
    let recorder = builder().expect("herald's exporter").build_recorder();
    let handle = recorder.handle();
    (recorder, handle)
}

async fn setup(name: &str) -> (NatsServer, HeraldClient, Arc<dyn Contracts>) {
    let server = server().await;
    let client = connect(&server, name).await;
    let contracts = contracts();
    Provisioner::new(client.clone(), contracts.clone())
        .apply(false, false)
        .await
        .expect("provision");
    (server, client, contracts)
}

#[tokio::test]
async fn publish_and_consume_paths_move_the_right_counters() {
    let (recorder, handle) = local_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let (_server, client, contracts) = setup("metrics-paths").await;
    let producer = "model-gateway";
    let consumer_service = "billing-service";
    let publisher = Publisher::new(
        client.clone(),
        contracts.clone(),
        PublisherConfig::new(producer),
    );

    // Publish side: ok, the same event again (duplicate), an invalid one.
    let a = usage(1);
    let first = publisher
        .publish(SUBJECT, &a, Publish::build())
        .await
        .unwrap();
    assert!(!first.duplicate);
    let again = publisher
        .publish(SUBJECT, &a, Publish::build())
        .await
        .unwrap();
    assert!(again.duplicate);
    let mut bad = usage(1);
    bad["quantity"] = json!(-1);
    publisher
        .publish(SUBJECT, &bad, Publish::build())
        .await
        .expect_err("invalid event refused");
    // Retried once then acked, and rejected by the handler.
    publisher
        .publish(SUBJECT, &usage(2), Publish::build())
        .await
        .unwrap();
    publisher
        .publish(SUBJECT, &usage(3), Publish::build())
        .await
        .unwrap();
    // A non-herald producer: the same bare event twice (no Nats-Msg-Id, so
    // both are stored; the consumer sees the second as a duplicate by
    // identity), and a bare invalid one.
    let bare = serde_json::to_vec(&usage(1)).unwrap();
    for body in [bare.clone(), bare, br#"{"event_type":"api_call"}"#.to_vec()] {
        client
            .jetstream()
            .publish(SUBJECT, body.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    let text = handle.render();
    let sent = |outcome| {
        value(
            &text,
            names::SENT_MESSAGES,
            &[
                ("service", producer),
                ("messaging_destination_name", SUBJECT),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(sent("ok"), 3.0);
    assert_eq!(sent("duplicate"), 1.0);
    assert_eq!(sent("invalid"), 1.0);
    assert_eq!(
        value(
            &text,
            names::SCHEMA_VALIDATION_FAILURES,
            &[("schema", "UsageEvent"), ("side", "publish")]
        ),
        1.0
    );
    // Four publishes reached the server: four round trips.
    assert_eq!(
        value(
            &text,
            &format!("{}_count", names::OPERATION_DURATION),
            &[("service", producer)]
        ),
        4.0
    );

    // Consume side.
    let config = ConsumerConfig::new(consumer_service, "usage", "usage.metered.>")
        .backoff(vec![Duration::from_millis(50)])
        .shutdown_grace(Duration::from_secs(5));
    let consumer = Consumer::new(client.clone(), contracts.clone(), config).unwrap();
    let stats = consumer.stats();
    let shutdown = Shutdown::new();
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        consumer
            .run(
                |d: Delivery| async move {
                    match d.value["quantity"].as_u64() {
                        Some(2) if d.delivered == 1 => Err(HandlerError::Retry("busy".into())),
                        Some(3) => Err(HandlerError::Reject("never".into())),
                        _ => Ok(()),
                    }
                },
                stop,
            )
            .await
            .unwrap()
    });
    // 6 stored events: 3 acked (a, quantity 2 after a retry, first bare),
    // 1 duplicate, 2 dead letters (rejected, invalid).
    wait_until("all deliveries settled", Duration::from_secs(30), || {
        let s = stats.snapshot();
        s.acked + s.duplicates + s.dead_lettered == 6
    })
    .await;
    shutdown.trigger();
    let snapshot = task.await.unwrap();
    assert_eq!(snapshot.retried, 1);

    let text = handle.render();
    let consumed = |outcome| {
        value(
            &text,
            names::CONSUMED_MESSAGES,
            &[
                ("service", consumer_service),
                ("messaging_destination_name", SUBJECT),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(consumed("ack"), 3.0);
    assert_eq!(consumed("retry"), 1.0);
    assert_eq!(consumed("dead_letter"), 2.0);
    assert_eq!(consumed("duplicate"), 1.0);
    let dlq = |reason| {
        value(
            &text,
            names::DLQ_MESSAGES,
            &[("service", consumer_service), ("reason", reason)],
        )
    };
    assert_eq!(dlq("handler_rejected"), 1.0);
    assert_eq!(dlq("schema_invalid"), 1.0);
    assert_eq!(
        value(
            &text,
            names::SCHEMA_VALIDATION_FAILURES,
            &[("schema", "UsageEvent"), ("side", "consume")]
        ),
        1.0
    );
    // The handler ran for a, quantity 2 (twice), quantity 3 and the first
    // bare event; never for the duplicate or the invalid one.
    assert_eq!(
        value(
            &text,
            &format!("{}_count", names::PROCESS_DURATION),
            &[("service", consumer_service)]
        ),
        5.0
    );
    // Event age needs ce-time: the four valid deliveries of published events.
    assert_eq!(
        value(
            &text,
            &format!("{}_count", names::EVENT_AGE),
            &[("service", consumer_service)]
        ),
        4.0
    );
}

#[tokio::test]
async fn publish_retries_are_counted() {
    let (recorder, handle) = local_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let (mut server, client, contracts) = setup("metrics-retries").await;
    let producer = "ingestion-service";
    let publisher = Publisher::new(client, contracts, PublisherConfig::new(producer));
    server.stop().await.expect("stop server");
    let event = usage(7);
    let publishing =
        tokio::spawn(async move { publisher.publish(SUBJECT, &event, Publish::build()).await });
    // The server comes back once an attempt has failed and been counted as a retry.
    let retries = |text: &str| {
        text.lines()
            .any(|l| l.starts_with(names::PUBLISH_RETRIES) && !l.ends_with(" 0"))
    };
    wait_until("a publish attempt to fail", Duration::from_secs(60), || {
        retries(&handle.render())
    })
    .await;
    server.start_again().await.expect("restart server");
    let receipt = publishing.await.unwrap().expect("published after retries");
    assert!(receipt.attempts >= 2, "attempts {}", receipt.attempts);

    let text = handle.render();
    assert_eq!(
        value(
            &text,
            names::PUBLISH_RETRIES,
            &[
                ("service", producer),
                ("messaging_destination_name", SUBJECT)
            ]
        ),
        f64::from(receipt.attempts - 1)
    );
    let sent = |outcome| {
        value(
            &text,
            names::SENT_MESSAGES,
            &[("service", producer), ("outcome", outcome)],
        )
    };
    // Stored exactly once: as new, or as a duplicate of the first attempt
    // that reached the server after all.
    let ok = if receipt.duplicate { "duplicate" } else { "ok" };
    assert_eq!(sent(ok), 1.0);
}
