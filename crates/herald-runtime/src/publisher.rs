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

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage};
use async_nats::{HeaderMap, HeaderValue, Subject};
use backon::BackoffBuilder;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Serialize;

use crate::connection::HeraldClient;
use crate::contracts::{Contracts, Route, ValidEvent, ValidationError, Violation};
use crate::headers::{self as h, names};
use crate::metrics::{self, PublishMetrics, SentOutcome, Side};

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

    /// The publish error for an event the contracts refuse on `subject` (what
    /// [`Publisher::publish`] returns without sending; `herald serve` maps it to HTTP).
    pub fn from_contract(subject: &str, e: ValidationError) -> Self {
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
    stream_limits: HashMap<String, i32>,
    /// `ce-source` of every event that does not override it.
    source: HeaderValue,
    /// The server's `max_payload` at connect (0: none). Read once: `server_info()` copies
    /// the whole INFO, a dozen strings, per call. A server reached after a reconnect with
    /// a smaller limit is still caught by the client's own check (`TooLarge`).
    max_payload: usize,
    /// Per catalog subject, what every publish to it needs (see [`SubjectPlan`]).
    plans: RwLock<HashMap<String, Arc<SubjectPlan>>>,
}

/// Most subjects a publisher keeps a [`SubjectPlan`] for; past it (a catalog with
/// wildcard subjects fed endless concrete ones) plans are built per publish instead,
/// so memory stays bounded.
const MAX_PLANS: usize = 4096;

/// What publishing to one catalog subject needs, worked out on its first publish and
/// reused by every later one: the route (stream, identity field, duplicate window),
/// pre-registered metric handles, the `ce-type` header value and the stream's size
/// limit. Without it each event paid for a catalog lookup, three label vectors and
/// a registry lookup per metric, and several string copies.
struct SubjectPlan {
    subject: Subject,
    route: Route,
    metrics: PublishMetrics,
    ce_type: HeaderValue,
    /// The stream's `max_msg_size`, when it sets one.
    stream_max: Option<usize>,
}

