//! Publish typed events as one service: each goes to the subject its type
//! belongs on, validated, with its id as the idempotency key.
//!
//! `NATS_URL=nats://127.0.0.1:4222 cargo run -p herald-runtime --example publish`

use std::sync::Arc;

use herald_contracts::events::{ErrorInfo, IngestDocumentEvent};
use herald_contracts::Catalog;
use herald_runtime::{ConnectConfig, Service, ServicePublishError};
use uuid::Uuid;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let catalog = Arc::new(Catalog::embedded()?);
    let svc = Service::connect(catalog, "ingestion-service", ConnectConfig::from_env()).await?;
    let tenant = Uuid::new_v4();

    let done = IngestDocumentEvent::processed("ingestion-service", tenant, Uuid::new_v4());
    let receipt = svc.publisher().publish(&done).await?;
    println!(
        "{} -> {} #{}",
        done.subject(),
        receipt.stream,
        receipt.sequence
    );

    let error = ErrorInfo::new("parse_error", "not a PDF");
    let failed = IngestDocumentEvent::failed("ingestion-service", tenant, Uuid::new_v4(), error);
    let receipt = svc.publisher().publish(&failed).await?;
    println!(
        "{} -> {} #{}",
        failed.subject(),
        receipt.stream,
        receipt.sequence
    );

    // The same event again is a duplicate: JetStream drops it by its id.
    let again = svc.publisher().publish(&failed).await?;
    println!("republished: duplicate = {}", again.duplicate);

    // A subject this service does not produce is refused before it is sent.
    let step = herald_contracts::events::OrchestratorStep::started(
        "ingestion-service",
        Uuid::new_v4(),
        "parse",
    );
    match svc.publisher().publish(&step).await {
        Err(e @ ServicePublishError::NotAProducer { .. }) => println!("refused: {e}"),
        other => println!("unexpected: {other:?}"),
    }
    Ok(())
}
