//! Real `nats-server -js` processes for tests, `herald demo` and `herald bench`.
//!
//! Every server gets a free loopback port, its own temporary store directory
//! (`-sd`) and a monitoring port; readiness is decided by probing `/healthz`
//! (which on 2.9+ also waits for JetStream), never by sleeping. The process is
//! killed when the handle drops, so a failing test leaves nothing behind, and
//! a test never talks to a server it did not start (a machine may run one on
//! 4222).
//!
//! When `nats-server` is not installed, [`NatsServer::start`] returns
//! [`ServerError::NotInstalled`] whose message carries the install hint; tests
//! that `unwrap` it fail loudly instead of silently passing.

#[cfg(feature = "testing")]
pub mod testing;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Why a server could not be started or controlled.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The `nats-server` binary is not on `PATH` (nor at `$NATS_SERVER_BIN`).
    #[error(
        "nats-server not found ({0}); install it: `apt-get install nats-server` \
         (or set NATS_SERVER_BIN to its path)"
    )]
    NotInstalled(String),
    /// The process started but did not become healthy in time.
    #[error("nats-server on port {port} not ready after {waited:?}: {detail}")]
    NotReady {
        /// Client port of the server.
        port: u16,
        /// How long readiness was probed.
        waited: Duration,
        /// Last probe error and the tail of the server log.
        detail: String,
    },
    /// Spawning, signalling or waiting for the process failed.
    #[error("nats-server process: {0}")]
    Io(#[from] std::io::Error),
}

/// Ports of one server, fixed for its lifetime (kept across restarts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// Client port (`-p`).
    pub client: u16,
    /// HTTP monitoring port (`-m`), probed at `/healthz`.
    pub monitor: u16,
    /// Cluster route port, for cluster members only.
    pub cluster: Option<u16>,
}

/// One running (or stopped) `nats-server -js` process.
///
/// Dropping it kills the process and removes its store directory.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    ports: Ports,
    store: PathBuf,
    _store_guard: Option<tempfile::TempDir>,
    args: Vec<String>,
    name: String,
}

/// Returns the `nats-server` binary to run: `$NATS_SERVER_BIN` or `nats-server`.
fn binary() -> String {
    std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".to_string())
}

/// Checks that `nats-server` can be executed and returns its version line.
pub fn installed_version() -> Result<String, ServerError> {
    let bin = binary();
    match Command::new(&bin).arg("--version").output() {
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        }
        Ok(out) => Err(ServerError::NotInstalled(format!(
            "`{bin} --version` exited with {}",
            out.status
        ))),
        Err(e) => Err(ServerError::NotInstalled(format!("{bin}: {e}"))),
    }
}

/// JetStream limits for test servers, as a config file in `dir`.
///
/// By default nats-server caps file storage at 75% of the disk space free at start,
/// and refuses a stream whose `max_bytes` exceeds that cap (the catalog's `USAGE`
/// asks for 10 GiB). Test servers store a few megabytes, so they declare a large
/// cap instead of depending on how full the machine's disk happens to be. A caller
/// passing its own `-c` must set `jetstream { max_file_store }` itself.
pub const TEST_JETSTREAM_LIMITS: &str =
    "jetstream {\n  max_file_store: 1TB\n  max_memory_store: 1GB\n}\n";

fn limits_config(dir: &Path) -> std::io::Result<String> {
    let path = dir.join("herald-limits.conf");
    std::fs::write(&path, TEST_JETSTREAM_LIMITS)?;
    Ok(path.to_string_lossy().into_owned())
}

/// A free TCP port on 127.0.0.1 (bound then released: small race, retried by `start`).
/// Never the same port twice in one process: a server that was stopped or killed keeps
/// its ports for its restart, so another test's new server must not take them.
pub fn free_port() -> std::io::Result<u16> {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    for _ in 0..1000 {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if handed_out.insert(port) {
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "no loopback port left that this process has not handed out",
    ))
}

impl NatsServer {
    /// Starts a single JetStream-enabled server on free loopback ports with a fresh store.
    pub async fn start() -> Result<Self, ServerError> {
        Self::start_with_args(&[]).await
    }

