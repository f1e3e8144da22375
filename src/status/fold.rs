//! The reducer's state, kept between commands so a write costs the same at any log size.
//!
//! A [`Fold`] holds what the reducer ([`super::reducer`]) knows after reading a log: per work
//! package its lane part (the transition that set its state, whether that was a rollback, its
//! forced-transition count, review result and claim slots) and its annotation part (everything
//! annotations set, with the claim slots they overrode), plus the log-wide order marks (the last
//! lane event in `(at, event_id)` order, the largest lane `event_id`, the last annotation).
//!
//! The reducer sorts lane events by `(at, event_id)` and folds annotations afterwards, sorted the
//! same way. An event that sorts after everything already folded (and, for lane events, whose
//! id is larger than every id seen, so it cannot be a duplicate) is folded exactly as a full
//! reduction would fold it: [`Fold::apply_lane`] / [`Fold::apply_annotation`]. Anything else
//! answers [`OutOfOrder`] and the caller reduces the whole log again. The two parts combine
//! into the snapshot exactly as the full reducer's post-pass does: annotations overwrite the
//! claim slots they set and add their own fields, a work package with annotations only is
//! `uninitialized` with the first annotation's actor. Tests check the equivalence.
//!
//! `fold_repr` persists it (see `checkpoint`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::compact::Batch;
use super::event::{AnnotationEvent, LaneEvent};
use super::lane::Lane;
use super::reducer::{LaneCounts, Reduction, Slot, WpState, apply_delta};

/// The transition that set a work package's state, and what lane events accumulate.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(from = "super::fold_repr::LaneIn")]
pub(crate) struct LanePart {
    /// Lane, actor, last transition, force count, review result and claim slots.
    pub(crate) state: WpState,
    /// Whether the state-setting transition was a rollback (rollback precedence).
    pub(crate) rollback: bool,
}

/// What annotations set on a work package (claim slots: `Absent` = not overridden).
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(from = "super::fold_repr::AnnIn")]
pub(crate) struct AnnPart {
    pub(crate) state: WpState,
    /// Actor of the first annotation in sort order.
    pub(crate) first_actor: String,
}

/// An event that does not sort after everything folded: reduce the whole log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfOrder;

/// The reducer's state (see the module docs).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fold {
    pub(crate) lanes: BTreeMap<String, LanePart>,
    pub(crate) anns: BTreeMap<String, AnnPart>,
    /// Distinct lane events.
    pub(crate) event_count: usize,
    /// `(at, event_id)` of the last lane event in sort order.
    pub(crate) last: Option<(String, String)>,
    /// The largest lane `event_id` seen (duplicates included).
    pub(crate) max_lane_id: Option<String>,
    /// `(at, event_id)` of the last annotation in sort order.
    pub(crate) ann_last: Option<(String, String)>,
}

impl Fold {
    /// Folds one lane event that sorts after everything folded so far.
    pub fn apply_lane(&mut self, e: &LaneEvent) -> Result<(), OutOfOrder> {
        if self
            .max_lane_id
            .as_deref()
            .is_some_and(|m| e.event_id.as_str() <= m)
        {
            return Err(OutOfOrder);
        }
        if self
            .last
            .as_ref()
            .is_some_and(|(at, id)| (e.at.as_str(), e.event_id.as_str()) <= (at.as_str(), id))
        {
            return Err(OutOfOrder);
        }
        // The same facts the full reducer extracts (claim metadata, rollback, review result).
        let mut one = Batch::default();
        one.push_owned(e);
        let Some(c) = one.events.first() else {
            return Err(OutOfOrder);
        };
        self.event_count += 1;
        self.last = Some((e.at.clone(), e.event_id.clone()));
        self.max_lane_id = Some(e.event_id.clone());
        let part = self
            .lanes
            .entry(e.wp_id.clone())
            .or_insert_with(|| LanePart {
                state: WpState::default(),
                rollback: false,
            });
        let seen = part.state.lane.is_some();
        if seen
            && part.rollback
            && !c.rollback
            && part.state.last_transition_at.as_deref() == Some(e.at.as_str())
        {
            return Ok(());
        }
        let s = &mut part.state;
        s.lane = Some(c.to);
        s.actor = e.actor.identity().to_owned();
        s.last_transition_at = Some(e.at.clone());
        s.last_event_id = Some(e.event_id.clone());
        s.force_count += u64::from(c.force);
        part.rollback = c.rollback;
        if let Some(meta) = &c.claim {
            if let Some(v) = &meta.shell_pid {
                s.shell_pid = Slot::Set(v.clone());
            }
            if let Some(v) = &meta.shell_pid_created_at {
                s.shell_pid_created_at = Slot::Set(v.clone());
            }
            if let Some(v) = meta.agent.as_ref().filter(|v| truthy(v)) {
                s.agent = Slot::Set(v.clone());
            }
        }
        if let Some(rr) = &c.review_result {
            s.review_result = rr.resolve().map_or(Slot::Null, Slot::Set);
        } else if c.from == Lane::InReview {
            s.review_result = Slot::Null;
        }
        Ok(())
    }

