//! Least-privilege NATS users derived from the catalog (`herald auth generate`).
//!
//! A platform that bills tenants from `usage.metered` events must not let one
//! service publish as another. The catalog already says who produces and who
//! consumes what, so the server's `authorization` block is *derived* from it
//! rather than written by hand (and drifting):
//!
//! - **one user per service**, allowed to publish only the concrete subjects of
//!   the topics it produces, plus exactly the JetStream API subjects its own
//!   durable consumers need (stream info, create/info/next of *its* durables,
//!   acks on them), the dead-letter subjects of what it consumes, and get/put on
//!   its own duplicate-store bucket (which `herald streams apply` creates). It subscribes only to inboxes (replies, pulled
//!   messages, publish acks). Creating a consumer goes through the extended
//!   `$JS.API.CONSUMER.CREATE.<stream>.<durable>.<filter>` subject, so the
//!   permission pins the filter too: a service cannot point its durable at a
//!   topic it does not consume.
//! - **`herald-operator`** for the dead-letter tools (`herald dlq ls/show/replay`,
//!   `herald lag`, the max-deliveries backstop): reads every stream, manages the
//!   `DLQ` stream's messages and ephemeral consumers, republishes to the
//!   catalog's subjects. It cannot create, change or delete streams.
//! - **`herald-admin`** for provisioning (`herald streams apply`): the whole
//!   JetStream API. Keep its secret off service hosts.
//!
//! Secrets are generated here and only ever written to files with mode 0600;
//! nothing prints them. With [`SecretKind::Nkey`] (the default) the server
//! configuration holds public keys only, so the generated `auth.conf` is not a
//! secret; with [`SecretKind::Password`] it holds the passwords and is written
//! 0600 as well.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use herald_contracts::Catalog;

/// User name of the dead-letter / lag operator.
pub const OPERATOR_USER: &str = "herald-operator";
/// User name of the provisioning administrator.
pub const ADMIN_USER: &str = "herald-admin";
/// The catalog service that runs `herald watch` (gets read-only monitoring rights).
pub const MONITOR_SERVICE: &str = "herald-watch";
/// File name of the generated server configuration inside the output directory.
pub const SERVER_CONF: &str = "auth.conf";

/// How users prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecretKind {
    /// NKey pairs: the server stores public keys only; each seed goes to `<user>.nk`.
    #[default]
    Nkey,
    /// Random passwords (256 bits, hex): stored in the server conf and `<user>.password`.
    Password,
}

/// What a user is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A platform service from the catalog.
    Service,
    /// The dead-letter / lag operator.
    Operator,
    /// Stream provisioning.
    Admin,
}

/// The subjects one user may publish and subscribe to (allow lists; everything else is denied).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Permissions {
    /// Publish allow list.
    pub publish: BTreeSet<String>,
    /// Subscribe allow list.
    pub subscribe: BTreeSet<String>,
}

/// One user of the generated configuration, before secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    /// User (and connection) name: the service name for services.
    pub name: String,
    /// What it is for.
    pub role: Role,
    /// What it may do.
    pub permissions: Permissions,
}

/// Name of the key-value bucket a consumer's durable duplicate store uses
/// (`herald consume --dedupe kv` and the fault tests use this name).
pub fn dedupe_bucket(durable: &str) -> String {
    herald_runtime::dedupe::bucket_for(durable)
}

/// The inbox subscription of user `name` as [`plan`] writes it; [`generate`] replaces the
/// name by the user's public nkey for nkey users (the identity herald's client derives
/// its prefix from). No user can subscribe to another user's replies.
pub fn inbox_subject(name: &str) -> String {
    format!("{}.>", herald_runtime::connection::inbox_prefix_for(name))
}

fn add(set: &mut BTreeSet<String>, s: impl Into<String>) {
    set.insert(s.into());
}

/// Read-only JetStream API: account, stream and consumer info (lag, monitoring).
fn read_only_api(p: &mut BTreeSet<String>) {
    for s in [
        "$JS.API.INFO",
        "$JS.API.STREAM.NAMES",
        "$JS.API.STREAM.LIST",
        "$JS.API.STREAM.INFO.*",
        "$JS.API.CONSUMER.NAMES.*",
        "$JS.API.CONSUMER.LIST.*",
        "$JS.API.CONSUMER.INFO.*.*",
    ] {
        add(p, s);
    }
}

