//! The Lamport clock in `~/.spec-kitty/clock.json`, as upstream's `sync/clock.py`.
//!
//! # File (same as upstream)
//!
//! ```json
//! {
//!   "value": 42,
//!   "node_id": "d036a097a835",
//!   "updated_at": "2026-04-06T12:00:00.123456+00:00"
//! }
//! ```
//!
//! JSON with an indent of 2, keys in this order, no trailing newline (Python's
//! `json.dumps(data, indent=2)`), replaced atomically (temp file in the same directory, rename).
//! The clock is machine-global, not per project.
//!
//! * [`LamportClock::tick`]: `value + 1`, for a local event.
//! * [`LamportClock::receive`]: `max(value, remote) + 1`, for a remote event.
//! * `node_id` is the first 12 hex digits of `sha256("host:user")`
//!   ([`super::node::generate_node_id`]); a node id already in the file is kept.
//!
//! # Where we go further than upstream
//!
//! * **Cross-process lock.** Upstream has none, so two CLIs can hand out the same value. Here
//!   every write of the file takes an exclusive `flock` on `clock.json.lock` (next to
//!   `clock.json`), re-reads the file, advances from `max(file, memory)`, writes, and releases
//!   the lock, so values handed out on one machine are unique and increasing. Upstream ignores
//!   the lock file.
//! * **Recovery is loud.** A clock file that cannot be read or parsed, or whose `value` is not a
//!   non-negative integer or whose `node_id` is not a non-empty string, is recovered field by
//!   field (a bad `value` → 0, a bad `node_id` → a fresh one) with **one** warning line on stderr
//!   per clock; upstream resets silently. A clock file that does not exist is the normal first
//!   use and is created silently, unless events are still queued: then the clock was lost, and
//!   the emitter prints the one warning line (see `app::emitting::open_emitter_in`).
//! * **Durability follows the queue's** ([`Durability`]): with `Full` the new file is fsynced
//!   before the rename and the directory after it; with `Normal` an atomic swap without fsync
//!   (safe against a killed process, not against power loss), as upstream. On Linux the swap
//!   exchanges `clock.json` with a kept `clock.json.next` (see `replace_without_sync`).
//! * **Leases: the file is written when needed, not at every tick.** Upstream rewrites the file
//!   at every tick. Here the file holds the highest value this clock has *reserved*, which is
//!   never below any value handed out, so every process that reads the file afterwards (ours or
//!   upstream's) continues above every value already used: the Lamport guarantee. A tick
//!   inside the reservation needs no write while the file still holds this clock's own
//!   reservation, and no lock and no read either while `clock.json` is still the very file this
//!   clock last wrote (same inode, size and times); otherwise the tick re-reads the file under
//!   the lock. A reservation starts at one value and doubles each time it is used up, to at
//!   most [`MAX_LEASE`]; it starts again at one whenever another writer has touched the file.
//!   So a command that emits 1, 3, 7 … events leaves the file at exactly its last value, as
//!   upstream would, and a long run writes the file once per 64 events. The price: a process
//!   that stops inside a reservation leaves a gap of at most `MAX_LEASE - 1` unused values;
//!   Lamport values need not be dense.
//! * **No step back after a recovery.** When the file had no usable value, the emitter raises
//!   the clock above the highest `lamport_clock` still in the queue
//!   ([`LamportClock::raise_floor`]).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::node::generate_node_id;
use crate::contract::Timestamp;
use crate::repo::Durability;
use crate::repo::write_durable;

/// Errors of the clock. Reading never fails (a bad file is recovered); writing can.
#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error(
        "cannot lock the Lamport clock {}: {source} (is {} writable?)",
        path.display(),
        path.parent().map(Path::display).map(|d| d.to_string()).unwrap_or_default()
    )]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the Lamport clock {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The clock reached `u64::MAX` (only a hand-edited file can get there).
    #[error(
        "the Lamport clock {} is at its maximum value; delete the file to restart it",
        path.display()
    )]
    Exhausted { path: PathBuf },
}

/// The most values one write of the file reserves (see the module docs).
pub const MAX_LEASE: u64 = 64;

/// The on-disk form, in upstream's key order.
#[derive(Debug, Serialize, Deserialize)]
struct ClockFile<'a> {
    value: u64,
    node_id: &'a str,
    updated_at: String,
}

