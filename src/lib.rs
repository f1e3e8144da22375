//! spec-kitty-rs: contract-first implementation of the spec-kitty mission-identity core.
pub mod status;
