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
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

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
        let parent = format!("00-{trace}-0123456789abcdef-{flags}");
        let child = headers::child_traceparent(&parent);
        prop_assert_eq!(child.len(), 55, "{}", child);
        if let Some(t) = headers::trace_id(&child) {
            prop_assert!(t.chars().all(|c| c.is_ascii_hexdigit()));
        }
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
    let _ = catalog().validate_bytes(
        "usage.metered.model_inference",
        None,
        &serde_json::to_vec(&ev).unwrap(),
    );
    // A schema nested past the diff engine's depth limit is an error, not a crash.
    let mut schema = json!({"type": "string"});
    for _ in 0..500 {
        schema = json!({"type": "object", "properties": {"x": schema}});
    }
    let r = compare(
        &schema,
        &schema,
        &Options::new(Mode::Backward),
        &NoExternalSchemas,
    );
    if let Err(e) = r {
        assert!(!e.to_string().is_empty());
    }
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

#[test]
fn invalid_utf8_and_wrong_encodings_are_decode_errors() {
    let cases: Vec<Vec<u8>> = vec![
        b"{\"event_id\": \"\xff\xfe\"}".to_vec(),
        // UTF-16LE with BOM: a "wrong encoding" from a non-herald producer.
        [
            &[0xFFu8, 0xFE][..],
            &"{\"a\":1}"
                .encode_utf16()
                .flat_map(|u| u.to_le_bytes())
                .collect::<Vec<u8>>(),
        ]
        .concat(),
        // UTF-8 BOM.
        [&[0xEFu8, 0xBB, 0xBF][..], b"{}"].concat(),
        // Overlong encoding of '/'.
        b"{\"a\":\"\xc0\xaf\"}".to_vec(),
        // Lone surrogate escape is valid JSON text but not a valid string.
        br#"{"a":"\ud800"}"#.to_vec(),
        Vec::new(),
        b"   \n\t ".to_vec(),
        b"null".to_vec(),
        b"[1,2,3]".to_vec(),
    ];
    for bytes in cases {
        let e = catalog()
            .validate_bytes("usage.metered.api_call", None, &bytes)
            .expect_err("hostile encoding");
        assert!(!e.to_string().is_empty());
        if bytes.first() == Some(&0xFF) || bytes.windows(2).any(|w| w == [0xc0, 0xaf]) {
            assert_eq!(e.reason(), "decode_error", "{e}");
            assert!(e.to_string().contains("UTF-8"), "{e}");
        }
    }
}
