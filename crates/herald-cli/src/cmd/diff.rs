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
    label: String,
}

fn load(catalog: &Catalog, arg: &str) -> anyhow::Result<Side> {
    let path = Path::new(arg);
    if path.is_file() || !arg.contains('@') {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {arg}"))?;
        let schema: Value =
            serde_json::from_str(&text).with_context(|| format!("{arg} is not JSON"))?;
        let id = schema.get("$id").and_then(Value::as_str).map(String::from);
        let name = id
            .as_deref()
            .and_then(|id| herald_contracts::schema::parse_id(&catalog.settings().schema_base, id))
            .map(|(n, _)| n);
        let uri = id.or_else(|| {
            std::fs::canonicalize(path)
                .ok()
                .map(|p| format!("file://{}", p.display()))
        });
        return Ok(Side {
            schema,
            uri,
            name,
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
    fn doc(s: &Side) -> Document<'_> {
        let d = Document::new(&s.schema);
        match &s.uri {
            Some(u) => d.with_uri(u.clone()),
            None => d,
        }
    }
    let report = evolution::compare_documents(&doc(&old), &doc(&new), &options, &catalog)?;
    match global.format {
        Format::Json => print_json(&report)?,
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
            crate::out!("{}", render::markdown(&report, &title, &consumers));
        }
        Format::Text => {
            crate::outln!(
                "{} → {} (mode {}, policy {})",
                old.label,
                new.label,
                report.mode,
                report.policy
            );
            crate::out!("{}", render::text(&report));
        }
    }
    Ok(if report.compatible {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}
