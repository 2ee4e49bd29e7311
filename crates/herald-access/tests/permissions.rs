//! Issue 13 regression tests for the permissions `herald auth generate` derives: each
//! runs a real nats-server configured from the generated file and connects with the
//! generated nkeys, as a hostile service would.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use herald_access::auth::{self, SecretKind, ADMIN_USER, OPERATOR_USER};
use herald_contracts::Catalog;
use herald_runtime::consumer::watch_max_deliveries_of;
use herald_runtime::dlq::{DeadLetter, DlqFilter};
use herald_runtime::{
    ConnectConfig, Contracts, DedupeStore, Dlq, HeraldClient, Provisioner, Publish,
    PublishErrorKind, Publisher, PublisherConfig, Shutdown,
};
use herald_test_server::NatsServer;
use herald_watch::tail::{tail, TailStart};
use serde_json::json;

fn contracts() -> Arc<dyn Contracts> {
    Arc::new(Catalog::embedded().expect("embedded catalog"))
}

async fn start_with_conf(conf: &Path) -> NatsServer {
    let name = conf.file_name().unwrap().to_str().unwrap();
    let wrapper = conf.with_file_name(format!("{name}.test.conf"));
    std::fs::write(
        &wrapper,
        format!("include \"{name}\"\njetstream {{ max_file_store: 1TB }}\n"),
    )
    .unwrap();
    NatsServer::start_with_args(&["-c", wrapper.to_str().expect("utf-8 path")])
        .await
        .expect("nats-server must be installed for these tests (apt-get install nats-server)")
}

struct Env {
    _dir: tempfile::TempDir,
    g: auth::Generated,
    server: NatsServer,
}

impl Env {
    async fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let g = auth::generate(
            &Catalog::embedded().unwrap(),
            SecretKind::Nkey,
            dir.path(),
            "the embedded catalog",
        )
        .expect("generate");
        let server = start_with_conf(&g.server_conf).await;
        let env = Env {
            _dir: dir,
            g,
            server,
        };
        let plan = Provisioner::new(env.connect(ADMIN_USER).await, contracts())
            .apply(false, false)
            .await
            .expect("admin provisions");
        assert!(!plan.has_refusals());
        env
    }

    async fn connect(&self, user: &str) -> HeraldClient {
        let u = self.g.user(user).expect("generated user");
        let seed = auth::read_secret(&u.secret_file).expect("seed file");
        HeraldClient::connect(
            ConnectConfig::default()
                .url(self.server.url())
                .name(user)
                .nkey_seed(seed)
                .request_timeout(Duration::from_secs(2)),
        )
        .await
        .unwrap_or_else(|e| panic!("connect as {user}: {e}"))
    }
}

/// Sends a JetStream API request as `client` and expects the server to refuse it:
/// no reply, and a permission violation naming `subject`.
async fn refused_request(client: &HeraldClient, subject: &str, body: serde_json::Value) {
    let mark = client.permission_violation_mark();
    let r = client
        .nats()
        .request(subject.to_string(), body.to_string().into())
        .await;
    assert!(
        r.is_err(),
        "{subject} was answered: {:?}",
        r.map(|m| m.payload)
    );
    let v = client
        .permission_violation_since(mark)
        .unwrap_or_else(|| panic!("no permission violation for {subject}"));
    assert!(
        v.contains(&format!(
            "Permissions Violation for Publish to \"{subject}\""
        )),
        "{v}"
    );
}

async fn stream_exists(admin: &HeraldClient, name: &str) -> bool {
    admin.jetstream().get_stream(name).await.is_ok()
}

// ---- 7. Services cannot create streams ----

#[tokio::test]
async fn services_cannot_create_streams_and_use_the_bucket_streams_apply_made() {
    let env = Env::new().await;
    let admin = env.connect(ADMIN_USER).await;
    let chat = env.connect("chat-clients").await;
    let bucket = auth::dedupe_bucket("chat-clients--chat");
    // `streams apply` (the admin) made every consumer's bucket.
    assert!(stream_exists(&admin, &format!("KV_{bucket}")).await);
    // The probe: recreate "its" bucket's stream sourcing other streams. Refused.
    admin
        .jetstream()
        .delete_stream(format!("KV_{bucket}"))
        .await
        .unwrap();
    let subject = format!("$JS.API.STREAM.CREATE.KV_{bucket}");
    refused_request(
        &chat,
        &subject,
        json!({"name": format!("KV_{bucket}"), "subjects": [format!("$KV.{bucket}.>")],
               "sources": [{"name": "USAGE"}, {"name": "DLQ"}, {"name": "INGEST"}]}),
    )
    .await;
    assert!(!stream_exists(&admin, &format!("KV_{bucket}")).await);
    // Re-applied by the admin; the service gets and puts in it.
    Provisioner::new(admin.clone(), contracts())
        .apply(false, false)
        .await
        .unwrap();
    let store = DedupeStore::key_value(&chat, &bucket, Duration::from_secs(60))
        .await
        .expect("open own bucket");
    assert!(store.record("k").await.unwrap());
    assert!(store.seen("k").await.unwrap());
}

