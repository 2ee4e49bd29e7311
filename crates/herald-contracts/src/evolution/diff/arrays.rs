//! Array keywords: tuples (`prefixItems`/`items` arrays), items beyond the tuple,
//! `minItems`/`maxItems`, `uniqueItems`, `contains` and its counts.

use super::{Alt, Differ, Res};
use crate::evolution::change::{Action, Change, Subject, Verdict};
use crate::evolution::resolve::Node;
use serde_json::Value;

impl Differ {
    // ------------------------------------------------------------------ arrays

    /// (tuple, rest, ignored additionalItems) of one conjunct.
    pub(super) fn array_model<'u>(
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

    pub(super) fn arrays<'u>(
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
        // `minContains`/`maxContains` count for the `contains` of their own object only
        // (alone they are ignored); minContains defaults to 1.
        let counts = |a: &Alt<'u>| -> Vec<(&'u Value, f64, Option<f64>)> {
            a.values("contains")
                .map(|(x, c)| {
                    let num = |k: &str| x.v.get(k).and_then(Value::as_f64);
                    (c, num("minContains").unwrap_or(1.0), num("maxContains"))
                })
                .collect()
        };
        let (ko, kn) = (counts(o), counts(n));
        if ko.len() > 1 || kn.len() > 1 {
            // Several `contains` in one alternative (conjuncts), each with its own counts:
            // unchanged, or undecided.
            let same = ko.len() == kn.len()
                && ko
                    .iter()
                    .zip(&kn)
                    .all(|(a, b)| super::json_eq(a.0, b.0) && a.1 == b.1 && a.2 == b.2);
            if !same {
                Self::push(
                    out,
                    Subject::Contains,
                    Action::Changed,
                    format!("{ptr}/contains"),
                    "several contains constraints on one array changed".into(),
                    Verdict::Unknown,
                    Verdict::Unknown,
                );
            }
            return Ok(());
        }
        if co.is_empty() != cn.is_empty() {
            // `contains` appeared or disappeared: it demands at least `minContains`
            // (default 1) matching items, even when its schema is `{}`.
            let (side, added) = if co.is_empty() {
                (&kn, true)
            } else {
                (&ko, false)
            };
            let (min, max) = (side[0].1, side[0].2);
            if min > 0.0 || max.is_some() {
                let (b, f) = if added {
                    (Verdict::Incompatible, Verdict::Compatible)
                } else {
                    (Verdict::Compatible, Verdict::Incompatible)
                };
                Self::push(
                    out,
                    Subject::Contains,
                    if added {
                        Action::Added
                    } else {
                        Action::Removed
                    },
                    format!("{ptr}/contains"),
                    format!(
                        "arrays {} hold a matching item",
                        if added {
                            "must now"
                        } else {
                            "no longer need to"
                        }
                    ),
                    b,
                    f,
                );
                return Ok(());
            }
        }
        self.slot(
            Subject::Contains,
            &co,
            &cn,
            &format!("{ptr}/contains"),
            "contains",
            (false, false),
            out,
        )?;
        if let (Some(a), Some(b)) = (ko.first(), kn.first()) {
            if a.2.is_some() || b.2.is_some() {
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
            if a.1 != b.1 {
                Self::bound(
                    Subject::MinContains,
                    "minContains",
                    Some(a.1),
                    Some(b.1),
                    true,
                    ptr,
                    out,
                );
            }
            Self::bound(
                Subject::MaxContains,
                "maxContains",
                a.2,
                b.2,
                false,
                ptr,
                out,
            );
        }
        Ok(())
    }
}
