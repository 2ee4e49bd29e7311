//! Who may publish what over HTTP: bearer tokens, one per service, each allowed
//! exactly the subjects its service produces in the catalog (the same least
//! privilege as the NATS permissions `herald auth generate` writes).
//!
//! The server keeps only SHA-256 digests of the tokens (the tokens file is not a
//! secret), compares digests in constant time over every entry, and never logs a
//! token. A token is 256 random bits, so a plain digest is enough.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use axum::http::{header, HeaderMap, StatusCode};
use herald_contracts::Catalog;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::problem::Problem;

/// File name `herald auth generate` writes the digests to.
pub const TOKENS_FILE: &str = "serve-tokens.toml";

/// Why a tokens file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// Unreadable file.
    #[error("cannot read tokens file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not the expected TOML.
    #[error("tokens file {path}: {detail} (regenerate it with `herald auth generate`)")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// A service the catalog does not declare.
    #[error("tokens file names service {0:?}, which the catalog does not declare")]
    UnknownService(String),
}

/// The digest of a token as stored in the tokens file: `sha256:<hex>`.
pub fn digest(token: &str) -> String {
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(token.trim().as_bytes()))
    )
}

/// A fresh token: 256 random bits, hex, with a recognisable prefix (`hrld_`) so
/// secret scanners can find a leaked one.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("hrld_{}", hex::encode(bytes))
}

/// Service name to token digest: the content of `serve-tokens.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenFile {
    /// Service to `sha256:<hex>` digest.
    pub digests: BTreeMap<String, String>,
}

impl TokenFile {
    /// Parses the file's text.
    pub fn parse(text: &str, path: &str) -> Result<TokenFile, TokensError> {
        #[derive(serde::Deserialize)]
        struct Raw {
            tokens: BTreeMap<String, String>,
        }
        let raw: Raw = toml::from_str(text).map_err(|e| TokensError::Parse {
            path: path.to_string(),
            detail: e.to_string().replace('\n', " "),
        })?;
        for (service, d) in &raw.tokens {
            let ok = d
                .strip_prefix("sha256:")
                .is_some_and(|h| h.len() == 64 && hex::decode(h).is_ok());
            if !ok {
                return Err(TokensError::Parse {
                    path: path.to_string(),
                    detail: format!("the digest for {service:?} is not sha256:<64 hex digits>"),
                });
            }
        }
        Ok(TokenFile {
            digests: raw.tokens,
        })
    }

    /// Reads and parses a tokens file.
    pub fn read(path: &Path) -> Result<TokenFile, TokensError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokensError::Read {
            path: path.display().to_string(),
            source,
        })?;
        TokenFile::parse(&text, &path.display().to_string())
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut s = String::from(
            "# herald serve bearer tokens: SHA-256 digests only, one per service, written by\n\
             # `herald auth generate` (the tokens themselves are in tokens/<service>.token).\n\
             # A token publishes only the subjects its service produces.\n\n[tokens]\n",
        );
        for (k, v) in &self.digests {
            s.push_str(&format!("\"{k}\" = \"{v}\"\n"));
        }
        s
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No tokens configured: loopback callers may publish every subject.
    Local,
    /// A service, proven by its token.
    Service(String),
}

/// The access policy of one server.
#[derive(Debug, Clone)]
pub struct Access {
    /// `(service, digest bytes)`; `None` = no tokens configured.
    tokens: Option<Vec<(String, [u8; 32])>>,
    /// Services allowed per topic name.
    producers: BTreeMap<String, BTreeSet<String>>,
}

