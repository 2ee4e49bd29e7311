//! The catalog as an AsyncAPI 3.0.0 document: `herald asyncapi`.
//!
//! One channel per subject, one message per subject (its schema's latest
//! version of the subject's major, with the subject's constraint), a `send`
//! operation per producer and a `receive` operation per consumer. Schemas,
//! messages, the header schema and the correlation id live once under
//! `components` and are referenced, never copied.
//!
//! AsyncAPI resolves `$ref`s against the AsyncAPI document, not against a
//! schema's `$id`, so the schemas here are the contracts with every `$ref`
//! rewritten to point into `#/components/schemas/…` and their `$id` moved to
//! `$comment`. Payloads are Multi Format Schema Objects declaring draft
//! 2020-12, which is what the contracts are written in.

use herald_contracts::{Catalog, SchemaDoc, SubjectSpec};
use serde_json::{json, Map, Value};

use crate::error::DocsError;
use crate::refs;

/// The `schemaFormat` of a JSON Schema draft 2020-12 payload.
pub const SCHEMA_FORMAT: &str = "application/schema+json;version=draft-2020-12";

/// Headers herald's publisher sets on every event, with what each carries.
/// Mirrors herald-runtime's `headers` module (this crate stays pure).
pub const HEADERS: &[(&str, &str)] = &[
    (
        "Nats-Msg-Id",
        "Idempotency key: the event's identity field, unless the producer overrides it. JetStream drops a repeat within the stream's duplicate window.",
    ),
    ("Content-Type", "Always application/json."),
    ("ce-specversion", "CloudEvents spec version, 1.0."),
    ("ce-id", "CloudEvents id: the event's identity field."),
    ("ce-source", "CloudEvents source: the producing service."),
    ("ce-type", "CloudEvents type: the subject."),
    ("ce-time", "CloudEvents time: the event's timestamp."),
    (
        "ce-dataschema",
        "The versioned schema $id the event was validated against.",
    ),
    (
        "ce-correlationid",
        "Correlation id, carried from a consumed event to the events it causes.",
    ),
    ("traceparent", "W3C trace context of the publish."),
];

/// A name usable as an AsyncAPI component key or channel id
/// (`^[A-Za-z0-9.\-_]+$`): other characters become `_`.
pub fn key(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '*' => '_',
            '>' => '_',
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') => c,
            _ => '_',
        })
        .collect()
}

/// A schema version's component key: `UsageEvent-1.1.0`.
pub fn schema_key(doc: &SchemaDoc) -> String {
    key(&format!("{}-{}", doc.name, doc.version))
}

/// The schema version a subject's message carries: the latest of its major.
pub fn subject_schema<'c>(catalog: &'c Catalog, subject: &SubjectSpec) -> Option<&'c SchemaDoc> {
    catalog
        .schemas()
        .get(&subject.schema)?
        .iter()
        .rfind(|d| d.version.major == subject.major)
}

/// The channel address: NATS wildcard tokens become parameters.
fn address(subject: &str) -> (String, Map<String, Value>) {
    let mut params = Map::new();
    let tokens: Vec<String> = subject
        .split('.')
        .enumerate()
        .map(|(i, t)| match t {
            "*" | ">" => {
                let name = format!("token{}", i + 1);
                params.insert(
                    name.clone(),
                    json!({"description": format!("Token {} of the subject (NATS wildcard `{t}`).", i + 1)}),
                );
                format!("{{{name}}}")
            }
            t => t.to_string(),
        })
        .collect();
    (tokens.join("."), params)
}

