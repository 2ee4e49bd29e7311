//! herald-tools: the operator and developer tools built on the runtime. The
//! `herald` binary drives them; a service never links this crate.
//!
//! - [`demo`]: the platform's services exchanging events, faults included;
//! - [`mod@bench`]: side-by-side benchmarks against the raw client;
//! - [`monitor`]: `herald watch`, alerts from heartbeats, backlogs and dead letters;
//! - [`auth`]: least-privilege NATS users derived from the catalog;
//! - [`tail`]: follow a subject, marking invalid events;
//! - [`external`]: hand events to a command or an HTTP endpoint (`herald consume`);
//! - [`metrics_http`]: serve `/metrics` over HTTP;
//! - [`tokens`]: bearer tokens for `herald serve`, one per service.

pub mod auth;
pub mod bench;
pub mod demo;
pub mod external;
pub mod metrics_http;
pub mod monitor;
pub mod tail;
pub mod tokens;
