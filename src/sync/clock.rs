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
//!   per clock; upstream resets silently. A clock file that does not exist yet is the normal first
//!   use and is created silently.
//! * **Durability follows the queue's** ([`Durability`]): with `Full` the new file is fsynced
//!   before the rename and the directory after it; with `Normal` the rename alone (atomic against
//!   a killed process, not against power loss), which is what upstream does.

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
        };
        let loaded = clock.read();
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

    /// Advance for a local event and persist; returns the new value.
    pub fn tick(&mut self) -> Result<u64, ClockError> {
        self.advance(0)
    }

    /// Advance past a received remote value (`max(local, remote) + 1`) and persist.
    pub fn receive(&mut self, remote: u64) -> Result<u64, ClockError> {
        self.advance(remote)
    }

    fn advance(&mut self, floor: u64) -> Result<u64, ClockError> {
        let _lock = self.lock()?;
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

    fn lock(&self) -> Result<File, ClockError> {
        let mut lock_path = self.path.clone().into_os_string();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        let open = || -> io::Result<File> {
            if let Some(dir) = lock_path.parent() {
                fs::create_dir_all(dir)?;
            }
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)?;
            file.lock()?;
            Ok(file)
        };
        // The lock is released when the file is closed.
        open().map_err(|source| ClockError::Lock {
            path: lock_path.clone(),
            source,
        })
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
            "Warning: Lamport clock {} {problem}; recovered (value {}, node id {}), it is rewritten on the next event",
            self.path.display(),
            self.value,
            self.node_id
        );
    }
}

/// Temp file in the same directory, then rename: atomic against a killed process, no fsync.
fn replace_without_sync(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .suffix(".partial")
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
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
