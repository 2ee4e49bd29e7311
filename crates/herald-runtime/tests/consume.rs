//! Consumer outcomes, duplicates, DLQ and shutdown against real nats-server processes.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use herald_runtime::consumer::watch_max_deliveries;
use herald_runtime::dlq::reason;
use herald_runtime::{
    headers as h, Consumer, ConsumerConfig, DedupeStore, Delivery, Dlq, DlqFilter, HandlerError,
    HeraldClient, Provisioner, Publish, Publisher, PublisherConfig, Shutdown, StatsSnapshot,
};
use herald_test_server::NatsServer;

use common::*;

const SUBJECT: &str = "usage.metered.api_call";

async fn setup() -> (NatsServer, HeraldClient, Publisher) {
    let server = server().await;
    let client = connect(&server, "svc").await;
    Provisioner::new(client.clone(), contracts())
        .apply(false, false)
        .await
        .unwrap();
    let p = Publisher::new(
        client.clone(),
        contracts(),
        PublisherConfig::new("model-gateway"),
    );
    (server, client, p)
}

/// Publishes bare JSON the way a non-herald producer would (no headers at all).
async fn publish_bare(client: &HeraldClient, subject: &str, body: &[u8]) -> u64 {
    client
        .jetstream()
        .publish(subject.to_string(), body.to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence
}

fn fast(cfg: ConsumerConfig) -> ConsumerConfig {
    cfg.backoff(vec![Duration::from_millis(100)])
        .shutdown_grace(Duration::from_secs(5))
}

struct Running {
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<StatsSnapshot>,
}

impl Running {
    async fn stop(self) -> StatsSnapshot {
        self.shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("consumer stopped")
            .unwrap()
    }
}

fn spawn<F, Fut>(consumer: Consumer, handler: F) -> Running
where
    F: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = herald_runtime::HandlerResult> + Send + 'static,
{
    let shutdown = Shutdown::new();
    let s = shutdown.clone();
    let task = tokio::spawn(async move { consumer.run(handler, s).await.unwrap() });
    Running { shutdown, task }
}

/// Bound on every wait below: far above what a healthy run needs.
const LIMIT: Duration = Duration::from_secs(30);

async fn dlq_entries(client: &HeraldClient) -> Vec<herald_runtime::DlqEntry> {
    Dlq::new(client.clone())
        .list(&DlqFilter::default())
        .await
        .unwrap()
}

async fn wait_dlq(client: &HeraldClient, n: usize) -> Vec<herald_runtime::DlqEntry> {
    eventually(&format!("{n} DLQ entries"), LIMIT, || async {
        let e = dlq_entries(client).await;
        (e.len() >= n).then_some(e)
    })
    .await
}

/// The durable's ack-pending count as the server reports it now.
async fn ack_pending_now(client: &HeraldClient, stream: &str, durable: &str) -> usize {
    let s = client.jetstream().get_stream(stream).await.unwrap();
    s.consumer_info(durable).await.unwrap().num_ack_pending
}

/// Waits until the server has applied the acks already sent and the durable has
/// exactly `want` messages ack-pending (bounded well below the 30 s ack wait, so a
/// message left unacked cannot be redelivered and acked meanwhile).
async fn wait_ack_pending(client: &HeraldClient, durable: &str, want: usize) {
    let what = format!("{durable} to have exactly {want} messages ack-pending");
    eventually(&what, Duration::from_secs(10), || async {
        (ack_pending_now(client, "USAGE", durable).await == want).then_some(())
    })
    .await;
}

#[tokio::test]
async fn each_outcome_ends_where_it_should() {
    let (_s, client, p) = setup().await;
    // 1 ok (herald-published), 2 bare valid (same event twice: duplicate), 3 bare invalid,
    // 4 undecodable, 5 unknown schema version, 6 rejected by the handler.
    p.publish(SUBJECT, &usage_event("ok-1"), Publish::build())
        .await
        .unwrap();
    let bare = serde_json::to_vec(&usage_event("bare-1")).unwrap();
    publish_bare(&client, SUBJECT, &bare).await;
    publish_bare(&client, SUBJECT, &bare).await;
    let mut invalid = usage_event("bad-1");
    invalid.as_object_mut().unwrap().remove("tenant_id");
    let invalid_seq = publish_bare(&client, SUBJECT, &serde_json::to_vec(&invalid).unwrap()).await;
    publish_bare(&client, SUBJECT, b"{not json").await;
    let mut hm = HeaderMap::new();
    // A version of the subject's schema major that the catalog does not have.
    hm.insert(
        h::CE_DATASCHEMA,
        "https://contracts.platform.internal/schemas/UsageEvent/1.9.9.json",
    );
    client
        .jetstream()
        .publish_with_headers(
            SUBJECT,
            hm,
            serde_json::to_vec(&usage_event("v9-1")).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    p.publish(
        SUBJECT,
        &usage_event("reject-me"),
        Publish::build().correlation_id("c-rej"),
    )
    .await
    .unwrap();

    type Seen = Vec<(String, String, Option<String>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let log = seen.clone();
    let consumer = Consumer::new(
        client.clone(),
        contracts(),
        fast(ConsumerConfig::new(
            "billing-service",
            "usage",
            "usage.metered.>",
        )),
    )
    .unwrap();
    let running = spawn(consumer, move |d: Delivery| {
        let log = log.clone();
        async move {
            let id = d.value["event_id"].as_str().unwrap_or("").to_string();
            log.lock()
                .unwrap()
                .push((id.clone(), d.schema_id.clone(), d.correlation_id.clone()));
            if id == event_id("reject-me") {
                return Err(HandlerError::Reject("tenant closed".into()));
            }
            Ok(())
        }
    });
    let entries = wait_dlq(&client, 4).await;
    wait_until("3 handled", LIMIT, || seen.lock().unwrap().len() >= 3).await;
    let stats = running.stop().await;

    let handled = seen.lock().unwrap().clone();
    let ids: Vec<&str> = handled.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        ids,
        [event_id("ok-1"), event_id("bare-1"), event_id("reject-me")]
    );
    // Bare JSON was validated through the subject mapping.
    assert_eq!(handled[1].1, USAGE_SCHEMA);
    assert_eq!(handled[2].2.as_deref(), Some("c-rej"));
    assert_eq!(stats.acked, 2);
    assert_eq!(stats.duplicates, 1);
    assert_eq!(stats.dead_lettered, 4);

    let by_reason: HashMap<&str, &herald_runtime::DlqEntry> =
        entries.iter().map(|e| (e.reason.as_str(), e)).collect();
    assert_eq!(entries.len(), 4);
    let inv = by_reason[reason::SCHEMA_INVALID];
    assert_eq!(inv.subject, SUBJECT);
    assert_eq!(inv.stream, "USAGE");
    assert_eq!(inv.stream_seq, invalid_seq);
    assert_eq!(inv.consumer, "billing-service--usage");
    assert_eq!(inv.deliveries, 1);
    assert!(inv.error.contains("tenant_id"), "{}", inv.error);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&inv.payload).unwrap(),
        invalid
    );
    for name in [
        "Herald-Dlq-Reason",
        "Herald-Dlq-Error",
        "Herald-Dlq-Consumer",
        "Herald-Dlq-Stream",
        "Herald-Dlq-Seq",
        "Herald-Dlq-Deliveries",
        "Herald-Dlq-Time",
    ] {
        assert!(inv.headers.get(name).is_some(), "missing {name}");
    }
    assert_eq!(
        by_reason[reason::DECODE_ERROR].payload.as_ref(),
        b"{not json"
    );
    let unknown = by_reason[reason::UNKNOWN_SCHEMA];
    assert!(
        unknown.error.contains("UsageEvent@1.9.9"),
        "{}",
        unknown.error
    );
    let rej = by_reason[reason::HANDLER_REJECTED];
    assert_eq!(rej.error, "tenant closed");
    // The original herald headers travel with the dead letter.
    assert_eq!(
        rej.headers.get(h::CE_CORRELATIONID).unwrap().as_str(),
        "c-rej"
    );
    wait_ack_pending(&client, "billing-service--usage", 0).await;
}

