//! Soundness by property: whenever the engine calls a change backward-compatible,
//! every sampled instance valid under the old schema must validate under the new one
//! (and symmetrically for forward), as judged by the independent `jsonschema` crate.

use herald_contracts::evolution::{compare, Mode, NoExternalSchemas, Options, Policy, Verdict};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use serde_json::{json, Map, Value};
use std::cell::Cell;

const NAMES: &[&str] = &["a", "b", "c"];
const INSTANCE_KEYS: &[&str] = &["a", "b", "c", "d", "x_1"];

fn leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!({})),
        Just(json!(true)),
        Just(json!(false)),
        Just(json!({"type": "string"})),
        Just(json!({"type": "integer"})),
        Just(json!({"type": "number"})),
        Just(json!({"type": "boolean"})),
        Just(json!({"type": "null"})),
        Just(json!({"type": ["string", "null"]})),
        Just(json!({"anyOf": [{"type": "string"}, {"type": "null"}]})),
        (0u64..4).prop_map(|n| json!({"type": "string", "maxLength": n})),
        (0u64..4).prop_map(|n| json!({"type": "string", "minLength": n})),
        (-2i64..3).prop_map(|n| json!({"type": "integer", "minimum": n})),
        (-2i64..3).prop_map(|n| json!({"type": "number", "exclusiveMaximum": n})),
        (-2i64..3).prop_map(|n| json!({"maximum": n})),
        prop::sample::subsequence(vec!["x", "y", "z"], 1..3).prop_map(|v| json!({"enum": v})),
        prop::sample::subsequence(vec!["x", "y", "z"], 1..3)
            .prop_map(|v| json!({"type": "string", "enum": v})),
        (0i64..3).prop_map(|n| json!({"const": n})),
        (1u64..5).prop_map(|n| json!({"type": "integer", "multipleOf": n})),
        Just(json!({"type": "array", "items": {"type": "integer"}})),
        Just(json!({"type": "array", "items": {"type": "number"}})),
        (0u64..3).prop_map(|n| json!({"type": "array", "maxItems": n})),
        (0u64..3).prop_map(|n| json!({"type": "array", "minItems": n})),
        Just(json!({"type": "array", "prefixItems": [{"type": "string"}], "items": false})),
        Just(json!({"type": "array", "prefixItems": [{"type": "string"}]})),
        Just(json!({"type": "array", "uniqueItems": true})),
        Just(json!({"type": "array", "contains": {"type": "string"}})),
        Just(json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})),
        Just(json!({"oneOf": [{"type": "string"}, {"type": "integer", "minimum": 0}]})),
        Just(json!({"oneOf": [{"type": "number"}, {"type": "integer"}]})),
        Just(json!({"oneOf": [{"type": "integer"}, {"type": "string", "maxLength": 2}]})),
        Just(json!({"not": {"type": "string"}})),
        Just(json!({"not": {"type": "integer"}})),
        Just(json!({"allOf": [{"type": "integer"}, {"minimum": 0}]})),
        Just(json!({"if": {"type": "integer"}, "then": {"minimum": 1}})),
        Just(json!({"type": "object", "propertyNames": {"maxLength": 1}})),
        Just(json!({"type": "object", "dependentRequired": {"a": ["b"]}})),
        Just(json!({"dependentSchemas": {"a": {"required": ["b"], "properties": {"b": {}}}}})),
        Just(json!({"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": false})),
        Just(json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]})),
        Just(json!({"type": "object", "patternProperties": {"^x_": {"type": "null"}}})),
        Just(json!({"$ref": "#/$defs/small"})),
        Just(json!({"$ref": "#/$defs/list"})),
        Just(json!({"if": {"required": ["a"], "properties": {"a": {}}}, "then": {"maxProperties": 1}, "else": {"minProperties": 1}})),
        Just(json!({"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}})),
        Just(json!({"type": ["integer", "string"], "minimum": 1, "maxLength": 2})),
        Just(json!({"unevaluatedProperties": false, "allOf": [{"properties": {"a": {}}}]})),
        Just(json!({"oneOf": [
            {"type": "object", "properties": {"a": {"const": "x"}}, "required": ["a"]},
            {"type": "object", "properties": {"a": {"const": "y"}, "b": {"type": "integer"}}, "required": ["a"]}
        ]})),
        Just(json!({"anyOf": [{"type": "object", "required": ["a"], "properties": {"a": {}}}, {"maxProperties": 0}]})),
        Just(json!({"oneOf": [{"type": "object"}, {"type": "array"}, {"enum": ["x", 1]}]})),
    ]
    .boxed()
}

fn object_schema(depth: u32) -> BoxedStrategy<Value> {
    let prop_schema = if depth == 0 {
        leaf()
    } else {
        prop_oneof![3 => leaf(), 1 => object_schema(depth - 1)].boxed()
    };
    (
        prop::collection::btree_map(prop::sample::select(NAMES), prop_schema, 0..4),
        prop::collection::vec(any::<bool>(), 3),
        0u8..6,
        leaf(),
        prop::option::of(leaf()),
        prop::option::of(0u64..3),
        any::<bool>(),
    )
        .prop_map(
            |(props, req_mask, ap, ap_schema, pattern, min_props, typed)| {
                let mut m = Map::new();
                if typed {
                    m.insert("type".into(), json!("object"));
                }
                let required: Vec<Value> = props
                    .keys()
                    .zip(req_mask)
                    .filter(|(_, r)| *r)
                    .map(|(k, _)| json!(k))
                    .collect();
                m.insert(
                    "properties".into(),
                    Value::Object(props.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
                );
                if !required.is_empty() {
                    m.insert("required".into(), Value::Array(required));
                }
                match ap {
                    0 | 1 => {}
                    2 => {
                        m.insert("additionalProperties".into(), json!(false));
                    }
                    3 => {
                        m.insert("additionalProperties".into(), json!(true));
                    }
                    _ => {
                        m.insert("additionalProperties".into(), ap_schema);
                    }
                }
                if let Some(p) = pattern {
                    m.insert("patternProperties".into(), json!({"^x_": p}));
                }
                if let Some(n) = min_props {
                    m.insert("minProperties".into(), json!(n));
                }
                m.insert(
                    "$defs".into(),
                    json!({"small": {"type": "integer", "maximum": 5}, "list": {"type": "array", "items": {"$ref": "#/$defs/small"}}}),
                );
                Value::Object(m)
            },
        )
        .boxed()
}

/// One random edit of an object schema (at the root or inside a nested object).
#[derive(Debug, Clone)]
enum Edit {
    SetProperty(usize, Value),
    RemoveProperty(usize),
    ToggleRequired(usize),
    SetAdditional(Option<Value>),
    SetPattern(Option<Value>),
    SetMinProperties(Option<u64>),
    SetMaxProperties(Option<u64>),
    ToggleType,
    SetSmallMaximum(i64),
    WrapAnyOf(Value),
    WrapOneOf(Value),
    Nested(usize, Box<Edit>),
}

fn edit() -> BoxedStrategy<Edit> {
    let base = prop_oneof![
        3 => (0usize..3, leaf()).prop_map(|(i, v)| Edit::SetProperty(i, v)),
        2 => (0usize..3).prop_map(Edit::RemoveProperty),
        2 => (0usize..3).prop_map(Edit::ToggleRequired),
        2 => prop::option::of(leaf()).prop_map(Edit::SetAdditional),
        1 => prop::option::of(leaf()).prop_map(Edit::SetPattern),
        1 => prop::option::of(0u64..3).prop_map(Edit::SetMinProperties),
        1 => prop::option::of(0u64..3).prop_map(Edit::SetMaxProperties),
        1 => Just(Edit::ToggleType),
        1 => (3i64..8).prop_map(Edit::SetSmallMaximum),
        1 => leaf().prop_map(Edit::WrapAnyOf),
        1 => leaf().prop_map(Edit::WrapOneOf),
    ];
    base.prop_recursive(2, 8, 1, |inner| {
        (0usize..3, inner).prop_map(|(i, e)| Edit::Nested(i, Box::new(e)))
    })
    .boxed()
}

fn apply(schema: &mut Value, e: &Edit) {
    let Some(m) = schema.as_object_mut() else {
        return;
    };
    match e {
        Edit::SetProperty(i, v) => {
            let props = m.entry("properties").or_insert_with(|| json!({}));
            if let Some(p) = props.as_object_mut() {
                p.insert(NAMES[*i].to_string(), v.clone());
            }
        }
        Edit::RemoveProperty(i) => {
            if let Some(p) = m.get_mut("properties").and_then(Value::as_object_mut) {
                p.remove(NAMES[*i]);
            }
            if let Some(r) = m.get_mut("required").and_then(Value::as_array_mut) {
                r.retain(|x| x != NAMES[*i]);
            }
        }
        Edit::ToggleRequired(i) => {
            let name = NAMES[*i];
            let declared = m.get("properties").and_then(|p| p.get(name)).is_some();
            let req = m.entry("required").or_insert_with(|| json!([]));
            if let Some(r) = req.as_array_mut() {
                if r.iter().any(|x| x == name) {
                    r.retain(|x| x != name);
                } else if declared {
                    r.push(json!(name));
                }
            }
        }
        Edit::SetAdditional(v) => match v {
            Some(v) => {
                m.insert("additionalProperties".into(), v.clone());
            }
            None => {
                m.remove("additionalProperties");
            }
        },
        Edit::SetPattern(v) => match v {
            Some(v) => {
                m.insert("patternProperties".into(), json!({"^x_": v}));
            }
            None => {
                m.remove("patternProperties");
            }
        },
        Edit::SetMinProperties(v) | Edit::SetMaxProperties(v) => {
            let key = if matches!(e, Edit::SetMinProperties(_)) {
                "minProperties"
            } else {
                "maxProperties"
            };
            match v {
                Some(n) => {
                    m.insert(key.into(), json!(n));
                }
                None => {
                    m.remove(key);
                }
            }
        }
        Edit::ToggleType => {
            if m.remove("type").is_none() {
                m.insert("type".into(), json!("object"));
            }
        }
        Edit::SetSmallMaximum(n) => {
            if let Some(small) = m.get_mut("$defs").and_then(|d| d.get_mut("small")) {
                small["maximum"] = json!(n);
            }
        }
        Edit::WrapAnyOf(v) | Edit::WrapOneOf(v) => {
            let kw = if matches!(e, Edit::WrapAnyOf(_)) {
                "anyOf"
            } else {
                "oneOf"
            };
            let defs = m.remove("$defs");
            let inner = Value::Object(std::mem::take(m));
            m.insert(kw.into(), json!([inner, v]));
            if let Some(d) = defs {
                m.insert("$defs".into(), d);
            }
        }
        Edit::Nested(i, e) => {
            if let Some(p) = m.get_mut("properties").and_then(|p| p.get_mut(NAMES[*i])) {
                apply(p, e);
            }
        }
    }
}

fn value(depth: u32) -> BoxedStrategy<Value> {
    let prim = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..12).prop_map(|n| json!(n)),
        Just(json!(2.5)),
        Just(json!(-0.5)),
        prop::sample::select(vec!["", "x", "y", "z", "ab", "abcd"]).prop_map(|s| json!(s)),
    ];
    if depth == 0 {
        return prim.boxed();
    }
    prop_oneof![
        4 => prim,
        1 => prop::collection::vec(value(depth - 1), 0..3).prop_map(Value::Array),
        1 => instance(depth - 1),
    ]
    .boxed()
}

