//! Self-contained schema files: `herald export --bundle DIR`.
//!
//! Each released schema version becomes one file that needs no resolver:
//! every document it references (transitively) is embedded under
//! `$defs/<Name>@<version>`, keeping its `$id`, as the 2020-12 spec's
//! "Bundling" describes (core §9.3.1). The schema's own `$ref`s to them are
//! rewritten to plain local pointers (`#/$defs/common@1.0.0/$defs/uuid`):
//! validators would also find the embedded resources by `$id`, but code
//! generators (datamodel-code-generator, json-schema-to-typescript) ignore
//! embedded `$id`s and would go looking for `../common/1.0.0.json` on disk.
//! `$ref`s inside an embedded document stay as written and resolve by its
//! `$id` (herald's shared definitions have none).

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
    let key_of = |id: &str| catalog.schema_by_id(id).map(|d| d.label());
    refs::rewrite_refs(&mut out, &doc.id, &mut |t| {
        (t.document != doc.id)
            .then(|| key_of(&t.document))
            .flatten()
            .map(|key| {
                format!(
                    "#/$defs/{key}{}",
                    refs::fragment(&t.pointer).trim_start_matches('#')
                )
            })
    })
    .map_err(|reference| DocsError::UnresolvedRef {
        schema: doc.label(),
        reference,
    })?;
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
        let key = key_of(&id).unwrap_or(id);
        if defs.contains_key(&key) {
            return Err(DocsError::DefsClash {
                schema: doc.label(),
                key,
            });
        }
        defs.insert(key, schema);
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
