//! Tests for the alert state machine and evaluators: exact notifications,
//! ids and payload validity against the catalog's AlertEvent and Heartbeat
//! schemas.

use super::*;
use herald_contracts::Catalog;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-15T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + chrono::TimeDelta::seconds(secs)
}

fn catalog() -> Catalog {
    Catalog::embedded().expect("embedded catalog")
}

/// Every alert must validate on its own subject, as the publisher will
/// check.
fn assert_valid(catalog: &Catalog, event: &AlertEvent) {
    let json = serde_json::to_value(event).unwrap();
    let subject = event.alert_type.subject();
    if let Err(e) = catalog.validate(&subject, None, &json) {
        panic!("{} invalid on {subject}: {e}\n{json:#}", event.alert_id);
    }
}

fn backlog_alert(value: f64) -> Alert {
    Alert::new(
        AlertType::Backlog,
        "billing-service--usage",
        Severity::Warning,
        "backlog",
    )
    .affected_service("billing-service")
    .measured(value, 1000.0)
}

#[test]
fn alert_types_map_to_catalog_subjects() {
    let catalog = catalog();
    for kind in ALERT_TYPES {
        assert_eq!(kind.subject(), format!("alerts.{}", kind.as_str()));
        let spec = catalog
            .subject(&kind.subject())
            .unwrap_or_else(|| panic!("{} not in catalog", kind.subject()));
        assert_eq!(spec.schema, "AlertEvent");
    }
    assert_eq!(
        serde_json::to_value(AlertType::SchemaViolation).unwrap(),
        "schema_violation"
    );
    assert!(
        severity_rank(Severity::Critical) > severity_rank(Severity::Warning)
            && severity_rank(Severity::Warning) > severity_rank(Severity::Info)
    );
    // Every alert subject of the catalog has its type.
    let in_catalog = catalog
        .subjects()
        .iter()
        .filter(|s| s.name.starts_with("alerts."))
        .count();
    assert_eq!(in_catalog, ALERT_TYPES.len());
}

#[test]
fn fires_once_repeats_after_interval_and_resolves_once() {
    let mut tracker = AlertTracker::new("herald-watch", Duration::from_secs(300));
    let first = tracker
        .apply(Check::Firing(backlog_alert(1500.0)), t(0))
        .expect("first firing");
    assert_eq!(first.state, AlertState::Firing);
    assert_eq!(first.alert_type, AlertType::Backlog);
    assert_eq!(first.value, Some(1500.0));
    assert_eq!(first.threshold, Some(1000.0));
    assert_eq!(first.started_at, Some(t(0)));
    assert_eq!(
        first.incident_id.as_deref(),
        Some("backlog:billing-service--usage:2026-01-15T10:00:00.000Z")
    );
    // Still firing inside the repeat interval: silence, value kept current.
    for s in [5, 60, 299] {
        assert_eq!(
            tracker.apply(Check::Firing(backlog_alert(1600.0 + s as f64)), t(s)),
            None,
            "at {s}s"
        );
    }
    let repeat = tracker
        .apply(Check::Firing(backlog_alert(2000.0)), t(300))
        .expect("repeat after interval");
    assert_eq!(repeat.state, AlertState::Firing);
    assert_eq!(repeat.incident_id, first.incident_id);
    assert_ne!(repeat.alert_id, first.alert_id);
    assert_eq!(repeat.value, Some(2000.0));
    assert_eq!(repeat.started_at, first.started_at);
    assert_eq!(repeat.timestamp, t(300));
    // The next repeat is due an interval after the last one.
    assert_eq!(
        tracker.apply(Check::Firing(backlog_alert(2000.0)), t(599)),
        None
    );
    let second_repeat = tracker
        .apply(Check::Firing(backlog_alert(2000.0)), t(600))
        .expect("second repeat");
    assert_ne!(second_repeat.alert_id, repeat.alert_id);

    let resolved = tracker
        .apply(
            Check::clear(AlertType::Backlog, "billing-service--usage"),
            t(610),
        )
        .expect("resolved");
    assert_eq!(resolved.state, AlertState::Resolved);
    assert_eq!(resolved.incident_id, first.incident_id);
    assert_eq!(resolved.summary, "resolved: backlog");
    assert!(!tracker.is_firing(AlertType::Backlog, "billing-service--usage"));
    // Clear again, or clear something never firing: nothing.
    assert_eq!(
        tracker.apply(
            Check::clear(AlertType::Backlog, "billing-service--usage"),
            t(620)
        ),
        None
    );
    assert_eq!(
        tracker.apply(Check::clear(AlertType::ServiceDown, "nobody"), t(620)),
        None
    );
    // A new breach is a new incident with new ids.
    let again = tracker
        .apply(Check::Firing(backlog_alert(1200.0)), t(700))
        .expect("new incident");
    assert_ne!(again.incident_id, first.incident_id);
    assert_ne!(again.alert_id, first.alert_id);

    let catalog = catalog();
    for event in [&first, &repeat, &second_repeat, &resolved, &again] {
        assert_valid(&catalog, event);
    }
}

