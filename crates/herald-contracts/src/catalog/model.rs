//! The catalog's TOML model: what `catalog.toml` declares (services, topics and
//! their streams, subjects, consumers, the DLQ, evolution and monitoring settings),
//! as serde reads it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Catalog-wide settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSettings {
    /// Prefix of every schema `$id`; the rest is `<Name>/<version>.json`.
    pub schema_base: String,
    /// Events larger than this are refused before parsing.
    #[serde(default = "default_max_event_bytes")]
    pub max_event_bytes: usize,
}

fn default_max_event_bytes() -> usize {
    1024 * 1024
}

/// A platform service that produces or consumes events.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Kebab-case name, used as `ce-source` and in consumer names.
    pub name: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// Backend service (default) or client. A topic's `producers = ["*"]` means every
    /// backend service; a client publishes only where it is named.
    #[serde(default)]
    pub kind: ServiceKind,
}

/// Whether a service runs on the platform's side or in users' hands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    /// Runs on the platform's side.
    #[default]
    Backend,
    /// Browser, mobile or other user-controlled code (never trusted as a producer by `*`).
    Client,
}

/// Where JetStream keeps a message when the stream is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Discard {
    /// Drop the oldest messages (fine for data with a short useful life).
    Old,
    /// Refuse new messages (publishers see an error and can retry or alert).
    New,
}

/// The storage backend of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// Survives restarts.
    File,
    /// Faster; lost on restart.
    Memory,
}

/// The JetStream stream a topic family lives in, as `herald streams apply` creates it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    /// Stream name, upper-case by convention.
    pub name: String,
    /// What the stream holds; filled from the topic's description when loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// NATS subject filters; filled from the topic's `subjects` when loaded.
    #[serde(default)]
    pub subjects: Vec<String>,
    /// How long messages are kept: the topic family's TTL.
    #[serde(with = "humantime_serde_compat")]
    pub max_age: Duration,
    /// Window in which JetStream drops a republished `Nats-Msg-Id`.
    #[serde(with = "humantime_serde_compat")]
    pub duplicate_window: Duration,
    /// Copies kept in a cluster.
    #[serde(default = "one")]
    pub replicas: usize,
    /// Largest message the stream accepts.
    #[serde(default = "default_max_msg_size")]
    pub max_msg_size: i32,
    /// Largest total size, `-1` for unlimited.
    #[serde(default = "minus_one")]
    pub max_bytes: i64,
    /// What to do when full.
    #[serde(default = "discard_old")]
    pub discard: Discard,
    /// File or memory.
    #[serde(default = "storage_file")]
    pub storage: Storage,
}

impl StreamSpec {
    /// A file-backed stream with herald's defaults (7 days, 2 min duplicate
    /// window, 1 replica, 1 MiB messages, unlimited bytes, discard old): for
    /// streams outside the catalog, such as a test's.
    pub fn new(name: impl Into<String>, subjects: &[&str]) -> Self {
        StreamSpec {
            name: name.into(),
            description: None,
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            replicas: 1,
            max_msg_size: default_max_msg_size(),
            max_bytes: -1,
            discard: Discard::Old,
            storage: Storage::File,
        }
    }
}

fn one() -> usize {
    1
}
fn default_max_msg_size() -> i32 {
    1024 * 1024
}
fn minus_one() -> i64 {
    -1
}
fn discard_old() -> Discard {
    Discard::Old
}
fn storage_file() -> Storage {
    Storage::File
}

/// A topic family from the spec's table (`ingest.*`, `usage.metered`, ...).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    /// The name the spec uses.
    pub name: String,
    /// What flows here.
    #[serde(default)]
    pub description: String,
    /// NATS subject filters covering every subject of the family.
    pub subjects: Vec<String>,
    /// Services allowed to publish; `*` means every service.
    pub producers: Vec<String>,
    /// Services that consume it.
    pub consumers: Vec<String>,
    /// Its stream.
    pub stream: StreamSpec,
}

/// A concrete subject (or a pattern with `*` tokens) and the contract of its events.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectSpec {
    /// The subject, e.g. `usage.metered.model_inference`.
    pub name: String,
    /// The topic family it belongs to.
    pub topic: String,
    /// What an event here means.
    #[serde(default)]
    pub description: String,
    /// The schema name its events satisfy.
    pub schema: String,
    /// The schema major version; every minor/patch of it is accepted.
    pub major: u64,
    /// The field that identifies an event: the default idempotency key.
    pub identity: String,
    /// An extra JSON Schema the event must also satisfy on this subject.
    #[serde(default)]
    pub constraint: Option<Value>,
}

/// What a consumer reads: a schema and the major version it understands.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Reads {
    /// Schema name.
    pub schema: String,
    /// Major version.
    pub major: u64,
}

/// A durable subscription of one service.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerSpec {
    /// The consuming service.
    pub service: String,
    /// The subscription's name within the service.
    pub name: String,
    /// NATS subject filter.
    pub filter: String,
    /// The schema the consumer reads.
    pub reads: Reads,
    /// JSON Pointers the consumer depends on.
    pub fields: Vec<String>,
    /// Deliveries before the event goes to the dead-letter queue.
    pub max_deliver: i64,
    /// How long JetStream waits for an ack before redelivering.
    #[serde(with = "humantime_serde_compat")]
    pub ack_wait: Duration,
    /// Unacknowledged messages allowed at once.
    pub max_ack_pending: i64,
    /// Delay before each redelivery after a retryable failure.
    #[serde(with = "humantime_serde_compat::vec")]
    pub backoff: Vec<Duration>,
}

