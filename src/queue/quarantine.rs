//! Quarantine: rows the gate refuses are moved aside with their reason, listed, dropped or
//! re-judged and put back.

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde_json::Value;

use super::*;
use crate::contract::{ContractViolation, Surface, Timestamp, gate};

/// The columns of a [`QuarantinedRow`], in its field order.
pub(super) const QUARANTINED_COLUMNS: &str = "id, queue_id, event_id, event_type, timestamp, retry_count, \
    code, surface, field, reason, quarantined_at, data";

pub(super) fn quarantined_row(r: &Row<'_>) -> rusqlite::Result<QuarantinedRow> {
    Ok(QuarantinedRow {
        id: r.get(0)?,
        queue_id: r.get(1)?,
        event_id: r.get(2)?,
        event_type: r.get(3)?,
        timestamp: r.get(4)?,
        retry_count: r.get(5)?,
        code: r.get(6)?,
        surface: r.get(7)?,
        field: r.get(8)?,
        reason: r.get(9)?,
        quarantined_at: r.get(10)?,
        data: r.get(11)?,
    })
}

pub(super) fn quarantined_by_id(
    conn: &Connection,
    id: i64,
) -> rusqlite::Result<Option<QuarantinedRow>> {
    conn.prepare_cached(&format!(
        "SELECT {QUARANTINED_COLUMNS} FROM quarantine WHERE id = ?1"
    ))?
    .query_row([id], quarantined_row)
    .optional()
}

pub(super) fn list_quarantined(conn: &Connection) -> rusqlite::Result<Vec<QuarantinedRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {QUARANTINED_COLUMNS} FROM quarantine ORDER BY id ASC"
    ))?;
    let rows = stmt.query_map([], quarantined_row)?;
    rows.collect()
}

/// The one place a queue row moves into `quarantine` (inside the caller's transaction): the row
/// is copied with `verdict` and the time `now`, then deleted from `queue` (its rejection row
/// goes with it, see `REJECTION_TRIGGERS`). `None` when no queue row has that id.
pub(super) fn move_to_quarantine(
    conn: &Connection,
    queue_id: i64,
    verdict: &Verdict,
    now: &str,
) -> rusqlite::Result<Option<QuarantinedRow>> {
    let copied = conn
        .prepare_cached(
            "INSERT INTO quarantine (queue_id, event_id, event_type, data, timestamp, \
             retry_count, coalesce_key, code, surface, field, reason, quarantined_at) \
             SELECT id, event_id, event_type, CAST(data AS TEXT), timestamp, \
             COALESCE(retry_count, 0), coalesce_key, ?2, ?3, ?4, ?5, ?6 \
             FROM queue WHERE id = ?1",
        )?
        .execute(params![
            queue_id,
            verdict.code,
            verdict.surface,
            verdict.field,
            verdict.reason,
            now
        ])?;
    if copied == 0 {
        return Ok(None);
    }
    let id = conn.last_insert_rowid();
    conn.prepare_cached("DELETE FROM queue WHERE id = ?1")?
        .execute([queue_id])?;
    quarantined_by_id(conn, id)
}

/// Why a stored row must not be sent, as the quarantine table records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Verdict {
    code: String,
    surface: String,
    field: String,
    reason: String,
}

impl From<&ContractViolation> for Verdict {
    fn from(v: &ContractViolation) -> Self {
        Self {
            code: v.code().to_owned(),
            surface: v.surface.name().to_owned(),
            field: v.field.clone(),
            reason: v.describe(),
        }
    }
}

/// Why a stored row must not be sent (not JSON, or refused by [`gate`] on the envelope
/// surface), `None` when it passes. The quarantine pass and the quarantine retry both use it.
pub(super) fn judge(data: &str) -> Option<Verdict> {
    let doc: Value = match serde_json::from_str(data) {
        Ok(v) => v,
        Err(e) => {
            return Some(Verdict {
                code: CODE_DATA_NOT_JSON.to_owned(),
                surface: Surface::Envelope.name().to_owned(),
                field: String::new(),
                reason: format!("the stored data is not JSON: {e}"),
            });
        }
    };
    gate(Surface::Envelope, &doc)
        .err()
        .map(|v| Verdict::from(&v))
}

/// `sync_meta` key: the largest queue id the quarantine pass has judged.
const JUDGED_THROUGH: &str = "quarantine_judged_through";

/// `sync_meta` key: queued rows the quarantine pass found written before the mission cutover
/// (left untouched for `spec-kitty upgrade`, which clears the key).
pub const PRE_CUTOVER_ROWS: &str = "pre_cutover_rows";

