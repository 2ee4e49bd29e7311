//! Offline `$ref` resolution: local pointers, anchors, `$id`-relative URIs and external
//! documents supplied by the caller.
//!
//! Why a separate "universe" per side: an old and a new version of a contract usually
//! share the same `$id`, and each must resolve its references within its own world
//! (the old version against the old common definitions, the new one against the new).

use super::uri;
use super::EvolutionError;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// Supplies external schema documents by absolute URI (without fragment), so that
/// contracts referencing `../common/1.0.0.json#/$defs/uuid` resolve without I/O in
/// this crate. Return `None` for unknown documents; the comparison then fails with
/// [`EvolutionError::UnresolvableRef`].
pub trait SchemaSource {
    /// Returns the document stored at `uri`, if any.
    fn load(&self, uri: &str) -> Option<Value>;

    /// The document stored at `uri`, borrowed, for a source that holds its documents:
    /// a comparison then reads it in place instead of copying it (a catalog's semver
    /// gate compares thousands of pairs, each referencing the same common schemas).
    /// `None` (the default) means: ask [`SchemaSource::load`].
    fn load_borrowed(&self, _uri: &str) -> Option<&Value> {
        None
    }
}

impl<F: Fn(&str) -> Option<Value>> SchemaSource for F {
    fn load(&self, uri: &str) -> Option<Value> {
        self(uri)
    }
}

impl SchemaSource for HashMap<String, Value> {
    fn load(&self, uri: &str) -> Option<Value> {
        self.get(uri).cloned()
    }
}

impl SchemaSource for BTreeMap<String, Value> {
    fn load(&self, uri: &str) -> Option<Value> {
        self.get(uri).cloned()
    }
}

/// A source with no documents: for self-contained schemas.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoExternalSchemas;

impl SchemaSource for NoExternalSchemas {
    fn load(&self, _uri: &str) -> Option<Value> {
        None
    }
}

/// Base URI given to a root schema that has neither an absolute `$id` nor a caller
/// supplied URI, so relative references still have something to resolve against.
pub const DEFAULT_BASE_URI: &str = "herald:/schema.json";

/// Keywords whose value is an object mapping names to subschemas.
pub(crate) const SCHEMA_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
    "dependencies",
];
/// Keywords whose value is an array of subschemas.
pub(crate) const SCHEMA_ARRAYS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems", "items"];
/// Keywords whose value is a single subschema.
pub(crate) const SCHEMA_SINGLES: &[&str] = &[
    "additionalProperties",
    "additionalItems",
    "items",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contentSchema",
];

/// Nesting limit for every walk, in schema levels (the raw JSON may be twice as deep,
/// matching `serde_json`'s own parse limit of 128): deep enough for any real contract,
/// low enough that hostile input returns [`EvolutionError::TooDeep`] instead of
/// overflowing a 2 MiB thread stack even in debug builds.
pub const MAX_DEPTH: usize = 64;

/// One side's set of documents (root first) with an index of `$id`s and anchors.
/// The documents are borrowed from the caller and the source where they can be:
/// copying each schema twice per comparison was a tenth of `herald check`.
#[derive(Debug)]
pub(crate) struct Universe<'a> {
    docs: Vec<Cow<'a, Value>>,
    doc_base: Vec<Rc<str>>,
    /// absolute URI (no fragment) -> (document, JSON Pointer of the resource root)
    resources: HashMap<String, (usize, String)>,
    /// absolute `uri#anchor` -> (document, JSON Pointer)
    anchors: HashMap<String, (usize, String)>,
    /// Draft-04/06/07 ignore the siblings of `$ref`; later drafts apply them.
    pub(crate) legacy_ref: bool,
}

/// A subschema together with the base URI in force at its position and the universe
/// it belongs to, so `$ref` inside it resolves correctly.
#[derive(Debug, Clone)]
pub(crate) struct Node<'u> {
    pub(crate) v: &'u Value,
    pub(crate) base: Rc<str>,
    pub(crate) uni: &'u Universe<'u>,
}

impl<'u> Node<'u> {
    /// The node for a child subschema: its base changes if it declares an `$id`.
    pub(crate) fn child(&self, v: &'u Value) -> Node<'u> {
        let base = match id_of(v) {
            Some(id) => {
                let abs = uri::resolve(&self.base, id);
                Rc::from(uri::split_fragment(&abs).0)
            }
            None => self.base.clone(),
        };
        Node {
            v,
            base,
            uni: self.uni,
        }
    }

    /// Stable identity of the underlying JSON value (for cycle detection).
    pub(crate) fn addr(&self) -> usize {
        self.v as *const Value as usize
    }
}

/// `$id` that establishes a new base (draft-07 `"$id": "#anchor"` does not).
fn id_of(v: &Value) -> Option<&str> {
    let id = v.as_object()?.get("$id")?.as_str()?;
    if id.starts_with('#') {
        None
    } else {
        Some(id)
    }
}

/// Iterative depth probe: hostile input is rejected before any recursive walk
/// (including `clone`) could overflow the stack.
fn exceeds_depth(v: &Value, limit: usize) -> bool {
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        if d > limit {
            return true;
        }
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|x| (x, d + 1))),
            Value::Object(m) => stack.extend(m.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    false
}

