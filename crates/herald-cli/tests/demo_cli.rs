//! `herald demo` end to end: a short run on its own embedded nats-server must
//! balance its books, show every injected fault at least once, and leave an
//! audit log holding exactly the events it should. And `herald bench all`
//! with few events: it runs and prints every row as JSON (no timing checks).

use std::collections::HashSet;
use std::process::{Output, Stdio};
use std::time::Duration;

use herald_test_server::testing::{herald_command, signal, wait_child, StderrLines};
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
    // (billing-service and analytics-service on usage.metered.>), and a second
    // stored copy of one (sent twice) once more by each.
    assert_eq!(f["bare_json_subscribers"], 2);
    assert_eq!(
        f["bare_json_dead_lettered"].as_u64().unwrap(),
        2 * (f["bare_json_invalid"].as_u64().unwrap()
            + f["bare_json_invalid_resent"].as_u64().unwrap())
    );
    assert_json_figures_agree(&r);
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
    // Publish: herald against a raw publish of the same message (with a goal), and
    // against a bare raw publish (for reading, no goal).
    let publish: Vec<&Value> = rows.iter().filter(|x| x["group"] == "publish").collect();
    assert_eq!(publish.len(), 2, "{publish:?}");
    let same = publish[0]["name"].as_str().unwrap();
    assert!(
        same.starts_with("pipelined, 256 in flight, 512 B + ") && same.ends_with(" B headers"),
        "{same}"
    );
    assert_eq!(publish[0]["goal"], ">= 0.8");
    assert_eq!(publish[1]["name"], "raw bare (Nats-Msg-Id only) vs herald");
    assert!(publish[1]["goal"].is_null(), "{}", publish[1]);
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

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn sum_map(v: &Value) -> u64 {
    v.as_object().unwrap().values().map(num).sum()
}

/// The JSON summary's figures agree with each other: totals against the per-subject and
/// per-service rows, dead letters against the books, and the books add up.
fn assert_json_figures_agree(r: &Value) {
    let t = &r["totals"];
    let b = &r["books"];
    let subjects = r["subjects"].as_array().unwrap();
    let services = r["services"].as_array().unwrap();
    let col = |rows: &[Value], f: &str| rows.iter().map(|x| num(&x[f])).sum::<u64>();
    assert_eq!(num(&t["events_stored"]), col(subjects, "published"), "{t}");
    assert_eq!(num(&t["events_stored"]), col(services, "published"), "{t}");
    assert_eq!(num(&t["deliveries_processed"]), col(subjects, "consumed"));
    assert_eq!(num(&t["deliveries_processed"]), col(services, "processed"));
    assert_eq!(
        col(subjects, "refused_invalid"),
        col(services, "refused"),
        "refusals per subject and per producer"
    );
    let dl_subjects: u64 = subjects.iter().map(|x| sum_map(&x["dead_lettered"])).sum();
    let dl_services: u64 = services.iter().map(|x| sum_map(&x["dead_lettered"])).sum();
    assert_eq!(num(&t["dead_letters"]), sum_map(&r["dlq"]));
    assert_eq!(num(&t["dead_letters"]), dl_subjects);
    assert_eq!(num(&t["dead_letters"]), dl_services);
    assert_eq!(
        num(&t["dead_letters"]),
        num(&t["dead_letter_pairs"]) + num(&t["dead_letter_repeats"])
    );
    assert_eq!(
        num(&t["dead_letter_pairs"]),
        num(&b["dead_lettered"]),
        "{b}"
    );
    assert_eq!(
        num(&b["pairs"]),
        num(&b["processed_once"])
            + num(&b["dead_lettered"])
            + num(&b["lost"])
            + num(&b["processed_twice"])
    );
    assert_eq!(num(&b["processed_once"]), num(&t["deliveries_processed"]));
    // The producers have rows of their own.
    for p in [
        "ingestion-service",
        "orchestrator",
        "model-gateway",
        "realtime-gateway",
        "legacy-usage-reporter",
    ] {
        let row = services
            .iter()
            .find(|s| s["service"] == p)
            .unwrap_or_else(|| panic!("no row for producer {p}"));
        assert_eq!(row["role"], "producer", "{row}");
        assert!(num(&row["published"]) > 0, "{row}");
    }
}

/// The integers in `s`, in order (thousands are never separated in the demo's output).
fn ints(s: &str) -> Vec<u64> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect()
}

/// The line of `text` starting with `prefix` (after spaces), or a failure naming it.
fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .map(str::trim_start)
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{text}"))
}

