//! The contract test suite behind `herald check`: everything that must hold
//! for the contracts to be trusted, each as a named check with its failures.
//!
//! Checks never stop at the first problem: a pull request author sees every
//! broken rule at once. Later checks (the semver gate, consumer contracts)
//! plug in as further [`CheckResult`]s.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use crate::catalog::{Catalog, ContractFiles};
use crate::schema::{SchemaDoc, SchemaRef};
use crate::subject::{self, Filter, FilterIndex};

/// One named check and what failed in it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Stable name, e.g. `schemas.metaschema`.
    pub name: &'static str,
    /// What the check proves, for the summary.
    pub description: &'static str,
    /// How many things were checked.
    pub checked: usize,
    /// One line per failure.
    pub failures: Vec<String>,
}

impl CheckResult {
    pub(crate) fn new(name: &'static str, description: &'static str) -> Self {
        CheckResult {
            name,
            description,
            checked: 0,
            failures: Vec::new(),
        }
    }

    /// Whether nothing failed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The outcome of `herald check`.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Where the contracts came from.
    pub origin: String,
    /// Every check, in order.
    pub checks: Vec<CheckResult>,
}

impl CheckReport {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(CheckResult::passed)
    }

    /// Total failures over all checks.
    pub fn failure_count(&self) -> usize {
        self.checks.iter().map(|c| c.failures.len()).sum()
    }
}

/// Loads the contracts and runs every check. A contracts directory that does
/// not even load yields a report with that one failure.
pub fn run(files: ContractFiles) -> (Option<Catalog>, CheckReport) {
    let origin = files.origin.clone();
    match Catalog::from_files(files) {
        Ok(catalog) => {
            let report = run_on(&catalog);
            (Some(catalog), report)
        }
        Err(e) => {
            let mut load =
                CheckResult::new("contracts.load", "catalog and schemas load and compile");
            load.checked = 1;
            load.failures.push(e.to_string());
            (
                None,
                CheckReport {
                    origin,
                    checks: vec![load],
                },
            )
        }
    }
}

/// Runs every check on a loaded catalog.
pub fn run_on(catalog: &Catalog) -> CheckReport {
    let mut load = CheckResult::new(
        "contracts.load",
        "catalog and schemas load and compile, every $ref resolves offline",
    );
    // Counted without `schemas()`, whose parse of every document would otherwise
    // run here alone, before the threads below can share it.
    load.checked = catalog.version_count() + 1;
    load.failures.extend(catalog.problems().iter().cloned());

    // Compiling every validator and the semver gate's diffs are check's two largest
    // costs (about a third each at 1,000 schemas) and need nothing from the other
    // checks: each runs on a thread of its own beside them, so no thread carries much
    // more than a third of the work (validators are compiled once, whichever thread
    // asks first; the schema documents are parsed once, likewise).
    let (compiled, rest) = std::thread::scope(|scope| {
        let compiling = scope.spawn(|| catalog.compile_all());
        let semver = scope.spawn(|| semver(catalog));
        let before = [
            metaschema(catalog),
            ids(catalog),
            subjects(catalog),
            services(catalog),
            consumers(catalog),
            streams(catalog),
            crate::examples::check(catalog),
        ];
        let after = [lock(catalog), consumer_contracts(catalog)];
        // The report keeps its order: the semver gate comes between examples and lock.
        let rest: Vec<CheckResult> = (before.into_iter())
            .chain([joined(semver)])
            .chain(after)
            .collect();
        (joined(compiling), rest)
    });
    load.failures.extend(compiled);

    CheckReport {
        origin: catalog.files().origin.clone(),
        checks: std::iter::once(load).chain(rest).collect(),
    }
}

