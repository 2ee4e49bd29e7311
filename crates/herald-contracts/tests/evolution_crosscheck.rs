//! The instance-level cross-check: whenever the engine says "compatible", no instance
//! may be valid under one schema and invalid under the other, with the `jsonschema`
//! crate (formats asserted, as herald validates) as the judge.
//!
//! Why a second soundness test: a verdict is a claim about sets of instances, and the
//! engine compares keywords. This test attacks the gap between the two. Each case
//! draws a schema that mixes every keyword the engine judges (`required` names
//! declared or not, `dependentRequired`, `dependentSchemas`, `if`/`then`/`else`,
//! `patternProperties`, `propertyNames`, property counts, closing an open object,
//! `not`, `contains` and its counts, `prefixItems`, `uniqueItems`, `format`, numeric
//! bounds, `multipleOf`, `const`/`enum`, `oneOf`/`anyOf`), then edits one keyword at
//! a random place *inside* it (including inside `if`/`then`/`else` and
//! `dependentSchemas`). Instances are drawn from each schema (guided by its keywords,
//! so that many are valid), plus random values of every JSON type at the root and edge
//! cases (`{}`, `[]`, `0`, `""`, `null`, boundary numbers). Both policies are
//! checked; under `lenient` only instances that use declared property names count,
//! since that is the policy's stated assumption.
//!
//! Runs 500 cases by default (CI). A long run:
//! `HERALD_CROSSCHECK_CASES=20000 cargo test --release -p herald-contracts --test evolution_crosscheck -- --nocapture`
//! (prints how many pairs changed and how many instance checks ran).

use herald_contracts::evolution::{compare, Mode, NoExternalSchemas, Options, Policy, Verdict};
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use std::cell::Cell;

const NAMES: &[&str] = &["a", "b", "c", "x_1"];
const PATTERNS: &[&str] = &["^a", "a", "a*", "x?", "^$", "^[a-c]+$", ".*", "^x_", "b$"];
const PATTERN_PROPERTY_KEYS: &[&str] = &["^x_", "^a", "c"];
const FORMATS: &[&str] = &["date-time", "date", "email", "uuid", "ipv4"];
const STRINGS: &[&str] = &[
    "",
    "a",
    "b",
    "x",
    "ab",
    "abc",
    "x_1",
    "2024-01-15",
    "2024-01-15T10:30:00Z",
    "a@b.co",
    "550e8400-e29b-41d4-a716-446655440000",
    "10.0.0.1",
];

fn pick<'a, T>(r: &mut StdRng, xs: &'a [T]) -> &'a T {
    &xs[r.random_range(0..xs.len())]
}

fn number(r: &mut StdRng) -> Value {
    match r.random_range(0..8) {
        0 => json!(0.5),
        1 => json!(2.5),
        _ => json!(r.random_range(-2i64..4)),
    }
}

fn scalar(r: &mut StdRng) -> Value {
    match r.random_range(0..6) {
        0 => Value::Null,
        1 => json!(r.random_bool(0.5)),
        2 | 3 => number(r),
        _ => json!(*pick(r, STRINGS)),
    }
}

fn type_name(r: &mut StdRng) -> Value {
    let t = [
        "string", "integer", "number", "boolean", "null", "object", "array",
    ];
    if r.random_range(0..6) == 0 {
        let first = r.random_range(0..t.len());
        let second = (first + r.random_range(1..t.len())) % t.len();
        json!([t[first], t[second]])
    } else {
        json!(*pick(r, &t))
    }
}

