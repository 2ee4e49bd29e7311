//! Security against real nats-server processes: the authorization block that
//! `herald auth generate` derives from the catalog (each service can do its own
//! job and nothing else; the operator runs the DLQ tools), TLS with a CA and
//! mutual TLS with throwaway certificates made at run time, and every
//! authentication method the connection supports.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::ConnectErrorKind;
use herald_access::auth::{self, SecretKind, ADMIN_USER, OPERATOR_USER};
use herald_contracts::Catalog;
use herald_runtime::dlq::DlqFilter;
use herald_runtime::{
    ConnectConfig, ConnectError, Consumer, ConsumerConfig, Contracts, DedupeStore, Dlq,
    HandlerError, HeraldClient, Provisioner, Publish, PublishError, PublishErrorKind, Publisher,
    PublisherConfig, Shutdown,
};
use herald_test_server::NatsServer;
use serde_json::{json, Value};

fn contracts() -> Arc<dyn Contracts> {
    Arc::new(Catalog::embedded().expect("embedded catalog"))
}

/// Waits for the server's "Permissions Violation" naming `subject` on `client`'s
/// connection. The server reports a denied request asynchronously and the request
/// itself only times out, so this is what tells a refused permission apart from a
/// timeout or a missing stream.
async fn assert_denied(client: &HeraldClient, subject: &str, what: &str) {
    let text = common::eventually(
        &format!("a permission violation for {subject} ({what})"),
        Duration::from_secs(10),
        || async { client.permission_violation_for(subject) },
    )
    .await;
    assert!(text.contains("Permissions Violation"), "{what}: {text}");
}

/// Asserts that connecting failed because the server refused the credentials.
fn assert_auth_refused(r: Result<HeraldClient, ConnectError>, what: &str) {
    match r {
        Err(ConnectError::Unreachable { source, .. }) => assert_eq!(
            source.kind(),
            ConnectErrorKind::AuthorizationViolation,
            "{what}: {source}"
        ),
        Err(other) => panic!("{what}: expected an authorization violation, got {other}"),
        Ok(_) => panic!("{what}: connected"),
    }
}

/// Asserts that connecting failed in the TLS handshake, for the reason in `words`.
/// `words` lists the accepted refusals: the TLS alert a server sends depends on
/// the Go it was built with (2.9's `BadCertificate`, newer `CertificateRequired`).
fn assert_tls_refused(r: Result<HeraldClient, ConnectError>, words: &[&str], what: &str) {
    match r {
        Err(ConnectError::Unreachable { source, .. }) => {
            let text = source.to_string();
            assert!(words.iter().any(|w| text.contains(w)), "{what}: {text}")
        }
        Err(other) => panic!("{what}: expected a TLS error, got {other}"),
        Ok(_) => panic!("{what}: connected"),
    }
}

fn ingest_event(status: &str) -> Value {
    let mut e = json!({
        "event_id": uuid::Uuid::new_v4().to_string(),
        "timestamp": "2024-01-15T10:29:58Z",
        "service_name": "ingestion-service",
        "tenant_id": "789e0123-e89b-12d3-a456-426614174000",
        "user_id": "123e4567-e89b-12d3-a456-426614174000",
        "document_id": "aa0e8400-e29b-41d4-a716-446655440005",
        "status": status,
        "source_uri": "s3://uploads/contract.pdf",
        "content_type": "application/pdf",
        "size_bytes": 482133,
        "processing_time_ms": 2380
    });
    if status == "failed" {
        e["error"] = json!({"code": "x", "message": "y", "retryable": false});
    }
    e
}

/// Starts a server on `conf`, with a JetStream storage limit that does not depend on the
/// machine's free disk (the catalog's `USAGE` stream reserves 10 GiB; by default a server
/// offers 75% of the free disk, which a busy build machine may not have).
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

