//! `herald docs --out DIR`: the catalog as a static site.
//!
//! Plain HTML and CSS with a little vanilla JavaScript for search; nothing is
//! fetched from a network and every link is relative, so the site opens from
//! disk (`file://`) and from any web server. Every string from the contracts
//! goes through maud, which escapes it; only the SVG graph, built by this
//! crate from escaped parts, is inserted as markup.

mod changelog_page;
pub mod examples;
mod graph;
mod index;
mod schema_page;
mod search;
mod service_page;
mod subject_page;

use std::path::{Path, PathBuf};

use herald_contracts::{Catalog, SchemaDoc};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::error::{write, DocsError};

const STYLE: &str = include_str!("style.css");
const SEARCH_JS: &str = include_str!("search.js");

/// One generated file: its path under the site root and its contents.
struct Page {
    path: String,
    contents: String,
}

/// Writes the whole site into `dir`; returns the files written.
pub fn generate(catalog: &Catalog, dir: &Path) -> Result<Vec<PathBuf>, DocsError> {
    let mut pages = vec![
        Page {
            path: "style.css".into(),
            contents: STYLE.into(),
        },
        Page {
            path: "search.js".into(),
            contents: SEARCH_JS.into(),
        },
        Page {
            path: "index.html".into(),
            contents: index::render(catalog),
        },
        Page {
            path: "changelog.html".into(),
            contents: changelog_page::render(catalog)?,
        },
        Page {
            path: "graph.html".into(),
            contents: page(
                "",
                "Producers → subjects → consumers",
                graph::page_body(catalog),
            ),
        },
        Page {
            path: "graph.svg".into(),
            contents: graph::standalone(catalog),
        },
        Page {
            path: "search-index.js".into(),
            contents: search::index(catalog)?,
        },
    ];
    for subject in catalog.subjects() {
        pages.push(Page {
            path: subject_path(&subject.name),
            contents: subject_page::render(catalog, subject),
        });
    }
    for doc in catalog.schemas().values().flatten() {
        pages.push(Page {
            path: schema_path(doc),
            contents: schema_page::render(catalog, doc)?,
        });
    }
    for service in catalog.services() {
        pages.push(Page {
            path: service_path(&service.name),
            contents: service_page::render(catalog, service),
        });
    }
    let mut written = Vec::new();
    for p in pages {
        let path = dir.join(&p.path);
        write(&path, p.contents.as_bytes())?;
        written.push(path);
    }
    written.extend(crate::bundle::export(catalog, &dir.join("bundles"))?);
    let asyncapi = crate::asyncapi::document(catalog)?;
    let yaml = serde_yaml_ng::to_string(&asyncapi).map_err(|e| DocsError::Serialize {
        what: "the AsyncAPI document".into(),
        message: e.to_string(),
    })?;
    let path = dir.join("asyncapi.yaml");
    write(&path, yaml.as_bytes())?;
    written.push(path);
    Ok(written)
}

/// A file-name-safe form of a name: NATS wildcards and anything outside
/// `[A-Za-z0-9._-]` become `_`, so paths need no URL encoding.
pub(crate) fn slug(name: &str) -> String {
    crate::asyncapi::key(name)
}

/// Site-relative path of a subject's page.
pub(crate) fn subject_path(subject: &str) -> String {
    format!("subjects/{}.html", slug(subject))
}

/// Site-relative path of a schema version's page.
pub(crate) fn schema_path(doc: &SchemaDoc) -> String {
    format!("schemas/{}/{}.html", slug(&doc.name), doc.version)
}

/// Site-relative path of a service's page.
pub(crate) fn service_path(service: &str) -> String {
    format!("services/{}.html", slug(service))
}

/// Site-relative path of a schema version's bundle.
pub(crate) fn bundle_path(doc: &SchemaDoc) -> String {
    format!("bundles/{}/{}.json", slug(&doc.name), doc.version)
}

/// The `id` of a field's row, also its search target: the pointer with `/`
/// as `.` and anything unusual as `_`.
pub(crate) fn field_anchor(pointer: &str) -> String {
    format!("field{}", slug(&pointer.replace('/', ".")))
}

/// A link to a service page, or plain text for `*`-style names.
pub(crate) fn service_link(catalog: &Catalog, root: &str, name: &str) -> Markup {
    if catalog.services().iter().any(|s| s.name == name) {
        html! { a href={ (root) (service_path(name)) } { (name) } }
    } else {
        html! { (name) }
    }
}

/// The frame every page shares. `root` is the relative path back to the site root.
pub(crate) fn page(root: &str, title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · herald contracts" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href={ (root) "style.css" };
            }
            body data-root=(root) {
                header {
                    nav {
                        a.home href={ (root) "index.html" } { "herald contracts" }
                        a href={ (root) "index.html#subjects" } { "Subjects" }
                        a href={ (root) "index.html#schemas" } { "Schemas" }
                        a href={ (root) "index.html#services" } { "Services" }
                        a href={ (root) "graph.html" } { "Graph" }
                        a href={ (root) "changelog.html" } { "Changelog" }
                        a href={ (root) "asyncapi.yaml" } { "AsyncAPI" }
                    }
                    div.search {
                        input #search type="search" placeholder="Search fields, subjects, schemas, services" aria-label="Search" autocomplete="off";
                        ol #search-results {}
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
                footer { "Generated by " code { "herald docs" } " from the contracts. Do not edit; regenerate." }
                script src={ (root) "search-index.js" } {}
                script src={ (root) "search.js" } {}
            }
        }
    }
    .into_string()
}

/// Pretty JSON in a `<pre>`, escaped.
pub(crate) fn json_block(value: &serde_json::Value) -> Markup {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    html! { pre.json { code { (text) } } }
}

/// Markup built by this crate from escaped parts (the SVG graph).
pub(crate) fn trusted(markup: String) -> Markup {
    PreEscaped(markup)
}
