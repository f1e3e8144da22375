//! The body upload queue (upstream's `OfflineBodyUploadQueue`, `sync/body_queue.py`): the
//! dossier's artifact bodies waiting for `push-content`, in the same SQLite file as the event
//! queue (table `body_upload_queue`, schema step 4).
//!
//! **Chokepoint 3.** [`Queue::enqueue_body`] and [`Queue::enqueue_bodies`] run the contract
//! gate (`body_sync` surface) on the namespace *before* the transaction opens: a violation is
//! [`QueueError::BodyRefused`] and nothing is written. Then, in one `BEGIN IMMEDIATE`
//! transaction (one per task, or one for a mission's whole batch):
//!
//! 1. the cap (`[sync] max_queue_size`, shared with the event queue, as upstream): a full
//!    queue answers [`BodyEnqueued::QueueFull`] for that task (bodies are never evicted); the
//!    caller reports it;
//! 2. `INSERT OR IGNORE`: a task whose 7-column key (namespace, path, content hash) is already
//!    queued is [`BodyEnqueued::AlreadyQueued`], so enqueueing is idempotent.
//!
//! The count behind the cap is exact and cached per connection: it is recomputed only when
//! `PRAGMA data_version` says another connection committed since, so an enqueue costs the same
//! at 2k and at 200k queued tasks.
//!
//! The send side ([`Queue::ready_bodies`], [`Queue::apply_body_results`],
//! [`Queue::remove_stale_bodies`]) is upstream's lifecycle: ready = `next_attempt_at <= now`
//! in `(created_at, id)` order; uploaded, already-present and permanent failures are deleted;
//! a retryable failure waits `min(2^retry_count, 300)` s and counts one retry; tasks with more
//! than [`MAX_BODY_RETRIES`] retries are removed (and returned, for the report) before a drain.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::*;
use crate::contract::types::BodySyncNamespace;
use crate::contract::{Surface, gate};

/// A task with more retries than this is stale: removed before a drain (upstream's 20).
pub const MAX_BODY_RETRIES: i64 = 20;
/// The longest per-task backoff, in seconds.
pub const MAX_BODY_BACKOFF_SECS: f64 = 300.0;

/// One artifact body to queue (the namespace is given beside it).
#[derive(Debug, Clone, Copy)]
pub struct BodyArtifact<'a> {
    /// Path relative to the mission directory (`spec.md`, `tasks/WP01.md`).
    pub artifact_path: &'a str,
    /// Bare hex SHA-256 of the file's bytes.
    pub content_hash: &'a str,
    /// The file's text (UTF-8).
    pub content_body: &'a str,
}

/// What enqueueing one task did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyEnqueued {
    Enqueued,
    /// The same namespace, path and hash is already queued; nothing written.
    AlreadyQueued,
    /// The queue holds `max_queue_size` tasks; nothing written.
    QueueFull,
}

/// One queued body task (upstream's `BodyUploadTask`).
#[derive(Debug, Clone, PartialEq)]
pub struct BodyTask {
    pub id: i64,
    pub project_uuid: String,
    pub mission_slug: String,
    pub target_branch: String,
    pub mission_type: String,
    pub manifest_version: String,
    pub artifact_path: String,
    pub content_hash: String,
    pub hash_algorithm: String,
    pub content_body: String,
    pub size_bytes: i64,
    pub retry_count: i64,
    pub next_attempt_at: f64,
    pub created_at: f64,
    pub last_error: Option<String>,
}

/// Where a drain's walk over the ready tasks has got to: `(created_at, id)` of the last one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BodyCursor {
    pub created_at: f64,
    pub id: i64,
}

impl From<&BodyTask> for BodyCursor {
    fn from(t: &BodyTask) -> Self {
        Self {
            created_at: t.created_at,
            id: t.id,
        }
    }
}

/// What to do with a task after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyAck<'a> {
    /// Uploaded, already on the server, or refused for good: delete the task.
    Done { id: i64 },
    /// Try again after the task's backoff; `error` becomes `last_error`.
    RetryLater { id: i64, error: &'a str },
    /// Not sent (the gate refused the body built from it): keep it, note why, no retry counted.
    Held { id: i64, error: &'a str },
}

/// A stale task removed before a drain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleBody {
    pub mission_slug: String,
    pub artifact_path: String,
    pub retry_count: i64,
    pub last_error: Option<String>,
}

