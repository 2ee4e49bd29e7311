//! `herald streams` / `herald publish` against a real nats-server started by the test.

use std::path::{Path, PathBuf};
use std::process::Output;

use herald_test_server::testing::{copy_dir, herald_command, usage_event, ClosedPort};
use herald_test_server::NatsServer;

fn herald(args: &[&str]) -> Output {
    herald_command(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .output()
        .expect("run herald")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn repo_contracts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts")
}

/// The shipped usage event for `label`, as one JSON line.
fn usage_line(label: &str) -> String {
    usage_event(label).to_string()
}

async fn server() -> NatsServer {
    NatsServer::start()
        .await
        .expect("nats-server must be installed (apt-get install nats-server)")
}

fn stream_messages(url: &str, stream: &str) -> u64 {
    let o = herald(&["--server", url, "--format", "json", "streams", "ls"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == stream)
        .map(|r| r["messages"].as_u64().unwrap())
        .unwrap()
}

#[tokio::test]
async fn streams_apply_is_idempotent_and_dry_run_refuses_destructive_drift() {
    let s = server().await;
    let url = s.url();
    let o = herald(&["--server", &url, "streams", "apply"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.contains("USAGE") && out.contains("created") && out.contains("DLQ"),
        "{out}"
    );
    let o = herald(&["--server", &url, "streams", "apply"]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(0));
    assert!(out.contains("nothing to change"), "{out}");

    // A copy of the contracts with USAGE's max_age lowered: drift, destructive.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_contracts(), dir.path());
    let cat = dir.path().join("catalog.toml");
    let toml = std::fs::read_to_string(&cat).unwrap();
    let changed = toml.replacen(
        "max_age = \"30d\"\nmax_bytes",
        "max_age = \"1d\"\nmax_bytes",
        1,
    );
    assert_ne!(toml, changed, "catalog layout changed; update the test");
    std::fs::write(&cat, changed).unwrap();
    let contracts = dir.path().to_str().unwrap();
    let o = herald(&[
        "--server",
        &url,
        "--contracts",
        contracts,
        "streams",
        "apply",
        "--dry-run",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(
        out.contains("USAGE") && out.contains("REFUSED") && out.contains("max_age: 30d -> 1d"),
        "{out}"
    );
    let o = herald(&[
        "--server",
        &url,
        "--contracts",
        contracts,
        "streams",
        "apply",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let o = herald(&[
        "--server",
        &url,
        "--contracts",
        contracts,
        "streams",
        "apply",
        "--force",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("updated (forced)"), "{out}");
    let o = herald(&[
        "--server",
        &url,
        "--contracts",
        contracts,
        "streams",
        "apply",
        "--dry-run",
    ]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
}

#[tokio::test]
async fn publish_jsonl_skips_bad_lines_reports_them_and_publishes_the_rest() {
    let s = server().await;
    let url = s.url();
    assert_eq!(
        herald(&["--server", &url, "streams", "apply"])
            .status
            .code(),
        Some(0)
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    let mut invalid: serde_json::Value = serde_json::from_str(&usage_line("e-99")).unwrap();
    invalid.as_object_mut().unwrap().remove("tenant_id");
    let lines = [
        usage_line("e-01"),
        "{\"event_id\": oops".to_string(),
        usage_line("e-02"),
        invalid.to_string(),
        String::new(),
        usage_line("e-03"),
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    let o = herald(&[
        "--server",
        &url,
        "publish",
        "--subject",
        "usage.metered.api_call",
        "--jsonl",
        file.to_str().unwrap(),
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(
        out.contains("published 3, duplicates 0, rejected 2, failed 0"),
        "{out}"
    );
    assert!(err.contains("events.jsonl:2"), "{err}");
    assert!(
        err.contains("events.jsonl:4") && err.contains("tenant_id"),
        "{err}"
    );
    assert_eq!(stream_messages(&url, "USAGE"), 3);

    // Same file again: all duplicates, still exit 1 for the two bad lines.
    let o = herald(&[
        "--server",
        &url,
        "publish",
        "--subject",
        "usage.metered.api_call",
        "--jsonl",
        file.to_str().unwrap(),
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(
        out.contains("published 0, duplicates 3, rejected 2"),
        "{out}"
    );
    assert_eq!(stream_messages(&url, "USAGE"), 3);
}

#[tokio::test]
async fn publish_single_event_with_idempotency_key_reports_duplicate() {
    let s = server().await;
    let url = s.url();
    assert_eq!(
        herald(&["--server", &url, "streams", "apply"])
            .status
            .code(),
        Some(0)
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.json");
    std::fs::write(&file, usage_line("e-11")).unwrap();
    let args = [
        "--server",
        &url,
        "publish",
        "--subject",
        "usage.metered.api_call",
        "--idempotency-key",
        "order-1",
        file.to_str().unwrap(),
    ];
    let o = herald(&args);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.starts_with("published to USAGE seq 1 (message id order-1"),
        "{out}"
    );
    let o = herald(&args);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(0));
    assert!(out.starts_with("duplicate of USAGE seq 1"), "{out}");
    assert_eq!(stream_messages(&url, "USAGE"), 1);
}

#[test]
fn publish_unknown_subject_is_a_usage_error() {
    let o = herald(&[
        "--server",
        "nats://127.0.0.1:1",
        "publish",
        "--subject",
        "usage.nope",
        "-",
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("unknown subject `usage.nope`"), "{err}");
}

#[test]
fn publish_to_unreachable_server_is_a_one_line_connection_error() {
    // Held bound and closed for the whole test: nothing can start listening on it.
    let port = ClosedPort::bind();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.json");
    std::fs::write(&file, usage_line("e-12")).unwrap();
    let url = port.url();
    let o = herald(&[
        "--server",
        &url,
        "--connect-timeout",
        "1",
        "publish",
        "--subject",
        "usage.metered.api_call",
        file.to_str().unwrap(),
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(
        err.contains("cannot connect") && err.contains(&port.port().to_string()),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
}
