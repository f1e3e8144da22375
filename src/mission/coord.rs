//! Coordination-topology missions (upstream 3.2.7: meta.json `topology: "coord"` or
//! `"lanes_with_coord"` with a `coordination_branch`): the status log lives on the
//! coordination branch, checked out in the coordination worktree
//! `.worktrees/<slug>-<mid8>-coord/kitty-specs/<slug>-<mid8>/`, not in the primary checkout.
//! Upstream reads it there (or from the branch ref while no worktree exists) and commits each
//! status change on that branch; this CLI does the same, so both read one log.
//!
//! Names follow upstream's coordination grammar (`lanes.branch_naming.coord_mission_dir_name`):
//! `mid8` is `meta.mid8`, else the first 8 characters of `mission_id`, else the slug's
//! `-<mid8>` tail; the directory is the slug verbatim when it already ends in `-<mid8>`.
//! Deliberate difference: upstream materializes the worktree only to write and reads the branch
//! ref otherwise; this CLI materializes it on first use (read or write), a checkout of an
//! existing branch under the ignored `.worktrees/`.

use serde_json::Value;
use std::path::{Path, PathBuf};

use super::meta::MissionMeta;
use crate::repo::{self, git};

/// Where a coordination-topology mission keeps its status log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordSurface {
    /// The coordination branch (`meta.coordination_branch`).
    pub branch: String,
    /// The coordination worktree.
    pub worktree: PathBuf,
    /// The mission directory inside it (holds `status.events.jsonl`, `status.json`).
    pub dir: PathBuf,
}

/// The topologies whose status log lives on the coordination branch.
const COORD_TOPOLOGIES: &[&str] = &["coord", "lanes_with_coord"];

/// The coordination surface of the mission, `None` for a coord-less topology.
pub fn surface(root: &Path, meta: &MissionMeta) -> Option<CoordSurface> {
    let topology = meta.extra.get("topology").and_then(Value::as_str)?;
    if !COORD_TOPOLOGIES.contains(&topology) {
        return None;
    }
    let branch = meta
        .extra
        .get("coordination_branch")
        .and_then(Value::as_str)
        .filter(|b| !b.trim().is_empty())?
        .to_string();
    let mid8 = mid8(meta)?;
    let slug = &meta.mission_slug;
    let suffix = format!("-{mid8}");
    let dir_name = if slug.ends_with(&suffix) {
        slug.clone()
    } else {
        format!("{slug}{suffix}")
    };
    let worktree = root.join(".worktrees").join(format!("{dir_name}-coord"));
    let dir = worktree.join(super::KITTY_SPECS_DIR).join(&dir_name);
    Some(CoordSurface {
        branch,
        worktree,
        dir,
    })
}

fn mid8(meta: &MissionMeta) -> Option<String> {
    if let Some(m) = meta.extra.get("mid8").and_then(Value::as_str)
        && !m.trim().is_empty()
    {
        return Some(m.trim().to_string());
    }
    // The mid8 becomes part of a worktree path: letters and digits only (meta.json's own
    // `mid8` is checked when meta.json is read).
    if let Some(id) = &meta.mission_id
        && id.len() >= 8
        && id.as_bytes()[..8].iter().all(u8::is_ascii_alphanumeric)
    {
        return Some(id[..8].to_string());
    }
    let tail = meta.mission_slug.rsplit('-').next()?;
    (tail.len() == 8 && tail.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| tail.to_ascii_uppercase())
}

impl CoordSurface {
    /// Check out the coordination branch in the coordination worktree when it is not there
    /// yet. An absent branch is an error naming it.
    pub fn materialize(&self, root: &Path) -> Result<(), repo::RepoError> {
        if self.worktree.join(".git").exists() {
            return Ok(());
        }
        if !git::branch_exists(root, &self.branch)? {
            return Err(repo::RepoError::Git {
                args: format!("worktree add {}", self.worktree.display()),
                dir: root.to_path_buf(),
                status: None,
                stderr: format!(
                    "the mission's coordination branch {} does not exist (meta.json \
                     `coordination_branch`); recreate it or set the mission's topology",
                    self.branch
                ),
            });
        }
        let path = self.worktree.to_string_lossy().into_owned();
        git::run(
            root,
            &["worktree", "add", "--quiet", "--", &path, &self.branch],
        )?;
        Ok(())
    }

    /// Commit the status files on the coordination branch (as upstream does after each
    /// status change). `None` when nothing changed.
    pub fn commit(&self, message: &str) -> Result<Option<String>, repo::RepoError> {
        let paths: Vec<String> = ["status.events.jsonl", "status.json"]
            .iter()
            .map(|f| self.dir.join(f))
            .filter(|p| p.exists())
            .map(|p| {
                p.strip_prefix(&self.worktree)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        super::workflow::commit_paths(&self.worktree, &paths, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(extra: Value, slug: &str, id: Option<&str>) -> MissionMeta {
        let mut m = MissionMeta::new(slug.to_string(), "software-dev".to_string());
        m.mission_id = id.map(str::to_string);
        if let Value::Object(o) = extra {
            m.extra.extend(o);
        }
        m
    }

    #[test]
    fn upstreams_names() {
        let root = Path::new("/r");
        let m = meta(
            json!({"topology": "coord", "coordination_branch": "kitty/mission-cart-01M8Y4GJ"}),
            "cart-01M8Y4GJ",
            Some("01M8Y4GJBEZN3N5WXX3AVSGHR2"),
        );
        let s = surface(root, &m).unwrap();
        assert_eq!(s.worktree, Path::new("/r/.worktrees/cart-01M8Y4GJ-coord"));
        assert_eq!(
            s.dir,
            Path::new("/r/.worktrees/cart-01M8Y4GJ-coord/kitty-specs/cart-01M8Y4GJ")
        );
        let m = meta(
            json!({"topology": "lanes_with_coord", "coordination_branch": "b"}),
            "060-test",
            Some("01COORD0XXXX"),
        );
        assert!(
            surface(root, &m)
                .unwrap()
                .dir
                .ends_with("kitty-specs/060-test-01COORD0")
        );
    }

    #[test]
    fn coordless_topologies_use_the_primary_checkout() {
        let root = Path::new("/r");
        for extra in [
            json!({"topology": "lanes", "coordination_branch": "b"}),
            json!({"topology": "single_branch"}),
            json!({"coordination_branch": "b"}),
            json!({"topology": "coord"}),
        ] {
            assert_eq!(surface(root, &meta(extra, "x", Some("01M8Y4GJBEZN"))), None);
        }
    }
}
