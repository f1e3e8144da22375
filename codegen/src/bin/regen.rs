//! Maintainer tool: regenerate the checked-in `generated/` from `contracts/`.
//!
//! `cargo run -p spec-kitty-codegen --bin regen` writes generated/*.rs (the blessing step).
//! `cargo run -p spec-kitty-codegen --bin regen -- --check` only reports drift (exit 1).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let check = std::env::args().any(|a| a == "--check");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let generated = match spec_kitty_codegen::render(&root.join("contracts")) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dir = root.join("generated");
    let mut drift = false;
    for (name, text) in &generated.files {
        let path = dir.join(name);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == *text {
            println!("unchanged  generated/{name}");
            continue;
        }
        drift = true;
        if check {
            println!("stale      generated/{name}");
        } else if let Err(e) = std::fs::write(&path, text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        } else {
            println!("written    generated/{name}");
        }
    }
    if check && drift {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
