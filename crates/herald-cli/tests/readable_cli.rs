//! A CLI that reads well (issue 15): help that shows only what a command takes, aligned
//! tables with human times, whole errors, guard rails on `consume`/`publish`, consumer and
//! stream removal with confirmation, colour only on a terminal, and dead letters reported
//! as they happen. Runtime tests start their own nats-server.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use herald_runtime::{ConnectConfig, HeraldClient};
use herald_test_server::testing::{
    herald_command, signal, spawn_logged, usage_event, wait_child, wait_until, ClosedPort,
};
use herald_test_server::NatsServer;

const LIMIT: Duration = Duration::from_secs(30);

fn herald() -> Command {
    let mut c = herald_command(env!("CARGO_BIN_EXE_herald"));
    c.stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    herald().args(args).output().expect("run herald")
}

/// `run`, killed and failed after a bound: for commands that would run on unchecked.
fn run_bounded(args: &[&str]) -> Output {
    let mut child = herald()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run herald");
    wait_child(&mut child, LIMIT);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(o), stderr(o));
    stdout(o)
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(o)).expect("JSON output")
}

async fn server() -> NatsServer {
    NatsServer::start()
        .await
        .expect("nats-server must be installed (apt-get install nats-server)")
}

async fn provisioned() -> NatsServer {
    let s = server().await;
    ok(&run(&["streams", "apply", "--server", &s.url()]));
    s
}

async fn client(url: &str) -> HeraldClient {
    HeraldClient::connect(ConnectConfig::default().url(url))
        .await
        .expect("connect")
}

/// Publishes `n` valid usage events through `herald publish`.
fn publish_usage(url: &str, dir: &Path, n: usize) {
    let lines: Vec<String> = (0..n)
        .map(|i| usage_event(&format!("readable-{i}")).to_string())
        .collect();
    let file = dir.join("usage.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    ok(&run(&[
        "publish",
        "--server",
        url,
        "--subject",
        "usage.metered.api_call",
        "--jsonl",
        file.to_str().unwrap(),
    ]));
}

/// Where each line's second column starts: after the first run of two or more spaces.
fn second_column(line: &str) -> usize {
    let gap = line
        .find("  ")
        .unwrap_or_else(|| panic!("one column only: {line:?}"));
    gap + line[gap..].len() - line[gap..].trim_start().len()
}

fn assert_aligned(table: &str) {
    let lines: Vec<&str> = table.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "a header and rows: {table}");
    let at = second_column(lines[0]);
    for l in &lines {
        assert_eq!(second_column(l), at, "misaligned row {l:?} in\n{table}");
    }
}

/// `5s ago`, `3m 12s ago`, `2h 5m ago`, `4d 1h ago`.
fn is_human_age(s: &str) -> bool {
    let Some(span) = s.strip_suffix(" ago") else {
        return false;
    };
    let parts: Vec<&str> = span.split(' ').collect();
    (1..=2).contains(&parts.len())
        && parts.iter().all(|p| {
            p.len() >= 2
                && p[..p.len() - 1].bytes().all(|b| b.is_ascii_digit())
                && matches!(p.as_bytes()[p.len() - 1], b's' | b'm' | b'h' | b'd')
        })
}

/// Waits (bounded) until the log file `log` holds `needle`; its first line that does.
async fn log_line(log: &Path, needle: &str) -> String {
    let read = || std::fs::read_to_string(log).unwrap_or_default();
    wait_until(&format!("a line with {needle:?}"), LIMIT, || {
        read().contains(needle)
    })
    .await;
    let text = read();
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap()
        .to_string()
}

fn kill(child: &mut Child) {
    signal(child, "-TERM");
    wait_child(child, LIMIT);
}

// ---- 1: connection options only where a command connects ----

