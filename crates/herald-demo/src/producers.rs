//! The spec's producing services, each on its own connection: ingestion,
//! the orchestrator's workflows, the model gateway, the realtime gateway, and a
//! legacy non-herald producer publishing bare JSON. Faults are injected here at
//! low, deterministic rates: the first of each kind early in the run (at a fixed
//! fraction of its duration), then periodically.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use serde::Serialize;
use serde_json::{json, Map, Value};
use tokio::sync::watch;
use uuid::Uuid;

use herald_contracts::events::{
    Cost, ErrorInfo, IngestDocumentEvent, IngestStatus, MessageType, RealtimeMessage, Recipient,
    Sender, UsageEvent, UsageType,
};

use super::ledger::Ledger;
use super::services::{tenants, POISON_MARKER};
use super::DemoError;
use herald_runtime::connection::{ConnectConfig, HeraldClient};
use herald_runtime::contracts::Contracts;
use herald_runtime::metrics::{self, SentOutcome};
use herald_runtime::publisher::{Publish, PublishErrorKind, Publisher, PublisherConfig};

/// The producing services, in the order of the report.
pub const PRODUCERS: [&str; 5] = [
    "ingestion-service",
    "orchestrator",
    "model-gateway",
    "realtime-gateway",
    LEGACY_REPORTER,
];

/// The non-herald producer of bare JSON.
pub const LEGACY_REPORTER: &str = "legacy-usage-reporter";

/// Settings shared by every producer task.
#[derive(Clone)]
pub struct ProducerEnv {
    /// Books.
    pub ledger: Ledger,
    /// Catalog.
    pub contracts: Arc<dyn Contracts>,
    /// Connection settings (named per service).
    pub connect: ConnectConfig,
    /// When the run started.
    pub start: Instant,
    /// How long producers produce.
    pub duration: Duration,
    /// Becomes true on Ctrl-C.
    pub stop: watch::Receiver<bool>,
}

/// Paces a producer at `rate` units per second until the deadline or a stop.
struct Pacer {
    start: Instant,
    duration: Duration,
    rate: f64,
    sent: u64,
    stop: watch::Receiver<bool>,
}

impl Pacer {
    /// Units due now; `None` when the run is over.
    async fn due(&mut self) -> Option<u64> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let elapsed = self.start.elapsed();
        if elapsed >= self.duration || *self.stop.borrow() {
            return None;
        }
        let target = (elapsed.as_secs_f64() * self.rate) as u64;
        let n = target.saturating_sub(self.sent);
        self.sent += n;
        Some(n)
    }

    /// Fraction of the run elapsed (0..1).
    fn progress(&self) -> f64 {
        self.start.elapsed().as_secs_f64() / self.duration.as_secs_f64().max(1e-3)
    }
}

/// A fault that fires once at `first` (fraction of the run), then every `every` units.
struct Periodic {
    first: f64,
    every: u64,
    fired: bool,
    since: u64,
}

impl Periodic {
    fn new(first: f64, every: u64) -> Self {
        Periodic {
            first,
            every,
            fired: false,
            since: 0,
        }
    }

    fn tick(&mut self, progress: f64) -> bool {
        if !self.fired {
            if progress >= self.first {
                self.fired = true;
                return true;
            }
            return false;
        }
        self.since += 1;
        if self.since >= self.every {
            self.since = 0;
            return true;
        }
        false
    }
}

/// How a publish ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Stored,
    Duplicate,
    Refused,
    Failed,
}

struct Producer {
    service: String,
    publisher: Publisher,
    ledger: Ledger,
}

impl Producer {
    async fn new(env: &ProducerEnv, service: &str) -> Result<Self, DemoError> {
        let client = HeraldClient::connect(env.connect.clone().name(service)).await?;
        Ok(Producer {
            service: service.to_string(),
            publisher: Publisher::new(
                client,
                env.contracts.clone(),
                PublisherConfig::new(service).retry_max_elapsed(Duration::from_secs(5)),
            ),
            ledger: env.ledger.clone(),
        })
    }