/// A small schema, any kind.
fn leaf(r: &mut StdRng) -> Value {
    match r.random_range(0..12) {
        0 => json!(true),
        1 => json!(false),
        2 => json!({}),
        3 => json!({"type": "string", "format": *pick(r, FORMATS)}),
        4 => json!({"type": "string", "pattern": *pick(r, PATTERNS)}),
        5 => json!({"type": "integer", "minimum": r.random_range(-1i64..3)}),
        6 => json!({"type": "number", "exclusiveMaximum": r.random_range(-1i64..3)}),
        7 => json!({"enum": [scalar(r), scalar(r)]}),
        8 => json!({"const": scalar(r)}),
        9 => json!({"type": "integer", "multipleOf": *pick(r, &[1, 2, 3])}),
        10 => json!({"type": "string", "maxLength": r.random_range(0u64..3)}),
        _ => json!({"type": type_name(r)}),
    }
}

fn object_schema(r: &mut StdRng, depth: u32) -> Value {
    let mut m = Map::new();
    if r.random_bool(0.7) {
        m.insert("type".into(), json!("object"));
    }
    let mut props = Map::new();
    for n in NAMES {
        if r.random_bool(0.45) {
            props.insert(n.to_string(), schema(r, depth));
        }
    }
    if !props.is_empty() {
        m.insert("properties".into(), Value::Object(props));
    }
    // `required` may name undeclared properties.
    let req: Vec<&str> = NAMES
        .iter()
        .copied()
        .filter(|_| r.random_bool(0.3))
        .collect();
    if !req.is_empty() {
        m.insert("required".into(), json!(req));
    }
    for _ in 0..r.random_range(0..3) {
        add_object_keyword(r, &mut m, depth);
    }
    Value::Object(m)
}

fn add_object_keyword(r: &mut StdRng, m: &mut Map<String, Value>, depth: u32) {
    match r.random_range(0..9) {
        0 => {
            let v = if r.random_bool(0.5) {
                json!(false)
            } else {
                leaf(r)
            };
            m.insert("additionalProperties".into(), v);
        }
        1 => {
            m.insert("unevaluatedProperties".into(), json!(false));
        }
        2 => {
            m.insert(
                "patternProperties".into(),
                json!({ *pick(r, PATTERN_PROPERTY_KEYS): schema(r, depth) }),
            );
        }
        3 => {
            let v = if r.random_bool(0.5) {
                json!({"maxLength": 1})
            } else {
                json!({"pattern": "^[a-c]$"})
            };
            m.insert("propertyNames".into(), v);
        }
        4 => {
            let k = if r.random_bool(0.5) {
                "minProperties"
            } else {
                "maxProperties"
            };
            m.insert(k.into(), json!(r.random_range(0u64..3)));
        }
        5 => {
            m.insert(
                "dependentRequired".into(),
                json!({ *pick(r, NAMES): [*pick(r, NAMES)] }),
            );
        }
        6 => {
            let sub = if r.random_bool(0.5) {
                json!({"required": [*pick(r, NAMES)]})
            } else {
                json!({"properties": { *pick(r, NAMES): leaf(r) }})
            };
            m.insert("dependentSchemas".into(), json!({ *pick(r, NAMES): sub }));
        }
        7 => {
            let mut c = Map::new();
            c.insert("if".into(), json!({"required": [*pick(r, NAMES)]}));
            c.insert("then".into(), schema(r, depth));
            if r.random_bool(0.5) {
                c.insert("else".into(), schema(r, depth));
            }
            m.extend(c);
        }
        _ => {
            m.insert("not".into(), leaf(r));
        }
    }
}

fn array_schema(r: &mut StdRng, depth: u32) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!("array"));
    for _ in 0..r.random_range(1..4) {
        match r.random_range(0..7) {
            0 => {
                m.insert("items".into(), schema(r, depth));
            }
            1 => {
                m.insert("prefixItems".into(), json!([schema(r, depth)]));
            }
            2 => {
                m.insert("contains".into(), leaf(r));
            }
            3 => {
                m.insert("minContains".into(), json!(r.random_range(0u64..3)));
                m.insert("contains".into(), leaf(r));
            }
            4 => {
                m.insert("maxContains".into(), json!(r.random_range(0u64..3)));
                m.insert("contains".into(), leaf(r));
            }
            5 => {
                m.insert("uniqueItems".into(), json!(r.random_bool(0.7)));
            }
            _ => {
                let k = if r.random_bool(0.5) {
                    "minItems"
                } else {
                    "maxItems"
                };
                m.insert(k.into(), json!(r.random_range(0u64..3)));
            }
        }
    }
    Value::Object(m)
}

