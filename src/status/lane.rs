//! Work-package lanes: the ten persisted lane values, user-input parsing with
//! aliases, the display order used by `status.json` summaries, terminal lanes
//! and progress buckets (reference `orchestrator-api.md` §3.1, host HEAD).
//!
//! Two parsers exist on purpose:
//! - [`Lane::from_wire`] accepts exactly the persisted snake_case names. It is
//!   what the event-log reader uses, like upstream's `Lane(value)`.
//! - [`Lane::parse`] is for human/CLI input: it trims, lowercases and resolves
//!   the alias `doing` → `in_progress` first (upstream `resolve_lane_alias`).
//!
//! Upstream also has an `uninitialized` read sentinel that is never written to
//! the event log. It is not a [`Lane`]: where the snapshot needs it (a work
//! package known only from annotations) the lane is `None`, rendered as
//! [`UNINITIALIZED`].

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Wire text of upstream's non-persisted read sentinel lane, used in
/// `status.json` for a work package that has annotations but no transition.
pub const UNINITIALIZED: &str = "uninitialized";

/// A work-package lane as persisted in `status.events.jsonl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    /// Non-display seed lane; `finalize-tasks` emits `genesis -> planned`.
    Genesis,
    Planned,
    Claimed,
    InProgress,
    ForReview,
    InReview,
    Approved,
    Done,
    Blocked,
    Canceled,
}

/// The text did not name a lane. Carries the offending text verbatim.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "Unknown lane: {text:?} (expected one of genesis, planned, claimed, in_progress, \
     for_review, in_review, approved, done, blocked, canceled, or the alias doing)"
)]
pub struct UnknownLane {
    /// The text exactly as given.
    pub text: String,
}

/// Coarse progress bucket of a lane (HEAD `status/wp_state.py` `progress_bucket`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProgressBucket {
    /// genesis, uninitialized, planned
    NotStarted,
    /// claimed, in_progress, blocked
    InFlight,
    /// for_review, in_review, approved
    Review,
    /// done, canceled
    Terminal,
}

impl ProgressBucket {
    /// Wire name (`not_started`, `in_flight`, `review`, `terminal`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ProgressBucket::NotStarted => "not_started",
            ProgressBucket::InFlight => "in_flight",
            ProgressBucket::Review => "review",
            ProgressBucket::Terminal => "terminal",
        }
    }

    /// Bucket of a snapshot lane, where `None` is the `uninitialized` sentinel.
    pub const fn of(lane: Option<Lane>) -> ProgressBucket {
        match lane {
            Some(lane) => lane.progress_bucket(),
            None => ProgressBucket::NotStarted,
        }
    }
}

impl Lane {
    /// Every lane, in upstream's enum order (without the `uninitialized` sentinel).
    pub const ALL: [Lane; 10] = [
        Lane::Genesis,
        Lane::Planned,
        Lane::Claimed,
        Lane::InProgress,
        Lane::ForReview,
        Lane::InReview,
        Lane::Approved,
        Lane::Done,
        Lane::Blocked,
        Lane::Canceled,
    ];

    /// The nine display lanes counted in the `status.json` summary, in
    /// upstream's order (`status_lanes.CANONICAL_LANES`).
    pub const DISPLAY: [Lane; 9] = [
        Lane::Planned,
        Lane::Claimed,
        Lane::InProgress,
        Lane::ForReview,
        Lane::InReview,
        Lane::Approved,
        Lane::Done,
        Lane::Blocked,
        Lane::Canceled,
    ];

    /// Terminal lanes: leaving them needs `force`.
    pub const TERMINAL: [Lane; 2] = [Lane::Done, Lane::Canceled];

