//! A schema's version history: the semver gate, the lock of released
//! versions, producer/consumer contracts, the changelog, and the comparison
//! with a base revision (the pull-request gate).
//!
//! The rules live here so `herald check`, `herald lock`, `herald changelog`
//! and `herald check --base` all judge the same way.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::catalog::Catalog;
use crate::evolution::semver::{check_bump, BumpCheck};
use crate::evolution::{
    self, compare_history, Document, EvolutionError, Mode, Options, Policy, Report, SchemaSource,
    Severity,
};
use crate::schema::{SchemaDoc, Version};

/// The lock file's name, beside `catalog.toml`.
pub const LOCK_FILE: &str = "schemas.lock";

impl SchemaSource for Catalog {
    fn load(&self, uri: &str) -> Option<Value> {
        self.load_borrowed(uri).cloned()
    }

    fn load_borrowed(&self, uri: &str) -> Option<&Value> {
        self.schema_by_id(uri).map(|d| &d.document)
    }
}

/// The evolution options for a schema: catalog defaults, the schema's own
/// mode and policy, and the per-change-kind overrides.
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

/// A schema version as the diff engine sees it: with its `$id` as base URI
/// and the catalog's reserved names for the schema.
pub fn document<'d>(catalog: &Catalog, doc: &'d SchemaDoc) -> Document<'d> {
    let reserved = catalog
        .evolution()
        .schemas
        .get(&doc.name)
        .map(|s| s.reserved.clone())
        .unwrap_or_default();
    Document::new(&doc.document)
        .with_uri(doc.id.clone())
        .with_reserved(reserved)
}

/// One released version judged against its predecessors.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Schema name.
    pub schema: String,
    /// The version before, if any.
    pub from: Option<Version>,
    /// This version.
    pub to: Version,
    /// Changes against the previous version (any major).
    pub changes: Option<Report>,
    /// Reports against each earlier version of the same major the mode asks for.
    pub compatibility: Vec<(Version, Report)>,
    /// Whether the declared version covers the changes.
    pub bump: Option<BumpCheck>,
}

impl Step {
    /// Why this version is not acceptable, one line each.
    pub fn violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(b) = &self.bump {
            if let Some(v) = &b.violation {
                out.push(format!("{}@{}: {v}", self.schema, self.to));
            }
        }
        for (earlier, report) in &self.compatibility {
            // The previous version's breaking changes are already the bump's business.
            if Some(*earlier) == self.from {
                continue;
            }
            if let Some(c) = report.breaking().next() {
                out.push(format!(
                    "{}@{} is not {} compatible with {earlier}: {} at `{}` ({})",
                    self.schema, self.to, report.mode, c.kind, c.pointer, c.message
                ));
            }
        }
        out
    }
}

