//! The orchestrator's work-package rules as use-cases: claims, dependency gates, lane
//! allocation, the for_review commit gate, readiness, acceptance. The front end
//! (`orchestrator_api`) parses, calls these, and renders their outcome; the pure decisions are
//! unit-tested here.

use std::path::Path;

use crate::mission::MissionMeta;
use crate::mission::lanes::{self, LanesFile};
use crate::mission::workflow::{MissionContext, MissionView, WpView};
use crate::repo::git;
use crate::status::Lane;

/// A dependency counts as satisfied once approved or done.
pub fn satisfied(lane: Option<Lane>) -> bool {
    matches!(lane, Some(Lane::Approved | Lane::Done))
}

/// The dependencies of a work package that are not satisfied, in order.
pub fn unsatisfied<'d>(
    dependencies: impl IntoIterator<Item = &'d str>,
    lane_of: impl Fn(&str) -> Option<Lane>,
) -> Vec<String> {
    dependencies
        .into_iter()
        .filter(|d| !satisfied(lane_of(d)))
        .map(str::to_owned)
        .collect()
}

/// Work packages ready to start: finalized, planned, every dependency satisfied.
pub fn ready(view: &MissionView) -> Vec<&WpView> {
    let lane_of = |id: &str| {
        view.work_packages
            .iter()
            .find(|w| w.wp_id == id && w.has_events)
            .map(|w| w.lane)
    };
    view.work_packages
        .iter()
        .filter(|w| {
            w.has_events
                && w.lane == Lane::Planned
                && w.dependencies.iter().all(|d| satisfied(lane_of(d)))
        })
        .collect()
}

/// Finalized work packages per display lane, in display order.
pub fn lane_summary(view: &MissionView) -> Vec<(Lane, usize)> {
    Lane::DISPLAY
        .iter()
        .map(|lane| {
            let n = view
                .work_packages
                .iter()
                .filter(|w| w.has_events && w.lane == *lane)
                .count();
            (*lane, n)
        })
        .collect()
}

/// What `start-implementation` may do for a work package in `lane` held by `holder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Move from `from` through `claimed` to `in_progress`.
    Start { from: Lane },
    /// Already in progress for this actor: nothing to record.
    AlreadyInProgress,
    /// Held by another actor.
    ClaimedByOther,
    /// No lane yet: finalize-tasks has not run.
    NotFinalized,
    /// A lane implementation cannot start from.
    WrongLane(Lane),
}

/// The claim rule. The host's own placeholder actors (`implement-command`, `unknown`) never
/// block a claim.
pub fn claim(lane: Option<Lane>, holder: &str, actor: &str) -> Claim {
    let same_actor = holder == actor || holder == "implement-command" || holder == "unknown";
    match lane {
        None | Some(Lane::Genesis) => Claim::NotFinalized,
        Some(Lane::InProgress) if same_actor => Claim::AlreadyInProgress,
        Some(Lane::InProgress) => Claim::ClaimedByOther,
        Some(Lane::Claimed) if !same_actor => Claim::ClaimedByOther,
        Some(from @ (Lane::Planned | Lane::Claimed)) => Claim::Start { from },
        Some(other) => Claim::WrongLane(other),
    }
}

/// The steps `start-implementation` records from `from` (`planned → claimed → in_progress`,
/// or `claimed → in_progress`).
pub fn implementation_steps(from: Lane) -> Vec<(Lane, Lane)> {
    let mut steps = Vec::new();
    let mut step = from;
    for to in [Lane::Claimed, Lane::InProgress] {
        if step == Lane::Claimed && to == Lane::Claimed {
            continue;
        }
        steps.push((step, to));
        step = to;
    }
    steps
}

/// Lanes whose transition needs a policy (host HEAD): not the not-started bucket, not
/// terminal, not blocked.
pub fn needs_policy(lane: Lane) -> bool {
    matches!(
        lane,
        Lane::Claimed | Lane::InProgress | Lane::ForReview | Lane::InReview | Lane::Approved
    )
}

/// Whether every subtask of the roster is marked done.
pub fn subtasks_complete<'r>(
    roster: impl IntoIterator<Item = &'r str>,
    done: impl Fn(&str) -> bool,
) -> bool {
    roster.into_iter().all(done)
}

/// Work packages that keep a mission from being accepted (not approved or done); `Err` also
/// when the mission has no work package at all.
pub fn acceptance_blockers(view: &MissionView) -> Result<(), Vec<String>> {
    let incomplete: Vec<String> = view
        .work_packages
        .iter()
        .filter(|w| !matches!(w.lane, Lane::Approved | Lane::Done))
        .map(|w| w.wp_id.clone())
        .collect();
    if incomplete.is_empty() && !view.work_packages.is_empty() {
        Ok(())
    } else {
        Err(incomplete)
    }
}

