//! The per-checkout build id (see the module docs of [`crate::identity`]).

use std::fs;
use std::io;
use std::path::Path;

use uuid::Uuid;

use super::IdentityError;
use crate::repo::{self, create_new_atomic};

/// Where the build id lives, relative to the checkout's git dir.
pub const BUILD_ID_FILE: &str = "spec-kitty/build_id";

/// The build id of the checkout containing `checkout_dir`, created on first use.
///
/// Stored in `<git dir>/spec-kitty/build_id`, where the git dir is the checkout's own
/// (`git rev-parse --git-dir`): never committed, never shared by two worktrees. Creation is atomic
/// and first-writer-wins, so concurrent first calls agree on one id.
pub fn checkout_build_id(checkout_dir: &Path) -> Result<String, IdentityError> {
    let git_dir = repo::git_dir(checkout_dir)?;
    let path = git_dir.join(BUILD_ID_FILE);
    if let Some(existing) = read(&path)? {
        return Ok(existing);
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|source| IdentityError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let fresh = Uuid::new_v4().to_string();
    let created = create_new_atomic(&path, format!("{fresh}\n").as_bytes()).map_err(|source| {
        IdentityError::Write {
            path: path.clone(),
            source,
        }
    })?;
    if created {
        return Ok(fresh);
    }
    // Another process won the race: use its id.
    read(&path)?.ok_or_else(|| IdentityError::Read {
        path: path.clone(),
        source: io::Error::new(io::ErrorKind::NotFound, "vanished after creation"),
    })
}

fn read(path: &Path) -> Result<Option<String>, IdentityError> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let content = text.trim();
            match Uuid::parse_str(content) {
                Ok(id) => Ok(Some(id.hyphenated().to_string())),
                Err(_) => Err(IdentityError::CorruptBuildId {
                    path: path.to_path_buf(),
                    content: content.to_owned(),
                }),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(IdentityError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}
