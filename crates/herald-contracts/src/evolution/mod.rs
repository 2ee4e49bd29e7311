//! Schema evolution: semantic diff and compatibility of two JSON Schemas.
//!
//! Why: a producer's careless schema change breaks every consumer of an event. This
//! module decides, without network access, whether a new schema version still
//! accepts the events the old one accepted (**backward**: new readers, old events,
//! e.g. a replay) and whether old readers accept new events (**forward**), lists every
//! change with a stable kind id and a JSON Pointer, and derives the semver bump a new
//! version needs.
//!
//! Entry points:
//! - [`compare`] / [`compare_documents`]: one old/new pair → [`Report`].
//! - [`compare_history`]: a new version against earlier ones (transitive modes).
//! - [`semver::check_bump`]: does the declared version bump cover the report?
//! - [`render`]: text, Markdown and JSON (via `serde`) outputs.
//!
//! Modes follow Confluent Schema Registry (`backward`, `forward`, `full` and their
//! `-transitive` variants) plus `seed`, the platform spec's own table; the open
//! content model policy (`strict`/`lenient`) also has Confluent's meaning.

mod change;
mod diff;
mod json_type;
pub mod render;
mod resolve;
pub mod semver;
pub(crate) mod uri;

pub use change::{Action, Change, ChangeKind, Severity, Subject, Verdict, KINDS};
pub use resolve::{NoExternalSchemas, SchemaSource, DEFAULT_BASE_URI, MAX_DEPTH};
pub use semver::{Bump, Version};

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Errors a caller can match on; comparisons never panic.
#[derive(Debug, thiserror::Error)]
pub enum EvolutionError {
    /// A `$ref` whose target is neither in the schema nor supplied by the source.
    #[error("unresolvable $ref `{reference}` (resolved to `{uri}`)")]
    UnresolvableRef {
        /// The reference as written.
        reference: String,
        /// The absolute URI it resolved to.
        uri: String,
    },
    /// Input that is not a JSON Schema (e.g. a number where a schema must be).
    #[error("invalid schema at `{pointer}`: {reason}")]
    InvalidSchema {
        /// Where the problem is.
        pointer: String,
        /// What is wrong.
        reason: String,
    },
    /// Nesting (or a reference chain) deeper than the engine's limit.
    #[error("schema nested deeper than {limit} levels at `{pointer}`")]
    TooDeep {
        /// The limit ([`MAX_DEPTH`]).
        limit: usize,
        /// Where the walk stopped.
        pointer: String,
    },
    /// A version string that is not `MAJOR.MINOR.PATCH`.
    #[error("invalid version `{version}`: expected MAJOR.MINOR.PATCH")]
    InvalidVersion {
        /// The offending text.
        version: String,
    },
    /// A severity override for a change kind that does not exist.
    #[error("unknown change kind `{kind}` in severity overrides")]
    UnknownOverride {
        /// The offending key.
        kind: String,
    },
    /// A mode or policy name that does not exist.
    #[error("unknown {what} `{value}`")]
    UnknownOption {
        /// `mode` or `policy`.
        what: &'static str,
        /// The offending text.
        value: String,
    },
}

/// Which guarantee a new version must keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The platform spec's table: breaking = changing required fields, removing
    /// fields, changing field types, changing/removing enum values; everything else
    /// is judged by backward compatibility with a lenient open content model.
    #[default]
    Seed,
    /// New schema accepts all data valid under the previous version.
    Backward,
    /// Previous version accepts all data valid under the new schema.
    Forward,
    /// Both backward and forward.
    Full,
    /// Backward against every earlier version of the same major.
    BackwardTransitive,
    /// Forward against every earlier version of the same major.
    ForwardTransitive,
    /// Full against every earlier version of the same major.
    FullTransitive,
}

