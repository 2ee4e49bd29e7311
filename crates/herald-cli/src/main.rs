//! `herald`: check, validate and evolve the platform's event contracts, and
//! publish, consume and watch events on NATS JetStream.
//!
//! This binary only parses arguments and prints; the work happens in
//! `herald-contracts` and `herald-runtime`.
//!
//! Exit codes, everywhere: 0 success, 1 the checked thing failed (an invalid
//! event, a failed check, a breaking change), 2 usage, I/O or connection error.

mod cmd;
mod confirm;
mod input;
mod output;
mod revision;
mod shutdown;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::output::Format;

/// herald: event contracts for the platform, checked before they hurt a consumer.
#[derive(Debug, Parser)]
#[command(
    name = "herald",
    version,
    about,
    long_about = "herald keeps the platform's events honest. The contracts (JSON Schemas and the \
topic catalog) are the source of truth: `herald check` proves them consistent, `herald validate` \
checks events against them, and the runtime commands publish and consume on NATS JetStream with \
validation, idempotency, retries and a dead-letter queue.\n\nExit codes: 0 ok, 1 check failed, \
2 usage, I/O or connection error.",
    after_help = "Examples:\n  herald check\n  herald validate --subject usage.metered.model_inference event.json\n  herald catalog --format json"
)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand understands.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Contracts directory (holding catalog.toml). Default: the nearest contracts/catalog.toml
    /// from the current directory upwards (as git finds its root), else the contracts built
    /// into herald. Every command says which contracts it used.
    #[arg(long, global = true, env = "HERALD_CONTRACTS", value_name = "DIR")]
    contracts: Option<PathBuf>,
    /// Output format: text for people, json for machines.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// `--server` as given on the command line (not from $NATS_URL): set by `main` from
    /// the command's connection options; `bench` and `demo` start their own server without it.
    #[arg(skip)]
    server: Option<String>,
    /// The connecting command's connection options (defaults for offline commands).
    #[arg(skip)]
    connect: cmd::nats::Connect,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate events against the contract of a subject or a schema.
    Validate(cmd::validate::Args),
    /// Run the contract test suite: schemas, catalog, examples (exit 1 on any failure).
    Check(cmd::check::Args),
    /// Show topics, subjects, schemas, producers and consumers.
    Catalog(cmd::catalog::Args),
    /// Compare two schema versions: every change, its verdict, the bump it needs (exit 1 if breaking).
    Diff(cmd::diff::Args),
    /// Record new schema versions as released in contracts/schemas.lock.
    Lock(cmd::lock::Args),
    /// Print every schema version's classified changes, in Markdown.
    Changelog(cmd::changelog::Args),
    /// Generate the contracts' static documentation site.
    Docs(cmd::docs::Args),
    /// Print the catalog as an AsyncAPI 3.0 document (YAML; JSON with --format json).
    Asyncapi(cmd::asyncapi::Args),
    /// Write self-contained schema files for other languages' validators and generators.
    Export(cmd::export::Args),
    /// Provision the catalog's JetStream streams (apply), list (ls) or delete (rm) them.
    Streams(cmd::streams::Args),
    /// List or delete durable consumers.
    Consumers(cmd::consumers::Args),
    /// Publish events, validated, with idempotency keys and retries.
    Publish(cmd::publish::Args),
    /// Consume a subject and hand each valid event to a command or URL.
    Consume(cmd::consume::Args),
    /// Follow a subject, marking events that fail validation.
    Tail(cmd::tail::Args),
    /// Inspect and replay the dead-letter queue.
    Dlq(cmd::dlq::Args),
    /// Consumer lag: pending, ack-pending, redelivered, waiting, last activity.
    Lag(cmd::lag::Args),
    /// Benchmarks against a real nats-server.
    Bench(cmd::bench::Args),
    /// The platform's services exchanging events over JetStream, faults included; checks its books.
    Demo(cmd::demo::Args),
    /// Watch heartbeats, backlogs, dead letters and connectivity; publish alerts on alerts.*.
    Watch(cmd::watch::Args),
    /// Least-privilege NATS users and permissions derived from the catalog.
    Auth(cmd::auth::Args),
    /// Publish over HTTP, serve the schemas and a read-only Schema Registry subset.
    Serve(cmd::serve::Args),
}

/// What a command concluded, when it ran to the end.
pub enum Outcome {
    /// Everything checked out: exit 0.
    Ok,
    /// The checked thing failed: exit 1.
    Failed,
}

