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
fn envelope(n: u32) -> Value {
    super::tests::envelope(n, "WPCreated")
}

/// The feature-era key used here (named through the contract, never spelled out in src/).
fn legacy_key() -> &'static str {
    crate::contract::rules::LEGACY_KEYS[0]
}

/// A feature-era envelope: a legacy key in the payload.
fn feature_era(n: u32) -> Value {
    let mut e = envelope(n);
    e["payload"][legacy_key()] = json!("001-x");
    e
}

/// An envelope's JSON without the legacy key (if it has it): gate-valid again.
fn repaired(data: &str) -> String {
    let mut doc: Value = serde_json::from_str(data).unwrap();
    doc["payload"].as_object_mut().unwrap().remove(legacy_key());
    serde_json::to_string(&doc).unwrap()
}

fn dossier(n: u32, path: &str) -> Value {
    let mut e = envelope(n);
    e["event_type"] = json!("MissionDossierArtifactIndexed");
    e["payload"] = json!({"namespace": {"project_uuid": "u", "mission_slug": "001-x"},
        "artifact_id": {"path": path}});
    e
}

fn eid(n: u32) -> String {
    format!("01JMBY7K8N3QRVX2DPFG5H{n:04}")
}

fn tables(q: &Queue) -> Vec<String> {
    q.conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn rejection_rows(q: &Queue) -> i64 {
    q.conn
        .query_row("SELECT COUNT(*) FROM rejection", [], |r| r.get(0))
        .unwrap()
}

fn retry_count(q: &Queue, event_id: &str) -> i64 {
    q.conn
        .query_row(
            "SELECT retry_count FROM queue WHERE event_id = ?1",
            [event_id],
            |r| r.get(0),
        )
        .unwrap()
}

fn reject<'a>(event_id: &'a str, reason: &'a str, category: &'a str) -> Ack<'a> {
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
    assert_eq!(q.schema_version().unwrap(), 3);
    assert_eq!(SCHEMA_VERSION, 3);
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
    assert_eq!(q.schema_version().unwrap(), 3);
    assert_eq!(q.rejections().unwrap().len(), 1);
    assert_eq!(q.meta("last_server").unwrap().as_deref(), Some("https://x"));
}

