//! Events leaving the process: envelope builder, Lamport clock, emitter (chokepoint 1) and the
//! durable offline queue.
//!
//! ```text
//! typed payload ─▶ Emitter::emit ─▶ clock.tick ─▶ envelope::build ─▶ validate_payload ─▶ gate
//!                                                                         │ ok
//!                                    ~/.spec-kitty/queue.db (WAL, one tx) ◀┘
//! ```
//!
//! * [`home`]: `~/.spec-kitty` (`$HOME`), credentials scope, queue path, `config.toml` cap.
//! * [`clock`]: `clock.json`, cross-process locked.
//! * [`git_meta`]: the envelope's git fields.
//! * [`envelope`]: the generated `Envelope` from a typed payload; aggregate mapping; ids.
//! * [`emitter`]: [`Emitter::emit`] and the convenience `emit_*` methods.
//! * [`queue`]: the SQLite queue (upstream's table, `user_version` migrations, coalescing, cap,
//!   quarantine, paging and batch results for the sender, rejections, sync facts).
//!
//! Durability is one setting for both files ([`Durability`]); the CLI uses the default, `Full`.

pub mod auth;
pub mod batch;
pub mod clock;
pub mod credentials;
pub mod emitter;
pub mod envelope;
pub mod git_meta;
pub mod home;
pub mod outbox;
pub mod queue;
pub mod settings;
pub mod tls;
pub mod ws;

pub use clock::{ClockError, LamportClock};
pub use emitter::{EmitError, Emitter, Receipt};
pub use envelope::{EnvelopeContext, EnvelopeError, EventDraft};
pub use git_meta::{GitMetadata, GitResolver, GitSource};
pub use home::{HomeError, SpecKittyHome};
pub use queue::{
    Ack, AppliedResults, Cursor, EnqueueOutcome, QuarantineSelection, QuarantinedRow, Queue,
    QueueError, QueueOptions, QueueStats, QueuedEvent, Rejection, RetryOutcome,
};
pub use ws::{WsError, WsOptions, WsStatus};

/// How hard a write is pushed to disk before it counts as done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Durability {
    /// Synced before returning: the queue's WAL at every commit (`PRAGMA synchronous=FULL`,
    /// `fdatasync`); a [`LamportClock`] loaded with `Full` also syncs its file and directory at
    /// every write (the emitter's clock does not: its durable copy is the queue's Lamport floor).
    /// An emitted event survives a killed process and a power loss: one sync per event.
    #[default]
    Full,
    /// Atomic and committed, no fsync (`PRAGMA synchronous=NORMAL` in WAL mode, the clock
    /// replaced by rename). An emitted event survives a killed process; after a power loss or
    /// kernel crash the last events may be missing (never half-written).
    Normal,
}
