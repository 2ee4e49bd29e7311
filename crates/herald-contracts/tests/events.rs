//! The typed events cannot drift from the schemas: every example round-trips
//! through its Rust type unchanged, and random typed events always validate.

use herald_contracts::events::*;
use herald_contracts::{Catalog, SchemaRef};
use proptest::prelude::*;
use serde_json::Value;
use std::sync::OnceLock;

/// Compiled once for the whole file: proptest runs hundreds of cases.
fn shared() -> &'static Catalog {
    static C: OnceLock<Catalog> = OnceLock::new();
    C.get_or_init(|| Catalog::embedded().unwrap())
}

/// JSON equality where 150 and 150.0 are the same number.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn round_trip<T: Event>(value: &Value) -> Value {
    let typed: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("{} does not deserialize: {e}\n{value}", T::SCHEMA));
    serde_json::to_value(&typed).unwrap()
}

#[test]
fn every_valid_example_round_trips_through_its_type() {
    let catalog = Catalog::embedded().unwrap();
    let mut checked = 0;
    for (path, bytes) in &catalog.files().files {
        let Some(rest) = path.strip_prefix("examples/") else {
            continue;
        };
        if !rest.contains("/valid/") {
            continue;
        }
        let value: Value = serde_json::from_slice(bytes).unwrap();
        let back = match rest.split('/').next().unwrap() {
            "UsageEvent" => round_trip::<UsageEvent>(&value),
            "OrchestratorStep" => round_trip::<OrchestratorStep>(&value),
            "RealtimeMessage" => round_trip::<RealtimeMessage>(&value),
            "IngestDocumentEvent" => round_trip::<IngestDocumentEvent>(&value),
            "AlertEvent" => round_trip::<AlertEvent>(&value),
            "Heartbeat" => round_trip::<Heartbeat>(&value),
            other => panic!("no typed event for schema {other}"),
        };
        assert!(same(&value, &back), "{path} changed:\n{value}\n{back}");
        checked += 1;
    }
    assert!(checked >= 13, "only {checked} examples");
}

#[test]
fn every_schema_has_a_typed_event() {
    let catalog = Catalog::embedded().unwrap();
    let typed = [
        UsageEvent::SCHEMA,
        OrchestratorStep::SCHEMA,
        RealtimeMessage::SCHEMA,
        IngestDocumentEvent::SCHEMA,
        AlertEvent::SCHEMA,
        Heartbeat::SCHEMA,
    ];
    for name in catalog.schemas().keys().filter(|n| *n != "common") {
        assert!(typed.contains(&name.as_str()), "{name} has no Rust type");
    }
}

#[test]
fn unknown_fields_survive_a_round_trip() {
    let catalog = Catalog::embedded().unwrap();
    let bytes = &catalog.files().files["examples/UsageEvent/valid/spec-example.json"];
    let mut v: Value = serde_json::from_slice(bytes).unwrap();
    v["billing_account"] = serde_json::json!("acct-9");
    let back = round_trip::<UsageEvent>(&v);
    assert_eq!(back["billing_account"], "acct-9");
}

// ---------------------------------------------------------------- property

