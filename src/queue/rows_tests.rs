//! The stored row counter (`rows`): exact under every writer's statements, repaired when the
//! schema around it changed, and what the cap uses.

use super::tests::{envelope, opts};
use super::*;
use proptest::prelude::*;
use rusqlite::Connection;

fn count(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM queue", [], |r| r.get(0))
        .unwrap()
}

fn counter(conn: &Connection) -> i64 {
    conn.query_row("SELECT n FROM queue_rows WHERE id = 1", [], |r| r.get(0))
        .unwrap()
}

/// One statement another program might run on the queue table (upstream's enqueue, its batch
/// results, manual repairs), with its parameters drawn from small ranges so they collide.
#[derive(Debug, Clone)]
enum Foreign {
    InsertOrReplace(u8, u8),
    InsertOrIgnore(u8),
    PlainInsert(u8),
    Upsert(u8),
    InsertWithId(u8, u8),
    UpdateEventId(u8, u8),
    UpdateId(u8, u8),
    UpdateOrIgnore(u8, u8),
    BumpRetries(u8),
    EvictOldest(u8),
    DeleteEvent(u8),
    InsertSelect,
    Clear,
}

fn foreign() -> impl Strategy<Value = Foreign> {
    let e = 0u8..24;
    let id = 1u8..48;
    prop_oneof![
        4 => (e.clone(), 0u8..4).prop_map(|(a, t)| Foreign::InsertOrReplace(a, t)),
        2 => e.clone().prop_map(Foreign::InsertOrIgnore),
        1 => e.clone().prop_map(Foreign::PlainInsert),
        1 => e.clone().prop_map(Foreign::Upsert),
        1 => (id.clone(), e.clone()).prop_map(|(i, a)| Foreign::InsertWithId(i, a)),
        1 => (e.clone(), e.clone()).prop_map(|(a, b)| Foreign::UpdateEventId(a, b)),
        1 => (id.clone(), id.clone()).prop_map(|(a, b)| Foreign::UpdateId(a, b)),
        1 => (e.clone(), e.clone()).prop_map(|(a, b)| Foreign::UpdateOrIgnore(a, b)),
        1 => (0u8..3).prop_map(Foreign::BumpRetries),
        2 => (0u8..3).prop_map(Foreign::EvictOldest),
        2 => e.prop_map(Foreign::DeleteEvent),
        1 => Just(Foreign::InsertSelect),
        1 => Just(Foreign::Clear),
    ]
}

fn run(conn: &Connection, op: &Foreign) {
    let ev = |n: &u8| format!("e{n}");
    let r = match op {
        Foreign::InsertOrReplace(a, t) => conn.execute(
            "INSERT OR REPLACE INTO queue (event_id, event_type, data, timestamp) \
             VALUES (?1, 'T', '{}', ?2)",
            rusqlite::params![ev(a), t],
        ),
        Foreign::InsertOrIgnore(a) => conn.execute(
            "INSERT OR IGNORE INTO queue (event_id, event_type, data, timestamp) \
             VALUES (?1, 'T', '{}', 1)",
            [ev(a)],
        ),
        Foreign::PlainInsert(a) => conn.execute(
            "INSERT INTO queue (event_id, event_type, data, timestamp) VALUES (?1, 'T', '{}', 1)",
            [ev(a)],
        ),
        Foreign::Upsert(a) => conn.execute(
            "INSERT INTO queue (event_id, event_type, data, timestamp) VALUES (?1, 'T', '{}', 1) \
             ON CONFLICT(event_id) DO UPDATE SET data = '{\"u\": 1}'",
            [ev(a)],
        ),
        Foreign::InsertWithId(i, a) => conn.execute(
            "INSERT OR REPLACE INTO queue (id, event_id, event_type, data, timestamp) \
             VALUES (?1, ?2, 'T', '{}', 1)",
            rusqlite::params![i, ev(a)],
        ),
        Foreign::UpdateEventId(a, b) => conn.execute(
            "UPDATE OR REPLACE queue SET event_id = ?1 WHERE event_id = ?2",
            [ev(a), ev(b)],
        ),
        Foreign::UpdateId(a, b) => {
            conn.execute("UPDATE OR REPLACE queue SET id = ?1 WHERE id = ?2", [a, b])
        }
        Foreign::UpdateOrIgnore(a, b) => conn.execute(
            "UPDATE OR IGNORE queue SET event_id = ?1 WHERE event_id = ?2",
            [ev(a), ev(b)],
        ),
        Foreign::BumpRetries(m) => conn.execute(
            "UPDATE queue SET retry_count = retry_count + 1 WHERE id % 3 = ?1",
            [m],
        ),
        Foreign::EvictOldest(k) => conn.execute(
            "DELETE FROM queue WHERE id IN (SELECT id FROM queue ORDER BY timestamp, id LIMIT ?1)",
            [k],
        ),
        Foreign::DeleteEvent(a) => conn.execute("DELETE FROM queue WHERE event_id = ?1", [ev(a)]),
        Foreign::InsertSelect => conn.execute(
            "INSERT OR REPLACE INTO queue (event_id, event_type, data, timestamp) \
             SELECT 'e' || (id % 7), 'T', '{}', 2 FROM queue",
            [],
        ),
        Foreign::Clear => conn.execute("DELETE FROM queue", []),
    };
    // A refused statement (a plain insert's UNIQUE failure) changes nothing.
    if let Err(e) = r {
        assert!(
            matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::ConstraintViolation)
            ),
            "{op:?}: {e}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever another program runs, with recursive triggers off (SQLite's and Python's
    /// default) or on, the stored count is the row count after every statement.
    #[test]
    fn the_counter_stays_exact_under_any_writer(
        ops in proptest::collection::vec(foreign(), 1..80),
        recursive in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut q = Queue::open(&path, opts(1000)).unwrap();
        for n in 0..3 {
            q.enqueue(&envelope(n, "WPCreated")).unwrap();
        }
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch(if recursive {
                "PRAGMA recursive_triggers = ON"
            } else {
                "PRAGMA recursive_triggers = OFF"
            })
            .unwrap();
        for op in &ops {
            run(&other, op);
            prop_assert_eq!(counter(&other), count(&other), "after {:?}", op);
        }
        // And ours, on top of theirs.
        q.enqueue(&envelope(9, "WPCreated")).unwrap();
        prop_assert_eq!(q.stored_row_count(), Some(count(&other)));
    }
}

