//! The topic catalog: `catalog.toml` plus the schema files beside it, loaded
//! once; each validator compiles on first use.
//!
//! A [`Catalog`] is the one object every other part of herald consults: the
//! publisher asks it which stream and schema a subject has, the consumer asks
//! it how to validate a delivery, provisioning asks it which streams to make,
//! and `herald check` asks it whether the contracts hold together.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ContractError, ValidationError, Violation};
use crate::schema::{make_id, parse_id, SchemaDoc, SchemaRef, Version};
use crate::validators::LazyValidator;

/// The contracts directory as compiled into herald, so `herald` works from
/// any directory and a service needs no files at run time.
static EMBEDDED: include_dir::Dir<'static> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/../../contracts");

/// The files of a contracts directory, by path relative to its root
/// (`catalog.toml`, `schemas/UsageEvent/1.0.0.json`, `examples/...`).
///
/// Loading goes through this rather than the file system so the same code
/// reads a directory, the embedded copy, or a git revision (`--base`).
#[derive(Debug, Clone, Default)]
pub struct ContractFiles {
    /// Where the files came from, for messages: a directory, `<embedded>`, or `git:REF`.
    pub origin: String,
    /// Relative path (always `/`-separated) to contents.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl ContractFiles {
    /// Reads every file under `dir`.
    pub fn from_dir(dir: &Path) -> Result<ContractFiles, ContractError> {
        let mut files = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries = std::fs::read_dir(&d).map_err(|source| ContractError::Io {
                path: d.clone(),
                source,
            })?;
            for entry in entries {
                let entry = entry.map_err(|source| ContractError::Io {
                    path: d.clone(),
                    source,
                })?;
                let path = entry.path();
                // The entry's own type costs no `stat` (a directory listing carries it),
                // which at 9,000 files is most of the syscalls besides reading them; a
                // symlink is followed, as `Path::is_dir` and `is_file` do.
                let kind = entry.file_type().map_err(|source| ContractError::Io {
                    path: path.clone(),
                    source,
                })?;
                let (is_dir, is_file) = if kind.is_symlink() {
                    (path.is_dir(), path.is_file())
                } else {
                    (kind.is_dir(), kind.is_file())
                };
                if is_dir {
                    stack.push(path);
                } else if is_file {
                    let bytes = std::fs::read(&path).map_err(|source| ContractError::Io {
                        path: path.clone(),
                        source,
                    })?;
                    let rel = path
                        .strip_prefix(dir)
                        .unwrap_or(&path)
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    files.insert(rel, bytes);
                }
            }
        }
        Ok(ContractFiles {
            origin: dir.display().to_string(),
            files,
        })
    }

    /// The copy of `contracts/` compiled into this build.
    pub fn embedded() -> ContractFiles {
        fn walk(dir: &include_dir::Dir<'static>, files: &mut BTreeMap<String, Vec<u8>>) {
            for f in dir.files() {
                files.insert(
                    f.path().to_string_lossy().replace('\\', "/"),
                    f.contents().to_vec(),
                );
            }
            for d in dir.dirs() {
                walk(d, files);
            }
        }
        let mut files = BTreeMap::new();
        walk(&EMBEDDED, &mut files);
        ContractFiles {
            origin: "<embedded>".to_string(),
            files,
        }
    }

    /// Reads the contracts directory `dir` as it was at git revision `rev`
    /// (for `herald check --base origin/main`). Runs the local `git`; no network.
    pub fn from_git(dir: &Path, rev: &str) -> Result<ContractFiles, ContractError> {
        let git = |args: &[&str]| -> Result<Vec<u8>, ContractError> {
            let out = std::process::Command::new("git")
                .arg("-C")
                .arg(dir)
                .args(args)
                .output()
                .map_err(|source| ContractError::Io {
                    path: PathBuf::from("git"),
                    source,
                })?;
            if !out.status.success() {
                return Err(ContractError::Inconsistent(format!(
                    "git {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            Ok(out.stdout)
        };
        let prefix = String::from_utf8_lossy(&git(&["rev-parse", "--show-prefix"])?)
            .trim()
            .to_string();
        let listing = git(&[
            "ls-tree",
            "-r",
            "-z",
            "--full-name",
            "--name-only",
            rev,
            "--",
            ".",
        ])?;
        let mut files = BTreeMap::new();
        for path in listing.split(|b| *b == 0).filter(|p| !p.is_empty()) {
            let path = String::from_utf8_lossy(path).into_owned();
            let contents = git(&["show", &format!("{rev}:{path}")])?;
            let rel = path.strip_prefix(&prefix).unwrap_or(&path).to_string();
            files.insert(rel, contents);
        }
        if files.is_empty() {
            return Err(ContractError::Inconsistent(format!(
                "no contracts at {} in revision {rev}",
                dir.display()
            )));
        }
        Ok(ContractFiles {
            origin: format!("git:{rev}"),
            files,
        })
    }

    fn path(&self, rel: &str) -> PathBuf {
        if self.origin.starts_with('<') || self.origin.starts_with("git:") {
            PathBuf::from(format!("{}/{rel}", self.origin))
        } else {
            Path::new(&self.origin).join(rel)
        }
    }
}

// ------------------------------------------------------------------ model

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
struct RawConsumer {
    service: String,
    name: String,
    filter: String,
    reads: Reads,
    #[serde(default)]
    fields: Vec<String>,
    max_deliver: Option<i64>,
    #[serde(default, with = "humantime_serde_compat::option")]
    ack_wait: Option<Duration>,
    max_ack_pending: Option<i64>,
    #[serde(default, with = "humantime_serde_compat::option_vec")]
    backoff: Option<Vec<Duration>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsumerDefaults {
    max_deliver: i64,
    #[serde(with = "humantime_serde_compat")]
    ack_wait: Duration,
    max_ack_pending: i64,
    #[serde(with = "humantime_serde_compat::vec")]
    backoff: Vec<Duration>,
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
struct Defaults {
    #[serde(default)]
    consumer: ConsumerDefaults,
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
struct RawCatalog {
    catalog: CatalogSettings,
    #[serde(default, rename = "service")]
    services: Vec<Service>,
    #[serde(default, rename = "topic")]
    topics: Vec<Topic>,
    dlq: DlqSpec,
    #[serde(default, rename = "subject")]
    subjects: Vec<SubjectSpec>,
    #[serde(default)]
    defaults: Defaults,
    #[serde(default, rename = "consumer")]
    consumers: Vec<RawConsumer>,
    #[serde(default)]
    evolution: EvolutionSettings,
    #[serde(default)]
    monitoring: MonitoringSettings,
}

// ------------------------------------------------------------- validators

/// One version a subject accepts, with its validators (compiled on first use).
struct RouteVersion {
    version: Version,
    id: String,
    /// The schema's own validator, shared with every subject using it.
    validator: Arc<LazyValidator>,
    /// The subject's constraint, compiled on its own: checking it apart is
    /// cheaper than one `allOf` wrapper around a `$ref`.
    constraint: Option<Arc<LazyValidator>>,
    /// The subject whose constraint `constraint` is (named in its violations).
    constraint_of: String,
}

impl RouteVersion {
    /// Validates `event` against the schema and the subject's constraint.
    fn validate(&self, catalog: &Catalog, event: &Value) -> Result<(), ValidationError> {
        let schema = compiled(catalog, &self.validator, &self.id)?;
        let constraint = match &self.constraint {
            None => None,
            Some(c) => Some(compiled(catalog, c, &self.id)?),
        };
        if schema.is_valid(event) && constraint.is_none_or(|c| c.is_valid(event)) {
            return Ok(());
        }
        let mut violations = violations(schema, event);
        if let Some(c) = constraint {
            // Name the rule that failed: the subject's constraint, not the schema.
            violations.extend(self::violations(c, event).into_iter().map(|mut v| {
                v.message = format!(
                    "the constraint of subject {}: {}",
                    self.constraint_of, v.message
                );
                v
            }));
        }
        Err(ValidationError::Invalid {
            schema_id: self.id.clone(),
            violations,
        })
    }
}

/// A lazy validator's compiled form. One that does not compile refuses every event
/// with a violation saying so: the contracts are broken, and `herald check` (which
/// compiles every validator) reports it; loading does not, so that a process pays
/// only for the schemas it uses.
fn compiled<'c>(
    catalog: &'c Catalog,
    lazy: &'c LazyValidator,
    schema_id: &str,
) -> Result<&'c jsonschema::Validator, ValidationError> {
    lazy.get(catalog).map_err(|message| ValidationError::Invalid {
        schema_id: schema_id.to_string(),
        violations: vec![Violation {
            instance_path: String::new(),
            keyword: "$schema".into(),
            message: format!(
                "cannot compile {}: {message} (the contracts are broken; `herald check` reports it)",
                lazy.what()
            ),
        }],
    })
}

/// A schema version as loading records it; its document is parsed when first needed.
struct SchemaEntry {
    version: Version,
    id: String,
    /// Path of its file in [`ContractFiles`].
    path: String,
    document: OnceLock<Value>,
}

/// What validating an event on a subject needs, precomputed.
struct Route {
    subject: usize,
    /// Sorted by version; the last is the default.
    versions: Vec<RouteVersion>,
}

/// The outcome of a successful validation: which contract the event met.
#[derive(Debug, Clone, Copy)]
pub struct Validated<'c> {
    /// The subject's catalog entry.
    pub subject: &'c SubjectSpec,
    /// The `$id` of the exact schema version used.
    pub schema_id: &'c str,
    /// That version.
    pub version: Version,
}

impl<'c> Validated<'c> {
    /// The event's identity (the catalog's `identity` field), the default idempotency key.
    pub fn identity<'e>(&self, event: &'e Value) -> Option<&'e str> {
        event.get(&self.subject.identity).and_then(Value::as_str)
    }
}

/// The loaded contracts; validators compile on first use. Cheap to share (`Arc<Catalog>`), `Send + Sync`.
pub struct Catalog {
    files: ContractFiles,
    settings: CatalogSettings,
    services: Vec<Service>,
    topics: Vec<Topic>,
    subjects: Vec<SubjectSpec>,
    consumers: Vec<ConsumerSpec>,
    dlq: DlqSpec,
    evolution: EvolutionSettings,
    monitoring: MonitoringSettings,
    /// Schema name to its versions, ascending: what routing and compiling need.
    index: BTreeMap<String, Vec<SchemaEntry>>,
    /// Every schema document, parsed on the first call to [`Catalog::schemas`]:
    /// a process that only validates never holds them all.
    schemas: OnceLock<BTreeMap<String, Vec<SchemaDoc>>>,
    /// Every schema version's validator, by `$id`, compiled on first use.
    schema_validators: HashMap<String, Arc<LazyValidator>>,
    /// Every subject constraint's validator, in subject order.
    constraint_validators: Vec<Arc<LazyValidator>>,
    exact_routes: HashMap<String, Route>,
    pattern_routes: Vec<(Vec<String>, Route)>,
    problems: Vec<String>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("origin", &self.files.origin)
            .field("subjects", &self.subjects.len())
            .field("schemas", &self.index.len())
            .finish()
    }
}

