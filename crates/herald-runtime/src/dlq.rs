//! The dead-letter queue: stream `DLQ` on `dlq.>`.
//!
//! A dead-lettered event is published to `dlq.<original subject>` with its
//! original payload and headers plus the `Herald-Dlq-*` headers (reason, error,
//! consumer, stream, sequence, deliveries, time). Its `Nats-Msg-Id` is
//! `dlq:<stream>:<seq>:<consumer>` so that dead-lettering the same delivery twice
//! (a crash between the DLQ publish and the original's ack) stores it once.
//!
//! An event too large to copy into the DLQ with those headers (its copy would pass the
//! server's `max_payload` or the DLQ's `max_msg_size`) is dead-lettered **by reference**:
//! an entry with an empty payload and `Herald-Dlq-Payload: reference`, naming the
//! source stream and sequence. The event itself stays in its stream for as long as
//! that stream's retention keeps it (`max_age` of its topic family); replay reads it
//! from there.
//!
//! Replay sends the original payload back to **the consumer that dead-lettered it, and
//! to no other**: to `herald.replay.<durable>` on the `HERALD_REPLAY` stream, with the
//! original subject in `Herald-Replay-Subject` (see [`crate::replay`]). Only entries
//! that name no consumer (written by something other than a herald consumer) go back
//! to their original subject. Either way it uses a **new**
//! message id (the original id would be swallowed by the duplicate window) and
//! deletes the DLQ entry only after the republish is acknowledged: a replay that
//! crashes half way leaves the entry in place (replaying again republishes it once
//! more with the same replay id, which the duplicate window recognises), so it loses
//! nothing and duplicates nothing. The replay id is `replay:<Herald-Dlq-Id>`, a random
//! UUID written when the entry was dead-lettered: no restart of the DLQ stream reuses
//! it and no producer can predict it.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt;

use crate::connection::HeraldClient;
use crate::headers as h;
use crate::DLQ_STREAM;

/// Reasons recorded in `Herald-Dlq-Reason`.
pub mod reason {
    /// The event violates its schema.
    pub const SCHEMA_INVALID: &str = "schema_invalid";
    /// The payload is not JSON.
    pub const DECODE_ERROR: &str = "decode_error";
    /// The named schema version is unknown.
    pub const UNKNOWN_SCHEMA: &str = "unknown_schema";
    /// The handler said the event can never succeed.
    pub const HANDLER_REJECTED: &str = "handler_rejected";
    /// The last allowed delivery failed.
    pub const MAX_DELIVERIES: &str = "max_deliveries";
}

/// Why a DLQ operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    /// No DLQ entry with this sequence.
    #[error("no dead letter with sequence {0}")]
    NotFound(u64),
    /// Another replay removed the entry between this run's read and its removal; the
    /// event was republished once, by that run.
    #[error("dead letter {0} was already replayed by another run (its republish was recognised as a duplicate; nothing was sent twice)")]
    AlreadyReplayed(u64),
    /// The entry does not match its source: forged, or its original is gone.
    #[error("dead letter {seq} refused: {why}")]
    Unverified {
        /// DLQ sequence.
        seq: u64,
        /// What did not match.
        why: String,
    },
    /// A by-reference entry whose original is no longer in its stream.
    #[error("dead letter {seq} holds its event by reference and the original ({stream} sequence {stream_seq}) is gone: {detail}")]
    OriginalGone {
        /// DLQ sequence.
        seq: u64,
        /// Source stream.
        stream: String,
        /// Source sequence.
        stream_seq: u64,
        /// Server message.
        detail: String,
    },
    /// A JetStream request failed.
    #[error("dead-letter queue: {0}")]
    Api(String),
}

fn api(e: impl std::fmt::Display) -> DlqError {
    DlqError::Api(e.to_string())
}

/// `Herald-Dlq-Id`: a random UUID naming the dead letter for ever (the replay id derives from it).
pub const DLQ_ID: &str = "Herald-Dlq-Id";
/// `Herald-Dlq-Payload: reference` marks an entry whose event stays in its source stream.
pub const DLQ_PAYLOAD: &str = "Herald-Dlq-Payload";
/// `Herald-Replay-For`: the durable consumer a replayed event is meant for.
pub const REPLAY_FOR: &str = "Herald-Replay-For";

fn not_found(e: &impl std::fmt::Display) -> bool {
    let t = e.to_string();
    t.contains("no message found") || t.contains("not found") || t.contains("10037")
}

