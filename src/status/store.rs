//! The event log `kitty-specs/<mission>/status.events.jsonl`: locking,
//! durable appends, strict reads, and torn-tail handling.
//!
//! **Lock.** Every write, and every read, holds a cross-process advisory lock
//! (`flock`, via `std::fs::File::lock`) on a lock file: by default
//! `<mission dir>/.status.lock` ([`LOCK_FILENAME`]). Writers take it exclusive,
//! readers shared, so a reader never sees a half-appended batch. Upstream's
//! Python CLI locks `<git common dir>/spec-kitty-locks/<mission_slug>.status.lock`
//! with the `filelock` package, which also uses `flock` on Unix; pass that path
//! to [`EventLog::with_lock_file`] to exclude the Python CLI and all worktrees
//! too. The lock is not re-entrant: while holding a [`LogLock`], use its
//! methods rather than [`EventLog`]'s (which would wait for it). A read whose
//! lock file cannot be created (read-only checkout) proceeds without the lock.
//!
//! **Append.** One or more records are serialized, re-parsed (the writer can
//! never write what the reader rejects), and written with a single `write_all`
//! on an `O_APPEND` handle, then `fsync`ed (and the directory too when the file
//! is new). If the write fails the file is truncated back to its old length.
//!
//! **Torn tail.** A log whose last line has no trailing newline was cut by a
//! crash mid-write. Reading it fails with [`StatusError::TornLine`] naming the
//! file and line — the partial line is never parsed or dropped silently. An
//! append onto such a log is **refused** with the same error, because appending
//! would glue the new event onto the broken line and corrupt both. The user
//! inspects the line and either completes it or removes it;
//! [`EventLog::repair_torn_tail`] removes it and returns the removed bytes.
//! A tail made only of whitespace is harmless and ignored. Any other invalid
//! line is [`StatusError::MalformedLine`] with its line number; blank lines are
//! skipped, as upstream does.
//!
//! **Two readers.** [`EventLog::read`] returns every line as an owned
//! [`StatusRecord`] (serde reader). [`EventLog::reduce`] is the fast path: it
//! streams the file (`stream`), parses ordinary lines with a conservative
//! scanner (`scan`) and everything else with the serde reader, and reduces
//! compact records. Both apply the same rules and report the same line
//! numbers; tests check that they agree.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use super::checkpoint;
use super::compact::Batch;
use super::error::{Result, StatusError};
use super::event::{AnnotationEvent, StatusRecord, is_wp_id};
use super::fold::{Fold, OutOfOrder};
use super::line::{ParsedLine, parse_line, parse_record};
use super::reducer::{Reduction, fold_batches};
use super::snapshot::{
    SNAPSHOT_FILENAME, SnapshotIdentity, render_status_json, sync_dir, write_if_changed,
    write_if_changed_with_spare,
};
use super::stamp::is_ulid;
use super::stream::{ScanError, ScanTuning, fold_in_order, read_for_reduce};

/// File name of the event log inside the mission directory.
pub const EVENTS_FILENAME: &str = "status.events.jsonl";

/// Default lock file name inside the mission directory.
pub const LOCK_FILENAME: &str = ".status.lock";

/// One line of the log with its 1-based line number.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRecord {
    /// 1-based line number in the file.
    pub line: usize,
    /// What the line holds.
    pub record: StatusRecord,
}

/// Result of [`EventLog::materialize`].
#[derive(Clone, Debug, PartialEq)]
pub struct Materialized {
    /// The reduced state.
    pub reduction: Reduction,
    /// The exact `status.json` text.
    pub status_json: String,
    /// `false` when `status.json` already held these bytes.
    pub written: bool,
}

/// The status event log of one mission.
#[derive(Clone, Debug)]
pub struct EventLog {
    mission_dir: PathBuf,
    events_path: PathBuf,
    lock_path: PathBuf,
}

/// An exclusive hold on the mission's status lock. Released on drop.
#[derive(Debug)]
pub struct LogLock<'a> {
    log: &'a EventLog,
    _file: File,
}

impl EventLog {
    /// The log of the mission directory `kitty-specs/<mission>`; lock file
    /// `<mission_dir>/.status.lock`.
    pub fn new(mission_dir: impl Into<PathBuf>) -> Self {
        let mission_dir = mission_dir.into();
        EventLog {
            events_path: mission_dir.join(EVENTS_FILENAME),
            lock_path: mission_dir.join(LOCK_FILENAME),
            mission_dir,
        }
    }

    /// Uses another lock file (e.g. upstream's
    /// `<git common dir>/spec-kitty-locks/<mission_slug>.status.lock`).
    pub fn with_lock_file(mut self, lock_path: impl Into<PathBuf>) -> Self {
        self.lock_path = lock_path.into();
        self
    }

    /// The mission directory.
    pub fn mission_dir(&self) -> &Path {
        &self.mission_dir
    }

    /// `<mission_dir>/status.events.jsonl`
    pub fn events_path(&self) -> &Path {
        &self.events_path
    }

    /// The lock file.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// `<mission_dir>/status.json`
    pub fn snapshot_path(&self) -> PathBuf {
        self.mission_dir.join(SNAPSHOT_FILENAME)
    }