impl Catalog {
    /// Loads a contracts directory (the one holding `catalog.toml`).
    pub fn load(dir: impl AsRef<Path>) -> Result<Catalog, ContractError> {
        Catalog::from_files(ContractFiles::from_dir(dir.as_ref())?)
    }

    /// Loads the contracts compiled into this build.
    pub fn embedded() -> Result<Catalog, ContractError> {
        Catalog::from_files(ContractFiles::embedded())
    }

    /// Loads contracts from a set of files. Compiles nothing: each validator
    /// compiles on first use (see [`Catalog::compile_all`]).
    ///
    /// Fails on unreadable or unparsable files. Lesser inconsistencies (a subject
    /// mapped to a missing schema) are kept as [`Catalog::problems`], and schemas
    /// that do not compile (a `$ref` that does not resolve) are found by
    /// [`Catalog::compile_all`]: both for `herald check`.
    pub fn from_files(files: ContractFiles) -> Result<Catalog, ContractError> {
        let catalog_path = files.path("catalog.toml");
        let text = files
            .files
            .get("catalog.toml")
            .ok_or_else(|| ContractError::Catalog {
                path: catalog_path.clone(),
                message: "no catalog.toml here; point --contracts at the contracts directory"
                    .into(),
            })?;
        let text = std::str::from_utf8(text).map_err(|_| ContractError::Catalog {
            path: catalog_path.clone(),
            message: "not UTF-8".into(),
        })?;
        let raw: RawCatalog = toml::from_str(text).map_err(|e| ContractError::Catalog {
            path: catalog_path.clone(),
            message: e.to_string().replace('\n', " ").trim().to_string(),
        })?;

        let index = load_schemas(&files, &raw.catalog.schema_base)?;
        let mut problems = Vec::new();

        let mut topics = raw.topics;
        for t in &mut topics {
            t.stream.subjects = t.subjects.clone();
            t.stream
                .description
                .get_or_insert_with(|| t.description.clone());
        }
        let mut dlq = raw.dlq;
        dlq.stream.subjects = vec![format!("{}.>", dlq.subject_prefix)];
        dlq.stream
            .description
            .get_or_insert_with(|| "herald dead-letter queue".to_owned());

        let d = &raw.defaults.consumer;
        let consumers = raw
            .consumers
            .into_iter()
            .map(|c| ConsumerSpec {
                service: c.service,
                name: c.name,
                filter: c.filter,
                reads: c.reads,
                fields: c.fields,
                max_deliver: c.max_deliver.unwrap_or(d.max_deliver),
                ack_wait: c.ack_wait.unwrap_or(d.ack_wait),
                max_ack_pending: c.max_ack_pending.unwrap_or(d.max_ack_pending),
                backoff: c.backoff.unwrap_or_else(|| d.backoff.clone()),
            })
            .collect();

        // Nothing compiles here: each validator compiles on first use (see `validators`).
        let schema_validators: HashMap<String, Arc<LazyValidator>> = index
            .values()
            .flatten()
            .map(|e| (e.id.clone(), Arc::new(LazyValidator::schema(&e.id))))
            .collect();
        let mut constraint_validators = Vec::new();

        let mut exact_routes = HashMap::new();
        let mut pattern_routes = Vec::new();
        for (i, s) in raw.subjects.iter().enumerate() {
            let versions: Vec<&SchemaEntry> = index
                .get(&s.schema)
                .map(|v| v.iter().filter(|d| d.version.major == s.major).collect())
                .unwrap_or_default();
            if versions.is_empty() {
                problems.push(format!(
                    "subject {} maps to {}@{}.x.x, which has no schema file",
                    s.name, s.schema, s.major
                ));
                continue;
            }
            let mut route = Route {
                subject: i,
                versions: Vec::new(),
            };
            let constraint = match &s.constraint {
                None => None,
                Some(c) => {
                    let mut c = c.clone();
                    if let Some(obj) = c.as_object_mut() {
                        obj.insert(
                            "$schema".into(),
                            "https://json-schema.org/draft/2020-12/schema".into(),
                        );
                    }
                    let lazy = Arc::new(LazyValidator::constraint(&s.name, c));
                    constraint_validators.push(lazy.clone());
                    Some(lazy)
                }
            };
            for doc in versions {
                route.versions.push(RouteVersion {
                    version: doc.version,
                    id: doc.id.clone(),
                    validator: schema_validators[&doc.id].clone(),
                    constraint: constraint.clone(),
                    constraint_of: s.name.clone(),
                });
            }
            if s.name.split('.').any(|t| t == "*" || t == ">") {
                pattern_routes.push((s.name.split('.').map(String::from).collect(), route));
            } else {
                exact_routes.insert(s.name.clone(), route);
            }
        }

        Ok(Catalog {
            files,
            settings: raw.catalog,
            services: raw.services,
            topics,
            subjects: raw.subjects,
            consumers,
            dlq,
            evolution: raw.evolution,
            monitoring: raw.monitoring,
            index,
            schemas: OnceLock::new(),
            schema_validators,
            constraint_validators,
            exact_routes,
            pattern_routes,
            problems,
        })
    }

