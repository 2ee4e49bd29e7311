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
use super::{EvolutionError, Policy};
use regex::Regex;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

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
    depth: usize,
    in_progress: HashSet<(Vec<usize>, Vec<usize>), FnvBuild>,
    /// Set once any `$ref` has been followed: from then on every pair is tracked.
    refs_seen: bool,
    regexes: HashMap<String, Option<Regex>, FnvBuild>,
}

impl Differ {
    pub(crate) fn new(policy: Policy) -> Self {
        Differ {
            policy,
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

    // ------------------------------------------------------------------ unions

    fn split_types<'u>(alts: Vec<Alt<'u>>) -> Vec<Alt<'u>> {
        let mut out = Vec::new();
        for a in alts {
            let units = Self::types(&a).units();
            if units.len() <= 1 {
                out.push(a);
            } else {
                for u in units {
                    let mut c = a.clone();
                    c.only = c.only.and(u);
                    out.push(c);
                }
            }
        }
        out
    }

    fn alt_label(a: &Alt<'_>) -> String {
        match a.origin.last() {
            Some(o) => match o.group.v.get(o.keyword).and_then(|g| g.get(o.branch)) {
                Some(b) => short(b),
                None => o.ptr.clone(),
            },
            None => format!("type {}", Self::types(a).describe()),
        }
    }

    fn alt_subject(a: &Alt<'_>) -> Subject {
        match a.origin.last().map(|o| o.keyword) {
            Some("oneOf") => Subject::OneOf,
            Some("anyOf") => Subject::AnyOf,
            _ => Subject::Type,
        }
    }

    fn alt_ptr(ptr: &str, a: &Alt<'_>) -> String {
        match a.origin.last() {
            Some(o) => format!("{ptr}{}", o.ptr),
            None => format!("{ptr}/type"),
        }
    }