impl Access {
    /// The policy for `tokens` (or none) over `catalog`.
    pub fn new(catalog: &Catalog, tokens: Option<&TokenFile>) -> Result<Access, TokensError> {
        let services: BTreeSet<&str> = catalog.services().iter().map(|s| s.name.as_str()).collect();
        let tokens = match tokens {
            None => None,
            Some(f) => {
                let mut v = Vec::new();
                for (service, d) in &f.digests {
                    if !services.contains(service.as_str()) {
                        return Err(TokensError::UnknownService(service.clone()));
                    }
                    let mut bytes = [0u8; 32];
                    let raw = hex::decode(d.trim_start_matches("sha256:")).unwrap_or_default();
                    if raw.len() == 32 {
                        bytes.copy_from_slice(&raw);
                    }
                    v.push((service.clone(), bytes));
                }
                Some(v)
            }
        };
        let producers = catalog
            .topics()
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    catalog
                        .producers_of(t)
                        .into_iter()
                        .map(str::to_string)
                        .collect(),
                )
            })
            .collect();
        Ok(Access { tokens, producers })
    }

    /// Whether tokens are configured (otherwise the server must stay on loopback).
    pub fn has_tokens(&self) -> bool {
        self.tokens.is_some()
    }

    /// The caller proven by the `Authorization: Bearer` header (401 when missing or unknown).
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, Problem> {
        let Some(tokens) = &self.tokens else {
            return Ok(Caller::Local);
        };
        let unauthorized = |detail: &str| {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                detail.to_string(),
            )
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or_else(|| {
                unauthorized("send `Authorization: Bearer <token>` with your service's token (from `herald auth generate`)")
            })?;
        let d: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        // Compare against every entry, without stopping at the first match.
        let mut found: Option<&str> = None;
        for (service, stored) in tokens {
            if bool::from(stored.ct_eq(&d)) {
                found = Some(service);
            }
        }
        found
            .map(|s| Caller::Service(s.to_string()))
            .ok_or_else(|| {
                unauthorized(
                    "unknown token: use the one `herald auth generate` wrote for your service",
                )
            })
    }

    /// 403 unless `caller` may publish `subject` (whose topic is `topic`).
    pub fn authorize(&self, caller: &Caller, topic: &str, subject: &str) -> Result<(), Problem> {
        match caller {
            Caller::Local => Ok(()),
            Caller::Service(s) => {
                if self.producers.get(topic).is_some_and(|p| p.contains(s)) {
                    Ok(())
                } else {
                    Err(Problem::new(
                        StatusCode::FORBIDDEN,
                        "forbidden",
                        "Not a producer of this subject",
                        format!(
                            "service {s} does not produce {subject} (topic {topic}); the catalog's producers decide who may publish"
                        ),
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_file_round_trips_and_rejects_bad_digests() {
        let mut f = TokenFile::default();
        f.digests.insert("billing-service".into(), digest("t"));
        let back = TokenFile::parse(&f.render(), "x").unwrap();
        assert_eq!(back, f);
        let err = TokenFile::parse("[tokens]\na = \"md5:00\"\n", "x").unwrap_err();
        assert!(
            err.to_string().contains("not sha256:<64 hex digits>"),
            "{err}"
        );
    }

    #[test]
    fn a_token_publishes_only_its_services_subjects() {
        let catalog = Catalog::embedded().unwrap();
        let mut f = TokenFile::default();
        f.digests
            .insert("ingestion-service".into(), digest("tok-a"));
        let a = Access::new(&catalog, Some(&f)).unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(a.authenticate(&h).unwrap_err().status, 401);
        h.insert(header::AUTHORIZATION, "Bearer nope".parse().unwrap());
        assert_eq!(a.authenticate(&h).unwrap_err().status, 401);
        h.insert(header::AUTHORIZATION, "Bearer tok-a".parse().unwrap());
        let c = a.authenticate(&h).unwrap();
        assert_eq!(c, Caller::Service("ingestion-service".into()));
        assert!(a
            .authorize(&c, "ingest.*", "ingest.document.parsed")
            .is_ok());
        assert_eq!(
            a.authorize(&c, "orchestrator.step", "orchestrator.step.started")
                .unwrap_err()
                .status,
            403
        );
    }
}
