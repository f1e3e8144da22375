//! `merge-mission`: merge every lane branch into the mission branch, the mission branch into the
//! target with the requested strategy, mark approved work packages done, optionally push, then
//! remove the lane worktrees and branches.
//!
//! Fixes of upstream bugs: the strategy is honoured for the mission → target step, nothing is
//! printed on stdout, uncommitted status files in the primary checkout are never touched (the
//! merge runs in the checkout only through `git merge`, which keeps unrelated local changes), the
//! response lists `merged_wps` and reports whether worktrees were removed.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};

use super::envelope::{ApiError, Outcome};
use super::mission_ctx::{identity, obj, open};
use crate::app::{self, outbox::Outbox};
use crate::contract::types::ErrorCode as Code;
use crate::mission::lanes::{self, LanesFile};
use crate::mission::workflow::{self, MissionContext};
use crate::repo::git;
use crate::status::{
    DoneEvidence, EventStamper, Lane, LaneEvent, StatusRecord, TransitionRequest,
    validate_transition,
};

const STRATEGIES: [&str; 3] = ["merge", "rebase", "squash"];

fn preflight(ctx: &MissionContext, target: &str, errors: Vec<String>) -> ApiError {
    let mut fields = identity(ctx);
    fields.extend(obj(json!({"target_branch": target, "errors": errors})));
    ApiError::new(Code::PreflightFailed, "Merge failed").with(fields)
}

fn ref_exists(root: &Path, r: &str) -> bool {
    git::ref_exists(root, r).unwrap_or(false)
}

/// The worktree that has `branch` checked out, if any.
fn checked_out_at(root: &Path, branch: &str) -> Option<PathBuf> {
    let list = git::run(root, &["worktree", "list", "--porcelain"]).ok()?;
    let mut path = None;
    for line in list.lines() {
        if let Some(p) = line.strip_prefix("worktree ") {
            path = Some(PathBuf::from(p));
        } else if line == format!("branch refs/heads/{branch}") {
            return path;
        }
    }
    None
}

