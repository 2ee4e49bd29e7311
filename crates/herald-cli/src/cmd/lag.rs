//! `herald lag`: per consumer, how far behind it is. Its table is built by [`show`], which
//! `herald consumers ls` uses with other columns.

use herald_runtime::lag::ConsumerLag;
use serde_json::{json, Value};

use crate::output::{ago, print_json, table, terminal_safe, Format};
use crate::{Global, Outcome};

/// Show consumer lag: pending, ack-pending, redelivered, waiting, last activity.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Short-lived consumers without a durable name (those of `herald tail` and `herald dlq`, \
gone when their client is) are left out unless --all; the JSON output marks them \"ephemeral\": true."
)]
pub struct Args {
    /// Only consumers of this stream.
    #[arg(long)]
    stream: Option<String>,
    /// Also show short-lived (ephemeral) consumers.
    #[arg(long)]
    all: bool,
    /// Connection options (last: a flattened `next_help_heading` applies to what follows).
    #[command(flatten)]
    pub connect: super::nats::Connect,
}

/// The columns of `herald lag`, in order (JSON keys in the same order).
const COLUMNS: [Column; 8] = [
    Column::Stream,
    Column::Consumer,
    Column::Pending,
    Column::AckPending,
    Column::Redelivered,
    Column::Waiting,
    Column::LastActive,
    Column::Ephemeral,
];

/// Runs `herald lag`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    super::nats::runtime()?.block_on(async {
        let client = super::nats::connect(global, "herald-cli").await?;
        show(
            global,
            &client,
            args.stream.as_deref(),
            args.all,
            &COLUMNS,
            &[],
        )
        .await?;
        Ok(Outcome::Ok)
    })
}

/// A column of the consumer tables of `herald lag` and `herald consumers ls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Column {
    Stream,
    /// Marked "(ephemeral)" in text unless the table has [`Column::Declared`], which says so.
    Consumer,
    Filters,
    /// JSON only: text marks an ephemeral consumer in another column.
    Ephemeral,
    /// Whether the catalog declares the consumer ("IN CATALOG").
    Declared,
    Pending,
    AckPending,
    Redelivered,
    Waiting,
    LastActive,
}

impl Column {
    /// The text heading (`None`: the JSON output only) and the JSON key.
    fn names(self) -> (Option<&'static str>, &'static str) {
        match self {
            Column::Stream => (Some("STREAM"), "stream"),
            Column::Consumer => (Some("CONSUMER"), "consumer"),
            Column::Filters => (Some("FILTER"), "filters"),
            Column::Ephemeral => (None, "ephemeral"),
            Column::Declared => (Some("IN CATALOG"), "declared"),
            Column::Pending => (Some("PENDING"), "pending"),
            Column::AckPending => (Some("ACK-PENDING"), "ack_pending"),
            Column::Redelivered => (Some("REDELIVERED"), "redelivered"),
            Column::Waiting => (Some("WAITING"), "waiting"),
            Column::LastActive => (Some("LAST ACTIVE"), "last_active"),
        }
    }

    fn json(self, r: &ConsumerLag, declared: &[String]) -> Value {
        match self {
            Column::Stream => json!(r.stream),
            Column::Consumer => json!(r.consumer),
            Column::Filters => json!(r.filters),
            Column::Ephemeral => json!(r.ephemeral),
            Column::Declared => json!(declared.contains(&r.consumer)),
            Column::Pending => json!(r.pending),
            Column::AckPending => json!(r.ack_pending),
            Column::Redelivered => json!(r.redelivered),
            Column::Waiting => json!(r.waiting),
            Column::LastActive => json!(r.last_active),
        }
    }

    /// The text cell; `mark_ephemeral` puts "(ephemeral)" after the consumer's name.
    fn text(self, r: &ConsumerLag, declared: &[String], mark_ephemeral: bool) -> String {
        match self {
            Column::Stream => r.stream.clone(),
            Column::Consumer if mark_ephemeral && r.ephemeral => {
                format!("{} (ephemeral)", terminal_safe(&r.consumer, false))
            }
            Column::Consumer => terminal_safe(&r.consumer, false),
            Column::Filters => terminal_safe(&r.filters.join(","), false),
            Column::Ephemeral => r.ephemeral.to_string(),
            Column::Declared if r.ephemeral => "ephemeral".into(),
            Column::Declared if declared.contains(&r.consumer) => "yes".into(),
            Column::Declared => "no (ad hoc)".into(),
            Column::Pending => r.pending.to_string(),
            Column::AckPending => r.ack_pending.to_string(),
            Column::Redelivered => r.redelivered.to_string(),
            Column::Waiting => r.waiting.to_string(),
            Column::LastActive => r.last_active.as_deref().map_or("-".into(), ago),
        }
    }
}

/// Prints the consumers (of `stream`, ephemeral ones only with `all`) in `columns`;
/// `declared` names the durables the catalog declares.
pub(super) async fn show(
    global: &Global,
    client: &herald_runtime::HeraldClient,
    stream: Option<&str>,
    all: bool,
    columns: &[Column],
    declared: &[String],
) -> anyhow::Result<()> {
    let rows: Vec<ConsumerLag> = herald_runtime::lag::lag(client, stream)
        .await?
        .into_iter()
        .filter(|r| all || !r.ephemeral)
        .collect();
    match global.format {
        Format::Json => {
            let rows: Vec<Value> = rows
                .iter()
                .map(|r| {
                    let fields = columns
                        .iter()
                        .map(|c| (c.names().1.to_string(), c.json(r, declared)));
                    Value::Object(fields.collect())
                })
                .collect();
            print_json(&json!(rows))
        }
        Format::Text | Format::Markdown => {
            let (shown, headings): (Vec<Column>, Vec<&str>) = columns
                .iter()
                .filter_map(|c| Some((*c, c.names().0?)))
                .unzip();
            let mark_ephemeral = !shown.contains(&Column::Declared);
            let rows: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    shown
                        .iter()
                        .map(|c| c.text(r, declared, mark_ephemeral))
                        .collect()
                })
                .collect();
            crate::out!("{}", table(&headings, &rows));
            Ok(())
        }
    }
}
