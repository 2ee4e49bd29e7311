//! `herald validate`: check events against a subject's or a schema's contract.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};
use herald_contracts::{Catalog, SchemaRef, ValidationError, Violation};
use serde::Serialize;

use crate::output::{Format, Style};
use crate::{Global, Outcome};

/// Validate events (one JSON document per file, or one per line with --jsonl).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  herald validate --subject usage.metered.model_inference event.json\n  herald validate --schema UsageEvent@1.0.0 a.json b.json\n  cat events.jsonl | herald validate --subject orchestrator.step.completed --jsonl -\n  herald validate event.json   (the event's own $schema)\n\n\
Contracts: --contracts DIR, else the nearest contracts/catalog.toml from the current directory upwards, \
else the contracts built into herald (the `contracts` field in JSON output says which).\n\nExit codes: 0 all valid, 1 some event invalid, 2 unreadable input or unknown subject/schema."
)]
pub struct Args {
    /// Validate against the contract of this subject (schema plus the subject's constraint).
    /// With neither --subject nor --schema, each event's own `$schema` names its schema.
    #[arg(long, conflicts_with = "schema")]
    subject: Option<String>,
    /// Validate against a schema: Name or Name@MAJOR.MINOR.PATCH (default: the event's $schema, else the latest).
    #[arg(long)]
    schema: Option<String>,
    /// Each input holds one event per line (JSON Lines).
    #[arg(long)]
    jsonl: bool,
    /// Largest event accepted, in bytes (default: the catalog's max_event_bytes).
    #[arg(long, value_name = "BYTES")]
    max_bytes: Option<usize>,
    /// Files to read; `-` or nothing reads standard input.
    files: Vec<PathBuf>,
}

#[derive(Serialize)]
struct Result_ {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The machine name of the refusal (`decode_error`, `too_large`, ...), as the
    /// dead-letter queue records it.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    violations: Vec<Violation>,
}

enum Target {
    Subject(String),
    Schema(SchemaRef),
    /// The schema the event's `$schema` names.
    OwnSchema,
}

