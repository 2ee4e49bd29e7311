//! Prometheus metrics for herald publishers, consumers and monitors.
//!
//! Why this module exists: the spec's "Monitoring" section asks for publish and
//! consumption rates per service, processing latency and failure rates, and
//! the alert rules in `deploy/prometheus/herald-alerts.yml` need those numbers
//! under stable names. The names follow the OpenTelemetry messaging semantic
//! conventions as Prometheus renders them (`messaging.client.sent.messages` →
//! `messaging_client_sent_messages_total`), so dashboards written for other
//! messaging clients work unchanged; herald-specific signals use a `herald_`
//! prefix.
//!
//! Label cardinality is bounded by construction: `messaging_destination_name`
//! is always the catalog's subject (never a per-event value), outcomes and
//! reasons are closed enums, and `service`, `schema`, `stream` and `consumer`
//! come from the catalog or configuration.
//!
//! Two ways to record:
//! * [`PublishMetrics`] / [`ConsumeMetrics`]: handles built once per
//!   (service, subject) that pre-register every series, so the hot path is a
//!   few atomic operations with no allocation or hashing. Build them after
//!   [`install`] (or inside the scope of the recorder you want them bound to).
//! * Free functions ([`record_sent`], [`record_consumed`], ...): convenient for
//!   cold paths; each call looks the series up in the registry and allocates
//!   its label values.
//!
//! Recording goes through the `metrics` facade, so exporting stays the
//! application's choice. With the `prometheus` feature, `install` sets up a
//! global Prometheus recorder (idempotent) and returns a `MetricsHandle`
//! that renders the text exposition; `herald-tools` serves it over HTTP.
#![deny(missing_docs)]

use std::time::{Duration, SystemTime};

use metrics::{Counter, Gauge, Histogram, Label, Unit};

/// Metric names, as constants so alert rules, tests and callers cannot drift
/// from what is actually exported.
pub mod names {
    /// Counter: messages a producer tried to publish, by outcome.
    pub const SENT_MESSAGES: &str = "messaging_client_sent_messages_total";
    /// Counter: messages a consumer finished with, by outcome.
    pub const CONSUMED_MESSAGES: &str = "messaging_client_consumed_messages_total";
    /// Histogram: publish round trip until the JetStream PubAck (seconds).
    pub const OPERATION_DURATION: &str = "messaging_client_operation_duration_seconds";
    /// Histogram: time spent in the consumer's handler (seconds).
    pub const PROCESS_DURATION: &str = "messaging_process_duration_seconds";
    /// Counter: events rejected by JSON Schema validation.
    pub const SCHEMA_VALIDATION_FAILURES: &str = "herald_schema_validation_failures_total";
    /// Counter: messages moved to the dead-letter stream.
    pub const DLQ_MESSAGES: &str = "herald_dlq_messages_total";
    /// Counter: publish attempts retried after a transient failure.
    pub const PUBLISH_RETRIES: &str = "herald_publish_retries_total";
    /// Gauge: messages in the stream not yet delivered to the consumer.
    pub const CONSUMER_PENDING: &str = "herald_consumer_pending_messages";
    /// Gauge: messages delivered to the consumer but not yet acknowledged.
    pub const CONSUMER_ACK_PENDING: &str = "herald_consumer_ack_pending_messages";
    /// Gauge: 1 while the NATS connection is up, 0 otherwise.
    pub const CONNECTION_UP: &str = "herald_connection_up";
    /// Histogram: age of an event (`ce-time` to processing) in seconds.
    pub const EVENT_AGE: &str = "herald_event_age_seconds";
    /// Counter: dead letters that could not be written (the delivery was NAKed instead).
    /// Appears on the first failure; not in [`ALL`], which lists the always-present series.
    pub const DLQ_WRITE_FAILURES: &str = "herald_dlq_write_failures_total";
    /// Counter: subscriptions the server refused (permissions), by purpose. Appears on
    /// the first refusal; not in [`ALL`].
    pub const SUBSCRIPTIONS_REFUSED: &str = "herald_subscriptions_refused_total";
    /// Counter: events refused before their JSON Schema could be applied (not JSON, too
    /// large, unknown schema or subject), by schema, side and reason. Kept apart from
    /// [`SCHEMA_VALIDATION_FAILURES`], which counts only JSON Schema refusals. Not in [`ALL`].
    pub const DECODE_FAILURES: &str = "herald_decode_failures_total";

