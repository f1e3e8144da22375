//! The durable offline event queue: SQLite, same file and `queue` table as upstream, so the
//! Python CLI and this one can take turns on one queue.
//!
//! # Location
//!
//! See [`crate::home`]: `~/.spec-kitty/queue.db` when not authenticated, else
//! `~/.spec-kitty/queues/queue-{sha256(scope)[:16]}.db`.
//!
//! # Schema (`PRAGMA user_version`)
//!
//! | user_version | schema |
//! |---|---|
//! | 0 | nothing yet, **or** a queue written by upstream (which never sets `user_version`) |
//! | 1 | upstream's `queue` table and its three indexes (with `coalesce_key`), plus `quarantine` |
//! | 2 | 1 plus the one-row `clock_floor` table |
//! | 3 | 2 plus `rejection` and `sync_meta` |
//! | 4 | 3 plus upstream's canonical `body_upload_queue` (left as found when it is pre-cutover) |
//! | 5 | 4 plus the index `idx_queue_event_type` (per-type counts without a table scan) |
//! | 6 | 5 plus the one-row `queue_rows` counter and the five `queue_rows_*` triggers on `queue` that keep it exact (see `rows`) |
//!
//! Opening a file below version 6 upgrades it in place by running the ordered steps of
//! `schema::MIGRATIONS` that it lacks, **each in its own** `BEGIN IMMEDIATE` transaction that
//! also sets `user_version` to the step's version (a process killed between steps leaves a
//! whole, older version that the next open continues). Step 1 creates the `queue` table if
//! absent; an upstream table is kept with its rows (an older one without `coalesce_key` gets
//! `ALTER TABLE queue ADD COLUMN coalesce_key TEXT`, as upstream's own upgrade); it adds the
//! indexes and `quarantine`. Step 2 adds `clock_floor`, step 3 `rejection` and `sync_meta`, step 4 upstream's v3.1.0
//! `body_upload_queue` with its two indexes (a pre-cutover body queue is left for `spec-kitty
//! upgrade`, which renames its columns in place), step 5 an index on `queue(event_type)`,
//! step 6 the row counter: its table, its triggers, and its value from one `COUNT(*)`.
//! Every step is additive (`CREATE … IF NOT EXISTS`). Version 2's `clock_floor` holds the
//! highest Lamport value ever queued (updated in each enqueue's transaction); version 3's
//! `rejection` holds the server's latest refusal of a still-queued event and `sync_meta`
//! key/value facts about the last sync run. A file with a higher `user_version` (a newer
//! spec-kitty-rs) is refused, untouched. Upstream ignores `user_version` and our tables, and
//! the `queue` table is never altered beyond upstream's own `coalesce_key` upgrade, so it keeps
//! reading and writing the file; its writes run the counter's triggers like ours (tested with
//! upstream's statements under python3's SQLite, `tests/it/sync_interop.rs`).
//!
//! ```sql
//! -- upstream v3.1.0, verbatim
//! CREATE TABLE IF NOT EXISTS queue (
//!     id INTEGER PRIMARY KEY AUTOINCREMENT,
//!     event_id TEXT UNIQUE NOT NULL,
//!     event_type TEXT NOT NULL,
//!     data TEXT NOT NULL,            -- the envelope's JSON
//!     timestamp INTEGER NOT NULL,    -- epoch seconds at enqueue
//!     retry_count INTEGER DEFAULT 0,
//!     coalesce_key TEXT
//! );
//! CREATE INDEX IF NOT EXISTS idx_timestamp ON queue(timestamp);
//! CREATE INDEX IF NOT EXISTS idx_retry ON queue(retry_count);
//! CREATE INDEX IF NOT EXISTS idx_coalesce_key ON queue(coalesce_key);
//!
//! -- ours, additive: rows the gate refused on read-back; never sent, never silently deleted
//! CREATE TABLE IF NOT EXISTS quarantine (
//!     id INTEGER PRIMARY KEY AUTOINCREMENT,
//!     queue_id INTEGER NOT NULL,     -- the row's id in queue
//!     event_id TEXT NOT NULL,
//!     event_type TEXT NOT NULL,
//!     data TEXT NOT NULL,            -- verbatim
//!     timestamp INTEGER NOT NULL,    -- the queue row's enqueue time
//!     retry_count INTEGER NOT NULL DEFAULT 0,
//!     coalesce_key TEXT,
//!     code TEXT NOT NULL,            -- the violation's stable code
//!     surface TEXT NOT NULL,         -- e.g. envelope, payload.mission_scoped
//!     field TEXT NOT NULL,           -- dotted path, '' for the whole document
//!     reason TEXT NOT NULL,          -- one human sentence
//!     quarantined_at TEXT NOT NULL   -- 2026-04-06T12:00:00.123456+00:00
//! );
//! CREATE INDEX IF NOT EXISTS idx_quarantine_event_id ON quarantine(event_id);
//!
//! -- ours, version 2: the highest Lamport value ever queued
//! CREATE TABLE IF NOT EXISTS clock_floor (
//!     id INTEGER PRIMARY KEY CHECK (id = 1),
//!     value INTEGER NOT NULL
//! );
//!
//! -- ours, version 3: the server's latest refusal of a queued event (batch result
//! -- "rejected"); the row stays queued
//! CREATE TABLE IF NOT EXISTS rejection (
//!     event_id TEXT PRIMARY KEY,
//!     reason TEXT NOT NULL,          -- the server's error text
//!     category TEXT NOT NULL,        -- schema_mismatch | auth_expired | server_error | unknown
//!     rejected_at TEXT NOT NULL,     -- 2026-04-06T12:00:00.123456+00:00
//!     rejections INTEGER NOT NULL DEFAULT 1
//! );
//! -- ours, version 3: small facts about the last sync run (last_error, last_server, …)
//! CREATE TABLE IF NOT EXISTS sync_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
//! ```
//!
//! A rejection row belongs to the queue row with its `event_id`. Each connection of ours
//! installs two `TEMP` triggers (in the connection's temp schema, never in the queue file)
//! that delete it when that queue row is deleted (acknowledged, evicted, replaced,
//! quarantined) or coalesced to another `event_id`; rows removed by upstream are hidden by the
//! joins in [`Queue::rejections`] and [`Queue::stats`] (their leftover rejection rows are
//! cleared by a later acknowledgement of the same `event_id`).
//!
//! # Durability
//!
//! `PRAGMA journal_mode=WAL`, one `BEGIN IMMEDIATE` transaction per enqueue, and
//! `PRAGMA synchronous` per [`Durability`]: `FULL` (the default) fsyncs the WAL at every commit,
//! so an enqueue that returned survives a killed process **and** a power loss; `NORMAL` survives a
//! killed process (the commit is in the WAL, in the OS page cache) but the last commits may be
//! lost, never corrupted, on power loss. Readers never block the writer; a busy writer is waited
//! for up to five seconds.
//!
//! # Enqueue (upstream's `queue_event`, in one transaction)
//!
//! 1. **Coalescing.** `MissionDossierArtifactIndexed` and `MissionDossierSnapshotComputed` carry
//!    a key (upstream HEAD, #1047): the event type and the values at
//!    `namespace.project_uuid`, `namespace.mission_slug` (and `artifact_id.path` for
//!    ArtifactIndexed), each looked up on the envelope first, then in the payload, with
//!    upstream's flat fallbacks; `|`-joined. A queued row with the same key is updated in place
//!    (`event_id`, `data`, `timestamp`; `retry_count` kept).
//! 2. A row with the same `event_id` is replaced (upstream's `INSERT OR REPLACE`: new `id`,
//!    `retry_count` 0).
//! 3. **Cap.** When the queue holds `max_queue_size` rows or more, the oldest
//!    `count - max + 1` by `(timestamp, id)` are deleted and upstream's warning is printed on
//!    stderr (never silent). The count is not a `COUNT(*)` per enqueue: `max(id) - min(id) + 1`
//!    bounds it from above in O(log n) (ids are unique), and only when that bound reaches the
//!    cap is the exact count read, in O(1), from the counter that triggers stored in the file
//!    keep for every writer (version 6, see `rows`; checked and, if the schema around it was
//!    changed, rebuilt with one `COUNT(*)` in the same transaction).
//!
//! `enqueue` is crate-private: the only way in is `events::Emitter::emit`, after the gate.
//!
//! # Files
//!
//! `schema` (tables, header check, ordered migrations), `rows` (the stored row counter and
//! its triggers), `enqueue`, `send` (pages, batch
//! results, rejections, sync facts), `quarantine`, `adopt` (rows of another queue file),
//! `stats`; this file holds the types and opening.
//!
//! # Sending (the batch transport's side)
//!
//! * [`Queue::page_after`] reads the queue in replay order, a page at a time, from a
//!   [`Cursor`] (two exact seeks on `idx_timestamp`, no sort, one snapshot).
//! * [`Queue::apply_results`] records one batch's per-event results ([`Ack`]) in one
//!   transaction: acknowledged rows are deleted; rejected rows stay, with `retry_count + 1`
//!   (upstream's `process_batch_results`) and their `rejection` row upserted.
//! * [`Queue::quarantine_rows`] / [`Queue::quarantine_row_reason`] move rows the sender's gate
//!   refused into `quarantine` (the same move as [`Queue::quarantine_invalid`]);
//!   [`Queue::retry_quarantine`] re-judges quarantined rows and puts the ones that now pass
//!   back.
//! * [`Queue::rejections`], [`Queue::stats`] (`rejected`), and [`Queue::set_meta`] /
//!   [`Queue::meta`] / [`Queue::clear_meta`] for the sync status.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, FileControl};
use serde::Serialize;

