//! `herald docs`, `herald asyncapi` and `herald export`, judged by foreign
//! tools: the site in Debian's Chromium (Playwright), the AsyncAPI document by
//! `@asyncapi/parser` and ajv, the bundles by Python's `jsonschema`. Each
//! verdict of the foreign validators is compared with herald's own, computed
//! here from the same contracts. A missing node, chromium, npm package or
//! Python package fails the test; `.ci/run` installs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use herald_contracts::{Catalog, SchemaRef};
use herald_docs::site::examples::of_schema;
use serde_json::{json, Value};

fn herald() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_herald"));
    c.env_remove("HERALD_CONTRACTS").env("NO_COLOR", "1");
    c
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn contracts() -> PathBuf {
    repo().join("contracts")
}

fn run(args: &[&str]) -> Output {
    herald()
        .arg("--contracts")
        .arg(contracts())
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Runs a peer tool; a missing tool or package is a loud failure, never a skip.
fn peer(program: &str, args: &[&Path]) -> Value {
    let out = Command::new(program)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): install it, as .ci/run does on a fresh machine")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({:?}):\n{stderr}\n{stdout}\n(missing packages? npm ci --prefix tests/js; pip install -r tests/py/requirements.txt)",
        out.status.code()
    );
    let last = stdout.lines().last().unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{program}: summary `{last}`: {e}"))
}

fn node_script(name: &str) -> PathBuf {
    let js = repo().join("tests/js");
    assert!(
        js.join("node_modules").is_dir(),
        "tests/js/node_modules is missing: run `npm ci --prefix tests/js` (.ci/run does)"
    );
    js.join(name)
}

fn catalog() -> Catalog {
    Catalog::load(contracts()).unwrap()
}

#[test]
fn the_site_works_in_chromium_from_disk_and_from_a_web_server() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let stdout = ok(&run(&["docs", "--out", site.to_str().unwrap()]));
    assert!(stdout.starts_with("wrote "), "{stdout}");
    let c = catalog();
    let versions: usize = c.schemas().values().map(Vec::len).sum();
    // index, changelog, graph + a page per subject, schema version and service.
    let pages = 3 + c.subjects().len() + versions + c.services().len();
    let summary = peer("node", &[&node_script("site.mjs"), &site]);
    assert_eq!(summary["pages"], json!(2 * pages), "{summary}");
    assert!(
        summary["links"].as_u64().unwrap() > 40 * pages as u64,
        "{summary}"
    );
    assert!(summary["fragments"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(
        summary["search"]["landed"],
        json!("schemas/UsageEvent/1.1.0.html#field.region"),
        "{summary}"
    );
    let consumers = summary["consumer"]["consumers"].as_array().unwrap();
    assert!(consumers.contains(&json!("billing-service")), "{summary}");
}

#[test]
fn asyncapi_parses_without_errors_and_its_payloads_agree_with_herald() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("asyncapi.yaml");
    let json_path = tmp.path().join("asyncapi.json");
    std::fs::write(&yaml, ok(&run(&["asyncapi"]))).unwrap();
    std::fs::write(&json_path, ok(&run(&["asyncapi", "--format", "json"]))).unwrap();
    let c = catalog();
    let mut cases = Vec::new();
    for subject in c.subjects() {
        let doc = herald_docs::asyncapi::subject_schema(&c, subject).unwrap();
        for e in of_schema(&c, &subject.schema) {
            let valid = c.validate(&subject.name, Some(&doc.id), &e.event).is_ok();
            cases.push(json!({
                "message": herald_docs::asyncapi::key(&subject.name),
                "example": e.path, "event": e.event, "herald_valid": valid,
            }));
        }
    }
    let valid = cases
        .iter()
        .filter(|c| c["herald_valid"] == json!(true))
        .count();
    assert!(
        valid > 10 && valid < cases.len(),
        "{valid} of {}",
        cases.len()
    );
    let cases_path = tmp.path().join("cases.json");
    std::fs::write(&cases_path, serde_json::to_vec(&cases).unwrap()).unwrap();
    let summary = peer(
        "node",
        &[&node_script("asyncapi.mjs"), &yaml, &json_path, &cases_path],
    );
    assert_eq!(summary["errors"], json!(0), "{summary}");
    assert_eq!(summary["channels"], json!(c.subjects().len()), "{summary}");
    assert_eq!(summary["messages"], json!(c.subjects().len()), "{summary}");
    assert_eq!(summary["cases"], json!(cases.len()), "{summary}");
}