#[test]
fn fresh_and_upstream_files_reach_3_and_4_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = Queue::open(dir.path().join("fresh.db"), opts(10)).unwrap();
    assert_eq!(fresh.schema_version().unwrap(), 3);
    assert_eq!(
        tables(&fresh),
        [
            "clock_floor",
            "quarantine",
            "queue",
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
    assert_eq!(q.schema_version().unwrap(), 3);
    assert!(tables(&q).contains(&"rejection".to_owned()));
    assert_eq!(q.len().unwrap(), 1);
    drop(q);

    let newer = dir.path().join("newer.db");
    Connection::open(&newer)
        .unwrap()
        .execute_batch("CREATE TABLE keep (x); PRAGMA user_version = 4")
        .unwrap();
    let before = fs::read(&newer).unwrap();
    assert!(matches!(
        Queue::open(&newer, opts(10)),
        Err(QueueError::NewerSchema {
            found: 4,
            supported: 3,
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
fn apply_results_keeps_the_cached_row_count_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(dir.path().join("q.db"), opts(4)).unwrap();
    for n in 0..5 {
        q.enqueue(&envelope(n)).unwrap();
    }
    // The eviction left an exact count (4) in the cache.
    assert!(matches!(q.count, Some(CachedCount { rows: 4, .. })));
    let applied = q
        .apply_results(&[
            Ack::Acknowledged { event_id: &eid(1) },
            Ack::Acknowledged { event_id: &eid(2) },
        ])
        .unwrap();
    assert_eq!(applied.removed, 2);
    assert!(matches!(q.count, Some(CachedCount { rows: 2, .. })));
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

#[test]
fn quarantine_rows_moves_given_rows_and_skips_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(dir.path().join("q.db"), opts(100)).unwrap();
    q.enqueue(&envelope(1)).unwrap();
    q.enqueue(&envelope(2)).unwrap();
    q.apply_results(&[reject(&eid(1), "r", "unknown")]).unwrap();
    let rows = q.peek(10).unwrap();
    let violation = gate(Surface::Envelope, &feature_era(1)).unwrap_err();
    let moved = q
        .quarantine_rows(&[
            (rows[0].id, &violation),
            (rows[0].id, &violation),
            (999, &violation),
        ])
        .unwrap();
    assert_eq!(moved.len(), 1);
    let m = &moved[0];
    assert_eq!(
        (m.queue_id, m.event_id.as_str()),
        (rows[0].id, eid(1).as_str())
    );
    assert_eq!(m.code, violation.code());
    assert_eq!(m.surface, "envelope");
    assert_eq!(m.field, violation.field);
    assert_eq!(m.field, format!("payload.{}", legacy_key()));
    assert_eq!(m.reason, violation.describe());
    assert_eq!(m.retry_count, 1);
    assert_eq!(m.data, rows[0].data);
    assert_eq!(q.list_quarantine().unwrap(), moved);
    assert_eq!(q.len().unwrap(), 1);

    let not_json = q
        .quarantine_row_reason(
            rows[1].id,
            CODE_DATA_NOT_JSON,
            Surface::Envelope.name(),
            "",
            "the stored data is not JSON: x",
        )
        .unwrap()
        .unwrap();
    assert_eq!(not_json.code, CODE_DATA_NOT_JSON);
    assert_eq!(not_json.reason, "the stored data is not JSON: x");
    assert!(q.is_empty().unwrap());
    assert_eq!(
        q.quarantine_row_reason(rows[1].id, "C", "s", "", "r")
            .unwrap(),
        None
    );
    assert_eq!(q.list_quarantine().unwrap().len(), 2);
    assert!(q.quarantine_rows(&[]).unwrap().is_empty());
}

#[test]
fn retry_restores_rows_that_now_pass_and_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(dir.path().join("q.db"), opts(100)).unwrap();
    q.enqueue(&envelope(1)).unwrap();
    q.enqueue(&feature_era(2)).unwrap();
    q.enqueue(&feature_era(3)).unwrap();
    q.enqueue(&envelope(4)).unwrap();
    q.apply_results(&[reject(&eid(3), "r", "unknown")]).unwrap();
    let moved = q.quarantine_invalid().unwrap();
    assert_eq!(moved.len(), 2);
    let (feature, fixed) = (moved[0].clone(), moved[1].clone());
    assert_eq!(fixed.retry_count, 1);
    assert_eq!(q.len().unwrap(), 2);

    // Unknown ids: an error, and nothing changes.
    q.conn
        .execute(
            "UPDATE quarantine SET reason = 'stale' WHERE id = ?1",
            [feature.id],
        )
        .unwrap();
    let err = q
        .retry_quarantine(&QuarantineSelection::Ids(vec![feature.id, 999]))
        .unwrap_err();
    assert!(matches!(err, QueueError::NotQuarantined { ref ids } if ids == &[999]));
    assert_eq!(q.list_quarantine().unwrap()[0].reason, "stale");

    // Nothing changed in the contract: both stay, the stale reason is recomputed.
    let out = q.retry_quarantine(&QuarantineSelection::All).unwrap();
    assert!(out.restored.is_empty());
    assert_eq!(out.still_refused.len(), 2);
    assert_eq!(out.still_refused[0].reason, feature.reason);
    assert_eq!(out.still_refused[0].quarantined_at, feature.quarantined_at);
    assert_eq!(q.list_quarantine().unwrap(), out.still_refused);

    // The row is repaired (now gate-valid): it goes back where it was, retry_count 0.
    let repaired = serde_json::to_string(&envelope(3)).unwrap();
    q.conn
        .execute(
            "UPDATE quarantine SET data = ?2 WHERE id = ?1",
            params![fixed.id, repaired],
        )
        .unwrap();
    let out = q
        .retry_quarantine(&QuarantineSelection::Ids(vec![
            fixed.id, feature.id, fixed.id,
        ]))
        .unwrap();
    assert_eq!(out.restored.len(), 1);
    assert_eq!(out.restored[0].id, fixed.id);
    assert_eq!(out.restored[0].queue_id, fixed.queue_id);
    assert_eq!(out.still_refused.len(), 1);
    assert_eq!(out.still_refused[0].id, feature.id);
    assert_eq!(
        out.still_refused[0].field,
        format!("payload.{}", legacy_key())
    );
    let queue: Vec<QueuedEvent> = q.peek(10).unwrap();
    let back = queue.iter().find(|r| r.event_id == eid(3)).unwrap();
    assert_eq!(back.id, fixed.queue_id);
    assert_eq!(back.retry_count, 0);
    assert_eq!(back.timestamp, fixed.timestamp);
    assert_eq!(back.data, repaired);
    assert_eq!(
        queue.iter().map(|r| r.event_id.clone()).collect::<Vec<_>>(),
        [eid(1), eid(3), eid(4)],
        "replays in its original place"
    );
    let left = q.list_quarantine().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, feature.id);
    assert_eq!(q.stats().unwrap().depth, 3);
}

#[test]
fn retry_keeps_an_already_queued_copy_and_takes_a_new_id_when_its_own_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(dir.path().join("q.db"), opts(100)).unwrap();
    q.enqueue(&feature_era(1)).unwrap();
    q.enqueue(&feature_era(2)).unwrap();
    q.enqueue(&dossier(3, "spec.md")).unwrap();
    let ids: Vec<i64> = q.peek(10).unwrap().iter().map(|r| r.id).collect();
    let violation = gate(Surface::Envelope, &feature_era(1)).unwrap_err();
    let moved = q
        .quarantine_rows(&[
            (ids[0], &violation),
            (ids[1], &violation),
            (ids[2], &violation),
        ])
        .unwrap();
    assert_eq!(moved.len(), 3);
    // Event 1 is queued again meanwhile (valid now); event 2's old id is taken by another
    // row; a later dossier event with the same coalesce key is queued.
    q.enqueue(&envelope(1)).unwrap();
    q.conn
        .execute(
            "INSERT INTO queue (id, event_id, event_type, data, timestamp) \
             VALUES (?1, 'other', 'X', '{}', 1)",
            [ids[1]],
        )
        .unwrap();
    q.enqueue(&dossier(4, "spec.md")).unwrap();
    for m in &moved {
        q.conn
            .execute(
                "UPDATE quarantine SET data = ?2 WHERE id = ?1",
                params![m.id, repaired(&m.data)],
            )
            .unwrap();
    }
    let before = q.peek(10).unwrap();
    let out = q.retry_quarantine(&QuarantineSelection::All).unwrap();
    assert_eq!(out.restored.len(), 3, "{out:?}");
    assert!(out.still_refused.is_empty());
    assert!(q.list_quarantine().unwrap().is_empty());
    let after = q.peek(10).unwrap();
    // Event 1: the queued row is kept as it was.
    let one = before.iter().find(|r| r.event_id == eid(1)).unwrap();
    assert_eq!(out.restored[0].queue_id, one.id);
    assert!(after.contains(one));
    // Event 2: back with a new id.
    let two = after.iter().find(|r| r.event_id == eid(2)).unwrap();
    assert_ne!(two.id, ids[1]);
    assert_eq!(out.restored[1].queue_id, two.id);
    assert_eq!(two.retry_count, 0);
    // Event 3: superseded by the later dossier event 4 with the same key.
    assert!(after.iter().all(|r| r.event_id != eid(3)));
    let four = after.iter().find(|r| r.event_id == eid(4)).unwrap();
    assert_eq!(out.restored[2].queue_id, four.id);
    assert_eq!(after.len(), before.len() + 1);
}

#[test]
fn sync_meta_set_read_clear_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let mut q = Queue::open(&path, opts(10)).unwrap();
    assert_eq!(q.meta("last_error").unwrap(), None);
    q.set_meta("last_error", "HTTP 500").unwrap();
    q.set_meta("last_error", "timeout").unwrap();
    q.set_meta("last_sync_at", "2026-04-06T12:00:00.123456+00:00")
        .unwrap();
    assert_eq!(q.meta("last_error").unwrap().as_deref(), Some("timeout"));
    drop(q);
    let mut q = Queue::open(&path, opts(10)).unwrap();
    assert_eq!(q.meta("last_error").unwrap().as_deref(), Some("timeout"));
    assert!(q.clear_meta("last_error").unwrap());
    assert!(!q.clear_meta("last_error").unwrap());
    assert_eq!(q.meta("last_error").unwrap(), None);
    assert!(q.meta("last_sync_at").unwrap().is_some());
}

/// Timings on a 100,000-row queue with `Durability::Full` (one fsync per commit). Run with
/// `cargo test --release --lib sync_side_tests::timings -- --ignored --nocapture`.
#[test]
#[ignore = "timing report, not a check"]
fn timings() {
    use std::time::Instant;
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(
        dir.path().join("q.db"),
        QueueOptions {
            max_queue_size: 200_000,
            durability: Durability::Full,
        },
    )
    .unwrap();
    {
        // 100,000 realistic rows at 20,000 a second: 5 distinct timestamps.
        let data = serde_json::to_string(&envelope(1)).unwrap();
        let tx = q.conn.unchecked_transaction().unwrap();
        {
            let mut ins = tx
                .prepare(
                    "INSERT INTO queue (event_id, event_type, data, timestamp) \
                     VALUES (?1, 'WPCreated', ?2, ?3)",
                )
                .unwrap();
            for n in 0..100_000i64 {
                ins.execute(params![format!("ev-{n:06}"), data, 1_000 + n / 20_000])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    // page_after: a full walk, and the worst page (cursor deep inside one second).
    let t = Instant::now();
    let mut cursor = None;
    let mut pages = 0;
    while let Some(last) = q.page_after(cursor, 1_000).unwrap().last() {
        cursor = Some(Cursor::from(last));
        pages += 1;
    }
    let walk = t.elapsed();
    let t = Instant::now();
    let page = q
        .page_after(
            Some(Cursor {
                timestamp: 1_002,
                id: 59_000,
            }),
            1_000,
        )
        .unwrap();
    let one = t.elapsed();
    assert_eq!(page.len(), 1_000);
    eprintln!(
        "page_after: {pages} pages of 1000 over 100,000 rows in {walk:?} ({:?}/page); one page mid-second {one:?}",
        walk / pages
    );
    // apply_results: drain by batches of 1000 acknowledgements, then 1000 refusals.
    let mut times = Vec::new();
    for batch in 0..10 {
        let ids: Vec<String> = (batch * 1_000..(batch + 1) * 1_000)
            .map(|n| format!("ev-{n:06}"))
            .collect();
        let acks: Vec<Ack<'_>> = ids
            .iter()
            .map(|e| Ack::Acknowledged { event_id: e })
            .collect();
        let t = Instant::now();
        let applied = q.apply_results(&acks).unwrap();
        times.push(t.elapsed());
        assert_eq!(applied.removed, 1_000);
    }
    times.sort();
    eprintln!(
        "apply_results, 1000 acknowledgements: median {:?}, max {:?}",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    let ids: Vec<String> = (50_000..51_000).map(|n| format!("ev-{n:06}")).collect();
    let acks: Vec<Ack<'_>> = ids
        .iter()
        .map(|e| reject(e, "field 'x' is invalid", "schema_mismatch"))
        .collect();
    let t = Instant::now();
    q.apply_results(&acks).unwrap();
    let first = t.elapsed();
    let t = Instant::now();
    q.apply_results(&acks).unwrap();
    eprintln!(
        "apply_results, 1000 refusals: {first:?} (new rejection rows), {:?} (updates)",
        t.elapsed()
    );
    let t = Instant::now();
    let stats = q.stats().unwrap();
    let all_stats = t.elapsed();
    let t = Instant::now();
    let rejected: i64 = q.conn.query_row(REJECTED_COUNT, [], |r| r.get(0)).unwrap();
    let count = t.elapsed();
    let t = Instant::now();
    let listed = q.rejections().unwrap();
    eprintln!(
        "with 1000 rejected of 90,000: stats {all_stats:?} (of which the rejected count \
         {count:?}), rejections() {:?}",
        t.elapsed()
    );
    assert_eq!(
        (stats.rejected, rejected, listed.len()),
        (1_000, 1_000, 1_000)
    );
}