/// A detached temporary worktree at `rev`, removed on drop.
struct TempWorktree {
    root: PathBuf,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TempWorktree {
    fn new(root: &Path, rev: &str) -> Result<Self, String> {
        let dir =
            tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let path = dir.path().join("wt");
        git::run(
            root,
            &[
                "worktree",
                "add",
                "--quiet",
                "--detach",
                "--",
                &path.to_string_lossy(),
                rev,
            ],
        )
        .map_err(|e| e.to_string())?;
        Ok(Self {
            root: root.to_path_buf(),
            path,
            _dir: dir,
        })
    }
    fn head(&self) -> Result<String, String> {
        git::run(&self.path, &["rev-parse", "HEAD"])
            .map(|s| s.trim().to_string())
            .map_err(|e| e.to_string())
    }
}

impl Drop for TempWorktree {
    fn drop(&mut self) {
        let _ = git::run(
            &self.root,
            &[
                "worktree",
                "remove",
                "--force",
                "--",
                &self.path.to_string_lossy(),
            ],
        );
    }
}

fn merge_in(dir: &Path, source: &str, message: &str) -> Result<(), String> {
    git::run(
        dir,
        &["merge", "--no-edit", "--quiet", "-m", message, "--", source],
    )
    .map(|_| ())
    .map_err(|e| {
        let _ = git::run(dir, &["merge", "--abort"]);
        format!("merging {source} failed: {e}")
    })
}

/// Bring `target` to include `source` with `strategy`, in the worktree that has `target` checked
/// out, or in a temporary worktree whose result then moves the branch ref.
/// `source` is a revision; `label` names it in commit messages and errors.
fn integrate(
    root: &Path,
    target: &str,
    source: &str,
    label: &str,
    strategy: &str,
) -> Result<String, String> {
    let message = format!("Merge {label} into {target}");
    if strategy == "rebase" {
        let tmp = TempWorktree::new(root, source)?;
        git::run(&tmp.path, &["rebase", "--quiet", "--", target]).map_err(|e| {
            let _ = git::run(&tmp.path, &["rebase", "--abort"]);
            format!("rebasing {label} onto {target} failed: {e}")
        })?;
        let rebased = tmp.head()?;
        drop(tmp);
        return fast_forward(root, target, &rebased);
    }
    let run = |dir: &Path| -> Result<(), String> {
        if strategy == "squash" {
            git::run(dir, &["merge", "--squash", "--quiet", "--", source]).map_err(|e| {
                let _ = git::run(dir, &["reset", "--merge"]);
                format!("squash-merging {label} failed: {e}")
            })?;
            if git::run_optional(dir, &["diff", "--cached", "--quiet"])
                .map_err(|e| e.to_string())?
                .is_none()
            {
                git::run(
                    dir,
                    &[
                        "commit",
                        "--quiet",
                        "--no-verify",
                        "-m",
                        &format!("Squash merge {label} into {target}"),
                    ],
                )
                .map_err(|e| e.to_string())?;
            }
            Ok(())
        } else {
            merge_in(dir, source, &message)
        }
    };
    match checked_out_at(root, target) {
        Some(dir) => {
            run(&dir)?;
            git::run(&dir, &["rev-parse", "HEAD"])
                .map(|s| s.trim().to_string())
                .map_err(|e| e.to_string())
        }
        None => {
            let tmp = TempWorktree::new(root, target)?;
            run(&tmp.path)?;
            let head = tmp.head()?;
            git::run(
                root,
                &["update-ref", "--", &format!("refs/heads/{target}"), &head],
            )
            .map_err(|e| e.to_string())?;
            Ok(head)
        }
    }
}

fn fast_forward(root: &Path, target: &str, commit: &str) -> Result<String, String> {
    match checked_out_at(root, target) {
        Some(dir) => git::run(&dir, &["merge", "--ff-only", "--quiet", "--", commit])
            .map_err(|e| format!("fast-forward of {target} failed: {e}"))?,
        None => git::run(
            root,
            &["update-ref", "--", &format!("refs/heads/{target}"), commit],
        )
        .map_err(|e| e.to_string())?,
    };
    Ok(commit.to_string())
}

pub fn merge_mission(handle: &str, target: Option<&str>, strategy: &str, push: bool) -> Outcome {
    if !STRATEGIES.contains(&strategy) {
        let fields = obj(json!({"strategy": strategy, "supported": STRATEGIES}));
        return Err(ApiError::new(
            Code::UnsupportedStrategy,
            format!("Unsupported merge strategy '{strategy}'"),
        )
        .with(fields));
    }
    let ctx = open(handle)?;
    let root = ctx.root.clone();
    let target = match target {
        Some(t) => t.to_string(),
        None => ctx
            .meta
            .extra
            .get("merge_target_branch")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| ctx.meta.target_branch.clone())
            .unwrap_or_else(|| "main".into()),
    };
    if let Err(e) = crate::repo::fence::check_refname(&target) {
        return Err(preflight(
            &ctx,
            &target,
            vec![format!(
                "target {e} (pass a valid branch with --target, or fix merge_target_branch / \
                 target_branch in meta.json)"
            )],
        ));
    }
    let mut errors = Vec::new();
    if !ref_exists(&root, &format!("refs/heads/{target}"))
        && !ref_exists(&root, &format!("refs/remotes/origin/{target}"))
    {
        errors.push(format!(
            "Target branch '{target}' exists neither locally nor on origin"
        ));
    }
    let lanes_file = match LanesFile::load(&ctx.dir) {
        Ok(Some(f)) => Some(f),
        Ok(None) => {
            errors.push(
                "lanes.json is missing; run `spec-kitty agent mission finalize-tasks`".into(),
            );
            None
        }
        Err(e) => {
            errors.push(e.to_string());
            None
        }
    };
    let view = workflow::view(&ctx).map_err(|e| preflight(&ctx, &target, vec![e.to_string()]))?;
    for wp in &view.work_packages {
        if !matches!(wp.lane, Lane::Approved | Lane::Done) {
            errors.push(format!(
                "{} is in '{}'; only approved or done work packages can be merged",
                wp.wp_id,
                wp.lane.as_str()
            ));
        }
    }
    let Some(file) = lanes_file.filter(|_| errors.is_empty()) else {
        return Err(preflight(&ctx, &target, errors));
    };
    // 1. Lanes into the mission branch. The replay happens in a detached temporary worktree:
    // no ref (the mission branch, a local copy of an origin-only target) is created or moved
    // until every step has succeeded, so a failed replay leaves the repository as it was.
    let mission_branch = file.mission_branch.clone();
    let mut lane_branches = Vec::new();
    for lane in &file.lanes {
        let ws = lanes::workspace(&root, &file, lane);
        if !ref_exists(&root, &format!("refs/heads/{}", ws.branch)) {
            return Err(preflight(
                &ctx,
                &target,
                vec![format!("Lane branch {} does not exist", ws.branch)],
            ));
        }
        lane_branches.push(ws);
    }
    let target_is_local = ref_exists(&root, &format!("refs/heads/{target}"));
    let target_rev = if target_is_local {
        target.clone()
    } else {
        format!("origin/{target}")
    };
    let base = if ref_exists(&root, &format!("refs/heads/{mission_branch}")) {
        mission_branch.clone()
    } else {
        target_rev.clone()
    };
    let step = (|| -> Result<String, String> {
        let tmp = TempWorktree::new(&root, &base)?;
        for ws in &lane_branches {
            merge_in(
                &tmp.path,
                &ws.branch,
                &format!("Merge {} into {mission_branch}", ws.branch),
            )?;
        }
        let head = tmp.head()?;
        drop(tmp);
        if !target_is_local {
            // Only on origin: the local branch is created from it only now; removed again if
            // the integration fails.
            git::run(&root, &["branch", "--", &target, &target_rev]).map_err(|e| e.to_string())?;
        }
        // 2. The mission branch into the target.
        integrate(&root, &target, &head, &mission_branch, strategy).inspect_err(|_| {
            if !target_is_local {
                let _ = git::run(&root, &["branch", "-D", "--", &target]);
            }
        })
    })();
    let merged_commit = step.map_err(|e| preflight(&ctx, &target, vec![e]))?;

