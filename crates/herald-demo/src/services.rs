//! The spec's consuming services, as real herald consumers: analytics,
//! billing (per-tenant totals and quota alerts), usage-metering (the one that
//! crashes mid-run), audit-log (JSON Lines file), notification-service and
//! the chat clients.
//!
//! Each service has its own NATS connection and durable consumers named by the
//! catalog. Handlers apply their effect through the [`Ledger`] so that the
//! books see exactly what each service did.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::sync::Notify;
use uuid::Uuid;

use super::ledger::{Applied, Ledger};
use super::DemoError;
use herald_runtime::connection::{ConnectConfig, HeraldClient};
use herald_runtime::consumer::{
    Consumer, ConsumerConfig, Delivery, HandlerError, HandlerResult, Shutdown, StatsSnapshot,
};
use herald_runtime::contracts::{ConsumerSpec, Contracts};
use herald_runtime::dedupe::DedupeStore;
use herald_runtime::metrics::{self, ConsumedOutcome};
use herald_runtime::publisher::{Publisher, PublisherConfig};

/// The consumer that crashes mid-run (its handler hangs after applying an effect,
/// and the whole consumer with its connection is dropped, as a killed process would be).
pub const CRASHING_SERVICE: &str = "usage-metering";

/// Metadata marker of the poison event billing can never price.
pub const POISON_MARKER: &str = "poison";

/// Tokens tenant 0 may use before billing raises `alerts.quota_exceeded`
/// (small, so that the alert fires in a five-second run).
pub const SMALL_QUOTA_TOKENS: f64 = 2_000.0;

/// The demo's tenants; tenant 0 has the small quota.
pub fn tenants() -> [Uuid; 4] {
    [
        Uuid::from_u128(0x789e0123_e89b_12d3_a456_426614174000),
        Uuid::from_u128(0x789e0123_e89b_12d3_a456_426614174001),
        Uuid::from_u128(0x789e0123_e89b_12d3_a456_426614174002),
        Uuid::from_u128(0x789e0123_e89b_12d3_a456_426614174003),
    ]
}

/// Arms and fires the mid-run crash of [`CRASHING_SERVICE`].
#[derive(Debug, Default)]
pub struct CrashSwitch {
    armed: AtomicBool,
    fired: Notify,
}

impl CrashSwitch {
    /// The next event the crashing service handles will crash it.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Whether this handler call is the one that crashes (true at most once).
    fn take(&self) -> bool {
        self.armed.swap(false, Ordering::SeqCst)
    }
}

/// The audit-log service's append-only JSON Lines file.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<std::io::BufWriter<std::fs::File>>,
    lines: AtomicU64,
}

impl AuditLog {
    /// Creates (truncates) the file at `path`.
    pub fn create(path: PathBuf) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let file = std::fs::File::create(&path)?;
        Ok(AuditLog {
            path,
            file: Mutex::new(std::io::BufWriter::new(file)),
            lines: AtomicU64::new(0),
        })
    }

    fn append(&self, line: &Value) -> std::io::Result<()> {
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::to_writer(&mut *f, line)?;
        f.write_all(b"\n")?;
        self.lines.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Flushes buffered lines to the file.
    pub fn flush(&self) -> std::io::Result<()> {
        self.file.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }

    /// Lines appended.
    pub fn lines(&self) -> u64 {
        self.lines.load(Ordering::Relaxed)
    }

    /// The file.
    pub fn path(&self) -> &PathBuf {
        &self.path
    }
}

/// What a consuming service does with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Analytics,
    Billing,
    UsageMetering,
    Audit,
    Notification,
    ChatClient,
}

impl Role {
    fn of(service: &str) -> Option<Role> {
        Some(match service {
            "analytics-service" => Role::Analytics,
            "billing-service" => Role::Billing,
            "usage-metering" => Role::UsageMetering,
            "audit-log" => Role::Audit,
            "notification-service" => Role::Notification,
            "chat-clients" => Role::ChatClient,
            _ => return None,
        })
    }
}

/// One demo consumer: the catalog's declaration plus the demo's durable name.
#[derive(Debug, Clone)]
pub struct DemoConsumer {
    /// The catalog's declaration.
    pub def: ConsumerSpec,
    /// Durable name used in this run.
    pub durable: String,
    /// Stream it reads.
    pub stream: String,
}

