//! Publisher against real nats-server processes.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use futures::StreamExt;
use herald_runtime::publisher::Outgoing;
use herald_runtime::{
    headers as h, Provisioner, Publish, PublishErrorKind, Publisher, PublisherConfig,
};

use common::*;

async fn setup(name: &str) -> (herald_test_server::NatsServer, Publisher) {
    let server = server().await;
    let client = connect(&server, name).await;
    let contracts = TestCatalog::new().arc();
    Provisioner::new(client.clone(), contracts.clone())
        .apply(false, false)
        .await
        .expect("apply");
    let publisher = Publisher::new(client, contracts, PublisherConfig::new(name));
    (server, publisher)
}

async fn stream_messages(p: &Publisher, stream: &str) -> u64 {
    let mut s = p.client().jetstream().get_stream(stream).await.unwrap();
    s.info().await.unwrap().state.messages
}

#[tokio::test]
async fn same_idempotency_key_twice_stores_one_and_reports_duplicate() {
    let (_server, p) = setup("model-gateway").await;
    let first = p
        .publish(
            "usage.metered.api_call",
            &usage_event("e-1"),
            Publish::build().message_id("key-1"),
        )
        .await
        .unwrap();
    // Different event id, same idempotency key: still a duplicate.
    let second = p
        .publish(
            "usage.metered.api_call",
            &usage_event("e-2"),
            Publish::build().message_id("key-1"),
        )
        .await
        .unwrap();
    assert_eq!(first.stream, "USAGE");
    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(second.sequence, first.sequence);
    assert_eq!(stream_messages(&p, "USAGE").await, 1);

    // Without an explicit key, the identity field (event_id) is the key.
    let a = p
        .publish(
            "usage.metered.api_call",
            &usage_event("e-3"),
            Publish::build(),
        )
        .await
        .unwrap();
    let b = p
        .publish(
            "usage.metered.api_call",
            &usage_event("e-3"),
            Publish::build(),
        )
        .await
        .unwrap();
    assert_eq!(a.message_id, "e-3");
    assert!(!a.duplicate && b.duplicate);
    assert_eq!(stream_messages(&p, "USAGE").await, 2);
}

#[tokio::test]
async fn invalid_event_names_every_violation_and_sends_nothing() {
    let (_server, p) = setup("model-gateway").await;
    let mut ev = usage_event("bad-1");
    ev.as_object_mut().unwrap().remove("tenant_id");
    ev.as_object_mut().unwrap().remove("timestamp");
    ev["quantity"] = serde_json::json!("lots");
    let err = p
        .publish("usage.metered.api_call", &ev, Publish::build())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), PublishErrorKind::Invalid);
    let text = err.to_string();
    assert!(text.contains("tenant_id"), "{text}");
    assert!(text.contains("timestamp"), "{text}");
    assert!(text.contains("/quantity"), "{text}");
    match &err {
        herald_runtime::PublishError::Invalid { violations, .. } => assert_eq!(violations.len(), 3),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(stream_messages(&p, "USAGE").await, 0);

    // Not JSON at all, and an unknown subject: rejected before sending, too.
    let e = p
        .publish_json(
            "usage.metered.api_call",
            &b"{not json"[..],
            Publish::build(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), PublishErrorKind::Decode);
    let e = p
        .publish("usage.unknown", &usage_event("x"), Publish::build())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), PublishErrorKind::UnknownSubject);
    assert_eq!(stream_messages(&p, "USAGE").await, 0);
}