    /// Every metric herald exports, for tests and documentation.
    pub const ALL: [&str; 11] = [
        SENT_MESSAGES,
        CONSUMED_MESSAGES,
        OPERATION_DURATION,
        PROCESS_DURATION,
        SCHEMA_VALIDATION_FAILURES,
        DLQ_MESSAGES,
        PUBLISH_RETRIES,
        CONSUMER_PENDING,
        CONSUMER_ACK_PENDING,
        CONNECTION_UP,
        EVENT_AGE,
    ];
}

/// Value of the `messaging_system` label: the OTel conventions name the
/// broker so metrics from several messaging clients can share a dashboard.
pub const MESSAGING_SYSTEM: &str = "nats";

/// Bucket upper bounds (seconds) for the operation and process duration
/// histograms: the ones the OpenTelemetry messaging conventions recommend, so
/// quantiles are comparable with other OTel-instrumented clients.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Bucket upper bounds (seconds) for `herald_event_age_seconds`: the duration
/// buckets extended up to an hour, because a backlog makes events minutes old
/// and the end-to-end latency alert needs to see how old.
pub const EVENT_AGE_BUCKETS: [f64; 20] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0,
    300.0, 600.0, 1800.0, 3600.0,
];

/// How often the background thread drains histogram samples into buckets, so
/// memory stays bounded even if nobody scrapes.
#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Content type of the Prometheus text exposition format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Outcome of one publish, the `outcome` label of
/// `messaging_client_sent_messages_total`. A closed set keeps cardinality
/// bounded and lets alert rules compute failure ratios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SentOutcome {
    /// JetStream acknowledged the message as new.
    Ok,
    /// JetStream acknowledged it as a duplicate (same `Nats-Msg-Id` within the
    /// dedup window): harmless, but worth seeing.
    Duplicate,
    /// Rejected before sending because it failed schema validation.
    Invalid,
    /// Could not be published (no PubAck after retries, or a permanent error).
    Failed,
}

impl SentOutcome {
    /// Every outcome, so handles can pre-register all series at zero (a
    /// failure ratio needs both numerator and denominator to exist).
    pub const ALL: [SentOutcome; 4] = [Self::Ok, Self::Duplicate, Self::Invalid, Self::Failed];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Duplicate => "duplicate",
            Self::Invalid => "invalid",
            Self::Failed => "failed",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Outcome of handling one delivered message, the `outcome` label of
/// `messaging_client_consumed_messages_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsumedOutcome {
    /// Handled and acknowledged.
    Ack,
    /// Negatively acknowledged for redelivery (transient failure).
    Retry,
    /// Given up on and moved to the dead-letter stream.
    DeadLetter,
    /// Recognised as already processed (idempotency) and acknowledged without
    /// running the handler again.
    Duplicate,
}

impl ConsumedOutcome {
    /// Every outcome, for pre-registration at zero.
    pub const ALL: [ConsumedOutcome; 4] =
        [Self::Ack, Self::Retry, Self::DeadLetter, Self::Duplicate];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ack => "ack",
            Self::Retry => "retry",
            Self::DeadLetter => "dead_letter",
            Self::Duplicate => "duplicate",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Which side of the wire caught a schema violation, the `side` label of
/// `herald_schema_validation_failures_total`: a publish-side failure is a bug
/// in the producer, a consume-side one means something bypassed validation or
/// the contract drifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Caught before publishing.
    Publish,
    /// Caught on delivery.
    Consume,
}

impl Side {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Consume => "consume",
        }
    }
}

/// Why a message went to the dead-letter stream, the `reason` label of
/// `herald_dlq_messages_total`. Closed so a handler's error text can never
/// become a label value; the validation reasons use the same strings as
/// [`herald_contracts::ValidationError::reason`], so the metric and the
/// reason recorded on the dead-lettered message agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DlqReason {
    /// Redelivered the maximum number of times and still failing.
    MaxDeliveries,
    /// The handler reported a permanent error: retrying cannot help.
    HandlerRejected,
    /// The payload failed its subject's schema.
    SchemaInvalid,
    /// The bytes were not a JSON document.
    DecodeError,
    /// The event exceeded the catalog's size limit.
    TooLarge,
    /// The subject is not in the catalog.
    UnknownSubject,
    /// The event named a schema the contracts do not have (or the wrong one).
    UnknownSchema,
}