    /// Publishes through herald and books the outcome.
    async fn send<T: Serialize>(&self, subject: &str, event: &T, options: Publish) -> Sent {
        let started = Instant::now();
        match self.publisher.publish(subject, event, options).await {
            // A duplicate of an event already booked; one not booked yet is stored below:
            // an earlier attempt was stored but its PubAck was lost (a leader change, say),
            // and the retry's answer names it.
            Ok(r) if r.duplicate && self.ledger.is_stored(&r.message_id) => {
                self.ledger.duplicate_dropped(&self.service, subject);
                metrics::record_sent(
                    &self.service,
                    subject,
                    SentOutcome::Duplicate,
                    started.elapsed(),
                );
                Sent::Duplicate
            }
            Ok(r) => {
                self.ledger.stored_from(
                    &self.service,
                    subject,
                    &r.message_id,
                    &r.stream,
                    r.sequence,
                    true,
                    false,
                );
                metrics::record_sent(&self.service, subject, SentOutcome::Ok, started.elapsed());
                Sent::Stored
            }
            Err(e) if e.kind() == PublishErrorKind::Invalid => {
                self.ledger.refused(&self.service, subject);
                metrics::record_sent(&self.service, subject, SentOutcome::Invalid, Duration::ZERO);
                Sent::Refused
            }
            Err(e) => {
                // Counted in the report (FAILED); a leader change in --cluster makes several.
                tracing::debug!(service = %self.service, %subject, error = %e, "publish failed");
                self.ledger.publish_failed(&self.service);
                metrics::record_sent(
                    &self.service,
                    subject,
                    SentOutcome::Failed,
                    started.elapsed(),
                );
                Sent::Failed
            }
        }
    }
}

fn pick<T: Copy>(items: &[T]) -> T {
    items[rand::random_range(0..items.len())]
}

fn usage(
    service: &str,
    kind: UsageType,
    tenant: Uuid,
    quantity: f64,
    rate: f64,
    metadata: Option<Map<String, Value>>,
) -> UsageEvent {
    let (resource, unit) = match kind {
        UsageType::ModelInference => ("tokens", "tokens"),
        _ => ("requests", "requests"),
    };
    UsageEvent {
        schema: None,
        event_id: Uuid::new_v4(),
        timestamp: Utc::now(),
        service_name: service.into(),
        user_id: Uuid::new_v4(),
        tenant_id: tenant,
        event_type: kind,
        resource_type: resource.into(),
        quantity,
        unit: Some(unit.into()),
        cost: Cost {
            amount: (quantity * rate * 1e6).round() / 1e6,
            currency: "USD".into(),
            rate: Some(rate),
            extra: Map::new(),
        },
        region: None,
        correlation_id: None,
        metadata,
        extra: Map::new(),
    }
}

/// A message `service` pushes to a new user on the user's channel (to one connection of
/// theirs, if given): both gateways push these.
fn push(
    service: &str,
    message_type: MessageType,
    payload: Map<String, Value>,
    connection_id: Option<String>,
) -> RealtimeMessage {
    let user = Uuid::new_v4();
    RealtimeMessage {
        schema: None,
        message_id: Uuid::new_v4(),
        timestamp: Utc::now(),
        channel: format!("user:{user}"),
        message_type,
        payload,
        sender: Sender {
            service_name: service.into(),
            user_id: None,
            extra: Map::new(),
        },
        recipients: Some(vec![Recipient {
            user_id: user,
            connection_id,
            extra: Map::new(),
        }]),
        correlation_id: None,
        metadata: None,
        extra: Map::new(),
    }
}

/// ingestion-service: processed and failed documents; now and then an invalid
/// `ingest.document.failed` (no `error`), refused at publish.
pub async fn ingestion(env: ProducerEnv, rate: f64) -> Result<(), DemoError> {
    let p = Producer::new(&env, "ingestion-service").await?;
    let mut pacer = pacer(&env, rate);
    let mut invalid = Periodic::new(0.1, 50);
    while let Some(n) = pacer.due().await {
        for _ in 0..n {
            let progress = pacer.progress();
            let failed = rand::random_range(0..10) == 0;
            let mut e = IngestDocumentEvent {
                schema: None,
                event_id: Uuid::new_v4(),
                timestamp: Utc::now(),
                service_name: "ingestion-service".into(),
                tenant_id: pick(&tenants()),
                user_id: Some(Uuid::new_v4()),
                document_id: Uuid::new_v4(),
                status: IngestStatus::Processed,
                source_uri: Some("s3://uploads/report.pdf".into()),
                content_type: Some("application/pdf".into()),
                size_bytes: Some(rand::random_range(10_000..5_000_000)),
                page_count: Some(rand::random_range(1..200)),
                chunk_count: Some(rand::random_range(1..400)),
                processing_time_ms: Some(rand::random_range(50..3000)),
                error: None,
                correlation_id: None,
                metadata: None,
                extra: Map::new(),
            };
            if invalid.tick(progress) {
                // A failed document without its error: the subject's contract refuses it.
                e.status = IngestStatus::Failed;
                if p.send("ingest.document.failed", &e, Publish::build()).await == Sent::Refused {
                    env.ledger.fault(|f| f.invalid_refused_at_publish += 1);
                }
                continue;
            }
            if failed {
                e.status = IngestStatus::Failed;
                e.error = Some(ErrorInfo {
                    code: "ocr_timeout".into(),
                    message: "OCR did not finish within 30s".into(),
                    retryable: Some(true),
                    details: None,
                    extra: Map::new(),
                });
                p.send("ingest.document.failed", &e, Publish::build()).await;
            } else {
                p.send("ingest.document.processed", &e, Publish::build())
                    .await;
            }
        }
    }
    Ok(())
}

