//! Validated, idempotent, pipelined publishing to JetStream.
//!
//! Every publish:
//! 1. validates the event against the schema the catalog maps to the subject
//!    (or the version the caller names): an invalid event is an error naming
//!    every violation and **nothing is sent** (fail fast);
//! 2. stamps the headers in [`crate::headers`]: `Nats-Msg-Id` (the caller's
//!    idempotency key, else the event's identity field), `Content-Type`, the
//!    CloudEvents attributes and `traceparent`;
//! 3. sends through a JetStream context with a bounded number of acks in flight
//!    (backpressure: callers wait for a permit) and awaits its `PubAck`;
//! 4. retries timeouts, "no responders" and disconnects with exponential
//!    backoff and jitter (`backon`), always with the same `Nats-Msg-Id`, and
//!    only while the retry still falls inside the stream's duplicate window,
//!    so a retried publish whose first attempt was in fact stored is reported
//!    as a duplicate instead of being stored twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage};
use async_nats::HeaderMap;
use backon::BackoffBuilder;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Serialize;

use crate::connection::HeraldClient;
use crate::contracts::{Contracts, ValidationError, Violation};
use crate::headers as h;
use crate::metrics::{self, SentOutcome, Side};

/// Where an event ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReceipt {
    /// Stream that stored it.
    pub stream: String,
    /// Its stream sequence (of the original when `duplicate`).
    pub sequence: u64,
    /// JetStream had already stored an event with this `Nats-Msg-Id` within the
    /// duplicate window: nothing new was stored.
    pub duplicate: bool,
    /// The `Nats-Msg-Id` used.
    pub message_id: String,
    /// The correlation id sent.
    pub correlation_id: String,
    /// Attempts made (1 = no retry).
    pub attempts: u32,
}

/// Matchable kind of a [`PublishError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishErrorKind {
    /// The event violates its schema (nothing was sent).
    Invalid,
    /// The payload is not JSON.
    Decode,
    /// The catalog does not know the subject.
    UnknownSubject,
    /// The named schema version is unknown.
    UnknownSchema,
    /// Too large for the subject / stream / server.
    TooLarge,
    /// No stream captures the subject on the server (run `herald streams apply`).
    NoStream,
    /// The connection may not publish to the subject.
    PermissionDenied,
    /// Per-message TTL requested from a server older than 2.11.
    TtlUnsupported,
    /// A header value the caller supplied is blank (idempotency key) or holds CR, LF or NUL.
    InvalidHeader,
    /// JetStream refused the message for another reason.
    Rejected,
    /// Every retry inside the duplicate window failed; the outcome is unknown.
    RetriesExhausted,
}

/// Why a publish failed. [`PublishError::kind`] gives a matchable kind.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    /// The event violates its schema; nothing was sent.
    #[error("invalid event for {subject} ({schema_id}): {}", .violations.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// Subject.
        subject: String,
        /// Schema `$id` checked.
        schema_id: String,
        /// Every violation.
        violations: Vec<Violation>,
    },
    /// The payload is not valid JSON.
    #[error("event for {subject} is not valid JSON: {detail}")]
    Decode {
        /// Subject.
        subject: String,
        /// Parser message.
        detail: String,
    },
    /// The catalog has no such subject.
    #[error("unknown subject {0:?}: not in the catalog")]
    UnknownSubject(String),
    /// The named schema version is unknown.
    #[error("unknown schema {0:?}")]
    UnknownSchema(String),
    /// Too large: refused before sending, naming the event's size and every limit in force.
    #[error("event is {size} bytes, over the limit of {limit} bytes ({limits})")]
    TooLarge {
        /// Size of the event (payload plus headers when checked at publish).
        size: usize,
        /// The smallest limit that applies (0 when unknown).
        limit: usize,
        /// Which limits apply, e.g. `stream USAGE max_msg_size 1048576, server max_payload 1048576`.
        limits: String,
    },
    /// No stream on the server captures the subject.
    #[error("no stream on the server captures {0:?} (run `herald streams apply`)")]
    NoStream(String),
    /// Publish permission denied.
    #[error("permission denied publishing to {subject}: {detail}")]
    PermissionDenied {
        /// Subject.
        subject: String,
        /// Server message.
        detail: String,
    },
    /// TTL unsupported by the server.
    #[error("per-message TTL needs nats-server 2.11+, server is {server_version}; use the stream's max_age (topic family TTL) instead")]
    TtlUnsupported {
        /// Server version.
        server_version: String,
    },
    /// A header value the caller supplied cannot be sent; nothing was sent.
    #[error("{0}")]
    InvalidHeader(#[from] h::HeaderValueError),
    /// JetStream returned an error.
    #[error("JetStream rejected the event: {0}")]
    Rejected(String),
    /// Retries exhausted.
    #[error("publish to {subject} failed after {attempts} attempts in {elapsed:?} (outcome unknown; retrying with message id {message_id} later is safe only within the duplicate window): {last}")]
    RetriesExhausted {
        /// Subject.
        subject: String,
        /// Message id used for every attempt.
        message_id: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// Last transient error.
        last: String,
    },
}

