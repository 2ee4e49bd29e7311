//! Self-contained schema files: `herald export --bundle DIR`.
//!
//! Each released schema version becomes one file that needs no resolver:
//! every document it references (transitively) is embedded under `$defs`,
//! keyed by and keeping its `$id`. This is the bundling the 2020-12 spec
//! describes ("Bundling", core §9.3.1): the `$ref`s stay as written and
//! resolve to the embedded resources by their `$id`, so the bundle validates
//! exactly as the original does, in any 2020-12 validator, offline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use herald_contracts::{Catalog, SchemaDoc};
use serde_json::Value;

use crate::error::{write, DocsError};
use crate::refs;

/// One schema version with everything it references embedded.
pub fn bundle(catalog: &Catalog, doc: &SchemaDoc) -> Result<Value, DocsError> {
    let mut embedded: BTreeMap<String, Value> = BTreeMap::new();
    let mut queue: Vec<(String, Value)> = vec![(doc.id.clone(), doc.document.clone())];
    while let Some((id, schema)) = queue.pop() {
        let mut found = Vec::new();
        refs::all_refs(&schema, &id, &mut found);
        for (base, reference) in found {
            let unresolved = || DocsError::UnresolvedRef {
                schema: doc.label(),
                reference: reference.clone(),
            };
            let target = refs::target(&base, &reference).ok_or_else(unresolved)?;
            if target.document == doc.id || embedded.contains_key(&target.document) {
                continue;
            }
            let other = catalog
                .schema_by_id(&target.document)
                .ok_or_else(unresolved)?;
            embedded.insert(other.id.clone(), other.document.clone());
            queue.push((other.id.clone(), other.document.clone()));
        }
    }
    let mut out = doc.document.clone();
    if embedded.is_empty() {
        return Ok(out);
    }
    let Some(root) = out.as_object_mut() else {
        // A boolean schema references nothing, so it never gets here.
        return Ok(out);
    };
    let defs = root
        .entry("$defs")
        .or_insert_with(|| Value::Object(Default::default()));
    let Some(defs) = defs.as_object_mut() else {
        return Err(DocsError::DefsClash {
            schema: doc.label(),
            key: "$defs".into(),
        });
    };
    for (id, schema) in embedded {
        if defs.contains_key(&id) {
            return Err(DocsError::DefsClash {
                schema: doc.label(),
                key: id,
            });
        }
        defs.insert(id, schema);
    }
    Ok(out)
}

/// Where a version's bundle goes under the output directory:
/// `<Name>/<version>.json`, mirroring `contracts/schemas/`.
pub fn relative_path(doc: &SchemaDoc) -> PathBuf {
    Path::new(&doc.name).join(format!("{}.json", doc.version))
}

/// Writes a bundle per schema version into `dir`; returns the files written.
pub fn export(catalog: &Catalog, dir: &Path) -> Result<Vec<PathBuf>, DocsError> {
    let mut written = Vec::new();
    for doc in catalog.schemas().values().flatten() {
        let value = bundle(catalog, doc)?;
        let text = serde_json::to_string_pretty(&value).map_err(|e| DocsError::Serialize {
            what: doc.label(),
            message: e.to_string(),
        })?;
        let path = dir.join(relative_path(doc));
        write(&path, format!("{text}\n").as_bytes())?;
        written.push(path);
    }
    Ok(written)
}
