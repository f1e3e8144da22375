//! Where the project is: repository root discovery and the few git facts other modules need.
//!
//! # Project root discovery
//!
//! [`locate_project_root`] follows upstream's `core/paths.py::locate_project_root`:
//!
//! 1. `$SPECIFY_REPO_ROOT`, if it names an existing directory (the orchestrator sets it on every
//!    host call);
//! 2. walk up from the start directory; at each level
//!    - a `.git` **file** (a linked worktree, `gitdir: <main>/.git/worktrees/<name>`) is followed
//!      back to the **main** checkout through the worktree's `commondir`; that main checkout is the
//!      answer when it has a `.kittify/` directory;
//!    - a `.git` **directory** with a `.kittify/` beside it is the answer;
//!    - a `.kittify/` directory alone is the answer (non-git projects);
//! 3. otherwise git itself is asked (`git rev-parse --git-common-dir`) for the main checkout of the
//!    repository the start directory is in;
//! 4. otherwise [`RepoError::NotAProject`].
//!
//! So a command run inside a lane worktree `.worktrees/<mission>-lane-a/…` gets the primary
//! checkout, whose `kitty-specs/` is the authority (the worktree's own copy is never written).
//!
//! Only `.git` files with the worktree topology (`…/<x>.git/worktrees/<name>`) are followed;
//! submodules and `--separate-git-dir` checkouts also have `.git` files but are not worktrees.

pub mod atomic;
pub mod fence;
pub mod git;
pub mod gitfs;
pub mod lock;
pub mod memo;

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use atomic::{
    Durability, create_new_atomic, create_private_dir, create_private_file, replace_without_sync,
    write_atomic, write_atomic_all, write_atomic_private, write_durable,
};

/// The project marker directory.
pub const KITTIFY_DIR: &str = ".kittify";
/// Where spec-kitty puts lane worktrees, relative to the project root.
pub const WORKTREES_DIR: &str = ".worktrees";
/// Environment variable that overrides discovery.
pub const REPO_ROOT_ENV: &str = "SPECIFY_REPO_ROOT";