/// Connects as `user` with the nkey seed `herald auth generate` wrote for it.
async fn connect_as(server: &NatsServer, g: &auth::Generated, user: &str) -> HeraldClient {
    let u = g.user(user).expect("generated user");
    let seed = auth::read_secret(&u.secret_file).expect("seed file");
    HeraldClient::connect(
        ConnectConfig::default()
            .url(server.url())
            .name(user)
            .nkey_seed(seed)
            .request_timeout(Duration::from_secs(3)),
    )
    .await
    .unwrap_or_else(|e| panic!("connect as {user}: {e}"))
}

struct Env {
    _dir: tempfile::TempDir,
    g: auth::Generated,
    server: NatsServer,
}

async fn generated_env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::embedded().unwrap();
    let g = auth::generate(
        &catalog,
        SecretKind::Nkey,
        dir.path(),
        "the embedded catalog",
    )
    .expect("generate");
    let server = start_with_conf(&g.server_conf).await;
    // The admin provisions the catalog's streams (and nobody else could).
    let admin = connect_as(&server, &g, ADMIN_USER).await;
    let plan = Provisioner::new(admin, contracts())
        .apply(false, false)
        .await
        .expect("admin provisions streams");
    assert!(!plan.has_refusals());
    Env {
        _dir: dir,
        g,
        server,
    }
}

async fn stream_messages(client: &HeraldClient, stream: &str) -> u64 {
    let mut s = client.jetstream().get_stream(stream).await.unwrap();
    s.info().await.unwrap().state.messages
}

/// Runs `consumer` until `want` events were settled; returns the handled ids.
async fn consume_n(consumer: Consumer, want: u64, reject: bool) -> Vec<String> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stats = consumer.stats();
    let shutdown = Shutdown::new();
    let s2 = shutdown.clone();
    let seen2 = seen.clone();
    let task = tokio::spawn(async move {
        consumer
            .run(
                move |d| {
                    let seen = seen2.clone();
                    async move {
                        seen.lock().unwrap().push(d.value["event_id"].to_string());
                        if reject {
                            Err(HandlerError::Reject("billing cannot price this".into()))
                        } else {
                            Ok(())
                        }
                    }
                },
                s2,
            )
            .await
    });
    common::wait_until("the events settled", Duration::from_secs(30), || {
        let st = stats.snapshot();
        st.acked + st.dead_lettered + st.duplicates >= want
    })
    .await;
    shutdown.trigger();
    task.await.unwrap().expect("consumer ran");
    let v = seen.lock().unwrap().clone();
    v
}