#[test]
fn escalation_is_sent_at_once() {
    let mut tracker = AlertTracker::new("herald-watch", Duration::from_secs(300));
    assert!(tracker
        .apply(Check::Firing(backlog_alert(1500.0)), t(0))
        .is_some());
    let mut critical = backlog_alert(50_000.0);
    critical.severity = Severity::Critical;
    let escalated = tracker
        .apply(Check::Firing(critical), t(10))
        .expect("escalation");
    assert_eq!(escalated.severity, Severity::Critical);
    // Going back down is not news until the repeat is due.
    assert_eq!(
        tracker.apply(Check::Firing(backlog_alert(1500.0)), t(20)),
        None
    );
}

#[test]
fn ids_are_deterministic_for_the_same_incident() {
    // A restarted watcher that sees the same incident (same start) produces
    // the same ids, so JetStream's duplicate window drops the copy.
    let since = t(-30);
    let run = || {
        let mut tracker = AlertTracker::new("herald-watch", Duration::from_secs(60));
        let alert = Alert::new(
            AlertType::ServiceDown,
            "billing-service",
            Severity::Critical,
            "down",
        )
        .since(since);
        let fired = tracker.apply(Check::Firing(alert.clone()), t(0)).unwrap();
        let repeated = tracker.apply(Check::Firing(alert), t(60)).unwrap();
        let resolved = tracker
            .apply(
                Check::clear(AlertType::ServiceDown, "billing-service"),
                t(90),
            )
            .unwrap();
        (fired.alert_id, repeated.alert_id, resolved.alert_id)
    };
    let a = run();
    let b = run();
    assert_eq!(a, b);
    assert!(a.0 != a.1 && a.1 != a.2 && a.0 != a.2);
    assert_eq!(a.0.get_version_num(), 8);
    assert_eq!(derived_uuid("x"), derived_uuid("x"));
    assert_ne!(derived_uuid("x"), derived_uuid("y"));
}

#[test]
fn quota_exceeded_helper_builds_a_valid_event() {
    let tenant = Uuid::parse_str("789e0123-e89b-12d3-a456-426614174000").unwrap();
    let event = quota_exceeded_event(
        "billing-service",
        tenant,
        "monthly_tokens",
        1_000_150.0,
        1_000_000.0,
        t(0),
        t(5),
    );
    assert_eq!(event.alert_type.subject(), "alerts.quota_exceeded");
    assert_eq!(event.tenant_id, Some(tenant));
    assert_eq!(event.labels.as_ref().unwrap()["quota"], "monthly_tokens");
    assert_eq!(event.state, AlertState::Firing);
    assert_eq!(event.value, Some(1_000_150.0));
    assert_valid(&catalog(), &event);
    // Same breach, same id.
    let again = quota_exceeded_event(
        "billing-service",
        tenant,
        "monthly_tokens",
        1_000_200.0,
        1_000_000.0,
        t(0),
        t(9),
    );
    assert_eq!(again.alert_id, event.alert_id);
    // The catalog requires tenant_id on this subject: the typed event
    // always carries it.
    let mut json = serde_json::to_value(&event).unwrap();
    json.as_object_mut().unwrap().remove("tenant_id");
    assert!(catalog()
        .validate("alerts.quota_exceeded", None, &json)
        .is_err());
}

