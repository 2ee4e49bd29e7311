//! Shared support for the runtime suites (also compiled into herald-tools'
//! tests through `#[path]`): the shipped catalog as the runtime sees it, and
//! clients of a server the test started. Events, waits and catalog edits live
//! in `herald_test_server::testing`, the one home of test helpers.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use herald_runtime::contracts::Contracts;
use herald_runtime::{ConnectConfig, HeraldClient};
use herald_test_server::NatsServer;

pub use herald_test_server::testing::*;

/// The versioned `$id` the shipped catalog gives a `usage.metered.*` event
/// without a `$schema` (the latest UsageEvent 1.x).
pub const USAGE_SCHEMA: &str = "https://contracts.platform.internal/schemas/UsageEvent/1.1.0.json";

/// The shipped catalog, as the runtime takes it.
pub fn contracts() -> Arc<dyn Contracts> {
    Arc::new(shipped_catalog())
}

/// The shipped contracts with `catalog.toml` edited (see `catalog_with`).
pub fn contracts_with(edit: impl FnOnce(&mut toml::Table)) -> Arc<dyn Contracts> {
    Arc::new(catalog_with(edit))
}

pub async fn server() -> NatsServer {
    NatsServer::start()
        .await
        .expect("nats-server must be installed for these tests (apt-get install nats-server)")
}

pub async fn connect(server: &NatsServer, name: &str) -> HeraldClient {
    HeraldClient::connect(
        ConnectConfig::default()
            .url(server.url())
            .name(name)
            .request_timeout(Duration::from_secs(2)),
    )
    .await
    .expect("connect to test server")
}