/// A persistent Lamport clock.
#[derive(Debug)]
pub struct LamportClock {
    path: PathBuf,
    value: u64,
    node_id: String,
    durability: Durability,
    warned: bool,
    /// The file had no usable value at load: `Some(true)` missing, `Some(false)` damaged.
    recovered: Option<bool>,
    /// The value this clock last wrote to the file (0: none yet); ticks up to it need no write
    /// while the file still holds it.
    reserved: u64,
    /// The size of the last reservation (doubles while the reservation stays ours).
    lease: u64,
    /// `clock.json` as this clock's last write left it: while it is unchanged, a tick inside
    /// the reservation needs neither the lock nor a read.
    stamp: Option<FileStamp>,
    /// `clock.json.lock`, opened on the first tick and kept; locked only during a tick.
    lock_file: Option<File>,
}

/// What was found on disk.
struct Loaded {
    value: Option<u64>,
    node_id: Option<String>,
    problem: Option<String>,
}

impl LamportClock {
    /// Load the clock at `path` (normally [`crate::home::SpecKittyHome::clock_path`]). Never fails: a
    /// missing file starts at 0, a corrupt one is recovered with one warning on stderr.
    pub fn load(path: impl Into<PathBuf>, durability: Durability) -> Self {
        let path = path.into();
        let mut clock = Self {
            path,
            value: 0,
            node_id: String::new(),
            durability,
            warned: false,
            recovered: None,
            reserved: 0,
            lease: 1,
            stamp: None,
            lock_file: None,
        };
        // Read under the lock when it can be had, so a concurrent tick is never seen half-done.
        let locked = clock.lock().is_ok();
        let loaded = clock.read();
        if locked && let Some(file) = &clock.lock_file {
            let _ = file.unlock();
        }
        if loaded.value.is_none() {
            clock.recovered = Some(loaded.problem.is_none());
        }
        clock.value = loaded.value.unwrap_or(0);
        clock.node_id = loaded.node_id.unwrap_or_else(generate_node_id);
        if let Some(problem) = loaded.problem {
            clock.warn(&problem);
        }
        clock
    }

    /// The last value handed out (or loaded).
    pub fn value(&self) -> u64 {
        self.value
    }

    /// The highest value this clock has written to its file (0 before its first tick): every
    /// value it has handed out is at or below it. The emitter records it as the queue's Lamport
    /// floor (see `Queue::enqueue_with_floor`).
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file had no usable `value` at load (missing, or recovered from damage).
    pub fn was_recovered(&self) -> bool {
        self.recovered.is_some()
    }

    /// Whether the file did not exist at load (first use, or deleted).
    pub fn was_missing(&self) -> bool {
        self.recovered == Some(true)
    }

    /// Never hand out a value at or below `floor` (in memory; persisted by the next tick). Used
    /// after a recovery with the highest value still queued.
    pub fn raise_floor(&mut self, floor: u64) {
        self.value = self.value.max(floor);
    }

    /// Advance for a local event; returns the new value. The file is written first when the
    /// value is beyond this clock's reservation (see the module docs).
    pub fn tick(&mut self) -> Result<u64, ClockError> {
        self.advance(0)
    }

    /// Advance past a received remote value (`max(local, remote) + 1`), written as by
    /// [`tick`](Self::tick).
    pub fn receive(&mut self, remote: u64) -> Result<u64, ClockError> {
        self.advance(remote)
    }

    fn advance(&mut self, floor: u64) -> Result<u64, ClockError> {
        if let Some(next) = self.advance_in_reservation(floor) {
            return Ok(next);
        }
        self.lock()?;
        let result = self.advance_locked(floor);
        // The file stays open for the next tick; only the lock is released.
        if let Some(file) = &self.lock_file {
            let _ = file.unlock();
        }
        result
    }