impl PublishError {
    /// The matchable kind.
    pub fn kind(&self) -> PublishErrorKind {
        match self {
            PublishError::Invalid { .. } => PublishErrorKind::Invalid,
            PublishError::Decode { .. } => PublishErrorKind::Decode,
            PublishError::UnknownSubject(_) => PublishErrorKind::UnknownSubject,
            PublishError::UnknownSchema(_) => PublishErrorKind::UnknownSchema,
            PublishError::TooLarge { .. } => PublishErrorKind::TooLarge,
            PublishError::NoStream(_) => PublishErrorKind::NoStream,
            PublishError::PermissionDenied { .. } => PublishErrorKind::PermissionDenied,
            PublishError::TtlUnsupported { .. } => PublishErrorKind::TtlUnsupported,
            PublishError::InvalidHeader(_) => PublishErrorKind::InvalidHeader,
            PublishError::Rejected(_) => PublishErrorKind::Rejected,
            PublishError::RetriesExhausted { .. } => PublishErrorKind::RetriesExhausted,
        }
    }

    /// Whether the event itself is at fault (rejected before sending): fix the event, not the system.
    pub fn is_rejection(&self) -> bool {
        matches!(
            self.kind(),
            PublishErrorKind::Invalid
                | PublishErrorKind::Decode
                | PublishErrorKind::UnknownSubject
                | PublishErrorKind::UnknownSchema
                | PublishErrorKind::TooLarge
                | PublishErrorKind::InvalidHeader
        )
    }

    fn from_contract(subject: &str, e: ValidationError) -> Self {
        match e {
            ValidationError::UnknownSubject(s) => PublishError::UnknownSubject(s),
            ValidationError::UnknownSchema(s) => PublishError::UnknownSchema(s),
            e @ ValidationError::SchemaMismatch { .. } => {
                PublishError::UnknownSchema(e.to_string())
            }
            ValidationError::Decode(detail) => PublishError::Decode {
                subject: subject.to_string(),
                detail,
            },
            ValidationError::TooLarge { size, limit } => PublishError::TooLarge {
                size,
                limit,
                limits: format!("catalog max_event_bytes {limit}"),
            },
            ValidationError::Invalid {
                schema_id,
                violations,
            } => PublishError::Invalid {
                subject: subject.to_string(),
                schema_id,
                violations,
            },
        }
    }
}

/// Per-publish options, builder-style: `Publish::build().message_id("k").correlation_id("c")`.
#[derive(Debug, Clone, Default)]
pub struct Publish {
    message_id: Option<String>,
    correlation_id: Option<String>,
    traceparent: Option<String>,
    schema: Option<String>,
    ttl: Option<Duration>,
    reply_to: Option<String>,
    source: Option<String>,
}

impl Publish {
    /// Default options: message id from the event's identity field, fresh correlation id and trace.
    pub fn build() -> Self {
        Self::default()
    }

