//! Stream provisioning and the server harness, against real nats-server processes.

mod common;

use std::time::Duration;

use herald_runtime::contracts::Storage;
use herald_runtime::{Action, ConnectConfig, HeraldClient, Provisioner};
use herald_test_server::NatsCluster;

use common::*;

#[tokio::test]
async fn apply_creates_then_is_idempotent_and_dry_run_shows_drift() {
    let server = server().await;
    let client = connect(&server, "ops").await;
    let first = Provisioner::new(client.clone(), TestCatalog::new().arc())
        .apply(false, false)
        .await
        .unwrap();
    let names: Vec<&str> = first.streams.iter().map(|s| s.stream.as_str()).collect();
    assert_eq!(names, ["USAGE", "ORCHESTRATOR", "DLQ"]);
    assert!(first.streams.iter().all(|s| s.action == Action::Create));

    let second = Provisioner::new(client.clone(), TestCatalog::new().arc())
        .apply(false, false)
        .await
        .unwrap();
    assert!(!second.has_drift(), "{second}");
    assert!(second.to_string().contains("nothing to change"));

    // Catalog drift: a safe change (duplicate window) and a destructive one (max_age lowered).
    let mut cat = TestCatalog::new();
    cat.streams[0].max_age = Duration::from_secs(3600);
    cat.streams[1].duplicate_window = Duration::from_secs(60);
    let prov = Provisioner::new(client.clone(), cat.arc());
    let dry = prov.apply(true, false).await.unwrap();
    assert!(dry.dry_run && dry.has_drift());
    match &dry.get("USAGE").unwrap().action {
        Action::Refused { changes, reason } => {
            assert_eq!(changes[0].field, "max_age");
            assert_eq!(changes[0].current, "1d");
            assert_eq!(changes[0].desired, "1h");
            assert!(reason.contains("deletes stored events"), "{reason}");
        }
        other => panic!("expected refusal, got {other:?}"),
    }
    match &dry.get("ORCHESTRATOR").unwrap().action {
        Action::Update(changes) => {
            assert_eq!(changes.len(), 1);
            assert_eq!(changes[0].field, "duplicate_window");
        }
        other => panic!("expected update, got {other:?}"),
    }
    // The dry run changed nothing on the server.
    let js = client.jetstream();
    let orch = js
        .get_stream("ORCHESTRATOR")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    assert_eq!(orch.duplicate_window, Duration::from_secs(120));

    // Without --force: the safe change applies, the destructive one is refused.
    let applied = prov.apply(false, false).await.unwrap();
    assert!(applied.has_refusals());
    let usage = js
        .get_stream("USAGE")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    assert_eq!(usage.max_age, Duration::from_secs(24 * 3600));
    let orch = js
        .get_stream("ORCHESTRATOR")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    assert_eq!(orch.duplicate_window, Duration::from_secs(60));

    // With --force it applies, and then the plan is clean.
    let forced = prov.apply(false, true).await.unwrap();
    assert!(matches!(
        forced.get("USAGE").unwrap().action,
        Action::Forced {
            recreated: false,
            ..
        }
    ));
    let usage = js
        .get_stream("USAGE")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    assert_eq!(usage.max_age, Duration::from_secs(3600));
    assert!(!prov.apply(true, false).await.unwrap().has_drift());

    // A storage change needs a recreate: refused, then forced.
    let mut cat = TestCatalog::new();
    cat.streams[0].max_age = Duration::from_secs(3600);
    cat.streams[1].duplicate_window = Duration::from_secs(60);
    cat.streams[1].storage = Storage::Memory;
    let prov = Provisioner::new(client.clone(), cat.arc());
    match &prov
        .apply(false, false)
        .await
        .unwrap()
        .get("ORCHESTRATOR")
        .unwrap()
        .action
    {
        Action::Refused { reason, .. } => assert!(reason.contains("storage"), "{reason}"),
        other => panic!("expected refusal, got {other:?}"),
    }
    let forced = prov.apply(false, true).await.unwrap();
    assert!(matches!(
        forced.get("ORCHESTRATOR").unwrap().action,
        Action::Forced {
            recreated: true,
            ..
        }
    ));

    // `streams ls` rows.
    let rows = prov.list().await.unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["DLQ", "ORCHESTRATOR", "USAGE"]);
    assert_eq!(rows[2].subjects, ["usage.metered.>"]);
}

#[tokio::test]
async fn harness_restart_keeps_port_and_store_and_kill9_recovers() {
    let mut server = server().await;
    let port = server.ports().client;
    let client = connect(&server, "ops").await;
    Provisioner::new(client.clone(), TestCatalog::new().arc())
        .apply(false, false)
        .await
        .unwrap();
    server.restart().await.unwrap();
    assert_eq!(server.ports().client, port);
    server.kill_9().unwrap();
    assert!(!server.is_running());
    server.start_again().await.unwrap();
    let c2 = connect(&server, "ops2").await;
    let names: Vec<String> = Provisioner::new(c2, TestCatalog::new().arc())
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["DLQ", "ORCHESTRATOR", "USAGE"]);
}

#[tokio::test]
async fn unreachable_server_fails_within_connect_timeout() {
    let port = herald_test_server::free_port().unwrap();
    let started = std::time::Instant::now();
    let err = HeraldClient::connect(
        ConnectConfig::default()
            .url(format!("nats://127.0.0.1:{port}"))
            .connect_timeout(Duration::from_secs(1)),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains(&port.to_string()), "{err}");
    // Bounded (generous margin; not a timing assertion on performance).
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn three_node_cluster_provisions_replicated_streams() {
    let cluster = NatsCluster::start().await.expect("cluster");
    let client = HeraldClient::connect(ConnectConfig::default().urls(cluster.urls()))
        .await
        .unwrap();
    let mut cat = TestCatalog::new();
    for s in cat.streams.iter_mut() {
        s.replicas = 3;
    }
    // Leader election may still be settling: retry the first apply a few times.
    let mut plan = None;
    for _ in 0..20 {
        match Provisioner::new(client.clone(), TestCatalog::new().arc())
            .apply(true, false)
            .await
        {
            Ok(p) => {
                plan = Some(p);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    assert!(plan.is_some(), "cluster JetStream never answered");
    let plan = Provisioner::new(client.clone(), cat.arc())
        .apply(false, false)
        .await
        .unwrap();
    assert_eq!(plan.get("USAGE").unwrap().action, Action::Create);
    let info = client
        .jetstream()
        .get_stream("USAGE")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(info.config.num_replicas, 3);
    assert_eq!(info.cluster.unwrap().replicas.len(), 2);
}
