//! Schema version 3 and the sender's operations: paging, batch results, rejections,
//! quarantine by the sender and quarantine retry, sync facts.
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

use super::tests::opts;

/// A gate-valid WPCreated envelope ([`super::tests::envelope`]).
pub(super) fn envelope(n: u32) -> Value {
    super::tests::envelope(n, "WPCreated")
}

/// The feature-era key used here (named through the contract, never spelled out in src/).
pub(super) fn legacy_key() -> &'static str {
    crate::contract::rules::LEGACY_KEYS[0]
}

/// A feature-era envelope: a legacy key in the payload.
pub(super) fn feature_era(n: u32) -> Value {
    let mut e = envelope(n);
    e["payload"][legacy_key()] = json!("001-x");
    e
}

/// An envelope's JSON without the legacy key (if it has it): gate-valid again.
pub(super) fn repaired(data: &str) -> String {
    let mut doc: Value = serde_json::from_str(data).unwrap();
    doc["payload"].as_object_mut().unwrap().remove(legacy_key());
    serde_json::to_string(&doc).unwrap()
}

pub(super) fn dossier(n: u32, path: &str) -> Value {
    let mut e = envelope(n);
    e["event_type"] = json!("MissionDossierArtifactIndexed");
    e["payload"] = json!({"namespace": {"project_uuid": "u", "mission_slug": "001-x",
        "target_branch": "main", "mission_type": "software-dev", "manifest_version": "1"},
        "artifact_id": {"path": path, "artifact_class": "output", "mission_type": "software-dev"},
        "content_ref": {"algorithm": "sha256", "hash": "abc"},
        "indexed_at": "2026-04-06T12:00:00+00:00"});
    e
}

pub(super) fn eid(n: u32) -> String {
    format!("01JMBY7K8N3QRVX2DPFG5H{n:04}")
}

pub(super) fn tables(q: &Queue) -> Vec<String> {
    q.conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

pub(super) fn rejection_rows(q: &Queue) -> i64 {
    q.conn
        .query_row("SELECT COUNT(*) FROM rejection", [], |r| r.get(0))
        .unwrap()
}

pub(super) fn retry_count(q: &Queue, event_id: &str) -> i64 {
    q.conn
        .query_row(
            "SELECT retry_count FROM queue WHERE event_id = ?1",
            [event_id],
            |r| r.get(0),
        )
        .unwrap()
}

pub(super) fn reject<'a>(event_id: &'a str, reason: &'a str, category: &'a str) -> Ack<'a> {
    Ack::Rejected {
        event_id,
        reason,
        category,
    }
}

#[test]
fn a_version_2_file_upgrades_in_place_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let queue_sql;
    {
        // Exactly what the previous build (schema 2) wrote.
        let c = Connection::open(&path).unwrap();
        c.execute_batch(QUEUE_TABLE).unwrap();
        c.execute_batch(QUEUE_INDEXES).unwrap();
        c.execute_batch(QUARANTINE_TABLE).unwrap();
        c.execute_batch(CLOCK_FLOOR_TABLE).unwrap();
        c.execute_batch(
            "INSERT INTO queue (event_id, event_type, data, timestamp, retry_count) VALUES
                ('e1', 'WPCreated', '{\"lamport_clock\": 7}', 10, 2),
                ('e2', 'WPCreated', '{}', 11, 0);
             INSERT INTO quarantine (queue_id, event_id, event_type, data, timestamp, code,
                surface, field, reason, quarantined_at)
                VALUES (9, 'e9', 'X', 'nope', 5, 'C', 'envelope', '', 'r', 't');
             UPDATE clock_floor SET value = 41;
             PRAGMA user_version = 2;",
        )
        .unwrap();
        queue_sql = c
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'queue'",
                [],
                |r| r.get::<_, String>(0),
            )
            .unwrap();
    }
    let mut q = Queue::open(&path, opts(100)).unwrap();
    assert_eq!(q.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 6);
    let t = tables(&q);
    assert!(t.contains(&"rejection".to_owned()), "{t:?}");
    assert!(t.contains(&"sync_meta".to_owned()), "{t:?}");
    let rows = q.peek(10).unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (r.event_id.as_str(), r.retry_count))
            .collect::<Vec<_>>(),
        [("e1", 2), ("e2", 0)]
    );
    assert_eq!(q.list_quarantine().unwrap().len(), 1);
    assert_eq!(q.clock_floor().unwrap(), 41);
    // Upstream's table is untouched.
    let after: String = q
        .conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'queue'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(after, queue_sql);
    // The new tables work, and the file reopens at 3 without another upgrade.
    q.apply_results(&[reject("e2", "no", "unknown")]).unwrap();
    q.set_meta("last_server", "https://x").unwrap();
    drop(q);
    let q = Queue::open(&path, opts(100)).unwrap();
    assert_eq!(q.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(q.rejections().unwrap().len(), 1);
    assert_eq!(q.meta("last_server").unwrap().as_deref(), Some("https://x"));
}

