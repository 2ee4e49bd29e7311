//! Streams from the catalog: plan, drift detection, idempotent apply.
//!
//! [`Provisioner::apply`] compares each stream the catalog wants (one per topic
//! family, plus `DLQ` on `dlq.>` and `HERALD_REPLAY` on `herald.replay.>`) with the server's current configuration and
//! yields a [`Plan`]: create, unchanged, update (with the field differences) or
//! refused (with the reason). A change the server cannot make in place (storage
//! type) or one that would lose data (lowering `max_age` or `max_bytes`,
//! dropping subjects) is refused unless `force`. With `dry_run` nothing is
//! changed: the plan *is* the drift report. Applying twice changes nothing the
//! second time, and the plan says so.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use futures::TryStreamExt;

use crate::connection::HeraldClient;
use crate::contracts::{dlq_stream, Contracts, Discard, Storage, StreamSpec};

/// Why provisioning could not talk to the server.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A JetStream API request failed (JetStream disabled, timeout ...).
    #[error("JetStream request for stream {stream} failed: {detail}")]
    Api {
        /// Stream concerned.
        stream: String,
        /// Error text.
        detail: String,
    },
}

/// One field that differs between the server and the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Field name as in `catalog.toml` (`max_age`, `subjects` ...).
    pub field: &'static str,
    /// The server's value.
    pub current: String,
    /// The catalog's value.
    pub desired: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} -> {}", self.field, self.current, self.desired)
    }
}

/// What apply does (or, in a dry run, would do) to one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The stream does not exist yet.
    Create,
    /// Server and catalog agree.
    Unchanged,
    /// Safe in-place update.
    Update(Vec<Change>),
    /// Destructive change applied because of `force` (`recreated`: deleted and created again).
    Forced {
        /// The differences.
        changes: Vec<Change>,
        /// Why it needed force.
        reason: String,
        /// The stream was deleted and recreated (storage change).
        recreated: bool,
    },
    /// Destructive change refused (pass `--force`).
    Refused {
        /// The differences.
        changes: Vec<Change>,
        /// Why it is refused.
        reason: String,
    },
}

/// Plan for one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPlan {
    /// Stream name.
    pub stream: String,
    /// The action.
    pub action: Action,
}

/// The result of [`Provisioner::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Nothing was changed on the server.
    pub dry_run: bool,
    /// One entry per desired stream, in catalog order (`DLQ` last).
    pub streams: Vec<StreamPlan>,
    /// Every catalog consumer's durable (pull) consumer: (name, created now). Services'
    /// credentials may not create consumers (a push consumer could deliver anywhere).
    pub durables: Vec<(String, bool)>,
    /// Every catalog consumer's duplicate-store bucket: (name, created now).
    pub buckets: Vec<(String, bool)>,
}

impl Plan {
    /// Whether anything differs between the server and the catalog.
    pub fn has_drift(&self) -> bool {
        self.streams.iter().any(|s| s.action != Action::Unchanged)
    }

    /// Whether some change was refused.
    pub fn has_refusals(&self) -> bool {
        self.streams
            .iter()
            .any(|s| matches!(s.action, Action::Refused { .. }))
    }

    /// The plan of `stream`.
    pub fn get(&self, stream: &str) -> Option<&StreamPlan> {
        self.streams.iter().find(|s| s.stream == stream)
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb =
            |done: &'static str, would: &'static str| if self.dry_run { would } else { done };
        for s in &self.streams {
            match &s.action {
                Action::Create => {
                    writeln!(f, "{:<12} {}", s.stream, verb("created", "would create"))?
                }
                Action::Unchanged => writeln!(f, "{:<12} unchanged", s.stream)?,
                Action::Update(ch) => {
                    writeln!(f, "{:<12} {}", s.stream, verb("updated", "would update"))?;
                    for c in ch {
                        writeln!(f, "    {c}")?;
                    }
                }
                Action::Forced {
                    changes,
                    reason,
                    recreated,
                } => {
                    let what = if *recreated {
                        verb("recreated (forced)", "would recreate (forced)")
                    } else {
                        verb("updated (forced)", "would update (forced)")
                    };
                    writeln!(f, "{:<12} {what}: {reason}", s.stream)?;
                    for c in changes {
                        writeln!(f, "    {c}")?;
                    }
                }
                Action::Refused { changes, reason } => {
                    writeln!(f, "{:<12} REFUSED: {reason} (use --force)", s.stream)?;
                    for c in changes {
                        writeln!(f, "    {c}")?;
                    }
                }
            }
        }
        if !self.has_drift() {
            writeln!(
                f,
                "all {} streams up to date; nothing to change",
                self.streams.len()
            )?;
        }
        Ok(())
    }
}