/// The orchestrator's sample workflow: (step name, executing service).
const WORKFLOW: [(&str, &str); 3] = [
    ("Process Document", "ingestion-service"),
    ("Retrieve Context", "analytics-service"),
    ("Generate Answer", "model-gateway"),
];

/// orchestrator: three-step workflows, one after another, through the runtime's
/// [`Workflow`](herald_runtime::flows::Workflow) helper (`started`, then `completed` or
/// `failed`, correlated by workflow id); about one step in 25 fails, ending its
/// workflow. The helper does not hand back receipts, so the run books these events
/// from the stream at the end ([`Ledger::workflow`] keeps the ids it ran).
pub async fn orchestrator(env: ProducerEnv, rate: f64) -> Result<(), DemoError> {
    use herald_runtime::flows::{StepError, Workflow};
    let client = HeraldClient::connect(env.connect.clone().name("orchestrator")).await?;
    let publisher = Publisher::new(
        client,
        env.contracts.clone(),
        PublisherConfig::new("orchestrator").retry_max_elapsed(Duration::from_secs(5)),
    );
    let mut pacer = pacer(&env, rate);
    let new_workflow = || {
        let wf = Workflow::new(publisher.clone());
        env.ledger.workflow(wf.id());
        wf
    };
    let mut wf = new_workflow();
    let mut next = 0;
    while let Some(n) = pacer.due().await {
        for _ in 0..n {
            let (step, service) = WORKFLOW[next];
            let fail = rand::random_range(0..25) == 0;
            let work = || async move {
                if fail {
                    Err((
                        "upstream_unavailable".to_string(),
                        format!("{service} did not answer"),
                    ))
                } else {
                    Ok(())
                }
            };
            // A step publishes two events (started, then completed or failed).
            match wf.step(step, service, work).await {
                Ok(()) => {
                    env.ledger.steps_published(2);
                    next += 1
                }
                Err(StepError::Failed { .. }) => {
                    env.ledger.steps_published(2);
                    next = WORKFLOW.len()
                }
                Err(e) => {
                    tracing::debug!(error = %e, "workflow step not published");
                    env.ledger.publish_failed(PRODUCERS[1]);
                    next = WORKFLOW.len();
                }
            }
            if next >= WORKFLOW.len() {
                wf = new_workflow();
                next = 0;
            }
        }
    }
    Ok(())
}

/// model-gateway: model inference usage, API call usage and chat messages; repeats a
/// publish now and then (dropped by the duplicate window) and once publishes the
/// poison event billing cannot price.
pub async fn model_gateway(env: ProducerEnv, rate: f64) -> Result<(), DemoError> {
    let service = "model-gateway";
    let p = Producer::new(&env, service).await?;
    let mut pacer = pacer(&env, rate);
    let mut duplicate = Periodic::new(0.2, 40);
    let mut poison = Periodic::new(0.25, u64::MAX);
    let mut i = 0u64;
    while let Some(n) = pacer.due().await {
        for _ in 0..n {
            i += 1;
            let progress = pacer.progress();
            let tenant = pick(&tenants());
            let tokens = rand::random_range(100..900) as f64;
            let mut meta = Map::new();
            meta.insert(
                "model_name".into(),
                json!(pick(&["gpt-4", "claude", "llama"])),
            );
            meta.insert(
                "response_time_ms".into(),
                json!(rand::random_range(200..3000)),
            );
            let inference = usage(
                service,
                UsageType::ModelInference,
                tenant,
                tokens,
                0.000002,
                Some(meta),
            );
            p.send(
                "usage.metered.model_inference",
                &inference,
                Publish::build(),
            )
            .await;
            if duplicate.tick(progress) {
                // The same event again (a retry after a lost ack, say): same id, dropped.
                let again = p
                    .send(
                        "usage.metered.model_inference",
                        &inference,
                        Publish::build(),
                    )
                    .await;
                if again == Sent::Duplicate {
                    env.ledger.fault(|f| f.duplicate_publishes_dropped += 1);
                }
            }
            if i.is_multiple_of(3) {
                let call = usage(service, UsageType::ApiCall, tenant, 1.0, 0.001, None);
                p.send("usage.metered.api_call", &call, Publish::build())
                    .await;
            }
            if poison.tick(progress) {
                let mut meta = Map::new();
                meta.insert("demo_fault".into(), json!(POISON_MARKER));
                let bad = usage(service, UsageType::ApiCall, tenant, 1.0, 0.001, Some(meta));
                env.ledger.poison(&bad.event_id.to_string());
                env.ledger.fault(|f| f.poison_events += 1);
                p.send("usage.metered.api_call", &bad, Publish::build())
                    .await;
            }
            if i.is_multiple_of(2) {
                let mut payload = Map::new();
                payload.insert(
                    "content".into(),
                    json!("Here is the summary you asked for."),
                );
                payload.insert("role".into(), json!("assistant"));
                let connection = Some(format!("conn-{}", i % 97));
                let msg = push(service, MessageType::ChatMessage, payload, connection);
                p.send("realtime.push.chat_message", &msg, Publish::build())
                    .await;
            }
        }
    }
    Ok(())
}

