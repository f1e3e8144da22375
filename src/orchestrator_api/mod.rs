//! The `orchestrator-api` host (contract 1.3.0): what the real spec-kitty-orchestrator drives.
//!
//! One JSON envelope line on stdout for every outcome; diagnostics on stderr.

pub mod args;
pub mod policy;
