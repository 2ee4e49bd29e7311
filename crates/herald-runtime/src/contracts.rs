//! What the runtime needs from the contract catalog, as a small trait.
//!
//! The runtime depends on *this* interface rather than on the catalog's concrete
//! types so that provisioning, publishing and consuming can be exercised with a
//! hand-written catalog in tests, and so that the catalog crate can evolve its
//! types without rippling through the transport. `herald_contracts::Catalog`
//! implements it (see `catalog_impl`).

use std::time::Duration;

use serde_json::Value;

/// Storage backend of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Files on disk: survives restarts (the default for every topic family).
    File,
    /// Memory only.
    Memory,
}

/// What a full stream does with a new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    /// Drop the oldest messages.
    Old,
    /// Refuse the new message.
    New,
}

/// The desired configuration of one JetStream stream (one per topic family).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamDef {
    /// Stream name (e.g. `USAGE`).
    pub name: String,
    /// Human description.
    pub description: Option<String>,
    /// Subjects captured (e.g. `usage.metered.>`).
    pub subjects: Vec<String>,
    /// Storage type.
    pub storage: Storage,
    /// Maximum age of a message (the topic family's TTL); zero = unlimited.
    pub max_age: Duration,
    /// Window in which a repeated `Nats-Msg-Id` is recognised as a duplicate.
    pub duplicate_window: Duration,
    /// Number of replicas (1 on a single server).
    pub replicas: usize,
    /// Largest message accepted, bytes; -1 = unlimited.
    pub max_msg_size: i32,
    /// Largest stream, bytes; -1 = unlimited.
    pub max_bytes: i64,
    /// Discard policy when limits are reached.
    pub discard: Discard,
}

impl StreamDef {
    /// A file-backed stream with herald's defaults (7 days, 2 min duplicate window, 1 replica,
    /// 1 MiB messages, unlimited bytes, discard old).
    pub fn new(name: impl Into<String>, subjects: &[&str]) -> Self {
        StreamDef {
            name: name.into(),
            description: None,
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            storage: Storage::File,
            max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            replicas: 1,
            max_msg_size: 1024 * 1024,
            max_bytes: -1,
            discard: Discard::Old,
        }
    }

    /// The dead-letter stream `DLQ` on `dlq.>`: 30 days, file storage.
    pub fn dlq() -> Self {
        let mut d = StreamDef::new(crate::DLQ_STREAM, &["dlq.>"]);
        d.description = Some("herald dead-letter queue".into());
        d.max_age = Duration::from_secs(30 * 24 * 3600);
        // Dead-lettered events carry extra headers: allow some headroom.
        d.max_msg_size = 2 * 1024 * 1024;
        d
    }
}

/// Where a subject's events go and how they are identified.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The stream capturing the subject.
    pub stream: String,
    /// The payload field holding the event's unique id (the default idempotency key).
    pub identity_field: String,
    /// Name of the schema mapped to the subject (e.g. `UsageEvent`).
    pub schema: String,
    /// The stream's duplicate window (bounds publish retries).
    pub duplicate_window: Duration,
}

/// A schema violation, as reported to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer into the event (`/cost/amount`).
    pub instance_path: String,
    /// The failing JSON Schema keyword (`required`, `type` ...).
    pub keyword: String,
    /// Human message.
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.instance_path.is_empty() {
            "/"
        } else {
            &self.instance_path
        };
        write!(f, "{path}: {} ({})", self.message, self.keyword)
    }
}

/// Why an event does not satisfy its contract. Each kind is also a dead-letter reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ContractError {
    /// No topic in the catalog covers the subject.
    #[error("unknown subject {0:?}: not in the catalog")]
    UnknownSubject(String),
    /// The named schema version (`ce-dataschema` / `$schema`) is not known.
    #[error("unknown schema {0:?}")]
    UnknownSchema(String),
    /// The payload is not JSON (or not an object).
    #[error("payload is not valid JSON: {0}")]
    Decode(String),
    /// The payload exceeds the subject's size limit.
    #[error("event is {size} bytes, limit {limit}")]
    TooLarge {
        /// Payload size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The payload violates its schema.
    #[error("event violates {schema_id}: {}", .violations.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// `$id` of the schema checked.
        schema_id: String,
        /// Every violation found.
        violations: Vec<Violation>,
    },
}

impl ContractError {
    /// Stable machine name, as recorded in `Herald-Dlq-Reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            ContractError::UnknownSubject(_) => "unknown_subject",
            ContractError::UnknownSchema(_) => "unknown_schema",
            ContractError::Decode(_) => "decode_error",
            ContractError::TooLarge { .. } => "too_large",
            ContractError::Invalid { .. } => "schema_invalid",
        }
    }
}

/// A validated event: the decoded payload and the versioned schema `$id` it satisfied.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEvent {
    /// Versioned `$id` of the schema used (goes to `ce-dataschema`).
    pub schema_id: String,
    /// The decoded payload.
    pub value: Value,
}

/// A declared consumer (service subscription) from the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerDef {
    /// Consuming service.
    pub service: String,
    /// Subscription name within the service.
    pub name: String,
    /// Subject filter.
    pub filter: String,
    /// Durable consumer name on the server.
    pub durable: String,
    /// Deliveries before dead-lettering.
    pub max_deliver: i64,
    /// Time a delivery may stay unacked.
    pub ack_wait: Duration,
    /// Unacked deliveries allowed at once.
    pub max_ack_pending: i64,
    /// Delay before redelivery n (by delivery count; last entry repeats).
    pub backoff: Vec<Duration>,
}

/// The catalog as seen by the runtime.
pub trait Contracts: Send + Sync + 'static {
    /// Every stream to provision (the `DLQ` stream is added by the provisioner).
    fn streams(&self) -> Vec<StreamDef>;
    /// Where `subject` goes; `None` when the catalog does not know it.
    fn route(&self, subject: &str) -> Option<Route>;
    /// Validates `payload` for `subject`, against `schema_hint` (a `$id`) when given.
    fn validate(
        &self,
        subject: &str,
        schema_hint: Option<&str>,
        payload: &[u8],
    ) -> Result<ValidEvent, ContractError>;
    /// Declared consumers.
    fn consumers(&self) -> Vec<ConsumerDef> {
        Vec::new()
    }
}
