//! Header names herald writes and reads, exactly as they appear on the wire.
//!
//! NATS headers are case-sensitive; these constants are the single spelling
//! every publisher, consumer and tool uses.

/// Idempotency key; JetStream drops a repeat within the stream's duplicate window.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// Per-message TTL (nats-server 2.11+).
pub const TTL: &str = "Nats-TTL";
/// Always `application/json`.
pub const CONTENT_TYPE: &str = "Content-Type";
/// CloudEvents spec version, `1.0`.
pub const CE_SPECVERSION: &str = "ce-specversion";
/// CloudEvents id: the event's identity field.
pub const CE_ID: &str = "ce-id";
/// CloudEvents source: the producing service.
pub const CE_SOURCE: &str = "ce-source";
/// CloudEvents type: the subject.
pub const CE_TYPE: &str = "ce-type";
/// CloudEvents time: the event's timestamp.
pub const CE_TIME: &str = "ce-time";
/// CloudEvents dataschema: the versioned schema `$id` the event was validated against.
pub const CE_DATASCHEMA: &str = "ce-dataschema";
/// Correlation id, propagated from a consumed event to the events it causes.
pub const CE_CORRELATIONID: &str = "ce-correlationid";
/// W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
/// Reply subject of a request event (request-response pattern).
pub const REPLY_TO: &str = "Herald-Reply-To";

/// Why the event was dead-lettered (`schema_invalid`, `handler_rejected`, `max_deliveries` ...).
pub const DLQ_REASON: &str = "Herald-Dlq-Reason";
/// Error text (violations, handler error).
pub const DLQ_ERROR: &str = "Herald-Dlq-Error";
/// Durable consumer that gave up.
pub const DLQ_CONSUMER: &str = "Herald-Dlq-Consumer";
/// Stream the original lived in.
pub const DLQ_STREAM: &str = "Herald-Dlq-Stream";
/// Stream sequence of the original.
pub const DLQ_SEQ: &str = "Herald-Dlq-Seq";
/// Deliveries made before dead-lettering.
pub const DLQ_DELIVERIES: &str = "Herald-Dlq-Deliveries";
/// When it was dead-lettered (RFC 3339).
pub const DLQ_TIME: &str = "Herald-Dlq-Time";

/// `application/json`.
pub const JSON: &str = "application/json";

/// The header names a publisher writes for every event, as prebuilt [`HeaderName`](async_nats::HeaderName)s.
///
/// Why: `HeaderMap::insert` with a `&str` name validates it and copies it into a new
/// buffer on every call; a name built at compile time (`HeaderName::from_static` in a
/// `const` block) points at the static text, so stamping ten headers on each event allocates only the values.
pub mod names {
    use async_nats::header::HeaderName;

    /// [`super::MSG_ID`].
    pub fn msg_id() -> HeaderName {
        const { HeaderName::from_static(super::MSG_ID) }
    }
    /// [`super::TTL`].
    pub fn ttl() -> HeaderName {
        const { HeaderName::from_static(super::TTL) }
    }
    /// [`super::CONTENT_TYPE`].
    pub fn content_type() -> HeaderName {
        const { HeaderName::from_static(super::CONTENT_TYPE) }
    }
    /// [`super::CE_SPECVERSION`].
    pub fn ce_specversion() -> HeaderName {
        const { HeaderName::from_static(super::CE_SPECVERSION) }
    }
    /// [`super::CE_ID`].
    pub fn ce_id() -> HeaderName {
        const { HeaderName::from_static(super::CE_ID) }
    }
    /// [`super::CE_SOURCE`].
    pub fn ce_source() -> HeaderName {
        const { HeaderName::from_static(super::CE_SOURCE) }
    }
    /// [`super::CE_TYPE`].
    pub fn ce_type() -> HeaderName {
        const { HeaderName::from_static(super::CE_TYPE) }
    }
    /// [`super::CE_TIME`].
    pub fn ce_time() -> HeaderName {
        const { HeaderName::from_static(super::CE_TIME) }
    }
    /// [`super::CE_DATASCHEMA`].
    pub fn ce_dataschema() -> HeaderName {
        const { HeaderName::from_static(super::CE_DATASCHEMA) }
    }
    /// [`super::CE_CORRELATIONID`].
    pub fn ce_correlationid() -> HeaderName {
        const { HeaderName::from_static(super::CE_CORRELATIONID) }
    }
    /// [`super::TRACEPARENT`].
    pub fn traceparent() -> HeaderName {
        const { HeaderName::from_static(super::TRACEPARENT) }
    }
    /// [`super::REPLY_TO`].
    pub fn reply_to() -> HeaderName {
        const { HeaderName::from_static(super::REPLY_TO) }
    }
}

