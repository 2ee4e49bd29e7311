//! Constructors and subjects for the typed events.
//!
//! A constructor takes the required fields, fills the identity field with a
//! fresh UUID and the timestamp with now, and leaves every optional field out.
//! Where the catalog constrains a subject by a field (`usage.metered.<event_type>`,
//! `orchestrator.step.<status>`, ...), the subject is derived from that field,
//! so a typed event cannot be published on the wrong subject; the constructors
//! for constrained statuses take what those subjects require (a failed step
//! needs an `error`, a completed one its `execution_time_ms`).

use chrono::Utc;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{
    AlertEvent, AlertState, AlertType, Cost, ErrorInfo, Heartbeat, IngestDocumentEvent,
    IngestStatus, MessageType, OrchestratorStep, RealtimeMessage, Sender, Severity, StepStatus,
    UsageEvent, UsageType,
};

impl UsageType {
    /// The subject events of this type are published on: `usage.metered.<type>`.
    pub fn subject(self) -> String {
        format!("usage.metered.{}", self.as_str())
    }
}

impl StepStatus {
    /// The subject steps in this status are published on: `orchestrator.step.<status>`.
    pub fn subject(self) -> String {
        format!("orchestrator.step.{}", self.as_str())
    }
}

impl MessageType {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::ChatMessage => "chat_message",
            MessageType::Notification => "notification",
            MessageType::Typing => "typing",
            MessageType::Presence => "presence",
            MessageType::System => "system",
        }
    }

    /// The subject messages of this type are pushed on: `realtime.push.<type>`.
    pub fn subject(self) -> String {
        format!("realtime.push.{}", self.as_str())
    }
}

impl IngestStatus {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            IngestStatus::Processed => "processed",
            IngestStatus::Failed => "failed",
        }
    }

    /// The subject documents in this status are announced on: `ingest.document.<status>`.
    pub fn subject(self) -> String {
        format!("ingest.document.{}", self.as_str())
    }
}

impl Cost {
    /// A cost of `amount` in `currency` (ISO 4217), without a rate.
    pub fn new(amount: f64, currency: impl Into<String>) -> Self {
        Cost {
            amount,
            currency: currency.into(),
            rate: None,
            extra: Map::new(),
        }
    }
}

impl ErrorInfo {
    /// An error with a machine-readable `code` and a human `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorInfo {
            code: code.into(),
            message: message.into(),
            retryable: None,
            details: None,
            extra: Map::new(),
        }
    }
}

impl Sender {
    /// A message sent by a service, on behalf of no particular user.
    pub fn service(name: impl Into<String>) -> Self {
        Sender {
            service_name: name.into(),
            user_id: None,
            extra: Map::new(),
        }
    }
}

impl UsageEvent {
    /// Usage of `quantity` `resource_type` (tokens, requests, pages) by `user`
    /// of `tenant`, metered by `service` and costing `cost`.
    pub fn new(
        service: impl Into<String>,
        tenant: Uuid,
        user: Uuid,
        event_type: UsageType,
        resource_type: impl Into<String>,
        quantity: f64,
        cost: Cost,
    ) -> Self {
        UsageEvent {
            schema: None,
            event_id: Uuid::new_v4(),
            timestamp: Utc::now(),
            service_name: service.into(),
            user_id: user,
            tenant_id: tenant,
            event_type,
            resource_type: resource_type.into(),
            quantity,
            unit: None,
            cost,
            region: None,
            correlation_id: None,
            metadata: None,
            extra: Map::new(),
        }
    }

    /// The subject this event belongs on.
    pub fn subject(&self) -> String {
        self.event_type.subject()
    }
}

impl OrchestratorStep {
    fn with_status(
        service: impl Into<String>,
        workflow: Uuid,
        step_name: impl Into<String>,
        status: StepStatus,
    ) -> Self {
        OrchestratorStep {
            schema: None,
            step_id: Uuid::new_v4(),
            workflow_id: workflow,
            timestamp: Utc::now(),
            step_name: step_name.into(),
            status,
            service_name: service.into(),
            step_type: None,
            execution_time_ms: None,
            error: None,
            correlation_id: None,
            metadata: None,
            extra: Map::new(),
        }
    }

    /// A step of `workflow` that has started.
    pub fn started(
        service: impl Into<String>,
        workflow: Uuid,
        step_name: impl Into<String>,
    ) -> Self {
        Self::with_status(service, workflow, step_name, StepStatus::Started)
    }

