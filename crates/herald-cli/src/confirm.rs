//! Asking before a destructive command (`streams rm`, `consumers rm`) deletes anything.

use std::io::{BufRead, IsTerminal, Write};

/// Whether to go ahead with `action` (e.g. "delete stream USAGE"): yes with `--yes`;
/// otherwise asks on the terminal. A script (standard input not a terminal) that did not
/// say `--yes` is refused (an error, exit 2), so nothing is deleted by accident.
pub fn ask(action: &str, yes: bool) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        anyhow::bail!(
            "refusing to {action} without confirmation: standard input is not a terminal (pass --yes)"
        );
    }
    eprint!("{action}? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
