use super::*;
#[allow(unused_imports)]
use crate::contract::{ContractViolation, Surface, Timestamp, gate};
#[allow(unused_imports)]
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
#[allow(unused_imports)]
use serde_json::Value;
use serde_json::json;
#[allow(unused_imports)]
use std::path::{Path, PathBuf};

pub(super) fn opts(max: u64) -> QueueOptions {
    QueueOptions {
        max_queue_size: max,
        durability: Durability::Normal,
    }
}

pub(super) fn envelope(n: u32, event_type: &str) -> Value {
    json!({
        "event_id": format!("01JMBY7K8N3QRVX2DPFG5H{n:04}"), "event_type": event_type,
        "aggregate_id": "WP01", "aggregate_type": "WorkPackage", "schema_version": "3.0.0",
        "build_id": "b", "node_id": "n", "lamport_clock": n, "causation_id": null,
        "correlation_id": format!("01JMBY7K8N3QRVX2DPFG5H{n:04}"), "data_tier": 0,
        "timestamp": "2026-04-06T12:00:00.123456+00:00", "team_slug": "local",
        "project_uuid": "550e8400-e29b-41d4-a716-446655440000", "project_slug": "p",
        "git_branch": null, "head_commit_sha": null, "repo_slug": null,
        "payload": {"wp_id": "WP01", "title": "t", "dependencies": [], "mission_slug": "001-x"}
    })
}

fn dossier(n: u32, path: &str) -> Value {
    let mut e = envelope(n, "MissionDossierArtifactIndexed");
    e["payload"] = json!({"namespace": {"project_uuid": "u", "mission_slug": "001-x",
        "target_branch": "main", "mission_type": "software-dev", "manifest_version": "1"},
        "artifact_id": {"path": path, "artifact_class": "output", "mission_type": "software-dev"},
        "content_ref": {"algorithm": "sha256", "hash": "abc"},
        "indexed_at": "2026-04-06T12:00:00+00:00"});
    e
}

#[test]
fn adopting_rows_moves_them_once_and_keeps_rows_already_here() {
    let dir = tempfile::tempdir().unwrap();
    let mut legacy = Queue::open(dir.path().join("queue.db"), opts(100)).unwrap();
    let mut scoped = Queue::open(dir.path().join("queues/q.db"), opts(100)).unwrap();
    for n in 1..=3 {
        legacy.enqueue(&envelope(n, "WPCreated")).unwrap();
    }
    // As after a crash between the two commits: row 2 is already in both files.
    scoped.enqueue(&envelope(2, "WPCreated")).unwrap();
    let before: Vec<i64> = scoped.peek(10).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(scoped.adopt_rows_from(&mut legacy).unwrap(), 3);
    assert!(legacy.is_empty().unwrap());
    let ids: Vec<String> = scoped
        .peek(10)
        .unwrap()
        .into_iter()
        .map(|r| r.event_id)
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(
        scoped.peek(10).unwrap()[0].id,
        before[0],
        "the row already here is kept"
    );
    // Nothing left to move; moving a queue into itself does nothing.
    assert_eq!(scoped.adopt_rows_from(&mut legacy).unwrap(), 0);
    let mut same = Queue::open(dir.path().join("queues/q.db"), opts(100)).unwrap();
    assert_eq!(scoped.adopt_rows_from(&mut same).unwrap(), 0);
    assert_eq!(scoped.len().unwrap(), 3);
}

#[test]
fn thousands_separator() {
    assert_eq!(thousands(0), "0");
    assert_eq!(thousands(999), "999");
    assert_eq!(thousands(1000), "1,000");
    assert_eq!(thousands(100_000), "100,000");
    assert_eq!(thousands(1_234_567), "1,234,567");
}

