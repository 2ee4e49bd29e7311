//! `herald export --bundle`: schemas for every language.

use std::path::PathBuf;

use crate::{Global, Outcome};

/// Write one self-contained JSON Schema file per schema version: every
/// referenced schema embedded under `$defs` with its `$id`, so validators and
/// code generators in other languages need no resolver.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Files are <DIR>/<Schema>/<version>.json, like contracts/schemas/:\n  herald export --bundle bundles\n  datamodel-codegen --input bundles/UsageEvent/1.1.0.json --input-file-type jsonschema --output usage_event.py"
)]
pub struct Args {
    /// Directory to write the bundles into (created if missing).
    #[arg(long, value_name = "DIR")]
    bundle: PathBuf,
}

/// Runs `herald export`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    let catalog = global.catalog()?;
    let written = herald_docs::bundle::export(&catalog, &args.bundle)?;
    for path in &written {
        crate::outln!("{}", path.display());
    }
    Ok(Outcome::Ok)
}
