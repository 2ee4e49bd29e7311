//! Errors as RFC 9457 problem details (`application/problem+json`): one shape for
//! every failure of the publish endpoints, so a client in any language can show
//! the `detail` and act on the `status`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_runtime::{PublishError, PublishErrorKind, ValidationError};
use serde::Serialize;
use serde_json::{json, Value};

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Seconds a client should wait before retrying after a 503.
pub const RETRY_AFTER_SECS: u64 = 2;

/// A problem document with its HTTP status.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// Stable URI naming the kind of problem (`urn:herald:problem:<kind>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind.
    pub title: String,
    /// The HTTP status, repeated in the body.
    pub status: u16,
    /// What went wrong with this request, and what to do next.
    pub detail: String,
    /// Schema violations (`pointer`, `keyword`, `message`), for invalid events.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Value>,
    /// The JetStream outcome is unknown; retrying with the same `Idempotency-Key` is safe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem of `kind` with `status`.
    pub fn new(status: StatusCode, kind: &str, title: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:herald:problem:{kind}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            violations: Vec::new(),
            retry_after: None,
        }
    }

    /// 503 with `Retry-After`: NATS is unreachable or the publish timed out.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Event bus unavailable",
            detail,
        );
        p.retry_after = Some(RETRY_AFTER_SECS);
        p
    }

    /// 400: the body is not what the endpoint accepts.
    pub fn bad_request(kind: &str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, kind, "Bad request", detail)
    }

    /// 413: the body is over `limit` bytes.
    pub fn too_large(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Content too large",
            detail,
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The document as JSON (used inside batch results).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({"status": self.status}))
    }
}

impl Problem {
    /// The problem for an event the catalog refuses (checked without publishing).
    pub fn from_contract(subject: &str, e: ValidationError) -> Self {
        PublishError::from_contract(subject, e).into()
    }
}

impl From<PublishError> for Problem {
    fn from(e: PublishError) -> Self {
        let detail = e.to_string();
        match e {
            PublishError::Invalid { violations, .. } => {
                let mut p = Problem::new(
                    StatusCode::BAD_REQUEST,
                    "schema-invalid",
                    "Event violates its schema",
                    detail,
                );
                p.violations = violations
                    .iter()
                    .map(|v| json!({"pointer": v.instance_path, "keyword": v.keyword, "message": v.message}))
                    .collect();
                p
            }
            e => match e.kind() {
                PublishErrorKind::Decode => Problem::bad_request("malformed-json", detail),
                PublishErrorKind::UnknownSubject => Problem::new(
                    StatusCode::NOT_FOUND,
                    "unknown-subject",
                    "Unknown subject",
                    format!("{detail}; `herald catalog` lists the subjects"),
                ),
                PublishErrorKind::UnknownSchema => Problem::bad_request("unknown-schema", detail),
                PublishErrorKind::TooLarge => Problem::too_large(detail),
                PublishErrorKind::TtlUnsupported => Problem::bad_request("ttl-unsupported", detail),
                PublishErrorKind::InvalidHeader => Problem::bad_request("invalid-header", detail),
                PublishErrorKind::PermissionDenied => Problem::new(
                    StatusCode::BAD_GATEWAY,
                    "nats-permission-denied",
                    "herald serve may not publish this subject",
                    format!("{detail}; give herald serve's NATS user publish permission on it"),
                ),
                PublishErrorKind::NoStream
                | PublishErrorKind::Rejected
                | PublishErrorKind::RetriesExhausted
                | PublishErrorKind::Invalid => Problem::unavailable(format!(
                    "{detail}; retry with the same Idempotency-Key (no duplicate is stored)"
                )),
            },
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry = self.retry_after;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut r = (status, body).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(s) = retry {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}
