//! Work-package status: lanes, the transition matrix and guards, the
//! append-only event log `kitty-specs/<mission>/status.events.jsonl`, the
//! reducer, and the derived `status.json` snapshot. Facts follow host HEAD
//! (contract 1.3.0 semantics), `reference/orchestrator-api.md` §3.1–3.3.
//!
//! Map:
//! - [`lane`]: [`Lane`], aliases, display order, terminal lanes, buckets.
//! - [`transition`]: [`validate_transition`] over a [`TransitionRequest`].
//! - [`event`]: [`LaneEvent`], [`AnnotationEvent`], mission-level lines;
//!   [`pyjson`] makes them byte-identical to Python's `json.dumps`.
//! - `line` (the `serde_json` line reader, [`parse_record`]) and `scan` (a
//!   conservative fast scanner for ordinary lines that defers to `line`).
//! - [`stamp`]: `at` timestamps and monotonic ULIDs ([`EventStamper`]).
//! - [`store`]: [`EventLog`] — lock, durable append, strict read, torn tails;
//!   `stream` is its streaming, two-thread reader for the reducer.
//! - [`reducer`]: [`reduce`] → [`Reduction`], over `compact` records.
//! - [`snapshot`]: `status.json` rendering and atomic write.
//!
//! Typical write path (what a `transition` command does):
//! ```no_run
//! # use spec_kitty::status::*;
//! # fn f() -> Result<()> {
//! let log = EventLog::new("kitty-specs/099-orchestrator-e2e");
//! let lock = log.lock()?;                                   // exclusive
//! let state = lock.reduce()?;                               // from_lane is derived
//! let from = state.work_packages.get("WP01").and_then(|s| s.lane).unwrap_or(Lane::Planned);
//! let mut req = TransitionRequest::new(from, Lane::Claimed);
//! req.actor = Some("spec-kitty-orchestrator");
//! validate_transition(&req)?;                               // nothing persisted on rejection
//! let mut stamps = EventStamper::new();
//! let event = LaneEvent::new(stamps.stamp(), "099-orchestrator-e2e", "WP01", from,
//!                            Lane::Claimed, "spec-kitty-orchestrator");
//! lock.append(&[StatusRecord::Lane(event)])?;
//! lock.materialize(&SnapshotIdentity {
//!     mission_slug: "099-orchestrator-e2e".into(),
//!     mission_number: "99".into(),
//!     mission_type: "software-dev".into(),
//! })?;
//! # Ok(()) }
//! ```

mod checkpoint;
mod compact;
pub mod error;
pub mod event;
pub mod fold;
mod fold_repr;
pub mod lane;
mod line;
pub mod pyjson;
pub mod reducer;
mod scan;
pub mod snapshot;
pub mod stamp;
pub mod store;
mod stream;
pub mod transition;

pub use error::{Result, StatusError};
pub use event::{
    Actor, ActorBinding, AnnotationDelta, AnnotationEvent, DoneEvidence, EvidenceJsonError,
    LaneEvent, RepoEvidence, ReviewApproval, ReviewOverride, ReviewResult, ReviewResultJsonError,
    StatusRecord, VerificationResult,
};
pub use lane::{Lane, ProgressBucket, UnknownLane};
pub use line::parse_record;
pub use reducer::{LaneCounts, Reduction, Slot, WpState, reduce};
pub use snapshot::{SnapshotIdentity, render_status_json};
pub use stamp::{EventStamper, Stamp, format_at};
pub use store::{EventLog, LogLock, LogRecord, Materialized};
pub use transition::{TransitionError, TransitionRequest, validate_transition};
