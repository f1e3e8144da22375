//! Locating `../shared/upstream` (unmodified upstream contract data).
//!
//! Tests that need it skip with a printed reason when it is absent, and fail instead when
//! `SPEC_KITTY_REQUIRE_UPSTREAM=1` (which `.ci/run` sets). `SPEC_KITTY_UPSTREAM_DIR` overrides
//! the location.

use std::path::PathBuf;

/// The upstream data directory: `Ok` when its shape file is there, else `Err` with the path
/// looked at. No side effects.
pub fn locate() -> Result<PathBuf, PathBuf> {
    let dir = std::env::var_os("SPEC_KITTY_UPSTREAM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/upstream"));
    if dir.join("upstream-3.0.0-shape.json").is_file() {
        Ok(dir)
    } else {
        Err(dir)
    }
}

/// `SPEC_KITTY_REQUIRE_UPSTREAM=1`: a missing upstream directory is a failure.
pub fn required() -> bool {
    std::env::var("SPEC_KITTY_REQUIRE_UPSTREAM").is_ok_and(|v| v == "1")
}

#[allow(dead_code)] // the conformance harness includes this file and uses `locate` instead
pub fn dir() -> Option<PathBuf> {
    let dir = match locate() {
        Ok(dir) => return Some(dir),
        Err(dir) => dir,
    };
    let required = required();
    assert!(
        !required,
        "SPEC_KITTY_REQUIRE_UPSTREAM=1 but upstream data is missing at {}",
        dir.display()
    );
    eprintln!(
        "skipped: upstream contract data not found at {} (set SPEC_KITTY_UPSTREAM_DIR)",
        dir.display()
    );
    None
}

pub fn read_json(path: &std::path::Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}