/// The body queue for `sync status` (upstream's `get_stats`, plus the latest errors).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BodyStats {
    pub total: u64,
    pub ready: u64,
    pub in_backoff: u64,
    /// `created_at` of the oldest and newest task (epoch seconds).
    pub oldest_created_at: Option<f64>,
    pub newest_created_at: Option<f64>,
    pub max_retry_count: i64,
    /// `(retry_count, tasks)`, ascending.
    pub retry_histogram: Vec<(i64, u64)>,
    /// Up to 5 tasks with an error, most recently failed first: `(artifact_path, last_error)`.
    pub last_errors: Vec<(String, String)>,
}

/// Seconds since the epoch, as upstream's `time.time()`.
pub fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The backoff after a failed attempt of a task that has `retry_count` retries.
pub fn body_backoff_secs(retry_count: i64) -> f64 {
    let exp = retry_count.clamp(0, 16) as i32;
    (2f64.powi(exp)).min(MAX_BODY_BACKOFF_SECS)
}

const INSERT_BODY: &str = "INSERT OR IGNORE INTO body_upload_queue (project_uuid, mission_slug, \
    target_branch, mission_type, manifest_version, artifact_path, content_hash, hash_algorithm, \
    content_body, size_bytes, retry_count, next_attempt_at, created_at, last_error) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'sha256', ?8, ?9, 0, 0.0, ?10, NULL)";

const TASK_COLUMNS: &str = "id, project_uuid, mission_slug, target_branch, mission_type, \
    manifest_version, artifact_path, content_hash, hash_algorithm, content_body, size_bytes, \
    retry_count, next_attempt_at, created_at, last_error";

fn task_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<BodyTask> {
    Ok(BodyTask {
        id: r.get(0)?,
        project_uuid: r.get(1)?,
        mission_slug: r.get(2)?,
        target_branch: r.get(3)?,
        mission_type: r.get(4)?,
        manifest_version: r.get(5)?,
        artifact_path: r.get(6)?,
        content_hash: r.get(7)?,
        hash_algorithm: r.get(8)?,
        content_body: r.get(9)?,
        size_bytes: r.get(10)?,
        retry_count: r.get(11)?,
        next_attempt_at: r.get(12)?,
        created_at: r.get(13)?,
        last_error: r.get(14)?,
    })
}

impl Queue {
    /// Queue one body task in its own transaction (see the module docs).
    pub fn enqueue_body(
        &mut self,
        namespace: &BodySyncNamespace,
        artifact: &BodyArtifact<'_>,
    ) -> Result<BodyEnqueued, QueueError> {
        let outcomes = self.enqueue_bodies(namespace, std::slice::from_ref(artifact))?;
        Ok(outcomes
            .first()
            .copied()
            .unwrap_or(BodyEnqueued::AlreadyQueued))
    }

