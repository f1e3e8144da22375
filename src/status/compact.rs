//! Compact in-memory form of lane events for the reducer.
//!
//! The reducer needs only `at`, `event_id`, the WP, the actor identity, the
//! two lanes, `force`, whether the event is a rollback, the review result and
//! (for `planned -> claimed`) three policy-metadata values. A [`Compact`]
//! record holds exactly that in ~112 bytes with no heap allocation in the
//! common case: `at` and `event_id` are stored inline when they fit in 32
//! bytes (upstream's `at` is exactly 32, a ULID 26), WP ids and actors are
//! interned. Keeping the working set small matters: on the reference machine
//! touching fresh memory costs about 0.6 ms per MiB.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::Deserialize;
use serde_json::Value;

use super::event::{LaneEvent, ReviewResult};
use super::lane::Lane;
use super::line::{LaneView, RrView, parse_review_result_text};

/// A string stored inline up to 32 bytes, else on the heap.
#[derive(Clone, Debug)]
pub(crate) enum SmallStr {
    Inline { len: u8, buf: [u8; 32] },
    Heap(Box<str>),
}

impl SmallStr {
    pub(crate) fn new(s: &str) -> Self {
        let bytes = s.as_bytes();
        if bytes.len() <= 32 {
            let mut buf = [0u8; 32];
            buf[..bytes.len()].copy_from_slice(bytes);
            SmallStr::Inline {
                len: bytes.len() as u8,
                buf,
            }
        } else {
            SmallStr::Heap(s.into())
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            SmallStr::Inline { len, buf } => &buf[..usize::from(*len)],
            SmallStr::Heap(s) => s.as_bytes(),
        }
    }

    /// The text (always valid UTF-8: it was copied from a `&str`).
    pub(crate) fn to_string_lossless(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }

    /// Big-endian integers of the zero-padded first 32 bytes: comparing these
    /// compares the first 32 bytes lexicographically.
    pub(crate) fn prefix_key(&self) -> (u128, u128) {
        let halves = |buf: &[u8; 32]| {
            let mut hi = [0u8; 16];
            let mut lo = [0u8; 16];
            hi.copy_from_slice(&buf[..16]);
            lo.copy_from_slice(&buf[16..]);
            (u128::from_be_bytes(hi), u128::from_be_bytes(lo))
        };
        match self {
            // Inline buffers are already zero-padded.
            SmallStr::Inline { buf, .. } => halves(buf),
            SmallStr::Heap(s) => {
                let mut buf = [0u8; 32];
                buf.copy_from_slice(&s.as_bytes()[..32]);
                halves(&buf)
            }
        }
    }
}

/// FxHash (rustc's hasher): much faster than SipHash for short keys.
#[derive(Default)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

/// Distinct strings numbered in first-seen order.
#[derive(Default, Debug)]
pub(crate) struct Interner {
    ids: HashMap<Box<str>, u32, FxBuild>,
    names: Vec<Box<str>>,
    /// The last id returned (actors repeat a lot).
    last: Option<u32>,
}

impl Interner {
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        if let Some(last) = self.last
            && self.name(last) == s
        {
            return last;
        }
        let id = match self.ids.get(s) {
            Some(&id) => id,
            None => {
                let id = self.names.len() as u32;
                self.names.push(s.into());
                self.ids.insert(s.into(), id);
                id
            }
        };
        self.last = Some(id);
        id
    }

    pub(crate) fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |s| s)
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }
}

/// Claim metadata of a `planned -> claimed` event (non-null values only).
#[derive(Default, Debug, Deserialize)]
pub(crate) struct ClaimMetadata {
    #[serde(default)]
    pub(crate) shell_pid: Option<Value>,
    #[serde(default)]
    pub(crate) shell_pid_created_at: Option<Value>,
    #[serde(default)]
    pub(crate) agent: Option<Value>,
}

impl ClaimMetadata {
    fn boxed_if_any(self) -> Option<Box<ClaimMetadata>> {
        (self.shell_pid.is_some() || self.shell_pid_created_at.is_some() || self.agent.is_some())
            .then(|| Box::new(self))
    }
}

/// A review result kept for the reducer: parsed, or the validated object
/// text (one allocation), parsed only if it ends up in the snapshot.
#[derive(Debug)]
pub(crate) enum RrSrc {
    Parsed(Box<ReviewResult>),
    Raw(Box<str>),
}

impl RrSrc {
    /// The review result. Raw text was validated by the reader, so parsing
    /// cannot fail; if it somehow did, the slot reads as null.
    pub(crate) fn resolve(&self) -> Option<ReviewResult> {
        match self {
            RrSrc::Parsed(rr) => Some((**rr).clone()),
            RrSrc::Raw(text) => parse_review_result_text(text).ok().flatten(),
        }
    }
}