    // 3. Approved work packages are done once merged.
    let merged_wps: Vec<String> = file.lanes.iter().flat_map(|l| l.wp_ids.clone()).collect();
    mark_done(&ctx, &merged_wps);

    // 4. Push, then clean up.
    let mut fields = identity(&ctx);
    if push {
        if git::run_optional(&root, &["remote", "get-url", "--", "origin"])
            .ok()
            .flatten()
            .is_some()
        {
            if let Err(e) = git::run(&root, &["push", "--quiet", "--", "origin", &target]) {
                fields.insert("push_error".into(), json!(e.to_string()));
            }
        } else {
            fields.insert("push_error".into(), json!("no origin remote"));
        }
    }
    let mut removed = false;
    for ws in &lane_branches {
        if ws.path.exists()
            && git::run(
                &root,
                &[
                    "worktree",
                    "remove",
                    "--force",
                    "--",
                    &ws.path.to_string_lossy(),
                ],
            )
            .is_ok()
        {
            removed = true;
        }
        let _ = git::run(&root, &["branch", "-D", "--", &ws.branch]);
    }
    let _ = git::run(&root, &["branch", "-D", "--", &mission_branch]);
    let mut meta = ctx.meta.clone();
    let merged_at = crate::contract::Timestamp::now().to_string();
    meta.merged_at = Some(merged_at.clone());
    meta.merged_into = Some(target.clone());
    meta.merged_strategy = Some(strategy.to_string());
    meta.merged_push = Some(push);
    meta.merged_commit = Some(merged_commit.clone());
    let mut history = meta.merge_history.take().unwrap_or_default();
    history.push(json!({"merged_at": merged_at, "merged_into": target, "merged_strategy": strategy, "merged_commit": merged_commit}));
    let excess = history.len().saturating_sub(20);
    history.drain(..excess);
    meta.merge_history = Some(history);
    if let Err(e) = meta.save(&ctx.dir) {
        eprintln!("warning: merged, but meta.json could not record it: {e}");
    }
    fields.extend(obj(json!({
        "merged": true, "target_branch": target, "strategy": strategy, "merged_wps": merged_wps, "worktree_removed": removed,
    })));
    Ok(fields)
}

/// Append approved → done for merged work packages that are approved, with the evidence of
/// their approving review. Problems are reported on stderr; the merge itself has happened.
fn mark_done(ctx: &MissionContext, wps: &[String]) {
    let log = ctx.log();
    let result = (|| -> Result<(), String> {
        let lock = log.lock().map_err(|e| e.to_string())?;
        let state = lock.reduce().map_err(|e| e.to_string())?;
        let mut stamps = EventStamper::new();
        let mut records = Vec::new();
        for id in wps {
            let Some(s) = state.work_packages.get(id) else {
                continue;
            };
            if s.lane != Some(Lane::Approved) {
                continue;
            }
            let Some(rr) = s.review_result.value() else {
                eprintln!("warning: {id} has no recorded approval; it stays approved");
                continue;
            };
            let evidence = DoneEvidence::from_cli_json(
                &json!({"review": {"reviewer": rr.reviewer, "verdict": rr.verdict, "reference": rr.reference}}),
            );
            let Ok(evidence) = evidence else { continue };
            let mut req = TransitionRequest::new(Lane::Approved, Lane::Done);
            req.actor = Some("merge-mission");
            req.evidence = Some(&evidence);
            if validate_transition(&req).is_err() {
                continue;
            }
            let mut e = LaneEvent::new(
                stamps.stamp(),
                &ctx.meta.mission_slug,
                id.as_str(),
                Lane::Approved,
                Lane::Done,
                "merge-mission",
            );
            e.reason = Some("Merged into the target branch".into());
            e.evidence = Some(evidence);
            e.mission_id = ctx.meta.mission_id.clone();
            records.push(StatusRecord::Lane(e));
        }
        app::mission::record(ctx, &lock, &records, &mut Outbox::new(&ctx.root))
            .map_err(|e| e.to_string())?;
        Ok(())
    })();
    if let Err(e) = result {
        eprintln!("warning: merged, but the status log could not record done: {e}");
    }
}
