//! `herald bench contracts`: the contracts at platform scale. Builds synthetic
//! contracts from the shipped ones (N schemas in all) and times `check` and the
//! validation of one event on them, and measures the peak memory of a `herald
//! validate` process.
//!
//! Each synthetic family copies one shipped schema with its subjects (2 or 3, with
//! their constraints), stream, consumers and examples, under a prefix of its own
//! (`f00012.…`, schema `F00012UsageEvent`), in 3 versions: 1.0.0 is the shipped
//! schema's latest, 1.1.0 and 1.2.0 each add an optional property. The generated
//! contracts pass `herald check`; the benchmark refuses to time them otherwise.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use herald_contracts::{check, versions, Catalog, ContractFiles, SchemaDoc};
use serde::Serialize;
use serde_json::Value;

use super::BenchError;

/// The subject the validation of one event uses (a shipped one: any would do, and
/// it proves a process pays nothing for the families it never reads).
pub const VALIDATE_SUBJECT: &str = "usage.metered.api_call";

/// Synthetic contracts written to a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Generated {
    /// Schemas in all, the shipped ones included.
    pub schemas: usize,
    /// Schema versions in all.
    pub versions: usize,
    /// Synthetic families added to the shipped contracts.
    pub families: usize,
}

/// One row of the scale table.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleRow {
    /// Schemas in all.
    pub schemas: usize,
    /// Schema versions in all.
    pub versions: usize,
    /// Wall time of `check` (reading the files, loading, every check; not freeing
    /// the catalog afterwards), in seconds.
    pub check_secs: f64,
    /// Wall time of loading the contracts and validating one event, in seconds.
    pub validate_secs: f64,
    /// Peak RSS of `herald validate` of one event, MiB (when measured).
    pub validate_rss_mib: Option<f64>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BenchError + '_ {
    move |e| BenchError::Setup(format!("{}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), BenchError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::write(path, bytes).map_err(io(path))
}

/// Writes the shipped contracts plus enough synthetic families to `dir` for
/// `schemas` schemas in all, with a `schemas.lock` recording every version.
pub fn generate(dir: &Path, schemas: usize) -> Result<Generated, BenchError> {
    let shipped_files = ContractFiles::embedded();
    let shipped = Catalog::from_files(shipped_files.clone())
        .map_err(|e| BenchError::Setup(format!("the shipped contracts: {e}")))?;
    let Some(families) = schemas.checked_sub(shipped.schemas().len()) else {
        return Err(BenchError::Setup(format!(
            "--schemas {schemas}: the shipped contracts alone have {} schemas",
            shipped.schemas().len()
        )));
    };
    let templates = templates(&shipped);
    if templates.is_empty() && families > 0 {
        return Err(BenchError::Setup(
            "no shipped schema has two constrained subjects to copy".into(),
        ));
    }
    let mut catalog = String::from_utf8_lossy(&shipped_files.files["catalog.toml"]).into_owned();
    catalog.push_str("\n# ---- synthetic families (herald bench contracts)\n");
    for (path, bytes) in &shipped_files.files {
        if path != "catalog.toml" {
            write(&dir.join(path), bytes)?;
        }
    }
    for k in 1..=families {
        let template = templates[k % templates.len()];
        family(&shipped, &shipped_files, template, k, dir, &mut catalog)?;
    }
    write(&dir.join("catalog.toml"), catalog.as_bytes())?;
    // Record every version as released, so the lock check passes.
    let loaded = Catalog::load(dir).map_err(|e| BenchError::Setup(e.to_string()))?;
    let lock = versions::lock_update(&loaded).map_err(BenchError::Setup)?;
    write(
        &dir.join(versions::LOCK_FILE),
        lock.lock.render().as_bytes(),
    )?;
    Ok(Generated {
        schemas: loaded.schemas().len(),
        versions: loaded.schemas().values().map(Vec::len).sum(),
        families,
    })
}

/// Shipped schemas with at least two constrained concrete subjects, by name.
fn templates(shipped: &Catalog) -> Vec<&str> {
    shipped
        .schemas()
        .keys()
        .filter(|name| {
            shipped
                .subjects()
                .iter()
                .filter(|s| &s.schema == *name && s.constraint.is_some() && !s.name.contains('*'))
                .count()
                >= 2
        })
        .map(String::as_str)
        .collect()
}

/// Renames a subject or filter into family `prefix`: its first token is replaced.
fn rename(prefix: &str, subject: &str) -> String {
    match subject.split_once('.') {
        Some((_, rest)) => format!("{prefix}.{rest}"),
        None => prefix.to_string(),
    }
}

/// Writes family `k`'s schemas and examples, and appends its catalog entries.
fn family(
    shipped: &Catalog,
    files: &ContractFiles,
    template: &str,
    k: usize,
    dir: &Path,
    catalog: &mut String,
) -> Result<(), BenchError> {
    let prefix = format!("f{k:05}");
    let name = format!("F{k:05}{template}");
    let base = &shipped.settings().schema_base;
    let latest: &SchemaDoc = shipped.schemas()[template]
        .last()
        .expect("a schema has a version");
    for minor in 0..3u64 {
        let mut doc = latest.document.clone();
        doc["$id"] = format!("{base}{name}/1.{minor}.0.json").into();
        if let Some(props) = doc.get_mut("properties").and_then(Value::as_object_mut) {
            for m in 1..=minor {
                props.insert(
                    format!("note_{m}"),
                    serde_json::json!({"type": "string", "description": format!("Added in 1.{m}.0.")}),
                );
            }
        }
        let text = serde_json::to_string_pretty(&doc).expect("JSON serializes");
        write(
            &dir.join(format!("schemas/{name}/1.{minor}.0.json")),
            text.as_bytes(),
        )?;
    }
    let from = format!("/schemas/{template}/");
    let to = format!("/schemas/{name}/");
    let examples = format!("examples/{template}/");
    for (path, bytes) in files.files.range(examples.clone()..) {
        let Some(rest) = path.strip_prefix(&examples) else {
            break;
        };
        let text = String::from_utf8_lossy(bytes).replace(&from, &to);
        write(
            &dir.join(format!("examples/{name}/{rest}")),
            text.as_bytes(),
        )?;
    }

    let subjects: Vec<_> = shipped
        .subjects()
        .iter()
        .filter(|s| s.schema == template && s.constraint.is_some() && !s.name.contains('*'))
        .take(3)
        .collect();
    let topic = shipped
        .topics()
        .iter()
        .find(|t| t.name == subjects[0].topic)
        .ok_or_else(|| BenchError::Setup(format!("no topic for {}", subjects[0].name)))?;
    let consumers: Vec<_> = shipped
        .consumers()
        .iter()
        .filter(|c| c.reads.schema == template)
        .collect();
    let mut services: Vec<&str> = consumers.iter().map(|c| c.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    let list = |items: &[&str]| {
        items
            .iter()
            .map(|s| toml_string(s))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let producers: Vec<&str> = topic.producers.iter().map(String::as_str).collect();
    let _ = write!(
        catalog,
        "\n[[topic]]\nname = \"{prefix}.events\"\ndescription = \"Synthetic copy of {}\"\n\
         subjects = [\"{prefix}.>\"]\nproducers = [{}]\nconsumers = [{}]\n\
         [topic.stream]\nname = \"F{k:05}_EVENTS\"\nmax_age = \"7d\"\nduplicate_window = \"2m\"\n",
        topic.name,
        list(&producers),
        list(&services),
    );
    for s in &subjects {
        let _ = write!(
            catalog,
            "\n[[subject]]\nname = \"{}\"\ntopic = \"{prefix}.events\"\nschema = \"{name}\"\n\
             major = 1\nidentity = \"{}\"\n",
            rename(&prefix, &s.name),
            s.identity,
        );
        if let Some(c) = &s.constraint {
            let _ = writeln!(catalog, "constraint = {}", toml_value(c));
        }
    }
    for c in &consumers {
        let fields: Vec<&str> = c.fields.iter().map(String::as_str).collect();
        let _ = write!(
            catalog,
            "\n[[consumer]]\nservice = \"{}\"\nname = \"{}-{prefix}\"\nfilter = \"{}\"\n\
             reads = {{ schema = \"{name}\", major = 1 }}\nfields = [{}]\n",
            c.service,
            c.name,
            rename(&prefix, &c.filter),
            list(&fields),
        );
    }
    Ok(())
}

/// A TOML basic string (its escapes are JSON's, for what a catalog holds).
fn toml_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// A JSON value as a TOML inline value (a constraint; `null` has no TOML form).
fn toml_value(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let entries: Vec<String> = m
                .iter()
                .map(|(k, x)| format!("{} = {}", toml_string(k), toml_value(x)))
                .collect();
            format!("{{ {} }}", entries.join(", "))
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(toml_value).collect();
            format!("[{}]", items.join(", "))
        }
        Value::String(s) => toml_string(s),
        Value::Null => "\"\"".into(),
        other => other.to_string(),
    }
}

/// Times `check` and the validation of one event on the contracts in `dir`; with
/// `herald`, also runs `herald validate` of that event under GNU time for its
/// peak RSS. Fails if the contracts do not pass `check` or the event is refused.
pub fn measure(
    dir: &Path,
    generated: Generated,
    herald: Option<&Path>,
) -> Result<ScaleRow, BenchError> {
    let started = Instant::now();
    let files = ContractFiles::from_dir(dir).map_err(|e| BenchError::Setup(e.to_string()))?;
    let (catalog, report) = check::run(files);
    let check_secs = started.elapsed().as_secs_f64();
    // Freeing the compiled validators is teardown, not checking: outside the timing.
    drop(catalog);
    if !report.passed() {
        let failures: Vec<&String> = report
            .checks
            .iter()
            .flat_map(|c| &c.failures)
            .take(3)
            .collect();
        return Err(BenchError::Setup(format!(
            "the generated contracts fail check ({} failures), e.g. {failures:?}",
            report.failure_count()
        )));
    }

    let event = super::suite::usage_template();
    let started = Instant::now();
    let catalog = Catalog::load(dir).map_err(|e| BenchError::Setup(e.to_string()))?;
    catalog
        .validate(VALIDATE_SUBJECT, None, &event)
        .map_err(|e| BenchError::Setup(format!("the benchmark event is refused: {e}")))?;
    let validate_secs = started.elapsed().as_secs_f64();
    drop(catalog);

    let validate_rss_mib = match herald {
        None => None,
        Some(exe) => Some(validate_rss(exe, dir, &event)?),
    };
    Ok(ScaleRow {
        schemas: generated.schemas,
        versions: generated.versions,
        check_secs,
        validate_secs,
        validate_rss_mib,
    })
}

/// Where GNU time is expected (it reports a child's peak RSS after it exits,
/// which sampling `/proc` can miss for a process this short).
pub const GNU_TIME: &str = "/usr/bin/time";

/// Peak RSS (MiB) of `herald --contracts DIR validate --subject … EVENT`.
fn validate_rss(exe: &Path, dir: &Path, event: &Value) -> Result<f64, BenchError> {
    let event_path: PathBuf = dir.with_extension("event.json");
    write(&event_path, event.to_string().as_bytes())?;
    let out = Command::new(GNU_TIME)
        .arg("-v")
        .arg(exe)
        .arg("--contracts")
        .arg(dir)
        .args(["validate", "--subject", VALIDATE_SUBJECT])
        .arg(&event_path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            BenchError::Setup(format!(
                "cannot run {GNU_TIME} (GNU time, package `time`) to measure peak RSS: {e}"
            ))
        })?;
    let _ = std::fs::remove_file(&event_path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(BenchError::Setup(format!(
            "`herald validate` under {GNU_TIME} failed ({}): {}",
            out.status,
            stderr.trim()
        )));
    }
    max_rss_kib(&stderr)
        .map(|kib| kib as f64 / 1024.0)
        .ok_or_else(|| BenchError::Setup(format!("{GNU_TIME} -v printed no maximum RSS")))
}

