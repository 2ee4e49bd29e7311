//! herald-runtime: what a service links to publish and consume the platform's
//! events on NATS JetStream, checked against the contracts in
//! `herald-contracts`.
//!
//! It holds the connection, stream provisioning, the validated idempotent
//! publisher, durable pull consumers with retries and a dead-letter queue,
//! duplicate stores, heartbeats and metrics (recorded through the `metrics`
//! facade; exporting them is the application's choice, with the opt-in
//! `prometheus` feature for herald's exporter). Tools (demo, benchmarks,
//! `watch`, auth generation, `tail`) live in `herald-tools`, and the
//! real-server test harness in `herald-test-server`.
//!
//! The runtime talks to the contract catalog through the [`contracts::Contracts`]
//! trait, so every piece can be driven by the real catalog or a hand-written one.

pub mod catalog_impl;
pub mod connection;
pub mod consumer;
pub mod contracts;
pub mod dedupe;
pub mod dlq;
pub mod flows;
pub mod headers;
pub mod heartbeat;
pub mod lag;
pub mod metrics;
pub mod poison;
pub mod provision;
pub mod publisher;

/// Name of the dead-letter stream (`dlq.>`).
pub const DLQ_STREAM: &str = "DLQ";

pub use connection::{ConnectConfig, ConnectError, HeraldClient};
pub use consumer::{
    Consumer, ConsumerConfig, Delivery, HandlerError, HandlerResult, Shutdown, StatsSnapshot,
};
pub use contracts::{
    ConsumerSpec, Contracts, Route, StreamSpec, ValidEvent, ValidationError, Violation,
};
pub use dedupe::DedupeStore;
pub use dlq::{Dlq, DlqEntry, DlqFilter};
pub use provision::{Action, Plan, Provisioner};
pub use publisher::{
    Publish, PublishError, PublishErrorKind, PublishReceipt, Publisher, PublisherConfig,
};