fn instance(depth: u32) -> BoxedStrategy<Value> {
    prop::collection::btree_map(prop::sample::select(INSTANCE_KEYS), value(depth), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
        .boxed()
}

#[test]
fn compatible_verdicts_hold_on_sampled_instances() {
    let strategy = (
        object_schema(1),
        prop::collection::vec(edit(), 1..4),
        prop::collection::vec(instance(2), 48),
    );
    // HERALD_SOUNDNESS_CASES=20000 for a long hunt; a few seconds by default.
    let cases = std::env::var("HERALD_SOUNDNESS_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut runner = TestRunner::new(Config {
        cases,
        // A failing seed is saved beside this file (tests/<name>.proptest-regressions,
        // meant to be committed) and replayed first on every later run.
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    });
    let checked_backward = Cell::new(0usize);
    let checked_forward = Cell::new(0usize);
    let result = runner.run(&strategy, |(old, edits, instances)| {
        let mut new = old.clone();
        for e in &edits {
            apply(&mut new, e);
        }
        let report = compare(
            &old,
            &new,
            &Options::new(Mode::Backward).with_policy(Policy::Strict),
            &NoExternalSchemas,
        )
        .map_err(|e| TestCaseError::fail(format!("engine error: {e}")))?;
        let vo = jsonschema::validator_for(&old).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let vn = jsonschema::validator_for(&new).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for inst in &instances {
            let (in_old, in_new) = (vo.is_valid(inst), vn.is_valid(inst));
            if report.backward == Verdict::Compatible && in_old {
                checked_backward.set(checked_backward.get() + 1);
                prop_assert!(
                    in_new,
                    "backward-compatible per engine, but {inst} valid under old is rejected by new\nold: {old}\nnew: {new}\nchanges: {:#?}",
                    report.changes
                );
            }
            if report.forward == Verdict::Compatible && in_new {
                checked_forward.set(checked_forward.get() + 1);
                prop_assert!(
                    in_old,
                    "forward-compatible per engine, but {inst} valid under new is rejected by old\nold: {old}\nnew: {new}\nchanges: {:#?}",
                    report.changes
                );
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    println!(
        "soundness: {} backward and {} forward instance checks",
        checked_backward.get(),
        checked_forward.get()
    );
    assert!(
        checked_backward.get() > 500,
        "too few backward checks: the test would be vacuous"
    );
    assert!(
        checked_forward.get() > 500,
        "too few forward checks: the test would be vacuous"
    );
}
