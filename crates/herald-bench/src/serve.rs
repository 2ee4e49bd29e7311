//! `herald bench serve`: publishing over HTTP (`herald serve`, keep-alive
//! HTTP/1.1, concurrent clients) against herald's library publisher, same
//! server, same events, one run, alternating rounds. Goal: HTTP at 0.5x the
//! library or better.
//!
//! Both sides wait for every JetStream `PubAck` (a 202 is sent only after it).
//! HTTP/1.1 has one request in flight per connection, so HTTP concurrency is the
//! number of clients; the library runs with its usual acks in flight.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use herald_contracts::Catalog;
use herald_runtime::publisher::Outgoing;
use herald_runtime::{ConnectConfig, Contracts, HeraldClient, Publish, Publisher, PublisherConfig};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::{payload, BenchError};

/// Settings.
#[derive(Debug, Clone)]
pub struct ServeBench {
    /// Events per side.
    pub events: usize,
    /// Concurrent HTTP clients (keep-alive connections).
    pub clients: usize,
    /// Library acks in flight.
    pub in_flight: usize,
    /// Alternating rounds.
    pub rounds: usize,
    /// Subject.
    pub subject: String,
    /// A valid event; `event_id` is replaced per event.
    pub template: Value,
}

/// Figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServeReport {
    /// Events per side.
    pub events: usize,
    /// HTTP clients.
    pub clients: usize,
    /// Library publisher, events/s.
    pub library_eps: f64,
    /// `herald serve`, events/s.
    pub serve_eps: f64,
}

impl ServeReport {
    /// serve / library.
    pub fn ratio(&self) -> f64 {
        if self.library_eps > 0.0 {
            self.serve_eps / self.library_eps
        } else {
            0.0
        }
    }
}

impl std::fmt::Display for ServeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "events: {} per side, {} HTTP clients (keep-alive HTTP/1.1)",
            self.events, self.clients
        )?;
        writeln!(f, "library publisher : {:>10.0} events/s", self.library_eps)?;
        writeln!(f, "herald serve      : {:>10.0} events/s", self.serve_eps)?;
        write!(f, "ratio             : {:.2} (goal >= 0.50)", self.ratio())
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Result<Sender, BenchError> {
    let s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| BenchError::Setup(format!("connect to herald serve: {e}")))?;
    let _ = s.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn post(
    sender: &mut Sender,
    addr: SocketAddr,
    path: &str,
    body: Bytes,
) -> Result<u16, BenchError> {
    let req = hyper::Request::post(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .body(Full::new(body))
        .map_err(|e| BenchError::Publish(e.to_string()))?;
    sender
        .ready()
        .await
        .map_err(|e| BenchError::Publish(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| BenchError::Publish(e.to_string()))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| BenchError::Publish(e.to_string()))?
        .to_bytes();
    if status != 202 {
        return Err(BenchError::Publish(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    Ok(status)
}

impl ServeBench {
    /// Runs against the nats-server at `url` (streams must exist); starts `herald serve`
    /// in-process on a loopback port.
    pub async fn run(&self, url: &str, catalog: &Catalog) -> Result<ServeReport, BenchError> {
        let connect_config = ConnectConfig::default().url(url);
        let client = HeraldClient::connect(connect_config.clone())
            .await
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        let reload = || {
            Catalog::from_files(catalog.files().clone())
                .map_err(|e| BenchError::Setup(e.to_string()))
        };
        let contracts: Arc<dyn Contracts> = Arc::new(reload()?);
        let publisher = Publisher::new(
            client.clone(),
            contracts,
            PublisherConfig::new("herald-bench").in_flight(self.in_flight),
        );
        let running = herald_serve::start(
            reload()?,
            herald_serve::ServeConfig::new("127.0.0.1:0".parse().expect("address"), connect_config),
        )
        .await
        .map_err(|e| BenchError::Setup(e.to_string()))?;
        let addr = running.local_addr();
        let path = format!("/v1/events/{}", self.subject);
        // Wait (bounded) for the server's connection: a publish answers 202 once it is up.
        let mut probe = connect(addr).await?;
        let mut up = false;
        for _ in 0..200 {
            let body =
                Bytes::from(serde_json::to_vec(&payload(&self.template, 0)).unwrap_or_default());
            if post(&mut probe, addr, &path, body).await.is_ok() {
                up = true;
                break;
            }
            probe = connect(addr).await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !up {
            return Err(BenchError::Setup(
                "herald serve did not connect to NATS".into(),
            ));
        }
        let clients = self.clients.max(1);
        let mut senders = Vec::with_capacity(clients);
        for _ in 0..clients {
            senders.push(connect(addr).await?);
        }
        let rounds = self.rounds.max(1);
        let per_round = (self.events / rounds).max(clients);
        let mut library = Duration::ZERO;
        let mut serve = Duration::ZERO;
        let event =
            || Bytes::from(serde_json::to_vec(&payload(&self.template, 0)).unwrap_or_default());
        for _ in 0..rounds {
            let lib_events: Vec<Outgoing> = (0..per_round)
                .map(|_| Outgoing {
                    subject: self.subject.clone(),
                    payload: event(),
                    options: Publish::build(),
                })
                .collect();
            let mut shares: Vec<Vec<Bytes>> = vec![Vec::new(); clients];
            for i in 0..per_round {
                shares[i % clients].push(event());
            }

            let t = Instant::now();
            let mut results = publisher.publish_all(lib_events);
            while let Some((_, r)) = results.next().await {
                r.map_err(|e| BenchError::Publish(e.to_string()))?;
            }
            library += t.elapsed();

            let t = Instant::now();
            let tasks: Vec<_> = senders
                .drain(..)
                .zip(shares)
                .map(|(mut sender, share)| {
                    let path = path.clone();
                    tokio::spawn(async move {
                        for body in share {
                            // herald serve closes connections idle past its header deadline
                            // (slow-client protection): reconnect and resend the same event,
                            // which its event_id makes idempotent.
                            if sender.is_closed() {
                                sender = connect(addr).await?;
                            }
                            if let Err(e) = post(&mut sender, addr, &path, body.clone()).await {
                                if !sender.is_closed() {
                                    return Err(e);
                                }
                                sender = connect(addr).await?;
                                post(&mut sender, addr, &path, body).await?;
                            }
                        }
                        Ok::<Sender, BenchError>(sender)
                    })
                })
                .collect();
            for task in tasks {
                let sender = task
                    .await
                    .map_err(|e| BenchError::Publish(e.to_string()))??;
                senders.push(sender);
            }
            serve += t.elapsed();
        }
        drop(senders);
        running.shutdown().await;
        client.drain().await;
        let total = (per_round * rounds) as f64;
        Ok(ServeReport {
            events: per_round * rounds,
            clients,
            library_eps: total / library.as_secs_f64().max(1e-9),
            serve_eps: total / serve.as_secs_f64().max(1e-9),
        })
    }
}
