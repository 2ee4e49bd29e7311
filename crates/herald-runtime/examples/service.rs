//! A publish-and-consume service in one `main`: model-gateway meters usage,
//! and analytics-service counts it with the catalog consumer `usage`.
//!
//! Run against a server whose streams exist (`herald streams apply`):
//! `NATS_URL=nats://127.0.0.1:4222 cargo run -p herald-runtime --example service -- 1000`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use herald_contracts::events::{Cost, UsageEvent, UsageType};
use herald_contracts::Catalog;
use herald_runtime::{ConnectConfig, Service};
use uuid::Uuid;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args().nth(1).map_or(Ok(1000), |a| a.parse())?;
    let (catalog, env) = (Arc::new(Catalog::embedded()?), ConnectConfig::from_env);
    let gateway = Service::connect(catalog.clone(), "model-gateway", env()).await?;
    let mut analytics = Service::connect(catalog, "analytics-service", env()).await?;

    let (counted, stop) = (Arc::new(AtomicU64::new(0)), analytics.shutdown_handle());
    let c = counted.clone();
    analytics.consumer("usage", move |delivery| {
        let (c, stop) = (c.clone(), stop.clone());
        async move {
            let _usage: UsageEvent = delivery.event()?;
            if c.fetch_add(1, Ordering::SeqCst) + 1 == n {
                stop.trigger();
            }
            Ok(())
        }
    })?;
    let consuming = tokio::spawn(analytics.run());

    for _ in 0..n {
        gateway.publisher().publish(&inference(1500.0)).await?;
    }
    let report = consuming.await??;
    let counted = counted.load(Ordering::SeqCst);
    println!("published {n}, counted {counted}: {report:?}");
    Ok(())
}

/// One model inference of `tokens` tokens by a new user of a new tenant.
fn inference(tokens: f64) -> UsageEvent {
    let (tenant, user) = (Uuid::new_v4(), Uuid::new_v4());
    let cost = Cost::new(tokens * 0.00002, "USD");
    UsageEvent::new(
        "model-gateway",
        tenant,
        user,
        UsageType::ModelInference,
        "tokens",
        tokens,
        cost,
    )
}