/// The users (services, operator, admin) and their permissions, derived from `catalog`.
///
/// Pure: no secrets, no files. Services come in catalog order, then the operator and admin.
pub fn plan(catalog: &Catalog) -> Vec<UserSpec> {
    let mut users = Vec::new();
    for service in catalog.services() {
        let name = service.name.clone();
        let mut p = Permissions::default();
        // Replies to requests, pulled messages and publish acks arrive on this user's own
        // inbox prefix (herald's client uses it; see `inbox_subject`).
        add(&mut p.subscribe, inbox_subject(&name));
        for topic in catalog.topics() {
            if !catalog.producers_of(topic).contains(&name.as_str()) {
                continue;
            }
            let concrete: Vec<&str> = catalog
                .subjects()
                .iter()
                .filter(|s| s.topic == topic.name)
                .map(|s| s.name.as_str())
                .collect();
            if concrete.is_empty() {
                for s in &topic.subjects {
                    add(&mut p.publish, s.clone());
                }
            } else {
                for s in concrete {
                    // A service heartbeats on its own subject only: it cannot fake
                    // another service's liveness.
                    let heartbeat = format!("{}*", herald_runtime::heartbeat::HEARTBEAT_PREFIX);
                    if s == heartbeat {
                        add(
                            &mut p.publish,
                            format!("{}{name}", herald_runtime::heartbeat::HEARTBEAT_PREFIX),
                        );
                    } else {
                        add(&mut p.publish, s);
                    }
                }
            }
            // The publisher asks which stream captures a subject to tell "no stream"
            // from "JetStream restarting".
            add(&mut p.publish, "$JS.API.STREAM.NAMES");
        }
        for c in catalog.consumers().iter().filter(|c| c.service == name) {
            let Some(stream) = catalog.streams().into_iter().find(|s| {
                s.subjects
                    .iter()
                    .any(|p| herald_contracts::subject::within(&c.filter, p))
            }) else {
                continue;
            };
            let (x, d) = (stream.name.as_str(), c.durable_name());
            add(&mut p.publish, format!("$JS.API.STREAM.INFO.{x}"));
            // No consumer creation: `herald streams apply` creates the durable as a pull
            // consumer. A service allowed to create it could make it a push consumer
            // delivering to any subject (the server does not check `deliver_subject`
            // against the creator's permissions).
            add(&mut p.publish, format!("$JS.API.CONSUMER.INFO.{x}.{d}"));
            add(&mut p.publish, format!("$JS.API.CONSUMER.MSG.NEXT.{x}.{d}"));
            add(&mut p.publish, format!("$JS.ACK.{x}.{d}.>"));
            // Its replays: read through its own replay durable (created by `streams
            // apply`); only the operator may publish on the replay subjects.
            let (r, rd) = (
                herald_runtime::REPLAY_STREAM,
                herald_runtime::replay::replay_durable(&d),
            );
            add(&mut p.publish, format!("$JS.API.STREAM.INFO.{r}"));
            add(&mut p.publish, format!("$JS.API.CONSUMER.INFO.{r}.{rd}"));
            add(
                &mut p.publish,
                format!("$JS.API.CONSUMER.MSG.NEXT.{r}.{rd}"),
            );
            add(&mut p.publish, format!("$JS.ACK.{r}.{rd}.>"));
            // The max-deliveries backstop (`herald consume`): the advisories of its own
            // durable, and the stream's messages by sequence (also how undecodable
            // messages are read, see herald_runtime::poison).
            add(
                &mut p.subscribe,
                format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{x}.{d}"),
            );
            add(&mut p.publish, format!("$JS.API.STREAM.MSG.GET.{x}"));
            // Dead letters of what it consumes, and nothing else.
            add(
                &mut p.publish,
                format!("{}.{}", catalog.dlq().subject_prefix, c.filter),
            );
            // Its own durable duplicate store: get and put only. `herald streams apply`
            // (admin) creates the bucket; a service that could create "its" bucket's
            // stream could also make it source any other stream and read it back.
            let b = dedupe_bucket(&d);
            add(&mut p.publish, format!("$JS.API.STREAM.INFO.KV_{b}"));
            add(&mut p.publish, format!("$JS.API.STREAM.MSG.GET.KV_{b}"));
            add(&mut p.publish, format!("$JS.API.DIRECT.GET.KV_{b}.>"));
            add(&mut p.publish, format!("$KV.{b}.>"));
        }
        if name == MONITOR_SERVICE {
            // `herald watch`: consumer lag and the age of the oldest pending message
            // (read by sequence from any stream), heartbeats and dead letters as they pass.
            read_only_api(&mut p.publish);
            add(&mut p.publish, "$JS.API.STREAM.MSG.GET.*");
            add(&mut p.subscribe, "$JS.EVENT.ADVISORY.>");
            add(&mut p.subscribe, "herald.heartbeat.>");
            add(
                &mut p.subscribe,
                format!("{}.>", catalog.dlq().subject_prefix),
            );
        }
        users.push(UserSpec {
            name,
            role: Role::Service,
            permissions: p,
        });
    }

    let dlq = &catalog.dlq().stream.name;
    let mut op = Permissions::default();
    read_only_api(&mut op.publish);
    for s in [
        format!("$JS.API.STREAM.MSG.GET.{dlq}"),
        format!("$JS.API.DIRECT.GET.{dlq}"),
        format!("$JS.API.DIRECT.GET.{dlq}.>"),
        format!("$JS.API.STREAM.MSG.DELETE.{dlq}"),
        format!("$JS.API.CONSUMER.CREATE.{dlq}"),
        format!("$JS.API.CONSUMER.CREATE.{dlq}.>"),
        format!("$JS.API.CONSUMER.DELETE.{dlq}.>"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{dlq}.>"),
        format!("$JS.ACK.{dlq}.>"),
        format!("$JS.FC.{dlq}.>"),
        // The max-deliveries backstop reads the original by sequence and dead-letters it.
        "$JS.API.STREAM.MSG.GET.*".to_string(),
        format!("{}.>", catalog.dlq().subject_prefix),
    ] {
        add(&mut op.publish, s);
    }
    // Replay sends an event to the replay subject of the consumer that dead-lettered it
    // (entries naming no consumer go back to their original subjects).
    add(
        &mut op.publish,
        format!("{}.>", herald_runtime::REPLAY_PREFIX),
    );
    for t in catalog.topics() {
        for s in &t.subjects {
            add(&mut op.publish, s.clone());
        }
    }
    add(&mut op.subscribe, inbox_subject(OPERATOR_USER));
    add(&mut op.subscribe, "$JS.EVENT.ADVISORY.>");
    // The operator reads herald's alerts (`herald tail 'alerts.>'`): an ordered consumer
    // on the alerts stream, and the subjects themselves.
    for t in catalog
        .topics()
        .iter()
        .filter(|t| t.name.starts_with("alerts"))
    {
        for s in &t.subjects {
            add(&mut op.subscribe, s.clone());
        }
        if let Some(stream) = catalog.streams().into_iter().find(|st| {
            t.subjects.iter().any(|s| {
                st.subjects
                    .iter()
                    .any(|p| herald_contracts::subject::within(s, p))
            })
        }) {
            let x = &stream.name;
            for s in [
                format!("$JS.API.CONSUMER.CREATE.{x}"),
                format!("$JS.API.CONSUMER.CREATE.{x}.>"),
                format!("$JS.API.CONSUMER.DELETE.{x}.>"),
                format!("$JS.API.CONSUMER.MSG.NEXT.{x}.>"),
                format!("$JS.ACK.{x}.>"),
                format!("$JS.FC.{x}.>"),
            ] {
                add(&mut op.publish, s);
            }
        }
    }
    users.push(UserSpec {
        name: OPERATOR_USER.into(),
        role: Role::Operator,
        permissions: op,
    });

    let mut admin = Permissions::default();
    add(&mut admin.publish, "$JS.API.>");
    add(&mut admin.subscribe, inbox_subject(ADMIN_USER));
    users.push(UserSpec {
        name: ADMIN_USER.into(),
        role: Role::Admin,
        permissions: admin,
    });
    users
}

/// Why generating failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Writing a file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Generating a key pair failed.
    #[error("cannot generate an nkey: {0}")]
    Key(String),
}