#[test]
fn a_version_5_file_gets_the_counter_with_its_rows_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    {
        let mut q = Queue::open(&path, opts(100)).unwrap();
        for n in 0..4 {
            q.enqueue(&envelope(n, "WPCreated")).unwrap();
        }
        // Back to what the previous build (schema 5) left: no counter, no triggers.
        let mut drop_all = String::new();
        for (name, _) in rows::QUEUE_ROWS_TRIGGERS {
            drop_all.push_str(&format!("DROP TRIGGER {name};"));
        }
        q.conn
            .execute_batch(&format!(
                "{drop_all} DROP TABLE queue_rows; PRAGMA user_version = 5;"
            ))
            .unwrap();
        q.conn
            .execute("DELETE FROM queue WHERE event_id LIKE '%0001'", [])
            .unwrap();
    }
    let q = Queue::open(&path, opts(100)).unwrap();
    assert_eq!(q.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(q.stored_row_count(), Some(3));
}

#[test]
fn the_cap_reads_the_counter_not_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let mut q = Queue::open(&path, opts(3)).unwrap();
    for n in 0..3 {
        q.enqueue(&envelope(n, "WPCreated")).unwrap();
    }
    // With the triggers intact the stored count decides: a counter that says 1 row means no
    // eviction, although three rows are queued (so no scan ran).
    q.conn.execute("UPDATE queue_rows SET n = 1", []).unwrap();
    let out = q.enqueue(&envelope(3, "WPCreated")).unwrap();
    assert_eq!(out, EnqueueOutcome::Inserted { evicted: 0 });
    assert_eq!(q.len().unwrap(), 4);
    // The explicit check puts it right, and the cap applies again.
    assert_eq!(q.recount().unwrap(), 4);
    let out = q.enqueue(&envelope(4, "WPCreated")).unwrap();
    assert_eq!(out, EnqueueOutcome::Inserted { evicted: 2 });
    assert_eq!(q.len().unwrap(), 3);
    assert_eq!(q.stored_row_count(), Some(3));
}

#[test]
fn a_counter_whose_triggers_were_lost_or_edited_is_recounted_before_the_cap_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let mut q = Queue::open(&path, opts(4)).unwrap();
    for n in 0..4 {
        q.enqueue(&envelope(n, "WPCreated")).unwrap();
    }
    // Another program drops the delete trigger and deletes two rows: the counter says 4.
    let other = Connection::open(&path).unwrap();
    other
        .execute_batch(
            "DROP TRIGGER queue_rows_after_delete;
             DELETE FROM queue WHERE event_id LIKE '%0001' OR event_id LIKE '%0002';",
        )
        .unwrap();
    assert_eq!(counter(&other), 4);
    // At the cap's bound the counter is checked, found incomplete, and recounted: 2 rows, so
    // nothing is evicted (a stale 4 would have evicted one).
    let out = q.enqueue(&envelope(4, "WPCreated")).unwrap();
    assert_eq!(out, EnqueueOutcome::Inserted { evicted: 0 });
    assert_eq!(q.len().unwrap(), 3);
    assert_eq!(q.stored_row_count(), Some(3));
    // A trigger edited under the same name is replaced the same way.
    other
        .execute_batch(
            "DROP TRIGGER queue_rows_after_delete;
             CREATE TRIGGER queue_rows_after_delete AFTER DELETE ON queue BEGIN SELECT 1; END;
             DELETE FROM queue WHERE event_id LIKE '%0003';",
        )
        .unwrap();
    assert_eq!(counter(&other), 3);
    let out = q.enqueue(&envelope(5, "WPCreated")).unwrap();
    assert_eq!(out, EnqueueOutcome::Inserted { evicted: 0 });
    assert_eq!(q.len().unwrap(), 3);
    // Restored: deletes are counted again.
    other
        .execute("DELETE FROM queue WHERE event_id LIKE '%0004'", [])
        .unwrap();
    assert_eq!(counter(&other), 2);
    assert_eq!(count(&other), 2);
}