#[test]
fn offline_commands_hide_the_connection_options_connecting_ones_group_them() {
    for cmd in [
        vec!["validate"],
        vec!["diff"],
        vec!["lock"],
        vec!["check"],
        vec!["catalog"],
        vec!["changelog"],
        vec!["docs"],
        vec!["asyncapi"],
        vec!["export"],
        vec!["auth", "generate"],
    ] {
        let mut args = cmd.clone();
        args.push("--help");
        let help = ok(&run(&args));
        for flag in [
            "--server <URL>",
            "--tls-ca <FILE>",
            "--creds <FILE>",
            "--nkey <FILE>",
            "--connect-timeout <SECS>",
            "NATS_URL",
        ] {
            assert!(
                !help.contains(flag),
                "`herald {cmd:?} --help` shows {flag}:\n{help}"
            );
        }
    }
    for cmd in [
        vec!["publish"],
        vec!["consume"],
        vec!["tail"],
        vec!["lag"],
        vec!["watch"],
        vec!["serve"],
        vec!["streams", "ls"],
        vec!["dlq", "ls"],
        vec!["consumers", "rm"],
        vec!["consumers", "ls"],
        vec!["streams", "rm"],
        vec!["demo"],
        vec!["bench", "publish"],
    ] {
        let mut args = cmd.clone();
        args.push("--help");
        let help = ok(&run(&args));
        let heading = help.find("Connection options:").unwrap_or_else(|| {
            panic!("`herald {cmd:?} --help` has no Connection heading:\n{help}")
        });
        let options = &help[heading..];
        for flag in ["--server", "--tls-ca", "--tls-cert", "--creds", "--nkey"] {
            assert!(
                options.contains(flag),
                "{cmd:?}: {flag} not under the heading:\n{help}"
            );
        }
        assert!(options.contains("[env: NATS_URL=]"), "{cmd:?}:\n{help}");
        // The heading holds the connection options and nothing else.
        let connection = [
            "--server",
            "--creds",
            "--connect-timeout",
            "--user",
            "--password-file",
            "--token-file",
            "--nkey",
            "--tls-ca",
            "--tls-cert",
            "--tls-key",
        ];
        for line in options
            .lines()
            .skip(1)
            .take_while(|l| l.is_empty() || l.starts_with(' '))
        {
            let Some(flag) = line.trim_start().strip_prefix("--") else {
                continue;
            };
            let flag = format!("--{}", flag.split([' ', '=']).next().unwrap());
            assert!(
                connection.contains(&flag.as_str()),
                "{cmd:?}: {flag} under Connection options:\n{help}"
            );
        }
    }
    // An offline command refuses a connection option, wherever it is written.
    for args in [
        ["--server", "nats://127.0.0.1:1", "catalog"],
        ["catalog", "--server", "nats://127.0.0.1:1"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("unexpected argument '--server'"),
            "{}",
            stderr(&o)
        );
    }
}

