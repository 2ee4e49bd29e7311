//! Loading: `catalog.toml` parsed, every schema file checked and indexed, consumer
//! defaults applied and each subject linked to its schema versions (a route).
//! Nothing compiles here: each validator compiles on first use.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use serde_json::Value;

use super::validate::RouteVersion;
use super::{Catalog, ConsumerSpec, ContractFiles, RawCatalog, Route, SchemaEntry};
use crate::error::ContractError;
use crate::schema::{make_id, Version};
use crate::validators::LazyValidator;

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
