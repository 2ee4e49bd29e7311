//! `herald validate`, `herald check` and `herald catalog` as a user runs them:
//! exit codes, messages, and every kind of bad input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use herald_test_server::testing::copy_dir;

fn herald() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_herald"));
    c.env_remove("HERALD_CONTRACTS").env("NO_COLOR", "1");
    c
}

fn run(args: &[&str]) -> Output {
    herald().args(args).output().unwrap()
}

fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = herald()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Write from a thread: herald may stop reading early (size limit).
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn contracts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts")
}

fn example(rel: &str) -> String {
    contracts().join("examples").join(rel).display().to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_spec_examples_validate_on_their_subjects() {
    for (subject, file) in [
        (
            "usage.metered.model_inference",
            "UsageEvent/valid/spec-example.json",
        ),
        (
            "orchestrator.step.completed",
            "OrchestratorStep/valid/spec-example.json",
        ),
        (
            "realtime.push.chat_message",
            "RealtimeMessage/valid/spec-example.json",
        ),
    ] {
        let out = run(&["validate", "--subject", subject, &example(file)]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("valid ("));
    }
}

#[test]
fn an_invalid_event_exits_1_naming_path_and_keyword() {
    let file = example("UsageEvent/valid/spec-example.json");
    let out = run(&["validate", "--subject", "usage.metered.api_call", &file]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("/event_type"), "{stdout}");
    assert!(stdout.contains("const"), "{stdout}");
}

#[test]
fn json_output_is_machine_readable() {
    let good = example("UsageEvent/valid/spec-example.json");
    let out = run(&[
        "--format",
        "json",
        "validate",
        "--subject",
        "usage.metered.api_call",
        &good,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["invalid"], 1);
    assert_eq!(
        v["results"][0]["violations"][0]["instance_path"],
        "/event_type"
    );
    assert_eq!(v["results"][0]["violations"][0]["keyword"], "const");
    assert_eq!(v["results"][0]["schema"], "UsageEvent@1.1.0");
}

#[test]
fn jsonl_reports_line_numbers() {
    let good = std::fs::read_to_string(example("UsageEvent/valid/spec-example.json")).unwrap();
    let good: serde_json::Value = serde_json::from_str(&good).unwrap();
    let mut bad = good.clone();
    bad["quantity"] = serde_json::json!(-1);
    let input = format!("{good}\n\n{bad}\n{{not json\n");
    let out = run_stdin(
        &[
            "validate",
            "--subject",
            "usage.metered.model_inference",
            "--jsonl",
            "-",
        ],
        input.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("<stdin>:1: valid"), "{stdout}");
    assert!(stdout.contains("<stdin>:3: invalid: /quantity"), "{stdout}");
    assert!(
        stdout.contains("<stdin>:4: invalid: not a JSON document"),
        "{stdout}"
    );
    assert!(stdout.contains("3 checked, 1 valid, 2 invalid"), "{stdout}");
}

#[test]
fn validate_by_schema_and_version() {
    let file = example("RealtimeMessage/valid/spec-example.json");
    let ok = run(&["validate", "--schema", "RealtimeMessage@1.0.0", &file]);
    assert_eq!(ok.status.code(), Some(0));
    let unknown = run(&["validate", "--schema", "RealtimeMessage@7.0.0", &file]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("unknown schema `RealtimeMessage@7.0.0`"));
}

#[test]
fn usage_and_lookup_errors_exit_2_with_one_line() {
    let file = example("UsageEvent/valid/spec-example.json");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["validate", "--subject", "usage.metered.gpu", &file],
            "unknown subject `usage.metered.gpu`",
        ),
        (
            vec![
                "validate",
                "--subject",
                "usage.metered.api_call",
                "/no/such/file.json",
            ],
            "cannot read /no/such/file.json",
        ),
        (
            vec!["validate", "--schema", "Bad Name", &file],
            "not a schema name",
        ),
        (
            vec!["--contracts", "/no/such/dir", "catalog"],
            "/no/such/dir",
        ),
        (vec!["frobnicate"], "frobnicate"),
    ];
    for (args, needle) in cases {
        let out = run(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn hostile_input_never_panics_or_hangs() {
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(50 * 1024 * 1024));
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "empty input"),
        (
            "malformed",
            b"{\"event_id\": ".to_vec(),
            "not a JSON document",
        ),
        ("invalid utf-8", b"{\"a\": \"\xc3\x28\"}".to_vec(), "UTF-8"),
        ("deep nesting", deep.into_bytes(), "recursion limit"),
        ("50 MB", big.into_bytes(), "over the 1048576-byte limit"),
        ("binary garbage", garbage, "not a JSON document"),
    ];
    for (name, input, needle) in cases {
        let out = run_stdin(
            &["validate", "--subject", "usage.metered.api_call", "-"],
            &input,
        );
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name}: {stdout}{}",
            text(&out.stderr)
        );
        assert!(stdout.contains(needle), "{name}: {stdout}");
        assert_eq!(stdout.lines().count(), 1, "{name}: one line: {stdout}");
    }
}

