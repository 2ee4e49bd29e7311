//! The demo's books: what was actually published and what each service actually did.
//!
//! Why a ledger: the demo must not merely *say* that nothing was lost; it
//! records every stored event (by its idempotency key) as the producers get
//! their PubAcks, every effect a consuming service applied, and at the end
//! reads the dead-letter queue, so `lost` and `processed twice` are computed
//! from facts rather than from the runtime's own counters.
//!
//! The ledger doubles as each service's "database": a service applies an
//! event's effect at most once per key ([`Ledger::apply`]). A *redelivery*
//! (delivery count > 1) of an already applied event is the at-least-once
//! case handlers must tolerate and is counted as handled as a duplicate; a
//! *first* delivery of an already applied key means herald let a duplicate
//! through, and is booked as processed twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_runtime::consumer::ConsumerStats;

/// One stored event, as its producer saw it acknowledged.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Subject it was published on.
    pub subject: String,
    /// Whether it satisfies its contract (bare JSON may not).
    pub valid: bool,
}

/// Counters of one subject.
#[derive(Debug, Default, Clone)]
pub struct SubjectTally {
    /// Distinct events stored.
    pub published: u64,
    /// Events refused by validation before publishing.
    pub refused_invalid: u64,
    /// Publishes JetStream dropped as duplicates (same `Nats-Msg-Id` within the window).
    pub duplicates_dropped: u64,
    /// Of `published`, bare JSON from a non-herald producer.
    pub bare: u64,
    /// Effects applied by consuming services.
    pub consumed: u64,
    /// End-to-end latencies (event timestamp to handler), microseconds, with why
    /// each was slow (if it was).
    pub latencies_us: Vec<(u64, Delay)>,
}

/// Deliveries slower than this are explained in the report.
pub const SLOW: Duration = Duration::from_secs(1);

/// Why a delivery reached its handler late (measured, not guessed: see [`Ledger::apply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delay {
    /// Under [`SLOW`].
    None,
    /// A redelivery: a retry after its backoff, or after `ack_wait` when a consumer
    /// crashed holding it.
    Redelivery,
    /// First delivery, and the consumer handled nothing for a while it was waiting: no
    /// message arrived for its pull requests.
    IdleFetch,
    /// First delivery that waited while the cluster demo's killed server was down and its
    /// streams elected new leaders (from the kill until two seconds after the move, the
    /// time a consumer's pull cycle takes to find the new leader).
    Failover,
    /// First delivery behind a backlog: the consumer was busy all along.
    Backlog,
}

impl Delay {
    /// The label in the report.
    pub fn label(self) -> &'static str {
        match self {
            Delay::None => "none",
            Delay::Redelivery => "redelivery",
            Delay::IdleFetch => "idle_fetch",
            Delay::Failover => "failover",
            Delay::Backlog => "backlog",
        }
    }
}

/// A consumer's handler calls over time, to tell a stalled fetch from a backlog.
#[derive(Debug, Clone, Copy)]
struct Activity {
    last_call: Instant,
    /// The latest stretch of at least [`SLOW`] without a handler call.
    idle: Option<(Instant, Instant)>,
}

/// Counters of one consuming service.
#[derive(Debug, Default, Clone)]
pub struct ServiceTally {
    /// Effects applied.
    pub processed: u64,
    /// Redeliveries of events whose effect was already applied (acked, not re-applied).
    pub redelivered_duplicates: u64,
    /// Events the service published and saw stored (distinct events).
    pub published: u64,
    /// Events it tried to publish that validation refused.
    pub refused: u64,
    /// Publishes of its own that JetStream's duplicate window dropped.
    pub duplicates_dropped: u64,
    /// Publishes that failed (no PubAck within the publisher's retries).
    pub failed: u64,
    /// Consumer crashes.
    pub crashes: u64,
    /// Consumer restarts after a crash.
    pub restarts: u64,
    /// End-to-end latencies, microseconds, with why each was slow (if it was).
    pub latencies_us: Vec<(u64, Delay)>,
}

