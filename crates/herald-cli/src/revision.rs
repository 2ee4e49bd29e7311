//! The contracts as they were at a git revision, for `herald check --base REF`.
//!
//! Why here and not in herald-contracts: that crate stays pure (no processes); the
//! CLI runs the local `git` (no network) and hands the files over as
//! [`ContractFiles`]. The tree is listed once (`ls-tree`) and every blob read through
//! one `git cat-file --batch`, instead of one `git show` per file.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context};
use herald_contracts::ContractFiles;

/// One entry of `git ls-tree -r`: its mode, object id and path from the repository root.
#[derive(Debug)]
struct Entry {
    mode: String,
    oid: String,
    path: String,
}

/// Reads the contracts directory `dir` as it was at revision `rev`.
pub fn contracts_at(dir: &Path, rev: &str) -> anyhow::Result<ContractFiles> {
    let prefix = String::from_utf8_lossy(&git(dir, &["rev-parse", "--show-prefix"])?)
        .trim()
        .to_string();
    let listing = git(dir, &["ls-tree", "-r", "-z", "--full-name", rev, "--", "."])?;
    let entries = parse_listing(&listing)?;
    let blobs = read_blobs(dir, entries.iter().map(|e| e.oid.as_str()))?;
    let mut files = BTreeMap::new();
    for (entry, contents) in entries.into_iter().zip(blobs) {
        let rel = entry
            .path
            .strip_prefix(&prefix)
            .unwrap_or(&entry.path)
            .to_string();
        if entry.mode == "120000" {
            // git stores a symlink as a blob holding its target: never read it as a
            // contract (nor follow it out of the tree).
            bail!(
                "{rel} at {rev} is a symbolic link (to {}); contracts are plain files",
                String::from_utf8_lossy(&contents)
            );
        }
        files.insert(rel, contents);
    }
    if files.is_empty() {
        bail!("no contracts at {} in revision {rev}", dir.display());
    }
    Ok(ContractFiles {
        origin: format!("git:{rev}"),
        files,
    })
}

/// Runs `git -C dir ARGS`, its output on success, git's own message otherwise.
fn git(dir: &Path, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .context("cannot run git")?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// Parses `ls-tree -r -z` output (`MODE TYPE OID\tPATH\0`), keeping blobs (a
/// submodule is a commit, not a file of this tree).
fn parse_listing(listing: &[u8]) -> anyhow::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for record in listing.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let record = String::from_utf8_lossy(record);
        let (meta, path) = record
            .split_once('\t')
            .ok_or_else(|| anyhow!("git ls-tree printed an unexpected line: {record}"))?;
        let mut meta = meta.split(' ');
        let (Some(mode), Some(kind), Some(oid)) = (meta.next(), meta.next(), meta.next()) else {
            bail!("git ls-tree printed an unexpected line: {record}");
        };
        if kind == "blob" {
            entries.push(Entry {
                mode: mode.to_string(),
                oid: oid.to_string(),
                path: path.to_string(),
            });
        }
    }
    Ok(entries)
}

/// The contents of every object in `oids`, in order, through one `git cat-file --batch`.
fn read_blobs<'a>(dir: &Path, oids: impl Iterator<Item = &'a str>) -> anyhow::Result<Vec<Vec<u8>>> {
    let request: String = oids.map(|o| format!("{o}\n")).collect();
    let wanted = request.lines().count();
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run git")?;
    let mut stdin = child.stdin.take().expect("stdin was piped");
    // Written from a thread: git answers while it reads, and a full pipe on both
    // sides would block both processes.
    let writer = std::thread::spawn(move || stdin.write_all(request.as_bytes()));
    let mut out = BufReader::new(child.stdout.take().expect("stdout was piped"));
    let mut blobs = Vec::with_capacity(wanted);
    let mut header = String::new();
    for _ in 0..wanted {
        header.clear();
        out.read_line(&mut header)?;
        let size = parse_header(header.trim_end())?;
        let mut contents = vec![0; size];
        out.read_exact(&mut contents)?;
        let mut newline = [0u8; 1];
        out.read_exact(&mut newline)?;
        blobs.push(contents);
    }
    writer
        .join()
        .map_err(|_| anyhow!("writing to git cat-file failed"))??;
    let status = child.wait()?;
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            e.read_to_string(&mut err)?;
        }
        bail!("git cat-file --batch: {}", err.trim());
    }
    Ok(blobs)
}

/// The size in a `cat-file --batch` header (`OID TYPE SIZE`), or git's complaint.
fn parse_header(header: &str) -> anyhow::Result<usize> {
    let mut parts = header.split(' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(_), Some(size)) => size
            .parse()
            .with_context(|| format!("git cat-file printed an unexpected header: {header}")),
        _ => bail!("git cat-file --batch: {header}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_keep_blobs_with_their_mode() {
        let listing = b"100644 blob aaa\tcontracts/catalog.toml\x00\
120000 blob bbb\tcontracts/link\x00160000 commit ccc\tcontracts/sub\x00";
        let entries = parse_listing(listing).unwrap();
        let got: Vec<_> = entries
            .iter()
            .map(|e| (e.mode.as_str(), e.oid.as_str(), e.path.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("100644", "aaa", "contracts/catalog.toml"),
                ("120000", "bbb", "contracts/link")
            ]
        );
        assert_eq!(
            parse_listing(b"garbage\x00").unwrap_err().to_string(),
            "git ls-tree printed an unexpected line: garbage"
        );
    }

    #[test]
    fn batch_headers_give_the_size_or_gits_complaint() {
        assert_eq!(parse_header("abc blob 12").unwrap(), 12);
        assert_eq!(
            parse_header("abc missing").unwrap_err().to_string(),
            "git cat-file --batch: abc missing"
        );
        assert!(parse_header("abc blob x").is_err());
    }
}