#[tokio::test]
async fn poison_event_goes_to_dlq_after_max_deliver_naked_with_the_configured_backoff() {
    let (_s, client, p) = setup().await;
    p.publish(SUBJECT, &usage_event("poison"), Publish::build())
        .await
        .unwrap();
    let deliveries: Arc<Mutex<Vec<i64>>> = Arc::default();
    let t = deliveries.clone();
    let schedule = vec![Duration::from_millis(300), Duration::from_millis(600)];
    let config = ConsumerConfig::new("billing-service", "usage", "usage.metered.>")
        .max_deliver(3)
        .backoff(schedule.clone());
    // The NAK delay for each failed delivery comes from the schedule (the last entry
    // repeats). How long the server then waits is its business, not timed here.
    assert_eq!(config.delay_for(1), schedule[0]);
    assert_eq!(config.delay_for(2), schedule[1]);
    assert_eq!(config.delay_for(3), schedule[1]);
    let consumer = Consumer::new(client.clone(), contracts(), config).unwrap();
    let running = spawn(consumer, move |d: Delivery| {
        let t = t.clone();
        async move {
            t.lock().unwrap().push(d.delivered);
            Err(HandlerError::Retry("database down".into()))
        }
    });
    let entries = wait_dlq(&client, 1).await;
    let stats = running.stop().await;
    let e = &entries[0];
    assert_eq!(e.reason, reason::MAX_DELIVERIES);
    assert_eq!(e.deliveries, 3);
    assert_eq!(e.error, "database down");
    assert_eq!(e.consumer, "billing-service--usage");
    assert_eq!(*deliveries.lock().unwrap(), [1, 2, 3]);
    assert_eq!(stats.retried, 2);
    assert_eq!(stats.dead_lettered, 1);
    wait_ack_pending(&client, "billing-service--usage", 0).await;
}

