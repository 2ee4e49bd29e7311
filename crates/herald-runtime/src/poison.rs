//! Messages the NATS client cannot decode ("poison"), found and dead-lettered another way.
//!
//! nats-server stores a message whose header block has a line without `:` or bytes that
//! are not UTF-8. async-nats 0.51 fails to parse such a message when it is delivered and
//! drops the whole connection, on every delivery: the handler never runs and the
//! neighbours fetched in the same batch are lost with the connection (redelivered after
//! `ack_wait`). The library never surfaces the message, so herald reads it through the
//! stream's message-get API (`$JS.API.STREAM.MSG.GET`), which returns the header block as
//! raw bytes inside JSON, and settles it itself:
//!
//! 1. after a reconnect, the consumer looks at the messages delivered but not yet acked
//!    (`ack_floor + 1 ..= delivered`, at most [`SWEEP_LIMIT`]);
//! 2. each one on its filter whose header block would not parse is dead-lettered with
//!    reason `decode_error`, its payload as stored and its raw header block base64-encoded
//!    in `Herald-Raw-Headers`;
//! 3. then terminated for this consumer with a `+TERM` on its ack subject (the server
//!    finds the pending delivery by stream sequence), so it is never delivered again.
//!
//! Other consumers of the stream do the same for themselves. See RELIABILITY.md for the
//! minimal reproduction to report upstream.

use base64::Engine;
use bytes::Bytes;
use serde_json::Value;

use crate::connection::HeraldClient;

/// Most messages one sweep looks at (bounds the work after a reconnect).
pub const SWEEP_LIMIT: u64 = 10_000;

/// Header carrying the raw header block (base64) of a dead-lettered undecodable message.
pub const RAW_HEADERS: &str = "Herald-Raw-Headers";

/// A stored message as the server returns it, header block unparsed.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// Subject.
    pub subject: String,
    /// Stream sequence.
    pub seq: u64,
    /// The header block exactly as stored (empty when the message has none).
    pub header_block: Vec<u8>,
    /// Payload.
    pub payload: Bytes,
}

/// Reads message `seq` of `stream` through the message-get API without parsing its
/// headers. `Ok(None)` when there is no such message (deleted, expired).
pub async fn get_stored(
    client: &HeraldClient,
    stream: &str,
    seq: u64,
) -> Result<Option<StoredMessage>, String> {
    let subject = format!("$JS.API.STREAM.MSG.GET.{stream}");
    let body = serde_json::json!({ "seq": seq }).to_string();
    let reply = client
        .nats()
        .request(subject, body.into())
        .await
        .map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_slice(&reply.payload).map_err(|e| e.to_string())?;
    if let Some(err) = v.get("error") {
        if err["code"].as_u64() == Some(404) {
            return Ok(None);
        }
        return Err(err.to_string());
    }
    let m = &v["message"];
    let b64 = |f: &str| {
        m[f].as_str()
            .map(|s| base64::engine::general_purpose::STANDARD.decode(s))
            .transpose()
            .map(Option::unwrap_or_default)
            .map_err(|e| format!("{f}: {e}"))
    };
    Ok(Some(StoredMessage {
        subject: m["subject"].as_str().unwrap_or_default().to_string(),
        seq: m["seq"].as_u64().unwrap_or(seq),
        header_block: b64("hdrs")?,
        payload: Bytes::from(b64("data")?),
    }))
}

/// Why async-nats would fail to parse `block`, or `None` when it parses. Mirrors the
/// client's rules: UTF-8, a `NATS/1.0` first line, every other non-empty line either a
/// continuation (leading whitespace) or `Name: value` with a valid name.
pub fn header_block_problem(block: &[u8]) -> Option<String> {
    if block.is_empty() {
        return None;
    }
    let Ok(text) = std::str::from_utf8(block) else {
        return Some("header block is not UTF-8".into());
    };
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    if !first.starts_with("NATS/1.0") {
        return Some(format!("header version line is {first:?}, not NATS/1.0"));
    }
    for line in lines {
        if line.is_empty() || line.starts_with(char::is_whitespace) {
            continue;
        }
        let Some((name, _)) = line.split_once(':') else {
            return Some(format!("header line without ':' ({line:?})"));
        };
        let bad_name =
            name.is_empty() || name.bytes().any(|b| !(b.is_ascii_graphic()) || b == b':');
        if bad_name {
            return Some(format!("invalid header name {name:?}"));
        }
    }
    None
}

/// The first value of header `name` (case-sensitive, as NATS header names are) in a raw
/// header block, trimmed; `None` when absent or the block is not UTF-8.
pub fn header_value(block: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(block).ok()?;
    text.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        (n == name).then(|| v.trim().to_string())
    })
}

/// Whether `subject` falls under the consumer's `filter` (NATS wildcards).
pub fn on_filter(filter: &str, subject: &str) -> bool {
    crate::dlq::subject_matches(filter, subject)
}

/// The ack subject that terminates stream sequence `seq` for `durable` (the server looks
/// the pending delivery up by stream sequence; the other tokens are not used for a term).
pub fn term_subject(stream: &str, durable: &str, seq: u64) -> String {
    format!("$JS.ACK.{stream}.{durable}.1.{seq}.1.0.0")
}

/// Base64 of a raw header block, for [`RAW_HEADERS`].
pub fn encode_block(block: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(block)
}
