//! One contracts-discovery rule for every command: `--contracts DIR` (or
//! `HERALD_CONTRACTS`), else the nearest `contracts/catalog.toml` from the current
//! directory upwards, else the contracts built into herald. Run as a user runs it:
//! a checkout with a breaking version added, commands started from its directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use herald_test_server::testing::copy_dir;
use serde_json::{json, Value};

fn herald_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .env_remove("HERALD_CONTRACTS")
        .env("NO_COLOR", "1")
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn all(o: &Output) -> String {
    stdout(o) + &String::from_utf8_lossy(&o.stderr)
}

/// A checkout: `<tmp>/repo/contracts` (a copy of the real contracts) plus a few
/// directories to run commands from.
fn checkout() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    // The shared copy needs its destination to exist.
    std::fs::create_dir_all(repo.join("contracts")).unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts"),
        &repo.join("contracts"),
    );
    std::fs::create_dir_all(repo.join("services/billing/src")).unwrap();
    (tmp, repo)
}

/// Adds UsageEvent 1.2.0 that changes `quantity` from a number to a string: breaking
/// under every mode, declared as a minor.
fn add_breaking_version(repo: &Path) {
    let dir = repo.join("contracts/schemas/UsageEvent");
    let mut s: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("1.1.0.json")).unwrap()).unwrap();
    s["$id"] = json!("https://contracts.platform.internal/schemas/UsageEvent/1.2.0.json");
    s["properties"]["quantity"] = json!({"type": "string"});
    std::fs::write(
        dir.join("1.2.0.json"),
        serde_json::to_string_pretty(&s).unwrap(),
    )
    .unwrap();
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_from_the_root_checks_the_checkout_and_fails_on_a_breaking_version() {
    let (_tmp, repo) = checkout();
    let clean = herald_in(&repo, &["check"]);
    assert_eq!(clean.status.code(), Some(0), "{}", all(&clean));
    add_breaking_version(&repo);
    let out = herald_in(&repo, &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    let first = stdout(&out).lines().next().unwrap_or_default().to_string();
    let expected = repo.join("contracts").display().to_string();
    assert!(
        first.contains(&expected) && first.contains("found from the current directory"),
        "first line must name the contracts: {first}"
    );
    assert!(
        stdout(&out).contains("UsageEvent@1.2.0: version 1.2.0 declares a minor bump"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn check_base_from_the_root_fails_on_a_breaking_version() {
    let (_tmp, repo) = checkout();
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "base"]);
    add_breaking_version(&repo);
    let out = herald_in(&repo, &["check", "--base", "HEAD"]);
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    assert!(stdout(&out).contains("base.evolution"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("UsageEvent@1.2.0: version 1.2.0 declares a minor bump"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn lock_and_check_agree_from_every_directory() {
    let (_tmp, repo) = checkout();
    add_breaking_version(&repo);
    let expected = repo.join("contracts").display().to_string();
    for cwd in [
        repo.clone(),
        repo.join("contracts"),
        repo.join("contracts/schemas/UsageEvent"),
        repo.join("services/billing/src"),
    ] {
        let check = herald_in(&cwd, &["--format", "json", "check"]);
        assert_eq!(
            check.status.code(),
            Some(1),
            "{}: {}",
            cwd.display(),
            all(&check)
        );
        let v: Value = serde_json::from_slice(&check.stdout).unwrap();
        assert_eq!(v["contracts"]["source"], "found", "{}", cwd.display());
        assert_eq!(
            v["contracts"]["dir"],
            expected.as_str(),
            "{}",
            cwd.display()
        );

        // lock sees the same contracts: the unlocked 1.2.0 is what it would record.
        let lock = herald_in(&cwd, &["--format", "json", "lock", "--check"]);
        assert_eq!(
            lock.status.code(),
            Some(1),
            "{}: {}",
            cwd.display(),
            all(&lock)
        );
        let v: Value = serde_json::from_slice(&lock.stdout).unwrap();
        assert_eq!(
            v["contracts"]["dir"],
            expected.as_str(),
            "{}",
            cwd.display()
        );
        assert_eq!(v["written"], false);
        assert!(
            v["added"].to_string().contains("UsageEvent@1.2.0"),
            "{}: {v}",
            cwd.display()
        );
    }
}

#[test]
fn outside_a_checkout_the_embedded_contracts_are_used_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = herald_in(tmp.path(), &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let first = stdout(&out).lines().next().unwrap_or_default().to_string();
    assert!(first.contains("built into herald"), "{first}");

    let out = herald_in(tmp.path(), &["--format", "json", "catalog"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["contracts"], json!({"source": "embedded", "dir": null}));

    // lock writes, so it never falls back to the embedded contracts.
    let out = herald_in(tmp.path(), &["lock"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        all(&out).contains("no contracts/catalog.toml in the current directory or above"),
        "{}",
        all(&out)
    );
}

#[test]
fn the_flag_and_the_environment_win_over_discovery() {
    let (_tmp, repo) = checkout();
    add_breaking_version(&repo);
    let other = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts"),
        other.path(),
    );
    let given = other.path().display().to_string();
    let out = herald_in(&repo, &["--contracts", &given, "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(
        stdout(&out)
            .lines()
            .next()
            .unwrap_or_default()
            .contains(&given),
        "{}",
        stdout(&out)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .env("HERALD_CONTRACTS", &given)
        .env("NO_COLOR", "1")
        .current_dir(&repo)
        .args(["--format", "json", "catalog"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["contracts"], json!({"source": "given", "dir": given}));
}

#[test]
fn text_headers_and_help_name_the_contracts() {
    let (_tmp, repo) = checkout();
    let expected = repo.join("contracts").display().to_string();
    let catalog = herald_in(&repo, &["catalog"]);
    assert!(
        stdout(&catalog)
            .lines()
            .next()
            .unwrap_or_default()
            .contains(&expected),
        "{}",
        stdout(&catalog)
    );
    let diff = herald_in(&repo, &["diff", "UsageEvent@1.0.0", "UsageEvent@1.1.0"]);
    assert!(
        stdout(&diff)
            .lines()
            .next()
            .unwrap_or_default()
            .contains(&expected),
        "{}",
        stdout(&diff)
    );
    let validate = herald_in(
        &repo,
        &[
            "--format",
            "json",
            "validate",
            "--schema",
            "UsageEvent",
            "contracts/examples/UsageEvent/valid/api-call.json",
        ],
    );
    let v: Value = serde_json::from_slice(&validate.stdout).unwrap();
    assert_eq!(v["contracts"]["dir"], expected.as_str());
    for cmd in ["check", "catalog", "diff", "lock", "validate", "changelog"] {
        let help = herald_in(&repo, &[cmd, "--help"]);
        let h = stdout(&help);
        assert!(
            h.contains("nearest contracts/catalog.toml"),
            "`herald {cmd} --help` must state the discovery rule: {h}"
        );
    }
}

#[test]
fn diff_warns_on_a_downgrade_and_on_different_schemas() {
    let (_tmp, repo) = checkout();
    let out = herald_in(&repo, &["diff", "UsageEvent@1.1.0", "UsageEvent@1.0.0"]);
    assert!(
        stdout(&out)
            .contains("warning: NEW (1.0.0) is older than OLD (1.1.0): this is a downgrade"),
        "{}",
        stdout(&out)
    );
    let out = herald_in(
        &repo,
        &[
            "--format",
            "json",
            "diff",
            "UsageEvent@1.0.0",
            "Heartbeat@1.0.0",
        ],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let w = v["warnings"].to_string();
    assert!(
        w.contains("OLD is schema UsageEvent and NEW is schema Heartbeat"),
        "{w}"
    );
    let out = herald_in(&repo, &["diff", "UsageEvent@1.0.0", "UsageEvent@1.1.0"]);
    assert!(!stdout(&out).contains("warning:"), "{}", stdout(&out));
}
