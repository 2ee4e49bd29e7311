//! The semver gate over a catalog's schema history: compatibility within a major,
//! transitive modes, declared bumps, and `$ref`s resolved through the catalog.

use herald_contracts::evolution::gate::{
    check_catalog, compare_versions, consumers_of_schema, options_for,
};
use herald_contracts::evolution::{Bump, Mode, Policy};
use herald_contracts::{Catalog, ContractFiles};
use serde_json::{json, Value};

const BASE: &str = "https://contracts.platform.internal/schemas/";

fn usage_v1(files: &ContractFiles) -> Value {
    serde_json::from_slice(&files.files["schemas/UsageEvent/1.0.0.json"]).expect("UsageEvent 1.0.0")
}

/// The shipped contracts plus extra UsageEvent versions, with UsageEvent's catalog
/// settings replaced by `settings` (a TOML inline table).
fn catalog_with(versions: &[(&str, Value)], settings: &str) -> Catalog {
    let mut files = ContractFiles::embedded();
    for (v, doc) in versions {
        let mut doc = doc.clone();
        doc["$id"] = json!(format!("{BASE}UsageEvent/{v}.json"));
        files.files.insert(
            format!("schemas/UsageEvent/{v}.json"),
            serde_json::to_vec_pretty(&doc).unwrap(),
        );
    }
    let toml = String::from_utf8(files.files["catalog.toml"].clone()).unwrap();
    let toml = toml.replace(
        "UsageEvent = { mode = \"backward-transitive\" }",
        &format!("UsageEvent = {settings}"),
    );
    files.files.insert("catalog.toml".into(), toml.into_bytes());
    Catalog::from_files(files).expect("catalog loads")
}

fn with_property(mut doc: Value, name: &str, schema: Value) -> Value {
    doc["properties"][name] = schema;
    doc
}

#[test]
fn shipped_catalog_passes_and_resolves_common_refs() {
    let catalog = Catalog::embedded().unwrap();
    let gate = check_catalog(&catalog);
    assert!(gate.is_ok(), "{:?}", gate.violations());
    // a self-comparison through `../common/1.0.0.json` refs: no change
    let r = compare_versions(&catalog, "UsageEvent", "1.0.0", "1.0.0", None).unwrap();
    assert!(r.changes.is_empty(), "{:#?}", r.changes);
    assert_eq!(
        options_for(&catalog, "UsageEvent").unwrap().mode,
        Mode::BackwardTransitive
    );
    assert_eq!(options_for(&catalog, "Heartbeat").unwrap().mode, Mode::Seed);
}

#[test]
fn optional_field_on_open_model_depends_on_policy() {
    let files = ContractFiles::embedded();
    let v110 = with_property(
        usage_v1(&files),
        "billing_account_id",
        json!({"type": "string"}),
    );
    let strict = catalog_with(
        &[("1.1.0", v110.clone())],
        "{ mode = \"backward-transitive\" }",
    );
    let gate = check_catalog(&strict);
    let v = gate.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].starts_with("UsageEvent: 1.1.0 is not backward-transitive compatible with 1.0.0: property.added at `/properties/billing_account_id`"),
        "{v:?}"
    );
    assert!(v[0].contains("2.0.0"), "{v:?}");
    let lenient = catalog_with(
        &[("1.1.0", v110)],
        "{ mode = \"backward-transitive\", policy = \"lenient\" }",
    );
    let gate = check_catalog(&lenient);
    assert!(gate.is_ok(), "{:?}", gate.violations());
    let usage = gate
        .schemas
        .iter()
        .find(|s| s.schema == "UsageEvent")
        .unwrap();
    assert_eq!(usage.steps.len(), 1);
    assert_eq!(usage.steps[0].report.needed_bump, Bump::Minor);
    assert_eq!(
        options_for(&lenient, "UsageEvent").unwrap().policy,
        Policy::Lenient
    );
}