    /// A step that completed in `execution_time_ms` (its subject requires it).
    pub fn completed(
        service: impl Into<String>,
        workflow: Uuid,
        step_name: impl Into<String>,
        execution_time_ms: u64,
    ) -> Self {
        let mut s = Self::with_status(service, workflow, step_name, StepStatus::Completed);
        s.execution_time_ms = Some(execution_time_ms);
        s
    }

    /// A step that failed with `error` (its subject requires it).
    pub fn failed(
        service: impl Into<String>,
        workflow: Uuid,
        step_name: impl Into<String>,
        error: ErrorInfo,
    ) -> Self {
        let mut s = Self::with_status(service, workflow, step_name, StepStatus::Failed);
        s.error = Some(error);
        s
    }

    /// The subject this step belongs on.
    pub fn subject(&self) -> String {
        self.status.subject()
    }
}

impl RealtimeMessage {
    /// A message of `message_type` on `channel`, sent by `sender`.
    pub fn new(
        sender: Sender,
        channel: impl Into<String>,
        message_type: MessageType,
        payload: Map<String, Value>,
    ) -> Self {
        RealtimeMessage {
            schema: None,
            message_id: Uuid::new_v4(),
            timestamp: Utc::now(),
            channel: channel.into(),
            message_type,
            payload,
            sender,
            recipients: None,
            correlation_id: None,
            metadata: None,
            extra: Map::new(),
        }
    }

    /// The subject this message belongs on.
    pub fn subject(&self) -> String {
        self.message_type.subject()
    }
}

impl IngestDocumentEvent {
    fn with_status(
        service: impl Into<String>,
        tenant: Uuid,
        document: Uuid,
        status: IngestStatus,
    ) -> Self {
        IngestDocumentEvent {
            schema: None,
            event_id: Uuid::new_v4(),
            timestamp: Utc::now(),
            service_name: service.into(),
            tenant_id: tenant,
            user_id: None,
            document_id: document,
            status,
            source_uri: None,
            content_type: None,
            size_bytes: None,
            page_count: None,
            chunk_count: None,
            processing_time_ms: None,
            error: None,
            correlation_id: None,
            metadata: None,
            extra: Map::new(),
        }
    }

    /// A document of `tenant` that was processed.
    pub fn processed(service: impl Into<String>, tenant: Uuid, document: Uuid) -> Self {
        Self::with_status(service, tenant, document, IngestStatus::Processed)
    }

    /// A document that failed with `error` (its subject requires it).
    pub fn failed(
        service: impl Into<String>,
        tenant: Uuid,
        document: Uuid,
        error: ErrorInfo,
    ) -> Self {
        let mut e = Self::with_status(service, tenant, document, IngestStatus::Failed);
        e.error = Some(error);
        e
    }

    /// The subject this event belongs on.
    pub fn subject(&self) -> String {
        self.status.subject()
    }
}

impl AlertEvent {
    /// An alert of `alert_type` raised by `service`.
    pub fn new(
        service: impl Into<String>,
        alert_type: AlertType,
        severity: Severity,
        state: AlertState,
        summary: impl Into<String>,
    ) -> Self {
        AlertEvent {
            schema: None,
            alert_id: Uuid::new_v4(),
            incident_id: None,
            timestamp: Utc::now(),
            service_name: service.into(),
            affected_service: None,
            alert_type,
            severity,
            state,
            summary: summary.into(),
            started_at: None,
            tenant_id: None,
            value: None,
            threshold: None,
            labels: None,
            correlation_id: None,
            metadata: None,
            extra: Map::new(),
        }
    }

    /// The subject this alert belongs on.
    pub fn subject(&self) -> String {
        self.alert_type.subject()
    }
}

impl Heartbeat {
    /// A heartbeat from `instance` of `service`, announcing the next one in
    /// `interval_ms` (at least 1).
    pub fn new(service: impl Into<String>, instance: Uuid, interval_ms: u64) -> Self {
        Heartbeat {
            schema: None,
            heartbeat_id: Uuid::new_v4(),
            timestamp: Utc::now(),
            service_name: service.into(),
            instance_id: instance,
            interval_ms: interval_ms.max(1),
            version: None,
            uptime_s: None,
            metadata: None,
            extra: Map::new(),
        }
    }

    /// The subject this heartbeat belongs on: `herald.heartbeat.<service>`.
    pub fn subject(&self) -> String {
        format!("herald.heartbeat.{}", self.service_name)
    }
}
