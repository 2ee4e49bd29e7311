//! Regression tests for issue 13: what a hostile producer (raw protocol frames, a
//! foreign client) could do to herald's consumer, publisher and dead-letter queue.
//! Every test runs against its own nats-server.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_runtime::dlq::reason;
use herald_runtime::{
    Consumer, ConsumerConfig, DedupeStore, Delivery, Dlq, DlqFilter, HandlerError, HeraldClient,
    Provisioner, Publish, PublishErrorKind, Publisher, PublisherConfig, Shutdown, StatsSnapshot,
};
use herald_test_server::NatsServer;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

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

/// A client speaking the NATS protocol by hand: no library between the test and the wire.
struct RawClient {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl RawClient {
    async fn connect(server: &NatsServer) -> RawClient {
        let url = server.url();
        let addr = url.trim_start_matches("nats://");
        let stream = TcpStream::connect(addr).await.expect("raw connect");
        let (r, w) = stream.into_split();
        let mut c = RawClient {
            reader: BufReader::new(r),
            writer: w,
        };
        let info = c.line().await;
        assert!(info.starts_with("INFO "), "{info}");
        c.writer
            .write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"protocol\":1}\r\n")
            .await
            .unwrap();
        c.ping().await;
        c
    }

    async fn line(&mut self) -> String {
        let mut s = String::new();
        tokio::time::timeout(Duration::from_secs(10), self.reader.read_line(&mut s))
            .await
            .expect("server answered")
            .unwrap();
        s
    }

    /// PING and wait for PONG: everything sent before has been processed by the server.
    async fn ping(&mut self) {
        self.writer.write_all(b"PING\r\n").await.unwrap();
        loop {
            let l = self.line().await;
            assert!(!l.starts_with("-ERR"), "server refused: {l}");
            if l.starts_with("PONG") {
                return;
            }
        }
    }

    /// HPUB with a header block written byte for byte (`NATS/1.0\r\n` + `lines` + `\r\n`).
    async fn hpub(&mut self, subject: &str, header_lines: &[u8], payload: &[u8]) {
        let mut hdr = b"NATS/1.0\r\n".to_vec();
        hdr.extend_from_slice(header_lines);
        hdr.extend_from_slice(b"\r\n");
        let mut frame = format!(
            "HPUB {subject} {} {}\r\n",
            hdr.len(),
            hdr.len() + payload.len()
        )
        .into_bytes();
        frame.extend_from_slice(&hdr);
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        self.writer.write_all(&frame).await.unwrap();
        self.ping().await;
    }
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

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..600 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn stream_messages(client: &HeraldClient, stream: &str) -> u64 {
    let mut s = client.jetstream().get_stream(stream).await.unwrap();
    s.info().await.unwrap().state.messages
}

/// Handler that counts calls per event id and always succeeds.
fn counting(
    seen: Arc<Mutex<HashMap<String, u32>>>,
) -> impl Fn(Delivery) -> futures::future::Ready<herald_runtime::HandlerResult> + Send + Sync + 'static
{
    move |d: Delivery| {
        let id = d.value["event_id"].as_str().unwrap_or("").to_string();
        *seen.lock().unwrap().entry(id).or_default() += 1;
        futures::future::ready(Ok(()))
    }
}

fn fast(cfg: ConsumerConfig) -> ConsumerConfig {
    cfg.backoff(vec![Duration::from_millis(100)])
        .shutdown_grace(Duration::from_secs(5))
}

// ---- 1. An empty idempotency key is not a key ----

#[tokio::test]
async fn empty_msg_id_from_a_raw_producer_is_not_a_duplicate_key() {
    let (server, client, _p) = setup().await;
    let mut raw = RawClient::connect(&server).await;
    let ids = [
        "11111111-0000-4000-8000-000000000001",
        "11111111-0000-4000-8000-000000000002",
        "11111111-0000-4000-8000-000000000003",
    ];
    for (i, id) in ids.iter().enumerate() {
        // Blank, empty and whitespace keys: none of them identifies an event.
        let key: &[u8] = [
            b"Nats-Msg-Id: \r\n" as &[u8],
            b"Nats-Msg-Id:\r\n",
            b"Nats-Msg-Id:   \r\n",
        ][i];
        raw.hpub(SUBJECT, key, usage_event(id).to_string().as_bytes())
            .await;
    }
    assert_eq!(stream_messages(&client, "USAGE").await, 3);
    let store = DedupeStore::key_value(&client, "dedupe-empty", Duration::from_secs(3600))
        .await
        .unwrap();
    let consumer = Consumer::new(
        client.clone(),
        contracts(),
        fast(ConsumerConfig::new("billing", "usage", "usage.metered.>")).dedupe(store),
    )
    .unwrap();
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let run = spawn(consumer, counting(seen.clone()));
    wait_until("three handler calls", || seen.lock().unwrap().len() == 3).await;
    let stats = run.stop().await;
    assert_eq!(stats.acked, 3, "{stats:?}");
    assert_eq!(stats.duplicates, 0, "{stats:?}");
    let seen = seen.lock().unwrap();
    for id in ids {
        assert_eq!(seen.get(id), Some(&1), "{id}: {seen:?}");
    }
}

#[tokio::test]
async fn publish_refuses_a_blank_idempotency_key_and_sends_nothing() {
    let (_server, client, p) = setup().await;
    for key in ["", "   ", "\t"] {
        let err = p
            .publish_json(
                SUBJECT,
                usage_event("22222222-0000-4000-8000-000000000001").to_string(),
                Publish::build().message_id(key),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), PublishErrorKind::InvalidHeader, "{err}");
        assert_eq!(
            err.to_string(),
            "idempotency key (Nats-Msg-Id) is empty; give a non-blank value or leave it out"
        );
    }
    assert_eq!(stream_messages(&client, "USAGE").await, 0);
}

