//! The shipped contracts load, route subjects and validate the spec's examples.

use herald_contracts::{Catalog, SchemaRef, ValidationError, Version};
use serde_json::{json, Value};

fn catalog() -> Catalog {
    Catalog::embedded().expect("shipped contracts load")
}

fn example(name: &str, file: &str) -> Value {
    let c = catalog();
    let bytes = &c.files().files[&format!("examples/{name}/valid/{file}")];
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn spec_examples_validate_on_their_subjects() {
    let c = catalog();
    let cases = [
        ("UsageEvent", "usage.metered.model_inference"),
        ("OrchestratorStep", "orchestrator.step.completed"),
        ("RealtimeMessage", "realtime.push.chat_message"),
    ];
    for (schema, subject) in cases {
        let event = example(schema, "spec-example.json");
        let v = c
            .validate(subject, None, &event)
            .unwrap_or_else(|e| panic!("{schema} on {subject}: {e}"));
        assert_eq!(v.subject.schema, schema);
        assert_eq!(v.version.major, 1);
    }
}

#[test]
fn subject_constraints_make_payload_and_subject_agree() {
    let c = catalog();
    let usage = example("UsageEvent", "spec-example.json");
    let err = c
        .validate("usage.metered.api_call", None, &usage)
        .unwrap_err();
    let v = err.violations();
    assert_eq!(err.reason(), "schema_invalid");
    assert!(
        v.iter()
            .any(|v| v.instance_path == "/event_type" && v.keyword == "const"),
        "{v:?}"
    );

    let step = example("OrchestratorStep", "spec-example.json");
    let err = c
        .validate("orchestrator.step.failed", None, &step)
        .unwrap_err();
    assert!(err.violations().iter().any(|v| v.keyword == "const"));
}

#[test]
fn every_concrete_subject_routes_to_its_schema() {
    let c = catalog();
    // (subject, schema, stream, identity) for every concrete subject of the catalog.
    let expected = [
        (
            "ingest.document.processed",
            "IngestDocumentEvent",
            "INGEST",
            "event_id",
        ),
        (
            "ingest.document.failed",
            "IngestDocumentEvent",
            "INGEST",
            "event_id",
        ),
        (
            "orchestrator.step.started",
            "OrchestratorStep",
            "ORCHESTRATOR",
            "step_id",
        ),
        (
            "orchestrator.step.completed",
            "OrchestratorStep",
            "ORCHESTRATOR",
            "step_id",
        ),
        (
            "orchestrator.step.failed",
            "OrchestratorStep",
            "ORCHESTRATOR",
            "step_id",
        ),
        ("usage.metered.api_call", "UsageEvent", "USAGE", "event_id"),
        (
            "usage.metered.model_inference",
            "UsageEvent",
            "USAGE",
            "event_id",
        ),
        (
            "realtime.push.chat_message",
            "RealtimeMessage",
            "REALTIME",
            "message_id",
        ),
        (
            "realtime.push.notification",
            "RealtimeMessage",
            "REALTIME",
            "message_id",
        ),
        ("alerts.service_down", "AlertEvent", "ALERTS", "alert_id"),
        ("alerts.high_latency", "AlertEvent", "ALERTS", "alert_id"),
        ("alerts.quota_exceeded", "AlertEvent", "ALERTS", "alert_id"),
        ("alerts.backlog", "AlertEvent", "ALERTS", "alert_id"),
        ("alerts.failure_rate", "AlertEvent", "ALERTS", "alert_id"),
        (
            "alerts.schema_violation",
            "AlertEvent",
            "ALERTS",
            "alert_id",
        ),
        ("alerts.connectivity", "AlertEvent", "ALERTS", "alert_id"),
    ];
    let concrete: Vec<&str> = c
        .subjects()
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| !n.contains(['*', '>']))
        .collect();
    assert_eq!(concrete.len(), expected.len(), "{concrete:?}");
    for (subject, schema, stream, identity) in expected {
        let spec = c
            .subject(subject)
            .unwrap_or_else(|| panic!("{subject} does not route"));
        assert_eq!(spec.name, subject);
        assert_eq!(spec.schema, schema, "{subject}");
        assert_eq!(spec.identity, identity, "{subject}");
        assert!(
            c.schemas().contains_key(schema),
            "{subject}: no schema {schema}"
        );
        assert_eq!(
            c.stream_for_subject(subject).unwrap().name,
            stream,
            "{subject}"
        );
    }
    assert_eq!(
        c.subject("usage.metered.api_call").unwrap().identity,
        "event_id"
    );
    assert_eq!(
        c.subject("orchestrator.step.failed").unwrap().identity,
        "step_id"
    );
    // Pattern subjects match any token in the wildcard position.
    assert_eq!(
        c.subject("herald.heartbeat.billing-service")
            .unwrap()
            .schema,
        "Heartbeat"
    );
    assert!(c.subject("herald.heartbeat").is_none());
    assert!(c.subject("usage.metered").is_none());
    assert_eq!(
        c.stream_for_subject("usage.metered.api_call").unwrap().name,
        "USAGE"
    );
    let names: Vec<_> = c.streams().iter().map(|s| s.name.clone()).collect();
    assert_eq!(
        names,
        [
            "INGEST",
            "ORCHESTRATOR",
            "USAGE",
            "REALTIME",
            "ALERTS",
            "HERALD_HEARTBEAT",
            "DLQ"
        ]
    );
    assert_eq!(c.dlq().stream.subjects, ["dlq.>"]);
}

