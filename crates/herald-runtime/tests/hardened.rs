//! Hostile input to herald's entry points: event validation (bytes in, from any
//! producer), the trace/CloudEvents header values a consumer propagates, the schema
//! hint a header carries, and the schema diff engine. Random and adversarial
//! inputs (deep nesting, huge strings, invalid UTF-8, malformed header values,
//! oversized payloads) must always end in a clear error, never a panic or a stack
//! overflow. The same entry points are cargo-fuzz targets in `fuzz/`.

use herald_contracts::evolution::{compare, Mode, NoExternalSchemas, Options};
use herald_contracts::{Catalog, ValidationError};
use herald_runtime::headers;
use proptest::prelude::*;
use serde_json::{json, Value};

fn catalog() -> &'static Catalog {
    static C: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
    C.get_or_init(|| Catalog::embedded().expect("embedded catalog"))
}

fn subjects() -> Vec<String> {
    catalog()
        .subjects()
        .iter()
        .map(|s| s.name.clone())
        .collect()
}

/// Arbitrary JSON, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_$]{1,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn assert_clear(r: Result<(), ValidationError>) {
    if let Err(e) = r {
        assert!(!e.to_string().trim().is_empty(), "empty error message");
        assert!(!e.reason().is_empty());
    }
}

proptest! {
    // The default failure persistence replays tests/hardened.proptest-regressions
    // before any new case; the seed in it is also pinned as a unit test below.
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_validation(bytes in prop::collection::vec(any::<u8>(), 0..2048), k in 0usize..32) {
        let subjects = subjects();
        let subject = &subjects[k % subjects.len()];
        assert_clear(catalog().validate_bytes(subject, None, &bytes).map(|_| ()));
    }

    #[test]
    fn random_json_events_get_a_verdict(v in json_value(), k in 0usize..32) {
        let subjects = subjects();
        let subject = &subjects[k % subjects.len()];
        let bytes = serde_json::to_vec(&v).unwrap();
        assert_clear(catalog().validate_bytes(subject, None, &bytes).map(|_| ()));
    }

    #[test]
    fn any_schema_hint_is_an_error_or_a_known_schema(hint in ".{0,300}", k in 0usize..32) {
        let subjects = subjects();
        let subject = &subjects[k % subjects.len()];
        let event = json!({"event_id": "550e8400-e29b-41d4-a716-446655440000"});
        let bytes = serde_json::to_vec(&event).unwrap();
        assert_clear(catalog().validate_bytes(subject, Some(&hint), &bytes).map(|_| ()));
    }

    #[test]
    fn propagated_traceparents_are_always_well_formed(parent in ".{0,120}") {
        let child = headers::child_traceparent(&parent);
        let parts: Vec<&str> = child.split('-').collect();
        prop_assert_eq!(parts.len(), 4, "{}", child);
        prop_assert_eq!(parts[0], "00");
        prop_assert!(parts[1].len() == 32 && parts[2].len() == 16 && parts[3].len() == 2, "{}", child);
        prop_assert!(child.chars().all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{}", child);
        let _ = headers::trace_id(&parent);
    }

    #[test]
    fn traceparent_lookalikes_do_not_leak_through(trace in "[ -~]{32}", flags in "[ -~]{0,40}") {
        lookalike_gets_a_fresh_well_formed_child(&trace, &flags);
    }

    #[test]
    fn schema_diff_of_arbitrary_documents_never_panics(old in json_value(), new in json_value()) {
        for mode in [Mode::Backward, Mode::Forward, Mode::Full] {
            match compare(&old, &new, &Options::new(mode), &NoExternalSchemas) {
                Ok(report) => { let _ = report.breaking().count(); }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}

/// A parent that only looks like a traceparent (printable junk where the hex
/// trace id goes) gets a well-formed child whose trace id is all hex.
fn lookalike_gets_a_fresh_well_formed_child(trace: &str, flags: &str) {
    let parent = format!("00-{trace}-0123456789abcdef-{flags}");
    let child = headers::child_traceparent(&parent);
    assert_eq!(child.len(), 55, "{child}");
    let t = headers::trace_id(&child).expect("a child traceparent has a trace id");
    assert!(t.chars().all(|c| c.is_ascii_hexdigit()), "{child}");
}

/// The case proptest once shrank a failure to (tests/hardened.proptest-regressions).
#[test]
fn traceparent_lookalike_regression_seed() {
    lookalike_gets_a_fresh_well_formed_child(" 0 AAaAa A0AAAaAaA00aa 0  A0aa0 ", "");
}

fn nested(depth: usize, open: &str, close: &str) -> Vec<u8> {
    let mut s = open.repeat(depth);
    s.push_str(&close.repeat(depth));
    s.into_bytes()
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for depth in [200, 10_000, 200_000] {
        for (o, c) in [("[", "]"), ("{\"a\":", "}")] {
            let mut bytes = nested(depth, o, c);
            if o.starts_with('{') {
                // {"a":{"a":...null}}
                let mid = o.len() * depth;
                bytes.splice(mid..mid, b"null".iter().copied());
            }
            let e = catalog()
                .validate_bytes("usage.metered.api_call", None, &bytes)
                .expect_err("hostile depth");
            assert!(
                matches!(
                    e,
                    ValidationError::Decode(_) | ValidationError::TooLarge { .. }
                ),
                "{e}"
            );
        }
    }
    // Deep but parseable (below serde_json's limit) inside a valid envelope: validated, no crash.
    let mut deep = json!("leaf");
    for _ in 0..120 {
        deep = json!({ "d": deep });
    }
    let mut ev: Value = serde_json::from_str(include_str!(
        "../../../contracts/examples/UsageEvent/valid/spec-example.json"
    ))
    .unwrap();
    ev["metadata"] = deep;
    let (validated, _) = catalog()
        .validate_bytes(
            "usage.metered.model_inference",
            None,
            &serde_json::to_vec(&ev).unwrap(),
        )
        .expect("deep metadata inside a valid event is valid");
    assert_eq!(validated.subject.name, "usage.metered.model_inference");
    // A schema nested past the diff engine's depth limit is an error, not a crash.
    let mut schema = json!({"type": "string"});
    for _ in 0..500 {
        schema = json!({"type": "object", "properties": {"x": schema}});
    }
    let e = compare(
        &schema,
        &schema,
        &Options::new(Mode::Backward),
        &NoExternalSchemas,
    )
    .expect_err("a schema past the depth limit");
    assert!(e.to_string().contains("deep"), "{e}");
}

#[test]
fn huge_strings_and_oversized_payloads_are_refused_by_size() {
    let limit = catalog().settings().max_event_bytes;
    let mut ev = json!({"event_id": "550e8400-e29b-41d4-a716-446655440000"});
    ev["metadata"] = json!({"pad": "x".repeat(limit + 1)});
    let bytes = serde_json::to_vec(&ev).unwrap();
    let e = catalog()
        .validate_bytes("usage.metered.api_call", None, &bytes)
        .expect_err("oversized");
    assert!(
        matches!(e, ValidationError::TooLarge { size, limit: l } if size == bytes.len() && l == limit),
        "{e}"
    );
    assert!(e.to_string().contains(&bytes.len().to_string()), "{e}");
}

/// What a hostile input must end in.
enum Expect {
    /// A decode error whose message contains these words.
    Decode(&'static str),
    /// Well-formed JSON that is not an object: one `type` violation at the root.
    NotAnObject,
}

#[test]
fn bad_encodings_are_decode_errors_and_non_objects_are_invalid() {
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "invalid UTF-8",
            b"{\"event_id\": \"\xff\xfe\"}".to_vec(),
            Expect::Decode("invalid UTF-8 at byte 14"),
        ),
        (
            // A "wrong encoding" from a non-herald producer.
            "UTF-16LE with BOM",
            [
                &[0xFFu8, 0xFE][..],
                &"{\"a\":1}"
                    .encode_utf16()
                    .flat_map(|u| u.to_le_bytes())
                    .collect::<Vec<u8>>(),
            ]
            .concat(),
            Expect::Decode("invalid UTF-8 at byte 0"),
        ),
        (
            "UTF-8 BOM",
            [&[0xEFu8, 0xBB, 0xBF][..], b"{}"].concat(),
            Expect::Decode("byte order mark (BOM)"),
        ),
        (
            "overlong '/'",
            b"{\"a\":\"\xc0\xaf\"}".to_vec(),
            Expect::Decode("invalid UTF-8 at byte 6"),
        ),
        (
            // Valid JSON text, but not a valid string.
            "lone surrogate",
            br#"{"a":"\ud800"}"#.to_vec(),
            Expect::Decode("lone UTF-16 surrogate `\\ud800` at byte 6"),
        ),
        ("empty", Vec::new(), Expect::Decode("empty input")),
        (
            "whitespace",
            b"   \n\t ".to_vec(),
            Expect::Decode("empty input"),
        ),
        ("null", b"null".to_vec(), Expect::NotAnObject),
        ("array", b"[1,2,3]".to_vec(), Expect::NotAnObject),
    ];
    for (name, bytes, expect) in cases {
        let e = catalog()
            .validate_bytes("usage.metered.api_call", None, &bytes)
            .expect_err(name);
        match expect {
            Expect::Decode(words) => {
                assert!(
                    matches!(e, ValidationError::Decode(_)),
                    "{name}: expected a decode error, got {e:?}"
                );
                assert_eq!(e.reason(), "decode_error", "{name}: {e}");
                assert!(e.to_string().contains(words), "{name}: {e}");
            }
            Expect::NotAnObject => match &e {
                ValidationError::Invalid { violations, .. } => {
                    assert_eq!(violations.len(), 1, "{name}: {e}");
                    assert_eq!(violations[0].instance_path, "", "{name}");
                    assert_eq!(violations[0].keyword, "type", "{name}");
                }
                other => panic!("{name}: expected a schema violation, got {other:?}"),
            },
        }
    }
}
