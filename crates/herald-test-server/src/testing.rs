//! Test support shared by every herald test suite, kept in one place so that a
//! fix to a wait or a fixture reaches all of them: bounded condition waits, a
//! port that is held but refuses connections, an isolated `herald` command and
//! its signals and log lines, a directory copy, and events and catalogs taken
//! from the shipped contracts.
//!
//! Events come from `contracts/examples/*/valid/` (compiled in through
//! [`ContractFiles::embedded`]), so a test event is valid under the real
//! schemas by construction and breaks loudly when a schema change makes the
//! shipped examples invalid.

use std::ffi::OsStr;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use herald_contracts::{Catalog, ContractFiles};
use serde_json::Value;
/// For `catalog_with` callers, which edit a `toml::Table`.
pub use toml;

use crate::NatsServer;

/// How often the waits below poll their condition.
const POLL: Duration = Duration::from_millis(50);

/// Polls `condition` every 50 ms until it holds; panics naming `what` once
/// `limit` has passed. The limit only bounds a hung test: it is never the
/// thing under test.
pub async fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Like [`wait_until`] for a condition that has to ask something (a server, a
/// file): polls `probe` until it returns `Some`, and returns that value.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Every subscription the server holds now, from its monitoring endpoint
/// (`/connz?subs=1`): lets a test wait until a fire-and-forget listener (an
/// advisory watcher) is subscribed before provoking what it listens for.
pub async fn server_subscriptions(server: &NatsServer) -> Vec<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let port = server.ports().monitor;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the monitoring port");
    s.write_all(b"GET /connz?subs=1 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("send /connz request");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read /connz");
    let text = String::from_utf8_lossy(&buf);
    let (_, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    let v: Value = serde_json::from_str(body).expect("/connz JSON");
    v["connections"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["subscriptions_list"].as_array().into_iter().flatten())
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// Waits for a child process to exit, killing it and panicking after `limit`
/// (a hung `herald` fails the test instead of hanging it).
pub fn wait_child(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            return status;
        }
        if start.elapsed() >= limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child process {} still running after {limit:?}", child.id());
        }
        std::thread::sleep(POLL);
    }
}

/// A loopback port that is bound (so nothing else can take it while the test
/// runs) but not listening, so every connection to it is refused at once.
/// Better than a "free" port, which another process may start using.
#[derive(Debug)]
pub struct ClosedPort {
    _socket: tokio::net::TcpSocket,
    addr: SocketAddr,
}

impl ClosedPort {
    /// Binds a fresh loopback port without listening on it.
    pub fn bind() -> ClosedPort {
        let socket = tokio::net::TcpSocket::new_v4().expect("create a TCP socket");
        socket
            .bind("127.0.0.1:0".parse().expect("loopback address"))
            .expect("bind a loopback port");
        let addr = socket.local_addr().expect("bound address");
        ClosedPort {
            _socket: socket,
            addr,
        }
    }

    /// The port number.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port())
    }
}

/// Environment variables that change what the `herald` binary connects to or
/// loads. A test that runs `herald` clears them all, so the developer's shell
/// (a `NATS_URL`, a token, their own contracts) cannot change its result.
pub const HERALD_ENV: [&str; 6] = [
    "NATS_URL",
    "HERALD_CONTRACTS",
    "NATS_USER",
    "NATS_PASSWORD",
    "NATS_TOKEN",
    "NATS_NKEY",
];

/// A `Command` for the `herald` binary at `bin` (a test passes
/// `env!("CARGO_BIN_EXE_herald")`) with [`HERALD_ENV`] cleared and colour off.
pub fn herald_command(bin: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(bin);
    for var in HERALD_ENV {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Spawns `cmd` (a long-running `herald`) with standard input and output closed and
/// standard error written to the file `stderr`, which the test reads while it runs.
pub fn spawn_logged(cmd: &mut Command, stderr: &Path) -> Child {
    let log = std::fs::File::create(stderr)
        .unwrap_or_else(|e| panic!("create {}: {e}", stderr.display()));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn herald")
}

/// Sends `sig` (`-TERM`, `-INT` ...) to the child through kill(1); panics unless it was sent.
pub fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .arg(sig)
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {} failed", child.id());
}

/// Polls the file at `path` until it contains `needle` and returns its text; panics with
/// what it holds once `limit` has passed (for a log a child process writes).
pub fn wait_for_text(path: &Path, needle: &str, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            start.elapsed() < limit,
            "{needle:?} never appeared in {} within {limit:?}: {text}",
            path.display()
        );
        std::thread::sleep(POLL);
    }
}

