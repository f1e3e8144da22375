//! Bounded waits for locks: advisory file locks (`flock`) taken with a timeout, and the one
//! **repository lock** that serializes this project's own git writes.
//!
//! A lock held by another process is waited for at most [`lock_timeout`] (environment
//! `SPEC_KITTY_LOCK_TIMEOUT_MS`, default 10 s), then [`LockError::Timeout`] names the lock file,
//! the process holding it (an exclusive holder writes its pid into the file) and what to do.
//! Nobody waits forever without a word.
//!
//! The repository lock is `<git common dir>/spec-kitty-locks/repo.lock` (shared by every
//! worktree, never in a checkout). [`super::git`] takes it around each git command that writes
//! (add, commit, worktree, branch, …), and before it runs one waits, bounded too, for git's own
//! `index.lock` of the checkout to go away (another git process at work), so parallel
//! spec-kitty commands on one repository never fail on each other's `index.lock`.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Environment variable: how long to wait for a lock, in milliseconds.
pub const LOCK_TIMEOUT_ENV: &str = "SPEC_KITTY_LOCK_TIMEOUT_MS";
/// Default wait for a lock.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The wait for a lock: `SPEC_KITTY_LOCK_TIMEOUT_MS` when set to a number, else 10 s.
pub fn lock_timeout() -> Duration {
    std::env::var(LOCK_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_LOCK_TIMEOUT, Duration::from_millis)
}

/// A lock that could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process held it for the whole wait.
    #[error(
        "timed out after {waited_ms} ms waiting for the lock {} ({}): another spec-kitty or git \
         command is working on this {what}. Wait for it to finish and retry; if no such process \
         is running, retry anyway (a lock is released when its holder exits{}). Set \
         SPEC_KITTY_LOCK_TIMEOUT_MS to wait longer",
        path.display(),
        holder.map_or_else(|| "holder unknown".to_owned(), |p| format!("held by pid {p}")),
        if *stale_file { "; git's index.lock is not: remove it by hand only when no git process is running" } else { "" }
    )]
    Timeout {
        path: PathBuf,
        what: &'static str,
        holder: Option<u32>,
        waited_ms: u128,
        /// A lock file whose existence is the lock (git's `index.lock`).
        stale_file: bool,
    },
    #[error("cannot {action} the lock file {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn pause(attempt: u32) {
    std::thread::sleep(Duration::from_millis(u64::from(attempt.min(10)) * 5 + 2));
}

/// Writes this process's pid into a lock file it holds exclusively, best effort. On Unix in
/// place, padded to a fixed width (`holder_pid` trims): truncating and rewriting freed and
/// reallocated the file's block on every lock, a synchronous discard on some file systems.
fn write_pid(file: &mut File) {
    let text = format!("{:<10}\n", std::process::id());
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        let _ = file.write_all_at(text.as_bytes(), 0);
    }
    #[cfg(not(unix))]
    {
        let _ = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(drop))
            .and_then(|()| std::io::Write::write_all(file, text.as_bytes()));
    }
}

fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(64).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Open (creating it and its directory) the lock file at `path`.
pub fn open_lock_file(path: &Path) -> Result<File, LockError> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|source| LockError::Io {
            action: "create the directory of",
            path: path.to_path_buf(),
            source,
        })?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| LockError::Io {
            action: "open",
            path: path.to_path_buf(),
            source,
        })
}