// ---- 12. Header values ----

#[tokio::test]
async fn control_characters_in_header_values_are_a_typed_error_never_a_panic() {
    let (_server, client, p) = setup().await;
    let body = usage_event("33333333-0000-4000-8000-000000000001").to_string();
    let cases: Vec<(Publish, &str)> = vec![
        (
            Publish::build().correlation_id("a\r\nX: 1"),
            "correlation id contains a control character (CR); CR, LF and NUL are not allowed in header values",
        ),
        (
            Publish::build().message_id("k\nX: 1"),
            "idempotency key (Nats-Msg-Id) contains a control character (LF); CR, LF and NUL are not allowed in header values",
        ),
        (
            Publish::build().traceparent("00-\0"),
            "traceparent contains a control character (NUL); CR, LF and NUL are not allowed in header values",
        ),
    ];
    for (opts, expected) in cases {
        let err = p
            .publish_json(SUBJECT, body.clone(), opts)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), PublishErrorKind::InvalidHeader);
        assert_eq!(err.to_string(), expected);
    }
    assert_eq!(stream_messages(&client, "USAGE").await, 0);
    // A timestamp with CR/LF in the payload cannot reach the ce-time header either:
    // the shipped schema's date-time format refuses it before any header is built.
    let mut ev = usage_event("33333333-0000-4000-8000-000000000002");
    ev["timestamp"] = "2024-01-15T10:30:00Z\r\nX: 1".into();
    let err = p
        .publish_json(SUBJECT, ev.to_string(), Publish::build())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), PublishErrorKind::Invalid, "{err}");
    assert!(err.to_string().contains("/timestamp"), "{err}");
    assert_eq!(stream_messages(&client, "USAGE").await, 0);
}

// ---- 5. The duplicate key is the event's identity ----

#[tokio::test]
async fn same_event_under_other_msg_ids_or_upper_case_uuid_is_handled_once() {
    let (_server, client, p) = setup().await;
    let id = "44444444-aaaa-4bbb-8ccc-00000000000a";
    p.publish_json(
        SUBJECT,
        usage_event(id).to_string(),
        Publish::build().message_id("first"),
    )
    .await
    .unwrap();
    p.publish_json(
        SUBJECT,
        usage_event(id).to_string(),
        Publish::build().message_id("second"),
    )
    .await
    .unwrap();
    p.publish_json(
        SUBJECT,
        usage_event(&id.to_uppercase()).to_string(),
        Publish::build(),
    )
    .await
    .unwrap();
    let other = "44444444-aaaa-4bbb-8ccc-00000000000b";
    assert_eq!(stream_messages(&client, "USAGE").await, 3);
    let store = DedupeStore::key_value(&client, "dedupe-identity", Duration::from_secs(3600))
        .await
        .unwrap();
    let consumer = Consumer::new(
        client.clone(),
        contracts(),
        fast(ConsumerConfig::new("billing", "usage", "usage.metered.>")).dedupe(store),
    )
    .unwrap();
    let calls = Arc::new(Mutex::new(Vec::<String>::new()));
    let c2 = calls.clone();
    let live = consumer.stats();
    let run = spawn(consumer, move |d: Delivery| {
        c2.lock().unwrap().push(d.key.clone().unwrap_or_default());
        futures::future::ready(Ok::<(), HandlerError>(()))
    });
    wait_until("one call and two duplicates", || {
        calls.lock().unwrap().len() == 1 && live.snapshot().duplicates == 2
    })
    .await;
    p.publish_json(
        SUBJECT,
        usage_event(other).to_string(),
        Publish::build().message_id("fourth"),
    )
    .await
    .unwrap();
    wait_until("the second event handled", || {
        calls.lock().unwrap().len() == 2
    })
    .await;
    let stats = run.stop().await;
    assert_eq!(stats.acked, 2, "{stats:?}");
    assert_eq!(stats.duplicates, 2, "{stats:?}");
    assert_eq!(
        *calls.lock().unwrap(),
        vec![id.to_string(), other.to_string()]
    );
}

