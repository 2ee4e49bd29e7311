//! The spec's event flow patterns on top of [`Publisher`] and [`crate::Consumer`].
//!
//! - **Pub-sub** needs no helper: each service runs its own durable
//!   [`crate::Consumer`] on the subject and gets every event independently.
//! - **Request-response**: [`request`] publishes a request event (durably, through
//!   JetStream) carrying a fresh correlation id and a reply subject (an inbox), and
//!   resolves with the first response carrying that correlation id. The responder
//!   side, [`respond`], publishes the response event durably *and* sends it to the
//!   reply subject. Late responses (after the timeout) are not delivered to the
//!   caller (its inbox is gone) but stay in their stream for auditing.
//! - **Workflow**: [`Workflow`] runs named steps and emits
//!   `orchestrator.step.started`, `orchestrator.step.completed` (with
//!   `execution_time_ms`) and `orchestrator.step.failed` (with `error`) events,
//!   all correlated by the workflow id.

use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};

use crate::consumer::Delivery;
use crate::headers as h;
use crate::publisher::{Publish, PublishError, PublishReceipt, Publisher};

/// Why a request did not yield a response.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The request event could not be published.
    #[error("request not published: {0}")]
    Publish(#[from] PublishError),
    /// No response within the timeout.
    #[error("no response to request {correlation_id} within {timeout:?}")]
    Timeout {
        /// The request's correlation id.
        correlation_id: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The response violates its contract.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// Subscribing to the reply subject failed.
    #[error("cannot subscribe for the response: {0}")]
    Subscribe(String),
}

/// A response event received by [`request`].
#[derive(Debug, Clone)]
pub struct Response {
    /// The response's subject (`ce-type`).
    pub subject: String,
    /// Decoded, validated payload.
    pub value: Value,
    /// Headers.
    pub headers: HeaderMap,
    /// The correlation id shared with the request.
    pub correlation_id: String,
}

/// Publishes `event` on `subject` as a request and waits up to `timeout` for the
/// response with the same correlation id.
pub async fn request<T: Serialize + ?Sized>(
    publisher: &Publisher,
    subject: &str,
    event: &T,
    timeout: Duration,
) -> Result<Response, RequestError> {
    let nats = publisher.client().nats();
    let inbox = nats.new_inbox();
    let mut sub = nats
        .subscribe(inbox.clone())
        .await
        .map_err(|e| RequestError::Subscribe(e.to_string()))?;
    let correlation_id = crate::headers::fast_uuid();
    publisher
        .publish(
            subject,
            event,
            Publish::build()
                .correlation_id(correlation_id.clone())
                .reply_to(inbox.clone()),
        )
        .await?;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = match tokio::time::timeout(left, sub.next()).await {
            Ok(Some(m)) => m,
            _ => {
                return Err(RequestError::Timeout {
                    correlation_id,
                    timeout,
                })
            }
        };
        let headers = msg.headers.clone().unwrap_or_default();
        let corr = headers
            .get(h::CE_CORRELATIONID)
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        if corr != correlation_id {
            continue; // not ours (a stray or duplicate response)
        }
        let resp_subject = headers
            .get(h::CE_TYPE)
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        let hint = headers
            .get(h::CE_DATASCHEMA)
            .map(|v| v.as_str().to_string());
        let valid = publisher
            .contracts()
            .validate(&resp_subject, hint.as_deref(), &msg.payload)
            .map_err(|e| RequestError::InvalidResponse(e.to_string()))?;
        let _ = sub.unsubscribe().await;
        return Ok(Response {
            subject: resp_subject,
            value: valid.value,
            headers,
            correlation_id,
        });
    }
}