    /// Idempotency key (`Nats-Msg-Id`), overriding the event's identity field.
    pub fn message_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }

    /// Correlation id (`ce-correlationid`).
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// W3C `traceparent` to send as is.
    pub fn traceparent(mut self, tp: impl Into<String>) -> Self {
        self.traceparent = Some(tp.into());
        self
    }

    /// Validate against this schema `$id` (a specific version) instead of the subject's mapping.
    pub fn schema(mut self, schema_id: impl Into<String>) -> Self {
        self.schema = Some(schema_id.into());
        self
    }

    /// Per-message TTL (`Nats-TTL`); needs nats-server 2.11+ and a stream allowing it,
    /// otherwise the publish fails with [`PublishErrorKind::TtlUnsupported`].
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Reply subject for the request-response pattern (`Herald-Reply-To`).
    pub fn reply_to(mut self, subject: impl Into<String>) -> Self {
        self.reply_to = Some(subject.into());
        self
    }

    /// Override `ce-source` (defaults to the publisher's service).
    pub fn source(mut self, service: impl Into<String>) -> Self {
        self.source = Some(service.into());
        self
    }

    /// Checks every header value given: an idempotency key that is blank, or any value
    /// holding CR, LF or NUL, is an [`PublishError::InvalidHeader`] (also checked by every
    /// publish, before anything is sent).
    pub fn check(&self) -> Result<(), PublishError> {
        if let Some(k) = &self.message_id {
            h::check_key("idempotency key (Nats-Msg-Id)", k)?;
        }
        let values = [
            ("correlation id", &self.correlation_id),
            ("traceparent", &self.traceparent),
            ("reply-to", &self.reply_to),
            ("source", &self.source),
            ("schema", &self.schema),
        ];
        for (name, v) in values {
            if let Some(v) = v {
                h::check_value(name, v)?;
            }
        }
        Ok(())
    }

    /// Continue the causal chain of a consumed event: same correlation id, child trace span.
    /// A received correlation id that could not be sent again (a NUL byte) is replaced by a
    /// fresh one rather than failing the handler's publish.
    pub fn caused_by(mut self, headers: &HeaderMap) -> Self {
        if let Some(c) = headers.get(h::CE_CORRELATIONID) {
            if h::check_value("correlation id", c.as_str()).is_ok() {
                self.correlation_id = Some(c.as_str().to_string());
            }
        }
        if let Some(tp) = headers.get(h::TRACEPARENT) {
            self.traceparent = Some(h::child_traceparent(tp.as_str()));
        }
        self
    }
}

/// Publisher settings.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// Service name written to `ce-source`.
    pub service: String,
    /// Acks in flight at most (default 256).
    pub in_flight: usize,
    /// First retry delay.
    pub retry_min_delay: Duration,
    /// Largest retry delay.
    pub retry_max_delay: Duration,
    /// Upper bound on the time spent retrying; further capped at 90% of the stream's duplicate window.
    pub retry_max_elapsed: Duration,
}

impl PublisherConfig {
    /// Defaults for `service`: 256 in flight, 50 ms..2 s backoff, at most 60 s of retrying.
    pub fn new(service: impl Into<String>) -> Self {
        PublisherConfig {
            service: service.into(),
            in_flight: 256,
            retry_min_delay: Duration::from_millis(50),
            retry_max_delay: Duration::from_secs(2),
            retry_max_elapsed: Duration::from_secs(60),
        }
    }

    /// Acks in flight.
    pub fn in_flight(mut self, n: usize) -> Self {
        self.in_flight = n.max(1);
        self
    }

    /// Retry budget (still capped by the duplicate window).
    pub fn retry_max_elapsed(mut self, d: Duration) -> Self {
        self.retry_max_elapsed = d;
        self
    }
}

struct Inner {
    client: HeraldClient,
    js: jetstream::Context,
    contracts: Arc<dyn Contracts>,
    config: PublisherConfig,
    /// `max_msg_size` per stream name, from the catalog (read once, checked per publish).
    stream_limits: std::collections::HashMap<String, i32>,
}

/// Publishes validated events. Cheap to clone; share one per service.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("service", &self.inner.config.service)
            .field("in_flight", &self.inner.config.in_flight)
            .finish()
    }
}

enum Attempt {
    Retry(String),
    Fatal(PublishError),
}

/// One event to publish in a batch ([`Publisher::publish_all`]).
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Subject.
    pub subject: String,
    /// JSON payload.
    pub payload: Bytes,
    /// Options.
    pub options: Publish,
}