    /// The fast path of a tick, without the lock: the next value is inside this clock's
    /// reservation and `clock.json` is the very file its last write left (same inode, size,
    /// modification and change times). Any other writer replaces or rewrites the file and so
    /// sends the tick down the locked path, which re-reads it. (Writers that follow the lock
    /// protocol only ever write values above this reservation, so missing one of them here
    /// would be harmless too.)
    fn advance_in_reservation(&mut self, floor: u64) -> Option<u64> {
        let stamp = self.stamp.as_ref()?;
        let next = self.value.max(floor).checked_add(1)?;
        if next > self.reserved || FileStamp::of(&self.path).as_ref() != Some(stamp) {
            return None;
        }
        self.value = next;
        Some(next)
    }

    fn advance_locked(&mut self, floor: u64) -> Result<u64, ClockError> {
        let on_disk = self.read();
        if let Some(problem) = on_disk.problem {
            self.warn(&problem);
        }
        // The reservation still stands when the file holds exactly what this clock last wrote;
        // then the file's value is not a value anyone has used.
        let ours = self.reserved != 0
            && on_disk.value == Some(self.reserved)
            && on_disk.node_id.as_deref() == Some(self.node_id.as_str());
        let file = if ours { 0 } else { on_disk.value.unwrap_or(0) };
        let base = self.value.max(file).max(floor);
        let next = base.checked_add(1).ok_or_else(|| ClockError::Exhausted {
            path: self.path.clone(),
        })?;
        if ours && next <= self.reserved {
            self.stamp = FileStamp::of(&self.path);
            self.value = next;
            return Ok(next);
        }
        self.lease = if ours {
            self.lease.saturating_mul(2).min(MAX_LEASE)
        } else {
            1
        };
        let reserved = next.saturating_add(self.lease - 1);
        self.stamp = None;
        self.save(reserved)?;
        self.stamp = FileStamp::of(&self.path);
        self.reserved = reserved;
        self.value = next;
        Ok(next)
    }

    /// Take the exclusive lock on `clock.json.lock` (blocking).
    fn lock(&mut self) -> Result<(), ClockError> {
        let mut lock_path = self.path.clone().into_os_string();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        let err = |source| ClockError::Lock {
            path: lock_path.clone(),
            source,
        };
        if self.lock_file.is_none() {
            if let Some(dir) = lock_path.parent() {
                crate::repo::create_private_dir(dir).map_err(err)?;
            }
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(err)?;
            self.lock_file = Some(file);
        }
        match &self.lock_file {
            Some(file) => file.lock().map_err(err),
            None => Err(err(io::Error::other("lock file not open"))),
        }
    }

    fn save(&self, value: u64) -> Result<(), ClockError> {
        let file = ClockFile {
            value,
            node_id: &self.node_id,
            updated_at: Timestamp::now().to_string(),
        };
        let text = serde_json::to_string_pretty(&file).map_err(|e| ClockError::Write {
            path: self.path.clone(),
            source: io::Error::other(e),
        })?;
        let write =
            || -> io::Result<()> { write_durable(&self.path, text.as_bytes(), self.durability) };
        write().map_err(|source| ClockError::Write {
            path: self.path.clone(),
            source,
        })
    }

    fn read(&self) -> Loaded {
        // A regular file, bounded, never through a link (a FIFO would block, /dev/zero never end).
        let bytes = match crate::repo::fence::read_project_file(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Loaded {
                    value: None,
                    node_id: None,
                    problem: None,
                };
            }
            Err(e) => {
                return Loaded {
                    value: None,
                    node_id: None,
                    problem: Some(format!("cannot be read: {e}")),
                };
            }
        };
        let doc: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                return Loaded {
                    value: None,
                    node_id: None,
                    problem: Some(format!("is not valid JSON: {e}")),
                };
            }
        };
        let Value::Object(obj) = doc else {
            return Loaded {
                value: None,
                node_id: None,
                problem: Some("is not a JSON object".to_owned()),
            };
        };
        let mut problems = Vec::new();
        let value = match obj.get("value") {
            Some(v) => {
                let n = v.as_u64();
                if n.is_none() {
                    problems.push(format!("'value' is {v}, not a non-negative integer"));
                }
                n
            }
            None => {
                problems.push("'value' is missing".to_owned());
                None
            }
        };
        let node_id = match obj.get("node_id") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(v) => {
                problems.push(format!("'node_id' is {v}, not a non-empty string"));
                None
            }
            None => {
                problems.push("'node_id' is missing".to_owned());
                None
            }
        };
        Loaded {
            value,
            node_id,
            problem: (!problems.is_empty()).then(|| problems.join(", ")),
        }
    }

    fn warn(&mut self, problem: &str) {
        if self.warned {
            return;
        }
        self.warned = true;
        eprintln!(
            "Warning: Lamport clock {} {problem}; recovered from value {} (or above the highest \
             queued value) with node id {}; the file is rewritten on the next event",
            self.path.display(),
            self.value,
            self.node_id
        );
    }
}

