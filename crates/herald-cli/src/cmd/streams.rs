//! `herald streams`: provision the catalog's streams, list what the server holds.

use anyhow::Context;
use herald_runtime::Provisioner;
use serde_json::json;

use crate::output::{ago, print_json, table, Format, Style};
use crate::{Global, Outcome};

/// Provision or list JetStream streams.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: StreamsCommand,
    /// Connection options (last: a flattened `next_help_heading` applies to what follows).
    #[command(flatten)]
    pub connect: super::nats::Connect,
}

#[derive(Debug, clap::Subcommand)]
enum StreamsCommand {
    /// Create or update one stream per topic family, plus DLQ, from the catalog.
    #[command(
        after_help = "A change the server cannot make in place (storage type) or that would lose data \
(lowering max_age or max_bytes, dropping subjects) is refused unless --force.\n\nExit codes: 0 applied \
(or nothing to do), 1 some change refused (or, with --dry-run, drift found), 2 connection error."
    )]
    Apply {
        /// Show the difference between the server and the catalog; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply destructive changes too (may delete stored events).
        #[arg(long)]
        force: bool,
    },
    /// Every stream: subjects, messages, bytes, consumers, first/last sequence, last event's age.
    Ls,
    /// Delete a stream and every event and consumer in it (asks first; --yes to skip).
    #[command(
        after_help = "Without --yes, asks on the terminal; with standard input not a terminal it refuses (exit 2) \
and deletes nothing.\n\nExit codes: 0 deleted, 1 not confirmed, 2 usage, connection error or no such stream."
    )]
    Rm {
        /// Stream name (see `herald streams ls`).
        name: String,
        /// Delete without asking.
        #[arg(long)]
        yes: bool,
    },
}

/// Runs `herald streams`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    let contracts = super::nats::contracts(global)?;
    super::nats::runtime()?.block_on(async {
        let client = super::nats::connect(global, "herald-cli").await?;
        let prov_client = client.clone();
        let prov = Provisioner::new(client, contracts);
        match &args.command {
            StreamsCommand::Apply { dry_run, force } => {
                let plan = prov.apply(*dry_run, *force).await?;
                // Durables and duplicate-store buckets are created here, with these
                // rights: services' credentials may create neither.
                let buckets = &plan.buckets;
                match global.format {
                    Format::Json => {
                        let rows: Vec<_> = plan
                            .streams
                            .iter()
                            .map(|s| json!({"stream": s.stream, "action": format!("{:?}", s.action)}))
                            .collect();
                        let kv: Vec<_> = buckets
                            .iter()
                            .map(|(b, created)| json!({"bucket": b, "created": created}))
                            .collect();
                        let durables: Vec<_> = plan
                            .durables
                            .iter()
                            .map(|(d, created)| json!({"durable": d, "created": created}))
                            .collect();
                        print_json(&json!({"dry_run": plan.dry_run, "drift": plan.has_drift(), "refused": plan.has_refusals(), "streams": rows, "durables": durables, "dedupe_buckets": kv}))?;
                    }
                    Format::Text | Format::Markdown => {
                        print!("{plan}");
                        let verb = if *dry_run { "would create" } else { "created" };
                        for (d, _) in plan.durables.iter().filter(|(_, created)| *created) {
                            println!("durable consumer {d}: {verb}");
                        }
                        for (b, _) in buckets.iter().filter(|(_, created)| *created) {
                            println!("duplicate-store bucket {b}: {verb}");
                        }
                    }
                }
                let failed = plan.has_refusals() || (*dry_run && plan.has_drift());
                if plan.has_refusals() {
                    eprintln!(
                        "{}: some changes were refused; re-run with --force to apply them",
                        Style::stderr().red("refused")
                    );
                }
                Ok(if failed { Outcome::Failed } else { Outcome::Ok })
            }
            StreamsCommand::Ls => {
                let rows = prov.list().await?;
                // When each stream last stored an event (RFC 3339), none when empty.
                let mut last_event = Vec::with_capacity(rows.len());
                for r in &rows {
                    let at = match prov_client.jetstream().get_stream(&r.name).await {
                        Ok(mut s) if r.messages > 0 => s.info().await.ok().and_then(|i| {
                            let t = i.state.last_timestamp;
                            chrono::DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond())
                                .map(|d| d.to_rfc3339())
                        }),
                        _ => None,
                    };
                    last_event.push(at);
                }
                match global.format {
                    Format::Json => {
                        let rows: Vec<_> = rows
                            .iter()
                            .zip(&last_event)
                            .map(|(r, at)| json!({"name": r.name, "subjects": r.subjects, "messages": r.messages, "bytes": r.bytes, "consumers": r.consumers, "first_seq": r.first_seq, "last_seq": r.last_seq, "last_event": at}))
                            .collect();
                        print_json(&json!(rows))?;
                    }
                    Format::Text | Format::Markdown => {
                        let rows: Vec<Vec<String>> = rows
                            .iter()
                            .zip(&last_event)
                            .map(|(r, at)| {
                                vec![
                                    r.name.clone(),
                                    r.subjects.join(","),
                                    r.messages.to_string(),
                                    r.bytes.to_string(),
                                    r.consumers.to_string(),
                                    r.first_seq.to_string(),
                                    r.last_seq.to_string(),
                                    at.as_deref().map_or("-".into(), ago),
                                ]
                            })
                            .collect();
                        crate::out!(
                            "{}",
                            table(
                                &[
                                    "STREAM",
                                    "SUBJECTS",
                                    "MESSAGES",
                                    "BYTES",
                                    "CONSUMERS",
                                    "FIRST",
                                    "LAST",
                                    "LAST EVENT"
                                ],
                                &rows
                            )
                        );
                    }
                }
                Ok(Outcome::Ok)
            }
            StreamsCommand::Rm { name, yes } => {
                let js = prov_client.jetstream();
                let mut stream = js
                    .get_stream(name)
                    .await
                    .with_context(|| format!("no stream {name} on the server"))?;
                let info = stream.info().await?;
                let what = format!(
                    "stream {name} ({} events, {} consumers)",
                    info.state.messages, info.state.consumer_count
                );
                if !crate::confirm::ask(&format!("delete {what}"), *yes)? {
                    eprintln!("not deleted: {what}");
                    return Ok(Outcome::Failed);
                }
                js.delete_stream(name).await?;
                match global.format {
                    Format::Json => print_json(&json!({"deleted": {"stream": name}}))?,
                    Format::Text | Format::Markdown => println!("deleted {what}"),
                }
                Ok(Outcome::Ok)
            }
        }
    })
}
