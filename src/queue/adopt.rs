//! Adoption: moving the rows of another queue file (events queued before a login) into
//! this one, crash-safe.

use rusqlite::{TransactionBehavior, params};

use super::*;

impl Queue {
    /// Move every queued row of `other` (another queue file, typically the unscoped
    /// `queue.db` written before the user logged in) into this queue, keeping `event_id`,
    /// `event_type`, `data`, `timestamp`, `retry_count` and `coalesce_key`. Returns how many rows
    /// left `other`.
    ///
    /// Two transactions, never a loss: the rows are first committed here (`INSERT OR IGNORE`
    /// by `event_id`, so a row already here is kept), and only then deleted from `other`. A
    /// crash in between leaves them in both files; the next call finishes the move, and a row
    /// sent twice is answered `duplicate` by the server. `other`'s quarantine stays where it is.
    pub fn adopt_rows_from(&mut self, other: &mut Queue) -> Result<u64, QueueError> {
        if other.path == self.path {
            return Ok(0);
        }
        let rows: Vec<(String, String, String, i64, i64, Option<String>)> = {
            let err = sqlite_err(&other.path, "read the queue to move");
            let mut stmt = other
                .conn
                .prepare(
                    "SELECT event_id, event_type, CAST(data AS TEXT), timestamp, \
                     COALESCE(retry_count, 0), coalesce_key FROM queue ORDER BY timestamp, id",
                )
                .map_err(&err)?;
            stmt.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .map_err(&err)?
            .collect::<Result<_, _>>()
            .map_err(&err)?
        };
        if rows.is_empty() {
            return Ok(0);
        }
        {
            let path = self.path.clone();
            let err = |op| sqlite_err(&path, op);
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(err("begin moving rows in"))?;
            for (event_id, event_type, data, timestamp, retries, key) in &rows {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO queue (event_id, event_type, data, timestamp, \
                     retry_count, coalesce_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut s| {
                    s.execute(params![event_id, event_type, data, timestamp, retries, key])
                })
                .map_err(err("move a row in"))?;
            }
            tx.commit().map_err(err("commit moving rows in"))?;
        }
        let path = other.path.clone();
        let err = |op| sqlite_err(&path, op);
        let tx = other
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("begin moving rows out"))?;
        let mut moved = 0u64;
        for (event_id, ..) in &rows {
            moved += tx
                .prepare_cached("DELETE FROM queue WHERE event_id = ?1")
                .and_then(|mut s| s.execute([event_id]))
                .map_err(err("move a row out"))? as u64;
        }
        tx.commit().map_err(err("commit moving rows out"))?;
        Ok(moved)
    }
}
