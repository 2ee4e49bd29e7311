//! `herald consume / dlq / lag / tail` against a real nats-server started by the test.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Output};
use std::time::Duration;

use herald_runtime::{ConnectConfig, HeraldClient};
use herald_test_server::testing::{
    herald_command, signal, spawn_logged, usage_line, wait_child, wait_until,
};
use herald_test_server::NatsServer;

/// Bounds every wait on the `herald` child and on what it writes.
const LIMIT: Duration = Duration::from_secs(60);

fn herald(args: &[&str]) -> Output {
    herald_command(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .output()
        .expect("run herald")
}

fn spawn_herald(args: &[&str], stderr: &Path) -> Child {
    spawn_logged(
        herald_command(env!("CARGO_BIN_EXE_herald")).args(args),
        stderr,
    )
}

fn wait_exit(child: &mut Child) -> Option<i32> {
    wait_child(child, LIMIT).code()
}

async fn server() -> NatsServer {
    NatsServer::start()
        .await
        .expect("nats-server must be installed (apt-get install nats-server)")
}

fn json(o: &Output) -> serde_json::Value {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

async fn wait_for(what: &str, f: impl FnMut() -> bool) {
    wait_until(what, LIMIT, f).await
}

fn publish_lines(url: &str, dir: &Path, lines: &[String]) {
    let file = dir.join("in.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let o = herald(&[
        "--server",
        url,
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
}

#[tokio::test]
async fn consume_exec_maps_exit_codes_and_dlq_lag_tail_commands_work() {
    let s = server().await;
    let url = s.url();
    assert_eq!(
        herald(&["--server", &url, "streams", "apply"])
            .status
            .code(),
        Some(0)
    );
    let dir = tempfile::tempdir().unwrap();
    publish_lines(
        &url,
        dir.path(),
        &[usage_line(1), usage_line(2), usage_line(3)],
    );
    let out = dir.path().join("handled.txt");
    // 0001 succeeds, 0002 fails temporarily once (exit 75), 0003 is rejected (exit 1).
    let script = format!(
        r#"body=$(cat); id=$(printf '%s' "$body" | sed -n 's/.*"event_id":"[^"]*\([0-9]\{{4\}}\)".*/\1/p'); echo "$id $HERALD_DELIVERED $HERALD_STREAM_SEQ" >> {out}; case "$id" in 0001) exit 0;; 0002) [ "$HERALD_DELIVERED" -ge 2 ] && exit 0; exit 75;; *) echo "tenant closed for $id" >&2; exit 1;; esac"#,
        out = out.display()
    );
    let err = dir.path().join("consume.err");
    let mut child = spawn_herald(
        &[
            "--server",
            &url,
            "consume",
            "--service",
            "billing-service",
            "--subject",
            "usage.metered.>",
            "--exec",
            &script,
            "--backoff",
            "100ms",
        ],
        &err,
    );
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    wait_for("handled", || read(&out).lines().count() >= 4).await;
    wait_for("dead letter", || {
        json(&herald(&[
            "--server", &url, "--format", "json", "dlq", "ls",
        ]))
        .as_array()
        .is_some_and(|a| a.len() == 1)
    })
    .await;
    signal(&child, "-TERM");
    assert_eq!(wait_exit(&mut child), Some(0), "{}", read(&err));
    let summary = read(&err);
    assert!(
        summary.contains("acked 2, duplicates 0, retried 1, dead-lettered 1"),
        "{summary}"
    );
    let mut handled: Vec<String> = read(&out)
        .lines()
        .map(|l| l.rsplit_once(' ').unwrap().0.to_string())
        .collect();
    handled.sort();
    assert_eq!(handled, ["0001 1", "0002 1", "0002 2", "0003 1"]);

    // dlq ls / show
    let entries = json(&herald(&[
        "--server",
        &url,
        "--format",
        "json",
        "dlq",
        "ls",
        "--reason",
        "handler_rejected",
    ]));
    let e = &entries[0];
    assert_eq!(e["subject"], "usage.metered.api_call");
    assert_eq!(e["consumer"], "billing-service--usage");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("exit 1: tenant closed for 0003"),
        "{e}"
    );
    let seq = e["seq"].as_u64().unwrap().to_string();
    let o = herald(&["--server", &url, "dlq", "show", &seq]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("reason:     handler_rejected"), "{text}");
    assert!(text.contains("Herald-Dlq-Stream: USAGE"), "{text}");
    assert!(text.contains("446655440003"), "{text}");

    // lag: nothing pending, nothing stuck
    let lag = json(&herald(&[
        "--server", &url, "--format", "json", "lag", "--stream", "USAGE",
    ]));
    // `streams apply` created every catalog consumer's durable: pick billing's row.
    let row = lag
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["consumer"] == "billing-service--usage")
        .expect("billing-service--usage in herald lag");
    assert_eq!(row["pending"], 0);
    assert_eq!(row["ack_pending"], 0);

    // replay: dry run changes nothing, then the real one moves it back.
    let o = herald(&[
        "--server",
        &url,
        "dlq",
        "replay",
        "--seq",
        &seq,
        "--dry-run",
    ]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("would replay"));
    assert_eq!(
        json(&herald(&[
            "--server", &url, "--format", "json", "dlq", "ls"
        ]))
        .as_array()
        .unwrap()
        .len(),
        1
    );
    let o = herald(&[
        "--server",
        &url,
        "dlq",
        "replay",
        "--all",
        "--reason",
        "handler_rejected",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("1 replayed"), "{text}");
    assert!(
        text.contains(&format!(
            "replayed dlq seq {seq} to billing-service--usage only, as usage.metered.api_call"
        )),
        "{text}"
    );
    assert_eq!(
        json(&herald(&[
            "--server", &url, "--format", "json", "dlq", "ls"
        ]))
        .as_array()
        .unwrap()
        .len(),
        0
    );

    // tail: the three originals, never the replay (it went to billing's replay subject),
    // and an invalid bare event marked as such.
    let client = HeraldClient::connect(ConnectConfig::default().url(url.clone()))
        .await
        .unwrap();
    client
        .jetstream()
        .publish(
            "usage.metered.api_call",
            b"{\"event_id\": 1}".to_vec().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let o = herald(&[
        "--server",
        &url,
        "tail",
        "usage.metered.>",
        "--all",
        "--count",
        "4",
        "--headers",
    ]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(1),
        "invalid event seen => exit 1: {text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with('#')).count(),
        4,
        "{text}"
    );
    assert_eq!(text.matches(" ok").count(), 3, "{text}");
    assert!(text.contains("INVALID (schema_invalid)"), "{text}");
    assert!(!text.contains("replay:"), "{text}");
}

#[tokio::test]
async fn consumer_killed_with_sigkill_mid_run_then_restarted_processes_every_event() {
    const N: u32 = 10_000;
    const CONCURRENCY: usize = 8;
    let s = server().await;
    let url = s.url();
    assert_eq!(
        herald(&["--server", &url, "streams", "apply"])
            .status
            .code(),
        Some(0)
    );
    let dir = tempfile::tempdir().unwrap();
    publish_lines(
        &url,
        dir.path(),
        &(0..N).map(usage_line).collect::<Vec<_>>(),
    );
    let out = dir.path().join("effects.txt");
    // The side effect: one appended line per handler call (a single small O_APPEND write).
    let script = format!(
        r#"cat > /dev/null; echo "$HERALD_STREAM_SEQ" >> {}"#,
        out.display()
    );
    let conc = CONCURRENCY.to_string();
    let args = [
        "--server",
        &url,
        "consume",
        "--service",
        "billing-service",
        "--subject",
        "usage.metered.>",
        "--exec",
        &script,
        "--concurrency",
        &conc,
        "--dedupe",
        "kv",
        "--ack-wait",
        "2s",
    ];
    let err = dir.path().join("consume.err");
    let mut child = spawn_herald(&args, &err);
    let lines = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .count()
    };
    wait_for("a third processed", || lines(&out) >= (N as usize) / 3).await;
    signal(&child, "-KILL");
    let _ = wait_exit(&mut child);
    let at_kill = lines(&out);
    assert!(at_kill < N as usize, "killed mid-run");

    let mut child = spawn_herald(&args, &err);
    let distinct = |p: &Path| {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        let mut counts: HashMap<String, usize> = HashMap::new();
        for l in text.lines() {
            *counts.entry(l.to_string()).or_default() += 1;
        }
        counts
    };
    wait_for("every event processed", || {
        distinct(&out).len() == N as usize
    })
    .await;
    signal(&child, "-TERM");
    assert_eq!(wait_exit(&mut child), Some(0));
    let counts = distinct(&out);
    assert_eq!(counts.len(), N as usize);
    let extra: usize = counts.values().map(|c| c - 1).sum();
    // The durable key-value store means no event recorded as processed is handled again;
    // only events whose handler was running when the process died can run twice.
    assert!(
        extra <= CONCURRENCY,
        "{extra} repeated side effects (killed after {at_kill})"
    );
    eprintln!("killed after {at_kill} effects; {extra} repeated after restart");
}