fn schema(r: &mut StdRng, depth: u32) -> Value {
    if depth == 0 {
        return leaf(r);
    }
    let d = depth - 1;
    match r.random_range(0..10) {
        0..=2 => object_schema(r, d),
        3 => array_schema(r, d),
        4 => {
            let kw = if r.random_bool(0.5) { "oneOf" } else { "anyOf" };
            json!({ kw: [schema(r, d), schema(r, d)] })
        }
        5 => {
            let t = type_name(r);
            json!({"type": t, "if": leaf(r), "then": {"type": t}, "else": leaf(r)})
        }
        6 => json!({"allOf": [schema(r, d), leaf(r)]}),
        7 => json!({"not": leaf(r)}),
        _ => leaf(r),
    }
}

// ------------------------------------------------------------------ edits

/// Every place in `s` that holds a subschema object, as a path of keys/indices.
fn places(s: &Value, path: Vec<String>, out: &mut Vec<Vec<String>>) {
    let Value::Object(m) = s else { return };
    out.push(path.clone());
    for (k, v) in m {
        let mut p = path.clone();
        p.push(k.clone());
        match k.as_str() {
            "properties" | "patternProperties" | "dependentSchemas" => {
                for (name, sub) in v.as_object().into_iter().flatten() {
                    let mut q = p.clone();
                    q.push(name.clone());
                    places(sub, q, out);
                }
            }
            "allOf" | "anyOf" | "oneOf" | "prefixItems" => {
                for (i, sub) in v.as_array().into_iter().flatten().enumerate() {
                    let mut q = p.clone();
                    q.push(i.to_string());
                    places(sub, q, out);
                }
            }
            "items"
            | "contains"
            | "not"
            | "if"
            | "then"
            | "else"
            | "additionalProperties"
            | "unevaluatedProperties"
            | "propertyNames" => places(v, p, out),
            _ => {}
        }
    }
}

