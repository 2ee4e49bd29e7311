//! Field tags and redaction.
//!
//! A schema marks a field with the annotation `"x-herald-tags": ["pii"]`. It is
//! an unknown keyword to every 2020-12 validator, so the schema stays valid and
//! validates exactly as before. herald reads it to replace the field's value,
//! wherever the value sits (nested objects, array items, `$ref`'d definitions,
//! `additionalProperties`, `patternProperties`), before the event is shown to a
//! person: `"[redacted:pii]"`. The stored event keeps the original.
//!
//! Why the walk follows the schema rather than matching field names: a name
//! like `content` is chat text in one schema and a MIME type in another; the
//! schema is the one place that knows which is which.

use serde_json::Value;

use crate::evolution::uri;

/// The annotation keyword carrying a field's tags.
pub const KEYWORD: &str = "x-herald-tags";

/// How deep `$ref` chains and nested subschemas are followed before giving up;
/// a value past that depth is redacted whole (fail closed, never loop).
const MAX_DEPTH: usize = 64;

/// The placeholder that replaces a tagged value.
pub fn placeholder(tag: &str) -> String {
    format!("[redacted:{tag}]")
}

/// Finds a schema document by absolute URI (without fragment).
pub trait SchemaLookup {
    /// The document whose `$id` is `uri`.
    fn document(&self, uri: &str) -> Option<&Value>;
}

impl SchemaLookup for crate::Catalog {
    fn document(&self, uri: &str) -> Option<&Value> {
        self.schema_by_id(uri).map(|d| &d.document)
    }
}

/// Which tags hide a value. `None` from [`TagPolicy::hides`] lets it through.
pub trait TagPolicy {
    /// Whether a value carrying `tag` is replaced in human-facing output.
    fn hides(&self, tag: &str) -> bool;
}

/// Every tag hides its value: the policy when the catalog declares nothing,
/// and for tags it does not declare (fail closed).
pub struct HideAll;

impl TagPolicy for HideAll {
    fn hides(&self, _tag: &str) -> bool {
        true
    }
}

/// A redacted copy of `event`, validated against the schema `schema_id`, and
/// how many values were replaced. An unknown schema hides every scalar: what
/// it holds is unknown, so nothing in it is shown.
pub fn redact(
    lookup: &dyn SchemaLookup,
    policy: &dyn TagPolicy,
    schema_id: &str,
    event: &Value,
) -> (Value, usize) {
    let mut out = event.clone();
    let mut walker = Walker {
        lookup,
        policy,
        replaced: 0,
    };
    match lookup.document(schema_id) {
        Some(doc) => walker.walk(&mut out, doc, schema_id, doc, 0),
        None => walker.hide_all(&mut out, "unknown-schema"),
    }
    (out, walker.replaced)
}

/// Whether any value at or below `pointer` in `event` is tagged: an error
/// message about that spot must not quote the value.
pub fn touches_tagged(
    lookup: &dyn SchemaLookup,
    policy: &dyn TagPolicy,
    schema_id: &str,
    event: &Value,
    pointer: &str,
) -> bool {
    let (redacted, n) = redact(lookup, policy, schema_id, event);
    n > 0 && redacted.pointer(pointer) != event.pointer(pointer)
}