impl Mode {
    /// Every mode, for help texts.
    pub const ALL: &'static [Mode] = &[
        Mode::Seed,
        Mode::Backward,
        Mode::Forward,
        Mode::Full,
        Mode::BackwardTransitive,
        Mode::ForwardTransitive,
        Mode::FullTransitive,
    ];

    /// The stable name (`backward-transitive`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Seed => "seed",
            Mode::Backward => "backward",
            Mode::Forward => "forward",
            Mode::Full => "full",
            Mode::BackwardTransitive => "backward-transitive",
            Mode::ForwardTransitive => "forward-transitive",
            Mode::FullTransitive => "full-transitive",
        }
    }

    /// Whether the mode checks against every earlier version of the major.
    pub fn is_transitive(self) -> bool {
        matches!(
            self,
            Mode::BackwardTransitive | Mode::ForwardTransitive | Mode::FullTransitive
        )
    }

    /// The pairwise rule of a (possibly transitive) mode.
    pub fn pairwise(self) -> Mode {
        match self {
            Mode::BackwardTransitive => Mode::Backward,
            Mode::ForwardTransitive => Mode::Forward,
            Mode::FullTransitive => Mode::Full,
            m => m,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = EvolutionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .iter()
            .copied()
            .find(|m| m.as_str() == s.to_ascii_lowercase().replace('_', "-"))
            .ok_or_else(|| EvolutionError::UnknownOption {
                what: "mode",
                value: s.to_string(),
            })
    }
}

/// How to treat an open content model (no `additionalProperties: false`), with
/// Confluent's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Sound: an open model may already carry any property name with any type, so
    /// adding a property to it, or narrowing `additionalProperties`, is incompatible.
    #[default]
    Strict,
    /// Assumes data never uses undeclared names, so changes to the open part of a
    /// content model are compatible.
    Lenient,
}

impl Policy {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Strict => "strict",
            Policy::Lenient => "lenient",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Policy {
    type Err = EvolutionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "strict" => Ok(Policy::Strict),
            "lenient" => Ok(Policy::Lenient),
            _ => Err(EvolutionError::UnknownOption {
                what: "policy",
                value: s.to_string(),
            }),
        }
    }
}

/// Comparison settings (what the catalog carries per schema).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The guarantee to check.
    pub mode: Mode,
    /// Open content model policy (the `seed` mode always uses lenient, per its table).
    pub policy: Policy,
    /// Severity per change kind id (`"pattern.changed"`) or family (`"pattern.*"`),
    /// like oasdiff/buf rule overrides; they win over the mode's classification.
    pub overrides: BTreeMap<String, Severity>,
    /// Which `required` names are compared (default: all, which is sound).
    pub required_rule: RequiredRule,
}

/// Which `required` names a comparison looks at.
///
/// Why a choice: Confluent Schema Registry compares requiredness only for names that
/// a version declares in `properties`, so it calls `required: ["foo"]` →
/// `required: ["bar"]` (with `bar` undeclared) compatible, although every old event
/// without `bar` is rejected by the new schema. herald's default is the instance
/// semantics; [`RequiredRule::DeclaredOnly`] reproduces Confluent's rule, for
/// agreeing with a Confluent registry, never for gating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequiredRule {
    /// Every `required` name counts, declared in `properties` or not (sound).
    #[default]
    AllNames,
    /// Only names some version declares in `properties` (Confluent's rule; unsound).
    DeclaredOnly,
}

impl Options {
    /// Options for a mode with the default (strict) policy and no overrides.
    pub fn new(mode: Mode) -> Self {
        Options {
            mode,
            ..Options::default()
        }
    }

    /// Sets the `required` rule.
    pub fn with_required_rule(mut self, rule: RequiredRule) -> Self {
        self.required_rule = rule;
        self
    }

    /// Sets the policy.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Adds an override after checking that the kind (or `family.*`) exists.
    pub fn with_override(mut self, kind: &str, severity: Severity) -> Result<Self, EvolutionError> {
        validate_override_key(kind)?;
        self.overrides.insert(kind.to_string(), severity);
        Ok(self)
    }

    fn effective_policy(&self) -> Policy {
        if self.mode == Mode::Seed {
            Policy::Lenient
        } else {
            self.policy
        }
    }
}

fn validate_override_key(kind: &str) -> Result<(), EvolutionError> {
    let ok = match kind.split_once('.') {
        Some((s, "*")) => Subject::from_id(s).is_some(),
        _ => ChangeKind::parse(kind).is_some(),
    };
    if ok {
        Ok(())
    } else {
        Err(EvolutionError::UnknownOverride {
            kind: kind.to_string(),
        })
    }
}

