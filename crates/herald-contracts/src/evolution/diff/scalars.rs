//! Scalar families: `type`, `enum`/`const`, numeric bounds and `multipleOf`,
//! string lengths, `pattern` and `format`.

use super::{json_eq, relation, short, Alt, Differ};
use crate::evolution::change::{Action, Change, Subject, Verdict};
use crate::evolution::json_type::{self, TypeSet};
use serde_json::Value;

impl Differ {
    pub(super) fn type_change(to: TypeSet, tn: TypeSet, ptr: &str, out: &mut Vec<Change>) {
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
    pub(super) fn enum_change(
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
    pub(super) fn bound(
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

    pub(super) fn uint(alt: &Alt<'_>, key: &'static str, lower: bool, default: u64) -> Option<f64> {
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
    pub(super) fn num_bound(alt: &Alt<'_>, lower: bool) -> Option<(f64, bool)> {
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

    pub(super) fn numeric(o: &Alt<'_>, n: &Alt<'_>, ptr: &str, out: &mut Vec<Change>) {
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

    /// Whether string `w` meets the length, pattern and value-list keywords of `a`.
    pub(super) fn string_fits(a: &Alt<'_>, w: &str) -> bool {
        let len = w.chars().count() as f64;
        let lengths = a
            .values("minLength")
            .all(|(_, v)| v.as_f64().is_some_and(|m| len >= m))
            && a.values("maxLength")
                .all(|(_, v)| v.as_f64().is_some_and(|m| len <= m));
        let patterns = a.values("pattern").all(|(_, p)| {
            p.as_str()
                .and_then(|p| regex::Regex::new(p).ok())
                .is_some_and(|re| re.is_match(w))
        });
        let value = Value::String(w.to_string());
        let listed = Self::enum_values(a).is_none_or(|e| e.iter().any(|x| json_eq(x, &value)));
        lengths && patterns && listed
    }

    pub(super) fn strings(o: &Alt<'_>, n: &Alt<'_>, ptr: &str, out: &mut Vec<Change>) {
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
        let trivial = matches_every_string;
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
                // herald asserts formats, so a string one side accepts and the other
                // rejects decides the direction.
                let judge = |from: &Alt<'_>, fa: &[String], fb: &[String]| {
                    if within(fa, fb) {
                        Verdict::Compatible
                    } else if separating_witness(from, fa, fb) {
                        Verdict::Incompatible
                    } else {
                        Verdict::Unknown
                    }
                };
                let b = judge(o, &fo, &fnew);
                let f = judge(n, &fnew, &fo);
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
}

/// Sample strings, one or more valid for each format herald asserts.
const FORMAT_WITNESSES: &[&str] = &[
    "2024-01-15T10:30:00Z",
    "2024-01-15",
    "10:30:00Z",
    "P1D",
    "a@b.co",
    "example.com",
    "10.0.0.1",
    "::1",
    "https://example.com/x",
    "https://example.com/\u{fc}",
    "/x",
    "550e8400-e29b-41d4-a716-446655440000",
    "/a/b",
    "0/a",
    "^a$",
];

/// Whether `value` is valid under `format`, as herald's validators judge it (formats
/// asserted); `None` for a format the validator does not know (it would accept all).
fn format_accepts(format: &str, value: &str) -> Option<bool> {
    const KNOWN: &[&str] = &[
        "date-time",
        "date",
        "time",
        "duration",
        "email",
        "idn-email",
        "hostname",
        "idn-hostname",
        "ipv4",
        "ipv6",
        "uri",
        "uri-reference",
        "iri",
        "iri-reference",
        "uuid",
        "json-pointer",
        "relative-json-pointer",
        "regex",
    ];
    if !KNOWN.contains(&format) {
        return None;
    }
    let v = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&serde_json::json!({"format": format}))
        .ok()?;
    Some(v.is_valid(&Value::String(value.to_string())))
}

/// A sample string that `from` accepts (its formats, lengths, patterns and value
/// list) and that one of the formats `to` rejects: proof that `from ⊄ to`.
fn separating_witness(from: &Alt<'_>, from_formats: &[String], to_formats: &[String]) -> bool {
    FORMAT_WITNESSES.iter().any(|w| {
        let fits_from = from_formats
            .iter()
            .all(|f| format_accepts(f, w) == Some(true))
            && Differ::string_fits(from, w);
        fits_from
            && to_formats
                .iter()
                .any(|f| format_accepts(f, w) == Some(false))
    })
}

/// Whether a `pattern` accepts every string. `pattern` is a search, not a full match,
/// so an unanchored regex that matches the empty string (`a*`, `x?`, `.*`) matches
/// every string at position 0, and so does one anchored only at the start (`^a*`) or
/// only at the end (`a*$`). Anything with another assertion (`^…$`, `\b`, look-around)
/// is judged non-trivial: that errs towards "changed", never towards "compatible".
/// (`^.*$` is not trivial: `.` does not match a newline.)
pub(super) fn matches_every_string(pattern: &str) -> bool {
    let rest = pattern.strip_prefix('^').unwrap_or(pattern);
    let rest = if rest.len() == pattern.len() {
        rest.strip_suffix('$')
            .filter(|r| !r.ends_with('\\'))
            .unwrap_or(rest)
    } else {
        rest
    };
    let asserts = rest.contains(['^', '$'])
        || rest.contains("\\b")
        || rest.contains("\\B")
        || rest.contains("\\A")
        || rest.contains("\\z")
        || rest.contains("(?");
    !asserts && regex::Regex::new(rest).is_ok_and(|re| re.is_match(""))
}

#[cfg(test)]
mod tests {
    use super::matches_every_string;

    #[test]
    fn patterns_that_match_every_string() {
        for p in [
            "", ".*", "a*", "x?", "^.*", ".*$", "^a*", "(ab)*", "a{0,3}$",
        ] {
            assert!(matches_every_string(p), "{p}");
        }
        for p in [
            "a", "^$", "^.*$", "^a*$", "\\ba*", "a+", "[", "(?=a)", "^a", "b$", "a\\$",
        ] {
            assert!(!matches_every_string(p), "{p}");
        }
    }
}
