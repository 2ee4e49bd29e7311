//! The vocabulary of schema changes: what changed (a [`ChangeKind`] with a stable id),
//! where (a JSON Pointer), and whether each reading direction survives it ([`Verdict`]).

use serde::{Serialize, Serializer};
use std::fmt;

/// Whether one reading direction survives a change.
///
/// Three values rather than a boolean because some questions (is regex A contained in
/// regex B?) cannot be decided cheaply; the engine says so instead of guessing, and
/// the gate treats [`Verdict::Unknown`] as breaking unless the catalog overrides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every instance that the reading side must accept is still accepted.
    Compatible,
    /// Some instance accepted before is now rejected.
    Incompatible,
    /// The engine cannot decide (e.g. two different regular expressions).
    Unknown,
}

impl Verdict {
    /// Combines two verdicts of the same direction: the worst one wins
    /// (incompatible over unknown over compatible), so a report is only as good as its
    /// weakest change.
    pub fn and(self, other: Verdict) -> Verdict {
        match (self, other) {
            (Verdict::Incompatible, _) | (_, Verdict::Incompatible) => Verdict::Incompatible,
            (Verdict::Unknown, _) | (_, Verdict::Unknown) => Verdict::Unknown,
            _ => Verdict::Compatible,
        }
    }

    /// The stable lowercase name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Compatible => "compatible",
            Verdict::Incompatible => "incompatible",
            Verdict::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! id_enum {
    ($(#[$meta:meta])* $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $id:literal, )* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $( $(#[$vmeta])* $variant, )* }
        impl $name {
            /// Every value, in declaration order (for documentation and override validation).
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )* ];
            /// The stable snake_case id that appears in change kinds and overrides.
            pub fn id(self) -> &'static str { match self { $( $name::$variant => $id, )* } }
            /// Parses a stable id back (used to validate catalog overrides).
            pub fn from_id(s: &str) -> Option<$name> { match s { $( $id => Some($name::$variant), )* _ => None } }
        }
    };
}

id_enum! {
    /// The schema keyword (or keyword family) a change is about: the first half of a
    /// [`ChangeKind`] id such as `max_length.decreased`.
    Subject {
        /// The whole (sub)schema, e.g. a `false` schema appearing or disappearing.
        Schema => "schema",
        /// `type`.
        Type => "type",
        /// `enum` and `const` (a one-value enum equals a const).
        Enum => "enum",
        /// `minimum`.
        Minimum => "minimum",
        /// `exclusiveMinimum`.
        ExclusiveMinimum => "exclusive_minimum",
        /// `maximum`.
        Maximum => "maximum",
        /// `exclusiveMaximum`.
        ExclusiveMaximum => "exclusive_maximum",
        /// `multipleOf`.
        MultipleOf => "multiple_of",
        /// `minLength`.
        MinLength => "min_length",
        /// `maxLength`.
        MaxLength => "max_length",
        /// `pattern`.
        Pattern => "pattern",
        /// `format`.
        Format => "format",
        /// A named property (`properties`).
        Property => "property",
        /// A `patternProperties` entry.
        PatternProperty => "pattern_property",
        /// `additionalProperties` (or `unevaluatedProperties` standing in for it).
        AdditionalProperties => "additional_properties",
        /// `required`.
        Required => "required",
        /// `propertyNames`.
        PropertyNames => "property_names",
        /// `minProperties`.
        MinProperties => "min_properties",
        /// `maxProperties`.
        MaxProperties => "max_properties",
        /// `dependentRequired` (and draft-07 `dependencies` with arrays).
        DependentRequired => "dependent_required",
        /// `dependentSchemas` (and draft-07 `dependencies` with schemas).
        DependentSchemas => "dependent_schemas",
        /// The schema for array items beyond any tuple (`items` / `additionalItems`).
        Items => "items",
        /// A positional tuple entry (`prefixItems`, or draft-07 `items` as an array).
        PrefixItems => "prefix_items",
        /// Draft-07 `additionalItems` where it has no tuple to apply to.
        AdditionalItems => "additional_items",
        /// `minItems`.
        MinItems => "min_items",
        /// `maxItems`.
        MaxItems => "max_items",
        /// `uniqueItems`.
        UniqueItems => "unique_items",
        /// `contains`.
        Contains => "contains",
        /// `minContains`.
        MinContains => "min_contains",
        /// `maxContains`.
        MaxContains => "max_contains",
        /// An `allOf` branch.
        AllOf => "all_of",
        /// An `anyOf` branch.
        AnyOf => "any_of",
        /// A `oneOf` branch.
        OneOf => "one_of",
        /// `not`.
        Not => "not",
        /// `if`/`then`/`else` as a unit.
        Conditional => "conditional",
        /// Names reserved by the schema's metadata (removed names that may not return).
        Reserved => "reserved",
        /// `title`.
        Title => "title",
        /// `description`.
        Description => "description",
        /// `examples`.
        Examples => "examples",
        /// `default`.
        Default => "default",
        /// `deprecated`.
        Deprecated => "deprecated",
        /// `$comment`.
        Comment => "comment",
        /// `$id`.
        Id => "id",
        /// Any other annotation or unknown keyword (validators ignore them).
        Annotation => "annotation",
    }
}