/// Every version of a schema after its first, judged against its history.
pub fn history(catalog: &Catalog, name: &str) -> Result<Vec<Step>, EvolutionError> {
    let Some(versions) = catalog.schemas().get(name) else {
        return Ok(Vec::new());
    };
    let options = options_for(catalog, name)?;
    let mut steps = Vec::new();
    for (i, doc) in versions.iter().enumerate() {
        let Some(prev) = i.checked_sub(1).map(|p| &versions[p]) else {
            steps.push(Step {
                schema: name.to_string(),
                from: None,
                to: doc.version,
                changes: None,
                compatibility: Vec::new(),
                bump: None,
            });
            continue;
        };
        let changes = evolution::compare_documents(
            &document(catalog, prev),
            &document(catalog, doc),
            &options,
            catalog,
        )?;
        let bump = check_bump(
            &prev.version.to_string(),
            &doc.version.to_string(),
            &changes,
        )?;
        let same_major: Vec<&SchemaDoc> = versions[..i]
            .iter()
            .filter(|d| d.version.major == doc.version.major)
            .collect();
        let reports = match same_major.split_last() {
            // The last comparison is `changes` again (same documents, same options):
            // reuse it rather than diff the pair twice.
            Some((last, earlier)) if last.version == prev.version => {
                let mut reports = if options.mode.is_transitive() {
                    let docs: Vec<Document<'_>> =
                        earlier.iter().map(|d| document(catalog, d)).collect();
                    let new = document(catalog, doc);
                    (docs.iter())
                        .map(|old| evolution::compare_documents(old, &new, &options, catalog))
                        .collect::<Result<Vec<_>, _>>()?
                } else {
                    Vec::new()
                };
                reports.push(changes.clone());
                reports
            }
            _ => {
                let docs: Vec<Document<'_>> =
                    same_major.iter().map(|d| document(catalog, d)).collect();
                compare_history(&docs, &document(catalog, doc), &options, catalog)?
            }
        };
        let against: Vec<Version> = if options.mode.is_transitive() {
            same_major.iter().map(|d| d.version).collect()
        } else {
            same_major.last().map(|d| d.version).into_iter().collect()
        };
        steps.push(Step {
            schema: name.to_string(),
            from: Some(prev.version),
            to: doc.version,
            changes: Some(changes),
            compatibility: against.into_iter().zip(reports).collect(),
            bump: Some(bump),
        });
    }
    Ok(steps)
}

// ----------------------------------------------------------------- lock

/// A content hash that ignores formatting and key order but nothing else:
/// `sha256:` over the schema serialized with sorted keys.
pub fn content_hash(document: &Value) -> String {
    // Written straight into one buffer: `herald check` hashes every version, and a
    // string per key and per scalar was most of the cost.
    fn canonical(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push(b'{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut *out, k).expect("a string serializes");
                    out.push(b':');
                    canonical(&m[k], out);
                }
                out.push(b'}');
            }
            Value::Array(a) => {
                out.push(b'[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    canonical(x, out);
                }
                out.push(b']');
            }
            other => serde_json::to_writer(&mut *out, other).expect("a scalar serializes"),
        }
    }
    let mut s = Vec::new();
    canonical(document, &mut s);
    format!("sha256:{}", hex::encode(Sha256::digest(&s)))
}

/// `schemas.lock`: every released version and its content hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Lock {
    /// `Name@version` to content hash.
    pub versions: BTreeMap<String, String>,
}

impl Lock {
    /// Parses a lock file.
    pub fn parse(text: &str) -> Result<Lock, String> {
        #[derive(serde::Deserialize)]
        struct Raw {
            #[serde(default)]
            versions: BTreeMap<String, String>,
        }
        let raw: Raw = toml::from_str(text)
            .map_err(|e| format!("{LOCK_FILE}: {}", e.to_string().replace('\n', " ")))?;
        Ok(Lock {
            versions: raw.versions,
        })
    }

    /// The lock as the catalog's files hold it (empty when there is none).
    pub fn of(catalog: &Catalog) -> Result<Lock, String> {
        match catalog.files().files.get(LOCK_FILE) {
            None => Ok(Lock::default()),
            Some(bytes) => Lock::parse(&String::from_utf8_lossy(bytes)),
        }
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut s = String::from(
            "# Released schema versions and their content hashes, written by `herald lock`.\n\
             # Released versions are immutable: `herald check` fails when one is edited.\n\
             # Change a schema by adding a new version file, then run `herald lock`.\n\n[versions]\n",
        );
        for (k, v) in &self.versions {
            s.push_str(&format!("\"{k}\" = \"{v}\"\n"));
        }
        s
    }
}

/// What `herald lock` would change: versions it records, and edits it refuses.
#[derive(Debug, Clone, Serialize)]
pub struct LockUpdate {
    /// The lock with every current version recorded.
    #[serde(skip)]
    pub lock: Lock,
    /// Versions newly recorded.
    pub added: Vec<String>,
    /// Released versions whose content changed (refused).
    pub edited: Vec<String>,
    /// Released versions whose file is gone (refused).
    pub removed: Vec<String>,
}

