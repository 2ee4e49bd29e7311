//! The router: every route, the shared state, and the layers every request goes
//! through (path check, HTTP metrics).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use herald_contracts::Catalog;
use herald_runtime::metrics::MetricsHandle;
use herald_runtime::Contracts;
use serde_json::json;

use crate::access::Access;
use crate::bus::Bus;
use crate::problem::Problem;
use crate::registry::Registry;
use crate::{publish, registry, schemas};

/// HTTP requests served, by method, route and status.
pub const HTTP_REQUESTS: &str = "herald_http_requests_total";
/// HTTP request durations, by method and route.
pub const HTTP_DURATION: &str = "herald_http_request_duration_seconds";

/// Size and time limits of the HTTP side.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The catalog's `max_event_bytes`.
    pub max_event_bytes: usize,
    /// Room for a structured-mode CloudEvent envelope around the event.
    pub envelope_bytes: usize,
    /// Largest batch body.
    pub max_batch_bytes: usize,
    /// Longest time a request body may take to arrive.
    pub body_timeout: Duration,
}

/// What every handler shares.
pub struct AppState {
    /// The contracts.
    pub catalog: Arc<Catalog>,
    /// The same, as the runtime's interface.
    pub contracts: Arc<dyn Contracts>,
    /// The NATS connection.
    pub bus: Bus,
    /// Tokens and producers.
    pub access: Access,
    /// The Schema Registry view of the catalog.
    pub registry: Registry,
    /// Limits.
    pub limits: Limits,
    /// The Prometheus recorder.
    pub metrics: MetricsHandle,
}

/// Every route of `herald serve`.
pub fn router(state: Arc<AppState>) -> Router {
    let schema_path = format!("{}{{name}}/{{file}}", state.registry.base_path());
    let r = Router::new()
        .route("/v1/events/{target}", post(publish::post_events))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics));
    let r = registry::routes(r);
    let r = if schema_path.starts_with("/schemas/ids/") {
        r
    } else {
        r.route(&schema_path, get(schemas::get_schema))
    };
    r.fallback(not_found)
        .layer(middleware::from_fn(record_http))
        .layer(middleware::from_fn(refuse_dot_segments))
        .with_state(state)
}

async fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        "no such endpoint; see the README's `herald serve` section",
    )
}

/// 400 for a path with a `.` or `..` segment (also percent-encoded): such a path
/// names nothing here, and must never reach a handler.
async fn refuse_dot_segments(req: Request, next: Next) -> Response {
    let bad = req.uri().path().split('/').any(|seg| {
        let s = seg.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".." || seg.contains("%2f") || seg.contains("%2F") || seg.contains('\\')
    });
    if bad {
        return Problem::bad_request(
            "bad-path",
            "the path has a `.` or `..` segment (or an encoded slash); use the plain endpoint path",
        )
        .into_response();
    }
    next.run(req).await
}

/// Counts and times every request by its route template (never the raw path, so
/// the label set stays bounded).
async fn record_http(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp
}

/// Describes the HTTP metrics to the recorder.
pub fn describe_http_metrics() {
    metrics::describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests served by herald serve, by method, route and status."
    );
    metrics::describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request durations in herald serve, by method and route."
    );
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// 200 when connected and every catalog stream exists, else 503 saying what is missing.
async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    let Some(client) = app.bus.client().filter(|_| app.bus.connected()) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"ready": false, "connected": false, "missing_streams": []})),
        )
            .into_response();
    };
    let mut missing = Vec::new();
    for s in app.contracts.streams() {
        let found = tokio::time::timeout(
            Duration::from_secs(2),
            client.jetstream().get_stream(s.name.clone()),
        )
        .await;
        if !matches!(found, Ok(Ok(_))) {
            missing.push(s.name);
        }
    }
    let ready = missing.is_empty();
    let body = json!({"ready": ready, "connected": true, "missing_streams": missing});
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, herald_runtime::metrics::CONTENT_TYPE)],
        app.metrics.render(),
    )
        .into_response()
}
