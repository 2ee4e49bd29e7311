//! Duplicate member names are refused everywhere an event is decoded: `validate`,
//! `publish`, and at consume for a raw frame another client published, as a
//! `decode_error` naming the JSON Pointer of the repeated name.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use herald_runtime::{ConnectConfig, HeraldClient};
use herald_test_server::NatsServer;

fn herald(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .env_remove("NATS_URL")
        .env_remove("HERALD_CONTRACTS")
        .env("NO_COLOR", "1")
        .output()
        .expect("run herald")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// A valid usage event, except that `event_type` appears twice: first `bogus` (what
/// a first-wins parser such as RapidJSON reads), last `api_call`.
const DUPLICATE_AT_ROOT: &str = r#"{"event_id":"550e8400-e29b-41d4-a716-446655440001","timestamp":"2024-01-15T10:30:00Z","service_name":"model-gateway","user_id":"123e4567-e89b-12d3-a456-426614174000","tenant_id":"789e0123-e89b-12d3-a456-426614174000","event_type":"bogus","resource_type":"requests","quantity":1,"cost":{"amount":0.001,"currency":"EUR"},"event_type":"api_call"}"#;

/// The same with the repeat nested: `quantity` inside `cost` is fine, `amount` twice is not.
const DUPLICATE_NESTED: &str = r#"{"event_id":"550e8400-e29b-41d4-a716-446655440002","timestamp":"2024-01-15T10:30:00Z","service_name":"model-gateway","user_id":"123e4567-e89b-12d3-a456-426614174000","tenant_id":"789e0123-e89b-12d3-a456-426614174000","event_type":"api_call","resource_type":"requests","quantity":1,"cost":{"amount":-5,"currency":"EUR","amount":0.001}}"#;

#[test]
fn validate_refuses_duplicates_naming_the_pointer() {
    let dir = tempfile::tempdir().unwrap();
    for (body, pointer) in [
        (DUPLICATE_AT_ROOT, "/event_type"),
        (DUPLICATE_NESTED, "/cost/amount"),
    ] {
        let file = dir.path().join("e.json");
        std::fs::write(&file, body).unwrap();
        let out = herald(&[
            "--format",
            "json",
            "validate",
            "--subject",
            "usage.metered.api_call",
            file.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let r = &v["results"][0];
        assert_eq!(r["reason"], "decode_error", "{v}");
        assert!(
            r["error"].as_str().unwrap().contains(&format!(
                "duplicate member name `{}` at {pointer}",
                pointer.rsplit('/').next().unwrap()
            )),
            "{v}"
        );
    }
    // Without the repeat, the same event is valid.
    let fixed = DUPLICATE_AT_ROOT.replace(r#""event_type":"bogus","#, "");
    let file = dir.path().join("ok.json");
    std::fs::write(&file, fixed).unwrap();
    let out = herald(&[
        "validate",
        "--subject",
        "usage.metered.api_call",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

fn spawn_consumer(url: &str, out: &Path, err: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "--server",
            url,
            "consume",
            "--service",
            "billing-service",
            "--subject",
            "usage.metered.>",
            "--exec",
            &format!("cat >> {}", out.display()),
        ])
        .env_remove("NATS_URL")
        .env_remove("HERALD_CONTRACTS")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(err).unwrap())
        .spawn()
        .expect("spawn herald consume")
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..600 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn publish_and_consume_refuse_duplicates() {
    let s = NatsServer::start()
        .await
        .expect("nats-server must be installed (apt-get install nats-server)");
    let url = s.url();
    assert_eq!(
        herald(&["--server", &url, "streams", "apply"])
            .status
            .code(),
        Some(0)
    );

    // publish: refused before it reaches the stream
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dup.json");
    std::fs::write(&file, DUPLICATE_AT_ROOT).unwrap();
    let out = herald(&[
        "--server",
        &url,
        "publish",
        "--subject",
        "usage.metered.api_call",
        file.to_str().unwrap(),
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("duplicate member name `event_type` at /event_type"),
        "{}",
        text(&out)
    );

    // consume: a foreign client publishes the raw frame; herald dead-letters it.
    let client = HeraldClient::connect(ConnectConfig::default().url(url.clone()))
        .await
        .unwrap();
    client
        .jetstream()
        .publish(
            "usage.metered.api_call",
            DUPLICATE_NESTED.as_bytes().to_vec().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let handled = dir.path().join("handled.jsonl");
    let err = dir.path().join("consume.err");
    let mut child = spawn_consumer(&url, &handled, &err);
    let dlq = || {
        let o = herald(&["--server", &url, "--format", "json", "dlq", "ls"]);
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap_or_default()
    };
    wait_for("the dead letter", || {
        dlq().as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    for _ in 0..300 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let entry = &dlq()[0];
    assert_eq!(entry["reason"], "decode_error", "{entry}");
    assert!(
        entry["error"]
            .as_str()
            .unwrap_or_default()
            .contains("duplicate member name `amount` at /cost/amount"),
        "{entry}"
    );
    assert_eq!(
        std::fs::read_to_string(&handled).unwrap_or_default(),
        "",
        "the handler must never see the event"
    );
}
