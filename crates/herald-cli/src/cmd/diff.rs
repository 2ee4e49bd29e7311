//! `herald diff`: compare two schema versions semantically.

use std::path::Path;

use anyhow::Context;
use herald_contracts::evolution::{self, render, Document, Mode, Policy};
use herald_contracts::{Catalog, SchemaRef};
use serde_json::Value;

use crate::output::{print_json, Format};
use crate::{Global, Outcome};

/// Compare two JSON Schemas: files, or Name@VERSION from the contracts.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Modes: seed (the spec's table; default), backward, forward, full, and their -transitive forms \
(Confluent Schema Registry's meanings). backward: the new schema accepts everything the old one did (new \
readers, old events); forward: the old schema accepts everything the new one does (old consumers, new events).\n\n\
Examples:\n  herald diff UsageEvent@1.0.0 UsageEvent@1.1.0\n  herald diff old.json new.json --mode backward --policy strict\n  \
herald --format markdown diff UsageEvent@1.0.0 ./UsageEvent-next.json\n\n\
Warnings (printed, and in the JSON `warnings` field): NEW older than OLD (a downgrade), and OLD and NEW \
being different schemas.\n\n\
Contracts (for Name@VERSION): --contracts DIR, else the nearest contracts/catalog.toml from the current \
directory upwards, else the contracts built into herald; the first line says which.\n\n\
Exit codes: 0 compatible, 1 breaking (or undecidable), 2 error."
)]
pub struct Args {
    /// The old schema: a file or Name@VERSION.
    old: String,
    /// The new schema: a file or Name@VERSION.
    new: String,
    /// Compatibility mode (default: the catalog's mode for the schema, else seed).
    #[arg(long)]
    mode: Option<String>,
    /// Open content models: strict (adding a property to an open model is incompatible) or lenient.
    #[arg(long)]
    policy: Option<String>,
}

struct Side {
    schema: Value,
    uri: Option<String>,
    name: Option<String>,
    version: Option<herald_contracts::Version>,
    label: String,
}

fn load(catalog: &Catalog, arg: &str) -> anyhow::Result<Side> {
    let path = Path::new(arg);
    if path.is_file() || !arg.contains('@') {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {arg}"))?;
        let schema: Value =
            serde_json::from_str(&text).with_context(|| format!("{arg} is not JSON"))?;
        let id = schema.get("$id").and_then(Value::as_str).map(String::from);
        let parsed = id
            .as_deref()
            .and_then(|id| herald_contracts::schema::parse_id(&catalog.settings().schema_base, id));
        let (name, version) = match parsed {
            Some((n, v)) => (Some(n), Some(v)),
            None => (None, None),
        };
        let uri = id.or_else(|| {
            std::fs::canonicalize(path)
                .ok()
                .map(|p| format!("file://{}", p.display()))
        });
        return Ok(Side {
            schema,
            uri,
            name,
            version,
            label: arg.to_string(),
        });
    }
    let r: SchemaRef = arg.parse().map_err(anyhow::Error::msg)?;
    let doc = catalog
        .schema(&r)
        .with_context(|| format!("unknown schema `{arg}` (see `herald catalog`)"))?;
    Ok(Side {
        schema: doc.document.clone(),
        uri: Some(doc.id.clone()),
        name: Some(doc.name.clone()),
        version: Some(doc.version),
        label: doc.label(),
    })
}

/// Runs `herald diff`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    let catalog = global.catalog()?;
    let old = load(&catalog, &args.old)?;
    let new = load(&catalog, &args.new)?;
    let name = new.name.clone().or_else(|| old.name.clone());
    let mut options = match &name {
        Some(n) if catalog.schemas().contains_key(n) => {
            herald_contracts::versions::options_for(&catalog, n)?
        }
        _ => evolution::Options::default(),
    };
    if let Some(m) = &args.mode {
        options.mode = m.parse::<Mode>()?;
    }
    if let Some(p) = &args.policy {
        options.policy = p.parse::<Policy>()?;
    }
    let reserved: Vec<String> = name
        .as_ref()
        .and_then(|n| catalog.evolution().schemas.get(n))
        .map(|s| s.reserved.clone())
        .unwrap_or_default();
    fn doc<'s>(s: &'s Side, reserved: &[String]) -> Document<'s> {
        let d = Document::new(&s.schema).with_reserved(reserved.to_vec());
        match &s.uri {
            Some(u) => d.with_uri(u.clone()),
            None => d,
        }
    }
    let (old_doc, new_doc) = (doc(&old, &reserved), doc(&new, &reserved));
    let report = evolution::compare_documents(&old_doc, &new_doc, &options, &catalog)?;
    let warnings = warnings(&old, &new);
    let source = global.contracts_source();
    match global.format {
        Format::Json => {
            let mut v = serde_json::to_value(&report)?;
            v["contracts"] = source.to_json();
            v["warnings"] = serde_json::json!(warnings);
            print_json(&v)?
        }
        Format::Markdown => {
            let mut consumers: Vec<String> = match &name {
                Some(n) => catalog
                    .consumers()
                    .iter()
                    .filter(|c| &c.reads.schema == n)
                    .map(|c| c.durable_name())
                    .collect(),
                None => Vec::new(),
            };
            consumers.dedup();
            let title = format!("{} → {}", old.label, new.label);
            crate::outln!("<!-- contracts: {} -->", source.describe());
            for w in &warnings {
                crate::outln!("> **warning:** {w}\n");
            }
            crate::out!("{}", render::markdown(&report, &title, &consumers));
        }
        Format::Text => {
            crate::outln!(
                "{} → {} (mode {}, policy {}; contracts: {})",
                old.label,
                new.label,
                report.mode,
                report.policy,
                source.describe()
            );
            for w in &warnings {
                crate::outln!("warning: {w}");
            }
            crate::out!("{}", render::text(&report));
        }
    }
    Ok(if report.compatible {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}

/// What a user comparing these two sides probably did not mean: the comparison still
/// runs (it can be useful), but the result needs reading with this in mind.
fn warnings(old: &Side, new: &Side) -> Vec<String> {
    let mut w = Vec::new();
    if let (Some(a), Some(b)) = (&old.name, &new.name) {
        if a != b {
            w.push(format!(
                "OLD is schema {a} and NEW is schema {b}: these are different schemas, not two \
versions of one"
            ));
        }
    }
    if let (Some(a), Some(b)) = (old.version, new.version) {
        let same_schema = old.name == new.name;
        if same_schema && (b.major, b.minor, b.patch) < (a.major, a.minor, a.patch) {
            w.push(format!(
                "NEW ({b}) is older than OLD ({a}): this is a downgrade; swap the arguments to \
judge the upgrade"
            ));
        }
    }
    w
}