fn at_mut<'v>(s: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    let mut cur = s;
    for k in path {
        cur = match cur {
            Value::Object(m) => m.get_mut(k)?,
            Value::Array(a) => a.get_mut(k.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Toggles `key`: removes it when present (half the time), else sets `value`.
fn toggle(coin: bool, m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.contains_key(key) && coin {
        m.remove(key);
    } else {
        m.insert(key.to_string(), value);
    }
}

/// One edit of one keyword, somewhere inside `s`.
fn edit(r: &mut StdRng, s: &mut Value) {
    let mut ps = Vec::new();
    places(s, Vec::new(), &mut ps);
    if ps.is_empty() {
        // a boolean schema: the only edit is to replace it
        *s = leaf(r);
        return;
    }
    let path = pick(r, &ps).clone();
    let Some(Value::Object(m)) = at_mut(s, &path) else {
        return;
    };
    match r.random_range(0..30) {
        0..=2 => {
            // required: add or remove one name, declared or not
            let name = *pick(r, NAMES);
            let mut req: Vec<Value> = m
                .get("required")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(i) = req.iter().position(|v| v == name) {
                req.remove(i);
            } else {
                req.push(json!(name));
            }
            if req.is_empty() {
                m.remove("required");
            } else {
                m.insert("required".into(), Value::Array(req));
            }
        }
        3 | 4 => {
            let name = *pick(r, NAMES);
            let props = m
                .entry("properties")
                .or_insert_with(|| json!({}))
                .as_object_mut();
            if let Some(p) = props {
                if p.contains_key(name) && r.random_bool(0.5) {
                    p.remove(name);
                } else {
                    p.insert(name.to_string(), leaf(r));
                }
            }
        }
        5 => toggle(r.random_bool(0.5), m, "type", type_name(r)),
        6 => toggle(
            r.random_bool(0.5),
            m,
            "enum",
            json!([scalar(r), scalar(r), scalar(r)]),
        ),
        7 => toggle(r.random_bool(0.5), m, "const", scalar(r)),
        8 => {
            let k = *pick(
                r,
                &["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"],
            );
            toggle(r.random_bool(0.5), m, k, json!(r.random_range(-2i64..4)));
        }
        9 => toggle(
            r.random_bool(0.5),
            m,
            "multipleOf",
            json!(*pick(r, &[1.0, 2.0, 3.0, 0.5])),
        ),
        10 => {
            let k = *pick(r, &["minLength", "maxLength"]);
            toggle(r.random_bool(0.5), m, k, json!(r.random_range(0u64..4)));
        }
        11 => toggle(r.random_bool(0.5), m, "pattern", json!(*pick(r, PATTERNS))),
        12 => toggle(r.random_bool(0.5), m, "format", json!(*pick(r, FORMATS))),
        13 => {
            let v = match r.random_range(0..3) {
                0 => json!(false),
                1 => json!(true),
                _ => leaf(r),
            };
            toggle(r.random_bool(0.5), m, "additionalProperties", v);
        }
        14 => toggle(r.random_bool(0.5), m, "unevaluatedProperties", json!(false)),
        15 => {
            let key = *pick(r, PATTERN_PROPERTY_KEYS);
            let pp = m
                .entry("patternProperties")
                .or_insert_with(|| json!({}))
                .as_object_mut();
            if let Some(pp) = pp {
                if pp.contains_key(key) && r.random_bool(0.5) {
                    pp.remove(key);
                } else {
                    pp.insert(key.to_string(), leaf(r));
                }
            }
        }
        16 => {
            let choices = [
                json!({"maxLength": 1}),
                json!({"pattern": "^[a-c]$"}),
                json!({"enum": ["a", "b"]}),
            ];
            let v = pick(r, &choices).clone();
            toggle(r.random_bool(0.5), m, "propertyNames", v);
        }
        17 => {
            let k = *pick(r, &["minProperties", "maxProperties"]);
            toggle(r.random_bool(0.5), m, k, json!(r.random_range(0u64..3)));
        }
        18 => toggle(
            r.random_bool(0.5),
            m,
            "dependentRequired",
            json!({ *pick(r, NAMES): [*pick(r, NAMES)] }),
        ),
        19 => {
            let sub = match r.random_range(0..3) {
                0 => json!({"required": [*pick(r, NAMES)]}),
                1 => json!({"properties": { *pick(r, NAMES): leaf(r) }}),
                _ => leaf(r),
            };
            toggle(
                r.random_bool(0.5),
                m,
                "dependentSchemas",
                json!({ *pick(r, NAMES): sub }),
            );
        }
        20 => {
            // if/then/else: add (then repeating the parent's type), remove, or edit a branch
            if m.contains_key("if") && r.random_bool(0.5) {
                m.remove("if");
                m.remove("then");
                m.remove("else");
            } else {
                let then = match m.get("type") {
                    Some(t) if r.random_bool(0.5) => json!({"type": t}),
                    _ => leaf(r),
                };
                m.insert("if".into(), leaf(r));
                m.insert("then".into(), then);
                if r.random_bool(0.5) {
                    m.insert("else".into(), leaf(r));
                }
            }
        }
        21 => toggle(r.random_bool(0.5), m, "not", leaf(r)),
        22 => toggle(r.random_bool(0.5), m, "contains", leaf(r)),
        23 => {
            let k = *pick(r, &["minContains", "maxContains"]);
            toggle(r.random_bool(0.5), m, k, json!(r.random_range(0u64..3)));
        }
        24 => toggle(r.random_bool(0.5), m, "prefixItems", json!([leaf(r)])),
        25 => {
            let v = if r.random_bool(0.3) {
                json!(false)
            } else {
                leaf(r)
            };
            toggle(r.random_bool(0.5), m, "items", v);
        }
        26 => toggle(
            r.random_bool(0.5),
            m,
            "uniqueItems",
            json!(r.random_bool(0.7)),
        ),
        27 => {
            let k = *pick(r, &["minItems", "maxItems"]);
            toggle(r.random_bool(0.5), m, k, json!(r.random_range(0u64..3)));
        }
        28 => {
            // oneOf <-> anyOf
            if let Some(v) = m.remove("oneOf") {
                m.insert("anyOf".into(), v);
            } else if let Some(v) = m.remove("anyOf") {
                m.insert("oneOf".into(), v);
            } else {
                m.insert("anyOf".into(), json!([leaf(r), leaf(r)]));
            }
        }
        _ => {
            // replace a whole subschema
            let v = leaf(r);
            if let Some(slot) = at_mut(s, &path) {
                if !path.is_empty() {
                    *slot = v;
                }
            }
        }
    }
}

// ------------------------------------------------------------------ instances

fn random_value(r: &mut StdRng, depth: u32) -> Value {
    let top = if depth == 0 { 6 } else { 9 };
    match r.random_range(0..top) {
        0..=5 => scalar(r),
        6 | 7 => {
            let mut m = Map::new();
            for _ in 0..r.random_range(0..4) {
                m.insert(pick(r, NAMES).to_string(), random_value(r, depth - 1));
            }
            Value::Object(m)
        }
        _ => Value::Array(
            (0..r.random_range(0..4))
                .map(|_| random_value(r, depth - 1))
                .collect(),
        ),
    }
}

/// A value that tries to satisfy `s` (so that many instances are valid under it).
fn guided(r: &mut StdRng, s: &Value, depth: u32) -> Value {
    let Value::Object(m) = s else {
        return random_value(r, 1);
    };
    if depth == 0 || r.random_range(0..10) == 0 {
        return random_value(r, 1);
    }
    if let Some(c) = m.get("const") {
        return c.clone();
    }
    if let Some(Value::Array(e)) = m.get("enum") {
        if !e.is_empty() && r.random_bool(0.8) {
            return pick(r, e).clone();
        }
    }
    for kw in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(bs)) = m.get(kw) {
            if !bs.is_empty() && r.random_bool(0.6) {
                let b = pick(r, bs).clone();
                return guided(r, &b, depth - 1);
            }
        }
    }
    let ty = match m.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) if !ts.is_empty() => {
            pick(r, ts).as_str().unwrap_or("null").to_string()
        }
        _ if m.contains_key("properties") || m.contains_key("required") => "object".into(),
        _ if m.contains_key("items") || m.contains_key("prefixItems") => "array".into(),
        _ => return random_value(r, 2),
    };
    match ty.as_str() {
        "object" => {
            let mut o = Map::new();
            let mut names: Vec<String> = m
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from))
                .collect();
            if let Some(Value::Object(p)) = m.get("properties") {
                names.extend(p.keys().filter(|_| r.random_bool(0.6)).cloned());
            }
            if r.random_bool(0.3) {
                names.push(pick(r, NAMES).to_string());
            }
            for n in names {
                let sub = m
                    .get("properties")
                    .and_then(|p| p.get(&n))
                    .cloned()
                    .unwrap_or(json!({}));
                let v = guided(r, &sub, depth - 1);
                o.insert(n, v);
            }
            Value::Object(o)
        }
        "array" => {
            let mut a = Vec::new();
            if let Some(Value::Array(pre)) = m.get("prefixItems") {
                for p in pre {
                    a.push(guided(r, p, depth - 1));
                }
            }
            let item = m.get("items").cloned().unwrap_or(json!({}));
            for _ in 0..r.random_range(0..3) {
                a.push(guided(r, &item, depth - 1));
            }
            if let Some(c) = m.get("contains") {
                a.push(guided(r, c, depth - 1));
            }
            Value::Array(a)
        }
        "string" => json!(*pick(r, STRINGS)),
        "integer" => json!(r.random_range(-2i64..4)),
        "number" => number(r),
        "boolean" => json!(r.random_bool(0.5)),
        _ => Value::Null,
    }
}

