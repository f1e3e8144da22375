//! Domain → wire: the status log's records as the contract's generated payload structs.
//!
//! Every field is set by name on the generated type and every lane is mapped by an exhaustive
//! `match`, so a contract change the code does not follow (a renamed or new required field, a
//! new lane) fails to compile here, not at run time.
//!
//! Mapping of the host's lanes onto the 3.0.0 event contract, whose lane enum has no `genesis`
//! and no `in_review`: `genesis` as a source is the initial state (`from_lane: null`);
//! `in_review` is reported as `for_review` (as the sync lane mappings do), so the
//! `for_review → in_review` step has no 3.0.0 event of its own and is not emitted. Approval
//! evidence without repository entries gets one for the checkout (repo, branch, HEAD commit),
//! because 3.0.0 requires at least one.

use crate::contract::types::{
    self as wire, ExecutionMode, NonEmptyString, StatusTransitionPayload,
};
use crate::status::{self, DoneEvidence, LaneEvent};

/// A value of a local record that the contract's payload cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {value:?} cannot be sent: {reason}")]
pub struct WireError {
    pub field: &'static str,
    pub value: String,
    pub reason: String,
}

fn text(field: &'static str, value: &str) -> Result<NonEmptyString, WireError> {
    NonEmptyString::try_from(value).map_err(|e| WireError {
        field,
        value: value.to_owned(),
        reason: e.to_string(),
    })
}

/// The 3.0.0 lane of a host lane; `None` for `genesis` (no lane yet).
pub fn wire_lane(lane: status::Lane) -> Option<wire::Lane> {
    use status::Lane as L;
    match lane {
        L::Genesis => None,
        L::Planned => Some(wire::Lane::Planned),
        L::Claimed => Some(wire::Lane::Claimed),
        L::InProgress => Some(wire::Lane::InProgress),
        L::ForReview | L::InReview => Some(wire::Lane::ForReview),
        L::Approved => Some(wire::Lane::Approved),
        L::Done => Some(wire::Lane::Done),
        L::Blocked => Some(wire::Lane::Blocked),
        L::Canceled => Some(wire::Lane::Canceled),
    }
}

/// The log's `execution_mode` string as the contract's enum.
pub fn execution_mode(value: &str) -> Result<ExecutionMode, WireError> {
    match value {
        "worktree" => Ok(ExecutionMode::Worktree),
        "direct_repo" => Ok(ExecutionMode::DirectRepo),
        other => Err(WireError {
            field: "execution_mode",
            value: other.to_owned(),
            reason: "expected worktree or direct_repo".to_owned(),
        }),
    }
}

/// The checkout a transition was recorded in, as evidence (repo, branch, HEAD commit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckoutRef {
    pub repo: String,
    pub branch: String,
    pub commit: String,
}

/// Approval evidence on the wire; `checkout` stands in when the evidence names no repository.
pub fn done_evidence(
    evidence: &DoneEvidence,
    checkout: impl FnOnce() -> CheckoutRef,
) -> Result<wire::DoneEvidence, WireError> {
    let mut repos = evidence
        .repos
        .iter()
        .map(|r| {
            Ok(wire::RepoEvidence {
                branch: text("evidence.repos.branch", &r.branch)?,
                commit: text("evidence.repos.commit", &r.commit)?,
                files_touched: (!r.files_touched.is_empty()).then(|| r.files_touched.clone()),
                repo: text("evidence.repos.repo", &r.repo)?,
            })
        })
        .collect::<Result<Vec<_>, WireError>>()?;
    if repos.is_empty() {
        let c = checkout();
        repos.push(wire::RepoEvidence {
            branch: text("evidence.repos.branch", &c.branch)?,
            commit: text("evidence.repos.commit", &c.commit)?,
            files_touched: None,
            repo: text("evidence.repos.repo", &c.repo)?,
        });
    }
    let verification = evidence
        .verification
        .iter()
        .map(|v| {
            Ok(wire::VerificationEntry {
                command: text("evidence.verification.command", &v.command)?,
                result: text("evidence.verification.result", &v.result)?,
                summary: Some(v.summary.clone()),
            })
        })
        .collect::<Result<Vec<_>, WireError>>()?;
    Ok(wire::DoneEvidence {
        repos,
        review: wire::ReviewVerdict {
            reference: Some(evidence.review.reference.clone()),
            reviewer: text("evidence.review.reviewer", &evidence.review.reviewer)?,
            verdict: text("evidence.review.verdict", &evidence.review.verdict)?,
        },
        verification,
    })
}

