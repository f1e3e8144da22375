//! `spec-kitty orchestrator-api` through the binary on the orchestrator's e2e fixture: the
//! client's full flow (implement, reject/rework, approve, accept, merge), an error-path table over
//! every code the host returns, bad inputs that change nothing, and a claim race.

use assert_cmd::Command;
use serde_json::{Value, json};
use spec_kitty::contract::rules::{self, Rule, Surface};
use spec_kitty::orchestrator_api::calls::Calls;
use std::path::Path;

use super::support::{MISSION, bin, events, fixture, git, snapshot};

const POLICY: &str = r#"{"orchestrator_id": "spec-kitty-orchestrator", "orchestrator_version": "0.1.3", "agent_family": "claude", "approval_mode": "full_auto", "sandbox_mode": "workspace_write", "network_mode": "none", "dangerous_flags": [], "tool_restrictions": null}"#;
const ACTOR: &str = "spec-kitty-orchestrator";

fn api(root: &Path) -> Command {
    let mut cmd = bin(root);
    cmd.env("SPECIFY_REPO_ROOT", root).arg("orchestrator-api");
    cmd
}

/// Run, check there is exactly one JSON line on stdout with the 7 keys, return (envelope, rc).
fn call(root: &Path, args: &[&str]) -> (Value, i32) {
    let out = api(root).args(args).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.matches('\n').count(),
        1,
        "{args:?}: not exactly one line: {stdout:?}"
    );
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {stdout}"));
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "contract_version",
            "command",
            "timestamp",
            "correlation_id",
            "success",
            "error_code",
            "data"
        ],
        "{args:?}"
    );
    assert_eq!(v["contract_version"], "1.3.0");
    assert!(v["data"].is_object());
    if v["success"] == false {
        let data = v["data"].as_object().unwrap();
        assert_eq!(
            data.keys().next_back().map(String::as_str),
            Some("message"),
            "{args:?}: message must be last"
        );
        let code = v["error_code"].as_str().unwrap();
        assert!(
            code.parse::<spec_kitty::contract::types::ErrorCode>()
                .is_ok(),
            "{code} is not a contract code"
        );
    } else {
        assert!(v["error_code"].is_null());
    }
    (v, out.status.code().unwrap_or(-1))
}

fn ok(root: &Path, args: &[&str]) -> Value {
    let (v, rc) = call(root, args);
    assert_eq!(
        (v["success"].as_bool(), rc),
        (Some(true), 0),
        "{args:?}: {v}"
    );
    v["data"].clone()
}

fn err(root: &Path, args: &[&str]) -> (String, i32, Value) {
    let (v, rc) = call(root, args);
    assert_eq!(v["success"], false, "{args:?} succeeded: {v}");
    (
        v["error_code"].as_str().unwrap().to_string(),
        rc,
        v["data"].clone(),
    )
}

fn finalized() -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, root) = fixture();
    bin(&root)
        .args(["agent", "mission", "finalize-tasks", "--mission", MISSION])
        .assert()
        .success();
    (tmp, root)
}

/// The orchestrator's calls on the fixture mission (shared with `spec-kitty demo`).
const CALLS: Calls<'static> = Calls {
    mission: MISSION,
    actor: ACTOR,
    policy: POLICY,
};

fn ok_call(root: &Path, argv: &[String]) -> Value {
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    ok(root, &args)
}