/// A child's standard error, read line by line on a thread of its own, so that a test can
/// wait for a line while the child keeps running (and never blocks on a full pipe).
pub struct StderrLines {
    lines: std::sync::mpsc::Receiver<String>,
}

impl StderrLines {
    /// Takes the child's piped standard error.
    pub fn take(child: &mut Child) -> StderrLines {
        use std::io::BufRead;
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(l);
            }
        });
        StderrLines { lines }
    }

    /// Waits for the next line that `wanted` accepts and returns it, passing over the lines
    /// before it; panics naming `what` and the lines seen when none comes within `limit`
    /// of the last line.
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        mut wanted: impl FnMut(&str) -> bool,
    ) -> String {
        let mut seen = Vec::new();
        loop {
            let l = self
                .lines
                .recv_timeout(limit)
                .unwrap_or_else(|_| panic!("no {what} line: {seen:?}"));
            if wanted(&l) {
                return l;
            }
            seen.push(l);
        }
    }

    /// The lines read since the last wait.
    pub fn rest(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

/// Copies the directory tree `from` into `to` (which must exist): regular
/// files and directories; anything else is an error, so a test never runs on a
/// silently partial copy.
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {from:?}: {e}")) {
        let entry = entry.expect("directory entry");
        let dest = to.join(entry.file_name());
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            std::fs::create_dir_all(&dest).expect("create directory");
            copy_dir(&entry.path(), &dest);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &dest).expect("copy file");
        } else {
            panic!("{:?} is neither a file nor a directory", entry.path());
        }
    }
}

// ------------------------------------------------------------- contracts

/// The shipped catalog (`contracts/`, as compiled into this build).
pub fn shipped_catalog() -> Catalog {
    Catalog::embedded().expect("the shipped contracts load")
}

/// The shipped contracts with `catalog.toml` edited by `edit` (for a test that
/// needs, say, a stream with a shorter `max_age`): real schemas, real subjects,
/// only the settings the test changes differ.
pub fn catalog_with(edit: impl FnOnce(&mut toml::Table)) -> Catalog {
    let mut files = ContractFiles::embedded();
    let text = std::str::from_utf8(&files.files["catalog.toml"]).expect("UTF-8 catalog");
    let mut doc: toml::Table = toml::from_str(text).expect("the shipped catalog parses");
    edit(&mut doc);
    files.files.insert(
        "catalog.toml".into(),
        toml::to_string(&doc)
            .expect("serialise catalog")
            .into_bytes(),
    );
    files.origin = "<embedded, edited by a test>".into();
    Catalog::from_files(files).expect("the edited contracts load")
}

/// The `[topic.stream]` (or `[dlq.stream]`) table of the stream `name` in a
/// catalog document; panics when the catalog has no such stream.
pub fn stream_table<'a>(doc: &'a mut toml::Table, name: &str) -> &'a mut toml::Table {
    streams(doc)
        .into_iter()
        .find(|s| s.get("name").and_then(toml::Value::as_str) == Some(name))
        .unwrap_or_else(|| panic!("the shipped catalog has no stream {name}"))
}

/// Every stream table of a catalog document (the topics' and the DLQ's).
pub fn streams(doc: &mut toml::Table) -> Vec<&mut toml::Table> {
    let mut out = Vec::new();
    for (key, value) in doc.iter_mut() {
        match (key.as_str(), value) {
            ("topic", toml::Value::Array(topics)) => {
                for t in topics {
                    if let Some(toml::Value::Table(s)) =
                        t.as_table_mut().and_then(|t| t.get_mut("stream"))
                    {
                        out.push(s);
                    }
                }
            }
            ("dlq", toml::Value::Table(dlq)) => {
                if let Some(toml::Value::Table(s)) = dlq.get_mut("stream") {
                    out.push(s);
                }
            }
            _ => {}
        }
    }
    out
}

