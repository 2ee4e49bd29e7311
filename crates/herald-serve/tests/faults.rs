//! nats-server killed (SIGKILL) and restarted under HTTP load: every 202 is stored
//! exactly once; every request without a 202 got a 5xx or a transport error, and
//! retrying it with the same Idempotency-Key stores no duplicate.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::StreamExt;

const EVENTS: u32 = 400;
const CLIENTS: u32 = 16;

#[derive(Debug, Default)]
struct Tally {
    accepted_first_try: usize,
    duplicates_on_first_try: usize,
    server_errors: BTreeMap<u16, usize>,
    transport_errors: usize,
    client_errors: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_and_restart_under_http_load_stores_every_event_exactly_once() {
    let mut nats = nats().await;
    provision(&nats.url()).await;
    let serve = serve(&nats.url(), None).await;
    let addr = serve.local_addr();
    let accepted = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let path = "/v1/events/usage.metered.api_call";

    // Load: CLIENTS tasks, each posting its share once; failures are kept for retry.
    let mut tasks = Vec::new();
    for t in 0..CLIENTS {
        let accepted = accepted.clone();
        let failed = failed.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut retry = Vec::new();
            for n in (t..EVENTS).step_by(CLIENTS as usize) {
                let key = format!("fault-{n}");
                let r = send(
                    addr,
                    "POST",
                    path,
                    &[
                        ("content-type", "application/json"),
                        ("idempotency-key", &key),
                    ],
                    usage(n).to_string().into_bytes(),
                )
                .await;
                match r {
                    Ok(r) if r.status == 202 => {
                        tally.accepted_first_try += 1;
                        if r.json()["duplicate"] == true {
                            tally.duplicates_on_first_try += 1;
                        }
                        accepted.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) if r.status >= 500 => {
                        *tally.server_errors.entry(r.status).or_default() += 1;
                        failed.fetch_add(1, Ordering::SeqCst);
                        retry.push(n);
                    }
                    Ok(r) => {
                        tally.client_errors.push(format!(
                            "{}: {}",
                            r.status,
                            String::from_utf8_lossy(&r.body)
                        ));
                        retry.push(n);
                    }
                    Err(_) => {
                        tally.transport_errors += 1;
                        failed.fetch_add(1, Ordering::SeqCst);
                        retry.push(n);
                    }
                }
            }
            (tally, retry)
        }));
    }

    // Kill the server once a quarter of the events are in, restart it once some
    // requests have failed (or the load is over).
    wait_until(
        || accepted.load(Ordering::SeqCst) >= (EVENTS / 4) as usize,
        "a quarter accepted",
    )
    .await;
    nats.kill_9().unwrap();
    wait_until(
        || {
            failed.load(Ordering::SeqCst) >= 5
                || accepted.load(Ordering::SeqCst) + failed.load(Ordering::SeqCst)
                    >= EVENTS as usize
        },
        "requests failing while NATS is down",
    )
    .await;
    nats.start_again().await.unwrap();

    let mut tally = Tally::default();
    let mut retry = Vec::new();
    for t in tasks {
        let (t, r) = t.await.unwrap();
        tally.accepted_first_try += t.accepted_first_try;
        tally.duplicates_on_first_try += t.duplicates_on_first_try;
        tally.transport_errors += t.transport_errors;
        tally.client_errors.extend(t.client_errors);
        for (k, v) in t.server_errors {
            *tally.server_errors.entry(k).or_default() += v;
        }
        retry.extend(r);
    }
    assert!(
        tally.client_errors.is_empty(),
        "4xx under faults: {:?}",
        tally.client_errors
    );

    // The client retries every failed request with the same key until it gets a 202.
    let mut retried_duplicates = 0;
    for n in &retry {
        let key = format!("fault-{n}");
        let mut done = false;
        for _ in 0..100 {
            match send(
                addr,
                "POST",
                path,
                &[
                    ("content-type", "application/json"),
                    ("idempotency-key", &key),
                ],
                usage(*n).to_string().into_bytes(),
            )
            .await
            {
                Ok(r) if r.status == 202 => {
                    if r.json()["duplicate"] == true {
                        retried_duplicates += 1;
                    }
                    done = true;
                    break;
                }
                Ok(r) => assert!(
                    r.status >= 500,
                    "retry of {key} got {}: {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                ),
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(done, "{key} never accepted after the restart");
    }

    // Every event stored exactly once, under its key.
    let c = client(&nats.url()).await;
    assert_eq!(stored(&c, "USAGE").await, EVENTS as u64);
    let stream = c.jetstream().get_stream("USAGE").await.unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    let mut msgs = consumer.messages().await.unwrap();
    let mut keys = BTreeSet::new();
    for _ in 0..EVENTS {
        let m = tokio::time::timeout(Duration::from_secs(10), msgs.next())
            .await
            .expect("stored message")
            .unwrap()
            .unwrap();
        let key = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.as_str().to_string())
            .unwrap();
        assert!(keys.insert(key.clone()), "{key} stored twice");
    }
    let expected: BTreeSet<String> = (0..EVENTS).map(|n| format!("fault-{n}")).collect();
    assert_eq!(keys, expected);
    eprintln!(
        "faults: {EVENTS} events, {CLIENTS} clients; 202 first try {}, 5xx {:?}, transport errors {}, retried {} ({} of them reported duplicate: stored before the failure), stored {}",
        tally.accepted_first_try, tally.server_errors, tally.transport_errors, retry.len(), retried_duplicates, keys.len()
    );
    serve.shutdown().await;
}

async fn wait_until(cond: impl Fn() -> bool, what: &str) {
    for _ in 0..600 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}