/// The rows of the table under `title` (up to the first blank line), split on runs of spaces.
fn table_rows(text: &str, title: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines().skip_while(|l| l.trim() != title).skip(1);
    let split = |l: &str| -> Vec<String> {
        l.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect()
    };
    let header = split(lines.next().unwrap_or_else(|| panic!("no table {title}")));
    let rows = lines
        .take_while(|l| !l.trim().is_empty())
        .map(split)
        .collect();
    (header, rows)
}

fn column(header: &[String], rows: &[Vec<String>], name: &str) -> Vec<String> {
    let i = header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("{name}"));
    rows.iter().map(|r| r[i].clone()).collect()
}

fn sum_col(header: &[String], rows: &[Vec<String>], name: &str) -> u64 {
    column(header, rows, name)
        .iter()
        .filter(|c| *c != "-")
        .map(|c| c.parse::<u64>().unwrap_or_else(|_| panic!("{name}: {c}")))
        .sum()
}

/// The text summary read as a new user would, with the arithmetic checked: the last
/// progress line, the tables, the fault lines and the books all tell the same story.
#[test]
fn demo_text_summary_figures_agree_and_it_says_what_it_proved() {
    let dir = tempfile::tempdir().unwrap();
    let o = herald_command(env!("CARGO_BIN_EXE_herald"))
        .current_dir(dir.path())
        .args(["demo", "--duration", "4s", "--rate", "100"])
        .output()
        .expect("run herald");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let err = String::from_utf8_lossy(&o.stderr).to_string();

    // What ran it, in words: a child process, not "embedded".
    let head = out.lines().next().unwrap();
    assert!(
        head.contains("a nats-server child process herald started at nats://127.0.0.1:"),
        "{head}"
    );
    assert!(!out.contains("embedded"), "{out}");

    // The totals, the last progress line and the tables agree.
    let totals = ints(line(&out, "totals:"));
    let (stored, processed, dead) = (totals[0], totals[1], totals[2]);
    assert!(stored > 0 && processed > 0 && dead > 0, "{out}");
    let done = err
        .lines()
        .rev()
        .find(|l| l.starts_with("done"))
        .unwrap_or_else(|| panic!("no final progress line:\n{err}"));
    let after = |label: &str| ints(done.split(label).nth(1).unwrap())[0];
    assert_eq!(after("events stored"), stored, "{done}");
    assert_eq!(after("deliveries processed"), processed, "{done}");
    assert_eq!(after("dead letters"), dead, "{done}");

    let (h, rows) = table_rows(&out, "Per subject");
    assert_eq!(sum_col(&h, &rows, "PUBLISHED"), stored);
    assert_eq!(sum_col(&h, &rows, "CONSUMED"), processed);
    let dl_subjects: u64 = column(&h, &rows, "DEAD-LETTERED")
        .iter()
        .map(|c| ints(c).iter().sum::<u64>())
        .sum();
    assert_eq!(dl_subjects, dead);
    // Every P99 of a second or more carries a note explaining it.
    for p in column(&h, &rows, "P99 ms") {
        let ms: f64 = p.split(' ').next().unwrap().parse().unwrap_or(0.0);
        if ms >= 1000.0 {
            let n = p
                .split('[')
                .nth(1)
                .expect("a note mark")
                .trim_end_matches(']');
            let note = line(&out, &format!("[{n}]"));
            assert!(note.contains("deliveries took over 1s"), "{note}");
        }
    }

    let (h, rows) = table_rows(&out, "Per service");
    assert_eq!(sum_col(&h, &rows, "PUBLISHED"), stored);
    assert_eq!(sum_col(&h, &rows, "PROCESSED"), processed);
    let names = column(&h, &rows, "SERVICE");
    let roles = column(&h, &rows, "ROLE");
    for p in [
        "ingestion-service",
        "orchestrator",
        "model-gateway",
        "realtime-gateway",
        "legacy-usage-reporter",
    ] {
        let i = names
            .iter()
            .position(|n| n == p)
            .unwrap_or_else(|| panic!("no row {p}:\n{out}"));
        assert_eq!(roles[i], "producer");
    }
    let refused = sum_col(&h, &rows, "REFUSED");
    assert_eq!(
        ints(line(&out, "invalid events refused at publish:"))[0],
        refused
    );

    // Invalid bare events: one dead letter per subscribing consumer, and the sum adds up.
    let bare = line(&out, "bare JSON from a non-herald producer:");
    assert!(bare.contains("one per subscribing consumer"), "{bare}");
    let n = ints(bare);
    let (invalid, letters, times, subscribers) = (n[1], n[2], n[3], n[4]);
    assert_eq!((times, subscribers), (invalid, 2), "{bare}");
    let repeats = if n.len() > 5 { n[5] } else { 0 };
    assert_eq!(letters, invalid * subscribers + repeats, "{bare}");

    // The DLQ line against the books.
    let dlq = line(&out, "dead-letter queue:");
    let d = ints(dlq);
    assert_eq!(d[0], dead, "{dlq}");
    let pairs_at = dlq.find("(event, consumer) pairs").unwrap();
    let pairs = *ints(&dlq[..pairs_at]).last().unwrap();
    let repeats: u64 = ints(&dlq[pairs_at..]).iter().sum();
    assert_eq!(pairs + repeats, dead, "{dlq}");
    let books = ints(line(&out, "books:"));
    assert_eq!(books.len(), 5, "pairs, once, dead-lettered, lost, twice");
    assert_eq!(books[0], books[1] + books[2] + books[3] + books[4]);
    assert_eq!(books[1], processed);
    assert_eq!(books[2], pairs);
    assert_eq!((books[3], books[4]), (0, 0));

    // The run ends with one sentence saying what it proved.
    let last = out.trim_end().lines().last().unwrap();
    assert_eq!(
        last,
        format!(
            "Every one of the {stored} events reached each of its consumers exactly once or sits \
in the dead-letter queue with a reason: lost 0, processed twice 0."
        )
    );
}

