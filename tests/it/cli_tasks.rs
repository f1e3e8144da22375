//! The person's CLI: `agent tasks move-task|list-tasks|add-history|status`, `materialize`,
//! refusals (mission types), `sync server`, `auth logout`, `--version`, completions, man page,
//! the board's width and the color conventions, on real git repositories.

use serde_json::Value;
use std::path::Path;

use crate::support::{MISSION, bin, events, fixture, json, snapshot, test_home};

const POLICY: &str = r#"{"orchestrator_id": "o", "orchestrator_version": "1", "agent_family": "claude", "approval_mode": "manual", "sandbox_mode": "workspace_write", "network_mode": "none", "dangerous_flags": [], "tool_restrictions": null}"#;

fn finalized() -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, root) = fixture();
    bin(&root)
        .args(["agent", "mission", "finalize-tasks", "--mission", MISSION])
        .assert()
        .success();
    (tmp, root)
}

fn tasks(root: &Path, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = bin(root);
    cmd.args(["agent", "tasks"]).args(args);
    cmd
}

fn error_code(out: &[u8]) -> String {
    let v: Value = serde_json::from_slice(out).unwrap();
    v["error"]["code"].as_str().unwrap().to_owned()
}

/// The keys of a lane event, without its per-event values.
fn shape(e: &Value) -> Vec<String> {
    e.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn move_task_records_what_the_host_records() {
    let (_t, root) = finalized();
    let before = events(&root).len();
    // WP02 depends on WP01, which is not done: refused, and nothing changed (no worktree, no
    // event).
    let files = snapshot(&root);
    let out = tasks(&root, &["move-task", "WP02", "--to", "claimed", "--json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    assert_eq!(error_code(&out), "DEPENDENCIES_NOT_SATISFIED");
    assert_eq!(snapshot(&root), files, "a refused move changes nothing");
    assert!(!root.join(".worktrees").exists());

    let moved = json(&mut tasks(
        &root,
        &[
            "move-task",
            "WP01",
            "--to",
            "claimed",
            "--agent",
            "alice",
            "--json",
        ],
    ));
    assert_eq!(moved["from_lane"], "planned");
    assert_eq!(moved["to_lane"], "claimed");
    let ws = moved["workspace_path"].as_str().unwrap();
    assert!(Path::new(ws).is_dir(), "the lane worktree is created: {ws}");
    let log = events(&root);
    assert_eq!(log.len(), before + 1);
    let mine = log.last().unwrap().clone();
    assert_eq!(mine["actor"], "alice");
    assert_eq!(mine["from_lane"], "planned");
    assert_eq!(mine["to_lane"], "claimed");

    // The host's transition of the same kind writes an event of the same shape (its policy
    // metadata aside).
    let host = json(bin(&root).args([
        "orchestrator-api",
        "transition",
        "--mission",
        MISSION,
        "--wp",
        "WP01",
        "--to",
        "in_progress",
        "--actor",
        "alice",
        "--policy",
        POLICY,
    ]));
    assert_eq!(host["success"], true, "{host}");
    let theirs = events(&root).last().unwrap().clone();
    let mut a = shape(&mine);
    let mut b = shape(&theirs);
    a.retain(|k| k != "policy_metadata");
    b.retain(|k| k != "policy_metadata");
    assert_eq!(a, b, "mine: {mine}\nhost: {theirs}");

    // The host's guard, through the person's command: for_review needs the subtasks done.
    let out = tasks(
        &root,
        &["move-task", "WP01", "--to", "for_review", "--json"],
    )
    .assert()
    .code(1)
    .get_output()
    .stdout
    .clone();
    assert_eq!(error_code(&out), "TRANSITION_REJECTED");

    let out = tasks(&root, &["move-task", "WP01", "--to", "sideways", "--json"])
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    assert_eq!(error_code(&out), "INVALID_INPUT");
}

#[test]
fn list_tasks_and_add_history() {
    let (_t, root) = finalized();
    let list = json(&mut tasks(&root, &["list-tasks", "--json"]));
    assert_eq!(list["count"], 2);
    assert_eq!(list["tasks"][0]["work_package_id"], "WP01");
    assert_eq!(list["tasks"][0]["lane"], "planned");
    assert!(
        list["tasks"][1]["path"]
            .as_str()
            .unwrap()
            .ends_with("tasks/WP02-follow-up.md")
    );
    tasks(&root, &["move-task", "WP01", "--to", "claimed"])
        .assert()
        .success();
    let doing = json(&mut tasks(
        &root,
        &["list-tasks", "--lane", "claimed", "--json"],
    ));
    assert_eq!(doing["count"], 1);
    assert_eq!(doing["tasks"][0]["work_package_id"], "WP01");

    let added = json(&mut tasks(
        &root,
        &["add-history", "WP02", "--note", "Split T002", "--json"],
    ));
    assert!(
        added["entry"]
            .as_str()
            .unwrap()
            .ends_with("user: Split T002")
    );
    let last = events(&root).last().unwrap().clone();
    assert_eq!(last["wp_id"], "WP02");

    let board = json(&mut tasks(&root, &["status", "--json"]));
    assert_eq!(board["mission_slug"], MISSION);
    tasks(&root, &["status"])
        .assert()
        .success()
        .stdout(predicates::str::contains("claimed (1)"));
}

#[test]
fn materialize_rewrites_status_json() {
    let (_t, root) = finalized();
    let status = root.join(format!("kitty-specs/{MISSION}/status.json"));
    std::fs::remove_file(&status).unwrap();
    let doc = json(bin(&root).args(["materialize", "--json"]));
    assert_eq!(doc["missions"][0]["mission_slug"], MISSION);
    assert_eq!(doc["missions"][0]["work_packages"], 2);
    assert!(status.is_file());
}

#[test]
fn unknown_mission_types_are_refused_with_the_known_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("p");
    bin(tmp.path()).args(["init", "p"]).assert().success();
    let out = bin(&root)
        .args([
            "agent",
            "mission",
            "create",
            "x",
            "--mission-type",
            "bogus",
            "--json",
        ])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert_eq!(error_code(&out.stdout), "INVALID_INPUT");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("documentation, plan, research, software-dev"),
        "{stderr}"
    );
    assert!(!root.join("kitty-specs").exists(), "nothing written");
    bin(&root)
        .args([
            "agent",
            "mission",
            "create",
            "x",
            "--mission-type",
            "research",
        ])
        .assert()
        .success();
}

#[test]
fn the_board_fits_the_terminal_and_colors_follow_ripgrep() {
    let (_t, root) = finalized();
    for lane in ["claimed", "in_progress"] {
        tasks(&root, &["move-task", "WP01", "--to", lane])
            .assert()
            .success();
    }
    let board = |env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = bin(&root);
        cmd.env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .env("TERM", "xterm");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.args(args).arg("status").assert().success();
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    };
    let narrow = board(&[("COLUMNS", "40")], &[]);
    for line in narrow.lines().skip(1) {
        assert!(line.chars().count() <= 40, "{line:?}\n{narrow}");
    }
    assert!(narrow.contains("  in_progress (1)\n    WP01 "), "{narrow}");
    let wide = board(&[("COLUMNS", "200")], &[]);
    assert!(wide.contains(" │ "), "{wide}");

    let painted = |s: &str| s.contains("\x1b[");
    assert!(!painted(&board(&[], &[])), "auto: a pipe is not painted");
    assert!(painted(&board(&[], &["--color", "always"])));
    assert!(painted(&board(&[("CLICOLOR_FORCE", "1")], &[])));
    assert!(!painted(&board(
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
        &[]
    )));
    assert!(!painted(&board(
        &[("CLICOLOR_FORCE", "1")],
        &["--color", "never"]
    )));
    assert!(painted(&board(
        &[("NO_COLOR", "1")],
        &["--color", "always"]
    )));
    assert!(!painted(&board(&[("CLICOLOR_FORCE", "0")], &[])));
}