/// The per-event header values of one publish, kept so a retry can stamp the same
/// headers again (same `Nats-Msg-Id`) without cloning a whole `HeaderMap` up front.
struct Stamp {
    message_id: String,
    event_id: String,
    correlation_id: String,
    time: String,
    schema_id: String,
    traceparent: String,
    source: Option<String>,
    reply_to: Option<String>,
    ttl: Option<Duration>,
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
        let source = HeaderValue::from(config.service.as_str());
        let max_payload = client.nats().server_info().max_payload;
        Publisher {
            inner: Arc::new(Inner {
                client,
                js,
                contracts,
                config,
                stream_limits,
                source,
                max_payload,
                plans: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// The plan for `subject`, built on its first publish; `None` when the catalog does
    /// not know the subject.
    fn plan(&self, subject: &str) -> Option<Arc<SubjectPlan>> {
        let plans = &self.inner.plans;
        if let Some(p) = plans.read().unwrap_or_else(|p| p.into_inner()).get(subject) {
            return Some(p.clone());
        }
        let route = self.inner.contracts.route(subject)?;
        let stream_max = self
            .inner
            .stream_limits
            .get(&route.stream)
            .copied()
            .filter(|m| *m > 0)
            .map(|m| m as usize);
        let plan = Arc::new(SubjectPlan {
            subject: Subject::from(subject),
            metrics: PublishMetrics::new(&self.inner.config.service, subject),
            ce_type: HeaderValue::from(subject),
            route,
            stream_max,
        });
        let mut w = plans.write().unwrap_or_else(|p| p.into_inner());
        if w.len() < MAX_PLANS {
            w.insert(subject.to_string(), plan.clone());
        }
        Some(plan)
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

    /// Publishes a typed event, validated like any other. The event is turned into a
    /// JSON value once and validated as that value, then written out: the bytes sent are
    /// never parsed back (the serialize-then-reparse round trip cost as much as the
    /// validation itself).
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        subject: &str,
        event: &T,
        options: Publish,
    ) -> Result<PublishReceipt, PublishError> {
        let decode = |e: serde_json::Error| PublishError::Decode {
            subject: subject.to_string(),
            detail: e.to_string(),
        };
        options.check()?;
        let value = serde_json::to_value(event).map_err(decode)?;
        let payload = Bytes::from(serde_json::to_vec(&value).map_err(decode)?);
        let plan = self
            .plan(subject)
            .ok_or_else(|| PublishError::UnknownSubject(subject.to_string()))?;
        let valid = self.inner.contracts.validate_value(
            subject,
            options.schema.as_deref(),
            value,
            payload.len(),
        );
        self.send_valid(&plan, payload, valid, options).await
    }

    /// Publishes raw JSON bytes (validated first).
    pub async fn publish_json(
        &self,
        subject: &str,
        payload: impl Into<Bytes>,
        options: Publish,
    ) -> Result<PublishReceipt, PublishError> {
        options.check()?;
        let payload: Bytes = payload.into();
        let plan = self
            .plan(subject)
            .ok_or_else(|| PublishError::UnknownSubject(subject.to_string()))?;
        let valid = self
            .inner
            .contracts
            .validate(subject, options.schema.as_deref(), &payload);
        self.send_valid(&plan, payload, valid, options).await
    }

    /// Stamps and sends an event whose validation result is `valid`.
    async fn send_valid(
        &self,
        plan: &SubjectPlan,
        payload: Bytes,
        valid: Result<ValidEvent, ValidationError>,
        options: Publish,
    ) -> Result<PublishReceipt, PublishError> {
        let (stamp, headers) = self.prepare(plan, &payload, valid, options)?;
        let started = Instant::now();
        let result = self.send_with_retries(plan, &stamp, headers, payload).await;
        let outcome = match &result {
            Ok((ack, _)) if ack.duplicate => SentOutcome::Duplicate,
            Ok(_) => SentOutcome::Ok,
            Err(_) => SentOutcome::Failed,
        };
        plan.metrics.record_sent(outcome, started.elapsed());
        let (ack, attempts) = result?;
        Ok(PublishReceipt {
            stream: ack.stream,
            sequence: ack.sequence,
            duplicate: ack.duplicate,
            message_id: stamp.message_id,
            correlation_id: stamp.correlation_id,
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
        // The publishes run as futures of the caller's task, not as one spawned task each:
        // the work per event is a few microseconds, less than spawning and joining a
        // task costs, and the server is the other process competing for the cores.
        futures::stream::iter(events.into_iter().enumerate())
            .map(move |(i, o)| async move {
                (i, self.publish_json(&o.subject, o.payload, o.options).await)
            })
            .buffered(k)
    }

    /// Checks the validation result and works out the event's headers (its stamp, and
    /// the header map of the first attempt).
    fn prepare(
        &self,
        plan: &SubjectPlan,
        payload: &Bytes,
        valid: Result<ValidEvent, ValidationError>,
        o: Publish,
    ) -> Result<(Stamp, HeaderMap), PublishError> {
        o.check()?;
        let subject = plan.subject.as_str();
        let valid = valid.map_err(|e| {
            metrics::record_refusal(&plan.route.schema, Side::Publish, e.reason());
            plan.metrics.record_outcome(SentOutcome::Invalid);
            PublishError::from_contract(subject, e)
        })?;
        if o.ttl.is_some() && !self.inner.client.supports_per_message_ttl() {
            return Err(PublishError::TtlUnsupported {
                server_version: self.inner.client.server_version_text().to_string(),
            });
        }
        let ValidEvent { schema_id, value } = valid;
        let event_id = value
            .get(&plan.route.identity_field)
            .and_then(value_as_id)
            .filter(|id| h::check_value("event id", id).is_ok())
            .unwrap_or_else(h::fast_uuid);
        let message_id = o.message_id.unwrap_or_else(|| event_id.clone());
        let stamp = Stamp {
            message_id,
            event_id,
            correlation_id: o.correlation_id.unwrap_or_else(h::fast_uuid),
            time: value
                .get("timestamp")
                .and_then(|v| v.as_str())
                .filter(|t| h::check_value("timestamp", t).is_ok())
                .map(str::to_string)
                .unwrap_or_else(|| chrono::Utc::now().to_rfc3339()),
            schema_id,
            traceparent: o.traceparent.unwrap_or_else(h::new_traceparent),
            source: o.source,
            reply_to: o.reply_to,
            ttl: o.ttl,
        };
        let headers = self.headers(plan, &stamp);
        self.check_size(plan, payload.len() + header_bytes(&headers))?;
        Ok((stamp, headers))
    }

    /// The headers of one event (built again for each retry, identical each time).
    fn headers(&self, plan: &SubjectPlan, s: &Stamp) -> HeaderMap {
        let mut hm = HeaderMap::new();
        hm.insert(names::msg_id(), s.message_id.as_str());
        hm.insert(names::content_type(), h::JSON);
        hm.insert(names::ce_specversion(), "1.0");
        hm.insert(names::ce_id(), s.event_id.as_str());
        let source = match &s.source {
            Some(src) => HeaderValue::from(src.as_str()),
            None => self.inner.source.clone(),
        };
        hm.insert(names::ce_source(), source);
        hm.insert(names::ce_type(), plan.ce_type.clone());
        hm.insert(names::ce_time(), s.time.as_str());
        hm.insert(names::ce_dataschema(), s.schema_id.as_str());
        hm.insert(names::ce_correlationid(), s.correlation_id.as_str());
        hm.insert(names::traceparent(), s.traceparent.as_str());
        if let Some(r) = &s.reply_to {
            hm.insert(names::reply_to(), r.as_str());
        }
        if let Some(ttl) = s.ttl {
            hm.insert(names::ttl(), format!("{}s", ttl.as_secs().max(1)));
        }
        hm
    }

    /// Refuses an event larger than its stream's `max_msg_size` or the server's
    /// `max_payload` before sending it: the server would otherwise close the connection
    /// (max payload) or reject it after a round trip, with a message that names neither size.
    fn check_size(&self, plan: &SubjectPlan, size: usize) -> Result<(), PublishError> {
        let server = self.inner.max_payload;
        let limit =
            plan.stream_max
                .unwrap_or(usize::MAX)
                .min(if server > 0 { server } else { usize::MAX });
        if size <= limit {
            return Ok(());
        }
        // Only a refused event pays for the text naming every limit.
        let mut limits = Vec::new();
        if let Some(m) = plan.stream_max {
            limits.push(format!("stream {} max_msg_size {m}", plan.route.stream));
        }
        if server > 0 {
            limits.push(format!("server max_payload {server}"));
        }
        Err(PublishError::TooLarge {
            size,
            limit,
            limits: limits.join(", "),
        })
    }

    async fn send_with_retries(
        &self,
        plan: &SubjectPlan,
        stamp: &Stamp,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<(jetstream::publish::PublishAck, u32), PublishError> {
        let start = Instant::now();
        let mut headers = Some(headers);
        let mut retry: Option<Retrying> = None;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let h = headers.take().unwrap_or_else(|| self.headers(plan, stamp));
            let last = match self.attempt(plan, h, payload.clone()).await {
                Ok(ack) => return Ok((ack, attempts)),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(last)) => last,
            };
            plan.metrics.record_retry();
            // Set up on the first retry only: most publishes never need it.
            let r = retry.get_or_insert_with(|| Retrying::new(&self.inner.config, plan, start));
            let delay = r.delays.next().unwrap_or(self.inner.config.retry_max_delay);
            if r.start.elapsed() + delay >= r.budget {
                return Err(PublishError::RetriesExhausted {
                    subject: plan.subject.to_string(),
                    message_id: stamp.message_id.clone(),
                    attempts,
                    elapsed: r.start.elapsed(),
                    last,
                });
            }
            tracing::debug!(subject = %plan.subject, message_id = %stamp.message_id, attempts, ?delay, %last, "publish retry");
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(
        &self,
        plan: &SubjectPlan,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<jetstream::publish::PublishAck, Attempt> {
        use jetstream::context::PublishErrorKind as K;
        let subject = plan.subject.as_str();
        let msg = PublishMessage::build().payload(payload).headers(headers);
        // The server answers a denied publish with an asynchronous -ERR, never an ack:
        // watch for it so the caller learns "permission denied" at once, not after a timeout.
        let mark = self.inner.client.permission_violation_mark();
        let fut = match self.inner.js.send_publish(plan.subject.clone(), msg).await {
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

/// The retry state of one publish: its backoff, and how long it may keep trying.
struct Retrying {
    start: Instant,
    budget: Duration,
    delays: backon::ExponentialBackoff,
}

impl Retrying {
    /// Retries stop inside the subject's duplicate window (90 % of it), so that every
    /// attempt, with the same `Nats-Msg-Id`, is still deduplicated by the server.
    fn new(cfg: &PublisherConfig, plan: &SubjectPlan, start: Instant) -> Self {
        let window = plan.route.duplicate_window;
        let window_budget = if window.is_zero() {
            Duration::ZERO
        } else {
            window.mul_f64(0.9)
        };
        Retrying {
            start,
            budget: cfg.retry_max_elapsed.min(window_budget),
            delays: backon::ExponentialBuilder::default()
                .with_min_delay(cfg.retry_min_delay)
                .with_max_delay(cfg.retry_max_delay)
                .with_factor(2.0)
                .with_jitter()
                .without_max_times()
                .build(),
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