impl Publisher {
    /// A publisher for `config.service` over `client`, validating against `contracts`.
    pub fn new(
        client: HeraldClient,
        contracts: Arc<dyn Contracts>,
        config: PublisherConfig,
    ) -> Self {
        let js = client.publishing_context(config.in_flight);
        let stream_limits = contracts
            .streams()
            .into_iter()
            .map(|s| (s.name, s.max_msg_size))
            .collect();
        Publisher {
            inner: Arc::new(Inner {
                client,
                js,
                contracts,
                config,
                stream_limits,
            }),
        }
    }

    /// The client this publisher uses.
    pub fn client(&self) -> &HeraldClient {
        &self.inner.client
    }

    /// The catalog this publisher validates against.
    pub fn contracts(&self) -> &Arc<dyn Contracts> {
        &self.inner.contracts
    }

    /// The service name (`ce-source`).
    pub fn service(&self) -> &str {
        &self.inner.config.service
    }

    /// Publishes a typed event (serialized to JSON, then validated like any other).
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        subject: &str,
        event: &T,
        options: Publish,
    ) -> Result<PublishReceipt, PublishError> {
        let payload = serde_json::to_vec(event).map_err(|e| PublishError::Decode {
            subject: subject.to_string(),
            detail: e.to_string(),
        })?;
        self.publish_json(subject, Bytes::from(payload), options)
            .await
    }

    /// Publishes raw JSON bytes (validated first).
    pub async fn publish_json(
        &self,
        subject: &str,
        payload: impl Into<Bytes>,
        options: Publish,
    ) -> Result<PublishReceipt, PublishError> {
        let payload: Bytes = payload.into();
        let (headers, message_id, correlation_id, window) =
            self.prepare(subject, &payload, &options)?;
        let started = Instant::now();
        let result = self
            .send_with_retries(subject, headers, payload, &message_id, window)
            .await;
        let outcome = match &result {
            Ok((ack, _)) if ack.duplicate => SentOutcome::Duplicate,
            Ok(_) => SentOutcome::Ok,
            Err(_) => SentOutcome::Failed,
        };
        metrics::record_sent(
            &self.inner.config.service,
            subject,
            outcome,
            started.elapsed(),
        );
        let (ack, attempts) = result?;
        Ok(PublishReceipt {
            stream: ack.stream,
            sequence: ack.sequence,
            duplicate: ack.duplicate,
            message_id,
            correlation_id,
            attempts,
        })
    }

    /// Publishes many events with up to `in_flight` acks outstanding, yielding each
    /// result in input order (index, result).
    pub fn publish_all<I>(
        &self,
        events: I,
    ) -> impl Stream<Item = (usize, Result<PublishReceipt, PublishError>)> + '_
    where
        I: IntoIterator<Item = Outgoing>,
        I::IntoIter: Send + 'static,
    {
        let k = self.inner.config.in_flight;
        futures::stream::iter(events.into_iter().enumerate())
            .map(move |(i, o)| {
                // Each publish is its own task so validation and header building of
                // upcoming events run on every runtime worker, not only the caller's.
                let p = self.clone();
                let task =
                    tokio::spawn(
                        async move { p.publish_json(&o.subject, o.payload, o.options).await },
                    );
                async move {
                    let r = task.await.unwrap_or_else(|e| {
                        Err(PublishError::Rejected(format!("publish task failed: {e}")))
                    });
                    (i, r)
                }
            })
            .buffered(k)
    }

    /// Validates and builds headers; returns (headers, message id, correlation id, duplicate window).
    fn prepare(
        &self,
        subject: &str,
        payload: &Bytes,
        o: &Publish,
    ) -> Result<(HeaderMap, String, String, Duration), PublishError> {
        o.check()?;
        let route = self
            .inner
            .contracts
            .route(subject)
            .ok_or_else(|| PublishError::UnknownSubject(subject.to_string()))?;
        let valid = self
            .inner
            .contracts
            .validate(subject, o.schema.as_deref(), payload)
            .map_err(|e| {
                metrics::record_refusal(&route.schema, Side::Publish, e.reason());
                metrics::record_sent_outcome(
                    &self.inner.config.service,
                    subject,
                    SentOutcome::Invalid,
                );
                PublishError::from_contract(subject, e)
            })?;
        if let Some(ttl) = o.ttl {
            if !self.inner.client.supports_per_message_ttl() {
                return Err(PublishError::TtlUnsupported {
                    server_version: self.inner.client.server_version_text().to_string(),
                });
            }
            let _ = ttl;
        }
        let event_id = valid
            .value
            .get(&route.identity_field)
            .and_then(value_as_id)
            .filter(|id| h::check_value("event id", id).is_ok())
            .unwrap_or_else(h::fast_uuid);
        let message_id = o.message_id.clone().unwrap_or_else(|| event_id.clone());
        let correlation_id = o.correlation_id.clone().unwrap_or_else(h::fast_uuid);
        let time = valid
            .value
            .get("timestamp")
            .and_then(|v| v.as_str())
            .filter(|t| h::check_value("timestamp", t).is_ok())
            .map(str::to_string)
            .unwrap_or_else(|| chrono::Utc::now().to_rfc3339());
        let source = o
            .source
            .clone()
            .unwrap_or_else(|| self.inner.config.service.clone());
        let mut hm = HeaderMap::new();
        hm.insert(h::MSG_ID, message_id.as_str());
        hm.insert(h::CONTENT_TYPE, h::JSON);
        hm.insert(h::CE_SPECVERSION, "1.0");
        hm.insert(h::CE_ID, event_id.as_str());
        hm.insert(h::CE_SOURCE, source.as_str());
        hm.insert(h::CE_TYPE, subject);
        hm.insert(h::CE_TIME, time.as_str());
        hm.insert(h::CE_DATASCHEMA, valid.schema_id.as_str());
        hm.insert(h::CE_CORRELATIONID, correlation_id.as_str());
        let tp = o.traceparent.clone().unwrap_or_else(h::new_traceparent);
        hm.insert(h::TRACEPARENT, tp.as_str());
        if let Some(r) = &o.reply_to {
            hm.insert(h::REPLY_TO, r.as_str());
        }
        if let Some(ttl) = o.ttl {
            hm.insert(h::TTL, format!("{}s", ttl.as_secs().max(1)).as_str());
        }
        self.check_size(&route.stream, payload.len() + header_bytes(&hm))?;
        Ok((hm, message_id, correlation_id, route.duplicate_window))
    }

    /// Refuses an event larger than its stream's `max_msg_size` or the server's
    /// `max_payload` before sending it: the server would otherwise close the connection
    /// (max payload) or reject it after a round trip, with a message that names neither size.
    fn check_size(&self, stream: &str, size: usize) -> Result<(), PublishError> {
        let server = self.inner.client.nats().server_info().max_payload;
        let stream_max = self
            .inner
            .stream_limits
            .get(stream)
            .copied()
            .filter(|m| *m > 0)
            .map(|m| m as usize);
        let mut limits = Vec::new();
        let mut limit = usize::MAX;
        if let Some(m) = stream_max {
            limits.push(format!("stream {stream} max_msg_size {m}"));
            limit = limit.min(m);
        }
        if server > 0 {
            limits.push(format!("server max_payload {server}"));
            limit = limit.min(server);
        }
        if size > limit {
            return Err(PublishError::TooLarge {
                size,
                limit,
                limits: limits.join(", "),
            });
        }
        Ok(())
    }

    async fn send_with_retries(
        &self,
        subject: &str,
        headers: HeaderMap,
        payload: Bytes,
        message_id: &str,
        window: Duration,
    ) -> Result<(jetstream::publish::PublishAck, u32), PublishError> {
        let start = Instant::now();
        let cfg = &self.inner.config;
        let window_budget = if window.is_zero() {
            Duration::ZERO
        } else {
            window.mul_f64(0.9)
        };
        let budget = cfg.retry_max_elapsed.min(window_budget);
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(cfg.retry_min_delay)
            .with_max_delay(cfg.retry_max_delay)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match self
                .attempt(subject, headers.clone(), payload.clone())
                .await
            {
                Ok(ack) => return Ok((ack, attempts)),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(last)) => {
                    metrics::record_publish_retry(&self.inner.config.service, subject);
                    let delay = delays.next().unwrap_or(cfg.retry_max_delay);
                    if start.elapsed() + delay >= budget {
                        return Err(PublishError::RetriesExhausted {
                            subject: subject.to_string(),
                            message_id: message_id.to_string(),
                            attempts,
                            elapsed: start.elapsed(),
                            last,
                        });
                    }
                    tracing::debug!(subject, message_id, attempts, ?delay, %last, "publish retry");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn attempt(
        &self,
        subject: &str,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<jetstream::publish::PublishAck, Attempt> {
        use jetstream::context::PublishErrorKind as K;
        let msg = PublishMessage::build().payload(payload).headers(headers);
        // The server answers a denied publish with an asynchronous -ERR, never an ack:
        // watch for it so the caller learns "permission denied" at once, not after a timeout.
        let mark = self.inner.client.permission_violation_mark();
        let fut = match self.inner.js.send_publish(subject.to_string(), msg).await {
            Ok(f) => f,
            Err(e) => {
                return Err(match e.kind() {
                    K::MaxPayloadExceeded => {
                        let limit = self.inner.client.nats().server_info().max_payload;
                        Attempt::Fatal(PublishError::TooLarge {
                            size: 0,
                            limit,
                            limits: format!("server max_payload {limit}"),
                        })
                    }
                    _ => Attempt::Retry(e.to_string()),
                })
            }
        };
        let denied = self.inner.client.next_permission_violation(subject, mark);
        tokio::select! {
            r = fut => match r {
                Ok(ack) => Ok(ack),
                Err(e) => Err(self.classify(subject, e).await),
            },
            detail = denied => Err(Attempt::Fatal(PublishError::PermissionDenied {
                subject: subject.to_string(),
                detail,
            })),
        }
    }

    async fn classify(&self, subject: &str, e: jetstream::context::PublishError) -> Attempt {
        use jetstream::context::PublishErrorKind as K;
        match e.kind() {
            K::TimedOut | K::BrokenPipe => {
                if let Some(detail) = self.inner.client.permission_violation_for(subject) {
                    return Attempt::Fatal(PublishError::PermissionDenied {
                        subject: subject.to_string(),
                        detail,
                    });
                }
                Attempt::Retry(e.to_string())
            }
            K::StreamNotFound => {
                // "No responders": either no stream captures the subject, or JetStream is
                // (re)starting. Ask the server which one; retry when it cannot answer.
                match self
                    .inner
                    .client
                    .jetstream()
                    .stream_by_subject(subject.to_string())
                    .await
                {
                    Err(err)
                        if err.kind() == jetstream::context::GetStreamByNameErrorKind::NotFound =>
                    {
                        Attempt::Fatal(PublishError::NoStream(subject.to_string()))
                    }
                    _ => Attempt::Retry(e.to_string()),
                }
            }
            K::MaxPayloadExceeded => Attempt::Fatal(PublishError::TooLarge {
                size: 0,
                limit: 0,
                limits: e.to_string(),
            }),
            _ => {
                let api = std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<jetstream::Error>())
                    .cloned();
                match api {
                    Some(api) => {
                        let text = api.to_string();
                        let lower = text.to_ascii_lowercase();
                        if lower.contains("maximum") && lower.contains("size") {
                            Attempt::Fatal(PublishError::TooLarge {
                                size: 0,
                                limit: 0,
                                limits: text,
                            })
                        } else if api.code() == 503 {
                            // JetStream temporarily unavailable (leader election, restart).
                            Attempt::Retry(text)
                        } else {
                            Attempt::Fatal(PublishError::Rejected(text))
                        }
                    }
                    None => Attempt::Retry(e.to_string()),
                }
            }
        }
    }
}

/// Bytes the headers take on the wire (`NATS/1.0\r\n`, `Name: value\r\n` each, `\r\n`):
/// JetStream counts them against `max_msg_size`, the server against `max_payload`.
fn header_bytes(hm: &HeaderMap) -> usize {
    let mut n = 12;
    for (name, values) in hm.iter() {
        let name: &str = name.as_ref();
        for v in values {
            n += name.len() + v.as_str().len() + 4;
        }
    }
    n
}

/// An identity value as a message id: strings as is, numbers in decimal.
fn value_as_id(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