impl DlqReason {
    /// Every reason, for pre-registration at zero.
    pub const ALL: [DlqReason; 7] = [
        Self::MaxDeliveries,
        Self::HandlerRejected,
        Self::SchemaInvalid,
        Self::DecodeError,
        Self::TooLarge,
        Self::UnknownSubject,
        Self::UnknownSchema,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MaxDeliveries => "max_deliveries",
            Self::HandlerRejected => "handler_rejected",
            Self::SchemaInvalid => "schema_invalid",
            Self::DecodeError => "decode_error",
            Self::TooLarge => "too_large",
            Self::UnknownSubject => "unknown_subject",
            Self::UnknownSchema => "unknown_schema",
        }
    }

    /// The reason for a label value produced by [`DlqReason::as_str`] or
    /// `ValidationError::reason`; `None` for anything else, so callers holding
    /// a string cannot smuggle unbounded values into the label.
    pub fn parse(reason: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == reason)
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl From<&herald_contracts::ValidationError> for DlqReason {
    /// A consumer dead-lettering an event that failed validation records the
    /// validation error's own reason.
    fn from(err: &herald_contracts::ValidationError) -> Self {
        use herald_contracts::ValidationError as E;
        match err {
            E::UnknownSubject(_) => Self::UnknownSubject,
            E::UnknownSchema(_) | E::SchemaMismatch { .. } => Self::UnknownSchema,
            E::Decode(_) => Self::DecodeError,
            E::TooLarge { .. } => Self::TooLarge,
            E::Invalid { .. } => Self::SchemaInvalid,
        }
    }
}

/// Registers the HELP text (and unit) of every herald metric with the
/// current recorder. [`install`] calls it; call it yourself when recording
/// into a recorder of your own (e.g. `metrics::with_local_recorder` in tests)
/// so `promtool check metrics` does not flag missing help.
pub fn describe() {
    metrics::describe_counter!(
        names::SENT_MESSAGES,
        Unit::Count,
        "Messages a herald producer attempted to publish, by outcome (ok, duplicate, invalid, failed)."
    );
    metrics::describe_counter!(
        names::CONSUMED_MESSAGES,
        Unit::Count,
        "Messages a herald consumer finished with, by outcome (ack, retry, dead_letter, duplicate)."
    );
    metrics::describe_histogram!(
        names::OPERATION_DURATION,
        Unit::Seconds,
        "Publish round trip from send until the JetStream PubAck, in seconds."
    );
    metrics::describe_histogram!(
        names::PROCESS_DURATION,
        Unit::Seconds,
        "Time a herald consumer's handler spent processing one message, in seconds."
    );
    metrics::describe_counter!(
        names::SCHEMA_VALIDATION_FAILURES,
        Unit::Count,
        "Events rejected by JSON Schema validation, by schema and side (publish or consume)."
    );
    metrics::describe_counter!(
        names::DLQ_MESSAGES,
        Unit::Count,
        "Messages moved to the dead-letter stream, by reason."
    );
    metrics::describe_counter!(
        names::DLQ_WRITE_FAILURES,
        Unit::Count,
        "Dead letters that could not be written; the delivery was NAKed for a later attempt."
    );
    metrics::describe_counter!(
        names::SUBSCRIPTIONS_REFUSED,
        Unit::Count,
        "Subscriptions the NATS server refused for lack of permission, by purpose."
    );
    metrics::describe_counter!(
        names::DECODE_FAILURES,
        Unit::Count,
        "Events refused before JSON Schema validation (not JSON, too large, unknown schema), by reason."
    );
    metrics::describe_counter!(
        names::PUBLISH_RETRIES,
        Unit::Count,
        "Publish attempts retried after a transient failure."
    );
    metrics::describe_gauge!(
        names::CONSUMER_PENDING,
        Unit::Count,
        "Messages in the stream not yet delivered to the consumer (backlog)."
    );
    metrics::describe_gauge!(
        names::CONSUMER_ACK_PENDING,
        Unit::Count,
        "Messages delivered to the consumer and not yet acknowledged."
    );
    metrics::describe_gauge!(
        names::CONNECTION_UP,
        "1 while the NATS connection is established, 0 while it is down."
    );
    metrics::describe_histogram!(
        names::EVENT_AGE,
        Unit::Seconds,
        "Age of an event when processed (now minus its ce-time), in seconds: end-to-end latency."
    );
}