/// Faults injected on purpose, and how they ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FaultTally {
    /// Invalid events a herald producer tried to publish (refused before publishing).
    pub invalid_refused_at_publish: u64,
    /// Bare JSON events (no herald headers) stored by the non-herald producer.
    pub bare_json_published: u64,
    /// Of those, invalid ones (to be dead-lettered at consume).
    pub bare_json_invalid: u64,
    /// Dead-letter entries for the invalid bare events (one per subscribing consumer).
    pub bare_json_dead_lettered: u64,
    /// Bare events sent twice (stored twice: no `Nats-Msg-Id`).
    pub bare_json_resent: u64,
    /// Of those, invalid ones: each copy is dead-lettered by every subscriber.
    pub bare_json_invalid_resent: u64,
    /// Consumers subscribed to the bare events' subject (each dead-letters an invalid one).
    pub bare_json_subscribers: u64,
    /// Deliveries acked as duplicates by herald's consumers (duplicate store).
    pub duplicates_dropped_at_consume: u64,
    /// herald publishes repeated on purpose and dropped by JetStream's duplicate window.
    pub duplicate_publishes_dropped: u64,
    /// Redeliveries of already processed events, handled as duplicates by the service.
    pub redeliveries_handled_as_duplicates: u64,
    /// Poison events published (a handler always fails on them).
    pub poison_events: u64,
    /// Poison events dead-lettered after `max_deliver` (`max_deliveries`).
    pub poison_dead_lettered: u64,
    /// Consumers crashed on purpose.
    pub consumer_crashes: u64,
    /// Consumers restarted after crashing.
    pub consumer_restarts: u64,
}

#[derive(Debug, Default)]
struct Inner {
    stored: HashMap<String, Stored>,
    by_seq: HashMap<(String, u64), String>,
    subjects: BTreeMap<String, SubjectTally>,
    services: BTreeMap<String, ServiceTally>,
    applied: HashMap<(String, String), u32>,
    faults: FaultTally,
    poison_keys: Vec<String>,
    workflows: std::collections::HashSet<String>,
    consumers: Vec<(String, String, Arc<ConsumerStats>)>,
    activity: HashMap<String, Activity>,
    stream_stores: HashMap<String, Vec<Instant>>,
    watched_streams: std::collections::HashSet<String>,
    /// When a server was killed, and when its stream had a new leader (if yet).
    outage: Option<(Instant, Option<Instant>)>,
}

/// How long after a leader moved a waiting delivery still counts as the failover's.
const FAILOVER_SLACK: Duration = Duration::from_secs(2);

impl Inner {
    /// Why a delivery of `durable` that waited `latency` was slow. A delivery waiting
    /// while its consumer handled nothing for a second or more is an idle fetch: a busy
    /// consumer behind a backlog is never idle.
    fn classify(
        &mut self,
        durable: &str,
        delivered: i64,
        latency: Option<Duration>,
        now: Instant,
    ) -> Delay {
        let a = self
            .activity
            .entry(durable.to_string())
            .or_insert(Activity {
                last_call: now,
                idle: None,
            });
        if now.saturating_duration_since(a.last_call) >= SLOW {
            a.idle = Some((a.last_call, now));
        }
        a.last_call = now;
        let Some(waited) = latency.filter(|l| *l >= SLOW) else {
            return Delay::None;
        };
        if delivered > 1 {
            return Delay::Redelivery;
        }
        let since = now.checked_sub(waited).unwrap_or(now);
        if let Some((down, moved)) = self.outage {
            let over = moved.map_or(now, |m| m + FAILOVER_SLACK);
            if since < over && now > down {
                return Delay::Failover;
            }
        }
        match a.idle {
            Some((from, to)) if to.saturating_duration_since(from.max(since)) >= SLOW / 2 => {
                Delay::IdleFetch
            }
            _ => Delay::Backlog,
        }
    }
}

/// What [`Ledger::apply`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// First application: perform the effect.
    Fresh,
    /// A redelivery of an applied event: ack without the effect.
    Redelivery,
}

/// The shared books of one demo run. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    inner: Arc<Mutex<Inner>>,
    consumed_total: Arc<AtomicU64>,
    published_total: Arc<AtomicU64>,
    /// Workflow step events published but not yet booked from the stream (progress only).
    unbooked_steps: Arc<AtomicU64>,
}

/// Samples kept per subject or service for percentiles (bounded memory).
const MAX_SAMPLES: usize = 200_000;

/// Adds a latency sample, if there is one, until `MAX_SAMPLES` are kept.
fn keep_sample(samples: &mut Vec<(u64, Delay)>, sample: Option<(u64, Delay)>) {
    if let Some(sample) = sample {
        if samples.len() < MAX_SAMPLES {
            samples.push(sample);
        }
    }
}