/// The consumers the demo runs: every catalog consumer of a demo service.
pub fn demo_consumers(contracts: &dyn Contracts, durable_suffix: &str) -> Vec<DemoConsumer> {
    contracts
        .consumers()
        .into_iter()
        .filter(|c| Role::of(&c.service).is_some())
        .filter_map(|def| {
            let stream = herald_runtime::consumer::stream_for_filter(contracts, &def.filter)?;
            Some(DemoConsumer {
                durable: format!("{}{durable_suffix}", def.durable_name()),
                stream,
                def,
            })
        })
        .collect()
}

/// Billing's state: per-tenant token totals and the tenants already alerted.
#[derive(Debug, Default)]
struct Billing {
    tokens: HashMap<Uuid, f64>,
    amount: HashMap<Uuid, f64>,
    alerted: HashSet<Uuid>,
    breached_at: HashMap<Uuid, DateTime<Utc>>,
}

struct HandlerCtx {
    role: Role,
    service: String,
    durable: String,
    ledger: Ledger,
    audit: Arc<AuditLog>,
    crash: Arc<CrashSwitch>,
    billing: Arc<Mutex<Billing>>,
    publisher: Option<Publisher>,
}

/// Settings shared by every service task.
#[derive(Clone)]
pub struct ServiceEnv {
    /// Books.
    pub ledger: Ledger,
    /// Catalog.
    pub contracts: Arc<dyn Contracts>,
    /// Connection settings (named per service).
    pub connect: ConnectConfig,
    /// Stops every consumer.
    pub shutdown: Shutdown,
    /// Audit file.
    pub audit: Arc<AuditLog>,
    /// The mid-run crash.
    pub crash: Arc<CrashSwitch>,
}

fn event_latency(value: &Value) -> Option<Duration> {
    let ts = value.get("timestamp")?.as_str()?;
    let t = DateTime::parse_from_rfc3339(ts).ok()?.with_timezone(&Utc);
    (Utc::now() - t).to_std().ok()
}

fn is_poison(value: &Value) -> bool {
    value
        .pointer("/metadata/demo_fault")
        .and_then(Value::as_str)
        == Some(POISON_MARKER)
}

async fn handle(ctx: Arc<HandlerCtx>, d: Delivery) -> HandlerResult {
    if ctx.role == Role::Billing && is_poison(&d.value) {
        return Err(HandlerError::Retry(
            "no tariff for this event (poison): pricing failed".into(),
        ));
    }
    // The ledger books what was stored by its message id (the PubAck's), so
    // look the delivery up the same way; bare JSON falls back to its identity.
    let key = d
        .header(herald_runtime::headers::MSG_ID)
        .filter(|id| !id.trim().is_empty())
        .map(str::to_owned)
        .or_else(|| d.key.clone())
        .unwrap_or_else(|| format!("{}:{}", d.stream, d.stream_seq));
    let latency = event_latency(&d.value);
    if let Some(age) = latency {
        metrics::record_event_age(&ctx.service, &d.subject, age);
    }
    metrics::record_consumed(&ctx.service, &d.subject, ConsumedOutcome::Ack);
    match ctx.ledger.apply(
        &ctx.service,
        &ctx.durable,
        &d.subject,
        &key,
        d.delivered,
        latency,
    ) {
        Applied::Redelivery => return Ok(()),
        Applied::Fresh => {}
    }
    match ctx.role {
        Role::Billing => billing_effect(&ctx, &d).await,
        Role::Audit => {
            let line = json!({
                "audited_at": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "consumer": ctx.durable,
                "subject": d.subject,
                "stream_seq": d.stream_seq,
                "event": d.value,
            });
            if let Err(e) = ctx.audit.append(&line) {
                tracing::warn!(error = %e, "audit-log append failed");
            }
        }
        Role::UsageMetering => {
            if ctx.crash.take() {
                // The effect is applied, the ack never leaves: the process "dies" here.
                ctx.crash.fired.notify_one();
                futures::future::pending::<()>().await;
            }
        }
        Role::Analytics | Role::Notification | Role::ChatClient => {}
    }
    Ok(())
}

