//! Tests for the metrics module: values after recording, histogram rendering,
//! HELP text, the HTTP endpoint and `promtool check metrics`.

use super::*;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};

#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the sample lines of a text exposition (our label values never
/// contain escaped quotes, commas inside quotes are handled).
fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = BTreeMap::new();
                let mut rest = body;
                while !rest.is_empty() {
                    let (key, after) = rest.split_once("=\"").expect("label key");
                    let end = after.find('"').expect("closing quote");
                    labels.insert(key.to_owned(), after[..end].to_owned());
                    rest = after[end + 1..].trim_start_matches(',');
                }
                (name.to_owned(), labels)
            }
        };
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

/// The value of the single sample named `name` whose labels include `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matches: Vec<Sample> = parse(text)
        .into_iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert_eq!(
        matches.len(),
        1,
        "expected exactly one {name}{labels:?} in:\n{text}\nfound {matches:?}"
    );
    matches[0].value
}

fn has_series(text: &str, name: &str, labels: &[(&str, &str)]) -> bool {
    parse(text).iter().any(|s| {
        s.name == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    })
}

/// Runs `f` against a fresh recorder of our own (not the global one), so
/// tests running in parallel cannot see each other's values.
fn record_locally(f: impl FnOnce()) -> String {
    let recorder = builder().expect("builder").build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        describe();
        f();
    });
    handle.render()
}

const SVC: &str = "ingestion-service";
const SUBJ: &str = "ingest.document.processed";

fn ep(outcome: &'static str) -> [(&'static str, &'static str); 4] {
    [
        ("messaging_system", "nats"),
        ("service", SVC),
        ("messaging_destination_name", SUBJ),
        ("outcome", outcome),
    ]
}

#[test]
fn enums_render_the_documented_label_values() {
    let sent: Vec<_> = SentOutcome::ALL.iter().map(|o| o.as_str()).collect();
    assert_eq!(sent, ["ok", "duplicate", "invalid", "failed"]);
    let consumed: Vec<_> = ConsumedOutcome::ALL.iter().map(|o| o.as_str()).collect();
    assert_eq!(consumed, ["ack", "retry", "dead_letter", "duplicate"]);
    assert_eq!(Side::Publish.as_str(), "publish");
    assert_eq!(Side::Consume.as_str(), "consume");
    let reasons: Vec<_> = DlqReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "max_deliveries",
            "handler_rejected",
            "schema_invalid",
            "decode_error",
            "too_large",
            "unknown_subject",
            "unknown_schema"
        ]
    );
    for r in DlqReason::ALL {
        assert_eq!(DlqReason::parse(r.as_str()), Some(r));
    }
    assert_eq!(DlqReason::parse("boom: handler said no"), None);
    // `index()` is how the handles pick their pre-registered counter.
    for (i, o) in SentOutcome::ALL.iter().enumerate() {
        assert_eq!(o.index(), i);
    }
    for (i, o) in ConsumedOutcome::ALL.iter().enumerate() {
        assert_eq!(o.index(), i);
    }
    for (i, r) in DlqReason::ALL.iter().enumerate() {
        assert_eq!(r.index(), i);
    }
}

#[test]
fn publish_path_counts_every_outcome_and_retry() {
    let text = record_locally(|| {
        let m = PublishMetrics::new(SVC, SUBJ);
        for _ in 0..3 {
            m.record_sent(SentOutcome::Ok, Duration::from_millis(3));
        }
        m.record_sent(SentOutcome::Duplicate, Duration::from_millis(4));
        m.record_outcome(SentOutcome::Invalid);
        m.record_retry();
        m.record_retry();
        m.record_sent(SentOutcome::Failed, Duration::from_secs(2));
        // The free function lands on the very same series.
        record_sent(SVC, SUBJ, SentOutcome::Ok, Duration::from_millis(20));
        record_publish_retry(SVC, SUBJ);
    });
    assert_eq!(value(&text, names::SENT_MESSAGES, &ep("ok")), 4.0);
    assert_eq!(value(&text, names::SENT_MESSAGES, &ep("duplicate")), 1.0);
    assert_eq!(value(&text, names::SENT_MESSAGES, &ep("invalid")), 1.0);
    assert_eq!(value(&text, names::SENT_MESSAGES, &ep("failed")), 1.0);
    assert_eq!(
        value(&text, names::PUBLISH_RETRIES, &[("service", SVC)]),
        3.0
    );
    // The invalid publish was never sent: 6 round trips, not 7.
    let count = format!("{}_count", names::OPERATION_DURATION);
    assert_eq!(value(&text, &count, &[("service", SVC)]), 6.0);
    let sum = format!("{}_sum", names::OPERATION_DURATION);
    let expected = 0.003 * 3.0 + 0.004 + 2.0 + 0.020;
    assert!((value(&text, &sum, &[("service", SVC)]) - expected).abs() < 1e-9);
}

