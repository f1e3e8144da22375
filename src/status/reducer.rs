//! The deterministic reducer (upstream `status/reducer.py` `reduce`, host HEAD).
//!
//! 1. Lane events are deduplicated by `event_id`, keeping the first occurrence.
//! 2. They are sorted by `(at, event_id)`, comparing the **strings** exactly as
//!    upstream does. For upstream's single `at` format
//!    (`YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`) string order is time order; other
//!    formats sort the same way upstream sorts them.
//! 3. They are folded per work package into `lane`, `actor`,
//!    `last_transition_at`, `last_event_id` and a cumulative `force_count`.
//!    A `planned -> claimed` event copies `shell_pid`, `shell_pid_created_at`
//!    and `agent` out of its `policy_metadata`; `review_result` is set by any
//!    event carrying one and set to null by any other exit of `in_review`.
//! 4. Rollback precedence: when an event has the same `at` as the event that
//!    set the WP's current state, and that event was a rollback
//!    (`in_review -> in_progress`, or `for_review -> in_progress` with a
//!    `review_ref`), a non-rollback event does not override it.
//! 5. Annotations are folded afterwards, sorted by `(at, event_id)` and never
//!    deduplicated (as upstream); they never change a lane or `force_count`. An
//!    annotation for a WP without transitions creates an `uninitialized` entry.
//!
//! `event_count` counts the deduplicated lane events; `materialized_at` and
//! `last_event_id` come from the last of them in sort order.
//!
//! Speed: events are held as compact records (see `compact`), the fold keeps
//! indices and creates owned strings once per work package at the end, and
//! sorting compares 32-byte big-endian prefixes of `at` and `event_id` as
//! integers before falling back to full byte comparison, so the order is
//! exactly upstream's string order.

use std::collections::BTreeMap;

use serde_json::Value;

use super::compact::{Batch, Compact, RrSrc};
use super::event::{AnnotationEvent, LaneEvent, ReviewOverride, ReviewResult};
use super::fold::{Fold, LanePart};
use super::lane::{Lane, UNINITIALIZED};

/// A snapshot slot that can be absent, explicitly null, or set.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Slot<T> {
    /// The key is not written.
    #[default]
    Absent,
    /// The key is written as `null`.
    Null,
    /// The key is written with this value.
    Set(T),
}

impl<T> Slot<T> {
    /// The value, if set.
    pub fn value(&self) -> Option<&T> {
        match self {
            Slot::Set(v) => Some(v),
            _ => None,
        }
    }
}

/// Reduced state of one work package (an entry of `status.json` `work_packages`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WpState {
    /// Current lane; `None` is upstream's `uninitialized` (annotations only).
    pub lane: Option<Lane>,
    /// Identity of the actor of the last applied transition (or first annotation).
    pub actor: String,
    /// `at` of the last applied transition.
    pub last_transition_at: Option<String>,
    /// `event_id` of the last applied transition.
    pub last_event_id: Option<String>,
    /// Number of applied forced transitions.
    pub force_count: u64,
    /// Last review outcome (see module doc).
    pub review_result: Slot<ReviewResult>,
    /// Claim slot from `planned -> claimed` metadata or annotations.
    pub shell_pid: Slot<Value>,
    /// Claim slot.
    pub shell_pid_created_at: Slot<Value>,
    /// Claim slot.
    pub agent: Slot<Value>,
    /// Per-subtask status.
    pub subtasks: Option<BTreeMap<String, Lane>>,
    /// Activity-log notes, in annotation order.
    pub notes: Option<Vec<String>>,
    /// Tracker references.
    pub tracker_refs: Option<Vec<String>>,
    /// Arbiter override; `Null` after a release sentinel.
    pub review: Slot<ReviewOverride>,
    /// Resolved binding actuals (latest non-empty annotation wins).
    pub assignee: Option<String>,
    /// Resolved role.
    pub role: Option<String>,
    /// Resolved agent profile.
    pub agent_profile: Option<String>,
    /// Resolved agent profile version.
    pub agent_profile_version: Option<String>,
    /// Resolved model.
    pub model: Option<String>,
    /// Resolved provider.
    pub provider: Option<String>,
}

