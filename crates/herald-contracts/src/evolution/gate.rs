//! The semver gate over a catalog's schema history (part of `herald check`).
//!
//! Why: a contract's versions are only trustworthy if every step between them was
//! judged. For every schema, versions are taken in order; within a major each
//! version must keep the schema's mode guarantee against the previous version (and
//! against every earlier version of the major for transitive modes), and every
//! version must declare at least the semver bump its changes need (a larger bump is
//! fine). References between contract files resolve through the catalog itself, so
//! the gate never touches the filesystem or a network.

use super::semver::{check_bump, BumpCheck};
use super::{
    compare_documents, Document, EvolutionError, Mode, Options, Policy, Report, SchemaSource,
    Severity,
};
use crate::catalog::Catalog;
use crate::schema::SchemaDoc;
use serde::Serialize;
use serde_json::Value;

/// Resolves `$ref`s between contract files by their `$id`, from the loaded catalog.
pub struct CatalogSource<'c>(pub &'c Catalog);

impl SchemaSource for CatalogSource<'_> {
    fn load(&self, uri: &str) -> Option<Value> {
        self.0.schema_by_id(uri).map(|d| d.document.clone())
    }
}

/// The comparison options the catalog sets for `schema`: its own mode/policy if it
/// has any, else the catalog defaults, plus the catalog's severity overrides.
pub fn options_for(catalog: &Catalog, schema: &str) -> Result<Options, EvolutionError> {
    let settings = catalog.evolution();
    let own = settings.schemas.get(schema);
    let mode: Mode = own
        .and_then(|s| s.mode.as_deref())
        .unwrap_or(&settings.mode)
        .parse()?;
    let policy: Policy = own
        .and_then(|s| s.policy.as_deref())
        .unwrap_or(&settings.policy)
        .parse()?;
    let mut options = Options::new(mode).with_policy(policy);
    for (kind, severity) in &settings.overrides {
        let severity = Severity::parse(severity).ok_or_else(|| EvolutionError::UnknownOption {
            what: "severity",
            value: severity.clone(),
        })?;
        options = options.with_override(kind, severity)?;
    }
    Ok(options)
}

fn document(doc: &SchemaDoc) -> Document<'_> {
    Document::new(&doc.document).with_uri(doc.id.clone())
}

/// Compares two versions of one catalog schema (what `herald diff Name@A Name@B`
/// needs), with the schema's catalog options unless `options` is given.
pub fn compare_versions(
    catalog: &Catalog,
    schema: &str,
    old_version: &str,
    new_version: &str,
    options: Option<&Options>,
) -> Result<Report, EvolutionError> {
    let find = |v: &str| -> Result<&SchemaDoc, EvolutionError> {
        catalog
            .schemas()
            .get(schema)
            .and_then(|versions| versions.iter().find(|d| d.version.to_string() == v))
            .ok_or_else(|| EvolutionError::InvalidSchema {
                pointer: String::new(),
                reason: format!("no schema {schema}@{v} in the catalog"),
            })
    };
    let (old, new) = (find(old_version)?, find(new_version)?);
    let owned;
    let options = match options {
        Some(o) => o,
        None => {
            owned = options_for(catalog, schema)?;
            &owned
        }
    };
    compare_documents(
        &document(old),
        &document(new),
        options,
        &CatalogSource(catalog),
    )
}

/// The consumers that read `schema` (for naming them next to breaking changes).
pub fn consumers_of_schema(catalog: &Catalog, schema: &str) -> Vec<String> {
    catalog
        .consumers()
        .iter()
        .filter(|c| c.reads.schema == schema)
        .map(|c| format!("{}--{}", c.service, c.name))
        .collect()
}

/// One judged step from an earlier version to a later one.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The earlier version.
    pub old: String,
    /// The later version.
    pub new: String,
    /// The comparison.
    pub report: Report,
    /// The declared-versus-needed bump (only for consecutive versions).
    pub bump: Option<BumpCheck>,
}

/// The gate's verdict for one schema.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaGate {
    /// Schema name.
    pub schema: String,
    /// Mode applied.
    pub mode: Mode,
    /// Every comparison made.
    pub steps: Vec<Step>,
    /// Human-readable failures (empty when the schema passes).
    pub violations: Vec<String>,
}

/// The gate over a whole catalog.
#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    /// One entry per schema name, in name order.
    pub schemas: Vec<SchemaGate>,
}

impl GateReport {
    /// True when no schema has a violation.
    pub fn is_ok(&self) -> bool {
        self.schemas.iter().all(|s| s.violations.is_empty())
    }

