//! Integration tests, one binary (one link step). Modules by area.

mod conformance;
mod gate_props;
mod generated;
mod structure;
mod upstream;
