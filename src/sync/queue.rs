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
//!
//! Opening a file at version 0 upgrades it in place, in **one** `BEGIN IMMEDIATE` transaction:
//! the `queue` table is created if absent; an upstream table is kept with its rows (an older one
//! without `coalesce_key` gets `ALTER TABLE queue ADD COLUMN coalesce_key TEXT`, as upstream's
//! own upgrade); the indexes and the `quarantine` table are created; `user_version` becomes 1.
//! 2 adds the one-row `clock_floor` table (the highest Lamport value ever queued, updated in
//! each enqueue's transaction); a version-1 file is upgraded in place.
//! A file with a higher `user_version` (a newer spec-kitty-rs) is refused, untouched. Upstream
//! ignores `user_version` and the `quarantine` table, so it keeps reading and writing the file.
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
//! ```
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

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde_json::Value;

use super::Durability;
use super::home::DEFAULT_MAX_QUEUE_SIZE;
use crate::contract::{Surface, Timestamp, gate};

/// The schema version this build writes (see the module docs).
pub const SCHEMA_VERSION: i64 = 2;

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

/// The Lamport floor: the highest `lamport_clock` ever queued in this file, updated in each
/// enqueue's own transaction. It makes the clock durable with the queue's single commit, so the
/// clock file itself is replaced atomically without fsync (see `Emitter::open_in`).
const CLOCK_FLOOR_TABLE: &str = "
CREATE TABLE IF NOT EXISTS clock_floor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO clock_floor (id, value)
    SELECT 1, COALESCE(MAX(CAST(json_extract(data, '$.lamport_clock') AS INTEGER)), 0)
    FROM queue WHERE json_valid(data);";

const RAISE_FLOOR: &str = "INSERT INTO clock_floor (id, value) VALUES (1, ?1) \
    ON CONFLICT(id) DO UPDATE SET value = max(value, excluded.value)";

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

/// Which quarantined rows to drop.
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
        };
        queue.configure()?;
        queue.migrate()?;
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

    fn migrate(&mut self) -> Result<(), QueueError> {
        let found = self.user_version()?;
        if found == SCHEMA_VERSION {
            return Ok(());
        }
        if found > SCHEMA_VERSION {
            return Err(QueueError::NewerSchema {
                path: self.path.clone(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
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
        tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
            .map_err(err("set user_version"))?;
        tx.commit().map_err(err("commit the schema upgrade"))?;
        Ok(())
    }

    /// Queue one gate-checked envelope (see the module docs). One transaction, committed (and,
    /// with [`Durability::Full`], fsynced) before it returns.
    pub(crate) fn enqueue(&mut self, envelope: &Value) -> Result<EnqueueOutcome, QueueError> {
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
            .and_then(Value::as_i64)
            .unwrap_or(0);
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
                tx.prepare_cached(RAISE_FLOOR)
                    .and_then(|mut s| s.execute([lamport]))
                    .map_err(err("record the Lamport floor"))?;
                let data_version = data_version(&tx).map_err(err("read data_version"))?;
                tx.commit().map_err(err("commit"))?;
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
        tx.prepare_cached(RAISE_FLOOR)
            .and_then(|mut s| s.execute([lamport]))
            .map_err(err("record the Lamport floor"))?;
        tx.commit().map_err(err("commit"))?;
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

    /// The highest `lamport_clock` among queued envelopes (rows that are not JSON are skipped).
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
        let err = sqlite_err(&self.path, "read the queue");
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, event_id, event_type, data, timestamp, COALESCE(retry_count, 0) \
                 FROM queue ORDER BY timestamp ASC, id ASC LIMIT ?1",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok(QueuedEvent {
                    id: r.get(0)?,
                    event_id: r.get(1)?,
                    event_type: r.get(2)?,
                    data: r.get(3)?,
                    timestamp: r.get(4)?,
                    retry_count: r.get(5)?,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
    }

    /// Depth, age, per-type counts and the quarantine size.
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
        Ok(QueueStats {
            depth: u64::try_from(depth).unwrap_or(0),
            max_queue_size: self.options.max_queue_size,
            retried: u64::try_from(retried).unwrap_or(0),
            oldest,
            newest,
            by_type,
            quarantined: u64::try_from(quarantined).unwrap_or(0),
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
            let Some((code, surface, field, reason)) = data.as_deref().and_then(judge) else {
                continue;
            };
            tx.prepare_cached(
                "INSERT INTO quarantine (queue_id, event_id, event_type, data, timestamp, \
                 retry_count, coalesce_key, code, surface, field, reason, quarantined_at) \
                 SELECT id, event_id, event_type, CAST(data AS TEXT), timestamp, \
                 COALESCE(retry_count, 0), coalesce_key, ?2, ?3, ?4, ?5, ?6 \
                 FROM queue WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![queue_id, code, surface, field, reason, now]))
            .map_err(err("quarantine"))?;
            moved.push(tx.last_insert_rowid());
            tx.prepare_cached("DELETE FROM queue WHERE id = ?1")
                .and_then(|mut s| s.execute([queue_id]))
                .map_err(err("quarantine"))?;
        }
        tx.commit().map_err(err("commit the quarantine pass"))?;
        let moved: std::collections::HashSet<i64> = moved.into_iter().collect();
        let all = self.list_quarantine()?;
        Ok(all.into_iter().filter(|r| moved.contains(&r.id)).collect())
    }

    /// Every quarantined row, oldest first.
    pub fn list_quarantine(&self) -> Result<Vec<QuarantinedRow>, QueueError> {
        let err = sqlite_err(&self.path, "read the quarantine");
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, queue_id, event_id, event_type, timestamp, retry_count, code, \
                 surface, field, reason, quarantined_at, data FROM quarantine ORDER BY id ASC",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| {
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
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
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

/// Why a stored row must not be sent: `(code, surface, field, reason)`, `None` when it passes.
fn judge(data: &str) -> Option<(String, String, String, String)> {
    let doc: Value = match serde_json::from_str(data) {
        Ok(v) => v,
        Err(e) => {
            return Some((
                CODE_DATA_NOT_JSON.to_owned(),
                Surface::Envelope.name().to_owned(),
                String::new(),
                format!("the stored data is not JSON: {e}"),
            ));
        }
    };
    gate(Surface::Envelope, &doc).err().map(|v| {
        (
            v.code().to_owned(),
            v.surface.name().to_owned(),
            v.field.clone(),
            v.describe(),
        )
    })
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

    fn opts(max: u64) -> QueueOptions {
        QueueOptions {
            max_queue_size: max,
            durability: Durability::Normal,
        }
    }

    fn envelope(n: u32, event_type: &str) -> Value {
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

    #[test]
    fn the_floor_survives_sends_and_only_rises() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let opts = QueueOptions {
            max_queue_size: 100,
            durability: Durability::Full,
        };
        let mut q = Queue::open(&path, opts).unwrap();
        assert_eq!(q.clock_floor().unwrap(), 0);
        q.enqueue(&env(1, 41)).unwrap();
        q.enqueue(&env(2, 7)).unwrap();
        assert_eq!(q.clock_floor().unwrap(), 41);
        drop(q);
        // Rows leave the queue (sent); the floor stays.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute("DELETE FROM queue", []).unwrap();
        drop(c);
        let q = Queue::open(&path, opts).unwrap();
        assert_eq!(q.clock_floor().unwrap(), 41);
    }
}
