//! The queue file shared with upstream's Python CLI: python3 (standard library `sqlite3` only,
//! upstream's statements) reads what we wrote, and we read — and quarantine — what it wrote.

use serde_json::Value;
use spec_kitty::contract::rules::{self, Rule, Surface};

use super::sync_support::{Sandbox, python};

/// Upstream v3.1.0 `OfflineQueue._init_db` + `drain_queue` + `queue_event`, verbatim statements.
const UPSTREAM_READ_AND_WRITE: &str = r#"
import json, sqlite3, sys, time
db = sys.argv[1]
conn = sqlite3.connect(db)
conn.execute("""
    CREATE TABLE IF NOT EXISTS queue (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT UNIQUE NOT NULL,
        event_type TEXT NOT NULL,
        data TEXT NOT NULL,
        timestamp INTEGER NOT NULL,
        retry_count INTEGER DEFAULT 0,
        coalesce_key TEXT
    )
""")
conn.execute("CREATE INDEX IF NOT EXISTS idx_timestamp ON queue(timestamp)")
conn.execute("CREATE INDEX IF NOT EXISTS idx_retry ON queue(retry_count)")
conn.commit()
columns = {row[1] for row in conn.execute("PRAGMA table_info(queue)")}
assert "coalesce_key" in columns
conn.execute("CREATE INDEX IF NOT EXISTS idx_coalesce_key ON queue(coalesce_key)")
conn.commit()
events = [json.loads(row[0]) for row in conn.execute(
    "SELECT data FROM queue ORDER BY timestamp ASC, id ASC LIMIT ?", (1000,))]
version = conn.execute("PRAGMA user_version").fetchone()[0]
mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
# upstream's queue_event of a copy of the first event under a new id
copy = dict(events[0]); copy["event_id"] = "01JMBY7K8N3QRVX2DPFG5HWT4Z"
conn.execute(
    "INSERT OR REPLACE INTO queue (event_id, event_type, data, timestamp, coalesce_key) "
    "VALUES (?, ?, ?, ?, ?)",
    (copy["event_id"], copy["event_type"], json.dumps(copy), int(time.time()), None))
conn.commit()
print(json.dumps({"ids": [e["event_id"] for e in events], "user_version": version,
                  "journal_mode": mode, "events": events}))
"#;

