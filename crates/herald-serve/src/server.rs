//! The HTTP/1.1 server: accept loop with a header read deadline (slow clients
//! cannot hold a connection open by trickling headers), graceful drain.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use herald_contracts::Catalog;
use herald_runtime::{ConnectConfig, Contracts, PublisherConfig};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::access::{Access, TokenFile, TokensError};
use crate::app::{self, AppState, Limits};
use crate::bus::Bus;
use crate::registry::{Registry, RegistryError};

/// Settings of one server.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// How to reach NATS.
    pub connect: ConnectConfig,
    /// Bearer tokens; `None` = loopback only, every local caller publishes anything.
    pub tokens: Option<TokenFile>,
    /// Service name of the connection and default `ce-source`.
    pub service: String,
    /// Longest time a publish may retry before answering 503 (capped by the duplicate window).
    pub publish_timeout: Duration,
    /// Largest batch body, bytes.
    pub max_batch_bytes: usize,
    /// Longest time a request's headers may take to arrive.
    pub header_timeout: Duration,
    /// Longest time a request's body may take to arrive.
    pub body_timeout: Duration,
    /// Longest wait for in-flight requests at shutdown.
    pub drain_timeout: Duration,
}

impl ServeConfig {
    /// Defaults: 10 s publish budget, 16 MiB batches, 10 s header and 30 s body deadlines, 30 s drain.
    pub fn new(listen: SocketAddr, connect: ConnectConfig) -> Self {
        ServeConfig {
            listen,
            connect,
            tokens: None,
            service: "herald-serve".into(),
            publish_timeout: Duration::from_secs(10),
            max_batch_bytes: 16 * 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Non-loopback address without tokens.
    #[error("refusing to listen on {0} without tokens: anyone could publish; pass --tokens FILE (from `herald auth generate`) or listen on 127.0.0.1")]
    NeedsTokens(SocketAddr),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Bad tokens file.
    #[error(transparent)]
    Tokens(#[from] TokensError),
    /// The registry view could not be built.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The metrics recorder could not be installed.
    #[error(transparent)]
    Metrics(#[from] herald_runtime::metrics::MetricsError),
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    tokens: bool,
}

impl Running {
    /// The bound address (differs from the requested one for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether tokens are required.
    pub fn has_tokens(&self) -> bool {
        self.tokens
    }

    /// Stops accepting, finishes the requests in flight (bounded by the drain
    /// timeout), then flushes and closes the NATS connection.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Binds `config.listen` and serves `catalog` until [`Running::shutdown`].
pub async fn start(catalog: Catalog, config: ServeConfig) -> Result<Running, ServeError> {
    let loopback = config.listen.ip().is_loopback();
    if !loopback && config.tokens.is_none() {
        return Err(ServeError::NeedsTokens(config.listen));
    }
    let access = Access::new(&catalog, config.tokens.as_ref())?;
    let registry = Registry::new(&catalog)?;
    let metrics = herald_runtime::metrics::install()?;
    app::describe_http_metrics();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.listen,
        source,
    })?;
    let catalog = Arc::new(catalog);
    let contracts: Arc<dyn Contracts> = catalog.clone();
    let publisher =
        PublisherConfig::new(config.service.clone()).retry_max_elapsed(config.publish_timeout);
    let bus = Bus::start(
        config.connect.clone().name(config.service.clone()),
        contracts.clone(),
        publisher,
    );
    let limits = Limits {
        max_event_bytes: catalog.settings().max_event_bytes,
        envelope_bytes: 64 * 1024,
        max_batch_bytes: config.max_batch_bytes,
        body_timeout: config.body_timeout,
    };
    let state = Arc::new(AppState {
        catalog,
        contracts,
        bus: bus.clone(),
        access,
        registry,
        limits,
        metrics,
    });
    let router = app::router(state);
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, router, stop_rx, bus, config.clone()));
    Ok(Running {
        local_addr,
        stop,
        task,
        tokens: config.tokens.is_some(),
    })
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
    bus: Bus,
    config: ServeConfig,
) {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .keep_alive(true);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off briefly, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(router.clone());
                let conn = http.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    tracing::info!("draining: no new connections, finishing requests in flight");
    if tokio::time::timeout(config.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?config.drain_timeout, "drain timed out; closing the remaining connections");
    }
    bus.close().await;
}
