//! spec-kitty-rs: contract-first implementation of the spec-kitty mission-identity core.
//!
//! See ARCHITECTURE.md for the map. Imports only point down this list (front ends first,
//! leaves last); a test (`tests/it/layers.rs`) checks every `crate::` path against it.
//!
//! `cli`, `orchestrator_api` → `upgrade`, `app` → `mission` → `status` → `identity` →
//! `events` → `queue` → `saas` → `home` → `repo` → `contract`.

pub mod app;
pub mod cli;
pub mod contract;
pub mod events;
pub mod home;
pub mod identity;
pub mod mission;
pub mod orchestrator_api;
pub mod queue;
pub mod repo;
pub mod saas;
pub mod status;
pub mod upgrade;