#[test]
fn fresh_and_upstream_files_reach_the_current_version_and_a_newer_one_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = Queue::open(dir.path().join("fresh.db"), opts(10)).unwrap();
    assert_eq!(fresh.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(
        tables(&fresh),
        [
            "body_upload_queue",
            "clock_floor",
            "quarantine",
            "queue",
            "queue_rows",
            "rejection",
            "sqlite_sequence",
            "sync_meta"
        ]
    );

    let upstream = dir.path().join("upstream.db");
    {
        let c = Connection::open(&upstream).unwrap();
        c.execute_batch(
            "CREATE TABLE queue (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE \
             NOT NULL, event_type TEXT NOT NULL, data TEXT NOT NULL, timestamp INTEGER NOT \
             NULL, retry_count INTEGER DEFAULT 0, coalesce_key TEXT);
             INSERT INTO queue (event_id, event_type, data, timestamp) VALUES ('u1', 'X', '{}', 1);",
        )
        .unwrap();
    }
    let q = Queue::open(&upstream, opts(10)).unwrap();
    assert_eq!(q.schema_version().unwrap(), SCHEMA_VERSION);
    assert!(tables(&q).contains(&"rejection".to_owned()));
    assert_eq!(q.len().unwrap(), 1);
    drop(q);

    let newer = dir.path().join("newer.db");
    Connection::open(&newer)
        .unwrap()
        .execute_batch("CREATE TABLE keep (x); PRAGMA user_version = 7")
        .unwrap();
    let before = fs::read(&newer).unwrap();
    assert!(matches!(
        Queue::open(&newer, opts(10)),
        Err(QueueError::NewerSchema {
            found: 7,
            supported: 6,
            ..
        })
    ));
    assert!(fs::read(&newer).unwrap() == before, "the file was modified");
    assert!(!dir.path().join("newer.db-wal").exists());
}

/// 2,500 rows over 13 distinct timestamps in runs of 30 consecutive ids that wrap around
/// (id order is not timestamp order), so page boundaries fall inside runs of equal
/// timestamps.
fn fill_for_paging(q: &Queue, rows: i64) {
    let tx = q.conn.unchecked_transaction().unwrap();
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO queue (event_id, event_type, data, timestamp) \
                 VALUES (?1, 'X', '{}', ?2)",
            )
            .unwrap();
        for n in 0..rows {
            ins.execute(params![format!("e{n}"), 1_000 + (n / 30) % 13])
                .unwrap();
        }
    }
    tx.commit().unwrap();
}