    /// Proves that no instance satisfies both `a` and `b` (false = not proven).
    fn disjoint(&mut self, a: &Alt<'_>, b: &Alt<'_>, depth: usize) -> Res<bool> {
        if self.is_empty_alt(a) || self.is_empty_alt(b) {
            return Ok(true);
        }
        let (ta, tb) = (Self::types(a), Self::types(b));
        let common = ta.and(tb);
        if common.is_empty() {
            return Ok(true);
        }
        let rejects = |x: &Alt<'_>, v: &Value| {
            !TypeSet::of_value(v).subset_of(Self::types(x))
                || Self::enum_values(x).is_some_and(|e| !e.iter().any(|w| json_eq(w, v)))
        };
        if let Some(ea) = Self::enum_values(a) {
            if ea.iter().all(|v| rejects(b, v)) {
                return Ok(true);
            }
        }
        if let Some(eb) = Self::enum_values(b) {
            if eb.iter().all(|v| rejects(a, v)) {
                return Ok(true);
            }
        }
        if depth < 4 && common.subset_of(TypeSet(json_type::OBJECT)) {
            let ra = Self::required(a);
            let rb = Self::required(b);
            for name in ra.iter().filter(|n| rb.contains(n)) {
                let pa: Vec<Node<'_>> = a
                    .values("properties")
                    .filter_map(|(n, p)| p.get(name.as_str()).map(|s| n.child(s)))
                    .collect();
                let pb: Vec<Node<'_>> = b
                    .values("properties")
                    .filter_map(|(n, p)| p.get(name.as_str()).map(|s| n.child(s)))
                    .collect();
                if pa.is_empty() || pb.is_empty() {
                    continue;
                }
                let (aa, bb) = (self.alt_of(&pa)?, self.alt_of(&pb)?);
                if self.disjoint(&aa, &bb, depth + 1)? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Whether an instance of `x` (which came out of `x_origin` branches) can only
    /// match branch `chosen` of the `oneOf` `group` on the receiving side.
    fn exclusive<'u>(&mut self, x: &Alt<'u>, group: &Origin<'u>, ptr: &str) -> Res<bool> {
        let Some(Value::Array(branches)) = group.group.v.get(group.keyword) else {
            return Ok(true);
        };
        for (m, branch) in branches.iter().enumerate() {
            if m == group.branch {
                continue;
            }
            let other = self.alt_of(&[group.group.child(branch)])?;
            if self.disjoint(x, &other, 0)? {
                continue;
            }
            // x matched exactly one branch of its own oneOf: if `other` fits inside
            // another branch of that oneOf, x cannot match `other` either.
            let mut excluded = false;
            for own in x.origin.iter().filter(|o| o.keyword == "oneOf") {
                if let Some(Value::Array(own_branches)) = own.group.v.get("oneOf") {
                    for (k, ob) in own_branches.iter().enumerate() {
                        if k == own.branch {
                            continue;
                        }
                        let own_alt = self.alt_of(&[own.group.child(ob)])?;
                        let (_, b, _) = self.scratch(other.clone(), own_alt, ptr)?;
                        if b == Verdict::Compatible {
                            excluded = true;
                            break;
                        }
                    }
                }
                if excluded {
                    break;
                }
            }
            if !excluded {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn disjunctive<'u>(
        &mut self,
        o_alts: Vec<Alt<'u>>,
        n_alts: Vec<Alt<'u>>,
        ptr: &str,
        out: &mut Vec<Change>,
    ) -> Res<()> {
        let o = Self::split_types(o_alts);
        let n = Self::split_types(n_alts);
        // results[i][j] = comparison of old alternative i with new alternative j
        let mut results: Vec<Vec<(Vec<Change>, Verdict, Verdict)>> = Vec::with_capacity(o.len());
        for oa in &o {
            let mut row = Vec::with_capacity(n.len());
            for na in &n {
                let p = Self::alt_ptr(ptr, na);
                let p = if na.origin.is_empty() {
                    ptr.to_string()
                } else {
                    p
                };
                row.push(self.scratch(oa.clone(), na.clone(), &p)?);
            }
            results.push(row);
        }
        let pick =
            |cands: Vec<(usize, usize)>| cands.into_iter().min_by_key(|&(_, c)| c).map(|(j, _)| j);
        // backward: each old alternative inside some new one
        let mut bmatch: Vec<Option<usize>> = Vec::with_capacity(o.len());
        for row in &results {
            bmatch.push(pick(
                row.iter()
                    .enumerate()
                    .filter(|(_, r)| r.1 == Verdict::Compatible)
                    .map(|(j, r)| (j, r.0.len()))
                    .collect(),
            ));
        }
        // forward: each new alternative inside some old one
        let mut fmatch: Vec<Option<usize>> = Vec::with_capacity(n.len());
        for j in 0..n.len() {
            fmatch.push(pick(
                results
                    .iter()
                    .enumerate()
                    .filter(|(_, row)| row[j].2 == Verdict::Compatible)
                    .map(|(i, row)| (i, row[j].0.len()))
                    .collect(),
            ));
        }
        // oneOf exclusivity on the receiving side
        let mut b_overlap: Vec<(usize, Origin<'u>)> = Vec::new();
        for (i, m) in bmatch.iter().enumerate() {
            if let Some(j) = *m {
                for og in n[j].origin.iter().filter(|g| g.keyword == "oneOf") {
                    if !self.exclusive(&o[i], og, ptr)? {
                        b_overlap.push((i, og.clone()));
                    }
                }
            }
        }
        let mut f_overlap: Vec<(usize, Origin<'u>)> = Vec::new();
        for (j, m) in fmatch.iter().enumerate() {
            if let Some(i) = *m {
                for og in o[i].origin.iter().filter(|g| g.keyword == "oneOf") {
                    if !self.exclusive(&n[j], og, ptr)? {
                        f_overlap.push((j, og.clone()));
                    }
                }
            }
        }
        let mut targeted = vec![false; n.len()];
        for (i, m) in bmatch.iter().enumerate() {
            match *m {
                Some(j) => {
                    targeted[j] = true;
                    for c in &results[i][j].0 {
                        let mut c = c.clone();
                        if fmatch[j].is_some() {
                            c.forward = Verdict::Compatible;
                        }
                        out.push(c);
                    }
                }
                None => {
                    let subject = Self::alt_subject(&o[i]);
                    let action = if subject == Subject::Type {
                        Action::Narrowed
                    } else {
                        Action::BranchRemoved
                    };
                    Self::push(
                        out,
                        subject,
                        action,
                        Self::alt_ptr(ptr, &o[i]),
                        format!(
                            "old alternative {} is not accepted by any new alternative",
                            Self::alt_label(&o[i])
                        ),
                        Verdict::Incompatible,
                        Verdict::Compatible,
                    );
                }
            }
        }
        for j in 0..n.len() {
            if fmatch[j].is_none() && !targeted[j] {
                let subject = Self::alt_subject(&n[j]);
                let action = if subject == Subject::Type {
                    Action::Widened
                } else {
                    Action::BranchAdded
                };
                Self::push(
                    out,
                    subject,
                    action,
                    Self::alt_ptr(ptr, &n[j]),
                    format!(
                        "new alternative {} accepts values the old schema rejected",
                        Self::alt_label(&n[j])
                    ),
                    Verdict::Compatible,
                    Verdict::Incompatible,
                );
            }
        }
        for (i, og) in b_overlap {
            Self::push(
                out,
                Subject::OneOf,
                Action::OverlapUnknown,
                format!("{ptr}/oneOf"),
                format!(
                    "old values of {} may match more than one new oneOf branch (branch {} is not provably exclusive)",
                    Self::alt_label(&o[i]),
                    og.branch
                ),
                Verdict::Unknown,
                Verdict::Compatible,
            );
        }
        for (j, og) in f_overlap {
            Self::push(
                out,
                Subject::OneOf,
                Action::OverlapUnknown,
                format!("{ptr}/oneOf"),
                format!(
                    "new values of {} may match more than one old oneOf branch (branch {} is not provably exclusive)",
                    Self::alt_label(&n[j]),
                    og.branch
                ),
                Verdict::Compatible,
                Verdict::Unknown,
            );
        }
        Ok(())
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

        self.nots(o, n, ptr, out)?;
        self.conditionals(o, n, ptr, out)?;
        Ok(())
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

    fn type_change(to: TypeSet, tn: TypeSet, ptr: &str, out: &mut Vec<Change>) {
        if to == tn {
            return;
        }
        let null = TypeSet(json_type::NULL);
        let (action, b, f) = if to.subset_of(tn) {
            let a = if tn.minus(to) == null {
                Action::NullAdded
            } else {
                Action::Widened
            };
            (a, Verdict::Compatible, Verdict::Incompatible)
        } else if tn.subset_of(to) {
            let a = if to.minus(tn) == null {
                Action::NullRemoved
            } else {
                Action::Narrowed
            };
            (a, Verdict::Incompatible, Verdict::Compatible)
        } else {
            (
                Action::Changed,
                Verdict::Incompatible,
                Verdict::Incompatible,
            )
        };
        Self::push(
            out,
            Subject::Type,
            action,
            format!("{ptr}/type"),
            format!("type {} -> {}", to.describe(), tn.describe()),
            b,
            f,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn enum_change(
        o: &Alt<'_>,
        n: &Alt<'_>,
        eo: Option<Vec<&Value>>,
        en: Option<Vec<&Value>>,
        to: TypeSet,
        ptr: &str,
        out: &mut Vec<Change>,
    ) {
        let uses_const =
            |a: &Alt<'_>| a.values("const").next().is_some() && a.values("enum").next().is_none();
        let p = if uses_const(n) || (en.is_none() && uses_const(o)) {
            format!("{ptr}/const")
        } else {
            format!("{ptr}/enum")
        };
        match (eo, en) {
            (None, None) => {}
            (Some(_), None) => Self::push(
                out,
                Subject::Enum,
                Action::Removed,
                p,
                "the value list was removed".into(),
                Verdict::Compatible,
                Verdict::Incompatible,
            ),
            (None, Some(vn)) => {
                // A finite old domain (null/boolean) may be fully listed by the new enum.
                let mut b = Verdict::Incompatible;
                if to.subset_of(TypeSet(json_type::NULL | json_type::BOOLEAN)) {
                    let mut domain = Vec::new();
                    if to.has(json_type::NULL) {
                        domain.push(Value::Null);
                    }
                    if to.has(json_type::BOOLEAN) {
                        domain.push(Value::Bool(true));
                        domain.push(Value::Bool(false));
                    }
                    if domain.iter().all(|d| vn.iter().any(|v| json_eq(v, d))) {
                        b = Verdict::Compatible;
                    }
                }
                Self::push(
                    out,
                    Subject::Enum,
                    Action::Added,
                    p,
                    format!(
                        "values restricted to [{}]",
                        vn.iter().map(|v| short(v)).collect::<Vec<_>>().join(", ")
                    ),
                    b,
                    Verdict::Compatible,
                );
            }
            (Some(vo), Some(vn)) => {
                for v in &vo {
                    if !vn.iter().any(|w| json_eq(v, w)) {
                        Self::push(
                            out,
                            Subject::Enum,
                            Action::ValueRemoved,
                            p.clone(),
                            format!("value {} is no longer allowed", short(v)),
                            Verdict::Incompatible,
                            Verdict::Compatible,
                        );
                    }
                }
                for v in &vn {
                    if !vo.iter().any(|w| json_eq(v, w)) {
                        Self::push(
                            out,
                            Subject::Enum,
                            Action::ValueAdded,
                            p.clone(),
                            format!("value {} is now allowed", short(v)),
                            Verdict::Compatible,
                            Verdict::Incompatible,
                        );
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------ bounds

    /// Compares an optional bound. `lower` bounds tighten when they grow.
    #[allow(clippy::too_many_arguments)]
    fn bound(
        subject: Subject,
        keyword: &str,
        old: Option<f64>,
        new: Option<f64>,
        lower: bool,
        ptr: &str,
        out: &mut Vec<Change>,
    ) {
        let tighten = (Verdict::Incompatible, Verdict::Compatible);
        let relax = (Verdict::Compatible, Verdict::Incompatible);
        let (action, (b, f)) = match (old, new) {
            (None, None) => return,
            (None, Some(_)) => (Action::Added, tighten),
            (Some(_), None) => (Action::Removed, relax),
            (Some(x), Some(y)) if x == y => return,
            (Some(x), Some(y)) if y > x => (Action::Increased, if lower { tighten } else { relax }),
            (Some(_), Some(_)) => (Action::Decreased, if lower { relax } else { tighten }),
        };
        let fmt = |v: Option<f64>| v.map_or("none".to_string(), |v| v.to_string());
        Self::push(
            out,
            subject,
            action,
            format!("{ptr}/{keyword}"),
            format!("{keyword} {} -> {}", fmt(old), fmt(new)),
            b,
            f,
        );
    }

    fn uint(alt: &Alt<'_>, key: &'static str, lower: bool, default: u64) -> Option<f64> {
        let vals = alt.values(key).filter_map(|(_, v)| v.as_f64());
        let r = if lower {
            vals.fold(None, |acc: Option<f64>, v| {
                Some(acc.map_or(v, |a| a.max(v)))
            })
        } else {
            vals.fold(None, |acc: Option<f64>, v| {
                Some(acc.map_or(v, |a| a.min(v)))
            })
        };
        r.filter(|v| !(lower && *v == default as f64))
    }

    /// The tightest numeric bound as (value, exclusive).
    fn num_bound(alt: &Alt<'_>, lower: bool) -> Option<(f64, bool)> {
        let (inc, exc) = if lower {
            ("minimum", "exclusiveMinimum")
        } else {
            ("maximum", "exclusiveMaximum")
        };
        let mut best: Option<(f64, bool)> = None;
        let tighter = |a: (f64, bool), b: (f64, bool)| {
            if lower {
                a.0 > b.0 || (a.0 == b.0 && a.1 && !b.1)
            } else {
                a.0 < b.0 || (a.0 == b.0 && a.1 && !b.1)
            }
        };
        for n in &alt.nodes {
            let draft4_exclusive = n.v.get(exc).and_then(Value::as_bool).unwrap_or(false);
            let mut cands = Vec::new();
            if let Some(v) = n.v.get(inc).and_then(Value::as_f64) {
                cands.push((v, draft4_exclusive));
            }
            if let Some(v) = n.v.get(exc).and_then(Value::as_f64) {
                cands.push((v, true));
            }
            for c in cands {
                best = Some(match best {
                    Some(b) if !tighter(c, b) => b,
                    _ => c,
                });
            }
        }
        best
    }

    fn numeric(o: &Alt<'_>, n: &Alt<'_>, ptr: &str, out: &mut Vec<Change>) {
        for lower in [true, false] {
            let (bo, bn) = (Self::num_bound(o, lower), Self::num_bound(n, lower));
            if bo == bn {
                continue;
            }
            let exclusive = bn.or(bo).is_some_and(|b| b.1);
            let (subject, keyword) = match (lower, exclusive) {
                (true, false) => (Subject::Minimum, "minimum"),
                (true, true) => (Subject::ExclusiveMinimum, "exclusiveMinimum"),
                (false, false) => (Subject::Maximum, "maximum"),
                (false, true) => (Subject::ExclusiveMaximum, "exclusiveMaximum"),
            };
            match (bo, bn) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    // same value, exclusivity flipped
                    let tighter = y.1 && !x.1;
                    let action = if tighter == lower {
                        Action::Increased
                    } else {
                        Action::Decreased
                    };
                    let (b, f) = if tighter {
                        (Verdict::Incompatible, Verdict::Compatible)
                    } else {
                        (Verdict::Compatible, Verdict::Incompatible)
                    };
                    Self::push(
                        out,
                        subject,
                        action,
                        format!("{ptr}/{keyword}"),
                        format!(
                            "bound {} became {}",
                            x.0,
                            if y.1 { "exclusive" } else { "inclusive" }
                        ),
                        b,
                        f,
                    );
                }
                _ => Self::bound(
                    subject,
                    keyword,
                    bo.map(|b| b.0),
                    bn.map(|b| b.0),
                    lower,
                    ptr,
                    out,
                ),
            }
        }
        let mo: Vec<f64> = o
            .values("multipleOf")
            .filter_map(|(_, v)| v.as_f64())
            .collect();
        let mn: Vec<f64> = n
            .values("multipleOf")
            .filter_map(|(_, v)| v.as_f64())
            .collect();
        let divides = |m: f64, big: f64| {
            if m <= 0.0 {
                return false;
            }
            let r = big / m;
            r.round() >= 1.0 && (r - r.round()).abs() < 1e-9
        };
        // x multiple of every a in `from` implies x multiple of every b in `to`
        let implied =
            |from: &[f64], to: &[f64]| to.iter().all(|b| from.iter().any(|a| divides(*b, *a)));
        if mo.is_empty() && mn.is_empty() {
            return;
        }
        let b = if implied(&mo, &mn) {
            Verdict::Compatible
        } else {
            Verdict::Incompatible
        };
        let f = if implied(&mn, &mo) {
            Verdict::Compatible
        } else {
            Verdict::Incompatible
        };
        if b == Verdict::Compatible && f == Verdict::Compatible {
            return;
        }
        let action = if mo.is_empty() {
            Action::Added
        } else if mn.is_empty() {
            Action::Removed
        } else {
            relation(b, f)
        };
        Self::push(
            out,
            Subject::MultipleOf,
            action,
            format!("{ptr}/multipleOf"),
            format!("multipleOf {mo:?} -> {mn:?}"),
            b,
            f,
        );
    }

    fn strings(o: &Alt<'_>, n: &Alt<'_>, ptr: &str, out: &mut Vec<Change>) {
        Self::bound(
            Subject::MinLength,
            "minLength",
            Self::uint(o, "minLength", true, 0),
            Self::uint(n, "minLength", true, 0),
            true,
            ptr,
            out,
        );
        Self::bound(
            Subject::MaxLength,
            "maxLength",
            Self::uint(o, "maxLength", false, 0),
            Self::uint(n, "maxLength", false, 0),
            false,
            ptr,
            out,
        );
        let trivial = |p: &str| matches!(p, "" | ".*" | "^.*" | ".*$" | "^.*$");
        let pats = |a: &Alt<'_>| -> Vec<String> {
            let mut v: Vec<String> = a
                .values("pattern")
                .filter_map(|(_, p)| p.as_str())
                .filter(|p| !trivial(p))
                .map(str::to_string)
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let (po, pn) = (pats(o), pats(n));
        let added: Vec<&String> = pn.iter().filter(|p| !po.contains(p)).collect();
        let removed: Vec<&String> = po.iter().filter(|p| !pn.contains(p)).collect();
        let other_limits =
            |a: &Alt<'_>| a.values("format").next().is_some() || a.values("enum").next().is_some();
        if !added.is_empty() || !removed.is_empty() {
            let (action, b, f) = if removed.is_empty() {
                let b = if po.is_empty() && !other_limits(o) {
                    Verdict::Incompatible
                } else {
                    Verdict::Unknown
                };
                (Action::Added, b, Verdict::Compatible)
            } else if added.is_empty() {
                let f = if pn.is_empty() && !other_limits(n) {
                    Verdict::Incompatible
                } else {
                    Verdict::Unknown
                };
                (Action::Removed, Verdict::Compatible, f)
            } else {
                (Action::Changed, Verdict::Unknown, Verdict::Unknown)
            };
            Self::push(
                out,
                Subject::Pattern,
                action,
                format!("{ptr}/pattern"),
                format!("pattern {po:?} -> {pn:?}"),
                b,
                f,
            );
        }
        let fmts = |a: &Alt<'_>| -> Vec<String> {
            let mut v: Vec<String> = a
                .values("format")
                .filter_map(|(_, p)| p.as_str())
                .map(str::to_string)
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let (fo, fnew) = (fmts(o), fmts(n));
        if fo != fnew {
            // Known containments between formats (left is a subset of right).
            const WITHIN: &[(&str, &str)] = &[
                ("email", "idn-email"),
                ("hostname", "idn-hostname"),
                ("uri", "iri"),
                ("uri", "uri-reference"),
                ("uri-reference", "iri-reference"),
                ("iri", "iri-reference"),
                ("uri", "iri-reference"),
            ];
            let within = |a: &[String], b: &[String]| {
                b.iter().all(|y| {
                    a.iter()
                        .any(|x| x == y || WITHIN.contains(&(x.as_str(), y.as_str())))
                })
            };
            let (action, b, f) = if fo.is_empty() {
                (Action::Added, Verdict::Incompatible, Verdict::Compatible)
            } else if fnew.is_empty() {
                (Action::Removed, Verdict::Compatible, Verdict::Incompatible)
            } else {
                let b = if within(&fo, &fnew) {
                    Verdict::Compatible
                } else {
                    Verdict::Unknown
                };
                let f = if within(&fnew, &fo) {
                    Verdict::Compatible
                } else {
                    Verdict::Unknown
                };
                (relation(b, f), b, f)
            };
            Self::push(
                out,
                Subject::Format,
                action,
                format!("{ptr}/format"),
                format!("format {fo:?} -> {fnew:?}"),
                b,
                f,
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

    // ------------------------------------------------------------------ arrays

    /// (tuple, rest, ignored additionalItems) of one conjunct.
    fn array_model<'u>(
        n: &Node<'u>,
    ) -> (Option<&'u Vec<Value>>, Option<&'u Value>, Option<&'u Value>) {
        let v = n.v;
        if let Some(Value::Array(t)) = v.get("prefixItems") {
            let rest = v.get("items").filter(|i| !i.is_array());
            return (Some(t), rest.or_else(|| v.get("unevaluatedItems")), None);
        }
        if let Some(Value::Array(t)) = v.get("items") {
            return (
                Some(t),
                v.get("additionalItems")
                    .or_else(|| v.get("unevaluatedItems")),
                None,
            );
        }
        (
            None,
            v.get("items").or_else(|| v.get("unevaluatedItems")),
            v.get("additionalItems"),
        )
    }

    fn arrays<'u>(
        &mut self,
        o: &Alt<'u>,
        n: &Alt<'u>,
        ptr: &str,
        out: &mut Vec<Change>,
    ) -> Res<()> {
        let tuple_key = |a: &Alt<'_>| {
            if a.values("prefixItems").next().is_some() {
                "prefixItems"
            } else {
                "items"
            }
        };
        let tk = if n.values("prefixItems").next().is_some()
            || o.values("prefixItems").next().is_some()
        {
            "prefixItems"
        } else {
            tuple_key(n)
        };
        let longest = |a: &Alt<'u>| {
            a.nodes
                .iter()
                .filter_map(|x| Self::array_model(x).0.map(Vec::len))
                .max()
                .unwrap_or(0)
        };
        let (lo, ln) = (longest(o), longest(n));
        let at = |a: &Alt<'u>, i: usize| -> (Vec<Node<'u>>, bool) {
            let mut nodes = Vec::new();
            let mut declared = false;
            for x in &a.nodes {
                let (tuple, rest, _) = Self::array_model(x);
                match tuple.and_then(|t| t.get(i)) {
                    Some(s) => {
                        declared = true;
                        nodes.push(x.child(s));
                    }
                    None => {
                        if let Some(r) = rest {
                            nodes.push(x.child(r));
                        }
                    }
                }
            }
            (nodes, declared)
        };
        for i in 0..lo.max(ln) {
            let (on, od) = at(o, i);
            let (nn, nd) = at(n, i);
            let p = format!("{ptr}/{tk}/{i}");
            if od && nd {
                let (oa, na) = (self.alt_of(&on)?, self.alt_of(&nn)?);
                self.cmp(oa, na, &p, out)?;
            } else {
                let (oa, na) = (self.alt_of(&on)?, self.alt_of(&nn)?);
                let (_, b, f) = self.scratch(oa, na, &p)?;
                let action = if nd { Action::Added } else { Action::Removed };
                Self::push(
                    out,
                    Subject::PrefixItems,
                    action,
                    p,
                    format!(
                        "tuple position {i} {} (compared with the {} schema for extra items)",
                        if nd { "added" } else { "removed" },
                        if nd { "old" } else { "new" }
                    ),
                    b,
                    f,
                );
            }
        }
        let rest = |a: &Alt<'u>| -> Vec<Node<'u>> {
            a.nodes
                .iter()
                .filter_map(|x| Self::array_model(x).1.map(|r| x.child(r)))
                .collect()
        };
        let rest_key = |a: &Alt<'u>| {
            if a.nodes
                .iter()
                .any(|x| matches!(x.v.get("items"), Some(Value::Array(_))))
            {
                "additionalItems"
            } else {
                "items"
            }
        };
        let rk = if o.nodes.is_empty() {
            rest_key(n)
        } else {
            rest_key(o)
        };
        self.slot(
            Subject::Items,
            &rest(o),
            &rest(n),
            &format!("{ptr}/{rk}"),
            "items beyond the tuple",
            (false, false),
            out,
        )?;
        let ignored = |a: &Alt<'u>| -> Vec<Node<'u>> {
            a.nodes
                .iter()
                .filter_map(|x| Self::array_model(x).2.map(|r| x.child(r)))
                .collect()
        };
        // Draft-07 ignores additionalItems without a tuple; compared anyway (as
        // Confluent does) because adding a tuple later would activate it.
        self.slot(
            Subject::AdditionalItems,
            &ignored(o),
            &ignored(n),
            &format!("{ptr}/additionalItems"),
            "additionalItems",
            (false, false),
            out,
        )?;
        Self::bound(
            Subject::MinItems,
            "minItems",
            Self::uint(o, "minItems", true, 0),
            Self::uint(n, "minItems", true, 0),
            true,
            ptr,
            out,
        );
        Self::bound(
            Subject::MaxItems,
            "maxItems",
            Self::uint(o, "maxItems", false, 0),
            Self::uint(n, "maxItems", false, 0),
            false,
            ptr,
            out,
        );
        let unique = |a: &Alt<'u>| {
            a.values("uniqueItems")
                .any(|(_, v)| v == &Value::Bool(true))
        };
        match (unique(o), unique(n)) {
            (false, true) => Self::push(
                out,
                Subject::UniqueItems,
                Action::Added,
                format!("{ptr}/uniqueItems"),
                "items must now be unique".into(),
                Verdict::Incompatible,
                Verdict::Compatible,
            ),
            (true, false) => Self::push(
                out,
                Subject::UniqueItems,
                Action::Removed,
                format!("{ptr}/uniqueItems"),
                "items no longer need to be unique".into(),
                Verdict::Compatible,
                Verdict::Incompatible,
            ),
            _ => {}
        }
        let contains = |a: &Alt<'u>| -> Vec<Node<'u>> {
            a.values("contains").map(|(x, c)| x.child(c)).collect()
        };
        let (co, cn) = (contains(o), contains(n));
        self.slot(
            Subject::Contains,
            &co,
            &cn,
            &format!("{ptr}/contains"),
            "contains",
            (false, false),
            out,
        )?;
        let has_max = |a: &Alt<'u>| a.values("maxContains").next().is_some();
        if (has_max(o) || has_max(n)) && !co.is_empty() && !cn.is_empty() {
            let (ca, cb) = (self.alt_of(&co)?, self.alt_of(&cn)?);
            let (tmp, _, _) = self.scratch(ca, cb, ptr)?;
            if tmp.iter().any(|c| !c.kind.is_annotation()) {
                // with an upper bound, a wider `contains` counts more items: undecided
                Self::push(
                    out,
                    Subject::MaxContains,
                    Action::Changed,
                    format!("{ptr}/maxContains"),
                    "contains changed under a maxContains bound".into(),
                    Verdict::Unknown,
                    Verdict::Unknown,
                );
            }
        }
        if !co.is_empty() || !cn.is_empty() {
            let minc = |a: &Alt<'u>, has: bool| {
                if has {
                    Self::uint(a, "minContains", true, 1).or(Some(1.0))
                } else {
                    None
                }
            };
            Self::bound(
                Subject::MinContains,
                "minContains",
                minc(o, !co.is_empty()).filter(|v| *v != 1.0),
                minc(n, !cn.is_empty()).filter(|v| *v != 1.0),
                true,
                ptr,
                out,
            );
            Self::bound(
                Subject::MaxContains,
                "maxContains",
                Self::uint(o, "maxContains", false, 0),
                Self::uint(n, "maxContains", false, 0),
                false,
                ptr,
                out,
            );
        }
        Ok(())
    }

    // ------------------------------------------------------------------ objects

    fn required(a: &Alt<'_>) -> Vec<String> {
        let mut r: Vec<String> = Vec::new();
        for (_, v) in a.values("required") {
            for name in v.as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !r.iter().any(|x| x == name) {
                    r.push(name.to_string());
                }
            }
        }
        r
    }

    /// Effective additionalProperties of one conjunct (unevaluatedProperties stands in
    /// when the conjunct has no additionalProperties).
    fn additional<'u>(x: &Node<'u>) -> Option<&'u Value> {
        x.v.get("additionalProperties")
            .or_else(|| x.v.get("unevaluatedProperties"))
    }

    /// The constraint that `a` puts on the value of property `name`, plus whether it
    /// comes only from an open content model, plus whether a pattern could not be
    /// evaluated.
    fn property_constraint<'u>(&mut self, a: &Alt<'u>, name: &str) -> (Vec<Node<'u>>, bool, bool) {
        let mut nodes = Vec::new();
        let mut uncertain = false;
        // unevaluatedProperties only sees names that no conjunct evaluated
        let mut evaluated_elsewhere = false;
        for x in &a.nodes {
            if x.v.get("properties").and_then(|p| p.get(name)).is_some() {
                evaluated_elsewhere = true;
            }
            if let Some(Value::Object(pp)) = x.v.get("patternProperties") {
                for pat in pp.keys() {
                    if self.regex_matches(pat, name) != Some(false) {
                        evaluated_elsewhere = true;
                    }
                }
            }
        }
        for x in &a.nodes {
            let mut covered = false;
            if let Some(s) = x.v.get("properties").and_then(|p| p.get(name)) {
                nodes.push(x.child(s));
                covered = true;
            }
            if let Some(Value::Object(pp)) = x.v.get("patternProperties") {
                for (pat, s) in pp {
                    match self.regex_matches(pat, name) {
                        Some(true) => {
                            nodes.push(x.child(s));
                            covered = true;
                        }
                        Some(false) => {}
                        None => uncertain = true,
                    }
                }
            }
            if !covered {
                let ap = match x.v.get("additionalProperties") {
                    Some(ap) => Some(ap),
                    None if evaluated_elsewhere => None,
                    None => x.v.get("unevaluatedProperties"),
                };
                if let Some(ap) = ap {
                    if ap != &Value::Bool(true) {
                        nodes.push(x.child(ap));
                    }
                }
            }
        }
        let open = nodes.is_empty();
        (nodes, open, uncertain)
    }

    fn objects<'u>(
        &mut self,
        o: &Alt<'u>,
        n: &Alt<'u>,
        ptr: &str,
        out: &mut Vec<Change>,
    ) -> Res<()> {
        let lenient = self.policy == Policy::Lenient;
        // ---- named properties
        let mut names: Vec<&'u str> = Vec::new();
        for a in [o, n] {
            for (_, p) in a.values("properties") {
                if let Some(m) = p.as_object() {
                    for k in m.keys() {
                        if !names.contains(&k.as_str()) {
                            names.push(k.as_str());
                        }
                    }
                }
            }
        }
        let declares =
            |a: &Alt<'u>, name: &str| a.values("properties").any(|(_, p)| p.get(name).is_some());
        for name in names {
            let p = format!("{ptr}/properties/{}", escape(name));
            let (in_o, in_n) = (declares(o, name), declares(n, name));
            let (on, o_open, o_unc) = self.property_constraint(o, name);
            let (nn, n_open, n_unc) = self.property_constraint(n, name);
            let (oa, na) = (self.alt_of(&on)?, self.alt_of(&nn)?);
            if in_o && in_n {
                let start = out.len();
                self.cmp(oa, na, &p, out)?;
                if o_unc || n_unc {
                    for c in &mut out[start..] {
                        c.backward = c.backward.and(Verdict::Unknown);
                        c.forward = c.forward.and(Verdict::Unknown);
                    }
                }
                continue;
            }
            let (_, mut b, mut f) = self.scratch(oa, na, &p)?;
            if o_unc || n_unc {
                b = b.and(Verdict::Unknown);
                f = f.and(Verdict::Unknown);
            }
            if in_n {
                if lenient && o_open {
                    b = Verdict::Compatible;
                }
                let how = if o_open {
                    "to an open content model (old data may already use this name)"
                } else {
                    "where the old schema's additionalProperties/patternProperties governed the name"
                };
                Self::push(
                    out,
                    Subject::Property,
                    Action::Added,
                    p,
                    format!("property `{name}` added {how}"),
                    b,
                    f,
                );
            } else {
                if lenient && n_open {
                    f = Verdict::Compatible;
                }
                Self::push(
                    out,
                    Subject::Property,
                    Action::Removed,
                    p,
                    format!(
                        "property `{name}` removed{}",
                        if n_open {
                            " (still allowed by the open content model)"
                        } else {
                            ""
                        }
                    ),
                    b,
                    f,
                );
            }
        }
        // ---- patternProperties
        let mut pats: Vec<&'u str> = Vec::new();
        for a in [o, n] {
            for (_, pp) in a.values("patternProperties") {
                if let Some(m) = pp.as_object() {
                    for k in m.keys() {
                        if !pats.contains(&k.as_str()) {
                            pats.push(k.as_str());
                        }
                    }
                }
            }
        }
        let pattern_nodes = |a: &Alt<'u>, pat: &str| -> Vec<Node<'u>> {
            a.values("patternProperties")
                .filter_map(|(x, pp)| pp.get(pat).map(|s| x.child(s)))
                .collect()
        };
        let ap_nodes = |a: &Alt<'u>| -> Vec<Node<'u>> {
            a.nodes
                .iter()
                .filter_map(|x| {
                    Self::additional(x)
                        .filter(|v| **v != Value::Bool(true))
                        .map(|v| x.child(v))
                })
                .collect()
        };
        for pat in pats.iter().copied() {
            let p = format!("{ptr}/patternProperties/{}", escape(pat));
            let (po, pn) = (pattern_nodes(o, pat), pattern_nodes(n, pat));
            if !po.is_empty() && !pn.is_empty() {
                let (oa, na) = (self.alt_of(&po)?, self.alt_of(&pn)?);
                self.cmp(oa, na, &p, out)?;
                continue;
            }
            // One side lacks the pattern: its names fall to additionalProperties there,
            // unless another pattern of that side also matches (checked conservatively).
            let (have, lack, added) = if pn.is_empty() {
                (&po, n, false)
            } else {
                (&pn, o, true)
            };
            let lack_ap = ap_nodes(lack);
            let lack_open = lack_ap.is_empty();
            let others: Vec<Vec<Node<'u>>> = pats
                .iter()
                .filter(|q| **q != pat)
                .map(|q| pattern_nodes(lack, q))
                .filter(|v| !v.is_empty())
                .collect();
            let (have_alt, lack_alt) = (self.alt_of(have)?, self.alt_of(&lack_ap)?);
            let (_, mut into_lack_b, mut into_lack_f) = if added {
                self.scratch(lack_alt.clone(), have_alt.clone(), &p)?
            } else {
                self.scratch(have_alt.clone(), lack_alt.clone(), &p)?
            };
            for other in &others {
                let oalt = self.alt_of(other)?;
                let (_, b2, f2) = if added {
                    self.scratch(oalt, have_alt.clone(), &p)?
                } else {
                    self.scratch(have_alt.clone(), oalt, &p)?
                };
                let weaken = |v: Verdict| {
                    if v == Verdict::Compatible {
                        Verdict::Compatible
                    } else {
                        Verdict::Unknown
                    }
                };
                into_lack_b = into_lack_b.and(weaken(b2));
                into_lack_f = into_lack_f.and(weaken(f2));
            }
            if lenient && lack_open {
                if added {
                    into_lack_b = Verdict::Compatible;
                } else {
                    into_lack_f = Verdict::Compatible;
                }
            }
            Self::push(
                out,
                Subject::PatternProperty,
                if added {
                    Action::Added
                } else {
                    Action::Removed
                },
                p,
                format!(
                    "patternProperties `{pat}` {}",
                    if added { "added" } else { "removed" }
                ),
                into_lack_b,
                into_lack_f,
            );
        }
        // ---- additionalProperties
        // `true` is kept here (unlike in `ap_nodes`) so that `true -> false` reads as
        // "narrowed" rather than "added"; openness is judged without it.
        let ap_all = |a: &Alt<'u>| -> Vec<Node<'u>> {
            a.nodes
                .iter()
                .filter_map(|x| Self::additional(x).map(|v| x.child(v)))
                .collect()
        };
        let open = (ap_nodes(o).is_empty(), ap_nodes(n).is_empty());
        self.slot(
            Subject::AdditionalProperties,
            &ap_all(o),
            &ap_all(n),
            &format!("{ptr}/additionalProperties"),
            "additionalProperties",
            open,
            out,
        )?;
        // ---- required
        // Requiredness is compared for names that a version declares in `properties`
        // (Confluent's rule): a `required` entry naming a property that neither
        // version declares is not compared. This is the one place where the engine
        // follows Confluent rather than pure instance semantics; contracts that
        // declare every required property (as they should) lose nothing by it.
        let (ro, rn) = (Self::required(o), Self::required(n));
        let declared_anywhere = |name: &str| declares(o, name) || declares(n, name);
        let ro: Vec<String> = ro.into_iter().filter(|r| declared_anywhere(r)).collect();
        let rn: Vec<String> = rn.into_iter().filter(|r| declared_anywhere(r)).collect();
        for name in rn.iter().filter(|r| !ro.contains(r)) {
            Self::push(
                out,
                Subject::Required,
                Action::Added,
                format!("{ptr}/properties/{}", escape(name)),
                format!("property `{name}` is now required"),
                Verdict::Incompatible,
                Verdict::Compatible,
            );
        }
        for name in ro.iter().filter(|r| !rn.contains(r)) {
            Self::push(
                out,
                Subject::Required,
                Action::Removed,
                format!("{ptr}/properties/{}", escape(name)),
                format!("property `{name}` is no longer required"),
                Verdict::Compatible,
                Verdict::Incompatible,
            );
        }
        // ---- dependentRequired / dependencies (arrays)
        let dep_req = |a: &Alt<'u>| -> Vec<(&'u str, Vec<&'u str>)> {
            let mut m: Vec<(&'u str, Vec<&'u str>)> = Vec::new();
            for key in ["dependentRequired", "dependencies"] {
                for (_, d) in a.values(key) {
                    for (k, v) in d.as_object().into_iter().flatten() {
                        if let Value::Array(names) = v {
                            let entry = match m.iter().position(|(x, _)| *x == k.as_str()) {
                                Some(i) => &mut m[i].1,
                                None => {
                                    m.push((k.as_str(), Vec::new()));
                                    &mut m.last_mut().expect("just pushed").1
                                }
                            };
                            for nme in names.iter().filter_map(Value::as_str) {
                                if !entry.contains(&nme) {
                                    entry.push(nme);
                                }
                            }
                        }
                    }
                }
            }
            m
        };
        let (dro, drn) = (dep_req(o), dep_req(n));
        let mut keys: Vec<&str> = dro.iter().map(|x| x.0).collect();
        keys.extend(
            drn.iter()
                .map(|x| x.0)
                .filter(|k| !dro.iter().any(|x| x.0 == *k)),
        );
        for k in keys {
            let vo = dro.iter().find(|x| x.0 == k).map(|x| &x.1);
            let vn = drn.iter().find(|x| x.0 == k).map(|x| &x.1);
            let subset = |a: &Vec<&str>, b: &Vec<&str>| a.iter().all(|x| b.contains(x));
            let empty = Vec::new();
            let (vo2, vn2) = (vo.unwrap_or(&empty), vn.unwrap_or(&empty));
            let b = if subset(vn2, vo2) {
                Verdict::Compatible
            } else {
                Verdict::Incompatible
            };
            let f = if subset(vo2, vn2) {
                Verdict::Compatible
            } else {
                Verdict::Incompatible
            };
            if b == Verdict::Compatible && f == Verdict::Compatible {
                continue;
            }
            let action = match (vo, vn) {
                (None, _) => Action::Added,
                (_, None) => Action::Removed,
                _ => relation(b, f),
            };
            Self::push(
                out,
                Subject::DependentRequired,
                action,
                format!("{ptr}/dependentRequired/{}", escape(k)),
                format!("when `{k}` is present, required {vo2:?} -> {vn2:?}"),
                b,
                f,
            );
        }
        // ---- dependentSchemas / dependencies (schemas)
        let dep_schemas = |a: &Alt<'u>, key: &str| -> Vec<Node<'u>> {
            let mut v = Vec::new();
            for kw in ["dependentSchemas", "dependencies"] {
                for (x, d) in a.values(kw) {
                    if let Some(s) = d.get(key).filter(|s| !s.is_array()) {
                        v.push(x.child(s));
                    }
                }
            }
            v
        };
        let mut dkeys: Vec<&'u str> = Vec::new();
        for a in [o, n] {
            for kw in ["dependentSchemas", "dependencies"] {
                for (_, d) in a.values(kw) {
                    for (k, v) in d.as_object().into_iter().flatten() {
                        if !v.is_array() && !dkeys.contains(&k.as_str()) {
                            dkeys.push(k.as_str());
                        }
                    }
                }
            }
        }
        for k in dkeys {
            let (so, sn) = (dep_schemas(o, k), dep_schemas(n, k));
            self.slot(
                Subject::DependentSchemas,
                &so,
                &sn,
                &format!("{ptr}/dependentSchemas/{}", escape(k)),
                &format!("schema applied when `{k}` is present"),
                (false, false),
                out,
            )?;
        }
        // ---- propertyNames, min/maxProperties
        let pn = |a: &Alt<'u>| -> Vec<Node<'u>> {
            a.values("propertyNames").map(|(x, v)| x.child(v)).collect()
        };
        self.slot(
            Subject::PropertyNames,
            &pn(o),
            &pn(n),
            &format!("{ptr}/propertyNames"),
            "propertyNames",
            (false, false),
            out,
        )?;
        Self::bound(
            Subject::MinProperties,
            "minProperties",
            Self::uint(o, "minProperties", true, 0),
            Self::uint(n, "minProperties", true, 0),
            true,
            ptr,
            out,
        );
        Self::bound(
            Subject::MaxProperties,
            "maxProperties",
            Self::uint(o, "maxProperties", false, 0),
            Self::uint(n, "maxProperties", false, 0),
            false,
            ptr,
            out,
        );
        Ok(())
    }

