//! Two arbitrary JSON documents as old and new schema: the diff engine must produce a
//! report or an error (depth limit, bad `$ref`), never panic or overflow the stack.
//! Input: two JSON texts separated by a NUL byte.
#![no_main]

use herald_contracts::evolution::{compare, Mode, NoExternalSchemas, Options};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |b| *b == 0);
    let (Some(a), Some(b)) = (parts.next(), parts.next()) else { return };
    let (Ok(old), Ok(new)) = (
        serde_json::from_slice::<serde_json::Value>(a),
        serde_json::from_slice::<serde_json::Value>(b),
    ) else {
        return;
    };
    for mode in [Mode::Backward, Mode::Forward, Mode::Full, Mode::Seed] {
        if let Err(e) = compare(&old, &new, &Options::new(mode), &NoExternalSchemas) {
            assert!(!e.to_string().is_empty());
        }
    }
});