/// One user with its generated secret, as written.
#[derive(Debug, Clone)]
pub struct GeneratedUser {
    /// The user and its permissions.
    pub spec: UserSpec,
    /// The file holding its secret (mode 0600): `<name>.nk` (seed) or `<name>.password`.
    pub secret_file: PathBuf,
    /// The public nkey (`U...`) for [`SecretKind::Nkey`]; not a secret.
    pub public_key: Option<String>,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The server configuration (`authorization { ... }`), usable with `nats-server -c`
    /// or `include`d from a larger configuration.
    pub server_conf: PathBuf,
    /// Every user.
    pub users: Vec<GeneratedUser>,
    /// Secret kind used.
    pub kind: SecretKind,
}

impl Generated {
    /// The user named `name`.
    pub fn user(&self, name: &str) -> Option<&GeneratedUser> {
        self.users.iter().find(|u| u.spec.name == name)
    }
}

/// Writes `contents` to `path` created with mode 0600 (never readable by others, even briefly).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), AuthError> {
    let io = |source| AuthError::Io {
        path: path.to_path_buf(),
        source,
    };
    let _ = std::fs::remove_file(path);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(contents).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
}

/// Reads a secret file written by [`generate`] (seed, password or token), trimmed.
pub fn read_secret(path: &Path) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(path)?.trim().to_string())
}