/// Details of the original delivery being dead-lettered.
#[derive(Debug, Clone)]
pub struct DeadLetter<'a> {
    /// Original subject.
    pub subject: &'a str,
    /// Original payload.
    pub payload: Bytes,
    /// Original headers (may be empty).
    pub headers: Option<&'a HeaderMap>,
    /// Reason (see [`reason`]).
    pub reason: &'a str,
    /// Error text (violations, handler error).
    pub error: &'a str,
    /// Consumer (durable) name.
    pub consumer: &'a str,
    /// Original stream.
    pub stream: &'a str,
    /// Original stream sequence.
    pub stream_seq: u64,
    /// Deliveries made.
    pub deliveries: i64,
}

/// Publishes a dead letter and waits for the DLQ's ack. Returns the DLQ sequence.
pub async fn dead_letter(js: &jetstream::Context, d: DeadLetter<'_>) -> Result<u64, DlqError> {
    let mut hm = HeaderMap::new();
    if let Some(orig) = d.headers {
        for (name, values) in orig.iter() {
            let n: &str = name.as_ref();
            if n == h::MSG_ID || n.starts_with("Herald-Dlq-") || n.starts_with("Nats-") {
                continue;
            }
            for v in values {
                hm.append(n, v.as_str());
            }
        }
        if let Some(id) = orig.get(h::MSG_ID) {
            hm.insert("Herald-Dlq-Msg-Id", id.as_str());
        }
    }
    let mut error = d.error.replace(['\r', '\n'], " ");
    if error.len() > 2000 {
        let mut cut = 2000;
        while !error.is_char_boundary(cut) {
            cut -= 1;
        }
        error.truncate(cut);
        error.push('…');
    }
    hm.insert(
        h::MSG_ID,
        format!("dlq:{}:{}:{}", d.stream, d.stream_seq, d.consumer).as_str(),
    );
    hm.insert(DLQ_ID, uuid::Uuid::new_v4().to_string().as_str());
    hm.insert(h::DLQ_REASON, d.reason);
    hm.insert(h::DLQ_ERROR, error.as_str());
    hm.insert(h::DLQ_CONSUMER, d.consumer);
    hm.insert(h::DLQ_STREAM, d.stream);
    hm.insert(h::DLQ_SEQ, d.stream_seq.to_string().as_str());
    hm.insert(h::DLQ_DELIVERIES, d.deliveries.to_string().as_str());
    hm.insert(h::DLQ_TIME, chrono::Utc::now().to_rfc3339().as_str());
    let subject = format!("dlq.{}", d.subject);
    match send(js, &subject, d.payload, hm.clone()).await {
        Ok(seq) => Ok(seq),
        Err(Send::TooLarge(detail)) => {
            // The copy does not fit: keep the event where it is and point at it.
            tracing::warn!(
                stream = d.stream,
                seq = d.stream_seq,
                %detail,
                "event too large to copy into the DLQ; dead-lettering it by reference"
            );
            hm.insert(DLQ_PAYLOAD, "reference");
            send(js, &subject, Bytes::new(), hm)
                .await
                .map_err(|e| api(e.text()))
        }
        Err(e) => Err(api(e.text())),
    }
    // Counted by the consumer (metrics::record_dlq), which knows the service.
}

enum Send {
    TooLarge(String),
    Other(String),
}

impl Send {
    fn text(self) -> String {
        match self {
            Send::TooLarge(t) | Send::Other(t) => t,
        }
    }
}

async fn send(
    js: &jetstream::Context,
    subject: &str,
    payload: Bytes,
    hm: HeaderMap,
) -> Result<u64, Send> {
    use jetstream::context::PublishErrorKind as K;
    let too_large = |kind: K, text: String| {
        let lower = text.to_ascii_lowercase();
        if kind == K::MaxPayloadExceeded || (lower.contains("maximum") && lower.contains("size")) {
            Send::TooLarge(text)
        } else {
            Send::Other(text)
        }
    };
    let fut = js
        .send_publish(
            subject.to_string(),
            PublishMessage::build().payload(payload).headers(hm),
        )
        .await
        .map_err(|e| too_large(e.kind(), e.to_string()))?;
    let ack = fut.await.map_err(|e| too_large(e.kind(), e.to_string()))?;
    Ok(ack.sequence)
}

/// One dead letter as stored.
#[derive(Debug, Clone)]
pub struct DlqEntry {
    /// Sequence in the `DLQ` stream.
    pub seq: u64,
    /// Original subject (without the `dlq.` prefix).
    pub subject: String,
    /// `Herald-Dlq-Reason`.
    pub reason: String,
    /// `Herald-Dlq-Error`.
    pub error: String,
    /// `Herald-Dlq-Consumer`.
    pub consumer: String,
    /// `Herald-Dlq-Stream`.
    pub stream: String,
    /// `Herald-Dlq-Seq`.
    pub stream_seq: u64,
    /// `Herald-Dlq-Deliveries`.
    pub deliveries: i64,
    /// `Herald-Dlq-Time`.
    pub time: String,
    /// All headers.
    pub headers: HeaderMap,
    /// Original payload.
    pub payload: Bytes,
}

