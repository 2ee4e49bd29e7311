//! herald on NATS JetStream: real-server harness, connection, stream provisioning,
//! validated idempotent publisher (and, in later modules, consumers, dead-letter
//! queue and lag).
//!
//! The runtime talks to the contract catalog through the [`contracts::Contracts`]
//! trait, so every piece can be driven by the real catalog or a hand-written one.

pub mod auth;
pub mod bench;
pub mod catalog_impl;
pub mod connection;
pub mod consumer;
pub mod contracts;
pub mod dedupe;
pub mod demo;
pub mod dlq;
pub mod external;
pub mod flows;
pub mod headers;
pub mod lag;
pub mod metrics;
pub mod monitor;
pub mod provision;
pub mod publisher;
pub mod server;
pub mod tail;

/// Name of the dead-letter stream (`dlq.>`).
pub const DLQ_STREAM: &str = "DLQ";

pub use connection::{ConnectConfig, ConnectError, HeraldClient};
pub use consumer::{
    Consumer, ConsumerConfig, Delivery, HandlerError, HandlerResult, Shutdown, StatsSnapshot,
};
pub use contracts::{ContractError, Contracts, Route, StreamDef, ValidEvent, Violation};
pub use dedupe::DedupeStore;
pub use dlq::{Dlq, DlqEntry, DlqFilter};
pub use provision::{Action, Plan, Provisioner};
pub use publisher::{
    Publish, PublishError, PublishErrorKind, PublishReceipt, Publisher, PublisherConfig,
};
pub use server::{NatsCluster, NatsServer, ServerError};
