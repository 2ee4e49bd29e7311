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

fn step(id: &str, status: &str) -> serde_json::Value {
    json!({"step_id": id, "workflow_id": "wf-1", "timestamp": "2024-01-15T10:30:00Z",
           "step_name": "classify", "status": status})
}

#[tokio::test]
async fn request_response_resolves_by_correlation_id_and_times_out_cleanly() {
    let server = server().await;
    let client = connect(&server, "orchestrator").await;
    let contracts = TestCatalog::new().arc();
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

    // The responder: answers "started" requests with "completed", except "slow" ones late.
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
                        async move {
                            let id = d.value["step_id"].as_str().unwrap().to_string();
                            if id.starts_with("slow") {
                                tokio::time::sleep(Duration::from_millis(700)).await;
                            }
                            let mut resp = step(&id, "completed");
                            resp["execution_time_ms"] = json!(5);
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
        &step("s-1", "started"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(r.subject, "orchestrator.step.completed");
    assert_eq!(r.value["step_id"], "s-1");
    assert_eq!(r.value["status"], "completed");

    // A response that comes too late: timeout error; the late answer does not leak into the next request.
    let e = request(
        &requester,
        "orchestrator.step.started",
        &step("slow-1", "started"),
        Duration::from_millis(200),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, RequestError::Timeout { .. }), "{e}");
    let r2 = request(
        &requester,
        "orchestrator.step.started",
        &step("s-2", "started"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(r2.value["step_id"], "s-2");
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
    let contracts = TestCatalog::new().arc();
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

    for _ in 0..200 {
        if seen.lock().unwrap().len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