/// Why a header value a caller supplied cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderValueError {
    /// Empty or only blanks: as an idempotency key it would make unrelated events
    /// duplicates of each other.
    #[error("{0} is empty; give a non-blank value or leave it out")]
    Blank(&'static str),
    /// CR or LF would end the header line (header injection); NUL breaks child processes
    /// and C consumers. The NATS client itself panics on CR/LF.
    #[error(
        "{0} contains a control character ({1}); CR, LF and NUL are not allowed in header values"
    )]
    ControlCharacter(&'static str, &'static str),
}

/// Checks a header value a caller supplied: no CR, LF or NUL (the NATS client panics on
/// CR/LF, and a NUL breaks every `--exec` child that receives it as an environment value).
pub fn check_value(name: &'static str, value: &str) -> Result<(), HeaderValueError> {
    for (c, label) in [('\r', "CR"), ('\n', "LF"), ('\0', "NUL")] {
        if value.contains(c) {
            return Err(HeaderValueError::ControlCharacter(name, label));
        }
    }
    Ok(())
}

/// Checks an idempotency key: [`check_value`], and not empty or all blank.
pub fn check_key(name: &'static str, value: &str) -> Result<(), HeaderValueError> {
    if value.trim().is_empty() {
        return Err(HeaderValueError::Blank(name));
    }
    check_value(name, value)
}

/// A received idempotency key, if it is one: empty and all-blank values are absent
/// (any client can send `Nats-Msg-Id: ""`; treating it as a key would make every such
/// event a duplicate of the first), and so are values holding a NUL byte (they would
/// break every `--exec` child that gets the key in its environment).
pub fn received_key(hm: &async_nats::HeaderMap) -> Option<String> {
    hm.get(MSG_ID)
        .map(|v| v.as_str().trim())
        .filter(|v| !v.is_empty() && check_value(MSG_ID, v).is_ok())
        .map(str::to_string)
}

/// The canonical form of an identity value used as a duplicate key: UUIDs lower-cased and
/// hyphenated (`ABC...` and `abc...` are the same event), numbers in decimal, other
/// strings trimmed; `None` for empty strings and other JSON types.
pub fn canonical_identity(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                return None;
            }
            Some(match uuid::Uuid::try_parse(s) {
                Ok(u) => u.hyphenated().to_string(),
                Err(_) => s.to_string(),
            })
        }
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A fresh W3C `traceparent` (`00-<trace id>-<span id>-01`).
pub fn new_traceparent() -> String {
    let trace: u128 = rand::random::<u128>() | 1;
    let span: u64 = rand::random::<u64>() | 1;
    format!("00-{trace:032x}-{span:016x}-01")
}

/// A random (v4) UUID from the thread-local generator (no system call per id).
pub fn fast_uuid() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

/// A child of `parent`: same trace id, new span id. A malformed parent starts a new trace
/// (W3C Trace Context: a header that does not parse is ignored, never passed on as is).
pub fn child_traceparent(parent: &str) -> String {
    match parse_traceparent(parent) {
        Some((trace, flags)) => {
            let span: u64 = rand::random::<u64>() | 1;
            format!("00-{trace}-{span:016x}-{flags}")
        }
        None => new_traceparent(),
    }
}

/// The trace id part of a `traceparent`, if well-formed.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    parse_traceparent(traceparent).map(|(t, _)| t)
}

/// `(trace id, flags)` of a well-formed version-00 `traceparent`: lowercase hex fields of
/// 2-32-16-2 digits, trace and span ids not all zero.
fn parse_traceparent(tp: &str) -> Option<(&str, &str)> {
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let mut it = tp.trim().split('-');
    let (v, t, p, f) = (it.next()?, it.next()?, it.next()?, it.next()?);
    let ok = it.next().is_none()
        && v == "00"
        && hex(t, 32)
        && hex(p, 16)
        && hex(f, 2)
        && t.bytes().any(|b| b != b'0')
        && p.bytes().any(|b| b != b'0');
    ok.then_some((t, f))
}
