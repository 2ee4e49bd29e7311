//! Typed Rust events for every schema in the contracts.
//!
//! They are kept by hand for readable types, and proven against the schema
//! files by tests: every shipped example deserializes and re-serializes to
//! the same JSON, and property tests generate random typed events that must
//! all validate. Unknown fields are kept in `extra`, so a service that reads
//! an event of a newer minor version and republishes it drops nothing.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// A typed event: ties a Rust type to its schema so the publisher knows what
/// to validate against and which field is the idempotency key.
pub trait Event: Serialize + DeserializeOwned + Send + Sync {
    /// The schema name in the contracts.
    const SCHEMA: &'static str;
    /// The schema major version this type models.
    const MAJOR: u64 = 1;
    /// The event's identity: the default idempotency key and `ce-id`.
    fn id(&self) -> String;
    /// When the event happened: becomes `ce-time`.
    fn time(&self) -> DateTime<Utc>;
    /// The correlation id, when the event carries one.
    fn correlation_id(&self) -> Option<&str> {
        None
    }
    /// The subject the event belongs on, derived from the field the catalog
    /// constrains it by (`usage.metered.<event_type>`, ...).
    fn subject(&self) -> String;
}

mod build;

/// What a unit of usage cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Total amount, never negative.
    pub amount: f64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Price per unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Fields of newer schema versions.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Why something failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// Machine-readable code.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Whether trying again may succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// Anything else useful for debugging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Map<String, Value>>,
    /// Fields of newer schema versions.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Kinds of metered usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageType {
    /// A call to a platform API.
    ApiCall,
    /// A model inference (tokens).
    ModelInference,
    /// An embedding computation.
    Embedding,
    /// Document processing (pages).
    DocumentProcessing,
    /// Stored data.
    Storage,
}

impl UsageType {
    /// The subject suffix and wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            UsageType::ApiCall => "api_call",
            UsageType::ModelInference => "model_inference",
            UsageType::Embedding => "embedding",
            UsageType::DocumentProcessing => "document_processing",
            UsageType::Storage => "storage",
        }
    }
}

/// `UsageEvent`: service usage for billing and analytics (`usage.metered.*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageEvent {
    /// The versioned schema `$id` the event was written with.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Unique identifier.
    pub event_id: Uuid,
    /// When the usage occurred.
    pub timestamp: DateTime<Utc>,
    /// Which service generated it.
    pub service_name: String,
    /// User who triggered it.
    pub user_id: Uuid,
    /// Tenant billed for it.
    pub tenant_id: Uuid,
    /// Type of usage.
    pub event_type: UsageType,
    /// Resource consumed (tokens, requests, pages).
    pub resource_type: String,
    /// Amount consumed.
    pub quantity: f64,
    /// Unit of quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Cost of the usage.
    pub cost: Cost,
    /// Cloud region where the usage ran (since 1.1.0), e.g. `eu-west-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Correlation id for tracing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Debugging context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Fields of newer schema versions.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Status of a workflow step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Scheduled, not yet running.
    Pending,
    /// Running.
    Started,
    /// Finished successfully.
    Completed,
    /// Finished with an error.
    Failed,
    /// Stopped before finishing.
    Cancelled,
}

impl StepStatus {
    /// The wire value (also the subject suffix for started/completed/failed).
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Started => "started",
            StepStatus::Completed => "completed",
            StepStatus::Failed => "failed",
            StepStatus::Cancelled => "cancelled",
        }
    }
}

/// `OrchestratorStep`: a workflow step's progress (`orchestrator.step.*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrchestratorStep {
    /// The versioned schema `$id` the event was written with.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Unique step identifier.
    pub step_id: Uuid,
    /// Parent workflow.
    pub workflow_id: Uuid,
    /// When the step occurred.
    pub timestamp: DateTime<Utc>,
    /// Human-readable step name.
    pub step_name: String,
    /// Current status.
    pub status: StepStatus,
    /// Service executing the step.
    pub service_name: String,
    /// Kind of work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_type: Option<String>,
    /// Time taken to execute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_time_ms: Option<u64>,
    /// Error information if failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// Correlation id for tracing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Debugging context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Fields of newer schema versions.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Kinds of real-time message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageType {
    /// A chat message.
    ChatMessage,
    /// A notification.
    Notification,
    /// Typing indicator.
    Typing,
    /// Presence change.
    Presence,
    /// System message.
    System,
}

/// Who sent a real-time message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sender {
    /// Sending service.
    pub service_name: String,
    /// Sending user, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    /// Fields of newer schema versions.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One recipient of a real-time message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipient {
    /// Receiving user.
    pub user_id: Uuid,
    /// A specific connection of that user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// Fields of newer schema versions.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `RealtimeMessage`: a message pushed to clients (`realtime.push.*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealtimeMessage {
    /// The versioned schema `$id` the event was written with.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Unique message identifier.
    pub message_id: Uuid,
    /// When it was created.
    pub timestamp: DateTime<Utc>,
    /// Channel or topic.
    pub channel: String,
    /// Type of message.
    pub message_type: MessageType,
    /// Message data.
    pub payload: Map<String, Value>,
    /// Sender.
    pub sender: Sender,
    /// Recipients; absent means everyone on the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients: Option<Vec<Recipient>>,
    /// Correlation id for tracing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Debugging context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Fields of newer schema versions.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Outcome of ingesting a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestStatus {
    /// Parsed and indexed.
    Processed,
    /// Could not be processed.
    Failed,
}

