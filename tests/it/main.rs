//! Integration tests, one binary (one link step). Modules by area.

mod bad_input;
mod cli_contract;
mod cli_mission;
mod cli_workflow;
mod conformance;
mod gate_props;
mod generated;
mod identity_repo;
mod layers;
mod legacy_names;
mod mission_lifecycle;
mod orchestrator_api;
mod status_flow;
mod structure;
mod support;
mod sync_cli;
mod sync_crash;
mod sync_envelope;
mod sync_interop;
mod sync_support;
mod sync_tls;
mod sync_transport;
mod sync_ws_unit;
mod upstream;
