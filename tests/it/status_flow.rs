//! End-to-end use of the public status API, as the orchestrator-api host
//! drives it for the reference e2e mission (reference §3.3–3.5): bootstrap,
//! start-implementation batch, notes, a rejected and an accepted review,
//! with `from_lane` always derived by reducing the log under the lock.

use spec_kitty::status::{
    AnnotationDelta, AnnotationEvent, DoneEvidence, EventLog, EventStamper, Lane, LaneEvent,
    ReviewResult, SnapshotIdentity, StatusError, StatusRecord, TransitionError, TransitionRequest,
    validate_transition,
};

const SLUG: &str = "099-orchestrator-e2e";
const ORCH: &str = "spec-kitty-orchestrator";

struct Host {
    log: EventLog,
    stamps: EventStamper,
}

impl Host {
    fn lane(&self, wp: &str) -> Lane {
        self.log
            .reduce()
            .unwrap()
            .work_packages
            .get(wp)
            .and_then(|s| s.lane)
            .unwrap_or(Lane::Genesis)
    }

    /// Validates against the current lane and appends; nothing is written on rejection.
    fn transition(
        &mut self,
        wp: &str,
        to: Lane,
        edit: impl FnOnce(&mut TransitionRequest<'_>),
        fill: impl FnOnce(&mut LaneEvent),
    ) -> Result<(), StatusError> {
        let lock = self.log.lock()?;
        let state = lock.reduce()?;
        let from = state
            .work_packages
            .get(wp)
            .and_then(|s| s.lane)
            .unwrap_or(Lane::Genesis);
        let mut event = LaneEvent::new(self.stamps.stamp(), SLUG, wp, from, to, ORCH);
        fill(&mut event);
        let mut req = TransitionRequest::new(from, to);
        req.actor = Some(event.actor.identity());
        req.force = event.force;
        req.reason = event.reason.as_deref();
        req.review_ref = event.review_ref.as_deref();
        req.evidence = event.evidence.as_ref();
        req.review_result = event.review_result.as_ref();
        req.workspace_context = Some("worktree:/repo/.worktrees/099-orchestrator-e2e-lane-a");
        req.implementation_evidence_present = Some(true);
        edit(&mut req);
        validate_transition(&req)?;
        lock.append(&[StatusRecord::Lane(event)])
    }

    fn note(&mut self, wp: &str, delta: AnnotationDelta) {
        let a = AnnotationEvent::new(self.stamps.stamp(), wp, ORCH, delta).unwrap();
        self.log.append(&[StatusRecord::Annotation(a)]).unwrap();
    }
}

fn review(verdict: &str, reference: &str) -> ReviewResult {
    ReviewResult {
        reviewer: "codex".into(),
        verdict: verdict.into(),
        reference: reference.into(),
        feedback_path: None,
    }
}

#[test]
fn orchestrator_flow_produces_the_expected_log_and_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mission = dir.path().join("kitty-specs").join(SLUG);
    let mut host = Host {
        log: EventLog::new(&mission),
        stamps: EventStamper::new(),
    };

    // finalize-tasks: genesis -> planned bootstrap, not forced.
    host.transition(
        "WP01",
        Lane::Planned,
        |_| {},
        |e| {
            e.actor = "finalize-tasks".into();
            e.reason = Some("canonical bootstrap".into());
        },
    )
    .unwrap();

    // start-implementation: planned -> claimed -> in_progress as one batch.
    {
        let lock = host.log.lock().unwrap();
        let a = LaneEvent::new(
            host.stamps.stamp(),
            SLUG,
            "WP01",
            Lane::Planned,
            Lane::Claimed,
            ORCH,
        );
        let b = LaneEvent::new(
            host.stamps.stamp(),
            SLUG,
            "WP01",
            Lane::Claimed,
            Lane::InProgress,
            ORCH,
        );
        assert!(a.at < b.at && a.event_id < b.event_id);
        lock.append(&[StatusRecord::Lane(a), StatusRecord::Lane(b)])
            .unwrap();
    }
    host.note(
        "WP01",
        AnnotationDelta::note("- [t] spec-kitty-orchestrator: Starting implementation"),
    );

