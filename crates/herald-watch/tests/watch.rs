//! `herald watch` against a real nats-server started by the test: heartbeats
//! stopping raise `alerts.service_down` once and a resolved event when they
//! return; a backlog raises `alerts.backlog`; schema-invalid dead letters
//! raise `alerts.schema_violation`. A missing nats-server fails the tests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use herald_contracts::Catalog;
use herald_runtime::contracts::Contracts;
use herald_runtime::headers::{
    DLQ_CONSUMER as DLQ_CONSUMER_HEADER, DLQ_REASON as DLQ_REASON_HEADER,
};
use herald_runtime::{
    metrics, ConnectConfig, HeraldClient, Provisioner, Publisher, PublisherConfig,
};
use herald_test_server::NatsServer;
use herald_watch::watch::{
    spawn_heartbeats, EventSink, JetStreamSink, RunningWatcher, SinkError, WatchOptions, Watcher,
};
use herald_watch::{AlertEvent, AlertState, AlertType};

#[path = "../../herald-runtime/tests/common/mod.rs"]
mod common;

use common::{server, shipped_catalog, usage_event, wait_until};

/// A plain NATS client and the shipped catalog, its streams provisioned.
async fn setup(server: &NatsServer) -> (async_nats::Client, jetstream::Context, Arc<Catalog>) {
    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = jetstream::new(client.clone());
    let catalog = Arc::new(shipped_catalog());
    let admin = common::connect(server, "admin").await;
    let plan = Provisioner::new(admin, catalog.clone() as Arc<dyn Contracts>)
        .apply(false, false)
        .await
        .expect("provision the shipped streams");
    assert!(!plan.has_refusals(), "{plan}");
    (client, js, catalog)
}

fn fast_options(catalog: &Catalog) -> WatchOptions {
    let mut options = WatchOptions::from_catalog(catalog);
    options.monitor.poll_interval = Duration::from_millis(100);
    options.monitor.service_down_after = Duration::from_secs(2);
    options.monitor.repeat_interval = Duration::from_secs(3600);
    options.monitor.high_latency = Duration::from_secs(3600);
    options.monitor.backlog_growth_samples = 0;
    options
}

async fn start_watcher(
    client: &async_nats::Client,
    js: &jetstream::Context,
    catalog: &Arc<Catalog>,
    options: WatchOptions,
) -> RunningWatcher {
    let sink: Arc<dyn EventSink> = Arc::new(JetStreamSink::new(
        js.clone(),
        catalog.clone(),
        "herald-watch",
    ));
    Watcher::new(client.clone(), catalog.clone(), sink, options)
        .start()
        .await
        .expect("watcher subscribes")
}

async fn next_alert(sub: &mut async_nats::Subscriber, catalog: &Catalog) -> AlertEvent {
    let msg = tokio::time::timeout(Duration::from_secs(30), sub.next())
        .await
        .expect("an alert within 30s")
        .expect("subscription open");
    let value: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
    catalog
        .validate(&msg.subject, None, &value)
        .expect("alert satisfies its contract");
    let headers = msg.headers.expect("headers");
    let event: AlertEvent = serde_json::from_value(value).unwrap();
    assert_eq!(
        headers.get("Nats-Msg-Id").map(|v| v.as_str().to_owned()),
        Some(event.alert_id.to_string()),
        "alert_id is the dedup key"
    );
    event
}

async fn stored_count(js: &jetstream::Context, stream: &str, subject: &str) -> u64 {
    let stream = js.get_stream(stream).await.unwrap();
    let mut info = stream.info_with_subjects(subject).await.unwrap();
    let mut total = 0;
    while let Some(entry) = info.next().await {
        total += entry.unwrap().1 as u64;
    }
    total
}

