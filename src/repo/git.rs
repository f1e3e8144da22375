//! A tiny wrapper around the `git` executable.
//!
//! Every call names the directory it runs in (`git -C <dir> …`), captures stdout and stderr, and
//! turns a failure into a [`RepoError`] carrying git's own stderr text. Nothing here panics.
//!
//! Repository-selecting variables inherited from a parent git process (for example when we run
//! inside a git hook, which exports `GIT_DIR`) are removed from the child's environment, so the
//! directory passed in is always the one git looks at.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

use super::RepoError;

/// Variables git uses to select a repository, index or object store (`git rev-parse
/// --local-env-vars`). They would override `-C <dir>`, so they are cleared for every call.
const REPOSITORY_ENV_VARS: &[&str] = &[
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_CONFIG",
    "GIT_CONFIG_COUNT",
    "GIT_CONFIG_PARAMETERS",
    "GIT_DIR",
    "GIT_GRAFT_FILE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_OBJECT_DIRECTORY",
    "GIT_PREFIX",
    "GIT_REPLACE_REF_BASE",
    "GIT_SHALLOW_FILE",
    "GIT_WORK_TREE",
];

/// The `git` command for `dir`, with repository-selecting environment variables removed.
pub fn command(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir);
    for var in REPOSITORY_ENV_VARS {
        cmd.env_remove(var);
    }
    cmd
}

/// Run `git <args>` in `dir` and return its stdout with the trailing line break removed.
///
/// A non-zero exit becomes [`RepoError::Git`] with git's stderr; a missing `git` binary becomes
/// [`RepoError::GitUnavailable`].
pub fn run<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Result<String, RepoError> {
    let output = output(dir, args)?;
    if output.status.success() {
        Ok(stdout_text(&output))
    } else {
        Err(failure(dir, args, &output))
    }
}

/// Like [`run`], but a non-zero exit is `Ok(None)` instead of an error (for queries such as
/// Whether `reference` (a full ref such as `refs/heads/main`) names an existing object.
pub fn ref_exists(dir: &Path, reference: &str) -> Result<bool, RepoError> {
    if let super::gitfs::Answer::Known(found) = super::gitfs::resolve_ref(dir, reference) {
        return Ok(found.is_some());
    }
    // `--end-of-options`: a reference is never read as an option, whatever its origin.
    Ok(run_optional(
        dir,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            reference,
        ],
    )?
    .is_some())
}

/// Whether the local branch `branch` exists.
pub fn branch_exists(dir: &Path, branch: &str) -> Result<bool, RepoError> {
    ref_exists(dir, &format!("refs/heads/{branch}"))
}

/// Like [`run`], but a non-zero exit is `Ok(None)` instead of an error (for queries such as
/// `git symbolic-ref --quiet HEAD` whose failure is an answer).
pub fn run_optional<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Result<Option<String>, RepoError> {
    let output = output(dir, args)?;
    Ok(output.status.success().then(|| stdout_text(&output)))
}

/// git subcommands that write the repository (index, refs, worktrees, objects): run under the
/// repository lock ([`super::lock`]), after git's `index.lock` is gone (both bounded waits).
const WRITING: &[&str] = &[
    "add",
    "am",
    "apply",
    "branch",
    "checkout",
    "cherry-pick",
    "commit",
    "merge",
    "mv",
    "rebase",
    "reset",
    "restore",
    "revert",
    "rm",
    "stash",
    "switch",
    "tag",
    "update-index",
    "update-ref",
    "worktree",
];

/// The subcommand of a git argument list (after `-c k=v`, `-C dir` and other options).
fn subcommand<S: AsRef<OsStr>>(args: &[S]) -> Option<&str> {
    let mut it = args.iter().map(|a| a.as_ref().to_str());
    while let Some(arg) = it.next() {
        let arg = arg?;
        match arg {
            "-c" | "-C" => {
                it.next();
            }
            a if a.starts_with('-') => {}
            a => return Some(a),
        }
    }
    None
}

/// The repository lock for a writing git command in `dir`, after git's own `index.lock` of that
/// checkout is gone; `None` for a reading command or outside a repository git can describe.
fn write_guard<S: AsRef<OsStr>>(
    dir: &Path,
    args: &[S],
) -> Result<Option<super::lock::RepoLock>, RepoError> {
    if !subcommand(args).is_some_and(|c| WRITING.contains(&c)) {
        return Ok(None);
    }
    let super::gitfs::Answer::Known(layout) = super::gitfs::layout(dir) else {
        return Ok(None);
    };
    let lock = super::lock::repo_lock(&super::lock::repo_lock_path(&layout.common_dir))?;
    super::lock::wait_for_index_lock(&layout.git_dir.join("index.lock"))?;
    Ok(Some(lock))
}

/// Run `f` holding the repository lock of the checkout `dir` is in, so a sequence of git
/// commands (stage, check, commit) is not interleaved with another spec-kitty process's.
pub fn with_repo_lock<T>(
    dir: &Path,
    f: impl FnOnce() -> Result<T, RepoError>,
) -> Result<T, RepoError> {
    let _lock = match super::gitfs::layout(dir) {
        super::gitfs::Answer::Known(layout) => Some(super::lock::repo_lock(
            &super::lock::repo_lock_path(&layout.common_dir),
        )?),
        super::gitfs::Answer::Unsure => None,
    };
    f()
}

fn output<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Result<Output, RepoError> {
    let _guard = write_guard(dir, args)?;
    let mut cmd = command(dir);
    cmd.args(args.iter().map(AsRef::as_ref));
    cmd.output().map_err(|source| RepoError::GitUnavailable {
        dir: dir.to_path_buf(),
        source,
    })
}

fn stdout_text(output: &Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

fn failure<S: AsRef<OsStr>>(dir: &Path, args: &[S], output: &Output) -> RepoError {
    RepoError::Git {
        args: args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        dir: dir.to_path_buf(),
        status: output.status.code(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    }
}

/// `git rev-parse --abbrev-ref HEAD`: the branch, or `HEAD` when detached; `None` when git
/// cannot say (not a repository, no commit yet for git's own answer).
pub fn head_abbrev(dir: &Path) -> Option<String> {
    use super::gitfs::{Answer, Head};
    match super::gitfs::head(dir) {
        Answer::Known(Head::Branch(b)) => {
            // git prints the branch only once it is born.
            match super::gitfs::head_commit(dir) {
                Answer::Known(Some(_)) => Some(b),
                Answer::Known(None) => None,
                Answer::Unsure => query(dir, &["rev-parse", "--abbrev-ref", "HEAD"]),
            }
        }
        Answer::Known(Head::Detached(_)) => Some("HEAD".to_owned()),
        Answer::Unsure => query(dir, &["rev-parse", "--abbrev-ref", "HEAD"]),
    }
}

/// `git rev-parse HEAD`: the commit checked out; `None` before the first commit.
pub fn head_sha(dir: &Path) -> Option<String> {
    super::gitfs::head_commit(dir).or_else(|| query(dir, &["rev-parse", "HEAD"]))
}

/// `git remote get-url <remote>`; `None` when the remote or its URL does not exist.
pub fn remote_url(dir: &Path, remote: &str) -> Option<String> {
    super::gitfs::remote_url(dir, remote)
        .or_else(|| query(dir, &["remote", "get-url", "--", remote]))
        .filter(|s| !s.trim().is_empty())
}

fn query(dir: &Path, args: &[&str]) -> Option<String> {
    run_optional(dir, args)
        .ok()
        .flatten()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}