    /// Like [`NatsServer::start`] with extra command-line arguments (e.g. `--user`).
    pub async fn start_with_args(extra: &[&str]) -> Result<Self, ServerError> {
        installed_version()?;
        let dir = tempfile::Builder::new().prefix("herald-nats-").tempdir()?;
        let mut last = None;
        for _ in 0..3 {
            let ports = Ports {
                client: free_port()?,
                monitor: free_port()?,
                cluster: None,
            };
            let name = format!("herald-{}", ports.client);
            let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
            if !extra.contains(&"-c") {
                args.extend(["-c".into(), limits_config(dir.path())?]);
            }
            args.extend(["-n".into(), name.clone()]);
            let mut server = NatsServer {
                child: None,
                ports,
                store: dir.path().to_path_buf(),
                _store_guard: None,
                args,
                name,
            };
            match server.spawn_and_wait().await {
                Ok(()) => {
                    server._store_guard = Some(dir);
                    return Ok(server);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// A single server whose JetStream store lives in `dir` (created when missing) and is
    /// kept when the handle drops: `herald demo` puts its store under `.herald/demo/` so
    /// that `--keep` can leave it behind for inspection.
    pub async fn start_in(dir: &Path) -> Result<Self, ServerError> {
        installed_version()?;
        std::fs::create_dir_all(dir)?;
        let mut last = None;
        for _ in 0..3 {
            let ports = Ports {
                client: free_port()?,
                monitor: free_port()?,
                cluster: None,
            };
            let name = format!("herald-{}", ports.client);
            let mut server = NatsServer {
                child: None,
                ports,
                store: dir.to_path_buf(),
                _store_guard: None,
                // The same declared file-store cap as test servers: provisioning the
                // catalog reserves its streams' max_bytes, which must not depend on
                // how much disk happens to be free.
                args: vec!["-c".into(), limits_config(dir)?, "-n".into(), name.clone()],
                name,
            };
            match server.spawn_and_wait().await {
                Ok(()) => return Ok(server),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(binary());
        cmd.arg("-js")
            .arg("-a")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(self.ports.client.to_string())
            .arg("-m")
            .arg(self.ports.monitor.to_string())
            .arg("-sd")
            .arg(&self.store)
            .arg("-l")
            .arg(self.log_path());
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group: a terminal's Ctrl-C reaches herald only, which then
        // drains its clients and stops the server in order (`herald demo`).
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd
    }

    /// The server log file (inside the store directory's parent layout).
    pub fn log_path(&self) -> PathBuf {
        self.store.join(format!("{}.log", self.name))
    }

    async fn spawn_and_wait(&mut self) -> Result<(), ServerError> {
        self.spawn_and_wait_for(Health::Full).await
    }

    async fn spawn_and_wait_for(&mut self, health: Health) -> Result<(), ServerError> {
        let child = self.command().spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ServerError::NotInstalled(e.to_string())
            } else {
                ServerError::Io(e)
            }
        })?;
        self.child = Some(child);
        // A restarted cluster node can take long to report healthy (it catches up its
        // streams); a slow machine needs the margin.
        let ready = self.wait_for(health, Duration::from_secs(45)).await;
        if ready.is_err() {
            // Never leave a half-started process behind: it would hold the ports the
            // next attempt needs.
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        ready
    }

    /// Probes `/healthz` until it answers 200 (JetStream ready), the process exits, or `limit`.
    pub async fn wait_ready(&mut self, limit: Duration) -> Result<(), ServerError> {
        self.wait_for(Health::Full, limit).await
    }

    async fn wait_for(&mut self, health: Health, limit: Duration) -> Result<(), ServerError> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(10);
        let mut detail = String::from("no probe yet");
        while start.elapsed() < limit {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    return Err(self.not_ready(start, format!("process exited with {status}")));
                }
            }
            match probe_healthz(self.ports.monitor, health).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(why)) => detail = format!("healthz not ok yet: {why}"),
                Err(e) => detail = e.to_string(),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(200));
        }
        Err(self.not_ready(start, detail))
    }

    fn not_ready(&self, start: Instant, detail: String) -> ServerError {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        ServerError::NotReady {
            port: self.ports.client,
            waited: start.elapsed(),
            detail: format!("{detail}; log tail: {}", tail.join(" | ")),
        }
    }

    /// `nats://127.0.0.1:PORT` of this server.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.ports.client)
    }

    /// The ports (stable across [`NatsServer::restart`]).
    pub fn ports(&self) -> Ports {
        self.ports
    }

    /// The JetStream store directory (`-sd`).
    pub fn store_dir(&self) -> &Path {
        &self.store
    }

    /// The `server_name` (`-n`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the process is currently running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Graceful stop (SIGTERM, then SIGKILL after 10 s). The store is kept.
    pub async fn stop(&mut self) -> Result<(), ServerError> {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if child.try_wait()?.is_some() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    /// Starts the server again on the same ports with the same store.
    pub async fn start_again(&mut self) -> Result<(), ServerError> {
        if self.is_running() {
            return Ok(());
        }
        // The port may linger briefly after the old process exits; retry spawning. The
        // monitoring port is ours alone to probe, so a retry takes a fresh one: another
        // process (a parallel test) may have taken the old one meanwhile.
        let mut last = None;
        for attempt in 0..5 {
            if attempt > 0 {
                self.ports.monitor = free_port()?;
            }
            // A restarted member of a cluster catches its streams and consumers up after
            // it starts, which the cluster does on its own (and a test observes): waiting
            // for every asset to be current could take minutes on a slow machine. A lone
            // server is ready only once it has recovered its streams.
            let health = if self.ports.cluster.is_some() {
                Health::JetStreamEnabled
            } else {
                Health::Full
            };
            match self.spawn_and_wait_for(health).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        Err(last.expect("attempted"))
    }

    /// Graceful stop then start, keeping ports and store.
    pub async fn restart(&mut self) -> Result<(), ServerError> {
        self.stop().await?;
        self.start_again().await
    }

    /// `kill -9`: the process dies without flushing; the store is kept for [`NatsServer::start_again`].
    pub fn kill_9(&mut self) -> Result<(), ServerError> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// GET `/healthz` on the monitoring port; `Ok(true)` on HTTP 200.
/// What `/healthz` must confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    /// JetStream running and every stream and consumer current.
    Full,
    /// JetStream running (`js-enabled`, 2.9; `js-enabled-only` from 2.10); assets may
    /// still be catching up.
    JetStreamEnabled,
}

async fn probe_healthz(port: u16, health: Health) -> std::io::Result<Result<(), String>> {
    let path = match health {
        Health::Full => "/healthz",
        Health::JetStreamEnabled => "/healthz?js-enabled=true&js-enabled-only=true",
    };
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        let head = String::from_utf8_lossy(&buf);
        let ok = head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200");
        // Not healthy: the body says why (a stream or consumer not current, ...).
        let body = head.split("\r\n\r\n").nth(1).unwrap_or_default().trim();
        Ok::<_, std::io::Error>(if ok { Ok(()) } else { Err(body.to_string()) })
    };
    match tokio::time::timeout(Duration::from_secs(2), fut).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "healthz probe timed out",
        )),
    }
}

