//! Error types. Two families, because callers react to them differently:
//! [`ContractError`] means the contracts themselves are broken (fix the repo),
//! [`ValidationError`] means one event is (reject or dead-letter the event).

use std::path::PathBuf;

use serde::Serialize;

/// The contracts directory could not be loaded or is inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// `catalog.toml` is not valid TOML or does not have the expected shape.
    #[error("{path}: {message}")]
    Catalog {
        /// The catalog file.
        path: PathBuf,
        /// What is wrong, with line and column where known.
        message: String,
    },
    /// A schema file is not JSON, or its `$id` does not fit its path.
    #[error("{path}: {message}")]
    Schema {
        /// The schema file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A schema (or a subject's constraint) could not be compiled into a validator.
    #[error("cannot compile {what}: {message}")]
    Compile {
        /// The schema `$id` or subject.
        what: String,
        /// The compiler's message (often an unresolvable `$ref`).
        message: String,
    },
    /// The catalog refers to something that does not exist.
    #[error("{0}")]
    Inconsistent(String),
}

/// One reason an event does not satisfy its schema.
///
/// Carries JSON Pointers, like the `jsonschema` crate, so a producer can find
/// the offending field without reading the schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Where in the event: a JSON Pointer, `""` for the whole document.
    pub instance_path: String,
    /// The JSON Schema keyword that failed (`required`, `format`, `enum`, ...).
    pub keyword: String,
    /// A readable explanation.
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

/// Why one event was refused. Each kind is a distinct reason a consumer
/// dead-letters with, so callers match on it rather than on text.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ValidationError {
    /// No catalog subject matches; publish on a subject from `herald catalog`.
    #[error("unknown subject `{0}`: it is not in the catalog (see `herald catalog`)")]
    UnknownSubject(String),
    /// The event names a schema (by `$schema` or `ce-dataschema`) the contracts do not have.
    #[error("unknown schema `{0}`: no such name and version in the contracts")]
    UnknownSchema(String),
    /// The event names a schema that is not the one its subject carries.
    #[error("schema `{schema}` does not belong on subject `{subject}`, which carries {expected}")]
    SchemaMismatch {
        /// The subject published on.
        subject: String,
        /// The schema the event named.
        schema: String,
        /// `Name@MAJOR` the catalog maps the subject to.
        expected: String,
    },
    /// The bytes are not a JSON document (or not UTF-8, or nested too deeply).
    #[error("not a JSON document: {0}")]
    Decode(String),
    /// The event is larger than the limit.
    #[error("event is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Size of the event.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The event is JSON but does not satisfy its schema.
    #[error("event does not satisfy {schema_id}: {}", summarize(.violations))]
    Invalid {
        /// The schema `$id` validated against.
        schema_id: String,
        /// Every violation, in document order.
        violations: Vec<Violation>,
    },
}

impl ValidationError {
    /// A stable machine name for the error's kind, as the dead-letter queue records it.
    pub fn reason(&self) -> &'static str {
        match self {
            ValidationError::UnknownSubject(_) => "unknown_subject",
            ValidationError::UnknownSchema(_) | ValidationError::SchemaMismatch { .. } => {
                "unknown_schema"
            }
            ValidationError::Decode(_) => "decode_error",
            ValidationError::TooLarge { .. } => "too_large",
            ValidationError::Invalid { .. } => "schema_invalid",
        }
    }

    /// The violations, when the event was decoded but invalid.
    pub fn violations(&self) -> &[Violation] {
        match self {
            ValidationError::Invalid { violations, .. } => violations,
            _ => &[],
        }
    }
}

fn summarize(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