    // ------------------------------------------------------------------ not / if

    fn nots<'u>(&mut self, o: &Alt<'u>, n: &Alt<'u>, ptr: &str, out: &mut Vec<Change>) -> Res<()> {
        let list =
            |a: &Alt<'u>| -> Vec<Node<'u>> { a.values("not").map(|(x, v)| x.child(v)).collect() };
        let (lo, ln) = (list(o), list(n));
        let p = format!("{ptr}/not");
        for i in 0..lo.len().max(ln.len()) {
            match (lo.get(i), ln.get(i)) {
                (Some(a), Some(b)) => {
                    // not A ⊆ not B  ⇔  B ⊆ A: compare the negated schemas swapped.
                    let (na, oa) = (
                        self.alt_of(std::slice::from_ref(b))?,
                        self.alt_of(std::slice::from_ref(a))?,
                    );
                    let (_, bk, fw) = self.scratch(na, oa, &p)?;
                    if bk == Verdict::Compatible && fw == Verdict::Compatible {
                        continue;
                    }
                    Self::push(
                        out,
                        Subject::Not,
                        relation(bk, fw),
                        p.clone(),
                        format!("not {} -> not {}", short(a.v), short(b.v)),
                        bk,
                        fw,
                    );
                }
                (None, Some(b)) => {
                    let na = self.alt_of(std::slice::from_ref(b))?;
                    let bk = if self.is_empty_alt(&na) {
                        Verdict::Compatible
                    } else {
                        Verdict::Incompatible
                    };
                    Self::push(
                        out,
                        Subject::Not,
                        Action::Added,
                        p.clone(),
                        format!("values matching {} are now rejected", short(b.v)),
                        bk,
                        Verdict::Compatible,
                    );
                }
                (Some(a), None) => {
                    let oa = self.alt_of(std::slice::from_ref(a))?;
                    let fw = if self.is_empty_alt(&oa) {
                        Verdict::Compatible
                    } else {
                        Verdict::Incompatible
                    };
                    Self::push(
                        out,
                        Subject::Not,
                        Action::Removed,
                        p.clone(),
                        format!("values matching {} are accepted again", short(a.v)),
                        Verdict::Compatible,
                        fw,
                    );
                }
                (None, None) => {}
            }
        }
        Ok(())
    }

    fn conditionals<'u>(
        &mut self,
        o: &Alt<'u>,
        n: &Alt<'u>,
        ptr: &str,
        out: &mut Vec<Change>,
    ) -> Res<()> {
        type Cond<'u> = (Node<'u>, Option<Node<'u>>, Option<Node<'u>>);
        let list = |a: &Alt<'u>| -> Vec<Cond<'u>> {
            a.values("if")
                .map(|(x, i)| {
                    (
                        x.child(i),
                        x.v.get("then").map(|t| x.child(t)),
                        x.v.get("else").map(|e| x.child(e)),
                    )
                })
                .collect()
        };
        let (lo, ln) = (list(o), list(n));
        let vec_of = |x: &Option<Node<'u>>| x.iter().cloned().collect::<Vec<_>>();
        for i in 0..lo.len().max(ln.len()) {
            match (lo.get(i), ln.get(i)) {
                (Some(a), Some(b)) => {
                    let (ia, ib) = (
                        self.alt_of(std::slice::from_ref(&a.0))?,
                        self.alt_of(std::slice::from_ref(&b.0))?,
                    );
                    let (tmp, _, _) = self.scratch(ia, ib, &format!("{ptr}/if"))?;
                    if tmp.iter().all(|c| c.kind.is_annotation()) {
                        self.slot(
                            Subject::Conditional,
                            &vec_of(&a.1),
                            &vec_of(&b.1),
                            &format!("{ptr}/then"),
                            "then",
                            (false, false),
                            out,
                        )?;
                        self.slot(
                            Subject::Conditional,
                            &vec_of(&a.2),
                            &vec_of(&b.2),
                            &format!("{ptr}/else"),
                            "else",
                            (false, false),
                            out,
                        )?;
                    } else {
                        Self::push(
                            out,
                            Subject::Conditional,
                            Action::Changed,
                            format!("{ptr}/if"),
                            format!("condition {} -> {}", short(a.0.v), short(b.0.v)),
                            Verdict::Unknown,
                            Verdict::Unknown,
                        );
                    }
                }
                (None, Some(b)) => {
                    let (t, e) = (self.alt_of(&vec_of(&b.1))?, self.alt_of(&vec_of(&b.2))?);
                    let bk = if t.is_trivially_true() && e.is_trivially_true() {
                        Verdict::Compatible
                    } else {
                        Verdict::Incompatible
                    };
                    Self::push(
                        out,
                        Subject::Conditional,
                        Action::Added,
                        format!("{ptr}/if"),
                        "if/then/else added".into(),
                        bk,
                        Verdict::Compatible,
                    );
                }
                (Some(a), None) => {
                    let (t, e) = (self.alt_of(&vec_of(&a.1))?, self.alt_of(&vec_of(&a.2))?);
                    let fw = if t.is_trivially_true() && e.is_trivially_true() {
                        Verdict::Compatible
                    } else {
                        Verdict::Incompatible
                    };
                    Self::push(
                        out,
                        Subject::Conditional,
                        Action::Removed,
                        format!("{ptr}/if"),
                        "if/then/else removed".into(),
                        Verdict::Compatible,
                        fw,
                    );
                }
                (None, None) => {}
            }
        }
        Ok(())
    }
}