fn random_password() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Quotes a string for the nats-server configuration format (double quotes; `$` inside
/// quotes is literal, so JetStream subjects are not taken for variables).
fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(items: &BTreeSet<String>) -> String {
    items.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ")
}

/// Renders the `authorization` block: nkey users by public key, password users with
/// the password from `passwords`.
fn render(users: &[GeneratedUser], passwords: &[(String, String)], source: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Generated by `herald auth generate` from {source}. Do not edit: regenerate.\n\
         # One user per service: publish only what it produces, consume only its own durables."
    );
    out.push_str("authorization {\n  users = [\n");
    for u in users {
        let p = &u.spec.permissions;
        let _ = writeln!(out, "    # {} ({:?})", u.spec.name, u.spec.role);
        let ident = match &u.public_key {
            Some(pk) => format!("nkey: {}", q(pk)),
            None => {
                let pw = passwords
                    .iter()
                    .find(|(n, _)| n == &u.spec.name)
                    .map(|(_, p)| p.as_str())
                    .unwrap_or_default();
                format!("user: {}, password: {}", q(&u.spec.name), q(pw))
            }
        };
        let _ = writeln!(
            out,
            "    {{ {ident},\n      permissions: {{\n        publish: {{ allow: [{}] }}\n        subscribe: {{ allow: [{}] }}\n      }}\n    }}",
            list(&p.publish),
            list(&p.subscribe)
        );
    }
    out.push_str("  ]\n}\n");
    out
}

