//! herald-watch: watching a running platform. This crate root is the brain of
//! `herald watch`; [`watch`] is its NATS side, [`tail`] follows a subject
//! (`herald tail`) and [`metrics_http`] serves a process's `/metrics`.
//!
//! The brain turns observations (heartbeats, consumer
//! lag, dead letters, validation failures, connection state) into
//! `AlertEvent`s on the `alerts.*` subjects.
//!
//! Why it is split this way: everything here is pure (no NATS, no clock of
//! its own; callers pass `now`), so the alerting rules — fire once per
//! incident, repeat while firing, resolve when clear — are unit-tested
//! exactly, and the NATS side of `herald watch` only feeds observations in and
//! publishes what comes out.
//!
//! * Evaluators ([`HeartbeatMonitor`], [`BacklogMonitor`],
//!   [`FailureRateMonitor`], [`ViolationMonitor`], [`LatencyMonitor`],
//!   [`connectivity_check`]) turn observations into [`Check`]s: "this alert
//!   is firing" or "this alert is clear".
//! * [`AlertTracker`] turns checks into notifications: one `firing` event when
//!   an incident starts, a repeat every `repeat_interval` while it lasts (or at
//!   once if its severity rises), one `resolved` event when it clears.
//! * [`Monitor`] bundles both with thresholds from the catalog's
//!   `[monitoring]` table ([`MonitorConfig`]).
//!
//! Idempotency: an incident's id is `<alert_type>:<key>:<started_at>` and
//! every notification's `alert_id` is a UUID derived from that id and the
//! notification's place in the incident, so a restarted watcher that
//! re-detects the same incident produces the same ids and JetStream's
//! duplicate window drops the copies (`alert_id` is the catalog's identity
//! field for `alerts.*`).
#![deny(missing_docs)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use herald_contracts::catalog::MonitoringSettings;
use uuid::Uuid;

pub use herald_contracts::events::{AlertEvent, AlertState, AlertType, Heartbeat, Severity};

/// Every alert type, one `alerts.<type>` subject each in the catalog.
pub const ALERT_TYPES: [AlertType; 7] = [
    AlertType::ServiceDown,
    AlertType::HighLatency,
    AlertType::QuotaExceeded,
    AlertType::Backlog,
    AlertType::FailureRate,
    AlertType::SchemaViolation,
    AlertType::Connectivity,
];

/// Orders severities so an escalation (warning to critical) can be sent at
/// once instead of waiting for the repeat interval.
pub fn severity_rank(severity: Severity) -> u8 {
    match severity {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Critical => 2,
    }
}

/// A condition that holds: what an evaluator reports and what an
/// [`AlertTracker`] turns into notifications. `key` names what the alert is
/// about (a service, a durable consumer, a schema) and, with the type,
/// identifies the incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Kind of alert.
    pub alert_type: AlertType,
    /// What it is about, e.g. `billing-service` or `billing-service--usage`.
    pub key: String,
    /// How urgent.
    pub severity: Severity,
    /// One line for a human.
    pub summary: String,
    /// The service it is about, if any.
    pub affected_service: Option<String>,
    /// Tenant concerned (quota alerts).
    pub tenant_id: Option<Uuid>,
    /// Observed value.
    pub value: Option<f64>,
    /// Threshold crossed.
    pub threshold: Option<f64>,
    /// When the condition began, if the evaluator knows better than "now"
    /// (e.g. the last heartbeat): makes the incident id reproducible.
    pub since: Option<DateTime<Utc>>,
    /// Bounded context labels.
    pub labels: BTreeMap<String, String>,
}

impl Alert {
    /// A firing condition with no value, threshold or labels yet.
    pub fn new(
        alert_type: AlertType,
        key: impl Into<String>,
        severity: Severity,
        summary: impl Into<String>,
    ) -> Self {
        Self {
            alert_type,
            key: key.into(),
            severity,
            summary: summary.into(),
            affected_service: None,
            tenant_id: None,
            value: None,
            threshold: None,
            since: None,
            labels: BTreeMap::new(),
        }
    }

    /// Names the service the alert is about.
    pub fn affected_service(mut self, service: impl Into<String>) -> Self {
        self.affected_service = Some(service.into());
        self
    }

