//! `herald consumers`: the durable consumers on the server, and removing one.

use anyhow::{bail, Context};
use serde_json::json;

use super::lag::{show, Column};
use crate::output::{print_json, Format};
use crate::{Global, Outcome};

/// List or delete consumers.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: ConsumersCommand,
    /// Connection options (last: a flattened `next_help_heading` applies to what follows).
    #[command(flatten)]
    pub connect: super::nats::Connect,
}

#[derive(Debug, clap::Subcommand)]
enum ConsumersCommand {
    /// Every durable consumer: stream, filter, whether the catalog declares it, backlog, last activity.
    Ls {
        /// Only consumers of this stream.
        #[arg(long)]
        stream: Option<String>,
        /// Also the short-lived (ephemeral) consumers of `herald tail` and `herald dlq`.
        #[arg(long)]
        all: bool,
    },
    /// Delete a durable consumer (asks first; --yes to skip). Its events stay in the stream.
    #[command(
        after_help = "Without --yes, asks on the terminal; with standard input not a terminal it refuses (exit 2) \
and deletes nothing. A consumer the catalog declares is recreated by the next `herald streams apply`, \
starting from the stream's first event.\n\nExit codes: 0 deleted, 1 not confirmed, 2 usage, connection error \
or no such consumer."
    )]
    Rm {
        /// Consumer name (see `herald consumers ls`).
        name: String,
        /// The consumer's stream (needed only when several streams have a consumer of that name).
        #[arg(long)]
        stream: Option<String>,
        /// Delete without asking.
        #[arg(long)]
        yes: bool,
    },
}

/// Runs `herald consumers`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    let catalog = global.catalog()?;
    // Each catalog consumer's durable and the replay durable `streams apply` makes for it.
    let declared: Vec<String> = catalog
        .consumers()
        .iter()
        .flat_map(|c| {
            let d = c.durable_name();
            [herald_runtime::replay::replay_durable(&d), d]
        })
        .collect();
    super::nats::runtime()?.block_on(async {
        let client = super::nats::connect(global, "herald-cli").await?;
        match &args.command {
            ConsumersCommand::Ls { stream, all } => {
                let columns = [
                    Column::Stream,
                    Column::Consumer,
                    Column::Filters,
                    Column::Ephemeral,
                    Column::Declared,
                    Column::Pending,
                    Column::AckPending,
                    Column::LastActive,
                ];
                show(
                    global,
                    &client,
                    stream.as_deref(),
                    *all,
                    &columns,
                    &declared,
                )
                .await?;
                Ok(Outcome::Ok)
            }
            ConsumersCommand::Rm { name, stream, yes } => {
                let holders: Vec<String> = herald_runtime::lag::lag(&client, stream.as_deref())
                    .await?
                    .into_iter()
                    .filter(|r| r.consumer == *name)
                    .map(|r| r.stream)
                    .collect();
                let stream = match holders.as_slice() {
                    [] => bail!("no consumer {name} on the server (see `herald consumers ls`)"),
                    [one] => one.clone(),
                    many => bail!(
                        "consumer {name} exists on streams {}: say which with --stream",
                        many.join(", ")
                    ),
                };
                let what = format!("consumer {name} on stream {stream}");
                if !crate::confirm::ask(&format!("delete {what}"), *yes)? {
                    eprintln!("not deleted: {what}");
                    return Ok(Outcome::Failed);
                }
                client
                    .jetstream()
                    .get_stream(&stream)
                    .await
                    .with_context(|| format!("cannot open stream {stream}"))?
                    .delete_consumer(name)
                    .await
                    .with_context(|| format!("cannot delete {what}"))?;
                match global.format {
                    Format::Json => {
                        print_json(&json!({"deleted": {"consumer": name, "stream": stream}}))?
                    }
                    Format::Text | Format::Markdown => crate::outln!("deleted {what}"),
                }
                Ok(Outcome::Ok)
            }
        }
    })
}