fn edge_cases() -> Vec<Value> {
    let mut v = vec![
        json!({}),
        json!([]),
        json!(0),
        json!(""),
        Value::Null,
        json!(true),
        json!(-1),
        json!(1),
        json!(2),
        json!(3),
        json!(0.5),
        json!([1, 1]),
        json!(["a", "a"]),
        json!({"a": 1}),
        json!({"x_1": null}),
        json!({"a": 1, "b": 2, "c": 3}),
    ];
    v.extend(STRINGS.iter().map(|s| json!(s)));
    v
}

// ------------------------------------------------------------------ lenient filter

/// Whether `s` declares property `k` on every path an instance can take through it:
/// in its own `properties`/`patternProperties`, in some `allOf` branch, in every
/// branch of an `anyOf`/`oneOf`, or in both `then` and `else`.
fn declares(s: &Value, k: &str) -> bool {
    let Value::Object(m) = s else { return false };
    let own = m.get("properties").and_then(|p| p.get(k)).is_some()
        || m.get("patternProperties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .any(|(p, _)| regex::Regex::new(p).is_ok_and(|re| re.is_match(k)));
    let branches = |kw: &str| {
        m.get(kw)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    own || branches("allOf").iter().any(|b| declares(b, k))
        || ["anyOf", "oneOf"]
            .iter()
            .any(|kw| !branches(kw).is_empty() && branches(kw).iter().all(|b| declares(b, k)))
        || (m.get("then").is_some_and(|t| declares(t, k))
            && m.get("else").is_some_and(|e| declares(e, k)))
}

/// Every subschema that may apply to the value of property `k` (or, with `item`, to
/// an array item at that index), over all branches.
fn value_schemas<'s>(s: &'s Value, k: Option<&str>, item: Option<usize>, out: &mut Vec<&'s Value>) {
    let Value::Object(m) = s else { return };
    if let Some(k) = k {
        if let Some(v) = m.get("properties").and_then(|p| p.get(k)) {
            out.push(v);
        }
        for (p, v) in m
            .get("patternProperties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if regex::Regex::new(p).is_ok_and(|re| re.is_match(k)) {
                out.push(v);
            }
        }
    }
    if let Some(i) = item {
        out.extend(m.get("prefixItems").and_then(|p| p.get(i)));
        out.extend(m.get("items"));
        out.extend(m.get("contains"));
    }
    for kw in ["allOf", "anyOf", "oneOf"] {
        for b in m.get(kw).and_then(Value::as_array).into_iter().flatten() {
            value_schemas(b, k, item, out);
        }
    }
    for kw in ["if", "then", "else"] {
        if let Some(b) = m.get(kw) {
            value_schemas(b, k, item, out);
        }
    }
    for b in m
        .get("dependentSchemas")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        value_schemas(b.1, k, item, out);
    }
}

