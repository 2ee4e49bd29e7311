//! `herald-fault-child`: the consumer process that `tests/faults.rs` SIGKILLs
//! (a test fixture, not a tool). It consumes `usage.metered.>` from the server
//! at `argv[1]` with the shipped catalog and the key-value duplicate store, and
//! appends one line (the event id) per handler effect to the file `argv[2]`.
//! It runs until killed.

#[path = "fault_config.rs"]
mod fault_config;

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_contracts::Catalog;
use herald_runtime::{ConnectConfig, Consumer, DedupeStore, HeraldClient, Shutdown};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(file)) = (args.next(), args.next()) else {
        eprintln!("usage: herald-fault-child NATS_URL EFFECTS_FILE");
        std::process::exit(2);
    };
    let client = HeraldClient::connect(
        ConnectConfig::default()
            .url(url)
            .name("billing-service")
            .request_timeout(Duration::from_secs(2))
            .max_reconnect_delay(Duration::from_millis(500)),
    )
    .await
    .expect("connect to the test server");
    let dedupe = DedupeStore::key_value(&client, "herald-dedupe-faults", Duration::from_secs(3600))
        .await
        .expect("duplicate store");
    let out = Arc::new(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .expect("effects file"),
    ));
    let catalog = Arc::new(Catalog::embedded().expect("the shipped catalog"));
    let consumer =
        Consumer::new(client, catalog, fault_config::consumer_config(dedupe)).expect("consumer");
    consumer
        .run(
            move |d| {
                let out = out.clone();
                async move {
                    let id = d.value["event_id"].as_str().unwrap_or_default().to_string();
                    // One write(2) per effect with O_APPEND: survives the SIGKILL whole.
                    out.lock()
                        .unwrap()
                        .write_all(format!("{id}\n").as_bytes())
                        .unwrap();
                    Ok(())
                }
            },
            Shutdown::new(),
        )
        .await
        .expect("consumer runs");
}