/// The `Maximum resident set size (kbytes)` line of GNU time's `-v` report.
fn max_rss_kib(report: &str) -> Option<u64> {
    report.lines().find_map(|l| {
        l.trim()
            .strip_prefix("Maximum resident set size (kbytes):")
            .and_then(|v| v.trim().parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_contracts_have_the_asked_size_and_pass_check() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("contracts");
        let g = generate(&root, 17).unwrap();
        assert_eq!(
            g,
            Generated {
                schemas: 17,
                versions: 8 + 10 * 3,
                families: 10
            }
        );
        let catalog = Catalog::load(&root).unwrap();
        // Each family: one stream, 2 or 3 constrained subjects, consumers, examples.
        let family: Vec<_> = catalog
            .subjects()
            .iter()
            .filter(|s| s.name.starts_with("f00001."))
            .collect();
        assert!((2..=3).contains(&family.len()), "{family:?}");
        assert!(family.iter().all(|s| s.constraint.is_some()));
        assert_eq!(
            catalog
                .streams()
                .iter()
                .filter(|s| s.name == "F00001_EVENTS")
                .count(),
            1
        );
        let schema = &family[0].schema;
        assert!(catalog
            .consumers()
            .iter()
            .any(|c| &c.reads.schema == schema));
        assert!(catalog
            .files()
            .files
            .keys()
            .any(|p| p.starts_with(&format!("examples/{schema}/valid/"))));

        let row = measure(&root, g, None).unwrap();
        assert_eq!((row.schemas, row.versions), (17, 38));
        assert!(row.validate_rss_mib.is_none());
    }

    #[test]
    fn fewer_schemas_than_shipped_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = generate(dir.path(), 6).unwrap_err().to_string();
        assert_eq!(
            err,
            "benchmark setup: --schemas 6: the shipped contracts alone have 7 schemas"
        );
    }

    #[test]
    fn constraints_render_as_toml_inline_tables() {
        let c = serde_json::json!({"properties": {"status": {"const": "fa\"iled"}}, "required": ["error"], "minimum": 1});
        let text = format!("constraint = {}", toml_value(&c));
        assert_eq!(
            text,
            r#"constraint = { "properties" = { "status" = { "const" = "fa\"iled" } }, "required" = ["error"], "minimum" = 1 }"#
        );
    }

    #[test]
    fn gnu_time_reports_are_read() {
        let report = "\tCommand being timed: \"herald validate\"\n\tMaximum resident set size (kbytes): 23456\n\tExit status: 0\n";
        assert_eq!(max_rss_kib(report), Some(23456));
        assert_eq!(max_rss_kib("nothing here"), None);
    }
}
