//! One user queue file (`queue.db` or a scoped queue): the body upload queue's columns renamed
//! in place and the legacy event envelopes rewritten, in ONE explicit SQLite transaction.
//!
//! The file is opened with a plain connection: its journal mode is left as it is (a rollback
//! journal database written by upstream stays one and stays readable by upstream), no schema
//! step of this CLI runs, and `sqlite_sequence` is not touched. Every step is idempotent: a
//! column already renamed is skipped, a canonical envelope is left alone, so a run killed at any
//! point (SQLite rolls the transaction back) is simply run again.

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

use super::envelope::{Fill, Unmappable, rewrite};
use crate::contract::Timestamp;
use crate::queue::legacy::has_legacy_marks;
use crate::queue::{QUARANTINE_TABLE, body_queue_columns, coalesce_key};

/// The body queue's pre-cutover columns and their canonical names (seed decision 4).
pub const BODY_QUEUE_RENAMES: &[(&str, &str)] = &[
    ("feature_slug", "mission_slug"),
    ("mission_key", "mission_type"),
];

/// The quarantine code of a legacy event that cannot be mapped exactly.
pub const CODE_LEGACY_UNMAPPABLE: &str = "LEGACY_EVENT_UNMAPPABLE";

/// What the upgrade finds (or did) in one queue file.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct QueueReport {
    pub path: PathBuf,
    /// The body queue columns that get their canonical names (`mission_slug`, `mission_type`).
    pub body_columns: Vec<String>,
    /// Rows of the body upload queue (all kept, same ids and values). Counted only when asked
    /// (`upgrade --dry-run`): `COUNT(*)` reads a whole index, which on a 1,000,000-row queue
    /// costs more than the rename itself; `null` when not counted.
    pub body_rows: Option<u64>,
    /// Legacy queued events rewritten to 3.0.0 envelopes (same id, event_id, lamport_clock).
    pub events_rewritten: u64,
    /// Legacy events that were quarantined and go back into the queue.
    pub events_returned: u64,
    /// Legacy events that cannot be mapped exactly (quarantined with the reason).
    pub events_unmappable: Vec<UnmappableEvent>,
    /// Legacy events an earlier upgrade quarantined already, with the same reason (no change).
    pub events_still_quarantined: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UnmappableEvent {
    pub event_id: String,
    pub field: String,
    pub reason: String,
}

impl QueueReport {
    pub fn is_empty(&self) -> bool {
        self.body_columns.is_empty()
            && self.events_rewritten == 0
            && self.events_returned == 0
            && self.events_unmappable.is_empty()
    }
}

struct Row {
    id: i64,
    event_id: String,
    data: String,
    /// `code` and `reason` of a quarantined row.
    verdict: Option<(String, String)>,
}

fn table_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |_| Ok(()),
    )
    .optional()
    .map(|o| o.is_some())
}

fn legacy_rows(conn: &Connection, table: &str, id_col: &str) -> rusqlite::Result<Vec<Row>> {
    if !table_exists(conn, table)? {
        return Ok(Vec::new());
    }
    let verdict = if table == "quarantine" {
        "code, reason"
    } else {
        "NULL, NULL"
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT {id_col}, event_id, CAST(data AS TEXT), {verdict} FROM {table} ORDER BY {id_col}"
    ))?;
    let rows = stmt.query_map([], |r| {
        let code: Option<String> = r.get(3)?;
        let reason: Option<String> = r.get(4)?;
        Ok(Row {
            id: r.get(0)?,
            event_id: r.get(1)?,
            data: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
            verdict: code.zip(reason),
        })
    })?;
    let mut out = Vec::new();
    for row in rows {
        let row = row?;
        let legacy = serde_json::from_str::<Value>(&row.data).is_ok_and(|d| has_legacy_marks(&d));
        if legacy {
            out.push(row);
        }
    }
    Ok(out)
}

fn body_renames(conn: &Connection) -> rusqlite::Result<Vec<(&'static str, &'static str)>> {
    let columns = body_queue_columns(conn)?;
    Ok(BODY_QUEUE_RENAMES
        .iter()
        .filter(|(from, _)| columns.iter().any(|c| c == from))
        .copied()
        .collect())
}

fn count(conn: &Connection, table: &str) -> rusqlite::Result<u64> {
    if !table_exists(conn, table)? {
        return Ok(0);
    }
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n.max(0) as u64)
}

/// Read-only: what [`apply`] would do to the queue at `path` (`count_rows`: count the body
/// queue's rows too).
pub fn inspect(path: &Path, fill: &Fill, count_rows: bool) -> rusqlite::Result<QueueReport> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let tx = conn.unchecked_transaction()?;
    let report = survey(&tx, path, fill, count_rows)?;
    tx.finish()?;
    Ok(report)
}