/// A scoped thread's result; its panic is the caller's.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The pull-request gate: how the contracts changed since a base revision.
/// Every added version is judged against its history; edited or deleted
/// released versions fail.
pub fn against_base(base: &Catalog, head: &Catalog, base_name: &str) -> CheckResult {
    let mut r = CheckResult::new(
        "base.evolution",
        "versions added since the base are compatible and bumped enough; released ones untouched",
    );
    match crate::versions::compare_base(base, head) {
        Err(e) => r
            .failures
            .push(format!("cannot compare with {base_name}: {e}")),
        Ok(cmp) => {
            r.checked = cmp.added.len() + base.schemas().values().map(Vec::len).sum::<usize>();
            r.failures = cmp.violations();
        }
    }
    r
}

fn metaschema(catalog: &Catalog) -> CheckResult {
    let mut r = CheckResult::new(
        "schemas.metaschema",
        "every schema is valid JSON Schema draft 2020-12",
    );
    for doc in catalog.schemas().values().flatten() {
        r.checked += 1;
        if doc.document.get("$schema").and_then(Value::as_str)
            != Some("https://json-schema.org/draft/2020-12/schema")
        {
            r.failures.push(format!(
                "{}: $schema must be https://json-schema.org/draft/2020-12/schema",
                doc.path
            ));
        }
        if let Err(e) = jsonschema::meta::validate(&doc.document) {
            r.failures.push(format!(
                "{}: {} at {}",
                doc.path,
                e,
                e.instance_path().as_str()
            ));
        }
    }
    r
}

fn ids(catalog: &Catalog) -> CheckResult {
    let mut r = CheckResult::new(
        "schemas.ids",
        "every $id is unique and names its file's schema and version",
    );
    let mut seen = BTreeMap::new();
    for doc in catalog.schemas().values().flatten() {
        r.checked += 1;
        if let Some(other) = seen.insert(doc.id.clone(), doc.path.clone()) {
            r.failures
                .push(format!("{} and {other} share $id {}", doc.path, doc.id));
        }
        if catalog.schema_id(&doc.name, doc.version) != doc.id {
            r.failures.push(format!(
                "{}: $id {} does not match its path",
                doc.path, doc.id
            ));
        }
    }
    r
}

fn subjects(catalog: &Catalog) -> CheckResult {
    let mut r = CheckResult::new(
        "catalog.subjects",
        "every subject belongs to its topic, maps to a schema, and names a required identity field",
    );
    let mut names = BTreeSet::new();
    // The first topic of each name, as a search in catalog order would find it.
    let mut topics = HashMap::new();
    for t in catalog.topics() {
        topics.entry(t.name.as_str()).or_insert(t);
    }
    for s in catalog.subjects() {
        r.checked += 1;
        if !names.insert(&s.name) {
            r.failures
                .push(format!("subject {} is declared twice", s.name));
        }
        match topics.get(s.topic.as_str()) {
            None => r
                .failures
                .push(format!("subject {}: no topic named {}", s.name, s.topic)),
            Some(t) => {
                if !t.subjects.iter().any(|f| subject::matches(f, &s.name)) {
                    r.failures.push(format!(
                        "subject {} does not match its topic's subjects {:?}",
                        s.name, t.subjects
                    ));
                }
            }
        }
        let latest = catalog
            .schemas()
            .get(&s.schema)
            .and_then(|v| v.iter().rev().find(|d| d.version.major == s.major));
        match latest {
            None => r.failures.push(format!(
                "subject {}: schema {}@{}.x.x does not exist",
                s.name, s.schema, s.major
            )),
            Some(doc) => {
                if !is_required_property(doc, &s.identity) {
                    r.failures.push(format!(
                        "subject {}: identity field `{}` is not a required property of {}",
                        s.name,
                        s.identity,
                        doc.label()
                    ));
                }
            }
        }
    }
    r
}

fn is_required_property(doc: &SchemaDoc, field: &str) -> bool {
    let required = doc
        .document
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|v| v == field));
    let declared = doc
        .document
        .get("properties")
        .and_then(|p| p.get(field))
        .is_some();
    required && declared
}

