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
//! `json.dumps(data, indent=2)`), replaced atomically (temp file in the same directory, rename)
//! on every tick. The clock is machine-global, not per project.
//!
//! * [`LamportClock::tick`]: `value + 1`, for a local event.
//! * [`LamportClock::receive`]: `max(value, remote) + 1`, for a remote event.
//! * `node_id` is the first 12 hex digits of `sha256("host:user")`
//!   ([`crate::identity::generate_node_id`]); a node id already in the file is kept.
//!
//! # Where we go further than upstream
//!
//! * **Cross-process lock.** Upstream has none, so two CLIs can hand out the same value. Here
//!   every tick takes an exclusive `flock` on `clock.json.lock` (next to `clock.json`), re-reads
//!   the file, advances from `max(file, memory)`, writes, and releases the lock, so values handed
//!   out on one machine are unique and increasing. Upstream ignores the lock file.
//! * **Recovery is loud.** A clock file that cannot be read or parsed, or whose `value` is not a
//!   non-negative integer or whose `node_id` is not a non-empty string, is recovered field by
//!   field (a bad `value` → 0, a bad `node_id` → a fresh one) with **one** warning line on stderr
//!   per clock; upstream resets silently. A clock file that does not exist is the normal first
//!   use and is created silently, unless events are still queued: then the clock was lost, and
//!   the emitter prints the one warning line (see [`super::Emitter::open_in`]).
//! * **Durability follows the queue's** ([`Durability`]): with `Full` the new file is fsynced
//!   before the rename and the directory after it; with `Normal` an atomic swap without fsync
//!   (safe against a killed process, not against power loss), as upstream. On Linux the swap
//!   exchanges `clock.json` with a kept `clock.json.next` (see `replace_without_sync`).
//! * **No step back after a recovery.** When the file had no usable value, the emitter raises
//!   the clock above the highest `lamport_clock` still in the queue
//!   ([`LamportClock::raise_floor`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Durability;
use crate::contract::Timestamp;
use crate::identity::generate_node_id;
use crate::repo::write_atomic;

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
    /// Load the clock at `path` (normally [`super::SpecKittyHome::clock_path`]). Never fails: a
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

    /// Advance for a local event and persist; returns the new value.
    pub fn tick(&mut self) -> Result<u64, ClockError> {
        self.advance(0)
    }

    /// Advance past a received remote value (`max(local, remote) + 1`) and persist.
    pub fn receive(&mut self, remote: u64) -> Result<u64, ClockError> {
        self.advance(remote)
    }

    fn advance(&mut self, floor: u64) -> Result<u64, ClockError> {
        self.lock()?;
        let result = self.advance_locked(floor);
        // The file stays open for the next tick; only the lock is released.
        if let Some(file) = &self.lock_file {
            let _ = file.unlock();
        }
        result
    }

    fn advance_locked(&mut self, floor: u64) -> Result<u64, ClockError> {
        let on_disk = self.read();
        if let Some(problem) = on_disk.problem {
            self.warn(&problem);
        }
        let base = self.value.max(on_disk.value.unwrap_or(0)).max(floor);
        let next = base.checked_add(1).ok_or_else(|| ClockError::Exhausted {
            path: self.path.clone(),
        })?;
        self.save(next)?;
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
                fs::create_dir_all(dir).map_err(err)?;
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
        let write = || -> io::Result<()> {
            match self.durability {
                Durability::Full => write_atomic(&self.path, text.as_bytes()),
                Durability::Normal => replace_without_sync(&self.path, text.as_bytes()),
            }
        };
        write().map_err(|source| ClockError::Write {
            path: self.path.clone(),
            source,
        })
    }

    fn read(&self) -> Loaded {
        let bytes = match fs::read(&self.path) {
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

/// Replace `path` atomically (safe against a killed process), without fsync.
///
/// On Linux the new content is written in place into `clock.json.next` and then *exchanged*
/// with `clock.json` (`renameat2(RENAME_EXCHANGE)`): `clock.json` always exists with either the
/// old or the new content, as with a rename, and `clock.json.next` keeps the previous content
/// for the next tick to overwrite. The file is kept rather than recreated because creating,
/// renaming over and deleting files costs metadata work, and a rename over an existing file
/// makes ext4 (`auto_da_alloc`) write the new file's data out before returning (about 0.5 ms
/// here), which would dominate an emit. Callers hold the clock lock, so only one process writes
/// `clock.json.next` at a time. Elsewhere, or where exchange is unsupported: temp file + rename.
fn replace_without_sync(path: &Path, contents: &[u8]) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    if swap_in(path, contents)? {
        return Ok(());
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp-").suffix(".partial");
    #[cfg(unix)]
    {
        // Keep the file's mode (0644 for a new one), as `write_atomic` does.
        use std::os::unix::fs::PermissionsExt;
        let perms = fs::metadata(path)
            .map(|m| m.permissions())
            .unwrap_or_else(|_| fs::Permissions::from_mode(0o644));
        builder.permissions(perms);
    }
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The Linux path of [`replace_without_sync`]; `Ok(false)` when exchange is unsupported.
#[cfg(target_os = "linux")]
fn swap_in(path: &Path, contents: &[u8]) -> io::Result<bool> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};

    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;

    let mut next = path.as_os_str().to_owned();
    next.push(".next");
    let next = PathBuf::from(next);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    // Opened by name every time: after an exchange the name refers to the previous clock file,
    // never to the live one.
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(&next)?;
    file.write_all_at(contents, 0)?;
    file.set_len(contents.len() as u64)?;
    drop(file);
    match renameat_with(CWD, &next, CWD, path, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        // No clock.json yet: a plain rename creates it.
        Err(Errno::NOENT) => fs::rename(&next, path).map(|()| true),
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
            let _ = fs::remove_file(&next);
            Ok(false)
        }
        Err(e) => Err(e.into()),
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
        assert!(text.starts_with("{\n  \"value\": 12,\n  \"node_id\": \""));
        assert!(!text.ends_with('\n'));
        let doc: Value = serde_json::from_str(&text).unwrap();
        let ts = doc["updated_at"].as_str().unwrap();
        assert!(ts.ends_with("+00:00") && ts.len() == 32, "{ts}");
        // A second clock continues from the file.
        let mut again = clock_in(dir.path());
        assert_eq!(again.value(), 12);
        assert_eq!(again.tick().unwrap(), 13);
        // The first, stale in memory, still advances past the file.
        assert_eq!(clock.tick().unwrap(), 14);
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
    fn normal_durability_swaps_in_a_whole_file_every_tick() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock.json");
        let mut clock = LamportClock::load(&path, Durability::Normal);
        for want in 1..=20 {
            assert_eq!(clock.tick().unwrap(), want);
            let doc: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
            assert_eq!(doc["value"], want);
        }
        // A damaged spare file is simply overwritten.
        let next = dir.path().join("clock.json.next");
        fs::write(
            &next,
            "garbage that is longer than any clock file would ever be, really",
        )
        .unwrap();
        assert_eq!(clock.tick().unwrap(), 21);
        let doc: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(doc["value"], 21);
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
        let mut all: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort_unstable();
        let len = all.len();
        all.dedup();
        assert_eq!(all.len(), len, "duplicate Lamport values");
        assert_eq!(*all.last().unwrap(), 200);
    }
}