#[cfg(feature = "prometheus")]
mod prometheus;
#[cfg(feature = "prometheus")]
pub use prometheus::{builder, install, MetricsError, MetricsHandle};

fn endpoint_labels(service: &str, subject: &str) -> Vec<Label> {
    vec![
        Label::from_static_parts("messaging_system", MESSAGING_SYSTEM),
        Label::new("service", service.to_owned()),
        Label::new("messaging_destination_name", subject.to_owned()),
    ]
}

fn with_label(mut labels: Vec<Label>, key: &'static str, value: &'static str) -> Vec<Label> {
    labels.push(Label::from_static_parts(key, value));
    labels
}

/// Pre-registered publish-side series for one (service, subject): the
/// publisher builds one per catalog subject it sends to, and recording is then
/// allocation-free. Every outcome is registered at zero up front, so failure
/// ratios are defined from the first scrape.
#[derive(Clone)]
pub struct PublishMetrics {
    sent: [Counter; 4],
    duration: Histogram,
    retries: Counter,
}

impl std::fmt::Debug for PublishMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishMetrics").finish_non_exhaustive()
    }
}

impl PublishMetrics {
    /// Registers the series for `service` publishing to the catalog subject
    /// `subject` with the current recorder (the global one after [`install`]).
    pub fn new(service: &str, subject: &str) -> Self {
        let base = endpoint_labels(service, subject);
        let sent = SentOutcome::ALL.map(|outcome| {
            metrics::counter!(
                names::SENT_MESSAGES,
                with_label(base.clone(), "outcome", outcome.as_str())
            )
        });
        let duration = metrics::histogram!(names::OPERATION_DURATION, base.clone());
        let retries = metrics::counter!(names::PUBLISH_RETRIES, base);
        Self {
            sent,
            duration,
            retries,
        }
    }

    /// Counts one publish with its outcome and records its round trip (send
    /// to PubAck, or to the final failure).
    pub fn record_sent(&self, outcome: SentOutcome, round_trip: Duration) {
        self.sent[outcome.index()].increment(1);
        self.duration.record(round_trip.as_secs_f64());
    }

    /// Counts one publish outcome without a round trip: for outcomes decided
    /// before anything was sent (e.g. [`SentOutcome::Invalid`]), whose zero
    /// duration would distort the latency histogram.
    pub fn record_outcome(&self, outcome: SentOutcome) {
        self.sent[outcome.index()].increment(1);
    }

    /// Counts one dead letter `service` could not write (logged by the caller; the delivery
    /// is NAKed, never acked or terminated, so the event is not lost).
    pub fn record_dlq_write_failure(service: &str, subject: &str) {
        metrics::counter!(names::DLQ_WRITE_FAILURES, endpoint_labels(service, subject))
            .increment(1);
    }

    /// Counts one subscription the server refused; `purpose` is a fixed word such as
    /// `max_deliveries_advisory`.
    pub fn record_subscription_refused(purpose: &'static str) {
        metrics::counter!(names::SUBSCRIPTIONS_REFUSED, "purpose" => purpose).increment(1);
    }

    /// Counts one refused event under the right series: a JSON Schema refusal
    /// (`reason` `schema_invalid`) in `herald_schema_validation_failures_total`, anything else
    /// (`decode_error`, `too_large`, `unknown_schema`, `unknown_subject`) in
    /// `herald_decode_failures_total`.
    pub fn record_refusal(schema: &str, side: Side, reason: &'static str) {
        if reason == "schema_invalid" {
            record_validation_failure(schema, side);
        } else {
            metrics::counter!(
                names::DECODE_FAILURES,
                "schema" => schema.to_owned(),
                "side" => side.as_str(),
                "reason" => reason
            )
            .increment(1);
        }
    }

    /// Counts one retried publish attempt.
    pub fn record_retry(&self) {
        self.retries.increment(1);
    }
}

/// Pre-registered consume-side series for one (service, subject): the
/// consumer builds one per subscription, and recording is then
/// allocation-free. Every outcome and dead-letter reason is registered at
/// zero up front.
#[derive(Clone)]
pub struct ConsumeMetrics {
    consumed: [Counter; 4],
    dlq: [Counter; 7],
    process: Histogram,
    age: Histogram,
}

