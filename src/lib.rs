//! spec-kitty-rs: contract-first implementation of the spec-kitty mission-identity core.
//!
//! See ARCHITECTURE.md for the map. `contract` is generated from `contracts/` and holds the gate.

pub mod cli;
pub mod contract;
pub mod identity;
pub mod mission;
pub mod orchestrator_api;
pub mod repo;
pub mod status;
pub mod sync;
pub mod upgrade;