#[test]
fn coalesce_keys_follow_upstream_head() {
    assert_eq!(
        coalesce_key(&dossier(1, "spec.md")).as_deref(),
        Some("MissionDossierArtifactIndexed|u|001-x|spec.md")
    );
    let mut snap = envelope(2, "MissionDossierSnapshotComputed");
    snap["payload"] = json!({"namespace": {"project_uuid": "u", "mission_slug": "001-x"}});
    assert_eq!(
        coalesce_key(&snap).as_deref(),
        Some("MissionDossierSnapshotComputed|u|001-x")
    );
    // Flat (pre-#1047) payloads use the fallbacks; project_uuid then comes from the envelope.
    let mut flat = envelope(3, "MissionDossierArtifactIndexed");
    flat["payload"] = json!({"mission_slug": "001-x", "artifact_key": "k"});
    assert_eq!(
        coalesce_key(&flat).as_deref(),
        Some("MissionDossierArtifactIndexed|550e8400-e29b-41d4-a716-446655440000|001-x|k")
    );
    assert_eq!(coalesce_key(&envelope(4, "WPCreated")), None);
}

#[test]
fn enqueue_peek_and_replace() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(dir.path().join("q.db"), opts(100)).unwrap();
    assert_eq!(q.schema_version().unwrap(), SCHEMA_VERSION);
    for n in 0..3 {
        assert_eq!(
            q.enqueue(&envelope(n, "WPCreated")).unwrap(),
            EnqueueOutcome::Inserted { evicted: 0 }
        );
    }
    // Same event_id again: replaced, not duplicated.
    q.enqueue(&envelope(1, "WPCreated")).unwrap();
    assert_eq!(q.len().unwrap(), 3);
    let rows = q.peek(10).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2].event_id, "01JMBY7K8N3QRVX2DPFG5H0001");
    let back: Value = serde_json::from_str(&rows[0].data).unwrap();
    assert_eq!(back, envelope(0, "WPCreated"));
    assert_eq!(q.integrity_check().unwrap(), "ok");
    assert_eq!(q.max_lamport().unwrap(), Some(2));
}

#[test]
fn dossier_events_coalesce_and_keep_retry_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(dir.path().join("q.db"), opts(100)).unwrap();
    q.enqueue(&dossier(1, "spec.md")).unwrap();
    q.conn
        .execute("UPDATE queue SET retry_count = 2", [])
        .unwrap();
    let out = q.enqueue(&dossier(2, "spec.md")).unwrap();
    assert_eq!(
        out,
        EnqueueOutcome::Coalesced {
            replaced_event_id: "01JMBY7K8N3QRVX2DPFG5H0001".into()
        }
    );
    q.enqueue(&dossier(3, "plan.md")).unwrap();
    let rows = q.peek(10).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].event_id, "01JMBY7K8N3QRVX2DPFG5H0002");
    assert_eq!(rows[0].retry_count, 2);
}

#[test]
fn cap_evicts_the_oldest_and_counts_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let mut q = Queue::open(&path, opts(3)).unwrap();
    for n in 0..5 {
        let out = q.enqueue(&envelope(n, "WPCreated")).unwrap();
        let want = if n < 3 { 0 } else { 1 };
        assert_eq!(out, EnqueueOutcome::Inserted { evicted: want }, "{n}");
    }
    let ids: Vec<String> = q
        .peek(10)
        .unwrap()
        .into_iter()
        .map(|r| r.event_id)
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids[0].ends_with("0002"));
    // Another connection adds rows behind our back: the cached count is refreshed.
    {
        let mut other = Queue::open(&path, opts(1000)).unwrap();
        for n in 10..14 {
            other.enqueue(&envelope(n, "WPCreated")).unwrap();
        }
    }
    let out = q.enqueue(&envelope(20, "WPCreated")).unwrap();
    assert_eq!(out, EnqueueOutcome::Inserted { evicted: 5 });
    assert_eq!(q.len().unwrap(), 3);
    // Sparse ids (rows deleted in the middle) still count exactly.
    let mut q = Queue::open(&path, opts(3)).unwrap();
    q.conn
        .execute("DELETE FROM queue WHERE event_id LIKE '%0013'", [])
        .unwrap();
    assert_eq!(q.len().unwrap(), 2);
    let out = q.enqueue(&envelope(21, "WPCreated")).unwrap();
    assert_eq!(out, EnqueueOutcome::Inserted { evicted: 0 });
    assert_eq!(q.len().unwrap(), 3);
}