    fn open_lock_file(&self) -> Result<File> {
        if let Some(parent) = self.lock_path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| StatusError::io("create directory", parent, e))?;
        }
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.lock_path)
            .map_err(|e| StatusError::io("open lock file", &self.lock_path, e))
    }

    /// Takes the exclusive lock, waiting for other holders at most
    /// `SPEC_KITTY_LOCK_TIMEOUT_MS` (default 10 s; then [`StatusError::Lock`] names the lock
    /// file and its holder's pid).
    pub fn lock(&self) -> Result<LogLock<'_>> {
        let mut file = self.open_lock_file()?;
        crate::repo::lock::lock_bounded(&mut file, &self.lock_path, true, "mission's status log")?;
        Ok(LogLock {
            log: self,
            _file: file,
        })
    }

    /// Shared lock for readers; `None` when no lock file can be made.
    fn lock_shared(&self) -> Result<Option<File>> {
        if !self.mission_dir.exists() {
            return Ok(None);
        }
        let file = match self.open_lock_file() {
            Ok(file) => file,
            Err(StatusError::Io { source, .. })
                if matches!(
                    source.kind(),
                    ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let mut file = file;
        crate::repo::lock::lock_bounded(&mut file, &self.lock_path, false, "mission's status log")?;
        Ok(Some(file))
    }

    /// Every line, parsed and owned (shared lock).
    pub fn read(&self) -> Result<Vec<LogRecord>> {
        let _guard = self.lock_shared()?;
        self.read_unlocked()
    }

    /// Reads and reduces the log (shared lock) — the fast path.
    pub fn reduce(&self) -> Result<Reduction> {
        let _guard = self.lock_shared()?;
        self.reduce_unlocked()
    }

    /// Appends records as one durable write (exclusive lock).
    pub fn append(&self, records: &[StatusRecord]) -> Result<()> {
        self.lock()?.append(records)
    }

    /// Reduces the log and writes `status.json` if it changed (exclusive lock).
    pub fn materialize(&self, identity: &SnapshotIdentity) -> Result<Materialized> {
        self.lock()?.materialize(identity)
    }

    /// Removes a torn final line (see module doc) and returns its bytes, or
    /// `None` when the log is intact (exclusive lock).
    pub fn repair_torn_tail(&self) -> Result<Option<Vec<u8>>> {
        self.lock()?.repair_torn_tail()
    }

    fn load(&self) -> Result<Option<Vec<u8>>> {
        match crate::repo::fence::read_project_file_unbounded(&self.events_path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StatusError::io("read", &self.events_path, e)),
        }
    }

    fn malformed(&self, line: usize, reason: String) -> StatusError {
        StatusError::MalformedLine {
            path: self.events_path.clone(),
            line,
            reason,
        }
    }

    fn read_unlocked(&self) -> Result<Vec<LogRecord>> {
        let Some(bytes) = self.load()? else {
            return Ok(Vec::new());
        };
        // Lines are checked in file order, so the first bad line is reported
        // (the same one the reducer's reader reports); the tail comes last.
        let (complete, tail) = match bytes.iter().rposition(|&b| b == b'\n') {
            Some(last) => (&bytes[..last], &bytes[last + 1..]),
            None => (&bytes[..0], &bytes[..]),
        };
        let mut records = Vec::new();
        let mut count = 0;
        if !bytes.is_empty() && tail.len() < bytes.len() {
            for (i, raw) in complete.split(|&b| b == b'\n').enumerate() {
                count = i + 1;
                let line = std::str::from_utf8(raw)
                    .map_err(|_| self.malformed(count, "not valid UTF-8".to_owned()))?;
                if line.trim().is_empty() {
                    continue;
                }
                let record = parse_record(line).map_err(|reason| self.malformed(count, reason))?;
                records.push(LogRecord {
                    line: count,
                    record,
                });
            }
        }
        if !tail.iter().all(u8::is_ascii_whitespace) {
            return Err(StatusError::TornLine {
                path: self.events_path.clone(),
                line: count + 1,
            });
        }
        Ok(records)
    }

    fn reduce_unlocked(&self) -> Result<Reduction> {
        Ok(self.fold_unlocked()?.into_reduction())
    }

    /// [`fold_unlocked`](Self::fold_unlocked) without rewriting the checkpoint (the caller
    /// appends and saves the state after its own lines, once).
    fn fold_deferred(&self) -> Result<Fold> {
        if let Some((fold, _)) = checkpoint::load(&self.events_path) {
            return Ok(fold);
        }
        Ok(
            match fold_in_order(&self.events_path, ScanTuning::DEFAULT.chunk_bytes) {
                Some(fold) => fold,
                None => {
                    let (mut batches, annotations) = self.scan_for_reduce(ScanTuning::DEFAULT)?;
                    fold_batches(&mut batches, &annotations)
                }
            },
        )
    }

    /// The reducer's state: from the checkpoint when it is the log's (plus any appended lines),
    /// else by reducing the whole log, which then becomes the checkpoint (see `checkpoint`).
    fn fold_unlocked(&self) -> Result<Fold> {
        if let Some((fold, remark)) = checkpoint::load(&self.events_path) {
            if let Some(mark) = remark {
                checkpoint::save(&self.events_path, &fold, &mark);
            }
            return Ok(fold);
        }
        let before = checkpoint::mark(&self.events_path);
        // In-order logs fold line by line in constant memory; anything else is reduced whole.
        let fold = match fold_in_order(&self.events_path, ScanTuning::DEFAULT.chunk_bytes) {
            Some(fold) => fold,
            None => {
                let (mut batches, annotations) = self.scan_for_reduce(ScanTuning::DEFAULT)?;
                fold_batches(&mut batches, &annotations)
            }
        };
        if let Some(mark) = before
            && checkpoint::mark(&self.events_path).as_ref() == Some(&mark)
        {
            checkpoint::save(&self.events_path, &fold, &mark);
        }
        Ok(fold)
    }

    /// The reduction of a log held in memory whose events are in order (the usual case), as
    /// [`EventLog::reduce`] would give it for a file of these bytes; `None` when anything is
    /// unusual (out of order, a bad or torn line): write the bytes to a log and reduce that.
    pub fn reduce_in_order(bytes: &[u8]) -> Option<Reduction> {
        super::stream::fold_in_order_bytes(bytes).map(Fold::into_reduction)
    }

    /// Streams the file through a small reused buffer (fresh memory is
    /// expensive), in two line-aligned halves on two threads when it is large.
    fn scan_for_reduce(&self, tuning: ScanTuning) -> Result<(Vec<Batch>, Vec<AnnotationEvent>)> {
        read_for_reduce(&self.events_path, tuning).map_err(|(err, lines_before)| match err {
            ScanError::Io(e) => StatusError::io("read", &self.events_path, e),
            ScanError::Torn { line } => StatusError::TornLine {
                path: self.events_path.clone(),
                line: lines_before + line,
            },
            ScanError::Malformed { line, reason } => self.malformed(lines_before + line, reason),
        })
    }
}

