//! A page per service: what it publishes and what it consumes.

use herald_contracts::catalog::Service;
use herald_contracts::Catalog;
use maud::html;

use super::{page, subject_path};

const ROOT: &str = "../";

pub(super) fn render(catalog: &Catalog, service: &Service) -> String {
    let publishes: Vec<_> = catalog
        .subjects()
        .iter()
        .filter(|s| {
            catalog
                .topic_for_subject(&s.name)
                .is_some_and(|t| catalog.producers_of(t).contains(&service.name.as_str()))
        })
        .collect();
    let consumes: Vec<_> = catalog
        .consumers()
        .iter()
        .filter(|c| c.service == service.name)
        .collect();
    let body = html! {
        p.lead { (service.description) }
        h2 #publishes { "Publishes" }
        @if publishes.is_empty() { p { "Nothing." } }
        @else {
            ul.publishes {
                @for s in &publishes {
                    li { a href={ (ROOT) (subject_path(&s.name)) } { code { (s.name) } } " · " (s.description) }
                }
            }
        }
        h2 #consumes { "Consumes" }
        @if consumes.is_empty() { p { "Nothing." } }
        @else {
            table.consumes {
                thead { tr { th { "Durable consumer" } th { "Filter" } th { "Subjects" } th { "Fields it depends on" } th { "Retries" } } }
                tbody {
                    @for c in &consumes {
                        tr {
                            td { code { (c.durable_name()) } }
                            td { code { (c.filter) } }
                            td {
                                @for (i, s) in catalog.subjects().iter().filter(|s| herald_contracts::subject::matches(&c.filter, &s.name)).enumerate() {
                                    @if i > 0 { ", " }
                                    a href={ (ROOT) (subject_path(&s.name)) } { code { (s.name) } }
                                }
                            }
                            td { @for (i, f) in c.fields.iter().enumerate() { @if i > 0 { " " } code { (f) } } }
                            td {
                                (c.max_deliver) " deliveries, ack wait " (humantime::format_duration(c.ack_wait))
                                @if !c.backoff.is_empty() {
                                    ", backoff " (c.backoff.iter().map(|d| humantime::format_duration(*d).to_string()).collect::<Vec<_>>().join(", "))
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(ROOT, &service.name, body)
}
