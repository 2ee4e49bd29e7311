//! Shared test support: a hand-written catalog and helpers around real servers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use herald_runtime::contracts::{
    Contracts, Route, StreamSpec, ValidEvent, ValidationError, Violation,
};
use herald_runtime::{ConnectConfig, HeraldClient};
use herald_test_server::NatsServer;
use serde_json::{json, Value};

/// A small catalog: USAGE (usage.metered.>), ORCHESTRATOR (orchestrator.step.>), with
/// "required fields" schemas standing in for the JSON Schemas.
pub struct TestCatalog {
    pub streams: Vec<StreamSpec>,
    pub subjects: BTreeMap<String, (String, &'static str, &'static str, Vec<&'static str>)>,
}

pub const USAGE_SCHEMA: &str = "https://herald.dev/schemas/UsageEvent/1.0.0";
pub const STEP_SCHEMA: &str = "https://herald.dev/schemas/OrchestratorStep/1.0.0";

impl TestCatalog {
    pub fn new() -> Self {
        let mut usage = StreamSpec::new("USAGE", &["usage.metered.>"]);
        usage.max_age = Duration::from_secs(24 * 3600);
        let orch = StreamSpec::new("ORCHESTRATOR", &["orchestrator.step.>"]);
        let usage_req = vec![
            "event_id",
            "timestamp",
            "service_name",
            "tenant_id",
            "event_type",
            "quantity",
        ];
        let step_req = vec!["step_id", "workflow_id", "timestamp", "step_name", "status"];
        let mut subjects = BTreeMap::new();
        for s in ["usage.metered.api_call", "usage.metered.model_inference"] {
            subjects.insert(
                s.to_string(),
                (
                    "USAGE".to_string(),
                    USAGE_SCHEMA,
                    "event_id",
                    usage_req.clone(),
                ),
            );
        }
        for s in [
            "orchestrator.step.started",
            "orchestrator.step.completed",
            "orchestrator.step.failed",
        ] {
            subjects.insert(
                s.to_string(),
                (
                    "ORCHESTRATOR".to_string(),
                    STEP_SCHEMA,
                    "step_id",
                    step_req.clone(),
                ),
            );
        }
        TestCatalog {
            streams: vec![usage, orch],
            subjects,
        }
    }

    pub fn arc(self) -> Arc<dyn Contracts> {
        Arc::new(self)
    }
}

impl Contracts for TestCatalog {
    fn streams(&self) -> Vec<StreamSpec> {
        self.streams.clone()
    }

    fn route(&self, subject: &str) -> Option<Route> {
        let (stream, schema, identity, _) = self.subjects.get(subject)?;
        let def = self.streams.iter().find(|s| &s.name == stream)?;
        Some(Route {
            stream: stream.clone(),
            identity_field: identity.to_string(),
            schema: schema.to_string(),
            duplicate_window: def.duplicate_window,
        })
    }

    fn validate(
        &self,
        subject: &str,
        hint: Option<&str>,
        payload: &[u8],
    ) -> Result<ValidEvent, ValidationError> {
        let (_, schema, _, required) = self
            .subjects
            .get(subject)
            .ok_or_else(|| ValidationError::UnknownSubject(subject.to_string()))?;
        if let Some(h) = hint {
            if h != *schema {
                return Err(ValidationError::UnknownSchema(h.to_string()));
            }
        }
        if payload.len() > 64 * 1024 {
            return Err(ValidationError::TooLarge {
                size: payload.len(),
                limit: 64 * 1024,
            });
        }
        let value: Value =
            serde_json::from_slice(payload).map_err(|e| ValidationError::Decode(e.to_string()))?;
        let obj = value
            .as_object()
            .ok_or_else(|| ValidationError::Decode("not a JSON object".into()))?;
        let mut violations = Vec::new();
        for f in required {
            if !obj.contains_key(*f) {
                violations.push(Violation {
                    instance_path: String::new(),
                    keyword: "required".into(),
                    message: format!("\"{f}\" is a required property"),
                });
            }
        }
        if let Some(q) = obj.get("quantity") {
            if !q.is_number() {
                violations.push(Violation {
                    instance_path: "/quantity".into(),
                    keyword: "type".into(),
                    message: format!("{q} is not of type \"number\""),
                });
            }
        }
        if violations.is_empty() {
            Ok(ValidEvent {
                schema_id: schema.to_string(),
                value,
            })
        } else {
            Err(ValidationError::Invalid {
                schema_id: schema.to_string(),
                violations,
            })
        }
    }
}

pub fn usage_event(id: &str) -> Value {
    json!({
        "event_id": id,
        "timestamp": "2024-01-15T10:30:00Z",
        "service_name": "model-gateway",
        "user_id": "123e4567-e89b-12d3-a456-426614174000",
        "tenant_id": "789e0123-e89b-12d3-a456-426614174000",
        "event_type": "api_call",
        "resource_type": "requests",
        "quantity": 1,
        "unit": "requests"
    })
}

pub async fn server() -> NatsServer {
    NatsServer::start()
        .await
        .expect("nats-server must be installed for these tests (apt-get install nats-server)")
}

pub async fn connect(server: &NatsServer, name: &str) -> HeraldClient {
    HeraldClient::connect(
        ConnectConfig::default()
            .url(server.url())
            .name(name)
            .request_timeout(Duration::from_secs(2)),
    )
    .await
    .expect("connect to test server")
}