impl LogLock<'_> {
    /// The log this lock protects.
    pub fn log(&self) -> &EventLog {
        self.log
    }

    /// Every line, parsed and owned.
    pub fn read(&self) -> Result<Vec<LogRecord>> {
        self.log.read_unlocked()
    }

    /// Reads and reduces the log.
    pub fn reduce(&self) -> Result<Reduction> {
        self.log.reduce_unlocked()
    }

    /// Reduces the log and writes `status.json` if it changed.
    pub fn materialize(&self, identity: &SnapshotIdentity) -> Result<Materialized> {
        let reduction = self.reduce()?;
        let status_json = render_status_json(&reduction, identity);
        let written = write_if_changed(&self.log.snapshot_path(), &status_json)?;
        Ok(Materialized {
            reduction,
            status_json,
            written,
        })
    }

    /// Checks that the log reads, appends `records` and writes `status.json`: the write path
    /// of a status change, with one fold of the log. The state read before the append (from
    /// the checkpoint, plus lines appended since) is folded onward by the appended lines, as
    /// they read back, and saved as the checkpoint once; a record that does not fold onward
    /// (it sorts before something already folded) reduces the log again, as
    /// [`materialize`](Self::materialize) does. The same bytes and files as `reduce`,
    /// `append`, `materialize` in turn.
    pub fn append_and_materialize(
        &self,
        records: &[StatusRecord],
        identity: &SnapshotIdentity,
    ) -> Result<Materialized> {
        let mut fold = self.log.fold_deferred()?;
        let written = self.append_lines(records)?;
        let folded = written.iter().try_for_each(|line| {
            match parse_record(line).map_err(|_| OutOfOrder)? {
                StatusRecord::Lane(e) => fold.apply_lane(&e),
                StatusRecord::Annotation(a) => fold.apply_annotation(&a),
                StatusRecord::MissionLevel(_) => Ok(()),
            }
        });
        if folded.is_err() {
            return self.materialize(identity);
        }
        if let Some(mark) = checkpoint::mark(&self.log.events_path) {
            checkpoint::save_exclusive(&self.log.events_path, &fold, &mark);
        }
        let reduction = fold.into_reduction();
        let status_json = render_status_json(&reduction, identity);
        let spare = checkpoint::snapshot_spare_for(&self.log.events_path);
        let written =
            write_if_changed_with_spare(&self.log.snapshot_path(), &status_json, spare.as_deref())?;
        Ok(Materialized {
            reduction,
            status_json,
            written,
        })
    }

    /// Appends records as one durable write; refuses onto a torn tail.
    pub fn append(&self, records: &[StatusRecord]) -> Result<()> {
        self.append_lines(records).map(drop)
    }

    /// [`append`](Self::append), returning the lines written (without their newlines).
    fn append_lines(&self, records: &[StatusRecord]) -> Result<Vec<String>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut lines = Vec::with_capacity(records.len());
        let mut buf = String::new();
        for record in records {
            let line = checked_line(record)?;
            buf.push_str(&line);
            lines.push(line.trim_end_matches('\n').to_owned());
        }
        let log = self.log;
        let path = &log.events_path;
        std::fs::create_dir_all(&log.mission_dir)
            .map_err(|e| StatusError::io("create directory", &log.mission_dir, e))?;
        let existed = path.exists();
        let mut file =
            crate::repo::fence::open_append(path).map_err(|e| StatusError::io("open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| StatusError::io("inspect", path, e))?
            .len();
        if let Some(start) =
            find_torn_tail(&mut file, len).map_err(|e| StatusError::io("read", path, e))?
        {
            let bytes = log.load()?.unwrap_or_default();
            let offset = usize::try_from(start).unwrap_or(bytes.len());
            return Err(StatusError::TornLine {
                path: path.clone(),
                line: line_number_at(&bytes, offset),
            });
        }
        if let Err(e) = file.write_all(buf.as_bytes()) {
            // Do not leave a partial batch behind.
            let _ = file.set_len(len);
            let _ = file.sync_data();
            return Err(StatusError::io("append to", path, e));
        }
        file.sync_data()
            .map_err(|e| StatusError::io("sync", path, e))?;
        if !existed {
            sync_dir(&log.mission_dir)?;
        }
        Ok(lines)
    }

    /// Removes a torn final line and returns its bytes; `None` if intact.
    pub fn repair_torn_tail(&self) -> Result<Option<Vec<u8>>> {
        let path = &self.log.events_path;
        let mut file = match crate::repo::fence::open_rw(path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StatusError::io("open", path, e)),
        };
        let io = |e| StatusError::io("repair", path, e);
        let len = file.metadata().map_err(io)?.len();
        let Some(start) = find_torn_tail(&mut file, len).map_err(io)? else {
            return Ok(None);
        };
        let mut removed = Vec::new();
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        file.read_to_end(&mut removed).map_err(io)?;
        file.set_len(start).map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok(Some(removed))
    }
}