#[test]
fn declared_bumps_must_cover_the_changes() {
    let files = ContractFiles::embedded();
    let v1 = usage_v1(&files);
    // annotation-only change as a patch: fine
    let mut v101 = v1.clone();
    v101["description"] = json!("Tracks service usage (clarified).");
    let c = catalog_with(
        &[("1.0.1", v101.clone())],
        "{ mode = \"backward\", policy = \"lenient\" }",
    );
    assert!(
        check_catalog(&c).is_ok(),
        "{:?}",
        check_catalog(&c).violations()
    );
    // an additive change declared as a patch: needs 1.1.0
    let added = with_property(v1.clone(), "billing_account_id", json!({"type": "string"}));
    let c = catalog_with(
        &[("1.0.1", added.clone())],
        "{ mode = \"backward\", policy = \"lenient\" }",
    );
    let v = check_catalog(&c).violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].contains("declares a patch bump over 1.0.0") && v[0].contains("at least 1.1.0"),
        "{v:?}"
    );
    // removing a required field inside major 1: breaking, needs 2.0.0
    let mut removed = v1.clone();
    removed["properties"]
        .as_object_mut()
        .unwrap()
        .remove("unit");
    let c = catalog_with(
        &[("1.1.0", removed.clone())],
        "{ mode = \"backward\", policy = \"strict\" }",
    );
    let r = compare_versions(&c, "UsageEvent", "1.0.0", "1.1.0", None).unwrap();
    assert!(
        r.compatible,
        "removing an optional field from an open model is backward compatible: {:#?}",
        r.changes
    );
    let c = catalog_with(&[("1.1.0", removed.clone())], "{ mode = \"seed\" }");
    let v = check_catalog(&c).violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].contains("property.removed at `/properties/unit`") && v[0].contains("(2.0.0)"),
        "{v:?}"
    );
    // the same change as a new major passes
    let c = catalog_with(&[("2.0.0", removed)], "{ mode = \"seed\" }");
    assert!(
        check_catalog(&c).is_ok(),
        "{:?}",
        check_catalog(&c).violations()
    );
}

#[test]
fn transitive_mode_checks_every_earlier_version_of_the_major() {
    let files = ContractFiles::embedded();
    let v1 = with_property(usage_v1(&files), "region", json!({"type": "string"}));
    let mut v11 = v1.clone();
    v11["properties"].as_object_mut().unwrap().remove("region");
    let v12 = with_property(v11.clone(), "region", json!({"type": "integer"}));
    // replace 1.0.0 itself so the history is v1 -> v11 -> v12
    let mut v1_fixed = v1.clone();
    v1_fixed["$id"] = json!(format!("{BASE}UsageEvent/1.0.0.json"));
    let history = [("1.0.0", v1_fixed), ("1.1.0", v11), ("1.2.0", v12)];
    let plain = catalog_with(&history, "{ mode = \"backward\", policy = \"lenient\" }");
    assert!(
        check_catalog(&plain).is_ok(),
        "{:?}",
        check_catalog(&plain).violations()
    );
    let transitive = catalog_with(
        &history,
        "{ mode = \"backward-transitive\", policy = \"lenient\" }",
    );
    let gate = check_catalog(&transitive);
    let v = gate.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].starts_with("UsageEvent: 1.2.0 is not backward-transitive compatible with 1.0.0: type.changed at `/properties/region/type`"), "{v:?}");
    let usage = gate
        .schemas
        .iter()
        .find(|s| s.schema == "UsageEvent")
        .unwrap();
    let pairs: Vec<(String, String)> = usage
        .steps
        .iter()
        .map(|s| (s.old.clone(), s.new.clone()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("1.0.0".into(), "1.1.0".into()),
            ("1.1.0".into(), "1.2.0".into()),
            ("1.0.0".into(), "1.2.0".into())
        ]
    );
}

#[test]
fn consumers_are_named_by_schema() {
    let catalog = Catalog::embedded().unwrap();
    let names = consumers_of_schema(&catalog, "OrchestratorStep");
    assert!(!names.is_empty());
    assert!(names.iter().all(|n| n.contains("--")), "{names:?}");
}

#[test]
fn consumer_fields_map_to_changes_that_break_them() {
    use herald_contracts::evolution::gate::{changes_affecting_field, schema_pointer_for_field};
    use herald_contracts::evolution::{compare, NoExternalSchemas, Options};
    assert_eq!(
        schema_pointer_for_field("/cost/amount"),
        "/properties/cost/properties/amount"
    );
    assert_eq!(
        schema_pointer_for_field("/recipients/0/user_id"),
        "/properties/recipients/items/properties/user_id"
    );
    let old = json!({"type": "object", "properties": {
        "cost": {"type": "object", "properties": {"amount": {"type": "number"}, "currency": {"type": "string"}}, "required": ["amount"]},
        "unit": {"type": "string"}
    }, "required": ["cost"]});
    let mut new = old.clone();
    new["properties"]["cost"]["properties"]["amount"] = json!({"type": "string"});
    new["properties"]["cost"]["required"] = json!([]);
    new["properties"].as_object_mut().unwrap().remove("unit");
    let r = compare(&old, &new, &Options::new(Mode::Full), &NoExternalSchemas).unwrap();
    let kinds = |field: &str| -> Vec<String> {
        let mut v: Vec<String> = changes_affecting_field(&r, field)
            .iter()
            .map(|c| c.kind.id())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        kinds("/cost/amount"),
        vec!["required.removed", "type.changed"]
    );
    assert_eq!(kinds("/unit"), vec!["property.removed"]);
    assert!(kinds("/cost/currency").is_empty());
}
