//! Request-response over JetStream: the orchestrator asks a worker to run a
//! step and waits for the correlated answer; both events stay in the stream.
//!
//! `NATS_URL=nats://127.0.0.1:4222 cargo run -p herald-runtime --example request_response`

use std::sync::Arc;
use std::time::Duration;

use herald_contracts::events::OrchestratorStep;
use herald_contracts::Catalog;
use herald_runtime::flows::{request, respond};
use herald_runtime::{
    ConnectConfig, Consumer, ConsumerConfig, Contracts, HandlerError, HeraldClient, Publisher,
    PublisherConfig, Shutdown,
};
use uuid::Uuid;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let contracts: Arc<dyn Contracts> = Arc::new(Catalog::embedded()?);
    let client = HeraldClient::connect(ConnectConfig::from_env().name("orchestrator")).await?;
    let publisher = Publisher::new(
        client.clone(),
        contracts.clone(),
        PublisherConfig::new("orchestrator"),
    );

    // The worker: answers each started step with a completed one.
    let worker = Consumer::new(
        client.clone(),
        contracts,
        ConsumerConfig::new("orchestrator", "step-worker", "orchestrator.step.started"),
    )?;
    let shutdown = Shutdown::new();
    let answer = publisher.clone();
    let stop = shutdown.clone();
    let running = tokio::spawn(async move {
        let handler = move |asked: herald_runtime::Delivery| {
            let answer = answer.clone();
            async move {
                let step: OrchestratorStep = asked.event()?;
                let done = OrchestratorStep::completed(
                    &step.service_name,
                    step.workflow_id,
                    &step.step_name,
                    12,
                );
                respond(&answer, &asked, &done.subject(), &done)
                    .await
                    .map_err(HandlerError::retry)?;
                Ok(())
            }
        };
        worker.run(handler, stop).await
    });

    let ask = OrchestratorStep::started("orchestrator", Uuid::new_v4(), "summarize");
    let reply = request(&publisher, &ask.subject(), &ask, Duration::from_secs(5)).await?;
    println!(
        "{} answered {} (correlation {})",
        ask.step_name, reply.subject, reply.correlation_id
    );
    shutdown.trigger();
    running.await??;
    Ok(())
}
