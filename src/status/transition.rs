//! The HEAD transition matrix and its guards (reference §3.2, upstream
//! `status/wp_state.py`), with upstream's rejection texts.
//!
//! Decision order, as upstream `WPState.check_transition`:
//! 1. a target of `genesis` is always illegal (force cannot create a genesis WP);
//! 2. an edge outside the matrix is illegal unless forced;
//! 3. a forced transition (edge or not) needs a non-empty actor **and** reason,
//!    and then skips every guard, including leaving `done`/`canceled`;
//! 4. otherwise the source lane's guard for the target runs.

use super::event::{DoneEvidence, ReviewResult};
use super::lane::Lane;

/// Everything a guard may consult. Build with [`TransitionRequest::new`] and
/// set the fields that apply.
#[derive(Clone, Copy, Debug)]
pub struct TransitionRequest<'a> {
    /// Current lane (derived by reducing the log, never sent by a client).
    pub from: Lane,
    /// Requested lane.
    pub to: Lane,
    /// Actor identity (see `Actor::identity`).
    pub actor: Option<&'a str>,
    /// `--force`.
    pub force: bool,
    /// `--note`; required by force and by `in_progress -> planned`.
    pub reason: Option<&'a str>,
    /// Review feedback reference.
    pub review_ref: Option<&'a str>,
    /// Approval evidence (`--evidence-json`).
    pub evidence: Option<&'a DoneEvidence>,
    /// Structured review outcome (`--review-result-json`).
    pub review_result: Option<&'a ReviewResult>,
    /// For `in_progress -> for_review`: must be `Some(true)`.
    pub subtasks_complete: Option<bool>,
    /// For `in_progress -> for_review`: must be `Some(true)`.
    pub implementation_evidence_present: Option<bool>,
    /// For `claimed -> in_progress`: must be non-empty.
    pub workspace_context: Option<&'a str>,
}

impl<'a> TransitionRequest<'a> {
    /// A request with every optional input unset and `force == false`.
    pub fn new(from: Lane, to: Lane) -> Self {
        TransitionRequest {
            from,
            to,
            actor: None,
            force: false,
            reason: None,
            review_ref: None,
            evidence: None,
            review_result: None,
            subtasks_complete: None,
            implementation_evidence_present: None,
            workspace_context: None,
        }
    }
}

/// Why a transition was rejected. `Display` is upstream's exact message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// Not an edge of the matrix (or a target of `genesis`), and not forced.
    #[error("Illegal transition: {from} -> {to}")]
    Illegal {
        /// Source lane.
        from: Lane,
        /// Target lane.
        to: Lane,
    },
    /// `force` without a non-empty actor and reason.
    #[error("Force transitions require actor and reason")]
    ForceRequiresActorAndReason,
    /// `planned -> claimed` and `for_review -> in_review` need an actor.
    #[error("Transition requires actor identity")]
    ActorRequired,
    /// `claimed -> in_progress` needs a workspace context.
    #[error("Transition claimed -> in_progress requires workspace context")]
    WorkspaceContextRequired,
    /// `in_progress -> for_review` needs completed subtasks.
    #[error(
        "Transition in_progress -> for_review requires completed subtasks or force with reason"
    )]
    SubtasksIncomplete,
    /// `in_progress -> for_review` needs implementation evidence.
    #[error(
        "Transition in_progress -> for_review requires implementation evidence or force with reason"
    )]
    ImplementationEvidenceMissing,
    /// Approval evidence missing or not `approved`.
    #[error(
        "Transition to approved/done requires evidence (reviewer identity and approval reference)"
    )]
    ApprovalRequired,
    /// `in_progress -> planned` needs a reason.
    #[error("Transition in_progress -> planned requires reason")]
    ReasonRequired,
    /// Leaving `in_review` without a review result.
    #[error("Transition from in_review requires review_result (structured review outcome)")]
    ReviewResultRequired,
    /// Leaving `in_review` with a review result lacking a field.
    #[error("Transition from in_review requires review_result with {field}")]
    ReviewResultIncomplete {
        /// `reviewer`, `verdict` or `reference`.
        field: &'static str,
    },
    /// `review_ref` differs from `review_result.reference`.
    #[error("review_ref must match review_result.reference")]
    ReviewRefMismatch,
    /// `evidence.review` differs from the review result.
    #[error("Review evidence must match review_result")]
    ReviewEvidenceMismatch,
    /// `approved -> in_progress|planned` needs a review reference.
    #[error("Transition requires review_ref (review feedback reference)")]
    ReviewRefRequired,
}

