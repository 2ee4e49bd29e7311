//! Validating events: by subject (the schema version the event names, else the
//! newest of the subject's major, plus the subject's constraint), as a reader
//! (always the newest), or by schema name.

use std::sync::Arc;

use serde_json::Value;

use super::messages::violations;
use super::{Catalog, Route, SubjectSpec};
use crate::error::{ValidationError, Violation};
use crate::schema::{parse_id, SchemaDoc, SchemaRef, Version};
use crate::validators::LazyValidator;

/// One version a subject accepts, with its validators (compiled on first use).
pub(super) struct RouteVersion {
    pub(super) version: Version,
    pub(super) id: String,
    /// The schema's own validator, shared with every subject using it.
    pub(super) validator: Arc<LazyValidator>,
    /// The subject's constraint, compiled on its own: checking it apart is
    /// cheaper than one `allOf` wrapper around a `$ref`.
    pub(super) constraint: Option<Arc<LazyValidator>>,
    /// The subject whose constraint `constraint` is (named in its violations).
    pub(super) constraint_of: String,
}

impl RouteVersion {
    /// Validates `event` against the schema and the subject's constraint.
    fn validate(&self, catalog: &Catalog, event: &Value) -> Result<(), ValidationError> {
        let schema = compiled(catalog, &self.validator, &self.id)?;
        let constraint = match &self.constraint {
            None => None,
            Some(c) => Some(compiled(catalog, c, &self.id)?),
        };
        if schema.is_valid(event) && constraint.is_none_or(|c| c.is_valid(event)) {
            return Ok(());
        }
        let mut violations = violations(schema, event);
        if let Some(c) = constraint {
            // Name the rule that failed: the subject's constraint, not the schema.
            violations.extend(self::violations(c, event).into_iter().map(|mut v| {
                v.message = format!(
                    "the constraint of subject {}: {}",
                    self.constraint_of, v.message
                );
                v
            }));
        }
        Err(ValidationError::Invalid {
            schema_id: self.id.clone(),
            violations,
        })
    }
}

/// A lazy validator's compiled form. One that does not compile refuses every event
/// with a violation saying so: the contracts are broken, and `herald check` (which
/// compiles every validator) reports it; loading does not, so that a process pays
/// only for the schemas it uses.
fn compiled<'c>(
    catalog: &'c Catalog,
    lazy: &'c LazyValidator,
    schema_id: &str,
) -> Result<&'c jsonschema::Validator, ValidationError> {
    lazy.get(catalog).map_err(|message| ValidationError::Invalid {
        schema_id: schema_id.to_string(),
        violations: vec![Violation {
            instance_path: String::new(),
            keyword: "$schema".into(),
            message: format!(
                "cannot compile {}: {message} (the contracts are broken; `herald check` reports it)",
                lazy.what()
            ),
        }],
    })
}

/// The outcome of a successful validation: which contract the event met.
#[derive(Debug, Clone, Copy)]
pub struct Validated<'c> {
    /// The subject's catalog entry.
    pub subject: &'c SubjectSpec,
    /// The `$id` of the exact schema version used.
    pub schema_id: &'c str,
    /// That version.
    pub version: Version,
}

impl<'c> Validated<'c> {
    /// The event's identity (the catalog's `identity` field), the default idempotency key.
    pub fn identity<'e>(&self, event: &'e Value) -> Option<&'e str> {
        event.get(&self.subject.identity).and_then(Value::as_str)
    }
}

