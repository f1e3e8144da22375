//! The persisted form of a [`Fold`] (the checkpoint's `fold`), written and read with serde
//! straight from and into the typed state, without a `serde_json::Value` tree in between.
//!
//! The JSON is the same as checkpoint format 1 always was: per work package the keys of its
//! `status.json` entry (a claim or review slot that is absent is not written, an explicit
//! `null` is), so checkpoints written before this module are read as they are.

use std::collections::BTreeMap;

use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::event::{ReviewOverride, ReviewResult};
use super::fold::{AnnPart, Fold, LanePart};
use super::lane::{Lane, UNINITIALIZED};
use super::reducer::{Slot, WpState};

/// Checkpoint format version.
pub(crate) const VERSION: u64 = 1;

/// A [`Fold`] as written (borrowed).
#[derive(Serialize)]
pub(crate) struct FoldOut<'a> {
    version: u64,
    event_count: usize,
    last: Option<(&'a str, &'a str)>,
    max_lane_id: Option<&'a str>,
    ann_last: Option<(&'a str, &'a str)>,
    lanes: Parts<'a, LanePart>,
    anns: Parts<'a, AnnPart>,
}

/// A [`Fold`] as read; [`FoldIn::into_fold`] checks what serde cannot.
#[derive(Deserialize)]
pub(crate) struct FoldIn {
    version: u64,
    event_count: usize,
    last: Option<(String, String)>,
    max_lane_id: Option<String>,
    ann_last: Option<(String, String)>,
    lanes: BTreeMap<String, LanePart>,
    anns: BTreeMap<String, AnnPart>,
}

/// A [`LanePart`] as read (`LanePart` deserializes through it, straight into the fold's map).
#[derive(Deserialize)]
pub(crate) struct LaneIn {
    state: StateIn,
    rollback: bool,
}

/// An [`AnnPart`] as read.
#[derive(Deserialize)]
pub(crate) struct AnnIn {
    state: StateIn,
    first_actor: String,
}

/// A fold's map of parts, written as `{wp: part}` through each part's borrowed form.
struct Parts<'a, P>(&'a BTreeMap<String, P>);

/// The borrowed form a part is written as.
trait PartOut {
    type Out<'b>: Serialize
    where
        Self: 'b;
    fn out(&self) -> Self::Out<'_>;
}

#[derive(Serialize)]
struct LaneOut<'a> {
    state: StateOut<'a>,
    rollback: bool,
}

#[derive(Serialize)]
struct AnnOut<'a> {
    state: StateOut<'a>,
    first_actor: &'a str,
}

impl PartOut for LanePart {
    type Out<'b> = LaneOut<'b>;
    fn out(&self) -> LaneOut<'_> {
        LaneOut {
            state: StateOut::of(&self.state),
            rollback: self.rollback,
        }
    }
}

impl PartOut for AnnPart {
    type Out<'b> = AnnOut<'b>;
    fn out(&self) -> AnnOut<'_> {
        AnnOut {
            state: StateOut::of(&self.state),
            first_actor: &self.first_actor,
        }
    }
}

impl<P: PartOut> Serialize for Parts<'_, P> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(wp, p)| (wp, p.out())))
    }
}

/// A claim or review slot: absent (`None`, not written), `null` or a value.
type SlotOut<T> = Option<Option<T>>;

fn slot_ref<T>(slot: &Slot<T>) -> SlotOut<&T> {
    match slot {
        Slot::Absent => None,
        Slot::Null => Some(None),
        Slot::Set(v) => Some(Some(v)),
    }
}

fn slot_in<T>(slot: Option<Option<T>>) -> Slot<T> {
    match slot {
        None => Slot::Absent,
        Some(None) => Slot::Null,
        Some(Some(v)) => Slot::Set(v),
    }
}

/// A present key (`null` included) is `Some`; an absent one is `None` (via `default`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Serialize)]
struct StateOut<'a> {
    lane: &'static str,
    actor: &'a str,
    last_transition_at: Option<&'a str>,
    last_event_id: Option<&'a str>,
    force_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    review_result: SlotOut<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shell_pid: SlotOut<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shell_pid_created_at: SlotOut<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: SlotOut<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    review: SlotOut<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subtasks: Option<BTreeMap<&'a str, &'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notes: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracker_refs: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assignee: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_profile: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_profile_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<&'a str>,
}