/// `IngestDocumentEvent`: a document went through ingestion (`ingest.document.*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestDocumentEvent {
    /// The versioned schema `$id` the event was written with.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Unique identifier.
    pub event_id: Uuid,
    /// When processing finished.
    pub timestamp: DateTime<Utc>,
    /// Processing service.
    pub service_name: String,
    /// Tenant owning the document.
    pub tenant_id: Uuid,
    /// Submitting user, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    /// The document.
    pub document_id: Uuid,
    /// Outcome.
    pub status: IngestStatus,
    /// Where the document came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_uri: Option<String>,
    /// MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_count: Option<u64>,
    /// Chunks produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_count: Option<u64>,
    /// Processing time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_time_ms: Option<u64>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// Correlation id for tracing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Debugging context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Fields of newer schema versions.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Kinds of alert, one per `alerts.*` subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertType {
    /// A service's heartbeats stopped.
    ServiceDown,
    /// Processing latency or event age too high.
    HighLatency,
    /// A tenant passed its quota.
    QuotaExceeded,
    /// A consumer's backlog is over threshold or growing.
    Backlog,
    /// Too many deliveries fail.
    FailureRate,
    /// Events fail schema validation.
    SchemaViolation,
    /// A service lost its NATS connection.
    Connectivity,
}

impl AlertType {
    /// The wire value; the alert is published on `alerts.<this>`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertType::ServiceDown => "service_down",
            AlertType::HighLatency => "high_latency",
            AlertType::QuotaExceeded => "quota_exceeded",
            AlertType::Backlog => "backlog",
            AlertType::FailureRate => "failure_rate",
            AlertType::SchemaViolation => "schema_violation",
            AlertType::Connectivity => "connectivity",
        }
    }

    /// The subject alerts of this type are published on.
    pub fn subject(self) -> String {
        format!("alerts.{}", self.as_str())
    }
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For the record.
    Info,
    /// Needs attention soon.
    Warning,
    /// Needs attention now.
    Critical,
}

/// Whether an alert is raised or cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition holds.
    Firing,
    /// The condition cleared.
    Resolved,
}

/// `AlertEvent`: a system alert (`alerts.*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// The versioned schema `$id` the event was written with.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Unique per notification.
    pub alert_id: Uuid,
    /// Stable across the firing, repeat and resolved events of one incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
    /// When it was raised.
    pub timestamp: DateTime<Utc>,
    /// Service raising it.
    pub service_name: String,
    /// Service it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affected_service: Option<String>,
    /// Kind of alert.
    pub alert_type: AlertType,
    /// Urgency.
    pub severity: Severity,
    /// Firing or resolved.
    pub state: AlertState,
    /// One line for a human.
    pub summary: String,
    /// When the incident began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// Tenant concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    /// Observed value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Threshold crossed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// String labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    /// Correlation id for tracing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Debugging context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Fields of newer schema versions.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `Heartbeat`: a service instance is alive (`herald.heartbeat.<service>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The versioned schema `$id` the event was written with.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Unique per heartbeat.
    pub heartbeat_id: Uuid,
    /// When it was sent.
    pub timestamp: DateTime<Utc>,
    /// The service.
    pub service_name: String,
    /// One process of the service.
    pub instance_id: Uuid,
    /// When to expect the next one.
    pub interval_ms: u64,
    /// herald version of the sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Seconds since the instance started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<f64>,
    /// Debugging context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Fields of newer schema versions.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

macro_rules! event {
    ($ty:ty, $schema:literal, $id:ident) => {
        impl Event for $ty {
            const SCHEMA: &'static str = $schema;
            fn id(&self) -> String {
                self.$id.to_string()
            }
            fn time(&self) -> DateTime<Utc> {
                self.timestamp
            }
            fn correlation_id(&self) -> Option<&str> {
                self.correlation_id.as_deref()
            }
            fn subject(&self) -> String {
                <$ty>::subject(self)
            }
        }
    };
}

event!(UsageEvent, "UsageEvent", event_id);
event!(OrchestratorStep, "OrchestratorStep", step_id);
event!(RealtimeMessage, "RealtimeMessage", message_id);
event!(IngestDocumentEvent, "IngestDocumentEvent", event_id);
event!(AlertEvent, "AlertEvent", alert_id);

impl Event for Heartbeat {
    const SCHEMA: &'static str = "Heartbeat";
    fn id(&self) -> String {
        self.heartbeat_id.to_string()
    }
    fn time(&self) -> DateTime<Utc> {
        self.timestamp
    }
    fn subject(&self) -> String {
        Heartbeat::subject(self)
    }
}