/// Runs `herald validate`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    let catalog = global.catalog()?;
    let target = match (&args.subject, &args.schema) {
        (Some(s), _) => {
            if catalog.subject(s).is_none() {
                bail!("unknown subject `{s}`: it is not in the catalog (see `herald catalog`)");
            }
            Target::Subject(s.clone())
        }
        (None, Some(s)) => {
            let r: SchemaRef = s.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            if catalog.schema(&r).is_none() {
                bail!("unknown schema `{r}` (see `herald catalog`)");
            }
            Target::Schema(r)
        }
        (None, None) => Target::OwnSchema,
    };
    let limit = args.max_bytes.unwrap_or(catalog.settings().max_event_bytes);
    let inputs: Vec<PathBuf> = if args.files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.files.clone()
    };

    // Results are written as they come (JSON too): memory stays bounded for any input.
    let mut sink = Sink::new(global.format, global.contracts_source().to_json());
    for path in &inputs {
        let (name, reader) = crate::input::open(path)?;
        if args.jsonl {
            let before = sink.checked;
            let mut lines = crate::input::Lines::new(reader, limit);
            while let Some(line) = lines
                .next_line()
                .with_context(|| format!("cannot read {name}"))?
            {
                let r = match line {
                    crate::input::Line::Event { number, bytes } => {
                        check_one(&catalog, &target, &bytes, limit, &name, Some(number))
                    }
                    crate::input::Line::TooLong { number, len } => {
                        let e = ValidationError::TooLarge {
                            size: usize::try_from(len).unwrap_or(usize::MAX),
                            limit,
                        };
                        let mut r = Result_::error(&name, Some(number), &e.to_string());
                        r.reason = Some(e.reason());
                        r
                    }
                };
                sink.push(r);
            }
            if sink.checked == before {
                sink.push(Result_::error(
                    &name,
                    None,
                    "empty input: no event to validate",
                ));
            }
        } else {
            // Keep at most one byte past the limit; count the rest without storing it, so
            // an oversized event is reported with its exact size in bounded memory.
            let mut reader = reader;
            let mut bytes = Vec::new();
            (&mut reader)
                .take(limit as u64 + 1)
                .read_to_end(&mut bytes)
                .with_context(|| format!("cannot read {name}"))?;
            if bytes.len() > limit {
                let rest = std::io::copy(&mut reader, &mut std::io::sink())
                    .with_context(|| format!("cannot read {name}"))?;
                let size = bytes.len() + usize::try_from(rest).unwrap_or(usize::MAX);
                let e = ValidationError::TooLarge { size, limit };
                let mut r = Result_::error(&name, None, &e.to_string());
                r.reason = Some(e.reason());
                sink.push(r);
                continue;
            }
            sink.push(check_one(&catalog, &target, &bytes, limit, &name, None));
        }
    }
    let failed = sink.finish();
    Ok(if failed == 0 {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}

/// Writes each result as soon as it is known, in text or as one JSON document whose
/// `results` array is streamed, followed by the counts.
struct Sink {
    format: Format,
    contracts: serde_json::Value,
    checked: usize,
    invalid: usize,
}

impl Sink {
    fn new(format: Format, contracts: serde_json::Value) -> Self {
        Sink {
            format,
            contracts,
            checked: 0,
            invalid: 0,
        }
    }

    fn push(&mut self, r: Result_) {
        if let Format::Json = self.format {
            let sep = if self.checked == 0 {
                format!(
                    "{{\n  \"contracts\": {},\n  \"results\": [\n",
                    self.contracts
                )
            } else {
                ",\n".to_owned()
            };
            let item = serde_json::to_string(&r).unwrap_or_default();
            crate::out!("{sep}    {item}");
        } else {
            print_one(&Style::stdout(), &r);
        }
        self.checked += 1;
        if !r.valid {
            self.invalid += 1;
        }
    }

    /// Writes the counts; returns how many were invalid.
    fn finish(self) -> usize {
        let (checked, bad) = (self.checked, self.invalid);
        match self.format {
            Format::Json => {
                let open = if checked == 0 {
                    format!("{{\n  \"contracts\": {},\n  \"results\": [", self.contracts)
                } else {
                    "\n  ".to_owned()
                };
                crate::outln!(
                    "{open}],\n  \"valid\": {},\n  \"checked\": {checked},\n  \"invalid\": {bad}\n}}",
                    bad == 0
                );
            }
            Format::Text | Format::Markdown => {
                if checked > 1 {
                    crate::outln!("{checked} checked, {} valid, {bad} invalid", checked - bad);
                }
            }
        }
        bad
    }
}

fn check_one(
    catalog: &Catalog,
    target: &Target,
    bytes: &[u8],
    limit: usize,
    file: &str,
    line: Option<usize>,
) -> Result_ {
    let outcome =
        herald_contracts::catalog::decode_event(bytes, limit).and_then(|event| match target {
            Target::Subject(s) => catalog
                .validate(s, None, &event)
                .map(|v| format!("{}@{}", v.subject.schema, v.version)),
            Target::Schema(r) => catalog.validate_schema(r, &event).map(|d| d.label()),
            Target::OwnSchema => match own_schema(catalog, &event) {
                Ok(r) => catalog.validate_schema(&r, &event).map(|d| d.label()),
                Err(message) => Err(ValidationError::Decode(message)),
            },
        });
    let reason = outcome.as_ref().err().map(ValidationError::reason);
    let (valid, schema, error, violations) = match outcome {
        Ok(schema) => (true, Some(schema), None, Vec::new()),
        Err(ValidationError::Invalid {
            schema_id,
            violations,
        }) => {
            let label = catalog
                .schema_by_id(&schema_id)
                .map(|d| d.label())
                .unwrap_or(schema_id);
            (false, Some(label), None, violations)
        }
        Err(e) => (false, None, Some(e.to_string()), Vec::new()),
    };
    Result_ {
        file: file.to_string(),
        line,
        valid,
        schema,
        error,
        reason,
        violations,
    }
}

/// The schema an event names in `$schema` (used without --subject or --schema).
fn own_schema(catalog: &Catalog, event: &serde_json::Value) -> Result<SchemaRef, String> {
    let Some(id) = event.get("$schema").and_then(serde_json::Value::as_str) else {
        return Err(
            "the event has no $schema: give --subject SUBJECT or --schema NAME[@VERSION]".into(),
        );
    };
    let doc = catalog.schema_by_id(id).ok_or_else(|| {
        format!(
            "the event's $schema `{id}` is not a schema in these contracts (see `herald catalog`)"
        )
    })?;
    Ok(SchemaRef {
        name: doc.name.clone(),
        version: Some(doc.version),
    })
}

impl Result_ {
    fn error(file: &str, line: Option<usize>, error: &str) -> Self {
        Result_ {
            file: file.to_string(),
            line,
            valid: false,
            schema: None,
            error: Some(error.to_string()),
            reason: Some("decode_error"),
            violations: Vec::new(),
        }
    }
}

fn print_one(style: &Style, r: &Result_) {
    let at = match r.line {
        Some(n) => format!("{}:{n}", r.file),
        None => r.file.clone(),
    };
    if r.valid {
        crate::outln!(
            "{at}: {} ({})",
            style.green("valid"),
            r.schema.as_deref().unwrap_or("")
        );
        return;
    }
    if let Some(e) = &r.error {
        crate::outln!("{at}: {}: {e}", style.red("invalid"));
    }
    for v in &r.violations {
        let path = if v.instance_path.is_empty() {
            "/"
        } else {
            &v.instance_path
        };
        crate::outln!(
            "{at}: {}: {path}: {} ({}, {})",
            style.red("invalid"),
            v.message,
            v.keyword,
            r.schema.as_deref().unwrap_or("")
        );
    }
}