#[test]
fn page_after_visits_every_row_once_in_replay_order() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("q.db"), opts(100_000)).unwrap();
    fill_for_paging(&q, 2_500);
    let mut seen: Vec<(i64, i64)> = Vec::new();
    let mut pages = Vec::new();
    let mut cursor = None;
    // Bounded, so a cursor that does not advance fails instead of hanging.
    for _ in 0..10 {
        let page = q.page_after(cursor, 1_000).unwrap();
        let Some(last) = page.last() else { break };
        cursor = Some(Cursor::from(last));
        pages.push(page.len());
        seen.extend(page.iter().map(|r| (r.timestamp, r.id)));
    }
    assert_eq!(pages, [1_000, 1_000, 500]);
    let mut want: Vec<(i64, i64)> = q
        .conn
        .prepare("SELECT timestamp, id FROM queue")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    want.sort_unstable();
    assert_eq!(seen, want);
    // The boundaries really fall inside runs of equal timestamps.
    assert_eq!(seen[999].0, seen[1_000].0);
    assert_eq!(seen[1_999].0, seen[2_000].0);
    // The cursor order is the replay order.
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(q.peek(3).unwrap(), q.page_after(None, 3).unwrap());
    let last = *seen.last().unwrap();
    assert!(
        q.page_after(
            Some(Cursor {
                timestamp: last.0,
                id: last.1
            }),
            10
        )
        .unwrap()
        .is_empty()
    );
}

#[test]
fn queries_use_the_indexes_they_are_meant_to() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("q.db"), opts(100)).unwrap();
    fill_for_paging(&q, 50);
    // Read the plans of the very statements page_after prepares (they are cached by text).
    q.page_after(None, 1).unwrap();
    q.page_after(
        Some(Cursor {
            timestamp: 0,
            id: 0,
        }),
        1,
    )
    .unwrap();
    let plan = |sql: &str| -> String {
        q.conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map([1_000, 3, 10], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let after = plan(&format!(
        "SELECT {QUEUED_COLUMNS} FROM queue WHERE timestamp = ?1 AND id > ?2 \
         UNION ALL \
         SELECT {QUEUED_COLUMNS} FROM queue WHERE timestamp > ?1 \
         ORDER BY 5 ASC, 1 ASC LIMIT ?3"
    ));
    assert!(!after.contains("TEMP B-TREE"), "{after}");
    assert!(
        after.contains("idx_timestamp (timestamp=? AND rowid>?)"),
        "{after}"
    );
    assert!(after.contains("idx_timestamp (timestamp>?)"), "{after}");
    let first = q
        .conn
        .prepare(&format!(
            "EXPLAIN QUERY PLAN SELECT {QUEUED_COLUMNS} FROM queue \
             ORDER BY timestamp ASC, id ASC LIMIT ?1"
        ))
        .unwrap()
        .query_map([10], |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>()
        .join(" | ");
    assert!(!first.contains("TEMP B-TREE"), "{first}");
    assert!(first.contains("idx_timestamp"), "{first}");
    // The rejection queries walk `rejection` and probe the queue, not the reverse.
    for sql in [REJECTED_COUNT, REJECTIONS] {
        let plan: Vec<String> = q
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(plan[0].starts_with("SCAN r"), "{plan:?}");
        assert!(
            plan.iter()
                .any(|l| l.starts_with("SEARCH q") && l.contains("(event_id=?)")),
            "{plan:?}"
        );
    }
}

#[test]
fn apply_results_deletes_bumps_records_and_counts_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(dir.path().join("q.db"), opts(4)).unwrap();
    for n in 0..4 {
        q.enqueue(&envelope(n)).unwrap();
    }
    let applied = q
        .apply_results(&[
            Ack::Acknowledged { event_id: &eid(0) },
            reject(&eid(1), "field 'x' is invalid", "schema_mismatch"),
            Ack::Acknowledged { event_id: "gone" },
            reject("also-gone", "?", "unknown"),
            Ack::Acknowledged { event_id: &eid(2) },
            Ack::Acknowledged { event_id: &eid(2) },
        ])
        .unwrap();
    assert_eq!(
        applied,
        AppliedResults {
            removed: 2,
            rejected: 1,
            unknown: 3
        }
    );
    assert_eq!(q.len().unwrap(), 2);
    assert_eq!(retry_count(&q, &eid(1)), 1);
    assert_eq!(retry_count(&q, &eid(3)), 0);
    // A refusal of an event that is not queued records nothing.
    assert_eq!(rejection_rows(&q), 1);
    let first = q.rejections().unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].event_id, eid(1));
    assert_eq!(first[0].event_type, "WPCreated");
    assert_eq!(first[0].reason, "field 'x' is invalid");
    assert_eq!(first[0].category, "schema_mismatch");
    assert_eq!((first[0].rejections, first[0].retry_count), (1, 1));
    assert!(first[0].rejected_at.ends_with("+00:00"), "{first:?}");

    // Refused again: counts go up, the latest reason wins.
    let applied = q
        .apply_results(&[reject(&eid(1), "token expired", "auth_expired")])
        .unwrap();
    assert_eq!(applied.rejected, 1);
    let again = q.rejections().unwrap();
    assert_eq!(again[0].reason, "token expired");
    assert_eq!(again[0].category, "auth_expired");
    assert_eq!((again[0].rejections, again[0].retry_count), (2, 2));
    assert!(again[0].rejected_at >= first[0].rejected_at);
    let stats = q.stats().unwrap();
    assert_eq!((stats.depth, stats.retried, stats.rejected), (2, 1, 1));

    // Acknowledged at last: the row and its rejection go.
    let applied = q
        .apply_results(&[Ack::Acknowledged { event_id: &eid(1) }])
        .unwrap();
    assert_eq!(applied.removed, 1);
    assert_eq!(rejection_rows(&q), 0);
    assert_eq!(q.stats().unwrap().rejected, 0);

    // The cached row count followed the deletions: one row left, three more fit under the
    // cap of 4 (a stale count of 4 would evict at once).
    for n in 10..13 {
        assert_eq!(
            q.enqueue(&envelope(n)).unwrap(),
            EnqueueOutcome::Inserted { evicted: 0 },
            "{n}"
        );
    }
    assert_eq!(
        q.enqueue(&envelope(13)).unwrap(),
        EnqueueOutcome::Inserted { evicted: 1 }
    );
    assert!(q.apply_results(&[]).unwrap() == AppliedResults::default());
}