impl ConsumerSpec {
    /// The JetStream durable name: `<service>--<name>`.
    pub fn durable_name(&self) -> String {
        format!("{}--{}", self.service, self.name)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConsumer {
    pub(super) service: String,
    pub(super) name: String,
    pub(super) filter: String,
    pub(super) reads: Reads,
    #[serde(default)]
    pub(super) fields: Vec<String>,
    pub(super) max_deliver: Option<i64>,
    #[serde(default, with = "humantime_serde_compat::option")]
    pub(super) ack_wait: Option<Duration>,
    pub(super) max_ack_pending: Option<i64>,
    #[serde(default, with = "humantime_serde_compat::option_vec")]
    pub(super) backoff: Option<Vec<Duration>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConsumerDefaults {
    pub(super) max_deliver: i64,
    #[serde(with = "humantime_serde_compat")]
    pub(super) ack_wait: Duration,
    pub(super) max_ack_pending: i64,
    #[serde(with = "humantime_serde_compat::vec")]
    pub(super) backoff: Vec<Duration>,
}

impl Default for ConsumerDefaults {
    fn default() -> Self {
        ConsumerDefaults {
            max_deliver: 5,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 1000,
            backoff: vec![Duration::from_secs(1), Duration::from_secs(5)],
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Defaults {
    #[serde(default)]
    pub(super) consumer: ConsumerDefaults,
}

/// The dead-letter queue's stream and subject prefix.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DlqSpec {
    /// Dead letters go to `<prefix>.<original subject>`.
    pub subject_prefix: String,
    /// The stream holding them.
    pub stream: StreamSpec,
}

/// Per-schema evolution settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaEvolution {
    /// Compatibility mode for this schema.
    pub mode: Option<String>,
    /// Content-model policy for this schema.
    pub policy: Option<String>,
    /// Property names that may never be used (again): names of removed fields
    /// whose old data still sits in streams with another meaning or type.
    #[serde(default)]
    pub reserved: Vec<String>,
}

/// How new schema versions are judged (interpreted by [`crate::evolution`]).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvolutionSettings {
    /// Default mode: `seed`, `backward`, `forward`, `full`, or a `-transitive` one.
    #[serde(default = "seed")]
    pub mode: String,
    /// `strict` or `lenient` treatment of open content models.
    #[serde(default = "strict")]
    pub policy: String,
    /// Change kind to severity (`breaking`, `non-breaking`, `ignore`).
    #[serde(default)]
    pub overrides: BTreeMap<String, String>,
    /// Per-schema settings.
    #[serde(default)]
    pub schemas: BTreeMap<String, SchemaEvolution>,
}

fn seed() -> String {
    "seed".into()
}
fn strict() -> String {
    "strict".into()
}

impl Default for EvolutionSettings {
    fn default() -> Self {
        EvolutionSettings {
            mode: seed(),
            policy: strict(),
            overrides: BTreeMap::new(),
            schemas: BTreeMap::new(),
        }
    }
}

/// Thresholds `herald watch` alerts on.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringSettings {
    /// How often services send heartbeats.
    #[serde(with = "humantime_serde_compat")]
    pub heartbeat_interval: Duration,
    /// Silence after which a service is reported down.
    #[serde(with = "humantime_serde_compat")]
    pub service_down_after: Duration,
    /// Pending messages above which a consumer's backlog alerts.
    pub backlog_threshold: u64,
    /// Processing latency (or event age) above which latency alerts.
    pub high_latency_ms: u64,
    /// Fraction of failed deliveries above which failure rate alerts.
    pub failure_rate: f64,
    /// How often a firing alert is repeated.
    #[serde(with = "humantime_serde_compat")]
    pub repeat_interval: Duration,
    /// Per-consumer overrides of `backlog_threshold`, by durable name.
    #[serde(default)]
    pub backlog_overrides: BTreeMap<String, u64>,
}

impl Default for MonitoringSettings {
    fn default() -> Self {
        MonitoringSettings {
            heartbeat_interval: Duration::from_secs(5),
            service_down_after: Duration::from_secs(15),
            backlog_threshold: 1000,
            high_latency_ms: 500,
            failure_rate: 0.05,
            repeat_interval: Duration::from_secs(300),
            backlog_overrides: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCatalog {
    pub(super) catalog: CatalogSettings,
    #[serde(default, rename = "service")]
    pub(super) services: Vec<Service>,
    #[serde(default, rename = "topic")]
    pub(super) topics: Vec<Topic>,
    pub(super) dlq: DlqSpec,
    #[serde(default, rename = "subject")]
    pub(super) subjects: Vec<SubjectSpec>,
    #[serde(default)]
    pub(super) defaults: Defaults,
    #[serde(default, rename = "consumer")]
    pub(super) consumers: Vec<RawConsumer>,
    #[serde(default)]
    pub(super) evolution: EvolutionSettings,
    #[serde(default)]
    pub(super) monitoring: MonitoringSettings,
}

/// Durations in the catalog are written like `30s`, `2m`, `7d`.
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| serde::de::Error::custom(format!("`{s}`: {e}")))
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub mod vec {
        use super::*;
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
            let v = Vec::<String>::deserialize(d)?;
            v.iter()
                .map(|s| {
                    humantime::parse_duration(s)
                        .map_err(|e| serde::de::Error::custom(format!("`{s}`: {e}")))
                })
                .collect()
        }
        pub fn serialize<S: Serializer>(v: &[Duration], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|d| humantime::format_duration(*d).to_string()))
        }
    }

    pub mod option {
        use super::*;
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }

    pub mod option_vec {
        use super::*;
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Vec<Duration>>, D::Error> {
            super::vec::deserialize(d).map(Some)
        }
    }
}