async fn billing_effect(ctx: &HandlerCtx, d: &Delivery) {
    if !d.subject.starts_with("usage.metered.") {
        return;
    }
    let Some(tenant) = d
        .value
        .get("tenant_id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
    else {
        return;
    };
    let tokens = if d.value.get("event_type").and_then(Value::as_str) == Some("model_inference") {
        d.value
            .get("quantity")
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
    } else {
        0.0
    };
    let amount = d
        .value
        .pointer("/cost/amount")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let quota = if tenant == tenants()[0] {
        SMALL_QUOTA_TOKENS
    } else {
        f64::INFINITY
    };
    let breach = {
        let mut b = ctx.billing.lock().unwrap_or_else(|p| p.into_inner());
        *b.amount.entry(tenant).or_default() += amount;
        let total = {
            let t = b.tokens.entry(tenant).or_default();
            *t += tokens;
            *t
        };
        if total > quota && !b.alerted.contains(&tenant) {
            b.alerted.insert(tenant);
            let since = *b.breached_at.entry(tenant).or_insert_with(Utc::now);
            Some((total, since))
        } else {
            None
        }
    };
    let (Some((total, since)), Some(publisher)) = (breach, &ctx.publisher) else {
        return;
    };
    let alert = herald_watch::quota_exceeded_event(
        "billing-service",
        tenant,
        "monthly_tokens",
        total,
        quota,
        since,
        Utc::now(),
    );
    let subject = "alerts.quota_exceeded";
    match publisher.publish(subject, &alert, d.follow_up()).await {
        Ok(r) if !r.duplicate => {
            ctx.ledger
                .stored_by(&ctx.service, subject, &r.message_id, &r.stream, r.sequence)
        }
        Ok(_) => {}
        Err(e) => {
            // Not sent: let the next usage event of this tenant try again.
            tracing::warn!(error = %e, "quota alert not published");
            ctx.billing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .alerted
                .remove(&tenant);
        }
    }
}

/// Demo tuning of a catalog consumer: short retry delays and few deliveries so a
/// poison event reaches the DLQ within a second; the crashing consumer gets a short
/// `ack_wait` so its unacked events come back quickly after the crash.
fn demo_config(c: &DemoConsumer) -> ConsumerConfig {
    let mut cfg = ConsumerConfig::from_def(&c.def)
        .durable(c.durable.clone())
        .concurrency(8)
        .max_deliver(c.def.max_deliver.min(4))
        .backoff(vec![
            Duration::from_millis(100),
            Duration::from_millis(200),
            Duration::from_millis(400),
        ])
        .shutdown_grace(Duration::from_secs(2));
    if c.def.service == CRASHING_SERVICE {
        cfg = cfg.ack_wait(Duration::from_secs(2));
    }
    cfg
}

/// Runs one service (all its consumers on one connection) until shutdown. The
/// crashing service loses its connection and state mid-run and starts again.
pub async fn run_service(
    env: ServiceEnv,
    service: String,
    consumers: Vec<DemoConsumer>,
) -> Result<(), DemoError> {
    let Some(role) = Role::of(&service) else {
        return Ok(());
    };
    let billing = Arc::new(Mutex::new(Billing::default()));
    let mut crashed = false;
    loop {
        let client = HeraldClient::connect(env.connect.clone().name(service.clone())).await?;
        let publisher = (role == Role::Billing).then(|| {
            Publisher::new(
                client.clone(),
                env.contracts.clone(),
                PublisherConfig::new(service.clone()),
            )
        });
        let mut runs = Vec::new();
        for c in &consumers {
            // A restarted process starts with an empty in-memory duplicate store.
            let cfg = demo_config(c).dedupe(DedupeStore::memory(100_000));
            let consumer = Consumer::new(client.clone(), env.contracts.clone(), cfg)
                .map_err(|e| DemoError::Consumer(e.to_string()))?;
            env.ledger
                .register_consumer(&service, &c.durable, consumer.stats());
            let ctx = Arc::new(HandlerCtx {
                role,
                service: service.clone(),
                durable: c.durable.clone(),
                ledger: env.ledger.clone(),
                audit: env.audit.clone(),
                crash: env.crash.clone(),
                billing: billing.clone(),
                publisher: publisher.clone(),
            });
            let shutdown = env.shutdown.clone();
            runs.push(async move {
                consumer
                    .run(
                        move |d| {
                            let ctx = ctx.clone();
                            async move { handle(ctx, d).await }
                        },
                        shutdown,
                    )
                    .await
            });
        }
        let all = futures::future::join_all(runs);
        if role == Role::UsageMetering && !crashed {
            tokio::select! {
                results = all => return settle(results),
                _ = env.crash.fired.notified() => {
                    // Dropping the futures aborts the handlers; the connection goes with them.
                    env.ledger.crash_event(&service, false);
                    crashed = true;
                }
            }
            drop(client);
            tokio::time::sleep(Duration::from_millis(300)).await;
            env.ledger.crash_event(&service, true);
            continue;
        }
        let results = all.await;
        client.drain().await;
        return settle(results);
    }
}

fn settle(
    results: Vec<Result<StatsSnapshot, herald_runtime::consumer::ConsumeError>>,
) -> Result<(), DemoError> {
    for r in results {
        r.map_err(|e| DemoError::Consumer(e.to_string()))?;
    }
    Ok(())
}
