//! Bearer tokens for `herald serve`, written by `herald auth generate` beside the
//! NATS credentials: one token per catalog service in `tokens/<service>.token`
//! (mode 0600, the secret), and `serve-tokens.toml` holding only their SHA-256
//! digests (what `herald serve --tokens` reads; not a secret).
//!
//! A token publishes only the subjects its service produces, the same least
//! privilege as the service's NATS user.

use std::path::{Path, PathBuf};

use herald_contracts::Catalog;
use herald_serve::access::{digest, new_token};
use herald_serve::{TokenFile, TOKENS_FILE};

/// Why the tokens could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct TokensWriteError {
    /// The file or directory.
    pub path: PathBuf,
    /// The I/O error.
    pub source: std::io::Error,
}

/// Writes `contents` to a new file `path` with mode 0600 (never readable by others, even briefly).
fn write_private(path: &Path, contents: &[u8]) -> Result<(), TokensWriteError> {
    use std::io::Write;
    let io = |source| TokensWriteError {
        path: path.to_path_buf(),
        source,
    };
    let _ = std::fs::remove_file(path);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(contents).map_err(io)?;
    f.sync_all().map_err(io)
}

/// What was written.
#[derive(Debug, Clone)]
pub struct GeneratedTokens {
    /// The digests file for `herald serve --tokens`.
    pub tokens_file: PathBuf,
    /// `(service, token file)` per service, in catalog order.
    pub files: Vec<(String, PathBuf)>,
}

/// Writes a fresh token per service of `catalog` under `out`.
pub fn generate(catalog: &Catalog, out: &Path) -> Result<GeneratedTokens, TokensWriteError> {
    let dir = out.join("tokens");
    std::fs::create_dir_all(&dir).map_err(|source| TokensWriteError {
        path: dir.clone(),
        source,
    })?;
    #[cfg(unix)]
    {
        // The directory holds secrets: only its owner may list it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| TokensWriteError {
                path: dir.clone(),
                source,
            },
        )?;
    }
    let mut file = TokenFile::default();
    let mut files = Vec::new();
    for service in catalog.services() {
        let token = new_token();
        let path = dir.join(format!("{}.token", service.name));
        write_private(&path, format!("{token}\n").as_bytes())?;
        file.digests.insert(service.name.clone(), digest(&token));
        files.push((service.name.clone(), path));
    }
    let tokens_file = out.join(TOKENS_FILE);
    write_private(&tokens_file, file.render().as_bytes())?;
    Ok(GeneratedTokens { tokens_file, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_gets_a_token_matching_its_digest() {
        let catalog = Catalog::embedded().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let g = generate(&catalog, dir.path()).unwrap();
        assert_eq!(g.files.len(), catalog.services().len());
        let file = TokenFile::read(&g.tokens_file).unwrap();
        for (service, path) in &g.files {
            let token = std::fs::read_to_string(path).unwrap();
            assert!(token.starts_with("hrld_"), "{token}");
            assert_eq!(file.digests[service], digest(&token));
        }
        let tokens: std::collections::BTreeSet<String> = g
            .files
            .iter()
            .map(|(_, p)| std::fs::read_to_string(p).unwrap())
            .collect();
        assert_eq!(tokens.len(), g.files.len(), "tokens must differ");
    }
}
