//! `spec-kitty init` and `spec-kitty agent mission create` through the binary, on temporary git
//! repositories.

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;

fn bin(dir: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("spec-kitty"));
    cmd.current_dir(dir)
        .env_remove("SPECIFY_REPO_ROOT")
        .env("HOME", super::support::test_home())
        .env(
            "SPEC_KITTY_HOME",
            super::support::test_home().join(".spec-kitty"),
        )
        .env("GIT_CONFIG_NOSYSTEM", "1");
    cmd.env("GIT_AUTHOR_NAME", "T")
        .env("GIT_AUTHOR_EMAIL", "t@example.test");
    cmd.env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.test");
    cmd
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn init_is_idempotent_and_create_numbers_missions() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("proj");
    bin(tmp.path()).args(["init", "proj"]).assert().success();
    assert!(root.join(".git").exists());
    let config = std::fs::read(root.join(".kittify/config.yaml")).unwrap();
    let out = bin(tmp.path())
        .args(["init", "proj", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["config_created"], false);
    assert_eq!(v["keys_added"], serde_json::json!([]));
    assert_eq!(
        std::fs::read(root.join(".kittify/config.yaml")).unwrap(),
        config,
        "a second init changed the config"
    );

    for (slug, n) in [("checkout-flow", 1), ("search", 2)] {
        let out = bin(&root)
            .args(["agent", "mission", "create", slug, "--json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["mission_number"], n);
        assert_eq!(v["mission_slug"], format!("{n:03}-{slug}"));
        let meta: Value = serde_json::from_slice(
            &std::fs::read(root.join(format!("kitty-specs/{n:03}-{slug}/meta.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            meta["mission_number"], n,
            "mission_number is an integer in meta.json"
        );
        assert_eq!(meta["mission_type"], "software-dev");
        assert!(
            root.join(format!("kitty-specs/{n:03}-{slug}/tasks"))
                .is_dir()
        );
        assert!(
            v["commit"].is_string(),
            "the mission is committed, as upstream does"
        );
        assert_eq!(
            super::support::git(&root, &["status", "--porcelain"]),
            "",
            "create left the checkout dirty"
        );
    }
}

#[test]
fn bad_slugs_are_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    bin(tmp.path()).arg("init").assert().success();
    let before = snapshot(tmp.path());
    for bad in [
        "../etc",
        "a/b",
        "",
        "Has-Caps",
        "double--dash",
        "..",
        "-lead",
        "trail-",
    ] {
        let out = bin(tmp.path())
            .args(["agent", "mission", "create", "--json", "--", bad])
            .assert()
            .code(2)
            .get_output()
            .stdout
            .clone();
        let v: Value =
            serde_json::from_slice(&out).unwrap_or_else(|_| panic!("{bad:?}: stdout is not JSON"));
        assert_eq!(v["error"]["code"], "INVALID_INPUT", "{bad:?}");
    }
    assert_eq!(
        snapshot(tmp.path()),
        before,
        "a refused create changed files"
    );
}

#[test]
fn create_outside_a_project_fails_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    bin(tmp.path())
        .args(["agent", "mission", "create", "x"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("error:"));
}
