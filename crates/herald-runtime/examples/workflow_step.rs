//! A workflow step: `Workflow::step` emits `orchestrator.step.started`, runs
//! the work, then `completed` (with its duration) or `failed` (with the error),
//! all correlated by the workflow id.
//!
//! `NATS_URL=nats://127.0.0.1:4222 cargo run -p herald-runtime --example workflow_step`

use std::sync::Arc;

use herald_contracts::Catalog;
use herald_runtime::flows::Workflow;
use herald_runtime::{ConnectConfig, HeraldClient, Publisher, PublisherConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let catalog = Arc::new(Catalog::embedded()?);
    let client = HeraldClient::connect(ConnectConfig::from_env().name("orchestrator")).await?;
    let publisher = Publisher::new(client, catalog, PublisherConfig::new("orchestrator"));

    let workflow = Workflow::new(publisher);
    let words = workflow
        .step("count-words", "orchestrator", || async {
            Ok::<_, (String, String)>(42)
        })
        .await?;
    println!("workflow {}: counted {words} words", workflow.id());

    let failed = workflow
        .step("translate", "orchestrator", || async {
            Err::<(), _>((
                "unsupported_language".to_owned(),
                "no model for Klingon".to_owned(),
            ))
        })
        .await;
    println!(
        "workflow {}: translate -> {:?}",
        workflow.id(),
        failed.err()
    );
    Ok(())
}