#[test]
fn unknown_subject_is_its_own_error() {
    let err = catalog()
        .validate("usage.metered.gpu", None, &json!({}))
        .unwrap_err();
    assert!(matches!(err, ValidationError::UnknownSubject(ref s) if s == "usage.metered.gpu"));
    assert_eq!(err.reason(), "unknown_subject");
}

#[test]
fn formats_are_asserted_not_annotated() {
    let c = catalog();
    let mut e = example("UsageEvent", "spec-example.json");
    e["timestamp"] = json!("yesterday at noon");
    e["user_id"] = json!("123");
    let err = c
        .validate("usage.metered.model_inference", None, &e)
        .unwrap_err();
    let paths: Vec<_> = err
        .violations()
        .iter()
        .map(|v| (v.instance_path.as_str(), v.keyword.as_str()))
        .collect();
    assert!(paths.contains(&("/timestamp", "format")), "{paths:?}");
    assert!(paths.contains(&("/user_id", "format")), "{paths:?}");
}

#[test]
fn new_optional_fields_are_accepted_by_old_schemas() {
    // The open content model: a consumer on 1.0.0 reads events of 1.1.0.
    let c = catalog();
    let mut e = example("UsageEvent", "spec-example.json");
    e["some_future_field"] = json!({"any": "shape"});
    assert!(c
        .validate("usage.metered.model_inference", None, &e)
        .is_ok());
}

#[test]
fn dollar_schema_selects_the_version() {
    let c = catalog();
    let id = c.schema_id("UsageEvent", Version::new(1, 0, 0));
    let mut e = example("UsageEvent", "spec-example.json");
    e["$schema"] = json!(id);
    let v = c
        .validate("usage.metered.model_inference", None, &e)
        .unwrap();
    assert_eq!(v.schema_id, id);
    assert_eq!(v.version, Version::new(1, 0, 0));

    e["$schema"] = json!(c.schema_id("UsageEvent", Version::new(1, 9, 0)));
    let err = c
        .validate("usage.metered.model_inference", None, &e)
        .unwrap_err();
    assert!(
        matches!(err, ValidationError::UnknownSchema(ref s) if s == "UsageEvent@1.9.0"),
        "{err}"
    );

    e["$schema"] = json!(c.schema_id("AlertEvent", Version::new(1, 0, 0)));
    let err = c
        .validate("usage.metered.model_inference", None, &e)
        .unwrap_err();
    assert!(
        matches!(err, ValidationError::SchemaMismatch { .. }),
        "{err}"
    );

    // A header hint wins over the payload's $schema.
    let err = c
        .validate(
            "usage.metered.model_inference",
            Some("https://elsewhere.example/x.json"),
            &example("UsageEvent", "spec-example.json"),
        )
        .unwrap_err();
    assert!(matches!(err, ValidationError::UnknownSchema(_)));
}

#[test]
fn validate_by_schema_name() {
    let c = catalog();
    let e = example("RealtimeMessage", "spec-example.json");
    let doc = c
        .validate_schema(&"RealtimeMessage".parse::<SchemaRef>().unwrap(), &e)
        .unwrap();
    assert_eq!(doc.name, "RealtimeMessage");
    let err = c
        .validate_schema(&"UsageEvent".parse::<SchemaRef>().unwrap(), &e)
        .unwrap_err();
    assert!(err.violations().len() >= 5, "{err}");
    let err = c
        .validate_schema(&"Nope@1.0.0".parse::<SchemaRef>().unwrap(), &e)
        .unwrap_err();
    assert!(matches!(err, ValidationError::UnknownSchema(ref s) if s == "Nope@1.0.0"));
}

#[test]
fn hostile_bytes_are_errors_not_crashes() {
    let c = catalog();
    let subject = "usage.metered.api_call";
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let huge = format!("{{\"x\":\"{}\"}}", "a".repeat(50 * 1024 * 1024));
    let cases: Vec<(&[u8], &str)> = vec![
        (b"", "decode_error"),
        (b"   \n", "decode_error"),
        (b"{\"a\":", "decode_error"),
        (b"\xff\xfe\x00garbage", "decode_error"),
        (b"{\"event_id\": \"\xc3\x28\"}", "decode_error"),
        (deep.as_bytes(), "decode_error"),
        (huge.as_bytes(), "too_large"),
        (b"42", "schema_invalid"),
    ];
    for (bytes, reason) in cases {
        let err = c.validate_bytes(subject, None, bytes).unwrap_err();
        assert_eq!(err.reason(), reason, "{err}");
        assert!(!err.to_string().contains('\n'), "one-line error: {err}");
    }
}

#[test]
fn consumers_get_defaults_and_durable_names() {
    let c = catalog();
    let billing = c
        .consumers()
        .iter()
        .find(|c| c.durable_name() == "billing-service--usage")
        .unwrap();
    assert_eq!(billing.max_deliver, 10);
    assert_eq!(billing.backoff.len(), 4);
    assert_eq!(billing.ack_wait.as_secs(), 30);
    let names: Vec<_> = c
        .consumers_of("usage.metered.api_call")
        .iter()
        .map(|c| c.durable_name())
        .collect();
    assert_eq!(
        names,
        ["billing-service--usage", "analytics-service--usage"]
    );
    let usage = c
        .topics()
        .iter()
        .find(|t| t.name == "usage.metered")
        .unwrap();
    // `*` means every backend service; clients publish only what names them.
    let backend: Vec<&str> = c
        .services()
        .iter()
        .filter(|s| s.kind == herald_contracts::catalog::ServiceKind::Backend)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(c.producers_of(usage), backend);
    assert!(!backend.contains(&"chat-clients"));
}