/// The pre-step of every judgement of a queued row: a row from before the cutover is not the
/// gate's to judge (it would be refused for a missing `schema_version`), it is upgrade's.
fn pre_cutover(data: &str) -> bool {
    serde_json::from_str::<Value>(data).is_ok_and(|doc| super::legacy::is_pre_cutover(&doc))
}

/// New rows (ids past the judged mark) up to which a look reads them by id and sorts them.
const FEW_NEW_ROWS: i64 = 10_000;

impl Queue {
    /// Re-gate every queued row as read back and move the ones that fail (not JSON, or refused
    /// by [`gate`] on the envelope surface: feature-era keys, aggregate `Feature`, missing
    /// `schema_version`, …) into `quarantine` with the violation's code and reason, in one
    /// transaction. Returns the rows quarantined by this call.
    ///
    /// The scan runs in a read transaction, so emitters are not blocked while every row is
    /// parsed; the move re-reads each failing row inside the one write transaction (a row
    /// coalesced or sent in between is judged as it is then).
    pub fn quarantine_invalid(&mut self) -> Result<Vec<QuarantinedRow>, QueueError> {
        let (moved, judged_through, pre) = self.quarantine_after(0)?;
        self.record_judged_through(judged_through)?;
        self.set_meta(PRE_CUTOVER_ROWS, &pre.to_string())?;
        Ok(moved)
    }

    /// [`Self::quarantine_invalid`] for the rows queued since the last pass only (by id, which
    /// only grows): `sync status` answers in the same time at any depth. Rows this CLI
    /// enqueues passed the gate already; the batch chokepoint judges every row again before it
    /// is sent, so nothing invalid leaves even if an older row changed in between. The full pass
    /// stays available (`sync status --rejudge`).
    pub fn quarantine_new(&mut self) -> Result<Vec<QuarantinedRow>, QueueError> {
        let after = self
            .meta(JUDGED_THROUGH)?
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        let (moved, judged_through, pre) = self.quarantine_after(after)?;
        if judged_through > after {
            self.record_judged_through(judged_through)?;
        }
        if pre > 0 {
            let seen = self.pre_cutover_rows()?;
            self.set_meta(PRE_CUTOVER_ROWS, &(seen + pre).to_string())?;
        }
        Ok(moved)
    }

