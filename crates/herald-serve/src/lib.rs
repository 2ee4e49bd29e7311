//! `herald serve`: herald's guarantees over plain HTTP, for services in any
//! language, in the shapes their tools already know.
//!
//! - `POST /v1/events/{subject}` (raw JSON, CloudEvents binary or structured
//!   mode) and `POST /v1/events/{subject}:batch` (JSON Lines): validated,
//!   idempotent publishing, acknowledged only after JetStream's `PubAck`
//!   ([`publish`]);
//! - `GET /schemas/<Name>/<version>.json` at the path of each `$id`
//!   ([`schemas`]), and a read-only Confluent Schema Registry subset
//!   ([`registry`]);
//! - `/healthz`, `/readyz`, `/metrics`.
//!
//! One NATS connection per process ([`bus`]); bearer tokens per service
//! ([`access`]); graceful drain on shutdown ([`server`]).

pub mod access;
pub mod app;
pub mod bus;
pub mod cloudevents;
pub mod problem;
pub mod publish;
pub mod registry;
pub mod schemas;
pub mod server;

pub use access::{TokenFile, TOKENS_FILE};
pub use server::{start, Running, ServeConfig, ServeError};