#[test]
fn the_size_limit_is_configurable() {
    let file = example("UsageEvent/valid/spec-example.json");
    let out = run(&[
        "validate",
        "--subject",
        "usage.metered.model_inference",
        "--max-bytes",
        "100",
        &file,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("over the 100-byte limit"));
}

#[test]
fn check_passes_on_the_shipped_contracts() {
    for args in [
        vec!["check"],
        vec!["--contracts", contracts().to_str().unwrap(), "check"],
    ] {
        let out = run(&args);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        assert!(stdout.contains("checks passed"), "{stdout}");
    }
    let out = run(&["--format", "json", "check"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["passed"], true);
    let names: Vec<&str> = v["report"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for want in [
        "schemas.metaschema",
        "schemas.ids",
        "catalog.subjects",
        "catalog.consumers",
        "examples",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
}

/// Copies the contracts to a temp dir, applies `edit`, and runs `herald check` on it.
fn check_broken(edit: impl FnOnce(&Path)) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&contracts(), dir.path());
    edit(dir.path());
    let out = run(&["--contracts", dir.path().to_str().unwrap(), "check"]);
    (out.status.code(), text(&out.stdout) + &text(&out.stderr))
}

fn edit_file(path: &Path, from: &str, to: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(s.contains(from), "{} lacks {from}", path.display());
    std::fs::write(path, s.replacen(from, to, 1)).unwrap();
}

#[test]
fn check_fails_for_each_broken_rule() {
    type Edit = Box<dyn FnOnce(&Path)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "$id off its path",
            Box::new(|d: &Path| {
                edit_file(
                    &d.join("schemas/AlertEvent/1.0.0.json"),
                    "AlertEvent/1.0.0.json",
                    "AlertEvent/9.0.0.json",
                )
            }),
            "must have",
        ),
        (
            "unresolvable $ref",
            Box::new(|d: &Path| {
                edit_file(
                    &d.join("schemas/AlertEvent/1.0.0.json"),
                    "#/$defs/uuid",
                    "#/$defs/nope",
                )
            }),
            "cannot compile",
        ),
        (
            "not a schema",
            Box::new(|d: &Path| {
                edit_file(
                    &d.join("schemas/Heartbeat/1.0.0.json"),
                    "\"type\": \"integer\", \"minimum\": 1",
                    "\"type\": \"integer\", \"minimum\": \"one\"",
                )
            }),
            "\"one\" is not of type",
        ),
        (
            "subject on missing schema",
            Box::new(|d: &Path| {
                edit_file(&d.join("catalog.toml"), "schema = \"AlertEvent\"\nmajor = 1\nidentity = \"alert_id\"\nconstraint = { properties = { alert_type = { const = \"service_down\" } } }", "schema = \"AlertEvent\"\nmajor = 2\nidentity = \"alert_id\"")
            }),
            "has no schema file",
        ),
        (
            "subject outside its topic",
            Box::new(|d: &Path| {
                edit_file(
                    &d.join("catalog.toml"),
                    "name = \"alerts.high_latency\"",
                    "name = \"alert.high_latency\"",
                )
            }),
            "does not match its topic",
        ),
        (
            "undeclared producer",
            Box::new(|d: &Path| {
                edit_file(
                    &d.join("catalog.toml"),
                    "producers = [\"orchestrator\"]",
                    "producers = [\"orchestrat0r\"]",
                )
            }),
            "producer orchestrat0r is not a declared service",
        ),
        (
            "consumer without entry",
            Box::new(|d: &Path| {
                edit_file(
                    &d.join("catalog.toml"),
                    "consumers = [\"usage-metering\", \"audit-log\"]",
                    "consumers = [\"usage-metering\", \"audit-log\", \"billing-service\"]",
                )
            }),
            "has no [[consumer]] entry",
        ),
        (
            "identity not required",
            Box::new(|d: &Path| {
                edit_file(
                    &d.join("catalog.toml"),
                    "identity = \"step_id\"",
                    "identity = \"step_type\"",
                )
            }),
            "identity field `step_type`",
        ),
        (
            "valid example invalid",
            Box::new(|d: &Path| {
                edit_file(
                    &d.join("examples/UsageEvent/valid/api-call.json"),
                    "\"quantity\": 1",
                    "\"quantity\": -1",
                )
            }),
            "invalid under UsageEvent@1.0.0",
        ),
        (
            "invalid example valid",
            Box::new(|d: &Path| {
                edit_file(
                    &d.join("examples/UsageEvent/invalid/negative-quantity.json"),
                    "\"quantity\": -5",
                    "\"quantity\": 5",
                )
            }),
            "expected to fail",
        ),
        (
            "invalid example fails for another reason",
            Box::new(|d: &Path| {
                edit_file(
                    &d.join("examples/UsageEvent/invalid/negative-quantity.json"),
                    "\"keyword\": \"minimum\"",
                    "\"keyword\": \"maximum\"",
                )
            }),
            "not with `maximum`",
        ),
        (
            "catalog not TOML",
            Box::new(|d: &Path| std::fs::write(d.join("catalog.toml"), "[catalog\nx=").unwrap()),
            "catalog.toml",
        ),
    ];
    for (name, edit, needle) in cases {
        let (code, out) = check_broken(edit);
        assert_eq!(code, Some(1), "{name}: {out}");
        assert!(
            out.contains(needle),
            "{name}: expected `{needle}` in:\n{out}"
        );
    }
}