fn services(catalog: &Catalog) -> CheckResult {
    let mut r = CheckResult::new(
        "catalog.services",
        "every producer and consumer is a declared service",
    );
    let declared: BTreeSet<&str> = catalog.services().iter().map(|s| s.name.as_str()).collect();
    if declared.len() != catalog.services().len() {
        r.failures.push("a service is declared twice".into());
    }
    for t in catalog.topics() {
        for p in &t.producers {
            r.checked += 1;
            if p != "*" && !declared.contains(p.as_str()) {
                r.failures.push(format!(
                    "topic {}: producer {p} is not a declared service",
                    t.name
                ));
            }
        }
        for c in &t.consumers {
            r.checked += 1;
            if !declared.contains(c.as_str()) {
                r.failures.push(format!(
                    "topic {}: consumer {c} is not a declared service",
                    t.name
                ));
            }
        }
    }
    r
}

fn consumers(catalog: &Catalog) -> CheckResult {
    let mut r = CheckResult::new(
        "catalog.consumers",
        "every consumer subscribes within one topic it is listed under and reads its schema",
    );
    let mut durables = BTreeSet::new();
    // Every topic filter, and the topic it belongs to, in catalog order.
    let topic_of: Vec<usize> = (catalog.topics().iter().enumerate())
        .flat_map(|(i, t)| t.subjects.iter().map(move |_| i))
        .collect();
    let topic_filters = FilterIndex::new(
        catalog
            .topics()
            .iter()
            .flat_map(|t| t.subjects.iter().map(String::as_str)),
    );
    let subjects = FilterIndex::new(catalog.subjects().iter().map(|s| s.name.as_str()));
    // (service, topic) for every consumer entry within one of the topic's filters.
    let mut entries: HashSet<(&str, usize)> = HashSet::new();
    for c in catalog.consumers() {
        let filter = Filter::parse(&c.filter);
        let within = topic_filters.containing(&filter);
        entries.extend(within.iter().map(|&f| (c.service.as_str(), topic_of[f])));
        r.checked += 1;
        let name = c.durable_name();
        if !durables.insert(name.clone()) {
            r.failures
                .push(format!("consumer {name} is declared twice"));
        }
        if !catalog.services().iter().any(|s| s.name == c.service) {
            r.failures.push(format!(
                "consumer {name}: service {} is not declared",
                c.service
            ));
        }
        match within.first().map(|&f| &catalog.topics()[topic_of[f]]) {
            None => r.failures.push(format!(
                "consumer {name}: filter {} is not within any topic's subjects",
                c.filter
            )),
            Some(t) => {
                if !t.consumers.contains(&c.service) {
                    r.failures.push(format!(
                        "consumer {name}: {} is not listed as a consumer of topic {}",
                        c.service, t.name
                    ));
                }
            }
        }
        let covered: Vec<_> = subjects
            .overlapping(&filter)
            .into_iter()
            .map(|i| &catalog.subjects()[i])
            .collect();
        if covered.is_empty() {
            r.failures.push(format!(
                "consumer {name}: filter {} matches no subject",
                c.filter
            ));
        }
        for s in covered {
            if s.schema != c.reads.schema {
                r.failures.push(format!(
                    "consumer {name} reads {} but subject {} carries {}",
                    c.reads.schema, s.name, s.schema
                ));
            }
        }
        let reads = SchemaRef {
            name: c.reads.schema.clone(),
            version: None,
        };
        if catalog.schema(&reads).is_none() {
            r.failures.push(format!(
                "consumer {name}: reads schema {} which does not exist",
                c.reads.schema
            ));
        }
        if c.max_deliver < 1 || c.max_ack_pending < 1 {
            r.failures.push(format!(
                "consumer {name}: max_deliver and max_ack_pending must be at least 1"
            ));
        }
        for f in &c.fields {
            if !f.starts_with('/') {
                r.failures.push(format!(
                    "consumer {name}: field `{f}` is not a JSON Pointer"
                ));
            }
        }
    }
    for (i, t) in catalog.topics().iter().enumerate() {
        for svc in &t.consumers {
            if !entries.contains(&(svc.as_str(), i)) {
                r.failures.push(format!(
                    "topic {}: {svc} is listed as a consumer but has no [[consumer]] entry for it",
                    t.name
                ));
            }
        }
    }
    r
}

