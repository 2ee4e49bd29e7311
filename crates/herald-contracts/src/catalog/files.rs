//! Where contracts come from: a directory, or the copy compiled into herald. Loading
//! reads a [`ContractFiles`] rather than the file system, so the same code serves
//! both and any other source a caller fills one from (`herald check --base` reads a
//! git revision into one).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::ContractError;

/// The contracts directory as compiled into herald, so `herald` works from
/// any directory and a service needs no files at run time.
static EMBEDDED: include_dir::Dir<'static> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/../../contracts");

/// The files of a contracts directory, by path relative to its root
/// (`catalog.toml`, `schemas/UsageEvent/1.0.0.json`, `examples/...`).
///
/// Loading goes through this rather than the file system so the same code
/// reads a directory, the embedded copy, or a git revision (`--base`, which the
/// CLI fills in).
#[derive(Debug, Clone, Default)]
pub struct ContractFiles {
    /// Where the files came from, for messages: a directory, `<embedded>`, or `git:REF`.
    pub origin: String,
    /// Relative path (always `/`-separated) to contents.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl ContractFiles {
    /// Reads every file under `dir`.
    pub fn from_dir(dir: &Path) -> Result<ContractFiles, ContractError> {
        let mut files = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries = std::fs::read_dir(&d).map_err(|source| ContractError::Io {
                path: d.clone(),
                source,
            })?;
            for entry in entries {
                let entry = entry.map_err(|source| ContractError::Io {
                    path: d.clone(),
                    source,
                })?;
                let path = entry.path();
                // The entry's own type costs no `stat` (a directory listing carries it),
                // which at 9,000 files is most of the syscalls besides reading them; a
                // symlink is followed, as `Path::is_dir` and `is_file` do.
                let kind = entry.file_type().map_err(|source| ContractError::Io {
                    path: path.clone(),
                    source,
                })?;
                let (is_dir, is_file) = if kind.is_symlink() {
                    (path.is_dir(), path.is_file())
                } else {
                    (kind.is_dir(), kind.is_file())
                };
                if is_dir {
                    stack.push(path);
                } else if is_file {
                    let bytes = std::fs::read(&path).map_err(|source| ContractError::Io {
                        path: path.clone(),
                        source,
                    })?;
                    let rel = path
                        .strip_prefix(dir)
                        .unwrap_or(&path)
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    files.insert(rel, bytes);
                }
            }
        }
        Ok(ContractFiles {
            origin: dir.display().to_string(),
            files,
        })
    }

    /// The copy of `contracts/` compiled into this build.
    pub fn embedded() -> ContractFiles {
        fn walk(dir: &include_dir::Dir<'static>, files: &mut BTreeMap<String, Vec<u8>>) {
            for f in dir.files() {
                files.insert(
                    f.path().to_string_lossy().replace('\\', "/"),
                    f.contents().to_vec(),
                );
            }
            for d in dir.dirs() {
                walk(d, files);
            }
        }
        let mut files = BTreeMap::new();
        walk(&EMBEDDED, &mut files);
        ContractFiles {
            origin: "<embedded>".to_string(),
            files,
        }
    }

    /// Where `rel` is, for messages: a path under a directory, else under the origin.
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        if self.origin.starts_with('<') || self.origin.starts_with("git:") {
            PathBuf::from(format!("{}/{rel}", self.origin))
        } else {
            Path::new(&self.origin).join(rel)
        }
    }
}
