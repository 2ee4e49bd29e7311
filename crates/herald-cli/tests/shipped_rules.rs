//! The shipped catalog follows the spec's rules: for every schema, a minor version
//! that changes required fields, removes a field, changes a field's type or changes
//! enum values fails `herald check` at the semver check itself, whether or not a
//! consumer declares the field.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn contracts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts")
}

/// The newest version file of each schema (not `common`), as (name, version, JSON).
fn latest_versions() -> Vec<(String, (u64, u64, u64), Value)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(contracts().join("schemas")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "common" {
            continue;
        }
        let mut versions: Vec<(u64, u64, u64)> = std::fs::read_dir(e.path())
            .unwrap()
            .filter_map(|f| {
                let f = f.unwrap().file_name().to_string_lossy().into_owned();
                let v: Vec<u64> = f
                    .strip_suffix(".json")?
                    .split('.')
                    .map(|p| p.parse().ok())
                    .collect::<Option<_>>()?;
                Some((v[0], v[1], v[2]))
            })
            .collect();
        versions.sort();
        let v = *versions.last().unwrap();
        let path = e.path().join(format!("{}.{}.{}.json", v.0, v.1, v.2));
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        out.push((name, v, doc));
    }
    assert!(
        out.len() >= 6,
        "expected every shipped schema, found {}",
        out.len()
    );
    out
}

/// Writes `doc` as the next minor of `name` into a copy of the contracts and runs
/// `herald check`; returns the semver check's failures.
fn semver_failures(name: &str, v: (u64, u64, u64), mut doc: Value) -> (Option<i32>, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("contracts");
    copy_dir(&contracts(), &dir);
    let next = format!("{}.{}.0", v.0, v.1 + 1);
    doc["$id"] = json!(format!(
        "https://contracts.platform.internal/schemas/{name}/{next}.json"
    ));
    std::fs::write(
        dir.join(format!("schemas/{name}/{next}.json")),
        serde_json::to_string_pretty(&doc).unwrap(),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .env_remove("HERALD_CONTRACTS")
        .current_dir(tmp.path())
        .args(["--format", "json", "check"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let semver = report["report"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "versions.semver")
        .unwrap_or_else(|| panic!("no versions.semver check in {report}"))
        .clone();
    let failures = semver["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    (out.status.code(), failures)
}

#[track_caller]
fn assert_semver_fails(name: &str, v: (u64, u64, u64), doc: Value, what: &str) {
    let (code, failures) = semver_failures(name, v, doc);
    assert_eq!(code, Some(1), "{name}: {what}: herald check must fail");
    let next = format!("{name}@{}.{}.0", v.0, v.1 + 1);
    assert!(
        failures
            .iter()
            .any(|f| f.contains(&next) && f.contains("declares a minor bump")),
        "{name}: {what} in a minor must fail the semver check: {failures:#?}"
    );
}

#[test]
fn the_spec_list_fails_the_semver_check_for_every_schema() {
    let mut ran = [0usize; 5];
    for (name, v, doc) in latest_versions() {
        let required: Vec<String> = doc["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        let props = doc["properties"].as_object().unwrap().clone();

        // 1. remove a required field
        let field = required.last().unwrap().clone();
        let mut d = doc.clone();
        d["properties"].as_object_mut().unwrap().remove(&field);
        d["required"] = json!(required.iter().filter(|r| **r != field).collect::<Vec<_>>());
        assert_semver_fails(&name, v, d, &format!("removing required `{field}`"));
        ran[0] += 1;

        // 2. make it optional (changing required fields)
        let mut d = doc.clone();
        d["required"] = json!(required.iter().filter(|r| **r != field).collect::<Vec<_>>());
        assert_semver_fails(&name, v, d, &format!("making `{field}` optional"));
        ran[1] += 1;

        // 3. remove an optional field
        if let Some(opt) = props
            .keys()
            .find(|k| !required.contains(k) && k.as_str() != "$schema")
        {
            let mut d = doc.clone();
            d["properties"].as_object_mut().unwrap().remove(opt);
            assert_semver_fails(&name, v, d, &format!("removing optional `{opt}`"));
            ran[2] += 1;
        }

        // 4. change a field's type
        if let Some((k, s)) = props.iter().find(|(_, s)| s["type"].is_string()) {
            let new_type = if s["type"] == "string" {
                "integer"
            } else {
                "string"
            };
            let mut d = doc.clone();
            d["properties"][k] = json!({"type": new_type});
            assert_semver_fails(&name, v, d, &format!("changing the type of `{k}`"));
            ran[3] += 1;
        }

        // 5. change enum values
        if let Some((k, s)) = props
            .iter()
            .find(|(_, s)| s["enum"].as_array().is_some_and(|e| e.len() > 1))
        {
            let mut values = s["enum"].as_array().unwrap().clone();
            values.pop();
            let mut d = doc.clone();
            d["properties"][k]["enum"] = json!(values);
            assert_semver_fails(&name, v, d, &format!("removing an enum value of `{k}`"));
            ran[4] += 1;
        }
    }
    assert!(
        ran.iter().all(|n| *n >= 3),
        "each kind of change must have run on several schemas: {ran:?}"
    );
}