/// One schema version to compare: the schema, the URI it lives at (base for
/// relative `$ref`s, e.g. `herald:/contracts/UsageEvent/1.0.0.json`), and the names
/// it reserves.
#[derive(Debug, Clone)]
pub struct Document<'a> {
    /// The schema.
    pub schema: &'a Value,
    /// Retrieval URI, used as base when the schema has no absolute `$id`.
    pub uri: Option<String>,
    /// Top-level property names the schema reserves: names of removed properties that
    /// must not come back with another meaning, and that later versions must keep
    /// reserving (Confluent's `confluent:reserved`).
    pub reserved: Vec<String>,
}

impl<'a> Document<'a> {
    /// A document without URI or reservations.
    pub fn new(schema: &'a Value) -> Self {
        Document {
            schema,
            uri: None,
            reserved: Vec::new(),
        }
    }

    /// Sets the retrieval URI.
    pub fn with_uri(mut self, uri: impl Into<String>) -> Self {
        self.uri = Some(uri.into());
        self
    }

    /// Sets reserved names.
    pub fn with_reserved<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.reserved = names.into_iter().map(Into::into).collect();
        self
    }

    /// Reads reserved names from Confluent schema metadata
    /// (`{"properties": {"confluent:reserved": "a,b"}}`).
    pub fn with_confluent_metadata(self, metadata: &Value) -> Self {
        let names: Vec<String> = metadata
            .get("properties")
            .and_then(|p| p.get("confluent:reserved"))
            .and_then(Value::as_str)
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        self.with_reserved(names)
    }
}

/// The result of comparing two versions.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Mode used for severities.
    pub mode: Mode,
    /// Effective open content model policy.
    pub policy: Policy,
    /// Every change, most severe first (schema walk order within a severity).
    pub changes: Vec<Change>,
    /// No change is breaking under the mode (after overrides).
    pub compatible: bool,
    /// Overall backward verdict (all changes).
    pub backward: Verdict,
    /// Overall forward verdict (all changes).
    pub forward: Verdict,
    /// The smallest semver bump the new version needs.
    pub needed_bump: Bump,
}

impl Report {
    /// The changes that make the report incompatible.
    pub fn breaking(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(|c| c.severity == Severity::Breaking)
    }
}

/// Kinds the spec's table calls breaking whatever the data says ("changing required
/// fields, removing fields, changing field types, changing or removing enum values").
const SEED_BREAKING: &[(Subject, Action)] = &[
    (Subject::Required, Action::Added),
    (Subject::Required, Action::Removed),
    (Subject::Property, Action::Removed),
    (Subject::Type, Action::Narrowed),
    (Subject::Type, Action::Widened),
    (Subject::Type, Action::Changed),
    (Subject::Type, Action::NullAdded),
    (Subject::Type, Action::NullRemoved),
    (Subject::Enum, Action::ValueRemoved),
    (Subject::Enum, Action::Added),
];

/// The severity of one change under a mode and the overrides.
pub fn classify(change: &Change, mode: Mode, overrides: &BTreeMap<String, Severity>) -> Severity {
    if let Some(s) = overrides
        .get(&change.kind.id())
        .or_else(|| overrides.get(&format!("{}.*", change.kind.subject.id())))
    {
        return *s;
    }
    if change.kind.is_annotation() {
        return Severity::Annotation;
    }
    let verdict = match mode.pairwise() {
        Mode::Forward => change.forward,
        Mode::Full => change.backward.and(change.forward),
        Mode::Seed if SEED_BREAKING.contains(&(change.kind.subject, change.kind.action)) => {
            Verdict::Incompatible
        }
        _ => change.backward,
    };
    match verdict {
        Verdict::Compatible => Severity::NonBreaking,
        Verdict::Incompatible | Verdict::Unknown => Severity::Breaking,
    }
}

/// Compares two self-describing schemas (no retrieval URI, no reservations).
pub fn compare(
    old: &Value,
    new: &Value,
    options: &Options,
    source: &dyn SchemaSource,
) -> Result<Report, EvolutionError> {
    compare_documents(&Document::new(old), &Document::new(new), options, source)
}

