//! `herald check`: the contract test suite, for CI and for pull requests.

use crate::output::{print_json, Format, Style};
use crate::{Global, Outcome};

/// Run every contract check and print a summary.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Checks: schemas valid against the 2020-12 metaschema; $ids unique and matching their paths; \
every $ref resolves offline; every subject maps to a schema and matches its topic; every producer and consumer \
is declared; valid examples validate and invalid ones fail for their stated reason.\n\n\
Contracts: --contracts DIR, else the nearest contracts/catalog.toml from the current directory upwards, \
else the contracts built into herald; the first line of output (or the `contracts` field in JSON) says which.\n\n\
Exit codes: 0 all checks pass, 1 a check failed, 2 the contracts could not be read."
)]
pub struct Args {
    /// Also compare with the contracts at this git revision (the pull-request gate: --base origin/main).
    #[arg(long, value_name = "GIT_REF")]
    base: Option<String>,
}

/// Runs `herald check`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    let source = global.contracts_source();
    let files = global.contract_files()?;
    let (catalog, mut report) = herald_contracts::check::run(files);
    if let Some(rev) = &args.base {
        let dir = global.contracts_dir()?;
        let base = crate::revision::contracts_at(&dir, rev)?;
        let base = herald_contracts::Catalog::from_files(base)
            .map_err(|e| anyhow::anyhow!("the contracts at {rev} do not load: {e}"))?;
        if let Some(head) = &catalog {
            report
                .checks
                .push(herald_contracts::check::against_base(&base, head, rev));
        }
    }
    match global.format {
        Format::Json => print_json(&serde_json::json!({
            "contracts": source.to_json(),
            "passed": report.passed(),
            "failures": report.failure_count(),
            "report": report,
        }))?,
        Format::Text | Format::Markdown => {
            let style = Style::stdout();
            crate::outln!(
                "{} contracts: {}",
                style.bold("herald check"),
                source.describe()
            );
            for c in &report.checks {
                let mark = if c.passed() {
                    style.green("ok  ")
                } else {
                    style.red("FAIL")
                };
                crate::outln!(
                    "{mark} {:<20} {:>4} checked  {}",
                    c.name,
                    c.checked,
                    c.description
                );
                for f in &c.failures {
                    crate::outln!("       - {f}");
                }
            }
            if report.passed() {
                crate::outln!(
                    "{}",
                    style.green(&format!("all {} checks passed", report.checks.len()))
                );
            } else {
                crate::outln!(
                    "{}",
                    style.red(&format!(
                        "{} failure(s) in {} check(s)",
                        report.failure_count(),
                        report.checks.iter().filter(|c| !c.passed()).count()
                    ))
                );
            }
        }
    }
    Ok(if report.passed() {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}