    /// The files the catalog was loaded from (examples included).
    pub fn files(&self) -> &ContractFiles {
        &self.files
    }
    /// Catalog-wide settings.
    pub fn settings(&self) -> &CatalogSettings {
        &self.settings
    }
    /// Every declared service.
    pub fn services(&self) -> &[Service] {
        &self.services
    }
    /// Every topic family, in catalog order.
    pub fn topics(&self) -> &[Topic] {
        &self.topics
    }
    /// Every subject, in catalog order.
    pub fn subjects(&self) -> &[SubjectSpec] {
        &self.subjects
    }
    /// Every durable consumer, defaults applied.
    pub fn consumers(&self) -> &[ConsumerSpec] {
        &self.consumers
    }
    /// The dead-letter queue settings.
    pub fn dlq(&self) -> &DlqSpec {
        &self.dlq
    }
    /// Evolution settings.
    pub fn evolution(&self) -> &EvolutionSettings {
        &self.evolution
    }
    /// Monitoring thresholds.
    pub fn monitoring(&self) -> &MonitoringSettings {
        &self.monitoring
    }
    /// Inconsistencies found while loading; `herald check` reports them.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// Compiles every schema version's validator and every subject constraint's,
    /// as `herald check` must (loading compiles none), and says why each one that
    /// does not compile fails: `cannot compile <$id or constraint>: <message>`.
    pub fn compile_all(&self) -> Vec<String> {
        let schemas = self
            .index
            .values()
            .flatten()
            .map(|e| &self.schema_validators[&e.id]);
        schemas
            .chain(&self.constraint_validators)
            .filter_map(|v| {
                v.get(self)
                    .err()
                    .map(|e| format!("cannot compile {}: {e}", v.what()))
            })
            .collect()
    }