#[test]
fn apply_results_keeps_the_stored_row_count_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(dir.path().join("q.db"), opts(4)).unwrap();
    for n in 0..5 {
        q.enqueue(&envelope(n)).unwrap();
    }
    // The eviction left an exact count (4).
    assert_eq!(q.stored_row_count(), Some(4));
    let applied = q
        .apply_results(&[
            Ack::Acknowledged { event_id: &eid(1) },
            Ack::Acknowledged { event_id: &eid(2) },
        ])
        .unwrap();
    assert_eq!(applied.removed, 2);
    assert_eq!(q.stored_row_count(), Some(2));
    // Two more fit under the cap; a stale count of 4 would evict at once.
    for n in 10..12 {
        assert_eq!(
            q.enqueue(&envelope(n)).unwrap(),
            EnqueueOutcome::Inserted { evicted: 0 },
            "{n}"
        );
    }
    assert_eq!(
        q.enqueue(&envelope(12)).unwrap(),
        EnqueueOutcome::Inserted { evicted: 1 }
    );
    assert_eq!(q.len().unwrap(), 4);
}

#[test]
fn apply_results_is_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(dir.path().join("q.db"), opts(100)).unwrap();
    for n in 0..3 {
        q.enqueue(&envelope(n)).unwrap();
    }
    // The third result fails inside SQLite, after the first two were applied.
    q.conn
        .execute_batch(&format!(
            "CREATE TEMP TRIGGER boom BEFORE UPDATE OF retry_count ON queue \
             WHEN new.event_id = '{}' BEGIN SELECT RAISE(ABORT, 'boom'); END;",
            eid(2)
        ))
        .unwrap();
    let err = q
        .apply_results(&[
            Ack::Acknowledged { event_id: &eid(0) },
            reject(&eid(1), "r", "unknown"),
            reject(&eid(2), "r", "unknown"),
        ])
        .unwrap_err();
    assert!(err.to_string().contains("boom"), "{err}");
    assert_eq!(q.len().unwrap(), 3);
    assert_eq!(retry_count(&q, &eid(1)), 0);
    assert_eq!(rejection_rows(&q), 0);
    // The connection is usable afterwards and the count cache was not corrupted.
    q.conn.execute_batch("DROP TRIGGER boom").unwrap();
    let applied = q
        .apply_results(&[Ack::Acknowledged { event_id: &eid(0) }])
        .unwrap();
    assert_eq!(applied.removed, 1);
    assert_eq!(q.len().unwrap(), 2);
}

