//! Lanes: `kitty-specs/<mission>/lanes.json` and the lane worktrees work packages run in.
//!
//! `finalize-tasks` computes one lane per work package, in dependency order (`lane-a`,
//! `lane-b`, …), each depending on the lanes of its work package's dependencies; this matches
//! what upstream produces for the e2e fixture and for dependency chains (orchestrator-api.md
//! §3.5–3.6). A lane runs in the worktree `.worktrees/<mission>-<lane_id>` on the branch
//! `kitty/mission-<mission>-<lane_id>`, parented on the mission branch `kitty/mission-<mission>`,
//! which starts at the target branch's tip.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::MissionError;
use super::wp::DependencyGraph;
use crate::repo::{self, RepoError, WORKTREES_DIR, git};

pub const LANES_FILE: &str = "lanes.json";

/// `lanes.json`, in upstream's key order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanesFile {
    pub version: u32,
    pub mission_slug: String,
    pub mission_id: Option<String>,
    pub mission_branch: String,
    pub target_branch: String,
    pub lanes: Vec<Lane>,
    #[serde(default)]
    pub computed_at: Option<String>,
    #[serde(default)]
    pub computed_from: Option<String>,
    #[serde(default)]
    pub planning_artifact_wps: Vec<String>,
    #[serde(default)]
    pub planning_commit_sha: Option<String>,
}

/// One lane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lane {
    pub lane_id: String,
    pub wp_ids: Vec<String>,
    #[serde(default)]
    pub write_scope: Vec<String>,
    #[serde(default)]
    pub predicted_surfaces: Vec<String>,
    #[serde(default)]
    pub depends_on_lanes: Vec<String>,
    #[serde(default)]
    pub parallel_group: u32,
}

/// `kitty/mission-<mission>`.
pub fn mission_branch(mission_slug: &str) -> String {
    format!("kitty/mission-{mission_slug}")
}

