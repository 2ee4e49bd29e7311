//! Violation messages made to tell the user what to fix.

use serde_json::Value;

use crate::error::Violation;

pub(super) fn violations(validator: &jsonschema::Validator, event: &Value) -> Vec<Violation> {
    validator
        .iter_errors(event)
        .map(|e| Violation {
            instance_path: e.instance_path().as_str().to_string(),
            keyword: e.kind().keyword().to_string(),
            message: violation_message(&e),
        })
        .collect()
}

/// How many allowed values an `enum` violation lists.
const ENUM_VALUES_SHOWN: usize = 10;
/// Longest violation message kept whole; a longer one (a 360 KB regex in a
/// constraint) is cut to one readable line.
const MESSAGE_MAX_CHARS: usize = 300;

/// The violation's message, made to tell the user what to fix: an `enum` lists its
/// allowed values (up to [`ENUM_VALUES_SHOWN`]), and a huge message is summarized.
fn violation_message(e: &jsonschema::ValidationError<'_>) -> String {
    if let jsonschema::error::ValidationErrorKind::Enum { options } = e.kind() {
        if let Some(list) = options.as_array() {
            let shown: Vec<String> = list
                .iter()
                .take(ENUM_VALUES_SHOWN)
                .map(|v| shorten(&v.to_string(), 60))
                .collect();
            let more = list.len().saturating_sub(ENUM_VALUES_SHOWN);
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            return format!(
                "{} is not one of the allowed values: {}{tail}",
                shorten(&e.instance().to_string(), 60),
                shown.join(", ")
            );
        }
    }
    shorten(&e.to_string(), MESSAGE_MAX_CHARS)
}

/// Cuts `s` to at most `max` characters, saying how long it was.
fn shorten(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max.saturating_sub(40)).collect();
    format!("{cut}… ({n} characters in all)")
}
