//! Events leaving the process: envelope builder, Lamport clock and the emitter (chokepoint 1).
//!
//! ```text
//! typed payload ─▶ Emitter::emit ─▶ clock.tick ─▶ envelope::build ─▶ validate_payload ─▶ gate
//!                                                                         │ ok
//!                                    queue::Queue (WAL, one tx) ◀─────────┘ ─▶ LiveSink (optional)
//! ```
//!
//! * [`clock`]: `clock.json`, cross-process locked, leased.
//! * [`node`]: the machine's node id (`sha256("host:user")[:12]`).
//! * [`git_meta`]: the envelope's git fields.
//! * [`envelope`]: the generated `Envelope` from a typed payload; aggregate mapping; ids.
//! * [`emitter`]: [`Emitter::emit`] and the convenience `emit_*` methods; [`LiveSink`], the
//!   small trait a live connection is handed in through (this module never imports the socket).
//!
//! This layer knows the contract's payload types, never the domain (mission, status,
//! identity): the use-cases in `crate::app` translate domain changes into payloads.

pub mod clock;
pub mod emitter;
pub mod envelope;
pub mod git_meta;
pub mod node;

pub use crate::repo::Durability;
pub use clock::{ClockError, LamportClock};
pub use emitter::{EmitError, Emitter, LiveSink, Receipt};
pub use envelope::{EnvelopeContext, EnvelopeError, EventDraft};
pub use git_meta::{GitMetadata, GitResolver, GitSource};
