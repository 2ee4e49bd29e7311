//! Replays reach only the consumer that dead-lettered the event.
//!
//! Republishing a dead letter to its original subject would hand it to every consumer
//! of that subject again: billing would charge an event a second time because
//! analytics had rejected it, unless billing's duplicate store still remembered it.
//! So `herald dlq replay` sends it instead to `herald.replay.<durable>` on the
//! `HERALD_REPLAY` stream, with the original subject in `Herald-Replay-Subject`. Each
//! consumer reads its own replays through a second durable, `<durable>--replay`, and
//! handles them exactly like its other deliveries (validation, duplicate store,
//! retries, dead-lettering).
//!
//! Only the operator may publish on `herald.replay.>` (see `herald auth generate`),
//! and replay checks every entry against its source first, so a service cannot use a
//! replay subject to inject events or to hide them from other consumers.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;
use tokio::sync::{mpsc, watch};

use crate::connection::HeraldClient;
use crate::consumer::{pull_config, ConsumerConfig};
use crate::{REPLAY_PREFIX, REPLAY_STREAM};

/// `Herald-Replay-Subject`: the subject a replayed event was originally published on.
pub const REPLAY_SUBJECT: &str = "Herald-Replay-Subject";

/// The durable that receives `durable`'s replays.
pub fn replay_durable(durable: &str) -> String {
    format!("{durable}--replay")
}

/// The subject `herald dlq replay` sends `durable`'s replays to.
pub fn replay_subject(durable: &str) -> String {
    format!("{REPLAY_PREFIX}.{durable}")
}

/// The replay durable's configuration: the consumer's own settings (deliveries, ack
/// wait, pending limit) on its replay subject.
pub fn replay_pull_config(c: &ConsumerConfig) -> pull::Config {
    let mut cfg = pull_config(c);
    cfg.durable_name = Some(replay_durable(&c.durable));
    cfg.filter_subject = replay_subject(&c.durable);
    cfg
}

/// Looks up (or creates, where the credentials allow) the replay durable of `c`.
async fn ensure(
    client: &HeraldClient,
    c: &ConsumerConfig,
) -> Result<jetstream::consumer::Consumer<pull::Config>, String> {
    let stream = client
        .jetstream()
        .get_stream(REPLAY_STREAM)
        .await
        .map_err(|e| {
            format!("replay stream {REPLAY_STREAM} unavailable (run `herald streams apply`): {e}")
        })?;
    let name = replay_durable(&c.durable);
    if let Ok(existing) = stream.get_consumer::<pull::Config>(&name).await {
        return Ok(existing);
    }
    stream
        .create_consumer(replay_pull_config(c))
        .await
        .map_err(|e| {
            format!(
                "replay durable {name} missing and could not be created (run `herald streams apply`): {e}"
            )
        })
}

/// Receives `c`'s replays until `stop` turns true (see [`fetch`]). When the replay stream
/// or durable cannot be reached (not provisioned yet, a cluster electing a leader) the
/// consumer runs on without them and this keeps trying, backing off to once every 30 s;
/// the replays wait in the stream meanwhile.
pub(crate) async fn receive(
    client: HeraldClient,
    c: ConsumerConfig,
    tx: mpsc::Sender<jetstream::Message>,
    mut stop: watch::Receiver<bool>,
) {
    let mut delay = Duration::from_secs(1);
    let mut failed = false;
    let consumer = loop {
        match ensure(&client, &c).await {
            Ok(consumer) => break consumer,
            Err(e) => {
                if failed {
                    tracing::debug!(consumer = %c.durable, error = %e, "replays still unavailable");
                } else {
                    tracing::warn!(consumer = %c.durable, error = %e,
                        "replays unavailable; the consumer runs on and keeps trying");
                }
                failed = true;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    };
    if failed {
        tracing::info!(consumer = %c.durable, "replays available again");
    }
    fetch(consumer, c.pull_expires, tx, stop).await
}

/// Pulls the replay durable in small batches and hands each message to the consumer's
/// loop through `tx`, until `stop` turns true. A message it holds when stopping is
/// handed back (NAK) at once.
async fn fetch(
    consumer: jetstream::consumer::Consumer<pull::Config>,
    expires: Duration,
    tx: mpsc::Sender<jetstream::Message>,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let batch = consumer
            .batch()
            .max_messages(16)
            .expires(expires)
            .messages()
            .await;
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "replay pull failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                next = batch.next() => next,
                _ = stop.changed() => break,
            };
            let Some(Ok(msg)) = next else { break };
            let permit = tokio::select! {
                p = tx.reserve() => p.ok(),
                _ = stop.changed() => None,
            };
            match permit {
                Some(p) => p.send(msg),
                None => {
                    let _ = msg.ack_with(jetstream::AckKind::Nak(None)).await;
                    break;
                }
            }
        }
        if *stop.borrow() {
            // Fetched but never handed over: back at once, not after `ack_wait`.
            while let Some(Ok(msg)) = batch.next().await {
                let _ = msg.ack_with(jetstream::AckKind::Nak(None)).await;
            }
        }
    }
}

/// The original subject of a replay message, when the message carries one inside
/// `filter` (the consumer's own filter); `None` for anything else.
pub(crate) fn original_subject(msg: &jetstream::Message, filter: &str) -> Option<String> {
    let s = msg.headers.as_ref()?.get(REPLAY_SUBJECT)?.as_str();
    crate::dlq::subject_matches(filter, s).then(|| s.to_string())
}
