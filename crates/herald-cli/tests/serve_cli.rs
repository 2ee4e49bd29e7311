//! `herald serve` as a process: a foreign registry client (confluent-kafka, Python),
//! the tokens `herald auth generate` writes, and graceful drain on SIGTERM.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use herald_contracts::versions::Lock;
use herald_contracts::Catalog;
use herald_test_server::{free_port, NatsServer};

fn spawn_serve(nats: &str, extra: &[&str], stderr: &Path) -> (Child, SocketAddr) {
    let port = free_port().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let listen = addr.to_string();
    let mut args = vec!["serve", "--server", nats, "--listen", listen.as_str()];
    args.extend_from_slice(extra);
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(&args)
        .env_remove("NATS_URL")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .expect("spawn herald serve");
    for _ in 0..300 {
        if TcpStream::connect(addr).is_ok() {
            return (child, addr);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "herald serve did not listen: {}",
        std::fs::read_to_string(stderr).unwrap_or_default()
    );
}

fn herald(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .env_remove("NATS_URL")
        .env("NO_COLOR", "1")
        .output()
        .expect("run herald")
}

/// One HTTP/1.1 request with `Connection: close`; returns (status, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

fn wait_exit(child: &mut Child) -> Option<i32> {
    for _ in 0..600 {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("herald serve did not exit");
}

fn wait_ready(addr: SocketAddr) {
    for _ in 0..300 {
        if http(addr, "GET", "/readyz", &[], "").0 == 200 {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("herald serve never became ready");
}

fn step(n: u32, service: &str) -> String {
    serde_json::json!({
        "step_id": format!("660e8400-e29b-41d4-a716-{n:012}"),
        "workflow_id": "770e8400-e29b-41d4-a716-446655440002",
        "timestamp": "2024-01-15T10:30:00Z",
        "step_name": "Process Document",
        "status": "started",
        "service_name": service,
        "step_type": "data_processing"
    })
    .to_string()
}

#[tokio::test]
async fn confluent_schema_registry_client_reads_the_contracts() {
    let nats = NatsServer::start()
        .await
        .expect("nats-server must be installed");
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn_serve(&nats.url(), &[], &dir.path().join("serve.log"));
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = Command::new("python3")
        .arg(format!("{root}/tests/py/schema_registry_client.py"))
        .arg(format!("http://{addr}"))
        .output()
        .expect("python3 must be installed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the confluent-kafka client failed (pip install -r tests/py/requirements.txt): {stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let catalog = Catalog::embedded().unwrap();
    let lock = Lock::of(&catalog).unwrap();
    let expected_id = herald_serve::registry::id_of(&lock.versions["UsageEvent@1.1.0"]);
    let subjects: Vec<&str> = v["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for s in [
        "usage.metered.api_call-value",
        "orchestrator.step.started-value",
        "UsageEvent",
        "common",
    ] {
        assert!(subjects.contains(&s), "{s} missing from {subjects:?}");
    }
    assert_eq!(v["latest"]["version"], 2, "{v}");
    assert_eq!(v["latest"]["id"], expected_id, "{v}");
    assert_eq!(v["latest"]["type"], "JSON");
    assert_eq!(v["latest"]["references"][0]["subject"], "common", "{v}");
    assert_eq!(v["versions"], serde_json::json!([1, 2]));
    assert_eq!(
        v["by_id"]["id"],
        "https://contracts.platform.internal/schemas/UsageEvent/1.1.0.json"
    );
    assert_eq!(v["compatible_same"], true, "{v}");
    assert_eq!(v["compatible_changed_type"], false, "{v}");
    assert_eq!(v["compatible_changed_type_v1"], false, "{v}");
    assert_eq!(v["config"], "BACKWARD_TRANSITIVE");
    assert_eq!(v["lookup_id"], expected_id);
    assert_eq!(v["missing_subject"]["code"], 40401, "{v}");
    assert_eq!(v["missing_version"]["code"], 40402, "{v}");
    assert_eq!(v["register"]["code"], 42205, "{v}");
    assert!(
        v["register"]["message"]
            .as_str()
            .unwrap()
            .contains("herald check"),
        "{v}"
    );

    // Verbose compatibility names the breaking change.
    let changed = {
        let mut d = catalog.schemas()["UsageEvent"][1].document.clone();
        d["properties"]["quantity"] = serde_json::json!({"type": "string"});
        serde_json::json!({"schema": d.to_string(), "schemaType": "JSON"}).to_string()
    };
    let (status, body) = http(
        addr,
        "POST",
        "/compatibility/subjects/usage.metered.api_call-value/versions/latest?verbose=true",
        &[("content-type", "application/vnd.schemaregistry.v1+json")],
        &changed,
    );
    assert_eq!(status, 200, "{body}");
    let r: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["is_compatible"], false);
    assert!(
        r["messages"][0]
            .as_str()
            .unwrap()
            .contains("/properties/quantity"),
        "{r}"
    );

    // Each schema at the path of its $id.
    let (status, body) = http(addr, "GET", "/schemas/UsageEvent/1.0.0.json", &[], "");
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        doc["$id"],
        "https://contracts.platform.internal/schemas/UsageEvent/1.0.0.json"
    );
    assert_eq!(
        http(addr, "GET", "/schemas/UsageEvent/7.0.0.json", &[], "").0,
        404
    );

    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert_eq!(wait_exit(&mut child), Some(0));
}

#[tokio::test]
async fn generated_tokens_publish_only_what_their_service_produces() {
    let nats = NatsServer::start()
        .await
        .expect("nats-server must be installed");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("auth");
    let o = herald(&["auth", "generate", "--out", out.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("HTTP bearer tokens"), "{text}");
    let tokens = out.join("serve-tokens.toml");
    let o = herald(&["streams", "apply", "--server", &nats.url()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let log = dir.path().join("serve.log");
    let (mut child, addr) = spawn_serve(&nats.url(), &["--tokens", tokens.to_str().unwrap()], &log);
    wait_ready(addr);
    let token = |s: &str| {
        std::fs::read_to_string(out.join("tokens").join(format!("{s}.token")))
            .unwrap()
            .trim()
            .to_string()
    };
    let orch = format!("Bearer {}", token("orchestrator"));
    let ingest = format!("Bearer {}", token("ingestion-service"));
    let json = ("content-type", "application/json");
    let path = "/v1/events/orchestrator.step.started";
    let (s, body) = http(
        addr,
        "POST",
        path,
        &[json, ("authorization", &ingest)],
        &step(1, "ingestion-service"),
    );
    assert_eq!(s, 403, "{body}");
    let (s, body) = http(addr, "POST", path, &[json], &step(1, "orchestrator"));
    assert_eq!(s, 401, "{body}");
    let (s, body) = http(
        addr,
        "POST",
        path,
        &[json, ("authorization", &orch)],
        &step(1, "orchestrator"),
    );
    assert_eq!(s, 202, "{body}");
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert_eq!(wait_exit(&mut child), Some(0));
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("bearer tokens required"), "{log}");
    for s in ["orchestrator", "ingestion-service"] {
        assert!(!log.contains(&token(s)), "a token was logged");
    }
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_and_refuses_new_ones() {
    let nats = NatsServer::start()
        .await
        .expect("nats-server must be installed");
    let o = herald(&["streams", "apply", "--server", &nats.url()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let (mut child, addr) = spawn_serve(&nats.url(), &[], &log);
    wait_ready(addr);
    let body = step(7, "orchestrator");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // `Expect: 100-continue`: the server answers `100 Continue` once the handler
    // starts reading the body, so the request is provably in flight (accepted and
    // being handled, not waiting in the listen backlog) before the signal.
    let head = format!(
        "POST /v1/events/orchestrator.step.started HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut cont = [0u8; 25];
    s.read_exact(&mut cont).unwrap();
    assert!(
        cont.starts_with(b"HTTP/1.1 100 Continue\r\n"),
        "{}",
        String::from_utf8_lossy(&cont)
    );
    s.write_all(&body.as_bytes()[..10]).unwrap();
    // The request is in flight (its body half sent): SIGTERM.
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let mut refused = false;
    for _ in 0..300 {
        if TcpStream::connect(addr).is_err() {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(refused, "still accepting connections after SIGTERM");
    s.write_all(&body.as_bytes()[10..]).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 202"), "{out}");
    assert_eq!(wait_exit(&mut child), Some(0));
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("loopback only"), "{log}");
    assert!(log.contains("draining"), "{log}");
}
