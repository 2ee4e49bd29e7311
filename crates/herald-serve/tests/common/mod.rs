//! Shared support: a real nats-server, herald serve in-process, an HTTP/1.1 client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use herald_contracts::Catalog;
use herald_runtime::{ConnectConfig, Contracts, HeraldClient, Provisioner};
use herald_serve::{Running, ServeConfig, TokenFile};
use herald_test_server::NatsServer;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

pub async fn nats() -> NatsServer {
    NatsServer::start()
        .await
        .expect("nats-server must be installed (apt-get install nats-server)")
}

pub async fn client(url: &str) -> HeraldClient {
    HeraldClient::connect(ConnectConfig::default().url(url))
        .await
        .expect("connect to the test server")
}

/// Creates the catalog's streams.
pub async fn provision(url: &str) {
    let contracts: Arc<dyn Contracts> = Arc::new(Catalog::embedded().unwrap());
    Provisioner::new(client(url).await, contracts)
        .apply(false, false)
        .await
        .expect("provision streams");
}

pub fn config(url: &str) -> ServeConfig {
    let mut c = ServeConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        ConnectConfig::default()
            .url(url)
            .connect_timeout(Duration::from_secs(2)),
    );
    c.publish_timeout = Duration::from_secs(5);
    c.header_timeout = Duration::from_secs(1);
    c.body_timeout = Duration::from_secs(1);
    c
}

pub async fn serve(url: &str, tokens: Option<TokenFile>) -> Running {
    let mut c = config(url);
    c.tokens = tokens;
    let running = herald_serve::start(Catalog::embedded().unwrap(), c)
        .await
        .expect("herald serve starts");
    wait_connected(running.local_addr()).await;
    running
}

/// Waits (bounded) until /readyz says connected.
pub async fn wait_connected(addr: SocketAddr) {
    for _ in 0..200 {
        if let Ok(r) = send(addr, "GET", "/readyz", &[], Vec::new()).await {
            if r.json()["connected"] == json!(true) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("herald serve did not connect to NATS");
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// One request on a fresh connection.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Resp, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body))).unwrap();
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok(Resp {
        status,
        headers,
        body,
    })
}

pub async fn post_json(addr: SocketAddr, path: &str, headers: &[(&str, &str)], v: &Value) -> Resp {
    let mut h = vec![("content-type", "application/json")];
    h.extend_from_slice(headers);
    send(addr, "POST", path, &h, v.to_string().into_bytes())
        .await
        .expect("HTTP request")
}

pub fn usage(n: u32) -> Value {
    json!({
        "event_id": format!("550e8400-e29b-41d4-a716-{n:012}"),
        "timestamp": "2024-01-15T10:30:00Z",
        "service_name": "model-gateway",
        "user_id": "123e4567-e89b-12d3-a456-426614174000",
        "tenant_id": "789e0123-e89b-12d3-a456-426614174000",
        "event_type": "api_call",
        "resource_type": "requests",
        "quantity": 1,
        "cost": {"amount": 0.001, "currency": "EUR"}
    })
}

pub fn step(n: u32) -> Value {
    json!({
        "step_id": format!("660e8400-e29b-41d4-a716-{n:012}"),
        "workflow_id": "770e8400-e29b-41d4-a716-446655440002",
        "timestamp": "2024-01-15T10:30:00Z",
        "step_name": "Process Document",
        "status": "started",
        "service_name": "orchestrator",
        "step_type": "data_processing"
    })
}

/// Messages in `stream` (0 when it does not exist).
pub async fn stored(c: &HeraldClient, stream: &str) -> u64 {
    match c.jetstream().get_stream(stream).await {
        Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

/// The headers of the message at `seq` of `stream`.
pub async fn headers_at(c: &HeraldClient, stream: &str, seq: u64) -> async_nats::HeaderMap {
    let s = c.jetstream().get_stream(stream).await.expect("stream");
    let m = s.get_raw_message(seq).await.expect("stored message");
    m.headers
}

pub fn h<'a>(m: &'a async_nats::HeaderMap, name: &str) -> &'a str {
    m.get(name).map(|v| v.as_str()).unwrap_or("")
}