impl Command {
    /// The connection options of a command that connects to NATS.
    fn connect(&self) -> Option<&cmd::nats::Connect> {
        match self {
            Command::Streams(a) => Some(&a.connect),
            Command::Consumers(a) => Some(&a.connect),
            Command::Publish(a) => Some(&a.connect),
            Command::Consume(a) => Some(&a.connect),
            Command::Tail(a) => Some(&a.connect),
            Command::Dlq(a) => Some(&a.connect),
            Command::Lag(a) => Some(&a.connect),
            Command::Bench(a) => Some(&a.connect),
            Command::Demo(a) => Some(&a.connect),
            Command::Watch(a) => Some(&a.connect),
            Command::Serve(a) => Some(&a.connect),
            _ => None,
        }
    }
}

/// Moves connection options written before the subcommand name (`herald --server URL
/// streams ls`, as older scripts and docs have it) to just after it, where they are
/// declared. An offline command then refuses them like any unknown option.
fn hoist_connection_flags(argv: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let connect = cmd::nats::connect_flags();
    let top = Cli::command();
    let takes_value = |long: &str| {
        top.get_arguments()
            .any(|a| a.get_long() == Some(long) && a.get_action().takes_values())
    };
    let mut out = Vec::with_capacity(argv.len());
    let mut moved = Vec::new();
    let mut it = argv.into_iter();
    if let Some(bin) = it.next() {
        out.push(bin);
    }
    while let Some(arg) = it.next() {
        let text = arg.to_string_lossy().into_owned();
        let Some(long) = text.strip_prefix("--").filter(|l| !l.is_empty()) else {
            if text.starts_with('-') {
                out.push(arg);
                continue;
            }
            // The subcommand: the moved options follow it.
            out.push(arg);
            out.append(&mut moved);
            break;
        };
        let (name, inline_value) = match long.split_once('=') {
            Some((n, _)) => (n, true),
            None => (long, false),
        };
        if connect.iter().any(|c| c == name) {
            moved.push(arg);
            if !inline_value {
                moved.extend(it.next());
            }
        } else {
            out.push(arg);
            if !inline_value && takes_value(name) {
                out.extend(it.next());
            }
        }
    }
    out.extend(moved);
    out.extend(it);
    out
}

/// `--server` when given on the command line (not from `$NATS_URL` or the default).
fn server_from_command_line(matches: &clap::ArgMatches) -> Option<String> {
    let mut m = matches;
    while let Some((_, sub)) = m.subcommand() {
        if sub.ids().any(|id| id.as_str() == "server")
            && sub.value_source("server") == Some(clap::parser::ValueSource::CommandLine)
        {
            return sub.get_one::<String>("server").cloned();
        }
        m = sub;
    }
    None
}

fn parse() -> Result<Cli, clap::Error> {
    let argv = hoist_connection_flags(std::env::args_os().collect());
    let matches = Cli::command().try_get_matches_from(argv)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    if let Some(connect) = cli.command.connect() {
        cli.global.connect = connect.clone();
        cli.global.server = server_from_command_line(&matches);
    }
    Ok(cli)
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    // Warnings and errors of every command go to stderr through `tracing` (RUST_LOG
    // overrides the level); `watch` sets up its own, at info. `consume` also reports each
    // dead letter as it happens.
    if !matches!(cli.command, Command::Watch(_)) {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        use tracing_subscriber::Layer;
        let log = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(output::Style::stderr().is_color())
            .with_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            );
        let dead_letters = matches!(cli.command, Command::Consume(_)).then(|| {
            cmd::consume::DeadLetterLines.with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target("herald::dead_letter", tracing::Level::INFO),
            )
        });
        let _ = tracing_subscriber::registry()
            .with(log)
            .with(dead_letters)
            .try_init();
    }
    let result = match &cli.command {
        Command::Validate(args) => cmd::validate::run(&cli.global, args),
        Command::Check(args) => cmd::check::run(&cli.global, args),
        Command::Catalog(args) => cmd::catalog::run(&cli.global, args),
        Command::Diff(args) => cmd::diff::run(&cli.global, args),
        Command::Lock(args) => cmd::lock::run(&cli.global, args),
        Command::Changelog(args) => cmd::changelog::run(&cli.global, args),
        Command::Docs(args) => cmd::docs::run(&cli.global, args),
        Command::Asyncapi(args) => cmd::asyncapi::run(&cli.global, args),
        Command::Export(args) => cmd::export::run(&cli.global, args),
        Command::Streams(args) => cmd::streams::run(&cli.global, args),
        Command::Consumers(args) => cmd::consumers::run(&cli.global, args),
        Command::Publish(args) => cmd::publish::run(&cli.global, args),
        Command::Consume(args) => cmd::consume::run(&cli.global, args),
        Command::Tail(args) => cmd::tail::run(&cli.global, args),
        Command::Dlq(args) => cmd::dlq::run(&cli.global, args),
        Command::Lag(args) => cmd::lag::run(&cli.global, args),
        Command::Bench(args) => cmd::bench::run(&cli.global, args),
        Command::Demo(args) => cmd::demo::run(&cli.global, args),
        Command::Watch(args) => cmd::watch::run(&cli.global, args),
        Command::Auth(args) => cmd::auth::run(&cli.global, args),
        Command::Serve(args) => cmd::serve::run(&cli.global, args),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(e) => {
            let msg = output::error_line(&e);
            eprintln!("{}: {msg}", output::Style::stderr().red("error"));
            ExitCode::from(2)
        }
    }
}