/// Compares the schemas with the lock: what is new, edited or gone.
pub fn lock_update(catalog: &Catalog) -> Result<LockUpdate, String> {
    let old = Lock::of(catalog)?;
    let mut lock = old.clone();
    let (mut added, mut edited, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    let mut present = std::collections::HashSet::new();
    for doc in catalog.schemas().values().flatten() {
        let key = doc.label();
        let hash = content_hash(&doc.document);
        present.insert(key.clone());
        match old.versions.get(&key) {
            None => {
                lock.versions.insert(key.clone(), hash);
                added.push(key);
            }
            Some(h) if *h != hash => edited.push(format!(
                "{key} was edited after release ({h} locked, {hash} now): released versions are immutable; \
                 revert it and add the change as a new version"
            )),
            Some(_) => {}
        }
    }
    for key in old.versions.keys() {
        if !present.contains(key) {
            removed.push(format!(
                "{key} is in {LOCK_FILE} but its schema file is gone: released versions are never deleted"
            ));
        }
    }
    Ok(LockUpdate {
        lock,
        added,
        edited,
        removed,
    })
}

// ---------------------------------------------------- consumer contracts

/// Why a producer's schema no longer serves a consumer, one line each.
pub fn consumer_contract_failures(catalog: &Catalog) -> Vec<String> {
    let mut out = Vec::new();
    let subjects =
        crate::subject::FilterIndex::new(catalog.subjects().iter().map(|s| s.name.as_str()));
    for c in catalog.consumers() {
        let name = c.durable_name();
        // What producers publish: the majors of the subjects the consumer reads.
        let filter = crate::subject::Filter::parse(&c.filter);
        for s in subjects
            .overlapping(&filter)
            .into_iter()
            .map(|i| &catalog.subjects()[i])
        {
            if s.schema == c.reads.schema && s.major != c.reads.major {
                out.push(format!(
                    "{name} reads {}@{} but producers of {} moved to major {}: it would reject every event",
                    c.reads.schema, c.reads.major, s.name, s.major
                ));
            }
        }
        let Some(versions) = catalog.schemas().get(&c.reads.schema) else {
            continue;
        };
        let versions: Vec<&SchemaDoc> = versions
            .iter()
            .filter(|d| d.version.major == c.reads.major)
            .collect();
        let (Some(first), Some(latest)) = (versions.first(), versions.last()) else {
            continue;
        };
        for field in &c.fields {
            let then = field_contract(catalog, first, field);
            let now = field_contract(catalog, latest, field);
            let what = format!(
                "{name} depends on `{field}` of {}, but in {}",
                c.reads.schema,
                latest.label()
            );
            match (then, now) {
                (_, None) => out.push(format!("{what} the field no longer exists")),
                (Some(t), Some(n)) => {
                    if t.required && !n.required {
                        out.push(format!(
                            "{what} it was made optional (required in {})",
                            first.version
                        ));
                    }
                    if t.types != n.types {
                        out.push(format!(
                            "{what} its type changed from {:?} to {:?}",
                            t.types, n.types
                        ));
                    }
                }
                (None, Some(_)) => {}
            }
        }
    }
    out
}

#[derive(Debug, PartialEq)]
struct FieldContract {
    required: bool,
    types: Vec<String>,
}

/// Walks a JSON Pointer through `properties`, following `$ref`s, and says
/// whether every step is required and what types the field may have.
fn field_contract(catalog: &Catalog, doc: &SchemaDoc, pointer: &str) -> Option<FieldContract> {
    let mut base = doc.id.clone();
    let mut schema = deref(catalog, &mut base, &doc.document)?;
    let mut required = true;
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        required &= schema
            .get("required")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|v| v == token.as_str()));
        let next = schema.get("properties").and_then(|p| p.get(&token))?;
        schema = deref(catalog, &mut base, next)?;
    }
    let mut types: Vec<String> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    types.sort();
    Some(FieldContract { required, types })
}

