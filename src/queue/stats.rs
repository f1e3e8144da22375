//! Depth, age and composition of the queue for `sync status`.

use super::*;

impl Queue {
    /// Depth, age, per-type counts, the quarantine size and the number of refused rows.
    pub fn stats(&self) -> Result<QueueStats, QueueError> {
        let err = sqlite_err(&self.path, "read queue statistics");
        // One aggregate per query, each answered from an index (`idx_retry`, `idx_timestamp`),
        // never a scan of the rows themselves.
        let count = |sql: &str| -> Result<i64, QueueError> {
            self.conn.query_row(sql, [], |r| r.get(0)).map_err(&err)
        };
        let retried = count("SELECT COUNT(*) FROM queue WHERE retry_count > 0")?;
        let edge = |sql: &str| -> Result<Option<i64>, QueueError> {
            self.conn.query_row(sql, [], |r| r.get(0)).map_err(&err)
        };
        let oldest = edge("SELECT MIN(timestamp) FROM queue")?;
        let newest = edge("SELECT MAX(timestamp) FROM queue")?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT event_type, COUNT(*) AS n FROM queue GROUP BY event_type \
                 ORDER BY n DESC, event_type ASC",
            )
            .map_err(&err)?;
        let by_type = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                ))
            })
            .map_err(&err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&err)?;
        // The depth is the sum of the per-type counts (one scan of `idx_queue_event_type`, not
        // a second one for COUNT(*)).
        let depth: u64 = by_type.iter().map(|(_, n)| n).sum();
        let quarantined: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM quarantine", [], |r| r.get(0))
            .map_err(&err)?;
        let rejected: i64 = self
            .conn
            .query_row(REJECTED_COUNT, [], |r| r.get(0))
            .map_err(&err)?;
        Ok(QueueStats {
            depth,
            max_queue_size: self.options.max_queue_size,
            retried: u64::try_from(retried).unwrap_or(0),
            oldest,
            newest,
            by_type,
            quarantined: u64::try_from(quarantined).unwrap_or(0),
            rejected: u64::try_from(rejected).unwrap_or(0),
        })
    }
}
