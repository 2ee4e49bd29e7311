//! The Prometheus exporter (feature `prometheus`): herald's recorder with
//! explicit histogram buckets and HELP text. Serving `/metrics` over HTTP is
//! the application's choice (`herald-tools` has a small axum endpoint).

use std::sync::{Mutex, OnceLock};

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

use super::{describe, names, DURATION_BUCKETS, EVENT_AGE_BUCKETS, UPKEEP_INTERVAL};

/// Errors from setting up the exporter.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The exporter configuration was rejected (e.g. empty buckets).
    #[error("building the Prometheus recorder: {0}")]
    Build(#[from] BuildError),
    /// Some other global `metrics` recorder is already installed, so herald's
    /// metrics would go there instead of to this exporter.
    #[error("another global metrics recorder is already installed")]
    RecorderAlreadyInstalled,
}

/// A handle on the installed Prometheus recorder, cheap to clone, used to
/// produce the text exposition for `/metrics` (or for tests and `promtool`).
#[derive(Clone)]
pub struct MetricsHandle {
    inner: PrometheusHandle,
}

impl std::fmt::Debug for MetricsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsHandle").finish_non_exhaustive()
    }
}

impl MetricsHandle {
    /// Wraps a handle from a recorder built with [`builder`]; for embedders
    /// that compose their own recorder stack instead of calling [`install`].
    pub fn from_prometheus(inner: PrometheusHandle) -> Self {
        Self { inner }
    }

    /// Renders every registered metric in the Prometheus text format: this is
    /// exactly what `GET /metrics` returns.
    pub fn render(&self) -> String {
        self.inner.render()
    }
}

/// herald's exporter configuration: explicit buckets for every histogram (so
/// they render as `_bucket`/`_sum`/`_count` histograms that `histogram_quantile`
/// can aggregate across instances, not as per-process summaries), and names
/// left exactly as given. Public so embedders combining recorders get the same
/// rendering.
pub fn builder() -> Result<PrometheusBuilder, MetricsError> {
    Ok(PrometheusBuilder::new()
        .set_buckets(&DURATION_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full(names::OPERATION_DURATION.to_owned()),
            &DURATION_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(names::PROCESS_DURATION.to_owned()),
            &DURATION_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(names::EVENT_AGE.to_owned()),
            &EVENT_AGE_BUCKETS,
        )?)
}

static HANDLE: OnceLock<MetricsHandle> = OnceLock::new();
static INSTALL_LOCK: Mutex<()> = Mutex::new(());

/// Installs herald's Prometheus recorder as the global `metrics` recorder and
/// returns a handle to render it. Idempotent: every call after the first
/// returns a handle to the same recorder, so a library, the CLI and tests can
/// all call it without coordinating. Also starts a background thread that
/// drains histogram samples periodically, so memory stays bounded when nobody
/// scrapes.
///
/// Fails with [`MetricsError::RecorderAlreadyInstalled`] if the process
/// already installed a different global recorder.
pub fn install() -> Result<MetricsHandle, MetricsError> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let _guard = INSTALL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = builder()?.build_recorder();
    let prometheus = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| MetricsError::RecorderAlreadyInstalled)?;
    // Descriptions must go to the global recorder; a thread-local recorder set
    // by the caller would otherwise receive them.
    describe_global();
    let upkeep = prometheus.clone();
    // If the thread cannot be spawned, scrapes still drain the histograms.
    let _ = std::thread::Builder::new()
        .name("herald-metrics-upkeep".to_owned())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            upkeep.run_upkeep();
        });
    let handle = MetricsHandle::from_prometheus(prometheus);
    let _ = HANDLE.set(handle.clone());
    Ok(handle)
}

/// Runs [`describe`] against the global recorder even when the calling
/// thread has a local recorder in scope.
fn describe_global() {
    std::thread::scope(|s| {
        s.spawn(describe);
    });
}
