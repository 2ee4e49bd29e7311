//! NATS subject matching (`*` one token, `>` the rest): whether a filter matches a
//! subject, whether one filter lies within another, whether two overlap. The one
//! implementation in herald: the consistency checks, the consumer contracts, the
//! runtime, the DLQ filters, permissions and `herald watch` all ask it.
//!
//! Filters are split into tokens once ([`Filter`]) and compared in that form, and
//! the checks that compare every filter with every other go through a
//! [`FilterIndex`], which only compares filters whose first tokens can agree: with
//! thousands of topics, splitting both filters of every pair dominated `check`.
//!
//! ```
//! use herald_contracts::subject;
//!
//! assert!(subject::matches("usage.metered.*", "usage.metered.api_call"));
//! assert!(subject::within("usage.metered.api_call", "usage.>"));
//! assert!(subject::overlaps("usage.>", "*.metered.api_call"));
//! assert!(!subject::overlaps("ingest.>", "usage.>"));
//! ```

use std::collections::HashMap;

/// Whether the filter `filter` matches the concrete subject `subject`. Every token of
/// `subject` is taken literally, as the server takes a published subject.
pub fn matches(filter: &str, subject: &str) -> bool {
    tokens_match(filter.split('.'), subject)
}

/// [`matches`] for a filter already split at its dots, for callers that keep many
/// filters and match every message against them.
pub fn tokens_match<'a>(mut filter: impl Iterator<Item = &'a str>, subject: &str) -> bool {
    let mut tokens = subject.split('.');
    loop {
        match (filter.next(), tokens.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(p), Some(t)) if p == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether every subject matched by the filter `inner` is matched by `outer`.
pub fn within(inner: &str, outer: &str) -> bool {
    Filter::parse(inner).within(&Filter::parse(outer))
}

/// Whether some subject is matched by both filters.
pub fn overlaps(a: &str, b: &str) -> bool {
    Filter::parse(a).overlaps(&Filter::parse(b))
}

/// A subject filter split into its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter<'a> {
    tokens: Vec<&'a str>,
}

impl<'a> Filter<'a> {
    /// Splits `filter` at its dots (an empty token stays a token, as NATS would refuse it
    /// rather than skip it).
    pub fn parse(filter: &'a str) -> Self {
        Filter {
            tokens: filter.split('.').collect(),
        }
    }

    fn first(&self) -> &'a str {
        self.tokens[0]
    }

    /// Whether every subject matching `self` also matches `outer`.
    pub fn within(&self, outer: &Filter<'_>) -> bool {
        for (k, ot) in outer.tokens.iter().enumerate() {
            match (*ot, self.tokens.get(k)) {
                (">", Some(_)) => return true,
                ("*", Some(&it)) if it != ">" => {}
                (ot, Some(&it)) if ot == it => {}
                _ => return false,
            }
        }
        self.tokens.len() == outer.tokens.len()
    }

    /// Whether some subject matches both filters.
    pub fn overlaps(&self, other: &Filter<'_>) -> bool {
        let (a, b) = (&self.tokens, &other.tokens);
        for k in 0..a.len().max(b.len()) {
            match (a.get(k), b.get(k)) {
                (Some(&">"), Some(_)) | (Some(_), Some(&">")) => return true,
                (Some(&x), Some(&y)) if x == y || x == "*" || y == "*" => {}
                _ => return false,
            }
        }
        true
    }
}

fn is_wildcard(token: &str) -> bool {
    token == "*" || token == ">"
}

/// Many filters, parsed once and grouped by first token, for the questions "which of
/// them overlap this filter" and "which of them contain it".
#[derive(Debug)]
pub struct FilterIndex<'a> {
    filters: Vec<Filter<'a>>,
    /// Filters by their literal first token.
    by_first: HashMap<&'a str, Vec<usize>>,
    /// Filters whose first token is `*` or `>`: they can meet any filter.
    wild_first: Vec<usize>,
}

impl<'a> FilterIndex<'a> {
    /// Indexes `filters`; results are positions in this sequence.
    pub fn new(filters: impl IntoIterator<Item = &'a str>) -> Self {
        let filters: Vec<Filter<'a>> = filters.into_iter().map(Filter::parse).collect();
        let mut by_first: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut wild_first = Vec::new();
        for (i, f) in filters.iter().enumerate() {
            if is_wildcard(f.first()) {
                wild_first.push(i);
            } else {
                by_first.entry(f.first()).or_default().push(i);
            }
        }
        FilterIndex {
            filters,
            by_first,
            wild_first,
        }
    }