    /// How many validators have been compiled so far (each on its first use).
    pub fn compiled_validators(&self) -> usize {
        self.schema_validators
            .values()
            .chain(&self.constraint_validators)
            .filter(|v| v.is_compiled())
            .count()
    }

    /// Every schema name with its versions, ascending.
    ///
    /// The documents are parsed on the first call (loading only checked them).
    pub fn schemas(&self) -> &BTreeMap<String, Vec<SchemaDoc>> {
        self.schemas.get_or_init(|| {
            self.index
                .iter()
                .map(|(name, entries)| {
                    let docs = entries.iter().map(|e| self.schema_doc(name, e)).collect();
                    (name.clone(), docs)
                })
                .collect()
        })
    }

    fn schema_doc(&self, name: &str, e: &SchemaEntry) -> SchemaDoc {
        // The files cannot change after loading, which parsed each of them.
        let source = String::from_utf8(self.files.files[&e.path].clone())
            .expect("schema files were checked to be UTF-8 when loaded");
        let document = match e.document.get() {
            Some(d) => d.clone(),
            None => serde_json::from_str(&source).expect("schema files parsed when loaded"),
        };
        SchemaDoc {
            name: name.to_string(),
            version: e.version,
            id: e.id.clone(),
            path: e.path.clone(),
            source,
            document,
        }
    }

