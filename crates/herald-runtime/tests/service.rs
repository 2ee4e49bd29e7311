//! The `Service` API on the shipped catalog and a real nats-server: consumers
//! by short name, a publisher that refuses subjects the service does not
//! produce, heartbeats, a stop that drains, and the `service` example run as
//! a user would run it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use herald_contracts::events::{Heartbeat, OrchestratorStep};
use herald_contracts::Catalog;
use herald_runtime::{
    ConnectConfig, Contracts, HeraldClient, Provisioner, Service, ServiceError, ServicePublishError,
};
use herald_test_server::NatsServer;
use uuid::Uuid;

fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::embedded().expect("the shipped catalog loads"))
}

async fn provisioned() -> NatsServer {
    let server = NatsServer::start().await.expect("nats-server starts");
    let client = HeraldClient::connect(ConnectConfig::default().url(server.url()))
        .await
        .expect("connect");
    let contracts: Arc<dyn Contracts> = catalog();
    Provisioner::new(client, contracts)
        .apply(false, false)
        .await
        .expect("streams apply");
    server
}

#[tokio::test]
async fn an_undeclared_service_or_consumer_is_an_error_that_lists_the_declared_ones() {
    let server = provisioned().await;
    let cfg = || ConnectConfig::default().url(server.url());
    match Service::connect(catalog(), "billing", cfg()).await {
        Err(ServiceError::UnknownService { name, declared }) => {
            assert_eq!(name, "billing");
            assert!(
                declared.contains(&"billing-service".to_owned()),
                "{declared:?}"
            );
        }
        other => panic!("expected UnknownService, got {other:?}"),
    }
    let mut svc = Service::connect(catalog(), "analytics-service", cfg())
        .await
        .expect("a declared service connects");
    let err = svc
        .consumer("usage_metered", |_| async { Ok(()) })
        .expect_err("no such consumer");
    match &err {
        ServiceError::UnknownConsumer {
            service,
            name,
            declared,
        } => {
            assert_eq!(service, "analytics-service");
            assert_eq!(name, "usage_metered");
            assert_eq!(declared, &["ingest".to_owned(), "usage".to_owned()]);
        }
        other => panic!("expected UnknownConsumer, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "analytics-service has no consumer \"usage_metered\" in the catalog; declared: ingest, usage"
    );
    svc.consumer("usage", |_| async { Ok(()) })
        .expect("the declared consumer registers");
    assert!(matches!(
        svc.consumer("usage", |_| async { Ok(()) }),
        Err(ServiceError::DuplicateConsumer(n)) if n == "usage"
    ));
}

#[tokio::test]
async fn the_publisher_refuses_subjects_the_service_does_not_produce_before_sending() {
    let server = provisioned().await;
    let svc = Service::connect(
        catalog(),
        "ingestion-service",
        ConnectConfig::default().url(server.url()),
    )
    .await
    .unwrap();
    let step = OrchestratorStep::started("ingestion-service", Uuid::new_v4(), "parse");
    match svc.publisher().publish(&step).await {
        Err(ServicePublishError::NotAProducer {
            service,
            subject,
            producers,
        }) => {
            assert_eq!(service, "ingestion-service");
            assert_eq!(subject, "orchestrator.step.started");
            assert_eq!(producers, vec!["orchestrator".to_owned()]);
        }
        other => panic!("expected NotAProducer, got {other:?}"),
    }
    // Nothing reached the stream.
    let js = svc.client().jetstream();
    let mut stream = js.get_stream("ORCHESTRATOR").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 0);
}

#[tokio::test]
async fn a_service_heartbeats_while_it_runs_and_stops_when_asked() {
    let server = provisioned().await;
    let raw = async_nats::connect(server.url()).await.unwrap();
    let mut beats = raw.subscribe("herald.heartbeat.audit-log").await.unwrap();
    raw.flush().await.unwrap();
    let svc = Service::connect(
        catalog(),
        "audit-log",
        ConnectConfig::default().url(server.url()),
    )
    .await
    .unwrap();
    let stop = svc.shutdown_handle();
    let running = tokio::spawn(svc.run());
    let beat = tokio::time::timeout(Duration::from_secs(20), beats.next())
        .await
        .expect("a heartbeat within 20 s")
        .expect("subscription open");
    let beat: Heartbeat = serde_json::from_slice(&beat.payload).expect("a Heartbeat");
    assert_eq!(beat.service_name, "audit-log");
    stop.trigger();
    let report = tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("run returns after a stop")
        .unwrap()
        .expect("a clean stop");
    assert!(report.consumers.is_empty());
}

/// The compiled `service` example, which `cargo test` builds beside the tests.
fn example(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop(); // deps/
    dir.pop(); // debug/
    dir.join("examples").join(name)
}

#[tokio::test]
async fn the_service_example_publishes_and_counts_every_event() {
    let server = provisioned().await;
    let bin = example("service");
    assert!(
        bin.is_file(),
        "{} missing: run through `cargo test`, which builds the examples",
        bin.display()
    );
    let child = tokio::process::Command::new(&bin)
        .arg("300")
        .env("NATS_URL", server.url())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), child)
        .await
        .expect("the example finishes within 120 s")
        .expect("the example runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("published 300, counted 300: "),
        "{stdout}"
    );
    // Every event is in the stream and the durable has nothing left to do.
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("USAGE").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 300);
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .get_consumer("analytics-service--usage")
        .await
        .unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(info.num_pending, 0);
    assert_eq!(info.num_ack_pending, 0);
}
