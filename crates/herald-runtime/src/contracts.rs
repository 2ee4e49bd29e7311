//! What the runtime needs from the contract catalog, as a small trait.
//!
//! The runtime depends on *this* interface rather than on `Catalog` itself so
//! that provisioning, publishing and consuming can be driven by contracts built
//! for a test (a stream of its own, a subject that fails on purpose) as well as
//! by the real catalog. The types it speaks are `herald-contracts`' own:
//! [`StreamSpec`], [`ConsumerSpec`], [`ValidationError`] and [`Violation`];
//! `herald_contracts::Catalog` implements it (see `catalog_impl`).

use std::time::Duration;

pub use herald_contracts::catalog::{Discard, Storage};
pub use herald_contracts::{ConsumerSpec, StreamSpec, ValidationError, Violation};
use serde_json::Value;

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

/// A validated event: the decoded payload and the versioned schema `$id` it satisfied.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEvent {
    /// Versioned `$id` of the schema used (goes to `ce-dataschema`).
    pub schema_id: String,
    /// The decoded payload.
    pub value: Value,
}

/// The dead-letter stream `DLQ` on `dlq.>`: 30 days, file storage, room for
/// the headers a dead letter carries. Used when the contracts declare none.
pub fn dlq_stream() -> StreamSpec {
    let mut d = StreamSpec::new(crate::DLQ_STREAM, &["dlq.>"]);
    d.description = Some("herald dead-letter queue".into());
    d.max_age = Duration::from_secs(30 * 24 * 3600);
    d.max_msg_size = 2 * 1024 * 1024;
    d
}

/// The replay stream `HERALD_REPLAY` on `herald.replay.>`, shaped like `dlq` (its
/// retention, storage and replicas): replays wait there for the one consumer they are
/// for, and a replay dead-lettered again is kept there by reference.
pub fn replay_stream(dlq: &StreamSpec) -> StreamSpec {
    let mut r = dlq.clone();
    r.name = crate::REPLAY_STREAM.into();
    r.subjects = vec![format!("{}.>", crate::REPLAY_PREFIX)];
    r.description = Some("herald replays, one subject per consumer durable".into());
    r
}

/// The catalog as seen by the runtime.
pub trait Contracts: Send + Sync + 'static {
    /// Every stream to provision (the `DLQ` stream is added by the provisioner
    /// when missing).
    fn streams(&self) -> Vec<StreamSpec>;
    /// Where `subject` goes; `None` when the catalog does not know it.
    fn route(&self, subject: &str) -> Option<Route>;
    /// Validates `payload` for `subject`, against `schema_hint` (a `$id`) when given.
    fn validate(
        &self,
        subject: &str,
        schema_hint: Option<&str>,
        payload: &[u8],
    ) -> Result<ValidEvent, ValidationError>;
    /// Validates an event the caller already holds as a JSON value (a typed event),
    /// whose serialized form is `size` bytes long: the same checks as [`Contracts::validate`]
    /// without parsing bytes back into a value. The default serializes and calls `validate`;
    /// the catalog overrides it.
    fn validate_value(
        &self,
        subject: &str,
        schema_hint: Option<&str>,
        value: Value,
        size: usize,
    ) -> Result<ValidEvent, ValidationError> {
        let _ = size;
        let bytes =
            serde_json::to_vec(&value).map_err(|e| ValidationError::Decode(e.to_string()))?;
        self.validate(subject, schema_hint, &bytes)
    }
    /// Declared consumers.
    fn consumers(&self) -> Vec<ConsumerSpec> {
        Vec::new()
    }
    /// Validates an event a consumer received, with the reader's rules: the newest
    /// version of the subject's major, whatever older version the event pins. Defaults
    /// to [`Contracts::validate`].
    fn validate_received(
        &self,
        subject: &str,
        schema_hint: Option<&str>,
        payload: &[u8],
    ) -> Result<ValidEvent, ValidationError> {
        self.validate(subject, schema_hint, payload)
    }
}