// ---- 9. Replies are private ----

#[tokio::test]
async fn no_service_can_read_another_users_replies() {
    let env = Env::new().await;
    let chat = env.connect("chat-clients").await;
    let operator = env.connect(OPERATOR_USER).await;
    let op_prefix = ConnectConfig::default()
        .nkey_seed(auth::read_secret(&env.g.user(OPERATOR_USER).unwrap().secret_file).unwrap())
        .inbox_prefix()
        .unwrap();
    for subject in ["_INBOX.>".to_string(), format!("{op_prefix}.>"), ">".into()] {
        let err = chat
            .subscribe_checked(&subject)
            .await
            .err()
            .unwrap_or_else(|| panic!("chat-clients may subscribe to {subject}"));
        assert!(
            err.starts_with(&format!("permission denied subscribing to {subject}: ")),
            "{err}"
        );
    }
    // The operator's own tools work on its own prefix.
    let entries = Dlq::new(operator)
        .list(&DlqFilter::default())
        .await
        .unwrap();
    assert!(entries.is_empty());
}

// ---- 10. Clients are not producers ----

#[tokio::test]
async fn a_client_cannot_publish_what_star_grants_backend_services() {
    let env = Env::new().await;
    let chat = env.connect("chat-clients").await;
    let p = Publisher::new(chat, contracts(), PublisherConfig::new("chat-clients"));
    let usage = json!({
        "event_id": uuid::Uuid::new_v4().to_string(),
        "timestamp": "2024-01-15T10:30:00Z",
        "service_name": "model-gateway",
        "user_id": "123e4567-e89b-12d3-a456-426614174000",
        "tenant_id": "789e0123-e89b-12d3-a456-426614174000",
        "event_type": "api_call",
        "resource_type": "requests",
        "quantity": 1,
        "cost": {"amount": 0.001, "currency": "EUR"}
    });
    let err = p
        .publish("usage.metered.api_call", &usage, Publish::build())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), PublishErrorKind::PermissionDenied, "{err}");
    let users = auth::plan(&Catalog::embedded().unwrap());
    let chat = users.iter().find(|u| u.name == "chat-clients").unwrap();
    let produced: Vec<&String> = chat
        .permissions
        .publish
        .iter()
        .filter(|s| !s.starts_with('$') && !s.starts_with("dlq."))
        .collect();
    assert!(produced.is_empty(), "chat-clients may publish {produced:?}");
    // Backend services still get `*` topics.
    let gw = users.iter().find(|u| u.name == "model-gateway").unwrap();
    assert!(gw.permissions.publish.contains("usage.metered.api_call"));
}

// ---- 11. Push consumers cannot inject ----

#[tokio::test]
async fn a_service_cannot_create_a_push_consumer() {
    let env = Env::new().await;
    let chat = env.connect("chat-clients").await;
    let push = json!({"stream_name": "REALTIME", "config": {
        "durable_name": "chat-clients--chat", "filter_subject": "realtime.push.chat_message",
        "deliver_subject": "herald.heartbeat.orchestrator", "ack_policy": "explicit"}});
    for subject in [
        "$JS.API.CONSUMER.CREATE.REALTIME.chat-clients--chat.realtime.push.chat_message",
        "$JS.API.CONSUMER.CREATE.REALTIME",
        "$JS.API.CONSUMER.DURABLE.CREATE.REALTIME.chat-clients--chat",
    ] {
        refused_request(&chat, subject, push.clone()).await;
    }
    // Its durable exists, made by `streams apply`, as a pull consumer.
    let admin = env.connect(ADMIN_USER).await;
    let s = admin.jetstream().get_stream("REALTIME").await.unwrap();
    let info = s.consumer_info("chat-clients--chat").await.unwrap();
    assert_eq!(info.config.deliver_subject, None);
}

// ---- 17. The max-deliveries backstop under generated credentials ----

