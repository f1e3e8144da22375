//! The only module that knows feature-era names.
//!
//! Everything outside `src/upgrade/` speaks missions only. Readers elsewhere ask
//! [`legacy::legacy_meta_keys`] whether a file still carries pre-mission keys and, if so, refuse it
//! with an error telling the user to run `spec-kitty upgrade`. `spec-kitty upgrade` itself
//! ([`run`]) plans every change (meta.json, status logs, status.json, dossier snapshots,
//! `.kittify/metadata.yaml`, the user's queues), stages the new files in a [`journal`] outside
//! the working tree, commits the journal, then rolls it forward.

pub mod envelope;
pub mod journal;
pub mod legacy;
pub mod meta_files;
pub mod metadata;
pub mod queue_db;
pub mod redact;
pub mod run;
pub mod status_log;

pub use legacy::{LEGACY_META_KEYS, canonicalize_meta, legacy_meta_keys};
pub use meta_files::{Rewritten, upgrade_meta_files};
