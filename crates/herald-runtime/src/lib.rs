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
//! # A service in a few lines
//!
//! ```no_run
//! use std::sync::Arc;
//! use herald_contracts::events::{Cost, UsageEvent, UsageType};
//! use herald_contracts::Catalog;
//! use herald_runtime::{ConnectConfig, Service};
//! use uuid::Uuid;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let catalog = Arc::new(Catalog::embedded()?);
//!
//! // Publish: the subject comes from the event, the service must produce it.
//! let gateway = Service::connect(catalog.clone(), "model-gateway", ConnectConfig::from_env()).await?;
//! let usage = UsageEvent::new("model-gateway", Uuid::new_v4(), Uuid::new_v4(),
//!     UsageType::ModelInference, "tokens", 1500.0, Cost::new(0.03, "USD"));
//! let receipt = gateway.publisher().publish(&usage).await?;
//! println!("stored as {} #{}", receipt.stream, receipt.sequence);
//!
//! // Consume: the catalog's consumer `usage` of billing-service, with its
//! // retries, dead-letter queue, duplicate suppression, heartbeats and drain.
//! let mut billing = Service::connect(catalog, "billing-service", ConnectConfig::from_env()).await?;
//! billing.consumer("usage", |delivery| async move {
//!     let usage: UsageEvent = delivery.event()?;
//!     println!("charge {} {}", usage.tenant_id, usage.cost.amount);
//!     Ok(())
//! })?;
//! billing.run().await?; // until SIGTERM/SIGINT
//! # Ok(()) }
//! ```
//!
//! More in `crates/herald-runtime/examples/`: a publisher, a publish-and-consume
//! service, request-response and a workflow step.
//!
//! The lower layers stay public for services that need them: [`Publisher`],
//! [`Consumer`], [`Provisioner`], [`Dlq`]. They talk to the contract catalog
//! through the [`contracts::Contracts`] trait, so every piece can be driven by
//! the real catalog or by contracts built for a test.

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
pub mod replay;
pub mod service;

/// Name of the dead-letter stream (`dlq.>`).
pub const DLQ_STREAM: &str = "DLQ";
/// Name of the replay stream (`herald.replay.>`): `herald dlq replay` sends an event
/// back to the one consumer that dead-lettered it, on `herald.replay.<durable>`.
pub const REPLAY_STREAM: &str = "HERALD_REPLAY";
/// Subject prefix of the replay stream; a consumer's replays arrive on `<prefix>.<durable>`.
pub const REPLAY_PREFIX: &str = "herald.replay";

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
pub use service::{Service, ServiceError, ServicePublishError, ServicePublisher, ServiceReport};
