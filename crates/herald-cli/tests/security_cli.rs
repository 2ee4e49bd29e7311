//! `herald auth generate` and the connection flags (nkey, user/password, token, TLS)
//! against real nats-server processes started by the test.

use std::path::{Path, PathBuf};
use std::process::Output;

use herald_test_server::testing::herald_command;
use herald_test_server::NatsServer;

fn herald(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = herald_command(env!("CARGO_BIN_EXE_herald"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run herald")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn start(args: &[&str]) -> NatsServer {
    NatsServer::start_with_args(args)
        .await
        .expect("nats-server must be installed (apt-get install nats-server)")
}

fn event_file(dir: &Path) -> PathBuf {
    let p = dir.join("processed.json");
    std::fs::write(
        &p,
        serde_json::json!({
            "event_id": "990e8400-e29b-41d4-a716-446655440099",
            "timestamp": "2024-01-15T10:29:58Z",
            "service_name": "ingestion-service",
            "tenant_id": "789e0123-e89b-12d3-a456-426614174000",
            "document_id": "aa0e8400-e29b-41d4-a716-446655440005",
            "status": "processed"
        })
        .to_string(),
    )
    .unwrap();
    p
}

#[tokio::test]
async fn auth_generate_then_services_connect_with_their_nkeys() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("auth");
    let o = herald(&["auth", "generate", "--out", out.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let tokens = out.join("tokens");
    let entries = std::fs::read_dir(&out)
        .unwrap()
        .chain(std::fs::read_dir(&tokens).unwrap());
    for entry in entries {
        let path = entry.unwrap().path();
        #[cfg(unix)]
        {
            // Secrets are the owner's alone: files 0600, the tokens directory 0700.
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            let want = if path.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(mode & 0o777, want, "{}", path.display());
        }
        if path.extension().is_some_and(|e| e == "nk") {
            let seed = std::fs::read_to_string(&path).unwrap();
            assert!(!stdout.contains(seed.trim()), "a seed was printed");
        }
    }
    // The catalog's USAGE stream reserves 10 GiB: do not depend on the machine's free disk.
    // (nats-server resolves `include` relative to the including file.)
    let conf = out.join("server.conf");
    std::fs::write(
        &conf,
        "include \"auth.conf\"\njetstream { max_file_store: 1TB }\n",
    )
    .unwrap();
    let server = start(&["-c", conf.to_str().unwrap()]).await;
    let url = server.url();
    let nk = |u: &str| out.join(format!("{u}.nk")).to_str().unwrap().to_string();

    let o = herald(
        &[
            "--server",
            &url,
            "--nkey",
            &nk("herald-admin"),
            "streams",
            "apply",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // A service may not provision.
    let o = herald(
        &[
            "--server",
            &url,
            "--nkey",
            &nk("billing-service"),
            "--connect-timeout",
            "3",
            "streams",
            "apply",
        ],
        &[],
    );
    // Exit 2 (a failed request), one line naming the refused stream. The server only
    // reports a denied JetStream request asynchronously, so the request times out.
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("JetStream request for stream ORCHESTRATOR failed"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");

    let ev = event_file(dir.path());
    let ev = ev.to_str().unwrap();
    let publish = |user: &str| {
        herald(
            &[
                "--server",
                &url,
                "--nkey",
                &nk(user),
                "publish",
                "--subject",
                "ingest.document.processed",
                "--service",
                user,
                // Not the catalog's refusal: the server's permissions are under test.
                "--adhoc",
                ev,
            ],
            &[],
        )
    };
    let o = publish("ingestion-service");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = publish("billing-service");
    // Exit 1 (the event was not published), naming the permission and the subject.
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "permission denied publishing to ingest.document.processed: \
             Permissions Violation for Publish to \"ingest.document.processed\""
        ),
        "{err}"
    );
    assert!(
        text(&o).to_lowercase().contains("permission denied"),
        "{}",
        text(&o)
    );
    // The nkey path may also come from the environment.
    let o = herald(
        &["--server", &url, "--format", "json", "streams", "ls"],
        &[("NATS_NKEY", &nk("herald-admin"))],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ingest = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "INGEST")
        .unwrap();
    assert_eq!(ingest["messages"], 1);

    // billing-service dead-letters the event with its own permissions (as its consumer would).
    let billing = herald_runtime::HeraldClient::connect(
        herald_runtime::ConnectConfig::default()
            .url(&url)
            .nkey_seed(
                herald_access::auth::read_secret(Path::new(&nk("billing-service"))).unwrap(),
            ),
    )
    .await
    .unwrap();
    herald_runtime::dlq::dead_letter(
        billing.jetstream(),
        herald_runtime::dlq::DeadLetter {
            subject: "ingest.document.processed",
            payload: std::fs::read(ev).unwrap().into(),
            headers: None,
            reason: "handler_rejected",
            error: "no price for this tenant",
            consumer: "billing-service--ingest",
            stream: "INGEST",
            stream_seq: 1,
            deliveries: 1,
        },
    )
    .await
    .expect("billing may dead-letter what it consumes");

    // herald dlq as the operator: ls, show, replay; a service may not.
    let op = nk("herald-operator");
    let o = herald(
        &[
            "--server",
            &url,
            "--nkey",
            &nk("billing-service"),
            "--connect-timeout",
            "3",
            "dlq",
            "ls",
        ],
        &[],
    );
    // Exit 2 (a failed request), one line naming the dead-letter queue.
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("error: dead-letter queue: "), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
    let o = herald(
        &[
            "--server", &url, "--nkey", &op, "--format", "json", "dlq", "ls",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["reason"], "handler_rejected");
    let seq = rows[0]["seq"].to_string();
    let o = herald(&["--server", &url, "--nkey", &op, "dlq", "show", &seq], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("no price for this tenant"),
        "{}",
        text(&o)
    );
    let o = herald(
        &[
            "--server", &url, "--nkey", &op, "dlq", "replay", "--seq", &seq,
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = herald(
        &[
            "--server", &url, "--nkey", &op, "--format", "json", "dlq", "ls",
        ],
        &[],
    );
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 0, "{rows}");
    let o = herald(
        &[
            "--server", &url, "--nkey", &op, "--format", "json", "streams", "ls",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ingest = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "INGEST")
        .unwrap();
    assert_eq!(
        ingest["messages"], 1,
        "the replay went to the consumer's replay subject, not back to its subject"
    );
    let replays = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "HERALD_REPLAY")
        .unwrap();
    assert_eq!(replays["messages"], 1, "the replay waits for its consumer");
    // The operator reads consumer lag too.
    let o = herald(&["--server", &url, "--nkey", &op, "lag"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[tokio::test]
async fn user_password_token_and_tls_flags() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&["--user", "ops", "--pass", "pw-from-file"]).await;
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "pw-from-file\n").unwrap();
    let url = server.url();
    let o = herald(
        &[
            "--server",
            &url,
            "--user",
            "ops",
            "--password-file",
            pw.to_str().unwrap(),
            "streams",
            "ls",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = herald(
        &[
            "--server",
            &url,
            "--user",
            "ops",
            "--connect-timeout",
            "2",
            "streams",
            "ls",
        ],
        &[("NATS_PASSWORD", "wrong")],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    drop(server);

    let server = start(&["--auth", "tok-123"]).await;
    let url = server.url();
    let o = herald(
        &["--server", &url, "streams", "ls"],
        &[("NATS_TOKEN", "tok-123")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let tok = dir.path().join("tok");
    std::fs::write(&tok, "tok-123").unwrap();
    let o = herald(
        &[
            "--server",
            &url,
            "--token-file",
            tok.to_str().unwrap(),
            "streams",
            "ls",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    drop(server);

    // Mutual TLS with certificates made now.
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let sk = KeyPair::generate().unwrap();
    let mut sp = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    sp.subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    let sc = sp.signed_by(&sk, &ca, &ca_key).unwrap();
    let ck = KeyPair::generate().unwrap();
    let cc = CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .signed_by(&ck, &ca, &ca_key)
        .unwrap();
    let w = |n: &str, s: String| {
        let p = dir.path().join(n);
        std::fs::write(&p, s).unwrap();
        p.to_str().unwrap().to_string()
    };
    let (ca_p, sc_p, sk_p, cc_p, ck_p) = (
        w("ca.pem", ca.pem()),
        w("s.pem", sc.pem()),
        w("sk.pem", sk.serialize_pem()),
        w("c.pem", cc.pem()),
        w("ck.pem", ck.serialize_pem()),
    );
    let conf = w(
        "tls.conf",
        format!("tls {{ cert_file: \"{sc_p}\", key_file: \"{sk_p}\", ca_file: \"{ca_p}\", verify: true }}\n"),
    );
    let server = start(&["-c", &conf]).await;
    let url = server.url();
    let o = herald(
        &[
            "--server",
            &url,
            "--tls-ca",
            &ca_p,
            "--tls-cert",
            &cc_p,
            "--tls-key",
            &ck_p,
            "streams",
            "ls",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = herald(
        &[
            "--server",
            &url,
            "--tls-ca",
            &ca_p,
            "--connect-timeout",
            "2",
            "streams",
            "ls",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