#[test]
fn python_reads_a_queue_written_by_this_cli_and_we_read_its_writes() {
    let sb = Sandbox::new();
    let ids = sb.emit(6);
    assert_eq!(ids.len(), 6);
    let db = sb.queue_db();
    let out = python(UPSTREAM_READ_AND_WRITE, &[db.to_str().unwrap()]);
    let report: Value = serde_json::from_str(&out).unwrap();
    let read: Vec<&str> = report["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(read, ids, "python replays our events in emit order");
    assert_eq!(report["user_version"], spec_kitty::queue::SCHEMA_VERSION);
    assert_eq!(report["journal_mode"], "wal");
    for e in report["events"].as_array().unwrap() {
        assert_eq!(e["schema_version"], "3.0.0");
        assert!(e["build_id"].as_str().is_some_and(|b| !b.is_empty()));
    }
    // Python's insert (json.dumps formatting) is read back by us and passes the re-gate.
    let out = sb
        .bin()
        .args(["sync", "status", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let status: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(status["queue"]["depth"], 7, "{status}");
    assert_eq!(status["quarantine"]["count"], 0);
    // And we can keep emitting into the file python touched.
    assert_eq!(sb.emit(1).len(), 1);
}

/// A queue created by upstream (its DDL, `json.dumps` rows, no `user_version`), including rows
/// a feature-era CLI wrote.
const UPSTREAM_CREATES: &str = r#"
import json, sqlite3, sys
db, legacy_key, legacy_aggregate = sys.argv[1], sys.argv[2], sys.argv[3]
conn = sqlite3.connect(db)
# an older upstream: no coalesce_key column yet
conn.execute("""CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE NOT NULL,
    event_type TEXT NOT NULL, data TEXT NOT NULL, timestamp INTEGER NOT NULL,
    retry_count INTEGER DEFAULT 0)""")
conn.execute("CREATE INDEX IF NOT EXISTS idx_timestamp ON queue(timestamp)")
conn.execute("CREATE INDEX IF NOT EXISTS idx_retry ON queue(retry_count)")
def envelope(n, **extra):
    e = {"event_id": "01JMBY7K8N3QRVX2DPFG5HWT%02d" % n, "event_type": "WPCreated",
         "aggregate_id": "WP01", "aggregate_type": "WorkPackage", "schema_version": "3.0.0",
         "build_id": "b-1", "payload": {"wp_id": "WP01", "title": "t", "dependencies": [],
         "mission_slug": "001-demo"}, "node_id": "abcdefabcdef", "lamport_clock": n,
         "causation_id": None, "timestamp": "2026-04-06T12:00:00.123456+00:00",
         "team_slug": "local", "project_uuid": "550e8400-e29b-41d4-a716-446655440000",
         "project_slug": "demo", "git_branch": "main", "head_commit_sha": None, "repo_slug": None}
    e["correlation_id"] = e["event_id"]  # required by the 3.0.0 Event
    e.update(extra)
    return e
rows = [envelope(10)]
legacy = envelope(11); legacy["payload"][legacy_key] = "001-demo"; rows.append(legacy)
rows.append(envelope(12, aggregate_type=legacy_aggregate))
for i, e in enumerate(rows):
    conn.execute("INSERT INTO queue (event_id, event_type, data, timestamp, retry_count) "
                 "VALUES (?, ?, ?, ?, ?)", (e["event_id"], e["event_type"], json.dumps(e), 1000 + i, i))
conn.commit()
"#;

const UPSTREAM_DRAINS: &str = r#"
import json, sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
ids = [json.loads(r[0])["event_id"] for r in conn.execute(
    "SELECT data FROM queue ORDER BY timestamp ASC, id ASC")]
tables = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"))
print(json.dumps({"ids": ids, "tables": tables,
                  "user_version": conn.execute("PRAGMA user_version").fetchone()[0]}))
"#;

/// The aggregate type value the envelope rules forbid (from the generated rule table).
fn forbidden_aggregate() -> &'static str {
    Surface::Envelope
        .rules()
        .iter()
        .find_map(|r| match r {
            Rule::ForbiddenValue {
                field: "aggregate_type",
                values,
            } => values.first().copied(),
            _ => None,
        })
        .expect("the envelope rules forbid an aggregate type")
}

#[test]
fn a_queue_written_by_python_is_upgraded_read_and_its_legacy_rows_quarantined() {
    let sb = Sandbox::new();
    let db = sb.queue_db();
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let legacy_key = rules::LEGACY_KEYS[1];
    python(
        UPSTREAM_CREATES,
        &[db.to_str().unwrap(), legacy_key, forbidden_aggregate()],
    );

    let out = sb
        .bin()
        .args(["sync", "status", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let status: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        status["queue"]["schema_version"],
        spec_kitty::queue::SCHEMA_VERSION
    );
    assert_eq!(status["queue"]["depth"], 1, "{status}");
    assert_eq!(
        status["queue"]["oldest_enqueued_at"],
        "1970-01-01T00:16:40.000000+00:00"
    );
    let q = &status["quarantine"];
    assert_eq!(
        (q["count"].as_u64(), q["newly_quarantined"].as_u64()),
        (Some(2), Some(2))
    );
    let rows = q["rows"].as_array().unwrap();
    assert_eq!(rows[0]["event_id"], "01JMBY7K8N3QRVX2DPFG5HWT11");
    assert_eq!(rows[0]["code"], "CONTRACT_LEGACY_FIELD");
    // The legacy field is named by its mission-era counterpart (no feature-era name in the
    // output; `sync quarantine list --raw` shows the row verbatim).
    let field = rows[0]["field"].as_str().unwrap();
    assert_eq!(
        field,
        spec_kitty::upgrade::redact::redact(&format!("payload.{legacy_key}"))
    );
    assert!(field.starts_with("payload.<legacy ") && !field.contains(legacy_key));
    assert_eq!(rows[0]["retry_count"], 1);
    assert_eq!(rows[1]["code"], "CONTRACT_VALUE_NOT_ALLOWED");
    assert_eq!(rows[1]["field"], "aggregate_type");

    // Text status shows the reasons too; a second pass quarantines nothing new.
    sb.bin()
        .args(["sync", "status"])
        .assert()
        .success()
        .stdout(predicates::str::contains("Quarantine: 2 row(s), 0 new"))
        .stdout(predicates::str::contains("CONTRACT_LEGACY_FIELD"));

    // Upstream still reads the file: only the canonical row is left to send.
    let drained: Value =
        serde_json::from_str(&python(UPSTREAM_DRAINS, &[db.to_str().unwrap()])).unwrap();
    assert_eq!(
        drained["ids"],
        serde_json::json!(["01JMBY7K8N3QRVX2DPFG5HWT10"])
    );
    assert_eq!(drained["user_version"], spec_kitty::queue::SCHEMA_VERSION);
    assert!(
        drained["tables"]
            .as_array()
            .unwrap()
            .contains(&"quarantine".into())
    );

    // The quarantine keeps the data verbatim until dropped on purpose (`--raw` shows it; without
    // it a legacy row's data is summarised).
    let plain: Value = serde_json::from_slice(
        &sb.bin()
            .args(["sync", "quarantine", "list", "--json"])
            .assert()
            .success()
            .get_output()
            .stdout,
    )
    .unwrap();
    assert!(plain["rows"][0]["data"].is_null(), "{plain}");
    assert!(!plain.to_string().contains(legacy_key), "{plain}");
    let out = sb
        .bin()
        .args(["sync", "quarantine", "list", "--json", "--raw"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let list: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(list["count"], 2);
    let data: Value = serde_json::from_str(list["rows"][0]["data"].as_str().unwrap()).unwrap();
    assert_eq!(data["payload"][legacy_key], "001-demo");
    let first = list["rows"][0]["id"].as_i64().unwrap();

    let out = sb
        .bin()
        .args(["sync", "quarantine", "drop", "999", "--json"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no quarantined row with id 999"))
        .get_output()
        .stdout
        .clone();
    let err: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(err["error"]["code"], "NOT_QUARANTINED");
    let out = sb
        .bin()
        .args(["sync", "quarantine", "drop", &first.to_string(), "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let dropped: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(dropped["dropped"], 1);
    sb.bin()
        .args(["sync", "quarantine", "drop", "--all"])
        .assert()
        .success()
        .stdout(predicates::str::contains("Dropped 1 quarantined row(s)"));
    sb.bin()
        .args(["sync", "quarantine", "list"])
        .assert()
        .success()
        .stdout(predicates::str::contains("No quarantined rows"));
}

/// Upstream v3.1.0's writes on a queue this CLI created: `queue_event` (its capacity check and
/// eviction, `INSERT OR REPLACE` of a new and of an already queued `event_id`),
/// `process_batch_results` (delete acknowledged, bump rejected) and `clear()`, each committed,
/// with the row count and our stored counter printed after each one.
const UPSTREAM_WRITES: &str = r#"
import json, sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1])
steps = []
def step(name):
    conn.commit()
    steps.append([name, conn.execute("SELECT COUNT(*) FROM queue").fetchone()[0],
                  conn.execute("SELECT n FROM queue_rows WHERE id = 1").fetchone()[0]])
first = json.loads(conn.execute("SELECT data FROM queue ORDER BY id LIMIT 1").fetchone()[0])
def queue_event(e, max_size):
    count = conn.execute("SELECT COUNT(*) FROM queue").fetchone()[0]
    if count >= max_size:
        overflow = count - max_size + 1
        conn.execute("DELETE FROM queue WHERE id IN (SELECT id FROM queue ORDER BY timestamp ASC, id ASC LIMIT ?)", (overflow,))
    conn.execute("INSERT OR REPLACE INTO queue (event_id, event_type, data, timestamp, coalesce_key) VALUES (?, ?, ?, ?, ?)",
                 (e["event_id"], e["event_type"], json.dumps(e), int(time.time()), None))
new = dict(first); new["event_id"] = "01JMBY7K8N3QRVX2DPFG5HWT4Z"
queue_event(new, 100000); step("insert")
queue_event(dict(first), 100000); step("replace")
queue_event(dict(new, event_id="01JMBY7K8N3QRVX2DPFG5HWT5Z"), 4); step("evict")
ids = [r[0] for r in conn.execute("SELECT event_id FROM queue ORDER BY id")]
conn.execute("DELETE FROM queue WHERE event_id IN (?)", (ids[0],))
conn.execute("UPDATE queue SET retry_count = retry_count + 1 WHERE event_id IN (?)", (ids[1],))
step("results")
conn.execute("DELETE FROM queue"); step("clear")
print(json.dumps(steps))
"#;

#[test]
fn python_writes_keep_the_stored_row_count_exact() {
    let sb = Sandbox::new();
    assert_eq!(sb.emit(6).len(), 6);
    let db = sb.queue_db();
    let out = python(UPSTREAM_WRITES, &[db.to_str().unwrap()]);
    let steps: Vec<(String, i64, i64)> = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, ["insert", "replace", "evict", "results", "clear"]);
    for (name, rows, counter) in &steps {
        assert_eq!(rows, counter, "after python's {name}: {steps:?}");
    }
    assert_eq!(
        steps.iter().map(|s| s.1).collect::<Vec<_>>(),
        [7, 7, 4, 3, 0]
    );
    // And we keep counting on top of python's writes.
    assert_eq!(sb.emit(2).len(), 2);
    let out = python(
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); print(c.execute('SELECT COUNT(*), (SELECT n FROM queue_rows) FROM queue').fetchone())",
        &[db.to_str().unwrap()],
    );
    assert_eq!(out.trim(), "(2, 2)");
}