#[test]
fn upstream_database_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    {
        // An older upstream queue: no coalesce_key column, no user_version.
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE queue (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE \
             NOT NULL, event_type TEXT NOT NULL, data TEXT NOT NULL, timestamp INTEGER NOT \
             NULL, retry_count INTEGER DEFAULT 0);
             CREATE INDEX idx_timestamp ON queue(timestamp);
             INSERT INTO queue (event_id, event_type, data, timestamp) VALUES ('e1', 'X', '{}', 1);",
        )
        .unwrap();
    }
    let q = Queue::open(&path, opts(10)).unwrap();
    assert_eq!(q.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(q.len().unwrap(), 1);
    let cols: Vec<String> = q
        .conn
        .prepare("SELECT name FROM pragma_table_info('queue')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(cols.contains(&"coalesce_key".to_owned()));
    let mode: String = q
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn newer_and_foreign_schemas_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let newer = dir.path().join("newer.db");
    Connection::open(&newer)
        .unwrap()
        .execute_batch("PRAGMA user_version = 9")
        .unwrap();
    assert!(matches!(
        Queue::open(&newer, opts(10)),
        Err(QueueError::NewerSchema { found: 9, .. })
    ));
    let foreign = dir.path().join("foreign.db");
    Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE queue (id INTEGER PRIMARY KEY, payload TEXT)")
        .unwrap();
    let err = Queue::open(&foreign, opts(10)).unwrap_err();
    assert!(matches!(err, QueueError::Incompatible { .. }), "{err}");
    let garbage = dir.path().join("garbage.db");
    fs::write(&garbage, b"this is not a database at all, not even close").unwrap();
    let err = Queue::open(&garbage, opts(10)).unwrap_err();
    assert!(matches!(err, QueueError::Corrupt { .. }), "{err}");
    assert_eq!(
        fs::read(&garbage).unwrap(),
        b"this is not a database at all, not even close"
    );
    assert!(!dir.path().join("garbage.db-wal").exists());
}

#[test]
fn a_damaged_schema_page_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    {
        let mut q = Queue::open(&path, opts(10)).unwrap();
        q.enqueue(&envelope(1, "WPCreated")).unwrap();
        // A rollback-journal file (the queue keeps its WAL file between processes; a
        // rollback-journal file has none).
        q.conn
            .file_control(
                Some(rusqlite::MAIN_DB),
                rusqlite::FileControl::PersistWal(&mut 0),
            )
            .unwrap();
        let mode: String = q
            .conn
            .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
    }
    let mut bytes = fs::read(&path).unwrap();
    // Page 1 after the 100-byte file header holds sqlite_master's b-tree.
    for b in &mut bytes[100..400] {
        *b = 0xA5;
    }
    fs::write(&path, &bytes).unwrap();
    let err = Queue::open(&path, opts(10)).unwrap_err();
    assert!(matches!(err, QueueError::Corrupt { .. }), "{err}");
    assert_eq!(fs::read(&path).unwrap(), bytes);
}

#[test]
fn quarantine_moves_failing_rows_and_drop_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(dir.path().join("q.db"), opts(100)).unwrap();
    q.enqueue(&envelope(1, "WPCreated")).unwrap();
    let mut bad = envelope(2, "WPCreated");
    bad["aggregate_type"] = json!("Feature");
    q.enqueue(&bad).unwrap();
    q.conn
        .execute(
            "INSERT INTO queue (event_id, event_type, data, timestamp) VALUES ('x', 'Y', 'nope', 5)",
            [],
        )
        .unwrap();
    let moved = q.quarantine_invalid().unwrap();
    assert_eq!(moved.len(), 2);
    // In replay order: the hand-written row is older.
    assert_eq!(moved[0].code, CODE_DATA_NOT_JSON);
    assert_eq!(moved[0].data, "nope");
    assert_eq!(moved[1].code, "CONTRACT_VALUE_NOT_ALLOWED");
    assert_eq!(moved[1].field, "aggregate_type");
    assert_eq!(moved[1].event_id, "01JMBY7K8N3QRVX2DPFG5H0002");
    assert_eq!(q.len().unwrap(), 1);
    assert!(q.quarantine_invalid().unwrap().is_empty());
    assert_eq!(q.list_quarantine().unwrap().len(), 2);
    let first = moved[0].id;
    let err = q
        .drop_quarantine(&QuarantineSelection::Ids(vec![first, 999]))
        .unwrap_err();
    assert!(matches!(err, QueueError::NotQuarantined { ref ids } if ids == &[999]));
    assert_eq!(q.list_quarantine().unwrap().len(), 2);
    assert_eq!(
        q.drop_quarantine(&QuarantineSelection::Ids(vec![first]))
            .unwrap(),
        1
    );
    assert_eq!(q.drop_quarantine(&QuarantineSelection::All).unwrap(), 1);
    assert_eq!(q.stats().unwrap().quarantined, 0);
}