#[tokio::test]
async fn the_backstop_runs_under_a_services_credentials_and_a_refusal_is_an_error() {
    let env = Env::new().await;
    let billing = env.connect("billing-service").await;
    let shutdown = Shutdown::new();
    let watcher = tokio::spawn(watch_max_deliveries_of(
        billing.clone(),
        "INGEST".into(),
        Some("billing-service--ingest".into()),
        shutdown.clone(),
    ));
    // An event whose five deliveries are all NAKed.
    let ingestion = env.connect("ingestion-service").await;
    let ev = ingest_event();
    Publisher::new(
        ingestion,
        contracts(),
        PublisherConfig::new("ingestion-service"),
    )
    .publish("ingest.document.processed", &ev, Publish::build())
    .await
    .unwrap();
    let stream = billing.jetstream().get_stream("INGEST").await.unwrap();
    let consumer = stream
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>("billing-service--ingest")
        .await
        .unwrap();
    for _ in 0..5 {
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .unwrap();
        let m = batch.next().await.expect("a delivery").unwrap();
        m.ack_with(async_nats::jetstream::AckKind::Nak(None))
            .await
            .unwrap();
    }
    // One more pull: the server finds the delivery limit reached and advises.
    let _ = consumer
        .fetch()
        .max_messages(1)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .unwrap()
        .next()
        .await;
    let operator = env.connect(OPERATOR_USER).await;
    let dlq = Dlq::new(operator);
    let mut entries = Vec::new();
    for _ in 0..200 {
        entries = dlq.list(&DlqFilter::default()).await.unwrap();
        if !entries.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.trigger();
    let copied = watcher.await.unwrap().expect("backstop subscribed");
    assert_eq!(copied, 1);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].reason, "max_deliveries");
    assert_eq!(entries[0].consumer, "billing-service--ingest");

    // Another service's advisories, or all of a stream's, are refused loudly.
    let err = watch_max_deliveries_of(billing, "INGEST".into(), None, Shutdown::new())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "permission denied subscribing to $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.INGEST.*"
        ),
        "{err}"
    );
}

// ---- 18. Operators can see alerts ----

