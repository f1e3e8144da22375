//! Errors of the status module. Every message says what is wrong, where (file
//! and 1-based line number for event-log problems) and what to do about it.

use std::path::PathBuf;

use super::lane::UnknownLane;
use super::transition::TransitionError;

/// Errors from reading, writing and reducing mission status.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// A lane name did not parse.
    #[error(transparent)]
    UnknownLane(#[from] UnknownLane),

    /// A transition was rejected by the matrix or a guard (upstream texts).
    #[error(transparent)]
    Transition(#[from] TransitionError),

    /// The file system refused an operation.
    #[error("cannot {action} {}: {source}{}", path.display(), io_remedy(source))]
    Io {
        /// What was being done ("read", "lock", "append to", ...).
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// The last line of the event log has no trailing newline: a write was
    /// interrupted. Nothing is read from or appended to such a log.
    #[error(
        "{}:{line}: the last line is incomplete (no trailing newline), most likely an \
         interrupted write; the event log was neither read nor changed. Inspect that line: \
         if it is a complete event, add the missing newline; otherwise remove the partial \
         line with `spec-kitty agent status repair --mission {}` (it prints the removed \
         bytes), then retry",
        path.display(),
        mission_of(path)
    )]
    TornLine {
        /// The event log.
        path: PathBuf,
        /// 1-based line number of the incomplete line.
        line: usize,
    },

    /// A complete line of the event log is not a valid status record.
    #[error(
        "{}:{line}: invalid status event: {reason}. The event log is append-only and is the \
         only authority for work-package lanes: fix or remove this line by hand (check the \
         history in git), then retry",
        path.display()
    )]
    MalformedLine {
        /// The event log.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// A change the sync contract cannot carry (for example `done` without review evidence):
    /// refused before it is recorded, so nothing is recorded and left unsent.
    #[error(
        "refusing to record {what}: the sync event contract cannot carry it ({reason}); \
         nothing was written. Moving to approved or done needs --evidence-json with \
         review.reviewer, review.verdict and review.reference"
    )]
    NotSendable {
        /// The change ("WP01 for_review -> done").
        what: String,
        /// Why the contract refuses it.
        reason: String,
    },

    /// The status lock stayed held by another process for the whole bounded wait.
    #[error(transparent)]
    Lock(#[from] crate::repo::lock::LockError),

    /// An event or annotation handed to the writer is not valid.
    #[error("refusing to write status event: {0}")]
    InvalidEvent(String),
}

/// The mission directory's name of an event log path (for the repair command in messages).
fn mission_of(path: &std::path::Path) -> String {
    path.parent().and_then(|d| d.file_name()).map_or_else(
        || "<mission>".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Result alias for this module.
pub type Result<T, E = StatusError> = std::result::Result<T, E>;

impl StatusError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        StatusError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// What to do about a refused file operation on the status log, unless the error says it.
fn io_remedy(e: &std::io::Error) -> &'static str {
    let text = e.to_string();
    if text.contains("restore") || text.contains("replace it") {
        return "";
    }
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            " (check the permissions of the file and its directory)"
        }
        std::io::ErrorKind::StorageFull => " (free some disk space and retry)",
        std::io::ErrorKind::IsADirectory => {
            " (a directory is where the file belongs: remove it and restore the file from git)"
        }
        _ => " (check the file, or restore it with `git checkout -- <path>`)",
    }
}