    /// The indexed filter at `i`.
    pub fn get(&self, i: usize) -> &Filter<'a> {
        &self.filters[i]
    }

    /// Filters whose first token can agree with a filter starting with `first`,
    /// ascending: every filter if `first` is a wildcard.
    fn candidates(&self, first: &str) -> Vec<usize> {
        if is_wildcard(first) {
            return (0..self.filters.len()).collect();
        }
        let same = self.by_first.get(first).map_or(&[][..], Vec::as_slice);
        let mut out = Vec::with_capacity(same.len() + self.wild_first.len());
        let (mut i, mut j) = (0, 0);
        while i < same.len() || j < self.wild_first.len() {
            let take_same =
                j == self.wild_first.len() || (i < same.len() && same[i] < self.wild_first[j]);
            if take_same {
                out.push(same[i]);
                i += 1;
            } else {
                out.push(self.wild_first[j]);
                j += 1;
            }
        }
        out
    }

    /// Positions of the indexed filters that overlap `filter`, ascending.
    pub fn overlapping(&self, filter: &Filter<'_>) -> Vec<usize> {
        self.candidates(filter.first())
            .into_iter()
            .filter(|&i| filter.overlaps(&self.filters[i]))
            .collect()
    }

    /// Positions of the indexed filters that contain `inner`, ascending.
    pub fn containing(&self, inner: &Filter<'_>) -> Vec<usize> {
        self.candidates(inner.first())
            .into_iter()
            .filter(|&i| inner.within(&self.filters[i]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The string-splitting versions these replaced, kept as the oracle.
    fn old_within(inner: &str, outer: &str) -> bool {
        let i: Vec<&str> = inner.split('.').collect();
        let o: Vec<&str> = outer.split('.').collect();
        for (k, ot) in o.iter().enumerate() {
            match (*ot, i.get(k)) {
                (">", Some(_)) => return true,
                ("*", Some(&it)) if it != ">" => {}
                (ot, Some(&it)) if ot == it => {}
                _ => return false,
            }
        }
        i.len() == o.len()
    }

    fn old_overlap(a: &str, b: &str) -> bool {
        let a: Vec<&str> = a.split('.').collect();
        let b: Vec<&str> = b.split('.').collect();
        for k in 0..a.len().max(b.len()) {
            match (a.get(k), b.get(k)) {
                (Some(&">"), Some(_)) | (Some(_), Some(&">")) => return true,
                (Some(&x), Some(&y)) if x == y || x == "*" || y == "*" => {}
                _ => return false,
            }
        }
        true
    }

    fn within(a: &str, b: &str) -> bool {
        Filter::parse(a).within(&Filter::parse(b))
    }

    fn overlap(a: &str, b: &str) -> bool {
        Filter::parse(a).overlaps(&Filter::parse(b))
    }

    #[test]
    fn filters_match_concrete_subjects() {
        assert!(matches("usage.metered.api_call", "usage.metered.api_call"));
        assert!(matches("usage.*.api_call", "usage.metered.api_call"));
        assert!(matches("usage.>", "usage.metered.api_call"));
        assert!(matches(">", "usage"));
        assert!(!matches("usage.>", "usage"));
        assert!(!matches("usage.*", "usage.metered.api_call"));
        assert!(!matches("usage.metered", "usage.metered.api_call"));
        assert!(!matches("usage.metered.api_call", "usage.metered"));
        assert!(!matches("usage.metered.x", "usage.metered.y"));
        // A subject's tokens are literal: `*` in it is a token like any other.
        assert!(matches("a.*", "a.>"));
        assert!(!matches("a.b", "a.*"));
        // The free functions answer as the parsed forms do.
        assert!(within("a.b", "a.*") && !within("a.*", "a.b"));
        assert!(overlaps("a.*", "*.b") && !overlaps("a.b", "a.c"));
    }

    #[test]
    fn filter_containment() {
        assert!(within("usage.metered.>", "usage.metered.>"));
        assert!(within("usage.metered.api_call", "usage.metered.>"));
        assert!(within("ingest.document.processed", "ingest.>"));
        assert!(!within("ingest.>", "ingest.document.>"));
        assert!(!within("usage.>", "usage.metered.>"));
        assert!(within("a.*.c", "a.*.c"));
        assert!(!within("a.b", "a.b.c"));
    }

    #[test]
    fn filter_overlap() {
        assert!(overlap("usage.>", "usage.metered.api_call"));
        assert!(overlap("a.*", "a.b"));
        assert!(!overlap("ingest.>", "usage.>"));
        assert!(!overlap("a.b", "a.b.c"));
        assert!(overlap("herald.heartbeat.*", "herald.heartbeat.>"));
    }

    /// Hostile pairs, with the answer the string versions gave (and still give).
    #[test]
    fn parsed_filters_answer_as_the_string_versions_did() {
        #[rustfmt::skip]
        let table: &[(&str, &str, bool, bool, bool)] = &[
            // (a, b, a overlaps b, a within b, b within a)
            (">", "a.*", true, false, true),
            ("a.>", "a", false, false, false),
            ("a.>", "a.b", true, false, true),
            ("*", ">", true, true, false),
            ("*", "a", true, false, true),
            ("*.*", ">", true, true, false),
            ("a..b", "a.*.b", true, true, false),
            ("a..b", "a.b", false, false, false),
            ("", "", true, true, true),
            ("", "*", true, true, false),
            ("", ">", true, true, false),
            ("a.", "a.>", true, true, false),
            (".", "*.*", true, true, false),
            ("a.>.b", "a.c", true, false, true),
            ("a.>.b", "a.>", true, true, true),
            (">.a", "b", true, false, true),
            ("a.b", "a.b.c", false, false, false),
            ("a.*", "a.>", true, true, false),
            ("a.*.c", "a.b.*", true, false, false),
            ("x.y.z", "x.y.z", true, true, true),
        ];
        for &(a, b, ov, ab, ba) in table {
            assert_eq!(overlap(a, b), ov, "{a:?} overlaps {b:?}");
            assert_eq!(overlap(b, a), ov, "{b:?} overlaps {a:?}");
            assert_eq!(within(a, b), ab, "{a:?} within {b:?}");
            assert_eq!(within(b, a), ba, "{b:?} within {a:?}");
            assert_eq!(old_overlap(a, b), ov, "old: {a:?} overlaps {b:?}");
            assert_eq!(old_within(a, b), ab, "old: {a:?} within {b:?}");
            assert_eq!(old_within(b, a), ba, "old: {b:?} within {a:?}");
        }
    }

    /// Every filter of up to three tokens over `a`, `b`, `*`, `>` and the empty
    /// token, against every other: the parsed form and the index agree with the
    /// string versions on all of them.
    #[test]
    fn parsed_filters_and_the_index_agree_with_the_string_versions_exhaustively() {
        let alphabet = ["a", "b", "*", ">", ""];
        let mut filters: Vec<String> = Vec::new();
        for n in 1..=3u32 {
            for code in 0..alphabet.len().pow(n) {
                let mut c = code;
                let tokens: Vec<&str> = (0..n)
                    .map(|_| {
                        let t = alphabet[c % alphabet.len()];
                        c /= alphabet.len();
                        t
                    })
                    .collect();
                filters.push(tokens.join("."));
            }
        }
        assert_eq!(filters.len(), 5 + 25 + 125);
        let index = FilterIndex::new(filters.iter().map(String::as_str));
        let (mut overlapping, mut containing) = (0, 0);
        for a in &filters {
            let fa = Filter::parse(a);
            let want_overlap: Vec<usize> = (0..filters.len())
                .filter(|&i| old_overlap(a, &filters[i]))
                .collect();
            let want_within: Vec<usize> = (0..filters.len())
                .filter(|&i| old_within(a, &filters[i]))
                .collect();
            for (i, b) in filters.iter().enumerate() {
                assert_eq!(
                    fa.overlaps(index.get(i)),
                    old_overlap(a, b),
                    "{a:?} / {b:?}"
                );
                assert_eq!(fa.within(index.get(i)), old_within(a, b), "{a:?} in {b:?}");
            }
            assert_eq!(index.overlapping(&fa), want_overlap, "overlapping {a:?}");
            assert_eq!(index.containing(&fa), want_within, "containing {a:?}");
            overlapping += want_overlap.len();
            containing += want_within.len();
        }
        // Neither relation is trivially all or nothing over this set.
        let pairs = filters.len() * filters.len();
        assert!(overlapping > 0 && overlapping < pairs, "{overlapping}");
        assert!(containing > 0 && containing < pairs, "{containing}");
    }
}
