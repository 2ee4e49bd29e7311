//! Validators compile on first use: loading compiles nothing, validating compiles
//! what the event needs, and `herald check` compiles (so judges) every one.

use herald_contracts::{check, Catalog, ContractFiles, ValidationError};
use serde_json::Value;

const ALERT_1_0_0: &str = "https://contracts.platform.internal/schemas/AlertEvent/1.0.0.json";

fn example(files: &ContractFiles, name: &str, file: &str) -> Value {
    serde_json::from_slice(&files.files[&format!("examples/{name}/valid/{file}")]).unwrap()
}

/// The shipped contracts with `from` replaced by `to` in one file.
fn edited(path: &str, from: &str, to: &str) -> ContractFiles {
    let mut files = ContractFiles::embedded();
    let text = String::from_utf8(files.files[path].clone()).unwrap();
    assert!(text.contains(from), "{path} lacks {from}");
    files
        .files
        .insert(path.to_string(), text.replacen(from, to, 1).into_bytes());
    files
}

fn load_failures(catalog: &Catalog) -> Vec<String> {
    let report = check::run_on(catalog);
    let load = report
        .checks
        .iter()
        .find(|c| c.name == "contracts.load")
        .expect("a contracts.load check");
    load.failures.clone()
}

#[test]
fn loading_compiles_nothing_and_validating_compiles_only_what_the_event_needs() {
    let files = ContractFiles::embedded();
    let event = example(&files, "UsageEvent", "api-call.json");
    let catalog = Catalog::from_files(files).unwrap();
    assert_eq!(catalog.compiled_validators(), 0);

    let v = catalog
        .validate("usage.metered.api_call", None, &event)
        .unwrap();
    assert_eq!(v.version.to_string(), "1.1.0");
    // UsageEvent@1.1.0 and the subject's constraint; nothing else.
    assert_eq!(catalog.compiled_validators(), 2);
    catalog
        .validate("usage.metered.api_call", None, &event)
        .unwrap();
    assert_eq!(catalog.compiled_validators(), 2);

    // `check` compiles all: 8 schema versions and 16 subject constraints.
    assert_eq!(catalog.compile_all(), Vec::<String>::new());
    assert_eq!(catalog.compiled_validators(), 8 + 16);
}

#[test]
fn a_schema_that_does_not_compile_fails_check_and_its_subjects_but_not_the_others() {
    let files = edited(
        "schemas/AlertEvent/1.0.0.json",
        "#/$defs/uuid",
        "#/$defs/nope",
    );
    let usage = example(&files, "UsageEvent", "api-call.json");
    let alert = example(&files, "AlertEvent", "service-down-resolved.json");
    let catalog = Catalog::from_files(files).expect("loading compiles nothing, so it loads");

    let v = catalog
        .validate("usage.metered.api_call", None, &usage)
        .expect("another subject is unaffected");
    assert_eq!(v.subject.schema, "UsageEvent");

    let err = catalog
        .validate("alerts.service_down", None, &alert)
        .unwrap_err();
    assert_eq!(err.reason(), "schema_invalid");
    let ValidationError::Invalid {
        schema_id,
        violations,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(schema_id, ALERT_1_0_0);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].instance_path, "");
    assert_eq!(violations[0].keyword, "$schema");
    let prefix = format!("cannot compile {ALERT_1_0_0}: ");
    assert!(
        violations[0].message.starts_with(&prefix)
            && violations[0].message.contains("nope")
            && violations[0]
                .message
                .ends_with("(the contracts are broken; `herald check` reports it)"),
        "{}",
        violations[0].message
    );

    let failures = load_failures(&catalog);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].starts_with(&prefix) && failures[0].contains("nope"),
        "{failures:?}"
    );
}

