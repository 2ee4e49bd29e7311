//! Reading a publish request: the event bytes and the publish options, from a
//! plain JSON body or either mode of the CloudEvents HTTP binding.
//!
//! - **raw / binary mode** (`Content-Type: application/json`): the body is the
//!   event; `ce-*` headers, when present, carry the CloudEvents attributes
//!   (`ce-specversion` must then be `1.0`);
//! - **structured mode** (`Content-Type: application/cloudevents+json`): the
//!   body is the CloudEvent, the event is its `data` member.
//!
//! In both, `Idempotency-Key` becomes the `Nats-Msg-Id` (else the catalog's
//! identity field does), `ce-dataschema` / `dataschema` names the schema version
//! to validate against, `traceparent` and the correlation id
//! (`ce-correlationid`, `correlationid`, or `X-Correlation-Id`) are carried into
//! the NATS headers.

use axum::http::{header, HeaderMap, StatusCode};
use bytes::Bytes;
use herald_runtime::headers as h;
use herald_runtime::Publish;
use serde_json::Value;

use crate::problem::Problem;

/// Longest idempotency key or correlation id accepted.
pub const MAX_ID_LEN: usize = 256;

/// What a request body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// One event, or a binary-mode CloudEvent.
    Json,
    /// A structured-mode CloudEvent.
    Structured,
    /// JSON Lines (batch endpoint).
    Lines,
}

/// The media type of the request (lowercase, parameters dropped).
fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

fn unsupported(got: Option<String>, expected: &str) -> Problem {
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
        format!(
            "Content-Type {} is not accepted here: send {expected}",
            got.map(|g| format!("{g:?}"))
                .unwrap_or_else(|| "(none)".into())
        ),
    )
}

/// The body kind of a single-event request (415 for anything else).
pub fn single_kind(headers: &HeaderMap) -> Result<BodyKind, Problem> {
    match media_type(headers).as_deref() {
        Some("application/json") => Ok(BodyKind::Json),
        Some("application/cloudevents+json") => Ok(BodyKind::Structured),
        other => Err(unsupported(
            other.map(str::to_string),
            "application/json (raw or CloudEvents binary mode) or application/cloudevents+json (structured mode)",
        )),
    }
}

/// The body kind of a batch request (415 for anything but JSON Lines).
pub fn batch_kind(headers: &HeaderMap) -> Result<BodyKind, Problem> {
    match media_type(headers).as_deref() {
        Some(
            "application/x-ndjson"
            | "application/jsonl"
            | "application/json-lines"
            | "application/x-jsonlines",
        ) => Ok(BodyKind::Lines),
        other => Err(unsupported(
            other.map(str::to_string),
            "application/x-ndjson (one event per line)",
        )),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn checked_id(what: &str, v: &str) -> Result<String, Problem> {
    if v.len() > MAX_ID_LEN || !v.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(Problem::bad_request(
            "bad-header",
            format!("{what} must be 1 to {MAX_ID_LEN} printable ASCII characters without spaces"),
        ));
    }
    Ok(v.to_string())
}

/// Options every request carries in its HTTP headers (also used for each batch line).
pub fn header_options(headers: &HeaderMap) -> Result<Publish, Problem> {
    let mut o = Publish::build();
    if let Some(k) = header_str(headers, "idempotency-key") {
        o = o.message_id(checked_id("Idempotency-Key", k)?);
    }
    let correlation = header_str(headers, h::CE_CORRELATIONID)
        .or_else(|| header_str(headers, "x-correlation-id"))
        .or_else(|| header_str(headers, "correlation-id"));
    if let Some(c) = correlation {
        o = o.correlation_id(checked_id("the correlation id", c)?);
    }
    if let Some(tp) = header_str(headers, h::TRACEPARENT) {
        // A malformed traceparent is ignored (W3C Trace Context), never passed on.
        if h::trace_id(tp).is_some() {
            o = o.traceparent(tp);
        }
    }
    Ok(o)
}

/// An event ready to publish.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The event's JSON.
    pub payload: Bytes,
    /// Publish options from the headers and CloudEvents attributes.
    pub options: Publish,
    /// `ce-source` the client named (used only without tokens).
    pub source: Option<String>,
}

