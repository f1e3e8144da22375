//! The status-log relay's side of the queue: a batch of envelopes and the relay cursor of one
//! status log, committed in one transaction (see `app::relay`).
//!
//! The cursor is a `sync_meta` fact (`relay:<log path>`). A batch commits only when the cursor
//! still holds the value the relay started from (compare-and-set under `BEGIN IMMEDIATE`), so
//! two processes relaying the same log never both queue its lines: the second one sees
//! [`RelayCommit::CursorMoved`] and reads on from the new cursor.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde_json::Value;

use super::*;

/// What [`Queue::enqueue_relayed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayCommit {
    /// The envelopes are queued and the cursor moved; `evicted` rows made room (the cap).
    Committed { evicted: u64 },
    /// Another process moved the cursor first; nothing was written.
    CursorMoved,
}

impl Queue {
    /// Queue `envelopes` (gate-checked by the caller) and move the `sync_meta` cursor `key`
    /// from `expected` (`None`: unset) to `cursor`, in one durable transaction. A row with the
    /// same `event_id` is replaced (a line relayed twice is queued once); the Lamport floor is
    /// raised to `max(highest lamport_clock, reserved)`.
    pub fn enqueue_relayed(
        &mut self,
        envelopes: &[Value],
        reserved: u64,
        key: &str,
        expected: Option<&str>,
        cursor: &str,
    ) -> Result<RelayCommit, QueueError> {
        let mut rows = Vec::with_capacity(envelopes.len());
        let mut top = 0u64;
        for envelope in envelopes {
            let field = |name: &str| -> Result<String, QueueError> {
                envelope
                    .get(name)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| QueueError::InvalidEnvelope {
                        detail: format!("'{name}' is missing or not a string"),
                    })
            };
            let data =
                serde_json::to_string(envelope).map_err(|e| QueueError::InvalidEnvelope {
                    detail: e.to_string(),
                })?;
            top = top.max(
                envelope
                    .get("lamport_clock")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            );
            rows.push((
                field("event_id")?,
                field("event_type")?,
                data,
                coalesce_key(envelope),
            ));
        }
        let floor = (top > self.recorded_floor).then(|| top.max(reserved));
        let now = epoch_seconds();
        let max = self.options.max_queue_size.max(1);
        let path = self.path.clone();
        let err = |op| sqlite_err(&path, op);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("begin relay"))?;
        let current: Option<String> = tx
            .prepare_cached("SELECT value FROM sync_meta WHERE key = ?1")
            .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
            .map_err(err("read the relay cursor"))?;
        if current.as_deref() != expected {
            return Ok(RelayCommit::CursorMoved);
        }
        for (event_id, event_type, data, ckey) in &rows {
            if let Some(ckey) = ckey {
                let updated = tx
                    .prepare_cached(
                        "UPDATE queue SET event_id = ?1, data = ?2, timestamp = ?3 \
                         WHERE coalesce_key = ?4",
                    )
                    .and_then(|mut s| s.execute(params![event_id, data, now, ckey]))
                    .map_err(err("coalesce"))?;
                if updated > 0 {
                    continue;
                }
            }
            tx.prepare_cached("DELETE FROM queue WHERE event_id = ?1")
                .and_then(|mut s| s.execute([event_id]))
                .map_err(err("replace"))?;
            // `OR FAIL`, as in `enqueue`: no statement journal per row (see `rows`).
            tx.prepare_cached(
                "INSERT OR FAIL INTO queue (event_id, event_type, data, timestamp, coalesce_key) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| s.execute(params![event_id, event_type, data, now, ckey]))
            .map_err(err("insert"))?;
        }
        let mut evicted = 0u64;
        if !rows.is_empty() {
            // `max(id) - min(id) + 1` bounds the row count from above in O(log n); only a
            // queue that may be over its cap is counted exactly (a COUNT(*) per relay cost a
            // scan of the whole queue on every write command).
            let bound = id_span(&tx).map_err(err("bound the queue size"))?;
            let n = if bound > max {
                rows::exact_rows(&tx)
                    .map_err(err("count the queue"))?
                    .min(bound)
            } else {
                bound
            };
            if n > max {
                evicted = tx
                    .prepare_cached(
                        "DELETE FROM queue WHERE id IN (\
                         SELECT id FROM queue ORDER BY timestamp ASC, id ASC LIMIT ?1)",
                    )
                    .and_then(|mut s| s.execute([i64::try_from(n - max).unwrap_or(i64::MAX)]))
                    .map_err(err("evict the oldest events"))? as u64;
            }
        }
        tx.prepare_cached(
            "INSERT INTO sync_meta (key, value) VALUES (?1, ?2) \
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )
        .and_then(|mut s| s.execute([key, cursor]))
        .map_err(err("move the relay cursor"))?;
        raise_floor(&tx, floor).map_err(err("record the Lamport floor"))?;
        tx.commit().map_err(err("commit"))?;
        self.note_floor(floor);
        if evicted > 0 {
            eprintln!(
                "Offline queue at capacity ({} events). Evicted {} oldest event(s) to make room.\n  \
                 Check auth and connectivity: spec-kitty sync status --check\n  \
                 Drain the queue manually:    spec-kitty sync now",
                thousands(max),
                thousands(evicted)
            );
        }
        Ok(RelayCommit::Committed { evicted })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(id: &str, lamport: u64) -> Value {
        json!({"event_id": id, "event_type": "WPStatusChanged", "lamport_clock": lamport,
               "payload": {}})
    }

    #[test]
    fn a_batch_and_its_cursor_commit_together_and_the_cursor_is_compared_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path().join("queue.db"), QueueOptions::default()).unwrap();
        let a = [env("01A", 3), env("01B", 4)];
        assert_eq!(
            q.enqueue_relayed(&a, 0, "relay:x", None, "v1 10 0")
                .unwrap(),
            RelayCommit::Committed { evicted: 0 }
        );
        assert_eq!(q.len().unwrap(), 2);
        assert_eq!(q.meta("relay:x").unwrap().as_deref(), Some("v1 10 0"));
        assert_eq!(q.clock_floor().unwrap(), 4);
        // A stale expectation writes nothing.
        assert_eq!(
            q.enqueue_relayed(&[env("01C", 5)], 0, "relay:x", None, "v1 20 0")
                .unwrap(),
            RelayCommit::CursorMoved
        );
        assert_eq!(q.len().unwrap(), 2);
        assert_eq!(q.meta("relay:x").unwrap().as_deref(), Some("v1 10 0"));
        // The same event_id again is one row.
        q.enqueue_relayed(&[env("01B", 6)], 0, "relay:x", Some("v1 10 0"), "v1 20 0")
            .unwrap();
        assert_eq!(q.len().unwrap(), 2);
    }
}