impl DlqEntry {
    /// A header value of the entry.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.as_str())
    }
}

/// Filters for `ls` / `replay --all`.
#[derive(Debug, Clone, Default)]
pub struct DlqFilter {
    /// Original subject (exact or NATS wildcard).
    pub subject: Option<String>,
    /// Reason.
    pub reason: Option<String>,
    /// Consumer.
    pub consumer: Option<String>,
}

impl DlqFilter {
    fn matches(&self, e: &DlqEntry) -> bool {
        self.subject
            .as_deref()
            .is_none_or(|s| subject_matches(s, &e.subject))
            && self.reason.as_deref().is_none_or(|r| r == e.reason)
            && self.consumer.as_deref().is_none_or(|c| c == e.consumer)
    }
}

/// NATS subject matching with `*` and `>`.
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut f = filter.split('.');
    let mut s = subject.split('.');
    loop {
        match (f.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Result of a replay of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// DLQ sequence replayed.
    pub dlq_seq: u64,
    /// The event's original subject.
    pub subject: String,
    /// The consumer (durable) it was sent back to, alone; empty when the entry named
    /// none and the event went back to its original subject.
    pub consumer: String,
    /// Sequence of the republished event in its stream (0 in a dry run).
    pub new_seq: u64,
    /// The new message id.
    pub message_id: String,
}

/// Reads, lists and replays the dead-letter queue.
#[derive(Debug, Clone)]
pub struct Dlq {
    client: HeraldClient,
}

fn header(hm: &HeaderMap, name: &str) -> String {
    hm.get(name)
        .map(|v| v.as_str().to_string())
        .unwrap_or_default()
}

fn entry(seq: u64, subject: &str, headers: HeaderMap, payload: Bytes) -> DlqEntry {
    DlqEntry {
        seq,
        subject: subject.strip_prefix("dlq.").unwrap_or(subject).to_string(),
        reason: header(&headers, h::DLQ_REASON),
        error: header(&headers, h::DLQ_ERROR),
        consumer: header(&headers, h::DLQ_CONSUMER),
        stream: header(&headers, h::DLQ_STREAM),
        stream_seq: header(&headers, h::DLQ_SEQ).parse().unwrap_or(0),
        deliveries: header(&headers, h::DLQ_DELIVERIES).parse().unwrap_or(0),
        time: header(&headers, h::DLQ_TIME),
        headers,
        payload,
    }
}

impl Dlq {
    /// A DLQ reader over `client`.
    pub fn new(client: HeraldClient) -> Self {
        Dlq { client }
    }

    async fn stream(&self) -> Result<jetstream::stream::Stream, DlqError> {
        self.client
            .jetstream()
            .get_stream(DLQ_STREAM)
            .await
            .map_err(api)
    }

    /// One entry by DLQ sequence.
    pub async fn show(&self, seq: u64) -> Result<DlqEntry, DlqError> {
        let stream = self.stream().await?;
        let raw = stream.get_raw_message(seq).await.map_err(|e| {
            if not_found(&e) {
                DlqError::NotFound(seq)
            } else {
                api(e)
            }
        })?;
        Ok(entry(seq, &raw.subject, raw.headers, raw.payload))
    }

    /// Every entry matching `filter`, oldest first (reads the stream with an ephemeral
    /// ordered consumer, bounded by the stream's last sequence at call time).
    pub async fn list(&self, filter: &DlqFilter) -> Result<Vec<DlqEntry>, DlqError> {
        let mut stream = self.stream().await?;
        let info = stream.info().await.map_err(api)?;
        let (count, last) = (info.state.messages, info.state.last_sequence);
        let mut out = Vec::new();
        if count == 0 {
            return Ok(out);
        }
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: "dlq.>".into(),
                ..Default::default()
            })
            .await
            .map_err(api)?;
        let mut msgs = consumer.messages().await.map_err(api)?;
        loop {
            let next = tokio::time::timeout(Duration::from_secs(5), msgs.next()).await;
            let Ok(Some(Ok(m))) = next else { break };
            let seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
            let e = entry(
                seq,
                m.subject.as_str(),
                m.headers.clone().unwrap_or_default(),
                m.payload.clone(),
            );
            if filter.matches(&e) {
                out.push(e);
            }
            if seq >= last {
                break;
            }
        }
        Ok(out)
    }

    /// The replay message id of an entry: `replay:<Herald-Dlq-Id>` (random, written when
    /// the entry was dead-lettered). Entries written before that header existed fall back
    /// to their sequence and dead-letter time, which a recreated DLQ stream never repeats.
    pub fn replay_id(e: &DlqEntry) -> String {
        match e.headers.get(DLQ_ID) {
            Some(id) if !id.as_str().trim().is_empty() => format!("replay:{}", id.as_str()),
            _ => format!("replay:{}:{}", e.seq, e.time),
        }
    }

    /// Republishes entry `seq` to its original subject with a new message id, then deletes
    /// it from the DLQ (only after the republish is acknowledged). When another run got
    /// there first the result is [`DlqError::AlreadyReplayed`] and nothing was sent twice.
    pub async fn replay(&self, seq: u64, dry_run: bool) -> Result<Replayed, DlqError> {
        let e = self.show(seq).await?;
        let message_id = Self::replay_id(&e);
        if dry_run {
            self.verify(&e).await?;
            return Ok(Replayed {
                dlq_seq: seq,
                subject: e.subject,
                consumer: e.consumer,
                new_seq: 0,
                message_id,
            });
        }
        self.verify(&e).await?;
        let ack = self.republish(&e, &message_id).await?;
        match self.remove(seq).await {
            Ok(()) => {}
            Err(DlqError::NotFound(_)) => return Err(DlqError::AlreadyReplayed(seq)),
            Err(other) => return Err(other),
        }
        Ok(Replayed {
            dlq_seq: seq,
            subject: e.subject,
            consumer: e.consumer,
            new_seq: ack,
            message_id,
        })
    }

    /// Step one of a replay, exposed for crash tests: republish without removing.
    /// The event goes to the replay subject of the consumer that dead-lettered it, with
    /// `Herald-Replay-Of` (the DLQ sequence), `Herald-Replay-For` (that consumer) and
    /// `Herald-Replay-Subject` (the original subject). Returns its sequence in the stream
    /// that stored it.
    pub async fn republish(&self, e: &DlqEntry, message_id: &str) -> Result<u64, DlqError> {
        let by_reference = e
            .headers
            .get(DLQ_PAYLOAD)
            .is_some_and(|v| v.as_str() == "reference");
        let payload = if by_reference {
            self.original_payload(e).await?
        } else {
            e.payload.clone()
        };
        let mut hm = HeaderMap::new();
        for (name, values) in e.headers.iter() {
            let n: &str = name.as_ref();
            if n.starts_with("Herald-Dlq-")
                || n.starts_with("Nats-")
                || n.starts_with("Herald-Replay-")
                || n == crate::poison::RAW_HEADERS
            {
                continue;
            }
            for v in values {
                hm.append(n, v.as_str());
            }
        }
        hm.insert(h::MSG_ID, message_id);
        hm.insert("Herald-Replay-Of", e.seq.to_string().as_str());
        let target = if e.consumer.is_empty() {
            e.subject.clone()
        } else {
            hm.insert(REPLAY_FOR, e.consumer.as_str());
            hm.insert(crate::replay::REPLAY_SUBJECT, e.subject.as_str());
            crate::replay::replay_subject(&e.consumer)
        };
        let ack = self
            .client
            .jetstream()
            .send_publish(target, PublishMessage::build().payload(payload).headers(hm))
            .await
            .map_err(api)?
            .await
            .map_err(api)?;
        Ok(ack.sequence)
    }

    /// Checks an entry against its source before it is replayed: the original stream must
    /// still hold, at the entry's sequence, a message on the entry's subject with the
    /// entry's payload. Any service may publish on the `dlq.` subjects of what it consumes,
    /// so an entry is only a claim; this makes a made-up entry (a subject its writer may
    /// not publish, a payload never stored) unreplayable. Read through the message-get
    /// API, so originals the client cannot decode are checked too.
    pub async fn verify(&self, e: &DlqEntry) -> Result<(), DlqError> {
        let refuse = |why: String| DlqError::Unverified { seq: e.seq, why };
        if e.stream.is_empty() || e.stream_seq == 0 {
            return Err(refuse("it names no source stream and sequence".into()));
        }
        let stored = crate::poison::get_stored(&self.client, &e.stream, e.stream_seq)
            .await
            .map_err(|x| refuse(format!("cannot read {} sequence {}: {x}", e.stream, e.stream_seq)))?
            .ok_or_else(|| {
                refuse(format!(
                    "{} holds no message at sequence {} (never stored, or expired by the stream's retention)",
                    e.stream, e.stream_seq
                ))
            })?;
        // A replay dead-lettered again: stored on its consumer's replay subject, with the
        // original subject in a header only the operator can have written.
        let stored_subject = if e.stream == crate::REPLAY_STREAM {
            if stored.subject != crate::replay::replay_subject(&e.consumer) {
                return Err(refuse(format!(
                    "{} sequence {} is on {}, a replay for another consumer than {}",
                    e.stream, e.stream_seq, stored.subject, e.consumer
                )));
            }
            crate::poison::header_value(&stored.header_block, crate::replay::REPLAY_SUBJECT)
                .unwrap_or_default()
        } else {
            stored.subject.clone()
        };
        if stored_subject != e.subject {
            return Err(refuse(format!(
                "{} sequence {} is on {}, not {}",
                e.stream, e.stream_seq, stored_subject, e.subject
            )));
        }
        let by_reference = e
            .headers
            .get(DLQ_PAYLOAD)
            .is_some_and(|v| v.as_str() == "reference");
        if !by_reference && stored.payload != e.payload {
            return Err(refuse(format!(
                "its payload differs from {} sequence {}",
                e.stream, e.stream_seq
            )));
        }
        Ok(())
    }

    /// The payload of a by-reference entry, read from its source stream.
    async fn original_payload(&self, e: &DlqEntry) -> Result<Bytes, DlqError> {
        let gone = |detail: String| DlqError::OriginalGone {
            seq: e.seq,
            stream: e.stream.clone(),
            stream_seq: e.stream_seq,
            detail,
        };
        let stream = self
            .client
            .jetstream()
            .get_stream(&e.stream)
            .await
            .map_err(|x| gone(x.to_string()))?;
        let raw = stream
            .get_raw_message(e.stream_seq)
            .await
            .map_err(|x| gone(x.to_string()))?;
        let expected = if e.stream == crate::REPLAY_STREAM {
            crate::replay::replay_subject(&e.consumer)
        } else {
            e.subject.clone()
        };
        if raw.subject.as_str() != expected {
            return Err(gone(format!(
                "sequence {} now holds {}, not {}",
                e.stream_seq, raw.subject, expected
            )));
        }
        Ok(raw.payload)
    }

    /// Deletes entry `seq` from the DLQ.
    pub async fn remove(&self, seq: u64) -> Result<(), DlqError> {
        let stream = self.stream().await?;
        stream.delete_message(seq).await.map_err(|e| {
            if not_found(&e) {
                DlqError::NotFound(seq)
            } else {
                api(e)
            }
        })?;
        Ok(())
    }

    /// Replays every entry matching `filter`; see [`Dlq::replay_report`]. Refused entries
    /// are logged and left in place.
    pub async fn replay_all(
        &self,
        filter: &DlqFilter,
        dry_run: bool,
    ) -> Result<Vec<Replayed>, DlqError> {
        Ok(self.replay_report(filter, dry_run).await?.replayed)
    }

    /// Replays every entry matching `filter`. Entries another run replayed meanwhile are
    /// skipped (not an error); entries that fail [`Dlq::verify`] are refused, reported and
    /// left in place; in a dry run each original event (source stream and sequence) is
    /// counted once even when several consumers dead-lettered it.
    pub async fn replay_report(
        &self,
        filter: &DlqFilter,
        dry_run: bool,
    ) -> Result<ReplayReport, DlqError> {
        let mut report = ReplayReport::default();
        let mut originals = std::collections::HashSet::new();
        for e in self.list(filter).await? {
            if dry_run && e.stream_seq > 0 && !originals.insert((e.stream.clone(), e.stream_seq)) {
                continue;
            }
            match self.replay(e.seq, dry_run).await {
                Ok(r) => report.replayed.push(r),
                Err(DlqError::AlreadyReplayed(seq)) | Err(DlqError::NotFound(seq)) => {
                    tracing::warn!(seq, "dead letter already replayed by another run; skipped");
                    report.already_replayed.push(seq);
                }
                Err(refused @ DlqError::Unverified { .. }) => {
                    tracing::warn!(error = %refused, "dead letter refused");
                    report.refused.push((e.seq, refused.to_string()));
                }
                Err(other) => return Err(other),
            }
        }
        Ok(report)
    }
}

/// What [`Dlq::replay_report`] did.
#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    /// Entries replayed (or, in a dry run, that would be).
    pub replayed: Vec<Replayed>,
    /// Entries another run replayed first.
    pub already_replayed: Vec<u64>,
    /// Entries refused by [`Dlq::verify`]: (DLQ sequence, why).
    pub refused: Vec<(u64, String)>,
}