    /// Queue a mission's batch of body tasks in one transaction (see the module docs); one
    /// outcome per artifact, in order.
    pub fn enqueue_bodies(
        &mut self,
        namespace: &BodySyncNamespace,
        artifacts: &[BodyArtifact<'_>],
    ) -> Result<Vec<BodyEnqueued>, QueueError> {
        let doc = serde_json::to_value(namespace).map_err(|e| QueueError::InvalidEnvelope {
            detail: format!("cannot serialize the body-sync namespace: {e}"),
        })?;
        self.enqueue_bodies_doc(&doc, artifacts)
    }

    /// Chokepoint 3 proper: gate `namespace` (a JSON object), then insert. Nothing is written
    /// when the gate refuses. Public so that tests can hand it a document the typed namespace
    /// could never produce (a legacy-shaped one).
    pub fn enqueue_bodies_doc(
        &mut self,
        namespace: &serde_json::Value,
        artifacts: &[BodyArtifact<'_>],
    ) -> Result<Vec<BodyEnqueued>, QueueError> {
        gate(Surface::BodySync, namespace).map_err(QueueError::BodyRefused)?;
        let field = |name: &str| -> Result<&str, QueueError> {
            namespace.get(name).and_then(|v| v.as_str()).ok_or_else(|| {
                QueueError::InvalidEnvelope {
                    detail: format!("body-sync namespace field '{name}' is not a string"),
                }
            })
        };
        let ns = [
            field("project_uuid")?,
            field("mission_slug")?,
            field("target_branch")?,
            field("mission_type")?,
            field("manifest_version")?,
        ];
        if artifacts.is_empty() {
            return Ok(Vec::new());
        }
        let max = self.options.max_queue_size.max(1);
        let now = now_seconds();
        let path = self.path.clone();
        let err = |op| sqlite_err(&path, op);
        let cached = self.body_count.take(); // restored only after a successful commit
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("begin body enqueue"))?;
        let version = data_version(&tx).map_err(err("read data_version"))?;
        let mut rows = match cached.filter(|c| c.data_version == version) {
            Some(c) => c.rows,
            None => tx
                .query_row("SELECT COUNT(*) FROM body_upload_queue", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| n.max(0) as u64)
                .map_err(err("count the body upload queue"))?,
        };
        let mut outcomes = Vec::with_capacity(artifacts.len());
        {
            let mut insert = tx
                .prepare_cached(INSERT_BODY)
                .map_err(err("prepare the body insert"))?;
            for a in artifacts {
                if rows >= max {
                    outcomes.push(BodyEnqueued::QueueFull);
                    continue;
                }
                let size = a.content_body.len() as i64;
                let n = insert
                    .execute(params![
                        ns[0],
                        ns[1],
                        ns[2],
                        ns[3],
                        ns[4],
                        a.artifact_path,
                        a.content_hash,
                        a.content_body,
                        size,
                        now
                    ])
                    .map_err(err("insert a body task"))?;
                if n > 0 {
                    rows += 1;
                    outcomes.push(BodyEnqueued::Enqueued);
                } else {
                    outcomes.push(BodyEnqueued::AlreadyQueued);
                }
            }
        }
        tx.commit().map_err(err("commit the body enqueue"))?;
        self.body_count = Some(CachedCount {
            data_version: version,
            rows,
        });
        Ok(outcomes)
    }

    /// Up to `limit` tasks ready at `now` (`next_attempt_at <= now`), after `cursor`, in
    /// `(created_at, id)` order.
    pub fn ready_bodies(
        &self,
        now: f64,
        cursor: Option<BodyCursor>,
        limit: u64,
    ) -> Result<Vec<BodyTask>, QueueError> {
        let err = sqlite_err(&self.path, "read ready body tasks");
        let c = cursor.unwrap_or(BodyCursor {
            created_at: f64::NEG_INFINITY,
            id: i64::MIN,
        });
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM body_upload_queue WHERE next_attempt_at <= ?1 \
             AND (created_at > ?2 OR (created_at = ?2 AND id > ?3)) \
             ORDER BY created_at ASC, id ASC LIMIT ?4"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(&err)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        stmt.query_map(params![now, c.created_at, c.id, limit], task_of)
            .and_then(|rows| rows.collect())
            .map_err(err)
    }

    /// Apply a drain's outcomes in one transaction. Returns how many tasks were deleted.
    pub fn apply_body_results(
        &mut self,
        acks: &[BodyAck<'_>],
        now: f64,
    ) -> Result<u64, QueueError> {
        if acks.is_empty() {
            return Ok(0);
        }
        let path = self.path.clone();
        let err = |op| sqlite_err(&path, op);
        self.body_count = None;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("begin applying body results"))?;
        let mut deleted = 0u64;
        for ack in acks {
            match *ack {
                BodyAck::Done { id } => {
                    deleted += tx
                        .prepare_cached("DELETE FROM body_upload_queue WHERE id = ?1")
                        .and_then(|mut s| s.execute([id]))
                        .map_err(err("delete a body task"))? as u64;
                }
                BodyAck::RetryLater { id, error } => {
                    let retries: Option<i64> = tx
                        .prepare_cached("SELECT retry_count FROM body_upload_queue WHERE id = ?1")
                        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
                        .map_err(err("read a body task"))?;
                    if let Some(retries) = retries {
                        let next = now + body_backoff_secs(retries);
                        tx.prepare_cached(
                            "UPDATE body_upload_queue SET retry_count = retry_count + 1, \
                             next_attempt_at = ?1, last_error = ?2 WHERE id = ?3",
                        )
                        .and_then(|mut s| s.execute(params![next, error, id]))
                        .map_err(err("back off a body task"))?;
                    }
                }
                BodyAck::Held { id, error } => {
                    tx.prepare_cached("UPDATE body_upload_queue SET last_error = ?1 WHERE id = ?2")
                        .and_then(|mut s| s.execute(params![error, id]))
                        .map_err(err("note a body task's refusal"))?;
                }
            }
        }
        tx.commit().map_err(err("commit body results"))?;
        Ok(deleted)
    }

    /// Remove tasks with more than `max_retry_count` retries; returns them (for the report).
    pub fn remove_stale_bodies(
        &mut self,
        max_retry_count: i64,
    ) -> Result<Vec<StaleBody>, QueueError> {
        let path = self.path.clone();
        let err = |op| sqlite_err(&path, op);
        self.body_count = None;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("begin removing stale body tasks"))?;
        let stale: Vec<StaleBody> = tx
            .prepare(
                "SELECT mission_slug, artifact_path, retry_count, last_error FROM \
                 body_upload_queue WHERE retry_count > ?1 ORDER BY created_at, id",
            )
            .and_then(|mut s| {
                s.query_map([max_retry_count], |r| {
                    Ok(StaleBody {
                        mission_slug: r.get(0)?,
                        artifact_path: r.get(1)?,
                        retry_count: r.get(2)?,
                        last_error: r.get(3)?,
                    })
                })?
                .collect()
            })
            .map_err(err("read stale body tasks"))?;
        if !stale.is_empty() {
            tx.execute(
                "DELETE FROM body_upload_queue WHERE retry_count > ?1",
                [max_retry_count],
            )
            .map_err(err("remove stale body tasks"))?;
        }
        tx.commit()
            .map_err(err("commit removing stale body tasks"))?;
        Ok(stale)
    }