#[test]
fn service_down_fires_after_silence_and_resolves_when_heartbeats_return() {
    let mut monitor = HeartbeatMonitor::new(Duration::from_secs(15));
    let mut tracker = AlertTracker::new("herald-watch", Duration::from_secs(300));
    let mut events = Vec::new();
    for s in (0..=20).step_by(5) {
        monitor.record("billing-service", Duration::from_secs(5), t(s));
        events.extend(tracker.apply_all(monitor.checks(t(s)), t(s)));
    }
    assert!(events.is_empty(), "{events:?}");
    // Last beat at 20s; silent from then on. 15s of silence is still fine.
    events.extend(tracker.apply_all(monitor.checks(t(35)), t(35)));
    assert!(events.is_empty());
    for s in [36, 40, 60, 120] {
        events.extend(tracker.apply_all(monitor.checks(t(s)), t(s)));
    }
    assert_eq!(events.len(), 1, "fires exactly once: {events:?}");
    let down = &events[0];
    assert_eq!(down.alert_type, AlertType::ServiceDown);
    assert_eq!(down.affected_service.as_deref(), Some("billing-service"));
    assert_eq!(down.severity, Severity::Critical);
    assert_eq!(down.value, Some(16.0));
    assert_eq!(down.threshold, Some(15.0));
    // The incident starts at the last heartbeat.
    assert_eq!(down.started_at, Some(t(20)));
    monitor.record("billing-service", Duration::from_secs(5), t(130));
    let back = tracker.apply_all(monitor.checks(t(130)), t(130));
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].state, AlertState::Resolved);
    assert_eq!(back[0].incident_id, down.incident_id);
    let catalog = catalog();
    assert_valid(&catalog, down);
    assert_valid(&catalog, &back[0]);
}

#[test]
fn slow_heartbeats_extend_the_down_limit_and_expected_services_are_watched() {
    let mut monitor = HeartbeatMonitor::new(Duration::from_secs(15));
    // Announces one beat a minute: down only after three minutes.
    monitor.record("audit-log", Duration::from_secs(60), t(0));
    assert!(!monitor.checks(t(180))[0].is_firing());
    assert!(monitor.checks(t(181))[0].is_firing());
    // Expected but never seen: down after the limit since expectation.
    let mut monitor = HeartbeatMonitor::new(Duration::from_secs(15));
    monitor.expect("orchestrator", t(0));
    assert!(!monitor.checks(t(15))[0].is_firing());
    match &monitor.checks(t(16))[0] {
        Check::Firing(alert) => {
            assert_eq!(alert.key, "orchestrator");
            assert!(alert.summary.contains("has not sent a heartbeat"));
        }
        other => panic!("expected firing, got {other:?}"),
    }
    // Expecting a service already seen does not reset it.
    monitor.record("orchestrator", Duration::from_secs(5), t(20));
    monitor.expect("orchestrator", t(100));
    assert!(monitor.checks(t(36))[0].is_firing());
}

#[test]
fn heartbeat_event_is_valid_on_its_subject() {
    let instance = Uuid::new_v4();
    let hb = new_heartbeat(
        "billing-service",
        instance,
        Duration::from_secs(5),
        t(0),
        t(3600),
    );
    let subject = heartbeat_subject(&hb.service_name);
    assert_eq!(subject, "herald.heartbeat.billing-service");
    assert_eq!(hb.interval_ms, 5000);
    assert_eq!(hb.uptime_s, Some(3600.0));
    assert_eq!(hb.timestamp, t(3600));
    let catalog = catalog();
    let json = serde_json::to_value(&hb).unwrap();
    catalog
        .validate(&subject, None, &json)
        .expect("heartbeat valid");
    // Round trip through JSON, as the watcher decodes it.
    let back: Heartbeat = serde_json::from_value(json).unwrap();
    assert_eq!(back, hb);
    // A zero interval is clamped to the schema's minimum.
    let hb = new_heartbeat("billing-service", instance, Duration::ZERO, t(0), t(0));
    assert_eq!(hb.interval_ms, 1);
    catalog
        .validate(&subject, None, &serde_json::to_value(&hb).unwrap())
        .expect("clamped heartbeat valid");
}

fn sample(durable: &str, pending: u64) -> ConsumerSample {
    ConsumerSample {
        durable: durable.to_owned(),
        service: "billing-service".to_owned(),
        stream: "USAGE".to_owned(),
        pending,
        ack_pending: 0,
    }
}