#[tokio::test]
async fn panicking_handler_is_retried_and_the_consumer_keeps_running() {
    let (_s, client, p) = setup().await;
    p.publish(SUBJECT, &usage_event("boom"), Publish::build())
        .await
        .unwrap();
    p.publish(SUBJECT, &usage_event("fine"), Publish::build())
        .await
        .unwrap();
    let done: Arc<Mutex<Vec<String>>> = Arc::default();
    let d2 = done.clone();
    let consumer = Consumer::new(
        client.clone(),
        contracts(),
        fast(ConsumerConfig::new(
            "billing-service",
            "usage",
            "usage.metered.>",
        )),
    )
    .unwrap();
    let running = spawn(consumer, move |d: Delivery| {
        let done = d2.clone();
        async move {
            let id = d.value["event_id"].as_str().unwrap().to_string();
            if id == event_id("boom") && d.delivered == 1 {
                panic!("handler bug");
            }
            done.lock().unwrap().push(id);
            Ok(())
        }
    });
    wait_until("both handled", LIMIT, || done.lock().unwrap().len() == 2).await;
    let stats = running.stop().await;
    let mut got = done.lock().unwrap().clone();
    got.sort();
    let mut want = [event_id("boom"), event_id("fine")];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(stats.panics, 1);
    assert_eq!(stats.retried, 1);
    assert_eq!(stats.acked, 2);
    assert!(dlq_entries(&client).await.is_empty());
}