/// Compares two schema versions.
pub fn compare_documents(
    old: &Document<'_>,
    new: &Document<'_>,
    options: &Options,
    source: &dyn SchemaSource,
) -> Result<Report, EvolutionError> {
    for k in options.overrides.keys() {
        validate_override_key(k)?;
    }
    let policy = options.effective_policy();
    let uo = resolve::Universe::build(old.schema, old.uri.as_deref(), source)?;
    let un = resolve::Universe::build(new.schema, new.uri.as_deref(), source)?;
    let mut differ = diff::Differ::new(policy, options.required_rule);
    let oa = differ.alt_of(&[uo.root()])?;
    let na = differ.alt_of(&[un.root()])?;
    let mut changes = Vec::new();
    reserved_changes(old, new, &na, &mut changes);
    differ.cmp(oa, na, "", &mut changes)?;
    dedup(&mut changes);
    Ok(finish(changes, options.mode, policy, &options.overrides))
}

fn reserved_changes(
    old: &Document<'_>,
    new: &Document<'_>,
    new_root: &diff::Alt<'_>,
    out: &mut Vec<Change>,
) {
    let mk = |action, pointer: String, message: String, v| Change {
        kind: ChangeKind::new(Subject::Reserved, action),
        pointer,
        message,
        backward: v,
        forward: v,
        severity: Severity::NonBreaking,
    };
    for name in old.reserved.iter().filter(|n| !new.reserved.contains(n)) {
        out.push(mk(
            Action::Removed,
            String::new(),
            format!("reserved name `{name}` is no longer reserved (reservations are permanent)"),
            Verdict::Incompatible,
        ));
    }
    for name in new.reserved.iter().filter(|n| !old.reserved.contains(n)) {
        out.push(mk(
            Action::Added,
            String::new(),
            format!("name `{name}` is now reserved"),
            Verdict::Compatible,
        ));
    }
    for name in new_root.property_names() {
        if new.reserved.iter().any(|r| r == name) {
            out.push(mk(
                Action::Conflict,
                format!("/properties/{}", diff::escape(name)),
                format!("property `{name}` uses a reserved name"),
                Verdict::Incompatible,
            ));
        }
    }
}

/// Merges exact repeats (a union branch matched by two alternatives reports its inner
/// changes twice). The repeats may carry different verdicts (the same change judged
/// within a type split where it matters and one where it does not): the merged change
/// keeps the worst of each direction, so that no evidence of incompatibility is lost.
fn dedup(changes: &mut Vec<Change>) {
    let mut first: std::collections::HashMap<(ChangeKind, String, String), usize> =
        std::collections::HashMap::new();
    let mut kept: Vec<Change> = Vec::with_capacity(changes.len());
    for c in changes.drain(..) {
        let key = (c.kind, c.pointer.clone(), c.message.clone());
        match first.get(&key) {
            Some(&i) => {
                kept[i].backward = kept[i].backward.and(c.backward);
                kept[i].forward = kept[i].forward.and(c.forward);
            }
            None => {
                first.insert(key, kept.len());
                kept.push(c);
            }
        }
    }
    *changes = kept;
}

fn finish(
    mut changes: Vec<Change>,
    mode: Mode,
    policy: Policy,
    overrides: &BTreeMap<String, Severity>,
) -> Report {
    for c in &mut changes {
        c.severity = classify(c, mode, overrides);
    }
    // Most severe first; walk order within a severity (the sort is stable).
    changes.sort_by_key(|c| std::cmp::Reverse(c.severity));
    let (backward, forward) = diff::reduce(&changes);
    let worst = changes.iter().map(|c| c.severity).max();
    let needed_bump = match worst {
        Some(Severity::Breaking) => Bump::Major,
        Some(Severity::NonBreaking) => Bump::Minor,
        Some(Severity::Annotation) => Bump::Patch,
        Some(Severity::Ignore) | None => Bump::None,
    };
    Report {
        mode,
        policy,
        compatible: !changes.iter().any(|c| c.severity == Severity::Breaking),
        changes,
        backward,
        forward,
        needed_bump,
    }
}

/// Checks `new` against earlier versions of the same major (oldest first): all of
/// them for transitive modes, only the last one otherwise. Returns one report per
/// comparison, in `history` order; the new version passes when all are compatible.
pub fn compare_history(
    history: &[Document<'_>],
    new: &Document<'_>,
    options: &Options,
    source: &dyn SchemaSource,
) -> Result<Vec<Report>, EvolutionError> {
    let against: &[Document<'_>] = if options.mode.is_transitive() {
        history
    } else {
        history.last().map(std::slice::from_ref).unwrap_or(&[])
    };
    against
        .iter()
        .map(|old| compare_documents(old, new, options, source))
        .collect()
}
