//! `POST /v1/events/...` against a real nats-server: what is stored, with which
//! headers, and what every refusal looks like.

mod common;

use common::*;
use herald_serve::access::digest;
use herald_serve::{ServeError, TokenFile};
use serde_json::json;

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test]
async fn raw_binary_and_structured_modes_store_once_with_their_headers() {
    let nats = nats().await;
    provision(&nats.url()).await;
    let c = client(&nats.url()).await;
    let serve = serve(&nats.url(), None).await;
    let addr = serve.local_addr();
    let path = "/v1/events/usage.metered.api_call";

    // Raw JSON with an Idempotency-Key, traceparent and correlation id.
    let hdrs = [
        ("idempotency-key", "key-1"),
        ("traceparent", TP),
        ("x-correlation-id", "corr-1"),
    ];
    let r = post_json(addr, path, &hdrs, &usage(1)).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(
        (
            v["stream"].as_str(),
            v["seq"].as_u64(),
            v["duplicate"].as_bool()
        ),
        (Some("USAGE"), Some(1), Some(false))
    );
    let m = headers_at(&c, "USAGE", 1).await;
    assert_eq!(h(&m, "Nats-Msg-Id"), "key-1");
    assert_eq!(h(&m, "traceparent"), TP);
    assert_eq!(h(&m, "ce-correlationid"), "corr-1");
    assert_eq!(h(&m, "ce-type"), "usage.metered.api_call");

    // The same key again: JetStream's duplicate, nothing new stored.
    let r = post_json(addr, path, &hdrs, &usage(1)).await;
    assert_eq!(r.status, 202);
    assert_eq!(
        (r.json()["seq"].as_u64(), r.json()["duplicate"].as_bool()),
        (Some(1), Some(true))
    );

    // Binary mode, no key: the identity field is the message id; ce-source is carried.
    let bin = [
        ("ce-specversion", "1.0"),
        ("ce-id", "x"),
        ("ce-source", "model-gateway"),
        ("ce-type", "usage.metered.api_call"),
        ("ce-correlationid", "corr-2"),
    ];
    let r = post_json(addr, path, &bin, &usage(2)).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let seq = r.json()["seq"].as_u64().unwrap();
    let m = headers_at(&c, "USAGE", seq).await;
    assert_eq!(h(&m, "Nats-Msg-Id"), usage(2)["event_id"].as_str().unwrap());
    assert_eq!(h(&m, "ce-source"), "model-gateway");
    assert_eq!(h(&m, "ce-correlationid"), "corr-2");

    // Structured mode.
    let ce = json!({
        "specversion": "1.0", "id": "ce-3", "source": "model-gateway",
        "type": "usage.metered.api_call", "datacontenttype": "application/json",
        "correlationid": "corr-3", "traceparent": TP, "data": usage(3)
    });
    let r = send(
        addr,
        "POST",
        path,
        &[("content-type", "application/cloudevents+json")],
        ce.to_string().into_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let seq = r.json()["seq"].as_u64().unwrap();
    let m = headers_at(&c, "USAGE", seq).await;
    assert_eq!(h(&m, "Nats-Msg-Id"), usage(3)["event_id"].as_str().unwrap());
    assert_eq!(h(&m, "ce-correlationid"), "corr-3");
    assert_eq!(h(&m, "traceparent"), TP);
    assert_eq!(stored(&c, "USAGE").await, 3);
    serve.shutdown().await;
}

#[tokio::test]
async fn refusals_are_clear_and_publish_nothing() {
    let nats = nats().await;
    provision(&nats.url()).await;
    let c = client(&nats.url()).await;
    let serve = serve(&nats.url(), None).await;
    let addr = serve.local_addr();
    let path = "/v1/events/usage.metered.api_call";

    // Schema violation: problem+json listing pointer, keyword, message.
    let mut bad = usage(1);
    bad["event_id"] = json!("not-a-uuid");
    bad.as_object_mut().unwrap().remove("cost");
    let r = post_json(addr, path, &[], &bad).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), "application/problem+json");
    let p = r.json();
    assert_eq!(p["type"], "urn:herald:problem:schema-invalid");
    assert_eq!(p["status"], 400);
    let violations = p["violations"].as_array().unwrap();
    let pointers: Vec<&str> = violations
        .iter()
        .map(|v| v["pointer"].as_str().unwrap())
        .collect();
    assert!(pointers.contains(&"/event_id"), "{p}");
    let required = violations
        .iter()
        .find(|v| v["keyword"] == "required")
        .expect("a required violation");
    assert!(
        required["message"].as_str().unwrap().contains("cost"),
        "{p}"
    );

    // Malformed JSON.
    let r = send(
        addr,
        "POST",
        path,
        &[("content-type", "application/json")],
        b"{\"event_id\": ".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status, r.json()["type"].as_str()),
        (400, Some("urn:herald:problem:malformed-json"))
    );

    // Unknown subject.
    let r = post_json(addr, "/v1/events/usage.metered.nope", &[], &usage(1)).await;
    assert_eq!(
        (r.status, r.json()["type"].as_str()),
        (404, Some("urn:herald:problem:unknown-subject"))
    );

    // Wrong content types.
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/cloudevents-batch+json",
    ] {
        let r = send(
            addr,
            "POST",
            path,
            &[("content-type", ct)],
            usage(1).to_string().into_bytes(),
        )
        .await
        .unwrap();
        assert_eq!(r.status, 415, "{ct}");
        assert!(
            r.json()["detail"]
                .as_str()
                .unwrap()
                .contains("application/json"),
            "{ct}"
        );
    }
    let r = send(addr, "POST", path, &[], usage(1).to_string().into_bytes())
        .await
        .unwrap();
    assert_eq!(r.status, 415);

    // A huge body: 413, before it is read.
    let huge = vec![b' '; 3 * 1024 * 1024];
    let r = send(
        addr,
        "POST",
        path,
        &[("content-type", "application/json")],
        huge,
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status, r.json()["type"].as_str()),
        (413, Some("urn:herald:problem:too-large"))
    );

    // `..` in the path, plain and percent-encoded.
    for p in [
        "/v1/events/../events/usage.metered.api_call",
        "/v1/events/%2e%2e",
        "/schemas/%2E%2E/UsageEvent/1.0.0.json",
    ] {
        let r = post_json(addr, p, &[], &usage(1)).await;
        assert_eq!(
            (r.status, r.json()["type"].as_str()),
            (400, Some("urn:herald:problem:bad-path")),
            "{p}"
        );
    }

    // Unsupported CloudEvents version, bad idempotency key.
    let r = post_json(addr, path, &[("ce-specversion", "0.3")], &usage(1)).await;
    assert_eq!(r.status, 400);
    let r = post_json(addr, path, &[("idempotency-key", "has space")], &usage(1)).await;
    assert_eq!(r.status, 400);

    assert_eq!(
        stored(&c, "USAGE").await,
        0,
        "a refused request published something"
    );
    serve.shutdown().await;
}

