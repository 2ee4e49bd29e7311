//! The shipped examples (`contracts/examples/<Schema>/valid|invalid/*.json`),
//! read from the catalog's files so they are the ones `herald check` judges.

use herald_contracts::Catalog;
use serde_json::Value;

/// One example event.
#[derive(Debug, Clone)]
pub struct Example {
    /// File name without `.json`.
    pub name: String,
    /// Path under the contracts directory.
    pub path: String,
    /// From `valid/` (true) or `invalid/` (false).
    pub valid: bool,
    /// The event itself (an invalid example's `event`).
    pub event: Value,
    /// Why an invalid example fails, as its author wrote it.
    pub reason: Option<String>,
    /// An invalid example's expected violations: (instance path, keyword).
    pub expect: Vec<(String, String)>,
}

/// The examples of one schema, in path order; unreadable ones are skipped
/// (`herald check` reports them).
pub fn of_schema(catalog: &Catalog, schema: &str) -> Vec<Example> {
    let prefix = format!("examples/{schema}/");
    let mut out = Vec::new();
    for (path, bytes) in &catalog.files().files {
        let Some(rest) = path.strip_prefix(&prefix) else {
            continue;
        };
        let Some((kind, file)) = rest.split_once('/') else {
            continue;
        };
        let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
            continue;
        };
        let name = file.strip_suffix(".json").unwrap_or(file).to_string();
        match kind {
            "valid" => out.push(Example {
                name,
                path: path.clone(),
                valid: true,
                event: value,
                reason: None,
                expect: Vec::new(),
            }),
            "invalid" => {
                let Some(event) = value.get("event").cloned() else {
                    continue;
                };
                let expect = value
                    .get("expect")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        let field =
                            |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                        (field("path"), field("keyword"))
                    })
                    .collect();
                out.push(Example {
                    name,
                    path: path.clone(),
                    valid: false,
                    event,
                    reason: value
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    expect,
                });
            }
            _ => {}
        }
    }
    out
}
