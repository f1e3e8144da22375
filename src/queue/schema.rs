//! The queue file's schema: tables, the header check, and the ordered migration steps.

use std::io::{self, Read};
use std::path::Path;

use rusqlite::{Transaction, TransactionBehavior};

use super::*;

/// The schema version this build writes (see the module docs).
pub const SCHEMA_VERSION: i64 = 6;

pub(super) const QUEUE_TABLE: &str = "CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT UNIQUE NOT NULL,
    event_type TEXT NOT NULL,
    data TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    retry_count INTEGER DEFAULT 0,
    coalesce_key TEXT
)";

pub(super) const QUEUE_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS idx_timestamp ON queue(timestamp);
CREATE INDEX IF NOT EXISTS idx_retry ON queue(retry_count);
CREATE INDEX IF NOT EXISTS idx_coalesce_key ON queue(coalesce_key);";

pub const QUARANTINE_TABLE: &str = "
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
/// the clock file itself is replaced atomically without fsync (see `app::emitting::open_emitter_in`).
pub(super) const CLOCK_FLOOR_TABLE: &str = "
CREATE TABLE IF NOT EXISTS clock_floor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO clock_floor (id, value)
    SELECT 1, COALESCE(MAX(CAST(json_extract(data, '$.lamport_clock') AS INTEGER)), 0)
    FROM queue WHERE json_valid(data);";

/// Version 3: the server's latest refusal of a still-queued event, and facts about the last sync.
pub(super) const SYNC_TABLES: &str = "
CREATE TABLE IF NOT EXISTS rejection (
    event_id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    category TEXT NOT NULL,
    rejected_at TEXT NOT NULL,
    rejections INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS sync_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);";

/// Version 4: upstream's canonical (v3.1.0, post-cutover) body upload queue, verbatim: the
/// dossier's artifact bodies waiting for `push-content`. A file that already holds the
/// pre-cutover table (columns named by feature-era keys) keeps it untouched: renaming those
/// columns is `spec-kitty upgrade`'s job (see [`body_queue_is_legacy`]).
pub const BODY_QUEUE_TABLE: &str = "
CREATE TABLE IF NOT EXISTS body_upload_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_uuid TEXT NOT NULL,
    mission_slug TEXT NOT NULL,
    target_branch TEXT NOT NULL,
    mission_type TEXT NOT NULL,
    manifest_version TEXT NOT NULL,
    artifact_path TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    hash_algorithm TEXT NOT NULL DEFAULT 'sha256',
    content_body TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    retry_count INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0.0,
    created_at REAL NOT NULL,
    last_error TEXT,
    UNIQUE(project_uuid, mission_slug, target_branch, mission_type, manifest_version, artifact_path, content_hash)
);
CREATE INDEX IF NOT EXISTS idx_body_queue_next_attempt ON body_upload_queue(next_attempt_at);
CREATE INDEX IF NOT EXISTS idx_body_queue_namespace ON body_upload_queue(project_uuid, mission_slug, target_branch);";

/// Per connection (TEMP, never in the queue file, so upstream never sees them): a queue row that
/// leaves the queue, or whose `event_id` changes (coalescing), takes its rejection row with it.
/// This covers every path of ours (acknowledgement, eviction, replacement, coalescing,
/// quarantine); rows deleted by another program (upstream) are hidden by the joins instead.
pub(super) const REJECTION_TRIGGERS: &str = "
CREATE TEMP TRIGGER IF NOT EXISTS queue_row_deleted AFTER DELETE ON queue
BEGIN
    DELETE FROM rejection WHERE event_id = old.event_id;
END;
CREATE TEMP TRIGGER IF NOT EXISTS queue_row_rekeyed AFTER UPDATE OF event_id ON queue
WHEN old.event_id IS NOT new.event_id
BEGIN
    DELETE FROM rejection WHERE event_id = old.event_id;
END;";

/// Columns upstream's queue must have for us to use it (`coalesce_key` may be added).
pub(super) const REQUIRED_COLUMNS: &[&str] = &[
    "id",
    "event_id",
    "event_type",
    "data",
    "timestamp",
    "retry_count",
];

