//! Human outputs of a [`Report`]: plain text for terminals and Markdown for pull
//! requests (JSON is `serde_json::to_string_pretty(&report)`).
//!
//! Why here and not in the CLI: the gate, the changelog and `herald diff` all print
//! the same reports, and the wording of verdicts should be identical everywhere.

use super::{Change, Report, Severity};
use std::fmt::Write;

fn location(c: &Change) -> &str {
    if c.pointer.is_empty() {
        "/"
    } else {
        &c.pointer
    }
}

fn ordered(report: &Report) -> Vec<&Change> {
    let mut v: Vec<&Change> = report.changes.iter().collect();
    // breaking first, then by walk order (stable sort keeps it)
    v.sort_by_key(|c| std::cmp::Reverse(c.severity));
    v
}

fn headline(report: &Report) -> String {
    format!(
        "{} under mode {} (policy {}); needs a {} version bump",
        if report.compatible {
            "compatible"
        } else {
            "BREAKING"
        },
        report.mode,
        report.policy,
        report.needed_bump
    )
}

/// Plain text: a headline, then one line per change (breaking first) with its
/// severity, kind, location, message and both verdicts.
pub fn text(report: &Report) -> String {
    let mut s = headline(report);
    s.push('\n');
    if report.changes.is_empty() {
        s.push_str("  no changes\n");
    }
    for c in ordered(report) {
        let _ = writeln!(
            s,
            "  {:<12} {:<36} {}  {} [backward: {}, forward: {}]",
            c.severity.as_str(),
            c.kind.to_string(),
            location(c),
            c.message,
            c.backward,
            c.forward
        );
    }
    s
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Markdown ready to paste into a pull request: a verdict line, a table of changes
/// (breaking first) and, when there are breaking changes and `consumers` is not
/// empty, the consumers that read this schema and are affected.
pub fn markdown(report: &Report, title: &str, consumers: &[String]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### Schema change: {}\n", md_escape(title));
    let _ = writeln!(
        s,
        "**{}** under mode `{}` (policy `{}`); needs a **{}** version bump.\n",
        if report.compatible {
            "Compatible"
        } else {
            "Breaking"
        },
        report.mode,
        report.policy,
        report.needed_bump
    );
    if report.changes.is_empty() {
        s.push_str("No changes.\n");
        return s;
    }
    s.push_str("| Severity | Change | Location | Backward | Forward | Details |\n");
    s.push_str("|---|---|---|---|---|---|\n");
    for c in ordered(report) {
        let sev = if c.severity == Severity::Breaking {
            "**breaking**".to_string()
        } else {
            c.severity.as_str().to_string()
        };
        let _ = writeln!(
            s,
            "| {} | `{}` | `{}` | {} | {} | {} |",
            sev,
            c.kind,
            md_escape(location(c)),
            c.backward,
            c.forward,
            md_escape(&c.message)
        );
    }
    if !report.compatible && !consumers.is_empty() {
        let names: Vec<String> = consumers
            .iter()
            .map(|c| format!("`{}`", md_escape(c)))
            .collect();
        let _ = writeln!(
            s,
            "\n**Consumers affected by the breaking changes:** {}",
            names.join(", ")
        );
    }
    s
}