    /// Folds one annotation that sorts at or after every annotation folded so far.
    pub fn apply_annotation(&mut self, a: &AnnotationEvent) -> Result<(), OutOfOrder> {
        if self
            .ann_last
            .as_ref()
            .is_some_and(|(at, id)| (a.at.as_str(), a.event_id.as_str()) < (at.as_str(), id))
        {
            return Err(OutOfOrder);
        }
        self.ann_last = Some((a.at.clone(), a.event_id.clone()));
        self.annotate(a);
        Ok(())
    }

    /// The full reducer's post-pass step for one annotation (no order check).
    pub(crate) fn annotate(&mut self, a: &AnnotationEvent) {
        let part = self.anns.entry(a.wp_id.clone()).or_insert_with(|| AnnPart {
            state: WpState::default(),
            first_actor: a.actor.identity().to_owned(),
        });
        apply_delta(&mut part.state, a);
    }

    /// The snapshot this state stands for.
    pub fn reduction(&self) -> Reduction {
        self.clone().into_reduction()
    }

    /// [`Fold::reduction`] of a fold no longer needed: the states are moved, not copied.
    pub fn into_reduction(self) -> Reduction {
        let mut work_packages: BTreeMap<String, WpState> = BTreeMap::new();
        for (wp, part) in self.lanes {
            if part.state.lane.is_some() {
                work_packages.insert(wp, part.state);
            }
        }
        for (wp, ann) in self.anns {
            match work_packages.get_mut(&wp) {
                Some(state) => overlay(state, ann.state),
                None => {
                    let mut state = ann.state;
                    state.lane = None;
                    state.actor = ann.first_actor;
                    work_packages.insert(wp, state);
                }
            }
        }
        let mut summary = LaneCounts::default();
        for state in work_packages.values() {
            if let Some(lane) = state.lane {
                summary.add(lane);
            }
        }
        let (materialized_at, last_event_id) = match self.last {
            Some((at, id)) => (at, Some(id)),
            None => (String::new(), None),
        };
        Reduction {
            materialized_at,
            event_count: self.event_count,
            last_event_id,
            work_packages,
            summary,
        }
    }

    /// The persisted form as a JSON value (tests compare and damage it).
    #[cfg(test)]
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.repr()).unwrap_or(Value::Null)
    }

    /// Reads [`Fold::to_json`]'s form; `None` for anything else (the caller reduces the log).
    #[cfg(test)]
    pub fn from_json(v: &Value) -> Option<Fold> {
        serde::Deserialize::deserialize(v)
            .ok()
            .and_then(super::fold_repr::FoldIn::into_fold)
    }
}

/// Annotation fields over a lane-derived state (the full reducer's post-pass, in effect).
fn overlay(state: &mut WpState, ann: WpState) {
    for (slot, over) in [
        (&mut state.shell_pid, ann.shell_pid),
        (&mut state.shell_pid_created_at, ann.shell_pid_created_at),
        (&mut state.agent, ann.agent),
    ] {
        if !matches!(over, Slot::Absent) {
            *slot = over;
        }
    }
    state.review = ann.review;
    state.subtasks = ann.subtasks;
    state.notes = ann.notes;
    state.tracker_refs = ann.tracker_refs;
    state.assignee = ann.assignee;
    state.role = ann.role;
    state.agent_profile = ann.agent_profile;
    state.agent_profile_version = ann.agent_profile_version;
    state.model = ann.model;
    state.provider = ann.provider;
}

