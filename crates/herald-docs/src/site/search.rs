//! The search index: a script assigning the entries to a global, so search
//! works from `file://` too (where `fetch` of a JSON file is refused).

use herald_contracts::Catalog;
use serde_json::json;

use super::{field_anchor, schema_path, service_path, subject_path};
use crate::error::DocsError;
use crate::fields::fields;

pub(super) fn index(catalog: &Catalog) -> Result<String, DocsError> {
    let mut entries = Vec::new();
    for s in catalog.subjects() {
        entries.push(
            json!({"k": "subject", "t": s.name, "d": s.description, "u": subject_path(&s.name)}),
        );
    }
    for doc in catalog.schemas().values().flatten() {
        let description = doc
            .document
            .get("description")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        entries.push(
            json!({"k": "schema", "t": doc.label(), "d": description, "u": schema_path(doc)}),
        );
        for f in fields(catalog, doc) {
            entries.push(json!({
                "k": "field",
                "t": f.pointer,
                "d": format!("{} · {} · {}", doc.label(), f.types, f.description),
                "u": format!("{}#{}", schema_path(doc), field_anchor(&f.pointer)),
            }));
        }
    }
    for s in catalog.services() {
        entries.push(
            json!({"k": "service", "t": s.name, "d": s.description, "u": service_path(&s.name)}),
        );
    }
    let text = serde_json::to_string(&entries).map_err(|e| DocsError::Serialize {
        what: "the search index".into(),
        message: e.to_string(),
    })?;
    Ok(format!("window.HERALD_SEARCH = {text};\n"))
}
