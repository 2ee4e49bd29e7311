//! Unions: `anyOf`/`oneOf` (and multi-type) alternatives matched old against new,
//! and the exclusivity a receiving `oneOf` needs.

use super::{json_eq, short, Alt, Differ, Origin, Res};
use crate::evolution::change::{Action, Change, Subject, Verdict};
use crate::evolution::json_type::{self, TypeSet};
use crate::evolution::resolve::Node;
use serde_json::Value;

impl Differ {
    // ------------------------------------------------------------------ unions

    pub(super) fn split_types<'u>(alts: Vec<Alt<'u>>) -> Vec<Alt<'u>> {
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

    pub(super) fn alt_label(a: &Alt<'_>) -> String {
        match a.origin.last() {
            Some(o) => match o.group.v.get(o.keyword).and_then(|g| g.get(o.branch)) {
                Some(b) => short(b),
                None => o.ptr.clone(),
            },
            None => format!("type {}", Self::types(a).describe()),
        }
    }

    pub(super) fn alt_subject(a: &Alt<'_>) -> Subject {
        match a.origin.last().map(|o| o.keyword) {
            Some("oneOf") => Subject::OneOf,
            Some("anyOf") => Subject::AnyOf,
            _ => Subject::Type,
        }
    }

    pub(super) fn alt_ptr(ptr: &str, a: &Alt<'_>) -> String {
        match a.origin.last() {
            Some(o) => format!("{ptr}{}", o.ptr),
            None => format!("{ptr}/type"),
        }
    }

    /// Proves that no instance satisfies both `a` and `b` (false = not proven).
    pub(super) fn disjoint(&mut self, a: &Alt<'_>, b: &Alt<'_>, depth: usize) -> Res<bool> {
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
    pub(super) fn exclusive<'u>(
        &mut self,
        x: &Alt<'u>,
        group: &Origin<'u>,
        ptr: &str,
    ) -> Res<Exclusivity> {
        let Some(Value::Array(branches)) = group.group.v.get(group.keyword) else {
            return Ok(Exclusivity::Exclusive);
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
                return self.overlap_proven(x, &other, ptr);
            }
        }
        Ok(Exclusivity::Exclusive)
    }

    /// `x` and another receiving branch are not provably disjoint: is there provably a
    /// value in both? Yes when one contains the other and the smaller one is not empty,
    /// provided every value of `x` is valid on its own side (no `oneOf` of its own,
    /// whose values might match two of its branches and so be invalid there).
    fn overlap_proven<'u>(&mut self, x: &Alt<'u>, other: &Alt<'u>, ptr: &str) -> Res<Exclusivity> {
        if x.origin.iter().any(|o| o.keyword == "oneOf") {
            return Ok(Exclusivity::Unknown);
        }
        let (_, x_in_other, other_in_x) = self.scratch(x.clone(), other.clone(), ptr)?;
        let proven = (x_in_other == Verdict::Compatible && !self.is_empty_alt(x))
            || (other_in_x == Verdict::Compatible && !self.is_empty_alt(other));
        Ok(if proven {
            Exclusivity::Overlap
        } else {
            Exclusivity::Unknown
        })
    }

    pub(super) fn disjunctive<'u>(
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
        let mut b_overlap: Vec<(usize, Origin<'u>, Exclusivity)> = Vec::new();
        for (i, m) in bmatch.iter().enumerate() {
            if let Some(j) = *m {
                for og in n[j].origin.iter().filter(|g| g.keyword == "oneOf") {
                    let e = self.exclusive(&o[i], og, ptr)?;
                    if e != Exclusivity::Exclusive {
                        b_overlap.push((i, og.clone(), e));
                    }
                }
            }
        }
        let mut f_overlap: Vec<(usize, Origin<'u>, Exclusivity)> = Vec::new();
        for (j, m) in fmatch.iter().enumerate() {
            if let Some(i) = *m {
                for og in o[i].origin.iter().filter(|g| g.keyword == "oneOf") {
                    let e = self.exclusive(&n[j], og, ptr)?;
                    if e != Exclusivity::Exclusive {
                        f_overlap.push((j, og.clone(), e));
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
        for (backward, list, alts, side) in [
            (true, b_overlap, &o, ("old", "new")),
            (false, f_overlap, &n, ("new", "old")),
        ] {
            for (i, og, e) in list {
                let (action, verdict, how) = if e == Exclusivity::Overlap {
                    (Action::Overlap, Verdict::Incompatible, "match")
                } else {
                    (Action::OverlapUnknown, Verdict::Unknown, "may match")
                };
                let (b, f) = if backward {
                    (verdict, Verdict::Compatible)
                } else {
                    (Verdict::Compatible, verdict)
                };
                Self::push(
                    out,
                    Subject::OneOf,
                    action,
                    format!("{ptr}/oneOf"),
                    format!(
                        "{} values of {} {how} more than one {} oneOf branch (branch {} is not exclusive)",
                        side.0,
                        Self::alt_label(&alts[i]),
                        side.1,
                        og.branch
                    ),
                    b,
                    f,
                );
            }
        }
        Ok(())
    }
}

/// Whether a value can match a second branch of a receiving `oneOf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exclusivity {
    /// Provably only its own branch.
    Exclusive,
    /// Provably some value matches another branch too.
    Overlap,
    /// Not decided.
    Unknown,
}
