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
