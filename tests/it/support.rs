//! Shared helpers: the spec-kitty binary in a directory, git, and the orchestrator e2e fixture.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A spec-kitty home for this test process (never the real `~/.spec-kitty`).
pub fn test_home() -> &'static Path {
    static HOME: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    HOME.get_or_init(|| tempfile::tempdir().expect("temp home"))
        .path()
}

pub fn bin(dir: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("spec-kitty"));
    cmd.current_dir(dir)
        .env_remove("SPECIFY_REPO_ROOT")
        .env("HOME", test_home())
        .env("SPEC_KITTY_HOME", test_home().join(".spec-kitty"));
    cmd.env("GIT_AUTHOR_NAME", "T")
        .env("GIT_AUTHOR_EMAIL", "t@example.test");
    cmd.env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.test");
    cmd
}

/// Run git in `dir` (repository-selecting variables cleared by the library helper, a fixed test
/// identity) and insist on success. Returns stdout, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = spec_kitty::repo::git::command(dir)
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.test",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub const MISSION: &str = "099-orchestrator-e2e";

pub fn wp_file(id: &str, title: &str, deps: &str) -> String {
    format!(
        "---\nwork_package_id: \"{id}\"\ntitle: \"{title}\"\nlane: \"planned\"\ndependencies: {deps}\nowned_files: [\"src/{id}.py\"]\nagent: null\n---\nBuild it.\n"
    )
}

/// The orchestrator's e2e fixture (orchestrator-api.md §4.4), with a second WP depending on WP01.
pub fn fixture() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    std::fs::create_dir_all(root.join(format!("kitty-specs/{MISSION}/tasks"))).unwrap();
    std::fs::create_dir_all(root.join(".kittify")).unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    git(&root, &["checkout", "-q", "-b", "e2e/orchestrator"]);
    std::fs::write(root.join(".gitignore"), ".worktrees/\n.kittify/logs/\n").unwrap();
    let m = root.join("kitty-specs").join(MISSION);
    std::fs::write(
        m.join("meta.json"),
        "{\n  \"mission_slug\": \"099-orchestrator-e2e\",\n  \"mission_number\": 99,\n  \"mission_type\": \"software-dev\",\n  \"title\": \"Orchestrator E2E\",\n  \"target_branch\": \"e2e/orchestrator\"\n}",
    )
    .unwrap();
    std::fs::write(
        m.join("tasks.md"),
        "## WP01\n\n- [ ] T001 Deterministic implementation\n\n## WP02\n\n- [ ] T002 Follow-up\n",
    )
    .unwrap();
    std::fs::write(
        m.join("tasks/WP01-deterministic-implementation.md"),
        wp_file("WP01", "Deterministic implementation", "[]"),
    )
    .unwrap();
    std::fs::write(
        m.join("tasks/WP02-follow-up.md"),
        wp_file("WP02", "Follow-up", "[\"WP01\"]"),
    )
    .unwrap();
    git(&root, &["add", "-A"]);
    git(
        &root,
        &["commit", "-qm", "chore: seed orchestrator e2e project"],
    );
    (tmp, root)
}

pub fn json(cmd: &mut Command) -> Value {
    let out = cmd.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out)
        )
    })
}

pub fn events(root: &Path) -> Vec<Value> {
    std::fs::read_to_string(root.join(format!("kitty-specs/{MISSION}/status.events.jsonl")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
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
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Every `.rs` file below `dir`, recursively (appended to `out`).
pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