fn implement(root: &Path, wp: &str) -> std::path::PathBuf {
    let data = ok_call(root, &CALLS.start_implementation(wp));
    let ws = std::path::PathBuf::from(data["workspace_path"].as_str().unwrap());
    assert_eq!(
        git(&ws, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        data["lane_branch"].as_str().unwrap()
    );
    std::fs::create_dir_all(ws.join("src")).unwrap();
    std::fs::write(ws.join(format!("src/{wp}.py")), "x = 1\n").unwrap();
    git(&ws, &["add", "-A"]);
    git(&ws, &["commit", "-qm", &format!("{wp} work")]);
    ws
}

fn review(root: &Path, wp: &str, cycle: u32, verdict: &str) {
    let r = format!("review-{wp}-cycle{cycle}-cccccccc");
    let d = ok_call(root, &CALLS.start_review(wp, &r));
    assert_eq!(d["to_lane"], "in_review");
    if verdict == "approved" {
        ok_call(
            root,
            &CALLS.approve(wp, &r, "codex", "Review approved by 'codex'"),
        );
    } else {
        ok_call(
            root,
            &CALLS.reject(wp, &r, "codex", "Review rejected; rework required"),
        );
    }
}

#[test]
fn the_clients_full_flow_with_a_rework_cycle_accept_and_merge() {
    let (_tmp, root) = finalized();
    let cv = ok(&root, &["contract-version"]);
    assert_eq!(cv["api_version"], "1.3.0");
    let state = ok(&root, &["mission-state", "--mission", MISSION]);
    assert_eq!(state["mission_slug"], MISSION);
    assert_eq!(state["mission_number"], 99);
    let ids: Vec<&str> = state["work_packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["wp_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["WP01", "WP02"]);
    assert!(
        state["work_packages"][0]
            .as_object()
            .unwrap()
            .contains_key("last_actor")
    );
    let ready = ok(&root, &["list-ready", "--mission", MISSION]);
    assert_eq!(
        ready["ready_work_packages"],
        json!([{"wp_id": "WP01", "lane": "planned", "dependencies_satisfied": true}])
    );

    for wp in ["WP01", "WP02"] {
        let ws = implement(&root, wp);
        ok(
            &root,
            &[
                "append-history",
                "--mission",
                MISSION,
                "--wp",
                wp,
                "--actor",
                ACTOR,
                "--note",
                "Starting implementation",
            ],
        );
        bin(&ws)
            .env_remove("SPECIFY_REPO_ROOT")
            .args([
                "agent",
                "tasks",
                "mark-status",
                if wp == "WP01" { "T001" } else { "T002" },
                "--status",
                "done",
                "--mission",
                MISSION,
                "--json",
            ])
            .assert()
            .success();
        let t = ok(
            &root,
            &[
                "transition",
                "--mission",
                MISSION,
                "--wp",
                wp,
                "--to",
                "for_review",
                "--actor",
                ACTOR,
                "--note",
                "Implementation complete",
                "--policy",
                POLICY,
            ],
        );
        assert_eq!(
            (t["from_lane"].as_str(), t["to_lane"].as_str()),
            (Some("in_progress"), Some("for_review"))
        );
        if wp == "WP01" {
            review(&root, wp, 1, "changes_requested");
            ok(
                &root,
                &[
                    "transition",
                    "--mission",
                    MISSION,
                    "--wp",
                    wp,
                    "--to",
                    "for_review",
                    "--actor",
                    ACTOR,
                    "--note",
                    "Re-implementation complete (cycle 2)",
                    "--policy",
                    POLICY,
                ],
            );
            review(&root, wp, 2, "approved");
        } else {
            review(&root, wp, 1, "approved");
        }
        // resolve-workspace never creates anything and points at the lane worktree.
        let r = ok(
            &root,
            &["resolve-workspace", "--mission", MISSION, "--wp", wp],
        );
        assert_eq!(r["workspace_path"], ws.to_string_lossy().as_ref());
    }
    let state = ok(&root, &["mission-state", "--mission", MISSION]);
    assert_eq!(state["summary"]["done"], 2);
    assert_eq!(state["work_packages"][0]["last_actor"], ACTOR);

    // What the client's e2e asserts on the event log.
    let evs = events(&root);
    let lane_events: Vec<&Value> = evs.iter().filter(|e| e["to_lane"].is_string()).collect();
    assert_eq!(
        lane_events
            .iter()
            .rev()
            .find(|e| e["wp_id"] == "WP01")
            .unwrap()["to_lane"],
        "done"
    );
    assert!(lane_events.iter().any(|e| e["policy_metadata"].is_object()));
    assert!(
        lane_events.iter().all(|e| e["force"] == false),
        "no event may be forced"
    );
    assert!(lane_events.iter().any(|e| e["review_ref"].is_string()));
    let last_done = lane_events
        .iter()
        .rev()
        .find(|e| e["to_lane"] == "done")
        .unwrap();
    assert_eq!(last_done["evidence"]["review"]["verdict"], "approved");
    for e in &lane_events {
        for k in [
            "wp_id",
            "to_lane",
            "force",
            "policy_metadata",
            "review_ref",
            "evidence",
        ] {
            assert!(e.as_object().unwrap().contains_key(k), "{k} missing in {e}");
        }
    }

    let accepted = ok(
        &root,
        &["accept-mission", "--mission", MISSION, "--actor", ACTOR],
    );
    assert_eq!(
        (accepted["accepted"].as_bool(), accepted["mode"].as_str()),
        (Some(true), Some("auto"))
    );
    let meta: Value = serde_json::from_slice(
        &std::fs::read(root.join(format!("kitty-specs/{MISSION}/meta.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["acceptance_mode"], "orchestrator");
    let before_status =
        std::fs::read(root.join(format!("kitty-specs/{MISSION}/status.events.jsonl"))).unwrap();
    let merged = ok(
        &root,
        &[
            "merge-mission",
            "--mission",
            MISSION,
            "--strategy",
            "squash",
        ],
    );
    assert_eq!(merged["merged_wps"], json!(["WP01", "WP02"]));
    assert_eq!(merged["worktree_removed"], true);
    assert_eq!(merged["strategy"], "squash");
    assert!(
        root.join("src/WP01.py").exists() && root.join("src/WP02.py").exists(),
        "the target holds both lanes' work"
    );
    assert!(!root.join(".worktrees/099-orchestrator-e2e-lane-a").exists());
    assert_eq!(git(&root, &["branch", "--list", "kitty/*"]), "");
    assert_eq!(
        std::fs::read(root.join(format!("kitty-specs/{MISSION}/status.events.jsonl"))).unwrap(),
        before_status,
        "merge lost status changes"
    );
    let state = ok(&root, &["mission-state", "--mission", MISSION]);
    assert_eq!(state["summary"]["done"], 2);
}

fn forbidden(field: &str) -> Vec<&'static str> {
    Surface::OrchestratorApi
        .rules()
        .iter()
        .filter_map(|r| match r {
            Rule::ForbiddenValue { field: f, values } if *f == field => {
                Some(values.iter().copied())
            }
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn usage_errors_are_envelopes_with_exit_2() {
    let (_tmp, root) = finalized();
    let mut cases: Vec<Vec<String>> = vec![
        vec![],
        vec!["bogus".into()],
        vec!["mission-state".into()],
        vec!["contract-version".into(), "--json".into()],
    ];
    for cmd in forbidden("commands") {
        cases.push(vec![cmd.into(), "--mission".into(), MISSION.into()]);
    }
    for flag in forbidden("cli_flags") {
        cases.push(vec!["mission-state".into(), flag.into(), MISSION.into()]);
    }
    assert!(cases.len() >= 8);
    for args in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (v, rc) = call(&root, &args);
        assert_eq!(
            (v["error_code"].as_str(), rc),
            (Some("USAGE_ERROR"), 2),
            "{args:?}"
        );
        assert_eq!(v["command"], "orchestrator-api.unknown");
    }
    let (v, _) = call(&root, &[]);
    assert_eq!(v["data"]["message"], "Missing command.");
    api(&root).arg("--help").assert().success();
}

#[test]
fn error_path_table() {
    let (_tmp, root) = finalized();
    let m = MISSION;
    let secret = POLICY.replace(
        "\"none\", \"dangerous_flags\"",
        "\"my-api-token\", \"dangerous_flags\"",
    );
    let banned = POLICY.replace(
        "\"dangerous_flags\": []",
        "\"dangerous_flags\": [\"--yolo\"]",
    );
    let table: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["contract-version", "--provider-version", "0.0.9"],
            "CONTRACT_VERSION_MISMATCH",
        ),
        (
            vec!["contract-version", "--provider-version", "banana"],
            "CONTRACT_VERSION_MISMATCH",
        ),
        (
            vec![
                "start-implementation",
                "--mission",
                m,
                "--wp",
                "WP01",
                "--actor",
                ACTOR,
            ],
            "POLICY_METADATA_REQUIRED",
        ),
        (
            vec![
                "start-implementation",
                "--mission",
                m,
                "--wp",
                "WP01",
                "--actor",
                ACTOR,
                "--policy",
                "{",
            ],
            "POLICY_VALIDATION_FAILED",
        ),
        (
            vec![
                "start-implementation",
                "--mission",
                m,
                "--wp",
                "WP01",
                "--actor",
                ACTOR,
                "--policy",
                &secret,
            ],
            "POLICY_VALIDATION_FAILED",
        ),
        (
            vec![
                "start-implementation",
                "--mission",
                m,
                "--wp",
                "WP01",
                "--actor",
                ACTOR,
                "--policy",
                &banned,
            ],
            "POLICY_VALIDATION_FAILED",
        ),
        (
            vec![
                "transition",
                "--mission",
                m,
                "--wp",
                "WP01",
                "--to",
                "in_progress",
                "--actor",
                ACTOR,
            ],
            "POLICY_METADATA_REQUIRED",
        ),
        (
            vec!["mission-state", "--mission", "404-nothing"],
            "MISSION_NOT_FOUND",
        ),
        (
            vec!["mission-state", "--mission", "../../etc"],
            "MISSION_NOT_FOUND",
        ),
        (
            vec!["list-ready", "--mission", "kitty-specs/.."],
            "MISSION_NOT_FOUND",
        ),
        (
            vec!["resolve-workspace", "--mission", m, "--wp", "WP99"],
            "WP_NOT_FOUND",
        ),
        (
            vec!["resolve-workspace", "--mission", m, "--wp", "../WP01"],
            "WP_NOT_FOUND",
        ),
        (
            vec![
                "transition",
                "--mission",
                m,
                "--wp",
                "WP01",
                "--to",
                "bogus",
                "--actor",
                ACTOR,
            ],
            "TRANSITION_REJECTED",
        ),
        (
            vec![
                "transition",
                "--mission",
                m,
                "--wp",
                "WP01",
                "--to",
                "done",
                "--actor",
                ACTOR,
            ],
            "TRANSITION_REJECTED",
        ),
        (
            vec![
                "start-review",
                "--mission",
                m,
                "--wp",
                "WP01",
                "--actor",
                ACTOR,
                "--policy",
                POLICY,
            ],
            "TRANSITION_REJECTED",
        ),
        (
            vec![
                "transition",
                "--mission",
                m,
                "--wp",
                "WP01",
                "--to",
                "blocked",
                "--actor",
                ACTOR,
                "--evidence-json",
                "[1",
            ],
            "USAGE_ERROR",
        ),
        (
            vec![
                "transition",
                "--mission",
                m,
                "--wp",
                "WP01",
                "--to",
                "blocked",
                "--actor",
                ACTOR,
                "--review-result-json",
                "{\"verdict\": \"meh\"}",
            ],
            "USAGE_ERROR",
        ),
        (
            vec![
                "start-implementation",
                "--mission",
                m,
                "--wp",
                "WP02",
                "--actor",
                ACTOR,
                "--policy",
                POLICY,
            ],
            "DEPENDENCIES_NOT_SATISFIED",
        ),
        (
            vec!["accept-mission", "--mission", m, "--actor", ACTOR],
            "MISSION_NOT_READY",
        ),
        (
            vec!["merge-mission", "--mission", m, "--strategy", "octopus"],
            "UNSUPPORTED_STRATEGY",
        ),
        (vec!["merge-mission", "--mission", m], "PREFLIGHT_FAILED"),
        (
            vec![
                "merge-mission",
                "--mission",
                m,
                "--target",
                "no-such-branch",
            ],
            "PREFLIGHT_FAILED",
        ),
    ];
    for (args, want) in &table {
        let before = snapshot(&root);
        let (code, rc, data) = err(&root, args);
        assert_eq!((code.as_str(), rc), (*want, 1), "{args:?}: {data}");
        assert_eq!(snapshot(&root), before, "{args:?} changed files");
    }
    // A lane worktree path occupied by a checkout of another branch: LANE_ALLOCATION_FAILED.
    git(
        &root,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "elsewhere",
            ".worktrees/099-orchestrator-e2e-lane-a",
        ],
    );
    let log = root.join(format!("kitty-specs/{m}/status.events.jsonl"));
    let before = std::fs::read(&log).unwrap();
    let (code, _, data) = err(
        &root,
        &[
            "start-implementation",
            "--mission",
            m,
            "--wp",
            "WP01",
            "--actor",
            ACTOR,
            "--policy",
            POLICY,
        ],
    );
    assert_eq!(code, "LANE_ALLOCATION_FAILED", "{data}");
    assert_eq!(
        std::fs::read(&log).unwrap(),
        before,
        "no status change when allocation fails"
    );
    git(
        &root,
        &[
            "worktree",
            "remove",
            "--force",
            ".worktrees/099-orchestrator-e2e-lane-a",
        ],
    );

    // The secret itself is never echoed back.
    let (_, _, data) = err(&root, &table[4].0);
    assert!(!data.to_string().contains("my-api-token"));

    // WP_ALREADY_CLAIMED, and a no-op replay by the same actor.
    ok(
        &root,
        &[
            "start-implementation",
            "--mission",
            m,
            "--wp",
            "WP01",
            "--actor",
            ACTOR,
            "--policy",
            POLICY,
        ],
    );
    let replay = ok(
        &root,
        &[
            "start-implementation",
            "--mission",
            m,
            "--wp",
            "WP01",
            "--actor",
            ACTOR,
            "--policy",
            POLICY,
        ],
    );
    assert_eq!(replay["no_op"], true);
    let (code, _, data) = err(
        &root,
        &[
            "start-implementation",
            "--mission",
            m,
            "--wp",
            "WP01",
            "--actor",
            "someone-else",
            "--policy",
            POLICY,
        ],
    );
    assert_eq!(
        (code.as_str(), data["claimed_by"].as_str()),
        ("WP_ALREADY_CLAIMED", Some(ACTOR))
    );
    // for_review without a commit on the lane is refused by the commit gate.
    let (code, _, data) = err(
        &root,
        &[
            "transition",
            "--mission",
            m,
            "--wp",
            "WP01",
            "--to",
            "for_review",
            "--actor",
            ACTOR,
            "--policy",
            POLICY,
        ],
    );
    assert_eq!(code, "TRANSITION_REJECTED");
    assert!(
        data["message"]
            .as_str()
            .unwrap()
            .contains("no implementation commit"),
        "{data}"
    );
    // A corrupt log: reads say STATUS_READ_PATH_NOT_FOUND, history appends HISTORY_COMMIT_FAILED.
    let log = root.join(format!("kitty-specs/{m}/status.events.jsonl"));
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("{\"torn\": ");
    std::fs::write(&log, &text).unwrap();
    assert_eq!(
        err(&root, &["mission-state", "--mission", m]).0,
        "STATUS_READ_PATH_NOT_FOUND"
    );
    assert_eq!(
        err(
            &root,
            &[
                "append-history",
                "--mission",
                m,
                "--wp",
                "WP01",
                "--actor",
                ACTOR,
                "--note",
                "n"
            ]
        )
        .0,
        "HISTORY_COMMIT_FAILED"
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        text,
        "nothing was appended to a torn log"
    );
}

#[test]
fn a_legacy_meta_json_is_refused_without_change() {
    let (_tmp, root) = finalized();
    let p = root.join(format!("kitty-specs/{MISSION}/meta.json"));
    let mut meta: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    meta[rules::LEGACY_KEYS[0]] = json!(MISSION);
    std::fs::write(&p, serde_json::to_string_pretty(&meta).unwrap()).unwrap();
    let before = snapshot(&root);
    let (code, _, data) = err(
        &root,
        &[
            "start-implementation",
            "--mission",
            MISSION,
            "--wp",
            "WP01",
            "--actor",
            ACTOR,
            "--policy",
            POLICY,
        ],
    );
    assert_eq!(code, "MISSION_NOT_FOUND");
    assert!(
        data["message"]
            .as_str()
            .unwrap()
            .contains("spec-kitty upgrade"),
        "{data}"
    );
    assert_eq!(snapshot(&root), before);
}

#[test]
fn concurrent_claims_serialise_and_exactly_one_wins() {
    for _ in 0..3 {
        let (_tmp, root) = finalized();
        let spawn = |actor: &str| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin!("spec-kitty"))
                .current_dir(&root)
                .env("SPECIFY_REPO_ROOT", &root)
                .env("HOME", super::support::test_home())
                .env(
                    "SPEC_KITTY_HOME",
                    super::support::test_home().join(".spec-kitty"),
                )
                .args([
                    "orchestrator-api",
                    "start-implementation",
                    "--mission",
                    MISSION,
                    "--wp",
                    "WP01",
                    "--actor",
                    actor,
                    "--policy",
                    POLICY,
                ])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let a = spawn("agent-a");
        let b = spawn("agent-b");
        let outs: Vec<Value> = [a, b]
            .into_iter()
            .map(|c| serde_json::from_slice(&c.wait_with_output().unwrap().stdout).unwrap())
            .collect();
        let wins = outs.iter().filter(|o| o["success"] == true).count();
        assert_eq!(wins, 1, "{outs:?}");
        assert!(
            outs.iter().any(|o| o["error_code"] == "WP_ALREADY_CLAIMED"),
            "{outs:?}"
        );
        let lane: Vec<Value> = events(&root)
            .into_iter()
            .filter(|e| e["to_lane"].is_string())
            .collect();
        assert_eq!(
            lane.len(),
            4,
            "bootstrap ×2 + claimed + in_progress, nothing lost or doubled"
        );
    }
}

/// Every state change of the flow lands in the SQLite queue as a gate-valid 3.0.0 envelope that
/// upstream's own Event schema accepts, with no feature-era key anywhere.
#[test]
fn the_demo_flow_queues_a_clean_envelope_for_every_state_change() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let run = |args: &[&str]| {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("spec-kitty"));
        cmd.current_dir(tmp.path())
            .env("HOME", &home)
            .env("SPEC_KITTY_HOME", &home)
            .env_remove("SPECIFY_REPO_ROOT");
        cmd.args(args)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone()
    };
    run(&["demo", &tmp.path().join("demo").to_string_lossy()]);
    let status: Value = serde_json::from_slice(&run(&["sync", "status", "--json"])).unwrap();
    let counts: std::collections::BTreeMap<String, u64> = status["queue"]["by_type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["event_type"].as_str().unwrap().to_string(),
                t["count"].as_u64().unwrap(),
            )
        })
        .collect();
    // 2 WPs: bootstrap + claimed + in_progress + for_review + done each (in_review has no 3.0.0 lane).
    let want: std::collections::BTreeMap<String, u64> = [
        ("MissionCreated", 1),
        ("WPCreated", 2),
        ("WPStatusChanged", 10),
        ("HistoryAdded", 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(counts, want);
    assert_eq!(status["quarantine"]["count"], 0);

    let db = rusqlite::Connection::open(home.join("queue.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT data FROM queue ORDER BY timestamp ASC, id ASC")
        .unwrap();
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let schema = super::upstream::dir().map(|d| {
        let path = d.join("spec-kitty-events-3.0.0/schemas/event.schema.json");
        jsonschema::validator_for(&super::upstream::read_json(&path)).unwrap()
    });
    for row in rows {
        let env: Value = serde_json::from_str(&row).unwrap();
        assert_eq!(
            spec_kitty::contract::gate(Surface::Envelope, &env),
            Ok(()),
            "{env}"
        );
        assert!(!row.contains(rules::LEGACY_KEYS[0]) && !row.contains(rules::LEGACY_KEYS[1]));
        if let Some(v) = &schema {
            assert!(v.is_valid(&env), "upstream's Event schema refuses {env}");
        }
    }
}

#[test]
fn a_failed_merge_replay_creates_no_branch_and_changes_nothing() {
    let (_tmp, root) = finalized();
    for (wp, subtask) in [("WP01", "T001"), ("WP02", "T002")] {
        implement(&root, wp);
        bin(&root)
            .args(["agent", "tasks", "mark-status", subtask, "--status", "done"])
            .args(["--mission", MISSION])
            .assert()
            .success();
        ok_call(&root, &CALLS.to_review(wp, "Implementation complete"));
        review(&root, wp, 1, "approved");
    }
    // The target gets a change that conflicts with WP01's work.
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("src/WP01.py"), "x = 2\n").unwrap();
    git(&root, &["add", "src/WP01.py"]);
    git(
        &root,
        &["commit", "-qm", "conflicting change on the target"],
    );
    // The mission branch is gone (as after an earlier merge, or lanes made by another tool):
    // the replay must not create it when it fails.
    git(
        &root,
        &["branch", "-D", &format!("kitty/mission-{MISSION}")],
    );
    let head = git(&root, &["rev-parse", "HEAD"]);
    let branches = git(&root, &["branch", "--list"]);
    let before = snapshot(&root.join("kitty-specs"));
    let porcelain = git(&root, &["status", "--porcelain"]);
    let merge = CALLS.merge();
    let (code, status, _) = err(&root, &merge.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!((code.as_str(), status), ("PREFLIGHT_FAILED", 1));
    assert_eq!(
        git(&root, &["branch", "--list"]),
        branches,
        "a failed replay created or removed a branch"
    );
    assert_eq!(
        git(
            &root,
            &["branch", "--list", &format!("kitty/mission-{MISSION}")]
        ),
        "",
        "a failed replay left a mission branch"
    );
    assert_eq!(git(&root, &["rev-parse", "HEAD"]), head);
    assert_eq!(snapshot(&root.join("kitty-specs")), before);
    assert_eq!(git(&root, &["status", "--porcelain"]), porcelain);
}

/// Every git path of the merge (its operands follow `--`): a merge in a temporary worktree whose
/// result moves the target ref, a rebase fast-forwarded in the target's own checkout, and a
/// rebase whose result moves the ref.
#[test]
fn merge_and_rebase_land_both_lanes_on_the_target_checked_out_or_not() {
    for (strategy, detached) in [("merge", true), ("rebase", false), ("rebase", true)] {
        let (_tmp, root) = finalized();
        for (wp, subtask) in [("WP01", "T001"), ("WP02", "T002")] {
            implement(&root, wp);
            bin(&root)
                .args(["agent", "tasks", "mark-status", subtask, "--status", "done"])
                .args(["--mission", MISSION])
                .assert()
                .success();
            ok_call(&root, &CALLS.to_review(wp, "Implementation complete"));
            review(&root, wp, 1, "approved");
        }
        let target = git(&root, &["rev-parse", "--abbrev-ref", "HEAD"])
            .trim()
            .to_owned();
        if detached {
            git(&root, &["checkout", "-q", "--detach"]);
        }
        let merged = ok(
            &root,
            &[
                "merge-mission",
                "--mission",
                MISSION,
                "--target",
                &target,
                "--strategy",
                strategy,
            ],
        );
        assert_eq!(merged["merged_wps"], json!(["WP01", "WP02"]), "{strategy}");
        let files = git(&root, &["ls-tree", "-r", "--name-only", &target]);
        assert!(
            files.contains("src/WP01.py") && files.contains("src/WP02.py"),
            "{strategy} (detached: {detached}): {files}"
        );
        assert_eq!(
            git(&root, &["branch", "--list", "kitty/*"]),
            "",
            "{strategy}"
        );
    }
}