/// The AsyncAPI document as a JSON value (serialize to YAML or JSON).
pub fn document(catalog: &Catalog) -> Result<Value, DocsError> {
    let mut schemas = Map::new();
    schemas.insert("herald-headers".into(), headers_schema());
    for doc in catalog.schemas().values().flatten() {
        schemas.insert(
            schema_key(doc),
            json!({"schemaFormat": SCHEMA_FORMAT, "schema": rewrite(catalog, doc)?}),
        );
    }
    let mut messages = Map::new();
    let mut channels = Map::new();
    let mut operations = Map::new();
    for subject in catalog.subjects() {
        let Some(doc) = subject_schema(catalog, subject) else {
            continue;
        };
        let id = key(&subject.name);
        let schema_ref =
            json!({"$ref": format!("#/components/schemas/{}/schema", schema_key(doc))});
        let payload = match &subject.constraint {
            Some(c) => json!({"allOf": [schema_ref, c]}),
            None => schema_ref,
        };
        let mut message = json!({
            "name": subject.schema,
            "title": format!("{} on {}", doc.label(), subject.name),
            "summary": subject.description,
            "description": format!(
                "Validated against {} (any {}.x.y version the event names in `$schema` or `ce-dataschema`; the latest otherwise). Identity field: `{}`.",
                doc.label(), subject.major, subject.identity
            ),
            "contentType": "application/json",
            "headers": {"$ref": "#/components/schemas/herald-headers"},
            "correlationId": {"$ref": "#/components/correlationIds/herald"},
            "payload": {"schemaFormat": SCHEMA_FORMAT, "schema": payload},
        });
        let examples = valid_examples(catalog, subject);
        if !examples.is_empty() {
            message["examples"] = Value::Array(examples);
        }
        messages.insert(id.clone(), message);
        let (address, parameters) = address(&subject.name);
        let mut channel = json!({
            "address": address,
            "title": subject.name,
            "description": subject.description,
            "messages": {id.clone(): {"$ref": format!("#/components/messages/{id}")}},
        });
        if !parameters.is_empty() {
            channel["parameters"] = Value::Object(parameters);
        }
        channels.insert(id.clone(), channel);
        let channel_ref = json!({"$ref": format!("#/channels/{id}")});
        let message_ref = json!([{"$ref": format!("#/channels/{id}/messages/{id}")}]);
        if let Some(topic) = catalog.topic_for_subject(&subject.name) {
            for producer in catalog.producers_of(topic) {
                operations.insert(
                    key(&format!("{producer}.send.{}", subject.name)),
                    json!({
                        "action": "send",
                        "channel": channel_ref,
                        "messages": message_ref,
                        "summary": format!("{producer} publishes {}", subject.name),
                    }),
                );
            }
        }
        for consumer in catalog.consumers_of(&subject.name) {
            operations.insert(
                key(&format!(
                    "{}.receive.{}",
                    consumer.durable_name(),
                    subject.name
                )),
                json!({
                    "action": "receive",
                    "channel": channel_ref,
                    "messages": message_ref,
                    "summary": format!(
                        "{} consumes {} (durable consumer {}, filter {})",
                        consumer.service, subject.name, consumer.durable_name(), consumer.filter
                    ),
                    "description": format!(
                        "Depends on the fields {}. Retries up to {} deliveries, then dead-letters.",
                        consumer.fields.join(", "), consumer.max_deliver
                    ),
                }),
            );
        }
    }
    Ok(json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Platform event contracts",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every event the platform's services exchange over NATS JetStream, generated by `herald asyncapi` from the topic catalog and its JSON Schemas. The schemas are the source of truth; this document is derived from them.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {
                "host": "localhost:4222",
                "protocol": "nats",
                "description": "Any NATS server with JetStream enabled; herald provisions the streams with `herald streams apply`.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "correlationIds": {
                "herald": {
                    "description": "Ties together every event caused by one request.",
                    "location": "$message.header#/ce-correlationid",
                }
            },
        },
    }))
}

/// The header schema: what herald's publisher sets.
fn headers_schema() -> Value {
    let mut properties = Map::new();
    for (name, description) in HEADERS {
        properties.insert(
            (*name).into(),
            json!({"type": "string", "description": description}),
        );
    }
    let required: Vec<&str> = HEADERS.iter().map(|(n, _)| *n).collect();
    json!({"type": "object", "properties": properties, "required": required})
}

/// Events from `examples/<Schema>/valid/` that herald accepts on the subject.
fn valid_examples(catalog: &Catalog, subject: &SubjectSpec) -> Vec<Value> {
    crate::site::examples::of_schema(catalog, &subject.schema)
        .into_iter()
        .filter(|e| e.valid && catalog.validate(&subject.name, None, &e.event).is_ok())
        .map(|e| json!({"name": key(&e.name), "payload": e.event}))
        .collect()
}

/// A schema version with `$id`/`$schema` dropped (kept in `$comment`) and every
/// `$ref` pointing into `#/components/schemas/<key>/schema`.
fn rewrite(catalog: &Catalog, doc: &SchemaDoc) -> Result<Value, DocsError> {
    let mut value = doc.document.clone();
    if let Some(map) = value.as_object_mut() {
        map.remove("$schema");
        map.remove("$id");
        map.entry("$comment")
            .or_insert_with(|| Value::String(format!("$id: {}", doc.id)));
    }
    let mut missing = None;
    refs::rewrite_refs(
        &mut value,
        &doc.id,
        &mut |t| match catalog.schema_by_id(&t.document) {
            Some(other) => Some(format!(
                "#/components/schemas/{}/schema{}",
                schema_key(other),
                refs::fragment(&t.pointer).trim_start_matches('#')
            )),
            None => {
                missing
                    .get_or_insert_with(|| format!("{}{}", t.document, refs::fragment(&t.pointer)));
                None
            }
        },
    )
    .map_err(|reference| DocsError::UnresolvedRef {
        schema: doc.label(),
        reference,
    })?;
    if let Some(reference) = missing {
        return Err(DocsError::UnresolvedRef {
            schema: doc.label(),
            reference,
        });
    }
    Ok(value)
}