/// How many acceptances meta.json's history keeps.
pub const ACCEPTANCE_HISTORY_LIMIT: usize = 20;

/// meta.json after an orchestrator acceptance at `accepted_at` by `actor` (history capped).
pub fn accepted_meta(meta: &MissionMeta, actor: &str, accepted_at: &str) -> MissionMeta {
    let mut meta = meta.clone();
    meta.accepted_at = Some(accepted_at.to_owned());
    meta.accepted_by = Some(actor.to_owned());
    meta.acceptance_mode = Some("orchestrator".into());
    meta.accepted_from_commit = None;
    meta.accept_commit = None;
    let mut history = meta.acceptance_history.take().unwrap_or_default();
    history.push(serde_json::json!({
        "accepted_at": accepted_at, "accepted_by": actor, "acceptance_mode": "orchestrator"
    }));
    let excess = history.len().saturating_sub(ACCEPTANCE_HISTORY_LIMIT);
    history.drain(..excess);
    meta.acceptance_history = Some(history);
    meta
}

/// Allocate the lane worktree and merge the branches of the lane's dependency lanes into it.
pub fn allocate_lane(root: &Path, file: &LanesFile, lane: &lanes::Lane) -> Result<(), String> {
    let ws = lanes::allocate(root, file, lane).map_err(|e| e.to_string())?;
    for dep in &lane.depends_on_lanes {
        let Some(dep_lane) = file.lanes.iter().find(|l| &l.lane_id == dep) else {
            continue;
        };
        let branch = lanes::workspace(root, file, dep_lane).branch;
        if !git::branch_exists(root, &branch).map_err(|e| e.to_string())? {
            continue;
        }
        if let Err(e) = git::run(&ws.path, &["merge", "--no-edit", "--quiet", "--", &branch]) {
            let _ = git::run(&ws.path, &["merge", "--abort"]);
            return Err(format!("merging dependency lane {branch} failed: {e}"));
        }
    }
    Ok(())
}

/// The lane a work package may not leave for review yet: no implementation commit on its lane
/// branch beyond the base ref (host HEAD's commit gate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoImplementationCommit {
    pub lane_id: String,
    pub branch: String,
    pub base_ref: String,
}