/// Whether `x` uses only property names that `s` declares where they occur: the
/// assumption under which `lenient` judges open content models. Conservative: an
/// instance it keeps never relies on an undeclared name.
fn uses_declared_names(s: &Value, x: &Value) -> bool {
    match x {
        Value::Object(o) => o.iter().all(|(k, v)| {
            let mut subs = Vec::new();
            value_schemas(s, Some(k), None, &mut subs);
            declares(s, k) && subs.iter().all(|sub| uses_declared_names(sub, v))
        }),
        Value::Array(a) => a.iter().enumerate().all(|(i, item)| {
            let mut subs = Vec::new();
            value_schemas(s, None, Some(i), &mut subs);
            if subs.is_empty() {
                uses_declared_names(&json!({}), item)
            } else {
                subs.iter().all(|sub| uses_declared_names(sub, item))
            }
        }),
        _ => true,
    }
}

// ------------------------------------------------------------------ the property

fn validator(s: &Value) -> Result<jsonschema::Validator, TestCaseError> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(s)
        .map_err(|e| TestCaseError::fail(format!("not a schema: {e}\n{s}")))
}

#[derive(Default)]
struct Tally {
    pairs: Cell<usize>,
    changed: Cell<usize>,
    distinguishable: Cell<usize>,
    compatible_claims: Cell<usize>,
    instance_checks: Cell<usize>,
}