/// One row of `herald streams ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    /// Name.
    pub name: String,
    /// Subjects captured.
    pub subjects: Vec<String>,
    /// Messages stored.
    pub messages: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// Consumers.
    pub consumers: usize,
    /// First sequence.
    pub first_seq: u64,
    /// Last sequence.
    pub last_seq: u64,
}

/// Provisions the catalog's streams on one server.
pub struct Provisioner {
    client: HeraldClient,
    contracts: Arc<dyn Contracts>,
}

impl fmt::Debug for Provisioner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provisioner").finish_non_exhaustive()
    }
}

fn dur(d: Duration) -> String {
    if d.is_zero() {
        return "unlimited".into();
    }
    let s = d.as_secs();
    if s.is_multiple_of(86400) {
        format!("{}d", s / 86400)
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{:?}", d)
    }
}

fn storage(s: Storage) -> StorageType {
    match s {
        Storage::File => StorageType::File,
        Storage::Memory => StorageType::Memory,
    }
}

fn discard(d: Discard) -> DiscardPolicy {
    match d {
        Discard::Old => DiscardPolicy::Old,
        Discard::New => DiscardPolicy::New,
    }
}

/// The JetStream config for a stream definition (herald always uses limits retention).
pub fn stream_config(d: &StreamSpec) -> stream::Config {
    stream::Config {
        name: d.name.clone(),
        description: d.description.clone(),
        subjects: d.subjects.clone(),
        storage: storage(d.storage),
        retention: RetentionPolicy::Limits,
        max_age: d.max_age,
        duplicate_window: d.duplicate_window,
        num_replicas: d.replicas.max(1),
        max_message_size: d.max_msg_size,
        max_bytes: d.max_bytes,
        discard: discard(d.discard),
        max_messages: -1,
        max_messages_per_subject: -1,
        max_consumers: -1,
        ..Default::default()
    }
}

/// Differences between the server's config and the desired one, plus why (if) they are destructive.
fn diff(
    cur: &stream::Config,
    want: &stream::Config,
    clustered: bool,
) -> (Vec<Change>, Vec<String>, bool) {
    let mut ch = Vec::new();
    let mut destructive = Vec::new();
    let mut recreate = false;
    let mut cur_subj = cur.subjects.clone();
    let mut want_subj = want.subjects.clone();
    cur_subj.sort();
    want_subj.sort();
    if cur_subj != want_subj {
        let removed: Vec<&String> = cur_subj.iter().filter(|s| !want_subj.contains(s)).collect();
        if !removed.is_empty() {
            destructive.push(format!(
                "subjects {removed:?} would no longer be captured (their publishers would fail)"
            ));
        }
        ch.push(Change {
            field: "subjects",
            current: cur_subj.join(","),
            desired: want_subj.join(","),
        });
    }
    if cur.storage != want.storage {
        recreate = true;
        destructive.push(
            "storage type cannot be changed in place: the stream must be deleted and recreated, losing its messages"
                .into(),
        );
        ch.push(Change {
            field: "storage",
            current: format!("{:?}", cur.storage).to_lowercase(),
            desired: format!("{:?}", want.storage).to_lowercase(),
        });
    }
    if cur.max_age != want.max_age {
        let lowers =
            !want.max_age.is_zero() && (cur.max_age.is_zero() || want.max_age < cur.max_age);
        if lowers {
            destructive.push(format!(
                "lowering max_age from {} to {} deletes stored events older than {}",
                dur(cur.max_age),
                dur(want.max_age),
                dur(want.max_age)
            ));
        }
        ch.push(Change {
            field: "max_age",
            current: dur(cur.max_age),
            desired: dur(want.max_age),
        });
    }
    if cur.max_bytes != want.max_bytes {
        let lowers = want.max_bytes >= 0 && (cur.max_bytes < 0 || want.max_bytes < cur.max_bytes);
        if lowers {
            destructive.push(format!(
                "lowering max_bytes to {} may discard stored events",
                want.max_bytes
            ));
        }
        ch.push(Change {
            field: "max_bytes",
            current: cur.max_bytes.to_string(),
            desired: want.max_bytes.to_string(),
        });
    }
    if cur.duplicate_window != want.duplicate_window {
        ch.push(Change {
            field: "duplicate_window",
            current: dur(cur.duplicate_window),
            desired: dur(want.duplicate_window),
        });
    }
    if cur.num_replicas.max(1) != want.num_replicas.max(1) {
        if !clustered {
            destructive.push(format!(
                "replicas {} needs a JetStream cluster; this server is standalone",
                want.num_replicas
            ));
        }
        ch.push(Change {
            field: "replicas",
            current: cur.num_replicas.max(1).to_string(),
            desired: want.num_replicas.max(1).to_string(),
        });
    }
    if cur.max_message_size != want.max_message_size {
        ch.push(Change {
            field: "max_msg_size",
            current: cur.max_message_size.to_string(),
            desired: want.max_message_size.to_string(),
        });
    }
    if cur.discard != want.discard {
        ch.push(Change {
            field: "discard",
            current: format!("{:?}", cur.discard).to_lowercase(),
            desired: format!("{:?}", want.discard).to_lowercase(),
        });
    }
    if cur.description.as_deref().unwrap_or("") != want.description.as_deref().unwrap_or("") {
        ch.push(Change {
            field: "description",
            current: format!("{:?}", cur.description.as_deref().unwrap_or("")),
            desired: format!("{:?}", want.description.as_deref().unwrap_or("")),
        });
    }
    (ch, destructive, recreate)
}

