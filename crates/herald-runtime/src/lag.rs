//! Consumer lag: how far behind each durable consumer is.
//!
//! The same numbers feed `herald lag` and the monitoring module's
//! `set_consumer_lag` gauge.

use futures::TryStreamExt;

use crate::connection::HeraldClient;

/// Lag of one consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerLag {
    /// Stream.
    pub stream: String,
    /// Consumer (durable) name.
    pub consumer: String,
    /// Messages matching the filter not yet delivered.
    pub pending: u64,
    /// Delivered, not yet acknowledged.
    pub ack_pending: usize,
    /// Delivered more than once and still unacknowledged.
    pub redelivered: usize,
    /// Pull requests waiting.
    pub waiting: usize,
    /// Last delivery (RFC 3339), if any.
    pub last_active: Option<String>,
    /// No durable name: a short-lived consumer (`herald tail`, `herald dlq`, an ordered
    /// consumer) that the server removes once its client is gone.
    pub ephemeral: bool,
    /// The consumer's subject filter(s).
    pub filters: Vec<String>,
}

/// Why lag could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read consumer lag: {0}")]
pub struct LagError(pub String);

/// Lag of every consumer on every stream (or only `stream`), sorted by stream and consumer.
pub async fn lag(
    client: &HeraldClient,
    stream: Option<&str>,
) -> Result<Vec<ConsumerLag>, LagError> {
    let js = client.jetstream();
    let names: Vec<String> = match stream {
        Some(s) => vec![s.to_string()],
        None => js
            .stream_names()
            .try_collect()
            .await
            .map_err(|e| LagError(e.to_string()))?,
    };
    let mut out = Vec::new();
    for name in names {
        let s = js
            .get_stream(&name)
            .await
            .map_err(|e| LagError(e.to_string()))?;
        let infos: Vec<async_nats::jetstream::consumer::Info> =
            s.consumers()
                .try_collect()
                .await
                .map_err(|e| LagError(e.to_string()))?;
        for i in infos {
            let row = ConsumerLag {
                stream: name.clone(),
                consumer: i.name.clone(),
                pending: i.num_pending,
                ack_pending: i.num_ack_pending,
                redelivered: i.num_redelivered,
                waiting: i.num_waiting,
                last_active: i.delivered.last_active.and_then(|t| {
                    chrono::DateTime::<chrono::Utc>::from_timestamp(
                        t.unix_timestamp(),
                        t.nanosecond(),
                    )
                    .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                }),
                ephemeral: i.config.durable_name.is_none(),
                filters: match i.config.filter_subject.as_str() {
                    "" => i.config.filter_subjects.clone(),
                    one => vec![one.to_string()],
                },
            };
            crate::metrics::set_consumer_lag(
                &row.stream,
                &row.consumer,
                row.pending,
                row.ack_pending as u64,
            );
            out.push(row);
        }
    }
    out.sort_by(|a, b| (&a.stream, &a.consumer).cmp(&(&b.stream, &b.consumer)));
    Ok(out)
}
