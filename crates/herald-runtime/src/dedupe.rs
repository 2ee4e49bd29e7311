//! Duplicate stores: "has this consumer already processed the event with this key?"
//!
//! The key is the event's identity field in canonical form (UUIDs lower-cased), else a
//! non-blank `Nats-Msg-Id` for events without one (see [`crate::consumer::duplicate_key`]).
//! A delivery whose key is recorded is acked without calling the handler.
//!
//! Guarantees:
//! - [`DedupeStore::memory`] (default): bounded, per process. Suppresses redeliveries
//!   and republished duplicates while the process lives and the key is among the
//!   last `capacity` processed. After a restart the memory is gone: at-least-once.
//! - [`DedupeStore::key_value`]: a JetStream key-value bucket, keys written with
//!   `create` semantics (only the first write of a key succeeds) and expiring after
//!   a configurable time. Durable across restarts and shared by every instance of
//!   the consumer: an event whose handler succeeded and was recorded is never handed
//!   to a handler again within the TTL. The record is written after the handler
//!   succeeds, so a crash between the two allows one more handler call for the
//!   events that were in flight at that moment; handlers whose effect is keyed by
//!   the same idempotency key (a publish with that `Nats-Msg-Id`, an insert keyed by
//!   it) get exactly-once effects.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::kv;

use crate::connection::HeraldClient;

/// Why the durable store failed.
#[derive(Debug, thiserror::Error)]
#[error("duplicate store: {0}")]
pub struct DedupeError(pub String);

#[derive(Debug)]
struct Memory {
    capacity: usize,
    set: HashSet<String>,
    order: VecDeque<String>,
}

/// Where processed keys are remembered. Cheap to clone.
#[derive(Clone)]
pub enum DedupeStore {
    /// No duplicate suppression (JetStream's publish-side window still applies).
    Off,
    /// Bounded in-memory set.
    Memory(Arc<Mutex<MemoryStore>>),
    /// JetStream key-value bucket.
    KeyValue(Arc<kv::Store>),
}

/// The in-memory store's state (opaque).
#[derive(Debug)]
pub struct MemoryStore(Memory);

impl std::fmt::Debug for DedupeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DedupeStore::Off => write!(f, "DedupeStore::Off"),
            DedupeStore::Memory(_) => write!(f, "DedupeStore::Memory"),
            DedupeStore::KeyValue(_) => write!(f, "DedupeStore::KeyValue"),
        }
    }
}

impl Default for DedupeStore {
    fn default() -> Self {
        DedupeStore::memory(100_000)
    }
}

/// How long `streams apply` makes duplicate-store buckets remember a key (the default of
/// `herald consume --dedupe-ttl`).
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

/// Name of the key-value bucket a durable consumer's duplicate store uses
/// (`herald consume --dedupe kv`, `herald streams apply`, `herald auth generate`).
pub fn bucket_for(durable: &str) -> String {
    format!("herald-dedupe-{}", durable.replace('.', "_"))
}

/// Creates bucket `bucket` (its backing stream `KV_<bucket>`) when missing. Services'
/// generated credentials may not create streams (a stream they create could source any
/// other stream), so `herald streams apply` calls this for every catalog consumer.
/// Returns whether it was created.
pub async fn create_bucket(
    client: &HeraldClient,
    bucket: &str,
    ttl: Duration,
    replicas: usize,
) -> Result<bool, DedupeError> {
    use async_nats::jetstream::stream::{Config, DiscardPolicy, StorageType};
    let js = client.jetstream();
    if js.get_stream(format!("KV_{bucket}")).await.is_ok() {
        return Ok(false);
    }
    // The bucket's backing stream, created directly: the same layout
    // `create_key_value` uses, but accepted by nats-server 2.9 too.
    js.get_or_create_stream(Config {
        name: format!("KV_{bucket}"),
        description: Some("herald processed-event keys".into()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age: ttl,
        storage: StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        // Reads go to the stream leader. With direct gets any replica answers, and one
        // that is still catching up (a restarted node) answers "not seen" for a key
        // recorded while it was down: the handler would run a second time.
        allow_direct: false,
        discard: DiscardPolicy::New,
        num_replicas: replicas.max(1),
        max_messages: -1,
        max_bytes: -1,
        max_message_size: -1,
        duplicate_window: ttl.min(Duration::from_secs(120)),
        ..Default::default()
    })
    .await
    .map_err(|e| DedupeError(format!("create bucket {bucket}: {e}")))?;
    Ok(true)
}

/// Key-value keys allow `[-/_=.a-zA-Z0-9]`; anything else is hex-encoded.
fn kv_key(key: &str) -> String {
    let ok = !key.is_empty()
        && !key.starts_with('.')
        && !key.ends_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b));
    if ok && !key.contains("..") {
        key.to_string()
    } else {
        let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
        format!("x_{hex}")
    }
}