#[tokio::test]
async fn headers_round_trip_with_exact_names() {
    let (_server, p) = setup("model-gateway").await;
    let r = p
        .publish(
            "usage.metered.api_call",
            &usage_event("evt-42"),
            Publish::build().correlation_id("corr-7"),
        )
        .await
        .unwrap();
    let stream = p.client().jetstream().get_stream("USAGE").await.unwrap();
    let raw = stream.get_raw_message(r.sequence).await.unwrap();
    let hdrs = raw.headers;
    let get = |n: &str| hdrs.get(n).map(|v| v.as_str().to_string());
    assert_eq!(get("Nats-Msg-Id").as_deref(), Some("evt-42"));
    assert_eq!(get("Content-Type").as_deref(), Some("application/json"));
    assert_eq!(get("ce-specversion").as_deref(), Some("1.0"));
    assert_eq!(get("ce-id").as_deref(), Some("evt-42"));
    assert_eq!(get("ce-source").as_deref(), Some("model-gateway"));
    assert_eq!(get("ce-type").as_deref(), Some("usage.metered.api_call"));
    assert_eq!(get("ce-time").as_deref(), Some("2024-01-15T10:30:00Z"));
    assert_eq!(get("ce-dataschema").as_deref(), Some(USAGE_SCHEMA));
    assert_eq!(get("ce-correlationid").as_deref(), Some("corr-7"));
    let tp = get("traceparent").unwrap();
    assert!(h::trace_id(&tp).is_some(), "{tp}");
    let payload: serde_json::Value = serde_json::from_slice(&raw.payload).unwrap();
    assert_eq!(payload["event_id"], "evt-42");
}

#[tokio::test]
async fn correlation_and_trace_propagate_from_a_consumed_event() {
    let (_server, p) = setup("orchestrator").await;
    let upstream = p
        .publish(
            "usage.metered.api_call",
            &usage_event("up-1"),
            Publish::build(),
        )
        .await
        .unwrap();
    let js = p.client().jetstream();
    let up = js
        .get_stream("USAGE")
        .await
        .unwrap()
        .get_raw_message(upstream.sequence)
        .await
        .unwrap();
    // A handler publishing the next event, caused by the consumed one.
    let step = serde_json::json!({
        "step_id": "s-1", "workflow_id": "w-1", "timestamp": "2024-01-15T10:30:00Z",
        "step_name": "bill", "status": "started"
    });
    let down = p
        .publish(
            "orchestrator.step.started",
            &step,
            Publish::build().caused_by(&up.headers),
        )
        .await
        .unwrap();
    assert_eq!(down.correlation_id, upstream.correlation_id);
    let raw = js
        .get_stream("ORCHESTRATOR")
        .await
        .unwrap()
        .get_raw_message(down.sequence)
        .await
        .unwrap();
    let up_tp = up.headers.get(h::TRACEPARENT).unwrap().as_str().to_string();
    let down_tp = raw
        .headers
        .get(h::TRACEPARENT)
        .unwrap()
        .as_str()
        .to_string();
    assert_eq!(
        raw.headers.get(h::CE_CORRELATIONID).unwrap().as_str(),
        upstream.correlation_id
    );
    assert_eq!(h::trace_id(&up_tp), h::trace_id(&down_tp));
    assert_ne!(up_tp, down_tp, "child span must differ");
}

#[tokio::test]
async fn missing_stream_and_unsupported_ttl_are_typed_errors() {
    let server = server().await;
    let client = connect(&server, "svc").await;
    let p = Publisher::new(
        client.clone(),
        TestCatalog::new().arc(),
        PublisherConfig::new("svc"),
    );
    // No `streams apply`: no stream captures the subject.
    let e = p
        .publish(
            "usage.metered.api_call",
            &usage_event("n-1"),
            Publish::build(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), PublishErrorKind::NoStream, "{e}");
    if !client.supports_per_message_ttl() {
        let e = p
            .publish(
                "usage.metered.api_call",
                &usage_event("t-1"),
                Publish::build().ttl(Duration::from_secs(5)),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), PublishErrorKind::TtlUnsupported);
        assert!(e.to_string().contains(client.server_version_text()));
    }
}

