//! The comparison engine: walks two schemas side by side and emits [`Change`]s with a
//! verdict for each reading direction.
//!
//! # How it decides
//! A schema is a conjunction of keyword assertions. The engine first *flattens* each
//! side into a list of conjuncts ([`Alt`]): `$ref` targets and `allOf` branches are
//! inlined, so `$ref` indirection and `allOf` regrouping never show up as changes.
//! Unions (`anyOf`, `oneOf`, and `type` arrays when the other side is a union) are then
//! expanded into alternatives; with one alternative per side, keywords are compared
//! family by family (types, enum, numbers, strings, arrays, objects, `not`,
//! conditionals, annotations). Each family's rule knows both directions:
//! `backward` = old ⊆ new, `forward` = new ⊆ old. With several alternatives, every old
//! alternative must fit in some new one (backward) and vice versa (forward); a `oneOf`
//! receiving side also needs the instance to match *only* that branch, which the
//! engine proves by disjointness or reports as unknown.
//!
//! Every `Compatible` verdict is meant to be sound (never claim safety that does not
//! hold); `Incompatible` may occasionally be conservative (e.g. a keyword that a
//! draft ignores is still compared, as Confluent does). Recursive schemas terminate
//! by assuming a pair already under comparison is compatible (coinduction), and
//! nesting deeper than [`MAX_DEPTH`] is an error, never a stack overflow.

use super::change::{Action, Change, ChangeKind, Severity, Subject, Verdict};
use super::json_type::{self, TypeSet};
use super::resolve::{Node, MAX_DEPTH};
use super::{EvolutionError, Policy, RequiredRule};
use regex::Regex;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

mod arrays;
mod logic;
mod objects;
mod scalars;
mod unions;

type Res<T> = Result<T, EvolutionError>;

/// How many alternatives a union may expand to before the engine gives up (unknown).
const MAX_ALTERNATIVES: usize = 64;

/// Keywords that take part in validation (everything else is an annotation).
const VALIDATION_KEYWORDS: &[&str] = &[
    "type",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "properties",
    "patternProperties",
    "additionalProperties",
    "unevaluatedProperties",
    "required",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "items",
    "prefixItems",
    "additionalItems",
    "unevaluatedItems",
    "minItems",
    "maxItems",
    "uniqueItems",
    "contains",
    "minContains",
    "maxContains",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "$ref",
    "$dynamicRef",
    "$recursiveRef",
];

/// Structural keywords that are neither validation nor worth reporting.
const SILENT_KEYWORDS: &[&str] = &[
    "$defs",
    "definitions",
    "$anchor",
    "$dynamicAnchor",
    "$recursiveAnchor",
    "$vocabulary",
];

/// Where an alternative came from: a branch of an `anyOf`/`oneOf` group.
#[derive(Debug, Clone)]
struct Origin<'u> {
    keyword: &'static str,
    branch: usize,
    group: Node<'u>,
    ptr: String,
}

/// One conjunction of subschemas (after inlining `$ref` and `allOf`).
#[derive(Debug, Clone)]
pub(crate) struct Alt<'u> {
    nodes: Vec<Node<'u>>,
    /// A `false` conjunct: accepts nothing.
    empty: bool,
    /// Union groups already expanded into this alternative.
    consumed: Vec<(usize, &'static str)>,
    /// Type restriction from splitting a union by type.
    only: TypeSet,
    origin: Vec<Origin<'u>>,
    /// Union of the conjuncts' keyword bits ([`keyword_bit`]): skips lookups of
    /// keywords no conjunct has, which is most of them.
    mask: u64,
    /// Some conjunct was reached through `$ref` (only then can comparisons recurse).
    via_ref: bool,
}

/// Bit of a validation keyword in [`Alt::mask`]; every other key shares bit 63.
fn keyword_bit(key: &str) -> u64 {
    match VALIDATION_KEYWORDS.iter().position(|k| *k == key) {
        Some(i) => 1 << i,
        None => 1 << 63,
    }
}

