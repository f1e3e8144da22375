//! The only module that knows feature-era names.
//!
//! Everything outside `src/upgrade/` speaks missions only. Readers elsewhere ask
//! [`legacy::legacy_meta_keys`] whether a file still carries pre-mission keys and, if so, refuse it
//! with an error telling the user to run `spec-kitty upgrade`. [`legacy::canonicalize_meta`] is the
//! rewrite that `upgrade` performs.

pub mod legacy;
pub mod meta_files;

pub use legacy::{LEGACY_META_KEYS, canonicalize_meta, legacy_meta_keys};
pub use meta_files::{Rewritten, upgrade_meta_files};