#[test]
fn handles_register_every_outcome_at_zero() {
    let text = record_locally(|| {
        let _p = PublishMetrics::new(SVC, SUBJ);
        let _c = ConsumeMetrics::new(SVC, SUBJ);
    });
    for outcome in SentOutcome::ALL {
        assert_eq!(
            value(&text, names::SENT_MESSAGES, &ep(outcome.as_str())),
            0.0
        );
    }
    for outcome in ConsumedOutcome::ALL {
        assert_eq!(
            value(&text, names::CONSUMED_MESSAGES, &ep(outcome.as_str())),
            0.0
        );
    }
    for reason in DlqReason::ALL {
        assert_eq!(
            value(&text, names::DLQ_MESSAGES, &[("reason", reason.as_str())]),
            0.0
        );
    }
}

#[test]
fn consume_path_counts_ack_retry_dead_letter_and_duplicate() {
    let text = record_locally(|| {
        let m = ConsumeMetrics::new(SVC, SUBJ);
        // Two clean deliveries.
        m.record_consumed(ConsumedOutcome::Ack);
        m.record_consumed(ConsumedOutcome::Ack);
        // One message retried twice and then dead-lettered.
        m.record_consumed(ConsumedOutcome::Retry);
        m.record_consumed(ConsumedOutcome::Retry);
        m.record_consumed(ConsumedOutcome::DeadLetter);
        m.record_dlq(DlqReason::MaxDeliveries);
        // A redelivered duplicate.
        m.record_consumed(ConsumedOutcome::Duplicate);
        // A schema violation caught on consume.
        record_consumed(SVC, SUBJ, ConsumedOutcome::DeadLetter);
        record_dlq(SVC, SUBJ, DlqReason::SchemaInvalid);
        record_validation_failure("OrchestratorStep", Side::Consume);
        m.record_process_duration(Duration::from_millis(30));
        record_process_duration(SVC, SUBJ, Duration::from_millis(70));
        m.record_event_age(Duration::from_secs(45));
        record_event_age(SVC, SUBJ, Duration::from_secs(1));
    });
    assert_eq!(value(&text, names::CONSUMED_MESSAGES, &ep("ack")), 2.0);
    assert_eq!(value(&text, names::CONSUMED_MESSAGES, &ep("retry")), 2.0);
    assert_eq!(
        value(&text, names::CONSUMED_MESSAGES, &ep("dead_letter")),
        2.0
    );
    assert_eq!(
        value(&text, names::CONSUMED_MESSAGES, &ep("duplicate")),
        1.0
    );
    assert_eq!(
        value(&text, names::DLQ_MESSAGES, &[("reason", "max_deliveries")]),
        1.0
    );
    assert_eq!(
        value(&text, names::DLQ_MESSAGES, &[("reason", "schema_invalid")]),
        1.0
    );
    assert_eq!(
        value(
            &text,
            names::SCHEMA_VALIDATION_FAILURES,
            &[("schema", "OrchestratorStep"), ("side", "consume")]
        ),
        1.0
    );
    let process_count = format!("{}_count", names::PROCESS_DURATION);
    assert_eq!(value(&text, &process_count, &[("service", SVC)]), 2.0);
    // 30 ms and 70 ms: one at or below 0.05, both at or below 0.075.
    let bucket = format!("{}_bucket", names::PROCESS_DURATION);
    assert_eq!(value(&text, &bucket, &[("le", "0.05")]), 1.0);
    assert_eq!(value(&text, &bucket, &[("le", "0.075")]), 2.0);
    let age_bucket = format!("{}_bucket", names::EVENT_AGE);
    assert_eq!(value(&text, &age_bucket, &[("le", "30")]), 1.0);
    assert_eq!(value(&text, &age_bucket, &[("le", "60")]), 2.0);
    assert_eq!(value(&text, &age_bucket, &[("le", "+Inf")]), 2.0);
}