impl Provisioner {
    /// A provisioner for the catalog's streams.
    pub fn new(client: HeraldClient, contracts: Arc<dyn Contracts>) -> Self {
        Provisioner { client, contracts }
    }

    /// Every stream herald wants: the catalog's, then `DLQ`, then `HERALD_REPLAY` (shaped
    /// like the DLQ; see [`crate::replay`]).
    pub fn desired(&self) -> Vec<StreamSpec> {
        let mut v = self.contracts.streams();
        if !v.iter().any(|s| s.name == crate::DLQ_STREAM) {
            v.push(dlq_stream());
        }
        if !v.iter().any(|s| s.name == crate::REPLAY_STREAM) {
            let dlq = v.iter().find(|s| s.name == crate::DLQ_STREAM).cloned();
            v.push(crate::contracts::replay_stream(
                &dlq.unwrap_or_else(dlq_stream),
            ));
        }
        v
    }

    /// Plans and (unless `dry_run`) applies; see the module docs.
    pub async fn apply(&self, dry_run: bool, force: bool) -> Result<Plan, ProvisionError> {
        let js = self.client.jetstream();
        let clustered = self.client.nats().server_info().cluster.is_some();
        let mut plan = Plan {
            dry_run,
            streams: Vec::new(),
            durables: Vec::new(),
            buckets: Vec::new(),
        };
        for def in self.desired() {
            let want = stream_config(&def);
            let api = |e: &dyn fmt::Display| ProvisionError::Api {
                stream: def.name.clone(),
                detail: e.to_string(),
            };
            let current = match js.get_stream(&def.name).await {
                Ok(mut s) => Some(s.info().await.map_err(|e| api(&e))?.config.clone()),
                Err(e) if is_stream_not_found(&e) => None,
                Err(e) => return Err(api(&e)),
            };
            let action = match current {
                None => {
                    if !dry_run {
                        js.create_stream(want.clone()).await.map_err(|e| api(&e))?;
                    }
                    Action::Create
                }
                Some(cur) => {
                    let (changes, destructive, recreate) = diff(&cur, &want, clustered);
                    if changes.is_empty() {
                        Action::Unchanged
                    } else if destructive.is_empty() {
                        if !dry_run {
                            let mut next = cur.clone();
                            merge(&mut next, &want);
                            js.update_stream(next).await.map_err(|e| api(&e))?;
                        }
                        Action::Update(changes)
                    } else if !force {
                        Action::Refused {
                            changes,
                            reason: destructive.join("; "),
                        }
                    } else {
                        if !dry_run {
                            if recreate {
                                js.delete_stream(&def.name).await.map_err(|e| api(&e))?;
                                js.create_stream(want.clone()).await.map_err(|e| api(&e))?;
                            } else {
                                let mut next = cur.clone();
                                merge(&mut next, &want);
                                js.update_stream(next).await.map_err(|e| api(&e))?;
                            }
                        }
                        Action::Forced {
                            changes,
                            reason: destructive.join("; "),
                            recreated: recreate,
                        }
                    }
                }
            };
            plan.streams.push(StreamPlan {
                stream: def.name.clone(),
                action,
            });
        }
        plan.durables = self.apply_durables(dry_run).await?;
        plan.buckets = self.apply_dedupe_buckets(dry_run).await?;
        Ok(plan)
    }