/// realtime-gateway: notifications pushed to users.
pub async fn realtime_gateway(env: ProducerEnv, rate: f64) -> Result<(), DemoError> {
    let service = "realtime-gateway";
    let p = Producer::new(&env, service).await?;
    let mut pacer = pacer(&env, rate);
    while let Some(n) = pacer.due().await {
        for _ in 0..n {
            let mut payload = Map::new();
            payload.insert("title".into(), json!("Your document is ready"));
            payload.insert("body".into(), json!("report.pdf was processed."));
            let msg = push(service, MessageType::Notification, payload, None);
            p.send("realtime.push.notification", &msg, Publish::build())
                .await;
        }
    }
    Ok(())
}

/// A legacy usage reporter that does not use herald: bare JSON, no headers, plain
/// JetStream publish. Every fifth event lacks its `cost` (invalid: dead-lettered at
/// consume); every seventh is sent twice (stored twice: no `Nats-Msg-Id`, so only the
/// consumers' duplicate stores catch it).
pub async fn legacy_reporter(env: ProducerEnv, rate: f64) -> Result<(), DemoError> {
    let client = HeraldClient::connect(env.connect.clone().name(LEGACY_REPORTER)).await?;
    let js = client.jetstream().clone();
    let subject = "usage.metered.api_call";
    let mut pacer = pacer(&env, rate);
    let mut i = 0u64;
    while let Some(n) = pacer.due().await {
        for _ in 0..n {
            i += 1;
            let mut e = serde_json::to_value(usage(
                LEGACY_REPORTER,
                UsageType::ApiCall,
                pick(&tenants()),
                1.0,
                0.001,
                None,
            ))
            .unwrap_or_default();
            let invalid = i % 5 == 1;
            if invalid {
                if let Some(o) = e.as_object_mut() {
                    o.remove("cost");
                }
            }
            let key = e["event_id"].as_str().unwrap_or_default().to_string();
            let body = Bytes::from(serde_json::to_vec(&e).unwrap_or_default());
            let copies = if i % 7 == 2 { 2 } else { 1 };
            for copy in 0..copies {
                let ack = match js.publish(subject, body.clone()).await {
                    Ok(fut) => fut.await,
                    Err(e) => Err(e),
                };
                match ack {
                    Ok(ack) => {
                        let fresh = env.ledger.stored_from(
                            LEGACY_REPORTER,
                            subject,
                            &key,
                            &ack.stream,
                            ack.sequence,
                            !invalid,
                            true,
                        );
                        env.ledger.fault(|f| {
                            if fresh {
                                f.bare_json_published += 1;
                                if invalid {
                                    f.bare_json_invalid += 1;
                                }
                            }
                            if copy == 1 {
                                f.bare_json_resent += 1;
                                if invalid {
                                    f.bare_json_invalid_resent += 1;
                                }
                            }
                        });
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "legacy publish failed");
                        env.ledger.publish_failed(LEGACY_REPORTER);
                    }
                }
            }
        }
    }
    Ok(())
}

fn pacer(env: &ProducerEnv, rate: f64) -> Pacer {
    Pacer {
        start: env.start,
        duration: env.duration,
        rate: rate.max(0.1),
        sent: 0,
        stop: env.stop.clone(),
    }
}