/// Serializes a record and proves the reader accepts it as the same kind.
fn checked_line(record: &StatusRecord) -> Result<String> {
    let invalid = |m: String| StatusError::InvalidEvent(m);
    let (line, want_kind) = match record {
        StatusRecord::Lane(e) => {
            if !is_ulid(&e.event_id) {
                return Err(invalid(format!(
                    "event_id {:?} is not a 26-character ULID",
                    e.event_id
                )));
            }
            if e.wp_id.trim().is_empty() || e.at.trim().is_empty() {
                return Err(invalid(
                    "lane event needs a wp_id and an at timestamp".to_owned(),
                ));
            }
            (e.to_line(), "lane event")
        }
        StatusRecord::Annotation(a) => {
            a.check()?;
            if !is_ulid(&a.event_id) {
                return Err(invalid(format!(
                    "event_id {:?} is not a 26-character ULID",
                    a.event_id
                )));
            }
            if !is_wp_id(&a.wp_id) || a.at.trim().is_empty() {
                return Err(invalid(
                    "annotation needs a WP id and an at timestamp".to_owned(),
                ));
            }
            (a.to_line(), "annotation")
        }
        StatusRecord::MissionLevel(raw) => {
            if raw.contains(['\n', '\r']) {
                return Err(invalid(
                    "a mission-level line must be a single line".to_owned(),
                ));
            }
            (format!("{raw}\n"), "mission-level line")
        }
    };
    let parsed = parse_line(line.trim_end())
        .map_err(|reason| invalid(format!("the {want_kind} would not read back: {reason}")))?;
    let same_kind = matches!(
        (record, &parsed),
        (StatusRecord::Lane(_), ParsedLine::Lane(_))
            | (StatusRecord::Annotation(_), ParsedLine::Annotation(_))
            | (StatusRecord::MissionLevel(_), ParsedLine::Other)
    );
    if !same_kind {
        return Err(invalid(format!(
            "the {want_kind} would be read back as another kind of line \
             (mission-level lines need an event_type key)"
        )));
    }
    Ok(line)
}

/// Start offset of a final partial line whose content is not blank, read
/// backwards from the end of the file in chunks.
fn find_torn_tail(file: &mut File, len: u64) -> std::io::Result<Option<u64>> {
    let mut buf = vec![0u8; 8192];
    let mut end = len;
    let mut blank = true;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(pos) = chunk.iter().rposition(|&b| b == b'\n') {
            blank &= chunk[pos + 1..].iter().all(u8::is_ascii_whitespace);
            return Ok((!blank).then_some(start + pos as u64 + 1));
        }
        blank &= chunk.iter().all(u8::is_ascii_whitespace);
        end = start;
    }
    Ok((!blank).then_some(0))
}