#[test]
fn escape_sequences_of_a_wp_title_are_removed_while_the_board_keeps_its_colours() {
    let (_t, root) = finalized();
    let wp = root.join(format!(
        "kitty-specs/{MISSION}/tasks/WP01-deterministic-implementation.md"
    ));
    std::fs::write(
        &wp,
        super::support::wp_file("WP01", "\\e]0;pwned\\a\\e[2JClean\\e[31m title", "[]"),
    )
    .unwrap();
    let out = bin(&root)
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .args(["--color", "always", "status"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("WP01 Clean title"), "{text:?}");
    assert!(
        !text.contains("pwned") && !text.contains("\x1b[2J") && !text.contains("\x1b[31m"),
        "{text:?}"
    );
    assert!(
        text.contains("\x1b[36mplanned ("),
        "the board is painted: {text:?}"
    );
    // Only the board's own colour sequences remain.
    let stripped = text
        .replace("\x1b[0m", "")
        .replace("\x1b[36m", "")
        .replace("\x1b[33m", "");
    assert!(!stripped.contains('\x1b'), "{text:?}");
}

#[test]
fn sync_server_shows_and_sets_the_server() {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut cmd = bin(home.path());
        cmd.env("HOME", home.path())
            .env("SPEC_KITTY_HOME", home.path().join(".spec-kitty"))
            .args(["sync", "server"])
            .args(args);
        cmd
    };
    let shown = json(&mut run(&["--json"]));
    assert_eq!(shown["source"], "default");
    let set = json(&mut run(&["https://sync.example.com", "--json"]));
    assert_eq!(set["changed"], true);
    let shown = json(&mut run(&["--json"]));
    assert_eq!(shown["server_url"], "https://sync.example.com");
    assert_eq!(shown["source"], "config");
    let out = run(&["http://sync.example.com", "--json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    assert_eq!(error_code(&out), "INSECURE_SERVER_URL");
    let shown = json(&mut run(&["--json"]));
    assert_eq!(
        shown["server_url"], "https://sync.example.com",
        "a refused URL is not written"
    );
}

#[test]
fn logout_tells_the_truth_and_login_needs_a_terminal_or_stdin() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = bin(home.path());
    cmd.env("HOME", home.path())
        .env("SPEC_KITTY_HOME", home.path().join(".spec-kitty"));
    cmd.args(["auth", "logout"])
        .assert()
        .success()
        .stdout(predicates::str::contains("Not logged in"));
    let mut cmd = bin(home.path());
    cmd.env("HOME", home.path())
        .env("SPEC_KITTY_HOME", home.path().join(".spec-kitty"));
    let doc = json(cmd.args(["auth", "logout", "--json"]));
    assert_eq!(doc["removed"], false);
    // No terminal and no --password-stdin: a usage error, not a hang.
    let mut cmd = bin(home.path());
    cmd.env("HOME", home.path())
        .env("SPEC_KITTY_HOME", home.path().join(".spec-kitty"))
        .env("SPEC_KITTY_ENABLE_SAAS_SYNC", "1");
    cmd.args(["auth", "login", "--username", "u", "--json"])
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--password-stdin"));
}

#[test]
fn version_completions_and_man_page() {
    let dir = test_home();
    for flag in ["-V", "--version"] {
        let out = bin(dir).arg(flag).assert().success();
        let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        assert!(text.starts_with("spec-kitty 0."), "{text}");
        assert!(text.contains("(commit "), "{text}");
        assert!(text.contains("orchestrator-api 1.3.0"), "{text}");
        assert!(text.contains("events schema_version "), "{text}");
    }
    for shell in ["bash", "zsh", "fish"] {
        bin(dir)
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicates::str::contains("move-task"));
    }
    bin(dir)
        .arg("man")
        .assert()
        .success()
        .stdout(predicates::str::contains(".TH spec-kitty"));
    bin(dir)
        .args(["agent", "mission", "finalize-tasks", "--help"])
        .assert()
        .success()
        .stdout(predicates::str::contains("work_package_id: WP01"));
    bin(dir)
        .args(["help", "orchestrator-api"])
        .assert()
        .success()
        .stdout(predicates::str::contains("dangerous_flags"));
}