#[tokio::test]
async fn shutdown_leaves_only_released_work_pending_and_a_restart_finishes_it() {
    let (_s, client, p) = setup().await;
    for i in 0..200 {
        p.publish(
            SUBJECT,
            &usage_event(&format!("s-{i:03}")),
            Publish::build(),
        )
        .await
        .unwrap();
    }
    let done: Arc<Mutex<Vec<String>>> = Arc::default();
    let make = |done: Arc<Mutex<Vec<String>>>| {
        move |d: Delivery| {
            let done = done.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                done.lock()
                    .unwrap()
                    .push(d.value["event_id"].as_str().unwrap().to_string());
                Ok(())
            }
        }
    };
    // An ack wait far beyond the test's bounded waits: a message left unacked at
    // shutdown would hold the second run up past them.
    let cfg = || {
        fast(ConsumerConfig::new(
            "billing-service",
            "usage",
            "usage.metered.>",
        ))
        .concurrency(8)
        .ack_wait(Duration::from_secs(120))
    };
    let consumer = Consumer::new(client.clone(), contracts(), cfg()).unwrap();
    let running = spawn(consumer, make(done.clone()));
    wait_until("some handled", LIMIT, || done.lock().unwrap().len() >= 30).await;
    let first = running.stop().await;
    assert!(first.acked >= 30 && first.acked < 200, "{first:?}");
    // Every handler that started finished and was acked within the grace period; the
    // fetched-but-unstarted messages were NAKed (released). JetStream keeps exactly
    // those in its pending set, queued for immediate redelivery, so nothing waits
    // for the 120 s ack_wait.
    wait_ack_pending(&client, "billing-service--usage", first.released as usize).await;

    let consumer = Consumer::new(client.clone(), contracts(), cfg()).unwrap();
    let running = spawn(consumer, make(done.clone()));
    wait_until("all handled", LIMIT, || {
        let d = done.lock().unwrap();
        let set: std::collections::HashSet<&String> = d.iter().collect();
        set.len() == 200
    })
    .await;
    running.stop().await;
    wait_ack_pending(&client, "billing-service--usage", 0).await;
    assert_eq!(done.lock().unwrap().len(), 200, "no event handled twice");
}

