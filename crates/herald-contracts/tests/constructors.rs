//! The typed events' constructors build events that are valid on the subject
//! they derive, under the shipped catalog, and only optional fields are left out.

use herald_contracts::events::{
    AlertEvent, AlertState, AlertType, Cost, ErrorInfo, Event, Heartbeat, IngestDocumentEvent,
    IngestStatus, MessageType, OrchestratorStep, RealtimeMessage, Sender, Severity, StepStatus,
    UsageEvent, UsageType,
};
use herald_contracts::Catalog;
use serde_json::{Map, Value};
use uuid::Uuid;

fn assert_valid_on_its_subject<E: Event>(catalog: &Catalog, event: &E) -> String {
    let subject = event.subject();
    let value = serde_json::to_value(event).unwrap();
    if let Err(e) = catalog.validate(&subject, None, &value) {
        panic!(
            "{} built by its constructor is invalid on {subject}: {e}\n{value:#}",
            E::SCHEMA
        );
    }
    subject
}

#[test]
fn every_constructor_builds_an_event_valid_on_the_subject_it_derives() {
    let c = Catalog::embedded().unwrap();
    let (tenant, user, wf) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    for t in [UsageType::ApiCall, UsageType::ModelInference] {
        let e = UsageEvent::new(
            "model-gateway",
            tenant,
            user,
            t,
            "tokens",
            10.0,
            Cost::new(0.1, "USD"),
        );
        assert_eq!(
            assert_valid_on_its_subject(&c, &e),
            format!("usage.metered.{}", t.as_str())
        );
    }
    let started = OrchestratorStep::started("orchestrator", wf, "plan");
    assert_eq!(
        assert_valid_on_its_subject(&c, &started),
        "orchestrator.step.started"
    );
    let done = OrchestratorStep::completed("orchestrator", wf, "plan", 12);
    assert_eq!(
        assert_valid_on_its_subject(&c, &done),
        "orchestrator.step.completed"
    );
    let failed = OrchestratorStep::failed("orchestrator", wf, "plan", ErrorInfo::new("x", "y"));
    assert_eq!(
        assert_valid_on_its_subject(&c, &failed),
        "orchestrator.step.failed"
    );
    let doc = IngestDocumentEvent::processed("ingestion-service", tenant, Uuid::new_v4());
    assert_eq!(
        assert_valid_on_its_subject(&c, &doc),
        "ingest.document.processed"
    );
    let bad = IngestDocumentEvent::failed(
        "ingestion-service",
        tenant,
        Uuid::new_v4(),
        ErrorInfo::new("x", "y"),
    );
    assert_eq!(
        assert_valid_on_its_subject(&c, &bad),
        "ingest.document.failed"
    );
    let mut payload = Map::new();
    payload.insert("text".into(), Value::from("hi"));
    for t in [MessageType::ChatMessage, MessageType::Notification] {
        let m = RealtimeMessage::new(
            Sender::service("realtime-gateway"),
            "tenant-1",
            t,
            payload.clone(),
        );
        assert_eq!(
            assert_valid_on_its_subject(&c, &m),
            format!("realtime.push.{}", t.as_str())
        );
    }
    for t in [
        AlertType::ServiceDown,
        AlertType::HighLatency,
        AlertType::Backlog,
        AlertType::FailureRate,
        AlertType::SchemaViolation,
        AlertType::Connectivity,
    ] {
        let a = AlertEvent::new(
            "herald-watch",
            t,
            Severity::Warning,
            AlertState::Firing,
            "x",
        );
        assert_eq!(
            assert_valid_on_its_subject(&c, &a),
            format!("alerts.{}", t.as_str())
        );
    }
    let hb = Heartbeat::new("billing-service", Uuid::new_v4(), 0);
    assert_eq!(hb.interval_ms, 1, "the schema's minimum");
    assert_eq!(
        assert_valid_on_its_subject(&c, &hb),
        "herald.heartbeat.billing-service"
    );
}

#[test]
fn a_constrained_subject_is_derived_from_the_field_that_constrains_it() {
    assert_eq!(
        UsageType::ModelInference.subject(),
        "usage.metered.model_inference"
    );
    assert_eq!(
        StepStatus::Cancelled.subject(),
        "orchestrator.step.cancelled"
    );
    assert_eq!(IngestStatus::Failed.subject(), "ingest.document.failed");
    assert_eq!(MessageType::Typing.subject(), "realtime.push.typing");
    // The quota alert needs a tenant: the constructor leaves it out, and the
    // subject's constraint says so by name.
    let c = Catalog::embedded().unwrap();
    let a = AlertEvent::new(
        "billing-service",
        AlertType::QuotaExceeded,
        Severity::Critical,
        AlertState::Firing,
        "over",
    );
    let err = c
        .validate(&a.subject(), None, &serde_json::to_value(&a).unwrap())
        .expect_err("quota_exceeded requires tenant_id");
    assert_eq!(err.reason(), "schema_invalid");
    assert!(err.to_string().contains("tenant_id"), "{err}");
}

#[test]
fn constructors_fill_identity_and_time_and_leave_optional_fields_out() {
    let e = UsageEvent::new(
        "model-gateway",
        Uuid::nil(),
        Uuid::nil(),
        UsageType::ApiCall,
        "requests",
        1.0,
        Cost::new(0.0, "USD"),
    );
    let v = serde_json::to_value(&e).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "event_id",
            "timestamp",
            "service_name",
            "user_id",
            "tenant_id",
            "event_type",
            "resource_type",
            "quantity",
            "cost"
        ]
    );
    assert_ne!(e.event_id, Uuid::nil());
    let other = UsageEvent::new(
        "model-gateway",
        Uuid::nil(),
        Uuid::nil(),
        UsageType::ApiCall,
        "requests",
        1.0,
        Cost::new(0.0, "USD"),
    );
    assert_ne!(e.event_id, other.event_id, "a fresh identity per event");
    assert!((chrono::Utc::now() - e.timestamp).num_seconds() < 60);
    // 1.1.0's region is a field, and unknown fields are still kept.
    let mut with_region = e.clone();
    with_region.region = Some("eu-west-1".into());
    with_region
        .extra
        .insert("future_field".into(), Value::from(1));
    let back: UsageEvent =
        serde_json::from_value(serde_json::to_value(&with_region).unwrap()).unwrap();
    assert_eq!(back, with_region);
}