/// SIGTERM mid-run: producing stops, the consumers drain, the books are printed, and
/// the process is gone within its drain timeout (the wait below is a generous cap).
#[test]
fn demo_stops_on_sigterm_within_its_drain_timeout_and_prints_its_books() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = herald_command(env!("CARGO_BIN_EXE_herald"))
        .current_dir(dir.path())
        .args([
            "demo",
            "--duration",
            "120s",
            "--rate",
            "100",
            "--drain-timeout",
            "15s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run herald");
    let stderr = StderrLines::take(&mut child);
    // Wait until it is producing and some events are stored.
    stderr.wait_for("running progress", Duration::from_secs(60), |l| {
        l.starts_with("running") && !l.contains("events stored 0 ")
    });
    signal(&child, "-TERM");
    let status = wait_child(&mut child, Duration::from_secs(15 + 30));
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    let rest = stderr.rest();
    assert_eq!(status.code(), Some(0), "{out}\n{rest:?}");
    assert!(
        rest.iter().any(|l| l.starts_with("stopping: draining")),
        "{rest:?}"
    );
    assert!(out.contains("lost: 0, processed twice: 0"), "{out}");
    let last = out.trim_end().lines().last().unwrap();
    assert!(last.starts_with("Every one of the "), "{last}");
    // The child server is gone with its store.
    assert!(!dir.path().join(".herald/demo").exists());
}

/// A second signal does not wait for the drain: the process exits at once with 130,
/// after stopping its child server and removing the run directory.
#[test]
fn demo_exits_at_once_on_a_second_signal() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = herald_command(env!("CARGO_BIN_EXE_herald"))
        .current_dir(dir.path())
        .args(["demo", "--duration", "120s", "--drain-timeout", "120s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run herald");
    let stderr = StderrLines::take(&mut child);
    let wait_for = |prefix: &str| {
        stderr.wait_for(&format!("{prefix:?}"), Duration::from_secs(60), |l| {
            l.starts_with(prefix)
        })
    };
    wait_for("running");
    signal(&child, "-TERM");
    wait_for("stopping: draining");
    signal(&child, "-TERM");
    // Far less than the 120 s drain timeout.
    let status = wait_child(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(130));
    let rest = stderr.rest();
    assert!(rest.iter().any(|l| l.contains("second signal")), "{rest:?}");
    assert!(!dir.path().join(".herald/demo").exists());
}

/// `--cluster 3`: three child servers, R3 streams, the USAGE leader killed mid-run.
/// The leader moves, the stall is measured, and the books still balance.
#[test]
fn cluster_demo_survives_the_usage_leader_being_killed() {
    let dir = tempfile::tempdir().unwrap();
    let o = herald_command(env!("CARGO_BIN_EXE_herald"))
        .current_dir(dir.path())
        .args([
            "demo",
            "--cluster",
            "3",
            "--duration",
            "10s",
            "--rate",
            "100",
            "--drain-timeout",
            "60s",
        ])
        .output()
        .expect("run herald");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        out.lines()
            .next()
            .unwrap()
            .contains("a cluster of 3 nats-server child processes"),
        "{out}"
    );
    let killed = line(&out, "stream leader killed:");
    assert!(
        killed.contains("leader of USAGE (R3 on 3 nodes), kill -9 at"),
        "{killed}"
    );
    let old = killed
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches(',')
        .to_string();
    assert!(["n1", "n2", "n3"].contains(&old.as_str()), "{killed}");
    // "leader moved: n2 -> n1, 1.23s after the kill"
    let moved = line(&out, "leader moved:");
    let words: Vec<&str> = moved.split_whitespace().collect();
    assert_eq!(words[2], old, "{moved}");
    assert_eq!(words[3], "->", "{moved}");
    let new = words[4].trim_end_matches(',');
    assert!(["n1", "n2", "n3"].contains(&new) && new != old, "{moved}");
    let after: f64 = words[5].trim_end_matches('s').parse().unwrap();
    assert!(after > 0.0, "{moved}");
    let stall = line(&out, "publishing to USAGE stalled:");
    // "9.03s (longest gap ...)", or "at least 7.10s (nothing stored ...)" when the
    // leader moved after producing ended.
    let seconds: f64 = stall
        .split_whitespace()
        .find_map(|w| w.strip_suffix('s')?.parse().ok())
        .unwrap_or_else(|| panic!("no stall figure: {stall}"));
    assert!(seconds > 0.0, "{stall}");
    assert!(out.contains("\nlost: 0, processed twice: 0\n"), "{out}");
    // The audit log's directory goes too (the servers' stores were temporary).
    assert!(!dir.path().join(".herald/demo").exists());
}

