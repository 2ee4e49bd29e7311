//! Issue 13 regression tests for the `herald` binary: what a hostile or careless caller
//! passes on the command line or standard input never panics, never sends a malformed
//! event and never grows memory without bound.

use std::io::Write;
use std::process::{Child, Output, Stdio};

use herald_test_server::testing::{
    self, herald_command, signal, spawn_logged, usage_line, wait_child,
};
use herald_test_server::NatsServer;

fn herald(args: &[&str]) -> Output {
    herald_command(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run herald")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn server() -> NatsServer {
    NatsServer::start()
        .await
        .expect("nats-server must be installed (apt-get install nats-server)")
}

async fn stream_messages(url: &str, stream: &str) -> u64 {
    let c =
        herald_runtime::HeraldClient::connect(herald_runtime::ConnectConfig::default().url(url))
            .await
            .unwrap();
    let mut s = c.jetstream().get_stream(stream).await.unwrap();
    s.info().await.unwrap().state.messages
}

// ---- 1 and 12: header values from the command line ----

#[tokio::test]
async fn publish_refuses_blank_keys_and_control_characters_with_exit_2() {
    let s = server().await;
    let url = s.url();
    let apply = herald(&["--server", &url, "streams", "apply"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("e.json");
    std::fs::write(&event, usage_line(1)).unwrap();
    let ev = event.to_str().unwrap();
    let cases: [(&str, &str, &str); 5] = [
        ("--idempotency-key", "", "idempotency key (Nats-Msg-Id) is empty; give a non-blank value or leave it out"),
        ("--idempotency-key", "   ", "idempotency key (Nats-Msg-Id) is empty; give a non-blank value or leave it out"),
        ("--correlation-id", "a\r\nX: 1", "correlation id contains a control character (CR); CR, LF and NUL are not allowed in header values"),
        ("--idempotency-key", "k\nX: 1", "idempotency key (Nats-Msg-Id) contains a control character (LF); CR, LF and NUL are not allowed in header values"),
        ("--correlation-id", "a\tb\x07\r", "correlation id contains a control character (CR); CR, LF and NUL are not allowed in header values"),
    ];
    for (flag, value, expected) in cases {
        let o = herald(&[
            "--server",
            &url,
            "publish",
            "--subject",
            "usage.metered.api_call",
            flag,
            value,
            ev,
        ]);
        assert_eq!(o.status.code(), Some(2), "{flag} {value:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(expected), "{flag} {value:?}: {}", text(&o));
        assert!(!err.contains("panicked"), "{}", text(&o));
    }
    assert_eq!(stream_messages(&url, "USAGE").await, 0);
}

// ---- 13: streaming input ----

/// Peak resident memory (VmHWM) of a live process, in bytes.
fn peak_rss(child: &Child) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/<pid>/status");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kb * 1024
}

const MIB: usize = 1024 * 1024;
/// The ceiling the issue sets for any input size.
const MAX_RSS: u64 = 64 * MIB as u64;

/// Feeds `mib` MiB of zero bytes (no newline) then `tail` into `child`'s standard input;
/// returns the child's peak RSS measured while it is still running.
fn feed_zeros(child: &mut Child, mib: usize, tail: &str) -> u64 {
    let mut stdin = child.stdin.take().unwrap();
    let block = vec![0u8; MIB];
    for _ in 0..mib {
        stdin.write_all(&block).unwrap();
    }
    stdin.write_all(tail.as_bytes()).unwrap();
    stdin.flush().unwrap();
    // Everything but the end of input has been consumed by the child (the pipe holds at
    // most 64 KiB): measure before it can exit.
    let peak = peak_rss(child);
    drop(stdin);
    peak
}

#[test]
fn validate_jsonl_streams_an_endless_line_in_bounded_memory() {
    let mut child = herald_command(env!("CARGO_BIN_EXE_herald"))
        .args([
            "validate",
            "--subject",
            "usage.metered.api_call",
            "--jsonl",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let tail = format!("\n{}\n", usage_line(2));
    let peak = feed_zeros(&mut child, 256, &tail);
    let o = child.wait_with_output().unwrap();
    eprintln!("HOSTILE peak RSS {} KiB", peak / 1024);
    assert!(peak < MAX_RSS, "peak RSS {} MiB", peak / MIB as u64);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("<stdin>:1: invalid: event is 268435456 bytes, over the 1048576-byte limit"),
        "{}",
        text(&o)
    );
    assert!(out.contains("<stdin>:2: valid"), "{}", text(&o));
    assert!(
        out.contains("2 checked, 1 valid, 1 invalid"),
        "{}",
        text(&o)
    );
}

#[tokio::test]
async fn publish_jsonl_streams_its_input_in_bounded_memory() {
    let s = server().await;
    let url = s.url();
    let apply = herald(&["--server", &url, "streams", "apply"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let mut child = herald_command(env!("CARGO_BIN_EXE_herald"))
        .args([
            "--server",
            &url,
            "publish",
            "--subject",
            "usage.metered.api_call",
            "--jsonl",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let tail = format!("\n{}\n{}\n", usage_line(3), usage_line(4));
    let peak = feed_zeros(&mut child, 256, &tail);
    let o = child.wait_with_output().unwrap();
    eprintln!("HOSTILE peak RSS {} KiB", peak / 1024);
    assert!(peak < MAX_RSS, "peak RSS {} MiB", peak / MIB as u64);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "rejected: <stdin>:1: event is 268435456 bytes, over the limit of 1048576 bytes"
        ),
        "{}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("published 2, duplicates 0, rejected 1, failed 0 (of 3)"),
        "{}",
        text(&o)
    );
    assert_eq!(stream_messages(&url, "USAGE").await, 2);
}

// ---- 6 and 14: dead-letter tools ----

async fn client(url: &str) -> herald_runtime::HeraldClient {
    herald_runtime::HeraldClient::connect(herald_runtime::ConnectConfig::default().url(url))
        .await
        .unwrap()
}

async fn dead_letter(c: &herald_runtime::HeraldClient, payload: &str, consumer: &str, seq: u64) {
    let mut hm = async_nats_headers();
    hm.insert("X-Note", "\u{1b}[2J\u{1b}[31mcleared\u{7}");
    herald_runtime::dlq::dead_letter(
        c.jetstream(),
        herald_runtime::dlq::DeadLetter {
            subject: "usage.metered.api_call",
            payload: payload.as_bytes().to_vec().into(),
            headers: Some(&hm),
            reason: "handler_rejected",
            error: "bad \u{1b}]0;owned\u{7} tenant",
            consumer,
            stream: "USAGE",
            stream_seq: seq,
            deliveries: 1,
        },
    )
    .await
    .unwrap();
}

fn async_nats_headers() -> async_nats::HeaderMap {
    async_nats::HeaderMap::new()
}

#[tokio::test]
async fn dlq_tools_escape_control_characters_warn_count_once_and_remove() {
    let s = server().await;
    let url = s.url();
    let apply = herald(&["--server", &url, "streams", "apply"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let c = client(&url).await;
    // Still invalid (no tenant_id), with an escape sequence in a string field.
    let invalid = r#"{"event_id":"550e8400-e29b-41d4-a716-446655440000","note":"[2J"}"#
        .replace("[2J", "\u{1b}[2J");
    // The same original (stored as USAGE seq 1) dead-lettered by two consumers.
    c.jetstream()
        .publish(
            "usage.metered.api_call",
            invalid.clone().into_bytes().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    dead_letter(&c, &invalid, "billing-service--usage", 1).await;
    dead_letter(&c, &invalid, "analytics-service--usage", 1).await;

    let ls = herald(&["--server", &url, "dlq", "ls"]);
    assert_eq!(ls.status.code(), Some(0), "{}", text(&ls));
    let show = herald(&["--server", &url, "dlq", "show", "1"]);
    assert_eq!(show.status.code(), Some(0), "{}", text(&show));
    for o in [&ls, &show] {
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
    }
    let show_out = String::from_utf8_lossy(&show.stdout);
    assert!(
        show_out.contains("X-Note: \\u{1b}[2J\\u{1b}[31mcleared\\u{7}"),
        "{show_out}"
    );
    assert!(show_out.contains("\"note\":\"\\u{1b}[2J\""), "{show_out}");
    assert!(
        String::from_utf8_lossy(&ls.stdout).contains("bad \\u{1b}]0;owned\\u{7} tenant"),
        "{}",
        text(&ls)
    );

    // Dry run: warned first, the one original counted once.
    let dry = herald(&["--server", &url, "dlq", "replay", "--all", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    let err = String::from_utf8_lossy(&dry.stderr);
    assert!(
        err.contains("warning: dlq seq 1 (usage.metered.api_call) is still invalid and will be dead-lettered again"),
        "{}",
        text(&dry)
    );
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("1 would be replayed"),
        "{}",
        text(&dry)
    );

    // rm drops an entry without replaying it; a second rm or replay names the entry.
    let rm = herald(&["--server", &url, "dlq", "rm", "2"]);
    assert_eq!(rm.status.code(), Some(0), "{}", text(&rm));
    assert!(String::from_utf8_lossy(&rm.stdout).contains("removed dlq seq 2"));
    for args in [
        vec!["--server", url.as_str(), "dlq", "rm", "2"],
        vec!["--server", url.as_str(), "dlq", "replay", "--seq", "2"],
    ] {
        let o = herald(&args);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("no dead letter with sequence 2"),
            "{}",
            text(&o)
        );
    }
    // Only the original stored before dead-lettering: rm replayed nothing.
    assert_eq!(
        stream_messages(&url, "USAGE").await,
        1,
        "rm replayed nothing"
    );
    assert_eq!(stream_messages(&url, "DLQ").await, 1);
}

#[tokio::test]
async fn tail_escapes_control_characters_from_events() {
    let s = server().await;
    let url = s.url();
    let apply = herald(&["--server", &url, "streams", "apply"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let c = client(&url).await;
    let mut hm = async_nats_headers();
    hm.insert("X-Note", "\u{1b}[2Jgone");
    let body = usage_line(9).replace("model-gateway", "model\u{1b}[1Agateway");
    c.jetstream()
        .publish_with_headers("usage.metered.api_call", hm, body.into_bytes().into())
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
        "1",
        "--headers",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains('\u{1b}'), "{}", text(&o));
    assert!(out.contains("X-Note: \\u{1b}[2Jgone"), "{}", text(&o));
    assert!(out.contains("model\\u{1b}[1Agateway"), "{}", text(&o));
}

// ---- 24. Shutdown works while NATS is down ----

/// Bounds each wait on a `herald` child: for its exit after a signal, for a log line.
const LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits (bounded) for the child to exit; its exit code.
fn wait_exit(child: &mut Child) -> Option<i32> {
    wait_child(child, LIMIT).code()
}

/// Waits (bounded) until `path` contains `needle`.
fn wait_for_text(path: &std::path::Path, needle: &str) -> String {
    testing::wait_for_text(path, needle, LIMIT)
}

fn spawn_herald(args: &[&str], stderr: &std::path::Path) -> Child {
    spawn_logged(
        herald_command(env!("CARGO_BIN_EXE_herald")).args(args),
        stderr,
    )
}

/// `herald consume` as billing-service with a handler that always succeeds.
fn spawn_consume(url: &str, stderr: &std::path::Path) -> Child {
    let args = [
        "--server",
        url,
        "consume",
        "--service",
        "billing-service",
        "--subject",
        "usage.metered.>",
        "--shutdown-grace",
        "1s",
        "--exec",
        "true",
    ];
    spawn_herald(&args, stderr)
}

#[tokio::test]
async fn consume_exits_on_sigterm_while_nats_is_down() {
    let mut s = server().await;
    let url = s.url();
    let apply = herald(&["--server", &url, "streams", "apply"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("consume.err");
    let mut child = spawn_consume(&url, &log);
    wait_for_text(&log, "herald consume: billing-service--usage");
    s.kill_9().unwrap();
    signal(&child, "-TERM");
    let code = wait_exit(&mut child);
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(err.contains("shutting down"), "{err}");
    assert!(code == Some(0) || code == Some(2), "exit {code:?}: {err}");
}

#[tokio::test]
async fn watch_exits_on_a_second_sigterm_while_nats_is_down() {
    let mut s = server().await;
    let url = s.url();
    let apply = herald(&["--server", &url, "streams", "apply"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("watch.err");
    let mut child = spawn_herald(&["--server", &url, "watch"], &log);
    wait_for_text(&log, "watching");
    s.kill_9().unwrap();
    signal(&child, "-TERM");
    wait_for_text(&log, "herald watch: stopping");
    if child.try_wait().unwrap().is_none() {
        signal(&child, "-TERM");
    }
    let code = wait_exit(&mut child);
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(
        matches!(code, Some(0) | Some(2) | Some(130)),
        "exit {code:?}: {err}"
    );
}

/// Starts `herald serve` on a free port against `nats`, logging to `log`, and waits until
/// it accepts connections.
fn spawn_serve(nats: &str, extra: &[&str], log: &std::path::Path) -> (Child, std::net::SocketAddr) {
    let addr: std::net::SocketAddr =
        format!("127.0.0.1:{}", herald_test_server::free_port().unwrap())
            .parse()
            .unwrap();
    let listen = addr.to_string();
    let mut args = vec!["serve", "--server", nats, "--listen", listen.as_str()];
    args.extend_from_slice(extra);
    let mut child = spawn_herald(&args, log);
    for _ in 0..300 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return (child, addr);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "herald serve did not listen: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[tokio::test]
async fn serve_exits_on_sigterm_while_nats_is_down() {
    let mut s = server().await;
    let url = s.url();
    let apply = herald(&["--server", &url, "streams", "apply"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.err");
    let (mut child, _) = spawn_serve(&url, &["--drain-timeout", "1s"], &log);
    s.kill_9().unwrap();
    signal(&child, "-TERM");
    let code = wait_exit(&mut child);
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(err.contains("herald serve: draining"), "{err}");
    assert!(code == Some(0) || code == Some(2), "exit {code:?}: {err}");
}

#[tokio::test]
async fn serve_exits_at_once_on_a_second_signal_while_draining_with_nats_down() {
    use std::io::Read;
    let mut s = server().await;
    let url = s.url();
    let apply = herald(&["streams", "apply", "--server", &url]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.err");
    // Long budgets: only the second signal can end this process soon.
    let (mut child, addr) = spawn_serve(
        &url,
        &["--drain-timeout", "10m", "--body-timeout", "10m"],
        &log,
    );
    s.kill_9().unwrap();
    // A request in flight whose body is still arriving: the drain waits for it.
    // `Expect: 100-continue` proves the handler started reading it.
    let body = usage_line(1);
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "POST /v1/events/usage.metered.api_call HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut cont = [0u8; 25];
    conn.read_exact(&mut cont).unwrap();
    assert!(
        cont.starts_with(b"HTTP/1.1 100 Continue\r\n"),
        "{}",
        String::from_utf8_lossy(&cont)
    );
    conn.write_all(&body.as_bytes()[..10]).unwrap();
    signal(&child, "-TERM");
    wait_for_text(&log, "herald serve: draining");
    assert!(
        child.try_wait().unwrap().is_none(),
        "serve should still be draining the request in flight"
    );
    signal(&child, "-TERM");
    let code = wait_exit(&mut child);
    let err = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, Some(130), "{err}");
    assert!(
        err.contains("herald serve: second signal: exiting now"),
        "{err}"
    );
}

// ---- 15. Logs ----

#[tokio::test]
async fn consume_logs_a_failed_dead_letter_through_tracing() {
    let s = server().await;
    let url = s.url();
    let apply = herald(&["--server", &url, "streams", "apply"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let c = client(&url).await;
    c.jetstream().delete_stream("DLQ").await.unwrap();
    // Invalid (no tenant_id): it must be dead-lettered, and the DLQ is gone.
    c.jetstream()
        .publish(
            "usage.metered.api_call",
            br#"{"event_id":"550e8400-e29b-41d4-a716-446655440000"}"#
                .to_vec()
                .into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("consume.err");
    let mut child = spawn_consume(&url, &log);
    let err = wait_for_text(&log, "dead-letter publish failed; NAKed for redelivery");
    assert!(err.contains("ERROR"), "{err}");
    assert!(
        err.contains("reason=\"schema_invalid\"") || err.contains("reason=schema_invalid"),
        "{err}"
    );
    signal(&child, "-TERM");
    wait_exit(&mut child);
}