impl Ledger {
    /// Empty books.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an event stored in `stream` at `seq` under idempotency `key`.
    /// A key already stored (a duplicate that got past, e.g. a bare resend) is not
    /// counted again.
    pub fn stored(
        &self,
        subject: &str,
        key: &str,
        stream: &str,
        seq: u64,
        valid: bool,
        bare: bool,
    ) -> bool {
        let mut g = self.lock();
        g.by_seq.insert((stream.to_string(), seq), key.to_string());
        if g.watched_streams.contains(stream) {
            g.stream_stores
                .entry(stream.to_string())
                .or_default()
                .push(Instant::now());
        }
        if g.stored.contains_key(key) {
            return false;
        }
        g.stored.insert(
            key.to_string(),
            Stored {
                subject: subject.to_string(),
                valid,
            },
        );
        let t = g.subjects.entry(subject.to_string()).or_default();
        t.published += 1;
        if bare {
            t.bare += 1;
        }
        self.published_total.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Records an event `service` published and saw stored; returns whether it is new.
    #[allow(clippy::too_many_arguments)]
    pub fn stored_from(
        &self,
        service: &str,
        subject: &str,
        key: &str,
        stream: &str,
        seq: u64,
        valid: bool,
        bare: bool,
    ) -> bool {
        let fresh = self.stored(subject, key, stream, seq, valid, bare);
        if fresh {
            self.lock()
                .services
                .entry(service.to_string())
                .or_default()
                .published += 1;
        }
        fresh
    }

    /// Records an event stored by a service (a follow-up it published).
    pub fn stored_by(&self, service: &str, subject: &str, key: &str, stream: &str, seq: u64) {
        self.stored_from(service, subject, key, stream, seq, true, false);
    }

    /// Records a publish of `service` that JetStream dropped as a duplicate.
    pub fn duplicate_dropped(&self, service: &str, subject: &str) {
        let mut g = self.lock();
        g.subjects
            .entry(subject.to_string())
            .or_default()
            .duplicates_dropped += 1;
        g.services
            .entry(service.to_string())
            .or_default()
            .duplicates_dropped += 1;
    }

    /// Records an event of `service` refused by validation before it was published.
    pub fn refused(&self, service: &str, subject: &str) {
        let mut g = self.lock();
        g.subjects
            .entry(subject.to_string())
            .or_default()
            .refused_invalid += 1;
        g.services.entry(service.to_string()).or_default().refused += 1;
    }

    /// Records a publish of `service` that failed for good.
    pub fn publish_failed(&self, service: &str) {
        self.lock()
            .services
            .entry(service.to_string())
            .or_default()
            .failed += 1;
    }

    /// Counts `n` workflow step events published (shown in progress until booked).
    pub fn steps_published(&self, n: u64) {
        self.unbooked_steps.fetch_add(n, Ordering::Relaxed);
    }

    /// The step events are now booked from the stream.
    pub fn steps_booked(&self) {
        self.unbooked_steps.store(0, Ordering::Relaxed);
    }

    /// Records the time of every store into `stream` from now on.
    pub fn watch_stream(&self, stream: &str) {
        self.lock().watched_streams.insert(stream.to_string());
    }

    /// The longest gap between consecutive stores into a watched `stream` from the last
    /// store before `from` on, and whether the last gap is still open at `until` (no
    /// store since): then the gap runs to `until`.
    pub fn longest_store_gap(
        &self,
        stream: &str,
        from: Instant,
        until: Instant,
    ) -> Option<(Duration, bool)> {
        let g = self.lock();
        let times = g.stream_stores.get(stream)?;
        let first = times.iter().rposition(|t| *t <= from)?;
        let closed = times[first..]
            .windows(2)
            .map(|w| w[1].saturating_duration_since(w[0]))
            .max()
            .unwrap_or_default();
        let open = until.saturating_duration_since(times[times.len() - 1]);
        Some(if open > closed {
            (open, true)
        } else {
            (closed, false)
        })
    }

    /// Records a workflow the orchestrator ran (its step events are booked from the
    /// stream at the end).
    pub fn workflow(&self, id: &str) {
        self.lock().workflows.insert(id.to_string());
    }

    /// Whether the orchestrator ran workflow `id` in this run.
    pub fn ran_workflow(&self, id: &str) -> bool {
        self.lock().workflows.contains(id)
    }

    /// Marks `key` as a poison event.
    pub fn poison(&self, key: &str) {
        self.lock().poison_keys.push(key.to_string());
    }

    /// Updates the fault counters.
    pub fn fault(&self, f: impl FnOnce(&mut FaultTally)) {
        f(&mut self.lock().faults);
    }

    /// Registers a consumer's counters (again after a restart: the counters add up).
    pub fn register_consumer(&self, service: &str, durable: &str, stats: Arc<ConsumerStats>) {
        self.lock()
            .consumers
            .push((service.to_string(), durable.to_string(), stats));
    }

    /// A service's handler is about to apply the effect of `key` (delivery number
    /// `delivered`) as consumer `durable`. Returns whether to apply it.
    pub fn apply(
        &self,
        service: &str,
        durable: &str,
        subject: &str,
        key: &str,
        delivered: i64,
        latency: Option<Duration>,
    ) -> Applied {
        let mut g = self.lock();
        let slot = (durable.to_string(), key.to_string());
        let count = g.applied.get(&slot).copied().unwrap_or(0);
        if count > 0 && delivered > 1 {
            g.services
                .entry(service.to_string())
                .or_default()
                .redelivered_duplicates += 1;
            g.faults.redeliveries_handled_as_duplicates += 1;
            return Applied::Redelivery;
        }
        g.applied.insert(slot, count + 1);
        let delay = g.classify(durable, delivered, latency, Instant::now());
        let us = latency.map(|d| (d.as_micros().min(u64::MAX as u128) as u64, delay));
        let s = g.services.entry(service.to_string()).or_default();
        s.processed += 1;
        keep_sample(&mut s.latencies_us, us);
        let t = g.subjects.entry(subject.to_string()).or_default();
        t.consumed += 1;
        keep_sample(&mut t.latencies_us, us);
        self.consumed_total.fetch_add(1, Ordering::Relaxed);
        Applied::Fresh
    }

    /// Records that a server was killed at `at` (the cluster demo).
    pub fn server_killed(&self, at: Instant) {
        self.lock().outage = Some((at, None));
    }

    /// Records that the killed server's stream has a new leader since `at`.
    pub fn leader_moved(&self, at: Instant) {
        if let Some((_, moved)) = &mut self.lock().outage {
            *moved = Some(at);
        }
    }

    /// Records a consumer crash (`restarted` false) or restart (true) of `service`.
    pub fn crash_event(&self, service: &str, restarted: bool) {
        let mut g = self.lock();
        let s = g.services.entry(service.to_string()).or_default();
        if restarted {
            s.restarts += 1;
            g.faults.consumer_restarts += 1;
        } else {
            s.crashes += 1;
            g.faults.consumer_crashes += 1;
        }
    }

    /// Events stored so far (distinct keys).
    pub fn published_total(&self) -> u64 {
        self.published_total.load(Ordering::Relaxed)
    }

    /// Events stored so far, with the workflow steps not yet booked (progress).
    pub fn published_progress(&self) -> u64 {
        self.published_total() + self.unbooked_steps.load(Ordering::Relaxed)
    }

    /// Effects applied so far.
    pub fn consumed_total(&self) -> u64 {
        self.consumed_total.load(Ordering::Relaxed)
    }

    /// Dead letters written by the demo's consumers so far.
    pub fn dead_lettered_total(&self) -> u64 {
        self.lock()
            .consumers
            .iter()
            .map(|(_, _, s)| s.snapshot().dead_lettered)
            .sum()
    }

    /// Whether an event with `key` was stored.
    pub fn is_stored(&self, key: &str) -> bool {
        self.lock().stored.contains_key(key)
    }

    /// The key stored at `stream`/`seq`, if a producer recorded it.
    pub fn key_at(&self, stream: &str, seq: u64) -> Option<String> {
        self.lock().by_seq.get(&(stream.to_string(), seq)).cloned()
    }

    /// A copy of the books for the final report.
    pub fn snapshot(&self) -> LedgerSnapshot {
        let g = self.lock();
        let mut consumers: BTreeMap<(String, String), herald_runtime::consumer::StatsSnapshot> =
            BTreeMap::new();
        for (service, durable, stats) in &g.consumers {
            let s = stats.snapshot();
            let e = consumers
                .entry((service.clone(), durable.clone()))
                .or_default();
            e.acked += s.acked;
            e.duplicates += s.duplicates;
            e.retried += s.retried;
            e.dead_lettered += s.dead_lettered;
            e.panics += s.panics;
            e.released += s.released;
        }
        LedgerSnapshot {
            stored: g.stored.clone(),
            subjects: g.subjects.clone(),
            services: g.services.clone(),
            applied: g.applied.clone(),
            faults: g.faults,
            poison_keys: g.poison_keys.clone(),
            consumers,
        }
    }
}

/// A frozen copy of the [`Ledger`].
#[derive(Debug, Clone)]
pub struct LedgerSnapshot {
    /// Stored events by key.
    pub stored: HashMap<String, Stored>,
    /// Per subject.
    pub subjects: BTreeMap<String, SubjectTally>,
    /// Per consuming or publishing service.
    pub services: BTreeMap<String, ServiceTally>,
    /// Effects applied per (durable, key).
    pub applied: HashMap<(String, String), u32>,
    /// Faults.
    pub faults: FaultTally,
    /// Keys of poison events.
    pub poison_keys: Vec<String>,
    /// herald consumer counters per (service, durable), summed over restarts.
    pub consumers: BTreeMap<(String, String), herald_runtime::consumer::StatsSnapshot>,
}

/// The `p`-quantile of the latencies in `samples` (all of them, or only those `keep` accepts).
pub fn percentile_of(
    samples: &[(u64, Delay)],
    p: f64,
    keep: impl Fn(Delay) -> bool,
) -> Option<f64> {
    let v: Vec<u64> = samples
        .iter()
        .filter(|(_, d)| keep(*d))
        .map(|(us, _)| *us)
        .collect();
    percentile_ms(&v, p)
}

/// The `p`-quantile (0..=1) of `samples` in milliseconds, `None` when empty.
pub fn percentile_ms(samples: &[u64], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort_unstable();
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    Some(v[rank] as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redelivery_of_applied_event_is_a_duplicate_first_delivery_is_twice() {
        let l = Ledger::new();
        l.stored("a.b", "k1", "S", 1, true, false);
        l.stored("a.b", "k1", "S", 2, true, true);
        assert_eq!(l.published_total(), 1);
        assert_eq!(l.apply("svc", "d", "a.b", "k1", 1, None), Applied::Fresh);
        assert_eq!(
            l.apply("svc", "d", "a.b", "k1", 2, None),
            Applied::Redelivery
        );
        assert_eq!(l.apply("svc", "d", "a.b", "k1", 1, None), Applied::Fresh);
        let s = l.snapshot();
        assert_eq!(s.applied[&("d".to_string(), "k1".to_string())], 2);
        assert_eq!(s.faults.redeliveries_handled_as_duplicates, 1);
        assert_eq!(l.key_at("S", 2).as_deref(), Some("k1"));
    }

    #[test]
    fn slow_deliveries_are_classified_by_what_the_consumer_did_meanwhile() {
        let mut g = Inner::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let waited = |ms: u64| Some(Duration::from_millis(ms));
        // Fast deliveries are not slow, whatever else happened.
        assert_eq!(g.classify("idle", 1, waited(5), at(0)), Delay::None);
        // Nothing handled for 5 s while this event waited 4.9 s: an idle fetch.
        assert_eq!(
            g.classify("idle", 1, waited(4_900), at(5_000)),
            Delay::IdleFetch
        );
        // The rest of that burst waited through the same idle stretch.
        assert_eq!(
            g.classify("idle", 1, waited(4_000), at(5_001)),
            Delay::IdleFetch
        );
        // A consumer busy every 100 ms: a 2 s wait is a backlog.
        for i in 0..30 {
            assert_eq!(g.classify("busy", 1, waited(10), at(i * 100)), Delay::None);
        }
        assert_eq!(
            g.classify("busy", 1, waited(2_000), at(3_000)),
            Delay::Backlog
        );
        // A second delivery is a redelivery, idle or not.
        assert_eq!(
            g.classify("busy", 2, waited(2_000), at(3_100)),
            Delay::Redelivery
        );
        // An idle stretch that ended before the event arrived does not explain it.
        assert_eq!(g.classify("late", 1, waited(5), at(0)), Delay::None);
        assert_eq!(g.classify("late", 1, waited(5), at(3_000)), Delay::None);
        for i in 1..=20 {
            g.classify("late", 1, waited(5), at(3_000 + i * 100));
        }
        assert_eq!(
            g.classify("late", 1, waited(1_500), at(5_100)),
            Delay::Backlog
        );
        // A wait that overlaps a killed leader's outage (until 2 s after the move) is the
        // failover's, however busy or idle the consumer was.
        g.outage = Some((at(10_000), Some(at(18_000))));
        assert_eq!(
            g.classify("busy", 1, waited(3_000), at(12_000)),
            Delay::Failover
        );
        assert_eq!(
            g.classify("idle", 1, waited(1_500), at(21_000)),
            Delay::Failover
        );
        // Events created after the outage ended are not.
        assert_eq!(
            g.classify("late", 1, waited(1_000), at(22_000)),
            Delay::IdleFetch
        );
    }

    #[test]
    fn percentiles() {
        let v: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&v, 0.5), Some(50.0));
        assert_eq!(percentile_ms(&v, 0.99), Some(99.0));
        assert_eq!(percentile_ms(&[], 0.5), None);
    }
}
