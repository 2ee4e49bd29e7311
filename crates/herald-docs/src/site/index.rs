//! The index page: the spec's topics table, then every subject, schema and service.

use herald_contracts::Catalog;
use maud::html;

use super::{page, schema_path, service_link, service_path, subject_path};

pub(super) fn render(catalog: &Catalog) -> String {
    let body = html! {
        p {
            "Every event the platform's services exchange over NATS JetStream. "
            "The JSON Schemas and the topic catalog in " code { "contracts/" } " are the source of truth; "
            "this site, the " a href="asyncapi.yaml" { "AsyncAPI document" } " and the "
            a href="#schemas" { "schema bundles" } " are generated from them."
        }
        h2 #topics { "Topics" }
        table {
            thead { tr { th { "Topic" } th { "Description" } th { "Producers" } th { "Consumers" } th { "Stream" } } }
            tbody {
                @for t in catalog.topics() {
                    tr {
                        td { code { (t.name) } }
                        td { (t.description) }
                        td {
                            @for (i, p) in t.producers.iter().enumerate() {
                                @if i > 0 { ", " }
                                @if p == "*" { "All backend services" } @else { (service_link(catalog, "", p)) }
                            }
                        }
                        td {
                            @for (i, c) in t.consumers.iter().enumerate() {
                                @if i > 0 { ", " } (service_link(catalog, "", c))
                            }
                        }
                        td { code { (t.stream.name) } }
                    }
                }
            }
        }
        h2 #subjects { "Subjects" }
        table {
            thead { tr { th { "Subject" } th { "Description" } th { "Schema" } th { "Consumers" } } }
            tbody {
                @for s in catalog.subjects() {
                    tr {
                        td { a href=(subject_path(&s.name)) { code { (s.name) } } }
                        td { (s.description) }
                        td { (s.schema) " " (s.major) ".x" }
                        td {
                            @for (i, c) in catalog.consumers_of(&s.name).iter().enumerate() {
                                @if i > 0 { ", " } (service_link(catalog, "", &c.service))
                            }
                        }
                    }
                }
            }
        }
        h2 #schemas { "Schemas" }
        table {
            thead { tr { th { "Schema" } th { "Versions" } th { "Description" } } }
            tbody {
                @for (name, versions) in catalog.schemas() {
                    tr {
                        td { (name) }
                        td {
                            @for (i, d) in versions.iter().enumerate() {
                                @if i > 0 { " · " }
                                a href=(schema_path(d)) { (d.version) }
                                " (" a href=(super::bundle_path(d)) { "bundle" } ")"
                            }
                        }
                        td { (versions.last().and_then(|d| d.document.get("description")).and_then(|v| v.as_str()).unwrap_or("")) }
                    }
                }
            }
        }
        h2 #services { "Services" }
        table {
            thead { tr { th { "Service" } th { "Description" } } }
            tbody {
                @for s in catalog.services() {
                    tr {
                        td { a href=(service_path(&s.name)) { (s.name) } }
                        td { (s.description) }
                    }
                }
            }
        }
        p { a href="graph.html" { "The graph of producers → subjects → consumers" } " · " a href="changelog.html" { "Schema changelog" } }
    };
    page("", "Platform event contracts", body)
}
