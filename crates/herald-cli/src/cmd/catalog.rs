//! `herald catalog`: the platform's event topology at a glance.

use herald_contracts::Catalog;
use serde_json::json;

use crate::output::{print_json, table, Format, Style};
use crate::{Global, Outcome};

/// Show topics, subjects with their schemas, and consumers.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Contracts: --contracts DIR, else the nearest contracts/catalog.toml from the current directory \
upwards, else the contracts built into herald; the first line (or the `contracts` field in JSON) says which."
)]
pub struct Args {}

/// Runs `herald catalog`.
pub fn run(global: &Global, _args: &Args) -> anyhow::Result<Outcome> {
    let source = global.contracts_source();
    let catalog = global.catalog()?;
    match global.format {
        Format::Json => {
            let mut v = as_json(&catalog);
            v["contracts"] = source.to_json();
            print_json(&v)?
        }
        Format::Text | Format::Markdown => {
            crate::outln!("contracts: {}", source.describe());
            print_text(&catalog)
        }
    }
    Ok(Outcome::Ok)
}

fn as_json(c: &Catalog) -> serde_json::Value {
    json!({
        "services": c.services(),
        "topics": c.topics(),
        "subjects": c.subjects().iter().map(|s| {
            let versions: Vec<String> = c.schemas().get(&s.schema).map(|v| v.iter()
                .filter(|d| d.version.major == s.major).map(|d| d.version.to_string()).collect()).unwrap_or_default();
            json!({
                "name": s.name, "topic": s.topic, "description": s.description,
                "schema": s.schema, "major": s.major, "versions": versions,
                "identity": s.identity, "constraint": s.constraint,
                "consumers": c.consumers_of(&s.name).iter().map(|c| c.durable_name()).collect::<Vec<_>>(),
            })
        }).collect::<Vec<_>>(),
        "schemas": c.schemas().iter().map(|(name, v)| (name.clone(), json!(v.iter().map(|d| json!({"version": d.version, "id": d.id, "path": d.path})).collect::<Vec<_>>()))).collect::<serde_json::Map<_,_>>(),
        "consumers": c.consumers().iter().map(|k| {
            let mut v = serde_json::to_value(k).unwrap_or_default();
            v["durable_name"] = json!(k.durable_name());
            v
        }).collect::<Vec<_>>(),
        "dlq": c.dlq(),
    })
}

fn print_text(c: &Catalog) {
    let s = Style::stdout();
    crate::outln!("{}", s.bold("Topics"));
    let rows: Vec<Vec<String>> = c
        .topics()
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.stream.name.clone(),
                humantime::format_duration(t.stream.max_age).to_string(),
                t.producers.join(", "),
                t.consumers.join(", "),
                t.description.clone(),
            ]
        })
        .collect();
    crate::out!(
        "{}",
        table(
            &[
                "TOPIC",
                "STREAM",
                "MAX AGE",
                "PRODUCERS",
                "CONSUMERS",
                "DESCRIPTION"
            ],
            &rows
        )
    );
    crate::outln!();
    crate::outln!("{}", s.bold("Subjects"));
    let rows: Vec<Vec<String>> = c
        .subjects()
        .iter()
        .map(|sub| {
            let versions: Vec<String> = c
                .schemas()
                .get(&sub.schema)
                .map(|v| {
                    v.iter()
                        .filter(|d| d.version.major == sub.major)
                        .map(|d| d.version.to_string())
                        .collect()
                })
                .unwrap_or_default();
            vec![
                sub.name.clone(),
                format!("{} [{}]", sub.schema, versions.join(", ")),
                sub.identity.clone(),
                sub.description.clone(),
            ]
        })
        .collect();
    crate::out!(
        "{}",
        table(
            &["SUBJECT", "SCHEMA [VERSIONS]", "IDENTITY", "DESCRIPTION"],
            &rows
        )
    );
    crate::outln!();
    crate::outln!("{}", s.bold("Consumers"));
    let rows: Vec<Vec<String>> = c
        .consumers()
        .iter()
        .map(|k| {
            vec![
                k.durable_name(),
                k.filter.clone(),
                format!("{}@{}", k.reads.schema, k.reads.major),
                k.max_deliver.to_string(),
                k.fields.join(" "),
            ]
        })
        .collect();
    crate::out!(
        "{}",
        table(
            &["CONSUMER", "FILTER", "READS", "MAX DELIVER", "DEPENDS ON"],
            &rows
        )
    );
    crate::outln!();
    crate::outln!(
        "Dead letters: stream {} on {}",
        c.dlq().stream.name,
        c.dlq().stream.subjects.join(", ")
    );
}