#[test]
fn rejections_follow_their_queue_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let mut q = Queue::open(&path, opts(3)).unwrap();
    q.enqueue(&envelope(1)).unwrap();
    q.enqueue(&dossier(2, "spec.md")).unwrap();
    q.enqueue(&envelope(3)).unwrap();
    let all = [eid(1), eid(2), eid(3)];
    let refuse = |q: &mut Queue, ids: &[String]| {
        let acks: Vec<Ack<'_>> = ids.iter().map(|e| reject(e, "r", "unknown")).collect();
        q.apply_results(&acks).unwrap();
    };
    refuse(&mut q, &all);
    assert_eq!(q.stats().unwrap().rejected, 3);

    // Coalescing gives the dossier row another event_id: its rejection goes.
    assert!(matches!(
        q.enqueue(&dossier(4, "spec.md")).unwrap(),
        EnqueueOutcome::Coalesced { .. }
    ));
    assert_eq!(rejection_rows(&q), 2);
    // Re-queueing the same event_id replaces the row (retry_count 0): its rejection goes.
    q.enqueue(&envelope(3)).unwrap();
    assert_eq!(rejection_rows(&q), 1);
    // Eviction (cap 3) removes the oldest row, event 1, and its rejection.
    refuse(&mut q, &[eid(3)]);
    assert_eq!(rejection_rows(&q), 2);
    assert_eq!(
        q.enqueue(&envelope(5)).unwrap(),
        EnqueueOutcome::Inserted { evicted: 1 }
    );
    assert_eq!(q.len().unwrap(), 3);
    assert_eq!(rejection_rows(&q), 1);
    let left = q.rejections().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].event_id, eid(3));
    // Quarantined: no longer queued, no longer rejected.
    let violation = gate(Surface::Envelope, &json!([])).unwrap_err();
    let id = q.peek(10).unwrap()[1].id;
    assert_eq!(q.peek(10).unwrap()[1].event_id, eid(3));
    q.quarantine_rows(&[(id, &violation)]).unwrap();
    assert_eq!(rejection_rows(&q), 0);

    // Another program (upstream) deletes a refused row: the leftover rejection row is
    // hidden, not counted.
    refuse(&mut q, &[eid(5)]);
    assert_eq!(q.stats().unwrap().rejected, 1);
    Connection::open(&path)
        .unwrap()
        .execute("DELETE FROM queue WHERE event_id = ?1", [eid(5)])
        .unwrap();
    assert_eq!(rejection_rows(&q), 1);
    assert_eq!(q.stats().unwrap().rejected, 0);
    assert!(q.rejections().unwrap().is_empty());
    // A later acknowledgement of that event id clears it.
    let applied = q
        .apply_results(&[Ack::Acknowledged { event_id: &eid(5) }])
        .unwrap();
    assert_eq!(applied.unknown, 1);
    assert_eq!(rejection_rows(&q), 0);
}

#[test]
fn rejections_are_listed_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(dir.path().join("q.db"), opts(100)).unwrap();
    for n in 0..3 {
        q.enqueue(&envelope(n)).unwrap();
    }
    for n in [2, 0, 1] {
        q.apply_results(&[reject(&eid(n), "r", "unknown")]).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let order: Vec<String> = q
        .rejections()
        .unwrap()
        .into_iter()
        .map(|r| r.event_id)
        .collect();
    assert_eq!(order, [eid(2), eid(0), eid(1)]);
}
