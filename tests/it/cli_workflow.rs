//! finalize-tasks, mark-status and the status board through the binary on real temporary git
//! repositories, plus a bad-input corpus where every case gets its error and changes nothing.

use serde_json::Value;
use std::path::Path;

use super::support::{MISSION, bin, events, fixture, git, json, snapshot};

#[test]
fn finalize_bootstraps_once_and_commits_a_clean_checkout() {
    let (_tmp, root) = fixture();
    let report = json(bin(&root).args([
        "agent",
        "mission",
        "finalize-tasks",
        "--mission",
        MISSION,
        "--json",
    ]));
    assert_eq!(report["bootstrapped"], serde_json::json!(["WP01", "WP02"]));
    assert_eq!(report["lanes"], 2);
    let evs = events(&root);
    assert_eq!(evs.len(), 2);
    for e in &evs {
        assert_eq!(e["from_lane"], "genesis");
        assert_eq!(e["to_lane"], "planned");
        assert_eq!(e["force"], false, "bootstrap events must not be forced");
    }
    // The log line format is upstream's: sorted keys, Python separators.
    let first =
        std::fs::read_to_string(root.join(format!("kitty-specs/{MISSION}/status.events.jsonl")))
            .unwrap();
    assert!(
        first.starts_with("{\"actor\": \"finalize-tasks\", \"at\": \""),
        "{first}"
    );
    let lanes: Value = serde_json::from_slice(
        &std::fs::read(root.join(format!("kitty-specs/{MISSION}/lanes.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        lanes["lanes"][1]["depends_on_lanes"],
        serde_json::json!(["lane-a"])
    );
    assert_eq!(
        git(&root, &["status", "--porcelain"]),
        "",
        "finalize-tasks left the checkout dirty"
    );
    // Idempotent.
    let again = json(bin(&root).args([
        "agent",
        "mission",
        "finalize-tasks",
        "--mission",
        MISSION,
        "--json",
    ]));
    assert_eq!(again["bootstrapped"], serde_json::json!([]));
    assert_eq!(events(&root).len(), 2);
}

#[test]
fn finalize_commits_its_files_and_leaves_what_the_user_staged_staged() {
    let (_tmp, root) = fixture();
    std::fs::write(root.join("notes.txt"), "mine\n").unwrap();
    git(&root, &["add", "notes.txt"]);
    json(bin(&root).args([
        "agent",
        "mission",
        "finalize-tasks",
        "--mission",
        MISSION,
        "--json",
    ]));
    let committed = git(&root, &["show", "--name-only", "--format=", "HEAD"]);
    assert!(
        committed.contains(&format!("kitty-specs/{MISSION}/status.events.jsonl")),
        "{committed}"
    );
    assert!(!committed.contains("notes.txt"), "{committed}");
    assert_eq!(
        git(&root, &["diff", "--cached", "--name-only"]).trim(),
        "notes.txt"
    );
}

#[test]
fn finalize_of_many_work_packages_commits_them_all_and_only_them() {
    let (_tmp, root) = fixture();
    let tasks = root.join(format!("kitty-specs/{MISSION}/tasks"));
    for i in 3..=210 {
        let id = format!("WP{i:03}");
        std::fs::write(
            tasks.join(format!("{id}-task.md")),
            super::support::wp_file(&id, "Task", "[]"),
        )
        .unwrap();
    }
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-qm", "many tasks"]);
    std::fs::write(root.join("notes.txt"), "mine\n").unwrap();
    json(bin(&root).args([
        "agent",
        "mission",
        "finalize-tasks",
        "--mission",
        MISSION,
        "--json",
    ]));
    assert_eq!(
        git(&root, &["status", "--porcelain"]).trim(),
        "?? notes.txt"
    );
    let committed = git(&root, &["show", "--name-only", "--format=", "HEAD"]);
    assert!(committed.contains("WP210-task.md"), "{committed}");
    assert!(!committed.contains("notes.txt"), "{committed}");
}

#[test]
fn mark_status_from_a_lane_worktree_records_against_the_main_repository() {
    let (_tmp, root) = fixture();
    bin(&root)
        .args(["agent", "mission", "finalize-tasks", "--mission", MISSION])
        .assert()
        .success();
    git(
        &root,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "kitty/lane-a",
            ".worktrees/099-orchestrator-e2e-lane-a",
        ],
    );
    let wt = root.join(".worktrees/099-orchestrator-e2e-lane-a");
    let worktree_log = wt.join(format!("kitty-specs/{MISSION}/status.events.jsonl"));
    let before = std::fs::read(&worktree_log).unwrap();
    let out = json(bin(&wt).args([
        "agent",
        "tasks",
        "mark-status",
        "T001",
        "--status",
        "done",
        "--mission",
        MISSION,
        "--json",
    ]));
    assert_eq!(out["results"][0]["outcome"], "updated");
    assert_eq!(out["results"][0]["wp_id"], "WP01");
    let last = events(&root).pop().unwrap();
    assert_eq!(last["kind"], "annotation");
    assert_eq!(last["delta"]["subtasks"]["T001"], "done");
    assert_eq!(
        std::fs::read(&worktree_log).unwrap(),
        before,
        "the worktree's copy must not be written"
    );
    let status: Value = serde_json::from_slice(
        &std::fs::read(root.join(format!("kitty-specs/{MISSION}/status.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(status["work_packages"]["WP01"]["subtasks"]["T001"], "done");
}

#[test]
fn the_board_as_text_and_json() {
    let (_tmp, root) = fixture();
    bin(&root)
        .args(["agent", "mission", "finalize-tasks", "--mission", MISSION])
        .assert()
        .success();
    let board = json(bin(&root).args(["status", "--mission", "099", "--json"]));
    assert_eq!(board["mission_slug"], MISSION);
    assert_eq!(board["summary"]["planned"], 2);
    assert_eq!(
        board["work_packages"][1]["dependencies"],
        serde_json::json!(["WP01"])
    );
    let text = bin(&root)
        .arg("status")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("planned (2)") && text.contains("WP02 Follow-up"),
        "{text}"
    );
    assert!(
        !text.contains('\x1b'),
        "no colours when stdout is not a terminal"
    );
}

#[test]
fn bad_input_corpus_gets_errors_and_changes_nothing() {
    let legacy_key = spec_kitty::contract::rules::LEGACY_KEYS[0];
    type Setup = Box<dyn Fn(&Path)>;
    let m = |root: &Path| root.join("kitty-specs").join(MISSION);
    let cases: Vec<(&str, Setup, Vec<&str>, &str)> = vec![
        (
            "legacy meta.json",
            Box::new(move |root| {
                let p = m(root).join("meta.json");
                let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                v[legacy_key] = MISSION.into();
                std::fs::write(p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
            }),
            vec!["status", "--mission", MISSION, "--json"],
            "spec-kitty upgrade",
        ),
        (
            "malformed meta.json",
            Box::new(move |root| {
                std::fs::write(m(root).join("meta.json"), "{\"mission_slug\": ").unwrap()
            }),
            vec![
                "agent",
                "mission",
                "finalize-tasks",
                "--mission",
                MISSION,
                "--json",
            ],
            "cannot parse",
        ),
        (
            "malformed WP frontmatter",
            Box::new(move |root| {
                std::fs::write(
                    m(root).join("tasks/WP03-bad.md"),
                    "---\ntitle: [unclosed\n---\n",
                )
                .unwrap()
            }),
            vec![
                "agent",
                "mission",
                "finalize-tasks",
                "--mission",
                MISSION,
                "--json",
            ],
            "WP03",
        ),
        (
            "traversal in the mission handle",
            Box::new(|_| {}),
            vec![
                "agent",
                "mission",
                "finalize-tasks",
                "--mission",
                "../../etc",
                "--json",
            ],
            "invalid mission handle",
        ),
        (
            "traversal in a subtask's mission",
            Box::new(|_| {}),
            vec![
                "agent",
                "tasks",
                "mark-status",
                "T001",
                "--status",
                "done",
                "--mission",
                "kitty-specs/../..",
                "--json",
            ],
            "invalid mission handle",
        ),
        (
            "unknown subtask status",
            Box::new(|_| {}),
            vec![
                "agent",
                "tasks",
                "mark-status",
                "T001",
                "--status",
                "bogus",
                "--mission",
                MISSION,
                "--json",
            ],
            "invalid subtask status",
        ),
        (
            "torn last event line",
            Box::new(move |root| {
                let p = m(root).join("status.events.jsonl");
                let mut text = std::fs::read_to_string(&p).unwrap();
                text.push_str("{\"actor\": \"x\", \"at\": \"2026");
                std::fs::write(p, text).unwrap();
            }),
            vec![
                "agent",
                "tasks",
                "mark-status",
                "T001",
                "--status",
                "done",
                "--mission",
                MISSION,
                "--json",
            ],
            "status.events.jsonl",
        ),
        (
            "malformed middle event line",
            Box::new(move |root| {
                let p = m(root).join("status.events.jsonl");
                let text = std::fs::read_to_string(&p).unwrap();
                std::fs::write(p, format!("not json\n{text}")).unwrap();
            }),
            vec!["status", "--mission", MISSION, "--json"],
            "status.events.jsonl:1:",
        ),
    ];
    for (name, setup, args, needle) in cases {
        let (_tmp, root) = fixture();
        bin(&root)
            .args(["agent", "mission", "finalize-tasks", "--mission", MISSION])
            .assert()
            .success();
        setup(&root);
        let before = snapshot(&root);
        let head = git(&root, &["rev-parse", "HEAD"]);
        let out = bin(&root)
            .args(&args)
            .assert()
            .failure()
            .get_output()
            .clone();
        let stdout: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{name}: stdout is not JSON"));
        let message = stdout["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(needle),
            "{name}: {message:?} does not mention {needle:?}"
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).starts_with("error: "),
            "{name}: no diagnostic on stderr"
        );
        assert_eq!(snapshot(&root), before, "{name}: files changed");
        assert_eq!(
            git(&root, &["rev-parse", "HEAD"]),
            head,
            "{name}: a commit was made"
        );
    }
}

#[test]
fn upgrade_rewrites_legacy_meta_json_and_commands_work_again() {
    use spec_kitty::upgrade::LEGACY_META_KEYS as LEGACY;
    let (_tmp, root) = fixture();
    let p = root.join(format!("kitty-specs/{MISSION}/meta.json"));
    // A pre-mission meta.json: the slug, number and type under their legacy names.
    let legacy = serde_json::json!({LEGACY[0]: MISSION, LEGACY[1]: "099", LEGACY[5]: "software-dev",
        "slug": MISSION, "friendly_name": "Orchestrator E2E", "target_branch": "e2e/orchestrator"});
    std::fs::write(&p, serde_json::to_string_pretty(&legacy).unwrap()).unwrap();
    bin(&root)
        .args(["status", "--mission", MISSION])
        .assert()
        .failure()
        .stderr(predicates::str::contains("spec-kitty upgrade"));

    let before = snapshot(&root);
    let dry = json(bin(&root).args(["upgrade", "--dry-run", "--json"]));
    assert_eq!(dry["upgraded"][0]["mission"], MISSION);
    assert_eq!(snapshot(&root), before, "--dry-run wrote something");

    let done = json(bin(&root).args(["upgrade", "--json"]));
    assert_eq!(done["upgraded"].as_array().unwrap().len(), 1);
    let meta: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    assert_eq!(meta["mission_slug"], MISSION);
    assert_eq!(meta["mission_number"], 99);
    assert_eq!(meta["mission_type"], "software-dev");
    for key in LEGACY {
        assert!(meta.get(*key).is_none(), "{key} survived the upgrade");
    }
    bin(&root)
        .args(["agent", "mission", "finalize-tasks", "--mission", MISSION])
        .assert()
        .success();
    let again = json(bin(&root).args(["upgrade", "--json"]));
    assert_eq!(again["upgraded"], serde_json::json!([]));
}