/// `bench consume --workers` (alone: 1, 2, 4): the workers on one durable split the
/// events between them, every worker gets some, and no event is handled twice.
#[test]
fn bench_consume_workers_share_one_durable() {
    let o = herald_command(env!("CARGO_BIN_EXE_herald"))
        .args([
            "--format",
            "json",
            "bench",
            "consume",
            "--workers",
            "--events",
            "300",
        ])
        .output()
        .expect("run herald");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let rows = r["rows"].as_array().unwrap();
    let counts: Vec<u64> = rows.iter().map(|x| num(&x["workers"])).collect();
    assert_eq!(counts, [1, 2, 4]);
    for row in rows {
        assert_eq!(num(&row["published"]), 300, "{row}");
        let per: Vec<u64> = row["per_worker"]
            .as_array()
            .unwrap()
            .iter()
            .map(num)
            .collect();
        assert_eq!(per.len() as u64, num(&row["workers"]), "{row}");
        assert_eq!(per.iter().sum::<u64>(), 300, "each event once: {row}");
        assert!(per.iter().all(|n| *n > 0), "every worker got some: {row}");
        assert_eq!(num(&row["handled_twice"]), 0, "{row}");
        assert!(row["events_per_sec"].as_f64().unwrap() > 0.0, "{row}");
    }
    assert!(
        r["note"]
            .as_str()
            .unwrap()
            .contains("show the mechanism (the work is split, nothing is handled twice) rather than the scale"),
        "{r}"
    );

    // The text table says the same, and refuses a zero count.
    let o = herald_command(env!("CARGO_BIN_EXE_herald"))
        .args(["bench", "consume", "--workers", "0,2", "--events", "10"])
        .output()
        .expect("run herald");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("every --workers count must be at least 1"),
        "{}",
        text(&o)
    );
}

/// `bench publish --cluster 3`: R1 and R3 measured in the same run, with their ratio.
#[test]
fn bench_publish_cluster_reports_r1_against_r3() {
    let o = herald_command(env!("CARGO_BIN_EXE_herald"))
        .args([
            "--format",
            "json",
            "bench",
            "publish",
            "--cluster",
            "3",
            "--events",
            "200",
            "--rounds",
            "2",
        ])
        .output()
        .expect("run herald");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let rep = &r["report"];
    assert_eq!(rep["nodes"], 3);
    assert_eq!(rep["events"], 200);
    let rows = rep["rows"].as_array().unwrap();
    let replicas: Vec<u64> = rows.iter().map(|x| num(&x["replicas"])).collect();
    assert_eq!(replicas, [1, 3]);
    let f = |v: &Value| v.as_f64().unwrap();
    for row in rows {
        assert!(
            f(&row["raw_eps"]) > 0.0 && f(&row["herald_eps"]) > 0.0,
            "{row}"
        );
        let ratio = f(&row["herald_eps"]) / f(&row["raw_eps"]);
        assert!((f(&row["ratio"]) - ratio).abs() < 1e-9, "{row}");
    }
    let herald = f(&rows[1]["herald_eps"]) / f(&rows[0]["herald_eps"]);
    let raw = f(&rows[1]["raw_eps"]) / f(&rows[0]["raw_eps"]);
    assert!(
        (f(&rep["r3_over_r1_herald"]) - herald).abs() < 1e-9,
        "{rep}"
    );
    assert!((f(&rep["r3_over_r1_raw"]) - raw).abs() < 1e-9, "{rep}");

    // Only a three-node cluster.
    for cmd in [
        vec!["bench", "publish", "--cluster", "2"],
        vec!["demo", "--cluster", "5"],
    ] {
        let o = herald_command(env!("CARGO_BIN_EXE_herald"))
            .args(&cmd)
            .output()
            .expect("run herald");
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("--cluster"),
            "{}",
            text(&o)
        );
    }
}