    /// Records the observed value and the threshold it crossed. Non-finite
    /// numbers are dropped: JSON has no NaN and the schema wants numbers.
    pub fn measured(mut self, value: f64, threshold: f64) -> Self {
        self.value = value.is_finite().then_some(value);
        self.threshold = threshold.is_finite().then_some(threshold);
        self
    }

    /// Sets when the condition began.
    pub fn since(mut self, since: DateTime<Utc>) -> Self {
        self.since = Some(since);
        self
    }

    /// Adds a context label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The `alerts.quota_exceeded` condition billing raises when `tenant_id`
    /// passes `quota` (e.g. `monthly_tokens`): feed it to an [`AlertTracker`]
    /// to get fire-once/repeat/resolve, or call [`quota_exceeded_event`] for a
    /// single notification.
    pub fn quota_exceeded(tenant_id: Uuid, quota: &str, value: f64, limit: f64) -> Self {
        let mut alert = Alert::new(
            AlertType::QuotaExceeded,
            format!("{tenant_id}:{quota}"),
            Severity::Warning,
            format!("tenant {tenant_id} passed its {quota} quota ({value} of {limit})"),
        )
        .measured(value, limit)
        .label("quota", quota);
        alert.tenant_id = Some(tenant_id);
        alert
    }
}

/// One evaluator verdict for one alert key.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// The condition holds.
    Firing(Alert),
    /// The condition does not hold (any incident for it is over).
    Clear {
        /// Kind of alert.
        alert_type: AlertType,
        /// What it is about.
        key: String,
        /// The figures now, when the evaluator measured them: a resolution carries
        /// the current value, never the stale one of its last firing.
        current: Option<Current>,
    },
}

/// What an evaluator measured when its condition cleared.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    /// One line for a human, with the current figures.
    pub summary: String,
    /// The current value.
    pub value: Option<f64>,
}

impl Check {
    /// A clear verdict.
    pub fn clear(alert_type: AlertType, key: impl Into<String>) -> Self {
        Check::Clear {
            alert_type,
            key: key.into(),
            current: None,
        }
    }

    /// A clear verdict with the figures measured now.
    pub fn clear_at(
        alert_type: AlertType,
        key: impl Into<String>,
        summary: String,
        value: Option<f64>,
    ) -> Self {
        Check::Clear {
            alert_type,
            key: key.into(),
            current: Some(Current { summary, value }),
        }
    }

    /// True when firing.
    pub fn is_firing(&self) -> bool {
        matches!(self, Check::Firing(_))
    }
}

