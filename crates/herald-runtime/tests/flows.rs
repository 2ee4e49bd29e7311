//! Request-response and workflow patterns against a real nats-server.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_runtime::flows::{request, respond, RequestError, StepError, Workflow};
use herald_runtime::{
    Consumer, ConsumerConfig, Delivery, Provisioner, Publisher, PublisherConfig, Shutdown,
};
use serde_json::json;

use common::*;

/// A step request or response: the shipped example for `status` with its
/// `step_id` set to `id` (already a UUID, so a response keeps its request's id).
fn step(id: &str, status: &str) -> serde_json::Value {
    let mut e = step_event("unused", status);
    e["step_id"] = json!(id);
    e
}

#[tokio::test]
async fn request_response_resolves_by_correlation_id_and_times_out_cleanly() {
    let server = server().await;
    let client = connect(&server, "orchestrator").await;
    let contracts = contracts();
    Provisioner::new(client.clone(), contracts.clone())
        .apply(false, false)
        .await
        .unwrap();
    let requester = Publisher::new(
        client.clone(),
        contracts.clone(),
        PublisherConfig::new("orchestrator"),
    );
    let responder_pub = Publisher::new(
        client.clone(),
        contracts.clone(),
        PublisherConfig::new("worker"),
    );

    // The responder: answers "started" requests with "completed"; the "slow" one only
    // once the requester has given up on it (no timing involved).
    let requester_gave_up = Arc::new(tokio::sync::Notify::new());
    let gave_up = requester_gave_up.clone();
    let consumer = Consumer::new(
        client.clone(),
        contracts.clone(),
        ConsumerConfig::new("worker", "requests", "orchestrator.step.started"),
    )
    .unwrap();
    let shutdown = Shutdown::new();
    let rp = responder_pub.clone();
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            consumer
                .run(
                    move |d: Delivery| {
                        let rp = rp.clone();
                        let gave_up = gave_up.clone();
                        async move {
                            let id = d.value["step_id"].as_str().unwrap().to_string();
                            if id == event_id("slow-1") {
                                gave_up.notified().await;
                            }
                            let resp = step(&id, "completed");
                            respond(&rp, &d, "orchestrator.step.completed", &resp)
                                .await
                                .map_err(|e| herald_runtime::HandlerError::Retry(e.to_string()))?;
                            Ok(())
                        }
                    },
                    shutdown,
                )
                .await
                .unwrap()
        }
    });

    let r = request(
        &requester,
        "orchestrator.step.started",
        &step(&event_id("s-1"), "started"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(r.subject, "orchestrator.step.completed");
    assert_eq!(r.value["step_id"], event_id("s-1"));
    assert_eq!(r.value["status"], "completed");

    // A response that comes too late: timeout error; the late answer does not leak into the next request.
    let e = request(
        &requester,
        "orchestrator.step.started",
        &step(&event_id("slow-1"), "started"),
        Duration::from_millis(200),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, RequestError::Timeout { .. }), "{e}");
    requester_gave_up.notify_one();
    let r2 = request(
        &requester,
        "orchestrator.step.started",
        &step(&event_id("s-2"), "started"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(r2.value["step_id"], event_id("s-2"));
    assert_ne!(r2.correlation_id, r.correlation_id);

    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn three_step_workflow_emits_started_completed_failed_correlated_by_workflow() {
    let server = server().await;
    let client = connect(&server, "orchestrator").await;
    let contracts = contracts();
    Provisioner::new(client.clone(), contracts.clone())
        .apply(false, false)
        .await
        .unwrap();
    let p = Publisher::new(
        client.clone(),
        contracts.clone(),
        PublisherConfig::new("orchestrator"),
    );

    // An audit-log service consumes every step event.
    let seen: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let s2 = seen.clone();
    let consumer = Consumer::new(
        client.clone(),
        contracts.clone(),
        ConsumerConfig::new("audit-log", "steps", "orchestrator.step.>"),
    )
    .unwrap();
    let shutdown = Shutdown::new();
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            consumer
                .run(
                    move |d: Delivery| {
                        let s2 = s2.clone();
                        async move {
                            let mut v = d.value.clone();
                            v["_subject"] = json!(d.subject);
                            v["_correlation"] = json!(d.correlation_id);
                            s2.lock().unwrap().push(v);
                            Ok(())
                        }
                    },
                    shutdown,
                )
                .await
                .unwrap()
        }
    });

    let wf = Workflow::new(p.clone());
    let parsed: u32 = wf
        .step("parse", "ingestion-service", || async {
            Ok::<u32, (String, String)>(3)
        })
        .await
        .unwrap();
    let embedded = wf
        .step("embed", "model-gateway", || async move {
            Ok::<u32, (String, String)>(parsed * 2)
        })
        .await
        .unwrap();
    assert_eq!(embedded, 6);
    let e = wf
        .step("index", "ingestion-service", || async {
            Err::<(), _>((
                "INDEX_DOWN".to_string(),
                "search index unavailable".to_string(),
            ))
        })
        .await
        .unwrap_err();
    assert!(matches!(e, StepError::Failed { ref code, .. } if code == "INDEX_DOWN"));

    wait_until("six step events", Duration::from_secs(30), || {
        seen.lock().unwrap().len() >= 6
    })
    .await;
    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap();
    let mut events = seen.lock().unwrap().clone();
    events.sort_by_key(|v| v["timestamp"].as_str().unwrap().to_string());
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|v| {
            (
                v["step_name"].as_str().unwrap().to_string(),
                v["_subject"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(summary.len(), 6, "{summary:?}");
    for (name, subject) in [
        ("parse", "orchestrator.step.started"),
        ("parse", "orchestrator.step.completed"),
        ("embed", "orchestrator.step.started"),
        ("embed", "orchestrator.step.completed"),
        ("index", "orchestrator.step.started"),
        ("index", "orchestrator.step.failed"),
    ] {
        assert!(
            summary.contains(&(name.to_string(), subject.to_string())),
            "{name} {subject}: {summary:?}"
        );
    }
    for v in &events {
        assert_eq!(v["workflow_id"], wf.id());
        assert_eq!(v["_correlation"], wf.id());
        match v["status"].as_str().unwrap() {
            "completed" => assert!(v["execution_time_ms"].is_u64()),
            "failed" => {
                assert_eq!(v["error"]["code"], "INDEX_DOWN");
                assert_eq!(v["error"]["message"], "search index unavailable");
            }
            _ => {}
        }
    }
}
