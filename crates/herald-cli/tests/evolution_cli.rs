//! `herald diff`, `herald lock`, `herald changelog` and the evolution checks of
//! `herald check` (semver gate, lock, consumer contracts, `--base`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use herald_test_server::testing::copy_dir;
use serde_json::{json, Value};

fn herald(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .env_remove("HERALD_CONTRACTS")
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn contracts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts")
}

/// A scratch copy of the contracts, as `<tmp>/contracts`.
fn scratch() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("contracts");
    // The shared copy needs its destination to exist.
    std::fs::create_dir_all(&dir).unwrap();
    copy_dir(&contracts(), &dir);
    (tmp, dir)
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn write_json(p: &Path, v: &Value) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// Writes UsageEvent at `version`, derived from 1.1.0 by `edit`.
fn new_usage_version(dir: &Path, version: &str, edit: impl FnOnce(&mut Value)) {
    let mut s = read_json(&dir.join("schemas/UsageEvent/1.1.0.json"));
    s["$id"] = json!(format!(
        "https://contracts.platform.internal/schemas/UsageEvent/{version}.json"
    ));
    edit(&mut s);
    write_json(&dir.join(format!("schemas/UsageEvent/{version}.json")), &s);
}

#[test]
fn diff_of_the_real_versions_is_compatible_and_minor() {
    let out = herald(&[
        "--format",
        "json",
        "diff",
        "UsageEvent@1.0.0",
        "UsageEvent@1.1.0",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["compatible"], true);
    assert_eq!(v["needed_bump"], "minor");
    assert_eq!(v["mode"], "backward-transitive");
    let kinds: Vec<&str> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"property.added"), "{kinds:?}");
}

