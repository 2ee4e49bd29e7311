//! A read-only Confluent Schema Registry subset for JSON Schema, answered from
//! the catalog, so that tools that already speak the registry's REST API (the
//! `confluent-kafka` clients, serializers, UIs) read herald's contracts.
//!
//! **Naming.** Each catalog subject is a registry subject by the topic-name
//! strategy, `<nats subject>-value`, holding the versions of its schema's major;
//! each schema is a registry subject by the record-name strategy, `<SchemaName>`,
//! holding all its versions. Versions are numbered 1.. in semver order.
//!
//! **Ids** are stable across restarts and across new versions: the first 31 bits
//! of the version's content hash recorded in `contracts/schemas.lock` (the same
//! `sha256:` hash `herald lock` writes; computed the same way for a version not
//! yet locked). Two versions whose ids collide stop the server at start.
//!
//! **Read-only.** Registering, deleting and changing config answer 422 with
//! Confluent's `42205` (operation not permitted): contracts change through a pull
//! request checked by `herald check`. Compatibility questions are answered by
//! herald's own checker under the schema's mode and policy from the catalog.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use herald_contracts::evolution::{self, Document, Mode};
use herald_contracts::versions::{self, content_hash, Lock};
use herald_contracts::{Catalog, SchemaDoc};
use serde_json::{json, Value};

use crate::app::AppState;

/// The registry's media type.
pub const SR_JSON: &str = "application/vnd.schemaregistry.v1+json";

/// Why the registry view cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Two versions map to the same id.
    #[error(
        "schema ids collide: {0} and {1} have the same id {2}; report this to herald's maintainers"
    )]
    Collision(String, String, i32),
    /// Unreadable lock file.
    #[error("contracts/schemas.lock: {0}")]
    Lock(String),
}

/// One schema version as the registry shows it.
#[derive(Debug, Clone)]
struct Entry {
    id: i32,
    name: String,
    /// Index into the catalog's versions of `name`.
    index: usize,
    hash: String,
    text: String,
    references: Vec<Value>,
}

/// The registry view of a catalog (built once at start).
#[derive(Debug, Clone)]
pub struct Registry {
    base_path: String,
    entries: Vec<Entry>,
    by_id: HashMap<i32, usize>,
    subjects: BTreeMap<String, Vec<usize>>,
}

/// The id of a content hash (`sha256:<hex>`): its first 31 bits, never 0.
pub fn id_of(hash: &str) -> i32 {
    let hex = hash.trim_start_matches("sha256:");
    let n = u32::from_str_radix(hex.get(..8).unwrap_or("1"), 16).unwrap_or(1) & 0x7fff_ffff;
    n.max(1) as i32
}

/// The URL path of `schema_base` (`https://host/schemas/` -> `/schemas/`).
fn base_path(schema_base: &str) -> String {
    let rest = schema_base
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(schema_base);
    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("/");
    if path.ends_with('/') {
        path.to_string()
    } else {
        format!("{path}/")
    }
}

/// Every external `$ref` file (`../common/1.0.0.json`) in a schema.
fn ref_files(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    if let Some(r) = x.as_str() {
                        let file = r.split('#').next().unwrap_or("");
                        if !file.is_empty() && !out.iter().any(|o| o == file) {
                            out.push(file.to_string());
                        }
                    }
                } else {
                    ref_files(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| ref_files(x, out)),
        _ => {}
    }
}