/// Every tag declared on any schema node of a document, with its JSON Pointer
/// in the schema: what `herald check` compares with the catalog's tag list and
/// the docs site lists per field.
pub fn declared(document: &Value) -> Vec<(String, Vec<String>)> {
    fn visit(v: &Value, at: String, out: &mut Vec<(String, Vec<String>)>) {
        match v {
            Value::Object(map) => {
                if let Some(tags) = map.get(KEYWORD) {
                    let names = tags
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|t| t.as_str().unwrap_or("<not a string>").to_owned())
                                .collect()
                        })
                        .unwrap_or_else(|| vec!["<not an array>".to_owned()]);
                    out.push((at.clone(), names));
                }
                for (k, child) in map {
                    if k != KEYWORD {
                        visit(child, format!("{at}/{}", escape(k)), out);
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    visit(child, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    visit(document, String::new(), &mut out);
    out
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

struct Walker<'a> {
    lookup: &'a dyn SchemaLookup,
    policy: &'a dyn TagPolicy,
    replaced: usize,
}

impl Walker<'_> {
    /// Applies `schema` (found in `root`, whose URI is `base`) to `value`.
    fn walk(&mut self, value: &mut Value, schema: &Value, base: &str, root: &Value, depth: usize) {
        if depth > MAX_DEPTH {
            self.hide_all(value, "too-deep");
            return;
        }
        let Some(s) = schema.as_object() else {
            return; // `true` / `false` carry no tags.
        };
        if let Some(tag) = self.hiding_tag(s.get(KEYWORD)) {
            *value = Value::String(placeholder(&tag));
            self.replaced += 1;
            return;
        }
        // `$id` inside a subschema changes the base for its `$ref`s.
        let own_base;
        let base = match s.get("$id").and_then(Value::as_str) {
            Some(id) if depth > 0 => {
                own_base = uri::resolve(base, id);
                own_base.as_str()
            }
            _ => base,
        };
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            self.follow(value, r, base, root, depth);
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            for sub in s.get(key).and_then(Value::as_array).into_iter().flatten() {
                self.walk(value, sub, base, root, depth + 1);
            }
        }
        for key in ["if", "then", "else", "not"] {
            if let Some(sub) = s.get(key) {
                self.walk(value, sub, base, root, depth + 1);
            }
        }
        match value {
            Value::Object(map) => self.object(map, s, base, root, depth),
            Value::Array(items) => self.array(items, s, base, root, depth),
            _ => {}
        }
    }

    fn object(
        &mut self,
        map: &mut serde_json::Map<String, Value>,
        s: &serde_json::Map<String, Value>,
        base: &str,
        root: &Value,
        depth: usize,
    ) {
        let props = s.get("properties").and_then(Value::as_object);
        let patterns: Vec<(regex::Regex, &Value)> = s
            .get("patternProperties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(p, sub)| regex::Regex::new(p).ok().map(|re| (re, sub)))
            .collect();
        let additional = s.get("additionalProperties");
        for (key, child) in map.iter_mut() {
            let mut matched = false;
            if let Some(sub) = props.and_then(|p| p.get(key)) {
                matched = true;
                self.walk(child, sub, base, root, depth + 1);
            }
            for (re, sub) in &patterns {
                if re.is_match(key) {
                    matched = true;
                    self.walk(child, sub, base, root, depth + 1);
                }
            }
            if !matched {
                if let Some(sub) = additional {
                    self.walk(child, sub, base, root, depth + 1);
                }
            }
        }
    }

    fn array(
        &mut self,
        items: &mut [Value],
        s: &serde_json::Map<String, Value>,
        base: &str,
        root: &Value,
        depth: usize,
    ) {
        let prefix = s.get("prefixItems").and_then(Value::as_array);
        let rest = s.get("items");
        for (i, item) in items.iter_mut().enumerate() {
            match prefix.and_then(|p| p.get(i)) {
                Some(sub) => self.walk(item, sub, base, root, depth + 1),
                None => {
                    if let Some(sub) = rest {
                        self.walk(item, sub, base, root, depth + 1);
                    }
                }
            }
        }
    }

    fn follow(
        &mut self,
        value: &mut Value,
        reference: &str,
        base: &str,
        root: &Value,
        depth: usize,
    ) {
        let target = uri::resolve(base, reference);
        let (doc_uri, fragment) = uri::split_fragment(&target);
        let doc_uri = doc_uri.to_owned();
        let doc = if doc_uri.is_empty() || doc_uri == uri::split_fragment(base).0 {
            Some(root)
        } else {
            self.lookup.document(&doc_uri)
        };
        let Some(doc) = doc else {
            // A `$ref` that does not resolve: the contracts are broken (`herald
            // check` says so); hide what it would have described.
            self.hide_all(value, "unresolved");
            return;
        };
        let pointer = uri::percent_decode(fragment);
        match doc.pointer(&pointer) {
            Some(sub) => self.walk(value, sub, &doc_uri, doc, depth + 1),
            None => self.hide_all(value, "unresolved"),
        }
    }

    fn hiding_tag(&self, tags: Option<&Value>) -> Option<String> {
        let tags = tags?;
        match tags.as_array() {
            Some(list) => list
                .iter()
                .map(|t| t.as_str().unwrap_or("tagged"))
                .find(|t| self.policy.hides(t))
                .map(str::to_owned),
            // A malformed annotation still says "sensitive": hide.
            None => Some("tagged".to_owned()),
        }
    }

    fn hide_all(&mut self, value: &mut Value, why: &str) {
        match value {
            Value::Object(map) => map.values_mut().for_each(|v| self.hide_all(v, why)),
            Value::Array(items) => items.iter_mut().for_each(|v| self.hide_all(v, why)),
            Value::Null => {}
            other => {
                *other = Value::String(placeholder(why));
                self.replaced += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    struct Docs(HashMap<String, Value>);
    impl SchemaLookup for Docs {
        fn document(&self, uri: &str) -> Option<&Value> {
            self.0.get(uri)
        }
    }

    fn docs() -> Docs {
        let main = json!({
            "$id": "https://x.test/s/Main/1.0.0.json",
            "type": "object",
            "properties": {
                "user": { "$ref": "../common/1.0.0.json#/$defs/user" },
                "text": { "type": "string", "x-herald-tags": ["content"] },
                "recipients": { "type": "array", "items": { "$ref": "#/$defs/recipient" } },
                "pair": { "type": "array", "prefixItems": [ {"type": "string"}, {"x-herald-tags": ["pii"]} ] },
                "extra": { "type": "object", "additionalProperties": { "x-herald-tags": ["pii"] },
                           "properties": { "open": { "type": "string" } } },
                "by_pattern": { "type": "object", "patternProperties": { "^secret_": { "x-herald-tags": ["pii"] } } },
                "plain": { "type": "string" }
            },
            "$defs": { "recipient": { "type": "object", "properties": {
                "connection_id": { "type": "string", "x-herald-tags": ["pii"] } } } }
        });
        let common = json!({
            "$id": "https://x.test/s/common/1.0.0.json",
            "$defs": { "user": { "type": "string", "x-herald-tags": ["pii"] } }
        });
        Docs(HashMap::from([
            ("https://x.test/s/Main/1.0.0.json".to_owned(), main),
            ("https://x.test/s/common/1.0.0.json".to_owned(), common),
        ]))
    }

    const ID: &str = "https://x.test/s/Main/1.0.0.json";

    #[test]
    fn tagged_values_are_replaced_everywhere_the_schema_reaches() {
        let event = json!({
            "user": "u-1", "text": "my password is hunter2",
            "recipients": [{"connection_id": "conn-1"}, {"connection_id": "conn-2", "other": 1}],
            "pair": ["a", "b-secret"],
            "extra": {"open": "visible", "hidden": "x-secret"},
            "by_pattern": {"secret_a": "s1", "public": "p"},
            "plain": "keep me"
        });
        let (out, n) = redact(&docs(), &HideAll, ID, &event);
        assert_eq!(
            out,
            json!({
                "user": "[redacted:pii]", "text": "[redacted:content]",
                "recipients": [{"connection_id": "[redacted:pii]"}, {"connection_id": "[redacted:pii]", "other": 1}],
                "pair": ["a", "[redacted:pii]"],
                "extra": {"open": "visible", "hidden": "[redacted:pii]"},
                "by_pattern": {"secret_a": "[redacted:pii]", "public": "p"},
                "plain": "keep me"
            })
        );
        assert_eq!(n, 7);
    }

    #[test]
    fn a_tagged_value_of_the_wrong_type_is_still_hidden() {
        let event = json!({"text": {"nested": "hunter2"}});
        let (out, _) = redact(&docs(), &HideAll, ID, &event);
        assert_eq!(out, json!({"text": "[redacted:content]"}));
    }

    #[test]
    fn an_unknown_schema_hides_every_scalar() {
        let (out, n) = redact(
            &docs(),
            &HideAll,
            "https://x.test/nope",
            &json!({"a": "s", "b": [1, null]}),
        );
        assert_eq!(
            out,
            json!({"a": "[redacted:unknown-schema]", "b": ["[redacted:unknown-schema]", null]})
        );
        assert_eq!(n, 2);
    }

    #[test]
    fn a_policy_that_lets_a_tag_through_keeps_it() {
        struct OnlyPii;
        impl TagPolicy for OnlyPii {
            fn hides(&self, tag: &str) -> bool {
                tag == "pii"
            }
        }
        let (out, n) = redact(&docs(), &OnlyPii, ID, &json!({"text": "hi", "user": "u"}));
        assert_eq!(out, json!({"text": "hi", "user": "[redacted:pii]"}));
        assert_eq!(n, 1);
    }

    #[test]
    fn touches_tagged_looks_at_the_subtree() {
        let event = json!({"recipients": [{"connection_id": "c"}], "plain": "p"});
        let d = docs();
        assert!(touches_tagged(&d, &HideAll, ID, &event, "/recipients"));
        assert!(touches_tagged(&d, &HideAll, ID, &event, ""));
        assert!(!touches_tagged(&d, &HideAll, ID, &event, "/plain"));
    }

    #[test]
    fn a_ref_cycle_ends() {
        let looped = json!({"$id": "https://x.test/l.json", "$ref": "#"});
        let d = Docs(HashMap::from([(
            "https://x.test/l.json".to_owned(),
            looped,
        )]));
        let (out, _) = redact(&d, &HideAll, "https://x.test/l.json", &json!({"a": "s"}));
        assert_eq!(out, json!({"a": "[redacted:too-deep]"}));
    }

    #[test]
    fn declared_lists_every_tag_with_its_place() {
        let d = docs();
        let found = declared(&d.0[ID]);
        assert!(found.contains(&("/properties/text".to_owned(), vec!["content".to_owned()])));
        assert!(found.contains(&(
            "/$defs/recipient/properties/connection_id".to_owned(),
            vec!["pii".to_owned()]
        )));
        assert_eq!(found.len(), 5);
    }
}
