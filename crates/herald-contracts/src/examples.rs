//! The `examples` check: valid examples validate and invalid ones fail for their
//! stated reason, each against the schema versions it applies to.
//!
//! Which versions an example applies to, in order:
//! 1. its `"versions"` field (in the wrapper form `{"versions": …, "event": …}` for a
//!    valid example, beside `"expect"` for an invalid one): `"^N"` for every version
//!    of major N, `"N.M.P"` for one version, `"*"` for every version;
//! 2. else the version its event names in `"$schema"`;
//! 3. else every version of the schema's latest major.
//!
//! Why: an example is written for a major. Without a scope, a major bump would
//! judge old examples by the new major; the failure then says which `"versions"`
//! to add so the example keeps checking the major it was written for.

use serde_json::Value;

use crate::catalog::Catalog;
use crate::check::CheckResult;
use crate::schema::{SchemaDoc, SchemaRef, Version};

/// The versions an example applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    /// Every version of one major (`"^1"`).
    Major(u64),
    /// One version (`"1.1.0"`).
    Exact(Version),
    /// Every version (`"*"`).
    All,
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    let t = text.trim();
    if t == "*" {
        return Ok(Scope::All);
    }
    if let Some(major) = t.strip_prefix('^') {
        return major
            .parse()
            .map(Scope::Major)
            .map_err(|_| format!("`versions: {text}`: expected ^MAJOR, MAJOR.MINOR.PATCH or *"));
    }
    t.parse::<Version>()
        .map(Scope::Exact)
        .map_err(|_| format!("`versions: {text}`: expected ^MAJOR, MAJOR.MINOR.PATCH or *"))
}

pub(crate) fn check(catalog: &Catalog) -> CheckResult {
    let mut r = CheckResult::new(
        "examples",
        "valid examples validate (against every version they apply to) and invalid ones fail for their stated reason",
    );
    for (path, bytes) in &catalog.files().files {
        let Some(rest) = path.strip_prefix("examples/") else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let [name, kind, _file] = parts[..] else {
            r.failures.push(format!(
                "{path}: examples live at examples/<Name>/valid|invalid/<file>.json"
            ));
            continue;
        };
        r.checked += 1;
        let Some(versions) = catalog.schemas().get(name) else {
            r.failures
                .push(format!("{path}: there is no schema {name}"));
            continue;
        };
        let value: Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => {
                r.failures.push(format!("{path}: not JSON: {e}"));
                continue;
            }
        };
        let scope = match value.get("versions") {
            None => None,
            Some(Value::String(s)) => match parse_scope(s) {
                Ok(s) => Some(s),
                Err(e) => {
                    r.failures.push(format!("{path}: {e}"));
                    continue;
                }
            },
            Some(other) => {
                r.failures.push(format!(
                    "{path}: `versions` must be a string, found {other}"
                ));
                continue;
            }
        };
        match kind {
            "valid" => check_valid(catalog, versions, path, &value, scope.as_ref(), &mut r),
            "invalid" => check_invalid(catalog, versions, path, &value, scope.as_ref(), &mut r),
            other => r
                .failures
                .push(format!("{path}: `{other}` must be `valid` or `invalid`")),
        }
    }
    r
}

/// The versions an example's event is checked against.
fn targets<'c>(
    catalog: &'c Catalog,
    versions: &'c [SchemaDoc],
    event: &Value,
    scope: Option<&Scope>,
) -> Vec<&'c SchemaDoc> {
    match scope {
        Some(Scope::All) => versions.iter().collect(),
        Some(Scope::Major(m)) => versions.iter().filter(|d| d.version.major == *m).collect(),
        Some(Scope::Exact(v)) => versions.iter().filter(|d| d.version == *v).collect(),
        None => {
            if let Some(doc) = event
                .get("$schema")
                .and_then(Value::as_str)
                .and_then(|id| catalog.schema_by_id(id))
            {
                return vec![doc];
            }
            let major = versions.last().map(|d| d.version.major);
            versions
                .iter()
                .filter(|d| Some(d.version.major) == major)
                .collect()
        }
    }
}