#[test]
fn catalog_lists_every_subject() {
    let out = run(&["catalog"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    for s in [
        "ingest.document.processed",
        "ingest.document.failed",
        "orchestrator.step.started",
        "orchestrator.step.completed",
        "orchestrator.step.failed",
        "usage.metered.api_call",
        "usage.metered.model_inference",
        "realtime.push.chat_message",
        "realtime.push.notification",
        "alerts.service_down",
        "alerts.high_latency",
        "alerts.quota_exceeded",
    ] {
        assert!(stdout.contains(s), "{s} missing");
    }
    let out = run(&["--format", "json", "catalog"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["topics"].as_array().unwrap().len(), 6);
    let usage = v["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "usage.metered.api_call")
        .unwrap();
    assert_eq!(usage["schema"], "UsageEvent");
    assert_eq!(
        usage["consumers"],
        serde_json::json!(["billing-service--usage", "analytics-service--usage"])
    );
}

#[test]
fn validate_without_subject_or_schema_uses_the_events_own_schema() {
    // An event naming its schema validates against exactly that version.
    let with = example("UsageEvent/valid/with-schema-1.0.0.json");
    let out = run(&["validate", &with]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("valid (UsageEvent@1.0.0)"),
        "{}",
        text(&out.stdout)
    );

    // An event without `$schema` is refused, saying what to give instead.
    let without = br#"{"event_id": "550e8400-e29b-41d4-a716-446655440000"}"#;
    let out = run_stdin(&["validate", "-"], without);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains(
            "the event has no $schema: give --subject SUBJECT or --schema NAME[@VERSION]"
        ),
        "{}",
        text(&out.stdout)
    );

    // A `$schema` the contracts do not have is named.
    let unknown =
        br#"{"$schema": "https://contracts.platform.internal/schemas/UsageEvent/9.0.0.json"}"#;
    let out = run_stdin(&["validate", "-"], unknown);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("UsageEvent/9.0.0.json` is not a schema in these contracts"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn jsonl_on_empty_input_is_an_error() {
    for input in [&b""[..], b"\n\n  \n"] {
        let out = run_stdin(
            &[
                "validate",
                "--subject",
                "usage.metered.api_call",
                "--jsonl",
                "-",
            ],
            input,
        );
        assert_eq!(out.status.code(), Some(1), "{:?}", text(&out.stdout));
        assert!(
            text(&out.stdout).contains("empty input: no event to validate"),
            "{}",
            text(&out.stdout)
        );
    }
}

#[test]
fn bom_surrogates_and_sizes_are_named_exactly() {
    let args = ["validate", "--subject", "usage.metered.api_call", "-"];
    let out = run_stdin(&args, b"\xEF\xBB\xBF{}");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("byte order mark (BOM)"),
        "{}",
        text(&out.stdout)
    );
    let out = run_stdin(&args, br#"{"event_id": "\ud800"}"#);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains(r"lone UTF-16 surrogate `\ud800`"),
        "{}",
        text(&out.stdout)
    );
    // 2,000,000 bytes: reported as such, not as the limit plus one.
    let big = vec![b' '; 2_000_000];
    let out = run_stdin(&args, &big);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("event is 2000000 bytes, over the 1048576-byte limit"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn violation_messages_name_the_rule_and_stay_readable() {
    // A subject constraint's violation names the constraint, not the schema.
    let file = example("UsageEvent/valid/spec-example.json");
    let out = run(&["validate", "--subject", "usage.metered.api_call", &file]);
    assert!(
        text(&out.stdout).contains(
            r#"/event_type: the constraint of subject usage.metered.api_call: "api_call" was expected (const"#
        ),
        "{}",
        text(&out.stdout)
    );

    // An enum violation lists the allowed values.
    let bogus = std::fs::read_to_string(&file)
        .unwrap()
        .replace("\"model_inference\"", "\"bogus\"");
    let out = run_stdin(
        &["validate", "--schema", "UsageEvent", "-"],
        bogus.as_bytes(),
    );
    assert!(
        text(&out.stdout).contains(
            r#""bogus" is not one of the allowed values: "api_call", "model_inference", "embedding", "document_processing", "storage""#
        ),
        "{}",
        text(&out.stdout)
    );

    // A constraint holding a huge regex gets a one-line summary.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("contracts");
    std::fs::create_dir_all(&dir).unwrap();
    copy_dir(&contracts(), &dir);
    let alternatives: Vec<String> = (0..20_000).map(|i| format!("x{i:05}")).collect();
    let pattern = format!("^({})$", alternatives.join("|"));
    let catalog = std::fs::read_to_string(dir.join("catalog.toml"))
        .unwrap()
        .replace(
            r#"constraint = { properties = { event_type = { const = "api_call" } } }"#,
            &format!(
                r#"constraint = {{ properties = {{ event_type = {{ pattern = "{pattern}" }} }} }}"#
            ),
        );
    std::fs::write(dir.join("catalog.toml"), catalog).unwrap();
    let api_call = std::fs::read_to_string(&file)
        .unwrap()
        .replace("\"model_inference\"", "\"api_call\"");
    let out = run_stdin(
        &[
            "--contracts",
            dir.to_str().unwrap(),
            "validate",
            "--subject",
            "usage.metered.api_call",
            "-",
        ],
        api_call.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.len() < 600,
        "{} bytes: {}",
        stdout.len(),
        &stdout[..600]
    );
    assert!(stdout.contains("characters in all)"), "{stdout}");
    assert!(
        stdout.contains("the constraint of subject usage.metered.api_call"),
        "{stdout}"
    );
}