#[test]
fn backlog_over_threshold_with_per_consumer_override() {
    let overrides = BTreeMap::from([("billing-service--usage".to_owned(), 10)]);
    let mut monitor = BacklogMonitor::new(1000, overrides, 0);
    assert_eq!(monitor.threshold_for("billing-service--usage"), 10);
    assert_eq!(monitor.threshold_for("analytics-service--usage"), 1000);
    assert!(!monitor
        .record(&sample("billing-service--usage", 10))
        .is_firing());
    match monitor.record(&sample("billing-service--usage", 11)) {
        Check::Firing(alert) => {
            assert_eq!(alert.value, Some(11.0));
            assert_eq!(alert.threshold, Some(10.0));
            assert_eq!(alert.labels["condition"], "over_threshold");
            assert_eq!(alert.labels["stream"], "USAGE");
            assert_eq!(alert.affected_service.as_deref(), Some("billing-service"));
        }
        other => panic!("{other:?}"),
    }
    assert!(!monitor
        .record(&sample("analytics-service--usage", 999))
        .is_firing());
    // Clear, with the figures now (a resolution carries them).
    assert_eq!(
        monitor.record(&sample("billing-service--usage", 3)),
        Check::clear_at(
            AlertType::Backlog,
            "billing-service--usage",
            "consumer billing-service--usage on USAGE has 3 pending messages (threshold 10)".into(),
            Some(3.0)
        )
    );
}

#[test]
fn growing_backlog_fires_before_the_threshold() {
    let mut monitor = BacklogMonitor::new(1000, BTreeMap::new(), 3);
    let d = "analytics-service--ingest";
    // 10, 20, 30: only two increases so far.
    for p in [10, 20, 30] {
        assert!(!monitor.record(&sample(d, p)).is_firing(), "{p}");
    }
    match monitor.record(&sample(d, 40)) {
        Check::Firing(alert) => assert_eq!(alert.labels["condition"], "growing"),
        other => panic!("{other:?}"),
    }
    // A flat sample breaks the run.
    assert!(!monitor.record(&sample(d, 40)).is_firing());
}

#[test]
fn failure_rate_needs_volume_and_tracks_a_window() {
    let mut monitor = FailureRateMonitor::new(0.05, 20, 3);
    let d = "billing-service--usage";
    assert!(!monitor.record(d, "billing-service", 0, 0).is_firing());
    // 10 deliveries, 5 failed: 50% but too few to judge.
    assert!(!monitor.record(d, "billing-service", 10, 5).is_firing());
    // 100 deliveries, 10 failed: 10% > 5%.
    match monitor.record(d, "billing-service", 100, 10) {
        Check::Firing(alert) => {
            assert_eq!(alert.value, Some(0.1));
            assert_eq!(alert.threshold, Some(0.05));
            assert!(alert.summary.contains("10 of 100"), "{}", alert.summary);
        }
        other => panic!("{other:?}"),
    }
    // Window of 3 samples: old failures age out.
    for (delivered, failed) in [(200, 10), (300, 10), (400, 10)] {
        monitor.record(d, "billing-service", delivered, failed);
    }
    assert!(!monitor.record(d, "billing-service", 500, 11).is_firing());
    // Counter reset (consumer recreated): window restarts, no underflow.
    assert!(!monitor.record(d, "billing-service", 5, 5).is_firing());
    assert!(monitor.record(d, "billing-service", 105, 20).is_firing());
}

#[test]
fn schema_violations_fire_while_arriving_and_clear_when_quiet() {
    let mut monitor = ViolationMonitor::new(Duration::from_secs(300));
    let mut tracker = AlertTracker::new("herald-watch", Duration::from_secs(600));
    assert!(monitor.checks(t(0)).is_empty());
    monitor.record("UsageEvent", Some("model-gateway"), 1, t(10));
    monitor.record("UsageEvent", Some("model-gateway"), 2, t(20));
    let fired = tracker.apply_all(monitor.checks(t(20)), t(20));
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].alert_type, AlertType::SchemaViolation);
    assert_eq!(fired[0].value, Some(3.0));
    assert_eq!(fired[0].affected_service.as_deref(), Some("model-gateway"));
    assert_eq!(fired[0].started_at, Some(t(10)));
    assert!(tracker.apply_all(monitor.checks(t(320)), t(320)).is_empty());
    let resolved = tracker.apply_all(monitor.checks(t(321)), t(321));
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].state, AlertState::Resolved);
    assert!(monitor.checks(t(400)).is_empty(), "forgotten once cleared");
    assert_valid(&catalog(), &fired[0]);
    assert_valid(&catalog(), &resolved[0]);
}

