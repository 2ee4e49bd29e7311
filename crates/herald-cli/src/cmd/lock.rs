//! `herald lock`: record new schema versions as released.

use herald_contracts::versions::{lock_update, LOCK_FILE};

use crate::output::{print_json, Format};
use crate::{Global, Outcome};

/// Record every new schema version in contracts/schemas.lock with its content hash.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Released versions are immutable: once locked, editing or deleting a version file makes \
`herald check` fail. To change a schema, add a new version file, then run `herald lock`.\n\n\
Contracts: --contracts DIR, else the nearest contracts/catalog.toml from the current directory upwards \
(the same rule as `herald check`).\n\n\
Exit codes: 0 lock up to date or updated, 1 a released version was edited or deleted (nothing written; \
with --check: versions are missing from the lock), 2 I/O error."
)]
pub struct Args {
    /// Only report what would be recorded; write nothing.
    #[arg(long)]
    check: bool,
}

/// Runs `herald lock`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    let dir = global.contracts_dir()?;
    let catalog = herald_contracts::Catalog::load(&dir)?;
    let update = lock_update(&catalog).map_err(anyhow::Error::msg)?;
    let refused = !update.edited.is_empty() || !update.removed.is_empty();
    let path = dir.join(LOCK_FILE);
    let write = !refused && !args.check && !update.added.is_empty();
    if write {
        std::fs::write(&path, update.lock.render())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    match global.format {
        Format::Json => print_json(&serde_json::json!({
            "contracts": global.contracts_source().to_json(),
            "written": write,
            "added": update.added,
            "edited": update.edited,
            "removed": update.removed,
        }))?,
        _ => {
            crate::outln!("contracts: {}", global.contracts_source().describe());
            for e in update.edited.iter().chain(&update.removed) {
                crate::outln!("refused: {e}");
            }
            for a in &update.added {
                let verb = if write { "recorded" } else { "to record" };
                crate::outln!("{verb}: {a}");
            }
            if update.added.is_empty() && !refused {
                crate::outln!("{} is up to date", path.display());
            }
        }
    }
    Ok(if refused || (args.check && !update.added.is_empty()) {
        Outcome::Failed
    } else {
        Outcome::Ok
    })
}
