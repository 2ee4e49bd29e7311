//! Validators compiled on first use, each against only the schemas it references.
//!
//! Why lazily: a platform's catalog holds thousands of schema versions, and a
//! service validates a handful of subjects. Compiling every version at load made
//! every process pay time and memory for all of them. Why a registry per compile:
//! `jsonschema` copies the registry it is given into each compile, so one registry
//! of every schema made compiling all of them (`herald check`) quadratic. A compile
//! now gets the schemas its `$ref`s reach, and falls back to every schema only if
//! that smaller set does not resolve (so the outcome is the same as before).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde_json::Value;

use crate::catalog::Catalog;
use crate::evolution::uri;

/// What a lazy validator compiles.
#[derive(Debug)]
enum Source {
    /// A catalog schema, by `$id` (its document stays in the catalog).
    Schema(String),
    /// A subject's constraint, `$schema` already set.
    Constraint { subject: String, schema: Value },
}

/// A validator compiled on first use and kept; thread-safe (`OnceLock`).
#[derive(Debug)]
pub(crate) struct LazyValidator {
    source: Source,
    compiled: OnceLock<Result<jsonschema::Validator, String>>,
}

impl LazyValidator {
    /// The validator of a catalog schema version.
    pub(crate) fn schema(id: &str) -> Self {
        LazyValidator {
            source: Source::Schema(id.to_string()),
            compiled: OnceLock::new(),
        }
    }

    /// The validator of a subject's constraint.
    pub(crate) fn constraint(subject: &str, schema: Value) -> Self {
        LazyValidator {
            source: Source::Constraint {
                subject: subject.to_string(),
                schema,
            },
            compiled: OnceLock::new(),
        }
    }

    /// What it validates, as compile errors name it.
    pub(crate) fn what(&self) -> String {
        match &self.source {
            Source::Schema(id) => id.clone(),
            Source::Constraint { subject, .. } => format!("the constraint of subject {subject}"),
        }
    }

    /// Whether it has been compiled yet (successfully or not).
    pub(crate) fn is_compiled(&self) -> bool {
        self.compiled.get().is_some()
    }

    /// The compiled validator, compiling it on first call; `Err` is the compiler's
    /// message, kept so every later call reports the same.
    pub(crate) fn get(&self, catalog: &Catalog) -> Result<&jsonschema::Validator, &str> {
        self.compiled
            .get_or_init(|| self.compile(catalog))
            .as_ref()
            .map_err(String::as_str)
    }

    fn compile(&self, catalog: &Catalog) -> Result<jsonschema::Validator, String> {
        let (schema, base) = match &self.source {
            Source::Schema(id) => {
                let (id, document) = catalog
                    .document(id)
                    .ok_or_else(|| format!("no schema with $id {id}"))?;
                (document, Some(id))
            }
            Source::Constraint { schema, .. } => (schema, None),
        };
        let reached = referenced(catalog, schema, base);
        match compile_with(schema, reached.iter().copied()) {
            Ok(v) => Ok(v),
            // A `$ref` the scan could not follow (a nested `$id`, say): retry with
            // every schema, as compiles did before, and report that outcome.
            Err(_) if reached.len() < catalog.version_count() => compile_with(
                schema,
                (catalog.schemas().values().flatten()).map(|d| (d.id.as_str(), &d.document)),
            ),
            Err(e) => Err(e),
        }
    }
}

/// Compiles `schema` with a registry holding `docs` (`$id`, document; borrowed, not copied).
fn compile_with<'d>(
    schema: &Value,
    docs: impl Iterator<Item = (&'d str, &'d Value)>,
) -> Result<jsonschema::Validator, String> {
    let registry = jsonschema::Registry::new()
        .extend(docs)
        .and_then(|b| b.prepare())
        .map_err(|e| e.to_string())?;
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .with_registry(&registry)
        .build(schema)
        .map_err(|e| e.to_string())
}

/// The catalog schemas `schema` reaches through `$ref`/`$dynamicRef`, transitively,
/// resolved against `base` (each reached schema against its own `$id`); `schema`'s
/// own document excluded. A string under a `$ref` key that is data rather than a
/// keyword only adds a schema, which is harmless.
fn referenced<'c>(
    catalog: &'c Catalog,
    schema: &Value,
    base: Option<&str>,
) -> Vec<(&'c str, &'c Value)> {
    let mut seen: BTreeSet<String> = base.into_iter().map(String::from).collect();
    let mut out: Vec<(&str, &Value)> = Vec::new();
    let mut refs = Vec::new();
    collect_refs(schema, &mut refs);
    let mut queue: Vec<(String, String)> = refs
        .into_iter()
        .map(|r| (base.unwrap_or_default().to_string(), r))
        .collect();
    while let Some((from, reference)) = queue.pop() {
        let target = uri::resolve(&from, &reference);
        let (doc_uri, _) = uri::split_fragment(&target);
        let Some((id, document)) = catalog.document(doc_uri) else {
            continue;
        };
        if !seen.insert(id.to_string()) {
            continue;
        }
        out.push((id, document));
        let mut refs = Vec::new();
        collect_refs(document, &mut refs);
        queue.extend(refs.into_iter().map(|r| (id.to_string(), r)));
    }
    out
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref" | "$dynamicRef", Value::String(s)) => out.push(s.clone()),
                    _ => collect_refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}
