//! Connecting a service to NATS: one [`HeraldClient`] per process.
//!
//! [`ConnectConfig`] is a builder in the style of `async_nats::ConnectOptions`,
//! but with herald's production defaults: a connection name per service,
//! unlimited reconnects with capped exponential backoff (a service must ride out
//! a server restart rather than die), a bounded *initial* connect so a CLI
//! fails fast with exit 2 on an unreachable server, and the server version read
//! at connect so features of newer servers (per-message TTL, 2.11+) are used
//! only when present.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;

/// Default server URL when neither the config nor `NATS_URL` names one.
pub const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// Why connecting failed; a CLI maps every kind to exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No server answered within the connect timeout, or one refused the connection.
    #[error("cannot connect to {urls}: {}", unreachable_reason(source, *timeout))]
    Unreachable {
        /// The URLs tried.
        urls: String,
        /// The connect timeout in force.
        timeout: Duration,
        /// The client's error.
        source: async_nats::ConnectError,
    },
    /// A credentials, key or certificate file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    File {
        /// Which file (creds, TLS CA ...).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A URL in the configuration is malformed.
    #[error("invalid server URL {0:?}")]
    BadUrl(String),
}

/// Why the client could not connect, in the words of its innermost cause: the client's
/// text of an I/O error ("IO error: Connection refused (os error 111)") repeats its source's.
fn unreachable_reason(source: &async_nats::ConnectError, timeout: Duration) -> String {
    match source.kind() {
        async_nats::ConnectErrorKind::TimedOut => format!("no answer within {timeout:?}"),
        async_nats::ConnectErrorKind::Io => {
            let mut cause: &dyn std::error::Error = source;
            while let Some(inner) = cause.source() {
                cause = inner;
            }
            let text = cause.to_string();
            let text = match text.rfind(" (os error ") {
                Some(at) if text.ends_with(')') => text[..at].to_string(),
                _ => text,
            };
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => source.to_string(),
            }
        }
        _ => source.to_string(),
    }
}

/// How to reach NATS, builder-style.
///
/// ```no_run
/// # async fn f() -> Result<(), herald_runtime::connection::ConnectError> {
/// use herald_runtime::connection::{ConnectConfig, HeraldClient};
/// let client = HeraldClient::connect(
///     ConnectConfig::from_env().name("billing-service").creds_file("/etc/nats/billing.creds"),
/// )
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ConnectConfig {
    urls: Vec<String>,
    name: Option<String>,
    user: Option<(String, String)>,
    token: Option<String>,
    nkey_seed: Option<String>,
    creds_file: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
    tls_client: Option<(PathBuf, PathBuf)>,
    require_tls: bool,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_reconnect_delay: Duration,
}

impl Default for ConnectConfig {
    fn default() -> Self {
        ConnectConfig {
            urls: vec![DEFAULT_URL.to_string()],
            name: None,
            user: None,
            token: None,
            nkey_seed: None,
            creds_file: None,
            tls_ca: None,
            tls_client: None,
            require_tls: false,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            max_reconnect_delay: Duration::from_secs(4),
        }
    }
}

impl ConnectConfig {
    /// Defaults, with the URLs from `NATS_URL` (comma-separated) when set.
    pub fn from_env() -> Self {
        let mut c = Self::default();
        if let Ok(v) = std::env::var("NATS_URL") {
            if !v.trim().is_empty() {
                c = c.urls(v.split(',').map(|s| s.trim().to_string()));
            }
        }
        c
    }

