//! herald's contracts made readable, by people and by other tools.
//!
//! The spec defines every event in JSON Schema "for validation and
//! documentation". Service teams that don't write Rust need the documentation
//! half without reading the repository, so this crate turns a loaded
//! [`Catalog`](herald_contracts::Catalog) into:
//!
//! - [`site`]: a static HTML site (index, a page per subject, schema version
//!   and service, the changelog and a producer → subject → consumer graph);
//! - [`asyncapi`]: an AsyncAPI 3.0.0 document of the catalog;
//! - [`bundle`]: one self-contained file per schema version, every `$ref`
//!   target embedded under `$defs`, for validators and code generators that
//!   have no resolver.
//!
//! It is pure: it reads only the catalog it is given, writes only where it is
//! told, and never touches a network.

pub mod asyncapi;
pub mod bundle;
pub mod error;
pub mod fields;
mod refs;
pub mod site;
pub mod words;

pub use error::DocsError;