    /// A schema version's document by `$id`, parsing only that file if
    /// [`Catalog::schemas`] has not parsed them all: what compiling a validator reads.
    pub(crate) fn document(&self, id: &str) -> Option<(&str, &Value)> {
        if self.schemas.get().is_some() {
            return self.schema_by_id(id).map(|d| (d.id.as_str(), &d.document));
        }
        let (name, version) = parse_id(&self.settings.schema_base, id)?;
        let e = self
            .index
            .get(&name)?
            .iter()
            .find(|e| e.version == version)?;
        let document = e.document.get_or_init(|| {
            serde_json::from_slice(&self.files.files[&e.path])
                .expect("schema files parsed when loaded")
        });
        Some((e.id.as_str(), document))
    }

    /// How many schema versions there are.
    pub(crate) fn version_count(&self) -> usize {
        self.index.values().map(Vec::len).sum()
    }

    /// A schema by name and version; no version means the latest.
    pub fn schema(&self, r: &SchemaRef) -> Option<&SchemaDoc> {
        let versions = self.schemas().get(&r.name)?;
        match r.version {
            Some(v) => versions.iter().find(|d| d.version == v),
            None => versions.last(),
        }
    }

    /// A schema by its `$id`.
    pub fn schema_by_id(&self, id: &str) -> Option<&SchemaDoc> {
        let (name, version) = parse_id(&self.settings.schema_base, id)?;
        self.schema(&SchemaRef {
            name,
            version: Some(version),
        })
    }

    /// The `$id` a schema of this name and version carries.
    pub fn schema_id(&self, name: &str, version: Version) -> String {
        make_id(&self.settings.schema_base, name, version)
    }

