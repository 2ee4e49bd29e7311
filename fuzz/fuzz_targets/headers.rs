//! Header and envelope values a consumer receives from any producer: a propagated
//! `traceparent` must come out well-formed whatever came in, and the `Herald-Dlq-*`
//! style numeric headers parse or are rejected without panicking.
#![no_main]

use herald_runtime::headers;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let child = headers::child_traceparent(s);
    assert_eq!(child.len(), 55, "{child}");
    assert!(headers::trace_id(&child).is_some(), "{child}");
    if let Some(t) = headers::trace_id(s) {
        assert_eq!(t.len(), 32);
    }
    let _ = s.trim().parse::<u64>();
    let _ = s.trim().parse::<i64>();
});