/// `false` only when the object text cannot have an `agent` or `shell_pid*`
/// key: no such quoted text and no escapes (an escaped key could spell one).
fn may_hold_claim_keys(raw: &str) -> bool {
    raw.contains('\\') || raw.contains("\"agent\"") || raw.contains("\"shell_pid")
}

/// One lane event as the reducer sees it.
#[derive(Debug)]
pub(crate) struct Compact {
    pub(crate) at: SmallStr,
    pub(crate) event_id: SmallStr,
    pub(crate) wp: u32,
    pub(crate) actor: u32,
    pub(crate) from: Lane,
    pub(crate) to: Lane,
    pub(crate) force: bool,
    pub(crate) rollback: bool,
    pub(crate) review_result: Option<RrSrc>,
    pub(crate) claim: Option<Box<ClaimMetadata>>,
}

/// Rollback: `in_review -> in_progress`, or legacy `for_review -> in_progress` with a review_ref.
fn is_rollback(from: Lane, to: Lane, has_review_ref: bool) -> bool {
    to == Lane::InProgress
        && (from == Lane::InReview || (from == Lane::ForReview && has_review_ref))
}

/// Lane events in file order, with their interned WP ids and actors.
#[derive(Default, Debug)]
pub(crate) struct Batch {
    pub(crate) events: Vec<Compact>,
    pub(crate) wps: Interner,
    pub(crate) actors: Interner,
}

impl Batch {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Batch {
            events: Vec::with_capacity(n),
            ..Batch::default()
        }
    }

    pub(crate) fn push_view(&mut self, v: LaneView<'_>) {
        let claim = if v.from_lane == Lane::Planned && v.to_lane == Lane::Claimed {
            v.policy_metadata
                .filter(|raw| may_hold_claim_keys(raw))
                .and_then(|raw| serde_json::from_str::<ClaimMetadata>(raw).ok())
                .and_then(ClaimMetadata::boxed_if_any)
        } else {
            None
        };
        let wp = self.wps.intern(&v.wp_id);
        let actor = self.actors.intern(v.actor.identity());
        self.events.push(Compact {
            at: SmallStr::new(&v.at),
            event_id: SmallStr::new(&v.event_id),
            wp,
            actor,
            from: v.from_lane,
            to: v.to_lane,
            force: v.force,
            rollback: is_rollback(v.from_lane, v.to_lane, v.review_ref.is_some()),
            review_result: v.review_result.map(|rr| match rr {
                RrView::Parsed(parsed) => RrSrc::Parsed(parsed),
                RrView::Raw(text) => RrSrc::Raw(text.into()),
            }),
            claim,
        });
    }

    pub(crate) fn push_owned(&mut self, e: &LaneEvent) {
        let claim = if e.from_lane == Lane::Planned && e.to_lane == Lane::Claimed {
            e.policy_metadata.as_ref().and_then(|meta| {
                let get = |k: &str| meta.get(k).filter(|v| !v.is_null()).cloned();
                ClaimMetadata {
                    shell_pid: get("shell_pid"),
                    shell_pid_created_at: get("shell_pid_created_at"),
                    agent: get("agent"),
                }
                .boxed_if_any()
            })
        } else {
            None
        };
        let wp = self.wps.intern(&e.wp_id);
        let actor = self.actors.intern(e.actor.identity());
        self.events.push(Compact {
            at: SmallStr::new(&e.at),
            event_id: SmallStr::new(&e.event_id),
            wp,
            actor,
            from: e.from_lane,
            to: e.to_lane,
            force: e.force,
            rollback: is_rollback(e.from_lane, e.to_lane, e.review_ref.is_some()),
            review_result: e
                .review_result
                .clone()
                .map(|rr| RrSrc::Parsed(Box::new(rr))),
            claim,
        });
    }

    /// Re-numbers `other`'s WPs and actors into this batch's numbering, in
    /// place, so both can be reduced together without moving events.
    pub(crate) fn adopt_names(&mut self, other: &mut Batch) {
        let wp_map: Vec<u32> = (0..other.wps.len() as u32)
            .map(|i| self.wps.intern(other.wps.name(i)))
            .collect();
        let actor_map: Vec<u32> = (0..other.actors.len() as u32)
            .map(|i| self.actors.intern(other.actors.name(i)))
            .collect();
        for e in &mut other.events {
            e.wp = wp_map.get(e.wp as usize).copied().unwrap_or(e.wp);
            e.actor = actor_map.get(e.actor as usize).copied().unwrap_or(e.actor);
        }
        other.wps = Interner::default();
        other.actors = Interner::default();
    }
}