id_enum! {
    /// What happened to the [`Subject`]: the second half of a [`ChangeKind`] id.
    Action {
        /// The keyword or entry appeared.
        Added => "added",
        /// The keyword or entry disappeared.
        Removed => "removed",
        /// A numeric bound went up.
        Increased => "increased",
        /// A numeric bound went down.
        Decreased => "decreased",
        /// The set of accepted values shrank.
        Narrowed => "narrowed",
        /// The set of accepted values grew.
        Widened => "widened",
        /// Changed in a way that neither contains the other (or is undecidable).
        Changed => "changed",
        /// `null` joined the accepted types.
        NullAdded => "null_added",
        /// `null` left the accepted types.
        NullRemoved => "null_removed",
        /// An enum value was added.
        ValueAdded => "value_added",
        /// An enum value was removed.
        ValueRemoved => "value_removed",
        /// A combinator branch was added (or no old branch covers it).
        BranchAdded => "branch_added",
        /// A combinator branch was removed (or no new branch covers it).
        BranchRemoved => "branch_removed",
        /// A `oneOf` branch may now overlap another one, so "exactly one" is unsure.
        OverlapUnknown => "overlap_unknown",
        /// A value provably matches two `oneOf` branches on the receiving side.
        Overlap => "overlap",
        /// A reserved name is used by a property.
        Conflict => "conflict",
    }
}

/// A stable change identifier, `subject.action` (e.g. `property.removed`): the key of
/// severity overrides in the catalog and the id shown in every report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChangeKind {
    /// The keyword family.
    pub subject: Subject,
    /// What happened to it.
    pub action: Action,
}

impl ChangeKind {
    /// Builds a kind from its halves.
    pub const fn new(subject: Subject, action: Action) -> Self {
        ChangeKind { subject, action }
    }

    /// The stable id, e.g. `max_length.decreased`.
    pub fn id(&self) -> String {
        format!("{}.{}", self.subject.id(), self.action.id())
    }

    /// Parses `subject.action`.
    pub fn parse(id: &str) -> Option<ChangeKind> {
        let (s, a) = id.split_once('.')?;
        Some(ChangeKind::new(Subject::from_id(s)?, Action::from_id(a)?))
    }

    /// Annotations never change which instances validate, so they never break anyone
    /// and only ever need a patch release.
    pub fn is_annotation(&self) -> bool {
        matches!(
            self.subject,
            Subject::Title
                | Subject::Description
                | Subject::Examples
                | Subject::Default
                | Subject::Deprecated
                | Subject::Comment
                | Subject::Id
                | Subject::Annotation
        )
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.subject.id(), self.action.id())
    }
}

impl Serialize for ChangeKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.id())
    }
}