#[tokio::test]
async fn generated_permissions_let_each_service_do_its_job_and_nothing_else() {
    let env = generated_env().await;
    let server = &env.server;

    // ingestion-service publishes what it produces.
    let ingestion = connect_as(server, &env.g, "ingestion-service").await;
    let p = Publisher::new(
        ingestion.clone(),
        contracts(),
        PublisherConfig::new("ingestion-service"),
    );
    let ev = ingest_event("processed");
    let r = p
        .publish("ingest.document.processed", &ev, Publish::build())
        .await
        .expect("ingestion-service may publish ingest.document.processed");
    assert_eq!((r.stream.as_str(), r.duplicate), ("INGEST", false));

    // billing-service may not: the error says so, at once, without retrying (no
    // retry is recorded in a recorder of this test's own).
    let recorder = herald_runtime::metrics::builder().unwrap().build_recorder();
    let scrape = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    let billing = connect_as(server, &env.g, "billing-service").await;
    let bp = Publisher::new(
        billing.clone(),
        contracts(),
        PublisherConfig::new("billing-service"),
    );
    let err = bp
        .publish(
            "ingest.document.processed",
            &ingest_event("processed"),
            Publish::build(),
        )
        .await
        .expect_err("billing-service must not publish ingest events");
    assert_eq!(err.kind(), PublishErrorKind::PermissionDenied, "{err}");
    assert!(
        err.to_string().contains("ingest.document.processed"),
        "{err}"
    );
    // The recorder saw the publish (one failed send), and no retry of it.
    let text = scrape.render();
    let failed = text.lines().find(|l| {
        l.starts_with(herald_runtime::metrics::names::SENT_MESSAGES)
            && l.contains("service=\"billing-service\"")
            && l.contains("outcome=\"failed\"")
    });
    assert!(
        failed.is_some_and(|l| l.ends_with(" 1")),
        "one failed send:\n{text}"
    );
    // The publisher pre-registers its retry series at zero: it must still be zero.
    let retried = text.lines().any(|l| {
        l.starts_with(herald_runtime::metrics::names::PUBLISH_RETRIES)
            && l.contains("service=\"billing-service\"")
            && !l.ends_with(" 0")
    });
    assert!(!retried, "a denied publish was retried:\n{text}");
    let admin = connect_as(server, &env.g, ADMIN_USER).await;
    assert_eq!(stream_messages(&admin, "INGEST").await, 1);

    // billing-service consumes its own durable on ingest.document.processed.
    let cfg = ConsumerConfig::new("billing-service", "ingest", "ingest.document.processed")
        .dedupe(DedupeStore::memory(100));
    let c = Consumer::new(billing.clone(), contracts(), cfg).unwrap();
    let seen = consume_n(c, 1, false).await;
    assert_eq!(seen, vec![ev["event_id"].to_string()]);

    // ... but not a topic it does not consume, nor another service's durable.
    let cfg = ConsumerConfig::new("billing-service", "steps", "orchestrator.step.>");
    let c = Consumer::new(billing.clone(), contracts(), cfg).unwrap();
    c.ensure().await.expect_err("billing consuming steps");
    assert_denied(
        &billing,
        "$JS.API.STREAM.INFO.ORCHESTRATOR",
        "billing consuming steps",
    )
    .await;
    let cfg = ConsumerConfig::new("analytics-service", "ingest", "ingest.>");
    let c = Consumer::new(billing.clone(), contracts(), cfg).unwrap();
    c.ensure()
        .await
        .expect_err("billing using analytics' durable");
    assert_denied(
        &billing,
        "$JS.API.CONSUMER.CREATE.INGEST.analytics-service--ingest.ingest.>",
        "billing using analytics' durable",
    )
    .await;
    // Its own durable name with a wider filter is refused too (the filter is in the subject).
    let cfg = ConsumerConfig::new("billing-service", "ingest", "ingest.>")
        .durable("billing-service--ingest2");
    let c = Consumer::new(billing.clone(), contracts(), cfg).unwrap();
    c.ensure().await.expect_err("billing widening its filter");
    assert_denied(
        &billing,
        "$JS.API.CONSUMER.CREATE.INGEST.billing-service--ingest2.ingest.>",
        "billing widening its filter",
    )
    .await;

    // A durable duplicate store in its own bucket works under its permissions.
    let bucket = auth::dedupe_bucket("billing-service--ingest");
    let store = DedupeStore::key_value(&billing, &bucket, Duration::from_secs(600))
        .await
        .expect("own KV bucket");
    assert!(store.record("k1").await.unwrap());
    assert!(store.seen("k1").await.unwrap());
    let e = DedupeStore::key_value(
        &billing,
        "herald-dedupe-analytics-service--ingest",
        Duration::from_secs(600),
    )
    .await
    .expect_err("another service's bucket");
    assert!(e.to_string().contains("create bucket"), "{e}");
    assert_denied(
        &billing,
        "$JS.API.STREAM.INFO.KV_herald-dedupe-analytics-service--ingest",
        "another service's bucket",
    )
    .await;
}