    // for_review needs completed subtasks: the snapshot has none recorded yet
    // for a non-empty roster, so the guard refuses and nothing is written.
    let before = std::fs::read(host.log.events_path()).unwrap();
    let refused = host
        .transition(
            "WP01",
            Lane::ForReview,
            |r| r.subtasks_complete = Some(false),
            |_| {},
        )
        .unwrap_err();
    assert!(matches!(
        refused,
        StatusError::Transition(TransitionError::SubtasksIncomplete)
    ));
    assert_eq!(std::fs::read(host.log.events_path()).unwrap(), before);

    host.note("WP01", AnnotationDelta::subtasks([("T001", Lane::Done)]));
    let done = host.log.reduce().unwrap().work_packages["WP01"]
        .subtasks
        .as_ref()
        .is_some_and(|s| s.get("T001") == Some(&Lane::Done));
    host.transition(
        "WP01",
        Lane::ForReview,
        |r| r.subtasks_complete = Some(done),
        |_| {},
    )
    .unwrap();
    host.transition(
        "WP01",
        Lane::InReview,
        |_| {},
        |e| {
            e.reason = Some("Started review via action command".into());
        },
    )
    .unwrap();

    // Review rejected: in_review -> in_progress needs a matching review_result.
    let err = host
        .transition(
            "WP01",
            Lane::InProgress,
            |_| {},
            |e| e.review_ref = Some("r1".into()),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Transition from in_review requires review_result (structured review outcome)"
    );
    host.transition(
        "WP01",
        Lane::InProgress,
        |_| {},
        |e| {
            e.review_ref = Some("review-WP01-cycle1".into());
            e.review_result = Some(review("changes_requested", "review-WP01-cycle1"));
        },
    )
    .unwrap();
    assert_eq!(host.lane("WP01"), Lane::InProgress);

    host.transition(
        "WP01",
        Lane::ForReview,
        |r| r.subtasks_complete = Some(true),
        |_| {},
    )
    .unwrap();
    host.transition("WP01", Lane::InReview, |_| {}, |_| {})
        .unwrap();
    host.transition("WP01", Lane::Done, |_| {}, |e| {
        let rr = review("approved", "review-WP01-cycle2");
        e.review_ref = Some(rr.reference.clone());
        e.evidence = Some(
            DoneEvidence::from_cli_json(&serde_json::json!({
                "review": {"reviewer": "codex", "verdict": "approved", "reference": "review-WP01-cycle2"}
            }))
            .unwrap(),
        );
        e.review_result = Some(rr);
        e.reason = Some("Review approved by 'codex'".into());
    })
    .unwrap();

    // Terminal: only force (with actor and reason) could leave done.
    let err = host
        .transition("WP01", Lane::Planned, |_| {}, |_| {})
        .unwrap_err();
    assert_eq!(err.to_string(), "Illegal transition: done -> planned");

    let identity = SnapshotIdentity {
        mission_slug: SLUG.into(),
        mission_number: "99".into(),
        mission_type: "software-dev".into(),
    };
    let m = host.log.materialize(&identity).unwrap();
    assert!(m.written);
    let snapshot: serde_json::Value = serde_json::from_str(&m.status_json).unwrap();
    assert_eq!(snapshot["event_count"], 9, "1 bootstrap + 8 transitions");
    assert_eq!(snapshot["mission_number"], "99");
    assert_eq!(snapshot["summary"]["done"], 1);
    assert_eq!(snapshot["summary"].as_object().unwrap().len(), 9);
    let wp = &snapshot["work_packages"]["WP01"];
    assert_eq!(wp["lane"], "done");
    assert_eq!(wp["force_count"], 0);
    assert_eq!(wp["subtasks"]["T001"], "done");
    assert_eq!(wp["notes"].as_array().unwrap().len(), 1);
    assert_eq!(wp["review_result"]["verdict"], "approved");
    assert_eq!(snapshot["materialized_at"], wp["last_transition_at"]);
    assert!(m.status_json.ends_with("}\n"));

    // The upstream e2e assertion: no forced event anywhere in the log.
    let records = host.log.read().unwrap();
    assert_eq!(records.len(), 11, "9 lane events + 2 annotations");
    assert!(records.iter().all(|r| match &r.record {
        StatusRecord::Lane(e) => !e.force,
        _ => true,
    }));
    assert!(!host.log.materialize(&identity).unwrap().written);
}
