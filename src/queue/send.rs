//! The send side: reading pages in replay order, recording batch results, rejections and
//! the `sync_meta` facts.

use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::*;
use crate::contract::Timestamp;

/// Queued rows with a rejection row. Walks `rejection` (small) and probes the queue's
/// `event_id` index, never the other way round (a plain join may scan the whole queue).
pub(super) const REJECTED_COUNT: &str = "SELECT COUNT(*) FROM rejection r \
    WHERE EXISTS (SELECT 1 FROM queue q WHERE q.event_id = r.event_id)";

/// [`Rejection`]s, oldest first; `CROSS JOIN` keeps `rejection` the outer loop (as above).
pub(super) const REJECTIONS: &str = "SELECT r.event_id, q.event_type, r.reason, r.category, \
    r.rejected_at, r.rejections, COALESCE(q.retry_count, 0) \
    FROM rejection r CROSS JOIN queue q ON q.event_id = r.event_id \
    ORDER BY r.rejected_at ASC, r.event_id ASC";

/// The columns of a [`QueuedEvent`], in its field order.
pub(super) const QUEUED_COLUMNS: &str =
    "id, event_id, event_type, CAST(data AS TEXT), timestamp, COALESCE(retry_count, 0)";

pub(super) fn queued_event(r: &Row<'_>) -> rusqlite::Result<QueuedEvent> {
    Ok(QueuedEvent {
        id: r.get(0)?,
        event_id: r.get(1)?,
        event_type: r.get(2)?,
        data: r.get(3)?,
        timestamp: r.get(4)?,
        retry_count: r.get(5)?,
    })
}

impl Queue {
    /// Up to `limit` rows in upstream's replay order (`timestamp ASC, id ASC`); nothing is
    /// removed.
    pub fn peek(&self, limit: u64) -> Result<Vec<QueuedEvent>, QueueError> {
        self.page_after(None, limit)
    }

    /// Up to `limit` rows in upstream's replay order (`timestamp ASC, id ASC`) strictly after
    /// `after` (from the first row with `None`); nothing is removed. Walking the queue page by
    /// page, each next cursor is `Cursor::from(page.last())`.
    ///
    /// One statement (one snapshot), two exact seeks on `idx_timestamp` (whose entries are
    /// ordered by `(timestamp, rowid)`) merged without a sort: the rest of the cursor's second
    /// (`timestamp = t AND id > i`), then the later seconds (`timestamp > t`). The single
    /// row-value range `(timestamp, id) > (t, i)` is the same set, but SQLite seeks it on
    /// `timestamp >= t` and then steps over every row of second `t` up to the cursor: at
    /// 20,000 events a second a drain would re-read a whole second per page.
    pub fn page_after(
        &self,
        after: Option<Cursor>,
        limit: u64,
    ) -> Result<Vec<QueuedEvent>, QueueError> {
        let err = sqlite_err(&self.path, "read the queue");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match after {
            None => {
                let mut stmt = self
                    .conn
                    .prepare_cached(&format!(
                        "SELECT {QUEUED_COLUMNS} FROM queue ORDER BY timestamp ASC, id ASC LIMIT ?1"
                    ))
                    .map_err(&err)?;
                let rows = stmt.query_map([limit], queued_event).map_err(&err)?;
                rows.collect::<Result<_, _>>().map_err(&err)
            }
            Some(Cursor { timestamp, id }) => {
                let mut stmt = self
                    .conn
                    .prepare_cached(&format!(
                        "SELECT {QUEUED_COLUMNS} FROM queue WHERE timestamp = ?1 AND id > ?2 \
                         UNION ALL \
                         SELECT {QUEUED_COLUMNS} FROM queue WHERE timestamp > ?1 \
                         ORDER BY 5 ASC, 1 ASC LIMIT ?3"
                    ))
                    .map_err(&err)?;
                let rows = stmt
                    .query_map(params![timestamp, id, limit], queued_event)
                    .map_err(&err)?;
                rows.collect::<Result<_, _>>().map_err(&err)
            }
        }
    }