impl DedupeStore {
    /// In-memory, remembering the last `capacity` keys.
    pub fn memory(capacity: usize) -> Self {
        DedupeStore::Memory(Arc::new(Mutex::new(MemoryStore(Memory {
            capacity: capacity.max(1),
            set: HashSet::new(),
            order: VecDeque::new(),
        }))))
    }

    /// A durable store in bucket `bucket` (created when missing), entries expiring after `ttl`.
    pub async fn key_value(
        client: &HeraldClient,
        bucket: &str,
        ttl: Duration,
    ) -> Result<Self, DedupeError> {
        Self::key_value_replicated(client, bucket, ttl, 1).await
    }

    /// Like [`DedupeStore::key_value`] with `replicas` copies of the bucket: on a cluster use
    /// the replicas of the stream consumed, or losing one node stalls the consumer until it
    /// comes back.
    pub async fn key_value_replicated(
        client: &HeraldClient,
        bucket: &str,
        ttl: Duration,
        replicas: usize,
    ) -> Result<Self, DedupeError> {
        let js = client.jetstream();
        if let Ok(s) = js.get_key_value(bucket).await {
            return Ok(DedupeStore::KeyValue(Arc::new(s)));
        }
        create_bucket(client, bucket, ttl, replicas).await?;
        let store = js
            .get_key_value(bucket)
            .await
            .map_err(|e| DedupeError(format!("open bucket {bucket}: {e}")))?;
        Ok(DedupeStore::KeyValue(Arc::new(store)))
    }

    /// Whether `key` was recorded as processed.
    pub async fn seen(&self, key: &str) -> Result<bool, DedupeError> {
        match self {
            DedupeStore::Off => Ok(false),
            DedupeStore::Memory(m) => {
                let m = m.lock().unwrap_or_else(|p| p.into_inner());
                Ok(m.0.set.contains(key))
            }
            DedupeStore::KeyValue(s) => s
                .get(kv_key(key))
                .await
                .map(|v| v.is_some())
                .map_err(|e| DedupeError(e.to_string())),
        }
    }

    /// Records `key` as processed. Returns `false` when it already was (the `create` lost).
    pub async fn record(&self, key: &str) -> Result<bool, DedupeError> {
        match self {
            DedupeStore::Off => Ok(true),
            DedupeStore::Memory(m) => {
                let mut m = m.lock().unwrap_or_else(|p| p.into_inner());
                let m = &mut m.0;
                if !m.set.insert(key.to_string()) {
                    return Ok(false);
                }
                m.order.push_back(key.to_string());
                while m.order.len() > m.capacity {
                    if let Some(old) = m.order.pop_front() {
                        m.set.remove(&old);
                    }
                }
                Ok(true)
            }
            DedupeStore::KeyValue(s) => match s.create(kv_key(key), "1".into()).await {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(DedupeError(e.to_string())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_is_bounded() {
        let s = DedupeStore::memory(2);
        assert!(s.record("a").await.unwrap());
        assert!(!s.record("a").await.unwrap());
        assert!(s.record("b").await.unwrap());
        assert!(s.record("c").await.unwrap());
        assert!(!s.seen("a").await.unwrap());
        assert!(s.seen("b").await.unwrap() && s.seen("c").await.unwrap());
    }

    #[test]
    fn kv_keys_are_sanitized() {
        assert_eq!(kv_key("550e8400-e29b"), "550e8400-e29b");
        assert_eq!(kv_key("a:b"), "x_613a62");
    }
}
