//! One test per change kind (kind id, pointer, both verdicts), plus modes, policy,
//! overrides, references, errors, semver and renderers. The last test holds the file
//! to the engine's list of kinds (`evolution::KINDS`): a kind without a test fails it.

use herald_contracts::evolution::semver::check_bump;
use herald_contracts::evolution::{
    compare, compare_documents, compare_history, render, Bump, ChangeKind, Document,
    EvolutionError, Mode, NoExternalSchemas, Options, Policy, Report, Severity, Verdict,
};
use serde_json::{json, Value};
use std::collections::HashMap;

use Verdict::{Compatible as C, Incompatible as I, Unknown as U};

fn run(old: &Value, new: &Value, opts: &Options) -> Report {
    compare(old, new, opts, &NoExternalSchemas).unwrap_or_else(|e| panic!("compare failed: {e}"))
}

fn backward(old: Value, new: Value) -> Report {
    run(&old, &new, &Options::new(Mode::Backward))
}

fn summary(r: &Report) -> Vec<(String, String, Verdict, Verdict)> {
    r.changes
        .iter()
        .map(|c| (c.kind.id(), c.pointer.clone(), c.backward, c.forward))
        .collect()
}

/// Asserts that the diff is exactly one change with these values.
#[track_caller]
fn only(old: Value, new: Value, kind: &str, pointer: &str, b: Verdict, f: Verdict) {
    let r = backward(old.clone(), new.clone());
    assert_eq!(
        summary(&r),
        vec![(kind.to_string(), pointer.to_string(), b, f)],
        "\nold: {old}\nnew: {new}"
    );
}

#[track_caller]
fn none(old: Value, new: Value) {
    let r = backward(old.clone(), new.clone());
    assert!(
        r.changes.is_empty(),
        "expected no change\nold: {old}\nnew: {new}\n{:#?}",
        r.changes
    );
    assert_eq!(r.needed_bump, Bump::None);
}

// ---------------------------------------------------------------- normalization

#[test]
fn normalization_never_reports_a_change() {
    none(
        json!({"type": ["string", "null"]}),
        json!({"anyOf": [{"type": "null"}, {"type": "string"}]}),
    );
    none(json!({"enum": ["a"]}), json!({"const": "a"}));
    none(
        json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}),
        json!({"properties": {"b": {"type": "integer"}, "a": {"type": "string"}}, "type": "object"}),
    );
    none(
        json!({"properties": {"id": {"type": "string", "format": "uuid"}}}),
        json!({"properties": {"id": {"$ref": "#/$defs/uuid"}}, "$defs": {"uuid": {"type": "string", "format": "uuid"}}}),
    );
    none(
        json!({"oneOf": [{"type": "string"}]}),
        json!({"allOf": [{"type": "string"}]}),
    );
    none(json!({"minimum": 1}), json!({"minimum": 1.0}));
    none(
        json!({"type": "string", "minLength": 0}),
        json!({"type": "string"}),
    );
}

// ---------------------------------------------------------------- objects

#[test]
fn property_added_open_closed_and_lenient() {
    let old = json!({"properties": {"a": {"type": "string"}}});
    let new = json!({"properties": {"a": {"type": "string"}, "b": {"type": "integer"}}});
    only(
        old.clone(),
        new.clone(),
        "property.added",
        "/properties/b",
        I,
        C,
    );
    let lenient = run(
        &old,
        &new,
        &Options::new(Mode::Backward).with_policy(Policy::Lenient),
    );
    assert_eq!(
        summary(&lenient),
        vec![("property.added".into(), "/properties/b".into(), C, C)]
    );
    assert!(lenient.compatible);
    only(
        json!({"properties": {"a": {}}, "additionalProperties": false}),
        json!({"properties": {"a": {}, "b": {"type": "integer"}}, "additionalProperties": false}),
        "property.added",
        "/properties/b",
        C,
        I,
    );
    // covered by a partially open model with the same schema: compatible both ways
    only(
        json!({"additionalProperties": {"type": "string"}}),
        json!({"properties": {"b": {"type": "string"}}, "additionalProperties": {"type": "string"}}),
        "property.added",
        "/properties/b",
        C,
        C,
    );
}