    /// The persisted snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Lane::Genesis => "genesis",
            Lane::Planned => "planned",
            Lane::Claimed => "claimed",
            Lane::InProgress => "in_progress",
            Lane::ForReview => "for_review",
            Lane::InReview => "in_review",
            Lane::Approved => "approved",
            Lane::Done => "done",
            Lane::Blocked => "blocked",
            Lane::Canceled => "canceled",
        }
    }

    /// Exact persisted name → lane (no trimming, no aliases), as the event-log
    /// reader needs it.
    pub fn from_wire(text: &str) -> Result<Lane, UnknownLane> {
        Ok(match text {
            "genesis" => Lane::Genesis,
            "planned" => Lane::Planned,
            "claimed" => Lane::Claimed,
            "in_progress" => Lane::InProgress,
            "for_review" => Lane::ForReview,
            "in_review" => Lane::InReview,
            "approved" => Lane::Approved,
            "done" => Lane::Done,
            "blocked" => Lane::Blocked,
            "canceled" => Lane::Canceled,
            _ => {
                return Err(UnknownLane {
                    text: text.to_owned(),
                });
            }
        })
    }

    /// User input → lane: trims, lowercases, then resolves the alias
    /// `doing` → `in_progress` (upstream `resolve_lane_alias`).
    pub fn parse(text: &str) -> Result<Lane, UnknownLane> {
        let normalized = text.trim().to_lowercase();
        let resolved = if normalized == "doing" {
            "in_progress"
        } else {
            normalized.as_str()
        };
        Lane::from_wire(resolved).map_err(|_| UnknownLane {
            text: text.to_owned(),
        })
    }

    /// Position in [`Lane::DISPLAY`], or `None` for `genesis`.
    pub const fn display_index(self) -> Option<usize> {
        match self {
            Lane::Genesis => None,
            Lane::Planned => Some(0),
            Lane::Claimed => Some(1),
            Lane::InProgress => Some(2),
            Lane::ForReview => Some(3),
            Lane::InReview => Some(4),
            Lane::Approved => Some(5),
            Lane::Done => Some(6),
            Lane::Blocked => Some(7),
            Lane::Canceled => Some(8),
        }
    }

    /// `true` for `done` and `canceled`.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Lane::Done | Lane::Canceled)
    }

    /// `true` for every lane except `genesis`.
    pub const fn is_display(self) -> bool {
        !matches!(self, Lane::Genesis)
    }

    /// HEAD progress bucket of this lane.
    pub const fn progress_bucket(self) -> ProgressBucket {
        match self {
            Lane::Genesis | Lane::Planned => ProgressBucket::NotStarted,
            Lane::Claimed | Lane::InProgress | Lane::Blocked => ProgressBucket::InFlight,
            Lane::ForReview | Lane::InReview | Lane::Approved => ProgressBucket::Review,
            Lane::Done | Lane::Canceled => ProgressBucket::Terminal,
        }
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Lane {
    type Err = UnknownLane;

    /// Same as [`Lane::parse`] (lenient: trim, lowercase, aliases).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lane::parse(s)
    }
}

impl Serialize for Lane {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Lane {
    /// Strict: only the exact persisted names (see [`Lane::from_wire`]).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LaneVisitor;
        impl Visitor<'_> for LaneVisitor {
            type Value = Lane;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a lane name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Lane, E> {
                Lane::from_wire(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(LaneVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_and_are_snake_case() {
        let names: Vec<&str> = Lane::ALL.iter().map(|l| l.as_str()).collect();
        assert_eq!(
            names,
            [
                "genesis",
                "planned",
                "claimed",
                "in_progress",
                "for_review",
                "in_review",
                "approved",
                "done",
                "blocked",
                "canceled"
            ]
        );
        for lane in Lane::ALL {
            assert_eq!(Lane::from_wire(lane.as_str()), Ok(lane));
            let json = serde_json::to_string(&lane).unwrap();
            assert_eq!(json, format!("\"{}\"", lane.as_str()));
            assert_eq!(serde_json::from_str::<Lane>(&json).unwrap(), lane);
        }
    }

    #[test]
    fn parse_trims_lowercases_and_resolves_doing() {
        assert_eq!(Lane::parse("  Doing "), Ok(Lane::InProgress));
        assert_eq!(Lane::parse("IN_REVIEW"), Ok(Lane::InReview));
        assert_eq!("for_review".parse::<Lane>(), Ok(Lane::ForReview));
        // in_review is first-class at HEAD, not an alias of for_review.
        assert_ne!(Lane::parse("in_review"), Ok(Lane::ForReview));
    }

    #[test]
    fn unknown_lane_is_a_typed_error_with_the_text() {
        let err = Lane::parse(" Nope ").unwrap_err();
        assert_eq!(err.text, " Nope ");
        assert!(err.to_string().contains("Unknown lane: \" Nope \""));
        // The wire reader is strict: no alias, no case folding, no sentinel.
        assert_eq!(Lane::from_wire("doing").unwrap_err().text, "doing");
        assert!(Lane::from_wire("Done").is_err());
        assert!(Lane::from_wire(UNINITIALIZED).is_err());
        assert!(serde_json::from_str::<Lane>("\"doing\"").is_err());
    }

    #[test]
    fn display_lanes_exclude_genesis_in_upstream_order() {
        assert_eq!(Lane::DISPLAY.len(), 9);
        assert!(!Lane::DISPLAY.contains(&Lane::Genesis));
        for (i, lane) in Lane::DISPLAY.iter().enumerate() {
            assert_eq!(lane.display_index(), Some(i));
            assert!(lane.is_display());
        }
        assert_eq!(Lane::Genesis.display_index(), None);
    }

    #[test]
    fn terminal_and_buckets_match_head() {
        let terminal: Vec<Lane> = Lane::ALL.into_iter().filter(|l| l.is_terminal()).collect();
        assert_eq!(terminal, Lane::TERMINAL);
        use ProgressBucket::*;
        let expected = [
            (Lane::Genesis, NotStarted),
            (Lane::Planned, NotStarted),
            (Lane::Claimed, InFlight),
            (Lane::InProgress, InFlight),
            (Lane::Blocked, InFlight),
            (Lane::ForReview, Review),
            (Lane::InReview, Review),
            (Lane::Approved, Review),
            (Lane::Done, Terminal),
            (Lane::Canceled, Terminal),
        ];
        for (lane, bucket) in expected {
            assert_eq!(lane.progress_bucket(), bucket, "{lane}");
        }
        assert_eq!(ProgressBucket::of(None), NotStarted);
        assert_eq!(Terminal.as_str(), "terminal");
    }
}