/// 1-based line number of the byte at `offset`.
pub(crate) fn line_number_at(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::event::{AnnotationDelta, LaneEvent};
    use crate::status::lane::Lane;
    use crate::status::stamp::EventStamper;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn event(stamps: &mut EventStamper, wp: &str, from: Lane, to: Lane) -> StatusRecord {
        StatusRecord::Lane(LaneEvent::new(
            stamps.stamp(),
            "001-demo",
            wp,
            from,
            to,
            "tester",
        ))
    }

    fn setup() -> (tempfile::TempDir, EventLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::new(dir.path().join("kitty-specs").join("001-demo"));
        (dir, log)
    }

    #[test]
    fn reduce_in_order_of_bytes_is_the_reduction_of_the_file() {
        let (_dir, log) = setup();
        let mut s = EventStamper::new();
        log.append(&[
            event(&mut s, "WP01", Lane::Planned, Lane::Claimed),
            event(&mut s, "WP02", Lane::Planned, Lane::Claimed),
            event(&mut s, "WP01", Lane::Claimed, Lane::InProgress),
            StatusRecord::Annotation(
                AnnotationEvent::new(s.stamp(), "WP01", "user", AnnotationDelta::note("hi"))
                    .unwrap(),
            ),
        ])
        .unwrap();
        let bytes = std::fs::read(log.events_path()).unwrap();
        let from_file = log.reduce().unwrap();
        let from_bytes = EventLog::reduce_in_order(&bytes).unwrap();
        assert_eq!(format!("{from_bytes:?}"), format!("{from_file:?}"));
        assert_eq!(from_bytes.event_count, 3);
        // Unusual logs are left to the file reader: a torn tail, a bad line, events out of order.
        let mut torn = bytes.clone();
        torn.extend_from_slice(b"{\"wp_id\"");
        assert!(EventLog::reduce_in_order(&torn).is_none());
        assert!(EventLog::reduce_in_order(b"not json\n").is_none());
        let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
        let swapped = [lines[2], lines[0], lines[1], lines[3]].concat();
        assert!(EventLog::reduce_in_order(&swapped).is_none());
        assert_eq!(EventLog::reduce_in_order(b"").unwrap().event_count, 0);
    }

    #[test]
    fn missing_log_reads_as_empty_without_creating_anything() {
        let (_dir, log) = setup();
        assert!(log.read().unwrap().is_empty());
        assert_eq!(log.reduce().unwrap().event_count, 0);
        assert!(!log.mission_dir().exists());
    }

    #[test]
    fn append_batch_then_read_back() {
        let (_dir, log) = setup();
        let mut s = EventStamper::new();
        let batch = vec![
            event(&mut s, "WP01", Lane::Planned, Lane::Claimed),
            event(&mut s, "WP01", Lane::Claimed, Lane::InProgress),
            StatusRecord::Annotation(
                AnnotationEvent::new(s.stamp(), "WP01", "user", AnnotationDelta::note("hi"))
                    .unwrap(),
            ),
        ];
        log.append(&batch).unwrap();
        log.append(&[]).unwrap();
        let text = std::fs::read_to_string(log.events_path()).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.ends_with('\n'));
        let records = log.read().unwrap();
        let got: Vec<StatusRecord> = records.iter().map(|r| r.record.clone()).collect();
        assert_eq!(got, batch);
        assert_eq!(
            records.iter().map(|r| r.line).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(log.lock_path().ends_with(LOCK_FILENAME));
        let state = log.reduce().unwrap();
        assert_eq!(state.work_packages["WP01"].lane, Some(Lane::InProgress));
    }

    #[test]
    fn torn_tail_is_reported_and_append_refused_until_repaired() {
        let (_dir, log) = setup();
        let mut s = EventStamper::new();
        log.append(&[event(&mut s, "WP01", Lane::Genesis, Lane::Planned)])
            .unwrap();
        let full = event(&mut s, "WP01", Lane::Planned, Lane::Claimed).to_line();
        let partial = &full[..full.len() / 2];
        let mut f = OpenOptions::new()
            .append(true)
            .open(log.events_path())
            .unwrap();
        f.write_all(partial.as_bytes()).unwrap();
        drop(f);
        let before = std::fs::read(log.events_path()).unwrap();

        for err in [log.read().unwrap_err(), log.reduce().unwrap_err()] {
            match &err {
                StatusError::TornLine { path, line } => {
                    assert_eq!(path, log.events_path());
                    assert_eq!(*line, 2);
                }
                other => panic!("expected TornLine, got {other:?}"),
            }
            let msg = err.to_string();
            assert!(msg.contains("status.events.jsonl:2:"), "{msg}");
            assert!(msg.contains("incomplete"), "{msg}");
        }
        let refused = log
            .append(&[event(&mut s, "WP01", Lane::Planned, Lane::Claimed)])
            .unwrap_err();
        assert!(
            matches!(refused, StatusError::TornLine { line: 2, .. }),
            "{refused:?}"
        );
        assert_eq!(
            std::fs::read(log.events_path()).unwrap(),
            before,
            "file untouched"
        );

        assert_eq!(
            log.repair_torn_tail().unwrap(),
            Some(partial.as_bytes().to_vec())
        );
        assert_eq!(log.repair_torn_tail().unwrap(), None);
        assert_eq!(log.read().unwrap().len(), 1);
        log.append(&[event(&mut s, "WP01", Lane::Planned, Lane::Claimed)])
            .unwrap();
        assert_eq!(log.read().unwrap().len(), 2);
    }

    #[test]
    fn complete_json_without_newline_is_still_torn() {
        // Ambiguous: the newline of a complete event may be what got lost.
        let (_dir, log) = setup();
        let mut s = EventStamper::new();
        let line = event(&mut s, "WP01", Lane::Genesis, Lane::Planned).to_line();
        std::fs::create_dir_all(log.mission_dir()).unwrap();
        std::fs::write(log.events_path(), line.trim_end()).unwrap();
        assert!(matches!(
            log.read(),
            Err(StatusError::TornLine { line: 1, .. })
        ));
    }

    #[test]
    fn whitespace_tail_and_blank_lines_are_harmless() {
        let (_dir, log) = setup();
        let mut s = EventStamper::new();
        let a = event(&mut s, "WP01", Lane::Genesis, Lane::Planned).to_line();
        std::fs::create_dir_all(log.mission_dir()).unwrap();
        std::fs::write(log.events_path(), format!("\n{a}\r\n  \n")).unwrap();
        assert_eq!(log.read().unwrap()[0].line, 2);
        std::fs::write(log.events_path(), format!("{a}  ")).unwrap();
        log.append(&[event(&mut s, "WP01", Lane::Planned, Lane::Claimed)])
            .unwrap();
        assert_eq!(log.read().unwrap().len(), 2);
    }

    #[test]
    fn malformed_middle_line_names_file_and_line() {
        let (_dir, log) = setup();
        let mut s = EventStamper::new();
        let a = event(&mut s, "WP01", Lane::Genesis, Lane::Planned).to_line();
        let c = event(&mut s, "WP01", Lane::Planned, Lane::Claimed).to_line();
        std::fs::create_dir_all(log.mission_dir()).unwrap();
        std::fs::write(log.events_path(), format!("{a}{{\"event_id\": 1\n{c}")).unwrap();
        for err in [log.read().unwrap_err(), log.reduce().unwrap_err()] {
            assert!(
                matches!(&err, StatusError::MalformedLine { line: 2, path, .. } if path == log.events_path()),
                "{err:?}"
            );
            assert!(
                err.to_string()
                    .contains("status.events.jsonl:2: invalid status event")
            );
        }
        std::fs::write(
            log.events_path(),
            [a.as_bytes(), b"{\"x\": \"\xff\"}\n"].concat(),
        )
        .unwrap();
        let err = log.read().unwrap_err();
        assert!(
            matches!(&err, StatusError::MalformedLine { line: 2, reason, .. } if reason.contains("UTF-8")),
            "{err:?}"
        );
    }

    #[test]
    fn writer_refuses_what_the_reader_would_reject() {
        let (_dir, log) = setup();
        let mut s = EventStamper::new();
        let StatusRecord::Lane(mut bad_id) = event(&mut s, "WP01", Lane::Planned, Lane::Claimed)
        else {
            unreachable!()
        };
        bad_id.event_id = "evt-1".into();
        let no_type = StatusRecord::MissionLevel(r#"{"aggregate_id": "WP01"}"#.into());
        let two_lines = StatusRecord::MissionLevel("{\"event_type\": \"X\"}\n{}".into());
        for rec in [StatusRecord::Lane(bad_id), no_type, two_lines] {
            let err = log.append(&[rec]).unwrap_err();
            assert!(matches!(err, StatusError::InvalidEvent(_)), "{err:?}");
        }
        assert!(!log.events_path().exists());
        let ok = StatusRecord::MissionLevel(r#"{"event_type": "WPCreated", "payload": {}}"#.into());
        log.append(std::slice::from_ref(&ok)).unwrap();
        assert_eq!(log.read().unwrap()[0].record, ok);
    }

    #[test]
    fn exclusive_lock_excludes_other_handles_until_dropped() {
        let (_dir, log) = setup();
        let held = log.lock().unwrap();
        let other = OpenOptions::new()
            .read(true)
            .write(true)
            .open(log.lock_path())
            .unwrap();
        assert!(
            other.try_lock().is_err(),
            "second exclusive lock must fail while held"
        );
        assert!(
            other.try_lock_shared().is_err(),
            "readers must wait for a writer"
        );

        let log2 = log.clone();
        let acquired = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&acquired);
        let waiter = std::thread::spawn(move || {
            let _g = log2.lock().unwrap();
            flag.store(true, Ordering::SeqCst);
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!acquired.load(Ordering::SeqCst));
        drop(held);
        waiter.join().unwrap();
        assert!(acquired.load(Ordering::SeqCst));
        assert!(other.try_lock().is_ok(), "released after drop");
    }

    #[test]
    fn concurrent_appenders_never_interleave() {
        let (_dir, log) = setup();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut s = EventStamper::new();
                    for _ in 0..25 {
                        let wp = format!("WP{t:02}");
                        let batch = [
                            event(&mut s, &wp, Lane::Planned, Lane::Claimed),
                            event(&mut s, &wp, Lane::Claimed, Lane::InProgress),
                        ];
                        log.append(&batch).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let records = log.read().unwrap();
        assert_eq!(records.len(), 200);
        // Each batch is contiguous.
        for pair in records.chunks(2) {
            let (StatusRecord::Lane(a), StatusRecord::Lane(b)) = (&pair[0].record, &pair[1].record)
            else {
                panic!("unexpected record")
            };
            assert_eq!(a.wp_id, b.wp_id);
            assert_eq!((a.to_lane, b.to_lane), (Lane::Claimed, Lane::InProgress));
        }
    }

    /// Reads `text` with every chunk size / threading combination and checks
    /// the result against the owned reader + in-memory reducer.
    fn read_all_ways(log: &EventLog, text: &str) -> Vec<Result<Reduction>> {
        std::fs::create_dir_all(log.mission_dir()).unwrap();
        read_with_chunks(log, text.as_bytes(), [1, 7, 64, 1 << 20])
    }

    fn owned_reduction(log: &EventLog) -> Result<Reduction> {
        let mut lanes = Vec::new();
        let mut notes = Vec::new();
        for r in log.read()? {
            match r.record {
                StatusRecord::Lane(e) => lanes.push(e),
                StatusRecord::Annotation(a) => notes.push(a),
                StatusRecord::MissionLevel(_) => {}
            }
        }
        Ok(crate::status::reducer::reduce(&lanes, &notes))
    }

    #[test]
    fn streaming_reader_agrees_at_every_chunk_and_thread_seam() {
        let (_dir, log) = setup();
        let e2e = include_str!("testdata/e2e.status.events.jsonl");
        let mut s = EventStamper::new();
        let mut text = String::new();
        text.push_str("\n  \n");
        for (i, line) in e2e.lines().enumerate() {
            // Mix in leading/trailing blanks, CRLF and blank lines.
            match i % 4 {
                0 => text.push_str(&format!("  {line}\r\n")),
                1 => text.push_str(&format!("{line}\t \n\n")),
                _ => text.push_str(&format!("{line}\n")),
            }
            text.push_str(
                &event(
                    &mut s,
                    &format!("WP{:02}", i + 2),
                    Lane::Genesis,
                    Lane::Planned,
                )
                .to_line(),
            );
        }
        let expected = owned_reduction(&{
            std::fs::create_dir_all(log.mission_dir()).unwrap();
            std::fs::write(log.events_path(), &text).unwrap();
            log.clone()
        })
        .unwrap();
        assert_eq!(expected.work_packages["WP01"].lane, Some(Lane::Done));
        for got in read_all_ways(&log, &text) {
            assert_eq!(got.unwrap(), expected);
        }
    }

    #[test]
    fn in_order_logs_fold_line_by_line_and_others_are_declined() {
        let (_dir, log) = setup();
        std::fs::create_dir_all(log.mission_dir()).unwrap();
        let mut s = EventStamper::new();
        let mut lines = Vec::new();
        for i in 0..30 {
            let wp = format!("WP{:02}", i % 7);
            let (from, to) = match i / 7 {
                0 => (Lane::Genesis, Lane::Planned),
                1 => (Lane::Planned, Lane::Claimed),
                2 => (Lane::Claimed, Lane::InProgress),
                _ => (Lane::InProgress, Lane::ForReview),
            };
            lines.push(event(&mut s, &wp, from, to).to_line());
        }
        let text = lines.concat();
        std::fs::write(log.events_path(), &text).unwrap();
        let expected = owned_reduction(&log).unwrap();
        for chunk in [1, 7, 64, 1 << 20] {
            let fold = fold_in_order(log.events_path(), chunk).expect("an in-order log folds");
            assert_eq!(fold.reduction(), expected);
        }
        // A repeated event, an event out of order, a torn tail: declined.
        let repeated = format!("{text}{}", lines[3]);
        let swapped = [lines[1].clone(), lines[0].clone()].concat();
        let torn = format!("{text}{{\"wp_id\"");
        for bad in [repeated, swapped, torn] {
            std::fs::write(log.events_path(), &bad).unwrap();
            assert!(fold_in_order(log.events_path(), 64).is_none(), "{bad}");
        }
    }

    #[test]
    fn streaming_reader_reports_the_same_line_numbers() {
        let (_dir, log) = setup();
        let mut s = EventStamper::new();
        let mut good = String::new();
        for i in 0..40 {
            good.push_str(
                &event(&mut s, &format!("WP{i:02}"), Lane::Genesis, Lane::Planned).to_line(),
            );
        }
        let lines: Vec<&str> = good.lines().collect();
        // A JSON object split over two lines is two bad lines, as upstream reads it.
        let split = lines[30].replacen(", ", ",\n", 1);
        let broken = format!(
            "{}\n{split}\n{}\n",
            lines[..30].join("\n"),
            lines[31..].join("\n")
        );
        for got in read_all_ways(&log, &broken) {
            assert!(
                matches!(got, Err(StatusError::MalformedLine { line: 31, .. })),
                "{got:?}"
            );
        }
        assert!(matches!(
            log.read(),
            Err(StatusError::MalformedLine { line: 31, .. })
        ));
        let torn = format!("{good}{}", &lines[0][..20]);
        for got in read_all_ways(&log, &torn) {
            assert!(
                matches!(got, Err(StatusError::TornLine { line: 41, .. })),
                "{got:?}"
            );
        }
        let bad_utf8 = format!("{}\n{}\n", lines[..35].join("\n"), "{\"x\": \"\u{fffd}\"}");
        let mut bytes = bad_utf8.into_bytes();
        let pos = bytes.len() - 6;
        bytes[pos] = 0xff;
        std::fs::write(log.events_path(), &bytes).unwrap();
        for parallel_min_bytes in [0, u64::MAX] {
            let tuning = ScanTuning {
                parallel_min_bytes,
                chunk_bytes: 5,
            };
            let got = log.scan_for_reduce(tuning).map(|_| ());
            assert!(
                matches!(got, Err(StatusError::MalformedLine { line: 36, .. })),
                "{got:?}"
            );
        }
    }

    #[test]
    fn both_readers_report_the_first_bad_line() {
        let (_dir, log) = setup();
        let mut s = EventStamper::new();
        let mut lines: Vec<String> = (0..30)
            .map(|i| {
                event(&mut s, &format!("WP{i:02}"), Lane::Genesis, Lane::Planned)
                    .to_line()
                    .trim_end()
                    .to_owned()
            })
            .collect();
        lines[4] = "{not json".to_owned();
        // Malformed line 5, invalid UTF-8 on line 25, torn tail on line 31.
        let mut bytes = lines.join("\n").into_bytes();
        bytes.extend_from_slice(b"\n{\"partial\": ");
        let pos = lines[..24].iter().map(|l| l.len() + 1).sum::<usize>() + 3;
        bytes[pos] = 0xff;
        std::fs::create_dir_all(log.mission_dir()).unwrap();
        std::fs::write(log.events_path(), &bytes).unwrap();
        assert!(matches!(
            log.read(),
            Err(StatusError::MalformedLine { line: 5, .. })
        ));
        for got in read_all_ways_bytes(&log, &bytes) {
            assert!(
                matches!(got, Err(StatusError::MalformedLine { line: 5, .. })),
                "{got:?}"
            );
        }
        // Fix line 5: now the UTF-8 error on line 25 comes first.
        let fixed = event(&mut s, "WP04", Lane::Genesis, Lane::Planned).to_line();
        let mut repaired = bytes.clone();
        let start = lines[..4].iter().map(|l| l.len() + 1).sum::<usize>();
        repaired.splice(start..start + lines[4].len(), fixed.trim_end().bytes());
        std::fs::write(log.events_path(), &repaired).unwrap();
        assert!(matches!(
            log.read(),
            Err(StatusError::MalformedLine { line: 25, .. })
        ));
        for got in read_all_ways_bytes(&log, &repaired) {
            assert!(
                matches!(got, Err(StatusError::MalformedLine { line: 25, .. })),
                "{got:?}"
            );
        }
    }

    fn read_all_ways_bytes(log: &EventLog, bytes: &[u8]) -> Vec<Result<Reduction>> {
        read_with_chunks(log, bytes, [1, 7, 300, 1 << 20])
    }

    /// Writes `bytes` as the log and reduces it with every threading mode and each chunk size.
    fn read_with_chunks(
        log: &EventLog,
        bytes: &[u8],
        chunks: [usize; 4],
    ) -> Vec<Result<Reduction>> {
        std::fs::write(log.events_path(), bytes).unwrap();
        let mut results = Vec::new();
        for parallel_min_bytes in [0, u64::MAX] {
            for chunk_bytes in chunks {
                let tuning = ScanTuning {
                    parallel_min_bytes,
                    chunk_bytes,
                };
                results.push(
                    log.scan_for_reduce(tuning)
                        .map(|(mut b, a)| crate::status::reducer::reduce_batches(&mut b, &a)),
                );
            }
        }
        // The in-order fold either declines (the whole log is then reduced) or agrees.
        for chunk_bytes in chunks {
            if let Some(fold) = fold_in_order(log.events_path(), chunk_bytes) {
                results.push(Ok(fold.reduction()));
            }
        }
        results
    }

    /// Same outcome, or the same error kind at the same line.
    fn same_outcome(a: &Result<Reduction>, b: &Result<Reduction>) -> bool {
        match (a, b) {
            (Ok(x), Ok(y)) => x == y,
            (
                Err(StatusError::TornLine { line: x, .. }),
                Err(StatusError::TornLine { line: y, .. }),
            ) => x == y,
            (
                Err(StatusError::MalformedLine { line: x, .. }),
                Err(StatusError::MalformedLine { line: y, .. }),
            ) => x == y,
            _ => false,
        }
    }

    mod agreement {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 150,
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            /// Mutated logs: the owned reader and the fast reducer path agree
            /// on the result or on the failing line, at every seam.
            #[test]
            fn readers_agree_on_mutated_logs(
                edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..4),
            ) {
                const ALPHABET: &[u8] = b"\"\\{}[],:0-9eE.+ntfu\t \r\n\x01abAZ";
                let base = include_str!("testdata/e2e.status.events.jsonl");
                let mut bytes = base.as_bytes().to_vec();
                for &(pos, op, pick) in &edits {
                    let pos = pos % bytes.len();
                    let c = ALPHABET[pick as usize % ALPHABET.len()];
                    match op % 3 {
                        0 => { bytes.remove(pos); }
                        1 => bytes.insert(pos, c),
                        _ => bytes[pos] = c,
                    }
                }
                let (_dir, log) = setup();
                std::fs::create_dir_all(log.mission_dir()).unwrap();
                std::fs::write(log.events_path(), &bytes).unwrap();
                let owned = owned_reduction(&log);
                for tuning in [ScanTuning::DEFAULT, ScanTuning { parallel_min_bytes: 0, chunk_bytes: 13 }] {
                    let fast = log
                        .scan_for_reduce(tuning)
                        .map(|(mut b, a)| crate::status::reducer::reduce_batches(&mut b, &a));
                    prop_assert!(same_outcome(&owned, &fast), "owned {:?} vs fast {:?}", owned.as_ref().err(), fast.as_ref().err());
                }
            }
        }
    }

    #[test]
    fn custom_lock_file_location() {
        let (dir, log) = setup();
        let lock_path = dir
            .path()
            .join(".git/spec-kitty-locks/001-demo.status.lock");
        let log = log.with_lock_file(&lock_path);
        let mut s = EventStamper::new();
        log.append(&[event(&mut s, "WP01", Lane::Genesis, Lane::Planned)])
            .unwrap();
        assert!(lock_path.exists());
        assert!(!log.mission_dir().join(LOCK_FILENAME).exists());
    }
}
