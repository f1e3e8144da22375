//! Moving a work package between lanes and appending to its history: the one implementation
//! behind `orchestrator-api transition|append-history` and `agent tasks move-task|add-history`,
//! so a person at the terminal meets the same guards and produces the same events as the host.

use serde_json::{Map, Value};

use super::mission::record;
use super::outbox::Outbox;
use super::workflow::{self as rules, NoImplementationCommit};
use crate::mission::WorkPackage;
use crate::mission::workflow::MissionContext;
use crate::status::{
    AnnotationDelta, AnnotationEvent, DoneEvidence, EventStamper, Lane, LaneEvent, ReviewApproval,
    ReviewResult, StatusError, StatusRecord, TransitionError, TransitionRequest,
    validate_transition,
};

/// One requested lane change. The current lane is never given: it is the log's.
#[derive(Debug, Default)]
pub struct MoveRequest<'a> {
    pub actor: &'a str,
    /// `--force` (the guards that allow forcing need `note` as the reason).
    pub force: bool,
    /// `--note`: the transition's reason.
    pub note: Option<&'a str>,
    /// Review feedback reference (needed to send a reviewed WP back).
    pub review_ref: Option<&'a str>,
    pub evidence: Option<DoneEvidence>,
    pub review_result: Option<ReviewResult>,
    /// A forced move may state whether the subtasks are complete; otherwise it is computed from
    /// the subtask marks.
    pub subtasks_complete: Option<bool>,
    /// Defaults to `true` (the for_review commit gate checks the lane branch).
    pub implementation_evidence_present: Option<bool>,
    /// The orchestrator's policy metadata, recorded on the event as given.
    pub policy_metadata: Option<Map<String, Value>>,
    /// A person's review (`move-task --reviewer/--approval-ref/--review-feedback-file`): the
    /// review result when leaving `in_review`, and the approval evidence when reaching
    /// `approved` or `done` with the verdict `approved`. Explicit values above win.
    pub review: Option<Review<'a>>,
}

/// A review stated with plain flags instead of JSON documents.
#[derive(Debug, Clone, Copy)]
pub struct Review<'a> {
    pub reviewer: &'a str,
    /// `approved` or `changes_requested`.
    pub verdict: &'a str,
    /// The approval reference (`PR#42`) or the feedback file.
    pub reference: &'a str,
    pub feedback_path: Option<&'a str>,
}

/// What a move recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    pub from: Lane,
    pub to: Lane,
}

/// Why a move was refused; nothing was recorded.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("WP {wp} is not finalized; run `spec-kitty agent mission finalize-tasks`")]
    NotFinalized { wp: String },
    #[error(transparent)]
    Rejected(#[from] TransitionError),
    #[error(
        "{wp} cannot move to for_review: no implementation commit on lane {} ({}) beyond {}. Commit the work in the lane worktree first, or pass --force if there is genuinely nothing to commit.",
        gate.lane_id, gate.branch, gate.base_ref
    )]
    NoImplementationCommit {
        wp: String,
        gate: NoImplementationCommit,
    },
    #[error(transparent)]
    Status(#[from] StatusError),
}

/// Move `wp` to `to` under the mission's log lock: reduce, run the transition guards (and the
/// for_review commit gate unless forced), append the lane event, rewrite status.json, queue it.
pub fn move_wp(
    ctx: &MissionContext,
    wp: &WorkPackage,
    to: Lane,
    mut req: MoveRequest<'_>,
    outbox: &mut Outbox,
) -> Result<Moved, MoveError> {
    let id = wp.id.as_str();
    let log = ctx.log();
    let lock = log.lock()?;
    let state = lock.reduce()?;
    let current = state.work_packages.get(id);
    let Some(from) = current.and_then(|s| s.lane) else {
        return Err(MoveError::NotFinalized { wp: id.to_owned() });
    };
    if let Some(review) = req.review {
        if from == Lane::InReview && req.review_result.is_none() {
            req.review_result = Some(ReviewResult {
                reviewer: review.reviewer.to_owned(),
                verdict: review.verdict.to_owned(),
                reference: review.reference.to_owned(),
                feedback_path: review.feedback_path.map(str::to_owned),
            });
        }
        if matches!(to, Lane::Approved | Lane::Done)
            && review.verdict == "approved"
            && req.evidence.is_none()
        {
            req.evidence = Some(DoneEvidence {
                review: ReviewApproval {
                    reviewer: review.reviewer.to_owned(),
                    verdict: review.verdict.to_owned(),
                    reference: review.reference.to_owned(),
                },
                repos: Vec::new(),
                verification: Vec::new(),
            });
        }
    }
    // in_progress -> for_review inputs: recomputed unless forced (host HEAD).
    let roster: Vec<String> = wp
        .subtasks
        .iter()
        .filter_map(|s| {
            s.as_str()
                .map(str::to_string)
                .or_else(|| s.get("id").and_then(Value::as_str).map(str::to_string))
        })
        .collect();
    let marks = current.and_then(|s| s.subtasks.as_ref());
    let computed = rules::subtasks_complete(roster.iter().map(String::as_str), |r| {
        marks.and_then(|m| m.get(r)) == Some(&Lane::Done)
    });
    let subtasks_complete = if req.force {
        req.subtasks_complete.or(Some(computed))
    } else {
        Some(computed)
    };
    let mut check = TransitionRequest::new(from, to);
    check.actor = Some(req.actor);
    check.force = req.force;
    check.reason = req.note;
    check.review_ref = req.review_ref;
    check.evidence = req.evidence.as_ref();
    check.review_result = req.review_result.as_ref();
    check.subtasks_complete = subtasks_complete;
    check.implementation_evidence_present = req.implementation_evidence_present.or(Some(true));
    let context = format!("worktree:{}", ctx.root.display());
    check.workspace_context = Some(&context);
    validate_transition(&check)?;
    if to == Lane::ForReview && !req.force {
        rules::for_review_commit_gate(ctx, id).map_err(|gate| {
            MoveError::NoImplementationCommit {
                wp: id.to_owned(),
                gate,
            }
        })?;
    }
    let mut stamps = EventStamper::new();
    let mut e = LaneEvent::new(
        stamps.stamp(),
        &ctx.meta.mission_slug,
        id,
        from,
        to,
        req.actor,
    );
    e.mission_id = ctx.meta.mission_id.clone();
    e.force = req.force;
    e.reason = req.note.map(str::to_owned);
    e.review_ref = req.review_ref.map(str::to_owned);
    e.evidence = req.evidence;
    e.review_result = req.review_result;
    e.policy_metadata = req.policy_metadata;
    record(ctx, &lock, &[StatusRecord::Lane(e)], outbox)?;
    Ok(Moved { from, to })
}

/// Append `- [<UTC time>] <actor>: <note>` to the work package's history (an annotation event
/// in the status log). Returns the entry as recorded.
pub fn add_history(
    ctx: &MissionContext,
    wp: &WorkPackage,
    actor: &str,
    note: &str,
    outbox: &mut Outbox,
) -> Result<String, StatusError> {
    let mut stamps = EventStamper::new();
    let stamp = stamps.stamp();
    let ts = crate::contract::Timestamp::now()
        .as_jiff()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let entry = format!("- [{ts}] {actor}: {note}");
    let delta = AnnotationDelta::note(entry.clone());
    let event = AnnotationEvent::new(stamp, wp.id.as_str(), actor, delta)?;
    let log = ctx.log();
    let lock = log.lock()?;
    record(ctx, &lock, &[StatusRecord::Annotation(event)], outbox)?;
    Ok(entry)
}