fn node_mask(m: &serde_json::Map<String, Value>) -> u64 {
    m.keys().fold(0, |acc, k| acc | keyword_bit(k))
}

/// FNV-1a: cycle-detection keys are short vectors of addresses, hashed on every
/// comparison; SipHash's DoS resistance buys nothing here.
#[derive(Default, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvBuild = std::hash::BuildHasherDefault<Fnv>;

impl<'u> Alt<'u> {
    fn new() -> Self {
        Alt {
            nodes: Vec::new(),
            empty: false,
            consumed: Vec::new(),
            only: TypeSet::ANY,
            origin: Vec::new(),
            mask: 0,
            via_ref: false,
        }
    }

    /// Names declared in `properties` by any conjunct (reserved-name checks).
    pub(crate) fn property_names(&self) -> Vec<&'u str> {
        let mut names: Vec<&'u str> = Vec::new();
        for n in &self.nodes {
            if let Some(Value::Object(p)) = n.v.get("properties") {
                for k in p.keys() {
                    if !names.contains(&k.as_str()) {
                        names.push(k.as_str());
                    }
                }
            }
        }
        names
    }

    /// Identity for cycle detection. Pure `$ref` holders are left out so that a
    /// recursive reference is recognised at its first recurrence.
    fn key(&self) -> Vec<usize> {
        let mut k: Vec<usize> = self
            .nodes
            .iter()
            .filter(|n| {
                n.v.as_object().is_none_or(|m| {
                    m.keys().any(|k| {
                        VALIDATION_KEYWORDS.contains(&k.as_str())
                            && k != "$ref"
                            && k != "$dynamicRef"
                    })
                })
            })
            .map(Node::addr)
            .collect();
        k.push(usize::from(self.only.0));
        k.extend(self.consumed.iter().map(|c| c.0));
        k.push(usize::from(self.empty));
        k
    }

    fn values(&self, key: &'static str) -> impl Iterator<Item = (&Node<'u>, &'u Value)> + '_ {
        let present = self.mask & keyword_bit(key) != 0;
        let nodes = if present {
            &self.nodes[..]
        } else {
            &self.nodes[..0]
        };
        nodes
            .iter()
            .filter_map(move |n| n.v.get(key).map(|v| (n, v)))
    }

    /// True when no conjunct restricts anything (`true`, `{}` or annotations only).
    fn is_trivially_true(&self) -> bool {
        !self.empty && self.only == TypeSet::ANY && self.mask & !(1 << 63) == 0
    }
}

/// Pointer token escaping (RFC 6901).
pub(crate) fn escape(t: &str) -> String {
    t.replace('~', "~0").replace('/', "~1")
}

/// JSON equality as JSON Schema defines it (`1 == 1.0`, key order irrelevant).
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// Worst verdict per direction over a list of changes.
pub(crate) fn reduce(changes: &[Change]) -> (Verdict, Verdict) {
    changes
        .iter()
        .fold((Verdict::Compatible, Verdict::Compatible), |(b, f), c| {
            (b.and(c.backward), f.and(c.forward))
        })
}

fn relation(b: Verdict, f: Verdict) -> Action {
    match (b, f) {
        (Verdict::Compatible, Verdict::Incompatible | Verdict::Unknown) => Action::Widened,
        (Verdict::Incompatible | Verdict::Unknown, Verdict::Compatible) => Action::Narrowed,
        _ => Action::Changed,
    }
}

/// The engine state for one comparison.
pub(crate) struct Differ {
    policy: Policy,
    required_rule: RequiredRule,
    depth: usize,
    in_progress: HashSet<(Vec<usize>, Vec<usize>), FnvBuild>,
    /// Set once any `$ref` has been followed: from then on every pair is tracked.
    refs_seen: bool,
    regexes: HashMap<String, Option<Regex>, FnvBuild>,
}

impl Differ {
    pub(crate) fn new(policy: Policy, required_rule: RequiredRule) -> Self {
        Differ {
            policy,
            required_rule,
            depth: 0,
            in_progress: HashSet::default(),
            refs_seen: false,
            regexes: HashMap::default(),
        }
    }