#[test]
fn latency_and_connectivity_checks() {
    let monitor = LatencyMonitor::new(Duration::from_millis(500));
    assert!(!monitor
        .check("c", "billing-service", Duration::from_millis(500))
        .is_firing());
    match monitor.check("c", "billing-service", Duration::from_millis(750)) {
        Check::Firing(alert) => {
            assert_eq!(alert.alert_type, AlertType::HighLatency);
            // Says what it measures: not handler time, the age of the oldest unprocessed event.
            assert_eq!(
                alert.summary,
                "oldest unprocessed event of c is 750 ms old (threshold 500 ms)"
            );
            assert_eq!(alert.value, Some(750.0));
            assert_eq!(alert.threshold, Some(500.0));
        }
        other => panic!("{other:?}"),
    }
    let down = connectivity_check("herald-watch", false, t(5));
    let mut tracker = AlertTracker::new("herald-watch", Duration::from_secs(60));
    let fired = tracker.apply(down, t(30)).unwrap();
    assert_eq!(fired.started_at, Some(t(5)));
    let back = tracker
        .apply(connectivity_check("herald-watch", true, t(31)), t(31))
        .unwrap();
    assert_eq!(back.state, AlertState::Resolved);
    assert_valid(&catalog(), &fired);
    assert_valid(&catalog(), &back);
}

#[test]
fn non_finite_measurements_are_dropped() {
    let alert = backlog_alert(f64::NAN).measured(f64::INFINITY, f64::NAN);
    assert_eq!(alert.value, None);
    assert_eq!(alert.threshold, None);
}

#[test]
fn config_comes_from_the_catalog_monitoring_table() {
    let catalog = catalog();
    let config = MonitorConfig::from_settings(catalog.monitoring());
    assert_eq!(config.service_down_after, Duration::from_secs(15));
    assert_eq!(config.backlog_threshold, 1000);
    assert_eq!(config.high_latency, Duration::from_millis(500));
    assert_eq!(config.failure_rate, 0.05);
    assert_eq!(config.repeat_interval, Duration::from_secs(300));
    assert_eq!(config.poll_interval, Duration::from_secs(5));
}

#[test]
fn monitor_end_to_end_scenario() {
    let config = MonitorConfig {
        backlog_growth_samples: 0,
        ..MonitorConfig::default()
    };
    let mut monitor = Monitor::new("herald-watch", config);
    let beat = |s: i64| {
        new_heartbeat(
            "billing-service",
            Uuid::nil(),
            Duration::from_secs(5),
            t(0),
            t(s),
        )
    };
    let mut all = Vec::new();
    // Healthy for 30s.
    for s in (0..=30).step_by(5) {
        monitor.heartbeat(&beat(s), t(s));
        monitor.consumer(
            &sample("billing-service--usage", 5),
            100 + s as u64,
            0,
            None,
        );
        all.extend(monitor.evaluate(t(s)));
    }
    assert!(all.is_empty(), "{all:?}");
    // Heartbeats stop and the backlog builds.
    for s in (35..=120).step_by(5) {
        monitor.consumer(
            &sample("billing-service--usage", 1000 + 10 * s as u64),
            130,
            0,
            Some(Duration::from_secs(2)),
        );
        all.extend(monitor.evaluate(t(s)));
    }
    let kinds: Vec<(AlertType, AlertState)> = all.iter().map(|e| (e.alert_type, e.state)).collect();
    assert_eq!(
        kinds,
        [
            (AlertType::Backlog, AlertState::Firing),
            (AlertType::HighLatency, AlertState::Firing),
            (AlertType::ServiceDown, AlertState::Firing),
        ],
        "{all:#?}"
    );
    // Heartbeats and consumer recover.
    all.clear();
    monitor.heartbeat(&beat(125), t(125));
    monitor.consumer(
        &sample("billing-service--usage", 0),
        2000,
        0,
        Some(Duration::from_millis(10)),
    );
    all.extend(monitor.evaluate(t(125)));
    let kinds: Vec<(AlertType, AlertState)> = all.iter().map(|e| (e.alert_type, e.state)).collect();
    assert_eq!(
        kinds,
        [
            (AlertType::Backlog, AlertState::Resolved),
            (AlertType::HighLatency, AlertState::Resolved),
            (AlertType::ServiceDown, AlertState::Resolved),
        ]
    );
    assert_eq!(monitor.tracker().firing().count(), 0);
    let catalog = catalog();
    for e in &all {
        assert_valid(&catalog, e);
    }
}