/// Every change kind the engine emits, by id, in [`Subject`] order. Why a list: the
/// tests hold themselves to it ("one test per change kind"), and a kind added to the
/// engine without a test fails them. `all_of.*` is absent on purpose: `allOf`
/// branches are merged into one schema, so their changes are reported as the
/// keywords they change (`all_of` stays a valid override subject).
pub const KINDS: &[&str] = &[
    "schema.changed",
    "schema.widened",
    "schema.narrowed",
    "type.widened",
    "type.narrowed",
    "type.changed",
    "type.null_added",
    "type.null_removed",
    "enum.added",
    "enum.removed",
    "enum.value_added",
    "enum.value_removed",
    "minimum.added",
    "minimum.removed",
    "minimum.increased",
    "minimum.decreased",
    "exclusive_minimum.added",
    "exclusive_minimum.removed",
    "exclusive_minimum.increased",
    "exclusive_minimum.decreased",
    "maximum.added",
    "maximum.removed",
    "maximum.increased",
    "maximum.decreased",
    "exclusive_maximum.added",
    "exclusive_maximum.removed",
    "exclusive_maximum.increased",
    "exclusive_maximum.decreased",
    "multiple_of.added",
    "multiple_of.removed",
    "multiple_of.widened",
    "multiple_of.narrowed",
    "multiple_of.changed",
    "min_length.added",
    "min_length.removed",
    "min_length.increased",
    "min_length.decreased",
    "max_length.added",
    "max_length.removed",
    "max_length.increased",
    "max_length.decreased",
    "pattern.added",
    "pattern.removed",
    "pattern.changed",
    "format.added",
    "format.removed",
    "format.widened",
    "format.narrowed",
    "format.changed",
    "property.added",
    "property.removed",
    "pattern_property.added",
    "pattern_property.removed",
    "additional_properties.added",
    "additional_properties.removed",
    "additional_properties.widened",
    "additional_properties.narrowed",
    "additional_properties.changed",
    "required.added",
    "required.removed",
    "property_names.added",
    "property_names.removed",
    "property_names.widened",
    "property_names.narrowed",
    "min_properties.added",
    "min_properties.removed",
    "min_properties.increased",
    "min_properties.decreased",
    "max_properties.added",
    "max_properties.removed",
    "max_properties.increased",
    "max_properties.decreased",
    "dependent_required.added",
    "dependent_required.removed",
    "dependent_required.widened",
    "dependent_required.narrowed",
    "dependent_required.changed",
    "dependent_schemas.added",
    "dependent_schemas.removed",
    "dependent_schemas.widened",
    "dependent_schemas.narrowed",
    "items.added",
    "items.removed",
    "items.widened",
    "items.narrowed",
    "prefix_items.added",
    "prefix_items.removed",
    "additional_items.added",
    "additional_items.removed",
    "additional_items.widened",
    "additional_items.narrowed",
    "min_items.added",
    "min_items.removed",
    "min_items.increased",
    "min_items.decreased",
    "max_items.added",
    "max_items.removed",
    "max_items.increased",
    "max_items.decreased",
    "unique_items.added",
    "unique_items.removed",
    "contains.added",
    "contains.removed",
    "contains.widened",
    "contains.narrowed",
    "contains.changed",
    "min_contains.increased",
    "min_contains.decreased",
    "max_contains.added",
    "max_contains.removed",
    "max_contains.increased",
    "max_contains.decreased",
    "max_contains.changed",
    "any_of.branch_added",
    "any_of.branch_removed",
    "one_of.branch_added",
    "one_of.branch_removed",
    "one_of.overlap",
    "one_of.overlap_unknown",
    "not.added",
    "not.removed",
    "not.widened",
    "not.narrowed",
    "not.changed",
    "conditional.added",
    "conditional.removed",
    "conditional.widened",
    "conditional.narrowed",
    "conditional.changed",
    "reserved.added",
    "reserved.removed",
    "reserved.conflict",
    "title.added",
    "title.removed",
    "title.changed",
    "description.added",
    "description.removed",
    "description.changed",
    "examples.added",
    "examples.removed",
    "examples.changed",
    "default.added",
    "default.removed",
    "default.changed",
    "deprecated.added",
    "deprecated.removed",
    "deprecated.changed",
    "comment.added",
    "comment.removed",
    "comment.changed",
    "id.added",
    "id.removed",
    "id.changed",
    "annotation.added",
    "annotation.removed",
    "annotation.changed",
];

/// How much a change matters under the chosen mode, after catalog overrides: this
/// decides both the gate (breaking fails) and the semver bump it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Ignored by the gate and the bump (an override for accepted noise).
    Ignore,
    /// Documentation only: needs a patch release.
    Annotation,
    /// Changes what validates but keeps the mode's guarantee: needs a minor release.
    NonBreaking,
    /// Violates the mode's guarantee (or cannot be proven safe): needs a major release.
    Breaking,
}

impl Severity {
    /// The stable id used in catalog overrides and outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ignore => "ignore",
            Severity::Annotation => "annotation",
            Severity::NonBreaking => "non-breaking",
            Severity::Breaking => "breaking",
        }
    }

    /// Parses an override value (`breaking`, `non-breaking`, `annotation`, `ignore`).
    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "ignore" => Some(Severity::Ignore),
            "annotation" => Some(Severity::Annotation),
            "non-breaking" | "non_breaking" => Some(Severity::NonBreaking),
            "breaking" => Some(Severity::Breaking),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One classified difference between two schemas.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Stable id such as `required.added`.
    pub kind: ChangeKind,
    /// JSON Pointer of the location, following the keywords walked from the root
    /// (through `$ref`s), so it names the place in the event rather than in `$defs`.
    pub pointer: String,
    /// A sentence for humans.
    pub message: String,
    /// New schema accepts everything the old one accepted (new readers, old events).
    pub backward: Verdict,
    /// Old schema accepts everything the new one accepts (old readers, new events).
    pub forward: Verdict,
    /// Severity under the report's mode and overrides.
    pub severity: Severity,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_kind_is_a_valid_distinct_id() {
        let mut seen = std::collections::BTreeSet::new();
        for id in KINDS {
            let kind = ChangeKind::parse(id).unwrap_or_else(|| panic!("{id} does not parse"));
            assert_eq!(kind.id(), *id);
            assert!(seen.insert(*id), "{id} is listed twice");
        }
        assert_eq!(KINDS.len(), 156);
        assert!(!KINDS.iter().any(|k| k.starts_with("all_of.")));
    }
}
