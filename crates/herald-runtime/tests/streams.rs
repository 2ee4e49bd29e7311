//! Stream provisioning and the server harness, against real nats-server processes.

mod common;

use std::time::Duration;

use herald_runtime::{Action, ConnectConfig, ConnectError, HeraldClient, Provisioner};
use herald_test_server::NatsCluster;

use common::*;

/// The names of the streams `streams ls` shows that are not duplicate-store buckets
/// (`streams apply` also creates every catalog consumer's `KV_herald-dedupe-*`).
fn event_streams(names: &[&str]) -> Vec<String> {
    names
        .iter()
        .filter(|n| !n.starts_with("KV_"))
        .map(|n| n.to_string())
        .collect()
}

/// The shipped catalog's streams, as `streams ls` sorts them.
const SORTED_STREAMS: [&str; 8] = [
    "ALERTS",
    "DLQ",
    "HERALD_HEARTBEAT",
    "HERALD_REPLAY",
    "INGEST",
    "ORCHESTRATOR",
    "REALTIME",
    "USAGE",
];

#[tokio::test]
async fn apply_creates_then_is_idempotent_and_dry_run_shows_drift() {
    let server = server().await;
    let client = connect(&server, "ops").await;
    let first = Provisioner::new(client.clone(), contracts())
        .apply(false, false)
        .await
        .unwrap();
    let names: Vec<&str> = first.streams.iter().map(|s| s.stream.as_str()).collect();
    assert_eq!(
        names,
        [
            "INGEST",
            "ORCHESTRATOR",
            "USAGE",
            "REALTIME",
            "ALERTS",
            "HERALD_HEARTBEAT",
            "DLQ",
            "HERALD_REPLAY"
        ]
    );
    assert!(first.streams.iter().all(|s| s.action == Action::Create));

    let second = Provisioner::new(client.clone(), contracts())
        .apply(false, false)
        .await
        .unwrap();
    assert!(!second.has_drift(), "{second}");
    assert!(second.to_string().contains("nothing to change"));

    // Catalog drift: a safe change (duplicate window) and a destructive one (max_age lowered).
    let drifted = |doc: &mut toml::Table| {
        stream_table(doc, "USAGE").insert("max_age".into(), "1h".into());
        stream_table(doc, "ORCHESTRATOR").insert("duplicate_window".into(), "1m".into());
    };
    let prov = Provisioner::new(client.clone(), contracts_with(drifted));
    let dry = prov.apply(true, false).await.unwrap();
    assert!(dry.dry_run && dry.has_drift());
    match &dry.get("USAGE").unwrap().action {
        Action::Refused { changes, reason } => {
            assert_eq!(changes[0].field, "max_age");
            assert_eq!(changes[0].current, "30d");
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
    assert_eq!(usage.max_age, Duration::from_secs(30 * 24 * 3600));
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
    let prov = Provisioner::new(
        client.clone(),
        contracts_with(|doc| {
            drifted(doc);
            stream_table(doc, "ORCHESTRATOR").insert("storage".into(), "memory".into());
        }),
    );
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
    assert_eq!(event_streams(&names), SORTED_STREAMS);
    let usage = rows.iter().find(|r| r.name == "USAGE").unwrap();
    assert_eq!(usage.subjects, ["usage.metered.>"]);
}

#[tokio::test]
async fn harness_restart_keeps_port_and_store_and_kill9_recovers() {
    let mut server = server().await;
    let port = server.ports().client;
    let client = connect(&server, "ops").await;
    Provisioner::new(client.clone(), contracts())
        .apply(false, false)
        .await
        .unwrap();
    server.restart().await.unwrap();
    assert_eq!(server.ports().client, port);
    server.kill_9().unwrap();
    assert!(!server.is_running());
    server.start_again().await.unwrap();
    let c2 = connect(&server, "ops2").await;
    let names: Vec<String> = Provisioner::new(c2, contracts())
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(event_streams(&names), SORTED_STREAMS);
}

#[tokio::test]
async fn unreachable_server_is_a_connect_error_naming_the_address_and_timeout() {
    // Held bound and closed for the whole test: nothing can start listening on it.
    let port = ClosedPort::bind();
    let err = tokio::time::timeout(
        Duration::from_secs(60),
        HeraldClient::connect(
            ConnectConfig::default()
                .url(port.url())
                .connect_timeout(Duration::from_secs(1)),
        ),
    )
    .await
    .expect("connect gives up on its own")
    .unwrap_err();
    match &err {
        ConnectError::Unreachable { urls, timeout, .. } => {
            assert_eq!(urls, &port.url());
            assert_eq!(*timeout, Duration::from_secs(1));
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(err.to_string().contains(&port.port().to_string()), "{err}");
}

#[tokio::test]
async fn three_node_cluster_provisions_replicated_streams() {
    let cluster = NatsCluster::start().await.expect("cluster");
    let client = HeraldClient::connect(ConnectConfig::default().urls(cluster.urls()))
        .await
        .unwrap();
    let replicated = contracts_with(|doc| {
        for s in streams(doc) {
            s.insert("replicas".into(), 3.into());
        }
    });
    // Leader election may still be settling: wait until a dry run answers.
    eventually(
        "cluster JetStream to answer",
        Duration::from_secs(30),
        || async {
            Provisioner::new(client.clone(), contracts())
                .apply(true, false)
                .await
                .ok()
        },
    )
    .await;
    let plan = Provisioner::new(client.clone(), replicated)
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