/// Follows `$ref` chains (bounded) to the schema that has the content.
fn deref<'c>(catalog: &'c Catalog, base: &mut String, mut schema: &'c Value) -> Option<&'c Value> {
    for _ in 0..32 {
        let Some(r) = schema.get("$ref").and_then(Value::as_str) else {
            return Some(schema);
        };
        let target = evolution::uri::resolve(base, r);
        let (doc_uri, fragment) = evolution::uri::split_fragment(&target);
        let doc = catalog.schema_by_id(doc_uri)?;
        *base = doc.id.clone();
        let fragment = evolution::uri::percent_decode(fragment);
        schema = if fragment.is_empty() {
            &doc.document
        } else {
            doc.document.pointer(&fragment)?
        };
    }
    None
}

// -------------------------------------------------------------- changelog

/// The changelog of one schema, or of all, in Markdown: every version with
/// its classified changes, breaking ones first and marked. Derived from the
/// schema files every time; never kept by hand.
pub fn changelog(catalog: &Catalog, only: Option<&str>) -> Result<String, EvolutionError> {
    let mut out = String::from(
        "# Schema changelog\n\nGenerated by `herald changelog` from `contracts/schemas/`.\n",
    );
    for name in catalog.schemas().keys() {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let options = options_for(catalog, name)?;
        out.push_str(&format!("\n## {name}\n\nMode: `{}`.\n", options.mode));
        for step in history(catalog, name)?.iter().rev() {
            out.push_str(&format!("\n### {} \n\n", step.to));
            let Some(report) = &step.changes else {
                out.push_str("First version.\n");
                continue;
            };
            if report.changes.is_empty() {
                out.push_str("No schema changes.\n");
                continue;
            }
            for c in &report.changes {
                let mark = if c.severity == Severity::Breaking {
                    "**BREAKING** "
                } else {
                    ""
                };
                let at = if c.pointer.is_empty() {
                    "/"
                } else {
                    &c.pointer
                };
                out.push_str(&format!(
                    "- {mark}`{}` at `{at}`: {} ({})\n",
                    c.kind, c.message, c.severity
                ));
            }
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------- base

/// How the contracts changed since a base revision.
#[derive(Debug, Clone, Serialize)]
pub struct BaseComparison {
    /// Versions added since the base, each judged against its history.
    pub added: Vec<Step>,
    /// Versions present in both whose content differs.
    pub edited: Vec<String>,
    /// Versions in the base that are gone.
    pub removed: Vec<String>,
}

impl BaseComparison {
    /// Every reason the change may not merge.
    pub fn violations(&self) -> Vec<String> {
        let mut out: Vec<String> = self.added.iter().flat_map(Step::violations).collect();
        out.extend(self.edited.iter().cloned());
        out.extend(self.removed.iter().cloned());
        out
    }
}

/// Compares the working contracts with those of a base revision.
pub fn compare_base(base: &Catalog, head: &Catalog) -> Result<BaseComparison, EvolutionError> {
    let mut cmp = BaseComparison {
        added: Vec::new(),
        edited: Vec::new(),
        removed: Vec::new(),
    };
    for doc in base.schemas().values().flatten() {
        match head.schema_by_id(&doc.id) {
            None => cmp.removed.push(format!(
                "{} exists in the base but was deleted: released versions are never deleted",
                doc.label()
            )),
            Some(now) if content_hash(&now.document) != content_hash(&doc.document) => {
                cmp.edited.push(format!(
                    "{} was edited: released versions are immutable; add the change as a new version",
                    doc.label()
                ))
            }
            Some(_) => {}
        }
    }
    for name in head.schemas().keys() {
        for step in history(head, name)? {
            if base.schema_by_id(&head.schema_id(name, step.to)).is_none() {
                cmp.added.push(step);
            }
        }
    }
    Ok(cmp)
}