    /// The catalog entry for a concrete subject (matching `*` patterns too).
    pub fn subject(&self, subject: &str) -> Option<&SubjectSpec> {
        self.route(subject).map(|r| &self.subjects[r.subject])
    }

    /// The topic family a subject belongs to.
    pub fn topic_for_subject(&self, subject: &str) -> Option<&Topic> {
        let spec = self.subject(subject)?;
        self.topics.iter().find(|t| t.name == spec.topic)
    }

    /// The stream that stores a subject.
    pub fn stream_for_subject(&self, subject: &str) -> Option<&StreamSpec> {
        self.topic_for_subject(subject).map(|t| &t.stream)
    }

    /// Every stream herald provisions: one per topic family, then the DLQ.
    pub fn streams(&self) -> Vec<&StreamSpec> {
        self.topics
            .iter()
            .map(|t| &t.stream)
            .chain(std::iter::once(&self.dlq.stream))
            .collect()
    }

    /// The services allowed to produce on a topic, `*` expanded.
    pub fn producers_of<'a>(&'a self, topic: &'a Topic) -> Vec<&'a str> {
        if topic.producers.iter().any(|p| p == "*") {
            // `*` is every backend service, plus clients only where named explicitly.
            self.services
                .iter()
                .filter(|s| {
                    s.kind == ServiceKind::Backend || topic.producers.iter().any(|p| p == &s.name)
                })
                .map(|s| s.name.as_str())
                .collect()
        } else {
            topic.producers.iter().map(String::as_str).collect()
        }
    }

    /// The consumers whose filter covers a subject.
    pub fn consumers_of(&self, subject: &str) -> Vec<&ConsumerSpec> {
        self.consumers
            .iter()
            .filter(|c| crate::subject::matches(&c.filter, subject))
            .collect()
    }

    fn route(&self, subject: &str) -> Option<&Route> {
        if let Some(r) = self.exact_routes.get(subject) {
            return Some(r);
        }
        self.pattern_routes
            .iter()
            .find(|(p, _)| crate::subject::tokens_match(p.iter().map(String::as_str), subject))
            .map(|(_, r)| r)
    }

