//! A page per schema version: fields, the raw schema, the classified diff to
//! the previous version and the compatibility mode that judged it.

use herald_contracts::evolution::Severity;
use herald_contracts::versions::{history, options_for};
use herald_contracts::{Catalog, SchemaDoc};
use maud::html;

use super::{bundle_path, field_anchor, json_block, page, schema_path, subject_path};
use crate::error::DocsError;
use crate::fields::fields;
use crate::words;

const ROOT: &str = "../../";

pub(super) fn render(catalog: &Catalog, doc: &SchemaDoc) -> Result<String, DocsError> {
    let options = options_for(catalog, &doc.name)?;
    let steps = history(catalog, &doc.name)?;
    let step = steps.iter().find(|s| s.to == doc.version);
    let previous = step
        .and_then(|s| s.from)
        .and_then(|v| catalog.schemas()[&doc.name].iter().find(|d| d.version == v));
    let next = catalog.schemas()[&doc.name]
        .iter()
        .find(|d| d.version > doc.version);
    let rows = fields(catalog, doc);
    let conditions = words::describe(&serde_json::json!({
        "if": doc.document.get("if"),
        "then": doc.document.get("then"),
        "else": doc.document.get("else"),
    }));
    let has_condition = doc.document.get("if").is_some();
    let subjects: Vec<_> = catalog
        .subjects()
        .iter()
        .filter(|s| s.schema == doc.name && s.major == doc.version.major)
        .collect();
    let reserved = catalog
        .evolution()
        .schemas
        .get(&doc.name)
        .map(|s| s.reserved.clone())
        .unwrap_or_default();
    let body = html! {
        p.lead { (doc.document.get("description").and_then(|v| v.as_str()).unwrap_or("")) }
        p {
            code { (doc.id) } " · "
            a href={ (ROOT) (bundle_path(doc)) } { "self-contained bundle" }
            @if let Some(p) = previous { " · previous: " a href={ (ROOT) (schema_path(p)) } { (p.version) } }
            @if let Some(n) = next { " · next: " a href={ (ROOT) (schema_path(n)) } { (n.version) } }
        }
        @if !subjects.is_empty() {
            p { "Published on: "
                @for (i, s) in subjects.iter().enumerate() {
                    @if i > 0 { ", " }
                    a href={ (ROOT) (subject_path(&s.name)) } { code { (s.name) } }
                }
            }
        }
        h2 #fields { "Fields" }
        p.note { code { "*" } " in a pointer stands for any array index. Required means the enclosing object always requires it." }
        table.fields {
            thead { tr { th { "Pointer" } th { "Type" } th { "Required" } th { "Format and constraints" } th { "Description" } th { "Since" } } }
            tbody {
                @for f in &rows {
                    tr id=(field_anchor(&f.pointer)) {
                        td { code { (f.pointer) } }
                        td { (f.types) }
                        td { @if f.required { "yes" } @else { "no" } }
                        td { @for (i, c) in f.constraints.iter().enumerate() { @if i > 0 { br; } code { (c) } } }
                        td { (f.description) }
                        td { @if let Some(v) = f.since { (v) } }
                    }
                }
            }
        }
        @if has_condition {
            h3 { "Conditions" }
            ul { @for c in &conditions { li { (c) } } }
        }
        h2 #compatibility { "Compatibility" }
        p {
            "Mode " code { (options.mode) } ", policy " code { (options.policy) } ". "
            "Every new version of " (doc.name) " must pass this mode against the versions it names before "
            code { "herald check" } " accepts it."
            @if !reserved.is_empty() { " Reserved names (never to be reintroduced): " (reserved.join(", ")) "." }
        }
        @if let Some(s) = step {
            @for (against, report) in &s.compatibility {
                p { "Against " (against) ": " @if report.compatible { "compatible" } @else { strong { "not compatible" } } " (" (report.mode) ")." }
            }
        }
        h2 #changes { "Changes" }
        @match (previous, step.and_then(|s| s.changes.as_ref())) {
            (Some(p), Some(report)) => {
                p { "From " a href={ (ROOT) (schema_path(p)) } { (p.label()) } ": needs a " (report.needed_bump) " bump." }
                @if report.changes.is_empty() { p { "No schema changes." } }
                @else {
                    table.changes {
                        thead { tr { th { "Change" } th { "At" } th { "What" } th { "Severity" } th { "Old readers" } th { "New readers" } } }
                        tbody {
                            @for c in &report.changes {
                                tr class=(if c.severity == Severity::Breaking { "breaking" } else { "" }) {
                                    td { code { (c.kind) } }
                                    td { code { (if c.pointer.is_empty() { "/" } else { &c.pointer }) } }
                                    td { (c.message) }
                                    td { (c.severity) }
                                    td { (c.forward) }
                                    td { (c.backward) }
                                }
                            }
                        }
                    }
                }
            }
            _ => p { "First version." },
        }
        h2 #raw { "Raw schema" }
        p { code { "contracts/" (doc.path) } }
        (json_block(&doc.document))
    };
    Ok(page(ROOT, &doc.label(), body))
}