#[tokio::test]
async fn service_down_fires_once_and_resolves_when_heartbeats_return() {
    let server = server().await;
    let (client, js, catalog) = setup(&server).await;
    let mut alerts = client.subscribe("alerts.service_down").await.unwrap();
    let mut beats = client
        .subscribe("herald.heartbeat.billing-service")
        .await
        .unwrap();
    client.flush().await.unwrap();
    // This test goes through herald's real publisher on both sides.
    let herald = HeraldClient::connect(ConnectConfig::default().url(server.url()))
        .await
        .expect("connect");
    let contracts: Arc<dyn Contracts> = catalog.clone();
    let watch_sink: Arc<dyn EventSink> = Arc::new(Publisher::new(
        herald.clone(),
        contracts.clone(),
        PublisherConfig::new("herald-watch"),
    ));
    let watcher = Watcher::new(
        client.clone(),
        catalog.clone(),
        watch_sink,
        fast_options(&catalog),
    )
    .start()
    .await
    .expect("watcher subscribes");

    let billing: Arc<dyn EventSink> = Arc::new(Publisher::new(
        herald,
        contracts,
        PublisherConfig::new("billing-service"),
    ));
    let heartbeats = spawn_heartbeats(
        billing.clone(),
        "billing-service",
        Duration::from_millis(200),
    );
    // Heartbeats flow and satisfy their contract.
    for _ in 0..3 {
        let msg = tokio::time::timeout(Duration::from_secs(30), beats.next())
            .await
            .expect("heartbeat")
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
        catalog
            .validate(&msg.subject, None, &value)
            .expect("valid heartbeat");
        assert_eq!(value["service_name"], "billing-service");
        assert_eq!(value["instance_id"], heartbeats.instance_id().to_string());
    }
    // The service dies.
    heartbeats.stop();
    let down = next_alert(&mut alerts, &catalog).await;
    assert_eq!(down.alert_type, AlertType::ServiceDown);
    assert_eq!(down.state, AlertState::Firing);
    assert_eq!(down.service_name, "herald-watch");
    assert_eq!(down.affected_service.as_deref(), Some("billing-service"));

    // It comes back.
    let _again = spawn_heartbeats(billing, "billing-service", Duration::from_millis(200));
    let up = next_alert(&mut alerts, &catalog).await;
    assert_eq!(up.state, AlertState::Resolved);
    assert_eq!(up.incident_id, down.incident_id);
    assert_ne!(up.alert_id, down.alert_id);

    // Exactly one firing and one resolved event were stored.
    watcher.stop().await;
    assert_eq!(stored_count(&js, "ALERTS", "alerts.service_down").await, 2);
}