    /// Creates the durable pull consumer of every catalog consumer that lacks one, with
    /// the settings a [`crate::Consumer`] built from the declaration would use. Services
    /// then only look their durable up; the generated permissions grant them no consumer
    /// creation at all, so none can make a push consumer delivering to any subject.
    pub async fn apply_durables(
        &self,
        dry_run: bool,
    ) -> Result<Vec<(String, bool)>, ProvisionError> {
        let js = self.client.jetstream();
        let mut out = Vec::new();
        for c in self.contracts.consumers() {
            let cfg = crate::consumer::ConsumerConfig::from_def(&c);
            let Some(stream_name) =
                crate::consumer::stream_for_filter(self.contracts.as_ref(), &c.filter)
            else {
                continue;
            };
            let api = |e: &dyn fmt::Display| ProvisionError::Api {
                stream: stream_name.clone(),
                detail: format!("consumer {}: {e}", cfg.durable),
            };
            let stream = match js.get_stream(&stream_name).await {
                Ok(s) => s,
                // Not provisioned (dry run): it would be created with the stream.
                Err(_) if dry_run => {
                    out.push((cfg.durable.clone(), true));
                    continue;
                }
                Err(e) => return Err(api(&e)),
            };
            let exists = stream
                .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&cfg.durable)
                .await
                .is_ok();
            if !exists && !dry_run {
                stream
                    .create_consumer(crate::consumer::pull_config(&cfg))
                    .await
                    .map_err(|e| api(&e))?;
            }
            out.push((cfg.durable.clone(), !exists));
            // Its replay durable, on the replay stream.
            let name = crate::replay::replay_durable(&cfg.durable);
            let replay_api = |e: &dyn fmt::Display| ProvisionError::Api {
                stream: crate::REPLAY_STREAM.into(),
                detail: format!("consumer {name}: {e}"),
            };
            let replays = match js.get_stream(crate::REPLAY_STREAM).await {
                Ok(s) => s,
                Err(_) if dry_run => {
                    out.push((name.clone(), true));
                    continue;
                }
                Err(e) => return Err(replay_api(&e)),
            };
            let exists = replays
                .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&name)
                .await
                .is_ok();
            if !exists && !dry_run {
                replays
                    .create_consumer(crate::replay::replay_pull_config(&cfg))
                    .await
                    .map_err(|e| replay_api(&e))?;
            }
            out.push((name, !exists));
        }
        Ok(out)
    }

    /// Creates the duplicate-store bucket of every catalog consumer that lacks one
    /// (`herald streams apply` runs this with the admin's rights; services may only read
    /// and write their own bucket). Returns `(bucket, created)` per consumer; a dry run
    /// creates nothing and reports what is missing as `created`.
    pub async fn apply_dedupe_buckets(
        &self,
        dry_run: bool,
    ) -> Result<Vec<(String, bool)>, ProvisionError> {
        let js = self.client.jetstream();
        let streams = self.contracts.streams();
        let mut out = Vec::new();
        for c in self.contracts.consumers() {
            let bucket = crate::dedupe::bucket_for(&c.durable_name());
            let exists = js.get_stream(format!("KV_{bucket}")).await.is_ok();
            let created = if exists {
                false
            } else if dry_run {
                true
            } else {
                let replicas =
                    crate::consumer::stream_for_filter(self.contracts.as_ref(), &c.filter)
                        .and_then(|name| streams.iter().find(|s| s.name == name))
                        .map_or(1, |s| s.replicas);
                crate::dedupe::create_bucket(
                    &self.client,
                    &bucket,
                    crate::dedupe::DEFAULT_TTL,
                    replicas,
                )
                .await
                .map_err(|e| ProvisionError::Api {
                    stream: format!("KV_{bucket}"),
                    detail: e.to_string(),
                })?
            };
            out.push((bucket, created));
        }
        Ok(out)
    }

    /// Every stream on the server (not only herald's), for `herald streams ls`.
    pub async fn list(&self) -> Result<Vec<StreamSummary>, ProvisionError> {
        let js = self.client.jetstream();
        let infos: Vec<stream::Info> =
            js.streams()
                .try_collect()
                .await
                .map_err(|e| ProvisionError::Api {
                    stream: "*".into(),
                    detail: e.to_string(),
                })?;
        let mut rows: Vec<StreamSummary> = infos
            .into_iter()
            .map(|i| StreamSummary {
                name: i.config.name.clone(),
                subjects: i.config.subjects.clone(),
                messages: i.state.messages,
                bytes: i.state.bytes,
                consumers: i.state.consumer_count,
                first_seq: i.state.first_sequence,
                last_seq: i.state.last_sequence,
            })
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows)
    }
}

/// Overwrites the fields herald manages, keeping the rest of the server's config.
fn merge(next: &mut stream::Config, want: &stream::Config) {
    next.description = want.description.clone();
    next.subjects = want.subjects.clone();
    next.max_age = want.max_age;
    next.duplicate_window = want.duplicate_window;
    next.num_replicas = want.num_replicas;
    next.max_message_size = want.max_message_size;
    next.max_bytes = want.max_bytes;
    next.discard = want.discard;
}

fn is_stream_not_found(e: &async_nats::jetstream::context::GetStreamError) -> bool {
    match e.kind() {
        async_nats::jetstream::context::GetStreamErrorKind::JetStream(api) => {
            api.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND
        }
        _ => false,
    }
}
