//! The status log is the outbox (issue 15): every line of `status.events.jsonl` reaches the
//! queue exactly once, by its `event_id`, whatever dies when; a change the contract cannot
//! carry is refused before it is recorded; a command that fails changes nothing.
//!
//! Kill -9 loops: `finalize-tasks` on 200 work packages, a burst of status changes and
//! `sync now` against the fake SaaS, each killed at random points, then counted: events in the
//! log versus events queued and acknowledged (zero lost, zero duplicated). The default runs
//! use 5 points each; the `#[ignore]`d `*_50_points` versions are the long target
//! (`cargo test --test it -- --ignored outbox_relay::`, see README).

use std::collections::{HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;
use spec_kitty::home::SpecKittyHome;
use spec_kitty::queue::{Queue, QueueOptions};

use super::sync_support::{Net, Rng, Sandbox};

const SLUG: &str = "001-relay";
const POLICY: &str = r#"{"orchestrator_id": "spec-kitty-orchestrator", "orchestrator_version": "0.1.3", "agent_family": "claude", "approval_mode": "full_auto", "sandbox_mode": "workspace_write", "network_mode": "none", "dangerous_flags": [], "tool_restrictions": null}"#;

/// A mission `slug` with `n` independent work packages, committed.
fn write_mission(root: &Path, slug: &str, number: u32, n: usize) {
    let dir = root.join("kitty-specs").join(slug);
    std::fs::create_dir_all(dir.join("tasks")).unwrap();
    std::fs::write(
        dir.join("meta.json"),
        format!(
            "{{\n  \"mission_slug\": \"{slug}\",\n  \"mission_number\": {number},\n  \"mission_type\": \"software-dev\",\n  \"title\": \"Relay\",\n  \"target_branch\": \"main\"\n}}"
        ),
    )
    .unwrap();
    let mut tasks = String::new();
    for i in 1..=n {
        let id = format!("WP{i:02}");
        tasks.push_str(&format!("## {id}\n\n- [ ] T{i:03} Work {i}\n\n"));
        std::fs::write(
            dir.join(format!("tasks/{id}-work.md")),
            format!(
                "---\nwork_package_id: \"{id}\"\ntitle: \"Work {i}\"\nlane: \"planned\"\ndependencies: []\nsubtasks: [\"T{i:03}\"]\nowned_files: [\"src/{slug}/{id}.py\"]\n---\nDo it.\n"
            ),
        )
        .unwrap();
    }
    std::fs::write(dir.join("tasks.md"), tasks).unwrap();
    std::fs::write(root.join(".gitignore"), ".worktrees/\n").unwrap();
    super::support::git(root, &["add", "-A"]);
    super::support::git(root, &["commit", "-qm", &format!("mission {slug}")]);
}

fn identity(cmd: &mut StdCommand) -> &mut StdCommand {
    cmd.env("GIT_AUTHOR_NAME", "T")
        .env("GIT_AUTHOR_EMAIL", "t@example.test")
        .env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.test")
}

fn std_cmd(sb: &Sandbox, args: &[&str]) -> StdCommand {
    let mut c = sb.std_bin();
    identity(&mut c).args(args);
    c
}

fn run(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    std_cmd(sb, args).output().unwrap()
}

fn run_ok(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    let out = run(sb, args);
    assert!(
        out.status.success(),
        "{args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn finalize_args(slug: &str) -> Vec<String> {
    [
        "agent",
        "mission",
        "finalize-tasks",
        "--mission",
        slug,
        "--json",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn history_args(slug: &str, wp: &str, note: &str) -> Vec<String> {
    [
        "orchestrator-api",
        "append-history",
        "--mission",
        slug,
        "--wp",
        wp,
        "--actor",
        "orch",
        "--note",
        note,
    ]
    .map(str::to_owned)
    .to_vec()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn events_path(root: &Path, slug: &str) -> PathBuf {
    root.join("kitty-specs")
        .join(slug)
        .join("status.events.jsonl")
}

/// What the log says must be queued: `WPStatusChanged`/`HistoryAdded` by the line's
/// `event_id`, and one `WPCreated` per bootstrapped work package.
#[derive(Default)]
struct Expected {
    ids: HashSet<String>,
    created: HashSet<(String, String)>,
}

fn expected(root: &Path, slugs: &[&str]) -> Expected {
    let mut out = Expected::default();
    for slug in slugs {
        let Ok(text) = std::fs::read_to_string(events_path(root, slug)) else {
            continue;
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("{slug}: a complete log line is not JSON ({e}): {line}")
            });
            let id = v["event_id"].as_str().unwrap().to_owned();
            if let Some(to) = v["to_lane"].as_str() {
                let from = v["from_lane"].as_str().unwrap_or_default();
                if from == "genesis" {
                    out.created
                        .insert(((*slug).to_owned(), v["wp_id"].as_str().unwrap().to_owned()));
                }
                if !(from == "for_review" && to == "in_review") && to != "genesis" {
                    out.ids.insert(id);
                }
            } else if v["delta"]["note"].as_str().is_some_and(|n| !n.is_empty()) {
                out.ids.insert(id);
            }
        }
    }
    out
}

/// Counts of one check: lines the log holds versus events queued (+ acknowledged).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Count {
    expected: usize,
    delivered: usize,
    lost: usize,
    duplicated: usize,
}

/// Queued envelopes (and, with a fake server, the stored ones) against the log.
fn count(root: &Path, slugs: &[&str], queue: &Path, stored: &[Value]) -> Count {
    let want = expected(root, slugs);
    let mut envelopes: Vec<Value> = stored.to_vec();
    if queue.exists() {
        let q = Queue::open(queue, QueueOptions::default()).unwrap();
        for row in q.peek(u64::MAX).unwrap() {
            envelopes.push(serde_json::from_str(&row.data).unwrap());
        }
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut created: HashMap<(String, String), usize> = HashMap::new();
    let mut duplicated = 0;
    for env in &envelopes {
        let id = env["event_id"].as_str().unwrap().to_owned();
        let payload = &env["payload"];
        match env["event_type"].as_str().unwrap() {
            "WPCreated" => {
                *created
                    .entry((
                        payload["mission_slug"].as_str().unwrap().to_owned(),
                        payload["wp_id"].as_str().unwrap().to_owned(),
                    ))
                    .or_default() += 1;
            }
            "WPStatusChanged" | "HistoryAdded" => {
                if !want.ids.contains(&id) {
                    duplicated += 1; // an event of no log line: sent under another id
                }
                *seen.entry(id).or_default() += 1;
            }
            _ => {}
        }
    }
    duplicated += seen.values().map(|n| n - 1).sum::<usize>();
    duplicated += created.values().map(|n| n - 1).sum::<usize>();
    duplicated += created.keys().filter(|k| !want.created.contains(k)).count();
    let lost = want.ids.iter().filter(|id| !seen.contains_key(*id)).count()
        + want
            .created
            .iter()
            .filter(|k| !created.contains_key(*k))
            .count();
    let total = want.ids.len() + want.created.len();
    Count {
        expected: total,
        delivered: total - lost,
        lost,
        duplicated,
    }
}

fn queue_of(sb: &Sandbox) -> PathBuf {
    SpecKittyHome::at(sb.spec_kitty()).queue_path()
}

fn temp_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == ".git" || name == ".worktrees" {
            continue;
        }
        if p.is_dir() {
            temp_files(&p, out);
        } else if name.starts_with(".tmp-")
            || (name.starts_with(".status.json.") && name.ends_with(".tmp"))
        {
            out.push(p);
        }
    }
}

/// Leftover temp files of killed runs are swept by the next write once they are stale: age
/// them (as time passing would), run `then`, and none may remain in the checkout.
fn assert_no_temp_files_after(root: &Path, then: impl FnOnce()) {
    let mut left = Vec::new();
    temp_files(root, &mut left);
    let past = std::time::SystemTime::now() - Duration::from_secs(3600);
    for p in &left {
        if let Ok(f) = std::fs::File::options().write(true).open(p) {
            let _ = f.set_modified(past);
        }
    }
    then();
    let mut still = Vec::new();
    temp_files(root, &mut still);
    assert!(
        still.is_empty(),
        "temporary files left in the checkout: {still:?}"
    );
}

/// Spawn `args`, kill it with SIGKILL after `delay`; whether it was killed mid-run.
fn kill_after(mut cmd: StdCommand, delay: Duration) -> bool {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let _ = child.kill();
    let status = child.wait().unwrap();
    status.signal() == Some(9)
}

/// How long one run of `args` takes here (the range of the kill points).
fn duration_of(sb: &Sandbox, args: &[&str]) -> Duration {
    let started = Instant::now();
    let _ = run(sb, args);
    started.elapsed()
}

#[test]
fn a_lane_change_is_queued_under_its_log_event_id_exactly_once() {
    let sb = Sandbox::new();
    write_mission(&sb.project, SLUG, 1, 3);
    run_ok(&sb, &strs(&finalize_args(SLUG)));
    let q = queue_of(&sb);
    let c = count(&sb.project, &[SLUG], &q, &[]);
    assert_eq!((c.expected, c.lost, c.duplicated), (6, 0, 0), "{c:?}");
    // A rerun (nothing new) and a history note: still exactly once each.
    run_ok(&sb, &strs(&finalize_args(SLUG)));
    run_ok(&sb, &strs(&history_args(SLUG, "WP01", "a note")));
    let c = count(&sb.project, &[SLUG], &q, &[]);
    assert_eq!((c.expected, c.lost, c.duplicated), (7, 0, 0), "{c:?}");
}

#[test]
fn lines_a_command_could_not_queue_are_queued_by_the_next_command() {
    let sb = Sandbox::new();
    write_mission(&sb.project, SLUG, 1, 2);
    // The spec-kitty home cannot be created: the changes are recorded, not queued.
    let blocked = |args: &[String]| {
        let out = std_cmd(&sb, &strs(args))
            .env("SPEC_KITTY_HOME", "/dev/null/spec-kitty")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(stderr.contains("not yet queued"), "{stderr}");
    };
    blocked(&finalize_args(SLUG));
    blocked(&history_args(SLUG, "WP02", "offline"));
    let q = queue_of(&sb);
    assert_eq!(count(&sb.project, &[SLUG], &q, &[]).lost, 5);
    run_ok(&sb, &strs(&history_args(SLUG, "WP01", "back")));
    let c = count(&sb.project, &[SLUG], &q, &[]);
    assert_eq!((c.expected, c.lost, c.duplicated), (6, 0, 0), "{c:?}");
}

#[test]
fn done_without_evidence_is_refused_before_it_is_recorded() {
    let sb = Sandbox::new();
    write_mission(&sb.project, SLUG, 1, 1);
    run_ok(&sb, &strs(&finalize_args(SLUG)));
    let log = events_path(&sb.project, SLUG);
    let before = std::fs::read(&log).unwrap();
    let out = run(
        &sb,
        &[
            "orchestrator-api",
            "transition",
            "--mission",
            SLUG,
            "--wp",
            "WP01",
            "--actor",
            "orch",
            "--to",
            "done",
            "--force",
            "--note",
            "skip review",
            "--policy",
            POLICY,
        ],
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error_code"], "WORKFLOW_EVIDENCE_REQUIRED", "{doc}");
    assert!(
        doc["data"]["message"]
            .as_str()
            .unwrap()
            .contains("--evidence-json"),
        "{doc}"
    );
    assert_eq!(std::fs::read(&log).unwrap(), before, "the log changed");
}

#[test]
fn mark_status_on_a_malformed_log_fails_without_appending() {
    let sb = Sandbox::new();
    write_mission(&sb.project, SLUG, 1, 1);
    run_ok(&sb, &strs(&finalize_args(SLUG)));
    let log = events_path(&sb.project, SLUG);
    let mut bytes = std::fs::read(&log).unwrap();
    bytes.extend_from_slice(b"{\"not\": \"an event\"}\n");
    std::fs::write(&log, &bytes).unwrap();
    for _ in 0..2 {
        let out = run(
            &sb,
            &[
                "agent",
                "tasks",
                "mark-status",
                "T001",
                "--status",
                "done",
                "--mission",
                SLUG,
            ],
        );
        assert!(!out.status.success());
        assert_eq!(std::fs::read(&log).unwrap(), bytes, "the log changed");
    }
}

#[test]
fn a_torn_tail_is_named_with_the_repair_command_which_fixes_it() {
    let sb = Sandbox::new();
    write_mission(&sb.project, SLUG, 1, 1);
    run_ok(&sb, &strs(&finalize_args(SLUG)));
    let log = events_path(&sb.project, SLUG);
    let mut bytes = std::fs::read(&log).unwrap();
    let good = bytes.clone();
    bytes.extend_from_slice(b"{\"event_id\": \"01H");
    std::fs::write(&log, &bytes).unwrap();
    let out = run(&sb, &strs(&history_args(SLUG, "WP01", "x")));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = doc["data"]["message"].as_str().unwrap();
    let repair = format!("spec-kitty agent status repair --mission {SLUG}");
    assert!(message.contains(&repair), "{message}");
    assert!(!message.contains("EventLog::"), "{message}");
    assert_eq!(std::fs::read(&log).unwrap(), bytes);
    let out = run_ok(
        &sb,
        &["agent", "status", "repair", "--mission", SLUG, "--json"],
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["repaired"], true);
    assert_eq!(doc["removed"], "{\"event_id\": \"01H");
    assert_eq!(std::fs::read(&log).unwrap(), good);
    run_ok(&sb, &strs(&history_args(SLUG, "WP01", "x")));
}

#[test]
fn finalize_without_a_git_identity_writes_nothing() {
    let sb = Sandbox::new();
    write_mission(&sb.project, SLUG, 1, 2);
    // No identity anywhere and no guessing from the host name.
    super::support::git(&sb.project, &["config", "user.useConfigOnly", "true"]);
    let before = super::support::snapshot(&sb.project);
    let out = sb
        .std_bin()
        .args(strs(&finalize_args(SLUG)))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("EMAIL")
        .env_remove("GIT_AUTHOR_NAME")
        .env_remove("GIT_AUTHOR_EMAIL")
        .env_remove("GIT_COMMITTER_NAME")
        .env_remove("GIT_COMMITTER_EMAIL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "finalize succeeded without an identity: {stderr}"
    );
    assert!(
        stderr.contains("GIT_COMMITTER_IDENT") || stderr.contains("identity"),
        "{stderr}"
    );
    assert_eq!(
        super::support::snapshot(&sb.project),
        before,
        "files changed"
    );
    // With an identity the same command then works (nothing half done to trip over).
    run_ok(&sb, &strs(&finalize_args(SLUG)));
}

/// The project identity is committed with the mission files unless git ignores it; an ignored
/// config.yaml (git add refuses it, after adding the rest) leaves the commit to the others, and
/// a second finalize (nothing to commit) succeeds without a commit.
#[test]
fn finalize_commits_around_an_ignored_identity_file_and_is_idempotent() {
    let sb = Sandbox::new();
    write_mission(&sb.project, SLUG, 1, 2);
    std::fs::write(sb.project.join(".gitignore"), ".worktrees/\n.kittify/\n").unwrap();
    let git = |args: &[&str]| super::support::git(&sb.project, args);
    git(&["add", ".gitignore"]);
    git(&["commit", "-q", "-m", "ignore .kittify"]);
    let head = git(&["rev-parse", "HEAD"]);
    // The identity in the repository's own config (read in-process, no `git var`).
    git(&["config", "user.name", "Local Config"]);
    git(&["config", "user.email", "local@example.test"]);
    let mut cmd = sb.std_bin();
    cmd.args(strs(&finalize_args(SLUG)));
    for var in [
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "EMAIL",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let committed = git(&["show", "--name-only", "--format=", "HEAD"]);
    assert_ne!(git(&["rev-parse", "HEAD"]), head, "{doc}");
    assert_eq!(
        git(&["log", "-1", "--format=%an <%ae>"]),
        "Local Config <local@example.test>"
    );
    assert!(committed.contains("status.events.jsonl"), "{committed}");
    assert!(!committed.contains("config.yaml"), "{committed}");
    assert!(sb.project.join(".kittify/config.yaml").is_file());
    assert_eq!(git(&["status", "--porcelain", "--", "kitty-specs"]), "");
    let after = git(&["rev-parse", "HEAD"]);
    run_ok(&sb, &strs(&finalize_args(SLUG)));
    assert_eq!(
        git(&["rev-parse", "HEAD"]),
        after,
        "a second finalize made a commit"
    );
}

/// Lines another tool wrote that the contract cannot carry are passed over, each named on stderr
/// up to a bound, then counted in one line; the relay goes on past them.
#[test]
fn unsendable_lines_are_reported_up_to_a_bound_then_counted() {
    let sb = Sandbox::new();
    write_mission(&sb.project, SLUG, 1, 1);
    run_ok(&sb, &strs(&finalize_args(SLUG)));
    let mut lines = String::new();
    for i in 0..30 {
        lines.push_str(&format!(
            "{{\"actor\": \"other-tool\", \"at\": \"2026-01-01T00:00:{:02}.000000+00:00\", \
             \"event_id\": \"01J0000000000000000000{i:04}\", \"evidence\": null, \
             \"execution_mode\": \"worktree\", \"force\": true, \"from_lane\": \"planned\", \
             \"mission_slug\": \"{SLUG}\", \"policy_metadata\": null, \"reason\": \"x\", \
             \"review_ref\": null, \"to_lane\": \"done\", \"wp_id\": \"WP01\"}}\n",
            i % 60
        ));
    }
    let log = events_path(&sb.project, SLUG);
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str(&lines);
    std::fs::write(&log, text).unwrap();
    let out = run_ok(&sb, &strs(&history_args(SLUG, "WP01", "after")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let named = stderr
        .lines()
        .filter(|l| l.contains("for the line at byte"))
        .count();
    assert_eq!(named, 20, "{stderr}");
    assert!(
        stderr.contains("10 more events of") && stderr.contains("stay recorded locally only"),
        "{stderr}"
    );
    let q = Queue::open(queue_of(&sb), QueueOptions::default()).unwrap();
    let history = q
        .peek(u64::MAX)
        .unwrap()
        .iter()
        .filter(|r| r.event_type == "HistoryAdded")
        .count();
    assert_eq!(
        history, 1,
        "the note after the unsendable lines was not queued"
    );
}

#[test]
fn a_closed_stdout_ends_quietly_with_141() {
    let sb = Sandbox::new();
    write_mission(&sb.project, SLUG, 1, 40);
    run_ok(&sb, &strs(&finalize_args(SLUG)));
    for args in [
        vec!["status"],
        vec!["orchestrator-api", "mission-state", "--mission", SLUG],
    ] {
        let mut child = std_cmd(&sb, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader went away
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
    }
}

#[test]
fn a_held_status_lock_is_waited_for_bounded_with_a_clear_error() {
    let sb = Sandbox::new();
    write_mission(&sb.project, SLUG, 1, 1);
    run_ok(&sb, &strs(&finalize_args(SLUG)));
    let lock = sb
        .project
        .join(".git/spec-kitty-locks")
        .join(format!("{SLUG}.status.lock"));
    let held = std::fs::File::options()
        .read(true)
        .write(true)
        .open(&lock)
        .unwrap();
    held.lock().unwrap();
    let log = events_path(&sb.project, SLUG);
    let before = std::fs::read(&log).unwrap();
    let out = std_cmd(&sb, &strs(&history_args(SLUG, "WP01", "waits")))
        .env("SPEC_KITTY_LOCK_TIMEOUT_MS", "300")
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = doc["data"]["message"].as_str().unwrap();
    assert!(message.contains("timed out"), "{message}");
    assert!(message.contains(&lock.display().to_string()), "{message}");
    assert!(message.contains("SPEC_KITTY_LOCK_TIMEOUT_MS"), "{message}");
    assert_eq!(std::fs::read(&log).unwrap(), before);
    drop(held);
    run_ok(&sb, &strs(&history_args(SLUG, "WP01", "now")));
}

#[test]
fn a_half_made_lane_worktree_is_repaired_on_the_next_claim() {
    let claim = [
        "orchestrator-api",
        "start-implementation",
        "--mission",
        SLUG,
        "--wp",
        "WP01",
        "--actor",
        "orch",
        "--policy",
        POLICY,
    ];
    // Where the claim puts the worktree (the same in every repository with this mission).
    let probe = Sandbox::new();
    write_mission(&probe.project, SLUG, 1, 1);
    run_ok(&probe, &strs(&finalize_args(SLUG)));
    let doc: Value = serde_json::from_slice(&run_ok(&probe, &claim).stdout).unwrap();
    let ws = PathBuf::from(doc["data"]["workspace_path"].as_str().unwrap());
    let rel = ws.strip_prefix(&probe.project).unwrap().to_path_buf();
    let branch = doc["data"]["lane_branch"].as_str().unwrap().to_owned();
    for case in ["empty directory", "initializing"] {
        let sb = Sandbox::new();
        write_mission(&sb.project, SLUG, 1, 1);
        run_ok(&sb, &strs(&finalize_args(SLUG)));
        let ws = sb.project.join(&rel);
        // What a `git worktree add` killed early (mkdir) or mid-checkout leaves.
        if case == "empty directory" {
            std::fs::create_dir_all(&ws).unwrap();
        } else {
            let p = ws.to_string_lossy().into_owned();
            super::support::git(&sb.project, &["worktree", "add", "-q", "-b", &branch, &p]);
            let admin = std::fs::read_to_string(ws.join(".git")).unwrap();
            let admin = PathBuf::from(admin.trim().strip_prefix("gitdir:").unwrap().trim());
            std::fs::write(admin.join("locked"), "initializing").unwrap();
            std::fs::write(admin.join("HEAD"), "ref: refs/heads/no-such-branch\n").unwrap();
        }
        let out = run_ok(&sb, &claim);
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["success"], true, "{case}: {doc}");
        let head = super::support::git(&ws, &["rev-parse", "--abbrev-ref", "HEAD"]);
        assert_eq!(head, branch, "{case}");
        let list = super::support::git(&sb.project, &["worktree", "list", "--porcelain"]);
        assert!(!list.contains("locked"), "{case}: {list}");
    }
}

/// finalize-tasks on 200 work packages, killed at `points` random moments (a fresh repository
/// each), then run again: the log and the queue agree.
fn finalize_kill_loop(points: usize) -> (usize, Count) {
    let mut rng = Rng::new();
    let mut total = Count::default();
    let mut killed = 0;
    let mut span = None;
    for _ in 0..points {
        let sb = Sandbox::new();
        write_mission(&sb.project, SLUG, 1, 200);
        let args = finalize_args(SLUG);
        let span = *span.get_or_insert_with(|| {
            let probe = Sandbox::new();
            write_mission(&probe.project, SLUG, 1, 200);
            duration_of(&probe, &strs(&args))
        });
        let delay = Duration::from_micros(rng.below(span.as_micros() as u64 + 1));
        if kill_after(std_cmd(&sb, &strs(&args)), delay) {
            killed += 1;
        }
        recover(&sb, &args);
        assert_no_temp_files_after(&sb.project, || {
            recover(&sb, &history_args(SLUG, "WP01", "swept"))
        });
        let c = count(&sb.project, &[SLUG], &queue_of(&sb), &[]);
        add(&mut total, c);
    }
    (killed, total)
}

/// Run `args` to completion after a kill: a torn tail the kill left is repaired first.
fn recover(sb: &Sandbox, args: &[String]) {
    let out = run(sb, &strs(args));
    if out.status.success() {
        return;
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("agent status repair"),
        "{args:?} failed after a kill: {text}"
    );
    run_ok(sb, &["agent", "status", "repair", "--mission", SLUG]);
    run_ok(sb, &strs(args));
}

fn add(total: &mut Count, c: Count) {
    total.expected += c.expected;
    total.delivered += c.delivered;
    total.lost += c.lost;
    total.duplicated += c.duplicated;
}

/// A burst of status changes (append-history, each its own process), killed at `points`
/// random moments, then one more change: the log and the queue agree.
fn burst_kill_loop(points: usize) -> (usize, Count) {
    let mut rng = Rng::new();
    let sb = Sandbox::new();
    write_mission(&sb.project, SLUG, 1, 4);
    run_ok(&sb, &strs(&finalize_args(SLUG)));
    let span = duration_of(&sb, &strs(&history_args(SLUG, "WP01", "probe")));
    let mut killed = 0;
    for i in 0..points {
        let wp = format!("WP{:02}", i % 4 + 1);
        let args = history_args(SLUG, &wp, &format!("burst {i}"));
        let delay = Duration::from_micros(rng.below(span.as_micros() as u64 + 1));
        if kill_after(std_cmd(&sb, &strs(&args)), delay) {
            killed += 1;
        }
        // Between kills, a change that completes (the burst goes on).
        if i % 2 == 1 {
            recover(&sb, &history_args(SLUG, &wp, &format!("done {i}")));
        }
    }
    recover(&sb, &history_args(SLUG, "WP01", "last"));
    assert_no_temp_files_after(&sb.project, || {
        recover(&sb, &history_args(SLUG, "WP02", "swept"))
    });
    (killed, count(&sb.project, &[SLUG], &queue_of(&sb), &[]))
}

/// `sync now` against the fake SaaS, killed at `points` random moments while unqueued lines
/// keep arriving; then drained: every log line is on the server exactly once.
fn sync_kill_loop(points: usize) -> (usize, Count) {
    let mut rng = Rng::new();
    let net = Net::new();
    let sb = &net.sb;
    write_mission(&sb.project, SLUG, 1, 20);
    let mut c = net.cmd();
    c.args(strs(&finalize_args(SLUG)));
    identity_cmd(&mut c).assert().success();
    let sync = || {
        let mut cmd = sb.std_bin();
        cmd.env("SPEC_KITTY_ENABLE_SAAS_SYNC", "1")
            .env("SPEC_KITTY_SYNC_TIMEOUT_MS", "700")
            .env("SPEC_KITTY_SYNC_BACKOFF_MS", "5")
            .env("SPEC_KITTY_SYNC_ATTEMPTS", "3")
            .args(["sync", "now", "--json"]);
        cmd
    };
    let started = Instant::now();
    let _ = sync().output().unwrap();
    let span = started.elapsed();
    let mut killed = 0;
    for i in 0..points {
        // Lines recorded while the queue is out of reach: only a relay queues them.
        for wp in ["WP01", "WP02", "WP03"] {
            let out = std_cmd(sb, &strs(&history_args(SLUG, wp, &format!("offline {i}"))))
                .env("SPEC_KITTY_HOME", "/dev/null/spec-kitty")
                .output()
                .unwrap();
            assert!(out.status.success());
        }
        let delay = Duration::from_micros(rng.below(span.as_micros() as u64 + 1));
        if kill_after(sync(), delay) {
            killed += 1;
        }
    }
    for _ in 0..5 {
        let (code, doc) = net.sync_now();
        if code == 0 && doc["summary"]["left"] == 0 {
            break;
        }
    }
    let stored = net.fake.stored();
    let queue = SpecKittyHome::at(sb.spec_kitty()).queue_path();
    let c = count(&sb.project, &[SLUG], &queue, &stored);
    assert!(net.queued().is_empty(), "still queued: {:?}", net.queued());
    for env in &stored {
        let id = env["event_id"].as_str().unwrap();
        assert_eq!(net.fake.store_count(id), 1, "{id}");
    }
    (killed, c)
}

fn identity_cmd(c: &mut Command) -> &mut Command {
    c.env("GIT_AUTHOR_NAME", "T")
        .env("GIT_AUTHOR_EMAIL", "t@example.test")
        .env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.test")
}

fn report(what: &str, points: usize, killed: usize, c: Count) {
    eprintln!(
        "{what}: {points} runs ({killed} killed mid-run), {} events in the log, {} queued or \
         acknowledged, {} lost, {} duplicated",
        c.expected, c.delivered, c.lost, c.duplicated
    );
    assert_eq!((c.lost, c.duplicated), (0, 0), "{what}: {c:?}");
    assert!(c.expected > 0);
}

#[test]
fn kill_9_during_finalize_tasks_loses_and_duplicates_nothing() {
    let (killed, c) = finalize_kill_loop(5);
    report("finalize-tasks (200 WPs)", 5, killed, c);
}

#[test]
#[ignore = "long target: 50 kill points (README, Crash loops)"]
fn kill_9_during_finalize_tasks_loses_and_duplicates_nothing_50_points() {
    let (killed, c) = finalize_kill_loop(50);
    report("finalize-tasks (200 WPs)", 50, killed, c);
}

#[test]
fn kill_9_during_a_burst_of_changes_loses_and_duplicates_nothing() {
    let (killed, c) = burst_kill_loop(5);
    report("burst of changes", 5, killed, c);
}

#[test]
#[ignore = "long target: 50 kill points (README, Crash loops)"]
fn kill_9_during_a_burst_of_changes_loses_and_duplicates_nothing_50_points() {
    let (killed, c) = burst_kill_loop(50);
    report("burst of changes", 50, killed, c);
}

#[test]
fn kill_9_during_sync_now_loses_and_duplicates_nothing() {
    let (killed, c) = sync_kill_loop(5);
    report("sync now", 5, killed, c);
}

#[test]
#[ignore = "long target: 50 kill points (README, Crash loops)"]
fn kill_9_during_sync_now_loses_and_duplicates_nothing_50_points() {
    let (killed, c) = sync_kill_loop(50);
    report("sync now", 50, killed, c);
}

/// Parallel commands on one repository: the same WP, different WPs, different missions. Each
/// succeeds or fails cleanly (one JSON line, a contract code), and afterwards the logs read and
/// agree with the queue.
#[test]
fn parallel_commands_on_one_repository_lose_nothing() {
    let sb = Sandbox::new();
    write_mission(&sb.project, "001-alpha", 1, 12);
    write_mission(&sb.project, "002-beta", 2, 12);
    // Different missions, finalized at once (their commits share the repository's index).
    let results: Vec<_> = std::thread::scope(|s| {
        ["001-alpha", "002-beta", "001-alpha", "002-beta"]
            .map(|m| {
                let sb = &sb;
                s.spawn(move || run(sb, &strs(&finalize_args(m))))
            })
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect()
    });
    for out in &results {
        assert!(
            out.status.success(),
            "parallel finalize failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The same WP and different WPs of both missions, at once.
    let mut calls = Vec::new();
    for i in 0..4 {
        calls.push(history_args("001-alpha", "WP01", &format!("same {i}")));
        calls.push(history_args(
            "001-alpha",
            &format!("WP{:02}", i + 2),
            "different",
        ));
        calls.push(history_args(
            "002-beta",
            &format!("WP{:02}", i + 1),
            "other mission",
        ));
    }
    let outs: Vec<_> = std::thread::scope(|s| {
        calls
            .iter()
            .map(|a| {
                let sb = &sb;
                s.spawn(move || run(sb, &strs(a)))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect()
    });
    let mut ok = 0;
    for out in &outs {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            stdout.matches('\n').count(),
            1,
            "not one JSON line: {stdout}"
        );
        let doc: Value = serde_json::from_str(&stdout).unwrap();
        if doc["success"] == true {
            ok += 1;
        } else {
            assert!(doc["error_code"].is_string(), "{doc}");
        }
    }
    assert_eq!(
        ok,
        outs.len(),
        "every parallel call succeeds (the locks are waited for)"
    );
    run_ok(&sb, &["status"]);
    let c = count(&sb.project, &["001-alpha", "002-beta"], &queue_of(&sb), &[]);
    eprintln!("parallel: {} calls, {c:?}", outs.len() + results.len());
    assert_eq!((c.lost, c.duplicated), (0, 0), "{c:?}");
    assert_eq!(c.expected, 24 * 2 + 12);
    let status = super::support::git(&sb.project, &["status", "--porcelain"]);
    assert!(!status.contains("index.lock"), "{status}");
}

/// A full disk (simulated with the file-size limit, `ulimit -f`, and SIGXFSZ ignored, so a write
/// that would grow the log past it fails with EFBIG as on ENOSPC): every write command fails,
/// changes no byte of the project, queues nothing the log does not hold, and once space is back
/// the next command sends everything exactly once.
#[test]
fn a_full_disk_fails_each_write_without_a_change_and_nothing_is_lost_after() {
    let sb = Sandbox::new();
    write_mission(&sb.project, SLUG, 1, 3);
    run_ok(&sb, &strs(&finalize_args(SLUG)));
    let log = events_path(&sb.project, SLUG);
    let before = super::support::snapshot(&sb.project);
    // The log cannot grow by one byte: the limit sits at or below its current size.
    let blocks = std::fs::metadata(&log).unwrap().len() / 512;
    let writes: Vec<Vec<String>> = vec![
        history_args(SLUG, "WP01", "no space"),
        [
            "orchestrator-api",
            "transition",
            "--mission",
            SLUG,
            "--wp",
            "WP02",
            "--actor",
            "orch",
            "--to",
            "claimed",
            "--policy",
            POLICY,
        ]
        .map(str::to_owned)
        .to_vec(),
        [
            "agent",
            "tasks",
            "mark-status",
            "T003",
            "--status",
            "done",
            "--mission",
            SLUG,
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for args in &writes {
        let inner = std_cmd(&sb, &strs(args));
        let mut full = StdCommand::new("sh");
        full.arg("-c")
            .arg(format!("trap '' XFSZ; ulimit -f {blocks}; exec \"$@\""))
            .arg("sh")
            .arg(inner.get_program())
            .args(inner.get_args())
            .current_dir(&sb.project);
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => full.env(k, v),
                None => full.env_remove(k),
            };
        }
        let out = full.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success(),
            "{args:?} succeeded on a full disk: {stdout}{stderr}"
        );
        assert!(
            format!("{stdout}{stderr}").contains("status.events.jsonl"),
            "{args:?}: the message does not name the log: {stdout}{stderr}"
        );
        assert_eq!(
            super::support::snapshot(&sb.project),
            before,
            "{args:?} changed the project on a full disk"
        );
        let c = count(&sb.project, &[SLUG], &queue_of(&sb), &[]);
        assert_eq!((c.lost, c.duplicated), (0, 0), "{args:?}: {c:?}");
    }
    // Space is back: each write goes through, and every line is queued exactly once (the
    // finalize's 6, the note and the claim; marking a subtask is no status event).
    for args in &writes {
        run_ok(&sb, &strs(args));
    }
    let c = count(&sb.project, &[SLUG], &queue_of(&sb), &[]);
    assert_eq!((c.expected, c.lost, c.duplicated), (8, 0, 0), "{c:?}");
}