#[tokio::test]
async fn dead_letters_flow_under_least_privilege_and_the_operator_replays_them() {
    let env = generated_env().await;
    let server = &env.server;
    let ingestion = connect_as(server, &env.g, "ingestion-service").await;
    let p = Publisher::new(
        ingestion,
        contracts(),
        PublisherConfig::new("ingestion-service"),
    );
    let ev = ingest_event("processed");
    p.publish("ingest.document.processed", &ev, Publish::build())
        .await
        .unwrap();

    // billing rejects it: the consumer dead-letters it with billing's own permissions.
    let billing = connect_as(server, &env.g, "billing-service").await;
    let cfg = ConsumerConfig::new("billing-service", "ingest", "ingest.document.processed");
    let c = Consumer::new(billing.clone(), contracts(), cfg).unwrap();
    let stats = c.stats();
    consume_n(c, 1, true).await;
    assert_eq!(stats.snapshot().dead_lettered, 1);

    // A service cannot read the DLQ.
    Dlq::new(billing.clone())
        .list(&DlqFilter::default())
        .await
        .expect_err("a service reading the DLQ");
    assert_denied(
        &billing,
        "$JS.API.STREAM.INFO.DLQ",
        "a service reading the DLQ",
    )
    .await;

    // The operator lists, shows and replays it.
    let op = connect_as(server, &env.g, OPERATOR_USER).await;
    let dlq = Dlq::new(op.clone());
    let entries = dlq
        .list(&DlqFilter::default())
        .await
        .expect("operator lists");
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(
        (e.subject.as_str(), e.reason.as_str(), e.consumer.as_str()),
        (
            "ingest.document.processed",
            "handler_rejected",
            "billing-service--ingest"
        )
    );
    let shown = dlq.show(e.seq).await.expect("operator shows");
    let payload: Value = serde_json::from_slice(&shown.payload).unwrap();
    assert_eq!(payload["event_id"], ev["event_id"]);
    let r = dlq.replay(e.seq, false).await.expect("operator replays");
    assert_eq!(r.subject, "ingest.document.processed");
    assert_eq!(r.consumer, "billing-service--ingest");
    assert!(dlq.list(&DlqFilter::default()).await.unwrap().is_empty());
    // Back to billing alone: on its replay subject, not on INGEST.
    assert_eq!(stream_messages(&op, "INGEST").await, 1);
    assert_eq!(stream_messages(&op, "HERALD_REPLAY").await, 1);
    // The operator cannot change streams.
    let Err(_) = op.jetstream().delete_stream("INGEST").await else {
        panic!("the operator deleted a stream");
    };

    assert_denied(
        &op,
        "$JS.API.STREAM.DELETE.INGEST",
        "operator deleting a stream",
    )
    .await;
    assert_eq!(stream_messages(&op, "INGEST").await, 1);
}

#[tokio::test]
async fn password_secrets_work_too() {
    let dir = tempfile::tempdir().unwrap();
    let g = auth::generate(
        &Catalog::embedded().unwrap(),
        SecretKind::Password,
        dir.path(),
        "test",
    )
    .unwrap();
    let server = start_with_conf(&g.server_conf).await;
    let pw = auth::read_secret(&g.user("orchestrator").unwrap().secret_file).unwrap();
    let ok = HeraldClient::connect(
        ConnectConfig::default()
            .url(server.url())
            .user_password("orchestrator", pw),
    )
    .await;
    ok.expect("the generated password connects");
    let bad = HeraldClient::connect(
        ConnectConfig::default()
            .url(server.url())
            .user_password("orchestrator", "guess")
            .connect_timeout(Duration::from_secs(2)),
    )
    .await;
    assert_auth_refused(bad, "a guessed password");
}

// ------------------------------------------------------------------ TLS

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate.
    fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "herald test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();

        let srv_key = KeyPair::generate().unwrap();
        let mut srv = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        srv.subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::V4(
                std::net::Ipv4Addr::LOCALHOST,
            )));
        let srv = srv.signed_by(&srv_key, &ca, &ca_key).unwrap();

        let cli_key = KeyPair::generate().unwrap();
        let mut cli = CertificateParams::new(Vec::<String>::new()).unwrap();
        cli.distinguished_name
            .push(DnType::CommonName, "billing-service");
        cli.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cli = cli.signed_by(&cli_key, &ca, &ca_key).unwrap();

        let w = |name: &str, pem: String| {
            auth::write_private(&dir.path().join(name), pem.as_bytes()).unwrap()
        };
        w("ca.pem", ca.pem());
        w("server.pem", srv.pem());
        w("server-key.pem", srv_key.serialize_pem());
        w("client.pem", cli.pem());
        w("client-key.pem", cli_key.serialize_pem());
        Pki { dir }
    }

    fn server_conf(&self, verify: bool) -> PathBuf {
        let conf = format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: {verify}\n  timeout: 5\n}}\n",
            self.path("server.pem").display(),
            self.path("server-key.pem").display(),
            self.path("ca.pem").display(),
        );
        let p = self.path(if verify { "mtls.conf" } else { "tls.conf" });
        std::fs::write(&p, conf).unwrap();
        p
    }
}