/// Appends `t` to a JSON Pointer, escaped. Indexing a universe appends one per
/// subschema, and nearly no name needs escaping: only those that do are copied.
fn push_token(ptr: &mut String, t: &str) {
    if t.contains(['~', '/']) {
        ptr.push_str(&t.replace('~', "~0").replace('/', "~1"));
    } else {
        ptr.push_str(t);
    }
}

impl<'a> Universe<'a> {
    /// Loads `root` and, transitively, every external document its `$ref`s need.
    pub(crate) fn build(
        root: &'a Value,
        base: Option<&str>,
        source: &'a dyn SchemaSource,
    ) -> Result<Universe<'a>, EvolutionError> {
        if exceeds_depth(root, MAX_DEPTH * 2) {
            return Err(EvolutionError::TooDeep {
                limit: MAX_DEPTH,
                pointer: String::new(),
            });
        }
        let base = base.unwrap_or(DEFAULT_BASE_URI);
        let base = match id_of(root) {
            Some(id) => uri::split_fragment(&uri::resolve(base, id)).0.to_string(),
            None => uri::split_fragment(base).0.to_string(),
        };
        let legacy_ref = root
            .get("$schema")
            .and_then(Value::as_str)
            .is_some_and(|s| {
                s.contains("draft-04") || s.contains("draft-06") || s.contains("draft-07")
            });
        let mut u = Universe {
            docs: Vec::new(),
            doc_base: Vec::new(),
            resources: HashMap::new(),
            anchors: HashMap::new(),
            legacy_ref,
        };
        let mut refs = Vec::new();
        u.add_doc(Cow::Borrowed(root), &base, &mut refs)?;
        while let Some((reference, abs)) = refs.pop() {
            let doc_uri = uri::split_fragment(&abs).0.to_string();
            if u.resources.contains_key(&doc_uri) {
                continue;
            }
            let doc = match source.load_borrowed(&doc_uri) {
                Some(doc) => Some(Cow::Borrowed(doc)),
                None => source.load(&doc_uri).map(Cow::Owned),
            };
            match doc {
                Some(doc) if exceeds_depth(&doc, MAX_DEPTH * 2) => {
                    return Err(EvolutionError::TooDeep {
                        limit: MAX_DEPTH,
                        pointer: doc_uri,
                    })
                }
                Some(doc) => u.add_doc(doc, &doc_uri, &mut refs)?,
                None => {
                    return Err(EvolutionError::UnresolvableRef {
                        reference,
                        uri: abs,
                    })
                }
            }
        }
        Ok(u)
    }

    fn add_doc(
        &mut self,
        doc: Cow<'a, Value>,
        base: &str,
        refs: &mut Vec<(String, String)>,
    ) -> Result<(), EvolutionError> {
        let idx = self.docs.len();
        self.resources
            .entry(base.to_string())
            .or_insert((idx, String::new()));
        let mut ptr = String::new();
        self.index(&doc, idx, base, &mut ptr, refs, 0)?;
        self.docs.push(doc);
        self.doc_base.push(Rc::from(base));
        Ok(())
    }

    fn index(
        &mut self,
        v: &Value,
        doc: usize,
        base: &str,
        ptr: &mut String,
        refs: &mut Vec<(String, String)>,
        depth: usize,
    ) -> Result<(), EvolutionError> {
        if depth > MAX_DEPTH * 2 {
            return Err(EvolutionError::TooDeep {
                limit: MAX_DEPTH,
                pointer: ptr.clone(),
            });
        }
        let Some(obj) = v.as_object() else {
            return Ok(());
        };
        let mut base = base.to_string();
        if let Some(id) = obj.get("$id").and_then(Value::as_str) {
            if let Some(anchor) = id.strip_prefix('#') {
                self.anchors
                    .insert(format!("{base}#{anchor}"), (doc, ptr.clone()));
            } else {
                let abs = uri::resolve(&base, id);
                let (doc_part, frag) = uri::split_fragment(&abs);
                base = doc_part.to_string();
                self.resources
                    .entry(base.clone())
                    .or_insert((doc, ptr.clone()));
                if !frag.is_empty() && !frag.starts_with('/') {
                    self.anchors
                        .insert(format!("{base}#{frag}"), (doc, ptr.clone()));
                }
            }
        }
        for key in ["$anchor", "$dynamicAnchor"] {
            if let Some(a) = obj.get(key).and_then(Value::as_str) {
                self.anchors
                    .insert(format!("{base}#{a}"), (doc, ptr.clone()));
            }
        }
        for key in ["$ref", "$dynamicRef"] {
            if let Some(r) = obj.get(key).and_then(Value::as_str) {
                refs.push((r.to_string(), uri::resolve(&base, r)));
            }
        }
        let len = ptr.len();
        for (key, child) in obj {
            let k = key.as_str();
            if SCHEMA_MAPS.contains(&k) {
                if let Some(m) = child.as_object() {
                    for (name, sub) in m {
                        ptr.push('/');
                        push_token(ptr, k);
                        ptr.push('/');
                        push_token(ptr, name);
                        self.index(sub, doc, &base, ptr, refs, depth + 1)?;
                        ptr.truncate(len);
                    }
                }
            }
            if SCHEMA_ARRAYS.contains(&k) {
                if let Some(a) = child.as_array() {
                    for (i, sub) in a.iter().enumerate() {
                        ptr.push('/');
                        push_token(ptr, k);
                        ptr.push('/');
                        ptr.push_str(&i.to_string());
                        self.index(sub, doc, &base, ptr, refs, depth + 1)?;
                        ptr.truncate(len);
                    }
                }
            }
            if SCHEMA_SINGLES.contains(&k) && child.is_object() {
                ptr.push('/');
                push_token(ptr, k);
                self.index(child, doc, &base, ptr, refs, depth + 1)?;
                ptr.truncate(len);
            }
        }
        Ok(())
    }

    /// The root node of this universe.
    pub(crate) fn root(&self) -> Node<'_> {
        Node {
            v: &self.docs[0],
            base: self.doc_base[0].clone(),
            uni: self,
        }
    }

    /// Resolves a `$ref` found in `from` to the node it designates.
    pub(crate) fn resolve<'u>(
        &'u self,
        from: &Node<'u>,
        reference: &str,
    ) -> Result<Node<'u>, EvolutionError> {
        let abs = uri::resolve(&from.base, reference);
        let (doc_uri, frag) = uri::split_fragment(&abs);
        let unresolvable = || EvolutionError::UnresolvableRef {
            reference: reference.to_string(),
            uri: abs.clone(),
        };
        let (doc, pointer) = if frag.is_empty() || frag.starts_with('/') {
            let (doc, root_ptr) = self.resources.get(doc_uri).ok_or_else(unresolvable)?;
            (*doc, format!("{root_ptr}{}", uri::percent_decode(frag)))
        } else {
            let (doc, p) = self
                .anchors
                .get(&format!("{doc_uri}#{frag}"))
                .ok_or_else(unresolvable)?;
            (*doc, p.clone())
        };
        self.descend(doc, &pointer).ok_or_else(unresolvable)
    }

    /// Walks a JSON Pointer from a document root, tracking `$id` base changes.
    fn descend(&self, doc: usize, pointer: &str) -> Option<Node<'_>> {
        let mut node = Node {
            v: &self.docs[doc],
            base: self.doc_base[doc].clone(),
            uni: self,
        };
        if pointer.is_empty() {
            return Some(node);
        }
        for raw in pointer.strip_prefix('/')?.split('/') {
            let token = raw.replace("~1", "/").replace("~0", "~");
            let next = match node.v {
                Value::Object(m) => m.get(&token)?,
                Value::Array(a) => a.get(token.parse::<usize>().ok()?)?,
                _ => return None,
            };
            node = node.child(next);
        }
        Some(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resolves_local_anchor_and_external() {
        let common = json!({"$defs": {"uuid": {"type": "string", "format": "uuid"}}});
        let mut src = HashMap::new();
        src.insert("herald:/contracts/common/1.0.0.json".to_string(), common);
        let root = json!({
            "$defs": {"a": {"$anchor": "thing", "type": "integer"}},
            "properties": {"id": {"$ref": "../common/1.0.0.json#/$defs/uuid"}}
        });
        let u =
            Universe::build(&root, Some("herald:/contracts/UsageEvent/1.0.0.json"), &src).unwrap();
        let r = u.root();
        let ext = u.resolve(&r, "../common/1.0.0.json#/$defs/uuid").unwrap();
        assert_eq!(ext.v["format"], "uuid");
        assert_eq!(&*ext.base, "herald:/contracts/common/1.0.0.json");
        let anchor = u.resolve(&r, "#thing").unwrap();
        assert_eq!(anchor.v["type"], "integer");
        let local = u.resolve(&r, "#/$defs/a").unwrap();
        assert_eq!(local.v["type"], "integer");
    }

    #[test]
    fn missing_external_document_is_an_error() {
        let root = json!({"$ref": "other.json"});
        let err = Universe::build(&root, None, &NoExternalSchemas).unwrap_err();
        assert!(
            matches!(err, EvolutionError::UnresolvableRef { .. }),
            "{err}"
        );
    }

    #[test]
    fn nested_id_changes_base() {
        let root = json!({
            "$id": "https://x.test/root.json",
            "$defs": {"inner": {"$id": "sub/inner.json", "$defs": {"n": {"type": "null"}}, "$ref": "#/$defs/n"}}
        });
        let u = Universe::build(&root, None, &NoExternalSchemas).unwrap();
        let r = u.root();
        let inner = u.resolve(&r, "sub/inner.json").unwrap();
        assert_eq!(&*inner.base, "https://x.test/sub/inner.json");
        let n = u.resolve(&inner, "#/$defs/n").unwrap();
        assert_eq!(n.v["type"], "null");
    }
}
