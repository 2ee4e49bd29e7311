//! Heartbeats: each running service instance announces itself on
//! `herald.heartbeat.<service>` so `herald watch` can tell a dead service from
//! a quiet one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_contracts::events::Heartbeat;
use uuid::Uuid;

use crate::consumer::Shutdown;
use crate::publisher::{Publish, Publisher};

/// The subject prefix of herald-internal heartbeats (`herald.heartbeat.>`).
pub const HEARTBEAT_PREFIX: &str = "herald.heartbeat.";

/// The subject `service` heartbeats on: `herald.heartbeat.<service>`.
pub fn heartbeat_subject(service: &str) -> String {
    format!("{HEARTBEAT_PREFIX}{service}")
}

/// A heartbeat from `instance_id` of `service`, sent at `now` by an
/// instance started at `started_at`, announcing the next one after
/// `interval` (clamped to the schema's 1 ms minimum).
pub fn new_heartbeat(
    service: &str,
    instance_id: Uuid,
    interval: Duration,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Heartbeat {
    let uptime = now
        .signed_duration_since(started_at)
        .to_std()
        .unwrap_or_default();
    Heartbeat {
        schema: None,
        heartbeat_id: Uuid::new_v4(),
        timestamp: now,
        service_name: service.to_owned(),
        instance_id,
        interval_ms: u64::try_from(interval.as_millis())
            .unwrap_or(u64::MAX)
            .max(1),
        version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        uptime_s: Some(uptime.as_secs_f64()),
        metadata: None,
        extra: serde_json::Map::new(),
    }
}

/// Publishes a heartbeat for the publisher's service every `interval` until
/// `shutdown`. A failed beat is logged and tried again at the next tick; the
/// monitor allows three missed intervals before calling a service down.
pub fn spawn(
    publisher: Publisher,
    interval: Duration,
    shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    let service = publisher.service().to_owned();
    let instance = Uuid::new_v4();
    let started_at = Utc::now();
    let subject = heartbeat_subject(&service);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.requested() => return,
            }
            let beat = new_heartbeat(&service, instance, interval, started_at, Utc::now());
            let id = beat.heartbeat_id.to_string();
            if let Err(e) = publisher
                .publish(&subject, &beat, Publish::build().message_id(id))
                .await
            {
                tracing::warn!(%service, error = %e, "heartbeat not sent");
            }
        }
    })
}