fn bump(c: &Cell<usize>, by: usize) {
    c.set(c.get() + by);
}

#[test]
fn compatible_verdicts_hold_on_every_instance() {
    let cases: u32 = std::env::var("HERALD_CROSSCHECK_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
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
    let tally = Tally::default();
    let result = runner.run(&proptest::prelude::any::<u64>(), |seed| {
        let mut r = StdRng::seed_from_u64(seed);
        let old = schema(&mut r, 2);
        let mut new = old.clone();
        edit(&mut r, &mut new);
        bump(&tally.pairs, 1);
        if old == new {
            return Ok(());
        }
        bump(&tally.changed, 1);
        let (vo, vn) = (validator(&old)?, validator(&new)?);
        let mut instances = edge_cases();
        for _ in 0..40 {
            instances.push(guided(&mut r, &old, 4));
            instances.push(guided(&mut r, &new, 4));
            instances.push(random_value(&mut r, 2));
        }
        let judged: Vec<(bool, bool)> = instances
            .iter()
            .map(|i| (vo.is_valid(i), vn.is_valid(i)))
            .collect();
        if judged.iter().any(|(a, b)| a != b) {
            bump(&tally.distinguishable, 1);
        }
        for policy in [Policy::Strict, Policy::Lenient] {
            let report = compare(
                &old,
                &new,
                &Options::new(Mode::Full).with_policy(policy),
                &NoExternalSchemas,
            )
            .map_err(|e| TestCaseError::fail(format!("engine error: {e}\nold: {old}\nnew: {new}")))?;
            for (backward, verdict) in [(true, report.backward), (false, report.forward)] {
                if verdict != Verdict::Compatible {
                    continue;
                }
                bump(&tally.compatible_claims, 1);
                let (from, from_schema) = if backward { (0, &old) } else { (1, &new) };
                for (inst, valid) in instances.iter().zip(&judged) {
                    let (in_from, in_to) = if from == 0 {
                        (valid.0, valid.1)
                    } else {
                        (valid.1, valid.0)
                    };
                    if !in_from {
                        continue;
                    }
                    if policy == Policy::Lenient && !uses_declared_names(from_schema, inst) {
                        continue;
                    }
                    bump(&tally.instance_checks, 1);
                    if !in_to {
                        return Err(TestCaseError::fail(format!(
                            "{} compatible under {policy} per the engine, but {inst} is valid under {} and invalid under {}\nold: {old}\nnew: {new}\nchanges: {:#?}",
                            if backward { "backward" } else { "forward" },
                            if backward { "old" } else { "new" },
                            if backward { "new" } else { "old" },
                            report.changes
                        )));
                    }
                }
            }
        }
        Ok(())
    });
    println!(
        "cross-check: {} pairs, {} changed by their edit, {} with an instance telling them apart, {} compatible claims, {} instance checks",
        tally.pairs.get(),
        tally.changed.get(),
        tally.distinguishable.get(),
        tally.compatible_claims.get(),
        tally.instance_checks.get()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(
        tally.changed.get() * 10 >= tally.pairs.get() * 8,
        "most edits must change the schema, or the test checks little"
    );
    assert!(
        tally.instance_checks.get() >= tally.changed.get() * 10,
        "too few instance checks: the test would be vacuous"
    );
}
