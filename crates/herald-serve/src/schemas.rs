//! `GET <path of schema_base><Name>/<version>.json`: every schema at the path of
//! its `$id`, so that with `schema_base` pointing at this server every `$id`
//! (and every relative `$ref`) resolves for other languages' resolvers.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_contracts::{SchemaRef, Version};

use crate::app::AppState;
use crate::problem::Problem;

/// The media type of a JSON Schema document.
pub const SCHEMA_JSON: &str = "application/schema+json";

/// The schema `name` at version `file` (`1.0.0.json`).
pub async fn get_schema(
    State(app): State<Arc<AppState>>,
    Path((name, file)): Path<(String, String)>,
) -> Response {
    let version = file
        .strip_suffix(".json")
        .and_then(|v| v.parse::<Version>().ok());
    let doc = version.and_then(|v| {
        app.catalog.schema(&SchemaRef {
            name: name.clone(),
            version: Some(v),
        })
    });
    match doc {
        Some(d) => {
            let mut r = (StatusCode::OK, d.source.clone()).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCHEMA_JSON));
            r
        }
        None => Problem::new(
            StatusCode::NOT_FOUND,
            "unknown-schema",
            "Unknown schema",
            format!(
                "no schema {name}/{file}; `herald catalog` lists the schemas and their versions"
            ),
        )
        .into_response(),
    }
}
