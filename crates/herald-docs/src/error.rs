//! What can go wrong while generating documentation.

use std::path::PathBuf;

/// An error generating the site, the AsyncAPI document or the bundles.
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    /// A `$ref` points outside the loaded contracts.
    #[error(
        "{schema}: $ref `{reference}` does not resolve to a loaded schema; run `herald check`"
    )]
    UnresolvedRef {
        /// The schema holding the reference.
        schema: String,
        /// The reference as written.
        reference: String,
    },
    /// A schema already uses a `$defs` key the bundle needs.
    #[error("{schema}: `$defs` already has a key `{key}`; rename that definition so the bundle can embed {key}")]
    DefsClash {
        /// The schema being bundled.
        schema: String,
        /// The clashing key (a schema `$id`).
        key: String,
    },
    /// Reading the schema history failed.
    #[error(transparent)]
    Evolution(#[from] herald_contracts::evolution::EvolutionError),
    /// Writing output failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Serializing a document failed.
    #[error("cannot serialize {what}: {message}")]
    Serialize {
        /// What was being serialized.
        what: String,
        /// Why it failed.
        message: String,
    },
}

/// Writes `contents` to `path`, creating parent directories.
pub(crate) fn write(path: &std::path::Path, contents: &[u8]) -> Result<(), DocsError> {
    let wrap = |source| DocsError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(wrap)?;
    }
    std::fs::write(path, contents).map_err(wrap)
}
