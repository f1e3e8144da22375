//! Read + reduce of a realistic `status.events.jsonl`: 100,000 lines over
//! 1,000 work packages (90,000 lane transitions with review results and
//! evidence where upstream writes them, plus 10,000 note annotations),
//! interleaved in time order. Measures `EventLog::reduce` (lock, read the
//! file, parse every line, reduce) and prints the median, for two line
//! shapes: orchestrator-written transitions carrying the ~300-byte
//! `policy_metadata` object (~600-byte lines, 60 MiB), and CLI-written
//! transitions with `policy_metadata: null` (~410-byte lines, 39 MiB).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use spec_kitty::status::{
    AnnotationDelta, AnnotationEvent, DoneEvidence, EventLog, EventStamper, Lane, LaneEvent,
    ReviewApproval, ReviewResult, StatusRecord,
};

const WPS: usize = 1_000;
const STEPS: usize = 100;
const SLUG: &str = "099-orchestrator-e2e";
const ACTOR: &str = "spec-kitty-orchestrator";

fn policy() -> serde_json::Map<String, serde_json::Value> {
    json!({
        "orchestrator_id": ACTOR, "orchestrator_version": "0.1.3", "agent_family": "claude",
        "approval_mode": "full_auto", "sandbox_mode": "workspace_write", "network_mode": "none",
        "dangerous_flags": [], "tool_restrictions": null
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

fn generate(with_policy: bool) -> String {
    let base: jiff::Timestamp = "2026-11-24T10:00:00Z".parse().expect("constant timestamp");
    let mut stamps = EventStamper::new();
    let mut lanes = vec![Lane::Genesis; WPS];
    let mut cycles = vec![0usize; WPS];
    let mut out = String::with_capacity(WPS * STEPS * 700);
    let mut tick = 0i64;
    for step in 0..STEPS {
        for wp in 0..WPS {
            tick += 1;
            let stamp = stamps.stamp_at(base + jiff::SignedDuration::from_millis(tick));
            let wp_id = format!("WP{:04}", wp + 1);
            if step % 10 == 5 {
                let note = format!(
                    "- [2026-11-24T10:00:00Z] {ACTOR}: Starting implementation with agent 'claude-code' (retry #{step})"
                );
                let a = AnnotationEvent::new(stamp, &wp_id, ACTOR, AnnotationDelta::note(note))
                    .expect("valid annotation");
                out.push_str(&StatusRecord::Annotation(a).to_line());
                continue;
            }
            let from = lanes[wp];
            let reference = format!("review-{wp_id}-cycle{}-cccccccc", cycles[wp]);
            let (to, mut event) = match from {
                Lane::Genesis => {
                    let mut e =
                        LaneEvent::new(stamp, SLUG, &wp_id, from, Lane::Planned, "finalize-tasks");
                    e.reason = Some("canonical bootstrap".into());
                    (Lane::Planned, e)
                }
                Lane::Planned => (
                    Lane::Claimed,
                    LaneEvent::new(stamp, SLUG, &wp_id, from, Lane::Claimed, ACTOR),
                ),
                Lane::Claimed => (
                    Lane::InProgress,
                    LaneEvent::new(stamp, SLUG, &wp_id, from, Lane::InProgress, ACTOR),
                ),
                Lane::InProgress => (
                    Lane::ForReview,
                    LaneEvent::new(stamp, SLUG, &wp_id, from, Lane::ForReview, ACTOR),
                ),
                Lane::ForReview => {
                    let mut e = LaneEvent::new(stamp, SLUG, &wp_id, from, Lane::InReview, ACTOR);
                    e.reason = Some("Started review via action command".into());
                    (Lane::InReview, e)
                }
                Lane::InReview => {
                    cycles[wp] += 1;
                    let approve = cycles[wp].is_multiple_of(3);
                    let verdict = if approve {
                        "approved"
                    } else {
                        "changes_requested"
                    };
                    let to = if approve {
                        Lane::Approved
                    } else {
                        Lane::InProgress
                    };
                    let mut e = LaneEvent::new(stamp, SLUG, &wp_id, from, to, ACTOR);
                    e.review_ref = Some(reference.clone());
                    e.review_result = Some(ReviewResult {
                        reviewer: "codex".into(),
                        verdict: verdict.into(),
                        reference: reference.clone(),
                        feedback_path: None,
                    });
                    if approve {
                        e.reason = Some("Review approved by 'codex'".into());
                        e.evidence = Some(DoneEvidence {
                            review: ReviewApproval {
                                reviewer: "codex".into(),
                                verdict: "approved".into(),
                                reference: reference.clone(),
                            },
                            repos: vec![],
                            verification: vec![],
                        });
                    } else {
                        e.reason = Some("Changes requested by 'codex'".into());
                    }
                    (to, e)
                }
                _ => {
                    let mut e = LaneEvent::new(stamp, SLUG, &wp_id, from, Lane::InProgress, ACTOR);
                    e.review_ref = Some(reference.clone());
                    (Lane::InProgress, e)
                }
            };
            if with_policy && from != Lane::Genesis {
                event.policy_metadata = Some(policy());
            }
            lanes[wp] = to;
            out.push_str(&StatusRecord::Lane(event).to_line());
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    for (name, with_policy) in [("orchestrator lines", true), ("CLI lines", false)] {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = generate(with_policy);
        let lines = text.lines().count();
        std::fs::write(dir.path().join("status.events.jsonl"), &text).expect("write log");
        let log = EventLog::new(dir.path());
        let reduced = log.reduce().expect("reduce");
        assert_eq!(reduced.work_packages.len(), WPS);
        assert_eq!(reduced.event_count, WPS * STEPS * 9 / 10);

        c.bench_function(
            &format!("status_reduce/read+reduce 100k lines, 1k WPs, {name}"),
            |b| b.iter(|| black_box(log.reduce().expect("reduce"))),
        );

        let mut times: Vec<Duration> = (0..31)
            .map(|_| {
                let start = Instant::now();
                black_box(log.reduce().expect("reduce"));
                start.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "status_reduce ({name}): median read+reduce {:.2} ms over 31 runs (min {:.2} ms, \
             max {:.2} ms); {lines} lines, {} lane events, {WPS} WPs, {:.1} MiB",
            times[15].as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            times[30].as_secs_f64() * 1e3,
            reduced.event_count,
            text.len() as f64 / (1024.0 * 1024.0),
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(8));
    targets = bench
}
criterion_main!(benches);