impl Registry {
    /// Builds the view of `catalog`.
    pub fn new(catalog: &Catalog) -> Result<Registry, RegistryError> {
        let lock = Lock::of(catalog).map_err(RegistryError::Lock)?;
        let mut entries = Vec::new();
        let mut by_id: HashMap<i32, usize> = HashMap::new();
        let mut first: HashMap<(String, String), usize> = HashMap::new();
        for (name, docs) in catalog.schemas() {
            for (index, doc) in docs.iter().enumerate() {
                let key = format!("{name}@{}", doc.version);
                let hash = lock
                    .versions
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| content_hash(&doc.document));
                let id = id_of(&hash);
                if let Some(&other) = by_id.get(&id) {
                    let o: &Entry = &entries[other];
                    return Err(RegistryError::Collision(
                        format!("{}@{}", o.name, catalog.schemas()[&o.name][o.index].version),
                        key,
                        id,
                    ));
                }
                by_id.insert(id, entries.len());
                first.insert((name.clone(), doc.version.to_string()), entries.len());
                entries.push(Entry {
                    id,
                    name: name.clone(),
                    index,
                    hash,
                    text: serde_json::to_string(&doc.document).unwrap_or_default(),
                    references: Vec::new(),
                });
            }
        }
        // References: `$ref` files resolve to `<Name>/<version>.json` of another schema.
        for e in &mut entries {
            let doc = &catalog.schemas()[&e.name][e.index];
            let mut files = Vec::new();
            ref_files(&doc.document, &mut files);
            for f in files {
                let mut parts = f.rsplit('/');
                let (Some(file), Some(name)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let version = file.trim_end_matches(".json");
                if let Some(docs) = catalog.schemas().get(name) {
                    if let Some(pos) = docs.iter().position(|d| d.version.to_string() == version) {
                        e.references
                            .push(json!({"name": f, "subject": name, "version": pos + 1}));
                    }
                }
            }
        }
        let mut subjects: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, e) in entries.iter().enumerate() {
            subjects.entry(e.name.clone()).or_default().push(i);
        }
        for s in catalog.subjects() {
            let versions: Vec<usize> = entries
                .iter()
                .enumerate()
                .filter(|(_, e)| {
                    e.name == s.schema
                        && catalog.schemas()[&e.name][e.index].version.major == s.major
                })
                .map(|(i, _)| i)
                .collect();
            subjects.insert(format!("{}-value", s.name), versions);
        }
        Ok(Registry {
            base_path: base_path(&catalog.settings().schema_base),
            entries,
            by_id,
            subjects,
        })
    }

    /// The URL path schemas are served under (the path of `schema_base`).
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// Registry subject names.
    pub fn subject_names(&self) -> Vec<String> {
        self.subjects.keys().cloned().collect()
    }

    /// The id of `Name@version`.
    pub fn id(&self, name: &str, version: &str, catalog: &Catalog) -> Option<i32> {
        self.entries
            .iter()
            .find(|e| {
                e.name == name && catalog.schemas()[name][e.index].version.to_string() == version
            })
            .map(|e| e.id)
    }
}

fn sr(status: StatusCode, body: Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SR_JSON));
    r
}

/// A registry error: Confluent's `{"error_code", "message"}` with its HTTP status.
#[derive(Debug)]
struct SrError {
    status: StatusCode,
    code: u32,
    message: String,
}

impl IntoResponse for SrError {
    fn into_response(self) -> Response {
        sr(
            self.status,
            json!({"error_code": self.code, "message": self.message}),
        )
    }
}

fn sr_error(status: StatusCode, code: u32, message: impl Into<String>) -> SrError {
    SrError {
        status,
        code,
        message: message.into(),
    }
}

fn subject_not_found(s: &str) -> SrError {
    sr_error(
        StatusCode::NOT_FOUND,
        40401,
        format!("Subject '{s}' not found."),
    )
}

fn read_only() -> SrError {
    sr_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        42205,
        "Subject is in read-only mode: herald's registry is read-only. Contracts change through a pull request to contracts/ checked by `herald check`; `herald lock` records released versions.",
    )
}

/// The Confluent level closest to a herald mode. `seed` (the platform spec's
/// table) is backward compatibility plus extra breaking kinds, so it reads as BACKWARD.
fn level(mode: Mode) -> &'static str {
    match mode {
        Mode::Seed | Mode::Backward => "BACKWARD",
        Mode::Forward => "FORWARD",
        Mode::Full => "FULL",
        Mode::BackwardTransitive => "BACKWARD_TRANSITIVE",
        Mode::ForwardTransitive => "FORWARD_TRANSITIVE",
        Mode::FullTransitive => "FULL_TRANSITIVE",
    }
}

type App = State<Arc<AppState>>;