/// Lock `file` (the lock file at `path`), waiting at most [`lock_timeout`]. An exclusive holder
/// writes its pid into the file, for the message another waiter prints.
pub fn lock_bounded(
    file: &mut File,
    path: &Path,
    exclusive: bool,
    what: &'static str,
) -> Result<(), LockError> {
    let timeout = lock_timeout();
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        let tried = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match tried {
            Ok(()) => {
                if exclusive {
                    write_pid(file);
                }
                return Ok(());
            }
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(source)) => {
                return Err(LockError::Io {
                    action: "lock",
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
        if started.elapsed() >= timeout {
            return Err(LockError::Timeout {
                path: path.to_path_buf(),
                what,
                holder: holder_pid(file),
                waited_ms: started.elapsed().as_millis(),
                stale_file: false,
            });
        }
        attempt += 1;
        pause(attempt);
    }
}

/// The repository lock, held until dropped. Re-entrant within a thread: a command that holds
/// it around a sequence of git commands ([`super::git::with_repo_lock`]) runs each of them
/// without taking it again (flock would block on itself). Another thread of the process (the
/// commit finalize-tasks runs beside its relay) takes it on its own handle, so it waits like
/// another process would.
#[derive(Debug)]
pub struct RepoLock {
    path: PathBuf,
    thread: std::thread::ThreadId,
}

/// Repository locks this process holds: the lock file, the thread holding it, its open handle,
/// how many guards.
type Held = (PathBuf, std::thread::ThreadId, File, usize);
static HELD: std::sync::Mutex<Vec<Held>> = std::sync::Mutex::new(Vec::new());

impl Drop for RepoLock {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = held
            .iter()
            .position(|(p, t, _, _)| *p == self.path && *t == self.thread)
        {
            held[i].3 -= 1;
            if held[i].3 == 0 {
                held.swap_remove(i);
            }
        }
    }
}

/// The repository lock's file for a checkout whose git common dir is `common_dir`.
pub fn repo_lock_path(common_dir: &Path) -> PathBuf {
    common_dir.join("spec-kitty-locks").join("repo.lock")
}

/// Take the repository lock at `path` (bounded wait).
pub fn repo_lock(path: &Path) -> Result<RepoLock, LockError> {
    let path = path.to_path_buf();
    let thread = std::thread::current().id();
    {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = held
            .iter_mut()
            .find(|(p, t, _, _)| *p == path && *t == thread)
        {
            entry.3 += 1;
            return Ok(RepoLock { path, thread });
        }
    }
    let mut file = open_lock_file(&path)?;
    lock_bounded(&mut file, &path, true, "repository")?;
    HELD.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((path.clone(), thread, file, 1));
    Ok(RepoLock { path, thread })
}

/// Wait (bounded) until git's `index.lock` at `path` is gone.
pub fn wait_for_index_lock(path: &Path) -> Result<(), LockError> {
    let timeout = lock_timeout();
    let started = Instant::now();
    let mut attempt = 0;
    while path.exists() {
        if started.elapsed() >= timeout {
            return Err(LockError::Timeout {
                path: path.to_path_buf(),
                what: "checkout",
                holder: None,
                waited_ms: started.elapsed().as_millis(),
                stale_file: true,
            });
        }
        attempt += 1;
        pause(attempt);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_times_out_naming_the_file_and_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks/x.lock");
        let held = repo_lock(&path).unwrap();
        // Re-entrant in the process.
        drop(repo_lock(&path).unwrap());
        let mut other = open_lock_file(&path).unwrap();
        // flock is per open file: a second open of the same file conflicts in-process too.
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
        let err = LockError::Timeout {
            path: path.clone(),
            what: "repository",
            holder: holder_pid(&mut other),
            waited_ms: 0,
            stale_file: false,
        };
        let text = err.to_string();
        assert!(text.contains("x.lock"), "{text}");
        assert!(
            text.contains(&format!("held by pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("SPEC_KITTY_LOCK_TIMEOUT_MS"), "{text}");
        drop(held);
        // A child that another test thread is forking shares the lock's open file until it
        // execs (close-on-exec), so the release may show a moment later: wait for it, bounded.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while let Err(e) = other.try_lock() {
            assert!(
                std::time::Instant::now() < deadline,
                "lock not released: {e:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn another_thread_waits_for_the_repository_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks/repo.lock");
        let held = repo_lock(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                let lock = repo_lock(&path);
                let _ = tx.send(lock.is_ok());
                drop(lock);
            })
        };
        // Not re-entrant across threads: the other thread waits while this one holds it.
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(300))
                .is_err()
        );
        drop(held);
        assert_eq!(
            rx.recv_timeout(std::time::Duration::from_secs(10)),
            Ok(true)
        );
        waiter.join().unwrap();
    }

    #[test]
    fn a_missing_index_lock_is_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        wait_for_index_lock(&dir.path().join("index.lock")).unwrap();
    }
}