/// Three JetStream servers routed into one cluster (`herald-cluster`).
#[derive(Debug)]
pub struct NatsCluster {
    /// The members, `n1`..`n3`.
    pub nodes: Vec<NatsServer>,
    _base: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts three routed nodes with their own stores and waits until every one is healthy
    /// (JetStream meta leader elected).
    pub async fn start() -> Result<Self, ServerError> {
        installed_version()?;
        let base = tempfile::Builder::new()
            .prefix("herald-cluster-")
            .tempdir()?;
        let ports: Vec<Ports> = (0..3)
            .map(|_| {
                Ok(Ports {
                    client: free_port()?,
                    monitor: free_port()?,
                    cluster: Some(free_port()?),
                })
            })
            .collect::<std::io::Result<_>>()?;
        let routes: Vec<String> = ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{}", p.cluster.unwrap_or_default()))
            .collect();
        let mut nodes = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let store = base.path().join(&name);
            std::fs::create_dir_all(&store)?;
            let others: Vec<String> = routes
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, r)| r.clone())
                .collect();
            let args = vec![
                "-c".to_string(),
                limits_config(&store)?,
                "-n".to_string(),
                name.clone(),
                "--cluster_name".into(),
                "herald-cluster".into(),
                "--cluster".into(),
                format!("nats://127.0.0.1:{}", p.cluster.unwrap_or_default()),
                "--routes".into(),
                others.join(","),
            ];
            let mut node = NatsServer {
                child: None,
                ports: *p,
                store,
                _store_guard: None,
                args,
                name,
            };
            let child = node.command().spawn().map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    ServerError::NotInstalled(e.to_string())
                } else {
                    ServerError::Io(e)
                }
            })?;
            node.child = Some(child);
            nodes.push(node);
        }
        for node in nodes.iter_mut() {
            node.wait_ready(Duration::from_secs(30)).await?;
        }
        Ok(NatsCluster { nodes, _base: base })
    }

    /// Comma-separated client URLs of all nodes (for `ConnectConfig::urls`).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url()).collect()
    }
}