/// Adds the registry routes.
pub fn routes(r: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    r.route("/subjects", get(subjects))
        .route("/subjects/{s}", post(lookup).delete(refuse))
        .route("/subjects/{s}/versions", get(versions).post(refuse))
        .route("/subjects/{s}/versions/{v}", get(version).delete(refuse))
        .route("/subjects/{s}/versions/{v}/schema", get(version_schema))
        .route("/schemas/ids/{id}", get(by_id))
        .route("/schemas/ids/{id}/versions", get(id_versions))
        .route("/schemas/ids/{id}/subjects", get(id_subjects))
        .route("/schemas/types", get(types))
        .route("/compatibility/subjects/{s}/versions/{v}", post(compat_one))
        .route("/compatibility/subjects/{s}/versions", post(compat_all))
        .route("/config", get(config).put(refuse))
        .route(
            "/config/{s}",
            get(subject_config).put(refuse).delete(refuse),
        )
        .route("/mode", get(mode).put(refuse))
        .route("/mode/{s}", get(mode).put(refuse))
}

async fn refuse() -> Response {
    read_only().into_response()
}

async fn subjects(State(app): App) -> Response {
    sr(StatusCode::OK, json!(app.registry.subject_names()))
}

async fn types() -> Response {
    sr(StatusCode::OK, json!(["JSON"]))
}

async fn mode() -> Response {
    sr(StatusCode::OK, json!({"mode": "READONLY"}))
}

fn versions_of<'r>(app: &'r AppState, s: &str) -> Result<&'r [usize], SrError> {
    app.registry
        .subjects
        .get(s)
        .map(Vec::as_slice)
        .ok_or_else(|| subject_not_found(s))
}

async fn versions(State(app): App, Path(s): Path<String>) -> Response {
    match versions_of(&app, &s) {
        Ok(v) => sr(StatusCode::OK, json!((1..=v.len()).collect::<Vec<_>>())),
        Err(r) => r.into_response(),
    }
}

/// The entry index and version number of `v` (`latest`, `-1` or `1..`) in subject `s`.
fn pick(app: &AppState, s: &str, v: &str) -> Result<(usize, usize), SrError> {
    let list = versions_of(app, s)?;
    let n = match v {
        "latest" | "-1" => list.len(),
        other => match other.parse::<i64>() {
            Ok(n) if n >= 1 => n as usize,
            _ => {
                return Err(sr_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    42202,
                    format!("The specified version '{v}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""),
                ))
            }
        },
    };
    match list.get(n.wrapping_sub(1)) {
        Some(&i) => Ok((i, n)),
        None => Err(sr_error(
            StatusCode::NOT_FOUND,
            40402,
            format!("Version {v} not found."),
        )),
    }
}

fn registered(e: &Entry, subject: &str, version: usize) -> Value {
    json!({
        "subject": subject,
        "version": version,
        "id": e.id,
        "schemaType": "JSON",
        "references": e.references,
        "schema": e.text,
    })
}

async fn version(State(app): App, Path((s, v)): Path<(String, String)>) -> Response {
    match pick(&app, &s, &v) {
        Ok((i, n)) => sr(StatusCode::OK, registered(&app.registry.entries[i], &s, n)),
        Err(r) => r.into_response(),
    }
}

async fn version_schema(State(app): App, Path((s, v)): Path<(String, String)>) -> Response {
    match pick(&app, &s, &v) {
        Ok((i, _)) => {
            let e = &app.registry.entries[i];
            sr(
                StatusCode::OK,
                app.catalog.schemas()[&e.name][e.index].document.clone(),
            )
        }
        Err(r) => r.into_response(),
    }
}

fn entry_by_id<'r>(app: &'r AppState, id: &str) -> Result<(usize, &'r Entry), SrError> {
    id.parse::<i32>()
        .ok()
        .and_then(|id| app.registry.by_id.get(&id).copied())
        .map(|i| (i, &app.registry.entries[i]))
        .ok_or_else(|| {
            sr_error(
                StatusCode::NOT_FOUND,
                40403,
                format!("Schema {id} not found"),
            )
        })
}

async fn by_id(State(app): App, Path(id): Path<String>) -> Response {
    match entry_by_id(&app, &id) {
        Ok((_, e)) => sr(
            StatusCode::OK,
            json!({"schemaType": "JSON", "schema": e.text, "references": e.references}),
        ),
        Err(r) => r.into_response(),
    }
}