#[test]
fn monitor_clears_incidents_of_consumers_that_disappear() {
    let mut monitor = Monitor::new("herald-watch", MonitorConfig::default());
    monitor.consumer(&sample("old-service--gone", 5000), 0, 0, None);
    monitor.consumer(&sample("billing-service--usage", 1), 0, 0, None);
    let fired = monitor.evaluate(t(0));
    assert_eq!(fired.len(), 1);
    // Next round only the surviving consumer is sampled.
    monitor.consumer(&sample("billing-service--usage", 1), 0, 0, None);
    let cleared = monitor.evaluate(t(5));
    assert_eq!(cleared.len(), 1);
    assert_eq!(cleared[0].state, AlertState::Resolved);
    assert_eq!(
        cleared[0]
            .labels
            .as_ref()
            .and_then(|l| l.get("consumer"))
            .map(String::as_str),
        Some("old-service--gone")
    );
}

#[test]
fn a_deaf_watcher_does_not_report_services_down() {
    let mut monitor = Monitor::new("herald-watch", MonitorConfig::default());
    let beat = new_heartbeat(
        "billing-service",
        Uuid::nil(),
        Duration::from_secs(5),
        t(0),
        t(0),
    );
    monitor.heartbeat(&beat, t(0));
    assert!(monitor.evaluate(t(0)).is_empty());
    // The watcher loses NATS at 5s; only its own connectivity alert fires,
    // however long the outage.
    monitor.connection("herald-watch", false, t(5));
    let during: Vec<_> = [t(5), t(30), t(60)]
        .into_iter()
        .flat_map(|now| monitor.evaluate(now))
        .map(|e| (e.alert_type, e.state))
        .collect();
    assert_eq!(during, [(AlertType::Connectivity, AlertState::Firing)]);
    // Back at 60s: connectivity resolves, and billing gets a full 15s from
    // the reconnection before it can be called down.
    monitor.connection("herald-watch", true, t(60));
    let after: Vec<_> = monitor
        .evaluate(t(60))
        .into_iter()
        .map(|e| (e.alert_type, e.state))
        .collect();
    assert_eq!(after, [(AlertType::Connectivity, AlertState::Resolved)]);
    assert!(monitor.evaluate(t(75)).is_empty());
    let down: Vec<_> = monitor
        .evaluate(t(76))
        .into_iter()
        .map(|e| (e.alert_type, e.state, e.started_at))
        .collect();
    assert_eq!(
        down,
        [(AlertType::ServiceDown, AlertState::Firing, Some(t(60)))]
    );
    // A heartbeat after the grace resolves it as usual.
    monitor.heartbeat(&beat, t(80));
    let up: Vec<_> = monitor
        .evaluate(t(80))
        .into_iter()
        .map(|e| (e.alert_type, e.state))
        .collect();
    assert_eq!(up, [(AlertType::ServiceDown, AlertState::Resolved)]);
}

/// Issue 13 item 20: a resolution carries the figures measured when it cleared.
#[test]
fn resolved_alerts_carry_the_current_value_not_the_first_firings() {
    let mut tracker = AlertTracker::new("herald-watch", Duration::from_secs(300));
    let mut backlog = BacklogMonitor::new(1000, BTreeMap::new(), 0);
    let sample = |pending| ConsumerSample {
        durable: "billing-service--usage".into(),
        service: "billing-service".into(),
        stream: "USAGE".into(),
        pending,
        ack_pending: 0,
    };
    let fired = tracker
        .apply(backlog.record(&sample(2051)), t(0))
        .expect("fires");
    assert_eq!(fired.value, Some(2051.0));
    let resolved = tracker
        .apply(backlog.record(&sample(0)), t(60))
        .expect("resolves");
    assert_eq!(resolved.state, AlertState::Resolved);
    assert_eq!(resolved.value, Some(0.0));
    assert_eq!(
        resolved.summary,
        "resolved: consumer billing-service--usage on USAGE has 0 pending messages (threshold 1000)"
    );

    let mut failures = FailureRateMonitor::new(0.05, 10, 1);
    assert!(!failures.record("d", "s", 0, 0).is_firing());
    let fired = tracker
        .apply(failures.record("d", "s", 80, 6), t(0))
        .expect("fires");
    assert!(fired.summary.contains("7.5%"), "{}", fired.summary);
    let resolved = tracker
        .apply(failures.record("d", "s", 180, 6), t(60))
        .expect("resolves");
    assert_eq!(resolved.value, Some(0.0));
    assert_eq!(
        resolved.summary,
        "resolved: 0.0% of deliveries to d failed (0 of 100; threshold 5.0%)"
    );
}
