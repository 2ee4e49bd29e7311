//! A service on the platform: one connection, the catalog's consumers of this
//! service looked up by their short names, a publisher that refuses subjects
//! the service does not produce, and what `herald consume` wires for free:
//! heartbeats, the max-deliveries backstop, metrics (recorded through the
//! `metrics` facade) and a graceful drain on SIGTERM/SIGINT.
//!
//! ```no_run
//! use std::sync::Arc;
//! use herald_contracts::{events::UsageEvent, Catalog};
//! use herald_runtime::{ConnectConfig, Service};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let catalog = Arc::new(Catalog::embedded()?);
//! let mut svc = Service::connect(catalog, "billing-service", ConnectConfig::from_env()).await?;
//! svc.consumer("usage", |delivery| async move {
//!     let usage: UsageEvent = delivery.event()?;
//!     println!("{} owes {}", usage.tenant_id, usage.cost.amount);
//!     Ok(())
//! })?;
//! let report = svc.run().await?; // until SIGTERM/SIGINT, then drains
//! println!("{report:?}");
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use herald_contracts::events::Event;
use herald_contracts::Catalog;
use serde::Serialize;

use crate::connection::{ConnectConfig, ConnectError, HeraldClient};
use crate::consumer::{
    termination_signal, watch_max_deliveries, ConsumeError, Consumer, ConsumerConfig, Delivery,
    HandlerResult, Shutdown, StatsSnapshot,
};
use crate::contracts::Contracts;
use crate::heartbeat;
use crate::publisher::{Publish, PublishError, PublishReceipt, Publisher, PublisherConfig};

/// Why a service could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The catalog declares no service of this name.
    #[error("unknown service {name:?}: the catalog declares {}", declared.join(", "))]
    UnknownService {
        /// The name asked for.
        name: String,
        /// The services the catalog declares.
        declared: Vec<String>,
    },
    /// The catalog declares no consumer of this name for the service.
    #[error(
        "{service} has no consumer {name:?} in the catalog; declared: {}",
        if declared.is_empty() { "none".to_owned() } else { declared.join(", ") }
    )]
    UnknownConsumer {
        /// The service.
        service: String,
        /// The short name asked for.
        name: String,
        /// The short names the catalog declares for this service.
        declared: Vec<String>,
    },
    /// The same consumer was registered twice.
    #[error("consumer {0:?} is already registered")]
    DuplicateConsumer(String),
    /// The connection could not be made.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A consumer failed.
    #[error(transparent)]
    Consume(#[from] ConsumeError),
}

/// Why a service's publish was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ServicePublishError {
    /// The catalog does not list this service as a producer of the subject.
    #[error(
        "{service} may not publish on {subject}: the catalog's producers are {}",
        producers.join(", ")
    )]
    NotAProducer {
        /// The publishing service.
        service: String,
        /// The subject.
        subject: String,
        /// The services the catalog lets publish there.
        producers: Vec<String>,
    },
    /// The publish itself failed (validation, permissions, the server).
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// A publisher bound to one service: it publishes only on subjects the
/// catalog lists the service as a producer of. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ServicePublisher {
    inner: Publisher,
    catalog: Arc<Catalog>,
}

impl ServicePublisher {
    fn check(&self, subject: &str) -> Result<(), ServicePublishError> {
        let service = self.inner.service();
        // Unknown subjects fall through to the publisher's own typed error.
        let Some(topic) = self.catalog.topic_for_subject(subject) else {
            return Ok(());
        };
        let producers = self.catalog.producers_of(topic);
        if producers.contains(&service) {
            Ok(())
        } else {
            Err(ServicePublishError::NotAProducer {
                service: service.to_owned(),
                subject: subject.to_owned(),
                producers: producers.into_iter().map(str::to_owned).collect(),
            })
        }
    }

    /// Publishes a typed event on the subject it belongs on.
    pub async fn publish<E: Event>(
        &self,
        event: &E,
    ) -> Result<PublishReceipt, ServicePublishError> {
        self.publish_with(event, Publish::build()).await
    }

    /// Publishes a typed event with per-message options (correlation, trace, ...).
    pub async fn publish_with<E: Event>(
        &self,
        event: &E,
        options: Publish,
    ) -> Result<PublishReceipt, ServicePublishError> {
        let subject = event.subject();
        self.publish_on(&subject, event, options).await
    }

    /// Publishes any serializable event on `subject`, validated against its contract.
    pub async fn publish_on<T: Serialize + ?Sized>(
        &self,
        subject: &str,
        event: &T,
        options: Publish,
    ) -> Result<PublishReceipt, ServicePublishError> {
        self.check(subject)?;
        Ok(self.inner.publish(subject, event, options).await?)
    }

    /// The underlying publisher, without the producer check (for tools).
    pub fn unchecked(&self) -> &Publisher {
        &self.inner
    }
}

type Runner = Box<
    dyn FnOnce(
            Shutdown,
        ) -> Pin<Box<dyn Future<Output = Result<StatsSnapshot, ConsumeError>> + Send>>
        + Send,
>;

struct Registered {
    name: String,
    stream: String,
    run: Runner,
}

/// What a service did before it stopped, per consumer.
#[derive(Debug, Clone)]
pub struct ServiceReport {
    /// `(short name, counters)` for every consumer, in registration order.
    pub consumers: Vec<(String, StatsSnapshot)>,
}

