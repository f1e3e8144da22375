//! spec-kitty-codegen: turns `contracts/` into Rust.
//!
//! Inputs: `shape.json` (the gate's rules per surface), `event-rules.json` (library rules the
//! JSON Schemas do not carry, and the registry of emitted event types) and `schemas/*.schema.json`
//! (draft 2020-12 shapes of every wire surface). The file names carry no contract version: the
//! version is data inside them, so a bump changes values, never names.
//!
//! Outputs: `types.rs` (typify's typed wire structs) and `rules.rs` (the gate's rule tables and
//! the validators' tables). `build.rs` writes them to `OUT_DIR`; the `regen` binary writes the
//! checked-in copy in `generated/`; a test keeps the two identical.
//!
//! Generation is refused, with the file and JSON pointer named, when the contract uses a schema
//! keyword typify would not enforce, when a schema declares a field its surface forbids (or a
//! feature-era key anywhere), when a constrained surface has an escape hatch, or when the shape
//! file, the registry and the schemas disagree.

pub mod emit;
pub mod error;
pub mod event_rules;
pub mod schema;
pub mod shape;
pub mod surface;

use std::path::{Path, PathBuf};

pub use error::CodegenError;

/// The generated files, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub files: Vec<(&'static str, String)>,
}

/// Names of the files codegen writes, in `generated/` and `OUT_DIR`.
pub const OUTPUT_FILES: &[&str] = &["rules.rs", "types.rs"];

/// Run the whole pipeline on a contracts directory, in memory.
pub fn render(contracts: &Path) -> Result<Generated, CodegenError> {
    let read = |rel: &str| {
        std::fs::read_to_string(contracts.join(rel))
            .map_err(|e| CodegenError::new(rel, "", format!("cannot read: {e}")))
    };
    let shape = shape::parse(&read(shape::FILE)?)?;
    let rules = event_rules::parse(&read(event_rules::FILE)?)?;
    let files = schema::load_dir(&contracts.join("schemas"))?;
    let bundle = schema::bundle(&files)?;
    let gated = surface::check(&shape, &rules, &bundle)?;
    let residuals = schema::residuals(&bundle);
    let legacy: Vec<String> = surface::legacy_keys(&shape, &rules).into_iter().collect();
    let rules_rs = emit::rules(&shape, &rules, &residuals, &gated, &legacy)?;
    let types_rs = emit::types(&bundle, &rules)?;
    Ok(Generated {
        files: vec![("rules.rs", rules_rs), ("types.rs", types_rs)],
    })
}

/// Render and write every output file into `out_dir`. Returns the written paths.
pub fn generate(contracts: &Path, out_dir: &Path) -> Result<Vec<PathBuf>, CodegenError> {
    let generated = render(contracts)?;
    let mut written = Vec::new();
    for (name, text) in &generated.files {
        let path = out_dir.join(name);
        std::fs::write(&path, text).map_err(|e| {
            CodegenError::new(*name, "", format!("cannot write {}: {e}", path.display()))
        })?;
        written.push(path);
    }
    Ok(written)
}