    /// Server URLs (e.g. `nats://10.0.0.1:4222`), replacing the default.
    pub fn urls<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.urls = urls.into_iter().map(Into::into).collect();
        self
    }

    /// One server URL, replacing the default.
    pub fn url(self, url: impl Into<String>) -> Self {
        self.urls([url.into()])
    }

    /// Connection name shown by the server's monitoring (`connz`): use the service name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// User and password authentication.
    pub fn user_password(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((user.into(), password.into()));
        self
    }

    /// Token authentication.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// NKey authentication with a user seed (`SU...`).
    pub fn nkey_seed(mut self, seed: impl Into<String>) -> Self {
        self.nkey_seed = Some(seed.into());
        self
    }

    /// Decentralized auth: a `.creds` file (JWT + seed).
    pub fn creds_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.creds_file = Some(path.into());
        self
    }

    /// Trust this CA certificate (PEM) and require TLS.
    pub fn tls_ca(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls_ca = Some(path.into());
        self.require_tls = true;
        self
    }

    /// Present a client certificate and key (PEM) for mutual TLS, and require TLS.
    pub fn tls_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls_client = Some((cert.into(), key.into()));
        self.require_tls = true;
        self
    }

    /// How long the *initial* connection may take before [`ConnectError::Unreachable`].
    /// Reconnects after that are unlimited.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Timeout of JetStream API requests and of each publish acknowledgement wait.
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = t;
        self
    }

    /// Upper bound of the exponential reconnect delay.
    pub fn max_reconnect_delay(mut self, t: Duration) -> Self {
        self.max_reconnect_delay = t;
        self
    }

    /// The configured URLs.
    pub fn server_urls(&self) -> &[String] {
        &self.urls
    }

    /// The configured connection name, if any.
    pub fn connection_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The configured JetStream request / ack timeout.
    pub fn request_timeout_value(&self) -> Duration {
        self.request_timeout
    }

    async fn options(
        &self,
        violations: Violations,
    ) -> Result<async_nats::ConnectOptions, ConnectError> {
        let mut o = match &self.creds_file {
            Some(p) => async_nats::ConnectOptions::with_credentials_file(p)
                .await
                .map_err(|source| ConnectError::File {
                    what: "credentials file",
                    path: p.clone(),
                    source,
                })?,
            None => async_nats::ConnectOptions::new(),
        };
        if let Some(name) = &self.name {
            o = o.name(name);
        }
        if let Some((u, p)) = &self.user {
            o = o.user_and_password(u.clone(), p.clone());
        }
        if let Some(t) = &self.token {
            o = o.token(t.clone());
        }
        if let Some(seed) = &self.nkey_seed {
            o = o.nkey(seed.clone());
        }
        if let Some(prefix) = self.inbox_prefix() {
            o = o.custom_inbox_prefix(prefix);
        }
        if let Some(ca) = &self.tls_ca {
            check_readable("TLS CA certificate", ca)?;
            o = o.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &self.tls_client {
            check_readable("TLS client certificate", cert)?;
            check_readable("TLS client key", key)?;
            o = o.add_client_certificate(cert.clone(), key.clone());
        }
        if self.require_tls {
            o = o.require_tls(true);
        }
        let max = self.max_reconnect_delay;
        o = o
            .event_callback(move |event| {
                let violations = violations.clone();
                async move {
                    match &event {
                        async_nats::Event::Connected => crate::metrics::set_connection_up(true),
                        async_nats::Event::Disconnected | async_nats::Event::Closed => {
                            crate::metrics::set_connection_up(false)
                        }
                        _ => {}
                    }
                    if let async_nats::Event::ServerError(async_nats::ServerError::Other(text)) =
                        &event
                    {
                        if text.to_ascii_lowercase().contains("permissions violation") {
                            violations.push(text.clone());
                        }
                    }
                    tracing::debug!(%event, "nats connection event");
                }
            })
            .connection_timeout(self.connect_timeout)
            .request_timeout(Some(self.request_timeout))
            .max_reconnects(None)
            .reconnect_delay_callback(move |attempts| {
                // 0, 50ms, 100ms, 200ms ... capped, plus up to 20% jitter.
                if attempts <= 1 {
                    return Duration::ZERO;
                }
                let base = Duration::from_millis(50)
                    .saturating_mul(1u32 << (attempts.min(16) as u32 - 1).min(15));
                let base = base.min(max);
                let jitter = rand::random::<f64>() * 0.2;
                base.mul_f64(1.0 + jitter)
            });
        Ok(o)
    }
}