    /// Refuse a body upload queue that still has pre-cutover columns (`spec-kitty upgrade`
    /// renames them); nothing is read or written.
    pub fn check_body_queue(&self) -> Result<(), QueueError> {
        let columns = body_queue_columns(&self.conn)
            .map_err(sqlite_err(&self.path, "read the body queue"))?;
        if body_queue_is_legacy(&columns) {
            return Err(QueueError::LegacyBodyQueue {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// How many body tasks are queued.
    pub fn body_len(&self) -> Result<u64, QueueError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM body_upload_queue", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n.max(0) as u64)
            .map_err(sqlite_err(&self.path, "count the body upload queue"))
    }

    /// The body queue's statistics at `now` (see [`BodyStats`]).
    pub fn body_stats(&self, now: f64) -> Result<BodyStats, QueueError> {
        let err = sqlite_err(&self.path, "read body queue statistics");
        let (total, ready, oldest, newest, max_retry): (
            i64,
            i64,
            Option<f64>,
            Option<f64>,
            Option<i64>,
        ) = self
            .conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(next_attempt_at <= ?1), 0), MIN(created_at), \
                     MAX(created_at), MAX(retry_count) FROM body_upload_queue",
                [now],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .map_err(&err)?;
        let retry_histogram = self
            .conn
            .prepare(
                "SELECT retry_count, COUNT(*) FROM body_upload_queue GROUP BY retry_count \
                 ORDER BY retry_count",
            )
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?
                    .collect()
            })
            .map_err(&err)?;
        let last_errors = self
            .conn
            .prepare(
                "SELECT artifact_path, last_error FROM body_upload_queue WHERE last_error IS \
                 NOT NULL ORDER BY next_attempt_at DESC, id DESC LIMIT 5",
            )
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(&err)?;
        let total = total.max(0) as u64;
        let ready = ready.max(0) as u64;
        Ok(BodyStats {
            total,
            ready,
            in_backoff: total - ready.min(total),
            oldest_created_at: oldest,
            newest_created_at: newest,
            max_retry_count: max_retry.unwrap_or(0),
            retry_histogram,
            last_errors,
        })
    }
}

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;