fn survey(
    conn: &Connection,
    path: &Path,
    fill: &Fill,
    count_rows: bool,
) -> rusqlite::Result<QueueReport> {
    let mut report = QueueReport {
        path: path.to_path_buf(),
        body_columns: body_renames(conn)?
            .iter()
            .map(|(_, to)| (*to).to_owned())
            .collect(),
        ..QueueReport::default()
    };
    if count_rows && !report.body_columns.is_empty() {
        report.body_rows = Some(count(conn, "body_upload_queue")?);
    }
    for (table, id_col) in [("queue", "id"), ("quarantine", "id")] {
        for row in legacy_rows(conn, table, id_col)? {
            let doc: Value = serde_json::from_str(&row.data).unwrap_or(Value::Null);
            match rewrite(&doc, fill) {
                Ok(_) if table == "queue" => report.events_rewritten += 1,
                Ok(_) => report.events_returned += 1,
                Err(u) if already_recorded(&row, &u) => report.events_still_quarantined += 1,
                Err(u) => report.events_unmappable.push(unmappable(&row.event_id, u)),
            }
        }
    }
    Ok(report)
}

fn already_recorded(row: &Row, u: &Unmappable) -> bool {
    row.verdict
        .as_ref()
        .is_some_and(|(code, reason)| code == CODE_LEGACY_UNMAPPABLE && *reason == u.reason)
}

fn unmappable(event_id: &str, u: Unmappable) -> UnmappableEvent {
    UnmappableEvent {
        event_id: event_id.to_owned(),
        field: u.field,
        reason: u.reason,
    }
}

/// Upgrade the queue at `path` in one `BEGIN IMMEDIATE` transaction (what it finds then, which
/// after a kill may be less than [`inspect`] planned). `progress(done, total)` is called as
/// event rows are rewritten. The body rows are not counted here (the rename touches none).
pub fn apply(
    path: &Path,
    fill: &Fill,
    progress: &mut dyn FnMut(u64, u64),
) -> rusqlite::Result<QueueReport> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut report = QueueReport {
        path: path.to_path_buf(),
        ..QueueReport::default()
    };
    // 1. The body queue, before anything creates tables: rename each legacy column present.
    for (from, to) in body_renames(&tx)? {
        tx.execute_batch(&format!(
            "ALTER TABLE body_upload_queue RENAME COLUMN {from} TO {to}"
        ))?;
        report.body_columns.push(to.to_owned());
        super::journal::step();
    }
    // 2. Legacy events in the queue: rewritten in place (same id), or quarantined.
    let queued = legacy_rows(&tx, "queue", "id")?;
    let quarantined = legacy_rows(&tx, "quarantine", "id")?;
    let total = (queued.len() + quarantined.len()) as u64;
    let mut done = 0u64;
    let now = Timestamp::now().to_string();
    let mut quarantine_ready = table_exists(&tx, "quarantine")?;
    let has_coalesce = tx
        .prepare("SELECT 1 FROM pragma_table_info('queue') WHERE name = 'coalesce_key'")?
        .exists([])?;
    for row in &queued {
        let doc: Value = serde_json::from_str(&row.data).unwrap_or(Value::Null);
        match rewrite(&doc, fill) {
            Ok(new) => {
                report.events_rewritten += 1;
                let data = serde_json::to_string(&new).unwrap_or_default();
                let event_type = new["event_type"].as_str().unwrap_or_default().to_owned();
                tx.execute(
                    "UPDATE queue SET data = ?2, event_type = ?3 WHERE id = ?1",
                    params![row.id, data, event_type],
                )?;
                if has_coalesce {
                    tx.execute(
                        "UPDATE queue SET coalesce_key = ?2 WHERE id = ?1",
                        params![row.id, coalesce_key(&new)],
                    )?;
                }
            }
            Err(u) => {
                report
                    .events_unmappable
                    .push(unmappable(&row.event_id, u.clone()));
                if !quarantine_ready {
                    tx.execute_batch(QUARANTINE_TABLE)?;
                    quarantine_ready = true;
                }
                let coalesce = if has_coalesce { "coalesce_key" } else { "NULL" };
                tx.execute(
                    &format!(
                        "INSERT INTO quarantine (queue_id, event_id, event_type, data, timestamp, \
                         retry_count, coalesce_key, code, surface, field, reason, quarantined_at) \
                         SELECT id, event_id, event_type, CAST(data AS TEXT), timestamp, \
                         COALESCE(retry_count, 0), {coalesce}, ?2, 'envelope', ?3, ?4, ?5 \
                         FROM queue WHERE id = ?1"
                    ),
                    params![row.id, CODE_LEGACY_UNMAPPABLE, u.field, u.reason, now],
                )?;
                tx.execute("DELETE FROM queue WHERE id = ?1", [row.id])?;
            }
        }
        done += 1;
        if done.is_multiple_of(1024) {
            progress(done, total);
        }
    }
    // 3. Legacy events already quarantined (by an earlier CLI): back into the queue when they
    //    map, else their reason says why they stay.
    for row in &quarantined {
        let doc: Value = serde_json::from_str(&row.data).unwrap_or(Value::Null);
        match rewrite(&doc, fill) {
            Ok(new) => {
                report.events_returned += 1;
                return_to_queue(&tx, row, &new, has_coalesce)?;
            }
            Err(u) if already_recorded(row, &u) => report.events_still_quarantined += 1,
            Err(u) => {
                report
                    .events_unmappable
                    .push(unmappable(&row.event_id, u.clone()));
                tx.execute(
                    "UPDATE quarantine SET code = ?2, field = ?3, reason = ?4 WHERE id = ?1",
                    params![row.id, CODE_LEGACY_UNMAPPABLE, u.field, u.reason],
                )?;
            }
        }
        done += 1;
        if done.is_multiple_of(1024) {
            progress(done, total);
        }
    }
    if table_exists(&tx, "sync_meta")? {
        tx.execute("DELETE FROM sync_meta WHERE key = 'pre_cutover_rows'", [])?;
    }
    // Killed here: every change of this queue is in the uncommitted transaction.
    super::journal::step();
    tx.commit()?;
    progress(total, total);
    Ok(report)
}

