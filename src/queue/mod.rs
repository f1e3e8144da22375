//! The durable offline event queue: SQLite, same file and `queue` table as upstream, so the
//! Python CLI and this one can take turns on one queue.
//!
//! # Location
//!
//! See [`super::home`]: `~/.spec-kitty/queue.db` when not authenticated, else
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
//!
//! Opening a file below version 3 upgrades it in place, in **one** `BEGIN IMMEDIATE`
//! transaction: the `queue` table is created if absent; an upstream table is kept with its rows
//! (an older one without `coalesce_key` gets `ALTER TABLE queue ADD COLUMN coalesce_key TEXT`,
//! as upstream's own upgrade); the indexes and the other tables are created if absent;
//! `user_version` becomes 3. Every step is additive (`CREATE … IF NOT EXISTS`), so a file at
//! 0, 1 or 2 takes the same path and keeps its rows. Version 2's `clock_floor` holds the
//! highest Lamport value ever queued (updated in each enqueue's transaction); version 3's
//! `rejection` holds the server's latest refusal of a still-queued event and `sync_meta`
//! key/value facts about the last sync run. A file with a higher `user_version` (a newer
//! spec-kitty-rs) is refused, untouched. Upstream ignores `user_version` and our tables, and
//! the `queue` table is never altered beyond upstream's own `coalesce_key` upgrade, so it keeps
//! reading and writing the file.
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
//!    cap is the exact count used — cached per connection and recomputed only when
//!    `PRAGMA data_version` says another connection (another CLI, upstream's) committed since.
//!
//! `enqueue` is crate-private: the only way in is [`super::Emitter::emit`], after the gate.
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
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior, params};
use serde::Serialize;
use serde_json::Value;

use crate::contract::{ContractViolation, Surface, Timestamp, gate};
use crate::home::DEFAULT_MAX_QUEUE_SIZE;
use crate::repo::Durability;

/// The schema version this build writes (see the module docs).
pub const SCHEMA_VERSION: i64 = 3;

const QUEUE_TABLE: &str = "CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT UNIQUE NOT NULL,
    event_type TEXT NOT NULL,
    data TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    retry_count INTEGER DEFAULT 0,
    coalesce_key TEXT
)";

const QUEUE_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS idx_timestamp ON queue(timestamp);
CREATE INDEX IF NOT EXISTS idx_retry ON queue(retry_count);
CREATE INDEX IF NOT EXISTS idx_coalesce_key ON queue(coalesce_key);";

const QUARANTINE_TABLE: &str = "
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_id INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    data TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    retry_count INTEGER NOT NULL DEFAULT 0,
    coalesce_key TEXT,
    code TEXT NOT NULL,
    surface TEXT NOT NULL,
    field TEXT NOT NULL,
    reason TEXT NOT NULL,
    quarantined_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_quarantine_event_id ON quarantine(event_id);";

/// The Lamport floor: at or above every `lamport_clock` ever queued in this file, raised inside
/// the enqueue transactions (to the clock's reservation, once per reservation: see
/// [`Queue::enqueue_with_floor`]). It makes the clock durable with the queue's single commit, so
/// the clock file itself is replaced atomically without fsync (see `Emitter::open_in`).
const CLOCK_FLOOR_TABLE: &str = "
CREATE TABLE IF NOT EXISTS clock_floor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO clock_floor (id, value)
    SELECT 1, COALESCE(MAX(CAST(json_extract(data, '$.lamport_clock') AS INTEGER)), 0)
    FROM queue WHERE json_valid(data);";

/// Version 3: the server's latest refusal of a still-queued event, and facts about the last sync.
const SYNC_TABLES: &str = "
CREATE TABLE IF NOT EXISTS rejection (
    event_id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    category TEXT NOT NULL,
    rejected_at TEXT NOT NULL,
    rejections INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS sync_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);";

/// Per connection (TEMP, never in the queue file, so upstream never sees them): a queue row that
/// leaves the queue, or whose `event_id` changes (coalescing), takes its rejection row with it.
/// This covers every path of ours (acknowledgement, eviction, replacement, coalescing,
/// quarantine); rows deleted by another program (upstream) are hidden by the joins instead.
const REJECTION_TRIGGERS: &str = "
CREATE TEMP TRIGGER IF NOT EXISTS queue_row_deleted AFTER DELETE ON queue
BEGIN
    DELETE FROM rejection WHERE event_id = old.event_id;
END;
CREATE TEMP TRIGGER IF NOT EXISTS queue_row_rekeyed AFTER UPDATE OF event_id ON queue
WHEN old.event_id IS NOT new.event_id
BEGIN
    DELETE FROM rejection WHERE event_id = old.event_id;
END;";

/// Queued rows with a rejection row. Walks `rejection` (small) and probes the queue's
/// `event_id` index, never the other way round (a plain join may scan the whole queue).
const REJECTED_COUNT: &str = "SELECT COUNT(*) FROM rejection r \
    WHERE EXISTS (SELECT 1 FROM queue q WHERE q.event_id = r.event_id)";

/// [`Rejection`]s, oldest first; `CROSS JOIN` keeps `rejection` the outer loop (as above).
const REJECTIONS: &str = "SELECT r.event_id, q.event_type, r.reason, r.category, \
    r.rejected_at, r.rejections, COALESCE(q.retry_count, 0) \
    FROM rejection r CROSS JOIN queue q ON q.event_id = r.event_id \
    ORDER BY r.rejected_at ASC, r.event_id ASC";

/// The columns of a [`QueuedEvent`], in its field order.
const QUEUED_COLUMNS: &str =
    "id, event_id, event_type, CAST(data AS TEXT), timestamp, COALESCE(retry_count, 0)";

/// The columns of a [`QuarantinedRow`], in its field order.
const QUARANTINED_COLUMNS: &str = "id, queue_id, event_id, event_type, timestamp, retry_count, \
    code, surface, field, reason, quarantined_at, data";

const RAISE_FLOOR: &str = "INSERT INTO clock_floor (id, value) VALUES (1, ?1) \
    ON CONFLICT(id) DO UPDATE SET value = max(value, excluded.value)";

/// Raise `clock_floor` to `floor` (nothing for `None`).
fn raise_floor(conn: &Connection, floor: Option<u64>) -> rusqlite::Result<()> {
    if let Some(f) = floor {
        conn.prepare_cached(RAISE_FLOOR)?
            .execute([i64::try_from(f).unwrap_or(i64::MAX)])?;
    }
    Ok(())
}

/// Columns upstream's queue must have for us to use it (`coalesce_key` may be added).
const REQUIRED_COLUMNS: &[&str] = &[
    "id",
    "event_id",
    "event_type",
    "data",
    "timestamp",
    "retry_count",
];

