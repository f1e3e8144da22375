//! finalize-tasks and mark-status as upstream 3.2.7 needs them: the WP frontmatter gets the
//! fields upstream's finalize writes (the author's fields kept byte for byte), the WP files are
//! committed, misnamed or missing WP files are refused with nothing written, and mark-status
//! reports upstream's outcomes (`updated`, `already_satisfied`, `not_found`).

use serde_json::Value;

use super::support::{MISSION, bin, fixture, git, json, snapshot};

fn finalize(root: &std::path::Path) -> assert_cmd::assert::Assert {
    bin(root)
        .args([
            "agent",
            "mission",
            "finalize-tasks",
            "--mission",
            MISSION,
            "--json",
        ])
        .assert()
}

fn wp_path(root: &std::path::Path) -> std::path::PathBuf {
    root.join(format!(
        "kitty-specs/{MISSION}/tasks/WP01-deterministic-implementation.md"
    ))
}

#[test]
fn finalize_writes_upstreams_fields_losslessly_and_commits_the_wp_files() {
    let (_tmp, root) = fixture();
    let path = wp_path(&root);
    let original = std::fs::read_to_string(&path).unwrap();
    let authored = original.replace(
        "agent: null\n",
        "agent: null\n# the author's comment\nreviewer: {name: 'r', tool: x}\ntags: [\"keep\"]\n",
    );
    std::fs::write(&path, &authored).unwrap();
    git(&root, &["commit", "-qam", "author edits"]);
    finalize(&root).success();
    let text = std::fs::read_to_string(&path).unwrap();
    let (front, body) = text
        .strip_prefix("---\n")
        .and_then(|t| t.split_once("\n---\n"))
        .unwrap();
    let authored_front = authored
        .strip_prefix("---\n")
        .and_then(|t| t.split_once("\n---\n"))
        .unwrap()
        .0;
    assert!(
        front.starts_with(authored_front),
        "the author's lines must be kept as written:\n{front}"
    );
    assert_eq!(body, "Build it.\n");
    let yaml: serde_json::Map<String, Value> = front
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter_map(|(k, v)| Some((k.to_string(), serde_json::from_str(v).ok()?)))
        .collect();
    assert_eq!(yaml["subtasks"], serde_json::json!([]));
    assert_eq!(yaml["history"], serde_json::json!([]));
    assert_eq!(yaml["tracker_refs"], serde_json::json!([]));
    assert_eq!(yaml["requirement_refs"], serde_json::json!([]));
    assert_eq!(yaml["execution_mode"], "code_change");
    assert_eq!(yaml["planning_base_branch"], "e2e/orchestrator");
    assert_eq!(yaml["merge_target_branch"], "e2e/orchestrator");
    assert!(
        yaml["branch_strategy"]
            .as_str()
            .unwrap()
            .contains("must merge back into e2e/orchestrator")
    );
    assert!(!front.contains("tags: []"), "the author's tags stay");
    assert_eq!(front.matches("dependencies:").count(), 1);
    // Committed: the checkout is clean and HEAD holds the edited WP file.
    assert_eq!(git(&root, &["status", "--porcelain"]), "");
    let rel = format!("kitty-specs/{MISSION}/tasks/WP01-deterministic-implementation.md");
    assert_eq!(
        git(&root, &["show", &format!("HEAD:{rel}")]).trim_end(),
        text.trim_end()
    );
    // A second run changes nothing.
    let head = git(&root, &["rev-parse", "HEAD"]);
    finalize(&root).success();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    assert_eq!(git(&root, &["rev-parse", "HEAD"]), head);
}

#[test]
fn no_or_misnamed_wp_files_are_refused_with_the_names_found_and_nothing_written() {
    let tasks = |root: &std::path::Path| root.join(format!("kitty-specs/{MISSION}/tasks"));
    // Misnamed next to good ones.
    for bad in ["wp01-cart.md", "WP1-cart.md"] {
        let (_tmp, root) = fixture();
        std::fs::write(tasks(&root).join(bad), "---\ntitle: x\n---\n").unwrap();
        let before = snapshot(&root);
        let out = finalize(&root)
            .failure()
            .code(1)
            .get_output()
            .stdout
            .clone();
        let err: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(err["error"]["code"], "WP_FILE_NAME_INVALID", "{err}");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(bad) && message.contains("WP01-cart.md"),
            "{message}"
        );
        assert_eq!(
            snapshot(&root),
            before,
            "{bad}: a refused finalize wrote files"
        );
    }
    // None at all.
    let (_tmp, root) = fixture();
    for f in std::fs::read_dir(tasks(&root)).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    std::fs::write(tasks(&root).join("README.md"), "notes\n").unwrap();
    let before = snapshot(&root);
    let out = finalize(&root)
        .failure()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let err: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(err["error"]["code"], "NO_WORK_PACKAGES", "{err}");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("README.md") && message.contains("WPnn-<slug>.md"),
        "{message}"
    );
    assert_eq!(snapshot(&root), before);
    assert!(
        !root
            .join(format!("kitty-specs/{MISSION}/lanes.json"))
            .exists()
    );
}