    /// Validates an event published on `subject`.
    ///
    /// The schema version is, in order: `schema_hint` (a `ce-dataschema`
    /// header), the event's own `"$schema"` property, else the latest version
    /// of the subject's major. The subject's constraint applies too.
    pub fn validate(
        &self,
        subject: &str,
        schema_hint: Option<&str>,
        event: &Value,
    ) -> Result<Validated<'_>, ValidationError> {
        let route = self
            .route(subject)
            .ok_or_else(|| ValidationError::UnknownSubject(subject.to_string()))?;
        let spec = &self.subjects[route.subject];
        let named = schema_hint.or_else(|| event.get("$schema").and_then(Value::as_str));
        let chosen = match named {
            None => route.versions.last().expect("routes have a version"),
            Some(id) => self.pick_version(route, spec, subject, id)?,
        };
        chosen.validate(self, event)?;
        Ok(Validated {
            subject: spec,
            schema_id: &chosen.id,
            version: chosen.version,
        })
    }

    fn pick_version<'r>(
        &self,
        route: &'r Route,
        spec: &SubjectSpec,
        subject: &str,
        id: &str,
    ) -> Result<&'r RouteVersion, ValidationError> {
        if let Some(v) = route.versions.iter().find(|v| v.id == id) {
            return Ok(v);
        }
        match parse_id(&self.settings.schema_base, id) {
            Some((name, version)) if name == spec.schema && version.major == spec.major => {
                Err(ValidationError::UnknownSchema(format!("{name}@{version}")))
            }
            Some((name, version)) if self.index.contains_key(&name) || name == spec.schema => {
                Err(ValidationError::SchemaMismatch {
                    subject: subject.to_string(),
                    schema: format!("{name}@{version}"),
                    expected: format!("{}@{}", spec.schema, spec.major),
                })
            }
            _ => Err(ValidationError::UnknownSchema(id.to_string())),
        }
    }

    /// Decodes and validates raw bytes published on `subject`: the path a
    /// consumer takes for every delivery. Enforces the size limit first.
    pub fn validate_bytes(
        &self,
        subject: &str,
        schema_hint: Option<&str>,
        bytes: &[u8],
    ) -> Result<(Validated<'_>, Value), ValidationError> {
        let event = self.decode(bytes)?;
        let validated = self.validate(subject, schema_hint, &event)?;
        Ok((validated, event))
    }

    /// Validates a received event with the reader's rules: against the newest version of
    /// the subject's major, whatever version the event pins (`ce-dataschema` or
    /// `$schema`). A pinned version must still exist and be of that schema and major;
    /// pinning an older minor cannot loosen the checks (the gate guarantees every older
    /// minor's valid events stay valid under the newest).
    pub fn validate_bytes_as_reader(
        &self,
        subject: &str,
        schema_hint: Option<&str>,
        bytes: &[u8],
    ) -> Result<(Validated<'_>, Value), ValidationError> {
        let event = self.decode(bytes)?;
        let route = self
            .route(subject)
            .ok_or_else(|| ValidationError::UnknownSubject(subject.to_string()))?;
        let spec = &self.subjects[route.subject];
        if let Some(id) = schema_hint.or_else(|| event.get("$schema").and_then(Value::as_str)) {
            self.pick_version(route, spec, subject, id)?;
        }
        let newest = route.versions.last().expect("routes have a version");
        newest.validate(self, &event)?;
        Ok((
            Validated {
                subject: spec,
                schema_id: &newest.id,
                version: newest.version,
            },
            event,
        ))
    }

    /// Parses an event, refusing oversized, non-UTF-8 or over-deep input
    /// with an error rather than a panic or a stack overflow.
    pub fn decode(&self, bytes: &[u8]) -> Result<Value, ValidationError> {
        decode_event(bytes, self.settings.max_event_bytes)
    }

    /// Validates an event against a schema by name (and version, else the
    /// event's `"$schema"`, else the latest), without a subject.
    pub fn validate_schema(
        &self,
        schema: &SchemaRef,
        event: &Value,
    ) -> Result<&SchemaDoc, ValidationError> {
        let doc = match (schema.version, event.get("$schema").and_then(Value::as_str)) {
            (Some(_), _) | (None, None) => self.schema(schema),
            (None, Some(id)) => match self.schema_by_id(id) {
                Some(d) if d.name == schema.name => Some(d),
                Some(d) => {
                    return Err(ValidationError::SchemaMismatch {
                        subject: "-".into(),
                        schema: d.label(),
                        expected: schema.name.clone(),
                    })
                }
                None => return Err(ValidationError::UnknownSchema(id.to_string())),
            },
        }
        .ok_or_else(|| ValidationError::UnknownSchema(schema.to_string()))?;
        let validator = compiled(self, &self.schema_validators[&doc.id], &doc.id)?;
        if validator.is_valid(event) {
            Ok(doc)
        } else {
            Err(ValidationError::Invalid {
                schema_id: doc.id.clone(),
                violations: violations(validator, event),
            })
        }
    }
}

/// Decodes one event with a size limit; see [`Catalog::decode`].
pub fn decode_event(bytes: &[u8], limit: usize) -> Result<Value, ValidationError> {
    if bytes.len() > limit {
        return Err(ValidationError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ValidationError::Decode("empty input".into()));
    }
    // serde_json stops at 128 levels of nesting, so hostile depth is an error, not a
    // crash; duplicate member names are refused (see `decode`).
    crate::decode::parse(bytes).map_err(ValidationError::Decode)
}

fn violations(validator: &jsonschema::Validator, event: &Value) -> Vec<Violation> {
    validator
        .iter_errors(event)
        .map(|e| Violation {
            instance_path: e.instance_path().as_str().to_string(),
            keyword: e.kind().keyword().to_string(),
            message: violation_message(&e),
        })
        .collect()
}

/// How many allowed values an `enum` violation lists.
const ENUM_VALUES_SHOWN: usize = 10;
/// Longest violation message kept whole; a longer one (a 360 KB regex in a
/// constraint) is cut to one readable line.
const MESSAGE_MAX_CHARS: usize = 300;