/// One service: see the module documentation.
pub struct Service {
    name: String,
    catalog: Arc<Catalog>,
    contracts: Arc<dyn Contracts>,
    client: HeraldClient,
    publisher: ServicePublisher,
    consumers: Vec<Registered>,
    shutdown: Shutdown,
    heartbeat_interval: Duration,
    drain_timeout: Duration,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .field(
                "consumers",
                &self.consumers.iter().map(|c| &c.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Connects as `name`, a service the catalog declares. The connection is
    /// named after the service and reconnects for ever.
    pub async fn connect(
        catalog: Arc<Catalog>,
        name: &str,
        config: ConnectConfig,
    ) -> Result<Self, ServiceError> {
        if !catalog.services().iter().any(|s| s.name == name) {
            return Err(ServiceError::UnknownService {
                name: name.to_owned(),
                declared: catalog.services().iter().map(|s| s.name.clone()).collect(),
            });
        }
        let config = match config.connection_name() {
            Some(_) => config,
            None => config.name(name),
        };
        let client = HeraldClient::connect(config).await?;
        Ok(Self::with_client(catalog, name, client))
    }

    fn with_client(catalog: Arc<Catalog>, name: &str, client: HeraldClient) -> Self {
        let contracts: Arc<dyn Contracts> = catalog.clone();
        let publisher = ServicePublisher {
            inner: Publisher::new(
                client.clone(),
                contracts.clone(),
                PublisherConfig::new(name),
            ),
            catalog: catalog.clone(),
        };
        Service {
            name: name.to_owned(),
            heartbeat_interval: catalog.monitoring().heartbeat_interval,
            catalog,
            contracts,
            client,
            publisher,
            consumers: Vec::new(),
            shutdown: Shutdown::new(),
            drain_timeout: Duration::from_secs(10),
        }
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connection, shared by the publisher and every consumer.
    pub fn client(&self) -> &HeraldClient {
        &self.client
    }

    /// The service's publisher.
    pub fn publisher(&self) -> &ServicePublisher {
        &self.publisher
    }

    /// A handle that stops [`Service::run`] as SIGTERM would.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// How long in-flight handlers may run after a stop is asked for (default 10 s).
    pub fn drain_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.drain_timeout = timeout;
        self
    }

    /// Registers `handler` for the catalog's consumer `name` of this service
    /// (`"usage"` for `billing-service--usage`), with the catalog's settings.
    pub fn consumer<F, Fut>(&mut self, name: &str, handler: F) -> Result<&mut Self, ServiceError>
    where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.consumer_with(name, |config| config, handler)
    }

    /// As [`Service::consumer`], with the catalog's settings adjusted by
    /// `configure` (concurrency, a KV duplicate store, ...).
    pub fn consumer_with<F, Fut>(
        &mut self,
        name: &str,
        configure: impl FnOnce(ConsumerConfig) -> ConsumerConfig,
        handler: F,
    ) -> Result<&mut Self, ServiceError>
    where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let mine = || {
            self.catalog
                .consumers()
                .iter()
                .filter(|c| c.service == self.name)
        };
        let Some(spec) = mine().find(|c| c.name == name) else {
            return Err(ServiceError::UnknownConsumer {
                service: self.name.clone(),
                name: name.to_owned(),
                declared: mine().map(|c| c.name.clone()).collect(),
            });
        };
        if self.consumers.iter().any(|c| c.name == name) {
            return Err(ServiceError::DuplicateConsumer(name.to_owned()));
        }
        let config = configure(ConsumerConfig::from_def(spec).shutdown_grace(self.drain_timeout));
        let consumer = Consumer::new(self.client.clone(), self.contracts.clone(), config)?;
        let stream = consumer.stream_name().to_owned();
        let run: Runner = Box::new(move |shutdown| {
            Box::pin(async move { consumer.run(handler, shutdown).await })
        });
        self.consumers.push(Registered {
            name: name.to_owned(),
            stream,
            run,
        });
        Ok(self)
    }

    /// Runs every registered consumer, heartbeats and the max-deliveries
    /// backstop until SIGTERM, SIGINT or [`Service::shutdown_handle`]; then
    /// stops pulling, lets in-flight handlers finish within the drain timeout
    /// and flushes every ack before returning.
    pub async fn run(self) -> Result<ServiceReport, ServiceError> {
        let shutdown = self.shutdown.clone();
        let signal = {
            let s = shutdown.clone();
            tokio::spawn(async move {
                termination_signal().await;
                tracing::info!("stop requested: draining");
                s.trigger();
            })
        };
        let beats = heartbeat::spawn(
            self.publisher.inner.clone(),
            self.heartbeat_interval,
            shutdown.clone(),
        );
        let streams: BTreeSet<String> = self.consumers.iter().map(|c| c.stream.clone()).collect();
        let backstops: Vec<_> = streams
            .into_iter()
            .map(|stream| {
                tokio::spawn(watch_max_deliveries(
                    self.client.clone(),
                    stream,
                    shutdown.clone(),
                ))
            })
            .collect();
        if self.consumers.is_empty() {
            // A publish-only service still heartbeats until it is stopped.
            shutdown.requested().await;
        }
        let mut running = Vec::new();
        for c in self.consumers {
            running.push((c.name, tokio::spawn((c.run)(shutdown.clone()))));
        }
        let mut report = ServiceReport {
            consumers: Vec::new(),
        };
        let mut first_error = None;
        for (name, task) in running {
            match task.await {
                Ok(Ok(stats)) => report.consumers.push((name, stats)),
                Ok(Err(e)) => {
                    tracing::error!(consumer = %name, error = %e, "consumer stopped");
                    shutdown.trigger();
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    tracing::error!(consumer = %name, error = %e, "consumer task failed");
                    shutdown.trigger();
                }
            }
        }
        shutdown.trigger();
        signal.abort();
        let _ = tokio::time::timeout(Duration::from_secs(2), beats).await;
        for b in backstops {
            let _ = tokio::time::timeout(Duration::from_secs(2), b).await;
        }
        let _ = tokio::time::timeout(self.drain_timeout, self.client.drain()).await;
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(report),
        }
    }
}