impl ConnectConfig {
    /// The inbox prefix of this user: replies, pulled messages and publish acks arrive
    /// on `_INBOX_<user>.>`, which `herald auth generate` lets only that user read (a
    /// shared `_INBOX.>` would let any service read the operator's `dlq ls` replies).
    /// `None` (the library's `_INBOX`) without a user name or nkey.
    pub fn inbox_prefix(&self) -> Option<String> {
        if let Some((user, _)) = &self.user {
            return Some(inbox_prefix_for(user));
        }
        let seed = self.nkey_seed.as_ref()?;
        let kp = nkeys::KeyPair::from_seed(seed.trim()).ok()?;
        Some(inbox_prefix_for(&kp.public_key()))
    }
}

/// `_INBOX_<identity>` with every character a subject token cannot hold replaced by `_`.
pub fn inbox_prefix_for(identity: &str) -> String {
    let clean: String = identity
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("_INBOX_{clean}")
}

fn check_readable(what: &'static str, path: &PathBuf) -> Result<(), ConnectError> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|source| ConnectError::File {
            what,
            path: path.clone(),
            source,
        })
}

/// The server's recent "Permissions Violation" errors, numbered, with a signal on each new one
/// (the server reports them asynchronously; a publish waiting for its ack listens for them).
#[derive(Debug, Clone)]
struct Violations {
    recent: Arc<Mutex<VecDeque<(u64, String)>>>,
    seq: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Violations {
    fn new() -> Self {
        Violations {
            recent: Arc::new(Mutex::new(VecDeque::new())),
            seq: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }

    fn push(&self, text: String) {
        let mut v = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() >= 64 {
            v.pop_front();
        }
        let n = *self.seq.borrow() + 1;
        v.push_back((n, text));
        drop(v);
        self.seq.send_replace(n);
    }

    /// The newest violation numbered above `after` that names `subject`.
    fn find(&self, subject: &str, after: u64) -> Option<String> {
        let v = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let quoted = format!("\"{subject}\"");
        v.iter()
            .rev()
            .take_while(|(n, _)| *n > after)
            .find(|(_, t)| t.contains(&quoted))
            .map(|(_, t)| t.clone())
    }
}

/// A connected client: the core NATS client, a JetStream context and the server version.
#[derive(Debug, Clone)]
pub struct HeraldClient {
    client: async_nats::Client,
    js: jetstream::Context,
    version: (u64, u64, u64),
    version_text: String,
    name: Option<String>,
    request_timeout: Duration,
    violations: Violations,
}

impl HeraldClient {
    /// Connects, bounded by the config's connect timeout, and reads the server version.
    pub async fn connect(config: ConnectConfig) -> Result<Self, ConnectError> {
        for u in &config.urls {
            if u.trim().is_empty() {
                return Err(ConnectError::BadUrl(u.clone()));
            }
        }
        let violations = Violations::new();
        let opts = config.options(violations.clone()).await?;
        let urls = config.urls.join(",");
        let addrs: Vec<async_nats::ServerAddr> = config
            .urls
            .iter()
            .map(|u| u.parse().map_err(|_| ConnectError::BadUrl(u.clone())))
            .collect::<Result<_, _>>()?;
        let connect = opts.connect(addrs);
        // connection_timeout bounds each attempt; this bounds the whole initial connect.
        let client = match tokio::time::timeout(config.connect_timeout, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(source)) => {
                return Err(ConnectError::Unreachable {
                    urls,
                    timeout: config.connect_timeout,
                    source,
                })
            }
            Err(_) => {
                return Err(ConnectError::Unreachable {
                    urls,
                    timeout: config.connect_timeout,
                    source: async_nats::ConnectError::from(async_nats::ConnectErrorKind::TimedOut),
                })
            }
        };
        crate::metrics::set_connection_up(true);
        let info = client.server_info();
        let version = parse_version(&info.version);
        let js = jetstream::ContextBuilder::new()
            .timeout(config.request_timeout)
            .build(client.clone());
        crate::metrics::set_connection_up(true);
        Ok(HeraldClient {
            client,
            js,
            version,
            version_text: info.version,
            name: config.name,
            request_timeout: config.request_timeout,
            violations,
        })
    }

    /// The core NATS client (for request/reply, subscriptions, raw publishing).
    pub fn nats(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context (API requests bounded by the request timeout).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// A JetStream context for pipelined publishing: at most `in_flight` acks outstanding,
    /// with backpressure (waits for a permit instead of failing).
    pub fn publishing_context(&self, in_flight: usize) -> jetstream::Context {
        jetstream::ContextBuilder::new()
            .timeout(self.request_timeout)
            .max_ack_inflight(in_flight.max(1))
            .backpressure_on_inflight(true)
            .build(self.client.clone())
    }

    /// Server version at connect, as `(major, minor, patch)`.
    pub fn server_version(&self) -> (u64, u64, u64) {
        self.version
    }

    /// Server version string at connect (e.g. `2.9.10`).
    pub fn server_version_text(&self) -> &str {
        &self.version_text
    }

    /// Whether the server supports per-message TTL (`Nats-TTL`, nats-server 2.11+).
    pub fn supports_per_message_ttl(&self) -> bool {
        self.version >= (2, 11, 0)
    }

    /// The connection name (service).
    pub fn service_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The request / ack timeout in force.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The most recent server "Permissions Violation" error that names `subject`, if any.
    ///
    /// The server reports a publish permission violation asynchronously (`-ERR`), so a
    /// publish only sees a timeout; the publisher consults this to report
    /// `PermissionDenied` instead of retrying.
    pub fn permission_violation_for(&self, subject: &str) -> Option<String> {
        self.violations.find(subject, 0)
    }

    /// The newest permission violation reported after `mark`, whatever its subject: a
    /// request that timed out may have been refused (the server drops it and reports
    /// `-ERR` asynchronously), and this tells the user so instead of "timed out".
    pub fn permission_violation_since(&self, mark: u64) -> Option<String> {
        let v = self
            .violations
            .recent
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        v.iter()
            .rev()
            .take_while(|(n, _)| *n > mark)
            .next()
            .map(|(_, t)| t.clone())
    }

    /// A marker of the violations seen so far, for [`HeraldClient::next_permission_violation`].
    pub fn permission_violation_mark(&self) -> u64 {
        *self.violations.seq.borrow()
    }

    /// Resolves with the first permission violation naming `subject` reported after `mark`
    /// (never resolves if none comes): lets a publish waiting for its ack fail at once with
    /// "permission denied" instead of waiting for the ack timeout.
    pub async fn next_permission_violation(&self, subject: &str, mark: u64) -> String {
        let mut rx = self.violations.seq.subscribe();
        loop {
            // Nothing new since `mark` (the normal case, once per publish): skip the lookup,
            // which locks and formats.
            let newest = *rx.borrow_and_update();
            if newest > mark {
                if let Some(text) = self.violations.find(subject, mark) {
                    return text;
                }
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Subscribes to `subject` and reports a refusal: the server answers a subscription
    /// its permissions deny with an asynchronous `-ERR` and simply never delivers, so a
    /// caller that did not look would wait for ever. The `-ERR` comes before the flush's
    /// `PONG`; its event is given a second to be recorded.
    pub async fn subscribe_checked(&self, subject: &str) -> Result<async_nats::Subscriber, String> {
        let mark = self.permission_violation_mark();
        let sub = self
            .client
            .subscribe(subject.to_string())
            .await
            .map_err(|e| format!("cannot subscribe to {subject}: {e}"))?;
        let _ = self.client.flush().await;
        let denied = tokio::time::timeout(
            Duration::from_secs(1),
            self.next_permission_violation(subject, mark),
        )
        .await;
        match denied {
            Ok(detail) => Err(format!(
                "permission denied subscribing to {subject}: {detail}"
            )),
            Err(_) => Ok(sub),
        }
    }

    /// Flushes and drains the connection (pending publishes are sent, subscriptions drained).
    pub async fn drain(&self) {
        let _ = self.client.flush().await;
        let _ = self.client.drain().await;
    }
}

/// Parses `2.9.10`, `v2.11.0-RC.1` ... into `(major, minor, patch)`; unknown parts are 0.
pub fn parse_version(v: &str) -> (u64, u64, u64) {
    let v = v.trim().trim_start_matches('v');
    let mut it = v
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("2.9.10"), (2, 9, 10));
        assert_eq!(parse_version("v2.11.0-RC.1"), (2, 11, 0));
        assert_eq!(parse_version("garbage"), (0, 0, 0));
    }
}