fn streams(catalog: &Catalog) -> CheckResult {
    let mut r = CheckResult::new(
        "catalog.streams",
        "stream names are unique and no two streams claim the same subjects",
    );
    let streams = catalog.streams();
    // Overlapping filters of two different streams, in stream then filter order.
    let stream_of: Vec<(usize, usize)> = (streams.iter().enumerate())
        .flat_map(|(i, s)| (0..s.subjects.len()).map(move |k| (i, k)))
        .collect();
    let index = FilterIndex::new(
        streams
            .iter()
            .flat_map(|s| s.subjects.iter().map(String::as_str)),
    );
    let mut overlaps = Vec::new();
    for (f, &(i, a)) in stream_of.iter().enumerate() {
        for g in index.overlapping(index.get(f)) {
            let (j, b) = stream_of[g];
            if j > i {
                overlaps.push((i, j, a, b));
            }
        }
    }
    overlaps.sort_unstable();
    let mut overlaps = overlaps.into_iter().peekable();
    let mut names = BTreeSet::new();
    for (i, s) in streams.iter().enumerate() {
        r.checked += 1;
        if !names.insert(&s.name) {
            r.failures
                .push(format!("stream {} is declared twice", s.name));
        }
        if s.duplicate_window > s.max_age {
            r.failures.push(format!(
                "stream {}: duplicate_window is longer than max_age",
                s.name
            ));
        }
        while let Some((_, j, a, b)) = overlaps.next_if(|o| o.0 == i) {
            r.failures.push(format!(
                "streams {} and {} overlap on {} / {}",
                s.name, streams[j].name, s.subjects[a], streams[j].subjects[b]
            ));
        }
    }
    r
}

fn semver(catalog: &Catalog) -> CheckResult {
    let mut r = CheckResult::new(
        "versions.semver",
        "each version is compatible with its history under the schema's mode and bumps semver enough",
    );
    for name in catalog.schemas().keys() {
        match crate::versions::history(catalog, name) {
            Err(e) => r.failures.push(format!("{name}: {e}")),
            Ok(steps) => {
                for step in steps {
                    r.checked += 1;
                    r.failures.extend(step.violations());
                }
            }
        }
    }
    r
}

fn lock(catalog: &Catalog) -> CheckResult {
    let mut r = CheckResult::new(
        "versions.lock",
        "released versions are unchanged since `herald lock` recorded them, and every version is recorded",
    );
    match crate::versions::lock_update(catalog) {
        Err(e) => r.failures.push(e),
        Ok(u) => {
            r.checked = catalog.schemas().values().map(Vec::len).sum();
            r.failures.extend(u.edited);
            r.failures.extend(u.removed);
            for key in u.added {
                r.failures.push(format!(
                    "{key} is not in {}: run `herald lock` to record it as released",
                    crate::versions::LOCK_FILE
                ));
            }
        }
    }
    r
}

fn consumer_contracts(catalog: &Catalog) -> CheckResult {
    let mut r = CheckResult::new(
        "consumers.contracts",
        "producers' schemas still give every consumer the fields it depends on, in the major it reads",
    );
    r.checked = catalog.consumers().iter().map(|c| c.fields.len() + 1).sum();
    r.failures = crate::versions::consumer_contract_failures(catalog);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_passes_only_when_every_check_passes() {
        let (catalog, report) = run(ContractFiles::embedded());
        assert!(catalog.is_some());
        assert!(report.passed(), "{:#?}", report.checks);
        assert_eq!(report.failure_count(), 0);

        let mut failing = report.clone();
        failing.checks[0].failures.push("broken".into());
        failing.checks[1].failures.push("also broken".into());
        assert!(!failing.passed());
        assert!(!failing.checks[0].passed());
        assert!(failing.checks[2].passed());
        assert_eq!(failing.failure_count(), 2);
    }
}