#[tokio::test]
async fn connection_options_work_before_or_after_the_subcommand_and_from_nats_url() {
    let s = provisioned().await;
    let url = s.url();
    let names = |o: &Output| -> Vec<String> {
        json(o)
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    let before = names(&run(&[
        "--server", &url, "--format", "json", "streams", "ls",
    ]));
    assert!(before.contains(&"USAGE".to_string()), "{before:?}");
    let after = names(&run(&[
        "--format", "json", "streams", "ls", "--server", &url,
    ]));
    let between = names(&run(&[
        "streams", "--server", &url, "ls", "--format", "json",
    ]));
    let from_env = names(
        &herald()
            .env("NATS_URL", &url)
            .args(["--format", "json", "streams", "ls"])
            .output()
            .unwrap(),
    );
    let inline = names(&run(&[
        "--format=json",
        &format!("--server={url}"),
        "streams",
        "ls",
    ]));
    assert_eq!(inline, before);
    assert_eq!(after, before);
    assert_eq!(between, before);
    assert_eq!(from_env, before);
}

#[test]
fn an_unreachable_server_is_one_line_that_says_what_failed_and_what_to_do() {
    // Held bound and closed for the whole test: nothing can start listening on it.
    let port = ClosedPort::bind();
    let url = port.url();
    let o = run(&["streams", "ls", "--server", &url]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!(
            "error: cannot connect to {url}: connection refused \
             (is nats-server running? pass --server URL)\n"
        )
    );
    let refused = stderr(&o)
        .to_lowercase()
        .matches("connection refused")
        .count();
    assert_eq!(refused, 1, "{}", stderr(&o));
}

// ---- 2 and 4: aligned tables, human times, herald's own consumers hidden ----

#[tokio::test]
async fn tables_align_long_names_show_ages_and_lag_hides_ephemeral_consumers() {
    let s = provisioned().await;
    let url = s.url();
    let dir = tempfile::tempdir().unwrap();
    publish_usage(&url, dir.path(), 2);
    // A long durable name with a delivery (so it has a last activity).
    let long = "billing-service--usage_metered_api_call";
    let c = client(&url).await;
    let stream = c.jetstream().get_stream("USAGE").await.unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some(long.into()),
            filter_subject: "usage.metered.api_call".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut batch = consumer.fetch().max_messages(1).messages().await.unwrap();
    use futures::StreamExt;
    let m = batch.next().await.unwrap().unwrap();
    m.ack().await.unwrap();

    let lag = ok(&run(&["lag", "--server", &url]));
    assert_aligned(&lag);
    let row = lag
        .lines()
        .find(|l| l.contains(long))
        .unwrap_or_else(|| panic!("{long} missing:\n{lag}"));
    let last = row
        .rsplit("  ")
        .map(str::trim)
        .find(|c| !c.is_empty())
        .unwrap();
    assert!(is_human_age(last), "last activity {last:?} in {row:?}");
    assert!(lag.contains("HERALD_HEARTBEAT"), "{lag}");

    let streams = ok(&run(&["streams", "ls", "--server", &url]));
    assert_aligned(&streams);
    assert!(streams.contains("HERALD_HEARTBEAT"), "{streams}");
    let usage = streams.lines().find(|l| l.starts_with("USAGE ")).unwrap();
    let last = usage
        .rsplit("  ")
        .map(str::trim)
        .find(|c| !c.is_empty())
        .unwrap();
    assert!(is_human_age(last), "last event {last:?} in {usage:?}");
    let consumers = ok(&run(&["consumers", "ls", "--server", &url]));
    assert_aligned(&consumers);
    let catalog = ok(&run(&["catalog"]));
    let consumers_table = &catalog[catalog.find("CONSUMER ").unwrap()..];
    let consumers_table = &consumers_table[..consumers_table.find("\n\n").unwrap()];
    assert_aligned(consumers_table);

    // `herald tail` follows with an ephemeral consumer: lag leaves it out unless --all.
    let mut tail = herald()
        .args(["tail", "usage.metered.>", "--server", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ephemeral = |o: &Output| {
        json(o)
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["ephemeral"] == true)
            .count()
    };
    wait_until("tail's consumer", LIMIT, || {
        ephemeral(&run(&[
            "lag", "--all", "--format", "json", "--server", &url,
        ])) == 1
    })
    .await;
    assert_eq!(
        ephemeral(&run(&["lag", "--format", "json", "--server", &url])),
        0
    );
    let hidden = ok(&run(&["lag", "--server", &url]));
    assert!(!hidden.contains("ephemeral"), "{hidden}");
    let shown = ok(&run(&["lag", "--all", "--server", &url]));
    assert_eq!(shown.matches("(ephemeral)").count(), 1, "{shown}");
    assert_aligned(&shown);
    kill(&mut tail);
}

// ---- 3 and 12: whole errors in `dlq ls`, dead letters reported as they happen ----

#[tokio::test]
async fn consume_reports_each_dead_letter_and_dlq_ls_wide_shows_the_whole_error() {
    let s = provisioned().await;
    let url = s.url();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("consume.err");
    let tail = "the tenant account 789e0123 is closed and cannot be billed";
    let error = format!("{} END-OF-ERROR", tail.repeat(4));
    let script = format!("cat > /dev/null; echo '{error}' >&2; exit 1");
    let mut consume = spawn_logged(
        herald().args([
            "consume",
            "--server",
            &url,
            "--service",
            "billing-service",
            "--subject",
            "usage.metered.>",
            "--exec",
            &script,
        ]),
        &log,
    );
    // An invalid event, straight onto the stream (herald publish would refuse it).
    let c = client(&url).await;
    let mut bad = usage_event("invalid-one");
    bad["quantity"] = serde_json::json!("many");
    c.jetstream()
        .publish("usage.metered.api_call", bad.to_string().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let line = log_line(&log, "dead-lettered:").await;
    assert!(
        line.starts_with("dead-lettered: usage.metered.api_call #1 (schema_invalid): "),
        "{line}"
    );
    assert!(line.contains("quantity"), "{line}");
    // A handler rejection with a long error.
    publish_usage(&url, dir.path(), 1);
    let line = log_line(&log, "(handler_rejected)").await;
    assert!(
        line.starts_with("dead-lettered: usage.metered.api_call #2 (handler_rejected): "),
        "{line}"
    );
    assert!(line.contains(tail), "{line}");
    kill(&mut consume);

    let wide = ok(&run(&["dlq", "ls", "--wide", "--server", &url]));
    let row = wide
        .lines()
        .find(|l| l.contains("handler_rejected"))
        .unwrap_or_else(|| panic!("{wide}"));
    assert!(row.contains(&error), "the whole error on one line: {row:?}");
    assert!(row.trim_end().ends_with("END-OF-ERROR"), "{row:?}");
    // Piped without --wide, the error is whole too (nothing to wrap to).
    assert!(ok(&run(&["dlq", "ls", "--server", &url])).contains(&error));
    // Right-aligned sequence numbers first: every row's subject starts under SUBJECT.
    let header = wide.lines().next().unwrap();
    for row in wide.lines().skip(1).filter(|l| l.contains("usage.metered")) {
        assert_eq!(row.find("usage.metered"), header.find("SUBJECT"), "{wide}");
        assert_eq!(
            row.find("billing-service"),
            header.find("CONSUMER"),
            "{wide}"
        );
    }
    for row in wide.lines().skip(1).filter(|l| l.contains("usage.metered")) {
        assert!(
            row.split("  ").map(str::trim).any(is_human_age),
            "no human time in {row:?}"
        );
    }
}

// ---- 5: tail --no-follow ----

#[tokio::test]
async fn tail_no_follow_prints_what_is_stored_and_exits() {
    let s = provisioned().await;
    let url = s.url();
    let dir = tempfile::tempdir().unwrap();
    let run_tail = |args: &[&str]| {
        let mut child = herald()
            .args(["tail", "--server", &url])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_child(&mut child, LIMIT);
        let out = child.wait_with_output().unwrap();
        (
            status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // Nothing stored: ends at once.
    let (code, out) = run_tail(&["usage.metered.>", "--no-follow"]);
    assert_eq!((code, out.as_str()), (Some(0), ""));
    publish_usage(&url, dir.path(), 3);
    let (code, out) = run_tail(&["usage.metered.>", "--no-follow"]);
    assert_eq!(code, Some(0), "{out}");
    let events: Vec<&str> = out.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(
        events,
        [
            "#1 usage.metered.api_call ok",
            "#2 usage.metered.api_call ok",
            "#3 usage.metered.api_call ok"
        ],
        "{out}"
    );
    // --count above what is stored: --no-follow still ends with what there is.
    let (code, out) = run_tail(&["usage.metered.>", "--no-follow", "--count", "10"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().filter(|l| l.starts_with('#')).count(), 3);
    let (_, out) = run_tail(&["usage.metered.>", "--no-follow", "--last", "1"]);
    assert_eq!(out.lines().next(), Some("#3 usage.metered.api_call ok"));
}

// ---- 6 and 7: consume and publish only as the catalog declares ----

#[tokio::test]
async fn consume_refuses_an_undeclared_consumer_unless_adhoc() {
    let s = provisioned().await;
    let url = s.url();
    let o = run_bounded(&[
        "consume",
        "--server",
        &url,
        "--service",
        "nobody",
        "--subject",
        "usage.metered.>",
        "--exec",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains(
            "the catalog declares no consumer nobody on `usage.metered.>`; declared consumers of \
             `usage.metered.>`: billing-service--usage (usage.metered.>), analytics-service--usage \
             (usage.metered.>)"
        ),
        "{err}"
    );
    assert!(err.contains("--adhoc"), "{err}");
    // A declared service with a filter it does not declare.
    let o = run_bounded(&[
        "consume",
        "--server",
        &url,
        "--service",
        "billing-service",
        "--subject",
        "usage.metered.api_call",
        "--exec",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("billing-service's declared consumers: billing-service--ingest"),
        "{}",
        stderr(&o)
    );
    let names = || -> Vec<String> {
        json(&run(&[
            "consumers",
            "ls",
            "--format",
            "json",
            "--server",
            &url,
        ]))
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["consumer"].as_str().unwrap().to_string())
        .collect()
    };
    assert!(
        !names().iter().any(|n| n.starts_with("nobody")),
        "{:?}",
        names()
    );
    // --adhoc consumes anyway, with a durable of its own.
    let mut adhoc = herald()
        .args([
            "consume",
            "--server",
            &url,
            "--service",
            "nobody",
            "--subject",
            "usage.metered.>",
            "--exec",
            "cat > /dev/null",
            "--adhoc",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the ad hoc durable", LIMIT, || {
        names().contains(&"nobody--usage_metered_all".to_string())
    })
    .await;
    kill(&mut adhoc);
    let listed = ok(&run(&["consumers", "ls", "--server", &url]));
    let row = listed.lines().find(|l| l.contains("nobody--")).unwrap();
    assert!(row.contains("no (ad hoc)"), "{row}");
}

#[test]
fn publish_refuses_a_service_that_does_not_produce_the_subject() {
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("ev.json");
    std::fs::write(&ev, usage_event("producer").to_string()).unwrap();
    // Refused before connecting: the server address is never used.
    let o = run(&[
        "publish",
        "--server",
        "nats://127.0.0.1:1",
        "--subject",
        "ingest.document.processed",
        "--service",
        "billing-service",
        ev.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(
            "billing-service is not a declared producer of ingest.document.processed; its \
             producers: ingestion-service (or pass --adhoc)"
        ),
        "{err}"
    );
}

// ---- 8: consumers ls|rm, streams rm ----

#[tokio::test]
async fn consumers_and_streams_are_removed_only_when_confirmed() {
    let s = provisioned().await;
    let url = s.url();
    let listed = json(&run(&[
        "consumers",
        "ls",
        "--format",
        "json",
        "--server",
        &url,
    ]));
    let rows = listed.as_array().unwrap();
    let durable = |name: &str| {
        rows.iter()
            .find(|r| r["consumer"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {listed}"))
            .clone()
    };
    let usage = durable("billing-service--usage");
    assert_eq!(usage["stream"], "USAGE");
    assert_eq!(usage["declared"], true);
    assert_eq!(usage["filters"], serde_json::json!(["usage.metered.>"]));
    // Its replay durable is herald's own too, not an ad-hoc consumer.
    let replays = durable("billing-service--usage--replay");
    assert_eq!(replays["stream"], "HERALD_REPLAY");
    assert_eq!(replays["declared"], true);
    durable("audit-log--steps");
    let text = ok(&run(&["consumers", "ls", "--server", &url]));
    assert!(text.contains("billing-service--usage"), "{text}");
    assert_aligned(&text);

    let c = client(&url).await;
    let exists = |stream: &'static str, name: &'static str| {
        let c = c.clone();
        async move {
            match c.jetstream().get_stream(stream).await {
                Ok(s) => s.consumer_info(name).await.is_ok(),
                Err(_) => false,
            }
        }
    };
    // Not a terminal and no --yes: refused, nothing removed.
    let o = run(&[
        "consumers",
        "rm",
        "billing-service--usage",
        "--server",
        &url,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "refusing to delete consumer billing-service--usage on stream USAGE without \
             confirmation: standard input is not a terminal (pass --yes)"
        ),
        "{}",
        stderr(&o)
    );
    assert!(exists("USAGE", "billing-service--usage").await);
    let o = run(&[
        "consumers",
        "rm",
        "no-such-consumer",
        "--yes",
        "--server",
        &url,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no consumer no-such-consumer on the server"));

    let o = run(&[
        "consumers",
        "rm",
        "billing-service--usage",
        "--yes",
        "--server",
        &url,
    ]);
    assert_eq!(
        ok(&o).trim(),
        "deleted consumer billing-service--usage on stream USAGE"
    );
    assert!(!exists("USAGE", "billing-service--usage").await);
    assert!(exists("USAGE", "analytics-service--usage").await);

    let o = run(&["streams", "rm", "REALTIME", "--server", &url]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(c.jetstream().get_stream("REALTIME").await.is_ok());
    ok(&run(&[
        "streams", "rm", "REALTIME", "--yes", "--server", &url,
    ]));
    assert!(c.jetstream().get_stream("REALTIME").await.is_err());
    assert!(c.jetstream().get_stream("USAGE").await.is_ok());
}

// ---- 9: colour only on a terminal ----

#[tokio::test]
async fn watch_writes_no_colour_codes_into_a_redirected_stderr() {
    let s = provisioned().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("watch.err");
    // Colour allowed by the environment: only the redirect should turn it off.
    let mut watch = spawn_logged(
        herald()
            .env_remove("NO_COLOR")
            .env("RUST_LOG", "debug")
            .args(["watch", "--server", &s.url()]),
        &log,
    );
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until("watch's first log lines", LIMIT, || {
        let t = read();
        t.contains("watching") && t.contains("DEBUG")
    })
    .await;
    kill(&mut watch);
    let text = read();
    assert!(
        !text.contains("\x1b["),
        "ANSI codes in redirected stderr:\n{text}"
    );
}

// ---- 10: the changelog path ----

#[test]
fn changelog_help_names_the_path_the_readme_uses() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let at = readme
        .find("herald changelog > ")
        .expect("the README shows where the changelog goes");
    let path: String = readme[at + "herald changelog > ".len()..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '`')
        .collect();
    assert!(path.ends_with(".md"), "{path}");
    let help = ok(&run(&["changelog", "--help"]));
    assert!(
        help.contains(&format!("herald changelog > {path}")),
        "help does not name {path}:\n{help}"
    );
}