impl WpState {
    /// The lane as written to `status.json` (`uninitialized` for `None`).
    pub fn lane_str(&self) -> &'static str {
        self.lane.map_or(UNINITIALIZED, Lane::as_str)
    }
}

/// Number of work packages per display lane.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LaneCounts([usize; 9]);

impl LaneCounts {
    /// One more work package in `lane` (none for `genesis`).
    pub(crate) fn add(&mut self, lane: Lane) {
        if let Some(i) = lane.display_index() {
            self.0[i] += 1;
        }
    }

    /// Count for `lane` (always 0 for `genesis`).
    pub fn get(&self, lane: Lane) -> usize {
        lane.display_index().map_or(0, |i| self.0[i])
    }

    /// `(lane, count)` over [`Lane::DISPLAY`], in that order.
    pub fn iter(&self) -> impl Iterator<Item = (Lane, usize)> + '_ {
        Lane::DISPLAY.iter().copied().zip(self.0.iter().copied())
    }
}

/// Output of [`reduce`]: everything in `status.json` except the mission identity.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reduction {
    /// `at` of the last lane event in sort order, or `""`.
    pub materialized_at: String,
    /// Number of distinct lane events (annotations are not counted).
    pub event_count: usize,
    /// `event_id` of the last lane event in sort order.
    pub last_event_id: Option<String>,
    /// Per-WP state, by WP id.
    pub work_packages: BTreeMap<String, WpState>,
    /// Work packages per display lane.
    pub summary: LaneCounts,
}

/// Reduces lane events and annotations (in file order) to the current state.
pub fn reduce(events: &[LaneEvent], annotations: &[AnnotationEvent]) -> Reduction {
    let mut batch = Batch::with_capacity(events.len());
    for e in events {
        batch.push_owned(e);
    }
    reduce_batches(&mut [batch], annotations)
}

/// Python truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `event_id` in exact byte order (prefix integers first).
fn cmp_id(a: &Compact, b: &Compact) -> std::cmp::Ordering {
    a.event_id
        .prefix_key()
        .cmp(&b.event_id.prefix_key())
        .then_with(|| a.event_id.as_bytes().cmp(b.event_id.as_bytes()))
}

/// `(at, event_id)` in exact byte (= code point) order: 32-byte big-endian
/// prefixes first, full bytes only when those tie.
fn cmp_at_then_id(a: &Compact, b: &Compact) -> std::cmp::Ordering {
    a.at.prefix_key()
        .cmp(&b.at.prefix_key())
        .then_with(|| a.at.as_bytes().cmp(b.at.as_bytes()))
        .then_with(|| a.event_id.prefix_key().cmp(&b.event_id.prefix_key()))
        .then_with(|| a.event_id.as_bytes().cmp(b.event_id.as_bytes()))
}

/// Per-WP fold state; strings are materialized once at the end.
#[derive(Clone)]
struct Acc {
    seen: bool,
    lane: Lane,
    /// Index of the event that set the current state.
    event: usize,
    rollback: bool,
    force_count: u64,
    shell_pid: Slot<Value>,
    shell_pid_created_at: Slot<Value>,
    agent: Slot<Value>,
    /// Index of the event whose review_result fills the slot.
    review_result: Slot<usize>,
}

/// Reduces batches that hold consecutive parts of one file, in file order.
pub(crate) fn reduce_batches(batches: &mut [Batch], annotations: &[AnnotationEvent]) -> Reduction {
    fold_batches(batches, annotations).into_reduction()
}

/// The reducer's state after batches that hold consecutive parts of one file, in file order.
pub(crate) fn fold_batches(batches: &mut [Batch], annotations: &[AnnotationEvent]) -> Fold {
    // Give every batch the first batch's name numbering (no events move).
    let Some((first, tail)) = batches.split_first_mut() else {
        return fold_events(&[], &Batch::default(), annotations);
    };
    for other in tail.iter_mut() {
        first.adopt_names(other);
    }
    let first: &Batch = first;
    let events: Vec<&Compact> = std::iter::once(first)
        .chain(tail.iter())
        .flat_map(|b| b.events.iter())
        .collect();
    fold_events(&events, first, annotations)
}