async fn publish_one(client: HeraldClient) {
    Provisioner::new(client.clone(), contracts())
        .apply(false, false)
        .await
        .expect("provision over TLS");
    let p = Publisher::new(
        client,
        contracts(),
        PublisherConfig::new("ingestion-service"),
    );
    let r = p
        .publish(
            "ingest.document.processed",
            &ingest_event("processed"),
            Publish::build(),
        )
        .await
        .expect("publish over TLS");
    assert_eq!(r.sequence, 1);
}

#[tokio::test]
async fn tls_with_a_ca_and_with_client_certificates() {
    let pki = Pki::new();

    let server = start_with_conf(&pki.server_conf(false)).await;
    let client = HeraldClient::connect(
        ConnectConfig::default()
            .url(server.url())
            .tls_ca(pki.path("ca.pem")),
    )
    .await
    .expect("TLS with the CA");
    publish_one(client).await;
    // Without trusting the CA the handshake fails.
    let untrusted = HeraldClient::connect(
        ConnectConfig::default()
            .url(server.url())
            .tls_ca(pki.path("client.pem"))
            .connect_timeout(Duration::from_secs(2)),
    )
    .await;
    assert_tls_refused(
        untrusted,
        &["invalid peer certificate: UnknownIssuer"],
        "a server certificate from an untrusted CA",
    );
    drop(server);

    let server = start_with_conf(&pki.server_conf(true)).await;
    let client = HeraldClient::connect(
        ConnectConfig::default()
            .url(server.url())
            .tls_ca(pki.path("ca.pem"))
            .tls_client_cert(pki.path("client.pem"), pki.path("client-key.pem")),
    )
    .await
    .expect("mutual TLS");
    publish_one(client).await;
    // verify: true refuses a client without a certificate.
    let anonymous = HeraldClient::connect(
        ConnectConfig::default()
            .url(server.url())
            .tls_ca(pki.path("ca.pem"))
            .connect_timeout(Duration::from_secs(2)),
    )
    .await;
    assert_tls_refused(
        anonymous,
        &["BadCertificate", "CertificateRequired"],
        "a client without a certificate under verify: true",
    );
}

// --------------------------------------------------------- authentication

async fn assert_auth(server: &NatsServer, good: ConnectConfig, bad: ConnectConfig) {
    let c = HeraldClient::connect(good.url(server.url()))
        .await
        .expect("right credentials connect");
    c.nats().flush().await.unwrap();
    let e = HeraldClient::connect(
        bad.url(server.url())
            .connect_timeout(Duration::from_secs(2)),
    )
    .await;
    assert_auth_refused(e, "wrong credentials");
}

#[tokio::test]
async fn user_password_token_and_nkey_authentication() {
    let server = NatsServer::start_with_args(&["--user", "svc", "--pass", "s3cret"])
        .await
        .unwrap();
    assert_auth(
        &server,
        ConnectConfig::default().user_password("svc", "s3cret"),
        ConnectConfig::default().user_password("svc", "nope"),
    )
    .await;
    drop(server);

    let server = NatsServer::start_with_args(&["--auth", "t0ken"])
        .await
        .unwrap();
    assert_auth(
        &server,
        ConnectConfig::default().token("t0ken"),
        ConnectConfig::default().token("other"),
    )
    .await;
    drop(server);

    let dir = tempfile::tempdir().unwrap();
    let kp = nkeys::KeyPair::new_user();
    let other = nkeys::KeyPair::new_user();
    let conf = dir.path().join("nkey.conf");
    std::fs::write(
        &conf,
        format!(
            "authorization {{ users = [ {{ nkey: \"{}\" }} ] }}\n",
            kp.public_key()
        ),
    )
    .unwrap();
    let server = start_with_conf(&conf).await;
    assert_auth(
        &server,
        ConnectConfig::default().nkey_seed(kp.seed().unwrap()),
        ConnectConfig::default().nkey_seed(other.seed().unwrap()),
    )
    .await;
}

