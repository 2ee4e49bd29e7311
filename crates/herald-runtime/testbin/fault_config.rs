//! The consumer settings of the fault-injection scenarios, shared by
//! `tests/faults.rs` and the `herald-fault-child` process it kills.

use std::time::Duration;

use herald_runtime::{ConsumerConfig, DedupeStore};

/// The durable every scenario consumes with.
pub const FILTER: &str = "usage.metered.>";

/// Generous retries and a short ack wait: the faults make deliveries fail and
/// time out on purpose, and every event must still be handled once.
pub fn consumer_config(dedupe: DedupeStore) -> ConsumerConfig {
    ConsumerConfig::new("billing-service", "usage", FILTER)
        .dedupe(dedupe)
        .concurrency(32)
        .ack_wait(Duration::from_secs(3))
        .max_deliver(1000)
        .backoff(vec![Duration::from_millis(100), Duration::from_millis(500)])
        .shutdown_grace(Duration::from_secs(10))
}
