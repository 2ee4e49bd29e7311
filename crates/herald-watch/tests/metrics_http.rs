//! The `/metrics` endpoint over real HTTP: status, content type, values
//! recorded through the runtime's facade, merging into a service's router,
//! a taken address, and `promtool check metrics` on a real scrape.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use herald_runtime::metrics::{self, names, ConsumedOutcome, SentOutcome};
use herald_watch::metrics_http::{router, serve, ServeError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn http_get(addr: SocketAddr, path: &str) -> (String, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read response");
    let (head, body) = response.split_once("\r\n\r\n").expect("head/body");
    let status = head.lines().next().unwrap().to_owned();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// The value of the one sample of `name` whose line carries every label.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().expect("value"))
        .collect();
    assert_eq!(matching.len(), 1, "{name} {labels:?} in:\n{text}");
    matching[0]
}

#[tokio::test]
async fn serve_exposes_metrics_over_http() {
    let server = serve("127.0.0.1:0".parse().unwrap()).await.expect("serve");
    assert_ne!(server.local_addr().port(), 0);
    for _ in 0..2 {
        metrics::record_consumed(
            "svc-http-test",
            "realtime.push.chat_message",
            ConsumedOutcome::Retry,
        );
    }
    let (status, head, body) = http_get(server.local_addr(), "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    assert_eq!(
        value(
            &body,
            names::CONSUMED_MESSAGES,
            &[("service", "svc-http-test"), ("outcome", "retry")]
        ),
        2.0
    );
    let (status, _, _) = http_get(server.local_addr(), "/nope").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    server.abort();
}

#[tokio::test]
async fn router_can_be_merged_into_a_service_app() {
    let handle = metrics::install().expect("install");
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(router(handle));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move { axum::serve(listener, app).await });
    metrics::set_consumer_lag("ROUTER_TEST", "router-consumer", 42, 3);
    let (status, _, body) = http_get(addr, "/healthz").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, "ok");
    let (status, _, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let labels = [("stream", "ROUTER_TEST"), ("consumer", "router-consumer")];
    assert_eq!(value(&body, names::CONSUMER_PENDING, &labels), 42.0);
    assert_eq!(value(&body, names::CONSUMER_ACK_PENDING, &labels), 3.0);
    task.abort();
}

#[tokio::test]
async fn serve_reports_an_address_in_use() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    match serve(addr).await {
        Err(ServeError::Bind { addr: a, .. }) => assert_eq!(a, addr),
        other => panic!("expected a bind error, got {other:?}"),
    }
}

#[tokio::test]
async fn promtool_check_metrics_accepts_a_real_scrape() {
    let server = serve("127.0.0.1:0".parse().unwrap()).await.expect("serve");
    // This test records what it checks: it must not depend on another test's samples.
    let (svc, subject) = ("svc-scrape", "usage.metered.api_call");
    metrics::record_sent(svc, subject, SentOutcome::Ok, Duration::from_millis(3));
    metrics::record_consumed(svc, subject, ConsumedOutcome::Ack);
    metrics::record_process_duration(svc, subject, Duration::from_millis(2));
    metrics::record_publish_retry(svc, subject);
    metrics::register_schemas(["UsageEvent"]);
    let (status, _, body) = http_get(server.local_addr(), "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    for name in [
        names::SENT_MESSAGES,
        names::CONSUMED_MESSAGES,
        names::OPERATION_DURATION,
        names::PROCESS_DURATION,
        names::PUBLISH_RETRIES,
        names::SCHEMA_VALIDATION_FAILURES,
    ] {
        assert!(
            body.contains(&format!("# HELP {name} ")),
            "{name} missing:\n{body}"
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("scrape.prom");
    std::fs::write(&path, &body).unwrap();
    let output = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::from(std::fs::File::open(&path).unwrap()))
        .output()
        .unwrap_or_else(|e| panic!("promtool is required for this test and could not be run ({e}); install it: apt-get install prometheus"));
    assert!(
        output.status.success(),
        "promtool check metrics failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    server.abort();
}