fn validate(
    catalog: &Catalog,
    doc: &SchemaDoc,
    event: &Value,
) -> Result<(), crate::ValidationError> {
    let schema = SchemaRef {
        name: doc.name.clone(),
        version: Some(doc.version),
    };
    catalog.validate_schema(&schema, event).map(|_| ())
}

/// For an unscoped example that fails: a major whose every version accepts it (or,
/// for an invalid example, under which it fails as expected), to suggest as scope.
fn scope_hint(
    versions: &[SchemaDoc],
    scope: Option<&Scope>,
    fits: impl Fn(&SchemaDoc) -> bool,
) -> String {
    if scope.is_some() {
        return String::new();
    }
    let mut majors: Vec<u64> = versions.iter().map(|d| d.version.major).collect();
    majors.dedup();
    let latest = majors.last().copied();
    let fitting = majors.iter().rev().copied().find(|m| {
        Some(*m) != latest && versions.iter().filter(|d| d.version.major == *m).all(&fits)
    });
    match fitting {
        Some(m) => format!(
            " (it fits major {m}: if it was written for that major, scope it with \"versions\": \"^{m}\")"
        ),
        None => String::new(),
    }
}

fn check_valid(
    catalog: &Catalog,
    versions: &[SchemaDoc],
    path: &str,
    value: &Value,
    scope: Option<&Scope>,
    r: &mut CheckResult,
) {
    // A bare event, or the wrapper form {"versions": …, "event": …}.
    let event = match (value.get("versions"), value.get("event")) {
        (Some(_), Some(e)) => e,
        (Some(_), None) => {
            r.failures.push(format!(
                "{path}: a valid example with `versions` is {{\"versions\", \"event\"}}"
            ));
            return;
        }
        _ => value,
    };
    let docs = targets(catalog, versions, event, scope);
    if docs.is_empty() {
        r.failures.push(format!(
            "{path}: its `versions` match no version of the schema"
        ));
    }
    for doc in docs {
        if let Err(e) = validate(catalog, doc, event) {
            let hint = scope_hint(versions, scope, |d| validate(catalog, d, event).is_ok());
            r.failures
                .push(format!("{path}: invalid under {}: {e}{hint}", doc.label()));
        }
    }
}

fn check_invalid(
    catalog: &Catalog,
    versions: &[SchemaDoc],
    path: &str,
    wrapper: &Value,
    scope: Option<&Scope>,
    r: &mut CheckResult,
) {
    let (Some(event), Some(expect)) = (
        wrapper.get("event"),
        wrapper.get("expect").and_then(Value::as_array),
    ) else {
        r.failures.push(format!(
            "{path}: an invalid example is {{\"description\", \"expect\": [{{\"path\", \"keyword\"}}], \"event\"}}"
        ));
        return;
    };
    let Some(doc) = targets(catalog, versions, event, scope).into_iter().last() else {
        r.failures.push(format!(
            "{path}: its `versions` match no version of the schema"
        ));
        return;
    };
    let fails_as_expected = |d: &SchemaDoc| match validate(catalog, d, event) {
        Ok(()) => false,
        Err(e) => expect.iter().all(|want| {
            let want_path = want.get("path").and_then(Value::as_str).unwrap_or("");
            let want_kw = want.get("keyword").and_then(Value::as_str).unwrap_or("");
            e.violations()
                .iter()
                .any(|v| v.instance_path == want_path && v.keyword == want_kw)
        }),
    };
    match validate(catalog, doc, event) {
        Ok(()) => {
            let hint = scope_hint(versions, scope, fails_as_expected);
            r.failures.push(format!(
                "{path}: expected to fail under {} but it validates{hint}",
                doc.label()
            ))
        }
        Err(e) => {
            for want in expect {
                let want_path = want.get("path").and_then(Value::as_str).unwrap_or("");
                let want_kw = want.get("keyword").and_then(Value::as_str).unwrap_or("");
                let found = e
                    .violations()
                    .iter()
                    .any(|v| v.instance_path == want_path && v.keyword == want_kw);
                if !found {
                    let hint = scope_hint(versions, scope, fails_as_expected);
                    r.failures.push(format!(
                        "{path}: fails, but not with `{want_kw}` at `{want_path}` as expected: {e}{hint}"
                    ));
                }
            }
        }
    }
}