    fn push(
        out: &mut Vec<Change>,
        subject: Subject,
        action: Action,
        pointer: String,
        message: String,
        backward: Verdict,
        forward: Verdict,
    ) {
        out.push(Change {
            kind: ChangeKind::new(subject, action),
            pointer,
            message,
            backward,
            forward,
            severity: Severity::NonBreaking,
        });
    }

    // ------------------------------------------------------------------ flattening

    fn flatten<'u>(&self, node: Node<'u>, alt: &mut Alt<'u>, depth: usize) -> Res<()> {
        if depth > MAX_DEPTH {
            return Err(EvolutionError::TooDeep {
                limit: MAX_DEPTH,
                pointer: String::from("(reference chain)"),
            });
        }
        match node.v {
            Value::Bool(true) => Ok(()),
            Value::Bool(false) => {
                alt.empty = true;
                Ok(())
            }
            Value::Object(m) => {
                if alt.nodes.iter().any(|n| n.addr() == node.addr()) {
                    return Ok(());
                }
                let reference = m
                    .get("$ref")
                    .or_else(|| m.get("$dynamicRef"))
                    .and_then(Value::as_str);
                if let Some(r) = reference {
                    let target = node.uni.resolve(&node, r)?;
                    alt.via_ref = true;
                    if node.uni.legacy_ref {
                        // Draft-07 and earlier ignore the siblings of `$ref`.
                        return self.flatten(target, alt, depth + 1);
                    }
                    alt.mask |= node_mask(m);
                    alt.nodes.push(node.clone());
                    self.flatten(target, alt, depth + 1)?;
                } else {
                    alt.mask |= node_mask(m);
                    alt.nodes.push(node.clone());
                }
                if let Some(all) = m.get("allOf") {
                    let Some(all) = all.as_array() else {
                        return Err(EvolutionError::InvalidSchema {
                            pointer: String::from("allOf"),
                            reason: "allOf must be an array".into(),
                        });
                    };
                    for b in all {
                        self.flatten(node.child(b), alt, depth + 1)?;
                    }
                }
                Ok(())
            }
            other => Err(EvolutionError::InvalidSchema {
                pointer: String::new(),
                reason: format!(
                    "a schema must be an object or a boolean, found {}",
                    short(other)
                ),
            }),
        }
    }

    pub(crate) fn alt_of<'u>(&self, nodes: &[Node<'u>]) -> Res<Alt<'u>> {
        let mut alt = Alt::new();
        for n in nodes {
            self.flatten(n.clone(), &mut alt, 0)?;
        }
        Ok(alt)
    }

    fn next_group<'u>(alt: &Alt<'u>) -> Option<(Node<'u>, &'static str, &'u Vec<Value>)> {
        for n in &alt.nodes {
            for kw in ["anyOf", "oneOf"] {
                if let Some(Value::Array(branches)) = n.v.get(kw) {
                    if !alt.consumed.contains(&(n.addr(), kw)) {
                        return Some((n.clone(), kw, branches));
                    }
                }
            }
        }
        None
    }

    /// Expands unions into alternatives; returns false when over budget.
    fn expand<'u>(&self, alt: Alt<'u>, out: &mut Vec<Alt<'u>>) -> Res<bool> {
        if alt.empty {
            return Ok(true);
        }
        match Self::next_group(&alt) {
            None => {
                if !self.is_empty_alt(&alt) {
                    out.push(alt);
                }
                Ok(true)
            }
            Some((node, kw, branches)) => {
                for (i, b) in branches.iter().enumerate() {
                    let mut c = alt.clone();
                    c.consumed.push((node.addr(), kw));
                    c.origin.push(Origin {
                        keyword: kw,
                        branch: i,
                        group: node.clone(),
                        ptr: format!("/{kw}/{i}"),
                    });
                    self.flatten(node.child(b), &mut c, 0)?;
                    if !self.expand(c, out)? || out.len() > MAX_ALTERNATIVES {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }

    // ------------------------------------------------------------------ facts

    fn declared_types(alt: &Alt<'_>) -> TypeSet {
        alt.values("type")
            .fold(alt.only, |acc, (_, v)| acc.and(TypeSet::from_keyword(v)))
    }

    fn enum_values<'u>(alt: &Alt<'u>) -> Option<Vec<&'u Value>> {
        let mut current: Option<Vec<&'u Value>> = None;
        for n in &alt.nodes {
            let list: Option<Vec<&'u Value>> = match (n.v.get("const"), n.v.get("enum")) {
                (Some(c), Some(Value::Array(e))) => Some(if e.iter().any(|x| json_eq(x, c)) {
                    vec![c]
                } else {
                    vec![]
                }),
                (Some(c), _) => Some(vec![c]),
                (None, Some(Value::Array(e))) => Some(e.iter().collect()),
                _ => None,
            };
            if let Some(list) = list {
                current = Some(match current {
                    None => list,
                    Some(cur) => cur
                        .into_iter()
                        .filter(|v| list.iter().any(|w| json_eq(v, w)))
                        .collect(),
                });
            }
        }
        let declared = Self::declared_types(alt);
        current.map(|vals| {
            let mut kept: Vec<&'u Value> = Vec::new();
            for v in vals {
                if TypeSet::of_value(v).subset_of(declared) && !kept.iter().any(|k| json_eq(k, v)) {
                    kept.push(v);
                }
            }
            kept
        })
    }

    fn types(alt: &Alt<'_>) -> TypeSet {
        let declared = Self::declared_types(alt);
        match Self::enum_values(alt) {
            Some(vals) => declared.and(
                vals.iter()
                    .fold(TypeSet(0), |acc, v| acc.or(TypeSet::of_value(v))),
            ),
            None => declared,
        }
    }

    fn is_empty_alt(&self, alt: &Alt<'_>) -> bool {
        alt.empty || Self::types(alt).is_empty()
    }

    fn regex_matches(&mut self, pattern: &str, name: &str) -> Option<bool> {
        let re = self
            .regexes
            .entry(pattern.to_string())
            .or_insert_with(|| Regex::new(pattern).ok());
        re.as_ref().map(|r| r.is_match(name))
    }

    // ------------------------------------------------------------------ entry

    /// Compares two conjunctions, appending changes at `ptr`.
    pub(crate) fn cmp<'u>(
        &mut self,
        old: Alt<'u>,
        new: Alt<'u>,
        ptr: &str,
        out: &mut Vec<Change>,
    ) -> Res<()> {
        if self.depth >= MAX_DEPTH {
            return Err(EvolutionError::TooDeep {
                limit: MAX_DEPTH,
                pointer: ptr.to_string(),
            });
        }
        // Only comparisons that involve a document reached by `$ref` (including
        // the root, which `#` can reach) can recur.
        let key = (old.via_ref || new.via_ref || self.depth == 0 || self.refs_seen)
            .then(|| (old.key(), new.key()));
        if let Some(k) = &key {
            if !self.in_progress.insert(k.clone()) {
                // Already comparing this pair further up: assume compatible (coinduction).
                return Ok(());
            }
        }
        self.refs_seen |= old.via_ref || new.via_ref;
        self.depth += 1;
        let result = self.cmp_inner(old, new, ptr, out);
        self.depth -= 1;
        if let Some(k) = &key {
            self.in_progress.remove(k);
        }
        result
    }

    /// Runs a comparison into a scratch list and returns it with its verdicts.
    fn scratch<'u>(
        &mut self,
        old: Alt<'u>,
        new: Alt<'u>,
        ptr: &str,
    ) -> Res<(Vec<Change>, Verdict, Verdict)> {
        let mut tmp = Vec::new();
        self.cmp(old, new, ptr, &mut tmp)?;
        let (b, f) = reduce(&tmp);
        Ok((tmp, b, f))
    }

    fn cmp_inner<'u>(
        &mut self,
        old: Alt<'u>,
        new: Alt<'u>,
        ptr: &str,
        out: &mut Vec<Change>,
    ) -> Res<()> {
        let mut o_alts = Vec::new();
        let mut n_alts = Vec::new();
        let o_ok = self.expand(old.clone(), &mut o_alts)?;
        let n_ok = self.expand(new.clone(), &mut n_alts)?;
        if !o_ok || !n_ok {
            Self::push(
                out,
                Subject::Schema,
                Action::Changed,
                ptr.to_string(),
                format!("union with more than {MAX_ALTERNATIVES} alternatives: not analysed"),
                Verdict::Unknown,
                Verdict::Unknown,
            );
            return Ok(());
        }
        match (o_alts.len(), n_alts.len()) {
            (0, 0) => Ok(()),
            (0, _) => {
                Self::push(
                    out,
                    Subject::Schema,
                    Action::Widened,
                    ptr.to_string(),
                    "the old schema accepted nothing here; the new one accepts values".into(),
                    Verdict::Compatible,
                    Verdict::Incompatible,
                );
                Ok(())
            }
            (_, 0) => {
                Self::push(
                    out,
                    Subject::Schema,
                    Action::Narrowed,
                    ptr.to_string(),
                    "the new schema accepts nothing here".into(),
                    Verdict::Incompatible,
                    Verdict::Compatible,
                );
                Ok(())
            }
            (1, 1) => {
                let o = o_alts.pop().unwrap_or_else(Alt::new);
                let n = n_alts.pop().unwrap_or_else(Alt::new);
                self.structural(&o, &n, ptr, out)
            }
            _ => {
                self.annotations(&old, &new, ptr, out);
                self.disjunctive(o_alts, n_alts, ptr, out)
            }
        }
    }

    // ------------------------------------------------------------------ structural

    fn structural<'u>(
        &mut self,
        o: &Alt<'u>,
        n: &Alt<'u>,
        ptr: &str,
        out: &mut Vec<Change>,
    ) -> Res<()> {
        self.annotations(o, n, ptr, out);
        let (to, tn) = (Self::types(o), Self::types(n));
        let (eo, en) = (Self::enum_values(o), Self::enum_values(n));
        if eo.is_none() || en.is_none() {
            Self::type_change(to, tn, ptr, out);
        }
        Self::enum_change(o, n, eo, en, to, ptr, out);

        let start = out.len();
        Self::numeric(o, n, ptr, out);
        Self::gate(
            out,
            start,
            to.has(json_type::NUMBER),
            tn.has(json_type::NUMBER),
        );

        let start = out.len();
        Self::strings(o, n, ptr, out);
        Self::gate(
            out,
            start,
            to.has(json_type::STRING),
            tn.has(json_type::STRING),
        );

        let start = out.len();
        self.arrays(o, n, ptr, out)?;
        Self::gate(
            out,
            start,
            to.has(json_type::ARRAY),
            tn.has(json_type::ARRAY),
        );

        let start = out.len();
        self.objects(o, n, ptr, out)?;
        Self::gate(
            out,
            start,
            to.has(json_type::OBJECT),
            tn.has(json_type::OBJECT),
        );

        // `not`, `if`/`then`/`else` and `dependentSchemas` subschemas apply to this
        // same instance, whose names the parent declares: compared on their own, they
        // would look "open" and the lenient policy would wrongly excuse them.
        self.strictly(|d| d.nots(o, n, ptr, out))?;
        self.strictly(|d| d.conditionals(o, n, ptr, out))?;
        Ok(())
    }

    /// Runs `f` under the strict policy (restoring the policy afterwards).
    fn strictly<T>(&mut self, f: impl FnOnce(&mut Self) -> Res<T>) -> Res<T> {
        let saved = std::mem::replace(&mut self.policy, Policy::Strict);
        let result = f(self);
        self.policy = saved;
        result
    }

    /// Keyword families only constrain instances of their type: when the old schema
    /// admits no such instance, nothing old can break (and likewise for new/forward).
    fn gate(out: &mut [Change], start: usize, old_relevant: bool, new_relevant: bool) {
        for c in &mut out[start..] {
            if !old_relevant {
                c.backward = Verdict::Compatible;
            }
            if !new_relevant {
                c.forward = Verdict::Compatible;
            }
        }
    }

    fn annotations(&self, o: &Alt<'_>, n: &Alt<'_>, ptr: &str, out: &mut Vec<Change>) {
        let mut keys: Vec<&str> = Vec::new();
        for node in o.nodes.iter().chain(&n.nodes) {
            if let Some(m) = node.v.as_object() {
                for k in m.keys() {
                    let k = k.as_str();
                    if !VALIDATION_KEYWORDS.contains(&k)
                        && !SILENT_KEYWORDS.contains(&k)
                        && !keys.contains(&k)
                    {
                        keys.push(k);
                    }
                }
            }
        }
        for k in keys {
            let vo: Vec<&Value> = o.nodes.iter().filter_map(|x| x.v.get(k)).collect();
            let vn: Vec<&Value> = n.nodes.iter().filter_map(|x| x.v.get(k)).collect();
            let action = if vo.is_empty() {
                Action::Added
            } else if vn.is_empty() {
                Action::Removed
            } else if vo.len() == vn.len() && vo.iter().zip(&vn).all(|(a, b)| json_eq(a, b)) {
                continue;
            } else {
                Action::Changed
            };
            let subject = match k {
                "title" => Subject::Title,
                "description" => Subject::Description,
                "examples" => Subject::Examples,
                "default" => Subject::Default,
                "deprecated" => Subject::Deprecated,
                "$comment" => Subject::Comment,
                "$id" => Subject::Id,
                _ => Subject::Annotation,
            };
            Self::push(
                out,
                subject,
                action,
                format!("{ptr}/{}", escape(k)),
                format!("annotation `{k}` {}", action.id()),
                Verdict::Compatible,
                Verdict::Compatible,
            );
        }
    }

    // ------------------------------------------------------------------ subschema slots

    /// Compares a subschema slot (e.g. `additionalProperties`, `contains`). When one
    /// side is absent or boolean the slot gets one summarising change; when both are
    /// real schemas their nested changes are reported instead.
    #[allow(clippy::too_many_arguments)]
    fn slot<'u>(
        &mut self,
        subject: Subject,
        old: &[Node<'u>],
        new: &[Node<'u>],
        ptr: &str,
        what: &str,
        open: (bool, bool),
        out: &mut Vec<Change>,
    ) -> Res<()> {
        if old.is_empty() && new.is_empty() {
            return Ok(());
        }
        let (oa, na) = (self.alt_of(old)?, self.alt_of(new)?);
        let (mut tmp, mut b, mut f) = self.scratch(oa.clone(), na.clone(), ptr)?;
        let lenient = self.policy == Policy::Lenient;
        if lenient && open.0 {
            b = Verdict::Compatible;
            tmp.iter_mut()
                .for_each(|c| c.backward = Verdict::Compatible);
        }
        if lenient && open.1 {
            f = Verdict::Compatible;
            tmp.iter_mut().for_each(|c| c.forward = Verdict::Compatible);
        }
        let simple = |a: &Alt<'_>| a.empty || a.is_trivially_true();
        if !simple(&oa) && !simple(&na) {
            out.extend(tmp);
            return Ok(());
        }
        if tmp.is_empty() {
            return Ok(());
        }
        if b == Verdict::Compatible && f == Verdict::Compatible {
            // nothing that validates changed (e.g. only annotations inside)
            out.extend(tmp);
            return Ok(());
        }
        let action = if old.is_empty() {
            Action::Added
        } else if new.is_empty() {
            Action::Removed
        } else {
            relation(b, f)
        };
        Self::push(
            out,
            subject,
            action,
            ptr.to_string(),
            format!("{what} {}", action.id().replace('_', " ")),
            b,
            f,
        );
        Ok(())
    }
}
