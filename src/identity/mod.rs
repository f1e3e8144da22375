//! Project identity: `.kittify/config.yaml` `project:` keys, `node_id`, and the per-checkout
//! build id.
//!
//! # On disk (same as upstream v3.1.0)
//!
//! ```yaml
//! project:
//!   uuid: 8a4a7da6-a97c-4bb4-893a-b31664abfee4   # uuid4
//!   slug: spec-kitty                             # from origin's URL, else the directory name
//!   node_id: d036a097a835                        # sha256("host:user")[:12]
//!   build_id: f97f4d9b-d2fa-4ce6-a7ee-9bbca7308aab  # uuid4, written once for upstream
//!   repo_slug: owner/repo                        # optional override, never invented
//! ```
//!
//! Only missing keys are ever added, losslessly (see [`config`]); nothing else in the file moves.
//! A config that does not parse is an error and is left untouched.
//!
//! # Build id: one per checkout
//!
//! Upstream keeps `project.build_id` in the committed `config.yaml`, so every clone and every
//! worktree of a repository reports the same build id (runtime reference §0.5). We keep writing
//! `project.build_id` once, when absent, so upstream still finds one, and never change it. The
//! build id **this implementation reports** ([`ProjectIdentity::build_id`]) is instead stored per
//! checkout, untracked, in `<git dir of the checkout>/spec-kitty/build_id` — `.git/spec-kitty/…`
//! for the main checkout and `.git/worktrees/<name>/spec-kitty/…` for a linked worktree (what
//! `git rev-parse --git-dir` answers there). It is a uuid4 generated on first use and written
//! atomically, first writer wins. Two worktrees of one repository therefore have different build
//! ids, and a fresh clone gets its own. See [`checkout_build_id`].
//!
//! A project that is not a git repository has no git dir; there the shared `project.build_id`
//! is used.

mod build_id;
pub mod config;
pub mod tracker_binding;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use uuid::Uuid;

pub use crate::events::node::{generate_node_id, node_id_for};
pub use build_id::{BUILD_ID_FILE, checkout_build_id};
pub use config::ProjectConfig;

use crate::repo::{self, KITTIFY_DIR, RepoError};

/// The config file, relative to the project root.
pub const CONFIG_FILE: &str = "config.yaml";

/// Errors of identity loading, creation and `init`.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// `.kittify/config.yaml` is not valid YAML (or not UTF-8).
    #[error(
        "cannot parse {}: {message}. Fix the file by hand; it was not modified",
        path.display()
    )]
    MalformedConfig { path: PathBuf, message: String },

    /// The top level or `project:` is not a mapping.
    #[error(
        "{what} in {} must be a mapping, found {found}. Fix the file by hand; it was not modified",
        path.display()
    )]
    NotAMapping {
        path: PathBuf,
        what: String,
        found: String,
    },

    /// A `project:` key holds something unusable.
    #[error(
        "project.{key} in {} is invalid: {reason}. Fix or remove the key; the file was not modified",
        path.display()
    )]
    InvalidField {
        path: PathBuf,
        key: String,
        reason: String,
    },

    /// The lossless edit did not produce exactly the intended change (a bug, or YAML the editor
    /// does not understand). Nothing was written.
    #[error(
        "refusing to write {}: editing it would not preserve its content ({detail}). \
         Add the missing project keys by hand",
        path.display()
    )]
    EditFailed { path: PathBuf, detail: String },

    /// The per-checkout build id file holds something that is not a UUID.
    #[error(
        "the build id file {} holds {content:?}, not a UUID. Delete the file to get a new build id",
        path.display()
    )]
    CorruptBuildId { path: PathBuf, content: String },

    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// A complete project identity, as sent in tracker bind payloads (field order = upstream's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectIdentity {
    /// `project.uuid`.
    pub uuid: Uuid,
    /// `project.slug`.
    pub slug: String,
    /// `project.node_id`.
    pub node_id: String,
    /// `project.repo_slug`, only when configured.
    pub repo_slug: Option<String>,
    /// The build id of the checkout this identity was resolved for (see the module docs); not
    /// `project.build_id`.
    pub build_id: String,
}

