//! `POST /v1/events/{subject}` and `POST /v1/events/{subject}:batch`.
//!
//! Order of checks, so that a refused request costs little and publishes nothing:
//! token (401), subject (404), producer (403), media type (415), size (413),
//! body read deadline (408), body (400), bus (503). A 202 is sent only after
//! JetStream's `PubAck`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use herald_runtime::publisher::Outgoing;
use herald_runtime::{Publish, PublishReceipt};
use serde_json::json;

use crate::access::Caller;
use crate::app::AppState;
use crate::cloudevents::{self, BodyKind, Incoming};
use crate::problem::Problem;

/// Most events in one batch request.
pub const MAX_BATCH_EVENTS: usize = 1_000;

/// The handler of both publish routes.
pub async fn post_events(
    State(app): State<Arc<AppState>>,
    Path(target): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = match target.strip_suffix(":batch") {
        Some(subject) => batch(&app, subject, &headers, body).await,
        None => single(&app, &target, &headers, body).await,
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// 401 / 404 / 403 before the body is read.
fn admit(app: &AppState, subject: &str, headers: &HeaderMap) -> Result<Caller, Problem> {
    let caller = app.access.authenticate(headers)?;
    let Some(topic) = app
        .catalog
        .topic_for_subject(subject)
        .filter(|_| app.catalog.subject(subject).is_some())
    else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "unknown-subject",
            "Unknown subject",
            format!(
                "subject {subject:?} is not in the catalog; `herald catalog` lists the subjects"
            ),
        ));
    };
    app.access.authorize(&caller, &topic.name, subject)?;
    Ok(caller)
}

/// Reads at most `limit` bytes within the body deadline (413 above, 408 when too slow).
async fn read_body(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, Problem> {
    let too_large = |n: String| {
        Problem::too_large(format!(
            "the body is {n} bytes, over the limit of {limit} bytes"
        ))
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit as u64 {
            return Err(too_large(len.to_string()));
        }
    }
    let read = async {
        let mut buf = BytesMut::new();
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                Problem::bad_request("body", format!("cannot read the request body: {e}"))
            })?;
            if buf.len() + chunk.len() > limit {
                return Err(too_large(format!("more than {limit}")));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    };
    match tokio::time::timeout(app.limits.body_timeout, read).await {
        Ok(r) => r,
        Err(_) => Err(Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "body-timeout",
            "Request body too slow",
            format!(
                "the body did not arrive within {:?}; send it at once",
                app.limits.body_timeout
            ),
        )),
    }
}

fn with_source(caller: &Caller, incoming: &Incoming, options: Publish) -> Publish {
    match (caller, &incoming.source) {
        (Caller::Service(s), _) => options.source(s.clone()),
        (Caller::Local, Some(s)) => options.source(s.clone()),
        (Caller::Local, None) => options,
    }
}

fn accepted(r: &PublishReceipt) -> serde_json::Value {
    json!({
        "stream": r.stream,
        "seq": r.sequence,
        "duplicate": r.duplicate,
        "message_id": r.message_id,
        "correlation_id": r.correlation_id,
    })
}

/// Without a connection: 400 for an invalid event (checked locally), else 503.
fn offline(app: &AppState, subject: &str, payload: &[u8], schema: Option<&str>) -> Problem {
    match app.contracts.validate(subject, schema, payload) {
        Err(e) => Problem::from_contract(subject, e),
        Ok(_) => Problem::unavailable(
            "not connected to NATS; retry with the same Idempotency-Key (no duplicate is stored)",
        ),
    }
}

async fn single(
    app: &AppState,
    subject: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let caller = admit(app, subject, headers)?;
    let kind = cloudevents::single_kind(headers)?;
    let limit = app.limits.max_event_bytes + app.limits.envelope_bytes;
    let bytes = read_body(app, headers, body, limit).await?;
    let incoming = cloudevents::read_single(kind, headers, bytes)?;
    let options = with_source(&caller, &incoming, incoming.options.clone());
    let publisher = match app.bus.publisher().filter(|_| app.bus.connected()) {
        Some(p) => p,
        None => {
            let hint = incoming_schema(headers, kind, &incoming);
            return Err(offline(app, subject, &incoming.payload, hint.as_deref()));
        }
    };
    let receipt = publisher
        .publish_json(subject, incoming.payload, options)
        .await
        .map_err(Problem::from)?;
    Ok((StatusCode::ACCEPTED, axum::Json(accepted(&receipt))).into_response())
}

/// The schema hint of a request, for validating without a connection.
fn incoming_schema(headers: &HeaderMap, kind: BodyKind, _i: &Incoming) -> Option<String> {
    match kind {
        BodyKind::Json | BodyKind::Lines => headers
            .get(herald_runtime::headers::CE_DATASCHEMA)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        BodyKind::Structured => None,
    }
}

async fn batch(
    app: &AppState,
    subject: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let caller = admit(app, subject, headers)?;
    cloudevents::batch_kind(headers)?;
    let base = cloudevents::header_options(headers)?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string);
    let bytes = read_body(app, headers, body, app.limits.max_batch_bytes).await?;
    let lines: Vec<(usize, Bytes)> = bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| l.iter().any(|b| !b.is_ascii_whitespace()))
        .map(|(i, l)| (i + 1, bytes.slice_ref(l)))
        .collect();
    if lines.len() > MAX_BATCH_EVENTS {
        return Err(Problem::too_large(format!(
            "the batch has {} events, over the limit of {MAX_BATCH_EVENTS}: split it",
            lines.len()
        )));
    }
    let source = match &caller {
        Caller::Service(s) => Some(s.clone()),
        Caller::Local => None,
    };
    let options = |line: usize| {
        let mut o = base.clone();
        if let Some(k) = &key {
            o = o.message_id(format!("{k}:{line}"));
        }
        if let Some(s) = &source {
            o = o.source(s.clone());
        }
        o
    };
    let mut out = Vec::with_capacity(lines.len());
    match app.bus.publisher().filter(|_| app.bus.connected()) {
        None => {
            for (line, payload) in &lines {
                let p = offline(app, subject, payload, None);
                out.push(json!({"line": line, "status": p.status, "problem": p.to_value()}));
            }
        }
        Some(publisher) => {
            let outgoing: Vec<Outgoing> = lines
                .iter()
                .map(|(line, payload)| Outgoing {
                    subject: subject.to_string(),
                    payload: payload.clone(),
                    options: options(*line),
                })
                .collect();
            let mut results: Vec<_> = publisher.publish_all(outgoing).collect().await;
            results.sort_by_key(|(i, _)| *i);
            for (i, r) in results {
                let line = lines[i].0;
                out.push(match r {
                    Ok(receipt) => {
                        let mut v = accepted(&receipt);
                        v["line"] = json!(line);
                        v["status"] = json!(202);
                        v
                    }
                    Err(e) => {
                        let p = Problem::from(e);
                        json!({"line": line, "status": p.status, "problem": p.to_value()})
                    }
                });
            }
        }
    }
    let mut body = Vec::new();
    for v in out {
        body.extend_from_slice(v.to_string().as_bytes());
        body.push(b'\n');
    }
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(r)
}
