//! `versions::history` reuses the diff against the previous version instead of
//! computing it twice; its compatibility reports must equal `compare_history`'s.

use herald_contracts::evolution::compare_history;
use herald_contracts::versions::{document, history, options_for};
use herald_contracts::{Catalog, ContractFiles, Version};
use serde_json::Value;

/// UsageEvent in `mode`, with 1.2.0, 1.3.0, 2.0.0 and 2.1.0 added, each adding an
/// optional property to the one before.
fn contracts(mode: &str) -> Catalog {
    let mut files = ContractFiles::embedded();
    let catalog = String::from_utf8(files.files["catalog.toml"].clone()).unwrap();
    let from = "UsageEvent = { mode = \"backward-transitive\"";
    assert!(catalog.contains(from));
    let catalog = catalog.replace(from, &format!("UsageEvent = {{ mode = \"{mode}\""));
    files
        .files
        .insert("catalog.toml".into(), catalog.into_bytes());
    let base: Value =
        serde_json::from_slice(&files.files["schemas/UsageEvent/1.1.0.json"]).unwrap();
    for (i, v) in ["1.2.0", "1.3.0", "2.0.0", "2.1.0"].iter().enumerate() {
        let mut doc = base.clone();
        doc["$id"] =
            format!("https://contracts.platform.internal/schemas/UsageEvent/{v}.json").into();
        for k in 0..=i {
            doc["properties"][format!("note_{k}")] = serde_json::json!({"type": "string"});
        }
        files.files.insert(
            format!("schemas/UsageEvent/{v}.json"),
            serde_json::to_vec(&doc).unwrap(),
        );
    }
    Catalog::from_files(files).unwrap()
}

#[test]
fn history_reports_equal_compare_history_in_transitive_and_plain_modes() {
    // (mode, comparisons over 1.1.0, 1.2.0, 1.3.0, 2.0.0, 2.1.0)
    for (mode, want_compared) in [("backward-transitive", 1 + 2 + 3 + 1), ("backward", 4)] {
        let catalog = contracts(mode);
        let options = options_for(&catalog, "UsageEvent").unwrap();
        assert_eq!(options.mode.to_string(), mode);
        let versions = &catalog.schemas()["UsageEvent"];
        let steps = history(&catalog, "UsageEvent").unwrap();
        assert_eq!(steps.len(), 6);
        let mut compared = 0;
        for (step, doc) in steps.iter().zip(versions) {
            assert_eq!(doc.version, step.to);
            let earlier: Vec<_> = versions
                .iter()
                .filter(|d| d.version < doc.version && d.version.major == doc.version.major)
                .collect();
            let docs: Vec<_> = earlier.iter().map(|d| document(&catalog, d)).collect();
            let want =
                compare_history(&docs, &document(&catalog, doc), &options, &catalog).unwrap();
            let want: Vec<Value> = want
                .iter()
                .map(|r| serde_json::to_value(r).unwrap())
                .collect();
            let got: Vec<Value> = (step.compatibility.iter())
                .map(|(_, r)| serde_json::to_value(r).unwrap())
                .collect();
            assert_eq!(got, want, "{mode} {}", step.to);
            let against: Vec<Version> = step.compatibility.iter().map(|(v, _)| *v).collect();
            let expected: Vec<Version> = if options.mode.is_transitive() {
                earlier.iter().map(|d| d.version).collect()
            } else {
                earlier.last().map(|d| d.version).into_iter().collect()
            };
            assert_eq!(against, expected, "{mode} {}", step.to);
            compared += want.len();
        }
        // 2.0.0 starts a major: nothing of its own major to compare with.
        assert_eq!(compared, want_compared, "{mode}");
    }
}
