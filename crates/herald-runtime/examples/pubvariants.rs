use async_nats::jetstream::message::PublishMessage;
use async_nats::HeaderMap;
use futures::StreamExt;
use herald_runtime::*;
use std::sync::Arc;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let server = NatsServer::start().await.unwrap();
    let client = HeraldClient::connect(ConnectConfig::default().url(server.url()))
        .await
        .unwrap();
    let cat: Arc<dyn Contracts> = Arc::new(herald_contracts::Catalog::embedded().unwrap());
    Provisioner::new(client.clone(), cat.clone())
        .apply(false, false)
        .await
        .unwrap();
    let n = 30000usize;
    let mk = || {
        let ev = serde_json::json!({
            "event_id": uuid::Uuid::new_v4().to_string(),
            "timestamp": "2024-01-15T10:30:00Z", "service_name": "model-gateway",
            "user_id": "123e4567-e89b-12d3-a456-426614174000", "tenant_id": "789e0123-e89b-12d3-a456-426614174000",
            "event_type": "api_call", "resource_type": "requests", "quantity": 1, "unit": "requests",
            "metadata": {"endpoint": "/v1/chat", "pad": "x".repeat(200)}, "cost": {"amount": 0.001, "currency": "EUR"}});
        (
            ev["event_id"].as_str().unwrap().to_string(),
            bytes::Bytes::from(serde_json::to_vec(&ev).unwrap()),
        )
    };
    let js = client.publishing_context(256);
    for round in 0..2 {
        // A: raw 1 header, buffered pattern
        let evs: Vec<_> = (0..n).map(|_| mk()).collect();
        let t = Instant::now();
        let js2 = js.clone();
        let mut s = futures::stream::iter(evs)
            .map(|(id, b)| {
                let js = js2.clone();
                async move {
                    let mut h = HeaderMap::new();
                    h.insert("Nats-Msg-Id", id.as_str());
                    js.send_publish(
                        "usage.metered.api_call",
                        PublishMessage::build().payload(b).headers(h),
                    )
                    .await
                    .unwrap()
                    .await
                    .unwrap()
                }
            })
            .buffered(256);
        while s.next().await.is_some() {}
        println!(
            "{round} A raw 1 header buffered: {:.0}/s",
            n as f64 / t.elapsed().as_secs_f64()
        );
        // B: raw full headers
        let evs: Vec<_> = (0..n).map(|_| mk()).collect();
        let t = Instant::now();
        let js2 = js.clone();
        let mut s = futures::stream::iter(evs)
            .map(|(id, b)| {
                let js = js2.clone();
                async move {
                    let mut h = HeaderMap::new();
                    h.insert("Nats-Msg-Id", id.as_str());
                    for (k, v) in [
                        ("Content-Type", "application/json"),
                        ("ce-specversion", "1.0"),
                        ("ce-id", id.as_str()),
                        ("ce-source", "herald-bench"),
                        ("ce-type", "usage.metered.api_call"),
                        ("ce-time", "2024-01-15T10:30:00Z"),
                        (
                            "ce-dataschema",
                            "https://contracts.platform.internal/schemas/UsageEvent/1.0.0.json",
                        ),
                        ("ce-correlationid", "0190f0f0-aaaa-bbbb-cccc-dddddddddddd"),
                        (
                            "traceparent",
                            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                        ),
                    ] {
                        h.insert(k, v);
                    }
                    js.send_publish(
                        "usage.metered.api_call",
                        PublishMessage::build().payload(b).headers(h),
                    )
                    .await
                    .unwrap()
                    .await
                    .unwrap()
                }
            })
            .buffered(256);
        while s.next().await.is_some() {}
        println!(
            "{round} B raw full headers: {:.0}/s",
            n as f64 / t.elapsed().as_secs_f64()
        );
        // C: herald
        let p = Publisher::new(
            client.clone(),
            cat.clone(),
            PublisherConfig::new("herald-bench"),
        );
        let evs: Vec<_> = (0..n)
            .map(|_| publisher::Outgoing {
                subject: "usage.metered.api_call".into(),
                payload: mk().1,
                options: Publish::build(),
            })
            .collect();
        let t = Instant::now();
        let mut s = p.publish_all(evs);
        while let Some((_, r)) = s.next().await {
            r.unwrap();
        }
        println!(
            "{round} C herald: {:.0}/s",
            n as f64 / t.elapsed().as_secs_f64()
        );
    }
}