fn fold_events(events: &[&Compact], names: &Batch, annotations: &[AnnotationEvent]) -> Fold {
    // 1. Deduplicate by event_id, first occurrence wins: a stable sort by id
    // keeps equal ids in file order. Ids are ULIDs minted in time order, so the
    // input is usually one ascending run and the sort is linear.
    let mut by_id: Vec<u32> = (0..events.len() as u32).collect();
    by_id.sort_by(|&a, &b| cmp_id(events[a as usize], events[b as usize]));
    let mut kept: Vec<u32> = Vec::with_capacity(events.len());
    let mut previous: Option<&Compact> = None;
    for &i in &by_id {
        let e = events[i as usize];
        if previous.is_none_or(|p| p.event_id.as_bytes() != e.event_id.as_bytes()) {
            kept.push(i);
        }
        previous = Some(e);
    }
    let max_lane_id = by_id
        .last()
        .map(|&i| events[i as usize].event_id.to_string_lossless());
    drop(by_id);
    // 2. Sort by (at, event_id). Logs are appended in time order, so this is
    // usually one ascending run, which the stable sort detects in linear time.
    let mut order = kept;
    order.sort_by(|&a, &b| cmp_at_then_id(events[a as usize], events[b as usize]));
    // 3 + 4. Fold with rollback precedence.
    let empty = Acc {
        seen: false,
        lane: Lane::Genesis,
        event: 0,
        rollback: false,
        force_count: 0,
        shell_pid: Slot::Absent,
        shell_pid_created_at: Slot::Absent,
        agent: Slot::Absent,
        review_result: Slot::Absent,
    };
    let mut accs: Vec<Acc> = vec![empty; names.wps.len()];
    for &idx in &order {
        let idx = idx as usize;
        let e = &events[idx];
        let Some(acc) = accs.get_mut(e.wp as usize) else {
            continue;
        };
        if acc.seen
            && acc.rollback
            && !e.rollback
            && events[acc.event].at.as_bytes() == e.at.as_bytes()
        {
            continue;
        }
        acc.seen = true;
        acc.lane = e.to;
        acc.event = idx;
        acc.rollback = e.rollback;
        acc.force_count += u64::from(e.force);
        if let Some(meta) = &e.claim {
            if let Some(v) = &meta.shell_pid {
                acc.shell_pid = Slot::Set(v.clone());
            }
            if let Some(v) = &meta.shell_pid_created_at {
                acc.shell_pid_created_at = Slot::Set(v.clone());
            }
            if let Some(v) = meta.agent.as_ref().filter(|v| truthy(v)) {
                acc.agent = Slot::Set(v.clone());
            }
        }
        if e.review_result.is_some() {
            acc.review_result = Slot::Set(idx);
        } else if e.from == Lane::InReview {
            acc.review_result = Slot::Null;
        }
    }

    let mut fold = Fold {
        event_count: order.len(),
        last: order.last().map(|&i| {
            let e = events[i as usize];
            (e.at.to_string_lossless(), e.event_id.to_string_lossless())
        }),
        max_lane_id,
        ..Fold::default()
    };
    for (wp, acc) in accs.into_iter().enumerate() {
        if !acc.seen {
            continue;
        }
        let e = &events[acc.event];
        let review_result = match acc.review_result {
            Slot::Absent => Slot::Absent,
            Slot::Null => Slot::Null,
            Slot::Set(i) => events[i]
                .review_result
                .as_ref()
                .and_then(RrSrc::resolve)
                .map_or(Slot::Null, Slot::Set),
        };
        let state = WpState {
            lane: Some(acc.lane),
            actor: names.actors.name(e.actor).to_owned(),
            last_transition_at: Some(e.at.to_string_lossless()),
            last_event_id: Some(e.event_id.to_string_lossless()),
            force_count: acc.force_count,
            review_result,
            shell_pid: acc.shell_pid,
            shell_pid_created_at: acc.shell_pid_created_at,
            agent: acc.agent,
            ..WpState::default()
        };
        fold.lanes.insert(
            names.wps.name(wp as u32).to_owned(),
            LanePart {
                state,
                rollback: acc.rollback,
            },
        );
    }

    // 5. Annotation post-pass, sorted by (at, event_id), stable for ties.
    let mut sorted: Vec<&AnnotationEvent> = annotations.iter().collect();
    sorted.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.event_id.cmp(&b.event_id)));
    fold.ann_last = sorted.last().map(|a| (a.at.clone(), a.event_id.clone()));
    for a in sorted {
        fold.annotate(a);
    }
    fold
}

