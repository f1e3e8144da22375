//! The reducer's saved state ([`Fold`]) for one log, so that reading or appending costs the
//! same at 1k and 1M events.
//!
//! **Where.** `<git common dir>/spec-kitty/status/<sha256(log path)[:16]>.json`: private to the
//! clone, never in the working tree, shared by its worktrees; a project outside git has none
//! (every read reduces the whole log, as before).
//!
//! **Validity.** The file records the log's length, inode and a SHA-256 of its last 4 KiB at
//! that length. The log is append-only, so:
//! - same inode and length, same tail hash and modification time → the saved state is the log's;
//! - same inode, longer, the old tail hash still matching at the old length → only the appended
//!   bytes are read and folded (if each new event sorts after everything folded, see [`Fold`]);
//! - anything else (a rewritten or replaced log, a shorter one, a damaged or foreign checkpoint,
//!   an event out of order, a bad line) → the whole log is reduced as before, which also reports
//!   any bad line exactly as before; the checkpoint is then rewritten.
//!
//! The checkpoint is derived data: it is replaced atomically without fsync (a lost or stale one
//! only costs a full reduction), and failing to write it never fails a command.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::repo::memo::PathMemo;

use super::event::StatusRecord;
use super::fold::Fold;
use super::fold_repr::{FoldIn, FoldOut};
use super::line::parse_record;

/// Bytes of the log's end that the mark hashes.
const TAIL: u64 = 4096;
/// Appended bytes read incrementally at most; more is reduced as a whole log.
const MAX_INCREMENT: u64 = 8 * 1024 * 1024;
/// Largest checkpoint file read.
const MAX_CHECKPOINT: u64 = 256 * 1024 * 1024;

/// Where the log stood when its state was saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    len: u64,
    ino: u64,
    mtime_ns: i128,
    tail_sha: String,
}

#[cfg(unix)]
fn identity(meta: &fs::Metadata) -> (u64, i128) {
    use std::os::unix::fs::MetadataExt;
    (
        meta.ino(),
        i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
    )
}

#[cfg(not(unix))]
fn identity(_meta: &fs::Metadata) -> (u64, i128) {
    (0, 0)
}