/// A shipped valid example, `contracts/examples/<schema>/valid/<file>`.
pub fn example(schema: &str, file: &str) -> Value {
    let path = format!("examples/{schema}/valid/{file}");
    let files = ContractFiles::embedded();
    let bytes = files
        .files
        .get(&path)
        .unwrap_or_else(|| panic!("no shipped example {path}"));
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A UUID determined by `label`, so a test can name its events ("poison",
/// "r-1") and still meet the schemas' `format: uuid` identity fields. A label
/// that already is a UUID is used as it is (case included).
pub fn event_id(label: &str) -> String {
    if uuid::Uuid::parse_str(label).is_ok() {
        return label.to_owned();
    }
    // Two FNV-1a hashes (different offsets) fill the 16 bytes; version and
    // variant bits are set by the builder.
    let fnv = |seed: u64| {
        label.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&fnv(0xcbf2_9ce4_8422_2325).to_be_bytes());
    bytes[8..].copy_from_slice(&fnv(0x6c62_272e_07bb_0142).to_be_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The shipped `usage.metered.api_call` example with `event_id` = [`event_id`]`(label)`.
pub fn usage_event(label: &str) -> Value {
    let mut e = example("UsageEvent", "api-call.json");
    e["event_id"] = Value::String(event_id(label));
    e
}

/// A valid `usage.metered.api_call` event as one JSON line, its `event_id` ending in
/// `n` (`...446655440002` for 2), so that a handler script can tell events apart by id.
pub fn usage_line(n: u32) -> String {
    serde_json::json!({
        "event_id": format!("550e8400-e29b-41d4-a716-44665544{n:04}"),
        "timestamp": "2024-01-15T10:30:00Z",
        "service_name": "model-gateway",
        "user_id": "123e4567-e89b-12d3-a456-426614174000",
        "tenant_id": "789e0123-e89b-12d3-a456-426614174000",
        "event_type": "api_call",
        "resource_type": "requests",
        "quantity": 1,
        "cost": {"amount": 0.001, "currency": "EUR"}
    })
    .to_string()
}

/// A shipped `orchestrator.step.<status>` example (`started`, `completed`,
/// `failed`) with `step_id` = [`event_id`]`(label)`.
pub fn step_event(label: &str, status: &str) -> Value {
    let file = match status {
        "started" => "started.json",
        "completed" => "spec-example.json",
        "failed" => "failed.json",
        other => panic!("no shipped OrchestratorStep example with status {other}"),
    };
    let mut e = example("OrchestratorStep", file);
    assert_eq!(e["status"], status, "{file}");
    e["step_id"] = Value::String(event_id(label));
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_examples_are_valid_on_their_subjects() {
        let c = shipped_catalog();
        c.validate("usage.metered.api_call", None, &usage_event("a"))
            .expect("usage event");
        for status in ["started", "completed", "failed"] {
            let subject = format!("orchestrator.step.{status}");
            c.validate(&subject, None, &step_event("s", status))
                .expect("step event");
        }
    }

    #[test]
    fn event_ids_are_stable_distinct_uuids() {
        assert_eq!(event_id("x"), event_id("x"));
        assert_ne!(event_id("x"), event_id("y"));
        assert_eq!(
            uuid::Uuid::parse_str(&event_id("x"))
                .unwrap()
                .get_version_num(),
            4
        );
    }

    #[test]
    fn catalog_edits_reach_the_loaded_streams() {
        let c = catalog_with(|doc| {
            stream_table(doc, "USAGE").insert("max_age".into(), "1h".into());
        });
        let usage = c.stream_for_subject("usage.metered.api_call").unwrap();
        assert_eq!(usage.max_age, Duration::from_secs(3600));
    }

    #[test]
    fn a_closed_port_refuses_connections() {
        let port = ClosedPort::bind();
        let err = std::net::TcpStream::connect(("127.0.0.1", port.port())).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}