#[tokio::test]
async fn backlog_over_threshold_raises_and_resolves_an_alert() {
    let handle = metrics::install().expect("metrics");
    let server = server().await;
    let (client, js, catalog) = setup(&server).await;
    let usage = js.get_stream("USAGE").await.unwrap();
    let consumer = usage
        .create_consumer(consumer::pull::Config {
            durable_name: Some("billing-service--usage".to_owned()),
            filter_subject: "usage.metered.>".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    for i in 0..25 {
        let event = usage_event(&format!("backlog-{i}"));
        js.publish("usage.metered.api_call", event.to_string().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let mut alerts = client.subscribe("alerts.backlog").await.unwrap();
    client.flush().await.unwrap();
    let mut options = fast_options(&catalog);
    options.monitor.backlog_overrides = BTreeMap::from([("billing-service--usage".to_owned(), 10)]);
    let watcher = start_watcher(&client, &js, &catalog, options).await;

    let fired = next_alert(&mut alerts, &catalog).await;
    assert_eq!(fired.alert_type, AlertType::Backlog);
    assert_eq!(fired.state, AlertState::Firing);
    assert_eq!(fired.value, Some(25.0));
    assert_eq!(fired.threshold, Some(10.0));
    assert_eq!(fired.affected_service.as_deref(), Some("billing-service"));
    let labels = fired.labels.as_ref().expect("labels");
    assert_eq!(labels["consumer"], "billing-service--usage");
    assert_eq!(labels["stream"], "USAGE");
    // The watcher exported the lag it saw.
    let text = handle.render();
    assert!(
        text.contains(
            "herald_consumer_pending_messages{stream=\"USAGE\",consumer=\"billing-service--usage\"} 25"
        ),
        "{text}"
    );

    // The consumer catches up.
    let mut messages = consumer.fetch().max_messages(25).messages().await.unwrap();
    let mut acked = 0;
    while let Some(msg) = messages.next().await {
        msg.unwrap().double_ack().await.unwrap();
        acked += 1;
    }
    assert_eq!(acked, 25);
    let resolved = next_alert(&mut alerts, &catalog).await;
    assert_eq!(resolved.state, AlertState::Resolved);
    assert_eq!(resolved.incident_id, fired.incident_id);

    watcher.stop().await;
    assert_eq!(stored_count(&js, "ALERTS", "alerts.backlog").await, 2);
}

#[tokio::test]
async fn schema_invalid_dead_letters_raise_a_schema_violation() {
    let server = server().await;
    let (client, js, catalog) = setup(&server).await;
    let mut alerts = client.subscribe("alerts.schema_violation").await.unwrap();
    client.flush().await.unwrap();
    let watcher = start_watcher(&client, &js, &catalog, fast_options(&catalog)).await;

    let mut headers = async_nats::HeaderMap::new();
    headers.insert(DLQ_REASON_HEADER, "schema_invalid");
    headers.insert(DLQ_CONSUMER_HEADER, "billing-service--usage");
    for _ in 0..2 {
        js.publish_with_headers("dlq.usage.metered.api_call", headers.clone(), "{}".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let fired = next_alert(&mut alerts, &catalog).await;
    assert_eq!(fired.alert_type, AlertType::SchemaViolation);
    assert_eq!(fired.state, AlertState::Firing);
    assert_eq!(fired.affected_service.as_deref(), Some("billing-service"));
    assert!(
        fired.summary.contains("usage.metered.api_call"),
        "{}",
        fired.summary
    );
    // A few more polls: both dead letters are long handled, and still one alert.
    let mut status = watcher.status();
    let seen = status.borrow().polls;
    tokio::time::timeout(
        Duration::from_secs(30),
        status.wait_for(|s| s.polls >= seen + 3),
    )
    .await
    .expect("the watcher keeps polling")
    .unwrap();
    watcher.stop().await;
    assert_eq!(
        stored_count(&js, "ALERTS", "alerts.schema_violation").await,
        1,
        "two dead letters, one incident, one alert"
    );
}

#[tokio::test]
async fn the_sink_refuses_events_that_break_their_contract() {
    let server = server().await;
    let (_client, js, catalog) = setup(&server).await;
    let sink = JetStreamSink::new(js.clone(), catalog, "herald-watch");
    let bad = serde_json::json!({"alert_id": "not-a-uuid"});
    match sink.send("alerts.backlog", bad, "x".to_owned()).await {
        Err(SinkError::Invalid(_)) => {}
        other => panic!("expected a contract refusal, got {other:?}"),
    }
    assert_eq!(stored_count(&js, "ALERTS", "alerts.>").await, 0);
}

#[tokio::test]
async fn losing_nats_raises_a_connectivity_incident_published_on_reconnection() {
    let mut server = server().await;
    let (client, js, catalog) = setup(&server).await;
    let watcher = start_watcher(&client, &js, &catalog, fast_options(&catalog)).await;
    // billing-service heartbeats through a connection of its own. While the watcher
    // is deaf it hears nothing from it, which must not count as billing-service down.
    let herald = HeraldClient::connect(
        ConnectConfig::default()
            .url(server.url())
            .max_reconnect_delay(Duration::from_millis(200)),
    )
    .await
    .expect("connect");
    let billing: Arc<dyn EventSink> = Arc::new(Publisher::new(
        herald,
        catalog.clone() as Arc<dyn Contracts>,
        PublisherConfig::new("billing-service"),
    ));
    let mut beats = client
        .subscribe("herald.heartbeat.billing-service")
        .await
        .unwrap();
    client.flush().await.unwrap();
    let heartbeats = spawn_heartbeats(billing, "billing-service", Duration::from_millis(200));
    tokio::time::timeout(Duration::from_secs(30), beats.next())
        .await
        .expect("billing-service heartbeats before the outage");

    server.stop().await.expect("stop nats-server");
    wait_until(
        "the watcher's client to notice",
        Duration::from_secs(30),
        || client.connection_state() != async_nats::connection::State::Connected,
    )
    .await;
    // Wait until the watcher has noticed it is deaf.
    let mut status = watcher.status();
    tokio::time::timeout(
        Duration::from_secs(60),
        status.wait_for(|s| {
            !s.connected
                && s.firing
                    .contains(&(AlertType::Connectivity, "herald-watch".to_owned()))
        }),
    )
    .await
    .expect("the watcher notices the outage")
    .unwrap();
    server.start_again().await.expect("restart nats-server");
    // billing-service's heartbeats come back, and the watcher keeps polling for longer
    // than `service_down_after` (2 s at 100 ms a poll) after hearing again.
    tokio::time::timeout(Duration::from_secs(30), beats.next())
        .await
        .expect("billing-service heartbeats after the outage");
    let seen = status.borrow().polls;
    tokio::time::timeout(
        Duration::from_secs(60),
        status.wait_for(|s| s.connected && s.polls >= seen + 30),
    )
    .await
    .expect("the watcher polls on")
    .unwrap();

    common::eventually(
        "the connectivity alerts stored",
        Duration::from_secs(30),
        || async { (stored_count(&js, "ALERTS", "alerts.connectivity").await >= 2).then_some(()) },
    )
    .await;
    assert_eq!(
        stored_count(&js, "ALERTS", "alerts.connectivity").await,
        2,
        "one firing and one resolved event"
    );
    let alerts = js.get_stream("ALERTS").await.unwrap();
    let reader = alerts
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: "alerts.connectivity".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = reader.messages().await.unwrap().take(2);
    let mut events = Vec::new();
    while let Some(msg) = messages.next().await {
        let msg = msg.unwrap();
        let value: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
        catalog
            .validate("alerts.connectivity", None, &value)
            .expect("valid alert");
        events.push(serde_json::from_value::<AlertEvent>(value).unwrap());
    }
    let states: Vec<AlertState> = events.iter().map(|e| e.state).collect();
    assert_eq!(states, [AlertState::Firing, AlertState::Resolved]);
    assert_eq!(events[0].incident_id, events[1].incident_id);
    assert_eq!(events[0].affected_service.as_deref(), Some("herald-watch"));
    // Deaf while disconnected: billing-service, silent only to the watcher, was not
    // reported down, during the outage or after it.
    assert_eq!(stored_count(&js, "ALERTS", "alerts.service_down").await, 0);
    heartbeats.stop();
    watcher.stop().await;
}