#[test]
fn migration_steps_are_ordered_and_end_at_the_schema_version() {
    let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.to).collect();
    let expected: Vec<i64> = (1..=SCHEMA_VERSION).collect();
    assert_eq!(versions, expected);
    assert!(MIGRATIONS.iter().all(|m| !m.what.is_empty()));
}

#[test]
fn a_file_left_between_steps_is_continued_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    {
        // A process killed after step 1: upstream's table with a row, quarantine, version 1.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(QUEUE_TABLE).unwrap();
        conn.execute_batch(QUEUE_INDEXES).unwrap();
        conn.execute_batch(QUARANTINE_TABLE).unwrap();
        conn.execute(
            "INSERT INTO queue (event_id, event_type, data, timestamp) VALUES ('e1', 'X', '{\"lamport_clock\": 7}', 1)",
            [],
        )
        .unwrap();
        conn.execute_batch("PRAGMA user_version = 1").unwrap();
    }
    let queue = Queue::open(&path, QueueOptions::default()).unwrap();
    assert_eq!(queue.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(queue.len().unwrap(), 1);
    assert_eq!(
        queue.clock_floor().unwrap(),
        7,
        "step 2 seeds the floor from the rows"
    );
    assert!(queue.rejections().unwrap().is_empty(), "step 3 ran");
}

#[test]
fn step_four_creates_the_canonical_body_queue_and_leaves_a_pre_cutover_one_alone() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh.db");
    let q = Queue::open(&fresh, opts(10)).unwrap();
    let columns = body_queue_columns(&q.conn).unwrap();
    assert!(columns.iter().any(|c| c == "mission_slug"), "{columns:?}");
    assert!(columns.iter().any(|c| c == "mission_type"), "{columns:?}");
    assert!(!body_queue_is_legacy(&columns));
    drop(q);

    // A pre-cutover body queue (its columns named by the contract's feature-era keys).
    let legacy: Vec<&str> = crate::contract::rules::LEGACY_KEYS
        .iter()
        .copied()
        .filter(|k| k.ends_with("_slug") || k.starts_with("mission_"))
        .collect();
    assert_eq!(legacy.len(), 2, "{legacy:?}");
    let legacy_columns = legacy.join(" TEXT NOT NULL, ");
    let old = dir.path().join("old.db");
    {
        let conn = Connection::open(&old).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE body_upload_queue (id INTEGER PRIMARY KEY AUTOINCREMENT, \
             project_uuid TEXT NOT NULL, {legacy_columns} TEXT NOT NULL);
             INSERT INTO body_upload_queue VALUES (5, 'u', 's', 'k');"
        ))
        .unwrap();
    }
    let q = Queue::open(&old, opts(10)).unwrap();
    assert_eq!(q.schema_version().unwrap(), SCHEMA_VERSION);
    let columns = body_queue_columns(&q.conn).unwrap();
    assert!(body_queue_is_legacy(&columns), "{columns:?}");
    let kept: i64 = q
        .conn
        .query_row(
            "SELECT COUNT(*) FROM body_upload_queue WHERE id = 5",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, 1);
}
