//! A page per subject: schema, constraint, stream, headers, producers and
//! consumers, and the examples with herald's verdict on each.

use herald_contracts::catalog::Discard;
use herald_contracts::{Catalog, SubjectSpec};
use maud::html;

use super::examples::of_schema;
use super::{json_block, page, schema_path, service_link};
use crate::asyncapi::HEADERS;
use crate::words;

const ROOT: &str = "../";

pub(super) fn render(catalog: &Catalog, subject: &SubjectSpec) -> String {
    let versions: Vec<_> = catalog
        .schemas()
        .get(&subject.schema)
        .into_iter()
        .flatten()
        .filter(|d| d.version.major == subject.major)
        .collect();
    let topic = catalog.topic_for_subject(&subject.name);
    let producers: Vec<&str> = topic.map(|t| catalog.producers_of(t)).unwrap_or_default();
    let consumers = catalog.consumers_of(&subject.name);
    let examples = of_schema(catalog, &subject.schema);
    let body = html! {
        p.lead { (subject.description) }
        h2 { "Schema" }
        p {
            (subject.schema) ", major " (subject.major) ": "
            @for (i, d) in versions.iter().enumerate() {
                @if i > 0 { ", " }
                a href={ (ROOT) (schema_path(d)) } { (d.label()) }
            }
            ". Events name their version in " code { "$schema" } " or the " code { "ce-dataschema" }
            " header; otherwise the latest applies. Identity field: " code { (subject.identity) } "."
        }
        h2 { "Constraint" }
        @match &subject.constraint {
            None => p { "None beyond the schema." },
            Some(c) => {
                p { "On this subject, besides the schema:" }
                ul.constraint { @for rule in words::describe(c) { li { (rule) } } }
            }
        }
        h2 { "Stream" }
        @if let Some(t) = topic {
            table.settings {
                tr { th { "Stream" } td { code { (t.stream.name) } } }
                tr { th { "Topic" } td { code { (t.name) } " · " (t.description) } }
                tr { th { "Subjects" } td { (t.stream.subjects.join(", ")) } }
                tr { th { "Max age" } td { (humantime::format_duration(t.stream.max_age)) } }
                tr { th { "Max bytes" } td { @if t.stream.max_bytes < 0 { "unlimited" } @else { (t.stream.max_bytes) " bytes" } } }
                tr { th { "Max message size" } td { (t.stream.max_msg_size) " bytes" } }
                tr { th { "Duplicate window" } td { (humantime::format_duration(t.stream.duplicate_window)) } }
                tr { th { "Replicas" } td { (t.stream.replicas) } }
                tr { th { "When full" } td { (when_full(t.stream.discard)) } }
                tr { th { "Storage" } td { (format!("{:?}", t.stream.storage).to_lowercase()) } }
            }
        } @else {
            p { "No topic declares this subject; " code { "herald check" } " reports it." }
        }
        h2 { "Headers herald sets" }
        table {
            thead { tr { th { "Header" } th { "Value" } } }
            tbody { @for (name, what) in HEADERS { tr { td { code { (name) } } td { (what) } } } }
        }
        h2 #producers { "Producers" }
        ul.producers { @for p in &producers { li { (service_link(catalog, ROOT, p)) } } }
        h2 #consumers { "Consumers" }
        @if consumers.is_empty() { p { "No consumer reads this subject." } }
        @else {
            table.consumers {
                thead { tr { th { "Service" } th { "Durable consumer" } th { "Filter" } th { "Reads" } th { "Fields it depends on" } th { "Max deliveries" } } }
                tbody {
                    @for c in &consumers {
                        tr {
                            td { (service_link(catalog, ROOT, &c.service)) }
                            td { code { (c.durable_name()) } }
                            td { code { (c.filter) } }
                            td { (c.reads.schema) " " (c.reads.major) ".x" }
                            td { @for (i, f) in c.fields.iter().enumerate() { @if i > 0 { " " } code { (f) } } }
                            td { (c.max_deliver) }
                        }
                    }
                }
            }
        }
        h2 #valid-examples { "Valid examples" }
        @for e in examples.iter().filter(|e| e.valid) {
            @if catalog.validate(&subject.name, None, &e.event).is_ok() {
                h3 { (e.name) }
                (json_block(&e.event))
            }
        }
        h2 #invalid-examples { "Invalid examples" }
        @for e in examples.iter().filter(|e| !e.valid) {
            @if let Err(err) = catalog.validate(&subject.name, None, &e.event) {
                h3 { (e.name) }
                p.reason { "Fails because: " (e.reason.as_deref().unwrap_or("(no reason given)")) }
                p.verdict { "herald says: " code { (err) } }
                (json_block(&e.event))
            }
        }
    };
    page(ROOT, &subject.name, body)
}

/// The stream's discard policy, said as what a publisher sees.
fn when_full(discard: Discard) -> &'static str {
    match discard {
        Discard::New => "refuses new events (discard new): publishers get an error",
        Discard::Old => "drops the oldest events (discard old)",
    }
}