#[test]
fn bundles_agree_with_python_jsonschema_on_every_example() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundles");
    let stdout = ok(&run(&["export", "--bundle", dir.to_str().unwrap()]));
    let c = catalog();
    let versions: usize = c.schemas().values().map(Vec::len).sum();
    assert_eq!(stdout.lines().count(), versions, "{stdout}");
    let mut cases = Vec::new();
    for (name, docs) in c.schemas() {
        for e in of_schema(&c, name) {
            // The version `herald check` holds an invalid example to: the one
            // it names in `$schema`, else the latest.
            let target = e
                .event
                .get("$schema")
                .and_then(Value::as_str)
                .and_then(|id| c.schema_by_id(id))
                .map(|d| d.version)
                .or(docs.last().map(|d| d.version));
            for doc in docs {
                let schema = SchemaRef {
                    name: name.clone(),
                    version: Some(doc.version),
                };
                let valid = c.validate_schema(&schema, &e.event).is_ok();
                let expect: Vec<[&str; 2]> = if Some(doc.version) == target {
                    e.expect
                        .iter()
                        .map(|(p, k)| [p.as_str(), k.as_str()])
                        .collect()
                } else {
                    Vec::new()
                };
                cases.push(json!({
                    "schema": name, "version": doc.version.to_string(), "example": e.path,
                    "event": e.event, "herald_valid": valid, "expect": expect,
                }));
            }
        }
    }
    let cases_path = tmp.path().join("cases.json");
    std::fs::write(&cases_path, serde_json::to_vec(&cases).unwrap()).unwrap();
    let summary = peer(
        "python3",
        &[&repo().join("tests/py/bundles_agree.py"), &dir, &cases_path],
    );
    let herald_valid = cases
        .iter()
        .filter(|c| c["herald_valid"] == json!(true))
        .count();
    assert_eq!(summary["cases"], json!(cases.len()), "{summary}");
    assert_eq!(summary["valid"], json!(herald_valid), "{summary}");
    assert_eq!(
        summary["invalid"],
        json!(cases.len() - herald_valid),
        "{summary}"
    );
    let invalid_examples = cases
        .iter()
        .filter(|c| !c["expect"].as_array().unwrap().is_empty())
        .count();
    assert!(invalid_examples >= 15, "{invalid_examples}");
    assert!(summary["expectations"].as_u64().unwrap() >= invalid_examples as u64);
}

#[test]
fn asyncapi_has_a_channel_per_subject_and_an_operation_per_producer_and_consumer() {
    let doc: Value = serde_json::from_str(&ok(&run(&["asyncapi", "--format", "json"]))).unwrap();
    let from_yaml: Value = serde_yaml_ng::from_str(&ok(&run(&["asyncapi"]))).unwrap();
    assert_eq!(doc, from_yaml, "YAML and JSON carry the same document");
    assert_eq!(doc["asyncapi"], json!("3.0.0"));
    assert_eq!(doc["servers"]["nats"]["protocol"], json!("nats"));
    let ch = &doc["channels"]["usage.metered.model_inference"];
    assert_eq!(ch["address"], json!("usage.metered.model_inference"));
    assert_eq!(
        doc["channels"]["herald.heartbeat._"]["address"],
        json!("herald.heartbeat.{token3}")
    );
    let msg = &doc["components"]["messages"]["usage.metered.model_inference"];
    assert_eq!(
        msg["payload"]["schemaFormat"],
        json!("application/schema+json;version=draft-2020-12")
    );
    assert_eq!(
        msg["payload"]["schema"]["allOf"][0]["$ref"],
        json!("#/components/schemas/UsageEvent-1.1.0/schema")
    );
    assert_eq!(
        msg["payload"]["schema"]["allOf"][1]["properties"]["event_type"]["const"],
        json!("model_inference")
    );
    assert_eq!(
        msg["correlationId"]["$ref"],
        json!("#/components/correlationIds/herald")
    );
    assert_eq!(
        doc["components"]["correlationIds"]["herald"]["location"],
        json!("$message.header#/ce-correlationid")
    );
    let headers = &doc["components"]["schemas"]["herald-headers"]["properties"];
    for h in [
        "ce-id",
        "ce-source",
        "ce-type",
        "ce-time",
        "ce-dataschema",
        "traceparent",
        "Nats-Msg-Id",
    ] {
        assert!(
            headers.get(h).is_some(),
            "header {h} missing from {headers}"
        );
    }
    // Shared, not duplicated: the schema appears once, every message refers to it.
    let text = doc.to_string();
    assert_eq!(
        text.matches(
            "\"Tracks service usage for billing and analytics. Published on usage.metered.*.\""
        )
        .count(),
        2,
        "UsageEvent 1.0.0 and 1.1.0, once each"
    );
    let ops = doc["operations"].as_object().unwrap();
    let on = |action: &str| -> Vec<&String> {
        ops.iter()
            .filter(|(_, o)| {
                o["action"] == json!(action)
                    && o["channel"]["$ref"] == json!("#/channels/usage.metered.model_inference")
            })
            .map(|(k, _)| k)
            .collect()
    };
    let c = catalog();
    let topic = c
        .topic_for_subject("usage.metered.model_inference")
        .expect("a catalog subject");
    let producers = c.producers_of(topic);
    assert!(
        producers.len() > 5,
        "usage.metered accepts every backend service: {producers:?}"
    );
    let send = on("send");
    assert_eq!(send.len(), producers.len(), "{send:?}");
    for p in &producers {
        let prefix = format!("{p}.send.");
        assert!(
            send.iter().any(|k| k.starts_with(&prefix)),
            "{p} missing from {send:?}"
        );
    }
    assert!(
        !producers.contains(&"chat-clients"),
        "clients are not producers"
    );
    let receive = on("receive");
    assert_eq!(receive.len(), 2, "{receive:?}");
    assert!(
        receive
            .iter()
            .any(|k| k.starts_with("billing-service--usage.receive.")),
        "{receive:?}"
    );
}

#[test]
fn bad_output_paths_and_formats_are_one_line_errors_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let inside_a_file = file.join("site");
    for args in [
        vec!["docs", "--out", inside_a_file.to_str().unwrap()],
        vec!["export", "--bundle", inside_a_file.to_str().unwrap()],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: cannot write "), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    let out = run(&["asyncapi", "--format", "markdown"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("YAML (the default) or JSON"));
    let out = run(&["docs"]);
    assert_eq!(out.status.code(), Some(2), "--out is required");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out <DIR>"));
}