/// Path of the config file under `root`.
pub fn config_path(root: &Path) -> PathBuf {
    root.join(KITTIFY_DIR).join(CONFIG_FILE)
}

/// Read what `root/.kittify/config.yaml` says under `project:`. Never writes. A missing file is
/// an empty [`ProjectConfig`]; a malformed one is an error.
pub fn load(root: &Path) -> Result<ProjectConfig, IdentityError> {
    config::read(&config_path(root))
}

/// Load the identity of the project at `root`, adding whatever `project:` keys are missing, and
/// resolve the build id of the checkout at `root`.
///
/// Missing keys: `uuid` (uuid4), `slug` (see [`derive_slug`]), `node_id`
/// ([`generate_node_id`]) and `build_id` (uuid4, for upstream). `repo_slug` is never invented.
/// `.kittify/` is created when needed.
pub fn ensure(root: &Path) -> Result<ProjectIdentity, IdentityError> {
    Ok(ensure_reporting(root, root)?.0)
}

/// [`ensure`] for the checkout that `checkout_dir` is in: the config comes from the main project
/// root (found with [`repo::locate_project_root`]), the build id from that checkout, so a lane
/// worktree reports its own build id.
pub fn ensure_for_checkout(checkout_dir: &Path) -> Result<ProjectIdentity, IdentityError> {
    let root = repo::locate_project_root(checkout_dir)?;
    Ok(ensure_reporting(&root, checkout_dir)?.0)
}

