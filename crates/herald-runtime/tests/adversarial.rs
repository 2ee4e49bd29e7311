//! Regression tests for issue 13: what a hostile producer (raw protocol frames, a
//! foreign client) could do to herald's consumer, publisher and dead-letter queue.
//! Every test runs against its own nats-server.

mod common;

use std::collections::HashMap;
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
    Provisioner::new(client.clone(), TestCatalog::new().arc())
        .apply(false, false)
        .await
        .unwrap();
    let p = Publisher::new(
        client.clone(),
        TestCatalog::new().arc(),
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
        TestCatalog::new().arc(),
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
    // A timestamp with CR/LF in the payload cannot reach the ce-time header either.
    let mut ev = usage_event("33333333-0000-4000-8000-000000000002");
    ev["timestamp"] = "2024-01-15T10:30:00Z\r\nX: 1".into();
    let r = p
        .publish_json(SUBJECT, ev.to_string(), Publish::build())
        .await
        .unwrap();
    assert!(!r.duplicate);
    assert_eq!(stream_messages(&client, "USAGE").await, 1);
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
        TestCatalog::new().arc(),
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

#[allow(dead_code)]
async fn dlq_entries(client: &HeraldClient) -> Vec<herald_runtime::DlqEntry> {
    Dlq::new(client.clone())
        .list(&DlqFilter::default())
        .await
        .unwrap()
}

#[allow(dead_code)]
const _REASONS: [&str; 1] = [reason::DECODE_ERROR];
