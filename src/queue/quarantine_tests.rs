//! The sender's quarantine, quarantine retry and sync facts (split from `sync_side_tests`).
use super::sync_side_tests::*;
use super::tests::opts;
use super::*;
#[allow(unused_imports)]
use crate::contract::{ContractViolation, Surface, Timestamp, gate};
#[allow(unused_imports)]
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
#[allow(unused_imports)]
use serde_json::{Value, json};
#[allow(unused_imports)]
use std::path::{Path, PathBuf};

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

#[test]
fn the_incremental_pass_judges_new_rows_once_and_rejudge_judges_all() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(dir.path().join("q.db"), opts(100)).unwrap();
    q.enqueue(&envelope(1)).unwrap();
    q.enqueue(&envelope(2)).unwrap();
    assert!(q.quarantine_new().unwrap().is_empty());
    // A row written behind the CLI's back after the pass: the next pass judges it.
    let bad = feature_era(3).to_string();
    q.conn
        .execute(
            "INSERT INTO queue (event_id, event_type, data, timestamp) VALUES ('x3', 'T', ?1, 1)",
            [&bad],
        )
        .unwrap();
    let moved = q.quarantine_new().unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].event_id, "x3");
    // An already judged row changed in place is left to the explicit full pass (and to the
    // batch chokepoint, which judges every row it sends).
    q.conn
        .execute(
            "UPDATE queue SET data = ?1 WHERE event_id = ?2",
            [&bad, &eid(1)],
        )
        .unwrap();
    assert!(q.quarantine_new().unwrap().is_empty());
    let moved = q.quarantine_invalid().unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].event_id, eid(1));
    assert_eq!(q.len().unwrap(), 1);
}

/// One judgement: the quarantine pass refuses what only the full 3.0.0 validation catches
/// (the shape rules pass for every one of these), as a row written by another CLI would carry.
#[test]
fn the_quarantine_pass_judges_with_the_full_validation() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::open(dir.path().join("q.db"), opts(100)).unwrap();
    let defects: [(&str, Value); 6] = [
        ("build_id", json!("")),
        ("lamport_clock", json!(-1)),
        ("event_id", json!("bad")),
        ("project_uuid", json!("not-a-uuid")),
        ("timestamp", json!("not-a-date")),
        ("data_tier", json!(9)),
    ];
    for (n, (field, value)) in defects.iter().enumerate() {
        let mut e = envelope(n as u32 + 1);
        e[*field] = value.clone();
        q.enqueue(&e).unwrap();
    }
    q.enqueue(&envelope(50)).unwrap();
    let moved = q.quarantine_invalid().unwrap();
    assert_eq!(moved.len(), defects.len(), "{moved:?}");
    assert!(
        moved.iter().all(|m| m.code == "CONTRACT_INVALID"),
        "{moved:?}"
    );
    let left = q.peek(10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].event_id, eid(50));
}