/// What identifies one version of `clock.json` without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    /// `None` when the file cannot be stat'ed, and off Unix (where every tick takes the lock).
    fn of(path: &Path) -> Option<Self> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let m = fs::metadata(path).ok()?;
            Some(Self {
                dev: m.dev(),
                ino: m.ino(),
                len: m.len(),
                mtime: (m.mtime(), m.mtime_nsec()),
                ctime: (m.ctime(), m.ctime_nsec()),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock_in(dir: &Path) -> LamportClock {
        LamportClock::load(dir.join(".spec-kitty/clock.json"), Durability::Full)
    }

    #[test]
    fn tick_and_receive_persist_in_upstream_format() {
        let dir = tempfile::tempdir().unwrap();
        let mut clock = clock_in(dir.path());
        assert_eq!(clock.value(), 0);
        assert_eq!(clock.node_id(), generate_node_id());
        assert_eq!(clock.tick().unwrap(), 1);
        assert_eq!(clock.tick().unwrap(), 2);
        assert_eq!(clock.receive(10).unwrap(), 11);
        assert_eq!(clock.receive(3).unwrap(), 12);
        let text = fs::read_to_string(clock.path()).unwrap();
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"'))
            .filter_map(|l| l.split('"').next())
            .collect();
        assert_eq!(keys, ["value", "node_id", "updated_at"]);
        // Leases 1, 2 and then 4 from 11: the file holds the reservation, 14.
        assert!(text.starts_with("{\n  \"value\": 14,\n  \"node_id\": \""));
        assert!(!text.ends_with('\n'));
        let doc: Value = serde_json::from_str(&text).unwrap();
        let ts = doc["updated_at"].as_str().unwrap();
        assert!(ts.ends_with("+00:00") && ts.len() == 32, "{ts}");
        // A second clock continues from the file, above every value handed out.
        let mut again = clock_in(dir.path());
        assert_eq!(again.value(), 14);
        assert_eq!(again.tick().unwrap(), 15);
        // The first, whose reservation was taken over, advances past the file.
        assert_eq!(clock.tick().unwrap(), 16);
    }

    #[test]
    fn node_id_in_the_file_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock.json");
        fs::write(&path, r#"{"value": 5, "node_id": "abcdefabcdef"}"#).unwrap();
        let mut clock = LamportClock::load(&path, Durability::Normal);
        assert_eq!((clock.value(), clock.node_id()), (5, "abcdefabcdef"));
        assert_eq!(clock.tick().unwrap(), 6);
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .contains("\"abcdefabcdef\"")
        );
    }

    #[test]
    fn corrupt_files_are_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock.json");
        for (text, value, keeps_node) in [
            ("{not json", 0, false),
            ("[]", 0, false),
            (r#"{"value": -1, "node_id": "abcdefabcdef"}"#, 0, true),
            (r#"{"value": "7", "node_id": "abcdefabcdef"}"#, 0, true),
            (r#"{"value": 7, "node_id": ""}"#, 7, false),
            (r#"{"value": 7}"#, 7, false),
            ("", 0, false),
        ] {
            fs::write(&path, text).unwrap();
            let mut clock = LamportClock::load(&path, Durability::Normal);
            assert_eq!(clock.value(), value, "{text}");
            assert_eq!(clock.node_id() == "abcdefabcdef", keeps_node, "{text}");
            assert!(!clock.node_id().is_empty());
            assert_eq!(clock.tick().unwrap(), value + 1);
            // Rewritten in good shape.
            let again = LamportClock::load(&path, Durability::Normal);
            assert_eq!(again.value(), value + 1);
        }
    }

    #[test]
    fn normal_durability_swaps_in_a_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock.json");
        let mut clock = LamportClock::load(&path, Durability::Normal);
        for want in 1..=20 {
            assert_eq!(clock.tick().unwrap(), want);
            assert!(file_value(&path) >= want);
        }
        // A damaged spare file is simply overwritten.
        let next = dir.path().join("clock.json.next");
        fs::write(
            &next,
            "garbage that is longer than any clock file would ever be, really",
        )
        .unwrap();
        assert_eq!(clock.tick().unwrap(), 21);
        assert_eq!(
            file_value(&path),
            31,
            "leases 1, 2, 4, 8, 16 reserve up to 31"
        );
        assert!(!fs::read_dir(dir.path()).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".partial")
        }));
    }

    #[test]
    fn concurrent_clocks_never_share_a_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock.json");
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut clock = LamportClock::load(&path, Durability::Normal);
                    (0..50).map(|_| clock.tick().unwrap()).collect::<Vec<_>>()
                })
            })
            .collect();
        let per_thread: Vec<Vec<u64>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for values in &per_thread {
            assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
        }
        let mut all: Vec<u64> = per_thread.into_iter().flatten().collect();
        all.sort_unstable();
        let len = all.len();
        all.dedup();
        assert_eq!(all.len(), len, "duplicate Lamport values");
        assert!(file_value(&path) >= *all.last().unwrap());
        // Contention shrinks the leases to one value, so the gaps stay small.
        assert!(*all.last().unwrap() < 200 + 4 * MAX_LEASE, "{all:?}");
    }

    fn file_value(path: &Path) -> u64 {
        let doc: Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
        doc["value"].as_u64().unwrap()
    }

    #[test]
    fn the_file_is_written_once_per_lease_and_never_below_a_value_handed_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock.json");
        let mut clock = LamportClock::load(&path, Durability::Normal);
        let mut writes = 0;
        let mut last_file = 0;
        for want in 1..=1000u64 {
            assert_eq!(clock.tick().unwrap(), want);
            let on_disk = file_value(&path);
            assert!(
                on_disk >= want && on_disk - want < MAX_LEASE,
                "{want} vs {on_disk}"
            );
            assert_eq!(clock.reserved(), on_disk);
            if on_disk != last_file {
                writes += 1;
                last_file = on_disk;
            }
            // 1, 3, 7, 15 … ticks leave the file exactly at the last value, as upstream.
            if (want + 1).is_power_of_two() && want < 2 * MAX_LEASE {
                assert_eq!(on_disk, want);
            }
        }
        // Leases 1, 2, 4, 8, 16, 32 cover 63 values, then one write per 64.
        assert_eq!(writes, 6 + (1000 - 63_u64).div_ceil(MAX_LEASE));
    }

    #[test]
    fn another_writer_ends_the_lease_and_values_never_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock.json");
        let mut a = LamportClock::load(&path, Durability::Normal);
        for want in 1..=4 {
            assert_eq!(a.tick().unwrap(), want);
        }
        assert_eq!(file_value(&path), 7);
        // Another clock (another process) starts above A's reservation.
        let mut b = LamportClock::load(&path, Durability::Normal);
        assert_eq!(b.tick().unwrap(), 8);
        assert_eq!(file_value(&path), 8);
        // A sees the file moved: it jumps above it and writes again.
        assert_eq!(a.tick().unwrap(), 9);
        assert_eq!(file_value(&path), 9);
        // A lock-free writer (upstream's CLI) puts a stale, lower value back: the next tick
        // rewrites the file instead of trusting the old reservation.
        let node = a.node_id().to_owned();
        fs::write(
            &path,
            format!("{{\"value\": 3, \"node_id\": \"{node}\", \"updated_at\": \"x\"}}"),
        )
        .unwrap();
        assert_eq!(a.tick().unwrap(), 10);
        assert_eq!(file_value(&path), 10);
        // Upstream's way of writing (a new file renamed over the old one), with a stale value of
        // the same length: also noticed.
        let stale = fs::read_to_string(&path)
            .unwrap()
            .replace("\"value\": 10", "\"value\":  3");
        let tmp = dir.path().join(".atomic-x.tmp");
        fs::write(&tmp, stale).unwrap();
        fs::rename(&tmp, &path).unwrap();
        assert_eq!(a.tick().unwrap(), 11);
        assert_eq!(file_value(&path), 11);
    }
}