use crate::home::DEFAULT_MAX_QUEUE_SIZE;
use crate::repo::Durability;

mod adopt;
mod body;
mod enqueue;
pub mod legacy;
mod quarantine;
mod relay;
mod rows;
mod schema;
mod send;
mod stats;

#[allow(unused_imports)]
use self::{enqueue::*, quarantine::*, schema::*, send::*};
pub use body::{
    BodyAck, BodyArtifact, BodyCursor, BodyEnqueued, BodyStats, BodyTask, MAX_BODY_BACKOFF_SECS,
    MAX_BODY_RETRIES, StaleBody, body_backoff_secs, now_seconds,
};
pub use enqueue::coalesce_key;
pub use relay::RelayCommit;
pub use schema::{
    BODY_QUEUE_TABLE, QUARANTINE_TABLE, SCHEMA_VERSION, body_queue_columns, body_queue_is_legacy,
};

/// SQLite's busy timeout: how long an enqueue waits for another writer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Code of a quarantined row whose `data` is not JSON (the gate's codes cover the rest).
pub const CODE_DATA_NOT_JSON: &str = "QUEUE_DATA_NOT_JSON";

/// Errors of the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Not an SQLite database, or a damaged one. The file is not modified.
    #[error(
        "the queue database {} is unreadable ({detail}); it was left untouched. \
         Move it aside to start a new queue, or repair it with the sqlite3 tool",
        path.display()
    )]
    Corrupt { path: PathBuf, detail: String },
    /// Written by a newer spec-kitty-rs.
    #[error(
        "the queue database {} has schema version {found}, newer than the {supported} this \
         spec-kitty understands; it was left untouched. Upgrade spec-kitty",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// A `queue` table that is not upstream's.
    #[error(
        "the queue database {} has a queue table without column '{column}'; it was left \
         untouched. Move it aside to start a new queue",
        path.display()
    )]
    Incompatible { path: PathBuf, column: String },
    #[error("queue database {}: {op} failed: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot access the queue database {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The document handed to enqueue lacks a string `event_id` or `event_type`.
    #[error("cannot queue the event: {detail}")]
    InvalidEnvelope { detail: String },
    /// `drop_quarantine` was given ids that are not quarantined; nothing was dropped.
    #[error(
        "no quarantined row with id {}; nothing was dropped (see `spec-kitty sync quarantine list`)",
        ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    NotQuarantined { ids: Vec<i64> },
    /// Chokepoint 3: the contract gate refused a body task's namespace; nothing was written.
    #[error("cannot queue the artifact body: {0}")]
    BodyRefused(crate::contract::ContractViolation),
    /// The body upload queue still has its pre-cutover columns.
    #[error(
        "the body upload queue in {} still has its pre-cutover columns; it was left untouched. \
         Run `spec-kitty upgrade` to rename them",
        path.display()
    )]
    LegacyBodyQueue { path: PathBuf },
}

