//! Watching a subject live (`herald tail`): an ephemeral ordered consumer that
//! validates each event and reports, rather than hides, the ones that fail.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures::{Stream, StreamExt};

use herald_runtime::connection::HeraldClient;
use herald_runtime::consumer::stream_for_filter;
use herald_runtime::contracts::{Contracts, ValidationError};
use herald_runtime::headers as h;

/// Where the tail starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailStart {
    /// Only events published from now on.
    New,
    /// Everything stored.
    All,
    /// Roughly the last N events of the stream (fewer when the filter is narrower).
    Last(u64),
    /// Events stored in the last duration.
    Since(Duration),
}

/// One event seen by the tail.
#[derive(Debug, Clone)]
pub struct TailEvent {
    /// Stream sequence.
    pub seq: u64,
    /// Subject.
    pub subject: String,
    /// Headers.
    pub headers: HeaderMap,
    /// Payload.
    pub payload: Bytes,
    /// `Ok(schema id)` or why it fails its contract.
    pub validation: Result<String, ValidationError>,
    /// Events matching the filter stored after this one when it was delivered.
    pub pending: u64,
}

/// Why the tail could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot tail {filter}: {detail}")]
pub struct TailError {
    /// The filter.
    pub filter: String,
    /// Why.
    pub detail: String,
}

/// Opens a tail on `filter`: follows it until the stream is dropped.
pub async fn tail(
    client: &HeraldClient,
    contracts: Arc<dyn Contracts>,
    filter: &str,
    start: TailStart,
) -> Result<impl Stream<Item = TailEvent>, TailError> {
    Ok(open(client, contracts, filter, start).await?.1)
}

/// The events stored on `filter` from `start`, then the end (as `nats stream view`):
/// ends after the event that was the last stored when it was delivered, at once when
/// nothing is stored.
pub async fn stored(
    client: &HeraldClient,
    contracts: Arc<dyn Contracts>,
    filter: &str,
    start: TailStart,
) -> Result<impl Stream<Item = TailEvent>, TailError> {
    let (pending, events) = open(client, contracts, filter, start).await?;
    // Ends without asking for another event once the last stored one is out (or at once
    // when nothing is stored): asking would wait for the next publish.
    let events = Box::pin(events);
    Ok(futures::stream::unfold(
        (events, pending == 0),
        |(mut events, done)| async move {
            if done {
                return None;
            }
            let ev = events.next().await?;
            let last = ev.pending == 0;
            Some((ev, (events, last)))
        },
    ))
}

/// The tail's ordered consumer: how many events it had pending when created, and its events.
async fn open(
    client: &HeraldClient,
    contracts: Arc<dyn Contracts>,
    filter: &str,
    start: TailStart,
) -> Result<(u64, impl Stream<Item = TailEvent>), TailError> {
    let mark = client.permission_violation_mark();
    // A refused request looks like a timeout to the client: say what really happened.
    let err = |d: String| TailError {
        filter: filter.to_string(),
        detail: match client.permission_violation_since(mark) {
            Some(v) => format!("permission denied: {v}"),
            None => d,
        },
    };
    let stream_name = stream_for_filter(contracts.as_ref(), filter)
        .ok_or_else(|| err("no stream in the catalog captures it".into()))?;
    let mut stream = client
        .jetstream()
        .get_stream(&stream_name)
        .await
        .map_err(|e| err(e.to_string()))?;
    let deliver_policy = match start {
        TailStart::New => DeliverPolicy::New,
        TailStart::All => DeliverPolicy::All,
        TailStart::Last(n) => {
            let last = stream
                .info()
                .await
                .map_err(|e| err(e.to_string()))?
                .state
                .last_sequence;
            DeliverPolicy::ByStartSequence {
                start_sequence: last.saturating_sub(n.saturating_sub(1)).max(1),
            }
        }
        TailStart::Since(d) => {
            let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as i128
                - d.as_nanos() as i128;
            let start_time =
                async_nats::datetime::from_nanos(nanos.max(0)).map_err(|e| err(e.to_string()))?;
            DeliverPolicy::ByStartTime { start_time }
        }
    };
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: filter.to_string(),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| err(e.to_string()))?;
    let pending = consumer.cached_info().num_pending;
    let msgs = consumer.messages().await.map_err(|e| err(e.to_string()))?;
    let events = msgs.filter_map(move |m| {
        let contracts = contracts.clone();
        async move {
            let m = m.ok()?;
            let (seq, pending) = m
                .info()
                .map(|i| (i.stream_sequence, i.pending))
                .unwrap_or((0, 0));
            let headers = m.headers.clone().unwrap_or_default();
            let hint = headers
                .get(h::CE_DATASCHEMA)
                .map(|v| v.as_str().to_string());
            let validation = contracts
                .validate(m.subject.as_str(), hint.as_deref(), &m.payload)
                .map(|v| v.schema_id);
            Some(TailEvent {
                seq,
                subject: m.subject.to_string(),
                headers,
                payload: m.payload.clone(),
                validation,
                pending,
            })
        }
    });
    Ok((pending, events))
}