/// The violation's message, made to tell the user what to fix: an `enum` lists its
/// allowed values (up to [`ENUM_VALUES_SHOWN`]), and a huge message is summarized.
fn violation_message(e: &jsonschema::ValidationError<'_>) -> String {
    if let jsonschema::error::ValidationErrorKind::Enum { options } = e.kind() {
        if let Some(list) = options.as_array() {
            let shown: Vec<String> = list
                .iter()
                .take(ENUM_VALUES_SHOWN)
                .map(|v| shorten(&v.to_string(), 60))
                .collect();
            let more = list.len().saturating_sub(ENUM_VALUES_SHOWN);
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            return format!(
                "{} is not one of the allowed values: {}{tail}",
                shorten(&e.instance().to_string(), 60),
                shown.join(", ")
            );
        }
    }
    shorten(&e.to_string(), MESSAGE_MAX_CHARS)
}

/// Cuts `s` to at most `max` characters, saying how long it was.
fn shorten(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max.saturating_sub(40)).collect();
    format!("{cut}… ({n} characters in all)")
}

/// Checks every schema file (path, version, UTF-8, JSON, `$id`) and indexes it; the
/// parsed documents are dropped, to be parsed again when needed.
fn load_schemas(
    files: &ContractFiles,
    base: &str,
) -> Result<BTreeMap<String, Vec<SchemaEntry>>, ContractError> {
    let mut schemas: BTreeMap<String, Vec<SchemaEntry>> = BTreeMap::new();
    for (rel, bytes) in &files.files {
        let Some(rest) = rel.strip_prefix("schemas/") else {
            continue;
        };
        let err = |message: String| ContractError::Schema {
            path: files.path(rel),
            message,
        };
        let Some((name, file)) = rest.split_once('/') else {
            return Err(err(
                "schemas live at schemas/<Name>/<MAJOR.MINOR.PATCH>.json".into(),
            ));
        };
        let Some(version) = file.strip_suffix(".json") else {
            return Err(err("schema files end in .json".into()));
        };
        let version: Version = version.parse().map_err(|e: String| {
            err(format!(
                "file name must be the schema's version (MAJOR.MINOR.PATCH.json): {e}"
            ))
        })?;
        let source = std::str::from_utf8(bytes).map_err(|_| err("not UTF-8".into()))?;
        let head: SchemaHead =
            serde_json::from_str(source).map_err(|e| err(format!("not JSON: {e}")))?;
        let expected = make_id(base, name, version);
        let id = head.id.unwrap_or_default();
        if id != expected {
            return Err(err(format!(
                "$id is `{id}` but a schema at this path must have `{expected}`"
            )));
        }
        schemas
            .entry(name.to_string())
            .or_default()
            .push(SchemaEntry {
                version,
                id,
                path: rel.clone(),
                document: OnceLock::new(),
            });
    }
    for versions in schemas.values_mut() {
        versions.sort_by_key(|e| e.version);
    }
    Ok(schemas)
}

/// What loading reads of a schema file: its `$id` if it is a string (the rest is
/// checked to be JSON and skipped, without building the document).
struct SchemaHead {
    id: Option<String>,
}

impl<'de> Deserialize<'de> for SchemaHead {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = SchemaHead;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON document")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<SchemaHead, A::Error> {
                let mut id = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "$id" {
                        // The last `$id` wins, as in a parsed document.
                        id = map.next_value::<Value>()?.as_str().map(String::from);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(SchemaHead { id })
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<SchemaHead, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(SchemaHead { id: None })
            }
            fn visit_bool<E>(self, _: bool) -> Result<SchemaHead, E> {
                Ok(SchemaHead { id: None })
            }
            fn visit_i64<E>(self, _: i64) -> Result<SchemaHead, E> {
                Ok(SchemaHead { id: None })
            }
            fn visit_u64<E>(self, _: u64) -> Result<SchemaHead, E> {
                Ok(SchemaHead { id: None })
            }
            fn visit_f64<E>(self, _: f64) -> Result<SchemaHead, E> {
                Ok(SchemaHead { id: None })
            }
            fn visit_str<E>(self, _: &str) -> Result<SchemaHead, E> {
                Ok(SchemaHead { id: None })
            }
            fn visit_unit<E>(self) -> Result<SchemaHead, E> {
                Ok(SchemaHead { id: None })
            }
        }
        d.deserialize_any(Visit)
    }
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