/// The `WPStatusChanged` payload of one lane event, or `None` when the step has no 3.0.0 event
/// (to `genesis`, or `for_review → in_review`, which is `for_review → for_review` on the wire).
pub fn status_transition(
    event: &LaneEvent,
    checkout: impl FnOnce() -> CheckoutRef,
) -> Result<Option<StatusTransitionPayload>, WireError> {
    let from_lane = wire_lane(event.from_lane);
    let Some(to_lane) = wire_lane(event.to_lane) else {
        return Ok(None);
    };
    if from_lane == Some(to_lane) {
        return Ok(None);
    }
    let evidence = event
        .evidence
        .as_ref()
        .map(|ev| done_evidence(ev, checkout))
        .transpose()?;
    Ok(Some(StatusTransitionPayload {
        actor: text("actor", event.actor.identity())?,
        evidence,
        execution_mode: execution_mode(&event.execution_mode)?,
        force: event.force,
        from_lane,
        mission_slug: text("mission_slug", &event.mission_slug)?,
        reason: event.reason.clone(),
        review_ref: event.review_ref.clone(),
        to_lane,
        wp_id: text("wp_id", &event.wp_id)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{EventStamper, Lane, RepoEvidence, ReviewApproval};

    fn event(from: Lane, to: Lane) -> LaneEvent {
        LaneEvent::new(
            EventStamper::new().stamp(),
            "001-demo",
            "WP01",
            from,
            to,
            "orch",
        )
    }

    fn checkout() -> CheckoutRef {
        CheckoutRef {
            repo: "demo".into(),
            branch: "main".into(),
            commit: "abc1234".into(),
        }
    }

    #[test]
    fn every_host_lane_has_its_wire_lane() {
        assert_eq!(wire_lane(Lane::Genesis), None);
        assert_eq!(wire_lane(Lane::InReview), Some(wire::Lane::ForReview));
        for lane in Lane::DISPLAY {
            let mapped = wire_lane(lane).expect("display lanes map");
            if lane != Lane::InReview {
                assert_eq!(mapped.to_string(), lane.as_str());
            }
        }
    }

    #[test]
    fn bootstrap_has_no_source_lane_and_review_start_is_not_sent() {
        let p = status_transition(&event(Lane::Genesis, Lane::Planned), checkout)
            .unwrap()
            .unwrap();
        assert_eq!(p.from_lane, None);
        assert_eq!(p.to_lane, wire::Lane::Planned);
        assert_eq!(p.execution_mode, ExecutionMode::Worktree);
        assert_eq!(
            status_transition(&event(Lane::ForReview, Lane::InReview), checkout).unwrap(),
            None
        );
        let back = status_transition(&event(Lane::InReview, Lane::InProgress), checkout)
            .unwrap()
            .unwrap();
        assert_eq!(back.from_lane, Some(wire::Lane::ForReview));
    }

    #[test]
    fn evidence_without_repositories_names_the_checkout() {
        let mut e = event(Lane::InReview, Lane::Done);
        e.evidence = Some(DoneEvidence {
            review: ReviewApproval {
                reviewer: "codex".into(),
                verdict: "approved".into(),
                reference: "review-1".into(),
            },
            repos: Vec::new(),
            verification: Vec::new(),
        });
        let p = status_transition(&e, checkout).unwrap().unwrap();
        let ev = p.evidence.unwrap();
        assert_eq!(ev.repos.len(), 1);
        assert_eq!(&*ev.repos[0].commit, "abc1234");
        assert_eq!(ev.review.reference.as_deref(), Some("review-1"));
        // Given repositories are kept, and an empty one is refused, not sent.
        e.evidence.as_mut().unwrap().repos = vec![RepoEvidence {
            repo: "r".into(),
            branch: "".into(),
            commit: "c".into(),
            files_touched: vec![],
        }];
        let err = status_transition(&e, checkout).unwrap_err();
        assert_eq!(err.field, "evidence.repos.branch");
    }

    #[test]
    fn an_unknown_execution_mode_is_refused() {
        let mut e = event(Lane::Planned, Lane::Claimed);
        e.execution_mode = "somewhere".into();
        assert_eq!(
            status_transition(&e, checkout).unwrap_err().field,
            "execution_mode"
        );
    }
}
