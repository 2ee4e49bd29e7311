//! Asking the loaded catalog: its parts, schemas by name or `$id`, the subject,
//! topic, stream and consumers of a subject, and compiling every validator.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Catalog, ConsumerSpec, ContractFiles, Route, SchemaEntry};
use super::{CatalogSettings, DlqSpec, EvolutionSettings, MonitoringSettings};
use super::{Service, ServiceKind, StreamSpec, SubjectSpec, Topic};
use crate::schema::{make_id, parse_id, SchemaDoc, SchemaRef, Version};

impl Catalog {
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

    pub(super) fn route(&self, subject: &str) -> Option<&Route> {
        if let Some(r) = self.exact_routes.get(subject) {
            return Some(r);
        }
        self.pattern_routes
            .iter()
            .find(|(p, _)| crate::subject::tokens_match(p.iter().map(String::as_str), subject))
            .map(|(_, r)| r)
    }
}