/// Python truthiness of a JSON value (as the reducer).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::event::{AnnotationDelta, ReviewResult};
    use crate::status::reducer::reduce;
    use crate::status::stamp::Stamp;
    use serde_json::json;

    enum Item {
        Lane(LaneEvent),
        Ann(AnnotationEvent),
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    const LANES: [Lane; 7] = [
        Lane::Planned,
        Lane::Claimed,
        Lane::InProgress,
        Lane::ForReview,
        Lane::InReview,
        Lane::Approved,
        Lane::Done,
    ];

    /// A log of lane events and annotations: mostly in time order, with equal `at`s (rollback
    /// precedence), rollbacks, claims with metadata, review results, forced moves, duplicates and
    /// some events out of order.
    fn log(seed: u64) -> Vec<Item> {
        let mut rng = Rng(seed | 1);
        let mut out = Vec::new();
        let mut t = 0u64;
        let mut current = [Lane::Genesis; 3];
        for n in 0..40u64 {
            if rng.pick(4) != 0 {
                t += 1;
            }
            let mut at_t = t;
            if rng.pick(12) == 0 {
                at_t = t.saturating_sub(3);
            }
            let at = format!("2026-11-24T10:00:{:02}.000000+00:00", at_t % 60);
            let id = format!(
                "01JMBY7K8N3QRVX2DPFG5H{:04}",
                if rng.pick(15) == 0 {
                    n.saturating_sub(2)
                } else {
                    n
                }
            );
            let wp = rng.pick(3);
            let wp_id = format!("WP{:02}", wp + 1);
            let stamp = Stamp { at, event_id: id };
            if rng.pick(3) == 0 {
                let delta = match rng.pick(6) {
                    0 => AnnotationDelta::note(format!("note {n}")),
                    1 => AnnotationDelta {
                        release_runtime_claim: true,
                        ..Default::default()
                    },
                    2 => AnnotationDelta {
                        shell_pid: Some(n as i64),
                        agent: Some(format!("agent{n}")),
                        ..Default::default()
                    },
                    3 => AnnotationDelta {
                        tracker_refs: Some(vec!["a".into(), format!("r{}", n % 3)]),
                        ..Default::default()
                    },
                    4 => AnnotationDelta::subtasks([("T1", LANES[rng.pick(7)])]),
                    _ => AnnotationDelta {
                        model: Some("m".into()),
                        assignee: Some(format!("who{n}")),
                        ..Default::default()
                    },
                };
                let actor = format!("ann{}", rng.pick(2));
                if let Ok(a) = AnnotationEvent::new(stamp, wp_id, actor, delta) {
                    out.push(Item::Ann(a));
                }
                continue;
            }
            let from = current[wp];
            let to = match rng.pick(5) {
                0 if from == Lane::InReview => Lane::InProgress,
                _ => LANES[rng.pick(7)],
            };
            let mut e = LaneEvent::new(
                stamp,
                "001-x",
                wp_id,
                from,
                to,
                format!("actor{}", rng.pick(3)),
            );
            e.force = rng.pick(5) == 0;
            if from == Lane::ForReview && to == Lane::InProgress && rng.pick(2) == 0 {
                e.review_ref = Some("feedback".into());
            }
            if from == Lane::InReview && rng.pick(2) == 0 {
                e.review_result = Some(ReviewResult {
                    reviewer: "r".into(),
                    verdict: "approved".into(),
                    reference: format!("ref{n}"),
                    feedback_path: None,
                });
            }
            if rng.pick(3) == 0 {
                e.policy_metadata =
                    json!({"shell_pid": n, "agent": if n % 2 == 0 { "" } else { "claude" },
                    "shell_pid_created_at": "x"})
                    .as_object()
                    .cloned();
                e.from_lane = Lane::Planned;
                e.to_lane = Lane::Claimed;
            }
            current[wp] = e.to_lane;
            out.push(Item::Lane(e));
        }
        out
    }

    fn full(items: &[Item]) -> Reduction {
        let lanes: Vec<LaneEvent> = items
            .iter()
            .filter_map(|i| match i {
                Item::Lane(e) => Some(e.clone()),
                Item::Ann(_) => None,
            })
            .collect();
        let anns: Vec<AnnotationEvent> = items
            .iter()
            .filter_map(|i| match i {
                Item::Ann(a) => Some(a.clone()),
                Item::Lane(_) => None,
            })
            .collect();
        reduce(&lanes, &anns)
    }

    fn fold_of(items: &[Item]) -> Fold {
        let mut lanes = Batch::default();
        let mut anns = Vec::new();
        for i in items {
            match i {
                Item::Lane(e) => lanes.push_owned(e),
                Item::Ann(a) => anns.push(a.clone()),
            }
        }
        super::super::reducer::fold_batches(&mut [lanes], &anns)
    }

    #[test]
    fn folding_the_rest_onto_a_saved_prefix_equals_reducing_everything() {
        let (mut applied, mut refused) = (0, 0);
        for seed in 1..400u64 {
            let items = log(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let expected = full(&items);
            assert_eq!(fold_of(&items).reduction(), expected, "seed {seed}");
            for split in [
                0,
                items.len() / 3,
                items.len() / 2,
                items.len().saturating_sub(1),
            ] {
                let (prefix, rest) = items.split_at(split);
                let saved = fold_of(prefix).to_json();
                let mut fold = Fold::from_json(&saved).expect("round trip");
                assert_eq!(fold, fold_of(prefix), "seed {seed} split {split}");
                let ok = rest.iter().all(|i| match i {
                    Item::Lane(e) => fold.apply_lane(e).is_ok(),
                    Item::Ann(a) => fold.apply_annotation(a).is_ok(),
                });
                if ok {
                    applied += 1;
                    assert_eq!(fold.reduction(), expected, "seed {seed} split {split}");
                } else {
                    refused += 1;
                }
            }
        }
        // Both paths are exercised.
        assert!(applied > 100, "applied {applied}");
        assert!(refused > 100, "refused {refused}");
    }

    #[test]
    fn events_in_time_order_always_fold_incrementally() {
        let base: jiff::Timestamp = "2026-11-24T10:00:00Z".parse().unwrap();
        let mut stamps = crate::status::stamp::EventStamper::new();
        let mut fold = Fold::default();
        let mut all = Vec::new();
        for i in 0..50i64 {
            let stamp = stamps.stamp_at(base + jiff::SignedDuration::from_millis(i / 3));
            let item = if i % 4 == 3 {
                Item::Ann(
                    AnnotationEvent::new(stamp, "WP01", "a", AnnotationDelta::note("n")).unwrap(),
                )
            } else {
                Item::Lane(LaneEvent::new(
                    stamp,
                    "001-x",
                    "WP01",
                    Lane::Planned,
                    LANES[(i % 7) as usize],
                    "b",
                ))
            };
            match &item {
                Item::Lane(e) => assert_eq!(fold.apply_lane(e), Ok(())),
                Item::Ann(a) => assert_eq!(fold.apply_annotation(a), Ok(())),
            }
            all.push(item);
        }
        assert_eq!(fold.reduction(), full(&all));
    }

    /// Format 1 as it was written before `fold_repr` (from the status.json value of each
    /// state), which checkpoints on disk still hold.
    fn format_1(fold: &Fold) -> Value {
        use crate::status::snapshot::wp_state_json;
        let pair = |p: &Option<(String, String)>| json!(p.as_ref().map(|(a, b)| [a, b]));
        let lanes: serde_json::Map<String, Value> = fold
            .lanes
            .iter()
            .map(|(wp, p)| {
                let v = json!({"state": wp_state_json(&p.state), "rollback": p.rollback});
                (wp.clone(), v)
            })
            .collect();
        let anns: serde_json::Map<String, Value> = fold
            .anns
            .iter()
            .map(|(wp, p)| {
                let v = json!({"state": wp_state_json(&p.state), "first_actor": p.first_actor});
                (wp.clone(), v)
            })
            .collect();
        json!({"version": 1, "event_count": fold.event_count, "last": pair(&fold.last),
               "max_lane_id": fold.max_lane_id, "ann_last": pair(&fold.ann_last),
               "lanes": lanes, "anns": anns})
    }

    #[test]
    fn checkpoints_of_format_1_read_as_written_and_status_json_matches_the_value_tree() {
        use crate::status::pyjson;
        use crate::status::snapshot::{SnapshotIdentity, render_status_json, snapshot_json};
        let id = SnapshotIdentity {
            mission_slug: "001-x".into(),
            mission_number: "1".into(),
            mission_type: "software-dev".into(),
        };
        for seed in 1..300u64 {
            let fold = fold_of(&log(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
            let old = format_1(&fold);
            assert_eq!(Fold::from_json(&old).as_ref(), Some(&fold), "seed {seed}");
            assert_eq!(fold.to_json(), old, "seed {seed}");
            let bytes = serde_json::to_vec(&fold.repr()).unwrap();
            let back: super::super::fold_repr::FoldIn = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(back.into_fold().as_ref(), Some(&fold), "seed {seed}");
            let r = fold.reduction();
            let reference = format!("{}\n", pyjson::pretty(&snapshot_json(&r, &id)));
            assert_eq!(render_status_json(&r, &id), reference, "seed {seed}");
        }
    }

    #[test]
    fn a_foreign_or_damaged_checkpoint_is_not_read() {
        assert_eq!(Fold::from_json(&json!({})), None);
        let mut v = Fold::default().to_json();
        v["version"] = json!(99);
        assert_eq!(Fold::from_json(&v), None);
        let mut v = Fold::default().to_json();
        v["lanes"] = json!({"WP01": {"state": {"lane": "bogus"}, "rollback": false}});
        assert_eq!(Fold::from_json(&v), None);
    }
}