/// Answers `request` (a consumed request event) with `response` on `subject`: published
/// durably with the request's correlation id, then sent to the request's reply subject.
pub async fn respond<T: Serialize + ?Sized>(
    publisher: &Publisher,
    request: &Delivery,
    subject: &str,
    response: &T,
) -> Result<PublishReceipt, PublishError> {
    let payload = serde_json::to_vec(response).map_err(|e| PublishError::Decode {
        subject: subject.to_string(),
        detail: e.to_string(),
    })?;
    let receipt = publisher
        .publish_json(subject, payload.clone(), request.follow_up())
        .await?;
    if let Some(reply) = request.header(h::REPLY_TO) {
        let mut hm = HeaderMap::new();
        hm.insert(h::CE_CORRELATIONID, receipt.correlation_id.as_str());
        hm.insert(h::CE_TYPE, subject);
        hm.insert(h::CONTENT_TYPE, h::JSON);
        hm.insert(h::MSG_ID, receipt.message_id.as_str());
        let _ = publisher
            .client()
            .nats()
            .publish_with_headers(reply.to_string(), hm, Bytes::from(payload))
            .await;
    }
    Ok(receipt)
}

/// A failed workflow step.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The step's work failed (a `failed` event was emitted).
    #[error("step {step} failed: {message}")]
    Failed {
        /// Step name.
        step: String,
        /// Error code.
        code: String,
        /// Error message.
        message: String,
    },
    /// A step event could not be published.
    #[error("step event not published: {0}")]
    Publish(#[from] PublishError),
}

/// Runs the steps of one workflow, emitting `orchestrator.step.*` events.
#[derive(Debug, Clone)]
pub struct Workflow {
    publisher: Publisher,
    workflow_id: String,
}

/// What a step's work returns on failure: `(code, message)`.
pub type StepFailure = (String, String);

impl Workflow {
    /// A new workflow with a fresh id.
    pub fn new(publisher: Publisher) -> Self {
        Self::with_id(publisher, crate::headers::fast_uuid())
    }

    /// A workflow with a given id (e.g. resumed).
    pub fn with_id(publisher: Publisher, workflow_id: impl Into<String>) -> Self {
        Workflow {
            publisher,
            workflow_id: workflow_id.into(),
        }
    }

    /// The workflow id (also the correlation id of every step event).
    pub fn id(&self) -> &str {
        &self.workflow_id
    }

    fn event(&self, step_id: &str, step: &str, service: &str, status: &str) -> Value {
        json!({
            "step_id": step_id,
            "workflow_id": self.workflow_id,
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "step_name": step,
            "status": status,
            "service_name": service,
            "correlation_id": self.workflow_id,
        })
    }

    async fn emit(
        &self,
        subject: &str,
        step_id: &str,
        status: &str,
        ev: &Value,
    ) -> Result<(), PublishError> {
        self.publisher
            .publish(
                subject,
                ev,
                Publish::build()
                    .message_id(format!("{step_id}:{status}"))
                    .correlation_id(self.workflow_id.clone()),
            )
            .await
            .map(|_| ())
    }

    /// Runs step `step` executed by `service`: emits `started`, runs `work`, then emits
    /// `completed` (with `execution_time_ms`) or `failed` (with `error`).
    pub async fn step<F, Fut, T>(&self, step: &str, service: &str, work: F) -> Result<T, StepError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, StepFailure>>,
    {
        let step_id = crate::headers::fast_uuid();
        let started = self.event(&step_id, step, service, "started");
        self.emit("orchestrator.step.started", &step_id, "started", &started)
            .await?;
        let t = Instant::now();
        let result = work().await;
        let ms = t.elapsed().as_millis() as u64;
        match result {
            Ok(v) => {
                let mut ev = self.event(&step_id, step, service, "completed");
                ev["execution_time_ms"] = json!(ms);
                self.emit("orchestrator.step.completed", &step_id, "completed", &ev)
                    .await?;
                Ok(v)
            }
            Err((code, message)) => {
                let mut ev = self.event(&step_id, step, service, "failed");
                ev["execution_time_ms"] = json!(ms);
                ev["error"] = json!({"code": code, "message": message});
                self.emit("orchestrator.step.failed", &step_id, "failed", &ev)
                    .await?;
                Err(StepError::Failed {
                    step: step.to_string(),
                    code,
                    message,
                })
            }
        }
    }
}