/// The for_review commit gate. A work package outside any lane passes.
pub fn for_review_commit_gate(
    ctx: &MissionContext,
    wp: &str,
) -> Result<(), NoImplementationCommit> {
    let Ok(Some(file)) = LanesFile::load(&ctx.dir) else {
        return Ok(());
    };
    let Some(lane) = file.lane_for(wp) else {
        return Ok(());
    };
    let ws = lanes::workspace(&ctx.root, &file, lane);
    let range = format!("{}..{}", ws.base_ref, ws.branch);
    let commits = git::run_optional(
        &ctx.root,
        &["rev-list", "--count", "--end-of-options", &range, "--"],
    )
    .ok()
    .flatten()
    .and_then(|s| s.trim().parse::<u64>().ok())
    .unwrap_or(0);
    if ws.path.exists() && commits > 0 {
        return Ok(());
    }
    Err(NoImplementationCommit {
        lane_id: ws.lane_id,
        branch: ws.branch,
        base_ref: ws.base_ref,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Reduction;

    fn wp(id: &str, lane: Lane, has_events: bool, deps: &[&str]) -> WpView {
        WpView {
            wp_id: id.into(),
            title: None,
            lane,
            has_events,
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
            last_actor: None,
            last_transition_at: None,
        }
    }

    fn view(wps: Vec<WpView>) -> MissionView {
        MissionView {
            reduction: Reduction::default(),
            work_packages: wps,
        }
    }

    #[test]
    fn claims_follow_the_holder_and_the_lane() {
        assert_eq!(claim(None, "", "a"), Claim::NotFinalized);
        assert_eq!(claim(Some(Lane::Genesis), "", "a"), Claim::NotFinalized);
        assert_eq!(
            claim(Some(Lane::Planned), "x", "a"),
            Claim::Start {
                from: Lane::Planned
            }
        );
        assert_eq!(
            claim(Some(Lane::Claimed), "a", "a"),
            Claim::Start {
                from: Lane::Claimed
            }
        );
        assert_eq!(claim(Some(Lane::Claimed), "b", "a"), Claim::ClaimedByOther);
        assert_eq!(
            claim(Some(Lane::Claimed), "implement-command", "a"),
            Claim::Start {
                from: Lane::Claimed
            }
        );
        assert_eq!(
            claim(Some(Lane::InProgress), "a", "a"),
            Claim::AlreadyInProgress
        );
        assert_eq!(
            claim(Some(Lane::InProgress), "unknown", "a"),
            Claim::AlreadyInProgress
        );
        assert_eq!(
            claim(Some(Lane::InProgress), "b", "a"),
            Claim::ClaimedByOther
        );
        assert_eq!(
            claim(Some(Lane::ForReview), "a", "a"),
            Claim::WrongLane(Lane::ForReview)
        );
        assert_eq!(
            claim(Some(Lane::Done), "a", "a"),
            Claim::WrongLane(Lane::Done)
        );
    }

    #[test]
    fn implementation_goes_through_claimed_once() {
        assert_eq!(
            implementation_steps(Lane::Planned),
            [
                (Lane::Planned, Lane::Claimed),
                (Lane::Claimed, Lane::InProgress)
            ]
        );
        assert_eq!(
            implementation_steps(Lane::Claimed),
            [(Lane::Claimed, Lane::InProgress)]
        );
    }

    #[test]
    fn dependencies_gate_on_approved_or_done() {
        let lanes = |id: &str| match id {
            "WP01" => Some(Lane::Done),
            "WP02" => Some(Lane::Approved),
            "WP03" => Some(Lane::ForReview),
            _ => None,
        };
        assert!(unsatisfied(["WP01", "WP02"], lanes).is_empty());
        assert_eq!(
            unsatisfied(["WP01", "WP03", "WP09"], lanes),
            ["WP03", "WP09"]
        );
    }

    #[test]
    fn ready_needs_events_planned_and_satisfied_dependencies() {
        let v = view(vec![
            wp("WP01", Lane::Done, true, &[]),
            wp("WP02", Lane::Planned, true, &["WP01"]),
            wp("WP03", Lane::Planned, true, &["WP04"]),
            wp("WP04", Lane::InProgress, true, &[]),
            wp("WP05", Lane::Planned, false, &[]),
        ]);
        let ids: Vec<&str> = ready(&v).iter().map(|w| w.wp_id.as_str()).collect();
        assert_eq!(ids, ["WP02"]);
        let summary = lane_summary(&v);
        assert_eq!(summary.len(), Lane::DISPLAY.len());
        assert!(
            summary.contains(&(Lane::Planned, 2)),
            "unfinalized WP05 is not counted"
        );
    }

    #[test]
    fn policies_are_needed_on_active_lanes_only() {
        for lane in [
            Lane::Claimed,
            Lane::InProgress,
            Lane::ForReview,
            Lane::InReview,
            Lane::Approved,
        ] {
            assert!(needs_policy(lane), "{lane:?}");
        }
        for lane in [Lane::Planned, Lane::Done, Lane::Blocked, Lane::Canceled] {
            assert!(!needs_policy(lane), "{lane:?}");
        }
    }

    #[test]
    fn acceptance_needs_every_wp_approved_or_done_and_at_least_one() {
        assert_eq!(acceptance_blockers(&view(vec![])), Err(vec![]));
        let v = view(vec![
            wp("WP01", Lane::Done, true, &[]),
            wp("WP02", Lane::ForReview, true, &[]),
        ]);
        assert_eq!(acceptance_blockers(&v), Err(vec!["WP02".to_string()]));
        let v = view(vec![
            wp("WP01", Lane::Done, true, &[]),
            wp("WP02", Lane::Approved, true, &[]),
        ]);
        assert_eq!(acceptance_blockers(&v), Ok(()));
    }

    #[test]
    fn acceptance_history_keeps_the_last_twenty() {
        let mut meta: MissionMeta = serde_json::from_value(serde_json::json!({
            "mission_slug": "001-x", "mission_number": 1, "mission_type": "software-dev",
            "slug": "001-x", "friendly_name": "x", "accept_commit": "abc"
        }))
        .unwrap();
        for i in 0..25 {
            meta = accepted_meta(&meta, &format!("actor-{i}"), &format!("t{i}"));
        }
        let history = meta.acceptance_history.as_ref().unwrap();
        assert_eq!(history.len(), ACCEPTANCE_HISTORY_LIMIT);
        assert_eq!(history[0]["accepted_by"], "actor-5");
        assert_eq!(meta.accepted_by.as_deref(), Some("actor-24"));
        assert_eq!(meta.acceptance_mode.as_deref(), Some("orchestrator"));
        assert!(meta.accept_commit.is_none());
    }

    #[test]
    fn subtasks_are_complete_when_every_roster_entry_is_done() {
        assert!(subtasks_complete([], |_| false));
        assert!(subtasks_complete(["T1", "T2"], |t| t != "T3"));
        assert!(!subtasks_complete(["T1", "T3"], |t| t != "T3"));
    }
}