/// Settings of an open queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueOptions {
    /// `[sync] max_queue_size`.
    pub max_queue_size: u64,
    pub durability: Durability,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            max_queue_size: DEFAULT_MAX_QUEUE_SIZE,
            durability: Durability::Full,
        }
    }
}

/// What an enqueue did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum EnqueueOutcome {
    /// A new row; `evicted` oldest rows were deleted to stay under the cap.
    Inserted { evicted: u64 },
    /// An existing row with the same coalesce key now holds this event.
    Coalesced { replaced_event_id: String },
}

/// One queued row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueuedEvent {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    /// The envelope JSON, verbatim.
    pub data: String,
    /// Enqueue time, epoch seconds.
    pub timestamp: i64,
    pub retry_count: i64,
}

/// One quarantined row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantinedRow {
    pub id: i64,
    pub queue_id: i64,
    pub event_id: String,
    pub event_type: String,
    pub timestamp: i64,
    pub retry_count: i64,
    pub code: String,
    pub surface: String,
    pub field: String,
    pub reason: String,
    pub quarantined_at: String,
    pub data: String,
}

/// Which quarantined rows to drop or retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuarantineSelection {
    All,
    Ids(Vec<i64>),
}

/// Depth, age and composition of the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    pub depth: u64,
    pub max_queue_size: u64,
    /// Rows with `retry_count > 0`.
    pub retried: u64,
    /// Enqueue time of the oldest and newest rows, epoch seconds.
    pub oldest: Option<i64>,
    pub newest: Option<i64>,
    /// `(event_type, rows)`, most frequent first.
    pub by_type: Vec<(String, u64)>,
    pub quarantined: u64,
    /// Queued rows the server has refused at least once (they have a `rejection` row).
    pub rejected: u64,
}

