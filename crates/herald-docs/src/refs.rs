//! `$ref` resolution against the loaded schemas only.
//!
//! herald's schemas refer to each other by relative URI
//! (`../common/1.0.0.json#/$defs/uuid`) resolved against their `$id`. The
//! catalog knows every document by `$id`, so resolution never leaves it.

use herald_contracts::Catalog;
use percent_encoding::percent_decode_str;
use serde_json::Value;
use url::Url;

/// A `$ref` resolved to an absolute URI: the document part and the JSON
/// Pointer fragment (decoded, empty for the whole document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The `$id` of the document the reference points into.
    pub document: String,
    /// The JSON Pointer inside that document.
    pub pointer: String,
}

/// Resolves `reference` against `base` (the `$id` in scope).
pub(crate) fn target(base: &str, reference: &str) -> Option<Target> {
    let base = Url::parse(base).ok()?;
    let mut url = base.join(reference).ok()?;
    let pointer = percent_decode_str(url.fragment().unwrap_or(""))
        .decode_utf8()
        .ok()?
        .into_owned();
    url.set_fragment(None);
    Some(Target {
        document: url.to_string(),
        pointer,
    })
}

/// The schema a reference points to, with the `$id` now in scope.
pub(crate) fn resolve<'c>(
    catalog: &'c Catalog,
    base: &str,
    reference: &str,
) -> Option<(String, &'c Value)> {
    let t = target(base, reference)?;
    let doc = catalog.schema_by_id(&t.document)?;
    let value = if t.pointer.is_empty() {
        &doc.document
    } else {
        doc.document.pointer(&t.pointer)?
    };
    Some((t.document, value))
}

/// The base URI in force inside `schema`: its own `$id` if it has one.
pub(crate) fn rebase(base: &str, schema: &Value) -> String {
    match schema.get("$id").and_then(Value::as_str) {
        Some(id) => target(base, id)
            .map(|t| t.document)
            .unwrap_or_else(|| base.to_string()),
        None => base.to_string(),
    }
}

/// Keywords whose value is a map of name to subschema.
const SCHEMA_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];
/// Keywords whose value is a list of subschemas.
const SCHEMA_LISTS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords whose value is one subschema.
const SCHEMA_ONE: &[&str] = &[
    "items",
    "not",
    "if",
    "then",
    "else",
    "additionalProperties",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
];

/// Calls `visit` on every subschema of `schema` (not on `schema` itself),
/// following the 2020-12 applicator keywords only, so data (`const`, `enum`,
/// `examples`) and property *names* are never mistaken for schemas.
pub(crate) fn subschemas<'v>(schema: &'v Value, visit: &mut dyn FnMut(&'v Value)) {
    let Some(map) = schema.as_object() else {
        return;
    };
    for (k, v) in map {
        let k = k.as_str();
        if SCHEMA_MAPS.contains(&k) {
            v.as_object()
                .into_iter()
                .flat_map(|m| m.values())
                .for_each(&mut *visit);
        } else if SCHEMA_LISTS.contains(&k) {
            v.as_array().into_iter().flatten().for_each(&mut *visit);
        } else if SCHEMA_ONE.contains(&k) {
            visit(v);
        }
    }
}

/// The JSON Pointers (relative to `schema`) of its immediate subschemas,
/// for callers that must mutate them.
pub(crate) fn subschema_paths(schema: &Value, out: &mut Vec<String>) {
    let Some(map) = schema.as_object() else {
        return;
    };
    let esc = |s: &str| s.replace('~', "~0").replace('/', "~1");
    for (k, v) in map {
        let kw = k.as_str();
        if SCHEMA_MAPS.contains(&kw) {
            for name in v.as_object().into_iter().flat_map(|m| m.keys()) {
                out.push(format!("/{}/{}", esc(kw), esc(name)));
            }
        } else if SCHEMA_LISTS.contains(&kw) {
            for i in 0..v.as_array().map_or(0, Vec::len) {
                out.push(format!("/{}/{i}", esc(kw)));
            }
        } else if SCHEMA_ONE.contains(&kw) {
            out.push(format!("/{}", esc(kw)));
        }
    }
}

/// Every `$ref` in a schema with the base URI it resolves against.
pub(crate) fn all_refs(schema: &Value, base: &str, out: &mut Vec<(String, String)>) {
    let base = rebase(base, schema);
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        out.push((base.clone(), r.to_string()));
    }
    subschemas(schema, &mut |sub| all_refs(sub, &base, out));
}

/// Characters a JSON Pointer must escape to sit in a URI fragment.
const FRAGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// A JSON Pointer as a URI fragment (`#/…`), percent-encoded where needed.
pub(crate) fn fragment(pointer: &str) -> String {
    format!(
        "#{}",
        percent_encoding::utf8_percent_encode(pointer, FRAGMENT)
    )
}

/// Rewrites the `$ref`s of `schema` in place: `rewrite` gets each reference
/// resolved against the base URI in scope and returns its replacement, or
/// `None` to keep it. Returns the first reference that does not parse.
pub(crate) fn rewrite_refs(
    schema: &mut Value,
    base: &str,
    rewrite: &mut dyn FnMut(&Target) -> Option<String>,
) -> Result<(), String> {
    let base = rebase(base, schema);
    if let Some(Value::String(reference)) = schema.get("$ref") {
        let t = target(&base, reference).ok_or_else(|| reference.clone())?;
        if let Some(new) = rewrite(&t) {
            schema["$ref"] = Value::String(new);
        }
    }
    let mut paths = Vec::new();
    subschema_paths(schema, &mut paths);
    for path in paths {
        if let Some(sub) = schema.pointer_mut(&path) {
            rewrite_refs(sub, &base, rewrite)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_refs_resolve_against_the_id() {
        let t = target(
            "https://contracts.platform.internal/schemas/UsageEvent/1.1.0.json",
            "../common/1.0.0.json#/$defs/uuid",
        )
        .unwrap();
        assert_eq!(
            t.document,
            "https://contracts.platform.internal/schemas/common/1.0.0.json"
        );
        assert_eq!(t.pointer, "/$defs/uuid");
    }

    #[test]
    fn fragments_are_percent_decoded() {
        let t = target("https://x.test/a.json", "#/$defs/a%20b").unwrap();
        assert_eq!(t.document, "https://x.test/a.json");
        assert_eq!(t.pointer, "/$defs/a b");
    }
}