impl Lane {
    /// Lanes reachable from `self` without force (HEAD matrix).
    pub const fn allowed_targets(self) -> &'static [Lane] {
        use Lane::*;
        match self {
            Genesis => &[Planned, Canceled],
            Planned => &[Claimed, Blocked, Canceled],
            Claimed => &[InProgress, Blocked, Canceled],
            InProgress => &[ForReview, Approved, Planned, Blocked, Canceled],
            ForReview => &[InReview, Blocked, Canceled],
            InReview => &[Approved, Done, InProgress, Planned, Blocked, Canceled],
            Approved => &[Done, InProgress, Planned, Blocked, Canceled],
            Blocked => &[InProgress, Canceled],
            Done | Canceled => &[],
        }
    }

    /// Structural edge check (no guards, no force).
    pub fn may_transition_to(self, to: Lane) -> bool {
        self.allowed_targets().contains(&to)
    }
}

fn non_blank(text: Option<&str>) -> bool {
    text.is_some_and(|t| !t.trim().is_empty())
}

/// Validates a transition: matrix, force rules and guards.
pub fn validate_transition(req: &TransitionRequest<'_>) -> Result<(), TransitionError> {
    let illegal = TransitionError::Illegal {
        from: req.from,
        to: req.to,
    };
    if req.to == Lane::Genesis {
        return Err(illegal);
    }
    if !req.from.may_transition_to(req.to) && !req.force {
        return Err(illegal);
    }
    if req.force {
        if non_blank(req.actor) && non_blank(req.reason) {
            return Ok(());
        }
        return Err(TransitionError::ForceRequiresActorAndReason);
    }
    guard(req)
}

fn guard(req: &TransitionRequest<'_>) -> Result<(), TransitionError> {
    use Lane::*;
    match (req.from, req.to) {
        (Planned, Claimed) | (ForReview, InReview) => {
            // for_review -> in_review is allow-only beyond the actor check:
            // reviewer collisions are judged at start-review, not here.
            if non_blank(req.actor) {
                Ok(())
            } else {
                Err(TransitionError::ActorRequired)
            }
        }
        (Claimed, InProgress) => {
            if non_blank(req.workspace_context) {
                Ok(())
            } else {
                Err(TransitionError::WorkspaceContextRequired)
            }
        }
        (InProgress, ForReview) => {
            if req.subtasks_complete != Some(true) {
                Err(TransitionError::SubtasksIncomplete)
            } else if req.implementation_evidence_present != Some(true) {
                Err(TransitionError::ImplementationEvidenceMissing)
            } else {
                Ok(())
            }
        }
        (InProgress, Approved) | (Approved, Done) => reviewer_approval(req.evidence),
        (InProgress, Planned) => {
            if non_blank(req.reason) {
                Ok(())
            } else {
                Err(TransitionError::ReasonRequired)
            }
        }
        (InReview, to) => in_review_exit(req, to),
        (Approved, InProgress) | (Approved, Planned) => {
            if non_blank(req.review_ref) {
                Ok(())
            } else {
                Err(TransitionError::ReviewRefRequired)
            }
        }
        _ => Ok(()),
    }
}

/// Evidence with a non-blank reviewer and reference and verdict exactly `approved`.
fn reviewer_approval(evidence: Option<&DoneEvidence>) -> Result<(), TransitionError> {
    let Some(evidence) = evidence else {
        return Err(TransitionError::ApprovalRequired);
    };
    let review = &evidence.review;
    if review.reviewer.trim().is_empty()
        || review.reference.trim().is_empty()
        || review.verdict != "approved"
    {
        return Err(TransitionError::ApprovalRequired);
    }
    Ok(())
}