/// RFC 3339 with millisecond precision and `Z`, the form every herald
/// timestamp uses.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A deterministic UUID for `name`: 128-bit FNV-1a, stamped as a version 8
/// (custom) UUID. Not cryptographic; it only has to be stable across
/// processes and versions so a re-sent notification keeps its id.
pub fn derived_uuid(name: &str) -> Uuid {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut hash = OFFSET;
    for byte in name.bytes() {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    uuid::Builder::from_custom_bytes(hash.to_be_bytes()).into_uuid()
}

/// The incident id for an alert that started at `started_at`.
pub fn incident_id(alert_type: AlertType, key: &str, started_at: DateTime<Utc>) -> String {
    // The schema caps incident_id at 256 characters; keys come from the
    // catalog and are short, but never let one break validation.
    let key: String = key.chars().take(180).collect();
    format!("{}:{}:{}", alert_type.as_str(), key, rfc3339(started_at))
}

/// A single `alerts.quota_exceeded` notification for services that track
/// quotas themselves: the incident starts at `started_at`, so calling this
/// again for the same breach yields the same `alert_id`.
pub fn quota_exceeded_event(
    service_name: &str,
    tenant_id: Uuid,
    quota: &str,
    value: f64,
    limit: f64,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AlertEvent {
    let alert = Alert::quota_exceeded(tenant_id, quota, value, limit);
    let incident = incident_id(alert.alert_type, &alert.key, started_at);
    notification(
        service_name,
        &alert,
        &incident,
        started_at,
        now,
        AlertState::Firing,
        "0",
    )
}

fn notification(
    service_name: &str,
    alert: &Alert,
    incident: &str,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
    state: AlertState,
    sequence: &str,
) -> AlertEvent {
    let summary = match state {
        AlertState::Firing => alert.summary.clone(),
        AlertState::Resolved => format!("resolved: {}", alert.summary),
    };
    AlertEvent {
        schema: None,
        alert_id: derived_uuid(&format!("{incident}#{sequence}")),
        incident_id: Some(incident.to_owned()),
        timestamp: now,
        service_name: service_name.to_owned(),
        affected_service: alert.affected_service.clone(),
        alert_type: alert.alert_type,
        severity: alert.severity,
        state,
        summary: summary.chars().take(512).collect(),
        started_at: Some(started_at),
        tenant_id: alert.tenant_id,
        value: alert.value,
        threshold: alert.threshold,
        labels: (!alert.labels.is_empty()).then(|| alert.labels.clone()),
        correlation_id: None,
        metadata: None,
        extra: serde_json::Map::new(),
    }
}

/// An incident in progress.
#[derive(Debug, Clone)]
pub struct Incident {
    /// The latest firing verdict (value and summary are kept current).
    pub alert: Alert,
    /// `<alert_type>:<key>:<started_at>`.
    pub id: String,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// When a notification was last sent for it.
    pub last_sent: DateTime<Utc>,
    /// Firing notifications sent so far (the first plus repeats).
    pub notifications: u32,
}

/// The alert state machine: fire once per incident, repeat every
/// `repeat_interval` while firing (immediately when the severity rises),
/// resolve once when clear. Pure: time is passed in.
#[derive(Debug, Clone)]
pub struct AlertTracker {
    service_name: String,
    repeat_interval: Duration,
    incidents: BTreeMap<(&'static str, String), Incident>,
}

impl AlertTracker {
    /// A tracker whose notifications name `service_name` as the raiser.
    pub fn new(service_name: impl Into<String>, repeat_interval: Duration) -> Self {
        Self {
            service_name: service_name.into(),
            repeat_interval,
            incidents: BTreeMap::new(),
        }
    }

    /// Applies one verdict at `now`; returns the notification to publish, if
    /// any.
    pub fn apply(&mut self, check: Check, now: DateTime<Utc>) -> Option<AlertEvent> {
        match check {
            Check::Firing(alert) => self.fire(alert, now),
            Check::Clear {
                alert_type,
                key,
                current,
            } => self.clear(alert_type, &key, current, now),
        }
    }

    /// Applies verdicts in order and collects the notifications.
    pub fn apply_all(
        &mut self,
        checks: impl IntoIterator<Item = Check>,
        now: DateTime<Utc>,
    ) -> Vec<AlertEvent> {
        checks
            .into_iter()
            .filter_map(|c| self.apply(c, now))
            .collect()
    }

    fn fire(&mut self, alert: Alert, now: DateTime<Utc>) -> Option<AlertEvent> {
        let slot = (alert.alert_type.as_str(), alert.key.clone());
        match self.incidents.get_mut(&slot) {
            None => {
                let started_at = alert.since.unwrap_or(now);
                let id = incident_id(alert.alert_type, &alert.key, started_at);
                let event = notification(
                    &self.service_name,
                    &alert,
                    &id,
                    started_at,
                    now,
                    AlertState::Firing,
                    "0",
                );
                self.incidents.insert(
                    slot,
                    Incident {
                        alert,
                        id,
                        started_at,
                        last_sent: now,
                        notifications: 1,
                    },
                );
                Some(event)
            }
            Some(incident) => {
                let escalated =
                    severity_rank(alert.severity) > severity_rank(incident.alert.severity);
                let due = now
                    .signed_duration_since(incident.last_sent)
                    .to_std()
                    .is_ok_and(|elapsed| elapsed >= self.repeat_interval);
                incident.alert = Alert {
                    since: incident.alert.since,
                    ..alert
                };
                if !(escalated || due) {
                    return None;
                }
                let event = notification(
                    &self.service_name,
                    &incident.alert,
                    &incident.id,
                    incident.started_at,
                    now,
                    AlertState::Firing,
                    &incident.notifications.to_string(),
                );
                incident.notifications += 1;
                incident.last_sent = now;
                Some(event)
            }
        }
    }

    fn clear(
        &mut self,
        alert_type: AlertType,
        key: &str,
        current: Option<Current>,
        now: DateTime<Utc>,
    ) -> Option<AlertEvent> {
        let mut incident = self
            .incidents
            .remove(&(alert_type.as_str(), key.to_owned()))?;
        if let Some(c) = current {
            incident.alert.summary = c.summary;
            incident.alert.value = c.value;
        }
        Some(notification(
            &self.service_name,
            &incident.alert,
            &incident.id,
            incident.started_at,
            now,
            AlertState::Resolved,
            "resolved",
        ))
    }

    /// Incidents currently firing, in (type, key) order.
    pub fn firing(&self) -> impl Iterator<Item = &Incident> {
        self.incidents.values()
    }

    /// Whether an incident for (`alert_type`, `key`) is in progress.
    pub fn is_firing(&self, alert_type: AlertType, key: &str) -> bool {
        self.incidents
            .contains_key(&(alert_type.as_str(), key.to_owned()))
    }
}

// ------------------------------------------------------------ heartbeats

pub use herald_runtime::heartbeat::{heartbeat_subject, new_heartbeat, HEARTBEAT_PREFIX};

#[derive(Debug, Clone)]
struct Liveness {
    last_seen: Option<DateTime<Utc>>,
    /// When we started expecting it (for services never seen).
    expected_since: DateTime<Utc>,
    interval: Duration,
    /// Silence is counted from `expected_since` if later than the last beat.
    grace: bool,
}

/// Tracks heartbeats per service and reports `service_down` when one falls
/// silent for longer than `down_after` (or three announced intervals, if
/// longer: a service that heartbeats slowly on purpose is not down).
#[derive(Debug, Clone)]
pub struct HeartbeatMonitor {
    down_after: Duration,
    services: BTreeMap<String, Liveness>,
}

impl HeartbeatMonitor {
    /// A monitor reporting silence longer than `down_after`.
    pub fn new(down_after: Duration) -> Self {
        Self {
            down_after,
            services: BTreeMap::new(),
        }
    }

    /// Starts expecting heartbeats from `service` as of `now`, so a service
    /// that never comes up (or died before the watcher started) is reported
    /// too, not only one that stops.
    pub fn expect(&mut self, service: &str, now: DateTime<Utc>) {
        self.services.entry(service.to_owned()).or_insert(Liveness {
            last_seen: None,
            expected_since: now,
            interval: Duration::ZERO,
            grace: false,
        });
    }

    /// Records a heartbeat from `service` received at `received_at`.
    pub fn record(&mut self, service: &str, interval: Duration, received_at: DateTime<Utc>) {
        let entry = self.services.entry(service.to_owned()).or_insert(Liveness {
            last_seen: None,
            expected_since: received_at,
            interval,
            grace: false,
        });
        entry.interval = interval;
        if entry.last_seen.is_none_or(|t| received_at > t) {
            entry.last_seen = Some(received_at);
        }
    }

    /// Records a decoded [`Heartbeat`] received at `received_at`.
    pub fn record_heartbeat(&mut self, heartbeat: &Heartbeat, received_at: DateTime<Utc>) {
        self.record(
            &heartbeat.service_name,
            Duration::from_millis(heartbeat.interval_ms),
            received_at,
        );
    }

    /// Restarts every service's silence clock at `now` without forgetting
    /// it: after the watcher itself was cut off from NATS, missing
    /// heartbeats say nothing about the services, so each gets a full
    /// `down_after` from the reconnection before it can be reported.
    pub fn grace(&mut self, now: DateTime<Utc>) {
        for liveness in self.services.values_mut() {
            liveness.expected_since = now;
            liveness.grace = true;
        }
    }

    /// The silence after which `service` counts as down.
    fn limit(&self, liveness: &Liveness) -> Duration {
        self.down_after.max(liveness.interval.saturating_mul(3))
    }

    /// One verdict per known service at `now`.
    pub fn checks(&self, now: DateTime<Utc>) -> Vec<Check> {
        self.services
            .iter()
            .map(|(service, liveness)| {
                let since = match liveness.last_seen {
                    Some(seen) if liveness.grace => seen.max(liveness.expected_since),
                    Some(seen) => seen,
                    None => liveness.expected_since,
                };
                let silence = now
                    .signed_duration_since(since)
                    .to_std()
                    .unwrap_or_default();
                let limit = self.limit(liveness);
                if silence <= limit {
                    return Check::clear(AlertType::ServiceDown, service);
                }
                let summary = match liveness.last_seen {
                    Some(_) => format!(
                        "{service} sent no heartbeat for {}s (limit {}s)",
                        silence.as_secs(),
                        limit.as_secs()
                    ),
                    None => format!(
                        "{service} has not sent a heartbeat since monitoring began {}s ago",
                        silence.as_secs()
                    ),
                };
                Check::Firing(
                    Alert::new(AlertType::ServiceDown, service, Severity::Critical, summary)
                        .affected_service(service)
                        .measured(silence.as_secs_f64(), limit.as_secs_f64())
                        .since(since),
                )
            })
            .collect()
    }
}

// --------------------------------------------------------------- backlog

/// Reports `backlog` for a consumer whose pending messages exceed its
/// threshold, or have grown at every one of the last `growth_samples`
/// samples (falling behind before the threshold is reached).
#[derive(Debug, Clone)]
pub struct BacklogMonitor {
    threshold: u64,
    overrides: BTreeMap<String, u64>,
    growth_samples: usize,
    history: BTreeMap<String, VecDeque<u64>>,
}

/// One sample of a durable consumer's state, as JetStream consumer info
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSample {
    /// Durable name (`<service>--<name>`).
    pub durable: String,
    /// The consuming service.
    pub service: String,
    /// The stream.
    pub stream: String,
    /// Messages not yet delivered (`num_pending`).
    pub pending: u64,
    /// Delivered, not yet acknowledged (`num_ack_pending`).
    pub ack_pending: u64,
}

impl BacklogMonitor {
    /// A monitor with a default threshold, per-durable overrides and the
    /// number of consecutive growing samples that count as "growing"
    /// (0 disables growth detection).
    pub fn new(threshold: u64, overrides: BTreeMap<String, u64>, growth_samples: usize) -> Self {
        Self {
            threshold,
            overrides,
            growth_samples,
            history: BTreeMap::new(),
        }
    }

    /// The threshold for `durable`.
    pub fn threshold_for(&self, durable: &str) -> u64 {
        self.overrides
            .get(durable)
            .copied()
            .unwrap_or(self.threshold)
    }

    /// Records a sample and returns the verdict for that consumer.
    pub fn record(&mut self, sample: &ConsumerSample) -> Check {
        let threshold = self.threshold_for(&sample.durable);
        let history = self.history.entry(sample.durable.clone()).or_default();
        history.push_back(sample.pending);
        while history.len() > self.growth_samples + 1 {
            history.pop_front();
        }
        let growing = self.growth_samples > 0
            && history.len() == self.growth_samples + 1
            && history
                .iter()
                .zip(history.iter().skip(1))
                .all(|(a, b)| b > a);
        let over = sample.pending > threshold;
        if !(over || growing) {
            return Check::clear_at(
                AlertType::Backlog,
                &sample.durable,
                format!(
                    "consumer {} on {} has {} pending messages (threshold {})",
                    sample.durable, sample.stream, sample.pending, threshold
                ),
                Some(sample.pending as f64),
            );
        }
        let summary = if over {
            format!(
                "consumer {} on {} has {} pending messages (threshold {})",
                sample.durable, sample.stream, sample.pending, threshold
            )
        } else {
            format!(
                "backlog of consumer {} on {} grew at each of the last {} samples, now {}",
                sample.durable, sample.stream, self.growth_samples, sample.pending
            )
        };
        Check::Firing(
            Alert::new(
                AlertType::Backlog,
                &sample.durable,
                Severity::Warning,
                summary,
            )
            .affected_service(&sample.service)
            .measured(sample.pending as f64, threshold as f64)
            .label("consumer", &sample.durable)
            .label("stream", &sample.stream)
            .label("condition", if over { "over_threshold" } else { "growing" }),
        )
    }
}

// ---------------------------------------------------------- failure rate

/// Reports `failure_rate` when, over the last `window` samples, failed
/// deliveries (retries plus dead letters) exceed `threshold` of all
/// deliveries, once at least `min_deliveries` happened (two failures out of
/// three deliveries is noise, not a rate).
#[derive(Debug, Clone)]
pub struct FailureRateMonitor {
    threshold: f64,
    min_deliveries: u64,
    window: usize,
    samples: BTreeMap<String, VecDeque<(u64, u64)>>,
}

impl FailureRateMonitor {
    /// A monitor with the catalog's `failure_rate` threshold.
    pub fn new(threshold: f64, min_deliveries: u64, window: usize) -> Self {
        Self {
            threshold,
            min_deliveries,
            window: window.max(1),
            samples: BTreeMap::new(),
        }
    }

    /// Records cumulative counts for `durable` (consumed by `service`) and
    /// returns its verdict. A counter going backwards (consumer recreated)
    /// restarts the window.
    pub fn record(&mut self, durable: &str, service: &str, delivered: u64, failed: u64) -> Check {
        let samples = self.samples.entry(durable.to_owned()).or_default();
        if samples
            .back()
            .is_some_and(|&(d, f)| delivered < d || failed < f)
        {
            samples.clear();
        }
        samples.push_back((delivered, failed));
        while samples.len() > self.window + 1 {
            samples.pop_front();
        }
        let (d0, f0) = samples.front().copied().unwrap_or((delivered, failed));
        let deliveries = delivered - d0;
        let failures = failed - f0;
        if deliveries < self.min_deliveries.max(1) {
            return Check::clear(AlertType::FailureRate, durable);
        }
        let rate = failures as f64 / deliveries as f64;
        if rate <= self.threshold {
            return Check::clear_at(
                AlertType::FailureRate,
                durable,
                format!(
                    "{:.1}% of deliveries to {durable} failed ({failures} of {deliveries}; threshold {:.1}%)",
                    rate * 100.0,
                    self.threshold * 100.0
                ),
                Some(rate),
            );
        }
        Check::Firing(
            Alert::new(
                AlertType::FailureRate,
                durable,
                Severity::Warning,
                format!(
                    "{:.1}% of deliveries to {durable} failed ({failures} of {deliveries}; threshold {:.1}%)",
                    rate * 100.0,
                    self.threshold * 100.0
                ),
            )
            .affected_service(service)
            .measured(rate, self.threshold)
            .label("consumer", durable),
        )
    }
}

// ------------------------------------------------------ schema violations

/// Reports `schema_violation` while events failing validation keep arriving
/// (seen in the dead-letter queue, or by the watcher's own validation), and
/// clears after `quiet` without a new one.
#[derive(Debug, Clone)]
pub struct ViolationMonitor {
    quiet: Duration,
    seen: BTreeMap<String, Violations>,
}

#[derive(Debug, Clone)]
struct Violations {
    service: Option<String>,
    count: u64,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

impl ViolationMonitor {
    /// A monitor that clears after `quiet` without violations.
    pub fn new(quiet: Duration) -> Self {
        Self {
            quiet,
            seen: BTreeMap::new(),
        }
    }

    /// Records `count` violations of `key` (a schema or subject) at `at`,
    /// concerning `service` if known.
    pub fn record(&mut self, key: &str, service: Option<&str>, count: u64, at: DateTime<Utc>) {
        let entry = self.seen.entry(key.to_owned()).or_insert(Violations {
            service: None,
            count: 0,
            first: at,
            last: at,
        });
        entry.count += count;
        if at > entry.last {
            entry.last = at;
        }
        if let Some(service) = service {
            entry.service = Some(service.to_owned());
        }
    }

    /// Verdicts at `now`; keys quiet for longer than `quiet` are cleared
    /// and forgotten (a later violation starts a new incident).
    pub fn checks(&mut self, now: DateTime<Utc>) -> Vec<Check> {
        let quiet = self.quiet;
        let mut checks = Vec::new();
        self.seen.retain(|key, v| {
            let idle = now
                .signed_duration_since(v.last)
                .to_std()
                .unwrap_or_default();
            if idle > quiet {
                checks.push(Check::clear(AlertType::SchemaViolation, key));
                return false;
            }
            let mut alert = Alert::new(
                AlertType::SchemaViolation,
                key,
                Severity::Warning,
                format!(
                    "{} events on {key} failed schema validation since {}",
                    v.count,
                    rfc3339(v.first)
                ),
            )
            .measured(v.count as f64, 0.0)
            .since(v.first);
            if let Some(service) = &v.service {
                alert = alert.affected_service(service);
            }
            checks.push(Check::Firing(alert));
            true
        });
        checks
    }
}

// --------------------------------------------------------------- latency

/// Reports `high_latency` when the age of a consumer's oldest unprocessed
/// event (stored, not yet acknowledged) exceeds the threshold: how long the
/// consumer is behind, not how long a handler takes. Stateless: the tracker
/// supplies the incident memory.
#[derive(Debug, Clone, Copy)]
pub struct LatencyMonitor {
    threshold: Duration,
}

impl LatencyMonitor {
    /// A monitor with the catalog's `high_latency_ms`.
    pub fn new(threshold: Duration) -> Self {
        Self { threshold }
    }

    /// The verdict for `key` (e.g. a durable consumer) concerning `service`.
    pub fn check(&self, key: &str, service: &str, latency: Duration) -> Check {
        if latency <= self.threshold {
            return Check::clear(AlertType::HighLatency, key);
        }
        Check::Firing(
            Alert::new(
                AlertType::HighLatency,
                key,
                Severity::Warning,
                format!(
                    "oldest unprocessed event of {key} is {} ms old (threshold {} ms)",
                    latency.as_millis(),
                    self.threshold.as_millis()
                ),
            )
            .affected_service(service)
            .measured(
                latency.as_secs_f64() * 1000.0,
                self.threshold.as_secs_f64() * 1000.0,
            ),
        )
    }
}

/// The `connectivity` verdict for `service`'s own NATS connection: firing
/// from `since` while disconnected. The notification can only be published
/// once the connection is back, so the NATS side queues it; the incident then
/// records how long the outage lasted.
pub fn connectivity_check(service: &str, connected: bool, since: DateTime<Utc>) -> Check {
    if connected {
        return Check::clear(AlertType::Connectivity, service);
    }
    Check::Firing(
        Alert::new(
            AlertType::Connectivity,
            service,
            Severity::Critical,
            format!("{service} lost its NATS connection"),
        )
        .affected_service(service)
        .since(since),
    )
}

// --------------------------------------------------------------- monitor

/// Thresholds and cadences of `herald watch`, from the catalog's
/// `[monitoring]` table plus knobs the catalog does not carry.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// Silence after which a service is down.
    pub service_down_after: Duration,
    /// Default backlog threshold.
    pub backlog_threshold: u64,
    /// Per-durable backlog thresholds.
    pub backlog_overrides: BTreeMap<String, u64>,
    /// Consecutive growing samples that raise a backlog alert (0: off).
    pub backlog_growth_samples: usize,
    /// Latency threshold.
    pub high_latency: Duration,
    /// Failure-rate threshold (fraction).
    pub failure_rate: f64,
    /// Deliveries needed in the window before a rate is judged.
    pub failure_min_deliveries: u64,
    /// Samples in the failure-rate window.
    pub failure_window: usize,
    /// Quiet time after which a schema-violation incident clears.
    pub violation_quiet: Duration,
    /// How often a firing alert is repeated.
    pub repeat_interval: Duration,
    /// How often the watcher samples consumers and evaluates.
    pub poll_interval: Duration,
}

impl MonitorConfig {
    /// The configuration the catalog's `[monitoring]` table describes,
    /// with defaults for the rest.
    pub fn from_settings(settings: &MonitoringSettings) -> Self {
        Self {
            service_down_after: settings.service_down_after,
            backlog_threshold: settings.backlog_threshold,
            backlog_overrides: settings.backlog_overrides.clone(),
            backlog_growth_samples: 10,
            high_latency: Duration::from_millis(settings.high_latency_ms),
            failure_rate: settings.failure_rate,
            failure_min_deliveries: 20,
            failure_window: 12,
            violation_quiet: Duration::from_secs(300),
            repeat_interval: settings.repeat_interval,
            poll_interval: settings.heartbeat_interval,
        }
    }
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self::from_settings(&MonitoringSettings::default())
    }
}

/// Every evaluator plus the tracker: the NATS side feeds observations in and
/// publishes what [`Monitor::evaluate`] returns.
#[derive(Debug, Clone)]
pub struct Monitor {
    config: MonitorConfig,
    tracker: AlertTracker,
    heartbeats: HeartbeatMonitor,
    backlog: BacklogMonitor,
    failures: FailureRateMonitor,
    violations: ViolationMonitor,
    latency: LatencyMonitor,
    pending: Vec<Check>,
    /// True while the watcher's own connection is down: it cannot see
    /// heartbeats, so it must not conclude services are down.
    blind: bool,
    /// Keys reported by per-sample evaluators this round, so consumers that
    /// vanish get cleared.
    sampled: BTreeSet<(&'static str, String)>,
}

impl Monitor {
    /// A monitor raising alerts as `service_name` (normally `herald-watch`).
    pub fn new(service_name: &str, config: MonitorConfig) -> Self {
        Self {
            tracker: AlertTracker::new(service_name, config.repeat_interval),
            heartbeats: HeartbeatMonitor::new(config.service_down_after),
            backlog: BacklogMonitor::new(
                config.backlog_threshold,
                config.backlog_overrides.clone(),
                config.backlog_growth_samples,
            ),
            failures: FailureRateMonitor::new(
                config.failure_rate,
                config.failure_min_deliveries,
                config.failure_window,
            ),
            violations: ViolationMonitor::new(config.violation_quiet),
            latency: LatencyMonitor::new(config.high_latency),
            config,
            pending: Vec::new(),
            sampled: BTreeSet::new(),
            blind: false,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    /// The tracker, to inspect firing incidents.
    pub fn tracker(&self) -> &AlertTracker {
        &self.tracker
    }

    /// Expects heartbeats from `service` from `now` on.
    pub fn expect_service(&mut self, service: &str, now: DateTime<Utc>) {
        self.heartbeats.expect(service, now);
    }

    /// A heartbeat arrived.
    pub fn heartbeat(&mut self, heartbeat: &Heartbeat, received_at: DateTime<Utc>) {
        self.heartbeats.record_heartbeat(heartbeat, received_at);
    }

    /// A consumer sample: backlog, plus cumulative delivered/failed counts
    /// for the failure rate and the age of its oldest unprocessed event (if
    /// known) for latency.
    pub fn consumer(
        &mut self,
        sample: &ConsumerSample,
        delivered: u64,
        failed: u64,
        oldest_pending_age: Option<Duration>,
    ) {
        let mut checks = vec![
            self.backlog.record(sample),
            self.failures
                .record(&sample.durable, &sample.service, delivered, failed),
        ];
        if let Some(age) = oldest_pending_age {
            checks.push(self.latency.check(&sample.durable, &sample.service, age));
        }
        for check in &checks {
            let key = match check {
                Check::Firing(a) => (a.alert_type.as_str(), a.key.clone()),
                Check::Clear {
                    alert_type, key, ..
                } => (alert_type.as_str(), key.clone()),
            };
            self.sampled.insert(key);
        }
        self.pending.extend(checks);
    }

    /// The age of `key`'s oldest unprocessed event, measured elsewhere.
    pub fn latency(&mut self, key: &str, service: &str, latency: Duration) {
        self.pending.push(self.latency.check(key, service, latency));
    }

    /// `count` events on `key` failed validation at `at`.
    pub fn schema_violation(
        &mut self,
        key: &str,
        service: Option<&str>,
        count: u64,
        at: DateTime<Utc>,
    ) {
        self.violations.record(key, service, count, at);
    }

    /// The watcher's own connection changed. While it is down, heartbeat
    /// silence is not judged (the watcher is the one that is deaf); once it
    /// is back, every service gets a fresh `service_down_after`.
    pub fn connection(&mut self, service: &str, connected: bool, at: DateTime<Utc>) {
        if connected && self.blind {
            self.heartbeats.grace(at);
        }
        self.blind = !connected;
        self.pending
            .push(connectivity_check(service, connected, at));
    }

    /// Evaluates everything at `now` and returns the notifications to
    /// publish, in a stable order.
    pub fn evaluate(&mut self, now: DateTime<Utc>) -> Vec<AlertEvent> {
        let mut checks = std::mem::take(&mut self.pending);
        if !self.blind {
            checks.extend(self.heartbeats.checks(now));
        }
        checks.extend(self.violations.checks(now));
        // Incidents about consumers that were not sampled this round (the
        // consumer was deleted) are cleared rather than left firing forever.
        let sampled = std::mem::take(&mut self.sampled);
        let stale: Vec<Check> = self
            .tracker
            .firing()
            .filter(|i| {
                matches!(
                    i.alert.alert_type,
                    AlertType::Backlog | AlertType::FailureRate
                ) && !sampled.is_empty()
                    && !sampled.contains(&(i.alert.alert_type.as_str(), i.alert.key.clone()))
            })
            .map(|i| Check::clear(i.alert.alert_type, i.alert.key.clone()))
            .collect();
        checks.extend(stale);
        self.tracker.apply_all(checks, now)
    }
}

pub mod metrics_http;
pub mod tail;
pub mod watch;

#[cfg(test)]
mod tests;