impl std::fmt::Debug for ConsumeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumeMetrics").finish_non_exhaustive()
    }
}

impl ConsumeMetrics {
    /// Registers the series for `service` consuming the catalog subject
    /// `subject` with the current recorder (the global one after [`install`]).
    pub fn new(service: &str, subject: &str) -> Self {
        let base = endpoint_labels(service, subject);
        let consumed = ConsumedOutcome::ALL.map(|outcome| {
            metrics::counter!(
                names::CONSUMED_MESSAGES,
                with_label(base.clone(), "outcome", outcome.as_str())
            )
        });
        let dlq = DlqReason::ALL.map(|reason| {
            metrics::counter!(
                names::DLQ_MESSAGES,
                with_label(base.clone(), "reason", reason.as_str())
            )
        });
        let process = metrics::histogram!(names::PROCESS_DURATION, base.clone());
        let age = metrics::histogram!(names::EVENT_AGE, base);
        Self {
            consumed,
            dlq,
            process,
            age,
        }
    }

    /// Counts one delivered message with how it ended.
    pub fn record_consumed(&self, outcome: ConsumedOutcome) {
        self.consumed[outcome.index()].increment(1);
    }

    /// Records how long the handler ran for one message.
    pub fn record_process_duration(&self, elapsed: Duration) {
        self.process.record(elapsed.as_secs_f64());
    }

    /// Records an event's age at processing (see [`event_age`]).
    pub fn record_event_age(&self, age: Duration) {
        self.age.record(age.as_secs_f64());
    }

    /// Counts one message moved to the dead-letter stream.
    pub fn record_dlq(&self, reason: DlqReason) {
        self.dlq[reason.index()].increment(1);
    }
}

/// Counts one publish by `service` to the catalog subject `subject` and
/// records its round trip. Cold-path convenience: prefer a cached
/// [`PublishMetrics`] per subject on the hot path.
pub fn record_sent(service: &str, subject: &str, outcome: SentOutcome, round_trip: Duration) {
    let base = endpoint_labels(service, subject);
    metrics::histogram!(names::OPERATION_DURATION, base.clone()).record(round_trip.as_secs_f64());
    metrics::counter!(
        names::SENT_MESSAGES,
        with_label(base, "outcome", outcome.as_str())
    )
    .increment(1);
}

/// Counts one publish outcome without a round trip: for outcomes decided
/// before anything was sent ([`SentOutcome::Invalid`]), whose zero duration
/// would distort the latency histogram.
pub fn record_sent_outcome(service: &str, subject: &str, outcome: SentOutcome) {
    metrics::counter!(
        names::SENT_MESSAGES,
        with_label(
            endpoint_labels(service, subject),
            "outcome",
            outcome.as_str()
        )
    )
    .increment(1);
}

/// Counts one message consumed by `service` from the catalog subject
/// `subject`, with how it ended. Prefer a cached [`ConsumeMetrics`] on the hot
/// path.
pub fn record_consumed(service: &str, subject: &str, outcome: ConsumedOutcome) {
    metrics::counter!(
        names::CONSUMED_MESSAGES,
        with_label(
            endpoint_labels(service, subject),
            "outcome",
            outcome.as_str()
        )
    )
    .increment(1);
}

/// Records how long `service`'s handler for `subject` ran on one message.
pub fn record_process_duration(service: &str, subject: &str, elapsed: Duration) {
    metrics::histogram!(names::PROCESS_DURATION, endpoint_labels(service, subject))
        .record(elapsed.as_secs_f64());
}

/// Records the age of an event when `service` processed it (see
/// [`event_age`]): the end-to-end latency the high-latency alert watches.
pub fn record_event_age(service: &str, subject: &str, age: Duration) {
    metrics::histogram!(names::EVENT_AGE, endpoint_labels(service, subject))
        .record(age.as_secs_f64());
}

/// Counts one schema validation failure. `schema` is the catalog's schema
/// name (e.g. `UsageEvent`), never anything taken from the payload.
pub fn record_validation_failure(schema: &str, side: Side) {
    metrics::counter!(
        names::SCHEMA_VALIDATION_FAILURES,
        "schema" => schema.to_owned(),
        "side" => side.as_str()
    )
    .increment(1);
}

