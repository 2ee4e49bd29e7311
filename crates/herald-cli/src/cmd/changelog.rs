//! `herald changelog`: every schema version's changes, derived from the files.

use crate::{Global, Outcome};

/// Print, per schema, every version with its classified changes (breaking first), in Markdown.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Generated from the schema files every time, never kept by hand:\n  herald changelog > docs/schema-changelog.md\n\n\
Contracts: --contracts DIR, else the nearest contracts/catalog.toml from the current directory upwards, else \
the contracts built into herald (named in a comment on the first line)."
)]
pub struct Args {
    /// Only this schema.
    name: Option<String>,
}

/// Runs `herald changelog`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    let catalog = global.catalog()?;
    if let Some(name) = &args.name {
        if !catalog.schemas().contains_key(name) {
            anyhow::bail!("unknown schema `{name}` (see `herald catalog`)");
        }
    }
    let text = herald_contracts::versions::changelog(&catalog, args.name.as_deref())?;
    crate::outln!(
        "<!-- contracts: {} -->",
        global.contracts_source().describe()
    );
    crate::out!("{text}");
    Ok(Outcome::Ok)
}
