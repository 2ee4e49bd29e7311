//! herald-access: who may do what on the platform.
//!
//! - [`auth`]: least-privilege NATS users derived from the catalog (`herald auth`),
//!   one per service plus the operator and the admin;
//! - [`tokens`]: the bearer tokens of `herald serve`, one per service, stored as digests.

pub mod auth;
pub mod tokens;