/// Registers `herald_schema_validation_failures_total` at zero for each
/// catalog schema on both sides. Call it once when the validator loads the
/// catalog: Prometheus' `increase()` cannot see the first failure of a series
/// that only appears with value 1, so without this the first violation of a
/// schema would never fire the validation alert.
pub fn register_schemas<'a>(schemas: impl IntoIterator<Item = &'a str>) {
    for schema in schemas {
        for side in [Side::Publish, Side::Consume] {
            metrics::counter!(
                names::SCHEMA_VALIDATION_FAILURES,
                "schema" => schema.to_owned(),
                "side" => side.as_str()
            )
            .absolute(0);
        }
    }
}

/// Counts one message `service` moved from `subject` to the dead-letter
/// stream.
pub fn record_dlq(service: &str, subject: &str, reason: DlqReason) {
    metrics::counter!(
        names::DLQ_MESSAGES,
        with_label(endpoint_labels(service, subject), "reason", reason.as_str())
    )
    .increment(1);
}

/// Counts one dead letter `service` could not write (logged by the caller; the delivery
/// is NAKed, never acked or terminated, so the event is not lost).
pub fn record_dlq_write_failure(service: &str, subject: &str) {
    metrics::counter!(names::DLQ_WRITE_FAILURES, endpoint_labels(service, subject)).increment(1);
}

/// Counts one subscription the server refused; `purpose` is a fixed word such as
/// `max_deliveries_advisory`.
pub fn record_subscription_refused(purpose: &'static str) {
    metrics::counter!(names::SUBSCRIPTIONS_REFUSED, "purpose" => purpose).increment(1);
}

/// Counts one refused event under the right series: a JSON Schema refusal
/// (`reason` `schema_invalid`) in `herald_schema_validation_failures_total`, anything else
/// (`decode_error`, `too_large`, `unknown_schema`, `unknown_subject`) in
/// `herald_decode_failures_total`.
pub fn record_refusal(schema: &str, side: Side, reason: &'static str) {
    if reason == "schema_invalid" {
        record_validation_failure(schema, side);
    } else {
        metrics::counter!(
            names::DECODE_FAILURES,
            "schema" => schema.to_owned(),
            "side" => side.as_str(),
            "reason" => reason
        )
        .increment(1);
    }
}

/// Counts one retried publish attempt by `service` to `subject`.
pub fn record_publish_retry(service: &str, subject: &str) {
    metrics::counter!(names::PUBLISH_RETRIES, endpoint_labels(service, subject)).increment(1);
}

/// Sets the backlog gauges of one durable consumer from its JetStream
/// consumer info (`num_pending`, `num_ack_pending`); called periodically by
/// consumers and by `herald watch`.
pub fn set_consumer_lag(stream: &str, consumer: &str, pending: u64, ack_pending: u64) {
    metrics::gauge!(
        names::CONSUMER_PENDING,
        "stream" => stream.to_owned(),
        "consumer" => consumer.to_owned()
    )
    .set(pending as f64);
    metrics::gauge!(
        names::CONSUMER_ACK_PENDING,
        "stream" => stream.to_owned(),
        "consumer" => consumer.to_owned()
    )
    .set(ack_pending as f64);
}

/// Sets `herald_connection_up` from connection events, so the connectivity
/// alert can tell "NATS unreachable" apart from "process gone".
pub fn set_connection_up(up: bool) {
    connection_gauge().set(if up { 1.0 } else { 0.0 });
}

fn connection_gauge() -> Gauge {
    metrics::gauge!(names::CONNECTION_UP)
}

/// Age of an event whose CloudEvents `time` (`ce-time`, RFC 3339) is
/// `ce_time`, as of `now`. `None` when the timestamp does not parse (the
/// metric is skipped rather than polluted); zero when the producer's clock is
/// ahead of ours.
pub fn event_age(ce_time: &str, now: SystemTime) -> Option<Duration> {
    let produced: SystemTime = chrono::DateTime::parse_from_rfc3339(ce_time)
        .ok()?
        .with_timezone(&chrono::Utc)
        .into();
    Some(now.duration_since(produced).unwrap_or(Duration::ZERO))
}

#[cfg(all(test, feature = "prometheus"))]
mod tests;
