//! `herald demo` end to end: a short run on its own embedded nats-server must
//! balance its books, show every injected fault at least once, and leave an
//! audit log holding exactly the events it should. And `herald bench all`
//! with few events: it runs and prints every row as JSON (no timing checks).

use std::collections::HashSet;
use std::process::Output;

use herald_test_server::testing::herald_command;
use herald_test_server::NatsServer;
use serde_json::Value;

fn text(o: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn short_demo_balances_its_books_and_counts_every_fault() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let o = herald_command(env!("CARGO_BIN_EXE_herald"))
        .current_dir(dir.path())
        .args([
            "--format",
            "json",
            "demo",
            "--duration",
            "4s",
            "--rate",
            "100",
        ])
        .arg("--audit-log")
        .arg(&audit)
        .output()
        .expect("run herald");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: Value = serde_json::from_slice(&o.stdout).expect("JSON summary");

    // The books.
    let books = &r["books"];
    assert_eq!(books["lost"], 0, "{books}");
    assert_eq!(books["processed_twice"], 0, "{books}");
    assert_eq!(books["invalid_processed"], 0, "{books}");
    // How many events a 4 s run moves depends on the machine: only that it moved some.
    assert!(books["pairs"].as_u64().unwrap() > 0, "{books}");
    assert_eq!(
        books["pairs"].as_u64().unwrap(),
        books["processed_once"].as_u64().unwrap() + books["dead_lettered"].as_u64().unwrap()
    );
    assert_eq!(r["drained"], true);

    // Every fault kind, at least once: the demo schedules each at a fraction of the
    // run (its first firing at 25% and so on), whatever the machine's speed.
    let f = &r["faults"];
    for kind in [
        "invalid_refused_at_publish",
        "bare_json_published",
        "bare_json_invalid",
        "bare_json_dead_lettered",
        "bare_json_resent",
        "duplicates_dropped_at_consume",
        "duplicate_publishes_dropped",
        "redeliveries_handled_as_duplicates",
        "poison_events",
        "poison_dead_lettered",
        "consumer_crashes",
        "consumer_restarts",
    ] {
        assert!(f[kind].as_u64().unwrap() >= 1, "{kind} not counted: {f}");
    }
    assert_eq!(f["poison_dead_lettered"], f["poison_events"]);
    // Each invalid bare event is dead-lettered by both of its subscribers
    // (billing-service and analytics-service on usage.metered.>).
    assert_eq!(
        f["bare_json_dead_lettered"].as_u64().unwrap(),
        2 * f["bare_json_invalid"].as_u64().unwrap()
    );
    assert_eq!(r["dlq"]["max_deliveries"], f["poison_events"]);

    // Per-subject and per-service rows.
    let subjects = r["subjects"].as_array().unwrap();
    let row = |s: &str| subjects.iter().find(|x| x["subject"] == s).cloned();
    let api = row("usage.metered.api_call").expect("api_call row");
    assert!(api["bare"].as_u64().unwrap() >= 1);
    assert!(api["dead_lettered"]["schema_invalid"].as_u64().unwrap() >= 2);
    assert!(
        row("ingest.document.failed").unwrap()["refused_invalid"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert!(
        row("alerts.quota_exceeded").unwrap()["published"]
            .as_u64()
            .unwrap()
            >= 1
    );
    let services = r["services"].as_array().unwrap();
    let metering = services
        .iter()
        .find(|s| s["service"] == "usage-metering")
        .unwrap();
    assert_eq!(metering["crashes"], 1);
    assert_eq!(metering["restarts"], 1);
    for s in services {
        assert_eq!(s["lag"], 0, "{s}");
    }

    // The audit log: one line per stored orchestrator.step.* and alerts.* event.
    let expected: u64 = subjects
        .iter()
        .filter(|s| {
            let name = s["subject"].as_str().unwrap();
            name.starts_with("orchestrator.step.") || name.starts_with("alerts.")
        })
        .map(|s| s["published"].as_u64().unwrap())
        .sum();
    let body = std::fs::read_to_string(&audit).expect("audit log kept");
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len() as u64, expected);
    assert_eq!(r["audit_log"]["lines"].as_u64().unwrap(), expected);
    let mut ids = HashSet::new();
    for l in &lines {
        let subject = l["subject"].as_str().unwrap();
        let id = if subject.starts_with("alerts.") {
            l["event"]["alert_id"].as_str()
        } else {
            assert!(subject.starts_with("orchestrator.step."), "{subject}");
            l["event"]["step_id"].as_str()
        };
        // The workflow helper gives a step's started and completed events the same
        // step_id (their message ids differ): one line per (subject, id).
        assert!(
            ids.insert((subject.to_string(), id.unwrap().to_string())),
            "audited twice: {l}"
        );
    }

    // The embedded server's store is gone (no --keep).
    assert!(!dir.path().join(".herald/demo/nats").exists());
}

#[test]
fn demo_without_nats_server_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let o = herald_command(env!("CARGO_BIN_EXE_herald"))
        .current_dir(dir.path())
        .args(["demo", "--duration", "1s"])
        .env("NATS_SERVER_BIN", dir.path().join("no-such-nats-server"))
        .output()
        .expect("run herald");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("apt-get install nats-server"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn bench_all_small_produces_every_row_as_json() {
    let o = herald_command(env!("CARGO_BIN_EXE_herald"))
        .args(["--format", "json", "bench", "all", "--events", "200"])
        .output()
        .expect("run herald");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert!(r["server"].as_str().unwrap().starts_with('2'), "{r}");
    assert_eq!(r["events"], 200);
    let rows = r["rows"].as_array().unwrap();
    let names: Vec<(String, String)> = rows
        .iter()
        .map(|x| {
            (
                x["group"].as_str().unwrap().to_string(),
                x["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for schema in [
        "UsageEvent",
        "OrchestratorStep",
        "RealtimeMessage",
        "IngestDocumentEvent",
        "AlertEvent",
    ] {
        assert!(
            names.contains(&("validate".into(), schema.into())),
            "{names:?}"
        );
    }
    assert_eq!(rows.iter().filter(|x| x["group"] == "publish").count(), 1);
    assert_eq!(rows.iter().filter(|x| x["group"] == "consume").count(), 1);
    for at in ["1000/s", "saturation"] {
        for p in ["p50", "p99", "p999"] {
            assert!(
                names.contains(&("latency".into(), format!("{p} @ {at}"))),
                "{names:?}"
            );
        }
    }
    for x in rows {
        for field in ["raw", "herald", "ratio"] {
            assert!(x[field].as_f64().unwrap() >= 0.0, "{x}");
        }
        let unit = x["unit"].as_str().unwrap();
        let better = x["better"].as_str().unwrap();
        assert!(
            (unit == "events/s" && better == "higher") || (unit == "ms" && better == "lower"),
            "{x}"
        );
    }
}

#[tokio::test]
async fn bench_all_refuses_a_foreign_server() {
    // A server herald did not start, reachable: the refusal must be the policy
    // (the benchmarks purge streams), not a failed connection.
    let server = NatsServer::start()
        .await
        .expect("nats-server must be installed (apt-get install nats-server)");
    let o = herald_command(env!("CARGO_BIN_EXE_herald"))
        .args(["--server", &server.url(), "bench", "all", "--events", "10"])
        .output()
        .expect("run herald");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("runs only on its own embedded nats-server: drop --server"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
}
