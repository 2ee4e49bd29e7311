//! Reading a contracts directory never follows a symbolic link out of it, and a
//! link loop is an error, not a hang (issue 23, the gate).
#![cfg(unix)]

use std::os::unix::fs::symlink;

use herald_contracts::ContractFiles;

fn dir_with_catalog() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("catalog.toml"), "# empty\n").unwrap();
    std::fs::create_dir(dir.path().join("examples")).unwrap();
    dir
}

#[test]
fn two_links_to_the_parent_are_a_loop_named_not_a_hang() {
    let dir = dir_with_catalog();
    let examples = dir.path().join("examples");
    symlink("..", examples.join("a")).unwrap();
    symlink("..", examples.join("b")).unwrap();
    let err = ContractFiles::from_dir(dir.path()).unwrap_err().to_string();
    let root = dir.path().canonicalize().unwrap();
    assert!(
        err.ends_with(&format!(
            " is a symbolic link back to {}, which is read already (a loop)",
            root.display()
        )),
        "{err}"
    );
    assert!(err.starts_with(&examples.display().to_string()), "{err}");
}

#[test]
fn a_link_to_a_file_outside_is_refused_and_named() {
    let dir = dir_with_catalog();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "x").unwrap();
    let link = dir.path().join("examples").join("secret.json");
    symlink(outside.path().join("secret"), &link).unwrap();
    let err = ContractFiles::from_dir(dir.path()).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{} is a symbolic link to {}, outside the contracts directory",
            link.display(),
            outside
                .path()
                .canonicalize()
                .unwrap()
                .join("secret")
                .display()
        )
    );
}

#[test]
fn a_link_inside_the_directory_is_still_read() {
    let dir = dir_with_catalog();
    std::fs::write(dir.path().join("examples").join("one.json"), "{}").unwrap();
    symlink("examples", dir.path().join("alias")).unwrap();
    let files = ContractFiles::from_dir(dir.path()).unwrap();
    let names: Vec<&str> = files.files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["alias/one.json", "catalog.toml", "examples/one.json"]
    );
}