/// Generates secrets for every user of [`plan`] and writes, into `out_dir` (created
/// when missing): `auth.conf` and one secret file per user, all mode 0600.
/// Existing files are replaced (new secrets each run).
pub fn generate(
    catalog: &Catalog,
    kind: SecretKind,
    out_dir: &Path,
    source: &str,
) -> Result<Generated, AuthError> {
    std::fs::create_dir_all(out_dir).map_err(|source| AuthError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let mut users = Vec::new();
    let mut passwords = Vec::new();
    for mut spec in plan(catalog) {
        let (secret_file, public_key) = match kind {
            SecretKind::Nkey => {
                let kp = nkeys::KeyPair::new_user();
                let by_name = inbox_subject(&spec.name);
                if spec.permissions.subscribe.remove(&by_name) {
                    spec.permissions
                        .subscribe
                        .insert(inbox_subject(&kp.public_key()));
                }
                let seed = kp.seed().map_err(|e| AuthError::Key(e.to_string()))?;
                let path = out_dir.join(format!("{}.nk", spec.name));
                write_private(&path, format!("{seed}\n").as_bytes())?;
                (path, Some(kp.public_key()))
            }
            SecretKind::Password => {
                let pw = random_password();
                let path = out_dir.join(format!("{}.password", spec.name));
                write_private(&path, format!("{pw}\n").as_bytes())?;
                passwords.push((spec.name.clone(), pw));
                (path, None)
            }
        };
        users.push(GeneratedUser {
            spec,
            secret_file,
            public_key,
        });
    }
    let conf = render(&users, &passwords, source);
    let server_conf = out_dir.join(SERVER_CONF);
    write_private(&server_conf, conf.as_bytes())?;
    Ok(Generated {
        server_conf,
        users,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::embedded().expect("embedded catalog")
    }

    fn user<'a>(users: &'a [UserSpec], name: &str) -> &'a UserSpec {
        users.iter().find(|u| u.name == name).expect(name)
    }

    #[test]
    fn services_publish_only_what_they_produce() {
        let users = plan(&catalog());
        let billing = user(&users, "billing-service");
        assert!(!billing
            .permissions
            .publish
            .contains("ingest.document.processed"));
        assert!(billing
            .permissions
            .publish
            .contains("usage.metered.api_call"));
        let ingestion = user(&users, "ingestion-service");
        assert!(ingestion
            .permissions
            .publish
            .contains("ingest.document.processed"));
        assert!(!ingestion
            .permissions
            .publish
            .contains("orchestrator.step.started"));
        // Heartbeats: its own subject, not the wildcard.
        assert!(ingestion
            .permissions
            .publish
            .contains("herald.heartbeat.ingestion-service"));
        assert!(!ingestion.permissions.publish.iter().any(
            |s| s.starts_with("herald.heartbeat.") && s != "herald.heartbeat.ingestion-service"
        ));
        // Nobody but the admin may touch the stream management API.
        for u in &users {
            let creates_streams = u.permissions.publish.iter().any(|s| {
                s == "$JS.API.>" || (s.starts_with("$JS.API.STREAM.CREATE.") && !s.contains("KV_"))
            });
            assert_eq!(creates_streams, u.role == Role::Admin, "{}", u.name);
        }
    }

    #[test]
    fn services_consume_only_their_own_durables() {
        let users = plan(&catalog());
        let billing = user(&users, "billing-service");
        let p = &billing.permissions.publish;
        assert!(!p.iter().any(|s| s.starts_with("$JS.API.CONSUMER.CREATE")));
        assert!(p.contains("$JS.API.CONSUMER.MSG.NEXT.INGEST.billing-service--ingest"));
        assert!(p.contains("$JS.ACK.INGEST.billing-service--ingest.>"));
        assert!(p.contains("dlq.ingest.document.processed"));
        assert!(!p.iter().any(|s| s.contains("analytics-service")));
        assert!(!p.iter().any(|s| s.contains("ORCHESTRATOR")));
        assert_eq!(
            billing.permissions.subscribe.iter().collect::<Vec<_>>(),
            vec![
                "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.INGEST.billing-service--ingest",
                "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.USAGE.billing-service--usage",
                "_INBOX_billing-service.>"
            ]
        );
    }

    #[test]
    fn config_quotes_subjects_and_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let g = generate(&catalog(), SecretKind::Nkey, dir.path(), "test").unwrap();
        let conf = std::fs::read_to_string(&g.server_conf).unwrap();
        assert!(conf.contains("\"$JS.API.INFO\""));
        assert!(!conf.contains(" $JS"));
        for u in &g.users {
            let seed = read_secret(&u.secret_file).unwrap();
            assert!(seed.starts_with("SU"));
            assert!(!conf.contains(&seed), "seed of {} in the conf", u.spec.name);
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&u.secret_file)
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600);
            }
        }
        let g = generate(&catalog(), SecretKind::Password, dir.path(), "test").unwrap();
        let conf = std::fs::read_to_string(&g.server_conf).unwrap();
        let pw = read_secret(&g.user("billing-service").unwrap().secret_file).unwrap();
        assert_eq!(pw.len(), 64);
        assert!(conf.contains(&pw));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&g.server_conf)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