#[tokio::test]
async fn server_restart_mid_publish_of_50000_events_loses_and_duplicates_nothing() {
    const N: usize = 50_000;
    let (mut server, p) = setup("model-gateway").await;
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let events: Vec<Outgoing> = (0..N)
        .map(|i| Outgoing {
            subject: "usage.metered.api_call".into(),
            payload: serde_json::to_vec(&usage_event(&format!("ev-{i:06}")))
                .unwrap()
                .into(),
            options: Publish::build(),
        })
        .collect();
    let publisher = p.clone();
    let counter = acked.clone();
    let task = tokio::spawn(async move {
        let mut failures = Vec::new();
        let mut duplicates = 0usize;
        let mut results = publisher.publish_all(events);
        while let Some((i, r)) = results.next().await {
            match r {
                Ok(rec) => {
                    duplicates += rec.duplicate as usize;
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(e) => failures.push((i, e.to_string())),
            }
        }
        (failures, duplicates)
    });
    // Restart once a fifth of the events are acknowledged (bounded wait).
    for _ in 0..6000 {
        if acked.load(std::sync::atomic::Ordering::Relaxed) >= N / 5 || task.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = acked.load(std::sync::atomic::Ordering::Relaxed);
    server.restart().await.expect("restart");
    let (failures, duplicates) = tokio::time::timeout(Duration::from_secs(240), task)
        .await
        .expect("publishing finished")
        .unwrap();
    assert!(before < N, "restart happened mid-publish ({before} acked)");
    assert!(
        failures.is_empty(),
        "false failures: {:?}",
        &failures[..failures.len().min(5)]
    );
    assert_eq!(acked.load(std::sync::atomic::Ordering::Relaxed), N);

    // Exactly N distinct events stored.
    let js = p.client().jetstream();
    let mut stream = js.get_stream("USAGE").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, N as u64);
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut msgs = consumer.messages().await.unwrap();
    let mut ids = HashSet::new();
    let mut seen = 0usize;
    while seen < N {
        let m = tokio::time::timeout(Duration::from_secs(20), msgs.next())
            .await
            .expect("read back")
            .unwrap()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        ids.insert(v["event_id"].as_str().unwrap().to_string());
        seen += 1;
    }
    assert_eq!(ids.len(), N);
    eprintln!("restart after {before} acks; {duplicates} retries were recognised as duplicates");
}

#[tokio::test]
async fn publishing_without_permission_is_permission_denied_not_a_retry_loop() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("auth.conf");
    std::fs::write(
        &conf,
        r#"
jetstream { max_file_store: 1TB, max_memory_store: 1GB }
authorization {
  users = [
    { user: admin, password: admin }
    { user: gateway, password: secret, permissions: {
        publish: { allow: ["$JS.API.>", "usage.>"] }
        subscribe: { allow: ["_INBOX_gateway.>"] }
    } }
  ]
}
"#,
    )
    .unwrap();
    let server = herald_test_server::NatsServer::start_with_args(&["-c", conf.to_str().unwrap()])
        .await
        .expect("nats-server");
    let admin = herald_runtime::HeraldClient::connect(
        herald_runtime::ConnectConfig::default()
            .url(server.url())
            .user_password("admin", "admin"),
    )
    .await
    .unwrap();
    Provisioner::new(admin, TestCatalog::new().arc())
        .apply(false, false)
        .await
        .unwrap();
    let client = herald_runtime::HeraldClient::connect(
        herald_runtime::ConnectConfig::default()
            .url(server.url())
            .name("model-gateway")
            .user_password("gateway", "secret")
            .request_timeout(Duration::from_secs(1)),
    )
    .await
    .unwrap();
    let p = Publisher::new(
        client,
        TestCatalog::new().arc(),
        PublisherConfig::new("model-gateway"),
    );
    let ok = p
        .publish(
            "usage.metered.api_call",
            &usage_event("perm-1"),
            Publish::build(),
        )
        .await
        .unwrap();
    assert_eq!(ok.stream, "USAGE");
    let step = serde_json::json!({
        "step_id": "s-perm", "workflow_id": "w-1", "timestamp": "2024-01-15T10:30:00Z",
        "step_name": "bill", "status": "started"
    });
    let e = p
        .publish("orchestrator.step.started", &step, Publish::build())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), PublishErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("orchestrator.step.started"), "{e}");
}