#[tokio::test]
async fn slow_clients_get_408_or_are_cut_off_and_publish_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let nats = nats().await;
    provision(&nats.url()).await;
    let c = client(&nats.url()).await;
    let serve = serve(&nats.url(), None).await;
    let addr = serve.local_addr();
    let event = usage(1).to_string();

    // Slow body: headers at once, half the body, then nothing: 408 after the body deadline.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/events/usage.metered.api_call HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        event.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&event.as_bytes()[..event.len() / 2])
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(20), s.read_to_end(&mut buf))
        .await
        .expect("the server must answer a slow body");
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body-timeout"), "{text}");

    // Slowloris: headers trickled and never finished: the connection is closed.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /v1/events/usage.metered.api_call HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let n = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            // Keep trickling one header byte at a time until the server hangs up.
            if s.write_all(b"X").await.is_err() {
                return 0;
            }
            match tokio::time::timeout(std::time::Duration::from_millis(200), s.read_buf(&mut buf))
                .await
            {
                Ok(Ok(0)) | Ok(Err(_)) => return 0,
                Ok(Ok(n)) => return n,
                Err(_) => continue,
            }
        }
    })
    .await
    .expect("the server must cut off a slowloris client");
    let text = String::from_utf8_lossy(&buf);
    assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
    assert_eq!(stored(&c, "USAGE").await, 0);
    serve.shutdown().await;
}

