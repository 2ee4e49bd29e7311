//! Confluent Schema Registry's own JSON Schema diff test data, read from
//! `$HERALD_PEERS_DIR/confluent` (default `../shared/peers` beside the checkout;
//! never copied into the repository).
//!
//! Where the data is absent (a clone of the project alone) each test prints one
//! `NOT RUN` line with the reason and returns; with `HERALD_REQUIRE_PEERS=1`
//! (set by `.ci/run`, which has the data) a missing folder fails instead.
//!
//! Under `--mode backward --policy strict` herald must agree with `compatible` on
//! every case, and under lenient with `compatible_lenient` where the case gives it.
//! Cases carrying `original_metadata`/`update_metadata` pass their reserved names
//! (`confluent:reserved`) to the comparison like any caller would.
//!
//! The suites run with [`RequiredRule::DeclaredOnly`], Confluent's rule for
//! `required` names missing from `properties`. herald's default (`AllNames`) is the
//! instance semantics and differs from Confluent on exactly those cases; the test
//! `the_default_required_rule_is_stricter_than_confluent` below pins which ones.

use herald_contracts::evolution::{
    compare_documents, Document, Mode, NoExternalSchemas, Options, Policy, RequiredRule,
};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

const FILES: &[&str] = &[
    "confluent-diff-schema-examples.json",
    "confluent-diff-schema-examples-2020-12.json",
    "confluent-diff-combined-schema-examples.json",
    "confluent-diff-combined-schema-examples-2020-12.json",
];

/// The peer data folder: `HERALD_PEERS_DIR` (relative to the repository root
/// when relative), else `../shared/peers` beside the checkout.
fn peers_root() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    match std::env::var_os("HERALD_PEERS_DIR") {
        Some(dir) if !dir.is_empty() => repo.join(dir),
        _ => repo.join("../shared/peers"),
    }
}

fn peers_dir() -> PathBuf {
    peers_root().join("confluent")
}

/// Whether this test can run. Without the data it says so on the terminal
/// (written to the process's stderr, past the harness's output capture, so it
/// shows in a passing run) unless CI demands the data, where it panics.
fn peers_present(test: &str) -> bool {
    let dir = peers_dir();
    if dir.is_dir() {
        return true;
    }
    let why = format!(
        "Confluent peer data not found at {} (set HERALD_PEERS_DIR to the folder holding confluent/)",
        dir.display()
    );
    if std::env::var_os("HERALD_REQUIRE_PEERS").is_some_and(|v| v == "1") {
        panic!("{why}; HERALD_REQUIRE_PEERS=1 requires it");
    }
    let _ = writeln!(
        std::io::stderr().lock(),
        "NOT RUN confluent_peers::{test}: {why}"
    );
    false
}

fn load(file: &str) -> Vec<Value> {
    let path = peers_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("Confluent peer file unreadable at {} ({e})", path.display()));
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    v.as_array()
        .cloned()
        .unwrap_or_else(|| panic!("{} is not an array", path.display()))
}

fn verdict(case: &Value, policy: Policy) -> Result<bool, String> {
    verdict_with(case, policy, RequiredRule::DeclaredOnly)
}

fn verdict_with(case: &Value, policy: Policy, rule: RequiredRule) -> Result<bool, String> {
    let mut old = Document::new(&case["original_schema"]);
    let mut new = Document::new(&case["update_schema"]);
    if let Some(m) = case.get("original_metadata") {
        old = old.with_confluent_metadata(m);
    }
    if let Some(m) = case.get("update_metadata") {
        new = new.with_confluent_metadata(m);
    }
    let opts = Options::new(Mode::Backward)
        .with_policy(policy)
        .with_required_rule(rule);
    compare_documents(&old, &new, &opts, &NoExternalSchemas)
        .map(|r| r.compatible)
        .map_err(|e| e.to_string())
}

fn run(file: &str) {
    let cases = load(file);
    // Pinned: a truncated or replaced peer file must fail, not shrink the suite.
    let expected = match file {
        "confluent-diff-schema-examples.json" => 104,
        "confluent-diff-schema-examples-2020-12.json" => 113,
        "confluent-diff-combined-schema-examples.json" => 28,
        "confluent-diff-combined-schema-examples-2020-12.json" => 18,
        other => panic!("unknown peer file {other}"),
    };
    assert_eq!(cases.len(), expected, "{file}: case count");
    let mut strict_agree = 0;
    let mut lenient_total = 0;
    let mut lenient_agree = 0;
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let desc = case["description"].as_str().unwrap_or("?");
        let expected = case["compatible"]
            .as_bool()
            .expect("compatible is a boolean");
        match verdict(case, Policy::Strict) {
            Ok(got) if got == expected => strict_agree += 1,
            Ok(got) => failures.push(format!(
                "#{i} {desc:?} strict: expected {expected}, got {got}"
            )),
            Err(e) => failures.push(format!("#{i} {desc:?} strict: error {e}")),
        }
        if let Some(expected) = case.get("compatible_lenient").and_then(Value::as_bool) {
            lenient_total += 1;
            match verdict(case, Policy::Lenient) {
                Ok(got) if got == expected => lenient_agree += 1,
                Ok(got) => failures.push(format!(
                    "#{i} {desc:?} lenient: expected {expected}, got {got}"
                )),
                Err(e) => failures.push(format!("#{i} {desc:?} lenient: error {e}")),
            }
        }
    }
    println!(
        "{file}: strict {strict_agree}/{} agree, lenient {lenient_agree}/{lenient_total} agree",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{file}: disagreements:\n{}",
        failures.join("\n")
    );
}

#[test]
fn draft07_examples() {
    if peers_present("draft07_examples") {
        run(FILES[0]);
    }
}

#[test]
fn draft2020_examples() {
    if peers_present("draft2020_examples") {
        run(FILES[1]);
    }
}

#[test]
fn combined_examples() {
    if peers_present("combined_examples") {
        run(FILES[2]);
    }
}

#[test]
fn combined_draft2020_examples() {
    if peers_present("combined_draft2020_examples") {
        run(FILES[3]);
    }
}

/// Under herald's default rule, the only Confluent cases whose strict verdict changes
/// are those where a `required` name missing from `properties` is added, and each
/// becomes incompatible (the sound answer: old events lack the name).
#[test]
fn the_default_required_rule_is_stricter_than_confluent() {
    if !peers_present("the_default_required_rule_is_stricter_than_confluent") {
        return;
    }
    let mut differing = Vec::new();
    for file in FILES {
        for (i, case) in load(file).iter().enumerate() {
            let confluent = verdict_with(case, Policy::Strict, RequiredRule::DeclaredOnly);
            let herald = verdict_with(case, Policy::Strict, RequiredRule::AllNames);
            if confluent != herald {
                assert_eq!(
                    (confluent.clone(), herald.clone()),
                    (Ok(true), Ok(false)),
                    "{file} #{i}: the default rule may only be stricter"
                );
                differing.push(format!("{file} #{i} {}", case["description"]));
            }
        }
    }
    assert_eq!(
        differing.len(),
        2,
        "cases where herald's default differs from Confluent: {differing:#?}"
    );
    assert!(differing
        .iter()
        .all(|d| d.contains("Detect required array to be changed")));
}
