//! [`Contracts`] for the real catalog (`herald_contracts::Catalog`).

use herald_contracts::{Catalog, ValidationError};

use crate::contracts::{
    ConsumerDef, ContractError, Contracts, Discard, Route, Storage, StreamDef, ValidEvent,
    Violation,
};

fn stream_def(s: &herald_contracts::StreamSpec, description: Option<String>) -> StreamDef {
    StreamDef {
        name: s.name.clone(),
        description,
        subjects: s.subjects.clone(),
        storage: match s.storage {
            herald_contracts::catalog::Storage::File => Storage::File,
            herald_contracts::catalog::Storage::Memory => Storage::Memory,
        },
        max_age: s.max_age,
        duplicate_window: s.duplicate_window,
        replicas: s.replicas,
        max_msg_size: s.max_msg_size,
        max_bytes: s.max_bytes,
        discard: match s.discard {
            herald_contracts::catalog::Discard::Old => Discard::Old,
            herald_contracts::catalog::Discard::New => Discard::New,
        },
    }
}

impl From<ValidationError> for ContractError {
    fn from(e: ValidationError) -> Self {
        match e {
            ValidationError::UnknownSubject(s) => ContractError::UnknownSubject(s),
            ValidationError::UnknownSchema(s) => ContractError::UnknownSchema(s),
            e @ ValidationError::SchemaMismatch { .. } => {
                ContractError::UnknownSchema(e.to_string())
            }
            ValidationError::Decode(d) => ContractError::Decode(d),
            ValidationError::TooLarge { size, limit } => ContractError::TooLarge { size, limit },
            ValidationError::Invalid {
                schema_id,
                violations,
            } => ContractError::Invalid {
                schema_id,
                violations: violations
                    .into_iter()
                    .map(|v| Violation {
                        instance_path: v.instance_path,
                        keyword: v.keyword,
                        message: v.message,
                    })
                    .collect(),
            },
        }
    }
}

impl Contracts for Catalog {
    fn streams(&self) -> Vec<StreamDef> {
        let mut v: Vec<StreamDef> = self
            .topics()
            .iter()
            .map(|t| stream_def(&t.stream, Some(t.description.clone())))
            .collect();
        v.push(stream_def(
            &self.dlq().stream,
            Some("herald dead-letter queue".into()),
        ));
        v
    }

    fn route(&self, subject: &str) -> Option<Route> {
        let spec = self.subject(subject)?;
        let stream = self.stream_for_subject(subject)?;
        Some(Route {
            stream: stream.name.clone(),
            identity_field: spec.identity.clone(),
            schema: spec.schema.clone(),
            duplicate_window: stream.duplicate_window,
        })
    }

    fn validate(
        &self,
        subject: &str,
        schema_hint: Option<&str>,
        payload: &[u8],
    ) -> Result<ValidEvent, ContractError> {
        let (validated, value) = self.validate_bytes(subject, schema_hint, payload)?;
        Ok(ValidEvent {
            schema_id: validated.schema_id.to_string(),
            value,
        })
    }

    fn consumers(&self) -> Vec<ConsumerDef> {
        Catalog::consumers(self)
            .iter()
            .map(|c| ConsumerDef {
                service: c.service.clone(),
                name: c.name.clone(),
                filter: c.filter.clone(),
                durable: c.durable_name(),
                max_deliver: c.max_deliver,
                ack_wait: c.ack_wait,
                max_ack_pending: c.max_ack_pending,
                backoff: c.backoff.clone(),
            })
            .collect()
    }
}