fn service() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,8}(-[a-z0-9]{1,6}){0,2}"
}
fn uuid() -> impl Strategy<Value = uuid::Uuid> {
    any::<u128>().prop_map(uuid::Uuid::from_u128)
}
fn time() -> impl Strategy<Value = chrono::DateTime<chrono::Utc>> {
    (0i64..4_102_444_800, 0u32..1_000_000_000)
        .prop_map(|(s, n)| chrono::DateTime::from_timestamp(s, n).expect("in range"))
}
fn text() -> impl Strategy<Value = String> {
    "\\PC{1,40}"
}
fn opt<T: std::fmt::Debug + Clone>(
    s: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<T>> {
    prop::option::of(s)
}
fn metadata() -> impl Strategy<Value = Option<serde_json::Map<String, Value>>> {
    opt(
        prop::collection::btree_map("[a-z_]{1,10}", any::<i64>(), 0..4)
            .prop_map(|m| m.into_iter().map(|(k, v)| (k, Value::from(v))).collect()),
    )
}
fn error_info() -> impl Strategy<Value = ErrorInfo> {
    ("[a-z_]{1,20}", text(), opt(any::<bool>())).prop_map(|(code, message, retryable)| ErrorInfo {
        code,
        message,
        retryable,
        details: None,
        extra: Default::default(),
    })
}

fn usage() -> impl Strategy<Value = UsageEvent> {
    (
        (uuid(), time(), service(), uuid(), uuid()),
        (
            prop::sample::select(vec![
                UsageType::ApiCall,
                UsageType::ModelInference,
                UsageType::Embedding,
                UsageType::DocumentProcessing,
                UsageType::Storage,
            ]),
            "[a-z][a-z0-9_]{0,20}",
            0.0f64..1e12,
            opt("[a-z]{1,10}"),
        ),
        (
            0.0f64..1e6,
            "[A-Z]{3}",
            opt(0.0f64..10.0),
            opt("[a-z0-9-]{1,40}"),
            metadata(),
        ),
    )
        .prop_map(
            |(
                (event_id, timestamp, service_name, user_id, tenant_id),
                (event_type, resource_type, quantity, unit),
                (amount, currency, rate, correlation_id, metadata),
            )| UsageEvent {
                schema: None,
                event_id,
                timestamp,
                service_name,
                user_id,
                tenant_id,
                event_type,
                resource_type,
                quantity,
                unit,
                cost: Cost {
                    amount,
                    currency,
                    rate,
                    extra: Default::default(),
                },
                region: None,
                correlation_id,
                metadata,
                extra: Default::default(),
            },
        )
}

fn step() -> impl Strategy<Value = OrchestratorStep> {
    (
        (uuid(), uuid(), time(), "[A-Za-z ]{1,30}", service()),
        prop::sample::select(vec![
            StepStatus::Pending,
            StepStatus::Started,
            StepStatus::Completed,
            StepStatus::Failed,
            StepStatus::Cancelled,
        ]),
        (
            opt("[a-z_]{1,20}"),
            opt(0u64..10_000_000),
            error_info(),
            metadata(),
        ),
    )
        .prop_map(
            |(
                (step_id, workflow_id, timestamp, step_name, service_name),
                status,
                (step_type, execution_time_ms, err, metadata),
            )| OrchestratorStep {
                schema: None,
                step_id,
                workflow_id,
                timestamp,
                step_name,
                status,
                service_name,
                step_type,
                execution_time_ms,
                error: (status == StepStatus::Failed).then_some(err),
                correlation_id: None,
                metadata,
                extra: Default::default(),
            },
        )
}

fn realtime() -> impl Strategy<Value = RealtimeMessage> {
    (
        (uuid(), time(), "[a-z]{1,10}:[a-z0-9-]{1,36}"),
        prop::sample::select(vec![
            MessageType::ChatMessage,
            MessageType::Notification,
            MessageType::Typing,
            MessageType::Presence,
            MessageType::System,
        ]),
        (text(), service(), opt(uuid())),
        opt(prop::collection::vec(
            (uuid(), opt("[a-z0-9-]{1,20}")),
            0..4,
        )),
    )
        .prop_map(
            |(
                (message_id, timestamp, channel),
                message_type,
                (content, service_name, user_id),
                recipients,
            )| RealtimeMessage {
                schema: None,
                message_id,
                timestamp,
                channel,
                message_type,
                payload: [("content".to_string(), Value::from(content))]
                    .into_iter()
                    .collect(),
                sender: Sender {
                    service_name,
                    user_id,
                    extra: Default::default(),
                },
                recipients: recipients.map(|r| {
                    r.into_iter()
                        .map(|(user_id, connection_id)| Recipient {
                            user_id,
                            connection_id,
                            extra: Default::default(),
                        })
                        .collect()
                }),
                correlation_id: None,
                metadata: None,
                extra: Default::default(),
            },
        )
}

fn ingest() -> impl Strategy<Value = IngestDocumentEvent> {
    (
        (uuid(), time(), service(), uuid(), opt(uuid()), uuid()),
        any::<bool>(),
        (
            opt(0u64..1 << 40),
            opt(0u64..10_000),
            opt(0u64..100_000),
            error_info(),
        ),
    )
        .prop_map(
            |(
                (event_id, timestamp, service_name, tenant_id, user_id, document_id),
                ok,
                (size_bytes, page_count, processing_time_ms, err),
            )| IngestDocumentEvent {
                schema: None,
                event_id,
                timestamp,
                service_name,
                tenant_id,
                user_id,
                document_id,
                status: if ok {
                    IngestStatus::Processed
                } else {
                    IngestStatus::Failed
                },
                source_uri: None,
                content_type: Some("application/pdf".into()),
                size_bytes,
                page_count,
                chunk_count: None,
                processing_time_ms,
                error: (!ok).then_some(err),
                correlation_id: None,
                metadata: None,
                extra: Default::default(),
            },
        )
}

fn alert() -> impl Strategy<Value = AlertEvent> {
    (
        (uuid(), time(), service(), opt(service())),
        prop::sample::select(vec![
            AlertType::ServiceDown,
            AlertType::HighLatency,
            AlertType::QuotaExceeded,
            AlertType::Backlog,
            AlertType::FailureRate,
            AlertType::SchemaViolation,
            AlertType::Connectivity,
        ]),
        prop::sample::select(vec![Severity::Info, Severity::Warning, Severity::Critical]),
        any::<bool>(),
        (
            "[A-Za-z0-9 ]{1,80}",
            opt(time()),
            uuid(),
            opt(-1e9f64..1e9),
            opt(prop::collection::btree_map(
                "[a-z]{1,8}",
                "[a-z0-9]{0,8}",
                0..3,
            )),
        ),
    )
        .prop_map(
            |(
                (alert_id, timestamp, service_name, affected_service),
                alert_type,
                severity,
                firing,
                (summary, started_at, tenant, value, labels),
            )| AlertEvent {
                schema: None,
                alert_id,
                incident_id: Some(format!("{}:{alert_id}", alert_type.as_str())),
                timestamp,
                service_name,
                affected_service,
                alert_type,
                severity,
                state: if firing {
                    AlertState::Firing
                } else {
                    AlertState::Resolved
                },
                summary,
                started_at,
                tenant_id: (alert_type == AlertType::QuotaExceeded).then_some(tenant),
                value,
                threshold: None,
                labels,
                correlation_id: None,
                metadata: None,
                extra: Default::default(),
            },
        )
}

fn heartbeat() -> impl Strategy<Value = Heartbeat> {
    (
        uuid(),
        time(),
        service(),
        uuid(),
        1u64..3_600_000,
        opt(0.0f64..1e7),
    )
        .prop_map(
            |(heartbeat_id, timestamp, service_name, instance_id, interval_ms, uptime_s)| {
                Heartbeat {
                    schema: None,
                    heartbeat_id,
                    timestamp,
                    service_name,
                    instance_id,
                    interval_ms,
                    version: Some("0.1.0".into()),
                    uptime_s,
                    metadata: None,
                    extra: Default::default(),
                }
            },
        )
}

fn assert_valid<T: Event + std::fmt::Debug>(catalog: &Catalog, event: &T) {
    let value = serde_json::to_value(event).unwrap();
    let schema: SchemaRef = T::SCHEMA.parse().unwrap();
    if let Err(e) = catalog.validate_schema(&schema, &value) {
        panic!("generated {} does not validate: {e}\n{value}", T::SCHEMA);
    }
    let back: T = serde_json::from_value(value).unwrap();
    assert_eq!(back.id(), event.id());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn generated_usage_events_validate(e in usage()) {
        let c = shared();
        assert_valid(c, &e);
        // ...and on the subject their type names, where the catalog has one. The match
        // is exhaustive: a new usage type must decide which case it is in.
        let subject = format!("usage.metered.{}", e.event_type.as_str());
        let value = serde_json::to_value(&e).unwrap();
        match e.event_type {
            UsageType::ApiCall | UsageType::ModelInference => {
                let v = c.validate(&subject, None, &value);
                prop_assert!(v.is_ok(), "{}: {:?}", subject, v.err());
            }
            UsageType::Embedding | UsageType::DocumentProcessing | UsageType::Storage => {
                // No subject carries these types yet: such an event is refused by name.
                prop_assert!(
                    matches!(
                        c.validate(&subject, None, &value),
                        Err(herald_contracts::ValidationError::UnknownSubject(ref s)) if s == &subject
                    ),
                    "{}", subject
                );
            }
        }
    }

    #[test]
    fn generated_steps_validate(e in step()) {
        let c = shared();
        assert_valid(c, &e);
    }

    #[test]
    fn generated_realtime_messages_validate(e in realtime()) {
        assert_valid(shared(), &e);
    }

    #[test]
    fn generated_ingest_events_validate(e in ingest()) {
        assert_valid(shared(), &e);
    }

    #[test]
    fn generated_alerts_validate(e in alert()) {
        let c = shared();
        assert_valid(c, &e);
        prop_assert!(c.validate(&e.alert_type.subject(), None, &serde_json::to_value(&e).unwrap()).is_ok());
    }

    #[test]
    fn generated_heartbeats_validate(e in heartbeat()) {
        assert_valid(shared(), &e);
    }
}