#[test]
fn diff_modes_and_policies_decide_the_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let old = tmp.path().join("old.json");
    let new = tmp.path().join("new.json");
    write_json(
        &old,
        &json!({"type": "object", "properties": {"a": {"type": "string"}}}),
    );
    // Adds an optional property to an open model.
    write_json(
        &new,
        &json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}),
    );
    let (o, n) = (old.to_str().unwrap(), new.to_str().unwrap());
    let cases = [
        (vec!["--mode", "seed"], 0),
        (vec!["--mode", "backward", "--policy", "lenient"], 0),
        (vec!["--mode", "backward", "--policy", "strict"], 1),
        (vec!["--mode", "forward", "--policy", "strict"], 0),
        (vec!["--mode", "full", "--policy", "strict"], 1),
    ];
    for (flags, code) in cases {
        let mut args = vec!["diff", o, n];
        args.extend(flags.iter());
        let out = herald(&args);
        assert_eq!(out.status.code(), Some(code), "{flags:?}: {}", text(&out));
    }
    // Removing the property: breaking in seed (the spec's "removing fields").
    let out = herald(&["diff", n, o, "--mode", "seed"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("property.removed"));
    // A narrowed type is breaking backward, compatible forward.
    write_json(
        &new,
        &json!({"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}}}),
    );
    assert_eq!(
        herald(&["diff", o, n, "--mode", "backward"]).status.code(),
        Some(1)
    );
    assert_eq!(
        herald(&["diff", o, n, "--mode", "forward"]).status.code(),
        Some(0)
    );
    // Errors are exit 2.
    for bad in [
        vec!["diff", o, "/no/such.json"],
        vec!["diff", o, n, "--mode", "sideways"],
        vec!["diff", "Nope@1.0.0", n],
    ] {
        let out = herald(&bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out));
    }
}

#[test]
fn markdown_diff_names_the_consumers_of_a_breaking_change() {
    let (_tmp, dir) = scratch();
    let next = dir.join("next.json");
    let mut s = read_json(&dir.join("schemas/UsageEvent/1.1.0.json"));
    s["properties"]["quantity"] = json!({"type": "string"});
    write_json(&next, &s);
    let out = herald(&[
        "--format",
        "markdown",
        "diff",
        "UsageEvent@1.1.0",
        next.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let md = text(&out);
    assert!(md.contains("| Severity |"), "{md}");
    assert!(md.contains("type.changed"), "{md}");
    assert!(
        md.contains("billing-service--usage") && md.contains("analytics-service--usage"),
        "{md}"
    );
}

#[test]
fn the_semver_gate_demands_the_bump_a_change_needs() {
    let (_tmp, dir) = scratch();
    let d = dir.to_str().unwrap();
    // Narrowing a field's type under a minor bump: refused, naming the change and the version needed.
    new_usage_version(&dir, "1.2.0", |s| {
        s["properties"]["quantity"] = json!({"type": "integer", "minimum": 0});
    });
    assert_eq!(herald(&["--contracts", d, "lock"]).status.code(), Some(0));
    let out = herald(&["--contracts", d, "check"]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(
        t.contains("UsageEvent@1.2.0: version 1.2.0 declares a minor bump over 1.1.0"),
        "{t}"
    );
    assert!(t.contains("at least 2.0.0"), "{t}");

    // An annotation-only change as a patch is fine; as nothing it is not.
    let (_tmp2, dir2) = scratch();
    let d2 = dir2.to_str().unwrap();
    new_usage_version(&dir2, "1.1.1", |s| {
        s["description"] = json!("Usage, better described.")
    });
    herald(&["--contracts", d2, "lock"]);
    let out = herald(&["--contracts", d2, "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn transitive_mode_checks_every_earlier_version() {
    let (_tmp, dir) = scratch();
    let d = dir.to_str().unwrap();
    // 1.2.0 makes `region` (added in 1.1.0) an integer: against 1.1.0 breaking, so the
    // bump check fails; against 1.0.0 (no region) the transitive check also runs.
    new_usage_version(&dir, "1.2.0", |s| {
        s["properties"]["region"] = json!({"type": "integer"});
    });
    herald(&["--contracts", d, "lock"]);
    let out = herald(&["--contracts", d, "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("type.changed") || text(&out).contains("type."),
        "{}",
        text(&out)
    );
}

#[test]
fn released_versions_are_immutable() {
    let (_tmp, dir) = scratch();
    let d = dir.to_str().unwrap();
    let path = dir.join("schemas/AlertEvent/1.0.0.json");
    let mut s = read_json(&path);
    s["properties"]["summary"]["maxLength"] = json!(100);
    write_json(&path, &s);
    let out = herald(&["--contracts", d, "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("AlertEvent@1.0.0 was edited after release"),
        "{}",
        text(&out)
    );
    // `herald lock` refuses to paper over it, and writes nothing.
    let before = std::fs::read_to_string(dir.join("schemas.lock")).unwrap();
    let out = herald(&["--contracts", d, "lock"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("refused: AlertEvent@1.0.0 was edited"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("schemas.lock")).unwrap(),
        before
    );
    // Reformatting is not an edit: the hash ignores whitespace and key order.
    let (_tmp2, dir2) = scratch();
    let p2 = dir2.join("schemas/AlertEvent/1.0.0.json");
    let v = read_json(&p2);
    std::fs::write(&p2, serde_json::to_string(&v).unwrap()).unwrap();
    assert_eq!(
        herald(&["--contracts", dir2.to_str().unwrap(), "check"])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn new_versions_must_be_locked() {
    let (_tmp, dir) = scratch();
    let d = dir.to_str().unwrap();
    new_usage_version(&dir, "1.1.1", |s| {
        s["title"] = json!("UsageEvent (billing)")
    });
    let out = herald(&["--contracts", d, "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("UsageEvent@1.1.1 is not in schemas.lock: run `herald lock`"));
    assert_eq!(
        herald(&["--contracts", d, "lock", "--check"]).status.code(),
        Some(1)
    );
    let out = herald(&["--contracts", d, "lock"]);
    assert!(text(&out).contains("recorded: UsageEvent@1.1.1"));
    assert_eq!(herald(&["--contracts", d, "check"]).status.code(), Some(0));
    assert_eq!(
        herald(&["--contracts", d, "lock", "--check"]).status.code(),
        Some(0)
    );
}

#[test]
fn consumer_contracts_name_producer_consumer_and_field() {
    // A new version that drops `cost` from required: billing depends on /cost/amount.
    let (_tmp, dir) = scratch();
    let d = dir.to_str().unwrap();
    new_usage_version(&dir, "2.0.0", |s| {
        let req: Vec<Value> = s["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| *r != "cost")
            .cloned()
            .collect();
        s["required"] = json!(req);
    });
    // The producers move to major 2 on the usage subjects.
    let cat = dir.join("catalog.toml");
    let text_ = std::fs::read_to_string(&cat).unwrap();
    std::fs::write(
        &cat,
        text_.replace(
            "schema = \"UsageEvent\"\nmajor = 1",
            "schema = \"UsageEvent\"\nmajor = 2",
        ),
    )
    .unwrap();
    herald(&["--contracts", d, "lock"]);
    let out = herald(&["--contracts", d, "check"]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(t.contains("billing-service--usage reads UsageEvent@1 but producers of usage.metered.api_call moved to major 2"), "{t}");

    // Same major, field made optional: named as such.
    let (_tmp2, dir2) = scratch();
    let d2 = dir2.to_str().unwrap();
    new_usage_version(&dir2, "1.2.0", |s| {
        let req: Vec<Value> = s["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| *r != "quantity")
            .cloned()
            .collect();
        s["required"] = json!(req);
    });
    herald(&["--contracts", d2, "lock"]);
    let t = text(&herald(&["--contracts", d2, "check"]));
    assert!(t.contains("billing-service--usage depends on `/quantity` of UsageEvent, but in UsageEvent@1.2.0 it was made optional"), "{t}");
    assert!(
        t.contains("analytics-service--usage depends on `/quantity`"),
        "{t}"
    );
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_base_is_the_pull_request_gate() {
    let (tmp, dir) = scratch();
    git(tmp.path(), &["init", "-q"]);
    git(tmp.path(), &["add", "-A"]);
    git(tmp.path(), &["commit", "-qm", "base"]);
    let d = dir.to_str().unwrap();

    // No change: passes, with the base check reported.
    let out = herald(&["--contracts", d, "check", "--base", "HEAD"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("base.evolution"));

    // Editing a released version in the working tree fails against the base, even if re-locked.
    let path = dir.join("schemas/RealtimeMessage/1.0.0.json");
    let mut s = read_json(&path);
    s["required"] = json!(["message_id"]);
    write_json(&path, &s);
    std::fs::remove_file(dir.join("schemas.lock")).unwrap();
    herald(&["--contracts", d, "lock"]);
    let out = herald(&["--contracts", d, "check", "--base", "HEAD"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("RealtimeMessage@1.0.0 was edited"),
        "{}",
        text(&out)
    );
    git(tmp.path(), &["checkout", "-q", "--", "."]);

    // A breaking version with a minor bump fails; unknown refs are exit 2.
    new_usage_version(&dir, "1.2.0", |s| {
        s["properties"]["quantity"] = json!({"type": "string"})
    });
    herald(&["--contracts", d, "lock"]);
    let out = herald(&["--contracts", d, "check", "--base", "HEAD"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("UsageEvent@1.2.0: version 1.2.0 declares a minor bump"),
        "{}",
        text(&out)
    );
    assert_eq!(
        herald(&["--contracts", d, "check", "--base", "no-such-ref"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn changelog_is_derived_and_marks_breaking_changes() {
    let out = herald(&["changelog", "UsageEvent"]);
    assert_eq!(out.status.code(), Some(0));
    let t = text(&out);
    assert!(
        t.contains("## UsageEvent") && t.contains("### 1.1.0") && t.contains("### 1.0.0"),
        "{t}"
    );
    assert!(
        t.contains("`property.added` at `/properties/region`"),
        "{t}"
    );
    assert!(!t.contains("## AlertEvent"));

    let (_tmp, dir) = scratch();
    new_usage_version(&dir, "2.0.0", |s| {
        s["properties"]["quantity"] = json!({"type": "string"});
    });
    let t = text(&herald(&[
        "--contracts",
        dir.to_str().unwrap(),
        "changelog",
        "UsageEvent",
    ]));
    let two = t.find("### 2.0.0").unwrap();
    assert!(t[two..].contains("**BREAKING** `type.changed`"), "{t}");
    assert_eq!(herald(&["changelog", "Nope"]).status.code(), Some(2));
}

#[test]
fn reserved_names_never_come_back() {
    let (_tmp, dir) = scratch();
    let d = dir.to_str().unwrap();
    // `price` is reserved for UsageEvent in the catalog.
    new_usage_version(&dir, "1.2.0", |s| {
        s["properties"]["price"] = json!({"type": "number"});
    });
    herald(&["--contracts", d, "lock"]);
    let out = herald(&["--contracts", d, "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("reserved.conflict"), "{}", text(&out));
    let next = dir.join("schemas/UsageEvent/1.2.0.json");
    let out = herald(&[
        "--contracts",
        d,
        "diff",
        "UsageEvent@1.1.0",
        next.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("property `price` uses a reserved name"),
        "{}",
        text(&out)
    );
}

fn check_json(d: &str) -> Value {
    let out = herald(&["--contracts", d, "--format", "json", "check"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

fn failures_of(report: &Value, check: &str) -> Vec<String> {
    report["report"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == check)
        .unwrap_or_else(|| panic!("no {check} in {report}"))["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn examples_are_scoped_to_the_major_they_were_written_for() {
    let (_tmp, dir) = scratch();
    let d = dir.to_str().unwrap();
    // A new major where `quantity` is a string: the 1.x examples no longer fit it.
    new_usage_version(&dir, "2.0.0", |s| {
        s["properties"]["quantity"] = json!({"type": "string"})
    });
    let failures = failures_of(&check_json(d), "examples");
    let unscoped: Vec<&String> = failures
        .iter()
        .filter(|f| f.contains("examples/UsageEvent/"))
        .collect();
    assert!(!unscoped.is_empty(), "{failures:#?}");
    for f in &unscoped {
        assert!(
            f.contains(r#"scope it with "versions": "^1""#),
            "the failure must say how to scope the example: {f}"
        );
    }

    // Scope every UsageEvent example to major 1: the examples check passes again.
    for kind in ["valid", "invalid"] {
        let folder = dir.join("examples/UsageEvent").join(kind);
        for e in std::fs::read_dir(&folder).unwrap() {
            let path = e.unwrap().path();
            let v = read_json(&path);
            let scoped = if kind == "valid" {
                json!({"versions": "^1", "event": v})
            } else {
                let mut v = v;
                v["versions"] = json!("^1");
                v
            };
            write_json(&path, &scoped);
        }
    }
    let failures = failures_of(&check_json(d), "examples");
    assert!(failures.is_empty(), "{failures:#?}");

    // A scope that matches nothing, or is malformed, is reported.
    let path = dir.join("examples/UsageEvent/valid/api-call.json");
    let mut v = read_json(&path);
    v["versions"] = json!("^7");
    write_json(&path, &v);
    let failures = failures_of(&check_json(d), "examples");
    assert!(
        failures
            .iter()
            .any(|f| f.contains("api-call.json: its `versions` match no version of the schema")),
        "{failures:#?}"
    );
    v["versions"] = json!("one");
    write_json(&path, &v);
    let failures = failures_of(&check_json(d), "examples");
    assert!(
        failures
            .iter()
            .any(|f| f.contains("`versions: one`: expected ^MAJOR, MAJOR.MINOR.PATCH or *")),
        "{failures:#?}"
    );
}