#[test]
fn mark_status_reports_upstreams_outcomes() {
    let (_tmp, root) = fixture();
    finalize(&root).success();
    let mark = |ids: &[&str]| {
        bin(&root)
            .args(["agent", "tasks", "mark-status"])
            .args(ids)
            .args(["--status", "done", "--mission", MISSION, "--json"])
            .assert()
    };
    let out = json(
        bin(&root)
            .args(["agent", "tasks", "mark-status", "T001", "T999"])
            .args(["--status", "done", "--mission", MISSION, "--json"]),
    );
    assert_eq!(
        out["summary"],
        serde_json::json!({"updated": 1, "already_satisfied": 0, "not_found": 1})
    );
    assert_eq!(out["results"][1]["id"], "T999");
    assert_eq!(out["results"][1]["outcome"], "not_found");
    assert_eq!(out["results"][1]["format"], Value::Null);
    let again = mark(&["T001"]).success().get_output().stdout.clone();
    let again: Value = serde_json::from_slice(&again).unwrap();
    assert_eq!(again["summary"]["already_satisfied"], 1);
    assert_eq!(again["results"][0]["outcome"], "already_satisfied");
    // Nothing resolved: the same document, exit 1, and nothing appended.
    let log = root.join(format!("kitty-specs/{MISSION}/status.events.jsonl"));
    let before = std::fs::read(&log).unwrap();
    let none = mark(&["T998"])
        .failure()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let none: Value = serde_json::from_slice(&none).unwrap();
    assert_eq!(none["summary"]["not_found"], 1);
    assert_eq!(std::fs::read(&log).unwrap(), before);
}

/// A coordination-topology mission (as upstream 3.2.7 creates it): the status log is read and
/// written in the coordination worktree and each change is committed on the coordination
/// branch, where upstream reads it; the primary checkout's log is left alone.
#[test]
fn a_coord_mission_keeps_its_status_log_on_the_coordination_branch() {
    let (_tmp, root) = fixture();
    let meta_path = root.join(format!("kitty-specs/{MISSION}/meta.json"));
    let mut meta: Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    let branch = format!("kitty/mission-{MISSION}");
    meta["topology"] = "coord".into();
    meta["coordination_branch"] = branch.clone().into();
    meta["mission_id"] = "01M8Y4GJBEZN3N5WXX3AVSGHR2".into();
    std::fs::write(&meta_path, serde_json::to_string_pretty(&meta).unwrap()).unwrap();
    git(&root, &["commit", "-qam", "coord topology"]);
    git(&root, &["branch", &branch]);
    let primary_log = root.join(format!("kitty-specs/{MISSION}/status.events.jsonl"));
    finalize(&root).success();
    let coord = root.join(format!(".worktrees/{MISSION}-01M8Y4GJ-coord"));
    let coord_log = coord.join(format!(
        "kitty-specs/{MISSION}-01M8Y4GJ/status.events.jsonl"
    ));
    let lines = std::fs::read_to_string(&coord_log).unwrap();
    assert_eq!(lines.lines().count(), 2, "{lines}");
    assert!(
        !primary_log.exists(),
        "the primary checkout's log must not be written"
    );
    // Committed on the coordination branch, the coordination worktree clean.
    let rel = format!("kitty-specs/{MISSION}-01M8Y4GJ/status.events.jsonl");
    assert_eq!(
        git(&root, &["show", &format!("{branch}:{rel}")]).trim_end(),
        lines.trim_end()
    );
    assert_eq!(git(&coord, &["status", "--porcelain"]), "");
    // Reads come from there too.
    let board = json(bin(&root).args(["status", "--mission", MISSION, "--json"]));
    assert_eq!(board["summary"]["planned"], 2, "{board}");
    let out = json(
        bin(&root)
            .args(["agent", "tasks", "mark-status", "T001", "--status", "done"])
            .args(["--mission", MISSION, "--json"]),
    );
    assert_eq!(out["summary"]["updated"], 1);
    assert_eq!(git(&coord, &["status", "--porcelain"]), "");
    assert!(!primary_log.exists());
}