/// Reads a single-event request body of `kind`.
pub fn read_single(kind: BodyKind, headers: &HeaderMap, body: Bytes) -> Result<Incoming, Problem> {
    let mut options = header_options(headers)?;
    match kind {
        BodyKind::Json | BodyKind::Lines => {
            let source = header_str(headers, h::CE_SOURCE).map(str::to_string);
            if let Some(v) = header_str(headers, h::CE_SPECVERSION) {
                if v != "1.0" {
                    return Err(Problem::bad_request(
                        "cloudevents",
                        format!("ce-specversion {v:?} is not supported: send 1.0"),
                    ));
                }
            }
            if let Some(s) = header_str(headers, h::CE_DATASCHEMA) {
                options = options.schema(s);
            }
            Ok(Incoming {
                payload: body,
                options,
                source,
            })
        }
        BodyKind::Structured => {
            let ce: Value = serde_json::from_slice(&body).map_err(|e| {
                Problem::bad_request(
                    "malformed-json",
                    format!("the CloudEvent is not valid JSON: {e}"),
                )
            })?;
            let Some(obj) = ce.as_object() else {
                return Err(Problem::bad_request(
                    "cloudevents",
                    "a structured CloudEvent must be a JSON object",
                ));
            };
            let attr = |k: &str| obj.get(k).and_then(Value::as_str);
            if attr("specversion") != Some("1.0") {
                return Err(Problem::bad_request(
                    "cloudevents",
                    "the CloudEvent needs \"specversion\": \"1.0\"",
                ));
            }
            if let Some(ct) = attr("datacontenttype") {
                let ct = ct.split(';').next().unwrap_or("").trim();
                if !ct.eq_ignore_ascii_case("application/json") {
                    return Err(Problem::new(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "unsupported-media-type",
                        "Unsupported media type",
                        format!(
                            "datacontenttype {ct:?} is not accepted: events are application/json"
                        ),
                    ));
                }
            }
            if obj.contains_key("data_base64") {
                return Err(Problem::bad_request(
                    "cloudevents",
                    "data_base64 is not accepted: put the event as JSON in \"data\"",
                ));
            }
            let Some(data) = obj.get("data") else {
                return Err(Problem::bad_request(
                    "cloudevents",
                    "the CloudEvent has no \"data\" member",
                ));
            };
            if let Some(s) = attr("dataschema") {
                options = options.schema(s);
            }
            if let Some(c) = attr("correlationid") {
                options = options.correlation_id(checked_id("correlationid", c)?);
            }
            if let Some(tp) = attr("traceparent") {
                if h::trace_id(tp).is_some() {
                    options = options.traceparent(tp);
                }
            }
            let payload = serde_json::to_vec(data).unwrap_or_default();
            Ok(Incoming {
                payload: Bytes::from(payload),
                options,
                source: attr("source").map(str::to_string),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn content_types_pick_the_mode() {
        let h = headers(&[("content-type", "application/json; charset=utf-8")]);
        assert_eq!(single_kind(&h).unwrap(), BodyKind::Json);
        let h = headers(&[("content-type", "application/cloudevents+json")]);
        assert_eq!(single_kind(&h).unwrap(), BodyKind::Structured);
        let h = headers(&[("content-type", "text/plain")]);
        assert_eq!(single_kind(&h).unwrap_err().status, 415);
        assert_eq!(single_kind(&HeaderMap::new()).unwrap_err().status, 415);
        let h = headers(&[("content-type", "application/json")]);
        assert_eq!(batch_kind(&h).unwrap_err().status, 415);
    }

    #[test]
    fn structured_mode_takes_data_and_refuses_base64() {
        let h = HeaderMap::new();
        let ce = br#"{"specversion":"1.0","id":"1","source":"s","type":"t","data":{"a":1}}"#;
        let i = read_single(BodyKind::Structured, &h, Bytes::from_static(ce)).unwrap();
        assert_eq!(&i.payload[..], br#"{"a":1}"#);
        assert_eq!(i.source.as_deref(), Some("s"));
        let ce = br#"{"specversion":"1.0","data_base64":"e30="}"#;
        let e = read_single(BodyKind::Structured, &h, Bytes::from_static(ce)).unwrap_err();
        assert!(e.detail.contains("data_base64"), "{}", e.detail);
        let ce = br#"{"specversion":"0.3","data":{}}"#;
        assert_eq!(
            read_single(BodyKind::Structured, &h, Bytes::from_static(ce))
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn ids_with_spaces_or_too_long_are_refused() {
        let h = headers(&[("idempotency-key", "a b")]);
        assert_eq!(header_options(&h).unwrap_err().status, 400);
        let long = "k".repeat(MAX_ID_LEN + 1);
        let h = headers(&[("idempotency-key", long.as_str())]);
        assert_eq!(header_options(&h).unwrap_err().status, 400);
    }
}