impl Catalog {
    /// Validates an event published on `subject`.
    ///
    /// The schema version is, in order: `schema_hint` (a `ce-dataschema`
    /// header), the event's own `"$schema"` property, else the latest version
    /// of the subject's major. The subject's constraint applies too.
    pub fn validate(
        &self,
        subject: &str,
        schema_hint: Option<&str>,
        event: &Value,
    ) -> Result<Validated<'_>, ValidationError> {
        let route = self
            .route(subject)
            .ok_or_else(|| ValidationError::UnknownSubject(subject.to_string()))?;
        let spec = &self.subjects[route.subject];
        let named = schema_hint.or_else(|| event.get("$schema").and_then(Value::as_str));
        let chosen = match named {
            None => route.versions.last().expect("routes have a version"),
            Some(id) => self.pick_version(route, spec, subject, id)?,
        };
        chosen.validate(self, event)?;
        Ok(Validated {
            subject: spec,
            schema_id: &chosen.id,
            version: chosen.version,
        })
    }

    fn pick_version<'r>(
        &self,
        route: &'r Route,
        spec: &SubjectSpec,
        subject: &str,
        id: &str,
    ) -> Result<&'r RouteVersion, ValidationError> {
        if let Some(v) = route.versions.iter().find(|v| v.id == id) {
            return Ok(v);
        }
        match parse_id(&self.settings.schema_base, id) {
            Some((name, version)) if name == spec.schema && version.major == spec.major => {
                Err(ValidationError::UnknownSchema(format!("{name}@{version}")))
            }
            Some((name, version)) if self.index.contains_key(&name) || name == spec.schema => {
                Err(ValidationError::SchemaMismatch {
                    subject: subject.to_string(),
                    schema: format!("{name}@{version}"),
                    expected: format!("{}@{}", spec.schema, spec.major),
                })
            }
            _ => Err(ValidationError::UnknownSchema(id.to_string())),
        }
    }

    /// Decodes and validates raw bytes published on `subject`: the path a
    /// consumer takes for every delivery. Enforces the size limit first.
    pub fn validate_bytes(
        &self,
        subject: &str,
        schema_hint: Option<&str>,
        bytes: &[u8],
    ) -> Result<(Validated<'_>, Value), ValidationError> {
        let event = self.decode(bytes)?;
        let validated = self.validate(subject, schema_hint, &event)?;
        Ok((validated, event))
    }

    /// Validates a received event with the reader's rules: against the newest version of
    /// the subject's major, whatever version the event pins (`ce-dataschema` or
    /// `$schema`). A pinned version must still exist and be of that schema and major;
    /// pinning an older minor cannot loosen the checks (the gate guarantees every older
    /// minor's valid events stay valid under the newest).
    pub fn validate_bytes_as_reader(
        &self,
        subject: &str,
        schema_hint: Option<&str>,
        bytes: &[u8],
    ) -> Result<(Validated<'_>, Value), ValidationError> {
        let event = self.decode(bytes)?;
        let route = self
            .route(subject)
            .ok_or_else(|| ValidationError::UnknownSubject(subject.to_string()))?;
        let spec = &self.subjects[route.subject];
        if let Some(id) = schema_hint.or_else(|| event.get("$schema").and_then(Value::as_str)) {
            self.pick_version(route, spec, subject, id)?;
        }
        let newest = route.versions.last().expect("routes have a version");
        newest.validate(self, &event)?;
        Ok((
            Validated {
                subject: spec,
                schema_id: &newest.id,
                version: newest.version,
            },
            event,
        ))
    }

    /// Parses an event, refusing oversized, non-UTF-8 or over-deep input
    /// with an error rather than a panic or a stack overflow.
    pub fn decode(&self, bytes: &[u8]) -> Result<Value, ValidationError> {
        decode_event(bytes, self.settings.max_event_bytes)
    }

    /// Validates an event against a schema by name (and version, else the
    /// event's `"$schema"`, else the latest), without a subject.
    pub fn validate_schema(
        &self,
        schema: &SchemaRef,
        event: &Value,
    ) -> Result<&SchemaDoc, ValidationError> {
        let doc = match (schema.version, event.get("$schema").and_then(Value::as_str)) {
            (Some(_), _) | (None, None) => self.schema(schema),
            (None, Some(id)) => match self.schema_by_id(id) {
                Some(d) if d.name == schema.name => Some(d),
                Some(d) => {
                    return Err(ValidationError::SchemaMismatch {
                        subject: "-".into(),
                        schema: d.label(),
                        expected: schema.name.clone(),
                    })
                }
                None => return Err(ValidationError::UnknownSchema(id.to_string())),
            },
        }
        .ok_or_else(|| ValidationError::UnknownSchema(schema.to_string()))?;
        let validator = compiled(self, &self.schema_validators[&doc.id], &doc.id)?;
        if validator.is_valid(event) {
            Ok(doc)
        } else {
            Err(ValidationError::Invalid {
                schema_id: doc.id.clone(),
                violations: violations(validator, event),
            })
        }
    }
}

/// Decodes one event with a size limit; see [`Catalog::decode`].
pub fn decode_event(bytes: &[u8], limit: usize) -> Result<Value, ValidationError> {
    if bytes.len() > limit {
        return Err(ValidationError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ValidationError::Decode("empty input".into()));
    }
    // serde_json stops at 128 levels of nesting, so hostile depth is an error, not a
    // crash; duplicate member names are refused (see `decode`).
    crate::decode::parse(bytes).map_err(ValidationError::Decode)
}