/// `(subject, version)` pairs holding entry `i`.
fn holders(app: &AppState, i: usize) -> Vec<(String, usize)> {
    app.registry
        .subjects
        .iter()
        .filter_map(|(s, list)| {
            list.iter()
                .position(|&x| x == i)
                .map(|p| (s.clone(), p + 1))
        })
        .collect()
}

async fn id_versions(State(app): App, Path(id): Path<String>) -> Response {
    match entry_by_id(&app, &id) {
        Ok((i, _)) => sr(
            StatusCode::OK,
            json!(holders(&app, i)
                .into_iter()
                .map(|(s, v)| json!({"subject": s, "version": v}))
                .collect::<Vec<_>>()),
        ),
        Err(r) => r.into_response(),
    }
}

async fn id_subjects(State(app): App, Path(id): Path<String>) -> Response {
    match entry_by_id(&app, &id) {
        Ok((i, _)) => sr(
            StatusCode::OK,
            json!(holders(&app, i)
                .into_iter()
                .map(|(s, _)| s)
                .collect::<Vec<_>>()),
        ),
        Err(r) => r.into_response(),
    }
}

/// The schema in a registration-shaped body (`{"schema": "...", "schemaType": "JSON"}`).
fn posted_schema(body: &[u8]) -> Result<Value, SrError> {
    let invalid = |m: String| sr_error(StatusCode::UNPROCESSABLE_ENTITY, 42201, m);
    let req: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("Invalid schema: the request body is not JSON: {e}")))?;
    match req.get("schemaType").and_then(Value::as_str) {
        None | Some("JSON") => {}
        Some(t) => {
            return Err(invalid(format!(
            "Invalid schema: schemaType {t} is not served here; herald's contracts are JSON Schema"
        )))
        }
    }
    let text = req
        .get("schema")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("Invalid schema: the body has no \"schema\" string".into()))?;
    serde_json::from_str(text).map_err(|e| invalid(format!("Invalid schema: not JSON: {e}")))
}

