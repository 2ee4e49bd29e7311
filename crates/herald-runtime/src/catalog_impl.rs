//! [`Contracts`] for the real catalog (`herald_contracts::Catalog`).

use herald_contracts::{Catalog, ConsumerSpec, StreamSpec, ValidationError};

use crate::contracts::{Contracts, Route, ValidEvent};

impl Contracts for Catalog {
    fn streams(&self) -> Vec<StreamSpec> {
        self.topics()
            .iter()
            .map(|t| t.stream.clone())
            .chain(std::iter::once(self.dlq().stream.clone()))
            .collect()
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
    ) -> Result<ValidEvent, ValidationError> {
        let (validated, value) = self.validate_bytes(subject, schema_hint, payload)?;
        Ok(ValidEvent {
            schema_id: validated.schema_id.to_string(),
            value,
        })
    }

    fn validate_received(
        &self,
        subject: &str,
        schema_hint: Option<&str>,
        payload: &[u8],
    ) -> Result<ValidEvent, ValidationError> {
        let (validated, value) = self.validate_bytes_as_reader(subject, schema_hint, payload)?;
        Ok(ValidEvent {
            schema_id: validated.schema_id.to_string(),
            value,
        })
    }

    fn consumers(&self) -> Vec<ConsumerSpec> {
        Catalog::consumers(self).to_vec()
    }
}