/// `lane-a`, …, `lane-z`, `lane-aa`, `lane-ab`, …
pub fn lane_id(index: usize) -> String {
    let mut n = index;
    let mut letters = Vec::new();
    loop {
        letters.push(b'a' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    letters.reverse();
    format!("lane-{}", String::from_utf8_lossy(&letters))
}

/// Compute lanes: one per work package, in topological order.
pub fn compute(
    graph: &DependencyGraph,
    owned_files: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<Lane>, MissionError> {
    let order = graph.topological_order()?;
    let mut lane_of: BTreeMap<String, (String, u32)> = BTreeMap::new();
    let mut lanes = Vec::with_capacity(order.len());
    for (i, wp) in order.iter().enumerate() {
        let id = lane_id(i);
        let mut depends_on = Vec::new();
        let mut group = 0;
        for dep in graph.dependencies(wp) {
            if let Some((lane, g)) = lane_of.get(dep.as_str()) {
                depends_on.push(lane.clone());
                group = group.max(g + 1);
            }
        }
        depends_on.sort();
        depends_on.dedup();
        lane_of.insert(wp.as_str().to_string(), (id.clone(), group));
        lanes.push(Lane {
            lane_id: id,
            wp_ids: vec![wp.as_str().to_string()],
            write_scope: owned_files.get(wp.as_str()).cloned().unwrap_or_default(),
            predicted_surfaces: Vec::new(),
            depends_on_lanes: depends_on,
            parallel_group: group,
        });
    }
    Ok(lanes)
}

impl LanesFile {
    pub fn path(mission_dir: &Path) -> PathBuf {
        mission_dir.join(LANES_FILE)
    }

    /// Read `lanes.json`; `Ok(None)` when there is none.
    pub fn load(mission_dir: &Path) -> Result<Option<Self>, MissionError> {
        let path = Self::path(mission_dir);
        let bytes = match repo::fence::read_project_file(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(MissionError::Read { path, source }),
        };
        let file: Self = serde_json::from_slice(&bytes).map_err(|e| MissionError::InvalidMeta {
            path: path.clone(),
            reason: format!(
                "not a valid lanes.json: {e} (fix the file, or delete it and rerun \
                 `spec-kitty agent mission finalize-tasks`)"
            ),
        })?;
        let dir_name = mission_dir.file_name().and_then(|n| n.to_str());
        file.validate(dir_name)
            .map_err(|reason| MissionError::InvalidMeta {
                path,
                reason: format!(
                    "{reason} (lanes.json is written by `spec-kitty agent mission finalize-tasks`: \
                 restore it from git history or delete it and rerun that command)"
                ),
            })?;
        Ok(Some(file))
    }

    /// Every value that reaches git or a path: the slug is the mission directory's name, the
    /// branches are valid ref names not starting with `-`, lane ids are `lane-<a-z0-9>` and
    /// work package ids are `WPnn`.
    pub fn validate(&self, dir_name: Option<&str>) -> Result<(), String> {
        if !super::names::is_safe_segment(&self.mission_slug)
            || dir_name.is_some_and(|d| d != self.mission_slug)
        {
            return Err(format!(
                "mission_slug {:?} is not this mission's directory name {:?}",
                self.mission_slug,
                dir_name.unwrap_or("")
            ));
        }
        crate::repo::fence::check_refname(&self.mission_branch)
            .map_err(|e| format!("mission_branch: {e}"))?;
        crate::repo::fence::check_refname(&self.target_branch)
            .map_err(|e| format!("target_branch: {e}"))?;
        for lane in &self.lanes {
            if !is_lane_id(&lane.lane_id) {
                return Err(format!(
                    "lane_id {:?} is not `lane-` followed by lowercase letters or digits",
                    lane.lane_id
                ));
            }
            crate::repo::fence::check_refname(&format!("{}-{}", self.mission_branch, lane.lane_id))
                .map_err(|e| format!("lane branch: {e}"))?;
            for dep in &lane.depends_on_lanes {
                if !is_lane_id(dep) {
                    return Err(format!("depends_on_lanes entry {dep:?} is not a lane id"));
                }
            }
            for wp in &lane.wp_ids {
                super::names::WpId::parse(wp).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// Write `lanes.json` atomically (indent 2, trailing newline).
    pub fn save(&self, mission_dir: &Path) -> Result<(), MissionError> {
        let path = Self::path(mission_dir);
        let mut text =
            serde_json::to_string_pretty(self).map_err(|e| MissionError::InvalidMeta {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        text.push('\n');
        repo::write_atomic(&path, text.as_bytes())
            .map_err(|source| MissionError::Write { path, source })
    }

    /// The lane a work package runs in.
    pub fn lane_for(&self, wp: &str) -> Option<&Lane> {
        self.lanes.iter().find(|l| l.wp_ids.iter().any(|w| w == wp))
    }
}

/// `lane-` followed by at least one lowercase ASCII letter or digit (`lane-a`, `lane-ab`).
pub fn is_lane_id(id: &str) -> bool {
    id.strip_prefix("lane-").is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 32
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// Where a lane runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneWorkspace {
    pub lane_id: String,
    pub branch: String,
    pub base_ref: String,
    pub path: PathBuf,
}

/// The workspace of `lane` (nothing is created).
pub fn workspace(root: &Path, lanes: &LanesFile, lane: &Lane) -> LaneWorkspace {
    LaneWorkspace {
        lane_id: lane.lane_id.clone(),
        branch: format!("{}-{}", lanes.mission_branch, lane.lane_id),
        base_ref: lanes.target_branch.clone(),
        path: root
            .join(WORKTREES_DIR)
            .join(format!("{}-{}", lanes.mission_slug, lane.lane_id)),
    }
}

/// Why a lane worktree could not be allocated.
#[derive(Debug, thiserror::Error)]
pub enum LaneError {
    #[error("the lane worktree {} is on '{found}', expected '{expected}'", path.display())]
    WrongBranch {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error(
        "{} exists but is not a git worktree; move it aside (the lane worktree is created there)",
        path.display()
    )]
    NotAWorktree { path: PathBuf },
    #[error(transparent)]
    Git(#[from] RepoError),
}

/// Create (or reuse) the lane's worktree on its branch. The mission branch is created at the
/// target branch's tip when missing; the lane branch is created on the mission branch.
/// Returns an error naming the cause; a reused worktree must be on the lane branch.
pub fn allocate(root: &Path, lanes: &LanesFile, lane: &Lane) -> Result<LaneWorkspace, LaneError> {
    let ws = workspace(root, lanes, lane);
    repair_half_made(root, &ws.path)?;
    if ws.path.exists() {
        let head = git::run(&ws.path, &["rev-parse", "--abbrev-ref", "HEAD"])?;
        if head.trim() != ws.branch {
            return Err(LaneError::WrongBranch {
                path: ws.path.clone(),
                found: head.trim().to_string(),
                expected: ws.branch.clone(),
            });
        }
        return Ok(ws);
    }
    if !git::branch_exists(root, &lanes.mission_branch)? {
        git::run(
            root,
            &["branch", "--", &lanes.mission_branch, &lanes.target_branch],
        )?;
    }
    let path = ws.path.to_string_lossy().into_owned();
    if git::branch_exists(root, &ws.branch)? {
        git::run(
            root,
            &["worktree", "add", "--quiet", "--", &path, &ws.branch],
        )?;
    } else {
        git::run(
            root,
            &[
                "worktree",
                "add",
                "--quiet",
                "-b",
                &ws.branch,
                "--",
                &path,
                &lanes.mission_branch,
            ],
        )?;
    }
    Ok(ws)
}

/// A lane worktree that a killed `git worktree add` left half made is removed (it was never
/// handed out: the claim is recorded after the worktree is complete), so the next claim creates
/// it again. Half made: an empty directory without `.git`; or a worktree git still marks
/// `initializing`, or whose HEAD does not resolve. A non-empty directory without `.git` is not
/// ours to remove and is reported.
fn repair_half_made(root: &Path, path: &Path) -> Result<(), LaneError> {
    if !path.is_dir() {
        return Ok(());
    }
    let dot_git = path.join(".git");
    let io = |source| RepoError::Io {
        path: path.to_path_buf(),
        source,
    };
    if !dot_git.exists() {
        let empty = std::fs::read_dir(path).map_err(io)?.next().is_none();
        if !empty {
            return Err(LaneError::NotAWorktree {
                path: path.to_path_buf(),
            });
        }
        std::fs::remove_dir(path).map_err(io)?;
        git::run(root, &["worktree", "prune"])?;
        return Ok(());
    }
    // Both small files are read only when they are regular files (not links, not FIFOs) of
    // at most 64 KiB: the `.git` file is in the checkout, where anything may have been put.
    let small = |p: &Path| {
        let meta = std::fs::symlink_metadata(p).ok()?;
        if !meta.is_file() || meta.len() > 64 * 1024 {
            return None;
        }
        std::fs::read(p)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let initializing = small(&dot_git)
        .and_then(|t| t.strip_prefix("gitdir:").map(|g| PathBuf::from(g.trim())))
        .and_then(|admin| small(&admin.join("locked")))
        .is_some_and(|reason| reason.contains("initializing"));
    let head_ok = git::run_optional(path, &["rev-parse", "--verify", "--quiet", "HEAD"])?.is_some();
    if initializing || !head_ok {
        eprintln!(
            "warning: the lane worktree {} was left half made (an interrupted `git worktree add`); \
             removing it and creating it again",
            path.display()
        );
        let p = path.to_string_lossy().into_owned();
        if git::run_optional(
            root,
            &["worktree", "remove", "--force", "--force", "--", &p],
        )?
        .is_none()
            && path.exists()
        {
            std::fs::remove_dir_all(path).map_err(io)?;
        }
        git::run(root, &["worktree", "prune"])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LanesFile {
        LanesFile {
            version: 1,
            mission_slug: "001-x".into(),
            mission_id: None,
            mission_branch: "kitty/mission-001-x".into(),
            target_branch: "main".into(),
            lanes: vec![Lane {
                lane_id: "lane-a".into(),
                wp_ids: vec!["WP01".into()],
                write_scope: vec![],
                predicted_surfaces: vec![],
                depends_on_lanes: vec![],
                parallel_group: 0,
            }],
            computed_at: None,
            computed_from: None,
            planning_artifact_wps: vec![],
            planning_commit_sha: None,
        }
    }

    #[test]
    fn committed_values_that_reach_git_or_paths_are_validated() {
        assert!(sample().validate(Some("001-x")).is_ok());
        let cases: Vec<fn(&mut LanesFile)> = vec![
            |f| f.mission_branch = "-D".into(),
            |f| f.target_branch = "--orphan".into(),
            |f| f.target_branch = "a..b".into(),
            |f| f.mission_slug = "../../escaped".into(),
            |f| f.mission_slug = "002-other".into(),
            |f| f.lanes[0].lane_id = "../x".into(),
            |f| f.lanes[0].lane_id = "lane-A".into(),
            |f| f.lanes[0].wp_ids[0] = "../WP01".into(),
            |f| f.lanes[0].depends_on_lanes.push("-x".into()),
        ];
        for change in cases {
            let mut f = sample();
            change(&mut f);
            assert!(f.validate(Some("001-x")).is_err(), "{f:?}");
        }
    }

    #[test]
    fn lane_ids_continue_after_z() {
        assert_eq!(lane_id(0), "lane-a");
        assert_eq!(lane_id(25), "lane-z");
        assert_eq!(lane_id(26), "lane-aa");
        assert_eq!(lane_id(27), "lane-ab");
    }
}