/// Where a command's contracts came from. One rule for every command, so that `check`,
/// `lock`, `diff` and the runtime commands never disagree about what they look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContractsSource {
    /// `--contracts DIR` or `HERALD_CONTRACTS`.
    Given(PathBuf),
    /// The nearest `contracts/catalog.toml` from the current directory upwards.
    Found(PathBuf),
    /// No directory given or found: the contracts compiled into the binary.
    Embedded,
}

impl ContractsSource {
    /// The directory, unless embedded.
    pub fn dir(&self) -> Option<&std::path::Path> {
        match self {
            ContractsSource::Given(d) | ContractsSource::Found(d) => Some(d),
            ContractsSource::Embedded => None,
        }
    }

    /// One line for people: which contracts, and why those.
    pub fn describe(&self) -> String {
        match self {
            ContractsSource::Given(d) => format!("{} (--contracts)", d.display()),
            ContractsSource::Found(d) => {
                format!("{} (found from the current directory)", d.display())
            }
            ContractsSource::Embedded => format!(
                "built into herald {} (no contracts/catalog.toml here or above)",
                env!("CARGO_PKG_VERSION")
            ),
        }
    }

    /// The machine-readable form, for the `contracts` field of JSON output.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ContractsSource::Given(d) => {
                serde_json::json!({"source": "given", "dir": d.display().to_string()})
            }
            ContractsSource::Found(d) => {
                serde_json::json!({"source": "found", "dir": d.display().to_string()})
            }
            ContractsSource::Embedded => serde_json::json!({"source": "embedded", "dir": null}),
        }
    }
}

/// The nearest `contracts/catalog.toml` from `start` upwards.
pub fn find_contracts(start: &std::path::Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|a| a.join("contracts"))
        .find(|c| c.join("catalog.toml").is_file())
}

impl Global {
    /// Which contracts this invocation uses: `--contracts`/`HERALD_CONTRACTS`, else the
    /// nearest `contracts/catalog.toml` upwards from the current directory, else the
    /// embedded contracts.
    pub fn contracts_source(&self) -> ContractsSource {
        if let Some(dir) = &self.contracts {
            return ContractsSource::Given(dir.clone());
        }
        match std::env::current_dir()
            .ok()
            .and_then(|cwd| find_contracts(&cwd))
        {
            Some(dir) => ContractsSource::Found(dir),
            None => ContractsSource::Embedded,
        }
    }

    /// Loads the contracts [`Global::contracts_source`] names.
    pub fn catalog(&self) -> anyhow::Result<herald_contracts::Catalog> {
        Ok(match self.contracts_source().dir() {
            Some(dir) => herald_contracts::Catalog::load(dir)?,
            None => herald_contracts::Catalog::embedded()?,
        })
    }

    /// The contracts directory on disk, for commands that write to it or read its git
    /// history; the same rule as [`Global::catalog`], minus the embedded fallback.
    pub fn contracts_dir(&self) -> anyhow::Result<PathBuf> {
        let Some(dir) = self.contracts_source().dir().map(PathBuf::from) else {
            anyhow::bail!(
                "no contracts/catalog.toml in the current directory or above: run this inside a \
checkout or give --contracts DIR"
            );
        };
        if !dir.join("catalog.toml").is_file() {
            anyhow::bail!(
                "no catalog.toml in {}: give --contracts the directory that holds it",
                dir.display()
            );
        }
        Ok(dir)
    }

    /// The contract files, unloaded (for `herald check`, which reports load failures itself).
    pub fn contract_files(&self) -> anyhow::Result<herald_contracts::ContractFiles> {
        Ok(match self.contracts_source().dir() {
            Some(dir) => herald_contracts::ContractFiles::from_dir(dir)?,
            None => herald_contracts::ContractFiles::embedded(),
        })
    }
}
