//! The topic catalog: `catalog.toml` plus the schema files beside it, loaded
//! once; each validator compiles on first use.
//!
//! A [`Catalog`] is the one object every other part of herald consults: the
//! publisher asks it which stream and schema a subject has, the consumer asks
//! it how to validate a delivery, provisioning asks it which streams to make,
//! and `herald check` asks it whether the contracts hold together.
//!
//! Layout: [`files`](ContractFiles) (where contracts come from), `model` (the
//! TOML as serde reads it), `load` (parse, index and link), `lookup` (asking the
//! loaded catalog), `validate` (events against their contracts) and `messages`
//! (violations worded for the user).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::schema::{SchemaDoc, Version};
use crate::validators::LazyValidator;

mod files;
mod load;
mod lookup;
mod messages;
mod model;
mod validate;

pub use files::ContractFiles;
pub use model::{
    CatalogSettings, ConsumerSpec, Discard, DlqSpec, EvolutionSettings, MonitoringSettings, Reads,
    SchemaEvolution, Service, ServiceKind, Storage, StreamSpec, SubjectSpec, Topic,
};
pub use validate::{decode_event, Validated};

use model::RawCatalog;
use validate::RouteVersion;

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