/// A position in the replay order `(timestamp, id)`: [`Queue::page_after`] returns the rows
/// strictly after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cursor {
    /// The queue row's enqueue time, epoch seconds.
    pub timestamp: i64,
    /// The queue row's id.
    pub id: i64,
}

impl From<&QueuedEvent> for Cursor {
    fn from(row: &QueuedEvent) -> Self {
        Self {
            timestamp: row.timestamp,
            id: row.id,
        }
    }
}

/// The server's verdict on one sent event, as [`Queue::apply_results`] records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack<'a> {
    /// Stored by the server (`success`, `duplicate`, or any status meaning the event is done
    /// with): the queue row with this `event_id` is deleted, with its rejection row.
    Acknowledged { event_id: &'a str },
    /// Refused (`rejected`): the row stays queued, `retry_count` goes up by one and the refusal
    /// is recorded (see [`Rejection`]).
    Rejected {
        event_id: &'a str,
        /// The server's error text.
        reason: &'a str,
        /// `schema_mismatch`, `auth_expired`, `server_error` or `unknown`.
        category: &'a str,
    },
}

/// What [`Queue::apply_results`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AppliedResults {
    /// Queue rows deleted (acknowledged).
    pub removed: u64,
    /// Queue rows whose rejection was recorded.
    pub rejected: u64,
    /// Results naming an `event_id` that is not queued (already removed, coalesced away,
    /// quarantined, or a duplicate result in the same call); nothing was done for them.
    pub unknown: u64,
}

