//! `spec-kitty sync …` through the real binary: exit statuses, queue location, cap warnings,
//! clock recovery, corrupt files.

use std::fs;

use predicates::prelude::*;
use serde_json::Value;

use super::sync_support::Sandbox;

#[test]
fn status_of_a_queue_that_does_not_exist_creates_nothing() {
    let sb = Sandbox::new();
    sb.bin()
        .args(["sync", "status"])
        .assert()
        .success()
        .stdout(predicate::str::contains("(not created yet)"))
        .stdout(predicate::str::contains("Depth: 0 of 100,000"));
    let out = sb
        .bin()
        .args(["sync", "status", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["queue"]["exists"], false);
    assert!(!sb.queue_db().exists());
    sb.bin()
        .args(["sync", "quarantine", "drop", "--all"])
        .assert()
        .success();
    sb.bin()
        .args(["sync", "quarantine", "drop", "3"])
        .assert()
        .code(2);
    assert!(!sb.queue_db().exists());
}

#[test]
fn status_reports_depth_types_and_times() {
    let sb = Sandbox::new();
    sb.emit(5);
    sb.bin()
        .args(["sync", "status"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Depth: 5 of 100,000 (0 retried)"))
        .stdout(predicate::str::contains("MissionCreated   2"))
        .stdout(predicate::str::contains("Oldest: "))
        .stdout(predicate::str::contains("Quarantine: empty"));
}

#[test]
fn a_corrupt_queue_is_an_error_and_left_untouched() {
    let sb = Sandbox::new();
    let db = sb.queue_db();
    fs::create_dir_all(db.parent().unwrap()).unwrap();
    let garbage = b"definitely not an sqlite file, but long enough to have a header".to_vec();
    fs::write(&db, &garbage).unwrap();
    let mut commands: Vec<assert_cmd::Command> = [
        &["sync", "status"][..],
        &["sync", "status", "--json"],
        &["sync", "quarantine", "list"],
    ]
    .iter()
    .map(|args| {
        let mut cmd = sb.bin();
        cmd.args(*args);
        cmd
    })
    .collect();
    commands.push(sb.emit_cmd(1));
    for mut cmd in commands {
        cmd.assert()
            .code(1)
            .stderr(predicate::str::contains("it was left untouched"))
            .stderr(predicate::str::starts_with("error: "));
    }
    let out = sb
        .bin()
        .args(["sync", "status", "--json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let err: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(err["error"]["code"], "QUEUE_CORRUPT");
    assert_eq!(fs::read(&db).unwrap(), garbage);
    let names: Vec<String> = fs::read_dir(db.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("queue.db-")),
        "{names:?}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let sb = Sandbox::new();
    for args in [
        &["sync", "quarantine", "drop"][..],
        &["sync", "quarantine", "drop", "--all", "3"],
        &["sync", "quarantine", "drop", "x"],
        &["sync", "bogus"],
    ] {
        sb.bin().args(args).assert().code(2);
    }
}

#[test]
fn credentials_select_the_scoped_queue_and_the_team() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.spec_kitty()).unwrap();
    fs::write(
        sb.spec_kitty().join("credentials"),
        "[tokens]\naccess = \"a\"\n[user]\nusername = \"alice@example.com\"\nteam_slug = \"acme\"\n\
         [server]\nurl = \"https://sync.example.com/\"\n",
    )
    .unwrap();
    sb.emit(2);
    let scope = "https://sync.example.com|alice@example.com|acme";
    // python3: hashlib.sha256(scope.encode()).hexdigest()[:16]
    let db = sb.spec_kitty().join("queues/queue-b4287e3cc42612fa.db");
    assert!(db.is_file());
    assert!(!sb.queue_db().exists());
    assert_eq!(
        fs::read_to_string(sb.spec_kitty().join("active_queue_scope")).unwrap(),
        scope
    );
    let out = sb
        .bin()
        .args(["sync", "status", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["queue"]["path"], db.to_str().unwrap());
    assert_eq!(v["queue"]["depth"], 2);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let team: String = conn
        .query_row(
            "SELECT json_extract(data, '$.team_slug') FROM queue LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(team, "acme");
}

#[test]
fn the_cap_evicts_the_oldest_with_upstreams_warning() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.spec_kitty()).unwrap();
    fs::write(
        sb.spec_kitty().join("config.toml"),
        "[sync]\nmax_queue_size = 3\n",
    )
    .unwrap();
    let out = sb.emit_cmd(5).assert().success().get_output().clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let warning = "Offline queue at capacity (3 events). Evicted 1 oldest event(s) to make room.\n  \
                   Check auth and connectivity: spec-kitty sync status --check\n  \
                   Drain the queue manually:    spec-kitty sync now\n";
    assert_eq!(stderr.matches(warning).count(), 2, "{stderr}");
    let ids = super::sync_support::event_ids(std::str::from_utf8(&out.stdout).unwrap());
    let conn = rusqlite::Connection::open(sb.queue_db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT event_id FROM queue ORDER BY timestamp ASC, id ASC")
        .unwrap();
    let left: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(left, ids[2..]);
}

#[test]
fn a_corrupt_clock_is_recovered_with_one_warning() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.spec_kitty()).unwrap();
    let clock = sb.spec_kitty().join("clock.json");
    fs::write(&clock, "{\"value\": \"oops\"").unwrap();
    let out = sb.emit_cmd(3).assert().success().get_output().clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("Warning: Lamport clock "), "{stderr}");
    let v: Value = serde_json::from_str(&fs::read_to_string(&clock).unwrap()).unwrap();
    assert_eq!(v["value"], 3);
    // Next run: no warning, continues.
    sb.emit_cmd(1)
        .assert()
        .success()
        .stderr(predicate::str::is_empty());
    let v: Value = serde_json::from_str(&fs::read_to_string(&clock).unwrap()).unwrap();
    assert_eq!(v["value"], 4);
    // A clock lost while events are still queued restarts above them, not at 1.
    fs::write(&clock, "garbage").unwrap();
    sb.emit_cmd(1)
        .assert()
        .success()
        .stderr(predicate::str::starts_with("Warning: Lamport clock "));
    let v: Value = serde_json::from_str(&fs::read_to_string(&clock).unwrap()).unwrap();
    assert_eq!(v["value"], 5);
    // Deleted while events are queued: one warning, no step back.
    fs::remove_file(&clock).unwrap();
    let out = sb
        .emit_cmd(1)
        .assert()
        .success()
        .get_output()
        .stderr
        .clone();
    let stderr = String::from_utf8(out).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("is missing while events are queued"),
        "{stderr}"
    );
    let v: Value = serde_json::from_str(&fs::read_to_string(&clock).unwrap()).unwrap();
    assert_eq!(v["value"], 6);
}