#[test]
fn property_removed() {
    only(
        json!({"properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}),
        json!({"properties": {"a": {"type": "string"}}}),
        "property.removed",
        "/properties/b",
        C,
        I,
    );
    only(
        json!({"properties": {"b": {"type": "integer"}}, "additionalProperties": false}),
        json!({"properties": {}, "additionalProperties": false}),
        "property.removed",
        "/properties/b",
        I,
        C,
    );
}

#[test]
fn nested_property_type_change_has_deep_pointer() {
    only(
        json!({"properties": {"cost": {"properties": {"amount": {"type": "number"}}}}}),
        json!({"properties": {"cost": {"properties": {"amount": {"type": "string"}}}}}),
        "type.changed",
        "/properties/cost/properties/amount/type",
        I,
        I,
    );
}

#[test]
fn required_added_and_removed() {
    only(
        json!({"properties": {"a": {}}}),
        json!({"properties": {"a": {}}, "required": ["a"]}),
        "required.added",
        "/properties/a",
        I,
        C,
    );
    only(
        json!({"properties": {"a": {}}, "required": ["a"]}),
        json!({"properties": {"a": {}}}),
        "required.removed",
        "/properties/a",
        C,
        I,
    );
}

#[test]
fn additional_properties_kinds() {
    only(
        json!({"additionalProperties": true}),
        json!({"additionalProperties": false}),
        "additional_properties.narrowed",
        "/additionalProperties",
        I,
        C,
    );
    only(
        json!({"additionalProperties": false}),
        json!({}),
        "additional_properties.removed",
        "/additionalProperties",
        C,
        I,
    );
    only(
        json!({}),
        json!({"additionalProperties": {"type": "number"}}),
        "additional_properties.added",
        "/additionalProperties",
        I,
        C,
    );
    only(
        json!({"additionalProperties": {"type": "integer"}}),
        json!({"additionalProperties": {"type": "number"}}),
        "type.widened",
        "/additionalProperties/type",
        C,
        I,
    );
    // lenient: narrowing the open part is accepted
    let r = run(
        &json!({"additionalProperties": true}),
        &json!({"additionalProperties": false}),
        &Options::new(Mode::Backward).with_policy(Policy::Lenient),
    );
    assert!(r.compatible);
}

#[test]
fn pattern_properties_kinds() {
    only(
        json!({"additionalProperties": false}),
        json!({"additionalProperties": false, "patternProperties": {"^x_": {"type": "string"}}}),
        "pattern_property.added",
        "/patternProperties/^x_",
        C,
        I,
    );
    only(
        json!({"additionalProperties": false, "patternProperties": {"^x_": {"type": "string"}}}),
        json!({"additionalProperties": false}),
        "pattern_property.removed",
        "/patternProperties/^x_",
        I,
        C,
    );
    only(
        json!({"patternProperties": {"^x_": {"type": "string", "maxLength": 3}}}),
        json!({"patternProperties": {"^x_": {"type": "string", "maxLength": 2}}}),
        "max_length.decreased",
        "/patternProperties/^x_/maxLength",
        I,
        C,
    );
}

#[test]
fn object_bounds_dependencies_and_names() {
    only(
        json!({"minProperties": 1}),
        json!({"minProperties": 2}),
        "min_properties.increased",
        "/minProperties",
        I,
        C,
    );
    only(
        json!({"maxProperties": 2}),
        json!({"maxProperties": 3}),
        "max_properties.increased",
        "/maxProperties",
        C,
        I,
    );
    only(
        json!({"maxProperties": 2}),
        json!({}),
        "max_properties.removed",
        "/maxProperties",
        C,
        I,
    );
    only(
        json!({}),
        json!({"dependentRequired": {"a": ["b"]}}),
        "dependent_required.added",
        "/dependentRequired/a",
        I,
        C,
    );
    only(
        json!({"dependencies": {"a": ["b", "c"]}}),
        json!({"dependentRequired": {"a": ["b"]}}),
        "dependent_required.widened",
        "/dependentRequired/a",
        C,
        I,
    );
    only(
        json!({"dependentSchemas": {"a": {"required": ["b"], "properties": {"b": {}}}}}),
        json!({}),
        "dependent_schemas.removed",
        "/dependentSchemas/a",
        C,
        I,
    );
    only(
        json!({"dependentSchemas": {"a": {"properties": {"b": {"type": "integer"}}}}}),
        json!({"dependentSchemas": {"a": {"properties": {"b": {"type": "number"}}}}}),
        "type.widened",
        "/dependentSchemas/a/properties/b/type",
        C,
        I,
    );
    only(
        json!({}),
        json!({"propertyNames": {"maxLength": 3}}),
        "property_names.added",
        "/propertyNames",
        I,
        C,
    );
}

// ---------------------------------------------------------------- types and values

#[test]
fn type_kinds() {
    only(
        json!({"type": "number"}),
        json!({"type": "integer"}),
        "type.narrowed",
        "/type",
        I,
        C,
    );
    only(
        json!({"type": "integer"}),
        json!({"type": "number"}),
        "type.widened",
        "/type",
        C,
        I,
    );
    only(
        json!({"type": "string"}),
        json!({"type": "integer"}),
        "type.changed",
        "/type",
        I,
        I,
    );
    only(
        json!({"type": "string"}),
        json!({"type": ["string", "null"]}),
        "type.null_added",
        "/type",
        C,
        I,
    );
    only(
        json!({"type": ["string", "null"]}),
        json!({"type": "string"}),
        "type.null_removed",
        "/type",
        I,
        C,
    );
}

#[test]
fn enum_and_const_kinds() {
    only(
        json!({"enum": ["a", "b"]}),
        json!({"enum": ["a"]}),
        "enum.value_removed",
        "/enum",
        I,
        C,
    );
    only(
        json!({"enum": ["a"]}),
        json!({"enum": ["a", "b"]}),
        "enum.value_added",
        "/enum",
        C,
        I,
    );
    only(
        json!({"type": "string"}),
        json!({"type": "string", "enum": ["a"]}),
        "enum.added",
        "/enum",
        I,
        C,
    );
    only(
        json!({"type": "string", "enum": ["a"]}),
        json!({"type": "string"}),
        "enum.removed",
        "/enum",
        C,
        I,
    );
    // a boolean's whole domain listed: no narrowing
    only(
        json!({"type": "boolean"}),
        json!({"enum": [true, false]}),
        "enum.added",
        "/enum",
        C,
        C,
    );
    let r = backward(json!({"const": "red"}), json!({"const": "blue"}));
    assert_eq!(
        summary(&r),
        vec![
            ("enum.value_removed".into(), "/const".into(), I, C),
            ("enum.value_added".into(), "/const".into(), C, I)
        ]
    );
}

#[test]
fn numeric_kinds() {
    only(
        json!({"minimum": 1}),
        json!({"minimum": 2}),
        "minimum.increased",
        "/minimum",
        I,
        C,
    );
    only(
        json!({"minimum": 2}),
        json!({"minimum": 1}),
        "minimum.decreased",
        "/minimum",
        C,
        I,
    );
    only(
        json!({}),
        json!({"minimum": 1}),
        "minimum.added",
        "/minimum",
        I,
        C,
    );
    only(
        json!({"maximum": 1}),
        json!({}),
        "maximum.removed",
        "/maximum",
        C,
        I,
    );
    only(
        json!({"maximum": 5}),
        json!({"maximum": 4}),
        "maximum.decreased",
        "/maximum",
        I,
        C,
    );
    only(
        json!({"minimum": 1}),
        json!({"exclusiveMinimum": 1}),
        "exclusive_minimum.increased",
        "/exclusiveMinimum",
        I,
        C,
    );
    only(
        json!({"exclusiveMaximum": 3}),
        json!({"exclusiveMaximum": 4}),
        "exclusive_maximum.increased",
        "/exclusiveMaximum",
        C,
        I,
    );
    // draft-04 boolean exclusiveMinimum
    only(
        json!({"minimum": 1}),
        json!({"minimum": 1, "exclusiveMinimum": true}),
        "exclusive_minimum.increased",
        "/exclusiveMinimum",
        I,
        C,
    );
    only(
        json!({"multipleOf": 10}),
        json!({"multipleOf": 5}),
        "multiple_of.widened",
        "/multipleOf",
        C,
        I,
    );
    only(
        json!({"multipleOf": 5}),
        json!({"multipleOf": 10}),
        "multiple_of.narrowed",
        "/multipleOf",
        I,
        C,
    );
    only(
        json!({"multipleOf": 10}),
        json!({"multipleOf": 11}),
        "multiple_of.changed",
        "/multipleOf",
        I,
        I,
    );
    only(
        json!({}),
        json!({"multipleOf": 0.5}),
        "multiple_of.added",
        "/multipleOf",
        I,
        C,
    );
    only(
        json!({"multipleOf": 2}),
        json!({}),
        "multiple_of.removed",
        "/multipleOf",
        C,
        I,
    );
}

#[test]
fn keywords_of_other_types_cannot_break() {
    // maxLength on an integer field constrains nothing
    only(
        json!({"type": "integer"}),
        json!({"type": "integer", "maxLength": 2}),
        "max_length.added",
        "/maxLength",
        C,
        C,
    );
}

#[test]
fn string_kinds() {
    only(
        json!({"minLength": 1}),
        json!({"minLength": 2}),
        "min_length.increased",
        "/minLength",
        I,
        C,
    );
    only(
        json!({"maxLength": 3}),
        json!({"maxLength": 2}),
        "max_length.decreased",
        "/maxLength",
        I,
        C,
    );
    only(
        json!({"maxLength": 3}),
        json!({"maxLength": 4}),
        "max_length.increased",
        "/maxLength",
        C,
        I,
    );
    only(
        json!({}),
        json!({"pattern": "^a"}),
        "pattern.added",
        "/pattern",
        I,
        C,
    );
    only(
        json!({"pattern": "^a"}),
        json!({}),
        "pattern.removed",
        "/pattern",
        C,
        I,
    );
    only(
        json!({"pattern": "^a"}),
        json!({"pattern": "^b"}),
        "pattern.changed",
        "/pattern",
        U,
        U,
    );
    only(
        json!({"pattern": "^a"}),
        json!({"pattern": ".*"}),
        "pattern.removed",
        "/pattern",
        C,
        I,
    );
    only(
        json!({}),
        json!({"format": "uuid"}),
        "format.added",
        "/format",
        I,
        C,
    );
    only(
        json!({"format": "uuid"}),
        json!({}),
        "format.removed",
        "/format",
        C,
        I,
    );
    only(
        json!({"format": "uri"}),
        json!({"format": "iri"}),
        "format.widened",
        "/format",
        C,
        I,
    );
    only(
        json!({"format": "date"}),
        json!({"format": "date-time"}),
        "format.changed",
        "/format",
        I,
        I,
    );
}

// ---------------------------------------------------------------- arrays

#[test]
fn array_kinds() {
    only(
        json!({"type": "array"}),
        json!({"type": "array", "items": {"type": "string"}}),
        "items.added",
        "/items",
        I,
        C,
    );
    only(
        json!({"type": "array", "items": {"type": "string"}}),
        json!({"type": "array"}),
        "items.removed",
        "/items",
        C,
        I,
    );
    only(
        json!({"items": true}),
        json!({"items": false}),
        "items.narrowed",
        "/items",
        I,
        C,
    );
    only(
        json!({"items": {"type": "integer"}}),
        json!({"items": {"type": "number"}}),
        "type.widened",
        "/items/type",
        C,
        I,
    );
    only(
        json!({"prefixItems": [{"type": "string"}]}),
        json!({"prefixItems": [{"type": "string"}, {"type": "integer"}]}),
        "prefix_items.added",
        "/prefixItems/1",
        I,
        C,
    );
    only(
        json!({"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false}),
        json!({"prefixItems": [{"type": "string"}], "items": false}),
        "prefix_items.removed",
        "/prefixItems/1",
        I,
        C,
    );
    only(
        json!({"items": [{"type": "string"}]}),
        json!({"items": [{"type": "number"}]}),
        "type.changed",
        "/items/0/type",
        I,
        I,
    );
    only(
        json!({"additionalItems": true}),
        json!({"additionalItems": false}),
        "additional_items.narrowed",
        "/additionalItems",
        I,
        C,
    );
    only(
        json!({"minItems": 1}),
        json!({"minItems": 2}),
        "min_items.increased",
        "/minItems",
        I,
        C,
    );
    only(
        json!({"maxItems": 2}),
        json!({"maxItems": 1}),
        "max_items.decreased",
        "/maxItems",
        I,
        C,
    );
    only(
        json!({}),
        json!({"uniqueItems": true}),
        "unique_items.added",
        "/uniqueItems",
        I,
        C,
    );
    only(
        json!({"uniqueItems": true}),
        json!({"uniqueItems": false}),
        "unique_items.removed",
        "/uniqueItems",
        C,
        I,
    );
    only(
        json!({}),
        json!({"contains": {"type": "string"}}),
        "contains.added",
        "/contains",
        I,
        C,
    );
    only(
        json!({"contains": {"type": "string"}}),
        json!({}),
        "contains.removed",
        "/contains",
        C,
        I,
    );
    only(
        json!({"contains": {"type": "string"}, "minContains": 2}),
        json!({"contains": {"type": "string"}, "minContains": 3}),
        "min_contains.increased",
        "/minContains",
        I,
        C,
    );
    only(
        json!({"contains": {"type": "string"}, "maxContains": 2}),
        json!({"contains": {"type": "string"}}),
        "max_contains.removed",
        "/maxContains",
        C,
        I,
    );
}

// ---------------------------------------------------------------- combinators

#[test]
fn one_of_and_any_of_branches() {
    only(
        json!({"oneOf": [{"type": "string"}, {"type": "integer"}]}),
        json!({"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}),
        "one_of.branch_added",
        "/oneOf/2",
        C,
        I,
    );
    only(
        json!({"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}),
        json!({"anyOf": [{"type": "string"}, {"type": "null"}]}),
        "any_of.branch_removed",
        "/anyOf/1",
        I,
        C,
    );
}

#[test]
fn any_of_changed_branch_reports_both_sides() {
    let r = backward(
        json!({"anyOf": [{"type": "string"}, {"type": "integer"}]}),
        json!({"anyOf": [{"type": "string"}, {"type": "boolean"}]}),
    );
    assert_eq!(
        summary(&r),
        vec![
            ("any_of.branch_removed".into(), "/anyOf/1".into(), I, C),
            ("any_of.branch_added".into(), "/anyOf/1".into(), C, I)
        ]
    );
}

#[test]
fn branch_changes_inside_a_matched_branch_point_into_it() {
    only(
        json!({"oneOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]}),
        json!({"oneOf": [{"type": "null"}, {"type": "string", "maxLength": 5}]}),
        "max_length.increased",
        "/oneOf/1/maxLength",
        C,
        I,
    );
}

#[test]
fn one_of_overlap_is_unknown_not_guessed() {
    let r = backward(
        json!({"type": "integer"}),
        json!({"oneOf": [{"type": "number"}, {"minimum": 0}]}),
    );
    assert_eq!(r.backward, U, "{:#?}", r.changes);
    assert!(r
        .changes
        .iter()
        .any(|c| c.kind.id() == "one_of.overlap_unknown" && c.backward == U));
    assert!(!r.compatible, "unknown is breaking by default");
    // a discriminator makes the branches provably exclusive
    let r = backward(
        json!({"properties": {"kind": {"const": "a"}}, "required": ["kind"], "type": "object"}),
        json!({"oneOf": [
            {"type": "object", "properties": {"kind": {"const": "a"}}, "required": ["kind"]},
            {"type": "object", "properties": {"kind": {"const": "b"}}, "required": ["kind"]}
        ]}),
    );
    assert_eq!(r.backward, C, "{:#?}", r.changes);
}

#[test]
fn all_of_is_flattened_into_keyword_changes() {
    only(
        json!({"allOf": [{"type": "string"}]}),
        json!({"allOf": [{"type": "string"}, {"maxLength": 3}]}),
        "max_length.added",
        "/maxLength",
        I,
        C,
    );
    // contradictory allOf accepts nothing: anything is backward-compatible with it
    let r = backward(
        json!({"allOf": [{"type": "string"}, {"type": "number"}]}),
        json!({"type": "boolean"}),
    );
    assert_eq!(
        summary(&r),
        vec![("schema.widened".into(), "".into(), C, I)]
    );
}

#[test]
fn not_kinds() {
    only(
        json!({"not": {"type": "number"}}),
        json!({"not": {"type": "integer"}}),
        "not.widened",
        "/not",
        C,
        I,
    );
    only(
        json!({"not": {"type": "integer"}}),
        json!({"not": {"type": "number"}}),
        "not.narrowed",
        "/not",
        I,
        C,
    );
    only(
        json!({}),
        json!({"not": {"type": "null"}}),
        "not.added",
        "/not",
        I,
        C,
    );
    only(
        json!({"not": {"type": "null"}}),
        json!({}),
        "not.removed",
        "/not",
        C,
        I,
    );
}

#[test]
fn conditional_kinds() {
    let cond = json!({"if": {"properties": {"k": {"const": "a"}}}, "then": {"required": ["x"], "properties": {"x": {}}}});
    only(json!({}), cond.clone(), "conditional.added", "/if", I, C);
    only(cond.clone(), json!({}), "conditional.removed", "/if", C, I);
    only(
        cond.clone(),
        json!({"if": {"properties": {"k": {"const": "b"}}}, "then": {"required": ["x"], "properties": {"x": {}}}}),
        "conditional.changed",
        "/if",
        U,
        U,
    );
    only(
        json!({"if": {"type": "integer"}, "then": {"minimum": 1}}),
        json!({"if": {"type": "integer"}, "then": {"minimum": 2}}),
        "minimum.increased",
        "/then/minimum",
        I,
        C,
    );
}

#[test]
fn boolean_schemas() {
    only(json!(true), json!(false), "schema.narrowed", "", I, C);
    only(
        json!(false),
        json!({"type": "string"}),
        "schema.widened",
        "",
        C,
        I,
    );
    none(json!(true), json!({}));
}

// ---------------------------------------------------------------- annotations

#[test]
fn annotations_are_never_breaking_and_need_a_patch() {
    for (key, kind) in [
        ("title", "title.changed"),
        ("description", "description.changed"),
        ("examples", "examples.changed"),
        ("default", "default.changed"),
        ("deprecated", "deprecated.changed"),
        ("$comment", "comment.changed"),
        ("$id", "id.changed"),
        ("x-owner", "annotation.changed"),
    ] {
        let old = json!({ key: "one" });
        let new = json!({ key: "two" });
        for mode in Mode::ALL {
            let r = run(&old, &new, &Options::new(*mode));
            assert_eq!(
                summary(&r),
                vec![(kind.to_string(), format!("/{key}"), C, C)],
                "{key} {mode}"
            );
            assert_eq!(r.changes[0].severity, Severity::Annotation);
            assert!(r.compatible);
            assert_eq!(r.needed_bump, Bump::Patch);
        }
    }
    only(
        json!({}),
        json!({"description": "d"}),
        "description.added",
        "/description",
        C,
        C,
    );
}

// ---------------------------------------------------------------- modes

#[test]
fn modes_classify_the_same_changes_differently() {
    let old = json!({"properties": {"a": {"type": "string", "maxLength": 5}}, "additionalProperties": false});
    let new = json!({"properties": {"a": {"type": "string", "maxLength": 3}}, "additionalProperties": false});
    let severity = |mode| run(&old, &new, &Options::new(mode)).changes[0].severity;
    assert_eq!(severity(Mode::Backward), Severity::Breaking);
    assert_eq!(severity(Mode::Forward), Severity::NonBreaking);
    assert_eq!(severity(Mode::Full), Severity::Breaking);
    assert_eq!(severity(Mode::Seed), Severity::Breaking);
    assert_eq!(severity(Mode::ForwardTransitive), Severity::NonBreaking);
    let relax = |mode| run(&new, &old, &Options::new(mode));
    assert!(relax(Mode::Backward).compatible);
    assert!(!relax(Mode::Forward).compatible);
    assert!(!relax(Mode::Full).compatible);
    assert_eq!(relax(Mode::Backward).needed_bump, Bump::Minor);
}

#[test]
fn seed_mode_follows_the_spec_table() {
    let base = json!({"type": "object", "properties": {"a": {"type": "integer"}, "s": {"enum": ["x", "y"]}}, "required": ["a"]});
    let seed = |new: Value| run(&base, &new, &Options::new(Mode::Seed));
    // adding an optional field: non-breaking (even to an open model)
    let r = seed(
        json!({"type": "object", "properties": {"a": {"type": "integer"}, "s": {"enum": ["x", "y"]}, "n": {"type": "string"}}, "required": ["a"]}),
    );
    assert!(r.compatible, "{:#?}", r.changes);
    assert_eq!(r.needed_bump, Bump::Minor);
    // adding an enum value: non-breaking
    assert!(seed(json!({"type": "object", "properties": {"a": {"type": "integer"}, "s": {"enum": ["x", "y", "z"]}}, "required": ["a"]})).compatible);
    // relaxing constraints: non-breaking; changing a field type, even widening: breaking
    let r = seed(
        json!({"type": "object", "properties": {"a": {"type": "number"}, "s": {"enum": ["x", "y"]}}, "required": ["a"]}),
    );
    assert!(!r.compatible);
    assert_eq!(
        r.breaking().next().map(|c| c.kind.id()),
        Some("type.widened".to_string())
    );
    // removing a field, changing required, removing an enum value: breaking
    assert!(!seed(json!({"type": "object", "properties": {"s": {"enum": ["x", "y"]}}})).compatible);
    assert!(!seed(json!({"type": "object", "properties": {"a": {"type": "integer"}, "s": {"enum": ["x", "y"]}}})).compatible);
    assert!(!seed(json!({"type": "object", "properties": {"a": {"type": "integer"}, "s": {"enum": ["x"]}}, "required": ["a"]})).compatible);
    // metadata: patch
    let r = seed(
        json!({"type": "object", "title": "T", "properties": {"a": {"type": "integer"}, "s": {"enum": ["x", "y"]}}, "required": ["a"]}),
    );
    assert_eq!((r.compatible, r.needed_bump), (true, Bump::Patch));
    assert_eq!(Options::new(Mode::Seed).mode, Mode::default());
}

#[test]
fn transitive_modes_check_every_earlier_version() {
    let v1 = json!({"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": false});
    let v2 = json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}, "additionalProperties": false});
    // v3 drops b again: fine against v1, breaking against v2
    let v3 = v1.clone();
    let history = [Document::new(&v1), Document::new(&v2)];
    let plain = compare_history(
        &history,
        &Document::new(&v3),
        &Options::new(Mode::Forward),
        &NoExternalSchemas,
    )
    .unwrap();
    assert_eq!(plain.len(), 1);
    assert!(plain[0].compatible, "v3 accepts a subset of v2");
    let back = compare_history(
        &history,
        &Document::new(&v3),
        &Options::new(Mode::Backward),
        &NoExternalSchemas,
    )
    .unwrap();
    assert_eq!(back.len(), 1);
    assert!(
        !back[0].compatible,
        "removing b from a closed model breaks v2 data"
    );
    let trans = compare_history(
        &history,
        &Document::new(&v3),
        &Options::new(Mode::BackwardTransitive),
        &NoExternalSchemas,
    )
    .unwrap();
    assert_eq!(
        trans.iter().map(|r| r.compatible).collect::<Vec<_>>(),
        vec![true, false]
    );
    // a change compatible with the previous version but not with an older one
    let w1 = json!({"type": "string", "maxLength": 10});
    let w2 = json!({"type": "string", "maxLength": 5});
    let w3 = json!({"type": "string", "maxLength": 3});
    let h = [Document::new(&w1), Document::new(&w2)];
    let fwd = compare_history(
        &h,
        &Document::new(&w3),
        &Options::new(Mode::Forward),
        &NoExternalSchemas,
    )
    .unwrap();
    assert!(fwd.iter().all(|r| r.compatible));
    let full_t = compare_history(
        &h,
        &Document::new(&w3),
        &Options::new(Mode::FullTransitive),
        &NoExternalSchemas,
    )
    .unwrap();
    assert_eq!(
        full_t.iter().map(|r| r.compatible).collect::<Vec<_>>(),
        vec![false, false]
    );
    let fwd_t = compare_history(
        &h,
        &Document::new(&w3),
        &Options::new(Mode::ForwardTransitive),
        &NoExternalSchemas,
    )
    .unwrap();
    assert_eq!(fwd_t.len(), 2);
    assert!(fwd_t.iter().all(|r| r.compatible));
}

#[test]
fn modes_and_policies_parse_from_their_names() {
    for m in Mode::ALL {
        assert_eq!(m.as_str().parse::<Mode>().unwrap(), *m);
    }
    assert!(matches!(
        "sideways".parse::<Mode>(),
        Err(EvolutionError::UnknownOption { what: "mode", .. })
    ));
    assert_eq!("lenient".parse::<Policy>().unwrap(), Policy::Lenient);
    assert!("loose".parse::<Policy>().is_err());
}

// ---------------------------------------------------------------- overrides

#[test]
fn severity_overrides_win_over_the_mode() {
    let old = json!({"pattern": "^a"});
    let new = json!({"pattern": "^[ab]"});
    assert!(!run(&old, &new, &Options::new(Mode::Backward)).compatible);
    let opts = Options::new(Mode::Backward)
        .with_override("pattern.changed", Severity::NonBreaking)
        .unwrap();
    let r = run(&old, &new, &opts);
    assert!(r.compatible);
    assert_eq!(r.needed_bump, Bump::Minor);
    let opts = Options::new(Mode::Backward)
        .with_override("pattern.*", Severity::Ignore)
        .unwrap();
    let r = run(&old, &new, &opts);
    assert_eq!((r.compatible, r.needed_bump), (true, Bump::None));
    // and the other way round: make an annotation breaking
    let opts = Options::new(Mode::Backward)
        .with_override("description.changed", Severity::Breaking)
        .unwrap();
    assert!(
        !run(
            &json!({"description": "a"}),
            &json!({"description": "b"}),
            &opts
        )
        .compatible
    );
    assert!(matches!(
        Options::new(Mode::Backward).with_override("pattern.exploded", Severity::Ignore),
        Err(EvolutionError::UnknownOverride { .. })
    ));
    assert_eq!(
        ChangeKind::parse("max_length.decreased").map(|k| k.id()),
        Some("max_length.decreased".into())
    );
}

// ---------------------------------------------------------------- references

#[test]
fn external_references_resolve_through_the_source() {
    let mut src: HashMap<String, Value> = HashMap::new();
    src.insert(
        "herald:/contracts/common/1.0.0.json".into(),
        json!({"$defs": {"uuid": {"type": "string", "format": "uuid"}}}),
    );
    src.insert(
        "herald:/contracts/common/1.1.0.json".into(),
        json!({"$defs": {"uuid": {"type": "string"}}}),
    );
    let old = json!({"properties": {"id": {"$ref": "../common/1.0.0.json#/$defs/uuid"}}});
    let new = json!({"properties": {"id": {"$ref": "../common/1.1.0.json#/$defs/uuid"}}});
    let r = compare_documents(
        &Document::new(&old).with_uri("herald:/contracts/Usage/1.0.0.json"),
        &Document::new(&new).with_uri("herald:/contracts/Usage/1.1.0.json"),
        &Options::new(Mode::Backward),
        &src,
    )
    .unwrap();
    assert_eq!(
        summary(&r),
        vec![(
            "format.removed".into(),
            "/properties/id/format".into(),
            C,
            I
        )]
    );
    let err = compare(&old, &new, &Options::default(), &NoExternalSchemas).unwrap_err();
    assert!(
        matches!(err, EvolutionError::UnresolvableRef { .. }),
        "{err}"
    );
}

#[test]
fn recursive_schemas_terminate() {
    let tree = |leaf: &str| {
        json!({
            "$defs": {"node": {"type": "object", "properties": {
                "value": {"type": leaf},
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}
            }}},
            "$ref": "#/$defs/node"
        })
    };
    none(tree("integer"), tree("integer"));
    only(
        tree("integer"),
        tree("number"),
        "type.widened",
        "/properties/value/type",
        C,
        I,
    );
    let self_ref = json!({"$id": "https://x.test/s", "anyOf": [{"type": "null"}, {"properties": {"next": {"$ref": "#"}}}]});
    none(self_ref.clone(), self_ref);
}

#[test]
fn invalid_and_hostile_inputs_are_errors_not_panics() {
    let err = compare(
        &json!({"properties": {"a": 3}}),
        &json!({}),
        &Options::default(),
        &NoExternalSchemas,
    )
    .unwrap_err();
    assert!(matches!(err, EvolutionError::InvalidSchema { .. }), "{err}");
    let mut deep = json!({"type": "string"});
    for _ in 0..300 {
        deep = json!({"properties": {"a": deep}});
    }
    let err = compare(&deep, &deep, &Options::default(), &NoExternalSchemas).unwrap_err();
    assert!(matches!(err, EvolutionError::TooDeep { .. }), "{err}");
    // just below the limit still works
    let mut ok = json!({"type": "string"});
    for _ in 0..60 {
        ok = json!({"properties": {"a": ok}});
    }
    assert!(run(&ok, &ok, &Options::default()).changes.is_empty());
    // shallow JSON, deep comparison (a chain of references): an error, not an overflow
    let mut defs = serde_json::Map::new();
    for i in 0..500 {
        defs.insert(
            format!("d{i}"),
            json!({"properties": {"x": {"$ref": format!("#/$defs/d{}", i + 1)}}}),
        );
    }
    defs.insert("d500".into(), json!({"type": "string"}));
    let chain = json!({"$defs": defs, "$ref": "#/$defs/d0"});
    let err = compare(&chain, &chain, &Options::default(), &NoExternalSchemas).unwrap_err();
    assert!(matches!(err, EvolutionError::TooDeep { .. }), "{err}");
    let err = compare(
        &json!({"$ref": "#/$defs/missing"}),
        &json!({}),
        &Options::default(),
        &NoExternalSchemas,
    )
    .unwrap_err();
    assert!(
        matches!(err, EvolutionError::UnresolvableRef { .. }),
        "{err}"
    );
}

// ---------------------------------------------------------------- reserved names

#[test]
fn reserved_names() {
    let old = json!({"properties": {"a": {}}, "additionalProperties": false});
    let with_cost = json!({"properties": {"a": {}, "cost": {}}, "additionalProperties": false});
    let opts = Options::new(Mode::Backward);
    let cmp = |o: Document<'_>, n: Document<'_>| {
        compare_documents(&o, &n, &opts, &NoExternalSchemas).unwrap()
    };
    // re-adding a reserved name
    let r = cmp(
        Document::new(&old).with_reserved(["cost"]),
        Document::new(&with_cost).with_reserved(["cost"]),
    );
    assert!(!r.compatible);
    assert!(r
        .changes
        .iter()
        .any(|c| c.kind.id() == "reserved.conflict" && c.pointer == "/properties/cost"));
    // dropping a reservation
    let r = cmp(
        Document::new(&old).with_reserved(["cost"]),
        Document::new(&old),
    );
    assert_eq!(
        summary(&r),
        vec![("reserved.removed".into(), "".into(), I, I)]
    );
    // reserving a removed name is fine
    let r = cmp(
        Document::new(&with_cost),
        Document::new(&old).with_reserved(["cost"]),
    );
    assert!(r.changes.iter().any(|c| c.kind.id() == "reserved.added"));
    assert!(r.changes.iter().all(|c| c.kind.id() != "reserved.conflict"));
    // Confluent metadata form
    let meta = json!({"properties": {"confluent:reserved": "cost, status"}});
    assert_eq!(
        Document::new(&old).with_confluent_metadata(&meta).reserved,
        vec!["cost", "status"]
    );
}

// ---------------------------------------------------------------- semver and output

#[test]
fn bump_check_names_the_change_and_the_version() {
    let breaking = backward(
        json!({"properties": {"cost": {}}, "additionalProperties": false}),
        json!({"properties": {}, "additionalProperties": false}),
    );
    assert_eq!(breaking.needed_bump, Bump::Major);
    let c = check_bump("1.0.0", "1.1.0", &breaking).unwrap();
    assert!(!c.is_ok());
    let msg = c.violation.unwrap();
    assert!(
        msg.contains("property.removed")
            && msg.contains("/properties/cost")
            && msg.contains("2.0.0"),
        "{msg}"
    );
    assert!(check_bump("1.0.0", "2.0.0", &breaking).unwrap().is_ok());
    assert!(
        check_bump("1.0.0", "3.0.0", &breaking).unwrap().is_ok(),
        "bigger bumps are fine"
    );
    let additive = backward(json!({"maxLength": 3}), json!({"maxLength": 4}));
    assert_eq!(additive.needed_bump, Bump::Minor);
    let c = check_bump("1.2.3", "1.2.4", &additive).unwrap();
    assert_eq!(
        (c.needed, c.minimum.to_string()),
        (Bump::Minor, "1.3.0".to_string())
    );
    assert!(!c.is_ok());
    let annot = backward(json!({"title": "a"}), json!({"title": "b"}));
    assert!(check_bump("1.2.3", "1.2.4", &annot).unwrap().is_ok());
    assert!(!check_bump("1.2.3", "1.2.3", &annot).unwrap().is_ok());
    let same = backward(json!({}), json!({}));
    assert!(check_bump("1.2.3", "1.2.3", &same).unwrap().is_ok());
    assert!(!check_bump("1.2.3", "1.2.2", &same).unwrap().is_ok());
    assert!(matches!(
        check_bump("1.2", "1.3.0", &same),
        Err(EvolutionError::InvalidVersion { .. })
    ));
}

#[test]
fn renderers() {
    let r = backward(
        json!({"properties": {"cost": {}}, "additionalProperties": false, "title": "a"}),
        json!({"properties": {}, "additionalProperties": false, "title": "b"}),
    );
    let text = render::text(&r);
    assert!(text.starts_with("BREAKING under mode backward"), "{text}");
    let first_change = text.lines().nth(1).unwrap();
    assert!(
        first_change.contains("property.removed") && first_change.contains("/properties/cost"),
        "{text}"
    );
    let md = render::markdown(&r, "UsageEvent 1.0.0 -> 1.1.0", &["billing-service".into()]);
    assert!(md.contains("| **breaking** | `property.removed` | `/properties/cost` | incompatible | compatible |"), "{md}");
    assert!(md.contains("`billing-service`"), "{md}");
    let ok = backward(json!({"title": "a"}), json!({"title": "b"}));
    assert!(!render::markdown(&ok, "x", &["billing-service".into()]).contains("billing-service"));
    let js: Value = serde_json::to_value(&r).unwrap();
    assert_eq!(js["compatible"], json!(false));
    assert_eq!(js["needed_bump"], json!("major"));
    assert_eq!(js["mode"], json!("backward"));
    assert_eq!(js["changes"][0]["kind"], json!("property.removed"));
    assert_eq!(js["changes"][0]["backward"], json!("incompatible"));
    assert_eq!(js["changes"][0]["severity"], json!("breaking"));
}

#[test]
fn unevaluated_properties_see_names_evaluated_by_siblings() {
    only(
        json!({"allOf": [{"properties": {"a": {"type": "string"}}}], "unevaluatedProperties": false}),
        json!({"allOf": [{"properties": {"a": {"type": "string", "maxLength": 2}}}], "unevaluatedProperties": false}),
        "max_length.added",
        "/properties/a/maxLength",
        I,
        C,
    );
}

#[test]
fn contains_under_max_contains_is_undecided() {
    let r = backward(
        json!({"contains": {"type": "integer"}, "maxContains": 2}),
        json!({"contains": {"type": "number"}, "maxContains": 2}),
    );
    assert_eq!(
        summary(&r),
        vec![
            ("max_contains.changed".into(), "/maxContains".into(), U, U),
            ("type.widened".into(), "/contains/type".into(), C, I)
        ]
    );
}

#[test]
fn several_contains_on_one_array_are_compared_whole() {
    // Each `contains` counts with its own object's minContains: the one added beside the
    // `allOf` needs an item although its sibling conjunct allows none.
    let r = backward(
        json!({"allOf": [{"contains": {"type": "string"}, "minContains": 0}]}),
        json!({"allOf": [{"contains": {"type": "string"}, "minContains": 0}], "contains": {"type": "integer"}}),
    );
    assert_eq!(
        summary(&r),
        vec![("contains.changed".into(), "/contains".into(), U, U)]
    );
}

#[test]
fn draft07_ignores_siblings_of_ref_later_drafts_apply_them() {
    let schema = |dialect: &str, max: Option<u64>| {
        let mut a = json!({"$ref": "#/definitions/s"});
        if let Some(m) = max {
            a["maxLength"] = json!(m);
        }
        json!({"$schema": dialect, "definitions": {"s": {"type": "string"}}, "properties": {"a": a}})
    };
    let d7 = "http://json-schema.org/draft-07/schema#";
    none(schema(d7, None), schema(d7, Some(3)));
    let d2020 = "https://json-schema.org/draft/2020-12/schema";
    only(
        schema(d2020, None),
        schema(d2020, Some(3)),
        "max_length.added",
        "/properties/a/maxLength",
        I,
        C,
    );
}

#[test]
fn annotation_only_subschema_added_is_a_patch() {
    let r = backward(
        json!({"type": "array"}),
        json!({"type": "array", "items": {"description": "anything"}}),
    );
    assert_eq!(
        summary(&r),
        vec![(
            "description.added".into(),
            "/items/description".into(),
            C,
            C
        )]
    );
    assert_eq!(r.needed_bump, Bump::Patch);
}

// ---------------------------------------------------------------- every kind, swept

/// One row per kind: old, new, kind, pointer, backward, forward.
type Row = (Value, Value, &'static str, &'static str, Verdict, Verdict);

#[track_caller]
fn rows(rows: Vec<Row>) {
    for (old, new, kind, pointer, b, f) in rows {
        only(old, new, kind, pointer, b, f);
    }
}

#[test]
fn numeric_bounds_in_every_direction() {
    let n = |extra: Value| {
        let mut s = json!({"type": "number"});
        s.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        s
    };
    rows(vec![
        (
            n(json!({"minimum": 1})),
            n(json!({})),
            "minimum.removed",
            "/minimum",
            C,
            I,
        ),
        (
            n(json!({})),
            n(json!({"exclusiveMinimum": 1})),
            "exclusive_minimum.added",
            "/exclusiveMinimum",
            I,
            C,
        ),
        (
            n(json!({"exclusiveMinimum": 1})),
            n(json!({})),
            "exclusive_minimum.removed",
            "/exclusiveMinimum",
            C,
            I,
        ),
        (
            n(json!({"exclusiveMinimum": 5})),
            n(json!({"exclusiveMinimum": 1})),
            "exclusive_minimum.decreased",
            "/exclusiveMinimum",
            C,
            I,
        ),
        (
            n(json!({})),
            n(json!({"maximum": 9})),
            "maximum.added",
            "/maximum",
            I,
            C,
        ),
        (
            n(json!({"maximum": 9})),
            n(json!({"maximum": 10})),
            "maximum.increased",
            "/maximum",
            C,
            I,
        ),
        (
            n(json!({})),
            n(json!({"exclusiveMaximum": 9})),
            "exclusive_maximum.added",
            "/exclusiveMaximum",
            I,
            C,
        ),
        (
            n(json!({"exclusiveMaximum": 9})),
            n(json!({})),
            "exclusive_maximum.removed",
            "/exclusiveMaximum",
            C,
            I,
        ),
        (
            n(json!({"exclusiveMaximum": 9})),
            n(json!({"exclusiveMaximum": 5})),
            "exclusive_maximum.decreased",
            "/exclusiveMaximum",
            I,
            C,
        ),
    ]);
}

#[test]
fn string_lengths_and_formats_in_every_direction() {
    let s = |extra: Value| {
        let mut s = json!({"type": "string"});
        s.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        s
    };
    rows(vec![
        (
            s(json!({})),
            s(json!({"minLength": 2})),
            "min_length.added",
            "/minLength",
            I,
            C,
        ),
        (
            s(json!({"minLength": 2})),
            s(json!({})),
            "min_length.removed",
            "/minLength",
            C,
            I,
        ),
        (
            s(json!({"minLength": 3})),
            s(json!({"minLength": 2})),
            "min_length.decreased",
            "/minLength",
            C,
            I,
        ),
        (
            s(json!({"maxLength": 3})),
            s(json!({})),
            "max_length.removed",
            "/maxLength",
            C,
            I,
        ),
        // Every email is an idn-email, not the other way round.
        (
            s(json!({"format": "idn-email"})),
            s(json!({"format": "email"})),
            "format.narrowed",
            "/format",
            I,
            C,
        ),
    ]);
}

#[test]
fn object_keywords_in_every_direction() {
    let o = |extra: Value| {
        let mut s = json!({"type": "object"});
        s.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        s
    };
    rows(vec![
        (
            o(json!({"additionalProperties": false})),
            o(json!({"additionalProperties": {"type": "string"}})),
            "additional_properties.widened",
            "/additionalProperties",
            C,
            I,
        ),
        (
            o(json!({"propertyNames": {"maxLength": 3}})),
            o(json!({})),
            "property_names.removed",
            "/propertyNames",
            C,
            I,
        ),
        (
            o(json!({"propertyNames": false})),
            o(json!({"propertyNames": {"maxLength": 3}})),
            "property_names.widened",
            "/propertyNames",
            C,
            I,
        ),
        (
            o(json!({"propertyNames": true})),
            o(json!({"propertyNames": false})),
            "property_names.narrowed",
            "/propertyNames",
            I,
            C,
        ),
        (
            o(json!({})),
            o(json!({"minProperties": 1})),
            "min_properties.added",
            "/minProperties",
            I,
            C,
        ),
        (
            o(json!({"minProperties": 1})),
            o(json!({})),
            "min_properties.removed",
            "/minProperties",
            C,
            I,
        ),
        (
            o(json!({"minProperties": 3})),
            o(json!({"minProperties": 1})),
            "min_properties.decreased",
            "/minProperties",
            C,
            I,
        ),
        (
            o(json!({})),
            o(json!({"maxProperties": 5})),
            "max_properties.added",
            "/maxProperties",
            I,
            C,
        ),
        (
            o(json!({"maxProperties": 5})),
            o(json!({"maxProperties": 4})),
            "max_properties.decreased",
            "/maxProperties",
            I,
            C,
        ),
        (
            o(json!({"dependentRequired": {"a": ["b"]}})),
            o(json!({})),
            "dependent_required.removed",
            "/dependentRequired/a",
            C,
            I,
        ),
        (
            o(json!({"dependentRequired": {"a": ["b"]}})),
            o(json!({"dependentRequired": {"a": ["b", "c"]}})),
            "dependent_required.narrowed",
            "/dependentRequired/a",
            I,
            C,
        ),
        (
            o(json!({"dependentRequired": {"a": ["b"]}})),
            o(json!({"dependentRequired": {"a": ["c"]}})),
            "dependent_required.changed",
            "/dependentRequired/a",
            I,
            I,
        ),
        (
            o(json!({})),
            o(json!({"dependentSchemas": {"a": {"required": ["b"]}}})),
            "dependent_schemas.added",
            "/dependentSchemas/a",
            I,
            C,
        ),
        (
            o(json!({"dependentSchemas": {"a": false}})),
            o(json!({"dependentSchemas": {"a": {"required": ["b"]}}})),
            "dependent_schemas.widened",
            "/dependentSchemas/a",
            C,
            I,
        ),
        (
            o(json!({"dependentSchemas": {"a": true}})),
            o(json!({"dependentSchemas": {"a": false}})),
            "dependent_schemas.narrowed",
            "/dependentSchemas/a",
            I,
            C,
        ),
    ]);
    // unevaluatedProperties under a conditional that changed: which names it
    // evaluates is not analysed, so the engine says it cannot tell.
    let r = backward(
        o(
            json!({"unevaluatedProperties": false, "if": {"required": ["a"]}, "then": {"required": ["b"]}}),
        ),
        o(json!({"unevaluatedProperties": false})),
    );
    assert_eq!(
        summary(&r),
        vec![
            (
                "additional_properties.changed".into(),
                "/unevaluatedProperties".into(),
                U,
                U
            ),
            ("conditional.removed".into(), "/if".into(), C, I),
        ]
    );
}

#[test]
fn array_keywords_in_every_direction() {
    let a = |extra: Value| {
        let mut s = json!({"type": "array"});
        s.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        s
    };
    let strings = || json!({"type": "string"});
    rows(vec![
        (
            a(json!({"items": false})),
            a(json!({"items": strings()})),
            "items.widened",
            "/items",
            C,
            I,
        ),
        // draft-07 `additionalItems` with no tuple to apply to
        (
            json!({}),
            json!({"additionalItems": strings()}),
            "additional_items.added",
            "/additionalItems",
            I,
            C,
        ),
        (
            json!({"additionalItems": strings()}),
            json!({}),
            "additional_items.removed",
            "/additionalItems",
            C,
            I,
        ),
        (
            json!({"additionalItems": false}),
            json!({"additionalItems": strings()}),
            "additional_items.widened",
            "/additionalItems",
            C,
            I,
        ),
        (
            a(json!({})),
            a(json!({"minItems": 1})),
            "min_items.added",
            "/minItems",
            I,
            C,
        ),
        (
            a(json!({"minItems": 1})),
            a(json!({})),
            "min_items.removed",
            "/minItems",
            C,
            I,
        ),
        (
            a(json!({"minItems": 2})),
            a(json!({"minItems": 1})),
            "min_items.decreased",
            "/minItems",
            C,
            I,
        ),
        (
            a(json!({})),
            a(json!({"maxItems": 3})),
            "max_items.added",
            "/maxItems",
            I,
            C,
        ),
        (
            a(json!({"maxItems": 3})),
            a(json!({})),
            "max_items.removed",
            "/maxItems",
            C,
            I,
        ),
        (
            a(json!({"maxItems": 3})),
            a(json!({"maxItems": 4})),
            "max_items.increased",
            "/maxItems",
            C,
            I,
        ),
        (
            a(json!({"contains": false})),
            a(json!({"contains": strings()})),
            "contains.widened",
            "/contains",
            C,
            I,
        ),
        (
            a(json!({"contains": true})),
            a(json!({"contains": false})),
            "contains.narrowed",
            "/contains",
            I,
            C,
        ),
        (
            a(json!({"contains": strings(), "minContains": 3})),
            a(json!({"contains": strings(), "minContains": 2})),
            "min_contains.decreased",
            "/minContains",
            C,
            I,
        ),
        (
            a(json!({"contains": strings()})),
            a(json!({"contains": strings(), "maxContains": 3})),
            "max_contains.added",
            "/maxContains",
            I,
            C,
        ),
        (
            a(json!({"contains": strings(), "maxContains": 3})),
            a(json!({"contains": strings(), "maxContains": 4})),
            "max_contains.increased",
            "/maxContains",
            C,
            I,
        ),
        (
            a(json!({"contains": strings(), "maxContains": 3})),
            a(json!({"contains": strings(), "maxContains": 2})),
            "max_contains.decreased",
            "/maxContains",
            I,
            C,
        ),
    ]);
}

#[test]
fn combinators_in_every_direction() {
    rows(vec![
        (
            json!({"oneOf": [{"type": "string"}, {"type": "integer"}]}),
            json!({"oneOf": [{"type": "string"}]}),
            "one_of.branch_removed",
            "/oneOf/1",
            I,
            C,
        ),
        // Every old value (a string) matches both new branches: oneOf rejects it.
        (
            json!({"type": "string"}),
            json!({"oneOf": [{"type": "string"}, {"type": "string"}]}),
            "one_of.overlap",
            "/oneOf",
            I,
            C,
        ),
        (
            json!({"not": {"type": "string"}}),
            json!({"not": {"type": "integer"}}),
            "not.changed",
            "/not",
            I,
            I,
        ),
        (
            json!({"if": {"required": ["a"]}, "then": false}),
            json!({"if": {"required": ["a"]}, "then": {"required": ["b"]}}),
            "conditional.widened",
            "/then",
            C,
            I,
        ),
        (
            json!({"if": {"required": ["a"]}, "then": true}),
            json!({"if": {"required": ["a"]}, "then": false}),
            "conditional.narrowed",
            "/then",
            I,
            C,
        ),
    ]);
}

#[test]
fn all_of_branches_are_reported_as_the_keywords_they_change() {
    // No `all_of.*` kind exists: allOf branches merge into one schema.
    only(
        json!({"allOf": [{"type": "string"}]}),
        json!({"allOf": [{"type": "string"}, {"minLength": 1}]}),
        "min_length.added",
        "/minLength",
        I,
        C,
    );
}

#[test]
fn a_union_too_large_to_analyse_is_one_unknown_change() {
    // 9 x 9 = 81 alternatives, over the engine's 64.
    let mins: Vec<Value> = (1..10).map(|i| json!({"minLength": i})).collect();
    let maxs: Vec<Value> = (20..29).map(|i| json!({"maxLength": i})).collect();
    only(
        json!({"type": "string", "allOf": [{"anyOf": mins}, {"anyOf": maxs}]}),
        json!({"type": "string"}),
        "schema.changed",
        "",
        U,
        U,
    );
}

#[test]
fn every_annotation_added_and_removed() {
    let mut asserted = Vec::new();
    for (keyword, value, kind) in [
        ("title", json!("T"), "title"),
        ("description", json!("d"), "description"),
        ("examples", json!(["x"]), "examples"),
        ("default", json!("x"), "default"),
        ("deprecated", json!(true), "deprecated"),
        ("$comment", json!("c"), "comment"),
        ("$id", json!("https://x.example/a.json"), "id"),
        ("x-owner", json!("team"), "annotation"),
    ] {
        let plain = json!({"type": "string"});
        let mut with = plain.clone();
        with[keyword] = value;
        let pointer = format!("/{keyword}");
        for (old, new, action) in [(&plain, &with, "added"), (&with, &plain, "removed")] {
            let r = backward(old.clone(), new.clone());
            assert_eq!(
                summary(&r),
                vec![(format!("{kind}.{action}"), pointer.clone(), C, C)],
                "{keyword} {action}"
            );
            assert_eq!(r.needed_bump, Bump::Patch, "{keyword} {action}");
            asserted.push(format!("{kind}.{action}"));
        }
    }
    assert_eq!(asserted, ANNOTATION_KINDS);
}

/// The kinds `every_annotation_added_and_removed` asserts, in its order: spelled out
/// because it builds them from parts, and the sweep below reads string literals.
const ANNOTATION_KINDS: &[&str] = &[
    "title.added",
    "title.removed",
    "description.added",
    "description.removed",
    "examples.added",
    "examples.removed",
    "default.added",
    "default.removed",
    "deprecated.added",
    "deprecated.removed",
    "comment.added",
    "comment.removed",
    "id.added",
    "id.removed",
    "annotation.added",
    "annotation.removed",
];

/// "One test per change kind", enforced: every kind the engine emits
/// ([`herald_contracts::evolution::KINDS`]) appears as a string literal in this file
/// outside an override, and every kind literal here is one the engine emits.
#[test]
fn every_change_kind_the_engine_emits_has_a_test() {
    let source = include_str!("evolution_changes.rs");
    let literal = regex::Regex::new(r#""([a-z_]+\.[a-z_]+)""#).unwrap();
    let mut asserted = std::collections::BTreeSet::new();
    for line in source.lines().filter(|l| !l.contains("with_override(")) {
        for c in literal.captures_iter(line) {
            let id = c.get(1).unwrap().as_str();
            if ChangeKind::parse(id).is_some() {
                asserted.insert(id.to_string());
            }
        }
    }
    let kinds: std::collections::BTreeSet<String> = herald_contracts::evolution::KINDS
        .iter()
        .map(|k| k.to_string())
        .collect();
    let untested: Vec<&String> = kinds.difference(&asserted).collect();
    assert!(
        untested.is_empty(),
        "change kinds without a test: {untested:?}"
    );
    let unknown: Vec<&String> = asserted.difference(&kinds).collect();
    assert!(
        unknown.is_empty(),
        "kinds the engine never emits: {unknown:?}"
    );
}