#[tokio::test]
async fn batch_returns_one_result_per_line_in_order() {
    let nats = nats().await;
    provision(&nats.url()).await;
    let c = client(&nats.url()).await;
    let serve = serve(&nats.url(), None).await;
    let addr = serve.local_addr();
    let mut bad = usage(2);
    bad.as_object_mut().unwrap().remove("tenant_id");
    let body = format!("{}\n{}\n\n{}\nnot json\n", usage(1), bad, usage(3));
    let r = send(
        addr,
        "POST",
        "/v1/events/usage.metered.api_call:batch",
        &[
            ("content-type", "application/x-ndjson"),
            ("idempotency-key", "b1"),
        ],
        body.into_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let lines: Vec<serde_json::Value> = r
        .body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let got: Vec<(u64, u64)> = lines
        .iter()
        .map(|l| (l["line"].as_u64().unwrap(), l["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(got, vec![(1, 202), (2, 400), (4, 202), (5, 400)]);
    assert_eq!(lines[1]["problem"]["violations"][0]["keyword"], "required");
    assert_eq!(
        lines[3]["problem"]["type"],
        "urn:herald:problem:malformed-json"
    );
    assert_eq!(stored(&c, "USAGE").await, 2);
    let m = headers_at(&c, "USAGE", lines[2]["seq"].as_u64().unwrap()).await;
    assert_eq!(h(&m, "Nats-Msg-Id"), "b1:4");

    // Over 1,000 events: 413, nothing published.
    let many: String = (0..1001).map(|i| format!("{}\n", usage(100 + i))).collect();
    let r = send(
        addr,
        "POST",
        "/v1/events/usage.metered.api_call:batch",
        &[("content-type", "application/x-ndjson")],
        many.into_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 413);
    assert!(
        r.json()["detail"].as_str().unwrap().contains("1001 events"),
        "{}",
        r.json()
    );
    // Wrong media type for a batch.
    let r = send(
        addr,
        "POST",
        "/v1/events/usage.metered.api_call:batch",
        &[("content-type", "application/json")],
        usage(9).to_string().into_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 415);
    assert_eq!(stored(&c, "USAGE").await, 2);
    serve.shutdown().await;
}

#[tokio::test]
async fn tokens_publish_only_their_services_subjects() {
    let nats = nats().await;
    provision(&nats.url()).await;
    let c = client(&nats.url()).await;
    let mut tokens = TokenFile::default();
    tokens
        .digests
        .insert("orchestrator".into(), digest("tok-orch"));
    tokens
        .digests
        .insert("ingestion-service".into(), digest("tok-ingest"));
    let serve = serve(&nats.url(), Some(tokens)).await;
    let addr = serve.local_addr();
    let path = "/v1/events/orchestrator.step.started";

    let r = post_json(addr, path, &[], &step(1)).await;
    assert_eq!(
        (r.status, r.json()["type"].as_str()),
        (401, Some("urn:herald:problem:unauthorized"))
    );
    let r = post_json(
        addr,
        path,
        &[("authorization", "Bearer tok-wrong")],
        &step(1),
    )
    .await;
    assert_eq!(r.status, 401);
    let r = post_json(
        addr,
        path,
        &[("authorization", "Bearer tok-ingest")],
        &step(1),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["type"].as_str()),
        (403, Some("urn:herald:problem:forbidden"))
    );
    assert_eq!(stored(&c, "ORCHESTRATOR").await, 0);

    // The producer's token, claiming another source: the token's service wins.
    let r = post_json(
        addr,
        path,
        &[
            ("authorization", "Bearer tok-orch"),
            ("ce-source", "someone-else"),
        ],
        &step(1),
    )
    .await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let m = headers_at(&c, "ORCHESTRATOR", 1).await;
    assert_eq!(h(&m, "ce-source"), "orchestrator");
    // Every service produces usage.metered.* ("*" producers).
    let r = post_json(
        addr,
        "/v1/events/usage.metered.api_call",
        &[("authorization", "Bearer tok-ingest")],
        &usage(1),
    )
    .await;
    assert_eq!(r.status, 202);
    // Reading schemas needs no token.
    let r = send(addr, "GET", "/subjects", &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    serve.shutdown().await;
}

#[tokio::test]
async fn without_tokens_only_loopback_is_allowed() {
    let mut c = config("nats://127.0.0.1:1");
    c.listen = "0.0.0.0:0".parse().unwrap();
    let err = herald_serve::start(herald_contracts::Catalog::embedded().unwrap(), c)
        .await
        .unwrap_err();
    assert!(matches!(err, ServeError::NeedsTokens(_)), "{err}");
    assert!(err.to_string().contains("--tokens"), "{err}");
}

#[tokio::test]
async fn without_nats_publishes_answer_503_with_retry_after_and_invalid_events_400() {
    // A server that is down when herald serve starts, and comes up later on the same port.
    let mut nats = nats().await;
    let url = nats.url();
    nats.stop().await.unwrap();
    let running = herald_serve::start(herald_contracts::Catalog::embedded().unwrap(), config(&url))
        .await
        .unwrap();
    let addr = running.local_addr();
    let r = post_json(addr, "/v1/events/usage.metered.api_call", &[], &usage(1)).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), "2");
    assert_eq!(r.json()["type"], "urn:herald:problem:unavailable");
    let mut bad = usage(1);
    bad["quantity"] = json!("many");
    let r = post_json(addr, "/v1/events/usage.metered.api_call", &[], &bad).await;
    assert_eq!(r.status, 400);
    let r = send(addr, "GET", "/healthz", &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let r = send(addr, "GET", "/readyz", &[], Vec::new()).await.unwrap();
    assert_eq!(
        (r.status, r.json()["connected"].as_bool()),
        (503, Some(false))
    );

    // NATS comes up: the server connects by itself; readyz then waits for the streams.
    nats.start_again().await.unwrap();
    wait_connected(addr).await;
    let r = send(addr, "GET", "/readyz", &[], Vec::new()).await.unwrap();
    assert_eq!(r.status, 503);
    assert!(
        r.json()["missing_streams"]
            .as_array()
            .unwrap()
            .contains(&json!("USAGE")),
        "{}",
        r.json()
    );
    provision(&nats.url()).await;
    let r = send(addr, "GET", "/readyz", &[], Vec::new()).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.json());
    let r = post_json(addr, "/v1/events/usage.metered.api_call", &[], &usage(1)).await;
    assert_eq!(r.status, 202);

    let r = send(addr, "GET", "/metrics", &[], Vec::new())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.contains("herald_http_requests_total{method=\"POST\",route=\"/v1/events/{target}\",status=\"503\"}"), "{text}");
    assert!(
        text.contains("herald_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains("messaging_client_sent_messages_total"),
        "{text}"
    );
    running.shutdown().await;
}
