//! `herald consume --http` delivering to an app that speaks only Dapr's pub/sub
//! contract (tests/py/dapr_app.py): CloudEvents binary-mode headers in, Dapr's
//! SUCCESS / RETRY / DROP statuses out.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use herald_test_server::{free_port, NatsServer};

fn herald(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .env_remove("NATS_URL")
        .env("NO_COLOR", "1")
        .output()
        .expect("run herald")
}

fn usage(n: u32, quantity: u32) -> String {
    serde_json::json!({
        "event_id": format!("550e8400-e29b-41d4-a716-44665544{n:04}"),
        "timestamp": "2024-01-15T10:30:00Z",
        "service_name": "model-gateway",
        "user_id": "123e4567-e89b-12d3-a456-426614174000",
        "tenant_id": "789e0123-e89b-12d3-a456-426614174000",
        "event_type": "api_call",
        "resource_type": "requests",
        "quantity": quantity,
        "cost": {"amount": 0.001, "currency": "EUR"}
    })
    .to_string()
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

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn an_app_written_for_dapr_delivery_works_unchanged() {
    let nats = NatsServer::start()
        .await
        .expect("nats-server must be installed");
    let url = nats.url();
    assert_eq!(
        herald(&["--server", &url, "streams", "apply"])
            .status
            .code(),
        Some(0)
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.jsonl");
    std::fs::write(&file, [usage(1, 1), usage(2, 2), usage(3, 3)].join("\n")).unwrap();
    let o = herald(&[
        "--server",
        &url,
        "publish",
        "--subject",
        "usage.metered.api_call",
        "--jsonl",
        file.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let port = free_port().unwrap();
    let log = dir.path().join("app.jsonl");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let _app = Killed(
        Command::new("python3")
            .arg(format!("{root}/tests/py/dapr_app.py"))
            .arg(port.to_string())
            .arg(&log)
            .spawn()
            .expect("python3 must be installed"),
    );
    wait_for("the Dapr app to listen", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;

    let err = dir.path().join("consume.err");
    let mut consume = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "--server",
            &url,
            "consume",
            "--service",
            "billing-service",
            "--subject",
            "usage.metered.>",
            "--backoff",
            "100ms",
        ])
        .arg("--http")
        .arg(format!("http://127.0.0.1:{port}/usage"))
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let lines = |p: &Path| -> Vec<serde_json::Value> {
        read(p)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    wait_for("four deliveries", || lines(&log).len() >= 4).await;
    wait_for("one dead letter", || {
        let o = herald(&["--server", &url, "--format", "json", "dlq", "ls"]);
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .ok()
            .and_then(|v| v.as_array().map(|a| a.len() == 1))
            .unwrap_or(false)
    })
    .await;
    Command::new("kill")
        .arg("-TERM")
        .arg(consume.id().to_string())
        .status()
        .unwrap();
    for _ in 0..300 {
        if consume.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let summary = read(&err);
    assert!(
        summary.contains("acked 2, duplicates 0, retried 1, dead-lettered 1"),
        "{summary}"
    );

    let mut seen: Vec<(u64, u64, String)> = lines(&log)
        .iter()
        .map(|l| {
            (
                l["quantity"].as_u64().unwrap(),
                l["attempt"].as_u64().unwrap(),
                l["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (1, 1, "SUCCESS".into()),
            (2, 1, "RETRY".into()),
            (2, 2, "SUCCESS".into()),
            (3, 1, "DROP".into()),
        ]
    );
    for l in lines(&log) {
        let ce = &l["ce"];
        assert_eq!(ce["ce-specversion"], "1.0");
        assert_eq!(ce["ce-type"], "usage.metered.api_call");
        assert_eq!(ce["ce-id"], l["event_id"]);
        assert!(
            ce["ce-dataschema"]
                .as_str()
                .unwrap()
                .ends_with("/UsageEvent/1.1.0.json"),
            "{ce}"
        );
        assert!(
            ce["traceparent"].as_str().unwrap().starts_with("00-"),
            "{ce}"
        );
    }
    let o = herald(&["--server", &url, "--format", "json", "dlq", "ls"]);
    let dlq: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let text = dlq.to_string();
    assert!(text.contains("handler_rejected"), "{text}");
    assert!(text.contains("DROP"), "{text}");
}
