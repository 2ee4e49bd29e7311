//! Where contracts come from: a directory, or the copy compiled into herald. Loading
//! reads a [`ContractFiles`] rather than the file system, so the same code serves
//! both and any other source a caller fills one from (`herald check --base` reads a
//! git revision into one).

use std::collections::{BTreeMap, HashSet};
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
    ///
    /// A symbolic link is followed only while it stays inside `dir` and leads to a
    /// directory not read yet: a link out of the contracts directory (a pull request
    /// can add one, git stores them) or back into it (a loop) is an error naming it.
    pub fn from_dir(dir: &Path) -> Result<ContractFiles, ContractError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ContractError::Io { path, source }
        };
        let root = dir.canonicalize().map_err(io(dir))?;
        let mut visited = HashSet::from([root.clone()]);
        let mut files = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).map_err(io(&d))? {
                let entry = entry.map_err(io(&d))?;
                let path = entry.path();
                // The entry's own type costs no `stat` (a directory listing carries it),
                // which at 9,000 files is most of the syscalls besides reading them.
                let kind = entry.file_type().map_err(io(&path))?;
                let (is_dir, is_file) = if kind.is_symlink() {
                    let target = followed_link(&root, &path)?;
                    if target.is_dir() && !visited.insert(target.clone()) {
                        return Err(ContractError::Inconsistent(format!(
                            "{} is a symbolic link back to {}, which is read already (a loop)",
                            path.display(),
                            target.display()
                        )));
                    }
                    (target.is_dir(), target.is_file())
                } else {
                    (kind.is_dir(), kind.is_file())
                };
                if is_dir {
                    stack.push(path);
                } else if is_file {
                    let bytes = std::fs::read(&path).map_err(io(&path))?;
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

/// Where the symbolic link `link` leads, refused unless inside `root` (canonical).
fn followed_link(root: &Path, link: &Path) -> Result<PathBuf, ContractError> {
    let target = link.canonicalize().map_err(|source| ContractError::Io {
        path: link.to_path_buf(),
        source,
    })?;
    if !target.starts_with(root) {
        return Err(ContractError::Inconsistent(format!(
            "{} is a symbolic link to {}, outside the contracts directory",
            link.display(),
            target.display()
        )));
    }
    Ok(target)
}
