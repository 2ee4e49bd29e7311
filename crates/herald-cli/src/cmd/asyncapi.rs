//! `herald asyncapi`: the catalog as an AsyncAPI 3.0 document.

use crate::output::Format;
use crate::{Global, Outcome};

/// Print the catalog as an AsyncAPI 3.0.0 document: a channel per subject, a
/// message per subject with its schema as a draft 2020-12 payload, send and
/// receive operations per producer and consumer.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "YAML by default, JSON with --format json:\n  herald asyncapi > asyncapi.yaml\n  herald asyncapi --format json > asyncapi.json"
)]
pub struct Args {}

/// Runs `herald asyncapi`.
pub fn run(global: &Global, _args: &Args) -> anyhow::Result<Outcome> {
    let catalog = global.catalog()?;
    let doc = herald_docs::asyncapi::document(&catalog)?;
    match global.format {
        Format::Json => crate::output::print_json(&doc)?,
        Format::Text => crate::out!("{}", serde_yaml_ng::to_string(&doc)?),
        Format::Markdown => {
            anyhow::bail!(
                "herald asyncapi prints YAML (the default) or JSON (--format json), not markdown"
            )
        }
    }
    Ok(Outcome::Ok)
}