/// Errors of repository discovery and git queries.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// Discovery found neither a `.kittify/` marker nor a git repository.
    #[error(
        "not inside a spec-kitty project or git repository: {} \
         (run `spec-kitty init` there, or set {REPO_ROOT_ENV})",
        path.display()
    )]
    NotAProject { path: PathBuf },

    /// The `git` executable could not be started.
    #[error("cannot run git in {}: {source} (is git installed and on PATH?)", dir.display())]
    GitUnavailable {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },

    /// git ran and failed; `stderr` is git's own explanation.
    #[error("`git {args}` failed in {} (exit {}): {stderr}", dir.display(), status.map_or_else(|| "signal".to_owned(), |c| c.to_string()))]
    Git {
        args: String,
        dir: PathBuf,
        status: Option<i32>,
        stderr: String,
    },

    /// A lock (the repository lock, git's index.lock) stayed held for the whole bounded wait.
    #[error(transparent)]
    Lock(#[from] lock::LockError),

    /// A file-system error on a path discovery had to look at.
    #[error("cannot access {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Locate the main project root starting from `start`, honouring `$SPECIFY_REPO_ROOT`.
pub fn locate_project_root(start: &Path) -> Result<PathBuf, RepoError> {
    let env_root = std::env::var_os(REPO_ROOT_ENV);
    locate_project_root_with(start, env_root.as_deref())
}

/// Locate the main project root from the current working directory, honouring
/// `$SPECIFY_REPO_ROOT`.
pub fn locate_project_root_from_cwd() -> Result<PathBuf, RepoError> {
    let cwd = std::env::current_dir().map_err(|source| RepoError::Io {
        path: PathBuf::from("."),
        source,
    })?;
    locate_project_root(&cwd)
}

/// [`locate_project_root`] with the environment override passed in explicitly (`None` = unset).
pub fn locate_project_root_with(
    start: &Path,
    env_root: Option<&OsStr>,
) -> Result<PathBuf, RepoError> {
    if let Some(raw) = env_root.filter(|v| !v.is_empty()) {
        let candidate = Path::new(raw);
        if candidate.is_dir() {
            return canonical(candidate);
        }
    }

    let start = fs::canonicalize(start).map_err(|_| RepoError::NotAProject {
        path: start.to_path_buf(),
    })?;

    for candidate in start.ancestors() {
        let dot_git = candidate.join(".git");
        if dot_git.is_file()
            && let Some(main) = worktree_main_root(&dot_git)
            && main.join(KITTIFY_DIR).is_dir()
        {
            return Ok(main);
        }
        // A main checkout (`.git` directory) or a non-git project: the marker decides. Also
        // reached by a worktree whose main checkout lacks the marker.
        if candidate.join(KITTIFY_DIR).is_dir() {
            return Ok(candidate.to_path_buf());
        }
    }

    main_repo_root(&start).map_err(|_| RepoError::NotAProject { path: start })
}

/// The main checkout of the repository that `dir` is in, asked of git.
///
/// From a linked worktree this is the primary checkout, not the worktree. For a bare repository
/// (no main checkout) it is the top level of `dir`'s own worktree.
pub fn main_repo_root(dir: &Path) -> Result<PathBuf, RepoError> {
    if let gitfs::Answer::Known(layout) = gitfs::layout(dir) {
        if layout.common_dir.file_name() == Some(OsStr::new(".git"))
            && let Some(parent) = layout.common_dir.parent()
        {
            return Ok(parent.to_path_buf());
        }
        return Ok(layout.worktree);
    }
    let common = git::run(
        dir,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )?;
    let common = PathBuf::from(common);
    if common.file_name() == Some(OsStr::new(".git"))
        && let Some(parent) = common.parent()
    {
        return canonical(parent);
    }
    checkout_root(dir)
}

/// The top level of the checkout `dir` is in (for a linked worktree: the worktree itself).
pub fn checkout_root(dir: &Path) -> Result<PathBuf, RepoError> {
    if let gitfs::Answer::Known(layout) = gitfs::layout(dir) {
        return Ok(layout.worktree);
    }
    let top = git::run(dir, &["rev-parse", "--show-toplevel"])?;
    canonical(Path::new(&top))
}

/// The git directory of the checkout `dir` is in: `<root>/.git` for a main checkout,
/// `<main>/.git/worktrees/<name>` for a linked worktree. Never shared between checkouts.
pub fn git_dir(dir: &Path) -> Result<PathBuf, RepoError> {
    if let gitfs::Answer::Known(layout) = gitfs::layout(dir) {
        return Ok(layout.git_dir);
    }
    let path = git::run(dir, &["rev-parse", "--absolute-git-dir"])?;
    canonical(Path::new(&path))
}

/// Whether `dir` is inside a git work tree.
pub fn is_git_work_tree(dir: &Path) -> Result<bool, RepoError> {
    if let gitfs::Answer::Known(_) = gitfs::layout(dir) {
        return Ok(true);
    }
    Ok(git::run_optional(dir, &["rev-parse", "--is-inside-work-tree"])?.as_deref() == Some("true"))
}

/// The branch checked out in `root`: `Some(name)` (also for an unborn branch in a fresh
/// repository), `None` when HEAD is detached. Not being in a git repository is an error.
pub fn current_branch(root: &Path) -> Result<Option<String>, RepoError> {
    match gitfs::head(root) {
        gitfs::Answer::Known(gitfs::Head::Branch(b)) => return Ok(Some(b)),
        gitfs::Answer::Known(gitfs::Head::Detached(_)) => return Ok(None),
        gitfs::Answer::Unsure => {}
    }
    if let Some(branch) = git::run_optional(root, &["symbolic-ref", "--quiet", "--short", "HEAD"])?
    {
        return Ok(Some(branch));
    }
    // symbolic-ref also fails outside a repository: tell the two apart.
    git::run(root, &["rev-parse", "--git-dir"])?;
    Ok(None)
}

/// For a `.git` file of a linked worktree, the main checkout it belongs to.
///
/// Returns `None` for anything that is not a worktree pointer (submodules, separate git dirs,
/// unreadable or malformed files).
fn worktree_main_root(dot_git_file: &Path) -> Option<PathBuf> {
    let content = fs::read_to_string(dot_git_file).ok()?;
    let pointer = content.trim().strip_prefix("gitdir:")?.trim();
    if pointer.is_empty() {
        return None;
    }
    let base = dot_git_file.parent()?;
    let gitdir = base.join(pointer);
    // `<x>.git/worktrees/<name>`: the only topology that is a worktree.
    let worktrees = gitdir.parent()?;
    let common_guess = worktrees.parent()?;
    let is_worktree = worktrees.file_name() == Some(OsStr::new("worktrees"))
        && common_guess
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with(".git"));
    if !is_worktree {
        return None;
    }
    // Prefer git's own record of the common dir.
    let common = match fs::read_to_string(gitdir.join("commondir")) {
        Ok(text) if !text.trim().is_empty() => gitdir.join(text.trim()),
        _ => common_guess.to_path_buf(),
    };
    let common = fs::canonicalize(&common).ok()?;
    common.parent().map(Path::to_path_buf)
}

fn canonical(path: &Path) -> Result<PathBuf, RepoError> {
    fs::canonicalize(path).map_err(|source| RepoError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kittify_marker_without_git() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        fs::create_dir_all(root.join(".kittify")).unwrap();
        fs::create_dir_all(root.join("a/b")).unwrap();
        let found = locate_project_root_with(&root.join("a/b"), None).unwrap();
        assert_eq!(found, root);
    }

    #[test]
    fn env_override_wins_when_it_is_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        let other = root.join("elsewhere");
        fs::create_dir_all(&other).unwrap();
        fs::create_dir_all(root.join(".kittify")).unwrap();
        let found = locate_project_root_with(&root, Some(other.as_os_str())).unwrap();
        assert_eq!(found, other);
        // A missing directory is ignored.
        let found = locate_project_root_with(&root, Some(OsStr::new("/nonexistent/x"))).unwrap();
        assert_eq!(found, root);
    }

    #[test]
    fn submodule_style_git_file_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        let fake_main = root.join("main");
        fs::create_dir_all(fake_main.join(".kittify")).unwrap();
        fs::create_dir_all(fake_main.join(".git/modules/sub")).unwrap();
        let sub = root.join("sub");
        fs::create_dir_all(&sub).unwrap();
        fs::write(
            sub.join(".git"),
            format!("gitdir: {}\n", fake_main.join(".git/modules/sub").display()),
        )
        .unwrap();
        assert!(worktree_main_root(&sub.join(".git")).is_none());
    }

    #[test]
    fn worktree_pointer_without_commondir_uses_topology() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        let main = root.join("main");
        fs::create_dir_all(main.join(".git/worktrees/wt")).unwrap();
        let wt = root.join("wt");
        fs::create_dir_all(&wt).unwrap();
        fs::write(wt.join(".git"), "gitdir: ../main/.git/worktrees/wt\n").unwrap();
        assert_eq!(worktree_main_root(&wt.join(".git")), Some(main));
    }
}
