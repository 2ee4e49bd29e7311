//! Any bytes, on any catalog subject, with or without a schema hint: validation must
//! return a verdict (or a clear error), never panic. The first byte picks the subject,
//! the second whether the next line is a schema hint (as a `ce-dataschema` header).
#![no_main]

use std::sync::OnceLock;

use herald_contracts::Catalog;
use libfuzzer_sys::fuzz_target;

fn catalog() -> &'static Catalog {
    static C: OnceLock<Catalog> = OnceLock::new();
    C.get_or_init(|| Catalog::embedded().expect("embedded catalog"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let subjects = catalog().subjects();
    let subject = &subjects[pick as usize % subjects.len()].name;
    let (hint, payload) = match rest.split_first() {
        Some((&1, r)) => match r.iter().position(|b| *b == b'\n') {
            Some(i) => (std::str::from_utf8(&r[..i]).ok(), &r[i + 1..]),
            None => (None, r),
        },
        _ => (None, rest),
    };
    if let Err(e) = catalog().validate_bytes(subject, hint, payload) {
        assert!(!e.to_string().is_empty());
    }
});
