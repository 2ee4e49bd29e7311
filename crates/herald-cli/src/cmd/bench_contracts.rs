//! `herald bench contracts`: `check`, validating one event, and its peak RSS, on
//! synthetic contracts of growing size (see `herald_bench::contracts`).

use std::path::Path;

use anyhow::Context;
use herald_bench::contracts::{generate, measure, ScaleRow};

use crate::output::{print_json, table, Format};
use crate::{outln, Global, Outcome};

/// Runs `herald bench contracts --schemas N,M,…`.
pub fn run(global: &Global, schemas: &[usize], keep: Option<&Path>) -> anyhow::Result<Outcome> {
    if schemas.is_empty() {
        anyhow::bail!("--schemas needs at least one size");
    }
    let exe = std::env::current_exe().context("cannot find the herald binary")?;
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let work = keep.unwrap_or(temp.path());
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let mut rows: Vec<ScaleRow> = Vec::new();
    for &n in schemas {
        let dir = work.join(format!("contracts-{n}"));
        if dir.exists() {
            anyhow::bail!("{} exists: choose another --keep directory", dir.display());
        }
        let generated = generate(&dir, n)?;
        eprintln!(
            "{} schemas ({} versions) generated; measuring",
            generated.schemas, generated.versions
        );
        rows.push(measure(&dir, generated, Some(&exe))?);
        if keep.is_none() {
            // The next size is written from scratch; keep the disk use to one set.
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot remove {}", dir.display()))?;
        }
    }
    let rss = |r: &ScaleRow| {
        r.validate_rss_mib
            .map_or_else(|| "-".to_string(), |m| format!("{m:.0} MiB"))
    };
    match global.format {
        Format::Json => print_json(&serde_json::json!({ "build": build, "rows": rows }))?,
        Format::Markdown => {
            outln!("| schemas (versions) | `check` | `validate` one event | RSS |");
            outln!("|---|---:|---:|---:|");
            for r in &rows {
                outln!(
                    "| {} ({}) | {:.2} s | {:.3} s | {} |",
                    r.schemas,
                    r.versions,
                    r.check_secs,
                    r.validate_secs,
                    rss(r)
                );
            }
            outln!();
            outln!("{build} build; `check` and `validate` in-process, RSS of `herald validate` of one event");
        }
        Format::Text => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        format!("{} ({})", r.schemas, r.versions),
                        format!("{:.2} s", r.check_secs),
                        format!("{:.3} s", r.validate_secs),
                        rss(r),
                    ]
                })
                .collect();
            outln!(
                "{}",
                table(
                    &["SCHEMAS (VERSIONS)", "CHECK", "VALIDATE ONE", "RSS"],
                    &cells
                )
            );
            outln!("{build} build; `check` and `validate` in-process, RSS of `herald validate` of one event");
        }
    }
    Ok(Outcome::Ok)
}
