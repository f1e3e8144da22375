//! [`PathMemo`]: what one process learned about a path, kept for the rest of the process.
//!
//! A command asks the same few questions about the same few paths many times (where the
//! checkpoint of a log is, which repository a directory is in, whether a directory is a link)
//! and never changes directory, so the first answer stands. Answers that must be asked again
//! (a refusal, a missing file) are simply not remembered by the caller.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// A per-process map from a path, as given, to what was found for it.
pub struct PathMemo<V> {
    map: OnceLock<Mutex<HashMap<PathBuf, V>>>,
}

impl<V: Clone> PathMemo<V> {
    /// An empty memo (for a `static`).
    pub const fn new() -> Self {
        PathMemo {
            map: OnceLock::new(),
        }
    }

    fn map(&self) -> &Mutex<HashMap<PathBuf, V>> {
        self.map.get_or_init(Mutex::default)
    }

    /// What was remembered for `path`, if anything.
    pub fn get(&self, path: &Path) -> Option<V> {
        self.map().lock().ok()?.get(path).cloned()
    }

    /// Remembers `value` for `path` (a poisoned lock remembers nothing).
    pub fn insert(&self, path: &Path, value: V) {
        if let Ok(mut map) = self.map().lock() {
            map.insert(path.to_path_buf(), value);
        }
    }
}

impl<V: Clone> Default for PathMemo<V> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_per_path_as_given() {
        static MEMO: PathMemo<u32> = PathMemo::new();
        assert_eq!(MEMO.get(Path::new("/a")), None);
        MEMO.insert(Path::new("/a"), 1);
        MEMO.insert(Path::new("/b/../a"), 2);
        assert_eq!(MEMO.get(Path::new("/a")), Some(1));
        assert_eq!(MEMO.get(Path::new("/b/../a")), Some(2));
    }
}