/// One part of a coalesce key: a dotted path and the flat fields tried when it is absent.
type KeyPart = (&'static str, &'static [&'static str]);

/// Upstream HEAD's `COALESCEABLE_EVENT_TYPES` with `LEGACY_COALESCE_FIELD_FALLBACKS`: per event
/// type, the key's parts. Queue behaviour, not a wire shape.
const COALESCE_RULES: &[(&str, &[KeyPart])] = &[
    (
        "MissionDossierArtifactIndexed",
        &[
            ("namespace.project_uuid", &["project_uuid"]),
            ("namespace.mission_slug", &["mission_slug"]),
            ("artifact_id.path", &["relative_path", "artifact_key"]),
        ],
    ),
    (
        "MissionDossierSnapshotComputed",
        &[
            ("namespace.project_uuid", &["project_uuid"]),
            ("namespace.mission_slug", &["mission_slug"]),
        ],
    ),
];

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

/// The exact row count as of a `data_version`, kept across our own commits.
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
    count: Option<CachedCount>,
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

/// Refuse, before SQLite touches it, a non-empty file that does not start with SQLite's magic.
fn check_header(path: &Path) -> Result<(), QueueError> {
    let mut file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(QueueError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut header = [0u8; 16];
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(QueueError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
    if read == 0 || (read == header.len() && header == *b"SQLite format 3\0") {
        return Ok(());
    }
    Err(QueueError::Corrupt {
        path: path.to_path_buf(),
        detail: "not an SQLite database: the file header is wrong".to_owned(),
    })
}

impl Queue {
    /// Open (creating file and directory if needed) and upgrade the queue at `path`.
    pub fn open(path: impl Into<PathBuf>, options: QueueOptions) -> Result<Self, QueueError> {
        let path = path.into();
        check_header(&path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| QueueError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(&path).map_err(sqlite_err(&path, "open"))?;
        let mut queue = Self {
            conn,
            path,
            options,
            count: None,
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

    fn migrate(&mut self) -> Result<(), QueueError> {
        let found = self.user_version()?;
        if found == SCHEMA_VERSION {
            return Ok(());
        }
        self.refuse_newer(found)?;
        let path = self.path.clone();
        let err = |op| sqlite_err(&path, op);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("begin the schema upgrade"))?;
        // Another process may have upgraded the file while we waited for the lock.
        let found: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err("read user_version"))?;
        if found >= SCHEMA_VERSION {
            drop(tx);
            return if found == SCHEMA_VERSION {
                Ok(())
            } else {
                Err(QueueError::NewerSchema {
                    path,
                    found,
                    supported: SCHEMA_VERSION,
                })
            };
        }
        let columns: Vec<String> = {
            let mut stmt = tx
                .prepare("SELECT name FROM pragma_table_info('queue')")
                .map_err(err("read the queue table"))?;
            stmt.query_map([], |r| r.get(0))
                .map_err(err("read the queue table"))?
                .collect::<Result<_, _>>()
                .map_err(err("read the queue table"))?
        };
        if columns.is_empty() {
            tx.execute_batch(QUEUE_TABLE)
                .map_err(err("create the queue table"))?;
        } else {
            if let Some(missing) = REQUIRED_COLUMNS
                .iter()
                .find(|c| !columns.iter().any(|have| have == *c))
            {
                return Err(QueueError::Incompatible {
                    path,
                    column: (*missing).to_owned(),
                });
            }
            if !columns.iter().any(|c| c == "coalesce_key") {
                tx.execute_batch("ALTER TABLE queue ADD COLUMN coalesce_key TEXT")
                    .map_err(err("add the coalesce_key column"))?;
            }
        }
        tx.execute_batch(QUEUE_INDEXES)
            .map_err(err("create the queue indexes"))?;
        tx.execute_batch(QUARANTINE_TABLE)
            .map_err(err("create the quarantine table"))?;
        tx.execute_batch(CLOCK_FLOOR_TABLE)
            .map_err(err("create the clock floor table"))?;
        tx.execute_batch(SYNC_TABLES)
            .map_err(err("create the rejection and sync_meta tables"))?;
        tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
            .map_err(err("set user_version"))?;
        tx.commit().map_err(err("commit the schema upgrade"))?;
        Ok(())
    }

    /// Queue one gate-checked envelope (see the module docs). One transaction, committed (and,
    /// with [`Durability::Full`], fsynced) before it returns. The Lamport floor is raised to the
    /// envelope's `lamport_clock` in the same transaction.
    #[cfg(test)]
    pub(crate) fn enqueue(&mut self, envelope: &Value) -> Result<EnqueueOutcome, QueueError> {
        self.enqueue_with_floor(envelope, 0)
    }

    /// [`enqueue`](Self::enqueue), with the clock's reservation ([`super::LamportClock::reserved`]):
    /// when the envelope's `lamport_clock` is above the floor this connection last committed,
    /// the floor is raised to `max(lamport_clock, reserved)` in the enqueue's transaction;
    /// otherwise the floor already covers it and is not written. So an emitter whose clock
    /// reserves 64 values at a time writes the floor's page once per 64 events, and after a
    /// power loss that rolled the clock file back the floor is still at or above every queued
    /// value.
    pub(crate) fn enqueue_with_floor(
        &mut self,
        envelope: &Value,
        reserved: u64,
    ) -> Result<EnqueueOutcome, QueueError> {
        let field = |name: &str| -> Result<&str, QueueError> {
            envelope
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| QueueError::InvalidEnvelope {
                    detail: format!("'{name}' is missing or not a string"),
                })
        };
        let event_id = field("event_id")?;
        let event_type = field("event_type")?;
        let data = serde_json::to_string(envelope).map_err(|e| QueueError::InvalidEnvelope {
            detail: e.to_string(),
        })?;
        let key = coalesce_key(envelope);
        let lamport = envelope
            .get("lamport_clock")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let floor = (lamport > self.recorded_floor).then(|| lamport.max(reserved));
        let now = epoch_seconds();
        let max = self.options.max_queue_size.max(1);

        let path = self.path.clone();
        let err = |op| sqlite_err(&path, op);
        let cached = self.count;
        self.count = None; // restored only after a successful commit
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("begin enqueue"))?;

        if let Some(key) = &key {
            let existing: Option<(i64, String)> = tx
                .prepare_cached("SELECT id, event_id FROM queue WHERE coalesce_key = ?1 LIMIT 1")
                .and_then(|mut s| {
                    s.query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(err("look up the coalesce key"))?;
            if let Some((id, replaced_event_id)) = existing {
                tx.prepare_cached(
                    "UPDATE queue SET event_id = ?1, data = ?2, timestamp = ?3 WHERE id = ?4",
                )
                .and_then(|mut s| s.execute(params![event_id, data, now, id]))
                .map_err(err("coalesce"))?;
                raise_floor(&tx, floor).map_err(err("record the Lamport floor"))?;
                let data_version = data_version(&tx).map_err(err("read data_version"))?;
                tx.commit().map_err(err("commit"))?;
                self.note_floor(floor);
                self.count =
                    cached
                        .filter(|c| c.data_version == data_version)
                        .map(|c| CachedCount {
                            data_version,
                            rows: c.rows,
                        });
                return Ok(EnqueueOutcome::Coalesced { replaced_event_id });
            }
        }

        let data_version = data_version(&tx).map_err(err("read data_version"))?;
        let mut known = cached.filter(|c| c.data_version == data_version);
        // INSERT OR REPLACE semantics: a row with this event_id goes first.
        let replaced = tx
            .prepare_cached("DELETE FROM queue WHERE event_id = ?1")
            .and_then(|mut s| s.execute([event_id]))
            .map_err(err("replace"))?;
        if let Some(c) = known.as_mut() {
            c.rows = c.rows.saturating_sub(replaced as u64);
        }

        let mut evicted = 0u64;
        let (min_id, max_id): (Option<i64>, Option<i64>) = tx
            .prepare_cached("SELECT (SELECT min(id) FROM queue), (SELECT max(id) FROM queue)")
            .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(err("bound the queue size"))?;
        let bound = match (min_id, max_id) {
            (Some(lo), Some(hi)) => u64::try_from(hi.saturating_sub(lo)).unwrap_or(0) + 1,
            _ => 0,
        };
        if bound >= max {
            let rows = match known {
                Some(c) => c.rows,
                None => {
                    let n: i64 = tx
                        .query_row("SELECT COUNT(*) FROM queue", [], |r| r.get(0))
                        .map_err(err("count the queue"))?;
                    u64::try_from(n).unwrap_or(0)
                }
            };
            if rows >= max {
                let overflow = rows - max + 1;
                let deleted = tx
                    .prepare_cached(
                        "DELETE FROM queue WHERE id IN (\
                         SELECT id FROM queue ORDER BY timestamp ASC, id ASC LIMIT ?1)",
                    )
                    .and_then(|mut s| s.execute([i64::try_from(overflow).unwrap_or(i64::MAX)]))
                    .map_err(err("evict the oldest events"))?;
                evicted = deleted as u64;
            }
            known = Some(CachedCount {
                data_version,
                rows: rows.saturating_sub(evicted),
            });
        }

        tx.prepare_cached(
            "INSERT INTO queue (event_id, event_type, data, timestamp, coalesce_key) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut s| s.execute(params![event_id, event_type, data, now, key]))
        .map_err(err("insert"))?;
        raise_floor(&tx, floor).map_err(err("record the Lamport floor"))?;
        tx.commit().map_err(err("commit"))?;
        self.note_floor(floor);
        self.count = known.map(|c| CachedCount {
            data_version,
            rows: c.rows + 1,
        });

        if evicted > 0 {
            eprintln!(
                "Offline queue at capacity ({} events). Evicted {} oldest event(s) to make room.\n  \
                 Check auth and connectivity: spec-kitty sync status --check\n  \
                 Drain the queue manually:    spec-kitty sync now",
                thousands(max),
                thousands(evicted)
            );
        }
        Ok(EnqueueOutcome::Inserted { evicted })
    }

    /// After a commit that raised the floor to `floor`.
    fn note_floor(&mut self, floor: Option<u64>) {
        if let Some(f) = floor {
            self.recorded_floor = self.recorded_floor.max(f);
        }
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

    /// The highest Lamport value ever queued in this file (kept across sends and evictions).
    pub fn clock_floor(&self) -> Result<u64, QueueError> {
        let v: Option<i64> = self
            .conn
            .query_row("SELECT value FROM clock_floor WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sqlite_err(&self.path, "read the Lamport floor"))?;
        Ok(v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
    }

    /// The highest `lamport_clock` among queued envelopes (rows that are not JSON are skipped).
    pub fn max_lamport(&self) -> Result<Option<u64>, QueueError> {
        let max: Option<i64> = self
            .conn
            .query_row(
                "SELECT MAX(CAST(json_extract(data, '$.lamport_clock') AS INTEGER)) FROM queue \
                 WHERE json_valid(data)",
                [],
                |r| r.get(0),
            )
            .map_err(sqlite_err(&self.path, "read the highest Lamport value"))?;
        Ok(max.and_then(|m| u64::try_from(m).ok()))
    }

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
        let cached = self.count.take(); // restored only after a successful commit
        let now = Timestamp::now().to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("begin recording the batch results"))?;
        let data_version = data_version(&tx).map_err(err("read data_version"))?;
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
        self.count = cached
            .filter(|c| c.data_version == data_version)
            .map(|c| CachedCount {
                data_version,
                rows: c.rows.saturating_sub(applied.removed),
            });
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

    /// Re-gate every queued row as read back and move the ones that fail (not JSON, or refused
    /// by [`gate`] on the envelope surface: feature-era keys, aggregate `Feature`, missing
    /// `schema_version`, …) into `quarantine` with the violation's code and reason, in one
    /// transaction. Returns the rows quarantined by this call.
    ///
    /// The scan runs in a read transaction, so emitters are not blocked while every row is
    /// parsed; the move re-reads each failing row inside the one write transaction (a row
    /// coalesced or sent in between is judged as it is then).
    pub fn quarantine_invalid(&mut self) -> Result<Vec<QuarantinedRow>, QueueError> {
        let path = self.path.clone();
        let err = |op| sqlite_err(&path, op);
        // Phase 1: find candidates without holding the write lock.
        let mut candidates: Vec<i64> = Vec::new();
        {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Deferred)
                .map_err(err("begin the quarantine scan"))?;
            {
                let mut stmt = tx
                    .prepare("SELECT id, data FROM queue ORDER BY timestamp ASC, id ASC")
                    .map_err(err("read the queue"))?;
                let mut rows = stmt.query([]).map_err(err("read the queue"))?;
                while let Some(row) = rows.next().map_err(err("read the queue"))? {
                    let id: i64 = row.get(0).map_err(err("read the queue"))?;
                    let data: String = row.get::<_, String>(1).unwrap_or_default();
                    if judge(&data).is_some() {
                        candidates.push(id);
                    }
                }
            }
            tx.finish().map_err(err("end the quarantine scan"))?;
        }
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        // Phase 2: re-judge and move, in one transaction.
        self.count = None;
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
            let Some(verdict) = data.as_deref().and_then(judge) else {
                continue;
            };
            if let Some(row) =
                move_to_quarantine(&tx, queue_id, &verdict, &now).map_err(err("quarantine"))?
            {
                moved.push(row);
            }
        }
        tx.commit().map_err(err("commit the quarantine pass"))?;
        Ok(moved)
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

    fn quarantine_verdicts(
        &mut self,
        rows: &[(i64, Verdict)],
    ) -> Result<Vec<QuarantinedRow>, QueueError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let path = self.path.clone();
        let err = |op| sqlite_err(&path, op);
        self.count = None;
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
        self.count = None;
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
            self.count = None;
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
        other.count = None;
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

fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
}

fn queued_event(r: &Row<'_>) -> rusqlite::Result<QueuedEvent> {
    Ok(QueuedEvent {
        id: r.get(0)?,
        event_id: r.get(1)?,
        event_type: r.get(2)?,
        data: r.get(3)?,
        timestamp: r.get(4)?,
        retry_count: r.get(5)?,
    })
}

fn quarantined_row(r: &Row<'_>) -> rusqlite::Result<QuarantinedRow> {
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

fn quarantined_by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<QuarantinedRow>> {
    conn.prepare_cached(&format!(
        "SELECT {QUARANTINED_COLUMNS} FROM quarantine WHERE id = ?1"
    ))?
    .query_row([id], quarantined_row)
    .optional()
}

fn list_quarantined(conn: &Connection) -> rusqlite::Result<Vec<QuarantinedRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {QUARANTINED_COLUMNS} FROM quarantine ORDER BY id ASC"
    ))?;
    let rows = stmt.query_map([], quarantined_row)?;
    rows.collect()
}

/// The one place a queue row moves into `quarantine` (inside the caller's transaction): the row
/// is copied with `verdict` and the time `now`, then deleted from `queue` (its rejection row
/// goes with it, see `REJECTION_TRIGGERS`). `None` when no queue row has that id.
fn move_to_quarantine(
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
struct Verdict {
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
fn judge(data: &str) -> Option<Verdict> {
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

/// Upstream's coalesce key of an envelope (see the module docs); `None` for other event types.
pub fn coalesce_key(envelope: &Value) -> Option<String> {
    let event_type = envelope.get("event_type")?.as_str()?;
    let (_, parts) = COALESCE_RULES.iter().find(|(t, _)| *t == event_type)?;
    let empty = Value::Null;
    let payload = envelope.get("payload").unwrap_or(&empty);
    let lookup = |path: &str| -> Option<&Value> {
        [envelope, payload].into_iter().find_map(|root| {
            path.split('.')
                .try_fold(root, |cur, seg| cur.as_object()?.get(seg))
                .filter(|v| !v.is_null())
        })
    };
    let mut key = String::from(event_type);
    for (path, fallbacks) in *parts {
        let value = lookup(path).or_else(|| fallbacks.iter().find_map(|f| lookup(f)));
        key.push('|');
        match value {
            Some(Value::String(s)) => key.push_str(s),
            Some(other) => key.push_str(&other.to_string()),
            None => {}
        }
    }
    Some(key)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(super) fn opts(max: u64) -> QueueOptions {
        QueueOptions {
            max_queue_size: max,
            durability: Durability::Normal,
        }
    }

    pub(super) fn envelope(n: u32, event_type: &str) -> Value {
        json!({
            "event_id": format!("01JMBY7K8N3QRVX2DPFG5H{n:04}"), "event_type": event_type,
            "aggregate_id": "WP01", "aggregate_type": "WorkPackage", "schema_version": "3.0.0",
            "build_id": "b", "node_id": "n", "lamport_clock": n, "causation_id": null,
            "correlation_id": format!("01JMBY7K8N3QRVX2DPFG5H{n:04}"), "data_tier": 0,
            "timestamp": "2026-04-06T12:00:00.123456+00:00", "team_slug": "local",
            "project_uuid": "550e8400-e29b-41d4-a716-446655440000", "project_slug": "p",
            "git_branch": null, "head_commit_sha": null, "repo_slug": null,
            "payload": {"wp_id": "WP01", "title": "t", "dependencies": [], "mission_slug": "001-x"}
        })
    }

    fn dossier(n: u32, path: &str) -> Value {
        let mut e = envelope(n, "MissionDossierArtifactIndexed");
        e["payload"] = json!({"namespace": {"project_uuid": "u", "mission_slug": "001-x",
            "target_branch": "main", "mission_type": "software-dev", "manifest_version": "1"},
            "artifact_id": {"path": path, "artifact_class": "output", "mission_type": "software-dev"}});
        e
    }

    #[test]
    fn adopting_rows_moves_them_once_and_keeps_rows_already_here() {
        let dir = tempfile::tempdir().unwrap();
        let mut legacy = Queue::open(dir.path().join("queue.db"), opts(100)).unwrap();
        let mut scoped = Queue::open(dir.path().join("queues/q.db"), opts(100)).unwrap();
        for n in 1..=3 {
            legacy.enqueue(&envelope(n, "WPCreated")).unwrap();
        }
        // As after a crash between the two commits: row 2 is already in both files.
        scoped.enqueue(&envelope(2, "WPCreated")).unwrap();
        let before: Vec<i64> = scoped.peek(10).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(scoped.adopt_rows_from(&mut legacy).unwrap(), 3);
        assert!(legacy.is_empty().unwrap());
        let ids: Vec<String> = scoped
            .peek(10)
            .unwrap()
            .into_iter()
            .map(|r| r.event_id)
            .collect();
        assert_eq!(ids.len(), 3, "{ids:?}");
        assert_eq!(
            scoped.peek(10).unwrap()[0].id,
            before[0],
            "the row already here is kept"
        );
        // Nothing left to move; moving a queue into itself does nothing.
        assert_eq!(scoped.adopt_rows_from(&mut legacy).unwrap(), 0);
        let mut same = Queue::open(dir.path().join("queues/q.db"), opts(100)).unwrap();
        assert_eq!(scoped.adopt_rows_from(&mut same).unwrap(), 0);
        assert_eq!(scoped.len().unwrap(), 3);
    }

    #[test]
    fn thousands_separator() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn coalesce_keys_follow_upstream_head() {
        assert_eq!(
            coalesce_key(&dossier(1, "spec.md")).as_deref(),
            Some("MissionDossierArtifactIndexed|u|001-x|spec.md")
        );
        let mut snap = envelope(2, "MissionDossierSnapshotComputed");
        snap["payload"] = json!({"namespace": {"project_uuid": "u", "mission_slug": "001-x"}});
        assert_eq!(
            coalesce_key(&snap).as_deref(),
            Some("MissionDossierSnapshotComputed|u|001-x")
        );
        // Flat (pre-#1047) payloads use the fallbacks; project_uuid then comes from the envelope.
        let mut flat = envelope(3, "MissionDossierArtifactIndexed");
        flat["payload"] = json!({"mission_slug": "001-x", "artifact_key": "k"});
        assert_eq!(
            coalesce_key(&flat).as_deref(),
            Some("MissionDossierArtifactIndexed|550e8400-e29b-41d4-a716-446655440000|001-x|k")
        );
        assert_eq!(coalesce_key(&envelope(4, "WPCreated")), None);
    }

    #[test]
    fn enqueue_peek_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path().join("q.db"), opts(100)).unwrap();
        assert_eq!(q.schema_version().unwrap(), SCHEMA_VERSION);
        for n in 0..3 {
            assert_eq!(
                q.enqueue(&envelope(n, "WPCreated")).unwrap(),
                EnqueueOutcome::Inserted { evicted: 0 }
            );
        }
        // Same event_id again: replaced, not duplicated.
        q.enqueue(&envelope(1, "WPCreated")).unwrap();
        assert_eq!(q.len().unwrap(), 3);
        let rows = q.peek(10).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2].event_id, "01JMBY7K8N3QRVX2DPFG5H0001");
        let back: Value = serde_json::from_str(&rows[0].data).unwrap();
        assert_eq!(back, envelope(0, "WPCreated"));
        assert_eq!(q.integrity_check().unwrap(), "ok");
        assert_eq!(q.max_lamport().unwrap(), Some(2));
    }

    #[test]
    fn dossier_events_coalesce_and_keep_retry_count() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path().join("q.db"), opts(100)).unwrap();
        q.enqueue(&dossier(1, "spec.md")).unwrap();
        q.conn
            .execute("UPDATE queue SET retry_count = 2", [])
            .unwrap();
        let out = q.enqueue(&dossier(2, "spec.md")).unwrap();
        assert_eq!(
            out,
            EnqueueOutcome::Coalesced {
                replaced_event_id: "01JMBY7K8N3QRVX2DPFG5H0001".into()
            }
        );
        q.enqueue(&dossier(3, "plan.md")).unwrap();
        let rows = q.peek(10).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].event_id, "01JMBY7K8N3QRVX2DPFG5H0002");
        assert_eq!(rows[0].retry_count, 2);
    }

    #[test]
    fn cap_evicts_the_oldest_and_counts_stay_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut q = Queue::open(&path, opts(3)).unwrap();
        for n in 0..5 {
            let out = q.enqueue(&envelope(n, "WPCreated")).unwrap();
            let want = if n < 3 { 0 } else { 1 };
            assert_eq!(out, EnqueueOutcome::Inserted { evicted: want }, "{n}");
        }
        let ids: Vec<String> = q
            .peek(10)
            .unwrap()
            .into_iter()
            .map(|r| r.event_id)
            .collect();
        assert_eq!(ids.len(), 3);
        assert!(ids[0].ends_with("0002"));
        // Another connection adds rows behind our back: the cached count is refreshed.
        {
            let mut other = Queue::open(&path, opts(1000)).unwrap();
            for n in 10..14 {
                other.enqueue(&envelope(n, "WPCreated")).unwrap();
            }
        }
        let out = q.enqueue(&envelope(20, "WPCreated")).unwrap();
        assert_eq!(out, EnqueueOutcome::Inserted { evicted: 5 });
        assert_eq!(q.len().unwrap(), 3);
        // Sparse ids (rows deleted in the middle) still count exactly.
        let mut q = Queue::open(&path, opts(3)).unwrap();
        q.conn
            .execute("DELETE FROM queue WHERE event_id LIKE '%0013'", [])
            .unwrap();
        assert_eq!(q.len().unwrap(), 2);
        let out = q.enqueue(&envelope(21, "WPCreated")).unwrap();
        assert_eq!(out, EnqueueOutcome::Inserted { evicted: 0 });
        assert_eq!(q.len().unwrap(), 3);
    }

    #[test]
    fn upstream_database_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue.db");
        {
            // An older upstream queue: no coalesce_key column, no user_version.
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE queue (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE \
                 NOT NULL, event_type TEXT NOT NULL, data TEXT NOT NULL, timestamp INTEGER NOT \
                 NULL, retry_count INTEGER DEFAULT 0);
                 CREATE INDEX idx_timestamp ON queue(timestamp);
                 INSERT INTO queue (event_id, event_type, data, timestamp) VALUES ('e1', 'X', '{}', 1);",
            )
            .unwrap();
        }
        let q = Queue::open(&path, opts(10)).unwrap();
        assert_eq!(q.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(q.len().unwrap(), 1);
        let cols: Vec<String> = q
            .conn
            .prepare("SELECT name FROM pragma_table_info('queue')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(cols.contains(&"coalesce_key".to_owned()));
        let mode: String = q
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn newer_and_foreign_schemas_are_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let newer = dir.path().join("newer.db");
        Connection::open(&newer)
            .unwrap()
            .execute_batch("PRAGMA user_version = 9")
            .unwrap();
        assert!(matches!(
            Queue::open(&newer, opts(10)),
            Err(QueueError::NewerSchema { found: 9, .. })
        ));
        let foreign = dir.path().join("foreign.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE queue (id INTEGER PRIMARY KEY, payload TEXT)")
            .unwrap();
        let err = Queue::open(&foreign, opts(10)).unwrap_err();
        assert!(matches!(err, QueueError::Incompatible { .. }), "{err}");
        let garbage = dir.path().join("garbage.db");
        fs::write(&garbage, b"this is not a database at all, not even close").unwrap();
        let err = Queue::open(&garbage, opts(10)).unwrap_err();
        assert!(matches!(err, QueueError::Corrupt { .. }), "{err}");
        assert_eq!(
            fs::read(&garbage).unwrap(),
            b"this is not a database at all, not even close"
        );
        assert!(!dir.path().join("garbage.db-wal").exists());
    }

    #[test]
    fn a_damaged_schema_page_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        {
            let mut q = Queue::open(&path, opts(10)).unwrap();
            q.enqueue(&envelope(1, "WPCreated")).unwrap();
            q.conn.execute_batch("PRAGMA journal_mode=DELETE").unwrap();
        }
        let mut bytes = fs::read(&path).unwrap();
        // Page 1 after the 100-byte file header holds sqlite_master's b-tree.
        for b in &mut bytes[100..400] {
            *b = 0xA5;
        }
        fs::write(&path, &bytes).unwrap();
        let err = Queue::open(&path, opts(10)).unwrap_err();
        assert!(matches!(err, QueueError::Corrupt { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn quarantine_moves_failing_rows_and_drop_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path().join("q.db"), opts(100)).unwrap();
        q.enqueue(&envelope(1, "WPCreated")).unwrap();
        let mut bad = envelope(2, "WPCreated");
        bad["aggregate_type"] = json!("Feature");
        q.enqueue(&bad).unwrap();
        q.conn
            .execute(
                "INSERT INTO queue (event_id, event_type, data, timestamp) VALUES ('x', 'Y', 'nope', 5)",
                [],
            )
            .unwrap();
        let moved = q.quarantine_invalid().unwrap();
        assert_eq!(moved.len(), 2);
        // In replay order: the hand-written row is older.
        assert_eq!(moved[0].code, CODE_DATA_NOT_JSON);
        assert_eq!(moved[0].data, "nope");
        assert_eq!(moved[1].code, "CONTRACT_VALUE_NOT_ALLOWED");
        assert_eq!(moved[1].field, "aggregate_type");
        assert_eq!(moved[1].event_id, "01JMBY7K8N3QRVX2DPFG5H0002");
        assert_eq!(q.len().unwrap(), 1);
        assert!(q.quarantine_invalid().unwrap().is_empty());
        assert_eq!(q.list_quarantine().unwrap().len(), 2);
        let first = moved[0].id;
        let err = q
            .drop_quarantine(&QuarantineSelection::Ids(vec![first, 999]))
            .unwrap_err();
        assert!(matches!(err, QueueError::NotQuarantined { ref ids } if ids == &[999]));
        assert_eq!(q.list_quarantine().unwrap().len(), 2);
        assert_eq!(
            q.drop_quarantine(&QuarantineSelection::Ids(vec![first]))
                .unwrap(),
            1
        );
        assert_eq!(q.drop_quarantine(&QuarantineSelection::All).unwrap(), 1);
        assert_eq!(q.stats().unwrap().quarantined, 0);
    }
}

#[cfg(test)]
mod clock_floor_tests {
    use super::*;
    use serde_json::json;

    fn env(n: u64, lamport: u64) -> Value {
        json!({"event_id": format!("01JMBY7K8N3QRVX2DPFG5H{n:04}"), "event_type": "WPCreated", "lamport_clock": lamport, "payload": {}})
    }

    const FULL: QueueOptions = QueueOptions {
        max_queue_size: 100,
        durability: Durability::Full,
    };

    #[test]
    fn the_floor_survives_sends_and_only_rises() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut q = Queue::open(&path, FULL).unwrap();
        assert_eq!(q.clock_floor().unwrap(), 0);
        q.enqueue(&env(1, 41)).unwrap();
        q.enqueue(&env(2, 7)).unwrap();
        assert_eq!(q.clock_floor().unwrap(), 41);
        drop(q);
        // Rows leave the queue (sent); the floor stays.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute("DELETE FROM queue", []).unwrap();
        drop(c);
        let q = Queue::open(&path, FULL).unwrap();
        assert_eq!(q.clock_floor().unwrap(), 41);
    }

    #[test]
    fn the_floor_is_written_once_per_clock_reservation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut q = Queue::open(&path, FULL).unwrap();
        q.enqueue_with_floor(&env(1, 1), 64).unwrap();
        assert_eq!(q.clock_floor().unwrap(), 64);
        // Wipe the floor behind the connection's back: events inside the recorded reservation
        // do not write it again.
        let side = rusqlite::Connection::open(&path).unwrap();
        side.execute("UPDATE clock_floor SET value = 0", [])
            .unwrap();
        q.enqueue_with_floor(&env(2, 2), 64).unwrap();
        q.enqueue_with_floor(&env(3, 64), 64).unwrap();
        assert_eq!(q.clock_floor().unwrap(), 0);
        // The first event beyond it records the next reservation.
        q.enqueue_with_floor(&env(4, 65), 128).unwrap();
        assert_eq!(q.clock_floor().unwrap(), 128);
        // A fresh connection records on its first event, and the floor never goes down.
        drop(q);
        let mut q = Queue::open(&path, FULL).unwrap();
        q.enqueue_with_floor(&env(5, 66), 70).unwrap();
        assert_eq!(q.clock_floor().unwrap(), 128);
    }
}

