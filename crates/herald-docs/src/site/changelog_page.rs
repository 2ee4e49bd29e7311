//! The changelog page: the same content as `herald changelog`, built from the
//! same history, with the Markdown that command prints beneath it.

use herald_contracts::evolution::Severity;
use herald_contracts::versions::{changelog, history, options_for};
use herald_contracts::Catalog;
use maud::html;

use super::{page, schema_path};
use crate::error::DocsError;

pub(super) fn render(catalog: &Catalog) -> Result<String, DocsError> {
    let markdown = changelog(catalog, None)?;
    let mut sections = Vec::new();
    for (name, versions) in catalog.schemas() {
        let mode = options_for(catalog, name)?.mode;
        let mut steps = history(catalog, name)?;
        steps.reverse();
        sections.push((name, versions, mode, steps));
    }
    let body = html! {
        p { "Every schema version with its classified changes, derived from the schema files by "
            code { "herald changelog" } ". Breaking changes are marked." }
        @for (name, versions, mode, steps) in &sections {
            h2 id={ "schema-" (name) } { (name) }
            p { "Mode: " code { (mode) } "." }
            @for step in steps {
                @let doc = versions.iter().find(|d| d.version == step.to);
                h3 {
                    @if let Some(d) = doc { a href=(schema_path(d)) { (step.to) } } @else { (step.to) }
                }
                @match &step.changes {
                    None => p { "First version." },
                    Some(r) if r.changes.is_empty() => p { "No schema changes." },
                    Some(r) => ul {
                        @for c in &r.changes {
                            li {
                                @if c.severity == Severity::Breaking { strong.breaking { "BREAKING " } }
                                code { (c.kind) } " at " code { (if c.pointer.is_empty() { "/" } else { &c.pointer }) }
                                ": " (c.message) " (" (c.severity) ")"
                            }
                        }
                    },
                }
            }
        }
        h2 #markdown { "As Markdown" }
        p { "Exactly what " code { "herald changelog" } " prints:" }
        pre { code { (markdown) } }
    };
    Ok(page("", "Schema changelog", body))
}