impl<'a> StateOut<'a> {
    fn of(s: &'a WpState) -> Self {
        StateOut {
            lane: s.lane_str(),
            actor: &s.actor,
            last_transition_at: s.last_transition_at.as_deref(),
            last_event_id: s.last_event_id.as_deref(),
            force_count: s.force_count,
            review_result: slot_ref(&s.review_result).map(|r| r.map(ReviewResult::to_json)),
            shell_pid: slot_ref(&s.shell_pid),
            shell_pid_created_at: slot_ref(&s.shell_pid_created_at),
            agent: slot_ref(&s.agent),
            review: slot_ref(&s.review).map(|r| r.map(ReviewOverride::to_json)),
            subtasks: s.subtasks.as_ref().map(|m| {
                m.iter()
                    .map(|(k, lane)| (k.as_str(), lane.as_str()))
                    .collect()
            }),
            notes: s.notes.as_deref(),
            tracker_refs: s.tracker_refs.as_deref(),
            assignee: s.assignee.as_deref(),
            role: s.role.as_deref(),
            agent_profile: s.agent_profile.as_deref(),
            agent_profile_version: s.agent_profile_version.as_deref(),
            model: s.model.as_deref(),
            provider: s.provider.as_deref(),
        }
    }
}

#[derive(Deserialize)]
struct StateIn {
    #[serde(deserialize_with = "lane_in")]
    lane: Option<Lane>,
    actor: String,
    last_transition_at: Option<String>,
    last_event_id: Option<String>,
    force_count: u64,
    #[serde(default, deserialize_with = "present")]
    review_result: Option<Option<ReviewResult>>,
    #[serde(default, deserialize_with = "present")]
    shell_pid: Option<Option<Value>>,
    #[serde(default, deserialize_with = "present")]
    shell_pid_created_at: Option<Option<Value>>,
    #[serde(default, deserialize_with = "present")]
    agent: Option<Option<Value>>,
    #[serde(default, deserialize_with = "present")]
    review: Option<Option<ReviewOverride>>,
    #[serde(default, deserialize_with = "subtasks_in")]
    subtasks: Option<BTreeMap<String, Lane>>,
    notes: Option<Vec<String>>,
    tracker_refs: Option<Vec<String>>,
    assignee: Option<String>,
    role: Option<String>,
    agent_profile: Option<String>,
    agent_profile_version: Option<String>,
    model: Option<String>,
    provider: Option<String>,
}

fn lane_in<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Lane>, D::Error> {
    let text = String::deserialize(d)?;
    if text == UNINITIALIZED {
        return Ok(None);
    }
    Lane::from_wire(&text).map(Some).map_err(D::Error::custom)
}

fn subtasks_in<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, Lane>>, D::Error> {
    let Some(raw) = Option::<BTreeMap<String, String>>::deserialize(d)? else {
        return Ok(None);
    };
    raw.into_iter()
        .map(|(k, v)| Lane::from_wire(&v).map(|lane| (k, lane)))
        .collect::<Result<_, _>>()
        .map(Some)
        .map_err(D::Error::custom)
}

impl From<LaneIn> for LanePart {
    fn from(p: LaneIn) -> LanePart {
        LanePart {
            state: p.state.into(),
            rollback: p.rollback,
        }
    }
}

impl From<AnnIn> for AnnPart {
    fn from(p: AnnIn) -> AnnPart {
        AnnPart {
            state: p.state.into(),
            first_actor: p.first_actor,
        }
    }
}

impl From<StateIn> for WpState {
    fn from(s: StateIn) -> WpState {
        WpState {
            lane: s.lane,
            actor: s.actor,
            last_transition_at: s.last_transition_at,
            last_event_id: s.last_event_id,
            force_count: s.force_count,
            review_result: slot_in(s.review_result),
            shell_pid: slot_in(s.shell_pid),
            shell_pid_created_at: slot_in(s.shell_pid_created_at),
            agent: slot_in(s.agent),
            subtasks: s.subtasks,
            notes: s.notes,
            tracker_refs: s.tracker_refs,
            review: slot_in(s.review),
            assignee: s.assignee,
            role: s.role,
            agent_profile: s.agent_profile,
            agent_profile_version: s.agent_profile_version,
            model: s.model,
            provider: s.provider,
        }
    }
}

fn pair(p: &Option<(String, String)>) -> Option<(&str, &str)> {
    p.as_ref().map(|(a, b)| (a.as_str(), b.as_str()))
}

impl Fold {
    /// The persisted form (see the module docs).
    pub(crate) fn repr(&self) -> FoldOut<'_> {
        FoldOut {
            version: VERSION,
            event_count: self.event_count,
            last: pair(&self.last),
            max_lane_id: self.max_lane_id.as_deref(),
            ann_last: pair(&self.ann_last),
            lanes: Parts(&self.lanes),
            anns: Parts(&self.anns),
        }
    }
}

impl FoldIn {
    /// The fold, or `None` for another format version (the caller reduces the log).
    pub(crate) fn into_fold(self) -> Option<Fold> {
        if self.version != VERSION {
            return None;
        }
        Some(Fold {
            lanes: self.lanes,
            anns: self.anns,
            event_count: self.event_count,
            last: self.last,
            max_lane_id: self.max_lane_id,
            ann_last: self.ann_last,
        })
    }
}