#[cfg(test)]
mod sync_side_tests {
    //! Schema version 3 and the sender's operations: paging, batch results, rejections,
    //! quarantine by the sender and quarantine retry, sync facts.
    use super::*;
    use serde_json::json;

    use super::tests::opts;

    /// A gate-valid WPCreated envelope ([`super::tests::envelope`]).
    fn envelope(n: u32) -> Value {
        super::tests::envelope(n, "WPCreated")
    }

    /// The feature-era key used here (named through the contract, never spelled out in src/).
    fn legacy_key() -> &'static str {
        crate::contract::rules::LEGACY_KEYS[0]
    }

    /// A feature-era envelope: a legacy key in the payload.
    fn feature_era(n: u32) -> Value {
        let mut e = envelope(n);
        e["payload"][legacy_key()] = json!("001-x");
        e
    }

    /// An envelope's JSON without the legacy key (if it has it): gate-valid again.
    fn repaired(data: &str) -> String {
        let mut doc: Value = serde_json::from_str(data).unwrap();
        doc["payload"].as_object_mut().unwrap().remove(legacy_key());
        serde_json::to_string(&doc).unwrap()
    }

    fn dossier(n: u32, path: &str) -> Value {
        let mut e = envelope(n);
        e["event_type"] = json!("MissionDossierArtifactIndexed");
        e["payload"] = json!({"namespace": {"project_uuid": "u", "mission_slug": "001-x"},
            "artifact_id": {"path": path}});
        e
    }

    fn eid(n: u32) -> String {
        format!("01JMBY7K8N3QRVX2DPFG5H{n:04}")
    }

    fn tables(q: &Queue) -> Vec<String> {
        q.conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn rejection_rows(q: &Queue) -> i64 {
        q.conn
            .query_row("SELECT COUNT(*) FROM rejection", [], |r| r.get(0))
            .unwrap()
    }

    fn retry_count(q: &Queue, event_id: &str) -> i64 {
        q.conn
            .query_row(
                "SELECT retry_count FROM queue WHERE event_id = ?1",
                [event_id],
                |r| r.get(0),
            )
            .unwrap()
    }

    fn reject<'a>(event_id: &'a str, reason: &'a str, category: &'a str) -> Ack<'a> {
        Ack::Rejected {
            event_id,
            reason,
            category,
        }
    }

    #[test]
    fn a_version_2_file_upgrades_in_place_and_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let queue_sql;
        {
            // Exactly what the previous build (schema 2) wrote.
            let c = Connection::open(&path).unwrap();
            c.execute_batch(QUEUE_TABLE).unwrap();
            c.execute_batch(QUEUE_INDEXES).unwrap();
            c.execute_batch(QUARANTINE_TABLE).unwrap();
            c.execute_batch(CLOCK_FLOOR_TABLE).unwrap();
            c.execute_batch(
                "INSERT INTO queue (event_id, event_type, data, timestamp, retry_count) VALUES
                    ('e1', 'WPCreated', '{\"lamport_clock\": 7}', 10, 2),
                    ('e2', 'WPCreated', '{}', 11, 0);
                 INSERT INTO quarantine (queue_id, event_id, event_type, data, timestamp, code,
                    surface, field, reason, quarantined_at)
                    VALUES (9, 'e9', 'X', 'nope', 5, 'C', 'envelope', '', 'r', 't');
                 UPDATE clock_floor SET value = 41;
                 PRAGMA user_version = 2;",
            )
            .unwrap();
            queue_sql = c
                .query_row(
                    "SELECT sql FROM sqlite_master WHERE name = 'queue'",
                    [],
                    |r| r.get::<_, String>(0),
                )
                .unwrap();
        }
        let mut q = Queue::open(&path, opts(100)).unwrap();
        assert_eq!(q.schema_version().unwrap(), 3);
        assert_eq!(SCHEMA_VERSION, 3);
        let t = tables(&q);
        assert!(t.contains(&"rejection".to_owned()), "{t:?}");
        assert!(t.contains(&"sync_meta".to_owned()), "{t:?}");
        let rows = q.peek(10).unwrap();
        assert_eq!(
            rows.iter()
                .map(|r| (r.event_id.as_str(), r.retry_count))
                .collect::<Vec<_>>(),
            [("e1", 2), ("e2", 0)]
        );
        assert_eq!(q.list_quarantine().unwrap().len(), 1);
        assert_eq!(q.clock_floor().unwrap(), 41);
        // Upstream's table is untouched.
        let after: String = q
            .conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'queue'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(after, queue_sql);
        // The new tables work, and the file reopens at 3 without another upgrade.
        q.apply_results(&[reject("e2", "no", "unknown")]).unwrap();
        q.set_meta("last_server", "https://x").unwrap();
        drop(q);
        let q = Queue::open(&path, opts(100)).unwrap();
        assert_eq!(q.schema_version().unwrap(), 3);
        assert_eq!(q.rejections().unwrap().len(), 1);
        assert_eq!(q.meta("last_server").unwrap().as_deref(), Some("https://x"));
    }

    #[test]
    fn fresh_and_upstream_files_reach_3_and_4_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = Queue::open(dir.path().join("fresh.db"), opts(10)).unwrap();
        assert_eq!(fresh.schema_version().unwrap(), 3);
        assert_eq!(
            tables(&fresh),
            [
                "clock_floor",
                "quarantine",
                "queue",
                "rejection",
                "sqlite_sequence",
                "sync_meta"
            ]
        );

        let upstream = dir.path().join("upstream.db");
        {
            let c = Connection::open(&upstream).unwrap();
            c.execute_batch(
                "CREATE TABLE queue (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE \
                 NOT NULL, event_type TEXT NOT NULL, data TEXT NOT NULL, timestamp INTEGER NOT \
                 NULL, retry_count INTEGER DEFAULT 0, coalesce_key TEXT);
                 INSERT INTO queue (event_id, event_type, data, timestamp) VALUES ('u1', 'X', '{}', 1);",
            )
            .unwrap();
        }
        let q = Queue::open(&upstream, opts(10)).unwrap();
        assert_eq!(q.schema_version().unwrap(), 3);
        assert!(tables(&q).contains(&"rejection".to_owned()));
        assert_eq!(q.len().unwrap(), 1);
        drop(q);

        let newer = dir.path().join("newer.db");
        Connection::open(&newer)
            .unwrap()
            .execute_batch("CREATE TABLE keep (x); PRAGMA user_version = 4")
            .unwrap();
        let before = fs::read(&newer).unwrap();
        assert!(matches!(
            Queue::open(&newer, opts(10)),
            Err(QueueError::NewerSchema {
                found: 4,
                supported: 3,
                ..
            })
        ));
        assert!(fs::read(&newer).unwrap() == before, "the file was modified");
        assert!(!dir.path().join("newer.db-wal").exists());
    }

    /// 2,500 rows over 13 distinct timestamps in runs of 30 consecutive ids that wrap around
    /// (id order is not timestamp order), so page boundaries fall inside runs of equal
    /// timestamps.
    fn fill_for_paging(q: &Queue, rows: i64) {
        let tx = q.conn.unchecked_transaction().unwrap();
        {
            let mut ins = tx
                .prepare(
                    "INSERT INTO queue (event_id, event_type, data, timestamp) \
                     VALUES (?1, 'X', '{}', ?2)",
                )
                .unwrap();
            for n in 0..rows {
                ins.execute(params![format!("e{n}"), 1_000 + (n / 30) % 13])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }

    #[test]
    fn page_after_visits_every_row_once_in_replay_order() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path().join("q.db"), opts(100_000)).unwrap();
        fill_for_paging(&q, 2_500);
        let mut seen: Vec<(i64, i64)> = Vec::new();
        let mut pages = Vec::new();
        let mut cursor = None;
        // Bounded, so a cursor that does not advance fails instead of hanging.
        for _ in 0..10 {
            let page = q.page_after(cursor, 1_000).unwrap();
            let Some(last) = page.last() else { break };
            cursor = Some(Cursor::from(last));
            pages.push(page.len());
            seen.extend(page.iter().map(|r| (r.timestamp, r.id)));
        }
        assert_eq!(pages, [1_000, 1_000, 500]);
        let mut want: Vec<(i64, i64)> = q
            .conn
            .prepare("SELECT timestamp, id FROM queue")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        want.sort_unstable();
        assert_eq!(seen, want);
        // The boundaries really fall inside runs of equal timestamps.
        assert_eq!(seen[999].0, seen[1_000].0);
        assert_eq!(seen[1_999].0, seen[2_000].0);
        // The cursor order is the replay order.
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(q.peek(3).unwrap(), q.page_after(None, 3).unwrap());
        let last = *seen.last().unwrap();
        assert!(
            q.page_after(
                Some(Cursor {
                    timestamp: last.0,
                    id: last.1
                }),
                10
            )
            .unwrap()
            .is_empty()
        );
    }

    #[test]
    fn queries_use_the_indexes_they_are_meant_to() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path().join("q.db"), opts(100)).unwrap();
        fill_for_paging(&q, 50);
        // Read the plans of the very statements page_after prepares (they are cached by text).
        q.page_after(None, 1).unwrap();
        q.page_after(
            Some(Cursor {
                timestamp: 0,
                id: 0,
            }),
            1,
        )
        .unwrap();
        let plan = |sql: &str| -> String {
            q.conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map([1_000, 3, 10], |r| r.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect::<Vec<_>>()
                .join(" | ")
        };
        let after = plan(&format!(
            "SELECT {QUEUED_COLUMNS} FROM queue WHERE timestamp = ?1 AND id > ?2 \
             UNION ALL \
             SELECT {QUEUED_COLUMNS} FROM queue WHERE timestamp > ?1 \
             ORDER BY 5 ASC, 1 ASC LIMIT ?3"
        ));
        assert!(!after.contains("TEMP B-TREE"), "{after}");
        assert!(
            after.contains("idx_timestamp (timestamp=? AND rowid>?)"),
            "{after}"
        );
        assert!(after.contains("idx_timestamp (timestamp>?)"), "{after}");
        let first = q
            .conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN SELECT {QUEUED_COLUMNS} FROM queue \
                 ORDER BY timestamp ASC, id ASC LIMIT ?1"
            ))
            .unwrap()
            .query_map([10], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
            .join(" | ");
        assert!(!first.contains("TEMP B-TREE"), "{first}");
        assert!(first.contains("idx_timestamp"), "{first}");
        // The rejection queries walk `rejection` and probe the queue, not the reverse.
        for sql in [REJECTED_COUNT, REJECTIONS] {
            let plan: Vec<String> = q
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert!(plan[0].starts_with("SCAN r"), "{plan:?}");
            assert!(
                plan.iter()
                    .any(|l| l.starts_with("SEARCH q") && l.contains("(event_id=?)")),
                "{plan:?}"
            );
        }
    }

    #[test]
    fn apply_results_deletes_bumps_records_and_counts_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path().join("q.db"), opts(4)).unwrap();
        for n in 0..4 {
            q.enqueue(&envelope(n)).unwrap();
        }
        let applied = q
            .apply_results(&[
                Ack::Acknowledged { event_id: &eid(0) },
                reject(&eid(1), "field 'x' is invalid", "schema_mismatch"),
                Ack::Acknowledged { event_id: "gone" },
                reject("also-gone", "?", "unknown"),
                Ack::Acknowledged { event_id: &eid(2) },
                Ack::Acknowledged { event_id: &eid(2) },
            ])
            .unwrap();
        assert_eq!(
            applied,
            AppliedResults {
                removed: 2,
                rejected: 1,
                unknown: 3
            }
        );
        assert_eq!(q.len().unwrap(), 2);
        assert_eq!(retry_count(&q, &eid(1)), 1);
        assert_eq!(retry_count(&q, &eid(3)), 0);
        // A refusal of an event that is not queued records nothing.
        assert_eq!(rejection_rows(&q), 1);
        let first = q.rejections().unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].event_id, eid(1));
        assert_eq!(first[0].event_type, "WPCreated");
        assert_eq!(first[0].reason, "field 'x' is invalid");
        assert_eq!(first[0].category, "schema_mismatch");
        assert_eq!((first[0].rejections, first[0].retry_count), (1, 1));
        assert!(first[0].rejected_at.ends_with("+00:00"), "{first:?}");

        // Refused again: counts go up, the latest reason wins.
        let applied = q
            .apply_results(&[reject(&eid(1), "token expired", "auth_expired")])
            .unwrap();
        assert_eq!(applied.rejected, 1);
        let again = q.rejections().unwrap();
        assert_eq!(again[0].reason, "token expired");
        assert_eq!(again[0].category, "auth_expired");
        assert_eq!((again[0].rejections, again[0].retry_count), (2, 2));
        assert!(again[0].rejected_at >= first[0].rejected_at);
        let stats = q.stats().unwrap();
        assert_eq!((stats.depth, stats.retried, stats.rejected), (2, 1, 1));

        // Acknowledged at last: the row and its rejection go.
        let applied = q
            .apply_results(&[Ack::Acknowledged { event_id: &eid(1) }])
            .unwrap();
        assert_eq!(applied.removed, 1);
        assert_eq!(rejection_rows(&q), 0);
        assert_eq!(q.stats().unwrap().rejected, 0);

        // The cached row count followed the deletions: one row left, three more fit under the
        // cap of 4 (a stale count of 4 would evict at once).
        for n in 10..13 {
            assert_eq!(
                q.enqueue(&envelope(n)).unwrap(),
                EnqueueOutcome::Inserted { evicted: 0 },
                "{n}"
            );
        }
        assert_eq!(
            q.enqueue(&envelope(13)).unwrap(),
            EnqueueOutcome::Inserted { evicted: 1 }
        );
        assert!(q.apply_results(&[]).unwrap() == AppliedResults::default());
    }

    #[test]
    fn apply_results_keeps_the_cached_row_count_exact() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path().join("q.db"), opts(4)).unwrap();
        for n in 0..5 {
            q.enqueue(&envelope(n)).unwrap();
        }
        // The eviction left an exact count (4) in the cache.
        assert!(matches!(q.count, Some(CachedCount { rows: 4, .. })));
        let applied = q
            .apply_results(&[
                Ack::Acknowledged { event_id: &eid(1) },
                Ack::Acknowledged { event_id: &eid(2) },
            ])
            .unwrap();
        assert_eq!(applied.removed, 2);
        assert!(matches!(q.count, Some(CachedCount { rows: 2, .. })));
        // Two more fit under the cap; a stale count of 4 would evict at once.
        for n in 10..12 {
            assert_eq!(
                q.enqueue(&envelope(n)).unwrap(),
                EnqueueOutcome::Inserted { evicted: 0 },
                "{n}"
            );
        }
        assert_eq!(
            q.enqueue(&envelope(12)).unwrap(),
            EnqueueOutcome::Inserted { evicted: 1 }
        );
        assert_eq!(q.len().unwrap(), 4);
    }

    #[test]
    fn apply_results_is_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path().join("q.db"), opts(100)).unwrap();
        for n in 0..3 {
            q.enqueue(&envelope(n)).unwrap();
        }
        // The third result fails inside SQLite, after the first two were applied.
        q.conn
            .execute_batch(&format!(
                "CREATE TEMP TRIGGER boom BEFORE UPDATE OF retry_count ON queue \
                 WHEN new.event_id = '{}' BEGIN SELECT RAISE(ABORT, 'boom'); END;",
                eid(2)
            ))
            .unwrap();
        let err = q
            .apply_results(&[
                Ack::Acknowledged { event_id: &eid(0) },
                reject(&eid(1), "r", "unknown"),
                reject(&eid(2), "r", "unknown"),
            ])
            .unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
        assert_eq!(q.len().unwrap(), 3);
        assert_eq!(retry_count(&q, &eid(1)), 0);
        assert_eq!(rejection_rows(&q), 0);
        // The connection is usable afterwards and the count cache was not corrupted.
        q.conn.execute_batch("DROP TRIGGER boom").unwrap();
        let applied = q
            .apply_results(&[Ack::Acknowledged { event_id: &eid(0) }])
            .unwrap();
        assert_eq!(applied.removed, 1);
        assert_eq!(q.len().unwrap(), 2);
    }

    #[test]
    fn rejections_follow_their_queue_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut q = Queue::open(&path, opts(3)).unwrap();
        q.enqueue(&envelope(1)).unwrap();
        q.enqueue(&dossier(2, "spec.md")).unwrap();
        q.enqueue(&envelope(3)).unwrap();
        let all = [eid(1), eid(2), eid(3)];
        let refuse = |q: &mut Queue, ids: &[String]| {
            let acks: Vec<Ack<'_>> = ids.iter().map(|e| reject(e, "r", "unknown")).collect();
            q.apply_results(&acks).unwrap();
        };
        refuse(&mut q, &all);
        assert_eq!(q.stats().unwrap().rejected, 3);

        // Coalescing gives the dossier row another event_id: its rejection goes.
        assert!(matches!(
            q.enqueue(&dossier(4, "spec.md")).unwrap(),
            EnqueueOutcome::Coalesced { .. }
        ));
        assert_eq!(rejection_rows(&q), 2);
        // Re-queueing the same event_id replaces the row (retry_count 0): its rejection goes.
        q.enqueue(&envelope(3)).unwrap();
        assert_eq!(rejection_rows(&q), 1);
        // Eviction (cap 3) removes the oldest row, event 1, and its rejection.
        refuse(&mut q, &[eid(3)]);
        assert_eq!(rejection_rows(&q), 2);
        assert_eq!(
            q.enqueue(&envelope(5)).unwrap(),
            EnqueueOutcome::Inserted { evicted: 1 }
        );
        assert_eq!(q.len().unwrap(), 3);
        assert_eq!(rejection_rows(&q), 1);
        let left = q.rejections().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].event_id, eid(3));
        // Quarantined: no longer queued, no longer rejected.
        let violation = gate(Surface::Envelope, &json!([])).unwrap_err();
        let id = q.peek(10).unwrap()[1].id;
        assert_eq!(q.peek(10).unwrap()[1].event_id, eid(3));
        q.quarantine_rows(&[(id, &violation)]).unwrap();
        assert_eq!(rejection_rows(&q), 0);

        // Another program (upstream) deletes a refused row: the leftover rejection row is
        // hidden, not counted.
        refuse(&mut q, &[eid(5)]);
        assert_eq!(q.stats().unwrap().rejected, 1);
        Connection::open(&path)
            .unwrap()
            .execute("DELETE FROM queue WHERE event_id = ?1", [eid(5)])
            .unwrap();
        assert_eq!(rejection_rows(&q), 1);
        assert_eq!(q.stats().unwrap().rejected, 0);
        assert!(q.rejections().unwrap().is_empty());
        // A later acknowledgement of that event id clears it.
        let applied = q
            .apply_results(&[Ack::Acknowledged { event_id: &eid(5) }])
            .unwrap();
        assert_eq!(applied.unknown, 1);
        assert_eq!(rejection_rows(&q), 0);
    }

    #[test]
    fn rejections_are_listed_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path().join("q.db"), opts(100)).unwrap();
        for n in 0..3 {
            q.enqueue(&envelope(n)).unwrap();
        }
        for n in [2, 0, 1] {
            q.apply_results(&[reject(&eid(n), "r", "unknown")]).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        let order: Vec<String> = q
            .rejections()
            .unwrap()
            .into_iter()
            .map(|r| r.event_id)
            .collect();
        assert_eq!(order, [eid(2), eid(0), eid(1)]);
    }

    #[test]
    fn quarantine_rows_moves_given_rows_and_skips_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path().join("q.db"), opts(100)).unwrap();
        q.enqueue(&envelope(1)).unwrap();
        q.enqueue(&envelope(2)).unwrap();
        q.apply_results(&[reject(&eid(1), "r", "unknown")]).unwrap();
        let rows = q.peek(10).unwrap();
        let violation = gate(Surface::Envelope, &feature_era(1)).unwrap_err();
        let moved = q
            .quarantine_rows(&[
                (rows[0].id, &violation),
                (rows[0].id, &violation),
                (999, &violation),
            ])
            .unwrap();
        assert_eq!(moved.len(), 1);
        let m = &moved[0];
        assert_eq!(
            (m.queue_id, m.event_id.as_str()),
            (rows[0].id, eid(1).as_str())
        );
        assert_eq!(m.code, violation.code());
        assert_eq!(m.surface, "envelope");
        assert_eq!(m.field, violation.field);
        assert_eq!(m.field, format!("payload.{}", legacy_key()));
        assert_eq!(m.reason, violation.describe());
        assert_eq!(m.retry_count, 1);
        assert_eq!(m.data, rows[0].data);
        assert_eq!(q.list_quarantine().unwrap(), moved);
        assert_eq!(q.len().unwrap(), 1);

        let not_json = q
            .quarantine_row_reason(
                rows[1].id,
                CODE_DATA_NOT_JSON,
                Surface::Envelope.name(),
                "",
                "the stored data is not JSON: x",
            )
            .unwrap()
            .unwrap();
        assert_eq!(not_json.code, CODE_DATA_NOT_JSON);
        assert_eq!(not_json.reason, "the stored data is not JSON: x");
        assert!(q.is_empty().unwrap());
        assert_eq!(
            q.quarantine_row_reason(rows[1].id, "C", "s", "", "r")
                .unwrap(),
            None
        );
        assert_eq!(q.list_quarantine().unwrap().len(), 2);
        assert!(q.quarantine_rows(&[]).unwrap().is_empty());
    }

    #[test]
    fn retry_restores_rows_that_now_pass_and_keeps_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path().join("q.db"), opts(100)).unwrap();
        q.enqueue(&envelope(1)).unwrap();
        q.enqueue(&feature_era(2)).unwrap();
        q.enqueue(&feature_era(3)).unwrap();
        q.enqueue(&envelope(4)).unwrap();
        q.apply_results(&[reject(&eid(3), "r", "unknown")]).unwrap();
        let moved = q.quarantine_invalid().unwrap();
        assert_eq!(moved.len(), 2);
        let (feature, fixed) = (moved[0].clone(), moved[1].clone());
        assert_eq!(fixed.retry_count, 1);
        assert_eq!(q.len().unwrap(), 2);

        // Unknown ids: an error, and nothing changes.
        q.conn
            .execute(
                "UPDATE quarantine SET reason = 'stale' WHERE id = ?1",
                [feature.id],
            )
            .unwrap();
        let err = q
            .retry_quarantine(&QuarantineSelection::Ids(vec![feature.id, 999]))
            .unwrap_err();
        assert!(matches!(err, QueueError::NotQuarantined { ref ids } if ids == &[999]));
        assert_eq!(q.list_quarantine().unwrap()[0].reason, "stale");

        // Nothing changed in the contract: both stay, the stale reason is recomputed.
        let out = q.retry_quarantine(&QuarantineSelection::All).unwrap();
        assert!(out.restored.is_empty());
        assert_eq!(out.still_refused.len(), 2);
        assert_eq!(out.still_refused[0].reason, feature.reason);
        assert_eq!(out.still_refused[0].quarantined_at, feature.quarantined_at);
        assert_eq!(q.list_quarantine().unwrap(), out.still_refused);

        // The row is repaired (now gate-valid): it goes back where it was, retry_count 0.
        let repaired = serde_json::to_string(&envelope(3)).unwrap();
        q.conn
            .execute(
                "UPDATE quarantine SET data = ?2 WHERE id = ?1",
                params![fixed.id, repaired],
            )
            .unwrap();
        let out = q
            .retry_quarantine(&QuarantineSelection::Ids(vec![
                fixed.id, feature.id, fixed.id,
            ]))
            .unwrap();
        assert_eq!(out.restored.len(), 1);
        assert_eq!(out.restored[0].id, fixed.id);
        assert_eq!(out.restored[0].queue_id, fixed.queue_id);
        assert_eq!(out.still_refused.len(), 1);
        assert_eq!(out.still_refused[0].id, feature.id);
        assert_eq!(
            out.still_refused[0].field,
            format!("payload.{}", legacy_key())
        );
        let queue: Vec<QueuedEvent> = q.peek(10).unwrap();
        let back = queue.iter().find(|r| r.event_id == eid(3)).unwrap();
        assert_eq!(back.id, fixed.queue_id);
        assert_eq!(back.retry_count, 0);
        assert_eq!(back.timestamp, fixed.timestamp);
        assert_eq!(back.data, repaired);
        assert_eq!(
            queue.iter().map(|r| r.event_id.clone()).collect::<Vec<_>>(),
            [eid(1), eid(3), eid(4)],
            "replays in its original place"
        );
        let left = q.list_quarantine().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id, feature.id);
        assert_eq!(q.stats().unwrap().depth, 3);
    }

    #[test]
    fn retry_keeps_an_already_queued_copy_and_takes_a_new_id_when_its_own_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path().join("q.db"), opts(100)).unwrap();
        q.enqueue(&feature_era(1)).unwrap();
        q.enqueue(&feature_era(2)).unwrap();
        q.enqueue(&dossier(3, "spec.md")).unwrap();
        let ids: Vec<i64> = q.peek(10).unwrap().iter().map(|r| r.id).collect();
        let violation = gate(Surface::Envelope, &feature_era(1)).unwrap_err();
        let moved = q
            .quarantine_rows(&[
                (ids[0], &violation),
                (ids[1], &violation),
                (ids[2], &violation),
            ])
            .unwrap();
        assert_eq!(moved.len(), 3);
        // Event 1 is queued again meanwhile (valid now); event 2's old id is taken by another
        // row; a later dossier event with the same coalesce key is queued.
        q.enqueue(&envelope(1)).unwrap();
        q.conn
            .execute(
                "INSERT INTO queue (id, event_id, event_type, data, timestamp) \
                 VALUES (?1, 'other', 'X', '{}', 1)",
                [ids[1]],
            )
            .unwrap();
        q.enqueue(&dossier(4, "spec.md")).unwrap();
        for m in &moved {
            q.conn
                .execute(
                    "UPDATE quarantine SET data = ?2 WHERE id = ?1",
                    params![m.id, repaired(&m.data)],
                )
                .unwrap();
        }
        let before = q.peek(10).unwrap();
        let out = q.retry_quarantine(&QuarantineSelection::All).unwrap();
        assert_eq!(out.restored.len(), 3, "{out:?}");
        assert!(out.still_refused.is_empty());
        assert!(q.list_quarantine().unwrap().is_empty());
        let after = q.peek(10).unwrap();
        // Event 1: the queued row is kept as it was.
        let one = before.iter().find(|r| r.event_id == eid(1)).unwrap();
        assert_eq!(out.restored[0].queue_id, one.id);
        assert!(after.contains(one));
        // Event 2: back with a new id.
        let two = after.iter().find(|r| r.event_id == eid(2)).unwrap();
        assert_ne!(two.id, ids[1]);
        assert_eq!(out.restored[1].queue_id, two.id);
        assert_eq!(two.retry_count, 0);
        // Event 3: superseded by the later dossier event 4 with the same key.
        assert!(after.iter().all(|r| r.event_id != eid(3)));
        let four = after.iter().find(|r| r.event_id == eid(4)).unwrap();
        assert_eq!(out.restored[2].queue_id, four.id);
        assert_eq!(after.len(), before.len() + 1);
    }

    #[test]
    fn sync_meta_set_read_clear_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut q = Queue::open(&path, opts(10)).unwrap();
        assert_eq!(q.meta("last_error").unwrap(), None);
        q.set_meta("last_error", "HTTP 500").unwrap();
        q.set_meta("last_error", "timeout").unwrap();
        q.set_meta("last_sync_at", "2026-04-06T12:00:00.123456+00:00")
            .unwrap();
        assert_eq!(q.meta("last_error").unwrap().as_deref(), Some("timeout"));
        drop(q);
        let mut q = Queue::open(&path, opts(10)).unwrap();
        assert_eq!(q.meta("last_error").unwrap().as_deref(), Some("timeout"));
        assert!(q.clear_meta("last_error").unwrap());
        assert!(!q.clear_meta("last_error").unwrap());
        assert_eq!(q.meta("last_error").unwrap(), None);
        assert!(q.meta("last_sync_at").unwrap().is_some());
    }

    /// Timings on a 100,000-row queue with `Durability::Full` (one fsync per commit). Run with
    /// `cargo test --release --lib sync_side_tests::timings -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing report, not a check"]
    fn timings() {
        use std::time::Instant;
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(
            dir.path().join("q.db"),
            QueueOptions {
                max_queue_size: 200_000,
                durability: Durability::Full,
            },
        )
        .unwrap();
        {
            // 100,000 realistic rows at 20,000 a second: 5 distinct timestamps.
            let data = serde_json::to_string(&envelope(1)).unwrap();
            let tx = q.conn.unchecked_transaction().unwrap();
            {
                let mut ins = tx
                    .prepare(
                        "INSERT INTO queue (event_id, event_type, data, timestamp) \
                         VALUES (?1, 'WPCreated', ?2, ?3)",
                    )
                    .unwrap();
                for n in 0..100_000i64 {
                    ins.execute(params![format!("ev-{n:06}"), data, 1_000 + n / 20_000])
                        .unwrap();
                }
            }
            tx.commit().unwrap();
        }
        // page_after: a full walk, and the worst page (cursor deep inside one second).
        let t = Instant::now();
        let mut cursor = None;
        let mut pages = 0;
        while let Some(last) = q.page_after(cursor, 1_000).unwrap().last() {
            cursor = Some(Cursor::from(last));
            pages += 1;
        }
        let walk = t.elapsed();
        let t = Instant::now();
        let page = q
            .page_after(
                Some(Cursor {
                    timestamp: 1_002,
                    id: 59_000,
                }),
                1_000,
            )
            .unwrap();
        let one = t.elapsed();
        assert_eq!(page.len(), 1_000);
        eprintln!(
            "page_after: {pages} pages of 1000 over 100,000 rows in {walk:?} ({:?}/page); one page mid-second {one:?}",
            walk / pages
        );
        // apply_results: drain by batches of 1000 acknowledgements, then 1000 refusals.
        let mut times = Vec::new();
        for batch in 0..10 {
            let ids: Vec<String> = (batch * 1_000..(batch + 1) * 1_000)
                .map(|n| format!("ev-{n:06}"))
                .collect();
            let acks: Vec<Ack<'_>> = ids
                .iter()
                .map(|e| Ack::Acknowledged { event_id: e })
                .collect();
            let t = Instant::now();
            let applied = q.apply_results(&acks).unwrap();
            times.push(t.elapsed());
            assert_eq!(applied.removed, 1_000);
        }
        times.sort();
        eprintln!(
            "apply_results, 1000 acknowledgements: median {:?}, max {:?}",
            times[times.len() / 2],
            times[times.len() - 1]
        );
        let ids: Vec<String> = (50_000..51_000).map(|n| format!("ev-{n:06}")).collect();
        let acks: Vec<Ack<'_>> = ids
            .iter()
            .map(|e| reject(e, "field 'x' is invalid", "schema_mismatch"))
            .collect();
        let t = Instant::now();
        q.apply_results(&acks).unwrap();
        let first = t.elapsed();
        let t = Instant::now();
        q.apply_results(&acks).unwrap();
        eprintln!(
            "apply_results, 1000 refusals: {first:?} (new rejection rows), {:?} (updates)",
            t.elapsed()
        );
        let t = Instant::now();
        let stats = q.stats().unwrap();
        let all_stats = t.elapsed();
        let t = Instant::now();
        let rejected: i64 = q.conn.query_row(REJECTED_COUNT, [], |r| r.get(0)).unwrap();
        let count = t.elapsed();
        let t = Instant::now();
        let listed = q.rejections().unwrap();
        eprintln!(
            "with 1000 rejected of 90,000: stats {all_stats:?} (of which the rejected count \
             {count:?}), rejections() {:?}",
            t.elapsed()
        );
        assert_eq!(
            (stats.rejected, rejected, listed.len()),
            (1_000, 1_000, 1_000)
        );
    }
}