#[test]
fn dlq_reason_agrees_with_validation_error_reason() {
    let catalog = herald_contracts::Catalog::embedded().expect("embedded catalog");
    let cases: [(&str, &[u8]); 4] = [
        ("usage.metered.api_call", br#"{"event_id": "not-a-uuid"}"#),
        ("usage.metered.api_call", b"not json"),
        ("no.such.subject", b"{}"),
        (
            "usage.metered.api_call",
            br#"{"$schema": "https://contracts.platform.internal/schemas/UsageEvent/9.0.0.json"}"#,
        ),
    ];
    for (subject, bytes) in cases {
        let err = catalog
            .validate_bytes(subject, None, bytes)
            .expect_err("invalid on purpose");
        assert_eq!(DlqReason::from(&err).as_str(), err.reason(), "{err}");
    }
}

#[test]
fn validation_failures_are_split_by_schema_and_side() {
    let text = record_locally(|| {
        record_validation_failure("UsageEvent", Side::Publish);
        record_validation_failure("UsageEvent", Side::Publish);
        record_validation_failure("UsageEvent", Side::Consume);
        record_validation_failure("RealtimeMessage", Side::Publish);
    });
    let v = |schema, side| {
        value(
            &text,
            names::SCHEMA_VALIDATION_FAILURES,
            &[("schema", schema), ("side", side)],
        )
    };
    assert_eq!(v("UsageEvent", "publish"), 2.0);
    assert_eq!(v("UsageEvent", "consume"), 1.0);
    assert_eq!(v("RealtimeMessage", "publish"), 1.0);
    assert!(!has_series(
        &text,
        names::SCHEMA_VALIDATION_FAILURES,
        &[("schema", "RealtimeMessage"), ("side", "consume")]
    ));
}

#[test]
fn gauges_hold_the_last_value() {
    let text = record_locally(|| {
        set_consumer_lag("INGEST", "billing", 10, 2);
        set_consumer_lag("INGEST", "billing", 1500, 7);
        set_consumer_lag("USAGE", "analytics", 0, 0);
        set_connection_up(true);
        set_connection_up(false);
    });
    let billing = [("stream", "INGEST"), ("consumer", "billing")];
    assert_eq!(value(&text, names::CONSUMER_PENDING, &billing), 1500.0);
    assert_eq!(value(&text, names::CONSUMER_ACK_PENDING, &billing), 7.0);
    let analytics = [("stream", "USAGE"), ("consumer", "analytics")];
    assert_eq!(value(&text, names::CONSUMER_PENDING, &analytics), 0.0);
    assert_eq!(value(&text, names::CONNECTION_UP, &[]), 0.0);
    let text = record_locally(|| set_connection_up(true));
    assert_eq!(value(&text, names::CONNECTION_UP, &[]), 1.0);
}

#[test]
fn histograms_render_as_buckets_sum_and_count_not_summaries() {
    let text = record_locally(|| {
        let p = PublishMetrics::new(SVC, SUBJ);
        p.record_sent(SentOutcome::Ok, Duration::from_millis(1));
        let c = ConsumeMetrics::new(SVC, SUBJ);
        c.record_process_duration(Duration::from_millis(1));
        c.record_event_age(Duration::from_millis(1));
    });
    assert!(!text.contains("quantile="), "summary rendered:\n{text}");
    for (name, buckets) in [
        (names::OPERATION_DURATION, &DURATION_BUCKETS[..]),
        (names::PROCESS_DURATION, &DURATION_BUCKETS[..]),
        (names::EVENT_AGE, &EVENT_AGE_BUCKETS[..]),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} histogram\n")),
            "{name} is not typed histogram:\n{text}"
        );
        let bucket = format!("{name}_bucket");
        let les: Vec<String> = parse(&text)
            .into_iter()
            .filter(|s| s.name == bucket)
            .map(|s| s.labels["le"].clone())
            .collect();
        let mut expected: Vec<String> = buckets.iter().map(|b| b.to_string()).collect();
        expected.push("+Inf".to_owned());
        assert_eq!(les, expected, "{name} buckets");
        // One sample of 1 ms: every bucket holds it (all bounds >= 5 ms).
        for le in &les {
            assert_eq!(value(&text, &bucket, &[("le", le)]), 1.0);
        }
        assert_eq!(value(&text, &format!("{name}_count"), &[]), 1.0);
        assert!((value(&text, &format!("{name}_sum"), &[]) - 0.001).abs() < 1e-12);
    }
}

/// Records every metric herald has, so rendering and `promtool` see them all.
fn record_everything() {
    let p = PublishMetrics::new(SVC, SUBJ);
    p.record_sent(SentOutcome::Ok, Duration::from_millis(12));
    p.record_retry();
    let c = ConsumeMetrics::new("billing-service", SUBJ);
    c.record_consumed(ConsumedOutcome::Ack);
    c.record_process_duration(Duration::from_millis(80));
    c.record_event_age(Duration::from_millis(250));
    c.record_dlq(DlqReason::HandlerRejected);
    c.record_dlq(DlqReason::from(&herald_contracts::ValidationError::Decode(
        "x".into(),
    )));
    record_validation_failure("UsageEvent", Side::Publish);
    set_consumer_lag("INGEST", "billing", 3, 1);
    set_connection_up(true);
}

