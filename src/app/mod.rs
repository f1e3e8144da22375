//! Use-cases: one function per user intent, between the front ends (CLI, orchestrator-api) and
//! the domain (mission, status, identity).
//!
//! The domain reads, decides, persists and returns what changed; a use-case takes that, turns
//! it into the contract's payload structs ([`wire`]) and hands them to the [`outbox::Outbox`] it
//! was given. Nothing below this layer emits, opens a queue or connects.
//!
//! * [`emitting`]: opening the emitter (identity, home, queue, clock) and the live socket.
//! * [`outbox`]: the per-command best-effort emitter.
//! * [`relay`]: the status log as the outbox (log lines → queue, exactly once).
//! * [`wire`]: domain records → generated payload structs.
//! * [`transition`]: moving a work package and appending to its history (host and CLI alike).
//! * [`dossier`] (with [`dossier_manifest`]): index a mission's artifacts, emit the dossier
//!   events, queue the artifact bodies.
//! * [`sync`], [`body_sync`]: `sync now`'s drains of the event queue and the body queue.
//! * [`tracker`]: `tracker bind / status / unbind` over the tracker client (chokepoint 5).

pub mod body_sync;
pub mod dossier;
pub mod dossier_manifest;
pub mod emitting;
pub mod mission;
pub mod outbox;
pub mod relay;
pub mod sync;
pub mod tracker;
pub mod transition;
pub mod wire;
pub mod workflow;