/// Operator mode (decentralized JWT auth) with a `.creds` file, all keys and JWTs
/// minted here: operator -> account (JetStream enabled) -> user.
#[tokio::test]
async fn creds_file_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let creds = jwt::Creds::mint(dir.path());
    let server = start_with_conf(&creds.server_conf).await;
    let c = HeraldClient::connect(
        ConnectConfig::default()
            .url(server.url())
            .creds_file(&creds.user_creds),
    )
    .await
    .expect("connect with creds");
    publish_one(c).await;
    let e = HeraldClient::connect(
        ConnectConfig::default()
            .url(server.url())
            .creds_file(&creds.stranger_creds)
            .connect_timeout(Duration::from_secs(2)),
    )
    .await;
    assert_auth_refused(e, "a user of an unknown account");
}

/// Just enough NATS JWT minting for a test (Ed25519 over base64url header.claims).
mod jwt {
    use std::path::{Path, PathBuf};

    use base64::Engine as _;
    use serde_json::json;

    fn b64(data: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
    }

    fn encode(claims: serde_json::Value, signer: &nkeys::KeyPair) -> String {
        let header = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
        let mut claims = claims;
        // jti: a hash of the claims, as the reference implementation does (any unique id works).
        claims["jti"] = json!(uuid::Uuid::new_v4().simple().to_string().to_uppercase());
        claims["iat"] = json!(chrono::Utc::now().timestamp());
        claims["iss"] = json!(signer.public_key());
        let body = b64(claims.to_string().as_bytes());
        let input = format!("{header}.{body}");
        let sig = signer.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64(&sig))
    }

    fn creds_file(jwt: &str, seed: &str) -> String {
        format!(
            "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        )
    }

    pub struct Creds {
        pub server_conf: PathBuf,
        pub user_creds: PathBuf,
        pub stranger_creds: PathBuf,
    }

    impl Creds {
        pub fn mint(dir: &Path) -> Creds {
            let operator = nkeys::KeyPair::new_operator();
            let account = nkeys::KeyPair::new_account();
            let user = nkeys::KeyPair::new_user();
            let op_jwt = encode(
                json!({"sub": operator.public_key(), "name": "herald-test",
                       "nats": {"type": "operator", "version": 2}}),
                &operator,
            );
            let acc_jwt = encode(
                json!({"sub": account.public_key(), "name": "PLATFORM",
                       "nats": {"type": "account", "version": 2,
                                "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1,
                                           "exports": -1, "wildcards": true, "conn": -1,
                                           "leaf": -1, "mem_storage": -1, "disk_storage": -1,
                                           "streams": -1, "consumer": -1}}}),
                &operator,
            );
            let user_jwt = encode(
                json!({"sub": user.public_key(), "name": "ingestion-service",
                       "nats": {"type": "user", "version": 2, "subs": -1, "data": -1,
                                "payload": -1}}),
                &account,
            );
            // A user signed by an account the server does not know.
            let rogue_account = nkeys::KeyPair::new_account();
            let stranger = nkeys::KeyPair::new_user();
            let stranger_jwt = encode(
                json!({"sub": stranger.public_key(), "name": "stranger",
                       "nats": {"type": "user", "version": 2, "subs": -1, "data": -1,
                                "payload": -1}}),
                &rogue_account,
            );
            // JetStream needs a system account.
            let system = nkeys::KeyPair::new_account();
            let sys_jwt = encode(
                json!({"sub": system.public_key(), "name": "SYS",
                       "nats": {"type": "account", "version": 2,
                                "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1,
                                           "exports": -1, "wildcards": true, "conn": -1,
                                           "leaf": -1}}}),
                &operator,
            );
            let conf = format!(
                "operator: {op_jwt}\nsystem_account: {sys}\nresolver: MEMORY\n\
                 resolver_preload: {{\n  {acc}: {acc_jwt}\n  {sys}: {sys_jwt}\n}}\n",
                acc = account.public_key(),
                sys = system.public_key(),
            );
            let server_conf = dir.join("operator.conf");
            std::fs::write(&server_conf, conf).unwrap();
            let user_creds = dir.join("ingestion.creds");
            herald_access::auth::write_private(
                &user_creds,
                creds_file(&user_jwt, &user.seed().unwrap()).as_bytes(),
            )
            .unwrap();
            let stranger_creds = dir.join("stranger.creds");
            herald_access::auth::write_private(
                &stranger_creds,
                creds_file(&stranger_jwt, &stranger.seed().unwrap()).as_bytes(),
            )
            .unwrap();
            Creds {
                server_conf,
                user_creds,
                stranger_creds,
            }
        }
    }
}