/// Upstream `_apply_annotation_delta`.
pub(crate) fn apply_delta(state: &mut WpState, a: &AnnotationEvent) {
    let d = &a.delta;
    if d.release_runtime_claim {
        state.agent = Slot::Null;
        state.shell_pid = Slot::Null;
        state.shell_pid_created_at = Slot::Null;
    }
    if let Some(pid) = d.shell_pid {
        state.shell_pid = Slot::Set(pid.into());
    }
    let set_value = |slot: &mut Slot<Value>, v: &Option<String>| {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            *slot = Slot::Set(Value::String(v.clone()));
        }
    };
    set_value(&mut state.shell_pid_created_at, &d.shell_pid_created_at);
    set_value(&mut state.agent, &d.agent);
    let set_text = |slot: &mut Option<String>, v: &Option<String>| {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            *slot = Some(v.clone());
        }
    };
    set_text(&mut state.assignee, &d.assignee);
    set_text(&mut state.role, &d.role);
    set_text(&mut state.agent_profile, &d.agent_profile);
    set_text(&mut state.agent_profile_version, &d.agent_profile_version);
    set_text(&mut state.model, &d.model);
    set_text(&mut state.provider, &d.provider);
    if let Some(subtasks) = &d.subtasks {
        let current = state.subtasks.get_or_insert_with(BTreeMap::new);
        for (id, status) in subtasks {
            current.insert(id.clone(), *status);
        }
    }
    if let Some(note) = &d.note {
        state.notes.get_or_insert_with(Vec::new).push(note.clone());
    }
    if let Some(refs) = &d.tracker_refs_replace {
        let mut deduped: Vec<String> = Vec::with_capacity(refs.len());
        for r in refs {
            if !deduped.contains(r) {
                deduped.push(r.clone());
            }
        }
        state.tracker_refs = Some(deduped);
    } else if let Some(refs) = &d.tracker_refs {
        let merged = state.tracker_refs.get_or_insert_with(Vec::new);
        for r in refs {
            if !merged.contains(r) {
                merged.push(r.clone());
            }
        }
    }
    if let Some(review) = &d.review {
        state.review = if review.is_release_sentinel() {
            Slot::Null
        } else {
            Slot::Set(review.clone())
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::event::{Actor, AnnotationDelta, LaneEvent};
    use crate::status::stamp::Stamp;
    use serde_json::json;

    fn ev(id: &str, at: &str, wp: &str, from: Lane, to: Lane) -> LaneEvent {
        LaneEvent::new(
            Stamp {
                at: at.into(),
                event_id: id.into(),
            },
            "001-demo",
            wp,
            from,
            to,
            "alice",
        )
    }

    fn note(id: &str, at: &str, wp: &str, delta: AnnotationDelta) -> AnnotationEvent {
        AnnotationEvent {
            event_id: id.into(),
            wp_id: wp.into(),
            at: at.into(),
            actor: Actor::from("bob"),
            delta,
        }
    }

    fn rr(verdict: &str) -> ReviewResult {
        ReviewResult {
            reviewer: "codex".into(),
            verdict: verdict.into(),
            reference: "ref".into(),
            feedback_path: None,
        }
    }

    #[test]
    fn empty_input() {
        let r = reduce(&[], &[]);
        assert_eq!(r.event_count, 0);
        assert_eq!(r.materialized_at, "");
        assert_eq!(r.last_event_id, None);
        assert!(r.work_packages.is_empty());
        assert_eq!(r.summary.iter().map(|(_, n)| n).sum::<usize>(), 0);
    }

    #[test]
    fn dedupe_keeps_first_and_sorts_by_at_then_id() {
        let events = [
            ev(
                "B",
                "2026-01-01T00:00:02.000000+00:00",
                "WP01",
                Lane::Planned,
                Lane::Claimed,
            ),
            ev(
                "A",
                "2026-01-01T00:00:01.000000+00:00",
                "WP01",
                Lane::Genesis,
                Lane::Planned,
            ),
            // Duplicate id: the later copy (different content) is ignored.
            ev(
                "B",
                "2026-01-01T00:00:09.000000+00:00",
                "WP01",
                Lane::Planned,
                Lane::Canceled,
            ),
            // Same `at` as B: the event id breaks the tie (C > B).
            ev(
                "C",
                "2026-01-01T00:00:02.000000+00:00",
                "WP01",
                Lane::Claimed,
                Lane::InProgress,
            ),
        ];
        let r = reduce(&events, &[]);
        assert_eq!(r.event_count, 3);
        let wp = &r.work_packages["WP01"];
        assert_eq!(wp.lane, Some(Lane::InProgress));
        assert_eq!(wp.last_event_id.as_deref(), Some("C"));
        assert_eq!(r.last_event_id.as_deref(), Some("C"));
        assert_eq!(r.materialized_at, "2026-01-01T00:00:02.000000+00:00");
        assert_eq!(r.summary.get(Lane::InProgress), 1);
    }

    #[test]
    fn long_and_short_timestamps_sort_as_strings() {
        // Python drops ".000000"; "…07+00:00" < "…07.000001+00:00" as strings.
        let events = [
            ev(
                "Z",
                "2026-01-01T00:00:07.000001+00:00",
                "WP01",
                Lane::Planned,
                Lane::Claimed,
            ),
            ev(
                "Y",
                "2026-01-01T00:00:07+00:00",
                "WP01",
                Lane::Genesis,
                Lane::Planned,
            ),
            ev(
                "X",
                "2026-01-01T00:00:07.000001+00:00-and-more-than-32-bytes",
                "WP01",
                Lane::Claimed,
                Lane::Blocked,
            ),
        ];
        let r = reduce(&events, &[]);
        assert_eq!(r.work_packages["WP01"].lane, Some(Lane::Blocked));
        assert_eq!(r.last_event_id.as_deref(), Some("X"));
    }

    #[test]
    fn rollback_beats_forward_event_with_the_same_at() {
        let t = "2026-01-01T00:00:05.000000+00:00";
        let base = [ev(
            "01",
            "2026-01-01T00:00:01.000000+00:00",
            "WP01",
            Lane::ForReview,
            Lane::InReview,
        )];
        // Rollback sorts first (R < S): the forward event at the same `at` is ignored.
        let mut events = base.to_vec();
        let mut rollback = ev("R", t, "WP01", Lane::InReview, Lane::InProgress);
        rollback.review_result = Some(rr("changes_requested"));
        events.push(rollback.clone());
        events.push(ev("S", t, "WP01", Lane::InProgress, Lane::ForReview));
        let r = reduce(&events, &[]);
        assert_eq!(r.work_packages["WP01"].lane, Some(Lane::InProgress));
        assert_eq!(r.work_packages["WP01"].last_event_id.as_deref(), Some("R"));
        assert_eq!(r.event_count, 3, "ignored events still count");
        assert_eq!(r.last_event_id.as_deref(), Some("S"));
        // Forward sorts first (F < R): the rollback still wins.
        let mut events = base.to_vec();
        events.push(ev("F", t, "WP01", Lane::InReview, Lane::Approved));
        events.push(rollback);
        let r = reduce(&events, &[]);
        assert_eq!(r.work_packages["WP01"].lane, Some(Lane::InProgress));
        // A later `at` always applies.
        let mut later = events.clone();
        later.push(ev(
            "G",
            "2026-01-01T00:00:06.000000+00:00",
            "WP01",
            Lane::InProgress,
            Lane::ForReview,
        ));
        assert_eq!(
            reduce(&later, &[]).work_packages["WP01"].lane,
            Some(Lane::ForReview)
        );
    }

    #[test]
    fn legacy_for_review_rollback_needs_review_ref() {
        let t = "2026-01-01T00:00:05.000000+00:00";
        let mut rollback = ev("R", t, "WP01", Lane::ForReview, Lane::InProgress);
        let forward = ev("S", t, "WP01", Lane::InProgress, Lane::ForReview);
        let r = reduce(&[rollback.clone(), forward.clone()], &[]);
        assert_eq!(
            r.work_packages["WP01"].lane,
            Some(Lane::ForReview),
            "no review_ref: not a rollback"
        );
        rollback.review_ref = Some(String::new());
        let r = reduce(&[rollback, forward], &[]);
        assert_eq!(
            r.work_packages["WP01"].lane,
            Some(Lane::InProgress),
            "any review_ref, even empty"
        );
    }

    #[test]
    fn force_count_is_cumulative_and_actor_is_the_identity() {
        let mut a = ev("1", "t1", "WP01", Lane::Done, Lane::Planned);
        a.force = true;
        let mut b = ev("2", "t2", "WP01", Lane::Planned, Lane::Done);
        b.force = true;
        b.actor = Actor::Binding(crate::status::ActorBinding {
            role: Some("reviewer".into()),
            tool: None,
            ..Default::default()
        });
        let c = ev("3", "t3", "WP01", Lane::Done, Lane::Done);
        let r = reduce(&[a, b, c.clone()], &[]);
        assert_eq!(r.work_packages["WP01"].force_count, 2);
        assert_eq!(r.work_packages["WP01"].actor, "alice");
        let r = reduce(&[c], &[]);
        assert_eq!(r.work_packages["WP01"].force_count, 0);
    }

    #[test]
    fn claim_metadata_fills_runtime_slots() {
        let mut claim = ev("1", "t1", "WP01", Lane::Planned, Lane::Claimed);
        claim.policy_metadata =
            json!({"shell_pid": 4242, "agent": "claude", "shell_pid_created_at": null})
                .as_object()
                .cloned();
        let mut other = ev("2", "t2", "WP01", Lane::Claimed, Lane::InProgress);
        other.policy_metadata = json!({"shell_pid": 1, "agent": "x"}).as_object().cloned();
        let r = reduce(&[claim.clone(), other], &[]);
        let wp = &r.work_packages["WP01"];
        assert_eq!(
            wp.shell_pid,
            Slot::Set(json!(4242)),
            "only planned -> claimed writes"
        );
        assert_eq!(wp.agent, Slot::Set(json!("claude")));
        assert_eq!(wp.shell_pid_created_at, Slot::Absent);
        // An empty agent never overwrites.
        let mut again = ev("3", "t3", "WP01", Lane::Planned, Lane::Claimed);
        again.policy_metadata = json!({"agent": ""}).as_object().cloned();
        let r = reduce(&[claim, again], &[]);
        assert_eq!(r.work_packages["WP01"].agent, Slot::Set(json!("claude")));
    }

    #[test]
    fn review_result_slot_rules() {
        let mut approve = ev("1", "t1", "WP01", Lane::InProgress, Lane::Approved);
        approve.review_result = Some(rr("approved"));
        let plain = ev("2", "t2", "WP01", Lane::Approved, Lane::Blocked);
        let r = reduce(&[approve.clone(), plain], &[]);
        assert_eq!(
            r.work_packages["WP01"].review_result,
            Slot::Set(rr("approved")),
            "sticky"
        );
        let mut forced_exit = ev("3", "t3", "WP01", Lane::InReview, Lane::Planned);
        forced_exit.force = true;
        let r = reduce(&[approve, forced_exit], &[]);
        assert_eq!(r.work_packages["WP01"].review_result, Slot::Null);
        let r = reduce(&[ev("4", "t4", "WP01", Lane::Genesis, Lane::Planned)], &[]);
        assert_eq!(r.work_packages["WP01"].review_result, Slot::Absent);
    }

    #[test]
    fn annotations_fold_after_transitions_and_never_move_lanes() {
        let events = [ev("E1", "t5", "WP01", Lane::Genesis, Lane::Planned)];
        let mut release = AnnotationDelta {
            release_runtime_claim: true,
            model: Some("opus".into()),
            agent: Some("kept".into()),
            ..Default::default()
        };
        release.tracker_refs = Some(vec!["c".into(), "a".into()]);
        let notes = [
            // File order differs from (at, id) order: t2 < t3.
            note("N3", "t3", "WP01", AnnotationDelta::note("second")),
            note("N2", "t2", "WP01", AnnotationDelta::note("first")),
            note(
                "N4",
                "t4",
                "WP01",
                AnnotationDelta {
                    shell_pid: Some(7),
                    tracker_refs: Some(vec!["a".into(), "b".into()]),
                    ..AnnotationDelta::subtasks([("T1", Lane::Done), ("T2", Lane::Planned)])
                },
            ),
            note("N6", "t6", "WP01", release),
            note(
                "N7",
                "t7",
                "WP01",
                AnnotationDelta::subtasks([("T2", Lane::Done)]),
            ),
            note(
                "N8",
                "t8",
                "WP02",
                AnnotationDelta::note("only annotations"),
            ),
        ];
        let r = reduce(&events, &notes);
        let wp = &r.work_packages["WP01"];
        assert_eq!(wp.lane, Some(Lane::Planned));
        assert_eq!(
            wp.notes.as_deref(),
            Some(&["first".to_owned(), "second".to_owned()][..])
        );
        let subtasks = wp.subtasks.as_ref().unwrap();
        assert_eq!(subtasks["T1"], Lane::Done);
        assert_eq!(subtasks["T2"], Lane::Done);
        assert_eq!(
            wp.tracker_refs.as_deref(),
            Some(&["a".to_owned(), "b".to_owned(), "c".to_owned()][..])
        );
        assert_eq!(wp.shell_pid, Slot::Null, "released");
        assert_eq!(wp.shell_pid_created_at, Slot::Null);
        assert_eq!(
            wp.agent,
            Slot::Set(json!("kept")),
            "same-delta value wins over release"
        );
        assert_eq!(wp.model.as_deref(), Some("opus"));
        assert_eq!(wp.force_count, 0);
        let only = &r.work_packages["WP02"];
        assert_eq!(only.lane, None);
        assert_eq!(only.lane_str(), "uninitialized");
        assert_eq!(only.actor, "bob");
        assert_eq!(only.last_event_id, None);
        assert_eq!(r.summary.get(Lane::Planned), 1);
        assert_eq!(
            r.summary.iter().map(|(_, n)| n).sum::<usize>(),
            1,
            "uninitialized not counted"
        );
        assert_eq!(r.event_count, 1);
        assert_eq!(r.last_event_id.as_deref(), Some("E1"));
    }

    #[test]
    fn tracker_replace_and_review_sentinel() {
        let review = crate::status::ReviewOverride {
            at: "t".into(),
            actor: "arbiter".into(),
            wp_id: "WP01".into(),
            reason: "ok".into(),
        };
        let sentinel = crate::status::ReviewOverride {
            at: String::new(),
            actor: String::new(),
            wp_id: String::new(),
            reason: String::new(),
        };
        let d1 = AnnotationDelta {
            tracker_refs: Some(vec!["x".into()]),
            review: Some(review.clone()),
            ..Default::default()
        };
        let d2 = AnnotationDelta {
            tracker_refs: Some(vec!["ignored".into()]),
            tracker_refs_replace: Some(vec!["y".into(), "y".into(), "z".into()]),
            ..Default::default()
        };
        let r = reduce(
            &[],
            &[
                note("A", "t1", "WP01", d1.clone()),
                note("B", "t2", "WP01", d2),
            ],
        );
        let wp = &r.work_packages["WP01"];
        assert_eq!(
            wp.tracker_refs.as_deref(),
            Some(&["y".to_owned(), "z".to_owned()][..])
        );
        assert_eq!(wp.review, Slot::Set(review));
        let d3 = AnnotationDelta {
            review: Some(sentinel),
            ..Default::default()
        };
        let r = reduce(
            &[],
            &[note("A", "t1", "WP01", d1), note("C", "t3", "WP01", d3)],
        );
        assert_eq!(r.work_packages["WP01"].review, Slot::Null);
    }

    #[test]
    fn summary_skips_genesis_as_a_current_lane() {
        let mut weird = ev("1", "t1", "WP01", Lane::Planned, Lane::Genesis);
        weird.force = true;
        let r = reduce(&[weird], &[]);
        assert_eq!(r.summary.iter().map(|(_, n)| n).sum::<usize>(), 0);
        assert_eq!(r.summary.get(Lane::Genesis), 0);
    }

    mod model {
        //! The reducer against a trivial model: with distinct timestamps, each
        //! WP's state is its last transition in time order.
        use super::*;
        use crate::status::stamp::EventStamper;
        use crate::status::store::EventLog;
        use crate::status::{StatusRecord, TransitionRequest, validate_transition};
        use proptest::prelude::*;

        /// (wp index, choice of target, force) per step.
        fn steps() -> impl Strategy<Value = Vec<(usize, usize, bool)>> {
            prop::collection::vec((0usize..4, 0usize..16, prop::bool::weighted(0.1)), 0..60)
        }

        /// Builds a valid sequence: each WP starts in genesis and moves along a
        /// matrix edge, or is forced to any non-genesis lane.
        fn build(steps: &[(usize, usize, bool)]) -> Vec<LaneEvent> {
            let mut lanes = [Lane::Genesis; 4];
            let base: jiff::Timestamp = "2026-11-24T10:00:00Z".parse().unwrap();
            let mut stamps = EventStamper::new();
            let mut out = Vec::new();
            for (i, &(wp, choice, force)) in steps.iter().enumerate() {
                let from = lanes[wp];
                let targets: Vec<Lane> = if force {
                    Lane::DISPLAY.to_vec()
                } else {
                    from.allowed_targets().to_vec()
                };
                if targets.is_empty() {
                    continue;
                }
                let to = targets[choice % targets.len()];
                let stamp = stamps.stamp_at(base + jiff::SignedDuration::from_millis(i as i64 * 7));
                let mut e = LaneEvent::new(
                    stamp,
                    "001-demo",
                    format!("WP{:02}", wp + 1),
                    from,
                    to,
                    "alice",
                );
                e.force = force;
                if force {
                    e.reason = Some("forced".into());
                }
                // The sequence is valid: every event passes the guards with
                // the inputs it records (force) or is on a matrix edge.
                let mut req = TransitionRequest::new(from, to);
                req.force = force;
                req.actor = Some("alice");
                req.reason = e.reason.as_deref();
                assert!(force || from.may_transition_to(to));
                if force {
                    assert_eq!(validate_transition(&req), Ok(()));
                }
                lanes[wp] = to;
                out.push(e);
            }
            out
        }

        fn model(events: &[LaneEvent]) -> BTreeMap<String, (Lane, u64, String)> {
            let mut m: BTreeMap<String, (Lane, u64, String)> = BTreeMap::new();
            for e in events {
                let entry = m
                    .entry(e.wp_id.clone())
                    .or_insert((e.to_lane, 0, String::new()));
                entry.0 = e.to_lane;
                entry.1 += u64::from(e.force);
                entry.2 = e.event_id.clone();
            }
            m
        }

        proptest! {
            #![proptest_config(ProptestConfig {
            cases: 128,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

            #[test]
            fn reducer_agrees_with_last_transition_model(
                steps in steps(),
                shuffle_seed in any::<u64>(),
                dup_every in 2usize..6,
            ) {
                let events = build(&steps);
                let expected = model(&events);
                let r = reduce(&events, &[]);
                let got: BTreeMap<String, (Lane, u64, String)> = r
                    .work_packages
                    .iter()
                    .map(|(k, s)| (k.clone(), (s.lane.unwrap(), s.force_count, s.last_event_id.clone().unwrap())))
                    .collect();
                prop_assert_eq!(&got, &expected);
                prop_assert_eq!(r.event_count, events.len());
                prop_assert_eq!(r.last_event_id.clone(), events.last().map(|e| e.event_id.clone()));
                let counted: usize = r.summary.iter().map(|(_, n)| n).sum();
                prop_assert_eq!(counted, expected.len());

                // File order and duplicated lines do not matter.
                let mut shuffled = events.clone();
                let mut x = shuffle_seed | 1;
                for i in (1..shuffled.len()).rev() {
                    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                    shuffled.swap(i, (x % (i as u64 + 1)) as usize);
                }
                let mut with_dups = shuffled.clone();
                for (i, e) in shuffled.iter().enumerate() {
                    if i % dup_every == 0 {
                        with_dups.push(e.clone());
                    }
                }
                prop_assert_eq!(&reduce(&with_dups, &[]), &r);

                // The on-disk fast path agrees with the in-memory reducer.
                let dir = tempfile::tempdir().unwrap();
                let log = EventLog::new(dir.path());
                let records: Vec<StatusRecord> = with_dups.into_iter().map(StatusRecord::Lane).collect();
                log.append(&records).unwrap();
                prop_assert_eq!(&log.reduce().unwrap(), &r);
            }
        }
    }
}
