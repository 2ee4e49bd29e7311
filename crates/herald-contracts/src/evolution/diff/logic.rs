//! Negation and conditionals: `not`, `if`/`then`/`else`.

use super::{relation, short, Alt, Differ, Res};
use crate::evolution::change::{Action, Change, Subject, Verdict};
use crate::evolution::resolve::Node;

impl Differ {
    // ------------------------------------------------------------------ not / if

    pub(super) fn nots<'u>(
        &mut self,
        o: &Alt<'u>,
        n: &Alt<'u>,
        ptr: &str,
        out: &mut Vec<Change>,
    ) -> Res<()> {
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

    /// Whether every instance of `ctx` extended by `extra` conjuncts satisfies `target`
    /// (absent target: always). Used to judge a `then`/`else` together with its parent
    /// and siblings, which is what an instance meets.
    fn within<'u>(
        &mut self,
        ctx: &Alt<'u>,
        extra: &[Node<'u>],
        target: Option<&Node<'u>>,
        ptr: &str,
    ) -> Res<bool> {
        let Some(target) = target else {
            return Ok(true);
        };
        let mut from = ctx.clone();
        for e in extra {
            self.flatten(e.clone(), &mut from, 0)?;
        }
        let to = self.alt_of(std::slice::from_ref(target))?;
        let (_, b, _) = self.scratch(from, to, ptr)?;
        Ok(b == Verdict::Compatible)
    }

    /// `if`/`then`/`else` pairs are matched by position and judged in context: a branch
    /// that repeats what the parent already demands narrows nothing.
    pub(super) fn conditionals<'u>(
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
        let p_if = format!("{ptr}/if");
        for i in 0..lo.len().max(ln.len()) {
            match (lo.get(i), ln.get(i)) {
                (Some(a), Some(b)) => {
                    let (ia, ib) = (
                        self.alt_of(std::slice::from_ref(&a.0))?,
                        self.alt_of(std::slice::from_ref(&b.0))?,
                    );
                    let (tmp, _, _) = self.scratch(ia, ib, &p_if)?;
                    if tmp.iter().all(|c| c.kind.is_annotation()) {
                        // Same condition: each branch, in context.
                        for (branch, extra_o, extra_n, bo, bn) in [
                            ("then", vec![a.0.clone()], vec![b.0.clone()], &a.1, &b.1),
                            ("else", vec![], vec![], &a.2, &b.2),
                        ] {
                            let start = out.len();
                            let p = format!("{ptr}/{branch}");
                            self.slot(
                                Subject::Conditional,
                                &vec_of(bo),
                                &vec_of(bn),
                                &p,
                                branch,
                                (false, false),
                                out,
                            )?;
                            if out.len() == start {
                                continue;
                            }
                            let mut eo = extra_o.clone();
                            eo.extend(bo.iter().cloned());
                            let mut en = extra_n.clone();
                            en.extend(bn.iter().cloned());
                            let back = self.within(o, &eo, bn.as_ref(), &p)?;
                            let fwd = self.within(n, &en, bo.as_ref(), &p)?;
                            for c in &mut out[start..] {
                                if back {
                                    c.backward = Verdict::Compatible;
                                }
                                if fwd {
                                    c.forward = Verdict::Compatible;
                                }
                            }
                        }
                    } else {
                        // A new condition: safe when each side's instances meet both of
                        // the other side's branches (then under its condition).
                        let back =
                            self.within(o, std::slice::from_ref(&b.0), b.1.as_ref(), &p_if)?
                                && self.within(o, &[], b.2.as_ref(), &p_if)?;
                        let fwd =
                            self.within(n, std::slice::from_ref(&a.0), a.1.as_ref(), &p_if)?
                                && self.within(n, &[], a.2.as_ref(), &p_if)?;
                        let verdict = |ok: bool| {
                            if ok {
                                Verdict::Compatible
                            } else {
                                Verdict::Unknown
                            }
                        };
                        Self::push(
                            out,
                            Subject::Conditional,
                            Action::Changed,
                            p_if.clone(),
                            format!("condition {} -> {}", short(a.0.v), short(b.0.v)),
                            verdict(back),
                            verdict(fwd),
                        );
                    }
                }
                (None, Some(b)) => {
                    let back = self.within(o, std::slice::from_ref(&b.0), b.1.as_ref(), &p_if)?
                        && self.within(o, &[], b.2.as_ref(), &p_if)?;
                    Self::push(
                        out,
                        Subject::Conditional,
                        Action::Added,
                        p_if.clone(),
                        "if/then/else added".into(),
                        if back {
                            Verdict::Compatible
                        } else {
                            Verdict::Incompatible
                        },
                        Verdict::Compatible,
                    );
                }
                (Some(a), None) => {
                    let fwd = self.within(n, std::slice::from_ref(&a.0), a.1.as_ref(), &p_if)?
                        && self.within(n, &[], a.2.as_ref(), &p_if)?;
                    Self::push(
                        out,
                        Subject::Conditional,
                        Action::Removed,
                        p_if.clone(),
                        "if/then/else removed".into(),
                        Verdict::Compatible,
                        if fwd {
                            Verdict::Compatible
                        } else {
                            Verdict::Incompatible
                        },
                    );
                }
                (None, None) => {}
            }
        }
        Ok(())
    }
}
