//! Object keywords: named and pattern properties, `additionalProperties`,
//! `required`, dependencies, `propertyNames` and property counts.

use super::{escape, relation, Alt, Differ, Res};
use crate::evolution::change::{Action, Change, Subject, Verdict};
use crate::evolution::resolve::Node;
use crate::evolution::{Policy, RequiredRule};
use serde_json::Value;

impl Differ {
    // ------------------------------------------------------------------ objects

    pub(super) fn required(a: &Alt<'_>) -> Vec<String> {
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
    pub(super) fn additional<'u>(x: &Node<'u>) -> Option<&'u Value> {
        x.v.get("additionalProperties")
            .or_else(|| x.v.get("unevaluatedProperties"))
    }

    /// The constraint that `a` puts on the value of property `name`, plus whether it
    /// comes only from an open content model, plus whether a pattern could not be
    /// evaluated.
    pub(super) fn property_constraint<'u>(
        &mut self,
        a: &Alt<'u>,
        name: &str,
    ) -> (Vec<Node<'u>>, bool, bool) {
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

    pub(super) fn objects<'u>(
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
            // Other patterns of the lacking side that may match the same names; a name
            // provably outside them (different literal prefixes) needs no check, and a
            // pattern both sides have is compared on its own for one direction.
            let have_side = if added { n } else { o };
            let others: Vec<(Vec<Node<'u>>, bool)> = pats
                .iter()
                .filter(|q| **q != pat && !prefixes_disjoint(pat, q))
                .map(|q| {
                    (
                        pattern_nodes(lack, q),
                        !pattern_nodes(have_side, q).is_empty(),
                    )
                })
                .filter(|v| !v.0.is_empty())
                .collect();
            let (have_alt, lack_alt) = (self.alt_of(have)?, self.alt_of(&lack_ap)?);
            let (_, mut into_lack_b, mut into_lack_f) = if added {
                self.scratch(lack_alt.clone(), have_alt.clone(), &p)?
            } else {
                self.scratch(have_alt.clone(), lack_alt.clone(), &p)?
            };
            for (other, in_both) in &others {
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
                // Removed P, Q on both sides: old P∧Q ⊆ new Q follows from Q's own
                // comparison (backward); added P: new P∧Q ⊆ old Q likewise (forward).
                if !*in_both || added {
                    into_lack_b = into_lack_b.and(weaken(b2));
                }
                if !*in_both || !added {
                    into_lack_f = into_lack_f.and(weaken(f2));
                }
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
        // Every name counts, declared in `properties` or not: `required: ["x"]` rejects
        // an object without `x` whatever `properties` says.
        let (mut ro, mut rn) = (Self::required(o), Self::required(n));
        if self.required_rule == RequiredRule::DeclaredOnly {
            let declared_anywhere = |name: &str| declares(o, name) || declares(n, name);
            ro.retain(|r| declared_anywhere(r));
            rn.retain(|r| declared_anywhere(r));
        }
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
            // Strict: the dependent schema applies to this instance (see `strictly`).
            self.strictly(|d| {
                d.slot(
                    Subject::DependentSchemas,
                    &so,
                    &sn,
                    &format!("{ptr}/dependentSchemas/{}", escape(k)),
                    &format!("schema applied when `{k}` is present"),
                    (false, false),
                    out,
                )
            })?;
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
}

/// Whether two `patternProperties` keys provably match no common name: both anchored
/// (`^`) literal prefixes, neither a prefix of the other (`^x_` and `^a`). Anything
/// else (alternation, classes, quantifiers on the prefix) is "not proven".
pub(super) fn prefixes_disjoint(p: &str, q: &str) -> bool {
    fn literal(p: &str) -> Option<String> {
        let rest = p.strip_prefix('^')?;
        if rest.contains('|') {
            return None;
        }
        let chars: Vec<char> = rest.chars().collect();
        let mut lit = String::new();
        for (i, c) in chars.iter().enumerate() {
            if !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-') {
                break;
            }
            if matches!(chars.get(i + 1), Some('*' | '?' | '{' | '+')) {
                break;
            }
            lit.push(*c);
        }
        (!lit.is_empty()).then_some(lit)
    }
    match (literal(p), literal(q)) {
        (Some(a), Some(b)) => !a.starts_with(&b) && !b.starts_with(&a),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::prefixes_disjoint;

    #[test]
    fn literal_prefixes() {
        assert!(prefixes_disjoint("^x_", "^a"));
        assert!(prefixes_disjoint("^ab", "^ac"));
        assert!(!prefixes_disjoint("^x_", "^x"));
        assert!(!prefixes_disjoint("^ab*", "^a"));
        assert!(!prefixes_disjoint("^a|b", "^c"));
        assert!(!prefixes_disjoint("x_", "^a"));
        assert!(!prefixes_disjoint("^[a-c]", "^x"));
    }
}