fn return_to_queue(
    tx: &Connection,
    row: &Row,
    new: &Value,
    has_coalesce: bool,
) -> rusqlite::Result<()> {
    let data = serde_json::to_string(new).unwrap_or_default();
    let event_type = new["event_type"].as_str().unwrap_or_default().to_owned();
    let (queue_id, timestamp): (i64, i64) = tx.query_row(
        "SELECT queue_id, timestamp FROM quarantine WHERE id = ?1",
        [row.id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let taken = tx
        .prepare("SELECT 1 FROM queue WHERE event_id = ?1")?
        .exists([&row.event_id])?;
    if !taken {
        let id_free = !tx
            .prepare("SELECT 1 FROM queue WHERE id = ?1")?
            .exists([queue_id])?;
        let id: Option<i64> = id_free.then_some(queue_id);
        if has_coalesce {
            tx.execute(
                "INSERT INTO queue (id, event_id, event_type, data, timestamp, retry_count, coalesce_key) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
                params![id, row.event_id, event_type, data, timestamp, coalesce_key(new)],
            )?;
        } else {
            tx.execute(
                "INSERT INTO queue (id, event_id, event_type, data, timestamp, retry_count) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                params![id, row.event_id, event_type, data, timestamp],
            )?;
        }
    }
    tx.execute("DELETE FROM quarantine WHERE id = ?1", [row.id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy_table(conn: &Connection, first: &str, second: &str) {
        conn.execute_batch(&format!(
            "CREATE TABLE body_upload_queue (id INTEGER PRIMARY KEY AUTOINCREMENT, \
             project_uuid TEXT NOT NULL, {first} TEXT NOT NULL, target_branch TEXT NOT NULL, \
             {second} TEXT NOT NULL, content_hash TEXT NOT NULL, \
             UNIQUE(project_uuid, {first}, target_branch, {second}, content_hash)); \
             CREATE INDEX idx_body_queue_namespace ON body_upload_queue(project_uuid, {first}, target_branch); \
             INSERT INTO body_upload_queue (project_uuid, {first}, target_branch, {second}, content_hash) \
             VALUES ('u', '001-a', 'main', 'software-dev', 'h');"
        ))
        .unwrap();
    }

    #[test]
    fn half_renamed_table_is_finished_and_a_second_run_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let conn = Connection::open(&path).unwrap();
        // Killed upstream-style between the two renames: the slug column is done already.
        legacy_table(&conn, "mission_slug", BODY_QUEUE_RENAMES[1].0);
        drop(conn);
        let fill = Fill::default();
        let plan = inspect(&path, &fill, true).unwrap();
        assert_eq!(plan.body_columns, vec!["mission_type".to_owned()]);
        assert_eq!(plan.body_rows, Some(1));
        assert_eq!(inspect(&path, &fill, false).unwrap().body_rows, None);
        let done = apply(&path, &fill, &mut |_, _| {}).unwrap();
        assert_eq!(done.body_columns, vec!["mission_type".to_owned()]);
        let conn = Connection::open(&path).unwrap();
        assert_eq!(
            body_queue_columns(&conn).unwrap(),
            [
                "id",
                "project_uuid",
                "mission_slug",
                "target_branch",
                "mission_type",
                "content_hash"
            ]
        );
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'body_upload_queue'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(sql.contains("UNIQUE(project_uuid, mission_slug, target_branch, mission_type"));
        drop(conn);
        assert!(inspect(&path, &fill, true).unwrap().is_empty());
        assert!(apply(&path, &fill, &mut |_, _| {}).unwrap().is_empty());
    }

    #[test]
    fn a_failed_transaction_leaves_the_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let conn = Connection::open(&path).unwrap();
        legacy_table(&conn, BODY_QUEUE_RENAMES[0].0, BODY_QUEUE_RENAMES[1].0);
        // Another connection holds the write lock: the upgrade cannot begin, nothing changes.
        conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let mut other = Connection::open(&path).unwrap();
        other.busy_timeout(std::time::Duration::ZERO).unwrap();
        let tx = other.transaction().unwrap();
        assert!(
            tx.execute_batch("ALTER TABLE body_upload_queue RENAME COLUMN id TO x")
                .is_err()
        );
        drop(tx);
        conn.execute_batch("ROLLBACK").unwrap();
        assert_eq!(
            inspect(&path, &Fill::default(), false)
                .unwrap()
                .body_columns
                .len(),
            2
        );
    }
}
