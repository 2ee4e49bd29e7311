//! `GET /metrics` over HTTP: the endpoint `--metrics-addr` serves on every
//! long-running `herald` command. Services with an HTTP server of their own
//! merge [`router`] into it instead.

use std::io;
use std::net::SocketAddr;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use herald_runtime::metrics::{install, MetricsError, MetricsHandle, CONTENT_TYPE};
use tokio::task::JoinHandle;

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The recorder could not be installed.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The metrics listener could not bind its address.
    #[error("binding metrics listener on {addr}: {source}")]
    Bind {
        /// The address that was requested.
        addr: SocketAddr,
        /// The underlying error.
        source: io::Error,
    },
}

/// An axum router serving `GET /metrics` (the Prometheus text format) from
/// `handle`. A service with its own HTTP server merges it in to get a scrape
/// endpoint with one call: `app.merge(router(metrics::install()?))`.
pub fn router(handle: MetricsHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, CONTENT_TYPE)],
                    handle.render(),
                )
                    .into_response()
            }
        }),
    )
}

/// A running metrics server started by [`serve`].
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    task: JoinHandle<io::Result<()>>,
}

impl MetricsServer {
    /// The address actually bound: differs from the requested one when port
    /// 0 was asked for (tests, or letting the OS pick).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The task running the server, to await (it only ends on an I/O error)
    /// or to select on alongside the service's main loop.
    pub fn into_join_handle(self) -> JoinHandle<io::Result<()>> {
        self.task
    }

    /// Stops the server.
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// Installs the recorder and serves `GET /metrics` on `addr` in a spawned
/// task. Binding happens before returning, so an address in use is reported
/// at once rather than lost in a background task. Must be called inside a
/// tokio runtime.
pub async fn serve(addr: SocketAddr) -> Result<MetricsServer, ServeError> {
    let handle = install()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    let app = router(handle);
    let task = tokio::spawn(async move { axum::serve(listener, app).await });
    tracing::info!(%local_addr, "serving Prometheus metrics on /metrics");
    Ok(MetricsServer { local_addr, task })
}