/// Refuse, before SQLite touches it, a non-empty file that does not start with SQLite's magic.
pub(super) fn check_header(path: &Path) -> Result<(), QueueError> {
    // Not through a link, without blocking (a FIFO), a regular file only.
    let mut file = match crate::repo::fence::open_read(path) {
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

/// One schema step: from `to - 1` to `to`.
pub(super) struct Migration {
    pub(super) to: i64,
    /// What the step adds (named in a failed commit's error).
    pub(super) what: &'static str,
    apply: fn(&Transaction<'_>, &Path) -> Result<(), QueueError>,
}

/// The ordered schema steps (see the module docs of `queue`). Every step is additive, so an
/// upstream file (user_version 0) keeps its rows and stays readable by upstream.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        to: 1,
        what: "upstream's queue table (kept with its rows; coalesce_key added if absent), its indexes, and quarantine",
        apply: queue_and_quarantine,
    },
    Migration {
        to: 2,
        what: "the clock_floor table, seeded from the queued Lamport values",
        apply: clock_floor,
    },
    Migration {
        to: 3,
        what: "the rejection and sync_meta tables",
        apply: sync_tables,
    },
    Migration {
        to: 4,
        what: "the body upload queue",
        apply: body_queue,
    },
    Migration {
        to: 5,
        what: "the event type index",
        apply: event_type_index,
    },
    Migration {
        to: 6,
        what: "the row counter queue_rows and its triggers",
        apply: queue_rows,
    },
];

fn queue_and_quarantine(tx: &Transaction<'_>, path: &Path) -> Result<(), QueueError> {
    let err = |op| sqlite_err(path, op);
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
                path: path.to_path_buf(),
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
        .map_err(err("create the quarantine table"))
}

fn clock_floor(tx: &Transaction<'_>, path: &Path) -> Result<(), QueueError> {
    tx.execute_batch(CLOCK_FLOOR_TABLE)
        .map_err(sqlite_err(path, "create the clock floor table"))
}

fn sync_tables(tx: &Transaction<'_>, path: &Path) -> Result<(), QueueError> {
    tx.execute_batch(SYNC_TABLES).map_err(sqlite_err(
        path,
        "create the rejection and sync_meta tables",
    ))
}

/// The columns of `body_upload_queue` (empty when the table does not exist).
pub fn body_queue_columns(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('body_upload_queue')")?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

/// True when `body_upload_queue` still has a pre-cutover column (a feature-era key of the
/// contract); `spec-kitty upgrade` renames them.
pub fn body_queue_is_legacy(columns: &[String]) -> bool {
    columns
        .iter()
        .any(|c| crate::contract::rules::is_legacy_key(c))
}

/// Version 5: per-type counts for `sync status` from an index instead of a table scan.
pub(super) const EVENT_TYPE_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS idx_queue_event_type ON queue(event_type)";

fn event_type_index(tx: &Transaction<'_>, path: &Path) -> Result<(), QueueError> {
    tx.execute_batch(EVENT_TYPE_INDEX)
        .map_err(sqlite_err(path, "create the event type index"))
}

fn queue_rows(tx: &Transaction<'_>, path: &Path) -> Result<(), QueueError> {
    super::rows::install(tx)
        .map(drop)
        .map_err(sqlite_err(path, "create the row counter"))
}

fn body_queue(tx: &Transaction<'_>, path: &Path) -> Result<(), QueueError> {
    let err = |op| sqlite_err(path, op);
    let columns = body_queue_columns(tx).map_err(err("read the body upload queue table"))?;
    if body_queue_is_legacy(&columns) {
        // Left exactly as upstream wrote it; `spec-kitty upgrade` renames the columns.
        return Ok(());
    }
    tx.execute_batch(BODY_QUEUE_TABLE)
        .map_err(err("create the body upload queue"))
}

impl Queue {
    /// Bring the file to [`SCHEMA_VERSION`] by running each missing [`MIGRATIONS`] step in
    /// order, each in its own `BEGIN IMMEDIATE` transaction that also sets `user_version` to
    /// the step's version: a process killed between steps leaves a file at an older version,
    /// which the next open continues from. A file written by a newer build is refused.
    pub(super) fn migrate(&mut self) -> Result<(), QueueError> {
        let found = self.user_version()?;
        if found == SCHEMA_VERSION {
            return Ok(());
        }
        self.refuse_newer(found)?;
        for step in MIGRATIONS {
            self.run_step(step)?;
        }
        Ok(())
    }

    fn run_step(&mut self, step: &Migration) -> Result<(), QueueError> {
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
        if found > SCHEMA_VERSION {
            return Err(QueueError::NewerSchema {
                path,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found >= step.to {
            return Ok(());
        }
        (step.apply)(&tx, &path)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", step.to))
            .map_err(err("set user_version"))?;
        tx.commit().map_err(err(step.what))?;
        Ok(())
    }
}
