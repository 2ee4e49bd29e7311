//! The one NATS connection of a `herald serve` process.
//!
//! The server starts listening at once and connects in the background, retrying
//! the first connection for ever with capped exponential backoff; after that the
//! client itself reconnects for ever (`max_reconnects(None)` in the runtime).
//! Until connected, and whenever the connection is down, publishes answer 503
//! with `Retry-After` instead of waiting.

use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use herald_runtime::{ConnectConfig, Contracts, HeraldClient, Publisher, PublisherConfig};
use tokio::sync::watch;

/// Shared handle on the connection (cheap to clone).
#[derive(Clone)]
pub struct Bus {
    publisher: watch::Receiver<Option<Publisher>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("connected", &self.connected())
            .finish()
    }
}

impl Bus {
    /// Starts connecting in the background.
    pub fn start(
        connect: ConnectConfig,
        contracts: Arc<dyn Contracts>,
        config: PublisherConfig,
    ) -> Bus {
        let (tx, rx) = watch::channel(None);
        let task = tokio::spawn(async move {
            let mut delay = Duration::from_millis(100);
            loop {
                match HeraldClient::connect(connect.clone()).await {
                    Ok(client) => {
                        tracing::info!(server = client.server_version_text(), "connected to NATS");
                        let _ = tx.send(Some(Publisher::new(client, contracts, config)));
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?delay, "NATS not reachable yet; publishes answer 503 until it is");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
        });
        Bus {
            publisher: rx,
            task: Arc::new(task),
        }
    }

    /// The publisher, once the first connection succeeded.
    pub fn publisher(&self) -> Option<Publisher> {
        self.publisher.borrow().clone()
    }

    /// The client, once the first connection succeeded.
    pub fn client(&self) -> Option<HeraldClient> {
        self.publisher().map(|p| p.client().clone())
    }

    /// Whether the connection is up right now.
    pub fn connected(&self) -> bool {
        self.client()
            .is_some_and(|c| c.nats().connection_state() == State::Connected)
    }

    /// Flushes and closes the connection (after the HTTP side has drained).
    pub async fn close(&self) {
        self.task.abort();
        if let Some(c) = self.client() {
            c.drain().await;
        }
    }
}