    /// Every violation, prefixed with its schema name.
    pub fn violations(&self) -> Vec<String> {
        self.schemas
            .iter()
            .flat_map(|s| {
                s.violations
                    .iter()
                    .map(move |v| format!("{}: {v}", s.schema))
            })
            .collect()
    }
}

fn first_breaking(report: &Report) -> String {
    match report.breaking().next() {
        Some(c) => format!(
            "{} at `{}`: {}",
            c.kind,
            if c.pointer.is_empty() {
                "/"
            } else {
                &c.pointer
            },
            c.message
        ),
        None => "no breaking change".into(),
    }
}

/// Runs the gate over one schema's versions (ascending), as `herald check` does.
pub fn check_schema(catalog: &Catalog, schema: &str, versions: &[SchemaDoc]) -> SchemaGate {
    let mut gate = SchemaGate {
        schema: schema.to_string(),
        mode: Mode::default(),
        steps: Vec::new(),
        violations: Vec::new(),
    };
    let options = match options_for(catalog, schema) {
        Ok(o) => o,
        Err(e) => {
            gate.violations.push(format!("evolution settings: {e}"));
            return gate;
        }
    };
    gate.mode = options.mode;
    let source = CatalogSource(catalog);
    for (i, new) in versions.iter().enumerate().skip(1) {
        let prev = &versions[i - 1];
        // the previous version always; every earlier one of the major if transitive
        let mut against: Vec<&SchemaDoc> = vec![prev];
        if options.mode.is_transitive() {
            against.extend(
                versions[..i - 1]
                    .iter()
                    .rev()
                    .filter(|d| d.version.major == new.version.major),
            );
        }
        for old in against {
            let consecutive = std::ptr::eq(old, prev);
            let report = match compare_documents(&document(old), &document(new), &options, &source)
            {
                Ok(r) => r,
                Err(e) => {
                    gate.violations.push(format!(
                        "{} -> {}: cannot compare: {e}",
                        old.version, new.version
                    ));
                    continue;
                }
            };
            let same_major = old.version.major == new.version.major;
            if same_major && !report.compatible {
                gate.violations.push(format!(
                    "{} is not {} compatible with {}: {}; a breaking change needs a new major version ({}.0.0)",
                    new.version,
                    options.mode,
                    old.version,
                    first_breaking(&report),
                    old.version.major + 1
                ));
            }
            let bump = if consecutive {
                match check_bump(&old.version.to_string(), &new.version.to_string(), &report) {
                    Ok(b) => {
                        // an incompatible step inside a major is already reported above
                        if let Some(v) = &b.violation {
                            if !same_major || report.compatible {
                                gate.violations.push(v.clone());
                            }
                        }
                        Some(b)
                    }
                    Err(e) => {
                        gate.violations.push(e.to_string());
                        None
                    }
                }
            } else {
                None
            };
            gate.steps.push(Step {
                old: old.version.to_string(),
                new: new.version.to_string(),
                report,
                bump,
            });
        }
    }
    gate
}

/// Runs the gate over every schema of the catalog.
pub fn check_catalog(catalog: &Catalog) -> GateReport {
    GateReport {
        schemas: catalog
            .schemas()
            .iter()
            .map(|(name, versions)| check_schema(catalog, name, versions))
            .collect(),
    }
}

/// The schema location (as used in [`Change::pointer`](super::Change)) of an instance
/// field given as a JSON Pointer, e.g. `/cost/amount` →
/// `/properties/cost/properties/amount`; array indexes (`/0`, `-`, `*`) map to
/// `/items`.
pub fn schema_pointer_for_field(field: &str) -> String {
    let mut out = String::new();
    for token in field.split('/').skip(1) {
        if token == "-"
            || token == "*"
            || (!token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()))
        {
            out.push_str("/items");
        } else {
            out.push_str("/properties/");
            out.push_str(token);
        }
    }
    out
}

/// The changes in `report` that can break a consumer depending on `field` (a JSON
/// Pointer into the event): changes at the field or inside it whose **forward**
/// verdict is not compatible, since a consumer is an old reader of the producer's
/// new events (a removed field, a field no longer required, a changed type...).
pub fn changes_affecting_field<'r>(report: &'r Report, field: &str) -> Vec<&'r super::Change> {
    let at = schema_pointer_for_field(field);
    let inside = format!("{at}/");
    report
        .changes
        .iter()
        .filter(|c| c.forward != super::Verdict::Compatible)
        .filter(|c| {
            let ancestor =
                c.pointer.contains("/properties/") && at.starts_with(&format!("{}/", c.pointer));
            c.pointer == at || c.pointer.starts_with(&inside) || ancestor
        })
        .collect()
}