#[tokio::test]
async fn the_operator_tails_alerts_and_a_service_gets_permission_denied() {
    let env = Env::new().await;
    let watch = env.connect("herald-watch").await;
    watch
        .jetstream()
        .publish("alerts.service_down", b"{\"probe\":1}".to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let operator = env.connect(OPERATOR_USER).await;
    let events = tail(&operator, contracts(), "alerts.>", TailStart::All)
        .await
        .expect("the operator tails alerts");
    let mut events = std::pin::pin!(events);
    let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an alert")
        .unwrap();
    assert_eq!(ev.subject, "alerts.service_down");
    let billing = env.connect("billing-service").await;
    let err = match tail(&billing, contracts(), "alerts.>", TailStart::All).await {
        Ok(_) => panic!("billing-service may tail alerts"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.starts_with("cannot tail alerts.>: permission denied: "),
        "{err}"
    );
    assert!(!err.contains("timed out"), "{err}");
}

// ---- 8. A forged dead letter under a service's credentials ----

#[tokio::test]
async fn a_services_forged_dead_letter_is_refused_by_the_operators_replay() {
    let env = Env::new().await;
    let analytics = env.connect("analytics-service").await;
    // analytics consumes ingest.>, so it may write dlq.ingest.*: it makes one up.
    herald_runtime::dlq::dead_letter(
        analytics.jetstream(),
        DeadLetter {
            subject: "ingest.document.processed",
            payload: br#"{"event_id":"forged"}"#.to_vec().into(),
            headers: None,
            reason: "handler_rejected",
            error: "made up",
            consumer: "analytics-service--ingest",
            stream: "INGEST",
            stream_seq: 1,
            deliveries: 1,
        },
    )
    .await
    .expect("analytics may write dead letters for what it consumes");
    let operator = env.connect(OPERATOR_USER).await;
    let report = Dlq::new(operator.clone())
        .replay_report(&DlqFilter::default(), false)
        .await
        .unwrap();
    assert!(report.replayed.is_empty());
    assert_eq!(
        report.refused,
        vec![(
            1,
            "dead letter 1 refused: INGEST holds no message at sequence 1 (never stored, or expired by the stream's retention)".to_string()
        )]
    );
    let admin = env.connect(ADMIN_USER).await;
    let mut s = admin.jetstream().get_stream("INGEST").await.unwrap();
    assert_eq!(s.info().await.unwrap().state.messages, 0);
}

// ---- 6. A replay reaches only the consumer that dead-lettered the event ----

fn ingest_event() -> serde_json::Value {
    json!({
        "event_id": uuid::Uuid::new_v4().to_string(),
        "timestamp": "2024-01-15T10:29:58Z",
        "service_name": "ingestion-service",
        "tenant_id": "789e0123-e89b-12d3-a456-426614174000",
        "user_id": "123e4567-e89b-12d3-a456-426614174000",
        "document_id": "aa0e8400-e29b-41d4-a716-446655440005",
        "status": "processed",
        "source_uri": "s3://uploads/contract.pdf",
        "content_type": "application/pdf",
        "size_bytes": 482133,
        "processing_time_ms": 2380
    })
}

/// Runs the catalog consumer `service`--`name` under the service's own credentials;
/// its handler rejects the first `rejections` deliveries and counts every call.
async fn run_catalog_consumer(
    env: &Env,
    service: &str,
    rejections: u32,
    calls: Arc<std::sync::atomic::AtomicU32>,
    shutdown: Shutdown,
) -> tokio::task::JoinHandle<herald_runtime::StatsSnapshot> {
    use std::sync::atomic::Ordering;
    let spec = contracts()
        .consumers()
        .into_iter()
        .find(|c| c.service == service && c.name == "ingest")
        .expect("declared consumer");
    let consumer = herald_runtime::Consumer::new(
        env.connect(service).await,
        contracts(),
        herald_runtime::ConsumerConfig::from_def(&spec).shutdown_grace(Duration::from_secs(2)),
    )
    .unwrap();
    tokio::spawn(async move {
        consumer
            .run(
                move |_d| {
                    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                    futures::future::ready(if n <= rejections {
                        Err(herald_runtime::HandlerError::Reject("not yet".into()))
                    } else {
                        Ok(())
                    })
                },
                shutdown,
            )
            .await
            .expect("consumer ran")
    })
}

#[tokio::test]
async fn a_replay_reaches_only_the_failing_service_and_no_service_can_send_one() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let env = Env::new().await;
    let shutdown = Shutdown::new();
    let billing_calls = Arc::new(AtomicU32::new(0));
    let analytics_calls = Arc::new(AtomicU32::new(0));
    let billing = run_catalog_consumer(
        &env,
        "billing-service",
        0,
        billing_calls.clone(),
        shutdown.clone(),
    )
    .await;
    let analytics = run_catalog_consumer(
        &env,
        "analytics-service",
        1,
        analytics_calls.clone(),
        shutdown.clone(),
    )
    .await;
    Publisher::new(
        env.connect("ingestion-service").await,
        contracts(),
        PublisherConfig::new("ingestion-service"),
    )
    .publish(
        "ingest.document.processed",
        &ingest_event(),
        Publish::build(),
    )
    .await
    .unwrap();
    let dlq = Dlq::new(env.connect(OPERATOR_USER).await);
    let mut entries = Vec::new();
    for _ in 0..200 {
        entries = dlq.list(&DlqFilter::default()).await.unwrap();
        if !entries.is_empty() && billing_calls.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].consumer, "analytics-service--ingest");
    let replayed = dlq.replay_all(&DlqFilter::default(), false).await.unwrap();
    assert_eq!(replayed.len(), 1);
    for _ in 0..200 {
        if analytics_calls.load(Ordering::SeqCst) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.trigger();
    let (billing, analytics) = (billing.await.unwrap(), analytics.await.unwrap());
    assert_eq!(
        analytics_calls.load(Ordering::SeqCst),
        2,
        "analytics got its replay"
    );
    assert_eq!(analytics.acked, 1);
    assert_eq!(billing_calls.load(Ordering::SeqCst), 1, "billing ran twice");
    assert_eq!((billing.acked, billing.duplicates), (1, 0));

    // A service cannot send a replay, to itself or to another consumer...
    let rogue = env.connect("analytics-service").await;
    let mark = rogue.permission_violation_mark();
    rogue
        .nats()
        .publish(
            "herald.replay.billing-service--ingest",
            ingest_event().to_string().into(),
        )
        .await
        .unwrap();
    rogue.nats().flush().await.unwrap();
    let mut violation = None;
    for _ in 0..100 {
        violation = rogue.permission_violation_since(mark);
        if violation.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let v = violation.expect("publishing a replay is a permission violation");
    assert!(
        v.contains(
            "Permissions Violation for Publish to \"herald.replay.billing-service--ingest\""
        ),
        "{v}"
    );
    // ... nor read another consumer's replays.
    refused_request(
        &rogue,
        "$JS.API.CONSUMER.MSG.NEXT.HERALD_REPLAY.billing-service--ingest--replay",
        json!({"batch": 1}),
    )
    .await;
    let admin = env.connect(ADMIN_USER).await;
    let mut s = admin.jetstream().get_stream("HERALD_REPLAY").await.unwrap();
    assert_eq!(
        s.info().await.unwrap().state.messages,
        1,
        "only the operator's replay"
    );
}