#[tokio::test]
async fn key_value_duplicate_store_survives_a_consumer_restart() {
    let (_s, client, _p) = setup().await;
    let events: Vec<Vec<u8>> = (0..20)
        .map(|i| serde_json::to_vec(&usage_event(&format!("kv-{i}"))).unwrap())
        .collect();
    for e in &events {
        publish_bare(&client, SUBJECT, e).await;
    }
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let run_once = |calls: Arc<std::sync::atomic::AtomicUsize>| {
        let client = client.clone();
        async move {
            let store =
                DedupeStore::key_value(&client, "herald-dedupe-billing", Duration::from_secs(3600))
                    .await
                    .unwrap();
            let consumer = Consumer::new(
                client.clone(),
                contracts(),
                fast(ConsumerConfig::new(
                    "billing-service",
                    "usage",
                    "usage.metered.>",
                ))
                .dedupe(store),
            )
            .unwrap();
            let c = calls.clone();
            spawn(consumer, move |_d: Delivery| {
                let c = c.clone();
                async move {
                    c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok(())
                }
            })
        }
    };
    let r = run_once(calls.clone()).await;
    wait_until("first pass", LIMIT, || {
        calls.load(std::sync::atomic::Ordering::SeqCst) == 20
    })
    .await;
    r.stop().await;
    // The same events arrive again (a producer without idempotency keys re-sent them).
    for e in &events {
        publish_bare(&client, SUBJECT, e).await;
    }
    let r = run_once(calls.clone()).await;
    let c2 = calls.clone();
    eventually("the second pass to drain", LIMIT, || async {
        let s = client.jetstream().get_stream("USAGE").await.unwrap();
        let info = s.consumer_info("billing-service--usage").await.unwrap();
        (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
    })
    .await;
    let stats = r.stop().await;
    assert_eq!(
        c2.load(std::sync::atomic::Ordering::SeqCst),
        20,
        "no handler call the second time"
    );
    assert_eq!(stats.duplicates, 20);
}

#[tokio::test]
async fn pub_sub_every_service_gets_every_event() {
    let (_s, client, p) = setup().await;
    for i in 0..10 {
        p.publish(SUBJECT, &usage_event(&format!("ps-{i}")), Publish::build())
            .await
            .unwrap();
    }
    let mut runs = Vec::new();
    let mut logs = Vec::new();
    for service in ["billing-service", "analytics-service"] {
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let l = log.clone();
        let consumer = Consumer::new(
            client.clone(),
            contracts(),
            fast(ConsumerConfig::new(service, "usage", "usage.metered.>")),
        )
        .unwrap();
        runs.push(spawn(consumer, move |d: Delivery| {
            let l = l.clone();
            async move {
                l.lock()
                    .unwrap()
                    .push(d.value["event_id"].as_str().unwrap().to_string());
                Ok(())
            }
        }));
        logs.push(log);
    }
    for log in &logs {
        wait_until("all delivered", LIMIT, || log.lock().unwrap().len() == 10).await;
    }
    for r in runs {
        r.stop().await;
    }
    for log in logs {
        let mut got = log.lock().unwrap().clone();
        got.sort();
        let mut want: Vec<String> = (0..10).map(|i| event_id(&format!("ps-{i}"))).collect();
        want.sort();
        assert_eq!(got, want);
    }
}

#[tokio::test]
async fn dlq_replay_round_trip_survives_a_crash_between_republish_and_removal() {
    let (_s, client, p) = setup().await;
    for id in ["r-1", "r-2"] {
        p.publish(SUBJECT, &usage_event(id), Publish::build())
            .await
            .unwrap();
    }
    // The handler rejects everything: both land in the DLQ.
    let consumer = Consumer::new(
        client.clone(),
        contracts(),
        fast(ConsumerConfig::new(
            "billing-service",
            "usage",
            "usage.metered.>",
        )),
    )
    .unwrap();
    let running = spawn(consumer, |_d: Delivery| async {
        Err(HandlerError::Reject("not yet".into()))
    });
    let entries = wait_dlq(&client, 2).await;
    running.stop().await;
    let dlq = Dlq::new(client.clone());
    let filtered = dlq
        .list(&DlqFilter {
            reason: Some("handler_rejected".into()),
            consumer: Some("billing-service--usage".into()),
            subject: Some("usage.metered.*".into()),
        })
        .await
        .unwrap();
    assert_eq!(filtered.len(), 2);

    // Crash simulation: entry 1 republished, but the process died before removing it.
    let first = &entries[0];
    let replays = herald_runtime::REPLAY_STREAM;
    let before = stream_count(&client, replays).await;
    dlq.republish(first, &Dlq::replay_id(first)).await.unwrap();
    assert_eq!(stream_count(&client, replays).await, before + 1);
    // Replay everything: entry 1's republish is recognised as a duplicate, nothing is lost.
    let replayed = dlq.replay_all(&DlqFilter::default(), false).await.unwrap();
    assert_eq!(replayed.len(), 2);
    assert_eq!(stream_count(&client, replays).await, before + 2);
    assert!(dlq_entries(&client).await.is_empty());

    // Now a healthy consumer processes the replayed events (new message ids).
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let g = got.clone();
    let consumer = Consumer::new(
        client.clone(),
        contracts(),
        fast(ConsumerConfig::new(
            "billing-service",
            "usage",
            "usage.metered.>",
        )),
    )
    .unwrap();
    let running = spawn(consumer, move |d: Delivery| {
        let g = g.clone();
        async move {
            g.lock().unwrap().push(format!(
                "{}|{}",
                d.value["event_id"].as_str().unwrap(),
                d.header(h::MSG_ID).unwrap_or("")
            ));
            Ok(())
        }
    });
    wait_until("replayed handled", LIMIT, || got.lock().unwrap().len() == 2).await;
    running.stop().await;
    let mut got = got.lock().unwrap().clone();
    got.sort();
    let mut want = [
        format!("{}|{}", event_id("r-1"), Dlq::replay_id(&entries[0])),
        format!("{}|{}", event_id("r-2"), Dlq::replay_id(&entries[1])),
    ];
    want.sort();
    assert_eq!(got, want);
}

async fn stream_count(client: &HeraldClient, stream: &str) -> u64 {
    let mut s = client.jetstream().get_stream(stream).await.unwrap();
    s.info().await.unwrap().state.messages
}

/// Starts the max-deliveries backstop on USAGE and waits until the server has its
/// subscription (the advisory is fire-and-forget).
async fn start_backstop(
    server: &NatsServer,
    client: &HeraldClient,
) -> (
    Shutdown,
    tokio::task::JoinHandle<Result<u64, herald_runtime::consumer::ConsumeError>>,
) {
    let shutdown = Shutdown::new();
    let watcher = tokio::spawn(watch_max_deliveries(
        client.clone(),
        "USAGE".into(),
        shutdown.clone(),
    ));
    eventually("the advisory watcher's subscription", LIMIT, || async {
        server_subscriptions(server)
            .await
            .iter()
            .any(|s| s == "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.USAGE.*")
            .then_some(())
    })
    .await;
    (shutdown, watcher)
}

/// A consumer that receives but never acks (it "died"): max_deliver 2, ack_wait 1s. Pulls
/// until `done` says so or 8 rounds have passed (the server sends the advisory when it
/// would deliver a third time).
async fn abandon<F, Fut>(client: &HeraldClient, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    use async_nats::jetstream::consumer::pull;
    use futures::StreamExt;
    let stream = client.jetstream().get_stream("USAGE").await.unwrap();
    let c = stream
        .create_consumer(pull::Config {
            durable_name: Some("dead-service--usage".into()),
            ack_wait: Duration::from_secs(1),
            max_deliver: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    for _ in 0..8 {
        let mut b = c
            .batch()
            .max_messages(1)
            .expires(Duration::from_millis(1500))
            .messages()
            .await
            .unwrap();
        while let Some(m) = b.next().await {
            let _ = m; // received, never acked
        }
        if done().await {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn max_deliveries_advisory_backstop_copies_abandoned_messages_to_the_dlq() {
    let (server, client, p) = setup().await;
    let (shutdown, watcher) = start_backstop(&server, &client).await;
    let r = p
        .publish(SUBJECT, &usage_event("abandoned"), Publish::build())
        .await
        .unwrap();
    let found = abandon(&client, || async { !dlq_entries(&client).await.is_empty() }).await;
    shutdown.trigger();
    let _ = tokio::time::timeout(Duration::from_secs(5), watcher).await;
    assert!(found, "advisory copied the message to the DLQ");
    let e = dlq_entries(&client).await;
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].reason, reason::MAX_DELIVERIES);
    assert_eq!(e[0].consumer, "dead-service--usage");
    assert_eq!(e[0].stream_seq, r.sequence);
    assert_eq!(e[0].deliveries, 2);
}

#[tokio::test]
async fn the_backstop_retries_a_dead_letter_until_the_dlq_is_back() {
    // The advisory comes once. A DLQ that is electing a leader (here: gone) when it comes
    // must not lose the event.
    let handle = herald_runtime::metrics::install().unwrap();
    let (server, client, p) = setup().await;
    let (shutdown, watcher) = start_backstop(&server, &client).await;
    client.jetstream().delete_stream("DLQ").await.unwrap();
    let r = p
        .publish(
            SUBJECT,
            &usage_event("abandoned-while-dlq-down"),
            Publish::build(),
        )
        .await
        .unwrap();
    let failed = || {
        handle.render().lines().any(|l| {
            l.starts_with("herald_dlq_write_failures_total{") && l.contains("dead-service--usage")
        })
    };
    assert!(
        abandon(&client, || async { failed() }).await,
        "the backstop's first write never failed"
    );
    Provisioner::new(client.clone(), contracts())
        .apply(false, false)
        .await
        .unwrap();
    let e = eventually("the backstop's retried dead letter", LIMIT, || async {
        let e = dlq_entries(&client).await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    shutdown.trigger();
    let copied = tokio::time::timeout(Duration::from_secs(5), watcher)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(copied, 1);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].reason, reason::MAX_DELIVERIES);
    assert_eq!(e[0].stream_seq, r.sequence);
}