async fn lookup(State(app): App, Path(s): Path<String>, body: Bytes) -> Response {
    let list = match versions_of(&app, &s) {
        Ok(l) => l,
        Err(r) => return r.into_response(),
    };
    let schema = match posted_schema(&body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let hash = content_hash(&schema);
    match list
        .iter()
        .position(|&i| app.registry.entries[i].hash == hash)
    {
        Some(p) => {
            let i = list[p];
            sr(
                StatusCode::OK,
                registered(&app.registry.entries[i], &s, p + 1),
            )
        }
        None => sr_error(StatusCode::NOT_FOUND, 40403, "Schema not found").into_response(),
    }
}

#[derive(Debug, serde::Deserialize)]
struct CompatQuery {
    verbose: Option<String>,
}

fn doc(app: &AppState, i: usize) -> &SchemaDoc {
    let e = &app.registry.entries[i];
    &app.catalog.schemas()[&e.name][e.index]
}

/// Judges `schema` against the versions `against` of subject `s` with herald's checker.
fn judge(app: &AppState, against: &[usize], schema: &Value, verbose: bool) -> Response {
    let Some(&last) = against.last() else {
        return sr(StatusCode::OK, json!({"is_compatible": true}));
    };
    let name = &app.registry.entries[last].name;
    let options = match versions::options_for(&app.catalog, name) {
        Ok(o) => o,
        Err(e) => {
            return sr_error(StatusCode::INTERNAL_SERVER_ERROR, 50001, e.to_string())
                .into_response()
        }
    };
    let base = versions::document(&app.catalog, doc(app, last));
    let uri = schema
        .get("$id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(base.uri.clone());
    let mut new = Document::new(schema).with_reserved(base.reserved.clone());
    if let Some(u) = uri {
        new = new.with_uri(u);
    }
    let mut messages = Vec::new();
    let mut compatible = true;
    for &i in against {
        let old = versions::document(&app.catalog, doc(app, i));
        match evolution::compare_documents(&old, &new, &options, app.catalog.as_ref()) {
            Ok(report) => {
                if !report.compatible {
                    compatible = false;
                }
                for c in report.breaking() {
                    messages.push(format!(
                        "{} at '{}' against version {}: {} (mode {})",
                        c.kind,
                        if c.pointer.is_empty() {
                            "/"
                        } else {
                            &c.pointer
                        },
                        doc(app, i).version,
                        c.message,
                        report.mode
                    ));
                }
            }
            Err(e) => {
                return sr_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    42201,
                    format!("Invalid schema: {e}"),
                )
                .into_response()
            }
        }
    }
    if verbose {
        sr(
            StatusCode::OK,
            json!({"is_compatible": compatible, "messages": messages}),
        )
    } else {
        sr(StatusCode::OK, json!({"is_compatible": compatible}))
    }
}

fn is_true(q: &CompatQuery) -> bool {
    q.verbose
        .as_deref()
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

async fn compat_one(
    State(app): App,
    Path((s, v)): Path<(String, String)>,
    Query(q): Query<CompatQuery>,
    body: Bytes,
) -> Response {
    let (i, _) = match pick(&app, &s, &v) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    match posted_schema(&body) {
        Ok(schema) => judge(&app, &[i], &schema, is_true(&q)),
        Err(r) => r.into_response(),
    }
}

async fn compat_all(
    State(app): App,
    Path(s): Path<String>,
    Query(q): Query<CompatQuery>,
    body: Bytes,
) -> Response {
    let list = match versions_of(&app, &s) {
        Ok(l) => l.to_vec(),
        Err(r) => return r.into_response(),
    };
    let schema = match posted_schema(&body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let name = list.last().map(|&i| app.registry.entries[i].name.clone());
    let transitive = name
        .and_then(|n| versions::options_for(&app.catalog, &n).ok())
        .is_some_and(|o| o.mode.is_transitive());
    let against: Vec<usize> = if transitive {
        list
    } else {
        list.last().copied().into_iter().collect()
    };
    judge(&app, &against, &schema, is_true(&q))
}

fn level_of(app: &AppState, schema: &str) -> Response {
    match versions::options_for(&app.catalog, schema) {
        Ok(o) => sr(
            StatusCode::OK,
            json!({"compatibilityLevel": level(o.mode), "heraldMode": o.mode.as_str(), "heraldPolicy": o.policy.as_str()}),
        ),
        Err(e) => sr_error(StatusCode::INTERNAL_SERVER_ERROR, 50001, e.to_string()).into_response(),
    }
}

async fn config(State(app): App) -> Response {
    let mode: Mode = app.catalog.evolution().mode.parse().unwrap_or_default();
    sr(
        StatusCode::OK,
        json!({"compatibilityLevel": level(mode), "heraldMode": mode.as_str()}),
    )
}

async fn subject_config(State(app): App, Path(s): Path<String>) -> Response {
    match versions_of(&app, &s) {
        Ok(list) => match list.last() {
            Some(&i) => {
                let name = app.registry.entries[i].name.clone();
                level_of(&app, &name)
            }
            None => subject_not_found(&s).into_response(),
        },
        Err(r) => r.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_derived_from_the_lock_hash() {
        assert_eq!(id_of("sha256:80000001ffff"), 1);
        assert_eq!(id_of("sha256:0000000a"), 10);
        let c = Catalog::embedded().unwrap();
        let a = Registry::new(&c).unwrap();
        let b = Registry::new(&c).unwrap();
        let id = a.id("UsageEvent", "1.1.0", &c).unwrap();
        assert_eq!(Some(id), b.id("UsageEvent", "1.1.0", &c));
        let lock = Lock::of(&c).unwrap();
        assert_eq!(id, id_of(&lock.versions["UsageEvent@1.1.0"]));
        assert!(a
            .subject_names()
            .contains(&"usage.metered.api_call-value".to_string()));
        assert!(a.subject_names().contains(&"UsageEvent".to_string()));
    }

    #[test]
    fn base_path_is_the_path_of_schema_base() {
        assert_eq!(
            base_path("https://contracts.platform.internal/schemas/"),
            "/schemas/"
        );
        assert_eq!(base_path("http://127.0.0.1:8080/x/y"), "/x/y/");
        assert_eq!(base_path("http://h"), "/");
    }
}
