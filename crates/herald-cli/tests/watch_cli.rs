//! `herald watch` and `herald consume` as processes against a real
//! nats-server started by the test: both heartbeat and serve /metrics (each
//! scrape checked with `promtool check metrics`, which must be installed);
//! `watch` publishes `alerts.service_down` for an expected service that never
//! heartbeats, `consume` counts what it consumed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use herald_contracts::Catalog;
use herald_runtime::contracts::Contracts;
use herald_runtime::{ConnectConfig, Consumer, ConsumerConfig, HeraldClient, Provisioner};
use herald_test_server::testing::{herald_command, usage_event, wait_until};
use herald_test_server::NatsServer;

/// A `herald` child process, killed on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to /metrics");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("http response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

fn promtool_check(body: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("promtool is required ({e}); install it with `apt-get install -y prometheus`")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn watch_heartbeats_serves_metrics_and_reports_a_silent_service() {
    let server = NatsServer::start()
        .await
        .expect("nats-server must be installed (apt-get install nats-server)");
    let client = HeraldClient::connect(ConnectConfig::default().url(server.url()))
        .await
        .expect("connect");
    let contracts: Arc<dyn Contracts> = Arc::new(Catalog::embedded().unwrap());
    Provisioner::new(client.clone(), contracts.clone())
        .apply(false, false)
        .await
        .expect("provision");
    // A catalog consumer with a backlog of 3, for the lag gauges.
    Consumer::new(
        client.clone(),
        contracts.clone(),
        ConsumerConfig::new("billing-service", "usage", "usage.metered.>"),
    )
    .unwrap()
    .ensure()
    .await
    .expect("durable consumer");
    for n in 0..3 {
        let event = usage_event(&format!("lag-{n}"));
        client
            .jetstream()
            .publish("usage.metered.api_call", event.to_string().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let nats = client.nats().clone();
    let mut beats = nats
        .subscribe("herald.heartbeat.herald-watch")
        .await
        .unwrap();
    let mut alerts = nats.subscribe("alerts.service_down").await.unwrap();
    nats.flush().await.unwrap();

    let mut child = herald_command(env!("CARGO_BIN_EXE_herald"))
        .args([
            "--server",
            &server.url(),
            "watch",
            "--metrics-addr",
            "127.0.0.1:0",
            "--poll-interval",
            "200ms",
            "--expect",
            "orchestrator",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run herald watch");
    let addr = metrics_addr(&mut child);
    let watch = Reaped(child);

    // herald watch is itself a herald service: it heartbeats.
    let beat = tokio::time::timeout(Duration::from_secs(30), beats.next())
        .await
        .expect("a heartbeat from herald-watch")
        .unwrap();
    let beat: serde_json::Value = serde_json::from_slice(&beat.payload).unwrap();
    assert_eq!(beat["service_name"], "herald-watch");

    // orchestrator was expected and never heartbeats: one service_down.
    let alert = tokio::time::timeout(Duration::from_secs(60), alerts.next())
        .await
        .expect("alerts.service_down for orchestrator")
        .unwrap();
    let alert: serde_json::Value = serde_json::from_slice(&alert.payload).unwrap();
    assert_eq!(alert["affected_service"], "orchestrator");
    assert_eq!(alert["state"], "firing");
    assert_eq!(alert["service_name"], "herald-watch");

    // A real scrape of the running process passes promtool and shows what
    // the watcher saw.
    // The alert reached us before the watcher's publisher saw its ack and
    // counted it: scrape until the counter shows it.
    let sent_alert = "messaging_client_sent_messages_total{messaging_system=\"nats\",service=\"herald-watch\",messaging_destination_name=\"alerts.service_down\",outcome=\"ok\"} 1";
    wait_until("the sent alert counted", Duration::from_secs(30), || {
        scrape(addr).contains(sent_alert)
    })
    .await;
    let body = scrape(addr);
    assert!(body.contains(sent_alert), "{body}");
    assert!(body.contains("herald_connection_up 1"), "{body}");
    assert!(
        body.contains(
            "herald_consumer_pending_messages{stream=\"USAGE\",consumer=\"billing-service--usage\"} 3"
        ),
        "{body}"
    );
    promtool_check(&body);
    drop(watch);
    // One alert, counted: the stream holds exactly the one service_down the
    // subscriber saw, and no second one arrived meanwhile.
    let alerts_stream = client.jetstream().get_stream("ALERTS").await.unwrap();
    let mut per_subject = alerts_stream
        .info_with_subjects("alerts.service_down")
        .await
        .unwrap();
    let mut stored = 0;
    while let Some(entry) = per_subject.next().await {
        stored += entry.unwrap().1;
    }
    assert_eq!(stored, 1, "service_down alerts stored");
    assert!(
        alerts.next().now_or_never().is_none(),
        "a second service_down alert"
    );
}

/// Reads the child's stderr until it prints the metrics address, then keeps
/// draining it in a thread.
fn metrics_addr(child: &mut Child) -> SocketAddr {
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("exited before serving metrics")
            .unwrap();
        if let Some(rest) = line.strip_prefix("metrics: http://") {
            break rest.trim_end_matches("/metrics").parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    addr
}

#[tokio::test]
async fn consume_heartbeats_and_counts_what_it_consumed() {
    let server = NatsServer::start()
        .await
        .expect("nats-server must be installed (apt-get install nats-server)");
    let client = HeraldClient::connect(ConnectConfig::default().url(server.url()))
        .await
        .expect("connect");
    let contracts: Arc<dyn Contracts> = Arc::new(Catalog::embedded().unwrap());
    Provisioner::new(client.clone(), contracts.clone())
        .apply(false, false)
        .await
        .expect("provision");
    let nats = client.nats().clone();
    let mut beats = nats
        .subscribe("herald.heartbeat.billing-service")
        .await
        .unwrap();
    nats.flush().await.unwrap();
    let publisher = herald_runtime::Publisher::new(
        client.clone(),
        contracts,
        herald_runtime::PublisherConfig::new("model-gateway"),
    );
    for n in 0..2 {
        let event = usage_event(&format!("consumed-{n}"));
        publisher
            .publish(
                "usage.metered.api_call",
                &event,
                herald_runtime::Publish::build(),
            )
            .await
            .expect("publish");
    }

    let mut child = herald_command(env!("CARGO_BIN_EXE_herald"))
        .args([
            "--server",
            &server.url(),
            "consume",
            "--service",
            "billing-service",
            "--subject",
            "usage.metered.>",
            "--exec",
            "cat >/dev/null",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run herald consume");
    let addr = metrics_addr(&mut child);
    let consume = Reaped(child);

    let beat = tokio::time::timeout(Duration::from_secs(30), beats.next())
        .await
        .expect("a heartbeat from billing-service")
        .unwrap();
    let beat: serde_json::Value = serde_json::from_slice(&beat.payload).unwrap();
    assert_eq!(beat["service_name"], "billing-service");

    let acked = "messaging_client_consumed_messages_total{messaging_system=\"nats\",service=\"billing-service\",messaging_destination_name=\"usage.metered.api_call\",outcome=\"ack\"} 2";
    wait_until("both events acked", Duration::from_secs(30), || {
        scrape(addr).contains(acked)
    })
    .await;
    let body = scrape(addr);
    assert!(body.contains(acked), "{body}");
    assert!(body.contains("herald_connection_up 1"), "{body}");
    assert!(
        body.contains("messaging_process_duration_seconds_count{messaging_system=\"nats\",service=\"billing-service\",messaging_destination_name=\"usage.metered.api_call\"} 2"),
        "{body}"
    );
    promtool_check(&body);
    drop(consume);
}
