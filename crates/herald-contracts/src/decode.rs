//! Strict JSON decoding of events: what `validate`, publish and consume all parse with.
//!
//! Why not plain `serde_json::from_slice`: it keeps the *last* value of a repeated
//! member name, while RapidJSON and simdjson keep the *first*. An event such as
//! `{"event_type": "bogus", …, "event_type": "api_call"}` would then validate here
//! and be read as `bogus` by a handler in another language. Duplicate names are
//! refused anywhere in the document, naming the JSON Pointer of the repeat. The
//! error texts also name a byte order mark and a lone UTF-16 surrogate as such,
//! because serde_json's wording for them ("expected value", "unexpected end of hex
//! escape") does not tell the user what to fix.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// One step of the path from the root to the value being decoded.
enum Step {
    Key(String),
    Index(usize),
}

/// Decodes one JSON value, refusing a repeated member name. With a path (`Some`) it
/// tracks where it is, to name a duplicate by its JSON Pointer. Without one it is the
/// path of every valid event: tracking cost about a sixth of validating a typical
/// event, so [`parse`] decodes again with a path only after an error.
#[derive(Clone, Copy)]
struct Strict<'p>(Option<&'p RefCell<Vec<Step>>>);

impl Strict<'_> {
    fn pointer(&self, last: &str) -> String {
        let mut p = String::new();
        let path = self.0.map(|path| path.borrow());
        for s in path.iter().flat_map(|steps| steps.iter()) {
            p.push('/');
            match s {
                Step::Key(k) => p.push_str(&escape(k)),
                Step::Index(i) => p.push_str(&i.to_string()),
            }
        }
        p.push('/');
        p.push_str(&escape(last));
        p
    }

    fn enter(&self, step: Step) {
        if let Some(path) = self.0 {
            path.borrow_mut().push(step);
        }
    }

    fn leave(&self) {
        if let Some(path) = self.0 {
            path.borrow_mut().pop();
        }
    }
}

fn escape(t: &str) -> String {
    t.replace('~', "~0").replace('/', "~1")
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            self.enter(Step::Index(items.len()));
            let next = seq.next_element_seed(self);
            self.leave();
            match next? {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Some(path) = self.0 else {
                // Without a path, one hash lookup per member: insert, and look back.
                let value = map.next_value_seed(self)?;
                if members.insert(key, value).is_some() {
                    return Err(de::Error::custom("duplicate member name"));
                }
                continue;
            };
            if members.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate member name `{key}` at {}: a name may appear once per object \
(parsers disagree on which value wins)",
                    self.pointer(&key)
                )));
            }
            path.borrow_mut().push(Step::Key(key));
            let value = map.next_value_seed(self);
            let key = match path.borrow_mut().pop() {
                Some(Step::Key(k)) => k,
                _ => unreachable!("the path stack is balanced"),
            };
            members.insert(key, value?);
        }
        Ok(Value::Object(members))
    }
}

/// Parses `bytes` as one JSON document, refusing duplicate member names anywhere.
/// The error is one line, meant for `decode_error`.
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    if let Ok(v) = Strict(None)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
    {
        return Ok(v);
    }
    // Any error: decode again, slowly, for the error text.
    parse_strictly(bytes)
}

fn parse_strictly(bytes: &[u8]) -> Result<Value, String> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(
            "the event starts with a UTF-8 byte order mark (BOM), which JSON does not allow: \
save it without a BOM"
                .into(),
        );
    }
    let path = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = Strict(Some(&path))
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    parsed.map_err(|e| {
        if let Err(u) = std::str::from_utf8(bytes) {
            return format!("invalid UTF-8 at byte {} ({e})", u.valid_up_to());
        }
        if let Some((at, escape)) = lone_surrogate(bytes) {
            return format!(
                "lone UTF-16 surrogate `{escape}` at byte {at}: a surrogate escape must come in \
a high/low pair (JSON text must be valid Unicode)"
            );
        }
        e.to_string()
    })
}

/// The first `\uD800`–`\uDFFF` escape that is not part of a high/low pair.
fn lone_surrogate(bytes: &[u8]) -> Option<(usize, String)> {
    let hex = |at: usize| -> Option<u16> {
        let s = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
        u16::from_str_radix(s, 16).ok()
    };
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        if bytes[i + 1] != b'u' {
            i += 2;
            continue;
        }
        let Some(unit) = hex(i + 2) else {
            i += 2;
            continue;
        };
        let text = || String::from_utf8_lossy(&bytes[i..i + 6]).into_owned();
        match unit {
            0xD800..=0xDBFF => {
                let low = (bytes.get(i + 6..i + 8) == Some(b"\\u"))
                    .then(|| hex(i + 8))
                    .flatten();
                if !matches!(low, Some(0xDC00..=0xDFFF)) {
                    return Some((i, text()));
                }
                i += 12;
            }
            0xDC00..=0xDFFF => return Some((i, text())),
            _ => i += 6,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn duplicates_are_named_by_pointer_at_any_depth() {
        let e = parse(br#"{"a": 1, "a": 2}"#).unwrap_err();
        assert!(e.contains("duplicate member name `a` at /a"), "{e}");
        let e = parse(br#"{"x": [{"ok": 1}, {"b/c": 1, "b/c": 2}]}"#).unwrap_err();
        assert!(e.contains("at /x/1/b~1c"), "{e}");
        assert!(parse(br#"{"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]}"#).is_ok());
    }

    #[test]
    fn bom_and_lone_surrogates_are_named() {
        let e = parse(b"\xEF\xBB\xBF{}").unwrap_err();
        assert!(e.contains("byte order mark (BOM)"), "{e}");
        let e = parse(br#"{"a": "\ud800"}"#).unwrap_err();
        assert!(
            e.contains(r"lone UTF-16 surrogate `\ud800` at byte 7"),
            "{e}"
        );
        let e = parse(br#"{"a": "x\udc00"}"#).unwrap_err();
        assert!(e.contains(r"`\udc00`"), "{e}");
        assert_eq!(
            parse(br#"{"a": "\ud83d\ude00"}"#).unwrap()["a"],
            "\u{1F600}"
        );
        // an escaped backslash followed by `u` is not an escape
        assert!(parse(br#"{"a": "\\ud800"}"#).is_ok());
    }

    #[test]
    fn trailing_data_and_depth_are_still_errors() {
        assert!(parse(b"{} {}").is_err());
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(parse(deep.as_bytes())
            .unwrap_err()
            .contains("recursion limit"));
    }
}
