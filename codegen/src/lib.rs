//! spec-kitty-codegen: turns `contracts/` into Rust.
//!
//! Inputs: `shape.json` (the gate's rules per surface), `event-rules.json` (library rules the
//! JSON Schemas do not carry, and the registry of emitted event types) and `schemas/*.schema.json`
//! (draft 2020-12 shapes of every wire surface). The file names carry no contract version: the
//! version is data inside them, so a bump changes values, never names.
//!
//! Outputs: `types.rs` (typify's typed wire structs), `rules.rs` (the gate's rule tables and
//! the validators' tables) and `contract.txt` (the compiled contract in words, so the review diff
//! of a bump reads as meaning). `build.rs` writes them to `OUT_DIR`; the `regen` binary writes the
//! checked-in copy in `generated/`; a test keeps the two identical.
//!
//! Generation is refused, with the file and JSON pointer named, when the contract uses a schema
//! keyword typify would not enforce, when a schema declares a field its surface forbids (or a
//! feature-era key anywhere), when a constrained surface has an escape hatch, or when the shape
//! file, the registry and the schemas disagree.

pub mod diff;
pub mod emit;
pub mod error;
pub mod event_rules;
pub mod model;
pub mod schema;
pub mod shape;
pub mod summary;
pub mod surface;

use std::path::{Path, PathBuf};

pub use error::CodegenError;

/// The generated files, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub files: Vec<(&'static str, String)>,
}

/// Names of the files codegen writes, in `generated/` and `OUT_DIR`.
pub const OUTPUT_FILES: &[&str] = &["contract.txt", "rules.rs", "types.rs"];

/// A contracts directory as codegen's loaders read it: parsed, linted and bundled, not yet
/// cross-checked (see [`surface::check`]).
#[derive(Debug, Clone)]
pub struct Contract {
    pub shape: shape::Shape,
    pub rules: event_rules::EventRules,
    pub bundle: schema::Bundle,
}

impl Contract {
    /// The compiled meaning (what `contract.txt` prints and `regen diff` compares).
    pub fn model(&self) -> model::Model {
        model::build(&self.shape, &self.rules, &self.bundle)
    }
}

/// The names the two rule files had while they spelled the contract version
/// (`upstream-3.0.0-shape.json`, `events-3.0.0-rules.json`): stable name, prefix, suffix.
const VERSIONED_NAMES: &[(&str, &str, &str)] = &[
    (shape::FILE, "upstream-", "-shape.json"),
    (event_rules::FILE, "events-", "-rules.json"),
];

/// The one file in `contracts` named the old, versioned way for the input `stable`, if any.
pub fn versioned_input(contracts: &Path, stable: &str) -> Option<String> {
    let (_, prefix, suffix) = VERSIONED_NAMES.iter().find(|(s, _, _)| *s == stable)?;
    let mut found: Vec<String> = std::fs::read_dir(contracts)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with(prefix) && n.ends_with(suffix) && n.len() > prefix.len() + suffix.len()
        })
        .collect();
    (found.len() == 1).then(|| found.remove(0))
}

fn read_input(contracts: &Path, rel: &str, stable: &str) -> Result<String, CodegenError> {
    std::fs::read_to_string(contracts.join(rel)).map_err(|e| {
        let hint = match versioned_input(contracts, stable) {
            Some(old) if rel == stable => format!(
                " ({old} is there: the contract files carry no version in their names, rename it to {stable})"
            ),
            _ => String::new(),
        };
        CodegenError::new(rel, "", format!("cannot read: {e}{hint}"))
    })
}

/// Load a contracts directory with codegen's loaders (the stable input names).
pub fn load(contracts: &Path) -> Result<Contract, CodegenError> {
    load_named(contracts, shape::FILE, event_rules::FILE)
}

/// [`load`] with the two rule files named explicitly (relative to `contracts`).
pub fn load_named(
    contracts: &Path,
    shape_file: &str,
    rules_file: &str,
) -> Result<Contract, CodegenError> {
    let shape = shape::parse(&read_input(contracts, shape_file, shape::FILE)?)?;
    let rules = event_rules::parse(&read_input(contracts, rules_file, event_rules::FILE)?)?;
    let files = schema::load_dir(&contracts.join("schemas"))?;
    let bundle = schema::bundle(&files)?;
    Ok(Contract {
        shape,
        rules,
        bundle,
    })
}

/// Run the whole pipeline on a contracts directory, in memory.
pub fn render(contracts: &Path) -> Result<Generated, CodegenError> {
    let Contract {
        shape,
        rules,
        bundle,
    } = load(contracts)?;
    let gated = surface::check(&shape, &rules, &bundle)?;
    let residuals = schema::residuals(&bundle);
    let legacy: Vec<String> = surface::legacy_keys(&shape, &rules).into_iter().collect();
    let rules_rs = emit::rules(&shape, &rules, &residuals, &gated, &legacy)?;
    let types_rs = emit::types(&bundle, &rules)?;
    let summary = summary::render(&model::build(&shape, &rules, &bundle));
    Ok(Generated {
        files: vec![
            ("contract.txt", summary),
            ("rules.rs", rules_rs),
            ("types.rs", types_rs),
        ],
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
