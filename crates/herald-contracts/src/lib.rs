//! herald's contracts: the platform's events as code.
//!
//! JSON Schema files are the source of truth. This crate loads them with the
//! topic catalog ([`Catalog`]), compiles each validator on first use, validates
//! events by subject or by schema, provides typed Rust events that are tested
//! against the schemas, checks the contracts for consistency
//! ([`check`]), and judges schema evolution ([`evolution`]).
//!
//! It does no I/O beyond reading the contracts and never touches a network:
//! `$ref`s resolve against the loaded schemas only.
//!
//! ```
//! use herald_contracts::Catalog;
//! use serde_json::json;
//!
//! let catalog = Catalog::embedded().unwrap();
//! let event = json!({"event_id": "not-a-uuid"});
//! let err = catalog.validate("usage.metered.api_call", None, &event).unwrap_err();
//! assert_eq!(err.reason(), "schema_invalid");
//! ```

pub mod catalog;
pub mod check;
mod decode;
pub mod error;
pub mod events;
pub mod evolution;
mod examples;
pub mod rules;
pub mod schema;
pub mod subject;
pub mod tags;
mod validators;
pub mod versions;

pub use catalog::{
    Catalog, ConsumerSpec, ContractFiles, StreamSpec, SubjectSpec, Topic, Validated,
};
pub use error::{ContractError, ValidationError, Violation};
pub use schema::{SchemaDoc, SchemaRef, Version};