/// The server's latest refusal of a still-queued event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub event_id: String,
    pub event_type: String,
    /// The server's error text (the latest one).
    pub reason: String,
    /// `schema_mismatch`, `auth_expired`, `server_error` or `unknown`.
    pub category: String,
    /// When the latest refusal was recorded, e.g. `2026-04-06T12:00:00.123456+00:00`.
    pub rejected_at: String,
    /// How many refusals were recorded for this event.
    pub rejections: i64,
    /// The queue row's `retry_count`.
    pub retry_count: i64,
}

/// What [`Queue::retry_quarantine`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetryOutcome {
    /// Rows that now pass the gate and left the quarantine. Each `queue_id` is the id of the
    /// queue row that now holds the event (the original id when it was free; the already
    /// queued row's id when that one was kept).
    pub restored: Vec<QuarantinedRow>,
    /// Rows that still fail, with their code, surface, field and reason as of this retry.
    pub still_refused: Vec<QuarantinedRow>,
}

/// A WAL file larger than this is checkpointed and truncated when the connection closes.
const WAL_TRUNCATE_AT: u64 = 512 * 1024;

/// The body queue's exact row count as of a `data_version`, kept across our own commits.
#[derive(Debug, Clone, Copy)]
struct CachedCount {
    data_version: i64,
    rows: u64,
}

/// An open queue database.
#[derive(Debug)]
pub struct Queue {
    conn: Connection,
    path: PathBuf,
    options: QueueOptions,
    /// The body upload queue's row count (see `body`).
    body_count: Option<CachedCount>,
    /// The Lamport floor this connection last committed (see [`Queue::enqueue_with_floor`]).
    recorded_floor: u64,
}

fn sqlite_err<'a>(path: &'a Path, op: &'static str) -> impl Fn(rusqlite::Error) -> QueueError + 'a {
    move |source| match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => QueueError::Corrupt {
            path: path.to_path_buf(),
            detail: source.to_string(),
        },
        _ => QueueError::Sqlite {
            path: path.to_path_buf(),
            op,
            source,
        },
    }
}

fn epoch_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
}

/// `1234567` → `1,234,567` (Python's `{:,}`).
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The WAL stays short across processes. The first connection of a process rebuilds the WAL
/// index by reading and checksumming every frame of the WAL, and it cannot know which frames
/// were already checkpointed, so SQLite's automatic checkpoint never resets a WAL that each
/// process appends one commit to: the WAL (and the read at every open) grew without bound,
/// and each checkpoint copied all of it again. So a connection that leaves a WAL file above
/// WAL_TRUNCATE_AT bytes checkpoints it and truncates it to zero (`wal_checkpoint(TRUNCATE)`:
/// the WAL is synced before its frames are copied and the database file is synced before the
/// truncation, so nothing committed is at risk). It does not wait: when another connection is
/// reading or writing, the checkpoint is left to a later close. Amortized over the commits
/// that filled those bytes, it costs a fraction of one sync per command.
impl Drop for Queue {
    fn drop(&mut self) {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        if fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_TRUNCATE_AT)
            && self.conn.busy_timeout(Duration::ZERO).is_ok()
        {
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }
}