    /// Queued rows from before the mission cutover that the quarantine passes left for
    /// `spec-kitty upgrade` (0 when none were seen).
    pub fn pre_cutover_rows(&self) -> Result<u64, QueueError> {
        Ok(self
            .meta(PRE_CUTOVER_ROWS)?
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0))
    }

    fn record_judged_through(&mut self, id: i64) -> Result<(), QueueError> {
        self.set_meta(JUDGED_THROUGH, &id.to_string())
    }

    /// Judges the queued rows with an id above `after`; returns the rows moved, the largest id
    /// judged (`after` when there were none) and how many rows were left alone as pre-cutover.
    fn quarantine_after(
        &mut self,
        after: i64,
    ) -> Result<(Vec<QuarantinedRow>, i64, u64), QueueError> {
        let path = self.path.clone();
        let err = |op| sqlite_err(&path, op);
        // Phase 1: find candidates without holding the write lock.
        let mut candidates: Vec<i64> = Vec::new();
        let mut judged_through = after;
        let mut pre = 0u64;
        {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Deferred)
                .map_err(err("begin the quarantine scan"))?;
            {
                // Rows past `after` in replay order. A few new rows (the usual look) are found by
                // their ids and sorted; many (the first look) are read in `idx_timestamp` order.
                // SQLite chose the index either way, so every look scanned the whole queue.
                let newest: Option<i64> = tx
                    .query_row("SELECT max(id) FROM queue", [], |r| r.get(0))
                    .map_err(err("read the queue"))?;
                let sql = if newest.unwrap_or(0).saturating_sub(after) <= FEW_NEW_ROWS {
                    "SELECT id, data FROM queue NOT INDEXED WHERE id > ?1 \
                     ORDER BY timestamp ASC, id ASC"
                } else {
                    "SELECT id, data FROM queue WHERE id > ?1 ORDER BY timestamp ASC, id ASC"
                };
                let mut stmt = tx.prepare(sql).map_err(err("read the queue"))?;
                let mut rows = stmt.query([after]).map_err(err("read the queue"))?;
                while let Some(row) = rows.next().map_err(err("read the queue"))? {
                    let id: i64 = row.get(0).map_err(err("read the queue"))?;
                    judged_through = judged_through.max(id);
                    let data: String = row.get::<_, String>(1).unwrap_or_default();
                    if pre_cutover(&data) {
                        pre += 1;
                    } else if judge(&data).is_some() {
                        candidates.push(id);
                    }
                }
            }
            tx.finish().map_err(err("end the quarantine scan"))?;
        }
        if candidates.is_empty() {
            return Ok((Vec::new(), judged_through, pre));
        }
        // Phase 2: re-judge and move, in one transaction.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("begin the quarantine pass"))?;
        let now = Timestamp::now().to_string();
        let mut moved = Vec::with_capacity(candidates.len());
        for queue_id in candidates {
            let data: Option<String> = tx
                .prepare_cached("SELECT CAST(data AS TEXT) FROM queue WHERE id = ?1")
                .and_then(|mut s| {
                    s.query_row([queue_id], |r| r.get::<_, Option<String>>(0))
                        .optional()
                })
                .map_err(err("read the queue"))?
                .map(Option::unwrap_or_default);
            let Some(verdict) = data.as_deref().filter(|d| !pre_cutover(d)).and_then(judge) else {
                continue;
            };
            if let Some(row) =
                move_to_quarantine(&tx, queue_id, &verdict, &now).map_err(err("quarantine"))?
            {
                moved.push(row);
            }
        }
        tx.commit().map_err(err("commit the quarantine pass"))?;
        Ok((moved, judged_through, pre))
    }

    /// Move the given queue rows into `quarantine`, each with its violation's code, surface,
    /// field and reason (as [`Self::quarantine_invalid`] records a gate failure), in one
    /// transaction. For a sender that gated what it read ([`Self::page_after`]) itself. Rows
    /// no longer queued are skipped (a queue id given twice is moved once); the violation is
    /// not re-checked against the row as it is now. Returns the rows quarantined, in the order
    /// given.
    pub fn quarantine_rows(
        &mut self,
        rows: &[(i64, &ContractViolation)],
    ) -> Result<Vec<QuarantinedRow>, QueueError> {
        let verdicts: Vec<(i64, Verdict)> = rows
            .iter()
            .map(|&(id, violation)| (id, Verdict::from(violation)))
            .collect();
        self.quarantine_verdicts(&verdicts)
    }

    /// Move one queue row into `quarantine` with a reason that is not a [`ContractViolation`]:
    /// chiefly a row whose `data` is not JSON, which [`Self::quarantine_invalid`] records as
    /// code [`CODE_DATA_NOT_JSON`], surface `envelope` (`Surface::Envelope.name()`), field `""`
    /// and reason `the stored data is not JSON: {serde_json error}`. One transaction; `None`
    /// when the row is no longer queued.
    pub fn quarantine_row_reason(
        &mut self,
        queue_id: i64,
        code: &str,
        surface: &str,
        field: &str,
        reason: &str,
    ) -> Result<Option<QuarantinedRow>, QueueError> {
        let verdict = Verdict {
            code: code.to_owned(),
            surface: surface.to_owned(),
            field: field.to_owned(),
            reason: reason.to_owned(),
        };
        Ok(self.quarantine_verdicts(&[(queue_id, verdict)])?.pop())
    }

    pub(super) fn quarantine_verdicts(
        &mut self,
        rows: &[(i64, Verdict)],
    ) -> Result<Vec<QuarantinedRow>, QueueError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let path = self.path.clone();
        let err = |op| sqlite_err(&path, op);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("begin quarantining"))?;
        let now = Timestamp::now().to_string();
        let mut moved = Vec::with_capacity(rows.len());
        for (queue_id, verdict) in rows {
            if let Some(row) =
                move_to_quarantine(&tx, *queue_id, verdict, &now).map_err(err("quarantine"))?
            {
                moved.push(row);
            }
        }
        tx.commit().map_err(err("commit quarantining"))?;
        Ok(moved)
    }

    /// Re-judge quarantined rows with the quarantine pass's own check (the contract may have
    /// changed since), in one transaction (`spec-kitty sync quarantine retry`):
    ///
    /// * a row that now passes goes back into `queue` with its original `event_id`,
    ///   `event_type`, `data`, `timestamp` and `coalesce_key`, `retry_count` 0, and its
    ///   original queue id when that id is free (so it replays exactly where it was); if the
    ///   queue already holds a row with its `event_id`, or with its coalesce key (a later
    ///   event that supersedes it, as coalescing would have), that row is kept and the
    ///   quarantined copy is only removed. Either way it leaves `quarantine` and is listed in
    ///   [`RetryOutcome::restored`]. Restoring never evicts: the cap applies at the next
    ///   enqueue;
    /// * a row that still fails stays quarantined with its code, surface, field and reason
    ///   updated (`quarantined_at` is kept).
    ///
    /// With [`QuarantineSelection::Ids`], ids that are not quarantined make it fail with
    /// [`QueueError::NotQuarantined`] and nothing changes (that error's text speaks of
    /// dropping; a caller may word its own from the ids).
    pub fn retry_quarantine(
        &mut self,
        which: &QuarantineSelection,
    ) -> Result<RetryOutcome, QueueError> {
        let path = self.path.clone();
        let err = |op| sqlite_err(&path, op);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("begin the quarantine retry"))?;
        let rows: Vec<QuarantinedRow> = match which {
            QuarantineSelection::All => {
                list_quarantined(&tx).map_err(err("read the quarantine"))?
            }
            QuarantineSelection::Ids(ids) => {
                let mut ids = ids.clone();
                ids.sort_unstable();
                ids.dedup();
                let mut rows = Vec::with_capacity(ids.len());
                let mut missing = Vec::new();
                for id in ids {
                    match quarantined_by_id(&tx, id).map_err(err("read the quarantine"))? {
                        Some(row) => rows.push(row),
                        None => missing.push(id),
                    }
                }
                if !missing.is_empty() {
                    return Err(QueueError::NotQuarantined { ids: missing });
                }
                rows
            }
        };
        let mut outcome = RetryOutcome::default();
        for mut row in rows {
            if let Some(verdict) = judge(&row.data) {
                tx.prepare_cached(
                    "UPDATE quarantine SET code = ?2, surface = ?3, field = ?4, reason = ?5 \
                     WHERE id = ?1",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        row.id,
                        verdict.code,
                        verdict.surface,
                        verdict.field,
                        verdict.reason
                    ])
                })
                .map_err(err("update a quarantined row"))?;
                row.code = verdict.code;
                row.surface = verdict.surface;
                row.field = verdict.field;
                row.reason = verdict.reason;
                outcome.still_refused.push(row);
                continue;
            }
            let queued: Option<i64> = tx
                .prepare_cached(
                    "SELECT q.id FROM quarantine z JOIN queue q ON q.event_id = z.event_id \
                     WHERE z.id = ?1 \
                     UNION ALL \
                     SELECT q.id FROM quarantine z JOIN queue q ON q.coalesce_key = z.coalesce_key \
                     WHERE z.id = ?1 \
                     LIMIT 1",
                )
                .and_then(|mut s| s.query_row([row.id], |r| r.get(0)).optional())
                .map_err(err("look for the event in the queue"))?;
            row.queue_id = match queued {
                Some(id) => id,
                None => {
                    tx.prepare_cached(
                        "INSERT INTO queue (id, event_id, event_type, data, timestamp, \
                         retry_count, coalesce_key) \
                         SELECT CASE WHEN EXISTS (SELECT 1 FROM queue WHERE id = z.queue_id) \
                         THEN NULL ELSE z.queue_id END, \
                         event_id, event_type, data, timestamp, 0, coalesce_key \
                         FROM quarantine z WHERE z.id = ?1",
                    )
                    .and_then(|mut s| s.execute([row.id]))
                    .map_err(err("restore a quarantined row"))?;
                    tx.last_insert_rowid()
                }
            };
            tx.prepare_cached("DELETE FROM quarantine WHERE id = ?1")
                .and_then(|mut s| s.execute([row.id]))
                .map_err(err("restore a quarantined row"))?;
            outcome.restored.push(row);
        }
        tx.commit().map_err(err("commit the quarantine retry"))?;
        Ok(outcome)
    }

    /// Every quarantined row, oldest first.
    pub fn list_quarantine(&self) -> Result<Vec<QuarantinedRow>, QueueError> {
        list_quarantined(&self.conn).map_err(sqlite_err(&self.path, "read the quarantine"))
    }

    /// Delete quarantined rows for good. With ids, all must exist or nothing is dropped.
    /// Returns how many rows were dropped.
    pub fn drop_quarantine(&mut self, which: &QuarantineSelection) -> Result<u64, QueueError> {
        let path = self.path.clone();
        let err = |op| sqlite_err(&path, op);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("begin dropping"))?;
        let dropped = match which {
            QuarantineSelection::All => tx
                .execute("DELETE FROM quarantine", [])
                .map_err(err("drop quarantined rows"))?,
            QuarantineSelection::Ids(ids) => {
                let mut ids = ids.clone();
                ids.sort_unstable();
                ids.dedup();
                let mut missing = Vec::new();
                let mut dropped = 0;
                for id in &ids {
                    let n = tx
                        .prepare_cached("DELETE FROM quarantine WHERE id = ?1")
                        .and_then(|mut s| s.execute([id]))
                        .map_err(err("drop quarantined rows"))?;
                    if n == 0 {
                        missing.push(*id);
                    }
                    dropped += n;
                }
                if !missing.is_empty() {
                    return Err(QueueError::NotQuarantined { ids: missing });
                }
                dropped
            }
        };
        tx.commit().map_err(err("commit dropping"))?;
        Ok(dropped as u64)
    }
}