/// The slug a new project gets: the last path segment of `git remote get-url origin` without
/// `.git`, else the directory name; lowercased, `_` and spaces turned into `-`.
pub fn derive_slug(root: &Path) -> String {
    let from_remote = repo::git::remote_url(root, "origin").and_then(|url| remote_repo_name(&url));
    let raw = from_remote.unwrap_or_else(|| {
        fs::canonicalize(root)
            .ok()
            .as_deref()
            .and_then(Path::file_name)
            .or_else(|| root.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    normalize_slug(&raw)
}

/// Last segment of a remote URL (`https://host/o/r.git`, `git@host:o/r.git`, `host:r`, a path).
fn remote_repo_name(url: &str) -> Option<String> {
    let trimmed = url.trim().trim_end_matches('/');
    let last = trimmed.rsplit(['/', ':']).next()?;
    let name = last.strip_suffix(".git").unwrap_or(last);
    (!name.is_empty()).then(|| name.to_owned())
}

fn normalize_slug(raw: &str) -> String {
    raw.to_lowercase().replace(['_', ' '], "-")
}

/// What [`init`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// The project directory (canonical).
    pub root: PathBuf,
    /// The directory did not exist and was created.
    pub created_dir: bool,
    /// `git init` was run (the directory was not inside a git work tree).
    pub git_initialized: bool,
    /// `.kittify/config.yaml` did not exist and was created.
    pub config_created: bool,
    /// The `project:` keys that were added.
    pub keys_added: Vec<&'static str>,
    /// `.worktrees/` (the lane worktrees) was added to `.gitignore`.
    pub gitignore_updated: bool,
    /// The resulting identity.
    pub identity: ProjectIdentity,
}

/// `spec-kitty init [DIR]`: create `dir` if needed, `git init` it unless it is already inside a
/// git work tree, and create or complete `.kittify/config.yaml`'s identity.
///
/// Idempotent: a second run changes nothing. Existing content is never overwritten; only missing
/// `project:` keys are added.
pub fn init(dir: &Path) -> Result<InitReport, IdentityError> {
    let created_dir = !dir.exists();
    fs::create_dir_all(dir).map_err(|source| IdentityError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let root = fs::canonicalize(dir).map_err(|source| IdentityError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let git_initialized = if repo::is_git_work_tree(&root)? {
        false
    } else {
        repo::git::run(&root, &["init", "--quiet"])?;
        true
    };
    let config_created = !config_path(&root).exists();
    let (identity, keys_added) = ensure_reporting(&root, &root)?;
    let gitignore_updated = ignore_worktrees(&root)?;
    Ok(InitReport {
        root,
        created_dir,
        git_initialized,
        config_created,
        keys_added,
        gitignore_updated,
        identity,
    })
}

/// The `.gitignore` line that keeps lane worktrees out of `git add -A` (as upstream's init).
pub const WORKTREES_IGNORE: &str = ".worktrees/";

/// Append `.worktrees/` to `<root>/.gitignore` unless a line already ignores it. Returns
/// whether the file changed.
fn ignore_worktrees(root: &Path) -> Result<bool, IdentityError> {
    let path = root.join(".gitignore");
    let current = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(IdentityError::Read { path, source }),
    };
    let covered = current.lines().any(|l| {
        matches!(
            l.trim(),
            ".worktrees" | ".worktrees/" | "/.worktrees" | "/.worktrees/"
        )
    });
    if covered {
        return Ok(false);
    }
    let mut text = current;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(WORKTREES_IGNORE);
    text.push('\n');
    repo::write_atomic(&path, text.as_bytes())
        .map_err(|source| IdentityError::Write { path, source })?;
    Ok(true)
}

/// Complete the config at `root`; the build id is that of the checkout at `checkout`.
fn ensure_reporting(
    root: &Path,
    checkout: &Path,
) -> Result<(ProjectIdentity, Vec<&'static str>), IdentityError> {
    let path = config_path(root);
    let current = config::read(&path)?;

    let mut wanted: Vec<(&'static str, String)> = Vec::new();
    if current.uuid.is_none() {
        wanted.push(("uuid", Uuid::new_v4().to_string()));
    }
    if current.slug.is_none() {
        wanted.push(("slug", derive_slug(root)));
    }
    if current.node_id.is_none() {
        wanted.push(("node_id", generate_node_id()));
    }
    if current.build_id.is_none() {
        wanted.push(("build_id", Uuid::new_v4().to_string()));
    }

    let (cfg, added) = if wanted.is_empty() {
        (current, Vec::new())
    } else {
        let added = config::add_missing(&path, &wanted)?;
        (config::read(&path)?, added)
    };

    let missing = |key: &str| IdentityError::InvalidField {
        path: path.clone(),
        key: key.to_owned(),
        reason: "missing after writing it".to_owned(),
    };
    let shared_build_id = cfg.build_id.clone().ok_or_else(|| missing("build_id"))?;
    let build_id = if repo::is_git_work_tree(checkout)? {
        checkout_build_id(checkout)?
    } else {
        shared_build_id
    };
    let identity = ProjectIdentity {
        uuid: cfg.uuid.ok_or_else(|| missing("uuid"))?,
        slug: cfg.slug.clone().ok_or_else(|| missing("slug"))?,
        node_id: cfg.node_id.clone().ok_or_else(|| missing("node_id"))?,
        repo_slug: cfg.repo_slug.clone(),
        build_id,
    };
    Ok((identity, added))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_names() {
        for (url, want) in [
            (
                "https://github.com/Priivacy-ai/spec-kitty.git",
                "spec-kitty",
            ),
            ("git@github.com:Owner/My_Repo.git\n", "My_Repo"),
            ("ssh://git@host:22/a/b/c/", "c"),
            ("host:repo", "repo"),
            ("/srv/git/proj.git", "proj"),
        ] {
            assert_eq!(remote_repo_name(url).as_deref(), Some(want), "{url}");
        }
        assert_eq!(remote_repo_name(""), None);
        assert_eq!(remote_repo_name("https://x/.git"), None);
    }

    #[test]
    fn slug_normalisation() {
        assert_eq!(normalize_slug("My_Cool Project"), "my-cool-project");
    }

    #[test]
    fn non_git_project_uses_shared_build_id() {
        let dir = tempfile::tempdir().unwrap();
        // Make sure no enclosing repository is found: the temp dir is outside any checkout.
        if repo::is_git_work_tree(dir.path()).unwrap_or(true) {
            return;
        }
        let id = ensure(dir.path()).unwrap();
        let cfg = load(dir.path()).unwrap();
        assert_eq!(cfg.build_id.as_deref(), Some(id.build_id.as_str()));
        assert_eq!(cfg.uuid, Some(id.uuid));
        // Idempotent.
        let before = fs::read(config_path(dir.path())).unwrap();
        assert_eq!(ensure(dir.path()).unwrap(), id);
        assert_eq!(fs::read(config_path(dir.path())).unwrap(), before);
    }
}