fn tail_sha(file: &mut File, len: u64) -> std::io::Result<String> {
    let start = len.saturating_sub(TAIL);
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity((len - start) as usize);
    file.by_ref().take(len - start).read_to_end(&mut buf)?;
    if buf.len() as u64 != len - start {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(hex(&Sha256::digest(&buf)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The mark of the log as it is now; `None` when it does not exist or cannot be read.
pub(crate) fn mark(log: &Path) -> Option<Mark> {
    let mut file = crate::repo::fence::open_read(log).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let (ino, mtime_ns) = identity(&meta);
    let len = meta.len();
    Some(Mark {
        len,
        ino,
        mtime_ns,
        tail_sha: tail_sha(&mut file, len).ok()?,
    })
}

/// The checkpoint file of `log`, when the log is in a git repository this reader models.
/// Remembered per log path for the rest of the process (a write asks three times: load, save,
/// and the spare of status.json; a process never changes directory or moves a mission).
pub(crate) fn path_for(log: &Path) -> Option<PathBuf> {
    static PATHS: PathMemo<Option<PathBuf>> = PathMemo::new();
    if let Some(found) = PATHS.get(log) {
        return found;
    }
    let found = compute_path_for(log);
    PATHS.insert(log, found.clone());
    found
}

fn compute_path_for(log: &Path) -> Option<PathBuf> {
    let dir = log.parent()?;
    let crate::repo::gitfs::Answer::Known(layout) = crate::repo::gitfs::layout(dir) else {
        return None;
    };
    let canonical = fs::canonicalize(dir).ok()?.join(log.file_name()?);
    let digest = Sha256::digest(canonical.to_string_lossy().as_bytes());
    Some(
        layout
            .common_dir
            .join("spec-kitty")
            .join("status")
            .join(format!("{}.json", &hex(&digest)[..16])),
    )
}

/// The private spare file `status.json` of `log`'s mission is exchanged with (see
/// `snapshot::write_if_changed_with_spare`), beside the checkpoint.
pub(crate) fn snapshot_spare_for(log: &Path) -> Option<PathBuf> {
    let mut p = path_for(log)?.into_os_string();
    p.push(".status-json.next");
    Some(PathBuf::from(p))
}

/// The state of `log` from its checkpoint, folding appended lines when needed; `None` when the
/// checkpoint is missing, stale or unusable (reduce the whole log). The second value says
/// whether the checkpoint should be rewritten, with the mark to record.
pub(crate) fn load(log: &Path) -> Option<(Fold, Option<Mark>)> {
    let path = path_for(log)?;
    let meta = fs::metadata(&path).ok()?;
    if !meta.is_file() || meta.len() > MAX_CHECKPOINT {
        return None;
    }
    let file: CheckpointIn = serde_json::from_slice(&fs::read(&path).ok()?).ok()?;
    let saved = file.log.into_mark()?;
    let mut fold = file.fold.into_fold()?;
    let mut file = crate::repo::fence::open_read(log).ok()?;
    let now = file.metadata().ok()?;
    let (ino, mtime_ns) = identity(&now);
    if ino != saved.ino || now.len() < saved.len {
        return None;
    }
    if now.len() == saved.len {
        return (mtime_ns == saved.mtime_ns
            && tail_sha(&mut file, saved.len).ok()? == saved.tail_sha)
            .then_some((fold, None));
    }
    if now.len() - saved.len > MAX_INCREMENT
        || tail_sha(&mut file, saved.len).ok()? != saved.tail_sha
    {
        return None;
    }
    file.seek(SeekFrom::Start(saved.len)).ok()?;
    let mut added = Vec::new();
    file.by_ref()
        .take(now.len() - saved.len)
        .read_to_end(&mut added)
        .ok()?;
    if added.last() != Some(&b'\n') {
        return None;
    }
    let text = std::str::from_utf8(&added).ok()?;
    for line in text.split('\n') {
        if line.trim().is_empty() {
            continue;
        }
        match parse_record(line).ok()? {
            StatusRecord::Lane(e) => fold.apply_lane(&e).ok()?,
            StatusRecord::Annotation(a) => fold.apply_annotation(&a).ok()?,
            StatusRecord::MissionLevel(_) => {}
        }
    }
    let len = now.len();
    let new_mark = Mark {
        len,
        ino,
        mtime_ns,
        tail_sha: tail_sha(&mut file, len).ok()?,
    };
    Some((fold, Some(new_mark)))
}

/// Saves `fold` as the state of `log` at `mark`; best effort (see the module docs).
pub(crate) fn save(log: &Path, fold: &Fold, mark: &Mark) {
    save_with(log, fold, mark, false);
}

/// [`save`] by a holder of the log's exclusive lock (no other process saves this checkpoint
/// meanwhile): the file is replaced by exchange with its `.next` copy
/// ([`crate::repo::replace_without_sync`]), which spares the rename over an existing file and
/// the write-out ext4 starts for it on every status change.
pub(crate) fn save_exclusive(log: &Path, fold: &Fold, mark: &Mark) {
    save_with(log, fold, mark, true);
}

fn save_with(log: &Path, fold: &Fold, mark: &Mark, exclusive: bool) {
    let Some(path) = path_for(log) else {
        return;
    };
    let Some(dir) = path.parent() else {
        return;
    };
    if fs::create_dir_all(dir).is_err() {
        return;
    }
    let file = CheckpointOut {
        log: MarkRepr {
            len: mark.len,
            ino: mark.ino,
            mtime_ns: mark.mtime_ns.to_string(),
            tail_sha256: mark.tail_sha.clone(),
        },
        fold: fold.repr(),
    };
    let Ok(bytes) = serde_json::to_vec(&file) else {
        return;
    };
    if exclusive {
        let _ = crate::repo::replace_without_sync(&path, &bytes);
        return;
    }
    let Ok(mut tmp) = tempfile::Builder::new()
        .prefix(".checkpoint-")
        .suffix(".tmp")
        .tempfile_in(dir)
    else {
        return;
    };
    if std::io::Write::write_all(&mut tmp, &bytes).is_ok() {
        let _ = tmp.persist(&path);
    }
}

/// The checkpoint file as written: where the log stood, and the fold.
#[derive(Serialize)]
struct CheckpointOut<'a> {
    log: MarkRepr,
    fold: FoldOut<'a>,
}

/// The checkpoint file as read.
#[derive(Deserialize)]
struct CheckpointIn {
    log: MarkRepr,
    fold: FoldIn,
}

/// A [`Mark`] in the file (`mtime_ns` as a string: it does not fit every JSON reader's numbers).
#[derive(Serialize, Deserialize)]
struct MarkRepr {
    len: u64,
    ino: u64,
    mtime_ns: String,
    tail_sha256: String,
}

impl MarkRepr {
    fn into_mark(self) -> Option<Mark> {
        Some(Mark {
            len: self.len,
            ino: self.ino,
            mtime_ns: self.mtime_ns.parse().ok()?,
            tail_sha: self.tail_sha256,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::event::{AnnotationDelta, AnnotationEvent, LaneEvent};
    use crate::status::lane::Lane;
    use crate::status::stamp::EventStamper;
    use crate::status::store::EventLog;

    fn git_repo() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        let ok = std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(&root)
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let mission = root.join("kitty-specs/001-x");
        fs::create_dir_all(&mission).unwrap();
        (dir, mission)
    }

    fn full_reduction(log: &EventLog) -> crate::status::Reduction {
        if let Some(p) = path_for(log.events_path()) {
            let _ = fs::remove_file(p);
        }
        log.reduce().unwrap()
    }

    #[test]
    fn appends_fold_onto_the_checkpoint_and_agree_with_a_full_reduction() {
        let (_keep, mission) = git_repo();
        let log = EventLog::new(&mission);
        let Some(ckpt) = path_for(log.events_path()) else {
            return; // a machine whose git config this reader leaves to git
        };
        let mut stamps = EventStamper::new();
        let lanes = [
            Lane::Planned,
            Lane::Claimed,
            Lane::InProgress,
            Lane::ForReview,
        ];
        for i in 0..12usize {
            let record = if i % 3 == 2 {
                StatusRecord::Annotation(
                    AnnotationEvent::new(stamps.stamp(), "WP01", "a", AnnotationDelta::note("n"))
                        .unwrap(),
                )
            } else {
                StatusRecord::Lane(LaneEvent::new(
                    stamps.stamp(),
                    "001-x",
                    format!("WP0{}", i % 2 + 1),
                    Lane::Genesis,
                    lanes[i % 4],
                    "b",
                ))
            };
            log.append(&[record]).unwrap();
            let incremental = log.reduce().unwrap();
            assert!(ckpt.is_file(), "the checkpoint is written");
            assert_eq!(incremental, full_reduction(&log), "after {i} appends");
        }
        // A rewritten log (new inode, other content) is never answered from the checkpoint.
        log.reduce().unwrap();
        let text = fs::read_to_string(log.events_path()).unwrap();
        let first_line = text.lines().next().unwrap().to_owned();
        let tmp = mission.join("rewrite.tmp");
        fs::write(&tmp, format!("{first_line}\n")).unwrap();
        fs::rename(&tmp, log.events_path()).unwrap();
        assert_eq!(log.reduce().unwrap().event_count, 1);
        // A damaged checkpoint is ignored.
        fs::write(&ckpt, b"{not json").unwrap();
        assert_eq!(log.reduce().unwrap().event_count, 1);
        // An appended bad line is reported as before, not folded.
        fs::write(log.events_path(), format!("{first_line}\n{{\"broken\n")).unwrap();
        assert!(log.reduce().is_err());
    }
}
