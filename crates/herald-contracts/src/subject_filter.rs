//! NATS subject-filter algebra (`*` one token, `>` the rest): containment and
//! overlap of two filters. Why a module of its own: both the consistency checks
//! (`check`) and the consumer contracts (`versions`) need it, and neither should
//! import the other for it.

/// Whether every subject matching `inner` also matches `outer`.
pub(crate) fn filter_within(inner: &str, outer: &str) -> bool {
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

/// Whether some subject matches both filters.
pub(crate) fn filters_overlap(a: &str, b: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_containment() {
        assert!(filter_within("usage.metered.>", "usage.metered.>"));
        assert!(filter_within("usage.metered.api_call", "usage.metered.>"));
        assert!(filter_within("ingest.document.processed", "ingest.>"));
        assert!(!filter_within("ingest.>", "ingest.document.>"));
        assert!(!filter_within("usage.>", "usage.metered.>"));
        assert!(filter_within("a.*.c", "a.*.c"));
        assert!(!filter_within("a.b", "a.b.c"));
    }

    #[test]
    fn filter_overlap() {
        assert!(filters_overlap("usage.>", "usage.metered.api_call"));
        assert!(filters_overlap("a.*", "a.b"));
        assert!(!filters_overlap("ingest.>", "usage.>"));
        assert!(!filters_overlap("a.b", "a.b.c"));
        assert!(filters_overlap("herald.heartbeat.*", "herald.heartbeat.>"));
    }
}