async fn dlq_entries(client: &HeraldClient) -> Vec<herald_runtime::DlqEntry> {
    Dlq::new(client.clone())
        .list(&DlqFilter::default())
        .await
        .unwrap()
}

async fn wait_dlq(client: &HeraldClient, n: usize) -> Vec<herald_runtime::DlqEntry> {
    for _ in 0..600 {
        let e = dlq_entries(client).await;
        if e.len() >= n {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("DLQ never reached {n} entries");
}

// ---- 2. A malformed header block does not poison a consumer ----

#[tokio::test]
async fn undecodable_header_blocks_are_dead_lettered_raw_and_neighbours_are_handled() {
    let (server, client, p) = setup().await;
    let before = "55555555-0000-4000-8000-000000000001";
    let after = "55555555-0000-4000-8000-000000000002";
    p.publish_json(SUBJECT, usage_event(before).to_string(), Publish::build())
        .await
        .unwrap();
    let mut raw = RawClient::connect(&server).await;
    // A header line without ':' and a value that is not UTF-8: the server stores both.
    let no_colon: &[u8] = b"Nats-Msg-Id: poison-1\r\nThis line has no colon\r\n";
    let not_utf8: &[u8] = b"Nats-Msg-Id: poison-2\r\nX-Bad: \xff\xfe\r\n";
    raw.hpub(
        SUBJECT,
        no_colon,
        usage_event("55555555-0000-4000-8000-0000000000f1")
            .to_string()
            .as_bytes(),
    )
    .await;
    raw.hpub(
        SUBJECT,
        not_utf8,
        usage_event("55555555-0000-4000-8000-0000000000f2")
            .to_string()
            .as_bytes(),
    )
    .await;
    p.publish_json(SUBJECT, usage_event(after).to_string(), Publish::build())
        .await
        .unwrap();
    assert_eq!(stream_messages(&client, "USAGE").await, 4);

    // The consumer gets its own connection: the poison drops it, not the test's.
    let consumer_client = connect(&server, "billing").await;
    let consumer = Consumer::new(
        consumer_client,
        contracts(),
        fast(ConsumerConfig::new("billing", "usage", "usage.metered.>"))
            .ack_wait(Duration::from_secs(2))
            .max_deliver(3),
    )
    .unwrap();
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let run = spawn(consumer, counting(seen.clone()));
    wait_until("both neighbours handled", || {
        seen.lock().unwrap().len() == 2
    })
    .await;
    let entries = wait_dlq(&client, 2).await;
    let stats = run.stop().await;
    assert_eq!(stats.acked, 2, "{stats:?}");
    assert_eq!(stats.dead_lettered, 2, "{stats:?}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.get(before), Some(&1));
    assert_eq!(seen.get(after), Some(&1));
    assert_eq!(entries.len(), 2, "{entries:?}");
    let mut blocks = Vec::new();
    for e in &entries {
        assert_eq!(e.reason, reason::DECODE_ERROR, "{e:?}");
        assert_eq!(e.consumer, "billing--usage");
        assert!(
            e.error
                .contains("the NATS client cannot decode this message"),
            "{}",
            e.error
        );
        let raw = e
            .header(herald_runtime::poison::RAW_HEADERS)
            .expect("raw headers kept");
        use base64::Engine;
        let block = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .unwrap();
        blocks.push(block);
        // The payload is kept byte for byte.
        let v: serde_json::Value = serde_json::from_slice(&e.payload).unwrap();
        assert!(
            v["event_id"].as_str().unwrap().ends_with("f1")
                || v["event_id"].as_str().unwrap().ends_with("f2")
        );
    }
    blocks.sort();
    assert_eq!(
        blocks[0],
        [b"NATS/1.0\r\n" as &[u8], no_colon, b"\r\n"].concat()
    );
    assert_eq!(
        blocks[1],
        [b"NATS/1.0\r\n" as &[u8], not_utf8, b"\r\n"].concat()
    );
    // Nothing is left pending: the poison was terminated, the neighbours acked.
    let s = client.jetstream().get_stream("USAGE").await.unwrap();
    let info = s
        .clone()
        .consumer_info("billing--usage")
        .await
        .unwrap()
        .clone();
    assert_eq!(info.num_ack_pending, 0, "{info:?}");
    assert_eq!(info.num_pending, 0, "{info:?}");
}

// ---- 3. Dead-lettering never fails silently ----

#[tokio::test]
async fn an_event_too_large_to_copy_is_dead_lettered_by_reference() {
    let (server, client, _p) = setup().await;
    let max = client.nats().server_info().max_payload;
    assert_eq!(max, 1024 * 1024, "the test assumes the default max_payload");
    // Exactly max_payload bytes, no headers: stored, invalid (no tenant_id), and its
    // DLQ copy with the Herald-Dlq-* headers cannot fit.
    let mut invalid = usage_event("66666666-0000-4000-8000-000000000001");
    invalid.as_object_mut().unwrap().remove("tenant_id");
    let mut body = invalid.to_string().into_bytes();
    body.pop();
    body.extend_from_slice(b",\"pad\":\"");
    body.resize(max - 2, b'x');
    body.extend_from_slice(b"\"}");
    assert_eq!(body.len(), max);
    let seq = client
        .jetstream()
        .publish(SUBJECT, body.clone().into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence;
    let consumer = Consumer::new(
        connect(&server, "billing").await,
        contracts(),
        fast(ConsumerConfig::new("billing", "usage", "usage.metered.>")),
    )
    .unwrap();
    let run = spawn(consumer, |_d: Delivery| async { Ok(()) });
    let entries = wait_dlq(&client, 1).await;
    let stats = run.stop().await;
    assert_eq!(stats.dead_lettered, 1, "{stats:?}");
    let e = &entries[0];
    assert_eq!(e.reason, reason::SCHEMA_INVALID);
    assert_eq!(
        e.header(herald_runtime::dlq::DLQ_PAYLOAD),
        Some("reference")
    );
    assert_eq!((e.stream.as_str(), e.stream_seq), ("USAGE", seq));
    assert!(e.payload.is_empty());
    // The original is still where the entry points.
    let s = client.jetstream().get_stream("USAGE").await.unwrap();
    let original = s.get_raw_message(seq).await.unwrap();
    assert_eq!(original.payload.as_ref(), body.as_slice());
}

/// `herald_dlq_write_failures_total` of `service` (0 before its first failure).
fn dlq_write_failures(handle: &herald_runtime::metrics::MetricsHandle, service: &str) -> f64 {
    handle
        .render()
        .lines()
        .find(|l| l.starts_with("herald_dlq_write_failures_total{") && l.contains(service))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_failed_dead_letter_is_counted_and_naked_never_acked() {
    let handle = herald_runtime::metrics::install().unwrap();
    let (server, client, p) = setup().await;
    client.jetstream().delete_stream("DLQ").await.unwrap();
    let mut bad = usage_event("77777777-0000-4000-8000-000000000001");
    bad.as_object_mut().unwrap().remove("tenant_id");
    client
        .jetstream()
        .publish(SUBJECT, bad.to_string().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let _ = p;
    let consumer = Consumer::new(
        connect(&server, "dlq-failure-svc").await,
        contracts(),
        fast(ConsumerConfig::new(
            "dlq-failure-svc",
            "usage",
            "usage.metered.>",
        )),
    )
    .unwrap();
    let live = consumer.stats();
    let run = spawn(consumer, |_d: Delivery| async { Ok(()) });
    wait_until("two failed dead-letter attempts", || {
        live.snapshot().retried >= 2
    })
    .await;
    assert_eq!(live.snapshot().dead_lettered, 0);
    let n = dlq_write_failures(&handle, "dlq-failure-svc");
    assert!(n >= 2.0, "{}", handle.render());
    // The event was NAKed, not terminated: once the DLQ is back it is dead-lettered.
    Provisioner::new(client.clone(), contracts())
        .apply(false, false)
        .await
        .unwrap();
    let entries = wait_dlq(&client, 1).await;
    let stats = run.stop().await;
    assert_eq!(stats.dead_lettered, 1, "{stats:?}");
    assert_eq!(entries[0].reason, reason::SCHEMA_INVALID);
}

#[tokio::test]
async fn a_final_delivery_holds_its_dead_letter_until_the_dlq_is_back() {
    // After the final delivery the server stops redelivering, so a NAK there would lose
    // the event. The consumer holds the delivery (progress acks, past `ack_wait`) and
    // retries the write until the DLQ is back.
    let handle = herald_runtime::metrics::install().unwrap();
    let (server, client, p) = setup().await;
    client.jetstream().delete_stream("DLQ").await.unwrap();
    let id = "77777777-0000-4000-8000-000000000002";
    p.publish_json(SUBJECT, usage_event(id).to_string(), Publish::build())
        .await
        .unwrap();
    let consumer = Consumer::new(
        connect(&server, "final-delivery-svc").await,
        contracts(),
        fast(ConsumerConfig::new(
            "final-delivery-svc",
            "usage",
            "usage.metered.>",
        ))
        .max_deliver(2)
        .ack_wait(Duration::from_secs(1)),
    )
    .unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let seen = calls.clone();
    let run = spawn(consumer, move |_d: Delivery| {
        seen.fetch_add(1, Ordering::SeqCst);
        async { Err(HandlerError::Retry("downstream is down".into())) }
    });
    let failures = || dlq_write_failures(&handle, "final-delivery-svc");
    wait_until("the final delivery's dead letter to fail", || {
        calls.load(Ordering::SeqCst) == 2 && failures() >= 1.0
    })
    .await;
    // Three times ack_wait with the DLQ still gone: no redelivery, no NAK into the void.
    tokio::time::sleep(Duration::from_secs(3)).await;
    Provisioner::new(client.clone(), contracts())
        .apply(false, false)
        .await
        .unwrap();
    let entries = wait_dlq(&client, 1).await;
    let stats = run.stop().await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].reason, reason::MAX_DELIVERIES);
    assert_eq!(entries[0].error, "downstream is down");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the handler ran again");
    assert_eq!(stats.dead_lettered, 1, "{stats:?}");
    assert!(failures() >= 3.0, "each failed attempt is counted");
}

// ---- 4 and 6. Replay ids are unique for ever; a replay is delivered once ----

async fn reject_into_dlq(client: &HeraldClient, server: &NatsServer, ids: &[&str], p: &Publisher) {
    for id in ids {
        p.publish_json(SUBJECT, usage_event(id).to_string(), Publish::build())
            .await
            .unwrap();
    }
    let consumer = Consumer::new(
        connect(server, "analytics").await,
        contracts(),
        fast(ConsumerConfig::new("analytics", "usage", "usage.metered.>")),
    )
    .unwrap();
    let run = spawn(consumer, |_d: Delivery| async {
        Err(HandlerError::Reject("not today".into()))
    });
    wait_dlq(client, ids.len()).await;
    run.stop().await;
}

#[tokio::test]
async fn replay_ids_survive_a_recreated_dlq_and_cannot_be_predicted() {
    let (server, client, p) = setup().await;
    reject_into_dlq(
        &client,
        &server,
        &["88888888-0000-4000-8000-000000000001"],
        &p,
    )
    .await;
    let dlq = Dlq::new(client.clone());
    let first = dlq.replay_all(&DlqFilter::default(), false).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(first[0].message_id.starts_with("replay:"), "{first:?}");
    assert_ne!(first[0].message_id, format!("replay:{}", first[0].dlq_seq));
    // A producer pre-publishes the old predictable id for the next entry.
    let mut raw = RawClient::connect(&server).await;
    let hdr = format!("Nats-Msg-Id: replay:{}\r\n", first[0].dlq_seq);
    raw.hpub(
        SUBJECT,
        hdr.as_bytes(),
        usage_event("88888888-0000-4000-8000-0000000000ff")
            .to_string()
            .as_bytes(),
    )
    .await;
    // The DLQ stream is recreated: its sequences restart at 1.
    client.jetstream().delete_stream("DLQ").await.unwrap();
    Provisioner::new(client.clone(), contracts())
        .apply(false, false)
        .await
        .unwrap();
    reject_into_dlq(
        &client,
        &server,
        &["88888888-0000-4000-8000-000000000002"],
        &p,
    )
    .await;
    // analytics rejects everything it sees: event 2, the first replay and the forgery.
    let entries = wait_dlq(&client, 3).await;
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert!(
        seqs.contains(&first[0].dlq_seq),
        "the sequence was reused: {seqs:?}"
    );
    let before = stream_messages(&client, herald_runtime::REPLAY_STREAM).await;
    let second = dlq.replay_all(&DlqFilter::default(), false).await.unwrap();
    assert_eq!(second.len(), 3, "{second:?}");
    for r in &second {
        assert_ne!(r.message_id, first[0].message_id);
        assert!(r.new_seq > 0);
    }
    assert_eq!(
        stream_messages(&client, herald_runtime::REPLAY_STREAM).await,
        before + 3,
        "every replay was stored"
    );
    assert!(dlq_entries(&client).await.is_empty());
}

#[tokio::test]
async fn concurrent_replays_deliver_once_and_the_loser_names_the_entry() {
    let (server, client, p) = setup().await;
    let ids = [
        "99999999-0000-4000-8000-000000000001",
        "99999999-0000-4000-8000-000000000002",
        "99999999-0000-4000-8000-000000000003",
    ];
    reject_into_dlq(&client, &server, &ids, &p).await;
    let before = stream_messages(&client, herald_runtime::REPLAY_STREAM).await;
    let a = Dlq::new(client.clone());
    let b = Dlq::new(connect(&server, "second-operator").await);
    let f = DlqFilter::default();
    let (ra, rb) = tokio::join!(a.replay_all(&f, false), b.replay_all(&f, false));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(ra.len() + rb.len() >= 3, "{ra:?} {rb:?}");
    // Each entry was stored once however the runs interleaved.
    assert_eq!(
        stream_messages(&client, herald_runtime::REPLAY_STREAM).await,
        before + 3
    );
    assert!(dlq_entries(&client).await.is_empty());
    // Replaying an entry that is gone names it.
    let err = a
        .replay(ra.first().or(rb.first()).unwrap().dlq_seq, false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, herald_runtime::dlq::DlqError::NotFound(_)),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "no dead letter with sequence {}",
            ra.first().or(rb.first()).unwrap().dlq_seq
        )
    );
}

#[tokio::test]
async fn the_loser_of_a_replay_race_gets_already_replayed() {
    let (server, client, p) = setup().await;
    reject_into_dlq(
        &client,
        &server,
        &["aaaaaaaa-0000-4000-8000-000000000001"],
        &p,
    )
    .await;
    let dlq = Dlq::new(client.clone());
    let e = dlq_entries(&client).await.remove(0);
    // The other run republished and removed the entry between our read and our removal.
    let id = Dlq::replay_id(&e);
    let first = dlq.republish(&e, &id).await.unwrap();
    dlq.remove(e.seq).await.unwrap();
    let again = dlq.republish(&e, &id).await.unwrap();
    assert_eq!(
        again, first,
        "the second republish is a duplicate of the first"
    );
    let err = dlq.remove(e.seq).await.unwrap_err();
    assert!(
        matches!(err, herald_runtime::dlq::DlqError::NotFound(s) if s == e.seq),
        "{err}"
    );
    assert_eq!(
        herald_runtime::dlq::DlqError::AlreadyReplayed(e.seq).to_string(),
        format!("dead letter {} was already replayed by another run (its republish was recognised as a duplicate; nothing was sent twice)", e.seq)
    );
}

/// A counting handler that rejects the first `rejections` deliveries, then succeeds.
fn rejecting_first(
    calls: Arc<Mutex<u32>>,
    rejections: u32,
) -> impl Fn(Delivery) -> futures::future::Ready<herald_runtime::HandlerResult> + Send + Sync + 'static
{
    move |_d: Delivery| {
        let n = {
            let mut n = calls.lock().unwrap();
            *n += 1;
            *n
        };
        futures::future::ready(if n <= rejections {
            Err(HandlerError::Reject(format!("rejection {n}")))
        } else {
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_consumer_started_while_the_replay_stream_is_gone_receives_replays_once_it_is_back() {
    // A consumer that (re)starts while HERALD_REPLAY is missing or electing a leader runs
    // on, and picks up its replays once the stream can be reached, without a restart.
    let (server, client, p) = setup().await;
    let id = "bbbbbbbb-0000-4000-8000-000000000009";
    reject_into_dlq(&client, &server, &[id], &p).await;
    client
        .jetstream()
        .delete_stream(herald_runtime::REPLAY_STREAM)
        .await
        .unwrap();
    let calls = Arc::new(Mutex::new(HashMap::new()));
    let analytics = Consumer::new(
        connect(&server, "analytics").await,
        contracts(),
        fast(ConsumerConfig::new("analytics", "usage", "usage.metered.>")),
    )
    .unwrap();
    let run = spawn(analytics, counting(calls.clone()));
    // Past its first attempts to reach the replay stream.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Provisioner::new(client.clone(), contracts())
        .apply(false, false)
        .await
        .unwrap();
    let replayed = Dlq::new(client.clone())
        .replay_all(&DlqFilter::default(), false)
        .await
        .unwrap();
    assert_eq!(replayed.len(), 1);
    wait_until("analytics handled the replay", || {
        calls.lock().unwrap().len() == 1
    })
    .await;
    let stats = run.stop().await;
    assert_eq!(calls.lock().unwrap().get(id), Some(&1), "{calls:?}");
    assert_eq!(stats.acked, 1, "{stats:?}");
}

#[tokio::test]
async fn a_replay_reaches_only_the_consumer_that_dead_lettered_it() {
    let (server, client, p) = setup().await;
    let id = "bbbbbbbb-0000-4000-8000-000000000001";
    p.publish_json(SUBJECT, usage_event(id).to_string(), Publish::build())
        .await
        .unwrap();
    // billing keeps no duplicate store that outlives it: only routing can keep the
    // replay away from it.
    let billing_calls = Arc::new(Mutex::new(HashMap::new()));
    let billing = Consumer::new(
        connect(&server, "billing").await,
        contracts(),
        fast(ConsumerConfig::new("billing", "usage", "usage.metered.>"))
            .dedupe(DedupeStore::memory(16)),
    )
    .unwrap();
    let billing_live = billing.stats();
    let billing_run = spawn(billing, counting(billing_calls.clone()));
    wait_until("billing handled it", || {
        billing_calls.lock().unwrap().len() == 1
    })
    .await;
    // analytics rejects it twice: once live, once on the first replay.
    let analytics_calls = Arc::new(Mutex::new(0u32));
    let analytics = Consumer::new(
        connect(&server, "analytics").await,
        contracts(),
        fast(ConsumerConfig::new("analytics", "usage", "usage.metered.>")),
    )
    .unwrap();
    let analytics_run = spawn(analytics, rejecting_first(analytics_calls.clone(), 2));
    wait_dlq(&client, 1).await;
    let usage_before = stream_messages(&client, "USAGE").await;
    let dlq = Dlq::new(client.clone());
    let replayed = dlq.replay_all(&DlqFilter::default(), false).await.unwrap();
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].subject, SUBJECT);
    // The replay waits on analytics' replay subject, never on the original one.
    let stored = client
        .jetstream()
        .get_stream(herald_runtime::REPLAY_STREAM)
        .await
        .unwrap()
        .get_raw_message(replayed[0].new_seq)
        .await
        .unwrap();
    assert_eq!(stored.subject.as_str(), "herald.replay.analytics--usage");
    assert_eq!(
        stored
            .headers
            .get("Herald-Replay-Subject")
            .map(|v| v.as_str()),
        Some(SUBJECT)
    );
    assert_eq!(stream_messages(&client, "USAGE").await, usage_before);
    // analytics rejects the replay: dead-lettered again, naming the replay stream.
    wait_until("analytics saw the replay", || {
        *analytics_calls.lock().unwrap() == 2
    })
    .await;
    let mut again = Vec::new();
    for _ in 0..600 {
        again = dlq_entries(&client).await;
        if again
            .iter()
            .any(|e| e.stream == herald_runtime::REPLAY_STREAM)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].stream, herald_runtime::REPLAY_STREAM);
    assert_eq!(again[0].subject, SUBJECT);
    assert_eq!(again[0].consumer, "analytics--usage");
    // That entry verifies against the replay stream and replays to analytics again.
    let second = dlq.replay_all(&DlqFilter::default(), false).await.unwrap();
    assert_eq!(second.len(), 1, "{second:?}");
    wait_until("analytics handled the second replay", || {
        *analytics_calls.lock().unwrap() == 3
    })
    .await;
    let billing_stats = billing_run.stop().await;
    let analytics_stats = analytics_run.stop().await;
    assert_eq!(
        billing_calls.lock().unwrap().get(id),
        Some(&1),
        "billing charged twice"
    );
    assert_eq!(
        billing_live.snapshot().duplicates,
        0,
        "billing saw a replay"
    );
    assert_eq!(billing_stats.acked, 1);
    assert_eq!(analytics_stats.acked, 1);
    assert_eq!(analytics_stats.dead_lettered, 2);
    assert!(dlq_entries(&client).await.is_empty());
    assert_eq!(stream_messages(&client, "USAGE").await, usage_before);
}

// ---- 8. A dead letter cannot be forged into an event ----

#[tokio::test]
async fn forged_dead_letters_are_refused_by_replay() {
    let (_server, client, p) = setup().await;
    let real = p
        .publish_json(
            SUBJECT,
            usage_event("cccccccc-0000-4000-8000-000000000001").to_string(),
            Publish::build(),
        )
        .await
        .unwrap();
    let forge = |subject: &'static str, payload: String, seq: u64, consumer: &'static str| {
        let js = client.jetstream().clone();
        async move {
            herald_runtime::dlq::dead_letter(
                &js,
                herald_runtime::dlq::DeadLetter {
                    subject,
                    payload: payload.into_bytes().into(),
                    headers: None,
                    reason: reason::HANDLER_REJECTED,
                    error: "forged",
                    consumer,
                    stream: "USAGE",
                    stream_seq: seq,
                    deliveries: 1,
                },
            )
            .await
            .unwrap()
        }
    };
    let made_up = usage_event("cccccccc-0000-4000-8000-0000000000ff").to_string();
    // A payload that was never stored, at a real sequence.
    let a = forge(SUBJECT, made_up.clone(), real.sequence, "billing--usage").await;
    // A sequence that does not exist.
    let b = forge(SUBJECT, made_up.clone(), 999, "billing--usage").await;
    // Another subject than the original's.
    let c = forge(
        "usage.metered.model_inference",
        usage_event("cccccccc-0000-4000-8000-000000000001").to_string(),
        real.sequence,
        "analytics--usage",
    )
    .await;
    let before = stream_messages(&client, "USAGE").await;
    let report = Dlq::new(client.clone())
        .replay_report(&DlqFilter::default(), false)
        .await
        .unwrap();
    assert!(report.replayed.is_empty(), "{report:?}");
    let refused: HashMap<u64, String> = report.refused.into_iter().collect();
    assert_eq!(refused.len(), 3);
    assert_eq!(
        refused[&a],
        format!(
            "dead letter {a} refused: its payload differs from USAGE sequence {}",
            real.sequence
        )
    );
    assert_eq!(refused[&b], format!("dead letter {b} refused: USAGE holds no message at sequence 999 (never stored, or expired by the stream's retention)"));
    assert_eq!(refused[&c], format!("dead letter {c} refused: USAGE sequence {} is on usage.metered.api_call, not usage.metered.model_inference", real.sequence));
    assert_eq!(
        stream_messages(&client, "USAGE").await,
        before,
        "nothing republished"
    );
    assert_eq!(dlq_entries(&client).await.len(), 3, "refused entries stay");
}

// ---- 12. Received header values are made safe for child processes ----

#[tokio::test]
async fn received_nul_bytes_never_reach_a_child_process_environment() {
    let (server, client, _p) = setup().await;
    let mut raw = RawClient::connect(&server).await;
    let id = "dddddddd-0000-4000-8000-000000000001";
    raw.hpub(
        SUBJECT,
        b"Nats-Msg-Id: k\x00ey\r\nce-correlationid: c\x00rr\r\n",
        usage_event(id).to_string().as_bytes(),
    )
    .await;
    let consumer = Consumer::new(
        client.clone(),
        contracts(),
        fast(ConsumerConfig::new("exec-svc", "usage", "usage.metered.>")),
    )
    .unwrap();
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let o2 = outcomes.clone();
    let run = spawn(consumer, move |d: Delivery| {
        // What `herald consume --exec` does with these fields: environment variables.
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg("test -n \"$HERALD_MESSAGE_ID\"")
            .env("HERALD_MESSAGE_ID", d.key.clone().unwrap_or_default())
            .env(
                "HERALD_CORRELATION_ID",
                d.correlation_id.clone().unwrap_or_default(),
            )
            .status();
        o2.lock().unwrap().push((
            d.delivered,
            d.key.clone(),
            d.correlation_id.clone(),
            status.map(|s| s.success()).map_err(|e| e.to_string()),
        ));
        futures::future::ready(Ok::<(), HandlerError>(()))
    });
    wait_until("handled", || !outcomes.lock().unwrap().is_empty()).await;
    let stats = run.stop().await;
    assert_eq!(stats.acked, 1, "{stats:?}");
    let got = outcomes.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![(1, Some(id.to_string()), None, Ok(true))],
        "first delivery, the identity as key, the NUL correlation id dropped, the child started"
    );
}

// ---- 16. Validation on receive uses the reader's rules ----

#[tokio::test]
async fn an_event_pinning_an_older_minor_is_checked_against_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    // The catalog's USAGE stream reserves 10 GiB: do not depend on the free disk.
    let conf = dir.path().join("js.conf");
    std::fs::write(&conf, "jetstream { max_file_store: 1TB }\n").unwrap();
    let server = NatsServer::start_with_args(&["-c", conf.to_str().unwrap()])
        .await
        .expect("nats-server must be installed (apt-get install nats-server)");
    let client = connect(&server, "reader").await;
    let catalog: Arc<dyn herald_runtime::Contracts> =
        Arc::new(herald_contracts::Catalog::embedded().unwrap());
    Provisioner::new(client.clone(), catalog.clone())
        .apply(false, false)
        .await
        .unwrap();
    let base = "https://contracts.platform.internal/schemas/UsageEvent";
    let mut ev = serde_json::json!({
        "event_id": "eeeeeeee-0000-4000-8000-000000000001",
        "timestamp": "2024-01-15T10:30:00Z",
        "service_name": "model-gateway",
        "user_id": "123e4567-e89b-12d3-a456-426614174000",
        "tenant_id": "789e0123-e89b-12d3-a456-426614174000",
        "event_type": "api_call",
        "resource_type": "requests",
        "quantity": 1,
        "unit": "requests",
        "region": "NOT A REGION"
    });
    // Pinned through $schema, then through ce-dataschema (a producer's choice either way).
    ev["$schema"] = format!("{base}/1.0.0.json").into();
    client
        .jetstream()
        .publish("usage.metered.api_call", ev.to_string().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let mut ev2 = ev.clone();
    ev2.as_object_mut().unwrap().remove("$schema");
    ev2["event_id"] = "eeeeeeee-0000-4000-8000-000000000002".into();
    let mut hm = async_nats::HeaderMap::new();
    hm.insert("ce-dataschema", format!("{base}/1.0.0.json").as_str());
    client
        .jetstream()
        .publish_with_headers("usage.metered.api_call", hm, ev2.to_string().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let spec = catalog
        .consumers()
        .into_iter()
        .find(|c| c.durable_name() == "billing-service--usage")
        .unwrap();
    let consumer = Consumer::new(
        client.clone(),
        catalog.clone(),
        fast(ConsumerConfig::from_def(&spec)),
    )
    .unwrap();
    let called = Arc::new(Mutex::new(0u32));
    let c2 = called.clone();
    let run = spawn(consumer, move |_d: Delivery| {
        *c2.lock().unwrap() += 1;
        futures::future::ready(Ok::<(), HandlerError>(()))
    });
    let entries = wait_dlq(&client, 2).await;
    let stats = run.stop().await;
    assert_eq!(*called.lock().unwrap(), 0, "billing's handler ran");
    assert_eq!(stats.dead_lettered, 2, "{stats:?}");
    for e in entries {
        assert_eq!(e.reason, reason::SCHEMA_INVALID, "{e:?}");
        assert!(e.error.contains("/region"), "{}", e.error);
    }
}