// ------------------------------------------------------------ hardened inputs

#[path = "../../herald-runtime/tests/common/mod.rs"]
mod common;

/// A shipped usage event padded to about `bytes`.
fn padded_usage_event(bytes: usize) -> Value {
    let mut e = common::usage_event(&uuid::Uuid::new_v4().to_string());
    e["metadata"] = json!({ "pad": "x".repeat(bytes) });
    e
}

#[tokio::test]
async fn oversized_events_are_refused_at_publish_naming_both_sizes() {
    // The server's max_payload (4 KiB here) is below the stream's max_msg_size.
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("small.conf");
    std::fs::write(&conf, "max_payload: 4096\n").unwrap();
    let server = start_with_conf(&conf).await;
    let client = HeraldClient::connect(ConnectConfig::default().url(server.url()))
        .await
        .unwrap();
    let catalog = common::contracts();
    Provisioner::new(client.clone(), catalog.clone())
        .apply(false, false)
        .await
        .unwrap();
    let p = Publisher::new(
        client.clone(),
        catalog,
        PublisherConfig::new("model-gateway"),
    );
    let err = p
        .publish(
            "usage.metered.api_call",
            &padded_usage_event(10_000),
            Publish::build(),
        )
        .await
        .expect_err("over max_payload");
    assert_eq!(err.kind(), PublishErrorKind::TooLarge);
    let PublishError::TooLarge { size, limit, .. } = &err else {
        unreachable!()
    };
    assert!(*size > 10_000, "{err}");
    assert_eq!(*limit, 4096, "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&size.to_string()) && text.contains("server max_payload 4096"),
        "{text}"
    );
    // Still connected and able to publish a normal event.
    p.publish(
        "usage.metered.api_call",
        &padded_usage_event(10),
        Publish::build(),
    )
    .await
    .expect("small event after a refused one");
    drop(server);

    // The stream's max_msg_size (8 KiB) below the server's default 1 MiB.
    let server = NatsServer::start().await.unwrap();
    let client = HeraldClient::connect(ConnectConfig::default().url(server.url()))
        .await
        .unwrap();
    let catalog = common::contracts_with(|doc| {
        common::stream_table(doc, "USAGE").insert("max_msg_size".into(), 8192.into());
    });
    Provisioner::new(client.clone(), catalog.clone())
        .apply(false, false)
        .await
        .unwrap();
    let p = Publisher::new(
        client.clone(),
        catalog,
        PublisherConfig::new("model-gateway"),
    );
    let err = p
        .publish(
            "usage.metered.api_call",
            &padded_usage_event(20_000),
            Publish::build(),
        )
        .await
        .expect_err("over max_msg_size");
    let text = err.to_string();
    assert_eq!(err.kind(), PublishErrorKind::TooLarge, "{text}");
    assert!(
        text.contains("over the limit of 8192 bytes")
            && text.contains("stream USAGE max_msg_size 8192")
            && text.contains("server max_payload 1048576"),
        "{text}"
    );
    let mut s = client.jetstream().get_stream("USAGE").await.unwrap();
    assert_eq!(s.info().await.unwrap().state.messages, 0);
}