    /// Record the server's per-event results of one batch, in **one** `BEGIN IMMEDIATE`
    /// transaction (one commit, one fsync with [`Durability::Full`]); on any error nothing is
    /// applied. See [`Ack`] for what each result does; results naming an `event_id` that is not
    /// queued are counted in [`AppliedResults::unknown`] (an acknowledgement still clears a
    /// leftover rejection row, a refusal records nothing).
    pub fn apply_results(&mut self, results: &[Ack<'_>]) -> Result<AppliedResults, QueueError> {
        if results.is_empty() {
            return Ok(AppliedResults::default());
        }
        let path = self.path.clone();
        let err = |op| sqlite_err(&path, op);
        let now = Timestamp::now().to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("begin recording the batch results"))?;
        let mut applied = AppliedResults::default();
        {
            // The trigger `queue_row_deleted` drops the rejection row of a deleted queue row.
            let mut delete = tx
                .prepare_cached("DELETE FROM queue WHERE event_id = ?1")
                .map_err(err("remove acknowledged events"))?;
            let mut forget = tx
                .prepare_cached("DELETE FROM rejection WHERE event_id = ?1")
                .map_err(err("remove acknowledged events"))?;
            let mut bump = tx
                .prepare_cached(
                    "UPDATE queue SET retry_count = COALESCE(retry_count, 0) + 1 \
                     WHERE event_id = ?1",
                )
                .map_err(err("record rejected events"))?;
            let mut record = tx
                .prepare_cached(
                    "INSERT INTO rejection (event_id, reason, category, rejected_at, rejections) \
                     VALUES (?1, ?2, ?3, ?4, 1) ON CONFLICT(event_id) DO UPDATE SET \
                     reason = excluded.reason, category = excluded.category, \
                     rejected_at = excluded.rejected_at, rejections = rejections + 1",
                )
                .map_err(err("record rejected events"))?;
            for result in results {
                match *result {
                    Ack::Acknowledged { event_id } => {
                        let n = delete
                            .execute([event_id])
                            .map_err(err("remove acknowledged events"))?;
                        if n == 0 {
                            forget
                                .execute([event_id])
                                .map_err(err("remove acknowledged events"))?;
                            applied.unknown += 1;
                        } else {
                            applied.removed += n as u64;
                        }
                    }
                    Ack::Rejected {
                        event_id,
                        reason,
                        category,
                    } => {
                        let n = bump
                            .execute([event_id])
                            .map_err(err("record rejected events"))?;
                        if n == 0 {
                            applied.unknown += 1;
                        } else {
                            record
                                .execute(params![event_id, reason, category, now])
                                .map_err(err("record rejected events"))?;
                            applied.rejected += 1;
                        }
                    }
                }
            }
        }
        tx.commit().map_err(err("commit the batch results"))?;
        Ok(applied)
    }

    /// The server's latest refusal of each still-queued event, oldest refusal first.
    pub fn rejections(&self) -> Result<Vec<Rejection>, QueueError> {
        let err = sqlite_err(&self.path, "read the rejections");
        let mut stmt = self.conn.prepare(REJECTIONS).map_err(&err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Rejection {
                    event_id: r.get(0)?,
                    event_type: r.get(1)?,
                    reason: r.get(2)?,
                    category: r.get(3)?,
                    rejected_at: r.get(4)?,
                    rejections: r.get(5)?,
                    retry_count: r.get(6)?,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
    }

    /// Set a `sync_meta` fact (replacing its value).
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), QueueError> {
        self.conn
            .prepare_cached(
                "INSERT INTO sync_meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut s| s.execute([key, value]))
            .map_err(sqlite_err(&self.path, "write sync_meta"))?;
        Ok(())
    }

    /// A `sync_meta` fact, `None` when unset.
    pub fn meta(&self, key: &str) -> Result<Option<String>, QueueError> {
        self.conn
            .prepare_cached("SELECT value FROM sync_meta WHERE key = ?1")
            .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
            .map_err(sqlite_err(&self.path, "read sync_meta"))
    }

    /// Remove a `sync_meta` fact; `true` when it was set.
    pub fn clear_meta(&mut self, key: &str) -> Result<bool, QueueError> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM sync_meta WHERE key = ?1")
            .and_then(|mut s| s.execute([key]))
            .map_err(sqlite_err(&self.path, "write sync_meta"))?;
        Ok(n > 0)
    }
}
