//! Depth, age and composition of the queue for `sync status`.

use super::*;

impl Queue {
    /// Depth, age, per-type counts, the quarantine size and the number of refused rows.
    pub fn stats(&self) -> Result<QueueStats, QueueError> {
        let err = sqlite_err(&self.path, "read queue statistics");
        let (depth, retried, oldest, newest): (i64, i64, Option<i64>, Option<i64>) = self
            .conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(retry_count > 0), 0), MIN(timestamp), \
                 MAX(timestamp) FROM queue",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(&err)?;
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
        let quarantined: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM quarantine", [], |r| r.get(0))
            .map_err(&err)?;
        let rejected: i64 = self
            .conn
            .query_row(REJECTED_COUNT, [], |r| r.get(0))
            .map_err(&err)?;
        Ok(QueueStats {
            depth: u64::try_from(depth).unwrap_or(0),
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