/// Every exit of `in_review`: a complete review result; approval for
/// approved/done; consistency of review_ref and evidence with the result.
fn in_review_exit(req: &TransitionRequest<'_>, to: Lane) -> Result<(), TransitionError> {
    let Some(rr) = req.review_result else {
        return Err(TransitionError::ReviewResultRequired);
    };
    for (field, value) in [
        ("reviewer", &rr.reviewer),
        ("verdict", &rr.verdict),
        ("reference", &rr.reference),
    ] {
        if value.trim().is_empty() {
            return Err(TransitionError::ReviewResultIncomplete { field });
        }
    }
    if matches!(to, Lane::Approved | Lane::Done) {
        match req.evidence {
            Some(_) => reviewer_approval(req.evidence)?,
            None if rr.verdict == "approved" => {}
            None => return Err(TransitionError::ApprovalRequired),
        }
    }
    if let Some(review_ref) = req.review_ref
        && review_ref != rr.reference
    {
        return Err(TransitionError::ReviewRefMismatch);
    }
    if let Some(evidence) = req.evidence {
        let r = &evidence.review;
        if (&r.reviewer, &r.verdict, &r.reference) != (&rr.reviewer, &rr.verdict, &rr.reference) {
            return Err(TransitionError::ReviewEvidenceMismatch);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::event::ReviewApproval;
    use Lane::*;
    use TransitionError as E;

    fn evidence(reviewer: &str, verdict: &str, reference: &str) -> DoneEvidence {
        DoneEvidence {
            review: ReviewApproval {
                reviewer: reviewer.into(),
                verdict: verdict.into(),
                reference: reference.into(),
            },
            repos: vec![],
            verification: vec![],
        }
    }

    fn result(reviewer: &str, verdict: &str, reference: &str) -> ReviewResult {
        ReviewResult {
            reviewer: reviewer.into(),
            verdict: verdict.into(),
            reference: reference.into(),
            feedback_path: None,
        }
    }

    #[test]
    fn matrix_is_the_head_table() {
        let expected: &[(Lane, &[Lane])] = &[
            (Genesis, &[Planned, Canceled]),
            (Planned, &[Claimed, Blocked, Canceled]),
            (Claimed, &[InProgress, Blocked, Canceled]),
            (
                InProgress,
                &[ForReview, Approved, Planned, Blocked, Canceled],
            ),
            (ForReview, &[InReview, Blocked, Canceled]),
            (
                InReview,
                &[Approved, Done, InProgress, Planned, Blocked, Canceled],
            ),
            (Approved, &[Done, InProgress, Planned, Blocked, Canceled]),
            (Blocked, &[InProgress, Canceled]),
            (Done, &[]),
            (Canceled, &[]),
        ];
        let mut edges = 0;
        for &(from, targets) in expected {
            for to in Lane::ALL {
                assert_eq!(
                    from.may_transition_to(to),
                    targets.contains(&to),
                    "{from} -> {to}"
                );
                edges += usize::from(targets.contains(&to));
            }
        }
        assert_eq!(edges, 29);
        // The old v3.1.0 for_review exits are gone at HEAD.
        for to in [InProgress, Planned, Approved, Done] {
            assert_eq!(
                validate_transition(&TransitionRequest::new(ForReview, to)),
                Err(E::Illegal {
                    from: ForReview,
                    to
                })
            );
        }
    }

    #[test]
    fn illegal_edge_message() {
        let err = validate_transition(&TransitionRequest::new(Planned, Done)).unwrap_err();
        assert_eq!(err.to_string(), "Illegal transition: planned -> done");
    }

    #[test]
    fn unguarded_edges_pass_with_no_inputs() {
        for (from, to) in [
            (Genesis, Planned),
            (Genesis, Canceled),
            (Planned, Blocked),
            (Claimed, Canceled),
            (InProgress, Blocked),
            (ForReview, Blocked),
            (Approved, Canceled),
            (Blocked, InProgress),
        ] {
            assert_eq!(
                validate_transition(&TransitionRequest::new(from, to)),
                Ok(()),
                "{from} -> {to}"
            );
        }
    }

    #[test]
    fn force_rules() {
        let mut req = TransitionRequest::new(Done, Planned);
        req.force = true;
        assert_eq!(
            validate_transition(&req).unwrap_err().to_string(),
            "Force transitions require actor and reason"
        );
        req.actor = Some("alice");
        assert_eq!(
            validate_transition(&req),
            Err(E::ForceRequiresActorAndReason)
        );
        req.reason = Some("   ");
        assert_eq!(
            validate_transition(&req),
            Err(E::ForceRequiresActorAndReason)
        );
        req.reason = Some("reopen");
        assert_eq!(
            validate_transition(&req),
            Ok(()),
            "force leaves a terminal lane"
        );
        // Force also bypasses guards on legal edges...
        let mut guarded = TransitionRequest::new(InProgress, ForReview);
        guarded.force = true;
        guarded.actor = Some("alice");
        guarded.reason = Some("nothing to commit");
        assert_eq!(validate_transition(&guarded), Ok(()));
        // ...but never creates a genesis WP.
        let mut genesis = TransitionRequest::new(Planned, Genesis);
        genesis.force = true;
        genesis.actor = Some("alice");
        genesis.reason = Some("why");
        assert_eq!(
            validate_transition(&genesis),
            Err(E::Illegal {
                from: Planned,
                to: Genesis
            })
        );
    }

    #[test]
    fn actor_guards() {
        for (from, to) in [(Planned, Claimed), (ForReview, InReview)] {
            let mut req = TransitionRequest::new(from, to);
            assert_eq!(
                validate_transition(&req).unwrap_err().to_string(),
                "Transition requires actor identity"
            );
            req.actor = Some("  ");
            assert_eq!(validate_transition(&req), Err(E::ActorRequired));
            req.actor = Some("bob");
            assert_eq!(validate_transition(&req), Ok(()));
        }
    }

    #[test]
    fn workspace_context_guard() {
        let mut req = TransitionRequest::new(Claimed, InProgress);
        assert_eq!(
            validate_transition(&req).unwrap_err().to_string(),
            "Transition claimed -> in_progress requires workspace context"
        );
        req.workspace_context = Some("worktree:/repo");
        assert_eq!(validate_transition(&req), Ok(()));
    }

    #[test]
    fn for_review_guard_needs_subtasks_then_evidence() {
        let mut req = TransitionRequest::new(InProgress, ForReview);
        req.implementation_evidence_present = Some(true);
        assert_eq!(
            validate_transition(&req).unwrap_err().to_string(),
            "Transition in_progress -> for_review requires completed subtasks or force with reason"
        );
        req.subtasks_complete = Some(false);
        assert_eq!(validate_transition(&req), Err(E::SubtasksIncomplete));
        req.subtasks_complete = Some(true);
        req.implementation_evidence_present = None;
        assert_eq!(
            validate_transition(&req).unwrap_err().to_string(),
            "Transition in_progress -> for_review requires implementation evidence or force with reason"
        );
        req.implementation_evidence_present = Some(true);
        assert_eq!(validate_transition(&req), Ok(()));
    }

    #[test]
    fn approval_guard_for_in_progress_to_approved_and_approved_to_done() {
        for (from, to) in [(InProgress, Approved), (Approved, Done)] {
            let mut req = TransitionRequest::new(from, to);
            assert_eq!(
                validate_transition(&req).unwrap_err().to_string(),
                "Transition to approved/done requires evidence (reviewer identity and approval reference)"
            );
            let rejected = evidence("codex", "changes_requested", "r1");
            req.evidence = Some(&rejected);
            assert_eq!(validate_transition(&req), Err(E::ApprovalRequired));
            let blank = evidence(" ", "approved", "r1");
            req.evidence = Some(&blank);
            assert_eq!(validate_transition(&req), Err(E::ApprovalRequired));
            let no_ref = evidence("codex", "approved", "");
            req.evidence = Some(&no_ref);
            assert_eq!(validate_transition(&req), Err(E::ApprovalRequired));
            let good = evidence("codex", "approved", "r1");
            req.evidence = Some(&good);
            assert_eq!(validate_transition(&req), Ok(()));
        }
    }

    #[test]
    fn in_progress_to_planned_needs_reason() {
        let mut req = TransitionRequest::new(InProgress, Planned);
        assert_eq!(
            validate_transition(&req).unwrap_err().to_string(),
            "Transition in_progress -> planned requires reason"
        );
        req.reason = Some("rescope");
        assert_eq!(validate_transition(&req), Ok(()));
    }

    #[test]
    fn approved_back_edges_need_review_ref() {
        for to in [InProgress, Planned] {
            let mut req = TransitionRequest::new(Approved, to);
            assert_eq!(
                validate_transition(&req).unwrap_err().to_string(),
                "Transition requires review_ref (review feedback reference)"
            );
            req.review_ref = Some(" ");
            assert_eq!(validate_transition(&req), Err(E::ReviewRefRequired));
            req.review_ref = Some("feedback://1");
            assert_eq!(validate_transition(&req), Ok(()));
        }
    }

    #[test]
    fn every_in_review_exit_needs_a_complete_review_result() {
        let changes = result("codex", "changes_requested", "feedback://1");
        for to in InReview.allowed_targets() {
            let mut req = TransitionRequest::new(InReview, *to);
            assert_eq!(
                validate_transition(&req).unwrap_err().to_string(),
                "Transition from in_review requires review_result (structured review outcome)"
            );
            let incomplete = [
                ("reviewer", result("", "approved", "r")),
                ("verdict", result("a", " ", "r")),
                ("reference", result("a", "approved", "")),
            ];
            for (field, rr) in &incomplete {
                let field = *field;
                req.review_result = Some(rr);
                let err = validate_transition(&req).unwrap_err();
                assert_eq!(err, E::ReviewResultIncomplete { field });
                assert_eq!(
                    err.to_string(),
                    format!("Transition from in_review requires review_result with {field}")
                );
            }
            req.review_result = Some(&changes);
            let expected = if matches!(to, Approved | Done) {
                Err(E::ApprovalRequired)
            } else {
                Ok(())
            };
            assert_eq!(validate_transition(&req), expected, "in_review -> {to}");
        }
    }

    #[test]
    fn in_review_approval_from_result_or_evidence() {
        let approved = result("codex", "approved", "r1");
        let mut req = TransitionRequest::new(InReview, Done);
        req.review_result = Some(&approved);
        assert_eq!(
            validate_transition(&req),
            Ok(()),
            "verdict approved suffices"
        );
        // When evidence is given it must itself be an approval...
        let not_approved = evidence("codex", "changes_requested", "r1");
        req.evidence = Some(&not_approved);
        assert_eq!(validate_transition(&req), Err(E::ApprovalRequired));
        // ...and match the review result exactly.
        let other_reviewer = evidence("someone", "approved", "r1");
        req.evidence = Some(&other_reviewer);
        assert_eq!(
            validate_transition(&req).unwrap_err().to_string(),
            "Review evidence must match review_result"
        );
        let same = evidence("codex", "approved", "r1");
        req.evidence = Some(&same);
        assert_eq!(validate_transition(&req), Ok(()));
    }

    #[test]
    fn in_review_review_ref_must_match_reference() {
        let rr = result("codex", "changes_requested", "feedback://7");
        let mut req = TransitionRequest::new(InReview, InProgress);
        req.review_result = Some(&rr);
        req.review_ref = Some("feedback://8");
        assert_eq!(
            validate_transition(&req).unwrap_err().to_string(),
            "review_ref must match review_result.reference"
        );
        req.review_ref = Some("feedback://7");
        assert_eq!(validate_transition(&req), Ok(()));
        // Evidence on a rejection exit must still match the result.
        let ev = evidence("codex", "approved", "feedback://7");
        req.evidence = Some(&ev);
        assert_eq!(validate_transition(&req), Err(E::ReviewEvidenceMismatch));
    }
}
