//! A schema version as a table of fields, `$ref`s and nested objects
//! expanded: what a reader of the event can rely on, field by field.

use std::collections::BTreeSet;

use herald_contracts::{Catalog, SchemaDoc, Version};
use serde_json::{Map, Value};

use crate::refs;

/// How deep nested objects and `$ref` chains are followed; herald's schemas
/// nest three levels, and a cycle must not loop.
const MAX_DEPTH: usize = 16;

/// One field of an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// JSON Pointer from the event root; `*` stands for any array index.
    pub pointer: String,
    /// JSON type(s), `|`-joined; `any` when the schema does not say.
    pub types: String,
    /// Whether the parent object requires it (always, not conditionally).
    pub required: bool,
    /// Format and validation keywords, one readable item each.
    pub constraints: Vec<String>,
    /// The schema's description, the field's own over its `$ref` target's.
    pub description: String,
    /// The first version of this schema that had the field.
    pub since: Option<Version>,
}

/// The fields of a schema version, in document order, with `since` filled
/// from the schema's earlier versions.
pub fn fields(catalog: &Catalog, doc: &SchemaDoc) -> Vec<Field> {
    let mut rows = own_fields(catalog, doc);
    let history: Vec<(Version, BTreeSet<String>)> = catalog
        .schemas()
        .get(&doc.name)
        .into_iter()
        .flatten()
        .filter(|d| d.version <= doc.version)
        .map(|d| {
            let set = own_fields(catalog, d)
                .into_iter()
                .map(|f| f.pointer)
                .collect();
            (d.version, set)
        })
        .collect();
    for row in &mut rows {
        row.since = history
            .iter()
            .find(|(_, set)| set.contains(&row.pointer))
            .map(|(v, _)| *v);
    }
    rows
}

fn own_fields(catalog: &Catalog, doc: &SchemaDoc) -> Vec<Field> {
    let mut out = Vec::new();
    let (schema, base) = effective(catalog, &doc.document, &doc.id, 0);
    walk_object(catalog, &schema, &base, "", &mut out, 0);
    out
}

/// A schema with its `$ref` chain merged in: the referring schema's own
/// keywords win over the target's (a field's description over the shared
/// definition's). Returns the merged schema and the base URI of its subschemas.
fn effective(catalog: &Catalog, schema: &Value, base: &str, depth: usize) -> (Value, String) {
    let base = refs::rebase(base, schema);
    let Some(map) = schema.as_object() else {
        return (schema.clone(), base);
    };
    let Some(reference) = map.get("$ref").and_then(Value::as_str) else {
        return (schema.clone(), base);
    };
    if depth >= MAX_DEPTH {
        return (schema.clone(), base);
    }
    let Some((target_base, target)) = refs::resolve(catalog, &base, reference) else {
        return (schema.clone(), base);
    };
    let (target, target_base) = effective(catalog, target, &target_base, depth + 1);
    let mut merged: Map<String, Value> = target.as_object().cloned().unwrap_or_default();
    for (k, v) in map {
        if k != "$ref" {
            merged.insert(k.clone(), v.clone());
        }
    }
    (Value::Object(merged), target_base)
}

fn walk_object(
    catalog: &Catalog,
    schema: &Value,
    base: &str,
    prefix: &str,
    out: &mut Vec<Field>,
    depth: usize,
) {
    if depth >= MAX_DEPTH {
        return;
    }
    let required: BTreeSet<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let properties = schema.get("properties").and_then(Value::as_object);
    for (name, sub) in properties.into_iter().flatten() {
        let pointer = format!("{prefix}/{}", name.replace('~', "~0").replace('/', "~1"));
        let (sub, sub_base) = effective(catalog, sub, base, 0);
        out.push(row(&pointer, &sub, required.contains(name.as_str())));
        walk_object(catalog, &sub, &sub_base, &pointer, out, depth + 1);
        if let Some(items) = sub.get("items") {
            let item_pointer = format!("{pointer}/*");
            let (items, items_base) = effective(catalog, items, &sub_base, 0);
            if items.get("properties").is_some() {
                walk_object(catalog, &items, &items_base, &item_pointer, out, depth + 1);
            }
        }
    }
}

fn row(pointer: &str, schema: &Value, required: bool) -> Field {
    let types = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "any".into(),
    };
    Field {
        pointer: pointer.to_string(),
        types,
        required,
        constraints: constraints(schema),
        description: schema
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        since: None,
    }
}

/// Keywords that don't constrain a value or are shown elsewhere.
const NOT_CONSTRAINTS: &[&str] = &[
    "type",
    "description",
    "title",
    "properties",
    "required",
    "$ref",
    "$id",
    "$schema",
    "$comment",
    "$defs",
];

fn constraints(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in schema.as_object().into_iter().flatten() {
        if NOT_CONSTRAINTS.contains(&k.as_str()) {
            continue;
        }
        let text = match (k.as_str(), v) {
            ("items", item) => match item.get("type").and_then(Value::as_str) {
                Some(t) => format!("items: {t}"),
                None => "items: any".into(),
            },
            ("additionalProperties", Value::Object(_)) => {
                let t = v.get("type").and_then(Value::as_str).unwrap_or("any");
                format!("values: {t}")
            }
            ("enum", Value::Array(vals)) => format!(
                "one of {}",
                vals.iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (_, Value::String(s)) => format!("{k}: {s}"),
            _ => format!("{k}: {v}"),
        };
        out.push(text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<'f>(rows: &'f [Field], pointer: &str) -> &'f Field {
        rows.iter()
            .find(|f| f.pointer == pointer)
            .unwrap_or_else(|| panic!("no row {pointer} in {rows:?}"))
    }

    #[test]
    fn refs_and_nested_objects_are_expanded() {
        let catalog = Catalog::embedded().unwrap();
        let doc = catalog
            .schemas()
            .get("UsageEvent")
            .and_then(|v| v.last())
            .unwrap();
        let rows = fields(&catalog, doc);
        let id = field(&rows, "/event_id");
        assert_eq!(id.types, "string");
        assert!(id.required);
        assert_eq!(id.constraints, vec!["format: uuid".to_string()]);
        assert_eq!(id.description, "Unique identifier; the idempotency key.");
        let currency = field(&rows, "/cost/currency");
        assert_eq!(
            currency.constraints,
            vec!["pattern: ^[A-Z]{3}$".to_string()]
        );
        assert!(currency.required);
        assert!(!field(&rows, "/cost/rate").required);
        assert_eq!(field(&rows, "/region").since, Some(Version::new(1, 1, 0)));
        assert_eq!(field(&rows, "/quantity").since, Some(Version::new(1, 0, 0)));
    }

    #[test]
    fn array_items_are_expanded_under_a_star() {
        let catalog = Catalog::embedded().unwrap();
        let doc = &catalog.schemas()["RealtimeMessage"][0];
        let rows = fields(&catalog, doc);
        let user = field(&rows, "/recipients/*/user_id");
        assert!(user.required);
        assert_eq!(user.constraints, vec!["format: uuid".to_string()]);
    }
}