#[test]
fn every_metric_has_help_and_type() {
    let text = record_locally(record_everything);
    for name in names::ALL {
        let help = text
            .lines()
            .find(|l| l.starts_with(&format!("# HELP {name} ")))
            .unwrap_or_else(|| panic!("no HELP for {name}:\n{text}"));
        assert!(help.len() > format!("# HELP {name} ").len() + 10, "{help}");
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "no TYPE for {name}"
        );
    }
    for name in [
        names::SENT_MESSAGES,
        names::CONSUMED_MESSAGES,
        names::SCHEMA_VALIDATION_FAILURES,
        names::DLQ_MESSAGES,
        names::PUBLISH_RETRIES,
    ] {
        assert!(text.contains(&format!("# TYPE {name} counter\n")), "{name}");
    }
    for name in [
        names::CONSUMER_PENDING,
        names::CONSUMER_ACK_PENDING,
        names::CONNECTION_UP,
    ] {
        assert!(text.contains(&format!("# TYPE {name} gauge\n")), "{name}");
    }
}

#[test]
fn register_schemas_creates_zero_series_that_failures_increment() {
    let text = record_locally(|| {
        register_schemas(["UsageEvent", "AlertEvent"]);
        record_validation_failure("AlertEvent", Side::Consume);
        // Registering again (catalog reload) must not reset counts.
        register_schemas(["AlertEvent"]);
    });
    let v = |schema, side| {
        value(
            &text,
            names::SCHEMA_VALIDATION_FAILURES,
            &[("schema", schema), ("side", side)],
        )
    };
    assert_eq!(v("UsageEvent", "publish"), 0.0);
    assert_eq!(v("UsageEvent", "consume"), 0.0);
    assert_eq!(v("AlertEvent", "publish"), 0.0);
    assert_eq!(v("AlertEvent", "consume"), 1.0);
}

/// Runs `promtool check metrics` on `text`, failing loudly (never skipping)
/// when promtool is not installed.
fn assert_promtool_accepts(text: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("herald.prom");
    std::fs::write(&path, text).expect("write exposition");
    let file = std::fs::File::open(&path).expect("open exposition");
    let output = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::from(file))
        .output()
    {
        Ok(output) => output,
        Err(e) => panic!(
            "promtool is required for this test and could not be run ({e}); \
             install it with `apt-get install -y prometheus` (Debian) or put \
             promtool from https://prometheus.io/download/ on PATH"
        ),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim().is_empty() && stderr.trim().is_empty(),
        "promtool check metrics failed ({}):\nstdout: {stdout}\nstderr: {stderr}\nexposition:\n{text}",
        output.status
    );
}

#[test]
fn promtool_check_metrics_accepts_the_exposition() {
    let text = record_locally(record_everything);
    assert_promtool_accepts(&text);
}

#[test]
fn event_age_is_measured_from_ce_time() {
    let produced = chrono::DateTime::parse_from_rfc3339("2026-01-15T10:30:00Z").unwrap();
    let now: SystemTime = (produced + chrono::TimeDelta::milliseconds(1500))
        .with_timezone(&chrono::Utc)
        .into();
    assert_eq!(
        event_age("2026-01-15T10:30:00Z", now),
        Some(Duration::from_millis(1500))
    );
    // Offsets are honoured: same instant written in +02:00.
    assert_eq!(
        event_age("2026-01-15T12:30:00+02:00", now),
        Some(Duration::from_millis(1500))
    );
    // Producer clock ahead of ours: zero, not a panic or a wrap-around.
    assert_eq!(event_age("2026-01-15T10:31:00Z", now), Some(Duration::ZERO));
    assert_eq!(event_age("yesterday", now), None);
}

#[test]
fn install_is_idempotent_and_records_globally() {
    let first = install().expect("install");
    let second = install().expect("second install");
    record_sent(
        "svc-install-test",
        "usage.metered.api_call",
        SentOutcome::Failed,
        Duration::from_millis(5),
    );
    let labels = [
        ("service", "svc-install-test"),
        ("outcome", "failed"),
        ("messaging_destination_name", "usage.metered.api_call"),
    ];
    assert_eq!(value(&first.render(), names::SENT_MESSAGES, &labels), 1.0);
    assert_eq!(value(&second.render(), names::SENT_MESSAGES, &labels), 1.0);
    // HELP was registered with the global recorder by install().
    assert!(first
        .render()
        .contains(&format!("# HELP {} ", names::SENT_MESSAGES)));
}

#[test]
fn install_inside_a_local_recorder_still_describes_the_global_one() {
    let local = builder().unwrap().build_recorder();
    let handle = metrics::with_local_recorder(&local, || install().expect("install"));
    metrics::counter!(names::PUBLISH_RETRIES, "service" => "svc-describe-test").increment(1);
    let text = handle.render();
    assert!(text.contains(&format!("# HELP {} ", names::PUBLISH_RETRIES)));
    assert_eq!(
        value(
            &text,
            names::PUBLISH_RETRIES,
            &[("service", "svc-describe-test")]
        ),
        1.0
    );
}