#[test]
fn a_constraint_that_does_not_compile_fails_check_and_its_subject_only() {
    let files = edited(
        "catalog.toml",
        "constraint = { properties = { event_type = { const = \"api_call\" } } }",
        "constraint = { properties = { event_type = { pattern = \"(\" } } }",
    );
    let event = example(&files, "UsageEvent", "api-call.json");
    let inference = example(&files, "UsageEvent", "spec-example.json");
    let catalog = Catalog::from_files(files).unwrap();

    catalog
        .validate("usage.metered.model_inference", None, &inference)
        .expect("the same schema on another subject is unaffected");
    let err = catalog
        .validate("usage.metered.api_call", None, &event)
        .unwrap_err();
    let v = err.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message
            .starts_with("cannot compile the constraint of subject usage.metered.api_call: "),
        "{}",
        v[0].message
    );

    let failures = load_failures(&catalog);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0]
            .starts_with("cannot compile the constraint of subject usage.metered.api_call: "),
        "{failures:?}"
    );
}

#[test]
fn validators_are_shared_across_threads_and_compiled_once() {
    let files = ContractFiles::embedded();
    let event = example(&files, "UsageEvent", "api-call.json");
    let catalog = std::sync::Arc::new(Catalog::from_files(files).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (catalog, event) = (catalog.clone(), event.clone());
            std::thread::spawn(move || {
                catalog
                    .validate("usage.metered.api_call", None, &event)
                    .map(|v| v.version.to_string())
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), Ok("1.1.0".to_string()));
    }
    assert_eq!(catalog.compiled_validators(), 2);
}

#[test]
fn a_ref_the_reference_scan_cannot_follow_still_resolves_against_every_schema() {
    // Under a nested `$id`, `1.0.0.json` means Heartbeat's file, not UsageEvent's own:
    // the scan that picks a compile's schemas misses it (nothing else in UsageEvent
    // reaches Heartbeat), and the compile falls back to every schema, as it did
    // before compiles were given only what they reach.
    let files = edited(
        "schemas/UsageEvent/1.1.0.json",
        "\"event_id\": {\n      \"$ref\": \"../common/1.0.0.json#/$defs/uuid\",",
        "\"event_id\": {\n      \"$id\": \"https://contracts.platform.internal/schemas/Heartbeat/\",\n      \"$ref\": \"1.0.0.json#/properties/heartbeat_id\",",
    );
    let mut event = example(&files, "UsageEvent", "api-call.json");
    let catalog = Catalog::from_files(files).unwrap();
    catalog
        .validate("usage.metered.api_call", None, &event)
        .unwrap();
    event["event_id"] = "not-a-uuid".into();
    let err = catalog
        .validate("usage.metered.api_call", None, &event)
        .unwrap_err();
    let v = err.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(
        (v[0].instance_path.as_str(), v[0].keyword.as_str()),
        ("/event_id", "format")
    );
    assert_eq!(catalog.compile_all(), Vec::<String>::new());
}

#[test]
fn loading_still_checks_every_schema_file_it_does_not_keep_parsed() {
    let path = "schemas/Heartbeat/1.0.0.json";
    let id = "https://contracts.platform.internal/schemas/Heartbeat/1.0.0.json";
    let load = |text: &str| {
        let mut files = ContractFiles::embedded();
        files
            .files
            .insert(path.to_string(), text.as_bytes().to_vec());
        Catalog::from_files(files)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let wrong_id = |found: &str| {
        Err(format!(
            "<embedded>/{path}: $id is `{found}` but a schema at this path must have `{id}`"
        ))
    };
    assert_eq!(load("[1, 2]"), wrong_id(""));
    assert_eq!(load("true"), wrong_id(""));
    assert_eq!(load(r#"{"$id": 5, "type": "object"}"#), wrong_id(""));
    assert_eq!(
        load(r#"{"$id": "elsewhere", "properties": {"$id": {"type": "string"}}}"#),
        wrong_id("elsewhere")
    );
    assert_eq!(
        load(&format!(r#"{{"$id": "{id}", "type": "object"}} x"#)),
        Err(format!(
            "<embedded>/{path}: not JSON: trailing characters at line 1 column {}",
            id.len() + 31
        ))
    );
    assert_eq!(
        load(&format!(r#"{{"$id": "{id}", "type": "object"}}"#)),
        Ok(())
    );
}
