//! The generated artefacts, checked without peer tools: bundles stand alone
//! in a validator with no registry, and the site escapes what it prints.

use std::path::{Path, PathBuf};

use herald_contracts::{Catalog, SchemaRef};
use herald_docs::site::examples::of_schema;

fn contracts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn every_bundle_validates_alone_exactly_as_the_catalog_does() {
    let catalog = Catalog::load(contracts()).unwrap();
    let mut judged = 0;
    for (name, docs) in catalog.schemas() {
        for doc in docs {
            let bundle = herald_docs::bundle::bundle(&catalog, doc).unwrap();
            assert_eq!(bundle["$id"], doc.document["$id"], "the $id is kept");
            // No registry: a $ref the bundle does not resolve itself fails to build.
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(true)
                .build(&bundle)
                .unwrap_or_else(|e| {
                    panic!("{}: the bundle does not stand alone: {e}", doc.label())
                });
            for e in of_schema(&catalog, name) {
                let schema = SchemaRef {
                    name: name.clone(),
                    version: Some(doc.version),
                };
                let herald = catalog.validate_schema(&schema, &e.event).is_ok();
                assert_eq!(
                    validator.is_valid(&e.event),
                    herald,
                    "{} under {}",
                    e.path,
                    doc.label()
                );
                judged += 1;
            }
        }
    }
    assert!(judged > 30, "{judged}");
}

#[test]
fn a_bundle_embeds_each_referenced_schema_once_under_its_id() {
    let catalog = Catalog::load(contracts()).unwrap();
    let doc = catalog.schemas()["UsageEvent"].last().unwrap();
    let bundle = herald_docs::bundle::bundle(&catalog, doc).unwrap();
    let defs = bundle["$defs"].as_object().unwrap();
    let keys: Vec<&String> = defs.keys().collect();
    assert_eq!(keys, ["common@1.0.0"]);
    assert_eq!(
        defs["common@1.0.0"]["$id"],
        "https://contracts.platform.internal/schemas/common/1.0.0.json",
        "the embedded schema keeps its $id"
    );
    assert_eq!(
        bundle["properties"]["event_id"]["$ref"], "#/$defs/common@1.0.0/$defs/uuid",
        "references are local pointers, for generators that ignore embedded $ids"
    );
    assert!(
        !bundle.to_string().contains("../common/"),
        "no reference needs a file beside the bundle"
    );
}

#[test]
fn the_site_escapes_hostile_names_and_descriptions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("contracts");
    copy_dir(&contracts(), &dir);
    let catalog_toml = dir.join("catalog.toml");
    let text = std::fs::read_to_string(&catalog_toml)
        .unwrap()
        .replace(
            "description = \"Meters workflow step execution time.\"",
            "description = \"<script>alert('service')</script> & done\"",
        )
        .replace(
            "description = \"Model inference usage tracked\"",
            "description = \"</td><img src=x onerror=alert(1)>\"",
        )
        .replace(
            "[[service]]\nname = \"orchestrator\"",
            "[[service]]\nname = \"x<b>y\"\ndescription = \"a service with markup in its name\"\n\n[[service]]\nname = \"orchestrator\"",
        );
    std::fs::write(&catalog_toml, text).unwrap();
    let schema = dir.join("schemas/UsageEvent/1.1.0.json");
    let text = std::fs::read_to_string(&schema).unwrap().replace(
        "Cloud region where",
        "</pre><script>alert('schema')</script> Cloud region where",
    );
    std::fs::write(&schema, text).unwrap();
    let catalog = Catalog::load(&dir).unwrap();
    let site = tmp.path().join("site");
    herald_docs::site::generate(&catalog, &site).unwrap();

    let mut checked = 0;
    let mut stack = vec![site.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ext != "html" && ext != "svg" {
                continue;
            }
            let html = std::fs::read_to_string(&path).unwrap();
            for raw in ["<script>alert", "<img src=x", "<b>y", "</td><img"] {
                assert!(
                    !html.contains(raw),
                    "{} prints `{raw}` unescaped",
                    path.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 30, "{checked}");
    let service = std::fs::read_to_string(site.join("services/usage-metering.html")).unwrap();
    assert!(
        service.contains("&lt;script&gt;alert('service')&lt;/script&gt; &amp; done"),
        "{service}"
    );
    let odd = std::fs::read_to_string(site.join("services/x_b_y.html")).unwrap();
    assert!(odd.contains("<h1>x&lt;b&gt;y</h1>"), "{odd}");
    let schema_page = std::fs::read_to_string(site.join("schemas/UsageEvent/1.1.0.html")).unwrap();
    assert!(
        schema_page.contains("&lt;/pre&gt;&lt;script&gt;alert('schema')"),
        "escaped in the field table and the raw schema"
    );
}

/// Every `$ref` string anywhere in `value`.
fn refs_in(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", serde_json::Value::String(r)) => out.push(r.clone()),
                    _ => refs_in(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| refs_in(v, out)),
        _ => {}
    }
}

#[test]
fn every_asyncapi_ref_points_inside_the_document() {
    let catalog = Catalog::load(contracts()).unwrap();
    let doc = herald_docs::asyncapi::document(&catalog).unwrap();
    let mut refs = Vec::new();
    refs_in(&doc, &mut refs);
    assert!(refs.len() > 100, "{}", refs.len());
    for r in &refs {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("`{r}` leaves the document"));
        assert!(doc.pointer(pointer).is_some(), "`{r}` resolves to nothing");
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for (key, s) in schemas {
        assert!(
            s.get("$id").is_none() && s["schema"].get("$id").is_none(),
            "{key} keeps an $id that would rebase its $refs"
        );
    }
}

#[test]
fn the_graph_draws_one_edge_per_producer_and_per_consumer_of_each_subject() {
    let catalog = Catalog::load(contracts()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    herald_docs::site::generate(&catalog, tmp.path()).unwrap();
    let svg = std::fs::read_to_string(tmp.path().join("graph.svg")).unwrap();
    let receives: usize = catalog
        .subjects()
        .iter()
        .map(|s| {
            let mut services: Vec<&str> = catalog
                .consumers_of(&s.name)
                .iter()
                .map(|c| c.service.as_str())
                .collect();
            services.dedup();
            services.len()
        })
        .sum();
    assert_eq!(svg.matches("<path class=\"receive\"").count(), receives);
    // Topics open to every service are drawn from one node, not eleven.
    let sends: usize = catalog
        .subjects()
        .iter()
        .map(|s| {
            let t = catalog.topic_for_subject(&s.name).unwrap();
            if t.producers.iter().any(|p| p == "*") {
                1
            } else {
                t.producers.len()
            }
        })
        .sum();
    assert_eq!(svg.matches("<path class=\"send\"").count(), sends);
    assert!(svg.contains("href=\"subjects/usage.metered.model_inference.html\""));
    assert!(svg.contains("href=\"services/billing-service.html\""));
}