impl Queue {
    /// Open (creating file and directory if needed) and upgrade the queue at `path`.
    pub fn open(path: impl Into<PathBuf>, options: QueueOptions) -> Result<Self, QueueError> {
        let path = path.into();
        check_header(&path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::repo::create_private_dir(dir).map_err(|source| QueueError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        crate::repo::create_private_file(&path).map_err(|source| QueueError::Io {
            path: path.clone(),
            source,
        })?;
        let conn = Connection::open(&path).map_err(sqlite_err(&path, "open"))?;
        let mut queue = Self {
            conn,
            path,
            options,
            body_count: None,
            recorded_floor: 0,
        };
        queue.configure()?;
        queue.migrate()?;
        queue
            .conn
            .execute_batch(REJECTION_TRIGGERS)
            .map_err(sqlite_err(&queue.path, "create the rejection triggers"))?;
        Ok(queue)
    }

    /// Open the queue at `path` only if the file exists (`None` otherwise); nothing is created.
    pub fn open_existing(
        path: impl Into<PathBuf>,
        options: QueueOptions,
    ) -> Result<Option<Self>, QueueError> {
        let path = path.into();
        match fs::metadata(&path) {
            Ok(_) => Self::open(path, options).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(QueueError::Io { path, source }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn options(&self) -> QueueOptions {
        self.options
    }

    fn configure(&mut self) -> Result<(), QueueError> {
        let path = self.path.clone();
        // Read the schema before anything writes (journal mode, upgrade): a damaged file fails
        // here and stays untouched.
        let _: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(sqlite_err(&path, "read the schema"))?;
        // A newer schema is refused before anything is written (not even the journal mode).
        self.refuse_newer(self.user_version()?)?;
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(sqlite_err(&path, "set busy timeout"))?;
        // Returns the resulting mode; a file system without shared memory keeps the rollback
        // journal, which is as durable (only slower for concurrent readers).
        let _mode: String = self
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(sqlite_err(&path, "enable WAL"))?;
        // One sync per durable change: the WAL file is kept between processes (no unlink,
        // re-creation and directory sync on every open) and closing does not checkpoint (a
        // checkpoint syncs the WAL and the database file again). Every commit is still synced
        // to the WAL as `synchronous` says; SQLite checkpoints automatically as the WAL grows
        // (every 1000 pages), and `Drop` keeps the WAL short across processes, and any later opener (this CLI or upstream's) reads the WAL.
        self.conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(sqlite_err(&path, "disable the checkpoint on close"))?;
        self.conn
            .file_control(Some(rusqlite::MAIN_DB), FileControl::PersistWal(&mut 1))
            .map_err(sqlite_err(&path, "keep the WAL file"))?;
        let sync = match self.options.durability {
            Durability::Full => "PRAGMA synchronous=FULL",
            Durability::Normal => "PRAGMA synchronous=NORMAL",
        };
        self.conn
            .execute_batch(sync)
            .map_err(sqlite_err(&path, "set synchronous"))?;
        Ok(())
    }

    fn user_version(&self) -> Result<i64, QueueError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sqlite_err(&self.path, "read user_version"))
    }

    /// The schema version of the open file (after the upgrade).
    pub fn schema_version(&self) -> Result<i64, QueueError> {
        self.user_version()
    }

    fn refuse_newer(&self, found: i64) -> Result<(), QueueError> {
        if found > SCHEMA_VERSION {
            return Err(QueueError::NewerSchema {
                path: self.path.clone(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(())
    }

    /// Number of queued rows (`COUNT(*)`).
    pub fn len(&self) -> Result<u64, QueueError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM queue", [], |r| r.get(0))
            .map_err(sqlite_err(&self.path, "count the queue"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub fn is_empty(&self) -> Result<bool, QueueError> {
        Ok(self.len()? == 0)
    }

    /// `PRAGMA integrity_check`: `"ok"` for a sound file.
    pub fn integrity_check(&self) -> Result<String, QueueError> {
        let err = sqlite_err(&self.path, "check integrity");
        let mut stmt = self.conn.prepare("PRAGMA integrity_check").map_err(&err)?;
        let lines = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(&err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&err)?;
        Ok(lines.join("\n"))
    }
}

#[cfg(test)]
mod clock_floor_tests;
#[cfg(test)]
mod quarantine_tests;
#[cfg(test)]
mod rows_tests;
#[cfg(test)]
mod sync_side_tests;
#[cfg(test)]
mod tests;
